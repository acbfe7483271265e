/* disco.h — DisCo-Diff on the paper's 2-D toy problem: the EDM graph pieces and host samplers
 * (edm.c), the 8-Gaussian toy data (toy_data.c), the evaluation metrics (metrics.c) and the
 * PNG plots (plot.c); the models (encoder, denoiser, prior, training, sampling) follow in their
 * own section below.
 *
 * Points are float arrays [n, dim] in C order (dim = 2 for the toy). Functions that can be
 * handed bad input return false (or a negative value / NaN, as documented) and write err; they
 * never abort on it. Everything seeded draws through dc_rng_* (runtime.h), so results depend
 * only on the seed (and, for graphs, on the thread count as the runtime documents). */
#ifndef DC_MODELS_DISCO_H
#define DC_MODELS_DISCO_H

#include <stdio.h>

#include "frontend/dsl.h"
#include "runtime/runtime.h"

/* ======== EDM, toy data, metrics, plots ================================================ */

/* ---- EDM (edm.c; Karras et al. 2022, "Elucidating the design space", Table 1) ---------- */

#define DC_EDM_SIGMA_DATA 0.5f  /* the paper's image default; the toy's own std is ~2.13 */
#define DC_EDM_P_MEAN (-1.2f)   /* ln(sigma) ~ N(P_mean, P_std^2) in training */
#define DC_EDM_P_STD 1.2f
#define DC_EDM_SIGMA_MIN 0.002
#define DC_EDM_SIGMA_MAX 80.0
#define DC_EDM_RHO 7.0

/* The preconditioning coefficients as graph values, each of sigma's shape:
 *   c_skip = sd^2 / (s^2 + sd^2)      c_out = s * sd / sqrt(s^2 + sd^2)
 *   c_in   = 1 / sqrt(s^2 + sd^2)     c_noise = ln(s) / 4
 * sigma is f32 [B] or [B,1] (use [B,1] to broadcast against x [B,D]); sd = sigma_data > 0. */
typedef struct { dc_t c_skip, c_out, c_in, c_noise; } dc_edm_precond;
dc_edm_precond dc_edm_precond_graph(dc_graph *g, dc_t sigma, float sigma_data);

/* The raw network F: given c_in * x (x's shape) and c_noise (sigma's shape), returns F's
 * output (x's shape). ctx is the caller's (e.g. the latents' embedding). */
typedef dc_t (*dc_edm_net_fn)(void *ctx, dc_graph *g, dc_t x_in, dc_t c_noise);

/* Fourier features of c_noise [B,1] -> [B,2F]: sin and cos of c_noise times F geometric
 * frequencies from 1 to 32 (c_noise = ln(sigma)/4 lies in about [-1.6, 1.1]: these resolve it
 * finely without aliasing over that range). F >= 2. */
dc_t dc_edm_noise_features(dc_graph *g, dc_t c_noise, int64_t freqs);

/* D = c_skip * x + c_out * f_out, with f_out = F(c_in * x, c_noise) built by the caller. */
dc_t dc_edm_denoised(dc_graph *g, const dc_edm_precond *p, dc_t x, dc_t f_out);
/* The whole preconditioned denoiser D(x; sigma) = c_skip x + c_out F(c_in x, c_noise). */
dc_t dc_edm_denoiser(dc_graph *g, dc_t x, dc_t sigma, float sigma_data, dc_edm_net_fn net,
                     void *ctx);

/* Training sigmas as graph random ops: sigma = exp(n), n ~ N(P_mean, P_std^2), f32 [batch,1].
 * (Graph-side, so each training step's seed draws fresh sigmas reproducibly.) */
