/* tools/kbench.cu — benchmark of the CUDA ops at the real 1024x1024 shapes
 * (DiT: 4224 tokens x 3840, 30 heads x 128, FFN 10240; VAE: 128..1024 px
 * with 512/256/128 channels). Not a test.
 *
 * Each op: warm-up, then a median over many reps of CUDA-event timings of
 * one call (calls queued back to back; KBENCH_SERIAL=1 waits after each), inputs rotated over several buffer sets when one set would fit
 * in L2. Achieved TFLOP/s (matrix ops) or GB/s (memory-bound ops, counting
 * the fewest bytes the op must move: each input read once, each output
 * written once) are printed next to the ceilings measured in the same run:
 * bf16 GEMM peak from an 8192^3 cuBLASLt GEMM and device copy bandwidth from
 * a 1 GiB device-to-device copy counting read + write.
 *
 * Output rows: | impl | op | shape | median us | achieved | % of ceiling |
 * (tools/kbench_torch.py prints the same rows for PyTorch).
 *
 * usage: kbench [filter]   (only ops whose name contains filter)
 *        KBENCH_CONV_VARIANTS=1 kbench conv   (also every conv tile variant;
 *        or a list of them, e.g. KBENCH_CONV_VARIANTS=5,6,8,9)
 *        kbench wdecode   (coded-weight decode, storage/wcode.h: every launch
 *        variant of kernels/cuda_wdecode.h, and beside GEMMs)
 *        kbench norm   (row norms: one row per launch variant "op vN" of
 *        kernels/cuda_norm.h, then a same-size copy row "op ceiling: copy";
 *        also the VAE groupnorms)
 *
 * Measured (2026-11-27, H100, sm_90a build, queued timing): copy 3.0 TB/s,
 * 8192^3 GEMM 718-747 TFLOP/s; DiT GEMMs 98-106% of that; conv2d (wgmma)
 * 0.9-1.35x the time of cuDNN (torch channels_last); row norms 74-81% of
 * copy bandwidth. Full tables: README.md, Benchmarks. */
#include <algorithm>
#include <functional>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <vector>

#include <cuda_bf16.h>

#include "common/zt_cuda.h"
#include "kernels/cuda_norm.h"
#include "kernels/cuda_wdecode.h"
#include "kernels/ops.h"
#include "storage/wcode.h"

/* internal (kernels/cuda_conv.cu): conv2d with a chosen tile variant */
extern "C" void zt_cuda_conv2d_variant(zt_ops *ops, const zt_conv2d *c, void *workspace, int variant);

static zt_ops *g_ops;
static cudaStream_t g_st;
static double g_peak_tflops, g_copy_gbs;
static const char *g_filter;
static size_t g_l2;

/* ---- device buffers with random contents ---- */
__global__ void k_fill(size_t n, int dt, uint64_t seed, float scale, float offset, void *p) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        /* sum of two uniforms: a cheap bell shape in [-1, 1) */
        const float u = (float)(z & 0xffffff) / 16777216.0f + (float)((z >> 24) & 0xffffff) / 16777216.0f - 1.0f;
        const float v = offset + scale * u;
        if (dt == ZT_DT_BF16) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
        else ((float *)p)[i] = v;
    }
}

static std::vector<void *> g_allocs;
static void *buf(size_t n, zt_dtype dt, float scale = 1.0f, float offset = 0.0f) {
    void *p = zt_mem_alloc(g_ops, n * zt_dtype_size(dt) + 256);
    if (!p) {
        fprintf(stderr, "kbench: out of device memory (%zu elements)\n", n);
        exit(1);
    }
    static uint64_t seed = 12345;
    seed += 0x632be59bd9b4e019ull;
    k_fill<<<4096, 256, 0, g_st>>>(n, dt, seed, scale, offset, p);
    ZT_CUDA_LAUNCH_CHECK();
    g_allocs.push_back(p);
    return p;
}
static void free_all(void) {
    zt_ops_sync(g_ops);
    for (void *p : g_allocs) zt_mem_free(g_ops, p);
    g_allocs.clear();
}

/* Buffer sets so that the rotation spans > 3x L2. */
static int sets_for(double bytes_per_call) {
    int s = (int)(3.0 * g_l2 / (bytes_per_call > 1 ? bytes_per_call : 1)) + 1;
    return std::min(std::max(s, 1), 8);
}

/* Median of per-call event timings, ms. The calls are queued back to back
 * (an event pair around each, no host sync in between), so each interval is
 * the GPU time of one call in a busy stream, as the pipeline runs them; with
 * KBENCH_SERIAL=1 the host waits after every call, and each interval also
 * holds the host's launch latency (2-8 us: a third of a 30 us norm). */
