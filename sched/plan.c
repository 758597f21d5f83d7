/* sched/plan.c — the residency planner (see plan.h for the model). */
#include "sched/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_ALIGN 256u

static const zt_plan_policy k_policy_default = {
    .gpu_flops = 6.0e14,
    .cpu_flops = 5.0e10,
    .caption_tokens = 128,
    .context_headroom = 96ull << 20,
    .link_bw = 25e9,
    .disk_bw = 2e9,
    .prefetch = 1,
    .prefetch_max = 3,
    .deeper_factor = 0.99,
    .staging_slots = 4,
};

void zt_plan_policy_default(zt_plan_policy *p) { *p = k_policy_default; }

static const zt_plan_policy *policy_of(const zt_plan_input *in) { return in->policy ? in->policy : &k_policy_default; }

/* Residency priority class: lower wins. Per-step DiT units cost bus time on
 * every evaluation; everything else once per image. */
static int unit_class(const zt_plan_unit *u) {
    if (u->uses_per_image == 0) return 3; /* not used by this plan's requests (a text-to-image plan's VAE encoder) */
    if (u->phase == ZT_PHASE_DIT && u->uses_per_image > 1) return 0;
    if (u->phase == ZT_PHASE_VAE) return 1;
    return 2;
}

static int is_candidate(const zt_plan_unit *u) { return !u->always_resident && !u->host_only; }

static uint64_t fixed_bytes(const zt_plan_unit *units, int n, const zt_plan_input *in) {
    uint64_t b = in->context_bytes + ZT_ALIGN_UP(in->workspace_bytes, PLAN_ALIGN);
    for (int i = 0; i < n; i++)
        if (units[i].always_resident && !units[i].host_only) b += ZT_ALIGN_UP(units[i].bytes, PLAN_ALIGN);
    return b;
}

static int plan_prefetch(const zt_plan_input *in) {
    return in->prefetch_override >= 0 ? in->prefetch_override : policy_of(in)->prefetch;
}

static int plan_slots(const zt_plan_input *in) {
    int pf = plan_prefetch(in);
    int slots = pf + 1;
    if (in->window_override > 0) slots = in->window_override;
    return slots;
}

uint64_t zt_plan_min_budget(const zt_plan_unit *units, int n_units, const zt_plan_input *in) {
    uint64_t maxc = 0;
    for (int i = 0; i < n_units; i++)
        if (is_candidate(&units[i]) && units[i].bytes > maxc) maxc = units[i].bytes;
    uint64_t slot = ZT_ALIGN_UP(maxc, PLAN_ALIGN);
    return fixed_bytes(units, n_units, in) + (maxc ? (uint64_t)plan_slots(in) * slot : 0);
}

void zt_plan_free(zt_plan *p) {
    if (!p) return;
    free(p->units);
    p->units = NULL;
}

static unsigned bit_reverse(unsigned v, unsigned bits) {
    unsigned r = 0;
    for (unsigned b = 0; b < bits; b++)
        if (v & (1u << b)) r |= 1u << (bits - 1 - b);
    return r;
}

/* Order candidate indices by class. Per-step units (class 0) come in
 * bit-reversed (van der Corput) order of their position, so that when only
 * a prefix of them fits, the resident blocks and the streamed blocks
 * alternate along the step: the copy of a streamed block then overlaps the
 * compute of the resident blocks before it instead of all copies bunching
 * up at the end of the step. Other classes keep input order. */
static void order_candidates(const zt_plan_unit *units, int n, int *order, int *n_order) {
    int n0 = 0, k = 0;
    for (int i = 0; i < n; i++)
        if (is_candidate(&units[i]) && unit_class(&units[i]) == 0) order[n0++] = i;
    int *idx = malloc(sizeof *idx * (size_t)(n0 ? n0 : 1));
    if (idx) {
        memcpy(idx, order, sizeof *idx * (size_t)n0);
        unsigned bits = 0;
        while ((1u << bits) < (unsigned)n0) bits++;
        for (unsigned v = 0; v < (1u << bits); v++) {
            unsigned r = bit_reverse(v, bits);
            if (r < (unsigned)n0) order[k++] = idx[r];
        }
        free(idx);
    } else {
        k = n0; /* out of memory: input order is still a valid plan */
    }
    for (int cls = 1; cls < 4; cls++)
        for (int i = 0; i < n; i++)
            if (is_candidate(&units[i]) && unit_class(&units[i]) == cls) order[k++] = i;
    *n_order = k;
}

