/* sample.c — sampling a trained toy model (disco.h): codes from the prior, then the EDM ODE
 * with Heun conditioned on them through a compiled forward-only denoiser program wrapped in
 * the sampler's denoiser callback, with classifier-free guidance on the latents
 * (D = D_cond + w (D_cond - D_null)); and the evaluation of a model: W2 at several step
 * counts next to the floor, its decomposition, mode coverage, latent purity, and the ODE's
 * curvature and drift Jacobian per sigma band. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/disco.h"

/* the purity of m latents is over their code tuples, when there are at most this many */
#define PURITY_MAX_TUPLES 4096

struct dc_toy_sampler {
    dc_toy_setup setup;
    int64_t n;
    dc_graph *den_g, *prior_g;
    dc_exec *den, *prior;           /* prior: NULL for the baseline */
    dc_tensor *x, *sigma;           /* f32 [n,2], [n,1] */
    dc_tensor *codes, *drop;        /* i32 [n,m], [n,1] (NULL for the baseline) */
    float *d_null;                  /* [n,2] the null pass of a guided call */
    float guidance;
    dc_toy_sample_times times;      /* of the last generation */
    int64_t den_runs;               /* runs of the denoiser program so far */
};

void dc_toy_sampler_free(dc_toy_sampler *s) {
    if (!s) return;
    dc_exec_free(s->den);
    dc_exec_free(s->prior);
    dc_graph_free(s->den_g);
    dc_graph_free(s->prior_g);
    dc_tensor_free(s->x);
    dc_tensor_free(s->sigma);
    dc_tensor_free(s->codes);
    dc_tensor_free(s->drop);
    free(s->d_null);
    free(s);
}

int dc_sampler_programs_ref_summary(const dc_exec *den, const dc_exec *prior, char *buf, size_t len) {
    char d[256], p[256] = "";
    int n = dc_exec_ref_summary(den, d, sizeof d), np = prior ? dc_exec_ref_summary(prior, p, sizeof p) : 0;
    snprintf(buf, len, "%s%s%s%s%s", n ? "denoiser: " : "", d, n && np ? "; " : "", np ? "prior: " : "", p);
    return n + np;
}

int dc_toy_sampler_ref_summary(const dc_toy_sampler *s, char *buf, size_t len) {
    return dc_sampler_programs_ref_summary(s->den, s->prior, buf, len);
}

dc_exec *dc_compile_with_params(dc_graph *g, const dc_exec *params, dc_backend backend, const char *what,
                                char *err, size_t len) {
    if (dc_graph_failed(g)) {
        snprintf(err, len, "%s: %s", what, dc_graph_error(g));
        return NULL;
    }
    dc_exec *e = dc_compile_for(g, 0, backend, NULL, err, len);
    if (e && !dc_exec_copy_params(params, e, &(dc_param_map){ .need_all = true }, err, len)) {
        dc_exec_free(e);
        return NULL;
    }
    return e;
}

dc_toy_sampler *dc_toy_sampler_new(const dc_toy_model *m, int64_t n, dc_backend backend, char *err, size_t len) {
    if (n < 1 || n > (1 << 24)) {
        snprintf(err, len, "toy: the number of points must be in [1, 16777216], got %lld", (long long)n);
        return NULL;
    }
    dc_toy_sampler *s = calloc(1, sizeof *s);
    if (!s) abort(); /* out of memory */
    s->setup = *dc_toy_model_setup(m);
    s->n = n;
    const dc_toy_config *c = &s->setup.model;
    s->den_g = dc_toy_denoise_graph(c, n);
    s->den = dc_compile_with_params(s->den_g, dc_toy_model_params(m), backend, "toy", err, len);
    bool ok = s->den != NULL;
    if (ok && !c->baseline) {
        s->prior_g = dc_prior_sample_graph(&s->setup.prior, n);
        s->prior = dc_compile_with_params(s->prior_g, dc_toy_model_params(m), backend, "toy", err, len);
        ok = s->prior != NULL;
        s->codes = dc_tensor_new(&(dc_type){ DC_I32, { 2, { n, c->m } } });
        s->drop = dc_tensor_new(&(dc_type){ DC_I32, { 2, { n, 1 } } });
    }
    if (!ok) {
        dc_toy_sampler_free(s);
        return NULL;
    }
    s->x = dc_tensor_new(&(dc_type){ DC_F32, { 2, { n, 2 } } });
    s->sigma = dc_tensor_new(&(dc_type){ DC_F32, { 2, { n, 1 } } });
    s->d_null = malloc((size_t)n * 2 * sizeof *s->d_null);
    if (!s->d_null) abort(); /* out of memory */
    return s;
}