dc_t dc_edm_sample_sigma(dc_graph *g, int64_t batch, float p_mean, float p_std);
/* The noisy input y + sigma * n, n ~ N(0, 1) of y's shape (y [B,D], sigma [B,1]). */
dc_t dc_edm_add_noise(dc_graph *g, dc_t y, dc_t sigma);
/* The weighted loss, f32[]: mean over the batch of lambda(s) * ||D - y||^2 (squared norm over
 * all non-batch axes), lambda(s) = (s^2 + sd^2) / (s * sd)^2. d, y [B,D]; sigma [B,1]. */
dc_t dc_edm_loss(dc_graph *g, dc_t d, dc_t y, dc_t sigma, float sigma_data);

/* The sampling schedule, t[0..steps] (steps >= 1):
 *   t_i = (smax^(1/rho) + i/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho, i < N;  t_N = 0
 * (for N = 1: t_0 = smax). Needs 0 < smin <= smax, rho > 0. */
bool dc_edm_schedule(int steps, double sigma_min, double sigma_max, double rho, double *t,
                     char *err, size_t len);

/* The denoiser on the host: d_out [n,dim] = D(x; sigma) for x [n,dim]. Returns false and
 * err on failure (the sampler then stops and returns false with that message). */
typedef bool (*dc_denoise_fn)(void *ctx, const float *x, float sigma, float *d_out, int64_t n,
                              int64_t dim, char *err, size_t len);

typedef enum {
    DC_SAMPLER_EULER,   /* first order: x_{i+1} = x_i + (t_{i+1} - t_i) d_i */
    DC_SAMPLER_HEUN,    /* EDM Algorithm 1: Euler, then the trapezoid correction unless t_{i+1} = 0 */
    DC_SAMPLER_CHURN,   /* EDM Algorithm 2: noise raises t_i to t^ = t_i (1 + gamma_i), then Heun */
} dc_sampler_kind;

typedef struct {
    dc_sampler_kind kind;
    int steps;                  /* N >= 1 (N sigmas > 0, then 0) */
    double sigma_min, sigma_max, rho;   /* the schedule (DC_EDM_* defaults) */
    /* churn only: gamma_i = min(S_churn / N, sqrt(2) - 1) if t_i in [S_tmin, S_tmax] else 0;
     * x^ = x_i + sqrt(t^^2 - t_i^2) S_noise eps_i, eps_i ~ N(0, I) from dc_rng_normal(seed,
     * stream 1 + i, element j) */
    double s_churn, s_tmin, s_tmax, s_noise;
    uint64_t seed;
    /* NULL, or [(steps+1) * n * dim]: x_0 .. x_N (for churn: the states x_i before the noise) */
    float *trajectory;
} dc_sampler_opts;

/* Defaults: Heun, 18 steps, the DC_EDM_* schedule, S_churn 0, S_tmin 0, S_tmax inf,
 * S_noise 1, seed 0, no trajectory. */
dc_sampler_opts dc_sampler_defaults(void);

/* The initial state x_0 = t_0 * eps, eps ~ N(0, I) from dc_rng_normal(seed, 0, j), j < n*dim. */
void dc_edm_initial_noise(uint64_t seed, double sigma_max, int64_t n, int64_t dim, float *x);

/* Integrates the probability-flow ODE dx/dt = (x - D(x; t)) / t from t_0 to 0 along the
 * schedule, in place: x [n,dim] holds x_0 on entry and the sample x_N on return. Arithmetic in
 * double per element, states stored as float. False and err on bad options or a failed
 * denoiser call (x then holds the state reached). */
bool dc_edm_sample(const dc_sampler_opts *o, dc_denoise_fn denoise, void *ctx, float *x,
                   int64_t n, int64_t dim, char *err, size_t len);

/* ---- toy data (toy_data.c): the paper's mixture of 8 Gaussians ----------------------- */

#define DC_TOY_MODES 8
#define DC_TOY_RADIUS 3.0
#define DC_TOY_STD 0.2
#define DC_TOY_TRAIN_N 8000

