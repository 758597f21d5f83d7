/* tests/fuzz/fuzz_image_in.c — libFuzzer harness of the PNG/JPEG loader
 * (api/image_in.h). The input is a file; decoded under a 1 Mpixel cap (so
 * a header may promise anything without exhausting memory), then, when it
 * decodes, checked (size within the cap, pixels present), resized to a
 * size picked from the first bytes with PIL's Lanczos, turned into the
 * tensor and the mask (every value in range). Seeds: tests/fuzz/seeds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/image_in.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    zt_image im;
    zt_err e;
    if (zt_image_decode(data, n, "fuzz", 1u << 20, &im, &e)) {
        if (im.rgb || !e.msg[0]) abort(); /* failure: nothing returned, a reason given */
        return 0;
    }
    if (im.w < 1 || im.h < 1 || (uint64_t)im.w * im.h > (1u << 20) || !im.rgb) abort();
    const int w = 1 + (n > 8 ? data[n / 2] % 48 : 7), h = 1 + (n > 8 ? data[n / 3] % 48 : 5);
    zt_image r;
    if (zt_image_resize(&im, w, h, &r, &e) == 0) {
        const size_t np = (size_t)w * h;
        float *t = malloc(np * 3 * sizeof *t), *m = malloc(np * sizeof *m);
        uint8_t *g = malloc(np);
        if (t && m && g) {
            zt_image_to_tensor(&r, t);
            zt_image_to_gray(&r, g);
            zt_image_binarize(g, np, m);
            for (size_t i = 0; i < np * 3; i++)
                if (!(t[i] >= -1.0f && t[i] <= 1.0f)) abort();
            for (size_t i = 0; i < np; i++)
                if (m[i] != 0.0f && m[i] != 1.0f) abort();
        }
        free(t);
        free(m);
        free(g);
        zt_image_free(&r);
    }
    zt_image_free(&im);
    return 0;
}
