/* kernels/cuda_groupnorm.cu — GroupNorm over NHWC with optional fused SiLU,
 * in the three pieces of ops.h (zt_op_groupnorm_partial / _finalize /
 * _apply; zt_op_groupnorm runs all three):
 *   partial: one block per image row reduces, for every group, the f32 sums
 *      of x - k and (x - k)² over the row (k = the row's first value of the
 *      group: a shift that keeps the one-pass variance accurate when
 *      |mean| >> std) into part[row][g] = (sum, sum², k);
 *   finalize: one block per group combines the rows in a fixed order in
 *      double into (mean, rstd);
 *   apply: y = R(silu?((x - mean)·rstd·gamma + beta)), one rounding.
 * No atomics and nothing depends on how the rows were banded, so results are
 * bit-identical run to run and between a whole image and its row bands.
 * Threads own a fixed 8-channel chunk (16-byte accesses) and step over
 * pixels, so per-channel parameters are loaded once per thread.
 * stats: float ms[groups][2], then float part[rows][groups][3]. */
#include "kernels/cuda_common.cuh"

#define GN_SMEM_MAX (48 * 1024)

static int64_t gn_row_px(const zt_groupnorm *g) { return g->w > 0 ? g->w : (g->hw < 1024 ? g->hw : 1024); }
static int64_t gn_rows(const zt_groupnorm *g) { return (g->hw + gn_row_px(g) - 1) / gn_row_px(g); }

size_t zt_cuda_groupnorm_stats_size(zt_ops *ops, const zt_groupnorm *g) {
    (void)ops;
    return (size_t)g->groups * 2 * sizeof(float) + (size_t)gn_rows(g) * g->groups * 3 * sizeof(float);
}

/* Thread layout shared by partial and apply: chunk q = t % cchunks (CW
 * channels), pixel offset t / cchunks; pp = threads / cchunks pixels per step. */
template <typename T, int CW>
__device__ __forceinline__ void gn_load(const T *p, float v[CW]) {
    if constexpr (CW == 8) zt_ld8rw(p, v);
    else v[0] = zt_to_f32(*p);
}

template <typename T, int CW>
__global__ void k_gn_partial(int hw, int rw, int c, int groups, int row0, const T *x, float *part) {
    extern __shared__ float sh[]; /* [2][pp][c] */
    const int cchunks = c / CW, pp = blockDim.x / cchunks, cpg = c / groups;
    const int t = threadIdx.x, q = t % cchunks, poff = t / cchunks;
    const int p0 = blockIdx.x * rw, p1 = min(hw, p0 + rw);
    const T *xr = x + (size_t)p0 * c;
    float k[CW], s1[CW], s2[CW];
#pragma unroll
    for (int j = 0; j < CW; j++) {
        k[j] = zt_to_f32(xr[((q * CW + j) / cpg) * cpg]);
        s1[j] = 0.0f;
        s2[j] = 0.0f;
    }
    if (poff < pp) {
        for (int p = p0 + poff; p < p1; p += pp) {
            float v[CW];
            gn_load<T, CW>(x + (size_t)p * c + q * CW, v);
#pragma unroll
            for (int j = 0; j < CW; j++) {
                const float d = v[j] - k[j];
                s1[j] += d;
                s2[j] += d * d;
            }
        }
        float *sh1 = sh + poff * c + q * CW, *sh2 = sh + (pp + poff) * c + q * CW;
#pragma unroll
        for (int j = 0; j < CW; j++) {
            sh1[j] = s1[j];
            sh2[j] = s2[j];
        }
    }
    __syncthreads();
    for (int g = t; g < groups; g += blockDim.x) {
        float a = 0.0f, b = 0.0f;
        for (int i = 0; i < pp; i++)
            for (int ch = g * cpg; ch < (g + 1) * cpg; ch++) {
                a += sh[i * c + ch];
                b += sh[(pp + i) * c + ch];
            }
        float *o = part + ((size_t)(row0 + blockIdx.x) * groups + g) * 3;
        o[0] = a;
        o[1] = b;
        o[2] = zt_to_f32(xr[g * cpg]);
    }
}

