/* tests/test_ops_cuda.c — every CUDA op against the CPU reference backend
 * (ggml test-backend-ops style): fresh random inputs per case, the same op
 * through zt_ops with ZT_BACKEND_CPU and ZT_BACKEND_CUDA, relative L2 error
 * ||cuda - cpu|| / ||cpu|| <= 1e-2 on bf16 paths and 1e-5 on f32 paths, and
 * a bound on every element (one wrong element or tile moves the L2 of a
 * large tensor by nothing):
 *   bf16 paths: |cuda - cpu| <= U ulps of bf16 at max(|cpu|, F * rms(cpu)),
 *     U from the op's bf16 rounding points (kernels/ops.h; both backends
 *     round at the same points, so only summation order and libm-level
 *     differences move an intermediate across a rounding boundary, at most
 *     about two ulps per rounding point), F the cancellation floor: a sum
 *     whose terms cancel keeps the absolute error of its terms (k_bounds);
 *   f16 paths (the fp16 path): the same U ulps, of f16 (10-bit mantissa;
 *     subnormals below 2^-14 have the fixed ulp 2^-24), at max(|cpu|, F * rms);
 *   f32 paths: |cuda - cpu| <= 1e-4 * max(|cpu|, rms(cpu)).
 * The bound's own test (check_selftest) runs first, without a GPU: a planted
 * wrong element and a planted wrong 16x16 tile in a CPU GEMM result pass
 * the relative L2 and must fail the element bound.
 * Outputs are poisoned with 0xFF bytes (NaN for f32/bf16) on both sides
 * first: an element the CUDA op failed to write stays NaN and fails the
 * case; an element outside the output view (strided rows) must stay
 * poisoned. Shapes include odd sizes, non-multiples of the tile sizes,
 * misaligned and strided views so that both the vector and the scalar paths
 * of each kernel run. Skips (exit 77) without a CUDA device.
 *
 * Prints one line per case (op, shape, dtypes, error) and a summary table
 * per op at the end. ZT_TEST_NO_FORK=1 skips the abort check that needs
 * fork() (compute-sanitizer runs); ZT_TEST_OPS=a,b runs only the ops whose
 * name contains one of the comma-separated words (e.g. a racecheck run).
 * The row norms run once per launch variant (kernels/cuda_norm.h). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/cuda_norm.h"
#include "kernels/ops.h"
#include "tests/zt_test.h"

/* internal (kernels/cuda_conv.cu): conv2d with a chosen implicit-GEMM tile variant */
void zt_cuda_conv2d_variant(zt_ops *ops, const zt_conv2d *c, void *workspace, int variant);

static zt_ops *g_cpu, *g_gpu;
static zt_rng g_rng = {0x9e3779b97f4a7c15ull};

/* ---- per-op summary -------------------------------------------------------- */
typedef struct {
    char op[24];
    int cases, failed;
    double worst_bf16, worst_f32;
    double worst_ulps, worst_f32_elem; /* per-element: bf16 ulps, f32 fraction of the bound */
} op_stat;
static op_stat g_stats[64];
static int g_nstats;

static void record(const char *op, int f32_path, double err, int ok, double elem) {
    op_stat *s = NULL;
    for (int i = 0; i < g_nstats; i++)
        if (!strcmp(g_stats[i].op, op)) s = &g_stats[i];
    if (!s) {
        s = &g_stats[g_nstats++];
        memset(s, 0, sizeof *s);
        snprintf(s->op, sizeof s->op, "%s", op);
        s->worst_bf16 = s->worst_f32 = -1;
    }
    s->cases++;
    if (!ok) s->failed++;
    double *w = f32_path ? &s->worst_f32 : &s->worst_bf16;
    if (isnan(err) || err > *w) *w = err;
    double *we = f32_path ? &s->worst_f32_elem : &s->worst_ulps;
    if (elem > *we) *we = elem;
}

static int want(const char *op) {
    const char *f = getenv("ZT_TEST_OPS");
    if (!f || !*f) return 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", f);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (strstr(op, t)) return 1;
    return 0;
}

/* ---- host element access --------------------------------------------------- */
static float h_get(const void *p, zt_dtype dt, size_t i) {
    switch (dt) {
    case ZT_DT_F32: return ((const float *)p)[i];
    case ZT_DT_BF16: return zt_bf16_to_f32(((const uint16_t *)p)[i]);
    case ZT_DT_F16: return zt_f16_to_f32(((const uint16_t *)p)[i]);
    case ZT_DT_U8: return ((const uint8_t *)p)[i];
    default: abort();
    }
}

/* f32 -> f16 bits, round to nearest even (the normal range, zero, and Inf /
 * NaN for the guard's cases; below the normal range: zero, above: Inf; the
 * test draws its random values well inside the normal range). */
static uint16_t h_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t s = (u >> 16) & 0x8000u;
    if (((u >> 23) & 0xff) == 0xff) return (uint16_t)(s | ((u & 0x7fffffu) ? 0x7e00u : 0x7c00u));
    int e = (int)((u >> 23) & 0xff) - 127 + 15;
    uint32_t m = u & 0x7fffffu;
    if (e <= 0) return (uint16_t)s;
    if (e >= 31) return (uint16_t)(s | 0x7c00u);
    uint32_t r = ((uint32_t)e << 10) | (m >> 13);
    uint32_t rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++; /* may carry into Inf: right */
    return (uint16_t)(s | r);
}

static void h_set(void *p, zt_dtype dt, size_t i, float v) {
    switch (dt) {
    case ZT_DT_F32: ((float *)p)[i] = v; break;
    case ZT_DT_BF16: ((uint16_t *)p)[i] = zt_f32_to_bf16(v); break;
    case ZT_DT_F16: ((uint16_t *)p)[i] = h_f32_to_f16(v); break;
    default: abort();
    }
}

/* ---- a tensor that lives on both backends ---------------------------------- */
typedef struct {
    zt_dtype dt;
    size_t n;   /* elements */
    void *h;    /* CPU backend copy */
    void *d;    /* CUDA copy */
} tbuf;

static tbuf tb_new(size_t n, zt_dtype dt) {
    tbuf t = {dt, n, NULL, NULL};
    size_t bytes = (n ? n : 1) * zt_dtype_size(dt);
    t.h = zt_mem_alloc(g_cpu, bytes);
    t.d = zt_mem_alloc(g_gpu, bytes);
    if (!t.h || !t.d) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return t;
}
static void tb_free(tbuf *t) {
    zt_mem_free(g_cpu, t->h);
    zt_mem_free(g_gpu, t->d);
    t->h = t->d = NULL;
}
static size_t tb_bytes(const tbuf *t) { return t->n * zt_dtype_size(t->dt); }
/* Both copies = the host values. */
static void tb_sync(tbuf *t) { zt_mem_upload(g_gpu, t->d, t->h, tb_bytes(t)); }
/* Fresh N(offset, scale^2) values (rounded to dt) on both sides. */
static void tb_rand(tbuf *t, double scale, double offset) {
    for (size_t i = 0; i < t->n; i++) h_set(t->h, t->dt, i, (float)(offset + scale * zt_rng_normal(&g_rng)));
    tb_sync(t);
}
static void tb_poison(tbuf *t, uint8_t v) {
    memset(t->h, v, tb_bytes(t));
    zt_mem_fill_u8(g_gpu, t->d, v, tb_bytes(t));
}
/* Element pointer views (offset in elements) for both sides. */
static void *tb_h(const tbuf *t, size_t off) { return (char *)t->h + off * zt_dtype_size(t->dt); }
static void *tb_d(const tbuf *t, size_t off) { return (char *)t->d + off * zt_dtype_size(t->dt); }

/* Per-element bound of an op's bf16 path: U ulps at max(|ref|, F * rms). */
typedef struct {
    const char *op;
    double ulps, floor;
} elem_bound;
static const elem_bound k_bounds[] = {
    {"gemm", 2, 1.0 / 16},            /* one rounding; f32 sums in another order */
    {"conv2d", 2, 1.0 / 16},          /* the same, implicit GEMM */
    /* + bias / accumulate / residual: the products' sum (~rms) and the added
     * term (~rms/2) cancel, and the CUDA epilogues differ from the reference by
     * up to half an ulp of the terms (measured on the H200, 2026-12-04: <= 8
     * ulps at rms/16), so the floor is the terms' size, not the result's */
    {"gemm+sum", 2, 1.0 / 2},
    {"conv2d+sum", 2, 1.0 / 2},
    {"rmsnorm_gate_add", 8, 1.0 / 4}, /* x*r, *w, *gate, resid + t: four points; the add cancels */
    {"rmsnorm", 6, 1.0 / 16},         /* x*r, *w, *scale: three points */
    {"layernorm", 4, 1.0 / 16},       /* (x-mean)*r, *scale */
    {"groupnorm", 2, 1.0 / 16},       /* one rounding; statistics in another order */
    {"swiglu", 4, 1.0 / 16},          /* silu(gate), *up */
    {"rope_half", 2, 1.0 / 16},       /* x*c, x*s, difference: exact f32 ops, same order */
    {"rope_pairs", 1, 1.0 / 16},      /* one rounding of exact f32 ops */
    {"timestep_embed", 1, 1.0 / 16},  /* cos/sin of the device's libm */
    {"silu", 1, 1.0 / 16},            /* expf of the device's libm */
    {"tanh", 1, 1.0 / 16},
    {"add", 1, 1.0 / 16},
    {"add_scaled", 0, 1.0 / 16},      /* two exact-f32 steps, two RNE: bit-exact */
    {"one_plus", 1, 1.0 / 16},
    {"convert", 1, 1.0 / 16},
    {"vae_input", 1, 1.0 / 16},
    {"patchify", 0, 1.0 / 16},        /* data movement and one RNE: bit-exact */
    {"upsample2x", 0, 1.0 / 16},
};
#define F32_ELEM_TOL 1e-4

