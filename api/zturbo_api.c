/* api/zturbo_api.c — the public API (api/zturbo.h) over api/pipeline.h.
 * It validates what a caller can get wrong (sizes, steps, missing prompt)
 * before anything is allocated, turns zt_err into the caller's err buffer,
 * and owns the PNG text chunks the command line writes. */
#include "api/zturbo.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/image_in.h"
#include "api/lora.h"
#include "api/noise.h"
#include "api/pipeline.h"
#include "api/png.h"
#include "kernels/cuda_norm.h"
#include "models/limits.h"
#include "sched/plan.h"
#include "storage/tensor_image.h"
#include "api/zturbo_internal.h"
#include "common/zt_input.h"

_Static_assert((int)ZTURBO_ERR_ARG == (int)ZT_ERR_ARG && (int)ZTURBO_ERR_IO == (int)ZT_ERR_IO &&
                   (int)ZTURBO_ERR_NOMEM == (int)ZT_ERR_NOMEM && (int)ZTURBO_ERR_INTERRUPTED == (int)ZT_ERR_INTERRUPTED &&
                   (int)ZTURBO_ERR_RANGE == (int)ZT_ERR_RANGE && (int)ZTURBO_ERR_INTERNAL == (int)ZT_ERR_INTERNAL &&
                   (int)ZTURBO_ERR_MISSING == (int)ZT_ERR_MISSING,
               "zturbo.h codes mirror zt_code");
/* The public limits (a standalone header) are models/limits.h's. */
_Static_assert(ZTURBO_SIZE_MIN == ZT_SIDE_MULTIPLE && ZTURBO_SIZE_MAX == ZT_MAX_SIDE &&
                   ZTURBO_SIZE_MULTIPLE == ZT_SIDE_MULTIPLE && ZTURBO_STEPS_MAX == ZT_MAX_STEPS,
               "zturbo.h limits mirror models/limits.h");
_Static_assert((int)ZTURBO_RNG_TORCH_CPU == (int)ZT_RNG_TORCH_CPU && (int)ZTURBO_RNG_ZTURBO == (int)ZT_RNG_ZTURBO,
               "zturbo_rng mirrors zt_rng_kind");
_Static_assert((int)ZTURBO_PHASE_TEXT == ZT_GEN_PHASE_TEXT && (int)ZTURBO_PHASE_DENOISE == ZT_GEN_PHASE_DENOISE &&
                   (int)ZTURBO_PHASE_VAE == ZT_GEN_PHASE_VAE && (int)ZTURBO_PHASE_WRITE == ZT_GEN_PHASE_WRITE,
               "zturbo.h phases mirror pipeline.h's");

struct zturbo {
    zt_pipeline *p;
    zturbo_device device;        /* resolved: CPU or CUDA */
    zturbo_precision precision;  /* resolved */
    zturbo_precision vae_precision;
    uint64_t vram;
    int32_t *ids;                /* [ZT_MAX_TOKENS] tokenizer output, reused */
    int n_loras;                 /* the LoRAs of the options */
    zt_lora_spec loras[ZTURBO_MAX_LORAS];
    char *lora_paths[ZTURBO_MAX_LORAS];
    int n_cur;                   /* the LoRAs merged now (for the PNG) */
    zt_lora_spec cur[ZTURBO_MAX_LORAS];
    char *cur_paths[ZTURBO_MAX_LORAS];
    char *control_model;         /* zturbo_options.control_model (copied), or NULL */
};

/* Make the merged LoRAs those of p (or of the options when p gives none). */
static int switch_loras(zturbo *z, const zturbo_params *p, zt_err *e) {
    zt_lora_spec want[ZTURBO_MAX_LORAS];
    int n = z->n_loras;
    if (p->loras || p->n_loras) {
        if (p->n_loras < 0 || p->n_loras > ZTURBO_MAX_LORAS || (p->n_loras && !p->loras))
            return zt_err_set(e, ZT_ERR_ARG, "n_loras %d not allowed: 0..%d", p->n_loras, ZTURBO_MAX_LORAS);
        n = p->n_loras;
        for (int i = 0; i < n; i++) {
            if (!p->loras[i].path || !isfinite(p->loras[i].scale) || fabsf(p->loras[i].scale) > 1e6f)
                return zt_err_set(e, ZT_ERR_ARG, "LoRA %d: no path or a scale that is not a finite number within 1e6", i);
            want[i] = (zt_lora_spec){p->loras[i].path, p->loras[i].scale};
        }
    } else {
        for (int i = 0; i < n; i++) want[i] = z->loras[i];
    }
    int same = n == z->n_cur;
    for (int i = 0; same && i < n; i++) same = want[i].scale == z->cur[i].scale && !strcmp(want[i].path, z->cur[i].path);
    if (same) return ZT_OK;
    char *paths[ZTURBO_MAX_LORAS] = {0};
    for (int i = 0; i < n; i++)
        if (!(paths[i] = strdup(want[i].path))) {
            for (int k = 0; k < i; k++) free(paths[k]);
            return zt_err_set(e, ZT_ERR_NOMEM, "out of host memory");
        }
    int rc = zt_pipeline_set_loras(z->p, want, n, e);
    if (rc) {
        for (int i = 0; i < n; i++) free(paths[i]);
        return rc;
    }
    for (int i = 0; i < z->n_cur; i++) free(z->cur_paths[i]);
    for (int i = 0; i < n; i++) {
        z->cur_paths[i] = paths[i];
        z->cur[i] = (zt_lora_spec){paths[i], want[i].scale};
    }
    z->n_cur = n;
    return ZT_OK;
}


