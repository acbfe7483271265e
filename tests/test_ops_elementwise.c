/* test_ops_elementwise.c — forward tests of the elementwise ops: unary maps against double
 * formulas and hand values, binary ops with numpy broadcasting against a brute-force index
 * computation, comparisons, where, the i32 subset (wrapping, division by 0 and INT_MIN/-1)
 * and cast's saturation. */
#include "tests/test.h"

#include <limits.h>
#include <stdlib.h>

#include "tests/op_util.h"

/* TU_F32 cannot take multi-dim shapes (their commas split the macro arguments) */
#define DIMS(...) (int64_t[]){ __VA_ARGS__ }
#define VALS(...) (float[]){ __VA_ARGS__ }

/* element i of an i32 tensor, exactly (tu_get's ?: converts i32 through float) */
static long long geti(const dc_tensor *t, int64_t i) { return ((const int32_t *)t->data)[i]; }

static const float XS[] = { -3.0f, -1.25f, -0.5f, 0.0f, 0.3f, 1.0f, 2.5f, 4.0f };
#define NX 8

static dc_tensor *eval(dc_op op, const dc_attr *attr, int n_in, dc_tensor *const *ins) {
    char err[256] = "";
    dc_tensor *y = tu_eval(op, attr, n_in, ins, NULL, 0, err, sizeof err);
    CHECK_MSG(y != NULL, "%s failed: %s", dc_op_name(op), err);
    return y;
}

/* op on XS (or pos: |XS|+0.5) against f(x) in double */
static void check_unary(dc_op op, const dc_attr *attr, bool pos, double (*f)(double, double), double p) {
    float xs[NX];
    for (int i = 0; i < NX; i++) xs[i] = pos ? fabsf(XS[i]) + 0.5f : XS[i];
    dc_tensor *x = tu_tensor(DC_F32, 2, DIMS(2, 4), xs);
    dc_tensor *y = eval(op, attr, 1, &x);
    if (y) {
        CHECK(y->type.dtype == DC_F32 && y->type.shape.rank == 2 && y->type.shape.dim[1] == 4);
        for (int i = 0; i < NX; i++) CHECK_NEAR(tu_get(y, i), f(xs[i], p), 1e-6, 1e-5);
    }
    tu_free(2, x, y);
}

