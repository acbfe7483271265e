/* test_fuse_loops.c — the fuse-loops pass and loop groups in the IR. The verifier's group
 * checks on graphs built in memory; the text round trip of ` group=K`; every group the pass
 * makes (on the fuse-loops goldens, the IR goldens and a whole training graph: MLP with
 * layer_norm, softmax cross-entropy, gradients, clipping, AdamW, EMA) checked element by
 * element by a brute-force checker written here: each member element reads, from every
 * row-dependent member and through every row op, only elements of its own row under the view
 * the pass reports, stored values are full, row or lane sized, a group's kernel touches at most
 * DC_LOOP_MAX_BUFFERS buffers, and the AdamW update of each param
 * is one group; the ref executor (which ignores groups) gives bitwise the same outputs and
 * params for the training graph fused + planned as unfused; and plans made with
 * groups_as_kernels give exactly the internal values no slot and never overlap two values
 * live in the same group step. */
#include "tests/test.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>

#include "frontend/dsl.h"
#include "frontend/optim.h"
#include "passes/passes.h"
#include "runtime/runtime.h"
#include "tests/op_util.h"

/* ---- the verifier and the text form ---------------------------------------------------- */

static dc_graph *three_exps(void) {
    dc_graph *g = dc_graph_new("t");
    dc_t x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ 4, 8 }));
    dc_t w = dc_input(g, "w", DC_F32, 2, ((int64_t[]){ 8, 8 }));
    dc_output(g, dc_neg(g, dc_matmul(g, dc_tanh(g, dc_exp(g, x)), w)), NULL);
    g->group = calloc((size_t)g->n_nodes, sizeof(int));
    return g;
}

TEST(fuse_loops_verifier_groups) {
    char err[DC_ERR_LEN];
    dc_graph *g = three_exps(); /* nodes: x, w, exp, tanh, matmul, neg */
    g->group[2] = g->group[3] = 7;
    g->group[5] = 2;
    CHECK_MSG(dc_verify(g, err, sizeof err), "%s", err);
    g->group[4] = 7;
    CHECK(!dc_verify(g, err, sizeof err) && strstr(err, "matmul cannot be in a loop group"));
    g->group[4] = 0;
    g->group[5] = 7;
    CHECK(!dc_verify(g, err, sizeof err) && strstr(err, "group 7 is not consecutive"));
    g->group[5] = -1;
    CHECK(!dc_verify(g, err, sizeof err) && strstr(err, "group id -1 is negative"));
    g->group[5] = 0;
    g->group[0] = 1;
    CHECK(!dc_verify(g, err, sizeof err) && strstr(err, "input cannot be in a loop group"));
    dc_graph_free(g);
}

TEST(fuse_loops_text_round_trip) {
    const char *text = "graph @t(%x: f32[4,8]) -> (f32[4,8]) {\n"
                       "  %0 = exp %x : f32[4,8] group=5\n"
                       "  %1 = sum %0 {axes=[1], keepdims=true} : f32[4,1] group=5\n"
                       "  %2 = div %0, %1 : f32[4,8] group=5\n"
                       "  %3 = neg %2 : f32[4,8] group=2\n"
                       "  %4 = transpose %3 {perm=[1,0]} : f32[8,4]\n"
                       "  %5 = transpose %4 {perm=[1,0]} : f32[4,8] group=1\n"
                       "  return %5\n"
                       "}\n";
    char err[DC_ERR_LEN];
    dc_graph *g = dc_parse(text, strlen(text), "rt", err, sizeof err);
    CHECK_MSG(g, "%s", err);
    if (!g) return;
    CHECK(g->group && g->group[1] == 5 && g->group[4] == 2 && g->group[5] == 0 && g->group[6] == 1);
    char *out = dc_print(g);
    CHECK_STR_EQ(out, text);
    dc_graph_drop_plan(g);
    CHECK(g->group == NULL);
    free(out);
    dc_graph_free(g);
}

/* ---- the brute-force row checker ----------------------------------------------------------- */

static void unravel(const dc_shape *s, int64_t f, int64_t *idx) {
    for (int d = s->rank - 1; d >= 0; d--) {
        idx[d] = f % s->dim[d];
        f /= s->dim[d];
    }
}

static int64_t ravel(const dc_shape *s, const int64_t *idx) {
    int64_t f = 0;
    for (int d = 0; d < s->rank; d++) f = f * s->dim[d] + idx[d];
    return f;
}

