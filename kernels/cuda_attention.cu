/* kernels/cuda_attention.cu — fused flash attention (bf16 or f16 in/out, f32
 * softmax and accumulation) on the tensor cores with mma.sync m16n8k16
 * (sm_80 and newer; no Hopper-only instructions, so one source serves the
 * whole fat binary). The f16 instances (template flag F16: the fp16 path)
 * also compile for sm_75 (Turing): two m16n8k8 per k16 step and plain
 * loads instead of cp.async (mma_f16, zt_cp_async16). On Hopper builds for sm_90a, non-causal hd 128 (the
 * DiT) runs on the wgmma kernel of kernels/cuda_attention_sm90.cu instead
 * (variants 7-8: 491 against 369 TFLOP/s at 4224 tokens on the H100).
 *
 * Algorithm (FlashAttention-2 forward): a CTA owns BM query rows of one head
 * and walks the key/value rows in tiles of BN. For each tile it computes
 * S = Q·Kᵀ in f32, updates the running row max m and row sum l (online
 * softmax, exp2 with the scale folded in), rounds P = exp(S - m) to bf16 and
 * accumulates O += P·V in f32. At the end O / l is rounded once to bf16. The
 * sq x sk matrix never leaves registers.
 *
 * Softmax uses lazy rescaling (zt_softmax_raise): the max used for exp is
 * only raised when the tile max exceeds it by more than 2^8, so the O
 * rescale runs on a few tiles per row, not on every tile.
 *
 * Two kernels:
 *   attn_narrow  hd 64 / 128. Each warp owns MT m16 tiles of query rows and
 *                all hd output columns. K/V tiles are staged in shared memory
 *                by cp.async, STAGES deep; fragments come from ldmatrix.
 *                With MT = 2 (32 rows per warp) every K/V fragment read from
 *                shared memory feeds two mma, which is what lifts it from
 *                ~300 to ~360 TFLOP/s on an H100 (tools/attnbench).
 *   attn_wide    hd 512 (VAE mid-block). A warp cannot hold 16 x 512 f32
 *                accumulators, so the two warps of a row group split the work:
 *                for S each computes 16 of the 32 keys of the tile (over the
 *                full 512), they swap row maxima and bf16 P through shared
 *                memory, then each accumulates P·V into its own 256-column half
 *                of O over all 32 keys.
 *
 * Measured on an H100 SXM (median, tools/attnbench vs torch 2.11 SDPA):
 * DiT 4224 tokens x 30 heads x hd 128: 358 TFLOP/s (SDPA 575); 16512
 * tokens: 371 (612); VAE hd 512, 16384 tokens: 210 (120). The limit is
 * mma.sync itself: ncu shows the tensor pipe ~58% busy with 8 warps per SM,
 * stalls mostly on fixed-latency dependencies (softmax between the two
 * GEMMs); SDPA's Hopper kernels use wgmma (sm_90a), as the sm_90a kernel
 * does.
 *
 * Shared-memory tiles are rows of hd bf16 (hd/8 chunks of 16 bytes); chunk c
 * of row r is stored at chunk c ^ (r & 7) so that ldmatrix (8 rows, same
 * chunk) and the 16-byte cp.async stores are free of bank conflicts.
 *
 * Masking: keys >= sk and, if causal, keys > i + (sk - sq) for query row i
 * get S = -inf. Rows with no visible key (causal with sk < sq) output 0.
 * Out-of-range rows of Q/K/V tiles are zero-filled by cp.async (so P·V never
 * touches garbage); out-of-range query rows are never stored.
 */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "common/zt_cuda.h"
#include "kernels/cuda_attention.cuh"
#include "kernels/cuda_attention_params.cuh"
#include "kernels/cuda_common.cuh"
#include "kernels/ops_internal.h"

namespace {

/* ---- PTX helpers --------------------------------------------------------- */

__device__ __forceinline__ void ldsm_x4(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

/* d += a·b, m16n8k16, bf16 inputs, f32 accumulators (sm_80+: a build for
 * sm_75 has no bf16 MMA; it only ever runs the f16 kernels). */
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    (void)d; (void)a; (void)b0; (void)b1;
    __trap();
#endif
}

/* The same with f16 inputs (the fp16 path). sm_80+: one m16n8k16. sm_75
 * (Turing) has only m16n8k8 for f16: the k16 fragments split in two, A's
 * registers {a0, a1} / {a2, a3} and B's b0 / b1 holding k 0-7 / 8-15 in the
 * same lane layout, so two k8 MMAs accumulate the same sum in two steps. */
__device__ __forceinline__ void mma_f16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(b0));
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[2]), "r"(a[3]), "r"(b1));
#endif
}

/* The element type of a kernel instance: bf16 (F16 false) or f16. */
template <bool F16> __device__ __forceinline__ void mma16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    if (F16) mma_f16(d, a, b0, b1);
    else mma_bf16(d, a, b0, b1);
}
template <bool F16> __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    return F16 ? zt_pack_f16x2(lo, hi) : zt_pack_bf16x2(lo, hi);
}

