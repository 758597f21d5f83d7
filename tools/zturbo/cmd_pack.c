/* tools/zturbo/cmd_pack.c — `zturbo pack MODEL -o STORE`: write a block
 * store (storage/store.h) from a Hugging Face snapshot folder, ComfyUI files
 * or an existing store (e.g. to change its compression). The store carries
 * the tokenizer too (the model's own, or --tokenizer FILE), so that
 * `zturbo generate -m STORE` needs nothing else.
 *
 * Default zstd level 1: on random-weight bf16 checkpoints (tiny and full,
 * bench-io) level 1 with byte planes beat level 3 on ratio (1.46 vs 1.41),
 * compression speed and decode speed (2.2 vs 1.7 GB/s per thread).
 *
 * Environment (test builds only, bin/test-zturbo): ZT_PACK_FAULT=enospc@OFFSET
 * makes writes reaching that file offset fail with ENOSPC. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/lora.h"
#include "api/tokenizer.h"
#include "common/zt_input.h"
#include "storage/source.h"
#include "storage/store.h"
#include "tools/zturbo/cli.h"
#include "tools/zturbo/options.h"

static volatile int g_cancel;
static void on_signal(int sig) {
    (void)sig;
    g_cancel = 1;
}

typedef struct {
    int tty;
    double t0;
    const char *what;
} progress_state;

static void on_progress(void *ctx, int done, int n, uint64_t bytes, uint64_t total) {
    progress_state *p = ctx;
    if (!p->tty) return;
    char b1[32], b2[32];
    double dt = zt_now() - p->t0;
    fprintf(stderr, "\r%s: %d/%d units, %s of %s (%.0f%%), %.2f GiB/s   ", p->what, done, n,
            zt_fmt_bytes(bytes, b1, sizeof b1), zt_fmt_bytes(total, b2, sizeof b2),
            total ? 100.0 * (double)bytes / (double)total : 100.0, dt > 0 ? (double)bytes / dt / (double)ZT_GiB : 0.0);
    if (done == n) fputc('\n', stderr);
}

enum { P_MODEL, P_OUTPUT, P_WEIGHTS, P_ZSTD, P_NO_COMPRESS, P_THREADS, P_CHUNK, P_TOKENIZER, P_LORA, P_VERIFY, P_QUIET, P_N };

static const cli_option k_opts[P_N] = {
    [P_MODEL] = {"MODEL", NULL, CLI_POSITIONAL,
                 .help = "Hugging Face snapshot folder, ComfyUI files or an existing store"},
    [P_OUTPUT] = {"--output", "-o", CLI_STRING, "STORE",
                  .help = "the store file to write (a temporary name, then a rename: never\n"
                          "left partial; an existing symbolic link, folder or device is refused)"},
    [P_WEIGHTS] = {"--weights", NULL, CLI_ENUM, "coded|bf16", .choices = "coded|bf16", .def = "coded",
                   .help = "coded: the transformer, text-encoder and VAE units coded losslessly\n"
                           "(~0.68 of the bf16 bytes; decoded on the GPU); bf16: stored as bf16\n"
                           "images (zstd or plain, as below)"},
    [P_ZSTD] = {"--zstd", NULL, CLI_INT, "LEVEL", 1, 22, .def = "1",
                .help = "zstd level 1..22 per chunk, bf16 byte planes, for what is not coded"},
    [P_NO_COMPRESS] = {"--no-compress", NULL, CLI_FLAG, .help = "store the unit images as they are (fastest to read)"},
    [P_THREADS] = {"--threads", NULL, CLI_INT, "N", 1, 256, .def_help = "CPUs, at most 16",
                   .help = "compression threads, 1..256"},
    [P_CHUNK] = {"--chunk", NULL, CLI_SIZE, "SIZE", 64 << 10, .def = "4M",
                 .help = "chunk size, a power of two in 64K..256M"},
    [P_TOKENIZER] = {"--tokenizer", NULL, CLI_STRING, "FILE", .def_help = "the model's own",
                     .help = "the tokenizer.json to store (ComfyUI files have none:\n"
                             "Tongyi-MAI/Z-Image-Turbo's tokenizer/tokenizer.json)"},
    [P_LORA] = {"--lora", NULL, CLI_STRING, "FILE[:SCALE]", .repeat = 1,
                .help = "merge a LoRA into the stored weights (repeatable; as generate\n"
                        "--lora: a store packed with LoRAs serves merged units at no cost\n"
                        "per use)"},
    [P_VERIFY] = {"--verify", NULL, CLI_FLAG, .help = "re-read the written store and check every byte"},
    [P_QUIET] = {"--quiet", "-q", CLI_FLAG, .help = "no progress and no summary"},
};

static const char *k_usage =
    "usage: zturbo pack MODEL -o STORE [options]\n"
    "\n"
    "Pack a Hugging Face snapshot folder (or ComfyUI files, or an existing store) into a\n"
    "zturbo block store, which holds the weights, the configs and the tokenizer.\n"
    "\n";

int cmd_pack(int argc, char **argv) {
    const cli_spec sp = {"pack", k_usage, NULL, k_opts, P_N, 0};
    cli_value v[P_N];
    int rc = cli_parse(&sp, argc, argv, v);
    if (rc) return rc == CLI_DONE ? ZT_EXIT_OK : rc;
    if (v[P_ZSTD].set && v[P_NO_COMPRESS].set) return cli_usage_error("pack", "--zstd and --no-compress exclude each other");
    if (!v[P_MODEL].set) return cli_missing(&sp, P_MODEL);
    if (!v[P_OUTPUT].set) return cli_missing(&sp, P_OUTPUT);
    const uint64_t chunk = v[P_CHUNK].u;
    if (chunk > (256u << 20) || (chunk & (chunk - 1)))
        return cli_usage_error("pack", "--chunk %llu bytes not allowed: a power of two in 64K..256M",
                               (unsigned long long)chunk);
    const char *model = v[P_MODEL].s, *out = v[P_OUTPUT].s;
    const int quiet = v[P_QUIET].set, verify = v[P_VERIFY].set;
    zt_err e = {0};
    if (zt_output_check(out, &e)) return cli_fail(&e); /* before reading the model */

    const int threads = v[P_THREADS].set ? (int)v[P_THREADS].i : 0;
    static char lora_path[CLI_MAX_REPEAT][4096];
    zt_lora_spec loras[CLI_MAX_REPEAT];
    _Static_assert(CLI_MAX_REPEAT <= ZT_LORA_MAX_FILES, "every --lora given fits the merger");
    const int n_loras = v[P_LORA].n;
    for (int i = 0; i < n_loras; i++) {
        if (zt_lora_parse_arg(v[P_LORA].list[i], lora_path[i], sizeof lora_path[i], &loras[i].scale, &e))
            return cli_usage_error("pack", "%s", e.msg);
        loras[i].path = lora_path[i];
    }

    /* --tokenizer: checked to be a tokenizer this engine loads, then stored */
    zt_store_file_in tok_file = {ZT_STORE_FILE_TOKENIZER, NULL, 0};
    char *tok_json = NULL;
    if (v[P_TOKENIZER].set) {
        const char *tp = v[P_TOKENIZER].s;
        size_t n = 0;
        zt_tokenizer *tok;
        if (zt_file_read_all(tp, ZT_STORE_FILE_MAX, "--tokenizer", &tok_json, &n, &e) ||
            zt_tokenizer_load_mem(tok_json, n, tp, &tok, &e)) {
            free(tok_json);
            return cli_fail(&e);
        }
        zt_tokenizer_free(tok);
        tok_file.data = tok_json;
        tok_file.size = n;
    }

    zt_source *src;
    if (zt_source_open(model, &src, &e)) {
        free(tok_json);
        return cli_fail(&e);
    }
    zt_lora_merger *merger = NULL;
    if (n_loras) { /* every file checked before the first unit is written; merged on the host as units are read */
        zt_source *w;
        if (zt_lora_wrap_source(src, loras, n_loras, threads, &w, &merger, &e)) {
            zt_source_close(src);
            free(tok_json);
            return cli_fail(&e);
        }
        src = w;
    }

    zt_pack_opts po = {.wcode = !strcmp(v[P_WEIGHTS].s, "coded"), .zstd_level = v[P_NO_COMPRESS].set ? 0 : (int)v[P_ZSTD].i,
                       .threads = threads, .chunk_bytes = (uint32_t)chunk, .cancel = &g_cancel,
                       .files = tok_json ? &tok_file : NULL, .n_files = tok_json ? 1 : 0};

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    progress_state ps = {.tty = !quiet && isatty(STDERR_FILENO), .t0 = zt_now(), .what = "packing"};
    zt_pack_stats st = {0};
    rc = zt_store_pack(src, out, &po, on_progress, &ps, &st, &e);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    const double merge_s = zt_lora_merger_seconds(merger);
    const int merged = zt_lora_merger_tensors(merger);
    const zt_source_kind kind = zt_source_kind_of(src);
    zt_source_close(src); /* (and the merger with it) */
    free(tok_json);
    if (rc) {
        if (ps.tty) fputc('\n', stderr);
        return cli_fail(&e);
    }
    zt_store *check = NULL;
    if (zt_store_open(out, ZT_STORE_NO_VERIFY, &check, &e)) return cli_fail(&e);
    const int has_tok = zt_store_file_find(check, ZT_STORE_FILE_TOKENIZER) >= 0;
    zt_store_close(check);
    if (!has_tok)
        fprintf(stderr,
                "zturbo pack: note: %s holds no tokenizer (%s): generate will need --tokenizer FILE; pack with "
                "--tokenizer FILE to store it (tokenizer/tokenizer.json of Tongyi-MAI/Z-Image-Turbo on Hugging Face)\n",
                out, kind == ZT_SOURCE_COMFY ? "ComfyUI files carry none" : "the model has none");
    if (!quiet) {
        char b1[32], b2[32], b3[32];
        printf("packed %s -> %s: %s of unit images stored in %s (ratio %.3f, %s), file %s, %.1f s\n", model, out,
               zt_fmt_bytes(st.image_bytes, b1, sizeof b1), zt_fmt_bytes(st.stored_bytes, b2, sizeof b2),
               st.stored_bytes ? (double)st.image_bytes / (double)st.stored_bytes : 0.0,
               po.wcode ? (po.zstd_level ? "coded weights, zstd" : "coded weights") : po.zstd_level ? "zstd" : "uncompressed",
               zt_fmt_bytes(st.file_bytes, b3, sizeof b3), st.seconds);
        if (n_loras)
            printf("merged %d LoRA file%s into %d weight matrices in %.3f s\n", n_loras, n_loras > 1 ? "s" : "", merged,
                   merge_s);
    }
    if (verify) {
        progress_state vs = {.tty = !quiet && isatty(STDERR_FILENO), .t0 = zt_now(), .what = "verifying"};
        if (zt_store_verify(out, on_progress, &vs, &e)) return cli_fail(&e);
        if (!quiet) printf("verified %s: every extent, chunk and checksum is intact (%.1f s)\n", out, zt_now() - vs.t0);
    }
    return ZT_EXIT_OK;
}
