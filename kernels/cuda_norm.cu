/* kernels/cuda_norm.cu — RMSNorm, LayerNorm and the sandwich-norm residual
 * (zt_op_rmsnorm, zt_op_layernorm, zt_op_rmsnorm_gate_add).
 *
 * One group of G threads normalises one vector (a whole row, or one head of a
 * row): it loads the vector into registers once (NV chunks of 8 elements per
 * thread, 16-byte loads when every row/head start is 16-byte aligned),
 * reduces the statistics with warp shuffles (plus shared memory across the
 * warps of a group when G > 32), then scales and writes. Memory traffic is one
 * read of x (and resid) and one write; nothing is re-read. Blocks are
 * persistent (grid = what fits on the GPU) and prefetch their next vector
 * while they reduce the current one.
 *
 * Numerics (ops.h): statistics in f32; n = R(x·r), then R(n·weight),
 * R(n·scale), gate: R(gate·t), residual R(resid + t), where R rounds to bf16
 * when the output (y, or resid for gate_add) is bf16 and is the identity for
 * f32. r = 1/sqrtf(v + eps) (IEEE sqrt and division, as the CPU backend).
 *
 * Launch variants (kernels/cuda_norm.h; issue #4: reach >= 70% of copy
 * bandwidth), selected per launch by the ops context's setting:
 *   0  the kernels above.
 *   1  0 with a packed bf16 epilogue (bf16 outputs): R(x·r) two values per
 *      cvt.rn.bf16x2.f32 and the weight/scale/gate products and the
 *      residual sum as bf16x2 mul.rn/add.rn, instead of an f32 op, an F2F
 *      conversion (quarter-rate pipe) and a shift per element and step:
 *      ~2.5x fewer instructions after the reduction. Bitwise equal to 0.
 *   2  one vector per group, grid = every vector (no persistence or
 *      prefetch), group size fitted to the row (3840 = 96 threads x 5
 *      chunks, 2560 = 64 x 5), per-head RMSNorm of dim 8..256 run as whole
 *      rows with per-head statistics (q/k norm), packed epilogue.
 *   3  2 with x/resid loads that bypass L1 and prefetch 256 B in L2: the
 *      default (on an H200 at 4224 x 3840: 83-89% of a same-size copy, up
 *      from 61-73% for 0; 4 gains 1-3% more but evicts the output that
 *      the next GEMM reads from L2).
 *   4  3 with evict-first (.cs) stores of the output.
 * All variants use the formulas above; 2-4 sum the statistics of vectors
 * longer than 1024 elements in another order (other group sizes), which
 * moves results by the usual f32 reordering only; elsewhere they are
 * bitwise equal to 0 (the op test checks both). */
#include "kernels/cuda_common.cuh"
#include "kernels/cuda_norm.h"

#include <climits>
#include <stdlib.h>

enum { NORM_RMS = 0, NORM_LAYER = 1, NORM_RMS_GATE_ADD = 2 };

typedef struct {
    int rows, heads, dim;
    const void *x; int64_t ldx;
    const zt_bf16 *weight;  /* [dim] or NULL */
    const void *scale;      /* [heads*dim] of TY or NULL */
    const void *gate;       /* [heads*dim] of TY or NULL (gate_add) */
    float eps;
    void *y; int64_t ldy;   /* y, or resid for gate_add */
    int vec;                /* 16-byte chunks allowed */
    int hint;               /* variants 3-4: 1 streaming loads of x/resid, 2 .cs stores */
} norm_args;

#define NORM_BLOCK 256

/* Sum over the G threads of a group; every thread of the block must call it. */
template <int G> __device__ __forceinline__ float norm_group_sum(float v, float *red) {
    if (G <= 32) return zt_group_sum_warp<(G < 32 ? G : 32)>(v);
    v = zt_group_sum_warp<32>(v);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads(); /* red may still be read by a previous call */
    if (lane == 0) red[warp] = v;
    __syncthreads();
    const int w0 = (threadIdx.x / G) * (G / 32);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < G / 32; i++) s += red[w0 + i];
    return s;
}

/* Variants 3-4: a 16-byte load of x or resid that does not allocate in L1
 * (weight and scale, re-read for every row, stay there) and asks L2 for 256
 * bytes (rows are read whole). Not .nc: x may alias y. No memory clobber:
 * the only store to the same address is the thread's own, which depends on
 * the loaded value. */
