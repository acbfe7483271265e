/* test_attention.c — the attention op against its plain spelling. The oracle of attention and
 * attention_bwd is the unfused graph a model would write (matmul with k transposed, scale,
 * bias add, causal mask by where over iotas, softmax, matmul; its gradients by autodiff
 * through softmax's VJP), run by the reference executor; plus one hand-computed case and the
 * fully masked row. */
#include "tests/test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "frontend/dsl.h"
#include "models/disco/disco.h"
#include "models/train.h"
#include "passes/passes.h"
#include "runtime/runtime.h"
#include "tests/op_util.h"

typedef struct {
    int64_t B, H, sq, sk, d, dv;
    float scale;
    bool causal;
    int bias_rank;            /* 0: no bias */
    int64_t bias[4];          /* its dims */
} att_case;

/* the plain spelling: softmax(scale q k^T + bias, causal) v; *logits_out: the masked logits */
static dc_t unfused(dc_graph *g, const att_case *c, dc_t q, dc_t k, dc_t v, dc_t bias, dc_t *logits_out) {
    dc_t s = dc_mul_scalar(g, dc_matmul(g, q, k, .trans_b = true), c->scale);
    if (c->bias_rank) s = dc_add(g, s, bias);
    if (c->causal) {
        int64_t d2[2] = { c->sq, c->sk };
        dc_t i = dc_iota(g, 0, 2, d2, .dtype = DC_I32), j = dc_iota(g, 1, 2, d2, .dtype = DC_I32);
        s = dc_where(g, dc_gt(g, j, i), dc_scalar(g, -INFINITY), s);
    }
    *logits_out = s;
    return dc_matmul(g, dc_softmax(g, s, -1), v);
}

/* Inputs q, k, v, [bias], r; outputs out, lse, and (grads) the gradients of sum(out * r)
 * w.r.t. q, k, v[, bias] — through the attention op (fused) or the plain spelling. */
static dc_graph *case_graph(const att_case *c, bool fused, bool grads) {
    dc_graph *g = dc_graph_new(fused ? "fused" : "plain");
    dc_t q = dc_input(g, "q", DC_F32, 4, ((int64_t[]){ c->B, c->H, c->sq, c->d }));
    dc_t k = dc_input(g, "k", DC_F32, 4, ((int64_t[]){ c->B, c->H, c->sk, c->d }));
    dc_t v = dc_input(g, "v", DC_F32, 4, ((int64_t[]){ c->B, c->H, c->sk, c->dv }));
    dc_t bias = c->bias_rank ? dc_input(g, "bias", DC_F32, c->bias_rank, c->bias) : DC_NONE;
    dc_t r = dc_input(g, "r", DC_F32, 4, ((int64_t[]){ c->B, c->H, c->sq, c->dv }));
    dc_t out, lse;
    if (fused) {
        out = dc_attention(g, q, k, v, bias, .scale = c->scale, .causal = c->causal);
        lse = dc_attention(g, q, k, v, bias, .scale = c->scale, .causal = c->causal, .lse = true);
    } else {
        dc_t s;
        out = unfused(g, c, q, k, v, bias, &s);
        lse = dc_logsumexp(g, s, .axes = DC_INTS(3));
    }
    dc_output(g, out, "out");
    dc_output(g, lse, "lse");
    if (grads) {
        dc_t loss = dc_sum(g, dc_mul(g, out, r));
        int wrt[4] = { q.id, k.id, v.id, bias.id }, n = 3 + (c->bias_rank > 0), gid[4];
        char err[DC_ERR_LEN];
        if (!dc_grad(g, loss.id, wrt, n, gid, err, sizeof err)) {
            CHECK_MSG(false, "dc_grad: %s", err);
            dc_graph_free(g);
            return NULL;
        }
        static const char *const names[4] = { "dq", "dk", "dv", "dbias" };
        for (int i = 0; i < n; i++) dc_output(g, (dc_t){ gid[i] }, names[i]);
    }
    CHECK_STR_EQ(dc_graph_error(g), "");
    return g;
}

static uint64_t rng = 0x5eed;
static float urandf(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f;
}

