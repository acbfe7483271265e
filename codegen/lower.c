/* lower.c — lowering a graph to a runtime program: one step per computed node (or per loop
 * group), from the provider the backend's rule picks.
 *   auto: each f32 contraction oneDNN has a kernel for (matmul, linear, conv2d,
 *         conv2d_bwd_data, conv2d_bwd_weight, fused_conv2d, fused_matmul with their epilogues)
 *         on its tuned choice (codegen/tune.c: oneDNN, ref, or a jit GEMM with its parameters),
 *         else on the default rule's provider (dc_contraction_default); one jit kernel per loop
 *         group of g->group (fuse-loops); ref for everything else;
 *   jit:  as auto, but those contractions are jit GEMMs (with a tuned choice's parameters,
 *         else the defaults; convolutions as implicit GEMMs), and every ungrouped node that a
 *         group may hold (dc_op_groupable) is a jit kernel of its own;
 *   dnnl: oneDNN for every such contraction, a refusal being an error; ref everywhere else;
 *   ref:  ref everywhere.
 * A jit GEMM step (codegen/lower_gemm.c) that cannot be built runs on oneDNN with the reason
 * as its note.
 * Each oneDNN step is tried once on the executor's arena when the program is built (its
 * prepare hook, which the executor calls): a step that oneDNN refuses (or that would run in
 * place, which oneDNN cannot) becomes a ref step whose note says why (shown by `--profile`). A jit step computes a whole group
 * (codegen/lower_jit.c) as a range kernel over the group's rows, compiled through the kernel
 * cache; it is the step of the group's last node, with impl "jit:HASH CPU" (HASH: the first
 * 12 hex digits of the kernel IR's hash). A group the kernel IR cannot express, or that LLVM
 * fails to compile, runs node by node on ref, the note of its last step saying why. Groups
 * of only fills, iotas and copies are jit kernels too: a program runs on ref only what the
 * kernel IR cannot express. Under auto and jit the result nodes of one attention (or
 * attention_bwd) are one step too, a flash-attention kernel (codegen/lower_attention.c). The
 * two results of a fused contraction that keeps its pre-activation are one step under every
 * backend (its span covers both): ref runs both nodes' kernels, the jit GEMM stores both, and
 * oneDNN writes the pre-activation, from which a jit kernel (auto; oneDNN's eltwise primitive
 * under dnnl) computes the activation. */
#include "codegen/codegen.h"

#include "codegen/lower_jit.h"

#include <omp.h>
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
    dc_epilogue e = { .act = act };
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

/* the implementation of the last pair's step, or "": a oneDNN step that keeps a fused
 * contraction's pre-activation runs the contraction, then the activation (a jit kernel under
 * auto, oneDNN's eltwise primitive under dnnl) */
static _Thread_local char pair_impl[128];

/* the ctx of such a step under auto: the jit kernel of out = act(pre) [+ residual] over rows
 * of the output's last dim, args pre, [residual,] out */
typedef struct {
    dc_codegen_ctx base;
    dc_jit_kernel *jk;
    int64_t rows, work;
} act_ctx;

static void release_act(dc_codegen_ctx *base) {
    dc_jit_release(((act_ctx *)base)->jk);
    free(base);
}

/* The activation kernel for values of type t, or NULL and why. */
static act_ctx *activation_kernel(const dc_type *t, dc_activation act, bool residual, char *why, size_t len) {
    int64_t cols = t->shape.rank ? t->shape.dim[t->shape.rank - 1] : 1, n = dc_numel(&t->shape), rows = n / cols;
    dc_kir *k = dc_kir_new(1, &rows, 1, &cols);
    int pre = dc_kir_buffer_add(k, DC_F32, n, false), res = residual ? dc_kir_buffer_add(k, DC_F32, n, false) : -1;
    int out = dc_kir_buffer_add(k, DC_F32, n, true);
    dc_kir_map m = dc_kir_map_make(k, 0, &cols, (int64_t[]){ 1 });
    dc_kir_phase_begin(k, false);
    int e = dc_kir_unary(k, dc_activation_op(act), dc_kir_load(k, pre, m));
    if (residual) e = dc_kir_binary(k, DC_OP_ADD, e, dc_kir_load(k, res, m));
    dc_kir_store_add(k, out, m, e);
    dc_jit_kernel *jk = dc_jit_compile(k, NULL, why, len);
    dc_kir_free(k);
    if (!jk) return NULL;
    act_ctx *c = malloc(sizeof *c);
    if (!c) abort(); /* out of memory */
    *c = (act_ctx){ { release_act }, jk, rows, (residual ? 3 : 2) * n };
    return c;
}

