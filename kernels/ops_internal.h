/* kernels/ops_internal.h — the context struct and the per-backend entry
 * points behind kernels/ops.h. kernels/ops.c dispatches zt_op_X to
 * zt_cpu_X (kernels/cpu_*.c) or zt_cuda_X (kernels/cuda_*.cu); each backend
 * implements every function below with the exact semantics documented in
 * ops.h. Nothing outside kernels/ (and its tests) includes this file. */
#ifndef ZT_KERNELS_OPS_INTERNAL_H
#define ZT_KERNELS_OPS_INTERNAL_H

#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

struct zt_ops {
    zt_backend backend;
    int device;
    void *stream;          /* cudaStream_t */
    int own_stream;        /* 1 if created by zt_ops_create */
    void *cublaslt;        /* cublasLtHandle_t */
    void *gemm_ws;         /* device workspace for cuBLASLt, fixed at create */
    size_t gemm_ws_bytes;
    int cpu_threads;       /* CPU backend worker count (>= 1) */
    int f16_unguarded;     /* test switch (zt_ops_set_f16_guard): fp16 ops without the guards */
    int norm_variant;      /* CUDA row norms' launch variant (kernels/cuda_norm.h) */
};

/* CUDA life cycle and memory (kernels/cuda_context.cu). */
int zt_cuda_ops_init(zt_ops *ops, const zt_ops_config *cfg, zt_err *e);
void zt_cuda_ops_fini(zt_ops *ops);
void zt_cuda_ops_sync(zt_ops *ops);
void *zt_cuda_mem_alloc(zt_ops *ops, size_t bytes);
void zt_cuda_mem_free(zt_ops *ops, void *p);
void zt_cuda_mem_upload(zt_ops *ops, void *dst, const void *src, size_t bytes);
void zt_cuda_mem_download(zt_ops *ops, void *dst, const void *src, size_t bytes);
void zt_cuda_mem_upload_async(zt_ops *ops, void *dst, const void *src, size_t bytes);
void zt_cuda_mem_download_async(zt_ops *ops, void *dst, const void *src, size_t bytes);
void zt_cuda_mem_copy(zt_ops *ops, void *dst, const void *src, size_t bytes);
void zt_cuda_mem_fill_u8(zt_ops *ops, void *dst, uint8_t value, size_t bytes);
int zt_cuda_device_count(void);
/* What the start-up check (zt_ops_check_gpu) needs to know about a device. */
#define ZT_CUDA_MIN_CC 75  /* 10 * major + minor: the fp16 path's m16n8k8 f16 MMA needs Turing (7.5) */
#define ZT_CUDA_BF16_CC 80 /* the bf16 tensor-core kernels need Ampere (8.0) or newer */
enum { ZT_GPU_LOADS = 0, ZT_GPU_NO_IMAGE, ZT_GPU_PTX_TOO_NEW, ZT_GPU_LOAD_ERROR };
typedef struct {
    int device, major, minor;
    int load;        /* ZT_GPU_*: whether this build's kernels load on it (not probed below 7.5) */
    char name[256];  /* cudaDeviceProp.name */
    char error[128]; /* the CUDA error behind a failed probe or load */
} zt_gpu_probe;
/* 0 and *g filled, or -1 with g->error (no such device, no driver). */
int zt_cuda_device_probe(int device, zt_gpu_probe *g);
/* 1 when the current device runs the wgmma kernels: a compute capability 9.0
 * card and a binary built for sm_90a. */
int zt_cuda_wgmma_device(void);

