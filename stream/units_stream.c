/* stream/units_stream.c — see units_stream.h. */
#include "stream/units_stream.h"

#include <stdlib.h>

typedef struct {
    zt_units base;
    zt_stream *st;
} units_stream;

static const void *us_acquire(zt_units *u, int unit) {
    units_stream *s = (units_stream *)u;
    if (zt_stream_error(s->st, &u->err)) return NULL;
    return zt_stream_acquire(s->st, unit);
}

static void us_release(zt_units *u, int unit) { zt_stream_release(((units_stream *)u)->st, unit); }

static void us_destroy(zt_units *u) {
    units_stream *s = (units_stream *)u;
    zt_stream_destroy(s->st);
    free(s);
}

static int us_begin(zt_units *u, const int *order, int n, int repeat, zt_err *e) {
    return zt_stream_begin_phase(((units_stream *)u)->st, order, n, repeat, e);
}

static int us_end(zt_units *u, zt_err *e) { return zt_stream_end_phase(((units_stream *)u)->st, e); }

static const zt_units_vtable k_vt = {us_acquire, us_release, us_destroy, us_begin, us_end};

int zt_units_stream_open(zt_ops *ops, zt_source *src, zt_source *store, const zt_plan *plan,
                         const zt_stream_options *opt, zt_units **out, zt_stream **st_out, zt_err *e) {
    units_stream *s = calloc(1, sizeof *s);
    if (!s) return zt_err_set(e, ZT_ERR_NOMEM, "stream provider: out of host memory");
    const zt_catalog *cat = zt_source_catalog(store ? store : src);
    int rc = zt_stream_create(ops, cat, src, store, plan, opt, &s->st, e);
    if (rc) {
        free(s);
        return rc;
    }
    s->base.vt = &k_vt;
    s->base.cat = cat;
    *out = &s->base;
    if (st_out) *st_out = s->st;
    return ZT_OK;
}
