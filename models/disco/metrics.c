/* metrics.c — how the toy models are judged (DisCo-Diff, Xu et al. 2024, toy experiment):
 * exact W2 by an exact assignment solver and its floor, the W2 decomposition into mode
 * weights and within-mode error, coverage, off-mode fraction, latent purity, the ODE's
 * curvature and drift-Jacobian norm per sigma band, and the JSON record of a model's metrics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/disco.h"

/* ---- exact assignment --------------------------------------------------------------- */

/* Rows are added one at a time. For row r a Dijkstra search over columns with reduced costs
 * cost[i][j] - u[i] - v[j] >= 0 finds the shortest augmenting path from r to a free column;
 * the potentials are then shifted so reduced costs stay >= 0 and matched edges stay tight,
 * and the path is flipped. Index 0 of the column arrays is a virtual column holding r.
 * Invariant: u[i] + v[j] <= cost[i][j] everywhere, equality on the matching, so the final
 * matching is optimal (LP duality). */
double dc_assignment(int64_t n, const double *cost, int64_t *col_of_row) {
    if (n < 1 || !cost || !col_of_row) return -1.0;
    for (int64_t k = 0; k < n * n; k++)
        if (!isfinite(cost[k])) return -1.0;
    size_t m = (size_t)n + 1;
    double *u = calloc(m, sizeof *u), *v = calloc(m, sizeof *v), *minv = malloc(m * sizeof *minv);
    int64_t *row_of = calloc(m, sizeof *row_of), *way = calloc(m, sizeof *way);
    unsigned char *used = malloc(m);
    if (!u || !v || !minv || !row_of || !way || !used) abort();
    for (int64_t r = 1; r <= n; r++) {
        row_of[0] = r;
        int64_t j0 = 0;
        for (size_t j = 0; j < m; j++) minv[j] = INFINITY, used[j] = 0;
        do {
            used[j0] = 1;
            int64_t i0 = row_of[j0], j1 = 0;
            double delta = INFINITY;
            const double *row = cost + (i0 - 1) * n;
            for (int64_t j = 1; j <= n; j++) {
                if (used[j]) continue;
                double cur = row[j - 1] - u[i0] - v[j];
                if (cur < minv[j]) minv[j] = cur, way[j] = j0;
                if (minv[j] < delta) delta = minv[j], j1 = j;
            }
            for (int64_t j = 0; j <= n; j++) {
                if (used[j]) u[row_of[j]] += delta, v[j] -= delta;
                else minv[j] -= delta;
            }
            j0 = j1;
        } while (row_of[j0] != 0);
        do {
            int64_t j1 = way[j0];
            row_of[j0] = row_of[j1];
            j0 = j1;
        } while (j0 != 0);
    }
    for (int64_t j = 1; j <= n; j++) col_of_row[row_of[j] - 1] = j - 1;
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += cost[i * n + col_of_row[i]];
    free(u), free(v), free(minv), free(row_of), free(way), free(used);
    return total;
}

double dc_w2(const float *a, const float *b, int64_t n, int64_t dim, char *err, size_t len) {
    if (!a || !b || n < 1 || dim < 1 || n > DC_W2_MAX_N || dim > 1024) {
        snprintf(err, len, "w2: need two sets of 1..%d points of dim 1..1024 (got n %lld, dim %lld)",
                 DC_W2_MAX_N, (long long)n, (long long)dim);
        return -1.0;
    }
    double *cost = malloc((size_t)n * (size_t)n * sizeof *cost);
    int64_t *col = malloc((size_t)n * sizeof *col);
    if (!cost || !col) abort();
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < dim; k++) {
                double d = (double)a[i * dim + k] - (double)b[j * dim + k];
                s += d * d;
            }
            cost[i * n + j] = s;
        }
    double total = dc_assignment(n, cost, col);
    free(cost);
    free(col);
    if (total < 0.0) {
        snprintf(err, len, "w2: a point has a non-finite coordinate");
        return -1.0;
    }
    return sqrt(total / (double)n);
}

