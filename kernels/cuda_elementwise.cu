/* kernels/cuda_elementwise.cu — elementwise ops of ops.h: add, silu,
 * one_plus, tanh, convert, swiglu, euler_step, timestep_embed.
 *
 * Memory-bound: each thread moves 8 elements per iteration with 16-byte
 * accesses when every pointer is 16-byte aligned (grid-stride loop), else
 * one element at a time. All math in f32, one rounding to the output type
 * except where ops.h names an intermediate rounding (swiglu). */
#include <type_traits>

#include "kernels/cuda_common.cuh"

#define EW_THREADS 256

/* ---- generic map: y[i] = op(a[i], b[i]) (b may be NULL) ---- */
struct op_add { __device__ float operator()(float a, float b) const { return a + b; } };
struct op_silu { __device__ float operator()(float a, float) const { return a / (1.0f + expf(-a)); } };
struct op_one_plus { __device__ float operator()(float a, float) const { return 1.0f + a; } };
struct op_tanh { __device__ float operator()(float a, float) const { return tanhf(a); } };
struct op_copy { __device__ float operator()(float a, float) const { return a; } };
/* a + rnd(b * s): the scaled product rounded to the activation type first */
template <typename T> struct op_add_scaled {
    float s;
    __device__ float operator()(float a, float b) const { return a + zt_to_f32(zt_from_f32<T>(b * s)); }
};

template <typename TA, typename TY, typename Op, bool VEC>
__global__ void k_map(size_t n, const TA *a, const TA *b, TY *y, Op op) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i0 = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t done = 0;
    if (VEC) {
        const size_t nc = n / 8;
        for (size_t c = i0; c < nc; c += stride) {
            float va[8], vb[8] = {0, 0, 0, 0, 0, 0, 0, 0}, vy[8];
            /* plain loads: a, b and y may alias (in place) */
            if constexpr (sizeof(TA) == 4) zt_ld8rw((const float *)(a + c * 8), va);
            else zt_ld8rw(a + c * 8, va);
            if (b) {
                if constexpr (sizeof(TA) == 4) zt_ld8rw((const float *)(b + c * 8), vb);
                else zt_ld8rw(b + c * 8, vb);
            }
#pragma unroll
            for (int j = 0; j < 8; j++) vy[j] = op(va[j], vb[j]);
            zt_st8(y + c * 8, vy);
        }
        done = nc * 8;
    }
    for (size_t i = done + i0; i < n; i += stride) y[i] = zt_from_f32<TY>(op(zt_to_f32(a[i]), b ? zt_to_f32(b[i]) : 0.0f));
}

template <typename TA, typename TY, typename Op>
static void map_launch(zt_ops *ops, size_t n, const void *a, const void *b, void *y, Op op) {
    if (!n) return;
    const bool vec = zt_al16(a) && (!b || zt_al16(b)) && zt_al16(y);
    const unsigned blocks = zt_cu_blocks(vec ? (n + 7) / 8 : n, EW_THREADS);
    if (vec) k_map<TA, TY, Op, true><<<blocks, EW_THREADS, 0, zt_cu_stream(ops)>>>(n, (const TA *)a, (const TA *)b, (TY *)y, op);
    else k_map<TA, TY, Op, false><<<blocks, EW_THREADS, 0, zt_cu_stream(ops)>>>(n, (const TA *)a, (const TA *)b, (TY *)y, op);
    ZT_CUDA_LAUNCH_CHECK();
}

template <typename Op> static void map_same(zt_ops *ops, const char *what, size_t n, const void *a, const void *b, void *y, zt_dtype dt, Op op) {
    ZT_ASSERT(a && y && (n == 0 || a));
    if (dt == ZT_DT_BF16) map_launch<zt_bf16, zt_bf16>(ops, n, a, b, y, op);
    else if (dt == ZT_DT_F32) map_launch<float, float>(ops, n, a, b, y, op);
    else if (dt == ZT_DT_F16) map_launch<__half, __half>(ops, n, a, b, y, op);
    else ZT_CU_FAIL_DTYPE(what, dt);
}