/* Mean of mode k (0..7): RADIUS * (cos(k pi/4), sin(k pi/4)); k outside 0..7 gives (0, 0). */
void dc_toy_mode_mean(int k, double out[2]);
/* n points [n,2] (and their modes [n], may be NULL): mode k uniform over 0..7
 * (dc_rng_u32(seed, 1, i) % 8), point = mean_k + STD * (dc_rng_normal(seed, 2, 2i),
 * dc_rng_normal(seed, 2, 2i+1)). The same seed gives the same points for every n prefix. */
void dc_toy_sample(uint64_t seed, int64_t n, float *xy, int32_t *mode);
/* The mixture's std per coordinate (both are equal, mean 0): sqrt(R^2/2 + STD^2) = 2.1307. */
double dc_toy_data_std(void);
/* Std per coordinate of n points [n,2] about their mean (over both coordinates pooled). */
double dc_points_std(const float *xy, int64_t n);

/* ---- metrics (metrics.c) -------------------------------------------------------------- */

/* Exact minimum-cost assignment of a dense n x n cost matrix cost[i*n + j] (row i to column
 * j): the shortest augmenting path method (Jonker & Volgenant 1987) with dual potentials, a
 * Dijkstra search per row, in doubles; O(n^3) worst case (n = 2000 toy points: ~0.5 s).
 * Sequential, so the result is deterministic. col_of_row[i] receives row i's column; returns
 * the total cost (summed in row order), or -1 if n < 1 or a cost is not finite. */
double dc_assignment(int64_t n, const double *cost, int64_t *col_of_row);

/* Exact W2 between two equal-size sets a, b [n,dim]: sqrt of the mean squared Euclidean
 * distance of the optimal matching (dc_assignment on squared distances; the n x n matrix
 * takes 8 n^2 bytes). -1 and err unless 1 <= n <= DC_W2_MAX_N, 1 <= dim <= 1024 and every
 * coordinate is finite. */
#define DC_W2_MAX_N 10000
double dc_w2(const float *a, const float *b, int64_t n, int64_t dim, char *err, size_t len);
/* The W2 floor: W2 between two fresh toy samples of size n (seeds seed and seed + 1). At
 * n = 2000 it is about 0.31 (mode counts fluctuate between the two draws). */
double dc_w2_floor(int64_t n, uint64_t seed, char *err, size_t len);

/* Index of the mode whose mean is nearest to p (ties: the lower index). */
int dc_toy_nearest_mode(const float p[2]);
/* Mode-weight error: total variation 1/2 sum_k |c_k/n - 1/8| between the nearest-mode
 * histogram c of pts [n,2] and uniform. All points at one mode: 7/8. NaN if n < 1. */
double dc_mode_tv(const float *pts, int64_t n);
/* Off-mode fraction: share of points farther than 3 * STD from every mode mean. */
double dc_off_mode_fraction(const float *pts, int64_t n);
/* Per-mode coverage: the fraction of the 8 modes that hold at least min_share of their
 * expected mass, i.e. at least min_share * n / 8 points within 3 * STD of their mean
 * (the demo uses min_share = 0.5). */
double dc_mode_coverage(const float *pts, int64_t n, double min_share);
/* Within-mode W2: for each mode k, the generated points whose nearest mode is k and the data
 * points of mode k (data [m,2] with labels data_mode [m]); with c = the smaller of the two
 * counts, the W2 between the first c of each (in array order: both sets are i.i.d. draws, so
 * a prefix is an unbiased subsample); the mean over the modes with c >= 1. NaN if no mode has
 * c >= 1; -1 and err on a label outside 0..7 or a failed dc_w2. */
double dc_within_mode_w2(const float *gen, int64_t n, const float *data, const int32_t *data_mode,
                         int64_t m, char *err, size_t len);
/* Latent purity: for each code c, the count of its points in its most common mode; summed
 * over codes and divided by n (= per-code purity averaged over points). code in 0..codes-1,
 * mode in 0..7; -1 and err otherwise. */
