/* tools/mkmodel.c — write a random-weight Z-Image-Turbo checkpoint in the
 * exact Hugging Face snapshot layout (spec §1.1), for tests and for the
 * Python oracle (which loads it with diffusers / transformers).
 *
 *   bin/mkmodel --config tiny|full [--seed N] [--dtype f32|bf16] -o DIR
 *               [--tokenizer DIR] [--layout hf|comfy] [--scale SUBSTRING=FACTOR]...
 *
 * Layout written (K = 2 shards for tiny, 3 for full):
 *   model_index.json, scheduler/scheduler_config.json,
 *   text_encoder/{config.json, model-0000k-of-0000K.safetensors,
 *                 model.safetensors.index.json}             (BF16, "model." keys)
 *   tokenizer/{tokenizer.json, tokenizer_config.json, LICENSE}  (copied)
 *   transformer/{config.json, diffusion_pytorch_model-0000k-of-0000K.safetensors,
 *                diffusion_pytorch_model.safetensors.index.json} (F32 or BF16)
 *   vae/{config.json, diffusion_pytorch_model.safetensors}  (BF16, encoder too)
 *
 * --layout comfy writes the same weights (same seed, same values) as the
 * three single files ComfyUI users download instead (storage/comfy.h):
 *   DIR/z_image_turbo_{fp32,bf16}.safetensors  DiT in ComfyUI's NextDiT naming:
 *        x_embedder, final_layer, attention.qkv = to_q|to_k|to_v rows,
 *        attention.out, attention.q_norm/k_norm (F32 or BF16 per --dtype)
 *   DIR/qwen_3_4b.safetensors   text encoder, "model." keys (BF16)
 *   DIR/ae.safetensors          VAE in the original Flux (BFL) naming,
 *        encoder included, F32 like the real file
 * and no config or tokenizer files.
 *
 * --control union-1.0|union-2.0|union-2.1|union-2.1-lite writes a random
 * ControlNet-Union for the config's transformer instead (storage/catalog.h
 * zt_control_config), from diffusers' ZImageControlNetModel config of the
 * released models: 1.0: control_layers_places [0, 5, ..., 25], in_dim 16,
 * add_control_noise_refiner null; 2.0: [0, 2, ..., 28], in_dim 33,
 * "control_layers", refiner places [0, 1]; 2.1: the same with
 * "control_noise_refiner"; 2.1-lite: [0, 10, 20]. With the tiny config
 * (2 layers) every kind has places [0, 1]. --layout hf: a diffusers folder
 * DIR (config.json + diffusion_pytorch_model.safetensors); --layout single:
 * the one file DIR (*.safetensors) as released (no config; 2.0 keeps the
 * control_noise_refiner blocks with a zero before_proj, as the release).
 *
 * The tensor list is the catalog's (storage/catalog.c), so names and shapes
 * are the spec's. Everything goes to DIR.tmp-XXXXXX first, is synced, and is
 * renamed to DIR at the end: DIR never exists half-written. Tensors stream to
 * disk in 4 Mi-element chunks, so the full model needs little memory.
 *
 * Determinism: every tensor has its own generator seeded from (seed, name),
 * so the bytes of a tensor do not depend on sharding or order. Normal
 * variates are Irwin-Hall sums of four 16-bit uniforms (mean 0, variance 1,
 * bounded at +-3.46): integer arithmetic plus one exact-by-construction
 * float multiply, hence bit-identical on every machine and libm, and ~1 ns
 * per value. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zt_common.h"
#include "common/zt_dtype.h"
#include "storage/catalog.h"
#include "storage/comfy.h"
#include "storage/safetensors.h"

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static char g_tmp[PATH_MAX + 32];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static void cleanup_tmp(void) {
    if (g_tmp[0]) nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    g_tmp[0] = 0;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mkmodel: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    cleanup_tmp();
    exit(1);
}

#include "tools/mkmodel_init.h"

#define CHUNK_ELEMS (4u << 20)

/* --scale SUBSTRING=FACTOR: every tensor whose name contains SUBSTRING is
 * drawn as usual and multiplied by FACTOR (before rounding to the file's
 * dtype). For overflow tests of the fp16 path: the same checkpoint with a few
 * weights made large enough that fp16 activations overflow. */
#define MAX_SCALES 16
static struct {
    const char *sub;
    float factor;
} g_scale[MAX_SCALES];
static int g_n_scale;

static float scale_of(const char *name) {
    float f = 1.0f;
    for (int i = 0; i < g_n_scale; i++)
        if (strstr(name, g_scale[i].sub)) f *= g_scale[i].factor;
    return f;
}

static int write_tensor(zt_st_writer *w, const zt_ckpt_tensor *k, zt_dtype dt, uint64_t seed, void *buf,
                        zt_err *e) {
    uint64_t n = 1;
    for (int d = 0; d < k->ndim; d++) n *= (uint64_t)k->shape[d];
    uint64_t s = seed ^ fnv1a(k->name);
    rng r = {splitmix64(&s) | 1};
    float mean, sd = weight_std(k, &mean);
    float scale = (float)(sd / k_ih_sd);
    const float user = scale_of(k->name);
    mean *= user;
    scale *= user;
    for (uint64_t done = 0; done < n;) {
        if (g_stop) return zt_err_set(e, ZT_ERR_INTERRUPTED, "interrupted");
        uint32_t c = (uint32_t)ZT_MIN(n - done, (uint64_t)CHUNK_ELEMS);
        if (dt == ZT_DT_F32) {
            float *f = buf;
            for (uint32_t i = 0; i < c; i++) f[i] = mean + rng_normal(&r, scale);
        } else {
            uint16_t *h = buf;
            for (uint32_t i = 0; i < c; i++) h[i] = zt_f32_to_bf16(mean + rng_normal(&r, scale));
        }
        int rc = zt_st_writer_write(w, buf, (size_t)c * zt_dtype_size(dt), e);
        if (rc) return rc;
        done += c;
    }
    return ZT_OK;
}

