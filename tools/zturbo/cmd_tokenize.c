/* tools/zturbo/cmd_tokenize.c — `zturbo tokenize`: text from stdin to Qwen3 token ids. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "api/tokenizer.h"
#include "common/zt_input.h"
#include "storage/store.h"
#include "tools/zturbo/cli.h"
#include "tools/zturbo/options.h"

typedef struct {
    const zt_tokenizer *tok;
    int chat, template_only, jsonl;
    size_t max_tokens;
    int32_t *ids;
    size_t ids_cap;
    size_t total_ids, total_bytes;
    size_t n_texts, bad_texts, first_bad, first_bad_byte; /* prompts that are not UTF-8 */
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
    size_t bad;
    r->n_texts++;
    if (!zt_utf8_valid(text, len, &bad) && !r->bad_texts++) {
        r->first_bad = r->n_texts;
        r->first_bad_byte = bad;
    }
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

/* stdin is read whole, up to this */
#define TEXT_MAX_BYTES (256ull << 20)

enum { T_MODEL, T_TOKENIZER, T_PROMPT, T_CHAT, T_MAX_TOKENS, T_TEMPLATE, T_RAW, T_JSONL, T_TIME, T_N };

static const cli_option k_opts[T_N] = {
    [T_MODEL] = {"--model", "-m", CLI_STRING, "MODEL",
                 .help = "read MODEL/tokenizer/tokenizer.json, or the copy a block store\nholds (zturbo pack)"},
    [T_TOKENIZER] = {"--tokenizer", NULL, CLI_STRING, "FILE", .help = "this tokenizer.json"},
    [T_PROMPT] = {"--prompt", "-p", CLI_STRING, "TEXT", .help = "tokenize TEXT instead of reading stdin"},
    [T_CHAT] = {"--chat", NULL, CLI_FLAG, .help = "apply Z-Image's chat template and keep the first 512 ids"},
    [T_MAX_TOKENS] = {"--max-tokens", NULL, CLI_INT, "N", 0, 1 << 30, .def_help = "512 with --chat, else all",
                      .help = "keep the first N ids"},
    [T_TEMPLATE] = {"--template", NULL, CLI_FLAG, .help = "print the chat-formatted text instead of ids (implies --chat)"},
    [T_RAW] = {"--raw", NULL, CLI_FLAG,
               .help = "the whole input is one prompt (default: one prompt per line;\n"
                       "the LF ending a line is not part of the prompt)"},
    [T_JSONL] = {"--jsonl", NULL, CLI_FLAG,
                 .help = "each input line is a JSON string; each output line is the\n"
                         "JSON array of its ids (texts with newlines, exact bytes)"},
    [T_TIME] = {"--time", NULL, CLI_FLAG, .help = "print load time and throughput to stderr"},
};

static const char *k_usage =
    "usage: zturbo tokenize (-m MODEL | --tokenizer FILE) [-p TEXT] [options] [< text]\n"
    "\n"
    "Prints Qwen3 token ids of -p TEXT, or of stdin: one output line per prompt (per input\n"
    "line unless --raw; stdin is read up to 256 MiB).\n"
    "\n";

static const char *k_epilog =
    "Ids are separated by spaces (JSON arrays with --jsonl). Prompts are UTF-8; as a debugging\n"
    "tool tokenize still reads other bytes as the tokenizer would (U+FFFD per maximal invalid\n"
    "sequence, Python's decode(errors=\"replace\")) and says so on stderr; generate refuses them.\n";

int cmd_tokenize(int argc, char **argv) {
    const cli_spec sp = {"tokenize", k_usage, k_epilog, k_opts, T_N, 0};
    cli_value v[T_N];
    int rc = cli_parse(&sp, argc, argv, v);
    if (rc) return rc == CLI_DONE ? ZT_EXIT_OK : rc;
    tk_run r = {0};
    r.chat = v[T_CHAT].set || v[T_TEMPLATE].set;
    r.template_only = v[T_TEMPLATE].set;
    r.jsonl = v[T_JSONL].set;
    const int raw = v[T_RAW].set, timing = v[T_TIME].set;
    const char *model = v[T_MODEL].s, *file = v[T_TOKENIZER].s;
    if (!model == !file) return cli_usage_error("tokenize", "give exactly one of -m MODEL and --tokenizer FILE");
    if (raw && r.jsonl) return cli_usage_error("tokenize", "--raw and --jsonl exclude each other");
    if (v[T_PROMPT].set && (raw || r.jsonl)) return cli_usage_error("tokenize", "-p and --raw/--jsonl exclude each other");
    r.max_tokens = v[T_MAX_TOKENS].set ? (size_t)v[T_MAX_TOKENS].i : r.chat ? ZT_TOKENIZER_MAX_TOKENS : 0;

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
        rc = json ? zt_tokenizer_load_mem(json, (size_t)n, model, &tok, &e)
                  : zt_err_set(&e, ZT_ERR_MISSING, "%s: the store holds no %s; use --tokenizer FILE", model,
                               ZT_STORE_FILE_TOKENIZER);
        zt_store_close(s);
        if (rc) return cli_fail(&e);
    } else if (zt_tokenizer_load(file, &tok, &e))
        return cli_fail(&e);
    double t_load = zt_now() - t0;
    r.tok = tok;

    size_t len;
    char *in = NULL;
    if (v[T_PROMPT].set) {
        len = strlen(v[T_PROMPT].s);
        in = malloc(len + 1);
        if (in) memcpy(in, v[T_PROMPT].s, len + 1);
        if (!in) rc = zt_err_set(&e, ZT_ERR_NOMEM, "out of host memory");
    } else {
        if (isatty(0))
            fprintf(stderr, "zturbo tokenize: reading text from the terminal, one prompt per line; end with Ctrl-D "
                            "(or give -p TEXT)\n");
        rc = zt_fd_read_all(0, "stdin", TEXT_MAX_BYTES, "text to tokenize", &in, &len, &e);
    }
    if (rc) {
        zt_tokenizer_free(tok);
        return cli_fail(&e);
    }
    static char obuf[1 << 20];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    double t1 = zt_now();
    if (raw || v[T_PROMPT].set) {
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
    if (r.bad_texts)
        fprintf(stderr, "zturbo tokenize: warning: %zu of %zu prompts are not UTF-8 (the first: prompt %zu, byte %zu): "
                        "their invalid bytes were read as U+FFFD\n",
                r.bad_texts, r.n_texts, r.first_bad, r.first_bad_byte);
    free(in);
    free(r.ids);
    zt_tokenizer_free(tok);
    return rc ? cli_fail(&e) : ZT_EXIT_OK;
}
