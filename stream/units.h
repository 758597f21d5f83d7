/* stream/units.h — the weight-provider interface every model uses (the
 * streaming engine implements it: stream/units_stream.h).
 *
 * A model never knows where a streaming unit lives (design.md). Its forward
 * is, for each unit in its static use order:
 *
 *     const char *img = zt_units_acquire(u, unit);   // byte image, backend memory
 *     ... bind tensor views at catalog offsets inside img, enqueue ops ...
 *     zt_units_release(u, unit);                     // ops enqueued, slot reusable
 *
 * acquire returns the unit's byte image (storage/catalog.h layout) in the
 * memory of the ops backend, ready to be read by ops enqueued on the compute
 * stream AFTER the call (a streaming provider makes the compute stream wait
 * for the copy event before returning). release says that every op reading
 * the unit has been enqueued; a streaming provider records a "slot free"
 * event on the compute stream and may overwrite the slot once it fired.
 * Calls are strictly paired and a model holds few units at a time (at most 3:
 * globals + adaln + one block).
 *
 * acquire returns NULL when the unit cannot be had (I/O error, checksum
 * mismatch, unit not resident...); the provider then holds the one-line
 * reason in u->err, which model code copies into its own zt_err with
 * zt_units_fail().
 *
 * Phases: before a model runs, the pipeline announces the static use order
 * of what follows (zt_qwen3_unit_order, zt_dit_unit_order, zt_vae_unit_order)
 * with zt_units_begin_phase; `repeat` > 1 says the order repeats (DiT steps),
 * so a prefetcher may wrap from the end of one repetition into the next.
 * zt_units_end_phase waits for outstanding copies and reports deferred
 * errors (a checksum mismatch found by an I/O thread). These map one to one
 * onto stream/stream.h (zt_stream_begin_phase / zt_stream_end_phase).
 */
#ifndef ZT_STREAM_UNITS_H
#define ZT_STREAM_UNITS_H

#include "common/zt_common.h"
#include "storage/catalog.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zt_units zt_units;

typedef struct {
    const void *(*acquire)(zt_units *u, int unit);
    void (*release)(zt_units *u, int unit);
    void (*destroy)(zt_units *u);
    /* optional (NULL: nothing to do) */
    int (*begin_phase)(zt_units *u, const int *order, int n, int repeat, zt_err *e);
    int (*end_phase)(zt_units *u, zt_err *e);
} zt_units_vtable;

struct zt_units {
    const zt_units_vtable *vt;
    const zt_catalog *cat;   /* units and tensor offsets */
    zt_err err;              /* reason of the last failed acquire */
};

static inline const void *zt_units_acquire(zt_units *u, int unit) { return u->vt->acquire(u, unit); }
static inline void zt_units_release(zt_units *u, int unit) { u->vt->release(u, unit); }
static inline void zt_units_destroy(zt_units *u) {
    if (u) u->vt->destroy(u);
}
static inline int zt_units_begin_phase(zt_units *u, const int *order, int n, int repeat, zt_err *e) {
    return u->vt->begin_phase ? u->vt->begin_phase(u, order, n, repeat, e) : ZT_OK;
}
static inline int zt_units_end_phase(zt_units *u, zt_err *e) {
    return u->vt->end_phase ? u->vt->end_phase(u, e) : ZT_OK;
}
/* Copy the provider's reason into e; returns its code (ZT_ERR_INTERNAL if none). */
static inline int zt_units_fail(zt_units *u, zt_err *e) {
    if (!u->err.code) return zt_err_set(e, ZT_ERR_INTERNAL, "weight provider failed without a reason");
    if (e) *e = u->err;
    return u->err.code;
}

#ifdef __cplusplus
}
#endif
#endif
