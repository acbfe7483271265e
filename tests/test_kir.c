/* test_kir.c — the kernel IR: canonical text and hash, validation errors, the interpreter
 * against hand-computed values, and the collapsed form against the original kernel. */
#include <stdlib.h>

#include "codegen/kir.h"
#include "tests/test.h"

/* out[r, c] = x[r, c] * b[c] + s over outer [2, 3]; variant v changes one detail. */
static dc_kir *affine_kernel(int variant) {
    dc_kir *k = dc_kir_new(2, (int64_t[]){ 2, 3 }, 0, NULL);
    int x = dc_kir_buffer_add(k, DC_F32, 6, false);
    int b = dc_kir_buffer_add(k, DC_F32, 3, false);
    int out = dc_kir_buffer_add(k, DC_F32, 6, true);
    int lx = dc_kir_load(k, x, dc_kir_map_make(k, 0, (int64_t[]){ 3, variant == 1 ? 2 : 1 }, NULL));
    int lb = dc_kir_load(k, b, dc_kir_map_make(k, 0, (int64_t[]){ 0, 1 }, NULL));
    int y = dc_kir_binary(k, variant == 2 ? DC_OP_SUB : DC_OP_MUL, lx, lb);
    y = dc_kir_binary(k, DC_OP_ADD, y, dc_kir_const_f32(k, variant == 3 ? 0.5f : 0.25f));
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, out, dc_kir_map_make(k, 0, (int64_t[]){ 3, 1 }, NULL), y);
    return k;
}

TEST(kir_print_hash) {
    dc_kir *a = affine_kernel(0), *b = affine_kernel(0);
    CHECK(!dc_kir_error(a));
    char *ta = dc_kir_print(a), *tb = dc_kir_print(b);
    CHECK_STR_EQ(ta, tb);
    const char *expect =
        "kir outer[2,3] inner[]\n"
        "  b0 : f32[6] in\n"
        "  b1 : f32[3] in\n"
        "  b2 : f32[6] inout\n"
        "  %0 = load b0 {0 o[3,1] i[]} : f32\n"
        "  %1 = load b1 {0 o[0,1] i[]} : f32\n"
        "  %2 = mul %0, %1 : f32\n"
        "  %3 = const 0x3e800000(0.25) : f32\n"
        "  %4 = add %2, %3 : f32\n"
        "phase 0\n"
        "  store b2 {0 o[3,1] i[]} = %4\n";
    CHECK_STR_EQ(ta, expect);
    dc_hash128 ha = dc_kir_hash(a), hb = dc_kir_hash(b);
    CHECK(ha.lo == hb.lo && ha.hi == hb.hi);
    for (int v = 1; v <= 3; v++) {
        dc_kir *c = affine_kernel(v);
        dc_hash128 hc = dc_kir_hash(c);
        CHECK_MSG(hc.lo != ha.lo || hc.hi != ha.hi, "variant %d hashes like the original", v);
        dc_kir_free(c);
    }
    free(ta);
    free(tb);
    dc_kir_free(a);
    dc_kir_free(b);
}

TEST(kir_interpret_affine) {
    dc_kir *k = affine_kernel(0);
    float x[6] = { 1, 2, 3, 4, 5, 6 }, b[3] = { 10, 20, 30 }, out[6] = { 0 };
    void *args[3] = { x, b, out };
    CHECK(dc_kir_interpret(k, args, 0, 4));
    CHECK(dc_kir_interpret(k, args, 4, 6));
    const float expect[6] = { 10.25f, 40.25f, 90.25f, 40.25f, 100.25f, 180.25f };
    for (int i = 0; i < 6; i++) CHECK_EQ_INT(out[i] == expect[i], 1);
    CHECK(!dc_kir_interpret(k, args, 0, 7));
    CHECK(!dc_kir_interpret(k, args, 3, 2));
    dc_kir_free(k);
}

