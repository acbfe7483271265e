/* test_exec.c — the reference executor and parameter initialisation: inputs pass through,
 * params (zeros, ones exact; normal, kaiming, xavier, uniform moments and bounds; same seed
 * and name give the same bits, another seed or name other bits), a multi-op graph against
 * hand values, bitwise equality across thread counts, set_input and run-time errors; copying
 * params by name and prefix between executors (and within one), all or nothing; a program
 * laid out in another's scratch. */
#include "tests/test.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

#include "passes/passes.h"
#include "runtime/runtime.h"
#include "tests/op_util.h"

/* ---- graph building ----------------------------------------------------------------------- */

static dc_type f32_type(int rank, const int64_t *dims) {
    dc_type t;
    memset(&t, 0, sizeof t);
    t.dtype = DC_F32;
    t.shape.rank = rank;
    for (int i = 0; i < rank; i++) t.shape.dim[i] = dims[i];
    return t;
}

static int add_input_of(dc_graph *g, const char *name, dc_dtype dt, int rank,
                        const int64_t *dims) {
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = DC_OP_INPUT;
    n.type = f32_type(rank, dims);
    n.type.dtype = dt;
    n.name = (char *)name;
    return dc_graph_append(g, &n);
}

static int add_input(dc_graph *g, const char *name, int rank, const int64_t *dims) {
    return add_input_of(g, name, DC_F32, rank, dims);
}

static int add_param(dc_graph *g, const char *name, int rank, const int64_t *dims,
                     dc_init_kind kind, float a, float b) {
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = DC_OP_PARAM;
    n.type = f32_type(rank, dims);
    n.name = (char *)name;
    n.attr.init = (dc_init_attr){ kind, a, b };
    return dc_graph_append(g, &n);
}

/* Appends op(ins...) with its type from the shape rule; -1 (and a failed check) if rejected. */
static int add_op(dc_graph *g, dc_op op, const dc_attr *attr, int n_in, const int *ins) {
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.n_in = n_in;
    for (int i = 0; i < n_in; i++) n.in[i] = ins[i];
    if (attr) n.attr = *attr;
    char err[DC_ERR_LEN];
    if (!dc_infer_type(g, &n, &n.type, err, sizeof err)) {
        CHECK_MSG(false, "shape rule of %s: %s", dc_op_name(op), err);
        return -1;
    }
    return dc_graph_append(g, &n);
}

static dc_exec *new_exec(const dc_graph *g, uint64_t seed) {
    char err[DC_ERR_LEN] = "";
    dc_exec *e = dc_exec_new(g, seed, err, sizeof err);
    CHECK_MSG(e != NULL, "dc_exec_new: %s", err);
    return e;
}

static dc_tensor *filled(int rank, const int64_t *dims, const float *vals) {
    dc_type t = f32_type(rank, dims);
    dc_tensor *x = dc_tensor_new(&t);
    memcpy(x->data, vals, (size_t)dc_numel(&t.shape) * sizeof(float));
    return x;
}

/* ---- INPUT -------------------------------------------------------------------------------- */

OP_TEST(INPUT, passes_through) {
    dc_graph *g = dc_graph_new("pass");
    int x = add_input(g, "x", 2, (int64_t[]){ 2, 3 });
    dc_graph_add_output(g, x, "y");
    dc_exec *e = new_exec(g, 1);
    dc_tensor *v = filled(2, (int64_t[]){ 2, 3 }, (float[]){ 1.5f, -2, 3, 4, 5, 6.25f });
    char err[DC_ERR_LEN];
    if (e) {
        const dc_tensor *o = dc_exec_output(e, 0);
        for (int i = 0; i < 6; i++) CHECK_EQ_INT(((float *)o->data)[i] == 0.0f, 1);
        CHECK(dc_exec_set_input(e, "x", v, err, sizeof err));
        CHECK_MSG(dc_exec_run(e, err, sizeof err), "run: %s", err);
        o = dc_exec_output(e, 0);
        CHECK(dc_type_eq(&o->type, &v->type));
        CHECK(!o->owned);
        CHECK(memcmp(o->data, v->data, 6 * sizeof(float)) == 0);
    }
    dc_tensor_free(v);
    dc_exec_free(e);
    dc_graph_free(g);
}