void zt_cuda_add(zt_ops *ops, size_t n, const void *a, const void *b, void *y, zt_dtype dt) {
    ZT_ASSERT(b);
    map_same(ops, "add", n, a, b, y, dt, op_add());
}
void zt_cuda_add_scaled(zt_ops *ops, size_t n, const void *a, const void *b, float s, void *y, zt_dtype dt) {
    ZT_ASSERT(b);
    if (dt == ZT_DT_BF16) map_launch<zt_bf16, zt_bf16>(ops, n, a, b, y, op_add_scaled<zt_bf16>{s});
    else if (dt == ZT_DT_F32) map_launch<float, float>(ops, n, a, b, y, op_add_scaled<float>{s});
    else ZT_CU_FAIL_DTYPE("add_scaled", dt);
}
void zt_cuda_silu(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt) { map_same(ops, "silu", n, x, NULL, y, dt, op_silu()); }
void zt_cuda_one_plus(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt) {
    map_same(ops, "one_plus", n, x, NULL, y, dt, op_one_plus());
}
void zt_cuda_tanh(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt) { map_same(ops, "tanh", n, x, NULL, y, dt, op_tanh()); }

template <typename TA> static void convert_to(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype y_dt) {
    if (y_dt == ZT_DT_BF16) map_launch<TA, zt_bf16>(ops, n, x, NULL, y, op_copy());
    else if (y_dt == ZT_DT_F16) map_launch<TA, __half>(ops, n, x, NULL, y, op_copy());
    else map_launch<TA, float>(ops, n, x, NULL, y, op_copy());
}

void zt_cuda_convert(zt_ops *ops, size_t n, const void *x, zt_dtype x_dt, void *y, zt_dtype y_dt) {
    ZT_ASSERT(x && y);
    if (y_dt != ZT_DT_F32 && y_dt != ZT_DT_BF16 && y_dt != ZT_DT_F16) ZT_CU_FAIL_DTYPE("convert (output)", y_dt);
    switch (x_dt) {
    case ZT_DT_F32: convert_to<float>(ops, n, x, y, y_dt); break;
    case ZT_DT_BF16: convert_to<zt_bf16>(ops, n, x, y, y_dt); break;
    case ZT_DT_F16: convert_to<__half>(ops, n, x, y, y_dt); break;
    default: ZT_CU_FAIL_DTYPE("convert (input)", x_dt);
    }
}

/* ---- SwiGLU: out[r, j] = R(R(silu(gate[r, j])) * up[r, j]) ----
 * GUARD (f16, ops.h): out = sat(R(R(silu(gate)) * up / ZT_F16_SWIGLU_SCALE)). */
template <typename T, bool GUARD> __device__ __forceinline__ float swiglu_one(float g, float u) {
    const float v = zt_rnd<T>(g / (1.0f + expf(-g))) * u;
    return GUARD ? __half2float(zt_f16_sat(v * (1.0f / ZT_F16_SWIGLU_SCALE))) : v;
}

template <typename T, bool VEC, bool GUARD>
__global__ void k_swiglu(int rows, int ff, const T *in, int64_t ld_in, T *out, int64_t ld_out) {
    const int per_row = VEC ? ff / 8 : ff;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        const T *g = in + (int64_t)r * ld_in, *u = g + ff;
        T *o = out + (int64_t)r * ld_out;
        for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < per_row; c += gridDim.x * blockDim.x) {
            if (VEC) {
                float vg[8], vu[8], vo[8];
                zt_ld8(g + c * 8, vg);
                zt_ld8(u + c * 8, vu);
#pragma unroll
                for (int j = 0; j < 8; j++) vo[j] = swiglu_one<T, GUARD>(vg[j], vu[j]);
                zt_st8(o + c * 8, vo);
            } else {
                o[c] = zt_from_f32<T>(swiglu_one<T, GUARD>(zt_to_f32(g[c]), zt_to_f32(u[c])));
            }
        }
    }
}

