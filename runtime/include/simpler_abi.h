/*
 * simpler_abi.h -- the C ABI between the host runtime (Python, via ctypes),
 * the inner AICPU runtime SOs and the AICore kernel binary.
 *
 * Every struct is plain data with fixed-width fields and explicit offsets
 * (checked below with static_assert) so that Python can mirror it with
 * ctypes.Structure without guessing padding.  Device addresses are uint64_t:
 * on the simulated device they are host addresses of HBM allocations.
 */
#ifndef SIMPLER_ABI_H
#define SIMPLER_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIMPLER_ABI_VERSION 2u
/* "SMPLGRPH" little-endian: marks a SimplerExecArgs block. */
#define SIMPLER_GRAPH_MAGIC 0x485052474c504d53ULL

/* Return codes of simpler_aicpu_init / simpler_aicpu_exec and of kernels. */
enum SimplerStatus {
    SIMPLER_OK = 0,
    SIMPLER_E_BAD_ARGS = 1,       /* null block, wrong magic or ABI version */
    SIMPLER_E_BAD_KERNEL = 2,     /* kernel id outside the table, or a null slot */
    SIMPLER_E_BAD_GRAPH = 3,      /* dependency index out of range, or a cycle */
    SIMPLER_E_KERNEL_FAILED = 4,  /* a kernel returned non-zero */
    SIMPLER_E_NO_MEMORY = 5,      /* scratch allocation on the AICPU failed */
    SIMPLER_E_ABORTED = 6         /* the device aborted the launch (op timeout)  */
};

/* Kernel ids: the index into the AICore kernel table. */
enum SimplerKernelId {
    SIMPLER_K_VEC_ADD = 0,   /* AIV: out[i] = in0[i] + in1[i]              */
    SIMPLER_K_VEC_MUL = 1,   /* AIV: out[i] = in0[i] * in1[i]              */
    SIMPLER_K_VEC_ADDS = 2,  /* AIV: out[i] = in0[i] + scalar              */
    SIMPLER_K_MATMUL = 3,    /* AIC: out[m x n] = in0[m x k] @ in1[k x n]  (MIX binaries only) */
    SIMPLER_K_COUNT = 4
};

enum SimplerCoreType { SIMPLER_CORE_AIV = 0, SIMPLER_CORE_AIC = 1 };

/* Arguments of one kernel invocation; float32 buffers. 48 bytes. */
typedef struct SimplerKernelArgs {
    uint64_t in0;      /*  0: device address of the first input            */
    uint64_t in1;      /*  8: device address of the second input (or 0)    */
    uint64_t out;      /* 16: device address of the output                 */
    uint64_t n;        /* 24: element count (vector) / columns N (matmul)  */
    uint32_t m;        /* 32: matmul rows M                                */
    uint32_t k;        /* 36: matmul inner dimension K                     */
    float scalar;      /* 40: the scalar of add-scalar                     */
    uint32_t reserved; /* 44 */
} SimplerKernelArgs;

/*
 * The one common kernel entry signature.  A task of block_dim blocks (each
 * 1 AIC + 2 AIV) calls a vector kernel once per AIV core, (idx, 2 * block_dim),
 * and a cube kernel once per AIC core, (idx, block_dim); each core handles
 * its own contiguous slice, as AICore blocks do on hardware.
 */
typedef int32_t (*SimplerKernelFn)(const SimplerKernelArgs *args, uint32_t block_idx,
                                   uint32_t block_dim);

/* One row of the AICore binary's exported kernel table. 24 bytes. */
typedef struct SimplerKernelEntry {
    const char *name;     /*  0: e.g. "simpler_kernel_vec_add_f32"  */
    SimplerKernelFn fn;   /*  8 */
    uint32_t kernel_id;   /* 16: enum SimplerKernelId              */
    uint32_t core_type;   /* 20: enum SimplerCoreType              */
} SimplerKernelEntry;

/* One task of a graph. 64 bytes. */
typedef struct SimplerTask {
    uint32_t kernel_id;      /*  0 */
    uint32_t dep_begin;      /*  4: first predecessor index in SimplerExecArgs.deps */
    uint32_t dep_count;      /*  8: number of predecessors                         */
    uint32_t block_dim;      /* 12: blocks (1 AIC + 2 AIV each); 0 = all of them   */
    SimplerKernelArgs args;  /* 16 */
} SimplerTask;

/*
 * The calling convention of every CPU (AICPU) kernel on the simulated device.
 * rtsLaunchCpuKernel copies the host argument block at launch (the kernel
 * gets `args`, the device's private copy: its writes never reach the host)
 * and runs block_dim OS threads at once, each with its own launch block.
 * `abort` points at a uint32 the device sets to 1 when it gives up on the
 * launch (op timeout): it stands in for the reset that kills AICPU threads on
 * hardware, so a kernel that waits on something must poll it.
 * docs/simulated-device.md "AICPU launches".
 */
typedef struct SimplerCpuLaunch {
    uint32_t block_idx;  /*  0: this thread, in [0, block_dim)       */
    uint32_t block_dim;  /*  4: threads of the launch                 */
    uint64_t abort;      /*  8: address of the uint32 abort word      */
} SimplerCpuLaunch;

typedef int32_t (*SimplerCpuKernelFn)(void *args, const SimplerCpuLaunch *launch);

/*
 * The argument block of simpler_aicpu_exec, passed by value. 80 bytes.
 * `kernels` is the table of kernel functions resolved from the registered
 * AICore binary handle, indexed by kernel id.  Everything the exec reports
 * goes to `state` (and `order`), device memory the host copies back.
 */