/* every input of g filled from rng: U(-1.5, 1.5) */
static dc_tensor **case_inputs(const dc_graph *g) {
    int n = dc_graph_n_inputs(g);
    dc_tensor **t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++) {
        t[i] = dc_tensor_new(&g->nodes[dc_graph_input(g, i)].type);
        float *p = t[i]->data;
        for (int64_t x = 0; x < dc_numel(&t[i]->type.shape); x++) p[x] = 3.0f * urandf() - 1.5f;
    }
    return t;
}

/* Runs g on inputs (by position) with the reference executor; the executor, or NULL. */
static dc_exec *run_ref(const dc_graph *g, dc_tensor **in) {
    char err[DC_ERR_LEN];
    dc_exec *e = dc_exec_new(g, 0, err, sizeof err);
    CHECK_MSG(e != NULL, "dc_exec_new: %s", err);
    for (int i = 0; e && i < dc_graph_n_inputs(g); i++)
        CHECK(dc_exec_set_input(e, g->nodes[dc_graph_input(g, i)].name, in[i], err, sizeof err));
    if (e && !dc_exec_run(e, err, sizeof err)) {
        CHECK_MSG(false, "run: %s", err);
        dc_exec_free(e);
        return NULL;
    }
    return e;
}

/* the largest |a - b| / (atol + rtol |b|) over two tensors (inf == inf counts as equal) */
static double worst_of(const dc_tensor *a, const dc_tensor *b, double atol, double rtol) {
    double w = 0;
    for (int64_t i = 0; i < dc_numel(&a->type.shape); i++) {
        double x = ((const float *)a->data)[i], y = ((const float *)b->data)[i];
        if (x == y) continue;
        double e = fabs(x - y) / (atol + rtol * fabs(y));
        if (!(e <= w)) w = e; /* NaN propagates */
    }
    return w;
}

/* attention (fused op, ref kernels) vs the plain spelling: out, lse and the gradients */
static void check_case(const att_case *c) {
    dc_graph *gf = case_graph(c, true, true), *gp = case_graph(c, false, true);
    if (!gf || !gp) return;
    dc_tensor **in = case_inputs(gf);
    dc_exec *ef = run_ref(gf, in), *ep = run_ref(gp, in);
    for (int o = 0; ef && ep && o < gf->n_outputs; o++) {
        double w = worst_of(dc_exec_output(ef, o), dc_exec_output(ep, o), 1e-5, 1e-4);
        CHECK_MSG(w <= 1, "B%lld H%lld Sq%lld Sk%lld D%lld Dv%lld causal %d bias rank %d: output %s off by %.3g of tol",
                  (long long)c->B, (long long)c->H, (long long)c->sq, (long long)c->sk, (long long)c->d,
                  (long long)c->dv, c->causal, c->bias_rank, gf->output_names[o], w);
    }
    for (int i = 0; i < dc_graph_n_inputs(gf); i++) dc_tensor_free(in[i]);
    free(in);
    dc_exec_free(ef);
    dc_exec_free(ep);
    dc_graph_free(gf);
    dc_graph_free(gp);
}

OP_TEST(ATTENTION, matches_the_plain_spelling) {
    const att_case cases[] = {
        { 1, 1, 1, 1, 1, 1, 1.0f, false, 0, { 0 } },
        { 2, 3, 5, 5, 4, 4, 0.5f, false, 0, { 0 } },
        { 1, 2, 7, 3, 5, 2, 0.3f, true, 0, { 0 } },     /* cross, causal, Sq > Sk */
        { 2, 1, 3, 9, 3, 6, 1.2f, true, 4, { 2, 1, 3, 9 } },
        { 1, 2, 4, 6, 2, 3, 0.7f, false, 2, { 4, 6 } },
        { 2, 2, 5, 4, 3, 3, 0.9f, false, 4, { 1, 2, 1, 4 } },
        { 1, 1, 17, 17, 16, 16, 0.25f, true, 1, { 17 } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i]);
}

