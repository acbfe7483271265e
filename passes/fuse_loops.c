/* fuse_loops.c — loop fusion: marks groups of elementwise ops and row reductions that one
 * row kernel computes (g->group), and reorders nodes so each group is consecutive.
 * Candidates: nodes of groupable ops (dc_op_groupable) that form a legal group on their own.
 * The row-kernel rule: a group has a view (dc_loop_view), R = n*groups rows split across
 *   threads and C = s*k inner positions per row. Its row ops fix the view: sum, mean, max and
 *   logsumexp over the trailing axes of x (rows: the leading dims) or over any other run of
 *   consecutive axes (n = the dims before it, s = the reduced dims, groups = the dims after it,
 *   k = 1: a row is one kept element, as a bias gradient's column), softmax, log_softmax,
 *   softmax_bwd and layer_norm over the last axis, group_norm of x [N, ..., C] with G groups
 *   (n = N, s = the positions, groups = G, k = C/G: a row is one (sample, group)); all row ops
 *   of a group must give the same view. A group without row ops has R = the element count
 *   of its stored values (all equal) and C = 1. Each member value is one of:
 *   - free: an elementwise, movement, fill or iota node none of whose member inputs depends
 *     on a row op: computable at any index from values outside the group;
 *   - full (R*C elements; element f lies in the row and inner position the view gives f);
 *   - row (R elements, one per row): results of sum, mean, max, logsumexp, and elementwise
 *     nodes of row values;
 *   - lane (R*k elements, one per row and inner lane): a sum or max (any other view) that
 *     folds the view's positions of a free or full value and keeps its k lanes: n and s as
 *     the view's, groups*k as its groups, k 1 (the bias and scale gradients' per-sample sums
 *     of a group norm's backward, kept per channel). No member reads a lane value; it is
 *     stored. The group's view is that of its first row op which the others have or are lane
 *     reductions in.
 *   A row op's x (and softmax_bwd's dy) is free or full, gamma and beta free or outside. An
 *   elementwise or movement node reading a full or row member is itself full or row, and
 *   reads it at the same element (a full or row input of its own class, the same count, a
 *   transpose only moving size-1 dims) or broadcasts a row input over the inner dims (plain
 *   views, groups = 1: the input's dims are the leading dims of the output that make up R,
 *   then ones). A concat or unslice reads no member but fills and iotas (its guarded reads
 *   are loads), a gather no member (its indices are checked before the kernel runs), a slice,
 *   upsample or one_hot no full or row member. A stored value is full, row or lane sized.
 *   A view with one row and C > 1 (a reduction of a whole tensor) is a group of one node: a
 *   one-row loop would run every member on one thread. A group's kernel touches at most DC_LOOP_MAX_BUFFERS buffers (the
 *   distinct values it reads from outside, fills and iotas not counted, and its stored
 *   members), so a long chain (a global norm's sum over 250 parameters) becomes several groups.
 * Grouping: every candidate starts as a group of its own (a legal existing group of the
 *   input graph is kept as one); then, in node order and to a fixpoint, each edge u -> n
 *   between candidates of two groups merges them when u and n have the same element count,
 *   or n reduces u, or u is a row value (so free scalars never join unrelated groups), and
 *   the union is legal and convex (no path leaves it and comes back, other groups counted as
 *   single units, so the groups can be scheduled). So elementwise chains,
 *   a row op with its elementwise producers and consumers, and the AdamW / EMA update of a
 *   parameter (p, g, m, v, lr, bc1, bc2 -> p', m', v', ema': same-sized edges, one group per
 *   parameter, the scalars lr, bc1, bc2 and constants read from outside) become one group.
 * Fan-out rule: a member value used outside its group (by a node of another group or none,
 *   as an output or as a state update's value) is materialised: the group's kernel stores it
 *   and every other reader loads it; nothing is duplicated into a second group, so nothing is
 *   recomputed across groups. Values used only inside their group (dc_loop_internal) are
 *   never stored; a row kernel may evaluate them more than once per element (each pass over
 *   a row evaluates what it reads).
 * Guarantees: nodes and values are unchanged (the ref executor, which ignores groups,
 *   computes bitwise the same); the order is topological with each group consecutive (a
 *   deterministic topological sort of the groups, keyed by each group's first node, which
 *   keeps an already grouped order as it is); groups are numbered 1, 2, ... in node order;
 *   outputs and updates follow their values; the memory plan is dropped. Idempotent: the
 *   groups of a second run start from the first run's, which no edge can merge further. */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "passes/rewrite.h"

