/* Unit tests of the DICOM reader: values read from the pydicom-written seed files (the writer
 * is the independent reference), Person Name rendering, and refusal of broken input: real
 * files truncated at every 1/16, wrong lengths, text, zero bytes, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dicom/dicom.h"
#include "dicom/dicom_internal.h"

static const char *data_dir(void)
{
    const char *dir = getenv("CXR_DATA_DIR");
    return dir != NULL ? dir : "../shared/data";
}

static uint8_t *load(const char *path, size_t *size)
{
    struct cxr_buf buf = CXR_BUF_INIT(0);
    *size = 0;
    if (cxr_file_read(path, SIZE_MAX, &buf, NULL) != CXR_OK) {
        cxr_buf_release(&buf);
        return NULL;
    }
    *size = buf.len;
    return buf.data; /* malloc'ed: the caller frees it */
}

static struct cxr_dicom_file *read_seed(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fuzz/dicom_parse/%s", CXR_SOURCE_DIR, name);
    struct cxr_dicom_file *file = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    enum cxr_status status = cxr_dicom_file_read(path, NULL, &file, &err);
    if (status != CXR_OK)
        print_error("%s: %s\n", path, err.message);
    assert_int_equal(status, CXR_OK);
    return file;
}

static void test_person_name_render(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
            {"Doe^John", "John Doe"},
            {"Doe^John^Quincy^Dr.^Jr.", "Dr. John Quincy Doe Jr."},
            {"Doe", "Doe"},
            {"^John", "John"},
            {"Doe^^^Mr", "Mr Doe"},
            {"", ""},
            {"^^^^", ""},
            {" Doe ^ John ", "John Doe"},
            {"Yamada^Tarou=山田^太郎=やまだ^たろう", "Tarou Yamada"},
            {"=山田^太郎=やまだ^たろう", "太郎 山田"},
            {"^=^=Hong^Gildong", "Gildong Hong"},
            {"Wang^XiaoDong=王^小東=", "XiaoDong Wang"},
            {"A^B^C^D^E^F", "D B C A E F"},
            {"Doe^John\\Roe^Jane", "John Doe"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *rendered = dicom_person_name_render(cases[i][0]);
        assert_non_null(rendered);
        assert_string_equal(rendered, cases[i][1]);
        free(rendered);
    }
}

