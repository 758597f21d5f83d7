/* kernels/cuda_attention_sm90.cu — non-causal flash attention at head dim 128
 * on Hopper's warpgroup MMA (wgmma, sm_90a): the DiT's attention (4224 tokens
 * x 30 heads at 1024²). Same algorithm and numerics as the mma.sync kernel
 * (kernels/cuda_attention.cu: online softmax in f32 with exp2 and lazy
 * rescaling, P rounded to bf16, O / l rounded once), on the other MMA.
 *
 * A CTA owns BM = 128 query rows of one head: two warpgroups of 64 rows.
 * Q (staged once) and each K/V tile of BN keys are gathered with cp.async
 * into 128-byte-swizzled shared tiles (kernels/cuda_wgmma.cuh), each 128-
 * column row split into two 64-column halves ("sub-tiles") so that a row of
 * a sub-tile is one 128-byte swizzle row. Per K/V tile and warpgroup:
 *   S = Q·Kᵀ     8 wgmma m64nBNk16, Q and K K-major from shared memory;
 *   softmax      on the S accumulators in registers (the rows of a thread
 *                are spread over a quad of lanes, as with mma.sync);
 *   O += P·V     BN/16 wgmma m64n128k16, P from registers (bf16), V read
 *                MN-major straight from its [key][hd] tile.
 * K/V tiles are double-buffered: tile j+2 is fetched while j+1 lands and j
 * computes. Two barriers per tile keep the warpgroups in step (the simple
 * form: no producer warp, no ping-pong between warpgroups).
 * BN 128: 160 KB of shared memory, one CTA per SM. BN 64: 96 KB, two CTAs
 * per SM, so one CTA's softmax can overlap the other's MMAs. */
#include <math.h>

#include "kernels/cuda_attention.cuh"
#include "kernels/cuda_attention_params.cuh"
#include "kernels/cuda_common.cuh"
#include "kernels/cuda_wgmma.cuh"