/* out = act(pre) [+ residual] with c's kernel, its rows split over the threads (an element
 * is computed alike either way) */
static void run_activation(const act_ctx *c, const dc_tensor *pre, const dc_tensor *residual, dc_tensor *out) {
    void *args[3] = { pre->data, residual ? residual->data : out->data, out->data };
    dc_range_kernel kernel = dc_jit_entry(c->jk);
    #pragma omp parallel if (c->work >= DC_PAR_MIN_WORK)
    {
        int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t begin = c->rows * t / nt, end = c->rows * (t + 1) / nt;
        if (begin < end) kernel(args, begin, end);
    }
}

/* Runs step s's contraction on oneDNN, a convolution computed as algo says. A fused
 * contraction whose pre-activation (result 1) the step writes runs with the bias alone into
 * it, then the activation and residual from it into result 0: the step's jit kernel (auto),
 * else oneDNN's eltwise primitive (dc_dnnl_activation). */
static bool dnnl_run(const dc_step *s, const dc_frame *f, dc_conv_algo algo, char *err, size_t len) {
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
        return dc_dnnl_conv2d(a, b, n->attr.conv, algo, NULL, out, err, len);
    case DC_OP_CONV2D_BWD_DATA:
        return dc_dnnl_conv2d_bwd_data(a, b, n->attr.conv, algo, out, err, len);
    case DC_OP_CONV2D_BWD_WEIGHT:
        return dc_dnnl_conv2d_bwd_weight(a, b, n->attr.conv, algo, out, NULL, err, len);
    case DC_OP_FUSED_CONV2D:
    case DC_OP_FUSED_MATMUL: {
        const dc_fused_matmul_attr *fm = &n->attr.fused_matmul;
        dc_fused_epilogue ep = dc_fused_epilogue_of(n);
        int res[2];
        dc_result_nodes(f->g, s->node - s->span, s->node, res, 2);
        bool keep = res[1] >= 0; /* the pre-activation: the contraction stops at the bias */
        dc_epilogue e = fused_epilogue(n, keep ? DC_ACTIVATION_NONE : ep.act, ep.bias, ep.residual && !keep, v);
        dc_tensor *y = &f->vals[keep ? res[1] : res[0]];
        if (!(n->op == DC_OP_FUSED_CONV2D
                  ? dc_dnnl_conv2d(a, b, fused_conv(&n->attr.fused_conv), algo, &e, y, err, len)
                  : dc_dnnl_matmul(a, b, (dc_matmul_attr){ .trans_a = fm->trans_a, .trans_b = fm->trans_b }, &e, y,
                                   err, len)))
            return false;
        if (!keep || res[0] < 0) return true;
        const char *contraction = dc_dnnl_last_impl(); /* the cached primitive's: stays valid */
        const dc_tensor *r = ep.residual ? &v[n->in[2 + ep.bias]] : NULL;
        if (s->ctx) run_activation(s->ctx, y, r, &f->vals[res[0]]);
        else if (!dc_dnnl_activation(y, ep.act, r, &f->vals[res[0]], err, len)) return false;
        snprintf(pair_impl, sizeof pair_impl, "%s + %s%s", contraction, s->ctx ? "" : "eltwise ",
                 s->ctx ? dc_jit_impl(((const act_ctx *)s->ctx)->jk) : dc_dnnl_last_impl());
        return true;
    }
    default:
        snprintf(err, len, "the dnnl provider has no kernel for %s", dc_op_name(n->op));
        return false;
    }
}

static bool dnnl_call(const dc_step *s, const dc_frame *f, char *err, size_t len) {
    return dnnl_run(s, f, DC_CONV_DIRECT, err, len);
}

static bool dnnl_call_winograd(const dc_step *s, const dc_frame *f, char *err, size_t len) {
    return dnnl_run(s, f, DC_CONV_WINOGRAD, err, len);
}

