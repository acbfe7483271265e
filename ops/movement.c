/* movement.c — data movement: shape rules, VJPs and reference kernels. The kernels: reshape, broadcast_to, transpose, slice,
 * unslice, concat and pad are all one strided copy of 4-byte elements (f32 and i32 alike):
 * dst[dst.base + sum idx*dst.st] = src[src.base + sum idx*src.st] over an index space;
 * broadcast dims have source stride 0. gather copies table rows by index and scatter_add
 * sums rows back by index (an index outside [0, V) is a run-time error); one_hot writes 1
 * at each index (out of range: a zero row). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

#define PAR_MIN 32768
#define CHUNK 8192

/* ---- shape rules ----------------------------------------------------------------------- */

/* reshape / broadcast_to: the declared type, checked against the input */
bool dc_shape_declared_view(dc_rule *r, dc_type *out) {
    const dc_type *x = r->in[0], *d = &r->n->type;
    if (!dc_rule_check_type(r, d, "declared type")) return false;
    if (d->dtype != x->dtype)
        return dc_rule_fail(r, "input is %s, declared %s: dtypes differ", dc_type_s(x).s, dc_type_s(d).s);
    if (r->n->op == DC_OP_RESHAPE) {
        if (dc_numel(&x->shape) != dc_numel(&d->shape))
            return dc_rule_fail(r, "%s has %lld elements, declared %s has %lld", dc_type_s(x).s,
                        (long long)dc_numel(&x->shape), dc_type_s(d).s, (long long)dc_numel(&d->shape));
    } else {
        dc_shape s;
        if (!dc_broadcast_shapes(&x->shape, &d->shape, &s) || !dc_shape_eq(&s, &d->shape))
            return dc_rule_fail(r, "cannot broadcast %s to %s", dc_type_s(x).s, dc_type_s(d).s);
    }
    *out = dc_make_type(d->dtype, &d->shape);
    return true;
}

/* out.dim[i] = in.dim[perm[i]] */
bool dc_shape_transpose(dc_rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    const dc_ints *p = &r->n->attr.perm.perm;
    int rank = x->shape.rank;
    if (!dc_rule_per_axis(r, p, "perm", rank, 0, rank - 1)) return false;
    bool seen[DC_MAX_RANK] = { false };
    dc_shape s = { .rank = rank };
    for (int i = 0; i < rank; i++) {
        if (seen[p->v[i]]) return dc_rule_fail(r, "perm %s is not a permutation", dc_ints_s(p).s);
        seen[p->v[i]] = true;
        s.dim[i] = x->shape.dim[p->v[i]];
    }
    *out = dc_make_type(x->dtype, &s);
    return true;
}

/* per axis 0 <= start < stop <= dim, step >= 1: dim -> ceil((stop-start)/step) */
bool dc_shape_slice(dc_rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    const dc_slice_attr *a = &r->n->attr.slice;
    int rank = x->shape.rank;
    if (!dc_rule_per_axis(r, &a->start, "start", rank, 0, DC_MAX_NUMEL) ||
        !dc_rule_per_axis(r, &a->stop, "stop", rank, 1, DC_MAX_NUMEL) ||
        !dc_rule_per_axis(r, &a->step, "step", rank, 1, DC_MAX_NUMEL))
        return false;
    dc_shape s = { .rank = rank };
    for (int i = 0; i < rank; i++) {
        int64_t b = a->start.v[i], e = a->stop.v[i], d = x->shape.dim[i];
        if (!(b < e && e <= d))
            return dc_rule_fail(r, "axis %d: need 0 <= start < stop <= %lld, got start=%lld stop=%lld", i,
                        (long long)d, (long long)b, (long long)e);
        s.dim[i] = (e - b + a->step.v[i] - 1) / a->step.v[i];
    }
    *out = dc_make_type(x->dtype, &s);
    return true;
}

