/* tests/zt_test.h — the few helpers every test program uses: checks that
 * count failures without stopping, a deterministic RNG, skip (exit 77), and
 * paths relative to the repository root ($ZT_ROOT, set by tests/run). */
#ifndef ZT_TEST_H
#define ZT_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int zt_test_failures;
static int zt_test_checks;

#define ZT_CHECK(cond, ...)                                                   \
    do {                                                                      \
        zt_test_checks++;                                                     \
        if (!(cond)) {                                                        \
            zt_test_failures++;                                               \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

/* Print the summary and return the exit code for main(). */
static inline int zt_test_finish(const char *name) {
    if (zt_test_checks == 0) {
        fprintf(stderr, "%s: no checks ran\n", name);
        return 1;
    }
    printf("%s: %d checks, %d failed\n", name, zt_test_checks, zt_test_failures);
    return zt_test_failures ? 1 : 0;
}

static inline void zt_test_skip(const char *why) {
    printf("skipped: %s\n", why);
    exit(77);
}

/* xorshift64* — deterministic across platforms. */
typedef struct { uint64_t s; } zt_rng;
static inline uint64_t zt_rng_u64(zt_rng *r) {
    r->s ^= r->s >> 12; r->s ^= r->s << 25; r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}
static inline double zt_rng_uniform(zt_rng *r) { return (double)(zt_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }
static inline double zt_rng_normal(zt_rng *r) {
    double u1 = zt_rng_uniform(r), u2 = zt_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Path under the repository root. */
static inline const char *zt_test_path(const char *rel) {
    static char buf[4096];
    const char *root = getenv("ZT_ROOT");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

/* A fresh scratch directory under build/test-tmp/NAME (removed first). */
static inline const char *zt_test_tmpdir(const char *name) {
    static char buf[4096];
    const char *root = getenv("ZT_ROOT");
    snprintf(buf, sizeof buf, "%s/build/test-tmp/%s", root ? root : ".", name);
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) { fprintf(stderr, "cannot create %s\n", buf); exit(1); }
    return buf;
}

/* Relative L2 error ||a - b|| / ||b|| in double. */
static inline double zt_rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}

/* The whole file (malloc'd, *n bytes), or NULL when it cannot be read. */
static inline uint8_t *zt_test_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) *n = (size_t)sz;
    return b;
}

/* $ZT_BIN/mkmodel ARGS -q -o 'OUT' (bin/ without ZT_BIN): 0 when it succeeded, else a failed check
 * naming the command. */
static inline int zt_test_mkmodel(const char *args, const char *out) {
    const char *bin = getenv("ZT_BIN");
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "'%.2000s/mkmodel' %.2000s -q -o '%.4000s' >/dev/null", bin ? bin : "bin", args, out);
    int rc = system(cmd);
    ZT_CHECK(rc == 0, "mkmodel: %s", cmd);
    return rc;
}

#endif
