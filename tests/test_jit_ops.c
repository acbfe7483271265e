/* test_jit_ops.c — the op table's promise to the JIT, checked op by op from the rows: every
 * unary elementwise op is JIT-able (its lower column is not NONE), and every op whose lower
 * column is not NONE really lowers: the graph y = neg(op(inputs)), after fuse-loops, has
 * the op and its consumer in one loop group, which compiles under the jit backend into a jit
 * step (not a ref fallback) whose output matches the ref kernels' within 1e-5 (1 + |ref|) (the
 * jit approximates exp, log and tanh to a few ulps and sums in f32 lanes). The consumer makes
 * the index remaps and constants, which form no group alone, lower inside one. The graph of an op is built from its row alone (arity, lower column,
 * row description, attribute schema), so a new op is covered without an edit here. */
#include "tests/test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "passes/passes.h"

#define TOL 1e-5

/* An input of g named name with dtype dt and shape dims[rank]. */
static int input(dc_graph *g, const char *name, dc_dtype dt, int rank, const int64_t *dims) {
    dc_type t = { .dtype = dt, .shape = { .rank = rank } };
    memcpy(t.shape.dim, dims, (size_t)rank * sizeof *dims);
    char err[DC_ERR_LEN];
    return dc_graph_emit(g, DC_OP_INPUT, 0, NULL, NULL, &t, name, __FILE__, __LINE__, err, sizeof err);
}

/* The graph of op: its inputs x0, x1, ..., the op, and y = neg(op) as the output: operands f32[4,37] (a where's
 * condition i32), rows folded along the last axis, norms with gamma and beta of the channel
 * count, group norm over [2,3,5,8] in 2 groups, avg_pool of [2,6,10,3] and upsample of
 * [2,3,5,8] by 2, per-row losses of [4,37] with i32 labels [4], views between [4,37] and [2,74] / [37,4] / [1,37], a strided slice of
 * [4,37] and its unslice, a concat of [4,30], [4,1], [4,6] along the columns, a gather of
 * rows of [5,37]. NULL when the row asks for something this builder does not know (a test failure). */
