/* test_dnnl.c — the oneDNN provider (codegen/dnnl/) against independent oracles: matmul,
 * linear and conv2d forward against the ref kernels (through tu_eval) followed by the
 * epilogue computed element by element; conv2d backward-data / backward-weights / bias
 * gradient against brute-force double-precision loops. Every call must have chosen a
 * non-ref implementation and give identical bits when repeated.
 *
 * Tolerance: oneDNN sums the K products of a contraction in another order (and blocks
 * them differently), so with inputs in [-1, 1) we accept
 * |got - want| <= 2e-6 * K * (1 + |want|), K = products per output element. */
#include "tests/test.h"

#include <stdlib.h>

#include "codegen/codegen.h"
#include "ir/scalar.h"
#include "tests/op_util.h"

static dc_tensor *rnd(int rank, const int64_t *dims, uint64_t stream) {
    dc_type t = { .dtype = DC_F32, .shape = { .rank = rank } };
    for (int i = 0; i < rank; i++) t.shape.dim[i] = dims[i];
    dc_tensor *x = dc_tensor_new(&t);
    float *p = x->data;
    for (int64_t i = 0; i < dc_numel(&t.shape); i++) p[i] = 2.0f * dc_rng_uniform01(7, stream, (uint64_t)i) - 1.0f;
    return x;
}

static dc_tensor *zeros_like(const dc_tensor *t) { return dc_tensor_new(&t->type); }

/* Compares got with want under the tolerance for K products; reports the first mismatch. */
static void check_close(const char *what, const dc_tensor *got, const dc_tensor *want, int64_t k) {
    CHECK_MSG(dc_shape_eq(&got->type.shape, &want->type.shape), "%s: shapes differ", what);
    const float *g = got->data, *w = want->data;
    double tol = 2e-6 * (double)k;
    for (int64_t i = 0; i < dc_numel(&want->type.shape); i++)
        if (!(fabs((double)g[i] - w[i]) <= tol * (1.0 + fabs(w[i])))) {
            dc_test_fail(__FILE__, __LINE__, "%s: element %lld = %.9g, expected %.9g (K=%lld)", what,
                         (long long)i, g[i], w[i], (long long)k);
            return;
        }
}

/* The last call chose a named, non-ref implementation. */
static void check_impl(const char *what) {
    const char *impl = dc_dnnl_last_impl();
    CHECK_MSG(impl[0] && !strstr(impl, "ref"), "%s: implementation '%s'", what, impl);
}

static void check_same_bits(const char *what, const dc_tensor *a, const dc_tensor *b) {
    size_t bytes = (size_t)dc_numel(&a->type.shape) * sizeof(float);
    CHECK_MSG(memcmp(a->data, b->data, bytes) == 0, "%s: two runs differ", what);
}

/* gelu, tanh form, in double: 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))) */
static float gelu_tanh(float v) {
    double x = v;
    return (float)(0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))));
}

/* want <- act(scale * want + bias) + residual, in place, per the documented order. */
static void apply_epilogue(dc_tensor *want, const dc_epilogue *e) {
    float *y = want->data;
    int64_t n = dc_numel(&want->type.shape), o = want->type.shape.dim[want->type.shape.rank - 1];
    float scale = e->scale == 0.0f ? 1.0f : e->scale;
    for (int64_t i = 0; i < n; i++) {
        float v = scale * y[i];
        if (e->bias) v += ((const float *)e->bias->data)[i % o];
        if (e->act == DC_ACTIVATION_RELU) v = v < 0 ? 0.0f : v;
        if (e->act == DC_ACTIVATION_GELU) v = gelu_tanh(v);
        if (e->act == DC_ACTIVATION_SILU) v = v * dc_sigmoidf(v);
        if (e->residual) v += ((const float *)e->residual->data)[i];
        y[i] = v;
    }
}

