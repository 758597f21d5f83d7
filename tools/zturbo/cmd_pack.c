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
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/lora.h"
#include "api/tokenizer.h"
#include "storage/source.h"
#include "storage/store.h"
#include "tools/zturbo/cli.h"

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

static void usage(FILE *f) {
    fprintf(f,
            "usage: zturbo pack MODEL_DIR -o STORE [--weights coded|bf16] [--zstd LEVEL | --no-compress]\n"
            "                   [--threads N] [--chunk SIZE] [--tokenizer FILE] [--verify] [--lora FILE[:SCALE]]... [-q]\n"
            "\n"
            "Pack a Hugging Face snapshot folder (or ComfyUI files, or an existing store) into a\n"
            "zturbo block store, which holds the weights, the configs and the tokenizer.\n"
            "  -o, --output STORE   the store file to write (replaced atomically; never left partial)\n"
            "  --weights coded      code the transformer, text-encoder and VAE units losslessly (~0.68 of\n"
            "                       the bf16 bytes; decoded on the GPU) (default)\n"
            "  --weights bf16       store them as bf16 images (zstd or plain, as below)\n"
            "  --zstd LEVEL         zstd level 1..22 per 4 MiB chunk, bf16 byte planes (default 1), for\n"
            "                       what is not coded\n"
            "  --no-compress        store the unit images as they are (fastest to read)\n"
            "  --threads N          compression threads (default: CPUs, at most 16)\n"
            "  --chunk SIZE         chunk size, a power of two in [64K, 256M] (default 4M)\n"
            "  --tokenizer FILE     the tokenizer.json to store (default: the model's own; ComfyUI\n"
            "                       files have none: Tongyi-MAI/Z-Image-Turbo's tokenizer/tokenizer.json)\n"
            "  --verify             re-read the written store and check every byte\n"
            "  --lora FILE[:SCALE]  merge a LoRA into the stored weights (repeatable; as generate --lora:\n"
            "                       a store packed with LoRAs serves merged units at no cost per use)\n"
            "  -q, --quiet          no progress and no summary\n");
}

int cmd_pack(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"zstd", required_argument, NULL, 'z'},
        {"no-compress", no_argument, NULL, 'n'},  {"threads", required_argument, NULL, 't'},
        {"chunk", required_argument, NULL, 'c'},  {"verify", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {"weights", required_argument, NULL, 'w'},
        {"lora", required_argument, NULL, 'l'},
        {"tokenizer", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *tokenizer = NULL;
    int level = 1, verify = 0, quiet = 0, threads = 0, saw_zstd = 0, saw_raw = 0, wcode = 1;
    uint64_t chunk = 0;
    zt_err e = {0};
    static char lora_path[ZT_LORA_MAX_FILES][4096];
    zt_lora_spec loras[ZT_LORA_MAX_FILES];
    int n_loras = 0;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1;) {
        char *end;
        switch (c) {
        case 'o': out = optarg; break;
        case 'z':
            level = (int)strtol(optarg, &end, 10);
            if (*end || level < 1 || level > 22) return cli_usage_error("pack", "--zstd: '%s' is not a level 1..22", optarg);
            saw_zstd = 1;
            break;
        case 'n': saw_raw = 1; break;
        case 'w':
            if (!strcmp(optarg, "coded")) wcode = 1;
            else if (!strcmp(optarg, "bf16")) wcode = 0;
            else return cli_usage_error("pack", "--weights: '%s' is not coded or bf16", optarg);
            break;
        case 't':
            threads = (int)strtol(optarg, &end, 10);
            if (*end || threads < 1 || threads > 256)
                return cli_usage_error("pack", "--threads: '%s' is not a count 1..256", optarg);
            break;
        case 'c':
            if (zt_parse_size(optarg, "--chunk", &chunk, &e)) return cli_usage_error("pack", "%s", e.msg);
            break;
        case 'v': verify = 1; break;
        case 'k': tokenizer = optarg; break;
        case 'l':
            if (n_loras == ZT_LORA_MAX_FILES) return cli_usage_error("pack", "--lora given more than %d times", ZT_LORA_MAX_FILES);
            if (zt_lora_parse_arg(optarg, lora_path[n_loras], sizeof lora_path[n_loras], &loras[n_loras].scale, &e))
                return cli_usage_error("pack", "%s", e.msg);
            loras[n_loras].path = lora_path[n_loras];
            n_loras++;
            break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return ZT_EXIT_OK;
        default: usage(stderr); return ZT_EXIT_USAGE;
        }
    }
    if (saw_zstd && saw_raw) return cli_usage_error("pack", "--zstd and --no-compress exclude each other");
    if (optind != argc - 1) {
        usage(stderr);
        return cli_usage_error("pack", optind >= argc ? "missing MODEL_DIR" : "one MODEL_DIR expected");
    }
    if (!out) return cli_usage_error("pack", "missing -o STORE");
    if (chunk > UINT32_MAX) return cli_usage_error("pack", "--chunk: too large");
    const char *model = argv[optind];

    /* --tokenizer: checked to be a tokenizer this engine loads, then stored */
    zt_store_file_in tok_file = {ZT_STORE_FILE_TOKENIZER, NULL, 0};
    char *tok_json = NULL;
    if (tokenizer) {
        FILE *f = fopen(tokenizer, "rb");
        long n = -1;
        if (f && !fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET) &&
            (uint64_t)n <= ZT_STORE_FILE_MAX && (tok_json = malloc(n ? (size_t)n : 1)) &&
            fread(tok_json, 1, (size_t)n, f) == (size_t)n) {
            tok_file.data = tok_json;
            tok_file.size = (uint64_t)n;
        }
        if (f) fclose(f);
        if (!tok_file.data) {
            free(tok_json);
            zt_err_set(&e, ZT_ERR_IO, "--tokenizer %s: cannot read it whole (a file of at most %u MiB)", tokenizer,
                       ZT_STORE_FILE_MAX >> 20);
            return cli_fail(&e);
        }
        zt_tokenizer *tok;
        if (zt_tokenizer_load_mem(tok_json, (size_t)tok_file.size, tokenizer, &tok, &e)) {
            free(tok_json);
            return cli_fail(&e);
        }
        zt_tokenizer_free(tok);
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

    zt_pack_opts po = {.wcode = wcode, .zstd_level = saw_raw ? 0 : level, .threads = threads, .chunk_bytes = (uint32_t)chunk,
                       .cancel = &g_cancel, .files = tokenizer ? &tok_file : NULL, .n_files = tokenizer ? 1 : 0};

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    progress_state ps = {.tty = !quiet && isatty(STDERR_FILENO), .t0 = zt_now(), .what = "packing"};
    zt_pack_stats st = {0};
    int rc = zt_store_pack(src, out, &po, on_progress, &ps, &st, &e);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    const double merge_s = zt_lora_merger_seconds(merger);
    const int merged = zt_lora_merger_tensors(merger);
    zt_source_kind kind = zt_source_kind_of(src);
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
               po.wcode ? (po.zstd_level ? "coded weights, zstd" : "coded weights") : po.zstd_level ? "zstd" : "uncompressed", zt_fmt_bytes(st.file_bytes, b3, sizeof b3), st.seconds);
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
