/* tests/test_plan.c — the residency planner on the real Z-Image-Turbo unit
 * sizes (spec §2: DiT block images without adaLN 353,925,632 B, Qwen3 layers
 * 201,861,632 B, VAE decoder 99,090,950 B...). Checks the invariants the
 * streaming engine relies on: the device total never exceeds the budget,
 * per-step units win residency, the minimum budget is exact, host tiers
 * respect --pinned, and predictions behave (prefetch overlaps, more budget
 * never means more bus traffic), and the policy on top (zt_plan_choose:
 * compute and context estimates, link rate, whole vs banded VAE decode,
 * lending) against plans made directly for each alternative. */
#include <stdio.h>
#include <string.h>

#include "sched/plan.h"
#include "tests/zt_test.h"

#define MAX_UNITS 128
static zt_plan_unit g_units[MAX_UNITS];
static char g_names[MAX_UNITS][48];
static int g_n;

static void add(const char *name, zt_phase ph, uint64_t bytes, int uses, int always, int host, double compute) {
    snprintf(g_names[g_n], sizeof g_names[g_n], "%s", name);
    g_units[g_n] = (zt_plan_unit){g_names[g_n], ph, bytes, uses, always, host, compute, 0};
    g_n++;
}

static void build_zimage(int steps) {
    char nm[48];
    g_n = 0;
    const uint64_t block = 353925632ull, te_layer = 201861632ull;
    add("te.embed", ZT_PHASE_TEXT, 777912320ull, 1, 0, 1, 0);
    for (int i = 0; i < 35; i++) {
        snprintf(nm, sizeof nm, "te.layers.%d", i);
        add(nm, ZT_PHASE_TEXT, te_layer, 1, 0, 0, 0.0012);
    }
    add("dit.globals", ZT_PHASE_DIT, 23704704ull, 1, 1, 0, 0);
    add("dit.adaln", ZT_PHASE_DIT, 252641280ull, 1, 0, 0, 0);
    for (int i = 0; i < 2; i++) {
        snprintf(nm, sizeof nm, "dit.context_refiner.%d", i);
        add(nm, ZT_PHASE_DIT, block, 1, 0, 0, 0.0001);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(nm, sizeof nm, "dit.noise_refiner.%d", i);
        add(nm, ZT_PHASE_DIT, block, steps, 0, 0, 0.0028);
    }
    for (int i = 0; i < 30; i++) {
        snprintf(nm, sizeof nm, "dit.layers.%d", i);
        add(nm, ZT_PHASE_DIT, block, steps, 0, 0, 0.0029);
    }
    add("vae.decoder", ZT_PHASE_VAE, 99090950ull, 1, 0, 0, 0.09);
}

static zt_plan_input base_input(uint64_t vram) {
    zt_plan_input in;
    memset(&in, 0, sizeof in);
    in.vram_budget = vram;
    in.context_bytes = 500ull * ZT_MiB;
    in.workspace_bytes = 900ull * ZT_MiB;
    in.pinned_budget = UINT64_MAX;
    in.have_store = 0;
    in.link_bw = 50e9;
    in.disk_bw = 2e9;
    in.steps = 8;
    in.prefetch_override = -1;
    return in;
}

static int per_step(const zt_plan_unit *u) { return u->phase == ZT_PHASE_DIT && u->uses_per_image > 1; }

static void check_invariants(const zt_plan *p, const zt_plan_input *in, const char *what) {
    ZT_CHECK(p->device_total <= in->vram_budget, "%s: device total %llu > budget %llu", what,
             (unsigned long long)p->device_total, (unsigned long long)in->vram_budget);
    ZT_CHECK(p->n_units == g_n, "%s: unit count", what);
    int streamed_per_step = 0;
    uint64_t resident = 0, resident_once = 0, block = 0;
    for (int i = 0; i < g_n; i++) {
        const zt_plan_unit_choice *c = &p->units[i];
        if (g_units[i].host_only) ZT_CHECK(c->residency == ZT_RES_HOST, "%s: %s must stay on host", what, g_units[i].name);
        if (g_units[i].always_resident) ZT_CHECK(c->residency == ZT_RES_RESIDENT, "%s: %s must be resident", what, g_units[i].name);
        if (c->residency == ZT_RES_STREAMED) {
            ZT_CHECK(g_units[i].bytes <= p->slot_bytes, "%s: %s does not fit a slot", what, g_units[i].name);
            ZT_CHECK(c->tier == ZT_TIER_PINNED || c->tier == ZT_TIER_DISK, "%s: %s has no host tier", what, g_units[i].name);
            if (per_step(&g_units[i])) {
                streamed_per_step = 1;
                block = g_units[i].bytes;
            }
        }
        if (c->residency == ZT_RES_RESIDENT) {
            ZT_CHECK(c->device_offset % 256 == 0, "%s: offset alignment", what);
            ZT_CHECK(c->device_offset + g_units[i].bytes <= p->resident_bytes, "%s: %s outside the arena", what,
                     g_units[i].name);
            resident += g_units[i].bytes;
            if (!per_step(&g_units[i]) && !g_units[i].always_resident) resident_once += ZT_ALIGN_UP(g_units[i].bytes, 256);
        }
    }
    ZT_CHECK(resident <= p->resident_bytes, "%s: resident sum", what);
    /* A per-image unit may be resident while a per-step unit streams only
     * when that per-step unit could not have fit in the per-image units'
     * place plus the unused budget (first fit fills leftovers). */
    uint64_t unused = in->vram_budget - p->device_total;
    ZT_CHECK(!streamed_per_step || resident_once + unused < block,
             "%s: per-image units (%llu B) took residency from a per-step unit", what, (unsigned long long)resident_once);
    if (p->n_slots) ZT_CHECK(p->n_slots >= p->prefetch + 1, "%s: slots %d < prefetch %d + 1", what, p->n_slots, p->prefetch);
}

