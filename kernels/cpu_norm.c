/* kernels/cpu_norm.c — RMSNorm, LayerNorm, the sandwich-norm residual and
 * GroupNorm on the CPU (ops.h, normalisation).
 *
 * Statistics are accumulated in double and rounded once to f32 (the most
 * accurate f32 value of "mean_f32"; the reference's f32 reduction order is
 * not reproducible anyway); everything after the statistics is f32 math with
 * the round_bf16 points of ops.h. The precision path is the output's:
 * y_dt == bf16 (f16) takes every round_bf16 (rounding to f16), y_dt == f32
 * none. */
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
            if (n->weight) v = zt_cpu_rnd(v * (n->w_f16 ? zt_f16_to_f32(n->weight[j]) : zt_bf16_to_f32(n->weight[j])), pd);
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
    const zt_dtype rd = n->resid_f32 ? ZT_DT_F32 : n->y_dt;
    for (int j = 0; j < width; j++) {
        float t = row[j];
        if (job->gate) t = zt_cpu_rnd(zt_cpu_ld(job->gate, n->y_dt, j) * t, n->y_dt);
        const int64_t i = r * job->ld_resid + j;
        zt_cpu_st(job->resid, rd, i, zt_cpu_ld(job->resid, rd, i) + t);
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
 * In pieces (ops.h): per image row, for each group, the sums of x - k and
 * (x - k)² in double, k the row's first value of the group (a shift that
 * keeps the one-pass variance exact when |mean| >> std); the finalize pass
 * combines the rows in row order; the apply pass normalises. Every piece
 * depends only on its own rows, so neither the thread count nor the banding
 * changes a bit of the output.
 * stats: float ms[groups][2] (mean, rstd), then double part[rows][groups][3]
 * (sum, sum of squares, shift). */
static int64_t zt_gn_row_px(const zt_groupnorm *g) {
    return g->w > 0 ? g->w : (g->hw < 1024 ? g->hw : 1024);
}
static int64_t zt_gn_rows(const zt_groupnorm *g) {
    const int64_t rw = zt_gn_row_px(g);
    return (g->hw + rw - 1) / rw;
}

static void zt_gn_check(const zt_groupnorm *g, int need_x) {
    ZT_ASSERT(g && (g->x || !need_x) && g->hw >= 1 && g->groups >= 1 && g->c % g->groups == 0 && g->w >= 0);
    ZT_ASSERT(zt_cpu_act_dtype(g->dt));
}

size_t zt_cpu_groupnorm_stats_size(zt_ops *ops, const zt_groupnorm *g) {
    (void)ops;
    return (size_t)g->groups * 2 * sizeof(float) + (size_t)zt_gn_rows(g) * g->groups * 3 * sizeof(double);
}

typedef struct {
    const zt_groupnorm *g;
    int64_t row0;
    double *part;
    const float *ms;
} zt_gn_job;

static void zt_gn_partial_task(void *p, int64_t r, int worker) {
    (void)worker;
    const zt_gn_job *job = p;
    const zt_groupnorm *g = job->g;
    const int c = g->c, cg = g->c / g->groups;
    const int64_t rw = zt_gn_row_px(g), p0 = r * rw, p1 = ZT_MIN(g->hw, p0 + rw);
    for (int grp = 0; grp < g->groups; grp++) {
        const double k = zt_cpu_ld(g->x, g->dt, p0 * c + (int64_t)grp * cg);
        double s1 = 0.0, s2 = 0.0;
        for (int64_t px = p0; px < p1; px++)
            for (int ch = grp * cg; ch < (grp + 1) * cg; ch++) {
                const double d = zt_cpu_ld(g->x, g->dt, px * c + ch) - k;
                s1 += d;
                s2 += d * d;
            }
        double *o = job->part + ((job->row0 + r) * g->groups + grp) * 3;
        o[0] = s1;
        o[1] = s2;
        o[2] = k;
    }
}

void zt_cpu_groupnorm_partial(zt_ops *ops, const zt_groupnorm *g, int row0, void *stats) {
    zt_gn_check(g, 1);
    ZT_ASSERT(stats && row0 >= 0 && (g->w == 0 || g->hw % g->w == 0));
    zt_gn_job job = {.g = g, .row0 = row0, .part = (double *)((float *)stats + 2 * g->groups)};
    zt_cpu_parallel_for(zt_cpu_threads_for(ops, 2.0 * g->hw * g->c), zt_gn_rows(g), zt_gn_partial_task, &job);
}

void zt_cpu_groupnorm_finalize(zt_ops *ops, const zt_groupnorm *g, void *stats) {
    (void)ops;
    zt_gn_check(g, 0);
    float *ms = stats;
    const double *part = (const double *)(ms + 2 * g->groups);
    const int64_t rows = zt_gn_rows(g), rw = zt_gn_row_px(g), cg = g->c / g->groups;
    const double n = (double)g->hw * cg;
    for (int grp = 0; grp < g->groups; grp++) {
        double sum = 0.0;
        for (int64_t r = 0; r < rows; r++) {
            const double *o = part + (r * g->groups + grp) * 3;
            const double nr = (double)(ZT_MIN(g->hw, (r + 1) * rw) - r * rw) * cg;
            sum += o[0] + nr * o[2];
        }
        const double mean = sum / n;
        double m2 = 0.0;
        for (int64_t r = 0; r < rows; r++) {
            const double *o = part + (r * g->groups + grp) * 3;
            const double nr = (double)(ZT_MIN(g->hw, (r + 1) * rw) - r * rw) * cg;
            const double dk = o[2] - mean;
            m2 += o[1] + 2.0 * dk * o[0] + nr * dk * dk;
        }
        double var = m2 / n;
        if (var < 0) var = 0;
        ms[2 * grp] = (float)mean;
        ms[2 * grp + 1] = 1.0f / sqrtf((float)var + g->eps);
    }
}

#define ZT_GN_APPLY_CHUNK 256 /* pixels per task */

static void zt_gn_apply_task(void *p, int64_t t, int worker) {
    (void)worker;
    const zt_gn_job *job = p;
    const zt_groupnorm *g = job->g;
    const int c = g->c, cg = g->c / g->groups;
    const int64_t p0 = t * ZT_GN_APPLY_CHUNK, p1 = ZT_MIN(g->hw, p0 + ZT_GN_APPLY_CHUNK);
    for (int64_t px = p0; px < p1; px++)
        for (int ch = 0; ch < c; ch++) {
            const int grp = ch / cg;
            const float xv = zt_cpu_ld(g->x, g->dt, px * c + ch);
            float v = (xv - job->ms[2 * grp]) * job->ms[2 * grp + 1];
            v = v * zt_cpu_ld(g->gamma, g->gb_dt, ch) + zt_cpu_ld(g->beta, g->gb_dt, ch);
            if (g->silu) v = v / (1.0f + expf(-v));
            zt_cpu_st(g->y, g->dt, px * c + ch, v);
        }
}

void zt_cpu_groupnorm_apply(zt_ops *ops, const zt_groupnorm *g, const void *stats) {
    zt_gn_check(g, 1);
    ZT_ASSERT(g->y && g->gamma && g->beta && stats && zt_cpu_act_dtype(g->gb_dt));
    zt_gn_job job = {.g = g, .ms = stats};
    zt_cpu_parallel_for(zt_cpu_threads_for(ops, 3.0 * g->hw * g->c), (g->hw + ZT_GN_APPLY_CHUNK - 1) / ZT_GN_APPLY_CHUNK,
                        zt_gn_apply_task, &job);
}
