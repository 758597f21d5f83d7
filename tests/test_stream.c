/* tests/test_stream.c — the streaming engine moves bytes, never changes them
 * (design.md invariant 1) and keeps its budget (invariant 2), on the CPU
 * backend ("simulated small device": slots are host buffers).
 *
 * A tiny random checkpoint (bin/mkmodel) is packed into a compressed store;
 * for a range of plans (all resident, the minimum budget, prefetch 0..2,
 * extra window slots, --pinned 0 reading every streamed unit from the store)
 * the DiT use order is walked for several steps, then the text and VAE
 * phases, and every image handed out by acquire must equal the unit image
 * read directly from the snapshot. With the CUDA backend and a GPU the same
 * walk runs on the device (slot contents downloaded and compared). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "models/plan_units.h"
#include "sched/plan.h"
#include "storage/source.h"
#include "storage/store.h"
#include "stream/stream.h"
#include "tests/zt_test.h"

static uint8_t **g_ref; /* [n_units] reference images */

static void walk_phase(zt_stream *st, zt_ops *ops, const zt_catalog *cat, const int *order, int n, int repeat,
                       uint8_t *host_buf, const char *what) {
    zt_err e;
    ZT_CHECK(zt_stream_begin_phase(st, order, n, repeat, &e) == ZT_OK, "%s: begin: %s", what, e.msg);
    for (int r = 0; r < repeat; r++)
        for (int i = 0; i < n; i++) {
            int u = order[i];
            const void *p = zt_stream_acquire(st, u);
            uint64_t b = cat->units[u].nbytes;
            zt_mem_download(ops, host_buf, p, b);
            ZT_CHECK(memcmp(host_buf, g_ref[u], b) == 0, "%s: unit %s (step %d) differs from the snapshot", what,
                     cat->units[u].name, r);
            zt_stream_release(st, u);
        }
    ZT_CHECK(zt_stream_end_phase(st, &e) == ZT_OK, "%s: end: %s", what, e.msg);
}

static void run_plan(zt_ops *ops, const zt_catalog *cat, zt_source *snap, zt_source *store, zt_plan_input in,
                     const char *what) {
    zt_err e;
    int n = cat->n_units;
    zt_plan_unit *pu = calloc((size_t)n, sizeof *pu);
    zt_models_plan_units(cat, in.steps, pu);
    zt_plan plan;
    if (zt_plan_make(pu, n, &in, &plan, &e) != ZT_OK) {
        ZT_CHECK(0, "%s: plan: %s", what, e.msg);
        free(pu);
        return;
    }
    ZT_CHECK(plan.device_total <= in.vram_budget, "%s: plan exceeds the budget", what);
    zt_stream *st = NULL;
    if (zt_stream_create(ops, cat, snap, store, &plan, NULL, &st, &e) != ZT_OK) {
        ZT_CHECK(0, "%s: create: %s", what, e.msg);
        zt_plan_free(&plan);
        free(pu);
        return;
    }
    ZT_CHECK(zt_stream_device_bytes(st) + in.context_bytes <= in.vram_budget + (uint64_t)plan.n_slots * 256,
             "%s: stream allocated more than planned", what);
    uint64_t maxb = 0;
    for (int i = 0; i < n; i++)
        if (cat->units[i].nbytes > maxb) maxb = cat->units[i].nbytes;
    uint8_t *buf = malloc(maxb);
    /* Use orders as the models declare them: text layers, DiT per step, VAE. */
    int order[256], k;
    k = 0;
    for (int i = 0; i < n; i++)
        if (cat->units[i].comp == ZT_COMP_TEXT && !cat->units[i].host_only) order[k++] = i;
    walk_phase(st, ops, cat, order, k, 1, buf, what);
    k = 0;
    int ctx[16], nctx = 0;
    for (int i = 0; i < n; i++) {
        if (!strncmp(cat->units[i].name, "dit.context_refiner", 19)) ctx[nctx++] = i;
        if (cat->units[i].per_step) order[k++] = i;
    }
    int pre[32], npre = 0;
    pre[npre++] = zt_catalog_unit_index(cat, "dit.globals");
    pre[npre++] = zt_catalog_unit_index(cat, "dit.adaln");
    for (int i = 0; i < nctx; i++) pre[npre++] = ctx[i];
    walk_phase(st, ops, cat, pre, npre, 1, buf, what);
    zt_stream_stats_reset(st);
    walk_phase(st, ops, cat, order, k, in.steps, buf, what);
    zt_stream_stats s;
    zt_stream_stats_get(st, &s);
    ZT_CHECK(s.bytes_h2d == plan.step_bus_bytes * (uint64_t)in.steps, "%s: bus bytes %llu != planned %llu x %d", what,
             (unsigned long long)s.bytes_h2d, (unsigned long long)plan.step_bus_bytes, in.steps);
    ZT_CHECK(s.bytes_disk == plan.step_disk_bytes * (uint64_t)in.steps, "%s: disk bytes %llu != planned %llu", what,
             (unsigned long long)s.bytes_disk, (unsigned long long)plan.step_disk_bytes * in.steps);
    int vae = zt_catalog_unit_index(cat, "vae.decoder");
    walk_phase(st, ops, cat, &vae, 1, 1, buf, what);
    free(buf);
    zt_stream_destroy(st);
    zt_plan_free(&plan);
    free(pu);
}

