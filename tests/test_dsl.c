/* test_dsl.c — tests of the C DSL: the node lists of an MLP and a conv block (ops, types,
 * scoped param names), one builder per op with hand-computed result types, argument
 * normalisation (negative axes, partial slice/pad), and every misuse case with its exact
 * "FILE:LINE: OP: message"; the printed text of a built graph and values of one executed. */
#include "tests/test.h"

#include <stdlib.h>

#include "frontend/dsl.h"
#include "tests/op_util.h"

/* the type of handle t as text, "invalid" for a bad handle */
static const char *type_str(const dc_graph *g, dc_t t, char *buf, size_t len) {
    const dc_type *ty = dc_type_of(g, t);
    return ty ? dc_type_str(ty, buf, len) : "invalid";
}

static void check_type_at(const dc_graph *g, dc_t t, const char *want, const char *file, int line) {
    char buf[96];
    const char *got = type_str(g, t, buf, sizeof buf);
    if (strcmp(got, want) != 0) dc_test_fail(file, line, "type %s, expected %s", got, want);
}
#define CHECK_TYPE(g, t, want) check_type_at((g), (t), (want), __FILE__, __LINE__)

/* node id has op, type and (for sources) name as expected */
static void check_node_at(const dc_graph *g, int id, dc_op op, const char *type, const char *name,
                          const char *file, int line) {
    if (id >= g->n_nodes) {
        dc_test_fail(file, line, "node %d missing (graph has %d)", id, g->n_nodes);
        return;
    }
    const dc_node *n = &g->nodes[id];
    if (n->op != op) dc_test_fail(file, line, "node %d is %s, expected %s", id, dc_op_name(n->op), dc_op_name(op));
    check_type_at(g, (dc_t){ id }, type, file, line);
    if ((name == NULL) != (n->name == NULL) || (name && strcmp(name, n->name) != 0))
        dc_test_fail(file, line, "node %d name %s, expected %s", id, n->name ? n->name : "(null)",
                     name ? name : "(null)");
}
#define CHECK_NODE(g, id, OP, type, name) check_node_at((g), (id), DC_OP_##OP, (type), (name), __FILE__, __LINE__)

static void check_verifies_at(const dc_graph *g, const char *file, int line) {
    char err[DC_ERR_LEN];
    if (!dc_verify(g, err, sizeof err)) dc_test_fail(file, line, "dc_verify: %s", err);
}
#define CHECK_VERIFIES(g) check_verifies_at((g), __FILE__, __LINE__)

TEST(dsl_mlp) {
    dc_graph *g = dc_graph_new("mlp");
    dc_t x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ 8, 2 }));
    dc_t h = x;
    DC_SCOPE(g, "den") {
        h = dc_linear(g, h, 16, .name = "l0");
        h = dc_silu(g, h);
        h = dc_linear(g, h, 2, .name = "l1", .bias = false);
    }
    dc_output(g, h, "y");
    CHECK(!dc_graph_failed(g));
    CHECK_STR_EQ(dc_graph_error(g), "");
    CHECK_STR_EQ(g->scope, "");
    CHECK_EQ_INT(g->n_nodes, 7);
    CHECK_NODE(g, 0, INPUT, "f32[8,2]", "x");
    CHECK_NODE(g, 1, PARAM, "f32[2,16]", "den.l0.w");
    CHECK_NODE(g, 2, PARAM, "f32[16]", "den.l0.b");
    CHECK_NODE(g, 3, LINEAR, "f32[8,16]", NULL);
    CHECK_NODE(g, 4, SILU, "f32[8,16]", NULL);
    CHECK_NODE(g, 5, PARAM, "f32[16,2]", "den.l1.w");
    CHECK_NODE(g, 6, MATMUL, "f32[8,2]", NULL);
    CHECK_EQ_INT(g->nodes[1].attr.init.kind, DC_INIT_KAIMING);
    CHECK_EQ_INT(g->nodes[2].attr.init.kind, DC_INIT_ZEROS);
    CHECK_EQ_INT(g->nodes[3].in[0], 0);
    CHECK_EQ_INT(g->nodes[3].in[1], 1);
    CHECK_EQ_INT(g->nodes[3].in[2], 2);
    CHECK_EQ_INT(g->nodes[6].in[0], 4);
    CHECK_EQ_INT(g->nodes[6].in[1], 5);
    CHECK_EQ_INT(g->n_outputs, 1);
    CHECK_EQ_INT(g->outputs[0], 6);
    CHECK_STR_EQ(g->output_names[0], "y");
    CHECK_STR_EQ(g->nodes[4].file, __FILE__);
    CHECK_VERIFIES(g);
    dc_graph_free(g);
}

