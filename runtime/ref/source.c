/* source.c — ref kernels of the computed sources: fill (every element = value) and iota
 * (element = its index along axis), f32 or i32. INPUT and PARAM are the executor's. */
#include <stdio.h>

#include "runtime/ref/ref.h"

#define PAR_MIN 32768

/* value as i32: truncated toward zero, saturated to the i32 range, NaN -> 0 */
static int32_t to_i32(float v) {
    if (v != v) return 0;
    if (v >= 2147483648.0f) return INT32_MAX;
    if (v <= -2147483648.0f) return INT32_MIN;
    return (int32_t)v;
}

/* out[i] = value, for out of n elements */
static void fill(dc_tensor *out, float value) {
    int64_t n = dc_numel(&out->type.shape);
    if (out->type.dtype == DC_F32) {
        float *y = out->data;
#pragma omp parallel for if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = value;
    } else {
        int32_t *y = out->data, v = to_i32(value);
#pragma omp parallel for if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = v;
    }
}

/* out viewed as [outer, dim[axis], inner]: out[o, k, j] = k */
static void iota(dc_tensor *out, int axis) {
    const dc_shape *s = &out->type.shape;
    int64_t n = dc_numel(s), inner = 1, d = s->dim[axis];
    for (int i = axis + 1; i < s->rank; i++) inner *= s->dim[i];
    bool f32 = out->type.dtype == DC_F32;
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        int64_t k = i / inner % d;
        if (f32) ((float *)out->data)[i] = (float)k;
        else ((int32_t *)out->data)[i] = (int32_t)k;
    }
}

bool dc_ref_source(const dc_ref_args *a) {
    switch (a->n->op) {
    case DC_OP_FILL: fill(a->out, a->n->attr.scalar.value); return true;
    case DC_OP_IOTA: iota(a->out, (int)a->n->attr.axis.axis); return true;
    default:
        snprintf(a->err, a->len, "no ref kernel for %s", dc_op_name(a->n->op));
        return false;
    }
}
