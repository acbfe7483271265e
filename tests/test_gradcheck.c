/* test_gradcheck.c — autodiff checked against central finite differences.
 *
 * The harness enumerates ops.def: every differentiable op (a vjp in its row) must have a case
 * generator: gen_unary for the unary formulas, its entry in `gens` for the others (an op
 * without one, or a NODIFF op with one, fails the suite). A case builds
 * y = op(inputs), the loss sum(y * R) with a fixed random R of y's shape (so every output
 * element matters), calls dc_grad for the f32 inputs and runs the graph with the reference
 * executor. The oracle perturbs each f32 input element by +-eps, reruns the forward (f32), and
 * forms (L+ - L-) / (x+ - x-) in double, where L = sum(y * R) is accumulated in double from
 * the f32 y and x+ - x- is the step actually taken in f32. i32 inputs (indices, labels,
 * conditions) are drawn in range and not differentiated. Then: a small MLP
 * (linear-silu-linear-mse) against FD for every param, accumulation of a value used twice,
 * zero gradients for unreachable or stop-gradient values, and the error cases.
 *
 * Tolerances, and why: an analytic gradient g passes against the FD value f when
 *     |g - f| <= ATOL + RTOL * |f|,   ATOL = 1e-3, RTOL = 5e-3.
 * The FD error has two parts. Truncation of the central difference: eps^2/6 * |y'''| per
 * output (times |R| <= 1). Rounding: y is f32, so each changed output carries ~1 ulp (6e-8
 * relative; 1-2 ulp for tanhf/powf/expf), and dividing by the 2 eps step turns m changed
 * outputs of size |y| into ~1e-7 * sqrt(m) * |y| / eps. With eps = 1e-2 (elementwise ops and
 * movement) and |y'''| = O(1) on the sampling domains both are ~2e-5. The worst case is a
 * steep function near the bottom of [0.5, 2]: relative truncation eps^2/x^2 = 4e-4 for 1/x
 * (div's denominator) and eps^2 * 2.5 * 3.5 / (6 x^2) = 6e-4 for x^-1.5, an order below RTOL.
 * Ops that couple several inputs into each output (reductions, softmax, contractions, norms,
 * losses) use eps = 3e-3: their y''' grows with the coupling (1/sigma^3 in a norm, products
 * of softmax weights), and their m is larger, so the rounding term becomes ~1e-4 * |y|, with
 * |y| = O(1): still an order below ATOL. Measured on this suite, the largest error is under
 * 0.1 of the tolerance; the summary line prints it ("worst error"). Piecewise-linear ops have
 * no truncation error as long as no input is within eps of a kink, so their inputs are drawn
 * away from kinks: relu/abs inputs have |x| >= 0.2; maximum/minimum draw a on the grid
 * 0.25 Z and b on 0.25 Z + 0.125 (|a - b| >= 0.125); max over axes draws all-distinct values
 * 0.1 apart. Domains: log/sqrt/rsqrt/pow with a non-integer exponent and div denominators
 * draw from [0.5, 2]; everything else from [-1.5, 1.5].
 * A wrong VJP is off by O(|g|) (a missing term, a wrong sign, a missed broadcast sum), far
 * above these bounds. straight_through's VJP is a custom one (the gradient of the forward
 * hard = soft): soft's gradient is checked against FD w.r.t. hard, and hard's must be 0. */
#include "tests/test.h"

#include <stdint.h>
#include <stdlib.h>

#include "frontend/dsl.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

#define ATOL 1e-3
#define RTOL 5e-3
#define EPS 1e-2      /* elementwise ops and movement */
#define EPS_SUM 3e-3  /* ops that couple inputs: reductions, contractions, norms, losses */
#define MAX_IN 4

/* ---- deterministic random numbers (splitmix64) -------------------------------------------- */

static uint64_t rng_state;

static double urand(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static double uniform(double lo, double hi) { return lo + (hi - lo) * urand(); }

/* ---- case description ---------------------------------------------------------------------- */

typedef enum {
    D_ANY,      /* [-1.5, 1.5] */
    D_POS,      /* [0.5, 2]: log, sqrt, rsqrt, pow, denominators */
    D_AWAY,     /* +-[0.2, 1.5]: away from the kink at 0 */
    D_GRID,     /* 0.25 k, |k| <= 6 */
    D_GRID_OFF, /* 0.25 k + 0.125 */
    D_DISTINCT, /* a permutation of 0.1 (i - n/2): no ties */
    D_INDEX,    /* i32 in [0, hi) */
} domain;

typedef struct {
    dc_dtype dt;
    dc_ints shape;
    domain dom;
    int64_t hi;
} gc_in;

#define SCALAR ((dc_ints){ .n = 0 })
#define F(dom, shape) ((gc_in){ DC_F32, shape, dom, 0 })
#define IDX(hi, shape) ((gc_in){ DC_I32, shape, D_INDEX, hi })

typedef struct {
    dc_op op;
    dc_attr attr;
    bool has_declared;
    dc_type declared;
    double eps;
    int n_in;
    gc_in in[MAX_IN];
    const int *oracle; /* oracle[k]: the input whose FD is input k's expected gradient, -1 = 0 */
} gc_case;

static int n_cases, n_case_failures;
static double worst; /* the largest |g - fd| / (ATOL + RTOL |fd|) seen */

static dc_attr attr0(void) {
    dc_attr a;
    memset(&a, 0, sizeof a);
    return a;
}

static dc_type type_of_in(const gc_in *in) {
    dc_type t;
    memset(&t, 0, sizeof t);
    t.dtype = in->dt;
    t.shape.rank = in->shape.n;
    for (int i = 0; i < in->shape.n; i++) t.shape.dim[i] = in->shape.v[i];
    return t;
}

static void fill_values(dc_tensor *t, const gc_in *in) {
    int64_t n = dc_numel(&t->type.shape);
    if (in->dt == DC_I32) {
        for (int64_t i = 0; i < n; i++) ((int32_t *)t->data)[i] = (int32_t)(urand() * (double)in->hi);
        return;
    }
    float *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        double s = urand() < 0.5 ? -1 : 1;
        switch (in->dom) {
        case D_ANY: p[i] = (float)uniform(-1.5, 1.5); break;
        case D_POS: p[i] = (float)uniform(0.5, 2.0); break;
        case D_AWAY: p[i] = (float)(s * uniform(0.2, 1.5)); break;
        case D_GRID: p[i] = 0.25f * (float)((int)(urand() * 13) - 6); break;
        case D_GRID_OFF: p[i] = 0.25f * (float)((int)(urand() * 13) - 6) + 0.125f; break;
        case D_DISTINCT: p[i] = 0.1f * (float)((double)i - (double)n / 2); break;
        case D_INDEX: break;
        }
    }
    if (in->dom == D_DISTINCT)
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(urand() * (double)(i + 1));
            float tmp = p[i];
            p[i] = p[j];
            p[j] = tmp;
        }
}

