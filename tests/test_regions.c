/* test_regions.c — shared parallel regions in the executor (runtime/exec.c): a program that
 * mixes jit kernel steps (split, below DC_PAR_MIN_WORK, range 1) with call steps (oneDNN,
 * ref) gives the same bits with consecutive kernels in one region as with each split kernel
 * in a region of its own, for 1 and 2 OpenMP threads, and matches the ref backend's result
 * (the oracle); hand-made kernels that need a zero-filled output are zeroed inside a shared
 * region, unsplit ones run on the calling thread; a failing call step between kernel steps
 * still fails the run with its message, and the steps after it do not run.
 *
 * Tolerance against ref: jit and oneDNN round tanh, exp and the matmul's sums otherwise
 * than the ref kernels, so |got - ref| <= 1e-4 * (1 + |ref|). */
#include "tests/test.h"

#include <omp.h>
#include <stdlib.h>

#include "codegen/codegen.h"

#define TOL 1e-4

/* Split steps (f32[256,256]), steps below DC_PAR_MIN_WORK (f32[4], f32[256,8]), a range-1
 * reduction to a scalar, and between them a oneDNN matmul and a ref pad (no kernel-IR form). */
static const char *mixed_text =
    "graph @mixed(%x: f32[256,256], %s: f32[4], %w: f32[256,8]) -> (a: f32[256,257], b: f32[4], c: f32[256,8]) {\n"
    "  %0 = tanh %x : f32[256,256]\n"
    "  %1 = mul %0, %x : f32[256,256]\n"
    "  %2 = sin %s : f32[4]\n"
    "  %3 = exp %2 : f32[4]\n"
    "  %4 = add %1, %0 : f32[256,256]\n"
    "  %5 = sub %4, %x : f32[256,256]\n"
    "  %6 = matmul %5, %w {trans_a=false, trans_b=false} : f32[256,8]\n"
    "  %7 = sigmoid %6 : f32[256,8]\n"
    "  %8 = sum %7 {axes=[], keepdims=false} : f32[]\n"
    "  %9 = broadcast_to %8 : f32[4]\n"
    "  %10 = mul %9, %3 : f32[4]\n"
    "  %11 = pad %5 {lo=[0,1], hi=[0,0], value=0.5} : f32[256,257]\n"
    "  %12 = neg %11 : f32[256,257]\n"
    "  %13 = abs %12 : f32[256,257]\n"
    "  %14 = mul %7, %7 : f32[256,8]\n"
    "  return %13, %10, %14\n"
    "}\n";

/* Fills every input of e's graph with a fixed pattern in [-1.5, 1.5]. */
static void feed(dc_exec *e, const dc_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != DC_OP_INPUT) continue;
        dc_tensor *t = dc_exec_value(e, i);
        for (int64_t k = 0; k < dc_numel(&t->type.shape); k++) ((float *)t->data)[k] = 1.5f * sinf(0.37f * (float)(k + i));
    }
}

/* The outputs of g run by e with nthreads threads (regions shared or not), concatenated. */
static float *run_outputs(dc_exec *e, const dc_graph *g, int nthreads, bool share, int64_t *count) {
    char err[DC_ERR_LEN] = "";
    omp_set_num_threads(nthreads);
    dc_exec_share_regions(e, share);
    feed(e, g);
    bool ok = dc_exec_run(e, err, sizeof err);
    CHECK_MSG(ok, "run: %s", err);
    *count = 0;
    for (int o = 0; o < g->n_outputs; o++) *count += dc_numel(&dc_exec_output(e, o)->type.shape);
    float *all = calloc((size_t)*count, sizeof *all), *at = all;
    if (!all) abort(); /* out of memory */
    for (int o = 0; ok && o < g->n_outputs; o++) {
        const dc_tensor *t = dc_exec_output(e, o);
        memcpy(at, t->data, (size_t)dc_numel(&t->type.shape) * sizeof *at);
        at += dc_numel(&t->type.shape);
    }
    return all;
}

