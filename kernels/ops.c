/* kernels/ops.c — context life cycle, host-side memory helpers and the
 * dispatch of every zt_op_* to its backend (see ops_internal.h). */
#include "kernels/ops_internal.h"
#include "storage/wcode.h"

#include <cuda_runtime.h>

#include "common/zt_cuda.h"
#include "kernels/cuda_norm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int zt_ops_create(const zt_ops_config *cfg, zt_ops **out, zt_err *e) {
    zt_ops *ops = calloc(1, sizeof *ops);
    if (!ops) return zt_err_set(e, ZT_ERR_NOMEM, "ops context: out of host memory");
    ops->backend = cfg->backend;
    ops->device = cfg->device;
    ops->cpu_threads = cfg->cpu_threads > 0 ? cfg->cpu_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (ops->cpu_threads < 1) ops->cpu_threads = 1;
    ops->norm_variant = ZT_NORM_VARIANT_DEFAULT;
    if (cfg->backend == ZT_BACKEND_CUDA) {
        /* a card the build cannot serve is refused before anything runs on it */
        int rc = zt_cuda_available() ? zt_ops_check_gpu(cfg->device, e) : ZT_OK;
        if (!rc) rc = zt_cuda_ops_init(ops, cfg, e);
        if (rc) {
            free(ops);
            return rc;
        }
    }
    *out = ops;
    return ZT_OK;
}

void zt_ops_destroy(zt_ops *ops) {
    if (!ops) return;
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_ops_fini(ops);
    free(ops);
}

zt_backend zt_ops_backend(const zt_ops *ops) { return ops->backend; }

int zt_ops_set_norm_variant(zt_ops *ops, int v, zt_err *e) {
    if (v < 0 || v >= ZT_NORM_VARIANTS)
        return zt_err_set(e, ZT_ERR_ARG, "norm variant %d not allowed: 0..%d", v, ZT_NORM_VARIANTS - 1);
    ops->norm_variant = v;
    return ZT_OK;
}

int zt_ops_norm_variant(const zt_ops *ops) { return ops->norm_variant; }
void *zt_ops_stream(const zt_ops *ops) { return ops->stream; }
size_t zt_ops_device_bytes(const zt_ops *ops) { return ops->backend == ZT_BACKEND_CUDA ? ops->gemm_ws_bytes : 0; }
#ifdef ZT_TEST_HOOKS
/* Test builds: ZT_TEST_GPU simulates one card (ops.h), so that the refusal
 * of cards this build cannot serve is tested without such a card. */
static int simulated_gpu(int device, zt_gpu_probe *g) {
    const char *sim = getenv("ZT_TEST_GPU");
    if (!sim || !*sim) return 0;
    memset(g, 0, sizeof *g);
    g->device = device;
    char load[32] = "";
    if (sscanf(sim, "%d.%d|%255[^|]|%31s", &g->major, &g->minor, g->name, load) < 3) {
        fprintf(stderr, "ZT_TEST_GPU='%s': expected MAJOR.MINOR|NAME[|no-image|ptx-too-new]\n", sim);
        abort();
    }
    g->load = !strcmp(load, "no-image") ? ZT_GPU_NO_IMAGE : !strcmp(load, "ptx-too-new") ? ZT_GPU_PTX_TOO_NEW : ZT_GPU_LOADS;
    if (g->load) snprintf(g->error, sizeof g->error, "simulated");
    return 1;
}
int zt_cuda_available(void) {
    zt_gpu_probe g;
    return simulated_gpu(0, &g) || zt_cuda_device_count() > 0;
}
#else
int zt_cuda_available(void) { return zt_cuda_device_count() > 0; }
#endif

/* The targets of this build's fat binary (the Makefile passes them). */
#ifndef ZT_CUDA_ARCHS
#define ZT_CUDA_ARCHS "?"
#endif

