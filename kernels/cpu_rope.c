/* kernels/cpu_rope.c — rotary embeddings, in place, on the CPU (ops.h).
 * Interleaved pairs (Z-Image): f32 rotation, one rounding. Rotate-half
 * (Qwen3): the reference's three roundings per output (products, then the
 * sum), all identities on the f32 path. */
#include "kernels/cpu_common.h"

typedef struct {
    int heads, hd;
    void *x;
    int64_t ldx;
    const void *cs;
    zt_dtype dt;
    int half; /* 1: rotate-half, 0: interleaved pairs */
} zt_rope_job;

static void zt_rope_task(void *p, int64_t r, int worker) {
    (void)worker;
    const zt_rope_job *j = p;
    const int np = j->hd / 2;
    const zt_dtype dt = j->dt;
    for (int h = 0; h < j->heads; h++) {
        const int64_t base = r * j->ldx + (int64_t)h * j->hd;
        for (int m = 0; m < np; m++) {
            if (!j->half) {
                const float *cs = (const float *)j->cs + (r * np + m) * 2;
                const float a = zt_cpu_ld(j->x, dt, base + 2 * m), b = zt_cpu_ld(j->x, dt, base + 2 * m + 1);
                zt_cpu_st(j->x, dt, base + 2 * m, a * cs[0] - b * cs[1]);
                zt_cpu_st(j->x, dt, base + 2 * m + 1, a * cs[1] + b * cs[0]);
            } else {
                const float c = zt_cpu_ld(j->cs, dt, (r * np + m) * 2), s = zt_cpu_ld(j->cs, dt, (r * np + m) * 2 + 1);
                const float lo = zt_cpu_ld(j->x, dt, base + m), hi = zt_cpu_ld(j->x, dt, base + m + np);
                zt_cpu_st(j->x, dt, base + m, zt_cpu_rnd(lo * c, dt) - zt_cpu_rnd(hi * s, dt));
                zt_cpu_st(j->x, dt, base + m + np, zt_cpu_rnd(hi * c, dt) + zt_cpu_rnd(lo * s, dt));
            }
        }
    }
}

static void zt_rope_run(zt_ops *ops, zt_rope_job *j, int rows) {
    ZT_ASSERT(zt_cpu_act_dtype(j->dt) && rows >= 0 && j->heads >= 1 && j->hd >= 2 && j->hd % 2 == 0);
    ZT_ASSERT(j->ldx >= (int64_t)j->heads * j->hd && (rows == 0 || (j->x && j->cs)));
    zt_cpu_parallel_for(zt_cpu_threads_for(ops, 2.0 * rows * j->heads * j->hd), rows, zt_rope_task, j);
}

void zt_cpu_rope_pairs(zt_ops *ops, int rows, int heads, int hd, void *x, int64_t ldx, const float *cs, zt_dtype dt) {
    zt_rope_job j = {.heads = heads, .hd = hd, .x = x, .ldx = ldx, .cs = cs, .dt = dt, .half = 0};
    zt_rope_run(ops, &j, rows);
}

void zt_cpu_rope_half(zt_ops *ops, int rows, int heads, int hd, void *x, int64_t ldx, const void *cs, zt_dtype dt) {
    zt_rope_job j = {.heads = heads, .hd = hd, .x = x, .ldx = ldx, .cs = cs, .dt = dt, .half = 1};
    zt_rope_run(ops, &j, rows);
}
