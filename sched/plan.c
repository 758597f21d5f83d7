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
    .decode_mem_fraction = 0.36,
    .decode_bw_gpu = 1.5e12,
    .decode_bw_cpu = 1e9,
    .coded_ratio = 0.68,
    .decode_contention = 1.5,
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

/* Coded weights: the unit has a coded form it may move (and stay) in. */
static int unit_coded(const zt_plan_unit *u, const zt_plan_input *in) { return in->decode_bw > 0 && u->coded_bytes > 0; }
/* Bytes a unit moves over the bus and keeps in host memory as chosen. */
static uint64_t bus_bytes_as(const zt_plan_unit *u, const zt_plan_unit_choice *c) {
    return c->coded ? u->coded_bytes : u->bytes;
}
/* Seconds the device spends decoding one use of it as chosen (0: not coded). */
static double decode_s_as(const zt_plan_unit *u, const zt_plan_unit_choice *c, const zt_plan_input *in) {
    return c->coded && in->decode_bw > 0 ? (double)u->bytes / in->decode_bw : 0;
}
static uint64_t piece_ring(const zt_plan_input *in) { return in->piece_bytes ? in->piece_bytes : ZT_PLAN_PIECE_DEFAULT; }
/* The device piece buffer when coded units up to max_coded bytes come from the host. */
static uint64_t cstage_for(uint64_t max_coded, const zt_plan_input *in) {
    if (!max_coded) return 0;
    return ZT_ALIGN_UP(ZT_PLAN_PIECE_HEADS * ZT_PLAN_PIECE_HEAD + ZT_MIN(max_coded, piece_ring(in)), PLAN_ALIGN);
}

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
    uint64_t maxc = 0, max_coded = 0;
    for (int i = 0; i < n_units; i++) {
        if (!is_candidate(&units[i])) continue;
        if (units[i].bytes > maxc) maxc = units[i].bytes;
        if (unit_coded(&units[i], in) && units[i].coded_bytes > max_coded) max_coded = units[i].coded_bytes;
    }
    uint64_t slot = ZT_ALIGN_UP(maxc, PLAN_ALIGN);
    return fixed_bytes(units, n_units, in) + (maxc ? (uint64_t)plan_slots(in) * slot + cstage_for(max_coded, in) : 0);
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

/* Greedy first fit of residents into `avail` bytes, in residency order: the
 * first `r` candidates decoded where they fit (else coded, if they have a
 * coded form), the rest coded where they fit (units without a coded form:
 * decoded). Returns the slot size this choice needs (the largest unit used
 * through a slot: streamed or coded-resident) and *cstage the piece buffer
 * (coded units streamed from the host). */
static uint64_t choose_residents(const zt_plan_unit *units, const int *order, int n_order, uint64_t avail, int r,
                                 int b16_from, const zt_plan_input *in, zt_plan_unit_choice *ch, uint64_t *cstage) {
    uint64_t used = 0, max_slot = 0, max_coded = 0;
    for (int k = 0; k < n_order; k++) {
        const int i = order[k];
        const int coded = unit_coded(&units[i], in);
        /* per-step candidates from b16_from on move as bf16 if streamed (the others cross once per
         * image, where fewer bytes always win); a resident one still loads from its coded form */
        const int as_bf16 = coded && k >= b16_from && unit_class(&units[i]) == 0;
        const uint64_t b = ZT_ALIGN_UP(units[i].bytes, PLAN_ALIGN);
        const uint64_t cb = coded ? ZT_ALIGN_UP(units[i].coded_bytes, PLAN_ALIGN) : 0;
        ch[i].coded = coded;
        if ((k < r || !coded || as_bf16) && used + b <= avail) {
            ch[i].residency = ZT_RES_RESIDENT;
            used += b;
        } else if (coded && !as_bf16 && used + cb <= avail) {
            ch[i].residency = ZT_RES_RESIDENT_CODED;
            used += cb;
            if (units[i].bytes > max_slot) max_slot = units[i].bytes;
        } else {
            ch[i].residency = ZT_RES_STREAMED;
            ch[i].coded = coded && !as_bf16;
            if (units[i].bytes > max_slot) max_slot = units[i].bytes;
            if (ch[i].coded && units[i].coded_bytes > max_coded) max_coded = units[i].coded_bytes;
        }
    }
    *cstage = cstage_for(max_coded, in);
    return max_slot;
}

