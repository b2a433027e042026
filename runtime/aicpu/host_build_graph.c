/*
 * host_build_graph: the host builds the task graph (predecessor lists) and the
 * AICPU's scheduler threads walk it in dependency order (aicpu_common.c).
 */
#include <stdint.h>
#include <stdlib.h>

#include "aicpu_common.h"

/* The host's predecessor lists, copied into a CSR (each task's slice of `deps`). */
static int32_t host_preds(const SimplerExecArgs *args, SimplerPreds *out, uint32_t *failed) {
    const uint32_t n = args->num_tasks;
    const SimplerTask *tasks = (const SimplerTask *)(uintptr_t)args->tasks;
    const uint32_t *deps = (const uint32_t *)(uintptr_t)args->deps;
    uint64_t edges = 0;
    for (uint32_t i = 0; i < n; ++i) edges += tasks[i].dep_count;
    if (edges != 0 && deps == 0) return SIMPLER_E_BAD_GRAPH;
    if (edges > UINT32_MAX) return SIMPLER_E_BAD_GRAPH;
    out->begin = malloc(((size_t)n + 1) * sizeof *out->begin);
    out->pred = malloc((size_t)(edges ? edges : 1) * sizeof *out->pred);
    if (!out->begin || !out->pred) return SIMPLER_E_NO_MEMORY;
    uint32_t e = 0;
    for (uint32_t j = 0; j < n; ++j) {
        out->begin[j] = e;
        for (uint32_t d = 0; d < tasks[j].dep_count; ++d) {
            const uint32_t p = deps[tasks[j].dep_begin + d];
            if (p >= n || p == j) {
                *failed = j;
                return SIMPLER_E_BAD_GRAPH;
            }
            out->pred[e++] = p;
        }
    }
    out->begin[n] = e;
    return SIMPLER_OK;
}

SIMPLER_EXPORT int32_t simpler_aicpu_init(void *args, const SimplerCpuLaunch *launch) {
    (void)launch;
    return simpler_common_init(args, "host_build_graph");
}

SIMPLER_EXPORT int32_t simpler_aicpu_exec(void *args, const SimplerCpuLaunch *launch) {
    return simpler_sched_exec(args, launch, host_preds);
}
