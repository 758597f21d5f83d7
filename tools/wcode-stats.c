/* tools/wcode-stats.c — how compressible are the bf16 weights of a model?
 * The measurements behind the coded-weight format (storage/wcode.h).
 *
 *   bin/wcode-stats -m MODEL [--units SUBSTR] [--chunk-elems N] [--max-units N]
 *   bin/wcode-stats --synth tiny|full [--seed N] [--dist normal|laplace|mix|t3] [...]
 *   bin/wcode-stats --store-ratios STORE   (coded / bf16 bytes per component, from the index)
 *
 * MODEL is anything zt_source_open reads (snapshot, ComfyUI files, store).
 * --synth builds the unit images in memory from mkmodel's own generator
 * (tools/mkmodel_init.h: the same values `mkmodel --dtype bf16` writes,
 * tensor by tensor), so full-size statistics need no 20 GB checkpoint.
 *
 * A bf16 value is sign (1) | exponent (8) | mantissa (7). For each tensor
 * class (DiT attention / FFN / adaLN / embedders / norms / biases, text
 * encoder, VAE) it prints:
 *   H(exp)    exponent entropy over the class, bits
 *   H(exp)/ck the mean of per-chunk exponent entropies (what a per-chunk
 *             code can approach)
 *   H(s|m)    entropy of the 8 bits sign|mantissa, bits
 *   bound     (H(exp)/ck + H(s|m)) / 16: no coder of independent symbols
 *             with per-chunk statistics does better
 * and the ratio to bf16 each candidate exponent code reaches with per-chunk
 * codebooks (sign|mantissa stored raw, 8 bits; chunk metadata ignored):
 *   2+3+8     2-bit code (3 most frequent exponents, 3 = escape), escapes
 *             as 3-bit codes (next 7, 7 = escape), the rest raw bytes
 *   2+4+8     the same with a 4-bit second level (next 15)
 *   3+8       3-bit code (7 most frequent, 7 = escape), raw bytes
 *   4+8       4-bit code (15 most frequent), raw bytes
 *   huff      a Huffman code per chunk (length-unlimited; what DFloat11 does)
 * Then the same for whole unit images per component (chunks cut across
 * tensors and padding, as the format does). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/zt_common.h"
#include "common/zt_dtype.h"
#include "storage/catalog.h"
#include "storage/source.h"
#include "storage/store.h"
#include "storage/wcode.h"
#include "tools/mkmodel_init.h"

enum { C_DIT_ATTN, C_DIT_FFN, C_DIT_ADALN, C_DIT_EMBED, C_DIT_NORM, C_DIT_BIAS, C_TE_ATTN, C_TE_MLP, C_TE_EMBED,
       C_TE_NORM, C_VAE_CONV, C_VAE_LINEAR, C_VAE_NORM, C_VAE_BIAS, C_UNIT_DIT, C_UNIT_TE, C_UNIT_VAE, N_CLASS };
static const char *k_class[N_CLASS] = {
    "dit.attn",  "dit.ffn",  "dit.adaln",  "dit.embedders", "dit.norm",  "dit.bias",        "te.attn",
    "te.mlp",    "te.embed", "te.norm",    "vae.conv",      "vae.linear", "vae.norm",       "vae.bias",
    "[DiT unit images]", "[TE unit images]", "[VAE unit images]"};

enum { K_23, K_24, K_3, K_4, K_HUFF, N_CAND };
static const char *k_cand[N_CAND] = {"2+3+8", "2+4+8", "3+8", "4+8", "huff"};

typedef struct {
    double n;               /* elements */
    double hist_e[256];     /* exponent histogram over the class */
    double hist_sm[256];    /* sign|mantissa histogram */
    double chunk_h;         /* sum over chunks of n_chunk * H_chunk(exp) */
    double bits[N_CAND];    /* exponent bits of each candidate */
    double zeros;           /* elements == +-0 */
} class_stats;