enum { CLS_FREE, CLS_FULL, CLS_ROW, CLS_LANE };

/* The graph's use structure: consumers of each value (CSR) and whether it is needed after
 * the run (an output or an update value). */
typedef struct {
    const dc_graph *g;
    int *use_start, *use;      /* consumers of node i: use[use_start[i] .. use_start[i+1]) */
    bool *kept;                /* output or update value */
    int *mark;                 /* scratch: mark[i] == stamp for members of the set in hand */
    int stamp;
} uses;

static uses uses_new(const dc_graph *g) {
    size_t n = (size_t)g->n_nodes + 1;
    uses u = { g, calloc(n + 1, sizeof(int)), NULL, calloc(n, sizeof(bool)), calloc(n, sizeof(int)), 0 };
    if (!u.use_start || !u.kept || !u.mark) abort(); /* out of memory */
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) u.use_start[g->nodes[i].in[k] + 1]++;
    for (int i = 0; i < g->n_nodes; i++) u.use_start[i + 1] += u.use_start[i];
    u.use = malloc(((size_t)u.use_start[g->n_nodes] + 1) * sizeof(int));
    int *fill = malloc(n * sizeof(int));
    if (!u.use || !fill) abort(); /* out of memory */
    memcpy(fill, u.use_start, (size_t)g->n_nodes * sizeof(int));
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) u.use[fill[g->nodes[i].in[k]]++] = i;
    free(fill);
    for (int i = 0; i < g->n_outputs; i++) u.kept[g->outputs[i]] = true;
    for (int j = 0; j < g->n_updates; j++) u.kept[g->updates[j].value] = true;
    return u;
}

static void uses_free(uses *u) {
    free(u->use_start);
    free(u->use);
    free(u->kept);
    free(u->mark);
}

/* Marks the members m[0..nm) as the set in hand. */
static void mark_set(uses *u, const int *m, int nm) {
    u->stamp++;
    for (int i = 0; i < nm; i++) u->mark[m[i]] = u->stamp;
}

static bool in_set(const uses *u, int id) { return u->mark[id] == u->stamp; }

/* A member of the marked set whose value is read outside it (or kept after the run). */
static bool stored(const uses *u, int id) {
    if (u->kept[id]) return true;
    for (int k = u->use_start[id]; k < u->use_start[id + 1]; k++)
        if (!in_set(u, u->use[k])) return true;
    return u->use_start[id] == u->use_start[id + 1];
}

/* ---- the row-kernel rule ---------------------------------------------------------------- */

static int64_t dims_product(const dc_shape *s, int from, int to) {
    int64_t p = 1;
    for (int d = from; d < to; d++) p *= s->dim[d];
    return p;
}

static dc_loop_view plain_view(int64_t rows, int64_t inner) { return (dc_loop_view){ rows, 1, 1, inner }; }

static const dc_row_desc *row_of(dc_op op) { return &dc_op_get(op)->row; }

static bool is_row_op(dc_op op) { return dc_op_get(op)->lower == DC_LOWER_ROW; }

/* Whether op reduces each row to one value (its result is a row value). */
static bool reduces_rows(dc_op op) {
    dc_rows r = row_of(op)->rows;
    return is_row_op(op) && (r == DC_ROWS_AXES || r == DC_ROWS_WINDOW || r == DC_ROWS_LABELS);
}

/* The view row op n imposes (its row description's rows); false if it does not reduce along
 * trailing axes or (sum, mean, max, logsumexp) another run of consecutive axes. */
