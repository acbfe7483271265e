/* norm.c — the normalisations: shape rule, VJP and reference kernels. Both are affine, with
 * biased variance:
 * layer_norm(x [..., C], gamma [C], beta [C]) over the last axis, and
 * group_norm(x [N, ..., C], gamma [C], beta [C]) over (all non-batch positions, the
 * group's C/groups channels) per (n, group); and their gradients w.r.t. x,
 * layer_norm_bwd / group_norm_bwd(x, gamma, dy) -> dx. One block (row or (n, group)) per
 * iteration; mean, variance and the backward sums accumulate in double in memory order. */
#include <math.h>
#include <stdio.h>

#include "ops/ops.h"

#define PAR_MIN 32768

/* ---- shape rule ------------------------------------------------------------------------ */

/* layer_norm: x [...,C]; group_norm: x [N,...,C]; gamma, beta [C] -> x's type.
 * Their backward ops take (x, gamma, dy) with dy of x's shape. */
bool dc_shape_norm(dc_rule *r, dc_type *out) {
    const dc_type *x = r->in[0];
    dc_op op = r->n->op;
    bool group = op == DC_OP_GROUP_NORM || op == DC_OP_GROUP_NORM_BWD;
    bool bwd = op == DC_OP_LAYER_NORM_BWD || op == DC_OP_GROUP_NORM_BWD;
    const char *roles[3] = { "x", "gamma", bwd ? "dy" : "beta" };
    for (int k = 0; k < 3; k++)
        if (!dc_rule_dtype(r, k, roles[k], DC_F32)) return false;
    if (!dc_rule_min_rank(r, 0, "x", group ? 2 : 1)) return false;
    int64_t c = x->shape.dim[x->shape.rank - 1];
    for (int k = 1; k < (bwd ? 2 : 3); k++)
        if (r->in[k]->shape.rank != 1 || r->in[k]->shape.dim[0] != c)
            return dc_rule_fail(r, "%s must be f32[%lld] for %lld channels, got %s", roles[k], (long long)c,
                        (long long)c, dc_type_s(r->in[k]).s);
    if (bwd && !dc_shape_eq(&r->in[2]->shape, &x->shape))
        return dc_rule_fail(r, "dy must have x's shape %s, got %s", dc_type_s(x).s, dc_type_s(r->in[2]).s);
    float eps = group ? r->n->attr.group_norm.eps : r->n->attr.eps.eps;
    if (!(eps >= 0 && isfinite(eps))) return dc_rule_fail(r, "eps must be finite and >= 0, got %g", (double)eps);
    if (group) {
        int64_t g = r->n->attr.group_norm.groups;
        if (g < 1) return dc_rule_fail(r, "groups must be >= 1, got %lld", (long long)g);
        if (c % g) return dc_rule_fail(r, "%lld channels not divisible by groups=%lld", (long long)c, (long long)g);
    }
    *out = dc_make_type(DC_F32, &x->shape);
    return true;
}

/* ---- VJP ------------------------------------------------------------------------------- */

/* dx by the backward op; dgamma = sum(dy xhat), dbeta = sum(dy) over all but the channel axis,
 * xhat = the same norm with gamma 1, beta 0 */
void dc_vjp_norm(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x = n->in[0], gamma = n->in[1], beta = n->in[2];
    const dc_shape *cs = &dc_ad_type(a, gamma)->shape;
    bool group = n->op == DC_OP_GROUP_NORM;
    if (dc_ad_wants(a, x))
        dc_ad_accum(a, x, dc_ad_emit(a, group ? DC_OP_GROUP_NORM_BWD : DC_OP_LAYER_NORM_BWD, 3,
                                     (int[]){ x, gamma, dy }, &n->attr, NULL));
    if (dc_ad_wants(a, gamma)) {
        int xhat = dc_ad_emit(a, n->op, 3, (int[]){ x, dc_ad_fill(a, 1.0f, cs), dc_ad_fill(a, 0.0f, cs) }, &n->attr, NULL);
        dc_ad_accum(a, gamma, dc_ad_unbroadcast(a, dc_ad_bin(a, DC_OP_MUL, dy, xhat), cs));
    }
    if (dc_ad_wants(a, beta)) dc_ad_accum(a, beta, dc_ad_unbroadcast(a, dy, cs));
}

/* ---- reference kernels ----------------------------------------------------------------- */

