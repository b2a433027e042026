/*
 * host_build_graph: the host builds the task graph (predecessor lists) and the
 * AICPU walks it in dependency order (Kahn's algorithm, FIFO ready queue).
 */
#include <stdint.h>
#include <stdlib.h>

#include "aicpu_common.h"

SIMPLER_EXPORT int32_t simpler_aicpu_init(SimplerInitArgs *args) {
    return simpler_common_init(args, "host_build_graph");
}

SIMPLER_EXPORT int32_t simpler_aicpu_exec(SimplerExecArgs *args) {
    int32_t rc = simpler_common_check(args);
    if (rc != SIMPLER_OK) return rc;
    const uint32_t n = args->num_tasks;
    if (n == 0) return SIMPLER_OK;
    const SimplerTask *tasks = (const SimplerTask *)(uintptr_t)args->tasks;
    const uint32_t *deps = (const uint32_t *)(uintptr_t)args->deps;
    uint32_t *order = (uint32_t *)(uintptr_t)args->order;

    /* indegree[i], then successor lists in CSR form built from the predecessor lists. */
    uint32_t *indeg = calloc(n, sizeof *indeg);
    uint32_t *succ_begin = calloc((size_t)n + 1, sizeof *succ_begin);
    uint32_t *queue = malloc((size_t)n * sizeof *queue);
    uint32_t edges = 0;
    for (uint32_t i = 0; i < n; ++i) edges += tasks[i].dep_count;
    uint32_t *succ = malloc((size_t)(edges ? edges : 1) * sizeof *succ);
    uint32_t *fill = calloc((size_t)n + 1, sizeof *fill);
    if (!indeg || !succ_begin || !queue || !succ || !fill) {
        rc = simpler_common_fail(args, UINT32_MAX, SIMPLER_E_NO_MEMORY);
        goto out;
    }
    if (edges != 0 && deps == 0) {
        rc = simpler_common_fail(args, UINT32_MAX, SIMPLER_E_BAD_GRAPH);
        goto out;
    }
    for (uint32_t i = 0; i < n; ++i) {
        for (uint32_t d = 0; d < tasks[i].dep_count; ++d) {
            const uint32_t p = deps[tasks[i].dep_begin + d];
            if (p >= n || p == i) {
                rc = simpler_common_fail(args, i, SIMPLER_E_BAD_GRAPH);
                goto out;
            }
            succ_begin[p + 1] += 1;
        }
        indeg[i] = tasks[i].dep_count;
    }
    for (uint32_t i = 0; i < n; ++i) succ_begin[i + 1] += succ_begin[i];
    for (uint32_t i = 0; i < n; ++i)
        for (uint32_t d = 0; d < tasks[i].dep_count; ++d) {
            const uint32_t p = deps[tasks[i].dep_begin + d];
            succ[succ_begin[p] + fill[p]++] = i;
        }
    args->num_edges = edges;

    uint32_t head = 0, tail = 0, done = 0;
    for (uint32_t i = 0; i < n; ++i)
        if (indeg[i] == 0) queue[tail++] = i;
    while (head < tail) {
        const uint32_t t = queue[head++];
        rc = simpler_common_run_task(args, t);
        if (rc != SIMPLER_OK) goto out;
        if (order) order[done] = t;
        ++done;
        for (uint32_t s = succ_begin[t]; s < succ_begin[t + 1]; ++s)
            if (--indeg[succ[s]] == 0) queue[tail++] = succ[s];
    }
    rc = done == n ? SIMPLER_OK : simpler_common_fail(args, UINT32_MAX, SIMPLER_E_BAD_GRAPH);
out:
    free(indeg);
    free(succ_begin);
    free(queue);
    free(succ);
    free(fill);
    return rc;
}
