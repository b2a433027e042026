/*
 * Waiting on a device-memory word: the simulated device's wait-for-event.
 *
 * On hardware an AICPU thread owns its core and may spin on a word for as
 * long as it likes.  The simulated device shares a few host cores among
 * block_dim launch threads, the AICore side, the host and whatever else the
 * machine runs (numpy's BLAS threads spin for a while after import): a
 * thread that yield-spins stays runnable, and on a busy core it waits a whole
 * time slice (milliseconds) before it even sees the word change.  So a waiter
 * spins briefly, then sleeps in the kernel (futex) until the writer wakes it,
 * as an ARM core waits for an event (WFE) after a short spin.  A sleeper also
 * wakes every SIMPLER_WAIT_POLL_NS to read the launch's abort word, so an
 * aborted launch still ends.  docs/simulated-device.md "Waiting".
 */
#ifndef SIMPLER_WAIT_H
#define SIMPLER_WAIT_H

#if !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#error "define _GNU_SOURCE before any include: simpler_wait.h calls syscall(2)"
#endif

#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "simpler_abi.h"

#define SIMPLER_WAIT_SPINS 32           /* sched_yield rounds before sleeping */
#define SIMPLER_WAIT_POLL_NS 1000000L /* a sleeper reads the abort word this often */

static inline int simpler_aborted(const SimplerCpuLaunch *launch) {
    const _Atomic uint32_t *word = (const _Atomic uint32_t *)(uintptr_t)launch->abort;
    return word != 0 && atomic_load_explicit(word, memory_order_relaxed) != 0;
}

/*
 * One round of waiting for *word to leave `seen`: the first SIMPLER_WAIT_SPINS
 * rounds yield, later ones sleep until a writer's simpler_wake (or the poll
 * period).  Callers loop: re-check their condition and the abort word, then
 * call again with the same `round` counter (set to 0 for each new wait).
 * For a 64-bit word, pass its low half's address and value: the kernel
 * compares those 32 bits, the caller's loop checks the whole word.
 */
static inline void simpler_wait_round(void *word, uint32_t seen, uint32_t *round) {
    if (*round < SIMPLER_WAIT_SPINS) {
        ++*round;
        sched_yield();
        return;
    }
    const struct timespec poll = {0, SIMPLER_WAIT_POLL_NS};
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, seen, &poll, NULL, 0);
}

/* Wait until *word == value; 1 then, 0 if the launch was aborted first. */
static inline int simpler_wait_for(_Atomic uint32_t *word, uint32_t value,
                                   const SimplerCpuLaunch *launch) {
    uint32_t seen, round = 0;
    while ((seen = atomic_load_explicit(word, memory_order_acquire)) != value) {
        if (simpler_aborted(launch)) return 0;
        simpler_wait_round(word, seen, &round);
    }
    return 1;
}

/* Wake every thread sleeping on `word`; call after storing to it. */
static inline void simpler_wake(void *word) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

#endif /* SIMPLER_WAIT_H */
