/*
 * Pieces every inner AICPU runtime shares: argument checks, task launch and
 * the multi-threaded scheduler.
 *
 * A runtime only says how a graph's dependencies are found (the host's
 * predecessor lists, or hazards the AICPU derives): it hands a predecessor
 * CSR to simpler_sched_run, which runs the graph on the launch's active
 * threads.  docs/simulated-device.md "The scheduler".
 */
#ifndef SIMPLER_AICPU_COMMON_H
#define SIMPLER_AICPU_COMMON_H

#include "simpler_abi.h"

#define SIMPLER_EXPORT __attribute__((visibility("default")))

/* Predecessors in CSR form: task j waits for pred[begin[j] .. begin[j + 1]). */
typedef struct SimplerPreds {
    uint32_t *begin; /* num_tasks + 1 entries (malloc'd)   */
    uint32_t *pred;  /* begin[num_tasks] entries (malloc'd) */
} SimplerPreds;

/*
 * Builds the predecessor CSR of a graph; called by thread 0 only.  Returns a
 * SimplerStatus and, on failure, the failing task in *failed (or UINT32_MAX).
 */
typedef int32_t (*SimplerPredsFn)(const SimplerExecArgs *args, SimplerPreds *out,
                                  uint32_t *failed);

/* Fills the init block (at the device address args[0]) with this SO's identity. */
int32_t simpler_common_init(void *args, const char *runtime_name);

/*
 * The whole exec: checks the by-value block, lets thread 0 build the graph
 * with `preds` and publish it, then every active thread takes ready tasks.
 * Graph and kernel failures are reported in the device-side state (the
 * launch itself succeeds); only a block that cannot be trusted to say where
 * the state is fails the launch.
 */
int32_t simpler_sched_exec(void *args, const SimplerCpuLaunch *launch, SimplerPredsFn preds);

#endif