int zt_ops_check_gpu(int device, zt_err *e) {
    zt_gpu_probe g;
#ifdef ZT_TEST_HOOKS
    if (!simulated_gpu(device, &g))
#endif
        if (zt_cuda_device_probe(device, &g))
            return zt_err_set(e, ZT_ERR_UNSUPPORTED, "CUDA device %d: %s", device, g.error);
    if (g.major * 10 + g.minor < ZT_CUDA_MIN_CC)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED,
                          "GPU %d (%s) has compute capability %d.%d; zturbo needs %d.%d or newer (Turing with "
                          "--precision fp16; %d.%d for bf16): cards before Turing have no compute path yet. "
                          "`--device cpu` runs on the CPU",
                          device, g.name, g.major, g.minor, ZT_CUDA_MIN_CC / 10, ZT_CUDA_MIN_CC % 10,
                          ZT_CUDA_BF16_CC / 10, ZT_CUDA_BF16_CC % 10);
    if (g.load == ZT_GPU_NO_IMAGE)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED,
                          "GPU %d (%s, compute capability %d.%d): this zturbo has no code for it (built for %s); "
                          "rebuild it on this machine with `make`, or with `make CUDA_ARCH=sm_%d%d`",
                          device, g.name, g.major, g.minor, ZT_CUDA_ARCHS, g.major, g.minor);
    if (g.load == ZT_GPU_PTX_TOO_NEW)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED,
                          "GPU %d (%s, compute capability %d.%d): the NVIDIA driver cannot compile this build's PTX "
                          "(%s; built for %s): update the driver, or rebuild with `make CUDA_ARCH=sm_%d%d`",
                          device, g.name, g.major, g.minor, g.error, ZT_CUDA_ARCHS, g.major, g.minor);
    if (g.load != ZT_GPU_LOADS)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "GPU %d (%s, compute capability %d.%d): cannot load the kernels: %s",
                          device, g.name, g.major, g.minor, g.error);
    return ZT_OK;
}
int zt_ops_check_gpu_bf16(int device, zt_err *e) {
    zt_gpu_probe g;
    int sim = 0;
#ifdef ZT_TEST_HOOKS
    sim = simulated_gpu(device, &g);
#endif
    if (!sim && zt_cuda_device_probe(device, &g))
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "CUDA device %d: %s", device, g.error);
    if (g.major * 10 + g.minor < ZT_CUDA_BF16_CC)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED,
                          "GPU %d (%s) has compute capability %d.%d: precision bf16 needs %d.%d or newer (bf16 tensor "
                          "cores); this card runs --precision fp16",
                          device, g.name, g.major, g.minor, ZT_CUDA_BF16_CC / 10, ZT_CUDA_BF16_CC % 10);
    if (!sim) {
        int prev = 0, ok = 0;
        if (cudaGetDevice(&prev) != cudaSuccess) prev = 0;
        if (cudaSetDevice(device) == cudaSuccess) ok = zt_cuda_bf16_kernels();
        (void)cudaGetLastError();
        (void)cudaSetDevice(prev);
        if (!ok)
            return zt_err_set(e, ZT_ERR_UNSUPPORTED,
                              "GPU %d (%s, compute capability %d.%d): this zturbo was built without bf16 kernels "
                              "(built for %s): use --precision fp16, or rebuild with `make CUDA_ARCH=sm_%d%d`",
                              device, g.name, g.major, g.minor, ZT_CUDA_ARCHS, g.major, g.minor);
    }
    return ZT_OK;
}
const char *zt_cuda_kernel_path(void) { return zt_cuda_wgmma_device() ? "wgmma" : "mma.sync"; }
void zt_ops_set_f16_guard(zt_ops *ops, int on) { ops->f16_unguarded = !on; }
int zt_ops_f16_guard(const zt_ops *ops) { return !ops->f16_unguarded; }

void zt_ops_mem_info(zt_ops *ops, uint64_t *free_bytes, uint64_t *total_bytes) {
    *free_bytes = *total_bytes = 0;
    if (ops->backend != ZT_BACKEND_CUDA) return;
    size_t f = 0, t = 0;
    ZT_CUDA_CHECK(cudaMemGetInfo(&f, &t));
    *free_bytes = f;
    *total_bytes = t;
}

double zt_ops_mem_bandwidth(zt_ops *ops) {
    if (ops->backend != ZT_BACKEND_CUDA) return 0;
    int khz = 0, bits = 0;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, ops->device) != cudaSuccess ||
        cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, ops->device) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return 2.0 * (double)khz * 1e3 * (double)bits / 8.0; /* double data rate */
}

