/* tests/test_ops_cpu.h — helpers shared by the CPU-op tests
 * (tests/test_ops_cpu*.c): random tensors, output poisoning, an independent
 * bf16 rounding for the double-precision references, and the comparisons.
 *
 * How outputs are judged
 *   f32 outputs: relative L2 error against the double reference <= 1e-5.
 *   bf16 outputs: the reference is computed in double with the op's rounding
 *   points (each rounding: double -> nearest bf16, ties to even). The op
 *   computes in f32 and rounds f32 -> bf16; the two agree except where an
 *   f32 intermediate lies within an f32 ulp or so of a bf16 rounding tie
 *   (a ~1e-4 chance per rounding), and there they differ by one bf16 ulp of
 *   that intermediate. So: every element must be within `ulps` bf16 ulps of
 *   the reference (+ abs_tol for results that cancel to ~0, where an operand
 *   ulp is many result ulps), and at most 1% of the elements may differ from
 *   the correctly rounded reference at all. A wrong rounding mode (e.g.
 *   truncation) moves ~half of the elements and fails the second rule. */
#ifndef ZT_TEST_OPS_CPU_H
#define ZT_TEST_OPS_CPU_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "tests/zt_test.h"

/* Nearest bf16 to a double (ties to even), written independently of
 * common/zt_dtype.h: scale so the 8 significant bits are the integer part
 * (spacing 2^-133 below the normal range, overflow to infinity). */
static inline double ref_bf16(double v) {
    if (v == 0.0 || !isfinite(v)) return v;
    int e;
    frexp(v, &e);                                  /* |v| in [2^(e-1), 2^e) */
    const double q = ldexp(1.0, e - 8 < -133 ? -133 : e - 8); /* bf16 ulp at v */
    const double r = nearbyint(v / q) * q;
    return fabs(r) >= ldexp(1.0, 128) ? copysign(INFINITY, v) : r;
}

/* Round to the activation dtype: bf16 or f32. */
static inline double ref_round(double v, zt_dtype dt) { return dt == ZT_DT_BF16 ? ref_bf16(v) : (double)(float)v; }

/* bf16 ulp at |v| (v != 0). */
static inline double ref_bf16_ulp(double v) {
    int e;
    frexp(v == 0.0 ? 1e-30 : v, &e);
    return ldexp(1.0, e - 8);
}

/* A host tensor of n elements of dtype dt (f32 or bf16) with its exact
 * values as doubles (the bf16-rounded values when dt is bf16). */
typedef struct {
    size_t n;
    zt_dtype dt;
    void *p;
    double *v;
} tt_tensor;

static inline void tt_alloc(tt_tensor *t, size_t n, zt_dtype dt) {
    t->n = n;
    t->dt = dt;
    t->p = malloc(n * zt_dtype_size(dt) + 1);
    t->v = malloc(n * sizeof(double) + 1);
    if (!t->p || !t->v) { fprintf(stderr, "out of memory\n"); exit(1); }
}

static inline void tt_set(tt_tensor *t, size_t i, double v) {
    if (t->dt == ZT_DT_BF16) {
        const double r = ref_bf16(v);
        ((uint16_t *)t->p)[i] = zt_f32_to_bf16((float)r);
        t->v[i] = r;
    } else {
        ((float *)t->p)[i] = (float)v;
        t->v[i] = (float)v;
    }
}

/* Normal(0, sigma) + mean values, never exactly 0. */
static inline void tt_random(tt_tensor *t, size_t n, zt_dtype dt, zt_rng *r, double mean, double sigma) {
    tt_alloc(t, n, dt);
    for (size_t i = 0; i < n; i++) {
        double v = mean + sigma * zt_rng_normal(r);
        if (v == 0.0) v = sigma * 1e-3;
        tt_set(t, i, v);
    }
}

static inline void tt_free(tt_tensor *t) {
    free(t->p);
    free(t->v);
    t->p = NULL;
    t->v = NULL;
}

/* Read back element i of a tensor buffer (the op's output) as double. */
static inline double tt_get(const void *p, zt_dtype dt, size_t i) {
    return dt == ZT_DT_BF16 ? (double)zt_bf16_to_f32(((const uint16_t *)p)[i]) : (double)((const float *)p)[i];
}

/* Fill with the all-ones byte pattern (NaN for f32 and bf16). */
static inline void tt_poison(void *p, size_t bytes) { memset(p, 0xFF, bytes); }

/* 1 if all bytes in [p, p+bytes) are still 0xFF. */
static inline int tt_untouched(const void *p, size_t bytes) {
    const uint8_t *b = p;
    for (size_t i = 0; i < bytes; i++)
        if (b[i] != 0xFF) return 0;
    return 1;
}

/* Columns [cols, ld) of `rows` rows (elements of es bytes) still poisoned. */
static inline int tt_gaps_untouched(const void *p, size_t rows, size_t cols, size_t ld, size_t es) {
    for (size_t r = 0; r < rows; r++)
        if (!tt_untouched((const char *)p + (r * ld + cols) * es, (ld - cols) * es)) return 0;
    return 1;
}

/* Compare an op output (dtype dt; element (r, c) at r*ld + c) with the double
 * reference ref[r*cols + c], by the rules in the header comment. f32: rel L2
 * <= 1e-5 (ulps, abs_tol unused). Returns 1 when it passes. */
static inline int tt_compare(const char *what, const void *got, zt_dtype dt, size_t rows, size_t cols, size_t ld,
                             const double *ref, double ulps, double abs_tol) {
    size_t n = rows * cols, off = 0, bad = 0, worst_i = 0, nan = 0;
    double num = 0, den = 0, worst = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            const size_t i = r * cols + c;
            const double g = tt_get(got, dt, r * ld + c), e = ref[i];
            if (isnan(g) && !isnan(e)) { nan++; continue; }
            num += (g - e) * (g - e);
            den += e * e;
            if (dt == ZT_DT_BF16) {
                if (g != ref_bf16(e)) off++;
                const double err = fabs(g - e), lim = ulps * ref_bf16_ulp(e) + abs_tol;
                if (err > lim) bad++;
                if (err / lim > worst) { worst = err / lim; worst_i = i; }
            }
        }
    const double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    int ok;
    if (dt == ZT_DT_BF16) {
        ok = nan == 0 && bad == 0 && off <= n / 100;
        if (!ok || getenv("ZT_TEST_VERBOSE"))
            fprintf(stderr, "%s %s: n %zu, nan %zu, beyond tol %zu (worst %.3g x tol at %zu: got %.9g ref %.9g), "
                    "not correctly rounded %zu, rel L2 %.3g\n", ok ? "info" : "FAIL", what, n, nan, bad, worst,
                    worst_i, tt_get(got, dt, (worst_i / cols) * ld + worst_i % cols), ref[worst_i], off, rel);
    } else {
        ok = nan == 0 && rel <= 1e-5;
        if (!ok || getenv("ZT_TEST_VERBOSE"))
            fprintf(stderr, "%s %s: n %zu, nan %zu, rel L2 %.3g\n", ok ? "info" : "FAIL", what, n, nan, rel);
    }
    return ok;
}

#define TT_COMPARE(what, got, dt, rows, cols, ld, ref, ulps, abs_tol)                     \
    ZT_CHECK(tt_compare(what, got, dt, rows, cols, ld, ref, ulps, abs_tol), "%s", what)

static inline const char *tt_dt(zt_dtype dt) { return zt_dtype_name(dt); }

#endif
