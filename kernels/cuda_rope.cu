/* kernels/cuda_rope.cu — rotary embeddings, in place (zt_op_rope_pairs for
 * the DiT's interleaved pairs, zt_op_rope_half for Qwen3's rotate-half).
 *
 * A thread rotates 8 consecutive elements of one head with 16-byte accesses
 * when the layout allows (else one pair). The cos/sin table of a row is
 * shared by all heads of that row and stays in L1/L2. */
#include "kernels/cuda_common.cuh"

#define ROPE_THREADS 256

/* Interleaved pairs, f32 math, one rounding: element e of a head pairs with
 * e^1; its (c, s) sit at cs[r*hd + (e & ~1)], cs[r*hd + (e | 1)]. */
template <typename T, bool VEC>
__global__ void k_rope_pairs(int rows, int heads, int hd, T *x, int64_t ldx, const float *cs) {
    const int per_row = VEC ? heads * hd / 8 : heads * hd / 2;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        T *xr = x + (int64_t)r * ldx;
        const float *cr = cs + (int64_t)r * hd;
        for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < per_row; c += gridDim.x * blockDim.x) {
            if (VEC) {
                const int e0 = (c * 8) % hd; /* offset inside the head */
                float v[8], t[8];
                zt_ld8rw(xr + c * 8, v);
                zt_ld8(cr + e0, t);
#pragma unroll
                for (int p = 0; p < 4; p++) {
                    const float a = v[2 * p], b = v[2 * p + 1], co = t[2 * p], si = t[2 * p + 1];
                    v[2 * p] = a * co - b * si;
                    v[2 * p + 1] = a * si + b * co;
                }
                zt_st8(xr + c * 8, v);
            } else {
                const int e = (c * 2) % hd;
                const float a = zt_to_f32(xr[c * 2]), b = zt_to_f32(xr[c * 2 + 1]);
                const float co = cr[e], si = cr[e + 1];
                xr[c * 2] = zt_from_f32<T>(a * co - b * si);
                xr[c * 2 + 1] = zt_from_f32<T>(a * si + b * co);
            }
        }
    }
}

void zt_cuda_rope_pairs(zt_ops *ops, int rows, int heads, int hd, void *x, int64_t ldx, const float *cs, zt_dtype dt) {
    ZT_ASSERT(rows >= 0 && heads > 0 && hd > 0 && hd % 2 == 0 && x && cs);
    if (!ldx) ldx = (int64_t)heads * hd;
    ZT_ASSERT(ldx >= (int64_t)heads * hd);
    if (!rows) return;
    const unsigned s = zt_dtype_size(dt);
    const bool vec = hd % 8 == 0 && zt_al16(x) && (ldx * s) % 16 == 0 && zt_al16(cs);
    const int per_row = vec ? heads * hd / 8 : heads * hd / 2;
    dim3 grid((unsigned)((per_row + ROPE_THREADS - 1) / ROPE_THREADS), (unsigned)(rows < 65535 ? rows : 65535));
    cudaStream_t st = zt_cu_stream(ops);
    if (dt == ZT_DT_BF16) {
        if (vec) k_rope_pairs<zt_bf16, true><<<grid, ROPE_THREADS, 0, st>>>(rows, heads, hd, (zt_bf16 *)x, ldx, cs);
        else k_rope_pairs<zt_bf16, false><<<grid, ROPE_THREADS, 0, st>>>(rows, heads, hd, (zt_bf16 *)x, ldx, cs);
    } else if (dt == ZT_DT_F32) {
        if (vec) k_rope_pairs<float, true><<<grid, ROPE_THREADS, 0, st>>>(rows, heads, hd, (float *)x, ldx, cs);
        else k_rope_pairs<float, false><<<grid, ROPE_THREADS, 0, st>>>(rows, heads, hd, (float *)x, ldx, cs);
    } else if (dt == ZT_DT_F16) {
        if (vec) k_rope_pairs<__half, true><<<grid, ROPE_THREADS, 0, st>>>(rows, heads, hd, (__half *)x, ldx, cs);
        else k_rope_pairs<__half, false><<<grid, ROPE_THREADS, 0, st>>>(rows, heads, hd, (__half *)x, ldx, cs);
    } else {
        ZT_CU_FAIL_DTYPE("rope_pairs", dt);
    }
    ZT_CUDA_LAUNCH_CHECK();
}

/* Rotate-half with the reference's roundings (R = round to T):
 *   x'[d]      = R(R(x[d]*c) - R(x[d+h2]*s))
 *   x'[d + h2] = R(R(x[d+h2]*c) + R(x[d]*s)),  (c, s) = cs[r, d, 0/1]. */
