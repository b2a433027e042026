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

#define SIMPLER_ABI_VERSION 1u
/* "SMPLGRPH" little-endian: marks a SimplerExecArgs block. */
#define SIMPLER_GRAPH_MAGIC 0x485052474c504d53ULL

/* Return codes of simpler_aicpu_init / simpler_aicpu_exec and of kernels. */
enum SimplerStatus {
    SIMPLER_OK = 0,
    SIMPLER_E_BAD_ARGS = 1,       /* null block, wrong magic or ABI version */
    SIMPLER_E_BAD_KERNEL = 2,     /* kernel id outside the table, or a null slot */
    SIMPLER_E_BAD_GRAPH = 3,      /* dependency index out of range, or a cycle */
    SIMPLER_E_KERNEL_FAILED = 4,  /* a kernel returned non-zero */
    SIMPLER_E_NO_MEMORY = 5       /* scratch allocation on the AICPU failed */
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
 * The one common kernel entry signature.  A launch of block_dim blocks calls
 * the kernel once per block_idx in [0, block_dim); each block handles its own
 * contiguous slice, as AICore blocks do on hardware.
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
    uint32_t block_dim;      /* 12: blocks to launch; 0 = the runtime's core count */
    SimplerKernelArgs args;  /* 16 */
} SimplerTask;

/*
 * The argument block of simpler_aicpu_exec. 80 bytes.
 * `kernels` is the table of kernel functions resolved from the registered
 * AICore binary handle, indexed by kernel id.
 */
typedef struct SimplerExecArgs {
    uint64_t magic;            /*  0: SIMPLER_GRAPH_MAGIC                         */
    uint32_t abi_version;      /*  8: SIMPLER_ABI_VERSION                         */
    uint32_t num_tasks;        /* 12 */
    uint64_t tasks;            /* 16: SimplerTask[num_tasks]                      */
    uint64_t deps;             /* 24: uint32_t predecessor indices (or 0)         */
    uint64_t kernels;          /* 32: SimplerKernelFn[num_kernels]                */
    uint32_t num_kernels;      /* 40 */
    uint32_t status;           /* 44: out: enum SimplerStatus                     */
    uint64_t order;            /* 48: out: uint32_t[num_tasks] execution order (or 0) */
    uint64_t aicore_launches;  /* 56: out: kernel launches made by this exec      */
    uint32_t failed_task;      /* 64: out: task index that failed, or UINT32_MAX  */
    uint32_t num_edges;        /* 68: out: dependency edges the graph had         */
    uint64_t reserved;         /* 72 */
} SimplerExecArgs;

/* The argument block of simpler_aicpu_init. 48 bytes. */
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
SIMPLER_STATIC_ASSERT(offsetof(SimplerExecArgs, failed_task) == 64, "SimplerExecArgs.failed_task");
SIMPLER_STATIC_ASSERT(sizeof(SimplerInitArgs) == 48, "SimplerInitArgs layout");

/* Entry points of every inner AICPU runtime SO. */
int32_t simpler_aicpu_init(SimplerInitArgs *args);
int32_t simpler_aicpu_exec(SimplerExecArgs *args);

/* Exported by every AICore kernel binary. */
extern const SimplerKernelEntry simpler_aicore_kernels[];
extern const uint32_t simpler_aicore_kernel_count;

#ifdef __cplusplus
}
#endif

#endif /* SIMPLER_ABI_H */
