/* kernels/cuda_gemm.cu — y = x·wᵀ (+ bias) (+ y) through cuBLASLt.
 *
 * Row-major y[m, n] = x[m, k]·w[n, k]ᵀ is, in cuBLAS's column-major terms,
 * D[n, m] = op(A)·B with A = w seen as a k×n column-major matrix (ld k,
 * op = T) and B = x seen as k×m (ld ldx, op = N); D is n×m with ld ldy.
 * Compute type CUBLAS_COMPUTE_32F for every combination: f32 accumulation
 * for bf16 and f16 inputs (the fp16 path; any card with tensor cores) and
 * true f32 (no TF32) for f32 inputs; zt_gemm.scale is alpha. The bias rides the
 * epilogue (CUBLASLT_EPILOGUE_BIAS, one rounding after the add); accumulate
 * is beta = 1 with C = D.
 *
 * The heuristic query costs tens of microseconds of host time per call, so
 * its answer is cached per (device, shape, dtypes, strides, alignments) in a
 * fixed table: no allocation, a mutex for the rare multi-threaded caller. */
#include <cublasLt.h>
#include <pthread.h>
#include <string.h>

#include "kernels/cuda_common.cuh"

static cudaDataType_t gemm_cuda_type(zt_dtype t) {
    switch (t) {
    case ZT_DT_F32: return CUDA_R_32F;
    case ZT_DT_BF16: return CUDA_R_16BF;
    case ZT_DT_F16: return CUDA_R_16F;
    default: ZT_CU_FAIL_DTYPE("gemm", t);
    }
}

/* Largest power of two (<= 256) dividing the address: what cuBLASLt may assume. */
static uint32_t gemm_alignment(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t al = 256;
    while (al > 1 && (a & (al - 1))) al >>= 1;
    return al;
}

typedef struct {
    int device, m, n, k;
    int x_dt, w_dt, y_dt, bias_dt; /* bias_dt -1: no bias */
    int64_t ldx, ldw, ldy, ldc;    /* ldc 0: beta = 0 */
    uint32_t al_a, al_b, al_c, al_d;
} gemm_key;

typedef struct {
    gemm_key key;
    int used;
    int found;        /* 0: no algorithm for this combination */
    cublasLtMatmulAlgo_t algo;
} gemm_entry;

#define GEMM_CACHE_SIZE 128
static gemm_entry g_cache[GEMM_CACHE_SIZE];
static int g_cache_next;
static pthread_mutex_t g_cache_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c, d;
} gemm_plan;

static void gemm_plan_make(gemm_plan *p, const gemm_key *key, const void *bias) {
    ZT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    ZT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    ZT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (key->bias_dt >= 0) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        int32_t bt = (int32_t)gemm_cuda_type((zt_dtype)key->bias_dt);
        ZT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        ZT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
        ZT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
    }
    cudaDataType_t tx = gemm_cuda_type((zt_dtype)key->x_dt), tw = gemm_cuda_type((zt_dtype)key->w_dt),
                   tyy = gemm_cuda_type((zt_dtype)key->y_dt);
    ZT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, tw, (uint64_t)key->k, (uint64_t)key->n, key->ldw));
    ZT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, tx, (uint64_t)key->k, (uint64_t)key->m, key->ldx));
    ZT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, tyy, (uint64_t)key->n, (uint64_t)key->m,
                                               key->ldc ? key->ldc : key->ldy));
    ZT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->d, tyy, (uint64_t)key->n, (uint64_t)key->m, key->ldy));
}

static void gemm_plan_free(gemm_plan *p) {
    cublasLtMatrixLayoutDestroy(p->d);
    cublasLtMatrixLayoutDestroy(p->c);
    cublasLtMatrixLayoutDestroy(p->b);
    cublasLtMatrixLayoutDestroy(p->a);
    cublasLtMatmulDescDestroy(p->desc);
}

/* Cached heuristic: returns 1 and fills *algo, or 0 if cuBLASLt has none. */
static int gemm_find_algo(zt_ops *ops, const gemm_key *key, const gemm_plan *p, cublasLtMatmulAlgo_t *algo) {
    pthread_mutex_lock(&g_cache_lock);
    for (int i = 0; i < GEMM_CACHE_SIZE; i++) {
        if (g_cache[i].used && !memcmp(&g_cache[i].key, key, sizeof *key)) {
            int found = g_cache[i].found;
            if (found) *algo = g_cache[i].algo;
            pthread_mutex_unlock(&g_cache_lock);
            return found;
        }
    }
    pthread_mutex_unlock(&g_cache_lock);

    cublasLtMatmulPreference_t pref;
    ZT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = ops->gemm_ws_bytes;
    ZT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    ZT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key->al_a,
                                                         sizeof key->al_a));
    ZT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key->al_b,
                                                         sizeof key->al_b));
    ZT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key->al_c,
                                                         sizeof key->al_c));
    ZT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key->al_d,
                                                         sizeof key->al_d));
    cublasLtMatmulHeuristicResult_t res;
    int count = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic((cublasLtHandle_t)ops->cublaslt, p->desc, p->a, p->b, p->c,
                                                       p->d, pref, 1, &res, &count);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS)
        fprintf(stderr, "zturbo: gemm: cublasLtMatmulAlgoGetHeuristic: status %d\n", (int)st);
    int found = st == CUBLAS_STATUS_SUCCESS && count > 0;

    pthread_mutex_lock(&g_cache_lock);
    gemm_entry *slot = NULL;
    for (int i = 0; i < GEMM_CACHE_SIZE && !slot; i++)
        if (!g_cache[i].used) slot = &g_cache[i];
    if (!slot) { /* full: replace round robin */
        slot = &g_cache[g_cache_next];
        g_cache_next = (g_cache_next + 1) % GEMM_CACHE_SIZE;
    }
    slot->key = *key;
    slot->used = 1;
    slot->found = found;
    if (found) slot->algo = res.algo;
    pthread_mutex_unlock(&g_cache_lock);
    if (found) *algo = res.algo;
    return found;
}

