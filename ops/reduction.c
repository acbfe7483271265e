/* reduction.c — the reductions: shape rules, VJPs and reference kernels. The kernels: sum,
 * mean, max, logsumexp over a set of axes
 * (one skeleton: a plan maps each output to its base offset and lists the reduced elements
 * as rows; neighbouring outputs are reduced together when they are contiguous), and
 * softmax, log_softmax, argmax and softmax_bwd(y, dy) along one axis (one row per output row).
 * Each output is computed by one thread in a fixed order: f32 sums accumulate in double,
 * rows in row-major order, each row first to last. i32 sums wrap. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops/ops.h"

#define PAR_MIN 32768

/* ---- shape rules ----------------------------------------------------------------------- */

/* sum/mean/max/logsumexp: x [d0..dr-1] -> the axes removed (or kept as 1). */
bool dc_shape_reduce(dc_rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    const dc_reduce_attr *a = &r->n->attr.reduce;
    dc_row_value v = dc_op_get(r->n->op)->row.value;
    if (v != DC_ROW_SUM && v != DC_ROW_MAX && !dc_rule_dtype(r, 0, NULL, DC_F32)) return false;
    int rank = x->shape.rank;
    if (a->axes.n < 0 || a->axes.n > DC_MAX_RANK)
        return dc_rule_fail(r, "%d axes given, at most %d", a->axes.n, DC_MAX_RANK);
    bool reduced[DC_MAX_RANK] = { false };
    for (int i = 0; i < a->axes.n; i++) {
        if (!dc_rule_axis(r, a->axes.v[i], rank)) return false;
        if (i > 0 && a->axes.v[i] <= a->axes.v[i - 1])
            return dc_rule_fail(r, "axes must be sorted and unique, got %s", dc_ints_s(&a->axes).s);
        reduced[a->axes.v[i]] = true;
    }
    dc_shape s = { .rank = 0 };
    for (int i = 0; i < rank; i++) {
        bool red = a->axes.n == 0 || reduced[i];
        if (!red) s.dim[s.rank++] = x->shape.dim[i];
        else if (a->keepdims) s.dim[s.rank++] = 1;
    }
    *out = dc_make_type(x->dtype, &s);
    return true;
}

/* softmax/log_softmax keep the shape; argmax removes the axis and gives i32;
 * softmax_bwd(y, dy) keeps the shape, dy of y's type. */
bool dc_shape_axis_reduce(dc_rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    if (!dc_rule_dtype(r, 0, NULL, DC_F32)) return false;
    int64_t axis = r->n->attr.axis.axis;
    if (!dc_rule_axis(r, axis, x->shape.rank)) return false;
    if (r->n->op == DC_OP_SOFTMAX_BWD && !dc_type_eq(r->in[1], x))
        return dc_rule_fail(r, "dy must have y's type %s, got %s", dc_type_s(x).s, dc_type_s(r->in[1]).s);
    if (r->n->op != DC_OP_ARGMAX) {
        *out = dc_make_type(DC_F32, &x->shape);
        return true;
    }
    dc_shape s = { .rank = 0 };
    for (int i = 0; i < x->shape.rank; i++)
        if (i != axis) s.dim[s.rank++] = x->shape.dim[i];
    *out = dc_make_type(DC_I32, &s);
    return true;
}

/* ---- VJPs ------------------------------------------------------------------------------ */

void dc_vjp_sum(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x = n->in[0];
    dc_ad_accum(a, x, dc_ad_expand(a, dy, &dc_ad_type(a, x)->shape, &n->attr.reduce.axes));
}

void dc_vjp_mean(dc_ad *a, const dc_node *n, int y, int dy) {
    int x = n->in[0];
    const dc_shape *xs = &dc_ad_type(a, x)->shape;
    float inv = (float)(1.0 / (double)(dc_numel(xs) / dc_numel(&dc_ad_type(a, y)->shape)));
    dc_ad_accum(a, x, dc_ad_expand(a, dc_ad_mul_s(a, dy, inv), xs, &n->attr.reduce.axes));
}

/* mask of the maxima, dy split evenly among ties (the mean of the subgradients, as
 * torch.amax) */
