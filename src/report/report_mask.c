/* The body mask of a radiograph, found from its pixels: the heatmap may colour only the patient,
 * never the air around the body, a collimator's flat band or a burnt-in label. Works on a small
 * box-averaged copy of the image (long side at most CXR_REPORT_MASK_MAX_SIDE), so its cost does
 * not grow with the detector size. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

struct grid_sink {
    float *grid;
    uint32_t width;
};

static void grid_row(void *context, uint32_t y, const float *row)
{
    struct grid_sink *sink = context;
    memcpy(sink->grid + (size_t)y * sink->width, row, sizeof(float) * sink->width);
}

/* Box-average shrink by the integer factor (edge cells average the pixels they cover), into
 * floats, with image/'s resampler: the grid spans width * factor source pixels. */
static enum cxr_status shrink(const struct cxr_gray8 *source, uint32_t factor, uint32_t width,
                              uint32_t height, float *grid, struct cxr_err *err)
{
    struct cxr_image_resampler *resampler = NULL;
    enum cxr_status status = cxr_image_resampler_create_extent(
            source->width, source->height, 1, width, height, (double)width * factor,
            (double)height * factor, &resampler, err);
    if (status != CXR_OK)
        return status;
    struct grid_sink sink = {grid, width};
    cxr_image_resampler_run_u8(resampler, source->pixels, grid_row, &sink);
    cxr_image_resampler_destroy(resampler);
    return CXR_OK;
}

/* The 4-connected neighbours of grid cell i, into next; returns how many. */
static int neighbours(uint32_t i, uint32_t width, uint32_t height, uint32_t next[4])
{
    uint32_t x = i % width, y = i / width;
    int n = 0;
    if (x > 0)
        next[n++] = i - 1;
    if (x + 1 < width)
        next[n++] = i + 1;
    if (y > 0)
        next[n++] = i - width;
    if (y + 1 < height)
        next[n++] = i + width;
    return n;
}

/* Mean and standard deviation over the (2r+1)^2 window, clipped at the edges. */
static void local_statistics(const float *grid, uint32_t width, uint32_t height, int radius,
                             float *mean, float *deviation)
{
    for (uint32_t y = 0; y < height; y++) {
        for (uint32_t x = 0; x < width; x++) {
            double sum = 0, squares = 0;
            int count = 0;
            for (int dy = -radius; dy <= radius; dy++) {
                int sy = (int)y + dy;
                if (sy < 0 || sy >= (int)height)
                    continue;
                for (int dx = -radius; dx <= radius; dx++) {
                    int sx = (int)x + dx;
                    if (sx < 0 || sx >= (int)width)
                        continue;
                    double v = grid[(size_t)sy * width + (uint32_t)sx];
                    sum += v;
                    squares += v * v;
                    count++;
                }
            }
            double m = sum / count, variance = squares / count - m * m;
            mean[(size_t)y * width + x] = (float)m;
            deviation[(size_t)y * width + x] = (float)sqrt(variance > 0 ? variance : 0);
        }
    }
}

/* Value below which the given share of the grid lies (nearest rank on a 256-bin histogram). */
static float percentile(const float *grid, size_t count, double share)
{
    size_t histogram[256] = {0};
    for (size_t i = 0; i < count; i++) {
        int bin = (int)grid[i];
        histogram[bin < 0 ? 0 : bin > 255 ? 255 : bin]++;
    }
    size_t target = (size_t)(share * (double)count), seen = 0;
    for (int bin = 0; bin < 256; bin++) {
        seen += histogram[bin];
        if (seen > target)
            return (float)bin;
    }
    return 255.0f;
}

/* Marks (value 1) every cell reachable through cells for which passes[] is set, 4-connected,
 * from the cells within ring cells of the image border that pass or are seeds[] (NULL: none).
 * A ring wider than one cell lets the flood start inside a thin bright line along the edge (a
 * scanner's frame, a film edge), which would otherwise seal the air behind it. queue has room
 * for every cell. */
static void flood_from_border(const uint8_t *passes, const uint8_t *seeds, uint32_t width,
                              uint32_t height, uint32_t ring, uint8_t *marked, uint32_t *queue)
{
    size_t head = 0, tail = 0;
    for (uint32_t y = 0; y < height; y++) {
        for (uint32_t x = 0; x < width; x++) {
            size_t i = (size_t)y * width + x;
            bool border = x < ring || y < ring || x + ring >= width || y + ring >= height;
            if (border && (passes[i] || (seeds && seeds[i])) && !marked[i]) {
                marked[i] = 1;
                queue[tail++] = (uint32_t)i;
            }
        }
    }
    while (head < tail) {
        uint32_t i = queue[head++];
        uint32_t next[4];
        int n = neighbours(i, width, height, next);
        for (int k = 0; k < n; k++) {
            if (passes[next[k]] && !marked[next[k]]) {
                marked[next[k]] = 1;
                queue[tail++] = next[k];
            }
        }
    }
}

