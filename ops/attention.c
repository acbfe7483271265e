/* attention.c — scaled dot-product attention: the shape rule, VJP and reference kernels of
 * attention and attention_bwd.
 *
 *   attention(q [B,H,Sq,D], k [B,H,Sk,D], v [B,H,Sk,Dv] [, bias]) {scale, causal, bias, result}
 *     s[i,j] = scale * q[i] . k[j] + bias[i,j]        (bias broadcast numpy-style to
 *                                                       [B,H,Sq,Sk]; rank <= 4)
 *     s[i,j] = -inf where causal and j > i            (top-left aligned, as torch.tril)
 *     s[i,j] = -inf where bias[i,j] = -inf            (a mask: q[i] . k[j] is not read)
 *     lse[i] = log sum_j exp(s[i,j])                  result 1: f32[B,H,Sq]
 *     out[i] = sum_j exp(s[i,j] - lse[i]) v[j]        result 0: f32[B,H,Sq,Dv]
 *   A row whose logits are all -inf (every key masked) gives out 0 and lse -inf, and passes
 *   no gradient; a NaN logit makes its row's out, lse and gradients NaN, as softmax does.
 *
 *   attention_bwd(q, k, v [, bias], out, dout, lse) {the forward's attr, result}
 *     p = exp(s - lse), dp = dout v^T, ds = p (dp - rowsum(dout * out))
 *     result 0: dq = scale ds k     1: dk = scale ds^T q     2: dv = p^T dout
 *     result 3: dbias = ds summed to bias's shape
 *   The backward recomputes p from the saved lse: training keeps no [Sq,Sk] tensor.
 *
 * Results. One attention is several nodes that differ only in attr.result (the VJP asks for
 * the lse beside the forward's out, and for each gradient it needs): the nodes are one
 * computation, which a fused kernel runs once for all of them (codegen/lower.c); here, as
 * the oracle, every node computes its own result. lse is a stop-gradient (the backward is
 * written in terms of it).
 *
 * The reference kernels accumulate dot products and sums in double in a fixed order (keys
 * ascending, then queries ascending for dk, dv and dbias), one (b, h) per thread. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

/* ---- shape rule ------------------------------------------------------------------------- */

/* the number of inputs before out, dout, lse: q, k, v and the bias when there is one */
static int fwd_inputs(const dc_attention_attr *at) { return 3 + (at->bias ? 1 : 0); }

/* input k is f32 [B,H,rows,cols] with the given B, H (cols < 0: any) */
static bool bhsd(dc_rule *r, int k, const char *role, const int64_t *q, int64_t rows, int64_t cols) {
    if (!dc_rule_dtype(r, k, role, DC_F32) || !dc_rule_rank(r, k, role, 4, " ([B,H,S,D])")) return false;
    const int64_t *d = r->in[k]->shape.dim;
    if (d[0] != q[0] || d[1] != q[1])
        return dc_rule_fail(r, "%s has batch and heads [%lld,%lld], q has [%lld,%lld]", role, (long long)d[0],
                            (long long)d[1], (long long)q[0], (long long)q[1]);
    if (rows >= 0 && d[2] != rows)
        return dc_rule_fail(r, "%s has %lld rows, expected %lld", role, (long long)d[2], (long long)rows);
    if (cols >= 0 && d[3] != cols)
        return dc_rule_fail(r, "%s has %lld columns, expected %lld", role, (long long)d[3], (long long)cols);
    return true;
}

bool dc_shape_attention(dc_rule *r, dc_type *out) {
    const dc_attention_attr *at = &r->n->attr.attention;
    bool bwd = r->n->op == DC_OP_ATTENTION_BWD;
    int nf = fwd_inputs(at), want = nf + (bwd ? 3 : 0);
    if (r->n->n_in != want)
        return dc_rule_fail(r, "bias=%s needs %d inputs, got %d", at->bias ? "true" : "false", want, r->n->n_in);
    if (!isfinite(at->scale)) return dc_rule_fail(r, "scale must be finite, got %g", (double)at->scale);
    int64_t max_result = bwd ? nf - 1 : 1;
    if (at->result < 0 || at->result > max_result)
        return dc_rule_fail(r, "result must be in [0, %lld], got %lld", (long long)max_result, (long long)at->result);
    if (!dc_rule_dtype(r, 0, "q", DC_F32) || !dc_rule_rank(r, 0, "q", 4, " ([B,H,Sq,D])")) return false;
    const int64_t *q = r->in[0]->shape.dim;
    if (!bhsd(r, 1, "k", q, -1, q[3])) return false;
    int64_t sq = q[2], sk = r->in[1]->shape.dim[2];
    if (!bhsd(r, 2, "v", q, sk, -1)) return false;
    int64_t dv = r->in[2]->shape.dim[3];
    if (at->bias) {
        const dc_type *b = r->in[3];
        if (!dc_rule_dtype(r, 3, "bias", DC_F32)) return false;
        const int64_t full[4] = { q[0], q[1], sq, sk };
        int rb = b->shape.rank;
        bool ok = rb <= 4;
        for (int i = 0; ok && i < rb; i++) {
            int64_t d = b->shape.dim[i], f = full[4 - rb + i];
            ok = d == 1 || d == f;
        }
        if (!ok)
            return dc_rule_fail(r, "bias %s does not broadcast to the logits [%lld,%lld,%lld,%lld]", dc_type_s(b).s,
                                (long long)q[0], (long long)q[1], (long long)sq, (long long)sk);
    }
    if (bwd) {
        if (!bhsd(r, nf, "out", q, sq, dv) || !bhsd(r, nf + 1, "dout", q, sq, dv)) return false;
        const dc_type *l = r->in[nf + 2];
        dc_shape ls = { .rank = 3, .dim = { q[0], q[1], sq } };
        dc_type lt = dc_make_type(DC_F32, &ls);
        if (!dc_type_eq(l, &lt)) return dc_rule_fail(r, "lse must be %s, got %s", dc_type_s(&lt).s, dc_type_s(l).s);
        *out = *r->in[at->result];
        return true;
    }
    dc_shape s = { .rank = at->result == 0 ? 4 : 3, .dim = { q[0], q[1], sq, dv } };
    *out = dc_make_type(DC_F32, &s);
    return true;
}

