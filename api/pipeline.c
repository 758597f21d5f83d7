/* api/pipeline.c — prompt ids -> image (spec §9.1), see pipeline.h. */
#include "api/pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/lora.h"
#include "common/zt_input.h"
#include "models/carve.h"
#include "models/precision.h"
#include "api/noise.h"
#include "models/sampler.h"
#include "api/stfile.h"
#include "api/tokenizer.h"
#include "storage/store.h"
#include "kernels/cuda_norm.h"
#include "models/plan_units.h"
#include "storage/control.h"
#include "stream/coded_host.h"
#include "stream/units_stream.h"

void zt_gen_params_default(zt_gen_params *gp) {
    memset(gp, 0, sizeof *gp);
    gp->width = 1024;
    gp->height = 1024;
    gp->steps = 8;
    gp->dt = ZT_DT_BF16;
    gp->vae_dt = ZT_DT_F32;
    gp->control_scale = 0.75f;
}

void zt_pipeline_close(zt_pipeline *p) {
    if (!p) return;
    zt_units_destroy(p->units);
    zt_coded_host_close(p->coded_host);
    zt_plan_free(&p->plan);
    if (p->vae_host_owned) free(p->vae_host);
    if (p->store && p->store != p->src) zt_source_close(p->store);
    zt_qwen3_free(&p->te);
    zt_dit_free(&p->dit);
    zt_vae_free(&p->vae);
    zt_vae_encoder_free(&p->venc);
    zt_control_free(&p->ctl);
    zt_tokenizer_free(p->tok);
    zt_lora_merger_free_device(p->lora); /* its device buffer belongs to p->ops */
    if (p->ops) zt_ops_destroy(p->ops);
    if (p->src) zt_source_close(p->src);
    zt_lora_merger_destroy(p->lora); /* after the sources that call it */
    free(p);
}

void zt_pipeline_opts_default(zt_pipeline_opts *o) {
    memset(o, 0, sizeof *o);
    o->backend = ZT_BACKEND_CPU;
    o->pinned_budget = UINT64_MAX;
    o->prefetch = -1;
    o->plan_width = 1024;
    o->plan_height = 1024;
    o->plan_steps = 8;
    o->plan_vae_dt = ZT_DT_F32;
    o->precision = ZT_DT_BF16;
    o->weights_coded = 1;
    zt_plan_policy_default(&o->policy);
    o->lend = 1;
    o->copy_streams = 1;
    o->norm_variant = ZT_NORM_VARIANT_DEFAULT;
    o->io_engine = ZT_IO_AUTO;
}

static int vae_factor(const zt_model_config *c) { return 1 << (c->vae_n_blocks - 1); }

static size_t scratch_but_vae(zt_pipeline *p, const zt_gen_params *gp, int L);
static size_t dit_front_bytes(zt_pipeline *p, const zt_gen_params *gp, int L);

/* The image the workspace is planned for, in the precision the pipeline runs
 * (the fp16 path's residual streams are f32: more bytes than bf16's). */
static zt_gen_params plan_gen_params(const zt_pipeline_opts *o) {
    zt_gen_params gp;
    zt_gen_params_default(&gp);
    gp.dt = o->precision;
    gp.width = o->plan_width;
    gp.height = o->plan_height;
    gp.steps = o->plan_steps;
    gp.vae_dt = o->plan_vae_dt;
    gp.plan_images = o->plan_images || o->control_path;
    gp.plan_control = o->control_path != NULL;
    return gp;
}

/* One way to decode the VAE (device cap `cap`, 0: whole image) measured for
 * the planned image, with the longest caption: its workspace, the tail of
 * it the denoising loop leaves idle, its host memory and host traffic. */
static zt_plan_vae vae_alternative(zt_pipeline *p, const zt_gen_params *gp, size_t cap) {
    const zt_model_config *c = &p->cat->cfg;
    const int hl = gp->height / vae_factor(c), wl = gp->width / vae_factor(c);
    zt_plan_vae a;
    p->vae_cap = cap;
    a.workspace_bytes = zt_pipeline_activation_bytes(p, gp, ZT_MAX_TOKENS);
    const size_t front = dit_front_bytes(p, gp, ZT_MAX_TOKENS);
    /* the banded decode's scratch is the other networks' own: nothing idle to lend */
    a.lend_bytes = !cap && a.workspace_bytes > front ? ZT_ALIGN_UP(a.workspace_bytes, 256) - ZT_ALIGN_UP(front, 256) : 0;
    a.host_bytes = zt_vae_host_size(&p->vae, p->ops, hl, wl, gp->vae_dt, cap);
    a.host_traffic = zt_vae_host_traffic(&p->vae, p->ops, hl, wl, gp->vae_dt, cap);
    p->vae_cap = 0;
    return a;
}

/* The plan for these options (sched/plan.h zt_plan_choose holds every
 * decision; this only measures what it decides from). Sets the VAE's cap
 * and host memory for the decode the plan chose. */
/* The block store weights are read from: --store, or the model itself. */
static zt_store *weights_store(const zt_pipeline *p) {
    return zt_store_of_source(p->store ? p->store : p->src);
}

static int build_plan(zt_pipeline *p, const zt_pipeline_opts *o, zt_plan *plan, zt_plan_input *in, zt_err *e) {
    const int n = p->cat->n_units;
    zt_plan_unit *pu = calloc((size_t)n, sizeof *pu);
    if (!pu) return zt_err_set(e, ZT_ERR_NOMEM, "plan: out of host memory");
    zt_models_plan_units(p->cat, o->plan_steps, pu);
    if (!o->plan_images && !o->control_path && p->venc.unit >= 0)
        pu[p->venc.unit].uses_per_image = 0; /* never resident for nothing */
    /* coded weights: the coded sizes, exact once coded (or from a coded store), else (zturbo plan on
     * a snapshot) estimated; without a budget a snapshot stays bf16 */
    zt_store *zs = weights_store(p);
    const int coded = o->weights_coded && (o->vram_budget || zs);
    for (int i = 0; coded && i < n; i++) {
        if (p->coded_host) pu[i].coded_bytes = zt_coded_host_bytes(p->coded_host, i);
        else if (zs) pu[i].coded_bytes = zt_store_unit_coded(zs, i) ? zt_store_extent_of(zs, i)->stored_bytes : 0;
        else if (!pu[i].host_only) pu[i].coded_bytes = (uint64_t)((double)pu[i].bytes * o->policy.coded_ratio);
    }
    const zt_gen_params gp = plan_gen_params(o);
    const zt_model_config *c = &p->cat->cfg;
    zt_plan_request rq;
    memset(&rq, 0, sizeof rq);
    rq.vram_budget = o->vram_budget;
    rq.pinned_budget = o->pinned_budget;
    rq.have_store = p->store != NULL;
    rq.steps = o->plan_steps;
    rq.window_override = o->window;
    rq.prefetch_override = o->prefetch;
    rq.gpu = zt_ops_backend(p->ops) == ZT_BACKEND_CUDA;
    rq.context_measured = p->context_measured;
    rq.context_override = o->context_override;
    rq.link_bw = o->link_bw;
    rq.link_measured = p->link_bw_measured;
    rq.throttle_bw = o->throttle_bw;
    rq.disk_bw = o->disk_bw;
    /* a transformer block over S tokens: the projections and the feed-forward
     * (8 D^2 + 6 D FF per token) and attention (4 S^2 D) */
    const double D = c->dim, FF = c->ffn_dim;
    rq.flops_token = 8.0 * D * D + 6.0 * D * FF;
    rq.flops_pair = 4.0 * D;
    rq.image_tokens = (gp.height / vae_factor(c) / c->patch) * (gp.width / vae_factor(c) / c->patch);
    rq.vae_decode = o->vae_decode;
    rq.lend = o->lend;
    /* The banded VAE's cap: the scratch the other networks need anyway. */
    const size_t banded_cap = scratch_but_vae(p, &gp, ZT_MAX_TOKENS);
    rq.vae[ZT_PLAN_VAE_WHOLE] = vae_alternative(p, &gp, 0);
    rq.vae[ZT_PLAN_VAE_BANDED] = vae_alternative(p, &gp, banded_cap);
    rq.coded = coded;
    rq.decode_bw = o->decode_bw;
    rq.mem_bw = zt_ops_mem_bandwidth(p->ops);
    rq.piece_bytes = o->piece_bytes;
    /* a streamed block may move as bf16 where the step is bound by compute: only when its bf16 image
     * comes from the model as it is (a store's coded extents would be decoded on the host) */
    rq.bf16_transport = !zt_store_of_source(p->src);
    int vae = ZT_PLAN_VAE_WHOLE;
    int rc = zt_plan_choose(pu, n, &rq, &o->policy, plan, in, &vae, e);
    if (!rc && !o->weights_coded && p->store) { /* bf16 weights cannot come from coded extents on every use */
        zt_store *zs = zt_store_of_source(p->store);
        for (int i = 0; i < n && !rc; i++)
            if (plan->units[i].residency == ZT_RES_STREAMED && plan->units[i].tier == ZT_TIER_DISK &&
                zt_store_unit_coded(zs, i)) {
                zt_plan_free(plan);
                const char *st = o->store_path ? o->store_path : "the store";
                /* the fp16 path has no coded weights: --weights coded is not a way out there */
                if (o->precision == ZT_DT_F16)
                    rc = zt_err_set(e, ZT_ERR_ARG,
                                    "--precision fp16 reads %s from disk on every use as bf16, but %s holds it coded: "
                                    "raise --pinned, or repack the store with `zturbo pack --weights bf16`",
                                    p->cat->units[i].name, st);
                else
                    rc = zt_err_set(e, ZT_ERR_ARG,
                                    "--weights bf16 reads %s from disk on every use, but %s holds it coded: use "
                                    "--weights coded, raise --pinned, or repack the store with --weights bf16",
                                    p->cat->units[i].name, st);
            }
    }
    free(pu);
    if (rc) return rc;
    p->vae_cap = vae == ZT_PLAN_VAE_BANDED ? banded_cap : 0;
    p->vae_host_bytes = rq.vae[vae].host_bytes;
    return ZT_OK;
}