static void test_charset_decoding(void **state)
{
    (void)state;
    struct {
        const char *charset;
        const char *bytes;
        bool person_name;
        const char *utf8;
    } cases[] = {
            {"", "Doe^John", true, "Doe^John"},
            {"ISO_IR 100", "Buc^J\xe9r\xf4me", true, "Buc^Jérôme"},
            {"ISO_IR100", "J\xe9r\xf4me", true, "Jérôme"},
            {"iso-ir 100 ", "J\xe9r\xf4me", true, "Jérôme"},
            {"ISO_IR 101",
             "\xb3\xf3"
             "d\xbc",
             false, "łódź"},
            {"ISO_IR 999", "J\xe9r\xf4me", false, "Jérôme"},
            {"ISO 2022 IR 100", "J\xe9r\xf4me", false, "Jérôme"},
            {"ISO_IR 13", "\xb1\xb2", false, "ｱｲ"},
            {"\\ISO 2022 IR 58", "\x1b$)A\xd6\xd0\xce\xc4", false, "中文"},
            {"\\ISO 2022 IR 159", "\x1b$(D\x30\x21\x1b(B", false, "丂"},
            {"ISO_IR 144", "\xbb\xee\xda", false, "Люк"},
            {"ISO_IR 192", "Wang=\xe7\x8e\x8b", true, "Wang=王"},
            {"GB18030", "Wang=\xcd\xf5", true, "Wang=王"},
            {"\\ISO 2022 IR 87", "Yamada=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B", true,
             "Yamada=山田^太郎"},
            {"ISO 2022 IR 13\\ISO 2022 IR 87", "\xd4\xcf\xc0\xde^\x1b$B;3ED\x1b(J", true,
             "ﾔﾏﾀﾞ^山田"},
            {"\\ISO 2022 IR 149", "Hong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7", true,
             "Hong=洪^吉洞"},
            /* Undecodable bytes become U+FFFD, never invalid UTF-8. */
            {"ISO_IR 192",
             "a\xff"
             "b",
             false,
             "a\xEF\xBF\xBD"
             "b"},
            {"\\ISO 2022 IR 87", "\x1b$B\x21", false, "\xEF\xBF\xBD"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *utf8 = dicom_charset_to_utf8(cases[i].charset, strlen(cases[i].charset),
                                           (const uint8_t *)cases[i].bytes, strlen(cases[i].bytes),
                                           cases[i].person_name);
        assert_non_null(utf8);
        assert_string_equal(utf8, cases[i].utf8);
        free(utf8);
    }
}

/* The seed files are written by tests/dicom/make_fuzz_seeds.py with pydicom. */
static void check_seed_image(const char *name, const char *syntax, bool big_endian)
{
    struct cxr_dicom_file *file = read_seed(name);
    const struct cxr_dicom_meta *meta = cxr_dicom_file_meta(file);
    assert_string_equal(meta->patient_name, "Dr John Q Doe Jr");
    assert_string_equal(meta->patient_name_raw, "Doe^John^Q^Dr^Jr");
    assert_string_equal(meta->patient_id, "P001");
    assert_string_equal(meta->patient_age, "045Y");
    assert_string_equal(meta->study_date, "20240102");
    assert_string_equal(meta->modality, "DX");
    assert_string_equal(meta->sop_instance_uid, "1.2.3.4.5");
    assert_string_equal(meta->transfer_syntax_uid, syntax);
    assert_string_equal(meta->body_part_examined, "");
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    assert_int_equal(cxr_dicom_file_pixels(file, &desc, &pixels, NULL), CXR_OK);
    assert_int_equal(desc.rows, 4);
    assert_int_equal(desc.columns, 4);
    assert_int_equal(desc.bits_allocated, 16);
    assert_int_equal(desc.bits_stored, 12);
    assert_int_equal(desc.high_bit, 11);
    assert_int_equal(desc.number_of_frames, 1);
    assert_string_equal(desc.photometric_interpretation, "MONOCHROME2");
    assert_true(desc.has_rescale);
    assert_true(desc.rescale_slope == 1.5);
    assert_true(desc.rescale_intercept == -10);
    assert_int_equal(desc.window_count, 2);
    assert_true(desc.window_centers[0] == 2048 && desc.window_widths[0] == 4096);
    assert_true(desc.window_centers[1] == 1000 && desc.window_widths[1] == 500);
    assert_false(pixels.encapsulated);
    assert_int_equal(pixels.big_endian, big_endian);
    assert_int_equal(pixels.native_size, 32);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(pixels.native[i], (i * 7) & 0xFF);
    cxr_dicom_file_destroy(file);
}

/* Study details for the report, against pydicom's reading of the same corpus files:
 * accession number, referring physician (a Person Name, raw), study time, institution, and
 * the raw patient name with all its component groups. */
static void test_study_details(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        const char *accession, *referring, *study_time, *institution, *patient_raw;
    } cases[] = {
            {"pydicom-test-files/waveform_ecg.dcm", "03028041970546", "2721", "105919",
             "E. O. Ospedali Galliera", NULL},
            {"pydicom-charset-files/chrH31.dcm", "", "^^^^", "", "",
             "Yamada^Tarou=山田^太郎=やまだ^たろう"},
            {"pydicom-charset-files/chrI2.dcm", "", "^^^^", "", "", "Hong^Gildong=洪^吉洞=홍^길동"},
            {"pydicom-charset-files/chrArab.dcm", "", "^^^^", "", "", "قباني^لنزار"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/dicom/%s", data_dir(), cases[i].file);
        struct cxr_dicom_file *file = NULL;
        struct cxr_err err = CXR_ERR_INIT;
        if (cxr_dicom_file_read(path, NULL, &file, &err) != CXR_OK)
            fail_msg("%s: %s", path, err.message);
        const struct cxr_dicom_meta *meta = cxr_dicom_file_meta(file);
        assert_string_equal(meta->accession_number, cases[i].accession);
        assert_string_equal(meta->referring_physician_name_raw, cases[i].referring);
        assert_string_equal(meta->study_time, cases[i].study_time);
        assert_string_equal(meta->institution_name, cases[i].institution);
        if (cases[i].patient_raw)
            assert_string_equal(meta->patient_name_raw, cases[i].patient_raw);
        cxr_dicom_file_destroy(file);
    }
}

static void test_transfer_syntaxes(void **state)
{
    (void)state;
    check_seed_image("explicit_le.dcm", "1.2.840.10008.1.2.1", false);
    check_seed_image("implicit_le.dcm", "1.2.840.10008.1.2", false);
    check_seed_image("explicit_be.dcm", "1.2.840.10008.1.2.2", true);
    check_seed_image("deflated.dcm", "1.2.840.10008.1.2.1.99", false);
    /* No preamble and no meta group: implicit VR little endian detected. */
    check_seed_image("no_meta_implicit.dcm", "1.2.840.10008.1.2", false);
}

static void test_big_endian_byte_order(void **state)
{
    (void)state;
    /* 8-bit RGB stored as OB in a big endian file: bytes in sample order. */
    struct cxr_dicom_file *file = read_seed("rgb_be_ob.dcm");
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    assert_int_equal(cxr_dicom_file_pixels(file, &desc, &pixels, NULL), CXR_OK);
    assert_false(pixels.big_endian);
    assert_int_equal(pixels.native_size, 48);
    for (size_t i = 0; i < 48; i++)
        assert_int_equal(pixels.native[i], (i * 7) & 0xFF);
    cxr_dicom_file_destroy(file);

    /* The same 8-bit RGB image as OW in big endian and as OB in little endian (pydicom's
     * SC_rgb_small_odd pair): the big endian words hold the samples swapped in pairs. */
    char path[1024];
    struct cxr_dicom_file *big = NULL, *little = NULL;
    snprintf(path, sizeof(path), "%s/dicom/pydicom-test-files/SC_rgb_small_odd_big_endian.dcm",
             data_dir());
    assert_int_equal(cxr_dicom_file_read(path, NULL, &big, NULL), CXR_OK);
    snprintf(path, sizeof(path), "%s/dicom/pydicom-test-files/SC_rgb_small_odd.dcm", data_dir());
    assert_int_equal(cxr_dicom_file_read(path, NULL, &little, NULL), CXR_OK);
    struct cxr_dicom_pixel_data big_pixels, little_pixels;
    assert_int_equal(cxr_dicom_file_pixels(big, &desc, &big_pixels, NULL), CXR_OK);
    assert_int_equal(cxr_dicom_file_pixels(little, &desc, &little_pixels, NULL), CXR_OK);
    assert_true(big_pixels.big_endian);
    assert_false(little_pixels.big_endian);
    size_t samples = (size_t)desc.rows * desc.columns * 3;
    assert_true(big_pixels.native_size >= samples && little_pixels.native_size >= samples);
    for (size_t i = 0; i < samples; i++)
        assert_int_equal(big_pixels.native[i ^ 1u], little_pixels.native[i]);
    cxr_dicom_file_destroy(big);
    cxr_dicom_file_destroy(little);
}

static uint8_t *load_seed(const char *name, size_t *size)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fuzz/dicom_parse/%s", CXR_SOURCE_DIR, name);
    uint8_t *bytes = load(path, size);
    assert_non_null(bytes);
    return bytes;
}

