/* tests/test_ops_cpu.c — the CPU backend's matmul-engine ops (GEMM,
 * attention, 2-D convolution) against naive double-precision loops written
 * here, at odd shapes that cross every blocking boundary of
 * kernels/cpu_matmul.c (96 rows, 64 columns, 256 k), for every supported
 * dtype combination. Outputs are poisoned before each op (unwritten elements
 * show up as NaN), strided views must leave their gap columns untouched,
 * workspaces are guarded, and a 3-thread run must equal a 1-thread run bit
 * for bit (the summation order does not depend on the threads).
 * See tests/test_ops_cpu.h for how bf16 outputs are judged. */
#include "tests/test_ops_cpu.h"

static zt_ops *ops3, *ops1; /* 3 worker threads / 1 thread */

/* Guarded workspace: `bytes` usable, 64 poisoned bytes after. */
static void *ws_alloc(size_t bytes) {
    uint8_t *p = malloc(bytes + 64);
    if (!p) exit(1);
    tt_poison(p, bytes + 64);
    return p;
}
static int ws_guard_ok(const void *p, size_t bytes) { return tt_untouched((const uint8_t *)p + bytes, 64); }

/* ---- GEMM ------------------------------------------------------------------ */

static void test_gemm(zt_rng *rng, int m, int n, int k, zt_dtype xdt, zt_dtype wdt, zt_dtype ydt, int with_bias,
                      int accumulate, int ldx_pad, int ldy_pad) {
    char what[160];
    snprintf(what, sizeof what, "gemm m%d n%d k%d x%s w%s y%s bias%d acc%d ldx+%d ldy+%d", m, n, k, tt_dt(xdt), tt_dt(wdt),
             tt_dt(ydt), with_bias, accumulate, ldx_pad, ldy_pad);
    const int ldx = k + ldx_pad, ldy = n + ldy_pad;
    const size_t ysz = (size_t)m * ldy * zt_dtype_size(ydt);
    tt_tensor x, w, b, y0;
    tt_random(&x, (size_t)m * ldx + 1, xdt, rng, 0.0, 1.0);
    tt_random(&w, (size_t)n * k + 1, wdt, rng, 0.0, 1.0);
    tt_random(&b, (size_t)n + 1, wdt, rng, 0.5, 1.0);
    tt_random(&y0, (size_t)m * ldy + 1, ydt, rng, 0.0, 2.0);
    for (int i = 0; i < m; i++) tt_poison((char *)y0.p + ((size_t)i * ldy + n) * zt_dtype_size(ydt), (size_t)ldy_pad * zt_dtype_size(ydt));
    double *ref = malloc(sizeof(double) * ((size_t)m * n + 1));
    double abs_tol = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0, sa = 0;
            for (int kk = 0; kk < k; kk++) {
                const double t = x.v[(size_t)i * ldx + kk] * w.v[(size_t)j * k + kk];
                s += t;
                sa += fabs(t);
            }
            if (with_bias) s += b.v[j];
            if (accumulate) s += y0.v[(size_t)i * ldy + j];
            ref[(size_t)i * n + j] = s;
            /* bound of an f32 sequential sum's error: results that cancel to
             * ~0 may be off by more than a bf16 ulp of themselves */
            abs_tol = fmax(abs_tol, 1e-6 * (sa + fabs(s)) * (1 + k / 1024.0));
        }
    void *y = malloc(ysz + 1), *y1 = malloc(ysz + 1);
    if (accumulate) {
        memcpy(y, y0.p, ysz);
        memcpy(y1, y0.p, ysz);
    } else {
        tt_poison(y, ysz);
        tt_poison(y1, ysz);
    }
    zt_gemm g = {.m = m, .n = n, .k = k, .x = x.p, .x_dt = xdt, .ldx = ldx_pad ? ldx : 0, .w = w.p, .w_dt = wdt,
                 .bias = with_bias ? b.p : NULL, .y = y, .y_dt = ydt, .ldy = ldy_pad ? ldy : 0, .accumulate = accumulate};
    zt_op_gemm(ops3, &g);
    TT_COMPARE(what, y, ydt, m, n, ldy, ref, 1.0, abs_tol);
    ZT_CHECK(tt_gaps_untouched(y, m, n, ldy, zt_dtype_size(ydt)), "%s: gap columns written", what);
    g.y = y1;
    zt_op_gemm(ops1, &g);
    ZT_CHECK(memcmp(y, y1, ysz) == 0, "%s: 1-thread and 3-thread results differ", what);
    free(ref);
    free(y);
    free(y1);
    tt_free(&x);
    tt_free(&w);
    tt_free(&b);
    tt_free(&y0);
}