/* Resident set size from /proc/self/statm (0 where there is none). */
static uint64_t host_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, rss = 0;
    const int n = fscanf(f, "%llu %llu", &size, &rss);
    fclose(f);
    return n == 2 ? (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

/* progress bookkeeping of one generate call */
typedef struct {
    zturbo *z;
    const zturbo_params *p;
    uint64_t last_h2d;
} progress_ctx;

static int fail(zt_err *e, char *err, size_t errlen) {
    if (err && errlen) snprintf(err, errlen, "%s", e->msg[0] ? e->msg : zt_code_name(e->code));
    return e->code ? e->code : ZT_ERR_INTERNAL;
}

void zturbo_options_default(zturbo_options *o) {
    memset(o, 0, sizeof *o);
    o->pinned = UINT64_MAX;
    o->prefetch = -1;
    o->max_width = 1024;
    o->max_height = 1024;
    o->max_steps = 8;
    o->lend = 1;
    o->copy_streams = 1;
    o->norm_variant = ZT_NORM_VARIANT_DEFAULT;
}

void zturbo_params_default(zturbo_params *p) {
    memset(p, 0, sizeof *p);
    p->width = 1024;
    p->height = 1024;
    p->steps = 8;
    p->control_scale = 0.75;
}

const char *zturbo_precision_name(zturbo_precision p) {
    return p == ZTURBO_PRECISION_F32 ? "f32" : p == ZTURBO_PRECISION_F16 ? "fp16" : "bf16";
}

static zt_dtype precision_dt(zturbo_precision p) {
    return p == ZTURBO_PRECISION_F32 ? ZT_DT_F32 : p == ZTURBO_PRECISION_F16 ? ZT_DT_F16 : ZT_DT_BF16;
}
int zturbo_cuda_has_bf16(int ordinal) {
    zt_err e = {0};
    return zt_ops_check_gpu_bf16(ordinal, &e) == ZT_OK;
}
zturbo_device zturbo_device_of(const zturbo *z) { return z->device; }
zturbo_precision zturbo_precision_of(const zturbo *z) { return z->precision; }
zturbo_precision zturbo_vae_precision_of(const zturbo *z) { return z->vae_precision; }
const char *zturbo_notice(zturbo *z) { return z->p->stream ? zt_stream_notice(z->p->stream) : ""; }
int zturbo_cuda_available(void) { return zt_cuda_available(); }
int zturbo_vocab_size(const zturbo *z) { return z->p->cat->cfg.te_vocab; }
void zturbo_latent_shape(const zturbo *z, int width, int height, int *c, int *h, int *w) {
    zt_pipeline_latent_shape(z->p, width, height, c, h, w);
}

void zturbo_lora_info(const zturbo *z, zturbo_result *r) {
    memset(r, 0, sizeof *r);
    r->loras = z->n_cur;
    r->lora_tensors = zt_lora_merger_tensors(z->p->lora);
    r->lora_merge_s = zt_lora_merger_seconds(z->p->lora);
}

static int check_size(const char *what, int v, zt_err *e) {
    if (v < ZT_SIDE_MULTIPLE || v > ZT_MAX_SIDE || v % ZT_SIDE_MULTIPLE)
        return zt_err_set(e, ZT_ERR_RANGE, "%s %d not allowed: must be a multiple of %d in %d..%d", what, v,
                          ZT_SIDE_MULTIPLE, ZT_SIDE_MULTIPLE, ZT_MAX_SIDE);
    return 0;
}

int zturbo_pipeline_options(const zturbo_options *o, zt_pipeline_opts *po, zturbo_resolved *r, zt_err *e) {
    if (!o) return zt_err_set(e, ZT_ERR_ARG, "zturbo_create: options must not be NULL");
    if (!o->model_path) return zt_err_set(e, ZT_ERR_ARG, "model path missing");
    if (o->device != ZTURBO_DEVICE_AUTO && o->device != ZTURBO_DEVICE_CPU && o->device != ZTURBO_DEVICE_CUDA)
        return zt_err_set(e, ZT_ERR_ARG, "device %d not allowed: auto, cpu or cuda", (int)o->device);
    if (o->vram && o->vram < (1ull << 20))
        return zt_err_set(e, ZT_ERR_ARG, "vram %llu bytes not allowed: at least 1M", (unsigned long long)o->vram);
    if (!o->vram && (o->window || o->prefetch >= 0 || o->store || o->pinned != UINT64_MAX || o->throttle_bw > 0))
        return zt_err_set(e, ZT_ERR_ARG, "window/prefetch/store/pinned/throttle need a vram budget");
    if (o->window < 0 || o->window > 16)
        return zt_err_set(e, ZT_ERR_ARG, "window %d not allowed: expected 1..16 (0: plan decides)", o->window);
    if (o->prefetch < -1 || o->prefetch > 8)
        return zt_err_set(e, ZT_ERR_ARG, "prefetch %d not allowed: expected 0..8 (-1: plan decides)", o->prefetch);
    if (o->threads < 0 || o->threads > 1024)
        return zt_err_set(e, ZT_ERR_ARG, "threads %d not allowed: expected 1..1024 (0: all cores)", o->threads);
    if (check_size("max width", o->max_width, e) || check_size("max height", o->max_height, e)) return e->code;
    if (o->max_steps < 1 || o->max_steps > ZTURBO_STEPS_MAX)
        return zt_err_set(e, ZT_ERR_ARG, "max steps %d not allowed: expected 1..%d", o->max_steps, ZTURBO_STEPS_MAX);
    if (o->vae_decode < 0 || o->vae_decode > 2)
        return zt_err_set(e, ZT_ERR_ARG, "vae_decode %d not allowed: 0 auto, 1 device, 2 banded", o->vae_decode);
    if (o->n_loras < 0 || o->n_loras > ZTURBO_MAX_LORAS || (o->n_loras && !o->loras))
        return zt_err_set(e, ZT_ERR_ARG, "n_loras %d not allowed: 0..%d (with loras set)", o->n_loras, ZTURBO_MAX_LORAS);
    for (int i = 0; i < o->n_loras; i++)
        if (!o->loras[i].path || !isfinite(o->loras[i].scale) || fabsf(o->loras[i].scale) > 1e6f)
            return zt_err_set(e, ZT_ERR_ARG, "LoRA %d: %s", i, o->loras[i].path ? "scale not a finite number within 1e6" : "no path");
    if (o->lend != 0 && o->lend != 1) return zt_err_set(e, ZT_ERR_ARG, "lend %d not allowed: 0 or 1", o->lend);
    if (o->copy_streams < 1 || o->copy_streams > 2)
        return zt_err_set(e, ZT_ERR_ARG, "copy streams %d not allowed: 1 or 2", o->copy_streams);
    if (o->piece_buffer && (o->piece_buffer < ZT_PLAN_PIECE_MIN || o->piece_buffer > ZT_PLAN_PIECE_MAX))
        return zt_err_set(e, ZT_ERR_ARG, "piece buffer %llu bytes not allowed: 4 MiB..1 GiB (0: default)",
                          (unsigned long long)o->piece_buffer);
    if (o->norm_variant < 0 || o->norm_variant >= ZT_NORM_VARIANTS)
        return zt_err_set(e, ZT_ERR_ARG, "norm variant %d not allowed: 0..%d", o->norm_variant, ZT_NORM_VARIANTS - 1);
    if (o->load_threads < 0 || o->load_threads > ZT_LOAD_THREADS_MAX)
        return zt_err_set(e, ZT_ERR_ARG, "load threads %d not allowed: 1..%d (0: default)", o->load_threads,
                          ZT_LOAD_THREADS_MAX);
    if (o->io != ZTURBO_IO_AUTO && o->io != ZTURBO_IO_URING && o->io != ZTURBO_IO_PREAD)
        return zt_err_set(e, ZT_ERR_ARG, "io %d not allowed: auto, uring or pread", (int)o->io);
    if (o->vae_band_level < 0 || o->vae_band_level > 16 || o->vae_band_rows < 0 || o->vae_band_rows > 65536 ||
        !o->vae_band_level != !o->vae_band_rows)
        return zt_err_set(e, ZT_ERR_ARG, "VAE bands %d,%d not allowed: level 1..16 and rows 1..65536, or both 0",
                          o->vae_band_level, o->vae_band_rows);
    if (o->weights < ZTURBO_WEIGHTS_DEFAULT || o->weights > ZTURBO_WEIGHTS_BF16)
        return zt_err_set(e, ZT_ERR_ARG, "weights %d not allowed: 0 default (coded), 1 coded, 2 bf16", (int)o->weights);
    if (o->images_in != 0 && o->images_in != 1)
        return zt_err_set(e, ZT_ERR_ARG, "images_in %d not allowed: 0 or 1", o->images_in);

    zturbo_device dev = o->device;
    if (dev == ZTURBO_DEVICE_AUTO) dev = zt_cuda_available() ? ZTURBO_DEVICE_CUDA : ZTURBO_DEVICE_CPU;
    if (dev == ZTURBO_DEVICE_CUDA && !zt_cuda_available())
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "device cuda: no usable CUDA device (use the cpu device)");
    /* a card this build cannot serve stops here, before any file is read; one
     * without bf16 (compute capability 7.5, or an sm_75-only build) runs the
     * fp16 path */
    if (dev == ZTURBO_DEVICE_CUDA && zt_ops_check_gpu(o->cuda_ordinal, e)) return e->code;
    zt_err ebf = {0};
    const int no_bf16 = dev == ZTURBO_DEVICE_CUDA && zt_ops_check_gpu_bf16(o->cuda_ordinal, &ebf);
    zturbo_precision prec = o->precision;
    if (prec == ZTURBO_PRECISION_DEFAULT) prec = no_bf16 ? ZTURBO_PRECISION_F16 : ZTURBO_PRECISION_BF16;
    if (prec != ZTURBO_PRECISION_BF16 && prec != ZTURBO_PRECISION_F32 && prec != ZTURBO_PRECISION_F16)
        return zt_err_set(e, ZT_ERR_ARG, "precision %d not allowed: bf16, f32 or fp16", (int)prec);
    if (prec == ZTURBO_PRECISION_F32 && dev == ZTURBO_DEVICE_CUDA)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "precision f32 runs on the CPU backend only");
    if (prec == ZTURBO_PRECISION_BF16 && no_bf16) {
        *e = ebf;
        return e->code;
    }
    zturbo_precision vprec = o->vae_precision;
    /* the fp16 path decodes in f32 (the Flux VAE is not fp16-safe; ComfyUI also keeps it out of fp16) */
    if (vprec == ZTURBO_PRECISION_DEFAULT)
        vprec = dev == ZTURBO_DEVICE_CUDA && prec != ZTURBO_PRECISION_F16 ? ZTURBO_PRECISION_BF16 : ZTURBO_PRECISION_F32;
    if (vprec == ZTURBO_PRECISION_BF16 && no_bf16)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "VAE precision bf16 needs compute capability 8.0+: use f32");
    /* coded weights decode to bf16 on the device: the fp16 path reads bf16 weights (converted to f16 as
     * they are read); --weights coded with it is refused, the default becomes bf16 */
    if (prec == ZTURBO_PRECISION_F16 && o->weights == ZTURBO_WEIGHTS_CODED)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "--weights coded with --precision fp16: coded weights decode to bf16; "
                                                 "use --weights bf16");
    if (vprec != ZTURBO_PRECISION_BF16 && vprec != ZTURBO_PRECISION_F32)
        return zt_err_set(e, ZT_ERR_ARG, "VAE precision %d not allowed: f32 or bf16", (int)vprec);
    /* the ControlNet's blocks run on the transformer's dtype throughout: not with the fp16 path's f32
     * residual stream */
    if (o->control_model && prec == ZTURBO_PRECISION_F16)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "a ControlNet with precision fp16: not supported yet (use bf16 or f32)");
    r->device = dev;
    r->precision = prec;
    r->vae_precision = vprec;

    zt_pipeline_opts_default(po);
    po->backend = dev == ZTURBO_DEVICE_CUDA ? ZT_BACKEND_CUDA : ZT_BACKEND_CPU;
    po->device = o->cuda_ordinal;
    po->cpu_threads = o->threads;
    po->vram_budget = o->vram;
    po->pinned_budget = o->pinned;
    po->store_path = o->store;
    po->window = o->window;
    po->prefetch = o->prefetch;
    po->throttle_bw = o->throttle_bw;
    po->link_bw = o->link_bw;
    po->vae_decode = (zt_vae_decode_mode)o->vae_decode;
    po->lend = o->lend;
    po->copy_streams = o->copy_streams;
    po->piece_bytes = o->piece_buffer;
    po->norm_variant = o->norm_variant;
    po->load_threads = o->load_threads;
    po->io_engine = o->io == ZTURBO_IO_URING ? ZT_IO_URING : o->io == ZTURBO_IO_PREAD ? ZT_IO_PREAD : ZT_IO_AUTO;
    po->vae_band_level = o->vae_band_level;
    po->vae_band_rows = o->vae_band_rows;
    po->weights_coded = o->weights != ZTURBO_WEIGHTS_BF16 && prec != ZTURBO_PRECISION_F16;
    po->precision = precision_dt(prec);
    po->f16_unguarded = o->f16_unguarded;
    po->need_tokenizer = o->need_tokenizer;
    po->plan_width = o->max_width;
    po->plan_height = o->max_height;
    po->plan_steps = o->max_steps;
    po->plan_vae_dt = vprec == ZTURBO_PRECISION_F32 ? ZT_DT_F32 : ZT_DT_BF16;
    po->tokenizer_path = o->tokenizer_path;
    po->plan_images = o->images_in;
    po->control_path = o->control_model;
    po->on_load = o->on_load;
    po->load_user = o->load_user;
    return ZT_OK;
}

