/* tests/test_generate_faults.c — disk-tier faults in a real generate: the
 * tiny model packed into a store, `generate --vram MIN --pinned 0 --store`
 * (every per-step unit read from the store on every evaluation) with a fault
 * in the extent of the last per-step unit (a transformer block):
 *   eio   every read of it fails with EIO          -> exit 1, one line, no PNG
 *   eof   every read of it finds the end of file   -> exit 1, one line, no PNG
 *   short three reads of it stop short             -> exit 0, the same PNG
 *         (the reader re-reads the remainder)
 *   flip  one byte of one of its chunks flipped     -> exit 1, one line naming
 *         in a copy of the store                      the checksum, no PNG
 * each with both read engines (io_uring, pread threads). The I/O faults are
 * injected with ZT_IO_FAULT into bin/test-zturbo (the test build: -DZT_TEST_HOOKS);
 * bin/zturbo, the product, must ignore ZT_IO_FAULT (same PNG as without).
 * The offsets come from the store's own index (zt_store API), so the test
 * follows format changes. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "storage/store.h"
#include "tests/zt_test.h"

static char g_dir[600], g_bin[600];

/* Run a shell command in g_dir with stdout to /dev/null, stderr to err.txt;
 * returns the exit code (-1 if it did not exit normally) and the stderr. */
static int run(const char *cmd, char *err, size_t cap) {
    char full[4096];
    snprintf(full, sizeof full, "cd '%s' && %s >/dev/null 2>err.txt", g_dir, cmd);
    int st = system(full);
    char p[700];
    snprintf(p, sizeof p, "%s/err.txt", g_dir);
    FILE *f = fopen(p, "rb");
    size_t n = f ? fread(err, 1, cap - 1, f) : 0;
    err[n] = 0;
    if (f) fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* 1 when no file named out.png* is in g_dir. */
static int no_output(void) {
    DIR *d = opendir(g_dir);
    struct dirent *de;
    int none = 1;
    while (d && (de = readdir(d)))
        if (!strncmp(de->d_name, "out.png", 7)) none = 0;
    if (d) closedir(d);
    return none;
}

static int same_file(const char *a, const char *b) {
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "cmp -s '%s/%s' '%s/%s'", g_dir, a, g_dir, b);
    return system(cmd) == 0;
}

static char g_common[1024];

/* A generate that must fail: exit 1, one stderr line containing `want`, no PNG. */
static void expect_fail(const char *label, const char *env, const char *bin, const char *store, const char *want) {
    char cmd[3000], err[4096];
    snprintf(cmd, sizeof cmd, "rm -f out.png* && %s '%s/%s' generate %s --store %s -o out.png", env, g_bin, bin,
             g_common, store);
    int rc = run(cmd, err, sizeof err);
    int ok = rc == 1 && lines(err) == 1 && strstr(err, want) && no_output();
    printf("%-4s %-34s exit %d: %s%s", ok ? "ok" : "FAIL", label, rc, err, lines(err) ? "" : "\n");
    ZT_CHECK(ok, "%s: exit %d (want 1), %d stderr lines (want 1 with '%s'), output %s", label, rc, lines(err), want,
             no_output() ? "none" : "LEFT BEHIND");
}

/* A generate that must succeed with the reference PNG. */
static void expect_same(const char *label, const char *env, const char *bin, const char *store) {
    char cmd[3000], err[4096];
    snprintf(cmd, sizeof cmd, "rm -f out.png* && %s '%s/%s' generate %s --store %s -o out.png", env, g_bin, bin,
             g_common, store);
    int rc = run(cmd, err, sizeof err);
    int ok = rc == 0 && same_file("out.png", "ref.png");
    printf("%-4s %-34s exit %d%s\n", ok ? "ok" : "FAIL", label, rc, ok ? ", same PNG" : "");
    ZT_CHECK(ok, "%s: exit %d, PNG %s: %s", label, rc, rc ? "none" : "differs from the resident run", err);
}

