/* images.c — the image model's own commands: `disco sample fmnist-disco` (images to .npy and a
 * PNG grid) and `disco eval fmnist-disco` (Frechet distance and its floor, class agreement,
 * curvature and latent usage into metrics.json and a table), over the API of models/disco/images.h. `disco sample` and `disco eval` pick these
 * when their first argument names the image model (tools/disco.c); `disco train fmnist-disco`
 * is the registry's model (models/fmnist_disco.c). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/images.h"
#include "models/models.h"
#include "models/train.h"
#include "tools/cli.h"

#define GRID_MAX_COLS 20

static const char *const sampler_names[] = { "euler", "heun", "churn", NULL };

typedef struct {
    const char *model, *ckpt, *out;
    int64_t n, batch, cls;
    int threads, backend;
    dc_img_sample_opts so;
} sample_args;

/* DIR/FILE into path; false and err when it does not fit */
static bool out_file(const char *dir, const char *file, char *path, size_t n, char *err, size_t len) {
    if ((size_t)snprintf(path, n, "%s/%s", dir, file) < n) return true;
    snprintf(err, len, "--out: the path %s/%s is too long", dir, file);
    return false;
}

/* images [n,784] in model space, labels [n], codes [n,m] (NULL: none) into DIR/samples.npy
 * (N,28,28,1), labels.npy, codes.npy and grid.png (up to 10 rows of 20) */
static bool write_outputs(const char *dir, const float *images, const int32_t *labels, const int32_t *codes,
                          int64_t n, int m, char *err, size_t len) {
    char path[4096];
    if (!dc_train_out_path(dir, "samples.npy", path, sizeof path, err, len)) return false;
    dc_tensor *x = dc_tensor_new(&(dc_type){ DC_F32, { 4, { n, DC_IMG_SIDE, DC_IMG_SIDE, 1 } } });
    dc_tensor *y = dc_tensor_new(&(dc_type){ DC_I32, { 1, { n } } });
    dc_tensor *z = codes ? dc_tensor_new(&(dc_type){ DC_I32, { 2, { n, m } } }) : NULL;
    memcpy(x->data, images, (size_t)(n * DC_IMG_PIXELS) * sizeof *images);
    memcpy(y->data, labels, (size_t)n * sizeof *labels);
    if (z) memcpy(z->data, codes, (size_t)(n * m) * sizeof *codes);
    int cols = n < GRID_MAX_COLS ? (int)n : GRID_MAX_COLS, rows = (int)(n / cols < 10 ? n / cols : 10);
    bool ok = dc_npy_write(path, x, err, len) && out_file(dir, "labels.npy", path, sizeof path, err, len) &&
              dc_npy_write(path, y, err, len) &&
              (!z || (out_file(dir, "codes.npy", path, sizeof path, err, len) && dc_npy_write(path, z, err, len))) &&
              out_file(dir, "grid.png", path, sizeof path, err, len) &&
              dc_plot_image_grid(path, images, DC_IMG_SIDE, rows, cols, 2, err, len);
    dc_tensor_free(x);
    dc_tensor_free(y);
    dc_tensor_free(z);
    return ok;
}

