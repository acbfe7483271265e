/* test_toy.c — the DisCo-Diff toy model: graph shapes; the Gumbel straight-through forward is
 * one-hot at argmax(logits + gumbel) and its gradient w.r.t. the logits is the soft path's
 * (host finite differences with the same Gumbel noise, recomputed from the RNG); the null-
 * embedding rate; a short training run lowers the loss; a trained model file round-trips and
 * guidance w = 0 is bitwise the plain conditional sampler of an independent callback, w != 0
 * follows D_cond + w (D_cond - D_null), and the sampler counts 2 steps - 1 denoiser runs per
 * generation (twice that when guided) and times its prior and ODE; `disco sample/eval/train
 * toy` error paths. */
#include "tests/test.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "models/disco/disco.h"
#include "passes/passes.h"

static dc_toy_config tiny_config(void) {
    dc_toy_config c = dc_toy_config_defaults();
    c.width = 32, c.enc_width = 16;
    return c;
}

static const dc_type *output_type(const dc_graph *g, const char *name) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->output_names[i] && strcmp(g->output_names[i], name) == 0) return &g->nodes[g->outputs[i]].type;
    return NULL;
}

TEST(toy_graph_shapes) {
    dc_toy_config c = tiny_config();
    c.m = 3, c.k = 5;
    dc_graph *g = dc_graph_new("shapes");
    dc_t y = dc_input(g, "y", DC_F32, 2, ((int64_t[]){ 7, 2 }));
    dc_t logits = dc_toy_encoder(g, y, &c);
    dc_t z = dc_toy_gumbel_st(g, logits, 1.0f);
    dc_t emb = dc_toy_latent_embedding(g, z, &c);
    CHECK_MSG(!dc_graph_failed(g), "%s", dc_graph_error(g));
    const dc_type *t = dc_type_of(g, logits);
    CHECK(t && t->shape.rank == 3 && t->shape.dim[0] == 7 && t->shape.dim[1] == 3 && t->shape.dim[2] == 5);
    t = dc_type_of(g, z);
    CHECK(t && t->shape.rank == 3 && t->shape.dim[2] == 5);
    t = dc_type_of(g, emb);
    CHECK(t && t->shape.rank == 2 && t->shape.dim[0] == 7 && t->shape.dim[1] == 32);
    dc_graph_free(g);

    dc_graph *tg = dc_toy_train_graph(&c, 7), *dg = dc_toy_denoise_graph(&c, 7), *eg = dc_toy_encode_graph(&c, 7);
    c.baseline = true;
    dc_graph *bg = dc_toy_train_graph(&c, 7);
    char err[DC_ERR_LEN];
    dc_graph *gs[4] = { tg, dg, eg, bg };
    for (int i = 0; i < 4; i++) CHECK_MSG(!dc_graph_failed(gs[i]) && dc_verify(gs[i], err, sizeof err), "graph %d: %s", i, dc_graph_error(gs[i]));
    const dc_type *lt = output_type(tg, "loss"), *dt = output_type(dg, "denoised"), *ct = output_type(eg, "codes");
    CHECK(lt && lt->shape.rank == 0 && lt->dtype == DC_F32);
    CHECK(dt && dt->shape.rank == 2 && dt->shape.dim[0] == 7 && dt->shape.dim[1] == 2);
    CHECK(ct && ct->dtype == DC_I32 && ct->shape.rank == 2 && ct->shape.dim[1] == 3);
    CHECK(output_type(bg, "loss") && !output_type(bg, "drop_rate"));
    /* the baseline has the denoiser's params only */
    for (int i = 0; i < bg->n_nodes; i++)
        if (bg->nodes[i].op == DC_OP_PARAM) CHECK_MSG(strncmp(bg->nodes[i].name, "den.", 4) == 0, "%s", bg->nodes[i].name);
    for (int i = 0; i < 4; i++) dc_graph_free(gs[i]);
}

