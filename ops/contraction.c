/* contraction.c — the contractions: shape rules, VJPs and reference kernels of matmul
 * (batched, numpy broadcast of batch dims, transpose flags), linear, conv2d (NHWC x HWIO,
 * stride, symmetric zero padding, groups) and its two gradients (w.r.t. input and weight),
 * avg_pool and nearest upsample, and the fused contractions. The ref kernels are the oracle and
 * the fallback, so the loops are laid out for gcc's vectorizer: the innermost loop always runs
 * contiguously over the output's last dim. Every output element accumulates its terms in one
 * fixed order (k ascending; kh, kw, c ascending), so results do not depend on the number of
 * threads. */
#include "ops/ops.h"

#include <stdlib.h>
#include <string.h>

/* ---- shape rules ----------------------------------------------------------------------- */

/* a [...,M,K] (or [...,K,M]), b [...,K,N] (or [...,N,K]) -> [broadcast(...),M,N]: the
 * product of inputs 0 and 1 (matmul and fused_matmul) */
static bool matmul_type(dc_rule *r, bool ta, bool tb, dc_type *out) {
    const dc_type *a = r->in[0], *b = r->in[1];
    if (!dc_rule_dtype(r, 0, "a", DC_F32) || !dc_rule_dtype(r, 1, "b", DC_F32)) return false;
    if (!dc_rule_min_rank(r, 0, "a", 2) || !dc_rule_min_rank(r, 1, "b", 2)) return false;
    int ra = a->shape.rank, rb = b->shape.rank;
    int64_t m = a->shape.dim[ra - (ta ? 1 : 2)], ka = a->shape.dim[ra - (ta ? 2 : 1)];
    int64_t kb = b->shape.dim[rb - (tb ? 1 : 2)], nn = b->shape.dim[rb - (tb ? 2 : 1)];
    if (ka != kb)
        return dc_rule_fail(r, "inner dimensions differ: a has K=%lld, b has K=%lld", (long long)ka, (long long)kb);
    dc_shape ba = { .rank = ra - 2 }, bb = { .rank = rb - 2 }, s;
    memcpy(ba.dim, a->shape.dim, sizeof(int64_t) * (size_t)(ra - 2));
    memcpy(bb.dim, b->shape.dim, sizeof(int64_t) * (size_t)(rb - 2));
    if (!dc_broadcast_shapes(&ba, &bb, &s))
        return dc_rule_fail(r, "cannot broadcast batch dimensions of %s and %s", dc_type_s(a).s, dc_type_s(b).s);
    s.dim[s.rank++] = m; /* batch rank <= max(ra, rb) - 2: the result fits */
    s.dim[s.rank++] = nn;
    *out = dc_make_type(DC_F32, &s);
    return true;
}

bool dc_shape_matmul(dc_rule *r, dc_type *out) {
    return matmul_type(r, r->n->attr.matmul.trans_a, r->n->attr.matmul.trans_b, out);
}

/* x [...,I], w [I,O], b [O] -> [...,O] */
bool dc_shape_linear(dc_rule *r, dc_type *out) {
    const dc_type *x = r->in[0], *w = r->in[1], *b = r->in[2];
    if (!dc_rule_dtype(r, 0, "x", DC_F32) || !dc_rule_dtype(r, 1, "weight", DC_F32) ||
        !dc_rule_dtype(r, 2, "bias", DC_F32))
        return false;
    if (!dc_rule_min_rank(r, 0, "x", 1) || !dc_rule_rank(r, 1, "weight", 2, " ([in,out])") ||
        !dc_rule_rank(r, 2, "bias", 1, ""))
        return false;
    int64_t in = x->shape.dim[x->shape.rank - 1];
    if (w->shape.dim[0] != in)
        return dc_rule_fail(r, "x has %lld features, weight expects %lld", (long long)in, (long long)w->shape.dim[0]);
    if (b->shape.dim[0] != w->shape.dim[1])
        return dc_rule_fail(r, "bias has %lld entries, weight has %lld outputs", (long long)b->shape.dim[0],
                    (long long)w->shape.dim[1]);
    dc_shape s = x->shape;
    s.dim[s.rank - 1] = w->shape.dim[1];
    *out = dc_make_type(DC_F32, &s);
    return true;
}

/* x [N,H,W,C], w [KH,KW,C/groups,O] -> [N,OH,OW,O]: the conv2d of inputs 0 and 1 under a
 * (conv2d and fused_conv2d) */
