/* fusion.c — issue 5's loop-fusion benchmark: the elementwise and row-reduction blocks of
 * DisCo-Diff (group_norm+silu forward, and forward + backward on fmnist-cnn's shape,
 * layer_norm, softmax, a residual add chain, gelu, the AdamW + EMA update of every fmnist-cnn
 * parameter), each built with the DSL and run three ways in one invocation: fused into LLVM
 * JIT kernels (the compiler's pipeline for the jit backend, dc_compile jit), op by op on the
 * ref kernels (simplify, cse, dce, plan-memory, dc_compile ref), and in PyTorch 1.13 eager
 * (bench/fusion_torch.py through /usr/bin/python3, same shapes and thread count; in both
 * configurations of bench/torch_env.sh, default and tuned allocator, the faster counting). Prints the
 * times, the ratios, the JIT kernels' achieved GB/s next to a STREAM triad measured in the same
 * run, the cold compile time per kernel (in a fresh, empty kernel cache), and the cold and warm
 * dc_compile of the whole fmnist-mlp training program (forward, gradients, clipping, AdamW,
 * EMA) with the jit backend. Every figure is a median of REPS repetitions; a repetition runs
 * its block enough times to last >= 20 ms. Run from the repository root with
 * OMP_NUM_THREADS=2; `fusion NAME...` measures only the blocks whose names contain a NAME. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "codegen/codegen.h"
#include "frontend/dsl.h"
#include "frontend/optim.h"
#include "models/models.h"
#include "passes/passes.h"

#define REPS 5
#define MIN_REP_SECONDS 0.02
#define TORCH_PY "/usr/bin/python3"
#define TORCH_SCRIPT "bench/fusion_torch.py"
#define TORCH_ENV "bench/torch_env.sh" /* PyTorch's configurations, shared with the *_vs_torch.sh */
#define TRIAD_N ((int64_t)1 << 25) /* 3 arrays of 128 MiB: far beyond L3 */
#define MAX_PARAMS 32

static void die(const char *what, const char *msg) {
    fprintf(stderr, "fusion: %s: %s\n", what, msg);
    exit(1);
}

/* ---- STREAM triad ---------------------------------------------------------------------- */

/* GB/s of a[i] = b[i] + s*c[i] over TRIAD_N floats on every OpenMP thread (3 arrays moved,
 * STREAM's count: no write-allocate traffic): the median of REPS, the best in *best. */
static double triad_gbs(double *best) {
    float *a = aligned_alloc(64, (size_t)TRIAD_N * sizeof(float));
    float *b = aligned_alloc(64, (size_t)TRIAD_N * sizeof(float));
    float *c = aligned_alloc(64, (size_t)TRIAD_N * sizeof(float));
    if (!a || !b || !c) abort(); /* out of memory */
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < TRIAD_N; i++) a[i] = 0, b[i] = 1.0f + (float)(i & 7), c[i] = 0.5f;
    const float s = 3.0f;
    double r[REPS];
    for (int k = 0; k < REPS; k++) {
        double t0 = dc_seconds();
        #pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < TRIAD_N; i++) a[i] = b[i] + s * c[i];
        r[k] = 3.0 * (double)TRIAD_N * sizeof(float) / (dc_seconds() - t0) * 1e-9;
    }
    if (a[TRIAD_N / 3] == -1.0f) printf(" "); /* keeps the stores alive */
    free(a), free(b), free(c);
    double m = dc_median(r, REPS);
    *best = r[REPS - 1];
    return m;
}

/* ---- the blocks ------------------------------------------------------------------------ */

typedef enum { B_GN_SILU, B_GN_SILU_BWD, B_LAYER_NORM, B_SOFTMAX, B_ADD4, B_GELU, B_ADAMW } kind;

typedef struct {
    const char *name;
    kind k;
    int rank;
    int64_t dims[4];
    int64_t groups;  /* group norms */
} block_def;