static double time_ms(const std::function<void(int)> &fn) {
    static const int serial = getenv("KBENCH_SERIAL") && atoi(getenv("KBENCH_SERIAL")) == 1;
    cudaEvent_t a, b;
    ZT_CUDA_CHECK(cudaEventCreate(&a));
    ZT_CUDA_CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) fn(i);
    ZT_CUDA_CHECK(cudaEventRecord(a, g_st));
    fn(3);
    ZT_CUDA_CHECK(cudaEventRecord(b, g_st));
    ZT_CUDA_CHECK(cudaEventSynchronize(b));
    float first;
    ZT_CUDA_CHECK(cudaEventElapsedTime(&first, a, b));
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    int reps = (int)(300.0 / std::max(first, 0.001f));
    reps = std::min(std::max(reps, 15), 200);
    std::vector<cudaEvent_t> ev(2 * (size_t)reps);
    for (cudaEvent_t &e : ev) ZT_CUDA_CHECK(cudaEventCreate(&e));
    std::vector<float> t(reps);
    for (int r = 0; r < reps; r++) {
        ZT_CUDA_CHECK(cudaEventRecord(ev[2 * r], g_st));
        fn(r);
        ZT_CUDA_CHECK(cudaEventRecord(ev[2 * r + 1], g_st));
        if (serial) ZT_CUDA_CHECK(cudaEventSynchronize(ev[2 * r + 1]));
    }
    ZT_CUDA_CHECK(cudaEventSynchronize(ev.back()));
    for (int r = 0; r < reps; r++) ZT_CUDA_CHECK(cudaEventElapsedTime(&t[r], ev[2 * r], ev[2 * r + 1]));
    ZT_CUDA_CHECK(cudaGetLastError());
    for (cudaEvent_t &e : ev) cudaEventDestroy(e);
    std::sort(t.begin(), t.end());
    return t[reps / 2];
}

static bool wanted(const char *op) { return !g_filter || strstr(op, g_filter); }

static void row_flops(const char *op, const char *shape, double flops, double ms) {
    const double tf = flops / (ms * 1e-3) / 1e12;
    printf("| zturbo | %s | %s | %.1f | %.1f TFLOP/s | %.0f%% |\n", op, shape, ms * 1e3, tf, 100.0 * tf / g_peak_tflops);
    fflush(stdout);
}
static void row_bytes(const char *op, const char *shape, double bytes, double ms) {
    const double gbs = bytes / (ms * 1e-3) / 1e9;
    printf("| zturbo | %s | %s | %.1f | %.0f GB/s | %.0f%% |\n", op, shape, ms * 1e3, gbs, 100.0 * gbs / g_copy_gbs);
    fflush(stdout);
}

