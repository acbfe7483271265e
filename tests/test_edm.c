/* test_edm.c — EDM (models/disco/edm.c): the preconditioning coefficients, the denoiser and
 * the weighted loss as executed graphs against hand-computed values, the training-sigma and
 * noise distributions, the schedule, and the samplers on a Gaussian data distribution whose
 * denoiser and ODE solution are known in closed form. */
#include "tests/test.h"

#include <stdint.h>
#include <stdlib.h>

#include "models/disco/disco.h"

/* Runs g (all-ref program, seed 1) with f32 input "sigma" [3,1] (or [3] when sigma_rank is
 * 1) = sig and, if x is not NULL, "x" [3,2] = x; copies output k (n_out[k] floats) into
 * out[k]. */
static bool run_graph(dc_graph *g, int sigma_rank, const float *sig, const float *x, int n_outs,
                      float **out, const int64_t *n_out) {
    char err[256] = "";
    CHECK_MSG(!dc_graph_failed(g), "graph: %s", dc_graph_error(g));
    dc_exec *e = dc_exec_new(g, 1, err, sizeof err);
    CHECK_MSG(e != NULL, "exec: %s", err);
    if (!e) return false;
    dc_tensor *ts = dc_tensor_new(&(dc_type){ DC_F32, { sigma_rank, { 3, 1 } } });
    memcpy(ts->data, sig, 3 * sizeof *sig);
    bool ok = dc_exec_set_input(e, "sigma", ts, err, sizeof err);
    dc_tensor *tx = dc_tensor_new(&(dc_type){ DC_F32, { 2, { 3, 2 } } });
    if (x) {
        memcpy(tx->data, x, 6 * sizeof *x);
        ok = ok && dc_exec_set_input(e, "x", tx, err, sizeof err);
    }
    ok = ok && dc_exec_run(e, err, sizeof err);
    CHECK_MSG(ok, "run: %s", err);
    for (int k = 0; ok && k < n_outs; k++)
        memcpy(out[k], dc_exec_output(e, k)->data, (size_t)n_out[k] * sizeof(float));
    dc_tensor_free(ts);
    dc_tensor_free(tx);
    dc_exec_free(e);
    return ok;
}

TEST(edm_precond_coefficients) {
    dc_graph *g = dc_graph_new("edm_precond");
    dc_t sigma = dc_input(g, "sigma", DC_F32, 2, ((int64_t[]){ 3, 1 }));
    dc_edm_precond p = dc_edm_precond_graph(g, sigma, 0.5f);
    dc_output(g, p.c_skip, "c_skip");
    dc_output(g, p.c_out, "c_out");
    dc_output(g, p.c_in, "c_in");
    dc_output(g, p.c_noise, "c_noise");
    float c[4][3];
    if (run_graph(g, 2, (float[]){ 0.5f, 2.0f, 80.0f }, NULL, 4, (float *[]){ c[0], c[1], c[2], c[3] },
                  (int64_t[]){ 3, 3, 3, 3 })) {
        /* sd = 1/2. s = 1/2: s^2 + sd^2 = 1/2; s = 2: 17/4; s = 80: 25601/4 */
        const double want[4][3] = {
            { 0.5, 1.0 / 17.0, 1.0 / 25601.0 },                          /* sd^2 / v */
            { 0.25 * sqrt(2.0), 2.0 / sqrt(17.0), 80.0 / sqrt(25601.0) }, /* s sd / sqrt(v) */
            { sqrt(2.0), 2.0 / sqrt(17.0), 2.0 / sqrt(25601.0) },         /* 1 / sqrt(v) */
            { -log(2.0) / 4, log(2.0) / 4, log(80.0) / 4 },               /* ln(s) / 4 */
        };
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < 3; i++) CHECK_NEAR(c[k][i], want[k][i], 1e-7, 2e-6);
    }
    dc_graph_free(g);
    /* a bad sigma_data is a graph error, not a crash */
    g = dc_graph_new("edm_bad");
    sigma = dc_input(g, "sigma", DC_F32, 2, ((int64_t[]){ 3, 1 }));
    dc_edm_precond_graph(g, sigma, -1.0f);
    CHECK(dc_graph_failed(g));
    CHECK(strstr(dc_graph_error(g), "sigma_data") != NULL);
    dc_graph_free(g);
}