/* q [1,0], keys [1,0] and [0,1], values [1,2] and [3,4], scale 1: logits (1, 0) */
OP_TEST(ATTENTION, hand_computed) {
    dc_tensor *q = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 1, 2 }, (float[]){ 1, 0 });
    dc_tensor *k = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 2, 2 }, (float[]){ 1, 0, 0, 1 });
    dc_tensor *v = tu_tensor(DC_F32, 4, (int64_t[]){ 1, 1, 2, 2 }, (float[]){ 1, 2, 3, 4 });
    dc_attr a;
    memset(&a, 0, sizeof a);
    a.attention.scale = 1;
    char err[256] = "";
    dc_tensor *out = tu_eval(DC_OP_ATTENTION, &a, 3, (dc_tensor *[]){ q, k, v }, NULL, 0, err, sizeof err);
    a.attention.result = 1;
    dc_tensor *lse = tu_eval(DC_OP_ATTENTION, &a, 3, (dc_tensor *[]){ q, k, v }, NULL, 0, err, sizeof err);
    CHECK_MSG(out && lse, "%s", err);
    if (out && lse) {
        double e = exp(1.0), p0 = e / (e + 1), p1 = 1 / (e + 1);
        CHECK_NEAR(tu_get(out, 0), p0 * 1 + p1 * 3, 1e-6, 0);
        CHECK_NEAR(tu_get(out, 1), p0 * 2 + p1 * 4, 1e-6, 0);
        CHECK_NEAR(tu_get(lse, 0), log(e + 1), 1e-6, 0);
    }
    tu_free(5, q, k, v, out, lse);
}

/* a row whose every key is masked by the bias: out 0, lse -inf, no gradient through it */
OP_TEST(ATTENTION_BWD, fully_masked_row_passes_nothing) {
    att_case c = { 1, 1, 2, 3, 2, 2, 1.0f, false, 2, { 2, 3 } };
    dc_graph *g = case_graph(&c, true, true);
    if (!g) return;
    dc_tensor **in = case_inputs(g);
    float *bias = in[3]->data;
    for (int j = 0; j < 3; j++) bias[j] = -INFINITY; /* row 0 */
    dc_exec *e = run_ref(g, in);
    if (e) {
        const float *out = dc_exec_output(e, 0)->data, *lse = dc_exec_output(e, 1)->data;
        const float *dq = dc_exec_output(e, 2)->data, *dbias = dc_exec_output(e, 5)->data;
        CHECK(out[0] == 0 && out[1] == 0 && isinf(lse[0]) && lse[0] < 0);
        CHECK(isfinite(out[2]) && isfinite(lse[1]) && out[2] != 0);
        CHECK(dq[0] == 0 && dq[1] == 0 && dbias[0] == 0 && dbias[2] == 0);
        CHECK(isfinite(dq[2]) && dq[2] != 0);
    }
    for (int i = 0; i < dc_graph_n_inputs(g); i++) dc_tensor_free(in[i]);
    free(in);
    dc_exec_free(e);
    dc_graph_free(g);
}

/* a NaN logit makes its row NaN (as softmax does); a key the bias masks with -inf is not read,
 * so an infinite key there changes nothing (oracle: the same run with that key finite) */
OP_TEST(ATTENTION, nan_rows_and_masked_keys) {
    att_case c = { 1, 1, 3, 3, 2, 2, 1.0f, false, 2, { 3, 3 } };
    dc_graph *g = case_graph(&c, true, false);
    if (!g) return;
    dc_tensor **in = case_inputs(g);
    float *q = in[0]->data, *k = in[1]->data, *bias = in[3]->data;
    q[0] = NAN;                                     /* query 0 */
    q[1 * 2] = q[2 * 2] = 1;                        /* queries 1, 2: q . (inf, x) = +inf */
    bias[1 * 3 + 2] = bias[2 * 3 + 2] = -INFINITY; /* key 2, for queries 1 and 2 */
    dc_exec *finite = run_ref(g, in);
    k[2 * 2] = INFINITY;                            /* key 2 */
    dc_exec *inf = run_ref(g, in);
    if (finite && inf) {
        const float *o1 = dc_exec_output(finite, 0)->data, *l1 = dc_exec_output(finite, 1)->data;
        const float *o2 = dc_exec_output(inf, 0)->data, *l2 = dc_exec_output(inf, 1)->data;
        CHECK(isnan(o1[0]) && isnan(o1[1]) && isnan(l1[0]) && isnan(o2[0]) && isnan(l2[0]));
        for (int x = 2; x < 6; x++) CHECK_MSG(o1[x] == o2[x] && isfinite(o1[x]), "out[%d]: %g, %g", x, o1[x], o2[x]);
        CHECK(l1[1] == l2[1] && l1[2] == l2[2] && isfinite(l1[1]));
    }
    for (int i = 0; i < dc_graph_n_inputs(g); i++) dc_tensor_free(in[i]);
    free(in);
    dc_exec_free(finite);
    dc_exec_free(inf);
    dc_graph_free(g);
}

