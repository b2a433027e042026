/* AIV (vector) kernels on float32 buffers; every arch builds these. */
#include "simpler_abi.h"
#include "slice.h"

int32_t simpler_kernel_vec_add_f32(const SimplerKernelArgs *a, uint32_t block_idx,
                                   uint32_t block_dim) {
    if (a == 0 || a->in0 == 0 || a->in1 == 0 || a->out == 0) return SIMPLER_E_BAD_ARGS;
    const float *x = SIMPLER_CPTR(a->in0), *y = SIMPLER_CPTR(a->in1);
    float *z = SIMPLER_PTR(a->out);
    uint64_t i, end;
    simpler_block_slice(a->n, block_idx, block_dim, &i, &end);
    for (; i < end; ++i) z[i] = x[i] + y[i];
    return SIMPLER_OK;
}

int32_t simpler_kernel_vec_mul_f32(const SimplerKernelArgs *a, uint32_t block_idx,
                                   uint32_t block_dim) {
    if (a == 0 || a->in0 == 0 || a->in1 == 0 || a->out == 0) return SIMPLER_E_BAD_ARGS;
    const float *x = SIMPLER_CPTR(a->in0), *y = SIMPLER_CPTR(a->in1);
    float *z = SIMPLER_PTR(a->out);
    uint64_t i, end;
    simpler_block_slice(a->n, block_idx, block_dim, &i, &end);
    for (; i < end; ++i) z[i] = x[i] * y[i];
    return SIMPLER_OK;
}

int32_t simpler_kernel_vec_adds_f32(const SimplerKernelArgs *a, uint32_t block_idx,
                                    uint32_t block_dim) {
    if (a == 0 || a->in0 == 0 || a->out == 0) return SIMPLER_E_BAD_ARGS;
    const float *x = SIMPLER_CPTR(a->in0);
    float *z = SIMPLER_PTR(a->out);
    const float s = a->scalar;
    uint64_t i, end;
    simpler_block_slice(a->n, block_idx, block_dim, &i, &end);
    for (; i < end; ++i) z[i] = x[i] + s;
    return SIMPLER_OK;
}