static const block_def blocks[] = {
    { "group_norm+silu [32,16,16,64] G32", B_GN_SILU, 4, { 32, 16, 16, 64 }, 32 },
    { "group_norm+silu [128,28,28,32] G8", B_GN_SILU, 4, { 128, 28, 28, 32 }, 8 },
    { "gn+silu fwd+bwd [128,28,28,32] G8", B_GN_SILU_BWD, 4, { 128, 28, 28, 32 }, 8 },
    { "layer_norm [4096,256]", B_LAYER_NORM, 2, { 4096, 256 }, 0 },
    { "softmax [4096,256]", B_SOFTMAX, 2, { 4096, 256 }, 0 },
    { "softmax [8*256,256] (attention)", B_SOFTMAX, 2, { 8 * 256, 256 }, 0 },
    { "add a+b+c+d [16M]", B_ADD4, 1, { 1 << 24 }, 0 },
    { "gelu [16M]", B_GELU, 1, { 1 << 24 }, 0 },
    { "AdamW+EMA, fmnist-cnn params", B_ADAMW, 0, { 0 }, 0 },
};
#define N_BLOCKS (int)(sizeof blocks / sizeof blocks[0])
static bool chosen[N_BLOCKS]; /* the blocks this run measures (the command line's, else all) */

/* The params of fmnist-cnn (models/fmnist_cnn.c), which the AdamW block updates. */
typedef struct {
    int n;
    char name[MAX_PARAMS][64];
    dc_type type[MAX_PARAMS];
} param_set;

static param_set cnn_params(void) {
    param_set s = { 0 };
    dc_graph *g = dc_fmnist_cnn_graph(1);
    if (dc_graph_failed(g)) die("fmnist-cnn graph", dc_graph_error(g));
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_PARAM && s.n < MAX_PARAMS) {
            snprintf(s.name[s.n], sizeof s.name[0], "%s", g->nodes[i].name);
            s.type[s.n++] = g->nodes[i].type;
        }
    dc_graph_free(g);
    return s;
}

static void build(dc_graph *g, const block_def *b, const param_set *ps) {
    dc_t x = DC_NONE, y = DC_NONE;
    if (b->k != B_ADAMW && b->k != B_ADD4) x = dc_input(g, "x", DC_F32, b->rank, b->dims);
    switch (b->k) {
    case B_GN_SILU: y = dc_silu(g, dc_group_norm_m(g, x, .groups = b->groups)); break;
    case B_GN_SILU_BWD: {
        /* dx, dgamma, dbeta of silu(group_norm(x)) for the incoming gradient dy */
        dc_t dy = dc_input(g, "dy", DC_F32, b->rank, b->dims);
        dc_t loss = dc_sum(g, dc_mul(g, dc_silu(g, dc_group_norm_m(g, x, .groups = b->groups)), dy));
        int wrt[3] = { x.id }, n = 1, grads[3];
        for (int i = 0; i < g->n_nodes && n < 3; i++)
            if (g->nodes[i].op == DC_OP_PARAM) wrt[n++] = i;
        char err[DC_ERR_LEN];
        if (!dc_grad(g, loss.id, wrt, n, grads, err, sizeof err)) die(b->name, err);
        dc_output(g, (dc_t){ grads[1] }, "dgamma");
        dc_output(g, (dc_t){ grads[2] }, "dbeta");
        y = (dc_t){ grads[0] };
        break;
    }
    case B_LAYER_NORM: y = dc_layer_norm_m(g, x); break;
    case B_SOFTMAX: y = dc_softmax(g, x, -1); break;
    case B_GELU: y = dc_gelu(g, x); break;
    case B_ADD4: {
        static const char *const names[4] = { "a", "b", "c", "d" };
        dc_t t[4];
        for (int i = 0; i < 4; i++) t[i] = dc_input(g, names[i], DC_F32, b->rank, b->dims);
        y = dc_add(g, dc_add(g, dc_add(g, t[0], t[1]), t[2]), t[3]);
        break;
    }
    case B_ADAMW: {
        dc_t p[MAX_PARAMS], gr[MAX_PARAMS], next[MAX_PARAMS];
        for (int i = 0; i < ps->n; i++) {
            const dc_shape *s = &ps->type[i].shape;
            char gname[80];
            snprintf(gname, sizeof gname, "grad.%s", ps->name[i]);
            p[i] = dc_param(g, ps->name[i], s->rank, s->dim);
            gr[i] = dc_input(g, gname, DC_F32, s->rank, s->dim);
        }
        dc_t lr = dc_input(g, "lr", DC_F32, 0, NULL), bc1 = dc_input(g, "bc1", DC_F32, 0, NULL),
             bc2 = dc_input(g, "bc2", DC_F32, 0, NULL);
        dc_adamw(g, ps->n, p, gr, lr, bc1, bc2, next, .weight_decay = 1e-4f);
        dc_ema(g, ps->n, p, next, 0.995f);
        y = next[ps->n - 1]; /* a graph needs an output: the smallest p', stored anyway */
        break;
    }
    }
    if (y.id >= 0) dc_output(g, y, "y");
    if (dc_graph_failed(g)) die(b->name, dc_graph_error(g));
}

