/* test_diff_dnnl.c — differential test of the oneDNN provider against the ref provider on
 * random graphs (tests/graphgen.h): chains of conv2d / matmul / linear with bias, activation
 * and residual epilogues, ending in a scalar loss, with dc_grad w.r.t. every param, every
 * input and the forward output y appended. Each graph runs six ways:
 *   ref           DC_BACKEND_REF on the graph as built: the oracle;
 *   dnnl          DC_BACKEND_DNNL on the same graph (conv2d_bwd_data / conv2d_bwd_weight and
 *                 the backward matmuls run on oneDNN too);
 *   dnnl+passes   DC_BACKEND_DNNL after fuse-contraction (when registered) and plan-memory;
 *   ref+passes    DC_BACKEND_REF after the same passes (the fused ops' ref kernels);
 *   auto+passes   DC_BACKEND_AUTO after the same passes (a fused contraction that keeps its
 *                 pre-activation for the backward: oneDNN, then a JIT activation kernel);
 *   forward dnnl+passes, forward ref+passes: the same on the graph without its gradients,
 *                 where no backward node reads a pre-activation, so whole epilogues fuse.
 * Every output (y, the loss, every gradient) of the last six is compared with the oracle's,
 * and every dnnl step must really be oneDNN's (a non-reference implementation): a
 * contraction step of a dnnl run may be ref only when its note says why (an in-place memory
 * plan). DISCO_DIFF_SEED=N runs graph N alone.
 *
 * Tolerance, and why. Both providers sum the K products of a contraction in f32 in different
 * orders (ref sequentially, oneDNN blocked and vectorised). With rounding errors of random
 * sign, the error of a sum of K terms of random sign is ~ u sqrt(K) times the rms of such
 * sums (u = 2^-24): small relative to the value where the value is typical, and absolute
 * for a value that cancelled to near 0. Errors of chained contractions add up (the input of a
 * stage carries the relative error of the stages before), and so do the backward ones: the
 * generator sums the reduction lengths of every contraction, bias sum and unbroadcast sum,
 * forward and backward, into K (k_total). An element of a compared value v passes when
 *     |got - ref| <= C sqrt(K) u (|ref| + gg_rms(ref over v)),   C = 4,
 * C covering the activations' few ulps and the statistics of the random walk (a few sigma
 * over ~10^5 elements). The scalar loss is compared under the tolerance propagated from y:
 * sum_i |dL/dy_i| tol(y_i) + C sqrt(K) u |L|, with dL/dy from the oracle. The summary line
 * reports the worst error / tolerance seen: 0.2 on these 240 graphs with oneDNN 2.6 (1 and 2
 * threads), while the bugs this test found were off by O(|ref|), 10^4-10^5 tolerances.
 * relu's derivative jumps at 0: where a relu input is within its tolerance of 0 the two
 * providers may legitimately take different sides, so such a graph is redrawn (seed + 2^32
 * per redraw) and counted. */
#include "tests/test.h"

#include <stdlib.h>

#include "codegen/codegen.h"
#include "passes/passes.h"
#include "tests/graphgen.h"

#define N_GRAPHS 240
#define FIRST_SEED 1
#define TOL_C 4.0
#define MAX_REDRAWS 8
#define REDRAW_STEP (1ull << 32)
#define MAX_WRT 48
#define OUT_Y 0
#define OUT_LOSS 1
#define OUT_DY 2

typedef struct {
    gg_graph gg;
    double rel;          /* C sqrt(K) u */
    char *forward_text;  /* the graph before dc_grad, for failure messages */
} diff_graph;

typedef struct {
    int graphs, failed, redrawn, fused, contraction_steps, ref_fallbacks, pairs;
    double worst;
} diff_stats;

static diff_stats stats;

/* Builds graph seed; with_grads: with the gradients of the loss w.r.t. y, every param and
 * every input as outputs 2, 3, ... (named d_y, d_<name>). */
static bool build(uint64_t seed, bool with_grads, diff_graph *d, char *err, size_t len) {
    memset(d, 0, sizeof *d);
    if (!gg_build(seed, &d->gg, err, len)) return false;
    dc_graph *g = d->gg.g;
    d->forward_text = dc_print(g);
    d->rel = TOL_C * sqrt((double)d->gg.k_total) * 0x1p-24;
    if (!with_grads) return true;
    int wrt[MAX_WRT], grads[MAX_WRT], n = 0;
    wrt[n++] = d->gg.y;
    for (int i = 0; i < g->n_nodes && n < MAX_WRT; i++)
        if (g->nodes[i].op == DC_OP_INPUT || g->nodes[i].op == DC_OP_PARAM) wrt[n++] = i;
    if (!dc_grad(g, d->gg.loss, wrt, n, grads, err, len)) return false;
    for (int k = 0; k < n; k++) {
        char name[64];
        snprintf(name, sizeof name, "d_%s", k == 0 ? "y" : g->nodes[wrt[k]].name);
        dc_graph_add_output(g, grads[k], name);
    }
    return true;
}

