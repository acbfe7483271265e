/* contractions.c — GFLOP/s of disco's oneDNN contractions (conv2d forward, backward-data,
 * backward-weights; linear forward and its two backward matmuls) on the shapes of the
 * fmnist-cnn model (models/fmnist_cnn.c) at batch 128, next to the ref kernels on the same
 * shapes and an AVX-512 FMA-peak loop measured in the same run. Each figure is the median
 * of 5 repetitions; a repetition runs the kernel enough times to last >= 20 ms. Run with
 * OMP_NUM_THREADS=2. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench_util.h"
#include "codegen/codegen.h"

#define REPS 5
#define MIN_REP_SECONDS 0.02

/* ---- kernels under test --------------------------------------------------------------- */

typedef enum { K_CONV, K_CONV_BWD_DATA, K_CONV_BWD_WEIGHT, K_MATMUL } kernel;

/* One benchmarked contraction: operands in[0], in[1] -> out. */
typedef struct {
    const char *layer, *pass;
    kernel k;
    dc_conv_attr conv;
    dc_matmul_attr mm;
    dc_tensor *in[2], *out;
    double flops;
    dc_graph *g;   /* the one-node graph the ref kernel evaluates */
    int node;
} bench;

static dc_tensor *tensor(int rank, const int64_t *dims) {
    dc_type t = { .dtype = DC_F32, .shape = { .rank = rank } };
    memcpy(t.shape.dim, dims, (size_t)rank * sizeof(int64_t));
    dc_tensor *x = dc_tensor_new(&t);
    float *p = x->data;
    for (int64_t i = 0; i < dc_numel(&t.shape); i++) p[i] = 2.0f * dc_rng_uniform01(1, 2, (uint64_t)i) - 1.0f;
    return x;
}

static bool run_dnnl(bench *b, char *err, size_t len) {
    switch (b->k) {
    case K_CONV: return dc_dnnl_conv2d(b->in[0], b->in[1], b->conv, NULL, b->out, err, len);
    case K_CONV_BWD_DATA: return dc_dnnl_conv2d_bwd_data(b->in[0], b->in[1], b->conv, b->out, err, len);
    case K_CONV_BWD_WEIGHT: return dc_dnnl_conv2d_bwd_weight(b->in[0], b->in[1], b->conv, b->out, NULL, err, len);
    default: return dc_dnnl_matmul(b->in[0], b->in[1], b->mm, NULL, b->out, err, len);
    }
}

static bool run_ref(bench *b, char *err, size_t len) {
    return dc_ref_eval(b->g, &b->g->nodes[b->node], (const dc_tensor *const *)b->in, b->out, 0, err, len);
}

/* Builds the one-node graph of b for the ref kernel (inputs, then the op). */
static void make_graph(bench *b) {
    static const dc_op ops[] = { [K_CONV] = DC_OP_CONV2D, [K_CONV_BWD_DATA] = DC_OP_CONV2D_BWD_DATA,
                                 [K_CONV_BWD_WEIGHT] = DC_OP_CONV2D_BWD_WEIGHT, [K_MATMUL] = DC_OP_MATMUL };
    b->g = dc_graph_new("bench");
    int in[2];
    for (int i = 0; i < 2; i++) {
        char name[8];
        snprintf(name, sizeof name, "x%d", i);
        in[i] = dc_graph_emit(b->g, DC_OP_INPUT, 0, NULL, NULL, &b->in[i]->type, name, NULL, 0, NULL, 0);
    }
    dc_attr a;
    memset(&a, 0, sizeof a);
    if (b->k == K_MATMUL) a.matmul = b->mm;
    else a.conv = b->conv;
    char err[DC_ERR_LEN];
    b->node = dc_graph_emit(b->g, ops[b->k], 2, in, &a, &b->out->type, NULL, NULL, 0, err, sizeof err);
}

/* Median GFLOP/s of run over REPS repetitions; 0 if the kernel fails. */
static double measure(bench *b, bool (*run)(bench *, char *, size_t), char *err, size_t len) {
    if (!run(b, err, len)) return 0;
    double t0 = dc_seconds();
    if (!run(b, err, len)) return 0;
    double once = dc_seconds() - t0;
    int n = once >= MIN_REP_SECONDS ? 1 : (int)(MIN_REP_SECONDS / (once + 1e-9)) + 1;
    double r[REPS];
    for (int i = 0; i < REPS; i++) {
        t0 = dc_seconds();
        for (int j = 0; j < n; j++) run(b, err, len);
        r[i] = b->flops * n / (dc_seconds() - t0) * 1e-9;
    }
    return dc_median(r, REPS);
}

/* ---- the CNN's shapes ----------------------------------------------------------------- */

enum { BATCH = 128 };

static bench mk(const char *layer, const char *pass, kernel k, dc_conv_attr conv, dc_matmul_attr mm,
                dc_tensor *a, dc_tensor *b, dc_tensor *out, double flops) {
    return (bench){ .layer = layer, .pass = pass, .k = k, .conv = conv, .mm = mm, .in = { a, b }, .out = out,
                    .flops = flops };
}

