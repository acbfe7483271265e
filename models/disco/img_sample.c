/* img_sample.c — sampling a trained image model (images.h): codes from the class-conditional
 * prior, then the EDM sampler (Euler, Heun or churn) over all n images at once, its denoiser
 * callback running one compiled forward-only program over chunks of the program's batch, with
 * classifier-free guidance on the latents (D = D_cond + w (D_cond - D_null), D_null with every
 * latent set to the null code). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/images.h"

struct dc_img_sampler {
    dc_img_setup setup;
    int64_t batch;                  /* the programs' batch */
    dc_graph *den_g, *prior_g;
    dc_exec *den, *prior;           /* prior: NULL for the baseline */
    dc_tensor *x, *sigma, *label;   /* staging of one chunk: [B,28,28,1], [B,1], i32 [B] */
    dc_tensor *codes;               /* i32 [B,m] (NULL for the baseline) */
    /* the generation under way */
    int64_t n;
    int32_t *labels, *all_codes;    /* [n], [n,m] (NULL for the baseline): copies */
    float guidance;
    float *d_null;                  /* [n,784]: the null pass of a guided call */
    int64_t den_runs;               /* runs of the denoiser program so far */
    dc_img_sample_times times;
};

void dc_img_sampler_free(dc_img_sampler *s) {
    if (!s) return;
    dc_exec_free(s->den);
    dc_exec_free(s->prior);
    dc_graph_free(s->den_g);
    dc_graph_free(s->prior_g);
    dc_tensor_free(s->x);
    dc_tensor_free(s->sigma);
    dc_tensor_free(s->label);
    dc_tensor_free(s->codes);
    free(s->labels);
    free(s->all_codes);
    free(s->d_null);
    free(s);
}

int dc_img_sampler_ref_summary(const dc_img_sampler *s, char *buf, size_t len) {
    return dc_sampler_programs_ref_summary(s->den, s->prior, buf, len);
}

dc_img_sampler *dc_img_sampler_new(const dc_img_model *m, int64_t batch, dc_backend backend, char *err,
                                   size_t len) {
    if (batch < 1 || batch > 65536) {
        snprintf(err, len, "fmnist-disco: the sampling batch must be in [1, 65536], got %lld", (long long)batch);
        return NULL;
    }
    dc_img_sampler *s = calloc(1, sizeof *s);
    if (!s) abort(); /* out of memory */
    s->setup = *dc_img_model_setup(m);
    s->batch = batch;
    const dc_img_config *c = &s->setup.model;
    s->den_g = dc_img_denoise_graph(c, batch);
    s->den = dc_compile_with_params(s->den_g, dc_img_model_params(m), backend, "fmnist-disco", err, len);
    bool ok = s->den != NULL;
    if (ok && !c->baseline) {
        s->prior_g = dc_prior_sample_graph(&s->setup.prior, batch);
        s->prior = dc_compile_with_params(s->prior_g, dc_img_model_params(m), backend, "fmnist-disco", err, len);
        ok = s->prior != NULL;
        s->codes = dc_tensor_new(&(dc_type){ DC_I32, { 2, { batch, c->m } } });
    }
    if (!ok) {
        dc_img_sampler_free(s);
        return NULL;
    }
    s->x = dc_tensor_new(&(dc_type){ DC_F32, { 4, { batch, DC_IMG_SIDE, DC_IMG_SIDE, 1 } } });
    s->sigma = dc_tensor_new(&(dc_type){ DC_F32, { 2, { batch, 1 } } });
    s->label = dc_tensor_new(&(dc_type){ DC_I32, { 1, { batch } } });
    return s;
}

dc_img_sample_opts dc_img_sample_defaults(void) {
    return (dc_img_sample_opts){ .sampler = DC_SAMPLER_HEUN, .steps = 18, .guidance = 0.0f, .temperature = 1.0f,
                                 .seed = 0 };
}

const dc_img_sample_times *dc_img_sampler_times(const dc_img_sampler *s) { return &s->times; }