dc_toy_sample_opts dc_toy_sample_defaults(void) {
    return (dc_toy_sample_opts){ .heun_steps = 50, .guidance = 0.0f, .temperature = 1.0f, .seed = 0 };
}

const dc_toy_sample_times *dc_toy_sampler_times(const dc_toy_sampler *s) {
    return &s->times;
}

/* One run of the denoiser program with drop = null (0 or 1) for every point; out [n,2]. */
static bool run_denoiser(dc_toy_sampler *s, int null, float *out, char *err, size_t len) {
    s->den_runs++;
    if (s->drop) {
        int32_t *d = s->drop->data;
        for (int64_t i = 0; i < s->n; i++) d[i] = null;
        if (!dc_exec_set_input(s->den, "drop", s->drop, err, len) ||
            !dc_exec_set_input(s->den, "codes", s->codes, err, len))
            return false;
    }
    if (!dc_exec_set_input(s->den, "x", s->x, err, len) || !dc_exec_set_input(s->den, "sigma", s->sigma, err, len) ||
        !dc_exec_run(s->den, err, len))
        return false;
    memcpy(out, dc_exec_output(s->den, 0)->data, (size_t)s->n * 2 * sizeof *out);
    return true;
}

bool dc_toy_denoise(void *sampler, const float *x, float sigma, float *d_out, int64_t n, int64_t dim, char *err,
                    size_t len) {
    dc_toy_sampler *s = sampler;
    if (n != s->n || dim != 2) {
        snprintf(err, len, "toy: the denoiser program takes [%lld,2] points, got [%lld,%lld]", (long long)s->n,
                 (long long)n, (long long)dim);
        return false;
    }
    memcpy(s->x->data, x, (size_t)n * 2 * sizeof *x);
    float *sg = s->sigma->data;
    for (int64_t i = 0; i < n; i++) sg[i] = sigma;
    if (!run_denoiser(s, 0, d_out, err, len)) return false;
    if (s->guidance == 0.0f || !s->drop) return true;
    if (!run_denoiser(s, 1, s->d_null, err, len)) return false;
    float w = s->guidance;
    for (int64_t i = 0; i < n * 2; i++) d_out[i] += w * (d_out[i] - s->d_null[i]);
    return true;
}

static bool opts_ok(const dc_toy_sample_opts *o, char *err, size_t len) {
    const char *bad = NULL;
    if (o->heun_steps < 1 || o->heun_steps > 100000) bad = "the number of Heun steps must be in [1, 100000]";
    else if (!isfinite(o->guidance)) bad = "the guidance scale must be a finite number";
    else if (!(o->temperature > 0) || !isfinite(o->temperature)) bad = "the prior temperature must be positive";
    if (bad) snprintf(err, len, "toy: %s", bad);
    return !bad;
}

bool dc_toy_generate_from(dc_toy_sampler *s, const dc_toy_sample_opts *o, const int32_t *codes, float *pts,
                          float *traj, char *err, size_t len) {
    if (!opts_ok(o, err, len)) return false;
    if (s->codes) memcpy(s->codes->data, codes, (size_t)s->n * (size_t)s->setup.model.m * sizeof *codes);
    s->guidance = o->guidance;
    dc_sampler_opts so = dc_sampler_defaults();
    so.kind = DC_SAMPLER_HEUN;
    so.steps = o->heun_steps;
    so.trajectory = traj;
    int64_t runs0 = s->den_runs;
    double t0 = dc_seconds();
    dc_edm_initial_noise(o->seed + 1, so.sigma_max, s->n, 2, pts);
    bool ok = dc_edm_sample(&so, dc_toy_denoise, s, pts, s->n, 2, err, len);
    s->times = (dc_toy_sample_times){ .ode_s = dc_seconds() - t0, .denoiser_calls = s->den_runs - runs0 };
    return ok;
}