/* F(x_in, c_noise) = x_in + c_noise (per example; c_noise has sigma's shape [3] or [3,1]) */
static dc_t toy_net(void *ctx, dc_graph *g, dc_t x_in, dc_t c_noise) {
    (void)ctx;
    return dc_add(g, x_in, dc_reshape(g, c_noise, 2, ((int64_t[]){ 3, 1 })));
}

static void check_denoiser_and_loss(int sigma_rank) {
    dc_graph *g = dc_graph_new("edm_denoiser");
    dc_t sigma = dc_input(g, "sigma", DC_F32, sigma_rank, ((int64_t[]){ 3, 1 }));
    dc_t x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ 3, 2 }));
    dc_t d = dc_edm_denoiser(g, x, sigma, 0.5f, toy_net, NULL);
    dc_output(g, d, "d");
    /* y = x + 1: loss of D against it */
    dc_output(g, dc_edm_loss(g, d, dc_add_scalar(g, x, 1.0f), sigma, 0.5f), "loss");
    const float sig[3] = { 0.5f, 2.0f, 80.0f }, xv[6] = { 1, -2, 0.5f, 3, -4, 10 };
    float dv[6], loss;
    if (run_graph(g, sigma_rank, sig, xv, 2, (float *[]){ dv, &loss }, (int64_t[]){ 6, 1 })) {
        double want_loss = 0.0;
        for (int i = 0; i < 3; i++) {
            double s = sig[i], v = s * s + 0.25;
            double lambda = v / (s * s * 0.25), sq = 0.0;
            for (int k = 0; k < 2; k++) {
                double xi = xv[2 * i + k];
                double want = 0.25 / v * xi + s * 0.5 / sqrt(v) * (xi / sqrt(v) + log(s) / 4);
                CHECK_NEAR(dv[2 * i + k], want, 1e-5, 1e-5);
                sq += (want - (xi + 1)) * (want - (xi + 1));
            }
            want_loss += lambda * sq / 3.0;
        }
        CHECK_NEAR(loss, want_loss, 1e-5, 1e-5);
    }
    dc_graph_free(g);
}

TEST(edm_denoiser_and_loss) {
    check_denoiser_and_loss(2);     /* sigma [B,1] */
    check_denoiser_and_loss(1);     /* sigma [B] */

    /* by hand: D = [[1,2],[0,0],[0,0]], y = 0 except row 1 = [1,1]; sigma 1/2, 2, 1:
     * lambda = 8, 17/4, 5; squared norms 5, 2, 0 -> (40 + 17/2) / 3 */
    dc_graph *g = dc_graph_new("edm_loss");
    dc_t sigma = dc_input(g, "sigma", DC_F32, 2, ((int64_t[]){ 3, 1 }));
    dc_t x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ 3, 2 }));
    dc_t y = dc_input(g, "y", DC_F32, 2, ((int64_t[]){ 3, 2 }));
    dc_output(g, dc_edm_loss(g, x, y, sigma, 0.5f), "loss");
    char err[256] = "";
    dc_exec *e = dc_exec_new(g, 1, err, sizeof err);
    CHECK_MSG(e != NULL, "%s", err);
    if (e) {
        dc_tensor *ts = dc_tensor_new(&(dc_type){ DC_F32, { 2, { 3, 1 } } });
        dc_tensor *tx = dc_tensor_new(&(dc_type){ DC_F32, { 2, { 3, 2 } } });
        dc_tensor *ty = dc_tensor_new(&(dc_type){ DC_F32, { 2, { 3, 2 } } });
        memcpy(ts->data, (float[]){ 0.5f, 2.0f, 1.0f }, 3 * sizeof(float));
        memcpy(tx->data, (float[]){ 1, 2, 0, 0, 0, 0 }, 6 * sizeof(float));
        memcpy(ty->data, (float[]){ 0, 0, 1, 1, 0, 0 }, 6 * sizeof(float));
        bool ok = dc_exec_set_input(e, "sigma", ts, err, sizeof err) &&
                  dc_exec_set_input(e, "x", tx, err, sizeof err) &&
                  dc_exec_set_input(e, "y", ty, err, sizeof err) && dc_exec_run(e, err, sizeof err);
        CHECK_MSG(ok, "%s", err);
        if (ok) CHECK_NEAR(*(float *)dc_exec_output(e, 0)->data, (40.0 + 17.0 / 2.0) / 3.0, 1e-5, 1e-6);
        dc_tensor_free(ts), dc_tensor_free(tx), dc_tensor_free(ty);
        dc_exec_free(e);
    }
    dc_graph_free(g);
}