/* Byte offset of 16-byte chunk c of row r in a swizzled tile of HD columns. */
template <int HD>
__device__ __forceinline__ uint32_t swz(int r, int c) {
    return (uint32_t)(r * (HD * 2) + ((c ^ (r & 7)) << 4));
}

/* Stage rows [row0, row0 + ROWS) of a [nrows, HD] view (row stride ld) into a
 * swizzled shared tile with NT threads; rows >= nrows are zero-filled.
 * Thread tid copies chunk tid % CH of rows tid / CH + i * (NT / CH). */
template <int HD, int ROWS, int NT>
struct TileLoader {
    static constexpr int CH = HD / 8;
    static constexpr int RSTEP = NT / CH;
    static constexpr int ITERS = ROWS / RSTEP;
    static_assert(NT % CH == 0 && ROWS % RSTEP == 0, "tile shape");
    int lr, lc;
    int64_t step; /* RSTEP rows, elements */
    __device__ __forceinline__ TileLoader(int tid, int64_t ld) : lr(tid / CH), lc(tid % CH), step(RSTEP * ld) {}
    /* base: element (row 0, col 0) of the [nrows, HD] view */
    __device__ __forceinline__ void load(uint32_t dst, const uint16_t *base, int64_t ld, int row0, int nrows) const {
        const uint16_t *src = base + (int64_t)(row0 + lr) * ld + lc * 8;
        const int left = nrows - row0 - lr;
#pragma unroll
        for (int i = 0; i < ITERS; i++) {
            bool ok = i * RSTEP < left;
            zt_cp_async16(dst + swz<HD>(lr + i * RSTEP, lc), ok ? src + i * step : base, ok ? 16 : 0);
        }
    }
};

/* Write a swizzled [ROWS, HD] bf16 shared tile to rows [row0, row0 + ROWS)
 * of o (16-byte stores), skipping rows >= nrows. */
template <int HD, int ROWS, int NT>
__device__ __forceinline__ void store_tile(uint16_t *o, int64_t ld, int row0, int nrows, const uint8_t *tile,
                                           int tid) {
    constexpr int CH = HD / 8;
#pragma unroll 4
    for (int i = tid; i < ROWS * CH; i += NT) {
        int r = i / CH, c = i % CH;
        if (row0 + r < nrows)
            *reinterpret_cast<uint4 *>(o + (int64_t)(row0 + r) * ld + c * 8) =
                *reinterpret_cast<const uint4 *>(tile + swz<HD>(r, c));
    }
}

/* Exclusive end of the keys any of the query rows [q0, q0 + bm) can see. */
__device__ __forceinline__ int key_end(const AttnParams &p, int q0, int bm) {
    if (!p.causal) return p.sk;
    int last = min(q0 + bm, p.sq) - 1;
    return max(0, min(p.sk, last + 1 + p.sk - p.sq));
}

/* ---- hd 64 / 128 ------------------------------------------------------------ */

/* Lazy rescaling (as in FlashAttention-4): zt_softmax_raise (cuda_common.cuh). */

template <int HD, int MT, int NWARPS, int BN, int STAGES, bool QREG>
struct NarrowCfg {
    static constexpr int NT = NWARPS * 32;
    static constexpr int BM = 16 * MT * NWARPS;
    static constexpr int Q_BYTES = BM * HD * 2;
    static constexpr int KV_BYTES = BN * HD * 2; /* one K or V tile */
    static constexpr int SMEM = Q_BYTES + STAGES * 2 * KV_BYTES;
};