/* y[r, j] += bias[j] over an [m, n] f32 matrix (row stride ldy), bias bf16
 * or f16: used only when cuBLASLt has no 16-bit-bias epilogue for an f32
 * output. */
template <typename TB> __global__ void k_gemm_bias_f32(int m, int n, float *y, int64_t ldy, const TB *bias) {
    for (int r = blockIdx.y; r < m; r += gridDim.y)
        for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x)
            y[(size_t)r * ldy + j] = __fadd_rn(y[(size_t)r * ldy + j], zt_to_f32(bias[j]));
}

/* (f32 x, bf16 w) -> f32 y: the f32-math VAE on CUDA keeps its weights in
 * the bf16 unit image. cuBLASLt has no such mixed type, so a plain SIMT
 * tiled kernel (f32 math, weights upcast exactly while staging): 64x64
 * output tile, 256 threads of 4x4, k tiles of 16. Only the small VAE
 * attention projections use it (a few tens of GFLOP per image). */
#define MIX_T 64
#define MIX_K 16
__global__ void __launch_bounds__(256) k_gemm_f32_bf16(int m, int n, int k, const float *x, int64_t ldx,
                                                       const zt_bf16 *w, int64_t ldw, const zt_bf16 *bias,
                                                       const float *c, int64_t ldc, float *y, int64_t ldy) {
    __shared__ float xs[MIX_K][MIX_T + 1]; /* [k][row] */
    __shared__ float ws[MIX_K][MIX_T + 1]; /* [k][col] */
    const int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
    const int r0 = blockIdx.y * MIX_T, c0 = blockIdx.x * MIX_T;
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = 0.f;
    for (int k0 = 0; k0 < k; k0 += MIX_K) {
        for (int idx = threadIdx.x; idx < MIX_T * MIX_K; idx += 256) {
            int rr = idx / MIX_K, kk = idx % MIX_K;
            int gr = r0 + rr, gk = k0 + kk, gc = c0 + rr;
            xs[kk][rr] = (gr < m && gk < k) ? x[(size_t)gr * ldx + gk] : 0.f;
            ws[kk][rr] = (gc < n && gk < k) ? __bfloat162float(w[(size_t)gc * ldw + gk]) : 0.f;
        }
        __syncthreads();
        for (int kk = 0; kk < MIX_K; kk++) {
            float a[4], bb[4];
            for (int i = 0; i < 4; i++) a[i] = xs[kk][tr * 4 + i];
            for (int j = 0; j < 4; j++) bb[j] = ws[kk][tc * 4 + j];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) acc[i][j] = __fadd_rn(acc[i][j], __fmul_rn(a[i], bb[j]));
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; i++) {
        int r = r0 + tr * 4 + i;
        if (r >= m) continue;
        for (int j = 0; j < 4; j++) {
            int col = c0 + tc * 4 + j;
            if (col >= n) continue;
            float v = acc[i][j];
            if (bias) v = __fadd_rn(v, __bfloat162float(bias[col]));
            if (c) v = __fadd_rn(v, c[(size_t)r * ldc + col]);
            y[(size_t)r * ldy + col] = v;
        }
    }
}

