/* autodiff.c — reverse-mode automatic differentiation, graph to graph (dc_grad).
 *
 * From the scalar f32 loss backwards, over the nodes that the loss depends on and that depend
 * on some wrt node, each node's adjoint (d loss / d node, the node's type) is pushed through
 * its op's vector-Jacobian product (VJP), which appends ordinary graph nodes (or the dedicated
 * backward ops of ops.def) and adds the result into the adjoints of the node's inputs. The
 * seed is d loss / d loss = fill 1 of f32[]. New nodes carry the file/line of the forward
 * node they differentiate. One VJP function per op or op family; the dispatch switch covers
 * every op of ops.def, so a new op cannot be added without a decision here.
 *
 * Rules and choices:
 * - Only f32 values get gradients: i32 values (indices, labels, masks, conditions) and ops
 *   marked NODIFF pass none, so a NODIFF op acts as a stop-gradient.
 * - Broadcasting: the adjoint of an operand that was broadcast is summed over the broadcast
 *   axes (keepdims) and reshaped back to the operand's shape.
 * - Kinks: relu'(0) = 0, abs'(0) = 0. maximum/minimum send the gradient to the operand the
 *   forward selected: a strictly larger (smaller) `a` gets it, a tie goes to `b` (the forward
 *   returns b on ties). max over axes splits the gradient evenly among tied maxima (the mean
 *   of the subgradients, as torch.amax).
 * - pow x^e: e*x^(e-1); e == 0 contributes nothing (avoids 0 * x^-1 at x = 0).
 * - straight_through(hard, soft): the forward is hard; the whole adjoint goes to soft, none
 *   to hard (Gumbel-softmax straight-through estimator).
 * - A wrt node the loss does not depend on (or only through NODIFF ops or i32 values) gets
 *   a zeros fill of its shape, f32 (also for an i32 wrt).
 * On failure (loss not a scalar f32, an id out of range, a rejected node) the graph is left
 * as it was and err says what is wrong. Gradients of gradients are not supported: the
 * backward ops are NODIFF. */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

/* The state of one dc_grad call. */
typedef struct {
    dc_graph *g;
    int n_fwd;          /* nodes [0, n_fwd) are the forward graph */
    int *adj;           /* [n_fwd] adjoint node id, -1 while none */
    bool *need;         /* [n_fwd] on a path from a wrt node to the loss, f32 */
    int site;           /* the forward node being differentiated: file/line of new nodes */
    bool ok;
    char *err;
    size_t len;
} ad;

/* ---- emitting nodes: each returns the new id, or -1 once anything failed ------------------ */

static int emit(ad *a, dc_op op, int n_in, const int *in, const dc_attr *attr, const dc_type *declared) {
    if (!a->ok) return -1;
    for (int k = 0; k < n_in; k++)
        if (in[k] < 0) return -1;
    char msg[DC_ERR_LEN];
    const dc_node *site = &a->g->nodes[a->site];
    int id = dc_graph_emit(a->g, op, n_in, in, attr, declared, NULL, site->file, site->line, msg,
                           sizeof msg);
    if (id < 0) {
        char lbl[32];
        snprintf(a->err, a->len, "dc_grad: VJP of node %s (%s): %s",
                 dc_node_label(a->g, a->site, lbl, sizeof lbl), dc_op_name(a->g->nodes[a->site].op), msg);
        a->ok = false;
    }
    return id;
}

static const dc_type *type_of(const ad *a, int id) { return &a->g->nodes[id].type; }

static dc_type f32_of(const dc_shape *s) {
    dc_type t;
    memset(&t, 0, sizeof t);
    t.dtype = DC_F32;
    t.shape = *s;
    return t;
}

static int un(ad *a, dc_op op, int x) { return emit(a, op, 1, &x, NULL, NULL); }

static int bin(ad *a, dc_op op, int x, int y) { return emit(a, op, 2, (int[]){ x, y }, NULL, NULL); }

static int fill(ad *a, float v, const dc_shape *s) {
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.scalar.value = v;
    dc_type t = f32_of(s);
    return emit(a, DC_OP_FILL, 0, NULL, &at, &t);
}

/* an i32 0/1 mask as f32 */
static int to_f32(ad *a, int x) {
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.cast.to = DC_F32;
    return emit(a, DC_OP_CAST, 1, &x, &at, NULL);
}

