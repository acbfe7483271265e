/* run.c — `disco run`: runs the compiler's pipeline on a graph (dc_pipeline of
 * codegen/codegen.h for the backend, or the user's --passes, or none), lowers it to a runtime
 * program (ref / dnnl / jit / auto providers) and executes it, inputs from .npy files or the
 * seeded generator, outputs to .npy files or a printed summary, then optionally the per-step
 * profile. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "codegen/codegen.h"
#include "ir/ir.h"
#include "passes/passes.h"
#include "runtime/runtime.h"
#include "tools/cli.h"

/* The largest exclusive bound an i32 input may take so that every use of it is in range:
 * gather indices < table rows, one_hot indices < depth, cross_entropy labels < classes.
 * 2 when nothing bounds it. */
static int64_t index_bound(const dc_graph *g, int input) {
#define TIGHTEN(b) bound = (b) < bound ? (b) : bound
    int64_t bound = INT64_MAX;
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *n = &g->nodes[i];
        if (n->op == DC_OP_GATHER && n->in[1] == input)
            TIGHTEN(g->nodes[n->in[0]].type.shape.dim[0]);
        if (n->op == DC_OP_ONE_HOT && n->in[0] == input) TIGHTEN(n->attr.one_hot.depth);
        if (n->op == DC_OP_CROSS_ENTROPY && n->in[1] == input) {
            const dc_shape *s = &g->nodes[n->in[0]].type.shape;
            TIGHTEN(s->dim[s->rank - 1]);
        }
    }
#undef TIGHTEN
    return bound == INT64_MAX ? 2 : bound;
}

/* Fills input node id from the seeded generator: f32 ~ N(0,1), i32 uniform in [0, bound). */
static void fill_random_input(const dc_graph *g, int id, dc_tensor *t, uint64_t seed) {
    const dc_node *n = &g->nodes[id];
    uint64_t stream = XXH64(n->name, strlen(n->name), 0x696e707574ULL);
    int64_t count = dc_numel(&t->type.shape);
    if (t->type.dtype == DC_F32) {
        for (int64_t i = 0; i < count; i++) ((float *)t->data)[i] = dc_rng_normal(seed, stream, (uint64_t)i);
        fprintf(stderr, "disco run: input '%s' not given: filled with N(0,1) from seed %" PRIu64 "\n",
                n->name, seed);
    } else {
        int64_t bound = index_bound(g, id);
        for (int64_t i = 0; i < count; i++)
            ((int32_t *)t->data)[i] = (int32_t)(dc_rng_u32(seed, stream, (uint64_t)i) % (uint64_t)bound);
        fprintf(stderr,
                "disco run: input '%s' not given: filled with integers in [0, %" PRId64 ") from seed %" PRIu64 "\n",
                n->name, bound, seed);
    }
}

static void print_summary(const char *name, const dc_tensor *t) {
    char ty[128];
    int64_t n = dc_numel(&t->type.shape);
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = t->type.dtype == DC_F32 ? ((const float *)t->data)[i] : ((const int32_t *)t->data)[i];
        lo = fmin(lo, v);
        hi = fmax(hi, v);
        sum += v;
    }
    printf("%s: %s min %.6g max %.6g mean %.6g\n", name, dc_type_str(&t->type, ty, sizeof ty), lo, hi,
           sum / (double)n);
}

#define MAX_INPUTS 64

/* the --input options: name is "NAME=FILE.npy", path points after its '=' */
typedef struct {
    int n;
    struct { const char *name, *path; } at[MAX_INPUTS];
} input_list;

typedef struct {
    const char *file, *out_dir, *passes;
    uint64_t seed;
    int threads, backend;
    bool profile, no_passes, no_tune;
    input_list inputs;
} run_args;

/* one --input NAME=FILE.npy into the input_list field */
static bool parse_input(const char *v, void *field, char *err, size_t len) {
    input_list *l = field;
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || !eq[1]) snprintf(err, len, "--input takes NAME=FILE.npy, got '%s'", v);
    else if (l->n == MAX_INPUTS) snprintf(err, len, "too many --input options (%d at most)", MAX_INPUTS);
    else {
        l->at[l->n].name = v, l->at[l->n++].path = eq + 1;
        return true;
    }
    return false;
}

