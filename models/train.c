/* train.c — the training program of train.h: builds the one training graph (forward + loss +
 * dc_grad + clipping + AdamW + EMA), runs the compiler's pipeline over it
 * (dc_pipeline(backend)), compiles it into an executor, runs that per batch with the host-side schedule (lr, bias corrections, step seed,
 * epoch order), and saves and resumes checkpoints. */
#include "models/train.h"

#include <math.h>
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "frontend/optim.h"
#include "models/data/data.h"
#include "passes/passes.h"

#define META_FORMAT 0x314e494152544344ULL /* "DCTRAIN1" */
/* the checkpoint's meta blob: all 8-byte fields, so no padding (host byte order) */
typedef struct {
    uint64_t format;
    int64_t step, epoch, pos;   /* steps done; the data position of the next step */
    uint64_t config_hash;
} train_meta;

struct dc_trainer {
    dc_train_config c;
    dc_train_data d;
    dc_graph *g;                /* owned */
    dc_exec *e;
    int loss_out, norm_out;     /* output indices */
    int64_t step;               /* steps done */
    int64_t batches_per_epoch;  /* n / batch */
    int64_t *perm;              /* [n] example order of epoch perm_epoch */
    int64_t perm_epoch;         /* -1: none yet */
    dc_tensor *lr, *bc1, *bc2;  /* f32[] host-fed inputs */
    uint64_t config_hash;
};

/* With the jit backend: how many kernels the training program has and where they came from
 * (the kernel cache, LLVM, or an identical kernel already loaded), on stderr. */
static void report_jit(const dc_jit_stats *before, dc_backend backend) {
    if (!dc_backend_uses_jit(backend)) return;
    dc_jit_stats a = dc_jit_get_stats();
    long long cached = a.cache_loads - before->cache_loads, compiled = a.compiled - before->compiled;
    long long shared = a.shared - before->shared;
    fprintf(stderr, "jit: %lld kernels, %lld from cache, %lld compiled, %lld shared (%.0f ms compiling, %.0f ms loading)\n",
            cached + compiled + shared, cached, compiled, shared, a.compile_ms - before->compile_ms,
            a.load_ms - before->load_ms);
}

/* How many of the training program's steps fall back to ref, and which, on stderr. */
static void report_ref(const dc_exec *e) {
    char ops[512];
    int n, n_ref = dc_exec_ref_summary(e, ops, sizeof ops);
    dc_exec_steps(e, &n);
    fprintf(stderr, "program: %d steps, arena %.1f MB, %d on ref%s%s\n", n, (double)dc_exec_arena_bytes(e) / 1e6,
            n_ref, n_ref ? ": " : "", ops);
}

double dc_lr_at(const dc_train_config *c, int64_t step) {
    if (step < c->warmup) return c->lr * (double)(step + 1) / (double)c->warmup;
    int64_t span = c->steps - c->warmup > 1 ? c->steps - c->warmup : 1;
    double cosine = 0.5 * (1.0 + cos(M_PI * (double)(step - c->warmup) / (double)span));
    return c->lr * (c->min_lr_ratio + (1.0 - c->min_lr_ratio) * cosine);
}

uint64_t dc_step_seed(uint64_t seed, int64_t step) { return XXH3_64bits_withSeed(&step, sizeof step, seed); }

/* XXH3-64 of everything that shapes the numbers of a run except the thread count */
static uint64_t config_hash(const dc_train_config *c, int64_t n) {
    struct { int64_t steps, batch, warmup, n; double lr, min_ratio, b1, b2, eps, wd, clip, ema; uint64_t seed; } k;
    memset(&k, 0, sizeof k);
    k.steps = c->steps, k.batch = c->batch, k.warmup = c->warmup, k.n = n;
    k.lr = c->lr, k.min_ratio = c->min_lr_ratio, k.b1 = c->b1, k.b2 = c->b2, k.eps = c->eps;
    k.wd = c->weight_decay, k.clip = c->clip_norm, k.ema = c->ema_decay, k.seed = c->seed;
    return XXH3_64bits(&k, sizeof k);
}

static bool config_ok(const dc_train_config *c, const dc_train_data *d, char *err, size_t len) {
    const char *bad = NULL;
    if (c->steps < 0) bad = "steps must be >= 0";
    else if (c->batch < 1) bad = "batch must be >= 1";
    else if (c->warmup < 0) bad = "warmup must be >= 0";
    else if (!(c->lr > 0) || !isfinite(c->lr)) bad = "lr must be a positive number";
    else if (!(c->min_lr_ratio >= 0 && c->min_lr_ratio <= 1)) bad = "min_lr_ratio must be in [0, 1]";
    else if (c->ckpt_every < 0) bad = "ckpt_every must be >= 0";
    else if (!d->feed) bad = "the data has no feed function";
    if (bad) {
        snprintf(err, len, "train: %s", bad);
        return false;
    }
    if (d->n < c->batch) {
        snprintf(err, len, "train: the data has %lld examples, fewer than one batch of %lld", (long long)d->n,
                 (long long)c->batch);
        return false;
    }
    return true;
}

