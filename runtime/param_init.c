/* param_init.c — initial values of PARAM nodes: zeros, ones, normal(std a), uniform[a, b),
 * kaiming N(0, 2/fan_in), xavier U(-r, r) with r = sqrt(6/(fan_in+fan_out)). Random kinds
 * draw element i from dc_rng_* at (seed, stream = XXH64(name), i), so a param's value depends
 * only on (seed, name, shape, init), never on threads or on other params. */
#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* fan_out = last dim, fan_in = numel / fan_out; both 1 for a scalar */
static void fans(const dc_shape *s, double *fan_in, double *fan_out) {
    double out = s->rank ? (double)s->dim[s->rank - 1] : 1.0;
    *fan_out = out;
    *fan_in = (double)dc_numel(s) / out;
}

/* lo + (hi - lo) * u with u uniform in (0, 1), kept below hi when rounding reaches it */
static float uniform_in(uint64_t seed, uint64_t stream, int64_t i, float lo, float hi) {
    float v = lo + (hi - lo) * dc_rng_uniform01(seed, stream, (uint64_t)i);
    return v < hi ? v : nextafterf(hi, lo);
}

void dc_param_init(const dc_node *n, dc_tensor *t, uint64_t seed) {
    const dc_init_attr *at = &n->attr.init;
    const char *name = n->name ? n->name : "";
    uint64_t stream = XXH64(name, strlen(name), 0);
    int64_t count = dc_numel(&t->type.shape);
    float *p = t->data;
    double fan_in, fan_out;
    fans(&t->type.shape, &fan_in, &fan_out);
    float kaiming_std = (float)sqrt(2.0 / fan_in);
    float xavier_r = (float)sqrt(6.0 / (fan_in + fan_out));
    #pragma omp parallel for schedule(static) if (count > 65536)
    for (int64_t i = 0; i < count; i++) {
        switch (at->kind) {
        case DC_INIT_ZEROS: p[i] = 0.0f; break;
        case DC_INIT_ONES: p[i] = 1.0f; break;
        case DC_INIT_NORMAL: p[i] = at->a * dc_rng_normal(seed, stream, (uint64_t)i); break;
        case DC_INIT_UNIFORM: p[i] = uniform_in(seed, stream, i, at->a, at->b); break;
        case DC_INIT_KAIMING: p[i] = kaiming_std * dc_rng_normal(seed, stream, (uint64_t)i); break;
        case DC_INIT_XAVIER: p[i] = uniform_in(seed, stream, i, -xavier_r, xavier_r); break;
        default: abort(); /* the verifier rejects unknown init kinds */
        }
    }
}