static dc_graph *one_op_graph(dc_op op) {
    const dc_op_info *info = dc_op_get(op);
    dc_graph *g = dc_graph_new(dc_op_name(op));
    const int64_t m[2] = { 4, 37 }, gn[4] = { 2, 3, 5, 8 }, pool[4] = { 2, 6, 10, 3 };
    dc_attr at;
    memset(&at, 0, sizeof at);
    dc_type decl = { .dtype = DC_F32, .shape = { .rank = 2, .dim = { 4, 37 } } };
    const dc_type *declared = NULL;
    int in[3], n_in = 0;
    switch (info->lower) {
    case DC_LOWER_MAP:
        for (; n_in < info->arity; n_in++) {
            char name[16];
            snprintf(name, sizeof name, "x%d", n_in);
            bool cond = op == DC_OP_WHERE && n_in == 0;
            in[n_in] = input(g, name, cond ? DC_I32 : DC_F32, 2, m);
        }
        if (info->attr->n_fields == 1 && info->attr->fields[0].type == DC_FT_FLOAT) at.scalar.value = 1.5f;
        break;
    case DC_LOWER_CAST:
        in[n_in++] = input(g, "x0", DC_F32, 2, m);
        at.cast.to = DC_I32;
        break;
    case DC_LOWER_ROW: {
        bool image = info->row.rows == DC_ROWS_GROUPS || info->row.rows == DC_ROWS_WINDOW;
        const int64_t *xd = info->row.rows == DC_ROWS_WINDOW ? pool : gn;
        int64_t c = image ? xd[3] : m[1];
        for (; n_in < info->arity; n_in++) {
            char name[16];
            snprintf(name, sizeof name, "x%d", n_in);
            if (dc_row_data(&info->row, n_in)) in[n_in] = input(g, name, DC_F32, image ? 4 : 2, image ? xd : m);
            else if (info->row.rows == DC_ROWS_LABELS) in[n_in] = input(g, name, DC_I32, 1, m);
            else in[n_in] = input(g, name, DC_F32, 1, &c);
        }
        switch (info->row.rows) {
        case DC_ROWS_AXES: at.reduce.axes = (dc_ints){ .n = 1, .v = { 1 } }; break;
        case DC_ROWS_AXIS: at.axis.axis = 1; break;
        case DC_ROWS_LAST: at.eps.eps = 1e-5f; break;
        case DC_ROWS_GROUPS: at.group_norm = (dc_group_norm_attr){ .groups = 2, .eps = 1e-5f }; break;
        case DC_ROWS_WINDOW: at.pool.factor = 2; break;
        case DC_ROWS_LABELS: break;
        case DC_ROWS_NONE: dc_graph_free(g); return NULL;
        }
        break;
    }
    case DC_LOWER_FILL:
        at.scalar.value = 1.5f;
        declared = &decl;
        break;
    case DC_LOWER_IOTA:
        at.axis.axis = 1;
        declared = &decl;
        break;
    case DC_LOWER_RESHAPE:
        in[n_in++] = input(g, "x0", DC_F32, 2, m);
        decl.shape = (dc_shape){ .rank = 2, .dim = { 2, 74 } };
        declared = &decl;
        break;
    case DC_LOWER_TRANSPOSE:
        in[n_in++] = input(g, "x0", DC_F32, 2, m);
        at.perm.perm = (dc_ints){ .n = 2, .v = { 1, 0 } };
        break;
    case DC_LOWER_BROADCAST:
        in[n_in++] = input(g, "x0", DC_F32, 2, (const int64_t[]){ 1, 37 });
        declared = &decl;
        break;
    case DC_LOWER_ONE_HOT:
        in[n_in++] = input(g, "x0", DC_I32, 1, (const int64_t[]){ 37 });
        at.one_hot.depth = 4;
        break;
    case DC_LOWER_UPSAMPLE:
        in[n_in++] = input(g, "x0", DC_F32, 4, gn);
        at.pool.factor = 2;
        break;
    case DC_LOWER_SLICE:
    case DC_LOWER_UNSLICE: {
        /* slice [4,37] -> [3,12] (rows 1.., every third column from 2); unslice back */
        at.slice = (dc_slice_attr){ .start = { 2, { 1, 2 } }, .stop = { 2, { 4, 37 } }, .step = { 2, { 1, 3 } } };
        bool un = info->lower == DC_LOWER_UNSLICE;
        in[n_in++] = input(g, "x0", DC_F32, 2, un ? (const int64_t[]){ 3, 12 } : m);
        declared = un ? &decl : NULL;
        break;
    }
    case DC_LOWER_CONCAT:
        in[n_in++] = input(g, "x0", DC_F32, 2, (const int64_t[]){ 4, 30 });
        in[n_in++] = input(g, "x1", DC_F32, 2, (const int64_t[]){ 4, 1 });
        in[n_in++] = input(g, "x2", DC_F32, 2, (const int64_t[]){ 4, 6 });
        at.axis.axis = 1;
        break;
    case DC_LOWER_GATHER:
        in[n_in++] = input(g, "x0", DC_F32, 2, (const int64_t[]){ 5, 37 });
        in[n_in++] = input(g, "x1", DC_I32, 1, (const int64_t[]){ 4 });
        break;
    case DC_LOWER_NONE:
        dc_graph_free(g);
        return NULL;
    }
    char err[DC_ERR_LEN];
    int y = dc_graph_emit(g, op, n_in, in, &at, declared, NULL, __FILE__, __LINE__, err, sizeof err);
    if (y < 0) {
        dc_test_fail(__FILE__, __LINE__, "%s: %s", dc_op_name(op), err);
        dc_graph_free(g);
        return NULL;
    }
    y = dc_graph_emit(g, DC_OP_NEG, 1, &y, NULL, NULL, NULL, __FILE__, __LINE__, err, sizeof err);
    if (y < 0) {
        dc_test_fail(__FILE__, __LINE__, "neg of %s: %s", dc_op_name(op), err);
        dc_graph_free(g);
        return NULL;
    }
    dc_graph_add_output(g, y, "y");
    return g;
}

