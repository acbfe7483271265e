/* test_ops_contraction.c — forward tests of matmul, linear, conv2d, avg_pool and upsample:
 * a hand-computed tiny case each, and random shapes (groups, stride 2, padding, transpose
 * flags, broadcast batch dims, sizes that are not multiples of 16, sizes past the GEMM's cache
 * blocks) against naive loops in double written index by index. */
#include "tests/test.h"

#include <stdint.h>
#include <stdlib.h>

#include "runtime/ref/ref.h"
#include "tests/op_util.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* A tensor with values in [-1, 1) from a small LCG keyed by seed. */
static dc_tensor *rand_tensor(int rank, const int64_t *dims, uint32_t seed) {
    dc_type t = { .dtype = DC_F32, .shape = { .rank = rank } };
    for (int i = 0; i < rank; i++) t.shape.dim[i] = dims[i];
    dc_tensor *x = dc_tensor_new(&t);
    uint32_t s = seed * 2654435761u + 12345u;
    float *p = x->data;
    for (int64_t i = 0; i < dc_numel(&t.shape); i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) / 8388608.0 - 1.0);
    }
    return x;
}

/* Compares got against want (double) elementwise; reports the first mismatch. */
static void check_close(const dc_tensor *got, const double *want, int64_t n, double tol,
                        const char *what) {
    CHECK_EQ_INT(dc_numel(&got->type.shape), n);
    for (int64_t i = 0; i < n; i++) {
        double g = tu_get(got, i);
        if (fabs(g - want[i]) > tol * (1.0 + fabs(want[i]))) {
            CHECK_MSG(false, "%s: element %lld = %.9g, expected %.9g", what, (long long)i, g,
                      want[i]);
            return;
        }
    }
}

static void check_exact(const dc_tensor *got, const float *want, int64_t n) {
    CHECK_EQ_INT(dc_numel(&got->type.shape), n);
    for (int64_t i = 0; i < n; i++) CHECK_NEAR(tu_get(got, i), want[i], 0, 0);
}

static dc_tensor *eval1(dc_op op, const dc_attr *attr, int n_in, dc_tensor *const *ins) {
    char err[DC_ERR_LEN] = "";
    dc_tensor *r = tu_eval(op, attr, n_in, ins, NULL, 0, err, sizeof err);
    CHECK_MSG(r != NULL, "%s failed: %s", dc_op_name(op), err);
    return r;
}

/* ---- matmul ------------------------------------------------------------------------------- */

OP_TEST(MATMUL, hand) {
    dc_tensor *a = tu_tensor(DC_F32, 2, (int64_t[]){ 2, 2 }, (float[]){ 1, 2, 3, 4 });
    dc_tensor *b = tu_tensor(DC_F32, 2, (int64_t[]){ 2, 2 }, (float[]){ 5, 6, 7, 8 });
    dc_attr plain = { .matmul = { false, false } }, tb = { .matmul = { false, true } };
    dc_attr ta = { .matmul = { true, false } };
    dc_tensor *r = eval1(DC_OP_MATMUL, &plain, 2, (dc_tensor *[]){ a, b });
    if (r) check_exact(r, (float[]){ 19, 22, 43, 50 }, 4);
    dc_tensor *rt = eval1(DC_OP_MATMUL, &tb, 2, (dc_tensor *[]){ a, b }); /* a @ b^T */
    if (rt) check_exact(rt, (float[]){ 17, 23, 39, 53 }, 4);
    dc_tensor *ra = eval1(DC_OP_MATMUL, &ta, 2, (dc_tensor *[]){ a, b }); /* a^T @ b */
    if (ra) check_exact(ra, (float[]){ 26, 30, 38, 44 }, 4);
    tu_free(5, a, b, r, rt, ra);
}

