/* toy_model.c — the DisCo-Diff toy model of disco.h: the encoder MLP, Gumbel-softmax
 * straight-through latents with null-embedding dropout, the EDM-preconditioned denoiser MLP
 * (and the baseline without latents), their training and sampling graphs, the two training
 * stages (encoder + denoiser jointly, then the prior on the frozen encoder's codes), and the
 * model file (every param of all three networks, the setup as meta). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/disco.h"

#define MODEL_FORMAT 0x314c444f4d594f54ULL   /* "TOYMODL1" */

dc_toy_config dc_toy_config_defaults(void) {
    return (dc_toy_config){ .m = 1, .k = 8, .tau = 1.0f, .sigma_data = DC_EDM_SIGMA_DATA, .null_prob = 0.1f,
                            .width = 256, .enc_width = 128, .usage_weight = 0.0f };
}

bool dc_toy_config_ok(const dc_toy_config *c, char *err, size_t len) {
    const char *bad = NULL;
    if (!c->baseline && (c->m < 1 || c->m > DC_TOY_MAX_LATENTS)) bad = "--latents must be in [1, 64]";
    else if (!c->baseline && (c->k < 2 || c->k > DC_TOY_MAX_CODES)) bad = "--codes must be in [2, 1024]";
    else if (!(c->tau > 0) || !isfinite(c->tau)) bad = "--tau must be a positive number";
    else if (!(c->sigma_data > 0) || !isfinite(c->sigma_data)) bad = "--sigma-data must be a positive number";
    else if (!(c->null_prob >= 0 && c->null_prob < 1)) bad = "the null-embedding rate must be in [0, 1)";
    else if (c->width < 1 || c->enc_width < 1) bad = "the widths must be positive";
    else if (!(c->usage_weight >= 0) || !isfinite(c->usage_weight)) bad = "--usage must be a number >= 0";
    if (bad) snprintf(err, len, "toy: %s", bad);
    return !bad;
}

/* ---- graph pieces ------------------------------------------------------------------------- */

dc_t dc_toy_encoder(dc_graph *g, dc_t y, const dc_toy_config *c) {
    const dc_type *t = dc_type_of(g, y);
    int64_t batch = t ? t->shape.dim[0] : 1;
    dc_t h = DC_NONE;
    DC_SCOPE(g, "enc") {
        h = dc_silu(g, dc_linear(g, y, c->enc_width, .name = "l0"));                 /* [B,E] */
        h = dc_silu(g, dc_linear(g, h, c->enc_width, .name = "l1"));                 /* [B,E] */
        h = dc_linear(g, h, (int64_t)c->m * c->k, .name = "l2");                      /* [B,m*k] */
        h = dc_reshape(g, h, 3, ((int64_t[]){ batch, c->m, c->k }));                  /* [B,m,k] */
    }
    return h;
}

dc_t dc_code_usage_kl(dc_graph *g, dc_t logits) {
    const dc_type *t = dc_type_of(g, logits);
    if (!t || t->shape.rank != 3) {
        dc_fail_at(g, __FILE__, __LINE__, "code usage", "logits must be f32[B,m,k]");
        return DC_NONE;
    }
    int64_t m = t->shape.dim[1], k = t->shape.dim[2];
    /* sum over latents of KL(p_bar || uniform) = m log k + sum p_bar log p_bar */
    dc_t p_bar = dc_mean(g, dc_softmax(g, logits, -1), .axes = { 1, { 0 } });          /* [m,k] */
    dc_t neg_h = dc_sum(g, dc_mul(g, p_bar, dc_log(g, dc_add_scalar(g, p_bar, 1e-8f))));
    return dc_add_scalar(g, neg_h, (float)m * logf((float)k));
}

dc_t dc_toy_gumbel_st(dc_graph *g, dc_t logits, float tau) {
    const dc_type *t = dc_type_of(g, logits);
    if (!t) return dc_add(g, logits, logits);   /* records the invalid handle */
    return dc_gumbel_st_with(g, logits, dc_gumbel(g, t->shape.rank, t->shape.dim), tau);
}

