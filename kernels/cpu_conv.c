/* kernels/cpu_conv.c — the VAE decoder ops on the CPU (ops.h, VAE
 * decoder): latent scaling, 2-D convolution, nearest 2x upsampling and the
 * uint8 image mapping. Layout NHWC ([H*W, C], channels fastest). */
#include <math.h>

#include "kernels/cpu_common.h"
#include "kernels/cpu_matmul.h"

void zt_cpu_vae_input(zt_ops *ops, int c, int h, int w, const float *lat, float mul, float add, void *y,
                      zt_dtype y_dt) {
    (void)ops;
    ZT_ASSERT(zt_cpu_act_dtype(y_dt) && c >= 0 && h >= 0 && w >= 0);
    const int64_t hw = (int64_t)h * w;
    for (int64_t p = 0; p < hw; p++)
        for (int ch = 0; ch < c; ch++) {
            const float scaled = lat[(int64_t)ch * hw + p] * mul;
            zt_cpu_st(y, y_dt, p * c + ch, scaled + add);
        }
}

/* Convolution = im2col(x)[h*w, k*k*cin] · wᵀ with w [cout, k*k*cin] (its
 * [Cout, kh, kw, Cin] layout is already the im2col column order). The
 * matmul engine gathers the im2col rows straight into its packed panels, so
 * no workspace is needed. Epilogue: + bias, + residual, one rounding. */
static void zt_conv_epilogue(void *ctx, int m0, int mb, int n0, int nb, const float *acc, int ldc) {
    const zt_conv2d *c = ctx;
    for (int i = 0; i < mb; i++) {
        const int64_t row = (int64_t)(m0 + i) * c->cout;
        for (int j = 0; j < nb; j++) {
            float t = acc[(size_t)i * ldc + j];
            if (c->bias) t += zt_cpu_ld(c->bias, c->dt, n0 + j);
            if (c->residual) t += zt_cpu_ld(c->residual, c->dt, row + n0 + j);
            zt_cpu_st(c->y, c->dt, row + n0 + j, t);
        }
    }
}

size_t zt_cpu_conv2d_workspace_size(zt_ops *ops, const zt_conv2d *c) {
    (void)ops;
    (void)c;
    return 0;
}

void zt_cpu_conv2d(zt_ops *ops, const zt_conv2d *c, void *workspace) {
    (void)workspace;
    ZT_ASSERT(c && c->x && c->wgt && c->y && zt_cpu_act_dtype(c->dt));
    ZT_ASSERT((c->k == 1 || c->k == 3) && c->h >= 1 && c->w >= 1 && c->cin >= 1 && c->cout >= 1);
    ZT_ASSERT(c->band_rows >= 0 && c->band_y0 >= 0 && c->band_y0 + c->band_rows <= c->h);
    const int s = c->stride > 1 ? c->stride : 1;
    ZT_ASSERT(s == 1 || (s == 2 && c->k == 3 && !c->band_rows && c->h % 2 == 0 && c->w % 2 == 0));
    const int by0 = c->band_rows ? c->band_y0 : 0, brows = c->band_rows ? c->band_rows : c->h / s;
    const int64_t m = (int64_t)brows * (c->w / s), kk = (int64_t)c->k * c->k * c->cin;
    ZT_ASSERT(m <= INT32_MAX && kk <= INT32_MAX);
    zt_cpu_mm mm = {.a = c->x, .a_dt = c->dt, .lda = c->cin, .b = c->wgt, .b_dt = c->dt, .ldb = kk, .b_nk = 1};
    if (c->k > 1) {
        mm.conv_h = c->h;
        mm.conv_w = c->w;
        mm.conv_cin = c->cin;
        mm.conv_k = c->k;
        mm.conv_y0 = by0;
        mm.conv_xr0 = by0 - c->k / 2 > 0 ? by0 - c->k / 2 : 0;
        mm.conv_stride = s;
    }
    const double work = (double)m * c->cout * kk;
    zt_cpu_mm_run(zt_cpu_threads_for(ops, work), &mm, (int)m, c->cout, (int)kk, zt_conv_epilogue, (void *)c);
}

void zt_cpu_upsample2x(zt_ops *ops, int h, int w, int c, const void *x, void *y, zt_dtype dt) {
    (void)ops;
    ZT_ASSERT(zt_cpu_act_dtype(dt) && h >= 0 && w >= 0 && c >= 0);
    const size_t es = zt_dtype_size(dt), row = (size_t)c * es;
    for (int oy = 0; oy < 2 * h; oy++)
        for (int ox = 0; ox < 2 * w; ox++)
            memcpy((char *)y + ((size_t)oy * 2 * w + ox) * row, (const char *)x + ((size_t)(oy / 2) * w + ox / 2) * row, row);
}

void zt_cpu_vae_posterior(zt_ops *ops, int c, int h, int w, const void *x, zt_dtype dt, const float *eps, float shift,
                          float scale, float *lat) {
    (void)ops;
    ZT_ASSERT(zt_cpu_act_dtype(dt) && c > 0 && h >= 0 && w >= 0 && x && lat);
    const int64_t hw = (int64_t)h * w;
    for (int64_t p = 0; p < hw; p++)
        for (int ch = 0; ch < c; ch++) {
            float z = zt_cpu_ld(x, dt, p * 2 * c + ch);
            if (eps) {
                float lv = zt_cpu_ld(x, dt, p * 2 * c + c + ch);
                lv = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv; /* NaN stays NaN, as torch.clamp */
                const float sd = expf(0.5f * lv);
                z = z + sd * eps[(int64_t)ch * hw + p];
            }
            lat[(int64_t)ch * hw + p] = (z - shift) * scale;
        }
}

void zt_cpu_to_rgb8(zt_ops *ops, int h, int w, const void *x, zt_dtype dt, uint8_t *rgb) {
    (void)ops;
    ZT_ASSERT(zt_cpu_act_dtype(dt) && h >= 0 && w >= 0);
    const int64_t n = (int64_t)h * w * 3;
    for (int64_t i = 0; i < n; i++) {
        float v = zt_cpu_ld(x, dt, i) * 0.5f + 0.5f;  /* x/2 is exact */
        v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;  /* NaN -> 0 */
        rgb[i] = (uint8_t)nearbyintf(v * 255.0f);     /* default mode: half to even */
    }
}
