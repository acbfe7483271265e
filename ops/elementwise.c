/* elementwise.c — the elementwise ops: shape rules, VJPs and reference kernels, side by side.
 * Their scalar formulas are data in ops.def (the form column): the kernels here expand them with
 * ir/formula.h's C primitives, as constant folding and the kernel-IR interpreter do (so a folded
 * constant is bit for bit the kernel's), and the LLVM emitter with its own.
 *
 * The kernels: every MAP op goes through one strided broadcast iterator: operand strides are 0
 * on broadcast dims, adjacent dims that stay contiguous for every operand are merged (so equal
 * shapes become one flat loop), and the innermost loop has unit/zero-stride variants gcc
 * vectorizes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

/* ---- shape rules ---------------------------------------------------------------------- */

/* x -> x's type; f32 only unless the formula takes i32 too */
bool dc_shape_unary(dc_rule *r, dc_type *out) {
    if (dc_op_get(r->n->op)->map != DC_MAP_ANY && !dc_rule_dtype(r, 0, NULL, DC_F32)) return false;
    *out = dc_make_type(r->in[0]->dtype, &r->in[0]->shape);
    return true;
}

/* x -> x's shape, the target dtype */
bool dc_shape_cast(dc_rule *r, dc_type *out) {
    dc_dtype dt = r->n->attr.cast.to;
    if ((unsigned)dt >= DC_NDTYPES) return dc_rule_fail(r, "unknown target dtype %d", (int)dt);
    *out = dc_make_type(dt, &r->in[0]->shape);
    return true;
}

/* a, b of one dtype, broadcast; comparisons give i32 */
bool dc_shape_binary(dc_rule *r, dc_type *out) {
    const dc_type *a = r->in[0], *b = r->in[1];
    dc_map_dtypes m = dc_op_get(r->n->op)->map;
    if (a->dtype != b->dtype)
        return dc_rule_fail(r, "dtypes differ: %s and %s", dc_type_s(a).s, dc_type_s(b).s);
    if (m == DC_MAP_F32 && !dc_rule_dtype(r, 0, NULL, DC_F32)) return false;
    dc_shape s;
    if (!dc_broadcast_shapes(&a->shape, &b->shape, &s))
        return dc_rule_fail(r, "cannot broadcast %s and %s", dc_type_s(a).s, dc_type_s(b).s);
    *out = dc_make_type(m == DC_MAP_CMP ? DC_I32 : a->dtype, &s);
    return true;
}

/* where(cond:i32, a, b): a and b of one dtype, all three broadcast. */
bool dc_shape_where(dc_rule *r, dc_type *out) {
    const dc_type *c = r->in[0], *a = r->in[1], *b = r->in[2];
    if (!dc_rule_dtype(r, 0, "cond", DC_I32)) return false;
    if (a->dtype != b->dtype) return dc_rule_fail(r, "dtypes differ: %s and %s", dc_type_s(a).s, dc_type_s(b).s);
    dc_shape ab, s;
    if (!dc_broadcast_shapes(&a->shape, &b->shape, &ab) || !dc_broadcast_shapes(&c->shape, &ab, &s))
        return dc_rule_fail(r, "cannot broadcast %s, %s and %s", dc_type_s(c).s, dc_type_s(a).s, dc_type_s(b).s);
    *out = dc_make_type(a->dtype, &s);
    return true;
}

/* straight_through(hard, soft): both f32 of one shape, no broadcasting -> hard's type */
bool dc_shape_straight_through(dc_rule *r, dc_type *out) {
    const dc_type *h = r->in[0], *s = r->in[1];
    if (!dc_rule_dtype(r, 0, "hard", DC_F32) || !dc_rule_dtype(r, 1, "soft", DC_F32)) return false;
    if (!dc_shape_eq(&h->shape, &s->shape)) return dc_rule_fail(r, "shapes differ: %s and %s", dc_type_s(h).s, dc_type_s(s).s);
    *out = dc_make_type(DC_F32, &h->shape);
    return true;
}

/* ---- VJPs: dx = dy * f'(x), f' from graph ops, reusing the forward output y ------------- */

#define UNARY_VJP(name, EXPR)                                                                \
    void dc_vjp_##name(dc_ad *a, const dc_node *n, int y, int dy) {                          \
        int x = n->in[0];                                                                    \
        (void)x, (void)y;                                                                    \
        dc_ad_accum(a, x, EXPR);                                                             \
    }

