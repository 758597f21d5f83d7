/* tests/test_stf_util.h — comparing a --dump with an oracle golden (both api/stfile.h files). */
#ifndef ZT_TEST_STF_UTIL_H
#define ZT_TEST_STF_UTIL_H

#include <math.h>
#include <stdlib.h>

#include "api/stfile.h"
#include "tests/zt_test.h"

/* The relative L2 error of tensor NAME of a against b; *ok = 0 (and INFINITY) when either lacks it
 * or their element counts or ranks differ. */
__attribute__((unused)) static double stf_rel(const zt_stf *a, const zt_stf *b, const char *name, int *ok) {
    const zt_stf_tensor *x = zt_stf_find(a, name), *y = zt_stf_find(b, name);
    *ok = x && y && x->ndim == y->ndim && zt_stf_numel(x) == zt_stf_numel(y);
    if (!*ok) return INFINITY;
    float *p = zt_stf_to_f32(x), *q = zt_stf_to_f32(y);
    double r = zt_rel_l2(p, q, (size_t)zt_stf_numel(y));
    free(p);
    free(q);
    return r;
}

#endif