dc_t dc_gumbel_st_with(dc_graph *g, dc_t logits, dc_t gumbel, float tau) {
    const dc_type *t = dc_type_of(g, logits);
    if (!t) return dc_add(g, logits, gumbel);   /* records the invalid handle */
    dc_shape s = t->shape;
    dc_t noisy = dc_add(g, logits, gumbel);
    dc_t soft = dc_softmax(g, dc_mul_scalar(g, noisy, 1.0f / tau), -1);              /* [B,m,k] */
    dc_t hard = dc_one_hot(g, dc_argmax(g, soft, -1), s.dim[s.rank - 1]);            /* [B,m,k] */
    return dc_straight_through(g, hard, soft);
}

dc_t dc_toy_latent_embedding(dc_graph *g, dc_t z, const dc_toy_config *c) {
    const dc_type *t = dc_type_of(g, z);
    int64_t batch = t ? t->shape.dim[0] : 1;
    dc_t flat = dc_reshape(g, z, 2, ((int64_t[]){ batch, (int64_t)c->m * c->k }));   /* [B,m*k] */
    dc_t emb = DC_NONE;
    DC_SCOPE(g, "lat") emb = dc_linear(g, flat, c->width, .name = "proj", .bias = false);  /* [B,W] */
    return emb;
}

dc_t dc_toy_null_select(dc_graph *g, dc_t emb, dc_t drop, const dc_toy_config *c) {
    dc_t null = DC_NONE;
    DC_SCOPE(g, "lat") null = dc_param(g, "null", 2, ((int64_t[]){ 1, c->width }), .init = DC_INIT_NORMAL, .a = 1.0f);
    return dc_where(g, drop, null, emb);                                              /* [B,W] */
}

typedef struct {
    const dc_toy_config *c;
    dc_t emb;                   /* [B,W] or DC_NONE */
} net_ctx;

/* F(c_in x, c_noise): 4 linear layers of width W with SiLU; the latents' embedding is added to
 * the first layer's output */
static dc_t toy_net(void *ctx, dc_graph *g, dc_t x_in, dc_t c_noise) {
    const net_ctx *n = ctx;
    int64_t w = n->c->width;
    dc_t h = DC_NONE;
    DC_SCOPE(g, "den") {
        dc_t in = dc_concat(g, 1, x_in, dc_edm_noise_features(g, c_noise, DC_TOY_NOISE_FREQS));                  /* [B,2+2F] */
        h = dc_linear(g, in, w, .name = "l0");                                        /* [B,W] */
        if (n->emb.id >= 0) h = dc_add(g, h, n->emb);
        h = dc_silu(g, h);
        h = dc_silu(g, dc_linear(g, h, w, .name = "l1"));
        h = dc_silu(g, dc_linear(g, h, w, .name = "l2"));
        h = dc_linear(g, h, 2, .name = "l3");                                         /* [B,2] */
    }
    return h;
}

dc_t dc_toy_denoiser(dc_graph *g, dc_t x, dc_t sigma, dc_t emb, const dc_toy_config *c) {
    net_ctx n = { c, emb };
    return dc_edm_denoiser(g, x, sigma, c->sigma_data, toy_net, &n);
}

dc_graph *dc_toy_train_graph(const dc_toy_config *c, int64_t batch) {
    dc_graph *g = dc_graph_new(c->baseline ? "toy_edm_train" : "toy_disco_train");
    dc_t y = dc_input(g, "y", DC_F32, 2, ((int64_t[]){ batch, 2 }));
    dc_t sigma = dc_edm_sample_sigma(g, batch, DC_EDM_P_MEAN, DC_EDM_P_STD);          /* [B,1] */
    dc_t x = dc_edm_add_noise(g, y, sigma);                                           /* [B,2] */
    dc_t emb = DC_NONE, usage = DC_NONE;
    if (!c->baseline) {
        dc_t logits = dc_toy_encoder(g, y, c);                                        /* [B,m,k] */
        dc_t z = dc_toy_gumbel_st(g, logits, c->tau);                                 /* [B,m,k] */
        if (c->usage_weight > 0) {
            usage = dc_code_usage_kl(g, logits);
            dc_output(g, usage, "code_usage_kl");
        }
        dc_t u = dc_uniform(g, 2, ((int64_t[]){ batch, 1 }));                         /* [B,1] */
        dc_t drop = dc_lt(g, u, dc_scalar(g, c->null_prob));                          /* i32 [B,1] */
        emb = dc_toy_null_select(g, dc_toy_latent_embedding(g, z, c), drop, c);
        dc_output(g, dc_mean(g, dc_cast(g, drop, DC_F32)), "drop_rate");
    }
    dc_t d = dc_toy_denoiser(g, x, sigma, emb, c);
    dc_t loss = dc_edm_loss(g, d, y, sigma, c->sigma_data);
    if (usage.id >= 0) loss = dc_add(g, loss, dc_mul_scalar(g, usage, c->usage_weight));
    dc_output(g, loss, "loss");
    return g;
}

