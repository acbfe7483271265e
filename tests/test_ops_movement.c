/* test_ops_movement.c — forward tests of data movement: reshape, broadcast_to, transpose,
 * slice, concat, pad (hand values and index formulas, f32 and i32), gather (rows by index,
 * the out-of-range error), one_hot (out of range gives a zero row), and a large transpose
 * through the parallel path against a brute-force index map. */
#include "tests/test.h"

#include <stdlib.h>

#include "tests/op_util.h"

#define DIMS(...) (int64_t[]){ __VA_ARGS__ }
#define VALS(...) (float[]){ __VA_ARGS__ }

static long long geti(const dc_tensor *t, int64_t i) { return ((const int32_t *)t->data)[i]; }

static dc_tensor *eval(dc_op op, const dc_attr *attr, int n_in, dc_tensor *const *ins,
                       const dc_type *declared) {
    char err[256] = "";
    dc_tensor *y = tu_eval(op, attr, n_in, ins, declared, 0, err, sizeof err);
    CHECK_MSG(y != NULL, "%s failed: %s", dc_op_name(op), err);
    return y;
}

static dc_type type_of(dc_dtype dt, int rank, const int64_t *dims) {
    dc_type t = { .dtype = dt, .shape = { .rank = rank } };
    for (int i = 0; i < rank; i++) t.shape.dim[i] = dims[i];
    return t;
}

static bool has_shape(const dc_tensor *t, int rank, const int64_t *dims) {
    if (t->type.shape.rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (t->type.shape.dim[i] != dims[i]) return false;
    return true;
}

OP_TEST(RESHAPE, keeps_order) {
    dc_tensor *x = tu_tensor(DC_I32, 2, DIMS(2, 3), VALS(1, 2, 3, 4, 5, 6));
    dc_type t = type_of(DC_I32, 3, DIMS(3, 1, 2));
    dc_tensor *y = eval(DC_OP_RESHAPE, NULL, 1, &x, &t);
    if (y) {
        CHECK(has_shape(y, 3, DIMS(3, 1, 2)) && y->type.dtype == DC_I32);
        for (int i = 0; i < 6; i++) CHECK_EQ_INT(geti(y, i), i + 1);
    }
    tu_free(2, x, y);
}

/* [3,1] -> [2,3,4]: out[i,j,k] = in[j] */
OP_TEST(BROADCAST_TO, leading_and_inner) {
    dc_tensor *x = tu_tensor(DC_F32, 2, DIMS(3, 1), VALS(1.5f, -2, 7));
    dc_type t = type_of(DC_F32, 3, DIMS(2, 3, 4));
    dc_tensor *y = eval(DC_OP_BROADCAST_TO, NULL, 1, &x, &t);
    if (y) {
        CHECK(has_shape(y, 3, DIMS(2, 3, 4)));
        for (int i = 0; i < 24; i++) CHECK(tu_get(y, i) == tu_get(x, i / 4 % 3));
    }
    tu_free(2, x, y);
}

OP_TEST(BROADCAST_TO, i32_scalar) {
    dc_tensor *x = tu_tensor(DC_I32, 0, DIMS(0), VALS(-9));
    dc_type t = type_of(DC_I32, 2, DIMS(2, 2));
    dc_tensor *y = eval(DC_OP_BROADCAST_TO, NULL, 1, &x, &t);
    if (y)
        for (int i = 0; i < 4; i++) CHECK_EQ_INT(geti(y, i), -9);
    tu_free(2, x, y);
}

/* out[idx] = in[j] with j[perm[d]] = idx[d], written out for an arbitrary shape */
static void check_transpose(int rank, const int64_t *dims, const int64_t *perm) {
    dc_type it = type_of(DC_F32, rank, dims);
    int64_t n = dc_numel(&it.shape);
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) v[i] = (float)i;
    dc_tensor *x = tu_tensor(DC_F32, rank, dims, v);
    dc_attr at;
    memset(&at, 0, sizeof at);
    at.perm.perm.n = rank;
    for (int d = 0; d < rank; d++) at.perm.perm.v[d] = perm[d];
    dc_tensor *y = eval(DC_OP_TRANSPOSE, &at, 1, &x, NULL);
    if (y) {
        int bad = 0;
        for (int64_t o = 0; o < n; o++) {
            int64_t idx[DC_MAX_RANK], rem = o, j[DC_MAX_RANK], src = 0;
            for (int d = rank - 1; d >= 0; d--) {
                idx[d] = rem % dims[perm[d]];
                rem /= dims[perm[d]];
            }
            for (int d = 0; d < rank; d++) j[perm[d]] = idx[d];
            for (int d = 0; d < rank; d++) src = src * dims[d] + j[d];
            bad += tu_get(y, o) != (double)src;
        }
        CHECK_EQ_INT(bad, 0);
        for (int d = 0; d < rank; d++) CHECK_EQ_INT(y->type.shape.dim[d], dims[perm[d]]);
    }
    free(v);
    tu_free(2, x, y);
}