void dc_vjp_max(dc_ad *a, const dc_node *n, int y, int dy) {
    int x = n->in[0];
    const dc_shape *xs = &dc_ad_type(a, x)->shape;
    const dc_ints *axes = &n->attr.reduce.axes;
    int mask = dc_ad_to_f32(a, dc_ad_bin(a, DC_OP_EQ, x, dc_ad_expand(a, y, xs, axes)));
    int count = dc_ad_emit(a, DC_OP_SUM, 1, &mask, &n->attr, NULL);
    dc_ad_accum(a, x, dc_ad_bin(a, DC_OP_MUL, mask, dc_ad_expand(a, dc_ad_bin(a, DC_OP_DIV, dy, count), xs, axes)));
}

/* softmax weights exp(x - y) */
void dc_vjp_logsumexp(dc_ad *a, const dc_node *n, int y, int dy) {
    int x = n->in[0];
    const dc_shape *xs = &dc_ad_type(a, x)->shape;
    const dc_ints *axes = &n->attr.reduce.axes;
    dc_ad_accum(a, x, dc_ad_bin(a, DC_OP_MUL, dc_ad_expand(a, dy, xs, axes),
                                dc_ad_un(a, DC_OP_EXP, dc_ad_bin(a, DC_OP_SUB, x, dc_ad_expand(a, y, xs, axes)))));
}

/* softmax: its backward op */
void dc_vjp_softmax(dc_ad *a, const dc_node *n, int y, int dy) {
    dc_ad_accum(a, n->in[0], dc_ad_emit(a, DC_OP_SOFTMAX_BWD, 2, (int[]){ y, dy }, &n->attr, NULL));
}

/* log_softmax: dy - softmax(x) sum(dy) */
void dc_vjp_log_softmax(dc_ad *a, const dc_node *n, int y, int dy) {
    dc_ints ax = { .n = 1, .v = { n->attr.axis.axis } };
    dc_ad_accum(a, n->in[0], dc_ad_bin(a, DC_OP_SUB, dy, dc_ad_bin(a, DC_OP_MUL, dc_ad_un(a, DC_OP_EXP, y),
                                                                    dc_ad_sum_axes(a, dy, &ax, true))));
}

/* ---- reference kernels ----------------------------------------------------------------- */

/* ---- the reduction plan ------------------------------------------------------------ */

/* An input of shape s split into kept dims (output order) and reduced dims; adjacent dims
 * of the same class are merged. The reduced set of output o is, for each r < n_rows,
 * the n elements at base(o) + row[r] + k*st. */
typedef struct {
    int nk;
    int64_t kdim[DC_MAX_RANK], kst[DC_MAX_RANK];
    int64_t n, st;
    int64_t n_rows, *row;
} rplan;

static void rplan_init(rplan *p, const dc_shape *s, const dc_ints *axes) {
    bool red[DC_MAX_RANK] = { false };
    for (int i = 0; i < axes->n; i++) red[axes->v[i]] = true;
    if (axes->n == 0)
        for (int d = 0; d < s->rank; d++) red[d] = true;
    int64_t st[DC_MAX_RANK], acc = 1;
    for (int d = s->rank - 1; d >= 0; d--) {
        st[d] = acc;
        acc *= s->dim[d];
    }
    int nr = 0;
    int64_t rdim[DC_MAX_RANK], rst[DC_MAX_RANK];
    p->nk = 0;
    for (int d = 0; d < s->rank; d++) {
        int64_t *dims = red[d] ? rdim : p->kdim, *sts = red[d] ? rst : p->kst;
        int *cnt = red[d] ? &nr : &p->nk;
        if (*cnt > 0 && sts[*cnt - 1] == st[d] * s->dim[d]) {
            dims[*cnt - 1] *= s->dim[d];
            sts[*cnt - 1] = st[d];
        } else {
            dims[*cnt] = s->dim[d];
            sts[*cnt] = st[d];
            (*cnt)++;
        }
    }
    p->n = nr ? rdim[nr - 1] : 1;
    p->st = nr ? rst[nr - 1] : 1;
    p->n_rows = 1;
    for (int i = 0; i < nr - 1; i++) p->n_rows *= rdim[i];
    p->row = malloc((size_t)p->n_rows * sizeof *p->row);
    if (!p->row) abort();
    int64_t idx[DC_MAX_RANK] = { 0 };
    for (int64_t r = 0; r < p->n_rows; r++) {
        int64_t off = 0;
        for (int i = 0; i < nr - 1; i++) off += idx[i] * rst[i];
        p->row[r] = off;
        for (int i = nr - 2; i >= 0 && ++idx[i] == rdim[i]; i--) idx[i] = 0;
    }
}