/* Without the 128-byte preamble and "DICM" the meta group starts the file. */
static void test_meta_group_without_preamble(void **state)
{
    (void)state;
    static const char *const seeds[] = {"explicit_le.dcm", "explicit_be.dcm", "deflated.dcm"};
    static const char *const syntaxes[] = {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                                           "1.2.840.10008.1.2.1.99"};
    for (size_t i = 0; i < 3; i++) {
        size_t size;
        uint8_t *bytes = load_seed(seeds[i], &size);
        assert_memory_equal(bytes + 128, "DICM", 4);
        struct cxr_dicom_file *file = NULL;
        assert_int_equal(cxr_dicom_file_parse(bytes + 132, size - 132, NULL, &file, NULL), CXR_OK);
        assert_string_equal(cxr_dicom_file_meta(file)->transfer_syntax_uid, syntaxes[i]);
        assert_string_equal(cxr_dicom_file_meta(file)->patient_name, "Dr John Q Doe Jr");
        struct cxr_dicom_pixel_desc desc;
        struct cxr_dicom_pixel_data pixels;
        assert_int_equal(cxr_dicom_file_pixels(file, &desc, &pixels, NULL), CXR_OK);
        assert_int_equal(pixels.native_size, 32);
        cxr_dicom_file_destroy(file);
        free(bytes);
    }
}