double dc_latent_purity(const int32_t *code, const int32_t *mode, int64_t n, int codes,
                        char *err, size_t len);

/* ODE curvature and drift Jacobian along a sampled trajectory.
 * The drift is f(x, t) = (x - D(x; t)) / t (the ODE runs dx/dt = f from t_0 down to 0).
 * Curvature at step i (t = t_i > 0, every point x of x_i): the unit tangent T = f/|f|, an Euler
 * probe step of h = min(0.001, t/2) in sigma along the path, x' = x - h f (t' = t - h), and
 *     kappa = |T(x', t') - T(x, t)| / |x' - x|
 * (change of the unit tangent per unit path length; a circle of radius r gives 1/r, a
 * straight line 0). Points where f or f' vanishes are skipped; per step the mean over the
 * remaining points (NaN if none).
 * Jacobian at step i: ||J||_F^2 of J = df/dx at every point, by central differences
 * (f(x + e u_j) - f(x - e u_j)) / 2e per coordinate j with e = 0.01 * max(t, 0.1); per step
 * the mean over points.
 * traj: x_0 .. x_{steps-1} [steps, n, dim] (the sampler's trajectory), t: t_0 .. t_{steps-1}.
 * curv / jac receive [steps]. False and err on bad input or a failed denoiser call. */
bool dc_ode_curvature(dc_denoise_fn denoise, void *ctx, const float *traj, const double *t,
                      int steps, int64_t n, int64_t dim, double *curv, char *err, size_t len);
bool dc_ode_jacobian(dc_denoise_fn denoise, void *ctx, const float *traj, const double *t,
                     int steps, int64_t n, int64_t dim, double *jac, char *err, size_t len);

/* Sigma bands: 0: t > 10, 1: 1 < t <= 10, 2: 0.1 < t <= 1, 3: t <= 0.1. */
#define DC_SIGMA_BANDS 4
int dc_sigma_band(double t);
/* out[b] = mean of the non-NaN per_step[i] whose t[i] lies in band b (NaN if none). */
void dc_band_means(const double *per_step, const double *t, int steps, double out[DC_SIGMA_BANDS]);

/* One model's metrics record. NaN = not measured (written as null). */
#define DC_METRICS_MAX_W2_AT 8
typedef struct {
    double w2;                  /* at the main step count */
    double w2_floor;
    int n_w2_at;                /* extra step counts: key "w2_<steps>" */
    int w2_at_steps[DC_METRICS_MAX_W2_AT];
    double w2_at[DC_METRICS_MAX_W2_AT];
    double w2_within, mode_tv, coverage, off_mode, purity;
    double curv[DC_SIGMA_BANDS], jac[DC_SIGMA_BANDS];
} dc_toy_metrics;
/* Every field NaN, no extra step counts. */
void dc_toy_metrics_init(dc_toy_metrics *m);
/* Writes m as one JSON object in this key order: w2, w2_floor, w2_<s>... (in array order),
 * w2_within, mode_tv, coverage, off_mode, purity, curv_gt10, curv_1_10, curv_01_1, curv_lt01,
 * jac_gt10, jac_1_10, jac_01_1, jac_lt01. Numbers as %.6g, NaN/inf as null; no newline at the
 * end. False if a write fails. */
bool dc_toy_metrics_json(FILE *f, const dc_toy_metrics *m);

/* ---- plots (plot.c): RGB PNGs through libpng, written atomically ---------------------- */

/* The data window of a panel; the pixel grid maps [xmin,xmax] x [ymin,ymax] inside a framed
 * box with a 16-pixel margin, y up; scatter and trajectory panels have ticks at the integers.
 * Sizes: 64..8192 pixels a side. */
typedef struct { double xmin, xmax, ymin, ymax; } dc_plot_view;
/* The fixed palette used for labels (label mod 10), as 0xRRGGBB. */
uint32_t dc_plot_color(int label);