static elem_bound bound_of(const char *op) {
    for (size_t i = 0; i < ZT_ARRAY_LEN(k_bounds); i++)
        if (!strcmp(k_bounds[i].op, op)) return k_bounds[i];
    return (elem_bound){op, 1, 1.0 / 16};
}

/* bf16 ulp at |x| (x normal or zero; 0 -> the ulp of the smallest normal). */
static double ulp_bf16(double x) {
    int e;
    frexp(fabs(x) > 1e-38 ? x : 1e-38, &e); /* |x| = m 2^e, m in [0.5, 1) */
    return ldexp(1.0, e - 8);
}

/* The ulp of the output dtype at x: bf16, or f16 (11-bit significand;
 * 2^-24 below 2^-14). */
static double ulp_of(zt_dtype dt, double x) {
    if (dt != ZT_DT_F16) return ulp_bf16(x);
    int e;
    frexp(fabs(x) > 6.103515625e-05 ? x : 6.103515625e-05, &e);
    return ldexp(1.0, e - 11);
}

typedef struct {
    double rel_l2, worst;    /* worst: ulps (bf16 path) or |d| / scale (f32 path) */
    size_t worst_i, over;    /* elements over the bound */
    size_t nan_gpu, nan_cpu;
} elem_result;

/* Compare n elements of dtype dt: bitwise-equal elements (poison included)
 * are exact; a NaN on one side only is an unwritten/overwritten element. */
static elem_result compare_elems(const void *ref, const void *got, size_t n, zt_dtype dt, int f32_path,
                                 const elem_bound *b) {
    const size_t es = zt_dtype_size(dt);
    elem_result r = {0};
    double num = 0, den = 0, sq = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        const float c = h_get(ref, dt, i);
        if (!isnan(c)) sq += (double)c * c, cnt++;
    }
    const double rms = cnt ? sqrt(sq / (double)cnt) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *pc = (const char *)ref + i * es, *pg = (const char *)got + i * es;
        const float c = h_get(ref, dt, i), v = h_get(got, dt, i);
        if (!memcmp(pc, pg, es)) {
            if (!isnan(c)) den += (double)c * c;
            continue;
        }
        if (isnan(c)) { r.nan_cpu++; continue; }
        if (isnan(v)) { r.nan_gpu++; continue; }
        const double d = fabs((double)v - c);
        num += d * d;
        den += (double)c * c;
        double m;
        if (f32_path) {
            m = d / (fmax(fabs(c), rms) * F32_ELEM_TOL); /* in units of the bound */
        } else {
            m = d / ulp_of(dt, fmax(fabs(c), b->floor * rms));
        }
        if (m > r.worst) r.worst = m, r.worst_i = i;
        if (f32_path ? m > 1 : m > b->ulps) r.over++;
    }
    r.rel_l2 = den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0);
    return r;
}

/* The guard's input for t_swiglu_big (host copy, [rows, 2 ff] rows of ld_in):
 * the gate and the up value of every 7th column times big, one Inf gate with
 * a zero up (Inf * 0 = NaN, which the guard turns into 0). */
static void swiglu_big_input(void *h, zt_dtype dt, int rows, int ff, int64_t ld_in, float big) {
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < ff; j += 7) {
            const size_t g = (size_t)r * ld_in + j, u = g + (size_t)ff;
            h_set(h, dt, g, h_get(h, dt, g) * big);
            h_set(h, dt, u, h_get(h, dt, u) * big);
        }
    h_set(h, dt, 0, INFINITY);
    h_set(h, dt, (size_t)ff, 0.0f);
}

/* The f16 guard's case reaches the guard: the CPU SwiGLU of t_swiglu_big's
 * input clamps some outputs to 65504 and leaves none non-finite (the NaN one
 * 0); and h_f32_to_f16 agrees with zt_f32_to_f16, Inf and NaN included. */
static void check_swiglu_guard_input(void) {
    static const float probe[] = {0.0f, 1.0f, -2.5f, 65504.0f, 65519.0f, 70000.0f, -1e9f, 6.1035156e-05f, 3000.7f};
    for (size_t i = 0; i < ZT_ARRAY_LEN(probe); i++)
        ZT_CHECK(h_f32_to_f16(probe[i]) == zt_f32_to_f16(probe[i]), "h_f32_to_f16(%g) = %04x, zt_f32_to_f16 %04x",
                 probe[i], h_f32_to_f16(probe[i]), zt_f32_to_f16(probe[i]));
    ZT_CHECK(h_f32_to_f16(INFINITY) == 0x7c00 && h_f32_to_f16(-INFINITY) == 0xfc00 && (h_f32_to_f16(NAN) & 0x7e00) == 0x7e00,
             "h_f32_to_f16: Inf %04x, -Inf %04x, NaN %04x", h_f32_to_f16(INFINITY), h_f32_to_f16(-INFINITY), h_f32_to_f16(NAN));
    static const int shape[][3] = {{17, 1024, 0}, {5, 37, 6}}; /* t_swiglu_big's */
    for (size_t c = 0; c < ZT_ARRAY_LEN(shape); c++) {
        const int rows = shape[c][0], ff = shape[c][1];
        const int64_t ld_in = 2 * (int64_t)ff + shape[c][2];
        uint16_t *in = malloc((size_t)rows * ld_in * 2), *out = malloc((size_t)rows * ff * 2);
        for (size_t i = 0; i < (size_t)rows * ld_in; i++) h_set(in, ZT_DT_F16, i, (float)(2.0 * zt_rng_normal(&g_rng)));
        swiglu_big_input(in, ZT_DT_F16, rows, ff, ld_in, 3000.0f);
        zt_op_swiglu(g_cpu, rows, ff, in, ld_in, out, ff, ZT_DT_F16);
        size_t clamped = 0, nonfinite = 0;
        for (size_t i = 0; i < (size_t)rows * ff; i++) {
            const float v = zt_f16_to_f32(out[i]);
            nonfinite += !isfinite(v);
            clamped += fabsf(v) == 65504.0f;
        }
        printf("selftest: swiglu guard input %dx%d: %zu clamped to 65504, %zu non-finite, the Inf*0 output %g\n", rows,
               ff, clamped, nonfinite, zt_f16_to_f32(out[0]));
        ZT_CHECK(clamped > 0 && nonfinite == 0 && out[0] == 0, "selftest: swiglu guard input %dx%d: %zu clamped, %zu "
                 "non-finite, out[0] %04x", rows, ff, clamped, nonfinite, out[0]);
        free(in), free(out);
    }
}

/* The bound can fail: a CPU GEMM's bf16 result against itself with one
 * element 3% off, then one 16x16 tile 2% off. Both stay inside the relative
 * L2 tolerance of 1e-2 (the old check alone passed them) and must fail the
 * element bound; the unchanged result must pass with 0 ulps. Runs without a
 * GPU. */
