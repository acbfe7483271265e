/* test_fuse.c — the fused contractions and the fuse-contraction pass. The ops: a hand-computed
 * case, and random shapes, attributes, activations and epilogue subsets against the unfused
 * chain of ref ops (conv2d / matmul, add, relu / gelu / silu, add), bit for bit; their shape
 * rules' and the parser's messages. The pass: on every IR golden of tests/ir and on a small
 * training graph (forward, dc_grad backward, SGD updates, run for a few steps), the fused graph
 * computes the same outputs and parameters as the unfused one under the ref executor, bit for
 * bit; it drops the memory plan. (The before/after goldens are tests/passes/fuse_*.dcir.) */
#include "tests/test.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>

#include "frontend/dsl.h"
#include "passes/passes.h"
#include "runtime/runtime.h"
#include "tests/op_util.h"

/* ---- helpers ------------------------------------------------------------------------- */

static dc_tensor *rand_tensor(int rank, const int64_t *dims, uint32_t seed) {
    dc_type t = { .dtype = DC_F32, .shape = { .rank = rank } };
    for (int i = 0; i < rank; i++) t.shape.dim[i] = dims[i];
    dc_tensor *x = dc_tensor_new(&t);
    for (int64_t i = 0; i < dc_numel(&t.shape); i++) ((float *)x->data)[i] = dc_rng_normal(seed, 3, (uint64_t)i);
    return x;
}

static dc_tensor *eval(dc_op op, const dc_attr *attr, int n_in, dc_tensor *const *ins) {
    char err[DC_ERR_LEN] = "";
    dc_tensor *r = tu_eval(op, attr, n_in, ins, NULL, 0, err, sizeof err);
    CHECK_MSG(r != NULL, "%s failed: %s", dc_op_name(op), err);
    return r;
}

/* a and b hold the same bits (same type) */
static bool same_bits(const dc_tensor *a, const dc_tensor *b) {
    return a && b && dc_type_eq(&a->type, &b->type) &&
           memcmp(a->data, b->data, (size_t)dc_numel(&a->type.shape) * sizeof(float)) == 0;
}

/* The unfused epilogue on y (consumed): act(y + bias) + residual, one ref op per step. */
static dc_tensor *unfused_epilogue(dc_tensor *y, dc_activation act, dc_tensor *bias, dc_tensor *res) {
    static const dc_op act_op[] = { DC_OP_COUNT, DC_OP_RELU, DC_OP_GELU, DC_OP_SILU };
    dc_tensor *t;
    if (bias && y) t = eval(DC_OP_ADD, NULL, 2, (dc_tensor *[]){ y, bias }), dc_tensor_free(y), y = t;
    if (act != DC_ACTIVATION_NONE && y) t = eval(act_op[act], NULL, 1, (dc_tensor *[]){ y }), dc_tensor_free(y), y = t;
    if (res && y) t = eval(DC_OP_ADD, NULL, 2, (dc_tensor *[]){ res, y }), dc_tensor_free(y), y = t;
    return y;
}

/* The fused node's inputs: a0, a1 and the present epilogue operands; returns the count. */
static int fused_inputs(dc_tensor **in, dc_tensor *a0, dc_tensor *a1, dc_tensor *bias, dc_tensor *res) {
    int n = 0;
    in[n++] = a0;
    in[n++] = a1;
    if (bias) in[n++] = bias;
    if (res) in[n++] = res;
    return n;
}

/* ---- the ops ------------------------------------------------------------------------- */

