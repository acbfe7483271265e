/* shape.c — shape inference: checks a node's arity, input ids and input types, then runs the
 * shape rule that ops.def's shape column names (defined in the op's family file, ops/), from
 * the node's input types and attributes to its result type (or, for ops whose type is
 * declared, a check of that type); and the helpers the rules are written with. Nothing here
 * trusts its input, and every failure is a message "OP: what is wrong", never a crash. */
#include "ir/ir.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>


dc_str dc_type_s(const dc_type *t) {
    dc_str r;
    dc_type_str(t, r.s, sizeof r.s);
    return r;
}

dc_str dc_ints_s(const dc_ints *v) {
    dc_str r;
    size_t k = (size_t)snprintf(r.s, sizeof r.s, "[");
    for (int i = 0; i < v->n && k < sizeof r.s; i++)
        k += (size_t)snprintf(r.s + k, sizeof r.s - k, i ? ",%lld" : "%lld", (long long)v->v[i]);
    if (k < sizeof r.s) snprintf(r.s + k, sizeof r.s - k, "]");
    return r;
}

bool dc_rule_fail(dc_rule *r, const char *fmt, ...) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", r->op);
    va_list ap;
    va_start(ap, fmt);
    dc_vprefixed(r->err, r->len, prefix, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- type validity ------------------------------------------------------------------ */

/* A well-formed type: known dtype, rank 0..6, dims >= 1, numel <= 2^40. what names it. */
bool dc_rule_check_type(dc_rule *r, const dc_type *t, const char *what) {
    if ((unsigned)t->dtype >= DC_NDTYPES) return dc_rule_fail(r, "%s has unknown dtype %d", what, (int)t->dtype);
    if (t->shape.rank < 0 || t->shape.rank > DC_MAX_RANK)
        return dc_rule_fail(r, "%s has rank %d, must be 0..%d", what, t->shape.rank, DC_MAX_RANK);
    int64_t numel = 1;
    for (int i = 0; i < t->shape.rank; i++) {
        int64_t d = t->shape.dim[i];
        if (d < 1) return dc_rule_fail(r, "%s has dim %d = %lld, must be >= 1", what, i, (long long)d);
        if (d > DC_MAX_NUMEL / numel)
            return dc_rule_fail(r, "%s has more than 2^40 elements", what);
        numel *= d;
    }
    return true;
}

bool dc_rule_dtype(dc_rule *r, int k, const char *role, dc_dtype want) {
    if (r->in[k]->dtype == want) return true;
    if (role) return dc_rule_fail(r, "%s must be %s, got %s", role, dc_dtype_name(want), dc_type_s(r->in[k]).s);
    return dc_rule_fail(r, "expects %s, got %s", dc_dtype_name(want), dc_dtype_name(r->in[k]->dtype));
}

bool dc_rule_rank(dc_rule *r, int k, const char *role, int rank, const char *layout) {
    if (r->in[k]->shape.rank == rank) return true;
    return dc_rule_fail(r, "%s must have rank %d%s, got %s", role, rank, layout, dc_type_s(r->in[k]).s);
}

bool dc_rule_min_rank(dc_rule *r, int k, const char *role, int rank) {
    if (r->in[k]->shape.rank >= rank) return true;
    return dc_rule_fail(r, "%s must have rank >= %d, got %s", role, rank, dc_type_s(r->in[k]).s);
}

bool dc_rule_axis(dc_rule *r, int64_t axis, int rank) {
    if (axis >= 0 && axis < rank) return true;
    return dc_rule_fail(r, "axis %lld out of range for rank %d", (long long)axis, rank);
}

/* dc_ints with one entry per axis (n == rank), each >= lo (and <= hi, an overflow guard). */
bool dc_rule_per_axis(dc_rule *r, const dc_ints *v, const char *what, int rank, int64_t lo, int64_t hi) {
    if (v->n != rank) return dc_rule_fail(r, "%s needs %d entries (one per axis), got %d", what, rank, v->n);
    for (int i = 0; i < rank; i++)
        if (v->v[i] < lo || v->v[i] > hi)
            return dc_rule_fail(r, "%s[%d] = %lld, must be in [%lld, %lld]", what, i, (long long)v->v[i],
                        (long long)lo, (long long)hi);
    return true;
}

dc_type dc_make_type(dc_dtype dt, const dc_shape *s) {
    dc_type t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.shape.rank = s->rank;
    for (int i = 0; i < s->rank; i++) t.shape.dim[i] = s->dim[i];
    return t;
}

/* The declared type of an op whose type is declared: a well-formed f32 type. */
bool dc_rule_declared_f32(dc_rule *r) {
    if (!dc_rule_check_type(r, &r->n->type, "declared type")) return false;
    if (r->n->type.dtype != DC_F32) return dc_rule_fail(r, "declared type must be f32, got %s", dc_type_s(&r->n->type).s);
    return true;
}

/* ---- dispatch ----------------------------------------------------------------------- */

static dc_shape_fn *const rule_of[DC_OP_COUNT] = {
#define DC_OP(NAME, text, kind, arity, attr, shape, vjp, ref, lower, form) [DC_OP_##NAME] = dc_shape_##shape,
#include "ir/ops.def"
#undef DC_OP
};

/* Arity, input ids and input types, before any rule looks at them. */
static bool check_inputs(dc_rule *r, const dc_graph *g) {
    const dc_node *n = r->n;
    int arity = dc_op_get(n->op)->arity;
    if (arity >= 0 && n->n_in != arity)
        return dc_rule_fail(r, "expects %d input%s, got %d", arity, arity == 1 ? "" : "s", n->n_in);
    if (arity < 0 && (n->n_in < 1 || n->n_in > DC_MAX_INPUTS))
        return dc_rule_fail(r, "expects 1 to %d inputs, got %d", DC_MAX_INPUTS, n->n_in);
    for (int k = 0; k < n->n_in; k++) {
        if (n->in[k] < 0 || n->in[k] >= g->n_nodes)
            return dc_rule_fail(r, "input %d refers to node %d, but the graph has %d nodes", k, n->in[k], g->n_nodes);
        r->in[k] = &g->nodes[n->in[k]].type;
        char what[32];
        snprintf(what, sizeof what, "input %d", k);
        if (!dc_rule_check_type(r, r->in[k], what)) return false;
    }
    return true;
}

bool dc_infer_type(const dc_graph *g, const dc_node *n, dc_type *out, char *err, size_t len) {
    dc_rule r = { .n = n, .op = "?", .err = err, .len = len };
    if ((unsigned)n->op >= DC_OP_COUNT) {
        snprintf(err, len, "unknown op %d", (int)n->op);
        return false;
    }
    r.op = dc_op_name(n->op);
    dc_type t;
    if (!check_inputs(&r, g) || !rule_of[n->op](&r, &t) || !dc_rule_check_type(&r, &t, "result")) return false;
    *out = t;
    return true;
}
