/* contractions.c — the contractions against the FMA peak and against each other, measured in
 * one run with the tuner's own harness (dc_tune_time: a one-node program, a warm-up run, then
 * the median of repeated timings, each at least 2 ms of runs):
 *
 *   1. the AVX-512 FMA-peak loop (bench_util.c: 24 independent chains per thread, bound
 *      threads, warm-up, clock between barriers), the best of 7 repetitions: an upper bound;
 *   2. a 1024^3 GEMM: oneDNN, the JIT GEMM with the default parameters, the best JIT GEMM
 *      the tuner finds (dc_tune_node) and the tuner's choice, each as GFLOP/s and as a
 *      fraction of the peak;
 *   3. every distinct contraction of the image DisCo-Diff training step (fmnist-disco at its
 *      defaults: forward, backward-data and backward-weight; matmuls, linears, convolutions and
 *      their fused forms), with its count per step: oneDNN, the JIT GEMM with the default
 *      parameters (a convolution as an implicit GEMM), and the tuned choice from the
 *      user's tuning database (dc_kcache_dir()/tune.db; what is missing is tuned first and
 *      saved), then totals per step for oneDNN alone, the default rule and the tuned choices,
 *      over all shapes and over the small ones (< 10 MFLOP).
 * Run with OMP_NUM_THREADS=2 on a quiet machine: build/bench/contractions. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "codegen/codegen.h"
#include "models/models.h"
#include "passes/passes.h"

#define RUNS 9
#define SMALL_FLOPS 1e7

static double flops_of(const dc_graph *g, const dc_node *n) {
    const dc_shape *o = &n->type.shape, *a = &g->nodes[n->in[0]].type.shape, *b = &g->nodes[n->in[1]].type.shape;
    switch (n->op) {
    case DC_OP_MATMUL:
    case DC_OP_FUSED_MATMUL: {
        bool ta = n->op == DC_OP_MATMUL ? n->attr.matmul.trans_a : n->attr.fused_matmul.trans_a;
        return 2.0 * (double)dc_numel(o) * (double)a->dim[ta ? a->rank - 2 : a->rank - 1];
    }
    case DC_OP_LINEAR: return 2.0 * (double)dc_numel(o) * (double)a->dim[a->rank - 1];
    case DC_OP_CONV2D:
    case DC_OP_FUSED_CONV2D: return 2.0 * (double)dc_numel(o) * (double)(b->dim[0] * b->dim[1] * b->dim[2]);
    case DC_OP_CONV2D_BWD_DATA: return 2.0 * (double)dc_numel(a) * (double)(b->dim[0] * b->dim[1] * b->dim[2]);
    default: /* conv2d_bwd_weight: x, dy -> dw [KH,KW,C,O] */
        return 2.0 * (double)dc_numel(o) * (double)(b->dim[0] * b->dim[1] * b->dim[2]);
    }
}

/* one-node graph text for an M x N x K matmul */
static dc_graph *gemm_graph(int64_t m, int64_t n, int64_t k) {
    char text[512], err[DC_ERR_LEN];
    snprintf(text, sizeof text,
             "graph @gemm(%%a: f32[%lld,%lld], %%b: f32[%lld,%lld]) -> (f32[%lld,%lld]) {\n"
             "  %%0 = matmul %%a, %%b {trans_a=false, trans_b=false} : f32[%lld,%lld]\n  return %%0\n}\n",
             (long long)m, (long long)k, (long long)k, (long long)n, (long long)m, (long long)n, (long long)m,
             (long long)n);
    dc_graph *g = dc_parse(text, strlen(text), "gemm", err, sizeof err);
    if (!g) fprintf(stderr, "contractions: %s\n", err);
    return g;
}

static int last_node(const dc_graph *g) { return g->n_nodes - 1; }

static void big_gemm(double peak) {
    dc_graph *g = gemm_graph(1024, 1024, 1024);
    if (!g) return;
    double t0 = dc_seconds();
    dc_tune_result t;
    dc_tune_node(g, last_node(g), &(dc_tune_options){ 0 }, &t);
    double flops = 2.0 * 1024 * 1024 * 1024;
    struct { const char *what, *choice; } rows[] = {
        { "oneDNN", "dnnl" }, { "JIT default", "jit" }, { "JIT tuned", t.jit }, { "tuned choice", t.choice } };
    printf("GEMM 1024 x 1024 x 1024 (tuned in %.0f s; best JIT kernel: %s)\n", dc_seconds() - t0, t.jit);
    for (int i = 0; i < 4; i++) {
        double tm = dc_tune_time(g, last_node(g), rows[i].choice, RUNS);
        printf("  %-12s %8.3f ms %7.1f GFLOP/s %6.1f%% of peak  %s\n", rows[i].what, 1e3 * tm, flops / tm * 1e-9,
               100.0 * flops / tm * 1e-9 / peak, rows[i].choice);
    }
    dc_graph_free(g);
}

