/* lower.c — lowering a graph to a runtime program: one step per computed node, from the
 * provider the backend's rule picks. auto and dnnl: oneDNN for the f32 contractions it has a
 * kernel for (matmul, linear, conv2d, conv2d_bwd_data, conv2d_bwd_weight, fused_conv2d,
 * fused_matmul with their epilogues), ref for everything else. Each oneDNN step is tried once
 * on the executor's arena when the program is built: a step that oneDNN refuses (or that
 * would run in place, which oneDNN cannot) becomes a ref step whose note says why (shown by
 * `--profile`); under a forced dnnl backend a refusal is an error. ref: ref everywhere. jit:
 * an error until the jit provider exists. */
#include "codegen/codegen.h"

#include <stdlib.h>
#include <string.h>

static const char *const backend_names[] = { "auto", "ref", "dnnl", "jit" };
#define N_BACKENDS (int)(sizeof backend_names / sizeof backend_names[0])

int dc_backend_from_name(const char *s) {
    for (int i = 0; i < N_BACKENDS; i++)
        if (strcmp(s, backend_names[i]) == 0) return i;
    return -1;
}

int dc_backend_from_env(dc_backend fallback, char *err, size_t len) {
    const char *v = getenv("DISCO_BACKEND");
    if (!v || !*v) return (int)fallback;
    int b = dc_backend_from_name(v);
    if (b < 0) snprintf(err, len, "DISCO_BACKEND='%s' names no backend (choose auto, ref, dnnl or jit)", v);
    return b;
}

/* ---- the oneDNN steps ---------------------------------------------------------------- */

/* Whether oneDNN has a kernel for node n: an f32 contraction of the ops it implements. */
static bool dnnl_has_kernel(const dc_graph *g, const dc_node *n) {
    switch (n->op) {
    case DC_OP_MATMUL:
    case DC_OP_LINEAR:
    case DC_OP_CONV2D:
    case DC_OP_CONV2D_BWD_DATA:
    case DC_OP_CONV2D_BWD_WEIGHT:
    case DC_OP_FUSED_CONV2D:
    case DC_OP_FUSED_MATMUL:
        break;
    default:
        return false;
    }
    if (n->type.dtype != DC_F32) return false;
    for (int k = 0; k < n->n_in; k++)
        if (g->nodes[n->in[k]].type.dtype != DC_F32) return false;
    return true;
}

/* The epilogue of a fused contraction: bias and residual follow the two operands, in that
 * order, when the attribute says they are there. */
static dc_epilogue fused_epilogue(const dc_node *n, dc_activation act, bool bias, bool residual,
                                  const dc_tensor *v) {
    dc_epilogue e = { .act = (dc_act)act };
    if (bias) e.bias = &v[n->in[2]];
    if (residual) e.residual = &v[n->in[2 + bias]];
    return e;
}

static dc_conv_attr fused_conv(const dc_fused_conv_attr *f) {
    dc_conv_attr a;
    memset(&a, 0, sizeof a);
    a.stride = f->stride;
    a.pad = f->pad;
    a.groups = f->groups;
    return a;
}

static bool dnnl_call(const dc_step *s, const dc_frame *f, char *err, size_t len) {
    const dc_node *n = &f->g->nodes[s->node];
    const dc_tensor *v = f->vals;
    const dc_tensor *a = &v[n->in[0]], *b = &v[n->in[1]];
    dc_tensor *out = &f->vals[s->node];
    switch (n->op) {
    case DC_OP_MATMUL:
        return dc_dnnl_matmul(a, b, n->attr.matmul, NULL, out, err, len);
    case DC_OP_LINEAR:
        return dc_dnnl_linear(a, b, &(dc_epilogue){ .bias = &v[n->in[2]] }, out, err, len);
    case DC_OP_CONV2D:
        return dc_dnnl_conv2d(a, b, n->attr.conv, NULL, out, err, len);
    case DC_OP_CONV2D_BWD_DATA:
        return dc_dnnl_conv2d_bwd_data(a, b, n->attr.conv, out, err, len);
    case DC_OP_CONV2D_BWD_WEIGHT:
        return dc_dnnl_conv2d_bwd_weight(a, b, n->attr.conv, out, NULL, err, len);
    case DC_OP_FUSED_CONV2D: {
        const dc_fused_conv_attr *fa = &n->attr.fused_conv;
        dc_epilogue e = fused_epilogue(n, fa->act, fa->bias, fa->residual, v);
        return dc_dnnl_conv2d(a, b, fused_conv(fa), &e, out, err, len);
    }
    case DC_OP_FUSED_MATMUL: {
        const dc_fused_matmul_attr *fa = &n->attr.fused_matmul;
        dc_epilogue e = fused_epilogue(n, fa->act, fa->bias, fa->residual, v);
        dc_matmul_attr t = { .trans_a = fa->trans_a, .trans_b = fa->trans_b };
        return dc_dnnl_matmul(a, b, t, &e, out, err, len);
    }
    default:
        snprintf(err, len, "the dnnl provider has no kernel for %s", dc_op_name(n->op));
        return false;
    }
}

