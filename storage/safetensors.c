/* storage/safetensors.c — safetensors parser, sharded index, writer
 * (format and validation rules: safetensors.h). */
#include "storage/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zt_input.h"


/* A printable, bounded copy of an untrusted name for one-line messages. */
static const char *shown(const char *s, char *buf, size_t n) {
    size_t i = 0;
    for (; s[i] && i + 4 < n; i++) buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (s[i]) {
        memcpy(buf + (i < n - 4 ? i : n - 4), "...", 4);
    } else {
        buf[i] = 0;
    }
    return buf;
}

static int err_errno(zt_err *e, int err, const char *path, const char *what) {
    return zt_err_errno(e, err, path, what);
}

/* ---- header parsing ---------------------------------------------------- */

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const zt_st_tensor *)a)->name, ((const zt_st_tensor *)b)->name);
}

static int cmp_tensor_begin(const void *a, const void *b) {
    const zt_st_tensor *x = *(const zt_st_tensor *const *)a, *y = *(const zt_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Parse one integer of a JSON array into [0, 2^53). */
static int json_u53(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0 || x >= (json_int_t)1 << 53) return -1;
    *out = (uint64_t)x;
    return 0;
}

static int parse_tensor(const char *label, const char *key, json_t *v, uint64_t data_size, zt_st_tensor *t,
                        zt_err *e) {
    char nb[96];
    const char *nm = shown(key, nb, sizeof nb);
    if (!json_is_object(v)) return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", label, nm);
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets")) {
            char kb[64];
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': unexpected field '%s'", label, nm,
                              shown(k, kb, sizeof kb));
        }
    }
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"), *off = json_object_get(v, "data_offsets");
    if (!dt || !json_is_string(dt))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': missing or non-string 'dtype'", label, nm);
    if (zt_dtype_parse(json_string_value(dt), &t->dtype)) {
        char db[32];
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: tensor '%s': unknown dtype '%s'", label, nm,
                          shown(json_string_value(dt), db, sizeof db));
    }
    if (!sh || !json_is_array(sh))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': missing or non-array 'shape'", label, nm);
    size_t nd = json_array_size(sh);
    if (nd > ZT_ST_MAX_DIMS)
        return zt_err_set(e, ZT_ERR_UNSUPPORTED, "%s: tensor '%s': %zu dimensions (at most %d)", label, nm, nd,
                          ZT_ST_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t count = 1;
    int overflow = 0;
    for (size_t d = 0; d < nd; d++) {
        uint64_t dim;
        if (json_u53(json_array_get(sh, d), &dim))
            return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': shape[%zu] is not an integer in [0, 2^53)", label,
                              nm, d);
        t->shape[d] = (int64_t)dim;
        if (__builtin_mul_overflow(count, dim, &count)) overflow = 1;
    }
    uint64_t bytes = 0;
    if (overflow || __builtin_mul_overflow(count, (uint64_t)zt_dtype_size(t->dtype), &bytes))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': shape size overflows", label, nm);
    if (!off || !json_is_array(off) || json_array_size(off) != 2)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': 'data_offsets' must be an array [begin, end]", label, nm);
    if (json_u53(json_array_get(off, 0), &t->begin) || json_u53(json_array_get(off, 1), &t->end))
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': data_offsets are not integers in [0, 2^53)", label, nm);
    if (t->end < t->begin)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin", label, nm,
                          (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end - t->begin != bytes)
        return zt_err_set(e, ZT_ERR_FORMAT,
                          "%s: tensor '%s': shape x %s = %llu bytes but data_offsets span %llu bytes", label, nm,
                          zt_dtype_name(t->dtype), (unsigned long long)bytes,
                          (unsigned long long)(t->end - t->begin));
    if (t->end > data_size)
        return zt_err_set(e, ZT_ERR_FORMAT,
                          "%s: tensor '%s': data_offsets end %llu is past the data section (%llu bytes): truncated "
                          "file?",
                          label, nm, (unsigned long long)t->end, (unsigned long long)data_size);
    return ZT_OK;
}

