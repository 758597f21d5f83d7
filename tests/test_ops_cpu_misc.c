/* tests/test_ops_cpu_misc.c — the CPU backend's non-matmul ops (norms,
 * elementwise, RoPE, Z-Image specifics, VAE helpers) against independent
 * double-precision references with the op's rounding points, and the oracle
 * values quoted in the spec (/work/shared/spec/z-image-turbo.md §3.2 / §9.2
 * timestep sinusoid, §6.3 / §6.5 Euler schedule and sanity vectors, §7.1 VAE
 * input scaling). Outputs are poisoned first; strided views must keep their
 * gap columns. See tests/test_ops_cpu.h for how bf16 outputs are judged. */
#include "tests/test_ops_cpu.h"

static zt_ops *ops3, *ops1; /* 3 worker threads / 1 thread */

static double ref_silu(double x) { return x / (1.0 + exp(-x)); }

/* ---- RMSNorm / LayerNorm / sandwich residual -------------------------------- */

typedef struct {
    int rows, heads, dim;
    zt_dtype xdt, ydt;
    int weight, scale, layer, inplace, gate_add, gate;
    int ldx_pad, ldy_pad;
    float eps;
} norm_case;

static void test_norm(zt_rng *rng, norm_case nc) {
    char what[200];
    snprintf(what, sizeof what, "%s rows%d heads%d dim%d x%s y%s w%d s%d%s%s ldx+%d ldy+%d",
             nc.gate_add ? "rmsnorm_gate_add" : nc.layer ? "layernorm" : "rmsnorm", nc.rows, nc.heads, nc.dim,
             tt_dt(nc.xdt), tt_dt(nc.ydt), nc.weight, nc.scale, nc.inplace ? " inplace" : "",
             nc.gate_add ? (nc.gate ? " gate" : " nogate") : "", nc.ldx_pad, nc.ldy_pad);
    const int width = nc.heads * nc.dim;
    const int64_t ldx = width + nc.ldx_pad, ldy = nc.inplace ? ldx : width + nc.ldy_pad;
    const size_t yes = zt_dtype_size(nc.ydt), ysz = (size_t)nc.rows * ldy * yes;
    tt_tensor x, w, s, gt, res;
    tt_random(&x, (size_t)nc.rows * ldx, nc.xdt, rng, 0.3, 1.5);
    tt_random(&w, (size_t)nc.dim, ZT_DT_BF16, rng, 1.0, 0.3);
    tt_random(&s, (size_t)width, nc.ydt, rng, 1.0, 0.3);
    tt_random(&gt, (size_t)width, nc.ydt, rng, 0.0, 0.6);
    tt_random(&res, (size_t)nc.rows * ldy, nc.ydt, rng, 0.0, 2.0);
    for (int r = 0; r < nc.rows; r++) /* gap columns of the output (or residual) */
        tt_poison((char *)res.p + ((size_t)r * ldy + width) * yes, (size_t)(ldy - width) * yes);
    double *ref = malloc(sizeof(double) * nc.rows * width), tmax = 0;
    const double eps = nc.eps;
#define RND(v) (nc.ydt == ZT_DT_BF16 ? ref_bf16(v) : (v))
    for (int r = 0; r < nc.rows; r++)
        for (int h = 0; h < nc.heads; h++) {
            const double *xv = x.v + r * ldx + h * nc.dim;
            double mean = 0, var = 0, ms = 0;
            for (int j = 0; j < nc.dim; j++) mean += xv[j];
            mean /= nc.dim;
            for (int j = 0; j < nc.dim; j++) {
                var += (xv[j] - mean) * (xv[j] - mean);
                ms += xv[j] * xv[j];
            }
            var /= nc.dim;
            ms /= nc.dim;
            for (int j = 0; j < nc.dim; j++) {
                double t = nc.layer ? RND((xv[j] - mean) / sqrt(var + eps)) : RND(xv[j] / sqrt(ms + eps));
                if (nc.weight) t = RND(t * w.v[j]);
                if (nc.scale) t = RND(t * s.v[h * nc.dim + j]);
                const size_t i = (size_t)r * width + h * nc.dim + j;
                if (nc.gate_add) {
                    if (nc.gate) t = RND(gt.v[h * nc.dim + j] * t);
                    tmax = fmax(tmax, fabs(t));
                    t = RND(res.v[(size_t)r * ldy + h * nc.dim + j] + t);
                }
                ref[i] = t;
            }
        }
#undef RND
    void *y = malloc(ysz + 1);
    if (nc.gate_add) memcpy(y, res.p, ysz);
    else tt_poison(y, ysz);
    if (nc.inplace) { /* x itself, with poisoned gaps, is the output */
        for (int r = 0; r < nc.rows; r++)
            tt_poison((char *)x.p + ((size_t)r * ldx + width) * yes, (size_t)(ldx - width) * yes);
    }
    zt_norm n = {.rows = nc.rows, .heads = nc.heads, .dim = nc.dim, .x = x.p, .x_dt = nc.xdt, .ldx = ldx,
                 .weight = nc.weight ? w.p : NULL, .scale = nc.scale ? s.p : NULL, .eps = nc.eps,
                 .y = nc.inplace ? x.p : y, .y_dt = nc.ydt, .ldy = ldy};
    void *out = nc.inplace ? x.p : y;
    if (nc.gate_add) zt_op_rmsnorm_gate_add(ops3, &n, nc.gate ? gt.p : NULL, y, ldy);
    else if (nc.layer) zt_op_layernorm(ops3, &n);
    else zt_op_rmsnorm(ops3, &n);
    /* bf16: up to three roundings; one flipped intermediate is 1 ulp of it.
     * It can cross a binade (and be scaled by a weight ~2): 4 ulps of the
     * result. Residual add: a flipped t is 1 ulp of t, many ulps of a sum
     * near 0. */
    const double abs_tol = nc.gate_add ? ref_bf16_ulp(tmax) : 0.0;
    TT_COMPARE(what, out, nc.ydt, nc.rows, width, ldy, ref, 4.0, abs_tol);
    ZT_CHECK(tt_gaps_untouched(out, nc.rows, width, ldy, yes), "%s: gap columns written", what);
    free(ref);
    free(y);
    tt_free(&x);
    tt_free(&w);
    tt_free(&s);
    tt_free(&gt);
    tt_free(&res);
}

