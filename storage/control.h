/* storage/control.h — a ControlNet-Union model (storage/catalog.h
 * zt_control_config) next to the transformer it belongs to.
 *
 * Formats accepted for `path`:
 *   - a folder in diffusers' layout (what ZImageControlNetModel.save_pretrained
 *     writes, e.g. the hlky/Z-Image-Turbo-Fun-Controlnet-Union* repositories):
 *     config.json (control_layers_places, control_refiner_layers_places,
 *     control_in_dim, add_control_noise_refiner: null | "control_layers" |
 *     "control_noise_refiner", and dim, n_heads, n_kv_heads,
 *     n_refiner_layers, all_patch_size, all_f_patch_size, which must equal the
 *     transformer's) + diffusion_pytorch_model.safetensors (or its index and
 *     shards);
 *   - one .safetensors file as released (alibaba-pai Z-Image-Turbo-Fun-
 *     Controlnet-Union*.safetensors, the same key names): the layout comes
 *     from the keys, as diffusers' single-file loader decides it —
 *     control_noise_refiner.0.before_proj present and not all zero: 2.1
 *     ("control_noise_refiner"); present but zero, or control_layers only:
 *     2.0 ("control_layers"); control_noise_refiner without projections: 1.0
 *     (null). in_dim from control_all_x_embedder's width; the places spread
 *     evenly over the transformer's layers (0, n/K, 2n/K, ...: 1.0's
 *     [0, 5, ..., 25], 2.x's [0, 2, ..., 28], the lite files' [0, 10, 20]);
 *     refiner places 0..n_refiner_layers-1 (2.x).
 * Every control tensor must be present with the shape the transformer
 * implies (F32, F16 or BF16; rounded to BF16 as the snapshot reader does):
 * otherwise one line naming the file and the tensor ("does not match the
 * transformer"). */
#ifndef ZT_STORAGE_CONTROL_H
#define ZT_STORAGE_CONTROL_H

#include "common/zt_common.h"
#include "storage/catalog.h"
#include "storage/source.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Read a control model's configuration (from config.json or the keys). */
int zt_control_config_read(const char *path, const zt_model_config *cfg, zt_control_config *cc, zt_err *e);
/* A source over `base` plus the control model at `path`: its catalog is
 * base's with the control units appended (zt_catalog_build_control); the
 * control units are read from the control file(s), the others from base.
 * Takes ownership of base (closed with the new source, also on failure). */
int zt_source_add_control(zt_source *base, const char *path, zt_source **out, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