dc_graph *dc_toy_denoise_graph(const dc_toy_config *c, int64_t batch) {
    dc_graph *g = dc_graph_new(c->baseline ? "toy_edm_denoise" : "toy_disco_denoise");
    dc_t x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ batch, 2 }));
    dc_t sigma = dc_input(g, "sigma", DC_F32, 2, ((int64_t[]){ batch, 1 }));
    dc_t emb = DC_NONE;
    if (!c->baseline) {
        dc_t codes = dc_input(g, "codes", DC_I32, 2, ((int64_t[]){ batch, c->m }));
        dc_t drop = dc_input(g, "drop", DC_I32, 2, ((int64_t[]){ batch, 1 }));
        emb = dc_toy_null_select(g, dc_toy_latent_embedding(g, dc_one_hot(g, codes, c->k), c), drop, c);
    }
    dc_output(g, dc_toy_denoiser(g, x, sigma, emb, c), "denoised");
    return g;
}

dc_graph *dc_toy_encode_graph(const dc_toy_config *c, int64_t batch) {
    dc_graph *g = dc_graph_new("toy_encode");
    dc_t y = dc_input(g, "y", DC_F32, 2, ((int64_t[]){ batch, 2 }));
    dc_output(g, dc_argmax(g, dc_toy_encoder(g, y, c), -1), "codes");
    return g;
}

/* Every param of the model in one graph (what the model file holds): the denoiser, and with
 * latents the encoder and the prior. Batch 1; only its params are used. */
static dc_graph *bundle_graph(const dc_toy_setup *s) {
    dc_graph *g = dc_toy_denoise_graph(&s->model, 1);
    if (!s->model.baseline) {
        dc_t y = dc_input(g, "y", DC_F32, 2, ((int64_t[]){ 1, 2 }));
        dc_output(g, dc_toy_encoder(g, y, &s->model), "logits");
        dc_t tokens = dc_input(g, "tokens", DC_I32, 2, ((int64_t[]){ 1, s->prior.m }));
        dc_output(g, dc_prior_logits(g, tokens, &s->prior), "prior_logits");
    }
    return g;
}

/* ---- training ----------------------------------------------------------------------------- */

dc_toy_setup dc_toy_setup_defaults(void) {
    dc_toy_setup s = { .model = dc_toy_config_defaults() };
    s.prior = dc_prior_config_defaults(s.model.m, s.model.k);
    s.train = (dc_train_config){ .steps = 4000, .batch = 512, .warmup = 100, .lr = 1e-3, .min_lr_ratio = 0.1,
                                 .b1 = 0.9f, .b2 = 0.999f, .eps = 1e-8f, .clip_norm = 1.0f, .seed = 0 };
    s.prior_train = (dc_train_config){ .steps = 600, .batch = 256, .warmup = 50, .lr = 1e-3, .min_lr_ratio = 0.1,
                                       .b1 = 0.9f, .b2 = 0.999f, .eps = 1e-8f, .clip_norm = 1.0f, .seed = 0 };
    return s;
}

typedef struct {
    const float *xy;            /* [n,2] */
    dc_tensor *y;               /* [B,2] staging */
} toy_feeder;

static bool toy_feed(void *ctx, dc_exec *e, const int64_t *idx, int64_t batch, char *err, size_t len) {
    toy_feeder *f = ctx;
    float *y = f->y->data;
    for (int64_t i = 0; i < batch; i++) memcpy(y + 2 * i, f->xy + 2 * idx[i], 2 * sizeof *y);
    return dc_exec_set_input(e, "y", f->y, err, len);
}

