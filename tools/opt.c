/* opt.c — `disco opt`: parses a graph, verifies it and prints it (or its DOT). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "tools/cli.h"

static int cmd_opt(int argc, char **argv) {
    const char *file = NULL;
    bool dot = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dot") == 0) dot = true;
        else if (argv[i][0] == '-' && argv[i][1]) return dc_usage_error("opt", "unknown option '%s'", argv[i]);
        else if (file) return dc_usage_error("opt", "more than one input file ('%s')", argv[i]);
        else file = argv[i];
    }
    if (!file) return dc_usage_error("opt", "no input file");
    char err[DC_ERR_LEN];
    dc_graph *g = dc_parse_file(file, err, sizeof err);
    if (!g) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char *text = dot ? dc_print_dot(g) : dc_print(g);
    fputs(text, stdout);
    free(text);
    dc_graph_free(g);
    return fflush(stdout) == 0 ? 0 : 1;
}

const dc_command dc_cmd_opt = { "opt", cmd_opt, "parse, verify and print a graph (.dcir)",
      "usage: disco opt FILE.dcir [--dot]\n"
      "\n"
      "Parses FILE.dcir, verifies it and prints it in canonical form on stdout.\n"
      "  --dot    print Graphviz DOT instead\n"
      "Errors read FILE:LINE:COL: error: MESSAGE and exit with status 1.\n" };
