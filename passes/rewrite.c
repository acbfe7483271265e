/* rewrite.c — the rewriter every pass rebuilds graphs with (see rewrite.h): old nodes are
 * walked in schedule order and kept, dropped, mapped or replaced; outputs and updates follow
 * the map. Names, sites (file, line) and the graph's source file stay as they were. */
#include "passes/rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/scalar.h"

void dc_rw_begin(dc_rewriter *rw, dc_graph *g) {
    dc_graph_drop_plan(g);
    rw->g = g;
    rw->old = g->nodes;
    rw->n_old = g->n_nodes;
    rw->map = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *rw->map);
    if (!rw->map) abort(); /* out of memory */
    for (int i = 0; i < g->n_nodes; i++) rw->map[i] = -1;
    g->nodes = NULL;
    g->n_nodes = g->cap_nodes = 0;
}

dc_node dc_rw_mapped(const dc_rewriter *rw, int i) {
    dc_node n = rw->old[i];
    for (int k = 0; k < n.n_in; k++) {
        n.in[k] = rw->map[n.in[k]];
        if (n.in[k] < 0) abort(); /* a pass mapped a node before its inputs */
    }
    return n;
}

int dc_rw_keep(dc_rewriter *rw, int i) {
    dc_node n = dc_rw_mapped(rw, i);
    return rw->map[i] = dc_graph_append(rw->g, &n);
}

int dc_rw_emit(dc_rewriter *rw, int at, dc_op op, int n_in, const int *in, const dc_attr *attr,
               const dc_type *declared) {
    char err[DC_ERR_LEN];
    const dc_node *site = &rw->old[at];
    int id = dc_graph_emit(rw->g, op, n_in, in, attr, declared, NULL, site->file, site->line, err,
                           sizeof err);
    if (id < 0) {
        fprintf(stderr, "disco: internal error: a pass made an invalid node: %s\n", err);
        abort();
    }
    rw->g->nodes[id].col = site->col;
    return id;
}

int dc_rw_fill(dc_rewriter *rw, int at, float value, const dc_type *t) {
    dc_attr a;
    memset(&a, 0, sizeof a);
    a.scalar.value = value;
    return dc_rw_emit(rw, at, DC_OP_FILL, 0, NULL, &a, t);
}

void dc_rw_end(dc_rewriter *rw) {
    dc_graph *g = rw->g;
    for (int i = 0; i < g->n_outputs; i++) g->outputs[i] = rw->map[g->outputs[i]];
    for (int i = 0; i < g->n_updates; i++) {
        g->updates[i].param = rw->map[g->updates[i].param];
        g->updates[i].value = rw->map[g->updates[i].value];
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] < 0) abort(); /* a pass dropped a value the graph returns */
    for (int i = 0; i < g->n_updates; i++)
        if (g->updates[i].param < 0 || g->updates[i].value < 0) abort(); /* ... or assigns */
    for (int i = 0; i < rw->n_old; i++) free(rw->old[i].name);
    free(rw->old);
    free(rw->map);
    rw->old = NULL;
    rw->map = NULL;
}

bool *dc_live_nodes(const dc_graph *g) {
    bool *live = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *live);
    if (!live) abort(); /* out of memory */
    for (int i = 0; i < g->n_outputs; i++) live[g->outputs[i]] = true;
    for (int i = 0; i < g->n_updates; i++) live[g->updates[i].param] = live[g->updates[i].value] = true;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const dc_node *n = &g->nodes[i];
        live[i] |= n->op == DC_OP_INPUT || n->op == DC_OP_PARAM;
        if (live[i])
            for (int k = 0; k < n->n_in; k++) live[n->in[k]] = true;
    }
    return live;
}

dc_uses dc_uses_of(const dc_graph *g, const bool *readers) {
    size_t n = (size_t)g->n_nodes + 1;
    dc_uses u = { calloc(n, sizeof(int)), malloc(n * sizeof(int)) };
    if (!u.uses || !u.consumer) abort(); /* out of memory */
    for (int i = 0; i < g->n_nodes; i++) u.consumer[i] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        if (readers && !readers[i]) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            u.uses[g->nodes[i].in[k]]++;
            u.consumer[g->nodes[i].in[k]] = i;
        }
    }
    for (int i = 0; i < g->n_outputs; i++) u.uses[g->outputs[i]]++;
    for (int j = 0; j < g->n_updates; j++) u.uses[g->updates[j].value]++;
    return u;
}

void dc_uses_free(dc_uses *u) {
    free(u->uses);
    free(u->consumer);
    u->uses = u->consumer = NULL;
}

bool dc_fill_value(const dc_graph *g, int id, double *v) {
    const dc_node *n = &g->nodes[id];
    if (n->op != DC_OP_FILL) return false;
    float f = n->attr.scalar.value;
    *v = n->type.dtype == DC_I32 ? (double)dc_f32_to_i32(f) : (double)f;
    return true;
}

bool dc_i32_fill_exact(int32_t v, float *f) {
    *f = (float)v;
    return dc_f32_to_i32(*f) == v;
}

void dc_rw_reorder(dc_graph *g, const int *order, const int *gid) {
    int n = g->n_nodes;
    bool moved = false, grouped = false;
    for (int i = 0; i < n; i++) {
        moved |= order[i] != i;
        grouped |= gid[i] > 0;
    }
    int *group = malloc(((size_t)n + 1) * sizeof(int));
    if (!group) abort(); /* out of memory */
    if (moved) {
        dc_rewriter rw;
        dc_rw_begin(&rw, g);
        for (int i = 0; i < n; i++) dc_rw_keep(&rw, order[i]);
        dc_rw_end(&rw);
    } else {
        dc_graph_drop_plan(g);
    }
    for (int i = 0; i < n; i++) group[i] = gid[order[i]];
    if (grouped) g->group = group;
    else free(group);
}
