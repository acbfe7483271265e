/* contraction.c — reference kernels of the contraction family: matmul (batched, numpy
 * broadcast of batch dims, transpose flags), linear, conv2d (NHWC x HWIO, stride, symmetric
 * zero padding, groups) and its two gradients (w.r.t. input and weight), avg_pool and
 * nearest upsample. They are the oracle and the fallback,
 * so the loops are laid out for gcc's vectorizer: the innermost loop always runs contiguously
 * over the output's last dim. Every output element accumulates its terms in one fixed order
 * (k ascending; kh, kw, c ascending), so results do not depend on the number of threads. */
#include "runtime/ref/ref.h"

#include <stdlib.h>
#include <string.h>

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
static void matmul(const dc_ref_args *a) {
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
}

/* linear: x [..., I] @ w [I, O] + b [O] -> [..., O]; the bias is added after the sum */
static void linear(const dc_ref_args *a) {
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
}

/* ---- conv2d and sampling --------------------------------------------------------------- */

/* conv2d: x [N,H,W,C] * w [KH,KW,C/G,O] -> out [N,OH,OW,O]; output channel o reads the input
 * channels of group o / (O/G). One (n, oh) output row per task; for each output pixel the
 * innermost loop runs over that group's output channels, contiguous in w and in out. */
static void conv2d(const dc_ref_args *a) {
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
static void conv2d_bwd_data(const dc_ref_args *a) {
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
}

/* conv2d_bwd_weight: x [N,H,W,C], dy [N,OH,OW,O] -> dw [KH,KW,CG,O],
 * dw[kh,kw,c,o] = sum over (n, oh, ow) whose tap (kh, kw) lies inside x of
 * x[n, oh*sh-ph+kh, ow*sw-pw+kw, g*CG+c] * dy[n,oh,ow,o], g = o / OG. One task per
 * (kh, kw, c) row of O weights, each adding its terms in (n, oh, ow) order; the innermost
 * loop runs over a group's output channels, contiguous in dy and dw. */
static void conv2d_bwd_weight(const dc_ref_args *a) {
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
}

/* avg_pool: [N,H,W,C] -> [N,H/f,W/f,C], the mean of each f x f window (summed row by row,
 * then divided by f*f) */
static void avg_pool(const dc_ref_args *a) {
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
}

/* upsample (nearest): [N,H,W,C] -> [N,H*f,W*f,C], out[n,oh,ow,:] = x[n,oh/f,ow/f,:] */
static void upsample(const dc_ref_args *a) {
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
}

/* fused_conv2d and fused_matmul: runtime/ref/fused.c */
bool dc_ref_fused(const dc_ref_args *a);

bool dc_ref_contraction(const dc_ref_args *a) {
    dc_op op = a->n->op;
    if (op != DC_OP_UPSAMPLE) {
        for (int k = 0; k < a->n->n_in; k++)
            if (a->in[k]->type.dtype != DC_F32) {
                snprintf(a->err, a->len, "%s: input %d is %s, expected f32", dc_op_name(op), k,
                         dc_dtype_name(a->in[k]->type.dtype));
                return false;
            }
    }
    switch (op) {
    case DC_OP_MATMUL: matmul(a); return true;
    case DC_OP_LINEAR: linear(a); return true;
    case DC_OP_CONV2D: conv2d(a); return true;
    case DC_OP_CONV2D_BWD_DATA: conv2d_bwd_data(a); return true;
    case DC_OP_CONV2D_BWD_WEIGHT: conv2d_bwd_weight(a); return true;
    case DC_OP_AVG_POOL: avg_pool(a); return true;
    case DC_OP_UPSAMPLE: upsample(a); return true;
    case DC_OP_FUSED_CONV2D: case DC_OP_FUSED_MATMUL: return dc_ref_fused(a);
    default:
        snprintf(a->err, a->len, "no ref kernel for %s", dc_op_name(op));
        return false;
    }
}
