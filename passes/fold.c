/* fold.c — constant folding. Constants are FILL nodes (one value everywhere).
 * Rewrites into a FILL of the node's own type:
 *   - an elementwise op (cast included) whose inputs are all fills: the value is its
 *     ops.def formula, evaluated by dc_map_eval as the ref kernels evaluate it, so it is bit
 *     for bit the kernel's;
 *   - sum, mean, max of a fill: max is the value; sum and mean are what the kernel's double
 *     accumulation gives (exact while the reduced count is at most 2^29: past that the
 *     node is left alone); i32 sums wrap;
 *   - reshape, broadcast_to, transpose, slice of a fill; pad of a fill with its own value;
 *     concat of fills of one value.
 * Keeps: every node it cannot fold exactly: an i32 result a fill's f32 attribute cannot
 * hold, ops without a formula, reductions of i32 but sum and max.
 * After: no foldable node is left (a folded value is seen by its users in the same walk).
 * The fills that fed folded nodes stay, for dce. Idempotent. */
#include <string.h>

#include "ir/scalar.h"
#include "passes/passes.h"
#include "passes/rewrite.h"

#define MAX_EXACT_COUNT ((int64_t)1 << 29)

/* A fill's value as the kernel stores it: f32 bits, or the i32 it converts to. */
typedef dc_scalar scalar;

static scalar as_scalar(dc_dtype t, float value) {
    scalar s;
    if (t == DC_I32) s.i = dc_f32_to_i32(value);
    else s.f = value;
    return s;
}

static bool fill_scalar(const dc_graph *g, int id, scalar *s) {
    const dc_node *n = &g->nodes[id];
    if (n->op != DC_OP_FILL) return false;
    *s = as_scalar(n->type.dtype, n->attr.scalar.value);
    return true;
}

/* The fill attribute holding s as dtype t; false if an i32 value has no exact f32 form. */
static bool fill_attr(scalar s, dc_dtype t, float *value) {
    if (t == DC_I32) return dc_i32_fill_exact(s.i, value);
    *value = s.f;
    return true;
}

/* An elementwise op on fill values x[0..n_in), inputs of dtype `in` (the last input's): its
 * formula, or cast's conversion. */
static bool eval_elementwise(const dc_node *n, dc_dtype in, const scalar *x, scalar *y) {
    if (dc_op_get(n->op)->lower == DC_LOWER_CAST) {
        *y = dc_cast_eval(in, n->type.dtype, x[0]);
        return true;
    }
    return dc_map_eval(n->op, in, n->attr.scalar.value, x, y);
}

/* sum, mean, max over count elements of value x (as reduction.c computes them) */
static bool eval_reduction(const dc_node *n, dc_dtype in, int64_t count, scalar x, scalar *y) {
    dc_row_value v = dc_op_get(n->op)->row.value;
    if (v == DC_ROW_MAX) {
        *y = x;
        return true;
    }
    if (v != DC_ROW_SUM && !(v == DC_ROW_MEAN && in == DC_F32)) return false;
    if (in == DC_I32) {
        y->i = (int32_t)((uint32_t)x.i * (uint32_t)count);
        return true;
    }
    if (count > MAX_EXACT_COUNT) return false;
    double sum = 0.0 + (double)x.f * (double)count;  /* 0.0 + : the accumulator starts at +0 */
    y->f = (float)(v == DC_ROW_SUM ? sum : sum / (double)count);
    return true;
}

/* The value of mapped node n if it folds; false otherwise. */
static bool fold_value(const dc_graph *g, const dc_node *n, scalar *y) {
    scalar x[DC_MAX_INPUTS];
    if (n->n_in == 0) return false;
    for (int k = 0; k < n->n_in; k++)
        if (!fill_scalar(g, n->in[k], &x[k])) return false;
    const dc_type *t0 = &g->nodes[n->in[0]].type;
    dc_dtype last = g->nodes[n->in[n->n_in - 1]].type.dtype;
    const dc_op_info *info = dc_op_get(n->op);
    if (info->row.rows == DC_ROWS_AXES)
        return eval_reduction(n, t0->dtype, dc_numel(&t0->shape) / dc_numel(&n->type.shape), x[0], y);
    if (info->kind == DC_KIND_ELEMENTWISE) return eval_elementwise(n, last, x, y);
    switch (n->op) {
    case DC_OP_RESHAPE: case DC_OP_BROADCAST_TO: case DC_OP_TRANSPOSE: case DC_OP_SLICE:
        *y = x[0];
        return true;
    case DC_OP_PAD:
        *y = x[0];
        return as_scalar(n->type.dtype, n->attr.pad.value).i == x[0].i;
    case DC_OP_CONCAT:
        for (int k = 1; k < n->n_in; k++)
            if (x[k].i != x[0].i) return false;
        *y = x[0];
        return true;
    default:
        return false;
    }
}

bool dc_pass_fold(dc_graph *g, const dc_pass_opts *o, char *err, size_t len) {
    (void)o, (void)err, (void)len;
    dc_rewriter rw;
    dc_rw_begin(&rw, g);
    for (int i = 0; i < rw.n_old; i++) {
        dc_node n = dc_rw_mapped(&rw, i);
        scalar y;
        float value;
        if (fold_value(g, &n, &y) && fill_attr(y, n.type.dtype, &value))
            rw.map[i] = dc_rw_fill(&rw, i, value, &n.type);
        else
            dc_rw_keep(&rw, i);
    }
    dc_rw_end(&rw);
    return true;
}
