/* lower_jit.c — lowering a loop group to one kernel IR (codegen/lower_jit.h).
 *
 * The loops. An anchor fixes the kernel's index space: a reduction-like member (sum, mean,
 * max, logsumexp, softmax, log_softmax, softmax_bwd, layer_norm, group_norm) gives an outer
 * space of the dims it keeps (group_norm: batch and group) and an inner space of the dims it
 * reduces (group_norm: the positions and the group's channels); a group without one is
 * anchored at a member of the largest size, whose shape is the outer space (no inner space).
 * The candidates are tried in node order until one lowers.
 *
 * Coordinates. A value is evaluated at coordinates that are affine functions of the outer
 * and inner indices (one dc_kir_map per dim). An elementwise op evaluates its operands at the
 * numpy-broadcast coordinates, transpose permutes them, broadcast_to broadcasts them, reshape
 * flattens them and splits the flat index into the operand's dims (affine when no digit can
 * carry; checked), iota is the coordinate itself, slice reads at start + step * the coordinates;
 * unslice and concat read their operands (from buffers, or fills and iotas) by checked loads
 * guarded by the part of the index space each covers, gather its table at the row its index
 * names and cross_entropy_rows each row at its label (checked loads; the step checks the
 * indices and labels before the kernel runs). A value from outside the group is a load at
 * its flattened coordinates, except fill and iota, which the kernel computes itself. A reduction evaluated at coordinates whose row part (the kept
 * dims) does not depend on the inner index folds its operand over the inner space (the
 * reduced dims split from the flat inner index) in the first phase after the results its
 * operand reads; results are memoised per row. Every (node, coordinates) is built once, and the norms of one
 * value over the same rows (a group norm, its backward, the normalised value the scale gradient
 * reads) share one mean and one rstd.
 *
 * Placement. Which element of each member a kernel index stands for is propagated from the
 * anchor along the edges into and inside the group (same-shaped operands, transposes,
 * reshapes, reductions; the values the group reads relay it too). A
 * materialised member (read after the group, an output, a state update's value) needs a
 * placement that is a bijection (one without an edge to carry it borrows that of a placed
 * value of its shape: any bijection stores correctly): from the whole index space (an elementwise store, in the
 * first phase where its results are ready), or from the outer space alone (a per-row store in
 * a final per-row phase).
 *
 * Semantics of the composite ops, in f32 and the kernel IR's fold order:
 *   mean = sum / n;  logsumexp = m + log(sum(exp(x - m))) when m = max(x) is finite, else m;
 *   softmax = exp(x - m) * (1 / sum(exp(x - m)));  log_softmax = (x - m) - log(sum(exp(x - m)));
 *   softmax_bwd(y, dy) = y * (dy - sum(dy * y));
 *   layer_norm, group_norm = (x - mean) * (rstd * gamma) + beta, rstd = rsqrt(var + eps),
 *                            var = mean((x - mean)^2)
 *   (two folds, as the ref kernels, which accumulate in double instead).
 *
 * Refusals (the group then runs on ref, with the reason): an op or shape the kernel IR cannot
 * express, a materialised member without a bijective placement, more buffers than a runtime
 * step has arguments, or a store that the memory plan puts over an input which the kernel reads
 * at other positions or in a later phase. */
#include "codegen/lower_jit.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/scalar.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

_Static_assert(DC_LOOP_MAX_BUFFERS <= DC_KIR_MAX_BUFS && DC_LOOP_MAX_BUFFERS <= DC_STEP_MAX_ARGS,
               "fuse-loops may make groups that a kernel cannot hold");

typedef struct {
    int rank;
    dc_kir_map c[DC_MAX_RANK];
} coords;

/* what a memo entry holds for its node at its coordinates */
enum { T_VALUE, T_MAX, T_SUM, T_EXP, T_XSUM, T_MEAN, T_VAR, T_RSTD, T_GSUM, T_GXSUM };

/* what node's entry of kind tag at coordinates at is; arg tells apart the statistics of one
 * input over different rows (the norms' means and rstds are keyed by their input, so norms of
 * one value share them) */
typedef struct {
    int node, tag;
    int64_t arg;
    coords at;
    int expr;
} memo;

typedef enum { PLACE_NONE, PLACE_ELEM, PLACE_ROW, PLACE_LANE } place_kind;

/* An index axis (inner when side is 1) of extent e split into (e / f, f). */
typedef struct { int side, axis; int64_t f; } axis_split;

typedef struct {
    const dc_graph *g;
    int first, last;
    dc_kir *k;
    dc_jit_group *out;
    memo *memo;
    int n_memo, cap_memo;
    coords *place;     /* [n_nodes]: members and the values they read */
    bool *placed;
    bool *materialised; /* [last - first + 1] */
    axis_split splits[2 * DC_MAX_RANK]; /* applied to the anchor's index space, in order */
    int n_splits;
    axis_split want;    /* a split that would make some failed reshape affine (f = 0: none) */
    char why[DC_ERR_LEN];
} ctx;

static int fail(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ctx *c, const char *fmt, ...) {
    if (c->why[0]) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    return -1;
}

static bool failed(const ctx *c) { return c->why[0] || dc_kir_error(c->k); }

static const dc_node *node_at(const ctx *c, int id) { return &c->g->nodes[id]; }
static const dc_shape *shape_of(const ctx *c, int id) { return &c->g->nodes[id].type.shape; }
static bool is_member(const ctx *c, int id) { return id >= c->first && id <= c->last; }

/* ---- affine coordinates ------------------------------------------------------------------ */

static void strides(const dc_shape *s, int64_t *st) {
    int64_t acc = 1;
    for (int d = s->rank - 1; d >= 0; d--) {
        st[d] = acc;
        acc *= s->dim[d];
    }
}

/* y += a * x */
static void map_axpy(dc_kir_map *y, int64_t a, const dc_kir_map *x) {
    y->offset += a * x->offset;
    for (int d = 0; d < DC_MAX_RANK; d++) {
        y->outer[d] += a * x->outer[d];
        y->inner[d] += a * x->inner[d];
    }
}

static bool coords_inner_free(const coords *x) {
    for (int d = 0; d < x->rank; d++)
        if (!dc_kir_map_inner_free(&x->c[d])) return false;
    return true;
}

/* The canonical form: no stride on an axis of extent 1, a zero map for a dim of size 1, zeros
 * past the rank (so equal coordinates compare equal bytewise). */
static void normalize(const dc_kir *k, coords *x, const dc_shape *s) {
    for (int d = 0; d < DC_MAX_RANK; d++) {
        dc_kir_map *m = &x->c[d];
        if (d >= x->rank || s->dim[d] == 1) {
            memset(m, 0, sizeof *m);
            continue;
        }
        for (int a = 0; a < DC_MAX_RANK; a++) {
            if (a >= k->outer_rank || k->outer[a] == 1) m->outer[a] = 0;
            if (a >= k->inner_rank || k->inner[a] == 1) m->inner[a] = 0;
        }
    }
}

static dc_kir_map flatten(const coords *x, const dc_shape *s) {
    int64_t st[DC_MAX_RANK];
    strides(s, st);
    dc_kir_map m;
    memset(&m, 0, sizeof m);
    for (int d = 0; d < s->rank; d++) map_axpy(&m, st[d], &x->c[d]);
    return m;
}

