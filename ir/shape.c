/* shape.c — the shape rule of every op in ops.def: from a node's input types and attributes
 * to its result type (or, for ops whose type is declared, a check of that type). Rules are
 * shared per family: one broadcast rule for binary elementwise ops, one for reductions, ...
 * Nothing here trusts its input: arity, input ids, types and attributes are all checked,
 * and every failure is a message "OP: what is wrong", never a crash. */
#include "ir/ir.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NUMEL ((int64_t)1 << 40)

/* The rule's context: the node, its op's text, its input types, where errors go. */
typedef struct {
    const dc_node *n;
    const char *op;
    const dc_type *in[DC_MAX_INPUTS];
    char *err;
    size_t len;
} rule;

/* Printable forms, returned by value so several fit in one printf. */
typedef struct { char s[160]; } str;

static str ts(const dc_type *t) {
    str r;
    dc_type_str(t, r.s, sizeof r.s);
    return r;
}

static str ints_str(const dc_ints *v) {
    str r;
    size_t k = (size_t)snprintf(r.s, sizeof r.s, "[");
    for (int i = 0; i < v->n && k < sizeof r.s; i++)
        k += (size_t)snprintf(r.s + k, sizeof r.s - k, i ? ",%lld" : "%lld", (long long)v->v[i]);
    if (k < sizeof r.s) snprintf(r.s + k, sizeof r.s - k, "]");
    return r;
}