/* The epilogue variants every forward test runs: identity, each part alone, all together. */
enum { N_EPI = 7 };
static dc_epilogue epilogue_variant(int v, const dc_tensor *bias, const dc_tensor *res) {
    switch (v) {
    case 1: return (dc_epilogue){ .bias = bias };
    case 2: return (dc_epilogue){ .act = DC_ACTIVATION_RELU };
    case 3: return (dc_epilogue){ .bias = bias, .act = DC_ACTIVATION_GELU };
    case 4: return (dc_epilogue){ .act = DC_ACTIVATION_SILU, .scale = 0.5f };
    case 5: return (dc_epilogue){ .residual = res };
    case 6: return (dc_epilogue){ .bias = bias, .act = DC_ACTIVATION_SILU, .residual = res, .scale = 1.5f };
    default: return (dc_epilogue){ 0 };
    }
}

/* ---- matmul --------------------------------------------------------------------------- */

/* Runs matmul a @ b (flags t) under every epilogue variant against ref + epilogue. */
static void matmul_case(const char *what, dc_tensor *a, dc_tensor *b, dc_matmul_attr t) {
    char err[DC_ERR_LEN] = "";
    dc_attr at = { .matmul = t };
    dc_tensor *ref = tu_eval(DC_OP_MATMUL, &at, 2, (dc_tensor *[]){ a, b }, NULL, 0, err, sizeof err);
    CHECK_MSG(ref, "%s: ref: %s", what, err);
    if (!ref) return;
    const dc_shape *so = &ref->type.shape;
    int64_t k = t.trans_b ? b->type.shape.dim[b->type.shape.rank - 1] : b->type.shape.dim[b->type.shape.rank - 2];
    dc_tensor *bias = rnd(1, &so->dim[so->rank - 1], 11), *res = rnd(so->rank, so->dim, 12);
    for (int v = 0; v < N_EPI; v++) {
        dc_epilogue e = epilogue_variant(v, bias, res);
        dc_tensor *want = dc_tensor_new(&ref->type), *got = zeros_like(ref), *again = zeros_like(ref);
        memcpy(want->data, ref->data, (size_t)dc_numel(so) * sizeof(float));
        apply_epilogue(want, &e);
        bool ok = dc_dnnl_matmul(a, b, t, &e, got, err, sizeof err);
        CHECK_MSG(ok, "%s epilogue %d: %s", what, v, err);
        if (ok) {
            check_impl(what);
            check_close(what, got, want, k);
            CHECK(dc_dnnl_matmul(a, b, t, &e, again, err, sizeof err));
            check_same_bits(what, got, again);
        }
        tu_free(3, want, got, again);
    }
    tu_free(3, ref, bias, res);
}

TEST(dnnl_matmul_trans_combos) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t da[3] = { 3, ta ? 9 : 17, ta ? 17 : 9 }, db[3] = { 3, tb ? 11 : 9, tb ? 9 : 11 };
            dc_tensor *a = rnd(3, da, 1), *b = rnd(3, db, 2);
            char what[64];
            snprintf(what, sizeof what, "matmul trans_a=%d trans_b=%d", ta, tb);
            matmul_case(what, a, b, (dc_matmul_attr){ ta, tb });
            tu_free(2, a, b);
        }
    dc_dnnl_shutdown();
}

TEST(dnnl_matmul_broadcast_odd) {
    struct { int ra, rb; int64_t da[4], db[4]; bool tb; } cs[] = {
        { 2, 2, { 7, 13 }, { 13, 5 }, false },
        { 4, 3, { 2, 1, 5, 6 }, { 3, 6, 4 }, false },
        { 2, 3, { 5, 6 }, { 4, 6, 7 }, true },
        { 3, 2, { 4, 33, 70 }, { 70, 19 }, false },
        { 4, 4, { 2, 3, 1, 8 }, { 1, 3, 8, 1 }, false },
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int64_t db[4];
        memcpy(db, cs[i].db, sizeof db);
        if (cs[i].tb) { /* store b transposed: swap its last two dims */
            int64_t s = db[cs[i].rb - 1];
            db[cs[i].rb - 1] = db[cs[i].rb - 2];
            db[cs[i].rb - 2] = s;
        }
        dc_tensor *a = rnd(cs[i].ra, cs[i].da, 3), *b = rnd(cs[i].rb, db, 4);
        char what[64];
        snprintf(what, sizeof what, "matmul case %zu", i);
        matmul_case(what, a, b, (dc_matmul_attr){ false, cs[i].tb });
        tu_free(2, a, b);
    }
    dc_dnnl_shutdown();
}