/* ---- PARAM -------------------------------------------------------------------------------- */

OP_TEST(PARAM, zeros_ones_exact) {
    dc_graph *g = dc_graph_new("p");
    add_param(g, "a.zeros", 2, (int64_t[]){ 3, 5 }, DC_INIT_ZEROS, 0, 0);
    int o = add_param(g, "a.ones", 1, (int64_t[]){ 7 }, DC_INIT_ONES, 0, 0);
    dc_graph_add_output(g, o, NULL);
    dc_exec *e = new_exec(g, 42);
    if (e) {
        dc_tensor *z = dc_exec_param(e, "a.zeros"), *one = dc_exec_param(e, "a.ones");
        CHECK(z && one && !dc_exec_param(e, "a.none"));
        if (z && one) {
            for (int i = 0; i < 15; i++) CHECK_NEAR(((float *)z->data)[i], 0.0, 0, 0);
            for (int i = 0; i < 7; i++) CHECK_NEAR(((float *)one->data)[i], 1.0, 0, 0);
        }
    }
    dc_exec_free(e);
    dc_graph_free(g);
}

/* Initialises a standalone param node and returns its values (caller frees). */
static dc_tensor *init_param(const char *name, int rank, const int64_t *dims, dc_init_kind kind,
                             float a, float b, uint64_t seed) {
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = DC_OP_PARAM;
    n.type = f32_type(rank, dims);
    n.name = (char *)name;
    n.attr.init = (dc_init_attr){ kind, a, b };
    dc_tensor *t = dc_tensor_new(&n.type);
    dc_param_init(&n, t, seed);
    return t;
}

typedef struct { double mean, var, min, max; } moments;

static moments stats(const dc_tensor *t) {
    int64_t n = dc_numel(&t->type.shape);
    const float *p = t->data;
    moments m = { 0, 0, p[0], p[0] };
    for (int64_t i = 0; i < n; i++) {
        m.mean += p[i];
        m.min = p[i] < m.min ? p[i] : m.min;
        m.max = p[i] > m.max ? p[i] : m.max;
    }
    m.mean /= (double)n;
    for (int64_t i = 0; i < n; i++) m.var += (p[i] - m.mean) * (p[i] - m.mean);
    m.var /= (double)n;
    return m;
}

OP_TEST(PARAM, random_moments_and_bounds) {
    /* normal(std 0.5), 4096 values: mean within 4 standard errors, variance within 6% */
    dc_tensor *nrm = init_param("m.normal", 2, (int64_t[]){ 64, 64 }, DC_INIT_NORMAL, 0.5f, 0, 7);
    moments m = stats(nrm);
    CHECK_NEAR(m.mean, 0.0, 4 * 0.5 / 64, 0);
    CHECK_NEAR(m.var, 0.25, 0, 0.06);
    /* kaiming on a [256, 16] weight: fan_in 256, variance 2/256 */
    dc_tensor *kai = init_param("m.kaiming", 2, (int64_t[]){ 256, 16 }, DC_INIT_KAIMING, 0, 0, 7);
    m = stats(kai);
    CHECK_NEAR(m.mean, 0.0, 4 * sqrt(2.0 / 256) / 64, 0);
    CHECK_NEAR(m.var, 2.0 / 256, 0, 0.06);
    /* kaiming on an HWIO conv weight [3,3,8,32]: fan_in = 3*3*8 = 72 */
    dc_tensor *kc = init_param("m.conv", 4, (int64_t[]){ 3, 3, 8, 32 }, DC_INIT_KAIMING, 0, 0, 7);
    m = stats(kc);
    CHECK_NEAR(m.var, 2.0 / 72, 0, 0.08);
    /* xavier on [48, 80]: U(-r, r), r = sqrt(6/128), variance r^2/3 */
    double r = sqrt(6.0 / 128);
    dc_tensor *xav = init_param("m.xavier", 2, (int64_t[]){ 48, 80 }, DC_INIT_XAVIER, 0, 0, 7);
    m = stats(xav);
    CHECK(m.min > -r && m.max < r);
    CHECK(m.min < -0.98 * r && m.max > 0.98 * r);
    CHECK_NEAR(m.var, r * r / 3, 0, 0.06);
    /* uniform[2, 5): inside the bounds, mean 3.5, variance 9/12 */
    dc_tensor *uni = init_param("m.uniform", 1, (int64_t[]){ 4096 }, DC_INIT_UNIFORM, 2, 5, 7);
    m = stats(uni);
    CHECK(m.min >= 2 && m.max < 5);
    CHECK(m.min < 2.01 && m.max > 4.99);
    CHECK_NEAR(m.mean, 3.5, 4 * sqrt(0.75) / 64, 0);
    CHECK_NEAR(m.var, 0.75, 0, 0.06);
    /* a scalar: fan_in = fan_out = 1, so kaiming has std sqrt(2); just finite and nonzero */
    dc_tensor *sc = init_param("m.scalar", 0, NULL, DC_INIT_KAIMING, 0, 0, 7);
    CHECK(isfinite(((float *)sc->data)[0]) && ((float *)sc->data)[0] != 0.0f);
    dc_tensor_free(nrm);
    dc_tensor_free(kai);
    dc_tensor_free(kc);
    dc_tensor_free(xav);
    dc_tensor_free(uni);
    dc_tensor_free(sc);
}