/* Coded weights: every device unit of the model has a coded form of 0.68 of
 * its bytes. Against the bf16 plan at the same budget: the invariants hold
 * (coded-resident units counted at their coded size in the arena, the piece
 * buffer in the device total), the minimum grows by exactly the piece buffer,
 * with bf16 transport allowed no budget predicts a slower step nor more bus
 * bytes (only per-step units move as bf16), without it the decode's share of
 * the SMs makes budgets bound by compute slower, a budget that holds the
 * coded DiT but not the bf16 one moves nothing per step, and a slow decoder
 * makes the plan keep units decoded. */
static void test_coded(zt_err *e) {
    zt_plan p, q;
    build_zimage(8);
    for (int i = 0; i < g_n; i++)
        if (!g_units[i].host_only) g_units[i].coded_bytes = (uint64_t)((double)g_units[i].bytes * 0.68);
    zt_plan_input in = base_input(0), bf = base_input(0);
    in.decode_bw = 1.5e12;
    in.bf16_transport = 1;
    const uint64_t min_bf = zt_plan_min_budget(g_units, g_n, &bf), min_c = zt_plan_min_budget(g_units, g_n, &in);
    ZT_CHECK(min_c == min_bf + ZT_ALIGN_UP(ZT_PLAN_PIECE_HEADS * ZT_PLAN_PIECE_HEAD + ZT_PLAN_PIECE_DEFAULT, 256),
             "coded minimum %llu = bf16 minimum %llu + the piece buffer", (unsigned long long)min_c,
             (unsigned long long)min_bf);
    in.vram_budget = min_c - 1;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, e) == ZT_ERR_NOMEM, "coded: below the minimum fails");
    int slower = 0, more_bus = 0, bad = 0, saw_coded_resident = 0, saw_bf16_streamed = 0, saw_coded_streamed = 0;
    for (uint64_t v = min_c; v <= 24ull * ZT_GiB; v += 256ull * ZT_MiB) {
        in.vram_budget = bf.vram_budget = v;
        if (zt_plan_make(g_units, g_n, &in, &p, e)) {
            ZT_CHECK(0, "coded %llu MiB: %s", (unsigned long long)(v >> 20), e->msg);
            break;
        }
        char what[64];
        snprintf(what, sizeof what, "coded %llu MiB", (unsigned long long)(v >> 20));
        check_invariants(&p, &in, what);
        uint64_t arena = 0, max_coded_streamed = 0;
        for (int i = 0; i < g_n; i++) {
            const zt_plan_unit_choice *c = &p.units[i];
            if (c->residency == ZT_RES_RESIDENT_CODED) {
                saw_coded_resident = 1;
                arena += ZT_ALIGN_UP(g_units[i].coded_bytes, 256);
                bad += !c->coded || c->device_offset + g_units[i].coded_bytes > p.resident_bytes ||
                       g_units[i].bytes > p.slot_bytes;
            } else if (c->residency == ZT_RES_RESIDENT) {
                arena += ZT_ALIGN_UP(g_units[i].bytes, 256);
            }
            if (c->residency == ZT_RES_STREAMED && !g_units[i].host_only) {
                bad += !c->coded && !per_step(&g_units[i]); /* only per-step units may move as bf16 */
                saw_bf16_streamed |= !c->coded;
                saw_coded_streamed |= c->coded && per_step(&g_units[i]);
                if (c->coded && g_units[i].coded_bytes > max_coded_streamed) max_coded_streamed = g_units[i].coded_bytes;
            }
        }
        ZT_CHECK(arena == p.resident_bytes, "%s: arena %llu, sum of residents %llu", what, (unsigned long long)p.resident_bytes,
                 (unsigned long long)arena);
        ZT_CHECK((p.cstage_bytes > 0) == (max_coded_streamed > 0), "%s: piece buffer %llu for coded units streamed up to %llu",
                 what, (unsigned long long)p.cstage_bytes, (unsigned long long)max_coded_streamed);
        if (v >= min_bf && zt_plan_make(g_units, g_n, &bf, &q, e) == ZT_OK) {
            if (p.step_time_s > q.step_time_s * 1.001) {
                slower++;
                fprintf(stderr, "%s: coded %.4f s > bf16 %.4f s\n", what, p.step_time_s, q.step_time_s);
            }
            /* more bytes only where the step is bound by compute (the piece buffer for the text
             * encoder's coded layers took a resident block that the link carries as bf16 for free) */
            if (p.step_bus_bytes > q.step_bus_bytes && p.step_time_s > p.step_compute_s * 1.001) {
                more_bus++;
                fprintf(stderr, "%s: coded %llu B per step > bf16 %llu B (%.4f s vs %.4f s)\n", what,
                        (unsigned long long)p.step_bus_bytes, (unsigned long long)q.step_bus_bytes, p.step_time_s,
                        q.step_time_s);
            }
            if (v == 8ull * ZT_GiB)
                printf("8G: bf16 %.4f s/step, %llu MB over the bus; coded %.4f s/step, %llu MB, %d units resident coded\n",
                       q.step_time_s, (unsigned long long)(q.step_bus_bytes / 1000000), p.step_time_s,
                       (unsigned long long)(p.step_bus_bytes / 1000000), p.n_coded_resident);
            zt_plan_free(&q);
        }
        zt_plan_free(&p);
    }
    ZT_CHECK(!slower && !more_bus && !bad, "coded plans: %d slower, %d with more bus bytes, %d bad choices", slower,
             more_bus, bad);
    ZT_CHECK(saw_coded_resident, "some budget keeps units resident coded");
    ZT_CHECK(saw_bf16_streamed && saw_coded_streamed, "some budgets stream per-step units as bf16 (%d), some coded (%d)",
             saw_bf16_streamed, saw_coded_streamed);
    /* without bf16 transport, a budget bound by compute is slower coded (the decode shares the SMs),
     * one bound by the link faster; with it, the first moves its streamed blocks as bf16 unless the
     * pinned budget cannot hold their bf16 images */
    in.bf16_transport = 0;
    in.vram_budget = bf.vram_budget = 12ull * ZT_GiB;
    int rc = zt_plan_make(g_units, g_n, &in, &p, e) || zt_plan_make(g_units, g_n, &bf, &q, e);
    ZT_CHECK(rc == ZT_OK, "12G");
    if (rc) return;
    ZT_CHECK(p.step_time_s > q.step_time_s * 1.001, "12G, coded only: %.4f s, bf16 %.4f s", p.step_time_s, q.step_time_s);
    zt_plan_free(&p);
    in.bf16_transport = 1;
    rc = zt_plan_make(g_units, g_n, &in, &p, e);
    ZT_CHECK(rc == ZT_OK, "12G with bf16 transport");
    int b16 = 0, c16 = 0;
    for (int i = 0; !rc && i < g_n; i++) {
        b16 += p.units[i].residency == ZT_RES_STREAMED && !p.units[i].coded && per_step(&g_units[i]);
        c16 += p.units[i].residency == ZT_RES_STREAMED && per_step(&g_units[i]);
    }
    ZT_CHECK(b16 > 0 && p.step_time_s <= q.step_time_s * 1.001, "12G: %d of %d streamed blocks as bf16, %.4f s vs bf16 %.4f s",
             b16, c16, p.step_time_s, q.step_time_s);
    const uint64_t pinned_bf16 = p.pinned_bytes;
    zt_plan_free(&p);
    in.pinned_budget = pinned_bf16 - 1; /* one byte short of the bf16 images: they stay coded */
    rc = zt_plan_make(g_units, g_n, &in, &p, e);
    ZT_CHECK(rc == ZT_OK && p.pinned_bytes <= in.pinned_budget, "12G, pinned %llu: %s", (unsigned long long)in.pinned_budget,
             rc ? e->msg : "more pinned");
    b16 = 0;
    for (int i = 0; !rc && i < g_n; i++) b16 += p.units[i].residency == ZT_RES_STREAMED && !p.units[i].coded;
    ZT_CHECK(!rc && b16 < c16, "12G, pinned short: %d blocks as bf16", b16);
    zt_plan_free(&p);
    zt_plan_free(&q);
    in.pinned_budget = bf.pinned_budget;
    in.vram_budget = bf.vram_budget = min_c; /* bound by the link: everything streamed moves coded */
    rc = zt_plan_make(g_units, g_n, &in, &p, e);
    ZT_CHECK(rc == ZT_OK, "minimum with bf16 transport");
    b16 = 0;
    for (int i = 0; !rc && i < g_n; i++) b16 += p.units[i].residency == ZT_RES_STREAMED && !p.units[i].coded;
    ZT_CHECK(b16 == 0, "minimum: %d streamed blocks as bf16", b16);
    zt_plan_free(&p);
    /* 10 GiB holds the coded DiT (~8.4 GB) but not the bf16 one (~12.3 GB);
     * on a 3 GB/s link (an eGPU) the coded plan keeps all of it */
    in.vram_budget = bf.vram_budget = 10ull * ZT_GiB;
    in.link_bw = bf.link_bw = 3e9;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, e) == ZT_OK && zt_plan_make(g_units, g_n, &bf, &q, e) == ZT_OK, "10G");
    ZT_CHECK(p.step_bus_bytes == 0 && q.step_bus_bytes > 0 && p.step_decode_bytes > 0,
             "10G: coded moves %llu B per step (bf16 %llu B), decodes %llu B", (unsigned long long)p.step_bus_bytes,
             (unsigned long long)q.step_bus_bytes, (unsigned long long)p.step_decode_bytes);
    zt_plan_free(&p);
    zt_plan_free(&q);
    /* on that link, a decoder as slow as a disk keeps units decoded where they fit */
    in.vram_budget = 8ull * ZT_GiB;
    in.decode_bw = 2e9;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, e) == ZT_OK, "8G slow decode");
    in.decode_bw = 1.5e12;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &q, e) == ZT_OK, "8G");
    int dec_p = 0, dec_q = 0;
    for (int i = 0; i < g_n; i++) {
        dec_p += p.units[i].residency == ZT_RES_RESIDENT && per_step(&g_units[i]);
        dec_q += q.units[i].residency == ZT_RES_RESIDENT && per_step(&g_units[i]);
    }
    ZT_CHECK(dec_p > dec_q && p.n_coded_resident < q.n_coded_resident,
             "slow decode keeps more units decoded (%d vs %d per-step decoded, %d vs %d coded)", dec_p, dec_q,
             p.n_coded_resident, q.n_coded_resident);
    zt_plan_free(&p);
    zt_plan_free(&q);
    build_zimage(8);
}

