/* stream/resident.c — every unit resident in one backend allocation. */
#include "stream/resident.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    zt_units base;          /* first: the vtable user's view */
    zt_ops *ops;
    void *mem;              /* one backend allocation */
    uint64_t bytes;
    uint64_t *offset;       /* [n_units] offset in mem, UINT64_MAX if not loaded */
    int n_units;
} resident;

static const void *resident_acquire(zt_units *u, int unit) {
    resident *r = (resident *)u;
    if (unit < 0 || unit >= r->n_units) {
        zt_err_set(&u->err, ZT_ERR_INTERNAL, "unit index %d out of range (%d units)", unit, r->n_units);
        return NULL;
    }
    if (r->offset[unit] == UINT64_MAX) {
        zt_err_set(&u->err, ZT_ERR_INTERNAL, "%s: unit is not resident (component not loaded or host-only)",
                   u->cat->units[unit].name);
        return NULL;
    }
    return (const char *)r->mem + r->offset[unit];
}

static void resident_release(zt_units *u, int unit) {
    (void)u;
    (void)unit;
}

static void resident_destroy(zt_units *u) {
    resident *r = (resident *)u;
    zt_mem_free(r->ops, r->mem);
    free(r->offset);
    free(r);
}

static const zt_units_vtable k_resident_vt = {resident_acquire, resident_release, resident_destroy, NULL, NULL};

uint64_t zt_resident_bytes(const zt_units *u) { return ((const resident *)u)->bytes; }

int zt_resident_reload(zt_units *u, zt_source *src, int unit, zt_err *e) {
    resident *r = (resident *)u;
    if (unit < 0 || unit >= r->n_units || r->offset[unit] == UINT64_MAX)
        return zt_err_set(e, ZT_ERR_ARG, "resident weights: unit %d is not loaded", unit);
    const uint64_t n = u->cat->units[unit].nbytes;
    char *dst = (char *)r->mem + r->offset[unit];
    zt_ops_sync(r->ops);
    if (zt_ops_backend(r->ops) == ZT_BACKEND_CPU) return zt_source_read_unit(src, unit, dst, n, e);
    void *staging = malloc(n); /* between images, not in the step loop */
    if (!staging) return zt_err_set(e, ZT_ERR_NOMEM, "resident weights: no host memory to reload %s", u->cat->units[unit].name);
    int rc = zt_source_read_unit(src, unit, staging, n, e);
    if (!rc) {
        zt_mem_upload(r->ops, dst, staging, n);
        zt_ops_sync(r->ops);
    }
    free(staging);
    return rc;
}

int zt_resident_open(zt_ops *ops, zt_source *src, unsigned comp_mask, zt_units **out, zt_err *e) {
    const zt_catalog *cat = zt_source_catalog(src);
    resident *r = calloc(1, sizeof *r);
    uint64_t *offset = calloc((size_t)cat->n_units + 1, sizeof *offset);
    if (!r || !offset) {
        free(r);
        free(offset);
        return zt_err_set(e, ZT_ERR_NOMEM, "resident weights: out of host memory");
    }
    r->base.vt = &k_resident_vt;
    r->base.cat = cat;
    r->ops = ops;
    r->offset = offset;
    r->n_units = cat->n_units;

    uint64_t total = 0, largest = 0;
    for (int i = 0; i < cat->n_units; i++) {
        const zt_unit_desc *ud = &cat->units[i];
        if (ud->host_only || !(comp_mask & (1u << ud->comp))) {
            offset[i] = UINT64_MAX;
            continue;
        }
        offset[i] = total;
        total = ZT_ALIGN_UP(total + ud->nbytes, 256);
        if (ud->nbytes > largest) largest = ud->nbytes;
    }
    r->bytes = total;
    r->mem = zt_mem_alloc(ops, total ? total : 256);
    if (!r->mem) {
        char b[32];
        free(offset);
        free(r);
        return zt_err_set(e, ZT_ERR_NOMEM, "resident weights: cannot allocate %s of %s memory",
                          zt_fmt_bytes(total, b, sizeof b), zt_ops_backend(ops) == ZT_BACKEND_CUDA ? "device" : "host");
    }

    /* CPU backend: the allocation is host memory, read in place. */
    int direct = zt_ops_backend(ops) == ZT_BACKEND_CPU;
    void *staging = NULL;
    if (!direct && largest) {
        staging = malloc(largest);
        if (!staging) {
            char b[32];
            resident_destroy(&r->base);
            return zt_err_set(e, ZT_ERR_NOMEM, "resident weights: cannot allocate a %s staging buffer",
                              zt_fmt_bytes(largest, b, sizeof b));
        }
    }
    for (int i = 0; i < cat->n_units; i++) {
        if (offset[i] == UINT64_MAX) continue;
        const zt_unit_desc *ud = &cat->units[i];
        char *dst = direct ? (char *)r->mem + offset[i] : staging;
        int rc = zt_source_read_unit(src, i, dst, ud->nbytes, e);
        if (rc) {
            zt_err_prefix(e, "%s", ud->name);
            free(staging);
            resident_destroy(&r->base);
            return rc;
        }
        if (!direct) {
            zt_mem_upload(ops, (char *)r->mem + offset[i], staging, ud->nbytes);
            zt_ops_sync(ops); /* the staging buffer is reused by the next unit */
        }
    }
    free(staging);
    *out = &r->base;
    return ZT_OK;
}