/* ---- files ------------------------------------------------------------- */

static void path_of(char *out, size_t n, const char *dir, const char *rel) {
    if ((size_t)snprintf(out, n, "%s/%s", dir, rel) >= n) die("%s/%s: path too long", dir, rel);
}

static void make_dir(const char *root, const char *rel) {
    char p[PATH_MAX];
    path_of(p, sizeof p, root, rel);
    if (mkdir(p, 0755) && errno != EEXIST) die("%s: cannot create folder: %s", p, strerror(errno));
}

static void write_text(const char *root, const char *rel, const char *text) {
    char p[PATH_MAX];
    path_of(p, sizeof p, root, rel);
    FILE *f = fopen(p, "w");
    if (!f) die("%s: cannot create: %s", p, strerror(errno));
    size_t n = strlen(text);
    if (fwrite(text, 1, n, f) != n || fclose(f)) die("%s: write failed: %s", p, strerror(errno));
}

static void copy_file(const char *src, const char *root, const char *rel) {
    FILE *in = fopen(src, "rb");
    if (!in) die("%s: cannot open: %s (give the tokenizer folder with --tokenizer)", src, strerror(errno));
    char p[PATH_MAX];
    path_of(p, sizeof p, root, rel);
    FILE *out = fopen(p, "wb");
    if (!out) die("%s: cannot create: %s", p, strerror(errno));
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) die("%s: write failed: %s", p, strerror(errno));
    if (ferror(in)) die("%s: read failed", src);
    fclose(in);
    if (fclose(out)) die("%s: write failed: %s", p, strerror(errno));
}

/* Shortest decimal that reads back as the same float32, always with a '.'
 * or an exponent (so Python sees a float): 0.3611 stays "0.3611". */
static const char *fnum(float f, char *buf, size_t n) {
    if (f == (float)(long long)f && fabsf(f) < 1e15f) {
        snprintf(buf, n, "%.1f", (double)f);
        return buf;
    }
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, n, "%.*g", p, (double)f);
        if ((float)strtod(buf, NULL) == f) break;
    }
    if (!strpbrk(buf, ".e")) strncat(buf, ".0", n - strlen(buf) - 1);
    return buf;
}

/* ---- config files (diffusers / transformers loadable) -------------------- */

