/* test_ops_backward.c — forward tests of the dedicated backward ops (conv2d_bwd_data,
 * conv2d_bwd_weight, layer_norm_bwd, group_norm_bwd, softmax_bwd, scatter_add, unslice,
 * straight_through). Oracles: hand-computed cases; the gradients as brute-force sums written
 * index by index in double (scattering where the kernels gather); central finite differences
 * of the forward op computed in double; and adjoint identities against the forward kernels,
 * <op(x), dy> = <x, op_bwd(dy)>. Every kernel runs on an output filled with NaN first, so an
 * element it fails to write shows up. Tolerances: kernels sum in f32 (or double, rounded
 * once); the sums here have at most a few hundred terms of size <= 1, so 1e-5 relative is
 * ~100 ulps of headroom; finite differences with h = 1e-4 in double have truncation error
 * ~h^2 = 1e-8 times the third derivative, far below the 2e-5 used for them. */
#include "tests/test.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

#include "tests/op_util.h"

/* ---- helpers -------------------------------------------------------------------------- */

/* f32 values in [-1, 1) from a xorshift keyed by seed. */
static dc_tensor *rnd(int rank, const int64_t *dims, uint64_t seed) {
    dc_type t = { .dtype = DC_F32, .shape = { .rank = rank } };
    for (int i = 0; i < rank; i++) t.shape.dim[i] = dims[i];
    dc_tensor *x = dc_tensor_new(&t);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    float *p = x->data;
    for (int64_t i = 0; i < dc_numel(&t.shape); i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = (float)((double)(s >> 11) / 4503599627370496.0 - 1.0);
    }
    return x;
}

static dc_type f32_type(int rank, const int64_t *dims) {
    dc_type t = { .dtype = DC_F32, .shape = { .rank = rank } };
    for (int i = 0; i < rank; i++) t.shape.dim[i] = dims[i];
    return t;
}

/* Evaluates op on ins through its shape rule and ref kernel, into an output that starts as
 * NaN (f32) or 0x7f7f7f7f (i32). NULL with the message in err on failure. */
static dc_tensor *eval_poisoned(dc_op op, const dc_attr *attr, int n_in, dc_tensor *const *ins,
                                const dc_type *declared, char *err, size_t len) {
    dc_graph *g = dc_graph_new("bwd");
    int ids[DC_MAX_INPUTS];
    for (int i = 0; i < n_in; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        ids[i] = dc_graph_emit(g, DC_OP_INPUT, 0, NULL, NULL, &ins[i]->type, name, NULL, 0, err, len);
    }
    int id = dc_graph_emit(g, op, n_in, ids, attr, declared, NULL, NULL, 0, err, len);
    dc_tensor *out = NULL;
    if (id >= 0) {
        out = dc_tensor_new(&g->nodes[id].type);
        memset(out->data, 0x7f, (size_t)dc_numel(&out->type.shape) * 4);
        if (out->type.dtype == DC_F32)
            for (int64_t i = 0; i < dc_numel(&out->type.shape); i++) ((float *)out->data)[i] = NAN;
        if (!dc_ref_eval(g, &g->nodes[id], (const dc_tensor *const *)ins, out, 0, err, len)) {
            dc_tensor_free(out);
            out = NULL;
        }
    }
    dc_graph_free(g);
    return out;
}

/* eval_poisoned that reports a failure */
static dc_tensor *run(dc_op op, const dc_attr *attr, int n_in, dc_tensor *const *ins,
                      const dc_type *declared) {
    char err[DC_ERR_LEN];
    dc_tensor *r = eval_poisoned(op, attr, n_in, ins, declared, err, sizeof err);
    CHECK_MSG(r, "%s failed: %s", dc_op_name(op), err);
    return r;
}

/* got (f32) against want (double): |got - want| <= tol * (1 + |want|); first mismatch. */
static void check_close(const dc_tensor *got, const double *want, int64_t n, double tol,
                        const char *what) {
    CHECK_EQ_INT(dc_numel(&got->type.shape), n);
    for (int64_t i = 0; i < n; i++) {
        double g = tu_get(got, i);
        if (!(fabs(g - want[i]) <= tol * (1.0 + fabs(want[i])))) {
            CHECK_MSG(false, "%s: element %lld = %.9g, expected %.9g", what, (long long)i, g, want[i]);
            return;
        }
    }
}