TEST(dnnl_linear) {
    int64_t dx[3] = { 2, 3, 8 }, dw[2] = { 8, 6 }, dbias[1] = { 6 };
    dc_tensor *x = rnd(3, dx, 5), *w = rnd(2, dw, 6), *b = rnd(1, dbias, 7);
    char err[DC_ERR_LEN] = "";
    dc_tensor *want = tu_eval(DC_OP_LINEAR, NULL, 3, (dc_tensor *[]){ x, w, b }, NULL, 0, err, sizeof err);
    CHECK_MSG(want, "ref: %s", err);
    dc_tensor *res = rnd(3, want->type.shape.dim, 8), *got = zeros_like(want);
    dc_epilogue e = { .bias = b, .act = DC_ACTIVATION_GELU, .residual = res };
    dc_epilogue after = { .act = DC_ACTIVATION_GELU, .residual = res };
    apply_epilogue(want, &after);
    CHECK_MSG(dc_dnnl_linear(x, w, &e, got, err, sizeof err), "%s", err);
    check_impl("linear");
    check_close("linear", got, want, 8);
    tu_free(5, x, w, b, res, got);
    dc_tensor_free(want);
    dc_dnnl_shutdown();
}

TEST(dnnl_refuses_bad_shapes) {
    int64_t da[2] = { 4, 5 }, db[2] = { 6, 3 }, dout[2] = { 4, 3 };
    dc_tensor *a = rnd(2, da, 1), *b = rnd(2, db, 2), *out = rnd(2, dout, 3);
    char err[DC_ERR_LEN] = "";
    CHECK(!dc_dnnl_matmul(a, b, (dc_matmul_attr){ 0 }, NULL, out, err, sizeof err));
    CHECK_MSG(strstr(err, "dnnl matmul"), "message: %s", err);
    int64_t dbias[1] = { 4 };
    dc_tensor *b2 = rnd(2, (int64_t[]){ 5, 3 }, 4), *bias = rnd(1, dbias, 5);
    dc_epilogue e = { .bias = bias };
    CHECK(!dc_dnnl_matmul(a, b2, (dc_matmul_attr){ 0 }, &e, out, err, sizeof err));
    CHECK_MSG(strstr(err, "bias"), "message: %s", err);
    tu_free(5, a, b, out, b2, bias);
    dc_dnnl_shutdown();
}

/* ---- conv2d --------------------------------------------------------------------------- */

typedef struct { int64_t n, h, w, c, kh, kw, o, stride, pad, groups; } conv_case;

static const conv_case conv_cases[] = {
    { 2, 7, 7, 3, 3, 3, 8, 1, 1, 1 },   { 2, 8, 8, 4, 3, 3, 6, 2, 1, 1 },
    { 1, 9, 9, 5, 1, 1, 7, 1, 0, 1 },   { 2, 8, 8, 4, 1, 1, 8, 2, 0, 1 },
    { 2, 6, 6, 4, 3, 3, 6, 1, 0, 2 },   { 2, 7, 7, 8, 3, 3, 8, 1, 1, 8 },
    { 2, 9, 9, 6, 3, 3, 12, 2, 1, 6 },  { 2, 6, 5, 16, 3, 3, 32, 2, 0, 2 },
    { 2, 28, 28, 1, 3, 3, 32, 1, 1, 1 }, { 3, 14, 14, 32, 3, 3, 64, 1, 1, 1 },
    { 2, 9, 11, 16, 3, 3, 16, 1, 1, 1 }, { 2, 7, 6, 32, 3, 3, 48, 1, 0, 1 },
};
#define N_CONV (sizeof conv_cases / sizeof conv_cases[0])

static dc_conv_attr conv_attr(const conv_case *cc) {
    return (dc_conv_attr){ .stride = { 2, { cc->stride, cc->stride } }, .pad = { 2, { cc->pad, cc->pad } },
                           .groups = cc->groups };
}

