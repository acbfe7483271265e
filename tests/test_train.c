/* test_train.c — the optimizer graph and the trainer on tiny problems: AdamW steps (weight
 * decay, bias corrections), clipping by global norm and the EMA against hand-computed values;
 * the LR schedule against its formula; a tiny MLP on synthetic data trained twice with 2
 * threads gives the same bits, resumes from a checkpoint bitwise-identically, and lowers its
 * loss; bad configs and foreign checkpoints are refused; `disco train` usage errors. */
#include "tests/test.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frontend/optim.h"
#include "models/train.h"
#include "runtime/runtime.h"

static const dc_type scalar_t = { DC_F32, { 0 } };

static void set_scalar(dc_exec *e, const char *name, float v) {
    dc_tensor *t = dc_tensor_new(&scalar_t);
    *(float *)t->data = v;
    char err[DC_ERR_LEN];
    CHECK_MSG(dc_exec_set_input(e, name, t, err, sizeof err), "%s", err);
    dc_tensor_free(t);
}

static void set_vec(dc_exec *e, const char *name, int n, const float *v) {
    dc_tensor *t = dc_tensor_new(&(dc_type){ DC_F32, { 1, { n } } });
    memcpy(t->data, v, (size_t)n * sizeof *v);
    char err[DC_ERR_LEN];
    CHECK_MSG(dc_exec_set_input(e, name, t, err, sizeof err), "%s", err);
    dc_tensor_free(t);
}