/* The spec of block b for fusion_torch.py. */
static void torch_spec(const block_def *b, const param_set *ps, char *buf, size_t len) {
    static const char *const kinds[] = { [B_GN_SILU] = "gn_silu", [B_GN_SILU_BWD] = "gn_silu_bwd", [B_LAYER_NORM] = "layer_norm",
                                         [B_SOFTMAX] = "softmax", [B_ADD4] = "add4", [B_GELU] = "gelu",
                                         [B_ADAMW] = "adamw" };
    size_t n = (size_t)snprintf(buf, len, "%s:", kinds[b->k]);
    int count = b->k == B_ADAMW ? ps->n : 1;
    for (int i = 0; i < count && n < len; i++) {
        const dc_shape *s = b->k == B_ADAMW ? &ps->type[i].shape : &(dc_shape){ .rank = b->rank };
        const int64_t *d = b->k == B_ADAMW ? s->dim : b->dims;
        for (int j = 0; j < s->rank && n < len; j++)
            n += (size_t)snprintf(buf + n, len - n, "%s%lld", j ? "x" : (i ? "," : ""), (long long)d[j]);
    }
    if (b->groups && n < len) snprintf(buf + n, len - n, ":%lld", (long long)b->groups);
}

/* Bytes a block must move: every INPUT and PARAM read once, every output and state update
 * written once. */
static double bytes_moved(const dc_graph *g) {
    double b = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_INPUT || g->nodes[i].op == DC_OP_PARAM)
            b += (double)dc_numel(&g->nodes[i].type.shape) * dc_dtype_size(g->nodes[i].type.dtype);
    for (int i = 0; i < g->n_outputs; i++) {
        bool update = false;
        for (int j = 0; j < g->n_updates; j++) update |= g->updates[j].value == g->outputs[i];
        if (!update)
            b += (double)dc_numel(&g->nodes[g->outputs[i]].type.shape) * dc_dtype_size(g->nodes[g->outputs[i]].type.dtype);
    }
    for (int j = 0; j < g->n_updates; j++)
        b += (double)dc_numel(&g->nodes[g->updates[j].param].type.shape) * sizeof(float);
    return b;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static float rand_pm1(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

/* Sets every input of e's graph: random in [-1, 1), the AdamW scalars as at step 1. */
static void set_inputs(dc_exec *e, const dc_graph *g) {
    rng_state = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *n = &g->nodes[i];
        if (n->op != DC_OP_INPUT) continue;
        dc_tensor *t = dc_tensor_new(&n->type);
        float *p = t->data;
        int64_t k = dc_numel(&n->type.shape);
        if (strcmp(n->name, "lr") == 0) p[0] = 1e-3f;
        else if (strcmp(n->name, "bc1") == 0) p[0] = 10.0f;
        else if (strcmp(n->name, "bc2") == 0) p[0] = 1000.0f;
        else
            for (int64_t j = 0; j < k; j++) p[j] = rand_pm1();
        char err[DC_ERR_LEN];
        if (!dc_exec_set_input(e, n->name, t, err, sizeof err)) die("set input", err);
        dc_tensor_free(t);
    }
}

/* Nanoseconds spent in e's jit steps so far. */
static int64_t jit_ns(dc_exec *e) {
    int n;
    const dc_step *s = dc_exec_steps(e, &n);
    int64_t ns = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(s[i].provider, "jit") == 0) ns += dc_exec_step_time(e, i).ns;
    return ns;
}

static void run(dc_exec *e, const char *what) {
    char err[DC_ERR_LEN];
    if (!dc_exec_run(e, err, sizeof err)) die(what, err);
}

/* One dc_exec_run and the jit steps in it, in ms: medians over REPS repetitions (*med) and the
 * fastest single call (*best, what the machine gives when nobody else runs). */
typedef struct { double run, kern; } ms_pair;