/* Rows [at, at + rows) of the generation into the chunk's staging (rows <= batch; the rest of
 * the chunk repeats row `at`, and its outputs are dropped), codes all null when null is set. */
static bool stage_chunk(dc_img_sampler *s, const float *x, float sigma, int64_t at, int64_t rows, bool null,
                        char *err, size_t len) {
    float *xs = s->x->data, *sg = s->sigma->data;
    int32_t *lb = s->label->data;
    int m = s->setup.model.m;
    for (int64_t b = 0; b < s->batch; b++) {
        int64_t r = at + (b < rows ? b : 0);
        memcpy(xs + b * DC_IMG_PIXELS, x + r * DC_IMG_PIXELS, DC_IMG_PIXELS * sizeof *xs);
        sg[b] = sigma;
        lb[b] = s->labels[r];
        if (s->codes)
            for (int i = 0; i < m; i++)
                ((int32_t *)s->codes->data)[b * m + i] = null ? s->setup.model.k : s->all_codes[r * m + i];
    }
    return dc_exec_set_input(s->den, "x", s->x, err, len) && dc_exec_set_input(s->den, "sigma", s->sigma, err, len) &&
           dc_exec_set_input(s->den, "label", s->label, err, len) &&
           (!s->codes || dc_exec_set_input(s->den, "codes", s->codes, err, len));
}

/* D(x; sigma) of all n images, conditioned (null = false) or on the null code; out [n,784] */
static bool denoise_all(dc_img_sampler *s, const float *x, float sigma, bool null, float *out, char *err,
                        size_t len) {
    for (int64_t at = 0; at < s->n; at += s->batch) {
        int64_t rows = s->n - at < s->batch ? s->n - at : s->batch;
        s->den_runs++;
        if (!stage_chunk(s, x, sigma, at, rows, null, err, len) || !dc_exec_run(s->den, err, len)) return false;
        memcpy(out + at * DC_IMG_PIXELS, dc_exec_output(s->den, 0)->data, (size_t)(rows * DC_IMG_PIXELS) * sizeof *out);
    }
    return true;
}

bool dc_img_denoise(void *sampler, const float *x, float sigma, float *d_out, int64_t n, int64_t dim, char *err,
                    size_t len) {
    dc_img_sampler *s = sampler;
    if (n != s->n || dim != DC_IMG_PIXELS) {
        snprintf(err, len, "fmnist-disco: the sampler holds [%lld,%d] images, got [%lld,%lld]", (long long)s->n,
                 DC_IMG_PIXELS, (long long)n, (long long)dim);
        return false;
    }
    if (!denoise_all(s, x, sigma, false, d_out, err, len)) return false;
    if (s->guidance == 0.0f || !s->codes) return true;
    if (!denoise_all(s, x, sigma, true, s->d_null, err, len)) return false;
    float w = s->guidance;
    for (int64_t i = 0; i < n * DC_IMG_PIXELS; i++) d_out[i] += w * (d_out[i] - s->d_null[i]);
    return true;
}

static bool opts_ok(const dc_img_sample_opts *o, int64_t n, const int32_t *labels, char *err, size_t len) {
    char bad[128] = "";
    if (n < 1 || n > (1 << 22)) snprintf(bad, sizeof bad, "the number of images must be in [1, 4194304]");
    else if (o->steps < 1 || o->steps > 100000) snprintf(bad, sizeof bad, "the number of steps must be in [1, 100000]");
    else if (!isfinite(o->guidance)) snprintf(bad, sizeof bad, "the guidance scale must be a finite number");
    else if (!(o->temperature > 0) || !isfinite(o->temperature))
        snprintf(bad, sizeof bad, "the prior temperature must be positive");
    for (int64_t i = 0; !bad[0] && i < n; i++)
        if (labels[i] < 0 || labels[i] >= DC_IMG_CLASSES)
            snprintf(bad, sizeof bad, "class %d of image %lld is outside [0, %d)", labels[i], (long long)i,
                     DC_IMG_CLASSES);
    if (bad[0]) snprintf(err, len, "fmnist-disco: %s", bad);
    return !bad[0];
}

