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

/* the formula of MAP op `op` on a, b, c (of dtype t) */
static bool eval(dc_op op, dc_dtype t, float e, dc_scalar a, dc_scalar b, dc_scalar c, dc_scalar *out) {
    bool f32 = t == DC_F32;
    (void)e;
#define AS_F32(v) { float x = a.f, y = b.f, z = c.f; (void)x, (void)y, (void)z; v; }
#define AS_I32(v) { int32_t x = a.i, y = b.i, z = c.i; (void)x, (void)y, (void)z; v; }
#define F32(v) if (!f32) return false; AS_F32(out->f = (v)) return true;
#define ANY(v) if (f32) AS_F32(out->f = (v)) else AS_I32(out->i = (v)) return true;
#define CMP(v) if (f32) AS_F32(out->i = (v)) else AS_I32(out->i = (v)) return true;
    switch (op) {
#define DC_OP DC_FORM_CASE
#include "ir/ops.def"
#undef DC_OP
    default: return false;
    }
#undef F32
#undef ANY
#undef CMP
#undef AS_F32
#undef AS_I32
}

bool dc_map_eval(dc_op op, dc_dtype t, float e, const dc_scalar *x, dc_scalar *y) {
    if ((unsigned)op >= DC_OP_COUNT || dc_op_get(op)->lower != DC_LOWER_MAP) return false;
    int n = dc_op_get(op)->arity;
    if (op == DC_OP_WHERE) { /* the condition is i32 whatever the dtype of the values */
        *y = x[0].i ? x[1] : x[2];
        return true;
    }
    return eval(op, t, e, x[0], n > 1 ? x[1] : x[0], n > 2 ? x[2] : x[0], y);
}