/* The inflated data set is bounded by max_file_bytes, not only the compressed file. */
static void test_deflate_limit(void **state)
{
    (void)state;
    size_t size;
    uint8_t *bytes = load_seed("deflated.dcm", &size);
    struct cxr_limits limits = cxr_limits_default();
    limits.max_file_bytes = size + 8; /* the file fits, its inflated data set does not */
    struct cxr_dicom_file *file = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_dicom_file_parse(bytes, size, &limits, &file, &err), CXR_ERR_LIMIT);
    assert_null(file);
    assert_non_null(strstr(err.message, "inflated"));
    /* Corrupt deflate data is an error naming zlib. */
    bytes[size - 20] ^= 0xFF;
    bytes[size - 21] ^= 0xFF;
    err = (struct cxr_err)CXR_ERR_INIT;
    if (cxr_dicom_file_parse(bytes, size, NULL, &file, &err) == CXR_OK) {
        cxr_dicom_file_destroy(file); /* a flip may still inflate: then it must parse cleanly */
    } else {
        assert_int_equal(err.status, CXR_ERR_MALFORMED);
    }
    free(bytes);
}

/* The corpus's known-broken files and the exact error each must produce. */
static void test_known_broken_files(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        bool at_parse; /* else the pixel description is refused */
        enum cxr_status status;
        const char *message;
    } cases[] = {
            {"pydicom-test-files/MR_truncated.dcm", true, CXR_ERR_MALFORMED,
             "element length exceeds the remaining bytes at offset 1488 (tag 7FE0,0010)"},
            {"pydicom-test-files/rtplan_truncated.dcm", true, CXR_ERR_MALFORMED,
             "element length exceeds the remaining bytes at offset 1410 (tag 300A,00B0)"},
            {"pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm", true, CXR_ERR_MALFORMED,
             "encapsulated pixel data without sequence delimiter"},
            {"pydicom-test-files/no_meta.dcm", true, CXR_ERR_MALFORMED, "not a DICOM file"},
            {"pydicom-test-files/badVR.dcm", false, CXR_ERR_MALFORMED, "invalid Number of Frames"},
            {"pydicom-test-files/dicomdirtests/DICOMDIR-nooffset", true, CXR_ERR_MALFORMED,
             "item length exceeds its sequence"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/dicom/%s", data_dir(), cases[i].file);
        struct cxr_dicom_file *file = NULL;
        struct cxr_err err = CXR_ERR_INIT;
        enum cxr_status status = cxr_dicom_file_read(path, NULL, &file, &err);
        if (!cases[i].at_parse) {
            assert_int_equal(status, CXR_OK);
            struct cxr_dicom_pixel_desc desc;
            struct cxr_dicom_pixel_data pixels;
            status = cxr_dicom_file_pixels(file, &desc, &pixels, &err);
            cxr_dicom_file_destroy(file);
        } else {
            assert_null(file);
        }
        if (status != cases[i].status || strstr(err.message, cases[i].message) == NULL)
            print_error("%s: got %s \"%s\"\n", cases[i].file, cxr_status_name(status), err.message);
        assert_int_equal(status, cases[i].status);
        assert_non_null(strstr(err.message, cases[i].message));
    }
}