double zt_ops_measure_h2d(zt_ops *ops, size_t bytes) {
    if (ops->backend != ZT_BACKEND_CUDA || !bytes) return 0;
    void *h = NULL, *d = NULL;
    if (cudaMallocHost(&h, bytes) != cudaSuccess || cudaMalloc(&d, bytes) != cudaSuccess) {
        (void)cudaGetLastError(); /* a failed probe only means no measurement */
        if (h) ZT_CUDA_CHECK(cudaFreeHost(h));
        return 0;
    }
    memset(h, 0, bytes);
    cudaStream_t s;
    cudaEvent_t a, b;
    ZT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    ZT_CUDA_CHECK(cudaEventCreate(&a));
    ZT_CUDA_CHECK(cudaEventCreate(&b));
    float best = 0;
    for (int r = 0; r < 4; r++) { /* the first copy warms the path up; the best of the rest */
        ZT_CUDA_CHECK(cudaEventRecord(a, s));
        ZT_CUDA_CHECK(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, s));
        ZT_CUDA_CHECK(cudaEventRecord(b, s));
        ZT_CUDA_CHECK(cudaEventSynchronize(b));
        float ms = 0;
        ZT_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        if (r && (best == 0 || ms < best)) best = ms;
    }
    ZT_CUDA_CHECK(cudaEventDestroy(a));
    ZT_CUDA_CHECK(cudaEventDestroy(b));
    ZT_CUDA_CHECK(cudaStreamDestroy(s));
    ZT_CUDA_CHECK(cudaFree(d));
    ZT_CUDA_CHECK(cudaFreeHost(h));
    return best > 0 ? (double)bytes / (best * 1e-3) : 0;
}

void zt_ops_sync(zt_ops *ops) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_ops_sync(ops);
}

void *zt_mem_alloc(zt_ops *ops, size_t bytes) {
    if (ops->backend == ZT_BACKEND_CUDA) return zt_cuda_mem_alloc(ops, bytes);
    void *p = NULL;
    if (posix_memalign(&p, 256, bytes ? bytes : 1)) return NULL;
    return p;
}

void zt_mem_free(zt_ops *ops, void *p) {
    if (!p) return;
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_mem_free(ops, p);
    else free(p);
}

void zt_mem_upload(zt_ops *ops, void *dst, const void *src, size_t bytes) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_mem_upload(ops, dst, src, bytes);
    else memmove(dst, src, bytes);
}

void zt_mem_download(zt_ops *ops, void *dst, const void *src, size_t bytes) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_mem_download(ops, dst, src, bytes);
    else memmove(dst, src, bytes);
}

void zt_mem_upload_async(zt_ops *ops, void *dst, const void *src, size_t bytes) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_mem_upload_async(ops, dst, src, bytes);
    else memmove(dst, src, bytes);
}

void zt_mem_download_async(zt_ops *ops, void *dst, const void *src, size_t bytes) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_mem_download_async(ops, dst, src, bytes);
    else memmove(dst, src, bytes);
}

void zt_mem_copy(zt_ops *ops, void *dst, const void *src, size_t bytes) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_mem_copy(ops, dst, src, bytes);
    else memmove(dst, src, bytes);
}

void zt_mem_fill_u8(zt_ops *ops, void *dst, uint8_t value, size_t bytes) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_mem_fill_u8(ops, dst, value, bytes);
    else memset(dst, value, bytes);
}

/* ---- dispatch: one function per op of ops.h ---- */
void zt_op_gemm(zt_ops *ops, const zt_gemm *g) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_gemm(ops, g);
    else zt_cpu_gemm(ops, g);
}

void zt_op_rmsnorm(zt_ops *ops, const zt_norm *n) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_rmsnorm(ops, n);
    else zt_cpu_rmsnorm(ops, n);
}

void zt_op_layernorm(zt_ops *ops, const zt_norm *n) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_layernorm(ops, n);
    else zt_cpu_layernorm(ops, n);
}

void zt_op_rmsnorm_gate_add(zt_ops *ops, const zt_norm *n, const void *gate , void *resid, int64_t ld_resid) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_rmsnorm_gate_add(ops, n, gate, resid, ld_resid);
    else zt_cpu_rmsnorm_gate_add(ops, n, gate, resid, ld_resid);
}

