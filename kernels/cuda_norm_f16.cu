/* kernels/cuda_norm_f16.cu — RMSNorm, LayerNorm and the sandwich-norm
 * residual on the fp16 path (zt_op_rmsnorm / layernorm / rmsnorm_gate_add
 * with an f16 output, dispatched here by kernels/cuda_norm.cu).
 *
 * x is f32 (the fp16 path's residual stream and sub-layer outputs) or f16;
 * the weight is f16 (n->w_f16) or bf16; scale and gate are f16; gate_add's
 * resid is f32 (n->resid_f32) or f16. Numerics are the CPU backend's
 * (kernels/cpu_norm.c): statistics summed in double and rounded once to f32,
 * then n = R(x·r), R(n·weight), R(n·scale), R(gate·t), resid + t, R rounding
 * to f16. One block normalises one vector (a row, or one head of a row): a
 * pass over x for the statistics, a second (from L1/L2) for the output; the
 * same thread reads and writes an element, so x may alias y.
 *
 * Simpler than the bf16 kernels of cuda_norm.cu (no persistence, no
 * prefetch, no vector loads): on a T4 the step is compute-bound by far
 * (~2.5 s per 1024² evaluation against ~50 ms for all norms at this
 * kernel's ~half of the copy rate). */
#include "kernels/cuda_common.cuh"
#include "kernels/cuda_norm.h"

namespace {

struct norm16_args {
    int rows, heads, dim;
    const void *x;
    int64_t ldx;
    const void *weight;   /* [dim] f16 or bf16, or NULL */
    const __half *scale;  /* [heads*dim] or NULL */
    const __half *gate;   /* [heads*dim] or NULL (gate_add) */
    float eps;
    void *y;              /* y, or resid for gate_add */
    int64_t ldy;
};

enum { N16_RMS = 0, N16_LAYER = 1, N16_GATE_ADD = 2 };

/* Sum over the block (blockDim.x a multiple of 32, at most 1024). */
__device__ __forceinline__ double block_sum(double v, double *red) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads(); /* red may still be read by a previous call */
    if (lane == 0) red[warp] = v;
    __syncthreads();
    double s = 0.0;
    for (int i = 0; i < nw; i++) s += red[i];
    return s;
}

template <typename TX> __device__ __forceinline__ float ld_x(const TX *p) { return zt_to_f32(*p); }

/* TX: x's type; TW: the weight's; RESID32: gate_add's resid is f32. */
template <typename TX, typename TW, int MODE, bool RESID32> __global__ void k_norm16(const norm16_args a) {
    __shared__ double red[32];
    const int r = blockIdx.x / a.heads, h = blockIdx.x % a.heads;
    const TX *x = (const TX *)a.x + (int64_t)r * a.ldx + (int64_t)h * a.dim;
    double s1 = 0.0;
    for (int j = threadIdx.x; j < a.dim; j += blockDim.x) {
        const double v = ld_x(x + j);
        s1 += MODE == N16_LAYER ? v : v * v;
    }
    s1 = block_sum(s1, red);
    float mean = 0.f, rstd;
    if (MODE == N16_LAYER) {
        const double md = s1 / a.dim;
        double s2 = 0.0;
        for (int j = threadIdx.x; j < a.dim; j += blockDim.x) {
            const double d = ld_x(x + j) - md;
            s2 += d * d;
        }
        s2 = block_sum(s2, red);
        mean = (float)md;
        rstd = 1.0f / sqrtf((float)(s2 / a.dim) + a.eps);
    } else {
        rstd = 1.0f / sqrtf((float)(s1 / a.dim) + a.eps);
    }
    const TW *w = (const TW *)a.weight;
    for (int j = threadIdx.x; j < a.dim; j += blockDim.x) {
        const float xv = ld_x(x + j);
        float v = zt_rnd<__half>(MODE == N16_LAYER ? __fmul_rn(__fsub_rn(xv, mean), rstd) : __fmul_rn(xv, rstd));
        if (w) v = zt_rnd<__half>(__fmul_rn(v, zt_to_f32(w[j])));
        const int c = h * a.dim + j;
        if (a.scale) v = zt_rnd<__half>(__fmul_rn(v, __half2float(a.scale[c])));
        if (MODE == N16_GATE_ADD) {
            if (a.gate) v = zt_rnd<__half>(__fmul_rn(__half2float(a.gate[c]), v));
            if (RESID32) {
                float *res = (float *)a.y + (int64_t)r * a.ldy + c;
                *res = __fadd_rn(*res, v);
            } else {
                __half *res = (__half *)a.y + (int64_t)r * a.ldy + c;
                *res = __float2half_rn(__fadd_rn(__half2float(*res), v));
            }
        } else {
            ((__half *)a.y)[(int64_t)r * a.ldy + c] = __float2half_rn(v);
        }
    }
}