int zt_st_parse(const char *label, const void *buf, size_t len, uint64_t file_size, zt_st_file *f, zt_err *e) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    const uint8_t *p = buf;
    if (len < 8 || file_size < 8)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: %llu bytes is too short for a safetensors file", label,
                          (unsigned long long)(len < file_size ? len : file_size));
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | p[i];
    if (n < 2 || n > ZT_ST_MAX_HEADER)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: header length %llu is not in [2, %llu] (not a safetensors file?)",
                          label, (unsigned long long)n, (unsigned long long)ZT_ST_MAX_HEADER);
    if (n > file_size - 8)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: header length %llu runs past the end of the %llu-byte file", label,
                          (unsigned long long)n, (unsigned long long)file_size);
    if (n > len - 8)
        return zt_err_set(e, ZT_ERR_INTERNAL, "%s: only %zu of %llu header bytes given", label, len,
                          (unsigned long long)(n + 8));
    if (p[8] != '{')
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: header does not start with '{' (not a safetensors file?)", label);
    uint64_t data_size = file_size - 8 - n;

    json_error_t je;
    json_t *root = json_loadb((const char *)p + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: header JSON invalid at byte %d: %s", label, je.position, je.text);
    int rc = ZT_OK;
    if (!json_is_object(root)) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: header is not a JSON object", label);
        goto out;
    }
    size_t nt = json_object_size(root), names_len = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) names_len += strlen(key) + 1;
    f->path = strdup(label);
    f->tensors = calloc(nt ? nt : 1, sizeof *f->tensors);
    f->names = malloc(names_len ? names_len : 1);
    if (!f->path || !f->tensors || !f->names) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for %zu tensors", label, nt);
        goto out;
    }
    size_t at = 0;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(v)) {
                rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: __metadata__ is not an object", label);
                goto out;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                if (!json_is_string(mv)) {
                    char kb[64];
                    rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", label,
                                    shown(mk, kb, sizeof kb));
                    goto out;
                }
            }
            continue;
        }
        zt_st_tensor *t = &f->tensors[f->n_tensors];
        rc = parse_tensor(label, key, v, data_size, t, e);
        if (rc) goto out;
        size_t kl = strlen(key) + 1;
        memcpy(f->names + at, key, kl);
        t->name = f->names + at;
        at += kl;
        f->n_tensors++;
    }
    /* no two tensors share a byte */
    if (f->n_tensors > 1) {
        zt_st_tensor **by = malloc((size_t)f->n_tensors * sizeof *by);
        if (!by) {
            rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", label);
            goto out;
        }
        for (int i = 0; i < f->n_tensors; i++) by[i] = &f->tensors[i];
        qsort(by, (size_t)f->n_tensors, sizeof *by, cmp_tensor_begin);
        const zt_st_tensor *prev = NULL;
        for (int i = 0; i < f->n_tensors && !rc; i++) {
            const zt_st_tensor *t = by[i];
            if (t->end == t->begin) continue;
            if (prev && t->begin < prev->end) {
                char a[96], b[96];
                rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section", label,
                                shown(prev->name, a, sizeof a), shown(t->name, b, sizeof b));
            }
            prev = t;
        }
        free(by);
        if (rc) goto out;
    }
    qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_tensor_name);
    f->file_size = file_size;
    f->data_offset = 8 + n;
out:
    json_decref(root);
    if (rc) zt_st_close(f);
    return rc;
}

static int pread_full(int fd, void *dst, uint64_t n, uint64_t off, const char *path, zt_err *e) {
    uint8_t *d = dst;
    while (n) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t r = pread(fd, d, chunk, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return err_errno(e, errno, path, "read");
        }
        if (r == 0)
            return zt_err_set(e, ZT_ERR_IO, "%s: unexpected end of file at byte %llu (file shrank?)", path,
                              (unsigned long long)off);
        d += r;
        off += (uint64_t)r;
        n -= (uint64_t)r;
    }
    return ZT_OK;
}

int zt_st_open(const char *path, zt_st_file *f, zt_err *e) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    int fd;
    uint64_t size;
    int rc0 = zt_file_open(path, &fd, &size, e); /* regular files only: a FIFO cannot block */
    if (rc0) return rc0;
    uint8_t head[8];
    if (size < 8) {
        close(fd);
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: %llu bytes is too short for a safetensors file", path,
                          (unsigned long long)size);
    }
    int rc = pread_full(fd, head, 8, 0, path, e);
    if (rc) {
        close(fd);
        return rc;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | head[i];
    /* let the parser word the error for bad lengths: hand it only 8 bytes */
    uint64_t want = (n >= 2 && n <= ZT_ST_MAX_HEADER && n <= size - 8) ? 8 + n : 8;
    uint8_t *buf = malloc((size_t)want);
    if (!buf) {
        close(fd);
        return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path, (unsigned long long)want);
    }
    rc = pread_full(fd, buf, want, 0, path, e);
    if (!rc) rc = zt_st_parse(path, buf, (size_t)want, size, f, e);
    free(buf);
    if (rc) {
        close(fd);
        return rc;
    }
    f->fd = fd;
    return ZT_OK;
}

