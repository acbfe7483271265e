/* schedule_results.c — schedules the result nodes of one computation together.
 * Rewrites: the nodes of a multi-result op that are results of one computation
 * (dc_same_computation: attention's out and lse, attention_bwd's gradients) are moved up to
 * follow the first of them, in node order, so the lowering can compute them in one kernel
 * (codegen/lower_attention.c) and the memory plan sees them written at once. The VJP asks for
 * the lse far from the forward's out; this brings it back.
 * Guarantees: only such result nodes move (their inputs are the first one's, so the order
 * stays topological); loop groups stay as they were (no result node is a group member); the
 * memory plan is dropped when anything moves. Idempotent. */
#include <stdlib.h>

#include "passes/passes.h"
#include "passes/rewrite.h"

bool dc_pass_schedule_results(dc_graph *g, const dc_pass_opts *o, char *err, size_t len) {
    (void)o, (void)err, (void)len;
    int n = g->n_nodes, k = 0;
    int *order = malloc(((size_t)n + 1) * sizeof(int)), *gid = malloc(((size_t)n + 1) * sizeof(int));
    bool *placed = calloc((size_t)n + 1, sizeof(bool));
    if (!order || !gid || !placed) abort(); /* out of memory */
    for (int i = 0; i < n; i++) {
        gid[i] = g->group ? g->group[i] : 0;
        if (placed[i]) continue;
        order[k++] = i;
        placed[i] = true;
        if (!dc_op_multi_result(g->nodes[i].op)) continue;
        for (int j = i + 1; j < n; j++)
            if (!placed[j] && dc_same_computation(&g->nodes[i], &g->nodes[j])) {
                order[k++] = j;
                placed[j] = true;
            }
    }
    bool moved = false;
    for (int i = 0; i < n; i++) moved |= order[i] != i;
    if (moved) dc_rw_reorder(g, order, gid);
    free(order);
    free(gid);
    free(placed);
    return true;
}