OP_TEST(TRANSPOSE, rank3) { check_transpose(3, DIMS(2, 3, 4), DIMS(2, 0, 1)); }
OP_TEST(TRANSPOSE, large_rank4) { check_transpose(4, DIMS(16, 33, 8, 17), DIMS(0, 2, 3, 1)); }

OP_TEST(TRANSPOSE, hand_values) {
    dc_tensor *x = tu_tensor(DC_F32, 2, DIMS(2, 3), VALS(1, 2, 3, 4, 5, 6));
    dc_attr at = { .perm = { { 2, { 1, 0 } } } };
    dc_tensor *y = eval(DC_OP_TRANSPOSE, &at, 1, &x, NULL);
    if (y) {
        const double want[6] = { 1, 4, 2, 5, 3, 6 };
        CHECK(has_shape(y, 2, DIMS(3, 2)));
        for (int i = 0; i < 6; i++) CHECK(tu_get(y, i) == want[i]);
    }
    tu_free(2, x, y);
}

/* [4,6] rows 1..4 step 2, cols 0..5 step 3 -> [2,2] = x[1,0] x[1,3] x[3,0] x[3,3] */
OP_TEST(SLICE, steps) {
    float v[24];
    for (int i = 0; i < 24; i++) v[i] = (float)i;
    dc_tensor *x = tu_tensor(DC_F32, 2, DIMS(4, 6), v);
    dc_attr at = { .slice = { { 2, { 1, 0 } }, { 2, { 4, 5 } }, { 2, { 2, 3 } } } };
    dc_tensor *y = eval(DC_OP_SLICE, &at, 1, &x, NULL);
    if (y) {
        CHECK(has_shape(y, 2, DIMS(2, 2)));
        const double want[4] = { 6, 9, 18, 21 };
        for (int i = 0; i < 4; i++) CHECK(tu_get(y, i) == want[i]);
    }
    tu_free(2, x, y);
}

