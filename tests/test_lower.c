/* test_lower.c — lowering to runtime programs (codegen/lower.c) and the executor of programs:
 * every IR golden and a small training graph (forward + dc_grad, planned) give the same
 * outputs under the ref, auto and dnnl backends, and bitwise the same bits on two dnnl runs;
 * the provider of every step is the rule's; jit and bad backends are errors; in-place
 * elementwise steps next to oneDNN steps run right; a plan that puts a oneDNN output over
 * its input falls back to ref with a note; range kernels cover their range once; malformed
 * programs are refused; a step's prepare hook keeps it, turns it into a ref step with a note
 * (giving up its ctx) or fails the build.
 *
 * Tolerance: oneDNN sums a contraction's products in another order than the ref kernels,
 * and the difference flows through the ops after it, so ref and dnnl agree within
 * |dnnl - ref| <= 2e-4 * (1 + |ref|) on these small graphs (inputs N(0, 0.25), K <= 300);
 * i32 outputs must be equal. */
#include "tests/test.h"

#include <dirent.h>
#include <omp.h>
#include <stdlib.h>

#include "codegen/codegen.h"
#include "passes/passes.h"

#define TOL 2e-4

/* Paths of the .dcir files in tests/ir, sorted; returns the count. */
static int goldens(char paths[][256], int max) {
    DIR *d = opendir("tests/ir");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".dcir") == 0) snprintf(paths[n++], 256, "tests/ir/%s", e->d_name);
    }
    if (d) closedir(d);
    qsort(paths, (size_t)n, 256, (int (*)(const void *, const void *))strcmp);
    return n;
}

static dc_exec *compile_ok(const dc_graph *g, dc_backend b) {
    char err[DC_ERR_LEN] = "";
    dc_exec *e = dc_compile(g, 3, b, err, sizeof err);
    CHECK_MSG(e != NULL, "dc_compile(@%s, backend %d): %s", g->name, (int)b, err);
    return e;
}

/* f32 inputs ~ N(0, 0.25) keyed by the input's position; i32 inputs stay zero (an index
 * every gather, one_hot and label accepts). Then one run. */
static bool feed_and_run(dc_exec *e, const dc_graph *g) {
    char err[DC_ERR_LEN] = "";
    for (int i = 0, n = dc_graph_n_inputs(g); i < n; i++) {
        dc_tensor *v = dc_exec_value(e, dc_graph_input(g, i));
        if (v->type.dtype != DC_F32) continue;
        for (int64_t k = 0; k < dc_numel(&v->type.shape); k++)
            ((float *)v->data)[k] = 0.5f * dc_rng_normal(11, (uint64_t)i, (uint64_t)k);
    }
    bool ok = dc_exec_run(e, err, sizeof err);
    CHECK_MSG(ok, "run of @%s: %s", g->name, err);
    return ok;
}

/* Output by output: got against want within TOL (f32) or exactly (i32). */
static void check_outputs(const char *what, dc_exec *got, dc_exec *want, const dc_graph *g) {
    for (int i = 0; i < g->n_outputs; i++) {
        const dc_tensor *a = dc_exec_output(got, i), *b = dc_exec_output(want, i);
        for (int64_t k = 0; k < dc_numel(&b->type.shape); k++) {
            double x = b->type.dtype == DC_F32 ? ((const float *)a->data)[k] : ((const int32_t *)a->data)[k];
            double y = b->type.dtype == DC_F32 ? ((const float *)b->data)[k] : ((const int32_t *)b->data)[k];
            double tol = b->type.dtype == DC_F32 ? TOL * (1 + fabs(y)) : 0;
            if (!(fabs(x - y) <= tol)) {
                dc_test_fail(__FILE__, __LINE__, "%s @%s output %d element %lld: %.9g, ref %.9g", what, g->name, i,
                             (long long)k, x, y);
                break;
            }
        }
    }
}

static void check_same_bits(const char *what, dc_exec *a, dc_exec *b, const dc_graph *g) {
    for (int i = 0; i < g->n_outputs; i++) {
        const dc_tensor *x = dc_exec_output(a, i), *y = dc_exec_output(b, i);
        size_t bytes = (size_t)dc_numel(&x->type.shape) * dc_dtype_size(x->type.dtype);
        CHECK_MSG(memcmp(x->data, y->data, bytes) == 0, "%s @%s output %d: two runs differ", what, g->name, i);
    }
}