/* ---- ceilings ---- */
static void ceilings(void) {
    const size_t bytes = (size_t)1 << 30;
    void *a = buf(bytes / 2, ZT_DT_BF16), *b = buf(bytes / 2, ZT_DT_BF16);
    const double copy_ms = time_ms([&](int) { zt_mem_copy(g_ops, b, a, bytes); });
    g_copy_gbs = 2.0 * bytes / (copy_ms * 1e-3) / 1e9;
    free_all();
    const int n = 8192;
    void *x = buf((size_t)n * n, ZT_DT_BF16), *w = buf((size_t)n * n, ZT_DT_BF16, 0.02f), *y = buf((size_t)n * n, ZT_DT_BF16);
    zt_gemm g = {};
    g.m = g.n = g.k = n;
    g.x = x; g.x_dt = ZT_DT_BF16; g.w = w; g.w_dt = ZT_DT_BF16; g.y = y; g.y_dt = ZT_DT_BF16;
    const double ms = time_ms([&](int) { zt_op_gemm(g_ops, &g); });
    g_peak_tflops = 2.0 * n * n * n / (ms * 1e-3) / 1e12;
    { /* the bus while the GPU computes, as in streaming: a 1 GiB pinned copy on
       * its own stream under back-to-back 8192^3 GEMMs on the compute stream */
        const size_t hb = (size_t)1 << 30;
        void *h = NULL, *d = NULL;
        ZT_CUDA_CHECK(cudaMallocHost(&h, hb));
        ZT_CUDA_CHECK(cudaMalloc(&d, hb));
        memset(h, 1, hb);
        cudaStream_t cs;
        cudaEvent_t a, b;
        ZT_CUDA_CHECK(cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking));
        ZT_CUDA_CHECK(cudaEventCreate(&a));
        ZT_CUDA_CHECK(cudaEventCreate(&b));
        cudaStream_t cs2;
        cudaEvent_t c2;
        ZT_CUDA_CHECK(cudaStreamCreateWithFlags(&cs2, cudaStreamNonBlocking));
        ZT_CUDA_CHECK(cudaEventCreateWithFlags(&c2, cudaEventDisableTiming));
        for (int split = 1; split <= 2; split++) { /* one copy, or two halves on two streams (two copy engines) */
            std::vector<float> t;
            for (int r = 0; r < 6; r++) {
                for (int i = 0; i < 30; i++) zt_op_gemm(g_ops, &g); /* ~45 ms of compute, longer than the copy */
                ZT_CUDA_CHECK(cudaEventRecord(a, cs));
                if (split == 1) {
                    ZT_CUDA_CHECK(cudaMemcpyAsync(d, h, hb, cudaMemcpyHostToDevice, cs));
                } else {
                    ZT_CUDA_CHECK(cudaStreamWaitEvent(cs2, a, 0));
                    ZT_CUDA_CHECK(cudaMemcpyAsync(d, h, hb / 2, cudaMemcpyHostToDevice, cs));
                    ZT_CUDA_CHECK(cudaMemcpyAsync((char *)d + hb / 2, (char *)h + hb / 2, hb / 2, cudaMemcpyHostToDevice, cs2));
                    ZT_CUDA_CHECK(cudaEventRecord(c2, cs2));
                    ZT_CUDA_CHECK(cudaStreamWaitEvent(cs, c2, 0));
                }
                ZT_CUDA_CHECK(cudaEventRecord(b, cs));
                ZT_CUDA_CHECK(cudaDeviceSynchronize());
                float f = 0;
                ZT_CUDA_CHECK(cudaEventElapsedTime(&f, a, b));
                if (r) t.push_back(f); /* the first warms up */
            }
            std::sort(t.begin(), t.end());
            const double ms_l = t[t.size() / 2];
            printf("| zturbo | ceiling: pinned H2D under load | 1 GiB host->device while GEMMs run%s | %.1f | %.1f GB/s | - |\n",
                   split == 2 ? ", two halves on two streams" : "", ms_l * 1e3, hb / (ms_l * 1e-3) / 1e9);
        }
        ZT_CUDA_CHECK(cudaEventDestroy(c2));
        ZT_CUDA_CHECK(cudaStreamDestroy(cs2));
        ZT_CUDA_CHECK(cudaEventDestroy(a));
        ZT_CUDA_CHECK(cudaEventDestroy(b));
        ZT_CUDA_CHECK(cudaStreamDestroy(cs));
        ZT_CUDA_CHECK(cudaFreeHost(h));
        ZT_CUDA_CHECK(cudaFree(d));
    }
    free_all();
    printf("| zturbo | ceiling: copy | 1 GiB D2D, read+write | %.1f | %.0f GB/s | 100%% |\n", copy_ms * 1e3, g_copy_gbs);
    { /* the bus: what streamed weights can reach (pinned host -> device) */
        const size_t hb = (size_t)1 << 30;
        void *h = NULL, *d = NULL;
        ZT_CUDA_CHECK(cudaMallocHost(&h, hb));
        ZT_CUDA_CHECK(cudaMalloc(&d, hb));
        memset(h, 1, hb);
        const double ms_h2d = time_ms([&](int) { ZT_CUDA_CHECK(cudaMemcpyAsync(d, h, hb, cudaMemcpyHostToDevice, g_st)); });
        printf("| zturbo | ceiling: pinned H2D | 1 GiB host->device | %.1f | %.1f GB/s | - |\n", ms_h2d * 1e3,
               hb / (ms_h2d * 1e-3) / 1e9);
        /* the stream's own kind of pinned memory: an mmap'ed arena with the
         * huge-page hint, page-locked by cudaHostRegister; whole and in
         * DiT-block-sized (337.5 MiB) copies, as the window slots get them */
        void *m = mmap(NULL, hb, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            madvise(m, hb, MADV_HUGEPAGE);
            memset(m, 1, hb);
            if (cudaHostRegister(m, hb, cudaHostRegisterDefault) == cudaSuccess) {
                const double ms_r = time_ms([&](int) { ZT_CUDA_CHECK(cudaMemcpyAsync(d, m, hb, cudaMemcpyHostToDevice, g_st)); });
                printf("| zturbo | ceiling: registered H2D | 1 GiB host->device (mmap + cudaHostRegister) | %.1f | %.1f GB/s | - |\n",
                       ms_r * 1e3, hb / (ms_r * 1e-3) / 1e9);
                const size_t blk = 353925632;
                const double ms_b = time_ms([&](int) {
                    for (size_t o = 0; o + blk <= hb; o += blk)
                        ZT_CUDA_CHECK(cudaMemcpyAsync((char *)d + o, (char *)m + o, blk, cudaMemcpyHostToDevice, g_st));
                });
                const size_t nblk = hb / blk;
                printf("| zturbo | ceiling: registered H2D | %zu x 337.5 MiB copies, back to back | %.1f | %.1f GB/s | - |\n",
                       nblk, ms_b * 1e3, (double)nblk * blk / (ms_b * 1e-3) / 1e9);
                ZT_CUDA_CHECK(cudaHostUnregister(m));
            } else {
                (void)cudaGetLastError();
                printf("| zturbo | ceiling: registered H2D | cudaHostRegister refused | - | - | - |\n");
            }
            munmap(m, hb);
        }
        ZT_CUDA_CHECK(cudaFreeHost(h));
        ZT_CUDA_CHECK(cudaFree(d));
    }
    printf("| zturbo | ceiling: gemm | m8192 n8192 k8192 bf16 | %.1f | %.1f TFLOP/s | 100%% |\n", ms * 1e3, g_peak_tflops);
}

/* ---- DiT ops ---- */
static const int S = 4224, D = 3840, H = 30, HD = 128, FF = 10240;

static void bench_gemm(int m, int k, int n, zt_dtype ydt) {
    if (!wanted("gemm")) return;
    void *x = buf((size_t)m * k, ZT_DT_BF16), *w = buf((size_t)n * k, ZT_DT_BF16, 1.0f / 64), *y = buf((size_t)m * n, ydt);
    zt_gemm g = {};
    g.m = m; g.n = n; g.k = k;
    g.x = x; g.x_dt = ZT_DT_BF16; g.w = w; g.w_dt = ZT_DT_BF16; g.y = y; g.y_dt = ydt;
    double ms = time_ms([&](int) { zt_op_gemm(g_ops, &g); });
    char shape[96];
    snprintf(shape, sizeof shape, "m%d k%d n%d bf16->%s", m, k, n, ydt == ZT_DT_BF16 ? "bf16" : "f32");
    row_flops("gemm", shape, 2.0 * m * n * k, ms);
    free_all();
}

/* The ceiling at an op's own size: a D2D copy moving the same bytes (read +
 * write, half each way) over as many buffer sets as the op rotated through,
 * so that L2 flatters neither. Launch ramp and tail weigh more at 32-100 MB
 * than in the 1 GiB ceiling; the % column stays relative to that one. A
 * copy is 1:1 read:write; gate_add reads 2 bytes per byte written. */