/* Naive a @ b in double over full multi-indices of the output [batch..., M, N]. */
static double *naive_matmul(const dc_tensor *a, const dc_tensor *b, bool ta, bool tb,
                            const dc_shape *out) {
    const dc_shape *sa = &a->type.shape, *sb = &b->type.shape;
    int R = out->rank;
    int64_t M = out->dim[R - 2], N = out->dim[R - 1];
    int64_t K = ta ? sa->dim[sa->rank - 2] : sa->dim[sa->rank - 1];
    int64_t total = dc_numel(out);
    double *c = calloc((size_t)total, sizeof *c);
    const float *pa = a->data, *pb = b->data;
    for (int64_t flat = 0; flat < total; flat++) {
        int64_t idx[DC_MAX_RANK], rem = flat;
        for (int d = R - 1; d >= 0; d--) {
            idx[d] = rem % out->dim[d];
            rem /= out->dim[d];
        }
        int64_t i = idx[R - 2], j = idx[R - 1];
        /* flat offsets of the batch part of a and b, broadcasting size-1 dims */
        int64_t oa = 0, ob = 0;
        for (int d = 0; d < sa->rank - 2; d++) {
            int64_t id = idx[d + (R - sa->rank)];
            oa = oa * sa->dim[d] + (sa->dim[d] == 1 ? 0 : id);
        }
        for (int d = 0; d < sb->rank - 2; d++) {
            int64_t id = idx[d + (R - sb->rank)];
            ob = ob * sb->dim[d] + (sb->dim[d] == 1 ? 0 : id);
        }
        oa *= M * K;
        ob *= K * N;
        double s = 0;
        for (int64_t k = 0; k < K; k++) {
            double av = ta ? pa[oa + k * M + i] : pa[oa + i * K + k];
            double bv = tb ? pb[ob + j * K + k] : pb[ob + k * N + j];
            s += av * bv;
        }
        c[flat] = s;
    }
    return c;
}

static void matmul_case(int ra, const int64_t *da, int rb, const int64_t *db, bool ta, bool tb,
                        uint32_t seed) {
    dc_tensor *a = rand_tensor(ra, da, seed), *b = rand_tensor(rb, db, seed + 1);
    dc_attr at = { .matmul = { ta, tb } };
    dc_tensor *r = eval1(DC_OP_MATMUL, &at, 2, (dc_tensor *[]){ a, b });
    if (r) {
        double *want = naive_matmul(a, b, ta, tb, &r->type.shape);
        check_close(r, want, dc_numel(&r->type.shape), 1e-5, "matmul");
        free(want);
    }
    tu_free(3, a, b, r);
}

OP_TEST(MATMUL, random_shapes) {
    matmul_case(2, (int64_t[]){ 5, 17 }, 2, (int64_t[]){ 17, 19 }, false, false, 1);
    matmul_case(3, (int64_t[]){ 3, 17, 5 }, 3, (int64_t[]){ 3, 17, 19 }, true, false, 2);
    matmul_case(2, (int64_t[]){ 7, 9 }, 3, (int64_t[]){ 4, 11, 9 }, false, true, 3);
    matmul_case(4, (int64_t[]){ 2, 1, 9, 7 }, 3, (int64_t[]){ 3, 5, 9 }, true, true, 4);
    matmul_case(3, (int64_t[]){ 1, 1, 1 }, 4, (int64_t[]){ 2, 1, 1, 3 }, false, false, 5);
    /* past the cache blocks: K > 128, N > 512, M not a multiple of 8 */
    matmul_case(2, (int64_t[]){ 13, 150 }, 2, (int64_t[]){ 150, 530 }, false, false, 6);
}

/* ---- linear ------------------------------------------------------------------------------- */

OP_TEST(LINEAR, hand) {
    dc_tensor *x = tu_tensor(DC_F32, 2, (int64_t[]){ 1, 2 }, (float[]){ 1, 2 });
    dc_tensor *w = tu_tensor(DC_F32, 2, (int64_t[]){ 2, 3 }, (float[]){ 1, 0, 2, 0, 1, 3 });
    dc_tensor *b = tu_tensor(DC_F32, 1, (int64_t[]){ 3 }, (float[]){ 10, 20, 30 });
    dc_tensor *r = eval1(DC_OP_LINEAR, NULL, 3, (dc_tensor *[]){ x, w, b });
    if (r) {
        CHECK_EQ_INT(r->type.shape.rank, 2);
        check_exact(r, (float[]){ 11, 22, 38 }, 3);
    }
    tu_free(4, x, w, b, r);
}

/* linear on x [2, 3, I] vs a naive double loop (bias added first, in double) */
static void linear_case(int64_t I, int64_t O, uint32_t seed) {
    int64_t rows = 2 * 3;
    dc_tensor *x = rand_tensor(3, (int64_t[]){ 2, 3, I }, seed);
    dc_tensor *w = rand_tensor(2, (int64_t[]){ I, O }, seed + 1);
    dc_tensor *b = rand_tensor(1, (int64_t[]){ O }, seed + 2);
    dc_tensor *r = eval1(DC_OP_LINEAR, NULL, 3, (dc_tensor *[]){ x, w, b });
    if (r) {
        CHECK_EQ_INT(r->type.shape.rank, 3);
        CHECK_EQ_INT(r->type.shape.dim[2], O);
        double *want = malloc((size_t)(rows * O) * sizeof *want);
        const float *px = x->data, *pw = w->data, *pb = b->data;
        for (int64_t i = 0; i < rows; i++)
            for (int64_t o = 0; o < O; o++) {
                double s = pb[o];
                for (int64_t k = 0; k < I; k++) s += (double)px[i * I + k] * pw[k * O + o];
                want[i * O + o] = s;
            }
        check_close(r, want, rows * O, 1e-5, "linear");
        free(want);
    }
    tu_free(4, x, w, b, r);
}

