/* images.h — DisCo-Diff on images: class-conditional Fashion-MNIST (28x28x1 NHWC, pixels in
 * [-1, 1]) with a U-Net denoiser that reads the discrete latents through cross-attention, a ViT
 * encoder that infers them from the clean image, and the EDM baseline (the same U-Net without
 * latents). The networks are built in the DSL (unet.c, vit.c); the training, encoding and
 * denoising graphs follow them (images.c).
 *
 * Latents: m of them, k codes each, plus a null code (id k) that stands for "no latent" (latent
 * dropout in training, the unconditional branch of guidance on latents in sampling). A latent
 * is fed to the U-Net as a one-hot row over k + 1 ids, embedded (a learned table plus a
 * position per latent) and passed through a small transformer encoder; its output tokens are
 * the keys and values of the U-Net's cross-attentions.
 *
 * Group-hierarchical latents (latent_groups = 2): latents 0 .. m/2-1 are read by the
 * cross-attentions at 7x7, latents m/2 .. m-1 by those at 14x14 (the coarse resolution gets
 * the first group); with latent_groups = 1 every cross-attention reads all m. */
#ifndef DC_MODELS_DISCO_IMAGES_H
#define DC_MODELS_DISCO_IMAGES_H

#include "models/data/data.h"
#include "models/disco/disco.h"

#define DC_IMG_SIDE 28
#define DC_IMG_PIXELS (DC_IMG_SIDE * DC_IMG_SIDE)
#define DC_IMG_CLASSES 10
#define DC_IMG_MAX_LATENTS 32
#define DC_IMG_MAX_CODES 512
#define DC_IMG_GROUPS 8         /* group-norm groups of the U-Net: ch must be a multiple */

typedef struct {
    bool baseline;          /* EDM: no encoder and no latents (the U-Net has no cross-attention) */
    int m, k;               /* latents and codes per latent (k + 1 ids with the null code) */
    int latent_groups;      /* 1, or 2 (hierarchical, see above; m even) */
    float tau;              /* Gumbel-softmax temperature in training (1) */
    float sigma_data;       /* EDM sigma_data (0.5) */
    float null_prob;        /* latent dropout: share of examples trained on the null code (0.1) */
    float usage_weight;     /* u: adds u * dc_code_usage_kl(encoder logits) to the loss (0: none) */
    int ch;                 /* U-Net channels at 28x28; 2 ch at 14x14 and 7x7 */
    int emb;                /* width of the noise + class embedding */
    int heads;              /* heads of every attention (U-Net, latent transformer, ViT) */
    int lat_d, lat_layers;  /* latent tokens: width and transformer layers */
    int vit_d, vit_layers;  /* ViT encoder: width and transformer layers */
    int vit_patch;          /* patch side (divides 28) */
} dc_img_config;

dc_img_config dc_img_config_defaults(void);
/* false and err naming the field when c is inconsistent (m, k out of range, widths not
 * divisible by heads or by the group-norm groups, patch not dividing 28, ...) */
bool dc_img_config_ok(const dc_img_config *c, char *err, size_t len);

/* ---- the networks (unet.c, vit.c) --------------------------------------------------- */

/* The raw U-Net F: x_in [B,28,28,1] (c_in * x), c_noise [B,1], labels i32 [B] (0..9),
 * lat [B,m,lat_d] latent tokens (DC_NONE for the baseline) -> [B,28,28,1]. Params unet.* */
dc_t dc_img_unet(dc_graph *g, dc_t x_in, dc_t c_noise, dc_t labels, dc_t lat, const dc_img_config *c);
/* z [B,m,k+1] one-hot rows (null code = id k; soft rows pass gradients) -> latent tokens
 * [B,m,lat_d]. Params lat.* */
dc_t dc_img_latent_tokens(dc_graph *g, dc_t z, const dc_img_config *c);
/* The ViT encoder: clean images y [B,28,28,1] -> logits [B,m,k]. Params vit.* */
dc_t dc_img_vit(dc_graph *g, dc_t y, const dc_img_config *c);

/* ---- graphs (images.c) ---------------------------------------------------------------- */

/* Training: inputs "x" f32[B,28,28,1] (pixels in [0, 1], as dc_image_feed gives them; the
 * graph maps them to [-1, 1]) and "y" i32[B] (classes); output "loss" (the EDM loss) and, with
 * latents, "drop_rate". Sigmas, noise, Gumbel noise and latent dropout are random ops. */
dc_graph *dc_img_train_graph(const dc_img_config *c, int64_t batch);
/* The training graph's loss with its draws as inputs (the same function builds both): "x" and
 * "y" as above, "sigma" f32[B,1], "noise" f32[B,28,28,1] (standard normal: the noisy image is
 * y + sigma noise) and, with latents, "gumbel" f32[B,m,k] (added to the ViT's logits before
 * the Gumbel-softmax) and "drop" f32[B,1,1] (1: the example's latents are all the null code,
 * else 0); output "loss". */