/* sum(c * softmax((l + gumbel) / tau)) on the host, in double */
static double soft_objective(const double *l, const double *gum, const double *c, int rows, int k, double tau) {
    double total = 0;
    for (int r = 0; r < rows; r++) {
        double mx = -1e300, s = 0, e[16];
        for (int j = 0; j < k; j++) mx = fmax(mx, (l[r * k + j] + gum[r * k + j]) / tau);
        for (int j = 0; j < k; j++) s += e[j] = exp((l[r * k + j] + gum[r * k + j]) / tau - mx);
        for (int j = 0; j < k; j++) total += c[r * k + j] * e[j] / s;
    }
    return total;
}

TEST(gumbel_straight_through_forward_and_gradient) {
    enum { B = 3, M = 2, K = 5, N = B * M * K };
    const float tau = 0.7f;
    const uint64_t seed = 11;
    dc_graph *g = dc_graph_new("gumbel_st");
    dc_t logits = dc_param(g, "logits", 3, ((int64_t[]){ B, M, K }), .init = DC_INIT_NORMAL, .a = 1.0f);
    dc_t c = dc_input(g, "c", DC_F32, 3, ((int64_t[]){ B, M, K }));
    dc_t z = dc_toy_gumbel_st(g, logits, tau);
    dc_output(g, z, "z");
    dc_t loss = dc_sum(g, dc_mul(g, z, c));
    int grad = -1;
    char err[DC_ERR_LEN];
    CHECK_MSG(dc_grad(g, loss.id, &logits.id, 1, &grad, err, sizeof err), "%s", err);
    dc_output(g, (dc_t){ grad }, "grad");
    int64_t stream = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_GUMBEL) stream = g->nodes[i].attr.random.stream;
    dc_exec *e = dc_graph_failed(g) ? NULL : dc_exec_new(g, seed, err, sizeof err);
    CHECK_MSG(e, "%s %s", dc_graph_error(g), err);
    if (!e) {
        dc_graph_free(g);
        return;
    }
    dc_tensor *ct = dc_tensor_new(&(dc_type){ DC_F32, { 3, { B, M, K } } });
    double l[N], gum[N], cv[N];
    for (int i = 0; i < N; i++) {
        cv[i] = ((float *)ct->data)[i] = (float)((i * 7 % 11) - 5) / 5.0f;
        l[i] = ((const float *)dc_exec_param(e, "logits")->data)[i];
        gum[i] = -logf(-logf(dc_rng_uniform01(seed, (uint64_t)stream, (uint64_t)i)));
    }
    CHECK(dc_exec_set_input(e, "c", ct, err, sizeof err) && dc_exec_run(e, err, sizeof err));
    const float *zv = dc_exec_output(e, 0)->data, *gv = dc_exec_output(e, 1)->data;
    for (int r = 0; r < B * M; r++) {
        int best = 0;
        for (int j = 1; j < K; j++)
            if (l[r * K + j] + gum[r * K + j] > l[r * K + best] + gum[r * K + best]) best = j;
        for (int j = 0; j < K; j++) CHECK_EQ_INT((int)zv[r * K + j], j == best);
    }
    const double h = 1e-5;
    for (int i = 0; i < N; i++) {
        double lp[N], lm[N];
        memcpy(lp, l, sizeof lp);
        memcpy(lm, l, sizeof lm);
        lp[i] += h, lm[i] -= h;
        double fd = (soft_objective(lp, gum, cv, B * M, K, tau) - soft_objective(lm, gum, cv, B * M, K, tau)) / (2 * h);
        CHECK_NEAR(gv[i], fd, 1e-4, 1e-3);
    }
    dc_tensor_free(ct);
    dc_exec_free(e);
    dc_graph_free(g);
}

