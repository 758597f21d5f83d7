/* kernels/cuda_layout.cu — layout-changing ops: patchify / unpatchify
 * (DiT tokens <-> latent), vae_input (CHW latent -> NHWC decoder input),
 * upsample2x (NHWC nearest neighbour) and to_rgb8 (final image). The first
 * three touch a few MB once per image or step and use one thread per output
 * element; upsample2x runs on the VAE's largest tensors and copies 16-byte
 * channel chunks. */
#include "kernels/cuda_common.cuh"

#define LAYOUT_THREADS 256

/* tok[h*wt + w][(ph*p + pw)*c + ch] = round_T(lat[ch, p*h + ph, p*w + pw]) */
template <typename T> __global__ void k_patchify(int c, int hl, int wl, int p, const float *lat, T *tok) {
    const int wt = wl / p, ht = hl / p, feat = p * p * c;
    const size_t n = (size_t)ht * wt * feat;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const int t = (int)(i / feat), f = (int)(i - (size_t)t * feat);
        const int h = t / wt, w = t - h * wt;
        const int pp = f / c, ch = f - pp * c;
        const int ph = pp / p, pw = pp - ph * p;
        tok[i] = zt_from_f32<T>(lat[((size_t)ch * hl + (size_t)(p * h + ph)) * wl + (p * w + pw)]);
    }
}

void zt_cuda_patchify(zt_ops *ops, int c, int hl, int wl, int p, const float *lat, void *tok, zt_dtype dt) {
    ZT_ASSERT(c > 0 && p > 0 && hl % p == 0 && wl % p == 0 && lat && tok);
    const size_t n = (size_t)(hl / p) * (wl / p) * p * p * c;
    if (!n) return;
    const unsigned blocks = zt_cu_blocks(n, LAYOUT_THREADS);
    if (dt == ZT_DT_BF16) k_patchify<zt_bf16><<<blocks, LAYOUT_THREADS, 0, zt_cu_stream(ops)>>>(c, hl, wl, p, lat, (zt_bf16 *)tok);
    else if (dt == ZT_DT_F32) k_patchify<float><<<blocks, LAYOUT_THREADS, 0, zt_cu_stream(ops)>>>(c, hl, wl, p, lat, (float *)tok);
    else if (dt == ZT_DT_F16) k_patchify<__half><<<blocks, LAYOUT_THREADS, 0, zt_cu_stream(ops)>>>(c, hl, wl, p, lat, (__half *)tok);
    else ZT_CU_FAIL_DTYPE("patchify", dt);
    ZT_CUDA_LAUNCH_CHECK();
}

/* out[ch, p*h + ph, p*w + pw] = tok[h*wt + w][(ph*p + pw)*c + ch] */
template <typename T>
__global__ void k_unpatchify(int c, int hl, int wl, int p, const T *tok, int64_t ld_tok, float *out) {
    const int wt = wl / p;
    const size_t n = (size_t)c * hl * wl;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const int ch = (int)(i / ((size_t)hl * wl));
        const int rem = (int)(i - (size_t)ch * hl * wl);
        const int y = rem / wl, x = rem - y * wl;
        const int h = y / p, ph = y - h * p, w = x / p, pw = x - w * p;
        out[i] = zt_to_f32(tok[(int64_t)(h * wt + w) * ld_tok + (ph * p + pw) * c + ch]);
    }
}

