/* The input gate (DESIGN.md): is this an adult frontal chest radiograph? Two layers. The DICOM
 * attributes, when present, refuse what is plainly something else (another modality or body
 * part, a lateral view, a child, an image too small to be a radiograph). The image layer scores
 * the rendered picture itself with a linear classifier that the model file carries in
 * `cxr.gate`: its weights apply to the network's pooled features (a graph output) followed by a
 * 16 x 16 thumbnail and a 32-bin grey histogram of the network input. */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

#define THUMB_SIDE 16
#define HIST_BINS  32

/* The smallest side of a plausible radiograph, in pixels (the test charsets are 32 x 32). */
#define MIN_RADIOGRAPH_SIDE 128
/* Taller or wider than this ratio is not a chest radiograph (long-leg or spine stitching). */
#define MAX_ASPECT_RATIO 2.5

void cxr_model_gate_release(struct cxr_model_gate *gate)
{
    free(gate->weights);
    memset(gate, 0, sizeof *gate);
}

enum cxr_status cxr_model_gate_parse(const char *text, size_t pooled_count,
                                     struct cxr_model_gate *gate, struct cxr_err *err)
{
    memset(gate, 0, sizeof *gate);
    gate->min_age_years = CXR_GATE_DEFAULT_MIN_AGE;
    if (text == NULL)
        return CXR_OK; /* no image layer: the attribute layer alone */
    json_error_t error;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &error);
    enum cxr_status status = CXR_OK;
    json_t *weights = json_object_get(root, "weights");
    json_t *bias = json_object_get(root, "bias");
    json_t *threshold = json_object_get(root, "threshold");
    json_t *min_age = json_object_get(root, "min_age_years");
    size_t expected = pooled_count + THUMB_SIDE * THUMB_SIDE + HIST_BINS;
    if (!json_is_object(root))
        status = cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                             "model contract: cxr.gate is not a JSON object (%s)", error.text);
    else if (!json_is_array(weights) || json_array_size(weights) != expected)
        status = cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                             "model contract: cxr.gate needs %zu weights (%zu pooled features, "
                             "%d thumbnail cells, %d histogram bins)",
                             expected, pooled_count, THUMB_SIDE * THUMB_SIDE, HIST_BINS);
    else if (!json_is_number(bias) || !json_is_number(threshold) ||
             (min_age && !json_is_number(min_age)))
        status = cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                             "model contract: cxr.gate bias, threshold and min_age_years must be "
                             "numbers");
    if (status == CXR_OK && (gate->weights = malloc(expected * sizeof(float))) == NULL)
        status = cxr_err_set(err, CXR_ERR_NOMEM, "model: out of memory for the gate");
    for (size_t i = 0; status == CXR_OK && i < expected; i++) {
        json_t *value = json_array_get(weights, i);
        if (!json_is_number(value) || !isfinite(json_number_value(value)))
            status = cxr_err_set(err, CXR_ERR_UNSUPPORTED,
                                 "model contract: cxr.gate weight %zu is not a finite number", i);
        else
            gate->weights[i] = (float)json_number_value(value);
    }
    if (status == CXR_OK) {
        gate->pooled_count = pooled_count;
        gate->bias = json_number_value(bias);
        gate->threshold = json_number_value(threshold);
        if (min_age)
            gate->min_age_years = json_number_value(min_age);
        gate->enabled = true;
    } else {
        cxr_model_gate_release(gate);
    }
    json_decref(root);
    return status;
}

double cxr_model_gate_score(const struct cxr_model_gate *gate, const float *pooled,
                            const float *tensor, uint32_t width, uint32_t height, float scale,
                            float offset)
{
    double logit = gate->bias;
    for (size_t i = 0; i < gate->pooled_count; i++)
        logit += (double)gate->weights[i] * pooled[i];
    const float *thumb_weights = gate->weights + gate->pooled_count;
    const float *hist_weights = thumb_weights + THUMB_SIDE * THUMB_SIDE;
    double cells[THUMB_SIDE * THUMB_SIDE] = {0};
    double counts[THUMB_SIDE * THUMB_SIDE] = {0};
    double histogram[HIST_BINS] = {0};
    for (uint32_t y = 0; y < height; y++) {
        uint32_t row = y * THUMB_SIDE / height;
        for (uint32_t x = 0; x < width; x++) {
            /* back from network units to the 8-bit grey level */
            double grey = (tensor[(size_t)y * width + x] - offset) / scale;
            grey = grey < 0 ? 0 : grey > 255 ? 255 : grey;
            size_t cell = row * THUMB_SIDE + x * THUMB_SIDE / width;
            cells[cell] += grey;
            counts[cell] += 1;
            int bin = (int)(grey / 8.0);
            histogram[bin < HIST_BINS ? bin : HIST_BINS - 1] += 1;
        }
    }
    double pixels = (double)width * height;
    for (size_t i = 0; i < THUMB_SIDE * THUMB_SIDE; i++)
        logit += thumb_weights[i] * (counts[i] ? cells[i] / counts[i] / 255.0 : 0.0);
    for (size_t i = 0; i < HIST_BINS; i++)
        logit += hist_weights[i] * histogram[i] / pixels;
    return 1.0 / (1.0 + exp(-logit));
}