/* Residents for a window of `slots` slots inside `avail` bytes: the slots
 * and the piece buffer start sized for the largest candidate, then shrink to
 * what the units actually streamed need, the freed bytes taking more
 * residents (three rounds settle it). Returns the slot size, 0 if the window
 * does not fit; *cstage_out the piece buffer. */
static uint64_t fit_window(const zt_plan_unit *units, const int *order, int n_order, uint64_t avail, int slots, int r,
                           int b16_from, const zt_plan_input *in, zt_plan_unit_choice *ch, uint64_t *cstage_out) {
    uint64_t slot = 0, max_coded = 0;
    for (int k = 0; k < n_order; k++) {
        const zt_plan_unit *u = &units[order[k]];
        if (u->bytes > slot) slot = u->bytes;
        if (unit_coded(u, in) && !(k >= b16_from && unit_class(u) == 0) && u->coded_bytes > max_coded)
            max_coded = u->coded_bytes;
    }
    slot = ZT_ALIGN_UP(slot, PLAN_ALIGN);
    uint64_t cst = cstage_for(max_coded, in), need_cst = 0;
    if (avail < (uint64_t)slots * slot + cst) return 0;
    for (int round = 0; round < 3; round++) {
        uint64_t need = ZT_ALIGN_UP(choose_residents(units, order, n_order, avail - (uint64_t)slots * slot - cst, r, b16_from, in, ch,
                                                     &need_cst),
                                    PLAN_ALIGN);
        if ((need == slot || need == 0) && need_cst == cst) break;
        if (need) slot = need; /* every unit through a slot fits: need is the largest of them */
        cst = need_cst;
    }
    /* the final choice with the final sizes (never larger than the first) */
    uint64_t need = choose_residents(units, order, n_order, avail - (uint64_t)slots * slot - cst, r, b16_from, in, ch, &need_cst);
    if (ZT_ALIGN_UP(need, PLAN_ALIGN) > slot || need_cst > cst) { /* cannot happen, but never exceed the budget */
        slot = ZT_MAX(slot, ZT_ALIGN_UP(need, PLAN_ALIGN));
        cst = ZT_MAX(cst, need_cst);
        if (avail < (uint64_t)slots * slot + cst) return 0;
        choose_residents(units, order, n_order, avail - (uint64_t)slots * slot - cst, r, b16_from, in, ch, &need_cst);
    }
    *cstage_out = cst;
    return slot ? slot : PLAN_ALIGN;
}

/* Seconds of one DiT evaluation in steady state with `slots` window slots,
 * simulated the way stream/ executes it: one copy stream (copies in use
 * order, each at bytes / link_bw), the copy of streamed use g waits for the
 * compute of use g - slots (the slot's previous tenant) to finish, and a unit
 * computes after the one before it and after its copy (and the decode of its
 * last piece) landed; a decode also slows the compute beside it. Three steps
 * are run so the prefetch that wraps across steps is in the last one. The
 * result lies between max(compute, link) and compute + link. */
static double sim_step(const zt_plan_unit *units, int n, const zt_plan_unit_choice *ch, int slots,
                       const zt_plan_input *in) {
    double done[17] = {0}; /* compute end of the last `slots` slot uses, ring */
    double t_comp = 0, t_link = 0, start = 0;
    long g = 0;
    if (slots < 1) slots = 1;
    if (slots > 16) slots = 16;
    for (int step = 0; step < 3; step++) {
        start = t_comp;
        for (int i = 0; i < n; i++) {
            const zt_plan_unit *u = &units[i];
            if (!(u->phase == ZT_PHASE_DIT && u->uses_per_image > 1)) continue;
            const int via_slot = ch[i].residency == ZT_RES_STREAMED || ch[i].residency == ZT_RES_RESIDENT_CODED;
            double c0 = t_comp;
            const double dec = via_slot ? decode_s_as(u, &ch[i], in) : 0;
            if (via_slot) {
                double free_at = g >= slots ? done[g % slots] : 0;
                double s0 = t_link > free_at ? t_link : free_at;
                double ready;
                if (ch[i].residency == ZT_RES_STREAMED) { /* the copies; the decodes follow piece by piece */
                    const uint64_t bb = bus_bytes_as(u, &ch[i]);
                    t_link = s0 + (double)bb / in->link_bw;
                    ready = t_link + (bb ? dec * (double)ZT_MIN(bb, piece_ring(in)) / (double)bb : 0);
                } else { /* coded-resident: decoded from the arena, on the copy stream */
                    t_link = s0 + dec;
                    ready = t_link;
                }
                if (ready > c0) c0 = ready;
            }
            t_comp = c0 + u->compute_s + policy_of(in)->decode_contention * dec;
            if (via_slot) done[g++ % slots] = t_comp;
        }
    }
    return t_comp - start;
}

