/* kernels/cuda_lora.cu — the LoRA merge of ops.h on the GPU: one output tile
 * of 64 x 64 per block of 256 threads (4 x 4 elements each); B and A stream
 * through shared memory in steps of 16 along the rank, in rank order, so
 * every element sees exactly ops.h's sequence of fused multiply-adds (the
 * build has -fmad=false; each fma is an explicit __fmaf_rn) and the result
 * is the CPU backend's, bit for bit. */
#include "kernels/cuda_common.cuh"

#define LM_TILE 64
#define LM_K 16

struct lm_terms {
    zt_lora_term t[ZT_LORA_MAX_TERMS];
    int n;
};

__global__ void __launch_bounds__(256) k_lora_merge(int64_t rows, int64_t cols, uint16_t *w, lm_terms T) {
    __shared__ float Bs[LM_TILE][LM_K + 1];
    __shared__ float As[LM_K][LM_TILE];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int64_t i0 = (int64_t)blockIdx.y * LM_TILE, j0 = (int64_t)blockIdx.x * LM_TILE;
    float acc[4][4];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            const int64_t i = i0 + ty * 4 + a, j = j0 + tx * 4 + b;
            acc[a][b] = i < rows && j < cols ? __uint_as_float((uint32_t)w[i * cols + j] << 16) : 0.0f;
        }
    for (int l = 0; l < T.n; l++) {
        const float *A = T.t[l].a, *B = T.t[l].b;
        const int r = T.t[l].rank;
        float d[4][4];
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) d[a][b] = 0.0f;
        for (int k0 = 0; k0 < r; k0 += LM_K) {
            const int nk = min(LM_K, r - k0);
            for (int e = threadIdx.x; e < LM_TILE * LM_K; e += 256) {
                const int ri = e / LM_K, kk = e % LM_K; /* B tile [64 rows][16 k] */
                const int64_t i = i0 + ri;
                Bs[ri][kk] = i < rows && kk < nk ? B[i * r + k0 + kk] : 0.0f;
                const int ka = e / LM_TILE, cj = e % LM_TILE; /* A tile [16 k][64 cols] */
                const int64_t j = j0 + cj;
                As[ka][cj] = j < cols && ka < nk ? A[(int64_t)(k0 + ka) * cols + j] : 0.0f;
            }
            __syncthreads();
            for (int kk = 0; kk < nk; kk++) {
                float bv[4], av[4];
                for (int a = 0; a < 4; a++) bv[a] = Bs[ty * 4 + a][kk];
                for (int b = 0; b < 4; b++) av[b] = As[kk][tx * 4 + b];
                for (int a = 0; a < 4; a++)
                    for (int b = 0; b < 4; b++) d[a][b] = __fmaf_rn(bv[a], av[b], d[a][b]);
            }
            __syncthreads();
        }
        const float c = T.t[l].coef;
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) acc[a][b] = __fmaf_rn(c, d[a][b], acc[a][b]);
    }
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            const int64_t i = i0 + ty * 4 + a, j = j0 + tx * 4 + b;
            if (i < rows && j < cols) w[i * cols + j] = __bfloat16_as_ushort(__float2bfloat16_rn(acc[a][b]));
        }
}

void zt_cuda_lora_merge(zt_ops *ops, int64_t rows, int64_t cols, uint16_t *w, const zt_lora_term *terms, int n) {
    lm_terms T;
    memset(&T, 0, sizeof T);
    for (int l = 0; l < n; l++) T.t[l] = terms[l];
    T.n = n;
    const dim3 grid((unsigned)((cols + LM_TILE - 1) / LM_TILE), (unsigned)((rows + LM_TILE - 1) / LM_TILE));
    ZT_ASSERT(grid.y < 65536);
    k_lora_merge<<<grid, 256, 0, zt_cu_stream(ops)>>>(rows, cols, w, T);
    ZT_CUDA_LAUNCH_CHECK();
}