/* Fixed-shape tree over 256 threads: the order depends on the row count only. */
__device__ double gn_block_sum(double v, double *r) {
    r[threadIdx.x] = v;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o >>= 1) {
        if ((int)threadIdx.x < o) r[threadIdx.x] += r[threadIdx.x + o];
        __syncthreads();
    }
    const double s = r[0];
    __syncthreads();
    return s;
}

__global__ void k_gn_finalize(long long hw, int rw, int rows, int cpg, int groups, float eps, float *stats) {
    __shared__ double red[256];
    const int g = blockIdx.x;
    const float *part = stats + 2 * groups;
    double a = 0.0;
    for (int i = threadIdx.x; i < rows; i += blockDim.x) {
        const float *o = part + ((size_t)i * groups + g) * 3;
        const double nr = (double)(min(hw, (long long)(i + 1) * rw) - (long long)i * rw) * cpg;
        a += (double)o[0] + nr * (double)o[2];
    }
    const double n = (double)hw * cpg;
    const double mean = gn_block_sum(a, red) / n;
    double b = 0.0;
    for (int i = threadIdx.x; i < rows; i += blockDim.x) {
        const float *o = part + ((size_t)i * groups + g) * 3;
        const double nr = (double)(min(hw, (long long)(i + 1) * rw) - (long long)i * rw) * cpg;
        const double dk = (double)o[2] - mean;
        b += (double)o[1] + 2.0 * dk * (double)o[0] + nr * dk * dk;
    }
    double var = gn_block_sum(b, red) / n;
    if (threadIdx.x == 0) {
        if (var < 0) var = 0;
        stats[2 * g] = (float)mean;
        stats[2 * g + 1] = 1.0f / sqrtf((float)var + eps);
    }
}

template <typename T, typename TG, int CW>
__global__ void k_gn_apply(int hw, int c, int groups, const T *x, T *y, const TG *gamma, const TG *beta,
                           const float *stats, int silu) {
    const int cchunks = c / CW, pp = blockDim.x / cchunks, cpg = c / groups;
    const int t = threadIdx.x, q = t % cchunks, poff = t / cchunks;
    if (poff >= pp) return;
    float mean[CW], rstd[CW], ga[CW], be[CW];
#pragma unroll
    for (int j = 0; j < CW; j++) {
        const int ch = q * CW + j, g = ch / cpg;
        mean[j] = stats[2 * g];
        rstd[j] = stats[2 * g + 1];
        ga[j] = zt_to_f32(gamma[ch]);
        be[j] = zt_to_f32(beta[ch]);
    }
    for (int p = blockIdx.x * pp + poff; p < hw; p += gridDim.x * pp) {
        float v[CW];
        gn_load<T, CW>(x + (size_t)p * c + q * CW, v);
#pragma unroll
        for (int j = 0; j < CW; j++) {
            float n = (v[j] - mean[j]) * rstd[j];
            n = n * ga[j] + be[j];
            /* __fdividef (2 ulp) instead of the IEEE division routine: with
             * it this pass is memory-bound instead of ALU-bound */
            if (silu) n = __fdividef(n, 1.0f + expf(-n));
            v[j] = n;
        }
        if constexpr (CW == 8) zt_st8(y + (size_t)p * c + q * CW, v);
        else y[(size_t)p * c + q * CW] = zt_from_f32<T>(v[0]);
    }
}

static int gn_pp(const zt_groupnorm *g, int cw) {
    const int cchunks = g->c / cw;
    ZT_ASSERT(cchunks <= 1024);
    return cchunks >= 256 ? 1 : 256 / cchunks;
}

static bool gn_vec(const zt_groupnorm *g, const void *y) {
    return g->c % 8 == 0 && zt_al16(g->x) && (!y || zt_al16(y)) && (g->c * zt_dtype_size(g->dt)) % 16 == 0;
}

static void gn_check(const zt_groupnorm *g, bool need_x) {
    ZT_ASSERT(g->hw > 0 && g->c > 0 && g->groups > 0 && g->c % g->groups == 0 && g->w >= 0 && (g->x || !need_x));
    if (g->dt != ZT_DT_BF16 && g->dt != ZT_DT_F32) ZT_CU_FAIL_DTYPE("groupnorm", g->dt);
}

