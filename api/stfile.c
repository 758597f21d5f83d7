/* api/stfile.c — small whole-file safetensors reader and writer. */
#include "api/stfile.h"

#include "storage/safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    zt_st_file sf;
    int rc = zt_st_open(path, &sf, e); /* validates header, offsets, sizes */
    if (rc) return rc;
    for (int i = 0; i < sf.n_tensors && !rc; i++) {
        const zt_st_tensor *t = &sf.tensors[i];
        const uint64_t nb = t->end - t->begin;
        rc = zt_stf_add(f, t->name, zt_dtype_name(t->dtype), t->ndim, t->shape, NULL, 0, e);
        if (rc) break;
        zt_stf_tensor *d = &f->t[f->n - 1];
        free(d->data);
        d->data = malloc(nb ? nb : 1);
        d->nbytes = nb;
        if (!d->data) rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of host memory", path);
        else if (nb) rc = zt_st_pread(&sf, t, 0, d->data, nb, e);
    }
    zt_st_close(&sf);
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