static class_stats g_cls[N_CLASS];
static double g_coded[ZT_COMP_COUNT], g_raw[ZT_COMP_COUNT]; /* the real format's bytes per component */
static uint8_t *g_img_coded;
static uint64_t g_cap;
static uint64_t g_chunk = 256u * 1024u; /* elements */

static int classify(const zt_tensor_desc *t, zt_component comp) {
    const char *n = t->name;
    size_t len = strlen(n);
    int bias = len > 5 && !strcmp(n + len - 5, ".bias");
    if (comp == ZT_COMP_DIT) {
        if (strstr(n, "adaLN_modulation") && !strstr(n, "final_layer")) return C_DIT_ADALN;
        if (bias) return C_DIT_BIAS;
        if (t->ndim == 1) return C_DIT_NORM;
        if (strstr(n, "attention.")) return C_DIT_ATTN;
        if (strstr(n, "feed_forward.")) return C_DIT_FFN;
        return C_DIT_EMBED;
    }
    if (comp == ZT_COMP_TEXT) {
        if (strstr(n, "embed_tokens")) return C_TE_EMBED;
        if (t->ndim == 1) return C_TE_NORM;
        if (strstr(n, "self_attn.")) return C_TE_ATTN;
        return C_TE_MLP;
    }
    if (bias) return C_VAE_BIAS;
    if (t->ndim == 1) return C_VAE_NORM;
    return t->ndim == 4 ? C_VAE_CONV : C_VAE_LINEAR;
}

