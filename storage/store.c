/* storage/store.c — block store: index parsing and validation, chunk
 * decoding, synchronous unit reads and full verification (format in
 * store.h; packing in store_pack.c). */
#include "common/zt_input.h"
#include "storage/store.h"

#include "storage/tensor_image.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "storage/store_format.h"
#include "storage/wcode.h"

struct zt_store {
    char *path;
    int fd;                   /* buffered, -1 when parsed from memory */
    unsigned flags;
    uint64_t file_size, index_offset, index_size;
    uint32_t chunk_bytes;
    uint64_t n_chunks;
    uint64_t max_read;
    zt_catalog cat;           /* rebuilt from the stored config (== stored tables) */
    int have_cat;
    zt_store_extent *ext;     /* [n_units] */
    zt_store_chunk *chunks;   /* [n_chunks] */
    unsigned version;
    uint32_t n_files;
    struct {
        char name[ZT_STORE_FILE_NAME];
        uint64_t offset, size;
    } *files;                 /* [n_files] */
    uint8_t *file_data;       /* section 7, files_size bytes */
};

/* ---- config records: the fields of zt_model_config, in file order ---- */

#define CFG_I(f) {#f, offsetof(zt_model_config, f), ZT_CFG_INT}
#define CFG_F(f) {#f, offsetof(zt_model_config, f), ZT_CFG_FLOAT}
#define CFG_IA(f, i) {#f "." #i, offsetof(zt_model_config, f) + (i) * sizeof(int), ZT_CFG_INT}
const zt_store_cfg_field zt_store_cfg_fields[] = {
    CFG_I(dim), CFG_I(n_heads), CFG_I(n_kv_heads), CFG_I(n_layers), CFG_I(n_refiner_layers),
    CFG_I(in_channels), CFG_I(patch), CFG_I(f_patch), CFG_I(cap_feat_dim),
    CFG_IA(axes_dims, 0), CFG_IA(axes_dims, 1), CFG_IA(axes_dims, 2),
    CFG_IA(axes_lens, 0), CFG_IA(axes_lens, 1), CFG_IA(axes_lens, 2),
    CFG_I(head_dim), CFG_I(ffn_dim), CFG_I(adaln_dim), CFG_I(t_hidden), CFG_I(t_freq),
    CFG_F(norm_eps), CFG_F(rope_theta), CFG_F(t_scale),
    CFG_I(te_hidden), CFG_I(te_inter), CFG_I(te_layers), CFG_I(te_heads), CFG_I(te_kv_heads),
    CFG_I(te_head_dim), CFG_I(te_vocab), CFG_F(te_eps), CFG_F(te_rope_theta), CFG_I(te_prefix_model),
    CFG_I(vae_latent), CFG_I(vae_n_blocks),
    CFG_IA(vae_block_out, 0), CFG_IA(vae_block_out, 1), CFG_IA(vae_block_out, 2), CFG_IA(vae_block_out, 3),
    CFG_IA(vae_block_out, 4), CFG_IA(vae_block_out, 5), CFG_IA(vae_block_out, 6), CFG_IA(vae_block_out, 7),
    CFG_I(vae_layers_per_block), CFG_I(vae_groups), CFG_F(vae_scale), CFG_F(vae_shift),
    CFG_I(vae_post_quant_conv), CFG_I(vae_encoder), CFG_I(vae_quant_conv),
    CFG_F(sched_shift), CFG_I(sched_train_steps), CFG_I(sched_dynamic),
};
const int zt_store_n_cfg_fields = (int)ZT_ARRAY_LEN(zt_store_cfg_fields);
/* A new field in zt_model_config needs a record above (and a format note). */
_Static_assert(sizeof(zt_model_config) == ZT_ARRAY_LEN(zt_store_cfg_fields) * 4,
               "zt_model_config changed: update zt_store_cfg_fields in storage/store.c");

/* Bounds on stored config values, checked before the catalog is rebuilt so
 * that a hostile file cannot make the catalog builder allocate without end. */
#define CFG_INT_MAX (1 << 24)
#define CFG_LAYERS_MAX 4096

/* ---- small helpers ---- */

static int is_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Names echoed in messages must keep them one printable line. */
static int is_printable(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e) return 0;
    return 1;
}

static int add_overflows(uint64_t a, uint64_t b, uint64_t *sum) {
    *sum = a + b;
    return *sum < a;
}

void zt_store_close(zt_store *s) {
    if (!s) return;
    if (s->fd >= 0) close(s->fd);
    if (s->have_cat) zt_catalog_free(&s->cat);
    free(s->ext);
    free(s->chunks);
    free(s->files);
    free(s->file_data);
    free(s->path);
    free(s);
}

/* ---- header ---- */

