/* kernels/cuda_common.cuh — device helpers shared by the CUDA ops
 * (kernels/cuda_*.cu): element types, exact conversions with the rounding
 * points of ops.h, 16-byte vector loads/stores of 8 elements, warp sums and
 * launch helpers.
 *
 * Element types in device code: float, __nv_bfloat16 (bf16), __half (f16:
 * the fp16 path). "R(x)" in ops.h (round_bf16 on the bf16-activation path,
 * round to f16 on the f16 path, the identity on the f32 path) is zt_rnd<T>(x)
 * with T the activation type. */
#ifndef ZT_KERNELS_CUDA_COMMON_CUH
#define ZT_KERNELS_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include <type_traits>

#include "common/zt_common.h"
#include "common/zt_cuda.h"
#include "kernels/ops_internal.h"

typedef __nv_bfloat16 zt_bf16;

static inline cudaStream_t zt_cu_stream(const zt_ops *ops) { return (cudaStream_t)ops->stream; }

/* True when p is 16-byte aligned (vector path allowed). */
static inline bool zt_al16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

/* Blocks for a grid-stride loop over `work` items with `threads` per block. */
static inline unsigned zt_cu_blocks(size_t work, unsigned threads) {
    size_t b = (work + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > (1u << 20)) b = 1u << 20;
    return (unsigned)b;
}

/* ---- scalar conversions ---- */
__device__ __forceinline__ float zt_to_f32(float v) { return v; }
__device__ __forceinline__ float zt_to_f32(zt_bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float zt_to_f32(__half v) { return __half2float(v); }

template <typename T> __device__ __forceinline__ T zt_from_f32(float v);
template <> __device__ __forceinline__ float zt_from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ zt_bf16 zt_from_f32<zt_bf16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half zt_from_f32<__half>(float v) { return __float2half_rn(v); }

/* The fp16 guard (ops.h): round to f16, NaN -> 0, ±Inf -> ±65504. */
__device__ __forceinline__ __half zt_f16_sat(float v) {
    if (v != v) return __float2half_rn(0.f);
    return __float2half_rn(fminf(fmaxf(v, -65504.f), 65504.f)); /* |v| < 65520 rounds to at most 65504 anyway */
}

/* Round to the activation precision of T (bf16: RNE to bf16; f32: identity).
 * (An integer-RNE version on the bit pattern was measured slower in the
 * norms than this cvt.rn.bf16.f32: the kernels are instruction-bound.) */
template <typename T> __device__ __forceinline__ float zt_rnd(float v) { return zt_to_f32(zt_from_f32<T>(v)); }

template <typename T> __device__ __forceinline__ float zt_ld(const T *p) { return zt_to_f32(*p); }
template <typename T> __device__ __forceinline__ void zt_st(T *p, float v) { *p = zt_from_f32<T>(v); }

/* ---- 8 elements at once: one 16-byte access for 2-byte types, two for f32.
 * The pointer must be 16-byte aligned. ---- */
/* 16 bytes of bf16 or f16 (the pointer's type says which) as 8 floats. */
__device__ __forceinline__ void zt_unpack8(uint4 u, const zt_bf16 *, float v[8]) {
    uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        v[2 * i] = __uint_as_float(w[i] << 16);
        v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}
__device__ __forceinline__ void zt_unpack8(uint4 u, const __half *, float v[8]) {
    const __half2 *h = reinterpret_cast<const __half2 *>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 f = __half22float2(h[i]);
        v[2 * i] = f.x;
        v[2 * i + 1] = f.y;
    }
}
__device__ __forceinline__ void zt_unpack8(float4 a, float4 b, float v[8]) {
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}
__device__ __forceinline__ void zt_ld8(const float *p, float v[8]) {
    zt_unpack8(__ldg(reinterpret_cast<const float4 *>(p)), __ldg(reinterpret_cast<const float4 *>(p) + 1), v);
}
__device__ __forceinline__ void zt_ld8(const zt_bf16 *p, float v[8]) {
    zt_unpack8(__ldg(reinterpret_cast<const uint4 *>(p)), p, v);
}
__device__ __forceinline__ void zt_ld8(const __half *p, float v[8]) {
    zt_unpack8(__ldg(reinterpret_cast<const uint4 *>(p)), p, v);
}
/* Plain (non-__ldg) loads for buffers the same kernel also writes (in place). */
__device__ __forceinline__ void zt_ld8rw(const float *p, float v[8]) {
    zt_unpack8(reinterpret_cast<const float4 *>(p)[0], reinterpret_cast<const float4 *>(p)[1], v);
}
__device__ __forceinline__ void zt_ld8rw(const zt_bf16 *p, float v[8]) {
    zt_unpack8(reinterpret_cast<const uint4 *>(p)[0], p, v);
}
__device__ __forceinline__ void zt_ld8rw(const __half *p, float v[8]) {
    zt_unpack8(reinterpret_cast<const uint4 *>(p)[0], p, v);
}
/* Two f32 -> f16x2 / bf16x2 (round to nearest even), lo in the low half. */
__device__ __forceinline__ uint32_t zt_pack_f16x2(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
}
__device__ __forceinline__ uint32_t zt_pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
}
__device__ __forceinline__ uint32_t zt_pack2(const __half *, float lo, float hi) { return zt_pack_f16x2(lo, hi); }
__device__ __forceinline__ uint32_t zt_pack2(const zt_bf16 *, float lo, float hi) { return zt_pack_bf16x2(lo, hi); }
/* 8 floats rounded to bf16 or f16, one 16-byte store. */
template <typename T> __device__ __forceinline__ void zt_st8(T *p, const float v[8]) {
    uint4 u;
    u.x = zt_pack2(p, v[0], v[1]);
    u.y = zt_pack2(p, v[2], v[3]);
    u.z = zt_pack2(p, v[4], v[5]);
    u.w = zt_pack2(p, v[6], v[7]);
    *reinterpret_cast<uint4 *>(p) = u;
}
__device__ __forceinline__ void zt_st8(float *p, const float v[8]) {
    reinterpret_cast<float4 *>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4 *>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}

