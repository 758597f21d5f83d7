/* tests/test_models_rope.c — RoPE tables of the two networks.
 * DiT (spec §3.7-3.8): the spot values of the reference's precomputed
 * tables (F32 hex in the spec), read from the rows whose position ids carry
 * those positions, plus the identity rotation of image pad tokens.
 * Qwen3 (spec §4.3): the rotate-half table against a float64 evaluation. */
#include <math.h>
#include <string.h>

#include "common/zt_dtype.h"
#include "models/dit.h"
#include "models/qwen3.h"
#include "storage/catalog.h"
#include "tests/zt_test.h"

/* pair index m of (axis, k) with axes dims 32, 48, 48 */
static int pair(int axis, int k) { return axis == 0 ? k : axis == 1 ? 16 + k : 40 + k; }

static void expect(const float *cs, int row, int axis, int k, uint32_t re, uint32_t im, const char *what) {
    const float *e = cs + (size_t)row * 128 + 2 * pair(axis, k);
    ZT_CHECK(zt_f32_bits(e[0]) == re && zt_f32_bits(e[1]) == im, "%s: (%08x, %08x), reference (%08x, %08x)", what, zt_f32_bits(e[0]),
             zt_f32_bits(e[1]), re, im);
}

int main(void) {
    zt_model_config cfg;
    zt_err e = {0};
    ZT_CHECK(zt_config_preset("full", &cfg, &e) == ZT_OK, "preset: %s", e.msg);
    ZT_CHECK(cfg.head_dim == 128 && cfg.axes_dims[0] == 32 && cfg.axes_dims[1] == 48, "full config geometry");

    /* Grid 512 x 64 tokens (h up to 511, w up to 63), 512 caption rows:
     * image rows have axis-0 position lp + 1 = 513, caption row i has 1 + i. */
    const int ht = 512, wt = 64, ni = ht * wt, nip = ni, lp = 512;
    float *cs = malloc((size_t)(nip + lp) * 128 * sizeof *cs);
    ZT_CHECK(cs != NULL, "alloc");
    if (!cs) return zt_test_finish("test_models_rope");
    zt_dit_rope_table(&cfg, ht, wt, nip, lp, cs);
    expect(cs, nip + 128, 0, 1, 0xbf7e6fac, 0xbde2055a, "axis0 p=129 k=1");
    expect(cs, nip + 0, 0, 15, 0x3f7fff00, 0x3bb504b7, "axis0 p=1 k=15");
    expect(cs, 5 * wt + 7, 1, 3, 0xbf4d17bf, 0x3f193578, "axis1 p=5 k=3");
    expect(cs, 9 * wt + 63, 2, 23, 0x3f73caf6, 0x3e9c37f9, "axis2 p=63 k=23");
    expect(cs, 100, 0, 0, 0xbf1b024d, 0xbf4bbc53, "axis0 p=513 k=0");
    expect(cs, 511 * wt + 3, 1, 1, 0xbf735d03, 0xbe9edfeb, "axis1 p=511 k=1");
    /* caption rows: axes 1 and 2 at position 0 -> (1, 0) */
    expect(cs, nip + 7, 2, 5, 0x3f800000, 0x00000000, "caption axis2");
    free(cs);

    /* Image pad rows (ni..nip) rotate by identity; pad rows keep cap positions. */
    const int ht2 = 3, wt2 = 5, ni2 = 15, nip2 = 32, lp2 = 32;
    cs = malloc((size_t)(nip2 + lp2) * 128 * sizeof *cs);
    zt_dit_rope_table(&cfg, ht2, wt2, nip2, lp2, cs);
    int ident = 1;
    for (int r = ni2; r < nip2; r++)
        for (int m = 0; m < 64; m++) ident &= cs[(size_t)r * 128 + 2 * m] == 1.0f && cs[(size_t)r * 128 + 2 * m + 1] == 0.0f;
    ZT_CHECK(ident, "image pad rows are not the identity");
    /* image row (h=2, w=4): axis0 position lp2 + 1 = 33, float64 angle rounded to f32 */
    {
        const float *row = cs + (size_t)(2 * wt2 + 4) * 128;
        int ok = 1;
        for (int m = 0; m < 64; m++) {
            int axis = m < 16 ? 0 : m < 40 ? 1 : 2, k = m < 16 ? m : m < 40 ? m - 16 : m - 40;
            int d = cfg.axes_dims[axis], p = axis == 0 ? 33 : axis == 1 ? 2 : 4;
            float phi = (float)(p * (1.0 / pow(256.0, 2.0 * k / d)));
            ok &= fabsf(row[2 * m] - cosf(phi)) <= 1e-7f && fabsf(row[2 * m + 1] - sinf(phi)) <= 1e-7f;
        }
        ZT_CHECK(ok, "image row (2, 4) differs from the float64 frequencies");
    }
    free(cs);

    /* Qwen3 rotate-half table: positions 0..299, theta 1e6, hd 128. */
    const int L = 300, hd = 128;
    float *q = malloc((size_t)L * hd * sizeof *q);
    zt_qwen3_rope_table(L, hd, 1e6f, q);
    double worst = 0;
    for (int p = 0; p < L; p++)
        for (int d = 0; d < hd / 2; d++) {
            double ang = p / pow(1e6, 2.0 * d / hd);
            double dc = fabs(q[((size_t)p * 64 + d) * 2] - cos(ang)), ds = fabs(q[((size_t)p * 64 + d) * 2 + 1] - sin(ang));
            if (dc > worst) worst = dc;
            if (ds > worst) worst = ds;
        }
    /* f32 inv_freq and angle: |error| <= p * ulp(inv_freq) + ulp(angle) ~ 300 * 6e-8 */
    ZT_CHECK(worst < 5e-5, "qwen3 rope table off by %g", worst);
    ZT_CHECK(q[0] == 1.0f && q[1] == 0.0f, "position 0 is not the identity");
    free(q);
    return zt_test_finish("test_models_rope");
}