/* ln(sigma) ~ N(-1.2, 1.2^2) and the noise sigma * N(0, 1), from graph random ops */
TEST(edm_sigma_and_noise_distribution) {
    enum { B = 20000 };
    dc_graph *g = dc_graph_new("edm_sigma");
    dc_t sigma = dc_edm_sample_sigma(g, B, DC_EDM_P_MEAN, DC_EDM_P_STD);
    dc_output(g, sigma, "sigma");
    dc_output(g, dc_edm_add_noise(g, dc_fill(g, 1.0f, 2, ((int64_t[]){ B, 2 })), sigma), "noisy");
    char err[256] = "";
    dc_exec *e = dc_exec_new(g, 9, err, sizeof err);
    CHECK_MSG(e && dc_exec_run(e, err, sizeof err), "%s", err);
    if (e) {
        const float *s = dc_exec_output(e, 0)->data, *y = dc_exec_output(e, 1)->data;
        double m = 0, m2 = 0, z2 = 0;
        for (int i = 0; i < B; i++) {
            double l = log(s[i]);
            m += l, m2 += l * l;
            for (int k = 0; k < 2; k++) z2 += (y[2 * i + k] - 1.0) * (y[2 * i + k] - 1.0) / ((double)s[i] * s[i]);
        }
        m /= B;
        double sd = sqrt(m2 / B - m * m);
        /* standard errors: 1.2/sqrt(B) = 0.0085 and ~0.006 */
        CHECK_NEAR(m, -1.2, 0.04, 0);
        CHECK_NEAR(sd, 1.2, 0.03, 0);
        CHECK_NEAR(z2 / (2.0 * B), 1.0, 0.04, 0);
        dc_exec_free(e);
    }
    dc_graph_free(g);
}

TEST(edm_schedule) {
    double t[19];
    char err[256] = "";
    CHECK(dc_edm_schedule(18, 0.002, 80, 7, t, err, sizeof err));
    CHECK_NEAR(t[0], 80.0, 1e-9, 1e-12);
    CHECK_NEAR(t[17], 0.002, 0, 1e-12);
    CHECK(t[18] == 0.0);
    for (int i = 0; i < 18; i++) CHECK(t[i] > t[i + 1]);
    /* N = 3: the middle one is ((80^(1/7) + 0.002^(1/7)) / 2)^7 = 2.5152190 */
    CHECK(dc_edm_schedule(3, 0.002, 80, 7, t, err, sizeof err));
    CHECK_NEAR(t[1], 2.515218976, 1e-8, 0);
    CHECK(dc_edm_schedule(1, 0.002, 80, 7, t, err, sizeof err));
    CHECK(t[0] == 80.0 && t[1] == 0.0);
    CHECK(!dc_edm_schedule(0, 0.002, 80, 7, t, err, sizeof err));
    CHECK(strstr(err, "steps >= 1") != NULL);
    CHECK(!dc_edm_schedule(5, 0.0, 80, 7, t, err, sizeof err));
    CHECK(!dc_edm_schedule(5, 1.0, 0.5, 7, t, err, sizeof err));
}

