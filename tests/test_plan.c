/* test_plan.c — the memory planner (plan-memory) and the executor's use of its plan: graphs
 * (the IR goldens, an MLP forward + loss, a chain of 50 elementwise ops, seeded random DAGs
 * with state updates) run planned and unplanned give bitwise-equal outputs and params; every
 * plan is checked against a brute-force liveness computed here (no two values live at the
 * same node overlap, except an elementwise node exactly over an input that dies there, and a
 * state update's value over its param when nothing after it reads the param);
 * in-place reuse happens on a unary chain, whose peak stays far below the unplanned total;
 * and `disco opt --passes=plan-memory` prints a hand-computed plan. */
#include "tests/test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "passes/passes.h"
#include "runtime/runtime.h"
#include "tests/op_util.h"

static int64_t slot(const dc_type *t) {
    return (dc_numel(&t->shape) * (int64_t)dc_dtype_size(t->dtype) + 63) / 64 * 64;
}

static bool persistent(const dc_node *n) { return n->op == DC_OP_INPUT || n->op == DC_OP_PARAM; }

/* ---- the brute-force plan check ----------------------------------------------------------- */

/* The last step that needs value a: n_nodes if it is an output or an update value, else the
 * largest index of a node reading it, else a itself. */
static int needed_until(const dc_graph *g, int a) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == a) return g->n_nodes;
    for (int j = 0; j < g->n_updates; j++)
        if (g->updates[j].value == a) return g->n_nodes;
    int end = a;
    for (int i = a + 1; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] == a) end = i;
    return end;
}

/* Node b may write over its input a: elementwise, every input of b's type. */
static bool may_reuse(const dc_graph *g, int b) {
    const dc_node *n = &g->nodes[b];
    if (dc_op_get(n->op)->kind != DC_KIND_ELEMENTWISE) return false;
    for (int k = 0; k < n->n_in; k++)
        if (!dc_type_eq(&g->nodes[n->in[k]].type, &n->type)) return false;
    return true;
}

/* Checks g's plan pair by pair against the liveness computed here; returns the number of
 * violations (the first few are printed unless what is NULL) and stores the number of
 * in-place pairs. */
static int plan_violations(const dc_graph *g, const char *what, int *in_place) {
    *in_place = 0;
    if (!g->plan_offset) return 1;
    int bad = 0;
    for (int a = 0; a < g->n_nodes; a++) {
        int64_t oa = g->plan_offset[a], sa = slot(&g->nodes[a].type);
        if (!(oa >= 0 && oa % 64 == 0 && oa + sa <= g->plan_bytes) && bad++ < 3 && what)
            printf("  %s: node %d at %lld (+%lld) outside %lld\n", what, a, (long long)oa, (long long)sa,
                   (long long)g->plan_bytes);
        int end_a = persistent(&g->nodes[a]) ? g->n_nodes : needed_until(g, a);
        for (int b = a + 1; b < g->n_nodes; b++) {
            int64_t ob = g->plan_offset[b], sb = slot(&g->nodes[b].type);
            if (!(oa < ob + sb && ob < oa + sa)) continue;
            bool pers = persistent(&g->nodes[a]) || persistent(&g->nodes[b]);
            bool exact_reuse = !pers && end_a == b && may_reuse(g, b) && oa == ob && sa == sb;
            bool update = oa == ob && sa == sb && tu_update_over_param(g, a, b);
            *in_place += exact_reuse || update;
            if (!update && (pers || end_a > b || (end_a == b && !exact_reuse)) && bad++ < 3 && what)
                printf("  %s: nodes %d [%lld,+%lld) and %d [%lld,+%lld) overlap while both are live\n", what,
                       a, (long long)oa, (long long)sa, b, (long long)ob, (long long)sb);
        }
    }
    return bad;
}

/* Plans must pass the check; returns the number of in-place pairs. */
static int check_plan(const dc_graph *g, const char *what) {
    int in_place;
    CHECK_MSG(plan_violations(g, what, &in_place) == 0, "%s: the plan is wrong", what);
    return in_place;
}

/* ---- running planned and unplanned -------------------------------------------------------- */

