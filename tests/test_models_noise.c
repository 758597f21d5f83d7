/* tests/test_models_noise.c — the seeded noise generator of api/noise.h:
 * first values against an independent Python evaluation of the documented
 * algorithm, determinism and index-only dependence, plausible statistics,
 * and the --noise file reader (raw and safetensors, bad shapes rejected). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/noise.h"
#include "api/stfile.h"
#include "common/zt_dtype.h"
#include "tests/zt_test.h"

int main(void) {
    /* Python (math.log/cos/sin, struct '<f' rounding) on the algorithm of noise.h. */
    static const struct { uint64_t seed; uint32_t v[6]; } ref[] = {
        {0, {0xbe8ec8b2, 0xbf618d74, 0xbf43a41c, 0xbf92b9aa, 0x3ed67d6c, 0x3f0c7f1a}},
        {42, {0x3fb3fc8f, 0xbecd8176, 0x3f8c20df, 0x3efc7ab6, 0x3f4e1c6a, 0x3eba2859}},
        {UINT64_MAX, {0xbda79c04, 0xbfb51eb4, 0x3f850ff8, 0xbf037daa, 0x3f280732, 0x3f740b62}},
    };
    for (size_t r = 0; r < sizeof ref / sizeof ref[0]; r++) {
        float v[6];
        zt_noise_fill(ref[r].seed, v, 6);
        for (int i = 0; i < 6; i++)
            ZT_CHECK(zt_f32_bits(v[i]) == ref[r].v[i], "seed %llu value %d: %08x, expected %08x",
                     (unsigned long long)ref[r].seed, i, zt_f32_bits(v[i]), ref[r].v[i]);
    }

    enum { N = 1 << 20 };
    static float a[N], b[N];
    zt_noise_fill(7, a, N);
    zt_noise_fill(7, b, 5); /* shorter (odd) run: same prefix */
    ZT_CHECK(memcmp(a, b, 5 * sizeof(float)) == 0, "values depend on the requested count");
    zt_noise_fill(8, b, N);
    size_t same = 0;
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < N; i++) {
        same += a[i] == b[i];
        s1 += a[i];
        s2 += (double)a[i] * a[i];
    }
    double mean = s1 / N, var = s2 / N - mean * mean;
    ZT_CHECK(same < 16, "seeds 7 and 8 share %zu values", same);
    ZT_CHECK(fabs(mean) < 0.005 && fabs(var - 1.0) < 0.01, "mean %g var %g", mean, var);

    /* --noise readers */
    /* (not zt_test_tmpdir: its snprintf trips -Werror=format-truncation at -O2) */
    char dir[1024], raw[1100], st[1100];
    const char *root = getenv("ZT_ROOT");
    snprintf(dir, sizeof dir, "%s/build/test-tmp", root ? root : ".");
    ZT_CHECK(system("mkdir -p \"${ZT_ROOT:-.}/build/test-tmp\"") == 0, "mkdir %s", dir);
    snprintf(raw, sizeof raw, "%s/test_models_noise.f32", dir);
    snprintf(st, sizeof st, "%s/test_models_noise.safetensors", dir);
    FILE *fp = fopen(raw, "wb");
    ZT_CHECK(fp && fwrite(a, 4, 16 * 4 * 6, fp) == 16 * 4 * 6, "write raw");
    if (fp) fclose(fp);
    static float got[16 * 4 * 6];
    zt_err e = {0};
    ZT_CHECK(zt_noise_read(raw, 16, 4, 6, got, &e) == ZT_OK, "raw: %s", e.msg);
    ZT_CHECK(memcmp(got, a, sizeof got) == 0, "raw noise differs");
    ZT_CHECK(zt_noise_read(raw, 16, 4, 5, got, &e) == ZT_ERR_FORMAT, "raw of the wrong size accepted");

    zt_stf f = {0};
    int64_t sh[4] = {1, 16, 4, 6};
    ZT_CHECK(zt_stf_add(&f, "noise", "F32", 4, sh, a + 100, sizeof got, &e) == ZT_OK, "add: %s", e.msg);
    ZT_CHECK(zt_stf_save(&f, st, &e) == ZT_OK, "save: %s", e.msg);
    zt_stf_free(&f);
    memset(got, 0, sizeof got);
    ZT_CHECK(zt_noise_read(st, 16, 4, 6, got, &e) == ZT_OK, "safetensors: %s", e.msg);
    ZT_CHECK(memcmp(got, a + 100, sizeof got) == 0, "safetensors noise differs");
    ZT_CHECK(zt_noise_read(st, 16, 6, 4, got, &e) == ZT_ERR_FORMAT, "transposed shape accepted");
    ZT_CHECK(strstr(e.msg, "[16, 6, 4]") != NULL, "message lacks the expected shape: %s", e.msg);
    ZT_CHECK(zt_noise_read("/nonexistent/noise", 16, 4, 6, got, &e) == ZT_ERR_MISSING, "missing file");
    return zt_test_finish("test_models_noise");
}
