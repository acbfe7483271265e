/* elementwise.c — ref kernels of the elementwise ops: unary maps (f32, and neg/abs/square/
 * cast on i32), binary arithmetic and comparisons with numpy broadcasting, and where.
 * Every n-ary op goes through one strided broadcast iterator: operand strides are 0 on
 * broadcast dims, adjacent dims that stay contiguous for every operand are merged (so equal
 * shapes become one flat loop), and the innermost loop has unit/zero-stride variants gcc
 * vectorizes. The per-element expressions are ir/scalar.h's tables, the ones constant folding
 * evaluates: i32 arithmetic wraps; i32 division by 0 gives 0 and INT_MIN / -1 gives INT_MIN. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ir/scalar.h"
#include "runtime/ref/ref.h"

#define PAR_MIN 32768   /* elements below which a kernel stays on one thread */
#define CHUNK 8192      /* elements per parallel work item of the broadcast iterator */
#define MAX_OPS 3

/* ---- the broadcast iterator ------------------------------------------------------------ */

/* The output seen as rank dims (coalesced, >= 1), with each operand's element strides. */
typedef struct {
    int rank, n_ops;
    int64_t dim[DC_MAX_RANK];
    int64_t st[MAX_OPS][DC_MAX_RANK];
} bcast;

/* One innermost segment: p[k] points at operand k's first element, st[k] is its stride,
 * y at n contiguous outputs. */
typedef void (*seg_fn)(dc_op op, const void *const *p, const int64_t *st, void *y, int64_t n);

static void bcast_init(bcast *it, const dc_shape *out, int n_ops, const dc_tensor *const *in) {
    int r = out->rank;
    int64_t st[MAX_OPS][DC_MAX_RANK];
    for (int k = 0; k < n_ops; k++) {
        const dc_shape *s = &in[k]->type.shape;
        int off = r - s->rank;
        int64_t acc = 1;
        for (int d = r - 1; d >= 0; d--) {
            int64_t dk = d >= off ? s->dim[d - off] : 1;
            st[k][d] = dk == 1 ? 0 : acc;
            acc *= dk;
        }
    }
    it->rank = 0;
    it->n_ops = n_ops;
    for (int d = 0; d < r; d++) {
        if (out->dim[d] == 1) continue;
        int q = it->rank - 1;
        bool merge = q >= 0;
        for (int k = 0; k < n_ops && merge; k++) merge = it->st[k][q] == st[k][d] * out->dim[d];
        if (merge) {
            it->dim[q] *= out->dim[d];
            for (int k = 0; k < n_ops; k++) it->st[k][q] = st[k][d];
        } else {
            it->dim[it->rank] = out->dim[d];
            for (int k = 0; k < n_ops; k++) it->st[k][it->rank] = st[k][d];
            it->rank++;
        }
    }
    if (it->rank == 0) {
        it->dim[0] = 1;
        for (int k = 0; k < n_ops; k++) it->st[k][0] = 0;
        it->rank = 1;
    }
}

/* Runs fn over all outputs (4-byte elements), in fixed chunks of the flat output range. */
static void bcast_run(const bcast *it, dc_op op, const void *const *src, void *dst,
                      int64_t total, seg_fn fn) {
    int last = it->rank - 1;
    int64_t inner = it->dim[last], n_chunks = (total + CHUNK - 1) / CHUNK;
#pragma omp parallel for if (total > PAR_MIN)
    for (int64_t c = 0; c < n_chunks; c++) {
        int64_t i = c * CHUNK, end = i + CHUNK < total ? i + CHUNK : total;
        while (i < end) {
            int64_t col = i % inner, row = i / inner;
            int64_t n = inner - col < end - i ? inner - col : end - i;
            const void *p[MAX_OPS];
            int64_t st[MAX_OPS];
            for (int k = 0; k < it->n_ops; k++) {
                int64_t off = col * it->st[k][last], rem = row;
                for (int d = last - 1; d >= 0; d--) {
                    off += rem % it->dim[d] * it->st[k][d];
                    rem /= it->dim[d];
                }
                p[k] = (const char *)src[k] + 4 * off;
                st[k] = it->st[k][last];
            }
            fn(op, p, st, (char *)dst + 4 * i, n);
            i += n;
        }
    }
}

