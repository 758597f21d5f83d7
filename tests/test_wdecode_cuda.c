/* tests/test_wdecode_cuda.c — zt_op_wdecode on the GPU, every launch
 * variant (kernels/cuda_wdecode.h) and the default, against the source
 * words and against the CPU backend (tests/test_ops_cuda.c style; skips
 * with exit 77 without a CUDA device):
 *   - bit-exact decode for near-normal weights, +-0, NaN/Inf/denormals,
 *     every exponent, random words, a chunk of escapes, mixed scales, at
 *     sizes that are multiples of nothing (1 word .. 8 Mi words), on the ops
 *     stream and on another stream, whole or in pieces of 3 chunks copied
 *     to buffers of their own (as the stream moves a unit);
 *   - the destination is poisoned first and a guard after the last word
 *     must stay poisoned (no write past n words);
 *   - images whose bytes lie after validation (tests/wdecode_cases.h: every
 *     code an escape, every level-2 code raw, tile tables that run away or
 *     decrease, a directory pointing anywhere, random bytes; written to the
 *     device copy only) decode without a fault to exactly what the CPU
 *     decoder makes of the same bytes (the clamps agree). Run it under
 *     compute-sanitizer memcheck to see no access of any variant leaves the
 *     buffers (tools/gpu/suite-full.sh coded: ZT_WDECODE_QUICK=1 keeps
 *     sizes small).
 * One line per case and variant; the summary line names the variants that
 * failed anything (a variant that fails must not become the default). */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_wdecode.h"
#include "kernels/ops.h"
#include "tests/wdecode_cases.h"

#include <cuda_runtime.h>

static zt_ops *g_cpu, *g_gpu;
static zt_rng g_rng = {0x77aa55cc};
static int g_variant_failed[ZT_WDECODE_VARIANTS + 1];

#define GUARD 64 /* poisoned words after the last one */

/* Decode `img` (validated as L) with every variant on the GPU (stream: NULL
 * or another one) and once on the CPU; compare each with the CPU and, when
 * want != NULL, with it. pieces > 0: the GPU gets the header + directory in
 * one buffer and runs of `pieces` chunks each in a buffer of their own, with
 * bounds from the valid image's directory (as in the stream), else the
 * whole image. */