static int scalar(ad *a, float v) { return fill(a, v, &(dc_shape){ .rank = 0 }); }

static int mul_s(ad *a, int x, float v) { return bin(a, DC_OP_MUL, x, scalar(a, v)); }

/* x reshaped (or broadcast) to s; x itself when it already has that shape */
static int view(ad *a, dc_op op, int x, const dc_shape *s) {
    if (x < 0 || dc_shape_eq(&type_of(a, x)->shape, s)) return x;
    dc_type t = f32_of(s);
    return emit(a, op, 1, &x, NULL, &t);
}

static int reshape(ad *a, int x, const dc_shape *s) { return view(a, DC_OP_RESHAPE, x, s); }

/* sum of x over axes (sorted; n >= 1, as n == 0 means all) */
static int sum_axes(ad *a, int x, const dc_ints *axes, bool keepdims) {
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.reduce.axes = *axes;
    at.reduce.keepdims = keepdims;
    return emit(a, DC_OP_SUM, 1, &x, &at, NULL);
}

static int where0(ad *a, int cond, int x, bool x_when_true) {
    int z = scalar(a, 0.0f);
    return emit(a, DC_OP_WHERE, 3, (int[]){ cond, x_when_true ? x : z, x_when_true ? z : x }, NULL, NULL);
}

/* dy (of a broadcast result's shape) summed back to shape s: over the leading axes s lacks
 * and the axes where s has 1 and dy does not, then reshaped to s. */
static int unbroadcast(ad *a, int dy, const dc_shape *s) {
    if (dy < 0) return -1;
    const dc_shape *o = &type_of(a, dy)->shape;
    int lead = o->rank - s->rank;
    dc_ints axes = { .n = 0 };
    for (int d = 0; d < o->rank; d++)
        if (d < lead || (s->dim[d - lead] == 1 && o->dim[d] != 1)) axes.v[axes.n++] = d;
    if (axes.n > 0) dy = sum_axes(a, dy, &axes, true);
    return reshape(a, dy, s);
}

/* dy of a reduction over axes of x (keepdims or not) broadcast back to x's shape */
static int expand(ad *a, int dy, const dc_shape *xs, const dc_ints *axes) {
    dc_shape kept = *xs;
    for (int d = 0; d < xs->rank; d++) {
        bool red = axes->n == 0;
        for (int i = 0; i < axes->n; i++) red |= axes->v[i] == d;
        if (red) kept.dim[d] = 1;
    }
    return view(a, DC_OP_BROADCAST_TO, reshape(a, dy, &kept), xs);
}

/* ---- adjoints ----------------------------------------------------------------------------- */

static bool wants(const ad *a, int id) { return a->need[id]; }

/* adj[id] += grad (grad has id's shape); ignored for values that take no gradient */
static void accum(ad *a, int id, int grad) {
    if (!a->ok || grad < 0 || !wants(a, id)) return;
    if (!dc_shape_eq(&type_of(a, grad)->shape, &type_of(a, id)->shape)) {
        char t1[160], t2[160];
        snprintf(a->err, a->len, "dc_grad: internal error: gradient %s for a value of type %s",
                 dc_type_str(type_of(a, grad), t1, sizeof t1), dc_type_str(type_of(a, id), t2, sizeof t2));
        a->ok = false;
        return;
    }
    a->adj[id] = a->adj[id] < 0 ? grad : bin(a, DC_OP_ADD, a->adj[id], grad);
}

/* ---- VJPs: node id with adjoint dy; n = its node (a copy: emitting moves the array) ------- */

