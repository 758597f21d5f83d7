/* sched/plan.h — the residency plan: a pure function from plain data
 * (units with their bytes and use counts, the device budget, host limits,
 * bandwidths, compute estimates) to plain data (which unit stays on the
 * device, which host tier each streamed unit lives in, how many window
 * slots of what size, the prefetch depth, the predicted bus traffic and step
 * time). No I/O, no GPU: every decision can be tested on a laptop.
 *
 * Model of execution (design.md):
 *   - Three phases run one after the other: text encoding (te.layers.*),
 *     denoising (dit.* per step) and decoding (vae.decoder). The activation
 *     workspace is one region sized for the largest phase.
 *   - A unit is either RESIDENT (copied to the device once, stays there) or
 *     STREAMED through a ring of `n_slots` equal window slots: while the
 *     compute stream works on slot k, the copy stream fills the next
 *     `prefetch` slots. Streamed units live in pinned host memory (tier
 *     PINNED) or are read from the block store on every use (tier DISK, via
 *     a pinned staging ring of `staging_bytes`).
 *   - Priority for residency: units used on every DiT evaluation first (they
 *     cost bus time every step), then the VAE, then per-image units (text
 *     encoder layers, context refiner). Within a class, earlier units first.
 *   - Steady-state time of one DiT evaluation with prefetch >= 1: the
 *     copy/compute timeline simulated over the per-step units (a copy waits
 *     for the link and for its slot's previous tenant to finish computing; a
 *     unit computes after its copy landed), which lies between
 *     max(compute, pinned_bytes / link_bw) and their sum; at least
 *     disk_bytes / disk_bw; at prefetch 0 the plain sum (no overlap).
 *   - Prefetch depth: 1 (two slots) unless overridden, or deeper (up to 3)
 *     when that simulated step is more than 1% faster at the budget
 *     (zt_plan_policy names these numbers).
 *   - Lending: the denoising loop uses only the front of the workspace; the
 *     last `lend_bytes` of it (sized for the VAE) are idle then. Streamed
 *     per-step units with pinned host images that fit there become LENT:
 *     copied once per image instead of once per step (the VAE overwrites
 *     them afterwards). They count as resident in the step simulation and
 *     once per image in image_bus_bytes. The plan lends only when the
 *     simulated steps gain more than those copies cost at the link rate.
 *   - Coded weights (storage/wcode.h; decode_bw > 0): a unit with a coded
 *     form (coded_bytes > 0) crosses the bus and lives in host memory coded,
 *     and is decoded on a decode stream into its slot while the copy stream
 *     goes on: a streamed use costs coded_bytes / link_bw on the copy
 *     timeline, lands one piece's decode after its last copy, and costs the
 *     compute timeline decode_contention x bytes / decode_bw (the decoder
 *     shares the SMs). It may
 *     also stay on the device coded (RESIDENT_CODED: coded_bytes in the
 *     resident arena, decoded into a slot at each use: bytes / decode_bw on
 *     the copy timeline, no bus). Coded units coming from the host go
 *     through a device piece buffer (`cstage_bytes`: the image's directory
 *     and a run of its chunks at a time). The planner tries, in residency
 *     order, the first r candidates decoded-resident and the rest coded-
 *     resident where they fit (r from all to none) and keeps the fastest
 *     simulated step (ties: more units decoded). With bf16_transport it also
 *     tries moving the last b per-step units (in residency order) as bf16
 *     (b from none to all, kept when more than 0.1% faster and the pinned
 *     budget holds their bf16 images): where the step is bound by compute,
 *     the bus has room for bf16 and the SMs are spared the decode.
 *
 * zt_plan_make is the residency planner for one workspace. zt_plan_choose
 * is the whole policy on top of it, the one function a pipeline calls: it
 * turns what the pipeline measured (context, link rate, the transformer's
 * cost model, the two ways to decode the VAE with their workspace, idle
 * tail, host memory and host traffic) into the planner's input with the
 * constants of zt_plan_policy, plans each VAE alternative the options allow
 * and keeps the one predicted faster per image.
 */
#ifndef ZT_SCHED_PLAN_H
#define ZT_SCHED_PLAN_H