static int cmp_desc(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Huffman code cost (sum of freq x length) of a histogram, length-unlimited:
 * the sum of all internal node weights. */
static double huffman_bits(const uint64_t *sorted_desc, int k) {
    uint64_t w[256];
    int n = 0;
    for (int i = k - 1; i >= 0; i--) w[n++] = sorted_desc[i]; /* ascending */
    if (n <= 1) return (double)(n ? w[0] : 0); /* one symbol: one bit each (a code needs >= 1 bit) */
    double cost = 0;
    /* two-queue merge: leaves ascending in w, internal nodes in q (ascending by construction) */
    uint64_t q[256];
    int qh = 0, qt = 0, lh = 0;
    for (int m = 0; m < n - 1; m++) {
        uint64_t pick[2];
        for (int j = 0; j < 2; j++) {
            if (lh < n && (qh == qt || w[lh] <= q[qh])) pick[j] = w[lh++];
            else pick[j] = q[qh++];
        }
        q[qt++] = pick[0] + pick[1];
        cost += (double)(pick[0] + pick[1]);
    }
    return cost;
}

static double entropy(const double *h, double n) {
    double s = 0;
    for (int i = 0; i < 256; i++)
        if (h[i] > 0) s -= h[i] / n * log2(h[i] / n);
    return s;
}

/* One chunk: its exponent histogram feeds every candidate. */
static void add_chunk(class_stats *c, const uint64_t *hist, uint64_t n) {
    uint64_t s[256];
    memcpy(s, hist, sizeof s);
    qsort(s, 256, sizeof s[0], cmp_desc);
    int k = 0;
    while (k < 256 && s[k]) k++;
    double cum[257] = {0};
    for (int i = 0; i < 256; i++) cum[i + 1] = cum[i] + (double)s[i];
    double dn = (double)n, h = 0;
    for (int i = 0; i < k; i++) h -= (double)s[i] / dn * log2((double)s[i] / dn);
    c->chunk_h += dn * h;
    c->bits[K_23] += 2 * dn + 3 * (dn - cum[3]) + 8 * (dn - cum[10]);
    c->bits[K_24] += 2 * dn + 4 * (dn - cum[3]) + 8 * (dn - cum[18]);
    c->bits[K_3] += 3 * dn + 8 * (dn - cum[7]);
    c->bits[K_4] += 4 * dn + 8 * (dn - cum[15]);
    c->bits[K_HUFF] += huffman_bits(s, k);
}

/* Elements [0, n) of bf16 data, cut into chunks of g_chunk elements. */
static void add_data(class_stats *c, const uint16_t *x, uint64_t n) {
    for (uint64_t at = 0; at < n; at += g_chunk) {
        uint64_t m = ZT_MIN(g_chunk, n - at);
        uint64_t h[256] = {0};
        for (uint64_t i = 0; i < m; i++) {
            uint16_t v = x[at + i];
            h[(v >> 7) & 0xff]++;
            c->hist_sm[((v >> 8) & 0x80) | (v & 0x7f)]++;
            c->zeros += (v & 0x7fff) == 0;
        }
        for (int i = 0; i < 256; i++) c->hist_e[i] += (double)h[i];
        c->n += (double)m;
        add_chunk(c, h, m);
    }
}

static void add_unit(const zt_catalog *cat, int u, const uint8_t *img) {
    const zt_unit_desc *ud = &cat->units[u];
    for (int t = ud->first_tensor; t < ud->first_tensor + ud->n_tensors; t++) {
        const zt_tensor_desc *td = &cat->tensors[t];
        if (td->dtype != ZT_DT_BF16) continue;
        add_data(&g_cls[classify(td, ud->comp)], (const uint16_t *)(img + td->offset), td->nbytes / 2);
    }
    add_data(&g_cls[C_UNIT_DIT + ud->comp], (const uint16_t *)img, ud->nbytes / 2);
    uint64_t bytes = 0;
    zt_err e = {0};
    if (zt_wcode_encode((const uint16_t *)img, ud->nbytes / 2, g_img_coded, g_cap, 2, &bytes, &e) == ZT_OK) {
        g_coded[ud->comp] += (double)bytes;
        g_raw[ud->comp] += (double)ud->nbytes;
    }
}

/* The unit image mkmodel's checkpoint would load to (bf16 values; VAE conv
 * weights in source order: the permutation only moves values around). */
/* Other shapes of distribution (--dist), to see how each code degrades when
 * the exponents spread more than near-normal weights do (trained weights:
 * ~3 bits, DFloat11): laplace (heavier tails), mix (normal with a per-row
 * scale log-uniform over [1/8, 8], like channels of different magnitude),
 * t3 (Student-t with 3 degrees of freedom: outliers). */
static int g_dist; /* 0 normal (mkmodel), 1 laplace, 2 mix, 3 t3 */
static double uniform01(rng *r) { return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0; }
static float draw(rng *r, float mean, float sd, float scale, uint64_t j, float *row_scale) {
    if (g_dist == 0) return mean + rng_normal(r, scale);
    if (g_dist == 1) {
        double u = uniform01(r) - 0.5;
        return mean + (float)(-(sd / sqrt(2.0)) * (u < 0 ? -1 : 1) * log(1 - 2 * fabs(u)));
    }
    if (g_dist == 2) {
        if (j % 256 == 0) *row_scale = (float)exp2(6 * uniform01(r) - 3);
        return mean + *row_scale * rng_normal(r, scale);
    }
    double z = rng_normal(r, 1.0f / (float)k_ih_sd), chi = 0;
    for (int i = 0; i < 3; i++) {
        double g = rng_normal(r, 1.0f / (float)k_ih_sd);
        chi += g * g;
    }
    return mean + (float)(sd * z / sqrt(chi / 3) / sqrt(3.0));
}

static void synth_unit(const zt_catalog *cat, int u, uint64_t seed, uint8_t *img) {
    const zt_unit_desc *ud = &cat->units[u];
    memset(img, 0, ud->nbytes);
    for (int i = 0; i < cat->n_ckpt; i++) {
        const zt_ckpt_tensor *k = &cat->ckpt[i];
        if (k->role != ZT_CKPT_PACKED || k->tensor < ud->first_tensor || k->tensor >= ud->first_tensor + ud->n_tensors)
            continue;
        const zt_tensor_desc *td = &cat->tensors[k->tensor];
        uint64_t s = seed ^ fnv1a(k->name);
        rng r = {splitmix64(&s) | 1};
        float mean, sd = weight_std(k, &mean);
        float scale = (float)(sd / k_ih_sd);
        uint16_t *h = (uint16_t *)(img + td->offset);
        float rs = 1;
        for (uint64_t j = 0; j < td->nbytes / 2; j++) h[j] = zt_f32_to_bf16(draw(&r, mean, sd, scale, j, &rs));
    }
}

/* --store-ratios STORE: per component, the bf16 image bytes of the units a
 * store holds coded and their coded bytes (from its index: no data read). */
static int store_ratios(const char *path) {
    zt_err e = {0};
    zt_store *s;
    if (zt_store_open(path, 0, &s, &e)) {
        fprintf(stderr, "wcode-stats: %s\n", e.msg);
        return 1;
    }
    const zt_catalog *cat = zt_store_catalog(s);
    double img[ZT_COMP_COUNT] = {0}, cod[ZT_COMP_COUNT] = {0}, ti = 0, tc = 0;
    int n[ZT_COMP_COUNT] = {0};
    for (int u = 0; u < cat->n_units; u++) {
        if (!zt_store_unit_coded(s, u)) continue;
        const zt_store_extent *x = zt_store_extent_of(s, u);
        img[cat->units[u].comp] += (double)x->image_bytes;
        cod[cat->units[u].comp] += (double)x->stored_bytes;
        n[cat->units[u].comp]++;
    }
    static const char *comp[] = {"DiT", "TE", "VAE"};
    printf("# %s: coded units (storage/wcode.h), from the index\n", path);
    for (int c = 0; c < ZT_COMP_COUNT; c++) {
        if (!n[c]) continue;
        printf("%-4s %3d units %15.0f bytes bf16 -> %15.0f coded: ratio %.4f\n", comp[c], n[c], img[c], cod[c], cod[c] / img[c]);
        ti += img[c];
        tc += cod[c];
    }
    if (ti > 0) printf("all  %19.0f bytes bf16 -> %15.0f coded: ratio %.4f\n", ti, tc, tc / ti);
    zt_store_close(s);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: wcode-stats --store-ratios STORE\n"
               "       wcode-stats (-m MODEL | --synth tiny|full) [--seed N] [--units SUBSTR] [--max-units N]\n"
               "                   [--chunk-elems N] [--dist normal|laplace|mix|t3 (with --synth)]\n");
}