/* dx = dy * f'(x), f' from graph ops, reusing the forward output y where it helps */
static void vjp_unary(ad *a, const dc_node *n, int y, int dy) {
    int x = n->in[0], d;
    switch (n->op) {
    case DC_OP_NEG: d = un(a, DC_OP_NEG, dy); break;
    case DC_OP_ABS: {
        int z = scalar(a, 0.0f);
        int pos = to_f32(a, bin(a, DC_OP_GT, x, z)), neg = to_f32(a, bin(a, DC_OP_LT, x, z));
        d = bin(a, DC_OP_MUL, dy, bin(a, DC_OP_SUB, pos, neg));
        break;
    }
    case DC_OP_EXP: d = bin(a, DC_OP_MUL, dy, y); break;
    case DC_OP_LOG: d = bin(a, DC_OP_DIV, dy, x); break;
    case DC_OP_SQRT: d = bin(a, DC_OP_DIV, mul_s(a, dy, 0.5f), y); break;
    case DC_OP_RSQRT: /* d/dx x^-1/2 = -1/2 y^3 */
        d = bin(a, DC_OP_MUL, mul_s(a, dy, -0.5f), bin(a, DC_OP_MUL, un(a, DC_OP_SQUARE, y), y));
        break;
    case DC_OP_SQUARE: d = bin(a, DC_OP_MUL, mul_s(a, dy, 2.0f), x); break;
    case DC_OP_POW: {
        float e = n->attr.scalar.value;
        if (e == 0.0f) return;
        dc_attr at;
        memset(&at, 0, sizeof at);
        at.scalar.value = e - 1.0f;
        d = bin(a, DC_OP_MUL, mul_s(a, dy, e), emit(a, DC_OP_POW, 1, &x, &at, NULL));
        break;
    }
    case DC_OP_SIN: d = bin(a, DC_OP_MUL, dy, un(a, DC_OP_COS, x)); break;
    case DC_OP_COS: d = bin(a, DC_OP_MUL, dy, un(a, DC_OP_NEG, un(a, DC_OP_SIN, x))); break;
    case DC_OP_TANH: /* 1 - y^2 */
        d = bin(a, DC_OP_MUL, dy, bin(a, DC_OP_SUB, scalar(a, 1.0f), un(a, DC_OP_SQUARE, y)));
        break;
    case DC_OP_SIGMOID: /* y (1 - y) */
        d = bin(a, DC_OP_MUL, dy, bin(a, DC_OP_MUL, y, bin(a, DC_OP_SUB, scalar(a, 1.0f), y)));
        break;
    case DC_OP_SILU: { /* s (1 + x (1 - s)), s = sigmoid(x) */
        int s = un(a, DC_OP_SIGMOID, x);
        int one_s = bin(a, DC_OP_SUB, scalar(a, 1.0f), s);
        int t = bin(a, DC_OP_ADD, scalar(a, 1.0f), bin(a, DC_OP_MUL, x, one_s));
        d = bin(a, DC_OP_MUL, dy, bin(a, DC_OP_MUL, s, t));
        break;
    }
    case DC_OP_GELU: { /* y = x/2 (1 + t), t = tanh(c (x + k x^3)) */
        const float c = 0.7978845608028654f, k = 0.044715f;
        int x2 = un(a, DC_OP_SQUARE, x);
        int u = mul_s(a, bin(a, DC_OP_ADD, x, mul_s(a, bin(a, DC_OP_MUL, x, x2), k)), c);
        int t = un(a, DC_OP_TANH, u);
        int half = mul_s(a, bin(a, DC_OP_ADD, scalar(a, 1.0f), t), 0.5f);
        int du = mul_s(a, bin(a, DC_OP_ADD, scalar(a, 1.0f), mul_s(a, x2, 3.0f * k)), c);
        int dt = bin(a, DC_OP_SUB, scalar(a, 1.0f), un(a, DC_OP_SQUARE, t));
        int rest = mul_s(a, bin(a, DC_OP_MUL, x, bin(a, DC_OP_MUL, dt, du)), 0.5f);
        d = bin(a, DC_OP_MUL, dy, bin(a, DC_OP_ADD, half, rest));
        break;
    }
    case DC_OP_RELU: d = where0(a, bin(a, DC_OP_GT, x, scalar(a, 0.0f)), dy, true); break;
    case DC_OP_CAST: d = dy; break; /* f32 -> f32; casts from or to i32 carry no gradient */
    default: abort();
    }
    accum(a, x, d);
}