static void conv_name(char *buf, size_t len, const char *op, const conv_case *cc, dc_conv_algo algo) {
    snprintf(buf, len, "%s%s x[%lld,%lld,%lld,%lld] k%lldx%lld o%lld s%lld p%lld g%lld", op,
             algo == DC_CONV_WINOGRAD ? " winograd" : "", (long long)cc->n, (long long)cc->h, (long long)cc->w,
             (long long)cc->c, (long long)cc->kh, (long long)cc->kw, (long long)cc->o, (long long)cc->stride,
             (long long)cc->pad, (long long)cc->groups);
}

/* The direct kernels ran when asked for; Winograd's when asked for where
 * dc_conv_winograd_fits says they fit (3x3, stride 1, pad <= 1, no groups, channels multiples
 * of 16) and the epilogue is one they take (oneDNN's Winograd convolution has no gelu, swish
 * or linear post-op; it then runs directly). */
static void check_algo(const char *what, const conv_case *cc, dc_conv_algo algo, const dc_epilogue *e) {
    bool fits = cc->kh == 3 && cc->kw == 3 && cc->stride == 1 && cc->pad <= 1 && cc->groups == 1 &&
                cc->c % 16 == 0 && cc->o % 16 == 0;
    bool takes = !e || ((e->act == DC_ACTIVATION_NONE || e->act == DC_ACTIVATION_RELU) &&
                        (e->scale == 0.0f || e->scale == 1.0f));
    bool wino = strstr(dc_dnnl_last_impl(), "wino") != NULL;
    if (algo == DC_CONV_DIRECT) CHECK_MSG(!wino, "%s: implementation '%s'", what, dc_dnnl_last_impl());
    if (algo == DC_CONV_WINOGRAD && fits && takes)
        CHECK_MSG(wino, "%s: implementation '%s'", what, dc_dnnl_last_impl());
}

static void conv_inputs(const conv_case *cc, dc_tensor **x, dc_tensor **w) {
    *x = rnd(4, (int64_t[]){ cc->n, cc->h, cc->w, cc->c }, 21);
    *w = rnd(4, (int64_t[]){ cc->kh, cc->kw, cc->c / cc->groups, cc->o }, 22);
}

TEST(dnnl_conv2d_forward) {
    char err[DC_ERR_LEN] = "", what[128];
    for (size_t i = 0; i < 2 * N_CONV; i++) {
        const conv_case *cc = &conv_cases[i / 2];
        dc_conv_algo algo = i % 2 ? DC_CONV_WINOGRAD : DC_CONV_DIRECT;
        conv_name(what, sizeof what, "conv2d", cc, algo);
        dc_tensor *x, *w;
        conv_inputs(cc, &x, &w);
        dc_attr at = { .conv = conv_attr(cc) };
        dc_tensor *ref = tu_eval(DC_OP_CONV2D, &at, 2, (dc_tensor *[]){ x, w }, NULL, 0, err, sizeof err);
        CHECK_MSG(ref, "%s: ref: %s", what, err);
        const dc_shape *so = &ref->type.shape;
        dc_tensor *bias = rnd(1, &cc->o, 23), *res = rnd(4, so->dim, 24);
        int64_t k = cc->kh * cc->kw * cc->c / cc->groups;
        for (int v = 0; v < N_EPI; v++) {
            dc_epilogue e = epilogue_variant(v, bias, res);
            dc_tensor *want = dc_tensor_new(&ref->type), *got = zeros_like(ref), *again = zeros_like(ref);
            memcpy(want->data, ref->data, (size_t)dc_numel(so) * sizeof(float));
            apply_epilogue(want, &e);
            bool ok = dc_dnnl_conv2d(x, w, at.conv, algo, &e, got, err, sizeof err);
            CHECK_MSG(ok, "%s epilogue %d: %s", what, v, err);
            if (ok) {
                check_impl(what);
                check_algo(what, cc, algo, &e);
                check_close(what, got, want, k);
                CHECK(dc_dnnl_conv2d(x, w, at.conv, algo, &e, again, err, sizeof err));
                check_same_bits(what, got, again);
            }
            tu_free(3, want, got, again);
        }
        tu_free(5, x, w, ref, bias, res);
    }
    dc_dnnl_shutdown();
}