static bool row_op_view(const dc_graph *g, const dc_node *n, dc_loop_view *v) {
    const dc_shape *x = &g->nodes[n->in[0]].type.shape;
    int d = x->rank;
    switch (row_of(n->op)->rows) {
    case DC_ROWS_AXES: {
        const dc_ints *a = &n->attr.reduce.axes;
        int m = a->n ? a->n : d;
        int lo = a->n ? (int)a->v[0] : 0;
        bool trailing = true, run = true;
        for (int i = 0; i < a->n; i++) {
            trailing = trailing && a->v[i] == d - m + i;
            run = run && a->v[i] == lo + i;
        }
        if (trailing) *v = plain_view(dims_product(x, 0, d - m), dims_product(x, d - m, d));
        else if (run)
            *v = (dc_loop_view){ dims_product(x, 0, lo), dims_product(x, lo, lo + m), dims_product(x, lo + m, d), 1 };
        return trailing || run;
    }
    case DC_ROWS_AXIS:
        if (n->attr.axis.axis != d - 1) return false;
        /* fall through */
    case DC_ROWS_LAST:
    case DC_ROWS_LABELS:
        *v = plain_view(dims_product(x, 0, d - 1), x->dim[d - 1]);
        return true;
    case DC_ROWS_GROUPS: {
        int64_t c = x->dim[d - 1], groups = n->attr.group_norm.groups;
        *v = (dc_loop_view){ x->dim[0], dims_product(x, 1, d - 1), groups, c / groups };
        if (groups == 1) *v = plain_view(x->dim[0], v->s * v->k);
        return true;
    }
    case DC_ROWS_WINDOW: {
        int64_t f = n->attr.pool.factor;
        *v = plain_view(dc_numel(&n->type.shape), f * f);
        return true;
    }
    case DC_ROWS_NONE:
        break;
    }
    return false;
}

static bool same_view(const dc_loop_view *a, const dc_loop_view *b) {
    return a->n == b->n && a->s == b->s && a->groups == b->groups && a->k == b->k;
}

/* Whether row op n, of view w, is a lane reduction in view v: a sum or max that folds the
 * positions of v's rows and keeps each row's k inner lanes (a bias gradient's per-sample sums
 * next to a group norm). */
static bool lane_of(const dc_node *n, const dc_loop_view *w, const dc_loop_view *v) {
    dc_row_value what = row_of(n->op)->value;
    return (what == DC_ROW_SUM || what == DC_ROW_MAX) && row_of(n->op)->rows == DC_ROWS_AXES && v->k > 1 &&
           w->k == 1 && w->n == v->n && w->s == v->s && w->groups == v->groups * v->k;
}

/* A transpose that moves only size-1 dims (the element order is unchanged). */
static bool keeps_order(const dc_graph *g, const dc_node *n) {
    const dc_shape *x = &g->nodes[n->in[0]].type.shape;
    int last = -1;
    for (int d = 0; d < n->attr.perm.perm.n; d++) {
        int from = (int)n->attr.perm.perm.v[d];
        if (x->dim[from] == 1) continue;
        if (from < last) return false;
        last = from;
    }
    return true;
}

/* Row value r (shape rs) broadcast into the full value of shape os: rs, aligned right, is
 * the leading dims of os whose product is R, then ones. */
static bool broadcasts_rows(const dc_shape *rs, const dc_shape *os, int64_t rows) {
    for (int k = 0; k <= os->rank; k++) {
        if (dims_product(os, 0, k) != rows) continue;
        bool ok = rs->rank <= os->rank;
        for (int d = 0; d < os->rank && ok; d++) {
            int rd = d - (os->rank - rs->rank);
            int64_t have = rd >= 0 ? rs->dim[rd] : 1;
            ok = have == (d < k ? os->dim[d] : 1);
        }
        if (ok) return true;
    }
    return false;
}

/* The class of elementwise / movement member n of view v; -1 if it breaks the rule. */
static int pointwise_class(const dc_graph *g, const uses *u, int id, const char *cls, const dc_loop_view *v) {
    const dc_node *n = &g->nodes[id];
    int64_t rows = v->n * v->groups, cnt = dc_numel(&n->type.shape);
    dc_lower lw = dc_op_get(n->op)->lower;
    int c = CLS_FREE;
    for (int k = 0; k < n->n_in; k++) {
        dc_lower in_lw = dc_op_get(g->nodes[n->in[k]].op)->lower;
        bool computed = in_lw != DC_LOWER_FILL && in_lw != DC_LOWER_IOTA;
        if (in_set(u, n->in[k]) && (cls[n->in[k]] == CLS_LANE || lw == DC_LOWER_GATHER ||
                                    ((lw == DC_LOWER_CONCAT || lw == DC_LOWER_UNSLICE) && computed)))
            return -1;
        if (in_set(u, n->in[k]) && cls[n->in[k]] != CLS_FREE) c = cnt == rows * v->s * v->k ? CLS_FULL : CLS_ROW;
    }
    if (c == CLS_FREE) return c;
    if (c == CLS_ROW && cnt != rows) return -1;
    if ((lw == DC_LOWER_TRANSPOSE && !keeps_order(g, n)) || lw == DC_LOWER_UPSAMPLE || lw == DC_LOWER_ONE_HOT ||
        lw == DC_LOWER_SLICE)
        return -1;
    for (int k = 0; k < n->n_in; k++) {
        int in = n->in[k];
        if (!in_set(u, in) || cls[in] == CLS_FREE || cls[in] == c) continue;
        bool bcast = lw != DC_LOWER_RESHAPE && lw != DC_LOWER_TRANSPOSE;
        if (!(cls[in] == CLS_ROW && v->groups == 1 && bcast &&
              broadcasts_rows(&g->nodes[in].type.shape, &n->type.shape, rows)))
            return -1;
    }
    return c;
}