static void measure(dc_exec *e, const char *what, ms_pair *med, ms_pair *best) {
    double t0 = dc_seconds();
    run(e, what);
    double once = dc_seconds() - t0;
    int n = once >= MIN_REP_SECONDS ? 1 : (int)(MIN_REP_SECONDS / (once + 1e-9)) + 1;
    double r[REPS], k[REPS];
    *best = (ms_pair){ 1e30, 1e30 };
    for (int i = 0; i < REPS; i++) {
        int64_t k0 = jit_ns(e);
        double start = dc_seconds();
        for (int j = 0; j < n; j++) {
            int64_t kc = jit_ns(e);
            double tc = dc_seconds();
            run(e, what);
            double dr = (dc_seconds() - tc) * 1e3, dk = (double)(jit_ns(e) - kc) * 1e-6;
            if (dr < best->run) best->run = dr;
            if (dk < best->kern) best->kern = dk;
        }
        r[i] = (dc_seconds() - start) * 1e3 / n;
        k[i] = (double)(jit_ns(e) - k0) * 1e-6 / n;
    }
    med->run = dc_median(r, REPS);
    med->kern = dc_median(k, REPS);
}

/* Max |a - b| over the output (or, for a graph with state updates, every param) after one run
 * of each. */
static double max_diff(dc_exec *a, dc_exec *b, const dc_graph *g) {
    double m = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_tensor *x, *y;
        if (g->n_updates == 0) {
            if (i > 0) break;
            x = dc_exec_output(a, 0), y = dc_exec_output(b, 0);
        } else {
            if (g->nodes[i].op != DC_OP_PARAM) continue;
            x = dc_exec_param(a, g->nodes[i].name), y = dc_exec_param(b, g->nodes[i].name);
        }
        const float *p = x->data, *q = y->data;
        for (int64_t j = 0; j < dc_numel(&x->type.shape); j++) {
            double d = p[j] > q[j] ? (double)p[j] - q[j] : (double)q[j] - p[j];
            if (d > m) m = d;
        }
    }
    return m;
}

static dc_graph *planned(const block_def *b, const param_set *ps, const char *pipeline) {
    dc_graph *g = dc_graph_new("fusion_bench");
    build(g, b, ps);
    char err[DC_ERR_LEN];
    dc_pass_opts o = { 0 }; /* as models/train.c: every value gets a slot */
    if (!dc_run_pipeline(g, pipeline, &o, err, sizeof err)) die(b->name, err);
    return g;
}

typedef struct {
    ms_pair jit, jit_best, ref, ref_best;
    double torch_ms, torch_best, bytes, diff;
    const char *torch_cfg;      /* the PyTorch configuration of torch_ms */
    int64_t compiled, kernels;
    double cold_ms; /* LLVM build + optimize + emit + link per compiled kernel */
} result;

static result bench_block(const block_def *b, const param_set *ps) {
    result r = { .torch_ms = -1, .torch_best = -1 };
    char err[DC_ERR_LEN];
    dc_graph *gj = planned(b, ps, dc_pipeline(DC_BACKEND_JIT));
    dc_graph *gr = planned(b, ps, "simplify,cse,dce,plan-memory");
    r.bytes = bytes_moved(gr);
    dc_jit_stats s0 = dc_jit_get_stats();
    dc_exec *ej = dc_compile(gj, 1, DC_BACKEND_JIT, err, sizeof err);
    if (!ej) die(b->name, err);
    dc_jit_stats s1 = dc_jit_get_stats();
    r.compiled = s1.compiled - s0.compiled;
    r.kernels = r.compiled + (s1.cache_loads - s0.cache_loads) + (s1.shared - s0.shared);
    r.cold_ms = r.compiled ? (s1.compile_ms - s0.compile_ms + s1.load_ms - s0.load_ms) / (double)r.compiled : 0;
    int n_steps;
    const dc_step *st = dc_exec_steps(ej, &n_steps);
    for (int i = 0; i < n_steps; i++)
        if (st[i].note[0]) fprintf(stderr, "fusion: %s: step %d (%s): %s\n", b->name, i, st[i].provider, st[i].note);
    dc_exec *er = dc_compile(gr, 1, DC_BACKEND_REF, err, sizeof err);
    if (!er) die(b->name, err);
    set_inputs(ej, gj);
    set_inputs(er, gr);
    run(ej, b->name);
    run(er, b->name);
    r.diff = max_diff(ej, er, gj);
    measure(ej, b->name, &r.jit, &r.jit_best);
    measure(er, b->name, &r.ref, &r.ref_best);
    dc_exec_free(ej);
    dc_exec_free(er);
    dc_graph_free(gj);
    dc_graph_free(gr);
    return r;
}