__attribute__((format(printf, 2, 3))) static bool fail(rule *r, const char *fmt, ...) {
    int k = snprintf(r->err, r->len, "%s: ", r->op);
    if (k >= 0 && (size_t)k < r->len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err + k, r->len - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* ---- type validity ------------------------------------------------------------------ */

/* A well-formed type: known dtype, rank 0..6, dims >= 1, numel <= 2^40. what names it. */
static bool check_type(rule *r, const dc_type *t, const char *what) {
    if ((unsigned)t->dtype >= DC_NDTYPES) return fail(r, "%s has unknown dtype %d", what, (int)t->dtype);
    if (t->shape.rank < 0 || t->shape.rank > DC_MAX_RANK)
        return fail(r, "%s has rank %d, must be 0..%d", what, t->shape.rank, DC_MAX_RANK);
    int64_t numel = 1;
    for (int i = 0; i < t->shape.rank; i++) {
        int64_t d = t->shape.dim[i];
        if (d < 1) return fail(r, "%s has dim %d = %lld, must be >= 1", what, i, (long long)d);
        if (d > MAX_NUMEL / numel)
            return fail(r, "%s has more than 2^40 elements", what);
        numel *= d;
    }
    return true;
}

static bool need_dtype(rule *r, int k, const char *role, dc_dtype want) {
    if (r->in[k]->dtype == want) return true;
    if (role) return fail(r, "%s must be %s, got %s", role, dc_dtype_name(want), ts(r->in[k]).s);
    return fail(r, "expects %s, got %s", dc_dtype_name(want), dc_dtype_name(r->in[k]->dtype));
}

static bool need_rank(rule *r, int k, const char *role, int rank, const char *layout) {
    if (r->in[k]->shape.rank == rank) return true;
    return fail(r, "%s must have rank %d%s, got %s", role, rank, layout, ts(r->in[k]).s);
}

static bool need_min_rank(rule *r, int k, const char *role, int rank) {
    if (r->in[k]->shape.rank >= rank) return true;
    return fail(r, "%s must have rank >= %d, got %s", role, rank, ts(r->in[k]).s);
}

static bool axis_ok(rule *r, int64_t axis, int rank) {
    if (axis >= 0 && axis < rank) return true;
    return fail(r, "axis %lld out of range for rank %d", (long long)axis, rank);
}

/* dc_ints with one entry per axis (n == rank), each >= lo (and <= hi, an overflow guard). */
static bool per_axis(rule *r, const dc_ints *v, const char *what, int rank, int64_t lo, int64_t hi) {
    if (v->n != rank) return fail(r, "%s needs %d entries (one per axis), got %d", what, rank, v->n);
    for (int i = 0; i < rank; i++)
        if (v->v[i] < lo || v->v[i] > hi)
            return fail(r, "%s[%d] = %lld, must be in [%lld, %lld]", what, i, (long long)v->v[i],
                        (long long)lo, (long long)hi);
    return true;
}

static dc_type make(dc_dtype dt, const dc_shape *s) {
    dc_type t;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.shape.rank = s->rank;
    for (int i = 0; i < s->rank; i++) t.shape.dim[i] = s->dim[i];
    return t;
}

/* ---- sources and random ops: the declared type -------------------------------------- */

static bool rule_source(rule *r, dc_type *out) {
    const dc_node *n = r->n;
    if (!check_type(r, &n->type, "declared type")) return false;
    switch (n->op) {
    case DC_OP_PARAM:
        if (n->type.dtype != DC_F32) return fail(r, "params must be f32, got %s", ts(&n->type).s);
        if ((unsigned)n->attr.init.kind >= DC_NINITS)
            return fail(r, "unknown init kind %d", (int)n->attr.init.kind);
        break;
    case DC_OP_IOTA:
        if (!axis_ok(r, n->attr.axis.axis, n->type.shape.rank)) return false;
        break;
    case DC_OP_UNIFORM:
    case DC_OP_NORMAL:
    case DC_OP_GUMBEL:
        if (n->type.dtype != DC_F32) return fail(r, "expects f32, got %s", ts(&n->type).s);
        if (n->attr.random.stream < 0)
            return fail(r, "stream must be >= 0, got %lld", (long long)n->attr.random.stream);
        break;
    default:
        break;
    }
    *out = make(n->type.dtype, &n->type.shape);
    return true;
}

/* ---- elementwise -------------------------------------------------------------------- */

static bool unary_allows_i32(dc_op op) {
    return op == DC_OP_NEG || op == DC_OP_ABS || op == DC_OP_SQUARE || op == DC_OP_CAST;
}

static bool is_comparison(dc_op op) {
    return op == DC_OP_EQ || op == DC_OP_NE || op == DC_OP_LT || op == DC_OP_LE ||
           op == DC_OP_GT || op == DC_OP_GE;
}

static bool rule_unary(rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    if (!unary_allows_i32(r->n->op) && !need_dtype(r, 0, NULL, DC_F32)) return false;
    dc_dtype dt = x->dtype;
    if (r->n->op == DC_OP_CAST) {
        dt = r->n->attr.cast.to;
        if ((unsigned)dt >= DC_NDTYPES) return fail(r, "unknown target dtype %d", (int)dt);
    }
    *out = make(dt, &x->shape);
    return true;
}

static bool rule_binary(rule *r, dc_type *out) {
    const dc_type *a = r->in[0], *b = r->in[1];
    if (a->dtype != b->dtype)
        return fail(r, "dtypes differ: %s and %s", ts(a).s, ts(b).s);
    dc_shape s;
    if (!dc_broadcast_shapes(&a->shape, &b->shape, &s))
        return fail(r, "cannot broadcast %s and %s", ts(a).s, ts(b).s);
    *out = make(is_comparison(r->n->op) ? DC_I32 : a->dtype, &s);
    return true;
}

/* where(cond:i32, a, b): a and b of one dtype, all three broadcast. */
static bool rule_where(rule *r, dc_type *out) {
    const dc_type *c = r->in[0], *a = r->in[1], *b = r->in[2];
    if (!need_dtype(r, 0, "cond", DC_I32)) return false;
    if (a->dtype != b->dtype) return fail(r, "dtypes differ: %s and %s", ts(a).s, ts(b).s);
    dc_shape ab, s;
    if (!dc_broadcast_shapes(&a->shape, &b->shape, &ab) || !dc_broadcast_shapes(&c->shape, &ab, &s))
        return fail(r, "cannot broadcast %s, %s and %s", ts(c).s, ts(a).s, ts(b).s);
    *out = make(a->dtype, &s);
    return true;
}

/* straight_through(hard, soft): both f32 of one shape, no broadcasting -> hard's type */
static bool rule_straight_through(rule *r, dc_type *out) {
    const dc_type *h = r->in[0], *s = r->in[1];
    if (!need_dtype(r, 0, "hard", DC_F32) || !need_dtype(r, 1, "soft", DC_F32)) return false;
    if (!dc_shape_eq(&h->shape, &s->shape)) return fail(r, "shapes differ: %s and %s", ts(h).s, ts(s).s);
    *out = make(DC_F32, &h->shape);
    return true;
}

/* ---- reductions --------------------------------------------------------------------- */

/* sum/mean/max/logsumexp: x [d0..dr-1] -> the axes removed (or kept as 1). */
static bool rule_reduce(rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    const dc_reduce_attr *a = &r->n->attr.reduce;
    dc_op op = r->n->op;
    if (op != DC_OP_SUM && op != DC_OP_MAX && !need_dtype(r, 0, NULL, DC_F32)) return false;
    int rank = x->shape.rank;
    if (a->axes.n < 0 || a->axes.n > DC_MAX_RANK)
        return fail(r, "%d axes given, at most %d", a->axes.n, DC_MAX_RANK);
    bool reduced[DC_MAX_RANK] = { false };
    for (int i = 0; i < a->axes.n; i++) {
        if (!axis_ok(r, a->axes.v[i], rank)) return false;
        if (i > 0 && a->axes.v[i] <= a->axes.v[i - 1])
            return fail(r, "axes must be sorted and unique, got %s", ints_str(&a->axes).s);
        reduced[a->axes.v[i]] = true;
    }
    dc_shape s = { .rank = 0 };
    for (int i = 0; i < rank; i++) {
        bool red = a->axes.n == 0 || reduced[i];
        if (!red) s.dim[s.rank++] = x->shape.dim[i];
        else if (a->keepdims) s.dim[s.rank++] = 1;
    }
    *out = make(x->dtype, &s);
    return true;
}

/* softmax/log_softmax keep the shape; argmax removes the axis and gives i32;
 * softmax_bwd(y, dy) keeps the shape, dy of y's type. */
static bool rule_axis_reduce(rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    if (!need_dtype(r, 0, NULL, DC_F32)) return false;
    int64_t axis = r->n->attr.axis.axis;
    if (!axis_ok(r, axis, x->shape.rank)) return false;
    if (r->n->op == DC_OP_SOFTMAX_BWD && !dc_type_eq(r->in[1], x))
        return fail(r, "dy must have y's type %s, got %s", ts(x).s, ts(r->in[1]).s);
    if (r->n->op != DC_OP_ARGMAX) {
        *out = make(DC_F32, &x->shape);
        return true;
    }
    dc_shape s = { .rank = 0 };
    for (int i = 0; i < x->shape.rank; i++)
        if (i != axis) s.dim[s.rank++] = x->shape.dim[i];
    *out = make(DC_I32, &s);
    return true;
}

/* ---- contractions ------------------------------------------------------------------- */

/* a [...,M,K] (or [...,K,M]), b [...,K,N] (or [...,N,K]) -> [broadcast(...),M,N]: the
 * product of inputs 0 and 1 (matmul and fused_matmul) */
static bool matmul_type(rule *r, bool ta, bool tb, dc_type *out) {
    const dc_type *a = r->in[0], *b = r->in[1];
    if (!need_dtype(r, 0, "a", DC_F32) || !need_dtype(r, 1, "b", DC_F32)) return false;
    if (!need_min_rank(r, 0, "a", 2) || !need_min_rank(r, 1, "b", 2)) return false;
    int ra = a->shape.rank, rb = b->shape.rank;
    int64_t m = a->shape.dim[ra - (ta ? 1 : 2)], ka = a->shape.dim[ra - (ta ? 2 : 1)];
    int64_t kb = b->shape.dim[rb - (tb ? 1 : 2)], nn = b->shape.dim[rb - (tb ? 2 : 1)];
    if (ka != kb)
        return fail(r, "inner dimensions differ: a has K=%lld, b has K=%lld", (long long)ka, (long long)kb);
    dc_shape ba = { .rank = ra - 2 }, bb = { .rank = rb - 2 }, s;
    memcpy(ba.dim, a->shape.dim, sizeof(int64_t) * (size_t)(ra - 2));
    memcpy(bb.dim, b->shape.dim, sizeof(int64_t) * (size_t)(rb - 2));
    if (!dc_broadcast_shapes(&ba, &bb, &s))
        return fail(r, "cannot broadcast batch dimensions of %s and %s", ts(a).s, ts(b).s);
    s.dim[s.rank++] = m; /* batch rank <= max(ra, rb) - 2: the result fits */
    s.dim[s.rank++] = nn;
    *out = make(DC_F32, &s);
    return true;
}

static bool rule_matmul(rule *r, dc_type *out) {
    return matmul_type(r, r->n->attr.matmul.trans_a, r->n->attr.matmul.trans_b, out);
}

/* x [...,I], w [I,O], b [O] -> [...,O] */
static bool rule_linear(rule *r, dc_type *out) {
    const dc_type *x = r->in[0], *w = r->in[1], *b = r->in[2];
    if (!need_dtype(r, 0, "x", DC_F32) || !need_dtype(r, 1, "weight", DC_F32) ||
        !need_dtype(r, 2, "bias", DC_F32))
        return false;
    if (!need_min_rank(r, 0, "x", 1) || !need_rank(r, 1, "weight", 2, " ([in,out])") ||
        !need_rank(r, 2, "bias", 1, ""))
        return false;
    int64_t in = x->shape.dim[x->shape.rank - 1];
    if (w->shape.dim[0] != in)
        return fail(r, "x has %lld features, weight expects %lld", (long long)in, (long long)w->shape.dim[0]);
    if (b->shape.dim[0] != w->shape.dim[1])
        return fail(r, "bias has %lld entries, weight has %lld outputs", (long long)b->shape.dim[0],
                    (long long)w->shape.dim[1]);
    dc_shape s = x->shape;
    s.dim[s.rank - 1] = w->shape.dim[1];
    *out = make(DC_F32, &s);
    return true;
}

/* x [N,H,W,C], w [KH,KW,C/groups,O] -> [N,OH,OW,O]: the conv2d of inputs 0 and 1 under a
 * (conv2d and fused_conv2d) */
static bool conv2d_type(rule *r, const dc_conv_attr *a, dc_type *out) {
    const dc_type *x = r->in[0], *w = r->in[1];
    if (!need_dtype(r, 0, "input", DC_F32) || !need_dtype(r, 1, "weight", DC_F32)) return false;
    if (!need_rank(r, 0, "input", 4, " (NHWC)") || !need_rank(r, 1, "weight", 4, " (HWIO)"))
        return false;
    if (a->stride.n != 2) return fail(r, "stride needs 2 entries [h,w], got %d", a->stride.n);
    if (a->pad.n != 2) return fail(r, "pad needs 2 entries [h,w], got %d", a->pad.n);
    if (a->stride.v[0] < 1 || a->stride.v[1] < 1)
        return fail(r, "stride must be >= 1, got %s", ints_str(&a->stride).s);
    if (a->pad.v[0] < 0 || a->pad.v[1] < 0 || a->pad.v[0] > MAX_NUMEL || a->pad.v[1] > MAX_NUMEL)
        return fail(r, "pad must be in [0, 2^40], got %s", ints_str(&a->pad).s);
    int64_t g = a->groups;
    if (g < 1) return fail(r, "groups must be >= 1, got %lld", (long long)g);
    const int64_t *xd = x->shape.dim, *wd = w->shape.dim;
    int64_t want_c;
    if (__builtin_mul_overflow(wd[2], g, &want_c) || want_c > MAX_NUMEL)
        return fail(r, "groups=%lld times weight's %lld channels is too large", (long long)g,
                    (long long)wd[2]);
    if (xd[3] != want_c)
        return fail(r, "input has %lld channels, weight expects %lld", (long long)xd[3],
                    (long long)want_c);
    if (wd[3] % g != 0)
        return fail(r, "%lld output channels not divisible by groups=%lld", (long long)wd[3], (long long)g);
    int64_t ph = xd[1] + 2 * a->pad.v[0], pw = xd[2] + 2 * a->pad.v[1];
    if (wd[0] > ph || wd[1] > pw)
        return fail(r, "kernel %lldx%lld larger than padded input %lldx%lld", (long long)wd[0],
                    (long long)wd[1], (long long)ph, (long long)pw);
    dc_shape s = { .rank = 4, .dim = { xd[0], (ph - wd[0]) / a->stride.v[0] + 1,
                                       (pw - wd[1]) / a->stride.v[1] + 1, wd[3] } };
    *out = make(DC_F32, &s);
    return true;
}

static bool rule_conv2d(rule *r, dc_type *out) { return conv2d_type(r, &r->n->attr.conv, out); }

/* The epilogue of a fused contraction whose contraction gives y: n_in = 2 + bias + residual,
 * act a known activation, bias f32 [O] with O y's last dim, residual f32 of y's type. */
static bool epilogue_type(rule *r, dc_activation act, bool bias, bool residual, const dc_type *y) {
    int want = 2 + bias + residual;
    if (r->n->n_in != want)
        return fail(r, "bias=%s, residual=%s need %d inputs, got %d", bias ? "true" : "false",
                    residual ? "true" : "false", want, r->n->n_in);
    if ((unsigned)act >= DC_NACTIVATIONS) return fail(r, "unknown activation %d", (int)act);
    int64_t o = y->shape.dim[y->shape.rank - 1];
    if (bias) {
        if (!need_dtype(r, 2, "bias", DC_F32) || !need_rank(r, 2, "bias", 1, "")) return false;
        if (r->in[2]->shape.dim[0] != o)
            return fail(r, "bias has %lld entries, the result has %lld channels",
                        (long long)r->in[2]->shape.dim[0], (long long)o);
    }
    if (residual && !dc_type_eq(r->in[want - 1], y))
        return fail(r, "residual must have the result's type %s, got %s", ts(y).s, ts(r->in[want - 1]).s);
    return true;
}

/* fused_conv2d(x, w [, bias] [, residual]) -> conv2d's result */
static bool rule_fused_conv2d(rule *r, dc_type *out) {
    const dc_fused_conv_attr *f = &r->n->attr.fused_conv;
    dc_conv_attr a;
    memset(&a, 0, sizeof a);
    a.stride = f->stride;
    a.pad = f->pad;
    a.groups = f->groups;
    if (r->n->n_in < 2) return fail(r, "expects at least 2 inputs, got %d", r->n->n_in);
    return conv2d_type(r, &a, out) && epilogue_type(r, f->act, f->bias, f->residual, out);
}

/* fused_matmul(a, b [, bias] [, residual]) -> matmul's result */
static bool rule_fused_matmul(rule *r, dc_type *out) {
    const dc_fused_matmul_attr *f = &r->n->attr.fused_matmul;
    if (r->n->n_in < 2) return fail(r, "expects at least 2 inputs, got %d", r->n->n_in);
    return matmul_type(r, f->trans_a, f->trans_b, out) &&
           epilogue_type(r, f->act, f->bias, f->residual, out);
}

/* The declared operand of a conv backward op: a well-formed f32 type. */
static bool check_declared_f32(rule *r) {
    if (!check_type(r, &r->n->type, "declared type")) return false;
    if (r->n->type.dtype != DC_F32) return fail(r, "declared type must be f32, got %s", ts(&r->n->type).s);
    return true;
}

/* conv2d_bwd_data(dy, w) : declared x [N,H,W,C]; conv2d_bwd_weight(x, dy) : declared
 * w [KH,KW,C/groups,O]. conv2d of x and w (one of them the declared type) must give dy. */
static bool rule_conv2d_bwd(rule *r, dc_type *out) {
    bool data = r->n->op == DC_OP_CONV2D_BWD_DATA;
    const dc_type *dy = r->in[data ? 0 : 1], *d = &r->n->type;
    if (!need_dtype(r, data ? 0 : 1, "dy", DC_F32) || !check_declared_f32(r)) return false;
    rule fwd = *r; /* the forward conv2d's rule on (x, w) */
    fwd.in[0] = data ? d : r->in[0];
    fwd.in[1] = data ? r->in[1] : d;
    dc_type y;
    if (!rule_conv2d(&fwd, &y)) return false;
    if (!dc_type_eq(&y, dy))
        return fail(r, "conv2d of input %s and weight %s gives %s, but dy is %s", ts(fwd.in[0]).s,
                    ts(fwd.in[1]).s, ts(&y).s, ts(dy).s);
    *out = make(DC_F32, &d->shape);
    return true;
}

/* avg_pool: [N,H,W,C] -> [N,H/f,W/f,C]; upsample: -> [N,H*f,W*f,C] */
static bool rule_pool(rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    int64_t f = r->n->attr.pool.factor;
    if (!need_dtype(r, 0, NULL, DC_F32) || !need_rank(r, 0, "input", 4, " (NHWC)")) return false;
    if (f < 1 || f > MAX_NUMEL) return fail(r, "factor must be in [1, 2^40], got %lld", (long long)f);
    dc_shape s = x->shape;
    if (r->n->op == DC_OP_AVG_POOL) {
        if (s.dim[1] % f || s.dim[2] % f)
            return fail(r, "spatial size %lldx%lld not divisible by factor %lld", (long long)s.dim[1],
                        (long long)s.dim[2], (long long)f);
        s.dim[1] /= f;
        s.dim[2] /= f;
    } else {
        s.dim[1] *= f; /* both <= 2^40: no int64 overflow; the numel check catches the rest */
        s.dim[2] *= f;
    }
    *out = make(DC_F32, &s);
    return true;
}

/* ---- normalisation ------------------------------------------------------------------ */

/* layer_norm: x [...,C]; group_norm: x [N,...,C]; gamma, beta [C] -> x's type.
 * Their backward ops take (x, gamma, dy) with dy of x's shape. */
static bool rule_norm(rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    dc_op op = r->n->op;
    bool group = op == DC_OP_GROUP_NORM || op == DC_OP_GROUP_NORM_BWD;
    bool bwd = op == DC_OP_LAYER_NORM_BWD || op == DC_OP_GROUP_NORM_BWD;
    const char *roles[3] = { "x", "gamma", bwd ? "dy" : "beta" };
    for (int k = 0; k < 3; k++)
        if (!need_dtype(r, k, roles[k], DC_F32)) return false;
    if (!need_min_rank(r, 0, "x", group ? 2 : 1)) return false;
    int64_t c = x->shape.dim[x->shape.rank - 1];
    for (int k = 1; k < (bwd ? 2 : 3); k++)
        if (r->in[k]->shape.rank != 1 || r->in[k]->shape.dim[0] != c)
            return fail(r, "%s must be f32[%lld] for %lld channels, got %s", roles[k], (long long)c,
                        (long long)c, ts(r->in[k]).s);
    if (bwd && !dc_shape_eq(&r->in[2]->shape, &x->shape))
        return fail(r, "dy must have x's shape %s, got %s", ts(x).s, ts(r->in[2]).s);
    float eps = group ? r->n->attr.group_norm.eps : r->n->attr.eps.eps;
    if (!(eps >= 0 && isfinite(eps))) return fail(r, "eps must be finite and >= 0, got %g", (double)eps);
    if (group) {
        int64_t g = r->n->attr.group_norm.groups;
        if (g < 1) return fail(r, "groups must be >= 1, got %lld", (long long)g);
        if (c % g) return fail(r, "%lld channels not divisible by groups=%lld", (long long)c, (long long)g);
    }
    *out = make(DC_F32, &x->shape);
    return true;
}

/* ---- data movement ------------------------------------------------------------------ */

/* reshape / broadcast_to: the declared type, checked against the input */
static bool rule_declared_view(rule *r, dc_type *out) {
    const dc_type *x = r->in[0], *d = &r->n->type;
    if (!check_type(r, d, "declared type")) return false;
    if (d->dtype != x->dtype)
        return fail(r, "input is %s, declared %s: dtypes differ", ts(x).s, ts(d).s);
    if (r->n->op == DC_OP_RESHAPE) {
        if (dc_numel(&x->shape) != dc_numel(&d->shape))
            return fail(r, "%s has %lld elements, declared %s has %lld", ts(x).s,
                        (long long)dc_numel(&x->shape), ts(d).s, (long long)dc_numel(&d->shape));
    } else {
        dc_shape s;
        if (!dc_broadcast_shapes(&x->shape, &d->shape, &s) || !dc_shape_eq(&s, &d->shape))
            return fail(r, "cannot broadcast %s to %s", ts(x).s, ts(d).s);
    }
    *out = make(d->dtype, &d->shape);
    return true;
}

/* out.dim[i] = in.dim[perm[i]] */
static bool rule_transpose(rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    const dc_ints *p = &r->n->attr.perm.perm;
    int rank = x->shape.rank;
    if (!per_axis(r, p, "perm", rank, 0, rank - 1)) return false;
    bool seen[DC_MAX_RANK] = { false };
    dc_shape s = { .rank = rank };
    for (int i = 0; i < rank; i++) {
        if (seen[p->v[i]]) return fail(r, "perm %s is not a permutation", ints_str(p).s);
        seen[p->v[i]] = true;
        s.dim[i] = x->shape.dim[p->v[i]];
    }
    *out = make(x->dtype, &s);
    return true;
}

/* per axis 0 <= start < stop <= dim, step >= 1: dim -> ceil((stop-start)/step) */
static bool rule_slice(rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    const dc_slice_attr *a = &r->n->attr.slice;
    int rank = x->shape.rank;
    if (!per_axis(r, &a->start, "start", rank, 0, MAX_NUMEL) ||
        !per_axis(r, &a->stop, "stop", rank, 1, MAX_NUMEL) ||
        !per_axis(r, &a->step, "step", rank, 1, MAX_NUMEL))
        return false;
    dc_shape s = { .rank = rank };
    for (int i = 0; i < rank; i++) {
        int64_t b = a->start.v[i], e = a->stop.v[i], d = x->shape.dim[i];
        if (!(b < e && e <= d))
            return fail(r, "axis %d: need 0 <= start < stop <= %lld, got start=%lld stop=%lld", i,
                        (long long)d, (long long)b, (long long)e);
        s.dim[i] = (e - b + a->step.v[i] - 1) / a->step.v[i];
    }
    *out = make(x->dtype, &s);
    return true;
}

/* unslice(dy) {slice} : declared type; slicing the declared type must give dy's type */
static bool rule_unslice(rule *r, dc_type *out) {
    const dc_type *dy = r->in[0], *d = &r->n->type;
    if (!check_type(r, d, "declared type")) return false;
    rule fwd = *r; /* the forward slice's rule on the declared type */
    fwd.in[0] = d;
    dc_type y;
    if (!rule_slice(&fwd, &y)) return false;
    if (!dc_type_eq(&y, dy))
        return fail(r, "slicing the declared %s gives %s, but dy is %s", ts(d).s, ts(&y).s, ts(dy).s);
    *out = make(d->dtype, &d->shape);
    return true;
}

/* inputs of one dtype and rank, dims equal except axis, which adds up */
static bool rule_concat(rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    int64_t axis = r->n->attr.axis.axis;
    if (!axis_ok(r, axis, x->shape.rank)) return false;
    dc_shape s = x->shape;
    for (int k = 1; k < r->n->n_in; k++) {
        const dc_type *y = r->in[k];
        bool same = y->dtype == x->dtype && y->shape.rank == x->shape.rank;
        for (int i = 0; same && i < x->shape.rank; i++)
            same = i == axis || y->shape.dim[i] == x->shape.dim[i];
        if (!same)
            return fail(r, "input %d is %s, incompatible with %s along axis %lld", k, ts(y).s, ts(x).s,
                        (long long)axis);
        s.dim[axis] += y->shape.dim[axis]; /* each <= 2^40, at most 16 of them */
    }
    *out = make(x->dtype, &s);
    return true;
}

/* dim -> lo + dim + hi */
static bool rule_pad(rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    const dc_pad_attr *a = &r->n->attr.pad;
    int rank = x->shape.rank;
    if (!per_axis(r, &a->lo, "lo", rank, 0, MAX_NUMEL) || !per_axis(r, &a->hi, "hi", rank, 0, MAX_NUMEL))
        return false;
    dc_shape s = { .rank = rank };
    for (int i = 0; i < rank; i++) s.dim[i] = a->lo.v[i] + x->shape.dim[i] + a->hi.v[i];
    *out = make(x->dtype, &s);
    return true;
}

/* table [V, rest...], idx:i32 [idx...] -> [idx..., rest...] */
static bool rule_gather(rule *r, dc_type *out) {
    const dc_type *t = r->in[0], *idx = r->in[1];
    if (!need_min_rank(r, 0, "table", 1) || !need_dtype(r, 1, "indices", DC_I32)) return false;
    int rank = idx->shape.rank + t->shape.rank - 1;
    if (rank > DC_MAX_RANK) return fail(r, "result rank %d exceeds %d", rank, DC_MAX_RANK);
    dc_shape s = idx->shape;
    for (int i = 1; i < t->shape.rank; i++) s.dim[s.rank++] = t->shape.dim[i];
    *out = make(t->dtype, &s);
    return true;
}

/* scatter_add(idx:i32 [m...], src f32 [m..., rest...]) : declared f32 [V, rest...] */
static bool rule_scatter_add(rule *r, dc_type *out) {
    const dc_type *idx = r->in[0], *src = r->in[1], *d = &r->n->type;
    if (!need_dtype(r, 0, "indices", DC_I32) || !need_dtype(r, 1, "src", DC_F32)) return false;
    if (!check_declared_f32(r)) return false;
    if (d->shape.rank < 1) return fail(r, "declared type must have rank >= 1 ([V, rest...]), got %s", ts(d).s);
    int m = idx->shape.rank, rest = d->shape.rank - 1;
    bool ok = src->shape.rank == m + rest;
    for (int i = 0; ok && i < m; i++) ok = src->shape.dim[i] == idx->shape.dim[i];
    for (int i = 0; ok && i < rest; i++) ok = src->shape.dim[m + i] == d->shape.dim[1 + i];
    if (!ok)
        return fail(r, "src must be indices' shape followed by the declared rows' shape: indices %s, "
                    "declared %s, src %s", ts(idx).s, ts(d).s, ts(src).s);
    *out = make(DC_F32, &d->shape);
    return true;
}

/* idx:i32 [...] -> f32 [..., depth] */
static bool rule_one_hot(rule *r, dc_type *out) {
    const dc_type *idx = r->in[0];
    int64_t depth = r->n->attr.one_hot.depth;
    if (!need_dtype(r, 0, NULL, DC_I32)) return false;
    if (depth < 1 || depth > MAX_NUMEL) return fail(r, "depth must be in [1, 2^40], got %lld", (long long)depth);
    if (idx->shape.rank + 1 > DC_MAX_RANK)
        return fail(r, "result rank %d exceeds %d", idx->shape.rank + 1, DC_MAX_RANK);
    dc_shape s = idx->shape;
    s.dim[s.rank++] = depth;
    *out = make(DC_F32, &s);
    return true;
}

/* ---- losses: f32[] ------------------------------------------------------------------ */

/* cross_entropy(logits [...,K], labels:i32 [...]); mse(a, b) of one shape */
static bool rule_loss(rule *r, dc_type *out) {
    const dc_type *a = r->in[0], *b = r->in[1];
    dc_shape scalar = { .rank = 0 };
    if (r->n->op == DC_OP_MSE) {
        if (!need_dtype(r, 0, "a", DC_F32) || !need_dtype(r, 1, "b", DC_F32)) return false;
        if (!dc_shape_eq(&a->shape, &b->shape)) return fail(r, "shapes differ: %s and %s", ts(a).s, ts(b).s);
    } else {
        if (!need_dtype(r, 0, "logits", DC_F32) || !need_dtype(r, 1, "labels", DC_I32)) return false;
        if (!need_min_rank(r, 0, "logits", 1)) return false;
        dc_shape rows = a->shape;
        rows.dim[--rows.rank] = 0;
        if (!dc_shape_eq(&rows, &b->shape))
            return fail(r, "logits %s need labels of shape [...] = logits without its last axis, got %s",
                        ts(a).s, ts(b).s);
    }
    *out = make(DC_F32, &scalar);
    return true;
}

/* ---- dispatch ----------------------------------------------------------------------- */

typedef bool (*rule_fn)(rule *r, dc_type *out);

static rule_fn rule_of(dc_op op) {
    switch (op) {
    case DC_OP_INPUT: case DC_OP_PARAM: case DC_OP_FILL: case DC_OP_IOTA:
    case DC_OP_UNIFORM: case DC_OP_NORMAL: case DC_OP_GUMBEL:
        return rule_source;
    case DC_OP_ADD: case DC_OP_SUB: case DC_OP_MUL: case DC_OP_DIV: case DC_OP_MAXIMUM:
    case DC_OP_MINIMUM: case DC_OP_EQ: case DC_OP_NE: case DC_OP_LT: case DC_OP_LE:
    case DC_OP_GT: case DC_OP_GE:
        return rule_binary;
    case DC_OP_WHERE: return rule_where;
    case DC_OP_STRAIGHT_THROUGH: return rule_straight_through;
    case DC_OP_SUM: case DC_OP_MEAN: case DC_OP_MAX: case DC_OP_LOGSUMEXP: return rule_reduce;
    case DC_OP_SOFTMAX: case DC_OP_LOG_SOFTMAX: case DC_OP_ARGMAX: case DC_OP_SOFTMAX_BWD:
        return rule_axis_reduce;
    case DC_OP_MATMUL: return rule_matmul;
    case DC_OP_LINEAR: return rule_linear;
    case DC_OP_CONV2D: return rule_conv2d;
    case DC_OP_FUSED_CONV2D: return rule_fused_conv2d;
    case DC_OP_FUSED_MATMUL: return rule_fused_matmul;
    case DC_OP_CONV2D_BWD_DATA: case DC_OP_CONV2D_BWD_WEIGHT: return rule_conv2d_bwd;
    case DC_OP_AVG_POOL: case DC_OP_UPSAMPLE: return rule_pool;
    case DC_OP_LAYER_NORM: case DC_OP_GROUP_NORM: case DC_OP_LAYER_NORM_BWD:
    case DC_OP_GROUP_NORM_BWD:
        return rule_norm;
    case DC_OP_RESHAPE: case DC_OP_BROADCAST_TO: return rule_declared_view;
    case DC_OP_TRANSPOSE: return rule_transpose;
    case DC_OP_SLICE: return rule_slice;
    case DC_OP_UNSLICE: return rule_unslice;
    case DC_OP_CONCAT: return rule_concat;
    case DC_OP_PAD: return rule_pad;
    case DC_OP_GATHER: return rule_gather;
    case DC_OP_SCATTER_ADD: return rule_scatter_add;
    case DC_OP_ONE_HOT: return rule_one_hot;
    case DC_OP_CROSS_ENTROPY: case DC_OP_MSE: return rule_loss;
    case DC_OP_NEG: case DC_OP_ABS: case DC_OP_EXP: case DC_OP_LOG: case DC_OP_SQRT:
    case DC_OP_RSQRT: case DC_OP_SQUARE: case DC_OP_POW: case DC_OP_SIN: case DC_OP_COS:
    case DC_OP_TANH: case DC_OP_SIGMOID: case DC_OP_SILU: case DC_OP_GELU: case DC_OP_RELU:
    case DC_OP_CAST:
        return rule_unary;
    case DC_OP_COUNT:
        break;
    }
    abort(); /* an op of ops.def without a shape rule: the switch above is missing a case */
}

/* Arity, input ids and input types, before any rule looks at them. */
static bool check_inputs(rule *r, const dc_graph *g) {
    const dc_node *n = r->n;
    int arity = dc_op_get(n->op)->arity;
    if (arity >= 0 && n->n_in != arity)
        return fail(r, "expects %d input%s, got %d", arity, arity == 1 ? "" : "s", n->n_in);
    if (arity < 0 && (n->n_in < 1 || n->n_in > DC_MAX_INPUTS))
        return fail(r, "expects 1 to %d inputs, got %d", DC_MAX_INPUTS, n->n_in);
    for (int k = 0; k < n->n_in; k++) {
        if (n->in[k] < 0 || n->in[k] >= g->n_nodes)
            return fail(r, "input %d refers to node %d, but the graph has %d nodes", k, n->in[k], g->n_nodes);
        r->in[k] = &g->nodes[n->in[k]].type;
        char what[32];
        snprintf(what, sizeof what, "input %d", k);
        if (!check_type(r, r->in[k], what)) return false;
    }
    return true;
}

bool dc_infer_type(const dc_graph *g, const dc_node *n, dc_type *out, char *err, size_t len) {
    rule r = { .n = n, .op = "?", .err = err, .len = len };
    if ((unsigned)n->op >= DC_OP_COUNT) {
        snprintf(err, len, "unknown op %d", (int)n->op);
        return false;
    }
    r.op = dc_op_name(n->op);
    dc_type t;
    if (!check_inputs(&r, g) || !rule_of(n->op)(&r, &t) || !check_type(&r, &t, "result")) return false;
    *out = t;
    return true;
}