/* Everything but the weights: source, optional store, ops context, model
 * descriptions, tokenizer, measured context size. */
static int pipeline_prepare(const char *model_path, const zt_pipeline_opts *o, zt_pipeline *p, zt_err *e) {
    if (o->plan_width < 16 || o->plan_height < 16 || o->plan_steps < 1)
        return zt_err_set(e, ZT_ERR_ARG, "pipeline: planned for %dx%d, %d steps (start from zt_pipeline_opts_default)",
                          o->plan_width, o->plan_height, o->plan_steps);
    if (o->control_path && o->store_path)
        return zt_err_set(e, ZT_ERR_ARG, "a ControlNet (%s) with --store: not supported (a store holds the model's "
                                         "units only); give the snapshot or checkpoint", o->control_path);
    int rc = zt_source_open(model_path, &p->src, e);
    if (!rc) rc = zt_source_set_load_threads(p->src, o->load_threads, e);
    if (!rc && o->control_path) rc = zt_source_add_control(p->src, o->control_path, &p->src, e);
    if (rc) return rc;
    p->cat = zt_source_catalog(p->src);
    if (o->store_path) {
        rc = zt_source_open(o->store_path, &p->store, e);
        if (rc) return zt_err_prefix(e, "--store");
        if (zt_source_kind_of(p->store) != ZT_SOURCE_STORE)
            return zt_err_set(e, ZT_ERR_ARG, "--store %s: not a zturbo block store (make one with `zturbo pack`)",
                              o->store_path);
        const zt_catalog *sc = zt_source_catalog(p->store);
        int same = sc->n_units == p->cat->n_units;
        for (int i = 0; same && i < sc->n_units; i++)
            same = sc->units[i].nbytes == p->cat->units[i].nbytes && !strcmp(sc->units[i].name, p->cat->units[i].name);
        if (!same)
            return zt_err_set(e, ZT_ERR_ARG, "--store %s was packed from a different model than %s", o->store_path,
                              model_path);
    } else if (zt_source_kind_of(p->src) == ZT_SOURCE_STORE) {
        p->store = p->src; /* -m STORE also serves the units read from disk */
    }
    zt_ops_config oc = {0};
    oc.backend = o->backend;
    oc.device = o->device;
    oc.cpu_threads = o->cpu_threads;
    rc = zt_ops_create(&oc, &p->ops, e);
    if (!rc) rc = zt_ops_set_norm_variant(p->ops, o->norm_variant, e);
    if (rc) return rc;
    /* The fp16 path: DiT and text-encoder images become f16 as they are read
     * (resident, pinned or from the store on every use); the VAE keeps bf16. */
    p->precision = o->precision;
    zt_ops_set_f16_guard(p->ops, !o->f16_unguarded);
    if (o->precision == ZT_DT_F16) {
        const unsigned f16_comps = (1u << ZT_COMP_DIT) | (1u << ZT_COMP_TEXT);
        zt_source_set_f16(p->src, f16_comps);
        if (p->store) zt_source_set_f16(p->store, f16_comps);
    }
    uint64_t fr = 0, tot = 0;
    zt_ops_mem_info(p->ops, &fr, &tot);
    p->device_total = tot;
    p->context_measured = tot - fr;
    /* the plan's link rate: measured here unless given (64 MiB pinned copies,
     * ~10 ms; the buffers are gone before the plan's allocations) */
    if (o->link_bw <= 0 && !o->context_override && o->vram_budget) p->link_bw_measured = zt_ops_measure_h2d(p->ops, 64u << 20);
    rc = zt_qwen3_init(&p->te, p->cat, e);
    if (!rc) rc = zt_dit_init(&p->dit, p->cat, e);
    if (!rc) rc = zt_vae_init(&p->vae, p->cat, e);
    if (!rc) rc = zt_vae_encoder_init(&p->venc, p->cat, e);
    if (!rc && p->cat->has_control) {
        rc = zt_control_init(&p->ctl, p->cat, e);
        p->has_control = !rc;
    }
    if (!rc && o->precision == ZT_DT_F16) p->vae.attn16_dt = p->venc.attn16_dt = ZT_DT_F16;
    if (!rc) zt_vae_force_bands(&p->vae, o->vae_band_level, o->vae_band_rows);
    p->plan_images = o->plan_images || o->control_path;
    return rc;
}

/* Encoder threads for coding at load: every core (at most 16). */
static int coding_threads(const zt_pipeline_opts *o) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (o->backend == ZT_BACKEND_CPU && o->cpu_threads > 0) n = o->cpu_threads;
    return (int)(n < 1 ? 1 : n > 16 ? 16 : n);
}

int zt_pipeline_make_plan(const char *model_path, const zt_pipeline_opts *o, zt_plan *plan, zt_plan_input *in,
                          size_t *vae_host_bytes, zt_err *e) {
    zt_pipeline *p = calloc(1, sizeof *p);
    if (!p) return zt_err_set(e, ZT_ERR_NOMEM, "pipeline: out of host memory");
    int rc = pipeline_prepare(model_path, o, p, e);
    if (!rc) rc = build_plan(p, o, plan, in, e);
    if (!rc && vae_host_bytes) *vae_host_bytes = p->vae_host_bytes;
    zt_pipeline_close(p);
    return rc;
}

/* Load progress: the sources' read hooks (maybe on several loader threads)
 * add up here and reach the caller one call at a time. */
typedef struct {
    pthread_mutex_t mu;
    uint64_t done, total;
    const zt_pipeline_opts *o;
} load_progress;

static void on_unit_read(void *ctx, uint64_t bytes) {
    load_progress *lp = ctx;
    pthread_mutex_lock(&lp->mu);
    lp->done += bytes;
    lp->o->on_load(lp->o->load_user, lp->done, lp->total);
    pthread_mutex_unlock(&lp->mu);
}

/* Bytes zt_pipeline_open reads from the sources: every unit the device
 * holds, and with a plan those kept in pinned memory (the rest is read
 * from the store when used). */
static uint64_t load_bytes(const zt_pipeline *p, const zt_plan *plan) {
    uint64_t t = 0;
    for (int i = 0; i < p->cat->n_units; i++) {
        const zt_unit_desc *u = &p->cat->units[i];
        if (!plan) t += u->host_only ? 0 : u->nbytes;
        else {
            const zt_plan_unit_choice *c = &plan->units[i];
            if (c->residency == ZT_RES_RESIDENT ||
                ((c->residency == ZT_RES_STREAMED || c->residency == ZT_RES_LENT) && c->tier == ZT_TIER_PINNED))
                t += u->nbytes;
        }
    }
    return t;
}

