/* test_pipeline.c — the compiler's pipeline policy (codegen/pipeline.c): the pipeline of every
 * backend runs on the IR goldens; it groups loops exactly for the backends that run groups as
 * JIT kernels; and dc_compile_for computes the outputs of dc_compile of the graph as written
 * under the ref backend, within a few ulp (fused kernels round differently), under every
 * backend. */
#include "tests/test.h"

#include "codegen/codegen.h"
#include "passes/passes.h"
#include "tests/graphgen.h"
#include "tests/op_util.h"

static const char *const goldens[] = { "tests/ir/all_ops.dcir", "tests/ir/attention.dcir",
                                       "tests/ir/conv_block.dcir", "tests/ir/mlp.dcir",
                                       "tests/ir/sgd_step.dcir" };
#define N_GOLDENS (int)(sizeof goldens / sizeof goldens[0])
static const dc_backend backends[] = { DC_BACKEND_AUTO, DC_BACKEND_REF, DC_BACKEND_DNNL, DC_BACKEND_JIT };
#define N_BACKENDS (int)(sizeof backends / sizeof backends[0])

static dc_graph *parse_ok(const char *path) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse_file(path, err, sizeof err);
    CHECK_MSG(g != NULL, "%s: %s", path, err);
    return g;
}

TEST(pipeline_policy_per_backend) {
    for (int b = 0; b < N_BACKENDS; b++) {
        bool jit = backends[b] == DC_BACKEND_AUTO || backends[b] == DC_BACKEND_JIT;
        CHECK_EQ_INT(dc_backend_uses_jit(backends[b]), jit);
        const char *p = dc_pipeline(backends[b]);
        CHECK_MSG((strstr(p, "fuse-loops") != NULL) == jit, "pipeline of backend %d: %s", b, p);
        CHECK_MSG(strstr(p, "fuse-contraction") && strstr(p, "plan-memory"), "pipeline: %s", p);
        for (int i = 0; i < N_GOLDENS; i++) {
            dc_graph *g = parse_ok(goldens[i]);
            char err[DC_ERR_LEN] = "";
            CHECK_MSG(g && dc_run_pipeline(g, p, &(dc_pass_opts){ .verify_each = true }, err, sizeof err),
                      "%s: %s: %s", goldens[i], p, err);
            dc_graph_free(g);
        }
    }
}

/* f32 inputs from a fixed normal stream per input; i32 inputs stay zero. */
static void feed(dc_exec *e, const dc_graph *g) {
    for (int i = 0, n = dc_graph_n_inputs(g); i < n; i++) {
        dc_tensor *v = dc_exec_value(e, dc_graph_input(g, i));
        for (int64_t k = 0; v->type.dtype == DC_F32 && k < dc_numel(&v->type.shape); k++)
            ((float *)v->data)[k] = dc_rng_normal(5, (uint64_t)i, (uint64_t)k);
    }
}

/* Output by output, element by element: the same numbers within the relative tolerance rel of
 * the output's scale (or both NaN). */
static void check_close(const char *what, dc_exec *a, dc_exec *b, const dc_graph *g, double rel) {
    for (int i = 0; i < g->n_outputs; i++) {
        const dc_tensor *x = dc_exec_output(a, i), *y = dc_exec_output(b, i);
        double scale = y->type.dtype == DC_F32 ? gg_rms(y) : 0;
        int64_t k = 0, n = dc_numel(&y->type.shape);
        while (k < n && (fabs(tu_get(x, k) - tu_get(y, k)) <= gg_tol_at(rel, scale, (float)tu_get(y, k)) ||
                         (isnan(tu_get(x, k)) && isnan(tu_get(y, k)))))
            k++;
        CHECK_MSG(k == n, "%s output %d element %lld: %.9g, as written on ref %.9g", what, i, (long long)k,
                  k < n ? tu_get(x, k) : 0, k < n ? tu_get(y, k) : 0);
    }
}

TEST(pipeline_computes_what_the_graph_says) {
    for (int i = 0; i < N_GOLDENS; i++)
        for (int b = 0; b < N_BACKENDS; b++) {
            dc_graph *plain = parse_ok(goldens[i]), *piped = parse_ok(goldens[i]);
            char err[DC_ERR_LEN] = "", what[160];
            snprintf(what, sizeof what, "%s backend %d", goldens[i], b);
            dc_exec *want = plain ? dc_compile(plain, 7, DC_BACKEND_REF, err, sizeof err) : NULL;
            dc_exec *got = piped ? dc_compile_for(piped, 7, backends[b], NULL, err, sizeof err) : NULL;
            CHECK_MSG(want && got, "%s: %s", what, err);
            if (want && got) {
                CHECK(piped->plan_offset != NULL);
                feed(want, plain);
                feed(got, piped);
                bool ran = dc_exec_run(want, err, sizeof err) && dc_exec_run(got, err, sizeof err);
                CHECK_MSG(ran, "%s: %s", what, err);
                if (ran) check_close(what, got, want, plain, 1e-5);
            }
            dc_exec_free(want);
            dc_exec_free(got);
            dc_graph_free(plain);
            dc_graph_free(piped);
        }
}
