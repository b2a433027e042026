/*
 * AIC (cube) kernels: only MIX-mode binaries (a5) carry them.  The cube unit
 * works on fixed fractal tiles; each tile shape gets its own fully unrolled
 * micro-kernel, as the real cube code generator emits, and the dispatcher
 * below picks the widest tile that divides the problem.
 */
#include "simpler_abi.h"
#include "slice.h"

#define SIMPLER_DEFINE_TILE(T)                                                          \
    static void simpler_cube_tile_##T(const float *a, const float *b, float *c,       \
                                      uint64_t lda, uint64_t ldb, uint64_t ldc,        \
                                      uint64_t kdim) {                                 \
        float acc[T][T];                                                               \
        for (int i = 0; i < T; ++i)                                                    \
            for (int j = 0; j < T; ++j) acc[i][j] = 0.0f;                              \
        for (uint64_t p = 0; p < kdim; ++p) {                                          \
            _Pragma("GCC unroll 16") for (int i = 0; i < T; ++i) {                     \
                const float av = a[(uint64_t)i * lda + p];                             \
                _Pragma("GCC unroll 16") for (int j = 0; j < T; ++j) acc[i][j] +=      \
                    av * b[p * ldb + (uint64_t)j];                                     \
            }                                                                          \
        }                                                                              \
        for (int i = 0; i < T; ++i)                                                    \
            for (int j = 0; j < T; ++j) c[(uint64_t)i * ldc + (uint64_t)j] = acc[i][j]; \
    }

SIMPLER_DEFINE_TILE(16)
SIMPLER_DEFINE_TILE(8)
SIMPLER_DEFINE_TILE(4)

static void simpler_cube_scalar(const float *a, const float *b, float *c, uint64_t row,
                                uint64_t ncols, uint64_t kdim) {
    for (uint64_t j = 0; j < ncols; ++j) {
        float acc = 0.0f;
        for (uint64_t p = 0; p < kdim; ++p) acc += a[row * kdim + p] * b[p * ncols + j];
        c[row * ncols + j] = acc;
    }
}

/* out[m x n] = in0[m x k] @ in1[k x n]; blocks split the rows. */
int32_t simpler_kernel_matmul_f32(const SimplerKernelArgs *a, uint32_t block_idx,
                                  uint32_t block_dim) {
    if (a == 0 || a->in0 == 0 || a->in1 == 0 || a->out == 0 || a->k == 0)
        return SIMPLER_E_BAD_ARGS;
    const float *x = SIMPLER_CPTR(a->in0), *y = SIMPLER_CPTR(a->in1);
    float *z = SIMPLER_PTR(a->out);
    const uint64_t m = a->m, n = a->n, k = a->k;
    uint64_t r0, r1;
    simpler_block_slice(m, block_idx, block_dim, &r0, &r1);
    const uint64_t tiles[] = {16, 8, 4};
    for (unsigned t = 0; t < sizeof tiles / sizeof tiles[0]; ++t) {
        const uint64_t T = tiles[t];
        if ((r1 - r0) % T != 0 || n % T != 0 || r0 % T != 0) continue;
        for (uint64_t i = r0; i < r1; i += T)
            for (uint64_t j = 0; j < n; j += T) {
                const float *ap = x + i * k;
                const float *bp = y + j;
                float *cp = z + i * n + j;
                if (T == 16) simpler_cube_tile_16(ap, bp, cp, k, n, n, k);
                else if (T == 8) simpler_cube_tile_8(ap, bp, cp, k, n, n, k);
                else simpler_cube_tile_4(ap, bp, cp, k, n, n, k);
            }
        return SIMPLER_OK;
    }
    for (uint64_t i = r0; i < r1; ++i) simpler_cube_scalar(x, y, z, i, n, k);
    return SIMPLER_OK;
}
