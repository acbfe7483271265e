/* formula.h — the C meaning of the primitives that ops.def's formulas are written in (the form
 * column of MAP ops), for the code that expands the formulas: the ref kernels
 * (ops/elementwise.c) and single-value evaluation (ir/scalar.c: constant folding and the
 * kernel-IR interpreter). codegen/llvm/emit.c gives the same primitives their LLVM meaning.
 *
 * Before expanding a formula, define x, y, z (the operands) and e (pow's exponent) as C
 * values of one dtype, float or int32_t; each primitive picks its f32 or i32 semantics from
 * its first operand's C type (ir/scalar.h: i32 arithmetic wraps, division by 0 gives 0). The
 * names are short because formulas must read like math: include this header last, and only in
 * files that expand formulas. */
#ifndef DC_FORMULA_H
#define DC_FORMULA_H

#include "ir/scalar.h"

#define DC_F32_OR_I32_(a, F, I) _Generic((a), float: (F), default: (I))

#define X x
#define Y y
#define Z z
#define E e
#define K(c) (c)
#define NEG(a) DC_F32_OR_I32_(a, -(a), dc_i32_neg(a))
#define ABS(a) DC_F32_OR_I32_(a, fabsf((float)(a)), (a) < 0 ? dc_i32_neg(a) : (a))
#define EXP(a) expf(a)
#define LOG(a) logf(a)
#define LOG1P(a) log1pf(a)
#define SQRT(a) sqrtf(a)
#define SIN(a) sinf(a)
#define COS(a) cosf(a)
#define TANH(a) tanhf(a)
#define SIGMOID(a) dc_sigmoidf(a)
#define POW(a, b) powf(a, b)
#define ADD(a, b) DC_F32_OR_I32_(a, (a) + (b), dc_i32_add(a, b))
#define SUB(a, b) DC_F32_OR_I32_(a, (a) - (b), dc_i32_sub(a, b))
#define MUL(a, b) DC_F32_OR_I32_(a, (a) * (b), dc_i32_mul(a, b))
#define DIV(a, b) DC_F32_OR_I32_(a, (a) / (b), dc_i32_div(a, b))
#define MAX(a, b) DC_F32_OR_I32_(a, dc_maxf(a, b), (a) > (b) ? (a) : (b))
#define MIN(a, b) DC_F32_OR_I32_(a, dc_minf(a, b), (a) < (b) ? (a) : (b))
#define EQ(a, b) ((int32_t)((a) == (b)))
#define NE(a, b) ((int32_t)((a) != (b)))
#define LT(a, b) ((int32_t)((a) < (b)))
#define LE(a, b) ((int32_t)((a) <= (b)))
#define GT(a, b) ((int32_t)((a) > (b)))
#define GE(a, b) ((int32_t)((a) >= (b)))
#define WHERE(c, a, b) ((c) ? (a) : (b))

#endif