/* ---- one case ------------------------------------------------------------------------------ */

typedef struct {
    dc_graph *g;
    dc_exec *e;
    dc_tensor *x[MAX_IN];
    double *r;         /* R, also an input of the graph */
    int64_t n_out;
    int n_grads, grad_of[MAX_IN]; /* output 1 + i is the gradient of input grad_of[i] */
} gc_run;

static const char *in_name(int k) {
    static const char *names[MAX_IN] = { "x0", "x1", "x2", "x3" };
    return names[k];
}

/* loss = sum(y * R); outputs: y, then the gradients of the f32 inputs */
static bool build(gc_run *run, const gc_case *c, char *err, size_t len) {
    dc_graph *g = run->g = dc_graph_new("gradcheck");
    int in[MAX_IN], wrt[MAX_IN], grads[MAX_IN];
    for (int k = 0; k < c->n_in; k++) {
        dc_type t = type_of_in(&c->in[k]);
        in[k] = dc_input(g, in_name(k), t.dtype, t.shape.rank, t.shape.dim).id;
        if (t.dtype == DC_F32) {
            run->grad_of[run->n_grads] = k;
            wrt[run->n_grads++] = in[k];
        }
    }
    int y = dc_graph_emit(g, c->op, c->n_in, in, &c->attr, c->has_declared ? &c->declared : NULL,
                          NULL, __FILE__, __LINE__, err, len);
    if (y < 0) return false;
    const dc_type *yt = &g->nodes[y].type;
    dc_t r = dc_input(g, "r", DC_F32, yt->shape.rank, yt->shape.dim);
    dc_t loss = dc_sum(g, dc_mul(g, (dc_t){ y }, r));
    dc_graph_add_output(g, y, "y");
    if (dc_graph_failed(g)) {
        snprintf(err, len, "%s", dc_graph_error(g));
        return false;
    }
    if (!dc_grad(g, loss.id, wrt, run->n_grads, grads, err, len)) return false;
    for (int i = 0; i < run->n_grads; i++) dc_graph_add_output(g, grads[i], NULL);
    return true;
}

static bool set_inputs(gc_run *run, const gc_case *c, char *err, size_t len) {
    for (int k = 0; k < c->n_in; k++)
        if (!dc_exec_set_input(run->e, in_name(k), run->x[k], err, len)) return false;
    return true;
}

/* L = sum(y * R) in double, after a forward run on the current x */
static bool loss_at(gc_run *run, const gc_case *c, double *l, char *err, size_t len) {
    if (!set_inputs(run, c, err, len) || !dc_exec_run(run->e, err, len)) return false;
    const float *y = dc_exec_output(run->e, 0)->data;
    double s = 0;
    for (int64_t i = 0; i < run->n_out; i++) s += (double)y[i] * run->r[i];
    *l = s;
    return true;
}

/* FD of L w.r.t. element j of input k, with the steps taken in f32 */
static bool fd(gc_run *run, const gc_case *c, int k, int64_t j, double *out, char *err, size_t len) {
    float *p = run->x[k]->data, v = p[j];
    float hi = (float)(v + c->eps), lo = (float)(v - c->eps);
    double lp, lm;
    p[j] = hi;
    bool ok = loss_at(run, c, &lp, err, len);
    p[j] = lo;
    ok = ok && loss_at(run, c, &lm, err, len);
    p[j] = v;
    *out = (lp - lm) / ((double)hi - (double)lo);
    return ok;
}

static void describe(const gc_case *c, char *buf, size_t len) {
    size_t k = (size_t)snprintf(buf, len, "%s(", dc_op_name(c->op));
    for (int i = 0; i < c->n_in && k < len; i++) {
        dc_type t = type_of_in(&c->in[i]);
        char s[160];
        k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? ", " : "", dc_type_str(&t, s, sizeof s));
    }
    if (k < len) snprintf(buf + k, len - k, ")");
}

static double worst_of(double ratio) {
    if (ratio > worst || ratio != ratio) worst = ratio;
    return ratio;
}

/* Compares every f32 input's gradient (from the run just made) with FD; false (and one
 * message) on the first miss. */
static bool compare(gc_run *run, const gc_case *c, char *err, size_t len) {
    float *grad[MAX_IN]; /* copies: outputs are views, overwritten by the FD runs */
    for (int i = 0; i < run->n_grads; i++) {
        const dc_tensor *t = dc_exec_output(run->e, 1 + i);
        size_t bytes = (size_t)dc_numel(&t->type.shape) * sizeof(float);
        if (!(grad[i] = malloc(bytes))) abort();
        memcpy(grad[i], t->data, bytes);
    }
    bool ok = true;
    for (int i = 0; i < run->n_grads && ok; i++) {
        int k = run->grad_of[i], src = c->oracle ? c->oracle[k] : k;
        int64_t n = dc_numel(&run->x[k]->type.shape);
        for (int64_t j = 0; j < n && ok; j++) {
            double want = 0;
            if (src >= 0 && !fd(run, c, src, j, &want, err, len)) ok = false;
            else if (!(worst_of(fabs(grad[i][j] - want) / (ATOL + RTOL * fabs(want))) <= 1)) {
                snprintf(err, len, "d/d%s[%lld] = %.7g, finite differences give %.7g", in_name(k),
                         (long long)j, (double)grad[i][j], want);
                ok = false;
            }
        }
    }
    for (int i = 0; i < run->n_grads; i++) free(grad[i]);
    return ok;
}

