/* tools/zturbo/cmd_plan.c — `zturbo plan`: print the residency plan that
 * `zturbo generate` would use with the same options, without loading any
 * weights: which unit stays on the device, which streams and from which
 * host tier, the window, the predicted bus traffic and step time. It parses
 * generate's own option table (gen_options.h) and reads the options through
 * zturbo_create's own function, so the two cannot drift apart. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/zturbo_internal.h"
#include "storage/control.h"
#include "tools/zturbo/cli.h"
#include "tools/zturbo/gen_options.h"
#include "tools/zturbo/plan_print.h"

static const char *k_usage =
    "usage: zturbo plan -m MODEL --vram SIZE [options]\n"
    "\n"
    "Prints the plan `zturbo generate` would use with the same options (no weights are loaded);\n"
    "generate's options that do not change the plan are refused.\n";

int gen_plan_make(const cli_value *v, const zturbo_options *zo, gen_plan *gp, zt_err *e) {
    memset(gp, 0, sizeof *gp);
    zturbo_resolved r;
    int rc = zturbo_pipeline_options(zo, &gp->po, &r, e);
    if (rc) return rc;
    gp->po.context_override = v[G_CONTEXT].set ? v[G_CONTEXT].u : 0;
    gp->po.disk_bw = v[G_DISK_BW].set ? v[G_DISK_BW].d * 1e9 : 0;
    rc = zt_pipeline_make_plan(zo->model_path, &gp->po, &gp->plan, &gp->in, &gp->vae_host, e);
    if (rc) return rc;
    rc = zt_source_open(zo->model_path, &gp->src, e);
    /* the ControlNet's units follow the model's, as in the plan */
    if (!rc && zo->control_model) rc = zt_source_add_control(gp->src, zo->control_model, &gp->src, e);
    if (rc) zt_plan_free(&gp->plan);
    return rc;
}

void gen_plan_free(gen_plan *gp) {
    zt_source_close(gp->src);
    zt_plan_free(&gp->plan);
    memset(gp, 0, sizeof *gp);
}

static const char *k_comp[3] = {"transformer", "text encoder", "vae"};
static const char *comp_name(const gen_plan *gp, int c) {
    return c == 0 && gp->po.control_path ? "transformer (with the ControlNet)" : k_comp[c];
}

static const char *where_name(const zt_plan_unit_choice *c) {
    return c->residency == ZT_RES_RESIDENT                  ? "device"
           : c->residency == ZT_RES_RESIDENT_CODED          ? "device, coded"
           : c->residency == ZT_RES_STREAMED && c->coded    ? "streamed, coded"
           : c->residency == ZT_RES_STREAMED                ? "streamed"
           : c->residency == ZT_RES_LENT                    ? "lent"
                                                            : "host";
}
static const char *tier_name(const zt_plan_unit_choice *c) {
    return c->residency != ZT_RES_STREAMED && c->residency != ZT_RES_LENT ? "-"
           : c->tier == ZT_TIER_PINNED                                   ? "pinned RAM"
                                                                         : "disk (store)";
}

static void put_u64(json_t *o, const char *k, uint64_t x) { json_object_set_new(o, k, json_integer((json_int_t)x)); }

