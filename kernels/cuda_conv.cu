/* kernels/cuda_conv.cu — 2-D convolution, NHWC, stride 1, zero padding k/2,
 * k in {1, 3}, bias and optional residual fused (zt_op_conv2d).
 *
 * bf16 with cin % 8 == 0 (every VAE conv): an implicit GEMM on the tensor
 * cores. On Hopper (built for sm_90a) with cin % 64 == 0 it runs on wgmma
 * (kernels/cuda_conv_sm90.cu); the mma.sync kernel here covers the rest.
 * Rows are output pixels (M = h*w), columns output channels (N = cout), the
 * reduction runs over (dy, dx, ci) (K = k*k*cin), which is exactly the
 * weight layout [cout, k, k, cin]. The A tile gathers each 16-byte chunk of
 * 8 channels straight from x with cp.async (zero-filled outside the image),
 * so nothing is materialised; a multi-stage cp.async pipeline feeds
 * ldmatrix + mma.sync m16n8k16 (f32 accumulators); default tiles 128x128x64,
 * 4 warps of 64x64, 3 stages. Epilogue staged through shared memory: acc +
 * bias (+ residual), one rounding to bf16, 16-byte accesses. No workspace.
 *
 * Everything else (f32, cin not a multiple of 8, or stride 2): im2col of a
 * band of output rows into the caller's workspace, then one cuBLASLt GEMM
 * per band with the bias epilogue and C = residual. Bands keep the
 * workspace under CONV_WS_BUDGET; a 1x1 conv needs no im2col at all. */
#include "kernels/cuda_conv.cuh"

#define CONV_WS_BUDGET (128u << 20)

static int conv_stride(const zt_conv2d *c) { return c->stride > 1 ? c->stride : 1; }

static bool conv_use_igemm(const zt_conv2d *c) { return c->dt == ZT_DT_BF16 && c->cin % 8 == 0 && conv_stride(c) == 1; }

/* Output rows per im2col band. */
static int conv_band_rows(const zt_conv2d *c) {
    const int s = conv_stride(c);
    const size_t row = (size_t)(c->w / s) * c->k * c->k * c->cin * zt_dtype_size(c->dt);
    const size_t rows = c->band_rows ? (size_t)c->band_rows : (size_t)(c->h / s);
    size_t r = row ? CONV_WS_BUDGET / row : 1;
    if (r < 1) r = 1;
    if (r > rows) r = rows;
    return (int)r;
}

size_t zt_cuda_conv2d_workspace_size(zt_ops *ops, const zt_conv2d *c) {
    (void)ops;
    if (conv_use_igemm(c) || c->k == 1) return 0;
    return (size_t)conv_band_rows(c) * (c->w / conv_stride(c)) * c->k * c->k * c->cin * zt_dtype_size(c->dt);
}

/* ------------------------------------------------------------------------ */
/* implicit GEMM (bf16)                                                     */

/* Element offset of 16-byte chunk q of row r in a [rows][BK] bf16 tile; the
 * XOR spreads any 8 consecutive rows of one logical chunk over all 32 banks
 * (ldmatrix) and keeps the cp.async writes of a warp conflict-free. */
template <int BK> __device__ __forceinline__ int conv_swz(int r, int q) {
    if (BK == 64) return r * 64 + ((q ^ (r & 7)) << 3);
    return r * 32 + ((q ^ ((r >> 1) & 3)) << 3);
}

__device__ __forceinline__ void conv_ldm4(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

__device__ __forceinline__ void conv_mma(float d[4], const uint32_t a[4], const uint32_t b[2]) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800 /* bf16 MMA: sm_80+ (an sm_75 build runs no bf16 conv) */
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    (void)d; (void)a; (void)b;
    __trap();
#endif
}

