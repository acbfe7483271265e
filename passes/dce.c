/* dce.c — dead-code elimination.
 * Rewrites: removes every node whose value reaches neither an output nor a state update
 * (the updated param and its new value both count as used).
 * Keeps: every INPUT (the graph's signature) and every PARAM (state, checkpoints), even
 * unused; the order of the nodes it keeps; outputs, their names, updates.
 * After: every non-source node is used. Renumbers the nodes. Idempotent. */
#include <stdlib.h>

#include "passes/passes.h"
#include "passes/rewrite.h"

bool dc_pass_dce(dc_graph *g, const dc_pass_opts *o, char *err, size_t len) {
    (void)o, (void)err, (void)len;
    bool *live = dc_live_nodes(g);
    int n_live = 0;
    for (int i = 0; i < g->n_nodes; i++) n_live += live[i];
    if (n_live == g->n_nodes) { /* nothing dead: the graph (and its memory plan) stays */
        free(live);
        return true;
    }
    dc_rewriter rw;
    dc_rw_begin(&rw, g);
    for (int i = 0; i < rw.n_old; i++)
        if (live[i]) dc_rw_keep(&rw, i);
    dc_rw_end(&rw);
    free(live);
    return true;
}