static int64_t rplan_base(const rplan *p, int64_t o) {
    int64_t off = 0;
    for (int i = p->nk - 1; i >= 0; i--) {
        off += o % p->kdim[i] * p->kst[i];
        o /= p->kdim[i];
    }
    return off;
}

/* ---- folds over a tile of w outputs ------------------------------------------------ */
/* When the innermost kept dim is contiguous, up to TILE neighbouring outputs are reduced
 * together: output j of the tile reads x[j + row[r] + k*st]. The innermost loop then runs
 * over the tile (contiguous), and each output still sees its elements in the fixed order
 * (rows, then k). Otherwise tiles have one output. */
#define TILE 64

#define FOR_TILE(p, x, w, BODY)                                                           \
    for (int64_t r = 0; r < (p)->n_rows; r++) {                                           \
        const __typeof__(*(x)) *row_ = (x) + (p)->row[r];                                 \
        if ((w) == 1)                                                                     \
            for (int64_t k = 0; k < (p)->n; k++) {                                        \
                const __typeof__(*(x)) *q = row_ + k * (p)->st;                           \
                const int64_t j = 0;                                                      \
                BODY;                                                                     \
            }                                                                             \
        else                                                                              \
            for (int64_t k = 0; k < (p)->n; k++) {                                        \
                const __typeof__(*(x)) *q = row_ + k * (p)->st;                           \
                for (int64_t j = 0; j < (w); j++) BODY;                                   \
            }                                                                             \
    }

static void fold_sum(const rplan *p, const float *x, int64_t w, double *acc) {
    for (int64_t j = 0; j < w; j++) acc[j] = 0;
    FOR_TILE(p, x, w, acc[j] += q[j]);
}

/* NaN wins */
static void fold_max(const rplan *p, const float *x, int64_t w, float *m) {
    for (int64_t j = 0; j < w; j++) m[j] = -INFINITY;
    FOR_TILE(p, x, w, m[j] = (q[j] > m[j] || q[j] != q[j]) ? q[j] : m[j]);
}

/* log(sum(exp(x))) = m + log(sum(exp(x - m))); an infinite or NaN max is the answer */
static void fold_logsumexp(const rplan *p, const float *x, int64_t w, float *out) {
    float m[TILE];
    double s[TILE] = { 0 };
    fold_max(p, x, w, m);
    FOR_TILE(p, x, w, s[j] += exp((double)q[j] - m[j]));
    for (int64_t j = 0; j < w; j++) out[j] = isfinite(m[j]) ? (float)(m[j] + log(s[j])) : m[j];
}

static void fold_sum_i32(const rplan *p, const int32_t *x, int64_t w, int32_t *out) {
    uint32_t acc[TILE] = { 0 };
    FOR_TILE(p, x, w, acc[j] += (uint32_t)q[j]);
    for (int64_t j = 0; j < w; j++) out[j] = (int32_t)acc[j];
}

static void fold_max_i32(const rplan *p, const int32_t *x, int64_t w, int32_t *m) {
    for (int64_t j = 0; j < w; j++) m[j] = INT32_MIN;
    FOR_TILE(p, x, w, m[j] = q[j] > m[j] ? q[j] : m[j]);
}

/* sum, mean, max, logsumexp: out[o] = fold(reduced set of o), a tile of outputs at a time */
bool dc_ref_reduce(const dc_ref_args *a) {
    dc_row_value value = dc_op_get(a->n->op)->row.value;
    const dc_tensor *x = a->in[0];
    bool f32 = x->type.dtype == DC_F32;
    rplan p;
    rplan_init(&p, &x->type.shape, &a->n->attr.reduce.axes);
    int64_t n_out = dc_numel(&a->out->type.shape), count = p.n * p.n_rows;
    int64_t inner = p.nk > 0 && p.kst[p.nk - 1] == 1 ? p.kdim[p.nk - 1] : 1;
    int64_t W = inner < TILE ? inner : TILE, per_row = (inner + W - 1) / W;
    int64_t n_tiles = n_out / inner * per_row;
#pragma omp parallel for if (dc_numel(&x->type.shape) > PAR_MIN && n_tiles > 1)
    for (int64_t t = 0; t < n_tiles; t++) {
        int64_t j0 = t % per_row * W, w = inner - j0 < W ? inner - j0 : W;
        int64_t o = t / per_row * inner + j0, base = rplan_base(&p, o);
        if (!f32) {
            const int32_t *q = (const int32_t *)x->data + base;
            int32_t *y = (int32_t *)a->out->data + o;
            if (value == DC_ROW_SUM) fold_sum_i32(&p, q, w, y);
            else fold_max_i32(&p, q, w, y);
            continue;
        }
        const float *q = (const float *)x->data + base;
        float *y = (float *)a->out->data + o;
        double acc[TILE];
        if (value == DC_ROW_MAX) fold_max(&p, q, w, y);
        else if (value == DC_ROW_LOGSUMEXP) fold_logsumexp(&p, q, w, y);
        else {
            fold_sum(&p, q, w, acc);
            for (int64_t j = 0; j < w; j++) y[j] = (float)(value == DC_ROW_SUM ? acc[j] : acc[j] / (double)count);
        }
    }
    free(p.row);
    return true;
}