/* Splits the affine flat index f into coordinates of shape s: each index axis goes to the
 * outermost dim whose stride divides its stride; false when a digit could carry into the next
 * (then the coordinates are not affine) or f leaves the shape. When one axis alone overflows
 * its dim and splitting it at the dim's size would fix that, *want (may be NULL) names the
 * split. */
static bool split_flat(const dc_kir *k, const dc_kir_map *f, const dc_shape *s, coords *out, axis_split *want) {
    memset(out, 0, sizeof *out);
    out->rank = s->rank;
    int64_t st[DC_MAX_RANK], hi[DC_MAX_RANK], rest = f->offset;
    strides(s, st);
    if (rest < 0 || rest >= dc_numel(s)) return false;
    for (int d = 0; d < s->rank; d++) {
        hi[d] = out->c[d].offset = rest / st[d];
        rest %= st[d];
    }
    for (int side = 0; side < 2; side++) {
        int rank = side ? k->inner_rank : k->outer_rank;
        for (int a = 0; a < rank; a++) {
            int64_t e = side ? k->inner[a] : k->outer[a], coef = side ? f->inner[a] : f->outer[a];
            if (e == 1 || coef == 0) continue;
            int d = 0;
            while (d < s->rank && coef % st[d]) d++;
            if (coef < 0 || d == s->rank) return false;
            int64_t m = coef / st[d];
            (side ? out->c[d].inner : out->c[d].outer)[a] = m;
            if (want && !want->f && out->c[d].offset == 0 && m * (e - 1) >= s->dim[d] && s->dim[d] % m == 0 &&
                e % (s->dim[d] / m) == 0)
                *want = (axis_split){ side, a, s->dim[d] / m };
            hi[d] += m * (e - 1);
        }
    }
    for (int d = 0; d < s->rank; d++)
        if (hi[d] >= s->dim[d]) return false;
    return true;
}

/* *m = floor(*m / f) when that is affine: every stride and the offset split into a multiple of
 * f and a remainder whose largest total stays below f. When one axis's remainder alone breaks
 * that and splitting it in (e / f, f) would fix it, c->want names the split. */
static bool divide_map(ctx *c, dc_kir_map *m, int64_t f) {
    int64_t most = m->offset % f;
    if (m->offset < 0) return false;
    for (int side = 0; side < 2; side++) {
        int rank = side ? c->k->inner_rank : c->k->outer_rank;
        for (int a = 0; a < rank; a++) {
            int64_t e = side ? c->k->inner[a] : c->k->outer[a], coef = side ? m->inner[a] : m->outer[a];
            if (coef < 0) return false;
            most += coef % f * (e - 1);
            if (coef % f && !c->want.f && coef == 1 && e % f == 0 && e > f) c->want = (axis_split){ side, a, f };
        }
    }
    if (most >= f) return false;
    m->offset /= f;
    for (int a = 0; a < DC_MAX_RANK; a++) {
        m->outer[a] /= f;
        m->inner[a] /= f;
    }
    return true;
}

/* numpy broadcasting: the coordinates of an operand of shape to, read by a value of shape from
 * at x */
static coords broadcast(const coords *x, const dc_shape *from, const dc_shape *to) {
    coords r;
    memset(&r, 0, sizeof r);
    r.rank = to->rank;
    for (int d = 0; d < to->rank; d++)
        if (to->dim[d] != 1) r.c[d] = x->c[d + from->rank - to->rank];
    return r;
}

/* The flat inner index, row-major over the inner space. */
static dc_kir_map inner_flat(const dc_kir *k) {
    dc_kir_map m;
    memset(&m, 0, sizeof m);
    int64_t acc = 1;
    for (int a = k->inner_rank - 1; a >= 0; a--) {
        m.inner[a] = acc;
        acc *= k->inner[a];
    }
    return m;
}

static int64_t inner_numel(const dc_kir *k) {
    int64_t n = 1;
    for (int a = 0; a < k->inner_rank; a++) n *= k->inner[a];
    return n;
}

/* ---- memo and buffers --------------------------------------------------------------------- */

static bool same_coords(const coords *a, const coords *b) {
    return a->rank == b->rank && memcmp(a->c, b->c, sizeof a->c) == 0;
}

static int memo_find(const ctx *c, int node, int tag, int64_t arg, const coords *at) {
    for (int j = 0; j < c->n_memo; j++)
        if (c->memo[j].node == node && c->memo[j].tag == tag && c->memo[j].arg == arg && same_coords(&c->memo[j].at, at))
            return c->memo[j].expr;
    return -1;
}

static int memo_put(ctx *c, int node, int tag, int64_t arg, const coords *at, int expr) {
    if (expr < 0) return -1;
    if (c->n_memo == c->cap_memo) {
        c->cap_memo = c->cap_memo ? 2 * c->cap_memo : 64;
        c->memo = realloc(c->memo, (size_t)c->cap_memo * sizeof *c->memo);
        if (!c->memo) abort(); /* out of memory */
    }
    c->memo[c->n_memo++] = (memo){ node, tag, arg, *at, expr };
    return expr;
}

/* The kernel buffer of node id (declared on first use). */
static int buffer_of(ctx *c, int id, bool written) {
    for (int b = 0; b < c->out->n_args; b++)
        if (c->out->args[b] == id) return b;
    const dc_node *n = node_at(c, id);
    int b = dc_kir_buffer_add(c->k, n->type.dtype, dc_numel(&n->type.shape), written);
    if (b >= 0) c->out->args[c->out->n_args++] = id;
    return b;
}

/* Makes the current phase one that may fold or store expr: a full (not per-row) phase after
 * every phase whose results expr reads. */
static void open_phase(ctx *c, int expr) {
    if (expr < 0) return;
    dc_kir *k = c->k;
    int cur = k->n_phases - 1;
    if (cur < 0 || k->phases[cur].per_row || cur <= k->exprs[expr].after) dc_kir_phase_begin(k, false);
}

/* The fold (memoised as tag of node at row key) of expr over the inner space. */
static int fold(ctx *c, int node, int tag, int64_t arg, const coords *key, dc_kir_combine combine, int expr) {
    if (expr < 0) return -1;
    open_phase(c, expr);
    return memo_put(c, node, tag, arg, key, dc_kir_reduce_add(c->k, combine, expr));
}

/* ---- rows of the reductions ----------------------------------------------------------------- */

static const dc_row_desc *row_of(const dc_node *n) { return &dc_op_get(n->op)->row; }

static bool is_reduction(dc_op op) { return dc_op_get(op)->lower == DC_LOWER_ROW; }

/* Which dims of its input node n folds, and whether its result keeps them. group_norm is
 * described separately (it folds part of the channel dim). */
static void reduced_dims(const dc_node *n, const dc_shape *x, bool *red, bool *keep) {
    memset(red, 0, DC_MAX_RANK * sizeof *red);
    *keep = true;
    switch (row_of(n)->rows) {
    case DC_ROWS_AXES:
        for (int i = 0; i < n->attr.reduce.axes.n; i++) red[n->attr.reduce.axes.v[i]] = true;
        for (int d = 0; d < x->rank && n->attr.reduce.axes.n == 0; d++) red[d] = true;
        *keep = n->attr.reduce.keepdims;
        break;
    case DC_ROWS_LAST:
        red[x->rank - 1] = true;
        break;
    case DC_ROWS_LABELS:
        red[x->rank - 1] = true;
        *keep = false;
        break;
    default: /* AXIS */
        red[n->attr.axis.axis] = true;
        break;
    }
}

