/* Unit tests of the DICOM writer: bytes of elements and sequences as PS3.5 lays them out, files
 * read back by the reader, misuse refused (tag order, nesting, lengths) with the error sticky,
 * and the UIDs (format, UUID bits, site roots). DCMTK, dicom3tools and pydicom check the
 * objects built on it in tests/report/dicom_outputs_test.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dicom/dicom.h"

#define TAG(group, element) (((uint32_t)(group) << 16) | (uint32_t)(element))

static struct cxr_dicom_writer *writer_new(void)
{
    struct cxr_dicom_writer *writer = NULL;
    assert_int_equal(cxr_dicom_writer_create(0, &writer, NULL), CXR_OK);
    return writer;
}

/* The data set bytes after the 132-byte preamble and the meta group. */
static const uint8_t *data_set(const struct cxr_buf *file, size_t *size)
{
    assert_true(file->len >= 144);
    assert_memory_equal(file->data + 128, "DICM", 4);
    uint32_t group_length = file->data[140] | (file->data[141] << 8) |
                            ((uint32_t)file->data[142] << 16) | ((uint32_t)file->data[143] << 24);
    size_t start = 144 + group_length;
    assert_true(start <= file->len);
    *size = file->len - start;
    return file->data + start;
}

static void test_element_bytes(void **state)
{
    (void)state;
    struct cxr_dicom_writer *writer = writer_new();
    cxr_dicom_writer_string(writer, TAG(0x0008, 0x0016), "UI", "1.2.3");   /* odd: NUL pad */
    cxr_dicom_writer_string(writer, TAG(0x0010, 0x0010), "PN", "Doe^Jon"); /* odd: space */
    cxr_dicom_writer_string(writer, TAG(0x0010, 0x0020), "LO", NULL);      /* empty */
    cxr_dicom_writer_us(writer, TAG(0x0028, 0x0010), 0x1234);
    cxr_dicom_writer_bytes(writer, TAG(0x7FE0, 0x0010), "OB", "\x01\x02\x03", 3);
    struct cxr_buf file = {0};
    assert_int_equal(cxr_dicom_writer_finish(writer, "1.2.3", "4.5", &file, NULL), CXR_OK);
    cxr_dicom_writer_destroy(writer);
    size_t size;
    const uint8_t *bytes = data_set(&file, &size);
    static const uint8_t expected[] = {
            0x08, 0x00, 0x16, 0x00, 'U', 'I', 6, 0, '1', '.', '2', '.', '3', 0, 0x10, 0x00, 0x10,
            0x00, 'P', 'N', 8, 0, 'D', 'o', 'e', '^', 'J', 'o', 'n', ' ', 0x10, 0x00, 0x20, 0x00,
            'L', 'O', 0, 0, 0x28, 0x00, 0x10, 0x00, 'U', 'S', 2, 0, 0x34, 0x12,
            /* OB: two reserved bytes and a 32-bit length */
            0xE0, 0x7F, 0x10, 0x00, 'O', 'B', 0, 0, 4, 0, 0, 0, 1, 2, 3, 0};
    assert_int_equal(size, sizeof expected);
    assert_memory_equal(bytes, expected, sizeof expected);
    cxr_buf_release(&file);
}

static void test_sequence_lengths(void **state)
{
    (void)state;
    struct cxr_dicom_writer *writer = writer_new();
    cxr_dicom_writer_sequence_begin(writer, TAG(0x0008, 0x1115));
    cxr_dicom_writer_item_begin(writer);
    cxr_dicom_writer_string(writer, TAG(0x0008, 0x1150), "UI", "1.2");
    cxr_dicom_writer_item_end(writer);
    cxr_dicom_writer_item_begin(writer);
    cxr_dicom_writer_item_end(writer);
    cxr_dicom_writer_sequence_end(writer);
    cxr_dicom_writer_sequence_begin(writer, TAG(0x0008, 0x1199)); /* empty */
    cxr_dicom_writer_sequence_end(writer);
    struct cxr_buf file = {0};
    assert_int_equal(cxr_dicom_writer_finish(writer, "1.2.3", "4.5", &file, NULL), CXR_OK);
    cxr_dicom_writer_destroy(writer);
    size_t size;
    const uint8_t *bytes = data_set(&file, &size);
    static const uint8_t expected[] = {
            0x08, 0x00, 0x15, 0x11, 'S', 'Q', 0, 0, 28,  0,   0,   0, /* defined length */
            0xFE, 0xFF, 0x00, 0xE0, 12,  0,   0, 0,                   /* item of 12 */
            0x08, 0x00, 0x50, 0x11, 'U', 'I', 4, 0, '1', '.', '2', 0,
            0xFE, 0xFF, 0x00, 0xE0, 0,   0,   0, 0, /* empty item */
            0x08, 0x00, 0x99, 0x11, 'S', 'Q', 0, 0, 0,   0,   0,   0};
    assert_int_equal(size, sizeof expected);
    assert_memory_equal(bytes, expected, sizeof expected);
    cxr_buf_release(&file);
}