static bool conv2d_type(dc_rule *r, const dc_conv_attr *a, dc_type *out) {
    const dc_type *x = r->in[0], *w = r->in[1];
    if (!dc_rule_dtype(r, 0, "input", DC_F32) || !dc_rule_dtype(r, 1, "weight", DC_F32)) return false;
    if (!dc_rule_rank(r, 0, "input", 4, " (NHWC)") || !dc_rule_rank(r, 1, "weight", 4, " (HWIO)"))
        return false;
    if (a->stride.n != 2) return dc_rule_fail(r, "stride needs 2 entries [h,w], got %d", a->stride.n);
    if (a->pad.n != 2) return dc_rule_fail(r, "pad needs 2 entries [h,w], got %d", a->pad.n);
    if (a->stride.v[0] < 1 || a->stride.v[1] < 1)
        return dc_rule_fail(r, "stride must be >= 1, got %s", dc_ints_s(&a->stride).s);
    if (a->pad.v[0] < 0 || a->pad.v[1] < 0 || a->pad.v[0] > DC_MAX_NUMEL || a->pad.v[1] > DC_MAX_NUMEL)
        return dc_rule_fail(r, "pad must be in [0, 2^40], got %s", dc_ints_s(&a->pad).s);
    int64_t g = a->groups;
    if (g < 1) return dc_rule_fail(r, "groups must be >= 1, got %lld", (long long)g);
    const int64_t *xd = x->shape.dim, *wd = w->shape.dim;
    int64_t want_c;
    if (__builtin_mul_overflow(wd[2], g, &want_c) || want_c > DC_MAX_NUMEL)
        return dc_rule_fail(r, "groups=%lld times weight's %lld channels is too large", (long long)g,
                    (long long)wd[2]);
    if (xd[3] != want_c)
        return dc_rule_fail(r, "input has %lld channels, weight expects %lld", (long long)xd[3],
                    (long long)want_c);
    if (wd[3] % g != 0)
        return dc_rule_fail(r, "%lld output channels not divisible by groups=%lld", (long long)wd[3], (long long)g);
    int64_t ph = xd[1] + 2 * a->pad.v[0], pw = xd[2] + 2 * a->pad.v[1];
    if (wd[0] > ph || wd[1] > pw)
        return dc_rule_fail(r, "kernel %lldx%lld larger than padded input %lldx%lld", (long long)wd[0],
                    (long long)wd[1], (long long)ph, (long long)pw);
    dc_shape s = { .rank = 4, .dim = { xd[0], (ph - wd[0]) / a->stride.v[0] + 1,
                                       (pw - wd[1]) / a->stride.v[1] + 1, wd[3] } };
    *out = dc_make_type(DC_F32, &s);
    return true;
}

bool dc_shape_conv2d(dc_rule *r, dc_type *out) { return conv2d_type(r, &r->n->attr.conv, out); }

/* The epilogue of a fused contraction whose contraction gives y: n_in = 2 + bias + residual,
 * act a known activation, bias f32 [O] with O y's last dim, residual f32 of y's type, result
 * 0 (the epilogue's value) or, with an activation, 1 (the pre-activation; both have y's
 * type). */
static bool epilogue_type(dc_rule *r, dc_activation act, bool bias, bool residual, int64_t result, const dc_type *y) {
    int want = 2 + bias + residual;
    if (result != 0 && result != 1)
        return dc_rule_fail(r, "result must be 0 (the epilogue's value) or 1 (the pre-activation), got %lld",
                            (long long)result);
    if (result == 1 && act == DC_ACTIVATION_NONE) return dc_rule_fail(r, "result 1 (the pre-activation) needs an activation");
    if (r->n->n_in != want)
        return dc_rule_fail(r, "bias=%s, residual=%s need %d inputs, got %d", bias ? "true" : "false",
                    residual ? "true" : "false", want, r->n->n_in);
    if ((unsigned)act >= DC_NACTIVATIONS) return dc_rule_fail(r, "unknown activation %d", (int)act);
    int64_t o = y->shape.dim[y->shape.rank - 1];
    if (bias) {
        if (!dc_rule_dtype(r, 2, "bias", DC_F32) || !dc_rule_rank(r, 2, "bias", 1, "")) return false;
        if (r->in[2]->shape.dim[0] != o)
            return dc_rule_fail(r, "bias has %lld entries, the result has %lld channels",
                        (long long)r->in[2]->shape.dim[0], (long long)o);
    }
    if (residual && !dc_type_eq(r->in[want - 1], y))
        return dc_rule_fail(r, "residual must have the result's type %s, got %s", dc_type_s(y).s, dc_type_s(r->in[want - 1]).s);
    return true;
}

/* fused_conv2d(x, w [, bias] [, residual]) -> conv2d's result */
bool dc_shape_fused_conv2d(dc_rule *r, dc_type *out) {
    const dc_fused_conv_attr *f = &r->n->attr.fused_conv;
    dc_conv_attr a;
    memset(&a, 0, sizeof a);
    a.stride = f->stride;
    a.pad = f->pad;
    a.groups = f->groups;
    if (r->n->n_in < 2) return dc_rule_fail(r, "expects at least 2 inputs, got %d", r->n->n_in);
    return conv2d_type(r, &a, out) && epilogue_type(r, f->act, f->bias, f->residual, f->result, out);
}

