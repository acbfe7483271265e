/* test_ops_reduction.c — forward tests of sum, mean, max, logsumexp (every axis subset of a
 * [2,3,4] tensor, keepdims both ways, against a brute-force triple loop in double), the i32
 * sum/max, softmax/log_softmax against exp(x)/sum in double (also with huge logits),
 * argmax ties, and results independent of the thread count. */
#include "tests/test.h"

#include <omp.h>
#include <stdlib.h>

#include "tests/op_util.h"

#define DIMS(...) (int64_t[]){ __VA_ARGS__ }
#define VALS(...) (float[]){ __VA_ARGS__ }

static long long geti(const dc_tensor *t, int64_t i) { return ((const int32_t *)t->data)[i]; }

static dc_tensor *eval(dc_op op, const dc_attr *attr, dc_tensor *x) {
    char err[256] = "";
    dc_tensor *y = tu_eval(op, attr, 1, &x, NULL, 0, err, sizeof err);
    CHECK_MSG(y != NULL, "%s failed: %s", dc_op_name(op), err);
    return y;
}

/* x[i,j,k] of the [2,3,4] test tensor: distinct, mixed signs */
static float x234(int i, int j, int k) { return (float)((i * 12 + j * 4 + k) * 7 % 11) * 0.5f - 2.0f; }

static dc_tensor *make234(void) {
    float v[24];
    for (int i = 0; i < 24; i++) v[i] = x234(i / 12, i / 4 % 3, i % 4);
    return tu_tensor(DC_F32, 3, DIMS(2, 3, 4), v);
}

/* Reduces [2,3,4] over the axes in mask (bit d = axis d) with op, brute force in double;
 * out is indexed by the kept coordinates in order. */
static void brute(dc_op op, unsigned mask, double *out, int *n_out) {
    const int dims[3] = { 2, 3, 4 };
    int kept[3], nk = 0;
    for (int d = 0; d < 3; d++)
        if (!(mask >> d & 1)) kept[nk++] = d;
    int n = 1;
    for (int q = 0; q < nk; q++) n *= dims[kept[q]];
    *n_out = n;
    double acc[24], cnt[24];
    for (int o = 0; o < n; o++) acc[o] = op == DC_OP_MAX ? -INFINITY : 0, cnt[o] = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) {
                int c[3] = { i, j, k }, o = 0;
                for (int q = 0; q < nk; q++) o = o * dims[kept[q]] + c[kept[q]];
                double v = x234(i, j, k);
                if (op == DC_OP_MAX) acc[o] = v > acc[o] ? v : acc[o];
                else acc[o] += op == DC_OP_LOGSUMEXP ? exp(v) : v;
                cnt[o] += 1;
            }
    for (int o = 0; o < n; o++) {
        if (op == DC_OP_MEAN) out[o] = acc[o] / cnt[o];
        else if (op == DC_OP_LOGSUMEXP) out[o] = log(acc[o]);
        else out[o] = acc[o];
    }
}

/* every subset of axes (mask 0 as axes.n == 0: all), keepdims false and true */
static void check_reduce(dc_op op) {
    dc_tensor *x = make234();
    for (unsigned mask = 0; mask < 8; mask++)
        for (int keep = 0; keep < 2; keep++) {
            dc_attr at;
            memset(&at, 0, sizeof at);
            for (int d = 0; d < 3; d++)
                if (mask >> d & 1) at.reduce.axes.v[at.reduce.axes.n++] = d;
            at.reduce.keepdims = keep;
            double want[24] = { 0 };
            int n;
            brute(op, mask ? mask : 7, want, &n);
            dc_tensor *y = eval(op, &at, x);
            if (!y) continue;
            int rank = y->type.shape.rank, want_rank = keep ? 3 : 3 - __builtin_popcount(mask ? mask : 7);
            CHECK_MSG(rank == want_rank, "mask %u keep %d: rank %d, expected %d", mask, keep, rank, want_rank);
            CHECK_EQ_INT(dc_numel(&y->type.shape), n);
            for (int o = 0; o < n; o++) CHECK_NEAR(tu_get(y, o), want[o], 1e-5, 1e-6);
            dc_tensor_free(y);
        }
    dc_tensor_free(x);
}

