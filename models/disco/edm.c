/* edm.c — EDM (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative
 * Models"): the preconditioning, training-sigma distribution and loss weight of Table 1 as
 * graph ops (so training differentiates through them), the sampling schedule (Eq. 5), and the
 * host samplers: Euler, Heun (Algorithm 1) and the stochastic churn sampler (Algorithm 2). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/disco.h"

/* sigma [B] or [B,1,...] as [B,1,...,1] of the given rank, so it broadcasts per example */
static dc_t per_example(dc_graph *g, dc_t sigma, int rank) {
    const dc_type *t = dc_type_of(g, sigma);
    if (!t || t->shape.rank == rank || rank < 1) return sigma;
    int64_t dims[DC_MAX_RANK];
    dims[0] = t->shape.dim[0];
    for (int i = 1; i < rank; i++) dims[i] = 1;
    return dc_reshape(g, sigma, rank, dims);
}

static int rank_of(dc_graph *g, dc_t x) {
    const dc_type *t = dc_type_of(g, x);
    return t ? t->shape.rank : 0;
}

/* Table 1, "Network and preconditioning": with v = s^2 + sd^2,
 * c_skip = sd^2/v, c_out = s sd / sqrt(v), c_in = 1/sqrt(v), c_noise = ln(s)/4. */
dc_edm_precond dc_edm_precond_graph(dc_graph *g, dc_t sigma, float sigma_data) {
    dc_edm_precond p = { DC_NONE, DC_NONE, DC_NONE, DC_NONE };
    if (!(sigma_data > 0.0f) || !isfinite(sigma_data)) {
        dc_fail_at(g, __FILE__, __LINE__, "edm", "sigma_data must be > 0 (got %g)", (double)sigma_data);
        return p;
    }
    float sd2 = sigma_data * sigma_data;
    dc_t v = dc_add_scalar(g, dc_square(g, sigma), sd2);
    p.c_in = dc_rsqrt(g, v);
    p.c_skip = dc_div(g, dc_scalar(g, sd2), v);
    p.c_out = dc_mul_scalar(g, dc_mul(g, sigma, p.c_in), sigma_data);
    p.c_noise = dc_mul_scalar(g, dc_log(g, sigma), 0.25f);
    return p;
}

#define NOISE_FREQ_MAX 32.0f

dc_t dc_edm_noise_features(dc_graph *g, dc_t c_noise, int64_t freqs) {
    dc_t j = dc_iota(g, 0, 1, &freqs);                                                /* [F] */
    dc_t freq = dc_exp(g, dc_mul_scalar(g, j, logf(NOISE_FREQ_MAX) / (float)(freqs - 1)));
    dc_t arg = dc_mul(g, c_noise, freq);                                              /* [B,F] */
    return dc_concat(g, 1, dc_sin(g, arg), dc_cos(g, arg));                           /* [B,2F] */
}

/* D(x; s) = c_skip(s) x + c_out(s) F(c_in(s) x; c_noise(s)), EDM Eq. 7 */
dc_t dc_edm_denoised(dc_graph *g, const dc_edm_precond *p, dc_t x, dc_t f_out) {
    int r = rank_of(g, x);
    return dc_add(g, dc_mul(g, per_example(g, p->c_skip, r), x),
                  dc_mul(g, per_example(g, p->c_out, r), f_out));
}

dc_t dc_edm_denoiser(dc_graph *g, dc_t x, dc_t sigma, float sigma_data, dc_edm_net_fn net,
                     void *ctx) {
    if (!net) {
        dc_fail_at(g, __FILE__, __LINE__, "edm", "no network callback");
        return DC_NONE;
    }
    dc_edm_precond p = dc_edm_precond_graph(g, sigma, sigma_data);
    dc_t x_in = dc_mul(g, per_example(g, p.c_in, rank_of(g, x)), x);
    dc_t f_out = net(ctx, g, x_in, p.c_noise);
    return dc_edm_denoised(g, &p, x, f_out);
}

/* Table 1, "Training": ln(sigma) ~ N(P_mean, P_std^2) */
dc_t dc_edm_sample_sigma(dc_graph *g, int64_t batch, float p_mean, float p_std) {
    return dc_exp(g, dc_normal(g, 2, ((int64_t[]){ batch, 1 }), .mean = p_mean, .std = p_std));
}