/* ---- along one axis: softmax, log_softmax, argmax ---------------------------------- */

/* max of the row x[k*st], k < n; NaN wins */
static float row_max(const float *x, int64_t n, int64_t st) {
    float m = -INFINITY;
    for (int64_t k = 0; k < n; k++)
        if (x[k * st] > m || x[k * st] != x[k * st]) m = x[k * st];
    return m;
}

/* y = exp(x - m) / sum(exp(x - m)) */
static void row_softmax(const float *x, float *y, int64_t n, int64_t st) {
    float m = row_max(x, n, st);
    double s = 0;
    for (int64_t k = 0; k < n; k++) {
        float e = expf(x[k * st] - m);
        y[k * st] = e;
        s += e;
    }
    float inv = (float)(1.0 / s);
    for (int64_t k = 0; k < n; k++) y[k * st] *= inv;
}

/* y = (x - m) - log(sum(exp(x - m))), in double so huge logits keep their precision */
static void row_log_softmax(const float *x, float *y, int64_t n, int64_t st) {
    float m = row_max(x, n, st);
    double s = 0;
    for (int64_t k = 0; k < n; k++) s += exp((double)x[k * st] - m);
    double ls = log(s);
    for (int64_t k = 0; k < n; k++) y[k * st] = (float)((double)x[k * st] - m - ls);
}

/* softmax's gradient: dx = y * (dy - sum(dy * y)), the sum in double */
static void row_softmax_bwd(const float *y, const float *dy, float *dx, int64_t n, int64_t st) {
    double s = 0;
    for (int64_t k = 0; k < n; k++) s += (double)dy[k * st] * y[k * st];
    float sf = (float)s;
    for (int64_t k = 0; k < n; k++) dx[k * st] = y[k * st] * (dy[k * st] - sf);
}

/* index of the first maximum; a NaN counts as the maximum */
static int32_t row_argmax(const float *x, int64_t n, int64_t st) {
    int64_t best = 0;
    for (int64_t k = 1; k < n; k++) {
        float v = x[k * st], b = x[best * st];
        if (b == b && (v > b || v != v)) best = k;
    }
    return (int32_t)best;
}

/* x viewed as [outer, d, inner]; row r = (r / inner, :, r % inner). argmax writes out
 * [outer, inner] contiguously, softmax/log_softmax/softmax_bwd write the row's own
 * positions (softmax_bwd reads the same row of dy, its second input). */
bool dc_ref_along_axis(const dc_ref_args *a) {
    const dc_tensor *x = a->in[0];
    const dc_shape *s = &x->type.shape;
    int axis = (int)a->n->attr.axis.axis;
    int64_t outer = 1, inner = 1, d = s->dim[axis];
    for (int i = 0; i < axis; i++) outer *= s->dim[i];
    for (int i = axis + 1; i < s->rank; i++) inner *= s->dim[i];
    int64_t rows = outer * inner;
    dc_op op = a->n->op;
#pragma omp parallel for if (rows * d > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t base = r / inner * d * inner + r % inner;
        const float *q = (const float *)x->data + base;
        float *y = (float *)a->out->data + base;
        if (op == DC_OP_SOFTMAX) row_softmax(q, y, d, inner);
        else if (op == DC_OP_SOFTMAX_BWD)
            row_softmax_bwd(q, (const float *)a->in[1]->data + base, y, d, inner);
        else if (op == DC_OP_LOG_SOFTMAX) row_log_softmax(q, y, d, inner);
        else ((int32_t *)a->out->data)[r] = row_argmax(q, d, inner);
    }
    return true;
}