static int cmd_sample(int argc, char **argv) {
    sample_args a = { .out = "samples", .n = 100, .batch = 250, .cls = -1, .backend = -1,
                      .so = dc_img_sample_defaults() };
    int st = dc_cli_parse(&dc_cmd_sample_images, &a, argc, argv, &a.model);
    if (st) return st;
    if (a.threads > 0) omp_set_num_threads(a.threads);
    if (!dc_cli_backend("sample", &a.backend, DC_BACKEND_AUTO)) return EXIT_USAGE;
    char err[DC_ERR_LEN];
    dc_img_model *m = dc_img_load(a.ckpt, err, sizeof err);
    if (!m) return dc_run_error("sample", err);
    const dc_img_config *c = &dc_img_model_setup(m)->model;
    int64_t n = a.n, batch = a.batch < n ? a.batch : n;
    int lat = c->baseline ? 0 : c->m;
    float *images = malloc((size_t)(n * DC_IMG_PIXELS) * sizeof *images);
    int32_t *labels = malloc((size_t)n * sizeof *labels), *codes = lat ? malloc((size_t)(n * lat) * sizeof *codes) : NULL;
    if (!images || !labels || (lat && !codes)) abort(); /* out of memory */
    for (int64_t i = 0; i < n; i++) labels[i] = a.cls >= 0 ? (int32_t)a.cls : (int32_t)(i % DC_IMG_CLASSES);
    dc_img_sampler *s = dc_img_sampler_new(m, batch, (dc_backend)a.backend, err, sizeof err);
    double t0 = dc_seconds();
    bool ok = s && dc_img_generate(s, &a.so, n, labels, NULL, images, codes, err, sizeof err);
    double total_s = dc_seconds() - t0;
    ok = ok && write_outputs(a.out, images, labels, codes, n, lat, err, sizeof err);
    if (ok) {
        char ops[600];
        int n_ref = dc_img_sampler_ref_summary(s, ops, sizeof ops);
        fprintf(stderr, "sampler: %d steps on ref%s%s\n", n_ref, n_ref ? ": " : "", ops);
        const dc_img_sample_times *t = dc_img_sampler_times(s);
        printf("sampled %lld images in %.2f s (%.1f images/s): prior %.2f s, ODE %.2f s; %s, %d steps, NFE %lld, "
               "guidance %g\n", (long long)n, total_s, (double)n / total_s, t->prior_s, t->ode_s,
               sampler_names[a.so.sampler], a.so.steps, (long long)t->nfe, (double)a.so.guidance);
        printf("wrote %s/samples.npy, labels.npy%s, grid.png\n", a.out, lat ? ", codes.npy" : "");
    }
    dc_img_sampler_free(s);
    free(images);
    free(labels);
    free(codes);
    dc_img_model_free(m);
    return ok ? 0 : dc_run_error("sample", err);
}

static const dc_opt sample_options[] = {
    DC_OPT_STR_REQUIRED("--ckpt", "FILE", sample_args, ckpt,
                        "a model file of 'disco train fmnist-disco' (DisCo-Diff or --baseline)"),
    DC_OPT_INT("--class", "C", sample_args, cls, 0, DC_IMG_CLASSES - 1,
               "the class of every image (default: image i has class i mod 10)"),
    DC_OPT_ENUM("--sampler", sample_args, so.sampler, sampler_names,
                "EDM's samplers: Euler, Heun (default), or Heun with churn\n"
                "(S_churn 40, S_tmin 0.05, S_tmax 50, S_noise 1.003)"),
    DC_OPT_INT("--steps", "N", sample_args, so.steps, 1, 100000, "steps on the EDM schedule (default 18)"),
    DC_OPT_NUM("--guidance", "W", sample_args, so.guidance, -1e30, 1e30,
               "classifier-free guidance on the latents, D = D_cond + W (D_cond - D_null);\n"
               "0 (default) is plain conditional sampling"),
    DC_OPT_POS("--temperature", "T", sample_args, so.temperature, 1e30, "the prior's sampling temperature (default 1)"),
    DC_OPT_INT("--n", "N", sample_args, n, 1, 1 << 22, "images (default 100)"),
    DC_OPT_INT("--batch", "B", sample_args, batch, 1, 65536, "images per run of the denoiser program (default 250)"),
    DC_OPT_U64("--seed", "S", sample_args, so.seed, "codes from seed S, initial noise from S+1 (default 0)"),
    DC_OPT_STR("--out", "DIR", sample_args, out,
               "writes DIR/samples.npy (float32 [n,28,28,1] in about [-1,1]), labels.npy\n"
               "(int32 [n]), codes.npy (int32 [n,m], DisCo-Diff) and grid.png (default samples)"),
    DC_OPT_THREADS(sample_args, threads),
    DC_OPT_BACKEND(sample_args, backend),
    { 0 }
};