static void test_encapsulated(void **state)
{
    (void)state;
    struct cxr_dicom_file *file = read_seed("encapsulated.dcm");
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    assert_int_equal(cxr_dicom_file_pixels(file, &desc, &pixels, NULL), CXR_OK);
    assert_true(pixels.encapsulated);
    assert_int_equal(desc.number_of_frames, 2);
    assert_int_equal(pixels.offset_count, 2);
    assert_int_equal(pixels.offsets[0], 0);
    assert_int_equal(pixels.offsets[1], 18); /* item header 8 + fragment 10 */
    assert_int_equal(pixels.fragment_count, 2);
    assert_int_equal(pixels.fragments[0].size, 10);
    assert_memory_equal(pixels.fragments[0].data,
                        "\xff\xd8"
                        "abcdefgh",
                        10);
    assert_memory_equal(pixels.fragments[1].data, "ijklmnop\xff\xd9", 10);
    cxr_dicom_file_destroy(file);
}

static void check_luts(const char *name)
{
    struct cxr_dicom_file *file = read_seed(name);
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    assert_int_equal(cxr_dicom_file_pixels(file, &desc, &pixels, NULL), CXR_OK);
    assert_non_null(desc.modality_lut);
    assert_int_equal(desc.modality_lut->entry_count, 4);
    assert_int_equal(desc.modality_lut->bits_per_entry, 16);
    static const uint16_t modality[] = {0, 100, 200, 300};
    static const uint16_t voi[] = {0, 85, 170, 255};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(desc.modality_lut->entries[i], modality[i]);
    assert_non_null(desc.voi_lut);
    assert_int_equal(desc.voi_lut->bits_per_entry, 8);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(desc.voi_lut->entries[i], voi[i]);
    assert_int_equal(desc.window_count, 0);
    cxr_dicom_file_destroy(file);
}

static void test_lut_sequences(void **state)
{
    (void)state;
    check_luts("lut_sequences.dcm");
    check_luts("lut_sequences_implicit.dcm");
}

/* Enhanced objects: frame 1's window and rescale come from the functional groups, the
 * Per-frame item before the Shared one; explicit VR and implicit VR (defined-length sequences
 * the dictionary does not know). */
static void check_functional_groups(const char *name)
{
    struct cxr_dicom_file *file = read_seed(name);
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    assert_int_equal(cxr_dicom_file_pixels(file, &desc, &pixels, NULL), CXR_OK);
    assert_int_equal(desc.window_count, 2);
    assert_float_equal(desc.window_centers[0], 1200.0, 0);
    assert_float_equal(desc.window_widths[0], 800.0, 0);
    assert_float_equal(desc.window_centers[1], 300.0, 0);
    assert_float_equal(desc.window_widths[1], 100.0, 0);
    assert_int_equal(desc.voi_lut_function, CXR_VOI_SIGMOID);
    assert_true(desc.has_rescale);
    assert_float_equal(desc.rescale_slope, 2.0, 0);
    assert_float_equal(desc.rescale_intercept, -5.0, 0);
    cxr_dicom_file_destroy(file);
}

/* The View Code Sequence's meaning (a nested item) and a signed Pixel Padding range, explicit
 * and implicit VR. */
static void check_view_code_and_padding(const char *name)
{
    struct cxr_dicom_file *file = read_seed(name);
    assert_string_equal(cxr_dicom_file_meta(file)->view_code_meaning, "left lateral");
    assert_string_equal(cxr_dicom_file_meta(file)->view_position, "");
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    assert_int_equal(cxr_dicom_file_pixels(file, &desc, &pixels, NULL), CXR_OK);
    assert_true(desc.has_pixel_padding);
    assert_int_equal(desc.pixel_padding_low, -2000);
    assert_int_equal(desc.pixel_padding_high, -1990);
    cxr_dicom_file_destroy(file);
}