/* Scatter of pts [n,2] as small dots, coloured by label[i] (label may be NULL: all colour 0),
 * in a width x height image with a frame. */
bool dc_plot_scatter(const char *path, const float *pts, const int32_t *label, int64_t n,
                     dc_plot_view view, int width, int height, char *err, size_t len);

/* One panel of ODE trajectories: traj [(steps+1), n, 2] (x_0 .. x_N); the first `draw` paths
 * are drawn as polylines clipped to view, coloured by label (may be NULL), with the end points
 * as dots. */
typedef struct {
    const float *traj;
    int steps;
    int64_t n, draw;
    const int32_t *label;
} dc_plot_paths;
/* Two panels side by side, each panel_w x panel_h. */
bool dc_plot_trajectories(const char *path, const dc_plot_paths *left, const dc_plot_paths *right,
                          dc_plot_view view, int panel_w, int panel_h, char *err, size_t len);

/* Line plot: each series y[i] over x[i] (n points) in its colour, solid with dots at the
 * points, or dashed (6 pixels on, 6 off; e.g. a floor as a two-point series); log_x maps x
 * through log10 (points with x <= 0 are skipped). The view covers every finite point, padded
 * by 5%, y from 0 when all y >= 0; ticks at the first series' x and at round y values. */
typedef struct {
    const double *x, *y;
    int n;
    uint32_t rgb;
    bool dashed;
} dc_plot_series;
bool dc_plot_lines(const char *path, const dc_plot_series *series, int n_series, bool log_x,
                   int width, int height, char *err, size_t len);

/* A grid of rows x cols grayscale images (images [rows*cols, side*side], row-major, values in
 * [-1, 1] mapped to black..white, clamped; NaN black), each scaled up by `scale` (nearest), on
 * white with 2-pixel gaps. */
bool dc_plot_image_grid(const char *path, const float *images, int side, int rows, int cols, int scale,
                        char *err, size_t len);

/* ======== end of EDM, toy data, metrics, plots ======================================== */

/* ======== the DisCo-Diff toy model (toy_model.c), its prior (prior.c), sampling (sample.c) ==
 *
 * DisCo-Diff = an encoder from the clean point y to m categorical latents over k codes, a
 * denoiser conditioned on them, and an autoregressive prior over them. Training (one compiled
 * graph, the shared trainer of models/train.h): logits = encoder(y) [B,m,k]; Gumbel-softmax
 * straight-through z = straight_through(one_hot(argmax(soft)), soft) with soft =
 * softmax((logits + gumbel) / tau) [B,m,k]; the latents' embedding linear(z flattened [B,m*k])
 * [B,W], replaced per example by the learned null embedding with probability null_prob; the
 * EDM-preconditioned denoiser MLP on (c_in x, Fourier features of c_noise) plus that embedding;
 * the EDM loss. Encoder and denoiser train jointly end to end. The baseline is the same
 * denoiser without the embedding. Then the prior is trained on the frozen encoder's argmax
 * codes of the training points (the tau -> 0 limit, noise-free).
 *
 * Classifier-free guidance on the latents with scale w:
 *     D(x; s) = D_cond + w (D_cond - D_null)
 * with D_cond conditioned on the codes and D_null on the null embedding: w = 0 is plain
 * conditional sampling (and skips the null pass), w > 0 pushes away from the unconditional
 * model. */

#include "models/train.h"

#define DC_TOY_MAX_LATENTS 64
#define DC_TOY_MAX_CODES 1024
#define DC_TOY_NOISE_FREQS 16       /* Fourier features of c_noise: sin, cos of 16 frequencies */

