/* tests/test_storage_util.h — helpers shared by the storage tests. */
#ifndef ZT_TEST_STORAGE_UTIL_H
#define ZT_TEST_STORAGE_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fresh scratch folder build/test-tmp/NAME under $ZT_ROOT (zt_test_tmpdir
 * without its -Wformat-truncation trouble at -O2). Exits on failure. */
static inline void st_tmpdir(const char *name, char *out, size_t n) {
    const char *root = getenv("ZT_ROOT");
    if ((size_t)snprintf(out, n, "%s/build/test-tmp/%s", root ? root : ".", name) >= n) exit(2);
    size_t cl = 2 * n + 64;
    char *cmd = malloc(cl);
    snprintf(cmd, cl, "rm -rf '%s' && mkdir -p '%s'", out, out);
    if (!cmd || system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", out);
        exit(1);
    }
    free(cmd);
}

/* Run a shell command built with printf-style arguments; returns its status. */
static inline int st_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int st_sh(const char *fmt, ...) {
    char cmd[32768];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd) return -1;
    return system(cmd);
}

static inline const char *st_bin(void) { return getenv("ZT_BIN") ? getenv("ZT_BIN") : "bin"; }

/* Round to nearest even by picking the nearer bf16 neighbour in double. */
static inline uint16_t ref_rne(uint32_t bits) {
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);
    uint32_t lo = bits & 0xffff0000u, hi = lo + 0x10000u;
    float f, a, b;
    memcpy(&f, &bits, 4);
    memcpy(&a, &lo, 4);
    memcpy(&b, &hi, 4);
    double bd = (hi & 0x7fffffffu) == 0x7f800000u ? copysign(ldexp(1.0, 128), (double)f) : (double)b; /* 2^128 */
    double da = fabs((double)f - (double)a), db = fabs(bd - (double)f);
    if (lo == bits || da < db) return (uint16_t)(lo >> 16);
    if (db < da) return (uint16_t)(hi >> 16);
    return ((lo >> 16) & 1) ? (uint16_t)(hi >> 16) : (uint16_t)(lo >> 16);
}

#endif