#include <stdint.h>

#include "common/zt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { ZT_PHASE_TEXT = 0, ZT_PHASE_DIT = 1, ZT_PHASE_VAE = 2, ZT_PHASE_COUNT } zt_phase;
/* LENT: a per-step DiT unit copied to the device once per image, into the
 * tail of the workspace that the denoising loop leaves idle (the rest of a
 * whole-image VAE decode's scratch), and used there on every step. */
/* RESIDENT_CODED: on the device in coded form (coded weights), decoded into a
 * window slot before each use. */
typedef enum {
    ZT_RES_STREAMED = 0,
    ZT_RES_RESIDENT = 1,
    ZT_RES_HOST = 2,
    ZT_RES_LENT = 3,
    ZT_RES_RESIDENT_CODED = 4,
} zt_residency;
typedef enum { ZT_TIER_NONE = 0, ZT_TIER_PINNED = 1, ZT_TIER_DISK = 2 } zt_host_tier;

/* The constants of the policy, named (zt_plan_policy_default sets them). */
typedef struct {
    double gpu_flops;          /* sustained FLOP/s of a GPU on a transformer block: 6.0e14 predicts the
                                  H100's resident 0.0965 s per 1024² evaluation (wgmma attention) */
    double cpu_flops;          /* the same on the CPU backend: 5.0e10 */
    int caption_tokens;        /* caption length the compute estimate assumes: a ~100-token prompt
                                  padded to 128 (the workspace is sized for the longest, 512) */
    uint64_t context_headroom; /* on top of the measured CUDA context: what the driver allocates
                                  lazily after planning (kernel local memory, module loads): 96 MiB */
    double link_bw;            /* host->device bytes/s when neither given nor measured: 25e9 (PCIe 4 x16) */
    double disk_bw;            /* store read bytes/s when not given: 2e9 */
    int prefetch;              /* prefetch depth unless the simulation prefers a deeper one: 1 */
    int prefetch_max;          /* the deepest prefetch the plan tries on its own: 3 */
    double deeper_factor;      /* a deeper prefetch is taken when its simulated step is below this
                                  fraction of the best so far: 0.99 (more than 1% faster) */
    int staging_slots;         /* the DISK-tier staging ring, in slots (reads run ahead): 4 */
    /* coded weights (storage/wcode.h) */
    double decode_mem_fraction; /* decoded bf16 bytes/s assumed on a GPU, as a fraction of its memory
                                  bandwidth: 0.36 (the decoder touches ~3.35 bytes per 2 bytes it writes:
                                  0.36 is 60% of the memory bandwidth; measure with kbench wdecode) */
    double decode_bw_gpu;      /* when the card's memory bandwidth is unknown (a simulated GPU): 1.5e12 */
    double decode_bw_cpu;      /* the CPU backend's host decoder: 1e9 */
    double coded_ratio;        /* coded / bf16 bytes assumed before the weights are coded (zturbo plan on a
                                  snapshot): 0.68 (0.679 measured on mkmodel's weights, bin/wcode-stats) */
    double decode_contention;  /* the compute stream's loss per second of decode (the decoder runs on the
                                  SMs beside it): 1.5 (H200, 8G, bound by compute: 17 streamed coded blocks
                                  cost 5.3 ms per evaluation against 3.5 ms of decode at the assumed rate) */
} zt_plan_policy;

void zt_plan_policy_default(zt_plan_policy *p);

typedef struct {
    const char *name;     /* unit name (catalog) */
    zt_phase phase;
    uint64_t bytes;       /* byte image size */
    int uses_per_image;   /* DiT per-step units: steps; others 1 */
    int always_resident;  /* small units every phase needs (dit.globals...) */
    int host_only;        /* never on the device (te.embed) */
    double compute_s;     /* estimated compute seconds per use (0 if unknown) */
    uint64_t coded_bytes; /* size of its coded image (storage/wcode.h); 0: no coded form */
} zt_plan_unit;