/* Data N(mu, s0^2 I): D(x; s) = (s0^2 x + s^2 mu) / (s0^2 + s^2) exactly, and the ODE
 * dx/ds = (x - D)/s = s (x - mu) / (s0^2 + s^2) has the solution
 * x(s) = mu + (x(T) - mu) sqrt((s0^2 + s^2) / (s0^2 + T^2)). */
typedef struct { double mu[2], s0; int calls; } gauss;

static bool gauss_denoise(void *ctx, const float *x, float sigma, float *d, int64_t n, int64_t dim,
                          char *err, size_t len) {
    gauss *gs = ctx;
    gs->calls++;
    if (dim != 2) {
        snprintf(err, len, "gauss: dim %lld", (long long)dim);
        return false;
    }
    double s2 = (double)sigma * sigma, v = gs->s0 * gs->s0;
    for (int64_t i = 0; i < n * 2; i++) d[i] = (float)((v * x[i] + s2 * gs->mu[i % 2]) / (v + s2));
    return true;
}

/* mean |x - exact| over points after sampling with kind/steps from the same x_0 */
static double sample_error(gauss *gs, dc_sampler_kind kind, int steps, int n, float *x, float *x0) {
    dc_sampler_opts o = dc_sampler_defaults();
    o.kind = kind, o.steps = steps;
    dc_edm_initial_noise(3, o.sigma_max, n, 2, x0);
    memcpy(x, x0, (size_t)n * 2 * sizeof *x);
    char err[256] = "";
    CHECK_MSG(dc_edm_sample(&o, gauss_denoise, gs, x, n, 2, err, sizeof err), "%s", err);
    double scale = gs->s0 / sqrt(gs->s0 * gs->s0 + o.sigma_max * o.sigma_max), e = 0.0;
    for (int i = 0; i < 2 * n; i++) {
        double exact = gs->mu[i % 2] + (x0[i] - gs->mu[i % 2]) * scale;
        e += fabs(x[i] - exact);
    }
    return e / (2 * n);
}

static void mean_std(const float *x, int n, int k, double *m, double *s) {
    double a = 0, b = 0;
    for (int i = 0; i < n; i++) a += x[2 * i + k], b += (double)x[2 * i + k] * x[2 * i + k];
    *m = a / n;
    *s = sqrt(b / n - *m * *m);
}

TEST(edm_heun_gaussian) {
    enum { N = 4000 };
    gauss gs = { { 1.0, -2.0 }, 0.5, 0 };
    float *x = malloc(N * 2 * sizeof *x), *x0 = malloc(N * 2 * sizeof *x0);
    double heun32 = sample_error(&gs, DC_SAMPLER_HEUN, 32, N, x, x0);
    /* Heun with N steps calls the denoiser 2N - 1 times (none at the last step's t = 0) */
    CHECK_EQ_INT(gs.calls, 63);
    for (int k = 0; k < 2; k++) {
        double m, s;
        mean_std(x, N, k, &m, &s);
        /* x_0 ~ N(0, 80^2) misses the N(mu, s0^2 + 80^2) start by mu s0 / 80 < 0.013;
         * sampling error of the mean 0.5/sqrt(4000) = 0.008 */
        CHECK_NEAR(m, gs.mu[k], 0.04, 0);
        CHECK_NEAR(s, gs.s0, 0.03, 0);
    }
    /* Heun is second order, Euler first: doubling the steps divides the error by ~4 and ~2.
     * (With very few steps, N <= 8 here, Heun overshoots and Euler is closer: the drift
     * changes sharply near sigma ~ s0.) */
    double heun18 = sample_error(&gs, DC_SAMPLER_HEUN, 18, N, x, x0);
    double heun36 = sample_error(&gs, DC_SAMPLER_HEUN, 36, N, x, x0);
    double euler18 = sample_error(&gs, DC_SAMPLER_EULER, 18, N, x, x0);
    double euler36 = sample_error(&gs, DC_SAMPLER_EULER, 36, N, x, x0);
    printf("    mean |x - exact|: Heun 18/32/36 steps %.2e %.2e %.2e, Euler 18/36 %.2e %.2e\n",
           heun18, heun32, heun36, euler18, euler36);
    CHECK(heun32 < 1e-2);
    CHECK(heun18 < 0.5 * euler18);
    CHECK(heun18 / heun36 > 3.0 && heun18 / heun36 < 5.0);
    CHECK(euler18 / euler36 > 1.5 && euler18 / euler36 < 2.5);
    free(x);
    free(x0);
}