int zt_store_header_decode(const uint8_t *h, size_t len, uint64_t file_size, const char *name, unsigned flags,
                           zt_store_header *out, zt_err *e) {
    if (len < ZT_STORE_HEADER_BYTES || file_size < ZT_STORE_HEADER_BYTES)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: truncated: %llu bytes, a store header alone is %u", name,
                          (unsigned long long)ZT_MIN((uint64_t)len, file_size), ZT_STORE_HEADER_BYTES);
    if (memcmp(h, ZT_STORE_MAGIC, 8))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: not a zturbo store (bad magic)", name);
    zt_store_header H;
    memset(&H, 0, sizeof H);
    H.version = zt_rd32(h + 8);
    if (H.version != 1 && H.version != ZT_STORE_VERSION)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED,
                          "%s: store format version %u, this zturbo reads versions 1 and %u: %s", name, H.version,
                          ZT_STORE_VERSION,
                          H.version > ZT_STORE_VERSION ? "written by a newer zturbo; repack it from the model with this one"
                                                       : "repack it from the model (zturbo pack MODEL -o STORE)");
    if (!(flags & ZT_STORE_TRUST_INDEX) && XXH64(h, 248, 0) != zt_rd64(h + 248))
        return zt_err_set(e, ZT_ERR_CHECKSUM, "%s: header checksum mismatch", name);
    H.flags = zt_rd32(h + 12);
    if (H.flags) return zt_err_set(e, ZT_ERR_FORMAT, "%s: reserved header flags set (0x%x)", name, H.flags);
    /* version 1 reserved [80, 248): zero there reads as no files */
    H.n_files = zt_rd32(h + 80);
    H.files_size = zt_rd64(h + 88);
    if (zt_rd32(h + 84) || !is_zero(h + 96, 152) || (H.version == 1 && (H.n_files || H.files_size)))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: reserved header bytes are not zero", name);
    H.file_size = zt_rd64(h + 16);
    H.index_offset = zt_rd64(h + 24);
    H.index_size = zt_rd64(h + 32);
    H.index_xxh64 = zt_rd64(h + 40);
    H.n_config = zt_rd32(h + 48);
    H.n_units = zt_rd32(h + 52);
    H.n_tensors = zt_rd32(h + 56);
    H.chunk_bytes = zt_rd32(h + 60);
    H.n_chunks = zt_rd64(h + 64);
    H.names_size = zt_rd64(h + 72);
    if (H.file_size != file_size) {
        if (file_size < H.file_size)
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: truncated: %llu bytes, the header says %llu", name,
                              (unsigned long long)file_size, (unsigned long long)H.file_size);
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: %llu bytes, the header says %llu (trailing data)", name,
                          (unsigned long long)file_size, (unsigned long long)H.file_size);
    }
    if (H.chunk_bytes < ZT_STORE_CHUNK_MIN || H.chunk_bytes > ZT_STORE_CHUNK_MAX ||
        (H.chunk_bytes & (H.chunk_bytes - 1)))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: chunk size %u is not a power of two in [64 KiB, 256 MiB]", name,
                          H.chunk_bytes);
    uint64_t index_end;
    if (H.index_offset < ZT_STORE_ALIGN || H.index_offset % ZT_STORE_ALIGN ||
        add_overflows(H.index_offset, H.index_size, &index_end) || index_end > H.file_size ||
        ZT_ALIGN_UP(index_end, ZT_STORE_ALIGN) != H.file_size)
        return zt_err_set(e, ZT_ERR_FORMAT,
                          "%s: index at %llu (+%llu bytes) is not a 4 KiB aligned block ending the %llu-byte file", name,
                          (unsigned long long)H.index_offset, (unsigned long long)H.index_size,
                          (unsigned long long)H.file_size);
    /* The section sizes must add up to index_size exactly; counts are first
     * bounded by it so that no product overflows. */
    uint64_t isz = H.index_size;
    if (H.n_units == 0 || H.n_units > isz / ZT_STORE_UNIT_REC || H.n_tensors > isz / ZT_STORE_TENSOR_REC ||
        H.n_config > isz / ZT_STORE_CONFIG_REC || H.n_chunks > isz / ZT_STORE_CHUNK_REC || H.names_size > isz ||
        H.files_size > isz)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: index counts do not fit its %llu bytes", name,
                          (unsigned long long)isz);
    if (H.n_files > ZT_STORE_FILES_MAX)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: %u files, at most %u are allowed", name, H.n_files,
                          ZT_STORE_FILES_MAX);
    uint64_t want = (uint64_t)H.n_config * ZT_STORE_CONFIG_REC + (uint64_t)H.n_units * ZT_STORE_UNIT_REC +
                    (uint64_t)H.n_tensors * ZT_STORE_TENSOR_REC + H.n_chunks * ZT_STORE_CHUNK_REC + H.names_size +
                    (uint64_t)H.n_files * ZT_STORE_FILE_REC + H.files_size;
    if (want != isz)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: index is %llu bytes, its counts make %llu", name,
                          (unsigned long long)isz, (unsigned long long)want);
    *out = H;
    return ZT_OK;
}

void zt_store_header_encode(const zt_store_header *H, uint8_t h[ZT_STORE_HEADER_BYTES]) {
    memset(h, 0, ZT_STORE_HEADER_BYTES);
    memcpy(h, ZT_STORE_MAGIC, 8);
    zt_wr32(h + 8, H->version);
    zt_wr32(h + 12, H->flags);
    zt_wr64(h + 16, H->file_size);
    zt_wr64(h + 24, H->index_offset);
    zt_wr64(h + 32, H->index_size);
    zt_wr64(h + 40, H->index_xxh64);
    zt_wr32(h + 48, H->n_config);
    zt_wr32(h + 52, H->n_units);
    zt_wr32(h + 56, H->n_tensors);
    zt_wr32(h + 60, H->chunk_bytes);
    zt_wr64(h + 64, H->n_chunks);
    zt_wr64(h + 72, H->names_size);
    if (H->version >= 2) {
        zt_wr32(h + 80, H->n_files);
        zt_wr64(h + 88, H->files_size);
    }
    zt_wr64(h + 248, XXH64(h, 248, 0));
}

/* ---- index ---- */

/* Keys added after stores existed: absent means 0 (a store packed before the
 * VAE encoder became a unit has none). */
static int cfg_field_optional(const char *key) { return !strcmp(key, "vae_encoder") || !strcmp(key, "vae_quant_conv"); }

static int decode_config(const uint8_t *p, uint32_t n, const char *name, zt_model_config *cfg, zt_err *e) {
    int seen[ZT_ARRAY_LEN(zt_store_cfg_fields)] = {0};
    memset(cfg, 0, sizeof *cfg);
    for (uint32_t i = 0; i < n; i++, p += ZT_STORE_CONFIG_REC) {
        const char *key = (const char *)p;
        size_t klen = strnlen(key, 24);
        if (klen == 24 || klen == 0 || !is_zero(p + klen, 24 - klen) || !is_printable(key, klen))
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: config record %u: bad key", name, i);
        int f = -1;
        for (int j = 0; j < zt_store_n_cfg_fields; j++)
            if (!strcmp(zt_store_cfg_fields[j].key, key)) f = j;
        if (f < 0) return zt_err_set(e, ZT_ERR_FORMAT, "%s: config record %u: unknown key '%s'", name, i, key);
        if (seen[f]++) return zt_err_set(e, ZT_ERR_FORMAT, "%s: config key '%s' appears twice", name, key);
        uint32_t type = zt_rd32(p + 24), v = zt_rd32(p + 28);
        if (type != (uint32_t)zt_store_cfg_fields[f].type)
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: config key '%s' has type %u, expected %d", name, key, type,
                              zt_store_cfg_fields[f].type);
        uint8_t *dst = (uint8_t *)cfg + zt_store_cfg_fields[f].offset;
        if (type == ZT_CFG_INT) {
            int32_t iv = (int32_t)v;
            if (iv < 0 || iv > CFG_INT_MAX)
                return zt_err_set(e, ZT_ERR_FORMAT, "%s: config '%s' = %d is out of range", name, key, iv);
            memcpy(dst, &iv, 4);
        } else {
            float fv;
            memcpy(&fv, &v, 4);
            if (!isfinite(fv)) return zt_err_set(e, ZT_ERR_FORMAT, "%s: config '%s' is not finite", name, key);
            memcpy(dst, &fv, 4);
        }
    }
    for (int j = 0; j < zt_store_n_cfg_fields; j++)
        if (!seen[j] && !cfg_field_optional(zt_store_cfg_fields[j].key))
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: config key '%s' is missing", name, zt_store_cfg_fields[j].key);
    if (cfg->n_layers > CFG_LAYERS_MAX || cfg->n_refiner_layers > CFG_LAYERS_MAX || cfg->te_layers > CFG_LAYERS_MAX ||
        cfg->vae_n_blocks > 8 || cfg->vae_layers_per_block > 64)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: config layer counts out of range", name);
    return ZT_OK;
}