static void ceiling_copy(const char *op, double bytes, int sets) {
    const size_t half = (size_t)(bytes / 2) & ~(size_t)255;
    std::vector<void *> src, dst;
    for (int i = 0; i < sets; i++) { src.push_back(buf(half / 2, ZT_DT_BF16)); dst.push_back(buf(half / 2, ZT_DT_BF16)); }
    const double ms = time_ms([&](int r) { zt_mem_copy(g_ops, dst[r % sets], src[r % sets], half); });
    char name[64], shape[96];
    snprintf(name, sizeof name, "%s ceiling: copy", op);
    snprintf(shape, sizeof shape, "%.1f MB D2D, read+write, %d set%s", half / 1e6, sets, sets > 1 ? "s" : "");
    row_bytes(name, shape, 2.0 * half, ms);
    free_all();
}

/* Every launch variant of the row norms (kernels/cuda_norm.h) on the same
 * buffers, one row each. */
static void time_norm_variants(const char *op, const char *shape, double bytes, const std::function<void(int)> &fn) {
    for (int v = 0; v < ZT_NORM_VARIANTS; v++) {
        zt_ops_set_norm_variant(g_ops, v, NULL);
        const double ms = time_ms(fn);
        char name[64];
        snprintf(name, sizeof name, "%s v%d", op, v);
        row_bytes(name, shape, bytes, ms);
    }
}

static void bench_norms(void) {
    const int variant = zt_ops_norm_variant(g_ops);
    const size_t act = (size_t)S * D, bytes2 = 2.0 * act * 2;
    if (wanted("rmsnorm")) {
        const int sets = sets_for(bytes2);
        std::vector<void *> xs, ys;
        for (int i = 0; i < sets; i++) { xs.push_back(buf(act, ZT_DT_BF16)); ys.push_back(buf(act, ZT_DT_BF16)); }
        void *w = buf(D, ZT_DT_BF16, 0.5f, 1.0f), *sc = buf(D, ZT_DT_BF16, 0.5f, 1.0f);
        zt_norm n = {};
        n.rows = S; n.heads = 1; n.dim = D; n.x_dt = ZT_DT_BF16; n.ldx = D; n.weight = (const uint16_t *)w; n.scale = sc;
        n.eps = 1e-5f; n.y_dt = ZT_DT_BF16; n.ldy = D;
        time_norm_variants("rmsnorm", "4224x3840 bf16, weight+scale", bytes2,
                           [&](int r) { n.x = xs[r % sets]; n.y = ys[r % sets]; zt_op_rmsnorm(g_ops, &n); });
        free_all();
        ceiling_copy("rmsnorm", bytes2, sets);
    }
    if (wanted("qknorm")) {
        const size_t qkv = (size_t)S * 3 * D;
        const int sets = sets_for(bytes2);
        std::vector<void *> xs;
        for (int i = 0; i < sets; i++) xs.push_back(buf(qkv, ZT_DT_BF16));
        void *w = buf(HD, ZT_DT_BF16, 0.5f, 1.0f);
        zt_norm n = {};
        n.rows = S; n.heads = H; n.dim = HD; n.x_dt = ZT_DT_BF16; n.ldx = 3 * D; n.weight = (const uint16_t *)w;
        n.eps = 1e-5f; n.y_dt = ZT_DT_BF16; n.ldy = 3 * D;
        time_norm_variants("qknorm", "4224x30x128 in QKV row, in place", bytes2,
                           [&](int r) { n.x = xs[r % sets]; n.y = xs[r % sets]; zt_op_rmsnorm(g_ops, &n); });
        free_all();
        ceiling_copy("qknorm", bytes2, sets);
    }
    if (wanted("rmsnorm_gate_add")) {
        const double bytes3 = 3.0 * act * 2;
        const int sets = sets_for(bytes3);
        std::vector<void *> xs, rs;
        for (int i = 0; i < sets; i++) { xs.push_back(buf(act, ZT_DT_BF16)); rs.push_back(buf(act, ZT_DT_BF16)); }
        void *w = buf(D, ZT_DT_BF16, 0.5f, 1.0f), *g = buf(D, ZT_DT_BF16, 0.5f);
        zt_norm n = {};
        n.rows = S; n.heads = 1; n.dim = D; n.x_dt = ZT_DT_BF16; n.ldx = D; n.weight = (const uint16_t *)w;
        n.eps = 1e-5f; n.y_dt = ZT_DT_BF16; n.ldy = D;
        time_norm_variants("rmsnorm_gate_add", "4224x3840 bf16, gate", bytes3,
                           [&](int r) { n.x = xs[r % sets]; zt_op_rmsnorm_gate_add(g_ops, &n, g, rs[r % sets], D); });
        free_all();
        ceiling_copy("rmsnorm_gate_add", bytes3, sets);
    }
    if (wanted("layernorm")) {
        const int sets = sets_for(bytes2);
        std::vector<void *> xs, ys;
        for (int i = 0; i < sets; i++) { xs.push_back(buf(act, ZT_DT_BF16)); ys.push_back(buf(act, ZT_DT_BF16)); }
        void *sc = buf(D, ZT_DT_BF16, 0.5f, 1.0f);
        zt_norm n = {};
        n.rows = S; n.heads = 1; n.dim = D; n.x_dt = ZT_DT_BF16; n.ldx = D; n.scale = sc;
        n.eps = 1e-6f; n.y_dt = ZT_DT_BF16; n.ldy = D;
        time_norm_variants("layernorm", "4224x3840 bf16, scale", bytes2,
                           [&](int r) { n.x = xs[r % sets]; n.y = ys[r % sets]; zt_op_layernorm(g_ops, &n); });
        free_all();
        ceiling_copy("layernorm", bytes2, sets);
    }
    zt_ops_set_norm_variant(g_ops, variant, NULL);
}

