/* test_ops_misc.c — forward tests of the computed sources (fill, iota), the normalisations
 * (layer_norm, group_norm against brute-force double loops), the random ops (element i equals
 * the formula over dc_rng_*, reproducible per (seed, stream), distinct across streams, moments)
 * and the losses (cross_entropy against -log softmax in double and its label error; mse). */
#include "tests/test.h"

#include <stdlib.h>

#include "tests/op_util.h"

#define DIMS(...) (int64_t[]){ __VA_ARGS__ }
#define VALS(...) (float[]){ __VA_ARGS__ }

static long long geti(const dc_tensor *t, int64_t i) { return ((const int32_t *)t->data)[i]; }

static dc_tensor *eval(dc_op op, const dc_attr *attr, int n_in, dc_tensor *const *ins,
                       const dc_type *declared, uint64_t seed) {
    char err[256] = "";
    dc_tensor *y = tu_eval(op, attr, n_in, ins, declared, seed, err, sizeof err);
    CHECK_MSG(y != NULL, "%s failed: %s", dc_op_name(op), err);
    return y;
}

static dc_type type_of(dc_dtype dt, int rank, const int64_t *dims) {
    dc_type t = { .dtype = dt, .shape = { .rank = rank } };
    for (int i = 0; i < rank; i++) t.shape.dim[i] = dims[i];
    return t;
}

/* ---- sources --------------------------------------------------------------------------- */

OP_TEST(FILL, f32_and_i32) {
    dc_attr at = { .scalar = { 3.75f } };
    dc_type t = type_of(DC_F32, 2, DIMS(3, 5));
    dc_tensor *y = eval(DC_OP_FILL, &at, 0, NULL, &t, 0);
    if (y)
        for (int i = 0; i < 15; i++) CHECK(tu_get(y, i) == 3.75);
    dc_tensor_free(y);
    at.scalar.value = -3.75f;
    t.dtype = DC_I32;
    y = eval(DC_OP_FILL, &at, 0, NULL, &t, 0);
    if (y)
        for (int i = 0; i < 15; i++) CHECK_EQ_INT(geti(y, i), -3);
    dc_tensor_free(y);
}

/* [2,3,2] iota along axis 1: element (i,j,k) = j */
OP_TEST(IOTA, middle_axis) {
    dc_attr at = { .axis = { 1 } };
    dc_type t = type_of(DC_I32, 3, DIMS(2, 3, 2));
    dc_tensor *y = eval(DC_OP_IOTA, &at, 0, NULL, &t, 0);
    if (y)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 2; k++) CHECK_EQ_INT(geti(y, (i * 3 + j) * 2 + k), j);
    dc_tensor_free(y);
    t = type_of(DC_F32, 2, DIMS(2, 4));
    at.axis.axis = 1;
    y = eval(DC_OP_IOTA, &at, 0, NULL, &t, 0);
    if (y)
        for (int i = 0; i < 8; i++) CHECK(tu_get(y, i) == i % 4);
    dc_tensor_free(y);
}

/* ---- normalisation --------------------------------------------------------------------- */

static float wave(int64_t i) { return sinf((float)i * 1.7f) * 2.0f + (float)(i % 5); }

OP_TEST(LAYER_NORM, rows_against_double) {
    const int R = 6, C = 5;
    float xv[30], gv[5], bv[5];
    for (int i = 0; i < R * C; i++) xv[i] = wave(i);
    for (int c = 0; c < C; c++) gv[c] = 0.5f + 0.25f * (float)c, bv[c] = (float)c - 2.0f;
    dc_tensor *x = tu_tensor(DC_F32, 3, DIMS(2, 3, 5), xv);
    dc_tensor *g = tu_tensor(DC_F32, 1, DIMS(5), gv), *b = tu_tensor(DC_F32, 1, DIMS(5), bv);
    dc_tensor *ins[3] = { x, g, b };
    dc_attr at = { .eps = { 1e-3f } };
    dc_tensor *y = eval(DC_OP_LAYER_NORM, &at, 3, ins, NULL, 0);
    if (y)
        for (int r = 0; r < R; r++) {
            double m = 0, v = 0;
            for (int c = 0; c < C; c++) m += xv[r * C + c] / (double)C;
            for (int c = 0; c < C; c++) v += (xv[r * C + c] - m) * (xv[r * C + c] - m) / C;
            for (int c = 0; c < C; c++)
                CHECK_NEAR(tu_get(y, r * C + c), (xv[r * C + c] - m) / sqrt(v + 1e-3) * gv[c] + bv[c],
                           1e-5, 1e-5);
        }
    tu_free(4, x, g, b, y);
}

/* x [N=2, H=3, W=2, C=6], 3 groups of 2 channels: statistics over the 12 elements of
 * each (n, group), gathered into a list and reduced there */