/* Upper-cased copy of a tag value for comparisons. */
static void upper_copy(const char *text, char *out, size_t size)
{
    size_t i = 0;
    for (; text && text[i] && i + 1 < size; i++)
        out[i] = (char)toupper((unsigned char)text[i]);
    out[i] = '\0';
}

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

static bool contains_any(const char *text, const char *const *words, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (strstr(text, words[i]))
            return true;
    }
    return false;
}

static bool equals_any(const char *text, const char *const *words, size_t count)
{
    for (size_t i = 0; text && i < count; i++) {
        if (strcmp(text, words[i]) == 0)
            return true;
    }
    return false;
}

/* A chest spelling, and no other region: "THORACIC SPINE" (TSPINE's long form),
 * "BRUSTWIRBELSÄULE", "CHESTABDOMEN" (PS3.16's combined region) and rib series name the chest
 * but are not a frontal chest radiograph. */
static bool is_chest_part(const char *part)
{
    static const char *const chest[] = {"CHEST", "THORA",  "TORAX",    "TÓRAX", "LUNG",
                                        "BRUST", "POUMON", "POITRINE", "PECHO", "TORACE"};
    static const char *const other[] = {"SPINE", "WIRBEL",   "RACHIS", "COLUMNA", "ABD",
                                        "PELV",  "SHOULDER", "RIB",    "CLAVIC",  "STERN"};
    return contains_any(part, chest, COUNT_OF(chest)) &&
           !contains_any(part, other, COUNT_OF(other));
}

/* Age in years from an AS value ("045Y", "006M", "012W", "003D"); negative when unknown. */
static double age_years(const char *age)
{
    if (age == NULL || strlen(age) != 4)
        return -1;
    for (int i = 0; i < 3; i++) {
        if (!isdigit((unsigned char)age[i]))
            return -1;
    }
    double value = (age[0] - '0') * 100 + (age[1] - '0') * 10 + (age[2] - '0');
    switch (age[3]) {
    case 'Y':
        return value;
    case 'M':
        return value / 12.0;
    case 'W':
        return value * 7.0 / 365.25;
    case 'D':
        return value / 365.25;
    }
    return -1;
}

/* The For Processing storage classes (PS3.4 B.5): digital X-ray, mammography, intra-oral. */
static const char *const for_processing_classes[] = {
        "1.2.840.10008.5.1.4.1.1.1.1.1",
        "1.2.840.10008.5.1.4.1.1.1.2.1",
        "1.2.840.10008.5.1.4.1.1.1.3.1",
};

/* Fills *year, *month, *day from a DA value "YYYYMMDD"; false when it is not one. */
static bool parse_date(const char *text, int *year, int *month, int *day)
{
    if (text == NULL || strlen(text) != 8)
        return false;
    for (int i = 0; i < 8; i++) {
        if (!isdigit((unsigned char)text[i]))
            return false;
    }
    *year = (text[0] - '0') * 1000 + (text[1] - '0') * 100 + (text[2] - '0') * 10 + (text[3] - '0');
    *month = (text[4] - '0') * 10 + (text[5] - '0');
    *day = (text[6] - '0') * 10 + (text[7] - '0');
    return *month >= 1 && *month <= 12 && *day >= 1 && *day <= 31;
}

/* Completed years between the birth date and the study date; negative when either is not a
 * date or the birth comes after the study. Not today's date: an old study of a child is still
 * a child's image. */
static int age_at_study(const char *birth_date, const char *study_date)
{
    int by, bm, bd, sy, sm, sd;
    if (!parse_date(birth_date, &by, &bm, &bd) || !parse_date(study_date, &sy, &sm, &sd))
        return -1;
    int years = sy - by;
    if (sm < bm || (sm == bm && sd < bd))
        years--;
    return years;
}