/* binary elementwise with broadcasting: each operand's share, summed back to its shape */
static void vjp_binary(ad *a, const dc_node *n, int y, int dy) {
    int x0 = n->in[0], x1 = n->in[1], d0 = -1, d1 = -1;
    bool w0 = wants(a, x0), w1 = wants(a, x1);
    switch (n->op) {
    case DC_OP_ADD: d0 = dy; d1 = dy; break;
    case DC_OP_SUB: d0 = dy; d1 = w1 ? un(a, DC_OP_NEG, dy) : -1; break;
    case DC_OP_MUL:
        d0 = w0 ? bin(a, DC_OP_MUL, dy, x1) : -1;
        d1 = w1 ? bin(a, DC_OP_MUL, dy, x0) : -1;
        break;
    case DC_OP_DIV: /* d a = dy / b; d b = -dy y / b */
        d0 = w0 ? bin(a, DC_OP_DIV, dy, x1) : -1;
        d1 = w1 ? un(a, DC_OP_NEG, bin(a, DC_OP_DIV, bin(a, DC_OP_MUL, dy, y), x1)) : -1;
        break;
    case DC_OP_MAXIMUM:
    case DC_OP_MINIMUM: {
        int m = bin(a, n->op == DC_OP_MAXIMUM ? DC_OP_GT : DC_OP_LT, x0, x1); /* a selected */
        d0 = w0 ? where0(a, m, dy, true) : -1;
        d1 = w1 ? where0(a, m, dy, false) : -1;
        break;
    }
    default: abort();
    }
    if (w0) accum(a, x0, unbroadcast(a, d0, &type_of(a, x0)->shape));
    if (w1) accum(a, x1, unbroadcast(a, d1, &type_of(a, x1)->shape));
}

/* where(c, a, b): the adjoint routed by the condition */
static void vjp_where(ad *a, const dc_node *n, int dy) {
    int c = n->in[0], x = n->in[1], z = n->in[2];
    if (wants(a, x)) accum(a, x, unbroadcast(a, where0(a, c, dy, true), &type_of(a, x)->shape));
    if (wants(a, z)) accum(a, z, unbroadcast(a, where0(a, c, dy, false), &type_of(a, z)->shape));
}

/* sum, mean, max, logsumexp over axes */
static void vjp_reduce(ad *a, const dc_node *n, int y, int dy) {
    int x = n->in[0];
    const dc_shape *xs = &type_of(a, x)->shape;
    const dc_ints *axes = &n->attr.reduce.axes;
    int d;
    switch (n->op) {
    case DC_OP_SUM: d = expand(a, dy, xs, axes); break;
    case DC_OP_MEAN:
        d = expand(a, mul_s(a, dy, (float)(1.0 / (double)(dc_numel(xs) / dc_numel(&type_of(a, y)->shape)))),
                   xs, axes);
        break;
    case DC_OP_MAX: { /* mask of the maxima, dy split evenly among ties */
        int mask = to_f32(a, bin(a, DC_OP_EQ, x, expand(a, y, xs, axes)));
        int count = emit(a, DC_OP_SUM, 1, &mask, &n->attr, NULL);
        d = bin(a, DC_OP_MUL, mask, expand(a, bin(a, DC_OP_DIV, dy, count), xs, axes));
        break;
    }
    case DC_OP_LOGSUMEXP: /* softmax weights exp(x - y) */
        d = bin(a, DC_OP_MUL, expand(a, dy, xs, axes),
                un(a, DC_OP_EXP, bin(a, DC_OP_SUB, x, expand(a, y, xs, axes))));
        break;
    default: abort();
    }
    accum(a, x, d);
}

/* softmax (its backward op) and log_softmax: dy - softmax(x) sum(dy) */
static void vjp_softmax(ad *a, const dc_node *n, int y, int dy) {
    int d;
    if (n->op == DC_OP_SOFTMAX) {
        d = emit(a, DC_OP_SOFTMAX_BWD, 2, (int[]){ y, dy }, &n->attr, NULL);
    } else {
        dc_ints ax = { .n = 1, .v = { n->attr.axis.axis } };
        d = bin(a, DC_OP_SUB, dy, bin(a, DC_OP_MUL, un(a, DC_OP_EXP, y), sum_axes(a, dy, &ax, true)));
    }
    accum(a, n->in[0], d);
}

static int matmul(ad *a, int x, int y, bool ta, bool tb) {
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.matmul.trans_a = ta;
    at.matmul.trans_b = tb;
    return emit(a, DC_OP_MATMUL, 2, (int[]){ x, y }, &at, NULL);
}