template <int HD, int MT, int NWARPS, int BN, int STAGES, bool QREG, bool F16>
__global__ void __launch_bounds__(NWARPS * 32, 1) attn_narrow(const AttnParams p) {
    using C = NarrowCfg<HD, MT, NWARPS, BN, STAGES, QREG>;
    constexpr int NT = C::NT, BM = C::BM;
    constexpr int KSTEPS = HD / 16; /* k-steps of Q·Kᵀ */
    constexpr int NTILE = BN / 8;   /* n8 tiles of S */
    constexpr int DTILE = HD / 8;   /* n8 tiles of O */
    extern __shared__ __align__(128) uint8_t smem[];
    const uint32_t sq_base = zt_smem_u32(smem);
    const uint32_t skv_base = sq_base + C::Q_BYTES;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int head = blockIdx.y, kvh = head / p.group;
    /* causal: heavier (later) query blocks first */
    const int qb = p.causal ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int q0 = qb * BM;
    const uint16_t *qg = p.q + (int64_t)head * HD;
    const uint16_t *kg = p.k + (int64_t)kvh * HD;
    const uint16_t *vg = p.v + (int64_t)kvh * HD;
    uint16_t *og = p.o + (int64_t)head * HD;

    const int kend = key_end(p, q0, BM);
    const int ntiles = (kend + BN - 1) / BN;
    const int diag = q0 + p.sk - p.sq; /* first query row of the block sees keys <= diag */
    const int wrow = warp * 16 * MT;   /* first row of this warp in the block */
    const float sl2 = p.scale_log2;

    float o[MT][DTILE][4];
    float ms[MT][2], l[MT][2]; /* ms: max used for exp, times scale*log2e; l: thread-partial row sums */
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int d = 0; d < DTILE; d++) o[mt][d][0] = o[mt][d][1] = o[mt][d][2] = o[mt][d][3] = 0.f;
        ms[mt][0] = ms[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.f;
    }
    uint32_t qf[QREG ? MT : 1][QREG ? KSTEPS : 1][4];

    const TileLoader<HD, BN, NT> kload(tid, p.ldk), vload(tid, p.ldv);
    auto load_kv = [&](int tile) {
        uint32_t kd = skv_base + (tile % STAGES) * 2 * C::KV_BYTES;
        kload.load(kd, kg, p.ldk, tile * BN, p.sk);
        vload.load(kd + C::KV_BYTES, vg, p.ldv, tile * BN, p.sk);
    };
    auto stage_k = [&](int tile) { return skv_base + (tile % STAGES) * 2 * C::KV_BYTES; };

    auto load_qfrags = [&]() {
        if (QREG) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int kk = 0; kk < KSTEPS; kk++) {
                    int r = wrow + mt * 16 + (lane & 15);
                    uint32_t(&f)[4] = qf[QREG ? mt : 0][QREG ? kk : 0];
                    ldsm_x4(sq_base + swz<HD>(r, 2 * kk + (lane >> 4)), f[0], f[1], f[2], f[3]);
                }
        }
    };

    /* s = Q·K_tileᵀ */
    auto compute_s = [&](float(&s)[MT][NTILE][4], uint32_t sk_t) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int n = 0; n < NTILE; n++) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KSTEPS; kk++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                if (QREG) {
#pragma unroll
                    for (int x = 0; x < 4; x++) a[mt][x] = qf[QREG ? mt : 0][QREG ? kk : 0][x];
                } else {
                    int r = wrow + mt * 16 + (lane & 15);
                    ldsm_x4(sq_base + swz<HD>(r, 2 * kk + (lane >> 4)), a[mt][0], a[mt][1], a[mt][2], a[mt][3]);
                }
            }
#pragma unroll
            for (int np = 0; np < NTILE / 2; np++) {
                uint32_t b0, b1, b2, b3;
                int kr = np * 16 + (lane & 7) + ((lane >> 4) << 3);
                ldsm_x4(sk_t + swz<HD>(kr, 2 * kk + ((lane >> 3) & 1)), b0, b1, b2, b3);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma16<F16>(s[mt][2 * np], a[mt], b0, b1);
                    mma16<F16>(s[mt][2 * np + 1], a[mt], b2, b3);
                }
            }
        }
    };

    /* -inf where the key is >= sk or above the causal diagonal */
    auto mask_s = [&](float(&s)[MT][NTILE][4], int n0) {
        if (n0 + BN > p.sk || (p.causal && n0 + BN - 1 > diag)) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int r = 0; r < 2; r++) {
                    int qi = q0 + wrow + mt * 16 + g + 8 * r;
                    int lim = p.causal ? min(p.sk, qi + p.sk - p.sq + 1) : p.sk;
#pragma unroll
                    for (int n = 0; n < NTILE; n++)
#pragma unroll
                        for (int e = 0; e < 2; e++)
                            if (n0 + n * 8 + 2 * t + e >= lim) s[mt][n][2 * r + e] = -INFINITY;
                }
        }
    };

    /* raise the exp max of rows whose tile max outgrew it (rare after the
     * first tile), rescaling their O and l */
    auto update_max = [&](const float(&s)[MT][NTILE][4]) {
        float mx[MT][2];
        bool need = false;
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int r = 0; r < 2; r++) {
                float x = -INFINITY;
#pragma unroll
                for (int n = 0; n < NTILE; n++) x = fmaxf(x, fmaxf(s[mt][n][2 * r], s[mt][n][2 * r + 1]));
                mx[mt][r] = zt_quad_max(x) * sl2;
                need |= zt_softmax_outgrown(mx[mt][r], ms[mt][r]);
            }
        if (__any_sync(0xffffffffu, need)) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int r = 0; r < 2; r++) {
                    const float alpha = zt_softmax_raise(mx[mt][r], ms[mt][r]);
                    l[mt][r] *= alpha;
#pragma unroll
                    for (int d = 0; d < DTILE; d++) {
                        o[mt][d][2 * r] *= alpha;
                        o[mt][d][2 * r + 1] *= alpha;
                    }
                }
        }
    };

    /* P = exp2(s*scale*log2e - ms) (0 for masked keys and for rows with no
     * key yet), l += rowsum(P), O += bf16(P)·V_tile */
    auto exp_pv = [&](float(&s)[MT][NTILE][4], uint32_t sv_t) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int r = 0; r < 2; r++) {
                float m0 = ms[mt][r] == -INFINITY ? 0.f : ms[mt][r];
                float rs = 0.f;
#pragma unroll
                for (int n = 0; n < NTILE; n++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        float pe = zt_ex2(__fmaf_rn(s[mt][n][2 * r + e], sl2, -m0));
                        s[mt][n][2 * r + e] = pe;
                        rs += pe;
                    }
                l[mt][r] += rs;
            }
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            uint32_t pa[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                pa[mt][0] = pack2<F16>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                pa[mt][1] = pack2<F16>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                pa[mt][2] = pack2<F16>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                pa[mt][3] = pack2<F16>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
            }
