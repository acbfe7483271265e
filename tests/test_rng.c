/* test_rng.c — Philox4x32-10 against the Random123 known-answer vectors, and the stream
 * helpers: word layout, reproducibility, range and moments of uniforms and normals. */
#include "tests/test.h"

#include "runtime/runtime.h"

static void check_kat(const uint32_t ctr[4], const uint32_t key[2], const uint32_t want[4]) {
    uint32_t out[4];
    dc_philox4x32_10(ctr, key, out);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(out[i] == want[i], "word %d = %08x, expected %08x", i, out[i], want[i]);
}

TEST(rng_philox_known_answers) {
    check_kat((uint32_t[]){ 0, 0, 0, 0 }, (uint32_t[]){ 0, 0 },
              (uint32_t[]){ 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 });
    check_kat((uint32_t[]){ 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff },
              (uint32_t[]){ 0xffffffff, 0xffffffff },
              (uint32_t[]){ 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd });
    check_kat((uint32_t[]){ 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344 },
              (uint32_t[]){ 0xa4093822, 0x299f31d0 },
              (uint32_t[]){ 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1 });
}

/* word i of (seed, stream) is word i%4 of the block (i/4, stream) keyed by seed */
TEST(rng_u32_layout) {
    uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull;
    uint64_t i = (5ull << 32) * 4 + 4 * 7 + 2;  /* block 5*2^32 + 7, word 2 */
    uint64_t block = i / 4;
    uint32_t out[4];
    dc_philox4x32_10((uint32_t[]){ (uint32_t)block, (uint32_t)(block >> 32), 0x76543210u, 0xfedcba98u },
                     (uint32_t[]){ 0x89abcdefu, 0x01234567u }, out);
    CHECK(dc_rng_u32(seed, stream, i) == out[2]);
    CHECK(dc_rng_u32(seed, stream, 3) != dc_rng_u32(seed, stream + 1, 3));
    CHECK(dc_rng_u32(seed, stream, 3) != dc_rng_u32(seed + 1, stream, 3));
    CHECK(dc_rng_u32(seed, stream, 3) == dc_rng_u32(seed, stream, 3));
}

TEST(rng_uniform01_moments_and_range) {
    const int n = 1000000;
    double s = 0, s2 = 0;
    float lo = 1, hi = 0;
    for (int i = 0; i < n; i++) {
        float u = dc_rng_uniform01(42, 7, (uint64_t)i);
        s += u;
        s2 += (double)u * u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    CHECK(lo > 0.0f);
    CHECK(hi < 1.0f);
    CHECK_NEAR(mean, 0.5, 0.002, 0);
    CHECK_NEAR(var, 1.0 / 12, 0.001, 0);
    /* the extreme words map strictly inside (0, 1) */
    CHECK((0.5f * 0x1p-23f) > 0.0f && ((float)((1u << 23) - 1) + 0.5f) * 0x1p-23f < 1.0f);
}

TEST(rng_normal_moments) {
    const int n = 1000000;
    double s = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < n; i++) {
        double z = dc_rng_normal(3, 11, (uint64_t)i);
        CHECK_MSG(isfinite(z), "normal %d is %g", i, z);
        s += z;
        s2 += z * z;
        s4 += z * z * z * z;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    CHECK_NEAR(mean, 0.0, 0.005, 0);
    CHECK_NEAR(var, 1.0, 0.006, 0);
    CHECK_NEAR(s4 / n, 3.0, 0.05, 0);  /* kurtosis of a Gaussian */
}

/* normal i is Box-Muller of uniforms 2i and 2i+1, computed here in long double */
TEST(rng_normal_box_muller) {
    for (uint64_t i = 0; i < 100; i++) {
        long double u1 = dc_rng_uniform01(9, 2, 2 * i), u2 = dc_rng_uniform01(9, 2, 2 * i + 1);
        long double z = sqrtl(-2.0L * logl(u1)) * cosl(2.0L * 3.14159265358979323846L * u2);
        CHECK_NEAR(dc_rng_normal(9, 2, i), (double)z, 1e-5, 1e-5);
    }
}
