/* tests/test_storage_snapshot.c — round trip: bin/mkmodel tiny snapshot (bf16
 * and f32 transformer) -> zt_snapshot_open -> every unit image -> every
 * tensor compared with the bytes read back by an independent reader (jansson
 * + fread, not storage/safetensors.c) and an independent round-to-nearest-
 * even (nearest of the two bf16 neighbours, computed in double). Also checks
 * padding bytes are zero, OHWI permutation of VAE convs, embedding rows, and
 * that an f32 and a bf16 snapshot of the same seed give identical images. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/source_internal.h"
#include "tests/test_storage_util.h"
#include "tests/zt_test.h"

/* ---- independent reader ------------------------------------------------- */

typedef struct {
    char dtype[16];
    int ndim;
    int64_t shape[8];
    uint8_t *data; /* raw bytes */
    uint64_t nbytes;
} ref_tensor;

static const char *comp_sub(zt_component c) {
    return c == ZT_COMP_DIT ? "transformer" : c == ZT_COMP_TEXT ? "text_encoder" : "vae";
}
static const char *comp_base(zt_component c) { return c == ZT_COMP_TEXT ? "model" : "diffusion_pytorch_model"; }

static int ref_load(const char *snap, zt_component comp, const char *name, ref_tensor *out) {
    char path[8192], file[8192];
    snprintf(path, sizeof path, "%s/%s/%s.safetensors.index.json", snap, comp_sub(comp), comp_base(comp));
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        json_t *idx = json_load_file(path, 0, NULL);
        json_t *sh = idx ? json_object_get(json_object_get(idx, "weight_map"), name) : NULL;
        if (!sh) {
            json_decref(idx);
            return -1;
        }
        snprintf(file, sizeof file, "%s/%s/%s", snap, comp_sub(comp), json_string_value(sh));
        json_decref(idx);
    } else {
        snprintf(file, sizeof file, "%s/%s/%s.safetensors", snap, comp_sub(comp), comp_base(comp));
    }
    f = fopen(file, "rb");
    if (!f) return -1;
    uint8_t len8[8];
    if (fread(len8, 1, 8, f) != 8) {
        fclose(f);
        return -1;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
    char *hdr = malloc(n);
    if (fread(hdr, 1, n, f) != n) {
        free(hdr);
        fclose(f);
        return -1;
    }
    json_t *h = json_loadb(hdr, n, 0, NULL);
    free(hdr);
    json_t *t = h ? json_object_get(h, name) : NULL;
    if (!t) {
        json_decref(h);
        fclose(f);
        return -1;
    }
    snprintf(out->dtype, sizeof out->dtype, "%s", json_string_value(json_object_get(t, "dtype")));
    json_t *shape = json_object_get(t, "shape");
    out->ndim = (int)json_array_size(shape);
    for (int d = 0; d < out->ndim; d++) out->shape[d] = json_integer_value(json_array_get(shape, d));
    json_t *off = json_object_get(t, "data_offsets");
    uint64_t b = (uint64_t)json_integer_value(json_array_get(off, 0)), e = (uint64_t)json_integer_value(json_array_get(off, 1));
    json_decref(h);
    out->nbytes = e - b;
    out->data = malloc(out->nbytes ? out->nbytes : 1);
    if (fseek(f, (long)(8 + n + b), SEEK_SET) || fread(out->data, 1, out->nbytes, f) != out->nbytes) {
        free(out->data);
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

/* Element i of a reference tensor as the bf16 the image must hold. */
static uint16_t ref_elem(const ref_tensor *r, uint64_t i) {
    if (!strcmp(r->dtype, "BF16")) {
        uint16_t h;
        memcpy(&h, r->data + 2 * i, 2);
        return h;
    }
    uint32_t u;
    memcpy(&u, r->data + 4 * i, 4); /* F32 (mkmodel writes only F32 and BF16) */
    return ref_rne(u);
}

/* ---- checks ------------------------------------------------------------- */

static int g_seen_f32, g_seen_conv;

static void check_unit(const char *snap, const zt_catalog *cat, int u, const uint8_t *img) {
    const zt_unit_desc *ud = &cat->units[u];
    uint8_t *covered = calloc(ud->nbytes, 1);
    for (int i = ud->first_tensor; i < ud->first_tensor + ud->n_tensors; i++) {
        const zt_tensor_desc *t = &cat->tensors[i];
        memset(covered + t->offset, 1, t->nbytes);
        ref_tensor r;
        if (ref_load(snap, ud->comp, t->name, &r)) {
            ZT_CHECK(0, "%s: reference cannot read %s", snap, t->name);
            continue;
        }
        uint64_t n = t->nbytes / 2, bad = 0, first_bad = 0;
        ZT_CHECK(r.nbytes == n * (strcmp(r.dtype, "F32") ? 2 : 4), "%s: %s size", snap, t->name);
        if (!strcmp(r.dtype, "F32")) g_seen_f32++;
        const uint16_t *img16 = (const uint16_t *)(img + t->offset);
        if (t->permute_ohwi) {
            g_seen_conv++;
            int64_t co = t->shape[0], kh = t->shape[1], kw = t->shape[2], ci = t->shape[3];
            ZT_CHECK(r.shape[0] == co && r.shape[1] == ci && r.shape[2] == kh && r.shape[3] == kw, "%s shape", t->name);
            for (int64_t o = 0; o < co; o++)
                for (int64_t c = 0; c < ci; c++)
                    for (int64_t y = 0; y < kh; y++)
                        for (int64_t x = 0; x < kw; x++) {
                            uint64_t src = (uint64_t)(((o * ci + c) * kh + y) * kw + x);
                            uint64_t dst = (uint64_t)(((o * kh + y) * kw + x) * ci + c);
                            if (img16[dst] != ref_elem(&r, src) && !bad++) first_bad = dst;
                        }
        } else {
            for (uint64_t k = 0; k < n; k++)
                if (img16[k] != ref_elem(&r, k) && !bad++) first_bad = k;
        }
        ZT_CHECK(bad == 0, "%s: %s: %llu of %llu elements differ (first at %llu)", snap, t->name,
                 (unsigned long long)bad, (unsigned long long)n, (unsigned long long)first_bad);
        free(r.data);
    }
    uint64_t dirty = 0;
    for (uint64_t b = 0; b < ud->nbytes; b++) dirty += !covered[b] && img[b] != 0;
    ZT_CHECK(dirty == 0, "%s: unit %s has %llu non-zero padding bytes", snap, ud->name, (unsigned long long)dirty);
    free(covered);
}

/* Read every unit; check it; return the concatenated images (for A/B). */
static uint8_t *roundtrip(const char *snap, uint64_t *total) {
    zt_source *src;
    zt_err e = {0};
    int rc = zt_snapshot_open(snap, &src, &e);
    ZT_CHECK(rc == ZT_OK, "open %s: %s", snap, e.msg);
    if (rc) return NULL;
    const zt_catalog *cat = zt_source_catalog(src);
    ZT_CHECK(zt_source_kind_of(src) == ZT_SOURCE_SNAPSHOT, "kind");
    ZT_CHECK(cat->cfg.dim == 256 && cat->cfg.te_layers == 3 && cat->cfg.te_prefix_model == 1 &&
                 !cat->cfg.vae_post_quant_conv && cat->cfg.vae_n_blocks == 4 && cat->cfg.vae_block_out[3] == 64,
             "config read back");
    zt_model_config tiny;
    zt_config_preset("tiny", &tiny, &e);
    ZT_CHECK(!memcmp(&tiny, &cat->cfg, sizeof tiny), "config files of mkmodel tiny read back as the tiny preset");
    uint64_t sum = 0;
    for (int u = 0; u < cat->n_units; u++) sum += cat->units[u].nbytes;
    uint8_t *all = malloc(sum), *at = all;
    for (int u = 0; u < cat->n_units; u++) {
        memset(at, 0xab, cat->units[u].nbytes); /* padding must be overwritten with zeros */
        rc = zt_source_read_unit(src, u, at, cat->units[u].nbytes, &e);
        ZT_CHECK(rc == ZT_OK, "read %s: %s", cat->units[u].name, e.msg);
        check_unit(snap, cat, u, at);
        at += cat->units[u].nbytes;
    }
    /* embedding rows: same bytes as the te.embed image */
    const zt_unit_desc *eu = zt_catalog_unit(cat, "te.embed");
    const uint8_t *embed_img = all;
    for (int u = 0; u < cat->n_units && &cat->units[u] != eu; u++) embed_img += cat->units[u].nbytes;
    int32_t ids[5] = {0, 5, 151935, 12345, 5};
    int h = cat->cfg.te_hidden;
    uint16_t *rows = malloc(sizeof(uint16_t) * 5 * (size_t)h);
    rc = zt_source_read_embed_rows(src, ids, 5, rows, &e);
    ZT_CHECK(rc == ZT_OK, "embed rows: %s", e.msg);
    for (int i = 0; i < 5; i++)
        ZT_CHECK(!memcmp(rows + (size_t)i * h, embed_img + (size_t)ids[i] * h * 2, (size_t)h * 2), "embed row %d",
                 ids[i]);
    int32_t bad_id = 151936;
    ZT_CHECK(zt_source_read_embed_rows(src, &bad_id, 1, rows, &e) == ZT_ERR_RANGE && strstr(e.msg, "151936"),
             "out-of-vocab id: %s", e.msg);
    ZT_CHECK(zt_source_read_unit(src, cat->n_units, all, sum, &e) == ZT_ERR_ARG, "bad unit index");
    ZT_CHECK(zt_source_read_unit(src, 0, all, cat->units[0].nbytes - 1, &e) == ZT_ERR_ARG, "short buffer");
    free(rows);
    zt_source_close(src);
    *total = sum;
    return all;
}

int main(void) {
    char tmp[4096], a[4200], b[4200];
    st_tmpdir("storage_snapshot", tmp, sizeof tmp);
    snprintf(a, sizeof a, "%s/bf16", tmp);
    snprintf(b, sizeof b, "%s/f32", tmp);
    int rc = st_sh("'%s/mkmodel' --config tiny --seed 11 --dtype bf16 -q -o '%s' && '%s/mkmodel' --config tiny --seed 11 --dtype f32 -q -o '%s'",
                   st_bin(), a, st_bin(), b);
    ZT_CHECK(rc == 0, "mkmodel failed (%d)", rc);
    if (rc) return zt_test_finish("test_storage_snapshot");
    uint64_t na = 0, nb = 0;
    uint8_t *ia = roundtrip(a, &na);
    int f32_before = g_seen_f32;
    uint8_t *ib = roundtrip(b, &nb);
    ZT_CHECK(f32_before == 0 && g_seen_f32 > 0, "the f32 snapshot has f32 tensors, the bf16 one none (%d, %d)",
             f32_before, g_seen_f32);
    ZT_CHECK(g_seen_conv > 0, "no conv weight checked");
    /* mkmodel bf16 = RNE of the same f32 values, so the images are identical */
    ZT_CHECK(ia && ib && na == nb && !memcmp(ia, ib, na), "bf16 and f32 snapshots of one seed give different images");
    free(ia);
    free(ib);
    return zt_test_finish("test_storage_snapshot");
}
