/* storage/source.h — a model source: a Hugging Face snapshot folder (as
 * downloaded: model_index.json, transformer/, text_encoder/, vae/, ...), a
 * zturbo block store file (`zturbo pack`) or ComfyUI single files (a DiT,
 * a text-encoder and a VAE file: storage/comfy.h). Either way the caller gets the
 * catalog (storage/catalog.h) and can fill the byte image of any unit.
 *
 * zt_source_read_unit is the simple synchronous path (pread + conversion or
 * store extent + checksum + zstd). The streaming engine uses the asynchronous
 * reader of storage/reader.h on store extents instead.
 * Never prints; errors name the file and the cause. */
#ifndef ZT_STORAGE_SOURCE_H
#define ZT_STORAGE_SOURCE_H

#include <stdint.h>

#include "common/zt_common.h"
#include "storage/catalog.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zt_source zt_source;

typedef enum { ZT_SOURCE_SNAPSHOT = 0, ZT_SOURCE_STORE = 1, ZT_SOURCE_COMFY = 2 } zt_source_kind;

/* Open `path`: a file that starts like a safetensors file -> ComfyUI files
 * (storage/comfy.h), any other file -> store; a folder with
 * model_index.json or transformer/ -> snapshot, else a folder holding
 * *.safetensors (or ComfyUI's models/ folder) -> ComfyUI files, else
 * snapshot (whose error names what is missing). Parses and validates the configs and every tensor header
 * against the catalog: a missing, extra-but-required, mis-shaped or badly
 * typed tensor is an error naming the tensor and the file. */
int zt_source_open(const char *path, zt_source **out, zt_err *e);
void zt_source_close(zt_source *src);
/* fn(ctx, bytes) after each successful zt_source_read_unit (progress while
 * loading; may run on several loader threads at once), or NULL: none. */
void zt_source_set_read_hook(zt_source *src, void (*fn)(void *ctx, uint64_t bytes), void *ctx);
zt_source_kind zt_source_kind_of(const zt_source *src);
const char *zt_source_path(const zt_source *src); /* as opened */
const zt_catalog *zt_source_catalog(const zt_source *src);
/* Fill the byte image of unit `unit` (index into catalog units) into dst
 * (at least units[unit].nbytes bytes; padding bytes are zero). */
int zt_source_read_unit(zt_source *src, int unit, void *dst, uint64_t dst_bytes, zt_err *e);
/* The fp16 path: from now on zt_source_read_unit converts the images of the
 * units of the components in comp_mask (1u << ZT_COMP_DIT etc.) from bf16 to
 * f16 (zt_image_bf16_to_f16) after reading them; 0 turns it off. The byte
 * layout is unchanged (both are 2 bytes). zt_source_unit_f16 tells a unit's
 * setting (the streaming reader converts what it decodes, store.h
 * ZT_STORE_TO_F16). */
void zt_source_set_f16(zt_source *src, unsigned comp_mask);
int zt_source_unit_f16(const zt_source *src, int unit);
/* Readers per unit image when the source converts checkpoint files
 * (snapshot, ComfyUI): 0 (default) min(8, cores) with readahead advice,
 * 1..ZT_LOAD_THREADS_MAX (storage/tensor_image.h) that many, 1 without the
 * advice (the old loader). A store ignores it. ZT_ERR_ARG outside 0..max. */
int zt_source_set_load_threads(zt_source *src, int threads, zt_err *e);
/* Read the host-only embedding rows `ids[0..n)` of te.embed into dst
 * (bf16 [n, te_hidden]) without loading the whole table. */
int zt_source_read_embed_rows(zt_source *src, const int32_t *ids, int n, uint16_t *dst, zt_err *e);
/* A file besides the weights, by its path in a Hugging Face snapshot
 * ("tokenizer/tokenizer.json"): a snapshot reads FOLDER/NAME (a regular
 * file of at most 64 MiB), a store gives its stored copy (storage/store.h);
 * ComfyUI files have none. *data is malloc'ed (the caller frees it).
 * ZT_ERR_MISSING (message naming where it was looked for) when the source
 * has no such file. */
int zt_source_read_file(zt_source *src, const char *name, void **data, uint64_t *size, zt_err *e);

/* A source whose unit images are those of `inner` passed through fn (which
 * changes the image in place; bytes = the unit's image size). The wrapper
 * owns inner (closed with it) and calls free_ctx(ctx) at close (may be
 * NULL). Kind, catalog and embedding rows are inner's. Used for LoRA
 * merging (api/lora.h), so that every unit read gets the same treatment. */
typedef int (*zt_unit_transform_fn)(void *ctx, int unit, void *img, uint64_t bytes, zt_err *e);
int zt_source_transform(zt_source *inner, zt_unit_transform_fn fn, void *ctx, void (*free_ctx)(void *ctx),
                        zt_source **out, zt_err *e);
/* Apply src's transforms (none for a plain source) to an image of `unit`
 * that was read from the underlying store directly (the stream's reader). */
int zt_source_transform_image(zt_source *src, int unit, void *img, uint64_t bytes, zt_err *e);
/* The plain source under any transforms. */
zt_source *zt_source_inner(zt_source *src);

#ifdef __cplusplus
}
#endif
#endif