OP_TEST(PARAM, keyed_by_seed_and_name) {
    int64_t dims[2] = { 8, 16 };
    size_t bytes = 8 * 16 * sizeof(float);
    dc_tensor *a = init_param("enc.l0.w", 2, dims, DC_INIT_NORMAL, 1, 0, 5);
    dc_tensor *same = init_param("enc.l0.w", 2, dims, DC_INIT_NORMAL, 1, 0, 5);
    dc_tensor *seed = init_param("enc.l0.w", 2, dims, DC_INIT_NORMAL, 1, 0, 6);
    dc_tensor *name = init_param("enc.l1.w", 2, dims, DC_INIT_NORMAL, 1, 0, 5);
    CHECK(memcmp(a->data, same->data, bytes) == 0);
    CHECK(memcmp(a->data, seed->data, bytes) != 0);
    CHECK(memcmp(a->data, name->data, bytes) != 0);
    /* inside a graph, a param's value does not depend on the params around it */
    dc_graph *g = dc_graph_new("p");
    add_param(g, "other", 1, (int64_t[]){ 100 }, DC_INIT_NORMAL, 1, 0);
    int w = add_param(g, "enc.l0.w", 2, dims, DC_INIT_NORMAL, 1, 0);
    dc_graph_add_output(g, w, NULL);
    dc_exec *e = new_exec(g, 5);
    if (e) CHECK(memcmp(dc_exec_param(e, "enc.l0.w")->data, a->data, bytes) == 0);
    dc_exec_free(e);
    dc_graph_free(g);
    dc_tensor_free(a);
    dc_tensor_free(same);
    dc_tensor_free(seed);
    dc_tensor_free(name);
}

/* ---- executor ----------------------------------------------------------------------------- */

static dc_attr conv_attr(int64_t s, int64_t p, int64_t groups) {
    dc_attr a;
    memset(&a, 0, sizeof a);
    a.conv.stride = (dc_ints){ 2, { s, s } };
    a.conv.pad = (dc_ints){ 2, { p, p } };
    a.conv.groups = groups;
    return a;
}

/* x [1,2,2,1] = 1..4 -conv w=[1,2]-> [1,2,2,2] -avg_pool 2-> [1,1,1,2] = [2.5, 5]
 *   -upsample 2-> [1,2,2,2] -linear(ones [2,3], ones [3])-> every entry 2.5 + 5 + 1 = 8.5
 *   pooled @ m ([2,2] = 1..4) -> [2.5*1 + 5*3, 2.5*2 + 5*4] = [17.5, 25] */