TEST(dsl_conv_block) {
    dc_graph *g = dc_graph_new("block");
    dc_t x = dc_input(g, "img", DC_F32, 4, ((int64_t[]){ 2, 8, 8, 4 }));
    dc_t h = x;
    int conv_line = 0;
    DC_SCOPE(g, "enc") {
        DC_SCOPE(g, "block3") {
            conv_line = __LINE__; h = dc_conv(g, h, 8, .name = "conv");
            h = dc_group_norm_m(g, h, .groups = 4, .name = "gn");
            h = dc_silu(g, h);
        }
        h = dc_conv(g, h, 6, .kernel = 1, .stride = 2, .name = "proj", .bias = false);
    }
    dc_output(g, h, NULL);
    CHECK_STR_EQ(dc_graph_error(g), "");
    CHECK_EQ_INT(g->n_nodes, 11);
    CHECK_NODE(g, 0, INPUT, "f32[2,8,8,4]", "img");
    CHECK_NODE(g, 1, PARAM, "f32[3,3,4,8]", "enc.block3.conv.w");
    CHECK_NODE(g, 2, CONV2D, "f32[2,8,8,8]", NULL);
    CHECK_NODE(g, 3, PARAM, "f32[8]", "enc.block3.conv.b");
    CHECK_NODE(g, 4, ADD, "f32[2,8,8,8]", NULL);
    CHECK_NODE(g, 5, PARAM, "f32[8]", "enc.block3.gn.scale");
    CHECK_NODE(g, 6, PARAM, "f32[8]", "enc.block3.gn.bias");
    CHECK_NODE(g, 7, GROUP_NORM, "f32[2,8,8,8]", NULL);
    CHECK_NODE(g, 8, SILU, "f32[2,8,8,8]", NULL);
    CHECK_NODE(g, 9, PARAM, "f32[1,1,8,6]", "enc.proj.w");
    CHECK_NODE(g, 10, CONV2D, "f32[2,4,4,6]", NULL);
    const dc_conv_attr *c = &g->nodes[2].attr.conv;
    CHECK_EQ_INT(c->stride.n, 2);
    CHECK_EQ_INT(c->stride.v[0], 1);
    CHECK_EQ_INT(c->pad.v[0], 1);
    CHECK_EQ_INT(c->pad.v[1], 1);
    CHECK_EQ_INT(c->groups, 1);
    CHECK_EQ_INT(g->nodes[10].attr.conv.pad.v[0], 0);
    CHECK_EQ_INT(g->nodes[10].attr.conv.stride.v[1], 2);
    CHECK_EQ_INT(g->nodes[1].attr.init.kind, DC_INIT_KAIMING);
    CHECK_EQ_INT(g->nodes[5].attr.init.kind, DC_INIT_ONES);
    CHECK_EQ_INT(g->nodes[6].attr.init.kind, DC_INIT_ZEROS);
    CHECK_EQ_INT(g->nodes[7].attr.group_norm.groups, 4);
    CHECK_NEAR(g->nodes[7].attr.group_norm.eps, 1e-5, 1e-12, 0);
    CHECK_EQ_INT(g->nodes[2].line, conv_line);
    CHECK_STR_EQ(g->nodes[2].file, __FILE__);
    CHECK_STR_EQ(g->scope, "");
    CHECK_VERIFIES(g);
    dc_graph_free(g);
}

TEST(dsl_layer_norm_module) {
    dc_graph *g = dc_graph_new("ln");
    dc_t x = dc_input(g, "x", DC_F32, 3, ((int64_t[]){ 2, 5, 12 }));
    dc_t y = dc_layer_norm_m(g, x, .eps = 1e-6f);
    dc_t z = dc_layer_norm_m(g, y, .name = "post");
    dc_output(g, z, "z");
    CHECK_STR_EQ(dc_graph_error(g), "");
    CHECK_NODE(g, 1, PARAM, "f32[12]", "ln.scale");
    CHECK_NODE(g, 2, PARAM, "f32[12]", "ln.bias");
    CHECK_NODE(g, 3, LAYER_NORM, "f32[2,5,12]", NULL);
    CHECK_NODE(g, 4, PARAM, "f32[12]", "post.scale");
    CHECK_NEAR(g->nodes[3].attr.eps.eps, 1e-6, 1e-13, 0);
    CHECK_NEAR(g->nodes[z.id].attr.eps.eps, 1e-5, 1e-12, 0);
    CHECK_VERIFIES(g);
    dc_graph_free(g);
}

