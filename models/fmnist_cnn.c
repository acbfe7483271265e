/* fmnist_cnn.c — the `fmnist-cnn` model: a small NHWC convolutional classifier on
 * Fashion-MNIST, trained with the training program of train.h, evaluated on the 10k test
 * images, and saved for reuse as a feature extractor (the image models' Frechet distance uses
 * its penultimate 128-d features, see dc_fmnist_cnn_graph in models.h).
 *
 *   x [B,28,28,1]
 *   conv3x3 1->32  + group_norm(8) + silu   [B,28,28,32]   cnn.c1.{w,b}, cnn.n1.{scale,bias}
 *   conv3x3 32->32 + group_norm(8) + silu   [B,28,28,32]   cnn.c2, cnn.n2
 *   avg_pool 2                              [B,14,14,32]
 *   conv3x3 32->64 + group_norm(8) + silu   [B,14,14,64]   cnn.c3, cnn.n3
 *   avg_pool 2                              [B,7,7,64]
 *   reshape                                 [B,3136]
 *   linear 3136->128 + silu                 [B,128]        cnn.fc1  ("features")
 *   linear 128->10                          [B,10]         cnn.fc2  ("logits")
 *
 * Convs and linears start kaiming-normal with zero biases, norms with ones/zeros (the scheme
 * bench/cnn_torch.py copies). The reported accuracy is the raw params' (the cosine ends at
 * lr 0); the EMA's is printed beside. The run writes DIR/fmnist-cnn.ckpt (the training
 * checkpoint, for --resume) and DIR/fmnist-cnn.weights (only the cnn.* params, loadable with
 * dc_checkpoint_load into an executor of dc_fmnist_cnn_graph). It also prints the images/s
 * of the steps after the first TIMING_WARMUP but the last, which bench/cnn_vs_torch.sh reads. */
#include <stdlib.h>
#include <string.h>

#include "models/data/data.h"
#include "models/models.h"

#define SIDE 28
#define IMAGE (SIDE * SIDE)
#define CLASSES 10
#define FEATURES 128
#define GN_GROUPS 8
#define EVAL_BATCH 250 /* its program fits in the training program's scratch */
/* steps left out of the reported throughput: the first ones create primitives and caches */
#define TIMING_WARMUP 5

/* conv3x3 + group_norm + silu under scope conv_name / norm_name: [B,H,W,C] -> [B,H,W,out] */
static dc_t block(dc_graph *g, dc_t x, int64_t out, const char *conv_name, const char *norm_name) {
    dc_t h = dc_conv(g, x, out, .name = conv_name);
    h = dc_group_norm_m(g, h, .name = norm_name, .groups = GN_GROUPS);
    return dc_silu(g, h);
}

/* x [B,28,28,1] -> logits [B,10]; *features receives the [B,128] penultimate activations */
static dc_t cnn(dc_graph *g, dc_t x, int64_t batch, dc_t *features) {
    dc_t h = DC_NONE, f = DC_NONE;
    DC_SCOPE(g, "cnn") {
        h = block(g, x, 32, "c1", "n1");
        h = dc_avg_pool(g, block(g, h, 32, "c2", "n2"), 2);
        h = dc_avg_pool(g, block(g, h, 64, "c3", "n3"), 2);
        h = dc_reshape(g, h, 2, ((int64_t[]){ batch, 7 * 7 * 64 }));
        f = dc_silu(g, dc_linear(g, h, FEATURES, .name = "fc1"));
        h = dc_linear(g, f, CLASSES, .name = "fc2");
    }
    *features = f;
    return h;
}

/* inputs x f32[B,28,28,1], y i32[B]; output loss = cross_entropy(cnn(x), y) */
static dc_graph *train_graph(int64_t batch) {
    dc_graph *g = dc_graph_new("fmnist_cnn_train");
    dc_t x = dc_input(g, "x", DC_F32, 4, ((int64_t[]){ batch, SIDE, SIDE, 1 }));
    dc_t y = dc_input(g, "y", DC_I32, 1, ((int64_t[]){ batch }));
    dc_t features;
    dc_output(g, dc_cross_entropy(g, cnn(g, x, batch, &features), y), "loss");
    return g;
}

dc_graph *dc_fmnist_cnn_graph(int64_t batch) {
    dc_graph *g = dc_graph_new("fmnist_cnn");
    dc_t x = dc_input(g, "x", DC_F32, 4, ((int64_t[]){ batch, SIDE, SIDE, 1 }));
    dc_t features;
    dc_t logits = cnn(g, x, batch, &features);
    dc_output(g, logits, "logits");
    dc_output(g, features, "features");
    return g;
}

/* Trains steps start..c->steps one dc_trainer_run at a time (so checkpoints fall as
 * configured) under one progress display. *train_s: the whole run; *steady_s: the steps after
 * the first TIMING_WARMUP (which build primitives and caches) up to the one before the last
 * (which writes the final checkpoint), 0 if there are none. */