static double f_neg(double x, double p) { (void)p; return -x; }
static double f_abs(double x, double p) { (void)p; return x < 0 ? -x : x; }
static double f_exp(double x, double p) { (void)p; return exp(x); }
static double f_log(double x, double p) { (void)p; return log(x); }
static double f_sqrt(double x, double p) { (void)p; return sqrt(x); }
static double f_rsqrt(double x, double p) { (void)p; return 1 / sqrt(x); }
static double f_square(double x, double p) { (void)p; return x * x; }
static double f_pow(double x, double p) { return pow(x, p); }
static double f_sin(double x, double p) { (void)p; return sin(x); }
static double f_cos(double x, double p) { (void)p; return cos(x); }
static double f_tanh(double x, double p) { (void)p; return (exp(2 * x) - 1) / (exp(2 * x) + 1); }
static double f_sigmoid(double x, double p) { (void)p; return 1 / (1 + exp(-x)); }
static double f_silu(double x, double p) { (void)p; return x / (1 + exp(-x)); }
static double f_gelu(double x, double p) {
    (void)p;
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double f_relu(double x, double p) { (void)p; return x > 0 ? x : 0; }
static double f_softplus(double x, double p) { (void)p; return log1p(exp(x)); }

OP_TEST(NEG, values) { check_unary(DC_OP_NEG, NULL, false, f_neg, 0); }
OP_TEST(ABS, values) { check_unary(DC_OP_ABS, NULL, false, f_abs, 0); }
OP_TEST(EXP, values) { check_unary(DC_OP_EXP, NULL, false, f_exp, 0); }
OP_TEST(LOG, values) { check_unary(DC_OP_LOG, NULL, true, f_log, 0); }
OP_TEST(SQRT, values) { check_unary(DC_OP_SQRT, NULL, true, f_sqrt, 0); }
OP_TEST(RSQRT, values) { check_unary(DC_OP_RSQRT, NULL, true, f_rsqrt, 0); }
OP_TEST(SQUARE, values) { check_unary(DC_OP_SQUARE, NULL, false, f_square, 0); }
OP_TEST(SIN, values) { check_unary(DC_OP_SIN, NULL, false, f_sin, 0); }
OP_TEST(COS, values) { check_unary(DC_OP_COS, NULL, false, f_cos, 0); }
OP_TEST(TANH, values) { check_unary(DC_OP_TANH, NULL, false, f_tanh, 0); }
OP_TEST(SIGMOID, values) { check_unary(DC_OP_SIGMOID, NULL, false, f_sigmoid, 0); }
OP_TEST(SILU, values) { check_unary(DC_OP_SILU, NULL, false, f_silu, 0); }
OP_TEST(GELU, values) { check_unary(DC_OP_GELU, NULL, false, f_gelu, 0); }
OP_TEST(RELU, values) { check_unary(DC_OP_RELU, NULL, false, f_relu, 0); }
OP_TEST(SOFTPLUS, values) { check_unary(DC_OP_SOFTPLUS, NULL, false, f_softplus, 0); }

OP_TEST(POW, exponents) {
    dc_attr at = { .scalar = { 1.5f } };
    check_unary(DC_OP_POW, &at, true, f_pow, 1.5);
    at.scalar.value = -2.0f;
    check_unary(DC_OP_POW, &at, true, f_pow, -2.0);
    at.scalar.value = 3.0f;
    check_unary(DC_OP_POW, &at, false, f_pow, 3.0);
}

OP_TEST(LOG, zero_and_negative) {
    dc_tensor *x = tu_tensor(DC_F32, 1, DIMS(3), VALS(0.0f, -1.0f, 1.0f));
    dc_tensor *y = eval(DC_OP_LOG, NULL, 1, &x);
    if (y) {
        CHECK(isinf(tu_get(y, 0)) && tu_get(y, 0) < 0);
        CHECK(isnan(tu_get(y, 1)));
        CHECK(tu_get(y, 2) == 0.0);
    }
    tu_free(2, x, y);
}

/* sigmoid/silu stay finite and saturate for large |x| */
OP_TEST(SIGMOID, large_inputs) {
    dc_tensor *x = tu_tensor(DC_F32, 1, DIMS(4), VALS(-1000.0f, -88.0f, 88.0f, 1000.0f));
    dc_tensor *y = eval(DC_OP_SIGMOID, NULL, 1, &x);
    if (y) {
        CHECK(tu_get(y, 0) == 0.0);
        CHECK_NEAR(tu_get(y, 1), exp(-88.0), 0, 1e-5);
        CHECK(tu_get(y, 2) == 1.0 && tu_get(y, 3) == 1.0);
    }
    tu_free(2, x, y);
}

/* softplus neither overflows (x for large x) nor loses small values (exp(x) for x << 0) */
OP_TEST(SOFTPLUS, large_inputs) {
    dc_tensor *x = tu_tensor(DC_F32, 1, DIMS(4), VALS(-1000.0f, -30.0f, 30.0f, 1000.0f));
    dc_tensor *y = eval(DC_OP_SOFTPLUS, NULL, 1, &x);
    if (y) {
        CHECK(tu_get(y, 0) == 0.0);
        CHECK_NEAR(tu_get(y, 1), exp(-30.0), 0, 1e-5);
        CHECK_NEAR(tu_get(y, 2), 30.0, 0, 1e-7);
        CHECK(tu_get(y, 3) == 1000.0);
    }
    tu_free(2, x, y);
}

OP_TEST(ABS, i32) {
    dc_tensor *x = tu_tensor(DC_I32, 1, DIMS(4), VALS(-7, 0, 5, -2));
    ((int32_t *)x->data)[3] = INT_MIN;
    dc_tensor *y = eval(DC_OP_ABS, NULL, 1, &x);
    if (y) {
        CHECK(y->type.dtype == DC_I32);
        CHECK_EQ_INT(tu_get(y, 0), 7);
        CHECK_EQ_INT(tu_get(y, 1), 0);
        CHECK_EQ_INT(tu_get(y, 2), 5);
        CHECK_EQ_INT(geti(y, 3), INT_MIN);  /* wraps, no trap */
    }
    tu_free(2, x, y);
}

OP_TEST(NEG, i32) {
    dc_tensor *x = tu_tensor(DC_I32, 1, DIMS(3), VALS(-7, 0, 5));
    dc_tensor *y = eval(DC_OP_NEG, NULL, 1, &x);
    if (y) {
        CHECK_EQ_INT(tu_get(y, 0), 7);
        CHECK_EQ_INT(tu_get(y, 1), 0);
        CHECK_EQ_INT(tu_get(y, 2), -5);
    }
    tu_free(2, x, y);
}

OP_TEST(SQUARE, i32) {
    dc_tensor *x = tu_tensor(DC_I32, 1, DIMS(3), VALS(-7, 3, 65536));
    dc_tensor *y = eval(DC_OP_SQUARE, NULL, 1, &x);
    if (y) {
        CHECK_EQ_INT(tu_get(y, 0), 49);
        CHECK_EQ_INT(tu_get(y, 1), 9);
        CHECK_EQ_INT(tu_get(y, 2), 0);  /* 2^32 wraps to 0 */
    }
    tu_free(2, x, y);
}

OP_TEST(CAST, f32_to_i32_saturates) {
    dc_tensor *x = tu_tensor(DC_F32, 1, DIMS(8), VALS(2.9f, -2.9f, 0.0f, 1e10f, -1e10f, NAN, INFINITY, -0.5f));
    dc_attr at = { .cast = { DC_I32 } };
    dc_tensor *y = eval(DC_OP_CAST, &at, 1, &x);
    if (y) {
        CHECK(y->type.dtype == DC_I32);
        const long long want[8] = { 2, -2, 0, INT_MAX, INT_MIN, 0, INT_MAX, 0 };
        for (int i = 0; i < 8; i++) CHECK_EQ_INT(geti(y, i), want[i]);
    }
    tu_free(2, x, y);
}

OP_TEST(CAST, i32_to_f32) {
    dc_tensor *x = tu_tensor(DC_I32, 1, DIMS(3), VALS(-3, 0, 16777216));
    dc_attr at = { .cast = { DC_F32 } };
    dc_tensor *y = eval(DC_OP_CAST, &at, 1, &x);
    if (y) {
        CHECK(y->type.dtype == DC_F32);
        CHECK(tu_get(y, 0) == -3.0 && tu_get(y, 1) == 0.0 && tu_get(y, 2) == 16777216.0);
    }
    tu_free(2, x, y);
}

/* ---- binary ops with broadcasting ---------------------------------------------------- */

/* a [2,1,3] op b [4,1] -> [2,4,3], checked element by element from the index formula */
static void check_binary(dc_op op, double (*f)(double, double)) {
    float av[6], bv[4];
    for (int i = 0; i < 6; i++) av[i] = XS[i] + 0.25f * (float)i;
    for (int i = 0; i < 4; i++) bv[i] = 1.5f - XS[i + 2];
    dc_tensor *a = tu_tensor(DC_F32, 3, DIMS(2, 1, 3), VALS(av[0], av[1], av[2], av[3], av[4], av[5]));
    dc_tensor *b = tu_tensor(DC_F32, 2, DIMS(4, 1), VALS(bv[0], bv[1], bv[2], bv[3]));
    dc_tensor *ins[2] = { a, b };
    dc_tensor *y = eval(op, NULL, 2, ins);
    if (y) {
        CHECK(y->type.shape.rank == 3 && y->type.shape.dim[0] == 2 && y->type.shape.dim[1] == 4 &&
              y->type.shape.dim[2] == 3);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++)
                for (int k = 0; k < 3; k++)
                    CHECK_NEAR(tu_get(y, (i * 4 + j) * 3 + k), f(av[i * 3 + k], bv[j]), 1e-6, 1e-6);
    }
    tu_free(3, a, b, y);
}