void zt_cuda_swiglu(zt_ops *ops, int rows, int ff, const void *in, int64_t ld_in, void *out, int64_t ld_out, zt_dtype dt) {
    ZT_ASSERT(rows >= 0 && ff > 0 && in && out && ld_in >= 2 * (int64_t)ff && ld_out >= ff);
    if (!rows) return;
    const unsigned s = zt_dtype_size(dt);
    const bool vec = ff % 8 == 0 && zt_al16(in) && zt_al16(out) && (ld_in * s) % 16 == 0 && (ld_out * s) % 16 == 0;
    const int per_row = vec ? ff / 8 : ff;
    dim3 grid((unsigned)((per_row + EW_THREADS - 1) / EW_THREADS), (unsigned)(rows < 65535 ? rows : 65535));
    cudaStream_t st = zt_cu_stream(ops);
    if (dt == ZT_DT_BF16) {
        if (vec) k_swiglu<zt_bf16, true, false><<<grid, EW_THREADS, 0, st>>>(rows, ff, (const zt_bf16 *)in, ld_in, (zt_bf16 *)out, ld_out);
        else k_swiglu<zt_bf16, false, false><<<grid, EW_THREADS, 0, st>>>(rows, ff, (const zt_bf16 *)in, ld_in, (zt_bf16 *)out, ld_out);
    } else if (dt == ZT_DT_F32) {
        if (vec) k_swiglu<float, true, false><<<grid, EW_THREADS, 0, st>>>(rows, ff, (const float *)in, ld_in, (float *)out, ld_out);
        else k_swiglu<float, false, false><<<grid, EW_THREADS, 0, st>>>(rows, ff, (const float *)in, ld_in, (float *)out, ld_out);
    } else if (dt == ZT_DT_F16) {
        const __half *i16 = (const __half *)in;
        __half *o16 = (__half *)out;
        if (zt_ops_f16_guard(ops)) {
            if (vec) k_swiglu<__half, true, true><<<grid, EW_THREADS, 0, st>>>(rows, ff, i16, ld_in, o16, ld_out);
            else k_swiglu<__half, false, true><<<grid, EW_THREADS, 0, st>>>(rows, ff, i16, ld_in, o16, ld_out);
        } else {
            if (vec) k_swiglu<__half, true, false><<<grid, EW_THREADS, 0, st>>>(rows, ff, i16, ld_in, o16, ld_out);
            else k_swiglu<__half, false, false><<<grid, EW_THREADS, 0, st>>>(rows, ff, i16, ld_in, o16, ld_out);
        }
    } else {
        ZT_CU_FAIL_DTYPE("swiglu", dt);
    }
    ZT_CUDA_LAUNCH_CHECK();
}

/* ---- Euler step: x = fl32(x + fl32(dt * -out)), no FMA ---- */
__global__ void k_euler(size_t n, float *x, const float *mo, float dt, bool vec) {
    const size_t stride = (size_t)gridDim.x * blockDim.x, i0 = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t done = 0;
    if (vec) {
        const size_t nc = n / 4;
        for (size_t c = i0; c < nc; c += stride) {
            float4 a = reinterpret_cast<float4 *>(x)[c];
            const float4 b = __ldg(reinterpret_cast<const float4 *>(mo) + c);
            a.x = __fadd_rn(a.x, __fmul_rn(dt, -b.x));
            a.y = __fadd_rn(a.y, __fmul_rn(dt, -b.y));
            a.z = __fadd_rn(a.z, __fmul_rn(dt, -b.z));
            a.w = __fadd_rn(a.w, __fmul_rn(dt, -b.w));
            reinterpret_cast<float4 *>(x)[c] = a;
        }
        done = nc * 4;
    }
    for (size_t i = done + i0; i < n; i += stride) x[i] = __fadd_rn(x[i], __fmul_rn(dt, -mo[i]));
}

