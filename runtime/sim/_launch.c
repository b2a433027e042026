/*
 * The simulator's launch threads in C (docs/simulated-device.md "Launch path").
 *
 * A CPU-kernel launch runs block_dim real OS threads at once.  Handing each
 * block to a Python thread cost a GIL handoff per thread per launch, which
 * dominated every run; here the threads are pthreads parked on a futex, the
 * stream worker hands them a job and waits on a futex with the op timeout,
 * without the GIL.  Python keeps every decision (timeouts, poison, stuck
 * threads): this file only starts, counts and reports.
 *
 * No allocation per launch: a SimLaunch is reused launch after launch by its
 * stream, and a SimThread by its pool, until one is left behind by a kernel
 * that ignored the abort word.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct Block { /* SimplerCpuLaunch (runtime/include/simpler_abi.h) */
    uint32_t block_idx;
    uint32_t block_dim;
    uint64_t abort;
} Block;

typedef int32_t (*KernelFn)(void *args, const Block *launch);

typedef struct SimLaunch {
    _Atomic uint32_t left;  /* threads of the current launch not yet returned (futex) */
    _Atomic uint32_t abort; /* the abort word the kernels poll */
    uint32_t capacity;
    uint32_t block_dim;
    KernelFn fn;
    void *args;
    int32_t *results;
    _Atomic uint32_t *finished;
    Block *blocks;
} SimLaunch;

typedef struct SimThread {
    _Atomic uint32_t seq; /* bumped for each job and for stop (futex) */
    _Atomic uint32_t stop;
    SimLaunch *_Atomic job;
    uint32_t index;
    struct SimThread *next; /* the next thread of the job: this one wakes it (a cascade) */
    int pinned;             /* started on its creator's CPU: restore `allowed` first */
    cpu_set_t allowed;      /* the creator's CPU mask */
} SimThread;

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts) {
    return syscall(SYS_futex, (uint32_t *)word, op, val, ts, NULL, 0);
}

static void *thread_main(void *raw) {
    SimThread *t = raw;
    uint32_t seen = 0;
    if (t->pinned) sched_setaffinity(0, sizeof t->allowed, &t->allowed);
    for (;;) {
        uint32_t s;
        while ((s = atomic_load_explicit(&t->seq, memory_order_acquire)) == seen)
            futex(&t->seq, FUTEX_WAIT_PRIVATE, seen, NULL);
        seen = s;
        SimLaunch *l = atomic_exchange_explicit(&t->job, NULL, memory_order_acquire);
        if (l) {
            const uint32_t i = t->index;
            if (t->next) futex(&t->next->seq, FUTEX_WAKE_PRIVATE, 1, NULL);
            l->results[i] = l->fn(l->args, &l->blocks[i]);
            atomic_store_explicit(&l->finished[i], 1, memory_order_release);
            if (atomic_fetch_sub_explicit(&l->left, 1, memory_order_acq_rel) == 1)
                futex(&l->left, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
        }
        if (atomic_load_explicit(&t->stop, memory_order_acquire)) {
            free(t);
            return NULL;
        }
    }
}

/*
 * A new thread starts on its creator's CPU, then takes the creator's mask back.  The kernel
 * places a new thread on the least loaded CPU, and right after `import numpy` that is the
 * one where numpy's BLAS worker spins: a new thread has no claim to preempt it and waits out
 * its slice (milliseconds).  The creator is about to block on the launch, so its CPU is the
 * one that frees up.  docs/simulated-device.md "Waiting".
 */
static void start_on_this_cpu(SimThread *t, pthread_attr_t *attr) {
    const int cpu = sched_getcpu();
    if (cpu < 0 || sched_getaffinity(0, sizeof t->allowed, &t->allowed) != 0) return;
    cpu_set_t here;
    CPU_ZERO(&here);
    CPU_SET(cpu, &here);
    t->pinned = pthread_attr_setaffinity_np(attr, sizeof here, &here) == 0;
}

/* A parked launch thread (detached: a kernel that never returns cannot block exit); NULL on
 * failure. */
SimThread *simlaunch_thread_start(void) {
    SimThread *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    start_on_this_cpu(t, &attr);
    const int rc = pthread_create(&tid, &attr, thread_main, t);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(t);
        return NULL;
    }
    return t;
}