/* y[i] = EXPR with u = a[i*sa], v = b[i*sb]; unit and zero strides get their own loops. No
 * `restrict`: the memory planner may run an op in place (y == a), reading each element before
 * writing it. */
#define SEG2(TA, TY, EXPR)                                                                \
    do {                                                                                  \
        const TA *pa = p[0], *pb = p[1];                                \
        TY *py = y;                                                              \
        int64_t sa = st[0], sb = st[1];                                                   \
        if (sa == 1 && sb == 1)                                                           \
            for (int64_t i = 0; i < n; i++) { TA u = pa[i], v = pb[i]; py[i] = (EXPR); }  \
        else if (sa == 1 && sb == 0)                                                      \
            for (int64_t i = 0; i < n; i++) { TA u = pa[i], v = pb[0]; py[i] = (EXPR); }  \
        else if (sa == 0 && sb == 1)                                                      \
            for (int64_t i = 0; i < n; i++) { TA u = pa[0], v = pb[i]; py[i] = (EXPR); }  \
        else                                                                              \
            for (int64_t i = 0; i < n; i++) {                                             \
                TA u = pa[i * sa], v = pb[i * sb];                                        \
                py[i] = (EXPR);                                                           \
            }                                                                             \
    } while (0)

/* ---- binary segments --------------------------------------------------------------- */

#define SEG2_CASE_F32(OP, EXPR) case DC_OP_##OP: SEG2(float, float, EXPR); break;
#define SEG2_CASE_I32(OP, EXPR) case DC_OP_##OP: SEG2(int32_t, int32_t, EXPR); break;

static void seg_arith_f32(dc_op op, const void *const *p, const int64_t *st, void *y, int64_t n) {
    switch (op) {
    DC_SCALAR_F32_BINARY(SEG2_CASE_F32)
    default: abort();
    }
}

static void seg_arith_i32(dc_op op, const void *const *p, const int64_t *st, void *y, int64_t n) {
    switch (op) {
    DC_SCALAR_I32_BINARY(SEG2_CASE_I32)
    default: abort();
    }
}

#define SEG2_CASE_CMP_F32(OP, EXPR) case DC_OP_##OP: SEG2(float, int32_t, EXPR); break;
#define SEG2_CASE_CMP_I32(OP, EXPR) case DC_OP_##OP: SEG2(int32_t, int32_t, EXPR); break;

static void seg_cmp_f32(dc_op op, const void *const *p, const int64_t *st, void *y, int64_t n) {
    switch (op) {
    DC_SCALAR_COMPARE(SEG2_CASE_CMP_F32)
    default: abort();
    }
}

static void seg_cmp_i32(dc_op op, const void *const *p, const int64_t *st, void *y, int64_t n) {
    switch (op) {
    DC_SCALAR_COMPARE(SEG2_CASE_CMP_I32)
    default: abort();
    }
}

/* where(cond, a, b): a and b are moved as 4-byte words, so one loop serves f32 and i32 */
static void seg_where(dc_op op, const void *const *p, const int64_t *st, void *y, int64_t n) {
    (void)op;
    const int32_t *c = p[0];
    const uint32_t *a = p[1], *b = p[2];
    uint32_t *py = y;
    if (st[0] == 1 && st[1] == 1 && st[2] == 1)
        for (int64_t i = 0; i < n; i++) py[i] = c[i] ? a[i] : b[i];
    else
        for (int64_t i = 0; i < n; i++) py[i] = c[i * st[0]] ? a[i * st[1]] : b[i * st[2]];
}