bool dc_toy_generate(dc_toy_sampler *s, const dc_toy_sample_opts *o, float *pts, int32_t *codes, float *traj,
                     char *err, size_t len) {
    if (!opts_ok(o, err, len)) return false;
    int32_t *drawn = NULL;
    double t0 = dc_seconds();
    if (s->prior) {
        drawn = malloc((size_t)s->n * (size_t)s->setup.model.m * sizeof *drawn);
        if (!drawn) abort(); /* out of memory */
        if (!dc_prior_sample(s->prior, &s->setup.prior, o->temperature, o->seed, NULL, drawn, err, len)) {
            free(drawn);
            return false;
        }
        if (codes) memcpy(codes, drawn, (size_t)s->n * (size_t)s->setup.model.m * sizeof *codes);
    }
    double prior_s = dc_seconds() - t0;
    bool ok = dc_toy_generate_from(s, o, drawn, pts, traj, err, len);
    s->times.prior_s = prior_s;
    free(drawn);
    return ok;
}

/* ---- evaluation ------------------------------------------------------------------------- */

dc_toy_eval_opts dc_toy_eval_defaults(void) {
    return (dc_toy_eval_opts){ .n = 2000, .heun_steps = 50, .n_extra = 3, .extra_steps = { 5, 10, 20 },
                               .guidance = 0.0f, .temperature = 1.0f, .seed = 0 };
}

/* Latent purity of the model's encoder on its training points (the code tuples of m latents);
 * NaN for the baseline or when there are too many tuples. */
static bool purity_of(const dc_toy_model *m, dc_backend backend, double *purity, char *err, size_t len) {
    const dc_toy_setup *s = dc_toy_model_setup(m);
    int tuples = 1;
    for (int i = 0; i < s->model.m && tuples <= PURITY_MAX_TUPLES; i++) tuples *= s->model.k;
    *purity = NAN;
    if (s->model.baseline || tuples > PURITY_MAX_TUPLES) return true;
    int64_t n = DC_TOY_TRAIN_N;
    float *xy = malloc((size_t)n * 2 * sizeof *xy);
    int32_t *mode = malloc((size_t)n * sizeof *mode), *tuple = malloc((size_t)n * sizeof *tuple);
    if (!xy || !mode || !tuple) abort(); /* out of memory */
    dc_toy_sample(s->data_seed, n, xy, mode);
    dc_graph *g = dc_toy_encode_graph(&s->model, n);
    dc_exec *e = dc_compile_with_params(g, dc_toy_model_params(m), backend, "toy", err, len);
    dc_tensor y = { .type = { DC_F32, { 2, { n, 2 } } }, .data = xy };
    bool ok = e && dc_exec_set_input(e, "y", &y, err, len) && dc_exec_run(e, err, len);
    if (ok) {
        const int32_t *codes = dc_exec_output(e, 0)->data;   /* [n,m] */
        for (int64_t i = 0; i < n; i++) {
            tuple[i] = 0;
            for (int j = 0; j < s->model.m; j++) tuple[i] = tuple[i] * s->model.k + codes[i * s->model.m + j];
        }
        *purity = dc_latent_purity(tuple, mode, n, tuples, err, len);
        ok = *purity >= 0;
    }
    dc_exec_free(e);
    dc_graph_free(g);
    free(xy);
    free(mode);
    free(tuple);
    return ok;
}

/* Curvature and Jacobian per band along the trajectory traj [(steps+1), n, 2] of the sampler's
 * last generation. */