static void check_selftest(void) {
    const int m = 64, n = 96, k = 320;
    uint16_t *x = malloc((size_t)m * k * 2), *w = malloc((size_t)n * k * 2), *y = malloc((size_t)m * n * 2),
             *g = malloc((size_t)m * n * 2);
    for (int i = 0; i < m * k; i++) x[i] = zt_f32_to_bf16((float)zt_rng_normal(&g_rng));
    for (int i = 0; i < n * k; i++) w[i] = zt_f32_to_bf16((float)(zt_rng_normal(&g_rng) / sqrt((double)k)));
    zt_gemm gm = {.m = m, .n = n, .k = k, .x = x, .x_dt = ZT_DT_BF16, .ldx = k, .w = w, .w_dt = ZT_DT_BF16,
                  .y = y, .y_dt = ZT_DT_BF16, .ldy = n};
    zt_op_gemm(g_cpu, &gm);
    const elem_bound b = bound_of("gemm");
    memcpy(g, y, (size_t)m * n * 2);
    elem_result r = compare_elems(y, g, (size_t)m * n, ZT_DT_BF16, 0, &b);
    ZT_CHECK(r.over == 0 && r.worst == 0, "selftest: identical results flagged (%zu over)", r.over);
    /* one element, 3% off (2..8 ulps of bf16) */
    size_t at = 37 * n + 61;
    g[at] = zt_f32_to_bf16(zt_bf16_to_f32(y[at]) * 1.03f);
    r = compare_elems(y, g, (size_t)m * n, ZT_DT_BF16, 0, &b);
    printf("selftest: one element 3%% off: rel_l2 %.2e (tol 1e-2), worst %.1f ulps at %zu, %zu over the bound\n",
           r.rel_l2, r.worst, r.worst_i, r.over);
    ZT_CHECK(r.rel_l2 <= 1e-2 && r.over == 1 && r.worst_i == at,
             "selftest: a wrong element must pass the L2 and fail the element bound (rel %.2e, %zu over)", r.rel_l2,
             r.over);
    /* one 16x16 tile, 2% off */
    memcpy(g, y, (size_t)m * n * 2);
    size_t changed = 0;
    for (int i = 16; i < 32; i++)
        for (int j = 48; j < 64; j++) {
            const float v = zt_bf16_to_f32(y[i * n + j]);
            g[i * n + j] = zt_f32_to_bf16(v * 1.02f);
            changed += g[i * n + j] != y[i * n + j];
        }
    r = compare_elems(y, g, (size_t)m * n, ZT_DT_BF16, 0, &b);
    printf("selftest: one 16x16 tile 2%% off: rel_l2 %.2e (tol 1e-2), %zu of %zu changed elements over the bound\n",
           r.rel_l2, r.over, changed);
    ZT_CHECK(r.rel_l2 <= 1e-2 && r.over * 2 >= changed, "selftest: a wrong tile must fail the element bound");
    /* f32: one element off by 1e-3 (the result's rms is about 1) */
    float *fy = malloc((size_t)m * n * 4), *fg = malloc((size_t)m * n * 4);
    for (int i = 0; i < m * n; i++) fy[i] = fg[i] = zt_bf16_to_f32(y[i]);
    fg[at] += 1e-3f;
    r = compare_elems(fy, fg, (size_t)m * n, ZT_DT_F32, 1, &b);
    ZT_CHECK(r.rel_l2 <= 1e-4 && r.over == 1, "selftest: f32 element 1e-3 off: rel %.2e, %zu over", r.rel_l2, r.over);
    free(x), free(w), free(y), free(g), free(fy), free(fg);
}

/* Compare the whole buffer (see compare_elems) and record the case. */
static int tb_check(const char *op, const char *what, tbuf *t, int f32_path) {
    void *g = malloc(tb_bytes(t) ? tb_bytes(t) : 1);
    zt_mem_download(g_gpu, g, t->d, tb_bytes(t));
    const elem_bound b = bound_of(op);
    const elem_result r = compare_elems(t->h, g, t->n, t->dt, f32_path, &b);
    free(g);
    const double tol = f32_path ? 1e-5 : 1e-2;
    const int ok = r.rel_l2 <= tol && r.over == 0 && r.nan_gpu == 0 && r.nan_cpu == 0;
    char eb[64];
    if (f32_path) snprintf(eb, sizeof eb, "elem %.2f of bound", r.worst);
    else snprintf(eb, sizeof eb, "elem %.1f %s ulps (max %.0f)", r.worst, t->dt == ZT_DT_F16 ? "f16" : "bf16", b.ulps);
    printf("%-6s %-15s %-52s rel_l2 %.3e (tol %.0e) %s%s%s%s\n", ok ? "ok" : "FAIL", op, what, r.rel_l2, tol, eb,
           r.over ? " OVER THE ELEMENT BOUND" : "", r.nan_gpu ? " UNWRITTEN/NaN on CUDA" : "",
           r.nan_cpu ? " WROTE OUTSIDE THE VIEW" : "");
    ZT_CHECK(ok,
             "%s %s: rel_l2 %.3e (tol %.0e), %zu elements over the element bound (worst %.2f at %zu), %zu NaN/unwritten "
             "on CUDA, %zu written outside the view",
             op, what, r.rel_l2, tol, r.over, r.worst, r.worst_i, r.nan_gpu, r.nan_cpu);
    record(op, f32_path, (r.nan_gpu || r.nan_cpu) ? NAN : r.rel_l2, ok, r.worst);
    return ok;
}

static const char *dn(zt_dtype t) { return t == ZT_DT_F32 ? "f32" : t == ZT_DT_BF16 ? "bf16" : "f16"; }

/* ---- GEMM ------------------------------------------------------------------- */
static void t_gemm_w(int m, int n, int k, zt_dtype xdt, zt_dtype wdt, zt_dtype ydt, int bias, int acc, int pad_x,
                     int pad_y) {
    if (!want("gemm")) return;
    const int64_t ldx = k + pad_x, ldy = n + pad_y;
    tbuf x = tb_new((size_t)m * ldx, xdt), w = tb_new((size_t)n * k, wdt), b = tb_new((size_t)n, wdt);
    tbuf y = tb_new((size_t)m * ldy, ydt);
    tb_rand(&x, 1.0, 0.0);
    tb_rand(&w, 1.0 / sqrt((double)k), 0.0);
    tb_rand(&b, 0.5, 0.0);
    if (acc) {
        tb_poison(&y, 0xFF);
        for (int r = 0; r < m; r++)
            for (int j = 0; j < n; j++) h_set(y.h, ydt, (size_t)r * ldy + j, (float)zt_rng_normal(&g_rng));
        tb_sync(&y);
    } else {
        tb_poison(&y, 0xFF);
    }
    zt_gemm g = {.m = m, .n = n, .k = k, .x_dt = xdt, .ldx = ldx, .w_dt = wdt, .y_dt = ydt, .ldy = ldy, .accumulate = acc};
    g.x = x.h; g.w = w.h; g.bias = bias ? b.h : NULL; g.y = y.h;
    zt_op_gemm(g_cpu, &g);
    g.x = x.d; g.w = w.d; g.bias = bias ? b.d : NULL; g.y = y.d;
    zt_op_gemm(g_gpu, &g);
    char what[128];
    snprintf(what, sizeof what, "m%d n%d k%d %s.%s->%s%s%s ldx%+d ldy%+d", m, n, k, dn(xdt), dn(wdt), dn(ydt),
             bias ? " bias" : "", acc ? " acc" : "", pad_x, pad_y);
    tb_check(bias || acc ? "gemm+sum" : "gemm", what, &y, ydt == ZT_DT_F32 && xdt == ZT_DT_F32);
    tb_free(&x); tb_free(&w); tb_free(&b); tb_free(&y);
}

static void t_gemm(int m, int n, int k, zt_dtype xdt, zt_dtype ydt, int bias, int acc, int pad_x, int pad_y) {
    t_gemm_w(m, n, k, xdt, xdt, ydt, bias, acc, pad_x, pad_y);
}

/* f16 x f16 -> f32 with zt_gemm.scale and a bias (scale applies to x·wᵀ only). */
static void t_gemm_scaled(int m, int n, int k, float scale) {
    if (!want("gemm")) return;
    const zt_dtype H = ZT_DT_F16;
    tbuf x = tb_new((size_t)m * k, H), w = tb_new((size_t)n * k, H), b = tb_new((size_t)n, H);
    tbuf y = tb_new((size_t)m * n, ZT_DT_F32);
    tb_rand(&x, 1.0, 0.0);
    tb_rand(&w, 1.0 / sqrt((double)k), 0.0);
    tb_rand(&b, 0.5, 0.0);
    tb_poison(&y, 0xFF);
    zt_gemm g = {.m = m, .n = n, .k = k, .x_dt = H, .w_dt = H, .y_dt = ZT_DT_F32, .scale = scale};
    g.x = x.h; g.w = w.h; g.bias = b.h; g.y = y.h;
    zt_op_gemm(g_cpu, &g);
    g.x = x.d; g.w = w.d; g.bias = b.d; g.y = y.d;
    zt_op_gemm(g_gpu, &g);
    char what[128];
    snprintf(what, sizeof what, "m%d n%d k%d f16.f16->f32 bias scale %g", m, n, k, scale);
    tb_check("gemm", what, &y, 1);
    tb_free(&x); tb_free(&w); tb_free(&b); tb_free(&y);
}

/* (f32 x, bf16 w) -> f32: the f32-math VAE's projections (SIMT kernel). */
static void t_gemm_mixed(void) {
    t_gemm_w(37, 61, 129, ZT_DT_F32, ZT_DT_BF16, ZT_DT_F32, 1, 0, 0, 0);
    t_gemm_w(257, 512, 512, ZT_DT_F32, ZT_DT_BF16, ZT_DT_F32, 1, 1, 3, 5);
    t_gemm_w(1000, 64, 64, ZT_DT_F32, ZT_DT_BF16, ZT_DT_F32, 0, 0, 0, 0);
}

/* ---- norms --------------------------------------------------------------------- */
enum { T_RMS, T_LAYER, T_GATE };

/* Every launch variant of kernels/cuda_norm.h runs on the same inputs and
 * is checked against the CPU; each is also compared bit by bit with variant
 * 0: variant 1 must match it everywhere, 2-4 wherever they sum the
 * statistics in variant 0's order (vectors of <= 1024 elements, per-head
 * q/k rows included); longer rows are only reported. */