/* fused_matmul(a, b [, bias] [, residual]) -> matmul's result */
bool dc_shape_fused_matmul(dc_rule *r, dc_type *out) {
    const dc_fused_matmul_attr *f = &r->n->attr.fused_matmul;
    if (r->n->n_in < 2) return dc_rule_fail(r, "expects at least 2 inputs, got %d", r->n->n_in);
    return matmul_type(r, f->trans_a, f->trans_b, out) &&
           epilogue_type(r, f->act, f->bias, f->residual, f->result, out);
}

/* conv2d_bwd_data(dy, w) : declared x [N,H,W,C]; conv2d_bwd_weight(x, dy) : declared
 * w [KH,KW,C/groups,O]. conv2d of x and w (one of them the declared type) must give dy. */
bool dc_shape_conv2d_bwd(dc_rule *r, dc_type *out) {
    bool data = r->n->op == DC_OP_CONV2D_BWD_DATA;
    const dc_type *dy = r->in[data ? 0 : 1], *d = &r->n->type;
    if (!dc_rule_dtype(r, data ? 0 : 1, "dy", DC_F32) || !dc_rule_declared_f32(r)) return false;
    dc_rule fwd = *r; /* the forward conv2d's rule on (x, w) */
    fwd.in[0] = data ? d : r->in[0];
    fwd.in[1] = data ? r->in[1] : d;
    dc_type y;
    if (!dc_shape_conv2d(&fwd, &y)) return false;
    if (!dc_type_eq(&y, dy))
        return dc_rule_fail(r, "conv2d of input %s and weight %s gives %s, but dy is %s", dc_type_s(fwd.in[0]).s,
                    dc_type_s(fwd.in[1]).s, dc_type_s(&y).s, dc_type_s(dy).s);
    *out = dc_make_type(DC_F32, &d->shape);
    return true;
}

/* avg_pool: [N,H,W,C] -> [N,H/f,W/f,C]; upsample: -> [N,H*f,W*f,C] */
bool dc_shape_pool(dc_rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    int64_t f = r->n->attr.pool.factor;
    if (!dc_rule_dtype(r, 0, NULL, DC_F32) || !dc_rule_rank(r, 0, "input", 4, " (NHWC)")) return false;
    if (f < 1 || f > DC_MAX_NUMEL) return dc_rule_fail(r, "factor must be in [1, 2^40], got %lld", (long long)f);
    dc_shape s = x->shape;
    if (r->n->op == DC_OP_AVG_POOL) {
        if (s.dim[1] % f || s.dim[2] % f)
            return dc_rule_fail(r, "spatial size %lldx%lld not divisible by factor %lld", (long long)s.dim[1],
                        (long long)s.dim[2], (long long)f);
        s.dim[1] /= f;
        s.dim[2] /= f;
    } else {
        s.dim[1] *= f; /* both <= 2^40: no int64 overflow; the numel check catches the rest */
        s.dim[2] *= f;
    }
    *out = dc_make_type(DC_F32, &s);
    return true;
}

/* ---- VJPs ------------------------------------------------------------------------------ */

static int matmul_node(dc_ad *a, int x, int y, bool ta, bool tb) {
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.matmul.trans_a = ta;
    at.matmul.trans_b = tb;
    return dc_ad_emit(a, DC_OP_MATMUL, 2, (int[]){ x, y }, &at, NULL);
}

/* y = op(a) op(b): dA = dy B^T, dB = A^T dy, transposed back when the operand was, and summed
 * over the batch axes it was broadcast along */
void dc_vjp_matmul(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x0 = n->in[0], x1 = n->in[1];
    bool ta = n->attr.matmul.trans_a, tb = n->attr.matmul.trans_b;
    if (dc_ad_wants(a, x0)) {
        int d = ta ? matmul_node(a, x1, dy, tb, true) : matmul_node(a, dy, x1, false, !tb);
        dc_ad_accum(a, x0, dc_ad_unbroadcast(a, d, &dc_ad_type(a, x0)->shape));
    }
    if (dc_ad_wants(a, x1)) {
        int d = tb ? matmul_node(a, dy, x0, true, ta) : matmul_node(a, x0, dy, !ta, false);
        dc_ad_accum(a, x1, dc_ad_unbroadcast(a, d, &dc_ad_type(a, x1)->shape));
    }
}

