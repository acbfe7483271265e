/* scalar.h — the C helpers of the elementwise formulas (ops.def's form column): the f32
 * functions with more than one operation (sigmoid's two-sided form, NaN-propagating max and
 * min) and the i32 semantics (arithmetic wraps; division by 0 gives 0 and INT_MIN / -1 gives
 * INT_MIN; f32 -> i32 casts truncate toward zero, saturate and send NaN to 0). The formulas
 * themselves are expanded on these by ir/formula.h (the ref kernels of ops/elementwise.c and
 * dc_map_eval, which constant folding and the kernel-IR interpreter call), so a folded
 * constant is bit for bit what the kernel would have computed. */
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

/* One value of f32 or i32. */
typedef union { float f; int32_t i; } dc_scalar;

/* The value of MAP op `op` (its ops.def formula) on operands x[0..arity) of dtype t (where:
 * x[0] is the i32 condition, x[1] and x[2] of dtype t); e is pow's exponent. false when op has
 * no formula for t. */
bool dc_map_eval(dc_op op, dc_dtype t, float e, const dc_scalar *x, dc_scalar *y);
/* cast of x from dtype `from` to `to`. */
dc_scalar dc_cast_eval(dc_dtype from, dc_dtype to, dc_scalar x);

#endif
