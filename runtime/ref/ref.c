/* ref.c — dispatches a node to the reference kernel that ops.def's ref column names. */
#include <stdio.h>

#include "runtime/ref/ref.h"

static dc_ref_fn *const kernel_of[DC_OP_COUNT] = {
#define DC_OP(NAME, text, kind, arity, attr, shape, vjp, ref, lower, form) [DC_OP_##NAME] = DC_HOOK(dc_ref_, ref),
#include "ir/ops.def"
#undef DC_OP
};

bool dc_ref_eval(const dc_graph *g, const dc_node *n, const dc_tensor *const *in,
                 dc_tensor *out, uint64_t seed, char *err, size_t len) {
    if (!kernel_of[n->op]) {
        snprintf(err, len, "no ref kernel for %s", dc_op_name(n->op));
        return false;
    }
    dc_ref_args a = { g, n, in, out, seed, err, len };
    return kernel_of[n->op](&a);
}
