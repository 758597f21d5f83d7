/* tests/test_banded.c — the row-band forms of conv2d and GroupNorm (ops.h)
 * give the same bits as the whole-image ops, on the CPU backend and, when a
 * GPU is present, on CUDA. The banded VAE decode (models/vae.c) relies on it:
 * a plan that decodes in bands must not change the image.
 *
 * For random data at odd shapes and odd band heights: conv2d (k 1 and 3,
 * bias, residual) computed band by band into a poisoned output must equal
 * the whole-image conv; GroupNorm statistics gathered band by band
 * (zt_op_groupnorm_partial in row order and out of order) then finalized,
 * and applied band by band, must equal zt_op_groupnorm. f32 on CUDA goes
 * through cuBLASLt, whose kernel may depend on the band height: its banded
 * conv is checked to 1e-6 relative, not bitwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/zt_dtype.h"
#include "kernels/ops.h"

static int g_fail, g_checks;
static uint64_t g_rng = 0x2545F4914F6CDD1Dull;

static double rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static void *host_rand(size_t n, zt_dtype dt, double scale, double offset) {
    void *p = malloc(n * zt_dtype_size(dt));
    for (size_t i = 0; i < n; i++) {
        const float v = (float)(rnd() * scale + offset);
        if (dt == ZT_DT_F32) ((float *)p)[i] = v;
        else ((uint16_t *)p)[i] = zt_f32_to_bf16(v);
    }
    return p;
}

static void *dev_of(zt_ops *o, const void *h, size_t bytes) {
    void *d = zt_mem_alloc(o, bytes ? bytes : 1);
    if (!d) {
        fprintf(stderr, "out of backend memory (%zu bytes)\n", bytes);
        exit(1);
    }
    if (h) zt_mem_upload(o, d, h, bytes);
    else zt_mem_fill_u8(o, d, 0xFF, bytes); /* poison: an unwritten element shows as NaN */
    return d;
}

static float at(const void *p, zt_dtype dt, size_t i) {
    return dt == ZT_DT_F32 ? ((const float *)p)[i] : zt_bf16_to_f32(((const uint16_t *)p)[i]);
}

/* a (whole) vs b (banded): bitwise, or to rel L2 tol when tol > 0 */
static void compare(const char *what, zt_ops *o, const void *da, const void *db, size_t n, zt_dtype dt, double tol) {
    const size_t bytes = n * zt_dtype_size(dt);
    char *a = malloc(bytes), *b = malloc(bytes);
    zt_mem_download(o, a, da, bytes);
    zt_mem_download(o, b, db, bytes);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double x = at(a, dt, i), y = at(b, dt, i);
        num += (x - y) * (x - y);
        den += x * x;
    }
    const double err = sqrt(num / (den > 0 ? den : 1));
    const int ok = tol > 0 ? err <= tol /* NaN (unwritten) fails */ : memcmp(a, b, bytes) == 0;
    g_checks++;
    if (!ok) {
        g_fail++;
        printf("FAIL %s %s: banded differs from whole%s (rel L2 %.3g)\n",
               zt_ops_backend(o) == ZT_BACKEND_CUDA ? "cuda" : "cpu", what, tol > 0 ? " beyond tolerance" : "", err);
    }
    free(a);
    free(b);
}

static void t_conv(zt_ops *o, int h, int w, int cin, int cout, int k, zt_dtype dt, int resid, int band) {
    const size_t es = zt_dtype_size(dt), hw = (size_t)h * w, K = (size_t)k * k * cin;
    void *hx = host_rand(hw * cin, dt, 1.0, 0.0), *hwt = host_rand((size_t)cout * K, dt, 1.0 / sqrt((double)K), 0.0);
    void *hb = host_rand((size_t)cout, dt, 0.5, 0.0), *hr = host_rand(hw * cout, dt, 1.0, 0.0);
    void *x = dev_of(o, hx, hw * cin * es), *wt = dev_of(o, hwt, (size_t)cout * K * es), *b = dev_of(o, hb, cout * es);
    void *r = dev_of(o, hr, hw * cout * es), *y = dev_of(o, NULL, hw * cout * es), *yb = dev_of(o, NULL, hw * cout * es);
    zt_conv2d c = {.h = h, .w = w, .cin = cin, .cout = cout, .k = k, .dt = dt, .x = x, .wgt = wt, .bias = b,
                   .residual = resid ? r : NULL, .y = y};
    size_t wsb = zt_conv2d_workspace_size(o, &c);
    void *ws = wsb ? dev_of(o, NULL, wsb) : NULL;
    zt_op_conv2d(o, &c, ws);
    for (int y0 = 0; y0 < h; y0 += band) {
        const int rows = h - y0 < band ? h - y0 : band, x0 = y0 - k / 2 > 0 ? y0 - k / 2 : 0;
        zt_conv2d cb = c;
        cb.band_y0 = y0;
        cb.band_rows = rows;
        cb.x = (const char *)x + (size_t)x0 * w * cin * es;
        cb.residual = resid ? (const char *)r + (size_t)y0 * w * cout * es : NULL;
        cb.y = (char *)yb + (size_t)y0 * w * cout * es;
        size_t wsb2 = zt_conv2d_workspace_size(o, &cb);
        if (wsb2 > wsb) {
            printf("FAIL conv2d: a band needs more workspace (%zu) than the whole image (%zu)\n", wsb2, wsb);
            g_fail++;
        }
        zt_op_conv2d(o, &cb, ws);
    }
    zt_ops_sync(o);
    char what[128];
    snprintf(what, sizeof what, "conv2d %dx%d %d->%d k%d %s%s band %d", h, w, cin, cout, k, zt_dtype_name(dt),
             resid ? " resid" : "", band);
    const int inexact = dt == ZT_DT_F32 && zt_ops_backend(o) == ZT_BACKEND_CUDA && k == 3;
    compare(what, o, y, yb, hw * cout, dt, inexact ? 1e-6 : 0);
    zt_mem_free(o, ws);
    zt_mem_free(o, x); zt_mem_free(o, wt); zt_mem_free(o, b); zt_mem_free(o, r); zt_mem_free(o, y); zt_mem_free(o, yb);
    free(hx); free(hwt); free(hb); free(hr);
}