UNARY_VJP(neg, dc_ad_un(a, DC_OP_NEG, dy))
UNARY_VJP(exp, dc_ad_bin(a, DC_OP_MUL, dy, y))
UNARY_VJP(log, dc_ad_bin(a, DC_OP_DIV, dy, x))
UNARY_VJP(sqrt, dc_ad_bin(a, DC_OP_DIV, dc_ad_mul_s(a, dy, 0.5f), y))
/* d/dx x^-1/2 = -1/2 y^3 */
UNARY_VJP(rsqrt, dc_ad_bin(a, DC_OP_MUL, dc_ad_mul_s(a, dy, -0.5f), dc_ad_bin(a, DC_OP_MUL, dc_ad_un(a, DC_OP_SQUARE, y), y)))
UNARY_VJP(square, dc_ad_bin(a, DC_OP_MUL, dc_ad_mul_s(a, dy, 2.0f), x))
UNARY_VJP(sin, dc_ad_bin(a, DC_OP_MUL, dy, dc_ad_un(a, DC_OP_COS, x)))
UNARY_VJP(cos, dc_ad_bin(a, DC_OP_MUL, dy, dc_ad_un(a, DC_OP_NEG, dc_ad_un(a, DC_OP_SIN, x))))
/* 1 - y^2 */
UNARY_VJP(tanh, dc_ad_bin(a, DC_OP_MUL, dy, dc_ad_bin(a, DC_OP_SUB, dc_ad_scalar(a, 1.0f), dc_ad_un(a, DC_OP_SQUARE, y))))
/* y (1 - y) */
UNARY_VJP(sigmoid, dc_ad_bin(a, DC_OP_MUL, dy, dc_ad_bin(a, DC_OP_MUL, y, dc_ad_bin(a, DC_OP_SUB, dc_ad_scalar(a, 1.0f), y))))
/* kink: relu'(0) = 0 */
UNARY_VJP(relu, dc_ad_where0(a, dc_ad_bin(a, DC_OP_GT, x, dc_ad_scalar(a, 0.0f)), dy, true))
/* sigmoid(x) */
UNARY_VJP(softplus, dc_ad_bin(a, DC_OP_MUL, dy, dc_ad_un(a, DC_OP_SIGMOID, x)))
/* f32 -> f32; casts from or to i32 carry no gradient (i32 values take none) */
UNARY_VJP(cast, dy)

/* sign(x) dy; abs'(0) = 0 */
void dc_vjp_abs(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x = n->in[0], z = dc_ad_scalar(a, 0.0f);
    int pos = dc_ad_to_f32(a, dc_ad_bin(a, DC_OP_GT, x, z)), neg = dc_ad_to_f32(a, dc_ad_bin(a, DC_OP_LT, x, z));
    dc_ad_accum(a, x, dc_ad_bin(a, DC_OP_MUL, dy, dc_ad_bin(a, DC_OP_SUB, pos, neg)));
}

/* x^e: e x^(e-1); e == 0 contributes nothing (avoids 0 * x^-1 at x = 0) */
void dc_vjp_pow(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x = n->in[0];
    float e = n->attr.scalar.value;
    if (e == 0.0f) return;
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.scalar.value = e - 1.0f;
    dc_ad_accum(a, x, dc_ad_bin(a, DC_OP_MUL, dc_ad_mul_s(a, dy, e), dc_ad_emit(a, DC_OP_POW, 1, &x, &at, NULL)));
}

/* s (1 + x (1 - s)), s = sigmoid(x) */
void dc_vjp_silu(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x = n->in[0];
    int s = dc_ad_un(a, DC_OP_SIGMOID, x);
    int one_s = dc_ad_bin(a, DC_OP_SUB, dc_ad_scalar(a, 1.0f), s);
    int t = dc_ad_bin(a, DC_OP_ADD, dc_ad_scalar(a, 1.0f), dc_ad_bin(a, DC_OP_MUL, x, one_s));
    dc_ad_accum(a, x, dc_ad_bin(a, DC_OP_MUL, dy, dc_ad_bin(a, DC_OP_MUL, s, t)));
}

/* y = x/2 (1 + t), t = tanh(c (x + k x^3)) */
void dc_vjp_gelu(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    const float c = 0.7978845608028654f, k = 0.044715f;
    int x = n->in[0];
    int x2 = dc_ad_un(a, DC_OP_SQUARE, x);
    int u = dc_ad_mul_s(a, dc_ad_bin(a, DC_OP_ADD, x, dc_ad_mul_s(a, dc_ad_bin(a, DC_OP_MUL, x, x2), k)), c);
    int t = dc_ad_un(a, DC_OP_TANH, u);
    int half = dc_ad_mul_s(a, dc_ad_bin(a, DC_OP_ADD, dc_ad_scalar(a, 1.0f), t), 0.5f);
    int du = dc_ad_mul_s(a, dc_ad_bin(a, DC_OP_ADD, dc_ad_scalar(a, 1.0f), dc_ad_mul_s(a, x2, 3.0f * k)), c);
    int dt = dc_ad_bin(a, DC_OP_SUB, dc_ad_scalar(a, 1.0f), dc_ad_un(a, DC_OP_SQUARE, t));
    int rest = dc_ad_mul_s(a, dc_ad_bin(a, DC_OP_MUL, x, dc_ad_bin(a, DC_OP_MUL, dt, du)), 0.5f);
    dc_ad_accum(a, x, dc_ad_bin(a, DC_OP_MUL, dy, dc_ad_bin(a, DC_OP_ADD, half, rest)));
}