/* y = op(a) op(b): dA = dy B^T, dB = A^T dy, transposed back when the operand was, and summed
 * over the batch axes it was broadcast along */
static void vjp_matmul(ad *a, const dc_node *n, int dy) {
    int x0 = n->in[0], x1 = n->in[1];
    bool ta = n->attr.matmul.trans_a, tb = n->attr.matmul.trans_b;
    if (wants(a, x0)) {
        int d = ta ? matmul(a, x1, dy, tb, true) : matmul(a, dy, x1, false, !tb);
        accum(a, x0, unbroadcast(a, d, &type_of(a, x0)->shape));
    }
    if (wants(a, x1)) {
        int d = tb ? matmul(a, dy, x0, true, ta) : matmul(a, x0, dy, !ta, false);
        accum(a, x1, unbroadcast(a, d, &type_of(a, x1)->shape));
    }
}

/* y = x w + b with x [...,I] seen as 2-D [rows, I] */
static void vjp_linear(ad *a, const dc_node *n, int dy) {
    int x = n->in[0], w = n->in[1], b = n->in[2];
    const dc_shape *xs = &type_of(a, x)->shape, *ws = &type_of(a, w)->shape;
    int64_t in = ws->dim[0], out = ws->dim[1], rows = dc_numel(xs) / in;
    dc_shape s2 = { .rank = 2, .dim = { rows, out } }, x2s = { .rank = 2, .dim = { rows, in } };
    int dy2 = reshape(a, dy, &s2);
    if (wants(a, x)) accum(a, x, reshape(a, matmul(a, dy2, w, false, true), xs));
    if (wants(a, w)) accum(a, w, matmul(a, reshape(a, x, &x2s), dy2, true, false));
    if (wants(a, b)) accum(a, b, sum_axes(a, dy2, &(dc_ints){ .n = 1, .v = { 0 } }, false));
}

/* conv2d through its two backward ops */
static void vjp_conv2d(ad *a, const dc_node *n, int dy) {
    int x = n->in[0], w = n->in[1];
    if (wants(a, x))
        accum(a, x, emit(a, DC_OP_CONV2D_BWD_DATA, 2, (int[]){ dy, w }, &n->attr, type_of(a, x)));
    if (wants(a, w))
        accum(a, w, emit(a, DC_OP_CONV2D_BWD_WEIGHT, 2, (int[]){ x, dy }, &n->attr, type_of(a, w)));
}

/* avg_pool: dy upsampled / f^2; upsample (nearest): the f x f window sums = avg_pool * f^2 */
static void vjp_pool(ad *a, const dc_node *n, int dy) {
    float f2 = (float)(n->attr.pool.factor * n->attr.pool.factor);
    bool avg = n->op == DC_OP_AVG_POOL;
    int d = emit(a, avg ? DC_OP_UPSAMPLE : DC_OP_AVG_POOL, 1, &dy, &n->attr, NULL);
    accum(a, n->in[0], mul_s(a, d, avg ? 1.0f / f2 : f2));
}

/* layer/group norm: dx by the backward op; dgamma = sum(dy xhat), dbeta = sum(dy) over all but
 * the channel axis, xhat = the same norm with gamma 1, beta 0 */
static void vjp_norm(ad *a, const dc_node *n, int dy) {
    int x = n->in[0], gamma = n->in[1], beta = n->in[2];
    const dc_shape *cs = &type_of(a, gamma)->shape;
    bool group = n->op == DC_OP_GROUP_NORM;
    if (wants(a, x))
        accum(a, x, emit(a, group ? DC_OP_GROUP_NORM_BWD : DC_OP_LAYER_NORM_BWD, 3,
                         (int[]){ x, gamma, dy }, &n->attr, NULL));
    if (wants(a, gamma)) {
        int xhat = emit(a, n->op, 3, (int[]){ x, fill(a, 1.0f, cs), fill(a, 0.0f, cs) }, &n->attr, NULL);
        accum(a, gamma, unbroadcast(a, bin(a, DC_OP_MUL, dy, xhat), cs));
    }
    if (wants(a, beta)) accum(a, beta, unbroadcast(a, dy, cs));
}

