/* test_shape.c — the shape rule of every op family (inferred types and exact messages, valid
 * and invalid cases), robustness of the rules against garbage nodes, and one test for each
 * kind of verifier error. Expected types are written out by hand. */
#include "tests/test.h"

#include <stdlib.h>

#include "ir/ir.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* Parses "f32[4,3]" / "i32[]"; aborts on a malformed literal (a bug in this file). */
static dc_type ty(const char *s) {
    dc_type t;
    memset(&t, 0, sizeof t);
    if (strncmp(s, "f32[", 4) == 0) t.dtype = DC_F32;
    else if (strncmp(s, "i32[", 4) == 0) t.dtype = DC_I32;
    else abort();
    const char *p = s + 4;
    while (*p != ']') {
        char *end;
        if (t.shape.rank == DC_MAX_RANK) abort();
        t.shape.dim[t.shape.rank++] = strtoll(p, &end, 10);
        if (end == p) abort();
        p = *end == ',' ? end + 1 : end;
    }
    return t;
}

static int add_input(dc_graph *g, const dc_type *t) {
    dc_node in;
    memset(&in, 0, sizeof in);
    char name[16];
    snprintf(name, sizeof name, "x%d", g->n_nodes);
    in.op = DC_OP_INPUT;
    in.type = *t;
    in.name = name;
    return dc_graph_append(g, &in);
}

/* Runs op's shape rule on inputs of the types `ins` (NULL-terminated); writes the inferred
 * type's text or the error message into got. */
static bool infer(dc_op op, const dc_attr *attr, const char *declared, const char *const *ins,
                  char *got, size_t len) {
    dc_graph *g = dc_graph_new("t");
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    for (; ins[n.n_in]; n.n_in++) {
        dc_type t = ty(ins[n.n_in]);
        n.in[n.n_in] = add_input(g, &t);
    }
    if (attr) n.attr = *attr;
    if (declared) n.type = ty(declared);
    dc_type out;
    bool ok = dc_infer_type(g, &n, &out, got, len);
    if (ok) dc_type_str(&out, got, len);
    dc_graph_free(g);
    return ok;
}

static void expect(int line, bool want_ok, dc_op op, const dc_attr *attr, const char *declared,
                   const char *want, const char *const *ins) {
    char got[DC_ERR_LEN];
    bool ok = infer(op, attr, declared, ins, got, sizeof got);
    if (ok != want_ok || strcmp(got, want) != 0)
        dc_test_fail(__FILE__, line, "%s: %s\n  got:      %s\n  expected: %s", dc_op_name(op),
                     ok ? "accepted" : "rejected", got, want);
}