double dc_w2_floor(int64_t n, uint64_t seed, char *err, size_t len) {
    if (n < 1 || n > DC_W2_MAX_N) {
        snprintf(err, len, "w2 floor: need 1 <= n <= %d (got %lld)", DC_W2_MAX_N, (long long)n);
        return -1.0;
    }
    float *a = malloc((size_t)n * 2 * sizeof *a), *b = malloc((size_t)n * 2 * sizeof *b);
    if (!a || !b) abort();
    dc_toy_sample(seed, n, a, NULL);
    dc_toy_sample(seed + 1, n, b, NULL);
    double w = dc_w2(a, b, n, 2, err, len);
    free(a);
    free(b);
    return w;
}

/* ---- mode statistics ------------------------------------------------------------------ */

/* squared distance from p to the mean of mode k */
static double mode_dist2(const float p[2], int k) {
    double mu[2];
    dc_toy_mode_mean(k, mu);
    double dx = p[0] - mu[0], dy = p[1] - mu[1];
    return dx * dx + dy * dy;
}

int dc_toy_nearest_mode(const float p[2]) {
    int best = 0;
    double bd = mode_dist2(p, 0);
    for (int k = 1; k < DC_TOY_MODES; k++) {
        double d = mode_dist2(p, k);
        if (d < bd) bd = d, best = k;
    }
    return best;
}

/* the nearest mode of p if p lies within 3 STD of its mean, else -1 */
static int on_mode(const float p[2]) {
    int k = dc_toy_nearest_mode(p);
    return mode_dist2(p, k) <= 9.0 * DC_TOY_STD * DC_TOY_STD ? k : -1;
}

double dc_mode_tv(const float *pts, int64_t n) {
    if (n < 1) return NAN;
    int64_t c[DC_TOY_MODES] = { 0 };
    for (int64_t i = 0; i < n; i++) c[dc_toy_nearest_mode(pts + 2 * i)]++;
    double tv = 0.0;
    for (int k = 0; k < DC_TOY_MODES; k++) tv += fabs((double)c[k] / (double)n - 1.0 / DC_TOY_MODES);
    return 0.5 * tv;
}

double dc_off_mode_fraction(const float *pts, int64_t n) {
    if (n < 1) return NAN;
    int64_t off = 0;
    for (int64_t i = 0; i < n; i++) off += on_mode(pts + 2 * i) < 0;
    return (double)off / (double)n;
}

double dc_mode_coverage(const float *pts, int64_t n, double min_share) {
    if (n < 1) return NAN;
    int64_t c[DC_TOY_MODES] = { 0 };
    for (int64_t i = 0; i < n; i++) {
        int k = on_mode(pts + 2 * i);
        if (k >= 0) c[k]++;
    }
    int covered = 0;
    for (int k = 0; k < DC_TOY_MODES; k++)
        covered += (double)c[k] >= min_share * (double)n / DC_TOY_MODES;
    return (double)covered / DC_TOY_MODES;
}

double dc_within_mode_w2(const float *gen, int64_t n, const float *data, const int32_t *data_mode,
                         int64_t m, char *err, size_t len) {
    for (int64_t i = 0; i < m; i++)
        if (data_mode[i] < 0 || data_mode[i] >= DC_TOY_MODES) {
            snprintf(err, len, "within-mode w2: data label %d at %lld is not a mode 0..%d",
                     (int)data_mode[i], (long long)i, DC_TOY_MODES - 1);
            return -1.0;
        }
    float *a = malloc(((size_t)n + 1) * 2 * sizeof *a), *b = malloc(((size_t)m + 1) * 2 * sizeof *b);
    if (!a || !b) abort();
    double sum = 0.0;
    int modes = 0;
    for (int k = 0; k < DC_TOY_MODES; k++) {
        int64_t na = 0, nb = 0;
        for (int64_t i = 0; i < n; i++)
            if (dc_toy_nearest_mode(gen + 2 * i) == k) memcpy(a + 2 * na++, gen + 2 * i, 2 * sizeof *a);
        for (int64_t i = 0; i < m; i++)
            if (data_mode[i] == k) memcpy(b + 2 * nb++, data + 2 * i, 2 * sizeof *b);
        int64_t c = na < nb ? na : nb;
        if (c < 1) continue;
        double w = dc_w2(a, b, c, 2, err, len);
        if (w < 0.0) {
            sum = -1.0;
            break;
        }
        sum += w;
        modes++;
    }
    free(a);
    free(b);
    if (sum < 0.0) return -1.0;
    return modes ? sum / modes : NAN;
}