static bool ode_bands(dc_toy_sampler *s, const float *traj, int steps, dc_toy_metrics *out, char *err, size_t len) {
    double *t = malloc((size_t)(steps + 1) * sizeof *t), *curv = malloc((size_t)steps * sizeof *curv),
           *jac = malloc((size_t)steps * sizeof *jac);
    if (!t || !curv || !jac) abort(); /* out of memory */
    dc_sampler_opts so = dc_sampler_defaults();
    bool ok = dc_edm_schedule(steps, so.sigma_min, so.sigma_max, so.rho, t, err, len) &&
              dc_ode_curvature(dc_toy_denoise, s, traj, t, steps, s->n, 2, curv, err, len) &&
              dc_ode_jacobian(dc_toy_denoise, s, traj, t, steps, s->n, 2, jac, err, len);
    if (ok) {
        dc_band_means(curv, t, steps, out->curv);
        dc_band_means(jac, t, steps, out->jac);
    }
    free(t);
    free(curv);
    free(jac);
    return ok;
}

static bool eval_opts_ok(const dc_toy_eval_opts *o, char *err, size_t len) {
    dc_toy_sample_opts so = { .heun_steps = o->heun_steps, .guidance = o->guidance, .temperature = o->temperature };
    if (!opts_ok(&so, err, len)) return false;
    if (o->n < 2 || o->n > 20000) {
        snprintf(err, len, "toy: the number of evaluation points must be in [2, 20000], got %lld", (long long)o->n);
        return false;
    }
    if (o->n_extra < 0 || o->n_extra > DC_METRICS_MAX_W2_AT) {
        snprintf(err, len, "toy: at most %d extra step counts", DC_METRICS_MAX_W2_AT);
        return false;
    }
    for (int i = 0; i < o->n_extra; i++)
        if (o->extra_steps[i] < 1 || o->extra_steps[i] > 100000) {
            snprintf(err, len, "toy: the number of Heun steps must be in [1, 100000]");
            return false;
        }
    return true;
}

bool dc_toy_evaluate(const dc_toy_model *m, const dc_toy_eval_opts *o, dc_backend backend, dc_toy_metrics *out,
                     float *pts_out, char *err, size_t len) {
    dc_toy_metrics_init(out);
    if (!eval_opts_ok(o, err, len)) return false;
    int64_t n = o->n;
    dc_toy_sampler *s = dc_toy_sampler_new(m, n, backend, err, len);
    if (!s) return false;
    float *pts = malloc((size_t)n * 2 * sizeof *pts), *data = malloc((size_t)n * 2 * sizeof *data),
          *traj = malloc((size_t)(o->heun_steps + 1) * (size_t)n * 2 * sizeof *traj);
    int32_t *mode = malloc((size_t)n * sizeof *mode);
    if (!pts || !data || !traj || !mode) abort(); /* out of memory */
    dc_toy_sample(o->seed + 1000, n, data, mode);
    dc_toy_sample_opts so = { .heun_steps = o->heun_steps, .guidance = o->guidance, .temperature = o->temperature,
                              .seed = o->seed };
    bool ok = dc_toy_generate(s, &so, pts, NULL, traj, err, len) && ode_bands(s, traj, o->heun_steps, out, err, len);
    if (ok) {
        if (pts_out) memcpy(pts_out, pts, (size_t)n * 2 * sizeof *pts);
        out->w2 = dc_w2(pts, data, n, 2, err, len);
        out->w2_floor = dc_w2_floor(n, o->seed + 2000, err, len);
        out->w2_within = dc_within_mode_w2(pts, n, data, mode, n, err, len);
        out->mode_tv = dc_mode_tv(pts, n);
        out->coverage = dc_mode_coverage(pts, n, 0.5);
        out->off_mode = dc_off_mode_fraction(pts, n);
        ok = out->w2 >= 0 && out->w2_floor >= 0 && !(out->w2_within < 0);
    }
    for (int i = 0; ok && i < o->n_extra; i++) {
        so.heun_steps = o->extra_steps[i];
        ok = dc_toy_generate(s, &so, pts, NULL, NULL, err, len);
        out->w2_at_steps[i] = o->extra_steps[i];
        out->w2_at[i] = ok ? dc_w2(pts, data, n, 2, err, len) : NAN;
        out->n_w2_at = i + 1;
        ok = ok && out->w2_at[i] >= 0;
    }
    ok = ok && purity_of(m, backend, &out->purity, err, len);
    dc_toy_sampler_free(s);
    free(pts);
    free(data);
    free(traj);
    free(mode);
    return ok;
}