TEST(exec_graph_hand_values) {
    dc_graph *g = dc_graph_new("chain");
    int x = add_input(g, "x", 4, (int64_t[]){ 1, 2, 2, 1 });
    int w = add_input(g, "w", 4, (int64_t[]){ 1, 1, 1, 2 });
    int m = add_input(g, "m", 2, (int64_t[]){ 2, 2 });
    int lw = add_param(g, "lin.w", 2, (int64_t[]){ 2, 3 }, DC_INIT_ONES, 0, 0);
    int lb = add_param(g, "lin.b", 1, (int64_t[]){ 3 }, DC_INIT_ONES, 0, 0);
    dc_attr ca = conv_attr(1, 0, 1), pool = { .pool = { 2 } }, mm = { .matmul = { false, false } };
    int c = add_op(g, DC_OP_CONV2D, &ca, 2, (int[]){ x, w });
    int p = add_op(g, DC_OP_AVG_POOL, &pool, 1, (int[]){ c });
    int u = add_op(g, DC_OP_UPSAMPLE, &pool, 1, (int[]){ p });
    int l = add_op(g, DC_OP_LINEAR, NULL, 3, (int[]){ u, lw, lb });
    int q = add_op(g, DC_OP_MATMUL, &mm, 2, (int[]){ p, m });
    dc_graph_add_output(g, l, "lin");
    dc_graph_add_output(g, q, "mm");
    dc_exec *e = l >= 0 && q >= 0 ? new_exec(g, 3) : NULL;
    dc_tensor *tx = filled(4, (int64_t[]){ 1, 2, 2, 1 }, (float[]){ 1, 2, 3, 4 });
    dc_tensor *tw = filled(4, (int64_t[]){ 1, 1, 1, 2 }, (float[]){ 1, 2 });
    dc_tensor *tm = filled(2, (int64_t[]){ 2, 2 }, (float[]){ 1, 2, 3, 4 });
    char err[DC_ERR_LEN];
    if (e) {
        CHECK(dc_exec_set_input(e, "x", tx, err, sizeof err));
        CHECK(dc_exec_set_input(e, "w", tw, err, sizeof err));
        CHECK(dc_exec_set_input(e, "m", tm, err, sizeof err));
        for (int rep = 0; rep < 2; rep++) { /* a second run sees the same values */
            CHECK_MSG(dc_exec_run(e, err, sizeof err), "run: %s", err);
            const dc_tensor *ol = dc_exec_output(e, 0), *om = dc_exec_output(e, 1);
            CHECK_EQ_INT(dc_numel(&ol->type.shape), 12);
            for (int i = 0; i < 12; i++) CHECK_NEAR(((float *)ol->data)[i], 8.5, 0, 0);
            CHECK_NEAR(((float *)om->data)[0], 17.5, 0, 0);
            CHECK_NEAR(((float *)om->data)[1], 25.0, 0, 0);
            CHECK_NEAR(((float *)dc_exec_value(e, p)->data)[1], 5.0, 0, 0);
        }
        /* one arena: every value 64-byte aligned, slots sum to the arena size */
        size_t total = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            dc_tensor *v = dc_exec_value(e, i);
            CHECK_EQ_INT((uintptr_t)v->data % 64, 0);
            total += ((size_t)dc_numel(&v->type.shape) * 4 + 63) / 64 * 64;
        }
        CHECK_EQ_INT(dc_exec_arena_bytes(e), total);
    }
    dc_tensor_free(tx);
    dc_tensor_free(tw);
    dc_tensor_free(tm);
    dc_exec_free(e);
    dc_graph_free(g);
}