/* The element of `in` that numpy broadcasting reads for element idx of `out`. */
static int64_t broadcast_index(const dc_shape *in, const dc_shape *out, const int64_t *idx) {
    int64_t f = 0;
    for (int d = 0; d < in->rank; d++) {
        int od = d + out->rank - in->rank;
        f = f * in->dim[d] + (in->dim[d] == 1 ? 0 : idx[od]);
    }
    return f;
}

/* The row of element f of a value with cnt elements under view v; -1 if it is neither full,
 * nor row sized, nor lane sized (one element per row and inner lane). */
static int64_t row_of(const dc_loop_view *v, int64_t cnt, int64_t f) {
    int64_t rows = v->n * v->groups, inner = v->s * v->k;
    if (cnt == rows * inner) return f / (v->s * v->groups * v->k) * v->groups + f / v->k % v->groups;
    if (cnt == rows * v->k) return f / v->k;
    return cnt == rows ? f : -1;
}

typedef struct {
    const dc_graph *g;
    dc_loop_view v;
    int first, last;
    bool *dep;       /* member depends on a row op of the group */
    int bad;
    char what[160];
} checker;

static bool member(const checker *c, int id) { return id >= c->first && id <= c->last; }

static int64_t cnt_of(const checker *c, int id) { return dc_numel(&c->g->nodes[id].type.shape); }

static void expect_row(checker *c, int in, int64_t fin, int out, int64_t fout, bool same_element) {
    int64_t a = row_of(&c->v, cnt_of(c, in), fin), b = row_of(&c->v, cnt_of(c, out), fout);
    if (a >= 0 && a == b && (!same_element || cnt_of(c, in) != cnt_of(c, out) || fin == fout)) return;
    if (c->bad++ < 3)
        printf("  %s: node %d element %lld reads node %d element %lld (rows %lld, %lld)\n", c->what, out,
               (long long)fout, in, (long long)fin, (long long)b, (long long)a);
}

/* Row op n reads input k along lines: every element of x on the line of element f (axis
 * `axis`, or group_norm's (sample, group) block) shares the row of the output there. */
static int64_t line_rep(const dc_graph *g, const dc_node *n, int64_t f) {
    const dc_shape *s = &g->nodes[n->in[0]].type.shape;
    int64_t idx[DC_MAX_RANK];
    unravel(s, f, idx);
    if (n->op == DC_OP_GROUP_NORM) {
        int64_t cg = s->dim[s->rank - 1] / n->attr.group_norm.groups;
        for (int d = 1; d + 1 < s->rank; d++) idx[d] = 0;
        idx[s->rank - 1] = idx[s->rank - 1] / cg * cg;
    } else if (n->op == DC_OP_LAYER_NORM) {
        idx[s->rank - 1] = 0;
    } else {
        idx[n->attr.axis.axis] = 0;
    }
    return ravel(s, idx);
}

/* The output element of reduction n that input element f (of x) goes to. */
static int64_t reduced_index(const dc_graph *g, const dc_node *n, int64_t f) {
    const dc_shape *s = &g->nodes[n->in[0]].type.shape;
    int64_t idx[DC_MAX_RANK], out = 0;
    unravel(s, f, idx);
    const dc_ints *a = &n->attr.reduce.axes;
    for (int d = 0; d < s->rank; d++) {
        bool reduced = a->n == 0;
        for (int i = 0; i < a->n; i++) reduced |= a->v[i] == d;
        if (!reduced) out = out * s->dim[d] + idx[d];
    }
    return out;
}

static void check_row_op(checker *c, int id) {
    const dc_node *n = &c->g->nodes[id];
    int x = n->in[0];
    bool reduces = n->op == DC_OP_SUM || n->op == DC_OP_MEAN || n->op == DC_OP_MAX || n->op == DC_OP_LOGSUMEXP;
    for (int64_t f = 0; f < cnt_of(c, x); f++) {
        if (reduces) {
            expect_row(c, x, f, id, reduced_index(c->g, n, f), false);
            continue;
        }
        int64_t rep = line_rep(c->g, n, f);
        expect_row(c, x, f, id, rep, false);
        expect_row(c, id, f, id, rep, false);
        if (n->op == DC_OP_SOFTMAX_BWD) expect_row(c, n->in[1], f, id, rep, false);
    }
    for (int k = 1; k < n->n_in; k++)
        if (member(c, n->in[k]) && c->dep[n->in[k]] && n->op != DC_OP_SOFTMAX_BWD && c->bad++ < 3)
            printf("  %s: node %d reads row-dependent member %d as gamma or beta\n", c->what, id, n->in[k]);
}