/* Runs fusion_torch.py over every block in PyTorch configuration cfg (bench/torch_env.sh) and
 * keeps, per block, its time where it beats what res holds; a note on stdout when it cannot. */
static void run_torch(result *res, const param_set *ps, const char *cfg) {
    if (access(TORCH_SCRIPT, R_OK) != 0 || access(TORCH_ENV, R_OK) != 0) {
        printf("note: PyTorch skipped: %s or %s not found (run from the repository root)\n", TORCH_SCRIPT, TORCH_ENV);
        return;
    }
    if (system(TORCH_PY " -c 'import torch' >/dev/null 2>&1") != 0) {
        printf("note: PyTorch skipped: torch is not importable from %s\n", TORCH_PY);
        return;
    }
    size_t cap = 1 << 14, n = 0;
    char *cmd = malloc(cap);
    if (!cmd) abort(); /* out of memory */
    n += (size_t)snprintf(cmd, cap, ". %s && torch_py %s %s --threads %d --reps %d", TORCH_ENV, cfg, TORCH_SCRIPT,
                          omp_get_max_threads(), REPS);
    int at[N_BLOCKS], n_at = 0; /* the block of each spec passed */
    for (int i = 0; i < N_BLOCKS && n < cap; i++) {
        if (!chosen[i]) continue;
        char spec[2048];
        torch_spec(&blocks[i], ps, spec, sizeof spec);
        n += (size_t)snprintf(cmd + n, cap - n, " '%s'", spec);
        at[n_at++] = i;
    }
    FILE *f = popen(cmd, "r");
    if (!f) die("popen", TORCH_SCRIPT);
    char line[256];
    while (fgets(line, sizeof line, f)) {
        int i;
        double ms, best;
        if (sscanf(line, "RESULT %d %lf %lf", &i, &ms, &best) == 3 && i >= 0 && i < n_at) {
            i = at[i];
            if (res[i].torch_ms < 0 || ms < res[i].torch_ms) res[i].torch_ms = ms, res[i].torch_cfg = cfg;
            if (res[i].torch_best < 0 || best < res[i].torch_best) res[i].torch_best = best;
        }
    }
    if (pclose(f) != 0) printf("note: %s (%s) failed (see stderr); its blocks show n/a\n", TORCH_SCRIPT, cfg);
    free(cmd);
}

/* ---- the fmnist-mlp training program ------------------------------------------------------ */

/* The graph models/train.c builds for fmnist-mlp (models/fmnist_mlp.c, its default config):
 * MLP 784-512-256-10, cross-entropy, gradients of every param, global norm, clipping at 1,
 * AdamW (weight decay 1e-4), EMA 0.998; after the training pipeline of the jit backend
 * (dc_pipeline). */
static dc_graph *mlp_train_graph(void) {
    const int64_t batch = 128;
    dc_graph *g = dc_graph_new("fmnist_mlp_train");
    dc_t x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ batch, 784 }));
    dc_t y = dc_input(g, "y", DC_I32, 1, ((int64_t[]){ batch }));
    dc_t h = DC_NONE;
    DC_SCOPE(g, "mlp") {
        h = dc_relu(g, dc_linear(g, x, 512, .name = "l0"));
        h = dc_relu(g, dc_linear(g, h, 256, .name = "l1"));
        h = dc_linear(g, h, 10, .name = "l2");
    }
    dc_t loss = dc_cross_entropy(g, h, y);
    dc_output(g, loss, "loss");
    int ids[MAX_PARAMS], grad_ids[MAX_PARAMS], n = 0;
    for (int i = 0; i < g->n_nodes && n < MAX_PARAMS; i++)
        if (g->nodes[i].op == DC_OP_PARAM) ids[n++] = i;
    char err[DC_ERR_LEN];
    if (!dc_grad(g, loss.id, ids, n, grad_ids, err, sizeof err)) die("dc_grad", err);
    dc_t params[MAX_PARAMS], grads[MAX_PARAMS], next[MAX_PARAMS];
    for (int i = 0; i < n; i++) params[i] = (dc_t){ ids[i] }, grads[i] = (dc_t){ grad_ids[i] };
    dc_t norm = dc_global_norm(g, n, grads);
    dc_output(g, norm, "grad_norm");
    dc_clip_by_norm(g, n, grads, norm, 1.0f);
    dc_t lr = dc_input(g, "lr", DC_F32, 0, NULL), bc1 = dc_input(g, "bc1", DC_F32, 0, NULL),
         bc2 = dc_input(g, "bc2", DC_F32, 0, NULL);
    dc_adamw(g, n, params, grads, lr, bc1, bc2, next, .weight_decay = 1e-4f);
    dc_ema(g, n, params, next, 0.998f);
    if (dc_graph_failed(g)) die("fmnist-mlp training graph", dc_graph_error(g));
    if (!dc_run_pipeline(g, dc_pipeline(DC_BACKEND_JIT), &(dc_pass_opts){ 0 }, err, sizeof err))
        die("fmnist-mlp training graph", err);
    return g;
}