static void t_groupnorm(zt_ops *o, int h, int w, int c, int groups, zt_dtype dt, int silu, double offset, int band) {
    const size_t es = zt_dtype_size(dt), hw = (size_t)h * w;
    void *hx = host_rand(hw * c, dt, 1.5, offset), *hg = host_rand(c, ZT_DT_BF16, 0.5, 1.0);
    void *hbe = host_rand(c, ZT_DT_BF16, 0.5, 0.0);
    void *x = dev_of(o, hx, hw * c * es), *ga = dev_of(o, hg, c * 2), *be = dev_of(o, hbe, c * 2);
    void *y = dev_of(o, NULL, hw * c * es), *yb = dev_of(o, NULL, hw * c * es);
    zt_groupnorm g = {.hw = (int)hw, .w = w, .c = c, .groups = groups, .x = x, .y = y, .dt = dt, .gamma = ga,
                      .beta = be, .gb_dt = ZT_DT_BF16, .eps = 1e-6f, .silu = silu};
    const size_t sb = zt_groupnorm_stats_size(o, &g);
    void *ws = dev_of(o, NULL, zt_groupnorm_workspace_size(o, &g)), *st = dev_of(o, NULL, sb);
    zt_op_groupnorm(o, &g, ws);
    /* partial sums of the bands in reverse order: each row's sums are its own */
    const int nb = (h + band - 1) / band;
    for (int i = nb - 1; i >= 0; i--) {
        const int y0 = i * band, rows = h - y0 < band ? h - y0 : band;
        zt_groupnorm gb = g;
        gb.hw = rows * w;
        gb.x = (const char *)x + (size_t)y0 * w * c * es;
        zt_op_groupnorm_partial(o, &gb, y0, st);
    }
    zt_op_groupnorm_finalize(o, &g, st);
    for (int y0 = 0; y0 < h; y0 += band) {
        const int rows = h - y0 < band ? h - y0 : band;
        zt_groupnorm gb = g;
        gb.hw = rows * w;
        gb.x = (const char *)x + (size_t)y0 * w * c * es;
        gb.y = (char *)yb + (size_t)y0 * w * c * es;
        zt_op_groupnorm_apply(o, &gb, st);
    }
    zt_ops_sync(o);
    char what[128];
    snprintf(what, sizeof what, "groupnorm %dx%d c%d g%d %s%s mean%+.0f band %d", h, w, c, groups, zt_dtype_name(dt),
             silu ? " silu" : "", offset, band);
    compare(what, o, y, yb, hw * c, dt, 0);
    zt_mem_free(o, ws); zt_mem_free(o, st);
    zt_mem_free(o, x); zt_mem_free(o, ga); zt_mem_free(o, be); zt_mem_free(o, y); zt_mem_free(o, yb);
    free(hx); free(hg); free(hbe);
}

static void run(zt_ops *o) {
    const zt_dtype B = ZT_DT_BF16, F = ZT_DT_F32;
    for (int d = 0; d < 2; d++) {
        const zt_dtype dt = d ? F : B;
        t_conv(o, 13, 11, 16, 24, 3, dt, 1, 1);
        t_conv(o, 13, 11, 16, 24, 3, dt, 0, 4);
        t_conv(o, 29, 7, 32, 40, 3, dt, 1, 5);
        t_conv(o, 17, 9, 24, 8, 1, dt, 1, 3);
        t_conv(o, 33, 19, 64, 3, 3, dt, 0, 8);
        t_conv(o, 9, 12, 128, 128, 3, dt, 1, 2);
        t_conv(o, 21, 13, 64, 256, 3, dt, 1, 5); /* Hopper: the wgmma kernel at both widths */
        t_groupnorm(o, 13, 11, 64, 32, dt, 1, 0.0, 3);
        t_groupnorm(o, 40, 33, 128, 32, dt, 0, 20.0, 7);
        t_groupnorm(o, 9, 5, 36, 4, dt, 1, 0.0, 1);
        t_groupnorm(o, 64, 64, 256, 32, dt, 1, 0.0, 16);
    }
}

int main(void) {
    zt_err e;
    zt_ops *cpu = NULL, *gpu = NULL;
    zt_ops_config cc = {.backend = ZT_BACKEND_CPU};
    if (zt_ops_create(&cc, &cpu, &e)) {
        fprintf(stderr, "cpu ops: %s\n", e.msg);
        return 1;
    }
    run(cpu);
    if (zt_cuda_available()) {
        zt_ops_config gc = {.backend = ZT_BACKEND_CUDA};
        if (zt_ops_create(&gc, &gpu, &e)) {
            fprintf(stderr, "cuda ops: %s\n", e.msg);
            return 1;
        }
        run(gpu);
        zt_ops_destroy(gpu);
    } else {
        printf("no CUDA device: CPU backend only\n");
    }
    zt_ops_destroy(cpu);
    printf("%d checks, %d failed\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}
