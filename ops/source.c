/* source.c — the source ops: input and param (values the executor holds; no kernel), fill
 * (every element = value) and iota (element = its index along axis), f32 or i32. Their type is
 * declared; the shape rules check it. None is differentiable. */
#include <stdio.h>

#include "ir/scalar.h"
#include "ops/ops.h"

#define PAR_MIN 32768

/* ---- shape rules: the declared type, checked ------------------------------------------ */

bool dc_shape_declared(dc_rule *r, dc_type *out) {
    const dc_node *n = r->n;
    if (!dc_rule_check_type(r, &n->type, "declared type")) return false;
    *out = dc_make_type(n->type.dtype, &n->type.shape);
    return true;
}

bool dc_shape_param(dc_rule *r, dc_type *out) {
    const dc_node *n = r->n;
    if (!dc_rule_check_type(r, &n->type, "declared type")) return false;
    if (n->type.dtype != DC_F32) return dc_rule_fail(r, "params must be f32, got %s", dc_type_s(&n->type).s);
    if ((unsigned)n->attr.init.kind >= DC_NINITS) return dc_rule_fail(r, "unknown init kind %d", (int)n->attr.init.kind);
    return dc_shape_declared(r, out);
}

bool dc_shape_iota(dc_rule *r, dc_type *out) {
    const dc_node *n = r->n;
    if (!dc_rule_check_type(r, &n->type, "declared type")) return false;
    if (!dc_rule_axis(r, n->attr.axis.axis, n->type.shape.rank)) return false;
    return dc_shape_declared(r, out);
}

/* ---- reference kernels ---------------------------------------------------------------- */

/* out[i] = value (as i32: truncated toward zero, saturated, NaN -> 0) */
bool dc_ref_fill(const dc_ref_args *a) {
    dc_tensor *out = a->out;
    float value = a->n->attr.scalar.value;
    int64_t n = dc_numel(&out->type.shape);
    if (out->type.dtype == DC_F32) {
        float *y = out->data;
#pragma omp parallel for if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = value;
    } else {
        int32_t *y = out->data, v = dc_f32_to_i32(value);
#pragma omp parallel for if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = v;
    }
    return true;
}

/* out viewed as [outer, dim[axis], inner]: out[o, k, j] = k */
bool dc_ref_iota(const dc_ref_args *a) {
    dc_tensor *out = a->out;
    const dc_shape *s = &out->type.shape;
    int axis = (int)a->n->attr.axis.axis;
    int64_t n = dc_numel(s), inner = 1, d = s->dim[axis];
    for (int i = axis + 1; i < s->rank; i++) inner *= s->dim[i];
    bool f32 = out->type.dtype == DC_F32;
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        int64_t k = i / inner % d;
        if (f32) ((float *)out->data)[i] = (float)k;
        else ((int32_t *)out->data)[i] = (int32_t)k;
    }
    return true;
}