typedef struct {
    double wall_ms, jit_load_ms, compile_ms;
    int64_t kernels, compiled, cache_loads, optimizer_runs;
} program_load;

/* dc_compile of g with the jit backend, timed, and what the JIT did meanwhile. */
static program_load compile_program(const dc_graph *g) {
    char err[DC_ERR_LEN];
    dc_jit_stats s0 = dc_jit_get_stats();
    double t0 = dc_seconds();
    dc_exec *e = dc_compile(g, 0, DC_BACKEND_JIT, err, sizeof err);
    double wall = dc_seconds() - t0;
    if (!e) die("fmnist-mlp training program", err);
    dc_jit_stats s1 = dc_jit_get_stats();
    dc_exec_free(e);
    return (program_load){ .wall_ms = wall * 1e3, .jit_load_ms = s1.load_ms - s0.load_ms,
                           .compile_ms = s1.compile_ms - s0.compile_ms, .compiled = s1.compiled - s0.compiled,
                           .cache_loads = s1.cache_loads - s0.cache_loads,
                           .optimizer_runs = s1.optimizer_runs - s0.optimizer_runs,
                           .kernels = s1.compiled - s0.compiled + s1.cache_loads - s0.cache_loads + s1.shared - s0.shared };
}

static void fmt(char *buf, size_t len, double v, const char *f) {
    if (v > 0) snprintf(buf, len, f, v);
    else snprintf(buf, len, "n/a");
}

