/* test_diff_jit.c — differential test of the jit provider (codegen/lower_jit.c through
 * dc_compile) against the ref provider.
 *
 * Random graphs (gg_build_loops, tests/graphgen.h): elementwise chains with broadcasting,
 * transposed and reshaped reads, softmax / log_softmax / layer_norm / group_norm, x - mean /
 * logsumexp / max, sum / mean / max / logsumexp over trailing axes, i32 compares, where and
 * casts, a scalar loss, and dc_grad of the loss w.r.t. y, every input and every param. Each
 * graph runs as built under DC_BACKEND_REF (the oracle), then after fuse-loops and
 * plan-memory under DC_BACKEND_JIT, twice (two programs): every output, forward and gradient,
 * is compared with the oracle's and the two jit runs must agree bit for bit (the suite runs
 * with 2 threads). Every group of a jit program must run on jit, or on ref with a note.
 * DISCO_DIFF_SEED=N runs graph N alone. The kernels go to a fresh cache directory of this
 * test's own under /dev/shm when it exists (the cache fsyncs every entry, which on a disk costs
 * more than compiling), else to the runner's temporary cache (tests/main.c sets
 * DISCO_CACHE_DIR); the directory is removed at the end. Graphs share kernels through the jit's
 * table of loaded kernels.
 *
 * Tolerance, and why. Exactly rounded elementwise ops give the same bits on both providers
 * (the jit evaluates the ops.def formulas without fast-math), and the generator lets rounding-sensitive
 * decisions (relu, compares, casts to i32, max) read only such values. The differences come
 * from exp/log/tanh/sigmoid/gelu, which the jit approximates with polynomials (a few ulps),
 * and from folds: the ref kernels accumulate sums in double, the jit in f32 vector lanes.
 * The generator sums an error budget K over the graph: GG_APPROX = 8 per approximated
 * function, n per fold of n terms (f32 rounding of a sum of n terms is below n u sum|x|), and
 * an element passes when
 *     |jit - ref| <= C K u (|ref| + gg_rms(ref over the output)),   C = 4, u = 2^-24,
 * the rms term covering values that cancel to near 0 (x - mean); a gradient's scale is at least
 * gg_rms(dL/dy) times the number of elements of y each of its elements sums over (a gradient
 * that cancels analytically, through softmax or a norm, is rounding noise of that size). The
 * generator keeps norms well conditioned (rows of >= 4 jittered values). The loss sum(y R)
 * takes y's tolerance through |R| = |dL/dy| plus its own fold. The summary line reports the
 * worst error as a fraction of its tolerance.
 *
 * Fused patterns: every tests/passes/fuse_loops_*.dcir golden input, after its fuse-loops
 * and plan-memory, must run each of its groups as one jit kernel and match ref within
 * 1e-5 (1 + |ref|) (inputs N(0, 0.25); rows of at most a few hundred). */
#include "tests/test.h"

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "passes/passes.h"
#include "tests/graphgen.h"

#define N_GRAPHS 200
#define FIRST_SEED 1
#define TOL_C 4.0
#define MAX_WRT 48
#define OUT_Y 0
#define OUT_LOSS 1
#define OUT_DY 2
#define GOLDEN_TOL 1e-5

typedef struct {
    int graphs, failed, jit_steps, ref_groups;
    double worst;
} diff_stats;

static diff_stats stats;

/* Graph seed with the gradients of its loss w.r.t. y, every input and every param as outputs
 * 2, 3, ...; *text (may be NULL) receives the forward graph's text. */
static bool build(uint64_t seed, gg_graph *gg, char **text, char *err, size_t len) {
    if (!gg_build_loops(seed, gg, err, len)) return false;
    dc_graph *g = gg->g;
    if (text) *text = dc_print(g);
    int wrt[MAX_WRT], grads[MAX_WRT], n = 0;
    wrt[n++] = gg->y;
    for (int i = 0; i < g->n_nodes && n < MAX_WRT; i++)
        if (g->nodes[i].op == DC_OP_INPUT || g->nodes[i].op == DC_OP_PARAM) wrt[n++] = i;
    if (!dc_grad(g, gg->loss, wrt, n, grads, err, len)) return false;
    for (int k = 0; k < n; k++) {
        char name[64];
        snprintf(name, sizeof name, "d_%s", k == 0 ? "y" : g->nodes[wrt[k]].name);
        dc_graph_add_output(g, grads[k], name);
    }
    return true;
}