/* Marks as passable the lines (rows or columns) running in from each edge in which at least
 * nine cells in ten are bright and flat: a collimator band or a bright frame; stops at the
 * first line that is not, and at a quarter of the image. */
static void mark_bands(const uint8_t *bright, uint32_t width, uint32_t height, uint8_t *passes)
{
    for (int side = 0; side < 4; side++) {
        bool rows = side < 2; /* 0 top, 1 bottom, 2 left, 3 right */
        uint32_t lines = rows ? height : width, length = rows ? width : height;
        for (uint32_t depth = 0; depth < lines / 4; depth++) {
            uint32_t line = side % 2 ? lines - 1 - depth : depth;
            uint32_t hits = 0;
            for (uint32_t j = 0; j < length; j++)
                hits += bright[rows ? (size_t)line * width + j : (size_t)j * width + line];
            if (10 * hits < 9 * length)
                break;
            for (uint32_t j = 0; j < length; j++)
                passes[rows ? (size_t)line * width + j : (size_t)j * width + line] = 1;
        }
    }
}

/* Keeps only the largest 4-connected component of inside (labels scratch: 0 = unvisited). */
static void keep_largest(uint8_t *inside, uint32_t width, uint32_t height, uint32_t *labels,
                         uint32_t *queue)
{
    size_t count = (size_t)width * height;
    memset(labels, 0, count * sizeof(*labels));
    uint32_t label = 0, best_label = 0;
    size_t best_size = 0;
    for (size_t start = 0; start < count; start++) {
        if (!inside[start] || labels[start])
            continue;
        label++;
        size_t head = 0, tail = 0;
        labels[start] = label;
        queue[tail++] = (uint32_t)start;
        while (head < tail) {
            uint32_t i = queue[head++];
            uint32_t next[4];
            int n = neighbours(i, width, height, next);
            for (int k = 0; k < n; k++) {
                if (inside[next[k]] && !labels[next[k]]) {
                    labels[next[k]] = label;
                    queue[tail++] = next[k];
                }
            }
        }
        if (tail > best_size) {
            best_size = tail;
            best_label = label;
        }
    }
    for (size_t i = 0; i < count; i++)
        inside[i] = labels[i] == best_label && best_label != 0;
}

enum cxr_status cxr_report_mask_compute(const struct cxr_gray8 *source,
                                        struct cxr_report_mask *mask, struct cxr_err *err)
{
    if (source == NULL || source->pixels == NULL || source->width == 0 || source->height == 0 ||
        mask == NULL)
        return cxr_err_set(err, CXR_ERR_INVALID_ARG, "body mask: empty image");
    uint32_t longest = source->width > source->height ? source->width : source->height;
    uint32_t factor = (longest + CXR_REPORT_MASK_MAX_SIDE - 1) / CXR_REPORT_MASK_MAX_SIDE;
    uint32_t width = (source->width + factor - 1) / factor;
    uint32_t height = (source->height + factor - 1) / factor;
    size_t count = (size_t)width * height;

    float *grid = malloc(count * sizeof(float));
    float *mean = malloc(count * sizeof(float));
    float *deviation = malloc(count * sizeof(float));
    uint8_t *passes = malloc(count);
    uint8_t *outside = calloc(count, 1);
    uint32_t *queue = malloc(count * sizeof(uint32_t));
    uint32_t *labels = malloc(count * sizeof(uint32_t));
    if (!grid || !mean || !deviation || !passes || !outside || !queue || !labels) {
        free(grid);
        free(mean);
        free(deviation);
        free(passes);
        free(outside);
        free(queue);
        free(labels);
        return cxr_err_set(err, CXR_ERR_NOMEM, "body mask: out of memory");
    }
    enum cxr_status shrunk = shrink(source, factor, width, height, grid, err);
    if (shrunk != CXR_OK) {
        free(grid);
        free(mean);
        free(deviation);
        free(passes);
        free(outside);
        free(queue);
        free(labels);
        return shrunk;
    }
    local_statistics(grid, width, height, 2, mean, deviation);