static bool run(dc_exec *e) {
    char err[DC_ERR_LEN];
    bool ok = dc_exec_run(e, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    return ok;
}

/* ---- optimizer graph against hand values ------------------------------------------------ */

/* Quadratic loss sum((p - c)^2) on p f32[2]; the gradient 2(p - c) is built by hand so that
 * only AdamW is under test. Five steps against AdamW computed in double on the host. */
TEST(adamw_steps_match_hand_computation) {
    const float b1 = 0.9f, b2 = 0.99f, eps = 1e-8f, wd = 0.1f, lr = 0.05f;
    const double c[2] = { 1.5, -2.0 };
    dc_graph *g = dc_graph_new("adamw");
    dc_t p = dc_param(g, "p", 1, ((int64_t[]){ 2 }), .init = DC_INIT_ZEROS);
    dc_t cc = dc_input(g, "c", DC_F32, 1, ((int64_t[]){ 2 }));
    dc_t grad = dc_mul_scalar(g, dc_sub(g, p, cc), 2.0f);
    dc_t lr_in = dc_input(g, "lr", DC_F32, 0, NULL), bc1 = dc_input(g, "bc1", DC_F32, 0, NULL),
         bc2 = dc_input(g, "bc2", DC_F32, 0, NULL);
    dc_t next;
    dc_adamw(g, 1, &p, &grad, lr_in, bc1, bc2, &next, .b1 = b1, .b2 = b2, .eps = eps, .weight_decay = wd);
    dc_output(g, next, "p_next");
    CHECK_MSG(!dc_graph_failed(g), "%s", dc_graph_error(g));
    CHECK_EQ_INT(g->n_updates, 3);
    char err[DC_ERR_LEN];
    dc_exec *e = dc_exec_new(g, 0, err, sizeof err);
    CHECK_MSG(e, "%s", err);
    if (!e) {
        dc_graph_free(g);
        return;
    }
    float *pv = dc_exec_param(e, "p")->data;
    pv[0] = 0.25f, pv[1] = 0.5f;
    set_vec(e, "c", 2, (float[]){ (float)c[0], (float)c[1] });
    double hp[2] = { 0.25, 0.5 }, hm[2] = { 0, 0 }, hv[2] = { 0, 0 };
    for (int t = 1; t <= 5; t++) {
        double cb1 = 1 / (1 - pow(b1, t)), cb2 = 1 / (1 - pow(b2, t));
        set_scalar(e, "lr", lr);
        set_scalar(e, "bc1", (float)cb1);
        set_scalar(e, "bc2", (float)cb2);
        if (!run(e)) break;
        for (int i = 0; i < 2; i++) {
            double gr = 2 * (hp[i] - c[i]);
            hm[i] = b1 * hm[i] + (1 - (double)b1) * gr;
            hv[i] = b2 * hv[i] + (1 - (double)b2) * gr * gr;
            hp[i] -= lr * (hm[i] * cb1 / (sqrt(hv[i] * cb2) + eps) + wd * hp[i]);
            CHECK_NEAR(((float *)dc_exec_param(e, "p")->data)[i], hp[i], 1e-6, 1e-5);
            CHECK_NEAR(((float *)dc_exec_param(e, "opt.m.p")->data)[i], hm[i], 1e-6, 1e-5);
            CHECK_NEAR(((float *)dc_exec_param(e, "opt.v.p")->data)[i], hv[i], 1e-6, 1e-5);
        }
    }
    dc_exec_free(e);
    dc_graph_free(g);
}

/* Gradients a f32[3], b f32[2] as inputs; norm and clipped values against hand values, once
 * above the limit (scaled) and once below (unchanged). */
TEST(clip_by_global_norm_matches_hand_values) {
    dc_graph *g = dc_graph_new("clip");
    dc_t gr[2] = { dc_input(g, "a", DC_F32, 1, ((int64_t[]){ 3 })), dc_input(g, "b", DC_F32, 1, ((int64_t[]){ 2 })) };
    dc_t norm = dc_global_norm(g, 2, gr);
    dc_clip_by_norm(g, 2, gr, norm, 1.0f);
    dc_output(g, norm, "norm");
    dc_output(g, gr[0], "a2");
    dc_output(g, gr[1], "b2");
    CHECK_MSG(!dc_graph_failed(g), "%s", dc_graph_error(g));
    char err[DC_ERR_LEN];
    dc_exec *e = dc_exec_new(g, 0, err, sizeof err);
    CHECK_MSG(e, "%s", err);
    const float cases[2][5] = { { 1, 2, 2, 0, 4 }, { 0.1f, -0.2f, 0.2f, 0.4f, 0 } };
    for (int k = 0; e && k < 2; k++) {
        set_vec(e, "a", 3, cases[k]);
        set_vec(e, "b", 2, cases[k] + 3);
        if (!run(e)) break;
        double sum = 0;
        for (int i = 0; i < 5; i++) sum += (double)cases[k][i] * cases[k][i];
        double total = sqrt(sum), scale = fmin(1.0, 1.0 / (total + 1e-6));
        CHECK_NEAR(*(float *)dc_exec_output(e, 0)->data, k == 0 ? 5.0 : 0.5, 1e-6, 1e-6);
        for (int i = 0; i < 5; i++) {
            const float *out = dc_exec_output(e, i < 3 ? 1 : 2)->data;
            CHECK_NEAR(out[i < 3 ? i : i - 3], cases[k][i] * scale, 1e-7, 1e-6);
        }
    }
    dc_exec_free(e);
    dc_graph_free(g);
}

/* ema' = d ema + (1-d) v over three runs, from a host-set start. */
TEST(ema_matches_hand_values) {
    dc_graph *g = dc_graph_new("ema");
    dc_t p = dc_param(g, "w", 1, ((int64_t[]){ 2 }), .init = DC_INIT_ONES);
    dc_t v = dc_input(g, "v", DC_F32, 1, ((int64_t[]){ 2 }));
    dc_ema(g, 1, &p, &v, 0.75f);
    dc_output(g, v, "v"); /* a graph needs an output; the EMA lives in the update */
    CHECK_MSG(!dc_graph_failed(g), "%s", dc_graph_error(g));
    char err[DC_ERR_LEN];
    dc_exec *e = dc_exec_new(g, 0, err, sizeof err);
    CHECK_MSG(e, "%s", err);
    double h[2] = { 1, -1 };
    const float vals[3][2] = { { 2, 0 }, { -4, 8 }, { 0.5f, 0.25f } };
    if (e) memcpy(dc_exec_param(e, "ema.w")->data, (float[]){ 1, -1 }, 2 * sizeof(float));
    for (int s = 0; e && s < 3; s++) {
        set_vec(e, "v", 2, vals[s]);
        if (!run(e)) break;
        for (int i = 0; i < 2; i++) {
            h[i] = 0.75 * h[i] + 0.25 * vals[s][i];
            CHECK_NEAR(((float *)dc_exec_param(e, "ema.w")->data)[i], h[i], 1e-7, 1e-6);
            CHECK_NEAR(((float *)dc_exec_param(e, "w")->data)[i], 1.0, 0, 0); /* w itself untouched */
        }
    }
    dc_exec_free(e);
    dc_graph_free(g);
}

TEST(optimizer_builders_reject_non_params) {
    dc_graph *g = dc_graph_new("bad");
    dc_t x = dc_input(g, "x", DC_F32, 1, ((int64_t[]){ 2 }));
    dc_t s = dc_scalar(g, 1.0f);
    dc_adamw(g, 1, &x, &x, s, s, s, NULL);
    CHECK(dc_graph_failed(g) && strstr(dc_graph_error(g), "adamw: operand 1 is not a param (it is a input)"));
    dc_graph_free(g);
    g = dc_graph_new("bad2");
    dc_t p = dc_param(g, "p", 1, ((int64_t[]){ 3 }));
    x = dc_input(g, "x", DC_F32, 1, ((int64_t[]){ 2 }));
    dc_ema(g, 1, &p, &x, 0.5f);
    CHECK(dc_graph_failed(g) && strstr(dc_graph_error(g), "ema: value 1 is f32[2], param 'p' is f32[3]"));
    dc_graph_free(g);
    g = dc_graph_new("bad3");
    p = dc_param(g, "p", 1, ((int64_t[]){ 3 }));
    dc_ema(g, 1, &p, &p, 1.5f);
    CHECK(dc_graph_failed(g) && strstr(dc_graph_error(g), "ema: decay must be in [0, 1], got 1.5"));
    dc_graph_free(g);
}

TEST(lr_schedule_matches_formula) {
    dc_train_config c = { .steps = 110, .warmup = 10, .lr = 2.0, .min_lr_ratio = 0.1 };
    CHECK_NEAR(dc_lr_at(&c, 0), 0.2, 1e-12, 0);                /* warmup 1/10 */
    CHECK_NEAR(dc_lr_at(&c, 4), 1.0, 1e-12, 0);                /* 5/10 */
    CHECK_NEAR(dc_lr_at(&c, 9), 2.0, 1e-12, 0);                /* end of warmup */
    CHECK_NEAR(dc_lr_at(&c, 10), 2.0, 1e-12, 0);               /* cosine at 0 */
    CHECK_NEAR(dc_lr_at(&c, 60), 2.0 * (0.1 + 0.9 * 0.5), 1e-12, 0); /* half way: cos = 0 */
    CHECK_NEAR(dc_lr_at(&c, 35), 2.0 * (0.1 + 0.9 * (1 + sqrt(0.5)) / 2), 1e-12, 0); /* a quarter */
    CHECK_NEAR(dc_lr_at(&c, 109), 2.0 * (0.1 + 0.9 * (1 + cos(M_PI * 0.99)) / 2), 1e-12, 0);
    c.warmup = 0;
    c.min_lr_ratio = 0;
    CHECK_NEAR(dc_lr_at(&c, 0), 2.0, 1e-12, 0);
    CHECK_NEAR(dc_lr_at(&c, 55), 1.0, 1e-12, 0);
}

/* ---- the trainer on a tiny MLP ----------------------------------------------------------- */

#define TOY_N 96
#define TOY_BATCH 16

/* two classes in the plane: label 1 when x0 + 0.5 x1 > 0.2, points N(0,1) from a fixed seed */
typedef struct { float x[TOY_N * 2]; int32_t y[TOY_N]; dc_tensor *bx, *by; } toy_data;

static void toy_init(toy_data *d) {
    for (int i = 0; i < TOY_N; i++) {
        d->x[2 * i] = dc_rng_normal(7, 1, (uint64_t)i);
        d->x[2 * i + 1] = dc_rng_normal(7, 2, (uint64_t)i);
        d->y[i] = d->x[2 * i] + 0.5f * d->x[2 * i + 1] > 0.2f;
    }
    d->bx = dc_tensor_new(&(dc_type){ DC_F32, { 2, { TOY_BATCH, 2 } } });
    d->by = dc_tensor_new(&(dc_type){ DC_I32, { 1, { TOY_BATCH } } });
}

static void toy_free(toy_data *d) {
    dc_tensor_free(d->bx);
    dc_tensor_free(d->by);
}

static bool toy_feed(void *ctx, dc_exec *e, const int64_t *idx, int64_t batch, char *err, size_t len) {
    toy_data *d = ctx;
    for (int64_t i = 0; i < batch; i++) {
        memcpy((float *)d->bx->data + 2 * i, d->x + 2 * idx[i], 2 * sizeof(float));
        ((int32_t *)d->by->data)[i] = d->y[idx[i]];
    }
    return dc_exec_set_input(e, "x", d->bx, err, len) && dc_exec_set_input(e, "y", d->by, err, len);
}

/* x [16,2] plus N(0, 0.05) noise (a random op, so step seeds matter) -> 16 -> silu -> 2 */
static dc_graph *toy_graph(void) {
    dc_graph *g = dc_graph_new("toy");
    dc_t x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ TOY_BATCH, 2 }));
    dc_t y = dc_input(g, "y", DC_I32, 1, ((int64_t[]){ TOY_BATCH }));
    x = dc_add(g, x, dc_normal(g, 2, ((int64_t[]){ TOY_BATCH, 2 }), .std = 0.05f));
    dc_t h = dc_silu(g, dc_linear(g, x, 16, .name = "l0"));
    dc_output(g, dc_cross_entropy(g, dc_linear(g, h, 2, .name = "l1"), y), "loss");
    return g;
}