OP_TEST(FUSED_MATMUL, hand) {
    /* [[1,2],[3,4]] @ [[1,0],[0,-1]] = [[1,-2],[3,-4]]; + [1,1] = [[2,-1],[4,-3]];
     * relu -> [[2,0],[4,0]]; + [[10,20],[30,40]] = [[12,20],[34,40]] */
    dc_tensor *a = tu_tensor(DC_F32, 2, (int64_t[]){ 2, 2 }, (float[]){ 1, 2, 3, 4 });
    dc_tensor *b = tu_tensor(DC_F32, 2, (int64_t[]){ 2, 2 }, (float[]){ 1, 0, 0, -1 });
    dc_tensor *bias = tu_tensor(DC_F32, 1, (int64_t[]){ 2 }, (float[]){ 1, 1 });
    dc_tensor *r = tu_tensor(DC_F32, 2, (int64_t[]){ 2, 2 }, (float[]){ 10, 20, 30, 40 });
    dc_attr at = { .fused_matmul = { .act = DC_ACTIVATION_RELU, .bias = true, .residual = true } };
    dc_tensor *y = eval(DC_OP_FUSED_MATMUL, &at, 4, (dc_tensor *[]){ a, b, bias, r });
    const float want[] = { 12, 20, 34, 40 };
    for (int i = 0; y && i < 4; i++) CHECK_NEAR(tu_get(y, i), want[i], 0, 0);
    tu_free(5, a, b, bias, r, y);
}

OP_TEST(FUSED_CONV2D, hand) {
    /* 1x1 conv of a 1x1x2x1 image [1, -2] with weight 3: [3, -6]; + bias 1: [4, -5];
     * relu: [4, 0]; + residual [0.5, 0.5]: [4.5, 0.5] */
    dc_tensor *x = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 2, 1 }, (float[]){ 1, -2 });
    dc_tensor *w = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 1, 1 }, (float[]){ 3 });
    dc_tensor *bias = tu_tensor(DC_F32, 1, (int64_t[]){ 1 }, (float[]){ 1 });
    dc_tensor *r = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 2, 1 }, (float[]){ 0.5f, 0.5f });
    dc_attr at = { .fused_conv = { .stride = { 2, { 1, 1 } }, .pad = { 2, { 0, 0 } }, .groups = 1,
                                   .act = DC_ACTIVATION_RELU, .bias = true, .residual = true } };
    dc_tensor *y = eval(DC_OP_FUSED_CONV2D, &at, 4, (dc_tensor *[]){ x, w, bias, r });
    const float want[] = { 4.5f, 0.5f };
    for (int i = 0; y && i < 2; i++) CHECK_NEAR(tu_get(y, i), want[i], 0, 0);
    tu_free(5, x, w, bias, r, y);
}

/* Random convs: every activation, every subset of bias and residual, strides, padding and
 * groups; the fused op equals conv2d + add + act + add bit for bit. */
OP_TEST(FUSED_CONV2D, vs_unfused) {
    const struct { int64_t n, h, w, c, k, o, s, p, g; } cases[] = {
        { 2, 7, 6, 4, 3, 8, 1, 1, 1 }, { 1, 9, 9, 6, 3, 6, 2, 1, 3 }, { 3, 5, 5, 2, 1, 5, 1, 0, 1 },
        { 1, 8, 8, 8, 5, 16, 2, 2, 2 }, { 2, 4, 6, 3, 2, 3, 1, 1, 3 },
    };
    for (int c = 0; c < 5; c++)
        for (int act = 0; act < DC_NACTIVATIONS; act++)
            for (int flags = 0; flags < 4; flags++) {
                bool has_b = flags & 1, has_r = flags & 2;
                uint32_t seed = (uint32_t)(100 * c + 10 * act + flags);
                dc_tensor *x = rand_tensor(4, (int64_t[]){ cases[c].n, cases[c].h, cases[c].w, cases[c].c }, seed);
                dc_tensor *w = rand_tensor(4, (int64_t[]){ cases[c].k, cases[c].k, cases[c].c / cases[c].g, cases[c].o }, seed + 1);
                dc_attr ca;
                memset(&ca, 0, sizeof ca);
                ca.conv.stride = (dc_ints){ 2, { cases[c].s, cases[c].s } };
                ca.conv.pad = (dc_ints){ 2, { cases[c].p, cases[c].p } };
                ca.conv.groups = cases[c].g;
                dc_tensor *y = eval(DC_OP_CONV2D, &ca, 2, (dc_tensor *[]){ x, w });
                if (!y) {
                    tu_free(2, x, w);
                    continue;
                }
                dc_tensor *bias = has_b ? rand_tensor(1, (int64_t[]){ cases[c].o }, seed + 2) : NULL;
                dc_tensor *res = has_r ? rand_tensor(4, y->type.shape.dim, seed + 3) : NULL;
                dc_attr fa;
                memset(&fa, 0, sizeof fa);
                fa.fused_conv.stride = ca.conv.stride;
                fa.fused_conv.pad = ca.conv.pad;
                fa.fused_conv.groups = ca.conv.groups;
                fa.fused_conv.act = (dc_activation)act;
                fa.fused_conv.bias = has_b;
                fa.fused_conv.residual = has_r;
                dc_tensor *in[4];
                int n = fused_inputs(in, x, w, bias, res);
                dc_tensor *got = eval(DC_OP_FUSED_CONV2D, &fa, n, in);
                dc_tensor *want = unfused_epilogue(y, (dc_activation)act, bias, res);
                CHECK_MSG(same_bits(got, want), "case %d act %s bias %d residual %d differs", c,
                          dc_activation_name((dc_activation)act), has_b, has_r);
                tu_free(6, x, w, bias, res, got, want);
            }
}