/* Every op of ops.def once, through its builder, with the result type computed by hand. */
TEST(dsl_every_op_has_a_builder) {
    dc_graph *g = dc_graph_new("all");
    dc_t x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ 4, 6 }));
    dc_t i = dc_input(g, "i", DC_I32, 1, ((int64_t[]){ 4 }));
    dc_t img = dc_input(g, "img", DC_F32, 4, ((int64_t[]){ 1, 4, 4, 2 }));
    dc_t w = dc_param(g, "w", 2, ((int64_t[]){ 6, 3 }), .init = DC_INIT_XAVIER);
    dc_t b = dc_param(g, "b", 1, ((int64_t[]){ 3 }), .init = DC_INIT_UNIFORM, .a = -1, .b = 1);
    dc_t k = dc_param(g, "k", 4, ((int64_t[]){ 3, 3, 1, 4 }), .init = DC_INIT_NORMAL, .a = 0.02f);
    dc_t gam = dc_param(g, "gamma", 1, ((int64_t[]){ 6 }), .init = DC_INIT_ONES);
    dc_t bet = dc_param(g, "beta", 1, ((int64_t[]){ 6 }), .init = DC_INIT_ZEROS);
    dc_t cmp = dc_lt(g, x, dc_scalar(g, 0.5f));
    dc_t dy = dc_input(g, "dy", DC_F32, 4, ((int64_t[]){ 1, 4, 4, 4 }));
    struct { dc_t t; const char *type; } cases[] = {
        { x, "f32[4,6]" },
        { w, "f32[6,3]" },
        { dc_fill(g, 2.0f, 2, ((int64_t[]){ 2, 3 })), "f32[2,3]" },
        { dc_fill(g, 7, 1, ((int64_t[]){ 5 }), .dtype = DC_I32), "i32[5]" },
        { dc_iota(g, -1, 2, ((int64_t[]){ 3, 2 }), .dtype = DC_I32), "i32[3,2]" },
        { dc_neg(g, x), "f32[4,6]" }, { dc_abs(g, i), "i32[4]" }, { dc_exp(g, x), "f32[4,6]" },
        { dc_log(g, x), "f32[4,6]" }, { dc_sqrt(g, x), "f32[4,6]" }, { dc_rsqrt(g, x), "f32[4,6]" },
        { dc_square(g, x), "f32[4,6]" }, { dc_pow(g, x, 3.0f), "f32[4,6]" },
        { dc_sin(g, x), "f32[4,6]" }, { dc_cos(g, x), "f32[4,6]" }, { dc_tanh(g, x), "f32[4,6]" },
        { dc_sigmoid(g, x), "f32[4,6]" }, { dc_silu(g, x), "f32[4,6]" }, { dc_gelu(g, x), "f32[4,6]" },
        { dc_relu(g, x), "f32[4,6]" }, { dc_cast(g, i, DC_F32), "f32[4]" },
        { dc_map(g, DC_OP_TANH, x), "f32[4,6]" }, { dc_map(g, DC_OP_SOFTPLUS, x), "f32[4,6]" }, { dc_map(g, DC_OP_SUB, i, i), "i32[4]" },
        { dc_add(g, x, gam), "f32[4,6]" }, { dc_sub(g, x, gam), "f32[4,6]" },
        { dc_mul(g, x, dc_reshape(g, dc_cast(g, i, DC_F32), 2, ((int64_t[]){ 4, 1 }))), "f32[4,6]" },
        { dc_div(g, x, gam), "f32[4,6]" }, { dc_maximum(g, x, gam), "f32[4,6]" },
        { dc_minimum(g, x, gam), "f32[4,6]" }, { dc_eq(g, i, i), "i32[4]" }, { dc_ne(g, x, x), "i32[4,6]" },
        { cmp, "i32[4,6]" }, { dc_le(g, x, x), "i32[4,6]" }, { dc_gt(g, x, x), "i32[4,6]" },
        { dc_ge(g, x, x), "i32[4,6]" }, { dc_where(g, cmp, x, dc_scalar(g, 0)), "f32[4,6]" },
        { dc_sum(g, x), "f32[]" }, { dc_sum(g, x, .axes = DC_AXES(-1), .keepdims = true), "f32[4,1]" },
        { dc_mean(g, x, .axes = DC_AXES(0)), "f32[6]" }, { dc_max(g, x, .axes = DC_AXES(1)), "f32[4]" },
        { dc_logsumexp(g, x, .axes = DC_AXES(1, 0)), "f32[]" }, { dc_softmax(g, x, -1), "f32[4,6]" },
        { dc_log_softmax(g, x, 0), "f32[4,6]" }, { dc_argmax(g, x, 1), "i32[4]" },
        { dc_matmul(g, x, w), "f32[4,3]" }, { dc_matmul(g, x, x, .trans_b = true), "f32[4,4]" },
        { dc_matmul(g, x, x, .trans_a = true), "f32[6,6]" }, { dc_linear_op(g, x, w, b), "f32[4,3]" },
        { dc_conv2d(g, dc_slice(g, img, .stop = DC_INTS(1, 4, 4, 1)), k, .pad = 1), "f32[1,4,4,4]" },
        { dc_conv2d(g, img, dc_param(g, "kg", 4, ((int64_t[]){ 3, 3, 1, 4 })), .stride = 2, .groups = 2),
          "f32[1,1,1,4]" },
        { dc_avg_pool(g, img, 2), "f32[1,2,2,2]" }, { dc_upsample(g, img, 3), "f32[1,12,12,2]" },
        { dc_layer_norm(g, x, gam, bet), "f32[4,6]" },
        { dc_group_norm(g, x, gam, bet, .groups = 3), "f32[4,6]" },
        { dc_reshape(g, x, 3, ((int64_t[]){ 2, 2, 6 })), "f32[2,2,6]" },
        { dc_broadcast_to(g, gam, 3, ((int64_t[]){ 2, 4, 6 })), "f32[2,4,6]" },
        { dc_transpose(g, x, DC_INTS(1, 0)), "f32[6,4]" },
        { dc_slice(g, x, .start = DC_INTS(1, -4), .step = DC_INTS(2, 3)), "f32[2,2]" },
        { dc_slice_axis(g, x, -1, 1, -1), "f32[4,4]" },
        { dc_concat(g, -1, x, x, dc_matmul(g, x, w)), "f32[4,15]" }, { dc_concatv(g, 0, 2, ((dc_t[]){ x, x })), "f32[8,6]" },
        { dc_pad(g, x, .lo = DC_INTS(1), .hi = DC_INTS(0, 2), .value = -1), "f32[5,8]" },
        { dc_gather(g, x, i), "f32[4,6]" }, { dc_one_hot(g, i, 10), "f32[4,10]" },
        { dc_uniform(g, 1, ((int64_t[]){ 7 })), "f32[7]" },
        { dc_normal(g, 2, ((int64_t[]){ 2, 2 }), .std = 0.5f), "f32[2,2]" },
        { dc_gumbel(g, 0, NULL), "f32[]" },
        { dc_cross_entropy(g, x, i), "f32[]" }, { dc_cross_entropy_rows(g, x, i), "f32[4]" }, { dc_mse(g, x, x), "f32[]" },
        { dc_add_scalar(g, i, 2), "i32[4]" }, { dc_mul_scalar(g, x, 0.5f), "f32[4,6]" },
        { dc_conv2d_bwd_data(g, dy, k, 4, ((int64_t[]){ 1, 4, 4, 1 }), .pad = 1), "f32[1,4,4,1]" },
        { dc_conv2d_bwd_weight(g, img, dy, 4, ((int64_t[]){ 3, 3, 1, 4 }), .pad = 1, .groups = 2),
          "f32[3,3,1,4]" },
        { dc_layer_norm_bwd(g, x, gam, x), "f32[4,6]" },
        { dc_group_norm_bwd(g, x, gam, x, .groups = 3), "f32[4,6]" },
        { dc_softmax_bwd(g, x, x, -1), "f32[4,6]" }, { dc_scatter_add(g, i, x, 5), "f32[5,6]" },
        { dc_unslice(g, x, 2, ((int64_t[]){ 5, 13 }), .start = DC_INTS(1), .stop = DC_INTS(DC_END, -1),
                     .step = DC_INTS(1, 2)),
          "f32[5,13]" },
        { dc_straight_through(g, x, x), "f32[4,6]" },
        { dc_fused_conv2d(g, img, k, dc_param(g, "kb", 1, ((int64_t[]){ 4 })), dy, .pad = 1, .groups = 2,
                          .act = DC_ACTIVATION_SILU),
          "f32[1,4,4,4]" },
        { dc_fused_conv2d(g, img, dc_param(g, "k2", 4, ((int64_t[]){ 2, 2, 2, 3 })), DC_NONE, DC_NONE,
                          .stride = 2),
          "f32[1,2,2,3]" },
        { dc_fused_matmul(g, x, w, b, DC_NONE, .act = DC_ACTIVATION_GELU), "f32[4,3]" },
        { dc_fused_matmul(g, x, x, DC_NONE, dc_matmul(g, x, x, .trans_a = true), .trans_a = true),
          "f32[6,6]" },
        { dc_attention(g, img, img, img, DC_NONE, .scale = 0.5f, .causal = true), "f32[1,4,4,2]" },
        { dc_attention(g, img, img, dy, dc_fill(g, 0.0f, 2, ((int64_t[]){ 4, 1 })), .lse = true), "f32[1,4,4]" },
        { dc_attention_bwd(g, img, img, dy, DC_NONE, dy, dy, dc_attention(g, img, img, dy, DC_NONE, .lse = true), 2),
          "f32[1,4,4,4]" },
    };
    dc_output(g, cases[0].t, "out");
    CHECK_STR_EQ(dc_graph_error(g), "");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char buf[96];
        const char *got = type_str(g, cases[c].t, buf, sizeof buf);
        CHECK_MSG(strcmp(got, cases[c].type) == 0, "case %zu: type %s, expected %s", c, got, cases[c].type);
    }
    bool seen[DC_OP_COUNT] = { false };
    for (int n = 0; n < g->n_nodes; n++) seen[g->nodes[n].op] = true;
    for (int op = 0; op < DC_OP_COUNT; op++) CHECK_MSG(seen[op], "no builder made op %s", dc_op_name(op));
    CHECK_VERIFIES(g);
    dc_graph_free(g);
}

