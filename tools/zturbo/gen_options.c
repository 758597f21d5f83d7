/* tools/zturbo/gen_options.c — the shared option table of `zturbo generate`
 * and `zturbo plan` (gen_options.h). */
#include "tools/zturbo/gen_options.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/lora.h"
#include "tools/zturbo/cli.h"

#define G GEN_SCOPE_GENERATE
#define P GEN_SCOPE_PLAN
#define STR_(x) #x
#define STR(x) STR_(x)

const cli_option k_gen_opts[G_N] = {
    [G_MODEL] = {"--model", "-m", CLI_STRING, "MODEL",
                 .help = "Hugging Face snapshot folder, zturbo block store, or ComfyUI\n"
                         "files (z_image_turbo_bf16.safetensors, qwen_3_4b.safetensors,\n"
                         "ae.safetensors: one of them, their folder or models/)",
                 .comfy = "the files of UNETLoader, CLIPLoader and VAELoader"},
    [G_PROMPT] = {"--prompt", "-p", CLI_STRING, "TEXT", .scope = G,
                  .help = "the prompt, UTF-8 (chat template applied; first " STR(ZTURBO_MAX_TOKENS) " tokens used)",
                  .comfy = "CLIPTextEncode text"},
    [G_OUTPUT] = {"--output", "-o", CLI_STRING, "FILE.png", .scope = G,
                  .help = "PNG to write (a temporary name, then a rename: never half-written;\n"
                          "the name must end in .png; an existing symbolic link, folder or\n"
                          "device is refused). A pattern: %d (or %03d...) is the image index\n"
                          "from 0, also for one image; with several images and no %, the\n"
                          "index goes before .png (out.png -> out-0.png, out-1.png)",
                  .comfy = "SaveImage filename_prefix"},
    [G_PROMPTS] = {"--prompts", NULL, CLI_STRING, "FILE", .scope = G,
                   .help = "one prompt per line (empty lines skipped; - reads stdin; at most\n"
                           "64 MiB), model loaded once; a failed line is reported, the\n"
                           "run goes on and exits 1"},
    [G_PROMPTS_JSONL] = {"--prompts-jsonl", NULL, CLI_STRING, "FILE", .scope = G,
                         .help = "one JSON string, or {\"prompt\": ...} with optional \"width\",\n"
                                 "\"height\", \"steps\", \"seed\", \"rng\", \"loras\", \"init_image\",\n"
                                 "\"mask\", \"strength\", \"control\", \"control_scale\" overriding\n"
                                 "the flags, per line"},
    [G_COUNT] = {"--count", "-n", CLI_INT, "N", 1, 10000, .def = "1", .scope = G,
                 .help = "images per prompt, 1..10000 (seeds SEED, SEED+1, ...)",
                 .comfy = "EmptySD3LatentImage batch_size"},
    [G_WIDTH] = {"--width", "-W", CLI_INT, "N", ZTURBO_SIZE_MIN, ZTURBO_SIZE_MAX, ZTURBO_SIZE_MULTIPLE, .def = "1024",
                 .help = "image width, a multiple of 16 in 16..2048", .comfy = "EmptySD3LatentImage width"},
    [G_HEIGHT] = {"--height", "-H", CLI_INT, "N", ZTURBO_SIZE_MIN, ZTURBO_SIZE_MAX, ZTURBO_SIZE_MULTIPLE, .def = "1024",
                  .help = "image height, a multiple of 16 in 16..2048", .comfy = "EmptySD3LatentImage height"},
    [G_STEPS] = {"--steps", NULL, CLI_INT, "N", 1, ZTURBO_STEPS_MAX, .def = "8",
                 .help = "transformer evaluations, 1..100", .comfy = "KSampler steps"},
    [G_SEED] = {"--seed", "-s", CLI_SEED, "N", .def_help = "random, printed at the start", .scope = G,
                .help = "noise seed, 0..18446744073709551615, or -1: random (drawn\n"
                        "below 2^53); image i gets SEED+i",
                .comfy = "KSampler seed"},
    [G_RNG] = {"--rng", NULL, CLI_ENUM, "torch-cpu|zturbo", .choices = "torch-cpu|zturbo", .def = "torch-cpu", .scope = G,
               .help = "generator of the seed's noise: torch-cpu draws what diffusers\n"
                       "(CPU generator) and ComfyUI draw for the seed; zturbo: its\n"
                       "own generator (what zturbo drew before --rng existed)"},
    [G_NOISE] = {"--noise", NULL, CLI_STRING, "FILE", .scope = G,
                 .help = "initial latent instead of the seed: safetensors F32 \"noise\"\n"
                         "[16, H/8, W/8] or raw little-endian f32 (finite values)"},
    [G_LORA] = {"--lora", NULL, CLI_STRING, "FILE[:SCALE]", .scope = G, .repeat = 1,
                .help = "LoRA file merged into the weights at load (diffusers/PEFT,\n"
                        "kohya, ComfyUI, ai-toolkit...), strength SCALE (1); repeatable\n"
                        "(up to 16)",
                .comfy = "LoraLoaderModelOnly lora_name, strength_model"},
    [G_DEVICE] = {"--device", NULL, CLI_ENUM, "cpu|cuda", .choices = "cpu|cuda",
                  .def_help = "cuda when a GPU is present, else cpu", .help = "backend"},
    [G_PRECISION] = {"--precision", NULL, CLI_ENUM, "bf16|f32|fp16", .choices = "bf16|f32|fp16",
                     .def_help = "bf16; fp16 on a card without bf16 (compute capability 7.5)",
                     .help = "text encoder + transformer activations (f32 runs on the\nCPU backend only; fp16: "
                             "the path for cards without bf16;\nplan: its workspace, VAE precision and weights)"},
    [G_VAE_PRECISION] = {"--vae-precision", NULL, CLI_ENUM, "f32|bf16", .choices = "f32|bf16",
                         .def_help = "bf16 on cuda, as diffusers; f32 on cpu, as the official code, and with fp16",
                         .help = "VAE activations"},
    [G_VAE_DECODE] = {"--vae-decode", NULL, CLI_ENUM, "auto|device|banded", .choices = "auto|device|banded",
                      .def = "auto",
                      .help = "with --vram: decode whole images on the device, or in row bands\n"
                              "with the largest activations in host memory (less VRAM, more\n"
                              "bus traffic); auto picks what the plan predicts faster"},
    [G_LINK_BW] = {"--link-bw", NULL, CLI_REAL, "GBPS", 0, 10000, .def_help = "measured at start on a GPU, else 25",
                   .help = "host->device GB/s (10^9 bytes/s) the plan predicts with\n(PCIe 4 x16: 25, 5: 50)"},
    [G_THREADS] = {"--threads", NULL, CLI_INT, "N", 1, 1024, .def_help = "all cores",
                   .help = "CPU backend worker threads, 1..1024"},
    [G_DUMP] = {"--dump", NULL, CLI_STRING, "FILE", .scope = G,
                .help = "write the intermediates (tools/ref FORMAT) to a safetensors file\n"
                        "(with --prompts-jsonl/--count: one %d, a file per image)"},
    [G_TOKENIZER] = {"--tokenizer", NULL, CLI_STRING, "FILE", .scope = G, .def_help = "MODEL/tokenizer/tokenizer.json",
                     .help = "tokenizer.json (ComfyUI files carry none)"},
    [G_IDS] = {"--ids", NULL, CLI_STRING, "LIST", .scope = G,
               .help = "comma-separated token ids of the formatted prompt (bypasses\n"
                       "the tokenizer; for comparisons with the oracle)"},
    [G_INIT_IMAGE] = {"--init-image", NULL, CLI_STRING, "FILE", .scope = G, .section = "images in (README \"Images in\"):",
                      .help = "img2img from this PNG/JPEG (ZImageImg2ImgPipeline); without\n"
                              "--width/--height the output takes its size rounded down to 16"},
    [G_STRENGTH] = {"--strength", NULL, CLI_STRING, "S", .scope = G, .def_help = "0.6; 1.0 with --mask",
                    .help = "with --init-image: the part of the schedule that runs, (0, 1]"},
    [G_MASK] = {"--mask", NULL, CLI_STRING, "FILE", .scope = G,
                .help = "with --init-image: inpainting (ZImageInpaintPipeline); white =\n"
                        "repaint, black = keep; the init image's size"},
    [G_MASK_INVERT] = {"--mask-invert", NULL, CLI_FLAG, .scope = G,
                       .help = "with --mask: black repaints, white keeps (A1111's\n"
                               "inpainting_mask_invert)"},
    [G_CONTROL] = {"--control", NULL, CLI_STRING, "FILE", .scope = G,
                   .help = "ControlNet: a ready-made control image (canny, depth, pose...\n"
                           "map), resized to the output; with --init-image and --mask:\n"
                           "ControlNet inpainting (README \"ControlNet\")"},
    [G_CONTROL_MODEL] = {"--control-model", NULL, CLI_STRING, "PATH",
                         .help = "the ControlNet-Union: a diffusers folder or a released\n"
                                 ".safetensors (Z-Image-Turbo-Fun-Controlnet-Union 1.0/2.0/2.1);\n"
                                 "plan: plan with its units (image inputs too)"},
    [G_CONTROL_SCALE] = {"--control-scale", NULL, CLI_STRING, "S", .def = "0.75", .scope = G,
                         .help = "controlnet_conditioning_scale, -1000..1000"},
    [G_IMAGES] = {"--images", NULL, CLI_ENUM, "on|off", .choices = "on|off", .def = "off", .scope = P,
                  .help = "plan for image inputs (generate --init-image: the VAE encoder)"},
    [G_VRAM] = {"--vram", NULL, CLI_SIZE, "SIZE", 1 << 20, .def_help = "everything resident, no budget",
                .help = "device memory the process may use, CUDA context included;\n"
                        "K, M, G, T are 1024-based (8G = 8GB = 8GiB), a unit is required",
                .section = "streaming (the whole model runs inside a fixed device budget):"},
    [G_PINNED] = {"--pinned", NULL, CLI_SIZE, "SIZE", .def_help = "no limit",
                  .help = "pinned host memory for streamed weights; what does not fit\nis read from --store on every use"},
    [G_STORE] = {"--store", NULL, CLI_STRING, "FILE", .help = "zturbo block store (zturbo pack) to read weights from"},
    [G_WEIGHTS] = {"--weights", NULL, CLI_ENUM, "coded|bf16", .choices = "coded|bf16", .def = "coded",
                   .help = "with --vram: weights in host memory and on the bus coded losslessly\n"
                           "(~0.68 of the bytes, decoded on the GPU), or bf16 as they are;\n"
                           "plan: on a snapshot the coded sizes are estimated at 0.68, a\n"
                           "coded store gives them exactly"},
    [G_WINDOW] = {"--window", NULL, CLI_INT, "N", 1, 16, .def_help = "prefetch + 1", .help = "window slots, 1..16"},
    [G_PREFETCH] = {"--prefetch", NULL, CLI_INT, "N", 0, 8, .def_help = "1, or 2..3 where the plan predicts it faster",
                    .help = "units copied ahead of compute, 0..8"},
    [G_THROTTLE] = {"--throttle", NULL, CLI_REAL, "GB/s", 0, 10000, .hidden = 1, .scope = G, .help = "test knob: cap copies"},
    [G_CONTEXT] = {"--context", NULL, CLI_SIZE, "SIZE", .scope = P, .def_help = "measured on a GPU",
                   .help = "assume this CUDA context size instead of measuring it"},
    [G_DISK_BW] = {"--disk-bw", NULL, CLI_REAL, "GBPS", 0, 10000, .scope = P, .def_help = "2",
                   .help = "store read GB/s the plan predicts with"},
    [G_STATS] = {"--stats", NULL, CLI_FLAG, .scope = G,
                 .help = "print bytes moved, copy, stall and disk time of the denoising loop"},
    [G_LEND] = {"--lend", NULL, CLI_ENUM, "on|off", .choices = "on|off", .def = "on",
                .section = "tuning (the defaults are the measured best; other values are for comparisons):",
                .help = "with --vram: streamed transformer blocks may use the whole-image\n"
                        "VAE decode's idle workspace during the steps"},
    [G_COPY_STREAMS] = {"--copy-streams", NULL, CLI_INT, "N", 1, 2, .def = "1", .scope = G,
                        .help = "2: split each streamed copy over two copy streams"},
    [G_PIECE_BUFFER] = {"--piece-buffer", NULL, CLI_SIZE, "SIZE", 4 << 20, .def_help = "32M",
                        .help = "with coded weights under --vram: the device ring the coded\n"
                                "pieces cross on their way to the decoder, 4M..1G (larger: the\n"
                                "copies run further ahead of the decodes)"},
    [G_NORM_VARIANT] = {"--norm-variant", NULL, CLI_INT, "N", 0, 4, .def = "3", .scope = G,
                        .help = "CUDA row-norm launch variant, 0..4 (kernels/cuda_norm.cu)"},
    [G_LOAD_THREADS] = {"--load-threads", NULL, CLI_INT, "N", 1, 8, .def_help = "min(8, cores)", .scope = G,
                        .help = "readers per unit loading a checkpoint, 1..8 (1: one reader,\n"
                                "no readahead advice)"},
    [G_IO] = {"--io", NULL, CLI_ENUM, "auto|uring|pread", .choices = "auto|uring|pread", .def = "auto", .scope = G,
              .help = "store reads: io_uring (else pread threads), io_uring only, or\npread threads"},
    [G_VAE_BANDS] = {"--vae-bands", NULL, CLI_STRING, "LEVEL,ROWS", .def_help = "the plan decides",
                     .help = "decode the VAE levels from LEVEL (1..16) on in bands of ROWS\n"
                             "(1..65536) rows from host memory, whatever the plan"},
    [G_JSON] = {"--json", NULL, CLI_FLAG, .section = "output:",
                .help = "generate: one JSON object per image on stdout (seed, timings,\n"
                        "tokens, bytes moved, peak memory, the plan when streaming);\n"
                        "plan: the plan as one JSON object. Nothing else on stdout"},
    [G_PRINT_CONFIG] = {"--print-config", NULL, CLI_FLAG, .scope = G,
                        .help = "print the resolved options (the plan's choices with --vram)\nand exit"},
    [G_VERBOSE] = {"--verbose", "-v", CLI_FLAG,
                   .help = "generate: the plan, and timings per phase and image;\nplan: one line per unit"},
    [G_QUIET] = {"--quiet", "-q", CLI_FLAG, .scope = G, .help = "print nothing but errors (no progress)"},
};