/* A conv / pool / linear / matmul graph big enough to be split over threads. */
static dc_graph *threads_graph(void) {
    dc_graph *g = dc_graph_new("threads");
    int x = add_input(g, "x", 4, (int64_t[]){ 2, 12, 12, 8 });
    int w1 = add_param(g, "c1.w", 4, (int64_t[]){ 3, 3, 8, 16 }, DC_INIT_KAIMING, 0, 0);
    int w2 = add_param(g, "c2.w", 4, (int64_t[]){ 3, 3, 4, 16 }, DC_INIT_XAVIER, 0, 0);
    int lw = add_param(g, "l.w", 2, (int64_t[]){ 16, 40 }, DC_INIT_NORMAL, 0.3f, 0);
    int lb = add_param(g, "l.b", 1, (int64_t[]){ 40 }, DC_INIT_UNIFORM, -1, 1);
    int mw = add_param(g, "m.w", 2, (int64_t[]){ 50, 40 }, DC_INIT_NORMAL, 0.2f, 0);
    dc_attr c1 = conv_attr(1, 1, 1), c2 = conv_attr(2, 1, 4), pool = { .pool = { 2 } };
    dc_attr mm = { .matmul = { false, true } };
    int h = add_op(g, DC_OP_CONV2D, &c1, 2, (int[]){ x, w1 });       /* [2,12,12,16] */
    h = add_op(g, DC_OP_CONV2D, &c2, 2, (int[]){ h, w2 });           /* [2,6,6,16] */
    h = add_op(g, DC_OP_AVG_POOL, &pool, 1, (int[]){ h });           /* [2,3,3,16] */
    h = add_op(g, DC_OP_UPSAMPLE, &pool, 1, (int[]){ h });           /* [2,6,6,16] */
    h = add_op(g, DC_OP_LINEAR, NULL, 3, (int[]){ h, lw, lb });      /* [2,6,6,40] */
    h = add_op(g, DC_OP_MATMUL, &mm, 2, (int[]){ h, mw });           /* [2,6,6,50] */
    dc_graph_add_output(g, h, NULL);
    return g;
}

/* Runs threads_graph on a fixed input with nthreads threads; returns a copy of the output. */
static float *run_with_threads(const dc_graph *g, int nthreads, int64_t *count) {
    omp_set_num_threads(nthreads);
    dc_exec *e = new_exec(g, 11);
    float *copy = NULL;
    if (e) {
        dc_tensor *x = dc_exec_value(e, dc_graph_find_input(g, "x"));
        for (int64_t i = 0; i < dc_numel(&x->type.shape); i++) ((float *)x->data)[i] = sinf((float)i);
        char err[DC_ERR_LEN];
        CHECK_MSG(dc_exec_run(e, err, sizeof err), "run: %s", err);
        const dc_tensor *o = dc_exec_output(e, 0);
        *count = dc_numel(&o->type.shape);
        copy = malloc((size_t)*count * sizeof *copy);
        memcpy(copy, o->data, (size_t)*count * sizeof *copy);
    }
    dc_exec_free(e);
    return copy;
}

TEST(exec_bitwise_across_threads) {
    int saved = omp_get_max_threads();
    dc_graph *g = threads_graph();
    int64_t n1 = 0, n2 = 0;
    float *one = run_with_threads(g, 1, &n1), *two = run_with_threads(g, 2, &n2);
    omp_set_num_threads(saved);
    CHECK_EQ_INT(n1, 2 * 6 * 6 * 50);
    CHECK_EQ_INT(n2, n1);
    if (one && two) {
        CHECK(memcmp(one, two, (size_t)n1 * sizeof(float)) == 0);
        double norm = 0;
        for (int64_t i = 0; i < n1; i++) norm += fabs(one[i]);
        CHECK(norm > 0 && isfinite(norm));
    }
    free(one);
    free(two);
    dc_graph_free(g);
}

TEST(exec_set_input_errors) {
    dc_graph *g = dc_graph_new("s");
    int x = add_input(g, "x", 2, (int64_t[]){ 4, 8 });
    dc_graph_add_output(g, x, NULL);
    dc_exec *e = new_exec(g, 0);
    dc_type t49 = f32_type(2, (int64_t[]){ 4, 9 }), i48 = f32_type(2, (int64_t[]){ 4, 8 });
    i48.dtype = DC_I32;
    dc_tensor *a = dc_tensor_new(&t49), *b = dc_tensor_new(&i48);
    char err[DC_ERR_LEN];
    if (e) {
        CHECK(!dc_exec_set_input(e, "x", a, err, sizeof err));
        CHECK_STR_EQ(err, "input 'x' expects f32[4,8], got f32[4,9]");
        CHECK(!dc_exec_set_input(e, "x", b, err, sizeof err));
        CHECK_STR_EQ(err, "input 'x' expects f32[4,8], got i32[4,8]");
        CHECK(!dc_exec_set_input(e, "y", a, err, sizeof err));
        CHECK_STR_EQ(err, "no input named 'y'");
    }
    tu_free(2, a, b);
    dc_exec_free(e);
    dc_graph_free(g);
}

