/* test_metrics.c — the toy problem's data and metrics: the 8-Gaussian data (modes, std), the
 * exact assignment solver and W2 against brute force over all permutations and against the
 * sorted matching in 1-D, the W2 floor at n = 2000, the mode statistics on hand-made point
 * sets, latent purity by hand, curvature and Jacobian norm of drifts with known answers, and
 * the metrics record's JSON. */
#include "tests/test.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "models/disco/disco.h"

/* ---- toy data --------------------------------------------------------------------- */

TEST(toy_data_modes_and_std) {
    double mu[2];
    dc_toy_mode_mean(0, mu);
    CHECK_NEAR(mu[0], 3.0, 1e-12, 0);
    CHECK_NEAR(mu[1], 0.0, 1e-12, 0);
    dc_toy_mode_mean(2, mu);
    CHECK_NEAR(mu[0], 0.0, 1e-12, 0);
    CHECK_NEAR(mu[1], 3.0, 1e-12, 0);
    dc_toy_mode_mean(5, mu);    /* 225 degrees */
    CHECK_NEAR(mu[0], -3.0 / sqrt(2.0), 1e-12, 0);
    CHECK_NEAR(mu[1], -3.0 / sqrt(2.0), 1e-12, 0);
    /* sqrt(9/2 + 0.04) by hand */
    CHECK_NEAR(dc_toy_data_std(), 2.130727575, 1e-8, 0);

    enum { N = DC_TOY_TRAIN_N };
    float *xy = malloc(N * 2 * sizeof *xy);
    int32_t *mode = malloc(N * sizeof *mode);
    dc_toy_sample(7, N, xy, mode);
    int64_t count[DC_TOY_MODES] = { 0 };
    double s2 = 0.0;
    for (int i = 0; i < N; i++) {
        CHECK(mode[i] >= 0 && mode[i] < DC_TOY_MODES);
        if (mode[i] < 0 || mode[i] >= DC_TOY_MODES) break;
        count[mode[i]]++;
        dc_toy_mode_mean(mode[i], mu);
        double dx = xy[2 * i] - mu[0], dy = xy[2 * i + 1] - mu[1];
        s2 += dx * dx + dy * dy;
    }
    /* within-mode std 0.2 (8000 x 2 draws: relative error ~ 0.6%) */
    CHECK_NEAR(sqrt(s2 / (2.0 * N)), 0.2, 0.006, 0);
    /* each mode ~ 1000 +- 30 */
    for (int k = 0; k < DC_TOY_MODES; k++) CHECK_NEAR(count[k], N / 8.0, 150, 0);
    double sd = dc_points_std(xy, N);
    printf("    toy data std (n=%d): %.4f (analytic %.4f)\n", N, sd, dc_toy_data_std());
    CHECK_NEAR(sd, dc_toy_data_std(), 0.03, 0);
    /* same seed: the same points for a shorter n; another seed: other points */
    float head[8];
    dc_toy_sample(7, 4, head, NULL);
    CHECK(memcmp(head, xy, sizeof head) == 0);
    dc_toy_sample(8, 4, head, NULL);
    CHECK(memcmp(head, xy, sizeof head) != 0);
    free(xy);
    free(mode);
}

/* ---- assignment and W2 ------------------------------------------------------------ */

/* min over all permutations of sum_i cost[i][perm[i]], by Heap's algorithm */
static double brute_force(int n, const double *cost) {
    int perm[8], c[8] = { 0 };
    for (int i = 0; i < n; i++) perm[i] = i;
    double best = INFINITY;
    for (int i = 0;;) {
        double s = 0.0;
        for (int r = 0; r < n; r++) s += cost[r * n + perm[r]];
        if (s < best) best = s;
        while (i < n && c[i] >= i) c[i++] = 0;
        if (i >= n) break;
        int j = i % 2 ? c[i] : 0, tmp = perm[j];
        perm[j] = perm[i], perm[i] = tmp;
        c[i]++;
        i = 1;
    }
    return best;
}

TEST(assignment_vs_brute_force) {
    uint64_t trial = 0;
    for (int n = 1; n <= 8; n++)
        for (int rep = 0; rep < 6; rep++, trial++) {
            double cost[64];
            /* rep 0..2 random reals, 3..5 small integers (many ties) */
            for (int k = 0; k < n * n; k++)
                cost[k] = rep < 3 ? dc_rng_uniform01(11, trial, (uint64_t)k) * 10.0
                                  : (double)(dc_rng_u32(11, trial, (uint64_t)k) % 4);
            int64_t col[8];
            double got = dc_assignment(n, cost, col);
            CHECK_NEAR(got, brute_force(n, cost), 1e-9, 0);
            /* col is a permutation whose cost is the returned total */
            int seen[8] = { 0 };
            double s = 0.0;
            for (int i = 0; i < n; i++) {
                CHECK(col[i] >= 0 && col[i] < n);
                if (col[i] < 0 || col[i] >= n) return;
                seen[col[i]]++;
                s += cost[i * n + col[i]];
            }
            for (int j = 0; j < n; j++) CHECK_EQ_INT(seen[j], 1);
            CHECK_NEAR(s, got, 1e-12, 0);
        }
    CHECK(dc_assignment(0, NULL, NULL) < 0);
}