__device__ __forceinline__ uint4 norm_ld_stream(const void *p) {
    uint4 u;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800 /* the L2 prefetch size needs sm_80 (sm_75 builds) */
    asm volatile("ld.global.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
                 : "l"(p));
#else
    asm volatile("ld.global.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
                 : "l"(p));
#endif
    return u;
}
/* Variant 4: evict-first store (the output is not read by this kernel). */
__device__ __forceinline__ void norm_st_stream(void *p, uint4 u) {
    asm volatile("st.global.cs.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(u.x), "r"(u.y), "r"(u.z), "r"(u.w)
                 : "memory");
}

/* 8 elements as loaded (bf16: 4 registers, f32: 8), unpacked when used, so
 * that two vectors (current + prefetched) fit in registers. */
template <typename T> struct norm_raw;
template <> struct norm_raw<zt_bf16> {
    uint4 u;
    __device__ __forceinline__ void zero() { u = make_uint4(0, 0, 0, 0); }
    __device__ __forceinline__ void load(const zt_bf16 *p, int e0, int dim, bool vec) {
        if (vec && e0 + 8 <= dim) {
            u = *reinterpret_cast<const uint4 *>(p + e0); /* plain load: x may alias y */
        } else {
            uint32_t w[4] = {0, 0, 0, 0};
            const unsigned short *q = reinterpret_cast<const unsigned short *>(p);
#pragma unroll
            for (int i = 0; i < 8; i++)
                if (e0 + i < dim) w[i / 2] |= (uint32_t)q[e0 + i] << (16 * (i & 1));
            u = make_uint4(w[0], w[1], w[2], w[3]);
        }
    }
    /* load, with the streaming hint when asked (variants 3-4) */
    __device__ __forceinline__ void load_h(const zt_bf16 *p, int e0, int dim, bool vec, bool hint) {
        if (hint && vec && e0 + 8 <= dim) u = norm_ld_stream(p + e0);
        else load(p, e0, dim, vec);
    }
    __device__ __forceinline__ void unpack(float v[8]) const {
        const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            v[2 * i] = __uint_as_float(w[i] << 16);
            v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
        }
    }
};
template <> struct norm_raw<float> {
    float f[8];
    __device__ __forceinline__ void zero() {
#pragma unroll
        for (int i = 0; i < 8; i++) f[i] = 0.0f;
    }
    __device__ __forceinline__ void load(const float *p, int e0, int dim, bool vec) {
        if (vec && e0 + 8 <= dim) {
            zt_ld8rw(p + e0, f);
        } else {
#pragma unroll
            for (int i = 0; i < 8; i++) f[i] = e0 + i < dim ? p[e0 + i] : 0.0f;
        }
    }
    __device__ __forceinline__ void load_h(const float *p, int e0, int dim, bool vec, bool hint) {
        if (hint && vec && e0 + 8 <= dim) {
            const uint4 a = norm_ld_stream(p + e0), b = norm_ld_stream(p + e0 + 4);
            f[0] = __uint_as_float(a.x); f[1] = __uint_as_float(a.y);
            f[2] = __uint_as_float(a.z); f[3] = __uint_as_float(a.w);
            f[4] = __uint_as_float(b.x); f[5] = __uint_as_float(b.y);
            f[6] = __uint_as_float(b.z); f[7] = __uint_as_float(b.w);
        } else {
            load(p, e0, dim, vec);
        }
    }
    __device__ __forceinline__ void unpack(float v[8]) const {
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = f[i];
    }
};

__device__ __forceinline__ void norm_load_chunk_ro(const zt_bf16 *p, int e0, int dim, bool vec, float v[8]) {
    if (vec && e0 + 8 <= dim) {
        zt_ld8(p + e0, v);
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = e0 + i < dim ? zt_ld(p + e0 + i) : 0.0f;
    }
}
__device__ __forceinline__ void norm_load_chunk_ro(const float *p, int e0, int dim, bool vec, float v[8]) {
    if (vec && e0 + 8 <= dim) {
        zt_ld8(p + e0, v);
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = e0 + i < dim ? p[e0 + i] : 0.0f;
    }
}
/* EXACT: the values are already representable in T (no rounding needed). */
template <bool EXACT, typename T>
__device__ __forceinline__ void norm_store_chunk(T *p, int e0, int dim, bool vec, const float v[8]) {
    if (vec && e0 + 8 <= dim) {
        if (EXACT) zt_st8_exact(p + e0, v);
        else zt_st8(p + e0, v);
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++)
            if (e0 + i < dim) zt_st(p + e0 + i, v[i]);
    }
}

/* ---- variants 1-4: the epilogue of one 8-element chunk ----------------
 * f: the chunk in f32 (minus the mean for LayerNorm), r: the reciprocal
 * RMS/std, n: valid elements (full: all 8 and 16-byte aligned), w / sc / g:
 * the weight, scale and gate chunks or NULL, res: the residual chunk
 * (gate_add, also the output), hint bit 2: .cs stores. */

