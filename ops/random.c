/* random.c — the random ops: shape rule and reference kernel (not differentiable). Element i of a node with attr {stream, a, b}
 * under the run seed uses dc_rng_uniform01/dc_rng_normal(seed, stream, i):
 * uniform = a + (b-a)*u, normal = a + b*z, gumbel = a - b*log(-log(u)); so a value depends
 * only on (seed, stream, i), never on threads. */
#include <math.h>

#include "ops/ops.h"

#define PAR_MIN 4096

/* the declared type: f32, with a stream >= 0 */
bool dc_shape_random(dc_rule *r, dc_type *out) {
    const dc_node *n = r->n;
    if (!dc_rule_check_type(r, &n->type, "declared type")) return false;
    if (n->type.dtype != DC_F32) return dc_rule_fail(r, "expects f32, got %s", dc_type_s(&n->type).s);
    if (n->attr.random.stream < 0)
        return dc_rule_fail(r, "stream must be >= 0, got %lld", (long long)n->attr.random.stream);
    *out = dc_make_type(DC_F32, &n->type.shape);
    return true;
}

bool dc_ref_random(const dc_ref_args *a) {
    const dc_random_attr *r = &a->n->attr.random;
    dc_op op = a->n->op;
    uint64_t seed = a->seed, stream = (uint64_t)r->stream;
    int64_t n = dc_numel(&a->out->type.shape);
    float *y = a->out->data;
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        if (op == DC_OP_NORMAL) {
            y[i] = r->a + r->b * dc_rng_normal(seed, stream, (uint64_t)i);
        } else {
            float u = dc_rng_uniform01(seed, stream, (uint64_t)i);
            y[i] = op == DC_OP_UNIFORM ? r->a + (r->b - r->a) * u : r->a - r->b * logf(-logf(u));
        }
    }
    return true;
}