/* Every input: f32 in [-2, 2) (so domain-limited ops see both sides: NaN must match NaN), i32
 * alternating 0/1. */
static bool feed(dc_exec *e, const dc_graph *g, char *err, size_t len) {
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *n = &g->nodes[i];
        if (n->op != DC_OP_INPUT) continue;
        dc_tensor *t = dc_tensor_new(&n->type);
        int64_t count = dc_numel(&n->type.shape);
        for (int64_t k = 0; k < count; k++) {
            if (n->type.dtype == DC_I32) ((int32_t *)t->data)[k] = (int32_t)(k % 2);
            else ((float *)t->data)[k] = (float)(4.0 * (double)((k * 7919 + i * 104729) % 1000) / 1000.0 - 2.0);
        }
        bool ok = dc_exec_set_input(e, n->name, t, err, len);
        dc_tensor_free(t);
        if (!ok) return false;
    }
    return dc_exec_run(e, err, len);
}

/* The step computing node y runs on jit. */
static bool on_jit(dc_exec *e, int y) {
    int n;
    const dc_step *s = dc_exec_steps(e, &n);
    for (int i = 0; i < n; i++)
        if (s[i].node == y) return strcmp(s[i].provider, "jit") == 0;
    return false;
}

/* op's graph on ref and on jit, compared element by element. */
static void check_op(dc_op op) {
    char err[DC_ERR_LEN] = "", name[96];
    snprintf(name, sizeof name, "jit lowers %s", dc_op_name(op));
    dc_graph *g = one_op_graph(op);
    if (!g) return;
    dc_graph *f = one_op_graph(op);
    dc_exec *ref = NULL, *jit = NULL;
    bool ok = dc_run_pipeline(f, "fuse-loops", &(dc_pass_opts){ 0 }, err, sizeof err) &&
              (ref = dc_compile(g, 1, DC_BACKEND_REF, err, sizeof err)) && feed(ref, g, err, sizeof err) &&
              (jit = dc_compile(f, 1, DC_BACKEND_JIT, err, sizeof err)) && feed(jit, f, err, sizeof err);
    int y = f->outputs[0], v = f->nodes[y].in[0];
    if (ok && !(f->group && f->group[v] && f->group[v] == f->group[y]))
        ok = false, snprintf(err, sizeof err, "fuse-loops did not group it with its consumer");
    if (ok && !on_jit(jit, y)) ok = false, snprintf(err, sizeof err, "its group did not run on jit");
    if (ok) {
        const dc_tensor *w = dc_exec_output(ref, 0), *a = dc_exec_output(jit, 0);
        for (int64_t i = 0; i < dc_numel(&w->type.shape) && ok; i++) {
            double wv = w->type.dtype == DC_F32 ? ((const float *)w->data)[i] : ((const int32_t *)w->data)[i];
            double av = a->type.dtype == DC_F32 ? ((const float *)a->data)[i] : ((const int32_t *)a->data)[i];
            bool same = (wv != wv && av != av) || fabs(av - wv) <= TOL * (1 + fabs(wv));
            if (!same) ok = false, snprintf(err, sizeof err, "element %lld: jit %.9g, ref %.9g", (long long)i, av, wv);
        }
    }
    dc_test_case(name, ok, "%s", err);
    dc_exec_free(ref);
    dc_exec_free(jit);
    dc_graph_free(g);
    dc_graph_free(f);
}

TEST(jit_every_unary_elementwise_op_is_jitable) {
    for (int op = 0; op < DC_OP_COUNT; op++) {
        const dc_op_info *info = dc_op_get(op);
        if (info->kind == DC_KIND_ELEMENTWISE && info->arity == 1)
            CHECK_MSG(info->lower != DC_LOWER_NONE, "%s has no kernel-IR lowering", dc_op_name(op));
    }
}