void zt_st_close(zt_st_file *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    free(f->tensors);
    free(f->names);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

const zt_st_tensor *zt_st_find(const zt_st_file *f, const char *name) {
    zt_st_tensor key;
    key.name = name;
    return f->n_tensors ? bsearch(&key, f->tensors, (size_t)f->n_tensors, sizeof key, cmp_tensor_name) : NULL;
}

int zt_st_pread(const zt_st_file *f, const zt_st_tensor *t, uint64_t off, void *dst, uint64_t n, zt_err *e) {
    if (off > t->end - t->begin || n > t->end - t->begin - off)
        return zt_err_set(e, ZT_ERR_INTERNAL, "%s: tensor '%s': read [%llu, +%llu) outside its %llu bytes", f->path,
                          t->name, (unsigned long long)off, (unsigned long long)n,
                          (unsigned long long)(t->end - t->begin));
    if (f->fd < 0) return zt_err_set(e, ZT_ERR_INTERNAL, "%s: parsed from memory, cannot read data", f->path);
    int rc = pread_full(f->fd, dst, n, f->data_offset + t->begin + off, f->path, e);
    if (rc && e) zt_err_prefix(e, "tensor '%s'", t->name);
    return rc;
}

/* ---- sharded index ------------------------------------------------------ */

static int shard_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == ':') return 0;
    }
    return n > 12 && !strcmp(s + n - 12, ".safetensors");
}

void zt_st_index_free(int n, char **tensors, char **shards) {
    for (int i = 0; i < n; i++) {
        if (tensors) free(tensors[i]);
        if (shards) free(shards[i]);
    }
    free(tensors);
    free(shards);
}

int zt_st_index_parse(const char *label, const void *buf, size_t len, int *n_out, char ***t_out, char ***s_out,
                      zt_err *e) {
    *n_out = 0;
    *t_out = *s_out = NULL;
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return zt_err_set(e, ZT_ERR_FORMAT, "%s: invalid JSON at byte %d: %s", label, je.position, je.text);
    int rc = ZT_OK, n = 0;
    char **ts = NULL, **ss = NULL;
    json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(root)) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: not a JSON object", label);
        goto out;
    }
    json_t *md = json_object_get(root, "metadata");
    if (md && !json_is_object(md) && !json_is_null(md)) {
        rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: 'metadata' is not an object", label);
        goto out;
    }
    if (!wm || !json_is_object(wm)) {
        rc = zt_err_set(e, wm ? ZT_ERR_FORMAT : ZT_ERR_MISSING, "%s: %s 'weight_map' object", label,
                        wm ? "non-object" : "missing");
        goto out;
    }
    size_t cnt = json_object_size(wm);
    ts = calloc(cnt ? cnt : 1, sizeof *ts);
    ss = calloc(cnt ? cnt : 1, sizeof *ss);
    if (!ts || !ss) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", label);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v) {
        char kb[96], sb[96];
        if (!json_is_string(v)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: weight_map['%s'] is not a string", label, shown(key, kb, sizeof kb));
            goto out;
        }
        const char *shard = json_string_value(v);
        if (!shard_name_ok(shard)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT,
                            "%s: weight_map['%s'] = '%s' is not a plain *.safetensors file name in this folder", label,
                            shown(key, kb, sizeof kb), shown(shard, sb, sizeof sb));
            goto out;
        }
        ts[n] = strdup(key);
        ss[n] = strdup(shard);
        n++;
        if (!ts[n - 1] || !ss[n - 1]) {
            rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", label);
            goto out;
        }
    }
