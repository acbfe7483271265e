/* images.c — DisCo-Diff on images (images.h): the config, and the training, denoising and
 * encoding graphs around the networks of unet.c and vit.c. Training (one graph): logits =
 * ViT(y) [B,m,k]; Gumbel-softmax straight-through one-hot z [B,m,k]; per example, with
 * probability null_prob every latent becomes the null code (z1 [B,m,k+1]); latent tokens;
 * the EDM-preconditioned U-Net conditioned on them and on the class; the EDM loss. The
 * baseline is the same U-Net without latents. The loss graph is the training graph's loss
 * with its random draws (sigma, noise, Gumbel noise, dropout) as inputs: one function builds
 * both, for a parity check against another implementation (bench/images_twin.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/disco.h"
#include "models/disco/images.h"

dc_img_config dc_img_config_defaults(void) {
    return (dc_img_config){ .m = 8, .k = 16, .latent_groups = 1, .tau = 1.0f, .sigma_data = DC_EDM_SIGMA_DATA,
                            .null_prob = 0.1f, .ch = 16, .emb = 128, .heads = 4, .lat_d = 64, .lat_layers = 2,
                            .vit_d = 64, .vit_layers = 2, .vit_patch = 4 };
}

bool dc_img_config_ok(const dc_img_config *c, char *err, size_t len) {
    char bad[160] = "";
    if (!c->baseline && (c->m < 1 || c->m > DC_IMG_MAX_LATENTS))
        snprintf(bad, sizeof bad, "--latents must be in [1, %d] (got %d)", DC_IMG_MAX_LATENTS, c->m);
    else if (!c->baseline && (c->k < 2 || c->k > DC_IMG_MAX_CODES))
        snprintf(bad, sizeof bad, "--codes must be in [2, %d] (got %d)", DC_IMG_MAX_CODES, c->k);
    else if (!c->baseline && c->latent_groups != 1 && !(c->latent_groups == 2 && c->m % 2 == 0))
        snprintf(bad, sizeof bad, "--groups must be 1, or 2 with an even number of latents (got %d with %d)",
                 c->latent_groups, c->m);
    else if (!(c->tau > 0) || !isfinite(c->tau)) snprintf(bad, sizeof bad, "--tau must be a positive number");
    else if (!(c->sigma_data > 0) || !isfinite(c->sigma_data))
        snprintf(bad, sizeof bad, "--sigma-data must be a positive number");
    else if (!(c->usage_weight >= 0) || !isfinite(c->usage_weight))
        snprintf(bad, sizeof bad, "--usage must be a number >= 0");
    else if (!(c->null_prob >= 0 && c->null_prob < 1))
        snprintf(bad, sizeof bad, "the latent dropout rate must be in [0, 1)");
    else if (c->heads < 1) snprintf(bad, sizeof bad, "heads must be >= 1 (got %d)", c->heads);
    else if (c->ch < DC_IMG_GROUPS || c->ch % DC_IMG_GROUPS != 0 || c->ch % c->heads != 0)
        snprintf(bad, sizeof bad, "--channels must be a multiple of %d and of the heads (got %d)", DC_IMG_GROUPS, c->ch);
    else if (c->emb < 1) snprintf(bad, sizeof bad, "the embedding width must be >= 1 (got %d)", c->emb);
    else if (!c->baseline && (c->lat_d < c->heads || c->lat_d % c->heads != 0 || c->lat_layers < 0 ||
                              c->vit_d < c->heads || c->vit_d % c->heads != 0 || c->vit_layers < 0))
        snprintf(bad, sizeof bad, "the latent and ViT widths must be multiples of the heads, layers >= 0");
    else if (!c->baseline && (c->vit_patch < 1 || DC_IMG_SIDE % c->vit_patch != 0))
        snprintf(bad, sizeof bad, "the ViT patch side must divide %d (got %d)", DC_IMG_SIDE, c->vit_patch);
    if (bad[0]) snprintf(err, len, "fmnist-disco: %s", bad);
    return !bad[0];
}

typedef struct {
    const dc_img_config *c;
    dc_t labels;                /* i32 [B] */
    dc_t lat;                   /* [B,m,lat_d] or DC_NONE */
} net_ctx;

static dc_t unet_net(void *ctx, dc_graph *g, dc_t x_in, dc_t c_noise) {
    const net_ctx *n = ctx;
    return dc_img_unet(g, x_in, c_noise, n->labels, n->lat, n->c);
}