static void bench_rope_swiglu_ew(void) {
    const size_t act = (size_t)S * D;
    if (wanted("rope_pairs")) {
        const double bytes = 2.0 * act * 2 + (double)S * HD * 4;
        const int sets = sets_for(bytes);
        std::vector<void *> xs;
        for (int i = 0; i < sets; i++) xs.push_back(buf((size_t)S * 3 * D, ZT_DT_BF16));
        float *cs = (float *)buf((size_t)S * HD, ZT_DT_F32);
        double ms = time_ms([&](int r) { zt_op_rope_pairs(g_ops, S, H, HD, xs[r % sets], 3 * D, cs, ZT_DT_BF16); });
        row_bytes("rope_pairs", "4224x30x128 in QKV row, in place", bytes, ms);
        free_all();
    }
    if (wanted("swiglu")) {
        const double bytes = (double)S * 3 * FF * 2;
        const int sets = sets_for(bytes);
        std::vector<void *> is, os;
        for (int i = 0; i < sets; i++) { is.push_back(buf((size_t)S * 2 * FF, ZT_DT_BF16, 3.0f)); os.push_back(buf((size_t)S * FF, ZT_DT_BF16)); }
        double ms = time_ms([&](int r) { zt_op_swiglu(g_ops, S, FF, is[r % sets], 2 * FF, os[r % sets], FF, ZT_DT_BF16); });
        row_bytes("swiglu", "4224x10240 bf16", bytes, ms);
        free_all();
    }
    if (wanted("add")) {
        const double bytes = 3.0 * act * 2;
        const int sets = sets_for(bytes);
        std::vector<void *> as, bs, ys;
        for (int i = 0; i < sets; i++) { as.push_back(buf(act, ZT_DT_BF16)); bs.push_back(buf(act, ZT_DT_BF16)); ys.push_back(buf(act, ZT_DT_BF16)); }
        double ms = time_ms([&](int r) { zt_op_add(g_ops, act, as[r % sets], bs[r % sets], ys[r % sets], ZT_DT_BF16); });
        row_bytes("add", "4224x3840 bf16", bytes, ms);
        free_all();
    }
    if (wanted("silu")) {
        const double bytes = 2.0 * act * 2;
        const int sets = sets_for(bytes);
        std::vector<void *> as, ys;
        for (int i = 0; i < sets; i++) { as.push_back(buf(act, ZT_DT_BF16)); ys.push_back(buf(act, ZT_DT_BF16)); }
        double ms = time_ms([&](int r) { zt_op_silu(g_ops, act, as[r % sets], ys[r % sets], ZT_DT_BF16); });
        row_bytes("silu", "4224x3840 bf16", bytes, ms);
        free_all();
    }
    if (wanted("convert")) {
        const double bytes = 6.0 * act;
        const int sets = sets_for(bytes);
        std::vector<void *> as, ys;
        for (int i = 0; i < sets; i++) { as.push_back(buf(act, ZT_DT_F32)); ys.push_back(buf(act, ZT_DT_BF16)); }
        double ms = time_ms([&](int r) { zt_op_convert(g_ops, act, as[r % sets], ZT_DT_F32, ys[r % sets], ZT_DT_BF16); });
        row_bytes("convert", "4224x3840 f32->bf16", bytes, ms);
        free_all();
    }
    if (wanted("euler_step")) {
        const size_t n = (size_t)16 * 128 * 128;
        float *x = (float *)buf(n, ZT_DT_F32), *v = (float *)buf(n, ZT_DT_F32);
        double ms = time_ms([&](int) { zt_op_euler_step(g_ops, n, x, v, -1e-3f); });
        row_bytes("euler_step", "16x128x128 f32", 12.0 * n, ms);
        free_all();
    }
}

/* ---- VAE ops ---- */
static void bench_groupnorm(int px, int c) {
    if (!wanted("groupnorm")) return;
    const size_t hw = (size_t)px * px, n = hw * c;
    const double bytes = 2.0 * n * 2;
    const int sets = sets_for(bytes);
    std::vector<void *> xs, ys;
    for (int i = 0; i < sets; i++) { xs.push_back(buf(n, ZT_DT_BF16)); ys.push_back(buf(n, ZT_DT_BF16)); }
    void *ga = buf(c, ZT_DT_BF16, 0.5f, 1.0f), *be = buf(c, ZT_DT_BF16, 0.5f);
    zt_groupnorm g = {};
    g.hw = (int)hw; g.c = c; g.groups = 32; g.dt = ZT_DT_BF16; g.gamma = ga; g.beta = be; g.gb_dt = ZT_DT_BF16;
    g.eps = 1e-6f; g.silu = 1;
    g.x = xs[0]; g.y = ys[0];
    void *ws = buf(zt_groupnorm_workspace_size(g_ops, &g) / 4 + 1, ZT_DT_F32);
    double ms = time_ms([&](int r) { g.x = xs[r % sets]; g.y = ys[r % sets]; zt_op_groupnorm(g_ops, &g, ws); });
    char shape[96];
    snprintf(shape, sizeof shape, "%dx%d c%d g32 bf16 +silu", px, px, c);
    row_bytes("groupnorm", shape, bytes, ms);
    free_all();
}

