/* norm.c — ref kernels of the normalisations, both affine and with biased variance:
 * layer_norm(x [..., C], gamma [C], beta [C]) over the last axis, and
 * group_norm(x [N, ..., C], gamma [C], beta [C]) over (all non-batch positions, the
 * group's C/groups channels) per (n, group); and their gradients w.r.t. x,
 * layer_norm_bwd / group_norm_bwd(x, gamma, dy) -> dx. One block (row or (n, group)) per
 * iteration; mean, variance and the backward sums accumulate in double in memory order. */
#include <math.h>
#include <stdio.h>

#include "runtime/ref/ref.h"

#define PAR_MIN 32768

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
    if (op == DC_OP_GROUP_NORM || op == DC_OP_GROUP_NORM_BWD) {
        float eps = a->n->attr.group_norm.eps;
        int64_t G = a->n->attr.group_norm.groups, N = s->dim[0], S = numel / N / C, cg = C / G;
#pragma omp parallel for if (numel > PAR_MIN)
        for (int64_t b = 0; b < N * G; b++) {
            int64_t n = b / G, g = b % G, off = n * S * C;
            run_block(bwd, x + off, bwd ? in2 + off : in2, y + off, S, C, g * cg, cg, gamma, eps);
        }
        return true;
    }
    snprintf(a->err, a->len, "no ref kernel for %s", dc_op_name(op));
    return false;
}