template <int BM, int BN, int WM, int WN, int BK, int STAGES, bool SEPI = false> struct conv_cfg {
    static constexpr int WARPS_M = BM / WM, WARPS_N = BN / WN;
    static constexpr int THREADS = WARPS_M * WARPS_N * 32;
    static constexpr int MT = WM / 16, NT = WN / 8;
    static constexpr int CH = BK / 8; /* 16-byte chunks per tile row */
    static constexpr int A_CHUNKS = BM * CH / THREADS, B_CHUNKS = BN * CH / THREADS;
    static constexpr int SMEM = STAGES * (BM + BN) * BK * 2;
    /* 64x64 warp tiles hold 128 accumulators per thread: one or two blocks per SM */
    static constexpr int MIN_BLOCKS = THREADS <= 128 ? 2 : (WM * WN >= 4096 ? 1 : 2);
    static_assert(BK == 32 || BK == 64, "tile depth");
    static_assert(BM * CH % THREADS == 0 && BN * CH % THREADS == 0 && B_CHUNKS >= 1, "loader split");
    static_assert(NT % 2 == 0, "B fragments are loaded in pairs");
    /* staged epilogue: the f32 tile [BM][BN + 4] reuses the pipeline's smem */
    static constexpr int EPI_LD = BN + 4;
    static_assert(!SEPI || BM * EPI_LD * 4 <= SMEM, "epilogue tile fits");
    static_assert(!SEPI || (BM * BN / 8) % THREADS == 0, "epilogue split");
};