TEST(exec_runtime_error_names_node) {
    dc_graph *g = dc_graph_new("r");
    int table = add_param(g, "emb", 2, (int64_t[]){ 10, 4 }, DC_INIT_ONES, 0, 0);
    int idx = add_input_of(g, "idx", DC_I32, 1, (int64_t[]){ 3 });
    int out = add_op(g, DC_OP_GATHER, NULL, 2, (int[]){ table, idx });
    dc_graph_add_output(g, out, NULL);
    dc_exec *e = out >= 0 ? new_exec(g, 0) : NULL;
    dc_type it = f32_type(1, (int64_t[]){ 3 });
    it.dtype = DC_I32;
    dc_tensor *iv = dc_tensor_new(&it);
    char err[DC_ERR_LEN] = "";
    if (e) {
        ((int32_t *)iv->data)[1] = 12;
        CHECK(dc_exec_set_input(e, "idx", iv, err, sizeof err));
        CHECK(!dc_exec_run(e, err, sizeof err));
        CHECK_STR_EQ(err, "node %1 (gather): gather: index 12 out of range [0, 10)");
    }
    dc_tensor_free(iv);
    dc_exec_free(e);
    dc_graph_free(g);
}

TEST(exec_rejects_unverified_graph) {
    dc_graph *g = dc_graph_new("bad");
    int x = add_input(g, "x", 2, (int64_t[]){ 2, 3 });
    int w = add_input(g, "w", 2, (int64_t[]){ 4, 5 });
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = DC_OP_MATMUL;
    n.n_in = 2;
    n.in[0] = x;
    n.in[1] = w;
    n.type = f32_type(2, (int64_t[]){ 2, 5 });
    dc_graph_add_output(g, dc_graph_append(g, &n), NULL);
    char err[DC_ERR_LEN] = "";
    dc_exec *e = dc_exec_new(g, 0, err, sizeof err);
    CHECK(e == NULL);
    CHECK_MSG(strncmp(err, "node %0 (matmul)", 16) == 0, "unexpected message: %s", err);
    dc_exec_free(e);
    dc_graph_free(g);
}

/* ---- copying params between executors ------------------------------------------------------ */

static dc_exec *parsed_exec(const char *text, dc_graph **g) {
    char err[DC_ERR_LEN] = "";
    *g = dc_parse(text, strlen(text), "copy.dcir", err, sizeof err);
    dc_exec *e = *g ? dc_exec_new(*g, 1, err, sizeof err) : NULL;
    CHECK_MSG(e != NULL, "%s", err);
    return e;
}

static bool same_floats(const dc_tensor *a, const dc_tensor *b) {
    return dc_type_eq(&a->type, &b->type) &&
           memcmp(a->data, b->data, (size_t)dc_numel(&a->type.shape) * sizeof(float)) == 0;
}

static bool all_zero(const dc_tensor *t) {
    for (int64_t i = 0; i < dc_numel(&t->type.shape); i++)
        if (((const float *)t->data)[i] != 0) return false;
    return true;
}