/* The space group_norm of input shape x folds: [positions..., channels per group]. */
static dc_shape group_norm_block(const dc_node *n, const dc_shape *x) {
    dc_shape b = { .rank = x->rank - 1 };
    for (int d = 1; d < x->rank - 1; d++) b.dim[d - 1] = x->dim[d];
    b.dim[x->rank - 2] = x->dim[x->rank - 1] / n->attr.group_norm.groups;
    return b;
}

/* For reduction-like node v read at output coordinates at: the row it belongs to (key, which
 * must not depend on the inner index) and the coordinates of its first input over that row
 * (in_at: the kept dims from at, the folded ones split from the flat inner index). */
static bool row_view(ctx *c, int v, const coords *at, coords *key, coords *in_at) {
    const dc_node *n = node_at(c, v);
    const dc_shape *x = shape_of(c, n->in[0]);
    dc_kir_map flat = inner_flat(c->k);
    memset(key, 0, sizeof *key);
    memset(in_at, 0, sizeof *in_at);
    in_at->rank = x->rank;
    if (row_of(n)->rows == DC_ROWS_WINDOW) {
        int64_t f = n->attr.pool.factor;
        dc_shape ws = { .rank = 2, .dim = { f, f } };
        coords w;
        if (x->rank != 4 || inner_numel(c->k) != f * f || !split_flat(c->k, &flat, &ws, &w, &c->want))
            return fail(c, "avg_pool: its window does not match the kernel's inner space") == 0;
        *key = *at;
        *in_at = *at;
        for (int d = 1; d <= 2; d++) {
            memset(&in_at->c[d], 0, sizeof in_at->c[d]);
            map_axpy(&in_at->c[d], f, &at->c[d]);
            map_axpy(&in_at->c[d], 1, &w.c[d - 1]);
        }
    } else if (row_of(n)->rows == DC_ROWS_GROUPS) {
        int r = x->rank;
        int64_t cg = x->dim[r - 1] / n->attr.group_norm.groups;
        dc_shape gs = { .rank = 2, .dim = { n->attr.group_norm.groups, cg } }, bs = group_norm_block(n, x);
        coords ch, blk;
        if (r < 2 || !split_flat(c->k, &at->c[r - 1], &gs, &ch, &c->want) || dc_numel(&bs) != inner_numel(c->k) ||
            !split_flat(c->k, &flat, &bs, &blk, &c->want))
            return fail(c, "group_norm: its groups do not match the kernel's rows") == 0;
        key->rank = 2;
        key->c[0] = in_at->c[0] = at->c[0];
        key->c[1] = ch.c[0];
        for (int d = 1; d < r - 1; d++) in_at->c[d] = blk.c[d - 1];
        in_at->c[r - 1] = blk.c[r - 2];
        map_axpy(&in_at->c[r - 1], cg, &ch.c[0]);
    } else {
        bool red[DC_MAX_RANK], keep;
        reduced_dims(n, x, red, &keep);
        dc_shape rs = { 0 };
        for (int d = 0; d < x->rank; d++)
            if (red[d]) rs.dim[rs.rank++] = x->dim[d];
        coords rc;
        if (dc_numel(&rs) != inner_numel(c->k) || !split_flat(c->k, &flat, &rs, &rc, &c->want))
            return fail(c, "%s: its folded dims do not match the kernel's inner space", dc_op_name(n->op)) == 0;
        for (int d = 0, j = 0, r = 0; d < x->rank; d++) {
            if (red[d]) {
                in_at->c[d] = rc.c[r++];
                j += keep;
            } else {
                in_at->c[d] = key->c[key->rank++] = at->c[j++];
            }
        }
    }
    if (!coords_inner_free(key))
        return fail(c, "%s: its rows vary with the inner index", dc_op_name(n->op)) == 0;
    normalize(c->k, in_at, x);
    return true;
}

/* ---- values -------------------------------------------------------------------------------- */

static int value(ctx *c, int v, const coords *at);

/* Operand j of v, read by v at at (broadcast). */
static int operand(ctx *c, int v, int j, const coords *at) {
    const dc_node *n = node_at(c, v);
    coords x = broadcast(at, &n->type.shape, shape_of(c, n->in[j]));
    return value(c, n->in[j], &x);
}

static int binary(ctx *c, dc_op op, int a, int b) { return dc_kir_binary(c->k, op, a, b); }

/* max(x) over the row key of v */
static int row_max(ctx *c, int v, const coords *key, const coords *in_at) {
    int m = memo_find(c, v, T_MAX, 0, key);
    return m >= 0 ? m : fold(c, v, T_MAX, 0, key, DC_KIR_MAX, value(c, node_at(c, v)->in[0], in_at));
}

/* exp(x - m) at at, m the row max */
static int exp_shifted(ctx *c, int v, const coords *at, int m) {
    int e = memo_find(c, v, T_EXP, 0, at);
    if (e >= 0) return e;
    int d = binary(c, DC_OP_SUB, value(c, node_at(c, v)->in[0], at), m);
    return memo_put(c, v, T_EXP, 0, at, dc_kir_unary(c->k, DC_OP_EXP, d));
}

/* sum(exp(x - m)) over the row key of v */
static int row_sum_exp(ctx *c, int v, const coords *key, const coords *in_at, int m) {
    int s = memo_find(c, v, T_SUM, 0, key);
    return s >= 0 ? s : fold(c, v, T_SUM, 0, key, DC_KIR_SUM, exp_shifted(c, v, in_at, m));
}

static int row_count(ctx *c) { return dc_kir_const_f32(c->k, (float)inner_numel(c->k)); }

/* Which elements of its input a row of reduction-like v folds, as a number (with the row key,
 * it names the row): the group count for group norms, else the mask of the folded dims. */
static int64_t rows_id(const ctx *c, int v) {
    const dc_node *n = node_at(c, v);
    if (row_of(n)->rows == DC_ROWS_GROUPS) return -n->attr.group_norm.groups;
    if (row_of(n)->rows == DC_ROWS_WINDOW) return -((int64_t)1 << 32) - n->attr.pool.factor;
    bool red[DC_MAX_RANK], keep;
    reduced_dims(n, shape_of(c, n->in[0]), red, &keep);
    int64_t mask = 0;
    for (int d = 0; d < DC_MAX_RANK; d++) mask |= (int64_t)red[d] << d;
    return mask;
}

/* the mean of v's input x over the row key of v (shared by every reduction of x over the
 * same rows) */
static int row_mean(ctx *c, int v, const coords *key, const coords *in_at) {
    int x = node_at(c, v)->in[0];
    int64_t id = rows_id(c, v);
    int m = memo_find(c, x, T_MEAN, id, key);
    if (m >= 0) return m;
    int s = fold(c, x, T_XSUM, id, key, DC_KIR_SUM, value(c, x, in_at));
    return memo_put(c, x, T_MEAN, id, key, binary(c, DC_OP_DIV, s, row_count(c)));
}

/* rsqrt(mean((x - mean)^2) + eps) of v's input x over the row key of v (shared as the mean,
 * for one eps) */
static int row_rstd(ctx *c, int v, const coords *key, const coords *in_at, int mean, float eps) {
    int x = node_at(c, v)->in[0];
    uint32_t bits;
    memcpy(&bits, &eps, sizeof bits);
    int64_t id = rows_id(c, v) * ((int64_t)1 << 32) + bits;
    int r = memo_find(c, x, T_RSTD, id, key);
    if (r >= 0) return r;
    int d = binary(c, DC_OP_SUB, value(c, x, in_at), mean);
    int s = fold(c, x, T_VAR, id, key, DC_KIR_SUM, dc_kir_unary(c->k, DC_OP_SQUARE, d));
    int var = binary(c, DC_OP_DIV, s, row_count(c));
    int t = binary(c, DC_OP_ADD, var, dc_kir_const_f32(c->k, eps));
    return memo_put(c, x, T_RSTD, id, key, dc_kir_unary(c->k, DC_OP_RSQRT, t));
}