static void write_configs(const char *root, const zt_model_config *c) {
    char buf[8192], a[32], b[32], d[32], f[32];
    write_text(root, "model_index.json",
               "{\n"
               "  \"_class_name\": \"ZImagePipeline\",\n"
               "  \"_diffusers_version\": \"0.36.0.dev0\",\n"
               "  \"scheduler\": [\n    \"diffusers\",\n    \"FlowMatchEulerDiscreteScheduler\"\n  ],\n"
               "  \"text_encoder\": [\n    \"transformers\",\n    \"Qwen3Model\"\n  ],\n"
               "  \"tokenizer\": [\n    \"transformers\",\n    \"Qwen2Tokenizer\"\n  ],\n"
               "  \"transformer\": [\n    \"diffusers\",\n    \"ZImageTransformer2DModel\"\n  ],\n"
               "  \"vae\": [\n    \"diffusers\",\n    \"AutoencoderKL\"\n  ]\n"
               "}\n");
    snprintf(buf, sizeof buf,
             "{\n"
             "  \"_class_name\": \"FlowMatchEulerDiscreteScheduler\",\n"
             "  \"_diffusers_version\": \"0.36.0.dev0\",\n"
             "  \"num_train_timesteps\": %d,\n"
             "  \"shift\": %s,\n"
             "  \"use_dynamic_shifting\": %s\n"
             "}\n",
             c->sched_train_steps, fnum(c->sched_shift, a, sizeof a), c->sched_dynamic ? "true" : "false");
    write_text(root, "scheduler/scheduler_config.json", buf);
    snprintf(buf, sizeof buf,
             "{\n"
             "  \"_class_name\": \"ZImageTransformer2DModel\",\n"
             "  \"_diffusers_version\": \"0.36.0.dev0\",\n"
             "  \"all_f_patch_size\": [\n    %d\n  ],\n"
             "  \"all_patch_size\": [\n    %d\n  ],\n"
             "  \"axes_dims\": [\n    %d,\n    %d,\n    %d\n  ],\n"
             "  \"axes_lens\": [\n    %d,\n    %d,\n    %d\n  ],\n"
             "  \"cap_feat_dim\": %d,\n"
             "  \"dim\": %d,\n"
             "  \"in_channels\": %d,\n"
             "  \"n_heads\": %d,\n"
             "  \"n_kv_heads\": %d,\n"
             "  \"n_layers\": %d,\n"
             "  \"n_refiner_layers\": %d,\n"
             "  \"norm_eps\": %s,\n"
             "  \"qk_norm\": true,\n"
             "  \"rope_theta\": %s,\n"
             "  \"t_scale\": %s\n"
             "}\n",
             c->f_patch, c->patch, c->axes_dims[0], c->axes_dims[1], c->axes_dims[2], c->axes_lens[0],
             c->axes_lens[1], c->axes_lens[2], c->cap_feat_dim, c->dim, c->in_channels, c->n_heads, c->n_kv_heads,
             c->n_layers, c->n_refiner_layers, fnum(c->norm_eps, a, sizeof a), fnum(c->rope_theta, b, sizeof b),
             fnum(c->t_scale, d, sizeof d));
    write_text(root, "transformer/config.json", buf);
    snprintf(buf, sizeof buf,
             "{\n"
             "  \"architectures\": [\n    \"Qwen3ForCausalLM\"\n  ],\n"
             "  \"attention_bias\": false,\n"
             "  \"attention_dropout\": 0.0,\n"
             "  \"bos_token_id\": 151643,\n"
             "  \"dtype\": \"bfloat16\",\n"
             "  \"eos_token_id\": 151645,\n"
             "  \"head_dim\": %d,\n"
             "  \"hidden_act\": \"silu\",\n"
             "  \"hidden_size\": %d,\n"
             "  \"initializer_range\": 0.02,\n"
             "  \"intermediate_size\": %d,\n"
             "  \"max_position_embeddings\": 40960,\n"
             "  \"max_window_layers\": %d,\n"
             "  \"model_type\": \"qwen3\",\n"
             "  \"num_attention_heads\": %d,\n"
             "  \"num_hidden_layers\": %d,\n"
             "  \"num_key_value_heads\": %d,\n"
             "  \"rms_norm_eps\": %s,\n"
             "  \"rope_scaling\": null,\n"
             "  \"rope_theta\": %s,\n"
             "  \"sliding_window\": null,\n"
             "  \"tie_word_embeddings\": true,\n"
             "  \"torch_dtype\": \"bfloat16\",\n"
             "  \"transformers_version\": \"4.51.0\",\n"
             "  \"use_cache\": true,\n"
             "  \"use_sliding_window\": false,\n"
             "  \"vocab_size\": %d\n"
             "}\n",
             c->te_head_dim, c->te_hidden, c->te_inter, c->te_layers, c->te_heads, c->te_layers, c->te_kv_heads,
             fnum(c->te_eps, a, sizeof a), fnum(c->te_rope_theta, b, sizeof b), c->te_vocab);
    write_text(root, "text_encoder/config.json", buf);
    char boc[128] = "", down[512] = "", up[512] = "";
    for (int i = 0; i < c->vae_n_blocks; i++) {
        const char *sep = i ? ",\n" : "";
        snprintf(boc + strlen(boc), sizeof boc - strlen(boc), "%s    %d", sep, c->vae_block_out[i]);
        snprintf(down + strlen(down), sizeof down - strlen(down), "%s    \"DownEncoderBlock2D\"", sep);
        snprintf(up + strlen(up), sizeof up - strlen(up), "%s    \"UpDecoderBlock2D\"", sep);
    }
    snprintf(buf, sizeof buf,
             "{\n"
             "  \"_class_name\": \"AutoencoderKL\",\n"
             "  \"_diffusers_version\": \"0.36.0.dev0\",\n"
             "  \"act_fn\": \"silu\",\n"
             "  \"block_out_channels\": [\n%s\n  ],\n"
             "  \"down_block_types\": [\n%s\n  ],\n"
             "  \"force_upcast\": true,\n"
             "  \"in_channels\": 3,\n"
             "  \"latent_channels\": %d,\n"
             "  \"latents_mean\": null,\n"
             "  \"latents_std\": null,\n"
             "  \"layers_per_block\": %d,\n"
             "  \"mid_block_add_attention\": true,\n"
             "  \"norm_num_groups\": %d,\n"
             "  \"out_channels\": 3,\n"
             "  \"sample_size\": 1024,\n"
             "  \"scaling_factor\": %s,\n"
             "  \"shift_factor\": %s,\n"
             "  \"up_block_types\": [\n%s\n  ],\n"
             "  \"use_post_quant_conv\": %s,\n"
             "  \"use_quant_conv\": false\n"
             "}\n",
             boc, down, c->vae_latent, c->vae_layers_per_block, c->vae_groups, fnum(c->vae_scale, a, sizeof a),
             fnum(c->vae_shift, f, sizeof f), up, c->vae_post_quant_conv ? "true" : "false");
    write_text(root, "vae/config.json", buf);
}

/* ---- weights ------------------------------------------------------------- */

static uint64_t ckpt_bytes(const zt_ckpt_tensor *k, zt_dtype dt) {
    uint64_t n = zt_dtype_size(dt);
    for (int d = 0; d < k->ndim; d++) n *= (uint64_t)k->shape[d];
    return n;
}

typedef struct {
    uint64_t bytes_done, bytes_total;
    double t0;
    int verbose;
} progress;

static void report(progress *p) {
    if (!p->verbose) return;
    double t = zt_now() - p->t0;
    fprintf(stderr, "\rmkmodel: %6.2f / %.2f GB  %5.1f s", p->bytes_done / 1e9, p->bytes_total / 1e9, t);
}

/* Write one component: all catalog checkpoint tensors of `comp`, split into
 * n_shards files by cumulative bytes (n_shards 0: one unsharded file). */
