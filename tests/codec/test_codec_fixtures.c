/* Codecs against DCMTK and GDCM: each fixture is one frame re-encoded by dcmcjpeg (JPEG
 * Lossless, every predictor, point transform), dcmcrle, dcmcjpls or gdcmconv --j2k (deflated
 * frames: Python's zlib; encapsulated uncompressed frames: the native bytes in one fragment),
 * with the stored values pydicom read from the native original
 * (make_fixtures.py). Decoding must give those values exactly. Argument: the fixture
 * directory. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "util/util.h"

static void *read_all(const char *path, size_t *size)
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

static int check_fixture(const char *dir, const char *stem)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.meta", dir, stem);
    FILE *meta = fopen(path, "r");
    if (meta == NULL)
        return 1;
    char syntax[65];
    char photometric[33];
    unsigned rows, columns, spp, bits_allocated, bits_stored, high_bit, representation, planar;
    int fields =
            fscanf(meta, "%64s %u %u %u %u %u %u %u %u %32s", syntax, &rows, &columns, &spp,
                   &bits_allocated, &bits_stored, &high_bit, &representation, &planar, photometric);
    fclose(meta);
    if (fields != 10) {
        printf("FAIL %s: bad meta\n", stem);
        return 1;
    }
    size_t fragment_size = 0;
    size_t expect_size = 0;
    snprintf(path, sizeof(path), "%s/%s.bin", dir, stem);
    uint8_t *fragment_bytes = read_all(path, &fragment_size);
    snprintf(path, sizeof(path), "%s/%s.expect", dir, stem);
    int32_t *expect = read_all(path, &expect_size);
    int failed = 1;
    struct cxr_dicom_fragment fragment = {fragment_bytes, fragment_size};
    struct cxr_dicom_pixel_desc desc = {
            .transfer_syntax_uid = syntax,
            .rows = rows,
            .columns = columns,
            .samples_per_pixel = spp,
            .number_of_frames = 1,
            .bits_allocated = (uint16_t)bits_allocated,
            .bits_stored = (uint16_t)bits_stored,
            .high_bit = (uint16_t)high_bit,
            .pixel_representation = (uint16_t)representation,
            .planar_configuration = (uint16_t)planar,
            .photometric_interpretation = photometric,
    };
    struct cxr_dicom_pixel_data pixels = {
            .encapsulated = true,
            .fragment_count = 1,
            .fragments = &fragment,
    };
    struct cxr_limits limits = cxr_limits_default();
    struct cxr_codec_frame frame;
    struct cxr_err err = CXR_ERR_INIT;
    size_t count = (size_t)rows * columns * spp;
    if (fragment_bytes == NULL || expect == NULL || expect_size != count * sizeof(int32_t)) {
        printf("FAIL %s: fixture files missing or inconsistent\n", stem);
    } else if (cxr_codec_frame_decode(&desc, &pixels, 0, &limits, &frame, &err) != CXR_OK) {
        printf("FAIL %s: %s\n", stem, err.message);
    } else {
        size_t mismatches = 0;
        size_t first = 0;
        for (size_t i = 0; i < count; i++) {
            if (frame.samples[i] != expect[i] && mismatches++ == 0)
                first = i;
        }
        if (mismatches)
            printf("FAIL %s (%s): %zu of %zu samples differ, first at %zu: %d != %d\n", stem,
                   cxr_codec_syntax_name(syntax), mismatches, count, first, frame.samples[first],
                   expect[first]);
        else
            printf("ok   %s (%s, %ux%u, %u bits)\n", stem, cxr_codec_syntax_name(syntax), columns,
                   rows, bits_stored);
        failed = mismatches != 0;
        cxr_codec_frame_release(&frame);
    }
    free(fragment_bytes);
    free(expect);
    return failed;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_codec_fixtures FIXTURE_DIR\n");
        return 2;
    }
    DIR *dir = opendir(argv[1]);
    if (dir == NULL) {
        perror(argv[1]);
        return 1;
    }
    int checked = 0;
    int failures = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        size_t length = strlen(entry->d_name);
        if (length < 6 || strcmp(entry->d_name + length - 5, ".meta") != 0)
            continue;
        char stem[256];
        snprintf(stem, sizeof(stem), "%.*s", (int)(length - 5), entry->d_name);
        failures += check_fixture(argv[1], stem);
        checked++;
    }
    closedir(dir);
    printf("%d fixtures, %d failed\n", checked, failures);
    return checked >= 40 && failures == 0 ? 0 : 1;
}