/* A file written here parses with the reader, meta group included. */
static void test_read_back(void **state)
{
    (void)state;
    struct cxr_dicom_writer *writer = writer_new();
    cxr_dicom_writer_string(writer, TAG(0x0008, 0x0005), "CS", "ISO_IR 192");
    cxr_dicom_writer_string(writer, TAG(0x0008, 0x0016), "UI", "1.2.840.10008.5.1.4.1.1.7");
    cxr_dicom_writer_string(writer, TAG(0x0008, 0x0018), "UI", "2.25.1234");
    cxr_dicom_writer_sequence_begin(writer, TAG(0x0008, 0x1115));
    cxr_dicom_writer_item_begin(writer);
    cxr_dicom_writer_string(writer, TAG(0x0010, 0x0020), "LO", "NESTED");
    cxr_dicom_writer_item_end(writer);
    cxr_dicom_writer_sequence_end(writer);
    cxr_dicom_writer_string(writer, TAG(0x0010, 0x0010), "PN", "Müller^Jürgen");
    cxr_dicom_writer_string(writer, TAG(0x0010, 0x0020), "LO", "PID-1");
    cxr_dicom_writer_string(writer, TAG(0x0020, 0x000D), "UI", "2.25.99");
    cxr_dicom_writer_string(writer, TAG(0x0020, 0x000E), "UI", "2.25.98");
    cxr_dicom_writer_string(writer, TAG(0x0020, 0x0010), "SH", "S7");
    struct cxr_buf file = {0};
    assert_int_equal(
            cxr_dicom_writer_finish(writer, "1.2.840.10008.5.1.4.1.1.7", "2.25.1234", &file, NULL),
            CXR_OK);
    cxr_dicom_writer_destroy(writer);
    struct cxr_dicom_file *parsed = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    enum cxr_status status = cxr_dicom_file_parse(file.data, file.len, NULL, &parsed, &err);
    if (status != CXR_OK)
        print_error("%s\n", err.message);
    assert_int_equal(status, CXR_OK);
    const struct cxr_dicom_meta *meta = cxr_dicom_file_meta(parsed);
    assert_string_equal(meta->transfer_syntax_uid, "1.2.840.10008.1.2.1");
    assert_string_equal(meta->sop_instance_uid, "2.25.1234");
    assert_string_equal(meta->patient_id, "PID-1"); /* not the nested one */
    assert_string_equal(meta->patient_name_raw, "Müller^Jürgen");
    assert_string_equal(meta->study_instance_uid, "2.25.99");
    assert_string_equal(meta->series_instance_uid, "2.25.98");
    assert_string_equal(meta->study_id, "S7");
    cxr_dicom_file_destroy(parsed);
    cxr_buf_release(&file);
}

static void test_misuse_is_refused_and_sticky(void **state)
{
    (void)state;
    struct cxr_dicom_writer *writer = writer_new();
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_buf file = {0};
    /* Out of order: refused, and every later call returns the same status. */
    assert_int_equal(cxr_dicom_writer_string(writer, TAG(0x0010, 0x0020), "LO", "a"), CXR_OK);
    assert_int_equal(cxr_dicom_writer_string(writer, TAG(0x0010, 0x0010), "PN", "b"),
                     CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_dicom_writer_us(writer, TAG(0x0028, 0x0010), 1), CXR_ERR_INVALID_ARG);
    assert_int_equal(cxr_dicom_writer_finish(writer, "1.2", "3.4", &file, &err),
                     CXR_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "(0010,0010)"));
    assert_int_equal(file.len, 0);
    cxr_dicom_writer_destroy(writer);

    /* The same tag twice. */
    writer = writer_new();
    cxr_dicom_writer_string(writer, TAG(0x0010, 0x0020), "LO", "a");
    assert_int_equal(cxr_dicom_writer_string(writer, TAG(0x0010, 0x0020), "LO", "a"),
                     CXR_ERR_INVALID_ARG);
    cxr_dicom_writer_destroy(writer);

    /* Tags restart in each item; an element straight in a sequence, an unbalanced end and an
     * open sequence at finish are refused. */
    writer = writer_new();
    cxr_dicom_writer_sequence_begin(writer, TAG(0x0040, 0xA730));
    assert_int_equal(cxr_dicom_writer_string(writer, TAG(0x0040, 0xA010), "CS", "X"),
                     CXR_ERR_INVALID_ARG);
    cxr_dicom_writer_destroy(writer);
    writer = writer_new();
    cxr_dicom_writer_sequence_begin(writer, TAG(0x0040, 0xA730));
    cxr_dicom_writer_item_begin(writer);
    assert_int_equal(cxr_dicom_writer_string(writer, TAG(0x0008, 0x0100), "SH", "1"), CXR_OK);
    assert_int_equal(cxr_dicom_writer_sequence_end(writer), CXR_ERR_INVALID_ARG);
    cxr_dicom_writer_destroy(writer);
    writer = writer_new();
    cxr_dicom_writer_sequence_begin(writer, TAG(0x0040, 0xA730));
    err = (struct cxr_err)CXR_ERR_INIT;
    assert_int_equal(cxr_dicom_writer_finish(writer, "1.2", "3.4", &file, &err),
                     CXR_ERR_INVALID_ARG);
    cxr_dicom_writer_destroy(writer);
    writer = writer_new();
    assert_int_equal(cxr_dicom_writer_item_end(writer), CXR_ERR_INVALID_ARG);
    cxr_dicom_writer_destroy(writer);

    /* A short-length VR cannot hold more than 65534 bytes; a bad VR; the size bound. */
    char *long_text = malloc(70000);
    assert_non_null(long_text);
    memset(long_text, 'a', 69999);
    long_text[69999] = '\0';
    writer = writer_new();
    assert_int_equal(cxr_dicom_writer_string(writer, TAG(0x0010, 0x0020), "LO", long_text),
                     CXR_ERR_LIMIT);
    cxr_dicom_writer_destroy(writer);
    writer = writer_new();
    assert_int_equal(cxr_dicom_writer_string(writer, TAG(0x0040, 0xA160), "UT", long_text), CXR_OK);
    cxr_dicom_writer_destroy(writer);
    writer = writer_new();
    assert_int_equal(cxr_dicom_writer_string(writer, TAG(0x0010, 0x0020), "L", "x"),
                     CXR_ERR_INVALID_ARG);
    cxr_dicom_writer_destroy(writer);
    assert_int_equal(cxr_dicom_writer_create(1000, &writer, NULL), CXR_OK);
    assert_int_equal(cxr_dicom_writer_string(writer, TAG(0x0040, 0xA160), "UT", long_text),
                     CXR_ERR_LIMIT);
    cxr_dicom_writer_destroy(writer);
    free(long_text);
    cxr_dicom_writer_destroy(NULL);
}