int main(int argc, char **argv) {
    int use_cuda = argc > 1 && !strcmp(argv[1], "--cuda");
    const char *bin = getenv("ZT_BIN") ? getenv("ZT_BIN") : "bin";
    const char *dir = zt_test_tmpdir(use_cuda ? "stream-cuda" : "stream");
    char snap_dir[4200], store_path[4200], cmd[9000];
    snprintf(snap_dir, sizeof snap_dir, "%s/snap", dir);
    snprintf(store_path, sizeof store_path, "%s/tiny.zts", dir);
    snprintf(cmd, sizeof cmd, "'%s/mkmodel' --config tiny --seed 7 --dtype f32 -q -o '%s'", bin, snap_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "mkmodel failed: %s\n", cmd);
        return 1;
    }
    zt_err e;
    zt_ops *ops;
    zt_ops_config oc = {use_cuda ? ZT_BACKEND_CUDA : ZT_BACKEND_CPU, 0, NULL, 1};
    if (use_cuda && !zt_cuda_available()) zt_test_skip("no CUDA device");
    if (zt_ops_create(&oc, &ops, &e) != ZT_OK) {
        fprintf(stderr, "ops: %s\n", e.msg);
        return 1;
    }
    zt_source *snap = NULL, *store = NULL;
    ZT_CHECK(zt_source_open(snap_dir, &snap, &e) == ZT_OK, "open snapshot: %s", e.msg);
    if (!snap) return zt_test_finish("test_stream");
    zt_pack_opts po = {0};
    po.zstd_level = 3;
    po.threads = 2;
    ZT_CHECK(zt_store_pack(snap, store_path, &po, NULL, NULL, NULL, &e) == ZT_OK, "pack: %s", e.msg);
    ZT_CHECK(zt_source_open(store_path, &store, &e) == ZT_OK, "open store: %s", e.msg);
    if (!store) return zt_test_finish("test_stream");
    const zt_catalog *cat = zt_source_catalog(snap);

    g_ref = calloc((size_t)cat->n_units, sizeof *g_ref);
    uint64_t total = 0, maxb = 0, per_step = 0;
    for (int i = 0; i < cat->n_units; i++) {
        g_ref[i] = malloc(cat->units[i].nbytes);
        ZT_CHECK(zt_source_read_unit(snap, i, g_ref[i], cat->units[i].nbytes, &e) == ZT_OK, "read %s: %s",
                 cat->units[i].name, e.msg);
        if (!cat->units[i].host_only) total += cat->units[i].nbytes;
        if (cat->units[i].nbytes > maxb && !cat->units[i].host_only) maxb = cat->units[i].nbytes;
        if (cat->units[i].per_step) per_step += cat->units[i].nbytes;
    }

    zt_plan_input base;
    memset(&base, 0, sizeof base);
    base.context_bytes = 0;
    base.workspace_bytes = 1 << 20;
    base.pinned_budget = UINT64_MAX;
    base.have_store = 1;
    base.link_bw = 1e9;
    base.disk_bw = 1e9;
    base.steps = 3;
    base.prefetch_override = -1;

    zt_plan_input in = base;
    in.vram_budget = 4 * total + (64ull << 20);
    run_plan(ops, cat, snap, store, in, "resident");

    zt_plan_unit *pu = calloc((size_t)cat->n_units, sizeof *pu);
    zt_models_plan_units(cat, base.steps, pu);
    uint64_t min = zt_plan_min_budget(pu, cat->n_units, &base);
    free(pu);
    in = base;
    in.vram_budget = min;
    run_plan(ops, cat, snap, store, in, "min budget");
    for (int pf = 0; pf <= 2; pf++) {
        char what[64];
        in = base;
        in.prefetch_override = pf;
        in.vram_budget = min + (uint64_t)(pf + 1) * maxb + per_step / 2;
        snprintf(what, sizeof what, "prefetch %d, half the DiT resident", pf);
        run_plan(ops, cat, snap, store, in, what);
    }
    in = base;
    in.window_override = 5;
    in.prefetch_override = 3;
    in.vram_budget = 2 * total;
    run_plan(ops, cat, snap, store, in, "window 5 prefetch 3");
    in = base;
    in.pinned_budget = 0;
    in.vram_budget = min;
    run_plan(ops, cat, snap, store, in, "pinned 0 from the zstd store");
    in = base;
    in.pinned_budget = per_step / 3;
    in.vram_budget = min + maxb;
    run_plan(ops, cat, snap, store, in, "pinned third, rest from disk");

    for (int i = 0; i < cat->n_units; i++) free(g_ref[i]);
    free(g_ref);
    zt_source_close(store);
    zt_source_close(snap);
    zt_ops_destroy(ops);
    return zt_test_finish("test_stream");
}
