/* verify.c — the graph verifier: SSA order, arity, every recorded type against its shape
 * rule (which also checks attribute ranges), names of inputs and params, outputs, state
 * updates (a param target, a value of the same type, each param assigned at most once), and
 * loop groups (ids >= 0, members groupable ops, each group's members consecutive). The
 * row-kernel shape of a group is the fuse-loops pass's rule, not checked here.
 * Messages name the node: "node %5 (matmul) at f.dcir:7: what is wrong", or the update:
 * "update 0 (assign %3, %5): what is wrong". */
#include "ir/ir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Writes "node LABEL (OP)[ at FILE:LINE]: msg" for node id. Returns false. */
__attribute__((format(printf, 5, 6)))
static bool node_fail(const dc_graph *g, int id, char *err, size_t len, const char *fmt, ...) {
    const dc_node *n = &g->nodes[id];
    char label[64];
    if (n->op == DC_OP_INPUT && !n->name) snprintf(label, sizeof label, "#%d", id);
    else dc_node_label(g, id, label, sizeof label);
    const char *op = (unsigned)n->op < DC_OP_COUNT ? dc_op_name(n->op) : "?";
    char prefix[DC_ERR_LEN];
    if (n->file) snprintf(prefix, sizeof prefix, "node %s (%s) at %s:%d: ", label, op, n->file, n->line);
    else snprintf(prefix, sizeof prefix, "node %s (%s): ", label, op);
    va_list ap;
    va_start(ap, fmt);
    dc_vprefixed(err, len, prefix, fmt, ap);
    va_end(ap);
    return false;
}

/* Inputs refer to earlier nodes (the shape rule checks arity and everything else). */
static bool check_ssa(const dc_graph *g, int id, char *err, size_t len) {
    const dc_node *n = &g->nodes[id];
    if (n->n_in < 0 || n->n_in > DC_MAX_INPUTS)
        return node_fail(g, id, err, len, "has %d inputs, at most %d allowed", n->n_in, DC_MAX_INPUTS);
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] < 0 || n->in[k] >= id)
            return node_fail(g, id, err, len, "input %d refers to node %d, which is not defined before it",
                             k, n->in[k]);
    return true;
}

/* The recorded type equals the shape rule's. */
static bool check_type(const dc_graph *g, int id, char *err, size_t len) {
    const dc_node *n = &g->nodes[id];
    char msg[DC_ERR_LEN];
    dc_type t;
    if (!dc_infer_type(g, n, &t, msg, sizeof msg)) return node_fail(g, id, err, len, "%s", msg);
    if (n->type.shape.rank < 0 || n->type.shape.rank > DC_MAX_RANK || (unsigned)n->type.dtype >= DC_NDTYPES)
        return node_fail(g, id, err, len, "recorded type is malformed (dtype %d, rank %d)",
                         (int)n->type.dtype, n->type.shape.rank);
    if (!dc_type_eq(&t, &n->type)) {
        char a[160], b[160];
        return node_fail(g, id, err, len, "recorded type %s, but the shape rule gives %s",
                         dc_type_str(&n->type, a, sizeof a), dc_type_str(&t, b, sizeof b));
    }
    return true;
}

/* INPUT and PARAM nodes have names, unique among nodes of the same op. */
static bool check_name(const dc_graph *g, int id, char *err, size_t len) {
    const dc_node *n = &g->nodes[id];
    if (n->op != DC_OP_INPUT && n->op != DC_OP_PARAM) return true;
    const char *what = n->op == DC_OP_INPUT ? "input" : "param";
    if (!n->name || !n->name[0]) return node_fail(g, id, err, len, "%s has no name", what);
    for (int j = 0; j < id; j++) {
        const dc_node *m = &g->nodes[j];
        if (m->op == n->op && m->name && strcmp(m->name, n->name) == 0) {
            char other[64];
            return node_fail(g, id, err, len, "%s name \"%s\" already used by node %s", what, n->name,
                             dc_node_label(g, j, other, sizeof other));
        }
    }
    return true;
}

static bool check_outputs(const dc_graph *g, char *err, size_t len) {
    if (g->n_outputs < 1) {
        snprintf(err, len, "graph @%s: has no outputs", g->name);
        return false;
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] < 0 || g->outputs[i] >= g->n_nodes) {
            snprintf(err, len, "graph @%s: output %d refers to node %d, but the graph has %d nodes",
                     g->name, i, g->outputs[i], g->n_nodes);
            return false;
        }
    return true;
}