int gen_resolve(const cli_spec *sp, cli_value *v, zturbo_options *zo) {
    const char *cmd = sp->cmd;
    if (!v[G_MODEL].set) return cli_missing(sp, G_MODEL);
    if (v[G_QUIET].set && v[G_VERBOSE].set) return cli_usage_error(cmd, "-q and -v exclude each other");
    if ((v[G_WINDOW].set || v[G_PREFETCH].set || v[G_STORE].set || v[G_PINNED].set || v[G_THROTTLE].set) &&
        !v[G_VRAM].set)
        return cli_usage_error(cmd, "--window/--prefetch/--store/--pinned/--throttle need --vram SIZE");
    /* the "auto" values, resolved as zturbo_create resolves them */
    if (!v[G_DEVICE].set)
        v[G_DEVICE] = (cli_value){.set = CLI_RESOLVED, .s = zturbo_cuda_available() ? "cuda" : "cpu",
                                  .note = zturbo_cuda_available() ? "a GPU is present" : "no usable GPU"};
    const int cuda = !strcmp(v[G_DEVICE].s, "cuda");
    if (cuda && !zturbo_cuda_available()) {
        const char *why = cli_cuda_missing();
        return cli_usage_error(cmd, "--device cuda: %s (use --device cpu)", why ? why : "no usable CUDA device");
    }
    if (cuda && v[G_PRECISION].s && !strcmp(v[G_PRECISION].s, "f32"))
        return cli_usage_error(cmd, "--precision f32 runs on the CPU backend only: add --device cpu");
    if (!v[G_PRECISION].set)
        v[G_PRECISION] = (cli_value){.set = CLI_RESOLVED, .s = cuda && !zturbo_cuda_has_bf16(0) ? "fp16" : "bf16"};
    const int fp16 = v[G_PRECISION].s && !strcmp(v[G_PRECISION].s, "fp16");
    if (!v[G_VAE_PRECISION].set)
        v[G_VAE_PRECISION] = (cli_value){.set = CLI_RESOLVED, .s = cuda && !fp16 ? "bf16" : "f32"};
    /* coded weights decode to bf16: the fp16 path reads bf16 weights (f16 once read) */
    if (!v[G_WEIGHTS].set && fp16) v[G_WEIGHTS] = (cli_value){.set = CLI_RESOLVED, .s = "bf16"};
    if (!v[G_THREADS].set && !cuda) {
        const long n = sysconf(_SC_NPROCESSORS_ONLN);
        v[G_THREADS] = (cli_value){.set = CLI_RESOLVED, .i = n < 1 ? 1 : n > 1024 ? 1024 : n, .note = "all cores"};
    }
    if (!v[G_PINNED].set) v[G_PINNED].u = UINT64_MAX;
    int band_level = 0, band_rows = 0, rc;
    if (v[G_VAE_BANDS].set && (rc = cli_parse_bands(cmd, v[G_VAE_BANDS].s, &band_level, &band_rows))) return rc;
    /* LoRAs: "FILE[:SCALE]" (the files are read at load: every one checked first) */
    static char lora_path[CLI_MAX_REPEAT][4096];
    static zturbo_lora loras[CLI_MAX_REPEAT];
    _Static_assert(CLI_MAX_REPEAT <= ZTURBO_MAX_LORAS, "every --lora given fits zturbo_options");
    for (int i = 0; i < v[G_LORA].n; i++) {
        zt_err le = {0};
        if (zt_lora_parse_arg(v[G_LORA].list[i], lora_path[i], sizeof lora_path[i], &loras[i].scale, &le))
            return cli_usage_error(cmd, "%s", le.msg);
        loras[i].path = lora_path[i];
    }

    if (sp->scope == GEN_SCOPE_GENERATE) {
        if (v[G_CONTROL].set && !v[G_CONTROL_MODEL].set)
            return cli_usage_error(cmd, "--control needs --control-model PATH (the ControlNet)");
        if (v[G_CONTROL].set && v[G_STRENGTH].set)
            return cli_usage_error(cmd, "--strength is not used with --control (ControlNet inpainting runs the whole "
                                        "schedule)");
        /* -1000..1000, negative allowed, and (0, 1]: both ends matter, so parsed here */
        char *end = NULL;
        v[G_CONTROL_SCALE].d = strtod(v[G_CONTROL_SCALE].s, &end);
        if (end == v[G_CONTROL_SCALE].s || *end || !(fabs(v[G_CONTROL_SCALE].d) <= 1000))
            return cli_usage_error(cmd, "--control-scale '%s' not allowed: expected a number in -1000..1000",
                                   v[G_CONTROL_SCALE].s);
        if (v[G_STRENGTH].set) {
            v[G_STRENGTH].d = strtod(v[G_STRENGTH].s, &end);
            if (end == v[G_STRENGTH].s || *end || !(v[G_STRENGTH].d > 0 && v[G_STRENGTH].d <= 1))
                return cli_usage_error(cmd, "--strength '%s' not allowed: expected a number in (0, 1]", v[G_STRENGTH].s);
        }
    }
    if (v[G_CONTROL_MODEL].set && v[G_STORE].set)
        return cli_usage_error(cmd, "--control-model with --store: not supported (a store holds the model's units "
                                    "only)");

    zturbo_options_default(zo);
    zo->model_path = v[G_MODEL].s;
    zo->device = cuda ? ZTURBO_DEVICE_CUDA : ZTURBO_DEVICE_CPU;
    zo->vram = v[G_VRAM].set ? v[G_VRAM].u : 0;
    zo->pinned = v[G_PINNED].u;
    zo->store = v[G_STORE].s;
    zo->window = v[G_WINDOW].set ? (int)v[G_WINDOW].i : 0;
    zo->prefetch = v[G_PREFETCH].set ? (int)v[G_PREFETCH].i : -1;
    zo->throttle_bw = v[G_THROTTLE].set ? v[G_THROTTLE].d * 1e9 : 0;
    zo->link_bw = v[G_LINK_BW].set ? v[G_LINK_BW].d * 1e9 : 0;
    zo->vae_decode = !strcmp(v[G_VAE_DECODE].s, "device") ? 1 : !strcmp(v[G_VAE_DECODE].s, "banded") ? 2 : 0;
    zo->threads = v[G_THREADS].set ? (int)v[G_THREADS].i : 0;
    zo->tokenizer_path = v[G_TOKENIZER].s;
    zo->loras = v[G_LORA].n ? loras : NULL;
    zo->n_loras = v[G_LORA].n;
    zo->weights = !strcmp(v[G_WEIGHTS].s, "bf16") ? ZTURBO_WEIGHTS_BF16 : ZTURBO_WEIGHTS_CODED;
    zo->lend = !strcmp(v[G_LEND].s, "on");
    zo->copy_streams = (int)v[G_COPY_STREAMS].i;
    zo->piece_buffer = v[G_PIECE_BUFFER].set ? v[G_PIECE_BUFFER].u : 0;
    zo->norm_variant = (int)v[G_NORM_VARIANT].i;
    zo->load_threads = v[G_LOAD_THREADS].set ? (int)v[G_LOAD_THREADS].i : 0;
    zo->io = !strcmp(v[G_IO].s, "uring") ? ZTURBO_IO_URING : !strcmp(v[G_IO].s, "pread") ? ZTURBO_IO_PREAD : ZTURBO_IO_AUTO;
    zo->vae_band_level = band_level;
    zo->vae_band_rows = band_rows;
    zo->control_model = v[G_CONTROL_MODEL].s;
    zo->images_in = v[G_IMAGES].s && !strcmp(v[G_IMAGES].s, "on");
    zo->max_width = (int)v[G_WIDTH].i;
    zo->max_height = (int)v[G_HEIGHT].i;
    zo->max_steps = (int)v[G_STEPS].i;
    zo->precision = !v[G_PRECISION].s                  ? ZTURBO_PRECISION_BF16
                    : !strcmp(v[G_PRECISION].s, "f32")  ? ZTURBO_PRECISION_F32
                    : !strcmp(v[G_PRECISION].s, "fp16") ? ZTURBO_PRECISION_F16
                                                        : ZTURBO_PRECISION_BF16;
#ifdef ZT_TEST_HOOKS
    /* test builds (bin/test-zturbo): the fp16 path without its guards, to show the overflow */
    const char *ung = getenv("ZT_F16_UNGUARDED");
    zo->f16_unguarded = ung && atoi(ung) != 0;
#endif
    zo->vae_precision = !strcmp(v[G_VAE_PRECISION].s, "f32") ? ZTURBO_PRECISION_F32 : ZTURBO_PRECISION_BF16;
    return 0;
}