/* Counts e's steps: split kernels, unsplit kernels (small or range 1), range-1 kernels, calls. */
static void count_steps(const dc_exec *e, int *split, int *small, int *range1, int *calls) {
    int n;
    const dc_step *s = dc_exec_steps(e, &n);
    *split = *small = *range1 = *calls = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].call) ++*calls;
        else if (dc_step_splits(&s[i])) ++*split;
        else ++*small;
        *range1 += s[i].kernel && s[i].range == 1;
    }
}

TEST(regions_shared_match_per_step_bitwise_and_ref) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse(mixed_text, strlen(mixed_text), "mixed", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    if (!g) return;
    int saved = omp_get_max_threads();
    dc_exec *jit = dc_compile(g, 1, DC_BACKEND_JIT, err, sizeof err);
    CHECK_MSG(jit != NULL, "jit: %s", err);
    dc_exec *ref = dc_compile(g, 1, DC_BACKEND_REF, err, sizeof err);
    CHECK_MSG(ref != NULL, "ref: %s", err);
    if (jit && ref) {
        int split, small, range1, calls;
        count_steps(jit, &split, &small, &range1, &calls);
        CHECK_MSG(split >= 5 && small >= 4 && range1 >= 1 && calls >= 2,
                  "steps: %d split, %d small, %d range 1, %d calls", split, small, range1, calls);
        int64_t n_ref = 0;
        float *want = run_outputs(ref, g, 2, true, &n_ref);
        for (int t = 1; t <= 2; t++) {
            int64_t n_shared = 0, n_alone = 0;
            float *shared = run_outputs(jit, g, t, true, &n_shared);
            float *alone = run_outputs(jit, g, t, false, &n_alone);
            CHECK_EQ_INT(n_shared, n_ref);
            CHECK_EQ_INT(n_alone, n_ref);
            CHECK_MSG(memcmp(shared, alone, (size_t)n_ref * sizeof *shared) == 0,
                      "%d threads: shared regions change the bits", t);
            int64_t bad = 0, first = -1;
            for (int64_t k = 0; k < n_ref; k++)
                if (!(fabs(shared[k] - want[k]) <= TOL * (1 + fabs(want[k])))) bad++, first = first < 0 ? k : first;
            CHECK_MSG(bad == 0, "%d threads: %lld elements differ from ref, the first %lld: %.9g vs %.9g", t,
                      (long long)bad, (long long)first, first < 0 ? 0 : shared[first], first < 0 ? 0 : want[first]);
            free(shared);
            free(alone);
        }
        free(want);
    }
    omp_set_num_threads(saved);
    dc_exec_free(jit);
    dc_exec_free(ref);
    dc_graph_free(g);
}