static dc_train_config toy_config(int64_t steps) {
    return (dc_train_config){ .steps = steps, .batch = TOY_BATCH, .warmup = 3, .lr = 0.02, .min_lr_ratio = 0.1,
                              .b1 = 0.9f, .b2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f, .clip_norm = 0.5f,
                              .ema_decay = 0.9f, .seed = 3, .threads = 2 };
}

static dc_trainer *toy_trainer(const dc_train_config *c, toy_data *d) {
    dc_train_data td = { TOY_N, toy_feed, d };
    char err[DC_ERR_LEN];
    dc_trainer *t = dc_trainer_new(toy_graph(), c, &td, err, sizeof err);
    CHECK_MSG(t, "%s", err);
    return t;
}

static bool train_until(dc_trainer *t, int64_t until, float *losses) {
    char err[DC_ERR_LEN];
    bool ok = dc_trainer_run(t, until, losses, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    return ok;
}

/* true if every param of a (model, opt.*, ema.*) has the bits of b's param of that name */
static bool same_params(dc_trainer *a, dc_trainer *b) {
    const dc_graph *g = dc_trainer_graph(a);
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != DC_OP_PARAM) continue;
        const dc_tensor *x = dc_exec_value(dc_trainer_exec(a), i);
        const dc_tensor *y = dc_exec_param(dc_trainer_exec(b), g->nodes[i].name);
        if (!y || memcmp(x->data, y->data, (size_t)dc_numel(&x->type.shape) * sizeof(float)) != 0) {
            dc_test_fail(__FILE__, __LINE__, "param '%s' differs", g->nodes[i].name);
            return false;
        }
        n++;
    }
    CHECK_EQ_INT(n, 4 * 4); /* l0.w l0.b l1.w l1.b, each with opt.m, opt.v, ema */
    return true;
}