/* Binary ops with broadcasting: each operand's share d0, d1 (computed only for an operand
 * that takes a gradient), summed back to its shape. */
#define BINARY_VJP(name, D0, D1)                                                             \
    void dc_vjp_##name(dc_ad *a, const dc_node *n, int y, int dy) {                          \
        int x0 = n->in[0], x1 = n->in[1];                                                    \
        (void)y;                                                                             \
        bool w0 = dc_ad_wants(a, x0), w1 = dc_ad_wants(a, x1);                               \
        int d0 = w0 ? (D0) : -1, d1 = w1 ? (D1) : -1;                                        \
        if (w0) dc_ad_accum(a, x0, dc_ad_unbroadcast(a, d0, &dc_ad_type(a, x0)->shape));     \
        if (w1) dc_ad_accum(a, x1, dc_ad_unbroadcast(a, d1, &dc_ad_type(a, x1)->shape));     \
    }

BINARY_VJP(add, dy, dy)
BINARY_VJP(sub, dy, dc_ad_un(a, DC_OP_NEG, dy))
BINARY_VJP(mul, dc_ad_bin(a, DC_OP_MUL, dy, x1), dc_ad_bin(a, DC_OP_MUL, dy, x0))
/* d a = dy / b; d b = -dy y / b */
BINARY_VJP(div, dc_ad_bin(a, DC_OP_DIV, dy, x1),
           dc_ad_un(a, DC_OP_NEG, dc_ad_bin(a, DC_OP_DIV, dc_ad_bin(a, DC_OP_MUL, dy, y), x1)))

/* maximum/minimum send the gradient to the operand the forward selected: a strictly larger
 * (smaller) a gets it, a tie goes to b (the forward returns b on ties) */
static void vjp_select(dc_ad *a, const dc_node *n, int dy, dc_op a_wins) {
    int x0 = n->in[0], x1 = n->in[1];
    bool w0 = dc_ad_wants(a, x0), w1 = dc_ad_wants(a, x1);
    int m = dc_ad_bin(a, a_wins, x0, x1);
    int d0 = w0 ? dc_ad_where0(a, m, dy, true) : -1, d1 = w1 ? dc_ad_where0(a, m, dy, false) : -1;
    if (w0) dc_ad_accum(a, x0, dc_ad_unbroadcast(a, d0, &dc_ad_type(a, x0)->shape));
    if (w1) dc_ad_accum(a, x1, dc_ad_unbroadcast(a, d1, &dc_ad_type(a, x1)->shape));
}

void dc_vjp_maximum(dc_ad *a, const dc_node *n, int y, int dy) { (void)y; vjp_select(a, n, dy, DC_OP_GT); }
void dc_vjp_minimum(dc_ad *a, const dc_node *n, int y, int dy) { (void)y; vjp_select(a, n, dy, DC_OP_LT); }

/* where(c, a, b): the adjoint routed by the condition */
void dc_vjp_where(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int c = n->in[0], x = n->in[1], z = n->in[2];
    if (dc_ad_wants(a, x)) dc_ad_accum(a, x, dc_ad_unbroadcast(a, dc_ad_where0(a, c, dy, true), &dc_ad_type(a, x)->shape));
    if (dc_ad_wants(a, z)) dc_ad_accum(a, z, dc_ad_unbroadcast(a, dc_ad_where0(a, c, dy, false), &dc_ad_type(a, z)->shape));
}

/* straight_through(hard, soft): the whole adjoint goes to soft, none to hard (the Gumbel-softmax
 * straight-through estimator) */
void dc_vjp_straight_through(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    dc_ad_accum(a, n->in[1], dy);
}

/* ---- reference kernels ---------------------------------------------------------------- */

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
 * out at n contiguous outputs. */
typedef void (*seg_fn)(const dc_ref_args *a, const void *const *p, const int64_t *st, void *out, int64_t n);

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
static void bcast_run(const bcast *it, const dc_ref_args *a, const void *const *src, void *dst,
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
            for (int k = it->n_ops; k < MAX_OPS; k++) p[k] = p[0], st[k] = 0;
            fn(a, p, st, (char *)dst + 4 * i, n);
            i += n;
        }
    }
}