static void run_case(const char *what, const uint8_t *img, const uint8_t *valid_img, const zt_wcode_info *L,
                     const uint16_t *want, cudaStream_t stream, uint32_t pieces) {
    const uint64_t n = L->n_words;
    uint8_t *d_img = zt_mem_alloc(g_gpu, L->total_bytes);
    uint16_t *d_out = zt_mem_alloc(g_gpu, (n + GUARD) * 2);
    uint16_t *gpu = malloc((n + GUARD) * 2), *cpu = malloc((n + GUARD) * 2);
    zt_mem_upload(g_gpu, d_img, img, L->total_bytes);
    const uint32_t n_pieces = pieces ? (L->n_chunks + pieces - 1) / pieces : 0;
    uint8_t **d_piece = calloc(n_pieces ? n_pieces : 1, sizeof *d_piece);
    for (uint32_t k = 0; k < n_pieces; k++) {
        const uint32_t c0 = k * pieces, c1 = c0 + pieces < L->n_chunks ? c0 + pieces : L->n_chunks;
        const uint64_t base = zt_wcode_dir(valid_img, c0), len = zt_wcode_dir(valid_img, c1) - base;
        d_piece[k] = zt_mem_alloc(g_gpu, len);
        zt_mem_upload(g_gpu, d_piece[k], img + base, len);
    }
    memset(cpu, 0xff, (n + GUARD) * 2);
    zt_op_wdecode_image(g_cpu, L, img, cpu, NULL);
    for (int v = 0; v <= ZT_WDECODE_VARIANTS; v++) {
        zt_mem_fill_u8(g_gpu, d_out, 0xff, (n + GUARD) * 2);
        zt_ops_sync(g_gpu);
        if (!pieces) {
            const zt_wdecode d = {d_img, d_img + L->dir_bytes, L->dir_bytes, L->total_bytes - L->dir_bytes, 0,
                                  L->n_chunks, d_out};
            if (v == 0) zt_op_wdecode_image(g_gpu, L, d_img, d_out, stream); /* the product's entry */
            else zt_cuda_wdecode_variant(g_gpu, L, &d, stream, v);
        } else {
            for (uint32_t k = 0; k < n_pieces; k++) {
                const uint32_t c0 = k * pieces, c1 = c0 + pieces < L->n_chunks ? c0 + pieces : L->n_chunks;
                const uint64_t base = zt_wcode_dir(valid_img, c0), len = zt_wcode_dir(valid_img, c1) - base;
                const zt_wdecode d = {d_img, d_piece[k], base, len, c0, c1, d_out};
                if (v == 0) zt_op_wdecode(g_gpu, L, &d, stream);
                else zt_cuda_wdecode_variant(g_gpu, L, &d, stream, v);
            }
        }
        if (stream) cudaStreamSynchronize(stream);
        zt_ops_sync(g_gpu);
        zt_mem_download(g_gpu, gpu, d_out, (n + GUARD) * 2);
        uint64_t bad = 0, first = n, guard_bad = 0, want_bad = 0;
        for (uint64_t i = 0; i < n; i++) {
            if (gpu[i] != cpu[i] && !bad++) first = i;
            if (want && gpu[i] != want[i]) want_bad++;
        }
        for (uint64_t i = n; i < n + GUARD; i++) guard_bad += gpu[i] != 0xffff;
        const int failed = bad || want_bad || guard_bad;
        g_variant_failed[v] |= failed;
        printf("wdecode v%d %-52s %9llu words: %llu differ from the CPU decoder%s, guard %s%s\n", v, what,
               (unsigned long long)n, (unsigned long long)bad,
               want ? (want_bad ? ", DIFFERS from the source" : ", exact") : "", guard_bad ? "WRITTEN" : "intact",
               failed ? "  OVER THE ELEMENT BOUND (the bound is 0: bit-exact)" : "");
        ZT_CHECK(bad == 0, "v%d %s: %llu words differ from the CPU decoder, first at %llu (gpu %04x cpu %04x)", v, what,
                 (unsigned long long)bad, (unsigned long long)first, first < n ? gpu[first] : 0, first < n ? cpu[first] : 0);
        ZT_CHECK(!want || want_bad == 0, "v%d %s: %llu words differ from the source", v, what, (unsigned long long)want_bad);
        ZT_CHECK(guard_bad == 0, "v%d %s: %llu words written past the image", v, what, (unsigned long long)guard_bad);
    }
    for (uint32_t k = 0; k < n_pieces; k++) zt_mem_free(g_gpu, d_piece[k]);
    free(d_piece);
    zt_mem_free(g_gpu, d_img);
    zt_mem_free(g_gpu, d_out);
    free(gpu);
    free(cpu);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!zt_cuda_available()) zt_test_skip("no CUDA device");
    zt_err e = {0};
    zt_ops_config cc = {.backend = ZT_BACKEND_CPU, .cpu_threads = 2}, gc = {.backend = ZT_BACKEND_CUDA, .device = 0};
    if (zt_ops_create(&cc, &g_cpu, &e) || zt_ops_create(&gc, &g_gpu, &e)) {
        fprintf(stderr, "ops context: %s\n", e.msg);
        return 1;
    }
    for (int v = 0; v <= ZT_WDECODE_VARIANTS; v++) printf("variant %d: %s\n", v, zt_cuda_wdecode_variant_name(v));
    printf("default: v%d\n", ZT_WDECODE_VARIANT_DEFAULT);
    cudaStream_t other;
    cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking);
    const uint64_t sizes[] = {1, 7, 8, 4095, 4096, 4097, 262145, 1000003, 8u << 20};
    const uint64_t maxn = 8u << 20;
    /* ZT_WDECODE_QUICK=1 (compute-sanitizer runs): sizes up to 262145 words, every case of lying data */
    const int quick = getenv("ZT_WDECODE_QUICK") && atoi(getenv("ZT_WDECODE_QUICK")) == 1;
    uint16_t *w = malloc(maxn * 2);
    uint64_t cap = zt_wcode_bound(maxn);
    uint8_t *img = malloc(cap);
    for (int d = 0; d < WDC_DISTS; d++)
        for (size_t k = 0; k < ZT_ARRAY_LEN(sizes); k++) {
            const uint64_t n = sizes[k];
            if (n == maxn && d != 0 && d != 4) continue; /* the big size: near-normal and random words */
            if (quick && n > 262145) continue;
            wdc_fill(&g_rng, w, n, d);
            uint64_t bytes;
            zt_wcode_info L;
            if (zt_wcode_encode(w, n, img, cap, 2, &bytes, &e) ||
                zt_wcode_validate(img, bytes, ZT_WCODE_CHECK_CONTENT, "t", &L, &e)) {
                ZT_CHECK(0, "%s n=%llu: %s", wdc_dist[d], (unsigned long long)n, e.msg);
                continue;
            }
            char what[96];
            const uint32_t pieces = k % 3 == 2 ? 3 : 0;
            snprintf(what, sizeof what, "%s%s%s", wdc_dist[d], k % 2 ? " (other stream)" : "",
                     pieces ? " (pieces of 3 chunks)" : "");
            run_case(what, img, img, &L, w, k % 2 ? other : NULL, pieces);
        }

    /* lying bodies after validation (the device copy's bytes change; the
     * numbers passed to the kernel stay the validated ones): a near-normal
     * image and, for the raw bytes past a warp team's staging, one of every
     * exponent */
    for (int d = 0; d < 4; d += 3) {
        const uint64_t n = quick ? 262144 + 999 : 3 * 262144 + 999;
        wdc_fill(&g_rng, w, n, d);
        uint64_t bytes;
        zt_wcode_info L;
        ZT_CHECK(zt_wcode_encode(w, n, img, cap, 2, &bytes, &e) == ZT_OK && zt_wcode_validate(img, bytes, 0, "t", &L, &e) == ZT_OK,
                 "encode: %s", e.msg);
        uint8_t *bad = malloc(bytes);
        for (int k = 0; k < WDC_LIES; k++) {
            uint32_t pieces;
            const char *name = wdc_lie(&g_rng, bad, img, bytes, &L, k, &pieces);
            char what[128];
            snprintf(what, sizeof what, "%s: %s", wdc_dist[d], name);
            run_case(what, bad, img, &L, NULL, NULL, pieces);
        }
        free(bad);
    }

    char failed[128] = "";
    for (int v = 0; v <= ZT_WDECODE_VARIANTS; v++)
        if (g_variant_failed[v]) snprintf(failed + strlen(failed), sizeof failed - strlen(failed), " v%d", v);
    printf("variants that failed a case:%s\n", failed[0] ? failed : " none");
    free(w);
    free(img);
    cudaStreamDestroy(other);
    zt_ops_destroy(g_cpu);
    zt_ops_destroy(g_gpu);
    return zt_test_finish("test_wdecode_cuda");
}