/* @chain: five negs of x over f32[n], parsed (node k + 1 is the k-th neg) */
static dc_graph *chain_graph(int64_t n) {
    char text[512], err[DC_ERR_LEN] = "";
    long long m = (long long)n;
    snprintf(text, sizeof text,
             "graph @chain(%%x: f32[%lld]) -> (y: f32[%lld]) {\n  %%0 = neg %%x : f32[%lld]\n"
             "  %%1 = neg %%0 : f32[%lld]\n  %%2 = neg %%1 : f32[%lld]\n  %%3 = neg %%2 : f32[%lld]\n"
             "  %%4 = neg %%3 : f32[%lld]\n  return %%4\n}\n",
             m, m, m, m, m, m, m);
    dc_graph *g = dc_parse(text, strlen(text), "chain", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    return g;
}

/* y[i] += -x[i] over [begin, end): exact only if y starts at zero and each i runs once */
static void acc_neg_kernel(void **args, int64_t begin, int64_t end) {
    const float *x = args[0];
    float *y = args[1];
    for (int64_t i = begin; i < end; i++) y[i] += -x[i];
}

/* where the last call of small_kernel ran: its thread, its range, the team's size */
static int small_thread, small_team;
static int64_t small_begin, small_end;

/* acc_neg_kernel that records where it ran */
static void small_kernel(void **args, int64_t begin, int64_t end) {
    small_thread = omp_get_thread_num();
    small_team = omp_get_num_threads();
    small_begin = begin;
    small_end = end;
    acc_neg_kernel(args, begin, end);
}

static bool bad_call(const dc_step *s, const dc_frame *f, char *err, size_t len) {
    (void)f;
    snprintf(err, len, "refused step of node %d", s->node);
    return false;
}

/* The acc_neg step of node `node` (reading node - 1), split unless work says it is small. */
static dc_step acc_neg_step(int node, int64_t n, int64_t work) {
    dc_step s;
    memset(&s, 0, sizeof s);
    s.node = node;
    s.provider = "jit";
    s.kernel = work ? small_kernel : acc_neg_kernel;
    s.range = n;
    s.work = work;
    s.n_args = 2;
    s.args[0] = node - 1;
    s.args[1] = node;
    return s;
}

/* Kernels that need a zero-filled output get it inside a shared region, split ones and small
 * ones alike, run after run; a small one runs whole on thread 0; the program around a call
 * step gives -x exactly with 1 and 2 threads. */
TEST(regions_zero_fill_and_small_steps_in_a_shared_region) {
    const int64_t n = 1000;
    dc_graph *g = chain_graph(n);
    if (!g) return;
    char err[DC_ERR_LEN] = "";
    dc_step steps[5] = { acc_neg_step(1, n, 0), acc_neg_step(2, n, 100), acc_neg_step(3, n, 0), dc_ref_step(4),
                         acc_neg_step(5, n, 0) };
    int saved = omp_get_max_threads();
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        dc_exec *e = dc_exec_new_program(g, 0, steps, 5, NULL, err, sizeof err);
        CHECK_MSG(e != NULL, "%s", err);
        if (!e) continue;
        float *x = dc_exec_value(e, 0)->data;
        for (int64_t i = 0; i < n; i++) x[i] = (float)(i - n / 2);
        for (int r = 0; r < 2; r++) {
            small_thread = small_team = -1;
            CHECK_MSG(dc_exec_run(e, err, sizeof err), "%s", err);
            CHECK_EQ_INT(small_thread, 0);
            CHECK_EQ_INT(small_team, t);
            CHECK_EQ_INT(small_begin, 0);
            CHECK_EQ_INT(small_end, n);
        }
        const float *y = dc_exec_output(e, 0)->data;
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++) bad += y[i] != (float)(n / 2 - i);
        CHECK_EQ_INT(bad, 0);
        for (int i = 0; i < 5; i++) CHECK_EQ_INT(dc_exec_step_time(e, i).calls, 2);
        dc_exec_free(e);
    }
    omp_set_num_threads(saved);
    dc_graph_free(g);
}

/* A call step that fails between kernel steps fails the run with its message; the steps
 * before it ran, the ones after it did not. */
TEST(regions_failing_call_between_kernels_fails_the_run) {
    const int64_t n = 1000;
    dc_graph *g = chain_graph(n);
    if (!g) return;
    char err[DC_ERR_LEN] = "";
    dc_step steps[5] = { acc_neg_step(1, n, 0), acc_neg_step(2, n, 100), dc_ref_step(3), acc_neg_step(4, n, 0),
                         acc_neg_step(5, n, 0) };
    steps[2].call = bad_call;
    int saved = omp_get_max_threads();
    omp_set_num_threads(2);
    dc_exec *e = dc_exec_new_program(g, 0, steps, 5, NULL, err, sizeof err);
    CHECK_MSG(e != NULL, "%s", err);
    if (e) {
        err[0] = '\0';
        CHECK(!dc_exec_run(e, err, sizeof err));
        CHECK_STR_EQ(err, "node %2 (neg): refused step of node 3");
        const int64_t want[5] = { 1, 1, 0, 0, 0 };
        for (int i = 0; i < 5; i++) CHECK_EQ_INT(dc_exec_step_time(e, i).calls, want[i]);
        dc_exec_free(e);
    }
    omp_set_num_threads(saved);
    dc_graph_free(g);
}