static bool dnnl_op(const dc_graph *g, int node) {
    const dc_node *n = &g->nodes[node];
    bool op = n->op == DC_OP_MATMUL || n->op == DC_OP_LINEAR || n->op == DC_OP_CONV2D ||
              n->op == DC_OP_CONV2D_BWD_DATA || n->op == DC_OP_CONV2D_BWD_WEIGHT ||
              n->op == DC_OP_FUSED_CONV2D || n->op == DC_OP_FUSED_MATMUL;
    for (int k = 0; op && k < n->n_in; k++) op = g->nodes[n->in[k]].type.dtype == DC_F32;
    return op && n->type.dtype == DC_F32;
}

/* One step per non-source node, in order, each on the rule's provider: under dnnl every
 * contraction oneDNN implements on oneDNN, under auto on dc_contraction_default's provider
 * (the tests' tuning database is empty), a contraction on ref only with a note saying why,
 * no other node on oneDNN. Returns the number of contraction steps on their rule's provider. */
static int check_rule(dc_exec *e, const dc_graph *g, dc_backend b) {
    int n, k = 0, on_dnnl = 0;
    const dc_step *s = dc_exec_steps(e, &n);
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op == DC_OP_INPUT || g->nodes[i].op == DC_OP_PARAM) continue;
        if (k >= n || s[k].node != i) {
            dc_test_fail(__FILE__, __LINE__, "@%s: no step for node %d", g->name, i);
            return on_dnnl;
        }
        const char *want = b == DC_BACKEND_REF || !dnnl_op(g, i) ? NULL
                           : b == DC_BACKEND_AUTO            ? dc_contraction_default(g, i)
                                                             : "dnnl";
        bool wino = want && strcmp(want, "dnnl winograd") == 0;
        if (wino) want = "dnnl";
        bool is_dnnl = strcmp(s[k].provider, "dnnl") == 0, on_rule = want && strcmp(s[k].provider, want) == 0;
        /* Winograd where the rule asks for it (no epilogue here that its kernels refuse) */
        if (on_rule) CHECK_MSG(wino == (strstr(s[k].impl, "wino") != NULL), "@%s node %d (%s): impl '%s'", g->name, i,
                               dc_op_name(g->nodes[i].op), s[k].impl);
        CHECK_MSG(want ? on_rule || (s[k].note[0] && strcmp(s[k].provider, "ref") == 0) : !is_dnnl,
                  "@%s node %d (%s): provider %s, note '%s'", g->name, i, dc_op_name(g->nodes[i].op),
                  s[k].provider, s[k].note);
        if (is_dnnl) CHECK_MSG(s[k].impl[0] && !strstr(s[k].impl, "ref"), "dnnl impl '%s'", s[k].impl);
        on_dnnl += on_rule;
        k++;
    }
    CHECK_EQ_INT(k, n);
    return on_dnnl;
}

/* ref, auto and dnnl agree; dnnl twice gives the same bits; every step is the rule's. */
static int check_backends(const dc_graph *g) {
    dc_exec *ref = compile_ok(g, DC_BACKEND_REF), *au = compile_ok(g, DC_BACKEND_AUTO);
    dc_exec *d1 = compile_ok(g, DC_BACKEND_DNNL), *d2 = compile_ok(g, DC_BACKEND_DNNL);
    int on_dnnl = 0;
    if (ref && au && d1 && d2 && feed_and_run(ref, g) && feed_and_run(au, g) && feed_and_run(d1, g) &&
        feed_and_run(d2, g)) {
        check_outputs("auto", au, ref, g);
        check_outputs("dnnl", d1, ref, g);
        check_same_bits("dnnl", d1, d2, g);
        CHECK_EQ_INT(check_rule(ref, g, DC_BACKEND_REF), 0);
        on_dnnl = check_rule(au, g, DC_BACKEND_AUTO);
        CHECK_EQ_INT(check_rule(d1, g, DC_BACKEND_DNNL), on_dnnl);
    }
    dc_exec_free(ref);
    dc_exec_free(au);
    dc_exec_free(d1);
    dc_exec_free(d2);
    return on_dnnl;
}

