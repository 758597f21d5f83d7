/* tests/test_attention_cuda.c — zt_cuda_attention (and every tiling variant
 * of kernels/cuda_attention.cu) against a naive double-precision reference
 * computed here from the same bf16 inputs, on fresh random data.
 *
 * Each case: random q, k (scaled by `amp`, so some cases have peaked
 * softmaxes) and v; the output (padding columns included) is poisoned with
 * bf16 NaN before every run; afterwards every in-range element must be
 * finite, every padding element still poisoned, and the rel L2 error over the
 * checked rows <= 1e-2 (bf16 P before P·V and the bf16 output give ~3e-3).
 * Large shapes check a sample of rows (first, last, random) of every head.
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

static uint16_t to_bf16(double x) { return zt_f32_to_bf16((float)x); }

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
        for (int d = 0; d < hd; d++) s += (double)zt_bf16_to_f32(qr[d]) * (double)zt_bf16_to_f32(kr[d]);
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
        for (int d = 0; d < hd; d++) out[d] += p * (double)zt_bf16_to_f32(vr[d]);
    }
}

static zt_rng rng = {0x9e3779b97f4a7c15ull};

/* Returns the rel L2 error of one run (or INFINITY on unwritten output). */
static double run_case(zt_ops *ops, const tcase *c, int variant) {
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
    uint16_t *in = malloc((in_elems + 1) * 2), *out = malloc(((size_t)c->sq * ldo + 1) * 2);
    ZT_CHECK(in && out, "host allocation");
    /* fresh random data every run; q and k share amp, v is N(0, 1) */
    for (size_t x = 0; x < in_elems; x++) in[x] = to_bf16(zt_rng_normal(&rng));
    double qk_amp = sqrt(c->amp);
    for (int r = 0; r < c->sq; r++)
        for (int j = 0; j < qw; j++) in[q_off + (size_t)r * ldq + j] = to_bf16(zt_rng_normal(&rng) * qk_amp);
    for (int r = 0; r < c->sk; r++)
        for (int j = 0; j < kw; j++) in[k_off + (size_t)r * ldk + j] = to_bf16(zt_rng_normal(&rng) * qk_amp);

    uint16_t *din, *dout;
    CK(cudaMalloc((void **)&din, (in_elems + 8) * 2));
    CK(cudaMalloc((void **)&dout, ((size_t)c->sq * ldo + 8) * 2));
    CK(cudaMemcpy(din, in, in_elems * 2, cudaMemcpyHostToDevice));
    CK(cudaMemset(dout, 0xff, ((size_t)c->sq * ldo + 8) * 2)); /* bf16 0xffff = NaN */

    float scale = (float)(1.0 / sqrt((double)hd));
    zt_attn a = {.sq = c->sq, .sk = c->sk, .heads = c->heads, .kv_heads = c->kv_heads, .hd = hd,
                 .q = din + q_off, .ldq = ldq, .k = din + k_off, .ldk = ldk, .v = din + v_off, .ldv = ldv,
                 .o = dout, .ldo = ldo, .dt = ZT_DT_BF16, .scale = scale, .causal = c->causal};
    ZT_CHECK(zt_cuda_attention_workspace_size(ops, &a) == 0, "workspace");
    if (variant == 0) zt_cuda_attention(ops, &a, NULL);
    else zt_cuda_attention_variant(ops, &a, variant);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(out, dout, (size_t)c->sq * ldo * 2, cudaMemcpyDeviceToHost));

    /* every in-range element written and finite; padding untouched */
    size_t bad = 0, pad_hit = 0;
    for (int r = 0; r < c->sq; r++) {
        for (int j = 0; j < qw; j++)
            if (!isfinite(zt_bf16_to_f32(out[(size_t)r * ldo + j]))) bad++;
        for (int j = qw; j < ldo; j++)
            if (out[(size_t)r * ldo + j] != 0xffff) pad_hit++;
    }
    ZT_CHECK(bad == 0, "%s variant %d: %zu output elements unwritten or not finite", c->name, variant, bad);
    ZT_CHECK(pad_hit == 0, "%s variant %d: %zu padding elements overwritten", c->name, variant, pad_hit);

    /* rows to check */
    int nrows = c->sample ? (c->sample < c->sq ? c->sample : c->sq) : c->sq;
    double *w = malloc(sizeof(double) * (c->sk + 1)), *ref = malloc(sizeof(double) * hd);
    double num = 0, den = 0, maxabs = 0;
    for (int h = 0; h < c->heads; h++)
        for (int x = 0; x < nrows; x++) {
            int i = !c->sample ? x : x == 0 ? 0 : x == 1 ? c->sq - 1 : (int)(zt_rng_u64(&rng) % (uint64_t)c->sq);
            ref_row(c, i, h, in + q_off, ldq, in + k_off, ldk, in + v_off, ldv, scale, w, ref);
            for (int d = 0; d < hd; d++) {
                double got = zt_bf16_to_f32(out[(size_t)i * ldo + (size_t)h * hd + d]);
                double e = got - ref[d];
                num += e * e;
                den += ref[d] * ref[d];
                if (fabs(e) > maxabs) maxabs = fabs(e);
            }
        }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    if (bad) rel = INFINITY;
    printf("  %-26s %-22s rel_l2 %.2e  max_abs %.2e\n", c->name, zt_cuda_attention_variant_name(variant), rel,
           maxabs);
    free(w);
    free(ref);
    free(in);
    free(out);
    CK(cudaFree(din));
    CK(cudaFree(dout));
    return rel;
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
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) zt_test_skip("no CUDA device");
    const char *qe = getenv("ZT_ATTN_TEST_QUICK");
    int quick = qe && *qe && strcmp(qe, "0") != 0;
    zt_ops ops = {.backend = ZT_BACKEND_CUDA, .device = 0, .stream = NULL};

    for (size_t ci = 0; ci < ZT_ARRAY_LEN(cases); ci++) {
        const tcase *c = &cases[ci];
        if (quick && !c->quick) continue;
        for (int v = 0; v < ZT_ATTN_VARIANTS; v++) {
            zt_attn probe = {.hd = c->hd, .dt = ZT_DT_BF16};
            if (!zt_cuda_attention_variant_ok(v, &probe)) continue;
            /* the big shapes only with the default pick */
            if (v != 0 && c->sample) continue;
            double rel = run_case(&ops, c, v);
            ZT_CHECK(rel <= 1e-2, "%s variant %s: rel L2 %.3e > 1e-2", c->name, zt_cuda_attention_variant_name(v),
                     rel);
        }
    }
    return zt_test_finish("test_attention_cuda");
}