TEST(exec_copy_params_by_name_and_prefix) {
    dc_graph *ga, *gb, *gc;
    dc_exec *a = parsed_exec("graph @a() -> (f32[2,3]) {\n"
                             "  %0 = param \"l.w\" : f32[2,3] init=normal(1)\n"
                             "  %1 = param \"l.b\" : f32[3] init=normal(1)\n"
                             "  %2 = param \"ema.l.w\" : f32[2,3] init=zeros\n"
                             "  %3 = param \"ema.l.b\" : f32[3] init=zeros\n"
                             "  %4 = param \"ema.other\" : f32[2] init=ones\n"
                             "  return %0\n}\n", &ga);
    dc_exec *b = parsed_exec("graph @b() -> (f32[2,3]) {\n"
                             "  %0 = param \"l.w\" : f32[2,3] init=zeros\n"
                             "  %1 = param \"l.b\" : f32[3] init=zeros\n"
                             "  %2 = param \"extra\" : f32[4] init=zeros\n"
                             "  return %0\n}\n", &gb);
    dc_exec *c = parsed_exec("graph @c() -> (f32[3,3]) {\n"
                             "  %0 = param \"l.w\" : f32[3,3] init=zeros\n"
                             "  return %0\n}\n", &gc);
    char err[DC_ERR_LEN] = "";
    if (a && b && c) {
        /* need_all: b's "extra" has no source; nothing is copied */
        CHECK(!dc_exec_copy_params(a, b, &(dc_param_map){ .need_all = true }, err, sizeof err));
        CHECK_STR_EQ(err, "params: graph @a has no param 'extra' (for 'extra' of graph @b)");
        CHECK(all_zero(dc_exec_param(b, "l.w")));
        /* a source of another type: an error, nothing copied */
        CHECK(!dc_exec_copy_params(a, c, &(dc_param_map){ 0 }, err, sizeof err));
        CHECK_STR_EQ(err, "params: 'l.w' of graph @a is f32[2,3], 'l.w' of graph @c f32[3,3]");
        CHECK(all_zero(dc_exec_param(c, "l.w")));
        /* same names; "extra" left alone */
        CHECK_MSG(dc_exec_copy_params(a, b, &(dc_param_map){ 0 }, err, sizeof err), "%s", err);
        CHECK(same_floats(dc_exec_param(b, "l.w"), dc_exec_param(a, "l.w")));
        CHECK(same_floats(dc_exec_param(b, "l.b"), dc_exec_param(a, "l.b")));
        CHECK(all_zero(dc_exec_param(b, "extra")));
        /* within one executor: ema.NAME <- NAME; "ema.other" has no source and stays */
        CHECK_MSG(dc_exec_copy_params(a, a, &(dc_param_map){ .to = "ema." }, err, sizeof err), "%s", err);
        CHECK(same_floats(dc_exec_param(a, "ema.l.w"), dc_exec_param(a, "l.w")));
        CHECK(same_floats(dc_exec_param(a, "ema.l.b"), dc_exec_param(a, "l.b")));
        CHECK_NEAR(((const float *)dc_exec_param(a, "ema.other")->data)[1], 1, 0, 0);
        /* NAME <- ema.NAME across executors */
        ((float *)dc_exec_param(a, "ema.l.b")->data)[2] = 42;
        CHECK_MSG(dc_exec_copy_params(a, b, &(dc_param_map){ .from = "ema." }, err, sizeof err), "%s", err);
        CHECK_NEAR(((const float *)dc_exec_param(b, "l.b")->data)[2], 42, 0, 0);
    }
    dc_exec_free(a);
    dc_exec_free(b);
    dc_exec_free(c);
    dc_graph_free(ga);
    dc_graph_free(gb);
    dc_graph_free(gc);
}

/* The ref program of every non-source node of g, in g's host's scratch when host is given. */
static dc_exec *ref_program_in(const dc_graph *g, dc_exec *host, char *err, size_t len) {
    dc_step *steps = malloc((size_t)g->n_nodes * sizeof *steps);
    if (!steps) abort(); /* out of memory */
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op != DC_OP_INPUT && g->nodes[i].op != DC_OP_PARAM) steps[n++] = dc_ref_step(i);
    dc_exec *e = dc_exec_new_program_in(g, 3, steps, n, NULL, host, err, len);
    free(steps);
    return e;
}

static dc_graph *planned(const char *text) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse(text, strlen(text), "borrow.dcir", err, sizeof err);
    CHECK_MSG(g && dc_run_pipeline(g, "plan-memory", &(dc_pass_opts){ 0 }, err, sizeof err), "%s", err);
    return g;
}

static float first_output(dc_exec *e) { return ((const float *)dc_exec_output(e, 0)->data)[0]; }

/* A program built in a host's scratch (past its inputs and params) computes what one with an
 * arena of its own computes, leaves the host's params and inputs as they were (the host's
 * next run gives the same result), and one too big for the scratch gets its own arena. */