int zturbo_create(const zturbo_options *o, zturbo **out, char *err, size_t errlen) {
    zt_err e = {0};
    if (out) *out = NULL;
    if (!o || !out) return zt_err_set(&e, ZT_ERR_ARG, "zturbo_create: options and out must not be NULL"), fail(&e, err, errlen);
    zt_pipeline_opts po;
    zturbo_resolved r;
    if (zturbo_pipeline_options(o, &po, &r, &e)) return fail(&e, err, errlen);

    zturbo *z = calloc(1, sizeof *z);
    int32_t *ids = calloc(ZT_MAX_TOKENS, sizeof *ids);
    if (!z || !ids) {
        free(z);
        free(ids);
        return zt_err_set(&e, ZT_ERR_NOMEM, "out of host memory"), fail(&e, err, errlen);
    }
    z->ids = ids;
    z->device = r.device;
    z->precision = r.precision;
    z->vae_precision = r.vae_precision;
    z->vram = o->vram;
    z->n_loras = o->n_loras;
    for (int i = 0; i < o->n_loras; i++) {
        z->lora_paths[i] = strdup(o->loras[i].path);
        if (!z->lora_paths[i]) {
            zturbo_destroy(z);
            return zt_err_set(&e, ZT_ERR_NOMEM, "out of host memory"), fail(&e, err, errlen);
        }
        z->loras[i] = (zt_lora_spec){z->lora_paths[i], o->loras[i].scale};
        z->cur_paths[i] = strdup(o->loras[i].path);
        if (!z->cur_paths[i]) {
            zturbo_destroy(z);
            return zt_err_set(&e, ZT_ERR_NOMEM, "out of host memory"), fail(&e, err, errlen);
        }
        z->cur[i] = (zt_lora_spec){z->cur_paths[i], o->loras[i].scale};
        z->n_cur = i + 1;
    }

    if (o->control_model && !(z->control_model = strdup(o->control_model))) {
        zturbo_destroy(z);
        return zt_err_set(&e, ZT_ERR_NOMEM, "out of host memory"), fail(&e, err, errlen);
    }
    po.loras = z->loras;
    po.n_loras = z->n_loras;
    int rc = zt_pipeline_open(o->model_path, &po, &z->p, &e);
    if (rc) {
        zturbo_destroy(z);
        return fail(&e, err, errlen);
    }
    *out = z;
    return 0;
}