/* The channel coordinate of a norm's element at at (its last axis), for gamma and beta. */
static coords channel_of(const coords *at) {
    coords ch = { .rank = 1 };
    ch.c[0] = at->c[at->rank - 1];
    return ch;
}

/* dy * gamma of norm backward node v at at */
static int scaled_dy(ctx *c, int v, const coords *at) {
    const dc_node *n = node_at(c, v);
    coords ch = channel_of(at);
    return binary(c, DC_OP_MUL, value(c, n->in[2], at), value(c, n->in[1], &ch));
}

static int i32c(ctx *c, int64_t v) { return dc_kir_const_i32(c->k, (int32_t)v); }

/* i32 1 where lo <= e < hi, else 0 */
static int in_range(ctx *c, int e, int64_t lo, int64_t hi) {
    return binary(c, DC_OP_MUL, binary(c, DC_OP_GE, e, i32c(c, lo)), binary(c, DC_OP_LT, e, i32c(c, hi)));
}

/* Registers the check that every element of index value node is in [0, bound) before the
 * kernel runs (what: the error's "op: index" words), for reader v. */
static bool add_check(ctx *c, int node, int64_t bound, int v, const char *what) {
    int j = 0;
    while (j < c->out->n_checks && !(c->out->checks[j].node == node && c->out->checks[j].bound == bound)) j++;
    if (j == DC_KIR_MAX_BUFS)
        return fail(c, "%s: more than %d index checks", dc_op_name(node_at(c, v)->op), DC_KIR_MAX_BUFS) == 0;
    if (j == c->out->n_checks) c->out->checks[c->out->n_checks++] = (dc_index_check){ node, bound, v, what };
    return true;
}

/* cross_entropy_rows v over the row key (x's coordinates in_at): logsumexp of the row minus
 * its element at the row's label, a checked load of x (both operands from buffers; the step
 * checks the labels before the kernel runs). */
static int xent(ctx *c, int v, const coords *key, const coords *in_at) {
    const dc_node *n = node_at(c, v);
    int x = n->in[0], r = shape_of(c, x)->rank;
    int64_t K = shape_of(c, x)->dim[r - 1];
    if (is_member(c, x) || is_member(c, n->in[1]))
        return fail(c, "%s: an operand computed in the kernel", dc_op_name(n->op));
    int m = row_max(c, v, key, in_at), s = row_sum_exp(c, v, key, in_at, m);
    int lse = binary(c, DC_OP_ADD, m, dc_kir_unary(c->k, DC_OP_LOG, s));
    int label = value(c, n->in[1], key), b = buffer_of(c, x, false);
    coords row = *in_at;
    memset(&row.c[r - 1], 0, sizeof row.c[r - 1]);
    if (b < 0 || !add_check(c, n->in[1], K, v, "cross_entropy: label")) return -1;
    int picked = dc_kir_load_checked(c->k, b, flatten(&row, shape_of(c, x)), label, 1, in_range(c, label, 0, K));
    return binary(c, DC_OP_SUB, lse, picked);
}

/* A reduction-like member v at at: its row description's value. */
static int reduction(ctx *c, int v, const coords *at) {
    const dc_node *n = node_at(c, v);
    dc_row_value what = row_of(n)->value;
    if (node_at(c, n->in[0])->type.dtype != DC_F32 && what != DC_ROW_SUM && what != DC_ROW_MAX)
        return fail(c, "%s of i32 has no kernel", dc_op_name(n->op));
    coords key, in_at;
    if (!row_view(c, v, at, &key, &in_at)) return -1;
    int x = n->in[0];
    switch (what) {
    case DC_ROW_SUM: {
        int s = memo_find(c, v, T_SUM, 0, &key);
        return s >= 0 ? s : fold(c, v, T_SUM, 0, &key, DC_KIR_SUM, value(c, x, &in_at));
    }
    case DC_ROW_MEAN:
        return row_mean(c, v, &key, &in_at);
    case DC_ROW_MAX:
        return row_max(c, v, &key, &in_at);
    case DC_ROW_LOGSUMEXP: {
        int m = row_max(c, v, &key, &in_at), s = row_sum_exp(c, v, &key, &in_at, m);
        int finite = binary(c, DC_OP_LT, dc_kir_unary(c->k, DC_OP_ABS, m), dc_kir_const_f32(c->k, INFINITY));
        return dc_kir_where(c->k, finite, binary(c, DC_OP_ADD, m, dc_kir_unary(c->k, DC_OP_LOG, s)), m);
    }
    case DC_ROW_SOFTMAX: {
        int m = row_max(c, v, &key, &in_at), s = row_sum_exp(c, v, &key, &in_at, m);
        int inv = binary(c, DC_OP_DIV, dc_kir_const_f32(c->k, 1.0f), s);
        return binary(c, DC_OP_MUL, exp_shifted(c, v, at, m), inv);
    }
    case DC_ROW_LOG_SOFTMAX: {
        int m = row_max(c, v, &key, &in_at), s = row_sum_exp(c, v, &key, &in_at, m);
        int d = binary(c, DC_OP_SUB, value(c, x, at), m);
        return binary(c, DC_OP_SUB, d, dc_kir_unary(c->k, DC_OP_LOG, s));
    }
    case DC_ROW_SOFTMAX_BWD: {
        int s = memo_find(c, v, T_SUM, 0, &key);
        if (s < 0)
            s = fold(c, v, T_SUM, 0, &key, DC_KIR_SUM, binary(c, DC_OP_MUL, operand(c, v, 1, &in_at), value(c, x, &in_at)));
        int d = binary(c, DC_OP_SUB, operand(c, v, 1, at), s);
        return binary(c, DC_OP_MUL, value(c, x, at), d);
    }
    case DC_ROW_NORM: {
        float eps = row_of(n)->rows == DC_ROWS_GROUPS ? n->attr.group_norm.eps : n->attr.eps.eps;
        int mean = row_mean(c, v, &key, &in_at), rstd = row_rstd(c, v, &key, &in_at, mean, eps);
        coords ch = channel_of(at);
        int scale = binary(c, DC_OP_MUL, rstd, value(c, n->in[1], &ch));
        int y = binary(c, DC_OP_MUL, binary(c, DC_OP_SUB, value(c, x, at), mean), scale);
        return binary(c, DC_OP_ADD, y, value(c, n->in[2], &ch));
    }
    case DC_ROW_NORM_BWD: { /* (x, gamma, dy) */
        float eps = row_of(n)->rows == DC_ROWS_GROUPS ? n->attr.group_norm.eps : n->attr.eps.eps;
        int mean = row_mean(c, v, &key, &in_at), rstd = row_rstd(c, v, &key, &in_at, mean, eps);
        int count = row_count(c);
        /* sum(g xhat) = rstd sum(g (x - mean)): the sum needs the mean only, so it shares the
         * variance's pass over the row (one pass fewer than summing g xhat) */
        int sg = memo_find(c, v, T_GSUM, 0, &key), sgx = memo_find(c, v, T_GXSUM, 0, &key);
        if (sg < 0 || sgx < 0) {
            int g = scaled_dy(c, v, &in_at);
            sg = fold(c, v, T_GSUM, 0, &key, DC_KIR_SUM, g);
            sgx = fold(c, v, T_GXSUM, 0, &key, DC_KIR_SUM,
                       binary(c, DC_OP_MUL, g, binary(c, DC_OP_SUB, value(c, x, &in_at), mean)));
        }
        int xh = binary(c, DC_OP_MUL, binary(c, DC_OP_SUB, value(c, x, at), mean), rstd);
        int d = binary(c, DC_OP_SUB, scaled_dy(c, v, at), binary(c, DC_OP_DIV, sg, count));
        d = binary(c, DC_OP_SUB, d, binary(c, DC_OP_MUL, xh, binary(c, DC_OP_DIV, binary(c, DC_OP_MUL, sgx, rstd), count)));
        return binary(c, DC_OP_MUL, rstd, d);
    }
    case DC_ROW_XENT:
        return xent(c, v, &key, &in_at);
    case DC_ROW_NONE:
        break;
    }
    return fail(c, "%s has no row description", dc_op_name(n->op));
}