static void test_gemm_all(zt_rng *rng) {
    const zt_dtype combos[4][3] = {{ZT_DT_BF16, ZT_DT_BF16, ZT_DT_BF16},
                                   {ZT_DT_BF16, ZT_DT_BF16, ZT_DT_F32},
                                   {ZT_DT_F32, ZT_DT_F32, ZT_DT_F32},
                                   {ZT_DT_F32, ZT_DT_BF16, ZT_DT_F32}};
    for (int c = 0; c < 4; c++) {
        const zt_dtype xd = combos[c][0], wd = combos[c][1], yd = combos[c][2];
        test_gemm(rng, 37, 61, 129, xd, wd, yd, 0, 0, 0, 0);
        test_gemm(rng, 37, 61, 129, xd, wd, yd, 1, 0, 7, 5);
        test_gemm(rng, 37, 61, 129, xd, wd, yd, 1, 1, 3, 9);
        test_gemm(rng, 197, 133, 521, xd, wd, yd, 1, 0, 11, 3); /* 3 x 3 blocks, 3 k slices */
        test_gemm(rng, 1, 7, 3, xd, wd, yd, 1, 1, 0, 0);
    }
    test_gemm(rng, 100, 300, 600, ZT_DT_BF16, ZT_DT_BF16, ZT_DT_BF16, 1, 1, 0, 0);
    test_gemm(rng, 5, 3, 0, ZT_DT_BF16, ZT_DT_BF16, ZT_DT_BF16, 1, 0, 0, 0); /* k = 0: y = bias */
}

/* ---- attention --------------------------------------------------------------- */

static void test_attention(zt_rng *rng, int sq, int sk, int heads, int kvh, int hd, int causal, zt_dtype dt, int fused) {
    char what[160];
    snprintf(what, sizeof what, "attention sq%d sk%d heads%d/%d hd%d causal%d %s%s", sq, sk, heads, kvh, hd, causal,
             tt_dt(dt), fused ? " fused-qkv" : "");
    const size_t es = zt_dtype_size(dt);
    int64_t ldq = (int64_t)heads * hd + 8, ldk = (int64_t)kvh * hd + 16, ldv = (int64_t)kvh * hd + 24;
    const int64_t ldo = (int64_t)heads * hd + 4;
    tt_tensor q, k, v, qkv;
    int64_t qoff = 0, koff = 0, voff = 0;
    const tt_tensor *qt = &q, *kt = &k, *vt = &v;
    if (fused) { /* q, k, v as column blocks of one [s, (heads + 2 kvh) hd] row */
        ZT_ASSERT(sq == sk);
        ldq = ldk = ldv = (int64_t)(heads + 2 * kvh) * hd;
        tt_random(&qkv, (size_t)sq * ldq, dt, rng, 0.0, 1.0);
        koff = (int64_t)heads * hd;
        voff = (int64_t)(heads + kvh) * hd;
        qt = kt = vt = &qkv;
    } else {
        tt_random(&q, (size_t)sq * ldq, dt, rng, 0.0, 1.0);
        tt_random(&k, (size_t)sk * ldk, dt, rng, 0.0, 1.0);
        tt_random(&v, (size_t)sk * ldv, dt, rng, 0.0, 1.0);
    }
    const double scale = 1.0 / sqrt((double)hd);
    double *ref = calloc((size_t)sq * heads * hd + 1, sizeof(double));
    double *s = malloc(sizeof(double) * sk), vmax = 0;
    for (int h = 0; h < heads; h++) {
        const int g = h / (heads / kvh);
        for (int i = 0; i < sq; i++) {
            const int vis = causal ? (int)fmin(fmax(i + sk - sq + 1, 0), sk) : sk;
            double mx = -INFINITY, l = 0;
            for (int j = 0; j < vis; j++) {
                double d = 0;
                for (int c = 0; c < hd; c++)
                    d += qt->v[i * ldq + qoff + h * hd + c] * kt->v[j * ldk + koff + g * hd + c];
                s[j] = d * (double)(float)scale;
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < vis; j++) {
                const double p = exp(s[j] - mx);
                l += p;
                s[j] = dt == ZT_DT_BF16 ? ref_bf16(p) : p; /* P rounded before P·V on the bf16 path */
            }
            for (int c = 0; c < hd; c++) {
                double o = 0;
                for (int j = 0; j < vis; j++) o += s[j] * vt->v[j * ldv + voff + g * hd + c];
                ref[((size_t)i * heads + h) * hd + c] = vis ? o / l : 0.0;
            }
        }
    }
    for (int j = 0; j < sk; j++)
        for (int c = 0; c < kvh * hd; c++) vmax = fmax(vmax, fabs(vt->v[j * ldv + voff + c]));
    const size_t osz = (size_t)sq * ldo * es;
    void *o = malloc(osz + 1), *o1 = malloc(osz + 1);
    tt_poison(o, osz);
    tt_poison(o1, osz);
    zt_attn a = {.sq = sq, .sk = sk, .heads = heads, .kv_heads = kvh, .hd = hd,
                 .q = (const char *)qt->p + qoff * es, .ldq = ldq, .k = (const char *)kt->p + koff * es, .ldk = ldk,
                 .v = (const char *)vt->p + voff * es, .ldv = ldv, .o = o, .ldo = ldo, .dt = dt,
                 .scale = (float)scale, .causal = causal};
    const size_t wsz = zt_attention_workspace_size(ops3, &a);
    void *ws = ws_alloc(wsz);
    zt_op_attention(ops3, &a, ws);
    /* bf16: a flipped rounding of one P entry moves o by up to 2^-8 p v / l */
    TT_COMPARE(what, o, dt, sq, (size_t)heads * hd, ldo, ref, 1.0, 4e-3 * vmax);
    ZT_CHECK(tt_gaps_untouched(o, sq, (size_t)heads * hd, ldo, es), "%s: gap columns written", what);
    ZT_CHECK(ws_guard_ok(ws, wsz), "%s: wrote past the workspace", what);
    free(ws);
    const size_t wsz1 = zt_attention_workspace_size(ops1, &a);
    ws = ws_alloc(wsz1);
    a.o = o1;
    zt_op_attention(ops1, &a, ws);
    ZT_CHECK(memcmp(o, o1, osz) == 0, "%s: 1-thread and 3-thread results differ", what);
    ZT_CHECK(ws_guard_ok(ws, wsz1), "%s: wrote past the workspace (1 thread)", what);
    free(ws);
    free(o);
    free(o1);
    free(ref);
    free(s);
    if (fused) tt_free(&qkv);
    else {
        tt_free(&q);
        tt_free(&k);
        tt_free(&v);
    }
}