static dc_t denoiser(dc_graph *g, dc_t x, dc_t sigma, dc_t labels, dc_t lat, const dc_img_config *c) {
    net_ctx n = { c, labels, lat };
    return dc_edm_denoiser(g, x, sigma, c->sigma_data, unet_net, &n);
}

#define IMAGE_DIMS(batch) ((int64_t[]){ (batch), DC_IMG_SIDE, DC_IMG_SIDE, 1 })

/* pixels x01 in [0, 1] -> [-1, 1] */
static dc_t model_space(dc_graph *g, dc_t x01) { return dc_add_scalar(g, dc_mul_scalar(g, x01, 2.0f), -1.0f); }

/* A batch's draws: sigma [B,1], noise [B,28,28,1] (standard normal) and, with latents, gumbel
 * [B,m,k] (standard Gumbel) and drop f32 [B,1,1] (1: every latent of the example is the null
 * code). The training graph draws them with random ops, the loss graph takes them as inputs. */
typedef struct {
    dc_t sigma, noise, gumbel, drop;
} batch_draws;

/* The EDM loss of pixels x01 [B,28,28,1] in [0, 1] of the classes labels [B] under draws d */
static dc_t batch_loss(dc_graph *g, const dc_img_config *c, int64_t batch, dc_t x01, dc_t labels,
                       const batch_draws *d) {
    dc_t y = model_space(g, x01);                                                     /* [B,28,28,1] */
    dc_t s = dc_reshape(g, d->sigma, 4, ((int64_t[]){ batch, 1, 1, 1 }));
    dc_t x = dc_add(g, y, dc_mul(g, s, d->noise));                                    /* y + sigma n */
    dc_t lat = DC_NONE, usage = DC_NONE;
    if (!c->baseline) {
        dc_t logits = dc_img_vit(g, y, c);                                            /* [B,m,k] */
        dc_t z = dc_gumbel_st_with(g, logits, d->gumbel, c->tau);                     /* [B,m,k] */
        if (c->usage_weight > 0) {
            usage = dc_code_usage_kl(g, logits);
            dc_output(g, usage, "code_usage_kl");
        }
        dc_t keep = dc_sub(g, dc_scalar(g, 1.0f), d->drop);                           /* [B,1,1] */
        dc_t null = dc_broadcast_to(g, d->drop, 3, ((int64_t[]){ batch, c->m, 1 }));
        dc_t z1 = dc_concat(g, 2, dc_mul(g, z, keep), null);                          /* [B,m,k+1] */
        lat = dc_img_latent_tokens(g, z1, c);                                         /* [B,m,lat_d] */
    }
    dc_t loss = dc_edm_loss(g, denoiser(g, x, d->sigma, labels, lat, c), y, d->sigma, c->sigma_data);
    return usage.id >= 0 ? dc_add(g, loss, dc_mul_scalar(g, usage, c->usage_weight)) : loss;
}

dc_graph *dc_img_train_graph(const dc_img_config *c, int64_t batch) {
    dc_graph *g = dc_graph_new(c->baseline ? "fmnist_edm_train" : "fmnist_disco_train");
    dc_t x01 = dc_input(g, "x", DC_F32, 4, IMAGE_DIMS(batch));
    dc_t labels = dc_input(g, "y", DC_I32, 1, ((int64_t[]){ batch }));
    /* one statement per draw: the random ops' streams follow their order */
    batch_draws d = { DC_NONE, DC_NONE, DC_NONE, DC_NONE };
    d.sigma = dc_edm_sample_sigma(g, batch, DC_EDM_P_MEAN, DC_EDM_P_STD);
    d.noise = dc_normal(g, 4, IMAGE_DIMS(batch));
    if (!c->baseline) {
        d.gumbel = dc_gumbel(g, 3, ((int64_t[]){ batch, c->m, c->k }));
        dc_t u = dc_uniform(g, 3, ((int64_t[]){ batch, 1, 1 }));
        d.drop = dc_cast(g, dc_lt(g, u, dc_scalar(g, c->null_prob)), DC_F32);
        dc_output(g, dc_mean(g, d.drop), "drop_rate");
    }
    dc_output(g, batch_loss(g, c, batch, x01, labels, &d), "loss");
    return g;
}