static void load_hooks(zt_pipeline *p, load_progress *lp) {
    zt_source_set_read_hook(p->src, lp ? on_unit_read : NULL, lp);
    if (p->store) zt_source_set_read_hook(p->store, lp ? on_unit_read : NULL, lp);
}

static int merge_in_place(zt_pipeline *p, int u, zt_err *e);

/* The weights' side of opening: coded images (a coded store's sizes, or the
 * units coded now, once, as the sources read them: LoRA merges included),
 * the plan, the stream. Without a budget everything is resident: a snapshot
 * is not coded then, a coded store's units are decoded on the device as they
 * load. With a store, units the LoRA set changes move as bf16 (the store's
 * coded extents are the unmerged weights). Also a LoRA switch's rebuild. */
static int open_weights(zt_pipeline *p, const zt_pipeline_opts *o, load_progress *lp, zt_err *e) {
    int rc = ZT_OK;
    if (lp && !o->on_load) lp = NULL;
    if (o->weights_coded && (o->vram_budget || weights_store(p))) {
        if (lp) { /* coding reads every unit once; the stream then loads from the coded images */
            lp->total = load_bytes(p, NULL);
            load_hooks(p, lp);
        }
        const zt_lora_set *ls = zt_lora_merger_set(p->lora);
        uint8_t *keep = calloc((size_t)p->cat->n_units, 1);
        if (!keep) return zt_err_set(e, ZT_ERR_NOMEM, "pipeline: out of host memory");
        for (int u = 0; ls && u < p->cat->n_units; u++) keep[u] = ls->unit_count[u] > 0;
        const double tc = zt_now();
        rc = zt_coded_host_open(p->cat, p->src, p->store, keep, coding_threads(o), NULL, NULL, &p->coded_host, e);
        free(keep);
        if (rc) return rc;
        p->code_s = zt_now() - tc;
    }
    /* One provider: with no budget the plan keeps every unit resident. */
    zt_plan_input in;
    rc = build_plan(p, o, &p->plan, &in, e);
    if (rc) return rc;
    if (lp && !p->coded_host) {
        lp->total = load_bytes(p, &p->plan);
        load_hooks(p, lp);
    }
    if (!o->vram_budget) p->vae_host_bytes = 0; /* activations per image; a banded decode's host memory on first use */
    zt_stream_options so;
    zt_stream_options_default(&so);
    so.throttle_bw = o->throttle_bw;
    so.host_scratch_bytes = p->vae_host_bytes;
    so.copy_streams = o->copy_streams;
    so.io_engine = o->io_engine;
    so.coded_host = p->coded_host;
    rc = zt_units_stream_open(p->ops, p->src, p->store, &p->plan, &so, &p->units, &p->stream, e);
    if (rc) return rc;
    p->weight_bytes = p->plan.resident_bytes + p->plan.window_bytes + p->plan.cstage_bytes;
    if (o->vram_budget) {
        p->streaming = 1;
        p->vae_host = zt_stream_host_scratch(p->stream);
        p->plan_width = o->plan_width;
        p->plan_height = o->plan_height;
    }
    return ZT_OK;
}

int zt_pipeline_open(const char *model_path, const zt_pipeline_opts *o, zt_pipeline **out, zt_err *e) {
    double t0 = zt_now();
    load_progress lp = {PTHREAD_MUTEX_INITIALIZER, 0, 0, o};
    zt_pipeline *p = calloc(1, sizeof *p);
    if (!p) return zt_err_set(e, ZT_ERR_NOMEM, "pipeline: out of host memory");
    int rc = pipeline_prepare(model_path, o, p, e);
    if (rc) goto fail;
    { /* LoRAs: every file checked before any weight is read; a merger even without (a later
       * zt_pipeline_set_loras merges into the same sources) */
        zt_lora_set *set = NULL;
        if (o->n_loras) rc = zt_lora_set_open(p->cat, o->loras, o->n_loras, &set, e);
        if (!rc) rc = zt_lora_merger_create(set, o->cpu_threads, &p->lora, e);
        if (rc) goto fail;
    }
    /* The tokenizer: given explicitly, or the model's own (a snapshot's
     * tokenizer/tokenizer.json, the copy in a store). */
    if (o->tokenizer_path) {
        rc = zt_tokenizer_load(o->tokenizer_path, &p->tok, e);
        if (rc) goto fail;
    } else {
        void *json = NULL;
        uint64_t len = 0;
        zt_err fe = {0};
        int frc = zt_source_read_file(p->src, ZT_STORE_FILE_TOKENIZER, &json, &len, &fe);
        if (!frc) {
            char name[4200];
            snprintf(name, sizeof name, "%s%s%s", model_path, zt_source_kind_of(p->src) == ZT_SOURCE_STORE ? ":" : "/",
                     ZT_STORE_FILE_TOKENIZER);
            rc = zt_tokenizer_load_mem(json, (size_t)len, name, &p->tok, e);
            free(json);
            if (rc) goto fail;
        } else if (frc != ZT_ERR_MISSING) {
            *e = fe;
            rc = frc;
            goto fail;
        }
    }
    if (!p->tok && o->need_tokenizer) { /* before the weights load */
        rc = zt_pipeline_no_tokenizer(p, e);
        goto fail;
    }
    p->opts = *o;
    p->opts.loras = NULL; /* the caller's; the merger holds the set */
    p->opts.n_loras = 0;
    if (o->vram_budget) { /* under a budget: LoRAs merged on the host as each unit image is read */
        zt_source *w = NULL;
        const int store_is_model = p->store == p->src; /* -m STORE: one source, wrapped once */
        rc = zt_source_transform(p->src, zt_lora_transform, p->lora, NULL, &w, e);
        if (rc) goto fail;
        p->src = w;
        if (store_is_model) {
            p->store = w;
        } else if (p->store) {
            rc = zt_source_transform(p->store, zt_lora_transform, p->lora, NULL, &w, e);
            if (rc) goto fail;
            p->store = w;
        }
    }
    rc = open_weights(p, o, &lp, e);
    if (rc) goto fail;
    if (!o->vram_budget) { /* everything resident: LoRAs merged in place, on the device with CUDA */
        p->lora_in_place = 1;
        const zt_lora_set *ls = zt_lora_merger_set(p->lora);
        for (int u = 0; ls && u < p->cat->n_units && !rc; u++)
            if (ls->unit_count[u]) rc = merge_in_place(p, u, e);
        zt_lora_merger_free_device(p->lora); /* the factors' device buffer is not needed until a switch */
        if (rc) goto fail;
    }
    p->load_s = zt_now() - t0;
    load_hooks(p, NULL);
    *out = p;
    return ZT_OK;
fail:
    if (p->src) load_hooks(p, NULL);
    zt_pipeline_close(p);
    return rc;
}


/* The LoRA patches of unit u into its resident image (device memory with CUDA). */
static int merge_in_place(zt_pipeline *p, int u, zt_err *e) {
    void *img = (void *)zt_units_acquire(p->units, u);
    int rc = img ? zt_lora_merge_unit(p->lora, p->ops, u, img, e) : zt_units_fail(p->units, e);
    if (img) zt_units_release(p->units, u);
    return rc;
}

int zt_pipeline_set_loras(zt_pipeline *p, const zt_lora_spec *specs, int n, zt_err *e) {
    if (p->lora_broken)
        return zt_err_set(e, ZT_ERR_INTERNAL, "the weights are in an unknown state after a failed LoRA switch");
    zt_lora_set *set = NULL;
    int rc = n ? zt_lora_set_open(p->cat, specs, n, &set, e) : ZT_OK;
    if (rc) return rc; /* nothing changed */
    const zt_lora_set *old = zt_lora_merger_set(p->lora);
    const int nu = p->cat->n_units;
    char *changed = calloc((size_t)nu, 1);
    if (!changed) {
        zt_lora_set_close(set);
        return zt_err_set(e, ZT_ERR_NOMEM, "pipeline: out of host memory");
    }
    for (int u = 0; u < nu; u++) changed[u] = !p->cat->units[u].host_only && !zt_lora_unit_same(old, set, u);
    zt_lora_merger_replace(p->lora, set); /* from here the sources' transform merges the new set */
    int rebuild = 0; /* a changed unit held coded: its coded image (and size) changes, so the weights are
                      * coded, planned and loaded again (a store serves those units bf16 from now on) */
    for (int u = 0; u < nu && p->coded_host; u++) rebuild |= changed[u] && p->plan.units[u].coded;
    if (rebuild) {
        zt_units_destroy(p->units);
        p->units = NULL;
        p->stream = NULL;
        if (!p->vae_host_owned) p->vae_host = NULL;
        zt_coded_host_close(p->coded_host);
        p->coded_host = NULL;
        zt_plan_free(&p->plan);
        rc = open_weights(p, &p->opts, NULL, e);
        /* under a budget the sources merged the new set as they were read; without one it merges in place */
        for (int u = 0; u < nu && !rc; u++)
            if (p->lora_in_place && set && set->unit_count[u]) rc = merge_in_place(p, u, e);
        for (int u = 0; u < nu; u++) changed[u] = 0;
    }
    for (int u = 0; u < nu && !rc; u++) {
        if (!changed[u]) continue;
        rc = zt_stream_reload_unit(p->stream, u, e); /* under a budget: merged as it is read */
        if (!rc && p->lora_in_place) rc = merge_in_place(p, u, e);
    }
    free(changed);
    zt_lora_merger_free_device(p->lora);
    if (rc) p->lora_broken = 1;
    return rc;
}