/* OK(ADD, attr, "f32[4,3]", "f32[4,3]", "f32[3]"): inputs after the expected type. */
#define OK(OP, attr, want, ...) \
    expect(__LINE__, true, DC_OP_##OP, attr, NULL, want, (const char *const[]){ __VA_ARGS__, NULL })
#define ERR(OP, attr, want, ...) \
    expect(__LINE__, false, DC_OP_##OP, attr, NULL, want, (const char *const[]){ __VA_ARGS__, NULL })
/* for ops with a declared type; sources pass NULL as their only "input" */
#define DECL_OK(OP, attr, decl, want, ...) \
    expect(__LINE__, true, DC_OP_##OP, attr, decl, want, (const char *const[]){ __VA_ARGS__, NULL })
#define DECL_ERR(OP, attr, decl, want, ...) \
    expect(__LINE__, false, DC_OP_##OP, attr, decl, want, (const char *const[]){ __VA_ARGS__, NULL })

#define ATTR(...) (&(dc_attr){ __VA_ARGS__ })
#define INTS(...) { (int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)), { __VA_ARGS__ } }

/* ---- sources and random ops --------------------------------------------------------- */

TEST(shape_sources) {
    DECL_OK(INPUT, NULL, "f32[2,3]", "f32[2,3]", NULL);
    DECL_OK(INPUT, NULL, "i32[]", "i32[]", NULL);
    DECL_ERR(INPUT, NULL, "f32[2,0]", "input: declared type has dim 1 = 0, must be >= 1", NULL);
    DECL_ERR(INPUT, NULL, "f32[1048576,1048576,2]", "input: declared type has more than 2^40 elements", NULL);
    DECL_OK(INPUT, NULL, "f32[1048576,1048576]", "f32[1048576,1048576]", NULL);
    DECL_OK(PARAM, ATTR(.init = { DC_INIT_KAIMING, 0, 0 }), "f32[4,8]", "f32[4,8]", NULL);
    DECL_ERR(PARAM, NULL, "i32[4]", "param: params must be f32, got i32[4]", NULL);
    DECL_ERR(PARAM, ATTR(.init = { DC_NINITS, 0, 0 }), "f32[4]", "param: unknown init kind 6", NULL);
    DECL_OK(FILL, ATTR(.scalar = { 2.5f }), "i32[3]", "i32[3]", NULL);
    DECL_OK(IOTA, ATTR(.axis = { 1 }), "i32[2,3]", "i32[2,3]", NULL);
    DECL_ERR(IOTA, ATTR(.axis = { 2 }), "f32[2,3]", "iota: axis 2 out of range for rank 2", NULL);
    DECL_ERR(IOTA, ATTR(.axis = { -1 }), "f32[2,3]", "iota: axis -1 out of range for rank 2", NULL);
    DECL_OK(UNIFORM, ATTR(.random = { 3, 0, 1 }), "f32[5]", "f32[5]", NULL);
    DECL_OK(NORMAL, NULL, "f32[2,2]", "f32[2,2]", NULL);
    DECL_OK(GUMBEL, NULL, "f32[]", "f32[]", NULL);
    DECL_ERR(NORMAL, NULL, "i32[2]", "normal: expects f32, got i32[2]", NULL);
    DECL_ERR(UNIFORM, ATTR(.random = { -1, 0, 1 }), "f32[2]", "uniform: stream must be >= 0, got -1", NULL);
    DECL_ERR(INPUT, NULL, "f32[]", "input: expects 0 inputs, got 1", "f32[2]");
}

/* Types no literal can write: rank 7, an unknown dtype. */
TEST(shape_malformed_declared_types) {
    dc_graph *g = dc_graph_new("t");
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = DC_OP_INPUT;
    n.type.shape.rank = 7;
    char err[DC_ERR_LEN];
    dc_type out;
    CHECK(!dc_infer_type(g, &n, &out, err, sizeof err));
    CHECK_STR_EQ(err, "input: declared type has rank 7, must be 0..6");
    n.type = ty("f32[2]");
    n.type.dtype = (dc_dtype)9;
    CHECK(!dc_infer_type(g, &n, &out, err, sizeof err));
    CHECK_STR_EQ(err, "input: declared type has unknown dtype 9");
    n.op = (dc_op)DC_OP_COUNT;
    CHECK(!dc_infer_type(g, &n, &out, err, sizeof err));
    char want[64];
    snprintf(want, sizeof want, "unknown op %d", (int)DC_OP_COUNT);
    CHECK_STR_EQ(err, want);
    dc_graph_free(g);
}

/* ---- arity and input ids ------------------------------------------------------------ */

TEST(shape_arity_and_input_ids) {
    ERR(EXP, NULL, "exp: expects 1 input, got 2", "f32[2]", "f32[2]");
    ERR(ADD, NULL, "add: expects 2 inputs, got 1", "f32[2]");
    ERR(LINEAR, NULL, "linear: expects 3 inputs, got 2", "f32[2]", "f32[2,2]");
    ERR(CONCAT, NULL, "concat: expects 1 to 16 inputs, got 0", NULL);

    dc_graph *g = dc_graph_new("t");
    dc_type f = ty("f32[2]");
    add_input(g, &f);
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = DC_OP_EXP;
    n.n_in = 1;
    n.in[0] = 5;
    char err[DC_ERR_LEN];
    dc_type out;
    CHECK(!dc_infer_type(g, &n, &out, err, sizeof err));
    CHECK_STR_EQ(err, "exp: input 0 refers to node 5, but the graph has 1 nodes");
    n.in[0] = -1;
    CHECK(!dc_infer_type(g, &n, &out, err, sizeof err));
    CHECK_STR_EQ(err, "exp: input 0 refers to node -1, but the graph has 1 nodes");
    n.n_in = 17;
    n.op = DC_OP_CONCAT;
    CHECK(!dc_infer_type(g, &n, &out, err, sizeof err));
    CHECK_STR_EQ(err, "concat: expects 1 to 16 inputs, got 17");
    n.n_in = -3;
    CHECK(!dc_infer_type(g, &n, &out, err, sizeof err));
    CHECK_STR_EQ(err, "concat: expects 1 to 16 inputs, got -3");
    /* an input whose own type is broken is named */
    g->nodes[0].type.shape.dim[0] = 0;
    n.op = DC_OP_EXP;
    n.n_in = 1;
    n.in[0] = 0;
    CHECK(!dc_infer_type(g, &n, &out, err, sizeof err));
    CHECK_STR_EQ(err, "exp: input 0 has dim 0 = 0, must be >= 1");
    dc_graph_free(g);
}

/* ---- elementwise -------------------------------------------------------------------- */

TEST(shape_unary) {
    char want[DC_ERR_LEN];
    for (int op = 0; op < DC_OP_COUNT; op++) {
        const dc_op_info *info = dc_op_get(op);
        if (info->kind != DC_KIND_ELEMENTWISE || info->arity != 1 || op == DC_OP_CAST) continue;
        expect(__LINE__, true, op, NULL, NULL, "f32[4,1,3]", (const char *const[]){ "f32[4,1,3]", NULL });
        bool i32_ok = op == DC_OP_NEG || op == DC_OP_ABS || op == DC_OP_SQUARE;
        snprintf(want, sizeof want, "%s: expects f32, got i32", info->text);
        expect(__LINE__, i32_ok, op, NULL, NULL, i32_ok ? "i32[2]" : want,
               (const char *const[]){ "i32[2]", NULL });
    }
    ERR(EXP, NULL, "exp: expects f32, got i32", "i32[3]");
    OK(POW, ATTR(.scalar = { 3 }), "f32[]", "f32[]");
    OK(CAST, ATTR(.cast = { DC_I32 }), "i32[2,5]", "f32[2,5]");
    OK(CAST, ATTR(.cast = { DC_F32 }), "f32[7]", "i32[7]");
    OK(CAST, ATTR(.cast = { DC_I32 }), "i32[7]", "i32[7]");
    ERR(CAST, ATTR(.cast = { (dc_dtype)5 }), "cast: unknown target dtype 5", "f32[7]");
}

TEST(shape_binary) {
    OK(ADD, NULL, "f32[4,3]", "f32[4,3]", "f32[3]");
    OK(SUB, NULL, "f32[4,5]", "f32[4,1]", "f32[1,5]");
    OK(MUL, NULL, "f32[2,3]", "f32[]", "f32[2,3]");
    OK(DIV, NULL, "f32[6,2,7,3]", "f32[2,1,3]", "f32[6,1,7,1]");
    ERR(ADD, NULL, "add: cannot broadcast f32[4,3] and f32[5]", "f32[4,3]", "f32[5]");
    ERR(MAXIMUM, NULL, "maximum: cannot broadcast f32[2,3] and f32[3,3]", "f32[2,3]", "f32[3,3]");
    ERR(ADD, NULL, "add: dtypes differ: f32[2] and i32[2]", "f32[2]", "i32[2]");
    OK(LT, NULL, "i32[2,3]", "f32[2,3]", "f32[3]");
    OK(EQ, NULL, "i32[4]", "i32[4]", "i32[1]");
    /* every binary op whose formula takes any dtype takes i32; comparisons give i32 0/1 from
     * f32 too */
    for (int op = 0; op < DC_OP_COUNT; op++) {
        const dc_op_info *info = dc_op_get(op);
        if (info->arity != 2 || (info->map != DC_MAP_ANY && info->map != DC_MAP_CMP)) continue;
        bool cmp = info->map == DC_MAP_CMP;
        expect(__LINE__, true, op, NULL, NULL, "i32[2]", (const char *const[]){ "i32[2]", "i32[1]", NULL });
        expect(__LINE__, true, op, NULL, NULL, cmp ? "i32[3,2]" : "f32[3,2]",
               (const char *const[]){ "f32[3,1]", "f32[2]", NULL });
    }
}

TEST(shape_where) {
    OK(WHERE, NULL, "f32[4,3]", "i32[4,1]", "f32[3]", "f32[1]");
    OK(WHERE, NULL, "i32[2,5]", "i32[]", "i32[2,1]", "i32[5]");
    OK(WHERE, NULL, "f32[2,2,3]", "i32[2,1,1]", "f32[2,3]", "f32[3]");
    ERR(WHERE, NULL, "where: cond must be i32, got f32[4,1]", "f32[4,1]", "f32[3]", "f32[3]");
    ERR(WHERE, NULL, "where: dtypes differ: f32[3] and i32[3]", "i32[3]", "f32[3]", "i32[3]");
    ERR(WHERE, NULL, "where: cannot broadcast i32[4], f32[3] and f32[3]", "i32[4]", "f32[3]", "f32[3]");
}

TEST(shape_straight_through) {
    OK(STRAIGHT_THROUGH, NULL, "f32[4,8]", "f32[4,8]", "f32[4,8]");
    ERR(STRAIGHT_THROUGH, NULL, "straight_through: shapes differ: f32[4,8] and f32[8]", "f32[4,8]", "f32[8]");
    ERR(STRAIGHT_THROUGH, NULL, "straight_through: hard must be f32, got i32[4]", "i32[4]", "f32[4]");
    ERR(STRAIGHT_THROUGH, NULL, "straight_through: soft must be f32, got i32[4]", "f32[4]", "i32[4]");
}

/* ---- reductions --------------------------------------------------------------------- */

TEST(shape_reduce) {
    OK(SUM, ATTR(.reduce = { INTS(0, 2), false }), "f32[3]", "f32[2,3,4]");
    OK(MEAN, ATTR(.reduce = { INTS(0, 2), true }), "f32[1,3,1]", "f32[2,3,4]");
    OK(MAX, ATTR(.reduce = { { 0, { 0 } }, false }), "f32[]", "f32[2,3,4]");
    OK(LOGSUMEXP, ATTR(.reduce = { { 0, { 0 } }, true }), "f32[1,1,1]", "f32[2,3,4]");
    OK(LOGSUMEXP, ATTR(.reduce = { INTS(1), false }), "f32[2,4]", "f32[2,3,4]");
    OK(SUM, ATTR(.reduce = { INTS(1), false }), "i32[2]", "i32[2,3]");
    OK(MAX, ATTR(.reduce = { INTS(0), true }), "i32[1,3]", "i32[2,3]");
    OK(SUM, NULL, "f32[]", "f32[]");
    ERR(MEAN, NULL, "mean: expects f32, got i32", "i32[2,3]");
    ERR(LOGSUMEXP, NULL, "logsumexp: expects f32, got i32", "i32[2,3]");
    ERR(SUM, ATTR(.reduce = { INTS(3), false }), "sum: axis 3 out of range for rank 2", "f32[2,3]");
    ERR(SUM, ATTR(.reduce = { INTS(-1), false }), "sum: axis -1 out of range for rank 2", "f32[2,3]");
    ERR(SUM, ATTR(.reduce = { INTS(1, 0), false }), "sum: axes must be sorted and unique, got [1,0]", "f32[2,3]");
    ERR(MAX, ATTR(.reduce = { INTS(1, 1), false }), "max: axes must be sorted and unique, got [1,1]", "f32[2,3]");
    ERR(SUM, ATTR(.reduce = { { 7, { 0 } }, false }), "sum: 7 axes given, at most 6", "f32[2,3]");
    ERR(SUM, ATTR(.reduce = { { -2, { 0 } }, false }), "sum: -2 axes given, at most 6", "f32[2,3]");
}

TEST(shape_softmax_argmax) {
    OK(SOFTMAX, ATTR(.axis = { 1 }), "f32[2,5]", "f32[2,5]");
    OK(LOG_SOFTMAX, ATTR(.axis = { 0 }), "f32[2,5]", "f32[2,5]");
    ERR(SOFTMAX, ATTR(.axis = { 2 }), "softmax: axis 2 out of range for rank 2", "f32[2,5]");
    ERR(SOFTMAX, NULL, "softmax: axis 0 out of range for rank 0", "f32[]");
    ERR(LOG_SOFTMAX, NULL, "log_softmax: expects f32, got i32", "i32[3]");
    OK(ARGMAX, ATTR(.axis = { 1 }), "i32[2,3]", "f32[2,5,3]");
    OK(ARGMAX, NULL, "i32[]", "f32[7]");
    ERR(ARGMAX, NULL, "argmax: expects f32, got i32", "i32[7]");
    ERR(ARGMAX, ATTR(.axis = { 3 }), "argmax: axis 3 out of range for rank 3", "f32[2,5,3]");
}

TEST(shape_softmax_bwd) {
    OK(SOFTMAX_BWD, ATTR(.axis = { 1 }), "f32[2,5]", "f32[2,5]", "f32[2,5]");
    ERR(SOFTMAX_BWD, ATTR(.axis = { 1 }), "softmax_bwd: dy must have y's type f32[2,5], got f32[2,1]",
        "f32[2,5]", "f32[2,1]");
    ERR(SOFTMAX_BWD, ATTR(.axis = { 2 }), "softmax_bwd: axis 2 out of range for rank 2", "f32[2,5]", "f32[2,5]");
}

/* ---- contractions ------------------------------------------------------------------- */

TEST(shape_matmul) {
    OK(MATMUL, NULL, "f32[2,4]", "f32[2,3]", "f32[3,4]");
    OK(MATMUL, ATTR(.matmul = { true, false }), "f32[2,4]", "f32[3,2]", "f32[3,4]");
    OK(MATMUL, ATTR(.matmul = { false, true }), "f32[2,4]", "f32[2,3]", "f32[4,3]");
    OK(MATMUL, ATTR(.matmul = { true, true }), "f32[2,4]", "f32[3,2]", "f32[4,3]");
    OK(MATMUL, NULL, "f32[5,7,2,4]", "f32[5,1,2,3]", "f32[7,3,4]");
    OK(MATMUL, NULL, "f32[6,2,4]", "f32[2,3]", "f32[6,3,4]");
    ERR(MATMUL, NULL, "matmul: inner dimensions differ: a has K=3, b has K=4", "f32[2,3]", "f32[4,5]");
    ERR(MATMUL, ATTR(.matmul = { true, false }), "matmul: inner dimensions differ: a has K=2, b has K=3",
        "f32[2,3]", "f32[3,4]");
    ERR(MATMUL, NULL, "matmul: a must have rank >= 2, got f32[3]", "f32[3]", "f32[3,4]");
    ERR(MATMUL, NULL, "matmul: b must have rank >= 2, got f32[3]", "f32[2,3]", "f32[3]");
    ERR(MATMUL, NULL, "matmul: cannot broadcast batch dimensions of f32[2,2,3] and f32[5,3,4]",
        "f32[2,2,3]", "f32[5,3,4]");
    ERR(MATMUL, NULL, "matmul: a must be f32, got i32[2,3]", "i32[2,3]", "i32[3,4]");
}

TEST(shape_linear) {
    OK(LINEAR, NULL, "f32[8,16]", "f32[8,4]", "f32[4,16]", "f32[16]");
    OK(LINEAR, NULL, "f32[16]", "f32[4]", "f32[4,16]", "f32[16]");
    OK(LINEAR, NULL, "f32[2,3,5]", "f32[2,3,4]", "f32[4,5]", "f32[5]");
    ERR(LINEAR, NULL, "linear: x has 8 features, weight expects 4", "f32[2,8]", "f32[4,16]", "f32[16]");
    ERR(LINEAR, NULL, "linear: bias has 8 entries, weight has 16 outputs", "f32[2,4]", "f32[4,16]", "f32[8]");
    ERR(LINEAR, NULL, "linear: weight must have rank 2 ([in,out]), got f32[4]", "f32[2,4]", "f32[4]", "f32[4]");
    ERR(LINEAR, NULL, "linear: x must have rank >= 1, got f32[]", "f32[]", "f32[1,4]", "f32[4]");
    ERR(LINEAR, NULL, "linear: bias must be f32, got i32[16]", "f32[2,4]", "f32[4,16]", "i32[16]");
}

static dc_attr conv(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t groups) {
    dc_attr a;
    memset(&a, 0, sizeof a);
    a.conv = (dc_conv_attr){ INTS(sh, sw), INTS(ph, pw), groups };
    return a;
}

TEST(shape_conv2d) {
    dc_attr same = conv(1, 1, 1, 1, 1), down = conv(2, 2, 1, 1, 1), grouped = conv(2, 3, 0, 1, 3);
    OK(CONV2D, &same, "f32[2,8,8,32]", "f32[2,8,8,64]", "f32[3,3,64,32]");
    OK(CONV2D, &down, "f32[2,4,4,32]", "f32[2,8,8,64]", "f32[3,3,64,32]");
    /* OH = (5-3)/2+1 = 2, OW = (7+2-1)/3+1 = 3 (floor) */
    OK(CONV2D, &grouped, "f32[1,2,3,9]", "f32[1,5,7,6]", "f32[3,1,2,9]");
    dc_attr g2 = conv(1, 1, 1, 1, 2), g4 = conv(1, 1, 0, 0, 4);
    ERR(CONV2D, &g2, "conv2d: input has 64 channels, weight expects 128", "f32[1,8,8,64]", "f32[3,3,64,32]");
    ERR(CONV2D, &g4, "conv2d: 10 output channels not divisible by groups=4", "f32[1,8,8,128]", "f32[1,1,32,10]");
    ERR(CONV2D, &same, "conv2d: input must have rank 4 (NHWC), got f32[8,8,3]", "f32[8,8,3]", "f32[3,3,3,4]");
    ERR(CONV2D, &same, "conv2d: weight must have rank 4 (HWIO), got f32[3,3,4]", "f32[1,8,8,3]", "f32[3,3,4]");
    dc_attr big = conv(1, 1, 1, 1, 1);
    ERR(CONV2D, &big, "conv2d: kernel 6x6 larger than padded input 5x5", "f32[1,3,3,1]", "f32[6,6,1,1]");
    dc_attr a = conv(1, 1, 1, 1, 1);
    a.conv.stride.n = 3;
    ERR(CONV2D, &a, "conv2d: stride needs 2 entries [h,w], got 3", "f32[1,8,8,3]", "f32[3,3,3,4]");
    a = conv(1, 1, 1, 1, 1);
    a.conv.pad.n = 1;
    ERR(CONV2D, &a, "conv2d: pad needs 2 entries [h,w], got 1", "f32[1,8,8,3]", "f32[3,3,3,4]");
    a = conv(0, 1, 1, 1, 1);
    ERR(CONV2D, &a, "conv2d: stride must be >= 1, got [0,1]", "f32[1,8,8,3]", "f32[3,3,3,4]");
    a = conv(1, 1, -1, 1, 1);
    ERR(CONV2D, &a, "conv2d: pad must be in [0, 2^40], got [-1,1]", "f32[1,8,8,3]", "f32[3,3,3,4]");
    a = conv(1, 1, 1, 1, 0);
    ERR(CONV2D, &a, "conv2d: groups must be >= 1, got 0", "f32[1,8,8,3]", "f32[3,3,3,4]");
    a = conv(1, 1, 1, 1, INT64_MAX);
    ERR(CONV2D, &a, "conv2d: groups=9223372036854775807 times weight's 3 channels is too large",
        "f32[1,8,8,3]", "f32[3,3,3,4]");
}

/* the declared type is conv2d's x (bwd_data) or w (bwd_weight); conv2d must give dy */
TEST(shape_conv2d_bwd) {
    dc_attr down = conv(2, 2, 1, 1, 1), grouped = conv(2, 3, 0, 1, 3);
    DECL_OK(CONV2D_BWD_DATA, &down, "f32[2,8,8,64]", "f32[2,8,8,64]", "f32[2,4,4,32]", "f32[3,3,64,32]");
    /* floor: 7 and 8 rows both give 4 outputs; the declared type decides */
    DECL_OK(CONV2D_BWD_DATA, &down, "f32[2,7,8,64]", "f32[2,7,8,64]", "f32[2,4,4,32]", "f32[3,3,64,32]");
    DECL_OK(CONV2D_BWD_WEIGHT, &grouped, "f32[3,1,2,9]", "f32[3,1,2,9]", "f32[1,5,7,6]", "f32[1,2,3,9]");
    DECL_ERR(CONV2D_BWD_DATA, &down, "f32[2,9,8,64]",
             "conv2d_bwd_data: conv2d of input f32[2,9,8,64] and weight f32[3,3,64,32] gives f32[2,5,4,32], "
             "but dy is f32[2,4,4,32]",
             "f32[2,4,4,32]", "f32[3,3,64,32]");
    DECL_ERR(CONV2D_BWD_WEIGHT, &grouped, "f32[3,1,2,8]",
             "conv2d_bwd_weight: 8 output channels not divisible by groups=3", "f32[1,5,7,6]", "f32[1,2,3,9]");
    DECL_ERR(CONV2D_BWD_WEIGHT, &grouped, "f32[3,1,2,9]",
             "conv2d_bwd_weight: conv2d of input f32[1,5,7,6] and weight f32[3,1,2,9] gives f32[1,2,3,9], "
             "but dy is f32[1,2,3,6]",
             "f32[1,5,7,6]", "f32[1,2,3,6]");
    DECL_ERR(CONV2D_BWD_DATA, &down, "i32[2,8,8,64]", "conv2d_bwd_data: declared type must be f32, got i32[2,8,8,64]",
             "f32[2,4,4,32]", "f32[3,3,64,32]");
    DECL_ERR(CONV2D_BWD_DATA, &down, "f32[2,8,8,64]", "conv2d_bwd_data: dy must be f32, got i32[2,4,4,32]",
             "i32[2,4,4,32]", "f32[3,3,64,32]");
    DECL_ERR(CONV2D_BWD_DATA, &down, "f32[8,8,64]", "conv2d_bwd_data: input must have rank 4 (NHWC), got f32[8,8,64]",
             "f32[2,4,4,32]", "f32[3,3,64,32]");
}

TEST(shape_pool_upsample) {
    OK(AVG_POOL, ATTR(.pool = { 2 }), "f32[2,4,3,3]", "f32[2,8,6,3]");
    OK(AVG_POOL, ATTR(.pool = { 1 }), "f32[2,8,6,3]", "f32[2,8,6,3]");
    ERR(AVG_POOL, ATTR(.pool = { 4 }), "avg_pool: spatial size 8x6 not divisible by factor 4", "f32[2,8,6,3]");
    ERR(AVG_POOL, ATTR(.pool = { 0 }), "avg_pool: factor must be in [1, 2^40], got 0", "f32[2,8,6,3]");
    OK(UPSAMPLE, ATTR(.pool = { 2 }), "f32[1,6,10,2]", "f32[1,3,5,2]");
    ERR(UPSAMPLE, ATTR(.pool = { -2 }), "upsample: factor must be in [1, 2^40], got -2", "f32[1,3,5,2]");
    ERR(UPSAMPLE, ATTR(.pool = { 2 }), "upsample: expects f32, got i32", "i32[1,3,5,2]");
    ERR(UPSAMPLE, ATTR(.pool = { 2 }), "upsample: input must have rank 4 (NHWC), got f32[3,5,2]", "f32[3,5,2]");
    ERR(UPSAMPLE, ATTR(.pool = { 1048576 }), "upsample: result has more than 2^40 elements", "f32[1,2,2,1]");
}

/* ---- normalisation ------------------------------------------------------------------ */

TEST(shape_norm) {
    OK(LAYER_NORM, ATTR(.eps = { 1e-5f }), "f32[2,5,8]", "f32[2,5,8]", "f32[8]", "f32[8]");
    OK(LAYER_NORM, NULL, "f32[8]", "f32[8]", "f32[8]", "f32[8]");
    ERR(LAYER_NORM, NULL, "layer_norm: gamma must be f32[8] for 8 channels, got f32[7]", "f32[2,8]", "f32[7]", "f32[8]");
    ERR(LAYER_NORM, NULL, "layer_norm: beta must be f32[8] for 8 channels, got f32[1,8]", "f32[2,8]", "f32[8]", "f32[1,8]");
    ERR(LAYER_NORM, ATTR(.eps = { -1 }), "layer_norm: eps must be finite and >= 0, got -1", "f32[8]", "f32[8]", "f32[8]");
    ERR(LAYER_NORM, ATTR(.eps = { NAN }), "layer_norm: eps must be finite and >= 0, got nan", "f32[8]", "f32[8]", "f32[8]");
    ERR(LAYER_NORM, NULL, "layer_norm: x must have rank >= 1, got f32[]", "f32[]", "f32[1]", "f32[1]");
    OK(GROUP_NORM, ATTR(.group_norm = { 4, 1e-5f }), "f32[2,4,4,8]", "f32[2,4,4,8]", "f32[8]", "f32[8]");
    OK(GROUP_NORM, ATTR(.group_norm = { 2, 0 }), "f32[3,8]", "f32[3,8]", "f32[8]", "f32[8]");
    ERR(GROUP_NORM, ATTR(.group_norm = { 3, 1e-5f }), "group_norm: 8 channels not divisible by groups=3",
        "f32[2,4,4,8]", "f32[8]", "f32[8]");
    ERR(GROUP_NORM, ATTR(.group_norm = { 0, 1e-5f }), "group_norm: groups must be >= 1, got 0",
        "f32[2,4,4,8]", "f32[8]", "f32[8]");
    ERR(GROUP_NORM, ATTR(.group_norm = { 1, 0 }), "group_norm: x must have rank >= 2, got f32[8]",
        "f32[8]", "f32[8]", "f32[8]");
    ERR(GROUP_NORM, ATTR(.group_norm = { 1, 0 }), "group_norm: gamma must be f32, got i32[8]",
        "f32[2,8]", "i32[8]", "f32[8]");
}

TEST(shape_norm_bwd) {
    OK(LAYER_NORM_BWD, ATTR(.eps = { 1e-5f }), "f32[2,3,8]", "f32[2,3,8]", "f32[8]", "f32[2,3,8]");
    OK(GROUP_NORM_BWD, ATTR(.group_norm = { 4, 1e-5f }), "f32[2,4,4,8]", "f32[2,4,4,8]", "f32[8]", "f32[2,4,4,8]");
    ERR(LAYER_NORM_BWD, ATTR(.eps = { 1e-5f }), "layer_norm_bwd: dy must have x's shape f32[2,8], got f32[8]",
        "f32[2,8]", "f32[8]", "f32[8]");
    ERR(LAYER_NORM_BWD, ATTR(.eps = { 1e-5f }), "layer_norm_bwd: gamma must be f32[8] for 8 channels, got f32[4]",
        "f32[2,8]", "f32[4]", "f32[2,8]");
    ERR(GROUP_NORM_BWD, ATTR(.group_norm = { 3, 1e-5f }), "group_norm_bwd: 8 channels not divisible by groups=3",
        "f32[2,8]", "f32[8]", "f32[2,8]");
    ERR(GROUP_NORM_BWD, ATTR(.group_norm = { 2, 1e-5f }), "group_norm_bwd: dy must be f32, got i32[2,8]",
        "f32[2,8]", "f32[8]", "i32[2,8]");
}

/* ---- data movement ------------------------------------------------------------------ */

TEST(shape_reshape_broadcast_to) {
    DECL_OK(RESHAPE, NULL, "f32[2,16]", "f32[2,16]", "f32[4,8]");
    DECL_OK(RESHAPE, NULL, "i32[]", "i32[]", "i32[1,1]");
    DECL_ERR(RESHAPE, NULL, "f32[5,7]", "reshape: f32[4,8] has 32 elements, declared f32[5,7] has 35", "f32[4,8]");
    DECL_ERR(RESHAPE, NULL, "i32[32]", "reshape: input is f32[4,8], declared i32[32]: dtypes differ", "f32[4,8]");
    DECL_ERR(RESHAPE, NULL, "f32[32,0]", "reshape: declared type has dim 1 = 0, must be >= 1", "f32[4,8]");
    DECL_OK(BROADCAST_TO, NULL, "f32[2,3,4]", "f32[2,3,4]", "f32[3,1]");
    DECL_OK(BROADCAST_TO, NULL, "i32[5]", "i32[5]", "i32[]");
    DECL_ERR(BROADCAST_TO, NULL, "f32[4,5]", "broadcast_to: cannot broadcast f32[3] to f32[4,5]", "f32[3]");
    DECL_ERR(BROADCAST_TO, NULL, "f32[3]", "broadcast_to: cannot broadcast f32[2,3] to f32[3]", "f32[2,3]");
}

TEST(shape_transpose) {
    OK(TRANSPOSE, ATTR(.perm = { INTS(2, 0, 1) }), "f32[4,2,3]", "f32[2,3,4]");
    OK(TRANSPOSE, ATTR(.perm = { INTS(1, 0) }), "i32[3,2]", "i32[2,3]");
    OK(TRANSPOSE, NULL, "f32[]", "f32[]");
    ERR(TRANSPOSE, ATTR(.perm = { INTS(0, 0, 1) }), "transpose: perm [0,0,1] is not a permutation", "f32[2,3,4]");
    ERR(TRANSPOSE, ATTR(.perm = { INTS(0, 1) }), "transpose: perm needs 3 entries (one per axis), got 2", "f32[2,3,4]");
    ERR(TRANSPOSE, ATTR(.perm = { INTS(0, 1, 3) }), "transpose: perm[2] = 3, must be in [0, 2]", "f32[2,3,4]");
    ERR(TRANSPOSE, ATTR(.perm = { { 99, { 0 } } }), "transpose: perm needs 2 entries (one per axis), got 99", "f32[2,3]");
}

static dc_attr slice2(int64_t b0, int64_t b1, int64_t e0, int64_t e1, int64_t s0, int64_t s1) {
    dc_attr a;
    memset(&a, 0, sizeof a);
    a.slice = (dc_slice_attr){ INTS(b0, b1), INTS(e0, e1), INTS(s0, s1) };
    return a;
}

TEST(shape_slice) {
    /* ceil((10-1)/3) = 3, ceil((6-0)/4) = 2 */
    dc_attr a = slice2(1, 0, 10, 6, 3, 4);
    OK(SLICE, &a, "f32[3,2]", "f32[10,6]");
    a = slice2(2, 5, 3, 6, 1, 7);
    OK(SLICE, &a, "i32[1,1]", "i32[10,6]");
    a = slice2(1, 0, 11, 6, 1, 1);
    ERR(SLICE, &a, "slice: axis 0: need 0 <= start < stop <= 10, got start=1 stop=11", "f32[10,6]");
    a = slice2(0, 4, 10, 4, 1, 1);
    ERR(SLICE, &a, "slice: axis 1: need 0 <= start < stop <= 6, got start=4 stop=4", "f32[10,6]");
    a = slice2(0, 0, 10, 6, 1, 0);
    ERR(SLICE, &a, "slice: step[1] = 0, must be in [1, 1099511627776]", "f32[10,6]");
    a = slice2(-1, 0, 10, 6, 1, 1);
    ERR(SLICE, &a, "slice: start[0] = -1, must be in [0, 1099511627776]", "f32[10,6]");
    ERR(SLICE, &a, "slice: start needs 3 entries (one per axis), got 2", "f32[10,6,2]");
}

/* the declared type is the sliced tensor's; slicing it must give dy */
TEST(shape_unslice) {
    dc_attr a = { .slice = { INTS(1, 0), INTS(10, 6), INTS(3, 2) } };
    DECL_OK(UNSLICE, &a, "f32[10,6]", "f32[10,6]", "f32[3,3]");
    DECL_OK(UNSLICE, &a, "i32[11,6]", "i32[11,6]", "i32[3,3]");
    DECL_ERR(UNSLICE, &a, "f32[10,6]", "unslice: slicing the declared f32[10,6] gives f32[3,3], but dy is f32[3,2]",
             "f32[3,2]");
    DECL_ERR(UNSLICE, &a, "i32[10,6]", "unslice: slicing the declared i32[10,6] gives i32[3,3], but dy is f32[3,3]",
             "f32[3,3]");
    DECL_ERR(UNSLICE, &a, "f32[9,6]", "unslice: axis 0: need 0 <= start < stop <= 9, got start=1 stop=10", "f32[3,3]");
}

TEST(shape_concat) {
    OK(CONCAT, ATTR(.axis = { 1 }), "f32[2,9]", "f32[2,3]", "f32[2,5]", "f32[2,1]");
    OK(CONCAT, NULL, "i32[3]", "i32[3]");
    OK(CONCAT, NULL, "i32[5,2]", "i32[3,2]", "i32[2,2]");
    ERR(CONCAT, ATTR(.axis = { 1 }), "concat: input 1 is f32[3,5], incompatible with f32[2,3] along axis 1",
        "f32[2,3]", "f32[3,5]");
    ERR(CONCAT, NULL, "concat: input 1 is i32[2,3], incompatible with f32[2,3] along axis 0", "f32[2,3]", "i32[2,3]");
    ERR(CONCAT, NULL, "concat: input 1 is f32[2], incompatible with f32[2,3] along axis 0", "f32[2,3]", "f32[2]");
    ERR(CONCAT, ATTR(.axis = { 2 }), "concat: axis 2 out of range for rank 2", "f32[2,3]", "f32[2,3]");
    ERR(CONCAT, NULL, "concat: axis 0 out of range for rank 0", "f32[]", "f32[]");
}

TEST(shape_pad) {
    dc_attr a;
    memset(&a, 0, sizeof a);
    a.pad = (dc_pad_attr){ INTS(1, 0), INTS(2, 3), 0.5f };
    OK(PAD, &a, "f32[5,6]", "f32[2,3]");
    OK(PAD, &a, "i32[4,4]", "i32[1,1]");
    ERR(PAD, &a, "pad: lo needs 1 entries (one per axis), got 2", "f32[3]");
    a.pad.lo.v[0] = -1;
    ERR(PAD, &a, "pad: lo[0] = -1, must be in [0, 1099511627776]", "f32[2,3]");
    a.pad.lo.v[0] = 0;
    a.pad.hi.v[1] = INT64_MAX;
    ERR(PAD, &a, "pad: hi[1] = 9223372036854775807, must be in [0, 1099511627776]", "f32[2,3]");
}

TEST(shape_gather_one_hot) {
    OK(GATHER, NULL, "f32[2,3,4]", "f32[10,4]", "i32[2,3]");
    OK(GATHER, NULL, "i32[5]", "i32[10]", "i32[5]");
    OK(GATHER, NULL, "f32[4]", "f32[10,4]", "i32[]");
    OK(GATHER, NULL, "f32[2,2,2,2,2,2]", "f32[2,2,2,2]", "i32[2,2,2]");
    ERR(GATHER, NULL, "gather: result rank 7 exceeds 6", "f32[2,2,2,2]", "i32[2,2,2,2]");
    ERR(GATHER, NULL, "gather: indices must be i32, got f32[2]", "f32[10,4]", "f32[2]");
    ERR(GATHER, NULL, "gather: table must have rank >= 1, got f32[]", "f32[]", "i32[2]");
    OK(ONE_HOT, ATTR(.one_hot = { 5 }), "f32[3,5]", "i32[3]");
    OK(ONE_HOT, ATTR(.one_hot = { 1 }), "f32[1]", "i32[]");
    ERR(ONE_HOT, ATTR(.one_hot = { 5 }), "one_hot: expects i32, got f32", "f32[3]");
    ERR(ONE_HOT, ATTR(.one_hot = { 0 }), "one_hot: depth must be in [1, 2^40], got 0", "i32[3]");
    ERR(ONE_HOT, ATTR(.one_hot = { 2 }), "one_hot: result rank 7 exceeds 6", "i32[1,1,1,1,1,1]");
}

/* idx [m...], src [m..., rest...] : declared [V, rest...] */
TEST(shape_scatter_add) {
    DECL_OK(SCATTER_ADD, NULL, "f32[10,6]", "f32[10,6]", "i32[2,3]", "f32[2,3,6]");
    DECL_OK(SCATTER_ADD, NULL, "f32[10]", "f32[10]", "i32[4]", "f32[4]");
    DECL_ERR(SCATTER_ADD, NULL, "f32[10,5]",
             "scatter_add: src must be indices' shape followed by the declared rows' shape: indices i32[2,3], "
             "declared f32[10,5], src f32[2,3,6]",
             "i32[2,3]", "f32[2,3,6]");
    DECL_ERR(SCATTER_ADD, NULL, "f32[10,6]",
             "scatter_add: src must be indices' shape followed by the declared rows' shape: indices i32[3,2], "
             "declared f32[10,6], src f32[2,3,6]",
             "i32[3,2]", "f32[2,3,6]");
    DECL_ERR(SCATTER_ADD, NULL, "f32[10,6]", "scatter_add: indices must be i32, got f32[2]", "f32[2]", "f32[2,6]");
    DECL_ERR(SCATTER_ADD, NULL, "f32[]", "scatter_add: declared type must have rank >= 1 ([V, rest...]), got f32[]",
             "i32[2]", "f32[2]");
    DECL_ERR(SCATTER_ADD, NULL, "i32[10]", "scatter_add: declared type must be f32, got i32[10]", "i32[2]", "f32[2]");
}

/* ---- losses ------------------------------------------------------------------------- */

TEST(shape_losses) {
    OK(CROSS_ENTROPY, NULL, "f32[]", "f32[4,10]", "i32[4]");
    OK(CROSS_ENTROPY, NULL, "f32[]", "f32[10]", "i32[]");
    OK(CROSS_ENTROPY, NULL, "f32[]", "f32[2,3,10]", "i32[2,3]");
    ERR(CROSS_ENTROPY, NULL, "cross_entropy: labels must be i32, got f32[4]", "f32[4,10]", "f32[4]");
    ERR(CROSS_ENTROPY, NULL,
        "cross_entropy: logits f32[4,10] need labels of shape [...] = logits without its last axis, got i32[5]",
        "f32[4,10]", "i32[5]");
    ERR(CROSS_ENTROPY, NULL, "cross_entropy: logits must have rank >= 1, got f32[]", "f32[]", "i32[]");
    OK(MSE, NULL, "f32[]", "f32[2,3]", "f32[2,3]");
    ERR(MSE, NULL, "mse: shapes differ: f32[2,3] and f32[3]", "f32[2,3]", "f32[3]");
    ERR(MSE, NULL, "mse: a must be f32, got i32[3]", "i32[3]", "i32[3]");
}

/* ---- robustness: garbage nodes never crash a rule ----------------------------------- */

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* A small or a wild value, as a fuzzer would pick. */
static int64_t pick(uint64_t *s) {
    static const int64_t wild[] = { 0, -1, 1, 2, 3, 7, 64, INT64_MAX, INT64_MIN, (int64_t)1 << 40 };
    return lcg(s) % 4 ? (int64_t)(lcg(s) % 5) : wild[lcg(s) % 10];
}

TEST(shape_rules_survive_garbage) {
    uint64_t s = 12345;
    dc_graph *g = dc_graph_new("fuzz");
    static const char *types[] = { "f32[2,3]", "f32[3]", "i32[2,3]", "f32[]", "f32[1,4,4,2]",
                                   "i32[4]", "f32[3,3,2,4]", "f32[2]", "f32[2,1,3,1,2,1]" };
    for (int i = 0; i < 9; i++) {
        dc_type t = ty(types[i]);
        add_input(g, &t);
    }
    int accepted = 0;
    for (int iter = 0; iter < 200000; iter++) {
        dc_node n;
        memset(&n, 0, sizeof n);
        n.op = (dc_op)(lcg(&s) % (DC_OP_COUNT + 1));
        n.n_in = lcg(&s) % 8 ? (int)(lcg(&s) % 4) : (int)pick(&s);
        for (int k = 0; k < DC_MAX_INPUTS; k++) n.in[k] = lcg(&s) % 16 ? (int)(lcg(&s) % 9) : (int)pick(&s);
        int64_t words[sizeof n.attr / sizeof(int64_t)];
        for (size_t k = 0; k < sizeof words / sizeof *words; k++) words[k] = pick(&s);
        memcpy(&n.attr, words, sizeof words);
        if (lcg(&s) % 2) n.attr.reduce.axes.n = n.attr.perm.perm.n = (int)(lcg(&s) % 8) - 1;
        const dc_attr_schema *sc = dc_op_get(n.op < DC_OP_COUNT ? n.op : 0)->attr;
        for (int f = 0; f < sc->n_fields; f++) /* bool fields hold only 0 or 1 */
            if (sc->fields[f].type == DC_FT_BOOL)
                *(bool *)((char *)&n.attr + sc->fields[f].offset) = lcg(&s) % 2;
        n.type = ty(types[lcg(&s) % 9]);
        if (lcg(&s) % 8 == 0) n.type.shape.rank = (int)pick(&s);
        dc_type out;
        char err[DC_ERR_LEN];
        err[0] = 0;
        if (dc_infer_type(g, &n, &out, err, sizeof err)) {
            accepted++;
            CHECK(out.shape.rank >= 0 && out.shape.rank <= DC_MAX_RANK);
            for (int i = 0; i < out.shape.rank; i++) CHECK(out.shape.dim[i] >= 1);
        } else {
            CHECK(strlen(err) > 0);
        }
    }
    CHECK(accepted > 100);
    dc_graph_free(g);
}

/* ---- the verifier ------------------------------------------------------------------- */

/* x: f32[2,3]; w: param f32[3,4]; %1 = matmul x, w; %2 = exp %1; output %2 */
static dc_graph *small_graph(void) {
    dc_graph *g = dc_graph_new("t");
    dc_type tx = ty("f32[2,3]");
    add_input(g, &tx);
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = DC_OP_PARAM;
    n.name = "w";
    n.type = ty("f32[3,4]");
    dc_graph_append(g, &n);
    memset(&n, 0, sizeof n);
    n.op = DC_OP_MATMUL;
    n.n_in = 2;
    n.in[0] = 0;
    n.in[1] = 1;
    n.type = ty("f32[2,4]");
    dc_graph_append(g, &n);
    memset(&n, 0, sizeof n);
    n.op = DC_OP_EXP;
    n.n_in = 1;
    n.in[0] = 2;
    n.type = ty("f32[2,4]");
    dc_graph_append(g, &n);
    dc_graph_add_output(g, 3, NULL);
    return g;
}

static void expect_verify(int line, dc_graph *g, const char *want) {
    char err[DC_ERR_LEN] = "";
    bool ok = dc_verify(g, err, sizeof err);
    if (!want) CHECK_MSG(ok, "line %d: verify failed: %s", line, err);
    else if (ok || strcmp(err, want) != 0)
        dc_test_fail(__FILE__, line, "verify:\n  got:      %s\n  expected: %s", ok ? "(ok)" : err, want);
    dc_graph_free(g);
}

TEST(verify_accepts_valid_graph) {
    expect_verify(__LINE__, small_graph(), NULL);
    dc_graph *g = small_graph();
    dc_node p = g->nodes[1];
    p.name = "x0"; /* a param may share an input's name */
    dc_graph_append(g, &p);
    dc_graph_add_output(g, 0, "same");
    expect_verify(__LINE__, g, NULL);
}

TEST(verify_ssa_and_arity) {
    dc_graph *g = small_graph();
    g->nodes[2].in[1] = 3;
    expect_verify(__LINE__, g, "node %1 (matmul): input 1 refers to node 3, which is not defined before it");
    g = small_graph();
    g->nodes[3].in[0] = 3;
    expect_verify(__LINE__, g, "node %2 (exp): input 0 refers to node 3, which is not defined before it");
    g = small_graph();
    g->nodes[3].in[0] = -4;
    expect_verify(__LINE__, g, "node %2 (exp): input 0 refers to node -4, which is not defined before it");
    g = small_graph();
    g->nodes[3].n_in = 2;
    g->nodes[3].in[1] = 0;
    expect_verify(__LINE__, g, "node %2 (exp): exp: expects 1 input, got 2");
    g = small_graph();
    g->nodes[3].n_in = 40;
    expect_verify(__LINE__, g, "node %2 (exp): has 40 inputs, at most 16 allowed");
    g = small_graph();
    g->nodes[3].op = (dc_op)200;
    expect_verify(__LINE__, g, "node %2 (?): unknown op 200");
}

TEST(verify_types) {
    dc_graph *g = small_graph();
    g->nodes[3].type = ty("f32[2,3]");
    expect_verify(__LINE__, g, "node %2 (exp): recorded type f32[2,3], but the shape rule gives f32[2,4]");
    g = small_graph();
    g->nodes[3].type = ty("i32[2,4]");
    g->nodes[3].file = "f.dcir";
    g->nodes[3].line = 7;
    expect_verify(__LINE__, g, "node %2 (exp) at f.dcir:7: recorded type i32[2,4], but the shape rule gives f32[2,4]");
    g = small_graph();
    g->nodes[3].type.shape.rank = 40;
    expect_verify(__LINE__, g, "node %2 (exp): recorded type is malformed (dtype 0, rank 40)");
    g = small_graph();
    g->nodes[1].type = ty("f32[4,4]");
    g->nodes[1].file = "m.c";
    g->nodes[1].line = 88;
    expect_verify(__LINE__, g, "node %1 (matmul): matmul: inner dimensions differ: a has K=3, b has K=4");
    g = small_graph();
    g->nodes[1].type = ty("i32[3,4]");
    expect_verify(__LINE__, g, "node %0 (param): param: params must be f32, got i32[3,4]");
    g = small_graph();
    g->nodes[0].type.shape.dim[1] = -3;
    expect_verify(__LINE__, g, "node %x0 (input): input: declared type has dim 1 = -3, must be >= 1");
}

TEST(verify_names) {
    dc_graph *g = small_graph();
    g->nodes[0].name[0] = 0;
    expect_verify(__LINE__, g, "node % (input): input has no name");
    g = small_graph();
    free(g->nodes[0].name);
    g->nodes[0].name = NULL;
    expect_verify(__LINE__, g, "node #0 (input): input has no name");
    g = small_graph();
    free(g->nodes[1].name);
    g->nodes[1].name = NULL;
    expect_verify(__LINE__, g, "node %0 (param): param has no name");
    g = small_graph();
    dc_type t = ty("f32[2]");
    add_input(g, &t);
    free(g->nodes[4].name);
    g->nodes[4].name = strdup("x0");
    expect_verify(__LINE__, g, "node %x0 (input): input name \"x0\" already used by node %x0");
    g = small_graph();
    dc_node p = g->nodes[1];
    dc_graph_append(g, &p);
    expect_verify(__LINE__, g, "node %3 (param): param name \"w\" already used by node %0");
}

TEST(verify_outputs_and_graph_name) {
    dc_graph *g = small_graph();
    g->n_outputs = 0;
    free(g->output_names[0]);
    expect_verify(__LINE__, g, "graph @t: has no outputs");
    g = small_graph();
    g->outputs[0] = 4;
    expect_verify(__LINE__, g, "graph @t: output 0 refers to node 4, but the graph has 4 nodes");
    g = small_graph();
    dc_graph_add_output(g, -1, "bad");
    expect_verify(__LINE__, g, "graph @t: output 1 refers to node -1, but the graph has 4 nodes");
    g = small_graph();
    g->name[0] = 0;
    expect_verify(__LINE__, g, "graph has an empty name");
}