/* attention_bwd's four results, built directly, against autodiff of the plain spelling */
OP_TEST(ATTENTION_BWD, matches_autodiff_of_the_plain_spelling) {
    att_case c = { 2, 2, 4, 5, 3, 2, 0.6f, true, 3, { 2, 1, 5 } };
    dc_graph *g = dc_graph_new("bwd");
    dc_t q = dc_input(g, "q", DC_F32, 4, ((int64_t[]){ c.B, c.H, c.sq, c.d }));
    dc_t k = dc_input(g, "k", DC_F32, 4, ((int64_t[]){ c.B, c.H, c.sk, c.d }));
    dc_t v = dc_input(g, "v", DC_F32, 4, ((int64_t[]){ c.B, c.H, c.sk, c.dv }));
    dc_t bias = dc_input(g, "bias", DC_F32, c.bias_rank, c.bias);
    dc_t r = dc_input(g, "r", DC_F32, 4, ((int64_t[]){ c.B, c.H, c.sq, c.dv }));
    dc_t out = dc_attention(g, q, k, v, bias, .scale = c.scale, .causal = true);
    dc_t lse = dc_attention(g, q, k, v, bias, .scale = c.scale, .causal = true, .lse = true);
    for (int w = 0; w < 4; w++)
        dc_output(g, dc_attention_bwd(g, q, k, v, bias, out, r, lse, w, .scale = c.scale, .causal = true), NULL);
    dc_graph *gp = case_graph(&c, false, true);
    dc_tensor **in = case_inputs(g);
    dc_exec *e = run_ref(g, in), *ep = gp ? run_ref(gp, in) : NULL;
    for (int w = 0; e && ep && w < 4; w++) {
        double err = worst_of(dc_exec_output(e, w), dc_exec_output(ep, 2 + w), 1e-5, 1e-4);
        CHECK_MSG(err <= 1, "result %d off by %.3g of tol", w, err);
    }
    for (int i = 0; i < dc_graph_n_inputs(g); i++) dc_tensor_free(in[i]);
    free(in);
    dc_exec_free(e);
    dc_exec_free(ep);
    dc_graph_free(g);
    dc_graph_free(gp);
}

TEST(attention_shape_errors) {
    const char *bad[][2] = {
        { "attention %q, %k, %v {scale=1, causal=false, bias=false, result=2} : f32[1,2,3,4]", "result must be in [0, 1]" },
        { "attention %q, %q, %v {scale=1, causal=false, bias=false, result=0} : f32[1,2,3,4]", "v has 5 rows, expected 3" },
        { "attention %q, %k, %v, %k {scale=1, causal=false, bias=true, result=0} : f32[1,2,3,4]", "does not broadcast" },
        { "attention %q, %k, %v {scale=inf, causal=false, bias=false, result=0} : f32[1,2,3,4]", "scale must be finite" },
        { "attention %q, %k {scale=1, causal=false, bias=false, result=0} : f32[1,2,3,4]", "needs 3 inputs, got 2" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512], err[DC_ERR_LEN] = "";
        snprintf(text, sizeof text,
                 "graph @t(%%q: f32[1,2,3,4], %%k: f32[1,2,5,4], %%v: f32[1,2,5,4]) -> (f32[1,2,3,4]) {\n"
                 "  %%0 = %s\n  return %%0\n}\n", bad[i][0]);
        dc_graph *g = dc_parse(text, strlen(text), "t.dcir", err, sizeof err);
        CHECK_MSG(!g && strstr(err, bad[i][1]), "case %zu: got '%s'", i, err);
        dc_graph_free(g);
    }
}

/* A random case: odd lengths, S = 1, Sq != Sk, lengths past one block; the head sizes, mask
 * and bias kind from eight families (D and Dv under, at and past a vector, causal or not, no
 * bias, a full one, one shared by every (b, h), a key padding mask with -inf at every third
 * key), so that the 200 shapes
 * share a few dozen kernels (a kernel is compiled per family and key block) */