/* reshape, broadcast_to, transpose, slice, pad: the inverse movement */
static void vjp_movement(ad *a, const dc_node *n, int dy) {
    int x = n->in[0];
    const dc_type *xt = type_of(a, x);
    dc_attr at;
    memset(&at, 0, sizeof at);
    int d;
    switch (n->op) {
    case DC_OP_RESHAPE: d = reshape(a, dy, &xt->shape); break;
    case DC_OP_BROADCAST_TO: d = unbroadcast(a, dy, &xt->shape); break;
    case DC_OP_TRANSPOSE:
        at.perm.perm.n = n->attr.perm.perm.n;
        for (int i = 0; i < at.perm.perm.n; i++) at.perm.perm.v[n->attr.perm.perm.v[i]] = i;
        d = emit(a, DC_OP_TRANSPOSE, 1, &dy, &at, NULL);
        break;
    case DC_OP_SLICE: d = emit(a, DC_OP_UNSLICE, 1, &dy, &n->attr, xt); break;
    case DC_OP_PAD: {
        dc_slice_attr *s = &at.slice;
        s->start = s->stop = s->step = (dc_ints){ .n = xt->shape.rank };
        for (int i = 0; i < xt->shape.rank; i++) {
            s->start.v[i] = n->attr.pad.lo.v[i];
            s->stop.v[i] = n->attr.pad.lo.v[i] + xt->shape.dim[i];
            s->step.v[i] = 1;
        }
        d = emit(a, DC_OP_SLICE, 1, &dy, &at, NULL);
        break;
    }
    default: abort();
    }
    accum(a, x, d);
}

/* concat: each input's adjoint is its slice of dy along the axis */
static void vjp_concat(ad *a, const dc_node *n, int dy) {
    const dc_shape *ys = &type_of(a, dy)->shape;
    int64_t axis = n->attr.axis.axis, off = 0;
    for (int k = 0; k < n->n_in; k++) {
        int64_t dk = type_of(a, n->in[k])->shape.dim[axis];
        if (wants(a, n->in[k])) {
            dc_attr at;
            memset(&at, 0, sizeof at);
            dc_slice_attr *s = &at.slice;
            s->start = s->stop = s->step = (dc_ints){ .n = ys->rank };
            for (int i = 0; i < ys->rank; i++) {
                s->start.v[i] = i == axis ? off : 0;
                s->stop.v[i] = i == axis ? off + dk : ys->dim[i];
                s->step.v[i] = 1;
            }
            accum(a, n->in[k], emit(a, DC_OP_SLICE, 1, &dy, &at, NULL));
        }
        off += dk;
    }
}

/* gather: rows of dy scatter-added into the table; the indices get none */
static void vjp_gather(ad *a, const dc_node *n, int dy) {
    int table = n->in[0];
    accum(a, table, emit(a, DC_OP_SCATTER_ADD, 2, (int[]){ n->in[1], dy }, NULL, type_of(a, table)));
}

/* cross_entropy: (softmax(logits) - one_hot(labels)) dloss / rows; mse: 2 (a - b) / n dloss */
static void vjp_loss(ad *a, const dc_node *n, int dy) {
    int x0 = n->in[0], x1 = n->in[1];
    const dc_shape *s = &type_of(a, x0)->shape;
    if (n->op == DC_OP_CROSS_ENTROPY) {
        int64_t k = s->dim[s->rank - 1];
        dc_attr ax, oh;
        memset(&ax, 0, sizeof ax);
        memset(&oh, 0, sizeof oh);
        ax.axis.axis = s->rank - 1;
        oh.one_hot.depth = k;
        int p = bin(a, DC_OP_SUB, emit(a, DC_OP_SOFTMAX, 1, &x0, &ax, NULL),
                    emit(a, DC_OP_ONE_HOT, 1, &x1, &oh, NULL));
        accum(a, x0, bin(a, DC_OP_MUL, p, mul_s(a, dy, (float)(1.0 / (double)(dc_numel(s) / k)))));
        return;
    }
    int d = bin(a, DC_OP_MUL, bin(a, DC_OP_SUB, x0, x1), mul_s(a, dy, (float)(2.0 / (double)dc_numel(s))));
    accum(a, x0, d);
    if (wants(a, x1)) accum(a, x1, un(a, DC_OP_NEG, d));
}