template <typename T, int CW> static void gn_partial_run(zt_ops *ops, const zt_groupnorm *g, int row0, float *stats) {
    const int pp = gn_pp(g, CW), threads = (g->c / CW) * pp;
    const size_t smem = (size_t)2 * pp * g->c * sizeof(float);
    ZT_ASSERT(smem <= GN_SMEM_MAX);
    const int rows = (int)gn_rows(g);
    k_gn_partial<T, CW><<<rows, threads, smem, zt_cu_stream(ops)>>>(g->hw, (int)gn_row_px(g), g->c, g->groups, row0,
                                                                     (const T *)g->x, stats + 2 * g->groups);
    ZT_CUDA_LAUNCH_CHECK();
}

void zt_cuda_groupnorm_partial(zt_ops *ops, const zt_groupnorm *g, int row0, void *stats) {
    gn_check(g, true);
    ZT_ASSERT(stats && row0 >= 0 && (g->w == 0 || g->hw % g->w == 0));
    const bool vec = gn_vec(g, NULL);
    if (g->dt == ZT_DT_BF16) {
        if (vec) gn_partial_run<zt_bf16, 8>(ops, g, row0, (float *)stats);
        else gn_partial_run<zt_bf16, 1>(ops, g, row0, (float *)stats);
    } else {
        if (vec) gn_partial_run<float, 8>(ops, g, row0, (float *)stats);
        else gn_partial_run<float, 1>(ops, g, row0, (float *)stats);
    }
}

void zt_cuda_groupnorm_finalize(zt_ops *ops, const zt_groupnorm *g, void *stats) {
    gn_check(g, false);
    ZT_ASSERT(stats);
    k_gn_finalize<<<g->groups, 256, 0, zt_cu_stream(ops)>>>((long long)g->hw, (int)gn_row_px(g), (int)gn_rows(g),
                                                            g->c / g->groups, g->groups, g->eps, (float *)stats);
    ZT_CUDA_LAUNCH_CHECK();
}

template <typename T, typename TG, int CW> static void gn_apply_run(zt_ops *ops, const zt_groupnorm *g, const float *stats) {
    const int pp = gn_pp(g, CW), threads = (g->c / CW) * pp;
    /* enough blocks to fill the GPU, few enough that each thread normalises
     * many pixels: its per-channel parameters are loaded once */
    int sms = 0, dev = 0;
    ZT_CUDA_CHECK(cudaGetDevice(&dev));
    ZT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    int blocks = (g->hw + pp - 1) / pp;
    const int cap = sms * (2048 / threads);
    if (blocks > cap) blocks = cap;
    k_gn_apply<T, TG, CW><<<blocks, threads, 0, zt_cu_stream(ops)>>>(g->hw, g->c, g->groups, (const T *)g->x, (T *)g->y,
                                                                     (const TG *)g->gamma, (const TG *)g->beta, stats,
                                                                     g->silu);
    ZT_CUDA_LAUNCH_CHECK();
}

template <typename T> static void gn_apply_dispatch(zt_ops *ops, const zt_groupnorm *g, const float *stats) {
    const bool vec = gn_vec(g, g->y);
    if (g->gb_dt == ZT_DT_BF16) {
        if (vec) gn_apply_run<T, zt_bf16, 8>(ops, g, stats);
        else gn_apply_run<T, zt_bf16, 1>(ops, g, stats);
    } else if (g->gb_dt == ZT_DT_F32) {
        if (vec) gn_apply_run<T, float, 8>(ops, g, stats);
        else gn_apply_run<T, float, 1>(ops, g, stats);
    } else {
        ZT_CU_FAIL_DTYPE("groupnorm (gamma/beta)", g->gb_dt);
    }
}

void zt_cuda_groupnorm_apply(zt_ops *ops, const zt_groupnorm *g, const void *stats) {
    gn_check(g, true);
    ZT_ASSERT(g->y && g->gamma && g->beta && stats);
    if (g->dt == ZT_DT_BF16) gn_apply_dispatch<zt_bf16>(ops, g, (const float *)stats);
    else gn_apply_dispatch<float>(ops, g, (const float *)stats);
}