TEST(w2_vs_brute_force_2d) {
    for (int n = 1; n <= 7; n++) {
        float a[14], b[14];
        for (int k = 0; k < 2 * n; k++) {
            a[k] = dc_rng_normal(3, (uint64_t)n, (uint64_t)k);
            b[k] = dc_rng_normal(4, (uint64_t)n, (uint64_t)k) + 0.5f;
        }
        double cost[49];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double dx = (double)a[2 * i] - b[2 * j], dy = (double)a[2 * i + 1] - b[2 * j + 1];
                cost[i * n + j] = dx * dx + dy * dy;
            }
        char err[256];
        CHECK_NEAR(dc_w2(a, b, n, 2, err, sizeof err), sqrt(brute_force(n, cost) / n), 1e-9, 0);
    }
}

static int cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

/* in 1-D the sorted matching is optimal (for any convex cost) */
TEST(w2_1d_sorted_matching) {
    enum { N = 300 };
    float a[N], b[N];
    for (int i = 0; i < N; i++) {
        a[i] = dc_rng_normal(5, 0, (uint64_t)i);
        b[i] = 2.0f * dc_rng_normal(5, 1, (uint64_t)i) + 1.0f;
    }
    char err[256];
    double w = dc_w2(a, b, N, 1, err, sizeof err);
    qsort(a, N, sizeof *a, cmp_float);
    qsort(b, N, sizeof *b, cmp_float);
    double s = 0.0;
    for (int i = 0; i < N; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    CHECK_NEAR(w, sqrt(s / N), 1e-9, 1e-9);
    CHECK(dc_w2(a, b, 0, 1, err, sizeof err) < 0);
    CHECK(strstr(err, "w2:") != NULL);
    a[7] = NAN;
    CHECK(dc_w2(a, b, N, 1, err, sizeof err) < 0);
    CHECK(strstr(err, "non-finite") != NULL);
}

TEST(w2_floor_n2000) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char err[256] = "";
    double w = dc_w2_floor(2000, 1, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("    W2 floor at n=2000 (seeds 1, 2): %.4f  (exact assignment %.2f s)\n", w, sec);
    CHECK_MSG(w > 0.15 && w < 0.5, "floor %g (%s)", w, err);
}

/* ---- mode statistics ---------------------------------------------------------------- */

TEST(mode_metrics_hand_made) {
    enum { N = 16 };
    float pts[N * 2];
    /* two points exactly on each mode mean: TV 0, off-mode 0, full coverage */
    for (int i = 0; i < N; i++) {
        double mu[2];
        dc_toy_mode_mean(i % 8, mu);
        pts[2 * i] = (float)mu[0], pts[2 * i + 1] = (float)mu[1];
        CHECK_EQ_INT(dc_toy_nearest_mode(pts + 2 * i), i % 8);
    }
    CHECK_NEAR(dc_mode_tv(pts, N), 0.0, 1e-15, 0);
    CHECK_NEAR(dc_off_mode_fraction(pts, N), 0.0, 1e-15, 0);
    CHECK_NEAR(dc_mode_coverage(pts, N, 0.5), 1.0, 1e-15, 0);
    /* all at mode 3, spread within 3 std (0.5 < 0.6 from the mean): TV = 1/2 (7/8 + 7/8) = 7/8 */
    double mu3[2];
    dc_toy_mode_mean(3, mu3);
    for (int i = 0; i < N; i++) {
        double a = i * M_PI / 8;
        pts[2 * i] = (float)(mu3[0] + 0.5 * cos(a)), pts[2 * i + 1] = (float)(mu3[1] + 0.5 * sin(a));
    }
    CHECK_NEAR(dc_mode_tv(pts, N), 7.0 / 8.0, 1e-12, 0);
    CHECK_NEAR(dc_off_mode_fraction(pts, N), 0.0, 1e-15, 0);
    CHECK_NEAR(dc_mode_coverage(pts, N, 0.5), 1.0 / 8.0, 1e-15, 0);
    /* 4 of them moved to the origin (3 from every mean) and 4 to 0.7 from mode 3: off 8/16;
     * the nearest-mode histogram is unchanged for the 0.7 ones */
    for (int i = 0; i < 4; i++) pts[2 * i] = pts[2 * i + 1] = 0.0f;
    for (int i = 4; i < 8; i++) pts[2 * i] = (float)(mu3[0] + 0.7), pts[2 * i + 1] = (float)mu3[1];
    CHECK_NEAR(dc_off_mode_fraction(pts, N), 0.5, 1e-15, 0);
    /* 8 on-mode points at mode 3 >= 0.5 * 16/8: still covered; with min_share 5: not */
    CHECK_NEAR(dc_mode_coverage(pts, N, 0.5), 1.0 / 8.0, 1e-15, 0);
    CHECK_NEAR(dc_mode_coverage(pts, N, 5.0), 0.0, 1e-15, 0);
    CHECK(isnan(dc_mode_tv(pts, 0)));
}

TEST(within_mode_w2) {
    /* data: 3 points at mode 0 and 2 at mode 4; generated: mode-0 points shifted by (0, 0.1),
     * 1 point near mode 4 shifted by (0.2, 0), one at mode 2 (no data there: skipped).
     * Mode 0: c = 3, each matched to its own shift, W2 = 0.1. Mode 4: c = 1, the first data
     * point of mode 4 against the generated one: 0.2 + its offset. */
    const float data[10] = { 3.0f, 0.0f, 3.1f, 0.0f, -3.0f, 0.1f, 2.9f, 0.0f, -3.0f, -0.3f };
    const int32_t mode[5] = { 0, 0, 4, 0, 4 };
    const float gen[10] = { 3.0f, 0.1f, 3.1f, 0.1f, 2.9f, 0.1f, -2.8f, 0.1f, 0.0f, 3.0f };
    char err[256] = "";
    double w = dc_within_mode_w2(gen, 5, data, mode, 5, err, sizeof err);
    CHECK_NEAR(w, (0.1 + 0.2) / 2.0, 1e-6, 0);
    const int32_t bad[5] = { 0, 0, 9, 0, 4 };
    CHECK(dc_within_mode_w2(gen, 5, data, bad, 5, err, sizeof err) < 0);
    CHECK(strstr(err, "label 9") != NULL);
}

TEST(latent_purity) {
    /* code 0: modes {1,1,1,2} -> 3; code 1: {5,5} -> 2; code 2: {0,3,3} -> 2; total 7/9 */
    const int32_t code[9] = { 0, 0, 0, 0, 1, 1, 2, 2, 2 };
    const int32_t mode[9] = { 1, 1, 1, 2, 5, 5, 0, 3, 3 };
    char err[256] = "";
    CHECK_NEAR(dc_latent_purity(code, mode, 9, 3, err, sizeof err), 7.0 / 9.0, 1e-15, 0);
    CHECK(dc_latent_purity(code, mode, 9, 2, err, sizeof err) < 0);   /* code 2 of 2 */
    CHECK(strstr(err, "code 2") != NULL);
    CHECK(dc_latent_purity(code, mode, 0, 3, err, sizeof err) < 0);
}

/* ---- curvature and Jacobian --------------------------------------------------------- */

/* A denoiser whose drift f = (x - D)/t is a fixed linear map A x + b: D = x - t (A x + b). */
typedef struct { double a[4], b[2]; } linear_drift;

static bool linear_denoise(void *ctx, const float *x, float t, float *d, int64_t n, int64_t dim,
                           char *err, size_t len) {
    const linear_drift *l = ctx;
    if (dim != 2) {
        snprintf(err, len, "linear: dim %lld", (long long)dim);
        return false;
    }
    for (int64_t i = 0; i < n; i++) {
        double x0 = x[2 * i], x1 = x[2 * i + 1];
        double f0 = l->a[0] * x0 + l->a[1] * x1 + l->b[0], f1 = l->a[2] * x0 + l->a[3] * x1 + l->b[1];
        d[2 * i] = (float)(x0 - t * f0);
        d[2 * i + 1] = (float)(x1 - t * f1);
    }
    return true;
}

TEST(ode_curvature_line_and_circle) {
    enum { N = 8, STEPS = 3 };
    float traj[STEPS * N * 2];
    const double t[STEPS] = { 20.0, 2.0, 0.5 };
    for (int s = 0; s < STEPS; s++)
        for (int i = 0; i < N; i++) {
            double r = 1.0 + i, a = 0.3 * i + s;   /* point i on the circle of radius 1 + i */
            traj[(s * N + i) * 2] = (float)(r * cos(a));
            traj[(s * N + i) * 2 + 1] = (float)(r * sin(a));
        }
    double curv[STEPS], jac[STEPS];
    char err[256] = "";
    /* a constant drift: straight lines, curvature 0, Jacobian 0 */
    linear_drift line = { { 0, 0, 0, 0 }, { 1.5, -0.5 } };
    CHECK(dc_ode_curvature(linear_denoise, &line, traj, t, STEPS, N, 2, curv, err, sizeof err));
    CHECK(dc_ode_jacobian(linear_denoise, &line, traj, t, STEPS, N, 2, jac, err, sizeof err));
    for (int s = 0; s < STEPS; s++) {
        CHECK_NEAR(curv[s], 0.0, 1e-3, 0);
        CHECK_NEAR(jac[s], 0.0, 1e-6, 0);
    }
    /* rotation f = (-x1, x0): circles about 0, curvature 1/r; mean over radii 1..8 of 1/r;
     * J is the rotation, ||J||_F^2 = 2 */
    linear_drift rot = { { 0, -1, 1, 0 }, { 0, 0 } };
    CHECK(dc_ode_curvature(linear_denoise, &rot, traj, t, STEPS, N, 2, curv, err, sizeof err));
    CHECK(dc_ode_jacobian(linear_denoise, &rot, traj, t, STEPS, N, 2, jac, err, sizeof err));
    double want = 0.0;
    for (int i = 0; i < N; i++) want += 1.0 / (1.0 + i) / N;
    for (int s = 0; s < STEPS; s++) {
        CHECK_NEAR(curv[s], want, 0, 2e-3);
        CHECK_NEAR(jac[s], 2.0, 0, 1e-3);
    }
    /* a general linear map: ||A||_F^2 = 1 + 4 + 0.25 + 9 */
    linear_drift gen = { { 1, -2, 0.5, 3 }, { 0.1, 0.2 } };
    CHECK(dc_ode_jacobian(linear_denoise, &gen, traj, t, STEPS, N, 2, jac, err, sizeof err));
    for (int s = 0; s < STEPS; s++) CHECK_NEAR(jac[s], 14.25, 0, 1e-3);
    /* bad input */
    CHECK(!dc_ode_curvature(linear_denoise, &rot, traj, (double[]){ 1, 0, 1 }, STEPS, N, 2, curv,
                            err, sizeof err));
    CHECK(strstr(err, "sigma 1") != NULL);
    CHECK(!dc_ode_jacobian(linear_denoise, &rot, traj, t, STEPS, N / 2, 4, jac, err, sizeof err));
    CHECK(strstr(err, "linear: dim 4") != NULL);
}

TEST(sigma_bands) {
    CHECK_EQ_INT(dc_sigma_band(80), 0);
    CHECK_EQ_INT(dc_sigma_band(10.0001), 0);
    CHECK_EQ_INT(dc_sigma_band(10), 1);
    CHECK_EQ_INT(dc_sigma_band(1.5), 1);
    CHECK_EQ_INT(dc_sigma_band(1), 2);
    CHECK_EQ_INT(dc_sigma_band(0.1), 3);
    CHECK_EQ_INT(dc_sigma_band(0.002), 3);
    const double t[6] = { 80, 20, 5, 2, 0.5, 0.05 };
    const double v[6] = { 1, 3, 10, NAN, 7, 2 };
    double out[DC_SIGMA_BANDS];
    dc_band_means(v, t, 6, out);
    CHECK_NEAR(out[0], 2.0, 1e-15, 0);
    CHECK_NEAR(out[1], 10.0, 1e-15, 0);
    CHECK_NEAR(out[2], 7.0, 1e-15, 0);
    CHECK_NEAR(out[3], 2.0, 1e-15, 0);
    dc_band_means(v, t, 2, out);
    CHECK(isnan(out[1]) && isnan(out[2]) && isnan(out[3]));
}

TEST(metrics_json) {
    dc_toy_metrics m;
    dc_toy_metrics_init(&m);
    m.w2 = 0.5, m.w2_floor = 0.31, m.n_w2_at = 2;
    m.w2_at_steps[0] = 5, m.w2_at[0] = 1.25;
    m.w2_at_steps[1] = 10, m.w2_at[1] = INFINITY;
    m.w2_within = 0.07, m.mode_tv = 0.0125, m.coverage = 1, m.off_mode = 0.001;
    m.curv[1] = 0.15, m.jac[0] = 1e-7;
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    CHECK(dc_toy_metrics_json(f, &m));
    fclose(f);
    CHECK_STR_EQ(buf, "{\"w2\": 0.5, \"w2_floor\": 0.31, \"w2_5\": 1.25, \"w2_10\": null, "
                      "\"w2_within\": 0.07, \"mode_tv\": 0.0125, \"coverage\": 1, \"off_mode\": 0.001, "
                      "\"purity\": null, \"curv_gt10\": null, \"curv_1_10\": 0.15, \"curv_01_1\": null, "
                      "\"curv_lt01\": null, \"jac_gt10\": 1e-07, \"jac_1_10\": null, \"jac_01_1\": null, "
                      "\"jac_lt01\": null}");
    free(buf);
}