/* unslice(dy) {slice} : declared type; slicing the declared type must give dy's type */
bool dc_shape_unslice(dc_rule *r, dc_type *out) {
    const dc_type *dy = r->in[0], *d = &r->n->type;
    if (!dc_rule_check_type(r, d, "declared type")) return false;
    dc_rule fwd = *r; /* the forward slice's rule on the declared type */
    fwd.in[0] = d;
    dc_type y;
    if (!dc_shape_slice(&fwd, &y)) return false;
    if (!dc_type_eq(&y, dy))
        return dc_rule_fail(r, "slicing the declared %s gives %s, but dy is %s", dc_type_s(d).s, dc_type_s(&y).s, dc_type_s(dy).s);
    *out = dc_make_type(d->dtype, &d->shape);
    return true;
}

/* inputs of one dtype and rank, dims equal except axis, which adds up */
bool dc_shape_concat(dc_rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    int64_t axis = r->n->attr.axis.axis;
    if (!dc_rule_axis(r, axis, x->shape.rank)) return false;
    dc_shape s = x->shape;
    for (int k = 1; k < r->n->n_in; k++) {
        const dc_type *y = r->in[k];
        bool same = y->dtype == x->dtype && y->shape.rank == x->shape.rank;
        for (int i = 0; same && i < x->shape.rank; i++)
            same = i == axis || y->shape.dim[i] == x->shape.dim[i];
        if (!same)
            return dc_rule_fail(r, "input %d is %s, incompatible with %s along axis %lld", k, dc_type_s(y).s, dc_type_s(x).s,
                        (long long)axis);
        s.dim[axis] += y->shape.dim[axis]; /* each <= 2^40, at most 16 of them */
    }
    *out = dc_make_type(x->dtype, &s);
    return true;
}

/* dim -> lo + dim + hi */
bool dc_shape_pad(dc_rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    const dc_pad_attr *a = &r->n->attr.pad;
    int rank = x->shape.rank;
    if (!dc_rule_per_axis(r, &a->lo, "lo", rank, 0, DC_MAX_NUMEL) || !dc_rule_per_axis(r, &a->hi, "hi", rank, 0, DC_MAX_NUMEL))
        return false;
    dc_shape s = { .rank = rank };
    for (int i = 0; i < rank; i++) s.dim[i] = a->lo.v[i] + x->shape.dim[i] + a->hi.v[i];
    *out = dc_make_type(x->dtype, &s);
    return true;
}

/* table [V, rest...], idx:i32 [idx...] -> [idx..., rest...] */
bool dc_shape_gather(dc_rule *r, dc_type *out) {
    const dc_type *t = r->in[0], *idx = r->in[1];
    if (!dc_rule_min_rank(r, 0, "table", 1) || !dc_rule_dtype(r, 1, "indices", DC_I32)) return false;
    int rank = idx->shape.rank + t->shape.rank - 1;
    if (rank > DC_MAX_RANK) return dc_rule_fail(r, "result rank %d exceeds %d", rank, DC_MAX_RANK);
    dc_shape s = idx->shape;
    for (int i = 1; i < t->shape.rank; i++) s.dim[s.rank++] = t->shape.dim[i];
    *out = dc_make_type(t->dtype, &s);
    return true;
}

/* scatter_add(idx:i32 [m...], src f32 [m..., rest...]) : declared f32 [V, rest...] */
bool dc_shape_scatter_add(dc_rule *r, dc_type *out) {
    const dc_type *idx = r->in[0], *src = r->in[1], *d = &r->n->type;
    if (!dc_rule_dtype(r, 0, "indices", DC_I32) || !dc_rule_dtype(r, 1, "src", DC_F32)) return false;
    if (!dc_rule_declared_f32(r)) return false;
    if (d->shape.rank < 1) return dc_rule_fail(r, "declared type must have rank >= 1 ([V, rest...]), got %s", dc_type_s(d).s);
    int m = idx->shape.rank, rest = d->shape.rank - 1;
    bool ok = src->shape.rank == m + rest;
    for (int i = 0; ok && i < m; i++) ok = src->shape.dim[i] == idx->shape.dim[i];
    for (int i = 0; ok && i < rest; i++) ok = src->shape.dim[m + i] == d->shape.dim[1 + i];
    if (!ok)
        return dc_rule_fail(r, "src must be indices' shape followed by the declared rows' shape: indices %s, "
                    "declared %s, src %s", dc_type_s(idx).s, dc_type_s(d).s, dc_type_s(src).s);
    *out = dc_make_type(DC_F32, &d->shape);
    return true;
}