const dc_command dc_cmd_sample_images = {
    .name = "sample", .fn = cmd_sample, .summary = "sample a trained image model", .args = "fmnist-disco",
    .arg_what = "model", .options = sample_options,
    .about = "Draws latent codes from the model's class-conditional prior (DisCo-Diff), then runs an EDM\n"
             "sampler conditioned on the classes and codes, and writes the images, their classes and codes\n"
             "as .npy and a PNG grid. Prints how long sampling took apart from compiling and the number of\n"
             "denoiser evaluations per image (NFE: 2N - 1 for Heun, doubled by guidance).\n",
};

/* ---- disco eval fmnist-disco ------------------------------------------------------------- */

typedef struct {
    const char *model, *ckpt, *baseline_ckpt, *cnn_dir, *out, *data_dir;
    int threads, backend;
    dc_img_eval_opts eo;
} eval_args;

/* a comma-separated list of up to max integers in [lo, hi] (into ints) or floats (into floats) */
static bool parse_list(const char *what, const char *v, int max, double lo, double hi, int *ints, float *floats,
                       int *count, char *err, size_t len) {
    *count = 0;
    for (const char *p = v; *p; p += *p == ',') {
        char *end;
        double x = strtod(p, &end);
        if (end == p || (*end && *end != ',') || x < lo || x > hi || *count == max || (ints && x != (int)x)) {
            snprintf(err, len, "%s takes up to %d comma-separated numbers from %g to %g, got '%s'", what, max, lo, hi, v);
            return false;
        }
        if (ints) ints[*count] = (int)x;
        else floats[*count] = (float)x;
        ++*count;
        p = end;
    }
    if (*count == 0) snprintf(err, len, "%s: the list is empty", what);
    return *count > 0;
}

static bool parse_steps(const char *v, void *field, char *err, size_t len) {
    dc_img_eval_opts *o = field;
    return parse_list("--steps", v, DC_IMG_MAX_STEP_COUNTS, 1, 100000, o->steps, NULL, &o->n_steps, err, len);
}

static bool parse_guidance(const char *v, void *field, char *err, size_t len) {
    dc_img_eval_opts *o = field;
    return parse_list("--guidance", v, DC_IMG_MAX_GUIDANCES, -100, 100, NULL, o->guidance, &o->n_guidance, err, len);
}

/* DIR/fmnist-cnn.weights, trained by `disco train fmnist-cnn`'s model when missing */
static bool cnn_weights(const char *dir, const char *data_dir, dc_backend backend, char *path, size_t n, char *err,
                        size_t len) {
    if (!dc_train_out_path(dir, "fmnist-cnn.weights", path, n, err, len)) return false;
    FILE *f = fopen(path, "rb");
    if (f) return fclose(f), true;
    const dc_model *m = dc_model_find("fmnist-cnn");
    dc_train_config c;
    dc_model_defaults(m, &c, NULL);
    c.backend = backend;
    printf("fmnist-cnn: %s is missing; training it (about a minute)\n", path);
    fflush(stdout);
    bool ok = m->train(&c, &(dc_train_request){ .out_dir = dir, .data_dir = data_dir, .out = stdout }, err, len);
    fflush(stdout);
    return ok;
}

static void json_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}

typedef struct {
    const eval_args *a;
    double floor;
    const dc_img_metrics *mt[2];
    const char *names[2];
    dc_img_report reports[2];
} metrics_doc;

