/* storage/catalog.h — what the Z-Image-Turbo model is made of: its
 * configuration (read from the snapshot's config files or the store), its
 * streaming units, and the one byte image of each unit (design.md).
 *
 * Streaming units (names are stable; the store, the plan and --stats use them):
 *   "dit.globals"            t_embedder, cap_embedder, all_x_embedder.2-1,
 *                            x_pad_token, cap_pad_token, all_final_layer.2-1
 *                            (always resident: small, used around every block)
 *   "dit.adaln"              adaLN_modulation.0.{weight,bias} of every
 *                            modulated block, in use order: noise_refiner.0..,
 *                            layers.0..  (so all modulation vectors of all
 *                            steps can be computed in one pass per image)
 *   "dit.context_refiner.I"  one unmodulated block (13 tensors)
 *   "dit.noise_refiner.I"    one modulated block without its adaLN (13)
 *   "dit.layers.I"           one main block without its adaLN (13)
 *   "te.embed"               model.embed_tokens.weight (kept on the host: the
 *                            pipeline gathers the L rows it needs)
 *   "te.layers.I"            Qwen3 layer I, for I < te_layers - 1 only
 *                            (hidden_states[-2] never needs the last layer
 *                            nor model.norm; they are validated, not packed)
 *   "vae.decoder"            every decoder.* tensor (+ post_quant_conv when present)
 *   "vae.encoder"            every encoder.* tensor (+ quant_conv when present),
 *                            only when cfg.vae_encoder (the checkpoint has one;
 *                            stores packed before it existed have none)
 *
 * Byte image of a unit: its tensors back to back in catalog order, each
 * starting at a multiple of ZT_TENSOR_ALIGN, EXCEPT members of a fused group,
 * which follow each other with no padding so that they form one matrix:
 *   DiT block:  attention.to_q | to_k | to_v   -> one [3*dim, dim] weight
 *               feed_forward.w1 | w3           -> one [2*ffn, dim] weight
 *   Qwen3 layer: self_attn.q_proj | k_proj | v_proj -> [(H+2*KV)*hd, hidden]
 *                mlp.gate_proj | up_proj       -> [2*inter, hidden]
 * Image dtypes: every DiT and text-encoder tensor is BF16 (F32/F16 sources
 * are rounded to nearest even at pack/load time); VAE tensors are BF16 too
 * (F32 sources rounded; the VAE model upcasts when it computes in f32).
 * VAE conv weights are permuted from PyTorch's [Cout, Cin, kh, kw] to
 * [Cout, kh, kw, Cin] (the NHWC conv of kernels/ops.h); 1x1 convs likewise.
 * The total image size is rounded up to ZT_UNIT_ALIGN (4 KiB) so a unit is
 * one O_DIRECT read and one DMA.
 */
#ifndef ZT_STORAGE_CATALOG_H
#define ZT_STORAGE_CATALOG_H

#include <stdint.h>

#include "common/zt_common.h"
#include "common/zt_dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZT_TENSOR_ALIGN 256
#define ZT_UNIT_ALIGN 4096
#define ZT_MAX_DIMS 4

typedef enum { ZT_COMP_DIT = 0, ZT_COMP_TEXT = 1, ZT_COMP_VAE = 2, ZT_COMP_COUNT } zt_component;

/* Everything the engine needs from the snapshot's config files. Values are
 * read from transformer/config.json, text_encoder/config.json,
 * vae/config.json and scheduler/scheduler_config.json; constants that the
 * reference hard-codes are derived as noted. */
