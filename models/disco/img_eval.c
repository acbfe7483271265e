/* img_eval.c — evaluating the image models (images.h): fmnist-cnn's penultimate features of
 * samples and of real images, the Frechet distance of samples to the test set next to its
 * floor (a real training subset of the same size), class agreement (fmnist-cnn's class of a
 * sample against its conditioning class) per step count and guidance, the ODE curvature per
 * sigma band, and the latents' usage (codes in use, mutual information with the class). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/images.h"
#include "models/models.h"

#define FEATURES 128

struct dc_img_features {
    int64_t batch;
    dc_graph *g;
    dc_exec *e;
    dc_tensor *x;               /* [B,28,28,1] pixels in [0, 1] */
};

void dc_img_features_free(dc_img_features *f) {
    if (!f) return;
    dc_exec_free(f->e);
    dc_graph_free(f->g);
    dc_tensor_free(f->x);
    free(f);
}

dc_img_features *dc_img_features_new(const char *weights, int64_t batch, dc_backend backend, char *err, size_t len) {
    dc_img_features *f = calloc(1, sizeof *f);
    if (!f) abort(); /* out of memory */
    f->batch = batch;
    f->g = dc_fmnist_cnn_graph(batch);
    f->e = dc_compile_for(f->g, 0, backend, NULL, err, len);
    f->x = dc_tensor_new(&(dc_type){ DC_F32, { 4, { batch, DC_IMG_SIDE, DC_IMG_SIDE, 1 } } });
    if (!f->e || !dc_checkpoint_load(weights, f->e, NULL, 0, err, len)) {
        dc_img_features_free(f);
        return NULL;
    }
    return f;
}