static void write_component(const char *root, const char *sub, const char *base, const zt_catalog *cat,
                            zt_component comp, zt_dtype dt, int n_shards, uint64_t seed, void *buf, progress *pg) {
    int n = 0;
    uint64_t total = 0;
    for (int i = 0; i < cat->n_ckpt; i++)
        if (cat->ckpt[i].comp == comp) {
            n++;
            total += ckpt_bytes(&cat->ckpt[i], dt);
        }
    const zt_ckpt_tensor **ks = malloc((size_t)n * sizeof *ks);
    int *shard = malloc((size_t)n * sizeof *shard);
    zt_st_wtensor *ws = malloc((size_t)n * sizeof *ws);
    if (!ks || !shard || !ws) die("out of memory");
    int j = 0, files = n_shards ? n_shards : 1;
    uint64_t acc = 0;
    for (int i = 0; i < cat->n_ckpt; i++) {
        const zt_ckpt_tensor *k = &cat->ckpt[i];
        if (k->comp != comp) continue;
        ks[j] = k;
        /* the shard a tensor starts in: cumulative bytes before it, scaled */
        int s = (int)((double)acc / (double)total * files);
        shard[j] = s >= files ? files - 1 : s;
        acc += ckpt_bytes(k, dt);
        j++;
    }
    char name[256], rel[512], path[PATH_MAX + 600];
    zt_err e = {0};
    for (int s = 0; s < files; s++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (shard[i] == s) {
                ws[m].name = ks[i]->name;
                ws[m].dtype = dt;
                ws[m].ndim = ks[i]->ndim;
                for (int d = 0; d < ks[i]->ndim; d++) ws[m].shape[d] = ks[i]->shape[d];
                m++;
            }
        if (n_shards) snprintf(name, sizeof name, "%s-%05d-of-%05d.safetensors", base, s + 1, files);
        else snprintf(name, sizeof name, "%s.safetensors", base);
        snprintf(rel, sizeof rel, "%s/%s", sub, name);
        path_of(path, sizeof path, root, rel);
        zt_st_writer *w;
        if (zt_st_writer_open(path, ws, m, &w, &e)) die("%s", e.msg);
        for (int t; (t = zt_st_writer_next(w)) >= 0;) {
            const zt_ckpt_tensor *k = NULL;
            for (int i = 0; i < n && !k; i++)
                if (ks[i]->name == ws[t].name) k = ks[i];
            if (write_tensor(w, k, dt, seed, buf, &e)) {
                zt_st_writer_abort(w);
                die("%s: %s", path, e.msg);
            }
            pg->bytes_done += ckpt_bytes(k, dt);
            report(pg);
        }
        if (zt_st_writer_close(w, &e)) die("%s", e.msg);
    }
    if (n_shards) {
        /* index: metadata.total_size + weight_map (sorted keys) */
        size_t cap = 256 + (size_t)n * 160, at = 0;
        char *idx = malloc(cap);
        int *ord = malloc((size_t)n * sizeof *ord);
        if (!idx || !ord) die("out of memory");
        for (int i = 0; i < n; i++) ord[i] = i;
        for (int a = 1; a < n; a++) { /* insertion sort by name: n <= ~600 */
            int v = ord[a], b = a - 1;
            while (b >= 0 && strcmp(ks[ord[b]]->name, ks[v]->name) > 0) {
                ord[b + 1] = ord[b];
                b--;
            }
            ord[b + 1] = v;
        }
        at += (size_t)snprintf(idx + at, cap - at, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n",
                               (unsigned long long)total);
        for (int i = 0; i < n; i++) {
            int t = ord[i];
            at += (size_t)snprintf(idx + at, cap - at, "    \"%s\": \"%s-%05d-of-%05d.safetensors\"%s\n", ks[t]->name,
                                   base, shard[t] + 1, files, i + 1 < n ? "," : "");
        }
        snprintf(idx + at, cap - at, "  }\n}\n");
        snprintf(rel, sizeof rel, "%s/%s.safetensors.index.json", sub, base);
        write_text(root, rel, idx);
        free(idx);
        free(ord);
    }
    free(ks);
    free(shard);
    free(ws);
}

/* ---- ComfyUI layout ------------------------------------------------------
 * The names come from the one mapping of the reader (zt_comfy_map_key,
 * storage/comfy.h); tests/test_comfy_keys.c checks that mapping against key
 * names from ComfyUI and diffusers, so these files are not a test of the
 * mapping against itself. */

typedef struct {
    char name[256];
    const zt_ckpt_tensor *parts[3]; /* written back to back */
    int n_parts;
    int ndim;
    int64_t shape[ZT_MAX_DIMS];
} ctensor;

/* DiT "comfy" (to_q|to_k|to_v fused into attention.qkv) and VAE "bfl"
 * (attention projections as 1x1 convs) files of one component. */
static int comfy_component(const zt_catalog *cat, zt_component comp, ctensor *out) {
    int n = 0;
    for (int i = 0; i < cat->n_ckpt; i++) {
        const zt_ckpt_tensor *k = &cat->ckpt[i];
        if (k->comp != comp) continue;
        zt_comfy_key m;
        zt_comfy_map_key(&cat->cfg, comp, k->name, &m);
        if (m.fused_rows && m.row0) continue; /* written with the fused tensor's first part */
        ctensor *t = &out[n++];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", m.key);
        t->ndim = k->ndim;
        memcpy(t->shape, k->shape, sizeof t->shape);
        t->parts[t->n_parts++] = k;
        if (m.fused_rows) { /* the other parts: the catalog tensors mapped into the same key */
            int64_t rows = k->shape[0];
            for (int j = 0; j < cat->n_ckpt && t->n_parts < 3; j++) {
                zt_comfy_key m2;
                if (cat->ckpt[j].comp != comp || j == i) continue;
                zt_comfy_map_key(&cat->cfg, comp, cat->ckpt[j].name, &m2);
                if (strcmp(m2.key, m.key) || m2.row0 != rows) continue;
                t->parts[t->n_parts++] = &cat->ckpt[j];
                rows += cat->ckpt[j].shape[0];
                j = -1; /* look for the next part from the start */
            }
            if (rows != m.fused_rows) die("comfy layout: %s: parts cover %lld of %lld rows", m.key, (long long)rows,
                                          (long long)m.fused_rows);
            t->shape[0] = rows;
        }
        if (m.conv1x1 && t->ndim == 2) t->ndim = 4, t->shape[2] = t->shape[3] = 1;
    }
    return n;
}
static int comfy_dit(const zt_catalog *cat, ctensor *out) { return comfy_component(cat, ZT_COMP_DIT, out); }
static int comfy_vae(const zt_catalog *cat, ctensor *out) { return comfy_component(cat, ZT_COMP_VAE, out); }

