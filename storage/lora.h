/* storage/lora.h — LoRA files: which layer of the catalog (storage/catalog.h)
 * each pair of factors patches, with which rank and scale, checked before
 * anything is merged. The merge itself (W' = bf16(W + sum of
 * coef * B A)) is done above, on the unit images (api/lora.h); this module
 * never touches the GPU.
 *
 * FILE: one safetensors file per LoRA. A tensor name is a MODULE PATH plus a
 * SUFFIX:
 *   A (down) [rank, in] (or [rank, in, 1, 1]):  .lora_A.weight  .lora_A.default.weight
 *       .lora_down.weight  .lora.down.weight  _lora.down.weight  .lora_linear_layer.down.weight
 *   B (up) [out, rank] (or [out, rank, 1, 1]):  the same with B / up
 *   alpha (one number): .alpha
 * dtypes F32, F16, BF16 (alpha also F64 and integers).
 *
 * MODULE PATHS: a prefix, then a layer name in one of three spellings.
 *   Prefixes of the transformer (DiT): "transformer.", "diffusion_model.",
 *     "base_model.model.", "lora_unet_", "lycoris_", "lora_transformer_", or
 *     none; of the text encoder (Qwen3): "text_encoder.",
 *     "text_encoders.qwen3_4b.transformer.", "lora_te_", "lora_te1_".
 *     A "default." anywhere is dropped (PEFT's adapter name), as diffusers does.
 *   Layer names: diffusers' (layers.3.attention.to_q, noise_refiner.0.
 *     feed_forward.w2, all_x_embedder.2-1, all_final_layer.2-1.linear, ...;
 *     text encoder: [model.]layers.3.self_attn.q_proj, mlp.gate_proj, ...) or
 *     ComfyUI's native Z-Image names (attention.qkv: the q|k|v rows of one
 *     fused B, split by the catalog's row counts; attention.out = to_out.0;
 *     x_embedder; final_layer.linear; final_layer.adaLN_modulation.1: the
 *     mapping of storage/comfy.h, zt_comfy_map_key, minus ".weight"), each
 *     spelled with its dots (canonical), with every '.' as '_' (kohya:
 *     lora_unet_layers_3_attention_to_q) or with every '_' as '.' (dot-format
 *     trainers: layers.3.attention.to.q). This covers diffusers' own
 *     converter for Z-Image (_convert_non_diffusers_z_image_lora_to_diffusers,
 *     diffusers 0.42.1: kohya, fused qkv, ai-toolkit/diffusion_model.,
 *     DiffSynth bare names, dot and underscore forms) and ComfyUI's key map
 *     for Z-Image (model_lora_keys_unet / _clip: lora_unet_, diffusion_model.,
 *     transformer., lycoris_, bare, text_encoders.). The name lists are in
 *     tests/data/lora_keys/ with their origin.
 *   A fused qkv (or a bare attention.out) next to split to_q/k/v (to_out.0)
 *     keys of the same block is a redundant copy and is skipped, as diffusers
 *     does; any other layer named twice in one file is an error.
 *
 * SCALE of a pair: coef = strength * alpha / rank, where alpha is the pair's
 *   .alpha tensor, else the file's PEFT metadata (__metadata__
 *   "lora_adapter_metadata", JSON: "transformer.lora_alpha" / "r" /
 *   "alpha_pattern" / "rank_pattern" / "use_rslora", as diffusers'
 *   save_lora_weights writes it; unprefixed keys as a model's
 *   save_lora_adapter writes them), else alpha = rank (coef = strength).
 *   rsLoRA: alpha / sqrt(rank). A metadata rank that disagrees with the
 *   tensors is an error.
 *
 * REFUSED, one line naming the file and the key: a key that matches no layer
 *   (or no LoRA suffix), A without B or B without A, an alpha without its
 *   pair, shapes that disagree with each other or with the layer, rank 0,
 *   NaN or Inf in A, B or alpha, a dtype other than the above, the same
 *   layer twice, and the LoRA types that are not plain LoRA: "unsupported
 *   LoRA type LoKr / LoHa / DoRA / LoCon (lora_mid) / GLoRA / OFT / diff /
 *   LoRA bias / embedding LoRA".
 * NO EFFECT (counted, not refused): layers of the last text-encoder layer,
 *   which hidden_states[-2] never uses.
 * Never prints. */
