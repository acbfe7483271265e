/* movement.c — ref kernels of data movement. reshape, broadcast_to, transpose, slice,
 * unslice, concat and pad are all one strided copy of 4-byte elements (f32 and i32 alike):
 * dst[dst.base + sum idx*dst.st] = src[src.base + sum idx*src.st] over an index space;
 * broadcast dims have source stride 0. gather copies table rows by index and scatter_add
 * sums rows back by index (an index outside [0, V) is a run-time error); one_hot writes 1
 * at each index (out of range: a zero row). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/ref/ref.h"

#define PAR_MIN 32768
#define CHUNK 8192

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
static void reshape(const dc_ref_args *a) {
    int64_t n = dc_numel(&a->out->type.shape);
    view v = { 0, { 1 } };
    copy_strided(1, &n, a->out->data, &v, a->in[0]->data, &v);
}

/* broadcast_to: in's dims aligned right; stride 0 where in has 1 or no dim */
static void broadcast_to(const dc_ref_args *a) {
    const dc_shape *is = &a->in[0]->type.shape, *os = &a->out->type.shape;
    int64_t ist[DC_MAX_RANK];
    contiguous(is, ist);
    view sv = { 0, { 0 } };
    int off = os->rank - is->rank;
    for (int d = off; d < os->rank; d++) sv.st[d] = is->dim[d - off] == 1 ? 0 : ist[d - off];
    gather_view(a, &sv);
}

/* transpose: out[i...] = in[i permuted back]: out dim d walks in dim perm[d] */
static void transpose(const dc_ref_args *a) {
    int64_t ist[DC_MAX_RANK];
    contiguous(&a->in[0]->type.shape, ist);
    const dc_ints *perm = &a->n->attr.perm.perm;
    view sv = { 0, { 0 } };
    for (int d = 0; d < perm->n; d++) sv.st[d] = ist[perm->v[d]];
    gather_view(a, &sv);
}

/* slice: out[i] = in[start + i*step] per axis */
static void slice(const dc_ref_args *a) {
    const dc_slice_attr *s = &a->n->attr.slice;
    int64_t ist[DC_MAX_RANK];
    contiguous(&a->in[0]->type.shape, ist);
    view sv = { 0, { 0 } };
    for (int d = 0; d < a->in[0]->type.shape.rank; d++) {
        sv.base += s->start.v[d] * ist[d];
        sv.st[d] = s->step.v[d] * ist[d];
    }
    gather_view(a, &sv);
}

/* y[0..n) = word, in parallel */
static void fill_words(uint32_t *y, int64_t n, uint32_t word) {
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = word;
}

/* unslice: out = 0, then out[start + i*step] = dy[i] per axis (slice's view, written) */
static void unslice(const dc_ref_args *a) {
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
}

/* concat: input k lands at offset sum(dim[axis] of inputs < k) along axis */
static void concat(const dc_ref_args *a) {
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
}

/* value as i32: toward zero, saturating, NaN -> 0 */
static int32_t to_i32(float v) {
    if (v != v) return 0;
    if (v >= 2147483648.0f) return INT32_MAX;
    if (v <= -2147483648.0f) return INT32_MIN;
    return (int32_t)v;
}

/* pad: out = value, then in copied to out[lo + i] */
static void pad(const dc_ref_args *a) {
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
static bool gather(const dc_ref_args *a) {
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
static bool scatter_add(const dc_ref_args *a) {
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
static void one_hot(const dc_ref_args *a) {
    int64_t depth = a->n->attr.one_hot.depth, m = dc_numel(&a->in[0]->type.shape);
    const int32_t *idx = a->in[0]->data;
    float *y = a->out->data;
#pragma omp parallel for if (m * depth > PAR_MIN)
    for (int64_t j = 0; j < m; j++)
        for (int64_t k = 0; k < depth; k++) y[j * depth + k] = idx[j] == k ? 1.0f : 0.0f;
}

bool dc_ref_movement(const dc_ref_args *a) {
    switch (a->n->op) {
    case DC_OP_RESHAPE: reshape(a); return true;
    case DC_OP_BROADCAST_TO: broadcast_to(a); return true;
    case DC_OP_TRANSPOSE: transpose(a); return true;
    case DC_OP_SLICE: slice(a); return true;
    case DC_OP_UNSLICE: unslice(a); return true;
    case DC_OP_CONCAT: concat(a); return true;
    case DC_OP_PAD: pad(a); return true;
    case DC_OP_GATHER: return gather(a);
    case DC_OP_SCATTER_ADD: return scatter_add(a);
    case DC_OP_ONE_HOT: one_hot(a); return true;
    default:
        snprintf(a->err, a->len, "no ref kernel for %s", dc_op_name(a->n->op));
        return false;
    }
}