static void t_norm(int kind, int rows, int heads, int dim, zt_dtype xdt, zt_dtype ydt, int weight, int scale,
                   int gate, int pad_x, int pad_y, int inplace) {
    if (!want(kind == T_RMS ? "rmsnorm" : kind == T_LAYER ? "layernorm" : "rmsnorm_gate_add")) return;
    const int width = heads * dim;
    const int64_t ldx = width + pad_x, ldy = inplace ? ldx : width + pad_y;
    tbuf x = tb_new((size_t)rows * ldx, xdt), y = tb_new((size_t)rows * ldy, ydt);
    tbuf wt = tb_new((size_t)dim, ZT_DT_BF16), sc = tb_new((size_t)width, ydt), gt = tb_new((size_t)width, ydt);
    tb_rand(&x, 2.0, 0.3);
    tb_rand(&wt, 0.5, 1.0);
    tb_rand(&sc, 0.3, 1.0);
    tb_rand(&gt, 0.5, 0.0);
    if (kind == T_GATE) tb_rand(&y, 1.0, 0.0); /* the residual stream */
    else if (!inplace) tb_poison(&y, 0xFF);
    /* the inputs as drawn, for every GPU run (the CPU run overwrites x.h or y.h) */
    void *x0 = malloc(tb_bytes(&x)), *y0 = malloc(tb_bytes(&y));
    memcpy(x0, x.h, tb_bytes(&x));
    if (!inplace) memcpy(y0, y.h, tb_bytes(&y));
    tbuf *out = inplace ? &x : &y;
    const size_t out_bytes = tb_bytes(out);
    void *ref = malloc(out_bytes), *got = malloc(out_bytes);
    zt_norm nm = {.rows = rows, .heads = heads, .dim = dim, .x_dt = xdt, .ldx = ldx, .eps = 1e-5f, .y_dt = ydt, .ldy = ldy};
    const char *op = kind == T_RMS ? "rmsnorm" : kind == T_LAYER ? "layernorm" : "rmsnorm_gate_add";
    const int saved = zt_ops_norm_variant(g_gpu);
    for (int v = -1; v < ZT_NORM_VARIANTS; v++) { /* -1: the CPU */
        const int gpu = v >= 0;
        if (gpu) {
            zt_mem_upload(g_gpu, x.d, x0, tb_bytes(&x));
            if (!inplace) zt_mem_upload(g_gpu, y.d, y0, tb_bytes(&y));
            ZT_CHECK(zt_ops_set_norm_variant(g_gpu, v, NULL) == ZT_OK, "norm variant %d", v);
        }
        nm.x = gpu ? x.d : x.h;
        nm.weight = weight ? (const uint16_t *)(gpu ? wt.d : wt.h) : NULL;
        nm.scale = scale ? (gpu ? sc.d : sc.h) : NULL;
        nm.y = inplace ? (void *)nm.x : (gpu ? y.d : y.h);
        zt_ops *o = gpu ? g_gpu : g_cpu;
        if (kind == T_RMS) zt_op_rmsnorm(o, &nm);
        else if (kind == T_LAYER) zt_op_layernorm(o, &nm);
        else zt_op_rmsnorm_gate_add(o, &nm, gate ? (gpu ? gt.d : gt.h) : NULL, gpu ? y.d : y.h, ldy);
        if (!gpu) continue;
        char what[128];
        snprintf(what, sizeof what, "%dx%dx%d %s->%s%s%s%s%s ldx%+d ldy%+d v%d", rows, heads, dim, dn(xdt), dn(ydt),
                 weight ? " w" : "", scale ? " scale" : "", gate ? " gate" : "", inplace ? " inplace" : "", pad_x,
                 inplace ? pad_x : pad_y, v);
        tb_check(op, what, out, ydt == ZT_DT_F32 && xdt == ZT_DT_F32);
        zt_mem_download(g_gpu, v ? got : ref, out->d, out_bytes);
        if (v == 0) continue;
        const size_t es = zt_dtype_size(out->dt);
        size_t ndiff = 0;
        for (size_t i = 0; i < out->n; i++) ndiff += memcmp((char *)ref + i * es, (char *)got + i * es, es) != 0;
        const int must = v == 1 || dim <= 1024;
        printf("%-6s %-15s %-52s %zu elements differ from v0%s\n", must && ndiff ? "FAIL" : "ok", op, what, ndiff,
               must ? " (must be 0)" : "");
        ZT_CHECK(!must || ndiff == 0, "%s %s: %zu elements differ from variant 0", op, what, ndiff);
    }
    zt_ops_set_norm_variant(g_gpu, saved, NULL);
    free(x0); free(y0); free(ref); free(got);
    tb_free(&x); tb_free(&y); tb_free(&wt); tb_free(&sc); tb_free(&gt);
}

/* The fp16 path's norms (kernels/cuda_norm_f16.cu): x f32 or f16, f16 weight
 * (w_f16), f16 scale/gate, gate_add's resid f32 (resid_f32) or f16. */
static void t_norm16(int kind, int rows, int heads, int dim, zt_dtype xdt, int scale, int gate, int resid32, int pad_x,
                     int inplace) {
    const char *op = kind == T_RMS ? "rmsnorm" : kind == T_LAYER ? "layernorm" : "rmsnorm_gate_add";
    if (!want(op)) return;
    const zt_dtype H = ZT_DT_F16, rdt = kind == T_GATE && resid32 ? ZT_DT_F32 : H;
    const int width = heads * dim;
    const int64_t ldx = width + pad_x, ldy = inplace ? ldx : width + 3;
    tbuf x = tb_new((size_t)rows * ldx, xdt), y = tb_new((size_t)rows * ldy, kind == T_GATE ? rdt : H);
    tbuf wt = tb_new((size_t)dim, H), sc = tb_new((size_t)width, H), gt = tb_new((size_t)width, H);
    tb_rand(&x, 2.0, 0.3);
    tb_rand(&wt, 0.5, 1.0);
    tb_rand(&sc, 0.3, 1.0);
    tb_rand(&gt, 0.5, 0.0);
    if (kind == T_GATE) tb_rand(&y, 30.0, 0.0); /* the residual stream, large */
    else if (!inplace) tb_poison(&y, 0xFF);
    zt_norm nm = {.rows = rows, .heads = heads, .dim = dim, .x_dt = xdt, .ldx = ldx, .eps = 1e-5f, .y_dt = H,
                  .ldy = ldy, .w_f16 = 1, .resid_f32 = kind == T_GATE && resid32};
    for (int gpu = 0; gpu < 2; gpu++) {
        nm.x = gpu ? x.d : x.h;
        /* the LayerNorms (the DiT's final one) have no weight: elementwise_affine=False */
        nm.weight = kind == T_LAYER ? NULL : (const uint16_t *)(gpu ? wt.d : wt.h);
        nm.scale = scale ? (gpu ? sc.d : sc.h) : NULL;
        nm.y = inplace ? (void *)nm.x : (gpu ? y.d : y.h);
        zt_ops *o = gpu ? g_gpu : g_cpu;
        if (kind == T_RMS) zt_op_rmsnorm(o, &nm);
        else if (kind == T_LAYER) zt_op_layernorm(o, &nm);
        else zt_op_rmsnorm_gate_add(o, &nm, gate ? (gpu ? gt.d : gt.h) : NULL, gpu ? y.d : y.h, ldy);
    }
    char what[128];
    snprintf(what, sizeof what, "%dx%dx%d %s->f16 w16%s%s%s%s ldx%+d", rows, heads, dim, dn(xdt), scale ? " scale" : "",
             gate ? " gate" : "", kind == T_GATE ? (resid32 ? " resid f32" : " resid f16") : "",
             inplace ? " inplace" : "", pad_x);
    /* an f32 residual is checked as f32 (sum of an f16 term: exact inputs) */
    tb_check(op, what, inplace ? &x : &y, kind == T_GATE && resid32);
    tb_free(&x); tb_free(&y); tb_free(&wt); tb_free(&sc); tb_free(&gt);
}

static void t_groupnorm(int hw, int c, int groups, zt_dtype dt, zt_dtype gbdt, int silu, double offset, int inplace) {
    if (!want("groupnorm")) return;
    tbuf x = tb_new((size_t)hw * c, dt), y = tb_new((size_t)hw * c, dt);
    tbuf ga = tb_new((size_t)c, gbdt), be = tb_new((size_t)c, gbdt);
    tb_rand(&x, 1.5, offset);
    tb_rand(&ga, 0.5, 1.0);
    tb_rand(&be, 0.5, 0.0);
    tb_poison(&y, 0xFF);
    zt_groupnorm g = {.hw = hw, .c = c, .groups = groups, .dt = dt, .gb_dt = gbdt, .eps = 1e-6f, .silu = silu};
    for (int side = 0; side < 2; side++) {
        const int gpu = side == 1;
        zt_ops *o = gpu ? g_gpu : g_cpu;
        g.x = gpu ? x.d : x.h;
        g.y = inplace ? (void *)g.x : (gpu ? y.d : y.h);
        g.gamma = gpu ? ga.d : ga.h;
        g.beta = gpu ? be.d : be.h;
        size_t wsb = zt_groupnorm_workspace_size(o, &g);
        void *ws = zt_mem_alloc(o, wsb ? wsb : 1);
        zt_op_groupnorm(o, &g, ws);
        zt_ops_sync(o);
        zt_mem_free(o, ws);
    }
    char what[128];
    snprintf(what, sizeof what, "hw%d c%d g%d %s gb %s%s mean%+.0f%s", hw, c, groups, dn(dt), dn(gbdt),
             silu ? " silu" : "", offset, inplace ? " inplace" : "");
    tb_check("groupnorm", what, inplace ? &x : &y, dt == ZT_DT_F32);
    tb_free(&x); tb_free(&y); tb_free(&ga); tb_free(&be);
}

