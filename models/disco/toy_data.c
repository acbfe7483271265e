/* toy_data.c — the toy data of DisCo-Diff (Xu et al. 2024, Sec. 5 / App.): a mixture of 8
 * equally weighted Gaussians with std 0.2 whose means lie at radius 3 on the compass
 * directions k pi/4; seeded draws with their mode labels, and the data's std. */
#include <math.h>

#include "models/disco/disco.h"

void dc_toy_mode_mean(int k, double out[2]) {
    if (k < 0 || k >= DC_TOY_MODES) {
        out[0] = out[1] = 0.0;
        return;
    }
    double a = k * M_PI / 4.0;
    out[0] = DC_TOY_RADIUS * cos(a);
    out[1] = DC_TOY_RADIUS * sin(a);
}

void dc_toy_sample(uint64_t seed, int64_t n, float *xy, int32_t *mode) {
    for (int64_t i = 0; i < n; i++) {
        int k = (int)(dc_rng_u32(seed, 1, (uint64_t)i) % DC_TOY_MODES);
        double mu[2];
        dc_toy_mode_mean(k, mu);
        xy[2 * i] = (float)(mu[0] + DC_TOY_STD * dc_rng_normal(seed, 2, 2 * (uint64_t)i));
        xy[2 * i + 1] = (float)(mu[1] + DC_TOY_STD * dc_rng_normal(seed, 2, 2 * (uint64_t)i + 1));
        if (mode) mode[i] = k;
    }
}

/* Var(x) = E[R^2 cos^2(k pi/4)] + STD^2 = R^2/2 + STD^2 (the cos^2 over the 8 angles average
 * to 1/2; the same for y with sin^2), and the mean is 0. */
double dc_toy_data_std(void) { return sqrt(DC_TOY_RADIUS * DC_TOY_RADIUS / 2.0 + DC_TOY_STD * DC_TOY_STD); }

double dc_points_std(const float *xy, int64_t n) {
    if (n < 1) return NAN;
    double mx = 0.0, my = 0.0;
    for (int64_t i = 0; i < n; i++) mx += xy[2 * i], my += xy[2 * i + 1];
    mx /= (double)n, my /= (double)n;
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double dx = xy[2 * i] - mx, dy = xy[2 * i + 1] - my;
        ss += dx * dx + dy * dy;
    }
    return sqrt(ss / (2.0 * (double)n));
}