static void test_attention_all(zt_rng *rng) {
    const zt_dtype dts[2] = {ZT_DT_BF16, ZT_DT_F32};
    for (int d = 0; d < 2; d++) {
        const zt_dtype dt = dts[d];
        for (int causal = 0; causal < 2; causal++) {
            test_attention(rng, 19, 33, 3, 3, 64, causal, dt, 0);
            test_attention(rng, 19, 33, 4, 2, 64, causal, dt, 0);   /* GQA */
            test_attention(rng, 21, 21, 4, 2, 128, causal, dt, 1);  /* fused QKV row, Qwen3-like */
            test_attention(rng, 200, 150, 2, 1, 64, causal, dt, 0); /* 3 query blocks, 3 key blocks */
        }
        test_attention(rng, 45, 45, 1, 1, 512, 0, dt, 0); /* VAE mid-block: one head of 512 */
        test_attention(rng, 30, 20, 2, 2, 64, 1, dt, 0);  /* sq > sk causal: first rows see nothing */
        test_attention(rng, 1, 37, 4, 1, 128, 1, dt, 0);  /* one new token against a cache */
    }
}

/* ---- conv2d ------------------------------------------------------------------ */

static void test_conv_s(zt_rng *rng, int h, int w, int cin, int cout, int ks, zt_dtype dt, int with_bias,
                        int with_resid, int stride) {
    char what[160];
    snprintf(what, sizeof what, "conv2d %dx%d cin%d cout%d k%d %s bias%d resid%d stride%d", h, w, cin, cout, ks,
             tt_dt(dt), with_bias, with_resid, stride);
    /* stride 2: diffusers' Downsample2D (pad bottom/right by one, none top/left) */
    const int oh = h / stride, ow = w / stride, pad = stride == 2 ? 0 : ks / 2;
    const size_t ihw = (size_t)h * w, hw = (size_t)oh * ow, es = zt_dtype_size(dt);
    tt_tensor x, wt, b, r;
    tt_random(&x, ihw * cin, dt, rng, 0.0, 1.0);
    tt_random(&wt, (size_t)cout * ks * ks * cin, dt, rng, 0.0, 1.0);
    tt_random(&b, (size_t)cout, dt, rng, 0.5, 1.0);
    tt_random(&r, hw * cout, dt, rng, 0.0, 2.0);
    double *ref = malloc(sizeof(double) * hw * cout), abs_tol = 0;
    for (int py = 0; py < oh; py++)
        for (int px = 0; px < ow; px++)
            for (int co = 0; co < cout; co++) {
                double s = 0, sa = 0;
                for (int dy = 0; dy < ks; dy++)
                    for (int dx = 0; dx < ks; dx++) {
                        const int sy = py * stride + dy - pad, sx = px * stride + dx - pad;
                        if (sy < 0 || sy >= h || sx < 0 || sx >= w) continue;
                        for (int ci = 0; ci < cin; ci++) {
                            const double t = x.v[((size_t)sy * w + sx) * cin + ci] *
                                             wt.v[(((size_t)co * ks + dy) * ks + dx) * cin + ci];
                            s += t;
                            sa += fabs(t);
                        }
                    }
                if (with_bias) s += b.v[co];
                if (with_resid) s += r.v[((size_t)py * ow + px) * cout + co];
                ref[((size_t)py * ow + px) * cout + co] = s;
                abs_tol = fmax(abs_tol, 1e-6 * (sa + fabs(s)) * (1 + (double)ks * ks * cin / 1024.0));
            }
    void *y = malloc(hw * cout * es + 1), *y1 = malloc(hw * cout * es + 1);
    tt_poison(y, hw * cout * es);
    tt_poison(y1, hw * cout * es);
    zt_conv2d c = {.h = h, .w = w, .cin = cin, .cout = cout, .k = ks, .x = x.p, .wgt = wt.p,
                   .bias = with_bias ? b.p : NULL, .residual = with_resid ? r.p : NULL, .y = y, .dt = dt,
                   .stride = stride};
    const size_t wsz = zt_conv2d_workspace_size(ops3, &c);
    void *ws = ws_alloc(wsz);
    zt_op_conv2d(ops3, &c, ws);
    TT_COMPARE(what, y, dt, hw, cout, cout, ref, 1.0, abs_tol);
    ZT_CHECK(ws_guard_ok(ws, wsz), "%s: wrote past the workspace", what);
    free(ws);
    ws = ws_alloc(zt_conv2d_workspace_size(ops1, &c));
    c.y = y1;
    zt_op_conv2d(ops1, &c, ws);
    ZT_CHECK(memcmp(y, y1, hw * cout * es) == 0, "%s: 1-thread and 3-thread results differ", what);
    free(ws);
    free(y);
    free(y1);
    free(ref);
    tt_free(&x);
    tt_free(&wt);
    tt_free(&b);
    tt_free(&r);
}