    /* The air around the patient is the darkest part of the image and flat (only noise).
     * Lungs that touch the image edge are dark too, but rib and vessel texture keeps them from
     * being flat, which is why both tests must pass for the flood to cross a cell. A collimator
     * band is bright and flat, but so is a saturated abdomen or shoulder: only whole straight
     * lines along an edge count as a band. Limits are relative to the image's own range, so
     * windowing and photographs of film need no tuning. */
    float low = percentile(grid, count, 0.02), high = percentile(grid, count, 0.98);
    float range = high - low > 1.0f ? high - low : 1.0f;
    float dark_limit = low + CXR_REPORT_MASK_DARK * range;
    float bright_limit = high - CXR_REPORT_MASK_BRIGHT * range;
    float flat_limit = CXR_REPORT_MASK_FLAT * range;
    uint8_t *bright = outside; /* scratch until the flood */
    uint8_t *seeds = (uint8_t *)labels;
    for (size_t i = 0; i < count; i++) {
        bool flat = deviation[i] <= flat_limit;
        passes[i] = flat && mean[i] <= dark_limit;
        bright[i] = flat && mean[i] >= bright_limit;
        /* Near the edge, dark air counts even where the flatness window reaches a bright
         * frame line; inside, only flat cells carry the flood. */
        seeds[i] = grid[i] <= dark_limit;
    }
    mark_bands(bright, width, height, passes);
    memset(outside, 0, count);
    flood_from_border(passes, seeds, width, height, CXR_REPORT_MASK_RING, outside, queue);
    /* A frame line along the edge with air just inside it is not the body. */
    uint32_t ring = CXR_REPORT_MASK_RING;
    for (uint32_t y = 0; y < height; y++) {
        for (uint32_t x = 0; x < width; x++) {
            size_t i = (size_t)y * width + x;
            if (outside[i] || width <= 2 * ring || height <= 2 * ring)
                continue;
            if ((x < ring && outside[i - x + ring]) ||
                (x + ring >= width && outside[i + (width - 1 - x) - ring]) ||
                (y < ring && outside[i + (size_t)(ring - y) * width]) ||
                (y + ring >= height && outside[i - (size_t)(ring - (height - 1 - y)) * width]))
                outside[i] = 1;
        }
    }

    /* The flatness window straddles the skin line, so the flood stops up to its radius short
     * of the body; dark cells next to the air are air too (the chest wall, bright, stops this
     * growth before the lungs). */
    for (int step = 0; step < 2; step++) {
        for (size_t i = 0; i < count; i++) {
            if (outside[i] || grid[i] > dark_limit)
                continue;
            uint32_t x = (uint32_t)(i % width), y = (uint32_t)(i / width);
            if ((x > 0 && outside[i - 1] == 1) || (x + 1 < width && outside[i + 1] == 1) ||
                (y > 0 && outside[i - width] == 1) || (y + 1 < height && outside[i + width] == 1))
                outside[i] = 2; /* grown in this step: not a seed until the next */
        }
        for (size_t i = 0; i < count; i++)
            outside[i] = outside[i] ? 1 : 0;
    }

    /* The body is what the flood did not reach: its largest piece (burnt-in labels and markers
     * floating in the air are separate pieces), with holes filled (a flat dark patch inside the
     * body is still the patient). */
    for (size_t i = 0; i < count; i++)
        passes[i] = !outside[i];
    keep_largest(passes, width, height, labels, queue);
    for (size_t i = 0; i < count; i++)
        outside[i] = 0;
    uint8_t *not_body = (uint8_t *)mean; /* reuse: count bytes fit in count floats */
    for (size_t i = 0; i < count; i++)
        not_body[i] = !passes[i];
    flood_from_border(not_body, NULL, width, height, 1, outside, queue);
    size_t inside_count = 0;
    for (size_t i = 0; i < count; i++) {
        passes[i] = !outside[i];
        inside_count += passes[i];
    }
    /* A mask that keeps almost nothing means the image is not what the rules expect (e.g. a
     * uniform test pattern); then the whole image counts as the body rather than hiding the
     * finding. */
    if (inside_count < count / 10)
        memset(passes, 1, count);

    free(grid);
    free(mean);
    free(deviation);
    free(outside);
    free(queue);
    free(labels);
    mask->width = width;
    mask->height = height;
    mask->factor = factor;
    mask->source_width = source->width;
    mask->source_height = source->height;
    mask->inside = passes;
    return CXR_OK;
}

void cxr_report_mask_release(struct cxr_report_mask *mask)
{
    if (mask == NULL)
        return;
    free(mask->inside);
    memset(mask, 0, sizeof(*mask));
}