/* idx:i32 [...] -> f32 [..., depth] */
bool dc_shape_one_hot(dc_rule *r, dc_type *out) {
    const dc_type *idx = r->in[0];
    int64_t depth = r->n->attr.one_hot.depth;
    if (!dc_rule_dtype(r, 0, NULL, DC_I32)) return false;
    if (depth < 1 || depth > DC_MAX_NUMEL) return dc_rule_fail(r, "depth must be in [1, 2^40], got %lld", (long long)depth);
    if (idx->shape.rank + 1 > DC_MAX_RANK)
        return dc_rule_fail(r, "result rank %d exceeds %d", idx->shape.rank + 1, DC_MAX_RANK);
    dc_shape s = idx->shape;
    s.dim[s.rank++] = depth;
    *out = dc_make_type(DC_F32, &s);
    return true;
}

/* ---- VJPs: the inverse movement ------------------------------------------------------- */

void dc_vjp_reshape(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x = n->in[0];
    dc_ad_accum(a, x, dc_ad_reshape(a, dy, &dc_ad_type(a, x)->shape));
}

void dc_vjp_broadcast_to(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x = n->in[0];
    dc_ad_accum(a, x, dc_ad_unbroadcast(a, dy, &dc_ad_type(a, x)->shape));
}

void dc_vjp_transpose(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.perm.perm.n = n->attr.perm.perm.n;
    for (int i = 0; i < at.perm.perm.n; i++) at.perm.perm.v[n->attr.perm.perm.v[i]] = i;
    dc_ad_accum(a, n->in[0], dc_ad_emit(a, DC_OP_TRANSPOSE, 1, &dy, &at, NULL));
}

void dc_vjp_slice(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x = n->in[0];
    dc_ad_accum(a, x, dc_ad_emit(a, DC_OP_UNSLICE, 1, &dy, &n->attr, dc_ad_type(a, x)));
}

/* the slice of dy that the input filled */
void dc_vjp_pad(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x = n->in[0];
    const dc_type *xt = dc_ad_type(a, x);
    dc_attr at;
    memset(&at, 0, sizeof at);
    dc_slice_attr *s = &at.slice;
    s->start = s->stop = s->step = (dc_ints){ .n = xt->shape.rank };
    for (int i = 0; i < xt->shape.rank; i++) {
        s->start.v[i] = n->attr.pad.lo.v[i];
        s->stop.v[i] = n->attr.pad.lo.v[i] + xt->shape.dim[i];
        s->step.v[i] = 1;
    }
    dc_ad_accum(a, x, dc_ad_emit(a, DC_OP_SLICE, 1, &dy, &at, NULL));
}

/* concat: each input's adjoint is its slice of dy along the axis */
void dc_vjp_concat(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    const dc_shape *ys = &dc_ad_type(a, dy)->shape;
    int64_t axis = n->attr.axis.axis, off = 0;
    for (int k = 0; k < n->n_in; k++) {
        int64_t dk = dc_ad_type(a, n->in[k])->shape.dim[axis];
        if (dc_ad_wants(a, n->in[k])) {
            dc_attr at;
            memset(&at, 0, sizeof at);
            dc_slice_attr *s = &at.slice;
            s->start = s->stop = s->step = (dc_ints){ .n = ys->rank };
            for (int i = 0; i < ys->rank; i++) {
                s->start.v[i] = i == axis ? off : 0;
                s->stop.v[i] = i == axis ? off + dk : ys->dim[i];
                s->step.v[i] = 1;
            }
            dc_ad_accum(a, n->in[k], dc_ad_emit(a, DC_OP_SLICE, 1, &dy, &at, NULL));
        }
        off += dk;
    }
}