double dc_latent_purity(const int32_t *code, const int32_t *mode, int64_t n, int codes,
                        char *err, size_t len) {
    if (n < 1 || codes < 1 || codes > (1 << 20)) {
        snprintf(err, len, "purity: need n >= 1 and 1..2^20 codes (got %lld, %d)", (long long)n, codes);
        return -1.0;
    }
    int64_t *c = calloc((size_t)codes * DC_TOY_MODES, sizeof *c);
    if (!c) abort();
    double purity = -1.0;
    int64_t i = 0;
    for (; i < n; i++) {
        if (code[i] < 0 || code[i] >= codes || mode[i] < 0 || mode[i] >= DC_TOY_MODES) break;
        c[(size_t)code[i] * DC_TOY_MODES + (size_t)mode[i]]++;
    }
    if (i < n) {
        snprintf(err, len, "purity: point %lld has code %d (of %d) and mode %d (of %d)", (long long)i,
                 (int)code[i], codes, (int)mode[i], DC_TOY_MODES);
    } else {
        int64_t top = 0;
        for (int k = 0; k < codes; k++) {
            int64_t best = 0;
            for (int j = 0; j < DC_TOY_MODES; j++)
                if (c[(size_t)k * DC_TOY_MODES + j] > best) best = c[(size_t)k * DC_TOY_MODES + j];
            top += best;
        }
        purity = (double)top / (double)n;
    }
    free(c);
    return purity;
}

/* ---- ODE curvature and Jacobian ------------------------------------------------------- */

/* Buffers for evaluating the drift f(x, t) = (x - D(x; t)) / t on n points. */
typedef struct {
    dc_denoise_fn denoise;
    void *ctx;
    int64_t n, dim, m;
    float *den;
} drift_eval;

static bool eval_drift(drift_eval *e, const float *x, double t, double *f, char *err, size_t len) {
    if (!e->denoise(e->ctx, x, (float)t, e->den, e->n, e->dim, err, len)) return false;
    for (int64_t j = 0; j < e->m; j++) f[j] = ((double)x[j] - (double)e->den[j]) / t;
    return true;
}

static bool check_ode(dc_denoise_fn denoise, const float *traj, const double *t, int steps,
                      int64_t n, int64_t dim, const double *out, char *err, size_t len) {
    if (!denoise || !traj || !t || !out || steps < 1 || n < 1 || dim < 1 || n > INT64_MAX / dim / 8) {
        snprintf(err, len, "ode stats: need a denoiser, a trajectory, sigmas, output, steps >= 1, "
                 "n >= 1, dim >= 1");
        return false;
    }
    for (int i = 0; i < steps; i++)
        if (!(t[i] > 0.0) || !isfinite(t[i])) {
            snprintf(err, len, "ode stats: sigma %d is %g, must be finite and > 0", i, t[i]);
            return false;
        }
    return true;
}

static double norm(const double *v, int64_t dim) {
    double s = 0.0;
    for (int64_t k = 0; k < dim; k++) s += v[k] * v[k];
    return sqrt(s);
}