TEST(null_embedding_rate_is_one_tenth) {
    enum { B = 4096, RUNS = 5 };
    dc_toy_config c = tiny_config();
    dc_graph *g = dc_toy_train_graph(&c, B);
    char err[DC_ERR_LEN];
    dc_exec *e = dc_exec_new(g, 3, err, sizeof err);
    CHECK_MSG(e, "%s", err);
    int out = -1;
    for (int i = 0; i < g->n_outputs; i++)
        if (strcmp(g->output_names[i], "drop_rate") == 0) out = i;
    double total = 0;
    for (int r = 0; e && out >= 0 && r < RUNS; r++) {
        dc_exec_set_seed(e, 100 + (uint64_t)r);
        CHECK(dc_exec_run(e, err, sizeof err));
        total += *(const float *)dc_exec_output(e, out)->data;
    }
    /* binomial: std of the mean over 20480 draws is 0.0021; 4 std */
    CHECK_NEAR(total / RUNS, 0.1, 0.0084, 0);
    dc_exec_free(e);
    dc_graph_free(g);
}

typedef struct {
    const float *xy;
    dc_tensor *y;
} feed_ctx;

static bool feed(void *ctx, dc_exec *e, const int64_t *idx, int64_t batch, char *err, size_t len) {
    feed_ctx *f = ctx;
    for (int64_t i = 0; i < batch; i++) memcpy((float *)f->y->data + 2 * i, f->xy + 2 * idx[i], 2 * sizeof(float));
    return dc_exec_set_input(e, "y", f->y, err, len);
}

TEST(toy_training_lowers_the_loss) {
    enum { STEPS = 300, BATCH = 128, N = 2048, W = 30 };
    dc_toy_config c = tiny_config();
    float *xy = malloc(N * 2 * sizeof *xy), losses[STEPS];
    dc_toy_sample(5, N, xy, NULL);
    feed_ctx f = { xy, dc_tensor_new(&(dc_type){ DC_F32, { 2, { BATCH, 2 } } }) };
    dc_train_data d = { N, feed, &f };
    dc_train_config tc = { .steps = STEPS, .batch = BATCH, .lr = 3e-3, .min_lr_ratio = 1, .b1 = 0.9f, .b2 = 0.999f,
                           .eps = 1e-8f, .seed = 2 };
    char err[DC_ERR_LEN];
    dc_trainer *t = dc_trainer_new(dc_toy_train_graph(&c, BATCH), &tc, &d, err, sizeof err);
    CHECK_MSG(t, "%s", err);
    if (t && dc_trainer_run(t, STEPS, losses, err, sizeof err)) {
        double first = 0, last = 0;
        for (int i = 0; i < W; i++) first += losses[i] / W, last += losses[STEPS - W + i] / W;
        CHECK_MSG(last < 0.6 * first, "loss %g -> %g", first, last);
    }
    dc_trainer_free(t);
    dc_tensor_free(f.y);
    free(xy);
}

/* ---- a tiny trained model: file round trip and guidance ------------------------------------ */

