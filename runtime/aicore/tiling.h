/*
 * Tiling of the AICore kernels: how a core's slice of a buffer is cut into
 * tiles that fit its local buffer (the Unified Buffer of an AIV core, L0A/L0B
 * of an AIC core), and the copy-in / compute / copy-out pipeline that moves
 * them, double-buffered as the MTE2 and MTE3 engines do on hardware.
 *
 * Every size here is a compile-time constant per arch, so the compiler
 * specialises each kernel for its tile shapes, as the AscendC toolchain does.
 */
#ifndef SIMPLER_AICORE_TILING_H
#define SIMPLER_AICORE_TILING_H

#include <stdint.h>

#include "slice.h"

/* Unified Buffer of one AIV core, and how much of it one pipeline stage takes. */
#if SIMPLER_AICORE_MIX
#define SIMPLER_UB_BYTES (256u * 1024u)
#else
#define SIMPLER_UB_BYTES (192u * 1024u)
#endif
/* Two stages in flight (ping, pong), up to three float tensors each. */
#define SIMPLER_UB_STAGES 2u
#define SIMPLER_UB_TENSORS 3u
/*
 * Elements per vector tile: one repeat of the vector unit is 64 floats (256 B).
 * A core's slice uses the longest tile that still gives each UB stage a full
 * tile (so copy-in of one overlaps compute of the other), down to the shortest.
 */
#define SIMPLER_VEC_REPEAT 64u
#define SIMPLER_VEC_TILE 1024u
#define SIMPLER_VEC_TILE_MIN 256u
/* Data moves in 32-byte blocks: 8 floats. */
#define SIMPLER_BLOCK_FLOATS 8u

_Static_assert(SIMPLER_UB_STAGES * SIMPLER_UB_TENSORS * SIMPLER_VEC_TILE * sizeof(float) <=
                   SIMPLER_UB_BYTES,
               "the vector pipeline must fit the Unified Buffer");
_Static_assert(SIMPLER_VEC_TILE % SIMPLER_VEC_REPEAT == 0, "tiles are whole repeats");

/* One core's share of a vector kernel: full tiles, then a tail of whole blocks, then a rest. */
typedef struct SimplerVecTiling {
    uint64_t begin;      /* first element of the core's slice */
    uint64_t tile;       /* elements per tile: 1024, 512 or 256 */
    uint64_t full_tiles; /* tiles of `tile` elements */
    uint64_t tail;       /* elements after the full tiles, a multiple of 8 */
    uint64_t rest;       /* the last 0..7 elements */
} SimplerVecTiling;

static inline SimplerVecTiling simpler_vec_tiling(uint64_t total, uint32_t block_idx,
                                                  uint32_t block_dim) {
    SimplerVecTiling t;
    uint64_t end;
    simpler_block_slice(total, block_idx, block_dim, &t.begin, &end);
    const uint64_t len = end - t.begin;
    t.tile = SIMPLER_VEC_TILE;
    while (t.tile > SIMPLER_VEC_TILE_MIN && len < SIMPLER_UB_STAGES * t.tile) t.tile /= 2;
    t.full_tiles = len / t.tile;
    const uint64_t left = len - t.full_tiles * t.tile;
    t.tail = left - left % SIMPLER_BLOCK_FLOATS;
    t.rest = left - t.tail;
    return t;
}

/* The cube's fractal: 16 x 16 floats in L0A/L0B; K is cut into steps of SIMPLER_CUBE_K. */
#define SIMPLER_FRACTAL 16u
#define SIMPLER_CUBE_K 64u

#endif