#ifndef ZT_STORAGE_LORA_H
#define ZT_STORAGE_LORA_H

#include <stdint.h>

#include "common/zt_common.h"
#include "storage/catalog.h"
#include "storage/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZT_LORA_MAX_FILES 16

typedef struct {
    const char *path;
    float scale;            /* strength, finite (0: the file is checked, nothing changes) */
} zt_lora_spec;

/* One pair of factors on one catalog tensor. */
typedef struct {
    int tensor;             /* catalog tensor: a [rows, cols] BF16 linear weight */
    int unit;               /* the unit that holds it */
    int file;               /* index of the LoRA file (spec order) */
    int rank;
    int64_t rows, cols;
    int64_t b_row0;         /* first row of B for this tensor (a fused qkv B holds three) */
    float coef;             /* strength * alpha / rank (rsLoRA: / sqrt(rank)) */
    const zt_st_tensor *a;  /* [rank, cols] in files[file] */
    const zt_st_tensor *b;  /* [>= b_row0 + rows, rank] */
    const zt_st_tensor *alpha; /* the pair's .alpha, or NULL */
} zt_lora_patch;

typedef struct {
    char path[4096];
    float scale;
    zt_st_file f;
    int n_pairs;            /* factor pairs in the file */
    int n_dit, n_te;        /* catalog tensors patched, transformer / text encoder */
    int n_no_effect;        /* pairs on the last text-encoder layer */
    int metadata_alpha;     /* 1: alphas came from the PEFT metadata */
} zt_lora_file;

typedef struct {
    const zt_catalog *cat;  /* borrowed: the catalog the set was mapped onto */
    int n_files;
    zt_lora_file *files;
    int n_patches;
    zt_lora_patch *patches; /* sorted by unit, then tensor, then file */
    int n_units;
    int *unit_first;        /* [n_units] first patch of each unit (n_patches when none) */
    int *unit_count;        /* [n_units] */
} zt_lora_set;

/* Open, map and check every file (headers, shapes, and every value for
 * NaN/Inf). On error nothing is returned and the message names the file and
 * the key. n may be 0 (an empty set). */
int zt_lora_set_open(const zt_catalog *cat, const zt_lora_spec *specs, int n, zt_lora_set **out, zt_err *e);
void zt_lora_set_close(zt_lora_set *s);

/* The factors of p as f32: a [rank, cols], b [rows, rank] (B's rows from
 * b_row0). */
int zt_lora_read_factors(const zt_lora_set *s, const zt_lora_patch *p, float *a, float *b, zt_err *e);

/* 1 when the two sets patch unit `unit` identically (same tensors, files,
 * factors and coefficients), so its merged image is the same. */
int zt_lora_unit_same(const zt_lora_set *x, const zt_lora_set *y, int unit);

/* Map the tensor names of one parsed file onto the catalog (no data read):
 * the fuzz and unit-test entry. adapter_metadata: the JSON string of
 * "lora_adapter_metadata" or NULL. Appends to *patches (realloc'ed, *n
 * entries) with file index `file`; fills lf's counters. */
int zt_lora_map_file(const zt_catalog *cat, const zt_st_file *f, const char *adapter_metadata, float scale, int file,
                     zt_lora_patch **patches, int *n, zt_lora_file *lf, zt_err *e);

/* "FILE[:SCALE]" of --lora: the scale is what follows the last ':' when it
 * parses as a finite number (else the whole string is the path, scale 1). */
int zt_lora_parse_arg(const char *arg, char *path, size_t path_size, float *scale, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