static int print_json(const cli_value *v, const gen_plan *gp, int verbose) {
    const zt_plan *plan = &gp->plan;
    const zt_catalog *cat = zt_source_catalog(gp->src);
    json_t *o = json_object();
    json_object_set_new(o, "width", json_integer(v[G_WIDTH].i));
    json_object_set_new(o, "height", json_integer(v[G_HEIGHT].i));
    json_object_set_new(o, "steps", json_integer(v[G_STEPS].i));
    json_object_set_new(o, "device", json_string(gp->po.backend == ZT_BACKEND_CUDA ? "cuda" : "cpu"));
    put_u64(o, "vram", gp->po.vram_budget);
    put_u64(o, "context_bytes", gp->in.context_bytes);
    put_u64(o, "workspace_bytes", plan->workspace_bytes);
    put_u64(o, "resident_bytes", plan->resident_bytes);
    json_object_set_new(o, "slots", json_integer(plan->n_slots));
    put_u64(o, "slot_bytes", plan->slot_bytes);
    put_u64(o, "device_total", plan->device_total);
    json_object_set_new(o, "prefetch", json_integer(plan->prefetch));
    put_u64(o, "pinned_bytes", plan->pinned_bytes);
    put_u64(o, "staging_bytes", plan->staging_bytes);
    put_u64(o, "step_bus_bytes", plan->step_bus_bytes);
    put_u64(o, "step_disk_bytes", plan->step_disk_bytes);
    json_object_set_new(o, "step_time_s", json_real(plan->step_time_s));
    json_object_set_new(o, "step_compute_s", json_real(plan->step_compute_s));
    put_u64(o, "image_bus_bytes", plan->image_bus_bytes);
    json_object_set_new(o, "link_gbps", json_real(gp->in.link_bw / 1e9));
    json_object_set_new(o, "disk_gbps", json_real(gp->in.disk_bw / 1e9));
    json_object_set_new(o, "vae_decode", json_string(gp->vae_host ? "banded" : "device"));
    put_u64(o, "vae_host_bytes", gp->vae_host);
    json_t *comps = json_object();
    for (int c = 0; c < 3; c++) {
        int n[5] = {0};
        for (int i = 0; i < plan->n_units; i++)
            if ((int)cat->units[i].comp == c) n[plan->units[i].residency]++;
        json_object_set_new(comps, k_comp[c],
                            json_pack("{s:i, s:i, s:i, s:i, s:i}", "resident", n[ZT_RES_RESIDENT] + n[ZT_RES_RESIDENT_CODED],
                                      "resident_coded", n[ZT_RES_RESIDENT_CODED], "streamed", n[ZT_RES_STREAMED], "lent",
                                      n[ZT_RES_LENT], "host", n[ZT_RES_HOST]));
    }
    json_object_set_new(o, "units", comps);
    json_object_set_new(o, "weights", json_string(gp->po.weights_coded ? "coded" : "bf16"));
    if (gp->po.weights_coded) {
        json_object_set_new(o, "decode_gbps", json_real(gp->in.decode_bw / 1e9));
        put_u64(o, "step_decode_bytes", plan->step_decode_bytes);
        put_u64(o, "cstage_bytes", plan->cstage_bytes);
    }
    if (verbose) {
        json_t *a = json_array();
        for (int i = 0; i < plan->n_units; i++)
            json_array_append_new(a, json_pack("{s:s, s:I, s:s, s:s}", "name", cat->units[i].name, "bytes",
                                               (json_int_t)cat->units[i].nbytes, "where", where_name(&plan->units[i]),
                                               "tier", tier_name(&plan->units[i])));
        json_object_set_new(o, "unit_list", a);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!s) return ZT_EXIT_FAIL;
    puts(s);
    free(s);
    return ZT_EXIT_OK;
}

