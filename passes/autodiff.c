/* autodiff.c — reverse-mode automatic differentiation, graph to graph (dc_grad).
 *
 * From the scalar f32 loss backwards, over the nodes that the loss depends on and that depend
 * on some wrt node, each node's adjoint (d loss / d node, the node's type) is pushed through
 * its op's vector-Jacobian product (VJP), which appends ordinary graph nodes (or the dedicated
 * backward ops of ops.def) and adds the result into the adjoints of the node's inputs. The
 * seed is d loss / d loss = fill 1 of f32[]. New nodes carry the file/line of the forward
 * node they differentiate. The VJPs live beside their ops in the family files of ops/, written
 * with the dc_ad_ builders below; ops.def's vjp column names each op's (or none), and the
 * dispatch table is generated from it, so a new op cannot be added without that decision.
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
struct dc_ad {
    dc_graph *g;
    int n_fwd;          /* nodes [0, n_fwd) are the forward graph */
    int *adj;           /* [n_fwd] adjoint node id, -1 while none */
    bool *need;         /* [n_fwd] on a path from a wrt node to the loss, f32 */
    int site;           /* the forward node being differentiated: file/line of new nodes */
    bool ok;
    char *err;
    size_t len;
};

/* ---- emitting nodes: each returns the new id, or -1 once anything failed ------------------ */

