/* cli.h — what the `disco` subcommands share: the command table entry, usage errors, and the
 * one option parser (tools/cli.c). A command declares its options as a table of rows
 * (models/options.h); dc_cli_parse reads argv with that table and dc_cli_help prints the
 * command's --help page from the same table, so the two cannot disagree. Each command lives in
 * its own file (tools/opt.c, tools/run.c, ...). */
#ifndef DC_CLI_H
#define DC_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "codegen/codegen.h"
#include "models/options.h"

#define EXIT_USAGE 2

typedef struct dc_command {
    const char *name;
    int (*fn)(int argc, char **argv);   /* argv[0] is the command name */
    const char *summary;                /* one line, in `disco --help` */
    const char *args;                   /* the usage line's arguments before the options */
    const char *arg_what;               /* what that argument is ("input file"); NULL: none */
    const dc_opt *options;              /* the option table */
    const char *about;                  /* what the command does: between usage and options */
    const char *notes;                  /* after the options (may be NULL) */
    void (*more_help)(FILE *f);         /* prints more after the options (may be NULL) */
    /* the same command for other models, NULL-terminated (NULL: none): `disco NAME MODEL ...`
     * runs the variant whose .args is MODEL */
    const struct dc_command *const *variants;
} dc_command;

extern const dc_command dc_cmd_opt, dc_cmd_run, dc_cmd_train, dc_cmd_cache, dc_cmd_tune;
extern const dc_command dc_cmd_sample, dc_cmd_eval;   /* tools/toy.c */
extern const dc_command dc_cmd_sample_images, dc_cmd_eval_images;   /* tools/images.c */
extern const dc_command dc_cmd_demo;                  /* tools/demo.c */

/* Prints "disco CMD: MESSAGE" and a pointer to --help; returns EXIT_USAGE. */
int dc_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "disco CMD: ERR" (after what stdout holds); returns 1, the exit status of a run error. */
int dc_run_error(const char *cmd, const char *err);

/* One option table and the struct its rows write into; given has bit r set once row r was
 * parsed (so a table holds at most 64 rows). */
typedef struct {
    const dc_opt *rows;
    void *base;
    uint64_t given;
} dc_opt_set;

/* Parses the options at argv[*i..argc) by the rows of sets (searched in order) up to the first
 * argument that is no option: *arg receives it and *i moves past it; at the end *arg is NULL.
 * `--name=V` and `--name V` both give a value. 0, or EXIT_USAGE after a message naming the
 * option (unknown, value missing or malformed). */
int dc_cli_next(const char *cmd, dc_opt_set *sets, int n_sets, int argc, char **argv, int *i, const char **arg);
/* EXIT_USAGE after a message when a required row of sets was not given; else 0. */
int dc_cli_check_required(const char *cmd, const dc_opt_set *sets, int n_sets);
/* The whole of argv[1..argc) by c->options into base: the one argument into *arg (NULL when
 * absent; arg NULL: the command takes none). 0, or EXIT_USAGE after a message. */
int dc_cli_parse(const dc_command *c, void *base, int argc, char **argv, const char **arg);
/* Whether the row named name was parsed. */
bool dc_opt_given(const dc_opt_set *s, const char *name);

/* The --help page of c, generated from its table. */
void dc_cli_help(const dc_command *c, FILE *f);
/* text, every line after the first indented by indent spaces, and a newline */
void dc_cli_print_indented(FILE *f, const char *text, int indent);
/* The rows of a table as help lines: name and value, then the help, indented by indent. */
void dc_cli_print_rows(FILE *f, const dc_opt *rows, int indent);

/* The names of the backends, in dc_backend order, for ENUM rows. */
extern const char *const dc_backend_names[];
/* The backend of an ENUM --backend row: *backend as parsed, or when it is -1 (not given)
 * $DISCO_BACKEND, else fallback. false after a usage message. */
bool dc_cli_backend(const char *cmd, int *backend, dc_backend fallback);

/* Rows every command that runs a graph shares (int threads: 0 leaves OpenMP's default;
 * int backend: -1 until given) */
#define DC_OPT_THREADS(T, F) \
    DC_OPT_INT("--threads", "T", T, F, 1, 1024, "OpenMP threads (default: OMP_NUM_THREADS or all cores)")
#define DC_OPT_BACKEND(T, F)                                                                            \
    DC_OPT_ENUM("--backend", T, F, dc_backend_names,                                                      \
                "kernel providers (default $DISCO_BACKEND, else auto): auto = each f32\n"                 \
                "contraction on the provider `disco tune` chose, else oneDNN (a JIT GEMM for\n"           \
                "batched matmuls), LLVM JIT kernels for the fuse-loops groups and attention,\n"           \
                "ref for the rest; dnnl = oneDNN for every contraction (a refusal is an error),\n"        \
                "ref for the rest; ref = the reference kernels only; jit = JIT kernels for\n"             \
                "every elementwise/reduction node and JIT GEMMs for every contraction")
/* --no-tune (bool): the tuning database is not read (dc_cli_no_tune) */
#define DC_OPT_NO_TUNE(T, F)                                                                            \
    DC_OPT_FLAG("--no-tune", T, F, "ignore the tuning database: default providers (as DISCO_TUNE=off)")
/* Applies a parsed --no-tune: sets DISCO_TUNE=off for this process's compiles. */
void dc_cli_no_tune(bool no_tune);

#endif