typedef struct {
    /* transformer */
    int dim;               /* 3840 */
    int n_heads;           /* 30 */
    int n_kv_heads;        /* 30 */
    int n_layers;          /* 30 */
    int n_refiner_layers;  /* 2 */
    int in_channels;       /* 16 */
    int patch;             /* all_patch_size[0] = 2 */
    int f_patch;           /* all_f_patch_size[0] = 1 */
    int cap_feat_dim;      /* 2560 */
    int axes_dims[3];      /* 32, 48, 48 (sum = head dim) */
    int axes_lens[3];      /* 1536, 512, 512 */
    int head_dim;          /* dim / n_heads = 128 */
    int ffn_dim;           /* int(dim / 3 * 8) = 10240 */
    int adaln_dim;         /* min(dim, 256) */
    int t_hidden;          /* 1024: timestep MLP hidden width */
    int t_freq;            /* 256: sinusoid size */
    float norm_eps;        /* 1e-5 */
    float rope_theta;      /* 256 */
    float t_scale;         /* 1000 */
    /* text encoder (Qwen3) */
    int te_hidden;         /* 2560 */
    int te_inter;          /* 9728 */
    int te_layers;         /* 36 */
    int te_heads;          /* 32 */
    int te_kv_heads;       /* 8 */
    int te_head_dim;       /* 128 */
    int te_vocab;          /* 151936 */
    float te_eps;          /* 1e-6 */
    float te_rope_theta;   /* 1e6 */
    int te_prefix_model;   /* 1 if keys are "model.layers..." (else "layers...") */
    /* VAE (decoder side) */
    int vae_latent;        /* 16 */
    int vae_n_blocks;      /* len(block_out_channels) = 4 */
    int vae_block_out[8];  /* 128, 256, 512, 512 */
    int vae_layers_per_block; /* 2 (decoder up blocks have this + 1 resnets) */
    int vae_groups;        /* 32 */
    float vae_scale;       /* 0.3611 */
    float vae_shift;       /* 0.1159 */
    int vae_post_quant_conv; /* 1 only if post_quant_conv.weight exists in the file */
    int vae_encoder;       /* 1 if the file holds the encoder (encoder.conv_in.weight): unit vae.encoder */
    int vae_quant_conv;    /* 1 only if quant_conv.weight exists in the file (with the encoder) */
    /* scheduler */
    float sched_shift;     /* 3.0 */
    int sched_train_steps; /* 1000 */
    int sched_dynamic;     /* use_dynamic_shifting (expected false) */
} zt_model_config;

typedef struct {
    const char *name;     /* full checkpoint key, e.g. "layers.3.attention.to_q.weight" */
    zt_dtype dtype;       /* dtype in the unit image */
    int ndim;
    int64_t shape[ZT_MAX_DIMS]; /* shape in the image (after any permutation) */
    int permute_ohwi;     /* 1: stored [Cout,kh,kw,Cin] from source [Cout,Cin,kh,kw] */
    uint64_t offset;      /* byte offset inside the unit image */
    uint64_t nbytes;
} zt_tensor_desc;

typedef struct {
    char name[48];        /* "dit.layers.3" */
    zt_component comp;
    int first_tensor;     /* index into zt_catalog.tensors */
    int n_tensors;
    uint64_t nbytes;      /* image size, multiple of ZT_UNIT_ALIGN */
    int per_step;         /* 1: used on every DiT evaluation; 0: once per image */
    int host_only;        /* 1: never copied to the device (te.embed) */
    int always_resident;  /* 1: small, needed throughout its phases: never streamed (dit.globals);
                             the catalog's choice, not stored (a store's catalog is rebuilt) */
} zt_unit_desc;

/* Every tensor the checkpoint files hold, packed or not (the one table of
 * storage/catalog.c): PACKED tensors belong to a unit; CHECKED ones must be
 * present with this shape but are not packed (the last Qwen3 layer and
 * model.norm); UNUSED ones are what a real snapshot also holds but the
 * engine ignores (the VAE encoder when cfg.vae_encoder is 0: tools/mkmodel
 * writes it, sources skip it). */
typedef enum { ZT_CKPT_PACKED = 0, ZT_CKPT_CHECKED = 1, ZT_CKPT_UNUSED = 2 } zt_ckpt_role;

typedef struct {
    const char *name;     /* key as the files spell it (text encoder keys start
                             with "model." iff cfg.te_prefix_model) */
    zt_component comp;
    zt_ckpt_role role;
    int ndim;
    int64_t shape[ZT_MAX_DIMS]; /* shape in the file (PyTorch order) */
    int tensor;           /* index into zt_catalog.tensors (PACKED), else -1 */
} zt_ckpt_tensor;

/* A ControlNet-Union model for the transformer (diffusers
 * ZImageControlNetModel; the released Z-Image-Turbo-Fun-Controlnet-Union
 * checkpoints). Its blocks have the transformer's dim, heads and FFN; it
 * borrows the transformer's t_embedder, x_pad_token, noise and context
 * refiners. Units (component DIT, appended after the VAE's):
 *   "control.globals"         control_all_x_embedder.{P}  (once per image)
 *   "control.adaln"           adaLN_modulation.0 of every control block, in use
 *                             order: control_noise_refiner.I, then control_layers.K
 *   "control.noise_refiner.I" one block of control_noise_refiner (refiner
 *                             PLAIN or BLOCKS; BLOCKS: + before_proj (I = 0),
 *                             after_proj)
 *   "control.layers.K"        one block of control_layers + before_proj (K = 0)
 *                             + after_proj
 * (the last two used on every evaluation; with refiner LAYERS the control
 * layers run twice per evaluation). */
