/* norm.c — ref kernels of the normalisations, both affine and with biased variance:
 * layer_norm(x [..., C], gamma [C], beta [C]) over the last axis, and
 * group_norm(x [N, ..., C], gamma [C], beta [C]) over (all non-batch positions, the
 * group's C/groups channels) per (n, group). One (row or (n, group)) per iteration;
 * mean and variance (two passes) accumulate in double in memory order. */
#include <math.h>
#include <stdio.h>

#include "runtime/ref/ref.h"

#define PAR_MIN 32768

/* Normalises the block x[s*C + c], s < S, c < cg (cg channels starting at channel c0 of a
 * C-channel tensor): y = (x - mean) / sqrt(var + eps) * gamma[c0+c] + beta[c0+c]. */
static void norm_block(const float *x, float *y, int64_t S, int64_t C, int64_t c0, int64_t cg,
                       const float *gamma, const float *beta, float eps) {
    double sum = 0, sq = 0;
    for (int64_t s = 0; s < S; s++)
        for (int64_t c = 0; c < cg; c++) sum += x[s * C + c0 + c];
    double mean = sum / (double)(S * cg);
    for (int64_t s = 0; s < S; s++)
        for (int64_t c = 0; c < cg; c++) {
            double d = x[s * C + c0 + c] - mean;
            sq += d * d;
        }
    float rstd = (float)(1.0 / sqrt(sq / (double)(S * cg) + eps)), m = (float)mean;
    for (int64_t s = 0; s < S; s++)
        for (int64_t c = c0; c < c0 + cg; c++)
            y[s * C + c] = (x[s * C + c] - m) * rstd * gamma[c] + beta[c];
}

bool dc_ref_norm(const dc_ref_args *a) {
    const dc_shape *s = &a->in[0]->type.shape;
    const float *x = a->in[0]->data, *gamma = a->in[1]->data, *beta = a->in[2]->data;
    float *y = a->out->data;
    int64_t numel = dc_numel(s), C = s->dim[s->rank - 1];
    if (a->n->op == DC_OP_LAYER_NORM) {
        float eps = a->n->attr.eps.eps;
        int64_t rows = numel / C;
#pragma omp parallel for if (numel > PAR_MIN)
        for (int64_t r = 0; r < rows; r++)
            norm_block(x + r * C, y + r * C, 1, C, 0, C, gamma, beta, eps);
        return true;
    }
    if (a->n->op == DC_OP_GROUP_NORM) {
        float eps = a->n->attr.group_norm.eps;
        int64_t G = a->n->attr.group_norm.groups, N = s->dim[0], S = numel / N / C, cg = C / G;
#pragma omp parallel for if (numel > PAR_MIN)
        for (int64_t b = 0; b < N * G; b++) {
            int64_t n = b / G, g = b % G;
            norm_block(x + n * S * C, y + n * S * C, S, C, g * cg, cg, gamma, beta, eps);
        }
        return true;
    }
    snprintf(a->err, a->len, "no ref kernel for %s", dc_op_name(a->n->op));
    return false;
}