OP_TEST(GROUP_NORM, nhwc_against_double) {
    const int N = 2, S = 6, C = 6, G = 3, CG = 2;
    float xv[72], gv[6], bv[6];
    for (int i = 0; i < N * S * C; i++) xv[i] = wave(i) * (1.0f + (float)(i % C));
    for (int c = 0; c < C; c++) gv[c] = 1.0f - 0.1f * (float)c, bv[c] = 0.5f * (float)c;
    dc_tensor *x = tu_tensor(DC_F32, 4, DIMS(2, 3, 2, 6), xv);
    dc_tensor *g = tu_tensor(DC_F32, 1, DIMS(6), gv), *b = tu_tensor(DC_F32, 1, DIMS(6), bv);
    dc_tensor *ins[3] = { x, g, b };
    dc_attr at = { .group_norm = { G, 1e-5f } };
    dc_tensor *y = eval(DC_OP_GROUP_NORM, &at, 3, ins, NULL, 0);
    if (y)
        for (int n = 0; n < N; n++)
            for (int grp = 0; grp < G; grp++) {
                int pos[12], k = 0;
                for (int i = 0; i < N * S * C; i++)
                    if (i / (S * C) == n && i % C / CG == grp) pos[k++] = i;
                CHECK_EQ_INT(k, 12);
                double m = 0, v = 0;
                for (int q = 0; q < 12; q++) m += xv[pos[q]];
                m /= 12;
                for (int q = 0; q < 12; q++) v += (xv[pos[q]] - m) * (xv[pos[q]] - m);
                v /= 12;
                for (int q = 0; q < 12; q++) {
                    int c = pos[q] % C;
                    CHECK_NEAR(tu_get(y, pos[q]), (xv[pos[q]] - m) / sqrt(v + 1e-5) * gv[c] + bv[c], 1e-5, 1e-5);
                }
            }
    tu_free(4, x, g, b, y);
}

/* ---- random ---------------------------------------------------------------------------- */

#define NR 200000

static dc_tensor *draw(dc_op op, int64_t stream, float a, float b, uint64_t seed) {
    dc_attr at = { .random = { stream, a, b } };
    dc_type t = type_of(DC_F32, 2, DIMS(NR / 100, 100));
    return eval(op, &at, 0, NULL, &t, seed);
}

/* element i from the formula, reproducibility, distinct streams, mean and variance */
static void check_random(dc_op op, float a, float b, double mean, double var) {
    dc_tensor *y = draw(op, 5, a, b, 77), *again = draw(op, 5, a, b, 77);
    dc_tensor *other = draw(op, 6, a, b, 77), *reseed = draw(op, 5, a, b, 78);
    if (y && again && other && reseed) {
        CHECK(memcmp(y->data, again->data, sizeof(float) * NR) == 0);
        CHECK(memcmp(y->data, other->data, sizeof(float) * NR) != 0);
        CHECK(memcmp(y->data, reseed->data, sizeof(float) * NR) != 0);
        for (int64_t i = 0; i < NR; i += 997) {
            double want;
            if (op == DC_OP_NORMAL) want = a + b * (double)dc_rng_normal(77, 5, (uint64_t)i);
            else {
                double u = dc_rng_uniform01(77, 5, (uint64_t)i);
                want = op == DC_OP_UNIFORM ? a + (b - a) * u : a - b * log(-log(u));
            }
            CHECK_NEAR(tu_get(y, i), want, 1e-5, 1e-5);
        }
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < NR; i++) s += tu_get(y, i);
        double m = s / NR;
        for (int64_t i = 0; i < NR; i++) s2 += (tu_get(y, i) - m) * (tu_get(y, i) - m);
        CHECK_NEAR(m, mean, 5 * sqrt(var / NR), 0);
        CHECK_NEAR(s2 / NR, var, 0, 0.02);
    }
    tu_free(4, y, again, other, reseed);
}

OP_TEST(UNIFORM, formula_and_moments) { check_random(DC_OP_UNIFORM, -1.0f, 3.0f, 1.0, 16.0 / 12); }
OP_TEST(NORMAL, formula_and_moments) { check_random(DC_OP_NORMAL, 2.0f, 0.5f, 2.0, 0.25); }
/* Gumbel(mu, beta): mean mu + beta*gamma_Euler, variance pi^2 beta^2 / 6 */
OP_TEST(GUMBEL, formula_and_moments) {
    check_random(DC_OP_GUMBEL, 0.5f, 2.0f, 0.5 + 2.0 * 0.5772156649, M_PI * M_PI * 4.0 / 6);
}

/* ---- losses ---------------------------------------------------------------------------- */

/* op on the cross-entropy case: logits ins[0] [2,3,4] (6 rows) of a wave xv, labels ins[1]
 * [2,3]; and row r's -log(exp(x[label]) / sum exp(x)) in double. */
static dc_tensor *xent_eval(dc_op op, float *xv, dc_tensor **ins) {
    for (int i = 0; i < 24; i++) xv[i] = wave(i);
    ins[0] = tu_tensor(DC_F32, 3, DIMS(2, 3, 4), xv);
    ins[1] = tu_tensor(DC_I32, 2, DIMS(2, 3), VALS(0, 3, 1, 2, 2, 0));
    return eval(op, NULL, 2, ins, NULL, 0);
}