TEST(dsl_normalises_arguments) {
    dc_graph *g = dc_graph_new("norm");
    dc_t x = dc_input(g, "x", DC_F32, 3, ((int64_t[]){ 2, 3, 4 }));
    dc_t s = dc_sum(g, x, .axes = DC_AXES(-1, 0));
    dc_t t = dc_transpose(g, x, DC_INTS(0, -1, 1));
    dc_t sm = dc_softmax(g, x, -2);
    dc_t sl = dc_slice(g, x, .start = DC_INTS(-1), .stop = DC_INTS(DC_END, -1));
    dc_t c = dc_concat(g, -3, x, x);
    dc_t p = dc_pad(g, x, .hi = DC_INTS(0, 0, 2));
    dc_t u0 = dc_uniform(g, 1, ((int64_t[]){ 3 }), .lo = -2, .hi = 2);
    dc_t u1 = dc_uniform(g, 1, ((int64_t[]){ 3 }));
    dc_t s2 = dc_sum(g, x, .axes = DC_AXES(-1, 0));
    dc_output(g, s2, NULL);
    CHECK_STR_EQ(dc_graph_error(g), "");
    const dc_ints *ax = &g->nodes[s.id].attr.reduce.axes;
    CHECK_EQ_INT(ax->n, 2);
    CHECK_EQ_INT(ax->v[0], 0);
    CHECK_EQ_INT(ax->v[1], 2);
    CHECK_TYPE(g, s, "f32[3]");
    CHECK_EQ_INT(g->nodes[t.id].attr.perm.perm.v[1], 2);
    CHECK_TYPE(g, t, "f32[2,4,3]");
    CHECK_EQ_INT(g->nodes[sm.id].attr.axis.axis, 1);
    const dc_slice_attr *sa = &g->nodes[sl.id].attr.slice;
    CHECK_EQ_INT(sa->start.n, 3);
    CHECK_EQ_INT(sa->start.v[0], 1);
    CHECK_EQ_INT(sa->stop.v[0], 2);
    CHECK_EQ_INT(sa->stop.v[1], 2);
    CHECK_EQ_INT(sa->stop.v[2], 4);
    CHECK_EQ_INT(sa->step.v[2], 1);
    CHECK_TYPE(g, sl, "f32[1,2,4]");
    CHECK_EQ_INT(g->nodes[c.id].attr.axis.axis, 0);
    CHECK_TYPE(g, c, "f32[4,3,4]");
    CHECK_EQ_INT(g->nodes[p.id].attr.pad.lo.n, 3);
    CHECK_TYPE(g, p, "f32[2,3,6]");
    const dc_random_attr *r0 = &g->nodes[u0.id].attr.random, *r1 = &g->nodes[u1.id].attr.random;
    CHECK_EQ_INT(r0->stream + 1, r1->stream);
    CHECK_NEAR(r0->a, -2, 0, 0);
    CHECK_NEAR(r1->b, 1, 0, 0);
    CHECK_EQ_INT(g->next_stream, r1->stream + 1);
    /* equal builder calls give byte-equal attributes (hashing compares bytes) */
    CHECK(memcmp(&g->nodes[s.id].attr, &g->nodes[s2.id].attr, sizeof(dc_attr)) == 0);
    CHECK_VERIFIES(g);
    dc_graph_free(g);
}

