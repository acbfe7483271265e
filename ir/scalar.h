/* scalar.h — the value of every elementwise op on scalars, in one place: the ref kernels
 * (runtime/ref/elementwise.c) expand these expressions in their loops and constant folding
 * (passes/fold.c) calls them on single values, so a folded constant is bit for bit what the
 * kernel would have computed.
 *
 * Tables (X-macros): X(OP, EXPR) with EXPR over the operands v (unary), u and v (binary) and
 * e (pow's exponent). i32 arithmetic wraps; i32 division by 0 gives 0 and INT_MIN / -1 gives
 * INT_MIN; f32 maximum/minimum propagate NaN from either side; f32 -> i32 casts truncate
 * toward zero, saturate and send NaN to 0. */
#ifndef DC_SCALAR_H
#define DC_SCALAR_H

#include <math.h>
#include <stdint.h>

#include "ir/ir.h"

static inline float dc_sigmoidf(float v) {
    if (v >= 0) return 1.0f / (1.0f + expf(-v));
    float e = expf(v);
    return e / (1.0f + e);
}

/* tanh approximation: 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))) */
static inline float dc_geluf(float v) {
    return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

static inline float dc_maxf(float u, float v) { return (u != u || u > v) ? u : v; }
static inline float dc_minf(float u, float v) { return (u != u || u < v) ? u : v; }

static inline int32_t dc_i32_add(int32_t u, int32_t v) { return (int32_t)((uint32_t)u + (uint32_t)v); }
static inline int32_t dc_i32_sub(int32_t u, int32_t v) { return (int32_t)((uint32_t)u - (uint32_t)v); }
static inline int32_t dc_i32_mul(int32_t u, int32_t v) { return (int32_t)((uint32_t)u * (uint32_t)v); }
static inline int32_t dc_i32_neg(int32_t v) { return (int32_t)(0u - (uint32_t)v); }

static inline int32_t dc_i32_div(int32_t u, int32_t v) {
    if (v == 0) return 0;
    if (v == -1) return dc_i32_neg(u);
    return u / v;
}

static inline int32_t dc_f32_to_i32(float v) {
    if (v != v) return 0;
    if (v >= 2147483648.0f) return INT32_MAX;
    if (v <= -2147483648.0f) return INT32_MIN;
    return (int32_t)v;
}

#define DC_SCALAR_F32_UNARY(X)                                                            \
    X(NEG, -v) X(ABS, fabsf(v)) X(EXP, expf(v)) X(LOG, logf(v)) X(SQRT, sqrtf(v))         \
    X(RSQRT, 1.0f / sqrtf(v)) X(SQUARE, v * v) X(POW, powf(v, e)) X(SIN, sinf(v))         \
    X(COS, cosf(v)) X(TANH, tanhf(v)) X(SIGMOID, dc_sigmoidf(v))                          \
    X(SILU, v * dc_sigmoidf(v)) X(GELU, dc_geluf(v)) X(RELU, v < 0 ? 0.0f : v)

#define DC_SCALAR_I32_UNARY(X)                                                            \
    X(NEG, dc_i32_neg(v)) X(ABS, v < 0 ? dc_i32_neg(v) : v) X(SQUARE, dc_i32_mul(v, v))

#define DC_SCALAR_F32_BINARY(X)                                                           \
    X(ADD, u + v) X(SUB, u - v) X(MUL, u * v) X(DIV, u / v)                               \
    X(MAXIMUM, dc_maxf(u, v)) X(MINIMUM, dc_minf(u, v))

#define DC_SCALAR_I32_BINARY(X)                                                           \
    X(ADD, dc_i32_add(u, v)) X(SUB, dc_i32_sub(u, v)) X(MUL, dc_i32_mul(u, v))            \
    X(DIV, dc_i32_div(u, v)) X(MAXIMUM, u > v ? u : v) X(MINIMUM, u < v ? u : v)

/* comparisons, on either dtype: i32 0/1 */
#define DC_SCALAR_COMPARE(X)                                                              \
    X(EQ, u == v) X(NE, u != v) X(LT, u < v) X(LE, u <= v) X(GT, u > v) X(GE, u >= v)

/* ---- single-value evaluation: false when op is not in the table ------------------------ */

#define DC_SCALAR_CASE_(OP, EXPR) case DC_OP_##OP: *y = (EXPR); return true;

static inline bool dc_scalar_f32_unary(dc_op op, float e, float v, float *y) {
    switch (op) {
    DC_SCALAR_F32_UNARY(DC_SCALAR_CASE_)
    default: (void)e; return false;
    }
}

static inline bool dc_scalar_i32_unary(dc_op op, int32_t v, int32_t *y) {
    switch (op) {
    DC_SCALAR_I32_UNARY(DC_SCALAR_CASE_)
    default: return false;
    }
}

static inline bool dc_scalar_f32_binary(dc_op op, float u, float v, float *y) {
    switch (op) {
    DC_SCALAR_F32_BINARY(DC_SCALAR_CASE_)
    default: return false;
    }
}

static inline bool dc_scalar_i32_binary(dc_op op, int32_t u, int32_t v, int32_t *y) {
    switch (op) {
    DC_SCALAR_I32_BINARY(DC_SCALAR_CASE_)
    default: return false;
    }
}

static inline bool dc_scalar_f32_compare(dc_op op, float u, float v, int32_t *y) {
    switch (op) {
    DC_SCALAR_COMPARE(DC_SCALAR_CASE_)
    default: return false;
    }
}

static inline bool dc_scalar_i32_compare(dc_op op, int32_t u, int32_t v, int32_t *y) {
    switch (op) {
    DC_SCALAR_COMPARE(DC_SCALAR_CASE_)
    default: return false;
    }
}

#undef DC_SCALAR_CASE_

#endif