/* Greedy first fit of residents into `avail` bytes. Returns the largest
 * streamed candidate (the slot size that this choice needs). */
static uint64_t choose_residents(const zt_plan_unit *units, const int *order, int n_order, uint64_t avail,
                                 zt_plan_unit_choice *ch) {
    uint64_t used = 0, max_streamed = 0;
    for (int k = 0; k < n_order; k++) {
        int i = order[k];
        uint64_t b = ZT_ALIGN_UP(units[i].bytes, PLAN_ALIGN);
        if (used + b <= avail) {
            ch[i].residency = ZT_RES_RESIDENT;
            used += b;
        } else {
            ch[i].residency = ZT_RES_STREAMED;
            if (units[i].bytes > max_streamed) max_streamed = units[i].bytes;
        }
    }
    return max_streamed;
}

/* Residents for a window of `slots` slots inside `avail` bytes: the slots
 * start sized for the largest candidate, then shrink to the largest unit
 * actually streamed, the freed bytes taking more residents (three rounds
 * settle it). Returns the slot size, 0 if the window does not fit. */
static uint64_t fit_window(const zt_plan_unit *units, const int *order, int n_order, uint64_t avail, int slots,
                           zt_plan_unit_choice *ch) {
    uint64_t slot = 0;
    for (int k = 0; k < n_order; k++)
        if (units[order[k]].bytes > slot) slot = units[order[k]].bytes;
    slot = ZT_ALIGN_UP(slot, PLAN_ALIGN);
    if (avail < (uint64_t)slots * slot) return 0;
    for (int round = 0; round < 3; round++) {
        uint64_t need = ZT_ALIGN_UP(choose_residents(units, order, n_order, avail - (uint64_t)slots * slot, ch), PLAN_ALIGN);
        if (need == slot || need == 0) break;
        slot = need; /* every streamed unit fits: need is the largest streamed size */
    }
    /* the final choice with the final slot size (never larger than the first) */
    uint64_t need = choose_residents(units, order, n_order, avail - (uint64_t)slots * slot, ch);
    if (ZT_ALIGN_UP(need, PLAN_ALIGN) > slot) { /* cannot happen, but never exceed the budget */
        slot = ZT_ALIGN_UP(need, PLAN_ALIGN);
        if (avail < (uint64_t)slots * slot) return 0;
        choose_residents(units, order, n_order, avail - (uint64_t)slots * slot, ch);
    }
    return slot ? slot : PLAN_ALIGN;
}

/* Seconds of one DiT evaluation in steady state with `slots` window slots,
 * simulated the way stream/ executes it: one copy stream (copies in use
 * order, each at bytes / link_bw), the copy of streamed use g waits for the
 * compute of use g - slots (the slot's previous tenant) to finish, and a unit
 * computes after the one before it and after its copy landed. Three steps
 * are run so the prefetch that wraps across steps is in the last one. The
 * result lies between max(compute, link) and compute + link. */
static double sim_step(const zt_plan_unit *units, int n, const zt_plan_unit_choice *ch, int slots, double link_bw) {
    double done[17] = {0}; /* compute end of the last `slots` streamed uses, ring */
    double t_comp = 0, t_link = 0, start = 0;
    long g = 0;
    if (slots < 1) slots = 1;
    if (slots > 16) slots = 16;
    for (int step = 0; step < 3; step++) {
        start = t_comp;
        for (int i = 0; i < n; i++) {
            const zt_plan_unit *u = &units[i];
            if (!(u->phase == ZT_PHASE_DIT && u->uses_per_image > 1)) continue;
            double c0 = t_comp;
            if (ch[i].residency == ZT_RES_STREAMED) {
                double free_at = g >= slots ? done[g % slots] : 0;
                double s0 = t_link > free_at ? t_link : free_at;
                t_link = s0 + (double)u->bytes / link_bw;
                if (t_link > c0) c0 = t_link;
            }
            t_comp = c0 + u->compute_s;
            if (ch[i].residency == ZT_RES_STREAMED) done[g++ % slots] = t_comp;
        }
    }
    return t_comp - start;
}

