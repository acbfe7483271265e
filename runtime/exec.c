/* exec.c — the reference executor: verifies a graph, lays every node's value out in one
 * arena (at the offsets of the graph's memory plan when it has one, else one bump-allocated
 * 64-byte aligned slot per node), initialises the params, runs the nodes in order with the
 * ref kernels, then applies the graph's state updates (param <- value). With a plan, only
 * INPUT, PARAM, output and update values are meaningful after a run (others share slots).
 * INPUT and PARAM values stay in place between runs. Updates are simultaneous: each reads the
 * value of this run, so an update whose value is a param that is itself updated reads it
 * through a staging copy taken before any param is written. An output that is a PARAM node
 * is a view of the param, so after the run it shows the updated value. */
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

struct dc_exec {
    const dc_graph *g;
    uint64_t seed;
    char *arena;
    size_t arena_bytes;
    dc_tensor *vals;             /* [n_nodes] views into the arena (owned = false) */
    bool *in_place;              /* [n_nodes] the node's slot is one of its inputs' */
    char *stage;                 /* staging copies of update values that are updated params */
    size_t *stage_at;            /* [n_updates] offset into stage, or SIZE_MAX: read in place */
};

static size_t value_bytes(const dc_type *t) {
    return (size_t)dc_numel(&t->shape) * dc_dtype_size(t->dtype);
}

static size_t slot_bytes(const dc_type *t) { return (value_bytes(t) + 63) / 64 * 64; }

static bool is_updated(const dc_graph *g, int node) {
    for (int j = 0; j < g->n_updates; j++)
        if (g->updates[j].param == node) return true;
    return false;
}

/* Decides which update values need a staging copy: those that are a param some update
 * writes (other than the update itself writing it back unchanged). */
static void plan_updates(dc_exec *e) {
    const dc_graph *g = e->g;
    e->stage_at = malloc((size_t)(g->n_updates ? g->n_updates : 1) * sizeof *e->stage_at);
    if (!e->stage_at) abort(); /* out of memory */
    size_t top = 0;
    for (int j = 0; j < g->n_updates; j++) {
        const dc_update *u = &g->updates[j];
        e->stage_at[j] = SIZE_MAX;
        if (u->value == u->param || !is_updated(g, u->value)) continue;
        e->stage_at[j] = top;
        top += slot_bytes(&g->nodes[u->value].type);
    }
    e->stage = aligned_alloc(64, top ? top : 64);
    if (!e->stage) abort(); /* out of memory */
}

/* Stages the values that an update would overwrite, then writes every param. */
static void apply_updates(dc_exec *e) {
    const dc_graph *g = e->g;
    for (int j = 0; j < g->n_updates; j++)
        if (e->stage_at[j] != SIZE_MAX) {
            const dc_tensor *v = &e->vals[g->updates[j].value];
            memcpy(e->stage + e->stage_at[j], v->data, value_bytes(&v->type));
        }
    for (int j = 0; j < g->n_updates; j++) {
        const dc_update *u = &g->updates[j];
        dc_tensor *p = &e->vals[u->param];
        const void *src = e->stage_at[j] != SIZE_MAX ? e->stage + e->stage_at[j] : e->vals[u->value].data;
        if (src != p->data) memcpy(p->data, src, value_bytes(&p->type));
    }
}

/* Offsets of every node's value: g's memory plan when it has one, else one bump-allocated
 * slot per node. Returns the arena size, or -1 if the plan does not fit its own arena (a
 * stale plan: a pass changed nodes without dropping it). */
static int64_t value_offsets(const dc_graph *g, int64_t *offset) {
    if (g->plan_offset) {
        for (int i = 0; i < g->n_nodes; i++) {
            int64_t o = g->plan_offset[i];
            if (o < 0 || o % 64 || o > g->plan_bytes || (int64_t)slot_bytes(&g->nodes[i].type) > g->plan_bytes - o)
                return -1;
            offset[i] = o;
        }
        return g->plan_bytes;
    }
    int64_t top = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        offset[i] = top;
        top += (int64_t)slot_bytes(&g->nodes[i].type);
    }
    return top;
}

/* Whether node i writes over one of its inputs (a plan's in-place reuse): then its kernel
 * must not see a zero-filled output, since that would erase the input it reads. */
static bool writes_in_place(const dc_exec *e, int i) {
    const dc_node *n = &e->g->nodes[i];
    for (int k = 0; k < n->n_in; k++)
        if (e->vals[n->in[k]].data == e->vals[i].data) return true;
    return false;
}

/* Allocates the arena and points vals[i] at each node's slot. */
static bool layout(dc_exec *e, char *err, size_t len) {
    const dc_graph *g = e->g;
    size_t cnt = (size_t)(g->n_nodes ? g->n_nodes : 1);
    int64_t *offset = malloc(cnt * sizeof *offset);
    e->vals = calloc(cnt, sizeof *e->vals);
    e->in_place = calloc(cnt, sizeof *e->in_place);
    if (!offset || !e->vals || !e->in_place) abort(); /* out of memory */
    int64_t top = value_offsets(g, offset);
    if (top < 0) {
        free(offset);
        snprintf(err, len, "graph @%s: its memory plan does not fit its arena of %lld bytes (a stale plan?)",
                 g->name, (long long)g->plan_bytes);
        return false;
    }
    e->arena_bytes = (size_t)top;
    e->arena = aligned_alloc(64, top ? (size_t)top : 64);
    if (!e->arena) abort(); /* out of memory */
    memset(e->arena, 0, (size_t)top);
    for (int i = 0; i < g->n_nodes; i++)
        e->vals[i] = (dc_tensor){ .type = g->nodes[i].type, .data = e->arena + offset[i] };
    for (int i = 0; i < g->n_nodes; i++) e->in_place[i] = writes_in_place(e, i);
    free(offset);
    return true;
}

dc_exec *dc_exec_new(const dc_graph *g, uint64_t seed, char *err, size_t len) {
    if (!dc_verify(g, err, len)) return NULL;
    dc_exec *e = calloc(1, sizeof *e);
    if (!e) abort(); /* out of memory */
    e->g = g;
    e->seed = seed;
    if (!layout(e, err, len)) {
        dc_exec_free(e);
        return NULL;
    }
    plan_updates(e);
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_PARAM) dc_param_init(&g->nodes[i], &e->vals[i], seed);
    return e;
}

void dc_exec_free(dc_exec *e) {
    if (!e) return;
    free(e->arena);
    free(e->vals);
    free(e->in_place);
    free(e->stage);
    free(e->stage_at);
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
    memcpy(v->data, t->data, value_bytes(&t->type));
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
        /* kernels see a zero-filled output, as they do when called on a fresh tensor, except
         * in place, where the output is an input the (elementwise) kernel still reads */
        if (!e->in_place[i]) memset(out->data, 0, value_bytes(&out->type));
        char msg[DC_ERR_LEN] = "";
        if (!dc_ref_eval(g, n, in, out, e->seed, msg, sizeof msg)) {
            char label[64];
            snprintf(err, len, "node %s (%s): %s", dc_node_label(g, i, label, sizeof label),
                     dc_op_name(n->op), msg);
            return false;
        }
    }
    apply_updates(e);
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

const dc_graph *dc_exec_graph(const dc_exec *e) { return e->g; }
