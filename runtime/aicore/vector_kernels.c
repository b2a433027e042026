/*
 * AIV (vector) kernels on float32 buffers; every arch builds these.
 *
 * Each core takes its slice of the buffer (slice.h) and moves it through the
 * Unified Buffer in tiles (tiling.h): copy in (MTE2), compute a whole tile in
 * repeats of 64 lanes, copy out (MTE3), alternating between two UB stages.
 * The compute step of a full tile is fully unrolled over its repeats, as the
 * vector instructions of an AscendC kernel are, and each kernel has two
 * variants: one for 32-byte aligned buffers, which the compiler may move in
 * whole blocks, and one for any alignment.  A tail of whole blocks and a rest
 * of 0 to 7 elements finish the slice.
 */
#include "simpler_abi.h"
#include "slice.h"
#include "tiling.h"

/* The two UB stages of a core: inputs x and y, output z, each one tile long. */
typedef struct SimplerUbStage {
    float x[SIMPLER_VEC_TILE];
    float y[SIMPLER_VEC_TILE];
    float z[SIMPLER_VEC_TILE];
} SimplerUbStage;

typedef struct SimplerUb {
    SimplerUbStage stage[SIMPLER_UB_STAGES];
} SimplerUb;

_Static_assert(sizeof(SimplerUb) <= SIMPLER_UB_BYTES, "UB stages exceed the Unified Buffer");

/* MTE2 / MTE3: a copy of `blocks` 32-byte blocks between global memory and the UB. */
static inline void simpler_mte_copy(float *restrict dst, const float *restrict src,
                                    uint64_t blocks) {
    for (uint64_t b = 0; b < blocks; ++b) {
        _Pragma("GCC unroll 8") for (uint32_t l = 0; l < SIMPLER_BLOCK_FLOATS; ++l) dst[l] =
            src[l];
        dst += SIMPLER_BLOCK_FLOATS;
        src += SIMPLER_BLOCK_FLOATS;
    }
}

static inline void simpler_mte_copy_aligned(float *restrict dst, const float *restrict src,
                                            uint64_t blocks) {
    float *d = __builtin_assume_aligned(dst, 32);
    const float *s = __builtin_assume_aligned(src, 32);
    for (uint64_t b = 0; b < blocks; ++b) {
        _Pragma("GCC unroll 8") for (uint32_t l = 0; l < SIMPLER_BLOCK_FLOATS; ++l) d[l] = s[l];
        d += SIMPLER_BLOCK_FLOATS;
        s += SIMPLER_BLOCK_FLOATS;
    }
}

static inline int simpler_aligned32(const void *p) { return ((uintptr_t)p & 31u) == 0; }

/*
 * The compute step of one full tile of L elements: OP(x, y, s) computes one
 * lane from the inputs and the scalar, unrolled over the tile's repeats.
 */
#define SIMPLER_VEC_TILE_FN(NAME, OP, L)                                                      \
    __attribute__((noinline)) static void NAME##_tile_##L(                                    \
        const float *restrict x, const float *restrict y, float s, float *restrict z) {       \
        (void)y;                                                                              \
        (void)s;                                                                              \
        _Pragma("GCC unroll 16") for (uint32_t r = 0; r < (L) / SIMPLER_VEC_REPEAT; ++r) {    \
            const uint32_t o = r * SIMPLER_VEC_REPEAT;                                        \
            _Pragma("GCC unroll 64") for (uint32_t l = 0; l < SIMPLER_VEC_REPEAT; ++l)        \
                z[o + l] = OP(x[o + l], y[o + l], s);                                         \
        }                                                                                     \
    }

/*
 * One vector kernel; BINARY says whether in1 is read.  Generates the tile
 * steps of each tile length, the pipeline of both variants and the kernel
 * entry `simpler_kernel_<NAME>_f32`.
 */