static void bench_conv(int px, int cin, int cout, int k, int resid) {
    if (!wanted("conv")) return;
    const size_t hw = (size_t)px * px;
    void *x = buf(hw * cin, ZT_DT_BF16), *w = buf((size_t)cout * k * k * cin, ZT_DT_BF16, 0.05f);
    void *b = buf(cout, ZT_DT_BF16, 0.1f), *y = buf(hw * cout, ZT_DT_BF16);
    void *r = resid ? buf(hw * cout, ZT_DT_BF16) : NULL;
    zt_conv2d c = {};
    c.h = px; c.w = px; c.cin = cin; c.cout = cout; c.k = k;
    c.x = x; c.wgt = w; c.bias = b; c.residual = r; c.y = y; c.dt = ZT_DT_BF16;
    const size_t wsb = zt_conv2d_workspace_size(g_ops, &c);
    void *ws = wsb ? buf(wsb / 2 + 1, ZT_DT_BF16) : NULL;
    double ms = time_ms([&](int) { zt_op_conv2d(g_ops, &c, ws); });
    char shape[96];
    snprintf(shape, sizeof shape, "%dx%d %d->%d k%d bf16%s", px, px, cin, cout, k, resid ? " +resid" : "");
    row_flops("conv2d", shape, 2.0 * hw * cout * k * k * cin, ms);
    /* the implicit-GEMM tile variants, for choosing the default */
    const char *vl = getenv("KBENCH_CONV_VARIANTS"); /* "1": all; else a list such as "5,6,8" */
    bool pick[12] = {};
    if (vl) {
        const bool all = strcmp(vl, "1") == 0;
        for (const char *p = vl; *p;) {
            char *end;
            const long v = strtol(p, &end, 10);
            if (end == p) { p++; continue; }
            if (v >= 1 && v <= 11) pick[v] = true;
            p = end;
        }
        if (all)
            for (int v = 1; v <= 11; v++) pick[v] = true;
    }
    if (vl && cout > 32 && cin % 8 == 0)
        for (int v = 1; v <= 11; v++) {
            if (!pick[v]) continue;
            ms = time_ms([&](int) { zt_cuda_conv2d_variant(g_ops, &c, ws, v); });
            char op[32];
            snprintf(op, sizeof op, "conv2d[v%d]", v);
            row_flops(op, shape, 2.0 * hw * cout * k * k * cin, ms);
        }
    free_all();
}

static void bench_vae_misc(void) {
    if (wanted("upsample2x")) {
        const int px = 512, c = 256;
        const size_t n = (size_t)px * px * c;
        void *x = buf(n, ZT_DT_BF16), *y = buf(4 * n, ZT_DT_BF16);
        double ms = time_ms([&](int) { zt_op_upsample2x(g_ops, px, px, c, x, y, ZT_DT_BF16); });
        row_bytes("upsample2x", "512x512 c256 -> 1024x1024 bf16", 5.0 * n * 2, ms);
        free_all();
    }
    if (wanted("to_rgb8")) {
        const size_t n = (size_t)1024 * 1024 * 3;
        void *x = buf(n, ZT_DT_BF16);
        void *y = buf(n / 4 + 1, ZT_DT_F32);
        double ms = time_ms([&](int) { zt_op_to_rgb8(g_ops, 1024, 1024, x, ZT_DT_BF16, (uint8_t *)y); });
        row_bytes("to_rgb8", "1024x1024x3 bf16", 3.0 * n, ms);
        free_all();
    }
    if (wanted("vae_input")) {
        const size_t n = (size_t)16 * 128 * 128;
        float *x = (float *)buf(n, ZT_DT_F32);
        void *y = buf(n, ZT_DT_BF16);
        double ms = time_ms([&](int) { zt_op_vae_input(g_ops, 16, 128, 128, x, 2.77f, 0.1159f, y, ZT_DT_BF16); });
        row_bytes("vae_input", "16x128x128 f32 -> NHWC bf16", 6.0 * n, ms);
        free_all();
    }
}

/* Coded weights (storage/wcode.h): decode of one DiT block's worth of
 * near-normal bf16 words (mkmodel's N(0, 0.02), coded on the host), every
 * launch variant (kernels/cuda_wdecode.h) on the same data. Rows: bf16
 * output rate of the default (what the issue's >= 1.5 TB/s is about) and of
 * each variant "wdecode[vN]" (each checked bit-exact once: a wrong decode
 * prints WRONG RESULT), the fastest exact variant, the bytes the default
 * touches (coded read + bf16 written) against the copy ceiling, a same-size
 * copy (read + write of the bf16 bytes), and the decode beside DiT-sized
 * GEMMs on another stream: how much of the decode's own time the GEMMs lose
 * (1 = the SM time adds up, as the plan assumes: sched/plan.h
 * decode_sm_share). */
