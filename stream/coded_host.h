/* stream/coded_host.h — where the coded images of the weights come from on
 * the host (coded weights, storage/wcode.h):
 *   - with a block store (the stream reads every unit from it): the units it
 *     holds coded (codec 3), read coded when the stream loads them (their
 *     size is in the store's index); units it holds as bf16 stay bf16 (pack
 *     the store with --weights coded to stream them coded);
 *   - without one: every device unit of bf16 tensors of the source (Hugging
 *     Face snapshot, ComfyUI files) read and coded once, at load, by
 *     zt_coded_host_open with `threads` encoder threads, each
 *     coded image kept in its own allocation until the stream has moved it
 *     into pinned memory or onto the device (zt_coded_host_release).
 * The planner needs every unit's coded size before it plans: this object
 * gives them (zt_coded_host_bytes), so coding happens before planning.
 * Host-only units (te.embed) are never coded. */
#ifndef ZT_STREAM_CODED_HOST_H
#define ZT_STREAM_CODED_HOST_H

#include <stdint.h>

#include "common/zt_common.h"
#include "storage/catalog.h"
#include "storage/source.h"
#include "storage/wcode.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zt_coded_host zt_coded_host;

/* src: the model source; store: the block store the stream reads from (may
 * be NULL; when given, every unit is read from it, as the stream does; a
 * src that is a store counts as one).
 * progress (may be NULL) after each coded unit. */
typedef void (*zt_coded_host_progress_fn)(void *ctx, int units_done, int n_units);
/* keep_bf16 (may be NULL): [n_units], non-zero for units a store must not
 * serve coded (a LoRA merges into them on the host as they are read: the
 * store's coded extent is the unmerged weights). Without a store every unit
 * is coded from src as src reads it (merges included). */
int zt_coded_host_open(const zt_catalog *cat, zt_source *src, zt_source *store, const uint8_t *keep_bf16, int threads,
                       zt_coded_host_progress_fn progress, void *ctx, zt_coded_host **out, zt_err *e);
void zt_coded_host_close(zt_coded_host *h);

/* Size of unit u's coded image (0: the unit has none: host-only, or not bf16). */
uint64_t zt_coded_host_bytes(const zt_coded_host *h, int unit);
/* 1 when unit u's coded image is read from the store (codec 3) at load. */
int zt_coded_host_in_store(const zt_coded_host *h, int unit);
/* Unit u's coded image as coded at open (NULL: from the store, released, or
 * none) and its validated numbers. */
const uint8_t *zt_coded_host_image(const zt_coded_host *h, int unit);
const zt_wcode_info *zt_coded_host_info(const zt_coded_host *h, int unit);
/* Free unit u's coded image (the stream has its own copy now). */
void zt_coded_host_release(zt_coded_host *h, int unit);
/* Seconds spent coding at open, and the bytes coded (bf16 in, coded out). */
void zt_coded_host_stats(const zt_coded_host *h, double *seconds, uint64_t *bf16_bytes, uint64_t *coded_bytes);

#ifdef __cplusplus
}
#endif
#endif
