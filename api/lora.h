/* api/lora.h — LoRA files merged into the weights once, at load:
 *   W' = bf16(W + sum over files and pairs of coef * B A),  coef = strength * alpha / rank
 * in f32 with one rounding to bf16 (kernels/ops.h zt_op_lora_merge fixes the
 * order of every operation, so the host and the GPU give the same bits).
 * Which layers, factors and coefficients: storage/lora.h.
 *
 * Where the merge happens, by tier (every path uses the same op, so a LoRA
 * image is byte-identical at every budget and tier):
 *   resident (no --vram): each unit's image in the resident allocation is
 *     merged in place, on the GPU when the backend is CUDA (only the f32
 *     factors of one layer are uploaded at a time), else on the host;
 *   streamed (--vram): the model source is wrapped (storage/source.h
 *     zt_source_transform) so every unit image read into pinned RAM or
 *     device-resident memory is merged on the host, threaded, right after
 *     its read; streaming then moves the merged bytes and costs what it
 *     cost without LoRAs;
 *   disk tier (--pinned + --store): units read from the store on every use
 *     are merged after each read, in the stream's I/O thread (this costs
 *     host time per use; `zturbo pack --lora` bakes the LoRAs into a store
 *     instead, which costs nothing per use).
 * A failed merge leaves nothing half-way: every file is checked completely
 * (zt_lora_set_open) before the first unit is touched. */
#ifndef ZT_API_LORA_H
#define ZT_API_LORA_H

#include "common/zt_common.h"
#include "kernels/ops.h"
#include "storage/lora.h"
#include "storage/source.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zt_lora_merger zt_lora_merger;

/* A merger for `set` (owned by the merger from now on; may be NULL: no
 * LoRAs). Host merges run on a CPU ops context of `threads` workers (0: all
 * cores). */
int zt_lora_merger_create(zt_lora_set *set, int threads, zt_lora_merger **out, zt_err *e);
void zt_lora_merger_destroy(zt_lora_merger *m);
/* Frees the device buffer of the factors (allocated by the first merge on a
 * CUDA ops context): before that context is destroyed, and once resident
 * merges are done (the next merge allocates it again). */
void zt_lora_merger_free_device(zt_lora_merger *m);
const zt_lora_set *zt_lora_merger_set(const zt_lora_merger *m);
/* Replace the set (the old one is closed). Units whose patches change are
 * those for which zt_lora_unit_same(old, new, unit) is 0. */
void zt_lora_merger_replace(zt_lora_merger *m, zt_lora_set *set);
/* Merge into the image of `unit` at img, which is in the memory of `ops`
 * (host for a CPU context, device for CUDA); ops NULL: the merger's own host
 * context. Thread-safe (one merge at a time). */
int zt_lora_merge_unit(zt_lora_merger *m, zt_ops *ops, int unit, void *img, zt_err *e);
/* Seconds spent merging, tensors merged (since create). */
double zt_lora_merger_seconds(const zt_lora_merger *m);
int zt_lora_merger_tensors(const zt_lora_merger *m);
/* The zt_source_transform function: ctx is a zt_lora_merger (host merge). */
int zt_lora_transform(void *ctx, int unit, void *img, uint64_t bytes, zt_err *e);

/* For `zturbo pack --lora`: open and check the files against src's catalog
 * and wrap src (owned by the result) so that every unit read is merged on
 * the host. *m_out (may be NULL) gets the merger for its statistics; it is
 * owned by the wrapper. */
int zt_lora_wrap_source(zt_source *src, const zt_lora_spec *specs, int n, int threads, zt_source **out,
                        zt_lora_merger **m_out, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