dc_graph *dc_img_loss_graph(const dc_img_config *c, int64_t batch) {
    dc_graph *g = dc_graph_new(c->baseline ? "fmnist_edm_loss" : "fmnist_disco_loss");
    dc_t x01 = dc_input(g, "x", DC_F32, 4, IMAGE_DIMS(batch));
    dc_t labels = dc_input(g, "y", DC_I32, 1, ((int64_t[]){ batch }));
    batch_draws d = { DC_NONE, DC_NONE, DC_NONE, DC_NONE };
    d.sigma = dc_input(g, "sigma", DC_F32, 2, ((int64_t[]){ batch, 1 }));
    d.noise = dc_input(g, "noise", DC_F32, 4, IMAGE_DIMS(batch));
    if (!c->baseline) {
        d.gumbel = dc_input(g, "gumbel", DC_F32, 3, ((int64_t[]){ batch, c->m, c->k }));
        d.drop = dc_input(g, "drop", DC_F32, 3, ((int64_t[]){ batch, 1, 1 }));
    }
    dc_output(g, batch_loss(g, c, batch, x01, labels, &d), "loss");
    return g;
}

dc_graph *dc_img_denoise_graph(const dc_img_config *c, int64_t batch) {
    dc_graph *g = dc_graph_new(c->baseline ? "fmnist_edm_denoise" : "fmnist_disco_denoise");
    dc_t x = dc_input(g, "x", DC_F32, 4, IMAGE_DIMS(batch));
    dc_t sigma = dc_input(g, "sigma", DC_F32, 2, ((int64_t[]){ batch, 1 }));
    dc_t labels = dc_input(g, "label", DC_I32, 1, ((int64_t[]){ batch }));
    dc_t lat = DC_NONE;
    if (!c->baseline) {
        dc_t codes = dc_input(g, "codes", DC_I32, 2, ((int64_t[]){ batch, c->m }));
        lat = dc_img_latent_tokens(g, dc_one_hot(g, codes, c->k + 1), c);              /* [B,m,lat_d] */
    }
    dc_output(g, denoiser(g, x, sigma, labels, lat, c), "denoised");
    return g;
}

dc_graph *dc_img_encode_graph(const dc_img_config *c, int64_t batch) {
    dc_graph *g = dc_graph_new("fmnist_disco_encode");
    dc_t x01 = dc_input(g, "x", DC_F32, 4, IMAGE_DIMS(batch));
    dc_output(g, dc_argmax(g, dc_img_vit(g, model_space(g, x01), c), -1), "codes");
    return g;
}

/* ---- training -------------------------------------------------------------------------- */

#define MODEL_FORMAT 0x314c444f4d474d49ULL   /* "IMGMODL1" */
#define ENCODE_BATCH 500                      /* divides the 60000 training images */

dc_img_setup dc_img_setup_defaults(void) {
    dc_img_setup s = { .model = dc_img_config_defaults() };
    s.prior = dc_prior_config_defaults(s.model.m, s.model.k);
    s.prior.classes = DC_IMG_CLASSES;
    s.train = (dc_train_config){ .steps = 2500, .batch = 128, .warmup = 200, .lr = 1e-3, .min_lr_ratio = 0.1,
                                 .b1 = 0.9f, .b2 = 0.999f, .eps = 1e-8f, .clip_norm = 1.0f, .ema_decay = 0.999f,
                                 .seed = 0, .ckpt_every = 500 };
    s.prior_train = (dc_train_config){ .steps = 2000, .batch = 256, .warmup = 100, .lr = 1e-3, .min_lr_ratio = 0.1,
                                       .b1 = 0.9f, .b2 = 0.999f, .eps = 1e-8f, .clip_norm = 1.0f, .seed = 0 };
    return s;
}

void dc_img_setup_quick(dc_img_setup *s) {
    dc_img_config *c = &s->model;
    c->m = c->m < 4 ? c->m : 4, c->k = c->k < 8 ? c->k : 8;
    c->ch = 8, c->emb = 16, c->heads = 2, c->lat_d = 16, c->lat_layers = 1, c->vit_d = 16, c->vit_layers = 1;
    c->vit_patch = 7;
    s->prior.m = c->m, s->prior.k = c->k, s->prior.d_model = 16, s->prior.heads = 2, s->prior.layers = 1;
    s->train.steps = 20, s->train.batch = 16, s->train.warmup = 2, s->train.ckpt_every = 10;
    s->prior_train.steps = 20, s->prior_train.batch = 64, s->prior_train.warmup = 2;
}

/* Every param of the model in one graph (what the model file holds): the denoiser, and with
 * latents the encoder and the prior. Batch 1; only its params are used. */