static void test_norms(zt_rng *rng) {
    const zt_dtype dts[2] = {ZT_DT_BF16, ZT_DT_F32};
    for (int d = 0; d < 2; d++) {
        const zt_dtype dt = dts[d];
        /* block norm with weight; per-head QK norm inside a fused row; adaLN scale */
        test_norm(rng, (norm_case){.rows = 7, .heads = 1, .dim = 200, .xdt = dt, .ydt = dt, .weight = 1, .eps = 1e-5f});
        test_norm(rng, (norm_case){.rows = 9, .heads = 3, .dim = 64, .xdt = dt, .ydt = dt, .weight = 1, .eps = 1e-6f,
                                   .ldx_pad = 64 * 6 + 5, .ldy_pad = 7});
        test_norm(rng, (norm_case){.rows = 9, .heads = 3, .dim = 64, .xdt = dt, .ydt = dt, .weight = 1, .eps = 1e-6f,
                                   .ldx_pad = 11, .inplace = 1});
        test_norm(rng, (norm_case){.rows = 5, .heads = 1, .dim = 131, .xdt = dt, .ydt = dt, .weight = 1, .scale = 1,
                                   .eps = 1e-5f, .ldy_pad = 3});
        test_norm(rng, (norm_case){.rows = 5, .heads = 2, .dim = 64, .xdt = dt, .ydt = dt, .scale = 1, .eps = 1e-5f});
        test_norm(rng, (norm_case){.rows = 3000, .heads = 1, .dim = 96, .xdt = dt, .ydt = dt, .weight = 1, .eps = 1e-5f});
        /* final layer: LayerNorm without affine, then the scale */
        test_norm(rng, (norm_case){.rows = 6, .heads = 1, .dim = 200, .xdt = dt, .ydt = dt, .layer = 1, .scale = 1,
                                   .eps = 1e-6f, .ldx_pad = 4, .ldy_pad = 6});
        test_norm(rng, (norm_case){.rows = 6, .heads = 2, .dim = 40, .xdt = dt, .ydt = dt, .layer = 1, .eps = 1e-6f,
                                   .inplace = 1, .ldx_pad = 2});
        /* sandwich residual, with and without gate */
        test_norm(rng, (norm_case){.rows = 7, .heads = 1, .dim = 96, .xdt = dt, .ydt = dt, .weight = 1, .gate_add = 1,
                                   .gate = 1, .eps = 1e-5f, .ldx_pad = 5, .ldy_pad = 3});
        test_norm(rng, (norm_case){.rows = 7, .heads = 1, .dim = 96, .xdt = dt, .ydt = dt, .weight = 1, .gate_add = 1,
                                   .eps = 1e-5f, .ldy_pad = 2});
    }
    /* mixed: bf16 input, f32 output (f32 path: no intermediate rounding) */
    test_norm(rng, (norm_case){.rows = 4, .heads = 1, .dim = 77, .xdt = ZT_DT_BF16, .ydt = ZT_DT_F32, .weight = 1,
                               .scale = 1, .eps = 1e-5f});
}

/* ---- GroupNorm ---------------------------------------------------------------- */

static void test_groupnorm(zt_rng *rng, int h, int w, int c, int groups, zt_dtype dt, zt_dtype gbdt, int silu,
                           int inplace) {
    char what[160];
    snprintf(what, sizeof what, "groupnorm %dx%d c%d g%d %s gb%s silu%d%s", h, w, c, groups, tt_dt(dt), tt_dt(gbdt),
             silu, inplace ? " inplace" : "");
    const size_t hw = (size_t)h * w, es = zt_dtype_size(dt), sz = hw * c * es;
    tt_tensor x, gm, bt;
    tt_random(&x, hw * c, dt, rng, 0.7, 2.0);
    tt_random(&gm, (size_t)c, gbdt, rng, 1.0, 0.3);
    tt_random(&bt, (size_t)c, gbdt, rng, 0.0, 0.5);
    const int cg = c / groups;
    double *ref = malloc(sizeof(double) * hw * c);
    for (int g = 0; g < groups; g++) {
        double mean = 0, var = 0;
        for (size_t p = 0; p < hw; p++)
            for (int ch = g * cg; ch < (g + 1) * cg; ch++) mean += x.v[p * c + ch];
        mean /= (double)hw * cg;
        for (size_t p = 0; p < hw; p++)
            for (int ch = g * cg; ch < (g + 1) * cg; ch++) var += (x.v[p * c + ch] - mean) * (x.v[p * c + ch] - mean);
        var /= (double)hw * cg;
        for (size_t p = 0; p < hw; p++)
            for (int ch = g * cg; ch < (g + 1) * cg; ch++) {
                double v = (x.v[p * c + ch] - mean) / sqrt(var + (double)1e-6f) * gm.v[ch] + bt.v[ch];
                ref[p * c + ch] = silu ? ref_silu(v) : v;
            }
    }
    void *y = malloc(sz + 1), *y1 = malloc(sz + 1);
    void *xcopy = malloc(sz + 1);
    memcpy(xcopy, x.p, sz);
    tt_poison(y, sz);
    tt_poison(y1, sz);
    zt_groupnorm g = {.hw = (int)hw, .c = c, .groups = groups, .x = x.p, .y = inplace ? x.p : y, .dt = dt,
                      .gamma = gm.p, .beta = bt.p, .gb_dt = gbdt, .eps = 1e-6f, .silu = silu};
    const size_t wsz = zt_groupnorm_workspace_size(ops3, &g);
    uint8_t *ws = malloc(wsz + 64);
    tt_poison(ws, wsz + 64);
    zt_op_groupnorm(ops3, &g, ws);
    const void *out = inplace ? x.p : y;
    /* one rounding of an f32 chain: (x - mean)*rstd*gamma + beta cancels near 0 */
    TT_COMPARE(what, out, dt, hw, c, c, ref, 1.0, 1e-5);
    ZT_CHECK(tt_untouched(ws + wsz, 64), "%s: wrote past the workspace", what);
    g.x = xcopy;
    g.y = y1;
    zt_op_groupnorm(ops1, &g, ws);
    ZT_CHECK(memcmp(out, y1, sz) == 0, "%s: 1-thread and 3-thread results differ", what);
    free(ws);
    free(ref);
    free(y);
    free(y1);
    free(xcopy);
    tt_free(&x);
    tt_free(&gm);
    tt_free(&bt);
}