void zturbo_destroy(zturbo *z) {
    if (!z) return;
    zt_pipeline_close(z->p);
    for (int i = 0; i < z->n_loras; i++) free(z->lora_paths[i]);
    for (int i = 0; i < z->n_cur; i++) free(z->cur_paths[i]);
    free(z->control_model);
    free(z->ids);
    free(z);
}

static void on_step(void *ctx, int step, int steps, double seconds) {
    progress_ctx *pc = ctx;
    zt_pipeline *p = pc->z->p;
    zturbo_progress pr = {.step = step, .steps = steps, .step_s = seconds};
    if (p->stream) { /* the pipeline resets the stream's counters before the first evaluation */
        zt_stream_stats ss;
        zt_stream_stats_get(p->stream, &ss);
        if (step == 0) pc->last_h2d = 0;
        pr.bus_bytes = ss.bytes_h2d - pc->last_h2d;
        pc->last_h2d = ss.bytes_h2d;
    }
    uint64_t fr = 0, tot = 0;
    zt_ops_mem_info(p->ops, &fr, &tot);
    pr.device_used = tot - fr;
    pr.device_total = tot;
    pc->p->on_progress(pc->p->user, &pr);
}

/* A request's images, decoded and prepared at the output size w x h. */
typedef struct {
    int w, h;
    double strength;  /* resolved (0 without an init image, and with a control image) */
    float *img;       /* [3, h, w] in [-1, 1] or NULL */
    float *ctl;       /* [3, h, w] in [-1, 1]: the control image, or NULL */
    float *mask;      /* [h, w] in {0, 1} or NULL */
} images_in;