typedef struct SimplerExecArgs {
    uint64_t magic;            /*  0: SIMPLER_GRAPH_MAGIC                          */
    uint32_t abi_version;      /*  8: SIMPLER_ABI_VERSION                          */
    uint32_t num_tasks;        /* 12 */
    uint64_t tasks;            /* 16: SimplerTask[num_tasks]                       */
    uint64_t deps;             /* 24: uint32_t predecessor indices (or 0)          */
    uint64_t kernels;          /* 32: SimplerKernelFn[num_kernels]                 */
    uint32_t num_kernels;      /* 40 */
    uint32_t active_threads;   /* 44: scheduler threads; the rest of the launch idles */
    uint64_t order;            /* 48: out: uint32_t[num_tasks] completion order (or 0) */
    uint64_t state;            /* 56: SimplerExecState in device memory            */
    uint32_t epoch;            /* 64: this run's number (never 0): see the state    */
    uint32_t reserved;         /* 68 */
    uint64_t launch_scratch;   /* 72: 0 from the host; the launch's threads, which
                                      share one copy of this block, meet here    */
} SimplerExecArgs;

/*
 * What one exec reports, in device memory (the host copies it back after the
 * stream synchronises), and the handshake with the AICore side. 40 bytes.
 * `epoch` is written last of the report: a state whose epoch is not the
 * run's own was never written by that run.  The AICore main kernel (on its
 * own stream, launched first) stores the run's epoch in `aicore_ready` and
 * stays resident until the exec stores it in `aicpu_done`; the exec schedules
 * nothing before the AICore side is up.
 */
typedef struct SimplerExecState {
    uint32_t status;           /*  0: enum SimplerStatus                           */
    uint32_t failed_task;      /*  4: task index that failed, or UINT32_MAX        */
    uint64_t aicore_launches;  /*  8: kernel launches made by this exec            */
    uint32_t num_edges;        /* 16: dependency edges the graph had               */
    uint32_t threads;          /* 20: scheduler threads that took part             */
    uint32_t epoch;            /* 24: SimplerExecArgs.epoch of the run that wrote it */
    uint32_t aicore_ready;     /* 28: the AICore side is up for this epoch        */
    uint32_t aicpu_done;       /* 32: the exec finished this epoch                */
    uint32_t reserved;         /* 36 */
} SimplerExecState;

/* The by-value argument block of simpler_aicore_main. 16 bytes. */
typedef struct SimplerAicoreMainArgs {
    uint64_t state;  /*  0: the SimplerExecState of the graph     */
    uint32_t epoch;  /*  8: the run this launch serves             */
    uint32_t reserved;
} SimplerAicoreMainArgs;

/*
 * simpler_aicpu_init's argument block is one uint64_t: the device address of
 * this block, which the SO fills in (by-value arguments cannot carry results
 * back). 48 bytes.
 */
typedef struct SimplerInitArgs {
    uint32_t abi_version;    /*  0: in: SIMPLER_ABI_VERSION                 */
    uint32_t device_id;      /*  4: in                                      */
    uint32_t aiv_cores;      /*  8: out: vector cores the SO was built for  */
    uint32_t aic_cores;      /* 12: out: cube cores the SO was built for    */
    char runtime_name[32];   /* 16: out: NUL-terminated runtime variant     */
} SimplerInitArgs;

#ifdef __cplusplus
#define SIMPLER_STATIC_ASSERT static_assert
#else
#define SIMPLER_STATIC_ASSERT _Static_assert
#endif

SIMPLER_STATIC_ASSERT(sizeof(SimplerKernelArgs) == 48, "SimplerKernelArgs layout");
SIMPLER_STATIC_ASSERT(offsetof(SimplerKernelArgs, scalar) == 40, "SimplerKernelArgs.scalar");
SIMPLER_STATIC_ASSERT(sizeof(SimplerKernelEntry) == 24, "SimplerKernelEntry layout");
SIMPLER_STATIC_ASSERT(sizeof(SimplerTask) == 64, "SimplerTask layout");
SIMPLER_STATIC_ASSERT(offsetof(SimplerTask, args) == 16, "SimplerTask.args");
SIMPLER_STATIC_ASSERT(sizeof(SimplerExecArgs) == 80, "SimplerExecArgs layout");
SIMPLER_STATIC_ASSERT(offsetof(SimplerExecArgs, order) == 48, "SimplerExecArgs.order");
SIMPLER_STATIC_ASSERT(offsetof(SimplerExecArgs, state) == 56, "SimplerExecArgs.state");
SIMPLER_STATIC_ASSERT(sizeof(SimplerExecState) == 40, "SimplerExecState layout");
SIMPLER_STATIC_ASSERT(sizeof(SimplerAicoreMainArgs) == 16, "SimplerAicoreMainArgs layout");
SIMPLER_STATIC_ASSERT(sizeof(SimplerCpuLaunch) == 16, "SimplerCpuLaunch layout");
SIMPLER_STATIC_ASSERT(sizeof(SimplerInitArgs) == 48, "SimplerInitArgs layout");

/* Entry points of every inner AICPU runtime SO. */
int32_t simpler_aicpu_init(void *args, const SimplerCpuLaunch *launch); /* uint64_t[1] */
int32_t simpler_aicpu_exec(void *args, const SimplerCpuLaunch *launch); /* SimplerExecArgs */

/* Exported by every AICore kernel binary. */
extern const SimplerKernelEntry simpler_aicore_kernels[];
extern const uint32_t simpler_aicore_kernel_count;
/* The AICore side of a run, launched with rtKernelLaunchWithHandleV2 (SimplerCpuKernelFn
 * convention: args is a SimplerAicoreMainArgs). */
int32_t simpler_aicore_main(void *args, const SimplerCpuLaunch *launch);

#ifdef __cplusplus
}
#endif

#endif /* SIMPLER_ABI_H */