static void test_groupnorms(zt_rng *rng) {
    const zt_dtype dts[2] = {ZT_DT_BF16, ZT_DT_F32};
    for (int d = 0; d < 2; d++)
        for (int silu = 0; silu < 2; silu++) {
            test_groupnorm(rng, 7, 9, 64, 32, dts[d], dts[d], silu, 0);
            test_groupnorm(rng, 7, 9, 32, 32, dts[d], dts[d], silu, 1);
        }
    test_groupnorm(rng, 7, 9, 64, 32, ZT_DT_F32, ZT_DT_BF16, 1, 0); /* f32 math with bf16 affine weights */
    test_groupnorm(rng, 1, 1, 64, 32, ZT_DT_BF16, ZT_DT_BF16, 0, 0); /* one pixel: 2 values per group */
    test_groupnorm(rng, 60, 70, 96, 32, ZT_DT_BF16, ZT_DT_BF16, 1, 0); /* threaded */
}

/* ---- elementwise --------------------------------------------------------------- */

typedef enum { EW_ADD, EW_SILU, EW_ONE_PLUS, EW_TANH } ew_op;

static void test_elementwise(zt_rng *rng, ew_op op, size_t n, zt_dtype dt, int inplace) {
    static const char *names[] = {"add", "silu", "one_plus", "tanh"};
    char what[120];
    snprintf(what, sizeof what, "%s n%zu %s%s", names[op], n, tt_dt(dt), inplace ? " inplace" : "");
    const size_t sz = n * zt_dtype_size(dt);
    tt_tensor a, b;
    tt_random(&a, n, dt, rng, 0.0, 3.0);
    tt_random(&b, n, dt, rng, 0.0, 3.0);
    double *ref = malloc(sizeof(double) * n), abs_tol = 0;
    for (size_t i = 0; i < n; i++) {
        const double x = a.v[i];
        ref[i] = op == EW_ADD ? x + b.v[i] : op == EW_SILU ? ref_silu(x) : op == EW_ONE_PLUS ? 1.0 + x : tanh(x);
    }
    if (op == EW_SILU) abs_tol = 1e-7; /* silu of large negative x: tiny values, f32 libm */
    void *y = inplace ? a.p : malloc(sz + 1);
    if (!inplace) tt_poison(y, sz);
    switch (op) {
    case EW_ADD: zt_op_add(ops3, n, a.p, b.p, y, dt); break;
    case EW_SILU: zt_op_silu(ops3, n, a.p, y, dt); break;
    case EW_ONE_PLUS: zt_op_one_plus(ops3, n, a.p, y, dt); break;
    case EW_TANH: zt_op_tanh(ops3, n, a.p, y, dt); break;
    }
    TT_COMPARE(what, y, dt, 1, n, n, ref, 1.0, abs_tol);
    if (!inplace) free(y);
    free(ref);
    tt_free(&a);
    tt_free(&b);
}

/* f16 bits -> value, independently of common/zt_dtype.h */
static double ref_f16(uint16_t h) {
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void test_convert(zt_rng *rng) {
    /* f32 -> bf16: random values, exact ties (both parities), just-above and
     * just-below ties, infinities and NaN */
    enum { N = 4096 };
    static float f[N];
    static uint16_t got[N];
    for (int i = 0; i < N; i++) {
        const uint32_t hi = (uint32_t)(zt_rng_u64(rng) & 0x7f7f) | (i & 1 ? 0x8000u : 0);
        switch (i % 4) {
        case 0: f[i] = (float)(zt_rng_normal(rng) * 10.0); break;
        case 1: f[i] = zt_bits_f32((hi << 16) | 0x8000u); break; /* tie */
        case 2: f[i] = zt_bits_f32((hi << 16) | 0x8001u); break;
        default: f[i] = zt_bits_f32((hi << 16) | 0x7fffu); break;
        }
    }
    f[0] = INFINITY;
    f[4] = -INFINITY;
    f[8] = NAN;
    tt_poison(got, sizeof got);
    zt_op_convert(ops3, N, f, ZT_DT_F32, got, ZT_DT_BF16);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        const double g = zt_bf16_to_f32(got[i]), e = isfinite(f[i]) ? ref_bf16(f[i]) : f[i];
        if (!(g == e || (isnan(g) && isnan(e)))) bad++;
    }
    ZT_CHECK(bad == 0, "convert f32->bf16: %d of %d elements not rounded to nearest even", bad, N);
    /* bf16 -> f32 (exact) and bf16 -> bf16 (copy) over all finite patterns */
    static uint16_t hb[65536], hb2[65536];
    static float out[65536];
    for (int i = 0; i < 65536; i++) hb[i] = (uint16_t)i;
    tt_poison(out, sizeof out);
    tt_poison(hb2, sizeof hb2);
    zt_op_convert(ops3, 65536, hb, ZT_DT_BF16, out, ZT_DT_F32);
    zt_op_convert(ops3, 65536, hb, ZT_DT_BF16, hb2, ZT_DT_BF16);
    bad = 0;
    for (int i = 0; i < 65536; i++) {
        const uint32_t u = zt_f32_bits(out[i]);
        if (u != ((uint32_t)i << 16)) bad++;
        if (hb2[i] != hb[i]) bad++;
    }
    ZT_CHECK(bad == 0, "convert bf16->f32 / bf16->bf16: %d wrong", bad);
    /* f16 -> f32 (exact) and f16 -> bf16 (nearest even) over all patterns */
    static uint16_t ob[65536];
    tt_poison(out, sizeof out);
    tt_poison(ob, sizeof ob);
    zt_op_convert(ops3, 65536, hb, ZT_DT_F16, out, ZT_DT_F32);
    zt_op_convert(ops3, 65536, hb, ZT_DT_F16, ob, ZT_DT_BF16);
    bad = 0;
    for (int i = 0; i < 65536; i++) {
        const double e = ref_f16((uint16_t)i), eb = isfinite(e) ? ref_bf16(e) : e, g = out[i], gb = zt_bf16_to_f32(ob[i]);
        if (isnan(e) ? !isnan(g) || !isnan(gb) : (g != e || gb != eb)) bad++;
    }
    ZT_CHECK(bad == 0, "convert f16->f32 / f16->bf16: %d wrong", bad);
    /* f32 -> f32 copy */
    float cp[N];
    tt_poison(cp, sizeof cp);
    zt_op_convert(ops3, N, f, ZT_DT_F32, cp, ZT_DT_F32);
    ZT_CHECK(memcmp(cp, f, sizeof cp) == 0, "convert f32->f32 is not a copy");
}

