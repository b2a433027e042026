/* Pieces every inner AICPU runtime shares: argument checks and task launch. */
#ifndef SIMPLER_AICPU_COMMON_H
#define SIMPLER_AICPU_COMMON_H

#include "simpler_abi.h"

#define SIMPLER_EXPORT __attribute__((visibility("default")))

/* Fills the init block with this SO's identity; SIMPLER_E_BAD_ARGS on a bad block. */
int32_t simpler_common_init(SimplerInitArgs *args, const char *runtime_name);

/* Checks magic, ABI version and pointers; resets the out fields. */
int32_t simpler_common_check(SimplerExecArgs *args);

/* Launches task `index` on its kernel across its blocks; records status on failure. */
int32_t simpler_common_run_task(SimplerExecArgs *args, uint32_t index);

/* Marks the exec as failed at `index` with `status` and returns `status`. */
int32_t simpler_common_fail(SimplerExecArgs *args, uint32_t index, int32_t status);

#endif