TEST(train_twice_is_bitwise_identical) {
    toy_data d;
    toy_init(&d);
    dc_train_config c = toy_config(12);
    dc_trainer *a = toy_trainer(&c, &d), *b = toy_trainer(&c, &d);
    float la[12], lb[12];
    if (a && b && train_until(a, 12, la) && train_until(b, 12, lb)) {
        CHECK(memcmp(la, lb, sizeof la) == 0);
        CHECK(same_params(a, b));
        CHECK(la[11] != la[10]); /* the steps really ran */
    }
    dc_trainer_free(a);
    dc_trainer_free(b);
    toy_free(&d);
}

TEST(resume_from_checkpoint_is_bitwise_identical) {
    toy_data d;
    toy_init(&d);
    char path[] = "/tmp/disco_train_ckptXXXXXX";
    int fd = mkstemp(path);
    close(fd);
    dc_train_config c = toy_config(14);
    float whole[14], part[14];
    dc_trainer *a = toy_trainer(&c, &d);
    bool ok = a && train_until(a, 14, whole);
    /* b stops after step 8 (6 batches per epoch: the resumed run starts inside epoch 1) */
    c.ckpt_every = 8;
    c.ckpt_path = path;
    dc_trainer *b = ok ? toy_trainer(&c, &d) : NULL;
    ok = b && train_until(b, 8, part);
    dc_trainer_free(b);
    c.ckpt_path = NULL;
    dc_trainer *r = ok ? toy_trainer(&c, &d) : NULL;
    char err[DC_ERR_LEN];
    if (r) {
        CHECK_MSG(dc_trainer_load(r, path, err, sizeof err), "%s", err);
        CHECK_EQ_INT(dc_trainer_steps_done(r), 8);
        if (train_until(r, 14, part)) {
            CHECK(memcmp(whole, part, sizeof whole) == 0);
            CHECK(same_params(a, r));
        }
    }
    dc_trainer_free(r);
    /* a trainer of another config refuses the checkpoint, naming it */
    c.lr = 0.03;
    r = toy_trainer(&c, &d);
    if (r) {
        CHECK(!dc_trainer_load(r, path, err, sizeof err));
        CHECK_MSG(strstr(err, path) && strstr(err, "another training configuration"), "%s", err);
    }
    dc_trainer_free(r);
    dc_trainer_free(a);
    unlink(path);
    toy_free(&d);
}