/* y = x w + b with x [...,I] seen as 2-D [rows, I] */
void dc_vjp_linear(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x = n->in[0], w = n->in[1], b = n->in[2];
    const dc_shape *xs = &dc_ad_type(a, x)->shape, *ws = &dc_ad_type(a, w)->shape;
    int64_t in = ws->dim[0], out = ws->dim[1], rows = dc_numel(xs) / in;
    dc_shape s2 = { .rank = 2, .dim = { rows, out } }, x2s = { .rank = 2, .dim = { rows, in } };
    int dy2 = dc_ad_reshape(a, dy, &s2);
    if (dc_ad_wants(a, x)) dc_ad_accum(a, x, dc_ad_reshape(a, matmul_node(a, dy2, w, false, true), xs));
    if (dc_ad_wants(a, w)) dc_ad_accum(a, w, matmul_node(a, dc_ad_reshape(a, x, &x2s), dy2, true, false));
    if (dc_ad_wants(a, b)) dc_ad_accum(a, b, dc_ad_sum_axes(a, dy2, &(dc_ints){ .n = 1, .v = { 0 } }, false));
}

/* conv2d through its two backward ops */
void dc_vjp_conv2d(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x = n->in[0], w = n->in[1];
    if (dc_ad_wants(a, x))
        dc_ad_accum(a, x, dc_ad_emit(a, DC_OP_CONV2D_BWD_DATA, 2, (int[]){ dy, w }, &n->attr, dc_ad_type(a, x)));
    if (dc_ad_wants(a, w))
        dc_ad_accum(a, w, dc_ad_emit(a, DC_OP_CONV2D_BWD_WEIGHT, 2, (int[]){ x, dy }, &n->attr, dc_ad_type(a, w)));
}

/* avg_pool: dy upsampled / f^2; upsample (nearest): the f x f window sums = avg_pool * f^2 */
void dc_vjp_pool(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    float f2 = (float)(n->attr.pool.factor * n->attr.pool.factor);
    bool avg = n->op == DC_OP_AVG_POOL;
    int d = dc_ad_emit(a, avg ? DC_OP_UPSAMPLE : DC_OP_AVG_POOL, 1, &dy, &n->attr, NULL);
    dc_ad_accum(a, n->in[0], dc_ad_mul_s(a, d, avg ? 1.0f / f2 : f2));
}

/* ---- reference kernels ----------------------------------------------------------------- */
/* cache blocking of the GEMM: MB rows of C share each KB x NB tile of B */
#define MB 8
#define KB 128
#define NB 512
/* below this many multiply-adds a kernel runs on one thread */
#define PAR_MIN_WORK 32768

static void *scratch(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) abort(); /* out of memory */
    return p;
}

/* ---- matmul --------------------------------------------------------------------------- */

/* c[i0:i1, j0:j1] += a[M,K] @ b[K,N] restricted to that tile, blocked over k. For each
 * c[i,j] the products are added in k order 0..K-1 whatever the blocking. */
static void gemm_tile(const float *restrict a, const float *restrict b, float *restrict c,
                      int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, int64_t N) {
    for (int64_t k0 = 0; k0 < K; k0 += KB) {
        int64_t k1 = k0 + KB < K ? k0 + KB : K;
        for (int64_t i = i0; i < i1; i++) {
            float *restrict ci = c + i * N;
            for (int64_t k = k0; k < k1; k++) {
                float aik = a[i * K + k];
                const float *restrict bk = b + k * N;
                #pragma omp simd
                for (int64_t j = j0; j < j1; j++) ci[j] += aik * bk[j];
            }
        }
    }
}

/* The tiles of an [M, N] product: MB x NB each, numbered row-block major. */
typedef struct { int64_t mblocks, nblocks; } tiling;

static tiling tiles_of(int64_t M, int64_t N) {
    return (tiling){ (M + MB - 1) / MB, (N + NB - 1) / NB };
}

/* Bounds of tile t (within one matrix) of an [M, N] product. */
static void tile_bounds(tiling tl, int64_t t, int64_t M, int64_t N, int64_t *i0, int64_t *i1,
                        int64_t *j0, int64_t *j1) {
    *i0 = (t / tl.nblocks) * MB;
    *j0 = (t % tl.nblocks) * NB;
    *i1 = *i0 + MB < M ? *i0 + MB : M;
    *j1 = *j0 + NB < N ? *j0 + NB : N;
}

/* dst[cols, rows] = transpose of src[rows, cols], for `count` matrices back to back */
static void transpose_batch(const float *src, float *dst, int64_t count, int64_t rows,
                            int64_t cols) {
    #pragma omp parallel for schedule(static) if (count * rows * cols > PAR_MIN_WORK)
    for (int64_t m = 0; m < count; m++) {
        const float *s = src + m * rows * cols;
        float *d = dst + m * rows * cols;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t q = 0; q < cols; q++) d[q * rows + r] = s[r * cols + q];
    }
}