template <int BM, int BN, int WM, int WN, int BK, int STAGES, bool SEPI>
__global__ void __launch_bounds__(conv_cfg<BM, BN, WM, WN, BK, STAGES, SEPI>::THREADS,
                                  conv_cfg<BM, BN, WM, WN, BK, STAGES, SEPI>::MIN_BLOCKS)
    k_conv_igemm(conv_args a) {
    typedef conv_cfg<BM, BN, WM, WN, BK, STAGES, SEPI> C;
    extern __shared__ __align__(128) zt_bf16 smem[];
    zt_bf16 *sA = smem, *sB = smem + STAGES * BM * BK;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm0 = (warp % C::WARPS_M) * WM, wn0 = (warp / C::WARPS_M) * WN;
    const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
    const int q = tid % C::CH; /* the 16-byte chunk of the K block this thread loads */
    const int r0 = tid / C::CH, rstep = C::THREADS / C::CH;

    int apix[C::A_CHUNKS]; /* output pixel of each A row this thread loads (conv_pixel) */
#pragma unroll
    for (int i = 0; i < C::A_CHUNKS; i++) apix[i] = conv_pixel(a, m0 + r0 + i * rstep);

    const int KB = (a.K + BK - 1) / BK;
    auto load_stage = [&](int stage, int kb) {
        const int kk = kb * BK + q * 8;
        const bool kvalid = kk < a.K;
        int ci = 0, dy = 0, dx = 0;
        if (kvalid) {
            const int tap = kk / a.cin;
            ci = kk - tap * a.cin;
            dy = tap / a.k;
            dx = tap - dy * a.k;
        }
        zt_bf16 *As = sA + stage * BM * BK, *Bs = sB + stage * BN * BK;
#pragma unroll
        for (int i = 0; i < C::A_CHUNKS; i++) {
            const int r = r0 + i * rstep;
            const int iy = (apix[i] >> 16) + dy - a.pad, ix = (apix[i] & 0xffff) + dx - a.pad;
            const bool v = kvalid && (unsigned)iy < (unsigned)a.h && (unsigned)ix < (unsigned)a.w;
            const zt_bf16 *src = v ? a.x + ((size_t)(iy - a.xr0) * a.w + ix) * a.cin + ci : a.x;
            zt_cp_async16(zt_smem_u32(As + conv_swz<BK>(r, q)), src, v ? 16 : 0);
        }
#pragma unroll
        for (int i = 0; i < C::B_CHUNKS; i++) {
            const int r = r0 + i * rstep;
            const int co = n0 + r;
            const bool v = kvalid && co < a.cout;
            const zt_bf16 *src = v ? a.wgt + (size_t)co * a.K + kk : a.wgt;
            zt_cp_async16(zt_smem_u32(Bs + conv_swz<BK>(r, q)), src, v ? 16 : 0);
        }
    };

    float acc[C::MT][C::NT][4];
#pragma unroll
    for (int i = 0; i < C::MT; i++)
#pragma unroll
        for (int j = 0; j < C::NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < KB) load_stage(s, s);
        zt_cp_async_commit();
    }

    for (int kb = 0; kb < KB; kb++) {
        zt_cp_async_wait<STAGES - 2>();
        __syncthreads();
        const int nk = kb + STAGES - 1;
        if (nk < KB) load_stage(nk % STAGES, nk);
        zt_cp_async_commit();

        const int stage = kb % STAGES;
        const zt_bf16 *As = sA + stage * BM * BK, *Bs = sB + stage * BN * BK;
#pragma unroll
        for (int ks = 0; ks < BK / 16; ks++) {
            uint32_t af[C::MT][4], bfr[C::NT][2];
#pragma unroll
            for (int i = 0; i < C::MT; i++) {
                const int r = wm0 + i * 16 + (lane & 15);
                conv_ldm4(zt_smem_u32(As + conv_swz<BK>(r, ks * 2 + (lane >> 4))), af[i][0], af[i][1], af[i][2],
                          af[i][3]);
            }
#pragma unroll
            for (int j = 0; j < C::NT; j += 2) {
                const int r = wn0 + (j + (lane >> 4)) * 8 + (lane & 7);
                conv_ldm4(zt_smem_u32(Bs + conv_swz<BK>(r, ks * 2 + ((lane >> 3) & 1))), bfr[j][0], bfr[j][1],
                          bfr[j + 1][0], bfr[j + 1][1]);
            }
#pragma unroll
            for (int i = 0; i < C::MT; i++)
#pragma unroll
                for (int j = 0; j < C::NT; j++) conv_mma(acc[i][j], af[i], bfr[j]);
        }
    }
    zt_cp_async_wait<0>();

    if constexpr (SEPI) {
        /* Staged epilogue: the f32 accumulators go through shared memory so
         * that bias, residual and y move in coalesced 16-byte chunks (one
         * row of the tile = BN/8 consecutive threads). */
        __syncthreads(); /* every warp is done reading the pipeline stages */
        float *tile = reinterpret_cast<float *>(smem);
#pragma unroll
        for (int i = 0; i < C::MT; i++)
#pragma unroll
            for (int j = 0; j < C::NT; j++)
#pragma unroll
                for (int hlf = 0; hlf < 2; hlf++) {
                    const int r = wm0 + i * 16 + (lane >> 2) + hlf * 8, c = wn0 + j * 8 + (lane & 3) * 2;
                    *reinterpret_cast<float2 *>(tile + r * C::EPI_LD + c) =
                        make_float2(acc[i][j][2 * hlf], acc[i][j][2 * hlf + 1]);
                }
        __syncthreads();
        conv_store_tile<BM, BN, C::THREADS, C::EPI_LD>(a, tile, m0, n0, tid);
    } else {
    /* epilogue: y = R(acc + bias (+ residual)) */
#pragma unroll
    for (int j = 0; j < C::NT; j++) {
        const int co = n0 + wn0 + j * 8 + (lane & 3) * 2;
        if (co >= a.cout) continue;
        const bool two = co + 1 < a.cout;
        const float b0 = a.bias ? __bfloat162float(a.bias[co]) : 0.0f;
        const float b1 = a.bias && two ? __bfloat162float(a.bias[co + 1]) : 0.0f;
#pragma unroll
        for (int i = 0; i < C::MT; i++)
#pragma unroll
            for (int hlf = 0; hlf < 2; hlf++) {
                const int m = m0 + wm0 + i * 16 + (lane >> 2) + hlf * 8;
                if (m >= a.M) continue;
                float v0 = acc[i][j][2 * hlf] + b0, v1 = acc[i][j][2 * hlf + 1] + b1;
                const size_t o = (size_t)m * a.cout + co;
                if (a.pair_ok && two) {
                    if (a.res) {
                        const __nv_bfloat162 r2 = *reinterpret_cast<const __nv_bfloat162 *>(a.res + o);
                        v0 += __low2float(r2);
                        v1 += __high2float(r2);
                    }
                    *reinterpret_cast<__nv_bfloat162 *>(a.y + o) = __floats2bfloat162_rn(v0, v1);
                } else {
                    if (a.res) v0 += __bfloat162float(a.res[o]);
                    a.y[o] = __float2bfloat16_rn(v0);
                    if (two) {
                        if (a.res) v1 += __bfloat162float(a.res[o + 1]);
                        a.y[o + 1] = __float2bfloat16_rn(v1);
                    }
                }
            }
    }
    }
}