static bool nary(const dc_ref_args *a, seg_fn fn) {
    bcast it;
    int n_ops = a->n->n_in;
    bcast_init(&it, &a->out->type.shape, n_ops, a->in);
    const void *src[MAX_OPS];
    for (int k = 0; k < n_ops; k++) src[k] = a->in[k]->data;
    bcast_run(&it, a->n->op, src, a->out->data, dc_numel(&a->out->type.shape), fn);
    return true;
}

/* ---- unary maps -------------------------------------------------------------------- */

#define MAP(TX, TY, EXPR)                                                                 \
    do {                                                                                  \
        const TX *px = a->in[0]->data;                                           \
        TY *py = a->out->data;                                                   \
        _Pragma("omp parallel for if (n > PAR_MIN)")                                      \
        for (int64_t i = 0; i < n; i++) {                                                 \
            TX v = px[i];                                                                 \
            py[i] = (EXPR);                                                               \
        }                                                                                 \
    } while (0)

#define MAP_CASE_F32(OP, EXPR) case DC_OP_##OP: MAP(float, float, EXPR); break;
#define MAP_CASE_I32(OP, EXPR) case DC_OP_##OP: MAP(int32_t, int32_t, EXPR); break;

static bool unary_f32(const dc_ref_args *a, int64_t n) {
    const float e = a->n->attr.scalar.value;  /* pow exponent */
    switch (a->n->op) {
    DC_SCALAR_F32_UNARY(MAP_CASE_F32)
    default: return false;
    }
    return true;
}

static bool unary_i32(const dc_ref_args *a, int64_t n) {
    switch (a->n->op) {
    DC_SCALAR_I32_UNARY(MAP_CASE_I32)
    default: return false;
    }
    return true;
}

static bool cast(const dc_ref_args *a, int64_t n) {
    dc_dtype from = a->in[0]->type.dtype, to = a->out->type.dtype;
    if (from == DC_F32 && to == DC_I32) MAP(float, int32_t, dc_f32_to_i32(v));
    else if (from == DC_I32 && to == DC_F32) MAP(int32_t, float, (float)v);
    else MAP(uint32_t, uint32_t, v);
    return true;
}

/* ---- dispatch ---------------------------------------------------------------------- */

static bool unsupported(const dc_ref_args *a) {
    const char *dt = a->n->n_in ? dc_dtype_name(a->in[a->n->n_in - 1]->type.dtype) : "";
    snprintf(a->err, a->len, "no ref kernel for %s on %s", dc_op_name(a->n->op), dt);
    return false;
}

bool dc_ref_elementwise(const dc_ref_args *a) {
    dc_op op = a->n->op;
    if (dc_op_get(op)->kind != DC_KIND_ELEMENTWISE) {
        snprintf(a->err, a->len, "no ref kernel for %s", dc_op_name(op));
        return false;
    }
    int64_t n = dc_numel(&a->out->type.shape);
    bool f32 = a->in[a->n->n_in - 1]->type.dtype == DC_F32;
    switch (op) {
    case DC_OP_CAST: return cast(a, n);
    case DC_OP_ADD: case DC_OP_SUB: case DC_OP_MUL: case DC_OP_DIV:
    case DC_OP_MAXIMUM: case DC_OP_MINIMUM:
        return nary(a, f32 ? seg_arith_f32 : seg_arith_i32);
    case DC_OP_STRAIGHT_THROUGH: { /* the value of hard; hard and soft: one f32 shape */
        const float *hard = a->in[0]->data;
        float *y = a->out->data;
#pragma omp parallel for if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = hard[i];
        return true;
    }
    case DC_OP_EQ: case DC_OP_NE: case DC_OP_LT: case DC_OP_LE: case DC_OP_GT: case DC_OP_GE:
        return nary(a, f32 ? seg_cmp_f32 : seg_cmp_i32);
    case DC_OP_WHERE: return nary(a, seg_where);
    default:
        if (f32 ? unary_f32(a, n) : unary_i32(a, n)) return true;
        return unsupported(a);
    }
}