TEST(jit_lowers_every_groupable_op) {
    int checked = 0;
    for (int op = 0; op < DC_OP_COUNT; op++) {
        if (!dc_op_groupable(op)) continue;
        check_op(op);
        checked++;
    }
    CHECK(checked > 0);
}

/* Graph text (inputs %t f32 and %i i32 [4], one output) on ref and on jit: with the indices
 * bad, both runs fail with the same error (node and all), which contains expect; with good,
 * the outputs agree. The jit step runs on jit. */
static void index_checked_like_ref(const char *text, const int32_t bad[4], const int32_t good[4], const char *expect) {
    char err[DC_ERR_LEN] = "", ref_err[DC_ERR_LEN] = "", jit_err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse(text, strlen(text), "index_check", err, sizeof err);
    CHECK_MSG(g && dc_run_pipeline(g, "fuse-loops", &(dc_pass_opts){ 0 }, err, sizeof err), "%s", err);
    dc_exec *ref = g ? dc_compile(g, 1, DC_BACKEND_REF, err, sizeof err) : NULL;
    dc_exec *jit = g ? dc_compile(g, 1, DC_BACKEND_JIT, err, sizeof err) : NULL;
    CHECK_MSG(ref && jit, "%s", err);
    if (ref && jit) {
        CHECK(on_jit(jit, g->outputs[0]));
        dc_tensor *t = dc_tensor_new(&g->nodes[0].type), *i = dc_tensor_new(&g->nodes[1].type);
        for (int64_t k = 0; k < dc_numel(&t->type.shape); k++) ((float *)t->data)[k] = (float)k * 0.25f;
        for (int pass = 0; pass < 2; pass++) {
            memcpy(i->data, pass ? good : bad, 4 * sizeof *good);
            dc_exec *e[2] = { ref, jit };
            bool ran[2];
            for (int k = 0; k < 2; k++) {
                CHECK(dc_exec_set_input(e[k], "t", t, err, sizeof err) && dc_exec_set_input(e[k], "i", i, err, sizeof err));
                ran[k] = dc_exec_run(e[k], k ? jit_err : ref_err, sizeof jit_err);
            }
            CHECK_EQ_INT(ran[0], pass);
            CHECK_EQ_INT(ran[1], pass);
            if (!pass) {
                CHECK_MSG(strstr(jit_err, expect) != NULL, "%s", jit_err);
                CHECK_STR_EQ(jit_err, ref_err);
                continue;
            }
            const dc_tensor *a = dc_exec_output(jit, 0), *b = dc_exec_output(ref, 0);
            for (int64_t k = 0; k < dc_numel(&a->type.shape); k++)
                CHECK_NEAR(((const float *)a->data)[k], ((const float *)b->data)[k], 1e-5, 1e-5);
        }
        dc_tensor_free(t);
        dc_tensor_free(i);
    }
    dc_exec_free(ref);
    dc_exec_free(jit);
    dc_graph_free(g);
}

/* A gather and a cross_entropy's rows on jit check their indices before their kernels run:
 * out of range is the ref kernel's error, word for word; in range, the values match ref's. */
TEST(jit_checks_indices_like_ref) {
    index_checked_like_ref("graph @g(%t: f32[5,3], %i: i32[4]) -> (f32[4,3]) {\n"
                           "  %0 = gather %t, %i : f32[4,3]\n"
                           "  %1 = neg %0 : f32[4,3]\n"
                           "  return %1\n"
                           "}\n",
                           (const int32_t[]){ 0, 4, 5, 1 }, (const int32_t[]){ 4, 0, 2, 2 },
                           "gather: index 5 out of range [0, 5)");
    index_checked_like_ref("graph @x(%t: f32[4,7], %i: i32[4]) -> (f32[4]) {\n"
                           "  %0 = cross_entropy_rows %t, %i : f32[4]\n"
                           "  %1 = neg %0 : f32[4]\n"
                           "  return %1\n"
                           "}\n",
                           (const int32_t[]){ 0, -1, 6, 1 }, (const int32_t[]){ 6, 0, 3, 3 },
                           "cross_entropy: label -1 out of range [0, 7)");
}