/* A request for the Z-Image units at `vram`: a whole-image VAE decode with a
 * 1570 MiB workspace whose last 1100 MiB are idle during the steps, and a
 * banded one with 900 MiB and no idle tail, host traffic `band_traffic`. */
static zt_plan_request base_request(uint64_t vram, double band_traffic) {
    zt_plan_request rq;
    memset(&rq, 0, sizeof rq);
    rq.vram_budget = vram;
    rq.pinned_budget = UINT64_MAX;
    rq.steps = 8;
    rq.prefetch_override = -1;
    rq.gpu = 1;
    rq.context_override = 500ull * ZT_MiB;
    rq.link_bw = 50e9;
    rq.lend = 1;
    rq.vae[ZT_PLAN_VAE_WHOLE] = (zt_plan_vae){1570ull * ZT_MiB, 1100ull * ZT_MiB, 0, 0};
    rq.vae[ZT_PLAN_VAE_BANDED] = (zt_plan_vae){900ull * ZT_MiB, 0, 600ull * ZT_MiB, band_traffic};
    return rq;
}

/* Seconds per image the way the policy compares plans: the steps plus the
 * once-per-image copies over the link (+ the banded decode's traffic). */
static double image_seconds(const zt_plan *p, int steps, double link, double traffic) {
    double once = (double)p->image_bus_bytes - (double)steps * (double)p->step_bus_bytes;
    return steps * p->step_time_s + (once > 0 ? once : 0) / link + traffic / link;
}