/* Brute-force gradients of y = conv2d(x, w) for the upstream gradient dy, in double:
 * dx (when dx != NULL), dw and db (when dw != NULL). */
static void conv_grads(const conv_case *cc, const dc_tensor *x, const dc_tensor *w, const dc_tensor *dy,
                       dc_tensor *dx, dc_tensor *dw, dc_tensor *db) {
    const dc_shape *sy = &dy->type.shape;
    int64_t oh_n = sy->dim[1], ow_n = sy->dim[2], cg = cc->c / cc->groups, og = cc->o / cc->groups;
    size_t nx = (size_t)dc_numel(&x->type.shape), nw = (size_t)dc_numel(&w->type.shape);
    double *gx = calloc(nx, sizeof(double)), *gw = calloc(nw, sizeof(double)), *gb = calloc((size_t)cc->o, sizeof(double));
    const float *xp = x->data, *wp = w->data, *yp = dy->data;
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t oh = 0; oh < oh_n; oh++)
            for (int64_t ow = 0; ow < ow_n; ow++)
                for (int64_t o = 0; o < cc->o; o++) {
                    double g = yp[((n * oh_n + oh) * ow_n + ow) * cc->o + o];
                    gb[o] += g;
                    for (int64_t kh = 0; kh < cc->kh; kh++)
                        for (int64_t kw = 0; kw < cc->kw; kw++) {
                            int64_t ih = oh * cc->stride - cc->pad + kh, iw = ow * cc->stride - cc->pad + kw;
                            if (ih < 0 || ih >= cc->h || iw < 0 || iw >= cc->w) continue;
                            for (int64_t ci = 0; ci < cg; ci++) {
                                int64_t xi = ((n * cc->h + ih) * cc->w + iw) * cc->c + (o / og) * cg + ci;
                                int64_t wi = ((kh * cc->kw + kw) * cg + ci) * cc->o + o;
                                gx[xi] += g * wp[wi];
                                gw[wi] += g * xp[xi];
                            }
                        }
                }
    if (dx)
        for (size_t i = 0; i < nx; i++) ((float *)dx->data)[i] = (float)gx[i];
    if (dw)
        for (size_t i = 0; i < nw; i++) ((float *)dw->data)[i] = (float)gw[i];
    if (db)
        for (int64_t o = 0; o < cc->o; o++) ((float *)db->data)[o] = (float)gb[o];
    free(gx);
    free(gw);
    free(gb);
}

/* The shape of conv2d's output for cc, from the ref shape rule via a dummy eval. */
static dc_tensor *conv_dy(const conv_case *cc, const dc_tensor *x, const dc_tensor *w) {
    char err[DC_ERR_LEN];
    dc_attr at = { .conv = conv_attr(cc) };
    dc_tensor *y = tu_eval(DC_OP_CONV2D, &at, 2, (dc_tensor *[]){ (dc_tensor *)x, (dc_tensor *)w }, NULL, 0,
                           err, sizeof err);
    dc_tensor *dy = rnd(4, y->type.shape.dim, 25);
    dc_tensor_free(y);
    return dy;
}