/* mean over the points of |T(x', t') - T(x, t)| / |x' - x| at one step */
static double step_curvature(const float *x, const float *xp, const double *f, const double *fp,
                             int64_t n, int64_t dim) {
    double sum = 0.0;
    int64_t used = 0;
    for (int64_t i = 0; i < n; i++) {
        const double *a = f + i * dim, *b = fp + i * dim;
        double na = norm(a, dim), nb = norm(b, dim), dt2 = 0.0, dx2 = 0.0;
        for (int64_t k = 0; k < dim; k++) {
            double d = b[k] / nb - a[k] / na;
            double s = (double)xp[i * dim + k] - (double)x[i * dim + k];
            dt2 += d * d;
            dx2 += s * s;
        }
        if (!(na > 0.0) || !(nb > 0.0) || !(dx2 > 0.0) || !isfinite(dt2)) continue;
        sum += sqrt(dt2 / dx2);
        used++;
    }
    return used ? sum / (double)used : NAN;
}

bool dc_ode_curvature(dc_denoise_fn denoise, void *ctx, const float *traj, const double *t,
                      int steps, int64_t n, int64_t dim, double *curv, char *err, size_t len) {
    if (!check_ode(denoise, traj, t, steps, n, dim, curv, err, len)) return false;
    drift_eval e = { denoise, ctx, n, dim, n * dim, NULL };
    e.den = malloc((size_t)e.m * sizeof *e.den);
    float *xp = malloc((size_t)e.m * sizeof *xp);
    double *f = malloc((size_t)e.m * sizeof *f), *fp = malloc((size_t)e.m * sizeof *fp);
    if (!e.den || !xp || !f || !fp) abort();
    bool ok = true;
    for (int i = 0; ok && i < steps; i++) {
        const float *x = traj + (size_t)i * (size_t)e.m;
        double h = fmin(0.001, t[i] / 2.0);
        ok = eval_drift(&e, x, t[i], f, err, len);
        for (int64_t j = 0; ok && j < e.m; j++) xp[j] = (float)((double)x[j] - h * f[j]);
        ok = ok && eval_drift(&e, xp, t[i] - h, fp, err, len);
        if (ok) curv[i] = step_curvature(x, xp, f, fp, n, dim);
    }
    free(e.den), free(xp), free(f), free(fp);
    return ok;
}

bool dc_ode_jacobian(dc_denoise_fn denoise, void *ctx, const float *traj, const double *t,
                     int steps, int64_t n, int64_t dim, double *jac, char *err, size_t len) {
    if (!check_ode(denoise, traj, t, steps, n, dim, jac, err, len)) return false;
    drift_eval e = { denoise, ctx, n, dim, n * dim, NULL };
    e.den = malloc((size_t)e.m * sizeof *e.den);
    float *xa = malloc((size_t)e.m * sizeof *xa), *xb = malloc((size_t)e.m * sizeof *xb);
    double *fa = malloc((size_t)e.m * sizeof *fa), *fb = malloc((size_t)e.m * sizeof *fb);
    if (!e.den || !xa || !xb || !fa || !fb) abort();
    bool ok = true;
    for (int i = 0; ok && i < steps; i++) {
        const float *x = traj + (size_t)i * (size_t)e.m;
        double eps = 0.01 * fmax(t[i], 0.1), frob = 0.0;
        for (int64_t k = 0; ok && k < dim; k++) {
            memcpy(xa, x, (size_t)e.m * sizeof *xa);
            memcpy(xb, x, (size_t)e.m * sizeof *xb);
            for (int64_t p = 0; p < n; p++) {
                xa[p * dim + k] = (float)((double)x[p * dim + k] + eps);
                xb[p * dim + k] = (float)((double)x[p * dim + k] - eps);
            }
            ok = eval_drift(&e, xa, t[i], fa, err, len) && eval_drift(&e, xb, t[i], fb, err, len);
            for (int64_t p = 0; ok && p < n; p++) {
                double step = (double)xa[p * dim + k] - (double)xb[p * dim + k];
                for (int64_t r = 0; r < dim; r++) {
                    double d = (fa[p * dim + r] - fb[p * dim + r]) / step;
                    frob += d * d;
                }
            }
        }
        if (ok) jac[i] = frob / (double)n;
    }
    free(e.den), free(xa), free(xb), free(fa), free(fb);
    return ok;
}

