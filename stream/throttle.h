/* stream/throttle.h — the hidden link-throttle test knob: makes a copy on a
 * CUDA stream take at least bytes / bw seconds, so slow links (PCIe 4 x8,
 * Thunderbolt eGPUs ~3 GB/s) can be studied on a fast machine. A 1-thread
 * kernel records the device clock before the copy; another spins after the
 * copy until the wanted duration has passed. Each occupies one SM slot
 * briefly; compute on other SMs is not slowed. */
#ifndef ZT_STREAM_THROTTLE_H
#define ZT_STREAM_THROTTLE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* t0: device scratch, 8 bytes. stream: cudaStream_t. */
void zt_throttle_mark(void *stream, uint64_t *t0);
void zt_throttle_wait(void *stream, const uint64_t *t0, double seconds);

#ifdef __cplusplus
}
#endif
#endif
