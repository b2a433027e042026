/* Block partitioning shared by every AICore kernel: block b of d handles [begin, end). */
#ifndef SIMPLER_AICORE_SLICE_H
#define SIMPLER_AICORE_SLICE_H

#include <stdint.h>

static inline void simpler_block_slice(uint64_t total, uint32_t block_idx, uint32_t block_dim,
                                       uint64_t *begin, uint64_t *end) {
    if (block_dim == 0) block_dim = 1;
    uint64_t chunk = (total + block_dim - 1) / block_dim;
    uint64_t b = chunk * block_idx;
    uint64_t e = b + chunk;
    *begin = b < total ? b : total;
    *end = e < total ? e : total;
}

#define SIMPLER_PTR(addr) ((float *)(uintptr_t)(addr))
#define SIMPLER_CPTR(addr) ((const float *)(uintptr_t)(addr))

#endif