/* The class of row op n in the group's view v (its own, or n a lane reduction in it); -1 if an
 * operand breaks the rule. A window's input is not in the view's element order: it must be
 * free. */
static int row_op_class(const dc_graph *g, const uses *u, int id, const char *cls, const dc_loop_view *v) {
    const dc_node *n = &g->nodes[id];
    bool window = row_of(n->op)->rows == DC_ROWS_WINDOW;
    for (int k = 0; k < n->n_in; k++) {
        int in = n->in[k];
        bool data = dc_row_data(row_of(n->op), k) && !window;
        if (in_set(u, in) && cls[in] != CLS_FREE && !(data && cls[in] == CLS_FULL)) return -1;
        if (in_set(u, in) && row_of(n->op)->rows == DC_ROWS_LABELS) return -1;
    }
    dc_loop_view w;
    if (row_op_view(g, n, &w) && !same_view(&w, v)) return CLS_LANE;
    return reduces_rows(n->op) ? CLS_ROW : CLS_FULL;
}

/* Whether every row op of the set m[0..nm) has view v or is a lane reduction in it. */
static bool fits_view(const dc_graph *g, const int *m, int nm, const dc_loop_view *v) {
    for (int i = 0; i < nm; i++) {
        const dc_node *n = &g->nodes[m[i]];
        dc_loop_view w;
        if (is_row_op(n->op) && (!row_op_view(g, n, &w) || (!same_view(&w, v) && !lane_of(n, &w, v)))) return false;
    }
    return true;
}

/* The view of the set m[0..nm) (ascending, marked): that of the first of its row ops which
 * the others fit, else from its stored values. False if there is none or they disagree. */