static int comfy_te(const zt_catalog *cat, ctensor *out) {
    int n = 0;
    for (int i = 0; i < cat->n_ckpt; i++) {
        const zt_ckpt_tensor *k = &cat->ckpt[i];
        if (k->comp != ZT_COMP_TEXT) continue;
        ctensor *t = &out[n++];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", k->name);
        t->parts[t->n_parts++] = k;
        t->ndim = k->ndim;
        memcpy(t->shape, k->shape, sizeof t->shape);
    }
    return n;
}

static void write_comfy_file(const char *root, const char *file, const ctensor *ts, int n, zt_dtype dt,
                             uint64_t seed, void *buf, progress *pg) {
    char path[PATH_MAX + 300];
    zt_err e = {0};
    zt_st_wtensor *ws = malloc((size_t)n * sizeof *ws);
    if (!ws) die("out of memory");
    for (int i = 0; i < n; i++) {
        ws[i].name = ts[i].name;
        ws[i].dtype = dt;
        ws[i].ndim = ts[i].ndim;
        for (int d = 0; d < ts[i].ndim; d++) ws[i].shape[d] = ts[i].shape[d];
    }
    path_of(path, sizeof path, root, file);
    zt_st_writer *w;
    if (zt_st_writer_open(path, ws, n, &w, &e)) die("%s", e.msg);
    for (int t; (t = zt_st_writer_next(w)) >= 0;)
        for (int p = 0; p < ts[t].n_parts; p++) {
            if (write_tensor(w, ts[t].parts[p], dt, seed, buf, &e)) {
                zt_st_writer_abort(w);
                die("%s: %s", path, e.msg);
            }
            pg->bytes_done += ckpt_bytes(ts[t].parts[p], dt);
            report(pg);
        }
    if (zt_st_writer_close(w, &e)) die("%s", e.msg);
    free(ws);
}

static void write_comfy(const char *root, const zt_catalog *cat, zt_dtype dit_dt, uint64_t seed, void *buf,
                        progress *pg) {
    ctensor *ts = malloc((size_t)cat->n_ckpt * sizeof *ts);
    if (!ts) die("out of memory");
    int n = comfy_dit(cat, ts);
    write_comfy_file(root, dit_dt == ZT_DT_BF16 ? "z_image_turbo_bf16.safetensors" : "z_image_turbo_fp32.safetensors",
                     ts, n, dit_dt, seed, buf, pg);
    n = comfy_te(cat, ts);
    write_comfy_file(root, "qwen_3_4b.safetensors", ts, n, ZT_DT_BF16, seed, buf, pg);
    n = comfy_vae(cat, ts);
    write_comfy_file(root, "ae.safetensors", ts, n, ZT_DT_F32, seed, buf, pg);
    free(ts);
}

static void find_tokenizer(char *out, size_t n, const char *given) {
    if (given) {
        snprintf(out, n, "%s", given);
        return;
    }
    const char *rootenv = getenv("ZT_ROOT");
    char exe[PATH_MAX];
    ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *cands[3];
    char c0[PATH_MAX + 64], c1[PATH_MAX + 64];
    int nc = 0;
    if (rootenv) {
        snprintf(c0, sizeof c0, "%s/tests/data/qwen3-tokenizer", rootenv);
        cands[nc++] = c0;
    }
    if (l > 0) {
        exe[l] = 0;
        char *s = strrchr(exe, '/');
        if (s) *s = 0; /* bin/ */
        snprintf(c1, sizeof c1, "%s/../tests/data/qwen3-tokenizer", exe);
        cands[nc++] = c1;
    }
    cands[nc++] = "tests/data/qwen3-tokenizer";
    for (int i = 0; i < nc; i++) {
        char t[PATH_MAX + 32];
        snprintf(t, sizeof t, "%s/tokenizer.json", cands[i]);
        if (access(t, R_OK) == 0) {
            snprintf(out, n, "%s", cands[i]);
            return;
        }
    }
    snprintf(out, n, "%s", cands[nc - 1]);
}

/* The Hugging Face snapshot layout (the default). */
static void write_hf(const char *root, const zt_catalog *cat, const char *tok, zt_dtype dit_dt, int shards,
                     uint64_t seed, void *buf, progress *pg) {
    char tokdir[PATH_MAX];
    find_tokenizer(tokdir, sizeof tokdir, tok);
    const char *subs[] = {"scheduler", "text_encoder", "tokenizer", "transformer", "vae"};
    for (size_t i = 0; i < ZT_ARRAY_LEN(subs); i++) make_dir(root, subs[i]);
    write_configs(root, &cat->cfg);
    static const char *tok_files[] = {"tokenizer.json", "tokenizer_config.json", "LICENSE"};
    for (size_t i = 0; i < ZT_ARRAY_LEN(tok_files); i++) {
        char src[PATH_MAX + 64], rel[64];
        snprintf(src, sizeof src, "%s/%s", tokdir, tok_files[i]);
        snprintf(rel, sizeof rel, "tokenizer/%s", tok_files[i]);
        copy_file(src, root, rel);
    }
    write_component(root, "transformer", "diffusion_pytorch_model", cat, ZT_COMP_DIT, dit_dt, shards, seed, buf, pg);
    write_component(root, "text_encoder", "model", cat, ZT_COMP_TEXT, ZT_DT_BF16, shards, seed, buf, pg);
    write_component(root, "vae", "diffusion_pytorch_model", cat, ZT_COMP_VAE, ZT_DT_BF16, 0, seed, buf, pg);
}