/* sum of a[i] * b[i] in double */
static double dot(const dc_tensor *a, const dc_tensor *b) {
    double s = 0;
    for (int64_t i = 0; i < dc_numel(&a->type.shape); i++) s += tu_get(a, i) * tu_get(b, i);
    return s;
}

static dc_attr conv_attr(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t groups) {
    dc_attr a;
    memset(&a, 0, sizeof a);
    a.conv.stride = (dc_ints){ 2, { sh, sw } };
    a.conv.pad = (dc_ints){ 2, { ph, pw } };
    a.conv.groups = groups;
    return a;
}

/* ---- conv2d backward -------------------------------------------------------------------- */

OP_TEST(CONV2D_BWD_DATA, hand) {
    /* 1x1 image 2x2, 2x2 kernel of ones, no pad: y = sum of x, so dx = dy everywhere */
    dc_tensor *dy = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 1, 1 }, (float[]){ 3 });
    dc_tensor *w = tu_tensor(DC_F32, 4, (int64_t[]){ 2, 2, 1, 1 }, (float[]){ 1, 2, 3, 4 });
    dc_attr at = conv_attr(1, 1, 0, 0, 1);
    dc_type xt = f32_type(4, (int64_t[]){ 1, 2, 2, 1 });
    dc_tensor *dx = run(DC_OP_CONV2D_BWD_DATA, &at, 2, (dc_tensor *[]){ dy, w }, &xt);
    if (dx) check_close(dx, (double[]){ 3, 6, 9, 12 }, 4, 0, "dx");
    /* stride 2 over a 3-wide input with a 1-wide kernel: column 1 is never read, dx = 0 */
    dc_tensor *dy2 = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 2, 1 }, (float[]){ 5, 7 });
    dc_tensor *w2 = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 1, 1 }, (float[]){ 2 });
    dc_attr at2 = conv_attr(1, 2, 0, 0, 1);
    dc_type xt2 = f32_type(4, (int64_t[]){ 1, 1, 3, 1 });
    dc_tensor *dx2 = run(DC_OP_CONV2D_BWD_DATA, &at2, 2, (dc_tensor *[]){ dy2, w2 }, &xt2);
    if (dx2) check_close(dx2, (double[]){ 10, 0, 14 }, 3, 0, "dx stride 2");
    tu_free(6, dy, w, dx, dy2, w2, dx2);
}

OP_TEST(CONV2D_BWD_WEIGHT, hand) {
    /* y[0,0] = sum_kw x[kw] w[kw] over a 1x3 input, 1x2 kernel: y = [x0w0+x1w1, x1w0+x2w1],
     * dw0 = dy0 x0 + dy1 x1, dw1 = dy0 x1 + dy1 x2 */
    dc_tensor *x = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 3, 1 }, (float[]){ 1, 2, 3 });
    dc_tensor *dy = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 2, 1 }, (float[]){ 10, 100 });
    dc_attr at = conv_attr(1, 1, 0, 0, 1);
    dc_type wt = f32_type(4, (int64_t[]){ 1, 2, 1, 1 });
    dc_tensor *dw = run(DC_OP_CONV2D_BWD_WEIGHT, &at, 2, (dc_tensor *[]){ x, dy }, &wt);
    if (dw) check_close(dw, (double[]){ 210, 320 }, 2, 0, "dw");
    tu_free(3, x, dy, dw);
}

typedef struct { int64_t N, H, W, C, KH, KW, O, sh, sw, ph, pw, G; } conv_case;

/* dx and dw of one conv against brute-force scatters in double of dy through every
 * (output, tap) pair, and both against the adjoint identities with the forward conv2d:
 * <conv(x, w), dy> = <x, dx> = <w, dw>. */