static bool find_view(const dc_graph *g, const uses *u, const int *m, int nm, dc_loop_view *v) {
    bool have = false;
    for (int i = 0; i < nm; i++) {
        if (!is_row_op(g->nodes[m[i]].op)) continue;
        if (row_op_view(g, &g->nodes[m[i]], v) && fits_view(g, m, nm, v)) return true;
        have = true;
    }
    if (have) return false;
    for (int i = 0; i < nm && !have; i++)
        if (stored(u, m[i])) {
            *v = plain_view(dc_numel(&g->nodes[m[i]].type.shape), 1);
            have = true;
        }
    return have;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Whether the kernel of the marked set m[0..nm) touches at most DC_LOOP_MAX_BUFFERS buffers:
 * distinct values read from outside (fills and iotas computed in the kernel) and stored
 * members; scratch holds the outside reads. */
static bool fits_buffers(const dc_graph *g, const uses *u, const int *m, int nm, int *scratch) {
    int n = 0, stores = 0;
    for (int i = 0; i < nm; i++) {
        const dc_node *x = &g->nodes[m[i]];
        stores += stored(u, m[i]);
        for (int k = 0; k < x->n_in; k++) {
            dc_lower lw = dc_op_get(g->nodes[x->in[k]].op)->lower;
            if (!in_set(u, x->in[k]) && lw != DC_LOWER_FILL && lw != DC_LOWER_IOTA) scratch[n++] = x->in[k];
        }
    }
    qsort(scratch, (size_t)n, sizeof *scratch, cmp_int);
    int distinct = 0;
    for (int i = 0; i < n; i++) distinct += i == 0 || scratch[i] != scratch[i - 1];
    return distinct + stores <= DC_LOOP_MAX_BUFFERS;
}

/* Whether the marked set m[0..nm) (ascending) obeys the row-kernel rule and fits a kernel's
 * buffers; its view in *v and each member's class in cls[]. */
static bool legal(const dc_graph *g, const uses *u, const int *m, int nm, dc_loop_view *v, char *cls, int *scratch) {
    if (!find_view(g, u, m, nm, v) || !fits_buffers(g, u, m, nm, scratch)) return false;
    int64_t rows = v->n * v->groups, inner = v->s * v->k;
    if (rows == 1 && inner > 1 && nm > 1) return false;
    for (int i = 0; i < nm; i++) {
        int id = m[i];
        int c = is_row_op(g->nodes[id].op) ? row_op_class(g, u, id, cls, v) : pointwise_class(g, u, id, cls, v);
        if (c < 0) return false;
        cls[id] = (char)c;
        int64_t cnt = dc_numel(&g->nodes[id].type.shape);
        if (stored(u, id) && cnt != rows * inner && cnt != rows && !(c == CLS_LANE && cnt == rows * v->k)) return false;
    }
    return true;
}

/* ---- grouping --------------------------------------------------------------------------- */

/* Groups as linked member lists: head[r] the first member of the group whose label is r,
 * next[i] the following member (-1 at the end), size[r] and last[r] its member count and
 * last member, label[i] node i's group (-1: not a candidate). */
typedef struct {
    uses u;
    int *label, *head, *next, *size, *last;
    int *members, *seen, *stack;
    int *scratch; /* [edges]: fits_buffers' outside reads */
    char *cls;
} grouping;

/* Pushes node w for the backward walk of convex(): its whole group (groups are single units
 * of the schedule) unless it ends before lo (then no member of the set reaches it). */
static void push_unit(grouping *gr, int w, int lo, int *top) {
    int l = gr->label[w];
    if (gr->seen[w] == gr->u.stamp) return;
    if (l < 0 || gr->size[l] == 1) {
        if (w < lo) return;
        gr->seen[w] = gr->u.stamp;
        gr->stack[(*top)++] = w;
        return;
    }
    if (gr->last[l] < lo) return;
    for (int i = gr->head[l]; i >= 0; i = gr->next[i]) {
        gr->seen[i] = gr->u.stamp;
        gr->stack[(*top)++] = i;
    }
}

/* Whether no path leaves the marked set m[0..nm) (ascending) and comes back, counting each
 * other group as one unit: no input from outside the set descends from the set. */
static bool convex(grouping *gr, const int *m, int nm) {
    const dc_graph *g = gr->u.g;
    int lo = m[0], top = 0;
    for (int i = 0; i < nm; i++)
        for (int k = 0; k < g->nodes[m[i]].n_in; k++)
            if (!in_set(&gr->u, g->nodes[m[i]].in[k])) push_unit(gr, g->nodes[m[i]].in[k], lo, &top);
    while (top > 0) {
        const dc_node *n = &g->nodes[gr->stack[--top]];
        for (int k = 0; k < n->n_in; k++) {
            if (in_set(&gr->u, n->in[k])) return false;
            push_unit(gr, n->in[k], lo, &top);
        }
    }
    return true;
}

/* The members of groups a and b (b may equal a) into gr->members, ascending, marked. */
static int gather(grouping *gr, int a, int b) {
    int n = 0;
    for (int i = gr->head[a]; i >= 0; i = gr->next[i]) gr->members[n++] = i;
    if (b != a)
        for (int i = gr->head[b]; i >= 0; i = gr->next[i]) gr->members[n++] = i;
    qsort(gr->members, (size_t)n, sizeof(int), cmp_int);
    mark_set(&gr->u, gr->members, n);
    return n;
}

/* Whether groups a and b together form a legal, convex group (classes left in cls). */
static bool can_join(grouping *gr, int a, int b) {
    dc_loop_view v;
    int n = gather(gr, a, b);
    return legal(gr->u.g, &gr->u, gr->members, n, &v, gr->cls, gr->scratch) && convex(gr, gr->members, n);
}

static void join(grouping *gr, int a, int b) {
    if (gr->size[a] < gr->size[b]) {
        int t = a;
        a = b;
        b = t;
    }
    int last = gr->head[b];
    for (int i = gr->head[b]; i >= 0; i = gr->next[i]) {
        gr->label[i] = a;
        last = i;
    }
    gr->next[last] = gr->head[a];
    gr->head[a] = gr->head[b];
    gr->size[a] += gr->size[b];
    if (gr->last[b] > gr->last[a]) gr->last[a] = gr->last[b];
    gr->head[b] = -1;
    gr->size[b] = 0;
}

/* Whether edge u -> n (n's input) may merge their groups: same element count, a reduction
 * of u, or u a row value of its group. */
static bool edge_merges(grouping *gr, int from, int to) {
    const dc_graph *g = gr->u.g;
    int64_t a = dc_numel(&g->nodes[from].type.shape), b = dc_numel(&g->nodes[to].type.shape);
    if (a == b || (a > b && reduces_rows(g->nodes[to].op))) return true;
    if (a > b) return false;
    int l = gr->label[from];
    return can_join(gr, l, l) && gr->cls[from] == CLS_ROW;
}

/* One sweep over every edge in node order; returns whether anything merged. */
static bool merge_sweep(grouping *gr) {
    const dc_graph *g = gr->u.g;
    bool merged = false;
    for (int i = 0; i < g->n_nodes; i++) {
        if (gr->label[i] < 0) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int in = g->nodes[i].in[k];
            if (gr->label[in] < 0 || gr->label[in] == gr->label[i] || !edge_merges(gr, in, i)) continue;
            if (!can_join(gr, gr->label[in], gr->label[i])) continue;
            join(gr, gr->label[in], gr->label[i]);
            merged = true;
        }
    }
    return merged;
}

