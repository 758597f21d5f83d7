/* models/bind.h — resolve units and tensor offsets of the catalog once, at
 * model init, with the shape each model expects (so a wrong checkpoint fails
 * with a message instead of reading garbage). Internal to models/. */
#ifndef ZT_MODELS_BIND_H
#define ZT_MODELS_BIND_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/zt_common.h"
#include "storage/catalog.h"

static inline int zt_bind_unit(const zt_catalog *cat, int *unit, zt_err *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int zt_bind_unit(const zt_catalog *cat, int *unit, zt_err *e, const char *fmt, ...) {
    char name[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    *unit = zt_catalog_unit_index(cat, name);
    if (*unit < 0) return zt_err_set(e, ZT_ERR_MISSING, "catalog: no unit '%s'", name);
    return ZT_OK;
}

/* Offset of tensor `key` of `unit`, checking it is BF16 with the given shape
 * (ndim 1..4 dims; pass the dims in image order). */
static inline int zt_bind_tensor(const zt_catalog *cat, int unit, const char *key, uint64_t *off, zt_err *e, int ndim,
                                 int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    const zt_unit_desc *u = &cat->units[unit];
    const zt_tensor_desc *t = zt_catalog_tensor(cat, u, key);
    if (!t) return zt_err_set(e, ZT_ERR_MISSING, "%s: no tensor '%s'", u->name, key);
    const int64_t want[4] = {d0, d1, d2, d3};
    int ok = t->ndim == ndim && t->dtype == ZT_DT_BF16;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char got[96] = "", exp[96] = "";
        for (int i = 0; i < t->ndim && i < ZT_MAX_DIMS; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        for (int i = 0; i < ndim; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%lld", i ? ", " : "", (long long)want[i]);
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: tensor '%s' is %s [%s], the model expects BF16 [%s]", u->name, key,
                          zt_dtype_name(t->dtype), got, exp);
    }
    *off = t->offset;
    return ZT_OK;
}

#define ZT_BIND1(cat, unit, key, off, e, a) zt_bind_tensor(cat, unit, key, off, e, 1, a, 0, 0, 0)
#define ZT_BIND2(cat, unit, key, off, e, a, b) zt_bind_tensor(cat, unit, key, off, e, 2, a, b, 0, 0)
#define ZT_BIND4(cat, unit, key, off, e, a, b, c, d) zt_bind_tensor(cat, unit, key, off, e, 4, a, b, c, d)

/* PREFIX.weight of the given shape (as zt_bind_tensor) and PREFIX.bias [d0]: a layer's weight and
 * bias. ZT_BIND_NORM: [c] and [c]; ZT_BIND_LINEAR: [n, k] and [n]; ZT_BIND_CONV: [cout, k, k, cin]
 * and [cout]. */
static inline int zt_bind_wb(const zt_catalog *cat, int unit, const char *prefix, uint64_t *w, uint64_t *b, zt_err *e,
                             int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    char kw[192], kb[192];
    snprintf(kw, sizeof kw, "%s.weight", prefix);
    snprintf(kb, sizeof kb, "%s.bias", prefix);
    int rc = zt_bind_tensor(cat, unit, kw, w, e, ndim, d0, d1, d2, d3);
    if (!rc) rc = zt_bind_tensor(cat, unit, kb, b, e, 1, d0, 0, 0, 0);
    return rc;
}

#define ZT_BIND_NORM(cat, unit, prefix, w, b, e, c) zt_bind_wb(cat, unit, prefix, w, b, e, 1, c, 0, 0, 0)
#define ZT_BIND_LINEAR(cat, unit, prefix, w, b, e, n, k) zt_bind_wb(cat, unit, prefix, w, b, e, 2, n, k, 0, 0)
#define ZT_BIND_CONV(cat, unit, prefix, w, b, e, cout, k, cin) zt_bind_wb(cat, unit, prefix, w, b, e, 4, cout, k, k, cin)

/* Check that `next` follows `first` with no gap (a fused group of the byte
 * image: e.g. to_q | to_k | to_v form one GEMM weight). */
static inline int zt_bind_follows(const zt_catalog *cat, int unit, const char *first, const char *next, zt_err *e) {
    const zt_unit_desc *u = &cat->units[unit];
    const zt_tensor_desc *a = zt_catalog_tensor(cat, u, first), *b = zt_catalog_tensor(cat, u, next);
    if (!a || !b) return zt_err_set(e, ZT_ERR_MISSING, "%s: no tensor '%s'", u->name, a ? next : first);
    if (a->offset + a->nbytes != b->offset)
        return zt_err_set(e, ZT_ERR_FORMAT, "%s: '%s' does not directly follow '%s' (fused group broken)", u->name, next,
                          first);
    return ZT_OK;
}

#endif
