/* tools/attnbench.cu — times zt_cuda_attention (every tiling variant that
 * fits the head dim) on the shapes the models run, with CUDA events after a
 * warm-up, and prints the median time and TFLOP/s. FLOPs = 4 * hd * heads *
 * (visible query-key pairs): sq*sk non-causal, about half that causal.
 * tools/attnbench_torch.py prints torch SDPA for the same shapes in the
 * same format.
 *
 * usage: attnbench [-c SUBSTRING] [-v VARIANT] [-n ITERS]
 *   -c  only cases whose name contains SUBSTRING
 *   -v  only this variant (0 = the default pick); default: all that fit
 *   -n  timed iterations (default: enough for ~0.3 s, 3..50) */
#include <algorithm>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include "common/zt_cuda.h"
#include "kernels/cuda_attention.cuh"
#include "kernels/ops_internal.h"

struct BenchCase {
    const char *name;
    int sq, sk, heads, kv_heads, hd, causal, fused;
};

static const BenchCase bench_cases[] = {
    {"dit_1024px_s4224", 4224, 4224, 30, 30, 128, 0, 1},
    {"dit_2048px_s16512", 16512, 16512, 30, 30, 128, 0, 1},
    {"dit_refiner_s128", 128, 128, 30, 30, 128, 0, 1},
    {"qwen_causal_s512", 512, 512, 32, 8, 128, 1, 0},
    {"qwen_causal_s100", 100, 100, 32, 8, 128, 1, 0},
    {"vae_1024px_hd512_s16384", 16384, 16384, 1, 1, 512, 0, 0},
    {"vae_2048px_hd512_s65536", 65536, 65536, 1, 1, 512, 0, 0},
    {"tiny_hd64_s4096_h8", 4096, 4096, 8, 8, 64, 0, 0},
};

/* Deterministic N(0,1)-ish bf16 fill (sum of 4 uniforms), scaled. */
__global__ void fill_random(uint16_t *x, size_t n, uint64_t seed, float amp) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint64_t s = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
        float acc = 0.f;
        for (int r = 0; r < 4; r++) {
            s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
            acc += (float)((s * 2685821657736338717ull) >> 40) * (1.0f / 16777216.0f) - 0.5f;
        }
        float f = acc * 1.7320508f * amp; /* var of the sum of 4 U(-.5,.5) = 1/3 */
        uint32_t u = __float_as_uint(f);
        u += 0x7fffu + ((u >> 16) & 1u);
        x[i] = (uint16_t)(u >> 16);
    }
}

static double visible_pairs(const BenchCase &c) {
    if (!c.causal) return (double)c.sq * c.sk;
    double n = 0;
    for (int i = 0; i < c.sq; i++) n += std::max(0, std::min(c.sk, i + c.sk - c.sq + 1));
    return n;
}

int main(int argc, char **argv) {
    const char *filter = NULL;
    int only_variant = -1, iters_arg = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "-v") && i + 1 < argc) only_variant = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) iters_arg = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: attnbench [-c SUBSTRING] [-v VARIANT] [-n ITERS]\n");
            return 2;
        }
    }
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        fprintf(stderr, "attnbench: no CUDA device\n");
        return 1;
    }
    cudaDeviceProp prop;
    ZT_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("attnbench: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
    printf("%-26s %-22s %10s %9s\n", "case", "impl", "ms", "TFLOP/s");

    zt_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.backend = ZT_BACKEND_CUDA;
    cudaStream_t st;
    ZT_CUDA_CHECK(cudaStreamCreate(&st));
    ops.stream = st;
    cudaEvent_t e0, e1;
    ZT_CUDA_CHECK(cudaEventCreate(&e0));
    ZT_CUDA_CHECK(cudaEventCreate(&e1));

    for (const BenchCase &c : bench_cases) {
        if (filter && !strstr(c.name, filter)) continue;
        const int64_t qw = (int64_t)c.heads * c.hd, kw = (int64_t)c.kv_heads * c.hd;
        zt_attn a;
        memset(&a, 0, sizeof a);
        a.sq = c.sq, a.sk = c.sk, a.heads = c.heads, a.kv_heads = c.kv_heads, a.hd = c.hd;
        a.dt = ZT_DT_BF16, a.scale = 1.0f / sqrtf((float)c.hd), a.causal = c.causal;
        size_t in_elems;
        uint16_t *in, *out;
        if (c.fused) in_elems = (size_t)c.sq * 3 * qw;
        else in_elems = (size_t)c.sq * qw + 2 * (size_t)c.sk * kw;
        ZT_CUDA_CHECK(cudaMalloc(&in, in_elems * 2));
        ZT_CUDA_CHECK(cudaMalloc(&out, (size_t)c.sq * qw * 2));
        fill_random<<<1024, 256, 0, st>>>(in, in_elems, 0x1234567ull + c.sq, 1.5f);
        ZT_CUDA_LAUNCH_CHECK();
        if (c.fused) {
            a.q = in, a.k = in + qw, a.v = in + 2 * qw;
            a.ldq = a.ldk = a.ldv = 3 * qw;
        } else {
            a.q = in, a.k = in + (size_t)c.sq * qw, a.v = in + (size_t)c.sq * qw + (size_t)c.sk * kw;
            a.ldq = qw, a.ldk = a.ldv = kw;
        }
        a.o = out, a.ldo = qw;
        const double flops = 4.0 * c.hd * c.heads * visible_pairs(c);

        for (int v = 0; v < ZT_ATTN_VARIANTS; v++) {
            if (only_variant >= 0 && v != only_variant) continue;
            if (only_variant < 0 && v == 0) continue; /* the default is one of the others */
            if (!zt_cuda_attention_variant_ok(v, &a)) continue;
            /* warm-up, and an estimate for the iteration count */
            zt_cuda_attention_variant(&ops, &a, v);
            ZT_CUDA_CHECK(cudaEventRecord(e0, st));
            zt_cuda_attention_variant(&ops, &a, v);
            ZT_CUDA_CHECK(cudaEventRecord(e1, st));
            ZT_CUDA_CHECK(cudaEventSynchronize(e1));
            float est = 0;
            ZT_CUDA_CHECK(cudaEventElapsedTime(&est, e0, e1));
            int iters = iters_arg > 0 ? iters_arg : std::max(3, std::min(50, (int)(300.0 / std::max(est, 1e-3f))));
            std::vector<float> t(iters);
            for (int i = 0; i < iters; i++) {
                ZT_CUDA_CHECK(cudaEventRecord(e0, st));
                zt_cuda_attention_variant(&ops, &a, v);
                ZT_CUDA_CHECK(cudaEventRecord(e1, st));
                ZT_CUDA_CHECK(cudaEventSynchronize(e1));
                ZT_CUDA_CHECK(cudaEventElapsedTime(&t[i], e0, e1));
            }
            std::sort(t.begin(), t.end());
            double ms = t[iters / 2];
            printf("%-26s %-22s %10.4f %9.1f\n", c.name, zt_cuda_attention_variant_name(v), ms,
                   flops / (ms * 1e-3) / 1e12);
            fflush(stdout);
        }
        ZT_CUDA_CHECK(cudaFree(in));
        ZT_CUDA_CHECK(cudaFree(out));
    }
    ZT_CUDA_CHECK(cudaStreamDestroy(st));
    return 0;
}
