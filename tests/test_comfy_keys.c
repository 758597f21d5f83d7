/* tests/test_comfy_keys.c — the ComfyUI name mapping (zt_comfy_map_key,
 * storage/comfy.h: the one mapping the reader and mkmodel --layout comfy
 * use) against key names from code that is not ours: ComfyUI's and
 * diffusers' Z-Image / ldm-VAE conversions, restated as patterns in
 * tests/data/comfy_keys/zimage.tsv (sources in its header). For the tiny and
 * the full config, every DiT and VAE tensor of the catalog must match a row,
 * and its mapped file key, fused-qkv rows and 1x1-conv flag must be the
 * row's; every row must match some tensor (no stale data), and every
 * "detect" key must be produced. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/catalog.h"
#include "storage/comfy.h"
#include "tests/zt_test.h"

typedef struct {
    char role[16], cat[256], file[256], part[8];
    int line, used;
    regex_t re;
    char vars[8][4]; /* placeholder name of each capture group */
    int nvars;
} row;

static row g_rows[256];
static int g_n;

/* Catalog pattern -> anchored POSIX ERE with one group per placeholder. */
static int compile(row *r) {
    char re[1024] = "^";
    size_t n = 1;
    for (const char *p = r->cat; *p && n < sizeof re - 64;) {
        if (*p == '{') {
            const char *e = strchr(p, '}');
            if (!e || e - p - 1 >= 4 || r->nvars == 8) return -1;
            char name[4] = {0};
            memcpy(name, p + 1, (size_t)(e - p - 1));
            const char *g = !strcmp(name, "i") || !strcmp(name, "j") ? "([0-9]+)"
                            : !strcmp(name, "w")                     ? "(weight|bias)"
                            : !strcmp(name, "s")                     ? "(encoder|decoder)"
                            : !strcmp(name, "r")                     ? "(.+)"
                            : !strcmp(name, "B") ? "(layers\\.[0-9]+|noise_refiner\\.[0-9]+|context_refiner\\.[0-9]+)"
                                                 : NULL;
            if (!g) return -1;
            snprintf(r->vars[r->nvars++], 4, "%s", name);
            n += (size_t)snprintf(re + n, sizeof re - n, "%s", g);
            p = e + 1;
        } else {
            if (strchr(".()[]*+?|^$\\", *p)) re[n++] = '\\';
            re[n++] = *p++;
        }
    }
    re[n++] = '$';
    re[n] = 0;
    return regcomp(&r->re, re, REG_EXTENDED);
}

static int load(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[2048];
    int ln = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        if (line[0] == '#' || line[0] == '\n') continue;
        row *r = &g_rows[g_n];
        memset(r, 0, sizeof *r);
        char src[256];
        if (sscanf(line, "%15[^\t]\t%255[^\t]\t%255[^\t]\t%7[^\t]\t%255[^\n]", r->role, r->cat, r->file, r->part, src) !=
            5) {
            ZT_CHECK(0, "%s:%d: not 5 tab-separated columns", path, ln);
            continue;
        }
        r->line = ln;
        if (strcmp(r->role, "detect") && compile(r)) {
            ZT_CHECK(0, "%s:%d: bad pattern '%s'", path, ln, r->cat);
            continue;
        }
        if (++g_n == (int)ZT_ARRAY_LEN(g_rows)) break;
    }
    fclose(f);
    return 0;
}

/* The row's file key for the captured values. */
static void expand(const row *r, const char *key, const regmatch_t *m, int n_blocks, char *out, size_t cap) {
    char val[8][256];
    for (int v = 0; v < r->nvars; v++) {
        int len = (int)(m[v + 1].rm_eo - m[v + 1].rm_so);
        snprintf(val[v], sizeof val[v], "%.*s", len, key + m[v + 1].rm_so);
    }
    size_t n = 0;
    out[0] = 0;
    for (const char *p = r->file; *p && n < cap - 1;) {
        if (*p != '{') {
            out[n++] = *p++;
            out[n] = 0;
            continue;
        }
        const char *e = strchr(p, '}');
        char name[8] = {0};
        memcpy(name, p + 1, (size_t)(e - p - 1) < 7 ? (size_t)(e - p - 1) : 7);
        p = e + 1;
        const char *base = !strcmp(name, "ri") || !strcmp(name, "i1") ? "i" : name;
        const char *v = "?";
        for (int k = 0; k < r->nvars; k++)
            if (!strcmp(r->vars[k], base)) v = val[k];
        char num[32];
        if (!strcmp(name, "ri")) snprintf(num, sizeof num, "%d", n_blocks - 1 - atoi(v)), v = num;
        if (!strcmp(name, "i1")) snprintf(num, sizeof num, "%d", atoi(v) + 1), v = num;
        n += (size_t)snprintf(out + n, cap - n, "%s", v);
    }
}