/* ---- guarded reads: unslice, concat ---------------------------------------------------- */

/* Operand j of v at coordinates x plus the flat offset index (an i32 expression, -1: none)
 * where guard holds, else 0: a checked load from its buffer, or, for a fill or an iota, its
 * value (computed anywhere) where the guard holds. */
static int guarded_operand(ctx *c, int v, int j, const coords *x, int index, int guard) {
    int u = node_at(c, v)->in[j];
    dc_lower lw = dc_op_get(node_at(c, u)->op)->lower;
    if (is_member(c, u) || lw == DC_LOWER_FILL || lw == DC_LOWER_IOTA) {
        if (index >= 0 || (lw != DC_LOWER_FILL && lw != DC_LOWER_IOTA))
            return fail(c, "%s: an operand computed in the kernel", dc_op_name(node_at(c, v)->op));
        int zero = node_at(c, u)->type.dtype == DC_F32 ? dc_kir_const_f32(c->k, 0.0f) : i32c(c, 0);
        return dc_kir_where(c->k, guard, value(c, u, x), zero);
    }
    int b = buffer_of(c, u, false);
    return b < 0 ? -1 : dc_kir_load_checked(c->k, b, flatten(x, shape_of(c, u)), index, 1, guard);
}

/* unslice v at at: dy at the slice coordinates of at where at is on the slice, else 0 (axes
 * of step 1 shift dy's map; the others add their quotient to an index, and their remainder must
 * be 0). */
static int unslice(ctx *c, int v, const coords *at) {
    const dc_node *n = node_at(c, v);
    const dc_slice_attr *sl = &n->attr.slice;
    const dc_shape *dy = shape_of(c, n->in[0]);
    int64_t st[DC_MAX_RANK];
    strides(dy, st);
    coords x = { .rank = at->rank };
    int guard = i32c(c, 1), index = -1;
    for (int d = 0; d < at->rank; d++) {
        int64_t start = sl->start.v[d], stop = sl->stop.v[d], step = sl->step.v[d];
        x.c[d] = at->c[d];
        if (start == 0 && step == 1 && stop == n->type.shape.dim[d]) continue;
        int ci = dc_kir_index(c->k, at->c[d]);
        guard = binary(c, DC_OP_MUL, guard, in_range(c, ci, start, stop));
        x.c[d].offset -= start;
        if (step == 1) continue;
        memset(&x.c[d], 0, sizeof x.c[d]);
        int rel = binary(c, DC_OP_SUB, ci, i32c(c, start)), q = binary(c, DC_OP_DIV, rel, i32c(c, step));
        int rem = binary(c, DC_OP_SUB, rel, binary(c, DC_OP_MUL, q, i32c(c, step)));
        guard = binary(c, DC_OP_MUL, guard, binary(c, DC_OP_EQ, rem, i32c(c, 0)));
        int term = binary(c, DC_OP_MUL, q, i32c(c, st[d]));
        index = index < 0 ? term : binary(c, DC_OP_ADD, index, term);
    }
    return guarded_operand(c, v, 0, &x, index, guard);
}

/* concat v at at: the operand whose part of the axis holds at, read shifted to its own
 * coordinates (each operand guarded by its part, chosen by the same guards). */
static int concat(ctx *c, int v, const coords *at) {
    const dc_node *n = node_at(c, v);
    int d = (int)n->attr.axis.axis, ci = dc_kir_index(c->k, at->c[d]), r = -1;
    int64_t end = n->type.shape.dim[d];
    for (int j = n->n_in - 1; j >= 0 && !failed(c); j--) {
        int64_t len = shape_of(c, n->in[j])->dim[d];
        coords x = *at;
        x.c[d].offset -= end - len;
        int guard = in_range(c, ci, end - len, end);
        int e = guarded_operand(c, v, j, &x, -1, guard);
        r = r < 0 ? e : dc_kir_where(c->k, guard, e, r);
        end -= len;
    }
    return r;
}

/* gather v (table [V, rest...], idx [m...]) at at: the table at row idx[at's first m
 * coordinates], rest from the others; the step checks every index against [0, V) before the
 * kernel runs, so both operands come from buffers. */
static int gather(ctx *c, int v, const coords *at) {
    const dc_node *n = node_at(c, v);
    const dc_shape *ts = shape_of(c, n->in[0]), *is = shape_of(c, n->in[1]);
    if (is_member(c, n->in[0]) || is_member(c, n->in[1])) return fail(c, "gather: an operand computed in the kernel");
    if (dc_numel(ts) > INT32_MAX) return fail(c, "gather: a table of more than 2^31 elements");
    coords ic = { .rank = is->rank }, tc = { .rank = ts->rank };
    for (int d = 0; d < is->rank; d++) ic.c[d] = at->c[d];
    for (int d = 1; d < ts->rank; d++) tc.c[d] = at->c[is->rank + d - 1];
    int idx = value(c, n->in[1], &ic), b = buffer_of(c, n->in[0], false);
    if (!add_check(c, n->in[1], ts->dim[0], v, "gather: index")) return -1;
    int ok = in_range(c, idx, 0, ts->dim[0]);
    return b < 0 ? -1 : dc_kir_load_checked(c->k, b, flatten(&tc, ts), idx, dc_numel(ts) / ts->dim[0], ok);
}