/* out[i] = the formula with x = p0[i*s0], y = p1[i*s1], z = p2[i*s2] (operands past the op's
 * arity are operand 0 again, with stride 0: unused, so their loads are dead); unit and zero
 * strides of x and y get their own loops. No `restrict`: the memory planner may run an op in
 * place (out == p0), reading each element before writing it. */
#define SEG(T, TR, EXPR)                                                                  \
    do {                                                                                  \
        const T *p0 = p[0], *p1 = p[1], *p2 = p[2];                                       \
        TR *o = out;                                                                      \
        int64_t s0 = st[0], s1 = st[1], s2 = st[2];                                       \
        if (s0 == 1 && s1 == 1)                                                           \
            for (int64_t i = 0; i < n; i++) {                                             \
                T x = p0[i], y = p1[i], z = p2[i * s2];                                   \
                (void)x, (void)y, (void)z;                                                \
                o[i] = (EXPR);                                                            \
            }                                                                             \
        else if (s0 == 1 && s1 == 0)                                                      \
            for (int64_t i = 0; i < n; i++) {                                             \
                T x = p0[i], y = p1[0], z = p2[i * s2];                                   \
                (void)x, (void)y, (void)z;                                                \
                o[i] = (EXPR);                                                            \
            }                                                                             \
        else if (s0 == 0 && s1 == 1)                                                      \
            for (int64_t i = 0; i < n; i++) {                                             \
                T x = p0[0], y = p1[i], z = p2[i * s2];                                   \
                (void)x, (void)y, (void)z;                                                \
                o[i] = (EXPR);                                                            \
            }                                                                             \
        else                                                                              \
            for (int64_t i = 0; i < n; i++) {                                             \
                T x = p0[i * s0], y = p1[i * s1], z = p2[i * s2];                         \
                (void)x, (void)y, (void)z;                                                \
                o[i] = (EXPR);                                                            \
            }                                                                             \
    } while (0)

#include "ir/formula.h"

/* One segment of MAP op a->n->op: its ops.def formula expanded for the operands' dtype. */
static void seg_map(const dc_ref_args *a, const void *const *p, const int64_t *st, void *out, int64_t n) {
    const float e = a->n->attr.scalar.value; /* pow's exponent */
    bool f32 = a->in[0]->type.dtype == DC_F32;
    (void)e;
#define F32(f) if (f32) SEG(float, float, f); else abort(); /* the shape rule admits f32 only */
#define ANY(f) if (f32) SEG(float, float, f); else SEG(int32_t, int32_t, f);
#define CMP(f) if (f32) SEG(float, int32_t, f); else SEG(int32_t, int32_t, f);
    switch (a->n->op) {
#define DC_OP DC_FORM_CASE
#include "ir/ops.def"
#undef DC_OP
    default: abort(); /* dc_ref_map admits MAP ops only */
    }
#undef F32
#undef ANY
#undef CMP
}

static bool nary(const dc_ref_args *a, seg_fn fn) {
    bcast it;
    int n_ops = a->n->n_in;
    bcast_init(&it, &a->out->type.shape, n_ops, a->in);
    const void *src[MAX_OPS];
    for (int k = 0; k < MAX_OPS; k++) src[k] = a->in[k < n_ops ? k : 0]->data;
    bcast_run(&it, a, src, a->out->data, dc_numel(&a->out->type.shape), fn);
    return true;
}

bool dc_ref_map(const dc_ref_args *a) { return nary(a, seg_map); }

/* where(cond, a, b): a and b are moved as 4-byte words, so one loop serves f32 and i32 */
static void seg_where(const dc_ref_args *a, const void *const *p, const int64_t *st, void *out, int64_t n) {
    (void)a;
    const int32_t *c = p[0];
    const uint32_t *u = p[1], *v = p[2];
    uint32_t *o = out;
    if (st[0] == 1 && st[1] == 1 && st[2] == 1)
        for (int64_t i = 0; i < n; i++) o[i] = c[i] ? u[i] : v[i];
    else
        for (int64_t i = 0; i < n; i++) o[i] = c[i * st[0]] ? u[i * st[1]] : v[i * st[2]];
}

bool dc_ref_where(const dc_ref_args *a) { return nary(a, seg_where); }

bool dc_ref_cast(const dc_ref_args *a) {
    dc_dtype from = a->in[0]->type.dtype, to = a->out->type.dtype;
    const dc_scalar *x = a->in[0]->data;
    dc_scalar *y = a->out->data;
    int64_t n = dc_numel(&a->out->type.shape);
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = dc_cast_eval(from, to, x[i]);
    return true;
}