static void conv_bwd_case(conv_case k, uint64_t seed) {
    int64_t OH = (k.H + 2 * k.ph - k.KH) / k.sh + 1, OW = (k.W + 2 * k.pw - k.KW) / k.sw + 1;
    int64_t CG = k.C / k.G, OG = k.O / k.G;
    dc_tensor *x = rnd(4, (int64_t[]){ k.N, k.H, k.W, k.C }, seed);
    dc_tensor *w = rnd(4, (int64_t[]){ k.KH, k.KW, CG, k.O }, seed + 1);
    dc_tensor *dy = rnd(4, (int64_t[]){ k.N, OH, OW, k.O }, seed + 2);
    dc_attr at = conv_attr(k.sh, k.sw, k.ph, k.pw, k.G);
    dc_tensor *dx = run(DC_OP_CONV2D_BWD_DATA, &at, 2, (dc_tensor *[]){ dy, w }, &x->type);
    dc_tensor *dw = run(DC_OP_CONV2D_BWD_WEIGHT, &at, 2, (dc_tensor *[]){ x, dy }, &w->type);
    dc_tensor *y = run(DC_OP_CONV2D, &at, 2, (dc_tensor *[]){ x, w }, NULL);
    int64_t nx = dc_numel(&x->type.shape), nw = dc_numel(&w->type.shape);
    double *wx = calloc((size_t)nx, sizeof *wx), *ww = calloc((size_t)nw, sizeof *ww);
    const float *px = x->data, *pw = w->data, *pdy = dy->data;
    for (int64_t n = 0; n < k.N; n++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++)
                for (int64_t o = 0; o < k.O; o++)
                    for (int64_t i = 0; i < k.KH; i++)
                        for (int64_t j = 0; j < k.KW; j++)
                            for (int64_t c = 0; c < CG; c++) {
                                int64_t ih = oh * k.sh - k.ph + i, iw = ow * k.sw - k.pw + j;
                                if (ih < 0 || ih >= k.H || iw < 0 || iw >= k.W) continue;
                                int64_t xi = ((n * k.H + ih) * k.W + iw) * k.C + o / OG * CG + c;
                                int64_t wi = ((i * k.KW + j) * CG + c) * k.O + o;
                                double g = pdy[((n * OH + oh) * OW + ow) * k.O + o];
                                wx[xi] += g * pw[wi];
                                ww[wi] += g * px[xi];
                            }
    if (dx) check_close(dx, wx, nx, 1e-5, "conv2d_bwd_data");
    if (dw) check_close(dw, ww, nw, 1e-5, "conv2d_bwd_weight");
    if (dx && dw && y) {
        double ydy = dot(y, dy);
        CHECK_NEAR(dot(x, dx), ydy, 1e-4, 1e-5);
        CHECK_NEAR(dot(w, dw), ydy, 1e-4, 1e-5);
    }
    free(wx);
    free(ww);
    tu_free(6, x, w, dy, dx, dw, y);
}

static const conv_case conv_cases[] = {
    { 2, 7, 6, 6, 3, 2, 9, 2, 1, 1, 0, 3 },   /* groups 3, stride (2,1), pad (1,0) */
    { 1, 9, 8, 4, 3, 3, 4, 2, 2, 1, 1, 4 },   /* depthwise, stride 2 with floor, pad 1 */
    { 1, 5, 5, 17, 1, 1, 19, 1, 1, 0, 0, 1 }, /* 1x1, odd channel counts */
    { 2, 8, 8, 5, 3, 3, 18, 1, 1, 1, 1, 1 },  /* same padding */
    { 1, 6, 7, 8, 4, 3, 6, 3, 2, 2, 0, 2 },   /* even kernel, stride 3, groups 2 */
};

OP_TEST(CONV2D_BWD_DATA, brute_force_and_adjoint) {
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) conv_bwd_case(conv_cases[i], 10 * i);
}

OP_TEST(CONV2D_BWD_WEIGHT, big_enough_to_run_in_parallel) {
    conv_bwd_case((conv_case){ 2, 12, 12, 8, 3, 3, 16, 1, 1, 1, 1, 2 }, 77);
}

/* ---- norms: finite differences of the forward norm in double ---------------------------- */

