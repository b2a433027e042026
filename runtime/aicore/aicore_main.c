/*
 * The AICore side of a run: launched on the runner's AICore stream before the
 * AICPU exec (upstream #1060, #1852), it announces itself in device memory
 * and stays resident until the exec says it is done.  Put on the AICPU's
 * stream by mistake, it waits for an exec queued behind it that can never
 * start: the op timeout (507046) ends it.
 */
#define _GNU_SOURCE /* syscall(2), for simpler_wait.h */
#include <stdatomic.h>
#include <stdint.h>

#include "simpler_abi.h"
#include "simpler_wait.h"

int32_t simpler_aicore_main(void *raw, const SimplerCpuLaunch *launch) {
    const SimplerAicoreMainArgs *args = (const SimplerAicoreMainArgs *)raw;
    if (args == 0 || args->state == 0 || args->epoch == 0) return SIMPLER_E_BAD_ARGS;
    if (launch->block_idx != 0) return SIMPLER_OK;
    SimplerExecState *st = (SimplerExecState *)(uintptr_t)args->state;
    _Atomic uint32_t *ready = (_Atomic uint32_t *)&st->aicore_ready;
    _Atomic uint32_t *done = (_Atomic uint32_t *)&st->aicpu_done;
    atomic_store_explicit(ready, args->epoch, memory_order_release);
    simpler_wake(ready);
    return simpler_wait_for(done, args->epoch, launch) ? SIMPLER_OK : SIMPLER_E_ABORTED;
}
