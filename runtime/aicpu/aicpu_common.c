#define _GNU_SOURCE /* syscall(2), for simpler_wait.h */
#include "aicpu_common.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "simpler_wait.h"

#ifndef SIMPLER_AIV_CORES
#error "SIMPLER_AIV_CORES comes from the arch profile"
#endif
#ifndef SIMPLER_AIC_CORES
#error "SIMPLER_AIC_CORES comes from the arch profile"
#endif

int32_t simpler_common_init(void *args, const char *runtime_name) {
    if (args == 0) return SIMPLER_E_BAD_ARGS;
    SimplerInitArgs *info = (SimplerInitArgs *)(uintptr_t)(*(const uint64_t *)args);
    if (info == 0 || info->abi_version != SIMPLER_ABI_VERSION) return SIMPLER_E_BAD_ARGS;
    info->aiv_cores = SIMPLER_AIV_CORES;
    info->aic_cores = SIMPLER_AIC_CORES;
    memset(info->runtime_name, 0, sizeof info->runtime_name);
    strncpy(info->runtime_name, runtime_name, sizeof info->runtime_name - 1);
    return SIMPLER_OK;
}

/* The scheduler state one launch's threads share (AICPU-private, malloc'd by thread 0). */
typedef struct Sched {
    uint32_t n;
    uint32_t active;
    uint32_t *succ_begin; /* n + 1 */
    uint32_t *succ;
    _Atomic uint32_t *indeg;  /* n: predecessors not yet done     */
    _Atomic uint32_t *ready;  /* n slots: task + 1 once pushed, 0 before */
    _Atomic uint32_t head;    /* next slot to take                */
    _Atomic uint32_t tail;    /* next slot to push into           */
    _Atomic uint32_t order_next;
    _Atomic uint32_t status;  /* first failure wins (CAS from OK) */
    _Atomic uint32_t failed_task;
    _Atomic uint64_t aicore_launches;
    _Atomic uint32_t leaving; /* active threads done; the last one reports and frees */
    _Atomic uint32_t waiting; /* threads waiting for `tail` to move: a push wakes them */
    uint32_t num_edges;
} Sched;

#define SETUP_FAILED ((uint64_t)1) /* launch_scratch: thread 0 gave up, nothing to schedule */

/* Threads waiting for a ready task must see a push or a failure at once, not at the poll. */
static void wake_waiting(Sched *s) {
    if (atomic_load(&s->waiting) != 0) simpler_wake(&s->tail);
}

static void fail(Sched *s, uint32_t task, uint32_t status) {
    uint32_t ok = SIMPLER_OK;
    if (atomic_compare_exchange_strong(&s->status, &ok, status))
        atomic_store(&s->failed_task, task);
    wake_waiting(s);
}

static void push(Sched *s, uint32_t task) {
    const uint32_t slot = atomic_fetch_add(&s->tail, 1); /* seq_cst: ordered before `waiting` */
    atomic_store_explicit(&s->ready[slot], task + 1, memory_order_release);
    wake_waiting(s);
}

/* One task: its kernel once per core of its core type across its blocks. */
static uint32_t run_task(const SimplerExecArgs *args, uint32_t index) {
    const SimplerTask *task = (const SimplerTask *)(uintptr_t)args->tasks + index;
    const SimplerKernelFn *table = (const SimplerKernelFn *)(uintptr_t)args->kernels;
    if (task->kernel_id >= args->num_kernels || table[task->kernel_id] == 0)
        return SIMPLER_E_BAD_KERNEL;
    const SimplerKernelFn fn = table[task->kernel_id];
    const uint32_t blocks = task->block_dim ? task->block_dim : SIMPLER_AIC_CORES;
    const uint32_t cores = task->kernel_id == SIMPLER_K_MATMUL ? blocks : 2 * blocks;
    for (uint32_t c = 0; c < cores; ++c)
        if (fn(&task->args, c, cores) != SIMPLER_OK) return SIMPLER_E_KERNEL_FAILED;
    return SIMPLER_OK;
}