static void test_swiglu(zt_rng *rng, int rows, int ff, int in_pad, int out_pad, zt_dtype dt) {
    char what[120];
    snprintf(what, sizeof what, "swiglu rows%d ff%d %s ld_in+%d ld_out+%d", rows, ff, tt_dt(dt), in_pad, out_pad);
    const int64_t ld_in = 2 * ff + in_pad, ld_out = ff + out_pad;
    const size_t es = zt_dtype_size(dt), osz = (size_t)rows * ld_out * es;
    tt_tensor in;
    tt_random(&in, (size_t)rows * ld_in, dt, rng, 0.0, 2.0);
    double *ref = malloc(sizeof(double) * rows * ff);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < ff; c++) {
            const double g = in.v[r * ld_in + c], u = in.v[r * ld_in + ff + c];
            ref[(size_t)r * ff + c] = ref_round(ref_round(ref_silu(g), dt) * u, dt);
        }
    void *out = malloc(osz + 1);
    tt_poison(out, osz);
    zt_op_swiglu(ops3, rows, ff, in.p, ld_in, out, ld_out, dt);
    TT_COMPARE(what, out, dt, rows, ff, ld_out, ref, 2.0, 1e-7);
    ZT_CHECK(tt_gaps_untouched(out, rows, ff, ld_out, es), "%s: gap columns written", what);
    free(out);
    free(ref);
    tt_free(&in);
}

/* y = a + rnd(b * s): exact (the scaled b rounded to dt before the add, as
 * torch's `hint * scale`, then the sum rounded once). */
static void test_add_scaled(zt_rng *rng, size_t n, zt_dtype dt, float s, int inplace) {
    char what[120];
    snprintf(what, sizeof what, "add_scaled n%zu %s s%g%s", n, tt_dt(dt), s, inplace ? " inplace" : "");
    const size_t sz = n * zt_dtype_size(dt);
    tt_tensor a, b;
    tt_random(&a, n, dt, rng, 0.0, 3.0);
    tt_random(&b, n, dt, rng, 0.0, 3.0);
    double *ref = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) {
        const double hs = ref_round((double)(float)(b.v[i] * (double)s), dt);
        ref[i] = ref_round((double)(float)(a.v[i] + hs), dt);
    }
    void *y = inplace ? a.p : malloc(sz + 1);
    if (!inplace) tt_poison(y, sz);
    zt_op_add_scaled(ops3, n, a.p, b.p, s, y, dt);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) off += tt_get(y, dt, i) != ref[i];
    ZT_CHECK(off == 0, "%s: %zu of %zu values differ from a + rnd(b * s)", what, off, n);
    if (!inplace) free(y);
    free(ref);
    tt_free(&a);
    tt_free(&b);
}

static void test_elementwise_all(zt_rng *rng) {
    const zt_dtype dts[2] = {ZT_DT_BF16, ZT_DT_F32};
    for (int d = 0; d < 2; d++) {
        for (int op = EW_ADD; op <= EW_TANH; op++) {
            test_elementwise(rng, op, 1001, dts[d], 0);
            test_elementwise(rng, op, 1001, dts[d], 1);
        }
        test_elementwise(rng, EW_ADD, 300001, dts[d], 0); /* threaded slices */
        test_add_scaled(rng, 1001, dts[d], 0.7f, 0);
        test_add_scaled(rng, 300001, dts[d], 0.35f, 1);
        test_add_scaled(rng, 999, dts[d], 1.0f, 0);
        test_elementwise(rng, EW_SILU, 300001, dts[d], 1);
        test_swiglu(rng, 5, 77, 6, 3, dts[d]);
        test_swiglu(rng, 300, 1000, 0, 0, dts[d]);
    }
    test_convert(rng);
}

/* ---- RoPE ------------------------------------------------------------------------ */

static void test_rope(zt_rng *rng, int half, int rows, int heads, int hd, int ld_pad, zt_dtype dt) {
    char what[120];
    snprintf(what, sizeof what, "rope_%s rows%d heads%d hd%d ldx+%d %s", half ? "half" : "pairs", rows, heads, hd, ld_pad,
             tt_dt(dt));
    const int64_t ldx = (int64_t)heads * hd + ld_pad;
    const size_t es = zt_dtype_size(dt), np = (size_t)hd / 2;
    tt_tensor x, cs;
    tt_random(&x, (size_t)rows * ldx, dt, rng, 0.0, 1.5);
    for (int r = 0; r < rows; r++) tt_poison((char *)x.p + ((size_t)r * ldx + heads * hd) * es, (size_t)ld_pad * es);
    /* cos/sin of angles; the half convention gets them in dt (bf16 tables) */
    tt_alloc(&cs, (size_t)rows * np * 2, half ? dt : ZT_DT_F32);
    for (size_t i = 0; i < (size_t)rows * np; i++) {
        const double ang = zt_rng_uniform(rng) * 200.0;
        tt_set(&cs, 2 * i, cosf((float)ang));
        tt_set(&cs, 2 * i + 1, sinf((float)ang));
    }
    double *ref = malloc(sizeof(double) * rows * heads * hd), abs_tol = 0;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++)
            for (size_t m = 0; m < np; m++) {
                const double c = cs.v[(r * np + m) * 2], s = cs.v[(r * np + m) * 2 + 1];
                double *o = ref + ((size_t)r * heads + h) * hd;
                const double *xv = x.v + r * ldx + (size_t)h * hd;
                if (half) {
                    const double lo = xv[m], hi = xv[m + np];
                    o[m] = ref_round(ref_round(lo * c, dt) - ref_round(hi * s, dt), dt);
                    o[m + np] = ref_round(ref_round(hi * c, dt) + ref_round(lo * s, dt), dt);
                } else {
                    const double a = xv[2 * m], b = xv[2 * m + 1];
                    o[2 * m] = a * c - b * s;
                    o[2 * m + 1] = a * s + b * c;
                    /* f32 products cancel: error ~ f32 ulp of the operands */
                    abs_tol = fmax(abs_tol, 2e-7 * (fabs(a) + fabs(b)));
                }
            }
    if (half) zt_op_rope_half(ops3, rows, heads, hd, x.p, ldx, cs.p, dt);
    else zt_op_rope_pairs(ops3, rows, heads, hd, x.p, ldx, (const float *)cs.p, dt);
    TT_COMPARE(what, x.p, dt, rows, (size_t)heads * hd, ldx, ref, 1.0, abs_tol);
    ZT_CHECK(tt_gaps_untouched(x.p, rows, (size_t)heads * hd, ldx, es), "%s: gap columns written", what);
    free(ref);
    tt_free(&x);
    tt_free(&cs);
}