/* ---- ControlNet-Union ---------------------------------------------------- */

static int control_kind(const char *kind, const zt_model_config *c, zt_control_config *cc) {
    memset(cc, 0, sizeof *cc);
    int step, in_dim = 33;
    zt_control_refiner ref = ZT_CONTROL_REFINER_BLOCKS;
    if (!strcmp(kind, "union-1.0")) step = 5, in_dim = 16, ref = ZT_CONTROL_REFINER_PLAIN;
    else if (!strcmp(kind, "union-2.0")) step = 2, ref = ZT_CONTROL_REFINER_LAYERS;
    else if (!strcmp(kind, "union-2.1")) step = 2;
    else if (!strcmp(kind, "union-2.1-lite")) step = 10;
    else return -1;
    const int n = c->n_layers == 30 ? 30 / step : c->n_layers; /* tiny: every layer */
    if (c->n_layers != 30) step = 1;
    cc->n_layers = n;
    for (int k = 0; k < n; k++) cc->places[k] = k * step;
    cc->in_dim = in_dim;
    cc->refiner = ref;
    cc->n_refiner_blocks = ref == ZT_CONTROL_REFINER_LAYERS ? 0 : c->n_refiner_layers;
    cc->n_refiner_places = ref == ZT_CONTROL_REFINER_PLAIN ? 0 : c->n_refiner_layers;
    for (int i = 0; i < cc->n_refiner_places; i++) cc->refiner_places[i] = i;
    return 0;
}

static void control_config_json(const char *root, const zt_model_config *c, const zt_control_config *cc) {
    char t[4096], pl[1024] = "", rp[64] = "null";
    for (int k = 0; k < cc->n_layers; k++)
        snprintf(pl + strlen(pl), sizeof pl - strlen(pl), "%s%d", k ? ", " : "", cc->places[k]);
    if (cc->refiner != ZT_CONTROL_REFINER_PLAIN) {
        snprintf(rp, sizeof rp, "[");
        for (int i = 0; i < cc->n_refiner_places; i++)
            snprintf(rp + strlen(rp), sizeof rp - strlen(rp), "%s%d", i ? ", " : "", cc->refiner_places[i]);
        snprintf(rp + strlen(rp), sizeof rp - strlen(rp), "]");
    }
    const char *mode = cc->refiner == ZT_CONTROL_REFINER_PLAIN    ? "null"
                       : cc->refiner == ZT_CONTROL_REFINER_LAYERS ? "\"control_layers\""
                                                                  : "\"control_noise_refiner\"";
    char eps[32];
    snprintf(t, sizeof t,
             "{\n  \"_class_name\": \"ZImageControlNetModel\",\n  \"_diffusers_version\": \"0.42.1\",\n"
             "  \"add_control_noise_refiner\": %s,\n  \"all_f_patch_size\": [%d],\n  \"all_patch_size\": [%d],\n"
             "  \"control_in_dim\": %d,\n  \"control_layers_places\": [%s],\n  \"control_refiner_layers_places\": %s,\n"
             "  \"dim\": %d,\n  \"n_heads\": %d,\n  \"n_kv_heads\": %d,\n  \"n_refiner_layers\": %d,\n"
             "  \"norm_eps\": %s,\n  \"qk_norm\": true\n}\n",
             mode, c->f_patch, c->patch, cc->in_dim, pl, rp, c->dim, c->n_heads, c->n_kv_heads, c->n_refiner_layers,
             fnum(c->norm_eps, eps, sizeof eps));
    write_text(root, "config.json", t);
}

/* The control tensors of a catalog built with the control model, into one
 * file `path`; zero_before: the refiner's before_proj all zero (2.0 as released). */
