/* opt.c — `disco opt`: parses a graph, runs a pipeline of passes on it (like mlir-opt) and
 * prints the result (or its DOT), followed by its memory plan when it has one. The pipeline is
 * the user's (--passes) or the compiler's own (--pipeline, dc_pipeline of codegen/codegen.h:
 * exactly the passes `disco train`, the evaluations, the samplers and `disco run` run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "ir/ir.h"
#include "models/train.h"
#include "passes/passes.h"
#include "tools/cli.h"

typedef struct {
    const char *file, *passes, *forward_passes;
    int backend;                /* -1 until given */
    bool pipeline, dot, print_pipeline, train;
    dc_pass_opts po;
} opt_args;

/* The passes to run (NULL: none) into *passes; 0 or EXIT_USAGE. */
static int choose_passes(opt_args *a, const char **passes) {
    if (a->passes && a->pipeline) return dc_usage_error("opt", "--passes and --pipeline exclude each other");
    if (a->backend >= 0 && !a->pipeline && !a->train)
        return dc_usage_error("opt", "--backend chooses the pipeline of --pipeline or --train, which are missing");
    if (a->forward_passes && !a->train) return dc_usage_error("opt", "--forward-passes needs --train");
    if (a->train && !dc_cli_backend("opt", &a->backend, DC_BACKEND_AUTO)) return EXIT_USAGE;
    *passes = a->passes;
    if (!a->pipeline) return 0;
    if (!dc_cli_backend("opt", &a->backend, DC_BACKEND_AUTO)) return EXIT_USAGE;
    *passes = dc_pipeline((dc_backend)a->backend);
    if (!a->print_pipeline)
        fprintf(stderr, "disco opt: --pipeline --backend=%s runs %s\n", dc_backend_names[a->backend], *passes);
    return 0;
}

static int cmd_opt(int argc, char **argv) {
    opt_args a = { .backend = -1, .po = { .out = stdout } };
    const char *passes = NULL;
    int rc = dc_cli_parse(&dc_cmd_opt, &a, argc, argv, &a.file);
    if (rc || (rc = choose_passes(&a, &passes))) return rc;
    if (a.print_pipeline) {
        if (!passes) return dc_usage_error("opt", "--print-pipeline needs --passes or --pipeline");
        printf("%s\n", passes);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (!a.file) return dc_usage_error("opt", "no input file");
    bool pass_flags = a.po.verify_each || a.po.print_after || a.po.print_after_all || a.po.time_passes;
    if (pass_flags && !passes)
        return dc_usage_error("opt", "--verify-each, --print-after(-all) and --time-passes need --passes or --pipeline");
    char err[DC_ERR_LEN];
    dc_graph *g = dc_parse_file(a.file, err, sizeof err);
    if (!g) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* the hyperparameters only set constants of the update; these are disco train's usual ones */
    dc_train_config tc = { .b1 = 0.9f, .b2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f, .clip_norm = 1.0f,
                           .ema_decay = 0.999f, .backend = (dc_backend)a.backend };
    if (a.train && !dc_train_graph(g, &tc, a.forward_passes, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", a.file, err);
        dc_graph_free(g);
        return 1;
    }
    if (passes && !dc_run_pipeline(g, passes, &a.po, err, sizeof err)) {
        fprintf(stderr, "%s: error: %s\n", a.file, err);
        dc_graph_free(g);
        return 1;
    }
    char *text = a.dot ? dc_print_dot(g) : dc_print(g);
    char *plan = dc_print_plan(g);
    fputs(text, stdout);
    if (plan && !a.dot) fputs(plan, stdout);
    free(text);
    free(plan);
    dc_graph_free(g);
    return fflush(stdout) == 0 ? 0 : 1;
}

static const dc_opt options[] = {
    DC_OPT_STR("--passes", "a,b,c", opt_args, passes,
               "the pipeline: dce, cse, fold, simplify, fuse-attention, fuse-attention-all,\n"
               "fuse-contraction, fuse-loops, schedule-results, plan-memory"),
    DC_OPT_FLAG("--pipeline", opt_args, pipeline,
                "instead of --passes, the compiler's pipeline for --backend (what `disco train`,\n"
                "the evaluations, the samplers and `disco run` run on their graphs); its passes\n"
                "are named on stderr"),
    DC_OPT_FLAG("--train", opt_args, train,
                "FILE is a model's forward graph with an f32[] output `loss`: first make it the\n"
                "training step `disco train` compiles (the forward passes of --backend, such as\n"
                "fuse-attention, then gradients w.r.t. every param, clipping, AdamW, EMA)"),
    DC_OPT_STR("--forward-passes", "a,b,c", opt_args, forward_passes,
               "with --train, the passes run on the forward graph before it is differentiated,\n"
               "instead of the backend's (e.g. fuse-attention-all,dce: every attention fused)"),
    DC_OPT_ENUM("--backend", opt_args, backend, dc_backend_names,
                "the backend whose --pipeline (and --train) is meant (default $DISCO_BACKEND,\n"
                "else auto)"),
    DC_OPT_FLAG("--print-pipeline", opt_args, print_pipeline,
                "print the passes of --passes or --pipeline (one comma-separated line) and\n"
                "stop: no FILE needed"),
    DC_OPT_FLAG("--verify-each", opt_args, po.verify_each, "verify the graph after every pass (names the pass that broke it)"),
    DC_OPT_STR("--print-after", "NAME", opt_args, po.print_after, "print the graph after each run of pass NAME"),
    DC_OPT_FLAG("--print-after-all", opt_args, po.print_after_all, "print the graph after every pass"),
    DC_OPT_FLAG("--time-passes", opt_args, po.time_passes, "print each pass's wall time"),
    DC_OPT_FLAG("--dot", opt_args, dot, "print Graphviz DOT instead of the text form"),
    { 0 }
};

const dc_command dc_cmd_opt = {
    .name = "opt", .fn = cmd_opt, .summary = "run passes on a graph (.dcir) and print it",
    .args = "FILE.dcir", .arg_what = "input file", .options = options,
    .about = "Parses FILE.dcir, verifies it, runs the passes named in --passes (or the compiler's\n"
             "--pipeline) in order, and prints the result in canonical form on stdout, followed by\n"
             "its memory plan if it has one.\n",
    .notes = "Intermediate prints and timings are on stdout, after a `// ----- ... -----` line.\n"
             "Errors read FILE:LINE:COL: error: MESSAGE (or FILE: error: MESSAGE for a pass) and\n"
             "exit with status 1; bad options exit with status 2.\n",
};