static void check_pointwise(checker *c, int id) {
    const dc_node *n = &c->g->nodes[id];
    int64_t idx[DC_MAX_RANK];
    for (int k = 0; k < n->n_in; k++) {
        int in = n->in[k];
        if (!member(c, in) || !c->dep[in]) continue;
        const dc_shape *is = &c->g->nodes[in].type.shape;
        for (int64_t f = 0; f < cnt_of(c, id); f++) {
            unravel(&n->type.shape, f, idx);
            int64_t fin = f;
            if (n->op == DC_OP_TRANSPOSE) {
                int64_t src[DC_MAX_RANK];
                for (int d = 0; d < n->type.shape.rank; d++) src[n->attr.perm.perm.v[d]] = idx[d];
                fin = ravel(is, src);
            } else if (n->op != DC_OP_RESHAPE) {
                fin = broadcast_index(is, &n->type.shape, idx);
            }
            expect_row(c, in, fin, id, f, true);
        }
    }
}

static bool is_row_op(dc_op op) {
    return dc_op_get(op)->kind == DC_KIND_REDUCTION || op == DC_OP_LAYER_NORM || op == DC_OP_GROUP_NORM;
}

/* Whether member id's value is read outside first..last or kept after the run. */
static bool stored_value(const dc_graph *g, int id, int last) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == id) return true;
    for (int j = 0; j < g->n_updates; j++)
        if (g->updates[j].value == id) return true;
    bool read = false;
    for (int i = id + 1; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] == id) {
                if (i > last) return true;
                read = true;
            }
    return !read;
}

/* Checks every group of g; returns the number of groups. */
static int check_groups(const dc_graph *g, const char *what) {
    char err[DC_ERR_LEN];
    CHECK_MSG(dc_verify(g, err, sizeof err), "%s: %s", what, err);
    int groups = 0;
    bool *dep = calloc((size_t)g->n_nodes + 1, sizeof *dep);
    for (int first = 0; g->group && first < g->n_nodes; first++) {
        if (g->group[first] == 0) continue;
        int last = first;
        while (last + 1 < g->n_nodes && g->group[last + 1] == g->group[first]) last++;
        CHECK_EQ_INT(g->group[first], ++groups);
        checker c = { g, { 0 }, first, last, dep, 0, "" };
        snprintf(c.what, sizeof c.what, "%s group %d", what, groups);
        CHECK_MSG(dc_loop_group_view(g, first, last, &c.v), "%s: the pass reports no view", c.what);
        for (int id = first; id <= last; id++) {
            const dc_node *n = &g->nodes[id];
            dep[id] = is_row_op(n->op);
            for (int k = 0; k < n->n_in; k++) dep[id] |= member(&c, n->in[k]) && dep[n->in[k]];
            if (is_row_op(n->op)) check_row_op(&c, id);
            else check_pointwise(&c, id);
            if (stored_value(g, id, last) && row_of(&c.v, cnt_of(&c, id), 0) < 0 && c.bad++ < 3)
                printf("  %s: stored node %d has %lld elements\n", c.what, id, (long long)cnt_of(&c, id));
        }
        int buffers = 0;
        for (int id = 0; id < g->n_nodes; id++) {
            bool read = false;
            dc_lower lw = dc_op_get(g->nodes[id].op)->lower;
            for (int r = first; r <= last && !member(&c, id) && lw != DC_LOWER_FILL && lw != DC_LOWER_IOTA; r++)
                for (int k = 0; k < g->nodes[r].n_in; k++) read |= g->nodes[r].in[k] == id;
            buffers += read || (member(&c, id) && stored_value(g, id, last));
        }
        CHECK_MSG(buffers <= DC_LOOP_MAX_BUFFERS, "%s touches %d buffers", c.what, buffers);
        bool one_row = c.v.n * c.v.groups == 1 && c.v.s * c.v.k > 1;
        CHECK_MSG(!one_row || first == last, "%s: a one-row group has %d members", c.what, last - first + 1);
        CHECK_MSG(c.bad == 0, "%s breaks the row-kernel rule (%d elements)", c.what, c.bad);
        first = last;
    }
    free(dep);
    return groups;
}

/* ---- goldens --------------------------------------------------------------------------- */