static void work(const SimplerExecArgs *args, Sched *s, const SimplerCpuLaunch *launch) {
    uint32_t *order = (uint32_t *)(uintptr_t)args->order;
    uint32_t round = 0; /* rounds of the current wait for a ready task */
    for (;;) {
        if (atomic_load_explicit(&s->status, memory_order_relaxed) != SIMPLER_OK) return;
        if (simpler_aborted(launch)) {
            fail(s, UINT32_MAX, SIMPLER_E_ABORTED);
            return;
        }
        uint32_t h = atomic_load(&s->head);
        if (h >= s->n) return; /* every task is taken; the takers finish them */
        const uint32_t tail = atomic_load(&s->tail);
        if (h >= tail) { /* nothing ready: wait for a push (or a failure) */
            atomic_fetch_add(&s->waiting, 1); /* seq_cst: a pusher after this sees it */
            simpler_wait_round(&s->tail, tail, &round);
            atomic_fetch_sub(&s->waiting, 1);
            continue;
        }
        if (!atomic_compare_exchange_weak(&s->head, &h, h + 1)) continue; /* lost the race */
        round = 0;
        uint32_t v, r = 0; /* the pusher bumped tail before writing the slot: it is coming */
        while ((v = atomic_load_explicit(&s->ready[h], memory_order_acquire)) == 0) {
            if (simpler_aborted(launch)) break;
            simpler_wait_round(&s->ready[h], 0, &r); /* a preempted pusher: the poll finds it */
        }
        if (v == 0) continue;
        const uint32_t t = v - 1;
        const uint32_t rc = run_task(args, t);
        if (rc != SIMPLER_OK) {
            fail(s, t, rc);
            return;
        }
        atomic_fetch_add(&s->aicore_launches, 1);
        if (order) order[atomic_fetch_add(&s->order_next, 1)] = t;
        for (uint32_t i = s->succ_begin[t]; i < s->succ_begin[t + 1]; ++i)
            if (atomic_fetch_sub(&s->indeg[s->succ[i]], 1) == 1) push(s, s->succ[i]);
    }
}

static void sched_free(Sched *s) {
    if (!s) return;
    free(s->succ_begin);
    free(s->succ);
    free((void *)s->indeg);
    free((void *)s->ready);
    free(s);
}

/* Successor CSR, indegrees and the roots from the predecessor CSR; BAD_GRAPH on a cycle. */
static uint32_t build(Sched *s, const SimplerPreds *p, uint32_t *failed) {
    const uint32_t n = s->n, edges = p->begin[n];
    s->num_edges = edges;
    s->succ_begin = calloc((size_t)n + 1, sizeof *s->succ_begin);
    s->succ = malloc((size_t)(edges ? edges : 1) * sizeof *s->succ);
    s->indeg = calloc(n, sizeof *s->indeg);
    s->ready = calloc(n, sizeof *s->ready);
    uint32_t *fill = calloc((size_t)n + 1, sizeof *fill);
    uint32_t *queue = malloc((size_t)n * sizeof *queue);
    uint32_t *left = malloc((size_t)n * sizeof *left);
    uint32_t rc = SIMPLER_OK;
    if (!s->succ_begin || !s->succ || !s->indeg || !s->ready || !fill || !queue || !left) {
        rc = SIMPLER_E_NO_MEMORY;
        goto out;
    }
    for (uint32_t j = 0; j < n; ++j)
        for (uint32_t e = p->begin[j]; e < p->begin[j + 1]; ++e) {
            const uint32_t i = p->pred[e];
            if (i >= n || i == j) {
                *failed = j;
                rc = SIMPLER_E_BAD_GRAPH;
                goto out;
            }
            s->succ_begin[i + 1] += 1;
        }
    for (uint32_t i = 0; i < n; ++i) s->succ_begin[i + 1] += s->succ_begin[i];
    for (uint32_t j = 0; j < n; ++j) {
        const uint32_t deg = p->begin[j + 1] - p->begin[j];
        atomic_init(&s->indeg[j], deg);
        left[j] = deg;
        for (uint32_t e = p->begin[j]; e < p->begin[j + 1]; ++e) {
            const uint32_t i = p->pred[e];
            s->succ[s->succ_begin[i] + fill[i]++] = j;
        }
    }
    /* A graph whose every task cannot run would leave the threads waiting forever: refuse it. */
    uint32_t head = 0, tail = 0;
    for (uint32_t j = 0; j < n; ++j)
        if (left[j] == 0) queue[tail++] = j;
    while (head < tail) {
        const uint32_t t = queue[head++];
        for (uint32_t i = s->succ_begin[t]; i < s->succ_begin[t + 1]; ++i)
            if (--left[s->succ[i]] == 0) queue[tail++] = s->succ[i];
    }
    if (tail != n) {
        rc = SIMPLER_E_BAD_GRAPH;
        goto out;
    }
    for (uint32_t j = 0; j < n; ++j)
        if (p->begin[j + 1] == p->begin[j]) push(s, j);
out:
    free(fill);
    free(queue);
    free(left);
    return rc;
}