TEST(lower_goldens_agree_across_backends) {
    char paths[64][256], err[DC_ERR_LEN];
    int n = goldens(paths, 64), on_dnnl = 0;
    CHECK(n >= 3);
    for (int i = 0; i < n; i++) {
        dc_graph *g = dc_parse_file(paths[i], err, sizeof err);
        CHECK_MSG(g != NULL, "%s", err);
        if (g) on_dnnl += check_backends(g);
        dc_graph_free(g);
    }
    CHECK(on_dnnl >= 4); /* conv_block's convs and mlp's linears at least */
}

static const char train_text[] =
    "graph @tiny_train(%x: f32[4,6,6,3], %t: f32[4,5]) -> (loss: f32[]) {\n"
    "  %0 = param \"c.w\" : f32[3,3,3,32] init=kaiming\n"
    "  %1 = conv2d %x, %0 {stride=[1,1], pad=[1,1], groups=1} : f32[4,6,6,32]\n"
    "  %8 = param \"d.w\" : f32[3,3,32,32] init=kaiming\n"
    "  %9 = conv2d %1, %8 {stride=[1,1], pad=[1,1], groups=1} : f32[4,6,6,32]\n"
    "  %2 = silu %9 : f32[4,6,6,32]\n"
    "  %3 = reshape %2 : f32[4,1152]\n"
    "  %4 = param \"l.w\" : f32[1152,5] init=kaiming\n"
    "  %5 = param \"l.b\" : f32[5] init=normal(0.1)\n"
    "  %6 = linear %3, %4, %5 : f32[4,5]\n"
    "  %7 = mse %6, %t : f32[]\n"
    "  return %7\n"
    "}\n";

/* The tiny training graph with the gradients of its loss w.r.t. x and every param as
 * outputs; planned when plan is set. */
static dc_graph *train_graph(bool plan) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse(train_text, strlen(train_text), "tiny_train", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    if (!g) return NULL;
    int wrt[8], grads[8], n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_PARAM || i == dc_graph_find_input(g, "x")) wrt[n++] = i;
    bool ok = dc_grad(g, g->outputs[0], wrt, n, grads, err, sizeof err);
    for (int i = 0; ok && i < n; i++) dc_graph_add_output(g, grads[i], NULL);
    ok = ok && dc_run_pipeline(g, plan ? "simplify,cse,dce,plan-memory" : "simplify,cse,dce",
                               &(dc_pass_opts){ 0 }, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    if (!ok) {
        dc_graph_free(g);
        return NULL;
    }
    return g;
}

TEST(lower_training_graph_agrees_across_backends) {
    dc_graph *g = train_graph(true);
    if (!g) return;
    CHECK(g->plan_offset != NULL);
    /* the convs (one Winograd fits and the rule gives it, 32 -> 32 channels: forward,
     * backward-data and -weight),
     * their gradients, linear and the matmuls of its gradient */
    CHECK(check_backends(g) >= 7);
    int wino = 0;
    for (int i = 0; i < g->n_nodes; i++) wino += dnnl_op(g, i) && dc_conv_winograd_fits(g, i);
    CHECK_EQ_INT(wino, 3);
    dc_graph_free(g);
}