OP_TEST(LINEAR, random_shapes) {
    linear_case(13, 21, 10);
    linear_case(140, 600, 13); /* more than one k block and one column tile */
}

/* ---- conv2d ------------------------------------------------------------------------------- */

static dc_attr conv_attr(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t groups) {
    dc_attr a;
    memset(&a, 0, sizeof a);
    a.conv.stride = (dc_ints){ 2, { sh, sw } };
    a.conv.pad = (dc_ints){ 2, { ph, pw } };
    a.conv.groups = groups;
    return a;
}

OP_TEST(CONV2D, hand) {
    dc_tensor *x = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 3, 3, 1 }, (float[]){ 1, 2, 3, 4, 5, 6, 7, 8, 9 });
    dc_tensor *w2 = tu_tensor(DC_F32, 4, (int64_t[]){ 2, 2, 1, 1 }, (float[]){ 1, 1, 1, 1 });
    dc_tensor *w3 = tu_tensor(DC_F32, 4, (int64_t[]){ 3, 3, 1, 1 }, (float[]){ 1, 1, 1, 1, 1, 1, 1, 1, 1 });
    dc_attr plain = conv_attr(1, 1, 0, 0, 1), strided = conv_attr(2, 2, 1, 1, 1);
    /* 2x2 window sums of the 3x3 image */
    dc_tensor *r1 = eval1(DC_OP_CONV2D, &plain, 2, (dc_tensor *[]){ x, w2 });
    if (r1) check_exact(r1, (float[]){ 12, 16, 24, 28 }, 4);
    /* 3x3 ones, pad 1, stride 2: windows centred on the corners */
    dc_tensor *r2 = eval1(DC_OP_CONV2D, &strided, 2, (dc_tensor *[]){ x, w3 });
    if (r2) check_exact(r2, (float[]){ 12, 16, 24, 28 }, 4);
    /* groups = 2: channel c only sees weight c */
    dc_tensor *xg = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 1, 2 }, (float[]){ 1, 2 });
    dc_tensor *wg = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 1, 2 }, (float[]){ 3, 4 });
    dc_attr grouped = conv_attr(1, 1, 0, 0, 2);
    dc_tensor *r3 = eval1(DC_OP_CONV2D, &grouped, 2, (dc_tensor *[]){ xg, wg });
    if (r3) check_exact(r3, (float[]){ 3, 8 }, 2);
    tu_free(8, x, w2, w3, r1, r2, xg, wg, r3);
}

/* One random conv vs a naive loop over every output element and every kernel tap. */
static void conv_case(int64_t N, int64_t H, int64_t W, int64_t C, int64_t KH, int64_t KW,
                      int64_t O, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t G,
                      uint32_t seed) {
    dc_tensor *x = rand_tensor(4, (int64_t[]){ N, H, W, C }, seed);
    dc_tensor *w = rand_tensor(4, (int64_t[]){ KH, KW, C / G, O }, seed + 1);
    dc_attr at = conv_attr(sh, sw, ph, pw, G);
    dc_tensor *r = eval1(DC_OP_CONV2D, &at, 2, (dc_tensor *[]){ x, w });
    int64_t OH = (H + 2 * ph - KH) / sh + 1, OW = (W + 2 * pw - KW) / sw + 1;
    if (r) {
        CHECK_EQ_INT(r->type.shape.dim[1], OH);
        CHECK_EQ_INT(r->type.shape.dim[2], OW);
        CHECK_EQ_INT(r->type.shape.dim[3], O);
        double *want = calloc((size_t)(N * OH * OW * O), sizeof *want);
        const float *px = x->data, *pw_ = w->data;
        int64_t cg = C / G, og = O / G;
        for (int64_t n = 0; n < N; n++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++)
                    for (int64_t o = 0; o < O; o++) {
                        double s = 0;
                        int64_t g = o / og;
                        for (int64_t i = 0; i < KH; i++)
                            for (int64_t j = 0; j < KW; j++)
                                for (int64_t c = 0; c < cg; c++) {
                                    int64_t y = oh * sh + i - ph, xx = ow * sw + j - pw;
                                    if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
                                    s += (double)px[((n * H + y) * W + xx) * C + g * cg + c] *
                                         pw_[((i * KW + j) * cg + c) * O + o];
                                }
                        want[((n * OH + oh) * OW + ow) * O + o] = s;
                    }
        check_close(r, want, N * OH * OW * O, 1e-5, "conv2d");
        free(want);
    }
    tu_free(3, x, w, r);
}