/* The most nodes one VJP appends (concat's 16 slices and their adds are the most). Room for
 * them is reserved before each VJP, so the VJPs may hold pointers into the graph (type_of). */
#define VJP_MAX_NODES 256

/* Pushes node id's adjoint to its inputs. */
static void vjp(ad *a, int id) {
    dc_node n = a->g->nodes[id];
    int dy = a->adj[id], start = a->g->n_nodes;
    a->site = id;
    dc_graph_reserve(a->g, start + VJP_MAX_NODES);
    switch (n.op) {
    case DC_OP_NEG: case DC_OP_ABS: case DC_OP_EXP: case DC_OP_LOG: case DC_OP_SQRT:
    case DC_OP_RSQRT: case DC_OP_SQUARE: case DC_OP_POW: case DC_OP_SIN: case DC_OP_COS:
    case DC_OP_TANH: case DC_OP_SIGMOID: case DC_OP_SILU: case DC_OP_GELU: case DC_OP_RELU:
    case DC_OP_CAST:
        vjp_unary(a, &n, id, dy);
        break;
    case DC_OP_ADD: case DC_OP_SUB: case DC_OP_MUL: case DC_OP_DIV: case DC_OP_MAXIMUM:
    case DC_OP_MINIMUM:
        vjp_binary(a, &n, id, dy);
        break;
    case DC_OP_WHERE: vjp_where(a, &n, dy); break;
    case DC_OP_SUM: case DC_OP_MEAN: case DC_OP_MAX: case DC_OP_LOGSUMEXP: vjp_reduce(a, &n, id, dy); break;
    case DC_OP_SOFTMAX: case DC_OP_LOG_SOFTMAX: vjp_softmax(a, &n, id, dy); break;
    case DC_OP_MATMUL: vjp_matmul(a, &n, dy); break;
    case DC_OP_LINEAR: vjp_linear(a, &n, dy); break;
    case DC_OP_CONV2D: vjp_conv2d(a, &n, dy); break;
    case DC_OP_AVG_POOL: case DC_OP_UPSAMPLE: vjp_pool(a, &n, dy); break;
    case DC_OP_LAYER_NORM: case DC_OP_GROUP_NORM: vjp_norm(a, &n, dy); break;
    case DC_OP_RESHAPE: case DC_OP_BROADCAST_TO: case DC_OP_TRANSPOSE: case DC_OP_SLICE:
    case DC_OP_PAD:
        vjp_movement(a, &n, dy);
        break;
    case DC_OP_CONCAT: vjp_concat(a, &n, dy); break;
    case DC_OP_GATHER: vjp_gather(a, &n, dy); break;
    case DC_OP_CROSS_ENTROPY: case DC_OP_MSE: vjp_loss(a, &n, dy); break;
    case DC_OP_STRAIGHT_THROUGH: accum(a, n.in[1], dy); break;
    /* NODIFF: no gradient flows through (a stop-gradient) */
    case DC_OP_INPUT: case DC_OP_PARAM: case DC_OP_FILL: case DC_OP_IOTA:
    case DC_OP_EQ: case DC_OP_NE: case DC_OP_LT: case DC_OP_LE: case DC_OP_GT: case DC_OP_GE:
    case DC_OP_ARGMAX: case DC_OP_ONE_HOT: case DC_OP_UNIFORM: case DC_OP_NORMAL: case DC_OP_GUMBEL:
    case DC_OP_CONV2D_BWD_DATA: case DC_OP_CONV2D_BWD_WEIGHT: case DC_OP_LAYER_NORM_BWD:
    case DC_OP_GROUP_NORM_BWD: case DC_OP_SOFTMAX_BWD: case DC_OP_SCATTER_ADD: case DC_OP_UNSLICE:
    case DC_OP_FUSED_CONV2D: case DC_OP_FUSED_MATMUL:
    case DC_OP_COUNT:
        break;
    }
    if (a->g->n_nodes > start + VJP_MAX_NODES) abort(); /* VJP_MAX_NODES is too small: a bug */
}

/* ---- the driver --------------------------------------------------------------------------- */