TEST(lower_jit_steps_and_bad_backends) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse_file("tests/ir/mlp.dcir", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    if (!g) return;
    dc_exec *e = dc_compile(g, 0, DC_BACKEND_JIT, err, sizeof err);
    CHECK_MSG(e != NULL, "%s", err);
    int n_steps = 0, jit = 0;
    const dc_step *steps = e ? dc_exec_steps(e, &n_steps) : NULL;
    for (int i = 0; i < n_steps; i++) jit += strcmp(steps[i].provider, "jit") == 0;
    CHECK_MSG(jit >= 1, "no jit step among %d (silu must run on jit)", n_steps);
    dc_exec_free(e);
    CHECK(dc_compile(g, 0, (dc_backend)7, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "unknown backend 7"), "err: %s", err);
    dc_graph_free(g);

    CHECK_EQ_INT(dc_backend_from_name("auto"), DC_BACKEND_AUTO);
    CHECK_EQ_INT(dc_backend_from_name("ref"), DC_BACKEND_REF);
    CHECK_EQ_INT(dc_backend_from_name("dnnl"), DC_BACKEND_DNNL);
    CHECK_EQ_INT(dc_backend_from_name("jit"), DC_BACKEND_JIT);
    CHECK_EQ_INT(dc_backend_from_name("DNNL"), -1);
    const char *old = getenv("DISCO_BACKEND");
    char *saved = old ? strdup(old) : NULL;
    unsetenv("DISCO_BACKEND");
    CHECK_EQ_INT(dc_backend_from_env(DC_BACKEND_REF, err, sizeof err), DC_BACKEND_REF);
    setenv("DISCO_BACKEND", "dnnl", 1);
    CHECK_EQ_INT(dc_backend_from_env(DC_BACKEND_REF, err, sizeof err), DC_BACKEND_DNNL);
    setenv("DISCO_BACKEND", "cuda", 1);
    CHECK_EQ_INT(dc_backend_from_env(DC_BACKEND_AUTO, err, sizeof err), -1);
    CHECK_STR_EQ(err, "DISCO_BACKEND='cuda' names no backend (choose auto, ref, dnnl or jit)");
    if (saved) setenv("DISCO_BACKEND", saved, 1);
    else unsetenv("DISCO_BACKEND");
    free(saved);
}

static const char in_place_text[] =
    "graph @in_place(%x: f32[16,32], %r: f32[16,64]) -> (y: f32[16,8]) {\n"
    "  %0 = param \"a.w\" : f32[32,64] init=kaiming\n"
    "  %1 = param \"a.b\" : f32[64] init=normal(0.1)\n"
    "  %2 = linear %x, %0, %1 : f32[16,64]\n"
    "  %3 = relu %2 : f32[16,64]\n"
    "  %4 = add %3, %r : f32[16,64]\n"
    "  %5 = tanh %4 : f32[16,64]\n"
    "  %6 = param \"b.w\" : f32[64,8] init=kaiming\n"
    "  %7 = matmul %5, %6 {trans_a=false, trans_b=false} : f32[16,8]\n"
    "  %8 = exp %7 : f32[16,8]\n"
    "  return %8\n"
    "}\n";

TEST(lower_in_place_steps_next_to_dnnl_steps) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse(in_place_text, strlen(in_place_text), "in_place", err, sizeof err);
    dc_graph *u = dc_parse(in_place_text, strlen(in_place_text), "in_place", err, sizeof err);
    CHECK_MSG(g && u, "%s", err);
    if (!g || !u || !dc_run_pipeline(g, "plan-memory", &(dc_pass_opts){ 0 }, err, sizeof err)) {
        CHECK_MSG(false, "%s", err);
        dc_graph_free(g);
        dc_graph_free(u);
        return;
    }
    dc_exec *planned = compile_ok(g, DC_BACKEND_AUTO), *ref = compile_ok(u, DC_BACKEND_REF);
    if (planned && ref && feed_and_run(planned, g) && feed_and_run(ref, u)) {
        int in_place = 0;
        for (int i = 0; i < g->n_nodes; i++)
            if (dc_op_get(g->nodes[i].op)->kind == DC_KIND_ELEMENTWISE)
                in_place += dc_tensor_overlap(dc_exec_value(planned, i), dc_exec_value(planned, g->nodes[i].in[0]));
        CHECK_MSG(in_place >= 3, "only %d in-place nodes", in_place);
        CHECK_EQ_INT(check_rule(planned, g, DC_BACKEND_AUTO), 2);
        check_outputs("planned auto", planned, ref, g);
    }
    dc_exec_free(planned);
    dc_exec_free(ref);
    dc_graph_free(g);
    dc_graph_free(u);
}

/* Compiles graph `text` with a hand-made plan (offsets at[], plan_bytes) under each of the
 * backends: its second and last step must fall back to ref, writing span nodes before its
 * own, with a note that contains `note`. */