#define SIMPLER_VEC_KERNEL(NAME, BINARY, OP)                                                   \
    SIMPLER_VEC_TILE_FN(NAME, OP, 1024)                                                       \
    SIMPLER_VEC_TILE_FN(NAME, OP, 512)                                                        \
    SIMPLER_VEC_TILE_FN(NAME, OP, 256)                                                        \
                                                                                              \
    static void NAME##_blocks(const float *restrict x, const float *restrict y, float s,        \
                              float *restrict z, uint64_t n) {                                \
        (void)y;                                                                              \
        (void)s;                                                                              \
        for (uint64_t i = 0; i < n; i += SIMPLER_BLOCK_FLOATS) {                              \
            _Pragma("GCC unroll 8") for (uint32_t l = 0; l < SIMPLER_BLOCK_FLOATS; ++l)       \
                z[i + l] = OP(x[i + l], y[i + l], s);                                         \
        }                                                                                     \
    }                                                                                         \
                                                                                              \
    static void NAME##_compute(const SimplerUbStage *st, float s, float *z, uint64_t tile) {  \
        if (tile == 1024) NAME##_tile_1024(st->x, st->y, s, z);                               \
        else if (tile == 512) NAME##_tile_512(st->x, st->y, s, z);                            \
        else NAME##_tile_256(st->x, st->y, s, z);                                             \
    }                                                                                         \
                                                                                              \
    static void NAME##_pipeline(const float *x, const float *y, float s, float *z,              \
                                SimplerVecTiling t, int aligned) {                            \
        SimplerUb ub; /* the core's UB: its stack frame */                                    \
        const uint64_t tile_blocks = t.tile / SIMPLER_BLOCK_FLOATS;                           \
        uint64_t at = t.begin;                                                                \
        for (uint64_t i = 0; i < t.full_tiles; ++i, at += t.tile) {                           \
            SimplerUbStage *st = &ub.stage[i % SIMPLER_UB_STAGES];                            \
            if (aligned) {                                                                    \
                simpler_mte_copy_aligned(st->x, x + at, tile_blocks);                         \
                if (BINARY) simpler_mte_copy_aligned(st->y, y + at, tile_blocks);             \
                NAME##_compute(st, s, st->z, t.tile);                                         \
                simpler_mte_copy_aligned(z + at, st->z, tile_blocks);                         \
            } else {                                                                          \
                simpler_mte_copy(st->x, x + at, tile_blocks);                                 \
                if (BINARY) simpler_mte_copy(st->y, y + at, tile_blocks);                     \
                NAME##_compute(st, s, st->z, t.tile);                                         \
                simpler_mte_copy(z + at, st->z, tile_blocks);                                 \
            }                                                                                 \
        }                                                                                     \
        if (t.tail) {                                                                         \
            SimplerUbStage *st = &ub.stage[t.full_tiles % SIMPLER_UB_STAGES];                 \
            const uint64_t blocks = t.tail / SIMPLER_BLOCK_FLOATS;                            \
            simpler_mte_copy(st->x, x + at, blocks);                                          \
            if (BINARY) simpler_mte_copy(st->y, y + at, blocks);                              \
            NAME##_blocks(st->x, st->y, s, st->z, t.tail);                                    \
            simpler_mte_copy(z + at, st->z, blocks);                                          \
            at += t.tail;                                                                     \
        }                                                                                     \
        for (uint64_t i = 0; i < t.rest; ++i) z[at + i] = OP(x[at + i], y[at + i], s);        \
    }                                                                                         \
                                                                                              \
    int32_t simpler_kernel_##NAME##_f32(const SimplerKernelArgs *a, uint32_t block_idx,       \
                                        uint32_t block_dim) {                                 \
        if (a == 0 || a->in0 == 0 || (BINARY && a->in1 == 0) || a->out == 0)                  \
            return SIMPLER_E_BAD_ARGS;                                                        \
        const float *x = SIMPLER_CPTR(a->in0);                                                \
        const float *y = BINARY ? SIMPLER_CPTR(a->in1) : x;                                   \
        float *z = SIMPLER_PTR(a->out);                                                       \
        const SimplerVecTiling t = simpler_vec_tiling(a->n, block_idx, block_dim);            \
        const int aligned = simpler_aligned32(x + t.begin) &&                                 \
                            simpler_aligned32(y + t.begin) && simpler_aligned32(z + t.begin); \
        NAME##_pipeline(x, y, a->scalar, z, t, aligned);                                      \
        return SIMPLER_OK;                                                                    \
    }

#define SIMPLER_OP_ADD(x, y, s) ((x) + (y))
#define SIMPLER_OP_MUL(x, y, s) ((x) * (y))
#define SIMPLER_OP_ADDS(x, y, s) ((x) + (s))

SIMPLER_VEC_KERNEL(vec_add, 1, SIMPLER_OP_ADD)
SIMPLER_VEC_KERNEL(vec_mul, 1, SIMPLER_OP_MUL)
SIMPLER_VEC_KERNEL(vec_adds, 0, SIMPLER_OP_ADDS)