void zt_store_config_encode(const zt_model_config *cfg, uint8_t *p) {
    for (int j = 0; j < zt_store_n_cfg_fields; j++, p += ZT_STORE_CONFIG_REC) {
        memset(p, 0, ZT_STORE_CONFIG_REC);
        snprintf((char *)p, 24, "%s", zt_store_cfg_fields[j].key);
        zt_wr32(p + 24, (uint32_t)zt_store_cfg_fields[j].type);
        uint32_t v;
        memcpy(&v, (const uint8_t *)cfg + zt_store_cfg_fields[j].offset, 4);
        zt_wr32(p + 28, v);
    }
}

typedef struct {
    char name[48];
    uint32_t comp, flags, first_tensor, n_tensors;
} unit_rec;

typedef struct {
    const char *name; /* inside the name table */
    uint32_t name_len, dtype, ndim, flags;
    int64_t shape[4];
    uint64_t offset, nbytes;
} tensor_rec;

static int cmp_by_offset(const void *a, const void *b, void *ctx) {
    const zt_store_extent *ext = ctx;
    uint64_t x = ext[*(const int *)a].offset, y = ext[*(const int *)b].offset;
    return x < y ? -1 : x > y;
}

/* Compare the stored tables with the catalog rebuilt from the config. */
static int match_catalog(const zt_catalog *cat, const unit_rec *ur, const zt_store_extent *ext, uint32_t n_units,
                         const tensor_rec *tr, uint32_t n_tensors, const char *name, zt_err *e) {
    if ((uint32_t)cat->n_units != n_units || (uint32_t)cat->n_tensors != n_tensors)
        return zt_err_set(e, ZT_ERR_FORMAT,
                          "%s: %u units / %u tensors stored, the catalog of its config has %d / %d", name, n_units,
                          n_tensors, cat->n_units, cat->n_tensors);
    for (uint32_t u = 0; u < n_units; u++) {
        const zt_unit_desc *c = &cat->units[u];
        uint32_t flags = (c->per_step ? 1u : 0u) | (c->host_only ? 2u : 0u);
        if (strcmp(c->name, ur[u].name) || (uint32_t)c->comp != ur[u].comp || flags != ur[u].flags ||
            (uint32_t)c->first_tensor != ur[u].first_tensor || (uint32_t)c->n_tensors != ur[u].n_tensors ||
            c->nbytes != ext[u].image_bytes)
            return zt_err_set(e, ZT_ERR_FORMAT,
                              "%s: unit %u '%s' (%llu bytes, %u tensors) differs from the catalog's '%s' (%llu bytes, "
                              "%d tensors)",
                              name, u, ur[u].name, (unsigned long long)ext[u].image_bytes, ur[u].n_tensors, c->name,
                              (unsigned long long)c->nbytes, c->n_tensors);
    }
    for (uint32_t t = 0; t < n_tensors; t++) {
        const zt_tensor_desc *c = &cat->tensors[t];
        int same = !strcmp(c->name, tr[t].name) && (uint32_t)c->dtype == tr[t].dtype && (uint32_t)c->ndim == tr[t].ndim &&
                   (uint32_t)(c->permute_ohwi ? 1 : 0) == tr[t].flags && c->offset == tr[t].offset &&
                   c->nbytes == tr[t].nbytes;
        for (int d = 0; same && d < ZT_MAX_DIMS; d++)
            if ((d < c->ndim ? c->shape[d] : 0) != tr[t].shape[d]) same = 0;
        if (!same)
            return zt_err_set(e, ZT_ERR_FORMAT,
                              "%s: tensor %u '%s' (name, dtype, shape or offset) differs from the catalog of its config "
                              "('%s')",
                              name, t, tr[t].name, c->name);
    }
    return ZT_OK;
}

int zt_store_file_name_ok(const char *n) {
    size_t len = strnlen(n, ZT_STORE_FILE_NAME);
    if (len == 0 || len >= ZT_STORE_FILE_NAME) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '/'))
            return 0;
    }
    /* parts between '/': not empty, not "." or ".." (a name may become a path) */
    for (const char *p = n;;) {
        const char *q = strchr(p, '/');
        size_t pl = q ? (size_t)(q - p) : strlen(p);
        if (pl == 0 || (pl == 1 && p[0] == '.') || (pl == 2 && p[0] == '.' && p[1] == '.')) return 0;
        if (!q) return 1;
        p = q + 1;
    }
}