static void test_conv(zt_rng *rng, int h, int w, int cin, int cout, int ks, zt_dtype dt, int with_bias, int with_resid) {
    test_conv_s(rng, h, w, cin, cout, ks, dt, with_bias, with_resid, 1);
}

/* In place (y == residual) as a ResBlock's second conv may run. */
static void test_conv_all(zt_rng *rng) {
    const zt_dtype dts[2] = {ZT_DT_BF16, ZT_DT_F32};
    for (int d = 0; d < 2; d++) {
        const zt_dtype dt = dts[d];
        test_conv(rng, 7, 9, 5, 3, 3, dt, 1, 0);
        test_conv(rng, 7, 9, 16, 33, 3, dt, 1, 1);
        test_conv(rng, 7, 9, 40, 17, 3, dt, 0, 0);
        test_conv(rng, 7, 9, 5, 3, 1, dt, 1, 0);
        test_conv(rng, 7, 9, 40, 33, 1, dt, 1, 1);
        test_conv(rng, 13, 11, 40, 70, 3, dt, 1, 1); /* 143 pixels, 70 channels, k = 360: every block edge */
        test_conv(rng, 1, 1, 8, 4, 3, dt, 1, 0);     /* a single pixel: only the centre tap */
        /* stride 2 (the VAE encoder's downsamplers): bottom/right padding only */
        test_conv_s(rng, 8, 10, 5, 5, 3, dt, 1, 0, 2);
        test_conv_s(rng, 14, 6, 40, 40, 3, dt, 1, 1, 2);
        test_conv_s(rng, 2, 2, 16, 7, 3, dt, 1, 0, 2); /* one output pixel: 4 of 9 taps inside */
        test_conv_s(rng, 26, 22, 33, 70, 3, dt, 0, 0, 2);
    }
}

int main(void) {
    zt_err e;
    zt_ops_config cfg = {.backend = ZT_BACKEND_CPU, .cpu_threads = 3};
    ZT_ASSERT(zt_ops_create(&cfg, &ops3, &e) == ZT_OK);
    cfg.cpu_threads = 1;
    ZT_ASSERT(zt_ops_create(&cfg, &ops1, &e) == ZT_OK);
    zt_rng rng = {0x5eed0001u};
    test_gemm_all(&rng);
    test_attention_all(&rng);
    test_conv_all(&rng);
    zt_ops_destroy(ops3);
    zt_ops_destroy(ops1);
    return zt_test_finish("test_ops_cpu");
}