void zt_cuda_euler_step(zt_ops *ops, size_t n, float *x, const float *model_out, float dt) {
    ZT_ASSERT(x && model_out);
    if (!n) return;
    const bool vec = zt_al16(x) && zt_al16(model_out);
    k_euler<<<zt_cu_blocks(vec ? (n + 3) / 4 : n, EW_THREADS), EW_THREADS, 0, zt_cu_stream(ops)>>>(n, x, model_out, dt, vec);
    ZT_CUDA_LAUNCH_CHECK();
}

/* ---- flow-matching mix / inpainting blend (ops.h) ---- */
__global__ void k_flow_mix(size_t n, size_t hw, const float *x0, const float *noise, float sigma, float keep,
                           const float *mask, float *lat) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        if (mask && mask[i % hw] != 0.0f) continue;
        lat[i] = __fadd_rn(__fmul_rn(sigma, noise[i]), __fmul_rn(keep, x0[i]));
    }
}

void zt_cuda_flow_mix(zt_ops *ops, int c, size_t hw, const float *x0, const float *noise, float sigma, const float *mask,
                      float *lat) {
    ZT_ASSERT(c >= 0 && x0 && noise && lat);
    const size_t n = (size_t)c * hw;
    if (!n) return;
    const float keep = 1.0f - sigma; /* fl32(1 - sigma), as on the host */
    k_flow_mix<<<zt_cu_blocks(n, EW_THREADS), EW_THREADS, 0, zt_cu_stream(ops)>>>(n, hw, x0, noise, sigma, keep, mask,
                                                                                 lat);
    ZT_CUDA_LAUNCH_CHECK();
}

/* ---- timestep sinusoid: [cos(arg_0..half-1), sin(arg_0..half-1)] ---- */
/* freq_i = exp(fl32(fl32(-ln 10000) * i) * fl32(1/half)) (the reference's
 * division by the Python scalar half is a multiply by its f32 reciprocal),
 * arg_i = fl32(tt * freq_i). exp/cos/sin are evaluated in double and rounded
 * once: the correctly rounded f32 values, which the CPU backend's libm also
 * returns (CUDA's single-precision expf/cosf may be 2 ulp off). 256 values
 * per step: the cost is nil. */
template <typename T> __global__ void k_timestep(float tt, int half, float inv_half, T *out) {
    const float neg_ln = -9.210340371976184f; /* -ln(10000) rounded to f32 */
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < half; i += gridDim.x * blockDim.x) {
        const float freq = (float)exp((double)__fmul_rn(__fmul_rn(neg_ln, (float)i), inv_half));
        const float arg = __fmul_rn(tt, freq);
        out[i] = zt_from_f32<T>((float)cos((double)arg));
        out[half + i] = zt_from_f32<T>((float)sin((double)arg));
    }
}

void zt_cuda_timestep_embed(zt_ops *ops, float tt, int half, void *out, zt_dtype dt) {
    ZT_ASSERT(half > 0 && out);
    const unsigned blocks = zt_cu_blocks((size_t)half, EW_THREADS);
    if (dt == ZT_DT_BF16) k_timestep<zt_bf16><<<blocks, EW_THREADS, 0, zt_cu_stream(ops)>>>(tt, half, 1.0f / (float)half, (zt_bf16 *)out);
    else if (dt == ZT_DT_F32) k_timestep<float><<<blocks, EW_THREADS, 0, zt_cu_stream(ops)>>>(tt, half, 1.0f / (float)half, (float *)out);
    else if (dt == ZT_DT_F16) k_timestep<__half><<<blocks, EW_THREADS, 0, zt_cu_stream(ops)>>>(tt, half, 1.0f / (float)half, (__half *)out);
    else ZT_CU_FAIL_DTYPE("timestep_embed", dt);
    ZT_CUDA_LAUNCH_CHECK();
}