/* Host bytes of the streamed units as chosen (what pinned memory must hold
 * for them to stay off the disk). */
static uint64_t streamed_host_bytes(const zt_plan_unit *units, int n, const zt_plan_unit_choice *ch) {
    uint64_t b = 0;
    for (int i = 0; i < n; i++)
        if (ch[i].residency == ZT_RES_STREAMED) b += bus_bytes_as(&units[i], &ch[i]);
    return b;
}

/* Lending: streamed per-step units with pinned images, in residency order,
 * into the workspace's idle tail [out->lent_offset, workspace), kept only
 * when the steps gain more than the once-per-image copies cost (a step
 * already bound by compute gains nothing). */
static void plan_lend(const zt_plan_unit *units, int n_units, const int *order, int n_order, const zt_plan_input *in,
                      zt_plan *out) {
    zt_plan_unit_choice *ch = out->units;
    const uint64_t room = out->workspace_bytes - out->lent_offset;
    const double t_streamed = sim_step(units, n_units, ch, out->n_slots, in);
    uint64_t loff = 0;
    double lent_cost = 0; /* once per image: their copies (and decodes) */
    for (int k = 0; k < n_order; k++) {
        int i = order[k];
        uint64_t b = ZT_ALIGN_UP(units[i].bytes, PLAN_ALIGN);
        if (ch[i].residency != ZT_RES_STREAMED || ch[i].tier != ZT_TIER_PINNED || unit_class(&units[i]) != 0) continue;
        if (loff + b > room) continue;
        ch[i].residency = ZT_RES_LENT;
        ch[i].device_offset = loff;
        loff += b;
        lent_cost += (double)bus_bytes_as(&units[i], &ch[i]) / in->link_bw + decode_s_as(&units[i], &ch[i], in);
        out->n_lent++;
    }
    const double gain = in->steps * (t_streamed - sim_step(units, n_units, ch, out->n_slots, in));
    if (out->n_lent && gain <= lent_cost) {
        for (int i = 0; i < n_units; i++)
            if (ch[i].residency == ZT_RES_LENT) ch[i].residency = ZT_RES_STREAMED, ch[i].device_offset = 0;
        out->n_lent = 0;
        loff = 0;
    }
    out->lent_bytes = loff;
}

