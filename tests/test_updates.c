/* test_updates.c — state updates (param <- value): the executor applies them after every run,
 * simultaneously (a swap swaps, a counter counts), params keep them across runs, outputs of
 * the same run agree with them; the verifier rejects bad updates naming the update; the
 * `assign` text form round-trips and its malformed forms give located errors. */
#include "tests/test.h"

#include <stdlib.h>

#include "ir/ir.h"
#include "runtime/runtime.h"

static dc_type vec_type(int64_t n) {
    dc_type t;
    memset(&t, 0, sizeof t);
    t.dtype = DC_F32;
    t.shape.rank = 1;
    t.shape.dim[0] = n;
    return t;
}

static int emit(dc_graph *g, dc_op op, int n_in, const int *in, const dc_attr *attr,
                const dc_type *declared, const char *name) {
    char err[DC_ERR_LEN] = "";
    int id = dc_graph_emit(g, op, n_in, in, attr, declared, name, NULL, 0, err, sizeof err);
    CHECK_MSG(id >= 0, "emit %s: %s", dc_op_name(op), err);
    return id;
}

static int param(dc_graph *g, const char *name, int64_t n) {
    dc_attr a;
    memset(&a, 0, sizeof a);
    a.init = (dc_init_attr){ DC_INIT_UNIFORM, -2.0f, 2.0f };
    dc_type t = vec_type(n);
    return emit(g, DC_OP_PARAM, 0, NULL, &a, &t, name);
}

static int fill(dc_graph *g, float v, int64_t n) {
    dc_attr a;
    memset(&a, 0, sizeof a);
    a.scalar.value = v;
    dc_type t = vec_type(n);
    return emit(g, DC_OP_FILL, 0, NULL, &a, &t, NULL);
}

static int binary(dc_graph *g, dc_op op, int x, int y) {
    return emit(g, op, 2, (int[]){ x, y }, NULL, NULL, NULL);
}

static dc_exec *new_exec(const dc_graph *g, uint64_t seed) {
    char err[DC_ERR_LEN] = "";
    dc_exec *e = dc_exec_new(g, seed, err, sizeof err);
    CHECK_MSG(e != NULL, "dc_exec_new: %s", err);
    return e;
}

static bool run(dc_exec *e) {
    char err[DC_ERR_LEN] = "";
    bool ok = dc_exec_run(e, err, sizeof err);
    CHECK_MSG(ok, "dc_exec_run: %s", err);
    return ok;
}

static float *copy_of(const dc_tensor *t) {
    size_t n = (size_t)dc_numel(&t->type.shape);
    float *c = malloc(n * sizeof *c);
    if (!c) abort();
    memcpy(c, t->data, n * sizeof *c);
    return c;
}

TEST(updates_counter_counts_across_runs) {
    dc_graph *g = dc_graph_new("counter");
    int p = param(g, "p", 5);
    int s = binary(g, DC_OP_ADD, p, fill(g, 1.0f, 5));
    dc_graph_add_output(g, s, NULL);
    dc_graph_add_update(g, p, s);
    dc_exec *e = new_exec(g, 7);
    if (e) {
        float *p0 = copy_of(dc_exec_param(e, "p"));
        for (int r = 0; r < 3; r++) run(e);
        const float *pv = dc_exec_param(e, "p")->data;
        for (int i = 0; i < 5; i++) {
            float want = ((p0[i] + 1.0f) + 1.0f) + 1.0f;
            CHECK_MSG(pv[i] == want, "p[%d] = %.9g, expected %.9g", i, (double)pv[i], (double)want);
        }
        free(p0);
    }
    dc_exec_free(e);
    dc_graph_free(g);
}

TEST(updates_are_simultaneous) {
    /* a <- b, b <- a swaps; c <- a, d <- d, and a rotation x <- y <- z <- x */
    dc_graph *g = dc_graph_new("swap");
    int a = param(g, "a", 3), b = param(g, "b", 3), c = param(g, "c", 3), d = param(g, "d", 3);
    int x = param(g, "x", 3), y = param(g, "y", 3), z = param(g, "z", 3);
    dc_graph_add_output(g, binary(g, DC_OP_ADD, a, b), NULL);
    dc_graph_add_update(g, a, b);
    dc_graph_add_update(g, b, a);
    dc_graph_add_update(g, c, a);
    dc_graph_add_update(g, d, d);
    dc_graph_add_update(g, x, y);
    dc_graph_add_update(g, y, z);
    dc_graph_add_update(g, z, x);
    dc_exec *e = new_exec(g, 3);
    if (e) {
        const char *names[] = { "a", "b", "c", "d", "x", "y", "z" };
        float *before[7];
        for (int k = 0; k < 7; k++) before[k] = copy_of(dc_exec_param(e, names[k]));
        /* the old value each param must take: by index into names */
        const int from[] = { 1, 0, 0, 3, 5, 6, 4 };
        run(e);
        for (int k = 0; k < 7; k++) {
            const float *now = dc_exec_param(e, names[k])->data;
            for (int i = 0; i < 3; i++)
                CHECK_MSG(now[i] == before[from[k]][i], "%s[%d] = %.9g, expected old %s[%d] = %.9g",
                          names[k], i, (double)now[i], names[from[k]], i, (double)before[from[k]][i]);
        }
        for (int k = 0; k < 7; k++) free(before[k]);
    }
    dc_exec_free(e);
    dc_graph_free(g);
}