static double b_add(double a, double b) { return a + b; }
static double b_sub(double a, double b) { return a - b; }
static double b_mul(double a, double b) { return a * b; }
static double b_div(double a, double b) { return a / b; }
static double b_max(double a, double b) { return a > b ? a : b; }
static double b_min(double a, double b) { return a < b ? a : b; }
static double b_eq(double a, double b) { return (float)a == (float)b; }
static double b_ne(double a, double b) { return (float)a != (float)b; }
static double b_lt(double a, double b) { return a < b; }
static double b_le(double a, double b) { return a <= b; }
static double b_gt(double a, double b) { return a > b; }
static double b_ge(double a, double b) { return a >= b; }

OP_TEST(ADD, broadcast) { check_binary(DC_OP_ADD, b_add); }
OP_TEST(SUB, broadcast) { check_binary(DC_OP_SUB, b_sub); }
OP_TEST(MUL, broadcast) { check_binary(DC_OP_MUL, b_mul); }
OP_TEST(DIV, broadcast) { check_binary(DC_OP_DIV, b_div); }
OP_TEST(MAXIMUM, broadcast) { check_binary(DC_OP_MAXIMUM, b_max); }
OP_TEST(MINIMUM, broadcast) { check_binary(DC_OP_MINIMUM, b_min); }
OP_TEST(EQ, broadcast) { check_binary(DC_OP_EQ, b_eq); }
OP_TEST(NE, broadcast) { check_binary(DC_OP_NE, b_ne); }
OP_TEST(LT, broadcast) { check_binary(DC_OP_LT, b_lt); }
OP_TEST(LE, broadcast) { check_binary(DC_OP_LE, b_le); }
OP_TEST(GT, broadcast) { check_binary(DC_OP_GT, b_gt); }
OP_TEST(GE, broadcast) { check_binary(DC_OP_GE, b_ge); }