/* Store 8 values that are already bf16-exact (rounded by zt_rnd): the top
 * halves are packed, no conversion needed. f32: a plain store. */
__device__ __forceinline__ void zt_st8_exact(zt_bf16 *p, const float v[8]) {
    uint4 u;
    u.x = __byte_perm(__float_as_uint(v[0]), __float_as_uint(v[1]), 0x7632);
    u.y = __byte_perm(__float_as_uint(v[2]), __float_as_uint(v[3]), 0x7632);
    u.z = __byte_perm(__float_as_uint(v[4]), __float_as_uint(v[5]), 0x7632);
    u.w = __byte_perm(__float_as_uint(v[6]), __float_as_uint(v[7]), 0x7632);
    *reinterpret_cast<uint4 *>(p) = u;
}
__device__ __forceinline__ void zt_st8_exact(float *p, const float v[8]) { zt_st8(p, v); }

/* Sum over aligned groups of `width` lanes (power of two <= 32). */
template <int WIDTH> __device__ __forceinline__ float zt_group_sum_warp(float v) {
#pragma unroll
    for (int o = WIDTH / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* ---- tensor-core kernels (attention, convolutions) ---- */
__device__ __forceinline__ uint32_t zt_smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
/* 16-byte async copy global -> shared; src_bytes 0 zero-fills the chunk (src
 * must still be a mapped address). */
/* cp.async needs sm_80; compiled for sm_75 (the fp16 path's Turing target,
 * also JIT-compiled elsewhere from its compute_75 PTX) the copy is a plain
 * 16-byte load and shared store, done when the call returns, and commit /
 * wait are no-ops: the kernels' __syncthreads after a wait then orders it. */
__device__ __forceinline__ void zt_cp_async16(uint32_t dst, const void *src, int src_bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    uint4 v = make_uint4(0, 0, 0, 0);
    if (src_bytes) v = *reinterpret_cast<const uint4 *>(src);
    asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
                 : "memory");
#else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
#endif
}
__device__ __forceinline__ void zt_cp_async_commit() {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int N> __device__ __forceinline__ void zt_cp_async_wait() {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}
__device__ __forceinline__ float zt_ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}
/* Max / sum over the 4 lanes of a quad (the lanes sharing an MMA accumulator row). */
__device__ __forceinline__ float zt_quad_max(float x) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float zt_quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

/* Online softmax with lazy rescaling (the attention kernels): the max m that
 * a row's exponentials use (times scale*log2e) is raised to the tile max mx
 * only when mx exceeds it by more than 2^ZT_SOFTMAX_RESCALE_LOG2, so P stays
 * <= 256 and O is rescaled on a few tiles per row; O and l share the stale
 * max, so O / l is unchanged up to rounding. zt_softmax_raise returns the
 * factor for the row's O and l (1 when m stays). */
#define ZT_SOFTMAX_RESCALE_LOG2 8.f
__device__ __forceinline__ bool zt_softmax_outgrown(float mx, float m) { return mx - m > ZT_SOFTMAX_RESCALE_LOG2; }
__device__ __forceinline__ float zt_softmax_raise(float mx, float &m) {
    if (!zt_softmax_outgrown(mx, m)) return 1.f;
    const float alpha = zt_ex2(m - mx);
    m = mx;
    return alpha;
}

/* GEMM with a separate C (kernels/cuda_gemm.cu), for conv2d's residual:
 * y[m, n] = x[m, k]·w[n, k]ᵀ (+ bias[n]) (+ c[m, n] if c), one rounding.
 * Row strides in elements (w: ldw). */
void zt_cuda_gemm_ex(zt_ops *ops, int m, int n, int k, const void *x, zt_dtype x_dt, int64_t ldx, const void *w,
                     zt_dtype w_dt, int64_t ldw, const void *bias, const void *c, int64_t ldc, void *y, zt_dtype y_dt,
                     int64_t ldy);

/* conv2d with a chosen implicit-GEMM tile variant (kernels/cuda_conv.cu;
 * 0 = default). For kbench and the op test; models call zt_op_conv2d. */
extern "C" void zt_cuda_conv2d_variant(zt_ops *ops, const zt_conv2d *c, void *workspace, int variant);

/* Dispatch on a zt_dtype to a device element type; unsupported aborts. */
#define ZT_CU_FAIL_DTYPE(what, dt)                                                        \
    do {                                                                                  \
        fprintf(stderr, "zturbo: %s:%d: %s: dtype %s not supported by the CUDA backend\n", \
                __FILE__, __LINE__, what, zt_dtype_name(dt));                             \
        abort();                                                                          \
    } while (0)

#endif