static void test_ropes(zt_rng *rng) {
    const zt_dtype dts[2] = {ZT_DT_BF16, ZT_DT_F32};
    for (int d = 0; d < 2; d++) {
        test_rope(rng, 0, 7, 3, 64, 10, dts[d]);
        test_rope(rng, 0, 33, 30, 128, 3 * 30 * 128 + 2, dts[d]); /* q inside a fused QKV row */
        test_rope(rng, 1, 5, 2, 128, 0, dts[d]);
        test_rope(rng, 1, 9, 4, 64, 3 * 64, dts[d]);
        test_rope(rng, 0, 2001, 2, 64, 0, dts[d]); /* threaded */
    }
}

/* ---- timestep sinusoid (spec §3.2, oracle values §9.2) --------------------- */

/* Nearest f32 to a printed 9-digit value, then 1 f32 ulp of slack (the spec
 * prints the reference's f32 output). */
static int near_f32(float got, double printed, int ulps) {
    const float e = (float)printed;
    const int64_t d = (int64_t)zt_f32_bits(fabsf(got)) - (int64_t)zt_f32_bits(fabsf(e));
    return (got < 0) == (e < 0) && llabs(d) <= ulps;
}

static void test_timestep(void) {
    /* The test's own reading of the spec formula reproduces the quoted
     * frequencies: freq_i = fl32(exp(fl32(fl32(-ln 1e4) * i) * fl32(1/128))). */
    float freq[128];
    const float neg_ln = (float)-log(10000.0);
    for (int i = 0; i < 128; i++) freq[i] = (float)exp((double)((neg_ln * (float)i) * (1.0f / 128.0f)));
    ZT_CHECK(zt_f32_bits(freq[1]) == 0x3f6e39f8u, "freq_1 = %08x, spec 3f6e39f8", zt_f32_bits(freq[1]));
    ZT_CHECK(zt_f32_bits(freq[127]) == 0x38e15c8eu, "freq_127 = %08x, spec 38e15c8e", zt_f32_bits(freq[127]));

    /* N = 8, step 1: t_model = 0x3d3a2e98, tt = fl32(t * 1000) = 45.4545898 */
    const float tt8 = zt_bits_f32(0x3d3a2e98u) * 1000.0f, tt9 = zt_bits_f32(0x42200001u);
    ZT_CHECK(near_f32(tt8, 45.4545898, 0), "tt = %.9g", tt8);
    float e32[256];
    uint16_t e16[256];
    tt_poison(e32, sizeof e32);
    tt_poison(e16, sizeof e16);
    zt_op_timestep_embed(ops3, tt8, 128, e32, ZT_DT_F32);
    zt_op_timestep_embed(ops3, tt8, 128, e16, ZT_DT_BF16);
    ZT_CHECK(near_f32(e32[1], -0.112491310, 1), "emb[1] = %.9g", e32[1]);
    ZT_CHECK(near_f32(e32[129], -0.993652701, 1), "emb[129] = %.9g", e32[129]);
    ZT_CHECK(near_f32(e32[127], 0.999988079, 1), "emb[127] = %.9g", e32[127]);
    ZT_CHECK(near_f32(e32[255], 0.004884565, 1), "emb[255] = %.9g", e32[255]);
    ZT_CHECK(zt_bf16_to_f32(e16[1]) == -0.1123046875f && zt_bf16_to_f32(e16[129]) == -0.9921875f &&
                 zt_bf16_to_f32(e16[127]) == 1.0f && zt_bf16_to_f32(e16[255]) == 0.0048828125f,
             "bf16 emb N=8: %g %g %g %g", zt_bf16_to_f32(e16[1]), zt_bf16_to_f32(e16[129]), zt_bf16_to_f32(e16[127]),
             zt_bf16_to_f32(e16[255]));
    /* whole vector against the formula in double (cos/sin of the f32 argument) */
    double ref[256];
    for (int i = 0; i < 128; i++) {
        const float arg = tt8 * freq[i];
        ref[i] = cos((double)arg);
        ref[128 + i] = sin((double)arg);
    }
    TT_COMPARE("timestep_embed tt 45.45 F32", e32, ZT_DT_F32, 1, 256, 256, ref, 1.0, 0.0);
    TT_COMPARE("timestep_embed tt 45.45 BF16", e16, ZT_DT_BF16, 1, 256, 256, ref, 1.0, 1e-6);
    /* N = 9, step 1 (values evaluated in double by the spec: 2 ulps) */
    zt_op_timestep_embed(ops3, tt9, 128, e32, ZT_DT_F32);
    zt_op_timestep_embed(ops3, tt9, 128, e16, ZT_DT_BF16);
    ZT_CHECK(near_f32(e32[1], 0.888731003, 2) && near_f32(e32[129], -0.458429009, 2) &&
                 near_f32(e32[127], 0.999990761, 2) && near_f32(e32[255], 0.004298418, 2),
             "emb N=9: %.9g %.9g %.9g %.9g", e32[1], e32[129], e32[127], e32[255]);
    ZT_CHECK(zt_bf16_to_f32(e16[1]) == 0.890625f && zt_bf16_to_f32(e16[129]) == -0.458984375f &&
                 zt_bf16_to_f32(e16[127]) == 1.0f && zt_bf16_to_f32(e16[255]) == 0.004302978515625f,
             "bf16 emb N=9: %g %g %g %g", zt_bf16_to_f32(e16[1]), zt_bf16_to_f32(e16[129]), zt_bf16_to_f32(e16[127]),
             zt_bf16_to_f32(e16[255]));
    /* t = 0 (step 0): cos 0 = 1, sin 0 = 0 exactly */
    zt_op_timestep_embed(ops3, 0.0f, 128, e32, ZT_DT_F32);
    int ok = 1;
    for (int i = 0; i < 128; i++) ok &= e32[i] == 1.0f && e32[128 + i] == 0.0f;
    ZT_CHECK(ok, "timestep_embed(0) is not [1.., 0..]");
}