void gen_plan_print(FILE *f, const cli_value *v, const gen_plan *gp, int verbose, const char *indent) {
    const zt_plan *plan = &gp->plan;
    const zt_catalog *cat = zt_source_catalog(gp->src);
    char b1[32], b2[32], b3[32], b4[32], b5[32];
    /* --context on the CPU backend plans for a GPU that is not here (sched/plan.h: a simulated device) */
    fprintf(f, "%splan for %lldx%lld, %lld steps, --vram %s (%s)\n", indent, v[G_WIDTH].i, v[G_HEIGHT].i, v[G_STEPS].i,
            zt_fmt_bytes(gp->po.vram_budget, b1, sizeof b1),
            gp->po.backend == ZT_BACKEND_CUDA ? "cuda backend"
            : gp->po.context_override         ? "a simulated GPU: --context given on the cpu backend"
                                              : "cpu backend");
    fprintf(f, "%s  device: context %s + workspace %s + resident %s + window %d x %s = %s\n", indent,
            zt_fmt_bytes(gp->in.context_bytes, b1, sizeof b1), zt_fmt_bytes(plan->workspace_bytes, b2, sizeof b2),
            zt_fmt_bytes(plan->resident_bytes, b3, sizeof b3), plan->n_slots, zt_fmt_bytes(plan->slot_bytes, b4, sizeof b4),
            zt_fmt_bytes(plan->device_total, b5, sizeof b5));
    int counts[3][5] = {{0}}; /* [component][zt_residency] */
    for (int i = 0; i < plan->n_units; i++) counts[cat->units[i].comp][plan->units[i].residency]++;
    for (int c = 0; c < 3; c++) {
        fprintf(f, "%s  %-12s %d units resident, %d streamed, %d host-only", indent, comp_name(gp, c),
                counts[c][ZT_RES_RESIDENT] + counts[c][ZT_RES_RESIDENT_CODED], counts[c][ZT_RES_STREAMED],
                counts[c][ZT_RES_HOST]);
        if (counts[c][ZT_RES_RESIDENT_CODED])
            fprintf(f, ", %d of the resident ones kept coded (decoded into a slot at each use)",
                    counts[c][ZT_RES_RESIDENT_CODED]);
        if (counts[c][ZT_RES_LENT])
            fprintf(f, ", %d lent the VAE's workspace (copied once per image)", counts[c][ZT_RES_LENT]);
        fprintf(f, "\n");
    }
    if (gp->po.weights_coded)
        fprintf(f, "%s  weights coded (storage/wcode.h): decode %.0f GB/s assumed, %s decoded per evaluation, piece buffer %s\n",
                indent, gp->in.decode_bw / 1e9, zt_fmt_bytes(plan->step_decode_bytes, b1, sizeof b1),
                zt_fmt_bytes(plan->cstage_bytes, b2, sizeof b2));
    else
        fprintf(f, "%s  weights bf16 (--weights bf16)\n", indent);
    fprintf(f, "%s  prefetch %d; pinned host memory %s (staging %s)\n", indent, plan->prefetch,
            zt_fmt_bytes(plan->pinned_bytes, b1, sizeof b1), zt_fmt_bytes(plan->staging_bytes, b2, sizeof b2));
    fprintf(f,
            "%s  per evaluation: %s over the bus (%s from disk); predicted %.3f s (compute estimate %.3f s, link %.0f "
            "GB/s%s, disk %.1f GB/s)\n",
            indent, zt_fmt_bytes(plan->step_bus_bytes, b1, sizeof b1), zt_fmt_bytes(plan->step_disk_bytes, b2, sizeof b2),
            plan->step_time_s, plan->step_compute_s, gp->in.link_bw / 1e9,
            gp->po.link_bw > 0 ? " given" : gp->po.context_override || gp->po.backend != ZT_BACKEND_CUDA ? " assumed" : " measured",
            gp->in.disk_bw / 1e9);
    fprintf(f, "%s  per image: %s over the bus\n", indent, zt_fmt_bytes(plan->image_bus_bytes, b1, sizeof b1));
    if (gp->vae_host)
        fprintf(f, "%s  vae: decoded in row bands, the largest activations in %s of host memory\n", indent,
                zt_fmt_bytes(gp->vae_host, b1, sizeof b1));
    else fprintf(f, "%s  vae: whole-image decode on the device\n", indent);
    if (!verbose) return;
    fprintf(f, "\n%s  %-26s %12s  %-15s %s\n", indent, "unit", "bytes", "where", "host tier");
    for (int i = 0; i < plan->n_units; i++)
        fprintf(f, "%s  %-26s %12llu  %-15s %s\n", indent, cat->units[i].name, (unsigned long long)cat->units[i].nbytes,
                where_name(&plan->units[i]), tier_name(&plan->units[i]));
}

int cmd_plan(int argc, char **argv) {
    const cli_spec sp = {"plan", k_usage, NULL, k_gen_opts, G_N, GEN_SCOPE_PLAN};
    cli_value v[G_N];
    int rc = cli_parse(&sp, argc, argv, v);
    if (rc) return rc == CLI_DONE ? ZT_EXIT_OK : rc;
    zturbo_options zo;
    if ((rc = gen_resolve(&sp, v, &zo))) return rc;
    if (!v[G_VRAM].set) return cli_missing(&sp, G_VRAM);
    gen_plan gp;
    zt_err e = {0};
    if (gen_plan_make(v, &zo, &gp, &e)) return cli_fail(&e);
    rc = v[G_JSON].set ? print_json(v, &gp, v[G_VERBOSE].set) : (gen_plan_print(stdout, v, &gp, v[G_VERBOSE].set, ""), 0);
    gen_plan_free(&gp);
    return rc;
}