/* The plan zt_plan_make gives for one VAE alternative of a request (the oracle). */
static int plan_alternative(const zt_plan_request *rq, int vae, zt_plan *p, zt_err *e) {
    zt_plan_input in;
    memset(&in, 0, sizeof in);
    in.vram_budget = rq->vram_budget;
    in.context_bytes = rq->context_override;
    in.workspace_bytes = rq->vae[vae].workspace_bytes;
    in.lend_bytes = rq->lend ? rq->vae[vae].lend_bytes : 0;
    in.pinned_budget = rq->pinned_budget;
    in.link_bw = rq->link_bw;
    in.disk_bw = 2e9;
    in.steps = rq->steps;
    in.prefetch_override = -1;
    return zt_plan_make(g_units, g_n, &in, p, e);
}

static void test_choose(void) {
    zt_err e;
    zt_plan p;
    zt_plan_input in;
    int vae = -1;
    zt_plan_policy pol;
    zt_plan_policy_default(&pol);

    /* Compute: per use of a per-step unit (S tokens: image + the assumed
     * caption) S * flops_token + S^2 * flops_pair over the GPU rate; the CPU
     * rate without a GPU or a simulated one. */
    zt_plan_request rq = base_request(8ull * ZT_GiB, 0);
    rq.flops_token = 1e8;
    rq.flops_pair = 1e4;
    rq.image_tokens = 4096;
    const double S = 4096.0 + pol.caption_tokens, per_use = S * 1e8 + S * S * 1e4;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK, "compute: %s", e.msg);
    ZT_CHECK(fabs(p.step_compute_s - 32 * per_use / pol.gpu_flops) < 1e-9 * p.step_compute_s,
             "compute: step %g s, want 32 x %g FLOPs at the GPU rate", p.step_compute_s, per_use);
    zt_plan_free(&p);
    rq.gpu = 0;
    rq.context_override = 0;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK, "compute cpu: %s", e.msg);
    ZT_CHECK(fabs(p.step_compute_s - 32 * per_use / pol.cpu_flops) < 1e-9 * p.step_compute_s,
             "compute cpu: step %g s, want the CPU rate", p.step_compute_s);
    zt_plan_free(&p);
    rq.context_override = 500ull * ZT_MiB; /* a simulated GPU (CPU backend, context given) */
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK, "compute simulated: %s", e.msg);
    ZT_CHECK(fabs(p.step_compute_s - 32 * per_use / pol.gpu_flops) < 1e-9 * p.step_compute_s,
             "compute on a simulated GPU: step %g s, want the GPU rate", p.step_compute_s);
    zt_plan_free(&p);

    /* Context: measured + the headroom, an override instead, 0 without a GPU;
     * link: given, else measured, else the policy's, capped by a throttle. */
    rq = base_request(8ull * ZT_GiB, 0);
    rq.context_override = 0;
    rq.context_measured = 400ull * ZT_MiB;
    pol.context_headroom = 77ull * ZT_MiB;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, &pol, &p, &in, &vae, &e) == ZT_OK, "context: %s", e.msg);
    ZT_CHECK(in.context_bytes == 477ull * ZT_MiB && p.device_total <= rq.vram_budget, "context %llu: want measured + headroom",
             (unsigned long long)in.context_bytes);
    zt_plan_free(&p);
    zt_plan_policy_default(&pol);
    rq.context_override = 300ull * ZT_MiB;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK && in.context_bytes == 300ull * ZT_MiB,
             "context override: %llu", (unsigned long long)in.context_bytes);
    zt_plan_free(&p);
    rq = base_request(8ull * ZT_GiB, 0);
    rq.link_measured = 40e9;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK && in.link_bw == 50e9 && in.disk_bw == 2e9,
             "link given: %g, disk %g", in.link_bw, in.disk_bw);
    zt_plan_free(&p);
    rq.link_bw = 0;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK && in.link_bw == 40e9, "link measured: %g",
             in.link_bw);
    zt_plan_free(&p);
    rq.link_measured = 0;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK && in.link_bw == pol.link_bw,
             "link default: %g", in.link_bw);
    zt_plan_free(&p);
    rq.throttle_bw = 3e9;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK && in.link_bw == 3e9, "throttled link: %g",
             in.link_bw);
    zt_plan_free(&p);

    /* No budget: everything resident, no workspace (allocated per image), the
     * banded decode only when asked for. */
    rq = base_request(0, 0);
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK, "no budget: %s", e.msg);
    ZT_CHECK(p.all_resident && p.n_slots == 0 && p.workspace_bytes == 0 && p.n_lent == 0 && vae == ZT_PLAN_VAE_WHOLE,
             "no budget: all resident %d, slots %d, workspace %llu, lent %d, vae %d", p.all_resident, p.n_slots,
             (unsigned long long)p.workspace_bytes, p.n_lent, vae);
    zt_plan_free(&p);
    rq.vae_decode = ZT_VAE_DECODE_BANDED;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK && vae == ZT_PLAN_VAE_BANDED,
             "no budget, banded asked for: vae %d", vae);
    zt_plan_free(&p);

    /* A large card: the whole-image decode, everything resident. */
    rq = base_request(80ull * ZT_GiB, 0);
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK, "80G: %s", e.msg);
    ZT_CHECK(p.all_resident && vae == ZT_PLAN_VAE_WHOLE && in.workspace_bytes == 1570ull * ZT_MiB,
             "80G: all resident %d, vae %d", p.all_resident, vae);
    zt_plan_free(&p);

    /* Between the two minimums: only the banded decode fits (auto takes it,
     * device fails, and that failure names the whole decode's workspace);
     * below both: the banded minimum is the one reported. */
    rq = base_request(0, 0);
    zt_plan_input mi;
    memset(&mi, 0, sizeof mi);
    mi.context_bytes = rq.context_override;
    mi.prefetch_override = -1;
    mi.workspace_bytes = rq.vae[ZT_PLAN_VAE_WHOLE].workspace_bytes;
    const uint64_t min_whole = zt_plan_min_budget(g_units, g_n, &mi);
    mi.workspace_bytes = rq.vae[ZT_PLAN_VAE_BANDED].workspace_bytes;
    const uint64_t min_band = zt_plan_min_budget(g_units, g_n, &mi);
    ZT_CHECK(min_band < min_whole, "minimums: banded %llu, whole %llu", (unsigned long long)min_band,
             (unsigned long long)min_whole);
    rq.vram_budget = (min_band + min_whole) / 2;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK, "between minimums: %s", e.msg);
    ZT_CHECK(vae == ZT_PLAN_VAE_BANDED && in.workspace_bytes == 900ull * ZT_MiB && p.device_total <= rq.vram_budget,
             "between minimums: vae %d workspace %llu", vae, (unsigned long long)in.workspace_bytes);
    zt_plan_free(&p);
    rq.vae_decode = ZT_VAE_DECODE_DEVICE;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_ERR_NOMEM && strstr(e.msg, "1.53 GiB"),
             "device forced between minimums must fail naming the whole decode's 1.53 GiB workspace: %s", e.msg);
    rq.vae_decode = ZT_VAE_DECODE_AUTO;
    rq.vram_budget = min_band - 1;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_ERR_NOMEM && strstr(e.msg, "900.00 MiB"),
             "below both minimums: the banded decode's minimum (workspace 900 MiB) must be reported: %s", e.msg);

    /* Both fit, some blocks stream: the policy keeps the alternative with the
     * shorter image time (the oracle computes both from zt_plan_make). With no
     * host traffic the banded decode's 670 MiB hold resident blocks and it
     * wins; with 400 GB of traffic per image the whole decode wins. */
    const double traffic[2] = {0, 400e9};
    for (int k = 0; k < 2; k++) {
        rq = base_request(8ull * ZT_GiB, traffic[k]);
        rq.lend = 0;
        zt_plan pw, pb;
        ZT_CHECK(plan_alternative(&rq, ZT_PLAN_VAE_WHOLE, &pw, &e) == ZT_OK && plan_alternative(&rq, ZT_PLAN_VAE_BANDED, &pb, &e) == ZT_OK,
                 "alternatives: %s", e.msg);
        const double tw = image_seconds(&pw, 8, rq.link_bw, 0), tb = image_seconds(&pb, 8, rq.link_bw, traffic[k]);
        const int want = tb < tw ? ZT_PLAN_VAE_BANDED : ZT_PLAN_VAE_WHOLE;
        ZT_CHECK(want == (k == 0 ? ZT_PLAN_VAE_BANDED : ZT_PLAN_VAE_WHOLE), "traffic %g: the oracle's times %g / %g",
                 traffic[k], tw, tb);
        ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK, "8G traffic %g: %s", traffic[k], e.msg);
        ZT_CHECK(vae == want, "8G traffic %g: chose %d, the faster one is %d (%g s whole, %g s banded)", traffic[k], vae, want,
                 tw, tb);
        const zt_plan *w = want == ZT_PLAN_VAE_BANDED ? &pb : &pw;
        ZT_CHECK(p.resident_bytes == w->resident_bytes && p.step_bus_bytes == w->step_bus_bytes &&
                     p.workspace_bytes == w->workspace_bytes,
                 "8G traffic %g: not the plan zt_plan_make gives for that decode", traffic[k]);
        zt_plan_free(&p);
        /* forcing one takes it whatever the prediction */
        rq.vae_decode = ZT_VAE_DECODE_BANDED;
        ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK && vae == ZT_PLAN_VAE_BANDED,
                 "banded forced: vae %d", vae);
        zt_plan_free(&p);
        rq.vae_decode = ZT_VAE_DECODE_DEVICE;
        ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK && vae == ZT_PLAN_VAE_WHOLE,
                 "device forced: vae %d", vae);
        zt_plan_free(&p);
        zt_plan_free(&pw);
        zt_plan_free(&pb);
    }

    /* Lending: the whole decode's idle tail takes streamed per-step blocks
     * when lend is on, nothing when it is off, never the banded decode's. */
    rq = base_request(8ull * ZT_GiB, 400e9); /* the whole decode wins */
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK, "lend: %s", e.msg);
    ZT_CHECK(vae == ZT_PLAN_VAE_WHOLE && p.n_lent == 3 && in.lend_bytes == 1100ull * ZT_MiB, "lend on: vae %d, %d lent",
             vae, p.n_lent);
    zt_plan_free(&p);
    rq.lend = 0;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK, "lend off: %s", e.msg);
    ZT_CHECK(vae == ZT_PLAN_VAE_WHOLE && p.n_lent == 0 && in.lend_bytes == 0, "lend off: %d lent", p.n_lent);
    zt_plan_free(&p);
    rq = base_request(8ull * ZT_GiB, 0);
    rq.vae_decode = ZT_VAE_DECODE_BANDED;
    ZT_CHECK(zt_plan_choose(g_units, g_n, &rq, NULL, &p, &in, &vae, &e) == ZT_OK && p.n_lent == 0,
             "banded: %d lent from the whole decode's tail", p.n_lent);
    zt_plan_free(&p);
}