/* ---- misuse: exact messages --------------------------------------------------------- */

/* A fresh graph with x: f32[2,3] and i: i32[2]. */
static dc_graph *fresh(dc_t *x, dc_t *i) {
    dc_graph *g = dc_graph_new("bad");
    *x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ 2, 3 }));
    *i = dc_input(g, "i", DC_I32, 1, ((int64_t[]){ 2 }));
    return g;
}

/* r is invalid and the graph's error is "THIS_FILE:line: msg"; frees g */
static void expect_err_at(dc_graph *g, dc_t r, int line, const char *msg, const char *file, int cline) {
    char want[DC_ERR_LEN];
    snprintf(want, sizeof want, "%s:%d: %s", __FILE__, line, msg);
    if (r.id >= 0) dc_test_fail(file, cline, "builder returned a valid handle %d", r.id);
    if (!dc_graph_failed(g)) dc_test_fail(file, cline, "graph not failed");
    if (strcmp(dc_graph_error(g), want) != 0)
        dc_test_fail(file, cline, "error:\n  got:      %s\n  expected: %s", dc_graph_error(g), want);
    dc_graph_free(g);
}
#define EXPECT_ERR(g, r, line, msg) expect_err_at((g), (r), (line), (msg), __FILE__, __LINE__)

TEST(dsl_misuse_handles) {
    dc_t x, i, r;
    int l;
    dc_graph *g = fresh(&x, &i);
    l = __LINE__; r = dc_add(g, x, DC_NONE);
    EXPECT_ERR(g, r, l, "add: operand 2 is an invalid handle");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_silu(g, ((dc_t){ 57 }));
    EXPECT_ERR(g, r, l, "silu: operand 1 is out of range (id 57, graph has 2 nodes)");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_map(g, DC_OP_MATMUL, x, x);
    EXPECT_ERR(g, r, l, "map: matmul is not an elementwise formula op");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_map(g, (dc_op)-1, x);
    EXPECT_ERR(g, r, l, "map: unknown op -1");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_map(g, DC_OP_EXP, x, x);
    EXPECT_ERR(g, r, l, "exp: expects 1 input, got 2");
    g = fresh(&x, &i);
    l = __LINE__; dc_output(g, DC_NONE, "y");
    EXPECT_ERR(g, DC_NONE, l, "output: operand 1 is an invalid handle");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_linear(g, DC_NONE, 4);
    EXPECT_ERR(g, r, l, "linear: operand 1 is an invalid handle");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_slice_axis(g, ((dc_t){ -3 }), 0, 0, 1);
    EXPECT_ERR(g, r, l, "slice: operand 1 is an invalid handle");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_add_scalar(g, DC_NONE, 1);
    EXPECT_ERR(g, r, l, "add: operand 1 is an invalid handle");
}

