/* disco.c — the `disco` command line: dispatches to the subcommands (tools/opt.c, tools/run.c)
 * and holds their shared option parsing. Usage errors exit 2, input and run errors exit 1,
 * both with a message on stderr. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

static const dc_command *const commands[] = { &dc_cmd_opt, &dc_cmd_run, &dc_cmd_train, &dc_cmd_cache,
                                                &dc_cmd_sample, &dc_cmd_eval, &dc_cmd_demo };
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

int dc_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "disco %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'disco %s --help')\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

bool dc_parse_u64(const char *s, uint64_t max, uint64_t *out) {
    if (!*s) return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

const char *dc_option_value(int argc, char **argv, int *i, const char *opt, bool *missing) {
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != 0) return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static bool is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

static const dc_command *find_command(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

static void print_help(FILE *f) {
    fprintf(f, "disco — a dataflow-graph compiler and runtime for diffusion models\n\n"
               "usage: disco COMMAND [ARGS]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-6s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\n'disco COMMAND --help' describes one command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        const dc_command *c = argc > 2 ? find_command(argv[2]) : NULL;
        if (c) fputs(c->usage, stdout);
        else print_help(stdout);
        return 0;
    }
    const dc_command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "disco: unknown command '%s'\n", argv[1]);
        print_help(stderr);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++)
        if (is_help(argv[i])) {
            fputs(c->usage, stdout);
            return 0;
        }
    return c->fn(argc - 1, argv + 1);
}
