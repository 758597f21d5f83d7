/* kernels/cuda_conv_sm90.cu — the bf16 implicit-GEMM convolution on Hopper's
 * warpgroup MMA (wgmma, sm_90a), for cin % 64 == 0 and cout % BN == 0: every
 * VAE conv but conv_in (cin 16) and conv_out (cout 3). Same GEMM as the
 * mma.sync kernel (kernels/cuda_conv.cuh); the same per-pixel summation
 * order over K for any band or tile position, so banded results stay
 * bit-identical to the whole image.
 *
 * Block: 128 pixels x BN (128 or 256) channels, 2 warpgroups of 64 pixels x
 * BN. K moves in blocks of 64 channels of one tap (cin % 64 == 0), so an A
 * row of a K block is 128 contiguous bytes of x (or zeros outside the image)
 * and a B row 128 contiguous bytes of the weight. Every thread gathers with
 * cp.async into a STAGES-deep ring of shared tiles laid out as wgmma's
 * 128-byte swizzle wants (16-byte chunk c of row r at r*128 + (c ^ r%8)*16,
 * tiles 1024-byte aligned), so the tensor cores read both operands straight
 * from shared memory through descriptors. Per K block: wait for the block's
 * copies, fence them to the async proxy, barrier, issue 4 wgmma k16 (async),
 * issue the copies of block kb + STAGES - 2 into the slot whose wgmma
 * (kb - 2) every warpgroup has retired (wait_group 1 at the end of the
 * previous iteration, then the barrier), so one wgmma group runs while the
 * next copies are in flight. Epilogue: accumulators to a staged f32 tile,
 * then conv_store_tile (bias, residual, one rounding to bf16). */
#include "kernels/cuda_conv.cuh"
#include "kernels/cuda_wgmma.cuh"

