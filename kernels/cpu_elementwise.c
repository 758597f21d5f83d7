/* kernels/cpu_elementwise.c — add, SiLU, 1+x, tanh, dtype conversion and
 * SwiGLU on the CPU (ops.h, elementwise). f32 math, one rounding to the
 * output dtype per op (SwiGLU: two, as ops.h says; f16: with the guard). Large arrays are split
 * into fixed slices over the workers; every element is independent. */
#include <math.h>

#include "kernels/cpu_common.h"

typedef enum { ZT_EW_ADD, ZT_EW_ADD_SCALED, ZT_EW_SILU, ZT_EW_ONE_PLUS, ZT_EW_TANH, ZT_EW_CONVERT } zt_ew_kind;

typedef struct {
    zt_ew_kind kind;
    size_t n;
    int64_t slices;
    const void *a, *b;
    void *y;
    zt_dtype x_dt, y_dt;
    float s; /* ZT_EW_ADD_SCALED */
} zt_ew_job;

static inline float zt_silu_f32(float x) { return x / (1.0f + expf(-x)); }

static float zt_ew_load(const void *p, zt_dtype dt, size_t i) {
    if (dt == ZT_DT_F16) return zt_f16_to_f32(((const uint16_t *)p)[i]);
    return zt_cpu_ld(p, dt, (int64_t)i);
}

static void zt_ew_task(void *p, int64_t t, int worker) {
    (void)worker;
    const zt_ew_job *j = p;
    const size_t i0 = j->n * (size_t)t / (size_t)j->slices, i1 = j->n * (size_t)(t + 1) / (size_t)j->slices;
    for (size_t i = i0; i < i1; i++) {
        const float x = zt_ew_load(j->a, j->x_dt, i);
        float v;
        switch (j->kind) {
        case ZT_EW_ADD: v = x + zt_cpu_ld(j->b, j->x_dt, (int64_t)i); break;
        case ZT_EW_ADD_SCALED: v = x + zt_cpu_rnd(zt_cpu_ld(j->b, j->x_dt, (int64_t)i) * j->s, j->x_dt); break;
        case ZT_EW_SILU: v = zt_silu_f32(x); break;
        case ZT_EW_ONE_PLUS: v = 1.0f + x; break;
        case ZT_EW_TANH: v = tanhf(x); break;
        default: v = x; break;
        }
        zt_cpu_st(j->y, j->y_dt, (int64_t)i, v);
    }
}

static void zt_ew_run(zt_ops *ops, zt_ew_job *j) {
    if (j->n == 0) return;
    const int th = zt_cpu_threads_for(ops, (double)j->n);
    j->slices = th == 1 ? 1 : (int64_t)th * 4;
    if ((size_t)j->slices > j->n) j->slices = (int64_t)j->n;
    zt_cpu_parallel_for(th, j->slices, zt_ew_task, j);
}

static void zt_ew_unary(zt_ops *ops, zt_ew_kind kind, size_t n, const void *x, void *y, zt_dtype dt) {
    ZT_ASSERT(zt_cpu_act_dtype(dt) && (n == 0 || (x && y)));
    zt_ew_job j = {.kind = kind, .n = n, .a = x, .y = y, .x_dt = dt, .y_dt = dt};
    zt_ew_run(ops, &j);
}

void zt_cpu_add(zt_ops *ops, size_t n, const void *a, const void *b, void *y, zt_dtype dt) {
    ZT_ASSERT(zt_cpu_act_dtype(dt) && (n == 0 || (a && b && y)));
    zt_ew_job j = {.kind = ZT_EW_ADD, .n = n, .a = a, .b = b, .y = y, .x_dt = dt, .y_dt = dt};
    zt_ew_run(ops, &j);
}

void zt_cpu_add_scaled(zt_ops *ops, size_t n, const void *a, const void *b, float s, void *y, zt_dtype dt) {
    ZT_ASSERT(zt_cpu_act_dtype(dt) && (n == 0 || (a && b && y)));
    zt_ew_job j = {.kind = ZT_EW_ADD_SCALED, .n = n, .a = a, .b = b, .y = y, .x_dt = dt, .y_dt = dt, .s = s};
    zt_ew_run(ops, &j);
}

void zt_cpu_silu(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt) { zt_ew_unary(ops, ZT_EW_SILU, n, x, y, dt); }

void zt_cpu_one_plus(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt) {
    zt_ew_unary(ops, ZT_EW_ONE_PLUS, n, x, y, dt);
}

void zt_cpu_tanh(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt) { zt_ew_unary(ops, ZT_EW_TANH, n, x, y, dt); }

void zt_cpu_convert(zt_ops *ops, size_t n, const void *x, zt_dtype x_dt, void *y, zt_dtype y_dt) {
    ZT_ASSERT((zt_cpu_act_dtype(x_dt) || x_dt == ZT_DT_F16) && zt_cpu_act_dtype(y_dt) && (n == 0 || (x && y)));
    if (x_dt == y_dt) { /* a copy, bit for bit (NaN payloads included) */
        memmove(y, x, n * zt_dtype_size(y_dt));
        return;
    }
    zt_ew_job j = {.kind = ZT_EW_CONVERT, .n = n, .a = x, .y = y, .x_dt = x_dt, .y_dt = y_dt};
    zt_ew_run(ops, &j);
}

typedef struct {
    int ff;
    const void *in;
    int64_t ld_in;
    void *out;
    int64_t ld_out;
    zt_dtype dt;
    int guard;  /* f16: the SiLU-gate guard (scaled by 1/ZT_F16_SWIGLU_SCALE, NaN -> 0, ±Inf -> ±65504) */
} zt_swiglu_job;

static void zt_swiglu_task(void *p, int64_t r, int worker) {
    (void)worker;
    const zt_swiglu_job *j = p;
    const int64_t in = r * j->ld_in, out = r * j->ld_out;
    for (int c = 0; c < j->ff; c++) {
        const float gate = zt_cpu_ld(j->in, j->dt, in + c), up = zt_cpu_ld(j->in, j->dt, in + j->ff + c);
        const float v = zt_cpu_rnd(zt_silu_f32(gate), j->dt) * up;
        if (j->guard) ((uint16_t *)j->out)[out + c] = zt_f32_to_f16_sat(v * (1.0f / ZT_F16_SWIGLU_SCALE));
        else zt_cpu_st(j->out, j->dt, out + c, v);
    }
}

void zt_cpu_swiglu(zt_ops *ops, int rows, int ff, const void *in, int64_t ld_in, void *out, int64_t ld_out,
                   zt_dtype dt) {
    ZT_ASSERT(zt_cpu_act_dtype(dt) && rows >= 0 && ff >= 0 && ld_in >= 2 * (int64_t)ff && ld_out >= ff);
    ZT_ASSERT(rows == 0 || (in && out));
    zt_swiglu_job j = {.ff = ff, .in = in, .ld_in = ld_in, .out = out, .ld_out = ld_out, .dt = dt,
                       .guard = dt == ZT_DT_F16 && zt_ops_f16_guard(ops)};
    zt_cpu_parallel_for(zt_cpu_threads_for(ops, (double)rows * ff), rows, zt_swiglu_task, &j);
}