TEST(training_lowers_the_loss) {
    toy_data d;
    toy_init(&d);
    dc_train_config c = toy_config(60);
    c.ema_decay = 0;
    dc_trainer *t = toy_trainer(&c, &d);
    float loss[60];
    if (t && train_until(t, 60, loss)) {
        double first = (loss[0] + loss[1] + loss[2]) / 3, last = (loss[57] + loss[58] + loss[59]) / 3;
        CHECK_MSG(last < 0.5 * first, "loss went from %.4f to %.4f", first, last);
        CHECK(dc_exec_param(dc_trainer_exec(t), "ema.l0.w") == NULL); /* no EMA asked */
    }
    dc_trainer_free(t);
    toy_free(&d);
}

TEST(trainer_rejects_bad_setups) {
    toy_data d;
    toy_init(&d);
    dc_train_data td = { TOY_N, toy_feed, &d };
    char err[DC_ERR_LEN];
    dc_train_config c = toy_config(5);
    c.batch = 0;
    CHECK(!dc_trainer_new(toy_graph(), &c, &td, err, sizeof err) && strstr(err, "batch must be >= 1"));
    c = toy_config(5);
    c.batch = TOY_N + 1;
    CHECK(!dc_trainer_new(toy_graph(), &c, &td, err, sizeof err) && strstr(err, "fewer than one batch"));
    c = toy_config(5);
    dc_graph *g = dc_graph_new("noloss");
    dc_output(g, dc_param(g, "w", 0, NULL), "out");
    CHECK(!dc_trainer_new(g, &c, &td, err, sizeof err) && strstr(err, "needs an f32[] output named 'loss'"));
    dc_trainer *t = dc_trainer_new(toy_graph(), &c, &td, err, sizeof err);
    CHECK(t && !dc_trainer_load(t, "/nonexistent/disco.ckpt", err, sizeof err) && strstr(err, "/nonexistent/disco.ckpt"));
    dc_trainer_free(t);
    toy_free(&d);
}

/* ---- disco train on the command line ----------------------------------------------------- */

typedef struct { int status; char *out, *err; } cli_result;

/* Runs $DISCO (else build/disco) with args, capturing stdout and stderr. */
static cli_result run_cli(const char *const *args) {
    const char *bin = getenv("DISCO") && *getenv("DISCO") ? getenv("DISCO") : "build/disco";
    char out_path[] = "/tmp/disco_train_outXXXXXX", err_path[] = "/tmp/disco_train_errXXXXXX";
    int fo = mkstemp(out_path), fe = mkstemp(err_path);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        const char *argv[16] = { bin };
        for (int i = 0; args[i] && i < 14; i++) argv[i + 1] = args[i];
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    close(fo);
    close(fe);
    cli_result r = { WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), dc_test_read_file(out_path, NULL),
                     dc_test_read_file(err_path, NULL) };
    unlink(out_path);
    unlink(err_path);
    return r;
}

/* `disco train ARGS` gives status and a stderr containing want */
static void expect_cli(const char *const *args, int status, const char *want) {
    cli_result r = run_cli(args);
    CHECK_MSG(r.status == status && r.err && strstr(r.err, want), "disco train %s: status %d, stderr: %s", args[1],
              r.status, r.err ? r.err : "(none)");
    free(r.out);
    free(r.err);
}

TEST(cli_train_usage_errors) {
    cli_result r = run_cli((const char *[]){ "train", "--help", NULL });
    CHECK(r.status == 0 && r.out && strstr(r.out, "usage: disco train MODEL") && strstr(r.out, "fmnist-mlp"));
    free(r.out);
    free(r.err);
    expect_cli((const char *[]){ "train", NULL }, 2, "no model given (known models: fmnist-mlp");
    expect_cli((const char *[]){ "train", "nosuch", NULL }, 2, "unknown model 'nosuch' (known models: fmnist-mlp");
    expect_cli((const char *[]){ "train", "fmnist-mlp", "--bogus", NULL }, 2, "unknown option '--bogus'");
    expect_cli((const char *[]){ "train", "fmnist-mlp", "--steps", "x1", NULL }, 2, "--steps takes a positive integer, got 'x1'");
    expect_cli((const char *[]){ "train", "fmnist-mlp", "--lr", "-1", NULL }, 2, "--lr takes a positive number, got '-1'");
    expect_cli((const char *[]){ "train", "fmnist-mlp", "--threads", "0", NULL }, 2, "--threads takes an integer");
    expect_cli((const char *[]){ "train", "fmnist-mlp", "--batch", NULL }, 2, "option '--batch' needs a value");
    expect_cli((const char *[]){ "train", "fmnist-mlp", "--data", "/nonexistent", "--out", "/tmp", NULL }, 1,
               "dataset-fashion-mnist");
}
