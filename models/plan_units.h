/* models/plan_units.h — the planner's view of the model's units
 * (sched/plan.h zt_plan_unit from storage/catalog.h): which phase each
 * component runs in, how often a unit is used per image, which units never
 * move (always resident) or never reach the device (host-only). The models
 * know this; the planner and the stream only see the result. */
#ifndef ZT_MODELS_PLAN_UNITS_H
#define ZT_MODELS_PLAN_UNITS_H

#include "sched/plan.h"
#include "storage/catalog.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One zt_plan_unit per catalog unit, in catalog order, into out[cat->n_units]:
 * the text encoder's units in the text phase, the transformer's in the
 * denoising phase (per-step units used `steps` times per image), the VAE's
 * in the decoding phase; compute_s 0 (zt_plan_choose estimates it). */
void zt_models_plan_units(const zt_catalog *cat, int steps, zt_plan_unit *out);

#ifdef __cplusplus
}
#endif
#endif
