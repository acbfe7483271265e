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

/* Parses argv into a; returns 0, or the usage error's exit status. */
static int parse_args(int argc, char **argv, opt_args *a) {
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = dc_option_value(argc, argv, &i, "--passes", &missing))) a->passes = v;
        else if ((v = dc_option_value(argc, argv, &i, "--print-after", &missing))) a->po.print_after = v;
        else if (missing) return dc_usage_error("opt", "option '%s' needs a value", argv[i]);
        else if (strcmp(argv[i], "--verify-each") == 0) a->po.verify_each = true;
        else if (strcmp(argv[i], "--print-after-all") == 0) a->po.print_after_all = true;
        else if (strcmp(argv[i], "--time-passes") == 0) a->po.time_passes = true;
        else if (strcmp(argv[i], "--dot") == 0) a->dot = true;
        else if (argv[i][0] == '-' && argv[i][1]) return dc_usage_error("opt", "unknown option '%s'", argv[i]);
        else if (a->file) return dc_usage_error("opt", "more than one input file ('%s')", argv[i]);
        else a->file = argv[i];
    }
    if (!a->file) return dc_usage_error("opt", "no input file");
    bool pass_flags = a->po.verify_each || a->po.print_after || a->po.print_after_all || a->po.time_passes;
    if (pass_flags && !a->passes) return dc_usage_error("opt", "--verify-each, --print-after(-all) and --time-passes need --passes");
    return 0;
}

static int cmd_opt(int argc, char **argv) {
    opt_args a = { .po = { .out = stdout } };
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
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

const dc_command dc_cmd_opt = { "opt", cmd_opt, "run passes on a graph (.dcir) and print it",
      "usage: disco opt FILE.dcir [--passes=a,b,c] [--verify-each] [--print-after=NAME]\n"
      "                 [--print-after-all] [--time-passes] [--dot]\n"
      "\n"
      "Parses FILE.dcir, verifies it, runs the passes named in --passes in order, and prints\n"
      "the result in canonical form on stdout, followed by its memory plan if it has one.\n"
      "  --passes=a,b,c      the pipeline: dce, cse, fold, simplify, fuse-contraction, plan-memory\n"
      "  --verify-each       verify the graph after every pass (names the pass that broke it)\n"
      "  --print-after=NAME  print the graph after each run of pass NAME\n"
      "  --print-after-all   print the graph after every pass\n"
      "  --time-passes       print each pass's wall time\n"
      "  --dot               print Graphviz DOT instead of the text form\n"
      "Intermediate prints and timings are on stdout, after a `// ----- ... -----` line.\n"
      "Errors read FILE:LINE:COL: error: MESSAGE (or FILE: error: MESSAGE for a pass) and\n"
      "exit with status 1; bad options exit with status 2.\n" };
