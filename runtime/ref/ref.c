/* ref.c — dispatches a node to the reference kernel of its op family. */
#include "runtime/ref/ref.h"

bool dc_ref_eval(const dc_graph *g, const dc_node *n, const dc_tensor *const *in,
                 dc_tensor *out, uint64_t seed, char *err, size_t len) {
    static bool (*const family[])(const dc_ref_args *) = {
        [DC_KIND_SOURCE] = dc_ref_source,
        [DC_KIND_ELEMENTWISE] = dc_ref_elementwise,
        [DC_KIND_REDUCTION] = dc_ref_reduction,
        [DC_KIND_CONTRACTION] = dc_ref_contraction,
        [DC_KIND_NORM] = dc_ref_norm,
        [DC_KIND_MOVEMENT] = dc_ref_movement,
        [DC_KIND_RANDOM] = dc_ref_random,
        [DC_KIND_LOSS] = dc_ref_loss,
    };
    dc_ref_args a = { g, n, in, out, seed, err, len };
    return family[dc_op_get(n->op)->kind](&a);
}