void zt_cuda_unpatchify(zt_ops *ops, int c, int hl, int wl, int p, const void *tok, int64_t ld_tok, float *out, zt_dtype dt) {
    ZT_ASSERT(c > 0 && p > 0 && hl % p == 0 && wl % p == 0 && tok && out);
    if (!ld_tok) ld_tok = (int64_t)p * p * c;
    ZT_ASSERT(ld_tok >= (int64_t)p * p * c);
    const size_t n = (size_t)c * hl * wl;
    if (!n) return;
    const unsigned blocks = zt_cu_blocks(n, LAYOUT_THREADS);
    if (dt == ZT_DT_BF16)
        k_unpatchify<zt_bf16><<<blocks, LAYOUT_THREADS, 0, zt_cu_stream(ops)>>>(c, hl, wl, p, (const zt_bf16 *)tok, ld_tok, out);
    else if (dt == ZT_DT_F32)
        k_unpatchify<float><<<blocks, LAYOUT_THREADS, 0, zt_cu_stream(ops)>>>(c, hl, wl, p, (const float *)tok, ld_tok, out);
    else if (dt == ZT_DT_F16)
        k_unpatchify<__half><<<blocks, LAYOUT_THREADS, 0, zt_cu_stream(ops)>>>(c, hl, wl, p, (const __half *)tok, ld_tok, out);
    else ZT_CU_FAIL_DTYPE("unpatchify", dt);
    ZT_CUDA_LAUNCH_CHECK();
}

/* y[(i*w + j)*c + ch] = round_T(fl32(fl32(lat[ch, i, j] * mul) + add)) */
template <typename T> __global__ void k_vae_input(int c, int h, int w, const float *lat, float mul, float add, T *y) {
    const size_t n = (size_t)c * h * w, hw = (size_t)h * w;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const size_t pix = i / c;
        const int ch = (int)(i - pix * c);
        y[i] = zt_from_f32<T>(__fadd_rn(__fmul_rn(lat[(size_t)ch * hw + pix], mul), add));
    }
}

void zt_cuda_vae_input(zt_ops *ops, int c, int h, int w, const float *lat, float mul, float add, void *y, zt_dtype y_dt) {
    ZT_ASSERT(c > 0 && h >= 0 && w >= 0 && lat && y);
    const size_t n = (size_t)c * h * w;
    if (!n) return;
    const unsigned blocks = zt_cu_blocks(n, LAYOUT_THREADS);
    if (y_dt == ZT_DT_BF16) k_vae_input<zt_bf16><<<blocks, LAYOUT_THREADS, 0, zt_cu_stream(ops)>>>(c, h, w, lat, mul, add, (zt_bf16 *)y);
    else if (y_dt == ZT_DT_F32) k_vae_input<float><<<blocks, LAYOUT_THREADS, 0, zt_cu_stream(ops)>>>(c, h, w, lat, mul, add, (float *)y);
    else ZT_CU_FAIL_DTYPE("vae_input", y_dt);
    ZT_CUDA_LAUNCH_CHECK();
}

/* VAE posterior (ops.h): one thread per latent element, CHW order. */
template <typename T>
__global__ void k_vae_posterior(int c, int hw, const T *x, const float *eps, float shift, float scale, float *lat) {
    const size_t n = (size_t)c * hw;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const int ch = (int)(i / hw);
        const size_t p = i - (size_t)ch * hw;
        float z = zt_to_f32(x[p * 2 * c + ch]);
        if (eps) {
            float lv = zt_to_f32(x[p * 2 * c + c + ch]);
            lv = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv;
            z = __fadd_rn(z, __fmul_rn(expf(__fmul_rn(0.5f, lv)), eps[i]));
        }
        lat[i] = __fmul_rn(__fsub_rn(z, shift), scale);
    }
}

void zt_cuda_vae_posterior(zt_ops *ops, int c, int h, int w, const void *x, zt_dtype dt, const float *eps, float shift,
                           float scale, float *lat) {
    ZT_ASSERT(c > 0 && h >= 0 && w >= 0 && x && lat);
    const size_t n = (size_t)c * h * w;
    if (!n) return;
    const unsigned blocks = zt_cu_blocks(n, LAYOUT_THREADS);
    if (dt == ZT_DT_BF16)
        k_vae_posterior<zt_bf16><<<blocks, LAYOUT_THREADS, 0, zt_cu_stream(ops)>>>(c, h * w, (const zt_bf16 *)x, eps, shift,
                                                                                 scale, lat);
    else if (dt == ZT_DT_F32)
        k_vae_posterior<float><<<blocks, LAYOUT_THREADS, 0, zt_cu_stream(ops)>>>(c, h * w, (const float *)x, eps, shift,
                                                                               scale, lat);
    else ZT_CU_FAIL_DTYPE("vae_posterior", dt);
    ZT_CUDA_LAUNCH_CHECK();
}