/* Random matmuls: transposes, batch broadcasting, a 2-D b under a rank-3 a (a linear), every
 * activation and epilogue subset; equal to matmul + add + act + add bit for bit. */
OP_TEST(FUSED_MATMUL, vs_unfused) {
    const struct { int ra; int64_t da[4]; int rb; int64_t db[4]; bool ta, tb; } cases[] = {
        { 2, { 5, 7 }, 2, { 7, 3 }, false, false },
        { 3, { 2, 9, 4 }, 2, { 9, 6 }, true, false },
        { 3, { 3, 4, 130 }, 3, { 1, 20, 130 }, false, true },
        { 4, { 2, 1, 6, 5 }, 3, { 3, 7, 6 }, true, true },
        { 3, { 2, 17, 33 }, 2, { 33, 600 }, false, false },
    };
    for (int c = 0; c < 5; c++)
        for (int act = 0; act < DC_NACTIVATIONS; act++)
            for (int flags = 0; flags < 4; flags++) {
                bool has_b = flags & 1, has_r = flags & 2;
                uint32_t seed = (uint32_t)(1000 + 100 * c + 10 * act + flags);
                dc_tensor *a = rand_tensor(cases[c].ra, cases[c].da, seed);
                dc_tensor *b = rand_tensor(cases[c].rb, cases[c].db, seed + 1);
                dc_attr ma = { .matmul = { cases[c].ta, cases[c].tb } };
                dc_tensor *y = eval(DC_OP_MATMUL, &ma, 2, (dc_tensor *[]){ a, b });
                if (!y) {
                    tu_free(2, a, b);
                    continue;
                }
                const dc_shape *s = &y->type.shape;
                dc_tensor *bias = has_b ? rand_tensor(1, &s->dim[s->rank - 1], seed + 2) : NULL;
                dc_tensor *res = has_r ? rand_tensor(s->rank, s->dim, seed + 3) : NULL;
                dc_attr fa = { .fused_matmul = { cases[c].ta, cases[c].tb, (dc_activation)act, has_b, has_r } };
                dc_tensor *in[4];
                int n = fused_inputs(in, a, b, bias, res);
                dc_tensor *got = eval(DC_OP_FUSED_MATMUL, &fa, n, in);
                dc_tensor *want = unfused_epilogue(y, (dc_activation)act, bias, res);
                CHECK_MSG(same_bits(got, want), "case %d act %s bias %d residual %d differs", c,
                          dc_activation_name((dc_activation)act), has_b, has_r);
                tu_free(6, a, b, bias, res, got, want);
            }
}

/* A linear is a fused_matmul with bias, bit for bit. */
TEST(fused_matmul_is_linear) {
    dc_tensor *x = rand_tensor(3, (int64_t[]){ 2, 9, 40 }, 7), *w = rand_tensor(2, (int64_t[]){ 40, 24 }, 8);
    dc_tensor *b = rand_tensor(1, (int64_t[]){ 24 }, 9);
    dc_tensor *lin = eval(DC_OP_LINEAR, NULL, 3, (dc_tensor *[]){ x, w, b });
    dc_attr fa = { .fused_matmul = { .bias = true } };
    dc_tensor *fm = eval(DC_OP_FUSED_MATMUL, &fa, 3, (dc_tensor *[]){ x, w, b });
    CHECK(same_bits(lin, fm));
    tu_free(5, x, w, b, lin, fm);
}