/* Opt-in shared memory per block of the current device (bytes). */
static int conv_smem_optin(void) {
    int dev = 0, v = 0;
    ZT_CUDA_CHECK(cudaGetDevice(&dev));
    ZT_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    return v;
}

template <int BM, int BN, int WM, int WN, int BK, int STAGES, bool SEPI = false>
static void conv_igemm_launch(zt_ops *ops, const conv_args *a) {
    typedef conv_cfg<BM, BN, WM, WN, BK, STAGES, SEPI> C;
    auto kern = k_conv_igemm<BM, BN, WM, WN, BK, STAGES, SEPI>;
    ZT_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM));
    dim3 grid((unsigned)((a->M + BM - 1) / BM), (unsigned)((a->cout + BN - 1) / BN));
    ZT_ASSERT(grid.y <= 65535);
    kern<<<grid, C::THREADS, C::SMEM, zt_cu_stream(ops)>>>(*a);
    ZT_CUDA_LAUNCH_CHECK();
}

/* ------------------------------------------------------------------------ */
/* im2col + cuBLASLt fallback                                               */

/* col[(yy*ow + xx)][(dy*k + dx)*cin + ci] = x[(y0+yy)*s + dy - pad, xx*s + dx - pad, ci]
 * or 0 outside the h x w input (s = 1: pad k/2, ow = w; s = 2: pad 0, ow = w/2);
 * x points at image row xr0 */
template <typename T>
__global__ void k_im2col(int h, int w, int cin, int k, int s, int y0, int rows, int xr0, const T *x, T *col) {
    const int pad = s > 1 ? 0 : k / 2, K = k * k * cin, ow = w / s, npix = rows * ow;
    for (int p = blockIdx.y; p < npix; p += gridDim.y) {
        const int yy = p / ow, xx = p - yy * ow;
        T *dst = col + (size_t)p * K;
        for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < K; e += gridDim.x * blockDim.x) {
            const int tap = e / cin, ci = e - tap * cin, dy = tap / k, dx = tap - dy * k;
            const int iy = (y0 + yy) * s + dy - pad, ix = xx * s + dx - pad;
            dst[e] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x[((size_t)(iy - xr0) * w + ix) * cin + ci] : zt_from_f32<T>(0.0f);
        }
    }
}