/* The three passes of a 3x3 pad-1 conv on [BATCH,h,h,c] -> o channels. */
static int add_conv(bench *bs, int n, const char *layer, int64_t h, int64_t c, int64_t o) {
    dc_conv_attr a = { .stride = { 2, { 1, 1 } }, .pad = { 2, { 1, 1 } }, .groups = 1 };
    int64_t dx[4] = { BATCH, h, h, c }, dw[4] = { 3, 3, c, o }, dy[4] = { BATCH, h, h, o };
    double flops = 2.0 * BATCH * h * h * o * 9 * c;
    dc_matmul_attr none = { false, false };
    bs[n++] = mk(layer, "fwd", K_CONV, a, none, tensor(4, dx), tensor(4, dw), tensor(4, dy), flops);
    bs[n++] = mk(layer, "bwd-data", K_CONV_BWD_DATA, a, none, tensor(4, dy), tensor(4, dw), tensor(4, dx), flops);
    bs[n++] = mk(layer, "bwd-weight", K_CONV_BWD_WEIGHT, a, none, tensor(4, dx), tensor(4, dy), tensor(4, dw), flops);
    return n;
}

/* The three matmuls of a linear layer [BATCH,i] @ [i,o]: y = x w, dx = dy w^T, dw = x^T dy. */
static int add_linear(bench *bs, int n, const char *layer, int64_t i, int64_t o) {
    int64_t dx[2] = { BATCH, i }, dw[2] = { i, o }, dy[2] = { BATCH, o };
    double flops = 2.0 * BATCH * i * o;
    dc_conv_attr c = { .groups = 1 };
    bs[n++] = mk(layer, "fwd", K_MATMUL, c, (dc_matmul_attr){ false, false }, tensor(2, dx), tensor(2, dw),
                 tensor(2, dy), flops);
    bs[n++] = mk(layer, "bwd-data", K_MATMUL, c, (dc_matmul_attr){ false, true }, tensor(2, dy), tensor(2, dw),
                 tensor(2, dx), flops);
    bs[n++] = mk(layer, "bwd-weight", K_MATMUL, c, (dc_matmul_attr){ true, false }, tensor(2, dx), tensor(2, dy),
                 tensor(2, dw), flops);
    return n;
}

int main(void) {
    if (!bench_has_avx512()) {
        fprintf(stderr, "contractions: this CPU has no AVX-512F, which the FMA-peak loop needs\n");
        return 1;
    }
    bench bs[32];
    int n = 0;
    n = add_conv(bs, n, "conv1 28x28 1->32", 28, 1, 32);
    n = add_conv(bs, n, "conv2 28x28 32->32", 28, 32, 32);
    n = add_conv(bs, n, "conv3 14x14 32->64", 14, 32, 64);
    n = add_linear(bs, n, "fc1 3136->128", 7 * 7 * 64, 128);
    n = add_linear(bs, n, "fc2 128->10", 128, 10);
    double peak = bench_fma_peak(REPS, NULL);
    printf("batch %d, %d threads, FMA peak (AVX-512, median of %d) %.1f GFLOP/s\n\n", BATCH,
           omp_get_max_threads(), REPS, peak);
    printf("%-20s %-10s %8s %10s %7s %10s  %s\n", "layer", "pass", "MFLOP", "dnnl GF/s", "%peak", "ref GF/s",
           "dnnl implementation");
    double total_flops = 0, total_dnnl = 0;
    for (int i = 0; i < n; i++) {
        bench *b = &bs[i];
        char err[DC_ERR_LEN] = "", rerr[DC_ERR_LEN] = "";
        make_graph(b);
        double d = measure(b, run_dnnl, err, sizeof err);
        char impl[256];
        snprintf(impl, sizeof impl, "%s", d > 0 ? dc_dnnl_last_impl() : err);
        double r = b->node >= 0 ? measure(b, run_ref, rerr, sizeof rerr) : 0;
        char rs[16];
        if (r > 0) snprintf(rs, sizeof rs, "%10.1f", r);
        else snprintf(rs, sizeof rs, "%10s", "n/a");
        printf("%-20s %-10s %8.1f %10.1f %6.1f%% %s  %s\n", b->layer, b->pass, b->flops * 1e-6, d,
               100.0 * d / peak, rs, impl);
        if (d > 0) {
            total_flops += b->flops;
            total_dnnl += b->flops / (d * 1e9);
        }
        for (int k = 0; k < 2; k++) dc_tensor_free(b->in[k]);
        dc_tensor_free(b->out);
        dc_graph_free(b->g);
    }
    printf("\nall passes, one training step's contractions: %.1f GFLOP/s (%.1f%% of peak)\n",
           total_flops / total_dnnl * 1e-9, 100.0 * total_flops / total_dnnl * 1e-9 / peak);
    dc_dnnl_shutdown();
    return 0;
}
