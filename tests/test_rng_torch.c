/* tests/test_rng_torch.c — api/rng_torch.h against torch itself:
 * tests/data/rng_torch_cpu.txt (tools/ref/make_rng_ref.py, written by
 * torch.randn with torch.Generator("cpu").manual_seed) holds every value of
 * small counts (the n < 16 path, the re-drawn tail window, small latents)
 * and the md5 of the latents of 256x256 ... 2048x2048 images, square and
 * not, for seeds 0, 1, 42, 2^32, 2^63-1 and 2^64-1. Bitwise equality. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/rng_torch.h"
#include "common/zt_dtype.h"
#include "storage/md5.h"
#include "tests/zt_test.h"

int main(void) {
    /* MT19937's published check: the 10000th output for the default seed 5489 */
    zt_mt19937 g;
    zt_mt19937_seed(&g, 5489);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++) v = zt_mt19937_next(&g);
    ZT_CHECK(v == 4123659995u, "mt19937(5489) output 10000: %u", v);

    const char *path = zt_test_path("tests/data/rng_torch_cpu.txt");
    FILE *fp = fopen(path, "r");
    ZT_CHECK(fp != NULL, "%s: cannot open", path);
    if (!fp) return zt_test_finish("test_rng_torch");
    static char line[1 << 16];
    int n_full = 0, n_hash = 0;
    float *buf = NULL;
    size_t cap = 0;
    while (fgets(line, sizeof line, fp)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        uint64_t seed;
        int off = 0;
        if (line[0] == 'v') {
            size_t n;
            ZT_CHECK(sscanf(line, "v %" SCNu64 " %zu %n", &seed, &n, &off) == 2, "bad line: %.60s", line);
            if (n > cap) buf = realloc(buf, (cap = n) * sizeof *buf);
            zt_rng_torch_randn(seed, buf, n);
            const char *p = line + off;
            size_t bad = 0, first = n;
            for (size_t i = 0; i < n; i++) {
                unsigned x;
                int used;
                if (sscanf(p, "%x%n", &x, &used) != 1) {
                    ZT_CHECK(0, "seed %" PRIu64 " n %zu: value %zu missing in the file", seed, n, i);
                    break;
                }
                p += used;
                if (zt_f32_bits(buf[i]) != x && bad++ == 0) first = i;
            }
            ZT_CHECK(bad == 0, "seed %" PRIu64 " n %zu: %zu values differ from torch, first at %zu", seed, n, bad,
                     first);
            n_full++;
        } else if (line[0] == 'h') {
            int c, h, w;
            char want[40];
            ZT_CHECK(sscanf(line, "h %" SCNu64 " %d %d %d %39s", &seed, &c, &h, &w, want) == 5, "bad line: %.60s", line);
            size_t n = (size_t)c * h * w;
            if (n > cap) buf = realloc(buf, (cap = n) * sizeof *buf);
            zt_rng_torch_randn(seed, buf, n);
            zt_md5 m;
            uint8_t dg[16];
            char hex[33];
            zt_md5_init(&m);
            zt_md5_update(&m, buf, n * sizeof *buf); /* little-endian host */
            zt_md5_final(&m, dg);
            zt_md5_hex(dg, hex);
            ZT_CHECK(!strcmp(hex, want), "seed %" PRIu64 " latent [%d, %d, %d]: md5 %s, torch %s", seed, c, h, w, hex,
                     want);
            n_hash++;
        }
    }
    fclose(fp);
    free(buf);
    ZT_CHECK(n_full >= 60 && n_hash >= 70, "the file holds %d full and %d hashed cases", n_full, n_hash);
    printf("%d full cases, %d hashed latents\n", n_full, n_hash);
    return zt_test_finish("test_rng_torch");
}