/* ---- patchify / unpatchify ------------------------------------------------------ */

static void test_patchify(zt_rng *rng, int c, int hl, int wl, int p, zt_dtype dt) {
    char what[120];
    snprintf(what, sizeof what, "patchify c%d %dx%d p%d %s", c, hl, wl, p, tt_dt(dt));
    const int ht = hl / p, wt = wl / p, feat = p * p * c, ntok = ht * wt, extra_rows = 3, ld_tok = feat + 5;
    const size_t es = zt_dtype_size(dt), n = (size_t)c * hl * wl;
    tt_tensor lat;
    tt_random(&lat, n, ZT_DT_F32, rng, 0.0, 1.0);
    double *ref = malloc(sizeof(double) * n);
    for (int ch = 0; ch < c; ch++) /* walk the latent, place each value */
        for (int y = 0; y < hl; y++)
            for (int x = 0; x < wl; x++) {
                const int tok = (y / p) * wt + x / p, f = ((y % p) * p + x % p) * c + ch;
                ref[(size_t)tok * feat + f] = ref_round(lat.v[((size_t)ch * hl + y) * wl + x], dt);
            }
    void *tok = malloc(n * es + 1);
    tt_poison(tok, n * es);
    zt_op_patchify(ops3, c, hl, wl, p, lat.p, tok, dt);
    TT_COMPARE(what, tok, dt, ntok, feat, feat, ref, 0.0, 0.0);
    /* unpatchify from a strided copy with extra (pad) rows */
    void *tok2 = malloc((size_t)(ntok + extra_rows) * ld_tok * es);
    tt_poison(tok2, (size_t)(ntok + extra_rows) * ld_tok * es);
    for (int r = 0; r < ntok; r++) memcpy((char *)tok2 + (size_t)r * ld_tok * es, (char *)tok + (size_t)r * feat * es, feat * es);
    float *back = malloc(n * sizeof(float));
    tt_poison(back, n * sizeof(float));
    zt_op_unpatchify(ops3, c, hl, wl, p, tok2, ld_tok, back, dt);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += back[i] != (float)ref_round(lat.v[i], dt);
    ZT_CHECK(bad == 0, "un%s: %d elements differ from the latent", what, bad);
    free(ref);
    free(tok);
    free(tok2);
    free(back);
    tt_free(&lat);
}

/* ---- Euler step (spec §6.3 dt values, §6.5 sanity vectors) -------------------- */

static void test_euler(zt_rng *rng) {
    static const uint32_t dt8[8] = {0xbd3a2e90, 0xbd5f6b10, 0xbd888888, 0xbdaaaaa8,
                                    0xbddb6db8, 0xbe124924, 0xbe4ccccc, 0xbe99999a};
    static const uint32_t dt9[9] = {0xbd23d710, 0xbd405570, 0xbd64f810, 0xbd8a9620, 0xbdab31f0,
                                    0xbdd8d8d8, 0xbe0dc8de, 0xbe4157b8, 0xbe8ba2e9};
    const float v[3] = {0.5f, -1.25f, 3.0f};
    static const uint32_t want8[3] = {0x3f000002, 0x40100000, 0xc0000000};
    static const uint32_t want9[3] = {0x3f000001, 0x40100000, 0xc0000000};
    float x[3] = {1, 1, 1}, y[3] = {1, 1, 1};
    const float out[3] = {-v[0], -v[1], -v[2]}; /* the op negates the model output */
    for (int i = 0; i < 8; i++) zt_op_euler_step(ops3, 3, x, out, zt_bits_f32(dt8[i]));
    for (int i = 0; i < 9; i++) zt_op_euler_step(ops3, 3, y, out, zt_bits_f32(dt9[i]));
    for (int j = 0; j < 3; j++) {
        ZT_CHECK(zt_f32_bits(x[j]) == want8[j], "euler N=8 v=%g: %08x, spec %08x", v[j], zt_f32_bits(x[j]), want8[j]);
        ZT_CHECK(zt_f32_bits(y[j]) == want9[j], "euler N=9 v=%g: %08x, spec %08x", v[j], zt_f32_bits(y[j]), want9[j]);
    }
    /* random data: x + fl32(dt * -out), compared bit for bit with the same
     * two f32 operations done here */
    enum { N = 1001 };
    float lat[N], mo[N], want[N];
    for (int i = 0; i < N; i++) {
        lat[i] = (float)zt_rng_normal(rng);
        mo[i] = (float)zt_rng_normal(rng);
        const volatile float step = zt_bits_f32(dt8[3]) * -mo[i];
        want[i] = lat[i] + step;
    }
    zt_op_euler_step(ops3, N, lat, mo, zt_bits_f32(dt8[3]));
    ZT_CHECK(memcmp(lat, want, sizeof lat) == 0, "euler step on random data differs from fl32(x + fl32(dt * v))");
}

/* ---- VAE helpers ------------------------------------------------------------------ */