static void check_plan_fallback(const char *text, const int64_t *at, int64_t plan_bytes, const dc_backend *backends,
                                int n_backends, int span, const char *note) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse(text, strlen(text), "fallback", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    if (!g) return;
    g->plan_offset = calloc((size_t)g->n_nodes, sizeof *g->plan_offset);
    for (int i = 0; i < g->n_nodes; i++) g->plan_offset[i] = at[i];
    g->plan_bytes = plan_bytes;
    for (int k = 0; k < n_backends; k++) {
        dc_exec *e = compile_ok(g, backends[k]);
        if (!e) continue;
        int n;
        const dc_step *s = dc_exec_steps(e, &n);
        CHECK_EQ_INT(n, 2);
        CHECK_STR_EQ(s[1].provider, "ref");
        CHECK_EQ_INT(s[1].span, span);
        CHECK_MSG(strstr(s[1].note, note), "note: %s", s[1].note);
        dc_exec_free(e);
    }
    dc_graph_free(g);
}

/* A step that computes both results of a fused contraction and falls back to ref (here: a
 * hand-made plan that puts the pre-activation %3 over the step's input %1) stays one step
 * over both results (ref runs both nodes' kernels: the ref+passes runs of diff_dnnl check
 * their values), with the reason as its note. */
TEST(lower_pair_fallback_spans_both_results) {
    const char *text = "graph @pair(%x: f32[8,8]) -> (y: f32[8,8], pre: f32[8,8]) {\n"
                       "  %0 = param \"w\" : f32[8,8] init=kaiming\n"
                       "  %1 = exp %x : f32[8,8]\n"
                       "  %2 = fused_matmul %1, %0 {trans_a=false, trans_b=false, act=silu, bias=false, residual=false, "
                       "result=0} : f32[8,8]\n"
                       "  %3 = fused_matmul %1, %0 {trans_a=false, trans_b=false, act=silu, bias=false, residual=false, "
                       "result=1} : f32[8,8]\n"
                       "  return %2, %3\n"
                       "}\n";
    const dc_backend backends[] = { DC_BACKEND_AUTO, DC_BACKEND_DNNL, DC_BACKEND_JIT };
    check_plan_fallback(text, (const int64_t[]){ 0, 256, 512, 768, 512 }, 1024, backends, 3, 1,
                        "memory plan puts %3 over %1");
}

/* a hand-made plan whose matmul writes over its own input %1 */
TEST(lower_plan_over_a_dnnl_input_falls_back_to_ref) {
    const char *text = "graph @alias(%x: f32[8,8]) -> (y: f32[8,8]) {\n"
                       "  %0 = param \"w\" : f32[8,8] init=kaiming\n"
                       "  %1 = exp %x : f32[8,8]\n"
                       "  %2 = matmul %1, %0 {trans_a=false, trans_b=false} : f32[8,8]\n"
                       "  return %2\n"
                       "}\n";
    const dc_backend backends[] = { DC_BACKEND_AUTO, DC_BACKEND_DNNL };
    check_plan_fallback(text, (const int64_t[]){ 0, 256, 512, 512 }, 768, backends, 2, 0,
                        "memory plan puts %2 over %1, an input of its step");
}

/* y[i] += -x[i] over [begin, end): exact only if y starts at zero and each i runs once */
static void neg_kernel(void **args, int64_t begin, int64_t end) {
    const float *x = args[0];
    float *y = args[1];
    for (int64_t i = begin; i < end; i++) y[i] += -x[i];
}

