/* tests/test_safetensors.c — the safetensors reader on valid and hostile
 * headers (each rejected with the expected code and a message naming the
 * file, and the tensor where there is one), the sharded index rules, and
 * the writer (sorted keys, 8-byte padded header, byte-exact data). */
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/safetensors.h"
#include "tests/test_storage_util.h"
#include "tests/zt_test.h"

static char g_tmp[4096];

/* 8-byte length + header + `data_len` bytes of data (0x11 pattern). */
static uint8_t *mk(const char *header, uint64_t claimed_len, size_t data_len, size_t *out_len) {
    size_t hl = strlen(header);
    uint8_t *b = malloc(8 + hl + data_len + 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(claimed_len >> (8 * i));
    memcpy(b + 8, header, hl);
    memset(b + 8 + hl, 0x11, data_len);
    *out_len = 8 + hl + data_len;
    return b;
}

/* Parse `header` (+ data) from memory; expect `code`; the message must name
 * the file and contain `needle` (if any). */
static void expect(const char *what, const char *header, size_t data_len, int code, const char *needle) {
    size_t n;
    uint8_t *b = mk(header, strlen(header), data_len, &n);
    zt_st_file f;
    zt_err e = {0};
    int rc = zt_st_parse("shard-7.safetensors", b, n, n, &f, &e);
    ZT_CHECK(rc == code, "%s: code %d, want %d (%s)", what, rc, code, e.msg);
    if (code) {
        ZT_CHECK(strstr(e.msg, "shard-7.safetensors") != NULL, "%s: message does not name the file: %s", what, e.msg);
        ZT_CHECK(!needle || strstr(e.msg, needle), "%s: message lacks '%s': %s", what, needle, e.msg);
        ZT_CHECK(!strchr(e.msg, '\n'), "%s: message is not one line", what);
    } else {
        zt_st_close(&f);
    }
    free(b);
}

static void test_headers(void) {
    const char *ok = "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect("valid", ok, 8, ZT_OK, NULL);
    expect("valid, padded", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,2]}}    ", 2, ZT_OK, NULL);
    expect("valid, empty", "{}", 0, ZT_OK, NULL);
    expect("not JSON", "{\"w\":", 0, ZT_ERR_FORMAT, "JSON");
    expect("array header", "[1,2]", 0, ZT_ERR_FORMAT, "'{'");
    expect("trailing garbage", "{} x", 0, ZT_ERR_FORMAT, "JSON");
    expect("duplicate key",
           "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
           2, ZT_ERR_FORMAT, "JSON");
    expect("entry not object", "{\"w\":3}", 0, ZT_ERR_FORMAT, "'w'");
    expect("unknown dtype", "{\"w\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, ZT_ERR_UNSUPPORTED, "F7");
    expect("dtype not string", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,1]}}", 1, ZT_ERR_FORMAT, "'w'");
    expect("negative dim", "{\"w\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1, ZT_ERR_FORMAT, "shape");
    expect("float dim", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}", 1, ZT_ERR_FORMAT, "shape");
    expect("shape not array", "{\"w\":{\"dtype\":\"U8\",\"shape\":\"1\",\"data_offsets\":[0,1]}}", 1, ZT_ERR_FORMAT, "shape");
    expect("too many dims", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
           ZT_ERR_UNSUPPORTED, "dimensions");
    expect("shape overflow",
           "{\"w\":{\"dtype\":\"F32\",\"shape\":[4503599627370495,4503599627370495],\"data_offsets\":[0,4]}}", 4,
           ZT_ERR_FORMAT, "overflow");
    expect("span mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12, ZT_ERR_FORMAT, "span");
    expect("end before begin", "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, ZT_ERR_FORMAT, "begin");
    expect("offsets past EOF", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 8, ZT_ERR_FORMAT,
           "past the data section");
    expect("overlap",
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
           12, ZT_ERR_FORMAT, "overlap");
    expect("same offsets",
           "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
           4, ZT_ERR_FORMAT, "overlap");
    expect("zero-size tensors may share offsets",
           "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]},\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
           4, ZT_OK, NULL);
    expect("offsets missing", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, ZT_ERR_FORMAT, "data_offsets");
    expect("offsets 3 long", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1, ZT_ERR_FORMAT,
           "data_offsets");
    expect("extra field", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", 1, ZT_ERR_FORMAT,
           "unexpected");
    expect("metadata not object", "{\"__metadata__\":[]}", 0, ZT_ERR_FORMAT, "__metadata__");
    expect("metadata value not string", "{\"__metadata__\":{\"format\":1}}", 0, ZT_ERR_FORMAT, "format");
    expect("NUL in key", "{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, ZT_ERR_FORMAT,
           "JSON");
    expect("newline in name stays one line", "{\"a\\nb\":{\"dtype\":\"Q\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
           ZT_ERR_UNSUPPORTED, "a?b");
    expect("bad UTF-8", "{\"\xff\xfe\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, ZT_ERR_FORMAT, "JSON");

    /* header length field */
    zt_st_file f;
    zt_err e = {0};
    size_t n;
    uint8_t *b = mk("{}", 2, 0, &n);
    ZT_CHECK(zt_st_parse("h.safetensors", b, 5, 5, &f, &e) == ZT_ERR_FORMAT && strstr(e.msg, "h.safetensors"),
             "5-byte file: %s", e.msg);
    free(b);
    b = mk("{}", 0, 0, &n);
    ZT_CHECK(zt_st_parse("h.safetensors", b, n, n, &f, &e) == ZT_ERR_FORMAT && strstr(e.msg, "header length"),
             "length 0: %s", e.msg);
    free(b);
    b = mk("{}", 1ull << 40, 0, &n);
    ZT_CHECK(zt_st_parse("h.safetensors", b, n, n, &f, &e) == ZT_ERR_FORMAT && strstr(e.msg, "header length"),
             "length 2^40: %s", e.msg);
    free(b);
    b = mk("{}", 1000, 0, &n);
    ZT_CHECK(zt_st_parse("h.safetensors", b, n, n, &f, &e) == ZT_ERR_FORMAT && strstr(e.msg, "past the end"),
             "length past EOF: %s", e.msg);
    free(b);
    /* each dtype string is known with its size */
    static const char *names[] = {"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64",
                                  "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "C64"};
    static const unsigned sizes[] = {1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8, 1, 1, 1, 8};
    for (size_t i = 0; i < ZT_ARRAY_LEN(names); i++) {
        zt_dtype d;
        ZT_CHECK(zt_dtype_parse(names[i], &d) == ZT_OK && zt_dtype_size(d) == sizes[i] &&
                     !strcmp(zt_dtype_name(d), names[i]),
                 "dtype %s", names[i]);
    }
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    ZT_CHECK(f && fwrite(p, 1, n, f) == n, "write %s", path);
    if (f) fclose(f);
}

static void test_files(void) {
    char p[4400];
    zt_st_file f;
    zt_err e = {0};
    snprintf(p, sizeof p, "%s/nope.safetensors", g_tmp);
    ZT_CHECK(zt_st_open(p, &f, &e) == ZT_ERR_MISSING && strstr(e.msg, p), "missing: %s", e.msg);
    ZT_CHECK(zt_st_open(g_tmp, &f, &e) == ZT_ERR_IO && strstr(e.msg, "regular"), "folder: %s", e.msg);
    /* a valid file, then the same file truncated */
    size_t n;
    const char *hw = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    uint8_t *b = mk(hw, strlen(hw), 16, &n);
    snprintf(p, sizeof p, "%s/t.safetensors", g_tmp);
    write_bytes(p, b, n);
    int rc = zt_st_open(p, &f, &e);
    ZT_CHECK(rc == ZT_OK, "valid file: %s", e.msg);
    if (!rc) {
        const zt_st_tensor *t = zt_st_find(&f, "w");
        uint8_t d[16];
        ZT_CHECK(t && zt_st_pread(&f, t, 0, d, 16, &e) == ZT_OK && d[0] == 0x11 && d[15] == 0x11, "pread");
        ZT_CHECK(t && zt_st_pread(&f, t, 8, d, 9, &e) == ZT_ERR_INTERNAL, "pread past the tensor");
        zt_st_close(&f);
    }
    write_bytes(p, b, n - 3);
    ZT_CHECK(zt_st_open(p, &f, &e) == ZT_ERR_FORMAT && strstr(e.msg, p) && strstr(e.msg, "'w'"), "truncated: %s",
             e.msg);
    write_bytes(p, b, 20);
    ZT_CHECK(zt_st_open(p, &f, &e) == ZT_ERR_FORMAT && strstr(e.msg, p), "truncated header: %s", e.msg);
    write_bytes(p, b, 3);
    ZT_CHECK(zt_st_open(p, &f, &e) == ZT_ERR_FORMAT && strstr(e.msg, p), "3 bytes: %s", e.msg);
    free(b);
}

static void test_writer(void) {
    char p[4400];
    snprintf(p, sizeof p, "%s/w.safetensors", g_tmp);
    zt_st_wtensor ts[] = {
        {"b", ZT_DT_BF16, 2, {2, 3}}, {"a", ZT_DT_F32, 1, {4}},      {"scalar", ZT_DT_F32, 0, {0}},
        {"empty", ZT_DT_I64, 2, {0, 5}}, {"c.u8", ZT_DT_U8, 1, {3}}, {"Z", ZT_DT_F16, 1, {1}},
    };
    int n = (int)ZT_ARRAY_LEN(ts);
    zt_st_writer *w;
    zt_err e = {0};
    int rc = zt_st_writer_open(p, ts, n, &w, &e);
    ZT_CHECK(rc == ZT_OK, "writer open: %s", e.msg);
    if (rc) return;
    /* bytes: tensor k's bytes are k+1 repeated; fed in odd-sized pieces */
    int order[8], no = 0;
    for (int t; (t = zt_st_writer_next(w)) >= 0;) {
        order[no++] = t;
        uint64_t nb = zt_dtype_size(ts[t].dtype);
        for (int d = 0; d < ts[t].ndim; d++) nb *= (uint64_t)ts[t].shape[d];
        for (uint64_t i = 0; i < nb; i++) {
            uint8_t v = (uint8_t)(t + 1);
            ZT_CHECK(zt_st_writer_write(w, &v, 1, &e) == ZT_OK, "write: %s", e.msg);
        }
        if (nb == 0) break; /* next() already moved past empty tensors */
    }
    ZT_CHECK(zt_st_writer_close(w, &e) == ZT_OK, "close: %s", e.msg);
    /* order is sorted by name, empty tensors skipped */
    ZT_CHECK(no == 5 && !strcmp(ts[order[0]].name, "Z") && !strcmp(ts[order[1]].name, "a") &&
                 !strcmp(ts[order[2]].name, "b") && !strcmp(ts[order[3]].name, "c.u8") &&
                 !strcmp(ts[order[4]].name, "scalar"),
             "write order");
    zt_st_file f;
    rc = zt_st_open(p, &f, &e);
    ZT_CHECK(rc == ZT_OK, "reopen: %s", e.msg);
    if (rc) return;
    ZT_CHECK(f.data_offset % 8 == 0, "data section at %llu", (unsigned long long)f.data_offset);
    ZT_CHECK(f.n_tensors == n, "n_tensors %d", f.n_tensors);
    for (int i = 0; i < n; i++) {
        const zt_st_tensor *t = zt_st_find(&f, ts[i].name);
        ZT_CHECK(t && t->dtype == ts[i].dtype && t->ndim == ts[i].ndim, "%s", ts[i].name);
        if (!t) continue;
        uint8_t buf[64];
        uint64_t nb = t->end - t->begin;
        ZT_CHECK(zt_st_pread(&f, t, 0, buf, nb, &e) == ZT_OK, "pread %s", ts[i].name);
        for (uint64_t k = 0; k < nb; k++) ZT_CHECK(buf[k] == i + 1, "%s byte %llu", ts[i].name, (unsigned long long)k);
    }
    /* raw header: metadata first, keys sorted, space padding */
    FILE *fp = fopen(p, "rb");
    char raw[512] = {0};
    size_t got = fp ? fread(raw, 1, (size_t)f.data_offset, fp) : 0;
    if (fp) fclose(fp);
    ZT_CHECK(got == f.data_offset && !strncmp(raw + 8, "{\"__metadata__\":{\"format\":\"pt\"},\"Z\":", 36),
             "header start: %.60s", raw + 8);
    const char *pa = strstr(raw + 8, "\"a\""), *pb = strstr(raw + 8, "\"b\""), *pc = strstr(raw + 8, "\"c.u8\"");
    ZT_CHECK(pa && pb && pc && pa < pb && pb < pc, "keys sorted");
    ZT_CHECK(raw[f.data_offset - 1] == ' ' || raw[f.data_offset - 1] == '}', "padding");
    zt_st_close(&f);

    /* duplicate names; early close removes the file */
    zt_st_wtensor dup[] = {{"x", ZT_DT_U8, 1, {1}}, {"x", ZT_DT_U8, 1, {1}}};
    ZT_CHECK(zt_st_writer_open(p, dup, 2, &w, &e) == ZT_ERR_ARG && strstr(e.msg, "'x'"), "duplicate: %s", e.msg);
    rc = zt_st_writer_open(p, ts, n, &w, &e);
    ZT_CHECK(rc == ZT_OK, "reopen writer");
    if (!rc) {
        ZT_CHECK(zt_st_writer_close(w, &e) == ZT_ERR_INTERNAL && strstr(e.msg, "before"), "early close: %s", e.msg);
        ZT_CHECK(access(p, F_OK) != 0, "file left after a failed close");
    }
}

static void write_tensor_file(const char *path, const char *const *names, int n) {
    zt_st_wtensor ts[8];
    for (int i = 0; i < n; i++) {
        ts[i].name = names[i];
        ts[i].dtype = ZT_DT_U8;
        ts[i].ndim = 1;
        ts[i].shape[0] = 2;
    }
    zt_st_writer *w;
    zt_err e = {0};
    ZT_CHECK(zt_st_writer_open(path, ts, n, &w, &e) == ZT_OK, "%s", e.msg);
    uint8_t v[16] = {0};
    ZT_CHECK(zt_st_writer_write(w, v, (size_t)n * 2, &e) == ZT_OK && zt_st_writer_close(w, &e) == ZT_OK, "%s", e.msg);
}

static void write_text(const char *path, const char *s) { write_bytes(path, s, strlen(s)); }

static void test_index(void) {
    static const struct {
        const char *json;
        int code;
        const char *needle;
    } cases[] = {
        {"{\"weight_map\":{\"t\":\"../x.safetensors\"}}", ZT_ERR_FORMAT, "'t'"},
        {"{\"weight_map\":{\"t\":\"/etc/x.safetensors\"}}", ZT_ERR_FORMAT, "/etc/x"},
        {"{\"weight_map\":{\"t\":\"sub/x.safetensors\"}}", ZT_ERR_FORMAT, "sub/x"},
        {"{\"weight_map\":{\"t\":\"..\"}}", ZT_ERR_FORMAT, "'t'"},
        {"{\"weight_map\":{\"t\":\".hidden.safetensors\"}}", ZT_ERR_FORMAT, "'t'"},
        {"{\"weight_map\":{\"t\":\"x.bin\"}}", ZT_ERR_FORMAT, "x.bin"},
        {"{\"weight_map\":{\"t\":7}}", ZT_ERR_FORMAT, "'t'"},
        {"{\"weight_map\":[]}", ZT_ERR_FORMAT, "weight_map"},
        {"{\"metadata\":{}}", ZT_ERR_MISSING, "weight_map"},
        {"{\"metadata\":3,\"weight_map\":{}}", ZT_ERR_FORMAT, "metadata"},
        {"[]", ZT_ERR_FORMAT, "object"},
        {"{\"weight_map\":{\"t\":\"a.safetensors\",}}", ZT_ERR_FORMAT, "JSON"},
        {"{\"weight_map\":{\"t\":\"a.safetensors\"}}", ZT_OK, NULL},
    };
    for (size_t i = 0; i < ZT_ARRAY_LEN(cases); i++) {
        int n;
        char **ts, **ss;
        zt_err e = {0};
        int rc = zt_st_index_parse("m.safetensors.index.json", cases[i].json, strlen(cases[i].json), &n, &ts, &ss, &e);
        ZT_CHECK(rc == cases[i].code, "index case %zu: %d (%s)", i, rc, e.msg);
        if (rc) {
            ZT_CHECK(strstr(e.msg, "m.safetensors.index.json") && strstr(e.msg, cases[i].needle), "index case %zu: %s", i,
                     e.msg);
        } else {
            ZT_CHECK(n == 1 && !strcmp(ts[0], "t") && !strcmp(ss[0], "a.safetensors"), "index parse result");
            zt_st_index_free(n, ts, ss);
        }
    }

    /* folder level: two shards */
    char d[4400], p[4600];
    snprintf(d, sizeof d, "%s/sharded", g_tmp);
    mkdir(d, 0755);
    const char *s1[] = {"b", "a"}, *s2[] = {"c"};
    snprintf(p, sizeof p, "%s/m-1.safetensors", d);
    write_tensor_file(p, s1, 2);
    snprintf(p, sizeof p, "%s/m-2.safetensors", d);
    write_tensor_file(p, s2, 1);
    snprintf(p, sizeof p, "%s/m.safetensors.index.json", d);
    write_text(p, "{\"metadata\":{\"total_size\":6},\"weight_map\":{\"c\":\"m-2.safetensors\",\"a\":\"m-1.safetensors\",\"b\":\"m-1.safetensors\"}}");
    zt_st_set s;
    zt_err e = {0};
    int rc = zt_st_set_open(d, "m", &s, &e);
    ZT_CHECK(rc == ZT_OK, "set open: %s", e.msg);
    if (!rc) {
        ZT_CHECK(s.n_files == 2 && s.n_entries == 3 && !strcmp(s.entries[0].name, "a") && !strcmp(s.entries[2].name, "c"),
                 "set entries");
        const zt_st_entry *c = zt_st_set_find(&s, "c");
        ZT_CHECK(c && strstr(s.files[c->file].path, "m-2.safetensors"), "c in m-2");
        ZT_CHECK(zt_st_set_find(&s, "zz") == NULL, "absent");
        zt_st_set_close(&s);
    }
    /* a mapped tensor the shard lacks */
    write_text(p, "{\"weight_map\":{\"c\":\"m-1.safetensors\"}}");
    ZT_CHECK(zt_st_set_open(d, "m", &s, &e) == ZT_ERR_FORMAT && strstr(e.msg, "'c'") && strstr(e.msg, "m-1.safetensors"),
             "tensor not in shard: %s", e.msg);
    /* a missing shard */
    write_text(p, "{\"weight_map\":{\"c\":\"m-3.safetensors\"}}");
    ZT_CHECK(zt_st_set_open(d, "m", &s, &e) == ZT_ERR_MISSING && strstr(e.msg, "m-3.safetensors") &&
                 strstr(e.msg, "m.safetensors.index.json"),
             "missing shard: %s", e.msg);
    /* neither an index nor a single file; not a folder */
    ZT_CHECK(zt_st_set_open(d, "other", &s, &e) == ZT_ERR_MISSING && strstr(e.msg, "other.safetensors"),
             "no files: %s", e.msg);
    snprintf(p, sizeof p, "%s/none", d);
    ZT_CHECK(zt_st_set_open(p, "m", &s, &e) == ZT_ERR_MISSING && strstr(e.msg, p), "no folder: %s", e.msg);
    /* single file */
    snprintf(p, sizeof p, "%s/one.safetensors", d);
    write_tensor_file(p, s1, 2);
    rc = zt_st_set_open(d, "one", &s, &e);
    ZT_CHECK(rc == ZT_OK && s.n_entries == 2 && s.index_path == NULL, "single: %s", e.msg);
    if (!rc) zt_st_set_close(&s);
}

int main(void) {
    st_tmpdir("safetensors", g_tmp, sizeof g_tmp);
    test_headers();
    test_files();
    test_writer();
    test_index();
    return zt_test_finish("test_safetensors");
}