/* A read-only bf16 chunk as loaded (4 words); missing elements are 0. */
__device__ __forceinline__ uint4 norm_ldg_raw(const zt_bf16 *p, int n, bool full) {
    if (full) return __ldg(reinterpret_cast<const uint4 *>(p));
    uint32_t w[4] = {0, 0, 0, 0};
    const unsigned short *q = reinterpret_cast<const unsigned short *>(p);
#pragma unroll
    for (int i = 0; i < 8; i++)
        if (i < n) w[i / 2] |= (uint32_t)__ldg(q + i) << (16 * (i & 1));
    return make_uint4(w[0], w[1], w[2], w[3]);
}
template <typename T> __device__ __forceinline__ void norm_ld8_n(const T *p, int n, bool full, float v[8]) {
    if (full) {
        zt_ld8(p, v);
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = i < n ? zt_ld(p + i) : 0.0f;
    }
}
__device__ __forceinline__ uint32_t norm_mul2(uint32_t a, uint32_t b) {
    const __nv_bfloat162 r =
        __hmul2_rn(*reinterpret_cast<const __nv_bfloat162 *>(&a), *reinterpret_cast<const __nv_bfloat162 *>(&b));
    return *reinterpret_cast<const uint32_t *>(&r);
}
__device__ __forceinline__ uint32_t norm_add2(uint32_t a, uint32_t b) {
    const __nv_bfloat162 r =
        __hadd2_rn(*reinterpret_cast<const __nv_bfloat162 *>(&a), *reinterpret_cast<const __nv_bfloat162 *>(&b));
    return *reinterpret_cast<const uint32_t *>(&r);
}

/* bf16 output, packed. Bitwise the per-element f32 path of variant 0: the
 * f32 product of two bf16 values is exact (unless below FLT_MIN), so
 * rounding it to bf16 is what mul.rn.bf16x2 does; and f32's 24 bits >=
 * 2·8 + 2 make an f32 sum of two bf16 values rounded to bf16 equal to the
 * sum rounded once (add.rn.bf16x2). On sm_80 both are fma.rn.bf16x2 with a
 * -0 addend or a 1 factor: one rounding as well. */
template <int MODE>
__device__ __forceinline__ void norm_out8(zt_bf16 *y, int n, bool full, const float f[8], float r, const zt_bf16 *w,
                                          const zt_bf16 *sc, const zt_bf16 *g, const norm_raw<zt_bf16> &res,
                                          int hint, const uint4 *wraw = NULL) {
    uint32_t h[4];
#pragma unroll
    for (int k = 0; k < 4; k++) h[k] = zt_pack_bf16x2(f[2 * k] * r, f[2 * k + 1] * r); /* R(x·r) */
    if (w) {
        const uint4 u = wraw ? *wraw : norm_ldg_raw(w, n, full);
        h[0] = norm_mul2(h[0], u.x); h[1] = norm_mul2(h[1], u.y);
        h[2] = norm_mul2(h[2], u.z); h[3] = norm_mul2(h[3], u.w);
    }
    if (sc) {
        const uint4 u = norm_ldg_raw(sc, n, full);
        h[0] = norm_mul2(h[0], u.x); h[1] = norm_mul2(h[1], u.y);
        h[2] = norm_mul2(h[2], u.z); h[3] = norm_mul2(h[3], u.w);
    }
    if (MODE == NORM_RMS_GATE_ADD) {
        if (g) {
            const uint4 u = norm_ldg_raw(g, n, full);
            h[0] = norm_mul2(u.x, h[0]); h[1] = norm_mul2(u.y, h[1]);
            h[2] = norm_mul2(u.z, h[2]); h[3] = norm_mul2(u.w, h[3]);
        }
        h[0] = norm_add2(res.u.x, h[0]); h[1] = norm_add2(res.u.y, h[1]);
        h[2] = norm_add2(res.u.z, h[2]); h[3] = norm_add2(res.u.w, h[3]);
    }
    if (full) {
        const uint4 o = make_uint4(h[0], h[1], h[2], h[3]);
        if (hint & 2) norm_st_stream(y, o);
        else *reinterpret_cast<uint4 *>(y) = o;
    } else {
        unsigned short *q = reinterpret_cast<unsigned short *>(y);
#pragma unroll
        for (int i = 0; i < 8; i++)
            if (i < n) q[i] = (unsigned short)(h[i / 2] >> (16 * (i & 1)));
    }
}
/* f32 output: no rounding, the operations of variant 0 in its order. */
template <int MODE>
__device__ __forceinline__ void norm_out8(float *y, int n, bool full, const float f[8], float r, const zt_bf16 *w,
                                          const float *sc, const float *g, const norm_raw<float> &res, int hint,
                                          const uint4 *wraw = NULL) {
    float v[8], p[8];
#pragma unroll
    for (int j = 0; j < 8; j++) v[j] = f[j] * r;
    if (w) {
        if (wraw) {
            norm_raw<zt_bf16> u;
            u.u = *wraw;
            u.unpack(p);
        } else {
            norm_ld8_n(w, n, full, p);
        }
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] = v[j] * p[j];
    }
    if (sc) {
        norm_ld8_n(sc, n, full, p);
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] = v[j] * p[j];
    }
    if (MODE == NORM_RMS_GATE_ADD) {
        if (g) {
            norm_ld8_n(g, n, full, p);
#pragma unroll
            for (int j = 0; j < 8; j++) v[j] = p[j] * v[j];
        }
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] = res.f[j] + v[j];
    }
    if (full) {
        if (hint & 2) {
            norm_st_stream(y, make_uint4(__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]),
                                         __float_as_uint(v[3])));
            norm_st_stream(y + 4, make_uint4(__float_as_uint(v[4]), __float_as_uint(v[5]), __float_as_uint(v[6]),
                                             __float_as_uint(v[7])));
        } else {
            zt_st8(y, v);
        }
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++)
            if (i < n) y[i] = v[i];
    }
}

