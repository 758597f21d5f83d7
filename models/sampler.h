/* models/sampler.h — the flow-match Euler schedule of Z-Image-Turbo
 * (spec §6.3-6.5): shift 3.0, no dynamic shifting, N steps = N transformer
 * evaluations, sampler state f32.
 *
 * For step i = 0..N-1 the transformer sees t_model[i] and the Euler update is
 * x = fl32(x + fl32(dt[i] * v)) with v = -model_out (zt_op_euler_step). */
#ifndef ZT_MODELS_SAMPLER_H
#define ZT_MODELS_SAMPLER_H

#include "common/zt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZT_MAX_STEPS 100

typedef struct {
    int steps;
    float sigma[ZT_MAX_STEPS + 1];    /* sigma_0 = 1 ... sigma_{N-1}, sigma_N = 0 */
    float timestep[ZT_MAX_STEPS];     /* scheduler timesteps fl32(1000 * sigma_i) */
    float t_model[ZT_MAX_STEPS];      /* transformer time fl32(fl32(1000 - t_i) * fl32(1/1000)) */
    float dt[ZT_MAX_STEPS];           /* fl32(sigma_{i+1} - sigma_i), negative */
} zt_schedule;

/* Build the schedule for `steps` evaluations (1..ZT_MAX_STEPS) with the given
 * shift and number of training timesteps (3.0 and 1000 for Turbo). A config
 * with dynamic shifting is rejected (ZT_ERR_UNSUPPORTED): Turbo never uses it. */
int zt_schedule_build(int steps, double shift, int train_steps, int dynamic, zt_schedule *s, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