/* y's tolerance carried into the loss by dL/dy, plus the loss's own rounding */
static double loss_tol(const dc_exec *ref, double rel) {
    const dc_tensor *y = dc_exec_output(ref, OUT_Y), *dy = dc_exec_output(ref, OUT_DY);
    const float *yp = y->data, *dp = dy->data;
    double scale = gg_rms(y), t = rel * fabs((double)*(const float *)dc_exec_output(ref, OUT_LOSS)->data);
    for (int64_t i = 0; i < dc_numel(&y->type.shape); i++) t += fabs((double)dp[i]) * gg_tol_at(rel, scale, yp[i]);
    return t;
}

/* The scale of output o's errors: its rms, and for a gradient at least the size of a sum of
 * the upstream gradient over the elements of y that one of its elements collects (a gradient
 * that cancels to ~0 still carries the rounding of its terms). */
static double scale_of(const dc_exec *ref, int o) {
    const dc_tensor *w = dc_exec_output(ref, o), *y = dc_exec_output(ref, OUT_Y);
    double s = gg_rms(w);
    if (o < OUT_DY) return s;
    double floor = gg_rms(dc_exec_output(ref, OUT_DY)) * (double)dc_numel(&y->type.shape) / (double)dc_numel(&w->type.shape);
    return s > floor ? s : floor;
}

/* Every f32 output of got against the oracle's; false and a message at the first element out
 * of tolerance. */
static bool compare(const dc_graph *g, const dc_exec *got, const dc_exec *ref, double rel, char *err, size_t len) {
    for (int o = 0; o < g->n_outputs; o++) {
        const dc_tensor *w = dc_exec_output(ref, o), *a = dc_exec_output(got, o);
        const float *wp = w->data, *ap = a->data;
        double scale = scale_of(ref, o), ltol = o == OUT_LOSS ? loss_tol(ref, rel) : 0;
        for (int64_t i = 0; i < dc_numel(&w->type.shape); i++) {
            double tol = o == OUT_LOSS ? ltol : gg_tol_at(rel, scale, wp[i]);
            double diff = fabs((double)ap[i] - wp[i]), r = diff == 0 ? 0 : diff / tol;
            if (r > stats.worst || r != r) stats.worst = r;
            if (!(diff <= tol)) {
                char name[32];
                snprintf(err, len, "output %s element %lld = %.9g, ref %.9g, tolerance %.3g",
                         dc_graph_output_name(g, o, name, sizeof name), (long long)i, (double)ap[i], (double)wp[i], tol);
                return false;
            }
        }
    }
    return true;
}

static bool same_bits(const dc_graph *g, const dc_exec *a, const dc_exec *b, char *err, size_t len) {
    for (int o = 0; o < g->n_outputs; o++) {
        const dc_tensor *x = dc_exec_output(a, o), *y = dc_exec_output(b, o);
        if (memcmp(x->data, y->data, (size_t)dc_numel(&x->type.shape) * dc_dtype_size(x->type.dtype)) != 0) {
            char name[32];
            snprintf(err, len, "two jit runs differ in output %s", dc_graph_output_name(g, o, name, sizeof name));
            return false;
        }
    }
    return true;
}

/* Every elementwise, reduction and norm node of a jit program runs in a jit kernel (a loop
 * kernel, "jit:HASH", or for a contraction a GEMM, "gemm ..."), or on ref with a note on its
 * group's last step; counts both. With strict, a ref group is an error. */