/* softmax over rows of 3 and each row's max and sum, against hand values */
TEST(kir_interpret_softmax) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ 2 }, 1, (int64_t[]){ 3 });
    int x = dc_kir_buffer_add(k, DC_F32, 6, false);
    int y = dc_kir_buffer_add(k, DC_F32, 6, true);
    int mx = dc_kir_buffer_add(k, DC_F32, 2, true);
    dc_kir_map row = dc_kir_map_make(k, 0, (int64_t[]){ 3 }, (int64_t[]){ 1 });
    int lx = dc_kir_load(k, x, row);
    dc_kir_phase_begin(k, false);
    int m = dc_kir_reduce_add(k, DC_KIR_MAX, lx);
    int e = dc_kir_unary(k, DC_OP_EXP, dc_kir_binary(k, DC_OP_SUB, lx, m));
    dc_kir_phase_begin(k, false);
    int s = dc_kir_reduce_add(k, DC_KIR_SUM, e);
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, y, row, dc_kir_binary(k, DC_OP_DIV, e, s));
    dc_kir_phase_begin(k, true);
    dc_kir_store_add(k, mx, dc_kir_map_make(k, 0, (int64_t[]){ 1 }, NULL), m);
    CHECK(!dc_kir_error(k));
    float in[6] = { 0, 1, 2, -1, -1, -1 }, out[6], maxes[2];
    void *args[3] = { in, out, maxes };
    CHECK(dc_kir_interpret(k, args, 0, 2));
    double z = 1 + exp(1) + exp(2);
    const double expect[6] = { 1 / z, exp(1) / z, exp(2) / z, 1.0 / 3, 1.0 / 3, 1.0 / 3 };
    for (int i = 0; i < 6; i++) CHECK_NEAR(out[i], expect[i], 0, 1e-6);
    CHECK_NEAR(maxes[0], 2, 0, 0);
    CHECK_NEAR(maxes[1], -1, 0, 0);
    dc_kir_free(k);
}

/* i32 semantics: division by 0 and INT_MIN / -1, where, casts of NaN and huge values, iota */
TEST(kir_interpret_i32) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ 4 }, 0, NULL);
    int a = dc_kir_buffer_add(k, DC_I32, 4, false);
    int b = dc_kir_buffer_add(k, DC_I32, 4, false);
    int f = dc_kir_buffer_add(k, DC_F32, 4, false);
    int q = dc_kir_buffer_add(k, DC_I32, 4, true);
    int c = dc_kir_buffer_add(k, DC_I32, 4, true);
    int w = dc_kir_buffer_add(k, DC_F32, 4, true);
    dc_kir_map id = dc_kir_map_make(k, 0, (int64_t[]){ 1 }, NULL);
    int la = dc_kir_load(k, a, id), lb = dc_kir_load(k, b, id), lf = dc_kir_load(k, f, id);
    int iota = dc_kir_index(k, dc_kir_map_make(k, 100, (int64_t[]){ 10 }, NULL));
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, q, id, dc_kir_binary(k, DC_OP_ADD, dc_kir_binary(k, DC_OP_DIV, la, lb), iota));
    dc_kir_store_add(k, c, id, dc_kir_cast(k, lf, DC_I32));
    int lt = dc_kir_binary(k, DC_OP_LT, la, lb);
    dc_kir_store_add(k, w, id, dc_kir_where(k, lt, dc_kir_cast(k, la, DC_F32), lf));
    CHECK(!dc_kir_error(k));
    int32_t av[4] = { 7, INT32_MIN, -7, 5 }, bv[4] = { 0, -1, 2, 9 }, qv[4], cv[4];
    float fv[4] = { NAN, 3e9f, -3e9f, -2.75f }, wv[4];
    void *args[6] = { av, bv, fv, qv, cv, wv };
    CHECK(dc_kir_interpret(k, args, 0, 4));
    CHECK_EQ_INT(qv[0], 100);
    CHECK_EQ_INT(qv[1], INT32_MIN + 110);
    CHECK_EQ_INT(qv[2], -3 + 120);
    CHECK_EQ_INT(qv[3], 0 + 130);
    CHECK_EQ_INT(cv[0], 0);
    CHECK_EQ_INT(cv[1], INT32_MAX);
    CHECK_EQ_INT(cv[2], INT32_MIN);
    CHECK_EQ_INT(cv[3], -2);
    CHECK(isnan(wv[0]));
    CHECK_NEAR(wv[1], -2147483648.0, 0, 0);
    CHECK_NEAR(wv[2], -7, 0, 0);
    CHECK_NEAR(wv[3], 5, 0, 0);
    dc_kir_free(k);
}

