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
 * f32. r = 1/sqrtf(v + eps) (IEEE sqrt and division, as the CPU backend). */
#include "kernels/cuda_common.cuh"

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

#define NORM_BT(G) ((G) > NORM_BLOCK ? (G) : NORM_BLOCK)

/* Persistent blocks: a block walks vectors base, base + stride, ... (stride =
 * grid * groups per block) and loads vector i+1 (x, and resid for gate_add)
 * before it reduces and writes vector i, so loads stay in flight across the
 * barriers of the reduction. The loop count is uniform over the block. */
template <typename TX, typename TY, int G, int NV, int MODE>
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

        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < NV; i++) {
            float f[8];
            xc[i].unpack(f);
#pragma unroll
            for (int j = 0; j < 8; j++) s += MODE == NORM_LAYER ? f[j] : f[j] * f[j];
        }
        s = norm_group_sum<G>(s, red);
        float mean = 0.0f, r;
        if (MODE == NORM_LAYER) {
            mean = s / (float)dim;
            float q = 0.0f;
#pragma unroll
            for (int i = 0; i < NV; i++) {
                const int e0 = (t + i * G) * 8;
                float f[8];
                xc[i].unpack(f);
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    const float d = f[j] - mean;
                    if (e0 + j < dim) q += d * d;
                }
            }
            q = norm_group_sum<G>(q, red);
            r = 1.0f / sqrtf(q / (float)dim + a.eps);
        } else {
            r = 1.0f / sqrtf(s / (float)dim + a.eps);
        }

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

static int norm_sm_count(void) {
    static int sms[64];
    int dev = 0;
    ZT_CUDA_CHECK(cudaGetDevice(&dev));
    if (dev < 0 || dev >= 64) dev = 0;
    if (!sms[dev]) ZT_CUDA_CHECK(cudaDeviceGetAttribute(&sms[dev], cudaDevAttrMultiProcessorCount, dev));
    return sms[dev];
}

template <typename TX, typename TY, int MODE> static void norm_launch_t(const zt_ops *ops, const norm_args *a) {
    const int chunks = (a->dim + 7) / 8;
    const long long nvec = (long long)a->rows * a->heads;
    cudaStream_t st = zt_cu_stream(ops);
#define NORM_GO(G, NV)                                                                          \
    do {                                                                                        \
        auto kern = k_norm<TX, TY, G, NV, MODE>;                                                \
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

template <int MODE>
static void norm_run(zt_ops *ops, const zt_norm *n, const void *gate, void *out, zt_dtype out_dt, int64_t ld_out) {
    ZT_ASSERT(n->rows >= 0 && n->heads >= 1 && n->dim >= 1 && n->x && out);
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
    const bool xb = n->x_dt == ZT_DT_BF16, yb = out_dt == ZT_DT_BF16;
    if (xb && yb) norm_launch_t<zt_bf16, zt_bf16, MODE>(ops, &a);
    else if (xb) norm_launch_t<zt_bf16, float, MODE>(ops, &a);
    else if (yb) norm_launch_t<float, zt_bf16, MODE>(ops, &a);
    else norm_launch_t<float, float, MODE>(ops, &a);
}

void zt_cuda_rmsnorm(zt_ops *ops, const zt_norm *n) { norm_run<NORM_RMS>(ops, n, NULL, n->y, n->y_dt, n->ldy); }

void zt_cuda_layernorm(zt_ops *ops, const zt_norm *n) {
    ZT_ASSERT(n->weight == NULL);
    norm_run<NORM_LAYER>(ops, n, NULL, n->y, n->y_dt, n->ldy);
}

void zt_cuda_rmsnorm_gate_add(zt_ops *ops, const zt_norm *n, const void *gate, void *resid, int64_t ld_resid) {
    norm_run<NORM_RMS_GATE_ADD>(ops, n, gate, resid, n->y_dt, ld_resid);
}