/* gather: rows of dy scatter-added into the table; the indices get none */
void dc_vjp_gather(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int table = n->in[0];
    dc_ad_accum(a, table, dc_ad_emit(a, DC_OP_SCATTER_ADD, 2, (int[]){ n->in[1], dy }, NULL, dc_ad_type(a, table)));
}

/* ---- reference kernels ----------------------------------------------------------------- */

/* ---- the strided copy -------------------------------------------------------------- */

typedef struct { int64_t base, st[DC_MAX_RANK]; } view;

/* contiguous (C-order) element strides of s */
static void contiguous(const dc_shape *s, int64_t *st) {
    int64_t acc = 1;
    for (int d = s->rank - 1; d >= 0; d--) {
        st[d] = acc;
        acc *= s->dim[d];
    }
}

/* Copies over the index space dims[0..rank): size-1 dims are dropped and adjacent dims
 * merged where both views stay linear, then fixed chunks of the flat index space run in
 * parallel, each as innermost runs (memcpy when both strides are 1). */
static void copy_strided(int rank, const int64_t *dims, uint32_t *dst, const view *dv,
                         const uint32_t *src, const view *sv) {
    int r = 0;
    int64_t dim[DC_MAX_RANK], dst_st[DC_MAX_RANK], src_st[DC_MAX_RANK], total = 1;
    for (int d = 0; d < rank; d++) {
        total *= dims[d];
        if (dims[d] == 1) continue;
        if (r > 0 && dst_st[r - 1] == dv->st[d] * dims[d] && src_st[r - 1] == sv->st[d] * dims[d]) {
            dim[r - 1] *= dims[d];
        } else {
            dim[r] = dims[d];
            r++;
        }
        dst_st[r - 1] = dv->st[d];
        src_st[r - 1] = sv->st[d];
    }
    if (r == 0) {
        dim[0] = 1;
        dst_st[0] = src_st[0] = 0;
        r = 1;
    }
    int64_t inner = dim[r - 1], ds = dst_st[r - 1], ss = src_st[r - 1];
    int64_t n_chunks = (total + CHUNK - 1) / CHUNK;
#pragma omp parallel for if (total > PAR_MIN)
    for (int64_t c = 0; c < n_chunks; c++) {
        int64_t i = c * CHUNK, end = i + CHUNK < total ? i + CHUNK : total;
        while (i < end) {
            int64_t col = i % inner, rem = i / inner;
            int64_t n = inner - col < end - i ? inner - col : end - i;
            int64_t doff = dv->base + col * ds, soff = sv->base + col * ss;
            for (int d = r - 2; d >= 0; d--) {
                doff += rem % dim[d] * dst_st[d];
                soff += rem % dim[d] * src_st[d];
                rem /= dim[d];
            }
            uint32_t *restrict y = dst + doff;
            const uint32_t *restrict x = src + soff;
            if (ds == 1 && ss == 1) memcpy(y, x, (size_t)n * 4);
            else if (ss == 0)
                for (int64_t k = 0; k < n; k++) y[k * ds] = x[0];
            else
                for (int64_t k = 0; k < n; k++) y[k * ds] = x[k * ss];
            i += n;
        }
    }
}

/* out (contiguous) = in seen through sv, over out's index space */
static void gather_view(const dc_ref_args *a, const view *sv) {
    view dv = { 0, { 0 } };
    const dc_shape *os = &a->out->type.shape;
    contiguous(os, dv.st);
    copy_strided(os->rank, os->dim, a->out->data, &dv, a->in[0]->data, sv);
}

/* ---- ops --------------------------------------------------------------------------- */

/* reshape: same elements in the same order */
bool dc_ref_reshape(const dc_ref_args *a) {
    int64_t n = dc_numel(&a->out->type.shape);
    view v = { 0, { 1 } };
    copy_strided(1, &n, a->out->data, &v, a->in[0]->data, &v);
    return true;
}

