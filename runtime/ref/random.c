/* random.c — ref kernels of the random ops. Element i of a node with attr {stream, a, b}
 * under the run seed uses dc_rng_uniform01/dc_rng_normal(seed, stream, i):
 * uniform = a + (b-a)*u, normal = a + b*z, gumbel = a - b*log(-log(u)); so a value depends
 * only on (seed, stream, i), never on threads. */
#include <math.h>
#include <stdio.h>

#include "runtime/ref/ref.h"

#define PAR_MIN 4096

bool dc_ref_random(const dc_ref_args *a) {
    const dc_random_attr *r = &a->n->attr.random;
    dc_op op = a->n->op;
    if (op != DC_OP_UNIFORM && op != DC_OP_NORMAL && op != DC_OP_GUMBEL) {
        snprintf(a->err, a->len, "no ref kernel for %s", dc_op_name(op));
        return false;
    }
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