static bool train_tiny(const char *path, bool baseline) {
    dc_toy_setup s = dc_toy_setup_defaults();
    s.model = tiny_config();
    s.model.baseline = baseline;
    s.prior = dc_prior_config_defaults(1, 8);
    s.prior.d_model = 16, s.prior.heads = 2, s.prior.layers = 1;
    s.train.steps = 40, s.train.batch = 64, s.train.warmup = 0;
    s.prior_train.steps = 20, s.prior_train.batch = 64, s.prior_train.warmup = 0;
    dc_toy_report r;
    char err[DC_ERR_LEN];
    bool ok = dc_toy_train(&s, path, &r, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    return ok;
}

/* the plain conditional denoiser, independent of the sampler: its own program */
typedef struct {
    dc_exec *e;
    const int32_t *codes;
    int64_t n;
    int drop;
} cond_ctx;

static bool cond_denoise(void *ctx, const float *x, float sigma, float *d_out, int64_t n, int64_t dim, char *err,
                         size_t len) {
    cond_ctx *c = ctx;
    (void)dim;
    dc_tensor xt = { .type = { DC_F32, { 2, { n, 2 } } }, .data = (void *)x };
    dc_tensor *st = dc_tensor_new(&(dc_type){ DC_F32, { 2, { n, 1 } } });
    dc_tensor *dt = dc_tensor_new(&(dc_type){ DC_I32, { 2, { n, 1 } } });
    dc_tensor ctt = { .type = { DC_I32, { 2, { n, 1 } } }, .data = (void *)c->codes };
    for (int64_t i = 0; i < n; i++) ((float *)st->data)[i] = sigma, ((int32_t *)dt->data)[i] = c->drop;
    bool ok = dc_exec_set_input(c->e, "x", &xt, err, len) && dc_exec_set_input(c->e, "sigma", st, err, len) &&
              dc_exec_set_input(c->e, "codes", &ctt, err, len) && dc_exec_set_input(c->e, "drop", dt, err, len) &&
              dc_exec_run(c->e, err, len);
    if (ok) memcpy(d_out, dc_exec_output(c->e, 0)->data, (size_t)n * 2 * sizeof *d_out);
    dc_tensor_free(st);
    dc_tensor_free(dt);
    return ok;
}

TEST(toy_guidance_zero_is_conditional_sampling) {
    enum { N = 64, STEPS = 6 };
    char path[] = "/tmp/disco_toy_modelXXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char err[DC_ERR_LEN];
    dc_toy_model *m = train_tiny(path, false) ? dc_toy_load(path, err, sizeof err) : NULL;
    CHECK_MSG(m, "%s", err);
    dc_toy_sampler *s = m ? dc_toy_sampler_new(m, N, DC_BACKEND_AUTO, err, sizeof err) : NULL;
    dc_graph *g = m ? dc_toy_denoise_graph(&dc_toy_model_setup(m)->model, N) : NULL;
    dc_exec *e = g ? dc_compile_for(g, 0, DC_BACKEND_AUTO, NULL, err, sizeof err) : NULL;
    if (!s || !e || !dc_toy_model_export(m, e, err, sizeof err)) {
        CHECK_MSG(false, "%s", err);
    } else {
        float a[N * 2], b[N * 2], x0[N * 2], dg[N * 2], dc[N * 2], dn[N * 2];
        int32_t codes[N];
        dc_toy_sample_opts o = dc_toy_sample_defaults();
        o.heun_steps = STEPS, o.seed = 4;
        CHECK(dc_toy_generate(s, &o, a, codes, NULL, err, sizeof err));
        for (int i = 0; i < N; i++) CHECK(codes[i] >= 0 && codes[i] < 8);
        const dc_toy_sample_times *t = dc_toy_sampler_times(s);
        CHECK_EQ_INT(t->denoiser_calls, 2 * STEPS - 1);
        CHECK(t->prior_s > 0 && t->ode_s > 0);
        cond_ctx cc = { e, codes, N, 0 };
        dc_sampler_opts so = dc_sampler_defaults();
        so.steps = STEPS;
        dc_edm_initial_noise(o.seed + 1, so.sigma_max, N, 2, b);
        memcpy(x0, b, sizeof x0);
        CHECK(dc_edm_sample(&so, cond_denoise, &cc, b, N, 2, err, sizeof err));
        CHECK_MSG(memcmp(a, b, sizeof a) == 0, "w = 0 differs from conditional sampling");
        /* w = 1.5 at one call: D_cond + w (D_cond - D_null) from the independent program */
        o.guidance = 1.5f;
        CHECK(dc_toy_generate_from(s, &o, codes, a, NULL, err, sizeof err));
        CHECK_EQ_INT(t->denoiser_calls, 2 * (2 * STEPS - 1));   /* a null pass per call */
        CHECK(t->prior_s == 0 && t->ode_s > 0);
        CHECK(dc_toy_denoise(s, x0, 2.0f, dg, N, 2, err, sizeof err));
        CHECK(cond_denoise(&cc, x0, 2.0f, dc, N, 2, err, sizeof err));
        cc.drop = 1;
        CHECK(cond_denoise(&cc, x0, 2.0f, dn, N, 2, err, sizeof err));
        double diff = 0;
        for (int i = 0; i < N * 2; i++) {
            CHECK_NEAR(dg[i], dc[i] + 1.5 * (dc[i] - dn[i]), 1e-5, 1e-5);
            diff += fabs(dc[i] - dn[i]);
        }
        CHECK_MSG(diff > 0, "the null embedding changes nothing");
    }
    dc_exec_free(e);
    dc_graph_free(g);
    dc_toy_sampler_free(s);
    dc_toy_model_free(m);
    unlink(path);
}

TEST(toy_model_file_round_trip_and_damage) {
    char path[] = "/tmp/disco_toy_edmXXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char err[DC_ERR_LEN];
    if (!train_tiny(path, true)) return;
    dc_toy_model *m = dc_toy_load(path, err, sizeof err);
    CHECK_MSG(m, "%s", err);
    if (m) {
        CHECK(dc_toy_model_setup(m)->model.baseline);
        CHECK_EQ_INT(dc_toy_model_setup(m)->model.width, 32);
    }
    dc_toy_model_free(m);
    /* a flipped byte in the data, then a truncation: clear errors, no model */
    size_t len;
    char *bytes = dc_test_read_file(path, &len);
    FILE *f = fopen(path, "wb");
    bytes[len - 20] ^= 0x40;
    fwrite(bytes, 1, len, f);
    fclose(f);
    CHECK(!dc_toy_load(path, err, sizeof err) && strstr(err, "checksum"));
    f = fopen(path, "wb");
    fwrite(bytes, 1, len / 2, f);
    fclose(f);
    CHECK(!dc_toy_load(path, err, sizeof err) && strstr(err, path));
    CHECK(!dc_toy_load("/nonexistent/toy.ckpt", err, sizeof err) && strstr(err, "cannot open"));
    free(bytes);
    unlink(path);
}

/* ---- the command line ------------------------------------------------------------------- */

/* exit status of `disco ARGS` with output discarded (128 + signal if killed) */
static int disco_status(const char *const *args) {
    const char *bin = getenv("DISCO") && *getenv("DISCO") ? getenv("DISCO") : "build/disco";
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        const char *argv[16] = { bin };
        for (int i = 0; args[i] && i < 14; i++) argv[i + 1] = args[i];
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(toy_cli_error_paths) {
    char junk[] = "/tmp/disco_toy_junkXXXXXX";
    int fd = mkstemp(junk);
    CHECK(write(fd, "DISCOCKP not really", 19) == 19);
    close(fd);
    struct { int status; const char *args[8]; } cases[] = {
        { 2, { "sample", "toy", NULL } },                                    /* no --ckpt */
        { 2, { "sample", "cifar", "--ckpt", junk, NULL } },                  /* unknown model */
        { 2, { "sample", "toy", "--ckpt", junk, "--heun-steps", "0", NULL } },
        { 2, { "sample", "toy", "--ckpt", junk, "--guidance", "abc", NULL } },
        { 2, { "sample", "toy", "--ckpt", junk, "--bogus", NULL } },
        { 2, { "sample", "toy", "--ckpt", NULL } },                          /* missing value */
        { 1, { "sample", "toy", "--ckpt", junk, NULL } },                    /* not a model file */
        { 1, { "sample", "toy", "--ckpt", "/nonexistent/x.ckpt", NULL } },
        { 2, { "eval", "toy", "--n", "1", "--ckpt", junk, NULL } },
        { 2, { "eval", "toy", "--ckpt", junk, "--w2-steps", "5,x", NULL } },
        { 1, { "eval", "toy", "--ckpt", junk, NULL } },
        { 2, { "train", "toy", "--latents", "0", NULL } },
        { 2, { "train", "toy", "--tau", "-1", NULL } },
        { 2, { "train", "toy", "--sigma-data", "nan", NULL } },
        { 0, { "sample", "--help", NULL } },
        { 0, { "eval", "toy", "--help", NULL } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int st = disco_status(cases[i].args);
        CHECK_MSG(st == cases[i].status, "case %zu (%s %s ...): status %d, expected %d", i, cases[i].args[0],
                  cases[i].args[1] ? cases[i].args[1] : "", st, cases[i].status);
    }
    unlink(junk);
}