/* L(x) = sum dy * norm(x) in double, norm over blocks of (S positions x cg channels) per
 * (n, group) of x viewed as [N, S, C]; gamma scales, beta does not matter. */
static double norm_loss(const double *x, const float *dy, const float *gamma, int64_t N, int64_t S,
                        int64_t C, int64_t G, double eps) {
    int64_t cg = C / G;
    double L = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            double m = 0, v = 0;
            for (int64_t s = 0; s < S; s++)
                for (int64_t c = g * cg; c < (g + 1) * cg; c++) m += x[(n * S + s) * C + c];
            m /= (double)(S * cg);
            for (int64_t s = 0; s < S; s++)
                for (int64_t c = g * cg; c < (g + 1) * cg; c++) v += pow(x[(n * S + s) * C + c] - m, 2);
            double r = 1 / sqrt(v / (double)(S * cg) + eps);
            for (int64_t s = 0; s < S; s++)
                for (int64_t c = g * cg; c < (g + 1) * cg; c++) {
                    int64_t i = (n * S + s) * C + c;
                    L += dy[i] * (x[i] - m) * r * gamma[c];
                }
        }
    return L;
}

/* One norm backward op on x of the given dims against central differences of norm_loss.
 * group: N = dims[0] and G groups; layer: every row of C is a block (N = rows, G = 1). */
static void norm_bwd_case(dc_op op, int rank, const int64_t *dims, int64_t G, float eps, uint64_t seed) {
    dc_tensor *x = rnd(rank, dims, seed), *dy = rnd(rank, dims, seed + 1);
    int64_t C = dims[rank - 1], numel = dc_numel(&x->type.shape);
    dc_tensor *gamma = rnd(1, &C, seed + 2);
    dc_attr at;
    memset(&at, 0, sizeof at);
    bool group = op == DC_OP_GROUP_NORM_BWD;
    if (group) at.group_norm = (dc_group_norm_attr){ G, eps };
    else at.eps.eps = eps;
    int64_t N = group ? dims[0] : numel / C, S = numel / N / C;
    dc_tensor *dx = run(op, &at, 3, (dc_tensor *[]){ x, gamma, dy }, NULL);
    double *xd = malloc((size_t)numel * sizeof *xd), *want = malloc((size_t)numel * sizeof *want);
    for (int64_t i = 0; i < numel; i++) xd[i] = ((float *)x->data)[i];
    const double h = 1e-4;
    for (int64_t i = 0; i < numel; i++) {
        double keep = xd[i];
        xd[i] = keep + h;
        double lp = norm_loss(xd, dy->data, gamma->data, N, S, C, group ? G : 1, eps);
        xd[i] = keep - h;
        double lm = norm_loss(xd, dy->data, gamma->data, N, S, C, group ? G : 1, eps);
        xd[i] = keep;
        want[i] = (lp - lm) / (2 * h);
    }
    if (dx) check_close(dx, want, numel, 2e-5, dc_op_name(op));
    free(xd);
    free(want);
    tu_free(4, x, dy, gamma, dx);
}

OP_TEST(LAYER_NORM_BWD, finite_differences) {
    norm_bwd_case(DC_OP_LAYER_NORM_BWD, 2, (int64_t[]){ 3, 5 }, 1, 1e-5f, 1);
    norm_bwd_case(DC_OP_LAYER_NORM_BWD, 3, (int64_t[]){ 2, 3, 17 }, 1, 1e-3f, 2);
    norm_bwd_case(DC_OP_LAYER_NORM_BWD, 1, (int64_t[]){ 8 }, 1, 0, 3);
}

OP_TEST(GROUP_NORM_BWD, finite_differences) {
    norm_bwd_case(DC_OP_GROUP_NORM_BWD, 4, (int64_t[]){ 2, 3, 2, 6 }, 3, 1e-5f, 4);
    norm_bwd_case(DC_OP_GROUP_NORM_BWD, 3, (int64_t[]){ 2, 4, 4 }, 2, 1e-3f, 5);
    norm_bwd_case(DC_OP_GROUP_NORM_BWD, 2, (int64_t[]){ 3, 6 }, 1, 1e-5f, 6);
}