static void gc_run_case(const gc_case *c) {
    gc_run run;
    memset(&run, 0, sizeof run);
    char err[DC_ERR_LEN] = "", what[512];
    describe(c, what, sizeof what);
    n_cases++;
    bool ok = build(&run, c, err, sizeof err);
    if (ok) run.e = dc_exec_new(run.g, 1, err, sizeof err);
    ok = ok && run.e;
    if (ok) {
        for (int k = 0; k < c->n_in; k++) {
            dc_type t = type_of_in(&c->in[k]);
            run.x[k] = dc_tensor_new(&t);
            fill_values(run.x[k], &c->in[k]);
        }
        const dc_type *yt = &run.g->nodes[run.g->outputs[0]].type;
        run.n_out = dc_numel(&yt->shape);
        dc_tensor *r = dc_tensor_new(yt);
        run.r = malloc((size_t)run.n_out * sizeof *run.r);
        if (!run.r) abort();
        for (int64_t i = 0; i < run.n_out; i++) ((float *)r->data)[i] = (float)(run.r[i] = uniform(-1, 1));
        ok = dc_exec_set_input(run.e, "r", r, err, sizeof err) && set_inputs(&run, c, err, sizeof err) &&
             dc_exec_run(run.e, err, sizeof err) && compare(&run, c, err, sizeof err);
        dc_tensor_free(r);
    }
    if (!ok) {
        n_case_failures++;
        dc_test_fail(__FILE__, __LINE__, "gradcheck %s: %s", what, err);
    }
    for (int k = 0; k < MAX_IN; k++) dc_tensor_free(run.x[k]);
    free(run.r);
    dc_exec_free(run.e);
    dc_graph_free(run.g);
}

/* GC(op, attr, eps, inputs...) runs one case; GCD(...) one with a declared result type */
#define GC_N(...) ((int)(sizeof((gc_in[]){ __VA_ARGS__ }) / sizeof(gc_in)))
#define GC(op_, attr_, eps_, ...)                                                           \
    gc_run_case(&(gc_case){ .op = (op_), .attr = (attr_), .eps = (eps_),                    \
                            .n_in = GC_N(__VA_ARGS__), .in = { __VA_ARGS__ } })
#define GCD(op_, attr_, decl_, eps_, ...)                                                   \
    gc_run_case(&(gc_case){ .op = (op_), .attr = (attr_), .has_declared = true,             \
                            .declared = (decl_), .eps = (eps_), .n_in = GC_N(__VA_ARGS__),   \
                            .in = { __VA_ARGS__ } })

/* ---- attribute and type helpers -------------------------------------------------------------- */

static dc_type f32_type(dc_ints shape) { return type_of_in(&F(D_ANY, shape)); }

static dc_attr a_scalar(float v) {
    dc_attr a = attr0();
    a.scalar.value = v;
    return a;
}

static dc_attr a_axis(int64_t axis) {
    dc_attr a = attr0();
    a.axis.axis = axis;
    return a;
}

static dc_attr a_reduce(dc_ints axes, bool keepdims) {
    dc_attr a = attr0();
    a.reduce.axes = axes;
    a.reduce.keepdims = keepdims;
    return a;
}

static dc_attr a_attention(float scale, bool causal, bool bias) {
    dc_attr a = attr0();
    a.attention.scale = scale;
    a.attention.causal = causal;
    a.attention.bias = bias;
    return a;
}

static dc_attr a_matmul(bool ta, bool tb) {
    dc_attr a = attr0();
    a.matmul.trans_a = ta;
    a.matmul.trans_b = tb;
    return a;
}

static dc_attr a_conv(int64_t stride, int64_t pad, int64_t groups) {
    dc_attr a = attr0();
    a.conv.stride = DC_INTS(stride, stride);
    a.conv.pad = DC_INTS(pad, pad);
    a.conv.groups = groups;
    return a;
}

static dc_attr a_pool(int64_t f) {
    dc_attr a = attr0();
    a.pool.factor = f;
    return a;
}

static dc_attr a_eps(float eps) {
    dc_attr a = attr0();
    a.eps.eps = eps;
    return a;
}

static dc_attr a_group_norm(int64_t groups, float eps) {
    dc_attr a = attr0();
    a.group_norm.groups = groups;
    a.group_norm.eps = eps;
    return a;
}

static dc_attr a_perm(dc_ints perm) {
    dc_attr a = attr0();
    a.perm.perm = perm;
    return a;
}

static dc_attr a_slice(dc_ints start, dc_ints stop, dc_ints step) {
    dc_attr a = attr0();
    a.slice.start = start;
    a.slice.stop = stop;
    a.slice.step = step;
    return a;
}

static dc_attr a_pad(dc_ints lo, dc_ints hi, float value) {
    dc_attr a = attr0();
    a.pad.lo = lo;
    a.pad.hi = hi;
    a.pad.value = value;
    return a;
}

static dc_attr a_cast(dc_dtype to) {
    dc_attr a = attr0();
    a.cast.to = to;
    return a;
}

/* ---- case generators, one per op family ------------------------------------------------------ */