OP_TEST(CONV2D, random_shapes) {
    conv_case(2, 7, 6, 6, 3, 2, 9, 2, 1, 1, 0, 3, 20);   /* groups 3, stride (2,1), pad (1,0) */
    conv_case(1, 9, 9, 4, 3, 3, 4, 2, 2, 1, 1, 4, 21);   /* depthwise, stride 2, pad 1 */
    conv_case(1, 5, 5, 17, 1, 1, 19, 1, 1, 0, 0, 1, 22); /* 1x1, odd channel counts */
    conv_case(2, 8, 8, 5, 3, 3, 18, 1, 1, 1, 1, 1, 23);  /* same padding */
    conv_case(1, 6, 7, 8, 4, 3, 6, 2, 2, 2, 0, 2, 24);   /* even kernel, groups 2 */
}

/* ---- avg_pool, upsample ------------------------------------------------------------------- */

OP_TEST(AVG_POOL, hand) {
    dc_tensor *x = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 2, 4, 1 }, (float[]){ 1, 2, 3, 4, 5, 6, 7, 9 });
    dc_attr at = { .pool = { 2 } };
    dc_tensor *r = eval1(DC_OP_AVG_POOL, &at, 1, (dc_tensor *[]){ x });
    if (r) check_exact(r, (float[]){ 3.5f, 5.75f }, 2);
    tu_free(2, x, r);
}

OP_TEST(AVG_POOL, random_shapes) {
    int64_t N = 2, H = 6, W = 9, C = 5, f = 3;
    dc_tensor *x = rand_tensor(4, (int64_t[]){ N, H, W, C }, 30);
    dc_attr at = { .pool = { f } };
    dc_tensor *r = eval1(DC_OP_AVG_POOL, &at, 1, (dc_tensor *[]){ x });
    if (r) {
        double want[2 * 2 * 3 * 5];
        const float *p = x->data;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < H / f; i++)
                for (int64_t j = 0; j < W / f; j++)
                    for (int64_t c = 0; c < C; c++) {
                        double s = 0;
                        for (int64_t y = i * f; y < i * f + f; y++)
                            for (int64_t xx = j * f; xx < j * f + f; xx++)
                                s += p[((n * H + y) * W + xx) * C + c];
                        want[((n * (H / f) + i) * (W / f) + j) * C + c] = s / (double)(f * f);
                    }
        check_close(r, want, N * (H / f) * (W / f) * C, 1e-6, "avg_pool");
    }
    tu_free(2, x, r);
}

OP_TEST(UPSAMPLE, hand) {
    dc_tensor *x = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 2, 1 }, (float[]){ 1, 2 });
    dc_attr at = { .pool = { 2 } };
    dc_tensor *r = eval1(DC_OP_UPSAMPLE, &at, 1, (dc_tensor *[]){ x });
    if (r) {
        CHECK_EQ_INT(r->type.shape.dim[1], 2);
        CHECK_EQ_INT(r->type.shape.dim[2], 4);
        check_exact(r, (float[]){ 1, 1, 2, 2, 1, 1, 2, 2 }, 8);
    }
    tu_free(2, x, r);
}

OP_TEST(UPSAMPLE, random_shapes) {
    int64_t N = 2, H = 3, W = 5, C = 7, f = 3;
    dc_tensor *x = rand_tensor(4, (int64_t[]){ N, H, W, C }, 40);
    dc_attr at = { .pool = { f } };
    dc_tensor *r = eval1(DC_OP_UPSAMPLE, &at, 1, (dc_tensor *[]){ x });
    if (r) {
        int64_t OH = H * f, OW = W * f;
        double *want = malloc((size_t)(N * OH * OW * C) * sizeof *want);
        const float *p = x->data;
        for (int64_t n = 0; n < N; n++)
            for (int64_t y = 0; y < OH; y++)
                for (int64_t xx = 0; xx < OW; xx++)
                    for (int64_t c = 0; c < C; c++)
                        want[((n * OH + y) * OW + xx) * C + c] =
                            p[((n * H + y / f) * W + xx / f) * C + c];
        check_close(r, want, N * OH * OW * C, 0, "upsample");
        free(want);
    }
    tu_free(2, x, r);
}

TEST(ref_eval_refuses_ops_without_kernel) {
    dc_graph *g = dc_graph_new("t");
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = DC_OP_INPUT;
    char err[DC_ERR_LEN] = "";
    CHECK(!dc_ref_eval(g, &n, NULL, NULL, 0, err, sizeof err));
    CHECK_STR_EQ(err, "no ref kernel for input");
    dc_graph_free(g);
}