/* Member v at at: its op on its operands' values, as its ops.def lower column says. */
static int compute(ctx *c, int v, const coords *at) {
    const dc_node *n = node_at(c, v);
    dc_kir *k = c->k;
    switch (dc_op_get(n->op)->lower) {
    case DC_LOWER_ROW:
        return reduction(c, v, at);
    case DC_LOWER_FILL:
        return n->type.dtype == DC_F32 ? dc_kir_const_f32(k, n->attr.scalar.value)
                                       : dc_kir_const_i32(k, dc_f32_to_i32(n->attr.scalar.value));
    case DC_LOWER_IOTA: {
        int i = dc_kir_index(k, at->c[n->attr.axis.axis]);
        return n->type.dtype == DC_F32 ? dc_kir_cast(k, i, DC_F32) : i;
    }
    case DC_LOWER_RESHAPE: {
        coords x;
        dc_kir_map f = flatten(at, &n->type.shape);
        if (!split_flat(k, &f, shape_of(c, n->in[0]), &x, &c->want))
            return fail(c, "reshape: the kernel's index does not split into its operand's dims");
        return value(c, n->in[0], &x);
    }
    case DC_LOWER_TRANSPOSE: {
        coords x = { .rank = at->rank };
        for (int j = 0; j < at->rank; j++) x.c[n->attr.perm.perm.v[j]] = at->c[j];
        return value(c, n->in[0], &x);
    }
    case DC_LOWER_BROADCAST:
        return operand(c, v, 0, at);
    case DC_LOWER_UPSAMPLE: {
        coords x = *at;
        for (int d = 1; d <= 2; d++)
            if (!divide_map(c, &x.c[d], n->attr.pool.factor))
                return fail(c, "upsample: the kernel's positions do not divide by its factor");
        return value(c, n->in[0], &x);
    }
    case DC_LOWER_ONE_HOT: {
        coords x = *at;
        x.rank--;
        memset(&x.c[x.rank], 0, sizeof x.c[x.rank]);
        int hit = binary(c, DC_OP_EQ, dc_kir_index(k, at->c[at->rank - 1]), value(c, n->in[0], &x));
        return n->type.dtype == DC_F32 ? dc_kir_cast(k, hit, DC_F32) : hit;
    }
    case DC_LOWER_CAST:
        return dc_kir_cast(k, operand(c, v, 0, at), n->attr.cast.to);
    case DC_LOWER_SLICE: {
        coords x = { .rank = at->rank };
        for (int d = 0; d < at->rank; d++) {
            x.c[d].offset = n->attr.slice.start.v[d];
            map_axpy(&x.c[d], n->attr.slice.step.v[d], &at->c[d]);
        }
        return value(c, n->in[0], &x);
    }
    case DC_LOWER_UNSLICE:
        if (dc_numel(&n->type.shape) > INT32_MAX) return fail(c, "unslice: more than 2^31 elements");
        return unslice(c, v, at);
    case DC_LOWER_CONCAT:
        if (dc_numel(&n->type.shape) > INT32_MAX) return fail(c, "concat: more than 2^31 elements");
        return concat(c, v, at);
    case DC_LOWER_GATHER:
        return gather(c, v, at);
    case DC_LOWER_MAP: {
        int args[3];
        for (int j = 0; j < n->n_in; j++) args[j] = operand(c, v, j, at);
        if (n->op == DC_OP_WHERE) return dc_kir_where(k, args[0], args[1], args[2]);
        return dc_kir_op(k, n->op, args, n->attr.scalar.value);
    }
    case DC_LOWER_NONE:
        break;
    }
    return fail(c, "%s has no kernel IR form", dc_op_name(n->op));
}

static int value(ctx *c, int v, const coords *at0) {
    if (failed(c)) return -1;
    coords at = *at0;
    normalize(c->k, &at, shape_of(c, v));
    int e = memo_find(c, v, T_VALUE, 0, &at);
    if (e >= 0) return e;
    dc_lower lw = dc_op_get(node_at(c, v)->op)->lower;
    if (is_member(c, v) || lw == DC_LOWER_FILL || lw == DC_LOWER_IOTA) e = compute(c, v, &at);
    else {
        int b = buffer_of(c, v, false);
        e = b < 0 ? -1 : dc_kir_load(c->k, b, flatten(&at, shape_of(c, v)));
    }
    return memo_put(c, v, T_VALUE, 0, &at, e);
}

/* ---- placement ------------------------------------------------------------------------------ */

/* Whether the placement of v (at) follows from that of its input j (from), along the edge
 * (forward) or the placement of v's input j from v's, against it (!forward). */
static bool place_along(ctx *c, int v, int j, const coords *from, coords *at, bool forward) {
    const dc_node *n = node_at(c, v);
    const dc_shape *in = shape_of(c, n->in[j]);
    *at = *from;
    switch (dc_op_get(n->op)->lower) {
    case DC_LOWER_TRANSPOSE:
        for (int d = 0; d < n->type.shape.rank; d++) {
            int64_t p = n->attr.perm.perm.v[d];
            if (forward) at->c[d] = from->c[p];
            else at->c[p] = from->c[d];
        }
        return true;
    case DC_LOWER_RESHAPE: {
        dc_kir_map f = flatten(from, forward ? in : &n->type.shape);
        return split_flat(c->k, &f, forward ? &n->type.shape : in, at, &c->want);
    }
    case DC_LOWER_ROW: {
        const dc_row_desc *rd = row_of(n);
        if (rd->rows == DC_ROWS_WINDOW || (rd->rows == DC_ROWS_LABELS && j > 0)) return false;
        if (rd->rows != DC_ROWS_AXES && rd->rows != DC_ROWS_LABELS) return dc_row_data(rd, j); /* the result has x's shape */
        if (!forward) return false;
        bool red[DC_MAX_RANK], keep;
        reduced_dims(n, in, red, &keep);
        memset(at, 0, sizeof *at);
        for (int d = 0; d < in->rank; d++)
            if (!red[d]) at->c[at->rank++] = from->c[d];
            else if (keep) at->rank++;
        return true;
    }
    case DC_LOWER_MAP: case DC_LOWER_CAST: case DC_LOWER_BROADCAST:
        return dc_shape_eq(in, &n->type.shape);
    default:
        return false;
    }
}

static void set_place(ctx *c, int id, const coords *at) {
    c->place[id] = *at;
    normalize(c->k, &c->place[id], shape_of(c, id));
    c->placed[id] = true;
}

/* Propagates placements along the edges into and inside the group (the values it reads
 * included: x placed by a reduction of square(x) places mul(x, ...)) to a fixpoint. */
static void propagate(ctx *c) {
    for (bool changed = true; changed;) {
        changed = false;
        for (int v = c->first; v <= c->last; v++) {
            const dc_node *n = node_at(c, v);
            coords at;
            for (int j = 0; j < n->n_in; j++) {
                int u = n->in[j];
                if (c->placed[u] && !c->placed[v] && place_along(c, v, j, &c->place[u], &at, true)) set_place(c, v, &at);
                else if (c->placed[v] && !c->placed[u] && place_along(c, v, j, &c->place[v], &at, false)) set_place(c, u, &at);
                else continue;
                changed = true;
            }
        }
    }
}

/* Splits axis sp.axis of one side of the index space (rank, dims) into (e / f, f), in the
 * dims and in the maps of x; false when the side has no room for another axis. */
static bool apply_split(axis_split sp, int *rank, int64_t *dims, coords *x) {
    if (*rank == DC_MAX_RANK || sp.axis >= *rank || dims[sp.axis] % sp.f) return false;
    memmove(dims + sp.axis + 1, dims + sp.axis, (size_t)(*rank - sp.axis) * sizeof *dims);
    dims[sp.axis] /= sp.f;
    dims[sp.axis + 1] = sp.f;
    (*rank)++;
    for (int d = 0; d < x->rank; d++) {
        int64_t *st = sp.side ? x->c[d].inner : x->c[d].outer;
        memmove(st + sp.axis + 1, st + sp.axis, (size_t)(DC_MAX_RANK - sp.axis - 1) * sizeof *st);
        st[sp.axis] *= sp.f;
    }
    return true;
}

/* The index space and the first placements from anchor a: a reduction-like member (its input
 * over outer x inner) or any member (its shape as the outer space), with c->splits applied. */