/* @neg: y = neg x over f32[n], parsed */
static dc_graph *neg_graph(int64_t n) {
    char text[256], err[DC_ERR_LEN] = "";
    snprintf(text, sizeof text, "graph @neg(%%x: f32[%lld]) -> (y: f32[%lld]) {\n  %%0 = neg %%x : f32[%lld]\n  return %%0\n}\n",
             (long long)n, (long long)n, (long long)n);
    dc_graph *g = dc_parse(text, strlen(text), "neg", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    return g;
}

/* The jit-style step of @neg's node: neg_kernel over the whole range. */
static dc_step neg_step(int64_t n) {
    dc_step s;
    memset(&s, 0, sizeof s);
    s.node = 1;
    s.provider = "jit";
    s.kernel = neg_kernel;
    s.range = n;
    s.n_args = 2;
    s.args[1] = 1;
    return s;
}

/* Runs e (a program of @neg) `runs` times on x[i] = i - n/2 and checks y = -x. */
static void check_neg_runs(dc_exec *e, int64_t n, int runs) {
    char err[DC_ERR_LEN] = "";
    float *x = dc_exec_value(e, 0)->data;
    for (int64_t i = 0; i < n; i++) x[i] = (float)(i - n / 2);
    for (int r = 0; r < runs; r++) CHECK_MSG(dc_exec_run(e, err, sizeof err), "%s", err);
    const float *y = dc_exec_output(e, 0)->data;
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += y[i] != (float)(n / 2 - i);
    CHECK_EQ_INT(bad, 0);
}

/* the calls of counted_kernel and the ranges they covered */
static int n_counted;
static int64_t counted_elems;

/* neg_kernel that counts its calls */
static void counted_kernel(void **args, int64_t begin, int64_t end) {
#pragma omp atomic
    n_counted++;
#pragma omp atomic
    counted_elems += end - begin;
    neg_kernel(args, begin, end);
}

/* A kernel step whose work is below DC_PAR_MIN_WORK runs as one call over its whole range on
 * the calling thread; a larger one (or one of unknown work, 0) is split over the threads. */
TEST(lower_small_kernels_run_unsplit) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = neg_graph(1000);
    if (!g) return;
    int threads = omp_get_max_threads();
    omp_set_num_threads(2);
    const int64_t works[3] = { 2000, DC_PAR_MIN_WORK, 0 };
    const int want_calls[3] = { 1, 2, 2 };
    for (int k = 0; k < 3; k++) {
        dc_step s = neg_step(1000);
        s.kernel = counted_kernel;
        s.work = works[k];
        dc_exec *e = dc_exec_new_program(g, 0, &s, 1, NULL, err, sizeof err);
        CHECK_MSG(e != NULL, "%s", err);
        if (!e) continue;
        n_counted = 0;
        counted_elems = 0;
        check_neg_runs(e, 1000, 1);
        CHECK_EQ_INT(n_counted, want_calls[k]);
        CHECK_EQ_INT(counted_elems, 1000);
        dc_exec_free(e);
    }
    omp_set_num_threads(threads);
    dc_graph_free(g);
}

/* dc_exec_ref_summary counts the ref steps and names their ops in program order */
TEST(lower_ref_summary_names_ref_steps) {
    char err[DC_ERR_LEN] = "", ops[256] = "?";
    dc_graph *g = dc_parse_file("tests/ir/mlp.dcir", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    if (!g) return;
    dc_exec *e = dc_exec_new(g, 0, err, sizeof err);
    CHECK_MSG(e != NULL, "%s", err);
    if (e) {
        CHECK_EQ_INT(dc_exec_ref_summary(e, ops, sizeof ops), 4);
        CHECK_STR_EQ(ops, "linear x2, silu x1, mse x1");
        dc_exec_free(e);
    }
    dc_graph_free(g);
    g = neg_graph(10);
    if (!g) return;
    dc_step s = neg_step(10);
    e = dc_exec_new_program(g, 0, &s, 1, NULL, err, sizeof err);
    CHECK_MSG(e != NULL, "%s", err);
    if (e) {
        CHECK_EQ_INT(dc_exec_ref_summary(e, ops, sizeof ops), 0);
        CHECK_STR_EQ(ops, "");
        dc_exec_free(e);
    }
    dc_graph_free(g);
}

static bool bad_call(const dc_step *s, const dc_frame *f, char *err, size_t len) {
    (void)f;
    snprintf(err, len, "refused step of node %d", s->node);
    return false;
}

TEST(lower_range_kernels_and_malformed_programs) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = neg_graph(1000);
    if (!g) return;
    dc_step s = neg_step(1000);
    int threads = omp_get_max_threads();
    for (int t = 1; t <= 3; t++) {
        omp_set_num_threads(t);
        dc_exec *e = dc_exec_new_program(g, 0, &s, 1, NULL, err, sizeof err);
        CHECK_MSG(e != NULL, "%s", err);
        if (!e) continue;
        check_neg_runs(e, 1000, 2);
        CHECK_EQ_INT(dc_exec_step_time(e, 0).calls, 2);
        dc_exec_free(e);
    }
    omp_set_num_threads(threads);

    dc_step bad[4] = { s, s, s, dc_ref_step(0) };
    bad[0].range = 0;
    bad[1].call = bad_call;
    bad[2].args[1] = 5;
    const char *why[] = { "empty range", "exactly one of a call and a range kernel", "names no node",
                          "computes an input or param" };
    for (int i = 0; i < 4; i++) {
        CHECK(dc_exec_new_program(g, 0, &bad[i], 1, NULL, err, sizeof err) == NULL);
        CHECK_MSG(strstr(err, why[i]), "program %d: %s", i, err);
    }
    dc_step two[2] = { dc_ref_step(1), dc_ref_step(1) };
    CHECK(dc_exec_new_program(g, 0, two, 2, NULL, err, sizeof err) == NULL);
    CHECK_MSG(strstr(err, "out of schedule order"), "%s", err);
    for (int span = -1; span <= 1; span += 2) {
        dc_step spanning = dc_ref_step(1);
        spanning.span = span; /* node 1 is no result of a multi-result computation */
        CHECK(dc_exec_new_program(g, 0, &spanning, 1, NULL, err, sizeof err) == NULL);
        CHECK_MSG(strstr(err, "spans nodes that are not the results of one computation"), "span %d: %s", span, err);
    }

    dc_step failing = dc_ref_step(1);
    failing.call = bad_call;
    failing.provider = "dnnl";
    dc_exec *e = dc_exec_new_program(g, 0, &failing, 1, NULL, err, sizeof err);
    CHECK(e && !dc_exec_run(e, err, sizeof err));
    CHECK_STR_EQ(err, "node %0 (neg): refused step of node 1");
    dc_exec_free(e);
    dc_graph_free(g);
}