bool dc_img_features_run(dc_img_features *f, const float *images, int64_t n, bool model_space, float *feats,
                         int32_t *pred, char *err, size_t len) {
    float *x = f->x->data;
    for (int64_t at = 0; at < n; at += f->batch) {
        int64_t rows = n - at < f->batch ? n - at : f->batch;
        for (int64_t b = 0; b < f->batch; b++) {
            const float *src = images + (at + (b < rows ? b : 0)) * DC_IMG_PIXELS;
            for (int p = 0; p < DC_IMG_PIXELS; p++) {
                float v = model_space ? (src[p] + 1.0f) * 0.5f : src[p];
                x[b * DC_IMG_PIXELS + p] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
        }
        if (!dc_exec_set_input(f->e, "x", f->x, err, len) || !dc_exec_run(f->e, err, len)) return false;
        const float *logits = dc_exec_output(f->e, 0)->data, *feat = dc_exec_output(f->e, 1)->data;
        memcpy(feats + at * FEATURES, feat, (size_t)(rows * FEATURES) * sizeof *feats);
        for (int64_t b = 0; pred && b < rows; b++) {
            int best = 0;
            for (int c = 1; c < DC_IMG_CLASSES; c++)
                if (logits[b * DC_IMG_CLASSES + c] > logits[b * DC_IMG_CLASSES + best]) best = c;
            pred[at + b] = best;
        }
    }
    return true;
}

dc_img_eval_opts dc_img_eval_defaults(void) {
    return (dc_img_eval_opts){ .n = 5000, .n_steps = 4, .steps = { 5, 10, 18, 35 }, .n_guidance = 3,
                               .guidance = { 0, 1, 2 }, .main_guidance = 1, .curv_n = 200, .batch = 250, .seed = 0 };
}

/* Curvature per band of the Heun trajectory of the last generation of s (n images). */
static bool curvature_bands(dc_img_sampler *s, const float *traj, int steps, int64_t n, double *bands, char *err,
                            size_t len) {
    double *t = malloc((size_t)(steps + 1) * sizeof *t), *curv = malloc((size_t)steps * sizeof *curv);
    if (!t || !curv) abort(); /* out of memory */
    dc_sampler_opts so = dc_sampler_defaults();
    bool ok = dc_edm_schedule(steps, so.sigma_min, so.sigma_max, so.rho, t, err, len) &&
              dc_ode_curvature(dc_img_denoise, s, traj, t, steps, n, DC_IMG_PIXELS, curv, err, len);
    if (ok) dc_band_means(curv, t, steps, bands);
    free(t);
    free(curv);
    return ok;
}

/* Codes of the test images by the model's encoder: per latent the codes in use and the mutual
 * information (bits) between the code and the class, averaged over the latents. */
static bool latent_usage(const dc_img_model *m, const dc_dataset *test, dc_backend backend, dc_img_metrics *out,
                         char *err, size_t len) {
    const dc_img_config *c = &dc_img_model_setup(m)->model;
    enum { B = 500 };
    int64_t n = test->n / B * B;
    dc_graph *g = dc_img_encode_graph(c, B);
    dc_exec *e = dc_compile_with_params(g, dc_img_model_params(m), backend, "fmnist-disco", err, len);
    dc_tensor *x = dc_tensor_new(&(dc_type){ DC_F32, { 4, { B, DC_IMG_SIDE, DC_IMG_SIDE, 1 } } });
    int64_t *joint = calloc((size_t)c->m * (size_t)c->k * DC_IMG_CLASSES, sizeof *joint);
    if (!joint) abort(); /* out of memory */
    bool ok = e != NULL;
    for (int64_t at = 0; ok && at < n; at += B) {
        memcpy(x->data, test->images + at * DC_IMG_PIXELS, (size_t)B * DC_IMG_PIXELS * sizeof(float));
        ok = dc_exec_set_input(e, "x", x, err, len) && dc_exec_run(e, err, len);
        const int32_t *codes = ok ? dc_exec_output(e, 0)->data : NULL;
        for (int64_t b = 0; ok && b < B; b++)
            for (int i = 0; i < c->m; i++)
                joint[((int64_t)i * c->k + codes[b * c->m + i]) * DC_IMG_CLASSES + test->labels[at + b]]++;
    }
    out->codes_used_min = c->k, out->codes_used_mean = 0, out->code_class_mi = 0;
    for (int i = 0; ok && i < c->m; i++) {
        int used = 0;
        double mi = 0, pc[DC_IMG_CLASSES] = { 0 };
        for (int k = 0; k < c->k; k++)
            for (int y = 0; y < DC_IMG_CLASSES; y++) pc[y] += (double)joint[((int64_t)i * c->k + k) * DC_IMG_CLASSES + y] / (double)n;
        for (int k = 0; k < c->k; k++) {
            const int64_t *row = joint + ((int64_t)i * c->k + k) * DC_IMG_CLASSES;
            double pk = 0;
            for (int y = 0; y < DC_IMG_CLASSES; y++) pk += (double)row[y] / (double)n;
            used += pk > 0;
            for (int y = 0; y < DC_IMG_CLASSES; y++)
                if (row[y] > 0) {
                    double p = (double)row[y] / (double)n;
                    mi += p * log2(p / (pk * pc[y]));
                }
        }
        out->codes_used_min = used < out->codes_used_min ? used : out->codes_used_min;
        out->codes_used_mean += (double)used / c->m;
        out->code_class_mi += mi / c->m;
    }
    free(joint);
    dc_tensor_free(x);
    dc_exec_free(e);
    dc_graph_free(g);
    return ok;
}

bool dc_img_evaluate(const dc_img_model *m, dc_img_features *f, const float *test_feats, int64_t n_test,
                     const dc_dataset *test, const dc_img_eval_opts *o, dc_backend backend, dc_img_metrics *out,
                     float *samples, int32_t *labels, char *err, size_t len) {
    const dc_img_config *c = &dc_img_model_setup(m)->model;
    int n_g = c->baseline ? 1 : o->n_guidance;
    *out = (dc_img_metrics){ .baseline = c->baseline, .n_steps = o->n_steps, .n_guidance = n_g };
    for (int b = 0; b < DC_SIGMA_BANDS; b++) out->curv[b] = NAN;
    out->codes_used_mean = out->code_class_mi = NAN;
    int64_t n = o->n;
    float *img = malloc((size_t)(n * DC_IMG_PIXELS) * sizeof *img), *feat = malloc((size_t)(n * FEATURES) * sizeof *feat);
    int32_t *lab = malloc((size_t)n * sizeof *lab), *pred = malloc((size_t)n * sizeof *pred);
    if (!img || !feat || !lab || !pred) abort(); /* out of memory */
    for (int64_t i = 0; i < n; i++) lab[i] = (int32_t)(i % DC_IMG_CLASSES);
    dc_img_sampler *s = dc_img_sampler_new(m, o->batch < n ? o->batch : n, backend, err, len);
    bool ok = s != NULL;
    int main_steps = o->steps[o->n_steps - 1];
    for (int si = 0; ok && si < o->n_steps; si++)
        for (int gi = 0; ok && gi < n_g; gi++) {
            dc_img_sample_opts so = dc_img_sample_defaults();
            so.steps = o->steps[si], so.guidance = c->baseline ? 0.0f : o->guidance[gi], so.seed = o->seed;
            out->steps[si] = so.steps, out->guidance[gi] = so.guidance;
            out->fd[si][gi] = out->agreement[si][gi] = NAN;
            if (!c->baseline && so.guidance != o->main_guidance && o->guidance_steps && so.steps != o->guidance_steps)
                continue;
            double t0 = dc_seconds();
            ok = dc_img_generate(s, &so, n, lab, NULL, img, NULL, err, len) &&
                 dc_img_features_run(f, img, n, true, feat, pred, err, len);
            if (!ok) break;
            int64_t agree = 0;
            for (int64_t i = 0; i < n; i++) agree += pred[i] == lab[i];
            out->nfe[si][gi] = dc_img_sampler_times(s)->nfe;
            out->agreement[si][gi] = (double)agree / (double)n;
            out->fd[si][gi] = dc_frechet_distance(feat, n, test_feats, n_test, FEATURES, err, len);
            ok = out->fd[si][gi] >= 0;
            if (ok && o->progress) {
                fprintf(o->progress, "  %s, %d Heun steps (NFE %lld), guidance %g: FD %.3f, agreement %.3f (%lld images, "
                        "%.0f s)\n", c->baseline ? "EDM" : "DisCo-Diff", so.steps, (long long)out->nfe[si][gi],
                        (double)so.guidance, out->fd[si][gi], out->agreement[si][gi], (long long)n, dc_seconds() - t0);
                fflush(o->progress);
            }
            if (ok && samples && so.steps == main_steps && (c->baseline || so.guidance == o->main_guidance)) {
                memcpy(samples, img, (size_t)(n * DC_IMG_PIXELS) * sizeof *img);
                memcpy(labels, lab, (size_t)n * sizeof *lab);
            }
        }
    if (ok && o->curv_n > 0) {
        int64_t cn = o->curv_n < n ? o->curv_n : n;
        float *traj = malloc((size_t)(main_steps + 1) * (size_t)cn * DC_IMG_PIXELS * sizeof *traj);
        if (!traj) abort(); /* out of memory */
        dc_img_sampler_free(s);
        s = dc_img_sampler_new(m, o->batch < cn ? o->batch : cn, backend, err, len);
        dc_img_sample_opts so = dc_img_sample_defaults();
        so.steps = main_steps, so.seed = o->seed, so.trajectory = traj;
        ok = s && dc_img_generate(s, &so, cn, lab, NULL, img, NULL, err, len) &&
             curvature_bands(s, traj, main_steps, cn, out->curv, err, len);
        free(traj);
    }
    if (ok && !c->baseline) ok = latent_usage(m, test, backend, out, err, len);
    dc_img_sampler_free(s);
    free(img);
    free(feat);
    free(lab);
    free(pred);
    return ok;
}