/* The thread exits once its current job (if any) returns, and frees itself: never touch `t`
 * again. */
void simlaunch_thread_stop(SimThread *t) {
    atomic_store_explicit(&t->stop, 1, memory_order_release);
    atomic_fetch_add_explicit(&t->seq, 1, memory_order_release);
    futex(&t->seq, FUTEX_WAKE_PRIVATE, 1, NULL);
}

SimLaunch *simlaunch_launch_new(uint32_t capacity) {
    SimLaunch *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->capacity = capacity;
    l->results = calloc(capacity, sizeof *l->results);
    l->finished = calloc(capacity, sizeof *l->finished);
    l->blocks = calloc(capacity, sizeof *l->blocks);
    if (!l->results || !l->finished || !l->blocks) {
        free(l->results);
        free((void *)l->finished);
        free(l->blocks);
        free(l);
        return NULL;
    }
    return l;
}

void simlaunch_launch_free(SimLaunch *l) {
    if (!l) return;
    free(l->results);
    free((void *)l->finished);
    free(l->blocks);
    free(l);
}

_Atomic uint32_t *simlaunch_launch_abort_word(SimLaunch *l) { return &l->abort; }

/* Hand block i of fn(args) to threads[i], all at once; returns at once. -1: too many blocks.
 * The abort word is the caller's to reset: a poison between that and this call must stick. */
int32_t simlaunch_launch_start(SimLaunch *l, SimThread **threads, KernelFn fn, void *args,
                            uint32_t block_dim) {
    if (block_dim == 0 || block_dim > l->capacity) return -1;
    l->fn = fn;
    l->args = args;
    l->block_dim = block_dim;
    for (uint32_t i = 0; i < block_dim; ++i) {
        l->results[i] = -1; /* a thread that never got to return counts as failed */
        atomic_store_explicit(&l->finished[i], 0, memory_order_relaxed);
        l->blocks[i].block_idx = i;
        l->blocks[i].block_dim = block_dim;
        l->blocks[i].abort = (uint64_t)(uintptr_t)&l->abort;
    }
    atomic_store_explicit(&l->left, block_dim, memory_order_release);
    /* Every thread gets its job now; the caller wakes the first and each woken thread wakes the
     * next before it runs: one wake-up on the caller's path, and all threads still start at
     * once (none waits for another's kernel). */
    for (uint32_t i = 0; i < block_dim; ++i) {
        SimThread *t = threads[i];
        t->index = i;
        t->next = i + 1 < block_dim ? threads[i + 1] : NULL;
        atomic_store_explicit(&t->job, l, memory_order_release);
        atomic_fetch_add_explicit(&t->seq, 1, memory_order_release);
    }
    futex(&threads[0]->seq, FUTEX_WAKE_PRIVATE, 1, NULL);
    return 0;
}

/* Wait up to `timeout` seconds for every thread of the launch; the number still running. */
uint32_t simlaunch_launch_wait(SimLaunch *l, double timeout) {
    struct timespec now, deadline;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const double whole = (double)(time_t)timeout;
    deadline.tv_sec = now.tv_sec + (time_t)timeout;
    deadline.tv_nsec = now.tv_nsec + (long)((timeout - whole) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
    }
    uint32_t left;
    while ((left = atomic_load_explicit(&l->left, memory_order_acquire)) != 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        struct timespec rest = {deadline.tv_sec - now.tv_sec, deadline.tv_nsec - now.tv_nsec};
        if (rest.tv_nsec < 0) {
            rest.tv_sec -= 1;
            rest.tv_nsec += 1000000000L;
        }
        if (rest.tv_sec < 0) return left;
        futex(&l->left, FUTEX_WAIT_PRIVATE, left, &rest);
    }
    return 0;
}

int32_t simlaunch_launch_result(const SimLaunch *l, uint32_t i) { return l->results[i]; }

uint32_t simlaunch_launch_finished(SimLaunch *l, uint32_t i) {
    return atomic_load_explicit(&l->finished[i], memory_order_acquire);
}
