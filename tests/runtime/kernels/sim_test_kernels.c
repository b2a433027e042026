/*
 * CPU kernels that probe the simulated device's execution model (built by
 * tests/runtime/test_runtime_execution.py, never shipped).  Every entry point
 * follows SimplerCpuKernelFn from simpler_abi.h.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "simpler_abi.h"

#define EXPORT __attribute__((visibility("default")))

static int aborted(const SimplerCpuLaunch *launch) {
    return atomic_load((const _Atomic uint32_t *)(uintptr_t)launch->abort) != 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* args: uint64_t[2] = {device address of a uint32 counter, device address of uint32 seen[]}.
 * Every thread arrives, then waits until all block_dim threads have.  Run one after another,
 * the first thread could never see the others: after 2 s of waiting it gives up (returns 9,
 * an AICPU exception) so that a launch that is not concurrent fails instead of hanging. */
EXPORT int32_t sim_test_barrier(void *args, const SimplerCpuLaunch *launch) {
    const uint64_t *a = (const uint64_t *)args;
    _Atomic uint32_t *count = (_Atomic uint32_t *)(uintptr_t)a[0];
    uint32_t *seen = (uint32_t *)(uintptr_t)a[1];
    atomic_fetch_add(count, 1);
    const double give_up = now() + 2.0;
    while (atomic_load(count) < launch->block_dim) {
        if (aborted(launch) || now() > give_up) return 9;
        sched_yield();
    }
    seen[launch->block_idx] = launch->block_dim; /* each index reported exactly once */
    return 0;
}

/* args: uint64_t[3] = {device address of a uint64, value, unused}.  Writes its own argument
 * block (the device's copy) and reports through device memory what it saw there. */
EXPORT int32_t sim_test_scribble(void *args, const SimplerCpuLaunch *launch) {
    uint64_t *a = (uint64_t *)args;
    if (launch->block_idx != 0) return 0;
    uint64_t *out = (uint64_t *)(uintptr_t)a[0];
    a[1] = 0xdeadbeefULL;
    a[2] = 0xfeedfaceULL;
    *out = a[1] ^ a[2];
    return 0;
}

/* Never finishes on its own: only the device's abort (op timeout) ends it. */
EXPORT int32_t sim_test_spin(void *args, const SimplerCpuLaunch *launch) {
    (void)args;
    while (!aborted(launch)) sched_yield();
    return 0;
}

/* An AICPU exception: thread 0 returns non-zero. */
EXPORT int32_t sim_test_fail(void *args, const SimplerCpuLaunch *launch) {
    (void)args;
    return launch->block_idx == 0 ? 7 : 0;
}