/* The offset, in matrices, of the operand matrix that output batch index `bi` reads:
 * batch dims of the operand (rank - 2 of them) are right-aligned against the output's
 * and broadcast where they are 1. */
static int64_t batch_offset(const dc_shape *op, const dc_shape *out, int64_t bi) {
    int nb_out = out->rank - 2, nb_op = op->rank - 2;
    int64_t off = 0, stride = 1;
    for (int d = nb_out - 1; d >= 0; d--) {
        int64_t idx = bi % out->dim[d];
        bi /= out->dim[d];
        int dop = d - (nb_out - nb_op);
        if (dop < 0) continue;
        if (op->dim[dop] != 1) off += idx * stride;
        stride *= op->dim[dop];
    }
    return off;
}

/* c[batch, M, N] = a @ b with a and b already in [.., M, K] and [.., K, N] layout; one
 * task per (batch, tile) */
static void batched_gemm(const float *a, const dc_shape *sa, const float *b, const dc_shape *sb,
                         float *c, const dc_shape *sc, int64_t M, int64_t K, int64_t N) {
    int64_t batch = dc_numel(sc) / (M * N);
    tiling tl = tiles_of(M, N);
    int64_t per = tl.mblocks * tl.nblocks;
    memset(c, 0, (size_t)(batch * M * N) * sizeof(float));
    #pragma omp parallel for schedule(static) if (batch * M * N * K > PAR_MIN_WORK)
    for (int64_t t = 0; t < batch * per; t++) {
        int64_t bi = t / per, i0, i1, j0, j1;
        tile_bounds(tl, t % per, M, N, &i0, &i1, &j0, &j1);
        const float *ab = a + batch_offset(sa, sc, bi) * M * K;
        const float *bb = b + batch_offset(sb, sc, bi) * K * N;
        gemm_tile(ab, bb, c + bi * M * N, i0, i1, j0, j1, K, N);
    }
}

/* matmul: a [..., M, K] ([..., K, M] if trans_a), b [..., K, N] ([..., N, K] if trans_b)
 * -> [..., M, N]; transposed operands are packed into [M, K] / [K, N] scratch first. */
bool dc_ref_matmul(const dc_ref_args *a) {
    const dc_tensor *x = a->in[0], *y = a->in[1];
    const dc_matmul_attr *at = &a->n->attr.matmul;
    const dc_shape *sx = &x->type.shape, *sy = &y->type.shape, *so = &a->out->type.shape;
    int64_t M = so->dim[so->rank - 2], N = so->dim[so->rank - 1];
    int64_t K = at->trans_b ? sy->dim[sy->rank - 1] : sy->dim[sy->rank - 2];
    const float *pa = x->data, *pb = y->data;
    float *ta = NULL, *tb = NULL;
    if (at->trans_a) {
        ta = scratch((size_t)dc_numel(sx) * sizeof(float));
        transpose_batch(pa, ta, dc_numel(sx) / (M * K), K, M);
        pa = ta;
    }
    if (at->trans_b) {
        tb = scratch((size_t)dc_numel(sy) * sizeof(float));
        transpose_batch(pb, tb, dc_numel(sy) / (K * N), N, K);
        pb = tb;
    }
    batched_gemm(pa, sx, pb, sy, a->out->data, so, M, K, N);
    free(ta);
    free(tb);
    return true;
}

/* linear: x [..., I] @ w [I, O] + b [O] -> [..., O]; the bias is added after the sum */
bool dc_ref_linear(const dc_ref_args *a) {
    const dc_shape *sw = &a->in[1]->type.shape;
    int64_t I = sw->dim[0], O = sw->dim[1];
    int64_t rows = dc_numel(&a->in[0]->type.shape) / I;
    const float *x = a->in[0]->data, *w = a->in[1]->data, *bias = a->in[2]->data;
    float *out = a->out->data;
    tiling tl = tiles_of(rows, O);
    memset(out, 0, (size_t)(rows * O) * sizeof(float));
    #pragma omp parallel for schedule(static) if (rows * I * O > PAR_MIN_WORK)
    for (int64_t t = 0; t < tl.mblocks * tl.nblocks; t++) {
        int64_t i0, i1, j0, j1;
        tile_bounds(tl, t, rows, O, &i0, &i1, &j0, &j1);
        gemm_tile(x, w, out, i0, i1, j0, j1, I, O);
        for (int64_t i = i0; i < i1; i++)
            #pragma omp simd
            for (int64_t o = j0; o < j1; o++) out[i * O + o] += bias[o];
    }
    return true;
}

/* ---- conv2d and sampling --------------------------------------------------------------- */