/* broadcast_to: in's dims aligned right; stride 0 where in has 1 or no dim */
bool dc_ref_broadcast_to(const dc_ref_args *a) {
    const dc_shape *is = &a->in[0]->type.shape, *os = &a->out->type.shape;
    int64_t ist[DC_MAX_RANK];
    contiguous(is, ist);
    view sv = { 0, { 0 } };
    int off = os->rank - is->rank;
    for (int d = off; d < os->rank; d++) sv.st[d] = is->dim[d - off] == 1 ? 0 : ist[d - off];
    gather_view(a, &sv);
    return true;
}

/* transpose: out[i...] = in[i permuted back]: out dim d walks in dim perm[d] */
bool dc_ref_transpose(const dc_ref_args *a) {
    int64_t ist[DC_MAX_RANK];
    contiguous(&a->in[0]->type.shape, ist);
    const dc_ints *perm = &a->n->attr.perm.perm;
    view sv = { 0, { 0 } };
    for (int d = 0; d < perm->n; d++) sv.st[d] = ist[perm->v[d]];
    gather_view(a, &sv);
    return true;
}

/* slice: out[i] = in[start + i*step] per axis */
bool dc_ref_slice(const dc_ref_args *a) {
    const dc_slice_attr *s = &a->n->attr.slice;
    int64_t ist[DC_MAX_RANK];
    contiguous(&a->in[0]->type.shape, ist);
    view sv = { 0, { 0 } };
    for (int d = 0; d < a->in[0]->type.shape.rank; d++) {
        sv.base += s->start.v[d] * ist[d];
        sv.st[d] = s->step.v[d] * ist[d];
    }
    gather_view(a, &sv);
    return true;
}

/* y[0..n) = word, in parallel */
static void fill_words(uint32_t *y, int64_t n, uint32_t word) {
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = word;
}

/* unslice: out = 0, then out[start + i*step] = dy[i] per axis (slice's view, written) */
bool dc_ref_unslice(const dc_ref_args *a) {
    const dc_slice_attr *s = &a->n->attr.slice;
    const dc_shape *os = &a->out->type.shape, *is = &a->in[0]->type.shape;
    fill_words(a->out->data, dc_numel(os), 0);
    view dv = { 0, { 0 } }, sv = { 0, { 0 } };
    contiguous(os, dv.st);
    contiguous(is, sv.st);
    for (int d = 0; d < os->rank; d++) {
        dv.base += s->start.v[d] * dv.st[d];
        dv.st[d] *= s->step.v[d];
    }
    copy_strided(is->rank, is->dim, a->out->data, &dv, a->in[0]->data, &sv);
    return true;
}

/* concat: input k lands at offset sum(dim[axis] of inputs < k) along axis */
bool dc_ref_concat(const dc_ref_args *a) {
    int axis = (int)a->n->attr.axis.axis;
    view dv = { 0, { 0 } };
    contiguous(&a->out->type.shape, dv.st);
    for (int k = 0; k < a->n->n_in; k++) {
        const dc_shape *is = &a->in[k]->type.shape;
        view sv = { 0, { 0 } };
        contiguous(is, sv.st);
        copy_strided(is->rank, is->dim, a->out->data, &dv, a->in[k]->data, &sv);
        dv.base += is->dim[axis] * dv.st[axis];
    }
    return true;
}

/* value as i32: toward zero, saturating, NaN -> 0 */
static int32_t to_i32(float v) {
    if (v != v) return 0;
    if (v >= 2147483648.0f) return INT32_MAX;
    if (v <= -2147483648.0f) return INT32_MIN;
    return (int32_t)v;
}

/* pad: out = value, then in copied to out[lo + i] */
bool dc_ref_pad(const dc_ref_args *a) {
    const dc_pad_attr *p = &a->n->attr.pad;
    int64_t n = dc_numel(&a->out->type.shape);
    uint32_t word;
    if (a->out->type.dtype == DC_F32) memcpy(&word, &p->value, 4);
    else {
        int32_t v = to_i32(p->value);
        memcpy(&word, &v, 4);
    }
    uint32_t *y = a->out->data;
    fill_words(y, n, word);
    const dc_shape *is = &a->in[0]->type.shape;
    view dv = { 0, { 0 } }, sv = { 0, { 0 } };
    contiguous(&a->out->type.shape, dv.st);
    contiguous(is, sv.st);
    for (int d = 0; d < is->rank; d++) dv.base += p->lo.v[d] * dv.st[d];
    copy_strided(is->rank, is->dim, y, &dv, a->in[0]->data, &sv);
    return true;
}