static void on_phase(void *ctx, int phase) {
    const progress_ctx *pc = ctx;
    pc->p->on_phase(pc->p->user, (zturbo_phase)phase);
}

static int params_check(const zturbo_params *p, zt_err *e) {
    char msg[ZT_ERR_MSG];
    const int rc = zturbo_params_check(p, msg, sizeof msg);
    return rc ? zt_err_set(e, rc, "%s", msg) : ZT_OK;
}

static void fill_result(const zturbo *z, const zturbo_params *p, const images_in *im, const zt_gen_stats *st, int truncated,
                        zturbo_result *r) {
    memset(r, 0, sizeof *r);
    r->seed = p->seed;
    r->width = im->w;
    r->height = im->h;
    r->tokens = st->tokens;
    r->truncated = truncated;
    r->load_s = z->p->load_s;
    r->text_s = st->text_s;
    r->dit_prep_s = st->dit_prep_s;
    r->dit_s = st->dit_s;
    r->dit_eval_s = st->dit_eval_s;
    r->vae_s = st->vae_s;
    r->vae_encode_s = st->vae_encode_s;
    r->vae_encode_bytes = st->vae_encode_bytes;
    r->total_s = st->total_s;
    r->bytes_h2d = st->dit_bytes_h2d;
    r->bytes_disk = st->dit_bytes_disk;
    r->copy_s = st->dit_copy_s;
    r->stall_s = st->dit_stall_s;
    r->disk_s = st->dit_disk_s;
    r->peak_memory = st->device_peak;
    r->device_used_peak = st->device_used_peak;
    r->weight_bytes = st->weight_bytes;
    r->activation_bytes = st->activation_bytes;
    uint64_t fr = 0, tot = 0;
    zt_ops_mem_info(z->p->ops, &fr, &tot);
    r->device_used_after = tot - fr;
    r->host_rss = host_rss_bytes();
    r->loras = z->n_cur;
    r->lora_tensors = zt_lora_merger_tensors(z->p->lora);
    r->lora_merge_s = zt_lora_merger_seconds(z->p->lora);
    if (z->p->streaming) {
        const zt_plan *pl = &z->p->plan;
        r->streaming = 1;
        r->vram = z->vram;
        for (int i = 0; i < pl->n_units; i++) {
            r->units_resident += pl->units[i].residency == ZT_RES_RESIDENT ||
                                 pl->units[i].residency == ZT_RES_RESIDENT_CODED;
            r->units_coded += pl->units[i].residency == ZT_RES_RESIDENT_CODED;
            r->units_streamed += pl->units[i].residency == ZT_RES_STREAMED;
            r->units_lent += pl->units[i].residency == ZT_RES_LENT;
        }
        r->slots = pl->n_slots;
        r->pinned_bytes = pl->pinned_bytes;
        r->weights_coded = z->p->coded_host != NULL;
        r->code_s = z->p->code_s;
        r->slot_bytes = pl->slot_bytes;
        r->prefetch = pl->prefetch;
    }
}

/* ---- images in -------------------------------------------------------------------- */

static void images_free(images_in *in) {
    free(in->img);
    free(in->mask);
    free(in->ctl);
    memset(in, 0, sizeof *in);
}

/* The output size (zturbo_output_size) and, when `prepare`, the tensors:
 * the init image resized to it (diffusers' preprocess), the mask (same file
 * size as the init image) resized, gray, binarized. */
/* The control image resized to the output size (diffusers' prepare_image: preprocess(image, height, width)). */
static int control_load(const zturbo_params *p, images_in *in, zt_err *e) {
    zt_image im = {0};
    int rc = zt_image_load(p->control_image, &im, e);
    if (rc) return zt_err_prefix(e, "control image");
    in->ctl = malloc((size_t)in->w * in->h * 3 * sizeof *in->ctl);
    if (!in->ctl) rc = zt_err_set(e, ZT_ERR_NOMEM, "control image: out of host memory");
    if (!rc) rc = zt_image_resize_inplace(&im, in->w, in->h, e);
    if (!rc) zt_image_to_tensor(&im, in->ctl);
    zt_image_free(&im);
    return rc;
}

/* A file, or the bytes in memory when given (the name then labels them). */
static int image_read(const char *name, const void *data, size_t n, zt_image *im, zt_err *e) {
    if (!data) return zt_image_load(name, im, e);
    if ((uint64_t)n > ZT_IMAGE_MAX_FILE)
        return zt_err_set(e, ZT_ERR_RANGE, "%s: %zu bytes, more than the %llu an image may have", name, n,
                          (unsigned long long)ZT_IMAGE_MAX_FILE);
    return zt_image_decode(data, n, name, 0, im, e);
}

