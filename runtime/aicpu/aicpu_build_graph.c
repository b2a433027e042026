/*
 * aicpu_build_graph: the host sends the tasks in program order with no
 * dependencies; the AICPU derives them itself from buffer hazards (a later
 * task that reads what an earlier one writes, or writes what it reads or
 * writes) and runs the graph wave by wave: every task whose predecessors
 * are done runs in the same wave, as the AICPU would hand a wave to all cores.
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

SIMPLER_EXPORT int32_t simpler_aicpu_init(SimplerInitArgs *args) {
    return simpler_common_init(args, "aicpu_build_graph");
}

SIMPLER_EXPORT int32_t simpler_aicpu_exec(SimplerExecArgs *args) {
    int32_t rc = simpler_common_check(args);
    if (rc != SIMPLER_OK) return rc;
    const uint32_t n = args->num_tasks;
    if (n == 0) return SIMPLER_OK;
    const SimplerTask *tasks = (const SimplerTask *)(uintptr_t)args->tasks;
    uint32_t *order = (uint32_t *)(uintptr_t)args->order;

    /* wave[j] = 1 + max wave of its predecessors: the earliest wave it can run in. */
    uint32_t *wave = calloc(n, sizeof *wave);
    if (!wave) return simpler_common_fail(args, UINT32_MAX, SIMPLER_E_NO_MEMORY);
    uint32_t edges = 0, last_wave = 0;
    for (uint32_t j = 0; j < n; ++j) {
        for (uint32_t i = 0; i < j; ++i)
            if (depends(&tasks[i], &tasks[j])) {
                ++edges;
                if (wave[i] + 1 > wave[j]) wave[j] = wave[i] + 1;
            }
        if (wave[j] > last_wave) last_wave = wave[j];
    }
    args->num_edges = edges;
    uint32_t done = 0;
    for (uint32_t w = 0; w <= last_wave && rc == SIMPLER_OK; ++w)
        for (uint32_t t = 0; t < n && rc == SIMPLER_OK; ++t) {
            if (wave[t] != w) continue;
            rc = simpler_common_run_task(args, t);
            if (rc == SIMPLER_OK && order) order[done] = t;
            ++done;
        }
    free(wave);
    return rc;
}