static void gen_unary(dc_op op) {
    domain d = D_ANY;
    if (op == DC_OP_LOG || op == DC_OP_SQRT || op == DC_OP_RSQRT) d = D_POS;
    if (op == DC_OP_RELU || op == DC_OP_ABS) d = D_AWAY;
    dc_attr at = op == DC_OP_CAST ? a_cast(DC_F32) : attr0();
    if (op == DC_OP_POW) {
        GC(op, a_scalar(2.0f), EPS, F(D_ANY, DC_INTS(2, 3)));
        GC(op, a_scalar(3.0f), EPS, F(D_ANY, DC_INTS(5)));
        GC(op, a_scalar(0.5f), EPS, F(D_POS, DC_INTS(3, 2)));
        GC(op, a_scalar(-1.5f), EPS, F(D_POS, DC_INTS(2, 1, 3)));
        GC(op, a_scalar(0.0f), EPS, F(D_ANY, DC_INTS(4)));
        return;
    }
    GC(op, at, EPS, F(d, DC_INTS(5)));
    GC(op, at, EPS, F(d, DC_INTS(2, 3)));
    GC(op, at, EPS, F(d, DC_INTS(3, 1, 2)));
    GC(op, at, EPS, F(d, SCALAR));
}

static void gen_binary(dc_op op) {
    domain da = D_ANY, db = op == DC_OP_DIV ? D_POS : D_ANY;
    if (op == DC_OP_MAXIMUM || op == DC_OP_MINIMUM) {
        da = D_GRID;
        db = D_GRID_OFF;
    }
    dc_attr at = attr0();
    GC(op, at, EPS, F(da, DC_INTS(2, 3)), F(db, DC_INTS(2, 3)));
    GC(op, at, EPS, F(da, DC_INTS(2, 3)), F(db, DC_INTS(3)));
    GC(op, at, EPS, F(da, DC_INTS(3, 1)), F(db, DC_INTS(1, 4)));
    GC(op, at, EPS, F(da, DC_INTS(4, 1)), F(db, DC_INTS(2, 1, 3)));
    GC(op, at, EPS, F(da, SCALAR), F(db, DC_INTS(2, 2)));
}

static void gen_straight_through(dc_op op) {
    static const int oracle[] = { -1, 0 }; /* hard: none; soft: what hard would get */
    gc_run_case(&(gc_case){ .op = op, .eps = EPS, .n_in = 2, .oracle = oracle,
                            .in = { F(D_ANY, DC_INTS(2, 3)), F(D_ANY, DC_INTS(2, 3)) } });
    gc_run_case(&(gc_case){ .op = op, .eps = EPS, .n_in = 2, .oracle = oracle,
                            .in = { F(D_ANY, DC_INTS(5)), F(D_ANY, DC_INTS(5)) } });
}

static void gen_where(dc_op op) {
    dc_attr at = attr0();
    GC(op, at, EPS, IDX(2, DC_INTS(2, 3)), F(D_ANY, DC_INTS(2, 3)), F(D_ANY, DC_INTS(2, 3)));
    GC(op, at, EPS, IDX(2, DC_INTS(2, 3)), F(D_ANY, DC_INTS(3)), F(D_ANY, DC_INTS(2, 1)));
    GC(op, at, EPS, IDX(2, DC_INTS(3, 1)), F(D_ANY, DC_INTS(3, 4)), F(D_ANY, SCALAR));
}

static void gen_reduce(dc_op op) {
    domain d = op == DC_OP_MAX ? D_DISTINCT : D_ANY;
    GC(op, a_reduce(SCALAR, false), EPS_SUM, F(d, DC_INTS(2, 3, 4)));
    GC(op, a_reduce(DC_INTS(1), false), EPS_SUM, F(d, DC_INTS(2, 3, 4)));
    GC(op, a_reduce(DC_INTS(0, 2), true), EPS_SUM, F(d, DC_INTS(2, 3, 4)));
    GC(op, a_reduce(DC_INTS(1), true), EPS_SUM, F(d, DC_INTS(3, 5)));
    GC(op, a_reduce(DC_INTS(0), false), EPS_SUM, F(d, DC_INTS(6)));
    GC(op, a_reduce(SCALAR, true), EPS_SUM, F(d, DC_INTS(2, 2)));
}

static void gen_softmax(dc_op op) {
    GC(op, a_axis(1), EPS_SUM, F(D_ANY, DC_INTS(2, 5)));
    GC(op, a_axis(0), EPS_SUM, F(D_ANY, DC_INTS(3, 4)));
    GC(op, a_axis(1), EPS_SUM, F(D_ANY, DC_INTS(2, 3, 4)));
    GC(op, a_axis(0), EPS_SUM, F(D_ANY, DC_INTS(4)));
}

static void gen_matmul(dc_op op) {
    GC(op, a_matmul(false, false), EPS_SUM, F(D_ANY, DC_INTS(3, 4)), F(D_ANY, DC_INTS(4, 2)));
    GC(op, a_matmul(true, false), EPS_SUM, F(D_ANY, DC_INTS(4, 3)), F(D_ANY, DC_INTS(4, 2)));
    GC(op, a_matmul(false, true), EPS_SUM, F(D_ANY, DC_INTS(3, 4)), F(D_ANY, DC_INTS(2, 4)));
    GC(op, a_matmul(true, true), EPS_SUM, F(D_ANY, DC_INTS(2, 4, 3)), F(D_ANY, DC_INTS(2, 4)));
    GC(op, a_matmul(false, false), EPS_SUM, F(D_ANY, DC_INTS(2, 1, 2, 3)), F(D_ANY, DC_INTS(3, 3, 2)));
    GC(op, a_matmul(true, false), EPS_SUM, F(D_ANY, DC_INTS(1, 3, 2)), F(D_ANY, DC_INTS(2, 3, 2)));
}

/* out (the lse is a stop-gradient): self and cross (Sq != Sk), causal, Dv != D, full and
 * broadcast biases */