/* y[(2i+di)*(2w) + 2j+dj, :] = x[i*w + j, :]; CH = 16 bytes per thread when
 * the channel row is a multiple of 16 bytes, else one element. */
template <typename E>
__global__ void k_upsample2x(int h, int w, int units /* per pixel */, const E *x, E *y) {
    const int per_row = 2 * w * units; /* output row, in units */
    for (int oy = blockIdx.y; oy < 2 * h; oy += gridDim.y) {
        const E *xr = x + (size_t)(oy >> 1) * w * units;
        E *yr = y + (size_t)oy * per_row;
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < per_row; i += gridDim.x * blockDim.x) {
            const int ox = i / units, u = i - ox * units;
            yr[i] = xr[(ox >> 1) * units + u];
        }
    }
}

void zt_cuda_upsample2x(zt_ops *ops, int h, int w, int c, const void *x, void *y, zt_dtype dt) {
    ZT_ASSERT(h >= 0 && w >= 0 && c > 0 && x && y);
    if (dt != ZT_DT_BF16 && dt != ZT_DT_F32) ZT_CU_FAIL_DTYPE("upsample2x", dt);
    const size_t row = (size_t)c * zt_dtype_size(dt);
    const size_t n = (size_t)4 * h * w;
    if (!n) return;
    cudaStream_t st = zt_cu_stream(ops);
    const int oh = 2 * h;
#define UPS_GO(E, bytes)                                                                                      \
    do {                                                                                                      \
        const int units = (int)(row / bytes), per_row = 2 * w * units;                                        \
        dim3 grid((unsigned)((per_row + LAYOUT_THREADS - 1) / LAYOUT_THREADS), (unsigned)(oh < 65535 ? oh : 65535)); \
        k_upsample2x<E><<<grid, LAYOUT_THREADS, 0, st>>>(h, w, units, (const E *)x, (E *)y);                   \
    } while (0)
    ZT_ASSERT((size_t)2 * w * row < 0x7fffffffu);
    if (row % 16 == 0 && zt_al16(x) && zt_al16(y)) UPS_GO(uint4, 16);
    else if (row % 4 == 0 && ((uintptr_t)x & 3) == 0 && ((uintptr_t)y & 3) == 0) UPS_GO(uint32_t, 4);
    else UPS_GO(uint16_t, 2);
#undef UPS_GO
    ZT_CUDA_LAUNCH_CHECK();
}

/* rgb = uint8(round_half_even(fl32(clamp(x/2 + 0.5, 0, 1) * 255))) */
template <typename T> __global__ void k_to_rgb8(size_t n, const T *x, uint8_t *rgb) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = __fadd_rn(__fmul_rn(zt_to_f32(x[i]), 0.5f), 0.5f);
        v = fminf(fmaxf(v, 0.0f), 1.0f);
        rgb[i] = (uint8_t)(int)rintf(__fmul_rn(v, 255.0f));
    }
}

void zt_cuda_to_rgb8(zt_ops *ops, int h, int w, const void *x, zt_dtype dt, uint8_t *rgb) {
    ZT_ASSERT(h >= 0 && w >= 0 && x && rgb);
    const size_t n = (size_t)h * w * 3;
    if (!n) return;
    const unsigned blocks = zt_cu_blocks(n, LAYOUT_THREADS);
    if (dt == ZT_DT_BF16) k_to_rgb8<zt_bf16><<<blocks, LAYOUT_THREADS, 0, zt_cu_stream(ops)>>>(n, (const zt_bf16 *)x, rgb);
    else if (dt == ZT_DT_F32) k_to_rgb8<float><<<blocks, LAYOUT_THREADS, 0, zt_cu_stream(ops)>>>(n, (const float *)x, rgb);
    else ZT_CU_FAIL_DTYPE("to_rgb8", dt);
    ZT_CUDA_LAUNCH_CHECK();
}