size_t zt_groupnorm_stats_size(zt_ops *ops, const zt_groupnorm *g) {
    return ops->backend == ZT_BACKEND_CUDA ? zt_cuda_groupnorm_stats_size(ops, g) : zt_cpu_groupnorm_stats_size(ops, g);
}

size_t zt_groupnorm_workspace_size(zt_ops *ops, const zt_groupnorm *g) { return zt_groupnorm_stats_size(ops, g); }

void zt_op_groupnorm_partial(zt_ops *ops, const zt_groupnorm *g, int row0, void *stats) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_groupnorm_partial(ops, g, row0, stats);
    else zt_cpu_groupnorm_partial(ops, g, row0, stats);
}

void zt_op_groupnorm_finalize(zt_ops *ops, const zt_groupnorm *g, void *stats) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_groupnorm_finalize(ops, g, stats);
    else zt_cpu_groupnorm_finalize(ops, g, stats);
}

void zt_op_groupnorm_apply(zt_ops *ops, const zt_groupnorm *g, const void *stats) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_groupnorm_apply(ops, g, stats);
    else zt_cpu_groupnorm_apply(ops, g, stats);
}

void zt_op_groupnorm(zt_ops *ops, const zt_groupnorm *g, void *workspace) {
    zt_op_groupnorm_partial(ops, g, 0, workspace);
    zt_op_groupnorm_finalize(ops, g, workspace);
    zt_op_groupnorm_apply(ops, g, workspace);
}

void zt_op_add(zt_ops *ops, size_t n, const void *a, const void *b, void *y, zt_dtype dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_add(ops, n, a, b, y, dt);
    else zt_cpu_add(ops, n, a, b, y, dt);
}

void zt_op_add_scaled(zt_ops *ops, size_t n, const void *a, const void *b, float s, void *y, zt_dtype dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_add_scaled(ops, n, a, b, s, y, dt);
    else zt_cpu_add_scaled(ops, n, a, b, s, y, dt);
}

void zt_op_silu(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_silu(ops, n, x, y, dt);
    else zt_cpu_silu(ops, n, x, y, dt);
}

void zt_op_one_plus(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_one_plus(ops, n, x, y, dt);
    else zt_cpu_one_plus(ops, n, x, y, dt);
}

void zt_op_tanh(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_tanh(ops, n, x, y, dt);
    else zt_cpu_tanh(ops, n, x, y, dt);
}

void zt_op_convert(zt_ops *ops, size_t n, const void *x, zt_dtype x_dt, void *y, zt_dtype y_dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_convert(ops, n, x, x_dt, y, y_dt);
    else zt_cpu_convert(ops, n, x, x_dt, y, y_dt);
}

void zt_op_swiglu(zt_ops *ops, int rows, int ff, const void *in, int64_t ld_in, void *out, int64_t ld_out, zt_dtype dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_swiglu(ops, rows, ff, in, ld_in, out, ld_out, dt);
    else zt_cpu_swiglu(ops, rows, ff, in, ld_in, out, ld_out, dt);
}

void zt_op_rope_pairs(zt_ops *ops, int rows, int heads, int hd, void *x, int64_t ldx, const float *cs, zt_dtype dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_rope_pairs(ops, rows, heads, hd, x, ldx, cs, dt);
    else zt_cpu_rope_pairs(ops, rows, heads, hd, x, ldx, cs, dt);
}

void zt_op_rope_half(zt_ops *ops, int rows, int heads, int hd, void *x, int64_t ldx, const void *cs, zt_dtype dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_rope_half(ops, rows, heads, hd, x, ldx, cs, dt);
    else zt_cpu_rope_half(ops, rows, heads, hd, x, ldx, cs, dt);
}

size_t zt_attention_workspace_size(zt_ops *ops, const zt_attn *a) {
    return ops->backend == ZT_BACKEND_CUDA ? zt_cuda_attention_workspace_size(ops, a) : zt_cpu_attention_workspace_size(ops, a);
}

void zt_op_attention(zt_ops *ops, const zt_attn *a, void *workspace) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_attention(ops, a, workspace);
    else zt_cpu_attention(ops, a, workspace);
}

void zt_op_timestep_embed(zt_ops *ops, float tt, int half, void *out, zt_dtype dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_timestep_embed(ops, tt, half, out, dt);
    else zt_cpu_timestep_embed(ops, tt, half, out, dt);
}

