/* Contrast-limited adaptive histogram equalisation (CLAHE) of an 8-bit grey image, in integer
 * arithmetic so that it matches the training tools' clahe() (tools/train/data.py) exactly. */
#include <math.h>
#include <stdlib.h>

#include "image/image.h"

/* Along one axis of n pixels cut into `tiles` tiles (tile k covers [k*n/tiles, (k+1)*n/tiles)):
 * the two tiles whose centres bracket a pixel, with the second's weight w / d. Outside the
 * outer centres one tile counts (w = 0, d = 1). */
struct axis_blend {
    uint32_t first, second, w, d;
};

/* Twice the centre of tile k: its first plus its last pixel. */
static uint64_t centre2(uint32_t k, uint32_t n, uint32_t tiles)
{
    return (uint64_t)k * n / tiles + (uint64_t)(k + 1) * n / tiles - 1;
}

static void blend_axis(uint32_t n, uint32_t tiles, struct axis_blend *out)
{
    uint32_t k = 0;
    for (uint32_t x = 0; x < n; x++) {
        uint64_t p = 2 * (uint64_t)x;
        struct axis_blend b = {0, 0, 0, 1};
        if (p >= centre2(tiles - 1, n, tiles)) {
            b.first = b.second = tiles - 1;
        } else if (p > centre2(0, n, tiles)) {
            while (centre2(k + 1, n, tiles) <= p)
                k++;
            b.first = k;
            b.second = k + 1;
            b.w = (uint32_t)(p - centre2(k, n, tiles));
            b.d = (uint32_t)(centre2(k + 1, n, tiles) - centre2(k, n, tiles));
        }
        out[x] = b;
    }
}

/* One tile's map from grey level to equalised level: the histogram clipped at `limit`, the
 * clipped excess spread evenly over the 256 bins, the cumulative count scaled to 0..255 with
 * halves rounded up. */
static void tile_map(const uint64_t histogram[256], uint64_t pixels, uint64_t limit,
                     uint8_t map[256])
{
    uint64_t excess = 0;
    for (int g = 0; g < 256; g++)
        excess += histogram[g] > limit ? histogram[g] - limit : 0;
    uint64_t each = excess / 256, rest = excess % 256, cumulative = 0;
    for (uint64_t g = 0; g < 256; g++) {
        uint64_t count = histogram[g] < limit ? histogram[g] : limit;
        cumulative += count + each + ((g + 1) * rest) / 256 - (g * rest) / 256;
        uint64_t level = (cumulative * 510 + pixels) / (2 * pixels);
        map[g] = (uint8_t)(level > 255 ? 255 : level);
    }
}

enum cxr_status cxr_image_clahe(uint8_t *pixels, uint32_t width, uint32_t height, uint32_t tiles,
                                double clip, struct cxr_err *err)
{
    if (pixels == NULL || width == 0 || height == 0 || tiles == 0 || tiles > width ||
        tiles > height || tiles > CXR_IMAGE_CLAHE_MAX_TILES || !(clip >= 1.0 && clip <= 256.0))
        return cxr_err_set(err, CXR_ERR_INVALID_ARG,
                           "image: CLAHE of %ux%u with %u tiles and clip %g is not possible", width,
                           height, tiles, clip);
    struct axis_blend *across = malloc(((size_t)width + height) * sizeof(*across));
    uint8_t *maps = malloc((size_t)tiles * tiles * 256);
    if (across == NULL || maps == NULL) {
        free(across);
        free(maps);
        return cxr_err_set(err, CXR_ERR_NOMEM, "image: out of memory for CLAHE");
    }
    struct axis_blend *down = across + width;
    blend_axis(width, tiles, across);
    blend_axis(height, tiles, down);

    for (uint32_t ty = 0; ty < tiles; ty++) {
        uint32_t y0 = (uint32_t)((uint64_t)ty * height / tiles);
        uint32_t y1 = (uint32_t)((uint64_t)(ty + 1) * height / tiles);
        for (uint32_t tx = 0; tx < tiles; tx++) {
            uint32_t x0 = (uint32_t)((uint64_t)tx * width / tiles);
            uint32_t x1 = (uint32_t)((uint64_t)(tx + 1) * width / tiles);
            uint64_t histogram[256] = {0};
            for (uint32_t y = y0; y < y1; y++)
                for (uint32_t x = x0; x < x1; x++)
                    histogram[pixels[(size_t)y * width + x]]++;
            uint64_t count = (uint64_t)(y1 - y0) * (x1 - x0);
            double scaled = floor(clip * (double)count / 256.0);
            uint64_t limit = scaled < 1.0 ? 1 : (uint64_t)scaled;
            tile_map(histogram, count, limit, maps + ((size_t)ty * tiles + tx) * 256);
        }
    }

    /* Each pixel reads only its own level, so the maps can be applied in place. */
    for (uint32_t y = 0; y < height; y++) {
        struct axis_blend by = down[y];
        const uint8_t *upper = maps + (size_t)by.first * tiles * 256;
        const uint8_t *lower = maps + (size_t)by.second * tiles * 256;
        uint8_t *row = pixels + (size_t)y * width;
        for (uint32_t x = 0; x < width; x++) {
            struct axis_blend bx = across[x];
            uint8_t g = row[x];
            uint64_t top = (uint64_t)(bx.d - bx.w) * upper[bx.first * 256 + g] +
                           (uint64_t)bx.w * upper[bx.second * 256 + g];
            uint64_t bottom = (uint64_t)(bx.d - bx.w) * lower[bx.first * 256 + g] +
                              (uint64_t)bx.w * lower[bx.second * 256 + g];
            uint64_t num = (uint64_t)(by.d - by.w) * top + (uint64_t)by.w * bottom;
            uint64_t den = (uint64_t)bx.d * by.d;
            row[x] = (uint8_t)((2 * num + den) / (2 * den));
        }
    }
    free(across);
    free(maps);
    return CXR_OK;
}