int main(int argc, char **argv) {
    for (int i = 0; i < N_BLOCKS; i++) {
        chosen[i] = argc == 1;
        for (int a = 1; a < argc; a++) chosen[i] = chosen[i] || strstr(blocks[i].name, argv[a]);
    }
    char cache[] = "/tmp/disco-fusion-cache-XXXXXX";
    if (!mkdtemp(cache)) die("mkdtemp", "cannot create a temporary cache directory");
    setenv("DISCO_CACHE_DIR", cache, 1);
    param_set ps = cnn_params();
    double t_start = dc_seconds();
    char load_start[64], load_end[64], date[64];
    time_t wall = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&wall));
    bench_loadavg(load_start, sizeof load_start);
    double triad_best, triad_end_best;
    double triad = triad_gbs(&triad_best);
    result res[N_BLOCKS];
    for (int i = 0; i < N_BLOCKS; i++) res[i] = chosen[i] ? bench_block(&blocks[i], &ps) : (result){ 0 };
    double triad_end = triad_gbs(&triad_end_best);
    run_torch(res, &ps, "default");
    run_torch(res, &ps, "tuned");

    dc_graph *mg = mlp_train_graph();
    program_load cold = compile_program(mg);
    double w_wall[REPS], w_load[REPS];
    program_load warm = { 0 };
    for (int i = 0; i < REPS; i++) {
        /* as a new process: no kernel loaded, no LLJIT, no oneDNN primitive */
        dc_jit_shutdown();
        dc_dnnl_shutdown();
        warm = compile_program(mg);
        w_wall[i] = warm.wall_ms, w_load[i] = warm.jit_load_ms;
    }
    double k_wall[REPS]; /* the same with oneDNN's primitives kept: what the JIT side costs */
    for (int i = 0; i < REPS; i++) {
        dc_jit_shutdown();
        k_wall[i] = compile_program(mg).wall_ms;
    }
    dc_graph_free(mg);
    bench_loadavg(load_end, sizeof load_end);

    int64_t params = 0;
    for (int i = 0; i < ps.n; i++) params += dc_numel(&ps.type[i].shape);
    printf("disco loop fusion (LLVM JIT) vs ref kernels vs PyTorch 1.13 eager; %d threads; medians of %d\n",
           omp_get_max_threads(), REPS);
    printf("%s; %ld cores online; load average %s at the start, %s at the end\n", date, sysconf(_SC_NPROCESSORS_ONLN),
           load_start, load_end);
    printf("STREAM triad (3 x %lld MiB, same run): median %.1f GB/s (best %.1f) at the start, %.1f (best %.1f) "
           "after the disco blocks\n", (long long)(TRIAD_N * 4 >> 20), triad, triad_best, triad_end, triad_end_best);
    printf("AdamW+EMA: %d fmnist-cnn params, %lld floats; jit = fuse-loops + plan-memory + dc_compile jit\n\n",
           ps.n, (long long)params);
    for (int pass = 0; pass < 2; pass++) {
        printf("%s\n", pass ? "\nthe same, fastest single call of each (the machine when nobody else runs):"
                             : "medians of the repetitions:");
        printf("%-34s %9s %9s %9s %-7s %8s %9s %7s %7s %7s %5s %9s %8s\n", "block", "jit ms", "ref ms", "torch ms",
               "(torch)", "ref/jit", "torch/jit", "MB", "GB/s", "%triad", "kern", "cold ms/k", "max|d|");
        for (int i = 0; i < N_BLOCKS; i++) {
            if (!chosen[i]) continue;
            const result *r = &res[i];
            ms_pair j = pass ? r->jit_best : r->jit, f = pass ? r->ref_best : r->ref;
            double t = pass ? r->torch_best : r->torch_ms, tri = pass ? triad_best : triad;
            double gbs = r->bytes / (j.kern * 1e-3) * 1e-9;
            char torch[16], tr[16], cold[16];
            fmt(torch, sizeof torch, t, "%9.3f");
            fmt(tr, sizeof tr, t > 0 ? t / j.run : 0, "%8.2fx");
            fmt(cold, sizeof cold, r->cold_ms, "%9.1f");
            printf("%-34s %9.3f %9.3f %9s %-7s %7.2fx %9s %7.1f %7.1f %6.0f%% %5lld %9s %8.1e\n", blocks[i].name, j.run,
                   f.run, torch, r->torch_cfg ? r->torch_cfg : "-", f.run / j.run, tr, r->bytes * 1e-6, gbs, 100.0 * gbs / tri, (long long)r->kernels,
                   cold, r->diff);
        }
    }
    printf("\njit ms / ref ms: one dc_exec_run (state updates included); GB/s: bytes that must move (inputs and\n"
           "params read once, outputs and updates written once) / time in the jit steps, %%triad against the\n"
           "start-of-run triad (median, or best with the best); cold ms/k: LLVM build + optimize + emit + link\n"
           "per kernel compiled into the empty cache %s (n/a: nothing compiled); max|d|: jit vs ref\n", cache);
    printf("\nfmnist-mlp training program (batch 128, forward + grads + clip + AdamW + EMA), dc_compile jit:\n");
    printf("  cold: %.1f ms wall, %lld kernels (%lld compiled, %.1f ms compiling = %.1f ms/kernel, %.1f ms linking)\n",
           cold.wall_ms, (long long)cold.kernels, (long long)cold.compiled, cold.compile_ms,
           cold.compiled ? cold.compile_ms / (double)cold.compiled : 0, cold.jit_load_ms);
    printf("  warm: %.1f ms wall (median of %d, each after dc_jit_shutdown + dc_dnnl_shutdown), %.1f ms loading "
           "%lld kernels from cache, %lld compiled, %lld optimizer runs\n",
           dc_median(w_wall, REPS), REPS, dc_median(w_load, REPS), (long long)warm.cache_loads, (long long)warm.compiled,
           (long long)warm.optimizer_runs);
    printf("  warm with oneDNN's primitives kept (only dc_jit_shutdown before each): %.1f ms wall (median of %d)\n",
           dc_median(k_wall, REPS), REPS);
    printf("\nwall %.0f s\n", dc_seconds() - t_start);
    char err[DC_ERR_LEN];
    if (!dc_kcache_clear(err, sizeof err) || rmdir(cache) != 0) fprintf(stderr, "fusion: cannot remove %s\n", cache);
    dc_jit_shutdown();
    dc_dnnl_shutdown();
    return 0;
}