static bool write_metrics(FILE *f, void *ctx) {
    const metrics_doc *d = ctx;
    static const char *const bands[DC_SIGMA_BANDS] = { "gt10", "1_10", "01_1", "lt01" };
    fprintf(f, "{\"n\": %lld, \"fd_floor\": ", (long long)d->a->eo.n);
    json_number(f, d->floor);
    for (int k = 0; k < 2; k++) {
        const dc_img_metrics *m = d->mt[k];
        if (!m) continue;
        fprintf(f, ",\n \"%s\": {\"runs\": [", d->names[k]);
        bool first = true;
        for (int s = 0; s < m->n_steps; s++)
            for (int g = 0; g < m->n_guidance; g++) {
                if (isnan(m->fd[s][g])) continue;
                fprintf(f, "%s\n   {\"steps\": %d, \"nfe\": %lld, \"guidance\": %g, \"fd\": ", first ? "" : ",",
                        m->steps[s], (long long)m->nfe[s][g], (double)m->guidance[g]);
                json_number(f, m->fd[s][g]);
                fputs(", \"agreement\": ", f);
                json_number(f, m->agreement[s][g]);
                fputc('}', f);
                first = false;
            }
        fputs("]", f);
        for (int b = 0; b < DC_SIGMA_BANDS; b++) {
            fprintf(f, ", \"curv_%s\": ", bands[b]);
            json_number(f, m->curv[b]);
        }
        const dc_img_report *r = &d->reports[k];
        fprintf(f, ", \"params\": %lld, \"prior_params\": %lld, \"train_s\": ", (long long)r->params,
                (long long)r->prior_params);
        json_number(f, r->train_s);
        fputs(", \"train_images_per_s\": ", f);
        json_number(f, r->images_per_s);
        fputs(", \"prior_s\": ", f);
        json_number(f, r->prior_s);
        if (!m->baseline) {
            fprintf(f, ", \"codes_used_min\": %d, \"codes_used_mean\": ", m->codes_used_min);
            json_number(f, m->codes_used_mean);
            fputs(", \"code_class_mi_bits\": ", f);
            json_number(f, m->code_class_mi);
        }
        fputc('}', f);
    }
    fputs("}\n", f);
    return !ferror(f);
}

/* What the training of each model reported (from its model file). */
static void print_training(const metrics_doc *d) {
    printf("\n%-8s %10s %12s %9s %12s %12s %9s\n", "model", "params", "prior params", "train s", "train img/s",
           "loss", "prior s");
    for (int k = 0; k < 2; k++)
        if (d->mt[k]) {
            const dc_img_report *r = &d->reports[k];
            printf("%-8s %10lld %12lld %9.0f %12.1f %12.4f %9.0f\n", d->names[k], (long long)r->params,
                   (long long)r->prior_params, r->train_s, r->images_per_s, r->loss, r->prior_s);
        }
}

static void print_table(const metrics_doc *d) {
    printf("\nFrechet distance to the test set (fmnist-cnn features, %lld samples; floor %.3f = a real training "
           "subset of the same size)\n", (long long)d->a->eo.n, d->floor);
    printf("%-14s %6s %5s %9s %10s\n", "model", "steps", "NFE", "FD", "agreement");
    for (int k = 0; k < 2; k++) {
        const dc_img_metrics *m = d->mt[k];
        for (int s = 0; m && s < m->n_steps; s++)
            for (int g = 0; g < m->n_guidance; g++) {
                if (isnan(m->fd[s][g])) continue;
                char name[32];
                snprintf(name, sizeof name, m->baseline ? "%s" : "%s w=%g", d->names[k], (double)m->guidance[g]);
                printf("%-14s %6d %5lld %9.3f %10.3f\n", name, m->steps[s], (long long)m->nfe[s][g], m->fd[s][g],
                       m->agreement[s][g]);
            }
    }
    printf("\nODE curvature per sigma band (>10, 1-10, 0.1-1, <0.1)\n");
    for (int k = 0; k < 2; k++)
        if (d->mt[k])
            printf("%-14s %9.4g %9.4g %9.4g %9.4g\n", d->names[k], d->mt[k]->curv[0], d->mt[k]->curv[1],
                   d->mt[k]->curv[2], d->mt[k]->curv[3]);
    for (int k = 0; k < 2; k++)
        if (d->mt[k] && !d->mt[k]->baseline)
            printf("\nlatents of %s on the test images: codes in use %.1f per latent (fewest %d), mutual "
                   "information with the class %.3f bits per latent\n", d->names[k], d->mt[k]->codes_used_mean,
                   d->mt[k]->codes_used_min, d->mt[k]->code_class_mi);
}

/* Evaluates the model file path into *mt, writing DIR/samples_NAME.npy, labels_NAME.npy and
 * grid_NAME.png of the main samples; name receives "disco" or "edm". */
#define GROUP_DRAWS 10

/* DisCo-Diff's latents one at a time, for one class (0) and one initial noise, from codes drawn
 * from the prior (draw 0 is the base): row i of DIR/grid_latents.png sets latent i to each of
 * the k codes in turn; with hierarchical latents, row g of DIR/grid_groups.png replaces group
 * g's latents (g = 0: those read at 7x7, 1: at 14x14) by those of draws 0 .. 9. */