/* Fills every input of e's graph from a fixed generator (i32 inputs get small indices). */
static void set_inputs(dc_exec *e, const dc_graph *g, uint32_t salt) {
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *n = &g->nodes[i];
        if (n->op != DC_OP_INPUT) continue;
        dc_tensor *t = dc_tensor_new(&n->type);
        int64_t cnt = dc_numel(&n->type.shape);
        for (int64_t k = 0; k < cnt; k++) {
            uint32_t r = dc_rng_u32(salt, (uint64_t)i, (uint64_t)k);
            if (n->type.dtype == DC_I32) ((int32_t *)t->data)[k] = (int32_t)(r % 2);
            else ((float *)t->data)[k] = (float)(r % 2001) / 1000.0f - 1.0f;
        }
        char err[DC_ERR_LEN];
        CHECK_MSG(dc_exec_set_input(e, n->name, t, err, sizeof err), "%s", err);
        dc_tensor_free(t);
    }
}

static bool same_bits(const dc_tensor *a, const dc_tensor *b) {
    size_t bytes = (size_t)dc_numel(&a->type.shape) * dc_dtype_size(a->type.dtype);
    return dc_type_eq(&a->type, &b->type) && memcmp(a->data, b->data, bytes) == 0;
}

/* Runs g unplanned and a planned copy `runs` times each on the same inputs and seed; every
 * output after every run and every param at the end must agree bit for bit. Returns the
 * number of values the plan puts in place. */
static int check_planned_equals_unplanned(const char *text, const char *what, int runs) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse(text, strlen(text), what, err, sizeof err);
    dc_graph *p = dc_parse(text, strlen(text), what, err, sizeof err);
    CHECK_MSG(g && p, "%s: %s", what, err);
    dc_pass_opts o = { 0 };
    if (p) CHECK_MSG(dc_pass_plan_memory(p, &o, err, sizeof err), "%s: %s", what, err);
    int in_place = p ? check_plan(p, what) : 0;
    dc_exec *eg = g ? dc_exec_new(g, 42, err, sizeof err) : NULL;
    dc_exec *ep = p ? dc_exec_new(p, 42, err, sizeof err) : NULL;
    CHECK_MSG(eg && ep, "%s: dc_exec_new: %s", what, err);
    if (ep) CHECK_MSG((int64_t)dc_exec_arena_bytes(ep) == p->plan_bytes, "%s: arena is not the plan's", what);
    for (int r = 0; eg && ep && r < runs; r++) {
        set_inputs(eg, g, (uint32_t)r);
        set_inputs(ep, p, (uint32_t)r);
        char e1[DC_ERR_LEN] = "", e2[DC_ERR_LEN] = "";
        bool ok1 = dc_exec_run(eg, e1, sizeof e1), ok2 = dc_exec_run(ep, e2, sizeof e2);
        CHECK_MSG(ok1 && ok2, "%s: run %d: %s / %s", what, r, e1, e2);
        for (int i = 0; ok1 && ok2 && i < g->n_outputs; i++)
            CHECK_MSG(same_bits(dc_exec_output(eg, i), dc_exec_output(ep, i)), "%s: run %d: output %d differs", what, r, i);
    }
    for (int i = 0; eg && ep && i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_PARAM)
            CHECK_MSG(same_bits(dc_exec_value(eg, i), dc_exec_value(ep, i)), "%s: param %s differs", what,
                      g->nodes[i].name);
    dc_exec_free(eg);
    dc_exec_free(ep);
    dc_graph_free(g);
    dc_graph_free(p);
    return in_place;
}

TEST(plan_goldens_bitwise_equal) {
    const char *files[] = { "tests/ir/mlp.dcir", "tests/ir/conv_block.dcir", "tests/ir/attention.dcir",
                            "tests/ir/all_ops.dcir", "tests/ir/sgd_step.dcir" };
    for (int f = 0; f < 5; f++) {
        char *text = dc_test_read_file(files[f], NULL);
        CHECK_MSG(text != NULL, "cannot read %s", files[f]);
        if (text) check_planned_equals_unplanned(text, files[f], 3);
        free(text);
    }
}

TEST(plan_mlp_forward_loss_bitwise_equal) {
    const char *text =
        "graph @mlp(%x: f32[32,16], %t: f32[32,4]) -> (loss: f32[]) {\n"
        "  %0 = param \"l0.w\" : f32[16,64] init=kaiming\n"
        "  %1 = param \"l0.b\" : f32[64] init=uniform(-0.1, 0.1)\n"
        "  %2 = linear %x, %0, %1 : f32[32,64]\n"
        "  %3 = gelu %2 : f32[32,64]\n"
        "  %4 = param \"l1.w\" : f32[64,64] init=xavier\n"
        "  %5 = param \"l1.b\" : f32[64] init=zeros\n"
        "  %6 = linear %3, %4, %5 : f32[32,64]\n"
        "  %7 = silu %6 : f32[32,64]\n"
        "  %8 = add %7, %3 : f32[32,64]\n"
        "  %9 = param \"l2.w\" : f32[64,4] init=xavier\n"
        "  %10 = param \"l2.b\" : f32[4] init=zeros\n"
        "  %11 = linear %8, %9, %10 : f32[32,4]\n"
        "  %12 = log_softmax %11 {axis=1} : f32[32,4]\n"
        "  %13 = mul %12, %t : f32[32,4]\n"
        "  %14 = sum %13 {axes=[], keepdims=false} : f32[]\n"
        "  %15 = neg %14 : f32[]\n"
        "  return %15\n"
        "}\n";
    check_planned_equals_unplanned(text, "mlp", 2);
}