int main(int argc, char **argv) {
    const char *model = NULL, *synth = NULL, *filter = NULL;
    uint64_t seed = 1;
    int max_units = 0;
    static const struct option lo[] = {{"synth", 1, 0, 'S'}, {"seed", 1, 0, 's'},      {"units", 1, 0, 'u'},
                                       {"max-units", 1, 0, 'n'}, {"chunk-elems", 1, 0, 'c'}, {"dist", 1, 0, 'd'}, {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    if (argc == 3 && !strcmp(argv[1], "--store-ratios")) return store_ratios(argv[2]);
    for (int o; (o = getopt_long(argc, argv, "m:h", lo, NULL)) != -1;) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'S': synth = optarg; break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'u': filter = optarg; break;
        case 'n': max_units = atoi(optarg); break;
        case 'c': g_chunk = strtoull(optarg, NULL, 10); break;
        case 'd':
            g_dist = !strcmp(optarg, "normal") ? 0 : !strcmp(optarg, "laplace") ? 1 : !strcmp(optarg, "mix") ? 2
                   : !strcmp(optarg, "t3") ? 3 : -1;
            if (g_dist < 0) {
                fprintf(stderr, "wcode-stats: --dist '%s' must be normal, laplace, mix or t3\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!!model == !!synth || g_chunk < 256 || g_chunk > (1u << 26)) {
        usage(stderr);
        return 2;
    }
    zt_err e = {0};
    zt_source *src = NULL;
    zt_catalog own = {0};
    const zt_catalog *cat;
    if (model) {
        if (zt_source_open(model, &src, &e)) {
            fprintf(stderr, "wcode-stats: %s\n", e.msg);
            return 1;
        }
        cat = zt_source_catalog(src);
    } else {
        zt_model_config cfg;
        if (zt_config_preset(synth, &cfg, &e) || zt_catalog_build(&cfg, &own, &e)) {
            fprintf(stderr, "wcode-stats: %s\n", e.msg);
            return 2;
        }
        cat = &own;
    }
    uint64_t maxb = 0;
    for (int u = 0; u < cat->n_units; u++) maxb = ZT_MAX(maxb, cat->units[u].nbytes);
    uint8_t *img = malloc(maxb);
    g_cap = zt_wcode_bound(maxb / 2);
    g_img_coded = malloc(g_cap);
    if (!img || !g_img_coded) {
        fprintf(stderr, "wcode-stats: out of memory\n");
        return 1;
    }
    int done = 0;
    double t0 = zt_now();
    for (int u = 0; u < cat->n_units; u++) {
        if (filter && !strstr(cat->units[u].name, filter)) continue;
        if (max_units && done >= max_units) break;
        if (src) {
            if (zt_source_read_unit(src, u, img, cat->units[u].nbytes, &e)) {
                fprintf(stderr, "wcode-stats: %s\n", e.msg);
                return 1;
            }
        } else {
            synth_unit(cat, u, seed, img);
        }
        add_unit(cat, u, img);
        done++;
        if (isatty(2)) fprintf(stderr, "\rwcode-stats: %d units, %.1f s", done, zt_now() - t0);
    }
    if (isatty(2)) fprintf(stderr, "\n");
    printf("# %s%s, %d units, chunks of %llu elements; ratios are coded / bf16 bytes (chunk metadata not counted)\n",
           model ? model : synth, synth ? (const char *[]){" (normal)", " (laplace)", " (mix)", " (t3)"}[g_dist] : "", done, (unsigned long long)g_chunk);
    printf("%-18s %12s %7s %8s %8s %7s %6s", "class", "weights", "H(exp)", "H(exp)/ck", "H(s|m)", "zeros", "bound");
    for (int k = 0; k < N_CAND; k++) printf(" %7s", k_cand[k]);
    printf("\n");
    for (int c = 0; c < N_CLASS; c++) {
        const class_stats *s = &g_cls[c];
        if (s->n == 0) continue;
        double hck = s->chunk_h / s->n, hsm = entropy(s->hist_sm, s->n);
        printf("%-18s %12.0f %7.3f %8.3f %8.3f %6.2f%% %6.4f", k_class[c], s->n, entropy(s->hist_e, s->n), hck, hsm,
               100 * s->zeros / s->n, (hck + hsm) / 16);
        for (int k = 0; k < N_CAND; k++) printf(" %7.4f", (8 + s->bits[k] / s->n) / 16);
        printf("\n");
    }
    printf("\n# storage/wcode.h on the unit images (tables, directory and padding included)\n");
    static const char *comp[] = {"DiT", "TE", "VAE"};
    double cs = 0, rs = 0;
    for (int c = 0; c < ZT_COMP_COUNT; c++) {
        if (g_raw[c] == 0) continue;
        printf("%-4s %14.0f bytes bf16 -> %14.0f coded: ratio %.4f\n", comp[c], g_raw[c], g_coded[c], g_coded[c] / g_raw[c]);
        cs += g_coded[c];
        rs += g_raw[c];
    }
    if (rs > 0) printf("all  %14.0f bytes bf16 -> %14.0f coded: ratio %.4f\n", rs, cs, cs / rs);
    free(g_img_coded);
    free(img);
    zt_source_close(src);
    zt_catalog_free(&own);
    return 0;
}