#pragma unroll
            for (int dp = 0; dp < DTILE / 2; dp++) {
                uint32_t b0, b1, b2, b3;
                int vr = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
                ldsm_x4_t(sv_t + swz<HD>(vr, 2 * dp + (lane >> 4)), b0, b1, b2, b3);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma16<F16>(o[mt][2 * dp], pa[mt], b0, b1);
                    mma16<F16>(o[mt][2 * dp + 1], pa[mt], b2, b3);
                }
            }
        }
    };

    if (ntiles > 0) {
        const TileLoader<HD, BM, NT> qload(tid, p.ldq);
        qload.load(sq_base, qg, p.ldq, q0, p.sq);
#pragma unroll
        for (int s = 0; s < STAGES - 1; s++) {
            if (s < ntiles) load_kv(s);
            zt_cp_async_commit();
        }
    }

    for (int j = 0; j < ntiles; j++) {
        zt_cp_async_wait<STAGES - 2>(); /* tile j (and Q) landed */
        __syncthreads();             /* ... for every thread; tile j-1's stage is free */
        if (j == 0) load_qfrags();
        if (j + STAGES - 1 < ntiles) load_kv(j + STAGES - 1);
        zt_cp_async_commit();
        float s[MT][NTILE][4];
        compute_s(s, stage_k(j));
        mask_s(s, j * BN);
        update_max(s);
        exp_pv(s, stage_k(j) + C::KV_BYTES);
    }
    zt_cp_async_wait<0>();
    __syncthreads(); /* every warp is done with the Q and K/V tiles */

    /* O / l -> bf16 -> shared (the Q tile's space) -> 16-byte global stores */
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float lt = zt_quad_sum(l[mt][r]);
            float inv = lt > 0.f ? 1.f / lt : 0.f;
            int row = wrow + mt * 16 + g + 8 * r;
#pragma unroll
            for (int d = 0; d < DTILE; d++) {
                uint32_t v = pack2<F16>(o[mt][d][2 * r] * inv, o[mt][d][2 * r + 1] * inv);
                *reinterpret_cast<uint32_t *>(smem + swz<HD>(row, d) + t * 4) = v;
            }
        }
    __syncthreads();
    store_tile<HD, BM, NT>(og, p.ldo, q0, p.sq, smem, tid);
}

/* ---- hd 512 ------------------------------------------------------------------ */

/* RG row groups of 16 query rows (2 warps each); STAGES 2 double-buffers
 * K/V, STAGES 1 (for GPUs with ~100 KB of shared memory per block) loads
 * each tile after the previous one is consumed. */
template <int RG, int STAGES>
struct WideCfg {
    static constexpr int HD = 512, BN = 32, NT = RG * 64, BM = 16 * RG;
    static constexpr int Q_BYTES = BM * HD * 2;
    static constexpr int KV_BYTES = BN * HD * 2;
    static constexpr int XMAX_BYTES = RG * 2 * 16 * 4; /* row maxima / sums, per warp */
    static constexpr int XP_BYTES = RG * 2 * 32 * 16;  /* bf16 P fragments, per warp */
    static constexpr int SMEM = Q_BYTES + STAGES * 2 * KV_BYTES + XMAX_BYTES + XP_BYTES;
};

__device__ __forceinline__ void pair_sync(int rg) {
    asm volatile("bar.sync %0, 64;\n" ::"r"(rg + 1) : "memory");
}