dc_graph *dc_img_loss_graph(const dc_img_config *c, int64_t batch);
/* Denoising: inputs "x" f32[B,28,28,1], "sigma" f32[B,1], "label" i32[B] and, with latents,
 * "codes" i32[B,m] (k = the null code); output "denoised" f32[B,28,28,1]. */
dc_graph *dc_img_denoise_graph(const dc_img_config *c, int64_t batch);
/* Encoding: input "x" f32[B,28,28,1] (pixels in [0, 1]); output "codes" i32[B,m] = argmax of
 * the ViT's logits. */
dc_graph *dc_img_encode_graph(const dc_img_config *c, int64_t batch);

/* ---- training (images.c) ------------------------------------------------------------- */

typedef struct {
    dc_img_config model;
    dc_prior_config prior;          /* classes = 10: the class is the prior's first token */
    dc_train_config train;          /* encoder + U-Net (or the baseline's U-Net) */
    dc_train_config prior_train;
} dc_img_setup;

/* The defaults of `disco train fmnist-disco` (docs/images.md says why these). */
dc_img_setup dc_img_setup_defaults(void);
/* --quick: the same path with tiny networks and a few steps (a test of the plumbing). */
void dc_img_setup_quick(dc_img_setup *s);

typedef struct {
    double loss, prior_loss;        /* mean batch loss of the last tenth of each stage's steps */
    double train_s, prior_s;        /* wall time of each stage */
    double images_per_s;            /* training images/s over the stage-1 steps run here */
    int64_t params, prior_params;   /* trainable values of the U-Net (+ encoder) and of the prior */
} dc_img_report;

/* Stage 1 (encoder + U-Net jointly, or the baseline's U-Net) on ds, checkpointed to ckpt
 * (resumed from resume when not NULL); with latents stage 2 (the prior on the codes the EMA
 * encoder gives the training images, with their classes); then the model file at path: the EMA
 * params of every network and the setup as meta. */
bool dc_img_train(const dc_img_setup *s, const dc_dataset *ds, const char *ckpt, const char *resume,
                  const char *path, dc_img_report *r, char *err, size_t len);

/* A trained model loaded from a file of dc_img_train (errors name the file and what is wrong:
 * not a model file, damaged, settings out of range). */
typedef struct dc_img_model dc_img_model;
dc_img_model *dc_img_load(const char *path, char *err, size_t len);
void dc_img_model_free(dc_img_model *m);
const dc_img_setup *dc_img_model_setup(const dc_img_model *m);
/* What its training reported (stored in the model file). */
const dc_img_report *dc_img_model_report(const dc_img_model *m);
/* Copies into every param of dst the model's param of the same name and type. */
bool dc_img_model_export(const dc_img_model *m, dc_exec *dst, char *err, size_t len);
/* The executor holding the model's params (for dc_compile_with_params). */
const dc_exec *dc_img_model_params(const dc_img_model *m);

/* ---- metrics (frechet.c) --------------------------------------------------------------- */

/* The Frechet distance as FID reports it (its square, d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b -
 * 2 (S_a^1/2 S_b S_a^1/2)^1/2), S the covariances divided by n - 1) between feature sets a
 * [na,d] and b [nb,d]; -1 and err unless d in [1, 4096], na, nb >= 2 and every value finite. */
double dc_frechet_distance(const float *a, int64_t na, const float *b, int64_t nb, int d, char *err, size_t len);

/* ---- sampling (img_sample.c) ----------------------------------------------------------- */

typedef struct {
    dc_sampler_kind sampler;    /* Heun (default), Euler, or churn (EDM's stochastic sampler with
                                 * S_churn 40, S_tmin 0.05, S_tmax 50, S_noise 1.003) */
    int steps;                  /* N on the EDM schedule (default 18) */
    float guidance;             /* w on the latents (default 0: conditional sampling) */
    float temperature;          /* of the prior (default 1) */
    uint64_t seed;              /* codes from seed (per chunk of the batch), initial noise from
                                 * seed + 1, churn noise from seed + 2 */
    float *trajectory;          /* NULL, or [(steps+1) * n * 784]: the states x_0 .. x_N */
    bool same_noise;            /* every image starts from image 0's initial noise */
} dc_img_sample_opts;
dc_img_sample_opts dc_img_sample_defaults(void);

/* Compiled programs for chunks of `batch` images: the denoiser and, with latents, the prior. */
typedef struct dc_img_sampler dc_img_sampler;
dc_img_sampler *dc_img_sampler_new(const dc_img_model *m, int64_t batch, dc_backend backend, char *err,
                                   size_t len);