static void release(diff_graph *d) {
    dc_graph_free(d->gg.g);
    free(d->forward_text);
}


/* True when some element of t is within its tolerance of 0. */
static bool near_zero(const dc_tensor *t, double rel) {
    const float *p = t->data;
    double scale = gg_rms(t);
    for (int64_t i = 0; i < dc_numel(&t->type.shape); i++)
        if (fabs((double)p[i]) <= gg_tol_at(rel, scale, p[i])) return true;
    return false;
}

/* The loss's tolerance: y's propagated through dL/dy, plus the loss's own rounding. */
static double loss_tol(const dc_exec *ref, double rel) {
    const dc_tensor *y = dc_exec_output(ref, OUT_Y), *dy = dc_exec_output(ref, OUT_DY);
    const float *yp = y->data, *dp = dy->data;
    double scale = gg_rms(y), t = rel * fabs((double)*(const float *)dc_exec_output(ref, OUT_LOSS)->data);
    for (int64_t i = 0; i < dc_numel(&y->type.shape); i++) t += fabs((double)dp[i]) * gg_tol_at(rel, scale, yp[i]);
    return t;
}

/* Compares every output of got with the oracle; false and a message at the first element
 * out of tolerance. Tracks the worst ratio. */
static bool compare(const dc_graph *g, const dc_exec *got, const dc_exec *ref, double rel,
                    char *err, size_t len) {
    for (int o = 0; o < g->n_outputs; o++) {
        const dc_tensor *w = dc_exec_output(ref, o), *a = dc_exec_output(got, o);
        const float *wp = w->data, *ap = a->data;
        double scale = gg_rms(w), ltol = o == OUT_LOSS ? loss_tol(ref, rel) : 0;
        for (int64_t i = 0; i < dc_numel(&w->type.shape); i++) {
            double tol = o == OUT_LOSS ? ltol : gg_tol_at(rel, scale, wp[i]);
            double diff = fabs((double)ap[i] - wp[i]), r = diff == 0 ? 0 : diff / tol;
            if (r > stats.worst || r != r) stats.worst = r;
            if (!(diff <= tol)) {
                char name[32];
                snprintf(err, len, "output %s element %lld = %.9g, ref %.9g, tolerance %.3g",
                         dc_graph_output_name(g, o, name, sizeof name), (long long)i, (double)ap[i],
                         (double)wp[i], tol);
                return false;
            }
        }
    }
    return true;
}

/* The ops the dnnl rule gives to oneDNN (codegen/lower.c). */
static bool dnnl_op(dc_op op) {
    return op == DC_OP_MATMUL || op == DC_OP_LINEAR || op == DC_OP_CONV2D || op == DC_OP_CONV2D_BWD_DATA ||
           op == DC_OP_CONV2D_BWD_WEIGHT || op == DC_OP_FUSED_CONV2D || op == DC_OP_FUSED_MATMUL;
}

/* Every contraction step of a dnnl run is oneDNN's with a non-reference implementation, or
 * ref with a note saying why. */
static bool check_providers(dc_exec *e, const dc_graph *g, char *err, size_t len) {
    int n;
    const dc_step *s = dc_exec_steps(e, &n);
    for (int k = 0; k < n; k++) {
        const dc_node *nd = &g->nodes[s[k].node];
        if (!dnnl_op(nd->op)) continue;
        stats.contraction_steps++;
        stats.pairs += s[k].span > 0;
        bool on_dnnl = strcmp(s[k].provider, "dnnl") == 0;
        stats.ref_fallbacks += !on_dnnl;
        const char *why = on_dnnl ? (s[k].impl[0] && !strstr(s[k].impl, "ref") ? NULL : "implementation")
                                  : (s[k].note[0] ? NULL : "no note");
        if (why) {
            char label[32];
            snprintf(err, len, "node %s (%s) on %s, impl '%s': %s", dc_node_label(g, s[k].node, label, sizeof label),
                     dc_op_name(nd->op), s[k].provider, s[k].impl, why);
            return false;
        }
    }
    return true;
}

/* Runs g under backend and compares its outputs with the oracle's first ones. */
static bool check_variant(const dc_graph *g, const char *label, dc_backend backend, uint64_t seed,
                          const dc_exec *ref, double rel, char *err, size_t len) {
    char why[DC_ERR_LEN] = "";
    dc_exec *e = gg_run(g, seed, backend, why, sizeof why);
    bool ok = e && (backend != DC_BACKEND_DNNL || check_providers(e, g, why, sizeof why)) &&
              compare(g, e, ref, rel, why, sizeof why);
    if (!ok) snprintf(err, len, "%s: %s", label, why);
    dc_exec_free(e);
    return ok;
}

/* The passes after which the graph runs again: fuse-contraction when registered, then
 * plan-memory. */
static const char *pipeline(void) {
    return dc_pass_find("fuse-contraction") ? "fuse-contraction,plan-memory" : "plan-memory";
}