/* Sections 6 and 7: the file records and their contents (copied). */
static int parse_files(zt_store *s, const zt_store_header *H, const uint8_t *p_files, const uint8_t *p_data,
                       const char *name, zt_err *e) {
    if (!H->n_files) {
        if (H->files_size)
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: no files but %llu bytes of file contents", name,
                              (unsigned long long)H->files_size);
        return ZT_OK;
    }
    s->files = calloc(H->n_files, sizeof *s->files);
    s->file_data = malloc(H->files_size ? H->files_size : 1);
    if (!s->files || !s->file_data) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for the stored files", name);
    uint64_t at = 0;
    for (uint32_t i = 0; i < H->n_files; i++) {
        const uint8_t *p = p_files + (uint64_t)i * ZT_STORE_FILE_REC;
        size_t nlen = strnlen((const char *)p, ZT_STORE_FILE_NAME);
        if (nlen == ZT_STORE_FILE_NAME || !is_zero(p + nlen, ZT_STORE_FILE_NAME - nlen) ||
            !zt_store_file_name_ok((const char *)p))
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: file record %u: bad name", name, i);
        memcpy(s->files[i].name, p, ZT_STORE_FILE_NAME);
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(s->files[j].name, s->files[i].name))
                return zt_err_set(e, ZT_ERR_FORMAT, "%s: file '%s' appears twice", name, s->files[i].name);
        uint64_t off = zt_rd64(p + 48), size = zt_rd64(p + 56);
        if (off != at || size > ZT_STORE_FILE_MAX || size > H->files_size - at)
            return zt_err_set(e, ZT_ERR_FORMAT,
                              "%s: file '%s': %llu bytes at %llu do not follow the previous file inside the %llu bytes "
                              "of file contents (at most %u MiB each)",
                              name, s->files[i].name, (unsigned long long)size, (unsigned long long)off,
                              (unsigned long long)H->files_size, ZT_STORE_FILE_MAX >> 20);
        s->files[i].offset = off;
        s->files[i].size = size;
        at += size;
    }
    if (at != H->files_size)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: the files hold %llu bytes, the header says %llu", name,
                          (unsigned long long)at, (unsigned long long)H->files_size);
    memcpy(s->file_data, p_data, H->files_size);
    s->n_files = H->n_files; /* only now: the accessors trust these records */
    return ZT_OK;
}