static dc_graph *bundle_graph(const dc_img_setup *s) {
    dc_graph *g = dc_img_denoise_graph(&s->model, 1);
    if (!s->model.baseline) {
        dc_t y = dc_input(g, "y", DC_F32, 4, IMAGE_DIMS(1));
        dc_output(g, dc_img_vit(g, y, &s->model), "logits");
        dc_t tokens = dc_input(g, "tokens", DC_I32, 2, ((int64_t[]){ 1, s->prior.m }));
        dc_output(g, dc_prior_logits(g, tokens, &s->prior), "prior_logits");
    }
    return g;
}

/* the trainable values of a graph's params */
static int64_t param_count(const dc_graph *g) {
    int64_t n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_PARAM && strncmp(g->nodes[i].name, "opt.", 4) != 0 &&
            strncmp(g->nodes[i].name, "ema.", 4) != 0)
            n += dc_numel(&g->nodes[i].type.shape);
    return n;
}

/* Stage 1: the U-Net (and encoder) from the training images; EMA params into bundle. */
static bool train_denoiser(const dc_img_setup *s, const dc_dataset *ds, const char *ckpt, const char *resume,
                           dc_exec *bundle, dc_img_report *r, char *err, size_t len) {
    dc_train_config tc = s->train;
    tc.ckpt_path = ckpt;
    dc_image_feeder f = { ds, dc_tensor_new(&(dc_type){ DC_F32, { 4, { tc.batch, DC_IMG_SIDE, DC_IMG_SIDE, 1 } } }),
                          dc_tensor_new(&(dc_type){ DC_I32, { 1, { tc.batch } } }) };
    dc_train_data d = { ds->n, dc_image_feed, &f };
    double t0 = dc_seconds();
    dc_trainer *t = dc_trainer_new(dc_img_train_graph(&s->model, tc.batch), &tc, &d, err, len);
    bool ok = t && (!resume || dc_trainer_load(t, resume, err, len));
    int64_t start = ok ? dc_trainer_steps_done(t) : 0;
    float *losses = calloc((size_t)(tc.steps > 0 ? tc.steps : 1), sizeof *losses);
    if (!losses) abort(); /* out of memory */
    /* the bundle's prior params are not the trainer's: need_all off */
    dc_param_map ema = { .from = tc.ema_decay > 0 ? "ema." : "" };
    ok = ok && dc_trainer_run(t, tc.steps, losses, err, len) &&
         dc_exec_copy_params(dc_trainer_exec(t), bundle, &ema, err, len);
    r->train_s = dc_seconds() - t0;
    r->loss = ok ? dc_loss_tail_mean(losses, tc.steps) : NAN;
    r->images_per_s = ok && r->train_s > 0 ? (double)((tc.steps - start) * tc.batch) / r->train_s : NAN;
    if (t) r->params = param_count(dc_trainer_graph(t));
    free(losses);
    dc_trainer_free(t);
    dc_tensor_free(f.x);
    dc_tensor_free(f.y);
    return ok;
}

/* Stage 2: the codes the trained encoder gives the training images, then the prior on them
 * with the images' classes; the prior's params into bundle. */
static bool train_prior(const dc_img_setup *s, const dc_dataset *ds, dc_exec *bundle, dc_img_report *r,
                        char *err, size_t len) {
    double t0 = dc_seconds();
    int64_t n = ds->n / ENCODE_BATCH * ENCODE_BATCH, m = s->model.m;
    if (n < 1) {
        snprintf(err, len, "fmnist-disco: the prior needs at least %d training images", ENCODE_BATCH);
        return false;
    }
    int32_t *codes = malloc((size_t)(n * m) * sizeof *codes);
    if (!codes) abort(); /* out of memory */
    dc_graph *g = dc_img_encode_graph(&s->model, ENCODE_BATCH);
    dc_exec *e = dc_compile_for(g, 0, s->train.backend, NULL, err, len);
    dc_tensor *x = dc_tensor_new(&(dc_type){ DC_F32, { 4, { ENCODE_BATCH, DC_IMG_SIDE, DC_IMG_SIDE, 1 } } });
    bool ok = e && dc_exec_copy_params(bundle, e, &(dc_param_map){ .need_all = true }, err, len);
    for (int64_t b = 0; ok && b < n; b += ENCODE_BATCH) {
        memcpy(x->data, ds->images + b * DC_IMG_PIXELS, (size_t)ENCODE_BATCH * DC_IMG_PIXELS * sizeof(float));
        ok = dc_exec_set_input(e, "x", x, err, len) && dc_exec_run(e, err, len);
        if (ok) memcpy(codes + b * m, dc_exec_output(e, 0)->data, (size_t)(ENCODE_BATCH * m) * sizeof *codes);
    }
    dc_tensor_free(x);
    dc_exec_free(e);
    dc_graph_free(g);
    ok = ok && dc_prior_train(&s->prior, &s->prior_train, codes, ds->labels, n, bundle, &r->prior_loss, err, len);
    r->prior_s = dc_seconds() - t0;
    free(codes);
    return ok;
}

