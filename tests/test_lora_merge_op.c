/* tests/test_lora_merge_op.c — zt_op_lora_merge (kernels/ops.h) at odd
 * shapes (rows and columns not multiples of any tile, rank 1, 3, 17, 64,
 * 130, up to three terms, coefficients of both signs): the CPU backend
 * against a plain loop of ops.h's formula, bit for bit, with 1 and 2
 * threads, in both of its variants (FMA vectors where the CPU has them, and
 * the portable loop); the CUDA backend against the CPU backend, bit for bit (skipped
 * without a GPU). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops_internal.h"
#include "tests/zt_test.h"

static void reference(int64_t rows, int64_t cols, uint16_t *w, const zt_lora_term *t, int n) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            float acc = zt_bf16_to_f32(w[i * cols + j]);
            for (int l = 0; l < n; l++) {
                float d = 0.0f;
                for (int k = 0; k < t[l].rank; k++) d = fmaf(t[l].b[i * t[l].rank + k], t[l].a[(int64_t)k * cols + j], d);
                acc = fmaf(t[l].coef, d, acc);
            }
            w[i * cols + j] = zt_f32_to_bf16(acc);
        }
}

int main(void) {
    static const struct { int64_t rows, cols; int n; int rank[3]; float coef[3]; } cases[] = {
        {1, 1, 1, {1}, {1.0f}},
        {37, 53, 1, {3}, {0.5f}},
        {130, 257, 2, {17, 4}, {0.8f, -0.35f}},
        {64, 64, 1, {64}, {2.0f}},
        {300, 97, 3, {130, 1, 8}, {0.125f, 3.0f, -1.0f}},
        {5, 1000, 1, {16}, {0.0f}},
    };
    zt_rng rng = {0x1234567ull};
    zt_ops *cpu1 = NULL, *cpu2 = NULL, *gpu = NULL;
    zt_err e = {0};
    zt_ops_config c1 = {.backend = ZT_BACKEND_CPU, .cpu_threads = 1}, c2 = {.backend = ZT_BACKEND_CPU, .cpu_threads = 2};
    ZT_CHECK(zt_ops_create(&c1, &cpu1, &e) == 0 && zt_ops_create(&c2, &cpu2, &e) == 0, "ops: %s", e.msg);
    if (zt_cuda_available()) {
        zt_ops_config cg = {.backend = ZT_BACKEND_CUDA};
        ZT_CHECK(zt_ops_create(&cg, &gpu, &e) == 0, "cuda ops: %s", e.msg);
    }
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int64_t R = cases[ci].rows, C = cases[ci].cols;
        zt_lora_term t[3];
        float *mem[6] = {0};
        for (int l = 0; l < cases[ci].n; l++) {
            const int r = cases[ci].rank[l];
            float *a = malloc((size_t)r * C * 4), *b = malloc((size_t)R * r * 4);
            for (int64_t k = 0; k < (int64_t)r * C; k++) a[k] = (float)(zt_rng_normal(&rng) * 0.3);
            for (int64_t k = 0; k < R * r; k++) b[k] = (float)(zt_rng_normal(&rng) * 0.3);
            t[l] = (zt_lora_term){r, cases[ci].coef[l], a, b};
            mem[2 * l] = a;
            mem[2 * l + 1] = b;
        }
        uint16_t *w0 = malloc((size_t)R * C * 2), *wr = malloc((size_t)R * C * 2), *w1 = malloc((size_t)R * C * 2),
                 *w2 = malloc((size_t)R * C * 2);
        for (int64_t k = 0; k < R * C; k++) w0[k] = zt_f32_to_bf16((float)zt_rng_normal(&rng));
        memcpy(wr, w0, (size_t)R * C * 2);
        memcpy(w1, w0, (size_t)R * C * 2);
        memcpy(w2, w0, (size_t)R * C * 2);
        reference(R, C, wr, t, cases[ci].n);
        zt_op_lora_merge(cpu1, R, C, w1, t, cases[ci].n);
        zt_op_lora_merge(cpu2, R, C, w2, t, cases[ci].n);
        uint16_t *w3 = malloc((size_t)R * C * 2);
        memcpy(w3, w0, (size_t)R * C * 2);
        zt_cpu_lora_merge_variant(cpu2, R, C, w3, t, cases[ci].n, 1);
        ZT_CHECK(!memcmp(wr, w3, (size_t)R * C * 2), "case %zu: CPU portable loop differs from the formula", ci);
        free(w3);
        size_t changed = 0;
        for (int64_t k = 0; k < R * C; k++) changed += wr[k] != w0[k];
        ZT_CHECK(!memcmp(wr, w1, (size_t)R * C * 2), "case %zu: CPU (1 thread) differs from the formula", ci);
        ZT_CHECK(!memcmp(wr, w2, (size_t)R * C * 2), "case %zu: CPU (2 threads) differs from the formula", ci);
        ZT_CHECK(cases[ci].coef[0] == 0.0f || changed > (size_t)(R * C) / 2, "case %zu: only %zu of %lld changed", ci,
                 changed, (long long)(R * C));
        if (gpu) {
            uint16_t *dw = zt_mem_alloc(gpu, (size_t)R * C * 2);
            zt_lora_term dt[3];
            for (int l = 0; l < cases[ci].n; l++) {
                float *da = zt_mem_alloc(gpu, (size_t)t[l].rank * C * 4), *db = zt_mem_alloc(gpu, (size_t)R * t[l].rank * 4);
                zt_mem_upload(gpu, da, t[l].a, (size_t)t[l].rank * C * 4);
                zt_mem_upload(gpu, db, t[l].b, (size_t)R * t[l].rank * 4);
                dt[l] = (zt_lora_term){t[l].rank, t[l].coef, da, db};
            }
            zt_mem_upload(gpu, dw, w0, (size_t)R * C * 2);
            zt_op_lora_merge(gpu, R, C, dw, dt, cases[ci].n);
            uint16_t *wg = malloc((size_t)R * C * 2);
            zt_mem_download(gpu, wg, dw, (size_t)R * C * 2);
            size_t diff = 0;
            for (int64_t k = 0; k < R * C; k++) diff += wg[k] != wr[k];
            ZT_CHECK(diff == 0, "case %zu: CUDA differs from the CPU in %zu of %lld elements", ci, diff, (long long)(R * C));
            free(wg);
            for (int l = 0; l < cases[ci].n; l++) {
                zt_mem_free(gpu, (void *)dt[l].a);
                zt_mem_free(gpu, (void *)dt[l].b);
            }
            zt_mem_free(gpu, dw);
        }
        for (int k = 0; k < 6; k++) free(mem[k]);
        free(w0), free(wr), free(w1), free(w2);
    }
    if (!gpu) printf("CUDA: no device, CPU checks only\n");
    zt_ops_destroy(cpu1);
    zt_ops_destroy(cpu2);
    if (gpu) zt_ops_destroy(gpu);
    return zt_test_finish("test_lora_merge_op");
}
