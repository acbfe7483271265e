/* test_images_nets.c — the image networks of DisCo-Diff (unet.c, vit.c, img_layers.c) on a
 * small config: output types and param names; autodiff gradients of the U-Net with latent
 * tokens and of the ViT against central finite differences; that the U-Net reads the latents
 * (two one-hot codes give two outputs) and, with two latent groups, reads each group at its
 * resolution only; that the examples of a batch do not mix; that the compiled program (the
 * pipeline's passes, oneDNN and JIT kernels) computes what the reference executor does; and
 * that misuse is a graph error.
 *
 * Graphs run on the reference executor. Params are moved off their init (every one by
 * uniform noise of +-0.05) so that the zero-initialised attention output projections pass
 * gradients and the latents reach the output. */
#include "tests/test.h"

#include <stdlib.h>

#include "codegen/codegen.h"
#include "frontend/dsl.h"
#include "models/disco/images.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

enum { B = 2, M = 4, K = 5, LAT_D = 8 };

/* ch 16: two channels a group at 28x28 (with one, group norm would cancel every per-channel
 * constant, the embedding's included) */
static dc_img_config small_config(bool baseline, int groups) {
    return (dc_img_config){ .baseline = baseline, .m = M, .k = K, .latent_groups = groups, .tau = 1.0f,
                            .sigma_data = 0.5f, .null_prob = 0.1f, .ch = 16, .emb = 16, .heads = 2, .lat_d = LAT_D,
                            .lat_layers = 1, .vit_d = 8, .vit_layers = 1, .vit_patch = 7 };
}

/* the U-Net on inputs x [B,28,28,1], c_noise [B,1], labels [B] and, with latents, either the
 * latent tokens of z [B,m,k+1] or (tokens_in) the tokens themselves as input "lat" */
static dc_t unet_graph(dc_graph *g, const dc_img_config *c, int64_t batch, bool tokens_in) {
    dc_t x = dc_input(g, "x", DC_F32, 4, ((int64_t[]){ batch, DC_IMG_SIDE, DC_IMG_SIDE, 1 }));
    dc_t c_noise = dc_input(g, "c_noise", DC_F32, 2, ((int64_t[]){ batch, 1 }));
    dc_t labels = dc_input(g, "labels", DC_I32, 1, &batch);
    dc_t lat = DC_NONE;
    if (!c->baseline && tokens_in) lat = dc_input(g, "lat", DC_F32, 3, ((int64_t[]){ batch, c->m, c->lat_d }));
    else if (!c->baseline)
        lat = dc_img_latent_tokens(g, dc_input(g, "z", DC_F32, 3, ((int64_t[]){ batch, c->m, c->k + 1 })), c);
    return dc_img_unet(g, x, c_noise, labels, lat, c);
}

static bool has_type(dc_graph *g, dc_t t, int rank, const int64_t *dims) {
    const dc_type *ty = dc_type_of(g, t);
    if (!ty || ty->dtype != DC_F32 || ty->shape.rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (ty->shape.dim[i] != dims[i]) return false;
    return true;
}

/* how many params of g have a name containing part */
static int params_named(const dc_graph *g, const char *part) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == DC_OP_PARAM && strstr(g->nodes[i].name, part);
    return n;
}

/* ---- inputs and runs ------------------------------------------------------------------------ */

static dc_tensor *tensor(dc_dtype dt, int rank, const int64_t *dims) {
    dc_type t = { .dtype = dt, .shape = { .rank = rank } };
    for (int i = 0; i < rank; i++) t.shape.dim[i] = dims[i];
    return dc_tensor_new(&t);
}

/* uniform in [lo, hi) from stream s */
static void fill_uniform(dc_tensor *t, float lo, float hi, uint64_t s) {
    float *p = t->data;
    for (int64_t i = 0; i < dc_numel(&t->type.shape); i++) p[i] = lo + (hi - lo) * dc_rng_uniform01(5, s, (uint64_t)i);
}

/* every param of e's graph moved by uniform noise in [-0.05, 0.05) */
static void perturb_params(dc_exec *e, const dc_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != DC_OP_PARAM) continue;
        float *p = dc_exec_param(e, g->nodes[i].name)->data;
        for (int64_t j = 0; j < dc_numel(&g->nodes[i].type.shape); j++)
            p[j] += 0.1f * (dc_rng_uniform01(11, (uint64_t)i, (uint64_t)j) - 0.5f);
    }
}