void zt_op_patchify(zt_ops *ops, int c, int hl, int wl, int p, const float *lat, void *tok, zt_dtype dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_patchify(ops, c, hl, wl, p, lat, tok, dt);
    else zt_cpu_patchify(ops, c, hl, wl, p, lat, tok, dt);
}

void zt_op_unpatchify(zt_ops *ops, int c, int hl, int wl, int p, const void *tok, int64_t ld_tok, float *out, zt_dtype dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_unpatchify(ops, c, hl, wl, p, tok, ld_tok, out, dt);
    else zt_cpu_unpatchify(ops, c, hl, wl, p, tok, ld_tok, out, dt);
}

void zt_op_euler_step(zt_ops *ops, size_t n, float *x, const float *model_out, float dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_euler_step(ops, n, x, model_out, dt);
    else zt_cpu_euler_step(ops, n, x, model_out, dt);
}

void zt_op_flow_mix(zt_ops *ops, int c, size_t hw, const float *x0, const float *noise, float sigma, const float *mask,
                    float *lat) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_flow_mix(ops, c, hw, x0, noise, sigma, mask, lat);
    else zt_cpu_flow_mix(ops, c, hw, x0, noise, sigma, mask, lat);
}

void zt_op_lora_merge(zt_ops *ops, int64_t rows, int64_t cols, uint16_t *w, const zt_lora_term *terms, int n) {
    ZT_ASSERT(w && rows > 0 && cols > 0 && n >= 0 && n <= ZT_LORA_MAX_TERMS && (n == 0 || terms));
    for (int l = 0; l < n; l++) ZT_ASSERT(terms[l].rank > 0 && terms[l].a && terms[l].b);
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_lora_merge(ops, rows, cols, w, terms, n);
    else zt_cpu_lora_merge(ops, rows, cols, w, terms, n);
}

void zt_op_vae_input(zt_ops *ops, int c, int h, int w, const float *lat, float mul, float add, void *y, zt_dtype y_dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_vae_input(ops, c, h, w, lat, mul, add, y, y_dt);
    else zt_cpu_vae_input(ops, c, h, w, lat, mul, add, y, y_dt);
}

size_t zt_conv2d_workspace_size(zt_ops *ops, const zt_conv2d *c) {
    return ops->backend == ZT_BACKEND_CUDA ? zt_cuda_conv2d_workspace_size(ops, c) : zt_cpu_conv2d_workspace_size(ops, c);
}

void zt_op_conv2d(zt_ops *ops, const zt_conv2d *c, void *workspace) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_conv2d(ops, c, workspace);
    else zt_cpu_conv2d(ops, c, workspace);
}

void zt_op_upsample2x(zt_ops *ops, int h, int w, int c, const void *x, void *y, zt_dtype dt) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_upsample2x(ops, h, w, c, x, y, dt);
    else zt_cpu_upsample2x(ops, h, w, c, x, y, dt);
}

void zt_op_vae_posterior(zt_ops *ops, int c, int h, int w, const void *x, zt_dtype dt, const float *eps, float shift,
                         float scale, float *lat) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_vae_posterior(ops, c, h, w, x, dt, eps, shift, scale, lat);
    else zt_cpu_vae_posterior(ops, c, h, w, x, dt, eps, shift, scale, lat);
}

void zt_op_to_rgb8(zt_ops *ops, int h, int w, const void *x, zt_dtype dt, uint8_t *rgb) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_to_rgb8(ops, h, w, x, dt, rgb);
    else zt_cpu_to_rgb8(ops, h, w, x, dt, rgb);
}


void zt_op_wdecode(zt_ops *ops, const struct zt_wcode_info *info, const zt_wdecode *d, void *stream) {
    if (ops->backend == ZT_BACKEND_CUDA) zt_cuda_wdecode(ops, info, d, stream);
    else zt_cpu_wdecode(ops, info, d);
}

void zt_op_wdecode_image(zt_ops *ops, const struct zt_wcode_info *info, const void *coded, uint16_t *dst, void *stream) {
    const zt_wdecode d = {coded, (const uint8_t *)coded + info->dir_bytes, info->dir_bytes,
                          info->total_bytes - info->dir_bytes, 0, info->n_chunks, dst};
    zt_op_wdecode(ops, info, &d, stream);
}