static void test_view_code_and_padding(void **state)
{
    (void)state;
    check_view_code_and_padding("view_code_padding.dcm");
    check_view_code_and_padding("view_code_padding_implicit.dcm");
    /* Absent in the plain seed. */
    struct cxr_dicom_file *file = read_seed("explicit_le.dcm");
    assert_string_equal(cxr_dicom_file_meta(file)->view_code_meaning, "");
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    assert_int_equal(cxr_dicom_file_pixels(file, &desc, &pixels, NULL), CXR_OK);
    assert_false(desc.has_pixel_padding);
    cxr_dicom_file_destroy(file);
}

static void test_functional_group_windows(void **state)
{
    (void)state;
    check_functional_groups("functional_groups.dcm");
    check_functional_groups("functional_groups_implicit.dcm");
    /* A real enhanced CT (DICOM's eCT example): window and rescale in the Shared group only. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/dicom/pydicom-data/eCT_Supplemental.dcm", data_dir());
    struct cxr_dicom_file *file = NULL;
    assert_int_equal(cxr_dicom_file_read(path, NULL, &file, NULL), CXR_OK);
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    assert_int_equal(cxr_dicom_file_pixels(file, &desc, &pixels, NULL), CXR_OK);
    assert_int_equal(desc.window_count, 1);
    assert_float_equal(desc.window_centers[0], 49.0, 0);
    assert_float_equal(desc.window_widths[0], 102.0, 0);
    assert_int_equal(desc.voi_lut_function, CXR_VOI_LINEAR);
    assert_float_equal(desc.rescale_intercept, -1024.0, 0);
    cxr_dicom_file_destroy(file);
    /* A top-level window still wins (every older object). */
    file = read_seed("explicit_le.dcm");
    assert_int_equal(cxr_dicom_file_pixels(file, &desc, &pixels, NULL), CXR_OK);
    assert_int_equal(desc.window_count, 2);
    assert_float_equal(desc.window_centers[0], 2048.0, 0);
    cxr_dicom_file_destroy(file);
}

/* A parse error, or a parsed file whose pixel data cannot be described. */
static bool rejected(const uint8_t *bytes, size_t size)
{
    struct cxr_dicom_file *file = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_dicom_file_parse(bytes, size, NULL, &file, &err) != CXR_OK) {
        assert_int_not_equal(err.status, CXR_OK);
        assert_true(strlen(err.message) > 0);
        return true;
    }
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    enum cxr_status status = cxr_dicom_file_pixels(file, &desc, &pixels, NULL);
    cxr_dicom_file_destroy(file);
    return status != CXR_OK;
}

static void test_truncated_files(void **state)
{
    (void)state;
    static const char *const files[] = {
            "pydicom-test-files/CT_small.dcm",          "pydicom-test-files/MR_small_bigendian.dcm",
            "pydicom-test-files/MR_small_implicit.dcm", "pydicom-test-files/image_dfl.dcm",
            "pydicom-test-files/JPEG2000.dcm",          "pydicom-test-files/SC_rgb_rle_2frame.dcm",
            "pydicom-test-files/examples_palette.dcm",  "dcmbench/gdcm-CR-MONO1-10-chest.dcm",
            "torchxrayvision/Fake_MONOHR1.dcm",
    };
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/dicom/%s", data_dir(), files[f]);
        size_t size;
        uint8_t *bytes = load(path, &size);
        if (bytes == NULL)
            print_error("cannot read %s\n", path);
        assert_non_null(bytes);
        assert_false(rejected(bytes, size));
        for (size_t k = 1; k < 16; k++) {
            size_t cut = size * k / 16;
            /* A private copy of exactly cut bytes, so that ASan sees any read past it. */
            uint8_t *prefix = malloc(cut);
            assert_non_null(prefix);
            memcpy(prefix, bytes, cut);
            if (!rejected(prefix, cut))
                print_error("%s truncated to %zu of %zu bytes was accepted\n", files[f], cut, size);
            assert_true(rejected(prefix, cut));
            free(prefix);
        }
        free(bytes);
    }
}

