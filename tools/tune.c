/* tune.c — `disco tune`: tunes the contractions, attentions and loop kernels of a model's
 * training step (or of a graph file) on this CPU with codegen/tune.c and keeps the choices in
 * the tuning database beside the kernel cache, which every later compile reads; --show prints
 * the database. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "models/models.h"
#include "passes/passes.h"
#include "tools/cli.h"

#define DEFAULT_BUDGET 240.0 /* seconds: a whole model tunes in under 5 minutes */

typedef struct {
    double budget;
    int threads;
    bool show, verbose;
} tune_args;

/* The graph to tune: the training step of model `what` (its forward graph made a training step
 * and put through the compiler's pipeline), or the graph in file `what` through the pipeline. */
static dc_graph *graph_of(const char *what, char *err, size_t len) {
    const dc_model *m = dc_model_find(what);
    dc_graph *g = NULL;
    if (m) {
        if (!m->train_graph) {
            snprintf(err, len, "model %s has no training graph to tune", what);
            return NULL;
        }
        dc_train_config c;
        dc_model_defaults(m, &c, NULL);
        g = m->train_graph(&c, NULL);
        if (!dc_train_graph(g, &c, NULL, err, len)) {
            dc_graph_free(g);
            return NULL;
        }
    } else if (strlen(what) > 5 && strcmp(what + strlen(what) - 5, ".dcir") == 0) {
        g = dc_parse_file(what, err, len);
        if (!g) return NULL;
    } else {
        int n;
        const dc_model *const *all = dc_models(&n);
        dc_strbuf names = { 0 };
        for (int i = 0; i < n; i++) dc_sb_printf(&names, "%s%s", i ? ", " : "", all[i]->name);
        snprintf(err, len, "'%s' is neither a model (%s) nor a .dcir file", what, names.buf);
        free(names.buf);
        return NULL;
    }
    if (!dc_run_pipeline(g, dc_pipeline(DC_BACKEND_AUTO), &(dc_pass_opts){ 0 }, err, len)) {
        dc_graph_free(g);
        return NULL;
    }
    return g;
}

static int cmd_tune(int argc, char **argv) {
    tune_args a = { .budget = DEFAULT_BUDGET };
    const char *what;
    int st = dc_cli_parse(&dc_cmd_tune, &a, argc, argv, &what);
    if (st) return st;
    if (a.threads) omp_set_num_threads(a.threads);
    if (!a.show && !what) return dc_usage_error("tune", "missing MODEL or FILE.dcir (or --show)");
    char err[DC_ERR_LEN];
    dc_tune_db *db = dc_tune_db_open(NULL, err, sizeof err);
    if (!db) return dc_run_error("tune", err);
    fputs(dc_tune_db_message(db), stderr);
    if (a.show) {
        dc_tune_db_print(db, stdout);
        dc_tune_db_free(db);
        return 0;
    }
    dc_graph *g = graph_of(what, err, sizeof err);
    if (!g) {
        dc_tune_db_free(db);
        return dc_run_error("tune", err);
    }
    dc_tune_options o = { .budget = a.budget, .progress = stderr, .log = a.verbose ? stdout : NULL };
    dc_tune_report r;
    bool ok = dc_tune_graph(g, db, &o, &r, err, sizeof err);
    if (ok && r.tuned == 0)
        printf("tune: all %d kernels (contractions, attentions, loops) of %s (%d threads) are in %s: nothing timed\n", r.kernels, what,
               omp_get_max_threads(), dc_tune_db_path(db));
    else if (ok)
        printf("tune: %d kernels (contractions, attentions, loops) of %s (%d threads), %d in the database; tuned %d in %.1f s (%lld timed runs): "
               "jit %d, dnnl %d, ref %d (%d set back to the default rule's in the program); saved %s\n", r.kernels,
               what, omp_get_max_threads(), r.cached, r.tuned, r.seconds, (long long)r.timed_runs, r.jit, r.dnnl, r.ref,
               r.reverted, dc_tune_db_path(db));
    dc_graph_free(g);
    dc_tune_db_free(db);
    return ok ? 0 : dc_run_error("tune", err);
}

static const dc_opt options[] = {
    DC_OPT_POS("--budget", "SECONDS", tune_args, budget, 86400,
               "the time the searches may take: each kernel gets an equal share of\n"
               "what is left, and past it keeps the best found so far (default 240)"),
    DC_OPT_THREADS(tune_args, threads),
    DC_OPT_FLAG("--show", tune_args, show, "print the database: per CPU, each kernel's choice and times"),
    DC_OPT_FLAG("--verbose", tune_args, verbose, "print each tuned kernel's signature, choice and times"),
    { 0 },
};

const dc_command dc_cmd_tune = {
    .name = "tune", .fn = cmd_tune, .summary = "tune the kernels of a model or graph for this CPU",
    .args = "MODEL|FILE.dcir", .arg_what = "model or graph file", .options = options,
    .about = "For each distinct contraction (matmul, linear, conv2d and their backward and fused\n"
             "forms) of MODEL's training step, or of FILE.dcir after the compiler's pipeline,\n"
             "that the tuning database has no entry for, times oneDNN, ref (small ones) and JIT\n"
             "GEMM kernels (successive halving over tiles and vector widths, then each other\n"
             "parameter in turn); for each attention computation (forward and backward), the\n"
             "flash kernel's query and key block sizes alike. A choice replaces the default\n"
             "rule's only when it is more than 3% faster alone and also faster inside the\n"
             "whole program (timed against the default rule's program, runs alternating).\n"
             "Then each loop kernel is timed in the whole program, split over the threads and\n"
             "on one, and keeps the faster (the work rule's mode unless the other wins by 3%).\n"
             "The database is tune.db in the kernel cache's directory, keyed by each kernel's\n"
             "signature (op, types, attributes, threads, oneDNN version), the CPU, its full\n"
             "feature string, the LLVM, codegen and tuner versions: an entry from another CPU\n"
             "is ignored (and said so), a second run times nothing.\n"
             "Every compile then reads the database (DISCO_TUNE=off or --no-tune: the defaults);\n"
             "nothing is timed outside `disco tune`, so runs stay bitwise reproducible.\n",
};
