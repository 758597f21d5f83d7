/* storage/comfy.h — ComfyUI single-file checkpoints as a model source.
 *
 * ComfyUI users hold Z-Image-Turbo as three safetensors files, usually
 *   models/diffusion_models/z_image_turbo_bf16.safetensors   the DiT
 *   models/text_encoders/qwen_3_4b.safetensors               Qwen3-4B
 *   models/vae/ae.safetensors                                the Flux VAE
 * with no config files. This source reads them, maps their names onto the
 * catalog (storage/catalog.h, diffusers naming) and fills the same unit
 * images as the snapshot reader, bit for bit.
 *
 * WHICH FILE IS WHICH: decided by keys, never by file names.
 *   DiT  "<p>cap_embedder.1.weight" exists, <p> = "" or "model.diffusion_model."
 *        or "diffusion_model.". Layout "comfy" if "<p>x_embedder.weight"
 *        exists (ComfyUI's NextDiT naming, fused qkv), "diffusers" if
 *        "<p>all_x_embedder.<patch>-<f_patch>.weight" exists.
 *   TE   "[model.]embed_tokens.weight" and "[model.]layers.0.self_attn.q_norm.weight"
 *        (Hugging Face Qwen3 naming, with or without "model.").
 *   VAE  "<p>decoder.conv_in.weight" exists, <p> = "" or "first_stage_model."
 *        or "vae.". Layout "bfl" if "<p>decoder.norm_out.weight" exists
 *        (the original Flux ae.safetensors naming), "diffusers" if
 *        "<p>decoder.conv_norm_out.weight" exists.
 *   A file may hold several roles (an all-in-one checkpoint): each role is
 *   looked up independently.
 *
 * WHERE THE FILES ARE (zt_comfy_open_path):
 *   - a folder: every *.safetensors directly in it is classified; a folder
 *     with none but a diffusion_models/ or unet/ subfolder (ComfyUI's
 *     models/ folder itself) is searched from that subfolder;
 *   - a file: that file, then *.safetensors in its folder, then in the
 *     ComfyUI sibling folders ../diffusion_models ../unet ../text_encoders
 *     ../clip ../vae (the first folder that has a candidate wins);
 *   - ZT_COMFY_DIT, ZT_COMFY_TE, ZT_COMFY_VAE (environment) name a role's
 *     file explicitly and win over the search; so do non-NULL fields of
 *     zt_comfy_files in zt_comfy_open.
 *   Several candidates for one role in the same folder: the one with the
 *   common name (z_image_turbo_bf16 / qwen_3_4b / ae .safetensors) wins,
 *   else the open fails naming two of them and the variable to set.
 *
 * NAME MAPPING (catalog key -> key in the file), after the file's prefix
 * (zt_comfy_map_key; checked against ComfyUI's and diffusers' names by
 * tests/test_comfy_keys.c):
 *   DiT comfy:  all_x_embedder.2-1.X            -> x_embedder.X
 *               all_final_layer.2-1.X           -> final_layer.X
 *               B.attention.to_q|to_k|to_v.weight -> B.attention.qkv.weight,
 *                 rows [0, dim) | [dim, dim+kv) | [dim+kv, dim+2kv) of the
 *                 fused [dim + 2 kv, dim] matrix (kv = n_kv_heads x head_dim)
 *                 — the same contiguous q|k|v order as the unit image
 *               B.attention.to_out.0.weight     -> B.attention.out.weight
 *               B.attention.norm_q|norm_k.weight -> B.attention.q_norm|k_norm.weight
 *               everything else unchanged (t_embedder, cap_embedder, pad
 *               tokens, norms, feed_forward.w1|w2|w3, adaLN_modulation.0)
 *   VAE bfl (nb = number of blocks, here 4; the encoder's keys as the
 *   decoder's with "encoder." and its down blocks, not reversed):
 *               decoder.conv_norm_out.X         -> decoder.norm_out.X
 *               decoder.mid_block.resnets.0|1.X -> decoder.mid.block_1|2.X
 *               decoder.mid_block.attentions.0.group_norm|to_q|to_k|to_v|to_out.0.X
 *                 -> decoder.mid.attn_1.norm|q|k|v|proj_out.X (weights are
 *                 1x1 convs [C, C, 1, 1] there: the same bytes as [C, C])
 *               decoder.up_blocks.I.resnets.J.X -> decoder.up.(nb-1-I).block.J.X
 *               decoder.up_blocks.I.upsamplers.0.conv.X -> decoder.up.(nb-1-I).upsample.conv.X
 *               conv_shortcut                   -> nin_shortcut
 *               encoder.down_blocks.I.resnets.J.X -> encoder.down.I.block.J.X
 *               encoder.down_blocks.I.downsamplers.0.conv.X -> encoder.down.I.downsample.conv.X
 *               conv_in, conv_out, (post_)quant_conv unchanged
 *   TE, DiT diffusers, VAE diffusers: unchanged.
 *   Extra tensors (lm_head, norm_final, ...) are ignored.
 *
 * CONFIG: the files carry none. The DiT's width, caption width and layer
 * count must match a built-in config (zt_config_preset: "full" is the real
 * model, "tiny" the test model); every tensor is then checked against that
 * config's shapes (te_prefix_model, vae_post_quant_conv, vae_encoder and
 * vae_quant_conv come from the files, as for a snapshot).
 *
 * DTYPES: F32, F16, BF16 (rounded to BF16 to nearest even, as the snapshot
 * reader does); F8_E4M3 and F8_E5M2 only in files without scales (each
 * value widens exactly to BF16). Files with ComfyUI's scaled FP8 (a
 * "scaled_fp8" key or per-weight scale tensors) and any other dtype are
 * refused: "unsupported dtype F8_E4M3 in FILE: use a bf16/fp16 file".
 *
 * ERRORS (one line): a missing tensor names the file, the first missing key
 * as the file would spell it, and how many are missing; a wrong shape names
 * the file, the key, both shapes. Never prints. */
