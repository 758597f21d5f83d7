/* kernels/cpu_misc.c — Z-Image specifics on the CPU (ops.h): timestep
 * sinusoid, patchify / unpatchify and the flow-match Euler step. */
#include <math.h>

#include "kernels/cpu_common.h"

/* Spec §3.2: freq_i = expf(fl32(fl32(-ln 10000) * i) * fl32(1/half)) (the
 * reference evaluates "-log(10000) * arange(half, f32) / half" on an f32
 * tensor; the division by the Python scalar is a multiply by its f32
 * reciprocal on CUDA, exact for half = 128), arg_i = fl32(tt * freq_i). */
void zt_cpu_timestep_embed(zt_ops *ops, float tt, int half, void *out, zt_dtype dt) {
    (void)ops;
    ZT_ASSERT(zt_cpu_act_dtype(dt) && half >= 1 && out);
    const float neg_ln = (float)-log(10000.0), inv_half = 1.0f / (float)half;
    for (int i = 0; i < half; i++) {
        const float e = (neg_ln * (float)i) * inv_half;
        const float arg = tt * expf(e);
        zt_cpu_st(out, dt, i, cosf(arg));
        zt_cpu_st(out, dt, half + i, sinf(arg));
    }
}

void zt_cpu_patchify(zt_ops *ops, int c, int hl, int wl, int p, const float *lat, void *tok, zt_dtype dt) {
    (void)ops;
    ZT_ASSERT(zt_cpu_act_dtype(dt) && p >= 1 && hl % p == 0 && wl % p == 0 && c >= 1);
    const int ht = hl / p, wt = wl / p, feat = p * p * c;
    for (int th = 0; th < ht; th++)
        for (int tw = 0; tw < wt; tw++)
            for (int ph = 0; ph < p; ph++)
                for (int pw = 0; pw < p; pw++)
                    for (int ch = 0; ch < c; ch++)
                        zt_cpu_st(tok, dt, ((int64_t)th * wt + tw) * feat + (ph * p + pw) * c + ch,
                                  lat[((int64_t)ch * hl + p * th + ph) * wl + p * tw + pw]);
}

void zt_cpu_unpatchify(zt_ops *ops, int c, int hl, int wl, int p, const void *tok, int64_t ld_tok, float *out,
                       zt_dtype dt) {
    (void)ops;
    ZT_ASSERT(zt_cpu_act_dtype(dt) && p >= 1 && hl % p == 0 && wl % p == 0 && c >= 1);
    ZT_ASSERT(ld_tok >= (int64_t)p * p * c);
    const int ht = hl / p, wt = wl / p;
    for (int th = 0; th < ht; th++)
        for (int tw = 0; tw < wt; tw++)
            for (int ph = 0; ph < p; ph++)
                for (int pw = 0; pw < p; pw++)
                    for (int ch = 0; ch < c; ch++)
                        out[((int64_t)ch * hl + p * th + ph) * wl + p * tw + pw] =
                            zt_cpu_ld(tok, dt, ((int64_t)th * wt + tw) * ld_tok + (ph * p + pw) * c + ch);
}

/* Spec §6.5: v = -out; x = fl32(x + fl32(dt * v)). */
void zt_cpu_flow_mix(zt_ops *ops, int c, size_t hw, const float *x0, const float *noise, float sigma, const float *mask,
                     float *lat) {
    (void)ops;
    ZT_ASSERT(c >= 0 && x0 && noise && lat);
    const float keep = 1.0f - sigma;
    for (int ch = 0; ch < c; ch++)
        for (size_t p = 0; p < hw; p++) {
            const size_t i = (size_t)ch * hw + p;
            if (mask && mask[p] != 0.0f) continue;
            const float a = sigma * noise[i], b = keep * x0[i];
            lat[i] = a + b;
        }
}

void zt_cpu_euler_step(zt_ops *ops, size_t n, float *x, const float *model_out, float dt) {
    (void)ops;
    for (size_t i = 0; i < n; i++) {
        const float v = -model_out[i];
        const float step = dt * v;
        x[i] = x[i] + step;
    }
}