TEST(dsl_misuse_types_and_names) {
    dc_t x, i, r;
    int l;
    dc_graph *g = fresh(&x, &i);
    l = __LINE__; r = dc_input(g, "z", (dc_dtype)7, 1, ((int64_t[]){ 2 }));
    EXPECT_ERR(g, r, l, "input: unknown dtype 7");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_input(g, "z", DC_F32, 7, ((int64_t[]){ 1, 1, 1, 1, 1, 1, 1 }));
    EXPECT_ERR(g, r, l, "input: rank 7 is out of range 0..6");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_input(g, "z", DC_F32, 2, ((int64_t[]){ 3, 0 }));
    EXPECT_ERR(g, r, l, "input: dim 1 is 0, dims must be >= 1");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_input(g, "z", DC_F32, 2, NULL);
    EXPECT_ERR(g, r, l, "input: dims is NULL for rank 2");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_input(g, NULL, DC_F32, 0, NULL);
    EXPECT_ERR(g, r, l, "input: name is NULL");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_input(g, "", DC_F32, 0, NULL);
    EXPECT_ERR(g, r, l, "input: empty name");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_input(g, "1x", DC_F32, 0, NULL);
    EXPECT_ERR(g, r, l, "input: bad name '1x' (want [A-Za-z_][A-Za-z0-9_.]*)");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_input(g, "a b", DC_F32, 0, NULL);
    EXPECT_ERR(g, r, l, "input: bad name 'a b' (want [A-Za-z_][A-Za-z0-9_.]*)");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_input(g, "x", DC_F32, 0, NULL);
    EXPECT_ERR(g, r, l, "input: duplicate name 'x'");
    g = fresh(&x, &i);
    dc_output(g, x, "y");
    l = __LINE__; dc_output(g, i, "y");
    EXPECT_ERR(g, DC_NONE, l, "output: duplicate name 'y'");
    g = fresh(&x, &i);
    l = __LINE__; dc_output(g, i, "");
    EXPECT_ERR(g, DC_NONE, l, "output: empty name");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_cast(g, x, (dc_dtype)-1);
    EXPECT_ERR(g, r, l, "cast: unknown dtype -1");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_fill(g, 1, 1, ((int64_t[]){ 2 }), .dtype = (dc_dtype)2);
    EXPECT_ERR(g, r, l, "fill: unknown dtype 2");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_reshape(g, x, 8, ((int64_t[]){ 1, 1, 1, 1, 1, 1, 1, 6 }));
    EXPECT_ERR(g, r, l, "reshape: rank 8 is out of range 0..6");
}

TEST(dsl_misuse_params_and_scopes) {
    dc_t x, i, r;
    int l;
    dc_graph *g = fresh(&x, &i);
    dc_scope_push(g, "enc");
    dc_param(g, "w", 1, ((int64_t[]){ 3 }));
    l = __LINE__; r = dc_param(g, "w", 1, ((int64_t[]){ 4 }));
    EXPECT_ERR(g, r, l, "param: duplicate name 'enc.w'");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_param(g, "a..b", 0, NULL);
    EXPECT_ERR(g, r, l, "param: bad name 'a..b' (want [A-Za-z0-9_] components joined by '.')");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_param(g, "w", 0, NULL, .init = DC_INIT_NORMAL);
    EXPECT_ERR(g, r, l, "param: normal init of 'w' needs .a (std) > 0, got 0");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_param(g, "w", 0, NULL, .init = DC_INIT_UNIFORM, .a = 1, .b = 1);
    EXPECT_ERR(g, r, l, "param: uniform init of 'w' needs .a < .b, got [1, 1)");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_param(g, "w", 0, NULL, .init = (dc_init_kind)9);
    EXPECT_ERR(g, r, l, "param: unknown init 9");
    g = fresh(&x, &i);
    l = __LINE__; dc_scope_pop(g);
    EXPECT_ERR(g, DC_NONE, l, "scope: pop without a matching push");
    g = fresh(&x, &i);
    l = __LINE__; dc_scope_push(g, "a.b");
    EXPECT_ERR(g, DC_NONE, l, "scope: bad name 'a.b' (want [A-Za-z0-9_]+)");
    g = fresh(&x, &i);
    char big[101];
    memset(big, 'k', 100);
    big[100] = 0;
    dc_scope_push(g, big);
    dc_scope_push(g, big);
    l = __LINE__; dc_scope_push(g, big);
    char msg[300];
    snprintf(msg, sizeof msg, "scope: pushing '%s' overflows the scope (at most 255 characters)", big);
    EXPECT_ERR(g, DC_NONE, l, msg);
    g = fresh(&x, &i);
    dc_linear(g, x, 4, .name = "l0");
    l = __LINE__; r = dc_linear(g, x, 4, .name = "l0");
    EXPECT_ERR(g, r, l, "param: duplicate name 'l0.w'");
}