#ifndef ZT_STORAGE_COMFY_H
#define ZT_STORAGE_COMFY_H

#include "common/zt_common.h"
#include "storage/source.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *dit; /* diffusion model file, NULL: search */
    const char *te;  /* Qwen3-4B text encoder file, NULL: search */
    const char *vae; /* Flux VAE file, NULL: search */
    const char *dir; /* where to search for the NULL ones when dit is NULL too */
} zt_comfy_files;

/* Open the three files (explicit ones, the rest searched as above). */
int zt_comfy_open(const zt_comfy_files *files, zt_source **out, zt_err *e);
/* Open from a folder or from one of the files (as zt_source_open does). */
int zt_comfy_open_path(const char *path, zt_source **out, zt_err *e);

/* The name mapping above for one catalog tensor, without the file's key
 * prefix: the key in a file of the DiT's "comfy" layout (comp ZT_COMP_DIT)
 * or the VAE's "bfl" layout (ZT_COMP_VAE); other components keep the catalog
 * key. A tensor fused into a larger one (to_q|to_k|to_v -> qkv) gets its
 * first row and the fused tensor's row count; conv1x1: a [C, C] weight may
 * be stored as [C, C, 1, 1]. The one mapping: this reader uses it, and
 * `mkmodel --layout comfy` writes its files with it; tests/test_comfy_keys.c
 * checks it against key names from ComfyUI and diffusers
 * (tests/data/comfy_keys/zimage.tsv). */
typedef struct {
    char key[256];
    int64_t row0;       /* first row inside the fused tensor */
    int64_t fused_rows; /* rows of the fused tensor; 0 = not fused */
    int conv1x1;
} zt_comfy_key;
void zt_comfy_map_key(const zt_model_config *c, zt_component comp, const char *catalog_key, zt_comfy_key *out);

/* For zt_source_open's dispatch: 1 if `path` is a regular file that starts
 * like a safetensors file (plausible 8-byte header length, then '{'). */
int zt_comfy_is_safetensors(const char *path);
/* 1 if `dir` holds no model_index.json and no transformer/ folder but at
 * least one *.safetensors file or a diffusion_models/ or unet/ folder. */
int zt_comfy_is_folder(const char *dir);

#ifdef __cplusplus
}
#endif
#endif