static void test_vae_input(zt_rng *rng) {
    const float mul = zt_bits_f32(0x40313c79u), add = zt_bits_f32(0x3ded5cfbu); /* fl32(1/0.3611), fl32(0.1159) */
    const float lat[3] = {1.0f, -2.5f, 0.123456f};
    static const uint32_t want[3] = {0x4038a761, 0xc0d9d623, 0x3eea6347};
    float y[3];
    zt_op_vae_input(ops3, 3, 1, 1, lat, mul, add, y, ZT_DT_F32);
    for (int i = 0; i < 3; i++)
        ZT_CHECK(zt_f32_bits(y[i]) == want[i], "vae_input(%g) = %08x, spec %08x", lat[i], zt_f32_bits(y[i]), want[i]);
    /* CHW -> NHWC on random data, both dtypes */
    const int c = 16, h = 5, w = 7;
    tt_tensor l;
    tt_random(&l, (size_t)c * h * w, ZT_DT_F32, rng, 0.0, 1.0);
    for (int d = 0; d < 2; d++) {
        const zt_dtype dt = d ? ZT_DT_F32 : ZT_DT_BF16;
        double ref[16 * 5 * 7];
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < h * w; p++) {
                const volatile float s = (float)l.v[(size_t)ch * h * w + p] * mul;
                ref[(size_t)p * c + ch] = ref_round(s + add, dt);
            }
        void *out = malloc((size_t)c * h * w * 4);
        tt_poison(out, (size_t)c * h * w * zt_dtype_size(dt));
        zt_op_vae_input(ops3, c, h, w, l.p, mul, add, out, dt);
        TT_COMPARE(d ? "vae_input F32" : "vae_input BF16", out, dt, (size_t)h * w, c, c, ref, 0.0, 0.0);
        free(out);
    }
    tt_free(&l);
}

static void test_upsample(zt_rng *rng, int h, int w, int c, zt_dtype dt) {
    char what[80];
    snprintf(what, sizeof what, "upsample2x %dx%d c%d %s", h, w, c, tt_dt(dt));
    tt_tensor x;
    tt_random(&x, (size_t)h * w * c, dt, rng, 0.0, 1.0);
    const size_t n = (size_t)4 * h * w * c;
    double *ref = malloc(sizeof(double) * n);
    for (int y = 0; y < 2 * h; y++)
        for (int xx = 0; xx < 2 * w; xx++)
            for (int ch = 0; ch < c; ch++) ref[((size_t)y * 2 * w + xx) * c + ch] = x.v[((size_t)(y / 2) * w + xx / 2) * c + ch];
    void *out = malloc(n * zt_dtype_size(dt));
    tt_poison(out, n * zt_dtype_size(dt));
    zt_op_upsample2x(ops3, h, w, c, x.p, out, dt);
    TT_COMPARE(what, out, dt, (size_t)4 * h * w, c, c, ref, 0.0, 0.0);
    free(out);
    free(ref);
    tt_free(&x);
}

/* The encoder posterior: each rounding point of diffusers' f32 arithmetic
 * (clamp, 0.5 * logvar, exp, std * eps, mean + ..., - shift, * scale)
 * rebuilt in f32 with volatile temporaries; exp in double then rounded (the
 * op's expf may be 1 ulp off: compared to 2e-7 relative). Logvars beyond the
 * clamp on both sides, argmax (eps NULL) exactly the scaled mean. */
static void test_vae_posterior(zt_rng *rng, int c, int h, int w, zt_dtype dt) {
    char what[80];
    snprintf(what, sizeof what, "vae_posterior c%d %dx%d %s", c, h, w, tt_dt(dt));
    const size_t hw = (size_t)h * w, n = (size_t)c * hw;
    tt_tensor m;
    tt_random(&m, hw * 2 * c, dt, rng, 0.0, 2.0);
    for (size_t p = 0; p < hw; p += 3) { /* logvars past the clamp */
        const double big = (p % 2 ? 45.0 : -70.0);
        if (dt == ZT_DT_F32) ((float *)m.p)[p * 2 * c + c] = (float)big;
        else ((uint16_t *)m.p)[p * 2 * c + c] = zt_f32_to_bf16((float)big);
        m.v[p * 2 * c + c] = big;
    }
    float *eps = malloc(n * sizeof *eps), *out = malloc(n * sizeof *out);
    double *ref = malloc(n * sizeof *ref), *refm = malloc(n * sizeof *refm);
    for (size_t i = 0; i < n; i++) eps[i] = (float)zt_rng_normal(rng);
    const float shift = 0.1159f, scale = 0.3611f;
    for (int ch = 0; ch < c; ch++)
        for (size_t p = 0; p < hw; p++) {
            const float mean = (float)m.v[p * 2 * c + ch];
            float lv = (float)m.v[p * 2 * c + c + ch];
            lv = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv;
            const volatile float half = 0.5f * lv;
            const volatile float sd = (float)exp((double)half);
            const volatile float se = sd * eps[(size_t)ch * hw + p];
            const volatile float z = mean + se;
            const volatile float zs = z - shift, zm = mean - shift;
            ref[(size_t)ch * hw + p] = (float)(zs * scale);
            refm[(size_t)ch * hw + p] = (float)(zm * scale);
        }
    tt_poison(out, n * sizeof *out);
    zt_op_vae_posterior(ops3, c, h, w, m.p, dt, eps, shift, scale, out);
    size_t bad = 0, exact = 0;
    for (size_t i = 0; i < n; i++) {
        bad += !(fabs(out[i] - ref[i]) <= 4e-7 * fabs(ref[i]) + 1e-30); /* NaN counts */
        exact += out[i] == (float)ref[i];
    }
    ZT_CHECK(bad == 0 && exact >= n * 9 / 10, "%s: %zu beyond 4e-7, %zu of %zu exact", what, bad, exact, n);
    tt_poison(out, n * sizeof *out);
    zt_op_vae_posterior(ops3, c, h, w, m.p, dt, NULL, shift, scale, out);
    bad = 0;
    for (size_t i = 0; i < n; i++) bad += out[i] != (float)refm[i];
    ZT_CHECK(bad == 0, "%s argmax: %zu of %zu differ from fl32((mean - shift) * scale)", what, bad, n);
    free(eps);
    free(out);
    free(ref);
    free(refm);
    tt_free(&m);
}

