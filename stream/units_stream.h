/* stream/units_stream.h — the weight provider: stream/units.h on top of
 * stream/stream.h. A plan (sched/plan.h) says which units stay on the
 * device and which stream through the window; acquire/release and the
 * phase calls map one to one onto zt_stream_*. "Everything resident" is the
 * plan with no budget (zt_plan_choose with vram_budget 0): the same code
 * path, every unit in the resident arena, no window. */
#ifndef ZT_STREAM_UNITS_STREAM_H
#define ZT_STREAM_UNITS_STREAM_H

#include "stream/units.h"
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