static bool anchor(ctx *c, int a) {
    const dc_node *n = node_at(c, a);
    const dc_shape *in = is_reduction(n->op) ? shape_of(c, n->in[0]) : &n->type.shape;
    coords x;
    memset(&x, 0, sizeof x);
    x.rank = in->rank;
    int64_t outer[DC_MAX_RANK], inner[DC_MAX_RANK];
    int no = 0, ni = 0;
    if (is_reduction(n->op) && row_of(n)->rows == DC_ROWS_WINDOW) {
        /* outer: the output's dims; inner: the window; x at (n, f h + i, f w + j, c) */
        int64_t f = n->attr.pool.factor;
        for (; no < n->type.shape.rank; no++) {
            outer[no] = n->type.shape.dim[no];
            x.c[no].outer[no] = no == 1 || no == 2 ? f : 1;
        }
        inner[ni++] = f;
        inner[ni++] = f;
        x.c[1].inner[0] = x.c[2].inner[1] = 1;
    } else if (is_reduction(n->op) && row_of(n)->rows == DC_ROWS_GROUPS) {
        dc_shape b = group_norm_block(n, in);
        outer[no++] = in->dim[0];
        outer[no++] = n->attr.group_norm.groups;
        for (; ni < b.rank; ni++) inner[ni] = b.dim[ni];
        for (int d = 1; d < in->rank; d++) x.c[d].inner[d - 1] = 1;
        x.c[0].outer[0] = 1;
        x.c[in->rank - 1].outer[1] = b.dim[b.rank - 1];
    } else {
        bool red[DC_MAX_RANK] = { false }, keep;
        if (is_reduction(n->op)) reduced_dims(n, in, red, &keep);
        for (int d = 0; d < in->rank; d++) {
            if (red[d]) {
                inner[ni] = in->dim[d];
                x.c[d].inner[ni++] = 1;
            } else {
                outer[no] = in->dim[d];
                x.c[d].outer[no++] = 1;
            }
        }
    }
    bool ok = true;
    for (int k = 0; k < c->n_splits && ok; k++)
        ok = c->splits[k].side ? apply_split(c->splits[k], &ni, inner, &x) : apply_split(c->splits[k], &no, outer, &x);
    c->k = dc_kir_new(no, outer, ni, inner);
    if (!ok) return fail(c, "its reshapes need more than %d loop axes", DC_MAX_RANK) == 0;
    if (!is_reduction(n->op)) {
        set_place(c, a, &x);
        return true;
    }
    for (int j = 0; j < n->n_in; j++)
        if (dc_row_data(row_of(n), j)) set_place(c, n->in[j], &x);
    coords y = { .rank = n->type.shape.rank };
    if (row_of(n)->rows == DC_ROWS_WINDOW) {
        for (int d = 0; d < y.rank; d++) y.c[d].outer[d] = 1;
        set_place(c, a, &y);
    } else if (place_along(c, a, 0, &x, &y, true)) {
        set_place(c, a, &y);
    }
    return true;
}

/* How a placement stores: flat map f over the index space onto numel elements, one to one
 * (ELEM), one to one from the outer space with no inner stride (ROW), or one to one from the
 * outer space and some inner axes, the last of extent > 1 among them (LANE: a reducing store
 * folds the others). */
static place_kind classify(const dc_kir *k, const dc_kir_map *f, int64_t numel) {
    int64_t coef[2 * DC_MAX_RANK], ext[2 * DC_MAX_RANK];
    int n = 0, inner_used = 0, inner_axes = 0;
    bool last_used = false;
    for (int a = 0; a < k->outer_rank; a++) {
        if (k->outer[a] == 1) continue;
        if (f->outer[a] <= 0) return PLACE_NONE;
        coef[n] = f->outer[a];
        ext[n++] = k->outer[a];
    }
    for (int a = 0; a < k->inner_rank; a++) {
        if (k->inner[a] == 1) continue;
        inner_axes++;
        last_used = f->inner[a] != 0;
        if (!f->inner[a]) continue;
        if (f->inner[a] < 0) return PLACE_NONE;
        inner_used++;
        coef[n] = f->inner[a];
        ext[n++] = k->inner[a];
    }
    if (inner_used && inner_used != inner_axes && !last_used) return PLACE_NONE;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && coef[j] < coef[j - 1]; j--) {
            int64_t t = coef[j];
            coef[j] = coef[j - 1], coef[j - 1] = t;
            t = ext[j];
            ext[j] = ext[j - 1], ext[j - 1] = t;
        }
    int64_t span = 1;
    for (int i = 0; i < n; i++) {
        if (coef[i] != span) return PLACE_NONE;
        span *= ext[i];
    }
    if (f->offset != 0 || span != numel) return PLACE_NONE;
    return inner_axes && !inner_used ? PLACE_ROW : inner_used < inner_axes ? PLACE_LANE : PLACE_ELEM;
}

/* Stores member v, a sum or max of x kept along some inner axes and the outer ones: a reducing
 * store of x at its own placement, which must cover x once, into v at x's placement carried
 * along the edge (so every element of x goes once into the element of v it reduces to). */
static void store_lane(ctx *c, int v, int b) {
    const dc_node *n = node_at(c, v);
    dc_row_value what = is_reduction(n->op) ? row_of(n)->value : DC_ROW_NONE;
    int x = n->in[0];
    coords at;
    dc_kir_map f;
    bool ok = (what == DC_ROW_SUM || what == DC_ROW_MAX) && c->placed[x];
    if (ok) {
        f = flatten(&c->place[x], shape_of(c, x));
        ok = classify(c->k, &f, dc_numel(shape_of(c, x))) == PLACE_ELEM && place_along(c, v, 0, &c->place[x], &at, true);
    }
    if (ok) {
        normalize(c->k, &at, shape_of(c, v));
        f = flatten(&at, shape_of(c, v));
        ok = classify(c->k, &f, dc_numel(shape_of(c, v))) == PLACE_LANE;
    }
    if (!ok) {
        char label[64];
        fail(c, "%s (%s) is needed after the group but its loops cover it only per lane",
             dc_node_label(c->g, v, label, sizeof label), dc_op_name(n->op));
        return;
    }
    int e = value(c, x, &c->place[x]);
    open_phase(c, e);
    dc_kir_store_reduce_add(c->k, b, f, e, what == DC_ROW_SUM ? DC_KIR_SUM : DC_KIR_MAX);
}

/* ---- the kernel ---------------------------------------------------------------------------- */

/* Whether member v's value is needed after the group. */
static bool needed_after(const dc_graph *g, int last, int v) {
    for (int i = last + 1; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] == v) return true;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == v) return true;
    for (int i = 0; i < g->n_updates; i++)
        if (g->updates[i].value == v) return true;
    return false;
}

/* A placement for v that no edge gave it: that of a placed value of the same shape (any
 * bijection stores correctly: the value is evaluated wherever it is placed), or, for a single
 * element in a one-row kernel, the origin. */
static void borrow_place(ctx *c, int v) {
    for (int u = 0; u < c->g->n_nodes && !c->placed[v]; u++)
        if (c->placed[u] && dc_shape_eq(shape_of(c, u), shape_of(c, v))) set_place(c, v, &c->place[u]);
    if (!c->placed[v] && dc_numel(shape_of(c, v)) == 1 && dc_kir_range(c->k) == 1)
        set_place(c, v, &(coords){ .rank = shape_of(c, v)->rank });
}

/* Stores every materialised member at its placement: full phases as soon as their results
 * are ready, per-row stores in a last per-row phase. */