static void gen_attention(dc_op op) {
    GC(op, a_attention(0.5f, false, false), EPS_SUM, F(D_ANY, DC_INTS(1, 2, 3, 4)), F(D_ANY, DC_INTS(1, 2, 5, 4)),
       F(D_ANY, DC_INTS(1, 2, 5, 3)));
    GC(op, a_attention(0.7f, true, false), EPS_SUM, F(D_ANY, DC_INTS(2, 1, 4, 3)), F(D_ANY, DC_INTS(2, 1, 3, 3)),
       F(D_ANY, DC_INTS(2, 1, 3, 2)));
    GC(op, a_attention(0.4f, false, true), EPS_SUM, F(D_ANY, DC_INTS(1, 2, 3, 2)), F(D_ANY, DC_INTS(1, 2, 4, 2)),
       F(D_ANY, DC_INTS(1, 2, 4, 2)), F(D_ANY, DC_INTS(1, 2, 3, 4)));
    GC(op, a_attention(1.0f, true, true), EPS_SUM, F(D_ANY, DC_INTS(2, 2, 3, 2)), F(D_ANY, DC_INTS(2, 2, 3, 2)),
       F(D_ANY, DC_INTS(2, 2, 3, 3)), F(D_ANY, DC_INTS(2, 1, 1, 3)));
}

static void gen_linear(dc_op op) {
    dc_attr at = attr0();
    GC(op, at, EPS_SUM, F(D_ANY, DC_INTS(3, 4)), F(D_ANY, DC_INTS(4, 2)), F(D_ANY, DC_INTS(2)));
    GC(op, at, EPS_SUM, F(D_ANY, DC_INTS(2, 3, 4)), F(D_ANY, DC_INTS(4, 3)), F(D_ANY, DC_INTS(3)));
    GC(op, at, EPS_SUM, F(D_ANY, DC_INTS(4)), F(D_ANY, DC_INTS(4, 2)), F(D_ANY, DC_INTS(2)));
}

static void gen_conv2d(dc_op op) {
    GC(op, a_conv(1, 1, 1), EPS_SUM, F(D_ANY, DC_INTS(1, 4, 4, 2)), F(D_ANY, DC_INTS(3, 3, 2, 3)));
    GC(op, a_conv(2, 0, 1), EPS_SUM, F(D_ANY, DC_INTS(2, 5, 4, 2)), F(D_ANY, DC_INTS(2, 2, 2, 2)));
    GC(op, a_conv(2, 1, 1), EPS_SUM, F(D_ANY, DC_INTS(1, 5, 5, 1)), F(D_ANY, DC_INTS(3, 3, 1, 2)));
    GC(op, a_conv(1, 1, 2), EPS_SUM, F(D_ANY, DC_INTS(1, 3, 3, 4)), F(D_ANY, DC_INTS(3, 3, 2, 4)));
    GC(op, a_conv(1, 0, 2), EPS_SUM, F(D_ANY, DC_INTS(1, 3, 2, 2)), F(D_ANY, DC_INTS(1, 2, 1, 4)));
}

static void gen_pool(dc_op op) {
    bool avg = op == DC_OP_AVG_POOL;
    GC(op, a_pool(2), EPS, F(D_ANY, avg ? DC_INTS(1, 4, 4, 2) : DC_INTS(1, 2, 2, 2)));
    GC(op, a_pool(3), EPS, F(D_ANY, avg ? DC_INTS(2, 3, 6, 1) : DC_INTS(2, 1, 2, 1)));
    GC(op, a_pool(1), EPS, F(D_ANY, DC_INTS(1, 2, 3, 2)));
}

static void gen_layer_norm(dc_op op) {
    dc_attr at = a_eps(1e-5f);
    GC(op, at, EPS_SUM, F(D_ANY, DC_INTS(3, 5)), F(D_ANY, DC_INTS(5)), F(D_ANY, DC_INTS(5)));
    GC(op, at, EPS_SUM, F(D_ANY, DC_INTS(2, 2, 4)), F(D_ANY, DC_INTS(4)), F(D_ANY, DC_INTS(4)));
    GC(op, a_eps(0.1f), EPS_SUM, F(D_ANY, DC_INTS(6)), F(D_ANY, DC_INTS(6)), F(D_ANY, DC_INTS(6)));
}

static void gen_group_norm(dc_op op) {
    GC(op, a_group_norm(2, 1e-5f), EPS_SUM, F(D_ANY, DC_INTS(2, 3, 4)), F(D_ANY, DC_INTS(4)),
       F(D_ANY, DC_INTS(4)));
    GC(op, a_group_norm(3, 1e-5f), EPS_SUM, F(D_ANY, DC_INTS(1, 2, 2, 6)), F(D_ANY, DC_INTS(6)),
       F(D_ANY, DC_INTS(6)));
    GC(op, a_group_norm(1, 0.1f), EPS_SUM, F(D_ANY, DC_INTS(2, 5, 2)), F(D_ANY, DC_INTS(2)),
       F(D_ANY, DC_INTS(2)));
}

static void gen_reshape(dc_op op) {
    dc_attr at = attr0();
    GCD(op, at, f32_type(DC_INTS(3, 4)), EPS, F(D_ANY, DC_INTS(2, 6)));
    GCD(op, at, f32_type(DC_INTS(12)), EPS, F(D_ANY, DC_INTS(2, 3, 2)));
    GCD(op, at, f32_type(DC_INTS(2, 1, 2)), EPS, F(D_ANY, DC_INTS(4)));
}

static void gen_broadcast_to(dc_op op) {
    dc_attr at = attr0();
    GCD(op, at, f32_type(DC_INTS(2, 3)), EPS, F(D_ANY, DC_INTS(3)));
    GCD(op, at, f32_type(DC_INTS(2, 4)), EPS, F(D_ANY, DC_INTS(2, 1)));
    GCD(op, at, f32_type(DC_INTS(2, 2)), EPS, F(D_ANY, SCALAR));
    GCD(op, at, f32_type(DC_INTS(2, 3, 2)), EPS, F(D_ANY, DC_INTS(1, 3, 1)));
}