/* Finds the first occurrence of an explicit VR LE element header (tag + VR). */
static size_t find_header(const uint8_t *bytes, size_t size, const char *header, size_t length)
{
    for (size_t i = 0; i + length <= size; i++) {
        if (memcmp(bytes + i, header, length) == 0)
            return i;
    }
    return SIZE_MAX;
}

static void test_wrong_lengths(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/dicom/pydicom-test-files/CT_small.dcm", data_dir());
    size_t size;
    uint8_t *bytes = load(path, &size);
    assert_non_null(bytes);
    /* Pixel Data (7FE0,0010) OW: length one past the end, then huge, then undefined. */
    size_t at = find_header(bytes, size, "\xe0\x7f\x10\x00OW", 6);
    assert_int_not_equal(at, SIZE_MAX);
    uint32_t lengths[] = {(uint32_t)(size - at - 12 + 1), 0xFFFFFFF0u, 0xFFFFFFFFu};
    for (size_t i = 0; i < 3; i++) {
        uint8_t *copy = malloc(size);
        memcpy(copy, bytes, size);
        memcpy(copy + at + 8, &lengths[i], 4);
        assert_true(rejected(copy, size));
        free(copy);
    }
    /* Patient Name (0010,0010) PN with a 16-bit length past the end of the file. */
    at = find_header(bytes, size, "\x10\x00\x10\x00PN", 6);
    assert_int_not_equal(at, SIZE_MAX);
    uint8_t *copy = malloc(size);
    memcpy(copy, bytes, size);
    copy[at + 6] = 0xFF;
    copy[at + 7] = 0xFF;
    /* Shifts every following element: the parse must fail or the image must be rejected. */
    struct cxr_dicom_file *file = NULL;
    if (cxr_dicom_file_parse(copy, size, NULL, &file, NULL) == CXR_OK)
        cxr_dicom_file_destroy(file);
    free(copy);
    free(bytes);
}

static void test_not_dicom(void **state)
{
    (void)state;
    struct cxr_dicom_file *file = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_dicom_file_parse((const uint8_t *)"", 0, NULL, &file, &err),
                     CXR_ERR_MALFORMED);
    assert_null(file);

    char path[] = "/tmp/cxr_test_dicom_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char text_path[sizeof(path) + 8];
    snprintf(text_path, sizeof(text_path), "%s.dcm", path);
    FILE *text = fopen(text_path, "w");
    assert_non_null(text);
    fputs("This is a text file, not DICOM.\nPatient: Doe^John\n", text);
    fclose(text);
    err = (struct cxr_err)CXR_ERR_INIT;
    assert_int_equal(cxr_dicom_file_read(text_path, NULL, &file, &err), CXR_ERR_MALFORMED);
    assert_null(file);
    assert_non_null(strstr(err.message, "not a DICOM file"));

    FILE *empty = fopen(text_path, "w");
    fclose(empty);
    assert_int_equal(cxr_dicom_file_read(text_path, NULL, &file, NULL), CXR_ERR_MALFORMED);
    /* A preamble and DICM with nothing after them. */
    uint8_t header[132] = {0};
    memcpy(header + 128, "DICM", 4);
    assert_int_equal(cxr_dicom_file_parse(header, sizeof(header), NULL, &file, NULL),
                     CXR_ERR_MALFORMED);
    unlink(text_path);
    unlink(path);
    assert_int_equal(cxr_dicom_file_read("/nonexistent/x.dcm", NULL, &file, NULL),
                     CXR_ERR_NOT_FOUND);
    assert_int_equal(cxr_dicom_file_read("/tmp", NULL, &file, NULL), CXR_ERR_IO);
    assert_null(file);
}