static int check_file(const char *path, bool golden) {
    size_t len = 0;
    char *text = dc_test_read_file(path, &len);
    char err[DC_ERR_LEN] = "";
    if (golden && text) len = (size_t)(strstr(text, "// EXPECT:") - text);
    dc_graph *g = text ? dc_parse(text, len, path, err, sizeof err) : NULL;
    CHECK_MSG(g, "%s: %s", path, err);
    int groups = 0;
    if (g) {
        dc_pass_opts o = { 0 };
        CHECK(dc_pass_fuse_loops(g, &o, err, sizeof err));
        groups = check_groups(g, path);
        char *once = dc_print(g);
        CHECK(dc_pass_fuse_loops(g, &o, err, sizeof err));
        char *twice = dc_print(g);
        CHECK_MSG(strcmp(once, twice) == 0, "%s: fuse-loops is not idempotent", path);
        free(once);
        free(twice);
    }
    dc_graph_free(g);
    free(text);
    return groups;
}

static void check_dir(const char *dir, const char *prefix, bool golden) {
    DIR *d = opendir(dir);
    CHECK(d);
    int files = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || n < 5 || strcmp(e->d_name + n - 5, ".dcir") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        CHECK_MSG(check_file(path, golden) > 0, "%s: no group", path);
        files++;
    }
    if (d) closedir(d);
    CHECK_MSG(files >= 4, "%s: only %d files", dir, files);
}

TEST(fuse_loops_goldens_obey_row_rule) {
    check_dir("tests/passes", "fuse_loops_", true);
    check_dir("tests/ir", "", false);
}

/* ---- a training graph ------------------------------------------------------------------ */

#define BATCH 8
#define N_PARAMS 6

/* x [8,12] -> linear 16 -> layer_norm -> gelu -> linear 5 -> cross-entropy, gradients of the 6
 * params, clipping by global norm, AdamW and EMA; simplify, cse, dce as the trainer runs. */
static dc_graph *training_graph(void) {
    dc_graph *g = dc_graph_new("train");
    dc_t x = dc_input(g, "x", DC_F32, 2, ((int64_t[]){ BATCH, 12 }));
    dc_t y = dc_input(g, "y", DC_I32, 1, ((int64_t[]){ BATCH }));
    dc_t lr = dc_input(g, "lr", DC_F32, 0, NULL), bc1 = dc_input(g, "bc1", DC_F32, 0, NULL);
    dc_t bc2 = dc_input(g, "bc2", DC_F32, 0, NULL);
    dc_t gamma = dc_param(g, "ln.gamma", 1, ((int64_t[]){ 16 }), .init = DC_INIT_ONES);
    dc_t beta = dc_param(g, "ln.beta", 1, ((int64_t[]){ 16 }), .init = DC_INIT_UNIFORM, .a = -0.1f, .b = 0.1f);
    dc_t h = dc_gelu(g, dc_layer_norm(g, dc_linear(g, x, 16, .name = "l0"), gamma, beta));
    dc_t loss = dc_cross_entropy(g, dc_linear(g, h, 5, .name = "l1"), y);
    dc_output(g, loss, "loss");
    dc_t params[N_PARAMS], grads[N_PARAMS], next[N_PARAMS];
    int wrt[N_PARAMS], gid[N_PARAMS], k = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_PARAM) params[k] = (dc_t){ i }, wrt[k++] = i;
    CHECK_EQ_INT(k, N_PARAMS);
    char err[DC_ERR_LEN];
    CHECK_MSG(dc_grad(g, loss.id, wrt, N_PARAMS, gid, err, sizeof err), "%s", err);
    for (int i = 0; i < N_PARAMS; i++) grads[i] = (dc_t){ gid[i] };
    dc_t norm = dc_global_norm(g, N_PARAMS, grads);
    dc_output(g, norm, "grad_norm");
    dc_clip_by_norm(g, N_PARAMS, grads, norm, 0.5f);
    dc_adamw(g, N_PARAMS, params, grads, lr, bc1, bc2, next, .weight_decay = 0.01f);
    dc_ema(g, N_PARAMS, params, next, 0.9f);
    CHECK_MSG(!dc_graph_failed(g), "%s", dc_graph_error(g));
    dc_pass_opts o = { 0 };
    CHECK_MSG(dc_run_pipeline(g, "simplify,cse,dce", &o, err, sizeof err), "%s", err);
    return g;
}