typedef struct {
    bool baseline;              /* no encoder, latents or prior */
    int m, k;                   /* latents and codes per latent (defaults 1, 8) */
    float tau;                  /* Gumbel-softmax temperature in training (default 1) */
    float sigma_data;           /* EDM sigma_data (default 0.5) */
    float null_prob;            /* share of examples trained on the null embedding (0.1) */
    int width;                  /* denoiser width (256); 4 linear layers with SiLU */
    int enc_width;              /* encoder width (128); 3 linear layers with SiLU */
    float usage_weight;         /* weight u of the code-usage term added to the training loss (0:
                                 * none, the default): u * sum over latents of KL(p_bar || uniform),
                                 * p_bar = the batch mean of softmax(logits); it keeps every code in
                                 * use (docs/toy.md) */
} dc_toy_config;

/* The autoregressive prior: a pre-norm causal transformer over the m latents with a vocabulary
 * of the k codes plus a start token (id k). */
typedef struct {
    int m, k;
    int d_model, heads, layers; /* defaults 64, 4, 2 */
    int classes;                /* 0: one start token (id k); C > 0: class-conditional, the start
                                 * token of an example of class c is id k + c */
} dc_prior_config;

dc_toy_config dc_toy_config_defaults(void);
dc_prior_config dc_prior_config_defaults(int m, int k);
bool dc_toy_config_ok(const dc_toy_config *c, char *err, size_t len);
bool dc_prior_config_ok(const dc_prior_config *c, char *err, size_t len);

/* ---- graph pieces (toy_model.c); params under enc.*, lat.*, den.* --------------------- */

/* The code-usage term of logits [B,m,k], f32[]: the sum over the m latents of KL(p_bar ||
 * uniform), p_bar [m,k] the batch mean of softmax(logits): m log k + sum p_bar log(p_bar +
 * 1e-8). 0 when each latent's codes are used equally over the batch, m log k when each latent
 * puts all its mass on one code. */
dc_t dc_code_usage_kl(dc_graph *g, dc_t logits);
/* y [B,2] -> logits [B,m,k] */
dc_t dc_toy_encoder(dc_graph *g, dc_t y, const dc_toy_config *c);
/* Gumbel-softmax straight-through: logits [B,m,k] -> z [B,m,k], one-hot forward, the
 * gradient of soft = softmax((logits + gumbel) / tau, -1) backward. */
dc_t dc_toy_gumbel_st(dc_graph *g, dc_t logits, float tau);
/* The same with the Gumbel noise given: gumbel has logits' shape (dc_toy_gumbel_st draws it
 * with dc_gumbel; a parity check feeds it as an input). */
dc_t dc_gumbel_st_with(dc_graph *g, dc_t logits, dc_t gumbel, float tau);
/* z [B,m,k] (one-hot or soft) -> the latents' embedding [B,W] (lat.proj, no bias) */
dc_t dc_toy_latent_embedding(dc_graph *g, dc_t z, const dc_toy_config *c);
/* emb [B,W] -> per example the null embedding lat.null [W] where drop [B,1] (i32) is 1 */
dc_t dc_toy_null_select(dc_graph *g, dc_t emb, dc_t drop, const dc_toy_config *c);
/* The preconditioned denoiser D(x; sigma), x [B,2], sigma [B,1], emb [B,W] or DC_NONE
 * (baseline) -> [B,2] */
dc_t dc_toy_denoiser(dc_graph *g, dc_t x, dc_t sigma, dc_t emb, const dc_toy_config *c);

/* Training graph: input "y" f32[B,2]; outputs "loss" and, with latents, "drop_rate" (the share
 * of this batch given the null embedding). Sigmas, noise, Gumbel noise and dropout are random
 * ops, drawn afresh by each step's seed. */
dc_graph *dc_toy_train_graph(const dc_toy_config *c, int64_t batch);
/* Sampling graph: inputs "x" f32[B,2], "sigma" f32[B,1] and, with latents, "codes" i32[B,m]
 * and "drop" i32[B,1] (1: the null embedding); output "denoised" f32[B,2]. */
