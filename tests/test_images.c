/* test_images.c — the image model's path end to end at --quick size on a synthetic dataset
 * (stripes whose orientation is the class): training both stages writes a model file that
 * loads; sampling gives finite images, codes in range and the NFE of the sampler; one guided
 * Euler step at w = 2 equals the conditional and the all-null steps combined as D = D_cond + w
 * (D_cond - D_null); chunks of the program's batch give the same images as one chunk; and bad
 * input is refused with a message (class out of range, missing or foreign or damaged model
 * files, a resume whose latents differ from the checkpoint's, bad configs). */
#include "tests/test.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "models/disco/images.h"

enum { N_DATA = 600 };

/* N_DATA images of stripes: class c has stripes of period 2 + c, pixel values in [0, 1] */
static dc_dataset stripes(void) {
    dc_dataset d = { .n = N_DATA, .rows = DC_IMG_SIDE, .cols = DC_IMG_SIDE };
    d.images = malloc((size_t)N_DATA * DC_IMG_PIXELS * sizeof *d.images);
    d.labels = malloc((size_t)N_DATA * sizeof *d.labels);
    for (int64_t i = 0; i < N_DATA; i++) {
        d.labels[i] = (int32_t)(i % DC_IMG_CLASSES);
        for (int p = 0; p < DC_IMG_PIXELS; p++)
            d.images[i * DC_IMG_PIXELS + p] = (float)(((p % DC_IMG_SIDE + (int)(i % 3)) / (2 + d.labels[i])) % 2);
    }
    return d;
}

static dc_img_setup quick_setup(bool baseline) {
    dc_img_setup s = dc_img_setup_defaults();
    s.model.baseline = baseline;
    dc_img_setup_quick(&s);
    s.train.steps = 6, s.train.batch = 8, s.train.ckpt_every = 0;
    s.prior_train.steps = 4, s.prior_train.batch = 16, s.prior_train.warmup = 1;
    return s;
}

typedef struct {
    char dir[64], ckpt[128], model[128];
} paths;

static bool make_paths(paths *p) {
    snprintf(p->dir, sizeof p->dir, "/tmp/disco_images_XXXXXX");
    if (!mkdtemp(p->dir)) return false;
    snprintf(p->ckpt, sizeof p->ckpt, "%s/train.ckpt", p->dir);
    snprintf(p->model, sizeof p->model, "%s/m.model", p->dir);
    return true;
}

static void remove_paths(const paths *p) {
    unlink(p->ckpt);
    unlink(p->model);
    rmdir(p->dir);
}

/* One Euler step from sigma_max to 0 of n images from fixed codes: images receive D(x_0; sigma_max). */
static bool euler_step(dc_img_sampler *s, float w, int64_t n, const int32_t *labels, const int32_t *codes,
                       float *images, char *err, size_t len) {
    dc_img_sample_opts o = dc_img_sample_defaults();
    o.sampler = DC_SAMPLER_EULER, o.steps = 1, o.guidance = w, o.seed = 4;
    return dc_img_generate(s, &o, n, labels, codes, images, NULL, err, len);
}