static void emit_stores(ctx *c) {
    int row_buf[DC_KIR_MAX_BUFS], row_expr[DC_KIR_MAX_BUFS], n_row = 0;
    dc_kir_map row_map[DC_KIR_MAX_BUFS];
    for (int v = c->first; v <= c->last && !failed(c); v++)
        if (c->materialised[v - c->first]) buffer_of(c, v, true);
    for (int v = c->first; v <= c->last && !failed(c); v++) {
        int m = v - c->first;
        if (!c->materialised[m]) continue;
        char label[64];
        borrow_place(c, v);
        if (!c->placed[v]) {
            fail(c, "%s (%s) is needed after the group but has no place in its loops",
                 dc_node_label(c->g, v, label, sizeof label), dc_op_name(node_at(c, v)->op));
            return;
        }
        dc_kir_map f = flatten(&c->place[v], shape_of(c, v));
        place_kind kind = classify(c->k, &f, dc_numel(shape_of(c, v)));
        if (kind == PLACE_NONE) {
            fail(c, "%s (%s) is needed after the group but its loops do not cover it once",
                 dc_node_label(c->g, v, label, sizeof label), dc_op_name(node_at(c, v)->op));
            return;
        }
        int b = buffer_of(c, v, true);
        if (kind == PLACE_LANE) {
            store_lane(c, v, b);
            continue;
        }
        int e = value(c, v, &c->place[v]);
        if (kind == PLACE_ROW) {
            row_buf[n_row] = b, row_expr[n_row] = e, row_map[n_row++] = f;
            continue;
        }
        open_phase(c, e);
        dc_kir_store_add(c->k, b, f, e);
    }
    if (n_row && !failed(c)) dc_kir_phase_begin(c->k, true);
    for (int r = 0; r < n_row && !failed(c); r++) dc_kir_store_add(c->k, row_buf[r], row_map[r], row_expr[r]);
}

/* The latest phase that evaluates each expression: [n_exprs], malloc'd. */
static int *expr_phases(const dc_kir *k) {
    int *p = malloc((size_t)(k->n_exprs ? k->n_exprs : 1) * sizeof *p);
    if (!p) abort(); /* out of memory */
    for (int i = 0; i < k->n_exprs; i++) p[i] = -1;
    for (int r = 0; r < k->n_reduces; r++)
        if (p[k->reduces[r].expr] < k->reduces[r].phase) p[k->reduces[r].expr] = k->reduces[r].phase;
    for (int s = 0; s < k->n_stores; s++)
        if (p[k->stores[s].expr] < k->stores[s].phase) p[k->stores[s].expr] = k->stores[s].phase;
    for (int i = k->n_exprs - 1; i >= 0; i--)
        for (int j = 0; j < 3; j++) {
            int a = k->exprs[i].arg[j];
            if (a >= 0 && p[a] < p[i]) p[a] = p[i];
        }
    return p;
}

static bool slots_overlap(const dc_graph *g, int a, int b) {
    int64_t na = dc_numel(&g->nodes[a].type.shape) * (int64_t)dc_dtype_size(g->nodes[a].type.dtype);
    int64_t nb = dc_numel(&g->nodes[b].type.shape) * (int64_t)dc_dtype_size(g->nodes[b].type.dtype);
    int64_t oa = g->plan_offset[a], ob = g->plan_offset[b];
    return oa < ob + nb && ob < oa + na;
}

/* A store over an input (the memory plan's in-place reuse) is safe when every load of that
 * input reads the store's own positions, in the store's phase or before. */
static void check_in_place(ctx *c) {
    const dc_kir *k = c->k;
    if (!c->g->plan_offset || failed(c)) return;
    int *phase = expr_phases(k);
    for (int s = 0; s < k->n_stores; s++)
        for (int b = 0; b < k->n_bufs; b++) {
            if (k->bufs[b].written || !slots_overlap(c->g, c->out->args[k->stores[s].buf], c->out->args[b])) continue;
            for (int i = 0; i < k->n_exprs; i++) {
                const dc_kir_expr *e = &k->exprs[i];
                if (e->kind != DC_KIR_LOAD || e->buf != b) continue;
                if (phase[i] > k->stores[s].phase || memcmp(&e->map, &k->stores[s].map, sizeof e->map) != 0) {
                    char lo[64], li[64];
                    fail(c, "the memory plan puts %s over input %s, which the kernel reads elsewhere",
                         dc_node_label(c->g, c->out->args[k->stores[s].buf], lo, sizeof lo),
                         dc_node_label(c->g, c->out->args[b], li, sizeof li));
                    break;
                }
            }
        }
    free(phase);
}

/* One try with anchor a; false and c->why on failure. */
static bool lower_with(ctx *c, int a) {
    c->why[0] = 0;
    c->n_memo = 0;
    c->out->n_args = 0;
    c->out->n_checks = 0;
    memset(c->placed, 0, (size_t)c->g->n_nodes * sizeof *c->placed);
    c->want.f = 0;
    if (anchor(c, a)) propagate(c);
    emit_stores(c);
    check_in_place(c);
    if (!failed(c) && c->out->n_args > DC_STEP_MAX_ARGS)
        fail(c, "it needs %d buffers; a runtime step takes at most %d", c->out->n_args, DC_STEP_MAX_ARGS);
    if (!failed(c) && c->k->n_phases == 0) fail(c, "it stores nothing");
    if (!failed(c)) return true;
    if (!c->why[0]) fail(c, "kernel IR: %s", dc_kir_error(c->k));
    dc_kir_free(c->k);
    c->k = NULL;
    return false;
}

/* Whether member v may anchor the group: reduction-like members when there are any, else
 * the members of the largest size. */
static bool anchor_candidate(const ctx *c, int v, bool has_reduction, int64_t largest) {
    if (has_reduction) return is_reduction(node_at(c, v)->op);
    return dc_numel(shape_of(c, v)) == largest;
}

bool dc_lower_group(const dc_graph *g, int first, int last, dc_jit_group *out, char *why, size_t len) {
    int n = last - first + 1;
    ctx c = { .g = g, .first = first, .last = last, .out = out };
    memset(out, 0, sizeof *out);
    c.place = malloc((size_t)g->n_nodes * sizeof *c.place);
    c.placed = malloc((size_t)g->n_nodes * sizeof *c.placed);
    c.materialised = malloc((size_t)n * sizeof *c.materialised);
    if (!c.place || !c.placed || !c.materialised) abort(); /* out of memory */
    bool has_reduction = false, ok = false;
    int64_t largest = 0;
    for (int v = first; v <= last; v++) {
        c.materialised[v - first] = needed_after(g, last, v);
        has_reduction |= is_reduction(g->nodes[v].op);
        if (dc_numel(&g->nodes[v].type.shape) > largest) largest = dc_numel(&g->nodes[v].type.shape);
    }
    char first_why[DC_ERR_LEN] = "";
    for (int v = first; v <= last && !ok; v++) {
        if (!anchor_candidate(&c, v, has_reduction, largest)) continue;
        c.n_splits = 0;
        ok = lower_with(&c, v);
        if (!ok && !first_why[0]) snprintf(first_why, sizeof first_why, "%s", c.why);
        /* a reshape that a finer index space would make affine: split that axis, try again */
        while (!ok && c.want.f && c.n_splits < 2 * DC_MAX_RANK) {
            c.splits[c.n_splits++] = c.want;
            ok = lower_with(&c, v);
        }
    }
    if (ok) out->kir = c.k;
    else snprintf(why, len, "%s", first_why);
    free(c.memo);
    free(c.place);
    free(c.placed);
    free(c.materialised);
    return ok;
}
