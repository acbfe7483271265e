/* test_frechet.c — the Frechet distance of images.h against independent oracles: in 2-D the
 * square root's trace has a closed form, tr((A^1/2 B A^1/2)^1/2) = sqrt(tr(AB) + 2 sqrt(det A
 * det B)), computed here from moments taken here; identical sets give 0, a shift by c gives
 * |c|^2, the distance is symmetric and invariant under one rotation of both sets (d = 12);
 * bad input is refused. */
#include "tests/test.h"

#include <math.h>
#include <stdlib.h>

#include "models/disco/images.h"
#include "runtime/runtime.h"

static void fill(float *x, int64_t n, int d, uint64_t seed, double scale0) {
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            double u = dc_rng_normal(seed, (uint64_t)j, (uint64_t)i);
            double mix = j > 0 ? 0.5 * x[i * d + j - 1] : 0;   /* correlated coordinates */
            x[i * d + j] = (float)(u * (j == 0 ? scale0 : 1.0) + mix + 0.1 * j);
        }
}

/* mean and covariance (n - 1) of 2-D points */
static void moments2(const float *x, int64_t n, double mu[2], double s[4]) {
    mu[0] = mu[1] = 0;
    for (int64_t i = 0; i < n; i++) mu[0] += x[2 * i] / (double)n, mu[1] += x[2 * i + 1] / (double)n;
    s[0] = s[1] = s[2] = s[3] = 0;
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 2; k++) s[2 * j + k] += (x[2 * i + j] - mu[j]) * (x[2 * i + k] - mu[k]) / (double)(n - 1);
}

TEST(frechet_closed_form_in_2d) {
    enum { NA = 500, NB = 700 };
    float *a = malloc(NA * 2 * sizeof *a), *b = malloc(NB * 2 * sizeof *b);
    fill(a, NA, 2, 1, 1.0);
    fill(b, NB, 2, 2, 2.5);
    for (int64_t i = 0; i < NB; i++) b[2 * i] += 0.7f;
    double ma[2], mb[2], sa[4], sb[4];
    moments2(a, NA, ma, sa);
    moments2(b, NB, mb, sb);
    double ab[4] = { sa[0] * sb[0] + sa[1] * sb[2], 0, 0, sa[2] * sb[1] + sa[3] * sb[3] };
    double det_a = sa[0] * sa[3] - sa[1] * sa[2], det_b = sb[0] * sb[3] - sb[1] * sb[2];
    double root = sqrt(ab[0] + ab[3] + 2 * sqrt(det_a * det_b));
    double want = (ma[0] - mb[0]) * (ma[0] - mb[0]) + (ma[1] - mb[1]) * (ma[1] - mb[1]) + sa[0] + sa[3] + sb[0] +
                  sb[3] - 2 * root;
    char err[DC_ERR_LEN];
    double got = dc_frechet_distance(a, NA, b, NB, 2, err, sizeof err);
    CHECK_MSG(fabs(got - want) <= 1e-9 * fabs(want) + 1e-12, "frechet %.12g, closed form %.12g", got, want);
    free(a);
    free(b);
}

TEST(frechet_zero_shift_symmetry_rotation) {
    enum { N = 400, D = 12 };
    float *a = malloc(N * D * sizeof *a), *b = malloc(N * D * sizeof *b), *ra = malloc(N * D * sizeof *ra),
          *rb = malloc(N * D * sizeof *rb);
    fill(a, N, D, 3, 1.0);
    fill(b, N, D, 4, 1.7);
    char err[DC_ERR_LEN];
    CHECK(fabs(dc_frechet_distance(a, N, a, N, D, err, sizeof err)) < 1e-9);
    double c2 = 0;
    for (int64_t i = 0; i < N; i++)
        for (int j = 0; j < D; j++) ra[i * D + j] = a[i * D + j] + 0.25f * (float)(j % 3);
    for (int j = 0; j < D; j++) c2 += (0.25 * (j % 3)) * (0.25 * (j % 3));
    double shift = dc_frechet_distance(a, N, ra, N, D, err, sizeof err);
    CHECK_MSG(fabs(shift - c2) < 1e-4 * c2, "shift: %g, |c|^2 %g", shift, c2);
    double ab = dc_frechet_distance(a, N, b, N, D, err, sizeof err), ba = dc_frechet_distance(b, N, a, N, D, err, sizeof err);
    CHECK_MSG(ab > 0.1 && fabs(ab - ba) < 1e-6 * ab, "d(a,b) %g, d(b,a) %g", ab, ba);
    /* one rotation of both sets in the (0,1) and (5,9) planes */
    double cs = cos(0.6), sn = sin(0.6);
    const float *src[2] = { a, b };
    float *dst[2] = { ra, rb };
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < N; i++) {
            const float *x = src[s] + i * D;
            float *y = dst[s] + i * D;
            for (int j = 0; j < D; j++) y[j] = x[j];
            y[0] = (float)(cs * x[0] - sn * x[1]), y[1] = (float)(sn * x[0] + cs * x[1]);
            y[5] = (float)(cs * x[5] + sn * x[9]), y[9] = (float)(-sn * x[5] + cs * x[9]);
        }
    double rot = dc_frechet_distance(ra, N, rb, N, D, err, sizeof err);
    CHECK_MSG(fabs(rot - ab) < 1e-4 * ab, "rotated %g, not %g", rot, ab);
    free(a), free(b), free(ra), free(rb);
}

TEST(frechet_refuses_bad_input) {
    float x[6] = { 0, 1, 2, 3, 4, NAN };
    char err[DC_ERR_LEN];
    CHECK(dc_frechet_distance(x, 3, x, 2, 2, err, sizeof err) < 0 && strstr(err, "non-finite"));
    CHECK(dc_frechet_distance(x, 1, x, 2, 2, err, sizeof err) < 0 && strstr(err, "at least 2"));
    CHECK(dc_frechet_distance(x, 2, x, 2, 0, err, sizeof err) < 0);
}