/* Eq. 2: the noisy sample y + n, n ~ N(0, sigma^2 I) */
dc_t dc_edm_add_noise(dc_graph *g, dc_t y, dc_t sigma) {
    const dc_type *t = dc_type_of(g, y);
    if (!t) return dc_add(g, y, sigma);   /* records the invalid-handle error */
    dc_shape s = t->shape;
    dc_t n = dc_normal(g, s.rank, s.dim);
    return dc_add(g, y, dc_mul(g, per_example(g, sigma, s.rank), n));
}

/* Eq. 8 with Table 1's lambda(s) = (s^2 + sd^2) / (s sd)^2: E[lambda(s) ||D(y+n; s) - y||^2],
 * the expectation taken as the batch mean. */
dc_t dc_edm_loss(dc_graph *g, dc_t d, dc_t y, dc_t sigma, float sigma_data) {
    if (!(sigma_data > 0.0f) || !isfinite(sigma_data)) {
        dc_fail_at(g, __FILE__, __LINE__, "edm", "sigma_data must be > 0 (got %g)", (double)sigma_data);
        return DC_NONE;
    }
    int r = rank_of(g, d);
    if (r < 1) return dc_mse(g, d, y);    /* records the invalid-handle error */
    dc_ints axes = { .n = r - 1 };
    for (int i = 1; i < r; i++) axes.v[i - 1] = i;
    dc_t sq = dc_square(g, dc_sub(g, d, y));
    dc_t per = r > 1 ? dc_sum(g, sq, .axes = axes) : sq;      /* [B] */
    float sd2 = sigma_data * sigma_data;
    const dc_type *ts = dc_type_of(g, sigma);
    int64_t batch = ts && ts->shape.rank >= 1 ? ts->shape.dim[0] : 1;
    dc_t s2 = dc_square(g, dc_reshape(g, sigma, 1, &batch));
    dc_t lambda = dc_div(g, dc_add_scalar(g, s2, sd2), dc_mul_scalar(g, s2, sd2));
    return dc_mean(g, dc_mul(g, lambda, per));
}

/* Eq. 5: t_i = (smax^(1/rho) + i/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho, t_N = 0 */
bool dc_edm_schedule(int steps, double sigma_min, double sigma_max, double rho, double *t,
                     char *err, size_t len) {
    if (steps < 1 || !t || !(sigma_min > 0.0) || !(sigma_max >= sigma_min) || !isfinite(sigma_max) ||
        !(rho > 0.0) || !isfinite(rho)) {
        snprintf(err, len, "edm schedule: need steps >= 1, 0 < sigma_min <= sigma_max, rho > 0 "
                 "(got %d, %g, %g, %g)", steps, sigma_min, sigma_max, rho);
        return false;
    }
    double a = pow(sigma_max, 1.0 / rho), b = pow(sigma_min, 1.0 / rho);
    for (int i = 0; i < steps; i++)
        t[i] = steps == 1 ? sigma_max : pow(a + (double)i / (steps - 1) * (b - a), rho);
    t[steps] = 0.0;
    return true;
}

dc_sampler_opts dc_sampler_defaults(void) {
    return (dc_sampler_opts){
        .kind = DC_SAMPLER_HEUN, .steps = 18,
        .sigma_min = DC_EDM_SIGMA_MIN, .sigma_max = DC_EDM_SIGMA_MAX, .rho = DC_EDM_RHO,
        .s_churn = 0.0, .s_tmin = 0.0, .s_tmax = INFINITY, .s_noise = 1.0,
        .seed = 0, .trajectory = NULL,
    };
}

void dc_edm_initial_noise(uint64_t seed, double sigma_max, int64_t n, int64_t dim, float *x) {
    for (int64_t j = 0; j < n * dim; j++) x[j] = (float)(sigma_max * dc_rng_normal(seed, 0, (uint64_t)j));
}

/* The sampler's working buffers and callback. */
typedef struct {
    dc_denoise_fn denoise;
    void *ctx;
    int64_t n, dim, m;          /* m = n * dim */
    float *xin, *den;           /* [m]: a state handed to the denoiser, its output */
    double *d;                  /* [m]: the first drift of the step */
} sampler;

/* d_out = (x - D(x; t)) / t, the ODE's drift dx/dt (EDM Eq. 4 with sigma(t) = t) */
static bool drift(sampler *s, const float *x, double t, double *d_out, char *err, size_t len) {
    if (!s->denoise(s->ctx, x, (float)t, s->den, s->n, s->dim, err, len)) return false;
    for (int64_t j = 0; j < s->m; j++) d_out[j] = ((double)x[j] - (double)s->den[j]) / t;
    return true;
}

/* Raises the noise level from t to t_hat = t (1 + gamma) by adding fresh noise
 * x_hat = x + sqrt(t_hat^2 - t^2) S_noise eps (Algorithm 2, lines 4-6); returns t_hat. */
