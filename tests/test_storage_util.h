/* tests/test_storage_util.h — helpers shared by the storage tests. */
#ifndef ZT_TEST_STORAGE_UTIL_H
#define ZT_TEST_STORAGE_UTIL_H

#include <stdarg.h>
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

#endif