template <int RG, int STAGES, bool F16>
__global__ void __launch_bounds__(RG * 64, 1) attn_wide(const AttnParams p) {
    using C = WideCfg<RG, STAGES>;
    constexpr int HD = C::HD, BN = C::BN, BM = C::BM, NT = C::NT;
    constexpr int W_Q_BYTES = C::Q_BYTES, W_KV_BYTES = C::KV_BYTES, W_XMAX_BYTES = C::XMAX_BYTES;
    constexpr int HALF_D = HD / 2;
    constexpr int DTILE = HALF_D / 8; /* 32 n8 tiles of this warp's O half */
    extern __shared__ __align__(128) uint8_t smem[];
    const uint32_t sq_base = zt_smem_u32(smem);
    const uint32_t skv_base = sq_base + W_Q_BYTES;
    float *xmax = reinterpret_cast<float *>(smem + W_Q_BYTES + STAGES * 2 * W_KV_BYTES); /* [RG][2][16] */
    uint4 *xp = reinterpret_cast<uint4 *>(smem + W_Q_BYTES + STAGES * 2 * W_KV_BYTES + W_XMAX_BYTES); /* [RG][2][32] */

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int rg = warp >> 1, half = warp & 1, other = half ^ 1;
    const int head = blockIdx.y, kvh = head / p.group;
    const int qb = p.causal ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int q0 = qb * BM;
    const uint16_t *qg = p.q + (int64_t)head * HD;
    const uint16_t *kg = p.k + (int64_t)kvh * HD;
    const uint16_t *vg = p.v + (int64_t)kvh * HD;
    uint16_t *og = p.o + (int64_t)head * HD;

    const int kend = key_end(p, q0, BM);
    const int ntiles = (kend + BN - 1) / BN;
    const int diag = q0 + p.sk - p.sq;
    const int wrow = rg * 16;

    float o[DTILE][4];
#pragma unroll
    for (int d = 0; d < DTILE; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}; /* m: exp max times scale*log2e */

    const TileLoader<HD, BN, NT> kload(tid, p.ldk), vload(tid, p.ldv);
    auto load_kv = [&](int stage, int tile) {
        uint32_t kd = skv_base + stage * 2 * W_KV_BYTES;
        kload.load(kd, kg, p.ldk, tile * BN, p.sk);
        vload.load(kd + W_KV_BYTES, vg, p.ldv, tile * BN, p.sk);
    };

    if (ntiles > 0) {
        const TileLoader<HD, BM, NT> qload(tid, p.ldq);
        qload.load(sq_base, qg, p.ldq, q0, p.sq);
#pragma unroll
        for (int s = 0; s < STAGES - 1; s++) {
            if (s < ntiles) load_kv(s, s);
            zt_cp_async_commit();
        }
    }

    for (int j = 0; j < ntiles; j++) {
        if constexpr (STAGES == 1) {
            if (j > 0) __syncthreads(); /* tile j-1 consumed by every warp */
            load_kv(0, j);              /* (with Q on the first tile) */
            zt_cp_async_commit();
            zt_cp_async_wait<0>();
            __syncthreads();
        } else {
            zt_cp_async_wait<STAGES - 2>();
            __syncthreads();
            int jn = j + STAGES - 1;
            if (jn < ntiles) load_kv(jn % STAGES, jn);
            zt_cp_async_commit();
        }
        const uint32_t sk_t = skv_base + (j % STAGES) * 2 * W_KV_BYTES;
        const uint32_t sv_t = sk_t + W_KV_BYTES;
        const int n0 = j * BN + half * 16; /* this warp's 16 keys for S */

        /* S (16 rows x 16 keys) over all 512 dims; two accumulator sets
         * (even / odd k-steps) for independent mma chains */
        float s[2][4], s2[2][4];
#pragma unroll
        for (int n = 0; n < 2; n++)
#pragma unroll
            for (int x = 0; x < 4; x++) s[n][x] = s2[n][x] = 0.f;
        const int qr = wrow + (lane & 15);
        const int kr = half * 16 + (lane & 7) + ((lane >> 4) << 3);
#pragma unroll 8
        for (int kk = 0; kk < HD / 16; kk += 2) {
            uint32_t a[4], b0, b1, b2, b3, c[4], e0, e1, e2, e3;
            ldsm_x4(sq_base + swz<HD>(qr, 2 * kk + (lane >> 4)), a[0], a[1], a[2], a[3]);
            ldsm_x4(sk_t + swz<HD>(kr, 2 * kk + ((lane >> 3) & 1)), b0, b1, b2, b3);
            ldsm_x4(sq_base + swz<HD>(qr, 2 * kk + 2 + (lane >> 4)), c[0], c[1], c[2], c[3]);
            ldsm_x4(sk_t + swz<HD>(kr, 2 * kk + 2 + ((lane >> 3) & 1)), e0, e1, e2, e3);
            mma16<F16>(s[0], a, b0, b1);
            mma16<F16>(s[1], a, b2, b3);
            mma16<F16>(s2[0], c, e0, e1);
            mma16<F16>(s2[1], c, e2, e3);
        }
#pragma unroll
        for (int n = 0; n < 2; n++)
#pragma unroll
            for (int x = 0; x < 4; x++) s[n][x] += s2[n][x];

        if (j * BN + BN > p.sk || (p.causal && j * BN + BN - 1 > diag)) {
#pragma unroll
            for (int r = 0; r < 2; r++) {
                int qi = q0 + wrow + g + 8 * r;
                int lim = p.causal ? min(p.sk, qi + p.sk - p.sq + 1) : p.sk;
#pragma unroll
                for (int n = 0; n < 2; n++)
#pragma unroll
                    for (int e = 0; e < 2; e++)
                        if (n0 + n * 8 + 2 * t + e >= lim) s[n][2 * r + e] = -INFINITY;
            }
        }

        /* row max over the pair's 32 keys */
        float mx[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = zt_quad_max(fmaxf(fmaxf(s[0][2 * r], s[0][2 * r + 1]), fmaxf(s[1][2 * r], s[1][2 * r + 1])));
            if (t == 0) xmax[(rg * 2 + half) * 16 + g + 8 * r] = mx[r];
        }
        pair_sync(rg);
        const float sl2 = p.scale_log2;
        uint32_t pa[4];
        /* lazy rescale as in attn_narrow; both warps of the pair see the same
         * maxima, so they take the same branch */
        float mxs[2];
        bool need = false;
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mxs[r] = fmaxf(mx[r], xmax[(rg * 2 + other) * 16 + g + 8 * r]) * sl2;
            need |= zt_softmax_outgrown(mxs[r], m[r]);
        }
        if (__any_sync(0xffffffffu, need)) {
#pragma unroll
            for (int r = 0; r < 2; r++) {
                const float alpha = zt_softmax_raise(mxs[r], m[r]);
                l[r] *= alpha;
#pragma unroll
                for (int d = 0; d < DTILE; d++) {
                    o[d][2 * r] *= alpha;
                    o[d][2 * r + 1] *= alpha;
                }
            }
        }
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float m0 = m[r] == -INFINITY ? 0.f : m[r];
            float rs = 0.f;
#pragma unroll
            for (int n = 0; n < 2; n++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float pe = zt_ex2(__fmaf_rn(s[n][2 * r + e], sl2, -m0));
                    s[n][2 * r + e] = pe;
                    rs += pe;
                }
            l[r] += rs;
        }
        pa[0] = pack2<F16>(s[0][0], s[0][1]);
        pa[1] = pack2<F16>(s[0][2], s[0][3]);
        pa[2] = pack2<F16>(s[1][0], s[1][1]);
        pa[3] = pack2<F16>(s[1][2], s[1][3]);
        xp[(rg * 2 + half) * 32 + lane] = make_uint4(pa[0], pa[1], pa[2], pa[3]);
        pair_sync(rg);
        uint32_t pb[2][4]; /* k-step 0: keys 0-15 of the tile (warp half 0), 1: keys 16-31 */
        {
            uint4 u = xp[(rg * 2 + other) * 32 + lane];
            uint32_t mine[4] = {pa[0], pa[1], pa[2], pa[3]}, theirs[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
            for (int x = 0; x < 4; x++) {
                pb[0][x] = half == 0 ? mine[x] : theirs[x];
                pb[1][x] = half == 0 ? theirs[x] : mine[x];
            }
        }

        /* O[:, half] += P·V[:, half] */
#pragma unroll
        for (int dp = 0; dp < DTILE / 2; dp++) {
#pragma unroll
            for (int kk = 0; kk < 2; kk++) {
                uint32_t b0, b1, b2, b3;
                int vr = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
                ldsm_x4_t(sv_t + swz<HD>(vr, half * (HALF_D / 8) + 2 * dp + (lane >> 4)), b0, b1, b2, b3);
                mma16<F16>(o[2 * dp], pb[kk], b0, b1);
                mma16<F16>(o[2 * dp + 1], pb[kk], b2, b3);
            }
        }
    }
    zt_cp_async_wait<0>();

    /* l over the pair: each warp summed only its own 16 keys of every tile */
    float lt[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        lt[r] = zt_quad_sum(l[r]);
        if (t == 0) xmax[(rg * 2 + half) * 16 + g + 8 * r] = lt[r];
    }
    __syncthreads(); /* partner sums visible; every warp is done with Q and K/V */
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float tot = lt[r] + xmax[(rg * 2 + other) * 16 + g + 8 * r];
        float inv = tot > 0.f ? 1.f / tot : 0.f;
        int row = wrow + g + 8 * r;