TEST(images_quick_train_load_sample) {
    paths p;
    CHECK(make_paths(&p));
    dc_dataset d = stripes();
    dc_img_setup s = quick_setup(false);
    dc_img_report r;
    char err[DC_ERR_LEN];
    bool ok = dc_img_train(&s, &d, p.ckpt, NULL, p.model, &r, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    CHECK(!ok || (isfinite(r.loss) && isfinite(r.prior_loss) && r.params > 0 && r.prior_params > 0));
    dc_img_model *m = ok ? dc_img_load(p.model, err, sizeof err) : NULL;
    CHECK_MSG(!ok || m, "%s", err);
    enum { N = 6 };
    int32_t labels[N] = { 0, 1, 2, 3, 9, 5 }, codes[N * 8], bad[N] = { 0, 1, 2, 10, 0, 0 };
    float *img = malloc(N * DC_IMG_PIXELS * sizeof *img), *img2 = malloc(N * DC_IMG_PIXELS * sizeof *img2);
    float *line[3];
    for (int i = 0; i < 3; i++) line[i] = malloc(N * DC_IMG_PIXELS * sizeof *line[i]);
    dc_img_sampler *a = m ? dc_img_sampler_new(m, 4, DC_BACKEND_AUTO, err, sizeof err) : NULL;
    dc_img_sampler *b = m ? dc_img_sampler_new(m, N, DC_BACKEND_AUTO, err, sizeof err) : NULL;
    CHECK_MSG(!m || (a && b), "%s", err);
    if (a && b) {
        int km = dc_img_model_setup(m)->model.m, kk = dc_img_model_setup(m)->model.k;
        dc_img_sample_opts o = dc_img_sample_defaults();
        o.steps = 3;
        CHECK_MSG(dc_img_generate(a, &o, N, labels, NULL, img, codes, err, sizeof err), "%s", err);
        CHECK_EQ_INT(dc_img_sampler_times(a)->nfe, 5);
        bool finite = true, in_range = true;
        for (int i = 0; i < N * DC_IMG_PIXELS; i++) finite = finite && isfinite(img[i]);
        for (int i = 0; i < N * km; i++) in_range = in_range && codes[i] >= 0 && codes[i] < kk;
        CHECK(finite && in_range);
        /* the same codes through one chunk of 6 instead of chunks of 4 and 2 */
        o.guidance = 1.0f;
        CHECK_MSG(dc_img_generate(a, &o, N, labels, codes, img, NULL, err, sizeof err), "%s", err);
        CHECK_EQ_INT(dc_img_sampler_times(a)->nfe, 10);
        CHECK_MSG(dc_img_generate(b, &o, N, labels, codes, img2, NULL, err, sizeof err), "%s", err);
        double worst = 0;
        for (int i = 0; i < N * DC_IMG_PIXELS; i++) worst = fmax(worst, fabs(img[i] - img2[i]));
        CHECK_MSG(worst < 1e-3, "chunks of 4 and of 6 differ by %g", worst);
        /* an Euler step is affine in D, so with D = D_cond + w (D_cond - D_null) the step at w
         * is x(0) + w (x(0) - x_null), x_null the step with every latent the null code k */
        int32_t null_codes[N * 8];
        for (int i = 0; i < N * km; i++) null_codes[i] = kk;
        CHECK_MSG(euler_step(a, 0.0f, N, labels, null_codes, line[2], err, sizeof err), "%s", err);
        for (int i = 0; i < 2; i++)
            CHECK_MSG(euler_step(a, 2.0f * (float)i, N, labels, codes, line[i], err, sizeof err), "%s", err);
        double off = 0, span = 0;
        for (int i = 0; i < N * DC_IMG_PIXELS; i++) {
            off = fmax(off, fabs(line[1][i] - (line[0][i] + 2.0f * (line[0][i] - line[2][i]))));
            span = fmax(span, fabs(line[0][i] - line[2][i]));
        }
        CHECK_MSG(span > 1e-5 && off <= 0.01 * span, "guidance: %g off D_cond + w (D_cond - D_null) (null "
                  "pass differs by %g)", off, span);
        CHECK(!dc_img_generate(a, &o, N, bad, NULL, img, NULL, err, sizeof err) && strstr(err, "class 10 of image 3"));
    }
    for (int i = 0; i < 3; i++) free(line[i]);
    dc_img_sampler_free(a);
    dc_img_sampler_free(b);
    dc_img_model_free(m);
    /* a resume whose latents differ from the checkpoint's */
    s.model.m = 2;
    ok = dc_img_train(&s, &d, p.ckpt, p.ckpt, p.model, &r, err, sizeof err);
    CHECK_MSG(!ok && strstr(err, "is f32[4,16], the graph has f32[2,16]"), "resume with 2 latents: %s", ok ? "trained" : err);
    free(img);
    free(img2);
    dc_dataset_free(&d);
    remove_paths(&p);
}

TEST(images_baseline_and_bad_model_files) {
    paths p;
    CHECK(make_paths(&p));
    dc_dataset d = stripes();
    dc_img_setup s = quick_setup(true);
    dc_img_report r;
    char err[DC_ERR_LEN];
    bool ok = dc_img_train(&s, &d, p.ckpt, NULL, p.model, &r, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    CHECK(!ok || isnan(r.prior_loss));
    dc_img_model *m = ok ? dc_img_load(p.model, err, sizeof err) : NULL;
    CHECK_MSG(!ok || (m && dc_img_model_setup(m)->model.baseline), "%s", err);
    dc_img_model_free(m);
    /* the training checkpoint is a checkpoint, but not a model file */
    CHECK(!dc_img_load(p.ckpt, err, sizeof err) && strstr(err, "not a model file") && strstr(err, p.ckpt));
    CHECK(!dc_img_load("/nonexistent/m.model", err, sizeof err) && strstr(err, "/nonexistent/m.model") &&
          strstr(err, "cannot open"));
    size_t n = 0;
    char *bytes = dc_test_read_file(p.model, &n);
    FILE *f = bytes ? fopen(p.model, "wb") : NULL;
    if (f) {
        fwrite(bytes, 1, n / 2, f);
        fclose(f);
        CHECK(!dc_img_load(p.model, err, sizeof err) && strstr(err, "truncated"));
    }
    free(bytes);
    dc_img_config c = dc_img_config_defaults();
    c.m = 3, c.latent_groups = 2;
    CHECK(!dc_img_config_ok(&c, err, sizeof err) && strstr(err, "--groups"));
    c = dc_img_config_defaults();
    c.ch = 20;
    CHECK(!dc_img_config_ok(&c, err, sizeof err) && strstr(err, "--channels"));
    c = dc_img_config_defaults();
    c.usage_weight = -1;
    CHECK(!dc_img_config_ok(&c, err, sizeof err) && strstr(err, "--usage"));
    dc_dataset_free(&d);
    remove_paths(&p);
}

/* dc_code_usage_kl against the hand-computed sum over latents of KL(p_bar || uniform): latent
 * 0 spread evenly (0), latent 1 with each example on its own code (log 3 + log 1/2), latent 2
 * with both on one code (log 3), up to the 1e-8 floor inside the log and exp(-50) leaks. */
TEST(images_code_usage_term) {
    dc_graph *g = dc_graph_new("usage");
    dc_t logits = dc_input(g, "logits", DC_F32, 3, ((int64_t[]){ 2, 3, 3 }));
    dc_output(g, dc_code_usage_kl(g, logits), "usage");
    char err[DC_ERR_LEN];
    dc_exec *e = dc_compile(g, 0, DC_BACKEND_AUTO, err, sizeof err);
    CHECK_MSG(e, "%s", err);
    dc_tensor *x = dc_tensor_new(&(dc_type){ DC_F32, { 3, { 2, 3, 3 } } });
    const float v[2][3][3] = { { { 0, 0, 0 }, { 50, 0, 0 }, { 0, 50, 0 } }, { { 0, 0, 0 }, { 0, 50, 0 }, { 0, 50, 0 } } };
    memcpy(x->data, v, sizeof v);
    if (e && dc_exec_set_input(e, "logits", x, err, sizeof err) && dc_exec_run(e, err, sizeof err)) {
        double got = ((const float *)dc_exec_output(e, 0)->data)[0];
        double want = 0 + (log(3.0) + log(0.5)) + log(3.0);
        CHECK_MSG(fabs(got - want) < 1e-5, "usage %.7f, by hand %.7f", got, want);
    }
    dc_graph *g2 = dc_graph_new("usage_bad");
    dc_t flat = dc_input(g2, "logits", DC_F32, 2, ((int64_t[]){ 2, 3 }));
    dc_code_usage_kl(g2, flat);
    CHECK(dc_graph_failed(g2) && strstr(dc_graph_error(g2), "f32[B,m,k]"));
    dc_graph_free(g2);
    dc_tensor_free(x);
    dc_exec_free(e);
    dc_graph_free(g);
}