/* ---- VJP ---------------------------------------------------------------------------------- */

/* out's gradients through attention_bwd, from the lse the VJP asks for beside out */
void dc_vjp_attention(dc_ad *a, const dc_node *n, int y, int dy) {
    if (n->attr.attention.result != 0) return; /* the lse is a stop-gradient */
    int nf = fwd_inputs(&n->attr.attention), in[DC_MAX_INPUTS], grad[4];
    dc_attr at = n->attr;
    at.attention.result = 1;
    memcpy(in, n->in, sizeof(int) * (size_t)nf);
    in[nf] = y;
    in[nf + 1] = dy;
    in[nf + 2] = dc_ad_emit(a, DC_OP_ATTENTION, nf, n->in, &at, NULL);
    for (int k = 0; k < nf; k++) {
        grad[k] = -1;
        if (!dc_ad_wants(a, n->in[k])) continue;
        at.attention.result = k;
        grad[k] = dc_ad_emit(a, DC_OP_ATTENTION_BWD, nf + 3, in, &at, NULL);
    }
    for (int k = 0; k < nf; k++)
        if (grad[k] >= 0) dc_ad_accum(a, n->in[k], grad[k]);
}

/* ---- reference kernels ------------------------------------------------------------------- */

typedef struct {
    int64_t B, H, sq, sk, d, dv;
    float scale;
    bool causal;
    const float *q, *k, *v, *bias;
    int64_t bst[4];     /* bias strides over [B,H,Sq,Sk] (0 along broadcast dims) */
} problem;

static problem problem_of(const dc_ref_args *a) {
    const dc_attention_attr *at = &a->n->attr.attention;
    const int64_t *qd = a->in[0]->type.shape.dim;
    problem p = { .B = qd[0], .H = qd[1], .sq = qd[2], .d = qd[3], .sk = a->in[1]->type.shape.dim[2],
                  .dv = a->in[2]->type.shape.dim[3], .scale = at->scale, .causal = at->causal,
                  .q = a->in[0]->data, .k = a->in[1]->data, .v = a->in[2]->data };
    if (at->bias) {
        const dc_shape *s = &a->in[3]->type.shape;
        p.bias = a->in[3]->data;
        int64_t st = 1;
        for (int i = s->rank - 1; i >= 0; i--) {
            p.bst[4 - s->rank + i] = s->dim[i] == 1 ? 0 : st;
            st *= s->dim[i];
        }
    }
    return p;
}

/* the masked logits of query row i of head bh into s[sk] (-inf where masked: causal, or a
 * bias of -inf); their max (NaN if any is NaN, as softmax's) */
static double logits(const problem *p, int64_t bh, int64_t i, double *s) {
    const float *q = p->q + (bh * p->sq + i) * p->d;
    int64_t b = bh / p->H, h = bh % p->H;
    double m = -INFINITY;
    for (int64_t j = 0; j < p->sk; j++) {
        float bias = p->bias ? p->bias[b * p->bst[0] + h * p->bst[1] + i * p->bst[2] + j * p->bst[3]] : 0.0f;
        if ((p->causal && j > i) || bias == -INFINITY) {
            s[j] = -INFINITY;
            continue;
        }
        const float *k = p->k + (bh * p->sk + j) * p->d;
        double dot = 0;
        for (int64_t c = 0; c < p->d; c++) dot += (double)q[c] * k[c];
        s[j] = (double)p->scale * dot + bias;
        if (s[j] > m || isnan(s[j])) m = s[j];
    }
    return m;
}

