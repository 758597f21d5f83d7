/* tests/test_wdecode_cuda.c — zt_op_wdecode on the GPU against the source
 * words and against the CPU backend (tests/test_ops_cuda.c style; skips
 * with exit 77 without a CUDA device):
 *   - bit-exact decode for near-normal weights, +-0, NaN/Inf/denormals,
 *     every exponent, random words, a chunk of escapes, mixed scales, at
 *     sizes that are multiples of nothing (1 word .. 8 Mi words), on the ops
 *     stream and on another stream, whole or in pieces of 3 chunks copied
 *     to buffers of their own (as the stream moves a unit);
 *   - the destination is poisoned first and a guard after the last word
 *     must stay poisoned (no write past n words);
 *   - images whose bytes lie after validation (every code an escape, every
 *     level-2 code raw, tile tables that run away or decrease, a directory
 *     pointing anywhere, random bytes; written to the device copy only)
 *     decode without a fault to exactly what the CPU decoder makes of the
 *     same bytes (the clamps agree). Run it under
 *     compute-sanitizer memcheck to see no access leaves the buffers
 *     (tools/gpu/suite-full.sh coded: ZT_WDECODE_QUICK=1 keeps sizes small). */
#include <stdlib.h>
#include <string.h>

#include "common/zt_dtype.h"
#include "kernels/ops.h"
#include "storage/store_format.h"
#include "storage/wcode.h"
#include "tests/zt_test.h"

#include <cuda_runtime.h>

static zt_ops *g_cpu, *g_gpu;
static zt_rng g_rng = {0x77aa55cc};

static void fill(uint16_t *w, uint64_t n, int dist) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t x = zt_rng_u64(&g_rng);
        switch (dist) {
        case 0: w[i] = zt_f32_to_bf16((float)(0.02 * zt_rng_normal(&g_rng))); break;
        case 1: w[i] = (x & 1) ? 0x8000 : 0; break;
        case 2: {
            static const uint16_t sp[] = {0x7f80, 0xff80, 0x7fc0, 0xffff, 0x7f81, 0x0001, 0x807f, 0x0000, 0x8000};
            w[i] = (x % 3) ? sp[(x >> 8) % 9] : (uint16_t)(x >> 20);
            break;
        }
        case 3: w[i] = (uint16_t)((i & 0xff) << 7 | (x & 0x807f)); break;
        case 4: w[i] = (uint16_t)(x >> 17); break;
        case 5:
            if (i / 262144 == 1) w[i] = (uint16_t)((64 + (i % 64)) << 7 | (x & 0x807f));
            else w[i] = zt_f32_to_bf16((float)(0.02 * zt_rng_normal(&g_rng)));
            break;
        default: w[i] = zt_f32_to_bf16((float)(ldexp(zt_rng_normal(&g_rng), (int)((i / 777) % 40) - 20))); break;
        }
    }
}
static const char *k_dist[] = {"normal", "zero", "nan-inf-denormal", "all-exponents", "random-words", "escape-chunk",
                               "mixed-scales"};

#define GUARD 64 /* poisoned words after the last one */

/* Decode `img` (validated as L) on the GPU (stream: NULL or another one) and
 * on the CPU; compare with each other and, when want != NULL, with it. */
/* Decode `img` (validated as L) on the GPU and on the CPU and compare with
 * each other and, when want != NULL, with it. pieces > 0: the GPU gets the
 * header + directory in one buffer and runs of `pieces` chunks each in a
 * buffer of their own (as the stream moves a unit), else the whole image. */
static const uint8_t *g_valid; /* piece bounds come from this (validated) image's directory, as in the stream */