TEST(exec_borrowed_arena_leaves_host_state) {
    dc_graph *hg = planned("graph @host(%x: f32[64,64]) -> (f32[]) {\n"
                           "  %0 = param \"w\" : f32[64,64] init=normal(1)\n"
                           "  %1 = mul %x, %0 : f32[64,64]\n  %2 = tanh %1 : f32[64,64]\n"
                           "  %3 = add %2, %x : f32[64,64]\n  %4 = exp %3 : f32[64,64]\n"
                           "  %5 = sum %4 {axes=[], keepdims=false} : f32[]\n  return %5\n}\n");
    static const char *guest_fmt = "graph @guest(%%x: f32[%d,16]) -> (f32[%d,16]) {\n"
                                   "  %%0 = param \"v\" : f32[%d,16] init=normal(1)\n"
                                   "  %%1 = exp %%x : f32[%d,16]\n  %%2 = mul %%1, %%0 : f32[%d,16]\n"
                                   "  %%3 = add %%2, %%x : f32[%d,16]\n  return %%3\n}\n";
    char small[512], big[512], err[DC_ERR_LEN] = "";
    snprintf(small, sizeof small, guest_fmt, 8, 8, 8, 8, 8, 8);
    snprintf(big, sizeof big, guest_fmt, 4096, 4096, 4096, 4096, 4096, 4096);
    dc_graph *sg = planned(small), *bg = planned(big);
    dc_exec *host = hg ? ref_program_in(hg, NULL, err, sizeof err) : NULL;
    float before = 0, w0 = 0;
    if (host) { /* the host has run before its guests are built (they live until it runs again) */
        dc_tensor *hx = dc_exec_value(host, dc_graph_input(hg, 0));
        for (int64_t i = 0; i < 64 * 64; i++) ((float *)hx->data)[i] = 0.01f * (float)(i % 97) - 0.4f;
        CHECK(dc_exec_run(host, err, sizeof err));
        before = first_output(host);
        w0 = ((const float *)dc_exec_param(host, "w")->data)[5];
    }
    dc_exec *alone = sg ? ref_program_in(sg, NULL, err, sizeof err) : NULL;
    dc_exec *guest = sg && host ? ref_program_in(sg, host, err, sizeof err) : NULL;
    dc_exec *large = bg && host ? ref_program_in(bg, host, err, sizeof err) : NULL;
    CHECK_MSG(host && alone && guest && large, "%s", err);
    if (host && alone && guest && large) {
        CHECK(dc_exec_borrows_arena(guest) && !dc_exec_borrows_arena(alone) && !dc_exec_borrows_arena(large));
        dc_exec *gs[3] = { alone, guest, large };
        for (int k = 0; k < 3; k++) {
            const dc_graph *g = k == 2 ? bg : sg;
            dc_tensor *x = dc_exec_value(gs[k], dc_graph_input(g, 0));
            for (int64_t i = 0; i < dc_numel(&x->type.shape); i++) ((float *)x->data)[i] = 0.02f * (float)(i % 31) - 0.3f;
            CHECK(dc_exec_run(gs[k], err, sizeof err));
        }
        CHECK(memcmp(dc_exec_output(guest, 0)->data, dc_exec_output(alone, 0)->data, 8 * 16 * sizeof(float)) == 0);
        CHECK(memcmp(dc_exec_output(large, 0)->data, dc_exec_output(alone, 0)->data, 8 * 16 * sizeof(float)) == 0);
        float x0 = -0.3f, v0 = ((const float *)dc_exec_param(alone, "v")->data)[0];
        CHECK_NEAR(first_output(guest), expf(x0) * v0 + x0, 1e-6, 1e-6);
        CHECK_NEAR(((const float *)dc_exec_param(host, "w")->data)[5], w0, 0, 0);
        CHECK(dc_exec_run(host, err, sizeof err));
        CHECK_NEAR(first_output(host), before, 0, 0);
    }
    dc_exec_free(large);
    dc_exec_free(guest);
    dc_exec_free(alone);
    dc_exec_free(host);
    dc_graph_free(hg);
    dc_graph_free(sg);
    dc_graph_free(bg);
}