/* ---- elementwise ----------------------------------------------------------------- */
enum { E_ADD, E_SILU, E_ONE_PLUS, E_TANH, E_ADD_SCALED };
static void t_elementwise(int kind, size_t n, zt_dtype dt, int misalign, int inplace) {
    static const char *wn[] = {"add", "silu", "one_plus", "tanh", "add_scaled"};
    if (!want(wn[kind])) return;
    const size_t off = misalign ? 1 : 0;
    tbuf a = tb_new(n + off, dt), b = tb_new(n + off, dt), y = tb_new(n + off, dt);
    tb_rand(&a, 2.0, 0.0);
    tb_rand(&b, 2.0, 0.0);
    tb_poison(&y, 0xFF);
    for (int side = 0; side < 2; side++) {
        const int gpu = side == 1;
        zt_ops *o = gpu ? g_gpu : g_cpu;
        void *pa = gpu ? tb_d(&a, off) : tb_h(&a, off), *pb = gpu ? tb_d(&b, off) : tb_h(&b, off);
        void *py = inplace ? pa : (gpu ? tb_d(&y, off) : tb_h(&y, off));
        if (kind == E_ADD) zt_op_add(o, n, pa, pb, py, dt);
        else if (kind == E_ADD_SCALED) zt_op_add_scaled(o, n, pa, pb, 0.7f, py, dt);
        else if (kind == E_SILU) zt_op_silu(o, n, pa, py, dt);
        else if (kind == E_ONE_PLUS) zt_op_one_plus(o, n, pa, py, dt);
        else zt_op_tanh(o, n, pa, py, dt);
    }
    static const char *names[] = {"add", "silu", "one_plus", "tanh", "add_scaled"};
    char what[128];
    snprintf(what, sizeof what, "n%zu %s%s%s", n, dn(dt), misalign ? " misaligned" : "", inplace ? " inplace" : "");
    tb_check(names[kind], what, inplace ? &a : &y, dt == ZT_DT_F32);
    tb_free(&a); tb_free(&b); tb_free(&y);
}

static void t_convert(size_t n, zt_dtype xdt, zt_dtype ydt, int misalign) {
    if (!want("convert")) return;
    const size_t off = misalign ? 1 : 0;
    tbuf x = tb_new(n + off, xdt), y = tb_new(n + off, ydt);
    tb_rand(&x, 3.0, 0.0);
    tb_poison(&y, 0xFF);
    zt_op_convert(g_cpu, n, tb_h(&x, off), xdt, tb_h(&y, off), ydt);
    zt_op_convert(g_gpu, n, tb_d(&x, off), xdt, tb_d(&y, off), ydt);
    char what[128];
    snprintf(what, sizeof what, "n%zu %s->%s%s", n, dn(xdt), dn(ydt), misalign ? " misaligned" : "");
    tb_check("convert", what, &y, ydt == ZT_DT_F32);
    tb_free(&x); tb_free(&y);
}

/* f16: big > 0 scales the gate and the up value of every 7th column by it,
 * so that their products pass 32 x 65504 and the guard's clamp (and NaN -> 0
 * from an Inf gate times a zero up) runs on both backends. (Scaling every
 * 7th element of the buffer instead never makes both factors of a product
 * big when ff % 7 != 0: nothing reached the clamp.) */
static void t_swiglu_big(int rows, int ff, int pad_in, int pad_out, zt_dtype dt, float big) {
    if (!want("swiglu")) return;
    const int64_t ld_in = 2 * (int64_t)ff + pad_in, ld_out = ff + pad_out;
    tbuf in = tb_new((size_t)rows * ld_in, dt), out = tb_new((size_t)rows * ld_out, dt);
    tb_rand(&in, 2.0, 0.0);
    if (big > 0) {
        swiglu_big_input(in.h, dt, rows, ff, ld_in, big);
        tb_sync(&in);
    }
    tb_poison(&out, 0xFF);
    zt_op_swiglu(g_cpu, rows, ff, in.h, ld_in, out.h, ld_out, dt);
    zt_op_swiglu(g_gpu, rows, ff, in.d, ld_in, out.d, ld_out, dt);
    char what[128];
    snprintf(what, sizeof what, "%dx%d %s ld_in%+d ld_out%+d%s", rows, ff, dn(dt), pad_in, pad_out,
             big > 0 ? " big (guard clamps)" : "");
    tb_check("swiglu", what, &out, dt == ZT_DT_F32);
    if (big > 0) { /* the guard: every output finite, some at the clamp */
        size_t nonfinite = 0, clamped = 0;
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < ff; j++) {
                const float v = h_get(out.h, dt, (size_t)r * ld_out + j);
                nonfinite += !isfinite(v);
                clamped += fabsf(v) == 65504.0f;
            }
        printf("%-6s %-15s %-52s %zu clamped to 65504, %zu non-finite\n", clamped && !nonfinite ? "ok" : "FAIL",
               "swiglu", what, clamped, nonfinite);
        ZT_CHECK(clamped > 0 && nonfinite == 0, "swiglu f16 guard: %zu clamped, %zu non-finite", clamped, nonfinite);
    }
    tb_free(&in); tb_free(&out);
}

static void t_swiglu(int rows, int ff, int pad_in, int pad_out, zt_dtype dt) {
    t_swiglu_big(rows, ff, pad_in, pad_out, dt, 0);
}

/* ---- RoPE ---------------------------------------------------------------------------- */
static void t_rope(int half, int rows, int heads, int hd, int pad, zt_dtype dt) {
    if (!want(half ? "rope_half" : "rope_pairs")) return;
    const int64_t ldx = (int64_t)heads * hd + pad;
    tbuf x = tb_new((size_t)rows * ldx, dt);
    tbuf cs = tb_new((size_t)rows * hd, half ? dt : ZT_DT_F32);
    tb_rand(&x, 1.5, 0.0);
    for (size_t i = 0; i < (size_t)rows * hd / 2; i++) {
        const double ang = 6.283185307179586 * zt_rng_uniform(&g_rng) * 50;
        h_set(cs.h, cs.dt, 2 * i, (float)cos(ang));
        h_set(cs.h, cs.dt, 2 * i + 1, (float)sin(ang));
    }
    tb_sync(&cs);
    if (half) {
        zt_op_rope_half(g_cpu, rows, heads, hd, x.h, ldx, cs.h, dt);
        zt_op_rope_half(g_gpu, rows, heads, hd, x.d, ldx, cs.d, dt);
    } else {
        zt_op_rope_pairs(g_cpu, rows, heads, hd, x.h, ldx, cs.h, dt);
        zt_op_rope_pairs(g_gpu, rows, heads, hd, x.d, ldx, cs.d, dt);
    }
    char what[128];
    snprintf(what, sizeof what, "%dx%dx%d %s ldx%+d", rows, heads, hd, dn(dt), pad);
    tb_check(half ? "rope_half" : "rope_pairs", what, &x, dt == ZT_DT_F32);
    tb_free(&x); tb_free(&cs);
}

/* ---- Z-Image specifics -------------------------------------------------------------- */
static void t_timestep(float tt, int half, zt_dtype dt) {
    if (!want("timestep_embed")) return;
    tbuf o = tb_new((size_t)2 * half, dt);
    tb_poison(&o, 0xFF);
    zt_op_timestep_embed(g_cpu, tt, half, o.h, dt);
    zt_op_timestep_embed(g_gpu, tt, half, o.d, dt);
    char what[128];
    snprintf(what, sizeof what, "tt %.4f half %d %s", tt, half, dn(dt));
    tb_check("timestep_embed", what, &o, dt == ZT_DT_F32);
    tb_free(&o);
}

static void t_patchify(int c, int hl, int wl, int p, zt_dtype dt, int pad_tok) {
    if (!want("patchify")) return;
    const int ntok = (hl / p) * (wl / p), feat = p * p * c;
    tbuf lat = tb_new((size_t)c * hl * wl, ZT_DT_F32), tok = tb_new((size_t)ntok * feat, dt);
    tb_rand(&lat, 1.0, 0.0);
    tb_poison(&tok, 0xFF);
    zt_op_patchify(g_cpu, c, hl, wl, p, lat.h, tok.h, dt);
    zt_op_patchify(g_gpu, c, hl, wl, p, lat.d, tok.d, dt);
    char what[128];
    snprintf(what, sizeof what, "c%d %dx%d p%d %s", c, hl, wl, p, dn(dt));
    tb_check("patchify", what, &tok, dt == ZT_DT_F32);
    /* unpatchify from a strided token matrix with extra rows (pad tokens) */
    const int64_t ld = feat + pad_tok;
    tbuf tk = tb_new((size_t)(ntok + 3) * ld, dt), out = tb_new((size_t)c * hl * wl, ZT_DT_F32);
    tb_rand(&tk, 1.0, 0.0);
    tb_poison(&out, 0xFF);
    zt_op_unpatchify(g_cpu, c, hl, wl, p, tk.h, ld, out.h, dt);
    zt_op_unpatchify(g_gpu, c, hl, wl, p, tk.d, ld, out.d, dt);
    snprintf(what, sizeof what, "c%d %dx%d p%d %s ld%+d", c, hl, wl, p, dn(dt), pad_tok);
    tb_check("unpatchify", what, &out, 1);
    tb_free(&lat); tb_free(&tok); tb_free(&tk); tb_free(&out);
}