int dc_ad_emit(dc_ad *a, dc_op op, int n_in, const int *in, const dc_attr *attr, const dc_type *declared) {
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

const dc_type *dc_ad_type(const dc_ad *a, int id) { return &a->g->nodes[id].type; }

static dc_type f32_of(const dc_shape *s) {
    dc_type t;
    memset(&t, 0, sizeof t);
    t.dtype = DC_F32;
    t.shape = *s;
    return t;
}

int dc_ad_un(dc_ad *a, dc_op op, int x) { return dc_ad_emit(a, op, 1, &x, NULL, NULL); }

int dc_ad_bin(dc_ad *a, dc_op op, int x, int y) { return dc_ad_emit(a, op, 2, (int[]){ x, y }, NULL, NULL); }

int dc_ad_fill(dc_ad *a, float v, const dc_shape *s) {
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.scalar.value = v;
    dc_type t = f32_of(s);
    return dc_ad_emit(a, DC_OP_FILL, 0, NULL, &at, &t);
}

/* an i32 0/1 mask as f32 */
int dc_ad_to_f32(dc_ad *a, int x) {
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.cast.to = DC_F32;
    return dc_ad_emit(a, DC_OP_CAST, 1, &x, &at, NULL);
}

int dc_ad_scalar(dc_ad *a, float v) { return dc_ad_fill(a, v, &(dc_shape){ .rank = 0 }); }

int dc_ad_mul_s(dc_ad *a, int x, float v) { return dc_ad_bin(a, DC_OP_MUL, x, dc_ad_scalar(a, v)); }

/* x reshaped (or broadcast) to s; x itself when it already has that shape */
int dc_ad_view(dc_ad *a, dc_op op, int x, const dc_shape *s) {
    if (x < 0 || dc_shape_eq(&dc_ad_type(a, x)->shape, s)) return x;
    dc_type t = f32_of(s);
    return dc_ad_emit(a, op, 1, &x, NULL, &t);
}

int dc_ad_reshape(dc_ad *a, int x, const dc_shape *s) { return dc_ad_view(a, DC_OP_RESHAPE, x, s); }

/* sum of x over axes (sorted; n >= 1, as n == 0 means all) */
int dc_ad_sum_axes(dc_ad *a, int x, const dc_ints *axes, bool keepdims) {
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.reduce.axes = *axes;
    at.reduce.keepdims = keepdims;
    return dc_ad_emit(a, DC_OP_SUM, 1, &x, &at, NULL);
}

int dc_ad_where0(dc_ad *a, int cond, int x, bool x_when_true) {
    int z = dc_ad_scalar(a, 0.0f);
    return dc_ad_emit(a, DC_OP_WHERE, 3, (int[]){ cond, x_when_true ? x : z, x_when_true ? z : x }, NULL, NULL);
}

/* dy (of a broadcast result's shape) summed back to shape s: over the leading axes s lacks
 * and the axes where s has 1 and dy does not, then reshaped to s. */
int dc_ad_unbroadcast(dc_ad *a, int dy, const dc_shape *s) {
    if (dy < 0) return -1;
    const dc_shape *o = &dc_ad_type(a, dy)->shape;
    int lead = o->rank - s->rank;
    dc_ints axes = { .n = 0 };
    for (int d = 0; d < o->rank; d++)
        if (d < lead || (s->dim[d - lead] == 1 && o->dim[d] != 1)) axes.v[axes.n++] = d;
    if (axes.n > 0) dy = dc_ad_sum_axes(a, dy, &axes, true);
    return dc_ad_reshape(a, dy, s);
}

/* dy of a reduction over axes of x (keepdims or not) broadcast back to x's shape */
int dc_ad_expand(dc_ad *a, int dy, const dc_shape *xs, const dc_ints *axes) {
    dc_shape kept = *xs;
    for (int d = 0; d < xs->rank; d++) {
        bool red = axes->n == 0;
        for (int i = 0; i < axes->n; i++) red |= axes->v[i] == d;
        if (red) kept.dim[d] = 1;
    }
    return dc_ad_view(a, DC_OP_BROADCAST_TO, dc_ad_reshape(a, dy, &kept), xs);
}

/* ---- adjoints ----------------------------------------------------------------------------- */

bool dc_ad_wants(const dc_ad *a, int id) { return a->need[id]; }

/* adj[id] += grad (grad has id's shape); ignored for values that take no gradient */
void dc_ad_accum(dc_ad *a, int id, int grad) {
    if (!a->ok || grad < 0 || !dc_ad_wants(a, id)) return;
    if (!dc_shape_eq(&dc_ad_type(a, grad)->shape, &dc_ad_type(a, id)->shape)) {
        char t1[160], t2[160];
        snprintf(a->err, a->len, "dc_grad: internal error: gradient %s for a value of type %s",
                 dc_type_str(dc_ad_type(a, grad), t1, sizeof t1), dc_type_str(dc_ad_type(a, id), t2, sizeof t2));
        a->ok = false;
        return;
    }
    a->adj[id] = a->adj[id] < 0 ? grad : dc_ad_bin(a, DC_OP_ADD, a->adj[id], grad);
}

/* The most nodes one VJP appends (concat's 16 slices and their adds are the most). Room for
 * them is reserved before each VJP, so the VJPs may hold pointers into the graph (type_of). */
#define VJP_MAX_NODES 256

/* The VJP of every op, from ops.def's vjp column (NULL: not differentiable). */
static dc_vjp_fn *const vjp_of[DC_OP_COUNT] = {
#define DC_OP(NAME, text, kind, arity, attr, shape, vjp, ref, lower, form) [DC_OP_##NAME] = DC_HOOK(dc_vjp_, vjp),
#include "ir/ops.def"
#undef DC_OP
};

/* Pushes node id's adjoint to its inputs. */
static void vjp(dc_ad *a, int id) {
    dc_node n = a->g->nodes[id];
    int dy = a->adj[id], start = a->g->n_nodes;
    a->site = id;
    dc_graph_reserve(a->g, start + VJP_MAX_NODES);
    if (vjp_of[n.op]) vjp_of[n.op](a, &n, id, dy);
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
static void mark(dc_ad *a, int loss, const int *wrt, int n) {
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
static void backward(dc_ad *a, int loss, const int *wrt, int n, int *grads) {
    a->site = loss;
    if (a->need[loss]) a->adj[loss] = dc_ad_scalar(a, 1.0f);
    for (int i = loss; i >= 0 && a->ok; i--)
        if (a->need[i] && a->adj[i] >= 0) vjp(a, i);
    for (int i = 0; i < n && a->ok; i++) {
        a->site = wrt[i];
        grads[i] = a->adj[wrt[i]] >= 0 ? a->adj[wrt[i]] : dc_ad_fill(a, 0.0f, &dc_ad_type(a, wrt[i])->shape);
    }
}

bool dc_grad(dc_graph *g, int loss, const int *wrt, int n, int *grads, char *err, size_t len) {
    if (!g) {
        snprintf(err, len, "dc_grad: no graph");
        return false;
    }
    if (!check_args(g, loss, wrt, n, grads, err, len)) return false;
    dc_ad a = { .g = g, .n_fwd = g->n_nodes, .ok = true, .err = err, .len = len };
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