static int run_case(const char *what, const uint8_t *img, const zt_wcode_info *L, const uint16_t *want,
                    cudaStream_t stream, uint32_t pieces) {
    const uint8_t *dir_img = g_valid ? g_valid : img;
    const uint64_t n = L->n_words;
    uint8_t *d_img = zt_mem_alloc(g_gpu, L->total_bytes);
    uint16_t *d_out = zt_mem_alloc(g_gpu, (n + GUARD) * 2);
    uint16_t *gpu = malloc((n + GUARD) * 2), *cpu = malloc((n + GUARD) * 2);
    zt_mem_upload(g_gpu, d_img, img, L->total_bytes);
    zt_mem_fill_u8(g_gpu, d_out, 0xff, (n + GUARD) * 2);
    zt_ops_sync(g_gpu);
    if (!pieces) {
        zt_op_wdecode_image(g_gpu, L, d_img, d_out, stream);
    } else {
        for (uint32_t c0 = 0; c0 < L->n_chunks; c0 += pieces) {
            const uint32_t c1 = c0 + pieces < L->n_chunks ? c0 + pieces : L->n_chunks;
            const uint64_t base = zt_wcode_dir(dir_img, c0), len = zt_wcode_dir(dir_img, c1) - base;
            uint8_t *d_piece = zt_mem_alloc(g_gpu, len);
            zt_mem_upload(g_gpu, d_piece, img + base, len);
            const zt_wdecode d = {d_img, d_piece, base, len, c0, c1, d_out};
            zt_op_wdecode(g_gpu, L, &d, stream);
            if (stream) cudaStreamSynchronize(stream);
            zt_ops_sync(g_gpu);
            zt_mem_free(g_gpu, d_piece);
        }
    }
    if (stream) cudaStreamSynchronize(stream);
    zt_mem_download(g_gpu, gpu, d_out, (n + GUARD) * 2);
    memset(cpu, 0xff, (n + GUARD) * 2);
    zt_op_wdecode_image(g_cpu, L, img, cpu, NULL);
    uint64_t bad = 0, first = n, guard_bad = 0, want_bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (gpu[i] != cpu[i]) {
            if (!bad) first = i;
            bad++;
        }
        if (want && gpu[i] != want[i]) want_bad++;
    }
    for (uint64_t i = n; i < n + GUARD; i++) guard_bad += gpu[i] != 0xffff;
    printf("wdecode %-44s %9llu words: %llu differ from the CPU decoder%s, guard %s%s\n", what, (unsigned long long)n,
           (unsigned long long)bad, want ? (want_bad ? ", DIFFERS from the source" : ", exact") : "",
           guard_bad ? "WRITTEN" : "intact",
           bad || want_bad || guard_bad ? "  OVER THE ELEMENT BOUND (the bound is 0: bit-exact)" : "");
    ZT_CHECK(bad == 0, "%s: %llu words differ from the CPU decoder, first at %llu (gpu %04x cpu %04x)", what,
             (unsigned long long)bad, (unsigned long long)first, first < n ? gpu[first] : 0,
             first < n ? cpu[first] : 0);
    ZT_CHECK(!want || want_bad == 0, "%s: %llu words differ from the source", what, (unsigned long long)want_bad);
    ZT_CHECK(guard_bad == 0, "%s: %llu words written past the image", what, (unsigned long long)guard_bad);
    zt_mem_free(g_gpu, d_img);
    zt_mem_free(g_gpu, d_out);
    free(gpu);
    free(cpu);
    return bad == 0;
}