/* Ops, CPU reference backend (kernels/cpu_*.c). */
void zt_cpu_gemm(zt_ops *ops, const zt_gemm *g);
void zt_cpu_rmsnorm(zt_ops *ops, const zt_norm *n);
void zt_cpu_layernorm(zt_ops *ops, const zt_norm *n);
void zt_cpu_rmsnorm_gate_add(zt_ops *ops, const zt_norm *n, const void *gate , void *resid, int64_t ld_resid);
size_t zt_cpu_groupnorm_stats_size(zt_ops *ops, const zt_groupnorm *g);
void zt_cpu_groupnorm_partial(zt_ops *ops, const zt_groupnorm *g, int row0, void *stats);
void zt_cpu_groupnorm_finalize(zt_ops *ops, const zt_groupnorm *g, void *stats);
void zt_cpu_groupnorm_apply(zt_ops *ops, const zt_groupnorm *g, const void *stats);
void zt_cpu_add(zt_ops *ops, size_t n, const void *a, const void *b, void *y, zt_dtype dt);
void zt_cpu_add_scaled(zt_ops *ops, size_t n, const void *a, const void *b, float s, void *y, zt_dtype dt);
void zt_cpu_silu(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt);
void zt_cpu_one_plus(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt);
void zt_cpu_tanh(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt);
void zt_cpu_convert(zt_ops *ops, size_t n, const void *x, zt_dtype x_dt, void *y, zt_dtype y_dt);
void zt_cpu_swiglu(zt_ops *ops, int rows, int ff, const void *in, int64_t ld_in, void *out, int64_t ld_out, zt_dtype dt);
void zt_cpu_rope_pairs(zt_ops *ops, int rows, int heads, int hd, void *x, int64_t ldx, const float *cs, zt_dtype dt);
void zt_cpu_rope_half(zt_ops *ops, int rows, int heads, int hd, void *x, int64_t ldx, const void *cs, zt_dtype dt);
size_t zt_cpu_attention_workspace_size(zt_ops *ops, const zt_attn *a);
void zt_cpu_attention(zt_ops *ops, const zt_attn *a, void *workspace);
void zt_cpu_timestep_embed(zt_ops *ops, float tt, int half, void *out, zt_dtype dt);
void zt_cpu_patchify(zt_ops *ops, int c, int hl, int wl, int p, const float *lat, void *tok, zt_dtype dt);
void zt_cpu_unpatchify(zt_ops *ops, int c, int hl, int wl, int p, const void *tok, int64_t ld_tok, float *out, zt_dtype dt);
void zt_cpu_euler_step(zt_ops *ops, size_t n, float *x, const float *model_out, float dt);
void zt_cpu_flow_mix(zt_ops *ops, int c, size_t hw, const float *x0, const float *noise, float sigma, const float *mask,
                     float *lat);
void zt_cpu_lora_merge(zt_ops *ops, int64_t rows, int64_t cols, uint16_t *w, const zt_lora_term *terms, int n);
/* plain = 1: the portable loop even where the FMA-vector one would run (its test covers both) */
void zt_cpu_lora_merge_variant(zt_ops *ops, int64_t rows, int64_t cols, uint16_t *w, const zt_lora_term *terms, int n,
                               int plain);
void zt_cpu_vae_input(zt_ops *ops, int c, int h, int w, const float *lat, float mul, float add, void *y, zt_dtype y_dt);
size_t zt_cpu_conv2d_workspace_size(zt_ops *ops, const zt_conv2d *c);
void zt_cpu_conv2d(zt_ops *ops, const zt_conv2d *c, void *workspace);
void zt_cpu_upsample2x(zt_ops *ops, int h, int w, int c, const void *x, void *y, zt_dtype dt);
void zt_cpu_vae_posterior(zt_ops *ops, int c, int h, int w, const void *x, zt_dtype dt, const float *eps, float shift,
                          float scale, float *lat);
void zt_cpu_to_rgb8(zt_ops *ops, int h, int w, const void *x, zt_dtype dt, uint8_t *rgb);
void zt_cpu_wdecode(zt_ops *ops, const struct zt_wcode_info *info, const zt_wdecode *d);