/* Candidates as groups of their own, or the input graph's legal groups as they were. */
static void seed(grouping *gr) {
    const dc_graph *g = gr->u.g;
    for (int i = 0; i < g->n_nodes; i++) {
        gr->label[i] = dc_op_groupable(g->nodes[i].op) ? i : -1;
        gr->head[i] = i;
        gr->next[i] = -1;
        gr->size[i] = 1;
        gr->last[i] = i;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (gr->label[i] >= 0 && !can_join(gr, i, i)) gr->label[i] = -1;
    for (int i = 1; g->group && i < g->n_nodes; i++) {
        int a = gr->label[i - 1], b = gr->label[i];
        if (g->group[i] > 0 && g->group[i] == g->group[i - 1] && a >= 0 && b >= 0 && can_join(gr, a, b))
            join(gr, a, b);
    }
}

/* ---- the new order ---------------------------------------------------------------------- */

/* A binary min-heap of node ids (each a group's first member or an ungrouped node). */
typedef struct { int *h, n; } heap;

static void heap_push(heap *q, int x) {
    int i = q->n++;
    for (; i > 0 && q->h[(i - 1) / 2] > x; i = (i - 1) / 2) q->h[i] = q->h[(i - 1) / 2];
    q->h[i] = x;
}

static int heap_pop(heap *q) {
    int top = q->h[0], x = q->h[--q->n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= q->n) break;
        if (c + 1 < q->n && q->h[c + 1] < q->h[c]) c++;
        if (q->h[c] >= x) break;
        q->h[i] = q->h[c];
        i = c;
    }
    if (q->n > 0) q->h[i] = x;
    return top;
}

/* The unit of node i: its group's first member, or i itself when ungrouped. */
static int unit_of(const int *first, const grouping *gr, int i) {
    return gr->label[i] >= 0 ? first[gr->label[i]] : i;
}

/* A topological order of the units (groups and ungrouped nodes), smallest first node first,
 * each group's members in node order; written to order[], groups numbered in gid[]. */