/* Mean and 1/sqrt(var + eps) of the block x[s*C + c0 + c], s < S, c < cg (two passes). */
static void block_stats(const float *x, int64_t S, int64_t C, int64_t c0, int64_t cg, float eps,
                        float *mean, float *rstd) {
    double sum = 0, sq = 0;
    for (int64_t s = 0; s < S; s++)
        for (int64_t c = 0; c < cg; c++) sum += x[s * C + c0 + c];
    double m = sum / (double)(S * cg);
    for (int64_t s = 0; s < S; s++)
        for (int64_t c = 0; c < cg; c++) {
            double d = x[s * C + c0 + c] - m;
            sq += d * d;
        }
    *mean = (float)m;
    *rstd = (float)(1.0 / sqrt(sq / (double)(S * cg) + eps));
}

/* Normalises the block x[s*C + c], s < S, c < cg (cg channels starting at channel c0 of a
 * C-channel tensor): y = (x - mean) / sqrt(var + eps) * gamma[c0+c] + beta[c0+c]. */
static void norm_block(const float *x, float *y, int64_t S, int64_t C, int64_t c0, int64_t cg,
                       const float *gamma, const float *beta, float eps) {
    float m, rstd;
    block_stats(x, S, C, c0, cg, eps, &m, &rstd);
    for (int64_t s = 0; s < S; s++)
        for (int64_t c = c0; c < c0 + cg; c++)
            y[s * C + c] = (x[s * C + c] - m) * rstd * gamma[c] + beta[c];
}

/* The gradient w.r.t. x of the block's norm_block, given dy (laid out as x):
 * with xh = (x - mean) * rstd and gy = dy * gamma,
 * dx = rstd * (gy - mean(gy) - xh * mean(gy * xh)). */
static void norm_bwd_block(const float *x, const float *dy, float *dx, int64_t S, int64_t C,
                           int64_t c0, int64_t cg, const float *gamma, float eps) {
    float m, rstd;
    block_stats(x, S, C, c0, cg, eps, &m, &rstd);
    double sg = 0, sgx = 0;
    for (int64_t s = 0; s < S; s++)
        for (int64_t c = c0; c < c0 + cg; c++) {
            double gy = (double)dy[s * C + c] * gamma[c];
            sg += gy;
            sgx += gy * ((x[s * C + c] - m) * rstd);
        }
    float mg = (float)(sg / (double)(S * cg)), mgx = (float)(sgx / (double)(S * cg));
    for (int64_t s = 0; s < S; s++)
        for (int64_t c = c0; c < c0 + cg; c++) {
            float xh = (x[s * C + c] - m) * rstd;
            dx[s * C + c] = rstd * (dy[s * C + c] * gamma[c] - mg - xh * mgx);
        }
}

/* One block: the forward norm (in[2] is beta) or its backward (in[2] is dy). */
static void run_block(bool bwd, const float *x, const float *in2, float *y, int64_t S, int64_t C,
                      int64_t c0, int64_t cg, const float *gamma, float eps) {
    if (bwd) norm_bwd_block(x, in2, y, S, C, c0, cg, gamma, eps);
    else norm_block(x, y, S, C, c0, cg, gamma, in2, eps);
}

/* layer norms are blocks of one row of C; group norms blocks of (n, group), S positions of
 * C/G channels each. Per-element inputs (x, dy) and the output advance with the block. */
bool dc_ref_norm(const dc_ref_args *a) {
    const dc_shape *s = &a->in[0]->type.shape;
    const float *x = a->in[0]->data, *gamma = a->in[1]->data, *in2 = a->in[2]->data;
    float *y = a->out->data;
    int64_t numel = dc_numel(s), C = s->dim[s->rank - 1];
    dc_op op = a->n->op;
    bool bwd = op == DC_OP_LAYER_NORM_BWD || op == DC_OP_GROUP_NORM_BWD;
    if (op == DC_OP_LAYER_NORM || op == DC_OP_LAYER_NORM_BWD) {
        float eps = a->n->attr.eps.eps;
        int64_t rows = numel / C;
#pragma omp parallel for if (numel > PAR_MIN)
        for (int64_t r = 0; r < rows; r++)
            run_block(bwd, x + r * C, bwd ? in2 + r * C : in2, y + r * C, 1, C, 0, C, gamma, eps);
        return true;
    }
    float eps = a->n->attr.group_norm.eps;
    int64_t G = a->n->attr.group_norm.groups, N = s->dim[0], S = numel / N / C, cg = C / G;
#pragma omp parallel for if (numel > PAR_MIN)
    for (int64_t b = 0; b < N * G; b++) {
        int64_t n = b / G, g = b % G, off = n * S * C;
        run_block(bwd, x + off, bwd ? in2 + off : in2, y + off, S, C, g * cg, cg, gamma, eps);
    }
    return true;
}