TEST(kir_errors) {
    struct { const char *what; int case_; } cases[] = {
        { "dtype mismatch", 0 }, { "load out of bounds", 1 }, { "result in its own phase", 2 },
        { "reduce without inner space", 3 }, { "store to an input", 4 }, { "bad rank", 5 },
        { "f32 unary on i32", 6 }, { "store before a phase", 7 },
        { "reducing store folding the last inner axis", 8 }, { "reducing store in a per-row phase", 9 },
        { "reducing store without inner space", 10 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int c = cases[i].case_;
        dc_kir *k = c == 5 ? dc_kir_new(7, (int64_t[7]){ 1 }, 0, NULL)
                           : dc_kir_new(1, (int64_t[]){ 4 }, c == 3 || c == 10 ? 0 : 1, (int64_t[]){ 2 });
        int f = dc_kir_buffer_add(k, DC_F32, 8, c != 4);
        int n = dc_kir_buffer_add(k, DC_I32, 8, true);
        dc_kir_map m = dc_kir_map_make(k, 0, (int64_t[]){ 2 }, (int64_t[]){ 1 });
        int lf = dc_kir_load(k, f, c == 1 ? dc_kir_map_make(k, 1, (int64_t[]){ 2 }, (int64_t[]){ 1 }) : m);
        int ln = dc_kir_load(k, n, m);
        if (c != 7) dc_kir_phase_begin(k, c == 9);
        int r = -1;
        if (c == 0) r = dc_kir_binary(k, DC_OP_ADD, lf, ln);
        if (c == 2) r = dc_kir_store_add(k, f, m, dc_kir_reduce_add(k, DC_KIR_SUM, lf));
        if (c == 3) r = dc_kir_reduce_add(k, DC_KIR_SUM, lf);
        if (c == 4 || c == 7) r = dc_kir_store_add(k, f, m, lf);
        if (c == 6) r = dc_kir_unary(k, DC_OP_EXP, ln);
        if (c == 8) r = dc_kir_store_reduce_add(k, n, dc_kir_map_make(k, 0, (int64_t[]){ 1 }, NULL), ln, DC_KIR_SUM);
        if (c == 9 || c == 10) r = dc_kir_store_reduce_add(k, n, m, ln, DC_KIR_MAX);
        bool caught = r < 0 && dc_kir_error(k) != NULL;
        dc_test_case(cases[i].what, caught, "%s", dc_kir_error(k) ? dc_kir_error(k) : "no error");
        CHECK_MSG(caught, "%s: not rejected", cases[i].what);
        CHECK(dc_kir_print(k) == NULL);
        CHECK(!dc_kir_interpret(k, (void *[]){ NULL, NULL }, 0, 1));
        dc_kir_free(k);
    }
}

/* Reducing stores over x [2, 3, 2] (outer the first axis, inner the others): the sum over
 * the middle axis kept per last (f32, printed), the max of an i32 copy likewise, against hand
 * sums; and a fold of the last axis is refused. The collapsed form (nothing merges) agrees. */
TEST(kir_reducing_store) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ 2 }, 2, (int64_t[]){ 3, 2 });
    int x = dc_kir_buffer_add(k, DC_F32, 12, false);
    int xi = dc_kir_buffer_add(k, DC_I32, 12, false);
    int s = dc_kir_buffer_add(k, DC_F32, 4, true);
    int m = dc_kir_buffer_add(k, DC_I32, 4, true);
    dc_kir_map mx = dc_kir_map_make(k, 0, (int64_t[]){ 6 }, (int64_t[]){ 2, 1 });
    dc_kir_map mo = dc_kir_map_make(k, 0, (int64_t[]){ 2 }, (int64_t[]){ 0, 1 });
    int lx = dc_kir_load(k, x, mx), li = dc_kir_load(k, xi, mx);
    dc_kir_phase_begin(k, false);
    CHECK(dc_kir_store_reduce_add(k, s, mo, lx, DC_KIR_SUM) >= 0);
    CHECK(dc_kir_store_reduce_add(k, m, mo, li, DC_KIR_MAX) >= 0);
    char *text = dc_kir_print(k);
    CHECK(text && strstr(text, "  store b2 {0 o[2] i[0,1]} = sum %0\n") && strstr(text, "  store b3 {0 o[2] i[0,1]} = max %1\n"));
    free(text);
    float in[12] = { 1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6.5f }, out[4] = { 99, 99, 99, 99 }, out2[4];
    int32_t ini[12] = { 3, -1, 7, -2, 5, -9, -4, 0, -8, 2, -6, 1 }, mi[4], mi2[4];
    CHECK(dc_kir_interpret(k, (void *[]){ in, ini, out, mi }, 0, 2));
    const float es[4] = { 9, 12, -9, -12.5f };
    const int32_t em[4] = { 7, -1, -4, 2 };
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(out[i], es[i], 0, 0);
        CHECK_EQ_INT(mi[i], em[i]);
    }
    dc_kir *c = dc_kir_collapse(k);
    CHECK_EQ_INT(c->inner_rank, 2);
    CHECK(dc_kir_interpret(c, (void *[]){ in, ini, out2, mi2 }, 0, 2));
    CHECK(memcmp(out, out2, sizeof out) == 0 && memcmp(mi, mi2, sizeof mi) == 0);
    dc_kir_free(c);
    dc_kir_free(k);
}

