/* tools/zturbo/cmd_tokenize.c — `zturbo tokenize`: text from stdin to Qwen3 token ids. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "api/tokenizer.h"
#include "storage/store.h"
#include "tools/zturbo/cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: zturbo tokenize (-m MODEL | --tokenizer FILE) [options] < text\n"
            "\n"
            "Reads text from stdin and prints Qwen3 token ids, one output line per prompt.\n"
            "With -m the file is MODEL/tokenizer/tokenizer.json, or the copy a store holds.\n"
            "\n"
            "  --chat            apply Z-Image's chat template and keep the first 512 ids\n"
            "  --max-tokens N    keep the first N ids (default: 512 with --chat, else all)\n"
            "  --template        print the chat-formatted text instead of ids (implies --chat)\n"
            "  --raw             the whole input is one prompt (default: one prompt per line;\n"
            "                    the LF ending a line is not part of the prompt)\n"
            "  --jsonl           each input line is a JSON string; each output line is the\n"
            "                    JSON array of its ids (texts with newlines, exact bytes)\n"
            "  --time            print load time and throughput to stderr\n"
            "\n"
            "Ids are separated by spaces (JSON arrays with --jsonl). Bytes that are not\n"
            "valid UTF-8 are read as U+FFFD, one per maximal invalid sequence.\n");
}

typedef struct {
    const zt_tokenizer *tok;
    int chat, template_only, jsonl;
    size_t max_tokens;
    int32_t *ids;
    size_t ids_cap;
    size_t total_ids, total_bytes;
} tk_run;

static int put_ids(FILE *out, const int32_t *ids, size_t n, int json) {
    char buf[16];
    if (json) fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        int k = 0;
        uint32_t v = (uint32_t)ids[i];
        char tmp[12];
        do { tmp[k++] = (char)('0' + v % 10); v /= 10; } while (v);
        int m = 0;
        if (i) buf[m++] = json ? ',' : ' ';
        while (k) buf[m++] = tmp[--k];
        fwrite(buf, 1, (size_t)m, out);
    }
    if (json) fputc(']', out);
    return fputc('\n', out) == EOF ? -1 : 0;
}

static int do_text(tk_run *r, const char *text, size_t len, zt_err *e) {
    r->total_bytes += len;
    if (r->template_only) {
        char *s;
        size_t sl;
        int rc = zt_tokenizer_chat_format(text, len, &s, &sl, e);
        if (rc) return rc;
        if (r->jsonl) {
            json_t *j = json_stringn(s, sl);
            char *d = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
            if (d) printf("%s\n", d);
            free(d);
            json_decref(j);
            if (!d) rc = zt_err_set(e, ZT_ERR_NOMEM, "cannot format the template as JSON");
        } else {
            fwrite(s, 1, sl, stdout);
            fputc('\n', stdout);
        }
        free(s);
        return rc;
    }
    size_t need = zt_tokenizer_max_ids(len + 64);
    if (r->max_tokens && r->max_tokens < need) need = r->max_tokens;
    if (need > r->ids_cap) {
        int32_t *p = realloc(r->ids, need * sizeof *p);
        if (!p) return zt_err_set(e, ZT_ERR_NOMEM, "out of memory for %zu ids", need);
        r->ids = p;
        r->ids_cap = need;
    }
    size_t n;
    int rc = r->chat ? zt_tokenizer_encode_chat(r->tok, text, len, r->max_tokens, r->ids, need, &n, NULL, e)
                     : zt_tokenizer_encode(r->tok, text, len, r->ids, need, &n, NULL, e);
    if (rc) return rc;
    r->total_ids += n;
    if (put_ids(stdout, r->ids, n, r->jsonl)) return zt_err_set(e, ZT_ERR_IO, "stdout: write failed");
    return 0;
}

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (n < cap) {
            if (ferror(f)) { free(buf); return NULL; }
            break;
        }
        char *q = realloc(buf, cap * 2);
        if (!q) { free(buf); return NULL; }
        buf = q;
        cap *= 2;
    }
    *len = n;
    return buf;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL;
    int raw = 0, timing = 0;
    long long max_tokens = -1;
    tk_run r = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return ZT_EXIT_OK; }
        else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(a, "--tokenizer") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(a, "--chat")) r.chat = 1;
        else if (!strcmp(a, "--template")) r.chat = r.template_only = 1;
        else if (!strcmp(a, "--raw")) raw = 1;
        else if (!strcmp(a, "--jsonl")) r.jsonl = 1;
        else if (!strcmp(a, "--time")) timing = 1;
        else if (!strcmp(a, "--max-tokens") && i + 1 < argc) {
            char *end;
            errno = 0;
            max_tokens = strtoll(argv[++i], &end, 10);
            if (errno || *end || max_tokens < 0) return cli_usage_error("tokenize", "--max-tokens: not a count: %s", argv[i]);
        } else {
            usage(stderr);
            return cli_usage_error("tokenize", "unknown or incomplete option '%s'", a);
        }
    }
    if (!model == !file) return cli_usage_error("tokenize", "give exactly one of -m MODEL_DIR and --tokenizer FILE");
    if (raw && r.jsonl) return cli_usage_error("tokenize", "--raw and --jsonl exclude each other");
    r.max_tokens = max_tokens >= 0 ? (size_t)max_tokens : r.chat ? ZT_MAX_TOKENS : 0;

    char path[4096];
    struct stat st;
    const int from_store = model && stat(model, &st) == 0 && S_ISREG(st.st_mode);
    if (model && !from_store) {
        int k = snprintf(path, sizeof path, "%s/tokenizer/tokenizer.json", model);
        if (k < 0 || (size_t)k >= sizeof path) return cli_usage_error("tokenize", "model path too long");
        file = path;
    }
    zt_err e = {0};
    zt_tokenizer *tok;
    double t0 = zt_now();
    if (from_store) { /* a block store carries its tokenizer (storage/store.h) */
        zt_store *s;
        if (zt_store_open(model, ZT_STORE_NO_VERIFY, &s, &e)) return cli_fail(&e);
        uint64_t n = 0;
        const void *json = zt_store_file_data(s, zt_store_file_find(s, ZT_STORE_FILE_TOKENIZER), &n);
        int rc = json ? zt_tokenizer_load_mem(json, (size_t)n, model, &tok, &e)
                      : zt_err_set(&e, ZT_ERR_MISSING, "%s: the store holds no %s; use --tokenizer FILE", model,
                                   ZT_STORE_FILE_TOKENIZER);
        zt_store_close(s);
        if (rc) return cli_fail(&e);
    } else if (zt_tokenizer_load(file, &tok, &e))
        return cli_fail(&e);
    double t_load = zt_now() - t0;
    r.tok = tok;

    size_t len;
    char *in = read_all(stdin, &len);
    if (!in) {
        zt_tokenizer_free(tok);
        fprintf(stderr, "zturbo tokenize: cannot read stdin: %s\n", strerror(errno));
        return ZT_EXIT_FAIL;
    }
    static char obuf[1 << 20];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    double t1 = zt_now();
    int rc = 0;
    if (raw) {
        rc = do_text(&r, in, len, &e);
    } else {
        size_t line_no = 0;
        for (size_t p = 0; p < len && !rc;) {
            char *nl = memchr(in + p, '\n', len - p);
            size_t end = nl ? (size_t)(nl - in) : len;
            line_no++;
            if (r.jsonl) {
                json_error_t je;
                json_t *j = json_loadb(in + p, end - p, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
                if (!j || !json_is_string(j))
                    rc = zt_err_set(&e, ZT_ERR_FORMAT, "stdin line %zu: not a JSON string%s%s", line_no,
                                    j ? "" : ": ", j ? "" : je.text);
                else rc = do_text(&r, json_string_value(j), json_string_length(j), &e);
                json_decref(j);
            } else {
                rc = do_text(&r, in + p, end - p, &e);
            }
            p = end + 1;
        }
    }
    double t_enc = zt_now() - t1;
    if (fflush(stdout) && !rc) rc = zt_err_set(&e, ZT_ERR_IO, "stdout: write failed");
    if (timing && !rc)
        fprintf(stderr, "load %.1f ms; encode %zu bytes -> %zu ids in %.1f ms (%.2f M ids/s, %.1f MB/s)\n",
                t_load * 1e3, r.total_bytes, r.total_ids, t_enc * 1e3, r.total_ids / (t_enc > 0 ? t_enc : 1e-9) / 1e6,
                r.total_bytes / (t_enc > 0 ? t_enc : 1e-9) / 1e6);
    free(in);
    free(r.ids);
    zt_tokenizer_free(tok);
    return rc ? cli_fail(&e) : ZT_EXIT_OK;
}