#define NORM_BT(G) ((G) > NORM_BLOCK ? (G) : NORM_BLOCK)

/* Statistics of one whole vector held by a group of G threads (thread t has
 * chunks t, t+G, ... of 8 elements; padding chunks are zero): *mean (layer
 * norm; 0 for RMS) and *r = 1/sqrt(var or mean square + eps). Every thread
 * of the block must call it (group sums go through shared memory). */
template <int G, int NV, int MODE, typename RAW>
__device__ __forceinline__ void norm_row_stats(const RAW (&x)[NV], int t, int dim, float eps, float *red, float *mean,
                                               float *r) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < NV; i++) {
        float f[8];
        x[i].unpack(f);
#pragma unroll
        for (int j = 0; j < 8; j++) s += MODE == NORM_LAYER ? f[j] : f[j] * f[j];
    }
    s = norm_group_sum<G>(s, red);
    *mean = 0.0f;
    if (MODE != NORM_LAYER) {
        *r = 1.0f / sqrtf(s / (float)dim + eps);
        return;
    }
    *mean = s / (float)dim;
    float q = 0.0f;
#pragma unroll
    for (int i = 0; i < NV; i++) {
        const int e0 = (t + i * G) * 8;
        float f[8];
        x[i].unpack(f);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const float d = f[j] - *mean;
            if (e0 + j < dim) q += d * d;
        }
    }
    q = norm_group_sum<G>(q, red);
    *r = 1.0f / sqrtf(q / (float)dim + eps);
}

/* Persistent blocks: a block walks vectors base, base + stride, ... (stride =
 * grid * groups per block) and loads vector i+1 (x, and resid for gate_add)
 * before it reduces and writes vector i, so loads stay in flight across the
 * barriers of the reduction. The loop count is uniform over the block.
 * PACK (variant 1, bf16 outputs only): the packed epilogue norm_out8. */