static void bench_wdecode(void) {
    if (!wanted("wdecode")) return;
    const uint64_t n = 176963584; /* words of dit.layers.I */
    uint16_t *w = (uint16_t *)malloc(n * 2);
    uint64_t state = 0x9e3779b97f4a7c15ull;
    for (uint64_t i = 0; i < n; i++) { /* Irwin-Hall(4) of 16-bit uniforms, as mkmodel draws */
        state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
        const uint64_t x = state * 2685821657736338717ull;
        const int32_t s = (int32_t)(x & 0xffff) + (int32_t)((x >> 16) & 0xffff) + (int32_t)((x >> 32) & 0xffff) +
                          (int32_t)(x >> 48) - 131070;
        __nv_bfloat16 b = __float2bfloat16_rn((float)s * (0.02f / 37837.2146f));
        memcpy(&w[i], &b, 2);
    }
    const uint64_t cap = zt_wcode_bound(n);
    uint8_t *img = (uint8_t *)malloc(cap);
    uint64_t bytes = 0;
    zt_err e = {};
    zt_wcode_info L;
    if (zt_wcode_encode(w, n, img, cap, 16, &bytes, &e) || zt_wcode_validate(img, bytes, 0, "kbench", &L, &e)) {
        fprintf(stderr, "kbench: wdecode: %s\n", e.msg);
        exit(1);
    }
    const int sets = sets_for(2.0 * n + bytes);
    std::vector<void *> in, out;
    for (int i = 0; i < sets; i++) {
        in.push_back(buf(bytes / 2 + 1, ZT_DT_BF16));
        out.push_back(buf(n, ZT_DT_BF16));
        zt_mem_upload(g_ops, in.back(), img, bytes);
    }
    auto decode = [&](int v, int r, cudaStream_t s) {
        const uint8_t *c = (const uint8_t *)in[r % sets];
        const zt_wdecode d = {c, c + L.dir_bytes, L.dir_bytes, bytes - L.dir_bytes, 0, L.n_chunks, (uint16_t *)out[r % sets]};
        zt_cuda_wdecode_variant(g_ops, &L, &d, s, v);
    };
    uint16_t *back = (uint16_t *)malloc(n * 2);
    double ms0 = 0, best_gbs = 0;
    int best_v = -1;
    for (int v = 0; v <= ZT_WDECODE_VARIANTS; v++) {
        const double ms = time_ms([&](int r) { decode(v, r, g_st); });
        /* check the result once: a wrong decode must not print a rate */
        zt_mem_fill_u8(g_ops, out[0], 0xff, n * 2);
        decode(v, 0, g_st);
        zt_mem_download(g_ops, back, out[0], n * 2);
        const int exact = !memcmp(back, w, n * 2);
        char op[64], shape[200], name[96];
        snprintf(op, sizeof op, v ? "wdecode[v%d]: bf16 output" : "wdecode: bf16 output", v);
        if (v) snprintf(name, sizeof name, "%s", zt_cuda_wdecode_variant_name(v));
        else snprintf(name, sizeof name, "default v%d", ZT_WDECODE_VARIANT_DEFAULT);
        snprintf(shape, sizeof shape, "%llu words (a DiT block), ratio %.4f, %d set%s, %s%s", (unsigned long long)n,
                 (double)bytes / (2.0 * n), sets, sets > 1 ? "s" : "",
                 name,
                 exact ? "" : ", WRONG RESULT");
        const double out_gbs = 2.0 * n / (ms * 1e-3) / 1e9;
        printf("| zturbo | %s | %s | %.1f | %.0f GB/s | %.0f%% |\n", op, shape, ms * 1e3, out_gbs, 100.0 * out_gbs / g_copy_gbs);
        fflush(stdout);
        if (!v) ms0 = ms;
        if (v && exact && out_gbs > best_gbs) best_gbs = out_gbs, best_v = v;
    }
    printf("| zturbo | wdecode: fastest exact variant | v%d | - | %.0f GB/s | %.0f%% |\n", best_v, best_gbs,
           100.0 * best_gbs / g_copy_gbs);
    row_bytes("wdecode: bytes touched", "coded read + bf16 written, default", 2.0 * n + (double)bytes, ms0);

    { /* beside DiT-sized GEMMs (m4224 k3840 n10240, the FFN's first) on the ops stream */
        const int m = 4224, k = 3840, nn = 10240;
        void *x = buf((size_t)m * k, ZT_DT_BF16), *wt = buf((size_t)nn * k, ZT_DT_BF16, 1.0f / 64), *y = buf((size_t)m * nn, ZT_DT_BF16);
        zt_gemm g = {};
        g.m = m; g.n = nn; g.k = k;
        g.x = x; g.x_dt = ZT_DT_BF16; g.w = wt; g.w_dt = ZT_DT_BF16; g.y = y; g.y_dt = ZT_DT_BF16;
        cudaStream_t ds;
        cudaEvent_t a, bg, bd;
        ZT_CUDA_CHECK(cudaStreamCreateWithFlags(&ds, cudaStreamNonBlocking));
        ZT_CUDA_CHECK(cudaEventCreate(&a));
        ZT_CUDA_CHECK(cudaEventCreate(&bg));
        ZT_CUDA_CHECK(cudaEventCreate(&bd));
        const int n_gemm = 40;
        const int n_dec = std::max(1, (int)(0.5 * n_gemm * 2.0 * m * k * nn / (g_peak_tflops * 1e12) / (ms0 * 1e-3)));
        std::vector<float> tg, td, tb;
        for (int rep = 0; rep < 4; rep++) {
            float f = 0, f2 = 0;
            /* the GEMMs alone */
            ZT_CUDA_CHECK(cudaEventRecord(a, g_st));
            for (int i = 0; i < n_gemm; i++) zt_op_gemm(g_ops, &g);
            ZT_CUDA_CHECK(cudaEventRecord(bg, g_st));
            ZT_CUDA_CHECK(cudaDeviceSynchronize());
            ZT_CUDA_CHECK(cudaEventElapsedTime(&f, a, bg));
            if (rep) tg.push_back(f);
            /* the decodes alone, on their stream */
            ZT_CUDA_CHECK(cudaEventRecord(a, ds));
            for (int i = 0; i < n_dec; i++) decode(0, i, ds);
            ZT_CUDA_CHECK(cudaEventRecord(bd, ds));
            ZT_CUDA_CHECK(cudaDeviceSynchronize());
            ZT_CUDA_CHECK(cudaEventElapsedTime(&f, a, bd));
            if (rep) td.push_back(f);
            /* both at once: the GEMM stream's time */
            ZT_CUDA_CHECK(cudaEventRecord(a, g_st));
            ZT_CUDA_CHECK(cudaStreamWaitEvent(ds, a, 0));
            for (int i = 0; i < n_gemm; i++) {
                zt_op_gemm(g_ops, &g);
                if (i < n_dec) decode(0, i, ds);
            }
            for (int i = n_gemm; i < n_dec; i++) decode(0, i, ds);
            ZT_CUDA_CHECK(cudaEventRecord(bg, g_st));
            ZT_CUDA_CHECK(cudaEventRecord(bd, ds));
            ZT_CUDA_CHECK(cudaDeviceSynchronize());
            ZT_CUDA_CHECK(cudaEventElapsedTime(&f, a, bg));
            ZT_CUDA_CHECK(cudaEventElapsedTime(&f2, a, bd));
            if (rep) tb.push_back(std::max(f, f2));
        }
        std::sort(tg.begin(), tg.end());
        std::sort(td.begin(), td.end());
        std::sort(tb.begin(), tb.end());
        const double Tg = tg[tg.size() / 2], Td = td[td.size() / 2], Tb = tb[tb.size() / 2];
        char shape[200];
        snprintf(shape, sizeof shape,
                 "%d GEMMs m%d k%d n%d %.2f ms + %d decodes %.2f ms on another stream: together %.2f ms", n_gemm, m, k,
                 nn, Tg, n_dec, Td, Tb);
        printf("| zturbo | wdecode beside gemm: SM share | %s | %.1f | %.2f | - |\n", shape, Tb * 1e3, (Tb - Tg) / Td);
        ZT_CUDA_CHECK(cudaEventDestroy(a));
        ZT_CUDA_CHECK(cudaEventDestroy(bg));
        ZT_CUDA_CHECK(cudaEventDestroy(bd));
        ZT_CUDA_CHECK(cudaStreamDestroy(ds));
    }
    free_all();
    ceiling_copy("wdecode", 4.0 * n, sets);
    free(back);
    free(img);
    free(w);
}