static void gen_transpose(dc_op op) {
    GC(op, a_perm(DC_INTS(1, 0)), EPS, F(D_ANY, DC_INTS(2, 3)));
    GC(op, a_perm(DC_INTS(2, 0, 1)), EPS, F(D_ANY, DC_INTS(2, 3, 4)));
    GC(op, a_perm(DC_INTS(1, 2, 0)), EPS, F(D_ANY, DC_INTS(2, 3, 2)));
}

static void gen_slice(dc_op op) {
    GC(op, a_slice(DC_INTS(1), DC_INTS(5), DC_INTS(2)), EPS, F(D_ANY, DC_INTS(5)));
    GC(op, a_slice(DC_INTS(1, 0), DC_INTS(3, 5), DC_INTS(1, 2)), EPS, F(D_ANY, DC_INTS(4, 5)));
    GC(op, a_slice(DC_INTS(0, 1, 1), DC_INTS(3, 4, 2), DC_INTS(2, 2, 1)), EPS, F(D_ANY, DC_INTS(3, 4, 2)));
}

static void gen_concat(dc_op op) {
    GC(op, a_axis(0), EPS, F(D_ANY, DC_INTS(2, 3)), F(D_ANY, DC_INTS(1, 3)));
    GC(op, a_axis(1), EPS, F(D_ANY, DC_INTS(2, 1)), F(D_ANY, DC_INTS(2, 3)), F(D_ANY, DC_INTS(2, 2)));
    GC(op, a_axis(2), EPS, F(D_ANY, DC_INTS(2, 1, 2)), F(D_ANY, DC_INTS(2, 1, 1)));
    GC(op, a_axis(0), EPS, F(D_ANY, DC_INTS(3)));
}

static void gen_pad(dc_op op) {
    GC(op, a_pad(DC_INTS(1), DC_INTS(2), 0.0f), EPS, F(D_ANY, DC_INTS(3)));
    GC(op, a_pad(DC_INTS(1, 0), DC_INTS(0, 2), 0.5f), EPS, F(D_ANY, DC_INTS(2, 3)));
    GC(op, a_pad(DC_INTS(0, 1, 1), DC_INTS(1, 0, 1), 0.0f), EPS, F(D_ANY, DC_INTS(1, 2, 2)));
}

static void gen_gather(dc_op op) {
    dc_attr at = attr0();
    GC(op, at, EPS, F(D_ANY, DC_INTS(5, 3)), IDX(5, DC_INTS(7)));
    GC(op, at, EPS, F(D_ANY, DC_INTS(6)), IDX(6, DC_INTS(2, 3)));
    GC(op, at, EPS, F(D_ANY, DC_INTS(4, 2, 2)), IDX(4, DC_INTS(3)));
}

static void gen_loss(dc_op op) {
    dc_attr at = attr0();
    if (op == DC_OP_CROSS_ENTROPY) {
        GC(op, at, EPS_SUM, F(D_ANY, DC_INTS(4, 5)), IDX(5, DC_INTS(4)));
        GC(op, at, EPS_SUM, F(D_ANY, DC_INTS(2, 3, 4)), IDX(4, DC_INTS(2, 3)));
        GC(op, at, EPS_SUM, F(D_ANY, DC_INTS(6)), IDX(6, SCALAR));
        return;
    }
    GC(op, at, EPS_SUM, F(D_ANY, DC_INTS(2, 3)), F(D_ANY, DC_INTS(2, 3)));
    GC(op, at, EPS_SUM, F(D_ANY, DC_INTS(5)), F(D_ANY, DC_INTS(5)));
    GC(op, at, EPS_SUM, F(D_ANY, DC_INTS(2, 2, 2)), F(D_ANY, DC_INTS(2, 2, 2)));
}

typedef void (*gen_fn)(dc_op op);

/* The case generator of every differentiable op that is not a unary formula (those take
 * gen_unary, see gen_of); NULL for the others. */
static const gen_fn gens[DC_OP_COUNT] = {
    [DC_OP_CAST] = gen_unary,
    [DC_OP_ADD] = gen_binary, [DC_OP_SUB] = gen_binary, [DC_OP_MUL] = gen_binary,
    [DC_OP_DIV] = gen_binary, [DC_OP_MAXIMUM] = gen_binary, [DC_OP_MINIMUM] = gen_binary,
    [DC_OP_WHERE] = gen_where,
    [DC_OP_STRAIGHT_THROUGH] = gen_straight_through,
    [DC_OP_SUM] = gen_reduce, [DC_OP_MEAN] = gen_reduce, [DC_OP_MAX] = gen_reduce,
    [DC_OP_LOGSUMEXP] = gen_reduce,
    [DC_OP_SOFTMAX] = gen_softmax, [DC_OP_LOG_SOFTMAX] = gen_softmax,
    [DC_OP_ATTENTION] = gen_attention,
    [DC_OP_MATMUL] = gen_matmul, [DC_OP_LINEAR] = gen_linear, [DC_OP_CONV2D] = gen_conv2d,
    [DC_OP_AVG_POOL] = gen_pool, [DC_OP_UPSAMPLE] = gen_pool,
    [DC_OP_LAYER_NORM] = gen_layer_norm, [DC_OP_GROUP_NORM] = gen_group_norm,
    [DC_OP_RESHAPE] = gen_reshape, [DC_OP_BROADCAST_TO] = gen_broadcast_to,
    [DC_OP_TRANSPOSE] = gen_transpose, [DC_OP_SLICE] = gen_slice, [DC_OP_CONCAT] = gen_concat,
    [DC_OP_PAD] = gen_pad, [DC_OP_GATHER] = gen_gather,
    [DC_OP_CROSS_ENTROPY] = gen_loss, [DC_OP_MSE] = gen_loss,
};