static bool latents_grids(const eval_args *a, const dc_img_model *m, char *err, size_t len) {
    const dc_img_config *c = &dc_img_model_setup(m)->model;
    int64_t n = (int64_t)c->m * (c->k > GROUP_DRAWS ? c->k : GROUP_DRAWS);
    float *img = malloc((size_t)(n * DC_IMG_PIXELS) * sizeof *img);
    int32_t *labels = calloc((size_t)n, sizeof *labels), *codes = malloc((size_t)(n * c->m) * sizeof *codes);
    int32_t *draws = malloc((size_t)(GROUP_DRAWS * c->m) * sizeof *draws);
    if (!img || !labels || !codes || !draws) abort(); /* out of memory */
    dc_img_sample_opts so = dc_img_sample_defaults();
    so.seed = a->eo.seed + 7, so.same_noise = true, so.steps = 1;
    dc_img_sampler *s = dc_img_sampler_new(m, a->eo.batch < n ? a->eo.batch : n, (dc_backend)a->backend, err, len);
    bool ok = s && dc_img_generate(s, &so, GROUP_DRAWS, labels, NULL, img, draws, err, len);
    so.steps = a->eo.steps[a->eo.n_steps - 1];
    for (int64_t i = 0; i < c->m; i++)
        for (int64_t j = 0; j < c->k; j++) {
            int32_t *row = codes + (i * c->k + j) * c->m;
            memcpy(row, draws, (size_t)c->m * sizeof *row);
            row[i] = (int32_t)j;
        }
    char out[4096];
    ok = ok && dc_img_generate(s, &so, (int64_t)c->m * c->k, labels, codes, img, NULL, err, len) &&
         dc_train_out_path(a->out, "grid_latents.png", out, sizeof out, err, len) &&
         dc_plot_image_grid(out, img, DC_IMG_SIDE, c->m, c->k, 2, err, len);
    if (ok && c->latent_groups == 2) {
        int half = c->m / 2;
        for (int g = 0; g < 2; g++)
            for (int j = 0; j < GROUP_DRAWS; j++) {
                int32_t *row = codes + (g * GROUP_DRAWS + j) * c->m;
                memcpy(row, draws, (size_t)c->m * sizeof *row);
                memcpy(row + g * half, draws + j * c->m + g * half, (size_t)half * sizeof *row);
            }
        ok = dc_img_generate(s, &so, 2 * GROUP_DRAWS, labels, codes, img, NULL, err, len) &&
             dc_train_out_path(a->out, "grid_groups.png", out, sizeof out, err, len) &&
             dc_plot_image_grid(out, img, DC_IMG_SIDE, 2, GROUP_DRAWS, 2, err, len);
    }
    dc_img_sampler_free(s);
    free(img), free(labels), free(codes), free(draws);
    return ok;
}