static dc_step dnnl_step(int node) {
    dc_step s;
    memset(&s, 0, sizeof s);
    s.node = node;
    s.provider = "dnnl";
    s.writes_all = true;
    s.call = dnnl_call;
    return s;
}

/* The input of node i whose value shares arena bytes with i's, or -1. */
static int aliased_input(dc_exec *e, const dc_node *n, int i) {
    for (int k = 0; k < n->n_in; k++)
        if (dc_exec_overlap(e, i, n->in[k])) return k;
    return -1;
}

/* Tries the oneDNN step k of e once on the arena; on refusal turns it into a ref step with
 * the reason as its note (or, when forced, fails). */
static bool settle_dnnl_step(dc_exec *e, int k, bool forced, char *err, size_t len) {
    int n_steps;
    dc_step *s = &dc_exec_steps(e, &n_steps)[k];
    const dc_graph *g = dc_exec_graph(e);
    const dc_node *n = &g->nodes[s->node];
    char why[DC_ERR_LEN] = "", label[64];
    int alias = aliased_input(e, n, s->node);
    if (alias >= 0)
        snprintf(why, sizeof why, "the memory plan puts its output over input %d (%s); oneDNN needs them apart",
                 alias, dc_node_label(g, n->in[alias], label, sizeof label));
    else if (dc_exec_run_step(e, k, why, sizeof why)) {
        snprintf(s->impl, sizeof s->impl, "%s", dc_dnnl_last_impl());
        return true;
    }
    if (forced && alias < 0) {
        snprintf(err, len, "backend dnnl: %s", why);
        return false;
    }
    int node = s->node;
    *s = dc_ref_step(node);
    snprintf(s->note, sizeof s->note, "%s", why);
    return true;
}

dc_exec *dc_compile(const dc_graph *g, uint64_t seed, dc_backend backend, char *err, size_t len) {
    if ((int)backend < 0 || (int)backend >= N_BACKENDS) {
        snprintf(err, len, "unknown backend %d (choose auto, ref, dnnl or jit)", (int)backend);
        return NULL;
    }
    if (backend == DC_BACKEND_JIT) {
        snprintf(err, len, "backend jit: the jit provider is not built yet (choose auto, ref or dnnl)");
        return NULL;
    }
    if (!dc_verify(g, err, len)) return NULL;
    dc_step *steps = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *steps);
    if (!steps) abort(); /* out of memory */
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *nd = &g->nodes[i];
        if (nd->op == DC_OP_INPUT || nd->op == DC_OP_PARAM) continue;
        steps[n++] = backend != DC_BACKEND_REF && dnnl_has_kernel(g, nd) ? dnnl_step(i) : dc_ref_step(i);
    }
    dc_exec *e = dc_exec_new_program(g, seed, steps, n, NULL, err, len);
    free(steps);
    for (int k = 0; e && k < n; k++) {
        int cnt;
        if (strcmp(dc_exec_steps(e, &cnt)[k].provider, "dnnl") != 0) continue;
        if (!settle_dnnl_step(e, k, backend == DC_BACKEND_DNNL, err, len)) {
            dc_exec_free(e);
            return NULL;
        }
    }
    return e;
}