void zt_pipeline_latent_shape(const zt_pipeline *p, int width, int height, int *c, int *h, int *w) {
    const zt_model_config *cfg = &p->cat->cfg;
    *c = cfg->vae_latent;
    *h = height / vae_factor(cfg);
    *w = width / vae_factor(cfg);
}

/* ---- dump helpers (host copies of backend tensors) ------------------------------- */

typedef struct {
    zt_stf f;
    zt_ops *ops;
    int on;
    int rc;
    zt_err err;
} dumper;

static void dump_host(dumper *d, const char *name, const char *dtype, int ndim, const int64_t *shape, const void *data,
                      size_t nbytes) {
    if (!d->on || d->rc) return;
    d->rc = zt_stf_add(&d->f, name, dtype, ndim, shape, data, nbytes, &d->err);
}

/* Backend tensor of dtype dt (f32, bf16 or f16) -> F32 tensor in the dump. */
static void dump_dev(dumper *d, const char *name, int ndim, const int64_t *shape, const void *dev, zt_dtype dt) {
    if (!d->on || d->rc) return;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *h = malloc(n * sizeof *h);
    if (!h) {
        d->rc = zt_err_set(&d->err, ZT_ERR_NOMEM, "--dump: out of host memory");
        return;
    }
    if (dt == ZT_DT_F32) {
        zt_mem_download(d->ops, h, dev, n * 4);
    } else {
        uint16_t *b = malloc(n * 2);
        if (!b) {
            free(h);
            d->rc = zt_err_set(&d->err, ZT_ERR_NOMEM, "--dump: out of host memory");
            return;
        }
        zt_mem_download(d->ops, b, dev, n * 2);
        for (size_t i = 0; i < n; i++) h[i] = dt == ZT_DT_F16 ? zt_f16_to_f32(b[i]) : zt_bf16_to_f32(b[i]);
        free(b);
    }
    dump_host(d, name, "F32", ndim, shape, h, n * 4);
    free(h);
}

/* The end of a --dump: the decoded image (NHWC -> CHW f32), the RGB8 image,
 * the schedule and the metadata, then the file. */
static int dump_finish(dumper *dd, zt_pipeline *p, const zt_gen_params *gp, const zt_schedule *sch, const void *decoded,
                       const uint8_t *rgb, int ctl, int tstart, int nrun, zt_err *e) {
    const size_t npix = (size_t)gp->width * gp->height;
    /* decoded: NHWC [H*W, 3] -> CHW [3, H, W] f32 */
    int64_t dsh[3] = {(int64_t)npix, 3, 0};
    dump_dev(dd, "decoded_nhwc", 2, dsh, decoded, gp->vae_dt);
    if (!dd->rc) {
        zt_stf_tensor *tn = &dd->f.t[dd->f.n - 1];
        float *nhwc = tn->data, *chw = malloc(npix * 3 * sizeof *chw);
        if (!chw) return zt_err_set(e, ZT_ERR_NOMEM, "--dump: out of host memory");
        for (size_t px = 0; px < npix; px++)
            for (int ch = 0; ch < 3; ch++) chw[(size_t)ch * npix + px] = nhwc[px * 3 + ch];
        free(tn->data);
        free(tn->name);
        tn->data = chw;
        tn->name = strdup("decoded");
        tn->ndim = 3;
        tn->shape[0] = 3;
        tn->shape[1] = gp->height;
        tn->shape[2] = gp->width;
        if (!tn->name) dd->rc = zt_err_set(&dd->err, ZT_ERR_NOMEM, "--dump: out of host memory");
    }
    int64_t ish[3] = {gp->height, gp->width, 3};
    dump_host(dd, "image", "U8", 3, ish, rgb, npix * 3);
    int64_t n1 = gp->steps + 1, n0 = gp->steps, nr = nrun;
    dump_host(dd, "sigmas", "F32", 1, &n1, sch->sigma, (size_t)n1 * 4);
    dump_host(dd, "timesteps", "F32", 1, &n0, sch->timestep, (size_t)n0 * 4);
    dump_host(dd, "t_model", "F32", 1, &nr, sch->t_model + tstart, (size_t)nr * 4); /* the evaluations' */
    if (!dd->rc) {
        char v[64];
        zt_stf *f = &dd->f;
        snprintf(v, sizeof v, "%d", gp->height);
        zt_stf_meta(f, "height", v, NULL);
        snprintf(v, sizeof v, "%d", gp->width);
        zt_stf_meta(f, "width", v, NULL);
        snprintf(v, sizeof v, "%d", gp->steps);
        zt_stf_meta(f, "steps", v, NULL);
        zt_stf_meta(f, "precision", gp->dt == ZT_DT_F32 ? "f32" : gp->dt == ZT_DT_F16 ? "fp16" : "bf16", NULL);
        zt_stf_meta(f, "vae_precision", gp->vae_dt == ZT_DT_F32 ? "f32" : "bf16", NULL);
        zt_stf_meta(f, "device", zt_ops_backend(p->ops) == ZT_BACKEND_CUDA ? "cuda" : "cpu", NULL);
        zt_stf_meta(f, "producer", "zturbo", NULL);
        if (ctl) {
            zt_stf_meta(f, "mode", gp->mask ? "control_inpaint" : "control", NULL);
            snprintf(v, sizeof v, "%.9g", (double)gp->control_scale);
            zt_stf_meta(f, "control_scale", v, NULL);
        } else if (gp->init_image) {
            snprintf(v, sizeof v, "%d", tstart);
            zt_stf_meta(f, "t_start", v, NULL);
            snprintf(v, sizeof v, "%.17g", gp->strength);
            zt_stf_meta(f, "strength", v, NULL);
            zt_stf_meta(f, "mode", gp->mask ? "inpaint" : "img2img", NULL);
        }
        if (gp->prompt) zt_stf_meta(f, "prompt", gp->prompt, NULL);
        if (!gp->noise) {
            snprintf(v, sizeof v, "%llu", (unsigned long long)gp->seed);
            zt_stf_meta(f, "seed", v, NULL);
            zt_stf_meta(f, "rng", zt_rng_name(gp->rng), NULL);
        }
        dd->rc = zt_stf_save(f, gp->dump_path, &dd->err);
    }
    if (dd->rc) *e = dd->err;
    return dd->rc;
}

/* ---- generate ------------------------------------------------------------------ */

typedef struct {
    void *hidden;       /* [L, te_hidden] dt: embeddings -> caption features */
    float *lat;         /* [C, hl, wl] f32 sampler state */
    float *out;         /* [C, hl, wl] f32 model output */
    void *dit_state;
    void *decoded;      /* [H*W, 3] vae_dt */
    uint8_t *rgb;       /* [H*W*3] */
    /* images in (0 bytes otherwise) */
    float *img;         /* [3, H, W] f32: the image the encoder reads */
    float *img_lat;     /* [C, hl, wl] f32: its latents */
    float *noise;       /* [C, hl, wl] f32: the initial noise (inpainting mixes it in again each step) */
    float *eps;         /* [C, hl, wl] f32: the posterior sample's noise */
    float *mask;        /* [hl * wl] f32: the mask at latent resolution (inpainting) */
    float *cimg;        /* [3, H, W] f32: the control image (ControlNet) */
    float *ctl_lat;     /* [control_in_dim, hl, wl] f32: the control context's latents */
    void *ctl_state, *ctl_scratch;
    size_t ctl_state_bytes, ctl_scratch_bytes;
    void *scratch;
    size_t dit_state_bytes, scratch_bytes;
} gen_mem;

