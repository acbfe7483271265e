/* cli.h — what the `disco` subcommands share: the command table entry, usage errors and
 * option parsing. Each command lives in its own file (tools/opt.c, tools/run.c, ...). */
#ifndef DC_CLI_H
#define DC_CLI_H

#include <stdbool.h>
#include <stdint.h>

#define EXIT_USAGE 2

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;
    const char *usage;
} dc_command;

extern const dc_command dc_cmd_opt, dc_cmd_run, dc_cmd_train;
extern const dc_command dc_cmd_cache;
extern const dc_command dc_cmd_sample, dc_cmd_eval;   /* tools/toy.c */
extern const dc_command dc_cmd_demo;                  /* tools/demo.c */
/* `disco train toy ...` (argv[0] "train", argv[1] "toy"): the toy's own options (tools/toy.c) */
int dc_toy_train_main(int argc, char **argv);

/* Prints "disco CMD: MESSAGE" and a pointer to --help; returns EXIT_USAGE. */
int dc_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A non-negative decimal integer <= max; false otherwise. */
bool dc_parse_u64(const char *s, uint64_t max, uint64_t *out);
/* The value of option `opt` given as "--opt=V" or "--opt V" at argv[*i] (advancing *i); NULL if
 * argv[*i] is not that option, or if its value is missing (then *missing is set). */
const char *dc_option_value(int argc, char **argv, int *i, const char *opt, bool *missing);

#endif