static int find_output(const dc_graph *g, const char *name) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->output_names[i] && strcmp(g->output_names[i], name) == 0) return i;
    return -1;
}

/* Appends gradients, norm, clipping, AdamW and EMA to g; false and err on failure. */
static bool build_step(dc_graph *g, const dc_train_config *c, int loss, char *err, size_t len) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == DC_OP_PARAM;
    if (n == 0) {
        snprintf(err, len, "train: graph '%s' has no params to train", g->name);
        return false;
    }
    int *ids = malloc(2 * (size_t)n * sizeof *ids);
    dc_t *h = malloc(3 * (size_t)n * sizeof *h);
    if (!ids || !h) abort(); /* out of memory */
    int *grad_ids = ids + n;
    dc_t *params = h, *grads = h + n, *next = h + 2 * n;
    for (int i = 0, k = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_PARAM) ids[k++] = i;
    bool ok = dc_grad(g, loss, ids, n, grad_ids, err, len);
    if (ok) {
        for (int i = 0; i < n; i++) params[i] = (dc_t){ ids[i] }, grads[i] = (dc_t){ grad_ids[i] };
        dc_t norm = dc_global_norm(g, n, grads);
        dc_output(g, norm, "grad_norm");
        dc_clip_by_norm(g, n, grads, norm, c->clip_norm);
        dc_t lr = dc_input(g, "lr", DC_F32, 0, NULL), bc1 = dc_input(g, "bc1", DC_F32, 0, NULL),
             bc2 = dc_input(g, "bc2", DC_F32, 0, NULL);
        dc_adamw(g, n, params, grads, lr, bc1, bc2, next, .b1 = c->b1, .b2 = c->b2, .eps = c->eps,
                 .weight_decay = c->weight_decay);
        if (c->ema_decay > 0) dc_ema(g, n, params, next, c->ema_decay);
        if (dc_graph_failed(g)) {
            snprintf(err, len, "train: %s", dc_graph_error(g));
            ok = false;
        }
    }
    free(ids);
    free(h);
    return ok;
}

bool dc_train_graph(dc_graph *g, const dc_train_config *c, const char *forward_passes, char *err, size_t len) {
    if (dc_graph_failed(g)) {
        snprintf(err, len, "train: %s", dc_graph_error(g));
        return false;
    }
    int loss_out = find_output(g, "loss");
    const dc_type scalar = { DC_F32, { 0 } };
    if (loss_out < 0 || !dc_type_eq(&g->nodes[g->outputs[loss_out]].type, &scalar)) {
        snprintf(err, len, "train: graph '%s' needs an f32[] output named 'loss'", g->name);
        return false;
    }
    const char *fwd = forward_passes ? forward_passes : dc_forward_pipeline(c->backend);
    return (!fwd || dc_run_pipeline(g, fwd, &(dc_pass_opts){ 0 }, err, len)) &&
           build_step(g, c, g->outputs[loss_out], err, len);
}

dc_trainer *dc_trainer_new(dc_graph *g, const dc_train_config *c, const dc_train_data *d, char *err,
                           size_t len) {
    if (!config_ok(c, d, err, len)) {
        dc_graph_free(g);
        return NULL;
    }
    if (c->threads > 0) omp_set_num_threads(c->threads);
    dc_jit_stats j0 = dc_jit_get_stats();
    dc_exec *e = dc_train_graph(g, c, NULL, err, len) ? dc_compile_for(g, c->seed, c->backend, NULL, err, len) : NULL;
    if (!e) {
        dc_graph_free(g);
        return NULL;
    }
    report_jit(&j0, c->backend);
    report_ref(e);
    const dc_type scalar = { DC_F32, { 0 } };
    dc_trainer *t = calloc(1, sizeof *t);
    if (!t) abort(); /* out of memory */
    *t = (dc_trainer){ .c = *c, .d = *d, .g = g, .e = e, .loss_out = find_output(g, "loss"),
                       .norm_out = find_output(g, "grad_norm"), .batches_per_epoch = d->n / c->batch,
                       .perm_epoch = -1, .config_hash = config_hash(c, d->n) };
    t->perm = malloc((size_t)d->n * sizeof *t->perm);
    if (!t->perm) abort(); /* out of memory */
    t->lr = dc_tensor_new(&scalar);
    t->bc1 = dc_tensor_new(&scalar);
    t->bc2 = dc_tensor_new(&scalar);
    /* ema.NAME <- NAME for every trained param */
    if (!dc_exec_copy_params(e, e, &(dc_param_map){ .to = "ema." }, err, len)) {
        dc_trainer_free(t);
        return NULL;
    }
    return t;
}