/* Validates a oneDNN step where it will run (its prepare hook): a step whose output the memory
 * plan puts over one of its inputs falls back to ref (oneDNN cannot run in place); otherwise it
 * runs once on the arena and keeps oneDNN's implementation as its impl, or, refused, falls back
 * to ref with the reason as its note (forced: fails). */
static dc_step_verdict try_dnnl(dc_step *s, const dc_frame *f, bool forced, char *err, size_t len) {
    char why[DC_ERR_LEN] = "";
    if (dc_step_overlaps(s, f, why, sizeof why)) {
        snprintf(err, len, "%s; oneDNN needs them apart", why);
        return DC_STEP_FALLBACK;
    }
    pair_impl[0] = 0;
    if (s->call(s, f, why, sizeof why)) {
        snprintf(s->impl, sizeof s->impl, "%s", pair_impl[0] ? pair_impl : dc_dnnl_last_impl());
        return DC_STEP_READY;
    }
    snprintf(err, len, "%s%s", forced ? "backend dnnl: " : "", why);
    return forced ? DC_STEP_FAILED : DC_STEP_FALLBACK;
}

static dc_step_verdict dnnl_prepare(dc_step *s, const dc_frame *f, char *err, size_t len) {
    return try_dnnl(s, f, false, err, len);
}

/* under the dnnl backend, where oneDNN refusing a node is an error */
static dc_step_verdict dnnl_prepare_forced(dc_step *s, const dc_frame *f, char *err, size_t len) {
    return try_dnnl(s, f, true, err, len);
}

bool dc_step_overlaps(const dc_step *s, const dc_frame *f, char *msg, size_t len) {
    for (int i = s->node - s->span; i <= s->node; i++)
        for (int j = s->node - s->span; j <= s->node; j++) {
            const dc_node *n = &f->g->nodes[j];
            for (int k = 0; k < n->n_in; k++)
                if (dc_tensor_overlap(&f->vals[i], &f->vals[n->in[k]])) {
                    char out[64], in[64];
                    snprintf(msg, len, "the memory plan puts %s over %s, an input of its step",
                             dc_node_label(f->g, i, out, sizeof out), dc_node_label(f->g, n->in[k], in, sizeof in));
                    return true;
                }
        }
    return false;
}

/* A oneDNN step; a convolution computed as algo says. */
static dc_step dnnl_step(int node, bool forced, dc_conv_algo algo) {
    dc_step s;
    memset(&s, 0, sizeof s);
    s.node = node;
    s.provider = "dnnl";
    s.writes_all = true;
    s.call = algo == DC_CONV_WINOGRAD ? dnnl_call_winograd : dnnl_call;
    s.prepare = forced ? dnnl_prepare_forced : dnnl_prepare;
    return s;
}

/* ---- the jit steps ---------------------------------------------------------------------- */

/* The last node of the loop group that starts at node i (i when ungrouped). */
static int group_last(const dc_graph *g, int i) {
    int k = g->group ? g->group[i] : 0;
    while (k > 0 && i + 1 < g->n_nodes && g->group[i + 1] == k) i++;
    return i;
}

/* Whether the backend gives node i (with the rest of its loop group) to the jit: every loop
 * group under auto and jit, an ungrouped groupable node under jit. */
static bool jit_claims(const dc_graph *g, int i, dc_backend backend) {
    if (g->group && g->group[i] > 0) return dc_backend_uses_jit(backend);
    return backend == DC_BACKEND_JIT && dc_op_groupable(g->nodes[i].op);
}

/* the ctx of a loop group's step: its kernel and its index checks */
typedef struct {
    dc_codegen_ctx base;
    dc_jit_kernel *jk;
    int n_checks;
    dc_index_check checks[DC_KIR_MAX_BUFS];
} group_ctx;

/* The step's check: every index its kernel reads is in range, else the ref kernels' error. */
static bool check_indices(const dc_step *s, const dc_frame *f, int *node, char *err, size_t len) {
    const group_ctx *c = s->ctx;
    for (int j = 0; j < c->n_checks; j++) {
        const dc_tensor *t = &f->vals[c->checks[j].node];
        const int32_t *idx = t->data;
        int64_t n = dc_numel(&t->type.shape);
        for (int64_t i = 0; i < n; i++)
            if (idx[i] < 0 || idx[i] >= c->checks[j].bound) {
                *node = c->checks[j].reader;
                snprintf(err, len, "%s %d out of range [0, %lld)", c->checks[j].what, idx[i], (long long)c->checks[j].bound);
                return false;
            }
    }
    return true;
}