OP_TEST(ADD, hand_values) {
    dc_tensor *a = tu_tensor(DC_F32, 2, DIMS(2, 2), VALS(1, 2, 3, 4));
    dc_tensor *b = tu_tensor(DC_F32, 0, DIMS(0), VALS(10));
    dc_tensor *ins[2] = { a, b };
    dc_tensor *y = eval(DC_OP_ADD, NULL, 2, ins);
    if (y)
        for (int i = 0; i < 4; i++) CHECK(tu_get(y, i) == 11 + i);
    tu_free(3, a, b, y);
}

OP_TEST(EQ, i32_result) {
    dc_tensor *a = tu_tensor(DC_F32, 1, DIMS(3), VALS(1, 2, 3));
    dc_tensor *b = tu_tensor(DC_F32, 1, DIMS(3), VALS(1, 5, 3));
    dc_tensor *ins[2] = { a, b };
    dc_tensor *y = eval(DC_OP_EQ, NULL, 2, ins);
    if (y) {
        CHECK(y->type.dtype == DC_I32);
        CHECK_EQ_INT(tu_get(y, 0), 1);
        CHECK_EQ_INT(tu_get(y, 1), 0);
        CHECK_EQ_INT(tu_get(y, 2), 1);
    }
    tu_free(3, a, b, y);
}

/* a large broadcast (parallel, chunked path): [300, 1, 257] + [7, 1] against the formula */
OP_TEST(MUL, large_broadcast) {
    int64_t n0 = 300, n1 = 7, n2 = 257;
    float *av = malloc(sizeof(float) * (size_t)(n0 * n2)), bv[7];
    for (int64_t i = 0; i < n0 * n2; i++) av[i] = (float)(i % 97) - 40.0f;
    for (int i = 0; i < 7; i++) bv[i] = 0.5f * (float)i - 1.0f;
    dc_tensor *a = tu_tensor(DC_F32, 3, DIMS(n0, 1, n2), av);
    dc_tensor *b = tu_tensor(DC_F32, 2, DIMS(n1, 1), bv);
    dc_tensor *ins[2] = { a, b };
    dc_tensor *y = eval(DC_OP_MUL, NULL, 2, ins);
    if (y) {
        int bad = 0;
        for (int64_t i = 0; i < n0; i++)
            for (int64_t j = 0; j < n1; j++)
                for (int64_t k = 0; k < n2; k++)
                    bad += tu_get(y, (i * n1 + j) * n2 + k) != (double)av[i * n2 + k] * bv[j];
        CHECK_EQ_INT(bad, 0);
    }
    free(av);
    tu_free(3, a, b, y);
}