template <typename TX, typename TW, int MODE, bool RESID32> void launch(const zt_ops *ops, const norm16_args &a) {
    const unsigned threads = a.dim <= 128 ? 128 : 256;
    k_norm16<TX, TW, MODE, RESID32><<<(unsigned)((int64_t)a.rows * a.heads), threads, 0, zt_cu_stream(ops)>>>(a);
    ZT_CUDA_LAUNCH_CHECK();
}

template <typename TX, int MODE> void dispatch_w(const zt_ops *ops, const norm16_args &a, bool w_f16, bool resid32) {
    if (MODE == N16_GATE_ADD && resid32) {
        if (w_f16) launch<TX, __half, MODE, true>(ops, a);
        else launch<TX, zt_bf16, MODE, true>(ops, a);
    } else {
        if (w_f16) launch<TX, __half, MODE, false>(ops, a);
        else launch<TX, zt_bf16, MODE, false>(ops, a);
    }
}

} // namespace

void zt_cuda_norm_f16(zt_ops *ops, const zt_norm *n, int mode, const void *gate, void *out, int64_t ld_out) {
    ZT_ASSERT(n->rows >= 0 && n->heads >= 1 && n->dim >= 1 && n->x && out && n->y_dt == ZT_DT_F16);
    ZT_ASSERT(n->x_dt == ZT_DT_F32 || n->x_dt == ZT_DT_F16);
    ZT_ASSERT((int64_t)n->rows * n->heads < (1ll << 31));
    if (n->rows == 0) return;
    norm16_args a;
    a.rows = n->rows;
    a.heads = n->heads;
    a.dim = n->dim;
    a.x = n->x;
    a.ldx = n->ldx ? n->ldx : (int64_t)n->heads * n->dim;
    a.weight = n->weight;
    a.scale = (const __half *)n->scale;
    a.gate = (const __half *)gate;
    a.eps = n->eps;
    a.y = out;
    a.ldy = ld_out ? ld_out : (int64_t)n->heads * n->dim;
    ZT_ASSERT(a.ldx >= (int64_t)n->heads * n->dim && a.ldy >= (int64_t)n->heads * n->dim);
    const bool w16 = n->w_f16, r32 = mode == N16_GATE_ADD && n->resid_f32;
    const bool x32 = n->x_dt == ZT_DT_F32;
    if (mode == N16_RMS) {
        if (x32) dispatch_w<float, N16_RMS>(ops, a, w16, false);
        else dispatch_w<__half, N16_RMS>(ops, a, w16, false);
    } else if (mode == N16_LAYER) {
        if (x32) dispatch_w<float, N16_LAYER>(ops, a, w16, false);
        else dispatch_w<__half, N16_LAYER>(ops, a, w16, false);
    } else {
        if (x32) dispatch_w<float, N16_GATE_ADD>(ops, a, w16, r32);
        else dispatch_w<__half, N16_GATE_ADD>(ops, a, w16, r32);
    }
}
