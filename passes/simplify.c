/* simplify.c — algebraic simplification: the rewrite rules of the table below, applied in
 * forward walks until a walk rewrites nothing (a fixed point).
 * Rewrites (x, y values; 0 and 1 fills, which may be of any shape that broadcasts):
 *   x*1, 1*x, x+0, 0+x, x-0, x/1 -> x          neg(neg(x)) -> x
 *   x-x, x*0, 0*x -> 0, when x is i32 or known finite (inf-inf and 0*inf are NaN)
 *   x-neg(y) -> x+y     x+neg(y), neg(y)+x -> x-y     where(c fill, a, b) -> a or b
 *   transpose(transpose(x)) -> one transpose (composed perm); identity perm -> x
 *   reshape(reshape(x)) -> reshape(x); broadcast_to(broadcast_to(x)) -> broadcast_to(x);
 *   reshape, broadcast_to or cast to the type x already has -> x
 *   op(broadcast_to(x), y) -> op(x, y) for a broadcasting elementwise op, when the result
 *     type stays (the op broadcasts by itself)
 * Fills moved or broadcast (broadcast_to of a fill, ...) are fold's to rewrite.
 * Guarantees: every node's type is unchanged; where the kept value is smaller than the
 * node it replaces (x*1 with a larger 1), a broadcast_to restores the shape. The values are
 * bit for bit the same except signed zeros: x+0 gives -0 where the op gave +0, x*0 and x-x
 * give +0 where the op gave -0 (equal as numbers). Replaced nodes that become unused stay,
 * for dce. Idempotent. */
#include <math.h>
#include <string.h>

#include "passes/passes.h"
#include "passes/rewrite.h"

#define FINITE_DEPTH 16   /* how far known_finite looks up a chain of producers */
#define RANDOM_BOUND 1e30 /* random ops with |a|, |b| below this draw finite numbers */

/* A rule looks at mapped node n (inputs are new ids), old id `at`; it returns the new id of
 * the value that replaces n (emitting nodes if it needs to), or -1 if it does not apply. */
typedef int (*rule_fn)(dc_rewriter *rw, int at, const dc_node *n);

static const dc_node *node(const dc_rewriter *rw, int id) { return &rw->g->nodes[id]; }

static bool is_fill(const dc_rewriter *rw, int id, double v) {
    double f;
    return dc_fill_value(rw->g, id, &f) && f == v;
}

static bool is_op(const dc_rewriter *rw, int id, dc_op op) { return node(rw, id)->op == op; }

/* True when every element of node id is a finite number (i32 always is). */
static bool known_finite(const dc_graph *g, int id, int depth) {
    const dc_node *n = &g->nodes[id];
    if (n->type.dtype == DC_I32) return true;
    switch (n->op) {
    case DC_OP_FILL: return isfinite(n->attr.scalar.value);
    case DC_OP_IOTA: case DC_OP_ONE_HOT: return true;
    case DC_OP_CAST: return g->nodes[n->in[0]].type.dtype == DC_I32;
    case DC_OP_UNIFORM: case DC_OP_NORMAL: case DC_OP_GUMBEL:
        return fabsf(n->attr.random.a) < RANDOM_BOUND && fabsf(n->attr.random.b) < RANDOM_BOUND;
    case DC_OP_NEG: case DC_OP_ABS: case DC_OP_RELU: case DC_OP_SIN: case DC_OP_COS:
    case DC_OP_TANH: case DC_OP_SIGMOID:
    case DC_OP_RESHAPE: case DC_OP_BROADCAST_TO: case DC_OP_TRANSPOSE: case DC_OP_SLICE:
        return depth > 0 && known_finite(g, n->in[0], depth - 1);
    default: return false;
    }
}

/* x as a value of type t (x's type broadcasts to t): x itself or broadcast_to(x). */
static int as_type(dc_rewriter *rw, int at, int x, const dc_type *t) {
    if (dc_type_eq(&node(rw, x)->type, t)) return x;
    return dc_rw_emit(rw, at, DC_OP_BROADCAST_TO, 1, &x, NULL, t);
}

