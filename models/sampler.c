/* models/sampler.c — the official scheduler arithmetic, reproduced to the
 * bit (spec §6.3-6.4): float64 linspace and shift, F32 sigmas, F32 timesteps,
 * the transformer time as PyTorch-on-CUDA computes "(1000 - t) / 1000"
 * (multiplication by the F32 reciprocal). */
#include "models/sampler.h"

int zt_schedule_build(int steps, double shift, int train_steps, int dynamic, zt_schedule *s, zt_err *e) {
    if (steps < 1 || steps > ZT_MAX_STEPS)
        return zt_err_set(e, ZT_ERR_RANGE, "steps %d out of range: allowed 1..%d", steps, ZT_MAX_STEPS);
    if (dynamic)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED,
                          "scheduler_config.json: use_dynamic_shifting is true; only the static shift of Z-Image-Turbo is supported");
    if (!(shift > 0) || train_steps < 1)
        return zt_err_set(e, ZT_ERR_ARG, "scheduler: bad shift %g or num_train_timesteps %d", shift, train_steps);
    s->steps = steps;
    const double tmax = (double)train_steps; /* train_steps * sigma_max, sigma_max = 1 */
    /* numpy.linspace(tmax, 0, N + 1): T_i = i * step + start, step = -tmax/N;
     * the last element (0) is dropped. */
    const double step = (0.0 - tmax) / (double)steps;
    for (int i = 0; i < steps; i++) {
        double t = (double)i * step + tmax;
        double sg = t / tmax;
        sg = shift * sg / (1.0 + (shift - 1.0) * sg);
        s->sigma[i] = (float)sg;
    }
    s->sigma[steps] = 0.0f;
    const float inv = 1.0f / (float)train_steps; /* fl32(1/1000) = 0x3a83126f */
    for (int i = 0; i < steps; i++) {
        float ts = s->sigma[i] * (float)train_steps; /* each f32 op rounds once (C11, SSE) */
        s->timestep[i] = ts;
        float d = (float)train_steps - ts;
        s->t_model[i] = d * inv;
        s->dt[i] = s->sigma[i + 1] - s->sigma[i];
    }
    return ZT_OK;
}