static double churn(const dc_sampler_opts *o, int i, double t, float *x, int64_t m) {
    double gamma = 0.0;
    if (o->kind == DC_SAMPLER_CHURN && t >= o->s_tmin && t <= o->s_tmax)
        gamma = fmin(o->s_churn / o->steps, sqrt(2.0) - 1.0);
    if (gamma <= 0.0) return t;
    double t_hat = t * (1.0 + gamma);
    double scale = sqrt(t_hat * t_hat - t * t) * o->s_noise;
    for (int64_t j = 0; j < m; j++)
        x[j] = (float)((double)x[j] + scale * dc_rng_normal(o->seed, 1 + (uint64_t)i, (uint64_t)j));
    return t_hat;
}

/* One step from t_hat to t_next (Algorithm 1 lines 4-8 / Algorithm 2 lines 7-11):
 * d = f(x, t_hat), x' = x + (t_next - t_hat) d; unless Euler or t_next = 0, the trapezoid
 * x' = x + (t_next - t_hat) (d + f(x', t_next)) / 2. */
static bool step(sampler *s, dc_sampler_kind kind, double t_hat, double t_next, float *x, char *err,
                 size_t len) {
    if (!drift(s, x, t_hat, s->d, err, len)) return false;
    double h = t_next - t_hat;
    for (int64_t j = 0; j < s->m; j++) s->xin[j] = (float)((double)x[j] + h * s->d[j]);
    if (kind == DC_SAMPLER_EULER || t_next == 0.0) {
        memcpy(x, s->xin, (size_t)s->m * sizeof *x);
        return true;
    }
    if (!s->denoise(s->ctx, s->xin, (float)t_next, s->den, s->n, s->dim, err, len)) return false;
    for (int64_t j = 0; j < s->m; j++) {
        double d2 = ((double)s->xin[j] - (double)s->den[j]) / t_next;
        x[j] = (float)((double)x[j] + h * 0.5 * (s->d[j] + d2));
    }
    return true;
}

static bool check_sampler(const dc_sampler_opts *o, dc_denoise_fn denoise, const float *x, int64_t n,
                          int64_t dim, char *err, size_t len) {
    if (!o || !denoise || !x || n < 1 || dim < 1 || n > INT64_MAX / dim / 8) {
        snprintf(err, len, "edm sample: need options, a denoiser, x, n >= 1 and dim >= 1");
        return false;
    }
    if (o->kind < DC_SAMPLER_EULER || o->kind > DC_SAMPLER_CHURN) {
        snprintf(err, len, "edm sample: unknown sampler kind %d", (int)o->kind);
        return false;
    }
    if (o->kind == DC_SAMPLER_CHURN && (!(o->s_churn >= 0.0) || !(o->s_noise >= 0.0))) {
        snprintf(err, len, "edm sample: need S_churn >= 0 and S_noise >= 0 (got %g, %g)",
                 o->s_churn, o->s_noise);
        return false;
    }
    return true;
}

bool dc_edm_sample(const dc_sampler_opts *o, dc_denoise_fn denoise, void *ctx, float *x,
                   int64_t n, int64_t dim, char *err, size_t len) {
    if (!check_sampler(o, denoise, x, n, dim, err, len)) return false;
    double *t = malloc(((size_t)o->steps + 1) * sizeof *t);
    if (!t) abort();
    if (!dc_edm_schedule(o->steps, o->sigma_min, o->sigma_max, o->rho, t, err, len)) {
        free(t);
        return false;
    }
    sampler s = { .denoise = denoise, .ctx = ctx, .n = n, .dim = dim, .m = n * dim };
    s.xin = malloc((size_t)s.m * sizeof *s.xin);
    s.den = malloc((size_t)s.m * sizeof *s.den);
    s.d = malloc((size_t)s.m * sizeof *s.d);
    if (!s.xin || !s.den || !s.d) abort();
    size_t bytes = (size_t)s.m * sizeof *x;
    bool ok = true;
    for (int i = 0; ok && i < o->steps; i++) {
        if (o->trajectory) memcpy(o->trajectory + (size_t)i * (size_t)s.m, x, bytes);
        double t_hat = churn(o, i, t[i], x, s.m);
        ok = step(&s, o->kind, t_hat, t[i + 1], x, err, len);
    }
    if (ok && o->trajectory) memcpy(o->trajectory + (size_t)o->steps * (size_t)s.m, x, bytes);
    free(s.xin);
    free(s.den);
    free(s.d);
    free(t);
    return ok;
}