static int parse_index(zt_store *s, const zt_store_header *H, const uint8_t *idx, const char *name, zt_err *e) {
    int rc = ZT_OK;
    if (!(s->flags & ZT_STORE_TRUST_INDEX) && XXH64(idx, H->index_size, 0) != H->index_xxh64)
        return zt_err_set(e, ZT_ERR_CHECKSUM, "%s: index checksum mismatch", name);
    const uint8_t *p_cfg = idx;
    const uint8_t *p_units = p_cfg + (uint64_t)H->n_config * ZT_STORE_CONFIG_REC;
    const uint8_t *p_tensors = p_units + (uint64_t)H->n_units * ZT_STORE_UNIT_REC;
    const uint8_t *p_chunks = p_tensors + (uint64_t)H->n_tensors * ZT_STORE_TENSOR_REC;
    const uint8_t *p_names = p_chunks + H->n_chunks * ZT_STORE_CHUNK_REC;
    const uint8_t *p_files = p_names + H->names_size;
    const uint8_t *p_fdata = p_files + (uint64_t)H->n_files * ZT_STORE_FILE_REC;
    const uint32_t nu = H->n_units, nt = H->n_tensors;
    const uint64_t cb = H->chunk_bytes;

    zt_model_config cfg;
    if ((rc = decode_config(p_cfg, H->n_config, name, &cfg, e))) return rc;
    if ((rc = parse_files(s, H, p_files, p_fdata, name, e))) return rc;

    unit_rec *ur = calloc(nu, sizeof *ur);
    tensor_rec *tr = calloc(nt ? nt : 1, sizeof *tr);
    int *order = calloc(nu, sizeof *order);
    s->ext = calloc(nu, sizeof *s->ext);
    s->chunks = calloc(H->n_chunks ? H->n_chunks : 1, sizeof *s->chunks);
    if (!ur || !tr || !order || !s->ext || !s->chunks) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for the index", name);
        goto done;
    }

    /* Chunk records. */
    for (uint64_t c = 0; c < H->n_chunks; c++) {
        const uint8_t *p = p_chunks + c * ZT_STORE_CHUNK_REC;
        s->chunks[c].stored = zt_rd32(p);
        s->chunks[c].xxh64 = zt_rd64(p + 8);
        if (zt_rd32(p + 4)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: chunk record %llu: reserved field set", name, (unsigned long long)c);
            goto done;
        }
    }

    /* Unit records. */
    uint64_t next_tensor = 0, next_chunk = 0;
    for (uint32_t u = 0; u < nu; u++) {
        const uint8_t *p = p_units + (uint64_t)u * ZT_STORE_UNIT_REC;
        zt_store_extent *x = &s->ext[u];
        size_t nlen = strnlen((const char *)p, 48);
        if (nlen == 0 || nlen == 48 || !is_zero(p + nlen, 48 - nlen) || !is_printable((const char *)p, nlen)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: unit record %u: bad name", name, u);
            goto done;
        }
        memcpy(ur[u].name, p, 48);
        for (uint32_t v = 0; v < u; v++)
            if (!strcmp(ur[v].name, ur[u].name)) {
                rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: unit '%s' appears twice", name, ur[u].name);
                goto done;
            }
        const char *un = ur[u].name;
        ur[u].comp = zt_rd32(p + 48);
        ur[u].flags = zt_rd32(p + 52);
        ur[u].first_tensor = zt_rd32(p + 56);
        ur[u].n_tensors = zt_rd32(p + 60);
        x->image_bytes = zt_rd64(p + 64);
        x->offset = zt_rd64(p + 72);
        x->stored_bytes = zt_rd64(p + 80);
        uint32_t codec = zt_rd32(p + 88);
        x->first_chunk = zt_rd64(p + 96);
        x->xxh64 = zt_rd64(p + 104);
        if (ur[u].comp >= ZT_COMP_COUNT) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: unit '%s': unknown component %u", name, un, ur[u].comp);
            goto done;
        }
        if (codec > ZT_CODEC_WCODE) { /* store.h: a newer zturbo's codec */
            rc = zt_err_set(e, ZT_ERR_UNSUPPORTED,
                            "%s: unit '%s': codec %u is unknown to this zturbo (a newer one wrote it): repack the model "
                            "with this one",
                            name, un, codec);
            goto done;
        }
        if ((ur[u].flags & ~3u) || zt_rd32(p + 92)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: unit '%s': reserved flag bits or field set", name, un);
            goto done;
        }
        x->codec = (zt_store_codec)codec;
        if (ur[u].first_tensor != next_tensor || ur[u].n_tensors > nt - next_tensor) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: unit '%s': tensors %u..+%u do not follow the previous unit's", name,
                            un, ur[u].first_tensor, ur[u].n_tensors);
            goto done;
        }
        next_tensor += ur[u].n_tensors;
        if (x->image_bytes == 0 || x->image_bytes % ZT_STORE_ALIGN) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: unit '%s': bad image size %llu", name, un,
                            (unsigned long long)x->image_bytes);
            goto done;
        }
        if (x->codec == ZT_CODEC_WCODE && (x->stored_bytes == 0 || x->stored_bytes >= x->image_bytes)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: unit '%s': coded extent of %llu bytes for a %llu-byte image", name, un,
                            (unsigned long long)x->stored_bytes, (unsigned long long)x->image_bytes);
            goto done;
        }
        /* codec 3: chunks cut the coded bytes; else the image */
        const uint64_t cut = x->codec == ZT_CODEC_WCODE ? x->stored_bytes : x->image_bytes;
        uint64_t nck = cut / cb + (cut % cb != 0);
        if (x->first_chunk != next_chunk || nck > H->n_chunks - next_chunk || nck > UINT32_MAX) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: unit '%s': chunks %llu..+%llu do not follow the previous unit's",
                            name, un, (unsigned long long)x->first_chunk, (unsigned long long)nck);
            goto done;
        }
        next_chunk += nck;
        x->n_chunks = (uint32_t)nck;
        uint64_t at = 0;
        for (uint32_t k = 0; k < x->n_chunks; k++) {
            zt_store_chunk *c = &s->chunks[x->first_chunk + k];
            c->raw = (uint32_t)ZT_MIN(cb, cut - (uint64_t)k * cb);
            c->at = at;
            if (c->stored == 0 || c->stored > c->raw ||
                ((x->codec == ZT_CODEC_RAW || x->codec == ZT_CODEC_WCODE) && c->stored != c->raw)) {
                rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: unit '%s' chunk %u: stored size %u for %u image bytes (codec %u)",
                                name, un, k, c->stored, c->raw, codec);
                goto done;
            }
            at += c->stored;
        }
        if (at != x->stored_bytes) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: unit '%s': chunks hold %llu bytes, the unit says %llu", name, un,
                            (unsigned long long)at, (unsigned long long)x->stored_bytes);
            goto done;
        }
        x->read_bytes = ZT_ALIGN_UP(x->stored_bytes, ZT_STORE_ALIGN);
        if (x->offset < ZT_STORE_ALIGN || x->offset % ZT_STORE_ALIGN) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: unit '%s': extent offset %llu is not a multiple of 4096 after the header",
                            name, un, (unsigned long long)x->offset);
            goto done;
        }
        if (x->read_bytes > H->index_offset || x->offset > H->index_offset - x->read_bytes) {
            rc = zt_err_set(e, ZT_ERR_FORMAT,
                            "%s: unit '%s': extent at %llu (+%llu bytes) runs past the end of the extents (the index "
                            "starts at %llu, the file is %llu bytes)",
                            name, un, (unsigned long long)x->offset, (unsigned long long)x->read_bytes,
                            (unsigned long long)H->index_offset, (unsigned long long)H->file_size);
            goto done;
        }
        if (x->read_bytes > s->max_read) s->max_read = x->read_bytes;
        order[u] = (int)u;
    }
    if (next_tensor != nt || next_chunk != H->n_chunks) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: units cover %llu of %u tensors and %llu of %llu chunks", name,
                        (unsigned long long)next_tensor, nt, (unsigned long long)next_chunk,
                        (unsigned long long)H->n_chunks);
        goto done;
    }
    qsort_r(order, nu, sizeof *order, cmp_by_offset, s->ext);
    for (uint32_t i = 1; i < nu; i++) {
        const zt_store_extent *a = &s->ext[order[i - 1]], *b = &s->ext[order[i]];
        if (a->offset + a->read_bytes > b->offset) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: extents of units '%s' and '%s' overlap (at %llu and %llu)", name,
                            ur[order[i - 1]].name, ur[order[i]].name, (unsigned long long)a->offset,
                            (unsigned long long)b->offset);
            goto done;
        }
    }

    /* Tensor records. */
    for (uint32_t u = 0; u < nu; u++) {
        for (uint32_t t = ur[u].first_tensor; t < ur[u].first_tensor + ur[u].n_tensors; t++) {
            const uint8_t *p = p_tensors + (uint64_t)t * ZT_STORE_TENSOR_REC;
            tensor_rec *r = &tr[t];
            uint32_t off = zt_rd32(p), len = zt_rd32(p + 4);
            if ((uint64_t)off + len >= H->names_size || p_names[off + len] != 0 ||
                len == 0 || !is_printable((const char *)p_names + off, len)) {
                rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor %u of unit '%s': bad name", name, t, ur[u].name);
                goto done;
            }
            r->name = (const char *)p_names + off;
            r->name_len = len;
            r->dtype = zt_rd32(p + 8);
            r->ndim = zt_rd32(p + 12);
            r->flags = zt_rd32(p + 16);
            r->offset = zt_rd64(p + 56);
            r->nbytes = zt_rd64(p + 64);
            int ok = r->dtype < ZT_DT_COUNT && r->ndim >= 1 && r->ndim <= 4 && r->flags <= 1 && zt_rd32(p + 20) == 0;
            uint64_t count = 1;
            for (int d = 0; d < 4 && ok; d++) {
                r->shape[d] = (int64_t)zt_rd64(p + 24 + 8 * d);
                if ((uint32_t)d < r->ndim) {
                    if (r->shape[d] <= 0 || (uint64_t)r->shape[d] > (UINT64_MAX / 8) / count) ok = 0;
                    else count *= (uint64_t)r->shape[d];
                } else if (r->shape[d] != 0) ok = 0;
            }
            if (!ok) {
                rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': bad dtype, rank, shape or flags", name, r->name);
                goto done;
            }
            if (r->nbytes != count * zt_dtype_size((zt_dtype)r->dtype) || r->nbytes > s->ext[u].image_bytes ||
                r->offset > s->ext[u].image_bytes - r->nbytes) {
                rc = zt_err_set(e, ZT_ERR_FORMAT,
                                "%s: tensor '%s': %llu bytes at %llu do not match its shape or lie outside unit '%s'",
                                name, r->name, (unsigned long long)r->nbytes, (unsigned long long)r->offset,
                                ur[u].name);
                goto done;
            }
        }
    }

    /* Finally the stored tables must be those of the config's catalog. */
    zt_err ce = {0};
    if (zt_catalog_build(&cfg, &s->cat, &ce)) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: stored model config is invalid: %s", name, ce.msg);
        goto done;
    }
    s->have_cat = 1;
    rc = match_catalog(&s->cat, ur, s->ext, nu, tr, nt, name, e);