static void report(const SimplerExecArgs *args, uint32_t status, uint32_t failed,
                   uint64_t launches, uint32_t edges, uint32_t threads) {
    SimplerExecState *st = (SimplerExecState *)(uintptr_t)args->state;
    st->status = status;
    st->failed_task = failed;
    st->aicore_launches = launches;
    st->num_edges = edges;
    st->threads = threads;
    atomic_store_explicit((_Atomic uint32_t *)&st->epoch, args->epoch, memory_order_release);
    /* The AICore side may leave now. */
    atomic_store_explicit((_Atomic uint32_t *)&st->aicpu_done, args->epoch, memory_order_release);
    simpler_wake(&st->aicpu_done);
}

/* Whether the AICore side of this run is up; 0 once the device aborted the launch. */
static int aicore_up(const SimplerExecArgs *args, const SimplerCpuLaunch *launch) {
    SimplerExecState *st = (SimplerExecState *)(uintptr_t)args->state;
    return simpler_wait_for((_Atomic uint32_t *)&st->aicore_ready, args->epoch, launch);
}

int32_t simpler_sched_exec(void *raw, const SimplerCpuLaunch *launch, SimplerPredsFn preds) {
    SimplerExecArgs *args = (SimplerExecArgs *)raw;
    if (args == 0 || launch == 0 || args->magic != SIMPLER_GRAPH_MAGIC ||
        args->abi_version != SIMPLER_ABI_VERSION || args->state == 0 || args->epoch == 0)
        return SIMPLER_E_BAD_ARGS;
    uint32_t active = args->active_threads;
    if (active == 0 || active > launch->block_dim) active = launch->block_dim;
    if (launch->block_idx >= active) return SIMPLER_OK; /* a launch thread the run does not use */
    _Atomic uint64_t *scratch = (_Atomic uint64_t *)&args->launch_scratch;

    if (launch->block_idx == 0) {
        if (!aicore_up(args, launch)) return SIMPLER_OK; /* aborted: the device reports it */
        uint32_t failed = UINT32_MAX, rc = SIMPLER_OK;
        Sched *s = 0;
        SimplerPreds p = {0, 0};
        if (args->kernels == 0 || (args->num_tasks != 0 && args->tasks == 0)) rc = SIMPLER_E_BAD_ARGS;
        else if (args->num_tasks != 0) rc = (uint32_t)preds(args, &p, &failed);
        if (rc == SIMPLER_OK && args->num_tasks != 0) {
            s = calloc(1, sizeof *s);
            if (!s) rc = SIMPLER_E_NO_MEMORY;
            else {
                s->n = args->num_tasks;
                s->active = active;
                rc = build(s, &p, &failed);
            }
        }
        free(p.begin);
        free(p.pred);
        if (rc != SIMPLER_OK || args->num_tasks == 0) {
            const uint32_t edges = s ? s->num_edges : 0;
            sched_free(s);
            report(args, rc, failed, 0, edges, 1);
            atomic_store_explicit(scratch, SETUP_FAILED, memory_order_release);
            simpler_wake(scratch);
            return SIMPLER_OK;
        }
        atomic_store_explicit(scratch, (uint64_t)(uintptr_t)s, memory_order_release);
        simpler_wake(scratch);
    }
    uint64_t word;
    uint32_t round = 0;
    while ((word = atomic_load_explicit(scratch, memory_order_acquire)) == 0) {
        /* thread 0 never published: nothing is shared */
        if (simpler_aborted(launch)) return SIMPLER_OK;
        simpler_wait_round(scratch, 0, &round); /* the low half: 0 until published */
    }
    if (word == SETUP_FAILED) return SIMPLER_OK;
    Sched *s = (Sched *)(uintptr_t)word;
    work(args, s, launch);
    if (atomic_fetch_add(&s->leaving, 1) + 1 == s->active) {
        const uint32_t status = atomic_load(&s->status);
        report(args, status, status == SIMPLER_OK ? UINT32_MAX : atomic_load(&s->failed_task),
               atomic_load(&s->aicore_launches), s->num_edges, s->active);
        sched_free(s);
    }
    return SIMPLER_OK;
}