/* the model file's meta: 8-byte fields only (no padding) */
typedef struct {
    uint64_t format;
    int64_t baseline, m, k, latent_groups, ch, emb, heads, lat_d, lat_layers, vit_d, vit_layers, vit_patch;
    double tau, sigma_data, null_prob, usage_weight;
    int64_t prior_d, prior_heads, prior_layers;
    int64_t steps, batch, prior_steps;
    uint64_t seed;
    /* what the training reported */
    double loss, prior_loss, train_s, prior_s, images_per_s;
    int64_t params, prior_params;
} model_meta;

static model_meta meta_of(const dc_img_setup *s) {
    const dc_img_config *c = &s->model;
    return (model_meta){ .format = MODEL_FORMAT, .baseline = c->baseline, .m = c->m, .k = c->k,
                         .latent_groups = c->latent_groups, .ch = c->ch, .emb = c->emb, .heads = c->heads,
                         .lat_d = c->lat_d, .lat_layers = c->lat_layers, .vit_d = c->vit_d,
                         .vit_layers = c->vit_layers, .vit_patch = c->vit_patch, .tau = c->tau,
                         .sigma_data = c->sigma_data, .null_prob = c->null_prob,
                         .usage_weight = c->usage_weight, .prior_d = s->prior.d_model,
                         .prior_heads = s->prior.heads, .prior_layers = s->prior.layers,
                         .steps = s->train.steps, .batch = s->train.batch, .prior_steps = s->prior_train.steps,
                         .seed = s->train.seed };
}

bool dc_img_train(const dc_img_setup *s, const dc_dataset *ds, const char *ckpt, const char *resume,
                  const char *path, dc_img_report *r, char *err, size_t len) {
    *r = (dc_img_report){ .loss = NAN, .prior_loss = NAN, .images_per_s = NAN };
    dc_img_setup su = *s;
    if (su.model.baseline) su.model.m = 0, su.model.k = 0;
    su.prior.m = su.model.m, su.prior.k = su.model.k, su.prior.classes = DC_IMG_CLASSES;
    if (!dc_img_config_ok(&su.model, err, len) || (!su.model.baseline && !dc_prior_config_ok(&su.prior, err, len)))
        return false;
    if (ds->rows != DC_IMG_SIDE || ds->cols != DC_IMG_SIDE) {
        snprintf(err, len, "fmnist-disco: the images are %dx%d, the model takes %dx%d", ds->rows, ds->cols,
                 DC_IMG_SIDE, DC_IMG_SIDE);
        return false;
    }
    dc_graph *bg = bundle_graph(&su);
    dc_exec *bundle = dc_graph_failed(bg) ? NULL : dc_exec_new(bg, su.train.seed, err, len);
    if (dc_graph_failed(bg)) snprintf(err, len, "fmnist-disco: %s", dc_graph_error(bg));
    model_meta meta = meta_of(&su);
    bool ok = bundle && train_denoiser(&su, ds, ckpt, resume, bundle, r, err, len) &&
              (su.model.baseline || train_prior(&su, ds, bundle, r, err, len));
    if (ok) {
        if (!su.model.baseline) r->prior_params = param_count(bg) - r->params;
        meta.loss = r->loss, meta.prior_loss = r->prior_loss, meta.train_s = r->train_s, meta.prior_s = r->prior_s;
        meta.images_per_s = r->images_per_s, meta.params = r->params, meta.prior_params = r->prior_params;
        ok = dc_checkpoint_save(path, bundle, &meta, sizeof meta, err, len);
    }
    dc_exec_free(bundle);
    dc_graph_free(bg);
    return ok;
}

/* ---- the model file ---------------------------------------------------------------------- */

struct dc_img_model {
    dc_img_setup setup;
    dc_img_report report;
    dc_graph *g;
    dc_exec *e;
};