template <typename TX, typename TY, int G, int NV, int MODE, bool PACK>
__global__ void __launch_bounds__(NORM_BT(G)) k_norm(norm_args a) {
    __shared__ float red[NORM_BT(G) / 32];
    const int per_block = NORM_BT(G) / G;
    const long long nvec = (long long)a.rows * a.heads;
    const long long stride = (long long)gridDim.x * per_block;
    const int t = threadIdx.x % G, grp = threadIdx.x / G;
    const int dim = a.dim;
    const bool vec = a.vec != 0;
    const bool gate_mode = MODE == NORM_RMS_GATE_ADD;

    norm_raw<TX> xc[NV];
    norm_raw<TY> rc[gate_mode ? NV : 1];
    auto load_vec = [&](long long v, norm_raw<TX> *xr, norm_raw<TY> *rr) {
        const bool live = v < nvec;
        long long row = 0;
        int head = 0;
        if (live) {
            row = v / a.heads;
            head = (int)(v - row * a.heads);
        }
        const TX *x = (const TX *)a.x + row * a.ldx + (long long)head * dim;
        const TY *y = (const TY *)a.y + row * a.ldy + (long long)head * dim;
#pragma unroll
        for (int i = 0; i < NV; i++) {
            const int e0 = (t + i * G) * 8;
            if (live && e0 < dim) {
                xr[i].load(x, e0, dim, vec);
                if (gate_mode) rr[i].load(y, e0, dim, vec);
            } else {
                xr[i].zero();
                if (gate_mode) rr[i].zero();
            }
        }
    };

    long long base = (long long)blockIdx.x * per_block;
    load_vec(base + grp, xc, rc);
    for (; base < nvec; base += stride) {
        const long long v = base + grp;
        norm_raw<TX> xn[NV];
        norm_raw<TY> rn[gate_mode ? NV : 1];
        if (base + stride < nvec) load_vec(v + stride, xn, rn); /* prefetch */

        float mean, r;
        norm_row_stats<G, NV, MODE>(xc, t, dim, a.eps, red, &mean, &r);

        if (v < nvec) {
            const long long row = v / a.heads;
            const int head = (int)(v - row * a.heads);
            TY *y = (TY *)a.y + row * a.ldy + (long long)head * dim;
            const TY *scale = (const TY *)a.scale;
            const TY *gate = (const TY *)a.gate;
#pragma unroll
            for (int i = 0; i < NV; i++) {
                const int e0 = (t + i * G) * 8;
                if (e0 >= dim) continue;
                if (PACK) {
                    float f[8];
                    xc[i].unpack(f);
                    if (MODE == NORM_LAYER) {
#pragma unroll
                        for (int j = 0; j < 8; j++) f[j] = f[j] - mean;
                    }
                    const int cnt = dim - e0 < 8 ? dim - e0 : 8;
                    const long long hs = (long long)head * dim + e0;
                    norm_out8<MODE>(y + e0, cnt, vec && cnt == 8, f, r, a.weight ? a.weight + e0 : NULL,
                                    scale ? scale + hs : NULL, gate ? gate + hs : NULL, rc[gate_mode ? i : 0], 0);
                    continue;
                }
                float n[8], p[8];
                xc[i].unpack(n);
#pragma unroll
                for (int j = 0; j < 8; j++) n[j] = zt_rnd<TY>((MODE == NORM_LAYER ? n[j] - mean : n[j]) * r);
                if (a.weight) {
                    norm_load_chunk_ro(a.weight, e0, dim, vec, p);
#pragma unroll
                    for (int j = 0; j < 8; j++) n[j] = zt_rnd<TY>(n[j] * p[j]);
                }
                if (scale) {
                    norm_load_chunk_ro(scale + (long long)head * dim, e0, dim, vec, p);
#pragma unroll
                    for (int j = 0; j < 8; j++) n[j] = zt_rnd<TY>(n[j] * p[j]);
                }
                if (gate_mode) {
                    if (gate) {
                        norm_load_chunk_ro(gate + (long long)head * dim, e0, dim, vec, p);
#pragma unroll
                        for (int j = 0; j < 8; j++) n[j] = zt_rnd<TY>(p[j] * n[j]);
                    }
                    rc[gate_mode ? i : 0].unpack(p);
#pragma unroll
                    for (int j = 0; j < 8; j++) n[j] = p[j] + n[j];
                }
                /* rms/layer: n went through zt_rnd<TY> last, so it is exact */
                norm_store_chunk<!gate_mode>(y, e0, dim, vec, n);
            }
        }
#pragma unroll
        for (int i = 0; i < NV; i++) {
            xc[i] = xn[i];
            if (gate_mode) rc[gate_mode ? i : 0] = rn[gate_mode ? i : 0];
        }
    }
}

/* Variants 2-4: one vector per group and no persistence (grid = every
 * vector). Without the prefetch copy a thread needs about half the
 * registers, so more groups are resident per SM and the scheduler overlaps
 * one block's loads with another's reduction and stores; no per-block loop,
 * no tail of uneven iterations, 32-bit vector indexing (the host checks the
 * count fits). Groups of G <= 32 share 128-thread blocks; a larger group is
 * its own block, so barriers couple no other vector.
 * SEG (RMSNorm, heads > 1, dim = 8·cph with cph a power of two <= 32): a
 * group normalises a whole row of heads. Chunk c of the row belongs to head
 * c / cph and G % cph == 0, so the cph lanes of a head are consecutive,
 * aligned and the same for each of a thread's NV chunks: every chunk has its
 * own statistic, summed by xor shuffles over cph lanes exactly as variant
 * 0's groups of G = cph lanes do (bitwise the same result). q/k norm then
 * moves 7.5 KB row spans like rmsnorm instead of 256-byte heads with a
 * 64-bit division each. */
