/* tests/test_store_util.h — shared by the store tests: synthetic unit images
 * for a catalog (bf16 ~ N(0, 0.02) weights, like a real checkpoint, so that
 * zstd behaves as on real data), and small file helpers. */
#ifndef ZT_TEST_STORE_UTIL_H
#define ZT_TEST_STORE_UTIL_H

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/zt_dtype.h"
#include "storage/catalog.h"
#include "tests/zt_test.h"

typedef struct {
    const zt_catalog *cat;
    int fail_unit; /* -1: none */
    int calls;
} synth_src;

/* zt_unit_read_fn: the image of `unit`, a pure function of (unit, catalog). */
__attribute__((unused)) static int synth_read(void *ctx, int unit, void *dst, uint64_t dst_bytes, zt_err *e) {
    synth_src *S = ctx;
    const zt_unit_desc *u = &S->cat->units[unit];
    S->calls++;
    if (unit == S->fail_unit)
        return zt_err_set(e, ZT_ERR_IO, "synthetic/model-00001.safetensors: read failed: Input/output error");
    if (dst_bytes < u->nbytes) return zt_err_set(e, ZT_ERR_ARG, "synthetic: buffer too small");
    memset(dst, 0, u->nbytes);
    zt_rng rng = {0x9e3779b97f4a7c15ull * (uint64_t)(unit + 1)};
    for (int t = u->first_tensor; t < u->first_tensor + u->n_tensors; t++) {
        const zt_tensor_desc *d = &S->cat->tensors[t];
        uint8_t *p = (uint8_t *)dst + d->offset;
        if (d->dtype == ZT_DT_BF16) {
            double mean = d->ndim == 1 ? 1.0 : 0.0; /* norm weights sit near 1 */
            for (uint64_t i = 0; i + 2 <= d->nbytes; i += 2) {
                uint16_t h = zt_f32_to_bf16((float)(mean + 0.02 * zt_rng_normal(&rng)));
                p[i] = (uint8_t)h;
                p[i + 1] = (uint8_t)(h >> 8);
            }
        } else {
            for (uint64_t i = 0; i < d->nbytes; i++) p[i] = (uint8_t)zt_rng_u64(&rng);
        }
    }
    return ZT_OK;
}

__attribute__((unused)) static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

__attribute__((unused)) static uint64_t file_size_of(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Number of entries of dir whose name contains `part`. */
__attribute__((unused)) static int count_files_with(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (strstr(de->d_name, part)) n++;
    closedir(d);
    return n;
}

__attribute__((unused)) static int write_whole(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(b, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* A fresh scratch folder build/test-tmp/NAME (zt_test_tmpdir of zt_test.h
 * trips -Werror=format-truncation at -O2 when inlined). */
__attribute__((unused)) static const char *store_test_dir(const char *name) {
    static char buf[1024];
    const char *root = getenv("ZT_ROOT");
    snprintf(buf, sizeof buf, "%.700s/build/test-tmp/%.200s", root ? root : ".", name);
    char cmd[4400];
    /* A crashed earlier run may have left a tmpfs mounted in there. */
    snprintf(cmd, sizeof cmd,
             "for d in '%s'/*/; do mountpoint -q \"$d\" 2>/dev/null && umount -l \"$d\"; done; "
             "rm -rf '%s' && mkdir -p '%s'",
             buf, buf, buf);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", buf);
        exit(1);
    }
    return buf;
}

/* The tiny preset's catalog (its config is cat->cfg) and a fresh build/test-tmp/NAME, returned;
 * exits 1 naming the cause when the catalog cannot be built. */
__attribute__((unused)) static const char *store_test_setup(const char *name, zt_catalog *cat) {
    zt_err e = {0};
    zt_model_config cfg;
    if (zt_config_preset("tiny", &cfg, &e) || zt_catalog_build(&cfg, cat, &e)) {
        fprintf(stderr, "catalog: %s\n", e.msg);
        exit(1);
    }
    return store_test_dir(name);
}

#endif