TEST(dsl_misuse_shapes) {
    dc_t x, i, r;
    int l;
    dc_graph *g = fresh(&x, &i);
    dc_t img = dc_input(g, "img", DC_F32, 4, ((int64_t[]){ 1, 8, 8, 64 }));
    dc_t w = dc_param(g, "w", 4, ((int64_t[]){ 3, 3, 128, 16 }));
    l = __LINE__; r = dc_conv2d(g, img, w, .pad = 1);
    EXPECT_ERR(g, r, l, "conv2d: input has 64 channels, weight expects 128");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_matmul(g, i, x);
    EXPECT_ERR(g, r, l, "matmul: a must be f32, got i32[2]");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_matmul(g, dc_sum(g, x, .axes = DC_AXES(0)), x);
    EXPECT_ERR(g, r, l, "matmul: a must have rank >= 2, got f32[3]");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_add(g, x, i);
    EXPECT_ERR(g, r, l, "add: dtypes differ: f32[2,3] and i32[2]");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_mul(g, x, dc_fill(g, 1, 1, ((int64_t[]){ 2 })));
    EXPECT_ERR(g, r, l, "mul: cannot broadcast f32[2,3] and f32[2]");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_sum(g, x, .axes = DC_AXES(5));
    EXPECT_ERR(g, r, l, "sum: axis 5 out of range for rank 2");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_sum(g, x, .axes = (dc_ints){ .n = 9 });
    EXPECT_ERR(g, r, l, "sum: axes has 9 entries, want 0..6");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_slice(g, x, .start = DC_INTS(0, 0, 0));
    EXPECT_ERR(g, r, l, "slice: more start/stop/step entries than the 2 axes of the input");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_slice_axis(g, x, 2, 0, 1);
    EXPECT_ERR(g, r, l, "slice: axis 2 is out of range for rank 2");
    g = fresh(&x, &i);
    dc_t many[17];
    for (int k = 0; k < 17; k++) many[k] = x;
    l = __LINE__; r = dc_concatv(g, 0, 17, many);
    EXPECT_ERR(g, r, l, "concat: 17 operands, want 1..16");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_linear(g, x, 0);
    EXPECT_ERR(g, r, l, "linear: out_features must be >= 1, got 0");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_conv(g, x, 8);
    EXPECT_ERR(g, r, l, "conv: input has rank 2, want at least 4");
    g = fresh(&x, &i);
    img = dc_input(g, "img", DC_F32, 4, ((int64_t[]){ 1, 8, 8, 6 }));
    l = __LINE__; r = dc_conv(g, img, 8, .groups = 4);
    EXPECT_ERR(g, r, l, "conv: 6 input and 8 output channels are not divisible by 4 groups");
    g = fresh(&x, &i);
    l = __LINE__; r = dc_group_norm_m(g, x, .groups = 2);
    EXPECT_ERR(g, r, l, "group_norm: 3 channels not divisible by groups=2");
}

TEST(dsl_errors_are_sticky) {
    dc_t x, i;
    dc_graph *g = fresh(&x, &i);
    int l = __LINE__; dc_t bad = dc_add(g, x, i);
    int n = g->n_nodes;
    char first[DC_ERR_LEN];
    snprintf(first, sizeof first, "%s", dc_graph_error(g));
    /* later calls, right or wrong, do nothing and return invalid handles */
    dc_t r1 = dc_silu(g, x);
    dc_t r2 = dc_input(g, "q", (dc_dtype)7, 0, NULL);
    dc_t r3 = dc_matmul(g, bad, x);
    dc_t r4 = dc_linear(g, x, 4, .name = "l");
    dc_t r5 = dc_uniform(g, 1, ((int64_t[]){ 3 }));
    dc_scope_push(g, "s");
    dc_scope_pop(g);
    dc_scope_pop(g);
    dc_output(g, x, "y");
    CHECK(r1.id < 0 && r2.id < 0 && r3.id < 0 && r4.id < 0 && r5.id < 0);
    CHECK_EQ_INT(g->n_nodes, n);
    CHECK_EQ_INT(g->n_outputs, 0);
    CHECK_EQ_INT(g->next_stream, 0);
    CHECK_STR_EQ(g->scope, "");
    CHECK_STR_EQ(dc_graph_error(g), first);
    EXPECT_ERR(g, bad, l, "add: dtypes differ: f32[2,3] and i32[2]");
}

TEST(dsl_null_graph) {
    dc_graph *g = NULL;
    dc_t x = dc_input(g, "x", DC_F32, 0, NULL);
    dc_t y = dc_add(g, x, x);
    dc_t z = dc_linear(g, x, 3);
    dc_t u = dc_normal(g, 0, NULL);
    dc_t c = dc_concat(g, 0, x, y);
    dc_output(g, y, "y");
    dc_scope_push(g, "s");
    dc_scope_pop(g);
    CHECK(x.id < 0 && y.id < 0 && z.id < 0 && u.id < 0 && c.id < 0);
    CHECK(dc_graph_failed(g));
    CHECK(dc_type_of(g, x) == NULL);
    CHECK_STR_EQ(dc_graph_error(g), "no graph (NULL)");
}