/* The setup of a model file's meta, checked as a fresh one would be. */
static bool setup_of(const model_meta *m, dc_img_setup *s, char *err, size_t len) {
    *s = dc_img_setup_defaults();
    s->model = (dc_img_config){ .baseline = m->baseline != 0, .m = (int)m->m, .k = (int)m->k,
                                .latent_groups = (int)m->latent_groups, .ch = (int)m->ch, .emb = (int)m->emb,
                                .heads = (int)m->heads, .lat_d = (int)m->lat_d, .lat_layers = (int)m->lat_layers,
                                .vit_d = (int)m->vit_d, .vit_layers = (int)m->vit_layers,
                                .vit_patch = (int)m->vit_patch, .tau = (float)m->tau,
                                .sigma_data = (float)m->sigma_data, .null_prob = (float)m->null_prob,
                                .usage_weight = (float)m->usage_weight };
    s->prior = (dc_prior_config){ .m = (int)m->m, .k = (int)m->k, .d_model = (int)m->prior_d,
                                  .heads = (int)m->prior_heads, .layers = (int)m->prior_layers,
                                  .classes = DC_IMG_CLASSES };
    s->train.steps = m->steps, s->train.batch = m->batch, s->prior_train.steps = m->prior_steps;
    s->train.seed = m->seed;
    const int64_t widths[] = { m->ch, m->emb, m->heads, m->lat_d, m->vit_d, m->prior_d, m->prior_heads };
    bool sane = m->m >= 0 && m->m <= DC_IMG_MAX_LATENTS && m->k >= 0 && m->k <= DC_IMG_MAX_CODES &&
                m->lat_layers >= 0 && m->lat_layers <= 64 && m->vit_layers >= 0 && m->vit_layers <= 64 &&
                m->prior_layers >= 0 && m->prior_layers <= 64;
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) sane = sane && widths[i] > 0 && widths[i] <= 65536;
    if (!sane || !dc_img_config_ok(&s->model, err, len) ||
        (!s->model.baseline && !dc_prior_config_ok(&s->prior, err, len))) {
        snprintf(err, len, "fmnist-disco: the model file's settings are invalid");
        return false;
    }
    return true;
}

dc_img_model *dc_img_load(const char *path, char *err, size_t len) {
    model_meta peek, meta;
    char why[DC_ERR_LEN];
    bool read = dc_checkpoint_read_meta(path, &peek, sizeof peek, why, sizeof why);
    if (!read || peek.format != MODEL_FORMAT) {
        snprintf(err, len, "fmnist-disco: %s is not a model file of `disco train fmnist-disco` (%s)", path,
                 read ? "a checkpoint of something else" : why);
        return NULL;
    }
    dc_img_setup s;
    if (!setup_of(&peek, &s, err, len)) return NULL;
    dc_img_model *m = calloc(1, sizeof *m);
    if (!m) abort(); /* out of memory */
    m->setup = s;
    m->report = (dc_img_report){ .loss = peek.loss, .prior_loss = peek.prior_loss, .train_s = peek.train_s,
                                 .prior_s = peek.prior_s, .images_per_s = peek.images_per_s, .params = peek.params,
                                 .prior_params = peek.prior_params };
    m->g = bundle_graph(&s);
    m->e = dc_graph_failed(m->g) ? NULL : dc_exec_new(m->g, 0, err, len);
    bool ok = m->e && dc_checkpoint_load(path, m->e, &meta, sizeof meta, err, len);
    if (ok && memcmp(&meta, &peek, sizeof meta) != 0) {
        snprintf(err, len, "fmnist-disco: %s: inconsistent settings", path);
        ok = false;
    }
    if (!ok) {
        dc_img_model_free(m);
        return NULL;
    }
    return m;
}

void dc_img_model_free(dc_img_model *m) {
    if (!m) return;
    dc_exec_free(m->e);
    dc_graph_free(m->g);
    free(m);
}

const dc_img_setup *dc_img_model_setup(const dc_img_model *m) { return &m->setup; }

const dc_img_report *dc_img_model_report(const dc_img_model *m) { return &m->report; }

const dc_exec *dc_img_model_params(const dc_img_model *m) { return m->e; }

bool dc_img_model_export(const dc_img_model *m, dc_exec *dst, char *err, size_t len) {
    return dc_exec_copy_params(m->e, dst, &(dc_param_map){ .need_all = true }, err, len);
}