static att_case random_case(void) {
    static const struct { int64_t d, dv; bool causal; int bias; } fam[8] = {
        { 1, 1, false, 0 }, { 5, 7, true, 1 }, { 16, 16, false, 2 }, { 16, 16, true, 3 },
        { 33, 33, false, 0 }, { 33, 7, true, 0 }, { 17, 24, false, 1 }, { 8, 8, true, 2 },
    };
    static const int64_t lens[] = { 1, 2, 3, 7, 16, 17, 33, 63, 64, 65, 130, 200 };
    att_case c;
    memset(&c, 0, sizeof c);
    int f = (int)(urandf() * 8);
    c.B = 1 + (int64_t)(urandf() * 2);
    c.H = 1 + (int64_t)(urandf() * 3);
    c.sq = lens[(int)(urandf() * 12)];
    c.sk = urandf() < 0.4f ? c.sq : lens[(int)(urandf() * 12)];
    c.d = fam[f].d;
    c.dv = fam[f].dv;
    c.causal = fam[f].causal;
    c.scale = 0.1f + urandf();
    const int64_t full[4] = { c.B, c.H, c.sq, c.sk };
    if (fam[f].bias == 1) { /* full */
        c.bias_rank = 4;
        memcpy(c.bias, full, sizeof full);
    } else if (fam[f].bias == 2) { /* [Sq, Sk] shared by every (b, h) */
        c.bias_rank = 2;
        c.bias[0] = c.sq, c.bias[1] = c.sk;
    } else if (fam[f].bias == 3) { /* [B, 1, 1, Sk]: a key padding mask */
        c.bias_rank = 4;
        c.bias[0] = c.B, c.bias[1] = 1, c.bias[2] = 1, c.bias[3] = c.sk;
    }
    return c;
}

/* out, lse and attention_bwd's dq, dk, dv (dout an input) */
static dc_graph *direct_graph(const att_case *c) {
    dc_graph *g = dc_graph_new("direct");
    dc_t q = dc_input(g, "q", DC_F32, 4, ((int64_t[]){ c->B, c->H, c->sq, c->d }));
    dc_t k = dc_input(g, "k", DC_F32, 4, ((int64_t[]){ c->B, c->H, c->sk, c->d }));
    dc_t v = dc_input(g, "v", DC_F32, 4, ((int64_t[]){ c->B, c->H, c->sk, c->dv }));
    dc_t bias = c->bias_rank ? dc_input(g, "bias", DC_F32, c->bias_rank, c->bias) : DC_NONE;
    dc_t r = dc_input(g, "r", DC_F32, 4, ((int64_t[]){ c->B, c->H, c->sq, c->dv }));
    dc_t out = dc_attention(g, q, k, v, bias, .scale = c->scale, .causal = c->causal);
    dc_t lse = dc_attention(g, q, k, v, bias, .scale = c->scale, .causal = c->causal, .lse = true);
    dc_output(g, out, "out");
    dc_output(g, lse, "lse");
    static const char *const names[3] = { "dq", "dk", "dv" };
    for (int w = 0; w < 3; w++)
        dc_output(g, dc_attention_bwd(g, q, k, v, bias, out, r, lse, w, .scale = c->scale, .causal = c->causal), names[w]);
    CHECK_STR_EQ(dc_graph_error(g), "");
    return g;
}

/* The compiled program (auto: the flash kernels) against the reference executor on the same
 * graph, forward and the gradients w.r.t. q, k, v, over 200 random shapes. The flash kernels
 * sum in another order (blocks, vectors, fused multiply-adds): tolerance 1e-4 absolute + 1e-3
 * relative, far below what a wrong mask, scale or block edge gives (O(1)). */