out:
    json_decref(root);
    if (rc) {
        zt_st_index_free(n, ts, ss);
        return rc;
    }
    *n_out = n;
    *t_out = ts;
    *s_out = ss;
    return ZT_OK;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const zt_st_entry *)a)->name, ((const zt_st_entry *)b)->name);
}

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t at = a;
    if (a && dir[a - 1] != '/') p[at++] = '/';
    memcpy(p + at, name, b + 1);
    return p;
}


int zt_st_set_open(const char *dir, const char *base, zt_st_set *s, zt_err *e) {
    memset(s, 0, sizeof *s);
    char name[512];
    int rc = ZT_OK;
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        return err_errno(e, errno ? errno : ENOTDIR, dir, "cannot open folder");
    s->dir = strdup(dir);
    snprintf(name, sizeof name, "%s.safetensors.index.json", base);
    char *ipath = path_join(dir, name);
    snprintf(name, sizeof name, "%s.safetensors", base);
    char *single = path_join(dir, name);
    if (!s->dir || !ipath || !single) {
        free(ipath);
        free(single);
        zt_st_set_close(s);
        return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", dir);
    }
    const int have_index = stat(ipath, &st) == 0, index_errno = errno;
    if (!have_index && index_errno != ENOENT) { /* a loop, a folder we may not read: say so */
        rc = err_errno(e, index_errno, ipath, "cannot stat");
        free(ipath);
        free(single);
        goto fail;
    }
    if (have_index) {
        free(single);
        s->index_path = ipath;
        char *json = NULL;
        size_t len = 0;
        int n = 0;
        char **ts = NULL, **ss = NULL;
        rc = zt_file_read_all(ipath, ZT_ST_MAX_INDEX, "a safetensors index", &json, &len, e);
        if (!rc) rc = zt_st_index_parse(ipath, json, len, &n, &ts, &ss, e);
        free(json);
        if (rc) goto fail;
        /* open each distinct shard once */
        s->files = calloc((size_t)(n ? n : 1), sizeof *s->files);
        s->entries = calloc((size_t)(n ? n : 1), sizeof *s->entries);
        int *file_of = calloc((size_t)(n ? n : 1), sizeof *file_of);
        if (!s->files || !s->entries || !file_of) {
            free(file_of);
            zt_st_index_free(n, ts, ss);
            rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", ipath);
            goto fail;
        }
        for (int i = 0; i < n && !rc; i++) {
            int f = -1;
            for (int j = 0; j < i && f < 0; j++)
                if (!strcmp(ss[j], ss[i])) f = file_of[j];
            if (f < 0) {
                char *sp = path_join(dir, ss[i]);
                if (!sp) {
                    rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", ipath);
                    break;
                }
                rc = zt_st_open(sp, &s->files[s->n_files], e);
                free(sp);
                if (rc) {
                    if (e) {
                        char m[ZT_ERR_MSG];
                        snprintf(m, sizeof m, "%s", e->msg);
                        zt_err_set(e, rc, "%s (a shard listed in %s)", m, ipath);
                    }
                    break;
                }
                f = s->n_files++;
            }
            file_of[i] = f;
        }
        for (int i = 0; i < n && !rc; i++) {
            const zt_st_tensor *t = zt_st_find(&s->files[file_of[i]], ts[i]);
            if (!t) {
                char kb[96];
                rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s' is mapped to %s but that file does not hold it",
                                ipath, shown(ts[i], kb, sizeof kb), s->files[file_of[i]].path);
                break;
            }
            s->entries[i].name = t->name;
            s->entries[i].file = file_of[i];
            s->entries[i].t = t;
        }
        free(file_of);
        zt_st_index_free(n, ts, ss);
        if (rc) goto fail;
        s->n_entries = n;
    } else if (stat(single, &st) == 0) {
        free(ipath);
        s->files = calloc(1, sizeof *s->files);
        if (!s->files) {
            free(single);
            rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", dir);
            goto fail;
        }
        rc = zt_st_open(single, &s->files[0], e);
        free(single);
        if (rc) goto fail;
        s->n_files = 1;
        int n = s->files[0].n_tensors;
        s->entries = calloc((size_t)(n ? n : 1), sizeof *s->entries);
        if (!s->entries) {
            rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", dir);
            goto fail;
        }
        for (int i = 0; i < n; i++) {
            s->entries[i].name = s->files[0].tensors[i].name;
            s->entries[i].file = 0;
            s->entries[i].t = &s->files[0].tensors[i];
        }
        s->n_entries = n;
    } else {
        rc = zt_err_set(e, ZT_ERR_MISSING, "%s: neither %s.safetensors.index.json nor %s.safetensors is there", dir,
                        base, base);
        free(ipath);
        free(single);
        goto fail;
    }
    qsort(s->entries, (size_t)s->n_entries, sizeof *s->entries, cmp_entry);
    return ZT_OK;
