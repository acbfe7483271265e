/* frechet.c — the Frechet distance between two sets of feature vectors (the image metric of
 * images.h, FID's formula on fmnist-cnn's features): each set summarised by its mean and
 * covariance, d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2). The square
 * roots come from symmetric eigendecompositions by cyclic Jacobi rotations, in doubles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/images.h"

#define JACOBI_SWEEPS 100

/* The eigenvalues of symmetric a [d,d] (destroyed) into w [d] and its eigenvectors into the
 * columns of v [d,d]: cyclic Jacobi until the off-diagonal mass is below 1e-22 of the total. */
static void jacobi_eigen(double *a, int d, double *w, double *v) {
    for (int i = 0; i < d * d; i++) v[i] = 0;
    for (int i = 0; i < d; i++) v[i * d + i] = 1;
    double total = 0;
    for (int i = 0; i < d * d; i++) total += a[i] * a[i];
    for (int sweep = 0; sweep < JACOBI_SWEEPS; sweep++) {
        double off = 0;
        for (int p = 0; p < d; p++)
            for (int q = p + 1; q < d; q++) off += 2 * a[p * d + q] * a[p * d + q];
        if (off <= 1e-22 * total || off == 0) break;
        for (int p = 0; p < d; p++)
            for (int q = p + 1; q < d; q++) {
                double apq = a[p * d + q];
                if (apq == 0) continue;
                double theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < d; k++) {   /* columns p, q */
                    double akp = a[k * d + p], akq = a[k * d + q];
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for (int k = 0; k < d; k++) {   /* rows p, q */
                    double apk = a[p * d + k], aqk = a[q * d + k];
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < d; k++) {
                    double vkp = v[k * d + p], vkq = v[k * d + q];
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < d; i++) w[i] = a[i * d + i];
}

/* mean [d] and covariance [d,d] (divided by n - 1) of x [n,d] */
static void moments(const float *x, int64_t n, int d, double *mean, double *cov) {
    for (int j = 0; j < d; j++) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += x[i * d + j];
        mean[j] = s / (double)n;
    }
    memset(cov, 0, (size_t)d * (size_t)d * sizeof *cov);
    double *row = malloc((size_t)d * sizeof *row);
    if (!row) abort(); /* out of memory */
    for (int64_t i = 0; i < n; i++) {
        for (int j = 0; j < d; j++) row[j] = x[i * d + j] - mean[j];
        for (int j = 0; j < d; j++)
            for (int k = j; k < d; k++) cov[j * d + k] += row[j] * row[k];
    }
    for (int j = 0; j < d; j++)
        for (int k = j; k < d; k++) cov[k * d + j] = cov[j * d + k] /= (double)(n - 1);
    free(row);
}

double dc_frechet_distance(const float *a, int64_t na, const float *b, int64_t nb, int d, char *err, size_t len) {
    if (d < 1 || d > 4096 || na < 2 || nb < 2) {
        snprintf(err, len, "frechet: need d in [1, 4096] and at least 2 vectors per set (got d %d, %lld and %lld)", d,
                 (long long)na, (long long)nb);
        return -1;
    }
    for (int64_t i = 0; i < na * d; i++)
        if (!isfinite(a[i])) return snprintf(err, len, "frechet: the first set has a non-finite value"), -1;
    for (int64_t i = 0; i < nb * d; i++)
        if (!isfinite(b[i])) return snprintf(err, len, "frechet: the second set has a non-finite value"), -1;
    size_t dd = (size_t)d * (size_t)d;
    double *mu_a = malloc((size_t)d * sizeof(double)), *mu_b = malloc((size_t)d * sizeof(double));
    double *sa = malloc(dd * sizeof(double)), *sb = malloc(dd * sizeof(double)), *v = malloc(dd * sizeof(double));
    double *r = malloc(dd * sizeof(double)), *m = malloc(dd * sizeof(double)), *w = malloc((size_t)d * sizeof(double));
    if (!mu_a || !mu_b || !sa || !sb || !v || !r || !m || !w) abort(); /* out of memory */
    moments(a, na, d, mu_a, sa);
    moments(b, nb, d, mu_b, sb);
    double dist = 0, trace = 0;
    for (int j = 0; j < d; j++) dist += (mu_a[j] - mu_b[j]) * (mu_a[j] - mu_b[j]), trace += sa[j * d + j] + sb[j * d + j];
    /* r = S_a^1/2 = V diag(sqrt(max(w, 0))) V^T */
    memcpy(m, sa, dd * sizeof *m);
    jacobi_eigen(m, d, w, v);
    for (int j = 0; j < d; j++)
        for (int k = 0; k < d; k++) {
            double s = 0;
            for (int e = 0; e < d; e++) s += v[j * d + e] * sqrt(w[e] > 0 ? w[e] : 0) * v[k * d + e];
            r[j * d + k] = s;
        }
    /* m = r S_b r (symmetric PSD); tr((S_a^1/2 S_b S_a^1/2)^1/2) = sum sqrt of its eigenvalues */
    for (int j = 0; j < d; j++)
        for (int k = 0; k < d; k++) {
            double s = 0;
            for (int e = 0; e < d; e++) s += sb[j * d + e] * r[e * d + k];
            v[j * d + k] = s;
        }
    for (int j = 0; j < d; j++)
        for (int k = 0; k < d; k++) {
            double s = 0;
            for (int e = 0; e < d; e++) s += r[j * d + e] * v[e * d + k];
            m[j * d + k] = s;
        }
    for (int j = 0; j < d; j++)
        for (int k = j + 1; k < d; k++) m[j * d + k] = m[k * d + j] = (m[j * d + k] + m[k * d + j]) / 2;
    jacobi_eigen(m, d, w, v);
    double root = 0;
    for (int j = 0; j < d; j++) root += sqrt(w[j] > 0 ? w[j] : 0);
    dist += trace - 2 * root;
    free(mu_a), free(mu_b), free(sa), free(sb), free(v), free(r), free(m), free(w);
    return dist > 0 ? dist : 0;
}
