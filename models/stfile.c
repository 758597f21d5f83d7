/* models/stfile.c — small whole-file safetensors reader and writer. */
#include "models/stfile.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

size_t zt_stf_dtype_size(const char *dt) {
    static const struct { const char *n; size_t s; } k[] = {
        {"F64", 8}, {"I64", 8}, {"U64", 8}, {"F32", 4}, {"I32", 4}, {"U32", 4}, {"F16", 2}, {"BF16", 2},
        {"I16", 2}, {"U16", 2}, {"U8", 1}, {"I8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(k); i++)
        if (!strcmp(dt, k[i].n)) return k[i].s;
    return 0;
}

int64_t zt_stf_numel(const zt_stf_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static int grow(zt_stf *f, zt_err *e) {
    if (f->n < f->cap) return ZT_OK;
    int cap = f->cap ? f->cap * 2 : 16;
    zt_stf_tensor *t = realloc(f->t, (size_t)cap * sizeof *t);
    if (!t) return zt_err_set(e, ZT_ERR_NOMEM, "safetensors: out of host memory");
    f->t = t;
    f->cap = cap;
    return ZT_OK;
}

void zt_stf_free(zt_stf *f) {
    for (int i = 0; i < f->n; i++) {
        free(f->t[i].name);
        free(f->t[i].data);
    }
    free(f->t);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta[i][0]);
        free(f->meta[i][1]);
    }
    memset(f, 0, sizeof *f);
}

const char *zt_stf_meta_get(const zt_stf *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[i][0], key)) return f->meta[i][1];
    return NULL;
}

const zt_stf_tensor *zt_stf_find(const zt_stf *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

int zt_stf_meta(zt_stf *f, const char *key, const char *value, zt_err *e) {
    int i = 0;
    while (i < f->n_meta && strcmp(f->meta[i][0], key)) i++;
    if (i == 32) return zt_err_set(e, ZT_ERR_ARG, "safetensors: too many metadata keys");
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return zt_err_set(e, ZT_ERR_NOMEM, "safetensors: out of host memory");
    }
    if (i == f->n_meta) f->n_meta++;
    else {
        free(f->meta[i][0]);
        free(f->meta[i][1]);
    }
    f->meta[i][0] = k;
    f->meta[i][1] = v;
    return ZT_OK;
}

int zt_stf_add(zt_stf *f, const char *name, const char *dtype, int ndim, const int64_t *shape, const void *data,
               size_t nbytes, zt_err *e) {
    if (ndim < 0 || ndim > 8 || strlen(dtype) >= sizeof f->t[0].dtype)
        return zt_err_set(e, ZT_ERR_ARG, "safetensors: tensor '%s': bad rank %d or dtype '%s'", name, ndim, dtype);
    int rc = grow(f, e);
    if (rc) return rc;
    zt_stf_tensor *t = &f->t[f->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return zt_err_set(e, ZT_ERR_NOMEM, "safetensors: out of host memory for '%s'", name);
    }
    strcpy(t->dtype, dtype);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->nbytes = nbytes;
    if (nbytes) memcpy(t->data, data, nbytes);
    f->n++;
    return ZT_OK;
}

int zt_stf_load(const char *path, zt_stf *f, zt_err *e) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) return zt_err_set(e, ZT_ERR_IO, "%s: %s", path, strerror(errno));
    int rc = ZT_OK;
    char *hdr = NULL;
    json_t *root = NULL;
    uint8_t lenb[8];
    if (fseek(fp, 0, SEEK_END) || ftell(fp) < 8) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: too short for a safetensors file", path);
        goto out;
    }
    long fsize = ftell(fp);
    rewind(fp);
    if (fread(lenb, 1, 8, fp) != 8) {
        rc = zt_err_set(e, ZT_ERR_IO, "%s: short read", path);
        goto out;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
    if (hlen == 0 || hlen > (uint64_t)fsize - 8 || hlen > (64u << 20)) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: header length %llu does not fit the file (%ld bytes)", path,
                        (unsigned long long)hlen, fsize);
        goto out;
    }
    hdr = malloc(hlen + 1);
    if (!hdr) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of host memory", path);
        goto out;
    }
    if (fread(hdr, 1, hlen, fp) != hlen) {
        rc = zt_err_set(e, ZT_ERR_IO, "%s: short read of the header", path);
        goto out;
    }
    hdr[hlen] = 0;
    json_error_t je;
    root = json_loadb(hdr, hlen, 0, &je);
    if (!root || !json_is_object(root)) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: header is not a JSON object (%s)", path, root ? "" : je.text);
        goto out;
    }
    uint64_t data0 = 8 + hlen, dsize = (uint64_t)fsize - data0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            const char *mk;
            json_t *mv;
            if (json_is_object(val))
                json_object_foreach(val, mk, mv) if (json_is_string(mv) && f->n_meta < 32) {
                    rc = zt_stf_meta(f, mk, json_string_value(mv), e);
                    if (rc) goto out;
                }
            continue;
        }
        json_t *jdt = json_object_get(val, "dtype"), *jsh = json_object_get(val, "shape"),
               *jof = json_object_get(val, "data_offsets");
        if (!json_is_string(jdt) || !json_is_array(jsh) || !json_is_array(jof) || json_array_size(jof) != 2 ||
            json_array_size(jsh) > 8) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': bad dtype/shape/data_offsets", path, key);
            goto out;
        }
        int64_t shape[8];
        int ndim = (int)json_array_size(jsh);
        int64_t numel = 1;
        for (int i = 0; i < ndim; i++) {
            json_t *d = json_array_get(jsh, (size_t)i);
            if (!json_is_integer(d) || json_integer_value(d) < 0) {
                rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': bad shape", path, key);
                goto out;
            }
            shape[i] = json_integer_value(d);
            numel *= shape[i];
        }
        json_t *jb = json_array_get(jof, 0), *jend = json_array_get(jof, 1);
        if (!json_is_integer(jb) || !json_is_integer(jend)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': bad data_offsets", path, key);
            goto out;
        }
        int64_t b = json_integer_value(jb), en = json_integer_value(jend);
        if (b < 0 || en < b || (uint64_t)en > dsize) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] outside the data (%llu bytes)",
                            path, key, (long long)b, (long long)en, (unsigned long long)dsize);
            goto out;
        }
        size_t es = zt_stf_dtype_size(json_string_value(jdt));
        if (es && (uint64_t)numel * es != (uint64_t)(en - b)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': %lld bytes for %lld elements of %s", path, key,
                            (long long)(en - b), (long long)numel, json_string_value(jdt));
            goto out;
        }
        void *buf = malloc((size_t)(en - b) ? (size_t)(en - b) : 1);
        if (!buf) {
            rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of host memory", path);
            goto out;
        }
        if (fseek(fp, (long)(data0 + (uint64_t)b), SEEK_SET) || fread(buf, 1, (size_t)(en - b), fp) != (size_t)(en - b)) {
            free(buf);
            rc = zt_err_set(e, ZT_ERR_IO, "%s: short read of tensor '%s'", path, key);
            goto out;
        }
        rc = zt_stf_add(f, key, json_string_value(jdt), ndim, shape, NULL, 0, e);
        if (rc) {
            free(buf);
            goto out;
        }
        free(f->t[f->n - 1].data);
        f->t[f->n - 1].data = buf;
        f->t[f->n - 1].nbytes = (size_t)(en - b);
    }