/* ---- softmax_bwd -------------------------------------------------------------------------- */

OP_TEST(SOFTMAX_BWD, hand) {
    /* y = [0.5, 0.5], dy = [1, 0]: sum(dy*y) = 0.5, dx = [0.25, -0.25] */
    dc_tensor *y = tu_tensor(DC_F32, 1, (int64_t[]){ 2 }, (float[]){ 0.5f, 0.5f });
    dc_tensor *dy = tu_tensor(DC_F32, 1, (int64_t[]){ 2 }, (float[]){ 1, 0 });
    dc_attr at = { .axis = { 0 } };
    dc_tensor *dx = run(DC_OP_SOFTMAX_BWD, &at, 2, (dc_tensor *[]){ y, dy }, NULL);
    if (dx) check_close(dx, (double[]){ 0.25, -0.25 }, 2, 0, "dx");
    tu_free(3, y, dy, dx);
}

/* L = sum dy * softmax(x, axis 1) in double for x [A, D, B]; y (if not NULL) gets the
 * softmax rounded to f32. */
static double softmax_loss(const double *x, const float *dy, int64_t A, int64_t D, int64_t B, float *y) {
    double L = 0;
    for (int64_t a = 0; a < A; a++)
        for (int64_t b = 0; b < B; b++) {
            double z = 0;
            for (int64_t d = 0; d < D; d++) z += exp(x[(a * D + d) * B + b]);
            for (int64_t d = 0; d < D; d++) {
                int64_t i = (a * D + d) * B + b;
                double sm = exp(x[i]) / z;
                if (y) y[i] = (float)sm;
                L += dy[i] * sm;
            }
        }
    return L;
}

/* softmax_bwd(softmax(x), dy) along the middle axis against central differences of
 * softmax_loss. */
OP_TEST(SOFTMAX_BWD, finite_differences) {
    enum { A = 2, D = 5, B = 3, n = A * D * B };
    dc_tensor *x = rnd(3, (int64_t[]){ A, D, B }, 40), *dy = rnd(3, (int64_t[]){ A, D, B }, 41);
    dc_tensor *y = rnd(3, (int64_t[]){ A, D, B }, 42);
    double xd[n], want[n];
    for (int64_t i = 0; i < n; i++) xd[i] = 3 * ((float *)x->data)[i];
    softmax_loss(xd, dy->data, A, D, B, y->data);
    const double h = 1e-4;
    for (int64_t i = 0; i < n; i++) {
        double keep = xd[i];
        xd[i] = keep + h;
        double lp = softmax_loss(xd, dy->data, A, D, B, NULL);
        xd[i] = keep - h;
        double lm = softmax_loss(xd, dy->data, A, D, B, NULL);
        xd[i] = keep;
        want[i] = (lp - lm) / (2 * h);
    }
    dc_attr at = { .axis = { 1 } };
    dc_tensor *dx = run(DC_OP_SOFTMAX_BWD, &at, 2, (dc_tensor *[]){ y, dy }, NULL);
    if (dx) check_close(dx, want, n, 2e-5, "softmax_bwd");
    tu_free(4, x, dy, y, dx);
}

/* ---- scatter_add, unslice -------------------------------------------------------------- */

OP_TEST(SCATTER_ADD, hand) {
    /* rows [1,2], [3,4], [5,6] at indices 2, 0, 2 of 4 rows; row 1 and 3 get nothing */
    dc_tensor *idx = tu_tensor(DC_I32, 1, (int64_t[]){ 3 }, (float[]){ 2, 0, 2 });
    dc_tensor *src = tu_tensor(DC_F32, 2, (int64_t[]){ 3, 2 }, (float[]){ 1, 2, 3, 4, 5, 6 });
    dc_type t = f32_type(2, (int64_t[]){ 4, 2 });
    dc_tensor *r = run(DC_OP_SCATTER_ADD, NULL, 2, (dc_tensor *[]){ idx, src }, &t);
    if (r) check_close(r, (double[]){ 3, 4, 0, 0, 6, 8, 0, 0 }, 8, 0, "scatter_add");
    /* an index outside [0, V) is a run-time error */
    dc_tensor *bad = tu_tensor(DC_I32, 1, (int64_t[]){ 3 }, (float[]){ 2, 4, 0 });
    char err[DC_ERR_LEN];
    dc_tensor *r2 = eval_poisoned(DC_OP_SCATTER_ADD, NULL, 2, (dc_tensor *[]){ bad, src }, &t, err, sizeof err);
    CHECK(!r2);
    if (!r2) CHECK_STR_EQ(err, "scatter_add: index 4 out of range [0, 4)");
    tu_free(5, idx, src, r, bad, r2);
}