namespace {

constexpr int WA_HD = 128, WA_BM = 128, WA_NT = 256;

template <int BN> struct wa_cfg {
    static constexpr int Q_SUB = WA_BM * 128;  /* one 64-column half of Q: [BM][64] bf16 */
    static constexpr int KV_SUB = BN * 128;    /* one 64-column half of a K or V tile */
    static constexpr int STAGE = 4 * KV_SUB;   /* K and V, two halves each */
    static constexpr int SMEM = 2 * Q_SUB + 2 * STAGE + 1024; /* + room to align to 1024 */
    static constexpr int MIN_BLOCKS = BN == 64 ? 2 : 1;
    static constexpr int EPI_LD = WA_HD + 8;   /* bf16 staging row pitch of the output */
    static_assert(BN == 64 || BN == 128, "key tile");
    static_assert(WA_BM * EPI_LD * 2 <= 2 * STAGE, "output staging fits in the K/V ring");
};

#if defined(ZT_WGMMA)
/* Rows [row0, row0 + ROWS) of a [nrows, 128] view (row stride ld) into the
 * two swizzled halves at dst (sub bytes apart); rows >= nrows zero-filled. */
template <int ROWS>
__device__ __forceinline__ void wa_load(uint32_t dst, int sub, const uint16_t *base, int64_t ld, int row0, int nrows,
                                        int tid) {
    const int c = tid & 15, r0 = tid >> 4;
    const uint32_t d0 = dst + (c >> 3) * sub + (((c & 7) ^ (r0 & 7)) << 4); /* r0 + 16 i has the same r % 8 */
#pragma unroll
    for (int i = 0; i < ROWS / 16; i++) {
        const int r = r0 + 16 * i;
        const bool ok = row0 + r < nrows;
        zt_cp_async16(d0 + r * 128, ok ? base + (int64_t)(row0 + r) * ld + c * 8 : base, ok ? 16 : 0);
    }
}
#endif

template <int BN>
__global__ void __launch_bounds__(WA_NT, (wa_cfg<BN>::MIN_BLOCKS)) attn_wgmma(const AttnParams p) {
#if defined(ZT_WGMMA)
    typedef wa_cfg<BN> C;
    constexpr int SN = BN / 2; /* S accumulators per thread: BN/8 column groups x 4 */
    extern __shared__ uint8_t wa_raw[];
    uint32_t sbase = zt_smem_u32(wa_raw);
    const uint32_t pad = (1024u - (sbase & 1023u)) & 1023u;
    sbase += pad;
    const uint32_t sQ = sbase, sKV = sbase + 2 * C::Q_SUB;

    const int tid = threadIdx.x, wg = tid >> 7, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;
    const int head = blockIdx.y, kvh = head / p.group;
    const int q0 = blockIdx.x * WA_BM;
    const uint16_t *qg = p.q + (int64_t)head * WA_HD;
    const uint16_t *kg = p.k + (int64_t)kvh * WA_HD;
    const uint16_t *vg = p.v + (int64_t)kvh * WA_HD;
    uint16_t *og = p.o + (int64_t)head * WA_HD;
    const int ntiles = (p.sk + BN - 1) / BN;
    const float sl2 = p.scale_log2;

    auto load_kv = [&](int tile) {
        const uint32_t k = sKV + (tile & 1) * C::STAGE;
        wa_load<BN>(k, C::KV_SUB, kg, p.ldk, tile * BN, p.sk, tid);
        wa_load<BN>(k + 2 * C::KV_SUB, C::KV_SUB, vg, p.ldv, tile * BN, p.sk, tid);
    };
    wa_load<WA_BM>(sQ, C::Q_SUB, qg, p.ldq, q0, p.sq, tid);
    if (ntiles > 0) load_kv(0);
    zt_cp_async_commit();
    if (ntiles > 1) load_kv(1);
    zt_cp_async_commit();

    float o[64], s[SN];
#pragma unroll
    for (int i = 0; i < 64; i++) o[i] = 0.f;
#pragma unroll
    for (int i = 0; i < SN; i++) s[i] = 0.f;
    float ms[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}; /* ms: max used for exp (x scale*log2e) */

    for (int j = 0; j < ntiles; j++) {
        zt_cp_async_wait<1>(); /* tile j (and Q) landed; j+1 may be in flight */
        wg_fence_proxy();
        __syncthreads();
        const uint32_t sK = sKV + (j & 1) * C::STAGE, sV = sK + 2 * C::KV_SUB;

        /* S = Q·Kᵀ over hd = 128: k16 steps 0-3 in the first halves, 4-7 in the second */
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < 8; kk++) {
            const uint64_t da = wg_desc_k(sQ + (kk >> 2) * C::Q_SUB + wg * 64 * 128 + (kk & 3) * 32);
            const uint64_t db = wg_desc_k(sK + (kk >> 2) * C::KV_SUB + (kk & 3) * 32);
            if constexpr (BN == 128) wg_mma_ss_n128(s, da, db, kk > 0);
            else wg_mma_ss_n64(s, da, db, kk > 0);
        }
        wg_commit();
        wg_wait<0>();
        wg_fence_regs(s);

        /* keys past sk: -inf */
        if ((j + 1) * BN > p.sk) {
#pragma unroll
            for (int c = 0; c < BN / 8; c++)
#pragma unroll
                for (int e = 0; e < 2; e++)
                    if (j * BN + 8 * c + 2 * t + e >= p.sk) s[4 * c + e] = s[4 * c + 2 + e] = -INFINITY;
        }
        /* lazy max: raise a row's exp max only when the tile max outgrows it by 2^8 */
        float mx[2];
        bool need = false;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float x = -INFINITY;
#pragma unroll
            for (int c = 0; c < BN / 8; c++) x = fmaxf(x, fmaxf(s[4 * c + 2 * h], s[4 * c + 2 * h + 1]));
            mx[h] = zt_quad_max(x) * sl2;
            need |= zt_softmax_outgrown(mx[h], ms[h]);
        }
        if (__any_sync(0xffffffffu, need)) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const float alpha = zt_softmax_raise(mx[h], ms[h]);
                l[h] *= alpha;
#pragma unroll
                for (int c = 0; c < 16; c++) {
                    o[4 * c + 2 * h] *= alpha;
                    o[4 * c + 2 * h + 1] *= alpha;
                }
            }
        }
        /* P = exp2(S*scale*log2e - ms), row sums, bf16 A fragments */
        uint32_t pa[BN / 16][4];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const float m0 = ms[h] == -INFINITY ? 0.f : ms[h];
            float rs = 0.f;