done:
    free(ur);
    free(tr);
    free(order);
    return rc;
}

static zt_store *store_new(const char *name, unsigned flags) {
    zt_store *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->fd = -1;
    s->flags = flags;
    s->path = strdup(name ? name : "store");
    if (!s->path) {
        free(s);
        return NULL;
    }
    return s;
}

static int store_finish(zt_store *s, const zt_store_header *H, const uint8_t *index, zt_err *e) {
    s->version = H->version;
    s->file_size = H->file_size;
    s->index_offset = H->index_offset;
    s->index_size = H->index_size;
    s->chunk_bytes = H->chunk_bytes;
    s->n_chunks = H->n_chunks;
    return parse_index(s, H, index, s->path, e);
}

int zt_store_parse(const void *header, size_t header_len, const void *index, size_t index_len, uint64_t file_size,
                   const char *name, unsigned flags, zt_store **out, zt_err *e) {
    *out = NULL;
    if (!name) name = "store";
    zt_store_header H;
    int rc = zt_store_header_decode(header, header_len, file_size, name, flags, &H, e);
    if (rc) return rc;
    if (index_len != H.index_size)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: index is %zu bytes, the header says %llu", name, index_len,
                          (unsigned long long)H.index_size);
    zt_store *s = store_new(name, flags);
    if (!s) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", name);
    if ((rc = store_finish(s, &H, index, e))) {
        zt_store_close(s);
        return rc;
    }
    *out = s;
    return ZT_OK;
}

/* pread exactly n bytes (EINTR retried); a short file is ZT_ERR_FORMAT. */
int zt_store_pread_full(int fd, void *buf, uint64_t n, uint64_t off, const char *name, zt_err *e) {
    uint8_t *p = buf;
    uint64_t done = 0;
    while (done < n) {
        size_t want = (size_t)ZT_MIN(n - done, (uint64_t)1 << 30);
        ssize_t r = pread(fd, p + done, want, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return zt_err_set(e, ZT_ERR_IO, "%s: read of %llu bytes at offset %llu failed: %s", name,
                              (unsigned long long)n, (unsigned long long)off, strerror(errno));
        }
        if (r == 0)
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: truncated: end of file at offset %llu", name,
                              (unsigned long long)(off + done));
        done += (uint64_t)r;
    }
    return ZT_OK;
}

int zt_store_open(const char *path, unsigned flags, zt_store **out, zt_err *e) {
    *out = NULL;
    int fd;
    uint64_t size;
    int rc0 = zt_file_open(path, &fd, &size, e); /* regular files only: a FIFO cannot block */
    if (rc0) return rc0;
    uint8_t head[ZT_STORE_ALIGN];
    size_t hl = (size_t)ZT_MIN(size, (uint64_t)ZT_STORE_ALIGN);
    int rc = zt_store_pread_full(fd, head, hl, 0, path, e);
    zt_store_header H;
    if (!rc) rc = zt_store_header_decode(head, hl, size, path, flags, &H, e);
    if (!rc && !is_zero(head + ZT_STORE_HEADER_BYTES, ZT_STORE_ALIGN - ZT_STORE_HEADER_BYTES))
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: reserved header bytes [256, 4096) are not zero", path);
    if (!rc && H.index_size > (1ull << 30))
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: index of %llu bytes is implausibly large", path,
                        (unsigned long long)H.index_size);
    if (rc) {
        close(fd);
        return rc;
    }
    uint64_t tail = H.file_size - H.index_offset; /* index + zero padding */
    uint8_t *index = malloc(tail);
    zt_store *s = store_new(path, flags);
    if (!index || !s) {
        free(index);
        zt_store_close(s);
        close(fd);
        return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for the index", path);
    }
    s->fd = fd;
    rc = zt_store_pread_full(fd, index, tail, H.index_offset, path, e);
    if (!rc && !is_zero(index + H.index_size, tail - H.index_size))
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: padding after the index is not zero", path);
    if (!rc) rc = store_finish(s, &H, index, e);
    free(index);
    if (rc) {
        zt_store_close(s);
        return rc;
    }
    *out = s;
    return ZT_OK;
}

/* ---- accessors ---- */

const char *zt_store_path(const zt_store *s) { return s->path; }
const zt_catalog *zt_store_catalog(const zt_store *s) { return &s->cat; }
uint32_t zt_store_chunk_bytes(const zt_store *s) { return s->chunk_bytes; }
uint64_t zt_store_max_read_bytes(const zt_store *s) { return s->max_read; }
uint64_t zt_store_file_size(const zt_store *s) { return s->file_size; }
unsigned zt_store_flags(const zt_store *s) { return s->flags; }
unsigned zt_store_version(const zt_store *s) { return s->version; }
int zt_store_n_files(const zt_store *s) { return (int)s->n_files; }

const char *zt_store_file_name(const zt_store *s, int i) {
    return i >= 0 && (uint32_t)i < s->n_files ? s->files[i].name : NULL;
}

const void *zt_store_file_data(const zt_store *s, int i, uint64_t *size) {
    if (i < 0 || (uint32_t)i >= s->n_files) {
        if (size) *size = 0;
        return NULL;
    }
    if (size) *size = s->files[i].size;
    return s->file_data + s->files[i].offset;
}

int zt_store_file_find(const zt_store *s, const char *name) {
    for (uint32_t i = 0; i < s->n_files; i++)
        if (!strcmp(s->files[i].name, name)) return (int)i;
    return -1;
}

const zt_store_extent *zt_store_extent_of(const zt_store *s, int unit) {
    if (unit < 0 || unit >= s->cat.n_units) return NULL;
    return &s->ext[unit];
}

const zt_store_chunk *zt_store_chunk_of(const zt_store *s, int unit, uint32_t k) {
    const zt_store_extent *x = zt_store_extent_of(s, unit);
    if (!x || k >= x->n_chunks) return NULL;
    return &s->chunks[x->first_chunk + k];
}

int zt_store_extent_is_image(const zt_store *s, int unit) {
    const zt_store_extent *x = zt_store_extent_of(s, unit);
    return x && x->stored_bytes == x->image_bytes;
}

/* ---- reading ---- */

