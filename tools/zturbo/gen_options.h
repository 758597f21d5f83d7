/* tools/zturbo/gen_options.h — the options of `zturbo generate` and
 * `zturbo plan`: one table (each entry says which of the two take it), one
 * parser, one resolution into zturbo_options, so the plan printed is the
 * plan generate makes with the same line, and both require and word things
 * the same way. */
#ifndef ZT_CLI_GEN_OPTIONS_H
#define ZT_CLI_GEN_OPTIONS_H

#include "api/zturbo.h"
#include "tools/zturbo/options.h"

enum {
    G_MODEL, G_PROMPT, G_OUTPUT, G_PROMPTS, G_PROMPTS_JSONL, G_COUNT, G_WIDTH, G_HEIGHT, G_STEPS, G_SEED, G_RNG, G_NOISE,
    G_LORA, G_DEVICE, G_PRECISION, G_VAE_PRECISION, G_VAE_DECODE, G_LINK_BW, G_THREADS, G_DUMP, G_TOKENIZER, G_IDS,
    G_INIT_IMAGE, G_STRENGTH, G_MASK, G_MASK_INVERT, G_CONTROL, G_CONTROL_MODEL, G_CONTROL_SCALE, G_IMAGES,
    G_VRAM, G_PINNED, G_STORE, G_WEIGHTS, G_WINDOW, G_PREFETCH, G_THROTTLE, G_CONTEXT, G_DISK_BW, G_STATS,
    G_LEND, G_COPY_STREAMS, G_PIECE_BUFFER, G_NORM_VARIANT, G_LOAD_THREADS, G_IO, G_VAE_BANDS,
    G_JSON, G_PRINT_CONFIG, G_VERBOSE, G_QUIET, G_N
};

#define GEN_SCOPE_GENERATE 1u
#define GEN_SCOPE_PLAN 2u

extern const cli_option k_gen_opts[G_N];

/* After cli_parse: the checks both commands make (combinations, -m given,
 * the device present, --vae-bands, --lora, --strength and --control-scale
 * values; v[G_STRENGTH].d and v[G_CONTROL_SCALE].d set), the "auto" values
 * resolved in v (device, VAE precision, threads) and zo filled (zo->loras
 * points at storage of this module: one resolution at a time). `serve`
 * takes a subset of the table (its entries copied by index) and resolves
 * through this too. 0 or the exit code of a usage error. */
int gen_resolve(const cli_spec *sp, cli_value *v, zturbo_options *zo);

#endif