#define NORM_GRID_BT(G) ((G) <= 32 ? 128 : (G))
template <typename TX, typename TY, int G, int NV, int MODE, bool SEG>
__global__ void __launch_bounds__(NORM_GRID_BT(G)) k_norm_grid(norm_args a) {
    constexpr int BT = NORM_GRID_BT(G), PER = BT / G;
    constexpr bool gate_mode = MODE == NORM_RMS_GATE_ADD;
    __shared__ float red[BT / 32];
    const int t = threadIdx.x % G;
    const int v = (int)blockIdx.x * PER + (int)threadIdx.x / G;
    const int nvec = SEG ? a.rows : a.rows * a.heads;
    const bool live = v < nvec;
    const int dim = a.dim, width = SEG ? a.heads * dim : dim; /* elements of the group's span */
    const bool vec = a.vec != 0, hint_ld = (a.hint & 1) != 0;
    int row = 0, head = 0;
    if (live && !SEG) {
        row = v / a.heads;
        head = v - row * a.heads;
    } else if (live) {
        row = v;
    }
    const long long hoff = (long long)head * dim;
    const TX *x = (const TX *)a.x + row * a.ldx + hoff;
    TY *y = (TY *)a.y + row * a.ldy + hoff;

    norm_raw<TX> xr[NV];
    norm_raw<TY> rr[gate_mode ? NV : 1];
#pragma unroll
    for (int i = 0; i < NV; i++) {
        const int e0 = (t + i * G) * 8;
        if (live && e0 < width) {
            xr[i].load_h(x, e0, width, vec, hint_ld);
            if (gate_mode) rr[gate_mode ? i : 0].load_h(y, e0, width, vec, hint_ld);
        } else {
            xr[i].zero();
            if (gate_mode) rr[gate_mode ? i : 0].zero();
        }
    }

    /* statistics: variant 0's formulas and, per vector, its summation order
     * for the same (G, NV) */
    float mean = 0.0f, r = 0.0f;
    float rs[SEG ? NV : 1];
    if (SEG) {
        const int cph = dim >> 3;
        float ss[SEG ? NV : 1];
#pragma unroll
        for (int i = 0; i < NV; i++) {
            float f[8], s = 0.0f;
            xr[i].unpack(f);
#pragma unroll
            for (int j = 0; j < 8; j++) s += f[j] * f[j];
            for (int o = cph >> 1; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
            ss[SEG ? i : 0] = s; /* the same bits on every lane of the head (+ commutes) */
        }
        if (NV <= cph) {
            /* A warp holds (32 / cph)·NV head sums: lane L computes the
             * IEEE div + sqrt + div of r (~40 instructions) for head chunk
             * L % NV of segment L / NV once, instead of every lane NV times,
             * and the values go back by shuffles. */
            const int lane = threadIdx.x & 31;
            float mine = 0.0f;
#pragma unroll
            for (int i = 0; i < NV; i++) {
                const float s = __shfl_sync(0xffffffffu, ss[SEG ? i : 0], (lane / NV) * cph);
                if (lane % NV == i) mine = s;
            }
            const float rl = 1.0f / sqrtf(mine / (float)dim + a.eps);
#pragma unroll
            for (int i = 0; i < NV; i++) rs[SEG ? i : 0] = __shfl_sync(0xffffffffu, rl, (lane / cph) * NV + i);
        } else {
#pragma unroll
            for (int i = 0; i < NV; i++) rs[SEG ? i : 0] = 1.0f / sqrtf(ss[SEG ? i : 0] / (float)dim + a.eps);
        }
    } else {
        norm_row_stats<G, NV, MODE>(xr, t, dim, a.eps, red, &mean, &r);
    }
    if (!live) return; /* after the last barrier */

    const TY *scale = (const TY *)a.scale, *gate = (const TY *)a.gate;
    /* SEG: the weight chunk is at (c % cph)·8 = (t % cph)·8 for every chunk:
     * loaded once */
    const int wofs = SEG ? (t % (dim >> 3)) * 8 : 0;
    uint4 wraw = make_uint4(0, 0, 0, 0);
    if (SEG && a.weight) wraw = norm_ldg_raw(a.weight + wofs, 8, vec);
#pragma unroll
    for (int i = 0; i < NV; i++) {
        const int e0 = (t + i * G) * 8;
        if (e0 >= width) continue;
        float f[8];
        xr[i].unpack(f);
        if (MODE == NORM_LAYER) {
#pragma unroll
            for (int j = 0; j < 8; j++) f[j] = f[j] - mean;
        }
        const int cnt = width - e0 < 8 ? width - e0 : 8;
        norm_out8<MODE>(y + e0, cnt, vec && cnt == 8, f, SEG ? rs[SEG ? i : 0] : r,
                        a.weight ? a.weight + (SEG ? wofs : e0) : NULL, scale ? scale + hoff + e0 : NULL,
                        gate ? gate + hoff + e0 : NULL, rr[gate_mode ? i : 0], a.hint, SEG ? &wraw : NULL);
    }
}

static int norm_sm_count(void) {
    static int sms[64];
    int dev = 0;
    ZT_CUDA_CHECK(cudaGetDevice(&dev));
    if (dev < 0 || dev >= 64) dev = 0;
    if (!sms[dev]) ZT_CUDA_CHECK(cudaDeviceGetAttribute(&sms[dev], cudaDevAttrMultiProcessorCount, dev));
    return sms[dev];
}

/* Variants 0 and 1 (PACK). */
template <typename TX, typename TY, int MODE, bool PACK>
static void norm_launch_persist(const zt_ops *ops, const norm_args *a) {
    const int chunks = (a->dim + 7) / 8;
    const long long nvec = (long long)a->rows * a->heads;
    cudaStream_t st = zt_cu_stream(ops);
#define NORM_GO(G, NV)                                                                          \
    do {                                                                                        \
        auto kern = k_norm<TX, TY, G, NV, MODE, PACK>;                                          \
        static int resident; /* blocks per SM, from the occupancy calculator */                 \
        if (!resident) {                                                                        \
            int r = 0;                                                                          \
            ZT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&r, kern, NORM_BT(G), 0)); \
            resident = r > 0 ? r : 1;                                                           \
        }                                                                                       \
        const int per = NORM_BT(G) / G;                                                         \
        long long nb = (nvec + per - 1) / per;                                                  \
        const long long cap = (long long)resident * norm_sm_count();                            \
        if (nb > cap) nb = cap;                                                                 \
        kern<<<(unsigned)nb, NORM_BT(G), 0, st>>>(*a);                                          \
        ZT_CUDA_LAUNCH_CHECK();                                                                 \
        return;                                                                                 \
    } while (0)
    if (chunks <= 8) NORM_GO(8, 1);
    if (chunks <= 16) NORM_GO(16, 1);
    if (chunks <= 128) NORM_GO(32, 4);
    if (chunks <= 512) NORM_GO(128, 4);
    if (chunks <= 2048) NORM_GO(256, 8);
    if (chunks <= 4096) NORM_GO(1024, 4);