static int gen_control(const zt_pipeline *p, const zt_gen_params *gp) {
    return p->has_control && (gp->control_image || gp->plan_control);
}
static int gen_images(const zt_gen_params *gp) { return gp->init_image || gp->plan_images || gp->control_image; }

/* Scratch of the text encoder and the transformer (the VAE's is capped to it
 * when the plan makes the VAE banded). */
static size_t scratch_but_vae(zt_pipeline *p, const zt_gen_params *gp, int L) {
    const zt_model_config *c = &p->cat->cfg;
    size_t s = zt_qwen3_workspace_size(&p->te, p->ops, L, gp->dt);
    s = ZT_MAX(s, (size_t)L * c->te_hidden * 2); /* bf16 embedding rows before the f32 upcast */
    return ZT_MAX(s, zt_dit_scratch_size(&p->dit, p->ops, gp->width, gp->height, L, gp->steps, gp->dt));
}

static void gen_layout(zt_pipeline *p, const zt_gen_params *gp, int L, zt_carve *cv, gen_mem *m) {
    const zt_model_config *c = &p->cat->cfg;
    const size_t es = zt_dtype_size(zt_prec_of(NULL, gp->dt).resid); /* the text encoder's residual stream */
    const int hl = gp->height / vae_factor(c), wl = gp->width / vae_factor(c);
    const size_t nlat = (size_t)c->vae_latent * hl * wl, npix = (size_t)gp->width * gp->height;
    m->hidden = zt_carve_take(cv, (size_t)L * c->te_hidden * es);
    m->lat = zt_carve_take(cv, nlat * 4);
    m->out = zt_carve_take(cv, nlat * 4);
    m->dit_state_bytes = zt_dit_state_size(&p->dit, gp->width, gp->height, L, gp->steps, gp->dt);
    m->dit_state = zt_carve_take(cv, m->dit_state_bytes);
    m->decoded = zt_carve_take(cv, npix * 3 * zt_dtype_size(gp->vae_dt));
    m->rgb = zt_carve_take(cv, npix * 3);
    const int im = gen_images(gp);
    m->img = zt_carve_take(cv, im ? npix * 3 * 4 : 0);
    m->img_lat = zt_carve_take(cv, im ? nlat * 4 : 0);
    m->noise = zt_carve_take(cv, im ? nlat * 4 : 0);
    m->eps = zt_carve_take(cv, im ? nlat * 4 : 0);
    m->mask = zt_carve_take(cv, im ? (size_t)hl * wl * 4 : 0);
    const int ctl = gen_control(p, gp);
    m->cimg = zt_carve_take(cv, ctl ? npix * 3 * 4 : 0);
    m->ctl_lat = zt_carve_take(cv, ctl ? (size_t)p->cat->control.in_dim * hl * wl * 4 : 0);
    m->ctl_state_bytes = ctl ? zt_control_state_size(&p->ctl, &p->dit, gp->width, gp->height, L, gp->steps, gp->dt) : 0;
    m->ctl_state = zt_carve_take(cv, m->ctl_state_bytes);
    m->ctl_scratch_bytes = ctl ? zt_control_scratch_size(&p->ctl, &p->dit, gp->width, gp->height, L, gp->steps, gp->dt) : 0;
    m->ctl_scratch = zt_carve_take(cv, m->ctl_scratch_bytes);
    size_t s = scratch_but_vae(p, gp, L);
    s = ZT_MAX(s, zt_vae_workspace_size(&p->vae, p->ops, hl, wl, gp->vae_dt, p->vae_cap));
    if (im) s = ZT_MAX(s, zt_vae_encode_workspace_size(&p->venc, p->ops, gp->height, gp->width, gp->vae_dt));
    m->scratch_bytes = s;
    m->scratch = zt_carve_take(cv, s);
}

/* Workspace bytes the denoising loop touches: everything carved before the
 * scratch plus the text encoder's / transformer's part of it. What lies
 * beyond is only the whole-image VAE's (zt_plan_input.lend_bytes). */
static size_t dit_front_bytes(zt_pipeline *p, const zt_gen_params *gp, int L) {
    zt_carve cv = zt_carve_init(NULL, 0);
    gen_mem m;
    gen_layout(p, gp, L, &cv, &m); /* the scratch is the last piece */
    return cv.used - ZT_ALIGN_UP(m.scratch_bytes, ZT_CARVE_ALIGN) + scratch_but_vae(p, gp, L);
}

/* Where the Qwen3 tokenizer comes from (ComfyUI files and old stores lack it). */
#define TOKENIZER_SOURCE                                                                                         \
    "tokenizer/tokenizer.json of Tongyi-MAI/Z-Image-Turbo on Hugging Face "                                     \
    "(https://huggingface.co/Tongyi-MAI/Z-Image-Turbo/resolve/main/tokenizer/tokenizer.json)"

int zt_pipeline_no_tokenizer(const zt_pipeline *p, zt_err *e) {
    const char *m = zt_source_path(p->src);
    switch (zt_source_kind_of(p->src)) {
    case ZT_SOURCE_COMFY:
        return zt_err_set(e, ZT_ERR_MISSING,
                          "no tokenizer: ComfyUI files carry none; give --tokenizer FILE with the Qwen3 tokenizer, "
                          TOKENIZER_SOURCE);
    case ZT_SOURCE_STORE:
        return zt_err_set(e, ZT_ERR_MISSING,
                          "no tokenizer: the store %s holds none (packed from ComfyUI files or by an older zturbo); "
                          "give --tokenizer FILE, or repack it with `zturbo pack %s -o NEW.zts --tokenizer FILE`; the "
                          "file is " TOKENIZER_SOURCE,
                          m, m);
    default:
        return zt_err_set(e, ZT_ERR_MISSING,
                          "no tokenizer: %s has no tokenizer/tokenizer.json; give --tokenizer FILE, the " TOKENIZER_SOURCE,
                          m);
    }
}

int zt_pipeline_tokenize(zt_pipeline *p, const char *prompt, int32_t *ids, int cap, int *n, int *truncated, zt_err *e) {
    *n = 0;
    *truncated = 0;
    if (!p->tok) return zt_pipeline_no_tokenizer(p, e);
    size_t got = 0;
    int rc = zt_tokenizer_encode_chat(p->tok, prompt, strlen(prompt), ZT_MAX_TOKENS, ids, (size_t)cap, &got,
                                      truncated, e);
    if (rc) return rc;
    *n = (int)got;
    return ZT_OK;
}

size_t zt_pipeline_activation_bytes(zt_pipeline *p, const zt_gen_params *gp, int cap_len) {
    zt_carve cv = zt_carve_init(NULL, 0);
    gen_mem m;
    gen_layout(p, gp, cap_len, &cv, &m);
    return cv.used;
}

static int check_cancel(const zt_gen_params *gp, const char *where, zt_err *e) {
    if (gp->cancel && *gp->cancel) return zt_err_set(e, ZT_ERR_INTERRUPTED, "interrupted %s", where);
    return ZT_OK;
}

/* Device bytes in use right now (context included), kept as a peak. */
static void note_device_use(zt_pipeline *p, zt_gen_stats *st) {
    uint64_t fr = 0, tot = 0;
    zt_ops_mem_info(p->ops, &fr, &tot);
    if (tot && tot - fr > st->device_used_peak) st->device_used_peak = tot - fr;
}

/* ---- images in (img2img, inpainting) -------------------------------------------- */

/* diffusers' get_timesteps: the first step of an img2img schedule, in the
 * same double arithmetic as the Python floats. */
static int images_start_step(int steps, double strength) {
    double init = steps * strength;
    if (init > steps) init = steps;
    const double t = steps - init;
    return (int)(t > 0 ? t : 0);
}

static int control_check(const zt_pipeline *p, const zt_gen_params *gp, zt_err *e);

int zt_pipeline_images_ready(const zt_pipeline *p, zt_err *e) {
    if (p->venc.unit < 0)
        return zt_err_set(e, ZT_ERR_MISSING, "this model has no VAE encoder (encoder.* tensors; a store packed before "
                                             "zturbo encoded images has none: re-pack it)");
    if (p->streaming && !p->plan_images)
        return zt_err_set(e, ZT_ERR_ARG, "the streaming plan was made without image inputs (the VAE encoder's "
                                         "workspace): plan for them (zturbo_options.images_in)");
    return ZT_OK;
}