/* Writes "update J (assign %P, %V): msg" (ids out of range are shown as #ID). Returns false. */
__attribute__((format(printf, 5, 6)))
static bool update_fail(const dc_graph *g, int j, char *err, size_t len, const char *fmt, ...) {
    const dc_update *u = &g->updates[j];
    char p[64], v[64];
    if (u->param >= 0 && u->param < g->n_nodes) dc_node_label(g, u->param, p, sizeof p);
    else snprintf(p, sizeof p, "#%d", u->param);
    if (u->value >= 0 && u->value < g->n_nodes) dc_node_label(g, u->value, v, sizeof v);
    else snprintf(v, sizeof v, "#%d", u->value);
    char prefix[160];
    snprintf(prefix, sizeof prefix, "update %d (assign %s, %s): ", j, p, v);
    va_list ap;
    va_start(ap, fmt);
    dc_vprefixed(err, len, prefix, fmt, ap);
    va_end(ap);
    return false;
}

static bool check_update(const dc_graph *g, int j, char *err, size_t len) {
    const dc_update *u = &g->updates[j];
    if (u->param < 0 || u->param >= g->n_nodes || u->value < 0 || u->value >= g->n_nodes)
        return update_fail(g, j, err, len, "refers to a node outside the graph's %d nodes", g->n_nodes);
    const dc_node *p = &g->nodes[u->param], *v = &g->nodes[u->value];
    if (p->op != DC_OP_PARAM)
        return update_fail(g, j, err, len, "the target is a %s node, not a param", dc_op_name(p->op));
    if (!dc_type_eq(&p->type, &v->type)) {
        char a[160], b[160];
        return update_fail(g, j, err, len, "value type %s does not match param type %s",
                           dc_type_str(&v->type, a, sizeof a), dc_type_str(&p->type, b, sizeof b));
    }
    for (int i = 0; i < j; i++)
        if (g->updates[i].param == u->param)
            return update_fail(g, j, err, len, "param \"%s\" is already assigned by update %d", p->name, i);
    return true;
}

/* A run of consecutive nodes of one group: its id and first node. */
typedef struct { int id, first; } group_run;

static int cmp_run(const void *a, const void *b) {
    const group_run *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Group ids are >= 0, members are groupable, and each group is one run of consecutive nodes
 * (sorting the runs by id puts two runs of one group side by side). */
static bool check_groups(const dc_graph *g, char *err, size_t len) {
    if (!g->group) return true;
    group_run *runs = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *runs);
    if (!runs) abort(); /* out of memory */
    int n = 0;
    bool ok = true;
    for (int i = 0; i < g->n_nodes && ok; i++) {
        int k = g->group[i];
        if (k < 0) ok = node_fail(g, i, err, len, "group id %d is negative", k);
        else if (k > 0 && !dc_op_groupable(g->nodes[i].op))
            ok = node_fail(g, i, err, len, "%s cannot be in a loop group (group %d)", dc_op_name(g->nodes[i].op), k);
        else if (k > 0 && (i == 0 || g->group[i - 1] != k)) runs[n++] = (group_run){ k, i };
    }
    if (ok) qsort(runs, (size_t)n, sizeof *runs, cmp_run);
    for (int r = 1; r < n && ok; r++)
        if (runs[r].id == runs[r - 1].id) {
            char first[64];
            ok = node_fail(g, runs[r].first, err, len,
                           "group %d is not consecutive: its members from node %s on are separated from this one",
                           runs[r].id, dc_node_label(g, runs[r - 1].first, first, sizeof first));
        }
    free(runs);
    return ok;
}

bool dc_verify(const dc_graph *g, char *err, size_t len) {
    if (!g->name || !g->name[0]) {
        snprintf(err, len, "graph has an empty name");
        return false;
    }
    for (int id = 0; id < g->n_nodes; id++)
        if (!check_ssa(g, id, err, len) || !check_type(g, id, err, len) || !check_name(g, id, err, len))
            return false;
    if (!check_outputs(g, err, len)) return false;
    for (int j = 0; j < g->n_updates; j++)
        if (!check_update(g, j, err, len)) return false;
    return check_groups(g, err, len);
}
