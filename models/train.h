/* train.h — the training program: one graph holding forward, loss, gradients (dc_grad), global
 * norm clipping, AdamW and the parameters' EMA, compiled once into an executor and run per
 * batch with new inputs; the learning-rate schedule; deterministic data order; checkpoints
 * that resume bitwise-identically; the progress display.
 *
 * Determinism: for a given config and thread count the losses and parameters are bitwise the
 * same on every run. Step s (0-based) uses learning rate dc_lr_at(c, s), AdamW time t = s+1,
 * random-op seed dc_step_seed(c->seed, s), and the examples perm_e[p*batch .. (p+1)*batch) of
 * epoch e = s / B, p = s % B, where B = n / batch (a partial last batch is dropped) and perm_e
 * = dc_shuffle(n, seed, e). Everything a step needs is a function of s and the params, so a
 * checkpoint (all params, including opt.m.*, opt.v.*, ema.*, and the step) resumes exactly. */
#ifndef DC_MODELS_TRAIN_H
#define DC_MODELS_TRAIN_H

#include <stdio.h>

#include "codegen/codegen.h"
#include "frontend/dsl.h"
#include "models/data/data.h"
#include "runtime/runtime.h"

struct dc_train_stats;

typedef struct {
    int64_t steps;          /* optimizer steps in the whole run */
    int64_t batch;          /* examples per step */
    int64_t warmup;         /* steps of linear warmup */
    double lr;              /* peak learning rate */
    double min_lr_ratio;    /* the cosine ends at lr * min_lr_ratio */
    float b1, b2, eps;      /* AdamW moments */
    float weight_decay;     /* decoupled, applied to every trainable param */
    float clip_norm;        /* global gradient norm limit; <= 0: no clipping */
    float ema_decay;        /* EMA params ema.NAME; <= 0: no EMA */
    uint64_t seed;          /* param init, data order, random ops */
    int threads;            /* OpenMP threads; 0: leave the default */
    int64_t ckpt_every;     /* save every N steps (0: only at the end of the run) */
    const char *ckpt_path;  /* NULL: no checkpoints */
    FILE *progress;         /* progress display (bar on a terminal, log lines otherwise); NULL: none */
    /* called after every step of dc_trainer_run with its stats, for a caller that reports
     * progress as data (e.g. a worker process); NULL: none */
    void (*on_step)(void *ctx, const struct dc_train_stats *s);
    void *on_step_ctx;
    dc_backend backend;     /* kernel providers of the programs (dc_compile); 0 = auto */
} dc_train_config;

/* Learning rate of step s (0-based) for W = warmup, T = steps, r = min_lr_ratio:
 *   s < W:   lr * (s+1) / W
 *   s >= W:  lr * (r + (1-r) * (1 + cos(pi * (s-W) / max(1, T-W))) / 2)
 * so warmup climbs to lr at step W-1 and the cosine falls from lr at step W towards lr*r. */
double dc_lr_at(const dc_train_config *c, int64_t step);
/* The random-op seed of step s: XXH3-64 of s keyed by seed. */
uint64_t dc_step_seed(uint64_t seed, int64_t step);

/* The data as the trainer sees it: n examples, and feed(), which sets the graph's inputs from
 * the examples idx[0..batch) (in that order). */
typedef struct {
    int64_t n;
    bool (*feed)(void *ctx, dc_exec *e, const int64_t *idx, int64_t batch, char *err, size_t len);
    void *ctx;
} dc_train_data;

typedef struct dc_train_stats {
    int64_t step;           /* steps done after this one (1-based) */
    double loss, grad_norm; /* loss of this step's batch, gradient norm before clipping */
    double lr;
} dc_train_stats;

typedef struct dc_trainer dc_trainer;

/* Rewrites g, a forward graph with its inputs and a scalar f32 output named "loss", into the
 * training step the trainer compiles: the passes forward_passes (NULL: the forward pipeline,
 * dc_forward_pipeline(c->backend): fused attention where the rule says so), then the gradient of the loss w.r.t. every PARAM of g, the global norm
 * (output "grad_norm"), clipping, AdamW (inputs "lr", "bc1", "bc2") and the EMA, with c's
 * hyperparameters. false and err on a graph without such a loss or without params. */
bool dc_train_graph(dc_graph *g, const dc_train_config *c, const char *forward_passes, char *err, size_t len);

/* Takes g (and frees it, also on failure): a forward graph as dc_train_graph wants it, which
 * it makes the training step; runs the compiler's pipeline (dc_pipeline(c->backend)) over the
 * whole graph; compiles it (dc_compile with
 * c->backend) into an executor with params initialised from c->seed and the EMA set to the initial params.
 * c and d are copied (c->ckpt_path, c->progress and d->ctx must outlive the trainer). */
dc_trainer *dc_trainer_new(dc_graph *g, const dc_train_config *c, const dc_train_data *d, char *err,
                           size_t len);
void dc_trainer_free(dc_trainer *t);

/* One optimizer step on the next batch. */
bool dc_trainer_step(dc_trainer *t, dc_train_stats *s, char *err, size_t len);
/* Steps until min(until, c->steps) steps are done, with the progress display, checkpoints every
 * c->ckpt_every steps and when the run's last step is done. losses (may be NULL) gets the loss
 * of step s at losses[s]. */
bool dc_trainer_run(dc_trainer *t, int64_t until, float *losses, char *err,
                    size_t len);
/* The mean of the last tenth of a run's batch losses [steps] (its final loss, less noisy than
 * the last batch's); NaN for 0 steps. */
double dc_loss_tail_mean(const float *losses, int64_t steps);

/* Checkpoint of every param with meta {format, step, data position, config hash}. */
bool dc_trainer_save(dc_trainer *t, const char *path, char *err, size_t len);
/* Loads a checkpoint of this same configuration (batch, schedule, optimizer, seed, data size;
 * not threads) and continues from its step. */
bool dc_trainer_load(dc_trainer *t, const char *path, char *err, size_t len);

int64_t dc_trainer_steps_done(const dc_trainer *t);
const dc_graph *dc_trainer_graph(const dc_trainer *t);
dc_exec *dc_trainer_exec(dc_trainer *t);
/* Copies into every PARAM of executor dst (e.g. a forward-only graph of the same model) the
 * trained param of the same name: ema.NAME when use_ema and the trainer keeps an EMA, else
 * NAME. Types must match. */
bool dc_trainer_export(dc_trainer *t, bool use_ema, dc_exec *dst, char *err, size_t len);

/* DIR/FILE into path (size n), creating DIR and its parents if missing; false and
 * "train: cannot create DIR: REASON" if it cannot. */
bool dc_train_out_path(const char *dir, const char *file, char *path, size_t n, char *err, size_t len);

/* Classification accuracy of executor e over ds: e's input "x" takes batches of images (its
 * type's first dim is the batch; the rest holds one image's pixels in any shape) and its first
 * output is the logits [batch, classes]; a last partial batch is skipped. -1 and err on failure. */
double dc_classifier_accuracy(dc_exec *e, const dc_dataset *ds, char *err, size_t len);

/* A feeder for labelled images: the batch's images (each rows*cols floats, in whatever shape x
 * has) into input "x", their labels into input "y" (i32 [B]). x and y are the caller's staging
 * tensors of the batch's types. Its feed function is dc_image_feed (a dc_train_data feed). */
typedef struct {
    const dc_dataset *ds;
    dc_tensor *x, *y;
} dc_image_feeder;
bool dc_image_feed(void *ctx, dc_exec *e, const int64_t *idx, int64_t batch, char *err, size_t len);

#endif