static int images_load(const zturbo_params *p, int prepare, images_in *in, zt_err *e) {
    memset(in, 0, sizeof *in);
    in->w = p->width;
    in->h = p->height;
    if (!p->init_image) {
        if (p->mask) return zt_err_set(e, ZT_ERR_ARG, "a mask needs an init image (inpainting)");
        if (p->strength != 0) return zt_err_set(e, ZT_ERR_ARG, "strength needs an init image");
        int rc = p->control_image && prepare ? control_load(p, in, e) : 0;
        if (rc) images_free(in);
        return rc;
    }
    if (p->control_image && p->strength != 0)
        return zt_err_set(e, ZT_ERR_ARG, "strength is not used with a control image (ControlNet inpainting runs the "
                                         "whole schedule)");
    if (!p->width != !p->height)
        return zt_err_set(e, ZT_ERR_ARG, "width %d, height %d: with an init image give both or neither (0: the "
                                         "image's size)", p->width, p->height);
    in->strength = p->control_image ? 0 : p->strength != 0 ? p->strength : p->mask ? 1.0 : 0.6;
    if (!p->control_image && !(in->strength > 0 && in->strength <= 1))
        return zt_err_set(e, ZT_ERR_RANGE, "strength %g not allowed: expected (0, 1]", p->strength);
    zt_image im = {0}, mk = {0};
    int rc = image_read(p->init_image, p->init_image_data, p->init_image_bytes, &im, e);
    if (rc) return zt_err_prefix(e, "init image");
    if (!p->width) {
        zt_image_default_size(&im, 16, &in->w, &in->h);
        if (in->w < 16 || in->h < 16 || in->w > 2048 || in->h > 2048) {
            rc = zt_err_set(e, ZT_ERR_RANGE, "init image %s: %dx%d gives a %dx%d image (16..2048 per side): give the "
                                             "width and height to resize it to", p->init_image, im.w, im.h, in->w, in->h);
            goto out;
        }
    }
    if (p->mask) {
        rc = image_read(p->mask, p->mask_data, p->mask_bytes, &mk, e);
        if (rc) {
            zt_err_prefix(e, "mask");
            goto out;
        }
        if (mk.w != im.w || mk.h != im.h) {
            rc = zt_err_set(e, ZT_ERR_ARG, "mask %s is %dx%d, the init image %dx%d: they must have the same size",
                            p->mask, mk.w, mk.h, im.w, im.h);
            goto out;
        }
    }
    if (!prepare) goto out;
    const size_t np = (size_t)in->w * in->h;
    in->img = malloc(np * 3 * sizeof *in->img);
    in->mask = p->mask ? malloc(np * sizeof *in->mask) : NULL;
    uint8_t *gray = p->mask ? malloc(np) : NULL;
    if (!in->img || (p->mask && (!in->mask || !gray))) {
        free(gray);
        rc = zt_err_set(e, ZT_ERR_NOMEM, "init image: out of host memory");
        goto out;
    }
    rc = zt_image_resize_inplace(&im, in->w, in->h, e);
    if (!rc) zt_image_to_tensor(&im, in->img);
    if (!rc && p->mask) rc = zt_image_resize_inplace(&mk, in->w, in->h, e);
    if (!rc && p->mask) {
        zt_image_to_gray(&mk, gray);
        if (p->mask_invert) /* 255 - L >= 128 exactly when L < 128: the binary mask flipped */
            for (size_t i = 0; i < np; i++) gray[i] = (uint8_t)(255 - gray[i]);
        zt_image_binarize(gray, np, in->mask);
    }
    free(gray);
    if (!rc && p->control_image) rc = control_load(p, in, e);
out:
    zt_image_free(&im);
    zt_image_free(&mk);
    if (rc) images_free(in);
    return rc;
}

int zturbo_output_size(const zturbo_params *p, int *width, int *height, char *err, size_t errlen) {
    zt_err e = {0};
    images_in in;
    if (!p || !width || !height) return zt_err_set(&e, ZT_ERR_ARG, "zturbo_output_size: NULL argument"), fail(&e, err, errlen);
    int rc = images_load(p, 0, &in, &e);
    if (!rc) rc = check_size("width", in.w, &e);
    if (!rc) rc = check_size("height", in.h, &e);
    if (rc) return fail(&e, err, errlen);
    *width = in.w;
    *height = in.h;
    return 0;
}

/* Validate, tokenize and run; *truncated tells whether ids were dropped. */
static int run(zturbo *z, const zturbo_params *p, const images_in *im, uint8_t *rgb, zt_gen_stats *st, int *truncated,
               zt_err *e) {
    *truncated = 0;
    if (!z || !p || !rgb) return zt_err_set(e, ZT_ERR_ARG, "zturbo_generate: context, params and rgb must not be NULL");
    int rc = params_check(p, e);
    if (rc) return rc;
    if (p->noise) { /* NaN or Inf would run through every step into a flat image */
        int c, h, w;
        zt_pipeline_latent_shape(z->p, im->w, im->h, &c, &h, &w);
        const size_t n = (size_t)c * h * w;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(p->noise[i]))
                return zt_err_set(e, ZT_ERR_ARG, "noise: element %zu of [%d, %d, %d] is %s: the initial latent must be finite",
                                  i, c, h, w, isnan(p->noise[i]) ? "NaN" : "infinite");
    }
    rc = switch_loras(z, p, e);
    if (rc) return rc;
    if (p->on_phase) p->on_phase(p->user, ZTURBO_PHASE_TEXT);
    if (p->cancel && *p->cancel) return zt_err_set(e, ZT_ERR_INTERRUPTED, "interrupted before the text encoder");
    const int32_t *ids = p->ids;
    int n_ids = p->n_ids;
    if (ids) {
        *truncated = n_ids > ZT_MAX_TOKENS;
    } else {
        rc = zt_pipeline_tokenize(z->p, p->prompt, z->ids, ZT_MAX_TOKENS, &n_ids, truncated, e);
        if (rc) return rc;
        ids = z->ids;
    }
    zt_gen_params gp;
    zt_gen_params_default(&gp);
    gp.dt = precision_dt(z->precision);
    gp.vae_dt = z->vae_precision == ZTURBO_PRECISION_F32 ? ZT_DT_F32 : ZT_DT_BF16;
    gp.width = im->w;
    gp.height = im->h;
    gp.steps = p->steps;
    gp.seed = p->seed;
    gp.rng = (int)p->rng;
    gp.noise = p->noise;
    gp.init_image = im->img;
    gp.strength = im->strength;
    gp.mask = im->mask;
    gp.encode_noise = p->encode_noise;
    gp.control_image = im->ctl;
    gp.control_scale = (float)p->control_scale;
    gp.dump_path = p->dump_path;
    gp.prompt = p->prompt;
    gp.cancel = p->cancel;
    progress_ctx pc = {z, p, 0};
    gp.on_step_ctx = &pc;
    if (p->on_progress) gp.on_step = on_step;
    if (p->on_phase) gp.on_phase = on_phase;
    return zt_pipeline_generate_ids(z->p, ids, n_ids, &gp, rgb, st, e);
}