static void schedule(const grouping *gr, int *order, int *gid) {
    const dc_graph *g = gr->u.g;
    const uses *u = &gr->u;
    int n = g->n_nodes;
    size_t cnt = (size_t)n + 1;
    int *first = malloc(cnt * sizeof(int)), *pending = calloc(cnt, sizeof(int));
    heap q = { malloc(cnt * sizeof(int)), 0 };
    if (!first || !pending || !q.h) abort(); /* out of memory */
    for (int i = n - 1; i >= 0; i--)
        if (gr->label[i] >= 0) first[gr->label[i]] = i;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            pending[unit_of(first, gr, i)] += unit_of(first, gr, g->nodes[i].in[k]) != unit_of(first, gr, i);
    for (int i = 0; i < n; i++)
        if (unit_of(first, gr, i) == i && pending[i] == 0) heap_push(&q, i);
    int k = 0, groups = 0;
    while (q.n > 0) {
        int un = heap_pop(&q), begin = k, l = gr->label[un];
        if (l >= 0) groups++;
        for (int i = l >= 0 ? gr->head[l] : un; i >= 0; i = l >= 0 ? gr->next[i] : -1) order[k++] = i;
        if (l >= 0) qsort(order + begin, (size_t)(k - begin), sizeof(int), cmp_int);
        for (int j = begin; j < k; j++) {
            gid[order[j]] = l >= 0 ? groups : 0;
            for (int e = u->use_start[order[j]]; e < u->use_start[order[j] + 1]; e++) {
                int c = unit_of(first, gr, u->use[e]);
                if (c != un && --pending[c] == 0) heap_push(&q, c);
            }
        }
    }
    if (k != n) abort(); /* the groups were not convex */
    free(first);
    free(pending);
    free(q.h);
}

static grouping grouping_new(const dc_graph *g) {
    size_t n = (size_t)g->n_nodes + 1;
    grouping gr = { uses_new(g), malloc(n * sizeof(int)), malloc(n * sizeof(int)), malloc(n * sizeof(int)),
                    malloc(n * sizeof(int)), malloc(n * sizeof(int)), malloc(n * sizeof(int)),
                    calloc(n, sizeof(int)), malloc(n * sizeof(int)), NULL, calloc(n, 1) };
    gr.scratch = malloc(((size_t)gr.u.use_start[g->n_nodes] + 1) * sizeof(int));
    if (!gr.label || !gr.head || !gr.next || !gr.size || !gr.last || !gr.members || !gr.seen || !gr.stack ||
        !gr.scratch || !gr.cls)
        abort(); /* out of memory */
    return gr;
}

static void grouping_free(grouping *gr) {
    uses_free(&gr->u);
    free(gr->label);
    free(gr->head);
    free(gr->next);
    free(gr->size);
    free(gr->last);
    free(gr->members);
    free(gr->seen);
    free(gr->stack);
    free(gr->scratch);
    free(gr->cls);
}

bool dc_pass_fuse_loops(dc_graph *g, const dc_pass_opts *o, char *err, size_t len) {
    (void)o, (void)err, (void)len;
    grouping gr = grouping_new(g);
    seed(&gr);
    while (merge_sweep(&gr)) {
    }
    size_t n = (size_t)g->n_nodes + 1;
    int *order = malloc(n * sizeof(int)), *gid = malloc(n * sizeof(int));
    if (!order || !gid) abort(); /* out of memory */
    schedule(&gr, order, gid);
    grouping_free(&gr);
    dc_rw_reorder(g, order, gid);
    free(order);
    free(gid);
    return true;
}

/* ---- queries for planning and lowering -------------------------------------------------- */

bool dc_loop_group_view(const dc_graph *g, int first, int last, dc_loop_view *v) {
    uses u = uses_new(g);
    int nm = last - first + 1;
    int *m = malloc((size_t)nm * sizeof(int));
    char *cls = calloc((size_t)g->n_nodes + 1, 1);
    int *scratch = malloc(((size_t)u.use_start[g->n_nodes] + 1) * sizeof(int));
    if (!m || !cls || !scratch) abort(); /* out of memory */
    for (int i = 0; i < nm; i++) m[i] = first + i;
    mark_set(&u, m, nm);
    bool ok = legal(g, &u, m, nm, v, cls, scratch);
    free(scratch);
    free(m);
    free(cls);
    uses_free(&u);
    return ok;
}

void dc_loop_internal(const dc_graph *g, bool *internal) {
    uses u = uses_new(g);
    for (int i = 0; i < g->n_nodes; i++) {
        int k = g->group ? g->group[i] : 0;
        bool only_inside = k > 0 && !u.kept[i] && u.use_start[i] < u.use_start[i + 1];
        for (int e = u.use_start[i]; e < u.use_start[i + 1] && only_inside; e++)
            only_inside = g->group[u.use[e]] == k;
        internal[i] = only_inside;
    }
    uses_free(&u);
}
