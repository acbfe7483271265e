/* run.c — `disco run`: lowers a graph to a runtime program (ref / dnnl / auto providers) and
 * executes it, inputs from .npy files or the seeded generator, outputs to .npy files or a
 * printed summary, then optionally the per-step profile. */
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

typedef struct { const char *name, *path; } input_arg;

static int cmd_run(int argc, char **argv) {
    const char *file = NULL, *out_dir = NULL;
    uint64_t seed = 0, threads = 0;
    input_arg inputs[64];
    int n_inputs = 0, backend = -1;
    bool profile = false;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = dc_option_value(argc, argv, &i, "--input", &missing))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1]) return dc_usage_error("run", "--input takes NAME=FILE.npy, got '%s'", v);
            if (n_inputs == 64) return dc_usage_error("run", "too many --input options (64 at most)");
            inputs[n_inputs++] = (input_arg){ v, eq + 1 };
        } else if ((v = dc_option_value(argc, argv, &i, "--seed", &missing))) {
            if (!dc_parse_u64(v, UINT64_MAX, &seed)) return dc_usage_error("run", "--seed takes a non-negative integer, got '%s'", v);
        } else if ((v = dc_option_value(argc, argv, &i, "--threads", &missing))) {
            if (!dc_parse_u64(v, 1024, &threads) || threads == 0)
                return dc_usage_error("run", "--threads takes an integer from 1 to 1024, got '%s'", v);
        } else if ((v = dc_option_value(argc, argv, &i, "--out", &missing))) {
            out_dir = v;
        } else if ((v = dc_option_value(argc, argv, &i, "--backend", &missing))) {
            if ((backend = dc_backend_from_name(v)) < 0)
                return dc_usage_error("run", "--backend takes auto, ref, dnnl or jit, got '%s'", v);
        } else if (strcmp(argv[i], "--profile") == 0) {
            profile = true;
        } else if (missing) {
            return dc_usage_error("run", "option '%s' needs a value", argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return dc_usage_error("run", "unknown option '%s'", argv[i]);
        } else if (file) {
            return dc_usage_error("run", "more than one graph file ('%s')", argv[i]);
        } else {
            file = argv[i];
        }
    }
    if (!file) return dc_usage_error("run", "no graph file");
    char err[DC_ERR_LEN];
    if (backend < 0 && (backend = dc_backend_from_env(DC_BACKEND_AUTO, err, sizeof err)) < 0)
        return dc_usage_error("run", "%s", err);
    if (threads) omp_set_num_threads((int)threads);

    int status = 1;
    dc_exec *e = NULL;
    dc_graph *g = dc_parse_file(file, err, sizeof err);
    if (!g) goto fail;
    for (int k = 0; k < n_inputs; k++) {
        size_t len = (size_t)(strchr(inputs[k].name, '=') - inputs[k].name);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len < 255 ? len : 255), inputs[k].name);
        if (dc_graph_find_input(g, name) < 0) {
            snprintf(err, sizeof err, "disco run: %s has no input named '%s'", file, name);
            goto fail;
        }
    }
    if (!(e = dc_compile(g, seed, (dc_backend)backend, err, sizeof err))) goto fail;
    for (int i = 0, n = dc_graph_n_inputs(g); i < n; i++) {
        int id = dc_graph_input(g, i);
        const char *path = NULL;
        for (int k = 0; k < n_inputs; k++)
            if (strncmp(inputs[k].name, g->nodes[id].name, strlen(g->nodes[id].name)) == 0 &&
                inputs[k].name[strlen(g->nodes[id].name)] == '=')
                path = inputs[k].path;
        dc_tensor *t;
        if (path) {
            if (!(t = dc_npy_read(path, err, sizeof err))) goto fail;
        } else {
            t = dc_tensor_new(&g->nodes[id].type);
            fill_random_input(g, id, t, seed);
        }
        bool ok = dc_exec_set_input(e, g->nodes[id].name, t, err, sizeof err);
        dc_tensor_free(t);
        if (!ok) goto fail;
    }
    if (!dc_exec_run(e, err, sizeof err)) goto fail;
    if (out_dir && mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, sizeof err, "disco run: cannot create %s: %s", out_dir, strerror(errno));
        goto fail;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        char buf[32], path[4096];
        const char *name = dc_graph_output_name(g, i, buf, sizeof buf);
        if (!out_dir) {
            print_summary(name, dc_exec_output(e, i));
            continue;
        }
        snprintf(path, sizeof path, "%s/%s.npy", out_dir, name);
        if (!dc_npy_write(path, dc_exec_output(e, i), err, sizeof err)) goto fail;
        printf("wrote %s\n", path);
    }
    if (profile) dc_exec_print_profile(e, stdout);
    status = 0;
fail:
    if (status) fprintf(stderr, "%s\n", err);
    dc_exec_free(e);
    dc_graph_free(g);
    return status;
}

const dc_command dc_cmd_run = { "run", cmd_run, "execute a graph",
      "usage: disco run FILE.dcir [--input NAME=FILE.npy]... [--seed N] [--threads N] [--out DIR]\n"
      "                 [--backend auto|ref|dnnl|jit] [--profile]\n"
      "\n"
      "Lowers FILE.dcir to a program of kernels and executes it once.\n"
      "  --input NAME=FILE.npy  value of input NAME (float32/int32 .npy, C order)\n"
      "  --seed N               seed of parameter init, random ops and inputs not given (default 0);\n"
      "                         inputs not given are filled from it (f32: N(0,1); i32: integers in\n"
      "                         [0, B) with B the smallest index range they are used with, else 2)\n"
      "  --threads N            OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
      "  --out DIR              write each output as DIR/NAME.npy; without it, print a summary\n"
      "  --backend B            kernel providers (default $DISCO_BACKEND, else auto): auto = oneDNN\n"
      "                         for f32 matmul/linear/conv2d (forward, backward, fused), ref for\n"
      "                         the rest (and LLVM JIT kernels for fuse-loops groups); dnnl = the\n"
      "                         same, a oneDNN refusal is an error; ref = the reference kernels\n"
      "                         only; jit = JIT kernels for every elementwise/reduction node\n"
      "  --profile              after the outputs, print per step: node, op, provider, kernel,\n"
      "                         calls, time; then why any oneDNN node runs on ref\n"
      "Same seed, backend and thread count give bitwise-identical outputs.\n"
      "DISCO_TRACE=FILE.json writes a Chrome trace (chrome://tracing, Perfetto) of every step.\n" };