static void t_euler(size_t n, float dt, int misalign) {
    if (!want("euler_step")) return;
    const size_t off = misalign ? 1 : 0;
    tbuf x = tb_new(n + off, ZT_DT_F32), mo = tb_new(n + off, ZT_DT_F32);
    tb_rand(&x, 1.0, 0.0);
    tb_rand(&mo, 1.0, 0.0);
    zt_op_euler_step(g_cpu, n, tb_h(&x, off), tb_h(&mo, off), dt);
    zt_op_euler_step(g_gpu, n, tb_d(&x, off), tb_d(&mo, off), dt);
    char what[128];
    snprintf(what, sizeof what, "n%zu dt %.4f%s", n, dt, misalign ? " misaligned" : "");
    tb_check("euler_step", what, &x, 1);
    tb_free(&x); tb_free(&mo);
}

/* ---- VAE ---------------------------------------------------------------------------------- */
static void t_vae_input(int c, int h, int w, zt_dtype dt) {
    if (!want("vae_input")) return;
    tbuf lat = tb_new((size_t)c * h * w, ZT_DT_F32), y = tb_new((size_t)c * h * w, dt);
    tb_rand(&lat, 1.0, 0.0);
    tb_poison(&y, 0xFF);
    const float mul = 1.0f / 0.3611f, add = 0.1159f;
    zt_op_vae_input(g_cpu, c, h, w, lat.h, mul, add, y.h, dt);
    zt_op_vae_input(g_gpu, c, h, w, lat.d, mul, add, y.d, dt);
    char what[128];
    snprintf(what, sizeof what, "c%d %dx%d %s", c, h, w, dn(dt));
    tb_check("vae_input", what, &y, dt == ZT_DT_F32);
    tb_free(&lat); tb_free(&y);
}

static void t_conv_s(int h, int w, int cin, int cout, int k, zt_dtype dt, int bias, int resid, int variant, int stride) {
    if (!want("conv2d")) return;
    const size_t ihw = (size_t)h * w, hw = (size_t)(h / stride) * (w / stride), K = (size_t)k * k * cin;
    tbuf x = tb_new(ihw * cin, dt), wt = tb_new((size_t)cout * K, dt), b = tb_new((size_t)cout, dt);
    tbuf r = tb_new(hw * cout, dt), y = tb_new(hw * cout, dt);
    tb_rand(&x, 1.0, 0.0);
    tb_rand(&wt, 1.0 / sqrt((double)K), 0.0);
    tb_rand(&b, 0.5, 0.0);
    tb_rand(&r, 1.0, 0.0);
    tb_poison(&y, 0xFF);
    zt_conv2d c = {.h = h, .w = w, .cin = cin, .cout = cout, .k = k, .dt = dt, .stride = stride};
    for (int side = 0; side < 2; side++) {
        const int gpu = side == 1;
        zt_ops *o = gpu ? g_gpu : g_cpu;
        c.x = gpu ? x.d : x.h;
        c.wgt = gpu ? wt.d : wt.h;
        c.bias = bias ? (gpu ? b.d : b.h) : NULL;
        c.residual = resid ? (gpu ? r.d : r.h) : NULL;
        c.y = gpu ? y.d : y.h;
        size_t wsb = zt_conv2d_workspace_size(o, &c);
        void *ws = wsb ? zt_mem_alloc(o, wsb) : NULL;
        if (gpu && variant) zt_cuda_conv2d_variant(o, &c, ws, variant);
        else zt_op_conv2d(o, &c, ws);
        zt_ops_sync(o);
        zt_mem_free(o, ws);
    }
    char what[128];
    snprintf(what, sizeof what, "%dx%d %d->%d k%d %s%s%s v%d%s", h, w, cin, cout, k, dn(dt), bias ? " bias" : "",
             resid ? " resid" : "", variant, stride == 2 ? " stride2" : "");
    tb_check(bias || resid ? "conv2d+sum" : "conv2d", what, &y, dt == ZT_DT_F32);
    tb_free(&x); tb_free(&wt); tb_free(&b); tb_free(&r); tb_free(&y);
}

static void t_conv(int h, int w, int cin, int cout, int k, zt_dtype dt, int bias, int resid, int variant) {
    t_conv_s(h, w, cin, cout, k, dt, bias, resid, variant, 1);
}

/* scale_noise / inpaint blend: the same f32 operations on both sides. */
static void t_flow_mix(int c, size_t hw, float sigma, int masked) {
    if (!want("flow_mix")) return;
    tbuf x0 = tb_new((size_t)c * hw, ZT_DT_F32), nz = tb_new((size_t)c * hw, ZT_DT_F32);
    tbuf m = tb_new(hw, ZT_DT_F32), y = tb_new((size_t)c * hw, ZT_DT_F32);
    tb_rand(&x0, 1.5, 0.0);
    tb_rand(&nz, 1.0, 0.0);
    tb_rand(&y, 1.0, 0.0);
    for (size_t p = 0; p < hw; p++) ((float *)m.h)[p] = (float)(p % 3 == 0);
    tb_sync(&m);
    zt_op_flow_mix(g_cpu, c, hw, x0.h, nz.h, sigma, masked ? m.h : NULL, y.h);
    zt_op_flow_mix(g_gpu, c, hw, x0.d, nz.d, sigma, masked ? m.d : NULL, y.d);
    char what[128];
    snprintf(what, sizeof what, "c%d hw%zu sigma %g%s", c, hw, sigma, masked ? " masked" : "");
    tb_check("flow_mix", what, &y, 1);
    tb_free(&x0); tb_free(&nz); tb_free(&m); tb_free(&y);
}

/* The encoder posterior: sample (eps) and argmax (eps NULL); logvars beyond
 * the clamp on both sides. CUDA's expf may differ from the CPU's by an ulp. */
static void t_vae_posterior(int c, int h, int w, zt_dtype dt) {
    if (!want("vae_posterior")) return;
    const size_t hw = (size_t)h * w;
    tbuf m = tb_new(hw * 2 * c, dt), eps = tb_new((size_t)c * hw, ZT_DT_F32), y = tb_new((size_t)c * hw, ZT_DT_F32);
    tb_rand(&m, 2.0, 0.0);
    for (size_t p = 0; p < hw; p += 3) h_set(m.h, dt, p * 2 * c + c, p % 2 ? 45.0f : -70.0f);
    tb_sync(&m);
    tb_rand(&eps, 1.0, 0.0);
    for (int sample = 0; sample < 2; sample++) {
        tb_poison(&y, 0xFF);
        zt_op_vae_posterior(g_cpu, c, h, w, m.h, dt, sample ? (const float *)eps.h : NULL, 0.1159f, 0.3611f, y.h);
        zt_op_vae_posterior(g_gpu, c, h, w, m.d, dt, sample ? (const float *)eps.d : NULL, 0.1159f, 0.3611f, y.d);
        char what[128];
        snprintf(what, sizeof what, "c%d %dx%d %s %s", c, h, w, dn(dt), sample ? "sample" : "argmax");
        tb_check("vae_posterior", what, &y, 1);
    }
    tb_free(&m); tb_free(&eps); tb_free(&y);
}

static void t_upsample(int h, int w, int c, zt_dtype dt) {
    if (!want("upsample2x")) return;
    tbuf x = tb_new((size_t)h * w * c, dt), y = tb_new((size_t)4 * h * w * c, dt);
    tb_rand(&x, 1.0, 0.0);
    tb_poison(&y, 0xFF);
    zt_op_upsample2x(g_cpu, h, w, c, x.h, y.h, dt);
    zt_op_upsample2x(g_gpu, h, w, c, x.d, y.d, dt);
    char what[128];
    snprintf(what, sizeof what, "%dx%d c%d %s", h, w, c, dn(dt));
    tb_check("upsample2x", what, &y, dt == ZT_DT_F32);
    tb_free(&x); tb_free(&y);
}

/* uint8 output: exact match, run twice with poison 0xFF and 0x00 so that an
 * unwritten byte cannot hide behind a legitimate 255 or 0. */