static bool eval_one(const eval_args *a, const char *path, dc_img_features *f, const float *test_feats,
                     const dc_dataset *test, dc_img_metrics *mt, dc_img_report *rep, const char **name, char *err,
                     size_t len) {
    dc_img_model *m = dc_img_load(path, err, len);
    if (!m) return false;
    *rep = *dc_img_model_report(m);
    *name = dc_img_model_setup(m)->model.baseline ? "edm" : "disco";
    int64_t n = a->eo.n;
    dc_tensor *x = dc_tensor_new(&(dc_type){ DC_F32, { 4, { n, DC_IMG_SIDE, DC_IMG_SIDE, 1 } } });
    dc_tensor *y = dc_tensor_new(&(dc_type){ DC_I32, { 1, { n } } });
    char file[64], out[4096];
    double t0 = dc_seconds();
    bool ok = dc_img_evaluate(m, f, test_feats, test->n, test, &a->eo, (dc_backend)a->backend, mt, x->data, y->data,
                              err, len);
    if (ok) printf("%s: evaluated in %.1f s\n", *name, dc_seconds() - t0);
    fflush(stdout);
    snprintf(file, sizeof file, "samples_%s.npy", *name);
    ok = ok && dc_train_out_path(a->out, file, out, sizeof out, err, len) && dc_npy_write(out, x, err, len);
    snprintf(file, sizeof file, "labels_%s.npy", *name);
    ok = ok && dc_train_out_path(a->out, file, out, sizeof out, err, len) && dc_npy_write(out, y, err, len);
    snprintf(file, sizeof file, "grid_%s.png", *name);
    /* classes x samples: row c holds the first 10 samples of class c (sample i has class i mod 10) */
    float *grid = malloc((size_t)100 * DC_IMG_PIXELS * sizeof *grid);
    if (!grid) abort(); /* out of memory */
    for (int64_t c = 0; c < 10; c++)
        for (int64_t j = 0; j < 10; j++) {
            int64_t i = (j * 10 + c) % n;
            memcpy(grid + (c * 10 + j) * DC_IMG_PIXELS, (float *)x->data + i * DC_IMG_PIXELS, DC_IMG_PIXELS * sizeof *grid);
        }
    ok = ok && dc_train_out_path(a->out, file, out, sizeof out, err, len) &&
         dc_plot_image_grid(out, grid, DC_IMG_SIDE, 10, 10, 2, err, len);
    free(grid);
    ok = ok && (dc_img_model_setup(m)->model.baseline || latents_grids(a, m, err, len));
    dc_tensor_free(x);
    dc_tensor_free(y);
    dc_img_model_free(m);
    return ok;
}

static int cmd_eval(int argc, char **argv) {
    eval_args a = { .cnn_dir = "runs", .out = "eval", .backend = -1, .eo = dc_img_eval_defaults() };
    a.eo.progress = stdout;
    int st = dc_cli_parse(&dc_cmd_eval_images, &a, argc, argv, &a.model);
    if (st) return st;
    if (a.threads > 0) omp_set_num_threads(a.threads);
    if (!dc_cli_backend("eval", &a.backend, DC_BACKEND_AUTO)) return EXIT_USAGE;
    char err[DC_ERR_LEN], weights[4096];
    dc_dataset test = { 0 }, train = { 0 };
    if (!cnn_weights(a.cnn_dir, a.data_dir, (dc_backend)a.backend, weights, sizeof weights, err, sizeof err) ||
        !dc_fmnist_load(a.data_dir, false, &test, err, sizeof err) || !dc_fmnist_load(a.data_dir, true, &train, err, sizeof err))
        return dc_run_error("eval", err);
    int64_t n = a.eo.n;
    dc_img_features *f = dc_img_features_new(weights, a.eo.batch, (dc_backend)a.backend, err, sizeof err);
    float *test_feats = malloc((size_t)test.n * 128 * sizeof *test_feats), *sub_feats = malloc((size_t)n * 128 * sizeof *sub_feats);
    float *sub = malloc((size_t)(n * DC_IMG_PIXELS) * sizeof *sub);
    int64_t *perm = malloc((size_t)train.n * sizeof *perm);
    if (!test_feats || !sub_feats || !sub || !perm) abort(); /* out of memory */
    bool ok = f && n <= train.n;
    if (f && !ok) snprintf(err, sizeof err, "--n %lld is more than the %lld training images", (long long)n, (long long)train.n);
    dc_shuffle(perm, train.n, a.eo.seed + 1000, 0);
    for (int64_t i = 0; ok && i < n; i++)
        memcpy(sub + i * DC_IMG_PIXELS, train.images + perm[i] * DC_IMG_PIXELS, DC_IMG_PIXELS * sizeof *sub);
    metrics_doc doc = { .a = &a };
    ok = ok && dc_img_features_run(f, test.images, test.n, false, test_feats, NULL, err, sizeof err) &&
         dc_img_features_run(f, sub, n, false, sub_feats, NULL, err, sizeof err) &&
         (doc.floor = dc_frechet_distance(sub_feats, n, test_feats, test.n, 128, err, sizeof err)) >= 0;
    dc_img_metrics mt[2];
    const char *paths[2] = { a.ckpt, a.baseline_ckpt };
    for (int k = 0; ok && k < 2; k++)
        if (paths[k]) {
            ok = eval_one(&a, paths[k], f, test_feats, &test, &mt[k], &doc.reports[k], &doc.names[k], err, sizeof err);
            doc.mt[k] = ok ? &mt[k] : NULL;
        }
    char path[4096];
    ok = ok && dc_train_out_path(a.out, "metrics.json", path, sizeof path, err, sizeof err) &&
         dc_file_write_atomic(path, write_metrics, &doc, err, sizeof err);
    if (ok) {
        print_table(&doc);
        print_training(&doc);
        printf("\nwrote %s/metrics.json, samples_*.npy, labels_*.npy, grid_*.png\n", a.out);
    }
    dc_img_features_free(f);
    free(test_feats);
    free(sub_feats);
    free(sub);
    free(perm);
    dc_dataset_free(&test);
    dc_dataset_free(&train);
    return ok ? 0 : dc_run_error("eval", err);
}