/* the inputs x, c_noise, labels of a batch: example b draws its own pixels and noise level */
typedef struct { dc_tensor *x, *c_noise, *labels; } unet_inputs;

static unet_inputs make_inputs(int64_t batch) {
    unet_inputs in = { tensor(DC_F32, 4, (int64_t[]){ batch, DC_IMG_SIDE, DC_IMG_SIDE, 1 }),
                       tensor(DC_F32, 2, (int64_t[]){ batch, 1 }), tensor(DC_I32, 1, &batch) };
    fill_uniform(in.x, -1, 1, 1);
    fill_uniform(in.c_noise, -1.5f, 1.0f, 2);
    for (int64_t b = 0; b < batch; b++) ((int32_t *)in.labels->data)[b] = (int32_t)(3 + 4 * b) % DC_IMG_CLASSES;
    return in;
}

static void free_inputs(unet_inputs *in) {
    dc_tensor_free(in->x);
    dc_tensor_free(in->c_noise);
    dc_tensor_free(in->labels);
}

/* z [batch,m,k+1] with latent i of example b one-hot at code[b*m + i] */
static dc_tensor *one_hot_z(int64_t batch, const int *code) {
    dc_tensor *z = tensor(DC_F32, 3, (int64_t[]){ batch, M, K + 1 });
    for (int64_t r = 0; r < batch * M; r++) ((float *)z->data)[r * (K + 1) + code[r]] = 1.0f;
    return z;
}

/* named input values */
typedef struct {
    int n;
    const char *name[6];
    dc_tensor *value[6];
} feed;

/* x, c_noise, labels of in, then extra (unless NULL) as the input called extra_name */
static feed unet_feed(const unet_inputs *in, const char *extra_name, dc_tensor *extra) {
    feed f = { 3, { "x", "c_noise", "labels", extra_name }, { in->x, in->c_noise, in->labels, extra } };
    f.n += extra != NULL;
    return f;
}

/* sets the inputs, runs, and copies output 0 into a malloc'd array (NULL on failure, with a
 * check failed) */
static float *run_copy(dc_exec *e, const feed *f) {
    char err[DC_ERR_LEN] = "";
    bool ok = true;
    for (int i = 0; ok && i < f->n; i++) ok = dc_exec_set_input(e, f->name[i], f->value[i], err, sizeof err);
    ok = ok && dc_exec_run(e, err, sizeof err);
    CHECK_MSG(ok, "run: %s", err);
    if (!ok) return NULL;
    const dc_tensor *y = dc_exec_output(e, 0);
    size_t bytes = (size_t)dc_numel(&y->type.shape) * sizeof(float);
    float *out = malloc(bytes);
    if (!out) abort();
    memcpy(out, y->data, bytes);
    return out;
}