/* the image model's training step as the compiler lowers it */
static dc_graph *training_step(void) {
    const dc_model *m = dc_model_find("fmnist-disco");
    dc_train_config c;
    dc_model_defaults(m, &c, NULL);
    char err[DC_ERR_LEN];
    dc_graph *g = m->train_graph(&c, NULL);
    if (!dc_train_graph(g, &c, NULL, err, sizeof err) ||
        !dc_run_pipeline(g, dc_pipeline(DC_BACKEND_AUTO), &(dc_pass_opts){ 0 }, err, sizeof err)) {
        fprintf(stderr, "contractions: the fmnist-disco training step: %s\n", err);
        dc_graph_free(g);
        return NULL;
    }
    return g;
}

static void model_shapes(void) {
    dc_graph *g = training_step();
    if (!g) return;
    char err[DC_ERR_LEN];
    dc_tune_db *db = dc_tune_db_open(NULL, err, sizeof err);
    dc_tune_report r;
    if (!db || !dc_tune_graph(g, db, &(dc_tune_options){ .progress = stderr }, &r, err, sizeof err)) {
        fprintf(stderr, "contractions: tuning: %s\n", err);
        return;
    }
    printf("\nfmnist-disco training step: %d distinct contractions and attentions (%d were in %s, %d tuned now in %.0f s)\n", r.kernels, r.cached, dc_tune_db_path(db), r.tuned, r.seconds);
    printf("%4s %9s %10s %10s %10s %8s  %-58s %s\n", "n", "MFLOP", "dnnl us", "jit us", "tuned us", "dnnl/tnd",
           "tuned choice", "contraction");
    double tot[2][3] = { { 0 } }; /* [all, small][dnnl, default rule, tuned] */
    for (int i = 0; i < g->n_nodes; i++) {
        char sig[DC_TUNE_SIG_LEN];
        if (dc_op_attention(g->nodes[i].op) || !dc_tune_signature(g, i, sig, sizeof sig)) continue; /* attention: not a contraction */
        bool first = true;
        int count = 0;
        for (int j = 0; j < g->n_nodes; j++) {
            char other[DC_TUNE_SIG_LEN];
            if (!dc_tune_signature(g, j, other, sizeof other) || strcmp(other, sig) != 0) continue;
            if (j < i) first = false;
            count++;
        }
        if (!first) continue;
        const dc_node *n = &g->nodes[i];
        double fl = flops_of(g, n);
        const char *tuned = dc_tune_db_lookup(db, sig);
        double td = dc_tune_time(g, i, "dnnl", RUNS);
        double tj = dc_tune_time(g, i, "jit", RUNS);
        double tt = tuned ? dc_tune_time(g, i, tuned, RUNS) : td;
        const char *rule = dc_contraction_default(g, i);
        double tr = strcmp(rule, "jit") == 0 ? tj : td;
        for (int s = 0; s < 1 + (fl < SMALL_FLOPS); s++) {
            tot[s][0] += count * td;
            tot[s][1] += count * tr;
            tot[s][2] += count * tt;
        }
        char jit[16];
        snprintf(jit, sizeof jit, tj > 0 ? "%.1f" : "-", 1e6 * tj);
        char *cut = strstr(sig, " threads=");
        if (cut) *cut = 0;
        printf("%4d %9.2f %10.1f %10s %10.1f %7.2fx  %-58s %s\n", count, fl * 1e-6, 1e6 * td, jit, 1e6 * tt, td / tt,
               tuned ? tuned : "(none)", sig);
    }
    for (int s = 0; s < 2; s++)
        printf("%s per step: oneDNN alone %.2f ms, default rule %.2f ms, tuned %.2f ms: tuned %.2fx oneDNN\n",
               s ? "small contractions (< 10 MFLOP)" : "all contractions", 1e3 * tot[s][0], 1e3 * tot[s][1],
               1e3 * tot[s][2], tot[s][0] / tot[s][2]);
    dc_tune_db_free(db);
    dc_graph_free(g);
}

int main(int argc, char **argv) {
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: contractions (no arguments)\n");
        return 2;
    }
    if (!bench_has_avx512()) {
        fprintf(stderr, "contractions: this CPU has no AVX-512F, which the FMA-peak loop needs\n");
        return 1;
    }
    char load[64];
    bench_loadavg(load, sizeof load);
    double best, median = bench_fma_peak(7, &best);
    printf("%d threads, load average %s; FMA peak (AVX-512): best %.1f GFLOP/s, median %.1f\n\n",
           omp_get_max_threads(), load, best, median);
    big_gemm(best);
    model_shapes();
    bench_loadavg(load, sizeof load);
    printf("\nload average at the end %s\n", load);
    return 0;
}
