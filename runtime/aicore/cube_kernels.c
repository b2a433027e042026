/*
 * AIC (cube) kernels: only MIX-mode binaries (a5) carry them.
 *
 * The cube unit multiplies 16 x 16 fractals.  A core's rows of the output are
 * cut into base tiles of FM x FN fractals (tiling.h); for each base tile the
 * kernel walks K in steps of SIMPLER_CUBE_K, loading A into L0A and B into L0B
 * as fractals (zero-padded at the edges, as the MTE1 loads pad), accumulating
 * in L0C, and writes L0C back through the fixpipe, dropping the padding.  The
 * base tile is the widest of 4 x 4, 2 x 2 and 1 x 1 fractals that the core's
 * rows and N fill; each shape is its own specialised, unrolled routine, as
 * the cube code generator emits one per tiling.
 */
#include "simpler_abi.h"
#include "slice.h"
#include "tiling.h"

#define F SIMPLER_FRACTAL
#define KF (SIMPLER_CUBE_K / SIMPLER_FRACTAL) /* fractals per K step */

typedef struct SimplerFractal {
    float v[F][F];
} SimplerFractal;

/* The operands of one GM matrix: base address, rows, columns, leading dimension. */
typedef struct SimplerMat {
    const float *p;
    uint64_t rows, cols, ld;
} SimplerMat;

/* MTE1: the F x F fractal at (r0, c0) of `m`, zero where it runs past the matrix. */
static inline void simpler_load_fractal(SimplerFractal *dst, SimplerMat m, uint64_t r0,
                                        uint64_t c0) {
    if (r0 + F <= m.rows && c0 + F <= m.cols) {
        _Pragma("GCC unroll 16") for (uint32_t i = 0; i < F; ++i) {
            const float *row = m.p + (r0 + i) * m.ld + c0;
            _Pragma("GCC unroll 16") for (uint32_t j = 0; j < F; ++j) dst->v[i][j] = row[j];
        }
        return;
    }
    for (uint32_t i = 0; i < F; ++i)
        for (uint32_t j = 0; j < F; ++j)
            dst->v[i][j] = (r0 + i < m.rows && c0 + j < m.cols) ? m.p[(r0 + i) * m.ld + c0 + j]
                                                                : 0.0f;
}

/* mmad: c += a @ b on one fractal each, the cube's unit of work. */
__attribute__((noinline)) static void simpler_mmad(SimplerFractal *restrict c, const SimplerFractal *restrict a,
                                const SimplerFractal *restrict b) {
    for (uint32_t p = 0; p < F; ++p) {
        _Pragma("GCC unroll 16") for (uint32_t i = 0; i < F; ++i) {
            const float av = a->v[i][p];
            _Pragma("GCC unroll 16") for (uint32_t j = 0; j < F; ++j) c->v[i][j] +=
                av * b->v[p][j];
        }
    }
}

/* Fixpipe: L0C to GM at (r0, c0), only the part inside the output. */
static inline void simpler_fixpipe(float *out, uint64_t rows, uint64_t cols, uint64_t ldc,
                                   const SimplerFractal *c, uint64_t r0, uint64_t c0) {
    for (uint32_t i = 0; i < F && r0 + i < rows; ++i)
        for (uint32_t j = 0; j < F && c0 + j < cols; ++j) out[(r0 + i) * ldc + c0 + j] = c->v[i][j];
}

/*
 * One base tile of FM x FN fractals at output (r0, c0): K steps of KF
 * fractals each through L0A / L0B, accumulated in L0C.
 */
#define SIMPLER_CUBE_BASE_TILE(FM, FN)                                                         \
    __attribute__((noinline)) static void simpler_cube_base_##FM##x##FN(                      \
        SimplerMat a, SimplerMat b, float *out, uint64_t ldc, uint64_t rows, uint64_t r0,     \
        uint64_t c0) {                                                                        \
        SimplerFractal l0c[FM][FN];                                                           \
        SimplerFractal l0a[FM][KF];                                                           \
        SimplerFractal l0b[KF][FN];                                                           \
        for (uint32_t i = 0; i < FM; ++i)                                                     \
            for (uint32_t j = 0; j < FN; ++j)                                                 \
                for (uint32_t e = 0; e < F * F; ++e) l0c[i][j].v[e / F][e % F] = 0.0f;        \
        for (uint64_t k0 = 0; k0 < a.cols; k0 += SIMPLER_CUBE_K) {                            \
            for (uint32_t i = 0; i < FM; ++i)                                                 \
                for (uint32_t q = 0; q < KF; ++q)                                             \
                    simpler_load_fractal(&l0a[i][q], a, r0 + i * F, k0 + q * F);              \
            for (uint32_t q = 0; q < KF; ++q)                                                 \
                for (uint32_t j = 0; j < FN; ++j)                                             \
                    simpler_load_fractal(&l0b[q][j], b, k0 + q * F, c0 + j * F);              \
            _Pragma("GCC unroll 4") for (uint32_t i = 0; i < FM; ++i)                         \
                _Pragma("GCC unroll 4") for (uint32_t j = 0; j < FN; ++j)                     \
                    _Pragma("GCC unroll 4") for (uint32_t q = 0; q < KF; ++q)                 \
                        simpler_mmad(&l0c[i][j], &l0a[i][q], &l0b[q][j]);                     \
        }                                                                                     \
        for (uint32_t i = 0; i < FM; ++i)                                                     \
            for (uint32_t j = 0; j < FN; ++j)                                                 \
                simpler_fixpipe(out, rows, b.cols, ldc, &l0c[i][j], r0 + i * F, c0 + j * F);  \
    }

SIMPLER_CUBE_BASE_TILE(4, 4)
SIMPLER_CUBE_BASE_TILE(2, 2)
SIMPLER_CUBE_BASE_TILE(1, 1)

/* out[m x n] = in0[m x k] @ in1[k x n]; the cores split the rows. */
int32_t simpler_kernel_matmul_f32(const SimplerKernelArgs *a, uint32_t block_idx,
                                  uint32_t block_dim) {
    if (a == 0 || a->in0 == 0 || a->in1 == 0 || a->out == 0 || a->k == 0)
        return SIMPLER_E_BAD_ARGS;
    const uint64_t m = a->m, n = a->n, k = a->k;
    uint64_t r0, r1;
    simpler_block_slice(m, block_idx, block_dim, &r0, &r1);
    if (r0 >= r1) return SIMPLER_OK;
    /* This core's rows as their own matrix: fractals never reach into another core's rows. */
    const SimplerMat x = {SIMPLER_CPTR(a->in0) + r0 * k, r1 - r0, k, k};
    const SimplerMat y = {SIMPLER_CPTR(a->in1), k, n, n};
    float *z = SIMPLER_PTR(a->out) + r0 * n;
    const uint64_t rows = r1 - r0;
    /* Row bands of the widest base tile the rows and N fill; edges are padded fractals. */
    for (uint64_t i = 0; i < rows;) {
        const uint64_t left = rows - i;
        const uint64_t band = left >= 4 * F && n >= 4 * F ? 4 * F : left >= 2 * F && n >= 2 * F ? 2 * F : F;
        for (uint64_t j = 0; j < n; j += band) {
            if (band == 4 * F) simpler_cube_base_4x4(x, y, z, n, rows, i, j);
            else if (band == 2 * F) simpler_cube_base_2x2(x, y, z, n, rows, i, j);
            else simpler_cube_base_1x1(x, y, z, n, rows, i, j);
        }
        i += band;
    }
    return SIMPLER_OK;
}

#undef F
#undef KF