/* ---- shape rules and text ------------------------------------------------------------ */

/* The shape rule's message for a graph whose last line is `line`. */
static void expect_parse_error(const char *line, const char *want) {
    char text[1024], err[DC_ERR_LEN] = "";
    snprintf(text, sizeof text,
             "graph @t(%%x: f32[2,4,4,3], %%a: f32[4,6], %%b: f32[6,5], %%v: f32[5], %%u: f32[4]) -> (f32[]) {\n"
             "  %%0 = param \"w\" : f32[3,3,3,8] init=zeros\n"
             "  %%1 = %s\n"
             "  %%2 = sum %%1 {axes=[], keepdims=false} : f32[]\n"
             "  return %%2\n"
             "}\n", line);
    dc_graph *g = dc_parse(text, strlen(text), "t.dcir", err, sizeof err);
    CHECK_MSG(!g && strstr(err, want), "%s\n  got: %s\n  expected: %s", line, err, want);
    dc_graph_free(g);
}

TEST(fused_shape_rules) {
    expect_parse_error("fused_matmul %a, %b {trans_a=false, trans_b=false, act=none, bias=false, residual=false, result=1} : f32[4,5]",
                       "fused_matmul: result 1 (the pre-activation) needs an activation");
    expect_parse_error("fused_conv2d %x, %0 {stride=[1,1], pad=[1,1], groups=1, act=silu, bias=false, residual=false, result=2} : f32[2,4,4,8]",
                       "fused_conv2d: result must be 0 (the epilogue's value) or 1 (the pre-activation), got 2");
    expect_parse_error("fused_matmul %a, %b, %v {trans_a=false, trans_b=false, act=relu, bias=true, residual=true, result=0} : f32[4,5]",
                       "fused_matmul: bias=true, residual=true need 4 inputs, got 3");
    expect_parse_error("fused_matmul %a, %b, %u {trans_a=false, trans_b=false, act=none, bias=true, residual=false, result=0} : f32[4,5]",
                       "fused_matmul: bias has 4 entries, the result has 5 channels");
    expect_parse_error("fused_matmul %a, %b, %v {trans_a=false, trans_b=false, act=none, bias=false, residual=true, result=0} : f32[4,5]",
                       "fused_matmul: residual must have the result's type f32[4,5], got f32[5]");
    expect_parse_error("fused_matmul %a, %a {trans_a=false, trans_b=false, act=none, bias=false, residual=false, result=0} : f32[4,6]",
                       "fused_matmul: inner dimensions differ");
    expect_parse_error("fused_conv2d %x, %0 {stride=[1,1], pad=[1,1], groups=2, act=silu, bias=false, residual=false, result=0} : f32[2,4,4,8]",
                       "fused_conv2d: input has 3 channels, weight expects 6");
    expect_parse_error("fused_conv2d %x, %0, %v {stride=[1,1], pad=[1,1], groups=1, act=silu, bias=true, residual=false, result=0} : f32[2,4,4,8]",
                       "fused_conv2d: bias has 5 entries, the result has 8 channels");
    expect_parse_error("fused_conv2d %x {stride=[1,1], pad=[1,1], groups=1, act=silu, bias=false, residual=false, result=0} : f32[2,4,4,8]",
                       "fused_conv2d: expects at least 2 inputs, got 1");
    expect_parse_error("fused_matmul %a, %b {trans_a=false, trans_b=false, act=tanh, bias=false, residual=false, result=0} : f32[4,5]",
                       "unknown value 'tanh' for 'act'");
    expect_parse_error("fused_matmul %a, %b {trans_a=false, trans_b=false, act=2, bias=false, residual=false, result=0} : f32[4,5]",
                       "expected a name for 'act'");
    /* an activation outside the enum, set directly, is caught by the rule */
    dc_graph *g = dc_graph_new("t");
    char err[DC_ERR_LEN] = "";
    dc_type ta = { DC_F32, { 2, { 4, 6 } } }, tb = { DC_F32, { 2, { 6, 5 } } };
    int a = dc_graph_emit(g, DC_OP_INPUT, 0, NULL, NULL, &ta, "a", NULL, 0, err, sizeof err);
    int b = dc_graph_emit(g, DC_OP_INPUT, 0, NULL, NULL, &tb, "b", NULL, 0, err, sizeof err);
    dc_attr at = { .fused_matmul = { .act = DC_NACTIVATIONS } };
    CHECK(dc_graph_emit(g, DC_OP_FUSED_MATMUL, 2, (int[]){ a, b }, &at, NULL, NULL, NULL, 0, err, sizeof err) < 0);
    CHECK_STR_EQ(err, "fused_matmul: unknown activation 4");
    dc_graph_free(g);
    CHECK_STR_EQ(dc_activation_name(DC_ACTIVATION_GELU), "gelu");
}