/* the loss, the ids, and the SSA order of the nodes the walk reads */
static bool check_args(const dc_graph *g, int loss, const int *wrt, int n, const int *grads, char *err,
                       size_t len) {
    if (loss < 0 || loss >= g->n_nodes) {
        snprintf(err, len, "dc_grad: loss id %d out of range [0, %d)", loss, g->n_nodes);
        return false;
    }
    const dc_type *t = &g->nodes[loss].type;
    if (t->dtype != DC_F32 || t->shape.rank != 0) {
        char buf[160];
        snprintf(err, len, "dc_grad: loss must be a scalar f32[], got %s", dc_type_str(t, buf, sizeof buf));
        return false;
    }
    if (n < 0 || (n > 0 && (!wrt || !grads))) {
        snprintf(err, len, "dc_grad: %d wrt ids given%s", n, n > 0 ? " without the arrays" : "");
        return false;
    }
    for (int i = 0; i <= loss; i++) {
        const dc_node *nd = &g->nodes[i];
        bool ssa = (unsigned)nd->op < DC_OP_COUNT && nd->n_in >= 0 && nd->n_in <= DC_MAX_INPUTS;
        for (int k = 0; ssa && k < nd->n_in; k++) ssa = nd->in[k] >= 0 && nd->in[k] < i;
        if (!ssa) {
            snprintf(err, len, "dc_grad: node %d is malformed (unknown op, or an input not an earlier "
                     "node)", i);
            return false;
        }
    }
    for (int i = 0; i < n; i++)
        if (wrt[i] < 0 || wrt[i] >= g->n_nodes) {
            snprintf(err, len, "dc_grad: wrt[%d] = %d out of range [0, %d)", i, wrt[i], g->n_nodes);
            return false;
        }
    return true;
}

/* need[i]: node i is f32, the loss depends on it, and it is a wrt node or depends on one
 * through differentiable ops */
static void mark(ad *a, int loss, const int *wrt, int n) {
    const dc_graph *g = a->g;
    bool *reach = calloc((size_t)a->n_fwd, sizeof *reach), *dep = calloc((size_t)a->n_fwd, sizeof *dep);
    if (!reach || !dep) abort();
    for (int i = 0; i < n; i++) dep[wrt[i]] = true;
    for (int i = 0; i <= loss; i++) {
        const dc_node *nd = &g->nodes[i];
        bool diff = dc_op_get(nd->op)->differentiable;
        for (int k = 0; k < nd->n_in && diff && !dep[i]; k++) dep[i] = dep[nd->in[k]];
    }
    reach[loss] = true;
    for (int i = loss; i >= 0; i--) {
        if (!reach[i]) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++) reach[g->nodes[i].in[k]] = true;
        a->need[i] = dep[i] && g->nodes[i].type.dtype == DC_F32;
    }
    free(reach);
    free(dep);
}

/* The backward walk, then the results: each wrt's adjoint, or zeros of its shape */
static void backward(ad *a, int loss, const int *wrt, int n, int *grads) {
    a->site = loss;
    if (a->need[loss]) a->adj[loss] = scalar(a, 1.0f);
    for (int i = loss; i >= 0 && a->ok; i--)
        if (a->need[i] && a->adj[i] >= 0) vjp(a, i);
    for (int i = 0; i < n && a->ok; i++) {
        a->site = wrt[i];
        grads[i] = a->adj[wrt[i]] >= 0 ? a->adj[wrt[i]] : fill(a, 0.0f, &type_of(a, wrt[i])->shape);
    }
}

bool dc_grad(dc_graph *g, int loss, const int *wrt, int n, int *grads, char *err, size_t len) {
    if (!g) {
        snprintf(err, len, "dc_grad: no graph");
        return false;
    }
    if (!check_args(g, loss, wrt, n, grads, err, len)) return false;
    ad a = { .g = g, .n_fwd = g->n_nodes, .ok = true, .err = err, .len = len };
    a.adj = malloc((size_t)a.n_fwd * sizeof *a.adj);
    a.need = calloc((size_t)a.n_fwd, sizeof *a.need);
    if (!a.adj || !a.need) abort();
    for (int i = 0; i < a.n_fwd; i++) a.adj[i] = -1;
    mark(&a, loss, wrt, n);
    backward(&a, loss, wrt, n, grads);
    if (a.ok) dc_graph_drop_plan(g);
    else g->n_nodes = a.n_fwd;
    free(a.adj);
    free(a.need);
    return a.ok;
}