typedef struct {
    uint64_t vram_budget;      /* whole device footprint allowed, context included */
    uint64_t context_bytes;    /* measured CUDA context + library overhead */
    uint64_t workspace_bytes;  /* activations + op scratch of the largest phase */
    uint64_t pinned_budget;    /* pinned host memory for PINNED-tier weights (--pinned); the
                                  staging ring for DISK reads comes on top. UINT64_MAX = unlimited */
    int have_store;            /* 1 if a block store can serve DISK-tier units */
    double link_bw;            /* host->device bytes/s (pinned) */
    double disk_bw;            /* store read bytes/s (after decode) */
    int steps;                 /* DiT evaluations per image */
    int window_override;       /* --window N: slots (0 = plan decides) */
    int prefetch_override;     /* --prefetch N (-1 = plan decides) */
    uint64_t staging_bytes;    /* pinned staging ring for DISK-tier reads (0 = plan decides) */
    uint64_t lend_bytes;       /* the workspace's tail, idle while the DiT steps run (0: none) */
    const zt_plan_policy *policy; /* NULL: zt_plan_policy_default */
    double decode_bw;          /* coded weights: bf16 bytes/s the device decodes; 0: every unit moves as bf16 */
    uint64_t piece_bytes;      /* coded weights: the device piece ring's bytes (0: ZT_PLAN_PIECE_DEFAULT) */
    int bf16_transport;        /* coded weights: a streamed per-step unit may move as bf16 instead (its
                                  bf16 image is at hand without decoding: the model is a snapshot or
                                  checkpoint), chosen where the simulated step is faster */
} zt_plan_input;

/* Device piece buffer for coded units from the host: two directory heads
 * (ZT_PLAN_PIECE_HEAD each: consecutive units alternate, so a unit's copies
 * start while the previous one still decodes) + a ring of chunk runs of up
 * to piece_bytes (the copy stream runs that far ahead of the decodes). */
#define ZT_PLAN_PIECE_DEFAULT (32ull << 20)
#define ZT_PLAN_PIECE_MIN (4ull << 20)
#define ZT_PLAN_PIECE_MAX (1ull << 30)
#define ZT_PLAN_PIECE_HEAD (64ull << 10)
#define ZT_PLAN_PIECE_HEADS 2

typedef struct {
    zt_residency residency;
    zt_host_tier tier;         /* for streamed units */
    zt_phase phase;            /* the unit's phase (as given): lent units are valid from the start of a
                                  phase of theirs until a phase of another kind begins */
    uint64_t device_offset;    /* offset in the resident arena (resident units) or in the lent
                                  region (lent units) */
    int coded;                 /* 1: the unit moves (and, RESIDENT_CODED, stays) coded: its host image
                                  is the coded one */
} zt_plan_unit_choice;

typedef struct {
    int n_units;
    zt_plan_unit_choice *units;   /* [n_units], same order as the input */
    int n_slots;                  /* window slots (0 when everything is resident) */
    uint64_t slot_bytes;          /* size of one slot */
    int prefetch;                 /* units copied ahead of compute */
    uint64_t resident_bytes;      /* device arena for resident units */
    uint64_t window_bytes;        /* n_slots * slot_bytes */
    uint64_t cstage_bytes;        /* device piece buffer for coded units from the host (0: none) */
    int n_coded_resident;         /* units kept on the device coded */
    uint64_t workspace_bytes;
    uint64_t lent_offset;         /* where the lent units start in the workspace */
    uint64_t lent_bytes;          /* their bytes (from lent_offset on) */
    int n_lent;
    uint64_t device_total;        /* context + resident + window + cstage + workspace */
    uint64_t pinned_bytes;        /* pinned host memory: PINNED-tier units + staging ring */
    uint64_t staging_bytes;
    /* predictions for one DiT evaluation (steady state) */
    uint64_t step_bus_bytes;      /* bytes copied host->device per evaluation (coded where coded) */
    uint64_t step_decode_bytes;   /* bf16 bytes decoded per evaluation (coded units streamed or coded-resident) */
    uint64_t step_disk_bytes;     /* of which read from the store */
    double step_compute_s;
    double step_time_s;
    /* per image, text encoder + VAE streaming */
    uint64_t image_bus_bytes;
    int all_resident;
    char note[256];               /* what the planner had to give up, if anything */
} zt_plan;

