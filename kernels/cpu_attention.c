/* kernels/cpu_attention.c — softmax(q·kᵀ·scale)·v per head on the CPU
 * (ops.h, attention).
 *
 * A task is one head x one block of ZT_ATT_QB queries. It computes the
 * scores of its queries against all visible keys into its worker's slice of
 * the workspace ([QB, sk] f32, the only O(sk) buffer: the full [sq, sk]
 * matrix never exists), then an exact two-pass softmax per row: m = max,
 * p = expf(s - m), l = sum of the f32 p (sequential); on the bf16 path the p
 * are rounded to bf16 before P·V, as flash kernels do (l stays the sum of
 * the unrounded p). o = (P·V) / l in f32, rounded once to dt.
 * Both products go through the f32 matmul engine (cpu_matmul.c). Rows
 * that see no key at all (causal with sq > sk) get o = 0. */
#include <math.h>

#include "kernels/cpu_common.h"
#include "kernels/cpu_matmul.h"

#define ZT_ATT_QB ZT_MM_MB

typedef struct {
    const zt_attn *a;
    float *ws;        /* [workers, QB, sk] */
    int qblocks;
} zt_att_job;

typedef struct {
    const zt_attn *a;
    int h, q0;
    float *s;         /* [QB, sk] scores, then P */
    const float *l;   /* [QB] row sums */
} zt_att_tile;

static int zt_att_visible(const zt_attn *a, int i) {
    if (!a->causal) return a->sk;
    const int64_t v = (int64_t)i + (a->sk - a->sq) + 1;
    return (int)(v < 0 ? 0 : v > a->sk ? a->sk : v);
}

static void zt_att_scores_epi(void *ctx, int m0, int mb, int n0, int nb, const float *c, int ldc) {
    const zt_att_tile *t = ctx;
    for (int i = 0; i < mb; i++) {
        float *srow = t->s + (size_t)(m0 - t->q0 + i) * t->a->sk + n0;
        for (int j = 0; j < nb; j++) srow[j] = c[(size_t)i * ldc + j] * t->a->scale;
    }
}

static void zt_att_out_epi(void *ctx, int m0, int mb, int n0, int nb, const float *c, int ldc) {
    const zt_att_tile *t = ctx;
    const zt_attn *a = t->a;
    for (int i = 0; i < mb; i++) {
        const float l = t->l[m0 + i];
        const int64_t row = (int64_t)(t->q0 + m0 + i) * a->ldo + (int64_t)t->h * a->hd + n0;
        for (int j = 0; j < nb; j++) zt_cpu_st(a->o, a->dt, row + j, l > 0.0f ? c[(size_t)i * ldc + j] / l : 0.0f);
    }
}

static void zt_att_task(void *p, int64_t task, int worker) {
    const zt_att_job *job = p;
    const zt_attn *a = job->a;
    const int h = (int)(task / job->qblocks), q0 = (int)(task % job->qblocks) * ZT_ATT_QB;
    const int mb = ZT_MIN(ZT_ATT_QB, a->sq - q0);
    const int g = h / (a->heads / a->kv_heads);
    const int kmax = zt_att_visible(a, q0 + mb - 1);
    float l[ZT_ATT_QB];
    zt_att_tile t = {.a = a, .h = h, .q0 = q0, .s = job->ws + (size_t)worker * ZT_ATT_QB * a->sk, .l = l};
    if (kmax > 0) {
        const zt_cpu_mm qk = {.a = zt_cpu_at(a->q, a->dt, (int64_t)h * a->hd), .a_dt = a->dt, .lda = a->ldq,
                              .b = zt_cpu_at(a->k, a->dt, (int64_t)g * a->hd), .b_dt = a->dt, .ldb = a->ldk, .b_nk = 1};
        zt_cpu_mm_rows(&qk, kmax, a->hd, q0, mb, zt_att_scores_epi, &t);
    }
    for (int i = 0; i < mb; i++) {
        float *srow = t.s + (size_t)i * a->sk;
        const int vis = zt_att_visible(a, q0 + i);
        float m = -INFINITY, sum = 0.0f;
        for (int j = 0; j < vis; j++) m = fmaxf(m, srow[j]);
        for (int j = 0; j < vis; j++) {
            const float pj = expf(srow[j] - m);
            sum += pj;
            srow[j] = zt_cpu_rnd(pj, a->dt);
        }
        for (int j = vis; j < kmax; j++) srow[j] = 0.0f;
        l[i] = sum;
    }
    if (kmax > 0) {
        const zt_cpu_mm pv = {.a = t.s, .a_dt = ZT_DT_F32, .lda = a->sk,
                              .b = zt_cpu_at(a->v, a->dt, (int64_t)g * a->hd), .b_dt = a->dt, .ldb = a->ldv, .b_nk = 0};
        zt_cpu_mm_rows(&pv, a->hd, kmax, 0, mb, zt_att_out_epi, &t);
    } else {
        for (int i = 0; i < mb; i++)
            for (int d = 0; d < a->hd; d++)
                zt_cpu_st(a->o, a->dt, (int64_t)(q0 + i) * a->ldo + (int64_t)h * a->hd + d, 0.0f);
    }
}

static int zt_att_threads(const zt_ops *ops, const zt_attn *a) {
    return zt_cpu_threads_for(ops, 2.0 * a->sq * a->sk * a->heads * a->hd);
}

size_t zt_cpu_attention_workspace_size(zt_ops *ops, const zt_attn *a) {
    return (size_t)zt_att_threads(ops, a) * ZT_ATT_QB * (size_t)a->sk * sizeof(float);
}

void zt_cpu_attention(zt_ops *ops, const zt_attn *a, void *workspace) {
    ZT_ASSERT(a && a->q && a->k && a->v && a->o && workspace);
    ZT_ASSERT(zt_cpu_act_dtype(a->dt) && a->sq >= 0 && a->sk >= 1 && a->hd >= 1);
    ZT_ASSERT(a->heads >= 1 && a->kv_heads >= 1 && a->heads % a->kv_heads == 0);
    ZT_ASSERT(a->ldq >= (int64_t)a->heads * a->hd && a->ldo >= (int64_t)a->heads * a->hd);
    ZT_ASSERT(a->ldk >= (int64_t)a->kv_heads * a->hd && a->ldv >= (int64_t)a->kv_heads * a->hd);
    zt_att_job job = {.a = a, .ws = workspace, .qblocks = (a->sq + ZT_ATT_QB - 1) / ZT_ATT_QB};
    zt_cpu_parallel_for(zt_att_threads(ops, a), (int64_t)a->heads * job.qblocks, zt_att_task, &job);
}