/* scale_noise / the inpainting blend: exact, each product and the sum
 * rounded once in f32 (volatile temporaries); sigma 1 gives the noise and
 * sigma 0 the clean latents exactly; a mask keeps the masked latents. */
static void test_flow_mix(zt_rng *rng) {
    enum { C = 3, HW = 37, N = C * HW };
    float x0[N], nz[N], lat[N], prev[N], mask[HW];
    for (int i = 0; i < N; i++) {
        x0[i] = (float)(zt_rng_normal(rng) * 1.7);
        nz[i] = (float)zt_rng_normal(rng);
        prev[i] = (float)zt_rng_normal(rng);
    }
    for (int p = 0; p < HW; p++) mask[p] = (float)(zt_rng_u64(rng) % 2);
    const float sigmas[] = {1.0f, 0.9545454f, 0.6f, 0.3f, 0.0f};
    for (size_t s = 0; s < ZT_ARRAY_LEN(sigmas); s++)
        for (int m = 0; m < 2; m++) {
            const float sg = sigmas[s];
            memcpy(lat, prev, sizeof lat);
            zt_op_flow_mix(ops3, C, HW, x0, nz, sg, m ? mask : NULL, lat);
            int bad = 0;
            for (int i = 0; i < N; i++) {
                const volatile float keep = 1.0f - sg;
                const volatile float a = sg * nz[i], b = keep * x0[i];
                const float v = a + b, want = m && mask[i % HW] != 0.0f ? prev[i] : v;
                bad += memcmp(&lat[i], &want, 4) != 0;
                if (!m && sg == 1.0f) bad += lat[i] != nz[i];
                if (!m && sg == 0.0f) bad += lat[i] != x0[i];
            }
            ZT_CHECK(bad == 0, "flow_mix sigma %g mask %d: %d elements wrong", sg, m, bad);
        }
}

/* u8 = round_half_even(fl32(clamp(fl32(x*0.5 + 0.5), 0, 1) * 255)), by floor
 * and parity (independent of the op's nearbyintf). */
static int ref_rgb8(float x) {
    const volatile float h = x * 0.5f;
    float v = h + 0.5f;
    v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    const volatile float p = v * 255.0f;
    const double r = floor(p), d = p - r;
    return (int)(d > 0.5 ? r + 1 : d < 0.5 ? r : (fmod(r, 2.0) == 0 ? r : r + 1));
}

static void test_to_rgb8(zt_rng *rng) {
    enum { H = 9, W = 11, N = H * W * 3 };
    float x[N];
    uint16_t xb[N];
    int ties = 0;
    for (int i = 0; i < N; i++) x[i] = (float)(zt_rng_uniform(rng) * 3.0 - 1.5);
    /* exact ties: img with fl32(img * 255) = k + 0.5, x = 2 img - 1 (exact) */
    for (int k = 70; k < 250 && ties < 60; k++) {
        float img = (float)((k + 0.5) / 255.0);
        for (int s = -3; s <= 3; s++) {
            const float cand = nextafterf(img, s < 0 ? 0.0f : 2.0f);
            const volatile float p = cand * 255.0f;
            if (p == (float)k + 0.5f && cand >= 0.25f) {
                x[ties * 3 + 1] = 2.0f * cand - 1.0f;
                ties++;
                break;
            }
            img = cand;
        }
    }
    ZT_CHECK(ties >= 10, "to_rgb8: only %d exact ties constructed", ties);
    uint8_t got[N];
    int bad = 0, tie_hits = 0;
    memset(got, 0xAB, sizeof got);
    zt_op_to_rgb8(ops3, H, W, x, ZT_DT_F32, got);
    for (int i = 0; i < N; i++) {
        bad += got[i] != ref_rgb8(x[i]);
        const volatile float h = x[i] * 0.5f;
        const volatile float p = (h + 0.5f) * 255.0f;
        tie_hits += p - floorf(p) == 0.5f;
    }
    ZT_CHECK(bad == 0 && tie_hits >= 10, "to_rgb8 F32: %d wrong, %d ties", bad, tie_hits);
    for (int i = 0; i < N; i++) xb[i] = zt_f32_to_bf16(x[i]);
    memset(got, 0xAB, sizeof got);
    zt_op_to_rgb8(ops3, H, W, xb, ZT_DT_BF16, got);
    bad = 0;
    for (int i = 0; i < N; i++) bad += got[i] != ref_rgb8(zt_bf16_to_f32(xb[i]));
    ZT_CHECK(bad == 0, "to_rgb8 BF16: %d wrong", bad);
}

int main(void) {
    zt_err e;
    zt_ops_config cfg = {.backend = ZT_BACKEND_CPU, .cpu_threads = 3};
    ZT_ASSERT(zt_ops_create(&cfg, &ops3, &e) == ZT_OK);
    cfg.cpu_threads = 1;
    ZT_ASSERT(zt_ops_create(&cfg, &ops1, &e) == ZT_OK);
    zt_rng rng = {0x5eed0002u};
    test_norms(&rng);
    test_groupnorms(&rng);
    test_elementwise_all(&rng);
    test_ropes(&rng);
    test_timestep();
    test_patchify(&rng, 5, 6, 10, 2, ZT_DT_BF16);
    test_patchify(&rng, 16, 8, 6, 2, ZT_DT_F32);
    test_patchify(&rng, 3, 3, 5, 1, ZT_DT_BF16);
    test_euler(&rng);
    test_vae_input(&rng);
    test_upsample(&rng, 5, 7, 3, ZT_DT_BF16);
    test_upsample(&rng, 4, 3, 33, ZT_DT_F32);
    test_to_rgb8(&rng);
    test_vae_posterior(&rng, 16, 5, 7, ZT_DT_F32);
    test_flow_mix(&rng);
    test_vae_posterior(&rng, 3, 4, 4, ZT_DT_BF16);
    zt_ops_destroy(ops3);
    zt_ops_destroy(ops1);
    return zt_test_finish("test_ops_cpu_misc");
}
