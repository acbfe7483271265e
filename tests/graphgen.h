/* graphgen.h — a seeded generator of random small graphs of contractions with epilogues,
 * for differential tests of kernel providers: 1-3 chained stages, each a conv2d (NHWC,
 * kernel 1/3/5, stride 1/2, pad 0-2, groups 1/2/depthwise), a matmul (transposes, rank 2-4,
 * broadcast batch dims) or a linear, followed by random epilogues (bias param [O] or
 * [1,..,1,O], relu/gelu/silu, residual add of a same-shaped value), ending in a scalar loss
 * (sum(y * R) with R an input, or mse(y, T) with T an input). The same seed always gives
 * the same graph. */
#ifndef DC_GRAPHGEN_H
#define DC_GRAPHGEN_H

#include "codegen/codegen.h"
#include "runtime/runtime.h"

#define GG_MAX_KINKS 8
/* gg_build_loops's error budget per approximated function (exp, log, tanh, ...) */
#define GG_APPROX 8

typedef struct {
    dc_graph *g;
    int y;                   /* the last stage's value (after its epilogue) */
    int loss;                /* the scalar f32 loss */
    int n_contractions;      /* contraction nodes in the forward graph */
    int64_t k_total;         /* sum of the reduction lengths of every contraction, bias and
                                unbroadcast sum, forward and backward: the error-growth bound */
    int n_kinks;
    int kinks[GG_MAX_KINKS]; /* inputs of relu nodes: values whose sign decides a gradient */
    char summary[256];       /* e.g. "conv2d k3 s2 p1 g2 +bias relu | linear 6 +res | mse" */
} gg_graph;

/* Builds graph number seed into out (out->g is new; the caller frees it). false and err if
 * the DSL rejected a node (a generator bug). */
bool gg_build(uint64_t seed, gg_graph *out, char *err, size_t len);

/* Builds loop graph number seed (for the jit's differential test): an input of rank 1-4
 * through 2-4 stages of elementwise ops (unary functions, binary ops with broadcast params or
 * inputs, transposed or reshaped reads), row reductions (softmax, log_softmax, layer_norm,
 * group_norm, x - mean / max / logsumexp with keepdims, sum / mean / max over trailing axes)
 * and i32 compares, where and casts, then y and the loss sum(y * R). Decisions that flip on
 * rounding (relu, abs, maximum, minimum, compares, f32 -> i32 casts) only ever see values
 * computed by exactly rounded ops from the inputs, so every provider takes the same branch.
 * out->k_total is the graph's error budget (see test_diff_jit.c); n_contractions, n_kinks 0. */
bool gg_build_loops(uint64_t seed, gg_graph *out, char *err, size_t len);

/* Sets every INPUT of g in e to U[-1, 1) values keyed by (seed, input name, element). */
bool gg_set_inputs(dc_exec *e, const dc_graph *g, uint64_t seed, char *err, size_t len);

/* Compiles g for backend and runs it once on the graph's inputs (gg_set_inputs); NULL and err
 * on failure. */
dc_exec *gg_run(const dc_graph *g, uint64_t seed, dc_backend backend, char *err, size_t len);
/* Root mean square of an f32 tensor. */
double gg_rms(const dc_tensor *t);
/* The differential tests' tolerance for an expected value: rel * (|want| + scale). */
double gg_tol_at(double rel, double scale, float want);

#endif