static const dc_opt eval_options[] = {
    DC_OPT_STR_REQUIRED("--ckpt", "FILE", eval_args, ckpt, "a model file of 'disco train fmnist-disco'"),
    DC_OPT_STR("--baseline-ckpt", "FILE", eval_args, baseline_ckpt, "a second model file evaluated the same way"),
    DC_OPT_STR("--cnn-dir", "DIR", eval_args, cnn_dir,
               "where fmnist-cnn.weights is, trained there when missing (default runs)"),
    DC_OPT_INT("--n", "N", eval_args, eo.n, 2, 60000, "samples per figure (default 5000)"),
    DC_OPT_FN("--steps", "LIST", eval_args, eo, parse_steps, "Heun step counts (default 5,10,18,35)"),
    DC_OPT_FN("--guidance", "LIST", eval_args, eo, parse_guidance, "DisCo-Diff's guidance scales (default 0,1,2)"),
    DC_OPT_NUM("--main-guidance", "W", eval_args, eo.main_guidance, -100, 100,
               "the guidance of the samples written (default 1)"),
    DC_OPT_INT("--guidance-steps", "N", eval_args, eo.guidance_steps, 0, 100000,
               "the guidance scales other than --main-guidance only at N steps (default 0: at\n"
               "every step count)"),
    DC_OPT_INT("--curv-n", "N", eval_args, eo.curv_n, 0, 60000, "images for the curvature (default 200; 0: none)"),
    DC_OPT_INT("--batch", "B", eval_args, eo.batch, 1, 65536, "images per program run (default 250)"),
    DC_OPT_U64("--seed", "S", eval_args, eo.seed, "sampling seed; the floor's subset from S+1000 (default 0)"),
    DC_OPT_STR("--out", "DIR", eval_args, out, "metrics.json, samples and grids go here (default eval)"),
    DC_OPT_STR("--data", "DIR", eval_args, data_dir, "the Fashion-MNIST directory (default as for disco train)"),
    DC_OPT_THREADS(eval_args, threads),
    DC_OPT_BACKEND(eval_args, backend),
    { 0 }
};

const dc_command dc_cmd_eval_images = {
    .name = "eval", .fn = cmd_eval, .summary = "metrics of trained image models", .args = "fmnist-disco",
    .arg_what = "model", .options = eval_options,
    .about = "Samples each model n images per Heun step count (and, for DisCo-Diff, per guidance scale),\n"
             "classes i mod 10, and measures the Frechet distance of fmnist-cnn's 128-d features to the\n"
             "test set's next to its floor (n real training images), the class agreement (fmnist-cnn's\n"
             "class of a sample is its conditioning class), the ODE curvature per sigma band, and for\n"
             "DisCo-Diff the codes in use and their mutual information with the class. Writes\n"
             "DIR/metrics.json, the samples of the last step count (at --main-guidance) as\n"
             "samples_NAME.npy and labels_NAME.npy, a classes x samples grid_NAME.png, and for\n"
             "DisCo-Diff grid_latents.png (one class and noise; row i: latent i through its codes)\n"
             "and, with --groups 2, grid_groups.png (row g: group g's latents from 10 prior draws).\n",
};