/* Check and decode chunk k from its stored bytes src into its image bytes dst. */
static int decode_one(const zt_store *s, int unit, uint32_t k, const uint8_t *src, uint8_t *dst, ZSTD_DCtx *d,
                      void *scratch, unsigned flags, zt_err *e) {
    const zt_store_extent *x = &s->ext[unit];
    const zt_store_chunk *c = &s->chunks[x->first_chunk + k];
    const char *un = s->cat.units[unit].name;
    if (!((flags | s->flags) & ZT_STORE_NO_VERIFY) && XXH64(src, c->stored, 0) != c->xxh64)
        return zt_err_set(e, ZT_ERR_CHECKSUM, "%s: unit '%s' chunk %u (file offset %llu, %u bytes): checksum mismatch",
                          s->path, un, k, (unsigned long long)(x->offset + c->at), c->stored);
    if (c->stored == c->raw) {
        if (dst != src) memcpy(dst, src, c->raw);
        if (flags & ZT_STORE_TO_F16) zt_image_bf16_to_f16(dst, c->raw);
        return ZT_OK;
    }
    int rc = zt_zcodec_decompress(d, x->codec == ZT_CODEC_ZSTD_PLANES, dst, c->raw, src, c->stored, scratch, e);
    if (rc)
        zt_err_prefix(e, "%s: unit '%s' chunk %u (file offset %llu)", s->path, un, k,
                      (unsigned long long)(x->offset + c->at));
    else if (flags & ZT_STORE_TO_F16)
        zt_image_bf16_to_f16(dst, c->raw);
    return rc;
}

int zt_store_decode_chunk(const zt_store *s, int unit, uint32_t k, const void *extent, void *image, ZSTD_DCtx *d,
                          void *scratch, unsigned flags, zt_err *e) {
    const zt_store_extent *x = zt_store_extent_of(s, unit);
    if (!x || k >= x->n_chunks)
        return zt_err_set(e, ZT_ERR_INTERNAL, "%s: no chunk %u of unit %d", s->path, k, unit);
    return decode_one(s, unit, k, (const uint8_t *)extent + s->chunks[x->first_chunk + k].at,
                      (uint8_t *)image + (uint64_t)k * s->chunk_bytes, d, scratch, flags, e);
}

int zt_store_read_chunk(zt_store *s, int unit, uint32_t k, void *dst, unsigned flags, zt_err *e) {
    const zt_store_extent *x = zt_store_extent_of(s, unit);
    if (!x || k >= x->n_chunks) return zt_err_set(e, ZT_ERR_ARG, "%s: no chunk %u of unit %d", s->path, k, unit);
    if (s->fd < 0) return zt_err_set(e, ZT_ERR_ARG, "%s: store parsed from memory has no file", s->path);
    const zt_store_chunk *c = &s->chunks[x->first_chunk + k];
    if (c->stored == c->raw) { /* plain copy: read in place, then check */
        int rc = zt_store_pread_full(s->fd, dst, c->stored, x->offset + c->at, s->path, e);
        return rc ? rc : decode_one(s, unit, k, dst, dst, NULL, NULL, flags, e);
    }
    uint8_t *buf = malloc(c->stored), *scratch = malloc(c->raw);
    ZSTD_DCtx *d = zt_zcodec_dctx_new();
    int rc;
    if (!buf || !scratch || !d) rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory reading a chunk", s->path);
    else rc = zt_store_pread_full(s->fd, buf, c->stored, x->offset + c->at, s->path, e);
    if (!rc) rc = decode_one(s, unit, k, buf, dst, d, scratch, flags, e);
    zt_zcodec_dctx_free(d);
    free(buf);
    free(scratch);
    return rc;
}

int zt_store_unit_coded(const zt_store *s, int unit) {
    const zt_store_extent *x = zt_store_extent_of(s, unit);
    return x && x->codec == ZT_CODEC_WCODE;
}

/* The header and tables of a coded extent read into buf (coded bytes). */
static int check_coded(const zt_store *s, int unit, const void *buf, unsigned checks, zt_wcode_info *info, zt_err *e) {
    const zt_store_extent *x = &s->ext[unit];
    char what[160];
    snprintf(what, sizeof what, "%s: unit '%s'", s->path, s->cat.units[unit].name);
    int rc = zt_wcode_validate(buf, x->stored_bytes, checks, what, info, e);
    if (!rc && (info->n_words * 2 != x->image_bytes || info->total_bytes != x->stored_bytes))
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: coded image of %llu words in %llu bytes, the unit has %llu image bytes in %llu",
                        what, (unsigned long long)info->n_words, (unsigned long long)info->total_bytes,
                        (unsigned long long)x->image_bytes, (unsigned long long)x->stored_bytes);
    return rc;
}

int zt_store_read_coded(zt_store *s, int unit, void *dst, uint64_t dst_bytes, unsigned flags, zt_wcode_info *info,
                        zt_err *e) {
    const zt_store_extent *x = zt_store_extent_of(s, unit);
    if (!x) return zt_err_set(e, ZT_ERR_ARG, "%s: no unit %d", s->path, unit);
    if (x->codec != ZT_CODEC_WCODE)
        return zt_err_set(e, ZT_ERR_ARG, "%s: unit '%s' is not stored coded", s->path, s->cat.units[unit].name);
    if (dst_bytes < x->read_bytes)
        return zt_err_set(e, ZT_ERR_ARG, "%s: unit '%s' needs %llu bytes, buffer has %llu", s->path,
                          s->cat.units[unit].name, (unsigned long long)x->read_bytes, (unsigned long long)dst_bytes);
    if (s->fd < 0) return zt_err_set(e, ZT_ERR_ARG, "%s: store parsed from memory has no file", s->path);
    int rc = zt_store_pread_full(s->fd, dst, x->read_bytes, x->offset, s->path, e);
    for (uint32_t k = 0; k < x->n_chunks && !rc; k++) rc = zt_store_decode_chunk(s, unit, k, dst, dst, NULL, NULL, flags, e);
    return rc ? rc : check_coded(s, unit, dst, 0, info, e);
}