static gen_fn gen_of(dc_op op) {
    const dc_op_info *info = dc_op_get(op);
    if (!gens[op] && info->differentiable && info->lower == DC_LOWER_MAP && info->arity == 1) return gen_unary;
    return gens[op];
}

TEST(gradcheck_ops) {
    int checked = 0, failed = 0, nodiff = 0;
    n_cases = 0;
    worst = 0;
    for (int op = 0; op < DC_OP_COUNT; op++) {
        bool diff = dc_op_get(op)->differentiable;
        nodiff += !diff;
        gen_fn gen = gen_of(op);
        CHECK_MSG(diff || !gen, "op %s is NODIFF but has gradcheck cases", dc_op_name(op));
        if (!diff) continue;
        CHECK_MSG(gen, "op %s is DIFF but has no gradcheck case", dc_op_name(op));
        if (!gen) {
            failed++;
            continue;
        }
        rng_state = 0x5eed0000u + (uint64_t)op;
        int before = n_case_failures;
        gen(op);
        checked++;
        failed += n_case_failures != before;
    }
    printf("gradcheck: %d differentiable ops checked, %d failed (NODIFF: %d; %d cases, worst error "
           "%.2f of tolerance)\n", checked, failed, nodiff, n_cases, worst);
}

/* ---- whole graphs and edge cases --------------------------------------------------------------- */

static dc_tensor *random_tensor(int rank, const int64_t *dims) {
    dc_type t = f32_type((dc_ints){ .n = rank });
    for (int i = 0; i < rank; i++) t.shape.dim[i] = dims[i];
    dc_tensor *x = dc_tensor_new(&t);
    for (int64_t i = 0; i < dc_numel(&t.shape); i++) ((float *)x->data)[i] = (float)uniform(-1, 1);
    return x;
}

static double run_loss(dc_exec *e) {
    char err[DC_ERR_LEN] = "";
    bool ok = dc_exec_run(e, err, sizeof err);
    CHECK_MSG(ok, "run: %s", err);
    return ok ? *(const float *)dc_exec_output(e, 0)->data : 0;
}

/* linear-silu-linear-mse: the gradient of every param against FD on the param values */
TEST(grad_mlp) {
    rng_state = 42;
    dc_graph *g = dc_graph_new("mlp");
    dc_t x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ 4, 3 }));
    dc_t target = dc_input(g, "target", DC_F32, 2, ((int64_t[]){ 4, 2 }));
    dc_t h = dc_silu(g, dc_linear(g, x, 5, .name = "l0", .init = DC_INIT_XAVIER));
    dc_t loss = dc_mse(g, dc_linear(g, h, 2, .name = "l1", .init = DC_INIT_XAVIER), target);
    const char *names[4] = { "l0.w", "l0.b", "l1.w", "l1.b" };
    int params[4], grads[4];
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < g->n_nodes; k++)
            if (g->nodes[k].op == DC_OP_PARAM && strcmp(g->nodes[k].name, names[i]) == 0) params[i] = k;
    char err[DC_ERR_LEN] = "";
    dc_graph_add_output(g, loss.id, "loss");
    CHECK_MSG(!dc_graph_failed(g), "%s", dc_graph_error(g));
    bool ok = dc_grad(g, loss.id, params, 4, grads, err, sizeof err);
    CHECK_MSG(ok, "dc_grad: %s", err);
    for (int i = 0; ok && i < 4; i++) dc_graph_add_output(g, grads[i], NULL);
    dc_exec *e = ok ? dc_exec_new(g, 7, err, sizeof err) : NULL;
    CHECK_MSG(!ok || e, "dc_exec_new: %s", err);
    if (e) {
        dc_tensor *xv = random_tensor(2, (int64_t[]){ 4, 3 }), *tv = random_tensor(2, (int64_t[]){ 4, 2 });
        CHECK(dc_exec_set_input(e, "x", xv, err, sizeof err));
        CHECK(dc_exec_set_input(e, "target", tv, err, sizeof err));
        for (int i = 0; i < 4; i++) {
            dc_tensor *p = dc_exec_param(e, names[i]);
            for (int64_t j = 0; j < dc_numel(&p->type.shape); j++)
                ((float *)p->data)[j] += (float)uniform(-0.5, 0.5); /* off the init values */
        }
        for (int i = 0; i < 4; i++) {
            run_loss(e);
            const dc_tensor *gt = dc_exec_output(e, 1 + i);
            int64_t n = dc_numel(&gt->type.shape);
            float *gv = malloc((size_t)n * sizeof *gv);
            if (!gv) abort();
            memcpy(gv, gt->data, (size_t)n * sizeof *gv);
            float *p = dc_exec_param(e, names[i])->data;
            for (int64_t j = 0; j < n; j++) {
                float v = p[j], hi = v + (float)EPS_SUM, lo = v - (float)EPS_SUM;
                p[j] = hi;
                double lp = run_loss(e);
                p[j] = lo;
                double lm = run_loss(e);
                p[j] = v;
                double want = (lp - lm) / ((double)hi - lo);
                CHECK_MSG(fabs(gv[j] - want) <= ATOL + RTOL * fabs(want), "d/d%s[%lld] = %.7g, FD %.7g",
                          names[i], (long long)j, (double)gv[j], want);
            }
            free(gv);
        }
        dc_tensor_free(xv);
        dc_tensor_free(tv);
    }
    dc_exec_free(e);
    dc_graph_free(g);
}

/* runs g (outputs: the gradients) with x set; the caller reads the outputs */
static dc_exec *run_with(dc_graph *g, const char *name, const dc_tensor *x) {
    char err[DC_ERR_LEN] = "";
    dc_exec *e = dc_exec_new(g, 1, err, sizeof err);
    CHECK_MSG(e, "dc_exec_new: %s", err);
    if (!e) return NULL;
    bool ok = dc_exec_set_input(e, name, x, err, sizeof err) && dc_exec_run(e, err, sizeof err);
    CHECK_MSG(ok, "run: %s", err);
    if (ok) return e;
    dc_exec_free(e);
    return NULL;
}

