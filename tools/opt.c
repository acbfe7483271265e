/* opt.c — `disco opt`: parses a graph, runs a pipeline of passes on it (like mlir-opt) and
 * prints the result (or its DOT), followed by its memory plan when it has one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "passes/passes.h"
#include "tools/cli.h"

typedef struct {
    const char *file, *passes;
    bool dot;
    dc_pass_opts po;
} opt_args;

static int cmd_opt(int argc, char **argv) {
    opt_args a = { .po = { .out = stdout } };
    int rc = dc_cli_parse(&dc_cmd_opt, &a, argc, argv, &a.file);
    if (rc) return rc;
    if (!a.file) return dc_usage_error("opt", "no input file");
    bool pass_flags = a.po.verify_each || a.po.print_after || a.po.print_after_all || a.po.time_passes;
    if (pass_flags && !a.passes) return dc_usage_error("opt", "--verify-each, --print-after(-all) and --time-passes need --passes");
    char err[DC_ERR_LEN];
    dc_graph *g = dc_parse_file(a.file, err, sizeof err);
    if (!g) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (a.passes && !dc_run_pipeline(g, a.passes, &a.po, err, sizeof err)) {
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
               "the pipeline: dce, cse, fold, simplify, fuse-contraction, fuse-loops, plan-memory"),
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
    .about = "Parses FILE.dcir, verifies it, runs the passes named in --passes in order, and prints\n"
             "the result in canonical form on stdout, followed by its memory plan if it has one.\n",
    .notes = "Intermediate prints and timings are on stdout, after a `// ----- ... -----` line.\n"
             "Errors read FILE:LINE:COL: error: MESSAGE (or FILE: error: MESSAGE for a pass) and\n"
             "exit with status 1; bad options exit with status 2.\n",
};