int zt_plan_make(const zt_plan_unit *units, int n_units, const zt_plan_input *in, zt_plan *out, zt_err *e) {
    char b1[32], b2[32], b3[32], b4[32];
    memset(out, 0, sizeof *out);
    if (n_units <= 0 || !units) return zt_err_set(e, ZT_ERR_ARG, "plan: no units");
    if (in->steps < 1) return zt_err_set(e, ZT_ERR_ARG, "plan: steps must be >= 1 (got %d)", in->steps);
    if (in->link_bw <= 0) return zt_err_set(e, ZT_ERR_ARG, "plan: link bandwidth must be > 0");
    if (in->prefetch_override > 8) return zt_err_set(e, ZT_ERR_ARG, "plan: --prefetch must be 0..8 (got %d)", in->prefetch_override);
    if (in->window_override < 0 || in->window_override > 16)
        return zt_err_set(e, ZT_ERR_ARG, "plan: --window must be 1..16 (got %d)", in->window_override);
    if (in->window_override > 0 && in->window_override < plan_prefetch(in) + 1)
        return zt_err_set(e, ZT_ERR_ARG, "plan: --window %d cannot hold --prefetch %d (needs at least %d slots)",
                          in->window_override, plan_prefetch(in), plan_prefetch(in) + 1);

    zt_plan_unit_choice *ch = calloc((size_t)n_units, sizeof *ch);
    int *order = malloc((size_t)n_units * sizeof *order);
    if (!ch || !order) {
        free(ch);
        free(order);
        return zt_err_set(e, ZT_ERR_NOMEM, "plan: out of host memory");
    }
    out->units = ch;
    out->n_units = n_units;

    uint64_t fixed = fixed_bytes(units, n_units, in);
    uint64_t all = fixed;
    for (int i = 0; i < n_units; i++) {
        ch[i].phase = units[i].phase;
        if (units[i].host_only) ch[i].residency = ZT_RES_HOST;
        else if (units[i].always_resident) ch[i].residency = ZT_RES_RESIDENT;
        if (is_candidate(&units[i])) all += ZT_ALIGN_UP(units[i].bytes, PLAN_ALIGN);
    }
    int n_order = 0;
    order_candidates(units, n_units, order, &n_order);

    if (all <= in->vram_budget && in->window_override == 0 && in->prefetch_override < 0) {
        for (int k = 0; k < n_order; k++) ch[order[k]].residency = ZT_RES_RESIDENT;
        out->all_resident = 1;
    } else {
        uint64_t min = zt_plan_min_budget(units, n_units, in);
        if (in->vram_budget < min) {
            free(order);
            zt_plan_free(out);
            return zt_err_set(e, ZT_ERR_NOMEM,
                              "plan: --vram %s is too small: context %s + workspace %s + window of %d slots needs at least %s",
                              zt_fmt_bytes(in->vram_budget, b1, sizeof b1), zt_fmt_bytes(in->context_bytes, b2, sizeof b2),
                              zt_fmt_bytes(in->workspace_bytes, b3, sizeof b3), plan_slots(in),
                              zt_fmt_bytes(min, b4, sizeof b4));
        }
        int slots = plan_slots(in), pf = plan_prefetch(in);
        uint64_t slot = fit_window(units, order, n_order, in->vram_budget - fixed, slots, ch);
        if (in->prefetch_override < 0 && in->window_override == 0) {
            /* A deeper prefetch costs a resident block per extra slot but lets
             * a copy start earlier; take it when the simulated step is more
             * than 1% faster (stalls behind a late copy against more bytes). */
            const zt_plan_policy *pol = policy_of(in);
            zt_plan_unit_choice *alt = malloc(sizeof *alt * (size_t)n_units);
            double best = sim_step(units, n_units, ch, slots, in->link_bw);
            for (int d = pf + 1; alt && d <= pol->prefetch_max; d++) {
                memcpy(alt, ch, sizeof *alt * (size_t)n_units);
                uint64_t s2 = fit_window(units, order, n_order, in->vram_budget - fixed, d + 1, alt);
                if (!s2) continue; /* does not fit */
                double t = sim_step(units, n_units, alt, d + 1, in->link_bw);
                if (t < best * pol->deeper_factor) {
                    best = t;
                    memcpy(ch, alt, sizeof *alt * (size_t)n_units);
                    slots = d + 1;
                    pf = d;
                    slot = s2;
                }
            }
            free(alt);
        }
        int any_streamed = 0;
        for (int k = 0; k < n_order; k++) any_streamed |= ch[order[k]].residency == ZT_RES_STREAMED;
        if (any_streamed) {
            out->n_slots = slots;
            out->slot_bytes = slot;
            out->prefetch = pf;
        } else {
            out->all_resident = 1;
        }
    }

    /* Resident arena offsets, in unit order. */
    uint64_t off = 0;
    for (int i = 0; i < n_units; i++) {
        if (ch[i].residency != ZT_RES_RESIDENT) continue;
        ch[i].device_offset = off;
        off += ZT_ALIGN_UP(units[i].bytes, PLAN_ALIGN);
    }
    out->resident_bytes = off;
    out->window_bytes = (uint64_t)out->n_slots * out->slot_bytes;
    out->workspace_bytes = ZT_ALIGN_UP(in->workspace_bytes, PLAN_ALIGN);
    out->device_total = in->context_bytes + out->resident_bytes + out->window_bytes + out->workspace_bytes;

    /* Host tiers for streamed units, per-step units first. */
    uint64_t pinned_left = in->pinned_budget;
    int any_disk = 0;
    for (int k = 0; k < n_order; k++) {
        int i = order[k];
        if (ch[i].residency != ZT_RES_STREAMED) continue;
        if (units[i].bytes <= pinned_left) {
            ch[i].tier = ZT_TIER_PINNED;
            pinned_left -= units[i].bytes;
            out->pinned_bytes += units[i].bytes;
        } else {
            ch[i].tier = ZT_TIER_DISK;
            any_disk = 1;
        }
    }
    if (any_disk) {
        if (!in->have_store) {
            free(order);
            zt_plan_free(out);
            return zt_err_set(e, ZT_ERR_NOMEM,
                              "plan: --pinned %s cannot hold the streamed weights and there is no block store to read "
                              "them from: pack one with `zturbo pack` and pass --store, or raise --pinned",
                              zt_fmt_bytes(in->pinned_budget, b1, sizeof b1));
        }
        /* several stages: reads run ahead while earlier stages wait for a slot */
        uint64_t staging = in->staging_bytes ? in->staging_bytes : (uint64_t)policy_of(in)->staging_slots * out->slot_bytes;
        if (staging < out->slot_bytes) staging = out->slot_bytes;
        out->staging_bytes = staging;
        out->pinned_bytes += staging;
    }

    /* Lending: streamed per-step units with pinned images, in residency
     * order, into the workspace's idle tail. */
    if (in->lend_bytes > ZT_ALIGN_UP(in->workspace_bytes, PLAN_ALIGN)) {
        free(order);
        zt_plan_free(out);
        return zt_err_set(e, ZT_ERR_ARG, "plan: %s to lend is more than the workspace (%s)",
                          zt_fmt_bytes(in->lend_bytes, b1, sizeof b1), zt_fmt_bytes(in->workspace_bytes, b2, sizeof b2));
    }
    out->lent_offset = ZT_ALIGN_UP(out->workspace_bytes - in->lend_bytes, PLAN_ALIGN);
    if (!out->all_resident && out->n_slots) {
        const uint64_t room = out->workspace_bytes - out->lent_offset;
        const double t_streamed = sim_step(units, n_units, ch, out->n_slots, in->link_bw);
        uint64_t loff = 0, lent_raw = 0;
        for (int k = 0; k < n_order; k++) {
            int i = order[k];
            uint64_t b = ZT_ALIGN_UP(units[i].bytes, PLAN_ALIGN);
            if (ch[i].residency != ZT_RES_STREAMED || ch[i].tier != ZT_TIER_PINNED || unit_class(&units[i]) != 0) continue;
            if (loff + b > room) continue;
            ch[i].residency = ZT_RES_LENT;
            ch[i].device_offset = loff;
            loff += b;
            lent_raw += units[i].bytes;
            out->n_lent++;
        }
        /* Worth it only when the steps gain more than the once-per-image
         * copies cost (a step already bound by compute gains nothing). */
        const double gain = in->steps * (t_streamed - sim_step(units, n_units, ch, out->n_slots, in->link_bw));
        if (out->n_lent && gain <= (double)lent_raw / in->link_bw) {
            for (int i = 0; i < n_units; i++)
                if (ch[i].residency == ZT_RES_LENT) ch[i].residency = ZT_RES_STREAMED, ch[i].device_offset = 0;
            out->n_lent = 0;
            loff = 0;
        }
        out->lent_bytes = loff;
    }

    /* Predictions. */
    for (int i = 0; i < n_units; i++) {
        const zt_plan_unit *u = &units[i];
        int per_step = u->phase == ZT_PHASE_DIT && u->uses_per_image > 1;
        if (per_step) out->step_compute_s += u->compute_s;
        if (ch[i].residency == ZT_RES_LENT) out->image_bus_bytes += u->bytes; /* once per image */
        if (ch[i].residency != ZT_RES_STREAMED) continue;
        if (per_step) {
            out->step_bus_bytes += u->bytes;
            if (ch[i].tier == ZT_TIER_DISK) out->step_disk_bytes += u->bytes;
        }
        out->image_bus_bytes += u->bytes * (uint64_t)(u->uses_per_image > 0 ? u->uses_per_image : 1);
    }
    double t_link = (double)out->step_bus_bytes / in->link_bw;
    double t_disk = in->disk_bw > 0 ? (double)out->step_disk_bytes / in->disk_bw : 0;
    if (out->prefetch >= 1 || out->n_slots == 0) {
        double t = out->step_compute_s;
        if (out->n_slots) t = sim_step(units, n_units, ch, out->n_slots, in->link_bw); /* >= max(compute, link) */
        if (t_disk > t) t = t_disk;
        out->step_time_s = t;
    } else {
        out->step_time_s = out->step_compute_s + t_link + t_disk;
    }
    if (!out->all_resident) {
        int kept = 0;
        for (int k = 0; k < n_order; k++) kept += ch[order[k]].residency == ZT_RES_RESIDENT;
        if (out->n_lent)
            snprintf(out->note, sizeof out->note,
                     "%d of %d streamable units stay on the device, %d more while the steps run", kept, n_order,
                     out->n_lent);
        else
            snprintf(out->note, sizeof out->note, "%d of %d streamable units stay on the device", kept, n_order);
    }
    free(order);
    return ZT_OK;
}