static double xent_row(const float *xv, const dc_tensor *lab, int r) {
    double s = 0;
    for (int k = 0; k < 4; k++) s += exp(xv[r * 4 + k]);
    return -log(exp(xv[r * 4 + (int)geti(lab, r)]) / s);
}

/* the mean of the rows' terms */
OP_TEST(CROSS_ENTROPY, against_double) {
    float xv[24];
    dc_tensor *ins[2], *y = xent_eval(DC_OP_CROSS_ENTROPY, xv, ins), *x = ins[0], *lab = ins[1];
    if (y) {
        double want = 0;
        for (int r = 0; r < 6; r++) want += xent_row(xv, lab, r) / 6;
        CHECK(y->type.shape.rank == 0 && y->type.dtype == DC_F32);
        CHECK_NEAR(tu_get(y, 0), want, 1e-6, 1e-6);
    }
    tu_free(3, x, lab, y);
}

/* huge logits: loss of row (1000, 0) with label 1 is 1000, with label 0 is ~e^-1000 */
OP_TEST(CROSS_ENTROPY, huge_logits) {
    dc_tensor *x = tu_tensor(DC_F32, 2, DIMS(2, 2), VALS(1000, 0, 1000, 0));
    dc_tensor *lab = tu_tensor(DC_I32, 1, DIMS(2), VALS(1, 0));
    dc_tensor *ins[2] = { x, lab };
    dc_tensor *y = eval(DC_OP_CROSS_ENTROPY, NULL, 2, ins, NULL, 0);
    if (y) CHECK_NEAR(tu_get(y, 0), 500.0, 1e-4, 0);
    tu_free(3, x, lab, y);
}

OP_TEST(CROSS_ENTROPY, label_out_of_range) {
    float xv[20] = { 0 };
    dc_tensor *x = tu_tensor(DC_F32, 2, DIMS(2, 10), xv);
    dc_tensor *lab = tu_tensor(DC_I32, 1, DIMS(2), VALS(3, 12));
    dc_tensor *ins[2] = { x, lab };
    char err[256] = "";
    dc_tensor *y = tu_eval(DC_OP_CROSS_ENTROPY, NULL, 2, ins, NULL, 0, err, sizeof err);
    CHECK(y == NULL);
    CHECK_STR_EQ(err, "cross_entropy: label 12 out of range [0, 10)");
    tu_free(3, x, lab, y);
}

/* each row's term, [2,3]; a label out of range is cross_entropy's error */
OP_TEST(CROSS_ENTROPY_ROWS, against_double) {
    float xv[24];
    dc_tensor *ins[2], *y = xent_eval(DC_OP_CROSS_ENTROPY_ROWS, xv, ins), *x = ins[0], *lab = ins[1];
    if (y) {
        CHECK(y->type.shape.rank == 2 && y->type.shape.dim[0] == 2 && y->type.shape.dim[1] == 3);
        for (int r = 0; r < 6; r++) CHECK_NEAR(tu_get(y, r), xent_row(xv, lab, r), 1e-6, 1e-6);
    }
    char err[256] = "";
    ((int32_t *)lab->data)[4] = 4;
    dc_tensor *bad = tu_eval(DC_OP_CROSS_ENTROPY_ROWS, NULL, 2, ins, NULL, 0, err, sizeof err);
    CHECK(bad == NULL);
    CHECK_STR_EQ(err, "cross_entropy: label 4 out of range [0, 4)");
    tu_free(4, x, lab, y, bad);
}

/* mean((a-b)^2) of (1-0, 2-4, -1-(-1), 3-0.5) = (1 + 4 + 0 + 6.25) / 4 */
OP_TEST(MSE, hand_values) {
    dc_tensor *a = tu_tensor(DC_F32, 2, DIMS(2, 2), VALS(1, 2, -1, 3));
    dc_tensor *b = tu_tensor(DC_F32, 2, DIMS(2, 2), VALS(0, 4, -1, 0.5f));
    dc_tensor *ins[2] = { a, b };
    dc_tensor *y = eval(DC_OP_MSE, NULL, 2, ins, NULL, 0);
    if (y) {
        CHECK(y->type.shape.rank == 0);
        CHECK_NEAR(tu_get(y, 0), 11.25 / 4, 1e-7, 0);
    }
    tu_free(3, a, b, y);
}

/* more elements than one summation block */
OP_TEST(MSE, many_blocks) {
    const int n = 5000;
    float *av = malloc(sizeof(float) * n), *bv = malloc(sizeof(float) * n);
    double want = 0;
    for (int i = 0; i < n; i++) {
        av[i] = wave(i);
        bv[i] = wave(i + 3);
        want += ((double)av[i] - bv[i]) * ((double)av[i] - bv[i]) / n;
    }
    dc_tensor *a = tu_tensor(DC_F32, 1, DIMS(n), av), *b = tu_tensor(DC_F32, 1, DIMS(n), bv);
    dc_tensor *ins[2] = { a, b };
    dc_tensor *y = eval(DC_OP_MSE, NULL, 2, ins, NULL, 0);
    if (y) CHECK_NEAR(tu_get(y, 0), want, 0, 1e-6);
    free(av);
    free(bv);
    tu_free(3, a, b, y);
}
