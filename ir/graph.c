/* graph.c — dtypes, shapes and the graph container: appending nodes and outputs, finding
 * inputs. Nothing here checks semantics; that is the shape rules' and the verifier's job. */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) abort(); /* out of memory: an internal invariant, not user input */
    return q;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(xrealloc(NULL, n), s, n);
}

static const char *dtype_names[DC_NDTYPES] = { "f32", "i32" };

const char *dc_dtype_name(dc_dtype t) { return (unsigned)t < DC_NDTYPES ? dtype_names[t] : "?"; }

int dc_dtype_from_name(const char *s, size_t n) {
    for (int i = 0; i < DC_NDTYPES; i++)
        if (strlen(dtype_names[i]) == n && memcmp(dtype_names[i], s, n) == 0) return i;
    return -1;
}

size_t dc_dtype_size(dc_dtype t) { (void)t; return 4; }

int64_t dc_numel(const dc_shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->dim[i];
    return n;
}

bool dc_shape_eq(const dc_shape *a, const dc_shape *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

bool dc_type_eq(const dc_type *a, const dc_type *b) {
    return a->dtype == b->dtype && dc_shape_eq(&a->shape, &b->shape);
}

char *dc_type_str(const dc_type *t, char *buf, size_t len) {
    size_t k = (size_t)snprintf(buf, len, "%s[", dc_dtype_name(t->dtype));
    for (int i = 0; i < t->shape.rank && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, i ? ",%lld" : "%lld", (long long)t->shape.dim[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
    return buf;
}

bool dc_broadcast_shapes(const dc_shape *a, const dc_shape *b, dc_shape *out) {
    dc_shape r = { .rank = a->rank > b->rank ? a->rank : b->rank };
    for (int i = 0; i < r.rank; i++) {
        int ia = a->rank - r.rank + i, ib = b->rank - r.rank + i;
        int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
        if (da != db && da != 1 && db != 1) return false;
        r.dim[i] = da == 1 ? db : da;
    }
    *out = r;
    return true;
}

dc_graph *dc_graph_new(const char *name) {
    dc_graph *g = xrealloc(NULL, sizeof *g);
    memset(g, 0, sizeof *g);
    g->name = xstrdup(name ? name : "g");
    return g;
}

void dc_graph_free(dc_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) free(g->nodes[i].name);
    for (int i = 0; i < g->n_outputs; i++) free(g->output_names[i]);
    free(g->nodes);
    free(g->outputs);
    free(g->output_names);
    free(g->updates);
    free(g->plan_offset);
    free(g->group);
    free(g->src_file);
    free(g->name);
    free(g);
}

void dc_graph_reserve(dc_graph *g, int n) {
    if (n <= g->cap_nodes) return;
    while (g->cap_nodes < n) g->cap_nodes = g->cap_nodes ? 2 * g->cap_nodes : 64;
    g->nodes = xrealloc(g->nodes, (size_t)g->cap_nodes * sizeof *g->nodes);
}

int dc_graph_append(dc_graph *g, const dc_node *n) {
    dc_graph_reserve(g, g->n_nodes + 1);
    dc_node *d = &g->nodes[g->n_nodes];
    memcpy(d, n, sizeof *d); /* bytes, padding included: hashing compares attribute bytes */
    d->name = n->name ? xstrdup(n->name) : NULL;
    return g->n_nodes++;
}

void dc_graph_add_output(dc_graph *g, int node, const char *name) {
    if (g->n_outputs == g->cap_outputs) {
        g->cap_outputs = g->cap_outputs ? 2 * g->cap_outputs : 8;
        g->outputs = xrealloc(g->outputs, (size_t)g->cap_outputs * sizeof *g->outputs);
        g->output_names = xrealloc(g->output_names, (size_t)g->cap_outputs * sizeof *g->output_names);
    }
    g->outputs[g->n_outputs] = node;
    g->output_names[g->n_outputs] = name ? xstrdup(name) : NULL;
    g->n_outputs++;
}

void dc_graph_add_update(dc_graph *g, int param, int value) {
    if (g->n_updates == g->cap_updates) {
        g->cap_updates = g->cap_updates ? 2 * g->cap_updates : 16;
        g->updates = xrealloc(g->updates, (size_t)g->cap_updates * sizeof *g->updates);
    }
    g->updates[g->n_updates++] = (dc_update){ param, value };
}

void dc_graph_drop_plan(dc_graph *g) {
    free(g->plan_offset);
    g->plan_offset = NULL;
    g->plan_bytes = 0;
    free(g->group);
    g->group = NULL;
}

int dc_graph_n_inputs(const dc_graph *g) {
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) k += g->nodes[i].op == DC_OP_INPUT;
    return k;
}

int dc_graph_input(const dc_graph *g, int i) {
    for (int j = 0; j < g->n_nodes; j++)
        if (g->nodes[j].op == DC_OP_INPUT && i-- == 0) return j;
    return -1;
}

int dc_graph_find_input(const dc_graph *g, const char *name) {
    for (int j = 0; j < g->n_nodes; j++)
        if (g->nodes[j].op == DC_OP_INPUT && strcmp(g->nodes[j].name, name) == 0) return j;
    return -1;
}

const char *dc_graph_output_name(const dc_graph *g, int i, char *buf, size_t len) {
    if (g->output_names[i]) return g->output_names[i];
    snprintf(buf, len, "out%d", i);
    return buf;
}

char *dc_node_label(const dc_graph *g, int id, char *buf, size_t len) {
    const dc_node *n = &g->nodes[id];
    if (n->op == DC_OP_INPUT) {
        snprintf(buf, len, "%%%s", n->name);
        return buf;
    }
    int k = 0;
    for (int i = 0; i < id; i++) k += g->nodes[i].op != DC_OP_INPUT;
    snprintf(buf, len, "%%%d", k);
    return buf;
}

int dc_graph_emit(dc_graph *g, dc_op op, int n_in, const int *in, const dc_attr *attr,
                  const dc_type *declared, const char *name, const char *file, int line,
                  char *err, size_t len) {
    if (n_in < 0 || n_in > DC_MAX_INPUTS) {
        snprintf(err, len, "%s: %d inputs (at most %d)", dc_op_name(op), n_in, DC_MAX_INPUTS);
        return -1;
    }
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.n_in = n_in;
    if (n_in > 0) memcpy(n.in, in, (size_t)n_in * sizeof *in);
    if (attr) memcpy(&n.attr, attr, sizeof n.attr);
    if (declared) memcpy(&n.type, declared, sizeof n.type);
    n.name = (char *)name;
    n.file = file;
    n.line = line;
    dc_type out;
    memset(&out, 0, sizeof out);
    if (!dc_infer_type(g, &n, &out, err, len)) return -1;
    memcpy(&n.type, &out, sizeof n.type);
    return dc_graph_append(g, &n);
}

bool dc_op_multi_result(dc_op op) {
    return op == DC_OP_ATTENTION || op == DC_OP_ATTENTION_BWD || op == DC_OP_FUSED_CONV2D || op == DC_OP_FUSED_MATMUL;
}

bool dc_op_attention(dc_op op) { return op == DC_OP_ATTENTION || op == DC_OP_ATTENTION_BWD; }

/* the result field of a multi-result node's attributes, and the size of their struct */
static int64_t *result_field(dc_attr *a, dc_op op, size_t *size) {
    switch (op) {
    case DC_OP_ATTENTION:
    case DC_OP_ATTENTION_BWD: *size = sizeof a->attention; return &a->attention.result;
    case DC_OP_FUSED_CONV2D: *size = sizeof a->fused_conv; return &a->fused_conv.result;
    case DC_OP_FUSED_MATMUL: *size = sizeof a->fused_matmul; return &a->fused_matmul.result;
    default: *size = 0; return NULL;
    }
}

int64_t dc_node_result(const dc_node *n) {
    dc_attr a = n->attr;
    size_t size;
    int64_t *r = result_field(&a, n->op, &size);
    return r ? *r : 0;
}

dc_fused_epilogue dc_fused_epilogue_of(const dc_node *n) {
    if (n->op == DC_OP_FUSED_CONV2D)
        return (dc_fused_epilogue){ n->attr.fused_conv.act, n->attr.fused_conv.bias, n->attr.fused_conv.residual };
    if (n->op == DC_OP_FUSED_MATMUL)
        return (dc_fused_epilogue){ n->attr.fused_matmul.act, n->attr.fused_matmul.bias, n->attr.fused_matmul.residual };
    return (dc_fused_epilogue){ DC_ACTIVATION_NONE, false, false };
}

bool dc_same_computation(const dc_node *a, const dc_node *b) {
    if (a->op != b->op || !dc_op_multi_result(a->op) || a->n_in != b->n_in) return false;
    if (memcmp(a->in, b->in, sizeof(int) * (size_t)a->n_in) != 0) return false;
    dc_attr x = a->attr, y = b->attr;
    size_t size;
    *result_field(&x, a->op, &size) = *result_field(&y, b->op, &size) = 0;
    return memcmp(&x, &y, size) == 0;
}

void dc_result_nodes(const dc_graph *g, int first, int last, int *node, int max) {
    for (int r = 0; r < max; r++) node[r] = -1;
    for (int i = first; i <= last; i++) {
        int64_t r = dc_node_result(&g->nodes[i]);
        if (r >= 0 && r < max) node[r] = i;
    }
}

int dc_results_last(const dc_graph *g, int first) {
    int last = first;
    while (last + 1 < g->n_nodes && dc_same_computation(&g->nodes[first], &g->nodes[last + 1])) last++;
    return last;
}
