/* loss.c — the losses (f32[] means, and the per-row terms of one): shape rule, VJPs and reference kernels.
 * cross_entropy(logits [..., K], labels i32 [...]) = mean over rows of
 *   logsumexp(row) - row[label] (a label outside [0, K) is a run-time error);
 * cross_entropy_rows(logits, labels) = each row's logsumexp(row) - row[label] (the terms of
 * cross_entropy's mean, f32 [...]);
 * mse(a, b) = mean((a - b)^2).
 * Terms are summed in double in fixed blocks of BLOCK rows/elements (each block by one
 * thread, in order), then the block sums in order: the result does not depend on threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

#define BLOCK 1024
#define PAR_MIN 32768

/* ---- shape rule ------------------------------------------------------------------------ */

/* cross_entropy(logits [...,K], labels:i32 [...]) and its rows' [...]; mse(a, b) of one shape */
bool dc_shape_loss(dc_rule *r, dc_type *out) {
    const dc_type *a = r->in[0], *b = r->in[1];
    dc_shape scalar = { .rank = 0 };
    if (r->n->op == DC_OP_MSE) {
        if (!dc_rule_dtype(r, 0, "a", DC_F32) || !dc_rule_dtype(r, 1, "b", DC_F32)) return false;
        if (!dc_shape_eq(&a->shape, &b->shape)) return dc_rule_fail(r, "shapes differ: %s and %s", dc_type_s(a).s, dc_type_s(b).s);
    } else {
        if (!dc_rule_dtype(r, 0, "logits", DC_F32) || !dc_rule_dtype(r, 1, "labels", DC_I32)) return false;
        if (!dc_rule_min_rank(r, 0, "logits", 1)) return false;
        dc_shape rows = a->shape;
        rows.dim[--rows.rank] = 0;
        if (!dc_shape_eq(&rows, &b->shape))
            return dc_rule_fail(r, "logits %s need labels of shape [...] = logits without its last axis, got %s",
                        dc_type_s(a).s, dc_type_s(b).s);
    }
    *out = dc_make_type(DC_F32, r->n->op == DC_OP_CROSS_ENTROPY_ROWS ? &b->shape : &scalar);
    return true;
}

/* ---- VJPs ------------------------------------------------------------------------------ */

/* (softmax(logits) - one_hot(labels)) dloss / rows */
void dc_vjp_cross_entropy(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x0 = n->in[0], x1 = n->in[1];
    const dc_shape *s = &dc_ad_type(a, x0)->shape;
    int64_t k = s->dim[s->rank - 1];
    dc_attr ax, oh;
    memset(&ax, 0, sizeof ax);
    memset(&oh, 0, sizeof oh);
    ax.axis.axis = s->rank - 1;
    oh.one_hot.depth = k;
    int p = dc_ad_bin(a, DC_OP_SUB, dc_ad_emit(a, DC_OP_SOFTMAX, 1, &x0, &ax, NULL),
                      dc_ad_emit(a, DC_OP_ONE_HOT, 1, &x1, &oh, NULL));
    dc_ad_accum(a, x0, dc_ad_bin(a, DC_OP_MUL, p, dc_ad_mul_s(a, dy, (float)(1.0 / (double)(dc_numel(s) / k)))));
}

/* 2 (a - b) / n dloss, and its negation for b */
void dc_vjp_mse(dc_ad *a, const dc_node *n, int y, int dy) {
    (void)y;
    int x0 = n->in[0], x1 = n->in[1];
    const dc_shape *s = &dc_ad_type(a, x0)->shape;
    int d = dc_ad_bin(a, DC_OP_MUL, dc_ad_bin(a, DC_OP_SUB, x0, x1), dc_ad_mul_s(a, dy, (float)(2.0 / (double)dc_numel(s))));
    dc_ad_accum(a, x0, d);
    if (dc_ad_wants(a, x1)) dc_ad_accum(a, x1, dc_ad_un(a, DC_OP_NEG, d));
}

/* ---- reference kernels ----------------------------------------------------------------- */

/* -log_softmax(x)[label] for one row of K logits, subtracting the max */
static double row_xent(const float *x, int64_t K, int32_t label) {
    float m = x[0];
    for (int64_t k = 1; k < K; k++) m = x[k] > m ? x[k] : m;
    double s = 0;
    for (int64_t k = 0; k < K; k++) s += exp((double)x[k] - m);
    return m + log(s) - x[label];
}

/* false (with the error) unless every one of the rows' labels is in [0, K) */
static bool labels_ok(const dc_ref_args *a, int64_t rows, int64_t K) {
    const int32_t *lab = a->in[1]->data;
    for (int64_t r = 0; r < rows; r++)
        if (lab[r] < 0 || lab[r] >= K) {
            snprintf(a->err, a->len, "cross_entropy: label %d out of range [0, %lld)", lab[r], (long long)K);
            return false;
        }
    return true;
}

static bool cross_entropy_blocks(const dc_ref_args *a, int64_t rows, double *block, int64_t n_blocks) {
    const dc_shape *ls = &a->in[0]->type.shape;
    int64_t K = ls->dim[ls->rank - 1];
    const float *x = a->in[0]->data;
    const int32_t *lab = a->in[1]->data;
    if (!labels_ok(a, rows, K)) return false;
#pragma omp parallel for if (rows * K > PAR_MIN)
    for (int64_t b = 0; b < n_blocks; b++) {
        double s = 0;
        for (int64_t r = b * BLOCK; r < rows && r < (b + 1) * BLOCK; r++) s += row_xent(x + r * K, K, lab[r]);
        block[b] = s;
    }
    return true;
}

static bool mse_blocks(const dc_ref_args *a, int64_t n, double *block, int64_t n_blocks) {
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
    return true;
}

/* out = (the sum of the block sums of n terms, in order) / n */
static bool block_mean(const dc_ref_args *a, int64_t n,
                       bool (*blocks)(const dc_ref_args *a, int64_t n, double *block, int64_t n_blocks)) {
    int64_t n_blocks = (n + BLOCK - 1) / BLOCK;
    double *block = malloc((size_t)n_blocks * sizeof *block);
    if (!block) abort();
    bool ok = blocks(a, n, block, n_blocks);
    if (ok) {
        double s = 0;
        for (int64_t b = 0; b < n_blocks; b++) s += block[b];
        *(float *)a->out->data = (float)(s / (double)n);
    }
    free(block);
    return ok;
}

bool dc_ref_cross_entropy(const dc_ref_args *a) {
    const dc_shape *s = &a->in[0]->type.shape;
    return block_mean(a, dc_numel(s) / s->dim[s->rank - 1], cross_entropy_blocks);
}

/* each row's -log_softmax(x)[label], rounded to f32 */
bool dc_ref_cross_entropy_rows(const dc_ref_args *a) {
    const dc_shape *s = &a->in[0]->type.shape;
    int64_t K = s->dim[s->rank - 1], rows = dc_numel(s) / K;
    const float *x = a->in[0]->data;
    const int32_t *lab = a->in[1]->data;
    float *y = a->out->data;
    if (!labels_ok(a, rows, K)) return false;
#pragma omp parallel for if (rows * K > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) y[r] = (float)row_xent(x + r * K, K, lab[r]);
    return true;
}

bool dc_ref_mse(const dc_ref_args *a) { return block_mean(a, dc_numel(&a->in[0]->type.shape), mse_blocks); }