/* x -> 50 elementwise ops (unary, and binary with x or the previous value) -> out */
static char *chain_text(int n_ops, int64_t width) {
    size_t cap = 256 + (size_t)n_ops * 96, len = 0;
    char *s = malloc(cap);
    if (!s) abort();
    len += (size_t)snprintf(s + len, cap - len, "graph @chain(%%x: f32[%lld]) -> (f32[%lld]) {\n",
                            (long long)width, (long long)width);
    static const char *unary[] = { "tanh", "sin", "neg", "sigmoid", "silu" };
    for (int i = 0; i < n_ops; i++) {
        char prev[16];
        snprintf(prev, sizeof prev, i ? "%%%d" : "%%x", i - 1);
        if (i % 7 == 3)
            len += (size_t)snprintf(s + len, cap - len, "  %%%d = add %s, %%x : f32[%lld]\n", i, prev, (long long)width);
        else if (i % 7 == 5)
            len += (size_t)snprintf(s + len, cap - len, "  %%%d = mul %s, %s : f32[%lld]\n", i, prev, prev, (long long)width);
        else
            len += (size_t)snprintf(s + len, cap - len, "  %%%d = %s %s : f32[%lld]\n", i, unary[i % 5], prev,
                                    (long long)width);
    }
    snprintf(s + len, cap - len, "  return %%%d\n}\n", n_ops - 1);
    return s;
}

