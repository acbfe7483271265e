/* op_util.c — build a one-op graph (inputs + the op), infer its type, run its ref kernel. */
#include "tests/op_util.h"

#include <stdarg.h>
#include <string.h>

dc_tensor *tu_tensor(dc_dtype dt, int rank, const int64_t *dims, const float *vals) {
    dc_type t = { .dtype = dt, .shape = { .rank = rank } };
    for (int i = 0; i < rank; i++) t.shape.dim[i] = dims[i];
    dc_tensor *x = dc_tensor_new(&t);
    int64_t n = dc_numel(&t.shape);
    for (int64_t i = 0; i < n; i++) {
        if (dt == DC_F32) ((float *)x->data)[i] = vals[i];
        else ((int32_t *)x->data)[i] = (int32_t)vals[i];
    }
    return x;
}

dc_tensor *tu_eval(dc_op op, const dc_attr *attr, int n_in, dc_tensor *const *ins,
                   const dc_type *declared, uint64_t seed, char *err, size_t len) {
    dc_graph *g = dc_graph_new("op_test");
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        dc_node in;
        memset(&in, 0, sizeof in);
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        in.op = DC_OP_INPUT;
        in.type = ins[i]->type;
        in.name = name;
        n.in[i] = dc_graph_append(g, &in);
    }
    if (attr) n.attr = *attr;
    if (declared) n.type = *declared;
    dc_tensor *out = NULL;
    if (dc_infer_type(g, &n, &n.type, err, len)) {
        int id = dc_graph_append(g, &n);
        out = dc_tensor_new(&n.type);
        if (!dc_ref_eval(g, &g->nodes[id], (const dc_tensor *const *)ins, out, seed, err, len)) {
            dc_tensor_free(out);
            out = NULL;
        }
    }
    dc_graph_free(g);
    return out;
}

void tu_free(int n, ...) {
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) dc_tensor_free(va_arg(ap, dc_tensor *));
    va_end(ap);
}

double tu_get(const dc_tensor *t, int64_t i) {
    if (t->type.dtype == DC_F32) return ((const float *)t->data)[i];
    return ((const int32_t *)t->data)[i];
}

bool tu_set_uniform_inputs(dc_exec *e, const dc_graph *g, uint64_t seed) {
    char err[DC_ERR_LEN];
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *n = &g->nodes[i];
        if (n->op != DC_OP_INPUT) continue;
        dc_tensor *t = dc_tensor_new(&n->type);
        float *p = t->data;
        for (int64_t k = 0; k < dc_numel(&n->type.shape); k++) p[k] = 2.0f * dc_rng_uniform01(seed, (uint64_t)i, (uint64_t)k) - 1.0f;
        bool ok = dc_exec_set_input(e, n->name, t, err, sizeof err);
        dc_tensor_free(t);
        if (!ok) return false;
    }
    return true;
}

bool tu_update_over_param(const dc_graph *g, int a, int b) {
    bool updates = false;
    for (int j = 0; j < g->n_updates; j++) updates = updates || (g->updates[j].param == a && g->updates[j].value == b);
    for (int i = b + 1; updates && i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] == a) return false;
    return updates;
}