TEST(updates_agree_with_outputs_of_the_run) {
    /* out0 = w*2 + lr, update w <- out0; out1 = w - w (reads the old w during the run) */
    dc_graph *g = dc_graph_new("agree");
    int w = param(g, "w", 4);
    int v = binary(g, DC_OP_ADD, binary(g, DC_OP_MUL, w, fill(g, 2.0f, 4)), fill(g, 0.5f, 4));
    int old = binary(g, DC_OP_ADD, w, fill(g, 0.0f, 4));
    dc_graph_add_output(g, v, "new_w");
    dc_graph_add_output(g, old, "old_w");
    dc_graph_add_update(g, w, v);
    dc_exec *e = new_exec(g, 11);
    for (int r = 0; e && r < 2; r++) {
        float *w0 = copy_of(dc_exec_param(e, "w"));
        run(e);
        const float *out = dc_exec_output(e, 0)->data, *prev = dc_exec_output(e, 1)->data;
        const float *wn = dc_exec_param(e, "w")->data;
        for (int i = 0; i < 4; i++) {
            CHECK(out[i] == wn[i]);
            CHECK(prev[i] == w0[i]);
            CHECK(wn[i] == w0[i] * 2.0f + 0.5f);
        }
        free(w0);
    }
    dc_exec_free(e);
    dc_graph_free(g);
}

/* Verifies g with one extra update and expects err to equal want. */
static void expect_rejected(dc_graph *g, int param_id, int value_id, const char *want) {
    dc_graph_add_update(g, param_id, value_id);
    char err[DC_ERR_LEN] = "";
    CHECK(!dc_verify(g, err, sizeof err));
    CHECK_STR_EQ(err, want);
    CHECK(dc_exec_new(g, 1, err, sizeof err) == NULL);
    g->n_updates--;
}

TEST(updates_verifier_rejects_bad_updates) {
    dc_graph *g = dc_graph_new("bad");
    int p = param(g, "p", 4), q = param(g, "q", 8);
    int f = fill(g, 1.0f, 4);
    dc_graph_add_output(g, binary(g, DC_OP_ADD, p, f), NULL);
    dc_graph_add_update(g, p, f);
    char err[DC_ERR_LEN] = "";
    CHECK_MSG(dc_verify(g, err, sizeof err), "%s", err);
    expect_rejected(g, f, p, "update 1 (assign %2, %0): the target is a fill node, not a param");
    expect_rejected(g, q, f, "update 1 (assign %1, %2): value type f32[4] does not match param type f32[8]");
    expect_rejected(g, p, p, "update 1 (assign %0, %0): param \"p\" is already assigned by update 0");
    expect_rejected(g, p, 99, "update 1 (assign %0, #99): refers to a node outside the graph's 4 nodes");
    expect_rejected(g, -1, p, "update 1 (assign #-1, %0): refers to a node outside the graph's 4 nodes");
    dc_graph_free(g);
}

TEST(updates_text_round_trip) {
    size_t len;
    char *text = dc_test_read_file("tests/ir/sgd_step.dcir", &len);
    char err[DC_ERR_LEN] = "";
    dc_graph *g = text ? dc_parse(text, len, "tests/ir/sgd_step.dcir", err, sizeof err) : NULL;
    CHECK_MSG(g != NULL, "parse: %s", text ? err : "cannot read");
    if (g) {
        CHECK_EQ_INT(g->n_updates, 2);
        CHECK(g->updates[0].param == 2 && g->updates[0].value == 15);
        CHECK(g->updates[1].param == 3 && g->updates[1].value == 17);
        char *out = dc_print(g);
        CHECK_STR_EQ(out, text);
        free(out);
    }
    dc_graph_free(g);
    free(text);
    /* a graph built in C prints its assigns in g->updates order and reads back the same */
    dc_graph *s = dc_graph_new("s");
    int a = param(s, "a", 2), b = param(s, "b", 2);
    dc_graph_add_output(s, binary(s, DC_OP_ADD, a, b), "sum");
    dc_graph_add_update(s, b, a);
    dc_graph_add_update(s, a, b);
    char *out = dc_print(s);
    CHECK_STR_EQ(out, "graph @s() -> (sum: f32[2]) {\n"
                      "  %0 = param \"a\" : f32[2] init=uniform(-2, 2)\n"
                      "  %1 = param \"b\" : f32[2] init=uniform(-2, 2)\n"
                      "  %2 = add %0, %1 : f32[2]\n"
                      "  assign %1, %0\n"
                      "  assign %0, %1\n"
                      "  return %2\n"
                      "}\n");
    dc_graph *s2 = out ? dc_parse(out, strlen(out), "s.dcir", err, sizeof err) : NULL;
    CHECK_MSG(s2 != NULL, "re-parse: %s", err);
    char *out2 = s2 ? dc_print(s2) : NULL;
    CHECK_STR_EQ(out2, out);
    free(out);
    free(out2);
    dc_graph_free(s2);
    dc_graph_free(s);
}