TEST(plan_chain_in_place_and_small_peak) {
    char *text = chain_text(50, 1000);
    check_planned_equals_unplanned(text, "chain", 2);
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse(text, strlen(text), "chain", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    dc_pass_opts o = { 0 };
    if (g && dc_pass_plan_memory(g, &o, err, sizeof err)) {
        /* every op but the first (whose input is the graph input) writes over its input */
        CHECK_EQ_INT(check_plan(g, "chain"), 49);
        int64_t s = slot(&g->nodes[0].type), unplanned = 51 * s;
        CHECK_EQ_INT(g->plan_bytes, 2 * s);
        CHECK(g->plan_bytes * 20 < unplanned);
        char *plan = dc_print_plan(g);
        CHECK(plan && strstr(plan, "// plan: %1 offset 4032 bytes 4032 in-place of %0\n"));
        CHECK(plan && strstr(plan, "// plan: peak 8064 bytes (unplanned 205632 bytes)\n"));
        free(plan);
    }
    dc_graph_free(g);
    free(text);
}

/* ---- random DAGs -------------------------------------------------------------------------- */

typedef struct { uint64_t s; } lcg;

static uint32_t rnd(lcg *r, uint32_t n) {
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(r->s >> 33) % n;
}

/* A random DAG over f32[4,8] values (plus [8] params broadcast in, [4,1] row sums, a matmul
 * against an [8,8] param), with 1-3 outputs and updates of some params; as text. */
static char *random_dag(uint64_t seed, int n_ops) {
    lcg r = { seed * 0x9e3779b97f4a7c15ull + 1 };
    size_t cap = 512 + (size_t)n_ops * 128, len = 0;
    char *s = malloc(cap);
    if (!s) abort();
    len += (size_t)snprintf(s + len, cap - len,
                            "graph @dag(%%a: f32[4,8], %%b: f32[4,8]) -> (f32[4,8], f32[4,8]) {\n"
                            "  %%0 = param \"v\" : f32[8] init=uniform(-1, 1)\n"
                            "  %%1 = param \"w\" : f32[8,8] init=xavier\n"
                            "  %%2 = param \"u\" : f32[4,8] init=normal(0.5)\n");
    /* vals: names of the f32[4,8] values so far */
    char (*vals)[16] = malloc((size_t)(n_ops + 3) * sizeof *vals);
    if (!vals) abort();
    int nv = 0, k = 3;
    strcpy(vals[nv++], "%a");
    strcpy(vals[nv++], "%b");
    strcpy(vals[nv++], "%2");
    static const char *unary[] = { "tanh", "sin", "neg", "sigmoid", "abs" };
    static const char *binary[] = { "add", "mul", "sub", "maximum" };
    for (int i = 0; i < n_ops; i++, k++) {
        /* pick mostly recent values so that some die early and some live long */
        const char *x = vals[nv - 1 - (int)rnd(&r, nv < 4 ? (uint32_t)nv : 4)];
        const char *y = vals[rnd(&r, (uint32_t)nv)];
        switch (rnd(&r, 6)) {
        case 0: case 1:
            len += (size_t)snprintf(s + len, cap - len, "  %%%d = %s %s : f32[4,8]\n", k, unary[rnd(&r, 5)], x);
            break;
        case 2: case 3:
            len += (size_t)snprintf(s + len, cap - len, "  %%%d = %s %s, %s : f32[4,8]\n", k, binary[rnd(&r, 4)], x, y);
            break;
        case 4:
            len += (size_t)snprintf(s + len, cap - len, "  %%%d = add %s, %%0 : f32[4,8]\n", k, x);
            break;
        default:
            len += (size_t)snprintf(s + len, cap - len,
                                    "  %%%d = sum %s {axes=[1], keepdims=true} : f32[4,1]\n"
                                    "  %%%d = matmul %s, %%1 {trans_a=false, trans_b=false} : f32[4,8]\n"
                                    "  %%%d = mul %%%d, %%%d : f32[4,8]\n",
                                    k, x, k + 1, y, k + 2, k + 1, k);
            k += 2;
        }
        snprintf(vals[nv++], sizeof vals[0], "%%%d", k);
    }
    const char *o1 = vals[nv - 1], *o2 = vals[3 + (int)rnd(&r, (uint32_t)(nv - 3))];
    const char *upd = vals[3 + (int)rnd(&r, (uint32_t)(nv - 3))];
    len += (size_t)snprintf(s + len, cap - len, "  assign %%2, %s\n", upd);
    if (rnd(&r, 2)) len += (size_t)snprintf(s + len, cap - len, "  assign %%0, %%0\n");
    snprintf(s + len, cap - len, "  return %s, %s\n}\n", o1, o2);
    free(vals);
    return s;
}

TEST(plan_random_dags_bitwise_equal) {
    int in_place = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        char *text = random_dag(seed, 8 + (int)(seed % 25));
        char what[32];
        snprintf(what, sizeof what, "dag%llu", (unsigned long long)seed);
        in_place += check_planned_equals_unplanned(text, what, 2);
        free(text);
    }
    CHECK_MSG(in_place >= 100, "only %d values planned in place over 40 DAGs", in_place);
}

/* ---- the printed plan --------------------------------------------------------------------- */

static const char *plan_case =
    "graph @p(%x: f32[16]) -> (f32[16]) {\n"
    "  %0 = exp %x : f32[16]\n"
    "  %1 = neg %0 : f32[16]\n"
    "  %2 = param \"p\" : f32[16] init=zeros\n"
    "  %3 = add %1, %2 : f32[16]\n"
    "  %4 = sum %3 {axes=[], keepdims=false} : f32[]\n"
    "  %5 = mul %3, %4 : f32[16]\n"
    "  assign %2, %1\n"
    "  return %5\n"
    "}\n";

/* x and p first (persistent), %0 takes a fresh slot, %1 overwrites it, %3 cannot (%1 is an
 * update value, live to the end), %4 and %5 take fresh slots (%4 is a scalar). */
static const char *plan_expected =
    "// plan: %x offset 0 bytes 64\n"
    "// plan: %0 offset 128 bytes 64\n"
    "// plan: %1 offset 128 bytes 64 in-place of %0\n"
    "// plan: %2 offset 64 bytes 64\n"
    "// plan: %3 offset 192 bytes 64\n"
    "// plan: %4 offset 256 bytes 64\n"
    "// plan: %5 offset 320 bytes 64\n"
    "// plan: peak 384 bytes (unplanned 448 bytes)\n";

/* An SGD-like update: p - g * 0.1 takes p's slot (p is read only before it); q's update
 * value cannot (q is read after it), nor can r's (s's update reads r itself as its value). */