/* ---- the pass keeps results ---------------------------------------------------------- */

/* Runs g for `steps` runs (updates applied) on seeded inputs; returns a malloc'd copy of all
 * outputs and of every param, back to back, and its float count in *n; NULL on error. */
static float *run_values(const dc_graph *g, int steps, int64_t *n, char *why, size_t len) {
    dc_exec *e = dc_exec_new(g, 17, why, len);
    if (!e) return NULL;
    for (int k = 0; k < dc_graph_n_inputs(g); k++) {
        const dc_node *in = &g->nodes[dc_graph_input(g, k)];
        dc_tensor *t = dc_tensor_new(&in->type);
        for (int64_t i = 0; i < dc_numel(&in->type.shape); i++) {
            if (in->type.dtype == DC_I32) ((int32_t *)t->data)[i] = (int32_t)(dc_rng_u32(9, (uint64_t)k, (uint64_t)i) % 2);
            else ((float *)t->data)[i] = dc_rng_normal(9, (uint64_t)k, (uint64_t)i);
        }
        dc_exec_set_input(e, in->name, t, why, len);
        dc_tensor_free(t);
    }
    bool ok = true;
    for (int s = 0; s < steps && ok; s++) ok = dc_exec_run(e, why, len);
    float *v = NULL;
    *n = 0;
    for (int pass = 0; ok && pass < 2; pass++) {
        int64_t k = 0;
        for (int i = 0; i < g->n_outputs; i++) {
            const dc_tensor *t = dc_exec_output(e, i);
            int64_t m = dc_numel(&t->type.shape);
            if (v) memcpy(v + k, t->data, (size_t)m * 4);
            k += m;
        }
        for (int i = 0; i < g->n_nodes; i++) {
            if (g->nodes[i].op != DC_OP_PARAM) continue;
            const dc_tensor *t = dc_exec_param(e, g->nodes[i].name);
            int64_t m = dc_numel(&t->type.shape);
            if (v) memcpy(v + k, t->data, (size_t)m * 4);
            k += m;
        }
        if (!v && !(v = malloc((size_t)(k ? k : 1) * 4))) abort();
        *n = k;
    }
    dc_exec_free(e);
    return v;
}

/* g (left as is) and a copy of it after fuse-contraction give the same bits after `steps`
 * runs; returns the number of fused nodes in the copy, -1 on a failure (reported). */
static int fused_keeps_results(const dc_graph *g, const char *what, int steps) {
    char why[DC_ERR_LEN] = "";
    char *text = dc_print(g);
    dc_graph *h = dc_parse(text, strlen(text), what, why, sizeof why);
    free(text);
    dc_pass_opts o = { .verify_each = true };
    bool ok = h && dc_run_pipeline(h, "fuse-contraction", &o, why, sizeof why);
    int64_t na = 0, nb = 0;
    float *a = ok ? run_values(g, steps, &na, why, sizeof why) : NULL;
    float *b = a ? run_values(h, steps, &nb, why, sizeof why) : NULL;
    ok = b && na == nb && memcmp(a, b, (size_t)na * 4) == 0;
    if (!ok && b) snprintf(why, sizeof why, "values differ after fusion");
    int fused = 0;
    for (int i = 0; ok && i < h->n_nodes; i++)
        fused += h->nodes[i].op == DC_OP_FUSED_CONV2D || h->nodes[i].op == DC_OP_FUSED_MATMUL;
    dc_test_case(what, ok, "%s", why);
    free(a);
    free(b);
    dc_graph_free(h);
    return ok ? fused : -1;
}

