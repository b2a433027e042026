/*
 * The kernel table every AICore binary exports: rtRegisterAllKernel's
 * simulated counterpart resolves kernels through it, indexed by kernel id.
 * A vector-only binary leaves the cube slot empty (null fn).
 */
#include "simpler_abi.h"

int32_t simpler_kernel_vec_add_f32(const SimplerKernelArgs *, uint32_t, uint32_t);
int32_t simpler_kernel_vec_mul_f32(const SimplerKernelArgs *, uint32_t, uint32_t);
int32_t simpler_kernel_vec_adds_f32(const SimplerKernelArgs *, uint32_t, uint32_t);
#if SIMPLER_AICORE_MIX
int32_t simpler_kernel_matmul_f32(const SimplerKernelArgs *, uint32_t, uint32_t);
#define SIMPLER_MATMUL_FN simpler_kernel_matmul_f32
#else
#define SIMPLER_MATMUL_FN 0
#endif

const SimplerKernelEntry simpler_aicore_kernels[SIMPLER_K_COUNT] = {
    {"simpler_kernel_vec_add_f32", simpler_kernel_vec_add_f32, SIMPLER_K_VEC_ADD, SIMPLER_CORE_AIV},
    {"simpler_kernel_vec_mul_f32", simpler_kernel_vec_mul_f32, SIMPLER_K_VEC_MUL, SIMPLER_CORE_AIV},
    {"simpler_kernel_vec_adds_f32", simpler_kernel_vec_adds_f32, SIMPLER_K_VEC_ADDS,
     SIMPLER_CORE_AIV},
    {"simpler_kernel_matmul_f32", SIMPLER_MATMUL_FN, SIMPLER_K_MATMUL, SIMPLER_CORE_AIC},
};

const uint32_t simpler_aicore_kernel_count = SIMPLER_K_COUNT;