/* a value used twice: d sum(x * x) / dx = 2x, accumulated from both uses; new nodes carry
 * the forward node's file and line */
TEST(grad_accumulates) {
    rng_state = 7;
    dc_graph *g = dc_graph_new("twice");
    dc_t x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ 2, 3 }));
    int line = __LINE__ + 1;
    dc_t loss = dc_sum(g, dc_mul(g, x, x));
    int grad = -1;
    char err[DC_ERR_LEN] = "";
    CHECK_MSG(dc_grad(g, loss.id, &x.id, 1, &grad, err, sizeof err), "%s", err);
    dc_graph_add_output(g, grad, NULL);
    int n_add = 0;
    for (int i = loss.id + 1; i < g->n_nodes; i++) {
        n_add += g->nodes[i].op == DC_OP_ADD;
        CHECK_STR_EQ(g->nodes[i].file, __FILE__); /* the site of the forward node */
        CHECK_EQ_INT(g->nodes[i].line, line);
    }
    CHECK_EQ_INT(n_add, 1);
    dc_tensor *xv = random_tensor(2, (int64_t[]){ 2, 3 });
    dc_exec *e = run_with(g, "x", xv);
    for (int i = 0; e && i < 6; i++)
        CHECK_NEAR(((const float *)dc_exec_output(e, 0)->data)[i], 2.0 * ((float *)xv->data)[i], 1e-6, 1e-6);
    dc_exec_free(e);
    dc_tensor_free(xv);
    dc_graph_free(g);
}

/* zeros for a wrt the loss does not depend on, or only through NODIFF ops and i32 values */
TEST(grad_unreachable_zero) {
    rng_state = 9;
    dc_graph *g = dc_graph_new("stop");
    dc_t x = dc_input(g, "x", DC_F32, 1, ((int64_t[]){ 4 }));
    dc_t unused = dc_input(g, "unused", DC_F32, 2, ((int64_t[]){ 2, 2 }));
    dc_t through_i32 = dc_cast(g, dc_cast(g, dc_mul_scalar(g, x, 3.0f), DC_I32), DC_F32);
    dc_t through_cmp = dc_cast(g, dc_gt(g, x, dc_scalar(g, 0.0f)), DC_F32);
    dc_t loss = dc_sum(g, dc_add(g, dc_mul(g, through_i32, through_cmp), dc_mul(g, x, through_cmp)));
    int wrt[2] = { x.id, unused.id }, grads[2] = { -1, -1 };
    char err[DC_ERR_LEN] = "";
    CHECK_MSG(dc_grad(g, loss.id, wrt, 2, grads, err, sizeof err), "%s", err);
    CHECK_EQ_INT(g->nodes[grads[1]].op, DC_OP_FILL);
    CHECK(dc_shape_eq(&g->nodes[grads[1]].type.shape, &g->nodes[unused.id].type.shape));
    dc_graph_add_output(g, grads[0], NULL);
    dc_graph_add_output(g, grads[1], NULL);
    dc_tensor *xv = random_tensor(1, (int64_t[]){ 4 });
    dc_exec *e = run_with(g, "x", xv);
    for (int i = 0; e && i < 4; i++) /* only the f32 path x * mask carries a gradient: the mask */
        CHECK_NEAR(((const float *)dc_exec_output(e, 0)->data)[i], ((float *)xv->data)[i] > 0, 0, 0);
    for (int i = 0; e && i < 4; i++) CHECK_NEAR(((const float *)dc_exec_output(e, 1)->data)[i], 0, 0, 0);
    dc_exec_free(e);
    dc_tensor_free(xv);
    dc_graph_free(g);
}

/* bad loss or ids: false, a message, and the graph unchanged */
TEST(grad_errors) {
    dc_graph *g = dc_graph_new("bad");
    dc_t x = dc_input(g, "x", DC_F32, 1, ((int64_t[]){ 3 }));
    dc_t vec = dc_exp(g, x);
    dc_t s = dc_sum(g, vec);
    dc_t si = dc_sum(g, dc_cast(g, x, DC_I32));
    int n0 = g->n_nodes, grad = -1;
    struct { int loss, wrt; const char *msg; } cases[] = {
        { vec.id, x.id, "loss must be a scalar f32[], got f32[3]" },
        { si.id, x.id, "loss must be a scalar f32[], got i32[]" },
        { -1, x.id, "loss id -1 out of range" },
        { n0, x.id, "out of range" },
        { s.id, -2, "wrt[0] = -2 out of range" },
        { s.id, n0 + 5, "out of range" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[DC_ERR_LEN] = "";
        CHECK(!dc_grad(g, cases[i].loss, &cases[i].wrt, 1, &grad, err, sizeof err));
        CHECK_MSG(strstr(err, cases[i].msg), "error '%s' lacks '%s'", err, cases[i].msg);
        CHECK_EQ_INT(g->n_nodes, n0);
    }
    char err[DC_ERR_LEN] = "";
    CHECK(!dc_grad(NULL, 0, NULL, 0, NULL, err, sizeof err));
    CHECK(!dc_grad(g, s.id, &x.id, 1, NULL, err, sizeof err));
    g->nodes[vec.id].in[0] = vec.id; /* not SSA */
    CHECK(!dc_grad(g, s.id, &x.id, 1, &grad, err, sizeof err));
    CHECK_MSG(strstr(err, "malformed"), "%s", err);
    g->nodes[vec.id].in[0] = x.id;
    CHECK(dc_grad(g, s.id, NULL, 0, NULL, err, sizeof err));
    dc_graph_free(g);
}