out:
    if (root) json_decref(root);
    free(hdr);
    fclose(fp);
    if (rc) zt_stf_free(f);
    return rc;
}

float *zt_stf_to_f32(const zt_stf_tensor *t) {
    int64_t n = zt_stf_numel(t);
    float *o = malloc((size_t)(n ? n : 1) * sizeof *o);
    if (!o) return NULL;
    const char *d = t->dtype;
    for (int64_t i = 0; i < n; i++) {
        float v;
        if (!strcmp(d, "F32")) memcpy(&v, (const char *)t->data + 4 * i, 4);
        else if (!strcmp(d, "BF16")) {
            uint16_t h;
            memcpy(&h, (const char *)t->data + 2 * i, 2);
            v = zt_bf16_to_f32(h);
        } else if (!strcmp(d, "F16")) {
            uint16_t h;
            memcpy(&h, (const char *)t->data + 2 * i, 2);
            v = zt_f16_to_f32(h);
        } else if (!strcmp(d, "F64")) {
            double x;
            memcpy(&x, (const char *)t->data + 8 * i, 8);
            v = (float)x;
        } else if (!strcmp(d, "I64")) {
            int64_t x;
            memcpy(&x, (const char *)t->data + 8 * i, 8);
            v = (float)x;
        } else if (!strcmp(d, "I32")) {
            int32_t x;
            memcpy(&x, (const char *)t->data + 4 * i, 4);
            v = (float)x;
        } else if (!strcmp(d, "U8")) v = ((const uint8_t *)t->data)[i];
        else {
            free(o);
            return NULL;
        }
        o[i] = v;
    }
    return o;
}

int zt_stf_save(const zt_stf *f, const char *path, zt_err *e) {
    json_t *root = json_object();
    if (!root) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of host memory", path);
    uint64_t off = 0;
    for (int i = 0; i < f->n; i++) {
        const zt_stf_tensor *t = &f->t[i];
        json_t *sh = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(sh, json_integer(t->shape[d]));
        json_t *o = json_pack("{s:s, s:o, s:[I,I]}", "dtype", t->dtype, "shape", sh, "data_offsets", (json_int_t)off,
                              (json_int_t)(off + t->nbytes));
        json_object_set_new(root, t->name, o);
        off += t->nbytes;
    }
    json_t *meta = json_pack("{s:s}", "format", "pt");
    for (int i = 0; i < f->n_meta; i++) json_object_set_new(meta, f->meta[i][0], json_string(f->meta[i][1]));
    json_object_set_new(root, "__metadata__", meta);
    char *js = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!js) return zt_err_set(e, ZT_ERR_NOMEM, "%s: cannot format the header", path);
    size_t jl = strlen(js), hl = (size_t)ZT_ALIGN_UP(jl, 8);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(js);
        return zt_err_set(e, ZT_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    uint8_t lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    int ok = fwrite(lb, 1, 8, fp) == 8 && fwrite(js, 1, jl, fp) == jl;
    for (size_t i = jl; ok && i < hl; i++) ok = fputc(' ', fp) != EOF;
    for (int i = 0; ok && i < f->n; i++)
        ok = f->t[i].nbytes == 0 || fwrite(f->t[i].data, 1, f->t[i].nbytes, fp) == f->t[i].nbytes;
    free(js);
    if (fflush(fp) || fsync(fileno(fp))) ok = 0;
    if (fclose(fp)) ok = 0;
    if (!ok) {
        int er = errno;
        unlink(tmp);
        return zt_err_set(e, ZT_ERR_IO, "%s: write failed: %s", tmp, strerror(er));
    }
    if (rename(tmp, path)) {
        int er = errno;
        unlink(tmp);
        return zt_err_set(e, ZT_ERR_IO, "%s: rename failed: %s", path, strerror(er));
    }
    return ZT_OK;
}