static void test_uid_generate(void **state)
{
    (void)state;
    char first[CXR_DICOM_UID_SIZE], second[CXR_DICOM_UID_SIZE];
    assert_int_equal(cxr_dicom_uid_generate(NULL, first, NULL), CXR_OK);
    assert_int_equal(cxr_dicom_uid_generate("", second, NULL), CXR_OK);
    assert_string_not_equal(first, second);
    for (const char *uid = first; uid; uid = uid == first ? second : NULL) {
        assert_memory_equal(uid, "2.25.", 5);
        const char *digits = uid + 5;
        assert_true(strlen(digits) >= 1 && strlen(digits) <= 39);
        assert_true(strspn(digits, "0123456789") == strlen(digits));
        assert_true(digits[0] != '0');
        /* The decimal is a version-4 UUID: parse it back (128 bits) and check its bits. */
        unsigned __int128 value = 0;
        for (const char *d = digits; *d; d++)
            value = value * 10 + (unsigned)(*d - '0');
        assert_int_equal((unsigned)((value >> 76) & 0xF), 4);
        assert_int_equal((unsigned)((value >> 62) & 0x3), 2);
    }
    /* A site root: its prefix, 64 characters at most, digits only after it. */
    static const char *const roots[] = {"1.2.826.0.1.3680043.10.1437", "1",
                                        "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.1"};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        char uid[CXR_DICOM_UID_SIZE];
        assert_int_equal(cxr_dicom_uid_generate(roots[i], uid, NULL), CXR_OK);
        size_t root_length = strlen(roots[i]);
        assert_memory_equal(uid, roots[i], root_length);
        assert_int_equal(uid[root_length], '.');
        assert_true(strlen(uid) <= 64 && strlen(uid) > root_length + 20);
        assert_true(uid[root_length + 1] != '0');
        assert_true(strspn(uid + root_length + 1, "0123456789") == strlen(uid) - root_length - 1);
    }
}

static void test_uid_root_check(void **state)
{
    (void)state;
    static const struct {
        const char *root;
        enum cxr_status status;
    } cases[] = {
            {"", CXR_OK},
            {"1.2.826.0.1.3680043.10.1437", CXR_OK},
            {"0", CXR_OK},
            {"1.0.3", CXR_OK},
            {"1.02.3", CXR_ERR_INVALID_ARG},
            {"1..3", CXR_ERR_INVALID_ARG},
            {".1", CXR_ERR_INVALID_ARG},
            {"1.2.", CXR_ERR_INVALID_ARG},
            {"1.2a", CXR_ERR_INVALID_ARG},
            {"1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17", CXR_ERR_INVALID_ARG}, /* 41 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cxr_err err = CXR_ERR_INIT;
        enum cxr_status status = cxr_dicom_uid_root_check(cases[i].root, &err);
        if (status != cases[i].status)
            print_error("root '%s': %d (%s)\n", cases[i].root, status, err.message);
        assert_int_equal(status, cases[i].status);
        char uid[CXR_DICOM_UID_SIZE];
        assert_int_equal(cxr_dicom_uid_generate(cases[i].root, uid, NULL), cases[i].status);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_element_bytes),
            cmocka_unit_test(test_sequence_lengths),
            cmocka_unit_test(test_read_back),
            cmocka_unit_test(test_misuse_is_refused_and_sticky),
            cmocka_unit_test(test_uid_generate),
            cmocka_unit_test(test_uid_root_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
