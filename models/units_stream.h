/* models/units_stream.h — the streaming weight provider: models/units.h on
 * top of stream/stream.h. A plan (sched/plan.h) says which units stay on
 * the device and which stream through the window; acquire/release and the
 * phase calls map one to one onto zt_stream_*. An all-resident plan gives
 * the resident behaviour with the same code path. */
#ifndef ZT_MODELS_UNITS_STREAM_H
#define ZT_MODELS_UNITS_STREAM_H

#include "models/units.h"
#include "stream/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Create the stream for `plan` and wrap it. `store` may be NULL unless the
 * plan reads units from disk. The provider owns the stream (destroyed with
 * zt_units_destroy); *st_out (may be NULL) lets the caller read statistics
 * and the workspace. */
int zt_units_stream_open(zt_ops *ops, zt_source *src, zt_source *store, const zt_plan *plan,
                         const zt_stream_options *opt, zt_units **out, zt_stream **st_out, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