#pragma unroll
            for (int c = 0; c < BN / 8; c++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const float pe = zt_ex2(__fmaf_rn(s[4 * c + 2 * h + e], sl2, -m0));
                    s[4 * c + 2 * h + e] = pe;
                    rs += pe;
                }
            l[h] += rs;
        }
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            pa[kk][0] = zt_pack_bf16x2(s[8 * kk + 0], s[8 * kk + 1]);
            pa[kk][1] = zt_pack_bf16x2(s[8 * kk + 2], s[8 * kk + 3]);
            pa[kk][2] = zt_pack_bf16x2(s[8 * kk + 4], s[8 * kk + 5]);
            pa[kk][3] = zt_pack_bf16x2(s[8 * kk + 6], s[8 * kk + 7]);
        }
        /* O += P·V: V [key][hd] is MN-major for this product; its halves are KV_SUB apart */
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) wg_mma_rs_n128(o, pa[kk], wg_desc_mn(sV + kk * 2048, C::KV_SUB));
        wg_commit();
        wg_wait<0>();
        wg_fence_regs(o);

        __syncthreads(); /* both warpgroups are done with stage j & 1 */
        if (j + 2 < ntiles) load_kv(j + 2);
        zt_cp_async_commit();
    }
    zt_cp_async_wait<0>();
    __syncthreads();

    /* O / l -> bf16 -> staging tile in the K/V ring -> 16-byte stores */
    uint16_t *stage = reinterpret_cast<uint16_t *>(wa_raw + pad + 2 * C::Q_SUB);
    const int wrow = wg * 64 + ((tid >> 5) & 3) * 16;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const float lt = zt_quad_sum(l[h]);
        const float inv = lt > 0.f ? 1.f / lt : 0.f;
        const int row = wrow + g + 8 * h;
#pragma unroll
        for (int c = 0; c < 16; c++)
            *reinterpret_cast<uint32_t *>(stage + row * C::EPI_LD + 8 * c + 2 * t) =
                zt_pack_bf16x2(o[4 * c + 2 * h] * inv, o[4 * c + 2 * h + 1] * inv);
    }
    __syncthreads();
#pragma unroll 4
    for (int i = tid; i < WA_BM * 16; i += WA_NT) {
        const int r = i >> 4, c = i & 15;
        if (q0 + r < p.sq)
            *reinterpret_cast<uint4 *>(og + (int64_t)(q0 + r) * p.ldo + c * 8) =
                *reinterpret_cast<const uint4 *>(stage + r * C::EPI_LD + c * 8);
    }
#else
    (void)p;
#endif
}

template <int BN> void wa_launch(const zt_attn *a, const AttnParams &p, cudaStream_t st) {
    auto kern = attn_wgmma<BN>;
    ZT_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, wa_cfg<BN>::SMEM));
    dim3 grid((unsigned)((a->sq + WA_BM - 1) / WA_BM), (unsigned)a->heads);
    kern<<<grid, WA_NT, wa_cfg<BN>::SMEM, st>>>(p);
    ZT_CUDA_LAUNCH_CHECK();
}

} // namespace

extern "C" int zt_cuda_attention_wgmma_ok(const zt_attn *a, int bn) {
#if defined(ZT_HAVE_SM90A)
    if (a->dt != ZT_DT_BF16 || a->hd != WA_HD || a->causal || (bn != 64 && bn != 128)) return 0;
    if (!zt_cuda_wgmma_device()) return 0;
    int dev = 0, optin = 0;
    ZT_CUDA_CHECK(cudaGetDevice(&dev));
    ZT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    return (bn == 64 ? wa_cfg<64>::SMEM : wa_cfg<128>::SMEM) <= optin;
#else
    (void)a; (void)bn;
    return 0;
#endif
}

extern "C" void zt_cuda_attention_wgmma(zt_ops *ops, const zt_attn *a, int bn) {
    ZT_ASSERT(zt_cuda_attention_wgmma_ok(a, bn));
    const AttnParams p = attn_params(a); /* causal is not used: the wgmma kernel is non-causal */
    if (bn == 64) wa_launch<64>(a, p, zt_cu_stream(ops));
    else wa_launch<128>(a, p, zt_cu_stream(ops));
}
