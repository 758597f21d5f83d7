/* kernels/cuda_conv.cuh — what the two implicit-GEMM convolution kernels
 * share (kernels/cuda_conv.cu: mma.sync, any CUDA card; kernels/
 * cuda_conv_sm90.cu: wgmma, Hopper): the launch arguments, the 16-byte
 * cp.async gather, and the epilogue that writes a staged f32 tile.
 *
 * The GEMM: rows are output pixels (M = band rows * w, NHWC), columns output
 * channels (N = cout), the reduction runs over (dy, dx, ci) (K = k*k*cin),
 * the weight layout [cout, k, k, cin]. */
#ifndef ZT_KERNELS_CUDA_CONV_CUH
#define ZT_KERNELS_CUDA_CONV_CUH

#include "kernels/cuda_common.cuh"

typedef struct {
    int h, w, cin, cout, k, pad, K, M;
    int y0, xr0; /* first output row of the band; image row that x points at */
    const zt_bf16 *x;    /* [rows from xr0][w][cin] */
    const zt_bf16 *wgt;  /* [cout][k][k][cin] */
    const zt_bf16 *bias; /* [cout] or NULL */
    const zt_bf16 *res;  /* [M][cout] or NULL */
    zt_bf16 *y;          /* [M][cout] */
    int pair_ok; /* 2-element stores allowed */
    int vec16;   /* 16-byte epilogue accesses allowed (cout % 8, y/res/bias aligned) */
} conv_args;

/* Output pixel m of the band, packed (y << 16 | x) for the A-tile gather;
 * -1 past M (x = 0xffff is outside every image: w <= 32768). */
__device__ __forceinline__ int conv_pixel(const conv_args &a, int m) {
    if (m >= a.M) return -1;
    const int py = m / a.w;
    return ((a.y0 + py) << 16) | (m - py * a.w);
}

/* y = R(tile + bias (+ residual)) for the BM x BN output tile at (m0, n0);
 * tile: f32 [BM][LD] in shared memory. One tile row is BN/8 consecutive
 * threads, so bias, residual and y move in coalesced 16-byte chunks. */
template <int BM, int BN, int THREADS, int LD>
__device__ __forceinline__ void conv_store_tile(const conv_args &a, const float *tile, int m0, int n0, int tid) {
    constexpr int CPR = BN / 8; /* 8-channel chunks per tile row */
    static_assert((BM * CPR) % THREADS == 0, "epilogue split");
#pragma unroll 4
    for (int it = 0; it < BM * CPR / THREADS; it++) {
        const int idx = tid + it * THREADS, r = idx / CPR, c8 = (idx % CPR) * 8;
        const int m = m0 + r, co = n0 + c8;
        if (m >= a.M || co >= a.cout) continue;
        float v[8];
        const float4 lo = *reinterpret_cast<const float4 *>(tile + r * LD + c8);
        const float4 hi = *reinterpret_cast<const float4 *>(tile + r * LD + c8 + 4);
        v[0] = lo.x; v[1] = lo.y; v[2] = lo.z; v[3] = lo.w;
        v[4] = hi.x; v[5] = hi.y; v[6] = hi.z; v[7] = hi.w;
        const size_t o = (size_t)m * a.cout + co;
        if (a.vec16) {
            float t[8];
            if (a.bias) {
                zt_ld8(a.bias + co, t);
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] += t[e];
            }
            if (a.res) {
                zt_ld8(a.res + o, t);
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] += t[e];
            }
            zt_st8(a.y + o, v);
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++) {
                if (co + e >= a.cout) break;
                float t = v[e];
                if (a.bias) t += __bfloat162float(a.bias[co + e]);
                if (a.res) t += __bfloat162float(a.res[o + e]);
                a.y[o + e] = __float2bfloat16_rn(t);
            }
        }
    }
}

/* kernels/cuda_conv_sm90.cu: the wgmma kernel. Returns false (launching
 * nothing) where it does not apply: not built for sm_90a, not a compute
 * capability 9.0 card, cin % 64 != 0, cout % bn != 0 or unaligned operands.
 * bn: 128 or 256 output channels per block; stages: 3 or 4. */
bool conv_wgmma_launch(zt_ops *ops, const conv_args *a, int bn, int stages);

#endif