/* out or lse of every row */
static void forward(const problem *p, int64_t result, float *out) {
    #pragma omp parallel
    {
        double *s = malloc(sizeof(double) * (size_t)(p->sk + p->dv));
        if (!s) abort(); /* out of memory */
        double *o = s + p->sk;
        #pragma omp for schedule(static)
        for (int64_t bh = 0; bh < p->B * p->H; bh++)
            for (int64_t i = 0; i < p->sq; i++) {
                double m = logits(p, bh, i, s), l = 0;
                for (int64_t c = 0; c < p->dv; c++) o[c] = 0;
                if (m != -INFINITY)
                    for (int64_t j = 0; j < p->sk; j++) {
                        double e = exp(s[j] - m);
                        l += e;
                        const float *v = p->v + (bh * p->sk + j) * p->dv;
                        for (int64_t c = 0; c < p->dv; c++) o[c] += e * v[c];
                    }
                int64_t row = bh * p->sq + i;
                if (result == 1) out[row] = m != -INFINITY ? (float)(m + log(l)) : -INFINITY;
                else
                    for (int64_t c = 0; c < p->dv; c++) out[row * p->dv + c] = m != -INFINITY ? (float)(o[c] / l) : 0.0f;
            }
        free(s);
    }
}

/* The gradient w.r.t. input `result` (0 q, 1 k, 2 v, 3 bias) into out (that input's shape). */
static void backward(const problem *p, const float *o, const float *dout, const float *lse, int64_t result,
                     float *out, int64_t out_numel) {
    bool dbias = result == 3;
    float *ds_all = NULL; /* dbias: ds of every (b, h, i, j), summed to bias's shape after */
    if (dbias && !(ds_all = malloc(sizeof(float) * (size_t)(p->B * p->H * p->sq * p->sk)))) abort(); /* out of memory */
    int64_t cols = result == 2 ? p->dv : p->d;
    #pragma omp parallel
    {
        double *s = malloc(sizeof(double) * (size_t)(p->sk * (1 + cols)));
        if (!s) abort(); /* out of memory */
        double *acc = s + p->sk; /* dq of a row, or dk / dv of every key: [sk][cols] */
        #pragma omp for schedule(static)
        for (int64_t bh = 0; bh < p->B * p->H; bh++) {
            for (int64_t x = 0; x < p->sk * cols; x++) acc[x] = 0;
            for (int64_t i = 0; i < p->sq; i++) {
                int64_t row = bh * p->sq + i;
                const float *qi = p->q + row * p->d, *oi = o + row * p->dv, *doi = dout + row * p->dv;
                logits(p, bh, i, s);
                double delta = 0;
                for (int64_t c = 0; c < p->dv; c++) delta += (double)doi[c] * oi[c];
                if (result == 0)
                    for (int64_t c = 0; c < p->d; c++) acc[c] = 0;
                for (int64_t j = 0; j < p->sk; j++) {
                    double pr = lse[row] != -INFINITY ? exp(s[j] - lse[row]) : 0.0;
                    const float *vj = p->v + (bh * p->sk + j) * p->dv, *kj = p->k + (bh * p->sk + j) * p->d;
                    double dp = 0;
                    for (int64_t c = 0; c < p->dv; c++) dp += (double)doi[c] * vj[c];
                    double ds = pr * (dp - delta);
                    if (result == 0)
                        for (int64_t c = 0; c < p->d; c++) acc[c] += ds * kj[c];
                    else if (result == 1)
                        for (int64_t c = 0; c < p->d; c++) acc[j * p->d + c] += ds * qi[c];
                    else if (result == 2)
                        for (int64_t c = 0; c < p->dv; c++) acc[j * p->dv + c] += pr * doi[c];
                    else
                        ds_all[row * p->sk + j] = (float)ds;
                }
                if (result == 0)
                    for (int64_t c = 0; c < p->d; c++) out[row * p->d + c] = (float)(p->scale * acc[c]);
            }
            if (result == 1 || result == 2)
                for (int64_t x = 0; x < p->sk * cols; x++)
                    out[bh * p->sk * cols + x] = (float)(result == 1 ? p->scale * acc[x] : acc[x]);
        }
        free(s);
    }
    if (dbias) {
        memset(out, 0, sizeof(float) * (size_t)out_numel);
        int64_t n = 0;
        for (int64_t b = 0; b < p->B; b++)
            for (int64_t h = 0; h < p->H; h++)
                for (int64_t i = 0; i < p->sq; i++)
                    for (int64_t j = 0; j < p->sk; j++)
                        out[b * p->bst[0] + h * p->bst[1] + i * p->bst[2] + j * p->bst[3]] += ds_all[n++];
        free(ds_all);
    }
}

bool dc_ref_attention(const dc_ref_args *a) {
    problem p = problem_of(a);
    const dc_attention_attr *at = &a->n->attr.attention;
    if (a->n->op == DC_OP_ATTENTION) {
        forward(&p, at->result, a->out->data);
    } else {
        int nf = fwd_inputs(at);
        backward(&p, a->in[nf]->data, a->in[nf + 1]->data, a->in[nf + 2]->data, at->result, a->out->data,
                 dc_numel(&a->out->type.shape));
    }
    return true;
}