/* idx [2,3] into 5 rows of [2,2]: brute force per element in double, and the adjoint of
 * gather: <gather(t, idx), src> = <t, scatter_add(idx, src)>. */
OP_TEST(SCATTER_ADD, brute_force_and_adjoint) {
    dc_tensor *idx = tu_tensor(DC_I32, 2, (int64_t[]){ 2, 3 }, (float[]){ 4, 1, 4, 0, 4, 1 });
    dc_tensor *src = rnd(4, (int64_t[]){ 2, 3, 2, 2 }, 50), *table = rnd(3, (int64_t[]){ 5, 2, 2 }, 51);
    dc_tensor *r = run(DC_OP_SCATTER_ADD, NULL, 2, (dc_tensor *[]){ idx, src }, &table->type);
    dc_tensor *gat = run(DC_OP_GATHER, NULL, 2, (dc_tensor *[]){ table, idx }, NULL);
    double want[20] = { 0 };
    for (int64_t v = 0; v < 5; v++)
        for (int64_t j = 0; j < 6; j++)
            for (int64_t k = 0; k < 4; k++)
                if (((int32_t *)idx->data)[j] == v) want[v * 4 + k] += ((float *)src->data)[j * 4 + k];
    if (r) check_close(r, want, 20, 1e-6, "scatter_add");
    if (r && gat) CHECK_NEAR(dot(table, r), dot(gat, src), 1e-5, 1e-5);
    tu_free(5, idx, src, table, r, gat);
}

OP_TEST(UNSLICE, hand) {
    /* [2] written at positions 1 and 3 of [5] (start 1, step 2) */
    dc_tensor *dy = tu_tensor(DC_F32, 1, (int64_t[]){ 2 }, (float[]){ 7, 8 });
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.slice = (dc_slice_attr){ { 1, { 1 } }, { 1, { 4 } }, { 1, { 2 } } };
    dc_type t = f32_type(1, (int64_t[]){ 5 });
    dc_tensor *r = run(DC_OP_UNSLICE, &at, 1, (dc_tensor *[]){ dy }, &t);
    if (r) check_close(r, (double[]){ 0, 7, 0, 8, 0 }, 5, 0, "unslice");
    /* i32 moves too */
    dc_tensor *di = tu_tensor(DC_I32, 1, (int64_t[]){ 2 }, (float[]){ -3, 9 });
    dc_type ti = { .dtype = DC_I32, .shape = { 1, { 5 } } };
    dc_tensor *ri = run(DC_OP_UNSLICE, &at, 1, (dc_tensor *[]){ di }, &ti);
    if (ri) check_close(ri, (double[]){ 0, -3, 0, 9, 0 }, 5, 0, "unslice i32");
    tu_free(4, dy, r, di, ri);
}

/* x [4,7,5] sliced start (1,0,2) stop (4,7,5) step (2,3,1): brute force by index, and the
 * adjoint of slice: <slice(x), dy> = <x, unslice(dy)>. */
