/* models/plan_units.c — see plan_units.h. */
#include "models/plan_units.h"

#include <string.h>

void zt_models_plan_units(const zt_catalog *cat, int steps, zt_plan_unit *out) {
    static const zt_phase phase_of[ZT_COMP_COUNT] = {
        [ZT_COMP_TEXT] = ZT_PHASE_TEXT, [ZT_COMP_DIT] = ZT_PHASE_DIT, [ZT_COMP_VAE] = ZT_PHASE_VAE};
    for (int i = 0; i < cat->n_units; i++) {
        const zt_unit_desc *u = &cat->units[i];
        zt_plan_unit *p = &out[i];
        memset(p, 0, sizeof *p);
        p->name = u->name;
        p->phase = phase_of[u->comp];
        p->bytes = u->nbytes;
        p->uses_per_image = u->per_step ? steps : 1;
        /* a ControlNet whose layers also refine the image tokens (Union 2.0) runs them twice a step */
        if (cat->has_control && cat->control.refiner == ZT_CONTROL_REFINER_LAYERS && !strncmp(u->name, "control.layers.", 15))
            p->uses_per_image *= 2;
        p->always_resident = u->always_resident;
        p->host_only = u->host_only;
    }
}
