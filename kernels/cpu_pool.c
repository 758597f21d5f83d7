/* kernels/cpu_pool.c — parallel-for over spawned-and-joined threads (see
 * cpu_pool.h for the contract). */
#include "kernels/cpu_pool.h"

#include <pthread.h>
#include <stdatomic.h>

#include "common/zt_common.h"

#define ZT_CPU_MAX_WORKERS 256

typedef struct {
    zt_cpu_task_fn fn;
    void *ctx;
    int64_t n_tasks;
    atomic_int_fast64_t next;
} zt_cpu_job;

typedef struct {
    zt_cpu_job *job;
    int worker;
} zt_cpu_worker_arg;

static void zt_cpu_job_drain(zt_cpu_job *job, int worker) {
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (t >= job->n_tasks) return;
        job->fn(job->ctx, t, worker);
    }
}

static void *zt_cpu_worker_main(void *p) {
    zt_cpu_worker_arg *a = p;
    zt_cpu_job_drain(a->job, a->worker);
    return NULL;
}

void zt_cpu_parallel_for(int threads, int64_t n_tasks, zt_cpu_task_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    int64_t nw = threads < 1 ? 1 : threads;
    if (nw > n_tasks) nw = n_tasks;
    if (nw > ZT_CPU_MAX_WORKERS) nw = ZT_CPU_MAX_WORKERS;
    if (nw == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    zt_cpu_job job = {.fn = fn, .ctx = ctx, .n_tasks = n_tasks};
    atomic_init(&job.next, 0);
    pthread_t tid[ZT_CPU_MAX_WORKERS];
    zt_cpu_worker_arg args[ZT_CPU_MAX_WORKERS];
    int started[ZT_CPU_MAX_WORKERS] = {0};
    pthread_attr_t attr;
    int have_attr = pthread_attr_init(&attr) == 0;
    if (have_attr) pthread_attr_setstacksize(&attr, ZT_CPU_WORKER_STACK);
    for (int i = 1; i < nw; i++) {
        args[i].job = &job;
        args[i].worker = i;
        started[i] = pthread_create(&tid[i], have_attr ? &attr : NULL, zt_cpu_worker_main, &args[i]) == 0;
    }
    if (have_attr) pthread_attr_destroy(&attr);
    zt_cpu_job_drain(&job, 0);
    for (int i = 1; i < nw; i++)
        if (started[i]) ZT_ASSERT(pthread_join(tid[i], NULL) == 0);
}