bool cxr_model_gate_check_attributes(const struct cxr_model_gate *gate,
                                     const struct cxr_gate_attributes *image, char *reason,
                                     size_t size)
{
    /* RG is conventional film/screen radiography (e.g. a digitised film); RG, OT and SC
     * (secondary captures) and files without a Modality are left to the image layer. */
    static const char *const radiograph_modalities[] = {"CR", "DX", "RG", "OT", "SC"};
    static const char *const lateral_views[] = {"LL", "RL"};
    /* RLO and LLO are DICOM's oblique views; vendors also write "OBLIQUE", "LAO", "RPO" ... */
    static const char *const oblique_views[] = {"RLO", "LLO", "LAO", "RAO", "LPO", "RPO"};
    char value[128];
    upper_copy(image->modality, value, sizeof value);
    if (value[0] && !equals_any(value, radiograph_modalities, COUNT_OF(radiograph_modalities))) {
        snprintf(reason, size, "Modality %s is not a radiograph (CR or DX)", image->modality);
        return false;
    }
    upper_copy(image->body_part_examined, value, sizeof value);
    if (value[0] && !is_chest_part(value)) {
        snprintf(reason, size, "BodyPartExamined %s is not the chest", image->body_part_examined);
        return false;
    }
    upper_copy(image->view_position, value, sizeof value);
    if (equals_any(value, lateral_views, COUNT_OF(lateral_views)) ||
        (strstr(value, "LAT") && !strstr(value, "DECUB"))) {
        snprintf(reason, size, "ViewPosition %s is a lateral view", image->view_position);
        return false;
    }
    if (equals_any(value, oblique_views, COUNT_OF(oblique_views)) || strstr(value, "OBL")) {
        snprintf(reason, size, "ViewPosition %s is an oblique view", image->view_position);
        return false;
    }
    /* The coded view, for files that leave ViewPosition empty. PS3.16's DX views name the
     * projection in words ("left lateral", "right anterior oblique", "postero-anterior"). */
    upper_copy(image->view_code_meaning, value, sizeof value);
    if ((strstr(value, "LATERAL") && !strstr(value, "DECUBITUS")) || strstr(value, "OBLIQUE")) {
        snprintf(reason, size, "ViewCodeSequence \"%s\" is not a frontal view",
                 image->view_code_meaning);
        return false;
    }
    /* For Processing images are the detector's data before the vendor's image processing; the
     * network learnt from images for presentation, and a reader never sees these. */
    upper_copy(image->presentation_intent_type, value, sizeof value);
    if (strcmp(value, "FOR PROCESSING") == 0) {
        snprintf(reason, size,
                 "PresentationIntentType FOR PROCESSING: raw detector data, not an image for "
                 "presentation");
        return false;
    }
    if (equals_any(image->sop_class_uid, for_processing_classes,
                   COUNT_OF(for_processing_classes))) {
        snprintf(reason, size,
                 "SOPClassUID %s is a For Processing class: raw detector data, not an image for "
                 "presentation",
                 image->sop_class_uid);
        return false;
    }
    /* A frontal view has its rows running left-right (L or R); anterior or posterior rows mean
     * a lateral projection. */
    upper_copy(image->patient_orientation, value, sizeof value);
    if (value[0] && (value[0] == 'A' || value[0] == 'P')) {
        snprintf(reason, size, "PatientOrientation %s is a lateral view",
                 image->patient_orientation);
        return false;
    }
    /* Its columns run towards the feet (F); towards the head (H) the image is upside down. */
    const char *columns = strchr(value, '\\');
    if (columns && columns[1] == 'H') {
        snprintf(reason, size, "PatientOrientation %s: the image is upside down",
                 image->patient_orientation);
        return false;
    }
    /* CR and DX images are greyscale by their IODs; colour there means the tags and the pixels
     * disagree. A colour OT/SC image (a photographed film) goes on to the image layer. */
    char modality[16];
    upper_copy(image->modality, modality, sizeof modality);
    bool radiograph = strcmp(modality, "CR") == 0 || strcmp(modality, "DX") == 0;
    upper_copy(image->photometric_interpretation, value, sizeof value);
    if (radiograph && value[0] && strncmp(value, "MONOCHROME", 10) != 0) {
        snprintf(reason, size,
                 "PhotometricInterpretation %s: a radiograph is a greyscale image "
                 "(MONOCHROME1 or MONOCHROME2)",
                 image->photometric_interpretation);
        return false;
    }
    if (radiograph && image->samples_per_pixel > 1) {
        snprintf(reason, size, "%u samples per pixel: a radiograph is a greyscale image",
                 image->samples_per_pixel);
        return false;
    }
    uint32_t shorter = image->rows < image->columns ? image->rows : image->columns;
    uint32_t longer = image->rows < image->columns ? image->columns : image->rows;
    if (shorter < MIN_RADIOGRAPH_SIDE || longer > MAX_ASPECT_RATIO * shorter) {
        snprintf(reason, size, "image size %ux%u is not that of a chest radiograph", image->columns,
                 image->rows);
        return false;
    }
    double years = age_years(image->patient_age);
    if (years >= 0 && years < gate->min_age_years) {
        snprintf(reason, size, "PatientAge %s is below the model's intended age (%g years)",
                 image->patient_age, gate->min_age_years);
        return false;
    }
    int study_age = years < 0 ? age_at_study(image->patient_birth_date, image->study_date) : -1;
    if (study_age >= 0 && study_age < gate->min_age_years) {
        snprintf(reason, size,
                 "PatientBirthDate %s and StudyDate %s: age %d years is below the model's "
                 "intended age (%g years)",
                 image->patient_birth_date, image->study_date, study_age, gate->min_age_years);
        return false;
    }
    return true;
}