/* false (with "OP: index I out of range [0, V)" in err) unless every idx[j] is in [0, V) */
static bool indices_ok(const dc_ref_args *a, const int32_t *idx, int64_t m, int64_t V) {
    for (int64_t j = 0; j < m; j++)
        if (idx[j] < 0 || idx[j] >= V) {
            snprintf(a->err, a->len, "%s: index %d out of range [0, %lld)", dc_op_name(a->n->op), idx[j],
                     (long long)V);
            return false;
        }
    return true;
}

/* gather(table [V, rest...], idx [m...]) -> [m..., rest...]: out row j = table row idx[j] */
bool dc_ref_gather(const dc_ref_args *a) {
    const dc_shape *ts = &a->in[0]->type.shape;
    int64_t V = ts->dim[0], row = dc_numel(ts) / V, m = dc_numel(&a->in[1]->type.shape);
    const int32_t *idx = a->in[1]->data;
    if (!indices_ok(a, idx, m, V)) return false;
    const uint32_t *t = a->in[0]->data;
    uint32_t *y = a->out->data;
#pragma omp parallel for if (m * row > PAR_MIN)
    for (int64_t j = 0; j < m; j++) memcpy(y + j * row, t + idx[j] * row, (size_t)row * 4);
    return true;
}

/* scatter_add(idx [m...], src [m..., rest...]) -> [V, rest...]: out row v = the sum of the
 * src rows j with idx[j] = v, in ascending j. The rows j of each v are listed first by a
 * stable counting sort (counts at first[v+2], prefix sums make first[v+1] the start of v,
 * filling advances it to v's end, so v's rows end up at order[first[v] .. first[v+1])),
 * then each out row is summed by one thread. */
bool dc_ref_scatter_add(const dc_ref_args *a) {
    const dc_shape *os = &a->out->type.shape;
    int64_t V = os->dim[0], row = dc_numel(os) / V, m = dc_numel(&a->in[0]->type.shape);
    const int32_t *idx = a->in[0]->data;
    if (!indices_ok(a, idx, m, V)) return false;
    int64_t *first = calloc((size_t)V + 2, sizeof *first), *order = malloc((size_t)m * sizeof *order);
    if (!first || !order) abort(); /* out of memory */
    for (int64_t j = 0; j < m; j++) first[idx[j] + 2]++;
    for (int64_t v = 2; v < V + 2; v++) first[v] += first[v - 1];
    for (int64_t j = 0; j < m; j++) order[first[idx[j] + 1]++] = j;
    const float *src = a->in[1]->data;
    float *y = a->out->data;
#pragma omp parallel for if (V * row + m * row > PAR_MIN)
    for (int64_t v = 0; v < V; v++) {
        float *restrict yv = y + v * row;
        for (int64_t k = 0; k < row; k++) yv[k] = 0;
        for (int64_t t = first[v]; t < first[v + 1]; t++) {
            const float *restrict sj = src + order[t] * row;
            for (int64_t k = 0; k < row; k++) yv[k] += sj[k];
        }
    }
    free(first);
    free(order);
    return true;
}

/* one_hot(idx [m...]) {depth} -> f32 [m..., depth] */
bool dc_ref_one_hot(const dc_ref_args *a) {
    int64_t depth = a->n->attr.one_hot.depth, m = dc_numel(&a->in[0]->type.shape);
    const int32_t *idx = a->in[0]->data;
    float *y = a->out->data;
#pragma omp parallel for if (m * depth > PAR_MIN)
    for (int64_t j = 0; j < m; j++)
        for (int64_t k = 0; k < depth; k++) y[j * depth + k] = idx[j] == k ? 1.0f : 0.0f;
    return true;
}
