#include "aicpu_common.h"

#include <stdint.h>
#include <string.h>

#ifndef SIMPLER_AIV_CORES
#error "SIMPLER_AIV_CORES comes from the arch profile"
#endif
#ifndef SIMPLER_AIC_CORES
#error "SIMPLER_AIC_CORES comes from the arch profile"
#endif

int32_t simpler_common_init(SimplerInitArgs *args, const char *runtime_name) {
    if (args == 0 || args->abi_version != SIMPLER_ABI_VERSION) return SIMPLER_E_BAD_ARGS;
    args->aiv_cores = SIMPLER_AIV_CORES;
    args->aic_cores = SIMPLER_AIC_CORES;
    memset(args->runtime_name, 0, sizeof args->runtime_name);
    strncpy(args->runtime_name, runtime_name, sizeof args->runtime_name - 1);
    return SIMPLER_OK;
}

int32_t simpler_common_fail(SimplerExecArgs *args, uint32_t index, int32_t status) {
    args->status = (uint32_t)status;
    args->failed_task = index;
    return status;
}

int32_t simpler_common_check(SimplerExecArgs *args) {
    if (args == 0) return SIMPLER_E_BAD_ARGS;
    args->status = SIMPLER_OK;
    args->failed_task = UINT32_MAX;
    args->aicore_launches = 0;
    args->num_edges = 0;
    if (args->magic != SIMPLER_GRAPH_MAGIC || args->abi_version != SIMPLER_ABI_VERSION ||
        args->kernels == 0 || (args->num_tasks != 0 && args->tasks == 0))
        return simpler_common_fail(args, UINT32_MAX, SIMPLER_E_BAD_ARGS);
    return SIMPLER_OK;
}

static uint32_t default_block_dim(uint32_t kernel_id) {
    return kernel_id == SIMPLER_K_MATMUL ? SIMPLER_AIC_CORES : SIMPLER_AIV_CORES;
}

int32_t simpler_common_run_task(SimplerExecArgs *args, uint32_t index) {
    const SimplerTask *task = (const SimplerTask *)(uintptr_t)args->tasks + index;
    const SimplerKernelFn *table = (const SimplerKernelFn *)(uintptr_t)args->kernels;
    if (task->kernel_id >= args->num_kernels || table[task->kernel_id] == 0)
        return simpler_common_fail(args, index, SIMPLER_E_BAD_KERNEL);
    const SimplerKernelFn fn = table[task->kernel_id];
    const uint32_t dim = task->block_dim ? task->block_dim : default_block_dim(task->kernel_id);
    for (uint32_t b = 0; b < dim; ++b)
        if (fn(&task->args, b, dim) != SIMPLER_OK)
            return simpler_common_fail(args, index, SIMPLER_E_KERNEL_FAILED);
    args->aicore_launches += 1;
    return SIMPLER_OK;
}