void dc_trainer_free(dc_trainer *t) {
    if (!t) return;
    dc_exec_free(t->e);
    dc_graph_free(t->g);
    dc_tensor_free(t->lr);
    dc_tensor_free(t->bc1);
    dc_tensor_free(t->bc2);
    free(t->perm);
    free(t);
}

/* Sets lr, bc1, bc2 and the random seed of step s. */
static bool set_schedule(dc_trainer *t, int64_t s, double *lr, char *err, size_t len) {
    double step = (double)(s + 1);
    *lr = dc_lr_at(&t->c, s);
    *(float *)t->lr->data = (float)*lr;
    *(float *)t->bc1->data = (float)(1.0 / (1.0 - pow((double)t->c.b1, step)));
    *(float *)t->bc2->data = (float)(1.0 / (1.0 - pow((double)t->c.b2, step)));
    dc_exec_set_seed(t->e, dc_step_seed(t->c.seed, s));
    return dc_exec_set_input(t->e, "lr", t->lr, err, len) && dc_exec_set_input(t->e, "bc1", t->bc1, err, len) &&
           dc_exec_set_input(t->e, "bc2", t->bc2, err, len);
}

/* Feeds the batch of step s: positions [p*batch, (p+1)*batch) of epoch s / B's order. */
static bool feed_batch(dc_trainer *t, int64_t s, char *err, size_t len) {
    int64_t epoch = s / t->batches_per_epoch, pos = s % t->batches_per_epoch;
    if (t->perm_epoch != epoch) {
        dc_shuffle(t->perm, t->d.n, t->c.seed, (uint64_t)epoch);
        t->perm_epoch = epoch;
    }
    return t->d.feed(t->d.ctx, t->e, t->perm + pos * t->c.batch, t->c.batch, err, len);
}

bool dc_trainer_step(dc_trainer *t, dc_train_stats *st, char *err, size_t len) {
    int64_t s = t->step;
    if (s >= t->c.steps) {
        snprintf(err, len, "train: all %lld steps are done", (long long)t->c.steps);
        return false;
    }
    double lr;
    if (!set_schedule(t, s, &lr, err, len) || !feed_batch(t, s, err, len) || !dc_exec_run(t->e, err, len))
        return false;
    double loss = *(const float *)dc_exec_output(t->e, t->loss_out)->data;
    double norm = *(const float *)dc_exec_output(t->e, t->norm_out)->data;
    if (!isfinite(loss)) {
        snprintf(err, len, "train: diverged: loss %g at step %lld (try a lower --lr)", loss, (long long)s + 1);
        return false;
    }
    t->step = s + 1;
    if (st) *st = (dc_train_stats){ .step = t->step, .loss = loss, .grad_norm = norm, .lr = lr };
    return true;
}

bool dc_trainer_run(dc_trainer *t, int64_t until, float *losses, char *err, size_t len) {
    const dc_train_config *c = &t->c;
    if (until > c->steps) until = c->steps;
    dc_progress *p = c->progress && t->step < until ? dc_progress_new(t->g->name, until, c->progress) : NULL;
    bool ok = true;
    while (ok && t->step < until) {
        dc_train_stats st;
        ok = dc_trainer_step(t, &st, err, len);
        if (!ok) break;
        if (losses) losses[st.step - 1] = (float)st.loss;
        if (p) dc_progress_update(p, st.step, st.loss);
        if (c->on_step) c->on_step(c->on_step_ctx, &st);
        bool due = (c->ckpt_every > 0 && st.step % c->ckpt_every == 0) || st.step == c->steps;
        if (c->ckpt_path && due) ok = dc_trainer_save(t, c->ckpt_path, err, len);
    }
    dc_progress_done(p);
    return ok;
}

double dc_loss_tail_mean(const float *losses, int64_t steps) {
    int64_t from = steps - (steps + 9) / 10;
    double s = 0;
    for (int64_t i = from; i < steps; i++) s += losses[i];
    return steps > from ? s / (double)(steps - from) : NAN;
}

bool dc_trainer_save(dc_trainer *t, const char *path, char *err, size_t len) {
    train_meta m = { .format = META_FORMAT, .step = t->step, .epoch = t->step / t->batches_per_epoch,
                     .pos = t->step % t->batches_per_epoch, .config_hash = t->config_hash };
    return dc_checkpoint_save(path, t->e, &m, sizeof m, err, len);
}