#undef NORM_GO
    fprintf(stderr, "zturbo: %s:%d: norm: dim %d too large (max 32768)\n", __FILE__, __LINE__, a->dim);
    abort();
}

/* Variants 2-4. */
template <typename TX, typename TY, int G, int NV, int MODE, bool SEG>
static void norm_grid_go(const zt_ops *ops, const norm_args *a) {
    constexpr int per = NORM_GRID_BT(G) / G;
    const long long nvec = SEG ? a->rows : (long long)a->rows * a->heads;
    k_norm_grid<TX, TY, G, NV, MODE, SEG><<<(unsigned)((nvec + per - 1) / per), NORM_GRID_BT(G), 0, zt_cu_stream(ops)>>>(*a);
    ZT_CUDA_LAUNCH_CHECK();
}
/* False where the grid kernel does not apply (more than INT_MAX vectors or
 * a vector over 32768 elements): the caller runs variant 0, which handles
 * (or rejects) those. G·NV is fitted to the span so few lanes idle: 3840 =
 * 96·5·8, 2560 = 64·5·8, q/k rows 30·128 = 96·5·8, Qwen3's 32·128 = 128·4·8;
 * up to 1024 elements the choice (and so the sum order) is variant 0's. */
template <typename TX, typename TY, int MODE> static bool norm_launch_grid(const zt_ops *ops, const norm_args *a) {
    if ((long long)a->rows * a->heads > INT_MAX) return false;
    const int cph = a->dim / 8;
    const bool seg = MODE == NORM_RMS && a->heads > 1 && a->dim % 8 == 0 && cph <= 32 && (cph & (cph - 1)) == 0 &&
                     (long long)a->heads * cph <= 4096;
    const long long w = seg ? (long long)a->heads * cph : (a->dim + 7) / 8; /* chunks of the group's span */
#define NORM_GRID_GO(G, NV)                                                                   \
    do {                                                                                      \
        if constexpr (MODE == NORM_RMS && (G) >= 32) {                                        \
            if (seg) {                                                                        \
                norm_grid_go<TX, TY, G, NV, MODE, true>(ops, a);                              \
                return true;                                                                  \
            }                                                                                 \
        }                                                                                     \
        norm_grid_go<TX, TY, G, NV, MODE, false>(ops, a); /* seg with w <= 16: cph <= w */     \
        return true;                                                                          \
    } while (0)
    if (w <= 16) NORM_GRID_GO(16, 1);
    if (w <= 128) NORM_GRID_GO(32, 4);
    if (w <= 320) NORM_GRID_GO(64, 5);
    if (w <= 480) NORM_GRID_GO(96, 5);
    if (w <= 1024) NORM_GRID_GO(128, 8);
    if (w <= 4096) NORM_GRID_GO(512, 8);
#undef NORM_GRID_GO
    return false;
}