/* The predictions of a finished plan: bus and disk bytes, step and image times, the note. */
static void plan_predict(const zt_plan_unit *units, int n_units, const int *order, int n_order, const zt_plan_input *in,
                         zt_plan *out) {
    const zt_plan_unit_choice *ch = out->units;
    for (int i = 0; i < n_units; i++) {
        const zt_plan_unit *u = &units[i];
        int per_step = u->phase == ZT_PHASE_DIT && u->uses_per_image > 1;
        if (per_step) out->step_compute_s += u->compute_s;
        const uint64_t bb = bus_bytes_as(u, &ch[i]);
        if (ch[i].residency == ZT_RES_LENT) out->image_bus_bytes += bb; /* once per image */
        if (per_step && ch[i].coded && (ch[i].residency == ZT_RES_STREAMED || ch[i].residency == ZT_RES_RESIDENT_CODED))
            out->step_decode_bytes += u->bytes;
        if (ch[i].residency != ZT_RES_STREAMED) continue;
        if (per_step) {
            out->step_bus_bytes += bb;
            if (ch[i].tier == ZT_TIER_DISK) out->step_disk_bytes += bb;
        }
        out->image_bus_bytes += bb * (uint64_t)(u->uses_per_image > 0 ? u->uses_per_image : 1);
    }
    double t_link = (double)out->step_bus_bytes / in->link_bw +
                    (in->decode_bw > 0 ? (double)out->step_decode_bytes / in->decode_bw : 0);
    double t_disk = in->disk_bw > 0 ? (double)out->step_disk_bytes / in->disk_bw : 0;
    if (out->prefetch >= 1 || out->n_slots == 0) {
        double t = out->step_compute_s;
        if (out->n_slots) t = sim_step(units, n_units, ch, out->n_slots, in); /* >= max(compute, link) */
        if (t_disk > t) t = t_disk;
        out->step_time_s = t;
    } else {
        out->step_time_s = out->step_compute_s + t_link + t_disk;
    }
    if (!out->all_resident) {
        int kept = 0;
        for (int k = 0; k < n_order; k++)
            kept += ch[order[k]].residency == ZT_RES_RESIDENT || ch[order[k]].residency == ZT_RES_RESIDENT_CODED;
        char coded[48] = "";
        if (out->n_coded_resident) snprintf(coded, sizeof coded, " (%d of them coded)", out->n_coded_resident);
        if (out->n_lent)
            snprintf(out->note, sizeof out->note,
                     "%d of %d streamable units stay on the device%s, %d more while the steps run", kept, n_order, coded,
                     out->n_lent);
        else
            snprintf(out->note, sizeof out->note, "%d of %d streamable units stay on the device%s", kept, n_order, coded);
    }
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
        uint64_t max_coded = 0;
        for (int k = 0; k < n_order; k++) {
            ch[order[k]].residency = ZT_RES_RESIDENT;
            ch[order[k]].coded = unit_coded(&units[order[k]], in); /* loaded from its coded image, decoded on the device */
            if (ch[order[k]].coded) max_coded = ZT_MAX(max_coded, units[order[k]].coded_bytes);
        }
        /* no budget (and so no workspace to decode through at load): a piece buffer */
        if (in->vram_budget == UINT64_MAX) out->cstage_bytes = cstage_for(max_coded, in);
        out->all_resident = 1;
    } else {
        uint64_t min = zt_plan_min_budget(units, n_units, in);
        if (in->vram_budget < min) {
            free(order);
            zt_plan_free(out);
            uint64_t max_coded = 0;
            for (int i = 0; i < n_units; i++)
                if (is_candidate(&units[i]) && unit_coded(&units[i], in)) max_coded = ZT_MAX(max_coded, units[i].coded_bytes);
            char b5[32], piece[96] = "";
            if (max_coded)
                snprintf(piece, sizeof piece, " + coded-weight piece buffer %s",
                         zt_fmt_bytes(cstage_for(max_coded, in), b5, sizeof b5));
            return zt_err_set(e, ZT_ERR_NOMEM,
                              "plan: --vram %s is too small: context %s + workspace %s + window of %d slots%s needs at least %s",
                              zt_fmt_bytes(in->vram_budget, b1, sizeof b1), zt_fmt_bytes(in->context_bytes, b2, sizeof b2),
                              zt_fmt_bytes(in->workspace_bytes, b3, sizeof b3), plan_slots(in), piece,
                              zt_fmt_bytes(min, b4, sizeof b4));
        }
        /* Depths: the default (or the override), then deeper ones when the
         * simulated step is more than 1% faster (a deeper prefetch costs a
         * resident block per extra slot but lets a copy start earlier). Per
         * depth, the split r between decoded and coded residents: from all
         * decoded down, a smaller r only when more than 0.1% faster. */
        const int auto_depth = in->prefetch_override < 0 && in->window_override == 0;
        const zt_plan_policy *pol = policy_of(in);
        int n_coded = 0, n_coded_step = 0, n_step = 0; /* per-step candidates come first in the order */
        for (int k = 0; k < n_order; k++) {
            n_step += unit_class(&units[order[k]]) == 0;
            n_coded += unit_coded(&units[order[k]], in);
            n_coded_step += unit_coded(&units[order[k]], in) && unit_class(&units[order[k]]) == 0;
        }
        zt_plan_unit_choice *alt = malloc(sizeof *alt * (size_t)n_units), *cur = malloc(sizeof *cur * (size_t)n_units);
        if (!alt || !cur) {
            free(alt);
            free(cur);
            free(order);
            zt_plan_free(out);
            return zt_err_set(e, ZT_ERR_NOMEM, "plan: out of host memory");
        }
        double best = 0;
        int slots = 0, pf = 0, have = 0;
        uint64_t slot = 0, cst = 0;
        for (int d = plan_prefetch(in); d <= (auto_depth ? pol->prefetch_max : plan_prefetch(in)); d++) {
            const int sl = auto_depth ? d + 1 : plan_slots(in);
            double best_d = 0;
            int have_d = 0;
            uint64_t slot_d = 0, cst_d = 0;
            for (int r = n_order; r >= 0; r--) {
                if (r < n_order && !n_coded) break; /* no coded units: r changes nothing */
                for (int b16 = 0; b16 <= (in->bf16_transport ? n_step : 0); b16++) {
                memcpy(cur, ch, sizeof *cur * (size_t)n_units);
                uint64_t c2 = 0, s2 = fit_window(units, order, n_order, in->vram_budget - fixed, sl, r, n_step - b16, in, cur, &c2);
                if (!s2) continue; /* does not fit */
                if (b16 && streamed_host_bytes(units, n_units, cur) > in->pinned_budget) break; /* bf16 images must be pinned */
                const double t = sim_step(units, n_units, cur, sl, in);
                if (!have_d || t < best_d * (1 - 1e-3)) {
                    have_d = 1;
                    best_d = t;
                    slot_d = s2;
                    cst_d = c2;
                    memcpy(alt, cur, sizeof *alt * (size_t)n_units);
                }
                }
            }
            if (!have_d) continue;
            if (!have || best_d < best * pol->deeper_factor) {
                have = 1;
                best = best_d;
                slots = sl;
                pf = d;
                slot = slot_d;
                cst = cst_d;
                memcpy(ch, alt, sizeof *ch * (size_t)n_units);
            }
        }
        free(alt);
        free(cur);
        if (!have) { /* cannot happen above the minimum */
            free(order);
            zt_plan_free(out);
            return zt_err_set(e, ZT_ERR_INTERNAL, "plan: no window fits --vram %s", zt_fmt_bytes(in->vram_budget, b1, sizeof b1));
        }
        int via_slot = 0;
        for (int k = 0; k < n_order; k++)
            via_slot |= ch[order[k]].residency == ZT_RES_STREAMED || ch[order[k]].residency == ZT_RES_RESIDENT_CODED;
        if (via_slot) {
            out->n_slots = slots;
            out->slot_bytes = slot;
            out->prefetch = pf;
            out->cstage_bytes = cst;
        } else {
            out->all_resident = 1;
        }
    }

    /* Resident arena offsets, in unit order. */
    uint64_t off = 0;
    for (int i = 0; i < n_units; i++) {
        if (ch[i].residency != ZT_RES_RESIDENT && ch[i].residency != ZT_RES_RESIDENT_CODED) continue;
        ch[i].device_offset = off;
        off += ZT_ALIGN_UP(ch[i].residency == ZT_RES_RESIDENT_CODED ? units[i].coded_bytes : units[i].bytes, PLAN_ALIGN);
        out->n_coded_resident += ch[i].residency == ZT_RES_RESIDENT_CODED;
    }
    out->resident_bytes = off;
    out->window_bytes = (uint64_t)out->n_slots * out->slot_bytes;
    out->workspace_bytes = ZT_ALIGN_UP(in->workspace_bytes, PLAN_ALIGN);
    out->device_total =
        in->context_bytes + out->resident_bytes + out->window_bytes + out->cstage_bytes + out->workspace_bytes;

    /* Host tiers for streamed units, per-step units first. */
    uint64_t pinned_left = in->pinned_budget, max_disk = 0;
    int any_disk = 0;
    for (int k = 0; k < n_order; k++) {
        int i = order[k];
        if (ch[i].residency != ZT_RES_STREAMED) continue;
        const uint64_t hb = bus_bytes_as(&units[i], &ch[i]);
        if (hb <= pinned_left) {
            ch[i].tier = ZT_TIER_PINNED;
            pinned_left -= hb;
            out->pinned_bytes += hb;
        } else {
            ch[i].tier = ZT_TIER_DISK;
            any_disk = 1;
            if (hb > max_disk) max_disk = hb;
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
        const uint64_t stage = ZT_ALIGN_UP(max_disk, 4096); /* a disk unit's bytes as read (coded where coded) */
        uint64_t staging = in->staging_bytes ? in->staging_bytes : (uint64_t)policy_of(in)->staging_slots * stage;
        if (staging < stage) staging = stage;
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
    if (!out->all_resident && out->n_slots) plan_lend(units, n_units, order, n_order, in, out);
    plan_predict(units, n_units, order, n_order, in, out);
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
    in->piece_bytes = rq->piece_bytes;
    in->bf16_transport = rq->coded && rq->bf16_transport;
    if (rq->coded)
        in->decode_bw = rq->decode_bw > 0 ? rq->decode_bw
                        : !gpu           ? pol->decode_bw_cpu
                        : rq->mem_bw > 0 ? pol->decode_mem_fraction * rq->mem_bw
                                         : pol->decode_bw_gpu;
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