static void set_inputs(dc_exec *e, int run) {
    dc_tensor *x = dc_tensor_new(&(dc_type){ DC_F32, { 2, { BATCH, 12 } } });
    dc_tensor *y = dc_tensor_new(&(dc_type){ DC_I32, { 1, { BATCH } } });
    dc_tensor *s = dc_tensor_new(&(dc_type){ DC_F32, { 0 } });
    for (int i = 0; i < BATCH * 12; i++) ((float *)x->data)[i] = dc_rng_normal(11, (uint64_t)run, (uint64_t)i);
    for (int i = 0; i < BATCH; i++) ((int32_t *)y->data)[i] = (int32_t)(dc_rng_u32(12, (uint64_t)run, (uint64_t)i) % 5);
    char err[DC_ERR_LEN];
    CHECK(dc_exec_set_input(e, "x", x, err, sizeof err) && dc_exec_set_input(e, "y", y, err, sizeof err));
    const char *names[] = { "lr", "bc1", "bc2" };
    const float vals[] = { 0.05f, 1.0f / (1.0f - 0.9f), 1.0f / (1.0f - 0.999f) };
    for (int i = 0; i < 3; i++) {
        *(float *)s->data = vals[i] * (float)(run + 1) / 2;
        CHECK(dc_exec_set_input(e, names[i], s, err, sizeof err));
    }
    dc_tensor_free(x);
    dc_tensor_free(y);
    dc_tensor_free(s);
}

static bool same_bits(const dc_tensor *a, const dc_tensor *b) {
    return dc_type_eq(&a->type, &b->type) &&
           memcmp(a->data, b->data, (size_t)dc_numel(&a->type.shape) * dc_dtype_size(a->type.dtype)) == 0;
}

/* The param an update belongs to: NAME for NAME, opt.m.NAME, opt.v.NAME and ema.NAME. */
static const char *base_name(const char *name) {
    if (strncmp(name, "opt.", 4) == 0) return name + 6;
    return strncmp(name, "ema.", 4) == 0 ? name + 4 : name;
}

/* The AdamW + EMA updates of one param (p', m', v', ema') share one group, and no other. */
static void check_update_groups(const dc_graph *g) {
    for (int j = 0; j < g->n_updates; j++) {
        const char *name = g->nodes[g->updates[j].param].name;
        int k = g->group ? g->group[g->updates[j].value] : 0;
        CHECK_MSG(k > 0, "update of %s is in no group", name);
        for (int i = 0; i < g->n_updates && k > 0; i++) {
            const char *other = g->nodes[g->updates[i].param].name;
            bool same_param = strcmp(base_name(other), base_name(name)) == 0;
            CHECK_MSG(same_param == (g->group[g->updates[i].value] == k), "updates of %s and %s: groups %d and %d",
                      name, other, k, g->group[g->updates[i].value]);
        }
    }
}

TEST(fuse_loops_training_graph_bitwise) {
    dc_graph *plain = training_graph(), *fused = training_graph();
    char err[DC_ERR_LEN];
    dc_pass_opts o = { 0 };
    CHECK_MSG(dc_run_pipeline(fused, "fuse-loops,plan-memory", &o, err, sizeof err), "%s", err);
    CHECK(check_groups(fused, "training graph") >= N_PARAMS);
    check_update_groups(fused);
    dc_exec *a = dc_exec_new(plain, 5, err, sizeof err), *b = dc_exec_new(fused, 5, err, sizeof err);
    CHECK_MSG(a && b, "%s", err);
    for (int run = 0; a && b && run < 3; run++) {
        set_inputs(a, run);
        set_inputs(b, run);
        CHECK_MSG(dc_exec_run(a, err, sizeof err) && dc_exec_run(b, err, sizeof err), "%s", err);
        for (int i = 0; i < plain->n_outputs; i++)
            CHECK_MSG(same_bits(dc_exec_output(a, i), dc_exec_output(b, i)), "run %d output %d differs", run, i);
    }
    for (int j = 0; a && b && j < plain->n_updates; j++) {
        const char *name = plain->nodes[plain->updates[j].param].name;
        CHECK_MSG(same_bits(dc_exec_param(a, name), dc_exec_param(b, name)), "param %s differs", name);
    }
    dc_exec_free(a);
    dc_exec_free(b);
    dc_graph_free(plain);
    dc_graph_free(fused);
}

/* ---- plans for groups run as kernels ----------------------------------------------------- */

static int step_start(const dc_graph *g, int i) {
    while (g->group && g->group[i] > 0 && i > 0 && g->group[i - 1] == g->group[i]) i--;
    return i;
}

static int step_end(const dc_graph *g, int i) {
    while (g->group && g->group[i] > 0 && i + 1 < g->n_nodes && g->group[i + 1] == g->group[i]) i++;
    return i;
}