template <typename TX, typename TY, int MODE> static void norm_launch_t(const zt_ops *ops, const norm_args *a, int variant) {
    if (variant >= 2 && norm_launch_grid<TX, TY, MODE>(ops, a)) return;
    /* variant 1 differs from 0 only where rounding to bf16 happens */
    if constexpr (std::is_same<TY, zt_bf16>::value) {
        if (variant == 1) {
            norm_launch_persist<TX, TY, MODE, true>(ops, a);
            return;
        }
    }
    norm_launch_persist<TX, TY, MODE, false>(ops, a);
}

template <int MODE>
static void norm_run(zt_ops *ops, const zt_norm *n, const void *gate, void *out, zt_dtype out_dt, int64_t ld_out) {
    ZT_ASSERT(n->rows >= 0 && n->heads >= 1 && n->dim >= 1 && n->x && out);
    if (n->y_dt == ZT_DT_F16) { /* the fp16 path: kernels/cuda_norm_f16.cu */
        zt_cuda_norm_f16(ops, n, MODE, gate, out, ld_out);
        return;
    }
    ZT_ASSERT(!n->w_f16 && !n->resid_f32);
    if (n->rows == 0) return;
    ZT_ASSERT(n->x_dt == ZT_DT_F32 || n->x_dt == ZT_DT_BF16);
    ZT_ASSERT(out_dt == ZT_DT_F32 || out_dt == ZT_DT_BF16);
    norm_args a;
    a.rows = n->rows; a.heads = n->heads; a.dim = n->dim;
    a.x = n->x; a.ldx = n->ldx ? n->ldx : (int64_t)n->heads * n->dim;
    a.weight = (const zt_bf16 *)n->weight;
    a.scale = n->scale;
    a.gate = gate;
    a.eps = n->eps;
    a.y = out; a.ldy = ld_out ? ld_out : (int64_t)n->heads * n->dim;
    ZT_ASSERT(a.ldx >= (int64_t)n->heads * n->dim && a.ldy >= (int64_t)n->heads * n->dim);
    const unsigned sx = zt_dtype_size(n->x_dt), sy = zt_dtype_size(out_dt);
    a.vec = n->dim % 8 == 0 && zt_al16(n->x) && (a.ldx * sx) % 16 == 0 && zt_al16(out) && (a.ldy * sy) % 16 == 0 &&
            (!n->weight || zt_al16(n->weight)) && (!n->scale || zt_al16(n->scale)) && (!gate || zt_al16(gate));
    const int variant = ops->norm_variant;
    a.hint = variant == 3 ? 1 : variant == 4 ? 3 : 0;
    const bool xb = n->x_dt == ZT_DT_BF16, yb = out_dt == ZT_DT_BF16;
    if (xb && yb) norm_launch_t<zt_bf16, zt_bf16, MODE>(ops, &a, variant);
    else if (xb) norm_launch_t<zt_bf16, float, MODE>(ops, &a, variant);
    else if (yb) norm_launch_t<float, zt_bf16, MODE>(ops, &a, variant);
    else norm_launch_t<float, float, MODE>(ops, &a, variant);
}

void zt_cuda_rmsnorm(zt_ops *ops, const zt_norm *n) { norm_run<NORM_RMS>(ops, n, NULL, n->y, n->y_dt, n->ldy); }

void zt_cuda_layernorm(zt_ops *ops, const zt_norm *n) {
    ZT_ASSERT(n->weight == NULL);
    norm_run<NORM_LAYER>(ops, n, NULL, n->y, n->y_dt, n->ldy);
}

void zt_cuda_rmsnorm_gate_add(zt_ops *ops, const zt_norm *n, const void *gate, void *resid, int64_t ld_resid) {
    norm_run<NORM_RMS_GATE_ADD>(ops, n, gate, resid, n->y_dt, ld_resid);
}