/* Checked loads against hand values: x[idx[i]] for indices -1, 0, 3, 9 over x of 4, guarded
 * to [0, 4) (0 outside), and unguarded (positions clamped to x's first and last); an f32
 * index is refused. */
TEST(kir_checked_loads) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ 4 }, 0, NULL);
    int x = dc_kir_buffer_add(k, DC_F32, 4, false);
    int ix = dc_kir_buffer_add(k, DC_I32, 4, false);
    int out = dc_kir_buffer_add(k, DC_F32, 8, true);
    dc_kir_map id = dc_kir_map_make(k, 0, (int64_t[]){ 1 }, NULL), none = dc_kir_map_make(k, 0, NULL, NULL);
    int li = dc_kir_load(k, ix, id);
    int ge = dc_kir_binary(k, DC_OP_GE, li, dc_kir_const_i32(k, 0));
    int lt = dc_kir_binary(k, DC_OP_LT, li, dc_kir_const_i32(k, 4));
    int ok = dc_kir_binary(k, DC_OP_MUL, ge, lt);
    int guarded = dc_kir_load_checked(k, x, none, li, 1, ok), raw = dc_kir_load_checked(k, x, none, li, 1, -1);
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, out, id, guarded);
    dc_kir_store_add(k, out, dc_kir_map_make(k, 4, (int64_t[]){ 1 }, NULL), raw);
    char *text = dc_kir_print(k);
    CHECK(text && strstr(text, "load b0 {0 o[0] i[]} + %0 * 1 if %5 : f32"));
    free(text);
    float xs[4] = { 1, 2, 3, 4 }, got[8];
    int32_t is[4] = { -1, 0, 3, 9 };
    CHECK(dc_kir_interpret(k, (void *[]){ xs, is, got }, 0, 4));
    const float want[8] = { 0, 1, 4, 0, 1, 1, 4, 4 };
    for (int i = 0; i < 8; i++) CHECK_NEAR(got[i], want[i], 0, 0);
    CHECK(dc_kir_load_checked(k, x, none, dc_kir_const_f32(k, 1), 1, -1) < 0 && dc_kir_error(k));
    dc_kir_free(k);
}

/* out = x + 1 over [2,3,4] contiguous collapses to one axis; a transposed load keeps two;
 * both give the original's values. */
TEST(kir_collapse) {
    for (int transposed = 0; transposed < 2; transposed++) {
        dc_kir *k = dc_kir_new(3, (int64_t[]){ 2, 3, 4 }, 0, NULL);
        int x = dc_kir_buffer_add(k, DC_F32, 24, false);
        int y = dc_kir_buffer_add(k, DC_F32, 24, true);
        dc_kir_map id = dc_kir_map_make(k, 0, (int64_t[]){ 12, 4, 1 }, NULL);
        dc_kir_map tr = dc_kir_map_make(k, 0, (int64_t[]){ 12, 1, 3 }, NULL);
        int v = dc_kir_binary(k, DC_OP_ADD, dc_kir_load(k, x, transposed ? tr : id), dc_kir_const_f32(k, 1));
        dc_kir_phase_begin(k, false);
        dc_kir_store_add(k, y, id, v);
        dc_kir *c = dc_kir_collapse(k);
        CHECK_EQ_INT(c->outer_rank, transposed ? 3 : 1);
        CHECK_EQ_INT(dc_kir_range(c), 24);
        float in[24], a[24], b[24];
        for (int i = 0; i < 24; i++) in[i] = (float)i;
        CHECK(dc_kir_interpret(k, (void *[]){ in, a }, 0, 24));
        CHECK(dc_kir_interpret(c, (void *[]){ in, b }, 0, 24));
        CHECK(memcmp(a, b, sizeof a) == 0);
        CHECK_NEAR(a[5], transposed ? 1 * 3 + 1 + 1 : 6, 0, 0);
        dc_kir_free(c);
        dc_kir_free(k);
    }
}
