/* stream/stream.h — executes a residency plan (sched/plan.h): owns the
 * device memory classes (resident arena, window slots, activation
 * workspace: one allocation each), the pinned host tier, the copy stream and
 * the events, and hands unit byte images to model code through
 * acquire/release. It never knows what a DiT is: it sees units and a static
 * use order.
 *
 * Protocol (design.md invariant 3):
 *   ptr = zt_stream_acquire(st, unit)   the compute stream waits on the event
 *                                       "copy of this unit landed"; prefetch
 *                                       of the next `prefetch` streamed units
 *                                       of the use order is issued.
 *   ... enqueue ops reading ptr ...
 *   zt_stream_release(st, unit)         records "slot free" on the compute
 *                                       stream; the copy stream waits on it
 *                                       before it overwrites the slot.
 * Resident units: acquire returns their arena address, release is a no-op.
 *
 * Backends: with the CUDA backend slots live in device memory and copies are
 * cudaMemcpyAsync on a dedicated copy stream ordered with events. With the
 * CPU backend (CI, "simulated small device") slots are host buffers and a
 * copy is a memcpy at acquire time, so the same slot logic, budgets and
 * invariance tests run without a GPU.
 *
 * Host tiers: PINNED units are loaded once into one pinned arena; DISK units
 * are read from the block store on every use by an I/O thread that runs
 * ahead along the use order into a ring of pinned staging buffers. When the
 * store source is a transform (storage/source.h: LoRA merging), the I/O
 * thread applies it to each image it read, before the copy to the device.
 *
 * Coded weights (choice.coded, storage/wcode.h): the host image of such a
 * unit is its coded image, in the pinned arena or read coded from the store
 * into a stage (its header and tables validated there before anything
 * decodes it). Filling a slot then means, on the copy stream: the image's
 * directory and runs of its chunks copied through the device piece buffer
 * (plan.cstage_bytes), each run decoded into the slot (zt_op_wdecode).
 * RESIDENT_CODED units sit coded in the resident arena and are decoded into
 * a slot on the copy stream at each use, like a streamed unit without the
 * copy. Lent coded units are decoded into the lent region. The host never
 * decodes on the CUDA backend; the CPU backend decodes on the host where
 * the CUDA backend copies.
 */
#ifndef ZT_STREAM_STREAM_H
#define ZT_STREAM_STREAM_H

#include <stdint.h>

#include "common/zt_common.h"
#include "kernels/ops.h"
#include "sched/plan.h"
#include "storage/catalog.h"
#include "storage/reader.h"
#include "storage/source.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zt_stream zt_stream;

typedef struct {
    double throttle_bw;    /* hidden test knob: cap host->device copies at this many bytes/s (0 = off) */
    int verify_checksums;  /* store reads: verify extent checksums (default 1) */
    uint64_t host_scratch_bytes; /* host activation memory (pinned when allowed) for the banded VAE; 0: none */
    int copy_streams;      /* 1 (default) or 2: each streamed copy of 8 MiB or more split in halves over two
                              copy streams (two copy engines; measured neutral on an H100 under load) */
    zt_io_engine io_engine; /* store reads: AUTO (io_uring, else pread threads), URING (fail without), PREAD */
    struct zt_coded_host *coded_host; /* coded weights (stream/coded_host.h): the coded images of the units the
                                         plan moves coded (choice.coded); the stream releases each once loaded */
} zt_stream_options;

/* The defaults: checksums verified, one copy stream, io_uring when available. */
void zt_stream_options_default(zt_stream_options *o);

/* Per-phase counters since the last zt_stream_stats_reset. Times are host
 * wall-clock measured with events where the backend has them. */
typedef struct {
    uint64_t bytes_h2d;      /* bytes copied host -> device (streamed units) */
    uint64_t bytes_disk;     /* bytes read from the store */
    uint64_t copies;         /* unit copies issued */
    double copy_s;           /* time the copy stream was busy */
    double stall_s;          /* time acquire waited for a copy on the host */
    double disk_s;           /* time the I/O thread spent reading */
} zt_stream_stats;

/* Build the execution state for `plan` over `cat`'s units (the plan's units
 * are in catalog order). Loads resident units to the device and PINNED units
 * into pinned host memory from `src`; `store` (may be NULL) serves DISK-tier
 * units. All device memory is allocated here; none afterwards. */
int zt_stream_create(zt_ops *ops, const zt_catalog *cat, zt_source *src, zt_source *store, const zt_plan *plan,
                     const zt_stream_options *opt, zt_stream **out, zt_err *e);
void zt_stream_destroy(zt_stream *st);

/* The activation workspace (plan.workspace_bytes, 256-B aligned, backend memory). */
void *zt_stream_workspace(zt_stream *st);
/* Host activation memory (opt->host_scratch_bytes; NULL when 0): pinned
 * unless pinning was refused (zt_stream_notice says so). */
void *zt_stream_host_scratch(zt_stream *st);
/* What degraded when the stream was made, in one line ("" when nothing):
 * pinning refused for a host arena (pageable copies are slower), io_uring
 * or O_DIRECT unavailable for the store (pread / buffered reads instead). */
const char *zt_stream_notice(zt_stream *st);
uint64_t zt_stream_workspace_bytes(const zt_stream *st);

/* The static use order of the phase about to run (unit indices). When
 * `repeat` > 1 the order repeats that many times (DiT steps) and prefetch
 * wraps from the end of one repetition into the start of the next. */
int zt_stream_begin_phase(zt_stream *st, const int *order, int n, int repeat, zt_err *e);
const void *zt_stream_acquire(zt_stream *st, int unit);
void zt_stream_release(zt_stream *st, int unit);
/* Wait for outstanding copies/reads of the phase (end of phase, errors). */
int zt_stream_end_phase(zt_stream *st, zt_err *e);

/* Read unit `unit` again from the sources into its home (device-resident
 * memory through a staging buffer, or its pinned host image; lent units
 * are copied again at the next image; disk-tier units are read on every
 * use anyway). Between phases only (no phase running). For LoRA switches:
 * the sources' transforms (storage/source.h) see the new LoRA set. */
int zt_stream_reload_unit(zt_stream *st, int unit, zt_err *e);

void zt_stream_stats_get(const zt_stream *st, zt_stream_stats *out);
void zt_stream_stats_reset(zt_stream *st);
/* Device bytes this stream allocated (resident + window + workspace). */
uint64_t zt_stream_device_bytes(const zt_stream *st);
/* First deferred error (e.g. a checksum mismatch found by the I/O thread):
 * ZT_OK or its code, message in *e. Model code checks it at phase end. */
int zt_stream_error(zt_stream *st, zt_err *e);

#ifdef __cplusplus
}
#endif
#endif
