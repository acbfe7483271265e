/* loss.c — ref kernels of the losses, both f32[] means:
 * cross_entropy(logits [..., K], labels i32 [...]) = mean over rows of
 *   logsumexp(row) - row[label] (a label outside [0, K) is a run-time error);
 * mse(a, b) = mean((a - b)^2).
 * Terms are summed in double in fixed blocks of BLOCK rows/elements (each block by one
 * thread, in order), then the block sums in order: the result does not depend on threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/ref/ref.h"

#define BLOCK 1024
#define PAR_MIN 32768

/* -log_softmax(x)[label] for one row of K logits, subtracting the max */
static double row_xent(const float *x, int64_t K, int32_t label) {
    float m = x[0];
    for (int64_t k = 1; k < K; k++) m = x[k] > m ? x[k] : m;
    double s = 0;
    for (int64_t k = 0; k < K; k++) s += exp((double)x[k] - m);
    return m + log(s) - x[label];
}

static bool cross_entropy(const dc_ref_args *a, double *block, int64_t n_blocks) {
    const dc_shape *ls = &a->in[0]->type.shape;
    int64_t K = ls->dim[ls->rank - 1], rows = dc_numel(ls) / K;
    const float *x = a->in[0]->data;
    const int32_t *lab = a->in[1]->data;
    for (int64_t r = 0; r < rows; r++)
        if (lab[r] < 0 || lab[r] >= K) {
            snprintf(a->err, a->len, "cross_entropy: label %d out of range [0, %lld)", lab[r],
                     (long long)K);
            return false;
        }
#pragma omp parallel for if (rows * K > PAR_MIN)
    for (int64_t b = 0; b < n_blocks; b++) {
        double s = 0;
        for (int64_t r = b * BLOCK; r < rows && r < (b + 1) * BLOCK; r++) s += row_xent(x + r * K, K, lab[r]);
        block[b] = s;
    }
    return true;
}

static void mse(const dc_ref_args *a, double *block, int64_t n_blocks, int64_t n) {
    const float *x = a->in[0]->data, *y = a->in[1]->data;
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t b = 0; b < n_blocks; b++) {
        double s = 0;
        for (int64_t i = b * BLOCK; i < n && i < (b + 1) * BLOCK; i++) {
            double d = (double)x[i] - y[i];
            s += d * d;
        }
        block[b] = s;
    }
}

bool dc_ref_loss(const dc_ref_args *a) {
    dc_op op = a->n->op;
    if (op != DC_OP_CROSS_ENTROPY && op != DC_OP_MSE) {
        snprintf(a->err, a->len, "no ref kernel for %s", dc_op_name(op));
        return false;
    }
    const dc_shape *s0 = &a->in[0]->type.shape;
    int64_t n = op == DC_OP_MSE ? dc_numel(s0) : dc_numel(s0) / s0->dim[s0->rank - 1];
    int64_t n_blocks = (n + BLOCK - 1) / BLOCK;
    double *block = malloc((size_t)n_blocks * sizeof *block);
    if (!block) abort();
    bool ok = true;
    if (op == DC_OP_MSE) mse(a, block, n_blocks, n);
    else ok = cross_entropy(a, block, n_blocks);
    if (ok) {
        double s = 0;
        for (int64_t b = 0; b < n_blocks; b++) s += block[b];
        *(float *)a->out->data = (float)(s / (double)n);
    }
    free(block);
    return ok;
}