static void release_group(dc_codegen_ctx *base) {
    dc_jit_release(((group_ctx *)base)->jk);
    free(base);
}

static void free_ctx(void *ctx) {
    dc_codegen_ctx *c = ctx;
    c->release(c);
}

/* The jit step of nodes first..last, or false and why. */
static bool jit_step(const dc_graph *g, int first, int last, dc_step *s, char *why, size_t len) {
    dc_jit_group jg;
    if (!dc_lower_group(g, first, last, &jg, why, len)) return false;
    char msg[DC_ERR_LEN];
    dc_jit_kernel *jk = dc_jit_compile(jg.kir, NULL, msg, sizeof msg);
    if (!jk) {
        snprintf(why, len, "%s", msg);
        dc_kir_free(jg.kir);
        return false;
    }
    memset(s, 0, sizeof *s);
    s->node = last;
    s->provider = "jit";
    snprintf(s->impl, sizeof s->impl, "jit:%012llx %s", (unsigned long long)(dc_kir_hash(jg.kir).hi >> 16),
             dc_jit_impl(jk));
    s->writes_all = true;
    s->kernel = dc_jit_entry(jk);
    s->range = dc_kir_range(jg.kir);
    for (int b = 0; b < jg.kir->n_bufs; b++) s->work += jg.kir->bufs[b].numel;
    s->n_args = jg.n_args;
    memcpy(s->args, jg.args, (size_t)jg.n_args * sizeof *jg.args);
    group_ctx *c = malloc(sizeof *c);
    if (!c) abort(); /* out of memory */
    *c = (group_ctx){ { release_group }, jk, jg.n_checks, { { 0 } } };
    memcpy(c->checks, jg.checks, (size_t)jg.n_checks * sizeof *jg.checks);
    s->ctx = c;
    if (jg.n_checks) s->check = check_indices;
    dc_kir_free(jg.kir);
    return true;
}

/* The steps of the group first..last (a loop group, or the result nodes of one attention, with
 * the choice for its first node): one jit step, or ref steps node by node with the reason on
 * the last. false and err when the group cannot run on ref either (a memory plan that gave its
 * internal values no slots). */
static bool group_steps(const dc_graph *g, int first, int last, const char *choice, dc_step *steps, int *n, char *err,
                        size_t len) {
    char why[DC_ERR_LEN] = "";
    if (dc_op_attention(g->nodes[first].op) ? dc_attention_step(g, first, last, choice, &steps[*n], why, sizeof why)
                  : jit_step(g, first, last, &steps[*n], why, sizeof why)) {
        (*n)++;
        return true;
    }
    for (int i = first; i <= last; i++) {
        if (g->plan_offset && g->plan_offset[i] < 0) {
            char label[64];
            snprintf(err, len, "backend jit: node %s cannot run on ref (the memory plan gave it no slot): %s",
                     dc_node_label(g, i, label, sizeof label), why);
            return false;
        }
        steps[(*n)++] = dc_ref_step(i);
    }
    snprintf(steps[*n - 1].note, sizeof steps[*n - 1].note, "jit: %s", why);
    return true;
}

/* ---- the contractions' providers ------------------------------------------------------- */

/* The step of the contraction whose nodes are first..last (one node, or the results of one
 * fused contraction; one oneDNN has a kernel for) under backend, given the tuned choice
 * (NULL: none): ref under ref; oneDNN under dnnl; under jit the jit GEMM (with the choice's
 * parameters when it is a jit choice; a convolution as an implicit GEMM); under auto the
 * choice, else the default rule (dc_contraction_default). A GEMM that cannot be built (a
 * grouped convolution) falls back to oneDNN with the reason as the step's note. The step is
 * last's, and writes first..last. */