/* Ops, CUDA backend (kernels/cuda_*.cu). */
void zt_cuda_gemm(zt_ops *ops, const zt_gemm *g);
void zt_cuda_rmsnorm(zt_ops *ops, const zt_norm *n);
void zt_cuda_layernorm(zt_ops *ops, const zt_norm *n);
void zt_cuda_rmsnorm_gate_add(zt_ops *ops, const zt_norm *n, const void *gate , void *resid, int64_t ld_resid);
size_t zt_cuda_groupnorm_stats_size(zt_ops *ops, const zt_groupnorm *g);
void zt_cuda_groupnorm_partial(zt_ops *ops, const zt_groupnorm *g, int row0, void *stats);
void zt_cuda_groupnorm_finalize(zt_ops *ops, const zt_groupnorm *g, void *stats);
void zt_cuda_groupnorm_apply(zt_ops *ops, const zt_groupnorm *g, const void *stats);
void zt_cuda_add(zt_ops *ops, size_t n, const void *a, const void *b, void *y, zt_dtype dt);
void zt_cuda_add_scaled(zt_ops *ops, size_t n, const void *a, const void *b, float s, void *y, zt_dtype dt);
void zt_cuda_silu(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt);
void zt_cuda_one_plus(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt);
void zt_cuda_tanh(zt_ops *ops, size_t n, const void *x, void *y, zt_dtype dt);
void zt_cuda_convert(zt_ops *ops, size_t n, const void *x, zt_dtype x_dt, void *y, zt_dtype y_dt);
void zt_cuda_swiglu(zt_ops *ops, int rows, int ff, const void *in, int64_t ld_in, void *out, int64_t ld_out, zt_dtype dt);
void zt_cuda_rope_pairs(zt_ops *ops, int rows, int heads, int hd, void *x, int64_t ldx, const float *cs, zt_dtype dt);
void zt_cuda_rope_half(zt_ops *ops, int rows, int heads, int hd, void *x, int64_t ldx, const void *cs, zt_dtype dt);
size_t zt_cuda_attention_workspace_size(zt_ops *ops, const zt_attn *a);
void zt_cuda_attention(zt_ops *ops, const zt_attn *a, void *workspace);
void zt_cuda_timestep_embed(zt_ops *ops, float tt, int half, void *out, zt_dtype dt);
void zt_cuda_patchify(zt_ops *ops, int c, int hl, int wl, int p, const float *lat, void *tok, zt_dtype dt);
void zt_cuda_unpatchify(zt_ops *ops, int c, int hl, int wl, int p, const void *tok, int64_t ld_tok, float *out, zt_dtype dt);
void zt_cuda_euler_step(zt_ops *ops, size_t n, float *x, const float *model_out, float dt);
void zt_cuda_flow_mix(zt_ops *ops, int c, size_t hw, const float *x0, const float *noise, float sigma, const float *mask,
                      float *lat);
void zt_cuda_lora_merge(zt_ops *ops, int64_t rows, int64_t cols, uint16_t *w, const zt_lora_term *terms, int n);
void zt_cuda_vae_input(zt_ops *ops, int c, int h, int w, const float *lat, float mul, float add, void *y, zt_dtype y_dt);
size_t zt_cuda_conv2d_workspace_size(zt_ops *ops, const zt_conv2d *c);
void zt_cuda_conv2d(zt_ops *ops, const zt_conv2d *c, void *workspace);
void zt_cuda_upsample2x(zt_ops *ops, int h, int w, int c, const void *x, void *y, zt_dtype dt);
void zt_cuda_vae_posterior(zt_ops *ops, int c, int h, int w, const void *x, zt_dtype dt, const float *eps, float shift,
                           float scale, float *lat);
void zt_cuda_to_rgb8(zt_ops *ops, int h, int w, const void *x, zt_dtype dt, uint8_t *rgb);
void zt_cuda_wdecode(zt_ops *ops, const struct zt_wcode_info *info, const zt_wdecode *d, void *stream);

#ifdef __cplusplus
}
#endif
#endif
