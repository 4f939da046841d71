/* `cxrd dump FILE`: reads a DICOM file and prints its metadata and pixel description as one
 * JSON object, for people and for the differential tests against DCMTK and pydicom. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "cli/cli.h"
#include "dicom/dicom.h"

static void print_help(FILE *out)
{
    fprintf(out, "Usage: cxrd dump FILE [FILE...]\n\n"
                 "Reads a DICOM file and prints its metadata (UTF-8) and pixel description as\n"
                 "one JSON object on stdout. A file without usable pixel data gets\n"
                 "\"pixels\": null and \"pixels_error\". With several files, prints one compact\n"
                 "object per line; a file that cannot be read gets {\"file\", \"error\"}.\n"
                 "Exit status: 0 when every file was read, 1 otherwise (message on stderr),\n"
                 "2 on a usage error. Put -- first to name a FILE that begins with '-'.\n");
}

/* Values go through cxr_api_json_string: metadata is UTF-8 after iconv, but a file name need
 * not be (a Latin-1 share), and jansson refuses such a string. A readable file's "file" became
 * one U+FFFD, and an unreadable one lost its {"file", "error"} line, so the lines no longer
 * matched the files given. */
static int set_string(json_t *object, const char *key, const char *value)
{
    return json_object_set_new(object, key, cxr_api_json_string(value));
}

static json_t *meta_json(const struct cxr_dicom_meta *meta)
{
    json_t *object = json_object();
    if (object == NULL)
        return NULL;
    const struct {
        const char *key;
        const char *value;
    } fields[] = {
            {"patient_id", meta->patient_id},
            {"patient_name", meta->patient_name},
            {"patient_name_raw", meta->patient_name_raw},
            {"patient_age", meta->patient_age},
            {"patient_sex", meta->patient_sex},
            {"patient_birth_date", meta->patient_birth_date},
            {"sop_instance_uid", meta->sop_instance_uid},
            {"sop_class_uid", meta->sop_class_uid},
            {"study_instance_uid", meta->study_instance_uid},
            {"study_date", meta->study_date},
            {"modality", meta->modality},
            {"body_part_examined", meta->body_part_examined},
            {"view_position", meta->view_position},
            {"manufacturer", meta->manufacturer},
            {"institution_name", meta->institution_name},
            {"specific_character_set", meta->specific_character_set},
            {"transfer_syntax_uid", meta->transfer_syntax_uid},
            {"presentation_intent_type", meta->presentation_intent_type},
            {"view_code_meaning", meta->view_code_meaning},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (set_string(object, fields[i].key, fields[i].value) != 0) {
            json_decref(object);
            return NULL;
        }
    }
    return object;
}

static json_t *lut_json(const struct cxr_dicom_lut *lut)
{
    if (lut == NULL)
        return json_null();
    /* A summary of the entries rather than all 65536 of them. */
    json_int_t sum = 0, min = 65535, max = 0;
    for (uint32_t i = 0; i < lut->entry_count; i++) {
        sum += lut->entries[i];
        min = lut->entries[i] < min ? lut->entries[i] : min;
        max = lut->entries[i] > max ? lut->entries[i] : max;
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "entry_count", (json_int_t)lut->entry_count,
                     "first_mapped", (json_int_t)lut->first_mapped, "bits_per_entry",
                     (json_int_t)lut->bits_per_entry, "entries_sum", sum, "entries_min", min,
                     "entries_max", max);
}