void dc_img_sampler_free(dc_img_sampler *s);
/* How many steps of the sampler's programs run on ref, and their ops into buf. */
int dc_img_sampler_ref_summary(const dc_img_sampler *s, char *buf, size_t len);

/* n images [n,784] in model space (about [-1, 1]) of the classes labels [n]: with latents, codes
 * [n,m] as given, or drawn from the prior when codes is NULL (codes_out, may be NULL, receives
 * them); then the sampler over all n at once. */
bool dc_img_generate(dc_img_sampler *s, const dc_img_sample_opts *o, int64_t n, const int32_t *labels,
                     const int32_t *codes, float *images, int32_t *codes_out, char *err, size_t len);
/* Of the last dc_img_generate: wall times of drawing the codes and of the ODE, and the denoiser
 * evaluations per image (NFE: 2N - 1 for Heun, twice that under guidance). */
typedef struct {
    double prior_s, ode_s;
    int64_t nfe;
} dc_img_sample_times;
const dc_img_sample_times *dc_img_sampler_times(const dc_img_sampler *s);
/* The denoiser callback (dc_denoise_fn) of a sampler with the classes, codes and guidance of
 * its last dc_img_generate, for the curvature probes: x [n,784] of that generation's n. */
bool dc_img_denoise(void *sampler, const float *x, float sigma, float *d_out, int64_t n, int64_t dim, char *err,
                    size_t len);

/* ---- evaluation (img_eval.c) ------------------------------------------------------------ */

/* fmnist-cnn's feature program (its penultimate 128-d activations, dc_fmnist_cnn_graph) with
 * the weights file of `disco train fmnist-cnn`. */
typedef struct dc_img_features dc_img_features;
dc_img_features *dc_img_features_new(const char *weights, int64_t batch, dc_backend backend, char *err, size_t len);
void dc_img_features_free(dc_img_features *f);
/* images [n,784] (model space [-1, 1] when model_space, else pixels in [0, 1]; clamped) ->
 * feats [n,128] and the predicted classes pred [n] (may be NULL). */
bool dc_img_features_run(dc_img_features *f, const float *images, int64_t n, bool model_space, float *feats,
                         int32_t *pred, char *err, size_t len);

#define DC_IMG_MAX_STEP_COUNTS 8
#define DC_IMG_MAX_GUIDANCES 4
typedef struct {
    int64_t n;                  /* samples per figure (5000), classes i mod 10 */
    int n_steps, steps[DC_IMG_MAX_STEP_COUNTS];         /* Heun step counts (5, 10, 18, 35) */
    int n_guidance;
    float guidance[DC_IMG_MAX_GUIDANCES];                /* DisCo-Diff's (0, 1, 2) */
    float main_guidance;        /* the samples kept: the last step count at this guidance (1) */
    int guidance_steps;         /* the other guidance scales only at this step count (0: at every one) */
    int64_t curv_n;             /* images whose trajectories give the curvature (200; 0: none) */
    int64_t batch;              /* of the programs (250) */
    uint64_t seed;
    FILE *progress;             /* a line per figure as it is measured (NULL: none) */
} dc_img_eval_opts;
dc_img_eval_opts dc_img_eval_defaults(void);

typedef struct {
    bool baseline;
    int n_steps, n_guidance;    /* the baseline has one "guidance", 0; fd NaN where not run */
    int steps[DC_IMG_MAX_STEP_COUNTS];
    float guidance[DC_IMG_MAX_GUIDANCES];
    int64_t nfe[DC_IMG_MAX_STEP_COUNTS][DC_IMG_MAX_GUIDANCES];
    double fd[DC_IMG_MAX_STEP_COUNTS][DC_IMG_MAX_GUIDANCES];         /* to the test set */
    double agreement[DC_IMG_MAX_STEP_COUNTS][DC_IMG_MAX_GUIDANCES];  /* fmnist-cnn class == condition */
    double curv[DC_SIGMA_BANDS];    /* mean ODE curvature per sigma band (dc_ode_curvature) */
    int codes_used_min;             /* DisCo-Diff, on the test images: the fewest codes in use of a latent */
    double codes_used_mean, code_class_mi;  /* mean over latents; MI in bits */
} dc_img_metrics;

/* Samples n images per step count (and guidance) from m, their features against the test
 * set's test_feats [n_test,128]; the curvature from Heun trajectories at the last step count
 * (conditional); with latents, the usage of the codes the encoder gives test's images.
 * samples [n,784] and labels [n] (may be NULL) receive the images at the last step count and
 * main_guidance. */
bool dc_img_evaluate(const dc_img_model *m, dc_img_features *f, const float *test_feats, int64_t n_test,
                     const dc_dataset *test, const dc_img_eval_opts *o, dc_backend backend, dc_img_metrics *out,
                     float *samples, int32_t *labels, char *err, size_t len);

#endif