/* The printed text of a DSL-built graph, written out by hand, and its round trip. */
TEST(dsl_prints_and_round_trips) {
    dc_graph *g = dc_graph_new("blk");
    dc_t x = dc_input(g, "img", DC_F32, 4, ((int64_t[]){ 2, 4, 4, 2 }));
    dc_t h = x;
    DC_SCOPE(g, "enc") {
        h = dc_conv(g, h, 4, .stride = 2);
        h = dc_group_norm_m(g, h, .groups = 2);
    }
    dc_t s = dc_sum(g, dc_silu(g, h), .axes = DC_AXES(-2, 1));
    dc_output(g, s, "s");
    dc_output(g, dc_normal(g, 1, ((int64_t[]){ 3 }), .std = 2), NULL);
    const char *want =
        "graph @blk(%img: f32[2,4,4,2]) -> (s: f32[2,4], f32[3]) {\n"
        "  %0 = param \"enc.conv.w\" : f32[3,3,2,4] init=kaiming\n"
        "  %1 = conv2d %img, %0 {stride=[2,2], pad=[1,1], groups=1} : f32[2,2,2,4]\n"
        "  %2 = param \"enc.conv.b\" : f32[4] init=zeros\n"
        "  %3 = add %1, %2 : f32[2,2,2,4]\n"
        "  %4 = param \"enc.gn.scale\" : f32[4] init=ones\n"
        "  %5 = param \"enc.gn.bias\" : f32[4] init=zeros\n"
        "  %6 = group_norm %3, %4, %5 {groups=2, eps=1e-05} : f32[2,2,2,4]\n"
        "  %7 = silu %6 : f32[2,2,2,4]\n"
        "  %8 = sum %7 {axes=[1,2], keepdims=false} : f32[2,4]\n"
        "  %9 = normal {stream=0, a=0, b=2} : f32[3]\n"
        "  return %8, %9\n"
        "}\n";
    char *text = dc_print(g);
    CHECK_STR_EQ(text, want);
    char err[DC_ERR_LEN];
    dc_graph *back = dc_parse(text, strlen(text), "dsl.dcir", err, sizeof err);
    CHECK_MSG(back != NULL, "parse: %s", err);
    if (back) {
        char *again = dc_print(back);
        CHECK_STR_EQ(again, text);
        free(again);
        dc_graph_free(back);
    }
    free(text);
    dc_graph_free(g);
}

/* A DSL graph run by the reference executor, against values computed by hand. */
TEST(dsl_graph_executes) {
    dc_graph *g = dc_graph_new("run");
    dc_t x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ 2, 3 }));
    dc_t w = dc_param(g, "w", 2, ((int64_t[]){ 3, 2 }), .init = DC_INIT_ONES);
    dc_t b = dc_param(g, "b", 1, ((int64_t[]){ 2 }), .init = DC_INIT_ZEROS);
    dc_output(g, dc_add_scalar(g, dc_mul_scalar(g, x, 2), 1), "affine");
    dc_output(g, dc_linear_op(g, x, w, b), "lin");
    dc_output(g, dc_slice_axis(g, x, -1, -2, DC_END), "tail");
    dc_output(g, dc_transpose(g, x, DC_INTS(-1, 0)), "xt");
    dc_output(g, dc_max(g, x, .axes = DC_AXES(-1)), "rowmax");
    CHECK_STR_EQ(dc_graph_error(g), "");
    static const float want[5][6] = {
        { 3, 5, 7, 9, 11, 13 }, { 6, 6, 15, 15 }, { 2, 3, 5, 6 }, { 1, 4, 2, 5, 3, 6 }, { 3, 6 },
    };
    static const int count[5] = { 6, 4, 4, 6, 2 };
    char err[DC_ERR_LEN] = "";
    dc_exec *e = dc_exec_new(g, 1, err, sizeof err);
    CHECK_MSG(e != NULL, "exec: %s", err);
    dc_tensor *in = tu_tensor(DC_F32, 2, (int64_t[]){ 2, 3 }, (float[]){ 1, 2, 3, 4, 5, 6 });
    if (e && dc_exec_set_input(e, "x", in, err, sizeof err) && dc_exec_run(e, err, sizeof err)) {
        for (int o = 0; o < 5; o++) {
            const dc_tensor *t = dc_exec_output(e, o);
            CHECK_EQ_INT(dc_numel(&t->type.shape), count[o]);
            for (int k = 0; k < count[o]; k++) CHECK_NEAR(tu_get(t, k), want[o][k], 0, 0);
        }
    } else if (e) {
        dc_test_fail(__FILE__, __LINE__, "run: %s", err);
    }
    dc_tensor_free(in);
    dc_exec_free(e);
    dc_graph_free(g);
}