static bool has_fused(const dc_graph *g) {
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_FUSED_CONV2D || g->nodes[i].op == DC_OP_FUSED_MATMUL) return true;
    return false;
}

/* Whether n is a fused contraction with gelu or silu. */
static bool smooth_activation(const dc_node *n) {
    dc_activation a = dc_fused_epilogue_of(n).act;
    return a == DC_ACTIVATION_GELU || a == DC_ACTIVATION_SILU;
}

/* The passed variants: the graph rebuilt from its seed (with its gradients, or the forward
 * alone, whose epilogues have no other readers and fuse whole), through the pipeline, under
 * both backends. */
static bool check_passed(uint64_t seed, bool with_grads, const dc_exec *ref, double rel, char *err,
                         size_t len) {
    diff_graph p;
    bool ok = build(seed, with_grads, &p, err, len) &&
              dc_run_pipeline(p.gg.g, pipeline(), &(dc_pass_opts){ 0 }, err, len);
    if (ok && has_fused(p.gg.g)) stats.fused++;
    /* auto: the kept pre-activations' activations are jit kernels, whose exp and tanh are
     * polynomials within a few ulps (GG_APPROX, test_diff_jit.c): one more independent error
     * source per smooth activation, added in quadrature */
    int smooth = 0;
    for (int i = 0; ok && i < p.gg.g->n_nodes; i++) smooth += smooth_activation(&p.gg.g->nodes[i]);
    double rel_auto = TOL_C * sqrt((double)p.gg.k_total + (double)smooth * GG_APPROX * GG_APPROX) * 0x1p-24;
    ok = ok && check_variant(p.gg.g, with_grads ? "dnnl+passes" : "forward dnnl+passes", DC_BACKEND_DNNL, seed,
                             ref, rel, err, len) &&
         check_variant(p.gg.g, with_grads ? "ref+passes" : "forward ref+passes", DC_BACKEND_REF, seed, ref, rel,
                       err, len) &&
         (!with_grads || check_variant(p.gg.g, "auto+passes", DC_BACKEND_AUTO, seed, ref, rel_auto, err, len));
    release(&p);
    return ok;
}

/* Whether some relu input of the oracle run is within its tolerance of the kink. */
static bool near_kink(dc_exec *ref, const diff_graph *d) {
    for (int k = 0; k < d->gg.n_kinks; k++)
        if (near_zero(dc_exec_value(ref, d->gg.kinks[k]), d->rel)) return true;
    return false;
}

/* One graph: draw (redrawing near relu kinks), run the oracle, check the three variants. */
static void check_graph(uint64_t number) {
    char err[2 * DC_ERR_LEN] = "";
    diff_graph d;
    dc_exec *ref = NULL;
    uint64_t seed = number;
    bool ok = false;
    for (int draw = 0; draw < MAX_REDRAWS; draw++, seed += REDRAW_STEP) {
        if (!(ok = build(seed, true, &d, err, sizeof err))) break;
        if (!(ok = (ref = gg_run(d.gg.g, seed, DC_BACKEND_REF, err, sizeof err)) != NULL)) break;
        if (!near_kink(ref, &d)) break;
        stats.redrawn++;
        dc_exec_free(ref);
        release(&d);
        memset(&d, 0, sizeof d);
        ref = NULL;
        ok = false;
        snprintf(err, sizeof err, "every draw came near a relu kink");
    }
    ok = ok && check_variant(d.gg.g, "dnnl", DC_BACKEND_DNNL, seed, ref, d.rel, err, sizeof err) &&
         check_passed(seed, true, ref, d.rel, err, sizeof err) &&
         check_passed(seed, false, ref, d.rel, err, sizeof err);
    stats.graphs++;
    char name[48];
    snprintf(name, sizeof name, "diff_dnnl graph %llu", (unsigned long long)number);
    if (!ok) stats.failed++;
    dc_test_case(name, ok, "seed %llu (%s), K %lld: %s\n%s  replay: DISCO_DIFF_SEED=%llu run_tests diff",
                 (unsigned long long)seed, d.gg.summary, (long long)d.gg.k_total, err,
                 d.forward_text ? d.forward_text : "", (unsigned long long)number);
    dc_exec_free(ref);
    release(&d);
}

TEST(diff_dnnl) {
    memset(&stats, 0, sizeof stats);
    const char *one = getenv("DISCO_DIFF_SEED");
    if (one) check_graph(strtoull(one, NULL, 0));
    else
        for (uint64_t i = 0; i < N_GRAPHS; i++) check_graph(FIRST_SEED + i);
    printf("diff: %d graphs ref vs dnnl, forward + gradients, %d failed, worst %.2g of tolerance "
           "(%d redrawn near a relu kink, %d passed graphs with fused contractions, %d of %d contraction "
           "steps on ref with a note, %d steps keeping a pre-activation)\n",
           stats.graphs, stats.failed, stats.worst, stats.redrawn, stats.fused, stats.ref_fallbacks,
           stats.contraction_steps, stats.pairs);
}