TEST(dnnl_conv2d_backward) {
    char err[DC_ERR_LEN] = "", what[128];
    for (size_t i = 0; i < 2 * N_CONV; i++) {
        const conv_case *cc = &conv_cases[i / 2];
        dc_conv_algo algo = i % 2 ? DC_CONV_WINOGRAD : DC_CONV_DIRECT;
        dc_tensor *x, *w;
        conv_inputs(cc, &x, &w);
        dc_tensor *dy = conv_dy(cc, x, w);
        dc_tensor *dx = zeros_like(x), *dw = zeros_like(w), *db = rnd(1, &cc->o, 26);
        conv_grads(cc, x, w, dy, dx, dw, db);
        dc_conv_attr at = conv_attr(cc);
        const dc_shape *sy = &dy->type.shape;

        conv_name(what, sizeof what, "conv2d_bwd_data", cc, algo);
        dc_tensor *gx = zeros_like(x), *gx2 = zeros_like(x);
        bool ok = dc_dnnl_conv2d_bwd_data(dy, w, at, algo, gx, err, sizeof err);
        CHECK_MSG(ok, "%s: %s", what, err);
        if (ok) {
            check_impl(what);
            check_algo(what, cc, algo, NULL);
            check_close(what, gx, dx, cc->kh * cc->kw * cc->o / cc->groups);
            CHECK(dc_dnnl_conv2d_bwd_data(dy, w, at, algo, gx2, err, sizeof err));
            check_same_bits(what, gx, gx2);
        }

        conv_name(what, sizeof what, "conv2d_bwd_weight", cc, algo);
        dc_tensor *gw = zeros_like(w), *gw2 = zeros_like(w), *gb = zeros_like(db), *gw3 = zeros_like(w);
        ok = dc_dnnl_conv2d_bwd_weight(x, dy, at, algo, gw, gb, err, sizeof err);
        CHECK_MSG(ok, "%s: %s", what, err);
        if (ok) {
            int64_t k = sy->dim[0] * sy->dim[1] * sy->dim[2];
            check_impl(what);
            check_algo(what, cc, algo, NULL);
            check_close(what, gw, dw, k);
            check_close(what, gb, db, k);
            CHECK(dc_dnnl_conv2d_bwd_weight(x, dy, at, algo, gw2, NULL, err, sizeof err));
            check_close(what, gw2, dw, k);
            CHECK(dc_dnnl_conv2d_bwd_weight(x, dy, at, algo, gw3, gb, err, sizeof err));
            check_same_bits(what, gw, gw3);
        }
        tu_free(12, x, w, dy, dx, dw, db, gx, gx2, gw, gw2, gb, gw3);
    }
    dc_dnnl_shutdown();
}

/* A repeated call reuses the primitive and the reordered weight; a weight changed in place
 * is reordered again (content hashing), so the result follows the new weight. */
TEST(dnnl_caches) {
    const conv_case cc = { 2, 8, 8, 16, 3, 3, 16, 1, 1, 1 };
    dc_tensor *x, *w;
    conv_inputs(&cc, &x, &w);
    dc_conv_attr at = conv_attr(&cc);
    char err[DC_ERR_LEN] = "";
    dc_attr a = { .conv = at };
    dc_tensor *y = tu_eval(DC_OP_CONV2D, &a, 2, (dc_tensor *[]){ x, w }, NULL, 0, err, sizeof err);
    dc_tensor *got = zeros_like(y);
    CHECK_MSG(dc_dnnl_conv2d(x, w, at, DC_CONV_DIRECT, NULL, got, err, sizeof err), "%s", err);
    dc_dnnl_stats s0 = dc_dnnl_get_stats();
    CHECK(dc_dnnl_conv2d(x, w, at, DC_CONV_DIRECT, NULL, got, err, sizeof err));
    dc_dnnl_stats s1 = dc_dnnl_get_stats();
    CHECK_EQ_INT(s1.primitives, s0.primitives);
    CHECK_EQ_INT(s1.primitive_hits, s0.primitive_hits + 1);
    if (strstr(dc_dnnl_last_impl(), "reorder")) {
        CHECK_EQ_INT(s1.weight_hits, s0.weight_hits + 1);
        CHECK_EQ_INT(s1.weight_reorders, s0.weight_reorders);
    }
    ((float *)w->data)[5] += 0.75f;
    dc_tensor *y2 = tu_eval(DC_OP_CONV2D, &a, 2, (dc_tensor *[]){ x, w }, NULL, 0, err, sizeof err);
    CHECK(dc_dnnl_conv2d(x, w, at, DC_CONV_DIRECT, NULL, got, err, sizeof err));
    check_close("conv2d after a weight update", got, y2, 9 * 16);
    tu_free(5, x, w, y, got, y2);
    dc_dnnl_shutdown();
}