static bool check_steps(dc_exec *e, const dc_graph *g, bool strict, char *err, size_t len) {
    int n;
    const dc_step *s = dc_exec_steps(e, &n);
    for (int k = 0; k < n; k++) {
        const dc_node *nd = &g->nodes[s[k].node];
        if (strcmp(s[k].provider, "jit") == 0) {
            stats.jit_steps++;
            bool gemm = dc_op_get(nd->op)->kind == DC_KIND_CONTRACTION && strncmp(s[k].impl, "gemm ", 5) == 0;
            if (strncmp(s[k].impl, "jit:", 4) != 0 && !gemm)
                return snprintf(err, len, "jit step with impl '%s'", s[k].impl), false;
            continue;
        }
        int id = g->group ? g->group[s[k].node] : 0;
        dc_op_kind kind = dc_op_get(nd->op)->kind;
        if (!dc_op_groupable(nd->op) || kind == DC_KIND_SOURCE || kind == DC_KIND_MOVEMENT) continue;
        if (id && k + 1 < n && g->group[s[k + 1].node] == id) continue; /* the note is on the last */
        stats.ref_groups++;
        char label[32];
        if (strict || !s[k].note[0]) {
            snprintf(err, len, "node %s (%s) of a group runs on ref: '%s'", dc_node_label(g, s[k].node, label, sizeof label),
                     dc_op_name(nd->op), s[k].note);
            return false;
        }
    }
    return true;
}

/* The graph rebuilt, fused and planned, under jit twice: against the oracle and bitwise. */
static bool check_jit(uint64_t seed, const dc_exec *ref, double rel, char *err, size_t len) {
    gg_graph p;
    dc_exec *a = NULL, *b = NULL;
    bool ok = build(seed, &p, NULL, err, len) &&
              dc_run_pipeline(p.g, "fuse-loops,plan-memory", &(dc_pass_opts){ 0 }, err, len) &&
              (a = gg_run(p.g, seed, DC_BACKEND_JIT, err, len)) && check_steps(a, p.g, false, err, len) &&
              compare(p.g, a, ref, rel, err, len) && (b = gg_run(p.g, seed, DC_BACKEND_JIT, err, len)) &&
              same_bits(p.g, a, b, err, len);
    dc_exec_free(a);
    dc_exec_free(b);
    dc_graph_free(p.g);
    return ok;
}

static void check_graph(uint64_t seed) {
    char err[2 * DC_ERR_LEN] = "";
    char *text = NULL;
    gg_graph d;
    dc_exec *ref = NULL;
    bool ok = build(seed, &d, &text, err, sizeof err) && (ref = gg_run(d.g, seed, DC_BACKEND_REF, err, sizeof err));
    double rel = TOL_C * (double)(d.k_total + GG_APPROX) * 0x1p-24;
    ok = ok && check_jit(seed, ref, rel, err, sizeof err);
    stats.graphs++;
    stats.failed += !ok;
    char name[48];
    snprintf(name, sizeof name, "diff_jit graph %llu", (unsigned long long)seed);
    dc_test_case(name, ok, "(%s), K %lld: %s\n%s  replay: DISCO_DIFF_SEED=%llu run_tests diff_jit", d.summary,
                 (long long)d.k_total, err, text ? text : "", (unsigned long long)seed);
    dc_exec_free(ref);
    dc_graph_free(d.g);
    free(text);
}

/* A fresh kernel cache on tmpfs for the test's duration (see the header); the previous
 * DISCO_CACHE_DIR is kept in saved (malloc'd or NULL). false when there is no /dev/shm. */
static bool tmpfs_cache_begin(char *dir, char **saved) {
    const char *old = getenv("DISCO_CACHE_DIR");
    *saved = old ? strdup(old) : NULL;
    if (!mkdtemp(dir)) return false;
    setenv("DISCO_CACHE_DIR", dir, 1);
    return true;
}

static void tmpfs_cache_end(const char *dir, char *saved) {
    char err[DC_ERR_LEN];
    CHECK_MSG(dc_kcache_clear(err, sizeof err), "%s", err);
    CHECK(rmdir(dir) == 0);
    if (saved) setenv("DISCO_CACHE_DIR", saved, 1);
    else unsetenv("DISCO_CACHE_DIR");
    free(saved);
}