static int cmd_run(int argc, char **argv) {
    run_args a = { .backend = -1 };
    int st = dc_cli_parse(&dc_cmd_run, &a, argc, argv, &a.file);
    if (st) return st;
    const char *file = a.file;
    if (!file) return dc_usage_error("run", "no graph file");
    if (a.passes && a.no_passes) return dc_usage_error("run", "--passes and --no-passes exclude each other");
    if (!dc_cli_backend("run", &a.backend, DC_BACKEND_AUTO)) return EXIT_USAGE;
    const char *passes = a.no_passes ? NULL : a.passes ? a.passes : dc_pipeline((dc_backend)a.backend);
    if (a.threads) omp_set_num_threads(a.threads);
    dc_cli_no_tune(a.no_tune);
    char err[DC_ERR_LEN];

    int status = 1;
    dc_exec *e = NULL;
    dc_graph *g = dc_parse_file(file, err, sizeof err);
    if (!g) goto fail;
    for (int k = 0; k < a.inputs.n; k++) {
        const char *given = a.inputs.at[k].name;
        size_t len = (size_t)(strchr(given, '=') - given);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len < 255 ? len : 255), given);
        if (dc_graph_find_input(g, name) < 0) {
            snprintf(err, sizeof err, "disco run: %s has no input named '%s'", file, name);
            goto fail;
        }
    }
    char pass_err[DC_ERR_LEN];
    if (passes && !dc_run_pipeline(g, passes, &(dc_pass_opts){ 0 }, pass_err, sizeof pass_err)) {
        snprintf(err, sizeof err, "%s: error: %.400s", file, pass_err);
        goto fail;
    }
    if (!(e = dc_compile(g, a.seed, (dc_backend)a.backend, err, sizeof err))) goto fail;
    for (int i = 0, n = dc_graph_n_inputs(g); i < n; i++) {
        int id = dc_graph_input(g, i);
        const char *path = NULL;
        size_t n_name = strlen(g->nodes[id].name);
        for (int k = 0; k < a.inputs.n; k++)
            if (strncmp(a.inputs.at[k].name, g->nodes[id].name, n_name) == 0 && a.inputs.at[k].name[n_name] == '=')
                path = a.inputs.at[k].path;
        dc_tensor *t;
        if (path) {
            if (!(t = dc_npy_read(path, err, sizeof err))) goto fail;
        } else {
            t = dc_tensor_new(&g->nodes[id].type);
            fill_random_input(g, id, t, a.seed);
        }
        bool ok = dc_exec_set_input(e, g->nodes[id].name, t, err, sizeof err);
        dc_tensor_free(t);
        if (!ok) goto fail;
    }
    if (!dc_exec_run(e, err, sizeof err)) goto fail;
    if (a.out_dir && mkdir(a.out_dir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, sizeof err, "disco run: cannot create %s: %s", a.out_dir, strerror(errno));
        goto fail;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        char buf[32], path[4096];
        const char *name = dc_graph_output_name(g, i, buf, sizeof buf);
        if (!a.out_dir) {
            print_summary(name, dc_exec_output(e, i));
            continue;
        }
        snprintf(path, sizeof path, "%s/%s.npy", a.out_dir, name);
        if (!dc_npy_write(path, dc_exec_output(e, i), err, sizeof err)) goto fail;
        printf("wrote %s\n", path);
    }
    if (a.profile) dc_exec_print_profile(e, stdout);
    status = 0;
fail:
    if (status) fprintf(stderr, "%s\n", err);
    dc_exec_free(e);
    dc_graph_free(g);
    return status;
}

static const dc_opt options[] = {
    DC_OPT_FN("--input", "NAME=FILE.npy", run_args, inputs, parse_input,
              "value of input NAME (float32/int32 .npy, C order); repeat for more inputs"),
    DC_OPT_U64("--seed", "N", run_args, seed,
               "seed of parameter init, random ops and inputs not given (default 0);\n"
               "inputs not given are filled from it (f32: N(0,1); i32: integers in\n"
               "[0, B) with B the smallest index range they are used with, else 2)"),
    DC_OPT_THREADS(run_args, threads),
    DC_OPT_STR("--out", "DIR", run_args, out_dir, "write each output as DIR/NAME.npy; without it, print a summary"),
    DC_OPT_BACKEND(run_args, backend),
    DC_OPT_NO_TUNE(run_args, no_tune),
    DC_OPT_STR("--passes", "a,b,c", run_args, passes,
               "run these passes before compiling instead of the compiler's\n"
               "pipeline for the backend (`disco opt --pipeline --print-pipeline`)"),
    DC_OPT_FLAG("--no-passes", run_args, no_passes, "compile the graph as written, without any pass"),
    DC_OPT_FLAG("--profile", run_args, profile,
                "after the outputs, print per step: node, op, provider, kernel,\n"
                "calls, time; then why any oneDNN node runs on ref"),
    { 0 }
};

const dc_command dc_cmd_run = {
    .name = "run", .fn = cmd_run, .summary = "execute a graph", .args = "FILE.dcir", .arg_what = "graph file",
    .options = options,
    .about = "Runs the compiler's pipeline on FILE.dcir (the passes of `disco opt\n"
             "--pipeline`, for the backend: fusion, and JIT loop kernels under auto and jit),\n"
             "lowers it to a program of kernels and executes it once.\n",
    .notes = "Same seed, backend and thread count give bitwise-identical outputs.\n"
             "DISCO_TRACE=FILE.json writes a Chrome trace (chrome://tracing, Perfetto) of every step.\n",
};