/* ---- the policy ---- */

/* Predicted seconds per image of a plan, without the compute of the
 * once-per-image phases (the same for every plan). image_bus_bytes counts
 * the per-step units too; their copies are inside step_time_s. */
static double image_time(const zt_plan *pl, int steps, double link_bw) {
    const double once = (double)pl->image_bus_bytes - (double)steps * (double)pl->step_bus_bytes;
    return steps * pl->step_time_s + (once > 0 ? once : 0) / link_bw;
}

int zt_plan_choose(const zt_plan_unit *units_in, int n_units, const zt_plan_request *rq, const zt_plan_policy *pol,
                   zt_plan *out, zt_plan_input *in, int *vae_choice, zt_err *e) {
    zt_plan_policy def;
    if (!pol) {
        zt_plan_policy_default(&def);
        pol = &def;
    }
    memset(out, 0, sizeof *out);
    *vae_choice = ZT_PLAN_VAE_WHOLE;
    if (n_units <= 0 || !units_in) return zt_err_set(e, ZT_ERR_ARG, "plan: no units");
    if (rq->vae_decode != ZT_VAE_DECODE_AUTO && rq->vae_decode != ZT_VAE_DECODE_DEVICE &&
        rq->vae_decode != ZT_VAE_DECODE_BANDED)
        return zt_err_set(e, ZT_ERR_ARG, "plan: VAE decode mode %d is not auto, device or banded", (int)rq->vae_decode);
    zt_plan_unit *units = malloc(sizeof *units * (size_t)n_units);
    if (!units) return zt_err_set(e, ZT_ERR_NOMEM, "plan: out of host memory");
    memcpy(units, units_in, sizeof *units * (size_t)n_units);

    /* Compute estimates: the cost model's FLOPs over an assumed sustained
     * rate (a simulated device, context given, plans for a GPU). Only the
     * predictions and the prefetch/lending choices use them. */
    const int gpu = rq->gpu || rq->context_override;
    const double rate = gpu ? pol->gpu_flops : pol->cpu_flops;
    if (rq->flops_token > 0 || rq->flops_pair > 0) {
        const double S = (double)rq->image_tokens + (double)pol->caption_tokens;
        const double flops = S * rq->flops_token + S * S * rq->flops_pair;
        for (int i = 0; i < n_units; i++)
            if (units[i].phase == ZT_PHASE_DIT && units[i].uses_per_image > 1) units[i].compute_s = flops / rate;
    }

    memset(in, 0, sizeof *in);
    in->policy = pol;
    in->pinned_budget = rq->pinned_budget;
    in->have_store = rq->have_store;
    in->steps = rq->steps;
    in->window_override = rq->window_override;
    in->prefetch_override = rq->prefetch_override;
    in->link_bw = rq->link_bw > 0 ? rq->link_bw : rq->link_measured > 0 ? rq->link_measured : pol->link_bw;
    if (rq->throttle_bw > 0 && rq->throttle_bw < in->link_bw) in->link_bw = rq->throttle_bw;
    in->disk_bw = rq->disk_bw > 0 ? rq->disk_bw : pol->disk_bw;
    int rc;
    if (!rq->vram_budget) {
        /* no budget: every unit resident, the caller allocates activations per image;
         * the VAE decodes in bands only when asked to */
        in->vram_budget = UINT64_MAX;
        *vae_choice = rq->vae_decode == ZT_VAE_DECODE_BANDED ? ZT_PLAN_VAE_BANDED : ZT_PLAN_VAE_WHOLE;
        rc = zt_plan_make(units, n_units, in, out, e);
        free(units);
        return rc;
    }
    in->vram_budget = rq->vram_budget;
    in->context_bytes = rq->context_override  ? rq->context_override
                        : rq->context_measured ? rq->context_measured + pol->context_headroom
                                               : 0;

    /* The whole-image decode first (its idle tail lent to per-step units),
     * unless the banded one is forced. */
    zt_plan_input in_whole = *in;
    rc = ZT_ERR_NOMEM;
    if (rq->vae_decode != ZT_VAE_DECODE_BANDED) {
        in_whole.workspace_bytes = rq->vae[ZT_PLAN_VAE_WHOLE].workspace_bytes;
        in_whole.lend_bytes = rq->lend ? rq->vae[ZT_PLAN_VAE_WHOLE].lend_bytes : 0;
        rc = zt_plan_make(units, n_units, &in_whole, out, e);
    }
    *in = in_whole;
    if (rq->vae_decode != ZT_VAE_DECODE_DEVICE && (rc == ZT_ERR_NOMEM || (!rc && !out->all_resident))) {
        /* Whole-image decode too big, or a banded one may free room for
         * resident transformer blocks: plan with the banded decode and keep
         * the plan predicted faster per image (its extra host traffic at the
         * link rate against the transformer's saved bus time). */
        zt_plan alt;
        zt_err e2;
        zt_plan_input in_band = in_whole;
        in_band.workspace_bytes = rq->vae[ZT_PLAN_VAE_BANDED].workspace_bytes;
        in_band.lend_bytes = rq->lend ? rq->vae[ZT_PLAN_VAE_BANDED].lend_bytes : 0;
        const int rc2 = zt_plan_make(units, n_units, &in_band, &alt, &e2);
        int take = !rc2 && rc; /* the whole decode failed or was not asked for */
        if (!rc2 && !rc && !take) {
            /* per image: the steps (copies overlapped with compute) + the
             * once-per-image units over the link (+ the banded decode's traffic) */
            const double extra = rq->vae[ZT_PLAN_VAE_BANDED].host_traffic / in->link_bw;
            take = image_time(&alt, rq->steps, in->link_bw) + extra < image_time(out, rq->steps, in->link_bw);
        }
        if (take) {
            if (!rc) zt_plan_free(out);
            *out = alt;
            *in = in_band;
            *vae_choice = ZT_PLAN_VAE_BANDED;
            rc = ZT_OK;
        } else {
            if (!rc2) zt_plan_free(&alt);
            if (rc && e) *e = e2; /* neither fits: the banded minimum is the one to report */
        }
    }
    free(units);
    return rc;
}