/* conv2d: x [N,H,W,C] * w [KH,KW,C/G,O] -> out [N,OH,OW,O]; output channel o reads the input
 * channels of group o / (O/G). One (n, oh) output row per task; for each output pixel the
 * innermost loop runs over that group's output channels, contiguous in w and in out. */
bool dc_ref_conv2d(const dc_ref_args *a) {
    const dc_shape *sx = &a->in[0]->type.shape, *sw = &a->in[1]->type.shape;
    const dc_shape *so = &a->out->type.shape;
    const dc_conv_attr *at = &a->n->attr.conv;
    int64_t N = sx->dim[0], H = sx->dim[1], W = sx->dim[2], C = sx->dim[3];
    int64_t KH = sw->dim[0], KW = sw->dim[1], CG = sw->dim[2], O = sw->dim[3];
    int64_t OH = so->dim[1], OW = so->dim[2], G = at->groups, OG = O / G;
    int64_t sh = at->stride.v[0], sww = at->stride.v[1], ph = at->pad.v[0], pw = at->pad.v[1];
    const float *x = a->in[0]->data, *w = a->in[1]->data;
    float *out = a->out->data;
    #pragma omp parallel for schedule(static) if (N * OH * OW * KH * KW * CG * O > PAR_MIN_WORK)
    for (int64_t t = 0; t < N * OH; t++) {
        int64_t n = t / OH, oh = t % OH;
        for (int64_t ow = 0; ow < OW; ow++) {
            float *restrict acc = out + ((n * OH + oh) * OW + ow) * O;
            memset(acc, 0, (size_t)O * sizeof(float));
            for (int64_t kh = 0; kh < KH; kh++) {
                int64_t ih = oh * sh - ph + kh;
                if (ih < 0 || ih >= H) continue;
                for (int64_t kw = 0; kw < KW; kw++) {
                    int64_t iw = ow * sww - pw + kw;
                    if (iw < 0 || iw >= W) continue;
                    const float *xp = x + ((n * H + ih) * W + iw) * C;
                    const float *wp = w + (kh * KW + kw) * CG * O;
                    for (int64_t g = 0; g < G; g++) {
                        float *restrict ag = acc + g * OG;
                        for (int64_t c = 0; c < CG; c++) {
                            float xv = xp[g * CG + c];
                            const float *restrict wr = wp + c * O + g * OG;
                            #pragma omp simd
                            for (int64_t o = 0; o < OG; o++) ag[o] += xv * wr[o];
                        }
                    }
                }
            }
        }
    }
    return true;
}

/* The dims of a conv2d x [N,H,W,C] * w [KH,KW,CG,O] -> y [N,OH,OW,O] and its attribute. */
typedef struct {
    int64_t N, H, W, C, KH, KW, CG, O, OH, OW, G, OG, sh, sw, ph, pw;
} conv_dims;

static conv_dims conv_dims_of(const dc_shape *sx, const dc_shape *sw, const dc_shape *sy,
                              const dc_conv_attr *at) {
    return (conv_dims){ sx->dim[0], sx->dim[1], sx->dim[2], sx->dim[3], sw->dim[0], sw->dim[1],
                        sw->dim[2], sw->dim[3], sy->dim[1], sy->dim[2], at->groups,
                        sw->dim[3] / at->groups, at->stride.v[0], at->stride.v[1], at->pad.v[0],
                        at->pad.v[1] };
}

/* The output index q (oh or ow) that reads input index i through kernel tap k, or -1:
 * i = q*stride - pad + k. */
static int64_t tap_source(int64_t i, int64_t k, int64_t stride, int64_t pad, int64_t n_out) {
    int64_t t = i + pad - k;
    if (t < 0 || t % stride) return -1;
    return t / stride < n_out ? t / stride : -1;
}

/* conv2d_bwd_data: dy [N,OH,OW,O], w [KH,KW,CG,O] -> dx [N,H,W,C],
 * dx[n,ih,iw,g*CG+c] = sum of dy[n,oh,ow,o] * w[kh,kw,c,o] over the taps (kh, kw) whose
 * output (oh, ow) reads (ih, iw) and the group's output channels o. w is transposed to
 * wt [KH,KW,O,CG] first, so the innermost loop runs over a group's CG input channels,
 * contiguous in wt and dx. One (n, ih) row per task; each dx element adds its terms in
 * (kh, kw, o) order. */