namespace {

constexpr int WG_BM = 128, WG_BK = 64, WG_THREADS = 256;

template <int BN, int STAGES> struct wg_cfg {
    static constexpr int A_BYTES = WG_BM * WG_BK * 2, B_BYTES = BN * WG_BK * 2;
    static constexpr int STAGE_BYTES = A_BYTES + B_BYTES;
    static constexpr int EPI_LD = BN + 8; /* f32 tile row pitch: 8 floats of padding spread the float2 stores */
    static constexpr int PIPE = STAGES * STAGE_BYTES, EPI = WG_BM * EPI_LD * 4;
    static constexpr int SMEM = (PIPE > EPI ? PIPE : EPI) + 1024; /* + room to align the ring to 1024 B */
    static constexpr int MIN_BLOCKS = 2 * SMEM <= 227 * 1024 ? 2 : 1;
    static_assert(BN == 128 || BN == 256, "wgmma tile width");
    static_assert(STAGES >= 3, "the ring needs a slot being computed, one retiring and one loading");
};

template <int BN, int STAGES>
__global__ void __launch_bounds__(WG_THREADS, (wg_cfg<BN, STAGES>::MIN_BLOCKS))
    k_conv_wgmma(conv_args a) {
#if defined(ZT_WGMMA)
    typedef wg_cfg<BN, STAGES> C;
    constexpr int A_CHUNKS = WG_BM * 8 / WG_THREADS, B_CHUNKS = BN * 8 / WG_THREADS; /* 16-byte copies per thread */
    extern __shared__ uint8_t wg_smem_raw[];
    uint32_t sbase = zt_smem_u32(wg_smem_raw);
    const uint32_t pad = (1024u - (sbase & 1023u)) & 1023u;
    sbase += pad;
    float *tile = reinterpret_cast<float *>(wg_smem_raw + pad); /* epilogue: [WG_BM][EPI_LD] over the ring */

    const int tid = threadIdx.x, wg = tid >> 7;
    const int m0 = blockIdx.x * WG_BM, n0 = blockIdx.y * BN;
    const int q = tid & 7, r0 = tid >> 3; /* this thread's 16-byte chunk; rows r0 + 32 i */

    int apix[A_CHUNKS]; /* output pixel of each A row this thread loads (conv_pixel) */
#pragma unroll
    for (int i = 0; i < A_CHUNKS; i++) apix[i] = conv_pixel(a, m0 + r0 + 32 * i);
    const zt_bf16 *wrow = a.wgt + (size_t)(n0 + r0) * a.K + q * 8; /* B row r0, this thread's chunk */

    const int KB = a.K / WG_BK;
    auto load_stage = [&](int slot, int kb) {
        const int kk = kb * WG_BK, tap = kk / a.cin, ci = kk - tap * a.cin + q * 8;
        const int dy = tap / a.k, dx = tap - dy * a.k;
        const uint32_t As = sbase + slot * C::STAGE_BYTES, Bs = As + C::A_BYTES;
#pragma unroll
        for (int i = 0; i < A_CHUNKS; i++) {
            const int r = r0 + 32 * i;
            const int iy = (apix[i] >> 16) + dy - a.pad, ix = (apix[i] & 0xffff) + dx - a.pad;
            const bool v = (unsigned)iy < (unsigned)a.h && (unsigned)ix < (unsigned)a.w;
            const zt_bf16 *src = v ? a.x + ((size_t)(iy - a.xr0) * a.w + ix) * a.cin + ci : a.x;
            zt_cp_async16(As + r * 128 + ((q ^ (r & 7)) << 4), src, v ? 16 : 0);
        }
#pragma unroll
        for (int i = 0; i < B_CHUNKS; i++) {
            const int r = r0 + 32 * i;
            zt_cp_async16(Bs + r * 128 + ((q ^ (r & 7)) << 4), wrow + (size_t)32 * i * a.K + kk, 16);
        }
    };

    float acc[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; i++) acc[i] = 0.0f;

#pragma unroll
    for (int s = 0; s < STAGES - 2; s++) {
        if (s < KB) load_stage(s, s);
        zt_cp_async_commit();
    }
    for (int kb = 0; kb < KB; kb++) {
        zt_cp_async_wait<STAGES - 3>();
        wg_fence_proxy();
        __syncthreads();
        const uint32_t slot = sbase + (kb % STAGES) * C::STAGE_BYTES;
        const uint32_t As = slot + wg * 64 * 128, Bs = slot + C::A_BYTES; /* this warpgroup's 64 A rows */
        wg_fence();
#pragma unroll
        for (int k16 = 0; k16 < WG_BK / 16; k16++) {
            const uint64_t da = wg_desc_k(As + k16 * 32), db = wg_desc_k(Bs + k16 * 32);
            if constexpr (BN == 256) wg_mma_ss_n256(acc, da, db, 1);
            else wg_mma_ss_n128(acc, da, db, 1);
        }
        wg_commit();
        const int nk = kb + STAGES - 2;
        if (nk < KB) load_stage(nk % STAGES, nk);
        zt_cp_async_commit();
        wg_wait<1>();
    }
    wg_wait<0>();
    wg_fence_regs(acc);
    zt_cp_async_wait<0>();
    __syncthreads(); /* every warpgroup is done with the ring */

    const int wi = (tid >> 5) & 3, lane = tid & 31;
#pragma unroll
    for (int j = 0; j < BN / 8; j++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = wg * 64 + wi * 16 + (lane >> 2) + 8 * h, c = 8 * j + 2 * (lane & 3);
            float2 *t = reinterpret_cast<float2 *>(tile + r * C::EPI_LD + c);
            *t = make_float2(acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
        }
    __syncthreads();
    conv_store_tile<WG_BM, BN, WG_THREADS, C::EPI_LD>(a, tile, m0, n0, tid);
#else
    (void)a;
#endif
}

template <int BN, int STAGES> bool wg_launch(zt_ops *ops, const conv_args *a, int smem_optin) {
    typedef wg_cfg<BN, STAGES> C;
    if (smem_optin < C::SMEM || a->cout % BN != 0) return false;
    auto kern = k_conv_wgmma<BN, STAGES>;
    ZT_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM));
    dim3 grid((unsigned)((a->M + WG_BM - 1) / WG_BM), (unsigned)(a->cout / BN));
    ZT_ASSERT(grid.y <= 65535);
    kern<<<grid, WG_THREADS, C::SMEM, zt_cu_stream(ops)>>>(*a);
    ZT_CUDA_LAUNCH_CHECK();
    return true;
}

} // namespace

bool conv_wgmma_launch(zt_ops *ops, const conv_args *a, int bn, int stages) {
#if defined(ZT_HAVE_SM90A)
    if (!zt_cuda_wgmma_device()) return false;
    int dev = 0, optin = 0;
    ZT_CUDA_CHECK(cudaGetDevice(&dev));
    if (a->cin % WG_BK != 0 || !zt_al16(a->x) || !zt_al16(a->wgt)) return false;
    ZT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (bn == 256 && stages == 4) return wg_launch<256, 4>(ops, a, optin);
    if (bn == 256 && stages == 3) return wg_launch<256, 3>(ops, a, optin);
    if (bn == 128 && stages == 4) return wg_launch<128, 4>(ops, a, optin);
    if (bn == 128 && stages == 3) return wg_launch<128, 3>(ops, a, optin);
    ZT_ASSERT(!"conv_wgmma_launch: unknown tile");
    return false;
#else
    (void)ops; (void)a; (void)bn; (void)stages;
    return false;
#endif
}