int main(void) {
    const char *root = getenv("ZT_ROOT"), *bin = getenv("ZT_BIN");
    if (!root) root = ".";
    snprintf(g_bin, sizeof g_bin, "%s", bin ? bin : "bin");
    snprintf(g_dir, sizeof g_dir, "%s/build/test-tmp/generate_faults%s", root, getenv("ZT_TEST_SAN") ? "_san" : "");
    char cmd[3000], err[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_dir, g_dir);
    if (system(cmd)) return zt_test_finish("test_generate_faults");
    snprintf(cmd, sizeof cmd, "'%s/mkmodel' --config tiny --seed 6 --dtype bf16 -q -o snap && '%s/zturbo' pack snap -o s.zts -q",
             g_bin, g_bin);
    int rc = run(cmd, err, sizeof err);
    ZT_CHECK(rc == 0, "mkmodel + pack: exit %d: %s", rc, err);
    if (rc) return zt_test_finish("test_generate_faults");

    /* the minimum budget, from the plan's own message */
    const char *base = "-m snap -p 'a fox in the snow' --width 64 --height 48 --steps 3 --seed 9 --device cpu -q";
    snprintf(cmd, sizeof cmd, "'%s/zturbo' generate %s --vram 1M -o x.png", g_bin, base);
    run(cmd, err, sizeof err);
    const char *at = strstr(err, "needs at least ");
    double min_mib = at ? atof(at + 15) : 0;
    ZT_CHECK(min_mib > 0 && strstr(err, "MiB"), "no minimum budget in: %s", err);
    if (min_mib <= 0) return zt_test_finish("test_generate_faults");
    snprintf(g_common, sizeof g_common, "%s --vram %.2fM --pinned 0", base, min_mib + 0.01);

    snprintf(cmd, sizeof cmd, "'%s/zturbo' generate %s -o ref.png", g_bin, base);
    rc = run(cmd, err, sizeof err);
    ZT_CHECK(rc == 0, "resident reference: exit %d: %s", rc, err);

    /* the last per-step unit's extent and its first chunk, from the index */
    char store_path[700];
    snprintf(store_path, sizeof store_path, "%s/s.zts", g_dir);
    zt_store *s = NULL;
    zt_err e = {0};
    rc = zt_store_open(store_path, 0, &s, &e);
    ZT_CHECK(rc == ZT_OK, "open %s: %s", store_path, e.msg);
    if (rc) return zt_test_finish("test_generate_faults");
    const zt_catalog *cat = zt_store_catalog(s);
    int unit = -1;
    for (int u = 0; u < cat->n_units; u++)
        if (cat->units[u].per_step) unit = u;
    ZT_CHECK(unit >= 0, "no per-step unit in the store");
    if (unit < 0) return zt_test_finish("test_generate_faults");
    const zt_store_extent *x = zt_store_extent_of(s, unit);
    const zt_store_chunk *c0 = zt_store_chunk_of(s, unit, 0);
    const uint64_t mid = x->offset + x->stored_bytes / 2, flip_at = x->offset + c0->at + c0->stored / 2;
    printf("unit %d (%s): extent at %llu, %llu bytes; faults at %llu, flipped byte at %llu; --vram %.2fM\n", unit,
           cat->units[unit].name, (unsigned long long)x->offset, (unsigned long long)x->stored_bytes,
           (unsigned long long)mid, (unsigned long long)flip_at, min_mib + 0.01);
    zt_store_close(s);

    /* a copy of the store with one byte of that chunk flipped */
    snprintf(cmd, sizeof cmd,
             "cp s.zts flip.zts && b=$(dd if=flip.zts bs=1 skip=%llu count=1 2>/dev/null | od -An -tu1 | tr -d ' ') && "
             "printf \"$(printf '\\\\%%03o' $(( b ^ 0x5a )))\" | dd of=flip.zts bs=1 seek=%llu conv=notrunc 2>/dev/null && "
             "! cmp -s s.zts flip.zts",
             (unsigned long long)flip_at, (unsigned long long)flip_at);
    rc = run(cmd, err, sizeof err);
    ZT_CHECK(rc == 0, "flipping a byte failed: %s", err);

    char env[256];
    expect_same("no fault (test build)", "", "test-zturbo", "s.zts");
    snprintf(env, sizeof env, "ZT_IO_FAULT=eio@%llux1000000", (unsigned long long)mid);
    char eio_env[256];
    snprintf(eio_env, sizeof eio_env, "%s", env);
    expect_same("product ignores ZT_IO_FAULT", eio_env, "zturbo", "s.zts");
    const char *engines[2] = {"", " --io pread"};
    for (int en = 0; en < 2; en++) {
        char label[80], store[64], flip[64];
        const char *ename = en ? "pread" : "io_uring";
        snprintf(store, sizeof store, "s.zts%s", engines[en]);
        snprintf(flip, sizeof flip, "flip.zts%s", engines[en]);
        snprintf(env, sizeof env, "ZT_IO_FAULT=eio@%llux1000000", (unsigned long long)mid);
        snprintf(label, sizeof label, "EIO (%s)", ename);
        expect_fail(label, env, "test-zturbo", store, "Input/output error");
        snprintf(env, sizeof env, "ZT_IO_FAULT=eof@%llux1000000", (unsigned long long)mid);
        snprintf(label, sizeof label, "end of file (%s)", ename);
        expect_fail(label, env, "test-zturbo", store, "unexpected end of file");
        snprintf(env, sizeof env, "ZT_IO_FAULT=short@%llux3", (unsigned long long)mid);
        snprintf(label, sizeof label, "short reads (%s)", ename);
        expect_same(label, env, "test-zturbo", store);
        snprintf(label, sizeof label, "flipped chunk byte (%s)", ename);
        expect_fail(label, "", "zturbo", flip, "checksum");
    }
    return zt_test_finish("test_generate_faults");
}