/* the largest |a[i] - b[i]| over [from, to) */
static double max_diff(const float *a, const float *b, int64_t from, int64_t to) {
    double d = 0;
    for (int64_t i = from; i < to; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static dc_exec *new_exec(dc_graph *g) {
    char err[DC_ERR_LEN] = "";
    CHECK_MSG(!dc_graph_failed(g), "%s", dc_graph_error(g));
    dc_exec *e = dc_graph_failed(g) ? NULL : dc_exec_new(g, 3, err, sizeof err);
    CHECK_MSG(dc_graph_failed(g) || e, "dc_exec_new: %s", err);
    if (e) perturb_params(e, g);
    return e;
}

/* ---- types and params ----------------------------------------------------------------------- */

TEST(images_nets_types_and_params) {
    const int64_t img[4] = { B, DC_IMG_SIDE, DC_IMG_SIDE, 1 };
    for (int groups = 1; groups <= 2; groups++) {
        dc_img_config c = small_config(false, groups);
        dc_graph *g = dc_graph_new("unet");
        dc_t z = dc_input(g, "z", DC_F32, 3, ((int64_t[]){ B, M, K + 1 }));
        dc_t lat = dc_img_latent_tokens(g, z, &c);
        CHECK(has_type(g, lat, 3, (int64_t[]){ B, M, LAT_D }));
        dc_t x = dc_input(g, "x", DC_F32, 4, img);
        dc_t out = dc_img_unet(g, x, dc_input(g, "c_noise", DC_F32, 2, ((int64_t[]){ B, 1 })),
                               dc_input(g, "labels", DC_I32, 1, ((int64_t[]){ B })), lat, &c);
        CHECK_MSG(!dc_graph_failed(g), "groups %d: %s", groups, dc_graph_error(g));
        CHECK_MSG(has_type(g, out, 4, img), "groups %d: the U-Net's output is not f32[2,28,28,1]", groups);
        /* 4 cross-attentions (down2, mid0, up2, up1): q, k, v, o weights, biases but k's; norms */
        CHECK_EQ_INT(params_named(g, ".cross."), 4 * 7);
        CHECK_EQ_INT(params_named(g, "cross_gn."), 4 * 2);
        CHECK(params_named(g, "lat.") > 0);
        dc_t logits = dc_img_vit(g, x, &c);
        CHECK_MSG(has_type(g, logits, 3, (int64_t[]){ B, M, K }), "%s", dc_graph_error(g));
        CHECK(params_named(g, "vit.") > 0);
        dc_graph_free(g);
    }
    dc_img_config c = small_config(true, 1);
    dc_graph *g = dc_graph_new("baseline");
    dc_t out = unet_graph(g, &c, B, false);
    CHECK_MSG(!dc_graph_failed(g), "%s", dc_graph_error(g));
    CHECK(has_type(g, out, 4, img));
    CHECK_EQ_INT(params_named(g, "cross"), 0);
    CHECK_EQ_INT(params_named(g, "lat."), 0);
    CHECK(params_named(g, "unet.") > 0);
    dc_graph_free(g);
}

/* ---- gradients ------------------------------------------------------------------------------ */

#define FD_RTOL 1e-2
#define FD_COORDS 3

/* loss = sum(out * R) (R a fixed input "r" drawn here) is appended to g, and the gradients
 * of the params `names` and of the input `input` (one of the feed's; NULL for none) become
 * outputs 1.. . After a run on the feed, FD_COORDS coordinates of each gradient (its largest
 * and two others) are checked against central differences of L = sum(out * R), taken in
 * double on the host from the f32 outputs with steps of +-eps:
 *     |g - fd| <= FD_RTOL |fd| + 1e-3 max|g| + floor
 * (max over the tensor's gradient) where floor covers the FD noise. The step trades rounding
 * against truncation. Rounding: L sums many f32 outputs of a deep f32 network; measured on
 * the U-Net (784 outputs), its FD noise is about 1e-5 / eps, so eps = 1e-2 there (its params
 * are O(0.1); smaller steps agree as far as their noise allows) and floor 1e-3; 1e-4 for the
 * small graphs. Truncation: the latent tokens (32 outputs) and the ViT (20) have little
 * rounding but layer norms of embedded tokens of std ~0.1, whose curvature puts a step of
 * 1e-2 in lat.embed 2% off; eps = 1e-3 is within 0.3% there. So the U-Net's check takes its
 * lat.* param behind a layer norm, and the latent tokens have a check of their own with the
 * small step. A wrong VJP is off by O(|g|). */
typedef struct {
    dc_graph *g;
    dc_t out;
    const char *const *names;
    int n_params;
    const char *input;
    feed in;
    double eps, floor;
} fd_case;

/* L = sum(out * R) in double after a run */
static double loss_of(dc_exec *e, const feed *f, const float *r, int64_t n) {
    float *y = run_copy(e, f);
    double l = 0;
    for (int64_t i = 0; y && i < n; i++) l += (double)y[i] * r[i];
    free(y);
    return l;
}

/* the values of the gradient's tensor: a param of e or an input of the feed */
static float *values_of(dc_exec *e, const fd_case *fc, const char *name, bool param) {
    if (param) return dc_exec_param(e, name)->data;
    for (int i = 0; i < fc->in.n; i++)
        if (strcmp(fc->in.name[i], name) == 0) return fc->in.value[i]->data;
    abort(); /* the test names an input it does not feed */
}

static void check_gradients(fd_case *fc) {
    dc_graph *g = fc->g;
    const dc_type *ot = dc_type_of(g, fc->out);
    if (!ot) {
        CHECK_MSG(false, "%s", dc_graph_error(g));
        return;
    }
    dc_type out_type = *ot;
    int64_t n = dc_numel(&out_type.shape);
    dc_t r = dc_input(g, "r", DC_F32, out_type.shape.rank, out_type.shape.dim);
    dc_t loss = dc_sum(g, dc_mul(g, fc->out, r));
    dc_output(g, fc->out, "out");
    int wrt[8], grads[8], n_wrt = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        bool is_param = g->nodes[i].op == DC_OP_PARAM, is_input = g->nodes[i].op == DC_OP_INPUT;
        for (int k = 0; k < fc->n_params; k++)
            if (is_param && strcmp(g->nodes[i].name, fc->names[k]) == 0) wrt[k] = i, n_wrt++;
        if (is_input && fc->input && strcmp(g->nodes[i].name, fc->input) == 0) wrt[fc->n_params] = i, n_wrt++;
    }
    int want = fc->n_params + (fc->input != NULL);
    double worst = 0;
    CHECK_EQ_INT(n_wrt, want);
    char err[DC_ERR_LEN] = "";
    bool ok = n_wrt == want && !dc_graph_failed(g) && dc_grad(g, loss.id, wrt, want, grads, err, sizeof err);
    CHECK_MSG(ok, "grad: %s %s", err, dc_graph_error(g));
    for (int k = 0; ok && k < want; k++) dc_graph_add_output(g, grads[k], NULL);
    dc_exec *e = ok ? new_exec(g) : NULL;
    dc_tensor *rt = tensor(DC_F32, out_type.shape.rank, out_type.shape.dim);
    fill_uniform(rt, -1, 1, 9);
    feed f = fc->in;
    f.name[f.n] = "r", f.value[f.n++] = rt;
    for (int k = 0; e && k < want; k++) {
        float *y = run_copy(e, &f); /* at the unperturbed point: the FD runs overwrite the gradients */
        free(y);
        if (!y) break;
        const dc_tensor *gt = dc_exec_output(e, 1 + k);
        int64_t len = dc_numel(&gt->type.shape);
        float *gv = malloc((size_t)len * sizeof *gv);
        if (!gv) abort();
        memcpy(gv, gt->data, (size_t)len * sizeof *gv);
        int64_t top = 0;
        for (int64_t j = 1; j < len; j++) top = fabsf(gv[j]) > fabsf(gv[top]) ? j : top;
        const char *name = k < fc->n_params ? fc->names[k] : fc->input;
        float *p = values_of(e, fc, name, k < fc->n_params);
        for (int t = 0; t < FD_COORDS; t++) {
            int64_t j = t == 0 ? top : (int64_t)(dc_rng_uniform01(21, (uint64_t)k, (uint64_t)t) * (float)len) % len;
            float v = p[j], hi = (float)(v + fc->eps), lo = (float)(v - fc->eps);
            p[j] = hi;
            double lp = loss_of(e, &f, rt->data, n);
            p[j] = lo;
            double lm = loss_of(e, &f, rt->data, n);
            p[j] = v;
            double fd = (lp - lm) / ((double)hi - lo);
            double tol = FD_RTOL * fabs(fd) + 1e-3 * fabs(gv[top]) + fc->floor;
            worst = fmax(worst, fabs(gv[j] - fd) / tol);
            CHECK_MSG(fabs(gv[j] - fd) <= tol, "d/d%s[%lld] = %.7g, finite differences %.7g", name, (long long)j,
                      (double)gv[j], fd);
        }
        CHECK_MSG(fabsf(gv[top]) > 1e-4f, "the gradient of %s is zero", name);
        free(gv);
    }
    printf("%s: %d gradients, %d coordinates each, worst error %.2f of tolerance\n", g->name, want, FD_COORDS, worst);
    dc_tensor_free(rt);
    dc_exec_free(e);
}

/* z [1,m,k+1] of soft rows: a softmax of random logits */
static dc_tensor *soft_z(void) {
    dc_tensor *z = tensor(DC_F32, 3, (int64_t[]){ 1, M, K + 1 });
    fill_uniform(z, -2, 2, 4);
    float *zv = z->data;
    for (int r = 0; r < M; r++) {
        float s = 0;
        for (int j = 0; j < K + 1; j++) s += zv[r * (K + 1) + j] = expf(zv[r * (K + 1) + j]);
        for (int j = 0; j < K + 1; j++) zv[r * (K + 1) + j] /= s;
    }
    return z;
}

TEST(images_nets_unet_gradients) {
    dc_img_config c = small_config(false, 2);
    dc_graph *g = dc_graph_new("unet_grad");
    static const char *const names[] = { "lat.block0.attn.v.w", "unet.mid0.cross.k.w", "unet.up1.cross.q.w",
                                         "unet.down1.res.conv1.w", "unet.class", "unet.emb0.w" };
    dc_tensor *z = soft_z();
    unet_inputs in = make_inputs(1);
    fd_case fc = { g, unet_graph(g, &c, 1, false), names, 6, "z", unet_feed(&in, "z", z), 1e-2, 1e-3 };
    check_gradients(&fc);
    dc_tensor_free(z);
    free_inputs(&in);
    dc_graph_free(g);
}

TEST(images_nets_latent_token_gradients) {
    dc_img_config c = small_config(false, 1);
    dc_graph *g = dc_graph_new("lat_grad");
    static const char *const names[] = { "lat.embed", "lat.pos", "lat.block0.mlp.up.w", "lat.ln_f.scale" };
    dc_tensor *z = soft_z();
    dc_t zi = dc_input(g, "z", DC_F32, 3, ((int64_t[]){ 1, M, K + 1 }));
    fd_case fc = { g, dc_img_latent_tokens(g, zi, &c), names, 4, "z", { 1, { "z" }, { z } }, 1e-3, 1e-4 };
    check_gradients(&fc);
    dc_tensor_free(z);
    dc_graph_free(g);
}

TEST(images_nets_vit_gradients) {
    dc_img_config c = small_config(false, 1);
    dc_graph *g = dc_graph_new("vit_grad");
    static const char *const names[] = { "vit.latents", "vit.pos", "vit.patch.w", "vit.block0.attn.k.w", "vit.head.w" };
    dc_t y = dc_input(g, "y", DC_F32, 4, ((int64_t[]){ 1, DC_IMG_SIDE, DC_IMG_SIDE, 1 }));
    unet_inputs in = make_inputs(1);
    fd_case fc = { g, dc_img_vit(g, y, &c), names, 5, "y", { 1, { "y" }, { in.x } }, 1e-3, 1e-4 };
    check_gradients(&fc);
    free_inputs(&in);
    dc_graph_free(g);
}

/* ---- the latents reach the output; examples do not mix ------------------------------------ */

/* The U-Net of c on a batch of 2 where example 0 changes its latent codes (or, for the
 * baseline, a pixel) and example 1 keeps everything: example 0's output must change (the
 * latents are read), example 1's must not (examples do not mix), and a rerun of the first
 * inputs repeats the first output exactly (the change is not noise). */
static void check_one_example_changes(const dc_img_config *c) {
    dc_graph *g = dc_graph_new("unet_batch");
    dc_output(g, unet_graph(g, c, B, false), "out");
    dc_exec *e = new_exec(g);
    unet_inputs in = make_inputs(B);
    dc_tensor *z1 = one_hot_z(B, (const int[]){ 0, 1, 2, 3, 4, 4, 4, 4 });
    dc_tensor *z2 = one_hot_z(B, (const int[]){ 1, 1, 1, K, 4, 4, 4, 4 });
    feed f1 = unet_feed(&in, "z", c->baseline ? NULL : z1), f2 = unet_feed(&in, "z", c->baseline ? NULL : z2);
    float *x0 = &((float *)in.x->data)[100];
    float *y1 = e ? run_copy(e, &f1) : NULL;
    *x0 += c->baseline ? 0.5f : 0.0f;
    float *y2 = e ? run_copy(e, &f2) : NULL;
    *x0 -= c->baseline ? 0.5f : 0.0f;
    float *y3 = e ? run_copy(e, &f1) : NULL;
    if (y1 && y2 && y3) {
        int64_t n = DC_IMG_PIXELS;
        CHECK_MSG(max_diff(y1, y2, 0, n) > 1e-3, "example 0's output changes by %g only", max_diff(y1, y2, 0, n));
        CHECK_MSG(max_diff(y1, y2, n, 2 * n) == 0, "example 0's change moves example 1's output by %g",
                  max_diff(y1, y2, n, 2 * n));
        CHECK(max_diff(y1, y3, 0, 2 * n) == 0);
    }
    free(y1), free(y2), free(y3);
    dc_tensor_free(z1), dc_tensor_free(z2);
    free_inputs(&in);
    dc_exec_free(e);
    dc_graph_free(g);
}

TEST(images_nets_unet_reads_latents_per_example) {
    dc_img_config c = small_config(false, 1);
    check_one_example_changes(&c);
    c = small_config(true, 1);
    check_one_example_changes(&c);
}

/* With the cross-attentions named in off switched off (output projections zeroed), whether
 * changing latent tokens 0..m/2-1 (first) or m/2..m-1 (second) changes the U-Net's output. */
static void latent_reach(int groups, const char *const *off, int n_off, bool *first, bool *second) {
    dc_img_config c = small_config(false, groups);
    dc_graph *g = dc_graph_new("unet_groups");
    dc_output(g, unet_graph(g, &c, 1, true), "out");
    dc_exec *e = new_exec(g);
    *first = *second = false;
    for (int i = 0; e && i < n_off; i++)
        for (int leaf = 0; leaf < 2; leaf++) {
            char name[64];
            snprintf(name, sizeof name, "unet.%s.cross.o.%s", off[i], leaf ? "b" : "w");
            dc_tensor *p = dc_exec_param(e, name);
            CHECK_MSG(p, "no param %s", name);
            if (p) memset(p->data, 0, (size_t)dc_numel(&p->type.shape) * sizeof(float));
        }
    unet_inputs in = make_inputs(1);
    dc_tensor *lat = tensor(DC_F32, 3, (int64_t[]){ 1, M, LAT_D });
    fill_uniform(lat, -1, 1, 6);
    feed f = unet_feed(&in, "lat", lat);
    float *y0 = e ? run_copy(e, &f) : NULL;
    float *lv = lat->data;
    for (int half = 0; y0 && half < 2; half++) {
        for (int j = 0; j < M / 2 * LAT_D; j++) lv[half * M / 2 * LAT_D + j] += 0.5f;
        float *y = run_copy(e, &f);
        for (int j = 0; j < M / 2 * LAT_D; j++) lv[half * M / 2 * LAT_D + j] -= 0.5f;
        if (y) *(half ? second : first) = max_diff(y0, y, 0, DC_IMG_PIXELS) > 1e-4;
        free(y);
    }
    free(y0);
    dc_tensor_free(lat);
    free_inputs(&in);
    dc_exec_free(e);
    dc_graph_free(g);
}

TEST(images_nets_latent_groups) {
    static const char *const at14[] = { "up1" }, *const at7[] = { "down2", "mid0", "up2" };
    bool first, second;
    latent_reach(2, at14, 1, &first, &second);   /* only 7x7 reads: the first group */
    CHECK(first && !second);
    latent_reach(2, at7, 3, &first, &second);    /* only 14x14 reads: the second group */
    CHECK(!first && second);
    latent_reach(1, at14, 1, &first, &second);   /* one group: 7x7 reads every latent */
    CHECK(first && second);
    latent_reach(2, at14, 0, &first, &second);   /* nothing off */
    CHECK(first && second);
}

/* ---- the compiled program ------------------------------------------------------------------ */

/* the U-Net (two latent groups) and the ViT on one batch, loss = sum(U-Net^2) + sum(logits^2),
 * and the gradients of every param as outputs 1.. */
static dc_graph *train_like_graph(const dc_img_config *c, int *n_params) {
    dc_graph *g = dc_graph_new("unet_vit");
    dc_t y = unet_graph(g, c, B, false);
    dc_t logits = dc_img_vit(g, dc_input(g, "y", DC_F32, 4, ((int64_t[]){ B, DC_IMG_SIDE, DC_IMG_SIDE, 1 })), c);
    dc_t loss = dc_add(g, dc_sum(g, dc_square(g, y)), dc_sum(g, dc_square(g, logits)));
    dc_output(g, loss, "loss");
    int wrt[512], grads[512], n = 0;
    for (int i = 0; i < g->n_nodes && n < 512; i++)
        if (g->nodes[i].op == DC_OP_PARAM) wrt[n++] = i;
    char err[DC_ERR_LEN] = "";
    bool ok = !dc_graph_failed(g) && dc_grad(g, loss.id, wrt, n, grads, err, sizeof err);
    CHECK_MSG(ok, "%s %s", dc_graph_error(g), err);
    for (int i = 0; ok && i < n; i++) dc_graph_add_output(g, grads[i], NULL);
    *n_params = ok ? n : 0;
    return g;
}

/* the name of g's i-th param in node order */
static const char *param_name(const dc_graph *g, int i) {
    for (int k = 0; k < g->n_nodes; k++)
        if (g->nodes[k].op == DC_OP_PARAM && i-- == 0) return g->nodes[k].name;
    return "?";
}

TEST(images_nets_compiled_matches_ref) {
    dc_img_config c = small_config(false, 2);
    int n_ref, n_comp;
    dc_graph *gr = train_like_graph(&c, &n_ref), *gc = train_like_graph(&c, &n_comp);
    char err[DC_ERR_LEN] = "";
    dc_exec *er = n_ref ? new_exec(gr) : NULL;
    dc_exec *ec = n_comp ? dc_compile_for(gc, 3, DC_BACKEND_AUTO, NULL, err, sizeof err) : NULL;
    CHECK_MSG(ec, "compile: %s", err);
    unet_inputs in = make_inputs(B);
    dc_tensor *z = one_hot_z(B, (const int[]){ 0, 1, 2, 3, K, 4, 0, 2 });
    feed f = unet_feed(&in, "z", z);
    f.name[f.n] = "y", f.value[f.n++] = in.x;
    float *lr = er ? run_copy(er, &f) : NULL;
    bool copied = er && ec && dc_exec_copy_params(er, ec, &(dc_param_map){ .need_all = true }, err, sizeof err);
    CHECK_MSG(!er || !ec || copied, "%s", err);
    float *lc = copied ? run_copy(ec, &f) : NULL;
    if (lr && lc) {
        CHECK_NEAR(*lc, *lr, 0, 1e-4);
        /* each gradient to 1e-3 of its largest entry, above a floor for the sums that cancel
         * (the providers round differently): 1e-5 of the largest entry of all */
        double mx[512] = { 0 }, all = 0;
        for (int i = 1; i <= n_ref; i++) {
            const dc_tensor *a = dc_exec_output(er, i);
            const float *av = a->data;
            for (int64_t j = 0; j < dc_numel(&a->type.shape); j++) mx[i - 1] = fmax(mx[i - 1], fabs(av[j]));
            all = fmax(all, mx[i - 1]);
        }
        for (int i = 1; i <= n_ref; i++) {
            const dc_tensor *a = dc_exec_output(er, i), *b = dc_exec_output(ec, i);
            double d = 0;
            for (int64_t j = 0; j < dc_numel(&a->type.shape); j++)
                d = fmax(d, fabs((double)((const float *)a->data)[j] - ((const float *)b->data)[j]));
            CHECK_MSG(d <= 1e-3 * mx[i - 1] + 1e-5 * all, "the gradient of %s: compiled differs by %g, largest entry %g",
                      param_name(gr, i - 1), d, mx[i - 1]);
        }
    }
    free(lr), free(lc);
    dc_tensor_free(z);
    free_inputs(&in);
    dc_exec_free(er), dc_exec_free(ec);
    dc_graph_free(gr), dc_graph_free(gc);
}

/* ---- misuse --------------------------------------------------------------------------------- */

/* result is the invalid handle and g's error contains msg; frees g */
static void expect_error(dc_graph *g, dc_t result, const char *msg) {
    CHECK_MSG(result.id < 0, "expected an invalid handle for '%s'", msg);
    CHECK_MSG(dc_graph_failed(g), "no graph error for '%s'", msg);
    CHECK_MSG(strstr(dc_graph_error(g), msg), "error '%s' lacks '%s'", dc_graph_error(g), msg);
    dc_graph_free(g);
}

/* the U-Net of c on x [B,28,28,channels] and labels of dtype label_dt, with latent tokens of
 * z [B,zm,zk] unless no_lat */
static dc_t unet_on(dc_graph *g, const dc_img_config *c, int64_t channels, dc_dtype label_dt, bool no_lat,
                    int64_t zm, int64_t zk) {
    dc_t x = dc_input(g, "x", DC_F32, 4, ((int64_t[]){ B, DC_IMG_SIDE, DC_IMG_SIDE, channels }));
    dc_t c_noise = dc_input(g, "c_noise", DC_F32, 2, ((int64_t[]){ B, 1 }));
    dc_t labels = dc_input(g, "labels", label_dt, 1, ((int64_t[]){ B }));
    dc_t lat = DC_NONE;
    if (!no_lat) lat = dc_img_latent_tokens(g, dc_input(g, "z", DC_F32, 3, ((int64_t[]){ B, zm, zk })), c);
    return dc_img_unet(g, x, c_noise, labels, lat, c);
}

TEST(images_nets_misuse_is_a_graph_error) {
    dc_img_config ok = small_config(false, 1), base = small_config(true, 1), c;
    dc_graph *g = dc_graph_new("t");
    expect_error(g, unet_on(g, &ok, 1, DC_I32, false, M, K), "z must be f32[B,4,6], got f32[2,4,5]");
    g = dc_graph_new("t");
    expect_error(g, unet_on(g, &ok, 1, DC_I32, false, 1, K + 1), "z must be f32[B,4,6], got f32[2,1,6]");
    g = dc_graph_new("t");
    expect_error(g, unet_on(g, &ok, 3, DC_I32, false, M, K + 1), "x_in must be f32[B,28,28,1]");
    g = dc_graph_new("t");
    expect_error(g, unet_on(g, &ok, 1, DC_F32, false, M, K + 1), "labels must be i32[2]");
    g = dc_graph_new("t");
    expect_error(g, unet_on(g, &base, 1, DC_I32, false, M, K + 1), "the baseline takes no latent tokens");
    g = dc_graph_new("t");
    expect_error(g, unet_on(g, &ok, 1, DC_I32, true, M, K + 1), "needs latent tokens");
    c = small_config(false, 2), c.m = 3;
    g = dc_graph_new("t");
    expect_error(g, unet_on(g, &c, 1, DC_I32, false, 3, K + 1), "latent_groups must be 1, or 2 with an even m");
    c = small_config(false, 3);
    g = dc_graph_new("t");
    expect_error(g, unet_on(g, &c, 1, DC_I32, false, M, K + 1), "latent_groups");
    c = small_config(true, 1), c.heads = 3;
    g = dc_graph_new("t");
    expect_error(g, unet_on(g, &c, 1, DC_I32, true, M, K + 1), "32 channels are not divisible by 3 heads");
    c.heads = 0;
    g = dc_graph_new("t");
    expect_error(g, unet_on(g, &c, 1, DC_I32, true, M, K + 1), "not divisible by 0 heads");
    c = small_config(true, 1), c.ch = 12;
    g = dc_graph_new("t");
    expect_error(g, unet_on(g, &c, 1, DC_I32, true, M, K + 1), "ch must be a positive multiple");
    g = dc_graph_new("t");
    expect_error(g, unet_on(g, NULL, 1, DC_I32, true, M, K + 1), "no config");
    g = dc_graph_new("t");
    expect_error(g, dc_img_latent_tokens(g, DC_NONE, &ok), "invalid handle");
    /* the ViT */
    for (int patch = -1; patch <= 5; patch += 6) {
        c = small_config(false, 1), c.vit_patch = patch;
        g = dc_graph_new("t");
        dc_t y = dc_input(g, "y", DC_F32, 4, ((int64_t[]){ B, DC_IMG_SIDE, DC_IMG_SIDE, 1 }));
        expect_error(g, dc_img_vit(g, y, &c), "the patch side must divide 28");
    }
    g = dc_graph_new("t");
    expect_error(g, dc_img_vit(g, dc_input(g, "y", DC_F32, 3, ((int64_t[]){ B, 28, 28 })), &ok),
                 "y must be f32[B,28,28,1], got f32[2,28,28]");
    c = small_config(false, 1), c.vit_d = 9;
    g = dc_graph_new("t");
    expect_error(g, dc_img_vit(g, dc_input(g, "y", DC_F32, 4, ((int64_t[]){ B, 28, 28, 1 })), &c),
                 "9 channels are not divisible by 2 heads");
    /* errors are sticky: the first one stays */
    g = dc_graph_new("t");
    dc_t bad = unet_on(g, &ok, 1, DC_I32, false, M, K);
    CHECK(dc_img_vit(g, dc_input(g, "y2", DC_F32, 4, ((int64_t[]){ B, 28, 28, 1 })), &ok).id < 0);
    expect_error(g, bad, "z must be");
    /* no graph */
    CHECK(dc_img_unet(NULL, DC_NONE, DC_NONE, DC_NONE, DC_NONE, &ok).id < 0);
    CHECK(dc_img_latent_tokens(NULL, DC_NONE, &ok).id < 0);
    CHECK(dc_img_vit(NULL, DC_NONE, &ok).id < 0);
}