TEST(fuse_keeps_ir_golden_results) {
    DIR *d = opendir("tests/ir");
    struct dirent *e;
    int files = 0, fused = 0;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".dcir") != 0) continue;
        char path[512], err[DC_ERR_LEN];
        snprintf(path, sizeof path, "tests/ir/%s", e->d_name);
        dc_graph *g = dc_parse_file(path, err, sizeof err);
        CHECK_MSG(g, "%s", err);
        if (g) fused += fused_keeps_results(g, path, 2), files++;
        dc_graph_free(g);
    }
    if (d) closedir(d);
    CHECK(files >= 4);
    CHECK_MSG(fused >= 4, "only %d fused nodes over the IR goldens", fused);
}

/* A small CNN training step: conv + bias + silu blocks with a residual, a linear head, mse;
 * dc_grad; SGD updates. Three steps with and without fusion give the same loss and params. */
TEST(fuse_keeps_training_results) {
    dc_graph *g = dc_graph_new("train");
    dc_t x = dc_input(g, "x", DC_F32, 4, ((int64_t[]){ 2, 6, 6, 3 }));
    dc_t t = dc_input(g, "t", DC_F32, 2, ((int64_t[]){ 2, 5 }));
    dc_t h = dc_silu(g, dc_conv(g, x, 8, .name = "c1", .stride = 2));
    dc_t r = dc_gelu(g, dc_conv(g, h, 8, .name = "c2"));
    h = dc_add(g, dc_conv(g, r, 8, .name = "c3", .kernel = 1), h);
    h = dc_relu(g, dc_linear(g, dc_reshape(g, h, 2, ((int64_t[]){ 2, 72 })), 16, .name = "l1"));
    h = dc_linear(g, h, 5, .name = "l2");
    dc_t loss = dc_mse(g, h, t);
    dc_output(g, loss, "loss");
    int wrt[16], grads[16], n = 0;
    for (int i = 0; i < g->n_nodes && n < 16; i++)
        if (g->nodes[i].op == DC_OP_PARAM) wrt[n++] = i;
    char err[DC_ERR_LEN] = "";
    CHECK_MSG(dc_grad(g, loss.id, wrt, n, grads, err, sizeof err), "%s", err);
    for (int k = 0; k < n; k++)
        dc_graph_add_update(g, wrt[k], dc_sub(g, (dc_t){ wrt[k] }, dc_mul_scalar(g, (dc_t){ grads[k] }, 0.05f)).id);
    CHECK_STR_EQ(dc_graph_error(g), "");
    int fused = fused_keeps_results(g, "training graph", 3);
    CHECK_MSG(fused >= 5, "%d fused nodes in the training graph", fused);
    dc_graph_free(g);
}

TEST(fuse_drops_plan) {
    dc_graph *g = dc_graph_new("p");
    dc_t a = dc_input(g, "a", DC_F32, 2, ((int64_t[]){ 3, 4 }));
    dc_output(g, dc_relu(g, dc_matmul(g, a, a, .trans_b = true)), NULL);
    dc_pass_opts o = { 0 };
    char err[DC_ERR_LEN];
    CHECK(dc_run_pipeline(g, "plan-memory", &o, err, sizeof err));
    CHECK(g->plan_offset != NULL);
    CHECK(dc_run_pipeline(g, "fuse-contraction", &o, err, sizeof err));
    CHECK(g->plan_offset == NULL);
    CHECK_EQ_INT(g->nodes[g->outputs[0]].op, DC_OP_FUSED_MATMUL);
    dc_graph_free(g);
}