dc_graph *dc_toy_denoise_graph(const dc_toy_config *c, int64_t batch);
/* Encoding graph: input "y" f32[B,2]; output "codes" i32[B,m] = argmax of the logits. */
dc_graph *dc_toy_encode_graph(const dc_toy_config *c, int64_t batch);

/* ---- the prior (prior.c); params under prior.* --------------------------------------- */

/* tokens i32 [B,m] (the start token, then the codes shifted right) -> logits [B,m,k] */
dc_t dc_prior_logits(dc_graph *g, dc_t tokens, const dc_prior_config *c);
/* inputs "tokens", "codes" i32[B,m]; output "loss" (next-code cross-entropy) */
dc_graph *dc_prior_train_graph(const dc_prior_config *c, int64_t batch);
/* input "tokens" i32[B,m]; output "logits" f32[B,m,k] */
dc_graph *dc_prior_sample_graph(const dc_prior_config *c, int64_t batch);
/* Trains the prior on codes [n,m] (and, for a class-conditional prior, their examples' classes
 * [n]; NULL otherwise) with the shared trainer (tc: steps, batch, lr, seed, ...)
 * and copies the trained prior.* params into dst (its other params are left alone);
 * final_loss (may be NULL) gets the mean batch loss of the last tenth of the steps. */
bool dc_prior_train(const dc_prior_config *pc, const dc_train_config *tc, const int32_t *codes,
                    const int32_t *classes, int64_t n, dc_exec *dst, double *final_loss, char *err, size_t len);
/* Draws codes [B,m] (B = the program's batch) one position at a time from softmax(logits /
 * temperature), position i of row b with dc_rng_uniform01(seed, i, b); row b of a
 * class-conditional prior starts from the class classes[b] (NULL otherwise). e runs
 * dc_prior_sample_graph. */
bool dc_prior_sample(dc_exec *e, const dc_prior_config *c, float temperature, uint64_t seed,
                     const int32_t *classes, int32_t *codes, char *err, size_t len);

/* ---- training and checkpoints (toy_model.c) ------------------------------------------- */

typedef struct {
    dc_toy_config model;
    dc_prior_config prior;
    dc_train_config train;      /* the denoiser (and encoder) run */
    dc_train_config prior_train;
    uint64_t data_seed;         /* the 8000 training points */
} dc_toy_setup;

/* The defaults of `disco train toy` (train.steps etc. as the CLI documents). */
dc_toy_setup dc_toy_setup_defaults(void);

/* What a run reports. */
typedef struct {
    double loss;                /* mean batch loss of the last tenth of the steps */
    double prior_loss;          /* likewise for the prior (NaN for the baseline) */
    double train_s, prior_s;    /* wall time of each stage */
} dc_toy_report;

/* Trains the model (and, with latents, the prior) and writes the model file to path: every
 * param of the denoiser, encoder and prior (no optimizer state) and the setup as meta. */
bool dc_toy_train(const dc_toy_setup *s, const char *path, dc_toy_report *r, char *err, size_t len);

/* A trained model loaded from a file of dc_toy_train. */
typedef struct dc_toy_model dc_toy_model;
dc_toy_model *dc_toy_load(const char *path, char *err, size_t len);
void dc_toy_model_free(dc_toy_model *m);
const dc_toy_setup *dc_toy_model_setup(const dc_toy_model *m);
/* Copies into every param of dst the model's param of the same name and type. */
bool dc_toy_model_export(const dc_toy_model *m, dc_exec *dst, char *err, size_t len);
/* The executor holding the model's params (for dc_compile_with_params). */
const dc_exec *dc_toy_model_params(const dc_toy_model *m);

/* ---- sampling and evaluation (sample.c) ----------------------------------------------- */

/* Compiled programs for batches of n points: the denoiser and, with latents, the prior and
 * the encoder. */