int main(void) {
    zt_err e;
    zt_plan p;
    build_zimage(8);

    /* 1. A large card keeps everything resident. */
    zt_plan_input in = base_input(80ull * ZT_GiB);
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_OK, "80G: %s", e.msg);
    ZT_CHECK(p.all_resident && p.n_slots == 0 && p.step_bus_bytes == 0, "80G must be all resident");
    check_invariants(&p, &in, "80G");
    zt_plan_free(&p);

    /* 2. 8 GiB: part of the DiT resident, a double-buffered window. */
    in = base_input(8ull * ZT_GiB);
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_OK, "8G: %s", e.msg);
    ZT_CHECK(!p.all_resident && p.n_slots == 2 && p.prefetch == 1, "8G: slots %d prefetch %d", p.n_slots, p.prefetch);
    ZT_CHECK(p.slot_bytes == ZT_ALIGN_UP(353925632ull, 256), "8G: slot %llu", (unsigned long long)p.slot_bytes);
    check_invariants(&p, &in, "8G");
    uint64_t bus8 = p.step_bus_bytes;
    {
        /* Streamed per-step blocks are spread along the step (so their copies
         * overlap the resident blocks' compute): no long run of residents. */
        int n_ps = 0, n_str = 0, run = 0, max_run = 0;
        for (int i = 0; i < g_n; i++) {
            if (!per_step(&g_units[i])) continue;
            n_ps++;
            if (p.units[i].residency == ZT_RES_STREAMED) {
                n_str++;
                run = 0;
            } else if (++run > max_run) {
                max_run = run;
            }
        }
        ZT_CHECK(n_str > 0 && max_run <= (n_ps + n_str - 1) / n_str + 1, "8G: %d streamed of %d, longest resident run %d",
                 n_str, n_ps, max_run);
    }
    ZT_CHECK(bus8 > 0 && bus8 < 32ull * 353925632ull, "8G: bus bytes %llu", (unsigned long long)bus8);
    /* The simulated step lies between full overlap and none. */
    double t_link = (double)bus8 / in.link_bw;
    ZT_CHECK(p.step_time_s >= fmax(p.step_compute_s, t_link) - 1e-12 && p.step_time_s <= p.step_compute_s + t_link + 1e-12,
             "8G: step time %g outside [max %g, sum %g]", p.step_time_s, fmax(p.step_compute_s, t_link),
             p.step_compute_s + t_link);
    zt_plan_free(&p);

    /* 2b. The prefetch depth: deeper only where the simulated step is >1%
     * faster than the same budget at prefetch 1, never beyond 3, and the
     * sweep over budgets and links takes it somewhere. */
    {
        int deeper = 0;
        const double links[] = {10e9, 25e9, 50e9, 100e9};
        for (int li = 0; li < 4; li++)
            for (uint64_t mib = 1500; mib <= 16000; mib += 250) {
                in = base_input(mib * ZT_MiB);
                in.link_bw = links[li];
                zt_plan q;
                /* below the minimum budget the plan must fail; at or above it, succeed */
                const uint64_t min_here = zt_plan_min_budget(g_units, g_n, &in);
                const int mrc = zt_plan_make(g_units, g_n, &in, &p, &e);
                if (in.vram_budget < min_here) {
                    ZT_CHECK(mrc == ZT_ERR_NOMEM, "depth sweep %lluM (below the minimum %llu): rc %d",
                             (unsigned long long)mib, (unsigned long long)min_here, mrc);
                    if (mrc == ZT_OK) zt_plan_free(&p);
                    continue;
                }
                ZT_CHECK(mrc == ZT_OK, "depth sweep %lluM %.0f GB/s (minimum %llu): %s", (unsigned long long)mib,
                         links[li] / 1e9, (unsigned long long)min_here, e.msg);
                if (mrc) continue;
                check_invariants(&p, &in, "depth sweep");
                if (p.prefetch > 1) {
                    deeper++;
                    ZT_CHECK(p.prefetch <= 3 && p.n_slots == p.prefetch + 1, "depth: prefetch %d slots %d", p.prefetch,
                             p.n_slots);
                    zt_plan_input in1 = in;
                    in1.prefetch_override = 1;
                    ZT_CHECK(zt_plan_make(g_units, g_n, &in1, &q, &e) == ZT_OK, "depth: prefetch 1 at the same budget: %s",
                             e.msg);
                    ZT_CHECK(p.step_time_s < q.step_time_s * 0.99, "%lluM %.0f GB/s: prefetch %d (%g s) not 1%% faster than 1 (%g s)",
                             (unsigned long long)mib, links[li] / 1e9, p.prefetch, p.step_time_s, q.step_time_s);
                    zt_plan_free(&q);
                }
                double tl = (double)p.step_bus_bytes / in.link_bw;
                ZT_CHECK(p.all_resident || (p.step_time_s >= fmax(p.step_compute_s, tl) - 1e-12 &&
                                            p.step_time_s <= p.step_compute_s + tl + 1e-12),
                         "depth sweep %lluM: step time outside its bounds", (unsigned long long)mib);
                zt_plan_free(&p);
            }
        ZT_CHECK(deeper > 0, "no budget/link in the sweep chose a deeper prefetch");
    }

    /* 3. The minimum budget is exact. */
    in = base_input(0);
    uint64_t min = zt_plan_min_budget(g_units, g_n, &in);
    ZT_CHECK(min == 500ull * ZT_MiB + 900ull * ZT_MiB + ZT_ALIGN_UP(23704704ull, 256) + 2 * ZT_ALIGN_UP(353925632ull, 256),
             "min budget %llu", (unsigned long long)min);
    in.vram_budget = min;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_OK, "min: %s", e.msg);
    check_invariants(&p, &in, "min");
    ZT_CHECK(p.step_bus_bytes == 32ull * 353925632ull, "min: everything per step streams (%llu)",
             (unsigned long long)p.step_bus_bytes);
    zt_plan_free(&p);
    in.vram_budget = min - 1;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_ERR_NOMEM, "below min must fail");
    ZT_CHECK(strstr(e.msg, "too small") != NULL, "below min message: %s", e.msg);

    /* 4. More budget never means more bus traffic or a slower step. */
    uint64_t prev_bus = UINT64_MAX;
    double prev_t = 1e30;
    for (uint64_t g = 2; g <= 40; g++) {
        in = base_input(g * ZT_GiB);
        if (in.vram_budget < min) continue;
        ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_OK, "%lluG: %s", (unsigned long long)g, e.msg);
        check_invariants(&p, &in, "sweep");
        ZT_CHECK(p.step_bus_bytes <= prev_bus, "sweep %lluG: bus grew", (unsigned long long)g);
        ZT_CHECK(p.step_time_s <= prev_t + 1e-12, "sweep %lluG: step time grew", (unsigned long long)g);
        prev_bus = p.step_bus_bytes;
        prev_t = p.step_time_s;
        zt_plan_free(&p);
    }

    /* 5. --pinned 4G with a store: per-step units get pinned first, the rest
     * is read from disk, the staging ring fits inside the pinned budget. */
    in = base_input(4ull * ZT_GiB);
    in.pinned_budget = 4ull * ZT_GiB;
    in.have_store = 1;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_OK, "pinned 4G: %s", e.msg);
    check_invariants(&p, &in, "pinned 4G");
    ZT_CHECK(p.pinned_bytes - p.staging_bytes <= in.pinned_budget, "pinned weights %llu > budget",
             (unsigned long long)(p.pinned_bytes - p.staging_bytes));
    ZT_CHECK(p.staging_bytes >= p.slot_bytes, "staging ring smaller than a slot");
    int disk_per_step = 0, pinned_once = 0;
    for (int i = 0; i < g_n; i++) {
        if (p.units[i].residency != ZT_RES_STREAMED) continue;
        if (per_step(&g_units[i]) && p.units[i].tier == ZT_TIER_DISK) disk_per_step = 1;
        if (!per_step(&g_units[i]) && p.units[i].tier == ZT_TIER_PINNED) pinned_once = 1;
    }
    ZT_CHECK(!(disk_per_step && pinned_once), "a per-image unit was pinned while a per-step unit reads from disk");
    ZT_CHECK(p.step_disk_bytes > 0, "pinned 4G: some per-step bytes come from disk");
    ZT_CHECK(p.step_time_s >= (double)p.step_disk_bytes / in.disk_bw - 1e-12, "disk bound in the prediction");
    zt_plan_free(&p);

    /* 6. --pinned 0: everything streamed comes from the store through the
     * staging ring, which is all the pinned memory used. */
    in = base_input(4ull * ZT_GiB);
    in.pinned_budget = 0;
    in.have_store = 1;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_OK, "pinned 0: %s", e.msg);
    ZT_CHECK(p.step_disk_bytes == p.step_bus_bytes && p.step_bus_bytes > 0, "pinned 0: all per-step traffic from disk");
    ZT_CHECK(p.pinned_bytes == p.staging_bytes, "pinned 0: only the staging ring is pinned");
    zt_plan_free(&p);
    /* ... and without a store that is an error that says what to do. */
    in.have_store = 0;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_ERR_NOMEM, "no store must fail");
    ZT_CHECK(strstr(e.msg, "zturbo pack") != NULL, "no-store message: %s", e.msg);

    /* 7. --prefetch 0 serialises copy and compute; --window/--prefetch overrides. */
    in = base_input(6ull * ZT_GiB);
    in.prefetch_override = 0;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_OK, "prefetch 0: %s", e.msg);
    ZT_CHECK(p.n_slots == 1 && p.prefetch == 0, "prefetch 0: slots %d", p.n_slots);
    ZT_CHECK(fabs(p.step_time_s - (p.step_compute_s + (double)p.step_bus_bytes / in.link_bw)) < 1e-12, "serial time");
    check_invariants(&p, &in, "prefetch 0");
    zt_plan_free(&p);
    in.prefetch_override = 2;
    in.window_override = 4;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_OK, "window 4: %s", e.msg);
    ZT_CHECK(p.n_slots == 4 && p.prefetch == 2, "window 4: slots %d prefetch %d", p.n_slots, p.prefetch);
    check_invariants(&p, &in, "window 4");
    zt_plan_free(&p);
    in.window_override = 2; /* cannot hold prefetch 2 */
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_ERR_ARG, "window 2 prefetch 2 must fail");

    /* 8. Lending: with 1.1 GiB of the workspace idle during the steps, three
     * streamed per-step blocks move there; each then crosses the bus once per
     * image, and nothing else changes. */
    in = base_input(8ull * ZT_GiB);
    in.workspace_bytes = 1570ull * ZT_MiB;
    zt_plan q;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &q, &e) == ZT_OK, "lend 0: %s", e.msg);
    ZT_CHECK(q.n_lent == 0 && q.lent_bytes == 0, "no lend bytes, no lent units");
    in.lend_bytes = 1100ull * ZT_MiB;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_OK, "lend: %s", e.msg);
    check_invariants(&p, &in, "lend");
    ZT_CHECK(p.n_lent == 3, "lend: %d units lent (3 blocks fit 1100 MiB)", p.n_lent);
    ZT_CHECK(p.lent_offset % 256 == 0 && p.lent_offset >= p.workspace_bytes - in.lend_bytes &&
                 p.lent_offset + p.lent_bytes <= p.workspace_bytes,
             "lend: region %llu + %llu outside the workspace's tail", (unsigned long long)p.lent_offset,
             (unsigned long long)p.lent_bytes);
    ZT_CHECK(p.device_total == q.device_total && p.resident_bytes == q.resident_bytes, "lending costs no device bytes");
    uint64_t lent_sum = 0, lent_end = 0;
    for (int i = 0; i < g_n; i++) {
        if (p.units[i].residency != ZT_RES_LENT) continue;
        ZT_CHECK(per_step(&g_units[i]) && q.units[i].residency == ZT_RES_STREAMED && p.units[i].tier == ZT_TIER_PINNED,
                 "lend: %s was not a streamed per-step unit with a pinned image", g_units[i].name);
        const uint64_t o = p.units[i].device_offset, b = ZT_ALIGN_UP(g_units[i].bytes, 256);
        ZT_CHECK(o % 256 == 0 && o + b <= p.lent_bytes, "lend: %s outside the lent region", g_units[i].name);
        for (int j = 0; j < i; j++)
            if (p.units[j].residency == ZT_RES_LENT)
                ZT_CHECK(o >= p.units[j].device_offset + ZT_ALIGN_UP(g_units[j].bytes, 256) ||
                             p.units[j].device_offset >= o + b,
                         "lend: %s overlaps %s", g_units[i].name, g_units[j].name);
        lent_end += b;
        lent_sum += g_units[i].bytes;
    }
    ZT_CHECK(lent_end == p.lent_bytes, "lend: lent_bytes %llu != %llu", (unsigned long long)p.lent_bytes,
             (unsigned long long)lent_end);
    ZT_CHECK(p.step_bus_bytes == q.step_bus_bytes - lent_sum, "lend: per-step bus bytes drop by the lent units");
    ZT_CHECK(p.image_bus_bytes == q.image_bus_bytes - (uint64_t)(in.steps - 1) * lent_sum,
             "lend: per-image bytes count the lent units once");
    ZT_CHECK(p.step_time_s <= q.step_time_s + 1e-12, "lend: the step got slower");
    zt_plan_free(&p);
    zt_plan_free(&q);
    /* ... but not where the step is bound by compute anyway: the copies would only cost */
    in = base_input(13ull * ZT_GiB);
    in.workspace_bytes = 1570ull * ZT_MiB;
    in.lend_bytes = 1100ull * ZT_MiB;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_OK, "lend 13G: %s", e.msg);
    ZT_CHECK(!p.all_resident && p.n_lent == 0 && p.lent_bytes == 0, "lend 13G: %d lent to a compute-bound step", p.n_lent);
    ZT_CHECK(p.step_time_s <= p.step_compute_s + 1e-12, "lend 13G: the step is compute-bound");
    zt_plan_free(&p);
    in = base_input(8ull * ZT_GiB);
    in.workspace_bytes = 1570ull * ZT_MiB;
    in.lend_bytes = 1571ull * ZT_MiB; /* more than the workspace */
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_ERR_ARG, "lend > workspace must fail");
    in = base_input(4ull * ZT_GiB);
    in.workspace_bytes = 1570ull * ZT_MiB;
    in.lend_bytes = 1100ull * ZT_MiB;
    in.pinned_budget = 0;
    in.have_store = 1;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_OK, "lend, pinned 0: %s", e.msg);
    ZT_CHECK(p.n_lent == 0, "lend, pinned 0: units read from disk are never lent");
    zt_plan_free(&p);

    /* 10. The policy (zt_plan_choose): compute, context, link, VAE and lending. */
    test_choose();

    /* 9. Bad input. */
    in = base_input(8ull * ZT_GiB);
    in.steps = 0;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_ERR_ARG, "steps 0 must fail");
    in = base_input(8ull * ZT_GiB);
    in.link_bw = 0;
    ZT_CHECK(zt_plan_make(g_units, g_n, &in, &p, &e) == ZT_ERR_ARG, "bw 0 must fail");
    test_coded(&e);
    return zt_test_finish("test_plan");
}
