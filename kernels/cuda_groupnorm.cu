/* kernels/cuda_groupnorm.cu — GroupNorm over NHWC with optional fused SiLU
 * (zt_op_groupnorm), in three deterministic launches:
 *   1. partial sums: block b reduces a slab of pixels for every group into
 *      workspace part[b][g] = (Σ(x-k_g), Σ(x-k_g)²), f32; k_g = x[0, first
 *      channel of g] is a shift that keeps the one-pass variance accurate
 *      when |mean| >> std;
 *   2. finalize: one block per group adds the partials in a fixed order
 *      (double) into stats[g] = (mean, rstd);
 *   3. normalise: y = R(silu?((x - mean)·rstd·gamma + beta)), one rounding.
 * No atomics, so the result is bit-identical run to run. Threads own a fixed
 * 8-channel chunk (16-byte accesses) and step over pixels, so per-channel
 * parameters are loaded once per thread. */
#include "kernels/cuda_common.cuh"

#define GN_MAX_PARTS 1024
#define GN_PIX_PER_PART 32
#define GN_SMEM_MAX (48 * 1024)

static int gn_parts(int hw) {
    int p = (hw + GN_PIX_PER_PART - 1) / GN_PIX_PER_PART;
    return p < 1 ? 1 : (p > GN_MAX_PARTS ? GN_MAX_PARTS : p);
}

size_t zt_cuda_groupnorm_workspace_size(zt_ops *ops, const zt_groupnorm *g) {
    (void)ops;
    return (size_t)(gn_parts(g->hw) + 1) * g->groups * 2 * sizeof(float);
}

/* Thread layout shared by passes 1 and 3: chunk q = t % cchunks (CW
 * channels), pixel offset t / cchunks; pp = threads / cchunks pixels per step. */
template <typename T, int CW>
__device__ __forceinline__ void gn_load(const T *p, float v[CW]) {
    if constexpr (CW == 8) zt_ld8rw(p, v);
    else v[0] = zt_to_f32(*p);
}

template <typename T, int CW>
__global__ void k_gn_partial(int hw, int c, int groups, const T *x, float *part) {
    extern __shared__ float sh[]; /* [2][pp][c] */
    const int cchunks = c / CW, pp = blockDim.x / cchunks, cpg = c / groups;
    const int t = threadIdx.x, q = t % cchunks, poff = t / cchunks;
    const int ppart = (hw + gridDim.x - 1) / gridDim.x;
    const int p0 = blockIdx.x * ppart, p1 = min(hw, p0 + ppart);
    float k[CW], s1[CW], s2[CW];
#pragma unroll
    for (int j = 0; j < CW; j++) {
        k[j] = zt_to_f32(x[((q * CW + j) / cpg) * cpg]);
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
        part[((size_t)blockIdx.x * groups + g) * 2] = a;
        part[((size_t)blockIdx.x * groups + g) * 2 + 1] = b;
    }
}

template <typename T>
__global__ void k_gn_finalize(int hw, int c, int groups, int parts, const T *x, const float *part, float eps, float *stats) {
    __shared__ double r1[256], r2[256];
    const int g = blockIdx.x, cpg = c / groups;
    double a = 0.0, b = 0.0;
    for (int i = threadIdx.x; i < parts; i += blockDim.x) {
        a += part[((size_t)i * groups + g) * 2];
        b += part[((size_t)i * groups + g) * 2 + 1];
    }
    r1[threadIdx.x] = a;
    r2[threadIdx.x] = b;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o >>= 1) {
        if ((int)threadIdx.x < o) {
            r1[threadIdx.x] += r1[threadIdx.x + o];
            r2[threadIdx.x] += r2[threadIdx.x + o];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        const double n = (double)hw * cpg;
        const double m1 = r1[0] / n;
        double var = r2[0] / n - m1 * m1;
        if (var < 0) var = 0;
        const float k = zt_to_f32(x[g * cpg]);
        stats[2 * g] = (float)((double)k + m1);
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

template <typename T, typename TG, int CW> static void gn_run(zt_ops *ops, const zt_groupnorm *g, float *ws) {
    const int cchunks = g->c / CW;
    ZT_ASSERT(cchunks <= 1024);
    const int pp = cchunks >= 256 ? 1 : 256 / cchunks, threads = cchunks * pp;
    const size_t smem = (size_t)2 * pp * g->c * sizeof(float);
    ZT_ASSERT(smem <= GN_SMEM_MAX);
    const int parts = gn_parts(g->hw);
    float *part = ws, *stats = ws + (size_t)parts * g->groups * 2;
    cudaStream_t st = zt_cu_stream(ops);
    k_gn_partial<T, CW><<<parts, threads, smem, st>>>(g->hw, g->c, g->groups, (const T *)g->x, part);
    ZT_CUDA_LAUNCH_CHECK();
    k_gn_finalize<T><<<g->groups, 256, 0, st>>>(g->hw, g->c, g->groups, parts, (const T *)g->x, part, g->eps, stats);
    ZT_CUDA_LAUNCH_CHECK();
    /* enough blocks to fill the GPU, few enough that each thread normalises
     * many pixels: its per-channel parameters are loaded once */
    int sms = 0, dev = 0;
    ZT_CUDA_CHECK(cudaGetDevice(&dev));
    ZT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    int blocks = (g->hw + pp - 1) / pp;
    const int cap = sms * (2048 / threads);
    if (blocks > cap) blocks = cap;
    k_gn_apply<T, TG, CW><<<blocks, threads, 0, st>>>(g->hw, g->c, g->groups, (const T *)g->x, (T *)g->y,
                                                     (const TG *)g->gamma, (const TG *)g->beta, stats, g->silu);
    ZT_CUDA_LAUNCH_CHECK();
}

template <typename T> static void gn_dispatch(zt_ops *ops, const zt_groupnorm *g, float *ws) {
    const bool vec = g->c % 8 == 0 && zt_al16(g->x) && zt_al16(g->y) && (g->c * zt_dtype_size(g->dt)) % 16 == 0;
    if (g->gb_dt == ZT_DT_BF16) {
        if (vec) gn_run<T, zt_bf16, 8>(ops, g, ws);
        else gn_run<T, zt_bf16, 1>(ops, g, ws);
    } else if (g->gb_dt == ZT_DT_F32) {
        if (vec) gn_run<T, float, 8>(ops, g, ws);
        else gn_run<T, float, 1>(ops, g, ws);
    } else {
        ZT_CU_FAIL_DTYPE("groupnorm (gamma/beta)", g->gb_dt);
    }
}

void zt_cuda_groupnorm(zt_ops *ops, const zt_groupnorm *g, void *workspace) {
    ZT_ASSERT(g->hw > 0 && g->c > 0 && g->groups > 0 && g->c % g->groups == 0);
    ZT_ASSERT(g->x && g->y && g->gamma && g->beta && workspace);
    if (g->dt == ZT_DT_BF16) gn_dispatch<zt_bf16>(ops, g, (float *)workspace);
    else if (g->dt == ZT_DT_F32) gn_dispatch<float>(ops, g, (float *)workspace);
    else ZT_CU_FAIL_DTYPE("groupnorm", g->dt);
}