static void test_limits(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fuzz/dicom_parse/lut_sequences.dcm", CXR_SOURCE_DIR);
    size_t size;
    uint8_t *bytes = load(path, &size);
    assert_non_null(bytes);
    struct cxr_limits limits = cxr_limits_default();
    struct cxr_dicom_file *file = NULL;
    limits.max_file_bytes = size - 1;
    assert_int_equal(cxr_dicom_file_parse(bytes, size, &limits, &file, NULL), CXR_ERR_LIMIT);
    limits = cxr_limits_default();
    limits.max_elements = 10;
    assert_int_equal(cxr_dicom_file_parse(bytes, size, &limits, &file, NULL), CXR_ERR_LIMIT);
    limits = cxr_limits_default();
    limits.max_nesting_depth = 1; /* the seed nests two sequences */
    assert_int_equal(cxr_dicom_file_parse(bytes, size, &limits, &file, NULL), CXR_ERR_LIMIT);
    limits.max_nesting_depth = 2;
    assert_int_equal(cxr_dicom_file_parse(bytes, size, &limits, &file, NULL), CXR_OK);
    cxr_dicom_file_destroy(file);
    limits = cxr_limits_default();
    limits.max_image_pixels = 15; /* 4 x 4 image */
    assert_int_equal(cxr_dicom_file_parse(bytes, size, &limits, &file, NULL), CXR_OK);
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    assert_int_equal(cxr_dicom_file_pixels(file, &desc, &pixels, NULL), CXR_ERR_LIMIT);
    cxr_dicom_file_destroy(file);
    assert_null(NULL);
    free(bytes);

    /* Sequences nested 64 deep (undefined lengths) with the default depth limit of 16. */
    uint8_t deep[8 + 64 * 20 + 64 * 16];
    size_t length = 0;
    memcpy(deep,
           "\x08\x00\x05\x00"
           "CS\x00\x00",
           8); /* empty Specific Character Set */
    length = 8;
    for (int i = 0; i < 64; i++) {
        memcpy(deep + length, "\x08\x00\x40\x11SQ\x00\x00\xff\xff\xff\xff", 12);
        memcpy(deep + length + 12, "\xfe\xff\x00\xe0\xff\xff\xff\xff", 8);
        length += 20;
    }
    for (int i = 0; i < 64; i++) {
        memcpy(deep + length, "\xfe\xff\x0d\xe0\x00\x00\x00\x00", 8);
        memcpy(deep + length + 8, "\xfe\xff\xdd\xe0\x00\x00\x00\x00", 8);
        length += 16;
    }
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_dicom_file_parse(deep, length, NULL, &file, &err), CXR_ERR_LIMIT);
    assert_non_null(strstr(err.message, "nested"));
    limits = cxr_limits_default();
    limits.max_nesting_depth = 64;
    assert_int_equal(cxr_dicom_file_parse(deep, length, &limits, &file, NULL), CXR_OK);
    struct cxr_dicom_pixel_desc unused_desc;
    assert_int_equal(cxr_dicom_file_pixels(file, &unused_desc, &pixels, NULL), CXR_ERR_NOT_FOUND);
    cxr_dicom_file_destroy(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_person_name_render),
            cmocka_unit_test(test_charset_decoding),
            cmocka_unit_test(test_transfer_syntaxes),
            cmocka_unit_test(test_study_details),
            cmocka_unit_test(test_big_endian_byte_order),
            cmocka_unit_test(test_meta_group_without_preamble),
            cmocka_unit_test(test_known_broken_files),
            cmocka_unit_test(test_deflate_limit),
            cmocka_unit_test(test_encapsulated),
            cmocka_unit_test(test_lut_sequences),
            cmocka_unit_test(test_functional_group_windows),
            cmocka_unit_test(test_view_code_and_padding),
            cmocka_unit_test(test_truncated_files),
            cmocka_unit_test(test_wrong_lengths),
            cmocka_unit_test(test_not_dicom),
            cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