static int images_check(const zt_pipeline *p, const zt_gen_params *gp, zt_err *e) {
    if (!gp->init_image && gp->mask) return zt_err_set(e, ZT_ERR_ARG, "a mask needs an init image (inpainting)");
    if (gp->control_image) return control_check(p, gp, e);
    if (!gp->init_image) return ZT_OK;
    if (!(gp->strength > 0 && gp->strength <= 1))
        return zt_err_set(e, ZT_ERR_RANGE, "strength %g outside (0, 1]", gp->strength);
    int rc = zt_pipeline_images_ready(p, e);
    if (rc) return zt_err_prefix(e, "init image");
    if (gp->steps - images_start_step(gp->steps, gp->strength) < 1)
        return zt_err_set(e, ZT_ERR_RANGE, "strength %g with %d steps leaves no step to run", gp->strength, gp->steps);
    return ZT_OK;
}

/* The latent mask: torch's nearest interpolation from H x W to hl x wl
 * (an integer factor f: pixel (f*i, f*j)). */
static void images_latent_mask(const float *mask, int W, int hl, int wl, int f, float *out) {
    for (int i = 0; i < hl; i++)
        for (int j = 0; j < wl; j++) out[(size_t)i * wl + j] = mask[(size_t)i * f * W + (size_t)j * f];
}

/* Encode the init image (the VAE encoder's phase) and make the first latent
 * scale_noise(image latents, sigma[t_start], noise) in m->lat; the noise
 * (host, [nlat]) stays in m->noise for the inpainting re-mix. */
static int images_begin(zt_pipeline *p, const zt_gen_params *gp, gen_mem *m, const zt_schedule *sch, int t_start,
                        const float *noise, const float *en, dumper *dd, zt_err *e) {
    const zt_model_config *c = &p->cat->cfg;
    const int f = vae_factor(c), hl = gp->height / f, wl = gp->width / f, C = c->vae_latent;
    const size_t nlat = (size_t)C * hl * wl, npix = (size_t)gp->width * gp->height;
    float *ml = malloc((size_t)hl * wl * sizeof *ml);
    int *order = malloc((size_t)p->cat->n_units * sizeof *order);
    if (!ml || !order) {
        free(ml);
        free(order);
        return zt_err_set(e, ZT_ERR_NOMEM, "pipeline: out of host memory");
    }
    zt_mem_upload(p->ops, m->noise, noise, nlat * 4);
    zt_mem_upload(p->ops, m->eps, en, nlat * 4);
    zt_mem_upload(p->ops, m->img, gp->init_image, npix * 3 * 4);
    if (gp->mask) {
        images_latent_mask(gp->mask, gp->width, hl, wl, f, ml);
        zt_mem_upload(p->ops, m->mask, ml, (size_t)hl * wl * 4);
    }
    const int n_order = zt_vae_encoder_unit_order(&p->venc, order, p->cat->n_units);
    int rc = zt_units_begin_phase(p->units, order, n_order, 1, e);
    if (!rc)
        rc = zt_vae_encode(&p->venc, p->ops, p->units, gp->height, gp->width, m->img, m->eps, gp->vae_dt, m->img_lat,
                           m->scratch, m->scratch_bytes, e);
    if (!rc) rc = zt_units_end_phase(p->units, e);
    if (!rc) {
        zt_op_flow_mix(p->ops, C, (size_t)hl * wl, m->img_lat, m->noise, sch->sigma[t_start], NULL, m->lat);
        zt_ops_sync(p->ops);
        int64_t sh[3] = {C, hl, wl};
        dump_host(dd, "encode_noise", "F32", 3, sh, en, nlat * 4);
        dump_dev(dd, "image_latents", 3, sh, m->img_lat, ZT_DT_F32);
        dump_dev(dd, "init_latents", 3, sh, m->lat, ZT_DT_F32);
        if (gp->mask) dump_host(dd, "mask_latent", "F32", 2, sh + 1, ml, (size_t)hl * wl * 4);
    }
    free(ml);
    free(order);
    return rc;
}

/* ---- ControlNet (ZImageControlNetPipeline, ZImageControlNetInpaintPipeline) ---------- */

static int control_check(const zt_pipeline *p, const zt_gen_params *gp, zt_err *e) {
    const int C = p->cat->cfg.vae_latent;
    if (!p->has_control)
        return zt_err_set(e, ZT_ERR_ARG, "a control image needs a ControlNet: open the model with one (--control-model)");
    if (p->venc.unit < 0)
        return zt_err_set(e, ZT_ERR_MISSING, "control image: this model has no VAE encoder (encoder.* tensors)");
    if (gp->init_image && !gp->mask)
        return zt_err_set(e, ZT_ERR_ARG, "a control image with an init image needs a mask (ControlNet inpainting, "
                                         "ZImageControlNetInpaintPipeline); diffusers has no ControlNet img2img");
    const int in_dim = p->cat->control.in_dim;
    if (in_dim < C)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "control model: control_in_dim %d below the %d latent channels", in_dim, C);
    if (gp->mask && in_dim != 2 * C + 1)
        return zt_err_set(e, ZT_ERR_ARG, "ControlNet inpainting needs a control model with %d input channels "
                                         "(control, mask, masked image: Union 2.x); this one has %d (Union 1.0)",
                          2 * C + 1, in_dim);
    if (!(gp->control_scale > -1e6f && gp->control_scale < 1e6f))
        return zt_err_set(e, ZT_ERR_RANGE, "control scale %g not allowed", (double)gp->control_scale);
    return ZT_OK;
}

/* One VAE encoder phase: img (backend f32 [3, H, W]) -> argmax latents (z - shift) * scale at out. */
static int control_encode(zt_pipeline *p, const zt_gen_params *gp, gen_mem *m, const float *img, float *out, int *order,
                          zt_err *e) {
    const int n_order = zt_vae_encoder_unit_order(&p->venc, order, p->cat->n_units);
    int rc = zt_units_begin_phase(p->units, order, n_order, 1, e);
    if (!rc)
        rc = zt_vae_encode(&p->venc, p->ops, p->units, gp->height, gp->width, img, NULL, gp->vae_dt, out, m->scratch,
                           m->scratch_bytes, e);
    if (!rc) rc = zt_units_end_phase(p->units, e);
    return rc;
}

/* The control context's latents in m->ctl_lat [in_dim, hl, wl]: the control
 * image encoded, then either zeros (ZImageControlNetPipeline pads to
 * control_in_dim) or, with a mask, 1 - mask at latent size (nearest) and the
 * encoded init image * (mask < 0.5) (ZImageControlNetInpaintPipeline). */
static int control_images(zt_pipeline *p, const zt_gen_params *gp, gen_mem *m, dumper *dd, zt_err *e) {
    const zt_model_config *c = &p->cat->cfg;
    const int f = vae_factor(c), hl = gp->height / f, wl = gp->width / f, C = c->vae_latent;
    const int in_dim = p->cat->control.in_dim;
    const size_t plane = (size_t)hl * wl, npix = (size_t)gp->width * gp->height;
    int *order = malloc((size_t)p->cat->n_units * sizeof *order);
    float *host = gp->mask ? malloc(ZT_MAX(npix * 3, plane) * sizeof *host) : NULL;
    if (!order || (gp->mask && !host)) {
        free(order);
        free(host);
        return zt_err_set(e, ZT_ERR_NOMEM, "pipeline: out of host memory");
    }
    zt_mem_upload(p->ops, m->cimg, gp->control_image, npix * 3 * 4);
    int rc = control_encode(p, gp, m, m->cimg, m->ctl_lat, order, e);
    if (!rc && gp->mask) {
        for (size_t ch = 0; ch < 3; ch++) /* the image where the mask keeps it */
            for (size_t i = 0; i < npix; i++)
                host[ch * npix + i] = gp->mask[i] < 0.5f ? gp->init_image[ch * npix + i] : 0.0f;
        zt_mem_upload(p->ops, m->img, host, npix * 3 * 4);
        zt_ops_sync(p->ops);
        rc = control_encode(p, gp, m, m->img, m->ctl_lat + (size_t)(C + 1) * plane, order, e);
        if (!rc) {
            images_latent_mask(gp->mask, gp->width, hl, wl, f, host);
            for (size_t i = 0; i < plane; i++) host[i] = 1.0f - host[i];
            zt_mem_upload(p->ops, m->ctl_lat + (size_t)C * plane, host, plane * 4);
        }
    } else if (!rc && in_dim > C) {
        zt_mem_fill_u8(p->ops, m->ctl_lat + (size_t)C * plane, 0, (size_t)(in_dim - C) * plane * 4);
    }
    if (!rc) {
        zt_ops_sync(p->ops);
        int64_t sh[3] = {in_dim, hl, wl};
        dump_dev(dd, "control_latents", 3, sh, m->ctl_lat, ZT_DT_F32);
    }
    free(order);
    free(host);
    return rc;
}