static const char *update_case =
    "graph @u(%g: f32[16]) -> (f32[16]) {\n"
    "  %0 = param \"p\" : f32[16] init=normal(1)\n"
    "  %1 = param \"q\" : f32[16] init=normal(1)\n"
    "  %2 = param \"r\" : f32[16] init=normal(1)\n"
    "  %3 = param \"s\" : f32[16] init=normal(1)\n"
    "  %4 = fill {value=0.1} : f32[]\n"
    "  %5 = mul %g, %4 : f32[16]\n"
    "  %6 = sub %0, %5 : f32[16]\n"
    "  %7 = add %1, %5 : f32[16]\n"
    "  %8 = mul %7, %1 : f32[16]\n"
    "  %9 = add %2, %g : f32[16]\n"
    "  assign %0, %6\n"
    "  assign %1, %7\n"
    "  assign %2, %9\n"
    "  assign %3, %2\n"
    "  return %8\n"
    "}\n";

TEST(plan_update_in_place) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse(update_case, strlen(update_case), "u.dcir", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    if (!g) return;
    dc_pass_opts o = { 0 };
    CHECK(dc_pass_plan_memory(g, &o, err, sizeof err));
    char *plan = dc_print_plan(g);
    CHECK_MSG(plan && strstr(plan, "%6 offset 64 bytes 64 over param %0 (its update)"), "%s", plan);
    /* node i + 1 is %i (%g is node 0) */
    CHECK(g->plan_offset[7] == g->plan_offset[1]);
    CHECK(g->plan_offset[8] != g->plan_offset[2]);
    CHECK(g->plan_offset[10] != g->plan_offset[3]);
    check_plan(g, "u");
    free(plan);
    dc_graph_free(g);
    check_planned_equals_unplanned(update_case, "u", 3);
}

TEST(plan_printed) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse(plan_case, strlen(plan_case), "p.dcir", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    if (!g) return;
    CHECK(dc_print_plan(g) == NULL);
    dc_pass_opts o = { 0 };
    CHECK(dc_pass_plan_memory(g, &o, err, sizeof err));
    char *plan = dc_print_plan(g);
    CHECK_STR_EQ(plan, plan_expected);
    check_plan(g, "p");
    /* the checker itself catches overlaps: %3 over the live %1, %4 over the param, %5 over
     * the update value %1, and an offset past the arena */
    const int node[4] = { 4, 5, 6, 6 };
    const int64_t at[4] = { 128, 64, 128, 384 };
    for (int m = 0; m < 4; m++) {
        int64_t keep = g->plan_offset[node[m]];
        g->plan_offset[node[m]] = at[m];
        int in_place;
        CHECK_MSG(plan_violations(g, NULL, &in_place) > 0, "mutation %d not caught", m);
        g->plan_offset[node[m]] = keep;
    }
    free(plan);
    dc_graph_free(g);
    check_planned_equals_unplanned(plan_case, "p", 3);
}

TEST(plan_disco_opt_prints_the_plan) {
    char path[] = "/tmp/disco_planXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    FILE *f = fdopen(fd, "w");
    fputs(plan_case, f);
    fclose(f);
    const char *bin = getenv("DISCO");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' opt %s --passes=plan-memory 2>&1", bin && *bin ? bin : "build/disco", path);
    FILE *pipe = popen(cmd, "r");
    char *out = calloc(1, 8192);
    if (!out) abort();
    size_t n = pipe ? fread(out, 1, 8191, pipe) : 0;
    out[n] = 0;
    int status = pipe ? pclose(pipe) : -1;
    unlink(path);
    char want[4096];
    snprintf(want, sizeof want, "%s%s", plan_case, plan_expected);
    CHECK_EQ_INT(status, 0);
    CHECK_STR_EQ(out, want);
    free(out);
}

TEST(plan_stale_plan_refused_and_dropped) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse(plan_case, strlen(plan_case), "p.dcir", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    if (!g) return;
    dc_pass_opts o = { 0 };
    CHECK(dc_pass_plan_memory(g, &o, err, sizeof err));
    g->plan_bytes = 128; /* as if nodes had grown after planning */
    CHECK(dc_exec_new(g, 1, err, sizeof err) == NULL);
    CHECK_STR_EQ(err, "graph @p: its memory plan does not fit its arena of 128 bytes (a stale plan?)");
    dc_graph_drop_plan(g);
    dc_exec *e = dc_exec_new(g, 1, err, sizeof err);
    CHECK_MSG(e != NULL, "%s", err);
    CHECK_EQ_INT(dc_exec_arena_bytes(e), 448);
    dc_exec_free(e);
    dc_graph_free(g);
}
