/*
 * aicpu_build_graph: the host sends the tasks in program order with no
 * dependencies; the AICPU derives them itself from buffer hazards (a later
 * task that reads what an earlier one writes, or writes what it reads or
 * writes); the scheduler threads then run it as they do the host's graph
 * (aicpu_common.c).
 */
#include <stdint.h>
#include <stdlib.h>

#include "aicpu_common.h"

typedef struct {
    uint64_t lo, hi; /* [lo, hi) byte range; lo == hi means unused */
} Range;

static Range range_of(uint64_t addr, uint64_t elems) {
    Range r = {addr, addr + elems * sizeof(float)};
    if (addr == 0) r.hi = r.lo;
    return r;
}

static int overlaps(Range a, Range b) {
    return a.lo < a.hi && b.lo < b.hi && a.lo < b.hi && b.lo < a.hi;
}

static void task_ranges(const SimplerTask *t, Range *r0, Range *r1, Range *w) {
    const SimplerKernelArgs *a = &t->args;
    if (t->kernel_id == SIMPLER_K_MATMUL) {
        *r0 = range_of(a->in0, (uint64_t)a->m * a->k);
        *r1 = range_of(a->in1, (uint64_t)a->k * a->n);
        *w = range_of(a->out, (uint64_t)a->m * a->n);
    } else {
        *r0 = range_of(a->in0, a->n);
        *r1 = t->kernel_id == SIMPLER_K_VEC_ADDS ? range_of(0, 0) : range_of(a->in1, a->n);
        *w = range_of(a->out, a->n);
    }
}

/* True when task j (later) must wait for task i (earlier). */
static int depends(const SimplerTask *i, const SimplerTask *j) {
    Range ir0, ir1, iw, jr0, jr1, jw;
    task_ranges(i, &ir0, &ir1, &iw);
    task_ranges(j, &jr0, &jr1, &jw);
    return overlaps(iw, jr0) || overlaps(iw, jr1) || overlaps(iw, jw) /* RAW, WAW */
           || overlaps(ir0, jw) || overlaps(ir1, jw);                 /* WAR */
}

/* Derived predecessors: every earlier task with a hazard on this one, in index order. */
static int32_t derived_preds(const SimplerExecArgs *args, SimplerPreds *out, uint32_t *failed) {
    (void)failed;
    const uint32_t n = args->num_tasks;
    const SimplerTask *tasks = (const SimplerTask *)(uintptr_t)args->tasks;
    size_t cap = 64, e = 0;
    out->begin = malloc(((size_t)n + 1) * sizeof *out->begin);
    out->pred = malloc(cap * sizeof *out->pred);
    if (!out->begin || !out->pred) return SIMPLER_E_NO_MEMORY;
    for (uint32_t j = 0; j < n; ++j) {
        out->begin[j] = (uint32_t)e;
        for (uint32_t i = 0; i < j; ++i) {
            if (!depends(&tasks[i], &tasks[j])) continue;
            if (e == cap) {
                uint32_t *grown = realloc(out->pred, 2 * cap * sizeof *grown);
                if (!grown) return SIMPLER_E_NO_MEMORY;
                out->pred = grown;
                cap *= 2;
            }
            out->pred[e++] = i;
        }
    }
    out->begin[n] = (uint32_t)e;
    return SIMPLER_OK;
}

SIMPLER_EXPORT int32_t simpler_aicpu_init(void *args, const SimplerCpuLaunch *launch) {
    (void)launch;
    return simpler_common_init(args, "aicpu_build_graph");
}

SIMPLER_EXPORT int32_t simpler_aicpu_exec(void *args, const SimplerCpuLaunch *launch) {
    return simpler_sched_exec(args, launch, derived_preds);
}
