/* images.c — the image model's own commands: `disco sample fmnist-disco` (images to .npy and a
 * PNG grid), over the API of models/disco/images.h. `disco sample` and `disco eval` pick these
 * when their first argument names the image model (tools/disco.c); `disco train fmnist-disco`
 * is the registry's model (models/fmnist_disco.c). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/images.h"
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

static int run_error(const char *cmd, const char *err) {
    fflush(stdout);
    fprintf(stderr, "disco %s: %s\n", cmd, err);
    return 1;
}

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
    if (!m) return run_error("sample", err);
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
    return ok ? 0 : run_error("sample", err);
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
