/* tests/test_attention_cuda.c — CUDA attention (zt_op_attention on a CUDA
 * context, and every tiling variant of kernels/cuda_attention.cu) against
 * the CPU backend (zt_cpu_attention, same rounding points) and against a
 * naive double-precision reference computed here from the same bf16 inputs
 * (exact softmax, no bf16 P), on fresh random data. Every case runs twice:
 * bf16, then f16 (the fp16 path's instances of the same kernels; on an
 * sm_75 build the m16n8k8 / no-cp.async code).
 *
 * Each case: random q, k (scaled by `amp`, so some cases have peaked
 * softmaxes) and v; the output (padding columns included) is poisoned with
 * bf16 NaN before every run; afterwards every in-range element must be
 * finite, every padding element still poisoned, and the rel L2 error over the
 * checked rows <= 1e-2 (bf16 P before P·V and the bf16 output give ~3e-3),
 * both against the double reference and, for the shapes small enough for
 * the CPU backend, against zt_cpu_attention (also checked against the
 * double reference). Large shapes check a sample of rows (first, last,
 * random) of every head against the double reference only.
 *
 * ZT_ATTN_TEST_QUICK=1 runs only the small cases (for compute-sanitizer).
 * Exit 77 without a CUDA device. */
#include <cuda_runtime.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/zt_dtype.h"
#include "kernels/cuda_attention.cuh"
#include "kernels/ops_internal.h"
#include "tests/zt_test.h"