TEST(diff_jit) {
    char dir[] = "/dev/shm/disco_diff_jitXXXXXX", *saved;
    bool own = tmpfs_cache_begin(dir, &saved);
    memset(&stats, 0, sizeof stats);
    const char *one = getenv("DISCO_DIFF_SEED");
    if (one) check_graph(strtoull(one, NULL, 0));
    else
        for (uint64_t i = 0; i < N_GRAPHS; i++) check_graph(FIRST_SEED + i);
    dc_jit_stats js = dc_jit_get_stats();
    printf("diff_jit: %d graphs ref vs jit, forward + gradients, %d failed, worst %.2g of tolerance "
           "(%d jit steps, %d groups on ref with a note; two jit runs bitwise equal; %lld kernels compiled "
           "in %.0f ms, %lld shared)\n",
           stats.graphs, stats.failed, stats.worst, stats.jit_steps, stats.ref_groups, (long long)js.compiled,
           js.compile_ms, (long long)js.shared);
    if (own) tmpfs_cache_end(dir, saved);
    else free(saved);
}

/* ---- the fuse-loops goldens ------------------------------------------------------------- */

/* f32 inputs N(0, 0.25) by input position, i32 inputs zero; then one run. */
static bool feed_and_run(dc_exec *e, const dc_graph *g, char *err, size_t len) {
    for (int i = 0; i < dc_graph_n_inputs(g); i++) {
        dc_tensor *v = dc_exec_value(e, dc_graph_input(g, i));
        for (int64_t k = 0; v->type.dtype == DC_F32 && k < dc_numel(&v->type.shape); k++)
            ((float *)v->data)[k] = 0.5f * dc_rng_normal(5, (uint64_t)i, (uint64_t)k);
    }
    return dc_exec_run(e, err, len);
}

static bool outputs_near(const dc_graph *g, dc_exec *got, dc_exec *want, char *err, size_t len) {
    for (int o = 0; o < g->n_outputs; o++) {
        const dc_tensor *a = dc_exec_output(got, o), *b = dc_exec_output(want, o);
        for (int64_t k = 0; k < dc_numel(&b->type.shape); k++) {
            bool f = b->type.dtype == DC_F32;
            double x = f ? ((const float *)a->data)[k] : ((const int32_t *)a->data)[k];
            double y = f ? ((const float *)b->data)[k] : ((const int32_t *)b->data)[k];
            if (!(fabs(x - y) <= (f ? GOLDEN_TOL * (1 + fabs(y)) : 0)))
                return snprintf(err, len, "output %d element %lld: %.9g, ref %.9g", o, (long long)k, x, y), false;
        }
    }
    return true;
}

/* One golden: its input graph under ref, and after fuse-loops + plan-memory under jit with
 * every group on jit. */
static bool check_golden(const char *path, char *err, size_t len) {
    char *text = dc_test_read_file(path, NULL);
    char *mark = text ? strstr(text, "\n// EXPECT:\n") : NULL;
    if (!mark) {
        free(text);
        return snprintf(err, len, "no `// EXPECT:` line"), false;
    }
    dc_graph *g = dc_parse(text, (size_t)(mark - text) + 1, path, err, len);
    dc_graph *f = dc_parse(text, (size_t)(mark - text) + 1, path, err, len);
    free(text);
    dc_exec *ref = NULL, *jit = NULL;
    bool ok = g && f && dc_run_pipeline(f, "fuse-loops,plan-memory", &(dc_pass_opts){ 0 }, err, len) &&
              (ref = dc_compile(g, 1, DC_BACKEND_REF, err, len)) && feed_and_run(ref, g, err, len) &&
              (jit = dc_compile(f, 1, DC_BACKEND_JIT, err, len)) && check_steps(jit, f, true, err, len) &&
              feed_and_run(jit, f, err, len) && outputs_near(f, jit, ref, err, len);
    dc_exec_free(ref);
    dc_exec_free(jit);
    dc_graph_free(g);
    dc_graph_free(f);
    return ok;
}

TEST(diff_jit_fuse_loops_goldens) {
    DIR *d = opendir("tests/passes");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "fuse_loops_", 11) != 0 || !strstr(e->d_name, ".dcir")) continue;
        char path[512], err[DC_ERR_LEN] = "", name[300];
        snprintf(path, sizeof path, "tests/passes/%s", e->d_name);
        snprintf(name, sizeof name, "diff_jit golden %s", e->d_name);
        dc_test_case(name, check_golden(path, err, sizeof err), "%s: %s", path, err);
        n++;
    }
    if (d) closedir(d);
    CHECK_MSG(n > 0, "no tests/passes/fuse_loops_*.dcir goldens");
}