static void write_control_file(const char *path, const zt_catalog *cat, zt_dtype dt, int zero_before, uint64_t seed,
                               void *buf, progress *pg) {
    int n = 0;
    for (int i = 0; i < cat->n_ckpt; i++) n += !strncmp(cat->ckpt[i].name, "control_", 8);
    zt_st_wtensor *ws = malloc((size_t)n * sizeof *ws);
    const zt_ckpt_tensor **ks = malloc((size_t)n * sizeof *ks);
    if (!ws || !ks) die("out of memory");
    int m = 0;
    for (int i = 0; i < cat->n_ckpt; i++) {
        const zt_ckpt_tensor *k = &cat->ckpt[i];
        if (strncmp(k->name, "control_", 8)) continue;
        ks[m] = k;
        ws[m].name = k->name;
        ws[m].dtype = dt;
        ws[m].ndim = k->ndim;
        for (int d = 0; d < k->ndim; d++) ws[m].shape[d] = k->shape[d];
        m++;
    }
    zt_err e = {0};
    zt_st_writer *w;
    if (zt_st_writer_open(path, ws, m, &w, &e)) die("%s", e.msg);
    for (int t; (t = zt_st_writer_next(w)) >= 0;) {
        const zt_ckpt_tensor *k = NULL;
        for (int i = 0; i < m && !k; i++)
            if (ks[i]->name == ws[t].name) k = ks[i];
        int rc;
        if (zero_before && strstr(k->name, "control_noise_refiner.") && strstr(k->name, ".before_proj.")) {
            const uint64_t bytes = ckpt_bytes(k, dt);
            memset(buf, 0, bytes);
            rc = zt_st_writer_write(w, buf, bytes, &e);
        } else {
            rc = write_tensor(w, k, dt, seed, buf, &e);
        }
        if (rc) {
            zt_st_writer_abort(w);
            die("%s: %s", path, e.msg);
        }
        pg->bytes_done += ckpt_bytes(k, dt);
        report(pg);
    }
    if (zt_st_writer_close(w, &e)) die("%s", e.msg);
    free(ws);
    free(ks);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: mkmodel --config tiny|full [--seed N] [--dtype f32|bf16] -o DIR [--tokenizer DIR]\n"
            "               [--layout hf|comfy] [--scale SUBSTRING=FACTOR]... [-q]\n"
            "       mkmodel --config tiny|full --control union-1.0|union-2.0|union-2.1|union-2.1-lite\n"
            "               [--seed N] [--dtype f32|bf16] [--layout hf|single] -o DIR|FILE.safetensors\n"
            "  Writes a random-weight Z-Image-Turbo snapshot (Hugging Face layout) to DIR.\n"
            "  --layout comfy: the same weights as ComfyUI's three single files instead\n"
            "  --dtype: transformer weights on disk (text encoder and VAE are always bf16); default f32\n"
            "  --seed:  64-bit seed, default 1\n"
            "  --scale: multiply every tensor whose name contains SUBSTRING by FACTOR\n"
            "           (repeatable; overflow tests of the fp16 path)\n");
}