static void check_config(const char *preset) {
    zt_model_config cfg;
    zt_catalog cat;
    zt_err e = {0};
    ZT_CHECK(zt_config_preset(preset, &cfg, &e) == ZT_OK, "preset %s: %s", preset, e.msg);
    if (zt_catalog_build(&cfg, &cat, &e)) {
        ZT_CHECK(0, "catalog %s: %s", preset, e.msg);
        return;
    }
    int checked = 0, bad = 0;
    for (int t = 0; t < cat.n_ckpt; t++) {
        const zt_ckpt_tensor *k = &cat.ckpt[t];
        const char *role = k->comp == ZT_COMP_DIT ? "dit" : k->comp == ZT_COMP_VAE ? "vae" : NULL;
        if (!role) continue;
        zt_comfy_key m;
        zt_comfy_map_key(&cat.cfg, k->comp, k->name, &m);
        for (int d = 0; d < g_n; d++) /* detect rows: keys our DiT files must hold */
            if (!strcmp(g_rows[d].role, "detect") && !strcmp(m.key, g_rows[d].file)) g_rows[d].used = 1;
        row *r = NULL;
        regmatch_t mt[9];
        for (int i = 0; i < g_n && !r; i++)
            if (!strcmp(g_rows[i].role, role) && !regexec(&g_rows[i].re, k->name, 9, mt, 0)) r = &g_rows[i];
        checked++;
        if (!r) {
            ZT_CHECK(0, "%s: %s: no row of the independent list names it", preset, k->name);
            bad++;
            continue;
        }
        r->used = 1;
        char want[512];
        expand(r, k->name, mt, cat.cfg.vae_n_blocks, want, sizeof want);
        int ok = !strcmp(m.key, want);
        const int64_t rows = k->shape[0];
        if (!strcmp(r->part, "q") || !strcmp(r->part, "k") || !strcmp(r->part, "v")) {
            const int64_t third = r->part[0] == 'q' ? 0 : r->part[0] == 'k' ? 1 : 2;
            ok = ok && m.fused_rows == 3 * rows && m.row0 == third * rows;
        } else {
            ok = ok && m.fused_rows == 0 && m.row0 == 0;
        }
        ok = ok && m.conv1x1 == !strcmp(r->part, "1x1");
        if (!ok) bad++;
        ZT_CHECK(ok, "%s: %s -> '%s' (rows %lld of %lld, 1x1 %d); line %d of the list says '%s' (part %s)", preset,
                 k->name, m.key, (long long)m.row0, (long long)m.fused_rows, m.conv1x1, r->line, want, r->part);
    }
    printf("%s: %d DiT and VAE tensors mapped, %d differ from the independent names\n", preset, checked, bad);
    zt_catalog_free(&cat);
}

int main(void) {
    char path[1024];
    const char *root = getenv("ZT_ROOT");
    snprintf(path, sizeof path, "%s/tests/data/comfy_keys/zimage.tsv", root ? root : ".");
    ZT_CHECK(load(path) == 0, "cannot read %s", path);
    ZT_CHECK(g_n > 20, "%d rows in %s", g_n, path);
    check_config("tiny");
    check_config("full");
    for (int i = 0; i < g_n; i++)
        ZT_CHECK(g_rows[i].used, "line %d of the list (%s %s) matches no tensor of either config", g_rows[i].line,
                 g_rows[i].role, g_rows[i].role[0] == 'd' && g_rows[i].role[1] == 'e' ? g_rows[i].file : g_rows[i].cat);
    for (int i = 0; i < g_n; i++)
        if (strcmp(g_rows[i].role, "detect")) regfree(&g_rows[i].re);
    return zt_test_finish("test_comfy_keys");
}