int zt_store_read_unit(zt_store *s, int unit, void *dst, uint64_t dst_bytes, unsigned flags, zt_err *e) {
    const zt_store_extent *x = zt_store_extent_of(s, unit);
    if (!x) return zt_err_set(e, ZT_ERR_ARG, "%s: no unit %d", s->path, unit);
    if (dst_bytes < x->image_bytes)
        return zt_err_set(e, ZT_ERR_ARG, "%s: unit '%s' needs %llu bytes, buffer has %llu", s->path,
                          s->cat.units[unit].name, (unsigned long long)x->image_bytes, (unsigned long long)dst_bytes);
    if (s->fd < 0) return zt_err_set(e, ZT_ERR_ARG, "%s: store parsed from memory has no file", s->path);
    int rc;
    if (x->codec == ZT_CODEC_WCODE) { /* the coded bytes, checked, decoded on this host (and that checked too) */
        uint8_t *buf = NULL;
        if (posix_memalign((void **)&buf, ZT_STORE_ALIGN, x->read_bytes))
            return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory reading a unit", s->path);
        zt_wcode_info info;
        rc = zt_store_read_coded(s, unit, buf, x->read_bytes, flags, &info, e);
        if (!rc) {
            char what[160];
            snprintf(what, sizeof what, "%s: unit '%s'", s->path, s->cat.units[unit].name);
            long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
            rc = zt_wcode_decode(buf, &info, dst, (int)ZT_MIN(ZT_MAX(ncpu, 1L), 16L),
                                 !((flags | s->flags) & ZT_STORE_NO_VERIFY), what, e);
        }
        free(buf);
        return rc;
    }
    if (zt_store_extent_is_image(s, unit)) {
        /* Plain copy: read straight into the destination, then check. */
        if ((rc = zt_store_pread_full(s->fd, dst, x->stored_bytes, x->offset, s->path, e))) return rc;
        for (uint32_t k = 0; k < x->n_chunks && !rc; k++)
            rc = zt_store_decode_chunk(s, unit, k, dst, dst, NULL, NULL, flags, e);
        return rc;
    }
    uint8_t *buf = malloc(x->stored_bytes), *scratch = malloc(s->chunk_bytes);
    ZSTD_DCtx *d = zt_zcodec_dctx_new();
    if (!buf || !scratch || !d) rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory reading a unit", s->path);
    else rc = zt_store_pread_full(s->fd, buf, x->stored_bytes, x->offset, s->path, e);
    for (uint32_t k = 0; k < x->n_chunks && !rc; k++) rc = zt_store_decode_chunk(s, unit, k, buf, dst, d, scratch, flags, e);
    zt_zcodec_dctx_free(d);
    free(buf);
    free(scratch);
    return rc;
}

int zt_store_verify(const char *path, zt_store_progress_fn progress, void *ctx, zt_err *e) {
    zt_store *s;
    int rc = zt_store_open(path, 0, &s, e);
    if (rc) return rc;
    const int nu = s->cat.n_units;
    uint64_t total = 0, done = 0, max_image = 0;
    for (int u = 0; u < nu; u++) {
        total += s->ext[u].read_bytes;
        max_image = ZT_MAX(max_image, s->ext[u].image_bytes);
    }
    int *order = malloc(sizeof(int) * (size_t)nu);
    uint8_t *buf = malloc(ZT_MAX(s->max_read, (uint64_t)ZT_STORE_ALIGN)), *image = malloc(max_image),
            *scratch = malloc(s->chunk_bytes);
    ZSTD_DCtx *d = zt_zcodec_dctx_new();
    if (!order || !buf || !image || !scratch || !d) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for verification", path);
        goto done;
    }
    for (int u = 0; u < nu; u++) order[u] = u;
    qsort_r(order, (size_t)nu, sizeof *order, cmp_by_offset, s->ext);
    uint64_t at = ZT_STORE_ALIGN; /* everything from the header to the index is an extent or zero */
    for (int i = 0; i < nu && !rc; i++) {
        int u = order[i];
        const zt_store_extent *x = &s->ext[u];
        const char *un = s->cat.units[u].name;
        while (at < x->offset && !rc) { /* gap */
            uint64_t n = ZT_MIN(x->offset - at, (uint64_t)ZT_STORE_ALIGN);
            rc = zt_store_pread_full(s->fd, buf, n, at, path, e);
            if (!rc && !is_zero(buf, n))
                rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: bytes at %llu between extents are not zero", path,
                                (unsigned long long)at);
            at += n;
        }
        if (rc) break;
        if ((rc = zt_store_pread_full(s->fd, buf, x->read_bytes, x->offset, path, e))) break;
        if (XXH64(buf, x->stored_bytes, 0) != x->xxh64) {
            rc = zt_err_set(e, ZT_ERR_CHECKSUM, "%s: unit '%s' (extent at %llu, %llu bytes): checksum mismatch", path, un,
                            (unsigned long long)x->offset, (unsigned long long)x->stored_bytes);
            break;
        }
        if (!is_zero(buf + x->stored_bytes, x->read_bytes - x->stored_bytes)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: unit '%s': padding after the extent is not zero", path, un);
            break;
        }
        for (uint32_t k = 0; k < x->n_chunks && !rc; k++)
            rc = zt_store_decode_chunk(s, u, k, buf, x->codec == ZT_CODEC_WCODE ? buf : image, d, scratch, 0, e);
        if (!rc && x->codec == ZT_CODEC_WCODE) { /* everything: body, content, and the words it decodes to */
            zt_wcode_info info;
            rc = check_coded(s, u, buf, ZT_WCODE_CHECK_BODY | ZT_WCODE_CHECK_CONTENT, &info, e);
            char what[160];
            snprintf(what, sizeof what, "%s: unit '%s'", path, un);
            long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
            if (!rc) rc = zt_wcode_decode(buf, &info, (uint16_t *)image, (int)ZT_MIN(ZT_MAX(ncpu, 1L), 16L), 1, what, e);
        }
        at = x->offset + x->read_bytes;
        done += x->read_bytes;
        if (progress && !rc) progress(ctx, i + 1, nu, done, total);
    }
    while (!rc && at < s->index_offset) {
        uint64_t n = ZT_MIN(s->index_offset - at, (uint64_t)ZT_STORE_ALIGN);
        rc = zt_store_pread_full(s->fd, buf, n, at, path, e);
        if (!rc && !is_zero(buf, n))
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: bytes at %llu before the index are not zero", path,
                            (unsigned long long)at);
        at += n;
    }
done:
    zt_zcodec_dctx_free(d);
    free(order);
    free(buf);
    free(image);
    free(scratch);
    zt_store_close(s);
    return rc;
}
