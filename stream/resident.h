/* stream/resident.h — the simplest weight provider (models/units.h): every
 * device unit of the chosen components is loaded once into ONE backend
 * allocation (carved at 256-byte boundaries) and stays there; acquire is a
 * pointer lookup, release does nothing.
 *
 * Loading reads each unit with zt_source_read_unit into a host staging
 * buffer (the size of the largest unit) and uploads it; on the CPU backend
 * units are read straight into place. Host-only units (te.embed) are never
 * loaded: the pipeline gathers the embedding rows it needs from the source.
 */
#ifndef ZT_STREAM_RESIDENT_H
#define ZT_STREAM_RESIDENT_H

#include <stdint.h>

#include "common/zt_common.h"
#include "kernels/ops.h"
#include "models/units.h"
#include "storage/source.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Component mask bits: 1u << ZT_COMP_DIT etc. */
#define ZT_COMP_MASK_ALL ((1u << ZT_COMP_DIT) | (1u << ZT_COMP_TEXT) | (1u << ZT_COMP_VAE))

/* Load every non-host-only unit of the components in comp_mask. The source
 * must outlive the provider only for the duration of this call. Errors: out
 * of backend memory (ZT_ERR_NOMEM naming the bytes), read errors from the
 * source (its message, prefixed with the unit name). */
int zt_resident_open(zt_ops *ops, zt_source *src, unsigned comp_mask, zt_units **out, zt_err *e);
/* Read unit `unit` of a provider made by zt_resident_open again from src
 * (the same model) into its place. No op may be in flight on it. */
int zt_resident_reload(zt_units *u, zt_source *src, int unit, zt_err *e);
/* Bytes of backend memory the provider holds. */
uint64_t zt_resident_bytes(const zt_units *u);

#ifdef __cplusplus
}
#endif
#endif
