/* epilogue.c — what keeping the pre-activation in a fused contraction buys (fuse-contraction's
 * two-result form): blocks of a training step's forward, a contraction + bias + activation
 * whose pre-activation the backward reads (so the graph's outputs are the activation and the
 * pre-activation), each compiled four ways and run interleaved in one invocation:
 *   split dnnl: the auto pipeline without fuse-contraction: oneDNN's contraction with its
 *               bias, then the activation as a JIT loop kernel (what training ran before);
 *   pair dnnl:  the auto pipeline: one step, oneDNN's contraction with its bias into the
 *               pre-activation, then the activation from it (a JIT kernel);
 *   split jit:  the jit backend without fuse-contraction: a JIT GEMM, then a JIT loop kernel;
 *   pair jit:   the jit backend: one JIT GEMM whose epilogue stores both.
 * Tuning is off (DISCO_TUNE=off), so each way runs its default kernels. Every figure is a
 * median of REPS repetitions, each a run of every program in turn lasting >= 20 ms; the
 * ratio split / pair (same provider) is taken per repetition, then medianed. Run from the
 * repository root with OMP_NUM_THREADS=2: build/bench/epilogue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "codegen/codegen.h"
#include "passes/passes.h"

#define REPS 9
#define MIN_REP_SECONDS 0.02
#define WAYS 4

typedef struct {
    const char *name;
    const char *text; /* the block's graph: outputs y (the activation) and pre */
} block;

static const block blocks[] = {
    { "linear+gelu [4096,256]x[256,1024] (transformer MLP)",
      "graph @mlp(%x: f32[4096,256]) -> (y: f32[4096,1024], pre: f32[4096,1024]) {\n"
      "  %0 = param \"w\" : f32[256,1024] init=kaiming\n"
      "  %1 = param \"b\" : f32[1024] init=uniform(-1, 1)\n"
      "  %2 = linear %x, %0, %1 : f32[4096,1024]\n"
      "  %3 = gelu %2 : f32[4096,1024]\n"
      "  return %3, %2\n}\n" },
    { "linear+silu [512,256]x[256,256] (toy denoiser)",
      "graph @toy(%x: f32[512,256]) -> (y: f32[512,256], pre: f32[512,256]) {\n"
      "  %0 = param \"w\" : f32[256,256] init=kaiming\n"
      "  %1 = param \"b\" : f32[256] init=uniform(-1, 1)\n"
      "  %2 = linear %x, %0, %1 : f32[512,256]\n"
      "  %3 = silu %2 : f32[512,256]\n"
      "  return %3, %2\n}\n" },
    { "conv3x3+bias+silu [64,14,14,64] -> 64",
      "graph @conv(%x: f32[64,14,14,64]) -> (y: f32[64,14,14,64], pre: f32[64,14,14,64]) {\n"
      "  %0 = param \"w\" : f32[3,3,64,64] init=kaiming\n"
      "  %1 = param \"b\" : f32[64] init=uniform(-1, 1)\n"
      "  %2 = conv2d %x, %0 {stride=[1,1], pad=[1,1], groups=1} : f32[64,14,14,64]\n"
      "  %3 = add %2, %1 : f32[64,14,14,64]\n"
      "  %4 = silu %3 : f32[64,14,14,64]\n"
      "  return %4, %3\n}\n" },
};
#define N_BLOCKS (int)(sizeof blocks / sizeof blocks[0])

static const char *const way_names[WAYS] = { "split dnnl", "pair dnnl", "split jit", "pair jit" };

static void die(const char *what, const char *msg) {
    fprintf(stderr, "epilogue: %s: %s\n", what, msg);
    exit(1);
}