bool dc_ref_conv2d_bwd_data(const dc_ref_args *a) {
    conv_dims d = conv_dims_of(&a->out->type.shape, &a->in[1]->type.shape, &a->in[0]->type.shape,
                               &a->n->attr.conv);
    const float *dy = a->in[0]->data;
    float *dx = a->out->data;
    float *wt = scratch((size_t)(d.KH * d.KW * d.O * d.CG) * sizeof(float));
    transpose_batch(a->in[1]->data, wt, d.KH * d.KW, d.CG, d.O);
    #pragma omp parallel for schedule(static) if (d.N * d.OH * d.OW * d.KH * d.KW * d.CG * d.O > PAR_MIN_WORK)
    for (int64_t t = 0; t < d.N * d.H; t++) {
        int64_t n = t / d.H, ih = t % d.H;
        for (int64_t iw = 0; iw < d.W; iw++) {
            float *restrict acc = dx + ((n * d.H + ih) * d.W + iw) * d.C;
            memset(acc, 0, (size_t)d.C * sizeof(float));
            for (int64_t kh = 0; kh < d.KH; kh++) {
                int64_t oh = tap_source(ih, kh, d.sh, d.ph, d.OH);
                if (oh < 0) continue;
                for (int64_t kw = 0; kw < d.KW; kw++) {
                    int64_t ow = tap_source(iw, kw, d.sw, d.pw, d.OW);
                    if (ow < 0) continue;
                    const float *dyp = dy + ((n * d.OH + oh) * d.OW + ow) * d.O;
                    const float *wp = wt + (kh * d.KW + kw) * d.O * d.CG;
                    for (int64_t o = 0; o < d.O; o++) {
                        float dv = dyp[o];
                        float *restrict ag = acc + o / d.OG * d.CG;
                        const float *restrict wr = wp + o * d.CG;
                        #pragma omp simd
                        for (int64_t c = 0; c < d.CG; c++) ag[c] += dv * wr[c];
                    }
                }
            }
        }
    }
    free(wt);
    return true;
}

/* conv2d_bwd_weight: x [N,H,W,C], dy [N,OH,OW,O] -> dw [KH,KW,CG,O],
 * dw[kh,kw,c,o] = sum over (n, oh, ow) whose tap (kh, kw) lies inside x of
 * x[n, oh*sh-ph+kh, ow*sw-pw+kw, g*CG+c] * dy[n,oh,ow,o], g = o / OG. One task per
 * (kh, kw, c) row of O weights, each adding its terms in (n, oh, ow) order; the innermost
 * loop runs over a group's output channels, contiguous in dy and dw. */
bool dc_ref_conv2d_bwd_weight(const dc_ref_args *a) {
    conv_dims d = conv_dims_of(&a->in[0]->type.shape, &a->out->type.shape, &a->in[1]->type.shape,
                               &a->n->attr.conv);
    const float *x = a->in[0]->data, *dy = a->in[1]->data;
    float *dw = a->out->data;
    #pragma omp parallel for schedule(static) if (d.N * d.OH * d.OW * d.KH * d.KW * d.CG * d.O > PAR_MIN_WORK)
    for (int64_t t = 0; t < d.KH * d.KW * d.CG; t++) {
        int64_t kh = t / (d.KW * d.CG), kw = t / d.CG % d.KW, c = t % d.CG;
        float *restrict acc = dw + t * d.O;
        memset(acc, 0, (size_t)d.O * sizeof(float));
        for (int64_t n = 0; n < d.N; n++)
            for (int64_t oh = 0; oh < d.OH; oh++) {
                int64_t ih = oh * d.sh - d.ph + kh;
                if (ih < 0 || ih >= d.H) continue;
                for (int64_t ow = 0; ow < d.OW; ow++) {
                    int64_t iw = ow * d.sw - d.pw + kw;
                    if (iw < 0 || iw >= d.W) continue;
                    const float *xp = x + ((n * d.H + ih) * d.W + iw) * d.C + c;
                    const float *dyp = dy + ((n * d.OH + oh) * d.OW + ow) * d.O;
                    for (int64_t g = 0; g < d.G; g++) {
                        float xv = xp[g * d.CG];
                        float *restrict ag = acc + g * d.OG;
                        const float *restrict dg = dyp + g * d.OG;
                        #pragma omp simd
                        for (int64_t o = 0; o < d.OG; o++) ag[o] += xv * dg[o];
                    }
                }
            }
    }
    return true;
}

/* avg_pool: [N,H,W,C] -> [N,H/f,W/f,C], the mean of each f x f window (summed row by row,
 * then divided by f*f) */