int zturbo_generate(zturbo *z, const zturbo_params *p, uint8_t *rgb, zturbo_result *res, char *err, size_t errlen) {
    zt_err e = {0};
    zt_gen_stats st;
    memset(&st, 0, sizeof st);
    int truncated = 0;
    if (res) memset(res, 0, sizeof *res);
    images_in im;
    memset(&im, 0, sizeof im);
    int rc = p ? params_check(p, &e) : zt_err_set(&e, ZT_ERR_ARG, "zturbo_generate: params must not be NULL");
    if (!rc) rc = images_load(p, 1, &im, &e);
    if (!rc) rc = run(z, p, &im, rgb, &st, &truncated, &e);
    if (!rc && res) fill_result(z, p, &im, &st, truncated, res);
    if (p) images_free(&im);
    return rc ? fail(&e, err, errlen) : 0;
}

/* The PNG's text chunks: the A1111 infotext and a JSON record of the inputs
 * (no timings, so the same inputs give the same file). */
static char *infotext(const zturbo *z, const zturbo_params *p, const images_in *im) {
    char steps_s[16], seed_s[32], size_s[32], str_s[32], cs_s[32];
    snprintf(cs_s, sizeof cs_s, "%g", p->control_scale);
    snprintf(steps_s, sizeof steps_s, "%d", p->steps);
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)p->seed);
    snprintf(size_s, sizeof size_s, "%dx%d", im->w, im->h);
    snprintf(str_s, sizeof str_s, "%g", im->strength);
    const char *noise_name = p->noise ? (p->noise_name ? p->noise_name : "(memory)") : NULL;
    const char *rng = p->noise ? NULL : zturbo_rng_name(p->rng);
    char loras[1024] = "";
    for (int i = 0; i < z->n_cur; i++) { /* "name:scale, ..." (file names without folders) */
        const char *slash = strrchr(z->cur[i].path, '/');
        size_t k = strlen(loras);
        snprintf(loras + k, sizeof loras - k, "%s%s:%g", i ? ", " : "", slash ? slash + 1 : z->cur[i].path,
                 (double)z->cur[i].scale);
    }
    const char *cm = p->control_image && z->control_model ? strrchr(z->control_model, '/') : NULL;
    cm = cm && cm[1] ? cm + 1 : p->control_image ? z->control_model : NULL;
    const char *keys[] = {"Steps", "Sampler", "CFG scale", "Seed", "RNG", "Size", "Model", "LoRA", "Noise file",
                          "Denoising strength", "Init image", "Mask", "Mask invert", "ControlNet", "Control image",
                          "Control scale"};
    const char *vals[] = {steps_s, "Euler", "0", p->noise ? NULL : seed_s, rng, size_s, "Z-Image-Turbo",
                          z->n_cur ? loras : NULL, noise_name, p->init_image && !p->control_image ? str_s : NULL,
                          p->init_image, p->mask, p->mask && p->mask_invert ? "1" : NULL, cm, p->control_image,
                          p->control_image ? cs_s : NULL};
    return zt_png_infotext(p->prompt ? p->prompt : "", NULL, keys, vals, 16);
}

char *zturbo_infotext(const zturbo *z, const zturbo_params *p) {
    zt_err e = {0};
    images_in im;
    if (images_load(p, 0, &im, &e)) { /* the sizes as given when the files cannot be read */
        memset(&im, 0, sizeof im);
        im.w = p->width;
        im.h = p->height;
    }
    return infotext(z, p, &im);
}