static dc_step contraction_step(const dc_graph *g, int first, int last, dc_backend backend, const char *choice) {
    dc_gemm_spec params;
    bool jit_choice = choice && dc_gemm_choice_parse(choice, &params);
    const char *provider = backend == DC_BACKEND_REF ? "ref"
                           : backend == DC_BACKEND_DNNL ? "dnnl"
                           : backend == DC_BACKEND_JIT ? "jit"
                           : choice                  ? (jit_choice ? "jit" : choice)
                                                     : dc_contraction_default(g, first);
    char why[DC_ERR_LEN] = "";
    dc_step s;
    if (strcmp(provider, "ref") == 0) s = dc_ref_step(last);
    else if (strcmp(provider, "jit") == 0 && dc_gemm_step(g, first, jit_choice ? &params : NULL, &s, why, sizeof why))
        return s;
    else s = dnnl_step(last, backend == DC_BACKEND_DNNL, strcmp(provider, "dnnl winograd") == 0 ? DC_CONV_WINOGRAD : DC_CONV_DIRECT);
    s.span = last - first;
    if (*why) snprintf(s.note, sizeof s.note, "jit: %.150s", why);
    if (s.span && backend == DC_BACKEND_AUTO && strcmp(s.provider, "dnnl") == 0) {
        /* both results: the activation as a jit kernel (oneDNN's eltwise pass measured
         * slower); without one, oneDNN's */
        dc_fused_epilogue ep = dc_fused_epilogue_of(&g->nodes[first]);
        char msg[DC_ERR_LEN];
        s.ctx = activation_kernel(&g->nodes[first].type, ep.act, ep.residual, msg, sizeof msg);
        if (!s.ctx) snprintf(s.note, sizeof s.note, "jit activation: %.140s", msg);
    }
    return s;
}

/* the tuned choice of node i from the process's tuning database (NULL: none, or
 * DISCO_TUNE=off) */
static const char *db_choice(void *ctx, const char *signature) {
    (void)ctx;
    dc_tune_db *db = dc_tune_db_default();
    return db ? dc_tune_db_lookup(db, signature) : NULL;
}

dc_exec *dc_compile(const dc_graph *g, uint64_t seed, dc_backend backend, char *err, size_t len) {
    return dc_compile_in(g, seed, backend, NULL, err, len);
}

dc_exec *dc_compile_in(const dc_graph *g, uint64_t seed, dc_backend backend, dc_exec *host, char *err, size_t len) {
    return dc_compile_choosing(g, seed, backend, db_choice, NULL, host, err, len);
}

dc_exec *dc_compile_choosing(const dc_graph *g, uint64_t seed, dc_backend backend, dc_choose_fn choose, void *ctx,
                             dc_exec *host, char *err, size_t len) {
    if ((int)backend < 0 || (int)backend >= N_BACKENDS) {
        snprintf(err, len, "unknown backend %d (choose auto, ref, dnnl or jit)", (int)backend);
        return NULL;
    }
    if (!dc_verify(g, err, len)) return NULL;
    dc_step *steps = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *steps);
    if (!steps) abort(); /* out of memory */
    int n = 0;
    bool ok = true;
    for (int i = 0; i < g->n_nodes && ok; i++) {
        const dc_node *nd = &g->nodes[i];
        if (nd->op == DC_OP_INPUT || nd->op == DC_OP_PARAM) continue;
        bool attention = dc_op_attention(nd->op);
        int last = dc_op_multi_result(nd->op) ? dc_results_last(g, i) : group_last(g, i);
        char sig[DC_TUNE_SIG_LEN];
        const char *choice = choose && dc_tune_signature(g, i, sig, sizeof sig) ? choose(ctx, sig) : NULL;
        if (attention ? dc_backend_uses_jit(backend) : jit_claims(g, i, backend)) {
            int at = n;
            ok = group_steps(g, i, last, choice, steps, &n, err, len);
            if (ok && choose && steps[at].kernel && dc_tune_loop_signature(&steps[at], sig, sizeof sig))
                steps[at].split = dc_tune_loop_choice(choose(ctx, sig));
            i = last;
            continue;
        }
        if (dnnl_has_kernel(g, nd)) {
            steps[n++] = contraction_step(g, i, last, backend, choice);
            i = last;
        } else {
            steps[n++] = dc_ref_step(i);
        }
    }
    /* the executor owns the jit kernels from here on, also when it fails */
    dc_exec *e = ok ? dc_exec_new_program_in(g, seed, steps, n, free_ctx, host, err, len) : NULL;
    for (int k = 0; !ok && k < n; k++)
        if (steps[k].ctx) free_ctx(steps[k].ctx);
    free(steps);
    return e;
}