TEST(edm_churn_sampler) {
    enum { N = 4000, STEPS = 40 };
    gauss gs = { { -1.0, 0.5 }, 0.3, 0 };
    float *x = malloc(N * 2 * sizeof *x), *y = malloc(N * 2 * sizeof *y);
    float *traj = malloc((STEPS + 1) * N * 2 * sizeof *traj);
    char err[256] = "";
    /* S_churn = 0 is Heun, bit for bit */
    dc_sampler_opts o = dc_sampler_defaults();
    o.steps = STEPS;
    dc_edm_initial_noise(5, o.sigma_max, N, 2, x);
    memcpy(y, x, N * 2 * sizeof *x);
    CHECK(dc_edm_sample(&o, gauss_denoise, &gs, x, N, 2, err, sizeof err));
    o.kind = DC_SAMPLER_CHURN;
    CHECK(dc_edm_sample(&o, gauss_denoise, &gs, y, N, 2, err, sizeof err));
    CHECK(memcmp(x, y, N * 2 * sizeof *x) == 0);
    /* with churn the samples still follow N(mu, s0^2) (exact denoiser); same seed same result */
    o.s_churn = 30, o.s_tmin = 0.01, o.s_tmax = 50, o.s_noise = 1.0, o.seed = 17;
    o.trajectory = traj;
    dc_edm_initial_noise(5, o.sigma_max, N, 2, x);
    memcpy(y, x, N * 2 * sizeof *x);
    CHECK(dc_edm_sample(&o, gauss_denoise, &gs, x, N, 2, err, sizeof err));
    CHECK(memcmp(traj, y, N * 2 * sizeof *y) == 0);                        /* x_0 */
    CHECK(memcmp(traj + STEPS * N * 2, x, N * 2 * sizeof *x) == 0);        /* x_N */
    o.trajectory = NULL;
    CHECK(dc_edm_sample(&o, gauss_denoise, &gs, y, N, 2, err, sizeof err));
    CHECK(memcmp(x, y, N * 2 * sizeof *x) == 0);
    for (int k = 0; k < 2; k++) {
        double m, s;
        mean_std(x, N, k, &m, &s);
        CHECK_NEAR(m, gs.mu[k], 0.03, 0);
        CHECK_NEAR(s, gs.s0, 0.02, 0);
    }
    o.seed = 18;
    dc_edm_initial_noise(5, o.sigma_max, N, 2, y);
    CHECK(dc_edm_sample(&o, gauss_denoise, &gs, y, N, 2, err, sizeof err));
    CHECK(memcmp(x, y, N * 2 * sizeof *x) != 0);
    /* errors: a failing denoiser, bad options */
    CHECK(!dc_edm_sample(&o, gauss_denoise, &gs, y, N / 2, 1, err, sizeof err));
    CHECK(strstr(err, "gauss: dim 1") != NULL);
    o.steps = 0;
    CHECK(!dc_edm_sample(&o, gauss_denoise, &gs, y, N, 2, err, sizeof err));
    o.steps = 5, o.kind = (dc_sampler_kind)7;
    CHECK(!dc_edm_sample(&o, gauss_denoise, &gs, y, N, 2, err, sizeof err));
    CHECK(!dc_edm_sample(NULL, gauss_denoise, &gs, y, N, 2, err, sizeof err));
    free(x);
    free(y);
    free(traj);
}