fail:
    zt_st_set_close(s);
    return rc;
}

void zt_st_set_close(zt_st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n_files; i++) zt_st_close(&s->files[i]);
    free(s->files);
    free(s->entries);
    free(s->dir);
    free(s->index_path);
    memset(s, 0, sizeof *s);
}

const zt_st_entry *zt_st_set_find(const zt_st_set *s, const char *name) {
    zt_st_entry key;
    key.name = name;
    return s->n_entries ? bsearch(&key, s->entries, (size_t)s->n_entries, sizeof key, cmp_entry) : NULL;
}

/* ---- writer ------------------------------------------------------------- */

#define WBUF (16u << 20)

struct zt_st_writer {
    int fd;
    char *path;
    const zt_st_wtensor *ts;
    int n;
    int *order;        /* sorted by name */
    uint64_t *bytes;   /* per tensor (caller's index) */
    int cur;           /* position in order */
    uint64_t left;     /* bytes still expected for order[cur] */
    uint8_t *buf;
    size_t used;
    uint64_t data_bytes;
};

static const zt_st_wtensor *g_sort_ts; /* qsort context (writer open is not re-entrant across threads) */
static int cmp_order(const void *a, const void *b) {
    return strcmp(g_sort_ts[*(const int *)a].name, g_sort_ts[*(const int *)b].name);
}

static int write_all(int fd, const void *p, size_t n, const char *path, zt_err *e) {
    const uint8_t *s = p;
    while (n) {
        ssize_t r = write(fd, s, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return err_errno(e, errno, path, "write");
        }
        s += r;
        n -= (size_t)r;
    }
    return ZT_OK;
}

static void skip_empty(zt_st_writer *w) {
    while (w->cur < w->n && w->left == 0) {
        w->cur++;
        if (w->cur < w->n) w->left = w->bytes[w->order[w->cur]];
    }
}