/* EDM's stochastic settings for churn (their ImageNet-64 values) */
static dc_sampler_opts sampler_opts(const dc_img_sample_opts *o) {
    dc_sampler_opts so = dc_sampler_defaults();
    so.kind = o->sampler;
    so.steps = o->steps;
    so.seed = o->seed + 2;
    if (o->sampler == DC_SAMPLER_CHURN) so.s_churn = 40, so.s_tmin = 0.05, so.s_tmax = 50, so.s_noise = 1.003;
    return so;
}

bool dc_img_generate(dc_img_sampler *s, const dc_img_sample_opts *o, int64_t n, const int32_t *labels,
                     const int32_t *codes, float *images, int32_t *codes_out, char *err, size_t len) {
    if (!opts_ok(o, n, labels, err, len)) return false;
    const dc_img_config *c = &s->setup.model;
    int32_t *drawn = NULL;
    double t0 = dc_seconds();
    bool ok = true;
    if (!c->baseline && !codes) {
        drawn = malloc((size_t)(n * c->m) * sizeof *drawn);
        int32_t *chunk = malloc((size_t)(s->batch * c->m) * sizeof *chunk), *cls = malloc((size_t)s->batch * sizeof *cls);
        if (!drawn || !chunk || !cls) abort(); /* out of memory */
        for (int64_t at = 0; ok && at < n; at += s->batch) {
            int64_t rows = n - at < s->batch ? n - at : s->batch;
            for (int64_t b = 0; b < s->batch; b++) cls[b] = labels[at + (b < rows ? b : 0)];
            ok = dc_prior_sample(s->prior, &s->setup.prior, o->temperature, dc_step_seed(o->seed, at / s->batch), cls,
                                 chunk, err, len);
            if (ok) memcpy(drawn + at * c->m, chunk, (size_t)(rows * c->m) * sizeof *chunk);
        }
        free(chunk);
        free(cls);
        codes = drawn;
    }
    double t1 = dc_seconds();
    if (ok && !c->baseline && codes_out) memcpy(codes_out, codes, (size_t)(n * c->m) * sizeof *codes_out);
    s->n = n, s->guidance = o->guidance;
    free(s->labels);
    free(s->all_codes);
    s->labels = malloc((size_t)n * sizeof *s->labels);
    s->all_codes = c->baseline ? NULL : malloc((size_t)(n * c->m) * sizeof *s->all_codes);
    if (!s->labels || (!c->baseline && !s->all_codes)) abort(); /* out of memory */
    memcpy(s->labels, labels, (size_t)n * sizeof *labels);
    if (ok && s->all_codes) memcpy(s->all_codes, codes, (size_t)(n * c->m) * sizeof *codes);
    free(s->d_null);
    s->d_null = o->guidance != 0.0f && !c->baseline ? malloc((size_t)(n * DC_IMG_PIXELS) * sizeof *s->d_null) : NULL;
    if (o->guidance != 0.0f && !c->baseline && !s->d_null) abort(); /* out of memory */
    dc_sampler_opts so = sampler_opts(o);
    so.trajectory = o->trajectory;
    int64_t runs0 = s->den_runs, chunks = (n + s->batch - 1) / s->batch;
    if (ok) {
        dc_edm_initial_noise(o->seed + 1, so.sigma_max, o->same_noise ? 1 : n, DC_IMG_PIXELS, images);
        for (int64_t i = 1; o->same_noise && i < n; i++)
            memcpy(images + i * DC_IMG_PIXELS, images, DC_IMG_PIXELS * sizeof *images);
        ok = dc_edm_sample(&so, dc_img_denoise, s, images, n, DC_IMG_PIXELS, err, len);
    }
    s->times = (dc_img_sample_times){ .prior_s = t1 - t0, .ode_s = dc_seconds() - t1,
                                      .nfe = (s->den_runs - runs0) / chunks };
    free(drawn);
    return ok;
}