int main(int argc, char **argv) {
    const char *config = NULL, *out = NULL, *dtype = "f32", *tok = NULL, *layout = "hf", *control = NULL;
    uint64_t seed = 1;
    int quiet = 0;
    static const struct option opts[] = {{"config", required_argument, 0, 'c'}, {"seed", required_argument, 0, 's'},
                                         {"dtype", required_argument, 0, 'd'},  {"out", required_argument, 0, 'o'},
                                         {"tokenizer", required_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},         {"layout", required_argument, 0, 'l'},
                                         {"scale", required_argument, 0, 'x'},  {"control", required_argument, 0, 'C'},
                                         {0, 0, 0, 0}};
    for (int ch; (ch = getopt_long(argc, argv, "c:s:d:o:t:l:qh", opts, NULL)) != -1;) {
        switch (ch) {
        case 'C': control = optarg; break;
        case 'x': {
            char *eq = strrchr(optarg, '='), *end = NULL;
            double f = eq ? strtod(eq + 1, &end) : 0;
            if (!eq || eq == optarg || !end || *end || eq[1] == 0 || !(f > 0 && f < 1e6) || g_n_scale == MAX_SCALES) {
                fprintf(stderr, "mkmodel: --scale '%s' must be SUBSTRING=FACTOR with 0 < FACTOR < 1e6 (at most %d)\n",
                        optarg, MAX_SCALES);
                return 2;
            }
            *eq = 0;
            g_scale[g_n_scale].sub = optarg;
            g_scale[g_n_scale++].factor = (float)f;
            break;
        }
        case 'c': config = optarg; break;
        case 's': {
            char *end;
            errno = 0;
            seed = strtoull(optarg, &end, 0);
            if (errno || *end || !*optarg) {
                fprintf(stderr, "mkmodel: --seed '%s' is not an unsigned integer\n", optarg);
                return 2;
            }
            break;
        }
        case 'd': dtype = optarg; break;
        case 'o': out = optarg; break;
        case 't': tok = optarg; break;
        case 'l': layout = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!config || !out || optind != argc) {
        usage(stderr);
        return 2;
    }
    zt_dtype dit_dt;
    if (!strcmp(dtype, "f32")) dit_dt = ZT_DT_F32;
    else if (!strcmp(dtype, "bf16")) dit_dt = ZT_DT_BF16;
    else {
        fprintf(stderr, "mkmodel: --dtype '%s' must be f32 or bf16\n", dtype);
        return 2;
    }
    int comfy = !strcmp(layout, "comfy"), single = !strcmp(layout, "single");
    if (control && !single && strcmp(layout, "hf")) {
        fprintf(stderr, "mkmodel: --layout '%s' with --control must be hf or single\n", layout);
        return 2;
    }
    if (!control && !comfy && strcmp(layout, "hf")) {
        fprintf(stderr, "mkmodel: --layout '%s' must be hf or comfy\n", layout);
        return 2;
    }
    zt_model_config cfg;
    zt_err e = {0};
    if (zt_config_preset(config, &cfg, &e)) {
        fprintf(stderr, "mkmodel: %s\n", e.msg);
        return 2;
    }
    zt_control_config cc;
    memset(&cc, 0, sizeof cc);
    if (control && control_kind(control, &cfg, &cc)) {
        fprintf(stderr, "mkmodel: --control '%s' must be union-1.0, union-2.0, union-2.1 or union-2.1-lite\n", control);
        return 2;
    }
    if (control && single && (strlen(out) < 13 || strcmp(out + strlen(out) - 12, ".safetensors"))) {
        fprintf(stderr, "mkmodel: --layout single writes one file: -o must end in .safetensors\n");
        return 2;
    }
    /* a 2.0 release file also holds control_noise_refiner blocks (zero before_proj): write them */
    zt_control_config cw = cc;
    if (control && single && cc.refiner == ZT_CONTROL_REFINER_LAYERS) {
        cw.refiner = ZT_CONTROL_REFINER_BLOCKS;
        cw.n_refiner_blocks = cfg.n_refiner_layers;
    }
    zt_catalog cat;
    if (zt_catalog_build_control(&cfg, control ? &cw : NULL, &cat, &e)) die("%s", e.msg);
    int full = !strcmp(config, "full");
    static char outbuf[PATH_MAX];
    if (strlen(out) >= sizeof outbuf) die("%s: path too long", out);
    snprintf(outbuf, sizeof outbuf, "%s", out);
    for (size_t l = strlen(outbuf); l > 1 && outbuf[l - 1] == '/'; l--) outbuf[l - 1] = 0;
    out = outbuf;
    int shards = full ? 3 : 2;

    /* final folder must not exist; temp folder next to it */
    struct stat st;
    if (stat(out, &st) == 0) die("%s: already exists (remove it first)", out);
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", out);
    size_t pl = strlen(parent);
    while (pl > 1 && parent[pl - 1] == '/') parent[--pl] = 0;
    char *slash = strrchr(parent, '/');
    if (slash == parent) parent[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(parent, sizeof parent, ".");
    char cmd[PATH_MAX + 32];
    if (stat(parent, &st)) {
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", parent);
        if (strchr(parent, '\'') || system(cmd) != 0) die("%s: cannot create the parent folder", parent);
    }
    if (strlen(out) > sizeof g_tmp - 16) die("%s: path too long", out);
    snprintf(g_tmp, sizeof g_tmp, "%s.tmp-XXXXXX", out);
    if (!mkdtemp(g_tmp)) {
        int err = errno;
        g_tmp[0] = 0;
        die("%s: cannot create a temporary folder next to it: %s", out, strerror(err));
    }
    mode_t um = umask(0);
    umask(um);
    if (chmod(g_tmp, 0777 & ~um)) die("%s: chmod: %s", g_tmp, strerror(errno)); /* mkdtemp made it 0700 */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    progress pg = {0, 0, zt_now(), !quiet && isatty(2)};
    if (control) {
        const zt_dtype cdt = dit_dt;
        for (int i = 0; i < cat.n_ckpt; i++)
            if (!strncmp(cat.ckpt[i].name, "control_", 8)) pg.bytes_total += ckpt_bytes(&cat.ckpt[i], cdt);
        void *cbuf = malloc((size_t)CHUNK_ELEMS * 4);
        if (!cbuf) die("out of memory");
        char path[PATH_MAX + 128];
        if (single) {
            snprintf(path, sizeof path, "%s/control.safetensors", g_tmp);
        } else {
            control_config_json(g_tmp, &cfg, &cc);
            snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", g_tmp);
        }
        write_control_file(path, &cat, cdt, single && cc.refiner == ZT_CONTROL_REFINER_LAYERS, seed, cbuf, &pg);
        free(cbuf);
        if (g_stop) die("interrupted");
        if (single) { /* the file under the final name, then the empty folder away */
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || fsync(fd)) die("%s: sync failed: %s", path, strerror(errno));
            close(fd);
            if (rename(path, out) || rmdir(g_tmp)) die("rename %s -> %s: %s", path, out, strerror(errno));
            g_tmp[0] = 0;
        } else {
            int dfd = open(g_tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd < 0 || syncfs(dfd)) die("%s: sync failed: %s", g_tmp, strerror(errno));
            close(dfd);
            if (rename(g_tmp, out)) die("rename %s -> %s: %s", g_tmp, out, strerror(errno));
            g_tmp[0] = 0;
        }
        if (pg.verbose) fputc('\n', stderr);
        if (!quiet)
            printf("mkmodel: wrote %s (ControlNet %s for the %s config, %s layout, seed %llu): %llu bytes in %.1f s\n", out,
                   control, config, single ? "single-file" : "diffusers", (unsigned long long)seed,
                   (unsigned long long)pg.bytes_total, zt_now() - pg.t0);
        zt_catalog_free(&cat);
        return 0;
    }
    for (int i = 0; i < cat.n_ckpt; i++)
        pg.bytes_total += ckpt_bytes(&cat.ckpt[i], cat.ckpt[i].comp == ZT_COMP_DIT                ? dit_dt
                                                   : comfy && cat.ckpt[i].comp == ZT_COMP_VAE ? ZT_DT_F32
                                                                                               : ZT_DT_BF16);
    void *buf = malloc((size_t)CHUNK_ELEMS * 4);
    if (!buf) die("out of memory");
    if (comfy) write_comfy(g_tmp, &cat, dit_dt, seed, buf, &pg);
    else write_hf(g_tmp, &cat, tok, dit_dt, shards, seed, buf, &pg);
    free(buf);
    if (g_stop) die("interrupted");

    /* durable, then visible under the final name */
    int dfd = open(g_tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || syncfs(dfd)) die("%s: sync failed: %s", g_tmp, strerror(errno));
    close(dfd);
    if (rename(g_tmp, out)) die("rename %s -> %s: %s", g_tmp, out, strerror(errno));
    g_tmp[0] = 0;
    if (pg.verbose) fputc('\n', stderr);
    if (!quiet)
        printf("mkmodel: wrote %s (%s config, %s layout, transformer %s, seed %llu): %llu bytes of weights in %.1f s\n",
               out, config, layout, dtype, (unsigned long long)seed, (unsigned long long)pg.bytes_total, zt_now() - pg.t0);
    zt_catalog_free(&cat);
    return 0;
}