#pragma unroll
        for (int d = 0; d < DTILE; d++) {
            uint32_t v = pack2<F16>(o[d][2 * r] * inv, o[d][2 * r + 1] * inv);
            *reinterpret_cast<uint32_t *>(smem + swz<HD>(row, half * (HALF_D / 8) + d) + t * 4) = v;
        }
    }
    __syncthreads();
    store_tile<HD, BM, NT>(og, p.ldo, q0, p.sq, smem, tid);
}

/* ---- launch -------------------------------------------------------------------- */

const char *const variant_names[ZT_ATTN_VARIANTS] = {
    "auto", "w8m1_bn64_s3_qreg", "w4m2_bn64_s2", "w8m2_bn64_s2", "wide512_rg4_s2", "wide512_rg2_s2", "wide512_rg2_s1",
    "wgmma_bn128", "wgmma_bn64", "w4m1_bn32_s2",
};
constexpr int WIDE_VARIANT = 4;  /* first of the hd-512 variants */
constexpr int WGMMA_VARIANT = 7; /* first of the wgmma variants (kernels/cuda_attention_sm90.cu) */
constexpr int SMALL_VARIANT = 9; /* hd 64/128 in 48 KB of shared memory (Turing: 64 KB per block) */
int wgmma_bn(int variant) { return variant == WGMMA_VARIANT ? 128 : 64; }