/* Block b compiled the way w; its graph in *g (freed by the caller after the program). */
static dc_exec *compile_way(const block *b, int w, dc_graph **g) {
    char err[DC_ERR_LEN];
    *g = dc_parse(b->text, strlen(b->text), b->name, err, sizeof err);
    if (!*g) die(b->name, err);
    dc_backend backend = w >= 2 ? DC_BACKEND_JIT : DC_BACKEND_AUTO;
    const char *pipeline = w % 2 == 0 ? "simplify,cse,dce,split-reductions,fuse-loops,schedule-results,plan-memory"
                                      : dc_pipeline(backend);
    dc_pass_opts o = { 0 };
    if (!dc_run_pipeline(*g, pipeline, &o, err, sizeof err)) die(b->name, err);
    dc_exec *e = dc_compile(*g, 1, backend, err, sizeof err);
    if (!e) die(b->name, err);
    float v = 0.25f;
    for (int i = 0; i < (*g)->n_nodes; i++) {
        const dc_node *n = &(*g)->nodes[i];
        if (n->op != DC_OP_INPUT) continue;
        dc_tensor *t = dc_tensor_new(&n->type);
        float *p = t->data;
        for (int64_t j = 0; j < dc_numel(&n->type.shape); j++) p[j] = v = v * 3.7f - (float)(int)(v * 3.7f) - 0.5f;
        if (!dc_exec_set_input(e, n->name, t, err, sizeof err)) die(b->name, err);
        dc_tensor_free(t);
    }
    return e;
}

static double run_for(dc_exec *e, int n, const char *what) {
    char err[DC_ERR_LEN];
    double t0 = dc_seconds();
    for (int i = 0; i < n; i++)
        if (!dc_exec_run(e, err, sizeof err)) die(what, err);
    return (dc_seconds() - t0) / n;
}

/* max |a - b| over both outputs */
static double max_diff(dc_exec *a, dc_exec *b) {
    double m = 0;
    for (int k = 0; k < 2; k++) {
        const dc_tensor *x = dc_exec_output(a, k), *y = dc_exec_output(b, k);
        const float *p = x->data, *q = y->data;
        for (int64_t j = 0; j < dc_numel(&x->type.shape); j++) {
            double d = p[j] > q[j] ? (double)p[j] - q[j] : (double)q[j] - p[j];
            if (d > m) m = d;
        }
    }
    return m;
}

/* the impl of the step that writes output k of e ("" if none) */
static const char *impl_of(dc_exec *e, const dc_graph *g) {
    int n;
    const dc_step *s = dc_exec_steps(e, &n);
    for (int i = 0; i < n; i++)
        if (s[i].span > 0 || g->nodes[s[i].node].op == DC_OP_LINEAR || g->nodes[s[i].node].op == DC_OP_FUSED_MATMUL ||
            g->nodes[s[i].node].op == DC_OP_FUSED_CONV2D)
            return s[i].impl;
    return "";
}

int main(void) {
    setenv("DISCO_TUNE", "off", 1);
    char load[64];
    bench_loadavg(load, sizeof load);
    printf("epilogue: contraction + bias + activation keeping the pre-activation; load average %s\n", load);
    for (int b = 0; b < N_BLOCKS; b++) {
        dc_graph *g[WAYS];
        dc_exec *e[WAYS];
        int n[WAYS];
        for (int w = 0; w < WAYS; w++) {
            e[w] = compile_way(&blocks[b], w, &g[w]);
            double once = run_for(e[w], 1, blocks[b].name);
            n[w] = once >= MIN_REP_SECONDS ? 1 : (int)(MIN_REP_SECONDS / (once + 1e-9)) + 1;
        }
        double t[WAYS][REPS], ratio[WAYS][REPS];
        for (int r = 0; r < REPS; r++) {
            for (int w = 0; w < WAYS; w++) t[w][r] = run_for(e[w], n[w], blocks[b].name) * 1e3;
            for (int w = 1; w < WAYS; w += 2) ratio[w][r] = t[w - 1][r] / t[w][r];
        }
        printf("\n%s\n", blocks[b].name);
        for (int w = 0; w < WAYS; w++) {
            int steps;
            dc_exec_steps(e[w], &steps);
            printf("  %-10s %8.3f ms  %d steps  %-44s", way_names[w], dc_median(t[w], REPS), steps, impl_of(e[w], g[w]));
            if (w % 2)
                printf("  | split/pair %.2fx, max |diff| vs split %.2g", dc_median(ratio[w], REPS), max_diff(e[w - 1], e[w]));
            printf("\n");
        }
        for (int w = 0; w < WAYS; w++) {
            dc_exec_free(e[w]);
            dc_graph_free(g[w]);
        }
    }
    return 0;
}