/* ---- the prepare hook of a step ------------------------------------------------------------ */

static int ctx_freed;
static void count_free(void *ctx) { ctx_freed += ctx != NULL; }

/* The hook of the test: keeps the step (with an impl), or refuses it with a message. */
static dc_step_verdict verdict;
static dc_step_verdict prep_hook(dc_step *s, const dc_frame *f, char *err, size_t len) {
    if (verdict == DC_STEP_READY) snprintf(s->impl, sizeof s->impl, "tried on %s", f->g->name);
    else snprintf(err, len, "%s", verdict == DC_STEP_FALLBACK ? "no kernel for this shape" : "cannot run here");
    return verdict;
}

TEST(lower_prepare_hooks_keep_fall_back_or_fail) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = neg_graph(64);
    if (!g) return;
    dc_step s = neg_step(64);
    s.ctx = &ctx_freed;
    s.prepare = prep_hook;
    const char *provider[] = { "jit", "ref" }, *impl[] = { "tried on neg", "ref" };
    const char *note[] = { "", "no kernel for this shape" };
    for (int k = 0; k < 2; k++) {
        ctx_freed = 0;
        verdict = k ? DC_STEP_FALLBACK : DC_STEP_READY;
        dc_exec *e = dc_exec_new_program(g, 0, &s, 1, count_free, err, sizeof err);
        CHECK_MSG(e != NULL, "%s", err);
        if (!e) continue;
        int n;
        const dc_step *st = dc_exec_steps(e, &n);
        CHECK_STR_EQ(st[0].provider, provider[k]);
        CHECK_STR_EQ(st[0].impl, impl[k]);
        CHECK_STR_EQ(st[0].note, note[k]);
        CHECK_EQ_INT(ctx_freed, k); /* a step that falls back gives its ctx up at once */
        check_neg_runs(e, 64, 1);
        dc_exec_free(e);
        CHECK_EQ_INT(ctx_freed, 1);
    }
    ctx_freed = 0;
    verdict = DC_STEP_FAILED;
    CHECK(dc_exec_new_program(g, 0, &s, 1, count_free, err, sizeof err) == NULL);
    CHECK_STR_EQ(err, "node %0 (neg): cannot run here");
    CHECK_EQ_INT(ctx_freed, 1);
    dc_graph_free(g);
}