static bool run(dc_trainer *t, const dc_train_config *c, FILE *progress, int64_t start, double *train_s,
                double *steady_s, char *err, size_t len) {
    float *losses = malloc((size_t)c->steps * sizeof *losses);
    if (!losses) abort(); /* out of memory */
    dc_progress *p = progress && start < c->steps ? dc_progress_new("fmnist_cnn_train", c->steps, progress) : NULL;
    int64_t warm = start + TIMING_WARMUP, last = c->steps - 1;
    double t0 = dc_seconds(), t1 = t0;
    bool ok = true;
    for (int64_t s = start; ok && s < c->steps; s++) {
        if (s == warm) t1 = dc_seconds();
        if (s == last && warm < last) *steady_s = dc_seconds() - t1;
        ok = dc_trainer_run(t, s + 1, losses, err, len);
        if (ok && p) dc_progress_update(p, s + 1, losses[s]);
    }
    *train_s = dc_seconds() - t0;
    dc_progress_done(p);
    free(losses);
    return ok;
}

/* Evaluates the EMA params, then the raw ones, on te with a program of the given backend
 * whose arena lies in the training program's scratch (so the process peak is the training
 * peak); saves the raw ones to weights. false and err on failure. */
static bool evaluate(dc_trainer *t, dc_backend backend, const dc_dataset *te, const char *weights, double *acc,
                     double *ema, char *err, size_t len) {
    dc_graph *g = dc_fmnist_cnn_graph(EVAL_BATCH);
    dc_exec *e = dc_compile_for(g, 0, backend, dc_trainer_exec(t), err, len);
    bool ok = e && dc_trainer_export(t, true, e, err, len) && (*ema = dc_classifier_accuracy(e, te, err, len)) >= 0 &&
              dc_trainer_export(t, false, e, err, len) && (*acc = dc_classifier_accuracy(e, te, err, len)) >= 0 &&
              dc_checkpoint_save(weights, e, NULL, 0, err, len);
    dc_exec_free(e);
    dc_graph_free(g);
    return ok;
}

static bool train(const dc_train_config *cfg, const dc_train_request *r, char *err, size_t len) {
    dc_dataset tr = { 0 }, te = { 0 };
    dc_train_config c = *cfg;
    char ckpt[4096], weights[4096];
    if (!dc_train_out_path(r->out_dir, "fmnist-cnn.ckpt", ckpt, sizeof ckpt, err, len) ||
        !dc_train_out_path(r->out_dir, "fmnist-cnn.weights", weights, sizeof weights, err, len) ||
        !dc_fmnist_load(r->data_dir, true, &tr, err, len) || !dc_fmnist_load(r->data_dir, false, &te, err, len)) {
        dc_dataset_free(&tr);
        return false;
    }
    c.ckpt_path = ckpt;
    c.progress = NULL;  /* run() shows one display over all its phases */
    dc_image_feeder f = { &tr, dc_tensor_new(&(dc_type){ DC_F32, { 4, { c.batch, SIDE, SIDE, 1 } } }),
                 dc_tensor_new(&(dc_type){ DC_I32, { 1, { c.batch } } }) };
    dc_train_data d = { tr.n, dc_image_feed, &f };
    dc_trainer *t = dc_trainer_new(train_graph(c.batch), &c, &d, err, len);
    bool ok = t && (!r->resume || dc_trainer_load(t, r->resume, err, len));
    if (ok) {
        fprintf(r->out, "fmnist-cnn: %lld train / %lld test images; %lld steps of batch %lld (%.1f epochs)%s\n",
                (long long)tr.n, (long long)te.n, (long long)c.steps, (long long)c.batch,
                (double)(c.steps * c.batch) / (double)tr.n, r->resume ? "; resumed" : "");
        fflush(r->out);
    }
    int64_t start = ok ? dc_trainer_steps_done(t) : 0;
    double train_s = 0, steady_s = 0;
    ok = ok && run(t, &c, cfg->progress, start, &train_s, &steady_s, err, len);
    double acc = -1, ema = -1;
    ok = ok && evaluate(t, c.backend, &te, weights, &acc, &ema, err, len);
    if (ok) {
        if (start < c.steps)
            fprintf(r->out, "trained steps %lld..%lld in %.2f s; checkpoint %s\n", (long long)start + 1,
                    (long long)c.steps, train_s, ckpt);
        if (steady_s > 0)
            fprintf(r->out, "throughput of steps %lld..%lld: %.1f images/s (%.3f s)\n",
                    (long long)start + TIMING_WARMUP + 1, (long long)c.steps - 1,
                    (double)((c.steps - 1 - start - TIMING_WARMUP) * c.batch) / steady_s, steady_s);
        fprintf(r->out, "weights %s\n", weights);
        fprintf(r->out, "accuracy of the EMA params %.4f\n", ema);
        fprintf(r->out, "test accuracy %.4f\n", acc);
    }
    dc_trainer_free(t);
    dc_tensor_free(f.x);
    dc_tensor_free(f.y);
    dc_dataset_free(&tr);
    dc_dataset_free(&te);
    return ok;
}

static dc_graph *model_train_graph(const dc_train_config *c, const void *options) {
    (void)options;
    return train_graph(c->batch);
}

const dc_model dc_model_fmnist_cnn = {
    .name = "fmnist-cnn",
    .summary = "CNN (3 conv+group_norm+silu blocks, 2 linears) on Fashion-MNIST (reports test accuracy)",
    .defaults = { .steps = 700, .batch = 128, .warmup = 50, .lr = 2e-3, .min_lr_ratio = 0.0, .b1 = 0.9f,
                  .b2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f, .clip_norm = 1.0f, .ema_decay = 0.995f,
                  .seed = 0, .ckpt_every = 500 },
    .train_graph = model_train_graph,
    .train = train,
};