template <typename K>
void launch(K kernel, int smem, int bm, int threads, const zt_attn *a, const AttnParams &p, cudaStream_t st) {
    if (smem > 48 * 1024) ZT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    dim3 grid((unsigned)((a->sq + bm - 1) / bm), (unsigned)a->heads);
    kernel<<<grid, threads, smem, st>>>(p);
    ZT_CUDA_LAUNCH_CHECK();
}

template <int HD, int MT, int NW, int BN, int ST, bool QREG>
void launch_narrow(const zt_attn *a, const AttnParams &p, cudaStream_t st) {
    using C = NarrowCfg<HD, MT, NW, BN, ST, QREG>;
    if (a->dt == ZT_DT_F16) launch(attn_narrow<HD, MT, NW, BN, ST, QREG, true>, C::SMEM, C::BM, C::NT, a, p, st);
    else launch(attn_narrow<HD, MT, NW, BN, ST, QREG, false>, C::SMEM, C::BM, C::NT, a, p, st);
}

template <int RG, int ST> void launch_wide(const zt_attn *a, const AttnParams &p, cudaStream_t st) {
    using C = WideCfg<RG, ST>;
    if (a->dt == ZT_DT_F16) launch(attn_wide<RG, ST, true>, C::SMEM, C::BM, C::NT, a, p, st);
    else launch(attn_wide<RG, ST, false>, C::SMEM, C::BM, C::NT, a, p, st);
}

template <int HD>
void launch_narrow_variant(int variant, const zt_attn *a, const AttnParams &p, cudaStream_t st) {
    switch (variant) {
    case 1: launch_narrow<HD, 1, 8, 64, 3, true>(a, p, st); break;
    case 2: launch_narrow<HD, 2, 4, 64, 2, false>(a, p, st); break;
    case 3: launch_narrow<HD, 2, 8, 64, 2, false>(a, p, st); break;
    case SMALL_VARIANT: launch_narrow<HD, 1, 4, 32, 2, false>(a, p, st); break;
    default: ZT_ASSERT(!"unknown attention variant");
    }
}

/* Dynamic shared memory of a variant at head dim hd. */
int variant_smem(int variant, int hd) {
    switch (variant) {
    case 1: return hd == 64 ? NarrowCfg<64, 1, 8, 64, 3, true>::SMEM : NarrowCfg<128, 1, 8, 64, 3, true>::SMEM;
    case 2: return hd == 64 ? NarrowCfg<64, 2, 4, 64, 2, false>::SMEM : NarrowCfg<128, 2, 4, 64, 2, false>::SMEM;
    case 3: return hd == 64 ? NarrowCfg<64, 2, 8, 64, 2, false>::SMEM : NarrowCfg<128, 2, 8, 64, 2, false>::SMEM;
    case 4: return WideCfg<4, 2>::SMEM;
    case 5: return WideCfg<2, 2>::SMEM;
    case 6: return WideCfg<2, 1>::SMEM;
    case SMALL_VARIANT: return hd == 64 ? NarrowCfg<64, 1, 4, 32, 2, false>::SMEM : NarrowCfg<128, 1, 4, 32, 2, false>::SMEM;
    default: return 0;
    }
}

int device_smem_optin() {
    int dev = 0, v = 0;
    ZT_CUDA_CHECK(cudaGetDevice(&dev));
    ZT_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    return v;
}

/* Measured on an H100 (tools/attnbench): the 32-rows-per-warp tilings move
 * half the shared-memory bytes per mma of w8m1 and win once the grid fills
 * the GPU (BM 256 best at hd 128, BM 128 at hd 64); short sequences (Qwen3,
 * the context refiner) want more, smaller CTAs: w8m1 (BM 128). GPUs with
 * less shared memory per block (sm_86/89/120: ~99 KB, sm_80: 163 KB) get
 * the largest variant that fits. */