/* Stage 1: encoder + denoiser jointly; their params go into bundle. */
static bool train_denoiser(const dc_toy_setup *s, const float *xy, dc_exec *bundle, dc_toy_report *r, char *err,
                           size_t len) {
    toy_feeder f = { xy, dc_tensor_new(&(dc_type){ DC_F32, { 2, { s->train.batch, 2 } } }) };
    dc_train_data d = { DC_TOY_TRAIN_N, toy_feed, &f };
    double t0 = dc_seconds();
    dc_trainer *t = dc_trainer_new(dc_toy_train_graph(&s->model, s->train.batch), &s->train, &d, err, len);
    float *losses = malloc((size_t)(s->train.steps > 0 ? s->train.steps : 1) * sizeof *losses);
    if (!losses) abort(); /* out of memory */
    bool ok = t && dc_trainer_run(t, s->train.steps, losses, err, len) &&
              dc_exec_copy_params(dc_trainer_exec(t), bundle, &(dc_param_map){ 0 }, err, len);
    r->loss = ok ? dc_loss_tail_mean(losses, s->train.steps) : NAN;
    r->train_s = dc_seconds() - t0;
    free(losses);
    dc_trainer_free(t);
    dc_tensor_free(f.y);
    return ok;
}

/* Stage 2: the codes of the training points by the frozen encoder, then the prior on them. */
static bool train_prior(const dc_toy_setup *s, const float *xy, dc_exec *bundle, dc_toy_report *r, char *err,
                        size_t len) {
    double t0 = dc_seconds();
    dc_graph *g = dc_toy_encode_graph(&s->model, DC_TOY_TRAIN_N);
    dc_exec *e = dc_compile_for(g, 0, s->train.backend, NULL, err, len);
    dc_tensor *y = dc_tensor_new(&(dc_type){ DC_F32, { 2, { DC_TOY_TRAIN_N, 2 } } });
    memcpy(y->data, xy, (size_t)DC_TOY_TRAIN_N * 2 * sizeof(float));
    bool ok = e && dc_exec_copy_params(bundle, e, &(dc_param_map){ .need_all = true }, err, len) &&
              dc_exec_set_input(e, "y", y, err, len) && dc_exec_run(e, err, len) &&
              dc_prior_train(&s->prior, &s->prior_train, dc_exec_output(e, 0)->data, NULL, DC_TOY_TRAIN_N, bundle,
                             &r->prior_loss, err, len);
    r->prior_s = dc_seconds() - t0;
    dc_tensor_free(y);
    dc_exec_free(e);
    dc_graph_free(g);
    return ok;
}

/* the model file's meta: 8-byte fields only (no padding) */
typedef struct {
    uint64_t format;
    int64_t baseline, m, k, width, enc_width;
    double tau, sigma_data, null_prob, usage_weight;
    int64_t prior_d, prior_heads, prior_layers;
    int64_t steps, batch, prior_steps;
    uint64_t seed, data_seed;
} model_meta;

static model_meta meta_of(const dc_toy_setup *s) {
    const dc_toy_config *c = &s->model;
    return (model_meta){ .format = MODEL_FORMAT, .baseline = c->baseline, .m = c->m, .k = c->k,
                         .width = c->width, .enc_width = c->enc_width, .tau = c->tau,
                         .sigma_data = c->sigma_data, .null_prob = c->null_prob,
                         .usage_weight = c->usage_weight, .prior_d = s->prior.d_model,
                         .prior_heads = s->prior.heads, .prior_layers = s->prior.layers,
                         .steps = s->train.steps, .batch = s->train.batch, .prior_steps = s->prior_train.steps,
                         .seed = s->train.seed, .data_seed = s->data_seed };
}

bool dc_toy_train(const dc_toy_setup *s, const char *path, dc_toy_report *r, char *err, size_t len) {
    *r = (dc_toy_report){ .loss = NAN, .prior_loss = NAN };
    dc_toy_setup su = *s;
    if (su.model.baseline) su.model.m = 0, su.model.k = 0;
    su.prior.m = su.model.m, su.prior.k = su.model.k;
    if (!dc_toy_config_ok(&su.model, err, len) || (!su.model.baseline && !dc_prior_config_ok(&su.prior, err, len)))
        return false;
    float *xy = malloc((size_t)DC_TOY_TRAIN_N * 2 * sizeof *xy);
    if (!xy) abort(); /* out of memory */
    dc_toy_sample(su.data_seed, DC_TOY_TRAIN_N, xy, NULL);
    dc_graph *bg = bundle_graph(&su);
    dc_exec *bundle = dc_graph_failed(bg) ? NULL : dc_exec_new(bg, su.train.seed, err, len);
    if (dc_graph_failed(bg)) snprintf(err, len, "toy: %s", dc_graph_error(bg));
    model_meta meta = meta_of(&su);
    bool ok = bundle && train_denoiser(&su, xy, bundle, r, err, len) &&
              (su.model.baseline || train_prior(&su, xy, bundle, r, err, len)) &&
              dc_checkpoint_save(path, bundle, &meta, sizeof meta, err, len);
    dc_exec_free(bundle);
    dc_graph_free(bg);
    free(xy);
    return ok;
}