/* Compute the plan. Fails with ZT_ERR_NOMEM and a one-line reason (naming the
 * budget, what it must hold and the minimum that would work) when nothing
 * fits, or ZT_ERR_ARG for inconsistent input. `out->units` is allocated
 * (free with zt_plan_free). */
int zt_plan_make(const zt_plan_unit *units, int n_units, const zt_plan_input *in, zt_plan *out, zt_err *e);
void zt_plan_free(zt_plan *p);
/* The smallest vram_budget for which zt_plan_make succeeds with this input. */
uint64_t zt_plan_min_budget(const zt_plan_unit *units, int n_units, const zt_plan_input *in);

/* ---- the policy: one request in, one plan out ---- */

/* How the VAE decodes: AUTO takes the whole-image decode unless it does not
 * fit or the banded one (the largest activations in host memory, freeing
 * device memory for resident transformer blocks) is predicted faster per
 * image; DEVICE / BANDED force one. */
typedef enum { ZT_VAE_DECODE_AUTO = 0, ZT_VAE_DECODE_DEVICE = 1, ZT_VAE_DECODE_BANDED = 2 } zt_vae_decode_mode;
enum { ZT_PLAN_VAE_WHOLE = 0, ZT_PLAN_VAE_BANDED = 1 };

/* One way to decode the VAE, as the pipeline measured it for the planned image. */
typedef struct {
    uint64_t workspace_bytes;  /* the activation workspace with this decode (largest phase) */
    uint64_t lend_bytes;       /* its tail, idle while the denoising loop runs (0: nothing to lend) */
    uint64_t host_bytes;       /* host activation memory of the decode (0: all on the device) */
    double host_traffic;       /* bytes per image the decode moves between host and device */
} zt_plan_vae;

typedef struct {
    /* the budget and the user's overrides (as in zt_plan_input) */
    uint64_t vram_budget;      /* 0: no budget: everything resident, activations allocated per image
                                  (the plan's workspace is 0) */
    uint64_t pinned_budget;
    int have_store;
    int steps;
    int window_override, prefetch_override;
    /* the device, as measured (0: not measured) or given (0: not given) */
    int gpu;                   /* the plan is for a GPU (the CUDA backend) */
    uint64_t context_measured; /* device bytes in use before planning; + policy headroom */
    uint64_t context_override; /* assume this context instead (a simulated GPU when not gpu) */
    double link_bw;            /* given host->device bytes/s, wins over the measured one */
    double link_measured;
    double throttle_bw;        /* copies are capped at this rate (test knob; 0: off) */
    double disk_bw;            /* given store read rate */
    /* the transformer's cost model: one use of a per-step unit costs
     * S * flops_token + S^2 * flops_pair FLOPs, S = image_tokens + the
     * policy's caption_tokens (0, 0: keep the units' compute_s) */
    double flops_token, flops_pair;
    int image_tokens;
    /* the VAE */
    zt_vae_decode_mode vae_decode;
    zt_plan_vae vae[2];        /* [ZT_PLAN_VAE_WHOLE], [ZT_PLAN_VAE_BANDED] */
    int lend;                  /* 1: lend the whole-image decode's idle tail to per-step units; 0: never */
    /* coded weights: units with coded_bytes move coded when `coded`; the
     * decode rate is decode_bw when given, else the policy's assumption
     * (a fraction of mem_bw, the card's memory bandwidth, when known) */
    int coded;
    double decode_bw, mem_bw;
    uint64_t piece_bytes;      /* the piece ring (0: ZT_PLAN_PIECE_DEFAULT) */
    int bf16_transport;        /* as zt_plan_input */
} zt_plan_request;

/* The plan for a request: *in receives the planner input it was made with
 * (context, rates, workspace: what a printer shows), *vae_choice which VAE
 * alternative it uses (ZT_PLAN_VAE_*). Errors as zt_plan_make (when neither
 * VAE alternative fits, the banded one's minimum is the one reported). */
int zt_plan_choose(const zt_plan_unit *units, int n_units, const zt_plan_request *rq, const zt_plan_policy *pol,
                   zt_plan *out, zt_plan_input *in, int *vae_choice, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