static void conv_im2col_gemm(zt_ops *ops, const zt_conv2d *c, int by0, int brows, int xr0, void *workspace) {
    const int K = c->k * c->k * c->cin, st = conv_stride(c), ow = c->w / st;
    const size_t s = zt_dtype_size(c->dt);
    if (c->k == 1) { /* x (at row by0: no halo) is already the [rows*w, cin] operand */
        ZT_ASSERT(st == 1);
        zt_cuda_gemm_ex(ops, brows * c->w, c->cout, K, c->x, c->dt, K, c->wgt, c->dt, K, c->bias, c->residual, c->cout,
                        c->y, c->dt, c->cout);
        return;
    }
    ZT_ASSERT(workspace);
    const int band = conv_band_rows(c);
    for (int y0 = by0; y0 < by0 + brows; y0 += band) {
        const int rows = by0 + brows - y0 < band ? by0 + brows - y0 : band;
        const int npix = rows * ow;
        dim3 grid((unsigned)((K + 255) / 256), (unsigned)(npix < 65535 ? npix : 65535));
        if (c->dt == ZT_DT_BF16)
            k_im2col<zt_bf16><<<grid, 256, 0, zt_cu_stream(ops)>>>(c->h, c->w, c->cin, c->k, st, y0, rows, xr0,
                                                                  (const zt_bf16 *)c->x, (zt_bf16 *)workspace);
        else
            k_im2col<float><<<grid, 256, 0, zt_cu_stream(ops)>>>(c->h, c->w, c->cin, c->k, st, y0, rows, xr0,
                                                                (const float *)c->x, (float *)workspace);
        ZT_CUDA_LAUNCH_CHECK();
        const size_t off = (size_t)(y0 - by0) * ow * c->cout * s;
        zt_cuda_gemm_ex(ops, npix, c->cout, K, workspace, c->dt, K, c->wgt, c->dt, K, c->bias,
                        c->residual ? (const char *)c->residual + off : NULL, c->cout, (char *)c->y + off, c->dt, c->cout);
    }
}

/* Tile variants of the implicit GEMM (kbench compares them; 0 = the default:
 * variant 6 where cout is a multiple of 256 and cin >= 256, else variant 5,
 * 2-8% over 2 without a residual, 15-22% with one). 1: 128x128 block, 8 warps of 64x32, k 32, 4 stages;
 * 2: 128x128, 4 warps of 64x64, k 64, 3 stages; 3: 128x128, 4 warps of
 * 64x64, k 32, 4 stages; 4: 256x128, 8 warps of 64x64, k 32, 3 stages;
 * 5: as 2 with the epilogue staged through shared memory.
 * 6, 7: 128x256 and 256x128 blocks of 8 warps of 64x64, k 64, 3 stages,
 * staged epilogue (144 KiB of shared memory: on cards with less opt-in
 * shared memory per block they run as 5). On the H100, 6 is 3-9% faster
 * than 5 at cout 256/512 and half as fast at cout 128; 7 is no better.
 * 8-11 (kernels/cuda_conv_sm90.cu, compute capability 9.0 built for sm_90a,
 * cin % 64 == 0, cout a multiple of the block width; else they run as 5):
 * wgmma, 8: 128x256 block, 4 stages; 9: 128x128, 4 stages; 10: 128x128, 3
 * stages (two blocks per SM); 11: 128x256, 3 stages. The default takes 8
 * where cout % 256 == 0, else 10, wherever the wgmma kernel applies.
 * cout <= 32 always takes 128x32 (4 warps of 32x32). */