OP_TEST(SUM, all_axis_subsets) { check_reduce(DC_OP_SUM); }
OP_TEST(MEAN, all_axis_subsets) { check_reduce(DC_OP_MEAN); }
OP_TEST(MAX, all_axis_subsets) { check_reduce(DC_OP_MAX); }
OP_TEST(LOGSUMEXP, all_axis_subsets) { check_reduce(DC_OP_LOGSUMEXP); }

OP_TEST(SUM, hand_values) {
    dc_tensor *x = tu_tensor(DC_F32, 2, DIMS(2, 3), VALS(1, 2, 3, 4, 5, 6));
    dc_attr at = { .reduce = { .axes = { 1, { 1 } }, .keepdims = true } };
    dc_tensor *y = eval(DC_OP_SUM, &at, x);
    if (y) {
        CHECK(y->type.shape.rank == 2 && y->type.shape.dim[0] == 2 && y->type.shape.dim[1] == 1);
        CHECK(tu_get(y, 0) == 6 && tu_get(y, 1) == 15);
    }
    tu_free(2, x, y);
}

OP_TEST(SUM, i32) {
    dc_tensor *x = tu_tensor(DC_I32, 2, DIMS(2, 3), VALS(1, -2, 3, 40, 50, 60));
    dc_attr at = { .reduce = { .axes = { 1, { 0 } } } };
    dc_tensor *y = eval(DC_OP_SUM, &at, x);
    if (y) {
        CHECK(y->type.dtype == DC_I32 && y->type.shape.rank == 1);
        CHECK_EQ_INT(geti(y, 0), 41);
        CHECK_EQ_INT(geti(y, 1), 48);
        CHECK_EQ_INT(geti(y, 2), 63);
    }
    tu_free(2, x, y);
}

OP_TEST(MAX, i32) {
    dc_tensor *x = tu_tensor(DC_I32, 2, DIMS(2, 3), VALS(-5, -2, -3, 4, 9, 1));
    dc_attr at = { .reduce = { .axes = { 1, { 1 } } } };
    dc_tensor *y = eval(DC_OP_MAX, &at, x);
    if (y) {
        CHECK(y->type.dtype == DC_I32);
        CHECK_EQ_INT(geti(y, 0), -2);
        CHECK_EQ_INT(geti(y, 1), 9);
    }
    tu_free(2, x, y);
}

OP_TEST(MEAN, hand_values) {
    dc_tensor *x = tu_tensor(DC_F32, 2, DIMS(2, 2), VALS(1, 2, 3, 5));
    dc_tensor *y = eval(DC_OP_MEAN, NULL, x);  /* axes.n == 0: all, result f32[] */
    if (y) {
        CHECK(y->type.shape.rank == 0);
        CHECK(tu_get(y, 0) == 2.75);
    }
    tu_free(2, x, y);
}

/* huge logits do not overflow: lse(1000, 1001) = 1001 + log(1 + e^-1) */
OP_TEST(LOGSUMEXP, huge_values) {
    dc_tensor *x = tu_tensor(DC_F32, 1, DIMS(2), VALS(1000, 1001));
    dc_tensor *y = eval(DC_OP_LOGSUMEXP, NULL, x);
    if (y) CHECK_NEAR(tu_get(y, 0), 1001 + log1p(exp(-1.0)), 1e-4, 0);
    tu_free(2, x, y);
}

/* softmax / log_softmax along each axis of [2,3,4], against exp(x)/sum in double */
static void check_softmax(dc_op op) {
    dc_tensor *x = make234();
    const int dims[3] = { 2, 3, 4 };
    for (int axis = 0; axis < 3; axis++) {
        dc_attr at = { .axis = { axis } };
        dc_tensor *y = eval(op, &at, x);
        if (!y) continue;
        CHECK(y->type.shape.rank == 3 && y->type.shape.dim[2] == 4);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 4; k++) {
                    double s = 0;
                    for (int t = 0; t < dims[axis]; t++) {
                        int c[3] = { i, j, k };
                        c[axis] = t;
                        s += exp(x234(c[0], c[1], c[2]));
                    }
                    double e = exp(x234(i, j, k)) / s;
                    double want = op == DC_OP_SOFTMAX ? e : log(e);
                    CHECK_NEAR(tu_get(y, i * 12 + j * 4 + k), want, 1e-6, 1e-5);
                }
        dc_tensor_free(y);
    }
    dc_tensor_free(x);
}