/* i32 arithmetic: truncating division, x/0 = 0, INT_MIN/-1 and overflow wrap */
static void check_i32(dc_op op, const long long *want) {
    dc_tensor *a = tu_tensor(DC_I32, 1, DIMS(6), VALS(7, -7, 5, 0, 0, 3));
    dc_tensor *b = tu_tensor(DC_I32, 1, DIMS(6), VALS(2, 2, 0, -1, -1, 4));
    ((int32_t *)a->data)[3] = INT_MIN;
    ((int32_t *)a->data)[4] = INT_MAX;
    dc_tensor *ins[2] = { a, b };
    dc_tensor *y = eval(op, NULL, 2, ins);
    if (y) {
        CHECK(y->type.dtype == DC_I32);
        for (int i = 0; i < 6; i++) CHECK_EQ_INT(geti(y, i), want[i]);
    }
    tu_free(3, a, b, y);
}

OP_TEST(DIV, i32) { check_i32(DC_OP_DIV, (long long[]){ 3, -3, 0, INT_MIN, -INT_MAX, 0 }); }
OP_TEST(ADD, i32) { check_i32(DC_OP_ADD, (long long[]){ 9, -5, 5, INT_MAX, INT_MAX - 1, 7 }); }
OP_TEST(SUB, i32) { check_i32(DC_OP_SUB, (long long[]){ 5, -9, 5, INT_MIN + 1, INT_MIN, -1 }); }
OP_TEST(MUL, i32) { check_i32(DC_OP_MUL, (long long[]){ 14, -14, 0, INT_MIN, -INT_MAX, 12 }); }
OP_TEST(MAXIMUM, i32) { check_i32(DC_OP_MAXIMUM, (long long[]){ 7, 2, 5, -1, INT_MAX, 4 }); }
OP_TEST(MINIMUM, i32) { check_i32(DC_OP_MINIMUM, (long long[]){ 2, -7, 0, INT_MIN, -1, 3 }); }
OP_TEST(LT, i32) { check_i32(DC_OP_LT, (long long[]){ 0, 1, 0, 1, 0, 1 }); }

OP_TEST(MAXIMUM, nan_propagates) {
    dc_tensor *a = tu_tensor(DC_F32, 1, DIMS(2), VALS(NAN, 1.0f));
    dc_tensor *b = tu_tensor(DC_F32, 1, DIMS(2), VALS(1.0f, NAN));
    dc_tensor *ins[2] = { a, b };
    dc_tensor *y = eval(DC_OP_MAXIMUM, NULL, 2, ins);
    if (y) CHECK(isnan(tu_get(y, 0)) && isnan(tu_get(y, 1)));
    tu_free(3, a, b, y);
}

/* where(cond [2,1], a [3], b []) -> [2,3] */
OP_TEST(WHERE, broadcast) {
    dc_tensor *c = tu_tensor(DC_I32, 2, DIMS(2, 1), VALS(1, 0));
    dc_tensor *a = tu_tensor(DC_F32, 1, DIMS(3), VALS(1, 2, 3));
    dc_tensor *b = tu_tensor(DC_F32, 0, DIMS(0), VALS(-5));
    dc_tensor *ins[3] = { c, a, b };
    dc_tensor *y = eval(DC_OP_WHERE, NULL, 3, ins);
    if (y) {
        const double want[6] = { 1, 2, 3, -5, -5, -5 };
        CHECK(y->type.dtype == DC_F32 && y->type.shape.rank == 2);
        for (int i = 0; i < 6; i++) CHECK(tu_get(y, i) == want[i]);
    }
    tu_free(4, c, a, b, y);
}

OP_TEST(WHERE, i32_values) {
    dc_tensor *c = tu_tensor(DC_I32, 1, DIMS(4), VALS(0, 3, -1, 0));
    dc_tensor *a = tu_tensor(DC_I32, 1, DIMS(4), VALS(1, 2, 3, 4));
    dc_tensor *b = tu_tensor(DC_I32, 1, DIMS(4), VALS(10, 20, 30, 40));
    dc_tensor *ins[3] = { c, a, b };
    dc_tensor *y = eval(DC_OP_WHERE, NULL, 3, ins);
    if (y) {
        const long long want[4] = { 10, 2, 3, 40 };
        CHECK(y->type.dtype == DC_I32);
        for (int i = 0; i < 4; i++) CHECK_EQ_INT(geti(y, i), want[i]);
    }
    tu_free(4, c, a, b, y);
}