int main(int argc, char **argv) {
    g_filter = argc > 1 ? argv[1] : NULL;
    if (!zt_cuda_available()) {
        fprintf(stderr, "kbench: no CUDA device\n");
        return 1;
    }
    zt_err e = {};
    zt_ops_config cfg = {};
    cfg.backend = ZT_BACKEND_CUDA;
    if (zt_ops_create(&cfg, &g_ops, &e)) {
        fprintf(stderr, "kbench: %s\n", e.msg);
        return 1;
    }
    g_st = (cudaStream_t)zt_ops_stream(g_ops);
    cudaDeviceProp prop;
    ZT_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    g_l2 = (size_t)prop.l2CacheSize;
    printf("kbench: %s, %d SMs, L2 %.0f MB\n\n", prop.name, prop.multiProcessorCount, g_l2 / 1e6);
    printf("| impl | op | shape | median us | achieved | %% of ceiling |\n|---|---|---|---|---|---|\n");
    ceilings();

    bench_gemm(S, D, D, ZT_DT_BF16);      /* attention out-projection */
    bench_gemm(S, D, 3 * D, ZT_DT_BF16);  /* fused QKV */
    bench_gemm(S, D, 2 * FF, ZT_DT_BF16); /* fused w1|w3 */
    bench_gemm(S, FF, D, ZT_DT_BF16);     /* w2 */
    bench_gemm(S, D, D, ZT_DT_F32);       /* f32 output variant */
    bench_norms();
    bench_rope_swiglu_ew();

    bench_groupnorm(1024, 128);
    bench_groupnorm(1024, 256);
    bench_groupnorm(512, 256);
    bench_groupnorm(512, 512);
    bench_groupnorm(256, 512);
    bench_groupnorm(128, 512);
    bench_conv(128, 16, 512, 3, 0);   /* conv_in */
    bench_conv(128, 512, 512, 3, 0);  /* mid / up_blocks.0 */
    bench_conv(256, 512, 512, 3, 0);  /* up_blocks.1 */
    bench_conv(512, 512, 256, 3, 0);  /* up_blocks.2 first conv */
    bench_conv(512, 256, 256, 3, 1);  /* up_blocks.2 */
    bench_conv(1024, 256, 256, 3, 0); /* upsampler of up_blocks.2 */
    bench_conv(1024, 256, 128, 3, 0); /* up_blocks.3 first conv */
    bench_conv(1024, 128, 128, 3, 0); /* up_blocks.3 */
    bench_conv(1024, 128, 128, 3, 1);
    bench_conv(1024, 256, 128, 1, 0); /* 1x1 shortcut */
    bench_conv(1024, 128, 3, 3, 0);   /* conv_out */
    bench_vae_misc();
    bench_wdecode();

    zt_ops_destroy(g_ops);
    return 0;
}