TEST(attention_flash_matches_reference) {
    int checked = 0, flash_steps = 0;
    double worst = 0;
    rng = 0xa77e;
    dc_jit_stats j0 = dc_jit_get_stats();
    for (int t = 0; t < 200; t++) {
        att_case c = random_case();
        dc_graph *gr = direct_graph(&c), *gc = direct_graph(&c);
        dc_tensor **in = case_inputs(gr);
        if (c.bias_rank == 4 && c.bias[1] == 1 && c.bias[2] == 1) { /* a key padding mask: -inf masks */
            float *b = in[3]->data;
            for (int64_t j = 0; j < dc_numel(&in[3]->type.shape); j++)
                if (j % 3 == 1) b[j] = -INFINITY;
        }
        char err[DC_ERR_LEN];
        dc_exec *er = run_ref(gr, in);
        dc_exec *ec = dc_compile_for(gc, 0, DC_BACKEND_AUTO, NULL, err, sizeof err);
        CHECK_MSG(ec != NULL, "compile: %s", err);
        for (int i = 0; ec && i < dc_graph_n_inputs(gc); i++)
            CHECK(dc_exec_set_input(ec, gc->nodes[dc_graph_input(gc, i)].name, in[i], err, sizeof err));
        bool ran = ec && dc_exec_run(ec, err, sizeof err);
        CHECK_MSG(!ec || ran, "run: %s", err);
        if (er && ran) {
            int n_steps;
            const dc_step *st = dc_exec_steps(ec, &n_steps);
            for (int i = 0; i < n_steps; i++) flash_steps += strncmp(st[i].impl, "flash", 5) == 0;
            for (int o = 0; o < gr->n_outputs; o++) {
                double w = worst_of(dc_exec_output(ec, o), dc_exec_output(er, o), 1e-4, 1e-3);
                if (w > worst) worst = w;
                CHECK_MSG(w <= 1, "case %d: B%lld H%lld Sq%lld Sk%lld D%lld Dv%lld causal %d bias rank %d: %s off by %.3g of tol",
                          t, (long long)c.B, (long long)c.H, (long long)c.sq, (long long)c.sk, (long long)c.d,
                          (long long)c.dv, c.causal, c.bias_rank, gr->output_names[o], w);
            }
            checked++;
        }
        for (int i = 0; i < dc_graph_n_inputs(gr); i++) dc_tensor_free(in[i]);
        free(in);
        dc_exec_free(er);
        dc_exec_free(ec);
        dc_graph_free(gr);
        dc_graph_free(gc);
    }
    CHECK_MSG(flash_steps >= 2 * checked, "only %d flash steps in %d programs", flash_steps, checked);
    dc_jit_stats j1 = dc_jit_get_stats();
    printf("attention: %d random shapes, flash vs reference, forward + gradients, worst %.3g of tolerance, %d flash steps "
           "(%lld kernels compiled in %.0f ms)\n",
           checked, worst, flash_steps, (long long)(j1.compiled - j0.compiled), j1.compile_ms - j0.compile_ms);
}

/* the prior of tests/ir/prior_train.dcir (m 7, k 5, width 16, 2 heads, 1 layer, batch 4) */
static dc_graph *small_prior(void) {
    dc_prior_config c = dc_prior_config_defaults(7, 5);
    c.d_model = 16, c.heads = 2, c.layers = 1;
    return dc_prior_train_graph(&c, 4);
}

/* The golden of `disco opt tests/ir/prior_train.dcir --train --pipeline` is the DSL's prior. */
TEST(attention_prior_golden_is_the_dsl_prior) {
    dc_graph *g = small_prior();
    char *text = dc_print(g), err[DC_ERR_LEN];
    dc_graph *f = dc_parse_file("tests/ir/prior_train.dcir", err, sizeof err);
    char *ftext = f ? dc_print(f) : NULL;
    CHECK_MSG(ftext && strcmp(text, ftext) == 0, "tests/ir/prior_train.dcir is not the prior's graph: %s", f ? "" : err);
    free(text);
    free(ftext);
    dc_graph_free(g);
    dc_graph_free(f);
}

/* The prior's training step with every attention fused (fuse-attention-all before autodiff)
 * runs attention and attention_bwd and keeps no [m, m] value at all; one step from the same
 * params gives the loss and gradient norm of the unfused step (ref backend: no fusion) and
 * moves every param as it does, within float rounding — but the key biases, whose true
 * gradient is 0 (softmax ignores a constant added to a row), so that AdamW scales two
 * different roundings of 0 up to the learning rate. The compiler's own forward pipeline
 * leaves this prior (7 tokens) unfused: the rule measured the flash kernels slower there. */