OP_TEST(SOFTMAX, every_axis) { check_softmax(DC_OP_SOFTMAX); }
OP_TEST(LOG_SOFTMAX, every_axis) { check_softmax(DC_OP_LOG_SOFTMAX); }

OP_TEST(SOFTMAX, huge_logits) {
    dc_tensor *x = tu_tensor(DC_F32, 2, DIMS(1, 3), VALS(1000, 1000, -1000));
    dc_attr at = { .axis = { 1 } };
    dc_tensor *y = eval(DC_OP_SOFTMAX, &at, x);
    if (y) {
        CHECK_NEAR(tu_get(y, 0), 0.5, 1e-7, 0);
        CHECK_NEAR(tu_get(y, 1), 0.5, 1e-7, 0);
        CHECK(tu_get(y, 2) == 0.0);
    }
    tu_free(2, x, y);
}

OP_TEST(LOG_SOFTMAX, huge_logits) {
    dc_tensor *x = tu_tensor(DC_F32, 1, DIMS(3), VALS(1000, 1000, 0));
    dc_attr at = { .axis = { 0 } };
    dc_tensor *y = eval(DC_OP_LOG_SOFTMAX, &at, x);
    if (y) {
        CHECK_NEAR(tu_get(y, 0), -log(2.0), 1e-6, 0);
        CHECK_NEAR(tu_get(y, 2), -1000 - log(2.0), 1e-3, 0);
    }
    tu_free(2, x, y);
}

/* ties go to the first index; the axis is removed; i32 result */
OP_TEST(ARGMAX, ties_and_axes) {
    dc_tensor *x = tu_tensor(DC_F32, 2, DIMS(2, 4), VALS(1, 7, 7, 2, 5, 5, -1, 5));
    dc_attr at = { .axis = { 1 } };
    dc_tensor *y = eval(DC_OP_ARGMAX, &at, x);
    if (y) {
        CHECK(y->type.dtype == DC_I32 && y->type.shape.rank == 1 && y->type.shape.dim[0] == 2);
        CHECK_EQ_INT(geti(y, 0), 1);
        CHECK_EQ_INT(geti(y, 1), 0);
    }
    dc_tensor_free(y);
    at.axis.axis = 0;
    y = eval(DC_OP_ARGMAX, &at, x);
    if (y) {
        const long long want[4] = { 1, 0, 0, 1 };
        CHECK(y->type.shape.rank == 1 && y->type.shape.dim[0] == 4);
        for (int i = 0; i < 4; i++) CHECK_EQ_INT(geti(y, i), want[i]);
    }
    tu_free(2, x, y);
}

/* a large sum over a leading axis and a full-tensor softmax give the same bits on 1 and 4
 * threads, and the sum matches a double loop */
TEST(reduction_thread_independent) {
    int64_t R = 513, C = 301;
    float *v = malloc(sizeof(float) * (size_t)(R * C));
    for (int64_t i = 0; i < R * C; i++) v[i] = sinf((float)i * 0.37f) * 3.0f;
    dc_tensor *x = tu_tensor(DC_F32, 2, DIMS(R, C), v);
    dc_attr sum = { .reduce = { .axes = { 1, { 0 } } } }, sm = { .axis = { 0 } };
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    dc_tensor *s1 = eval(DC_OP_SUM, &sum, x), *m1 = eval(DC_OP_SOFTMAX, &sm, x);
    omp_set_num_threads(4);
    dc_tensor *s4 = eval(DC_OP_SUM, &sum, x), *m4 = eval(DC_OP_SOFTMAX, &sm, x);
    omp_set_num_threads(saved);
    if (s1 && s4 && m1 && m4) {
        CHECK(memcmp(s1->data, s4->data, sizeof(float) * (size_t)C) == 0);
        CHECK(memcmp(m1->data, m4->data, sizeof(float) * (size_t)(R * C)) == 0);
        for (int64_t c = 0; c < C; c += 50) {
            double s = 0;
            for (int64_t r = 0; r < R; r++) s += v[r * C + c];
            CHECK_NEAR(tu_get(s1, c), s, 1e-4, 1e-6);
        }
    }
    free(v);
    tu_free(5, x, s1, m1, s4, m4);
}