/* ---- the model file --------------------------------------------------------------------- */

struct dc_toy_model {
    dc_toy_setup setup;
    dc_graph *g;
    dc_exec *e;
};

/* The meta of a model file, verified with the whole file; errors say what is wrong with it. */
static bool peek_meta(const char *path, model_meta *m, char *err, size_t len) {
    char why[DC_ERR_LEN];
    if (dc_checkpoint_read_meta(path, m, sizeof *m, why, sizeof why)) {
        if (m->format == MODEL_FORMAT) return true;
        snprintf(why, sizeof why, "a checkpoint of something else");
    }
    snprintf(err, len, "toy: %s is not a model file of `disco train toy` (%s)", path, why);
    return false;
}

/* The setup of a meta, checked as a fresh one would be. */
static bool setup_of(const model_meta *m, dc_toy_setup *s, char *err, size_t len) {
    *s = dc_toy_setup_defaults();
    s->model = (dc_toy_config){ .baseline = m->baseline != 0, .m = (int)m->m, .k = (int)m->k, .tau = (float)m->tau,
                                .sigma_data = (float)m->sigma_data, .null_prob = (float)m->null_prob,
                                .width = (int)m->width, .enc_width = (int)m->enc_width,
                                .usage_weight = (float)m->usage_weight };
    s->prior = (dc_prior_config){ .m = (int)m->m, .k = (int)m->k, .d_model = (int)m->prior_d,
                                  .heads = (int)m->prior_heads, .layers = (int)m->prior_layers };
    s->train.steps = m->steps, s->train.batch = m->batch, s->prior_train.steps = m->prior_steps;
    s->train.seed = m->seed, s->data_seed = m->data_seed;
    bool sane = m->width > 0 && m->width <= 65536 && m->enc_width > 0 && m->enc_width <= 65536 &&
                m->m >= 0 && m->m <= DC_TOY_MAX_LATENTS && m->k >= 0 && m->k <= DC_TOY_MAX_CODES &&
                m->prior_d > 0 && m->prior_d <= 65536 && m->prior_heads > 0 && m->prior_layers > 0 &&
                m->prior_layers <= 64;
    if (!sane || !dc_toy_config_ok(&s->model, err, len) || (!s->model.baseline && !dc_prior_config_ok(&s->prior, err, len))) {
        snprintf(err, len, "toy: the model file's settings are invalid");
        return false;
    }
    return true;
}

dc_toy_model *dc_toy_load(const char *path, char *err, size_t len) {
    model_meta peek, meta;
    dc_toy_setup s;
    if (!peek_meta(path, &peek, err, len) || !setup_of(&peek, &s, err, len)) return NULL;
    dc_toy_model *m = calloc(1, sizeof *m);
    if (!m) abort(); /* out of memory */
    m->setup = s;
    m->g = bundle_graph(&s);
    m->e = dc_graph_failed(m->g) ? NULL : dc_exec_new(m->g, 0, err, len);
    bool ok = m->e && dc_checkpoint_load(path, m->e, &meta, sizeof meta, err, len);
    if (ok && memcmp(&meta, &peek, sizeof meta) != 0) {
        snprintf(err, len, "toy: %s: inconsistent settings", path);
        ok = false;
    }
    if (!ok) {
        dc_toy_model_free(m);
        return NULL;
    }
    return m;
}

void dc_toy_model_free(dc_toy_model *m) {
    if (!m) return;
    dc_exec_free(m->e);
    dc_graph_free(m->g);
    free(m);
}

const dc_toy_setup *dc_toy_model_setup(const dc_toy_model *m) { return &m->setup; }

const dc_exec *dc_toy_model_params(const dc_toy_model *m) { return m->e; }

bool dc_toy_model_export(const dc_toy_model *m, dc_exec *dst, char *err, size_t len) {
    return dc_exec_copy_params(m->e, dst, &(dc_param_map){ .need_all = true }, err, len);
}