OP_TEST(SLICE, i32_contiguous_block) {
    dc_tensor *x = tu_tensor(DC_I32, 2, DIMS(3, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
    dc_attr at = { .slice = { { 2, { 1, 1 } }, { 2, { 3, 3 } }, { 2, { 1, 1 } } } };
    dc_tensor *y = eval(DC_OP_SLICE, &at, 1, &x, NULL);
    if (y) {
        const long long want[4] = { 5, 6, 8, 9 };
        for (int i = 0; i < 4; i++) CHECK_EQ_INT(geti(y, i), want[i]);
    }
    tu_free(2, x, y);
}

/* [2,1] ++ [2,3] ++ [2,2] along axis 1 -> [2,6] */
OP_TEST(CONCAT, three_inputs) {
    dc_tensor *a = tu_tensor(DC_F32, 2, DIMS(2, 1), VALS(1, 2));
    dc_tensor *b = tu_tensor(DC_F32, 2, DIMS(2, 3), VALS(10, 11, 12, 13, 14, 15));
    dc_tensor *c = tu_tensor(DC_F32, 2, DIMS(2, 2), VALS(-1, -2, -3, -4));
    dc_tensor *ins[3] = { a, b, c };
    dc_attr at = { .axis = { 1 } };
    dc_tensor *y = eval(DC_OP_CONCAT, &at, 3, ins, NULL);
    if (y) {
        CHECK(has_shape(y, 2, DIMS(2, 6)));
        const double want[12] = { 1, 10, 11, 12, -1, -2, 2, 13, 14, 15, -3, -4 };
        for (int i = 0; i < 12; i++) CHECK(tu_get(y, i) == want[i]);
    }
    tu_free(4, a, b, c, y);
}

OP_TEST(CONCAT, i32_axis0) {
    dc_tensor *a = tu_tensor(DC_I32, 2, DIMS(1, 2), VALS(1, 2));
    dc_tensor *b = tu_tensor(DC_I32, 2, DIMS(2, 2), VALS(3, 4, 5, 6));
    dc_tensor *ins[2] = { a, b };
    dc_attr at = { .axis = { 0 } };
    dc_tensor *y = eval(DC_OP_CONCAT, &at, 2, ins, NULL);
    if (y) {
        CHECK(has_shape(y, 2, DIMS(3, 2)) && y->type.dtype == DC_I32);
        for (int i = 0; i < 6; i++) CHECK_EQ_INT(geti(y, i), i + 1);
    }
    tu_free(3, a, b, y);
}

/* [2,2] lo {1,0} hi {0,2} value -1 -> [3,4] */
OP_TEST(PAD, hand_values) {
    dc_tensor *x = tu_tensor(DC_F32, 2, DIMS(2, 2), VALS(1, 2, 3, 4));
    dc_attr at = { .pad = { { 2, { 1, 0 } }, { 2, { 0, 2 } }, -1.0f } };
    dc_tensor *y = eval(DC_OP_PAD, &at, 1, &x, NULL);
    if (y) {
        CHECK(has_shape(y, 2, DIMS(3, 4)));
        const double want[12] = { -1, -1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1 };
        for (int i = 0; i < 12; i++) CHECK(tu_get(y, i) == want[i]);
    }
    tu_free(2, x, y);
}

OP_TEST(PAD, i32) {
    dc_tensor *x = tu_tensor(DC_I32, 1, DIMS(2), VALS(5, 6));
    dc_attr at = { .pad = { { 1, { 2 } }, { 1, { 1 } }, 7.0f } };
    dc_tensor *y = eval(DC_OP_PAD, &at, 1, &x, NULL);
    if (y) {
        const long long want[5] = { 7, 7, 5, 6, 7 };
        CHECK(has_shape(y, 1, DIMS(5)));
        for (int i = 0; i < 5; i++) CHECK_EQ_INT(geti(y, i), want[i]);
    }
    tu_free(2, x, y);
}

/* table [4,2], idx [2,2] -> [2,2,2], out[i,j,:] = table[idx[i,j],:] */
OP_TEST(GATHER, rows) {
    dc_tensor *t = tu_tensor(DC_F32, 2, DIMS(4, 2), VALS(0, 1, 10, 11, 20, 21, 30, 31));
    dc_tensor *idx = tu_tensor(DC_I32, 2, DIMS(2, 2), VALS(3, 0, 0, 2));
    dc_tensor *ins[2] = { t, idx };
    dc_tensor *y = eval(DC_OP_GATHER, NULL, 2, ins, NULL);
    if (y) {
        CHECK(has_shape(y, 3, DIMS(2, 2, 2)));
        const double want[8] = { 30, 31, 0, 1, 0, 1, 20, 21 };
        for (int i = 0; i < 8; i++) CHECK(tu_get(y, i) == want[i]);
    }
    tu_free(3, t, idx, y);
}

OP_TEST(GATHER, i32_table) {
    dc_tensor *t = tu_tensor(DC_I32, 1, DIMS(3), VALS(100, 200, 300));
    dc_tensor *idx = tu_tensor(DC_I32, 1, DIMS(4), VALS(2, 2, 0, 1));
    dc_tensor *ins[2] = { t, idx };
    dc_tensor *y = eval(DC_OP_GATHER, NULL, 2, ins, NULL);
    if (y) {
        const long long want[4] = { 300, 300, 100, 200 };
        CHECK(has_shape(y, 1, DIMS(4)) && y->type.dtype == DC_I32);
        for (int i = 0; i < 4; i++) CHECK_EQ_INT(geti(y, i), want[i]);
    }
    tu_free(3, t, idx, y);
}

OP_TEST(GATHER, index_out_of_range) {
    float tv[20] = { 0 };
    dc_tensor *t = tu_tensor(DC_F32, 2, DIMS(10, 2), tv);
    dc_tensor *idx = tu_tensor(DC_I32, 1, DIMS(3), VALS(1, 12, -1));
    dc_tensor *ins[2] = { t, idx };
    char err[256] = "";
    dc_tensor *y = tu_eval(DC_OP_GATHER, NULL, 2, ins, NULL, 0, err, sizeof err);
    CHECK(y == NULL);
    CHECK_STR_EQ(err, "gather: index 12 out of range [0, 10)");
    ((int32_t *)idx->data)[1] = 0;
    y = tu_eval(DC_OP_GATHER, NULL, 2, ins, NULL, 0, err, sizeof err);
    CHECK(y == NULL);
    CHECK_STR_EQ(err, "gather: index -1 out of range [0, 10)");
    tu_free(3, t, idx, y);
}

/* idx [2,2] depth 3 -> f32 [2,2,3]; -1 and 3 give zero rows */
OP_TEST(ONE_HOT, with_out_of_range) {
    dc_tensor *idx = tu_tensor(DC_I32, 2, DIMS(2, 2), VALS(2, -1, 0, 3));
    dc_attr at = { .one_hot = { 3 } };
    dc_tensor *y = eval(DC_OP_ONE_HOT, &at, 1, &idx, NULL);
    if (y) {
        CHECK(has_shape(y, 3, DIMS(2, 2, 3)) && y->type.dtype == DC_F32);
        const double want[12] = { 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0 };
        for (int i = 0; i < 12; i++) CHECK(tu_get(y, i) == want[i]);
    }
    tu_free(2, idx, y);
}