/* Runs tests/ir/sgd_step.dcir (least squares, one SGD step per run) and checks the loss and
 * the updated w, b against the same step computed here in double precision. */
TEST(updates_sgd_step_matches_hand_oracle) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse_file("tests/ir/sgd_step.dcir", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    dc_exec *e = g ? new_exec(g, 5) : NULL;
    if (!e) {
        dc_graph_free(g);
        return;
    }
    dc_type xt = { DC_F32, { 2, { 8, 4 } } }, yt = { DC_F32, { 2, { 8, 1 } } };
    dc_tensor *x = dc_tensor_new(&xt), *y = dc_tensor_new(&yt);
    float *xv = x->data, *yv = y->data;
    for (int i = 0; i < 32; i++) xv[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < 8; i++) yv[i] = (float)i / 4.0f - 1.0f;
    CHECK(dc_exec_set_input(e, "x", x, err, sizeof err));
    CHECK(dc_exec_set_input(e, "y", y, err, sizeof err));
    double w[4], b, prev_loss = INFINITY;
    for (int k = 0; k < 4; k++) w[k] = ((const float *)dc_exec_param(e, "reg.w")->data)[k];
    b = ((const float *)dc_exec_param(e, "reg.b")->data)[0];
    for (int step = 0; step < 3; step++) {
        double r[8], loss = 0, gw[4] = { 0 }, gb = 0;
        for (int i = 0; i < 8; i++) {
            r[i] = b - yv[i];
            for (int k = 0; k < 4; k++) r[i] += xv[i * 4 + k] * w[k];
            loss += r[i] * r[i] / 8;
            for (int k = 0; k < 4; k++) gw[k] += xv[i * 4 + k] * r[i] * 2 / 8;
            gb += r[i] * 2 / 8;
        }
        for (int k = 0; k < 4; k++) w[k] -= 0.05 * gw[k];
        b -= 0.05 * gb;
        if (!run(e)) break;
        CHECK_NEAR(((const float *)dc_exec_output(e, 0)->data)[0], loss, 1e-6, 1e-5);
        for (int k = 0; k < 4; k++) CHECK_NEAR(((const float *)dc_exec_param(e, "reg.w")->data)[k], w[k], 1e-6, 1e-5);
        CHECK_NEAR(((const float *)dc_exec_param(e, "reg.b")->data)[0], b, 1e-6, 1e-5);
        CHECK(loss < prev_loss);
        prev_loss = loss;
    }
    dc_tensor_free(x);
    dc_tensor_free(y);
    dc_exec_free(e);
    dc_graph_free(g);
}

TEST(updates_dot_shows_assign_edges) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse_file("tests/ir/sgd_step.dcir", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    char *dot = g ? dc_print_dot(g) : NULL;
    CHECK(dot && strstr(dot, "  n15 -> n2 [style=dashed, color=blue, label=\"assign\", constraint=false];\n"));
    CHECK(dot && strstr(dot, "  n17 -> n3 [style=dashed, color=blue, label=\"assign\", constraint=false];\n"));
    free(dot);
    dc_graph_free(g);
}

/* Every prefix of sgd_step.dcir, and every single-byte change of it to one of a few bytes,
 * parses or fails with a "FILE:LINE:COL: error:" message; nothing crashes. */
TEST(updates_text_robust_to_truncation_and_mutation) {
    size_t len;
    char *text = dc_test_read_file("tests/ir/sgd_step.dcir", &len);
    CHECK(text != NULL);
    if (!text) return;
    char *buf = malloc(len + 1);
    if (!buf) abort();
    const char subs[] = { '%', ',', ' ', '\n', '0', '9', 'a', '}' };
    int bad = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        for (int m = -1; m < (int)sizeof subs; m++) {
            size_t n = m < 0 ? cut : len;
            memcpy(buf, text, n);
            if (m >= 0 && cut < len) buf[cut] = subs[m];
            else if (m >= 0) continue;
            char err[DC_ERR_LEN] = "";
            dc_graph *g = dc_parse(buf, n, "s.dcir", err, sizeof err);
            if (!g && strncmp(err, "s.dcir:", 7) != 0 && bad++ < 3)
                printf("  cut %zu sub %d: unlocated message: %s\n", cut, m, err);
            if (g && m < 0 && cut < len - 2 && bad++ < 3) printf("  prefix of %zu bytes parsed\n", cut);
            dc_graph_free(g);
        }
    }
    CHECK_EQ_INT(bad, 0);
    free(buf);
    free(text);
}