int pick_variant(const zt_attn *a) {
    /* Hopper (sm_90a build): the wgmma kernel for the DiT's non-causal hd 128, key tile 64 with two
     * CTAs per SM: 491 TFLOP/s at 4224 tokens on the H100 against 369 for w8m2 and 371 for
     * wgmma_bn128, whose one CTA per SM leaves the tensor cores idle during the softmax */
    if (a->hd == 128 && !a->causal && zt_cuda_attention_wgmma_ok(a, 64)) return WGMMA_VARIANT + 1;
    const int smem = device_smem_optin();
    if (a->hd == 512) {
        for (int v = WIDE_VARIANT; v < WGMMA_VARIANT; v++)
            if (variant_smem(v, 512) <= smem) return v;
        ZT_ASSERT(!"no hd-512 attention variant fits this GPU's shared memory");
    }
    int dev = 0, sms = 0;
    ZT_CUDA_CHECK(cudaGetDevice(&dev));
    ZT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const int64_t ctas256 = (int64_t)((a->sq + 255) / 256) * a->heads;
    int v = ctas256 < 2 * (int64_t)sms ? 1 : a->hd == 64 ? 2 : 3;
    if (variant_smem(v, a->hd) > smem) v = 2; /* 96 KB at hd 128: fits every sm_80+ GPU */
    if (variant_smem(v, a->hd) > smem) v = SMALL_VARIANT; /* Turing */
    return v;
}

} // namespace

extern "C" const char *zt_cuda_attention_variant_name(int variant) {
    return variant >= 0 && variant < ZT_ATTN_VARIANTS ? variant_names[variant] : "";
}

extern "C" int zt_cuda_attention_variant_ok(int variant, const zt_attn *a) {
    if (a->dt != ZT_DT_BF16 && a->dt != ZT_DT_F16) return 0;
    if (variant == 0) return a->hd == 64 || a->hd == 128 || a->hd == 512;
    if (variant < 0 || variant >= ZT_ATTN_VARIANTS) return 0;
    if (variant == SMALL_VARIANT) return (a->hd == 64 || a->hd == 128) && variant_smem(variant, a->hd) <= device_smem_optin();
    if (variant >= WGMMA_VARIANT) return zt_cuda_attention_wgmma_ok(a, wgmma_bn(variant));
    if (variant >= WIDE_VARIANT ? a->hd != 512 : a->hd != 64 && a->hd != 128) return 0;
    return variant_smem(variant, a->hd) <= device_smem_optin();
}

extern "C" void zt_cuda_attention_variant(zt_ops *ops, const zt_attn *a, int variant) {
    ZT_ASSERT((a->dt == ZT_DT_BF16 || a->dt == ZT_DT_F16) &&
              "CUDA attention is bf16 or f16: f32 attention runs on the CPU backend");
    ZT_ASSERT((a->hd == 64 || a->hd == 128 || a->hd == 512) && "attention head dim must be 64, 128 or 512");
    ZT_ASSERT(a->sq >= 0 && a->sk >= 0 && a->heads > 0 && a->kv_heads > 0 && a->heads % a->kv_heads == 0);
    ZT_ASSERT(a->q && a->k && a->v && a->o);
    /* 16-byte vector access: rows and head columns must be 8-element aligned */
    ZT_ASSERT(a->ldq % 8 == 0 && a->ldk % 8 == 0 && a->ldv % 8 == 0 && a->ldo % 8 == 0 &&
              "attention row strides must be multiples of 8 elements");
    ZT_ASSERT(((uintptr_t)a->q | (uintptr_t)a->k | (uintptr_t)a->v | (uintptr_t)a->o) % 16 == 0 &&
              "attention pointers must be 16-byte aligned");
    ZT_ASSERT(a->ldq >= (int64_t)a->heads * a->hd && a->ldo >= (int64_t)a->heads * a->hd &&
              a->ldk >= (int64_t)a->kv_heads * a->hd && a->ldv >= (int64_t)a->kv_heads * a->hd);
    if (variant == 0) variant = pick_variant(a);
    ZT_ASSERT(zt_cuda_attention_variant_ok(variant, a) && "attention variant does not fit the head dim or this GPU's shared memory");
    if (a->sq == 0) return;

    const AttnParams p = attn_params(a);
    cudaStream_t st = (cudaStream_t)ops->stream;

    if (variant >= WGMMA_VARIANT && variant != SMALL_VARIANT) zt_cuda_attention_wgmma(ops, a, wgmma_bn(variant));
    else if (variant == 4) launch_wide<4, 2>(a, p, st);
    else if (variant == 5) launch_wide<2, 2>(a, p, st);
    else if (variant == 6) launch_wide<2, 1>(a, p, st);
    else if (a->hd == 64) launch_narrow_variant<64>(variant, a, p, st);
    else launch_narrow_variant<128>(variant, a, p, st);
}

extern "C" size_t zt_cuda_attention_workspace_size(zt_ops *ops, const zt_attn *a) {
    (void)ops;
    (void)a;
    return 0;
}

extern "C" void zt_cuda_attention(zt_ops *ops, const zt_attn *a, void *workspace) {
    (void)workspace;
    zt_cuda_attention_variant(ops, a, 0);
}