void zt_cuda_conv2d_variant(zt_ops *ops, const zt_conv2d *c, void *workspace, int variant) {
    ZT_ASSERT(c->h > 0 && c->w > 0 && c->cin > 0 && c->cout > 0 && (c->k == 1 || c->k == 3));
    ZT_ASSERT(c->x && c->wgt && c->y);
    if (c->dt != ZT_DT_BF16 && c->dt != ZT_DT_F32) ZT_CU_FAIL_DTYPE("conv2d", c->dt);
    ZT_ASSERT(c->band_rows >= 0 && c->band_y0 >= 0 && c->band_y0 + c->band_rows <= c->h);
    const int st = conv_stride(c);
    ZT_ASSERT(st == 1 || (st == 2 && c->k == 3 && !c->band_rows && c->h % 2 == 0 && c->w % 2 == 0));
    const int by0 = c->band_rows ? c->band_y0 : 0, brows = c->band_rows ? c->band_rows : c->h / st;
    const int xr0 = by0 - c->k / 2 > 0 ? by0 - c->k / 2 : 0;
    if (!conv_use_igemm(c)) {
        conv_im2col_gemm(ops, c, by0, brows, xr0, workspace);
        return;
    }
    ZT_ASSERT(zt_al16(c->x) && zt_al16(c->wgt)); /* 16-byte cp.async sources */
    ZT_ASSERT(c->w <= 32768 && c->h <= 32767);   /* packed pixel coordinates */
    conv_args a;
    a.h = c->h; a.w = c->w; a.cin = c->cin; a.cout = c->cout; a.k = c->k; a.pad = c->k / 2;
    a.K = c->k * c->k * c->cin;
    ZT_ASSERT((int64_t)c->h * c->w < 0x7fffffff);
    a.M = brows * c->w;
    a.y0 = by0;
    a.xr0 = xr0;
    a.x = (const zt_bf16 *)c->x; a.wgt = (const zt_bf16 *)c->wgt; a.bias = (const zt_bf16 *)c->bias;
    a.res = (const zt_bf16 *)c->residual; a.y = (zt_bf16 *)c->y;
    a.pair_ok = c->cout % 2 == 0 && ((uintptr_t)c->y & 3) == 0 && ((uintptr_t)c->residual & 3) == 0;
    a.vec16 = c->cout % 8 == 0 && zt_al16(c->y) && zt_al16(c->residual) && zt_al16(c->bias);
    if (c->cout <= 32) {
        conv_igemm_launch<128, 32, 32, 32, 32, 4>(ops, &a);
        return;
    }
    switch (variant) {
    case 1: conv_igemm_launch<128, 128, 64, 32, 32, 4>(ops, &a); break;
    case 2: conv_igemm_launch<128, 128, 64, 64, 64, 3>(ops, &a); break;
    case 3: conv_igemm_launch<128, 128, 64, 64, 32, 4>(ops, &a); break;
    case 4: conv_igemm_launch<256, 128, 64, 64, 32, 3>(ops, &a); break;
    case 6:
    case 7:
        if (conv_smem_optin() < conv_cfg<128, 256, 64, 64, 64, 3, true>::SMEM) {
            conv_igemm_launch<128, 128, 64, 64, 64, 3, true>(ops, &a);
        } else if (variant == 6) {
            conv_igemm_launch<128, 256, 64, 64, 64, 3, true>(ops, &a);
        } else {
            conv_igemm_launch<256, 128, 64, 64, 64, 3, true>(ops, &a);
        }
        break;
    case 8:  /* wgmma 128x256, 4 stages */
    case 9:  /* wgmma 128x128, 4 stages */
    case 10: /* wgmma 128x128, 3 stages, two blocks per SM */
    case 11: /* wgmma 128x256, 3 stages */
        if (!conv_wgmma_launch(ops, &a, variant == 8 || variant == 11 ? 256 : 128, variant == 8 || variant == 9 ? 4 : 3))
            conv_igemm_launch<128, 128, 64, 64, 64, 3, true>(ops, &a);
        break;
    case 0: /* Hopper: wgmma, 8 where cout fills its 256-wide block, else 10 (on the H100 1.3-1.45x
             * faster than 5-6 at 256/512 channels; at cout 128 10 beats 9 by 1-20% and 5 by 2-24%);
             * elsewhere 6 where cout fills its 256-wide block (4-5% faster than 5 on the H100 at
             * 256/512 channels, twice slower at cout 128), else 5 */
        if (c->cout % 256 == 0 ? conv_wgmma_launch(ops, &a, 256, 4) : conv_wgmma_launch(ops, &a, 128, 3)) break;
        if (c->cout % 256 == 0 && c->cin >= 256 && conv_smem_optin() >= conv_cfg<128, 256, 64, 64, 64, 3, true>::SMEM)
            conv_igemm_launch<128, 256, 64, 64, 64, 3, true>(ops, &a);
        else
            conv_igemm_launch<128, 128, 64, 64, 64, 3, true>(ops, &a);
        break;
    case 5: conv_igemm_launch<128, 128, 64, 64, 64, 3, true>(ops, &a); break;
    default: ZT_ASSERT(!"conv2d: unknown tile variant");
    }
}

void zt_cuda_conv2d(zt_ops *ops, const zt_conv2d *c, void *workspace) { zt_cuda_conv2d_variant(ops, c, workspace, 0); }