int zt_pipeline_generate_ids(zt_pipeline *p, const int32_t *ids, int n_ids, const zt_gen_params *gp, uint8_t *rgb,
                             zt_gen_stats *st, zt_err *e) {
    const double t0 = zt_now();
    const zt_model_config *c = &p->cat->cfg;
    zt_gen_stats stats;
    memset(&stats, 0, sizeof stats);
    if (n_ids < 1) return zt_err_set(e, ZT_ERR_RANGE, "prompt: no tokens");
    if (p->lora_broken)
        return zt_err_set(e, ZT_ERR_INTERNAL, "the weights are in an unknown state after a failed LoRA switch: "
                                              "create the context again");
    const int L = n_ids < ZT_MAX_TOKENS ? n_ids : ZT_MAX_TOKENS;
    if (gp->dt != ZT_DT_BF16 && gp->dt != ZT_DT_F32 && gp->dt != ZT_DT_F16)
        return zt_err_set(e, ZT_ERR_ARG, "precision %s not supported (bf16, f32 or f16)", zt_dtype_name(gp->dt));
    if ((gp->dt == ZT_DT_F16) != (p->precision == ZT_DT_F16))
        return zt_err_set(e, ZT_ERR_ARG, "precision %s: the weights were loaded for %s (open the model with the "
                          "precision you generate with)", zt_dtype_name(gp->dt),
                          p->precision == ZT_DT_F16 ? "f16" : "bf16/f32");
    if (gp->vae_dt != ZT_DT_BF16 && gp->vae_dt != ZT_DT_F32)
        return zt_err_set(e, ZT_ERR_ARG, "VAE precision %s not supported (bf16 or f32)", zt_dtype_name(gp->vae_dt));
    if (!zt_rng_name(gp->rng)) return zt_err_set(e, ZT_ERR_ARG, "rng %d not allowed: torch-cpu or zturbo", gp->rng);
    if (gp->dt == ZT_DT_F32 && zt_ops_backend(p->ops) != ZT_BACKEND_CPU)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED,
                          "precision f32 runs on the CPU backend only (the CUDA attention is bf16); use --device cpu");
    for (int i = 0; i < L; i++)
        if (ids[i] < 0 || ids[i] >= c->te_vocab)
            return zt_err_set(e, ZT_ERR_RANGE, "token id %d at position %d outside the vocabulary 0..%d", ids[i], i,
                              c->te_vocab - 1);
    int rc = zt_dit_check(c, gp->width, gp->height, L, e);
    if (!rc) rc = images_check(p, gp, e);
    if (rc) return rc;
    zt_schedule sch;
    rc = zt_schedule_build(gp->steps, c->sched_shift, c->sched_train_steps, c->sched_dynamic, &sch, e);
    if (rc) return rc;
    /* img2img / inpainting run the tail of the schedule from tstart (the ControlNet's inpainting: all of it) */
    const int i2i = gp->init_image && !gp->control_image, ctl = gp->control_image != NULL;
    const int tstart = i2i ? images_start_step(gp->steps, gp->strength) : 0, nrun = gp->steps - tstart;
    const int hl = gp->height / vae_factor(c), wl = gp->width / vae_factor(c), C = c->vae_latent;
    const size_t nlat = (size_t)C * hl * wl, npix = (size_t)gp->width * gp->height;

    /* One backend allocation for every activation of this image. */
    zt_carve cv = zt_carve_init(NULL, 0);
    gen_mem m;
    gen_layout(p, gp, L, &cv, &m);
    const size_t total = cv.used;
    void *mem = NULL;
    if (p->streaming) {
        /* The plan reserved the workspace: no device allocation after planning. */
        if (total > zt_stream_workspace_bytes(p->stream)) {
            char b1[32], b2[32];
            return zt_err_set(e, ZT_ERR_RANGE,
                              "%dx%d with %d tokens needs %s of activations but the plan reserved %s (it was made for "
                              "%dx%d): plan for the largest size you generate",
                              gp->width, gp->height, L, zt_fmt_bytes(total, b1, sizeof b1),
                              zt_fmt_bytes(zt_stream_workspace_bytes(p->stream), b2, sizeof b2), p->plan_width,
                              p->plan_height);
        }
        if (p->plan.n_lent && dit_front_bytes(p, gp, L) > p->plan.lent_offset)
            return zt_err_set(e, ZT_ERR_INTERNAL, "%dx%d with %d tokens: the denoising activations reach into the "
                              "lent transformer blocks (plan made for %dx%d)", gp->width, gp->height, L,
                              p->plan_width, p->plan_height);
        mem = zt_stream_workspace(p->stream);
    } else {
        mem = zt_mem_alloc(p->ops, total);
    }
    if (!mem) {
        char b[32];
        return zt_err_set(e, ZT_ERR_NOMEM, "activations: cannot allocate %s of %s memory for %dx%d",
                          zt_fmt_bytes(total, b, sizeof b),
                          zt_ops_backend(p->ops) == ZT_BACKEND_CUDA ? "device" : "host", gp->width, gp->height);
    }
    cv = zt_carve_init(mem, total);
    gen_layout(p, gp, L, &cv, &m);

    dumper dd;
    memset(&dd, 0, sizeof dd);
    dd.ops = p->ops;
    dd.on = gp->dump_path != NULL;
    float *host = NULL;    /* host staging: noise / latent, [nlat] */
    float *enc = NULL;     /* with an init image: the posterior sample's noise, [nlat] */
    uint16_t *rows = NULL; /* embedding rows, bf16 [L, te_hidden] */
    int *order = NULL;     /* unit use order of the current phase */
    int n_order;
    int64_t sh[3];

    /* ---- text encoder ---- */
    if ((rc = check_cancel(gp, "before the text encoder", e))) goto out;
    double t = zt_now();
    rows = malloc((size_t)L * c->te_hidden * 2);
    host = malloc(nlat * sizeof *host);
    order = malloc(2 * (size_t)p->cat->n_units * sizeof *order); /* a ControlNet's layers may run twice a step */
    enc = i2i ? malloc(nlat * sizeof *enc) : NULL;
    if (!rows || !host || !order || (i2i && !enc)) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "pipeline: out of host memory");
        goto out;
    }
    rc = zt_source_read_embed_rows(p->src, ids, L, rows, e);
    if (rc) goto out;
    /* the embedding rows in the weights' dtype (f16 on the fp16 path), then in
     * the text encoder's residual dtype */
    const zt_dtype te_rd = zt_prec_of(p->ops, gp->dt).resid, row_dt = gp->dt == ZT_DT_F16 ? ZT_DT_F16 : ZT_DT_BF16;
    if (row_dt == ZT_DT_F16)
        for (size_t i = 0; i < (size_t)L * c->te_hidden; i++) rows[i] = zt_bf16_to_f16(rows[i]);
    if (te_rd == row_dt) {
        zt_mem_upload(p->ops, m.hidden, rows, (size_t)L * c->te_hidden * 2);
    } else {
        zt_mem_upload(p->ops, m.scratch, rows, (size_t)L * c->te_hidden * 2);
        zt_op_convert(p->ops, (size_t)L * c->te_hidden, m.scratch, row_dt, m.hidden, te_rd);
    }
    zt_ops_sync(p->ops);
    n_order = zt_qwen3_unit_order(&p->te, order, p->cat->n_units);
    rc = zt_units_begin_phase(p->units, order, n_order, 1, e);
    if (!rc) rc = zt_qwen3_encode(&p->te, p->ops, p->units, L, m.hidden, gp->dt, m.scratch, m.scratch_bytes, e);
    if (!rc) rc = zt_units_end_phase(p->units, e);
    if (rc) goto out;
    zt_ops_sync(p->ops);
    note_device_use(p, &stats);
    stats.text_s = zt_now() - t;
    if (dd.on) {
        int64_t *ids64 = malloc((size_t)L * sizeof *ids64);
        if (!ids64) {
            rc = zt_err_set(e, ZT_ERR_NOMEM, "pipeline: out of host memory");
            goto out;
        }
        for (int i = 0; i < L; i++) ids64[i] = ids[i];
        sh[0] = L;
        dump_host(&dd, "ids", "I64", 1, sh, ids64, (size_t)L * 8);
        free(ids64);
        sh[1] = c->te_hidden;
        dump_dev(&dd, "cap_feats", 2, sh, m.hidden, te_rd);
    }

    /* ---- initial noise (host, so every backend starts from the same bits) ---- */
    if (gp->noise) memcpy(host, gp->noise, nlat * sizeof *host);
    else if (!i2i) zt_noise_draw(gp->rng, gp->seed, host, nlat);
    if (i2i) { /* both draws in diffusers' order (api/noise.h); given ones replace them */
        if ((!gp->noise || !gp->encode_noise) &&
            zt_noise_draw_image(gp->rng, gp->seed, gp->noise ? NULL : host, enc, nlat)) {
            rc = zt_err_set(e, ZT_ERR_NOMEM, "pipeline: out of host memory");
            goto out;
        }
        if (gp->encode_noise) memcpy(enc, gp->encode_noise, nlat * sizeof *enc);
    }
    zt_mem_upload(p->ops, m.lat, host, nlat * sizeof *host);
    zt_ops_sync(p->ops);
    sh[0] = C;
    sh[1] = hl;
    sh[2] = wl;
    dump_host(&dd, "noise", "F32", 3, sh, host, nlat * 4);
    const double te = zt_now();
    if (i2i && (rc = images_begin(p, gp, &m, &sch, tstart, host, enc, &dd, e))) goto out;
    if (ctl && (rc = control_images(p, gp, &m, &dd, e))) goto out;
    if (i2i || ctl) {
        zt_ops_sync(p->ops);
        stats.vae_encode_s = zt_now() - te;
        stats.vae_encode_bytes = zt_vae_encode_workspace_size(&p->venc, p->ops, gp->height, gp->width, gp->vae_dt);
        note_device_use(p, &stats);
    }

    /* ---- transformer (and ControlNet): per-image preparation, then the Euler loop ---- */
    if (gp->on_phase) gp->on_phase(gp->on_step_ctx, ZT_GEN_PHASE_DENOISE);
    if ((rc = check_cancel(gp, "before the transformer", e))) goto out;
    t = zt_now();
    zt_dit_run run;
    zt_control_run crun;
    n_order = ctl ? zt_control_unit_order(&p->ctl, &p->dit, 0, order, 2 * p->cat->n_units)
                  : zt_dit_unit_order(&p->dit, 0, order, p->cat->n_units);
    rc = zt_units_begin_phase(p->units, order, n_order, 1, e);
    if (!rc)
        rc = zt_dit_begin(&p->dit, &run, p->ops, p->units, gp->width, gp->height, m.hidden, L, sch.t_model + tstart, nrun,
                          gp->dt, m.dit_state, m.dit_state_bytes, m.scratch, m.scratch_bytes, e);
    if (!rc && ctl)
        rc = zt_control_begin(&p->ctl, &crun, &p->dit, &run, p->ops, p->units, m.ctl_lat, sch.t_model + tstart,
                              gp->control_scale, m.ctl_state, m.ctl_state_bytes, m.ctl_scratch, m.ctl_scratch_bytes, e);
    if (!rc) rc = zt_units_end_phase(p->units, e);
    n_order = ctl ? zt_control_unit_order(&p->ctl, &p->dit, 1, order, 2 * p->cat->n_units)
                  : zt_dit_unit_order(&p->dit, 1, order, p->cat->n_units);
    if (!rc) rc = zt_units_begin_phase(p->units, order, n_order, nrun, e);
    if (rc) goto out;
    zt_ops_sync(p->ops);
    note_device_use(p, &stats);
    stats.dit_prep_s = zt_now() - t;
    if (p->stream) zt_stream_stats_reset(p->stream);
    t = zt_now();
    for (int i = 0; i < nrun; i++) {
        double ts = zt_now();
        if (gp->cancel && *gp->cancel) {
            rc = zt_err_set(e, ZT_ERR_INTERRUPTED, "interrupted before evaluation %d of %d", i + 1, nrun);
            goto out;
        }
        rc = zt_dit_forward_control(&p->dit, &run, ctl ? &crun : NULL, p->ops, p->units, i, m.lat, m.out, e);
        if (rc) goto out;
        if (i == 0) dump_dev(&dd, "dit_out_0", 3, sh, m.out, ZT_DT_F32);
        zt_op_euler_step(p->ops, nlat, m.lat, m.out, sch.dt[tstart + i]);
        /* inpainting: the kept area back on the image's noise level of the next step (clean after the last) */
        if (gp->mask && i2i)
            zt_op_flow_mix(p->ops, C, (size_t)hl * wl, m.img_lat, m.noise, i < nrun - 1 ? sch.sigma[tstart + i + 1] : 0.0f,
                           m.mask, m.lat);
        zt_ops_sync(p->ops);
        if (dd.on) {
            char name[32];
            snprintf(name, sizeof name, "latents_%d", i + 1);
            dump_dev(&dd, name, 3, sh, m.lat, ZT_DT_F32);
        }
        if (gp->on_step) gp->on_step(gp->on_step_ctx, i, nrun, zt_now() - ts);
    }
    rc = zt_units_end_phase(p->units, e);
    if (rc) goto out;
    stats.dit_s = zt_now() - t;
    note_device_use(p, &stats);
    if (p->stream) {
        zt_stream_stats ss;
        zt_stream_stats_get(p->stream, &ss);
        stats.dit_bytes_h2d = ss.bytes_h2d;
        stats.dit_bytes_disk = ss.bytes_disk;
        stats.dit_copy_s = ss.copy_s;
        stats.dit_stall_s = ss.stall_s;
        stats.dit_disk_s = ss.disk_s;
    }
    stats.dit_eval_s = stats.dit_s / nrun;

    /* ---- VAE ---- */
    if (gp->on_phase) gp->on_phase(gp->on_step_ctx, ZT_GEN_PHASE_VAE);
    if ((rc = check_cancel(gp, "before the VAE decode", e))) goto out;
    t = zt_now();
    if (!p->streaming) {
        /* no budget: banded only when asked for (--vae-decode banded, --vae-bands); host memory on demand */
        const size_t hb = zt_vae_host_size(&p->vae, p->ops, hl, wl, gp->vae_dt, p->vae_cap);
        if (hb > p->vae_host_bytes) {
            void *nh = p->vae_host_owned ? realloc(p->vae_host, hb) : malloc(hb);
            if (!nh) {
                rc = zt_err_set(e, ZT_ERR_NOMEM, "vae: out of host memory for the banded decode");
                goto out;
            }
            p->vae_host = nh;
            p->vae_host_bytes = hb;
            p->vae_host_owned = 1;
        }
    }
    n_order = zt_vae_unit_order(&p->vae, order, p->cat->n_units);
    p->vae.cancel = gp->cancel;
    rc = zt_units_begin_phase(p->units, order, n_order, 1, e);
    if (!rc)
        rc = zt_vae_decode(&p->vae, p->ops, p->units, hl, wl, m.lat, gp->vae_dt, m.decoded, m.rgb, m.scratch,
                           m.scratch_bytes, p->vae_cap, p->vae_host, p->vae_host_bytes, e);
    if (!rc) rc = zt_units_end_phase(p->units, e);
    if (rc) goto out;
    zt_mem_download(p->ops, rgb, m.rgb, npix * 3);
    stats.vae_s = zt_now() - t;
    note_device_use(p, &stats);

    if (dd.on && (rc = dump_finish(&dd, p, gp, &sch, m.decoded, rgb, ctl, tstart, nrun, e))) goto out;
    stats.tokens = L;
    stats.weight_bytes = p->weight_bytes;
    stats.activation_bytes = total;
    stats.ops_bytes = zt_ops_device_bytes(p->ops);
    stats.device_peak = stats.weight_bytes + stats.activation_bytes + stats.ops_bytes;
    stats.total_s = zt_now() - t0;
    if (st) *st = stats;
out:
    zt_ops_sync(p->ops);
    if (!p->streaming) zt_mem_free(p->ops, mem);
    free(rows);
    free(host);
    free(enc);
    free(order);
    zt_stf_free(&dd.f);
    return rc;
}