/* The last step (group end) that needs value a; n_nodes when kept after the run. */
static int live_until(const dc_graph *g, int a) {
    if (g->nodes[a].op == DC_OP_INPUT || g->nodes[a].op == DC_OP_PARAM) return g->n_nodes;
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == a) return g->n_nodes;
    for (int j = 0; j < g->n_updates; j++)
        if (g->updates[j].value == a) return g->n_nodes;
    int end = step_end(g, a);
    for (int i = a + 1; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] == a && step_end(g, i) > end) end = step_end(g, i);
    return end;
}

static bool internal_value(const dc_graph *g, int a) {
    if (!g->group || g->group[a] == 0 || live_until(g, a) == g->n_nodes) return false;
    bool read = false;
    for (int i = a + 1; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] == a) {
                if (g->group[i] != g->group[a]) return false;
                read = true;
            }
    return read;
}

static int64_t slot(const dc_type *t) {
    return (dc_numel(&t->shape) * (int64_t)dc_dtype_size(t->dtype) + 63) / 64 * 64;
}

/* Ungrouped elementwise b may take over a's slot when a dies at b (plan-memory's in-place). */
static bool in_place_ok(const dc_graph *g, int a, int b) {
    const dc_node *n = &g->nodes[b];
    if ((g->group && g->group[b]) || dc_op_get(n->op)->kind != DC_KIND_ELEMENTWISE) return false;
    for (int k = 0; k < n->n_in; k++)
        if (!dc_type_eq(&g->nodes[n->in[k]].type, &n->type)) return false;
    return live_until(g, a) == b && g->plan_offset[a] == g->plan_offset[b];
}

static void check_kernel_plan(dc_graph *g, const char *what) {
    char err[DC_ERR_LEN];
    dc_pass_opts o = { .groups_as_kernels = true };
    CHECK_MSG(dc_run_pipeline(g, "fuse-loops,plan-memory", &o, err, sizeof err), "%s", err);
    int bad = 0, internal = 0;
    for (int a = 0; a < g->n_nodes; a++) {
        bool in = internal_value(g, a);
        internal += in;
        if (in != (g->plan_offset[a] < 0)) bad++;
        if (in) continue;
        for (int b = a + 1; b < g->n_nodes; b++) {
            int64_t oa = g->plan_offset[a], ob = g->plan_offset[b];
            if (ob < 0 || !(oa < ob + slot(&g->nodes[b].type) && ob < oa + slot(&g->nodes[a].type))) continue;
            bool live_together = live_until(g, a) >= step_start(g, b);
            bool update = oa == ob && tu_update_over_param(g, a, b);
            if (live_together && !in_place_ok(g, a, b) && !update && bad++ < 3)
                printf("  %s: %d and %d overlap while both are live\n", what, a, b);
        }
    }
    CHECK_MSG(bad == 0, "%s: %d plan errors", what, bad);
    CHECK_MSG(internal > 0, "%s: no internal value", what);
}

TEST(fuse_loops_plan_groups_as_kernels) {
    dc_graph *g = training_graph();
    check_kernel_plan(g, "training graph");
    dc_graph_free(g);
    char err[DC_ERR_LEN];
    g = dc_parse_file("tests/passes/fuse_loops_softmax.dcir", err, sizeof err);
    CHECK_MSG(g, "%s", err);
    if (g) check_kernel_plan(g, "softmax golden");
    dc_graph_free(g);
}

/* The checker itself: a softmax over a leading axis under a plain row view reads across
 * rows, and the pass reports no view for such a group. */
TEST(fuse_loops_checker_catches_cross_row_reads) {
    const char *text = "graph @t(%x: f32[4,8]) -> (f32[4,8]) {\n"
                       "  %0 = exp %x : f32[4,8] group=1\n"
                       "  %1 = softmax %0 {axis=0} : f32[4,8] group=1\n"
                       "  return %1\n"
                       "}\n";
    char err[DC_ERR_LEN];
    dc_graph *g = dc_parse(text, strlen(text), "bad", err, sizeof err);
    CHECK_MSG(g, "%s", err);
    if (!g) return;
    dc_loop_view v;
    CHECK(!dc_loop_group_view(g, 1, 2, &v));
    bool dep[3] = { false };
    checker c = { g, { 4, 1, 1, 8 }, 1, 2, dep, 0, "(expected)" };
    dep[1] = false;
    check_row_op(&c, 2);
    CHECK(c.bad > 0);
    dc_graph_free(g);
}