static json_t *pixels_json(const struct cxr_dicom_pixel_desc *desc,
                           const struct cxr_dicom_pixel_data *pixels)
{
    static const char *const functions[] = {"LINEAR", "LINEAR_EXACT", "SIGMOID"};
    static const char *const lut_shapes[] = {NULL, "IDENTITY", "INVERSE"};
    json_t *windows = json_array();
    for (uint32_t i = 0; windows != NULL && i < desc->window_count; i++)
        json_array_append_new(windows, json_pack("{s:f, s:f}", "center", desc->window_centers[i],
                                                 "width", desc->window_widths[i]));
    json_t *rescale = desc->has_rescale ? json_pack("{s:f, s:f}", "slope", desc->rescale_slope,
                                                    "intercept", desc->rescale_intercept)
                                        : json_null();
    json_t *padding = desc->has_pixel_padding
                              ? json_pack("{s:I, s:I}", "low", (json_int_t)desc->pixel_padding_low,
                                          "high", (json_int_t)desc->pixel_padding_high)
                              : json_null();
    json_t *data =
            pixels->encapsulated
                    ? json_pack("{s:b, s:I, s:I}", "encapsulated", 1, "offset_count",
                                (json_int_t)pixels->offset_count, "fragment_count",
                                (json_int_t)pixels->fragment_count)
                    : json_pack("{s:b, s:b, s:I}", "encapsulated", 0, "big_endian",
                                pixels->big_endian, "native_size", (json_int_t)pixels->native_size);
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:o, s:o, s:s, "
                     "s:o, s:o, s:o, s:s?, s:o}",
                     "transfer_syntax_uid", desc->transfer_syntax_uid, "rows",
                     (json_int_t)desc->rows, "columns", (json_int_t)desc->columns,
                     "samples_per_pixel", (json_int_t)desc->samples_per_pixel, "number_of_frames",
                     (json_int_t)desc->number_of_frames, "bits_allocated",
                     (json_int_t)desc->bits_allocated, "bits_stored", (json_int_t)desc->bits_stored,
                     "high_bit", (json_int_t)desc->high_bit, "pixel_representation",
                     (json_int_t)desc->pixel_representation, "planar_configuration",
                     (json_int_t)desc->planar_configuration, "photometric_interpretation",
                     desc->photometric_interpretation, "rescale", rescale, "windows", windows,
                     "voi_lut_function", functions[desc->voi_lut_function], "modality_lut",
                     lut_json(desc->modality_lut), "voi_lut", lut_json(desc->voi_lut), "data", data,
                     "presentation_lut_shape", lut_shapes[desc->presentation_lut_shape],
                     "pixel_padding", padding);
}

/* Dumps one file: pretty JSON when it is the only one, else one compact line. Returns 0 when
 * the file was read. */
static int dump_file(const char *path, bool single)
{
    struct cxr_limits limits = cxr_limits_default();
    struct cxr_err err = CXR_ERR_INIT;
    struct cxr_dicom_file *file = NULL;
    size_t flags = single ? JSON_INDENT(2) : JSON_COMPACT;
    if (cxr_dicom_file_read(path, &limits, &file, &err) != CXR_OK) {
        fprintf(stderr, "cxrd dump: %s: %s (%s)\n", path, err.message, cxr_status_name(err.status));
        if (!single) {
            json_t *failure = json_pack("{s:o, s:{s:s, s:o}}", "file", cxr_api_json_string(path),
                                        "error", "status", cxr_status_name(err.status), "message",
                                        cxr_api_json_string(err.message));
            if (failure != NULL && json_dumpf(failure, stdout, flags) == 0)
                fputc('\n', stdout);
            json_decref(failure);
        }
        return 1;
    }
    json_t *root = json_object();
    json_t *meta = meta_json(cxr_dicom_file_meta(file));
    struct cxr_dicom_pixel_desc desc;
    struct cxr_dicom_pixel_data pixels;
    struct cxr_err pixel_err = CXR_ERR_INIT;
    json_t *pixel_object = NULL;
    if (cxr_dicom_file_pixels(file, &desc, &pixels, &pixel_err) == CXR_OK)
        pixel_object = pixels_json(&desc, &pixels);
    int failed = root == NULL || meta == NULL;
    if (!failed) {
        set_string(root, "file", path);
        json_object_set_new(root, "meta", meta);
        meta = NULL;
        json_object_set_new(root, "pixels", pixel_object != NULL ? pixel_object : json_null());
        pixel_object = NULL;
        if (pixel_err.status != CXR_OK) {
            json_object_set_new(root, "pixels_error",
                                json_pack("{s:s, s:o}", "status", cxr_status_name(pixel_err.status),
                                          "message", cxr_api_json_string(pixel_err.message)));
        }
        failed = json_dumpf(root, stdout, flags) != 0 || fputc('\n', stdout) == EOF;
    }
    json_decref(meta);
    json_decref(pixel_object);
    json_decref(root);
    cxr_dicom_file_destroy(file);
    if (failed) {
        fprintf(stderr, "cxrd dump: %s: cannot build or write the JSON output\n", path);
        return 1;
    }
    return 0;
}

int cxr_cli_dump(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_help(stdout);
        return 0;
    }
    /* "--" ends the options, so a FILE that begins with '-' can be named (as for infer). */
    int first = argc > 1 && strcmp(argv[1], "--") == 0 ? 2 : 1;
    if (first == argc || (first == 1 && argv[1][0] == '-')) {
        print_help(stderr);
        return 2;
    }
    int status = 0;
    for (int i = first; i < argc; i++) {
        if (dump_file(argv[i], argc - first == 1) != 0)
            status = 1;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "cxrd dump: cannot write to stdout\n");
        status = 1;
    }
    return status;
}
