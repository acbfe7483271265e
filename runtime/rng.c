/* rng.c — the counter-based generator: Philox4x32-10 (Salmon et al., SC 2011) and the
 * stream helpers every random op and parameter initialiser draws from. A value depends only
 * on (seed, stream, index), so results never depend on threads or evaluation order. */
#include "runtime/runtime.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void dc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

uint32_t dc_rng_u32(uint64_t seed, uint64_t stream, uint64_t i) {
    uint64_t block = i / 4;
    const uint32_t ctr[4] = { (uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                              (uint32_t)(stream >> 32) };
    const uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) };
    uint32_t out[4];
    dc_philox4x32_10(ctr, key, out);
    return out[i % 4];
}

/* The top 23 bits k give (k + 0.5) / 2^23: exact in float, strictly inside (0, 1). */
float dc_rng_uniform01(uint64_t seed, uint64_t stream, uint64_t i) {
    uint32_t k = dc_rng_u32(seed, stream, i) >> 9;
    return ((float)k + 0.5f) * 0x1p-23f;
}

/* Box-Muller in double: z = sqrt(-2 ln u1) cos(2 pi u2), u1 and u2 from words 2i, 2i+1. */
float dc_rng_normal(uint64_t seed, uint64_t stream, uint64_t i) {
    double u1 = dc_rng_uniform01(seed, stream, 2 * i);
    double u2 = dc_rng_uniform01(seed, stream, 2 * i + 1);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}