/* ---- the rules ----------------------------------------------------------------------- */

/* x op e -> x where e is op's right identity (and, if commutes, its left one) */
static int identity(dc_rewriter *rw, int at, const dc_node *n, double e, bool commutes) {
    if (is_fill(rw, n->in[1], e)) return as_type(rw, at, n->in[0], &n->type);
    if (commutes && is_fill(rw, n->in[0], e)) return as_type(rw, at, n->in[1], &n->type);
    return -1;
}

static int mul_one(dc_rewriter *rw, int at, const dc_node *n) { return identity(rw, at, n, 1, true); }
static int add_zero(dc_rewriter *rw, int at, const dc_node *n) { return identity(rw, at, n, 0, true); }
static int sub_zero(dc_rewriter *rw, int at, const dc_node *n) { return identity(rw, at, n, 0, false); }
static int div_one(dc_rewriter *rw, int at, const dc_node *n) { return identity(rw, at, n, 1, false); }

static int sub_self(dc_rewriter *rw, int at, const dc_node *n) {
    if (n->in[0] != n->in[1] || !known_finite(rw->g, n->in[0], FINITE_DEPTH)) return -1;
    return dc_rw_fill(rw, at, 0, &n->type);
}

static int mul_zero(dc_rewriter *rw, int at, const dc_node *n) {
    for (int k = 0; k < 2; k++)
        if (is_fill(rw, n->in[k], 0) && known_finite(rw->g, n->in[1 - k], FINITE_DEPTH))
            return dc_rw_fill(rw, at, 0, &n->type);
    return -1;
}

static int sub_neg(dc_rewriter *rw, int at, const dc_node *n) {
    if (!is_op(rw, n->in[1], DC_OP_NEG)) return -1;
    int in[2] = { n->in[0], node(rw, n->in[1])->in[0] };
    return dc_rw_emit(rw, at, DC_OP_ADD, 2, in, NULL, NULL);
}

static int add_neg(dc_rewriter *rw, int at, const dc_node *n) {
    for (int k = 1; k >= 0; k--)
        if (is_op(rw, n->in[k], DC_OP_NEG)) {
            int in[2] = { n->in[1 - k], node(rw, n->in[k])->in[0] };
            return dc_rw_emit(rw, at, DC_OP_SUB, 2, in, NULL, NULL);
        }
    return -1;
}

static int where_fill(dc_rewriter *rw, int at, const dc_node *n) {
    double c;
    if (!dc_fill_value(rw->g, n->in[0], &c)) return -1;
    return as_type(rw, at, c != 0 ? n->in[1] : n->in[2], &n->type);
}

static int neg_neg(dc_rewriter *rw, int at, const dc_node *n) {
    (void)at;
    return is_op(rw, n->in[0], DC_OP_NEG) ? node(rw, n->in[0])->in[0] : -1;
}

/* transpose(transpose(x, p), q) = transpose(x, r) with r[i] = p[q[i]] */
static int transpose_chain(dc_rewriter *rw, int at, const dc_node *n) {
    int x = n->in[0];
    dc_attr a = n->attr;
    const dc_node *t = node(rw, x);
    if (t->op == DC_OP_TRANSPOSE) {
        for (int i = 0; i < a.perm.perm.n; i++) a.perm.perm.v[i] = t->attr.perm.perm.v[n->attr.perm.perm.v[i]];
        x = t->in[0];
    }
    bool identity_perm = true;
    for (int i = 0; i < a.perm.perm.n; i++) identity_perm &= a.perm.perm.v[i] == i;
    if (identity_perm) return x;
    return x == n->in[0] ? -1 : dc_rw_emit(rw, at, DC_OP_TRANSPOSE, 1, &x, &a, NULL);
}

/* op(op(x)) -> op(x) for reshape and broadcast_to (declared types); op(x) -> x if x has
 * the type already */
