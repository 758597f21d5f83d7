/* kernels/cpu_norm.c — RMSNorm, LayerNorm, the sandwich-norm residual and
 * GroupNorm on the CPU (ops.h, normalisation).
 *
 * Statistics are accumulated in double and rounded once to f32 (the most
 * accurate f32 value of "mean_f32"; the reference's f32 reduction order is
 * not reproducible anyway); everything after the statistics is f32 math with
 * the round_bf16 points of ops.h. The precision path is the output's:
 * y_dt == bf16 takes every round_bf16, y_dt == f32 none. */
#include <math.h>

#include "kernels/cpu_common.h"

/* One row of a zt_norm through the whole chain up to (excluding) the store:
 * out[h*dim + j] = normalised, weighted, scaled value (f32, already rounded
 * at the intermediate points of the path `pd`). layer: LayerNorm. */
static void zt_norm_row(const zt_norm *n, int64_t r, int layer, zt_dtype pd, float *out) {
    for (int h = 0; h < n->heads; h++) {
        const int64_t base = r * n->ldx + (int64_t)h * n->dim;
        double s = 0.0;
        float mean = 0.0f, rstd;
        if (layer) {
            for (int j = 0; j < n->dim; j++) s += zt_cpu_ld(n->x, n->x_dt, base + j);
            const double md = s / n->dim;
            double v = 0.0;
            for (int j = 0; j < n->dim; j++) {
                const double d = zt_cpu_ld(n->x, n->x_dt, base + j) - md;
                v += d * d;
            }
            mean = (float)md;
            rstd = 1.0f / sqrtf((float)(v / n->dim) + n->eps);
        } else {
            for (int j = 0; j < n->dim; j++) {
                const double xv = zt_cpu_ld(n->x, n->x_dt, base + j);
                s += xv * xv;
            }
            rstd = 1.0f / sqrtf((float)(s / n->dim) + n->eps);
        }
        float *o = out + (size_t)h * n->dim;
        for (int j = 0; j < n->dim; j++) {
            float xv = zt_cpu_ld(n->x, n->x_dt, base + j);
            float v = zt_cpu_rnd(layer ? (xv - mean) * rstd : xv * rstd, pd);
            if (n->weight) v = zt_cpu_rnd(v * zt_bf16_to_f32(n->weight[j]), pd);
            if (n->scale) v = zt_cpu_rnd(v * zt_cpu_ld(n->scale, n->y_dt, (int64_t)h * n->dim + j), pd);
            o[j] = v;
        }
    }
}

typedef struct {
    const zt_norm *n;
    int layer;
    const void *gate;  /* gate_add only */
    void *resid;
    int64_t ld_resid;
} zt_norm_job;

/* Row buffer on the stack: widest row is 30 heads x 128 or 3840. */
#define ZT_NORM_MAX_ROW 16384

static void zt_norm_task(void *p, int64_t r, int worker) {
    (void)worker;
    const zt_norm_job *job = p;
    const zt_norm *n = job->n;
    const int width = n->heads * n->dim;
    float row[ZT_NORM_MAX_ROW];
    zt_norm_row(n, r, job->layer, n->y_dt, row);
    if (!job->resid) {
        for (int j = 0; j < width; j++) zt_cpu_st(n->y, n->y_dt, r * n->ldy + j, row[j]);
        return;
    }
    for (int j = 0; j < width; j++) {
        float t = row[j];
        if (job->gate) t = zt_cpu_rnd(zt_cpu_ld(job->gate, n->y_dt, j) * t, n->y_dt);
        const int64_t i = r * job->ld_resid + j;
        zt_cpu_st(job->resid, n->y_dt, i, zt_cpu_ld(job->resid, n->y_dt, i) + t);
    }
}

static void zt_norm_check(const zt_norm *n) {
    ZT_ASSERT(n && n->x && n->rows >= 0 && n->heads >= 1 && n->dim >= 1);
    ZT_ASSERT((int64_t)n->heads * n->dim <= ZT_NORM_MAX_ROW);
    ZT_ASSERT(zt_cpu_act_dtype(n->x_dt) && zt_cpu_act_dtype(n->y_dt));
    ZT_ASSERT(n->ldx >= (int64_t)n->heads * n->dim);
}

static void zt_norm_run(zt_ops *ops, zt_norm_job *job) {
    const zt_norm *n = job->n;
    const double work = 4.0 * n->rows * n->heads * n->dim;
    zt_cpu_parallel_for(zt_cpu_threads_for(ops, work), n->rows, zt_norm_task, job);
}

void zt_cpu_rmsnorm(zt_ops *ops, const zt_norm *n) {
    zt_norm_check(n);
    ZT_ASSERT(n->y && n->ldy >= (int64_t)n->heads * n->dim);
    zt_norm_job job = {.n = n, .layer = 0};
    zt_norm_run(ops, &job);
}

