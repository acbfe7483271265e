/* exec.c — the reference executor: verifies a graph, lays every node's value out in one
 * arena (64-byte aligned slots, bump allocation), initialises the params, and runs the nodes
 * in order with the ref kernels. INPUT and PARAM values stay in place between runs. */
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

struct dc_exec {
    const dc_graph *g;
    uint64_t seed;
    char *arena;
    size_t arena_bytes;
    dc_tensor *vals;             /* [n_nodes] views into the arena (owned = false) */
};

static size_t slot_bytes(const dc_type *t) {
    size_t bytes = (size_t)dc_numel(&t->shape) * dc_dtype_size(t->dtype);
    return (bytes + 63) / 64 * 64;
}

/* Bump-allocates one slot per node and points vals[i] at it. */
static void layout(dc_exec *e) {
    const dc_graph *g = e->g;
    size_t *offset = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *offset);
    e->vals = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *e->vals);
    if (!offset || !e->vals) abort(); /* out of memory */
    size_t top = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        offset[i] = top;
        top += slot_bytes(&g->nodes[i].type);
    }
    e->arena_bytes = top;
    e->arena = aligned_alloc(64, top ? top : 64);
    if (!e->arena) abort(); /* out of memory */
    memset(e->arena, 0, top);
    for (int i = 0; i < g->n_nodes; i++)
        e->vals[i] = (dc_tensor){ .type = g->nodes[i].type, .data = e->arena + offset[i] };
    free(offset);
}

dc_exec *dc_exec_new(const dc_graph *g, uint64_t seed, char *err, size_t len) {
    if (!dc_verify(g, err, len)) return NULL;
    dc_exec *e = calloc(1, sizeof *e);
    if (!e) abort(); /* out of memory */
    e->g = g;
    e->seed = seed;
    layout(e);
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_PARAM) dc_param_init(&g->nodes[i], &e->vals[i], seed);
    return e;
}

void dc_exec_free(dc_exec *e) {
    if (!e) return;
    free(e->arena);
    free(e->vals);
    free(e);
}

bool dc_exec_set_input(dc_exec *e, const char *name, const dc_tensor *t, char *err, size_t len) {
    int id = dc_graph_find_input(e->g, name);
    if (id < 0) {
        snprintf(err, len, "no input named '%s'", name);
        return false;
    }
    dc_tensor *v = &e->vals[id];
    if (!dc_type_eq(&v->type, &t->type)) {
        char want[128], got[128];
        snprintf(err, len, "input '%s' expects %s, got %s", name,
                 dc_type_str(&v->type, want, sizeof want), dc_type_str(&t->type, got, sizeof got));
        return false;
    }
    memcpy(v->data, t->data, (size_t)dc_numel(&t->type.shape) * dc_dtype_size(t->type.dtype));
    return true;
}

void dc_exec_set_seed(dc_exec *e, uint64_t seed) { e->seed = seed; }

bool dc_exec_run(dc_exec *e, char *err, size_t len) {
    const dc_graph *g = e->g;
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *n = &g->nodes[i];
        if (n->op == DC_OP_INPUT || n->op == DC_OP_PARAM) continue;
        const dc_tensor *in[DC_MAX_INPUTS];
        for (int k = 0; k < n->n_in; k++) in[k] = &e->vals[n->in[k]];
        dc_tensor *out = &e->vals[i];
        /* kernels see a zero-filled output, as they do when called on a fresh tensor */
        memset(out->data, 0, (size_t)dc_numel(&out->type.shape) * dc_dtype_size(out->type.dtype));
        char msg[DC_ERR_LEN] = "";
        if (!dc_ref_eval(g, n, in, out, e->seed, msg, sizeof msg)) {
            char label[64];
            snprintf(err, len, "node %s (%s): %s", dc_node_label(g, i, label, sizeof label),
                     dc_op_name(n->op), msg);
            return false;
        }
    }
    return true;
}

const dc_tensor *dc_exec_output(const dc_exec *e, int i) { return &e->vals[e->g->outputs[i]]; }

dc_tensor *dc_exec_value(dc_exec *e, int node) { return &e->vals[node]; }

dc_tensor *dc_exec_param(dc_exec *e, const char *name) {
    for (int i = 0; i < e->g->n_nodes; i++) {
        const dc_node *n = &e->g->nodes[i];
        if (n->op == DC_OP_PARAM && n->name && strcmp(n->name, name) == 0) return &e->vals[i];
    }
    return NULL;
}

size_t dc_exec_arena_bytes(const dc_exec *e) { return e->arena_bytes; }
