/* scalar.c — single values of the elementwise ops: dc_map_eval expands every MAP row's formula
 * of ops.def with ir/formula.h's C primitives, as the ref kernels do, and dc_cast_eval is
 * cast's conversion. Constant folding and the kernel-IR interpreter call them. */
#include "ir/formula.h"

dc_scalar dc_cast_eval(dc_dtype from, dc_dtype to, dc_scalar x) {
    dc_scalar y = x;
    if (from == DC_F32 && to == DC_I32) y.i = dc_f32_to_i32(x.f);
    else if (from == DC_I32 && to == DC_F32) y.f = (float)x.i;
    return y;
}

static bool eval_f32(dc_op op, float e, float x, float y, float z, dc_scalar *out) {
    (void)e, (void)x, (void)y, (void)z;
#define F32(v) out->f = (v); return true;
#define ANY(v) out->f = (v); return true;
#define CMP(v) out->i = (v); return true;
    switch (op) {
#define DC_OP DC_FORM_CASE
#include "ir/ops.def"
#undef DC_OP
    default: return false;
    }
#undef F32
#undef ANY
#undef CMP
}

static bool eval_i32(dc_op op, int32_t x, int32_t y, int32_t z, dc_scalar *out) {
    (void)x, (void)y, (void)z;
#define F32(v) return false;
#define ANY(v) out->i = (v); return true;
#define CMP(v) out->i = (v); return true;
    switch (op) {
#define DC_OP DC_FORM_CASE
#include "ir/ops.def"
#undef DC_OP
    default: return false;
    }
#undef F32
#undef ANY
#undef CMP
}

bool dc_map_eval(dc_op op, dc_dtype t, float e, const dc_scalar *x, dc_scalar *y) {
    if ((unsigned)op >= DC_OP_COUNT || dc_op_get(op)->lower != DC_LOWER_MAP) return false;
    int n = dc_op_get(op)->arity;
    if (op == DC_OP_WHERE) { /* the condition is i32 whatever the dtype of the values */
        *y = x[0].i ? x[1] : x[2];
        return true;
    }
    dc_scalar a = x[0], b = n > 1 ? x[1] : x[0], c = n > 2 ? x[2] : x[0];
    return t == DC_F32 ? eval_f32(op, e, a.f, b.f, c.f, y) : eval_i32(op, a.i, b.i, c.i, y);
}