static int png_texts(const zturbo *z, const zturbo_params *p, const images_in *im, int tokens, int truncated,
                     char **info, char **json, zt_err *e) {
    char seed_s[32];
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)p->seed);
    const char *noise_name = p->noise ? (p->noise_name ? p->noise_name : "(memory)") : NULL;
    const char *rng = zturbo_rng_name(p->rng);
    *info = infotext(z, p, im);
    *json = NULL;
    json_t *j = json_pack("{s:s?, s:i, s:i, s:i, s:s, s:f, s:f, s:s, s:s, s:s, s:s, s:i, s:b}", "prompt", p->prompt,
                          "width", im->w, "height", im->h, "steps", p->steps, "sampler", "flow_match_euler",
                          "shift", 3.0, "cfg_scale", 0.0, "model", "Z-Image-Turbo", "precision",
                          zturbo_precision_name(z->precision), "vae_precision", zturbo_precision_name(z->vae_precision),
                          "device", z->device == ZTURBO_DEVICE_CUDA ? "cuda" : "cpu", "tokens", tokens, "truncated",
                          truncated);
    if (!j) /* the prompt passed zturbo_params_check: only a noise file name can be refused */
        return zt_err_set(e, ZT_ERR_ARG, "PNG metadata: the parameters cannot be written as JSON (file names "
                                         "must be UTF-8)");
    if (p->noise) json_object_set_new(j, "noise_file", json_string(noise_name));
    else json_object_set_new(j, "rng", json_string(rng));
    if (z->n_cur) { /* the files as given and their strengths */
        json_t *a = json_array();
        for (int i = 0; i < z->n_cur; i++)
            json_array_append_new(a, json_pack("{s:s, s:f}", "file", z->cur[i].path, "scale", (double)z->cur[i].scale));
        json_object_set_new(j, "loras", a);
    }
    if (p->init_image) {
        json_object_set_new(j, "init_image", json_string(p->init_image));
        if (!p->control_image) json_object_set_new(j, "strength", json_real(im->strength));
    }
    if (p->mask) json_object_set_new(j, "mask", json_string(p->mask));
    if (p->mask && p->mask_invert) json_object_set_new(j, "mask_invert", json_true());
    if (p->control_image) {
        json_object_set_new(j, "control", json_string(p->control_image));
        json_object_set_new(j, "control_model", json_string(z->control_model ? z->control_model : ""));
        json_object_set_new(j, "control_scale", json_real(p->control_scale));
    }
    char *d = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
    json_decref(j);
    if (d && !p->noise) {
        /* the seed last, as a JSON number with every digit (jansson's integers end at 2^63-1) */
        const size_t n = strlen(d);
        *json = malloc(n + 32);
        if (*json) snprintf(*json, n + 32, "%.*s,\"seed\":%s}", (int)n - 1, d, seed_s);
        free(d);
    } else *json = d;
    return *info && *json ? 0 : zt_err_set(e, ZT_ERR_NOMEM, "out of host memory");
}

/* One image as PNG bytes (the texts above): what both the file and the
 * buffer variants write. */
static int generate_png_bytes(zturbo *z, const zturbo_params *p, uint8_t **png, size_t *png_len, zturbo_result *res,
                              zt_err *e) {
    *png = NULL;
    *png_len = 0;
    if (res) memset(res, 0, sizeof *res);
    if (!z || !p) return zt_err_set(e, ZT_ERR_ARG, "zturbo_generate_png: context and params must not be NULL");
    int rc = params_check(p, e);
    if (rc) return rc;
    images_in im;
    rc = images_load(p, 1, &im, e);
    if (rc) return rc;
    uint8_t *rgb = malloc((size_t)im.w * im.h * 3);
    if (!rgb) {
        images_free(&im);
        return zt_err_set(e, ZT_ERR_NOMEM, "out of host memory");
    }
    zt_gen_stats st;
    memset(&st, 0, sizeof st);
    int truncated = 0;
    char *info = NULL, *json = NULL;
    rc = run(z, p, &im, rgb, &st, &truncated, e);
    if (!rc && p->cancel && *p->cancel) rc = zt_err_set(e, ZT_ERR_INTERRUPTED, "interrupted before the PNG");
    if (!rc) rc = png_texts(z, p, &im, st.tokens, truncated, &info, &json, e);
    if (!rc) {
        if (p->on_phase) p->on_phase(p->user, ZTURBO_PHASE_WRITE);
        zt_png_text tx[3] = {{"parameters", info}, {"zturbo", json}, {"Software", "zturbo"}};
        rc = zt_png_encode(rgb, im.w, im.h, tx, 3, png, png_len, e);
    }
    if (!rc && res) fill_result(z, p, &im, &st, truncated, res);
    images_free(&im);
    free(info);
    free(json);
    free(rgb);
    return rc;
}

int zturbo_generate_png_buffer(zturbo *z, const zturbo_params *p, uint8_t **png, size_t *png_len, zturbo_result *res,
                               char *err, size_t errlen) {
    zt_err e = {0};
    if (!png || !png_len) return zt_err_set(&e, ZT_ERR_ARG, "zturbo_generate_png_buffer: png and png_len must not be NULL"),
                          fail(&e, err, errlen);
    int rc = generate_png_bytes(z, p, png, png_len, res, &e);
    return rc ? fail(&e, err, errlen) : 0;
}

int zturbo_generate_png(zturbo *z, const zturbo_params *p, const char *path, zturbo_result *res, char *err,
                        size_t errlen) {
    zt_err e = {0};
    if (res) memset(res, 0, sizeof *res);
    if (!path) return zt_err_set(&e, ZT_ERR_ARG, "zturbo_generate_png: no output path"), fail(&e, err, errlen);
    int rc = zt_output_check(path, &e); /* before the work: no symbolic link, device or folder replaced */
    uint8_t *png = NULL;
    size_t len = 0;
    if (!rc) rc = generate_png_bytes(z, p, &png, &len, res, &e);
    if (!rc) rc = zt_png_write_bytes(path, png, len, p->cancel, &e);
    free(png);
    if (rc && res) memset(res, 0, sizeof *res);
    return rc ? fail(&e, err, errlen) : 0;
}

int zturbo_images_ready(const zturbo *z, char *err, size_t errlen) {
    zt_err e = {0};
    int rc = z ? zt_pipeline_images_ready(z->p, &e) : zt_err_set(&e, ZT_ERR_ARG, "zturbo_images_ready: NULL context");
    return rc ? fail(&e, err, errlen) : 0;
}
