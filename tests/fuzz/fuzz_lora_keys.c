/* tests/fuzz/fuzz_lora_keys.c — libFuzzer harness for the LoRA key parser
 * (storage/lora.h zt_lora_map_file) on the tiny catalog. The input is a
 * tensor list, one per line: "NAME DTYPE D0 [D1 ...]", and optionally a
 * first line "META {json}" (the PEFT lora_adapter_metadata string). No data
 * is read. Whatever the names, the parser returns a code with a one-line
 * message, and on success every patch lies inside the catalog: a 2-D bf16
 * tensor of its unit with rows x cols as recorded, B's rows in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/catalog.h"
#include "storage/lora.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static zt_catalog g_cat;
static int g_ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_ready) {
        zt_model_config cfg;
        zt_err e;
        if (zt_config_preset("tiny", &cfg, &e) || zt_catalog_build(&cfg, &g_cat, &e)) abort();
        g_ready = 1;
    }
    if (size > 1 << 16) return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    zt_st_tensor t[64];
    char *names[64];
    int n = 0;
    const char *meta = NULL;
    for (char *line = strtok(text, "\n"); line && n < 64; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "META ", 5)) {
            meta = line + 5;
            continue;
        }
        char *name = strtok(line, " ");
        char *dt = name ? strtok(NULL, " ") : NULL;
        if (!name || !dt) continue;
        zt_st_tensor *x = &t[n];
        memset(x, 0, sizeof *x);
        if (zt_dtype_parse(dt, &x->dtype)) x->dtype = ZT_DT_F32;
        for (char *d; x->ndim < ZT_ST_MAX_DIMS && (d = strtok(NULL, " "));) x->shape[x->ndim++] = strtoll(d, NULL, 10) & 0xffff;
        uint64_t els = 1;
        for (int i = 0; i < x->ndim; i++) els *= (uint64_t)x->shape[i];
        x->begin = 0;
        x->end = els * zt_dtype_size(x->dtype);
        names[n] = name;
        x->name = name;
        n++;
    }
    zt_st_file f;
    memset(&f, 0, sizeof f);
    f.path = "fuzz.safetensors";
    f.fd = -1;
    f.n_tensors = n;
    f.tensors = t;
    zt_lora_patch *p = NULL;
    int np = 0;
    zt_lora_file lf;
    memset(&lf, 0, sizeof lf);
    zt_err e = {0};
    int rc = zt_lora_map_file(&g_cat, &f, meta, 0.5f, 0, &p, &np, &lf, &e);
    if (rc) {
        if (!e.msg[0] || strchr(e.msg, '\n')) abort();
    } else {
        for (int i = 0; i < np; i++) {
            const zt_lora_patch *q = &p[i];
            if (q->tensor < 0 || q->tensor >= g_cat.n_tensors || q->unit < 0 || q->unit >= g_cat.n_units) abort();
            const zt_tensor_desc *td = &g_cat.tensors[q->tensor];
            const zt_unit_desc *u = &g_cat.units[q->unit];
            if (q->tensor < u->first_tensor || q->tensor >= u->first_tensor + u->n_tensors) abort();
            if (td->ndim != 2 || td->shape[0] != q->rows || td->shape[1] != q->cols || td->dtype != ZT_DT_BF16) abort();
            if (q->rank < 1 || q->a->shape[0] != q->rank || q->a->shape[1] != q->cols) abort();
            if (q->b->shape[1] != q->rank || q->b_row0 + q->rows > q->b->shape[0]) abort();
        }
    }
    (void)names;
    free(p);
    free(text);
    return 0;
}