static int view_chain(dc_rewriter *rw, int at, const dc_node *n) {
    int x = n->in[0];
    if (is_op(rw, x, n->op)) x = node(rw, x)->in[0];
    if (dc_type_eq(&node(rw, x)->type, &n->type)) return x;
    return x == n->in[0] ? -1 : dc_rw_emit(rw, at, n->op, 1, &x, NULL, &n->type);
}

static int cast_same(dc_rewriter *rw, int at, const dc_node *n) {
    (void)at;
    return node(rw, n->in[0])->type.dtype == n->type.dtype ? n->in[0] : -1;
}

static bool broadcasts(dc_op op) {
    switch (op) {
    case DC_OP_ADD: case DC_OP_SUB: case DC_OP_MUL: case DC_OP_DIV: case DC_OP_MAXIMUM:
    case DC_OP_MINIMUM: case DC_OP_EQ: case DC_OP_NE: case DC_OP_LT: case DC_OP_LE:
    case DC_OP_GT: case DC_OP_GE: case DC_OP_WHERE:
        return true;
    default: return false;
    }
}

/* op(..., broadcast_to(x), ...) -> op(..., x, ...) while the result type stays */
static int implicit_broadcast(dc_rewriter *rw, int at, const dc_node *n) {
    if (!broadcasts(n->op)) return -1;
    dc_node m = *n;
    bool changed = false;
    for (int k = 0; k < n->n_in; k++) {
        if (!is_op(rw, n->in[k], DC_OP_BROADCAST_TO)) continue;
        m.in[k] = node(rw, n->in[k])->in[0];
        dc_type t;
        char err[DC_ERR_LEN];
        if (dc_infer_type(rw->g, &m, &t, err, sizeof err) && dc_type_eq(&t, &n->type)) changed = true;
        else m.in[k] = n->in[k];
    }
    return changed ? dc_rw_emit(rw, at, n->op, n->n_in, m.in, &n->attr, NULL) : -1;
}

static const struct {
    dc_op op;          /* DC_OP_COUNT: any op (the rule checks) */
    rule_fn fn;
} rules[] = {
    { DC_OP_MUL, mul_one },
    { DC_OP_MUL, mul_zero },
    { DC_OP_ADD, add_zero },
    { DC_OP_ADD, add_neg },
    { DC_OP_SUB, sub_zero },
    { DC_OP_SUB, sub_self },
    { DC_OP_SUB, sub_neg },
    { DC_OP_DIV, div_one },
    { DC_OP_WHERE, where_fill },
    { DC_OP_NEG, neg_neg },
    { DC_OP_TRANSPOSE, transpose_chain },
    { DC_OP_RESHAPE, view_chain },
    { DC_OP_BROADCAST_TO, view_chain },
    { DC_OP_CAST, cast_same },
    { DC_OP_COUNT, implicit_broadcast },
};

/* ---- the driver ---------------------------------------------------------------------- */

/* The first rule that applies to old node i, or -1. */
static int apply(dc_rewriter *rw, int i) {
    dc_node n = dc_rw_mapped(rw, i);
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        if (rules[r].op != DC_OP_COUNT && rules[r].op != n.op) continue;
        int id = rules[r].fn(rw, i, &n);
        if (id >= 0) return id;
    }
    return -1;
}

/* One forward walk; returns how many nodes it rewrote. */
static int walk(dc_graph *g) {
    dc_rewriter rw;
    dc_rw_begin(&rw, g);
    int rewrites = 0;
    for (int i = 0; i < rw.n_old; i++) {
        int id = apply(&rw, i);
        if (id >= 0) {
            rw.map[i] = id;
            rewrites++;
        } else {
            dc_rw_keep(&rw, i);
        }
    }
    dc_rw_end(&rw);
    return rewrites;
}

bool dc_pass_simplify(dc_graph *g, const dc_pass_opts *o, char *err, size_t len) {
    (void)o, (void)err, (void)len;
    while (walk(g) > 0) continue;
    return true;
}