/* alpha: zt_gemm.scale (1: none), applied to x·wᵀ before the bias and C. */
static void gemm_run(zt_ops *ops, int m, int n, int k, const void *x, zt_dtype x_dt, int64_t ldx, const void *w,
                     zt_dtype w_dt, int64_t ldw, const void *bias, const void *c, int64_t ldc, void *y, zt_dtype y_dt,
                     int64_t ldy, float alpha) {
    ZT_ASSERT(m > 0 && n > 0 && k > 0 && x && w && y);
    ZT_ASSERT(ldx >= k && ldw >= k && ldy >= n && (!c || ldc >= n));
    if (x_dt == ZT_DT_F32 && w_dt == ZT_DT_BF16) {
        if (y_dt != ZT_DT_F32 || alpha != 1.0f) {
            fprintf(stderr, "zturbo: %s:%d: gemm: (f32 x, bf16 w) needs an f32 output\n", __FILE__, __LINE__);
            abort();
        }
        dim3 grid((unsigned)((n + MIX_T - 1) / MIX_T), (unsigned)((m + MIX_T - 1) / MIX_T));
        k_gemm_f32_bf16<<<grid, 256, 0, (cudaStream_t)ops->stream>>>(m, n, k, (const float *)x, ldx, (const zt_bf16 *)w,
                                                                       ldw, (const zt_bf16 *)bias, (const float *)c, ldc,
                                                                       (float *)y, ldy);
        ZT_CUDA_LAUNCH_CHECK();
        return;
    }
    const int half = x_dt == ZT_DT_BF16 || x_dt == ZT_DT_F16;
    int ok = (half && w_dt == x_dt && (y_dt == x_dt || y_dt == ZT_DT_F32)) ||
             (x_dt == ZT_DT_F32 && w_dt == ZT_DT_F32 && y_dt == ZT_DT_F32);
    if (!ok) {
        fprintf(stderr, "zturbo: %s:%d: gemm: unsupported dtypes (x %s, w %s, y %s)\n", __FILE__, __LINE__,
                zt_dtype_name(x_dt), zt_dtype_name(w_dt), zt_dtype_name(y_dt));
        abort();
    }

    gemm_key key;
    memset(&key, 0, sizeof key); /* padding bytes take part in memcmp */
    key.device = ops->device;
    key.m = m; key.n = n; key.k = k;
    key.x_dt = x_dt; key.w_dt = w_dt; key.y_dt = y_dt;
    key.bias_dt = bias ? (int)w_dt : -1;
    key.ldx = ldx; key.ldw = ldw; key.ldy = ldy; key.ldc = c ? ldc : 0;
    key.al_a = gemm_alignment(w);
    key.al_b = gemm_alignment(x);
    key.al_c = gemm_alignment(c ? c : y);
    key.al_d = gemm_alignment(y);

    /* cuBLASLt's bias has D's type: a bf16 / f16 bias on an f32 output is
     * added by a separate f32 kernel (two f32 roundings instead of one; 16-bit
     * bias values are exact in f32). */
    const int separate_bias = bias && y_dt == ZT_DT_F32 && (w_dt == ZT_DT_BF16 || w_dt == ZT_DT_F16);
    if (separate_bias) key.bias_dt = -1;
    gemm_plan p;
    gemm_plan_make(&p, &key, separate_bias ? NULL : bias);
    cublasLtMatmulAlgo_t algo;
    if (!gemm_find_algo(ops, &key, &p, &algo)) {
        fprintf(stderr,
                "zturbo: %s:%d: gemm: cuBLASLt has no algorithm for m=%d n=%d k=%d ldx=%lld ldy=%lld ldc=%lld "
                "(x %s, w %s, y %s, bias %s, align x%u w%u y%u)\n",
                __FILE__, __LINE__, m, n, k, (long long)ldx, (long long)ldy, (long long)key.ldc, zt_dtype_name(x_dt),
                zt_dtype_name(w_dt), zt_dtype_name(y_dt), bias ? "yes" : "no", key.al_b, key.al_a, key.al_d);
        abort();
    }
    const float beta = c ? 1.0f : 0.0f;
    ZT_CUBLAS_CHECK(cublasLtMatmul((cublasLtHandle_t)ops->cublaslt, p.desc, &alpha, w, p.a, x, p.b, &beta,
                                   c ? c : y, p.c, y, p.d, &algo, ops->gemm_ws, ops->gemm_ws_bytes,
                                   zt_cu_stream(ops)));
    gemm_plan_free(&p);
    if (separate_bias) {
        dim3 grid((unsigned)((n + 255) / 256), (unsigned)(m < 65535 ? m : 65535));
        if (w_dt == ZT_DT_F16)
            k_gemm_bias_f32<__half><<<grid, 256, 0, zt_cu_stream(ops)>>>(m, n, (float *)y, ldy, (const __half *)bias);
        else
            k_gemm_bias_f32<zt_bf16><<<grid, 256, 0, zt_cu_stream(ops)>>>(m, n, (float *)y, ldy, (const zt_bf16 *)bias);
        ZT_CUDA_LAUNCH_CHECK();
    }
}

void zt_cuda_gemm_ex(zt_ops *ops, int m, int n, int k, const void *x, zt_dtype x_dt, int64_t ldx, const void *w,
                     zt_dtype w_dt, int64_t ldw, const void *bias, const void *c, int64_t ldc, void *y, zt_dtype y_dt,
                     int64_t ldy) {
    gemm_run(ops, m, n, k, x, x_dt, ldx, w, w_dt, ldw, bias, c, ldc, y, y_dt, ldy, 1.0f);
}

void zt_cuda_gemm(zt_ops *ops, const zt_gemm *g) {
    int64_t ldx = g->ldx ? g->ldx : g->k, ldy = g->ldy ? g->ldy : g->n;
    gemm_run(ops, g->m, g->n, g->k, g->x, g->x_dt, ldx, g->w, g->w_dt, g->k, g->bias, g->accumulate ? g->y : NULL, ldy,
             g->y, g->y_dt, ldy, g->scale != 0.0f ? g->scale : 1.0f);
}