int zt_st_writer_open(const char *path, const zt_st_wtensor *ts, int n, zt_st_writer **out, zt_err *e) {
    *out = NULL;
    zt_st_writer *w = calloc(1, sizeof *w);
    if (!w) return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
    w->fd = -1;
    w->ts = ts;
    w->n = n;
    w->path = strdup(path);
    w->order = malloc((size_t)(n ? n : 1) * sizeof *w->order);
    w->bytes = malloc((size_t)(n ? n : 1) * sizeof *w->bytes);
    w->buf = malloc(WBUF);
    json_t *root = json_object(), *md = json_object();
    char *hdr = NULL;
    int rc = ZT_OK;
    if (!w->path || !w->order || !w->bytes || !w->buf || !root || !md) {
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < n; i++) w->order[i] = i;
    g_sort_ts = ts;
    qsort(w->order, (size_t)n, sizeof *w->order, cmp_order);
    json_object_set_new(md, "format", json_string("pt"));
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        const zt_st_wtensor *t = &ts[w->order[k]];
        if (k && !strcmp(t->name, ts[w->order[k - 1]].name)) {
            rc = zt_err_set(e, ZT_ERR_ARG, "%s: tensor '%s' given twice", path, t->name);
            goto fail;
        }
        if (!strcmp(t->name, "__metadata__") || t->ndim < 0 || t->ndim > ZT_ST_MAX_DIMS ||
            (unsigned)t->dtype >= ZT_DT_COUNT) {
            rc = zt_err_set(e, ZT_ERR_ARG, "%s: tensor '%s': bad name, rank or dtype", path, t->name);
            goto fail;
        }
        uint64_t cnt = 1;
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) {
            cnt *= (uint64_t)t->shape[d];
            json_array_append_new(shape, json_integer(t->shape[d]));
        }
        uint64_t b = cnt * zt_dtype_size(t->dtype);
        w->bytes[w->order[k]] = b;
        json_t *ent = json_object(), *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + b)));
        json_object_set_new(ent, "dtype", json_string(zt_dtype_name(t->dtype)));
        json_object_set_new(ent, "shape", shape);
        json_object_set_new(ent, "data_offsets", offs);
        if (json_object_set_new(root, t->name, ent)) {
            rc = zt_err_set(e, ZT_ERR_ARG, "%s: tensor name '%s' is not valid UTF-8", path, t->name);
            goto fail;
        }
        off += b;
    }
    w->data_bytes = off;
    /* "__metadata__" first, then the tensors in sorted order */
    char *body = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    char *mds = json_dumps(md, JSON_COMPACT);
    if (!body || !mds) {
        free(body);
        free(mds);
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for the header", path);
        goto fail;
    }
    size_t bl = strlen(body), ml = strlen(mds);
    size_t raw = 1 + strlen("\"__metadata__\":") + ml + (n ? 1 : 0) + (bl - 2) + 1; /* {md,body} */
    size_t padded = (size_t)ZT_ALIGN_UP(8 + raw, 8) - 8;
    hdr = malloc(8 + padded);
    if (!hdr) {
        free(body);
        free(mds);
        rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory for the header", path);
        goto fail;
    }
    for (int i = 0; i < 8; i++) hdr[i] = (char)(((uint64_t)padded >> (8 * i)) & 0xff);
    size_t at = 8;
    at += (size_t)sprintf(hdr + at, "{\"__metadata__\":%s%s", mds, n ? "," : "");
    memcpy(hdr + at, body + 1, bl - 2);
    at += bl - 2;
    hdr[at++] = '}';
    memset(hdr + at, ' ', 8 + padded - at);
    free(body);
    free(mds);
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        rc = err_errno(e, errno, path, "cannot create");
        goto fail;
    }
    rc = write_all(w->fd, hdr, 8 + padded, path, e);
    if (rc) goto fail;
    free(hdr);
    json_decref(root);
    json_decref(md);
    w->cur = 0;
    w->left = n ? w->bytes[w->order[0]] : 0;
    skip_empty(w);
    *out = w;
    return ZT_OK;
fail:
    free(hdr);
    json_decref(root);
    json_decref(md);
    zt_st_writer_abort(w);
    return rc;
}

int zt_st_writer_next(const zt_st_writer *w) { return w->cur < w->n ? w->order[w->cur] : -1; }
uint64_t zt_st_writer_data_bytes(const zt_st_writer *w) { return w->data_bytes; }

int zt_st_writer_write(zt_st_writer *w, const void *data, size_t n, zt_err *e) {
    const uint8_t *s = data;
    while (n) {
        if (w->cur >= w->n) return zt_err_set(e, ZT_ERR_INTERNAL, "%s: more bytes than the tensors hold", w->path);
        size_t take = n;
        if (take > w->left) take = (size_t)w->left;
        if (take > WBUF - w->used) take = WBUF - w->used;
        memcpy(w->buf + w->used, s, take);
        w->used += take;
        w->left -= take;
        s += take;
        n -= take;
        if (w->used == WBUF) {
            int rc = write_all(w->fd, w->buf, w->used, w->path, e);
            if (rc) return rc;
            w->used = 0;
        }
        skip_empty(w);
    }
    return ZT_OK;
}

int zt_st_writer_close(zt_st_writer *w, zt_err *e) {
    if (!w) return ZT_OK;
    int rc = ZT_OK;
    if (w->cur < w->n)
        rc = zt_err_set(e, ZT_ERR_INTERNAL, "%s: closed before tensor '%s' was written", w->path,
                        w->ts[w->order[w->cur]].name);
    if (!rc && w->used) rc = write_all(w->fd, w->buf, w->used, w->path, e);
    if (!rc && close(w->fd)) rc = err_errno(e, errno, w->path, "close");
    if (!rc) w->fd = -1;
    if (rc) {
        zt_st_writer_abort(w);
        return rc;
    }
    free(w->path);
    free(w->order);
    free(w->bytes);
    free(w->buf);
    free(w);
    return ZT_OK;
}

void zt_st_writer_abort(zt_st_writer *w) {
    if (!w) return;
    if (w->fd >= 0) {
        close(w->fd);
        if (w->path) unlink(w->path);
    }
    free(w->path);
    free(w->order);
    free(w->bytes);
    free(w->buf);
    free(w);
}