bool dc_trainer_load(dc_trainer *t, const char *path, char *err, size_t len) {
    train_meta m;
    if (!dc_checkpoint_load(path, t->e, &m, sizeof m, err, len)) return false;
    const char *bad = NULL;
    if (m.format != META_FORMAT) bad = "is not a training checkpoint";
    else if (m.config_hash != t->config_hash)
        bad = "was made with another training configuration (steps, batch, lr, schedule, optimizer, seed "
              "or data size differ)";
    else if (m.step < 0 || m.step > t->c.steps || m.epoch != m.step / t->batches_per_epoch ||
             m.pos != m.step % t->batches_per_epoch)
        bad = "has an inconsistent step and data position";
    if (bad) {
        snprintf(err, len, "ckpt: %s: %s", path, bad);
        return false;
    }
    t->step = m.step;
    return true;
}

int64_t dc_trainer_steps_done(const dc_trainer *t) { return t->step; }

const dc_graph *dc_trainer_graph(const dc_trainer *t) { return t->g; }

dc_exec *dc_trainer_exec(dc_trainer *t) { return t->e; }

bool dc_trainer_export(dc_trainer *t, bool use_ema, dc_exec *dst, char *err, size_t len) {
    dc_param_map map = { .from = use_ema && t->c.ema_decay > 0 ? "ema." : "", .need_all = true };
    return dc_exec_copy_params(t->e, dst, &map, err, len);
}

bool dc_train_out_path(const char *dir, const char *file, char *path, size_t n, char *err, size_t len) {
    char d[4096];
    if (!*dir) {
        snprintf(err, len, "train: the output directory name is empty");
        return false;
    }
    if ((size_t)snprintf(d, sizeof d, "%s", dir) >= sizeof d || (size_t)snprintf(path, n, "%s/%s", dir, file) >= n) {
        snprintf(err, len, "train: output path '%s/%s' is too long", dir, file);
        return false;
    }
    for (char *s = d + 1;; s++) {
        bool end = *s == 0;
        if (*s != '/' && !end) continue;
        *s = 0;
        if (mkdir(d, 0777) != 0 && errno != EEXIST) {
            snprintf(err, len, "train: cannot create %s: %s", d, strerror(errno));
            return false;
        }
        if (end) break;
        *s = '/';
    }
    struct stat st;
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, len, "train: cannot create %s: a file of that name is in the way", d);
        return false;
    }
    return true;
}

double dc_classifier_accuracy(dc_exec *e, const dc_dataset *ds, char *err, size_t len) {
    const dc_graph *g = dc_exec_graph(e);
    int x_id = dc_graph_find_input(g, "x");
    if (x_id < 0 || g->n_outputs < 1) {
        snprintf(err, len, "accuracy: graph '%s' needs an input 'x' and a logits output", g->name);
        return -1;
    }
    const dc_type *xt = &g->nodes[x_id].type;
    const dc_shape *ls = &g->nodes[g->outputs[0]].type.shape;
    int64_t batch = xt->shape.dim[0], pixels = dc_numel(&xt->shape) / batch, classes = ls->dim[ls->rank - 1];
    if (pixels != (int64_t)ds->rows * ds->cols) {
        snprintf(err, len, "accuracy: input 'x' holds %lld pixels per image, the data %d", (long long)pixels,
                 ds->rows * ds->cols);
        return -1;
    }
    dc_tensor *x = dc_tensor_new(xt);
    int64_t right = 0, seen = 0;
    bool ok = true;
    for (int64_t b = 0; ok && b + batch <= ds->n; b += batch) {
        memcpy(x->data, ds->images + b * pixels, (size_t)(batch * pixels) * sizeof(float));
        ok = dc_exec_set_input(e, "x", x, err, len) && dc_exec_run(e, err, len);
        const float *logits = ok ? dc_exec_output(e, 0)->data : NULL;
        for (int64_t i = 0; ok && i < batch; i++, seen++) {
            int64_t best = 0;
            for (int64_t k = 1; k < classes; k++)
                if (logits[i * classes + k] > logits[i * classes + best]) best = k;
            right += best == ds->labels[b + i];
        }
    }
    dc_tensor_free(x);
    return ok && seen ? (double)right / (double)seen : -1;
}

bool dc_image_feed(void *ctx, dc_exec *e, const int64_t *idx, int64_t batch, char *err, size_t len) {
    dc_image_feeder *f = ctx;
    int64_t pixels = (int64_t)f->ds->rows * f->ds->cols;
    float *x = f->x->data;
    int32_t *y = f->y->data;
    for (int64_t i = 0; i < batch; i++) {
        memcpy(x + i * pixels, f->ds->images + idx[i] * pixels, (size_t)pixels * sizeof *x);
        y[i] = f->ds->labels[idx[i]];
    }
    return dc_exec_set_input(e, "x", f->x, err, len) && dc_exec_set_input(e, "y", f->y, err, len);
}