template <typename T, bool VEC>
__global__ void k_rope_half(int rows, int heads, int hd, T *x, int64_t ldx, const T *cs) {
    const int h2 = hd / 2;
    const int per_head = VEC ? h2 / 8 : h2;
    const int per_row = heads * per_head;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        T *xr = x + (int64_t)r * ldx;
        const T *cr = cs + (int64_t)r * hd;
        for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < per_row; c += gridDim.x * blockDim.x) {
            const int head = c / per_head, i = c - head * per_head;
            T *xh = xr + (int64_t)head * hd;
            if (VEC) {
                const int d0 = i * 8;
                float lo[8], hi[8], t0[8], t1[8];
                zt_ld8rw(xh + d0, lo);
                zt_ld8rw(xh + h2 + d0, hi);
                zt_ld8(cr + 2 * d0, t0);     /* (c, s) of d0 .. d0+3 */
                zt_ld8(cr + 2 * d0 + 8, t1); /* (c, s) of d0+4 .. d0+7 */
                float nlo[8], nhi[8];
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    const float co = j < 4 ? t0[2 * j] : t1[2 * (j - 4)];
                    const float si = j < 4 ? t0[2 * j + 1] : t1[2 * (j - 4) + 1];
                    nlo[j] = zt_rnd<T>(lo[j] * co) - zt_rnd<T>(hi[j] * si);
                    nhi[j] = zt_rnd<T>(hi[j] * co) + zt_rnd<T>(lo[j] * si);
                }
                zt_st8(xh + d0, nlo);
                zt_st8(xh + h2 + d0, nhi);
            } else {
                const float a = zt_to_f32(xh[i]), b = zt_to_f32(xh[i + h2]);
                const float co = zt_to_f32(cr[2 * i]), si = zt_to_f32(cr[2 * i + 1]);
                xh[i] = zt_from_f32<T>(zt_rnd<T>(a * co) - zt_rnd<T>(b * si));
                xh[i + h2] = zt_from_f32<T>(zt_rnd<T>(b * co) + zt_rnd<T>(a * si));
            }
        }
    }
}

void zt_cuda_rope_half(zt_ops *ops, int rows, int heads, int hd, void *x, int64_t ldx, const void *cs, zt_dtype dt) {
    ZT_ASSERT(rows >= 0 && heads > 0 && hd > 0 && hd % 2 == 0 && x && cs);
    if (!ldx) ldx = (int64_t)heads * hd;
    ZT_ASSERT(ldx >= (int64_t)heads * hd);
    if (!rows) return;
    const unsigned s = zt_dtype_size(dt);
    const bool vec = hd % 16 == 0 && zt_al16(x) && (ldx * s) % 16 == 0 && zt_al16(cs) && (hd * s) % 16 == 0;
    const int per_row = heads * (vec ? hd / 16 : hd / 2);
    dim3 grid((unsigned)((per_row + ROPE_THREADS - 1) / ROPE_THREADS), (unsigned)(rows < 65535 ? rows : 65535));
    cudaStream_t st = zt_cu_stream(ops);
    if (dt == ZT_DT_BF16) {
        if (vec) k_rope_half<zt_bf16, true><<<grid, ROPE_THREADS, 0, st>>>(rows, heads, hd, (zt_bf16 *)x, ldx, (const zt_bf16 *)cs);
        else k_rope_half<zt_bf16, false><<<grid, ROPE_THREADS, 0, st>>>(rows, heads, hd, (zt_bf16 *)x, ldx, (const zt_bf16 *)cs);
    } else if (dt == ZT_DT_F32) {
        if (vec) k_rope_half<float, true><<<grid, ROPE_THREADS, 0, st>>>(rows, heads, hd, (float *)x, ldx, (const float *)cs);
        else k_rope_half<float, false><<<grid, ROPE_THREADS, 0, st>>>(rows, heads, hd, (float *)x, ldx, (const float *)cs);
    } else if (dt == ZT_DT_F16) {
        if (vec) k_rope_half<__half, true><<<grid, ROPE_THREADS, 0, st>>>(rows, heads, hd, (__half *)x, ldx, (const __half *)cs);
        else k_rope_half<__half, false><<<grid, ROPE_THREADS, 0, st>>>(rows, heads, hd, (__half *)x, ldx, (const __half *)cs);
    } else {
        ZT_CU_FAIL_DTYPE("rope_half", dt);
    }
    ZT_CUDA_LAUNCH_CHECK();
}