OP_TEST(UNSLICE, brute_force_and_adjoint) {
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.slice = (dc_slice_attr){ { 3, { 1, 0, 2 } }, { 3, { 4, 7, 5 } }, { 3, { 2, 3, 1 } } };
    dc_tensor *x = rnd(3, (int64_t[]){ 4, 7, 5 }, 60), *dy = rnd(3, (int64_t[]){ 2, 3, 3 }, 61);
    dc_tensor *r = run(DC_OP_UNSLICE, &at, 1, (dc_tensor *[]){ dy }, &x->type);
    dc_tensor *s = run(DC_OP_SLICE, &at, 1, (dc_tensor *[]){ x }, NULL);
    double want[4 * 7 * 5] = { 0 };
    for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 3; j++)
            for (int64_t k = 0; k < 3; k++)
                want[((1 + 2 * i) * 7 + 3 * j) * 5 + 2 + k] = ((float *)dy->data)[(i * 3 + j) * 3 + k];
    if (r) check_close(r, want, 4 * 7 * 5, 0, "unslice");
    if (r && s) CHECK_NEAR(dot(x, r), dot(s, dy), 1e-6, 1e-6);
    tu_free(4, x, dy, r, s);
}

/* ---- straight_through ------------------------------------------------------------------- */

OP_TEST(STRAIGHT_THROUGH, value_is_hard) {
    dc_tensor *hard = tu_tensor(DC_F32, 2, (int64_t[]){ 2, 3 }, (float[]){ 0, 1, 0, 1, 0, 0 });
    dc_tensor *soft = rnd(2, (int64_t[]){ 2, 3 }, 70);
    dc_tensor *r = run(DC_OP_STRAIGHT_THROUGH, NULL, 2, (dc_tensor *[]){ hard, soft }, NULL);
    if (r) CHECK(memcmp(r->data, hard->data, 6 * sizeof(float)) == 0);
    tu_free(3, hard, soft, r);
}

/* ---- thread-count independence ------------------------------------------------------------ */

/* Each backward kernel on inputs large enough to split, on 1 and on 4 threads: equal bits. */
TEST(backward_ops_bitwise_equal_across_thread_counts) {
    int64_t xd[4] = { 2, 16, 16, 16 }, wd[4] = { 3, 3, 8, 32 }, yd[4] = { 2, 16, 16, 32 };
    dc_tensor *x = rnd(4, xd, 80), *w = rnd(4, wd, 81), *dy = rnd(4, yd, 82);
    dc_tensor *gam = rnd(1, (int64_t[]){ 16 }, 83), *idx = tu_tensor(DC_I32, 1, (int64_t[]){ 2 }, (float[]){ 1, 1 });
    dc_attr conv = conv_attr(1, 1, 1, 1, 2), ln = { .eps = { 1e-5f } }, gn = { .group_norm = { 4, 1e-5f } };
    dc_attr sm = { .axis = { 3 } };
    dc_type gat = f32_type(4, (int64_t[]){ 3, 16, 16, 16 });
    struct { dc_op op; const dc_attr *at; int n; dc_tensor *in[3]; const dc_type *decl; } c[] = {
        { DC_OP_CONV2D_BWD_DATA, &conv, 2, { dy, w }, &x->type },
        { DC_OP_CONV2D_BWD_WEIGHT, &conv, 2, { x, dy }, &w->type },
        { DC_OP_LAYER_NORM_BWD, &ln, 3, { x, gam, x }, NULL },
        { DC_OP_GROUP_NORM_BWD, &gn, 3, { x, gam, x }, NULL },
        { DC_OP_SOFTMAX_BWD, &sm, 2, { dy, dy }, NULL },
        { DC_OP_SCATTER_ADD, NULL, 2, { idx, x }, &gat },
    };
    int threads = omp_get_max_threads();
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        omp_set_num_threads(1);
        dc_tensor *one = run(c[k].op, c[k].at, c[k].n, c[k].in, c[k].decl);
        omp_set_num_threads(4);
        dc_tensor *four = run(c[k].op, c[k].at, c[k].n, c[k].in, c[k].decl);
        if (one && four)
            CHECK_MSG(memcmp(one->data, four->data, (size_t)dc_numel(&one->type.shape) * 4) == 0,
                      "%s differs between 1 and 4 threads", dc_op_name(c[k].op));
        tu_free(2, one, four);
    }
    omp_set_num_threads(threads);
    tu_free(5, x, w, dy, gam, idx);
}