int dc_sigma_band(double t) {
    if (t > 10.0) return 0;
    if (t > 1.0) return 1;
    if (t > 0.1) return 2;
    return 3;
}

void dc_band_means(const double *per_step, const double *t, int steps, double out[DC_SIGMA_BANDS]) {
    double sum[DC_SIGMA_BANDS] = { 0 };
    int cnt[DC_SIGMA_BANDS] = { 0 };
    for (int i = 0; i < steps; i++) {
        if (isnan(per_step[i])) continue;
        int b = dc_sigma_band(t[i]);
        sum[b] += per_step[i];
        cnt[b]++;
    }
    for (int b = 0; b < DC_SIGMA_BANDS; b++) out[b] = cnt[b] ? sum[b] / cnt[b] : NAN;
}

/* ---- the metrics record --------------------------------------------------------------- */

void dc_toy_metrics_init(dc_toy_metrics *m) {
    memset(m, 0, sizeof *m);
    m->w2 = m->w2_floor = m->w2_within = m->mode_tv = NAN;
    m->coverage = m->off_mode = m->purity = NAN;
    for (int k = 0; k < DC_METRICS_MAX_W2_AT; k++) m->w2_at[k] = NAN;
    for (int b = 0; b < DC_SIGMA_BANDS; b++) m->curv[b] = m->jac[b] = NAN;
}

/* `"key": value` with a separator before every key but the first */
static bool json_kv(FILE *f, bool *first, const char *key, double v) {
    bool ok = fprintf(f, "%s\"%s\": ", *first ? "" : ", ", key) > 0;
    *first = false;
    if (isfinite(v)) return ok && fprintf(f, "%.6g", v) > 0;
    return ok && fputs("null", f) >= 0;
}

bool dc_toy_metrics_json(FILE *f, const dc_toy_metrics *m) {
    static const char *band_key[DC_SIGMA_BANDS] = { "gt10", "1_10", "01_1", "lt01" };
    bool first = true, ok = fputc('{', f) != EOF;
    ok = json_kv(f, &first, "w2", m->w2) && ok;
    ok = json_kv(f, &first, "w2_floor", m->w2_floor) && ok;
    int n_at = m->n_w2_at < 0 ? 0 : m->n_w2_at > DC_METRICS_MAX_W2_AT ? DC_METRICS_MAX_W2_AT : m->n_w2_at;
    for (int k = 0; k < n_at; k++) {
        char key[32];
        snprintf(key, sizeof key, "w2_%d", m->w2_at_steps[k]);
        ok = json_kv(f, &first, key, m->w2_at[k]) && ok;
    }
    ok = json_kv(f, &first, "w2_within", m->w2_within) && ok;
    ok = json_kv(f, &first, "mode_tv", m->mode_tv) && ok;
    ok = json_kv(f, &first, "coverage", m->coverage) && ok;
    ok = json_kv(f, &first, "off_mode", m->off_mode) && ok;
    ok = json_kv(f, &first, "purity", m->purity) && ok;
    for (int b = 0; b < DC_SIGMA_BANDS; b++) {
        char key[32];
        snprintf(key, sizeof key, "curv_%s", band_key[b]);
        ok = json_kv(f, &first, key, m->curv[b]) && ok;
    }
    for (int b = 0; b < DC_SIGMA_BANDS; b++) {
        char key[32];
        snprintf(key, sizeof key, "jac_%s", band_key[b]);
        ok = json_kv(f, &first, key, m->jac[b]) && ok;
    }
    return fputc('}', f) != EOF && ok;
}
