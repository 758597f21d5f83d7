/* api/params.c — the one check of per-image parameters (api/zturbo.h
 * zturbo_params_check): what generate runs, what the command line and the
 * server reject with the same words. No model needed, no allocation. */
#include <stdio.h>

#include "api/zturbo.h"
#include "models/limits.h"

static int put(char *err, size_t errlen, int code, const char *msg1, const char *what, int v, const char *msg2) {
    if (err && errlen) snprintf(err, errlen, "%s%s %d not allowed: %s", msg1, what, v, msg2);
    return code;
}

int zturbo_params_check(const zturbo_params *p, char *err, size_t errlen) {
    if (!p) {
        if (err && errlen) snprintf(err, errlen, "params must not be NULL");
        return ZTURBO_ERR_ARG;
    }
    const int sizes[2] = {p->width, p->height};
    const char *names[2] = {"width", "height"};
    const int from_image = p->init_image && !p->width && !p->height; /* the init image's size */
    for (int i = 0; i < 2 && !from_image; i++)
        if (sizes[i] < ZTURBO_SIZE_MIN || sizes[i] > ZTURBO_SIZE_MAX || sizes[i] % ZTURBO_SIZE_MULTIPLE)
            return put(err, errlen, ZTURBO_ERR_RANGE, "", names[i], sizes[i], "must be a multiple of " ZT_SIDES_STR);
    if (p->steps < 1 || p->steps > ZTURBO_STEPS_MAX)
        return put(err, errlen, ZTURBO_ERR_RANGE, "", "steps", p->steps, "expected an integer in 1.." ZT_LIMIT_STR(ZT_MAX_STEPS));
    if (!p->prompt && !p->ids) {
        if (err && errlen) snprintf(err, errlen, "no prompt: set prompt or ids");
        return ZTURBO_ERR_ARG;
    }
    if (p->ids && p->n_ids < 1) {
        if (err && errlen) snprintf(err, errlen, "ids: empty list");
        return ZTURBO_ERR_ARG;
    }
    if (!zturbo_rng_name(p->rng)) {
        if (err && errlen) snprintf(err, errlen, "rng %d not allowed: torch-cpu or zturbo", (int)p->rng);
        return ZTURBO_ERR_ARG;
    }
    if (!p->init_image && (p->mask || p->strength != 0)) {
        if (err && errlen) snprintf(err, errlen, "%s needs an init image", p->mask ? "a mask (inpainting)" : "strength");
        return ZTURBO_ERR_ARG;
    }
    if (p->control_image && p->strength != 0) {
        if (err && errlen) snprintf(err, errlen, "strength is not used with a control image (ControlNet inpainting "
                                                 "runs the whole schedule)");
        return ZTURBO_ERR_ARG;
    }
    if (p->control_image && p->init_image && !p->mask) {
        if (err && errlen) snprintf(err, errlen, "a control image with an init image needs a mask (ControlNet "
                                                 "inpainting); diffusers has no ControlNet img2img");
        return ZTURBO_ERR_ARG;
    }
    if (!(p->control_scale >= -1000 && p->control_scale <= 1000)) {
        if (err && errlen) snprintf(err, errlen, "control scale %g not allowed: expected -1000..1000", p->control_scale);
        return ZTURBO_ERR_RANGE;
    }
    if (p->init_image && p->strength != 0 && !(p->strength > 0 && p->strength <= 1)) {
        if (err && errlen) snprintf(err, errlen, "strength %g not allowed: expected (0, 1]", p->strength);
        return ZTURBO_ERR_RANGE;
    }
    if (err && errlen) err[0] = 0;
    return 0;
}