void zt_cpu_layernorm(zt_ops *ops, const zt_norm *n) {
    zt_norm_check(n);
    ZT_ASSERT(n->y && n->ldy >= (int64_t)n->heads * n->dim && !n->weight);
    zt_norm_job job = {.n = n, .layer = 1};
    zt_norm_run(ops, &job);
}

void zt_cpu_rmsnorm_gate_add(zt_ops *ops, const zt_norm *n, const void *gate, void *resid, int64_t ld_resid) {
    zt_norm_check(n);
    ZT_ASSERT(resid && ld_resid >= (int64_t)n->heads * n->dim);
    zt_norm_job job = {.n = n, .layer = 0, .gate = gate, .resid = resid, .ld_resid = ld_resid};
    zt_norm_run(ops, &job);
}

/* ---- GroupNorm --------------------------------------------------------------
 * Three passes over x: per-channel sums, per-channel sums of squared
 * deviations from the group mean, then the normalisation. The pixel range
 * is split in ZT_GN_CHUNKS fixed slices whose partial sums land in their own
 * slot of the workspace and are combined in slot order, so the statistics
 * (hence the output) depend neither on the thread count nor on which thread
 * ran which slice. */
#define ZT_GN_CHUNKS 16

typedef struct {
    const zt_groupnorm *g;
    int chunks;
    double *part;  /* [chunks, c] partial sums */
    float *mean;   /* [groups] */
    float *rstd;   /* [groups] */
    int pass;
} zt_gn_job;

static void zt_gn_task(void *p, int64_t t, int worker) {
    (void)worker;
    const zt_gn_job *job = p;
    const zt_groupnorm *g = job->g;
    const int c = g->c, cg = g->c / g->groups;
    const int64_t p0 = (int64_t)g->hw * t / job->chunks, p1 = (int64_t)g->hw * (t + 1) / job->chunks;
    if (job->pass < 2) {
        double *acc = job->part + (size_t)t * c;
        for (int ch = 0; ch < c; ch++) acc[ch] = 0.0;
        for (int64_t px = p0; px < p1; px++)
            for (int ch = 0; ch < c; ch++) {
                double v = zt_cpu_ld(g->x, g->dt, px * c + ch);
                if (job->pass == 1) {
                    v -= job->mean[ch / cg];
                    v *= v;
                }
                acc[ch] += v;
            }
        return;
    }
    for (int64_t px = p0; px < p1; px++)
        for (int ch = 0; ch < c; ch++) {
            const int grp = ch / cg;
            const float xv = zt_cpu_ld(g->x, g->dt, px * c + ch);
            float v = (xv - job->mean[grp]) * job->rstd[grp];
            v = v * zt_cpu_ld(g->gamma, g->gb_dt, ch) + zt_cpu_ld(g->beta, g->gb_dt, ch);
            if (g->silu) v = v / (1.0f + expf(-v));
            zt_cpu_st(g->y, g->dt, px * c + ch, v);
        }
}

size_t zt_cpu_groupnorm_workspace_size(zt_ops *ops, const zt_groupnorm *g) {
    (void)ops;
    return (size_t)ZT_GN_CHUNKS * g->c * sizeof(double) + 2 * (size_t)g->groups * sizeof(float);
}

void zt_cpu_groupnorm(zt_ops *ops, const zt_groupnorm *g, void *workspace) {
    ZT_ASSERT(g && g->x && g->y && g->gamma && g->beta && workspace);
    ZT_ASSERT(g->hw >= 1 && g->groups >= 1 && g->c % g->groups == 0);
    ZT_ASSERT(zt_cpu_act_dtype(g->dt) && zt_cpu_act_dtype(g->gb_dt));
    zt_gn_job job = {.g = g, .chunks = (int)ZT_MIN(ZT_GN_CHUNKS, g->hw), .part = workspace};
    const int threads = zt_cpu_threads_for(ops, 3.0 * g->hw * g->c);
    job.mean = (float *)(job.part + (size_t)job.chunks * g->c);
    job.rstd = job.mean + g->groups;
    const int cg = g->c / g->groups;
    const double cnt = (double)cg * g->hw;
    for (job.pass = 0; job.pass < 3; job.pass++) {
        zt_cpu_parallel_for(threads, job.chunks, zt_gn_task, &job);
        if (job.pass == 2) break;
        for (int grp = 0; grp < g->groups; grp++) {
            double s = 0.0;
            for (int t = 0; t < job.chunks; t++)
                for (int ch = grp * cg; ch < (grp + 1) * cg; ch++) s += job.part[(size_t)t * g->c + ch];
            if (job.pass == 0) job.mean[grp] = (float)(s / cnt);
            else job.rstd[grp] = 1.0f / sqrtf((float)(s / cnt) + g->eps);
        }
    }
}