bool dc_ref_avg_pool(const dc_ref_args *a) {
    const dc_shape *sx = &a->in[0]->type.shape;
    int64_t N = sx->dim[0], H = sx->dim[1], W = sx->dim[2], C = sx->dim[3];
    int64_t f = a->n->attr.pool.factor, OH = H / f, OW = W / f;
    const float *x = a->in[0]->data;
    float *out = a->out->data;
    float inv = 1.0f / (float)(f * f);
    #pragma omp parallel for schedule(static) if (N * H * W * C > PAR_MIN_WORK)
    for (int64_t t = 0; t < N * OH; t++) {
        int64_t n = t / OH, oh = t % OH;
        for (int64_t ow = 0; ow < OW; ow++) {
            float *restrict o = out + ((n * OH + oh) * OW + ow) * C;
            memset(o, 0, (size_t)C * sizeof(float));
            for (int64_t i = 0; i < f; i++)
                for (int64_t j = 0; j < f; j++) {
                    const float *restrict xp = x + ((n * H + oh * f + i) * W + ow * f + j) * C;
                    #pragma omp simd
                    for (int64_t c = 0; c < C; c++) o[c] += xp[c];
                }
            #pragma omp simd
            for (int64_t c = 0; c < C; c++) o[c] *= inv;
        }
    }
    return true;
}

/* upsample (nearest): [N,H,W,C] -> [N,H*f,W*f,C], out[n,oh,ow,:] = x[n,oh/f,ow/f,:] */
bool dc_ref_upsample(const dc_ref_args *a) {
    const dc_shape *sx = &a->in[0]->type.shape;
    int64_t N = sx->dim[0], H = sx->dim[1], W = sx->dim[2], C = sx->dim[3];
    int64_t f = a->n->attr.pool.factor, OH = H * f, OW = W * f;
    size_t es = dc_dtype_size(a->out->type.dtype);
    const char *x = a->in[0]->data;
    char *out = a->out->data;
    #pragma omp parallel for schedule(static) if (N * OH * OW * C > PAR_MIN_WORK)
    for (int64_t t = 0; t < N * OH; t++) {
        int64_t n = t / OH, oh = t % OH;
        for (int64_t ow = 0; ow < OW; ow++)
            memcpy(out + (size_t)(((n * OH + oh) * OW + ow) * C) * es,
                   x + (size_t)(((n * H + oh / f) * W + ow / f) * C) * es, (size_t)C * es);
    }
    return true;
}

/* ---- the fused contractions: the ref conv2d / matmul kernel into the output, then the
 * epilogue in place, one ref elementwise kernel per step: add bias, the activation, add
 * residual (result 1, the pre-activation, stops after the bias). Each step is the very kernel the unfused node would run, in the unfused order, so
 * a fused node equals the chain it replaced bit for bit (float addition commutes, so operand
 * order of the adds does not matter). */

/* The plain contraction of a fused node: conv2d or matmul of its first two inputs. */
static dc_node contraction_of(const dc_node *f) {
    dc_node n;
    memset(&n, 0, sizeof n);
    n.type = f->type;
    n.in[0] = f->in[0];
    n.in[1] = f->in[1];
    if (f->op == DC_OP_FUSED_CONV2D) {
        n.op = DC_OP_CONV2D;
        n.attr.conv.stride = f->attr.fused_conv.stride;
        n.attr.conv.pad = f->attr.fused_conv.pad;
        n.attr.conv.groups = f->attr.fused_conv.groups;
    } else {
        n.op = DC_OP_MATMUL;
        n.attr.matmul.trans_a = f->attr.fused_matmul.trans_a;
        n.attr.matmul.trans_b = f->attr.fused_matmul.trans_b;
    }
    return n;
}

/* Runs kernel on node n with inputs in[0..n_in) into a->out. */
static bool run(const dc_ref_args *a, bool (*kernel)(const dc_ref_args *), dc_node *n,
                int n_in, const dc_tensor *const *in) {
    n->n_in = n_in;
    dc_ref_args s = *a;
    s.n = n;
    s.in = in;
    return kernel(&s);
}

/* One epilogue step in place on a->out: op(out) for a unary op, op(out, operand) else. */
static bool epilogue_step(const dc_ref_args *a, dc_op op, const dc_tensor *operand) {
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.type = a->out->type;
    const dc_tensor *in[2] = { a->out, operand };
    return run(a, dc_ref_map, &n, operand ? 2 : 1, in);
}

bool dc_ref_fused(const dc_ref_args *a) {
    const dc_node *f = a->n;
    bool conv = f->op == DC_OP_FUSED_CONV2D;
    dc_fused_epilogue ep = dc_fused_epilogue_of(f);
    dc_activation act = ep.act;
    bool bias = ep.bias, residual = ep.residual;
    dc_node c = contraction_of(f);
    if (!run(a, conv ? dc_ref_conv2d : dc_ref_matmul, &c, 2, a->in)) return false;
    if (bias && !epilogue_step(a, DC_OP_ADD, a->in[2])) return false;
    if (dc_node_result(f) == 1) return true; /* the pre-activation */
    if (act != DC_ACTIVATION_NONE && !epilogue_step(a, dc_activation_op(act), NULL)) return false;
    return !residual || epilogue_step(a, DC_OP_ADD, a->in[2 + bias]);
}
