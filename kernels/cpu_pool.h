/* kernels/cpu_pool.h — the parallel-for of the CPU backend.
 *
 * zt_cpu_parallel_for runs fn(ctx, task, worker) for every task in
 * [0, n_tasks) on up to `threads` workers and returns when all are done.
 * The calling thread is worker 0; the others are threads started for this
 * call and joined before it returns (no pool state survives a call, so any
 * number of zt_ops contexts may run ops concurrently from any thread).
 * Tasks are handed out dynamically (an atomic counter), so which worker runs
 * which task is not deterministic: results must not depend on it, and a
 * task may only use the per-worker scratch of the `worker` index it gets
 * (worker < min(threads, n_tasks)). Ops call it only for work large enough
 * to amortise a thread start (tens of microseconds).
 * If a thread cannot be started the remaining workers take its share. */
#ifndef ZT_KERNELS_CPU_POOL_H
#define ZT_KERNELS_CPU_POOL_H

#include <stdint.h>

typedef void (*zt_cpu_task_fn)(void *ctx, int64_t task, int worker);

void zt_cpu_parallel_for(int threads, int64_t n_tasks, zt_cpu_task_fn fn, void *ctx);

/* Stack size of the worker threads: the GEMM keeps its packed panels on the
 * stack (kernels/cpu_matmul.c, about 200 KiB). */
#define ZT_CPU_WORKER_STACK (4u << 20)

#endif