#define ZT_CONTROL_MAX_LAYERS 64
typedef enum {
    ZT_CONTROL_REFINER_PLAIN = 0,  /* add_control_noise_refiner null (Union 1.0): plain modulated blocks over the
                                    * control tokens, no hints into the noise refiner */
    ZT_CONTROL_REFINER_LAYERS = 1, /* "control_layers" (Union 2.0): the control layers run over the image tokens
                                    * first; their first hints go into the noise refiner */
    ZT_CONTROL_REFINER_BLOCKS = 2, /* "control_noise_refiner" (Union 2.1): control blocks with projections */
} zt_control_refiner;
typedef struct {
    int n_layers;                          /* control_layers */
    int places[ZT_CONTROL_MAX_LAYERS];     /* the transformer layer each hint is added after (places[0] = 0) */
    int n_refiner_places;
    int refiner_places[8];                 /* noise_refiner layers given the refiner hints (LAYERS, BLOCKS) */
    int in_dim;                            /* control context channels: 16, or 33 (control | 1 - mask | masked image) */
    zt_control_refiner refiner;
    int n_refiner_blocks;                  /* control_noise_refiner blocks: n_refiner_layers, 0 with LAYERS */
} zt_control_config;

typedef struct {
    zt_model_config cfg;
    int has_control;
    zt_control_config control; /* when has_control (units appended: zt_catalog_build_control) */
    int n_units;
    zt_unit_desc *units;      /* in use order within a component */
    int n_tensors;
    zt_tensor_desc *tensors;
    char *names;              /* storage for tensor names */
    int n_ckpt;
    zt_ckpt_tensor *ckpt;     /* in component order, then catalog order */
} zt_catalog;

/* The built-in model configs: "tiny" (CI; see tools/mkmodel) and "full"
 * (the real Z-Image-Turbo). Returns ZT_ERR_ARG for an unknown name. */
int zt_config_preset(const char *name, zt_model_config *cfg, zt_err *e);

/* Read a snapshot folder's config files (transformer/config.json,
 * text_encoder/config.json, vae/config.json, scheduler/scheduler_config.json;
 * model_index.json is optional) into cfg, derived fields filled and the
 * result validated. te_prefix_model is set to 1, vae_post_quant_conv,
 * vae_encoder and vae_quant_conv to 0: the weight files decide those
 * (storage/source.h). Errors name the file
 * and the key. */
int zt_config_load(const char *snapshot_dir, zt_model_config *cfg, zt_err *e);
/* Fill the transformer constants the reference hard-codes (head_dim,
 * ffn_dim, adaln_dim, t_hidden, t_freq) from dim and n_heads. */
void zt_config_derive(zt_model_config *cfg);
/* Check that a config describes a model the catalog can lay out (positive
 * sizes within sane caps, dim = n_heads x head_dim, axes_dims summing to
 * head_dim, ...). ZT_ERR_RANGE / ZT_ERR_UNSUPPORTED naming the field. */
int zt_config_validate(const zt_model_config *cfg, zt_err *e);

/* Build the catalog (units, tensors, image offsets) for a config. */
int zt_catalog_build(const zt_model_config *cfg, zt_catalog *cat, zt_err *e);
/* The same catalog with a ControlNet's units appended (the model's units
 * keep their indices). Checks the control config (places inside the
 * transformer's layers, increasing, the first 0; refiner places inside its
 * refiner; in_dim 1..256). */
int zt_catalog_build_control(const zt_model_config *cfg, const zt_control_config *cc, zt_catalog *cat, zt_err *e);
void zt_catalog_free(zt_catalog *cat);
/* Lookups (NULL when absent). Unit by name; tensor by unit and the key
 * relative to the unit's prefix:
 *   dit.layers.I / dit.noise_refiner.I / dit.context_refiner.I: prefix
 *     "layers.I." etc., e.g. "attention.to_q.weight";
 *   te.layers.I: prefix "layers.I." after dropping a leading "model.",
 *     e.g. "self_attn.q_proj.weight";
 *   te.embed: "embed_tokens.weight";
 *   dit.globals, dit.adaln, vae.decoder: no prefix (full key, e.g.
 *     "layers.3.adaLN_modulation.0.weight", "decoder.conv_in.weight"). */
const zt_unit_desc *zt_catalog_unit(const zt_catalog *cat, const char *unit_name);
int zt_catalog_unit_index(const zt_catalog *cat, const char *unit_name);
const zt_tensor_desc *zt_catalog_tensor(const zt_catalog *cat, const zt_unit_desc *u, const char *rel_key);

#ifdef __cplusplus
}
#endif
#endif