#define CK(call)                                                                          \
    do {                                                                                  \
        cudaError_t e_ = (call);                                                          \
        if (e_ != cudaSuccess) {                                                          \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

typedef struct {
    const char *name;
    int sq, sk, heads, kv_heads, hd, causal;
    int fused;   /* q, k, v are column blocks of one [s, 3*heads*hd] row (sq == sk) */
    int pad;     /* extra elements per row of q, k, v, o (strided views) */
    double amp;  /* q, k scale: logits ~ N(0, amp^2) after the 1/sqrt(hd) scale */
    int sample;  /* 0: check every row; else rows checked per head */
    int quick;   /* part of the ZT_ATTN_TEST_QUICK set */
} tcase;

static const tcase cases[] = {
    /* hd 128, non-causal, tile edges */
    {"hd128 s1", 1, 1, 2, 2, 128, 0, 0, 0, 1.0, 0, 1},
    {"hd128 s7", 7, 7, 2, 2, 128, 0, 0, 8, 1.0, 0, 1},
    {"hd128 s65", 65, 65, 2, 2, 128, 0, 0, 0, 3.0, 0, 1},
    {"hd128 s129", 129, 129, 3, 3, 128, 0, 0, 16, 1.0, 0, 1},
    {"hd128 s1000", 1000, 1000, 2, 2, 128, 0, 0, 0, 2.0, 0, 0},
    {"hd128 sq65 sk200", 65, 200, 2, 2, 128, 0, 0, 8, 1.0, 0, 1},
    {"hd128 sq129 sk1", 129, 1, 2, 2, 128, 0, 0, 0, 1.0, 0, 1},
    {"hd128 sq300 sk77", 300, 77, 2, 2, 128, 0, 0, 0, 4.0, 0, 0},
    {"hd128 gqa sq200 sk333", 200, 333, 6, 2, 128, 0, 0, 8, 2.0, 0, 0},
    /* DiT: fused QKV rows, 30 heads */
    {"dit refiner s128", 128, 128, 30, 30, 128, 0, 1, 0, 1.0, 0, 1},
    {"dit fused s333", 333, 333, 30, 30, 128, 0, 1, 0, 2.0, 0, 0},
    {"dit fused s4224", 4224, 4224, 30, 30, 128, 0, 1, 0, 2.0, 6, 0},
    /* Qwen3: causal, GQA 32/8 */
    {"qwen s1", 1, 1, 32, 8, 128, 1, 0, 0, 1.0, 0, 1},
    {"qwen s7", 7, 7, 32, 8, 128, 1, 0, 0, 1.0, 0, 1},
    {"qwen s129", 129, 129, 32, 8, 128, 1, 0, 8, 3.0, 0, 1},
    {"qwen s512", 512, 512, 32, 8, 128, 1, 0, 0, 2.0, 0, 0},
    {"causal sq65 sk200", 65, 200, 4, 2, 128, 1, 0, 0, 2.0, 0, 1},
    {"causal sq1 sk77", 1, 77, 4, 1, 128, 1, 0, 0, 1.0, 0, 1},
    {"causal sq100 sk40", 100, 40, 2, 2, 128, 1, 0, 0, 1.0, 0, 1},
    /* hd 64 (tiny models' VAE) */
    {"hd64 s65", 65, 65, 1, 1, 64, 0, 0, 0, 1.0, 0, 1},
    {"hd64 s1000", 1000, 1000, 2, 2, 64, 0, 0, 8, 2.0, 0, 0},
    {"hd64 sq7 sk129 causal", 7, 129, 2, 1, 64, 1, 0, 0, 1.0, 0, 1},
    /* hd 512 (VAE mid-block) */
    {"hd512 s1", 1, 1, 1, 1, 512, 0, 0, 0, 1.0, 0, 1},
    {"hd512 s65", 65, 65, 1, 1, 512, 0, 0, 8, 2.0, 0, 1},
    {"hd512 s129", 129, 129, 1, 1, 512, 0, 0, 0, 1.0, 0, 1},
    {"hd512 sq100 sk300", 100, 300, 1, 1, 512, 0, 0, 0, 3.0, 0, 0},
    {"hd512 s1000", 1000, 1000, 1, 1, 512, 0, 0, 0, 1.0, 0, 0},
    {"hd512 causal sq70 sk90", 70, 90, 2, 1, 512, 1, 0, 0, 2.0, 0, 1},
    {"hd512 s16384", 16384, 16384, 1, 1, 512, 0, 0, 0, 1.0, 48, 0},
};

/* The element type of the run: bf16, then f16 (the fp16 path's kernels). */
static zt_dtype g_dt = ZT_DT_BF16;
static uint16_t to_e(double x) { return g_dt == ZT_DT_F16 ? zt_f32_to_f16((float)x) : zt_f32_to_bf16((float)x); }
static float from_e(uint16_t h) { return g_dt == ZT_DT_F16 ? zt_f16_to_f32(h) : zt_bf16_to_f32(h); }

/* Reference row: out[hd] = softmax(q·kᵀ·scale) v in double; 0 if no key. */
static void ref_row(const tcase *c, int i, int h, const uint16_t *q, int64_t ldq, const uint16_t *k, int64_t ldk,
                    const uint16_t *v, int64_t ldv, float scale, double *w, double *out) {
    int hd = c->hd, kvh = h / (c->heads / c->kv_heads);
    int lim = c->causal ? i + c->sk - c->sq + 1 : c->sk;
    if (lim > c->sk) lim = c->sk;
    for (int d = 0; d < hd; d++) out[d] = 0;
    if (lim <= 0) return;
    const uint16_t *qr = q + (int64_t)i * ldq + (int64_t)h * hd;
    double mx = -INFINITY;
    for (int j = 0; j < lim; j++) {
        const uint16_t *kr = k + (int64_t)j * ldk + (int64_t)kvh * hd;
        double s = 0;
        for (int d = 0; d < hd; d++) s += (double)from_e(qr[d]) * (double)from_e(kr[d]);
        w[j] = s * scale;
        if (w[j] > mx) mx = w[j];
    }
    double sum = 0;
    for (int j = 0; j < lim; j++) {
        w[j] = exp(w[j] - mx);
        sum += w[j];
    }
    for (int j = 0; j < lim; j++) {
        const uint16_t *vr = v + (int64_t)j * ldv + (int64_t)kvh * hd;
        double p = w[j] / sum;
        for (int d = 0; d < hd; d++) out[d] += p * (double)from_e(vr[d]);
    }
}

static zt_rng rng = {0x9e3779b97f4a7c15ull};
static zt_ops *g_cpu;

/* One case: fresh inputs, the reference of the checked rows once, then
 * every variant that fits. */
static void run_case(zt_ops *ops, const tcase *c) {
    const int hd = c->hd, qw = c->heads * hd, kw = c->kv_heads * hd;
    int64_t ldq, ldk, ldv, ldo = qw + c->pad;
    size_t in_elems, q_off, k_off, v_off;
    if (c->fused) {
        ldq = ldk = ldv = 3 * (int64_t)qw + c->pad;
        in_elems = (size_t)c->sq * ldq;
        q_off = 0, k_off = qw, v_off = 2 * (size_t)qw;
    } else {
        ldq = qw + c->pad, ldk = ldv = kw + c->pad;
        q_off = 0, k_off = (size_t)c->sq * ldq, v_off = k_off + (size_t)c->sk * ldk;
        in_elems = v_off + (size_t)c->sk * ldv;
    }
    const size_t out_elems = (size_t)c->sq * ldo;
    uint16_t *in = malloc((in_elems + 1) * 2), *out = malloc((out_elems + 1) * 2);
    ZT_CHECK(in && out, "host allocation");
    /* fresh random data; q and k scaled so that the logits have std amp */
    for (size_t x = 0; x < in_elems; x++) in[x] = to_e(zt_rng_normal(&rng));
    double qk_amp = sqrt(c->amp);
    for (int r = 0; r < c->sq; r++)
        for (int j = 0; j < qw; j++) in[q_off + (size_t)r * ldq + j] = to_e(zt_rng_normal(&rng) * qk_amp);
    for (int r = 0; r < c->sk; r++)
        for (int j = 0; j < kw; j++) in[k_off + (size_t)r * ldk + j] = to_e(zt_rng_normal(&rng) * qk_amp);
    const float scale = (float)(1.0 / sqrt((double)hd));

    /* reference of the checked rows: all, or first, last and random ones */
    const int nrows = c->sample ? (c->sample < c->sq ? c->sample : c->sq) : c->sq;
    int *rows = malloc(sizeof(int) * (size_t)c->heads * nrows);
    double *ref = malloc(sizeof(double) * (size_t)c->heads * nrows * hd), *w = malloc(sizeof(double) * (c->sk + 1));
    for (int h = 0; h < c->heads; h++)
        for (int x = 0; x < nrows; x++) {
            int i = !c->sample ? x : x == 0 ? 0 : x == 1 ? c->sq - 1 : (int)(zt_rng_u64(&rng) % (uint64_t)c->sq);
            rows[h * nrows + x] = i;
            ref_row(c, i, h, in + q_off, ldq, in + k_off, ldk, in + v_off, ldv, scale, w,
                    ref + ((size_t)h * nrows + x) * hd);
        }

    uint16_t *din = zt_mem_alloc(ops, (in_elems + 8) * 2), *dout = zt_mem_alloc(ops, (out_elems + 8) * 2);
    ZT_CHECK(din && dout, "device allocation");
    zt_mem_upload(ops, din, in, in_elems * 2);

    /* the CPU backend on the same inputs (host pointers), small shapes only */
    uint16_t *cpu_out = NULL;
    if (!c->sample) {
        zt_attn ac = {.sq = c->sq, .sk = c->sk, .heads = c->heads, .kv_heads = c->kv_heads, .hd = hd,
                      .q = in + q_off, .ldq = ldq, .k = in + k_off, .ldk = ldk, .v = in + v_off, .ldv = ldv,
                      .o = NULL, .ldo = ldo, .dt = g_dt, .scale = scale, .causal = c->causal};
        cpu_out = malloc(out_elems * 2);
        void *ws = malloc(zt_attention_workspace_size(g_cpu, &ac) + 16);
        ZT_CHECK(cpu_out && ws, "host allocation");
        memset(cpu_out, 0xff, out_elems * 2);
        ac.o = cpu_out;
        zt_op_attention(g_cpu, &ac, ws);
        free(ws);
        double num = 0, den = 0;
        for (int h = 0; h < c->heads; h++)
            for (int x = 0; x < nrows; x++) {
                const double *rr = ref + ((size_t)h * nrows + x) * hd;
                const uint16_t *orow = cpu_out + (size_t)rows[h * nrows + x] * ldo + (size_t)h * hd;
                for (int d = 0; d < hd; d++) {
                    double e = from_e(orow[d]) - rr[d];
                    num += e * e;
                    den += rr[d] * rr[d];
                }
            }
        double rel = den > 0 ? sqrt(num / den) : sqrt(num);
        ZT_CHECK(rel <= 1e-2, "%s: CPU backend vs double reference: rel L2 %.3e", c->name, rel);
    }
    zt_attn a = {.sq = c->sq, .sk = c->sk, .heads = c->heads, .kv_heads = c->kv_heads, .hd = hd,
                 .q = din + q_off, .ldq = ldq, .k = din + k_off, .ldk = ldk, .v = din + v_off, .ldv = ldv,
                 .o = dout, .ldo = ldo, .dt = g_dt, .scale = scale, .causal = c->causal};
    ZT_CHECK(zt_cuda_attention_workspace_size(ops, &a) == 0, "workspace");

    for (int variant = 0; variant < ZT_ATTN_VARIANTS; variant++) {
        if (!zt_cuda_attention_variant_ok(variant, &a)) continue;
        zt_mem_fill_u8(ops, dout, 0xff, (out_elems + 8) * 2); /* bf16 0xffff = NaN */
        if (variant == 0) zt_op_attention(ops, &a, NULL);
        else zt_cuda_attention_variant(ops, &a, variant);
        CK(cudaGetLastError());
        zt_mem_download(ops, out, dout, out_elems * 2);

        /* every in-range element written and finite; padding untouched */
        size_t bad = 0, pad_hit = 0;
        for (int r = 0; r < c->sq; r++) {
            for (int j = 0; j < qw; j++)
                if (!isfinite(from_e(out[(size_t)r * ldo + j]))) bad++;
            for (int j = qw; j < ldo; j++)
                if (out[(size_t)r * ldo + j] != 0xffff) pad_hit++;
        }
        ZT_CHECK(bad == 0, "%s %s: %zu output elements unwritten or not finite", c->name,
                 zt_cuda_attention_variant_name(variant), bad);
        ZT_CHECK(pad_hit == 0, "%s %s: %zu padding elements overwritten", c->name,
                 zt_cuda_attention_variant_name(variant), pad_hit);

        double num = 0, den = 0, maxabs = 0;
        for (int h = 0; h < c->heads; h++)
            for (int x = 0; x < nrows; x++) {
                const double *rr = ref + ((size_t)h * nrows + x) * hd;
                const uint16_t *orow = out + (size_t)rows[h * nrows + x] * ldo + (size_t)h * hd;
                for (int d = 0; d < hd; d++) {
                    double e = from_e(orow[d]) - rr[d];
                    num += e * e;
                    den += rr[d] * rr[d];
                    if (fabs(e) > maxabs) maxabs = fabs(e);
                }
            }
        double rel = den > 0 ? sqrt(num / den) : sqrt(num);
        if (bad) rel = INFINITY;
        /* against the CPU backend: every element */
        double rel_cpu = -1;
        if (cpu_out) {
            double n2 = 0, d2 = 0;
            for (int r = 0; r < c->sq; r++)
                for (int j = 0; j < qw; j++) {
                    double ref_v = from_e(cpu_out[(size_t)r * ldo + j]);
                    double e = from_e(out[(size_t)r * ldo + j]) - ref_v;
                    n2 += e * e;
                    d2 += ref_v * ref_v;
                }
            rel_cpu = d2 > 0 ? sqrt(n2 / d2) : sqrt(n2);
            if (bad || isnan(rel_cpu)) rel_cpu = INFINITY;
            ZT_CHECK(rel_cpu <= 1e-2, "%s %s: rel L2 vs CPU backend %.3e > 1e-2", c->name,
                     zt_cuda_attention_variant_name(variant), rel_cpu);
        }
        printf("  %-26s %-20s vs double %.2e (max_abs %.2e)  vs cpu %.2e\n", c->name,
               zt_cuda_attention_variant_name(variant), rel, maxabs, rel_cpu);
        ZT_CHECK(rel <= 1e-2, "%s %s: rel L2 %.3e > 1e-2", c->name, zt_cuda_attention_variant_name(variant), rel);
    }
    free(cpu_out);
    free(rows);
    free(ref);
    free(w);
    free(in);
    free(out);
    zt_mem_free(ops, din);
    zt_mem_free(ops, dout);
}

/* f32 attention must abort (CPU-only dtype), before touching the GPU. */
static void check_f32_aborts(void) {
    pid_t pid = fork();
    if (pid == 0) {
        fclose(stderr); /* the expected assertion message would confuse readers */
        zt_ops ops = {.backend = ZT_BACKEND_CUDA};
        float buf[64];
        zt_attn a = {.sq = 1, .sk = 1, .heads = 1, .kv_heads = 1, .hd = 64, .q = buf, .ldq = 64, .k = buf,
                     .ldk = 64, .v = buf, .ldv = 64, .o = buf, .ldo = 64, .dt = ZT_DT_F32, .scale = 1};
        zt_cuda_attention(&ops, &a, NULL);
        _exit(0);
    }
    int st = 0;
    ZT_CHECK(pid > 0 && waitpid(pid, &st, 0) == pid, "fork/wait");
    ZT_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "f32 CUDA attention must abort (status 0x%x)", st);
}

int main(void) {
    check_f32_aborts();
    if (!zt_cuda_available()) zt_test_skip("no CUDA device");
    const char *qe = getenv("ZT_ATTN_TEST_QUICK");
    int quick = qe && *qe && strcmp(qe, "0") != 0;
    zt_err e = {0};
    zt_ops_config cc = {.backend = ZT_BACKEND_CPU}, gc = {.backend = ZT_BACKEND_CUDA};
    zt_ops *gpu = NULL;
    if (zt_ops_create(&cc, &g_cpu, &e) || zt_ops_create(&gc, &gpu, &e)) {
        fprintf(stderr, "ops context: %s\n", e.msg);
        return 1;
    }
    /* bf16, then f16 (the fp16 path); a CUDA_ARCH=sm_75 build has no bf16 kernels: f16 only */
    const int bf16_kernels = zt_cuda_bf16_kernels();
    for (int f16 = !bf16_kernels; f16 < 2; f16++) {
        g_dt = f16 ? ZT_DT_F16 : ZT_DT_BF16;
        printf("-- %s --\n", f16 ? "f16" : "bf16");
        for (size_t ci = 0; ci < ZT_ARRAY_LEN(cases); ci++) {
            if (quick && !cases[ci].quick) continue;
            run_case(gpu, &cases[ci]);
        }
    }
    zt_ops_destroy(gpu);
    zt_ops_destroy(g_cpu);
    return zt_test_finish("test_attention_cuda");
}