TEST(attention_prior_training_step_is_fused_and_equal) {
    dc_train_config tc = { .b1 = 0.9f, .b2 = 0.999f, .eps = 1e-8f, .clip_norm = 1.0f, .backend = DC_BACKEND_AUTO };
    dc_graph *gf = small_prior(), *gu = small_prior();
    char err[DC_ERR_LEN];
    bool ok = dc_train_graph(gf, &tc, "fuse-attention-all,dce", err, sizeof err);
    tc.backend = DC_BACKEND_REF;
    ok = ok && dc_train_graph(gu, &tc, NULL, err, sizeof err);
    dc_graph *gr = small_prior();
    tc.backend = DC_BACKEND_AUTO;
    ok = ok && dc_train_graph(gr, &tc, NULL, err, sizeof err);
    for (int i = 0; ok && i < gr->n_nodes; i++) CHECK(gr->nodes[i].op != DC_OP_ATTENTION);
    dc_graph_free(gr);
    char why[96];
    CHECK(!dc_attention_fuses(8, 7, 7, 8, true, NULL, 0) && dc_attention_fuses(8, 128, 128, 8, true, why, sizeof why));
    CHECK_STR_EQ(why, "rule: fused for causal, D 8, 8x128x128 logits");
    CHECK(dc_attention_fuses(512, 196, 196, 8, false, why, sizeof why));
    CHECK_STR_EQ(why, "rule: fused for unmasked, D 8, 512x196x196 logits");
    CHECK(!dc_attention_fuses(32, 196, 196, 8, false, NULL, 0) && !dc_attention_fuses(512, 196, 196, 32, false, NULL, 0));
    CHECK_MSG(ok, "%s", err);
    int att = 0, bwd = 0, square = 0;
    for (int i = 0; ok && i < gf->n_nodes; i++) {
        const dc_shape *s = &gf->nodes[i].type.shape;
        att += gf->nodes[i].op == DC_OP_ATTENTION;
        bwd += gf->nodes[i].op == DC_OP_ATTENTION_BWD;
        square += s->rank >= 2 && s->dim[s->rank - 1] == 7 && s->dim[s->rank - 2] == 7;
    }
    CHECK_MSG(att == 2 && bwd == 3 && square == 0, "%d attention, %d attention_bwd, %d [7,7] values", att, bwd, square);
    dc_exec *ef = ok ? dc_compile_for(gf, 5, DC_BACKEND_AUTO, NULL, err, sizeof err) : NULL;
    dc_exec *eu = ok ? dc_compile_for(gu, 5, DC_BACKEND_REF, NULL, err, sizeof err) : NULL;
    CHECK_MSG(!ok || (ef && eu), "%s", err);
    const char *names[] = { "tokens", "codes", "lr", "bc1", "bc2" };
    for (int n = 0; ef && eu && n < 5; n++) {
        dc_graph *g = gf;
        int id = dc_graph_find_input(g, names[n]);
        dc_tensor *t = dc_tensor_new(&g->nodes[id].type);
        for (int64_t x = 0; x < dc_numel(&t->type.shape); x++) {
            if (t->type.dtype == DC_I32) ((int32_t *)t->data)[x] = (int32_t)((x * 7 + n) % 5);
            else ((float *)t->data)[x] = n == 2 ? 1e-2f : 0.5f;
        }
        CHECK(dc_exec_set_input(ef, names[n], t, err, sizeof err) && dc_exec_set_input(eu, names[n], t, err, sizeof err));
        dc_tensor_free(t);
    }
    if (ef && eu) {
        CHECK(dc_exec_run(ef, err, sizeof err) && dc_exec_run(eu, err, sizeof err));
        for (int o = 0; o < 2; o++) {
            double w = worst_of(dc_exec_output(ef, o), dc_exec_output(eu, o), 1e-6, 1e-4);
            CHECK_MSG(w <= 1, "output %s off by %.3g of tol", gf->output_names[o], w);
        }
        for (int i = 0; i < gf->n_nodes; i++) {
            const char *name = gf->nodes[i].name;
            if (gf->nodes[i].op != DC_OP_PARAM || strstr(name, "attn.k.b")) continue;
            const dc_tensor *a = dc_exec_param(ef, name), *b = dc_exec_param(eu, name);
            double w = a && b ? worst_of(a, b, 1e-6, 1e-4) : 2;
            CHECK_MSG(w <= 1, "param %s after one step off by %.3g of tol", name, w);
        }
    }
    dc_exec_free(ef);
    dc_exec_free(eu);
    dc_graph_free(gf);
    dc_graph_free(gu);
}