static void t_to_rgb8(int h, int w, zt_dtype dt) {
    if (!want("to_rgb8")) return;
    const size_t n = (size_t)h * w * 3;
    tbuf x = tb_new(n, dt), y = tb_new(n, ZT_DT_U8);
    tb_rand(&x, 0.8, 0.0);
    size_t bad = 0;
    for (int pass = 0; pass < 2; pass++) {
        tb_poison(&y, pass ? 0x00 : 0xFF);
        zt_op_to_rgb8(g_cpu, h, w, x.h, dt, y.h);
        zt_op_to_rgb8(g_gpu, h, w, x.d, dt, y.d);
        uint8_t *g = malloc(n);
        zt_mem_download(g_gpu, g, y.d, n);
        for (size_t i = 0; i < n; i++) bad += g[i] != ((uint8_t *)y.h)[i];
        free(g);
    }
    char what[128];
    snprintf(what, sizeof what, "%dx%d %s (exact)", h, w, dn(dt));
    printf("%-6s %-15s %-52s %zu mismatching bytes\n", bad ? "FAIL" : "ok", "to_rgb8", what, bad);
    ZT_CHECK(bad == 0, "to_rgb8 %s: %zu bytes differ", what, bad);
    record("to_rgb8", dt == ZT_DT_F32, bad ? 1.0 : 0.0, bad == 0, 0);
    tb_free(&x); tb_free(&y);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* case lines survive an abort */
    zt_err e = {0};
    zt_ops_config cc = {.backend = ZT_BACKEND_CPU}, gc = {.backend = ZT_BACKEND_CUDA, .device = 0};
    if (zt_ops_create(&cc, &g_cpu, &e)) {
        fprintf(stderr, "ops context: %s\n", e.msg);
        return 1;
    }
    check_selftest();
    check_swiglu_guard_input();
    if (!zt_cuda_available()) {
        if (zt_test_failures) return zt_test_finish("test_ops_cuda"); /* the bound's own test failed */
        zt_test_skip("no CUDA device (the element bound's self-test passed)");
    }
    if (zt_ops_create(&gc, &g_gpu, &e)) {
        fprintf(stderr, "ops context: %s\n", e.msg);
        return 1;
    }
    const zt_dtype B = ZT_DT_BF16, F = ZT_DT_F32;
    /* A CUDA_ARCH=sm_75 build (the fp16 path alone) has no bf16 MMA: its bf16
     * implicit-GEMM convolutions trap; every other case runs. */
    const int bf16_kernels = zt_cuda_bf16_kernels();
    if (!bf16_kernels) printf("this build has no bf16 MMA kernels (sm_75 code): the bf16 conv cases are skipped\n");

    /* GEMM: odd m/n/k, strided x and y, bias, accumulate, all dtype pairs */
    static const int gs[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 65, 129}, {128, 256, 64}, {257, 96, 320}, {64, 3840, 256}};
    for (size_t i = 0; i < ZT_ARRAY_LEN(gs); i++) {
        const int m = gs[i][0], n = gs[i][1], k = gs[i][2];
        t_gemm(m, n, k, B, B, 0, 0, 0, 0);
        t_gemm(m, n, k, B, B, 1, 0, 8, 3);
        t_gemm(m, n, k, B, B, 1, 1, 3, 0);
        t_gemm(m, n, k, B, F, 1, 0, 0, 5);
        t_gemm(m, n, k, B, F, 0, 1, 0, 0);
        t_gemm(m, n, k, F, F, 1, 0, 0, 0);
        t_gemm(m, n, k, F, F, 1, 1, 4, 7);
    }
    t_gemm(100, 384, 3840, B, B, 1, 0, 0, 0);
    t_gemm_mixed();

    /* norms: whole rows, per-head inside a fused QKV row, odd dims */
    for (int d = 0; d < 2; d++) {
        const zt_dtype dt = d ? F : B;
        t_norm(T_RMS, 1, 1, 1, dt, dt, 1, 0, 0, 0, 0, 0);
        t_norm(T_RMS, 5, 1, 37, dt, dt, 1, 0, 0, 3, 1, 0);
        t_norm(T_RMS, 13, 1, 3840, dt, dt, 1, 1, 0, 0, 0, 0);
        t_norm(T_RMS, 64, 30, 128, dt, dt, 1, 0, 0, 2 * 3840, 3840, 0); /* q/k norm in a [S, 3*3840] row */
        t_norm(T_RMS, 9, 1, 2560, dt, dt, 1, 0, 0, 0, 0, 1);
        t_norm(T_RMS, 7, 3, 100, dt, dt, 0, 1, 0, 5, 0, 0);
        t_norm(T_RMS, 3, 1, 12000, dt, dt, 1, 1, 0, 0, 0, 0);
        t_norm(T_LAYER, 11, 1, 3840, dt, dt, 0, 1, 0, 0, 0, 0);
        t_norm(T_LAYER, 6, 1, 77, dt, dt, 0, 0, 0, 1, 2, 0);
        t_norm(T_LAYER, 4, 1, 3840, dt, dt, 0, 1, 0, 0, 0, 1);
        t_norm(T_GATE, 13, 1, 3840, dt, dt, 1, 0, 1, 0, 0, 0);
        t_norm(T_GATE, 5, 1, 3840, dt, dt, 1, 0, 0, 8, 16, 0);
        t_norm(T_GATE, 7, 1, 45, dt, dt, 1, 0, 1, 1, 3, 0);
        /* per-head rows of every head size the launch variants group as
         * whole rows (8..256), aligned or not, in place; longer rows of each
         * group size */
        t_norm(T_RMS, 5, 32, 128, dt, dt, 1, 0, 0, 0, 0, 0); /* Qwen3 q heads */
        t_norm(T_RMS, 6, 8, 128, dt, dt, 1, 1, 0, 3 * 128, 0, 0);
        t_norm(T_RMS, 16, 30, 128, dt, dt, 1, 0, 0, 2 * 3840, 0, 1); /* q/k norm in place */
        t_norm(T_RMS, 5, 4, 64, dt, dt, 1, 1, 0, 1, 3, 0);
        t_norm(T_RMS, 3, 20, 16, dt, dt, 1, 0, 0, 0, 0, 0);
        t_norm(T_RMS, 5, 3, 256, dt, dt, 1, 0, 0, 8, 0, 0);
        t_norm(T_RMS, 4, 40, 8, dt, dt, 1, 0, 0, 0, 0, 0);
        t_norm(T_LAYER, 3, 4, 64, dt, dt, 0, 1, 0, 0, 0, 0);
        t_norm(T_RMS, 3, 1, 5000, dt, dt, 1, 1, 0, 0, 0, 0);
        t_norm(T_LAYER, 2, 1, 8192, dt, dt, 0, 1, 0, 0, 0, 0);
        t_norm(T_GATE, 3, 1, 1100, dt, dt, 1, 0, 1, 0, 0, 0);
    }
    t_norm(T_RMS, 9, 1, 3840, B, F, 1, 1, 0, 0, 0, 0);
    t_norm(T_RMS, 9, 2, 64, F, B, 1, 0, 0, 0, 0, 0);
    t_norm(T_LAYER, 9, 1, 3840, B, F, 0, 1, 0, 0, 0, 0);

    /* GroupNorm (VAE shapes scaled down, odd channel counts, shifted mean) */
    for (int d = 0; d < 2; d++) {
        const zt_dtype dt = d ? F : B;
        t_groupnorm(64, 128, 32, dt, dt, 1, 0.0, 0);
        t_groupnorm(1000, 512, 32, dt, dt, 0, 0.0, 0);
        t_groupnorm(4096, 256, 32, dt, F, 1, 0.0, 1);
        t_groupnorm(37, 96, 32, dt, B, 1, 0.0, 0);
        t_groupnorm(13, 40, 8, dt, dt, 0, 0.0, 0);
        t_groupnorm(11, 36, 4, dt, dt, 1, 0.0, 0);
        t_groupnorm(3000, 128, 32, dt, dt, 1, 30.0, 0);
    }

    /* elementwise: vector and scalar paths, in place */
    static const size_t ns[] = {1, 7, 1000, 4099, 65536};
    for (int kind = 0; kind <= E_ADD_SCALED; kind++)
        for (size_t i = 0; i < ZT_ARRAY_LEN(ns); i++)
            for (int d = 0; d < 2; d++) {
                t_elementwise(kind, ns[i], d ? F : B, 0, 0);
                if (i == 3) t_elementwise(kind, ns[i], d ? F : B, 1, 0);
                if (i == 4) t_elementwise(kind, ns[i], d ? F : B, 0, 1);
            }
    static const zt_dtype cx[] = {ZT_DT_F32, ZT_DT_BF16, ZT_DT_F16};
    for (size_t i = 0; i < 3; i++)
        for (int d = 0; d < 2; d++) {
            t_convert(4099, cx[i], d ? F : B, 0);
            t_convert(65536, cx[i], d ? F : B, 0);
            t_convert(999, cx[i], d ? F : B, 1);
        }
    for (int d = 0; d < 2; d++) {
        const zt_dtype dt = d ? F : B;
        t_swiglu(3, 8, 0, 0, dt);
        t_swiglu(5, 37, 6, 3, dt);
        t_swiglu(17, 1024, 0, 0, dt);
        t_swiglu(4, 10240, 16, 8, dt);
    }

    /* RoPE: the DiT's q/k inside a fused QKV row, Qwen3 heads, odd head dims */
    for (int d = 0; d < 2; d++) {
        const zt_dtype dt = d ? F : B;
        t_rope(0, 5, 30, 128, 2 * 3840, dt);
        t_rope(0, 7, 4, 64, 0, dt);
        t_rope(0, 3, 2, 6, 1, dt);
        t_rope(1, 5, 32, 128, 8 * 128, dt);
        t_rope(1, 4, 8, 128, 0, dt);
        t_rope(1, 3, 2, 6, 3, dt);
    }

    /* Z-Image specifics */
    for (int d = 0; d < 2; d++) {
        const zt_dtype dt = d ? F : B;
        t_timestep(45.4545898f, 128, dt);
        t_timestep(999.0f, 128, dt);
        t_timestep(3.0f, 5, dt);
        t_patchify(16, 8, 12, 2, dt, 0);
        t_patchify(16, 128, 128, 2, dt, 64);
        t_patchify(3, 6, 9, 3, dt, 1);
    }
    /* The fp16 path (issue 21): every op the text encoder and the DiT run with
     * f16 activations, f16 weights and the f32 residual / sub-layer outputs */
    {
        const zt_dtype H = ZT_DT_F16;
        for (size_t i = 0; i < ZT_ARRAY_LEN(gs); i++) {
            const int m = gs[i][0], n = gs[i][1], k = gs[i][2];
            t_gemm(m, n, k, H, H, 0, 0, 0, 0);
            t_gemm(m, n, k, H, H, 1, 0, 8, 3);
            t_gemm(m, n, k, H, F, 1, 0, 0, 5); /* f16 bias on an f32 output: the separate bias kernel */
            t_gemm(m, n, k, H, F, 0, 1, 0, 0);
        }
        t_gemm_scaled(257, 96, 320, 32.0f); /* the down-projection undoing the SwiGLU's 1/32 */
        t_gemm_scaled(64, 3840, 256, 32.0f);
        /* norms: DiT rows (3840) from the f32 residual, per-head q/k in place, the caption norm,
         * the final LayerNorm, gate_add into the f32 residual (and the unguarded f16 one) */
        t_norm16(T_RMS, 37, 1, 3840, F, 1, 0, 0, 0, 0);
        t_norm16(T_RMS, 5, 1, 2560, F, 0, 0, 0, 4, 0);
        t_norm16(T_RMS, 7, 30, 128, H, 0, 0, 0, 3 * 3840, 1);
        t_norm16(T_RMS, 9, 8, 128, H, 0, 0, 0, 0, 1);
        t_norm16(T_RMS, 3, 3, 6, H, 1, 0, 0, 1, 0);
        t_norm16(T_LAYER, 33, 1, 3840, F, 1, 0, 0, 0, 0);
        t_norm16(T_LAYER, 4, 1, 70, H, 0, 0, 0, 2, 0);
        t_norm16(T_GATE, 37, 1, 3840, F, 0, 1, 1, 0, 0);
        t_norm16(T_GATE, 6, 1, 2560, F, 0, 0, 1, 0, 0);
        t_norm16(T_GATE, 5, 1, 3840, H, 0, 1, 0, 0, 0);
        t_norm16(T_GATE, 3, 1, 37, F, 0, 1, 1, 5, 0);
        for (int kind = 0; kind < 4; kind++) {
            t_elementwise(kind, 4099, H, 0, 0);
            t_elementwise(kind, 999, H, 1, 0);
            t_elementwise(kind, 65536, H, 0, 1);
        }
        t_convert(4099, H, F, 0);
        t_convert(999, F, H, 1);
        t_convert(65536, ZT_DT_BF16, H, 0);
        t_convert(1001, H, ZT_DT_BF16, 0);
        t_swiglu(3, 8, 0, 0, H);
        t_swiglu(5, 37, 6, 3, H);
        t_swiglu(4, 10240, 16, 8, H);
        t_swiglu_big(17, 1024, 0, 0, H, 3000.0f);
        t_swiglu_big(5, 37, 6, 3, H, 3000.0f);
        t_rope(0, 5, 30, 128, 2 * 3840, H);
        t_rope(0, 3, 2, 6, 1, H);
        t_rope(1, 5, 32, 128, 8 * 128, H);
        t_rope(1, 3, 2, 6, 3, H);
        t_timestep(45.4545898f, 128, H);
        t_timestep(3.0f, 5, H);
        t_patchify(16, 8, 12, 2, H, 0);
        t_patchify(3, 6, 9, 3, H, 1);
    }
    t_euler(1, -0.0836f, 0);
    t_euler(1001, -0.0836f, 1);
    t_euler(16 * 128 * 128, -0.2105f, 0);

    /* VAE */
    for (int d = 0; d < 2; d++) {
        const zt_dtype dt = d ? F : B;
        t_vae_input(16, 5, 7, dt);
        t_vae_input(16, 32, 32, dt);
        t_upsample(3, 5, 128, dt);
        t_upsample(4, 3, 3, dt);
        t_upsample(2, 5, 2, dt);
        t_upsample(16, 16, 512, dt);
        t_to_rgb8(5, 7, dt);
        t_to_rgb8(64, 48, dt);
        t_vae_posterior(16, 5, 7, dt);
        t_flow_mix(16, 35, d ? 0.6f : 1.0f, d);
        t_flow_mix(16, 128 * 96, d ? 0.0f : 0.3f, !d);
        t_vae_posterior(16, 64, 64, dt);
        /* stride 2 (the encoder's downsamplers: im2col + cuBLASLt on both paths) */
        t_conv_s(8, 10, 5, 5, 3, dt, 1, 0, 0, 2);
        t_conv_s(14, 6, 40, 40, 3, dt, 1, 1, 0, 2);
        t_conv_s(2, 2, 16, 7, 3, dt, 1, 0, 0, 2);
        t_conv_s(64, 48, 128, 128, 3, dt, 1, 0, 0, 2);
        t_conv_s(32, 32, 512, 512, 3, dt, 1, 0, 0, 2);
    }
    /* conv2d: implicit GEMM (bf16, cin % 8 == 0): both tile shapes, odd pixel
     * counts, cout not a multiple of the tile, 1x1; im2col + cuBLASLt: f32 and
     * cin % 8 != 0. */
    if (bf16_kernels) {
        t_conv(8, 8, 32, 32, 3, B, 1, 0, 0);
        t_conv(5, 7, 16, 24, 3, B, 1, 1, 0);
        t_conv(9, 13, 64, 130, 3, B, 1, 1, 0);
        t_conv(16, 16, 128, 3, 3, B, 1, 0, 0);
        t_conv(6, 10, 40, 128, 1, B, 1, 1, 0);
        t_conv(33, 17, 128, 256, 3, B, 1, 1, 0);
        t_conv(32, 32, 512, 512, 3, B, 1, 0, 0);
        t_conv(64, 64, 128, 128, 3, B, 1, 1, 0);
        t_conv(7, 9, 16, 16, 3, B, 0, 0, 0);
        /* every tile variant, odd sizes and K tails; 8-11 (wgmma, Hopper built for
         * sm_90a) where cin % 64 == 0 and cout fills the block, else they run as 5 */
        for (int v = 1; v <= 11; v++) {
            t_conv(9, 13, 64, 130, 3, B, 1, 1, v);
            t_conv(11, 7, 24, 72, 3, B, 0, 1, v);
            t_conv(6, 10, 40, 128, 1, B, 1, 0, v);
            t_conv(19, 23, 256, 128, 3, B, 1, 1, v);
            t_conv(21, 17, 512, 264, 3, B, 1, 1, v); /* more than one 256-wide N block, M tail */
            t_conv(21, 17, 512, 256, 3, B, 1, 1, v);
            t_conv(5, 300, 64, 512, 3, B, 0, 1, v);  /* rows wider than a tile, two N blocks */
            t_conv(6, 10, 128, 256, 1, B, 1, 0, v);
            t_conv(3, 3, 192, 128, 3, B, 1, 0, v);   /* one tile, mostly padding */
        }
    }
    t_conv(5, 6, 3, 7, 3, B, 1, 1, 0); /* cin % 8 != 0: im2col + cuBLASLt, no MMA */
    t_conv(7, 9, 16, 24, 3, F, 1, 1, 0);
    t_conv(8, 8, 32, 16, 1, F, 1, 0, 0);
    t_conv(5, 6, 3, 7, 3, F, 1, 0, 0);
    t_conv(24, 20, 64, 64, 3, F, 1, 1, 0);

    zt_ops_destroy(g_gpu);
    zt_ops_destroy(g_cpu);

    printf("\n| op | cases | failed | worst rel L2 (bf16 path) | worst rel L2 (f32 path) | worst element (bf16 ulps, "
           "bound) | worst element (f32, fraction of the bound) |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < g_nstats; i++) {
        char b1[32], b2[32];
        if (g_stats[i].worst_bf16 < 0) snprintf(b1, sizeof b1, "-");
        else snprintf(b1, sizeof b1, "%.2e", g_stats[i].worst_bf16);
        if (g_stats[i].worst_f32 < 0) snprintf(b2, sizeof b2, "-");
        else snprintf(b2, sizeof b2, "%.2e", g_stats[i].worst_f32);
        printf("| %s | %d | %d | %s | %s | %.1f (%.0f) | %.2f |\n", g_stats[i].op, g_stats[i].cases, g_stats[i].failed, b1,
               b2, g_stats[i].worst_ulps, bound_of(g_stats[i].op).ulps, g_stats[i].worst_f32_elem);
    }
    return zt_test_finish("test_ops_cuda");
}