typedef struct dc_toy_sampler dc_toy_sampler;
dc_toy_sampler *dc_toy_sampler_new(const dc_toy_model *m, int64_t n, dc_backend backend, char *err,
                                   size_t len);
void dc_toy_sampler_free(dc_toy_sampler *s);
/* How many steps of a sampler's programs (denoiser, and prior when not NULL) run on ref, and
 * their ops into buf ("denoiser: ...; prior: ...", dc_exec_ref_summary). */
/* g compiled as an inference program (dc_compile_for) with every param copied from params
 * (a model's); NULL and err ("WHAT: " + the graph's error, or the compiler's) on failure. */
dc_exec *dc_compile_with_params(dc_graph *g, const dc_exec *params, dc_backend backend, const char *what,
                                char *err, size_t len);
int dc_sampler_programs_ref_summary(const dc_exec *den, const dc_exec *prior, char *buf, size_t len);
/* How many steps of the sampler's programs (denoiser, prior) run on ref, and their ops into
 * buf (dc_sampler_programs_ref_summary). */
int dc_toy_sampler_ref_summary(const dc_toy_sampler *s, char *buf, size_t len);

typedef struct {
    int heun_steps;             /* default 50 */
    float guidance;             /* w, default 0 (conditional) */
    float temperature;          /* of the prior, default 1 */
    uint64_t seed;              /* codes: seed; initial noise: seed + 1 */
} dc_toy_sample_opts;
dc_toy_sample_opts dc_toy_sample_defaults(void);

/* Draws n codes from the prior, then integrates the ODE with Heun conditioned on them.
 * pts [n,2]; codes [n,m] (may be NULL; untouched for the baseline); traj (may be NULL)
 * [(heun_steps+1), n, 2]. */
bool dc_toy_generate(dc_toy_sampler *s, const dc_toy_sample_opts *o, float *pts, int32_t *codes,
                     float *traj, char *err, size_t len);
/* The same ODE from given codes [n,m] (ignored for the baseline). */
bool dc_toy_generate_from(dc_toy_sampler *s, const dc_toy_sample_opts *o, const int32_t *codes,
                          float *pts, float *traj, char *err, size_t len);
/* Wall times of the sampler's last dc_toy_generate / dc_toy_generate_from: prior_s drawing the
 * codes (0 for the baseline and for dc_toy_generate_from), ode_s the initial noise and the
 * Heun integration; denoiser_calls the runs of the denoiser program in it (2 steps - 1 for
 * Heun, twice that under guidance w != 0). */
typedef struct {
    double prior_s, ode_s;
    int64_t denoiser_calls;
} dc_toy_sample_times;
const dc_toy_sample_times *dc_toy_sampler_times(const dc_toy_sampler *s);
/* The denoiser callback (dc_denoise_fn) of s with its current codes and guidance (set by the
 * last dc_toy_generate*), for the curvature and Jacobian probes. */
bool dc_toy_denoise(void *sampler, const float *x, float sigma, float *d_out, int64_t n,
                    int64_t dim, char *err, size_t len);

typedef struct {
    int64_t n;                  /* points per sample set (2000) */
    int heun_steps;             /* main step count (50) */
    int n_extra;                /* extra step counts for w2_<steps> (5, 10, 20) */
    int extra_steps[DC_METRICS_MAX_W2_AT];
    float guidance, temperature;
    uint64_t seed;              /* sampling seed; the fresh data use seed + 1000, the floor
                                 * seeds seed + 2000 and + 2001 */
} dc_toy_eval_opts;
dc_toy_eval_opts dc_toy_eval_defaults(void);
/* All metrics of one model; pts (may be NULL) [n,2] receive the main samples. */
bool dc_toy_evaluate(const dc_toy_model *m, const dc_toy_eval_opts *o, dc_backend backend,
                     dc_toy_metrics *out, float *pts, char *err, size_t len);

/* ======== end of the toy model, prior, sampling ======================================= */

#endif