/* Overwrite the code, level-2 and raw sections of every chunk with `v`. */
static void smash_sections(uint8_t *img, const zt_wcode_info *L, uint8_t v) {
    for (uint32_t c = 0; c < L->n_chunks; c++) {
        const uint64_t pc = zt_wcode_dir(img, c);
        const uint64_t tl = c + 1 < L->n_chunks ? ZT_WCODE_CHUNK_TILES : L->n_tiles - (uint64_t)c * ZT_WCODE_CHUNK_TILES;
        const uint64_t from = pc + ZT_WCODE_CHUNK_HEAD + tl * ZT_WCODE_TILE;
        memset(img + from, v, zt_wcode_dir(img, c + 1) - from);
    }
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
    cudaStream_t other;
    cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking);
    const uint64_t sizes[] = {1, 7, 8, 4095, 4096, 4097, 262145, 1000003, 8u << 20};
    const uint64_t maxn = 8u << 20;
    /* ZT_WDECODE_QUICK=1 (compute-sanitizer runs): sizes up to 262145 words, every case of lying data */
    const int quick = getenv("ZT_WDECODE_QUICK") && atoi(getenv("ZT_WDECODE_QUICK")) == 1;
    uint16_t *w = malloc(maxn * 2);
    uint64_t cap = zt_wcode_bound(maxn);
    uint8_t *img = malloc(cap);
    for (int d = 0; d < 7; d++)
        for (size_t k = 0; k < ZT_ARRAY_LEN(sizes); k++) {
            const uint64_t n = sizes[k];
            if (n == maxn && d != 0 && d != 4) continue; /* the big size: near-normal and random words */
            if (quick && n > 262145) continue;
            fill(w, n, d);
            uint64_t bytes;
            zt_wcode_info L;
            if (zt_wcode_encode(w, n, img, cap, 2, &bytes, &e) ||
                zt_wcode_validate(img, bytes, ZT_WCODE_CHECK_CONTENT, "t", &L, &e)) {
                ZT_CHECK(0, "%s n=%llu: %s", k_dist[d], (unsigned long long)n, e.msg);
                continue;
            }
            char what[96];
            const uint32_t pieces = k % 3 == 2 ? 3 : 0;
            snprintf(what, sizeof what, "%s%s%s", k_dist[d], k % 2 ? " (other stream)" : "",
                     pieces ? " (pieces of 3 chunks)" : "");
            run_case(what, img, &L, w, k % 2 ? other : NULL, pieces);
        }

    /* lying bodies after validation: the device copy's sections, tables and
     * directory change; the numbers passed to the kernel stay the validated ones */
    const uint64_t n = quick ? 262144 + 999 : 3 * 262144 + 999;
    fill(w, n, 0);
    uint64_t bytes;
    zt_wcode_info L;
    ZT_CHECK(zt_wcode_encode(w, n, img, cap, 2, &bytes, &e) == ZT_OK && zt_wcode_validate(img, bytes, 0, "t", &L, &e) == ZT_OK,
             "encode: %s", e.msg);
    uint8_t *bad = malloc(bytes);
    memcpy(bad, img, bytes);
    g_valid = img;
    smash_sections(bad, &L, 0xff);
    run_case("every code an escape, every escape raw", bad, &L, NULL, NULL, 0);
    run_case("the same, in pieces", bad, &L, NULL, NULL, 1);
    for (int round = 0; round < 3; round++) {
        memcpy(bad, img, bytes);
        smash_sections(bad, &L, 0xff);
        for (uint32_t c = 0; c < L.n_chunks; c++) {
            const uint64_t pc = zt_wcode_dir(img, c);
            for (uint64_t t = 0; t <= ZT_WCODE_CHUNK_TILES; t++) { /* ranges that never end, or decrease */
                const uint32_t v = round == 0 ? 0xffffffffu : round == 1 ? (t % 2 ? 0xffffffffu : 0u) : (uint32_t)(70 - t);
                if (16 + 8 * t + 8 <= ZT_WCODE_CHUNK_HEAD) {
                    zt_wr32(bad + pc + 16 + 8 * t, v);
                    zt_wr32(bad + pc + 20 + 8 * t, v);
                }
            }
        }
        if (round == 2) /* a directory that points backwards, past the end, off the alignment */
            for (uint32_t c = 0; c <= L.n_chunks; c++) zt_wr64(bad + 256 + 8 * c, c % 3 == 0 ? bytes * 2 : c % 3 == 1 ? 512 : 1000);
        char what[64];
        snprintf(what, sizeof what, "lying tile tables, round %d", round);
        run_case(what, bad, &L, NULL, NULL, 0);
        snprintf(what, sizeof what, "lying tile tables, round %d, in pieces", round);
        run_case(what, bad, &L, NULL, NULL, 2);
    }
    memcpy(bad, img, bytes);
    for (uint64_t i = 256; i < bytes; i++)
        if (zt_rng_u64(&g_rng) % 97 == 0) bad[i] = (uint8_t)zt_rng_u64(&g_rng);
    run_case("random bytes everywhere past the header", bad, &L, NULL, NULL, 0);
    free(bad);

    free(w);
    free(img);
    cudaStreamDestroy(other);
    zt_ops_destroy(g_cpu);
    zt_ops_destroy(g_gpu);
    return zt_test_finish("test_wdecode_cuda");
}
