/* cli.c — the one option parser of the `disco` command line and the --help pages it generates
 * from the same option tables (cli.h, models/options.h). Error messages name the option as the
 * user typed it: "unknown option '--bogus'", "option '--seed' needs a value", "--threads takes
 * an integer from 1 to 1024, got '0'". */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

#define HELP_WIDTH 100   /* usage lines wrap before this column */
#define NAME_COLUMN 24   /* the widest "--name ARG" before the help moves to its own line */

const char *const dc_backend_names[] = { "auto", "ref", "dnnl", "jit", NULL };

int dc_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "disco %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'disco %s --help')\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

int dc_run_error(const char *cmd, const char *err) {
    fflush(stdout);
    fprintf(stderr, "disco %s: %s\n", cmd, err);
    return 1;
}

/* A non-negative decimal integer <= max; false otherwise. */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out) {
    if (!*s) return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        unsigned d = (unsigned)(*s - '0');
        if (d > max || v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* "a, b or c" of a choice list into buf */
static void choice_list(const char *const *c, char *buf, size_t len) {
    buf[0] = 0;
    for (int k = 0; c[k]; k++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", k == 0 ? "" : c[k + 1] ? ", " : " or ", c[k]);
}

/* What row r accepts, for its error message: "an integer from 1 to 1024" */
static void takes(const dc_opt *r, char *buf, size_t len) {
    switch (r->kind) {
    case DC_OPT_INT:
        if (r->max == INT64_MAX && r->min <= 1)
            snprintf(buf, len, "a %s integer", r->min == 1 ? "positive" : "non-negative");
        else snprintf(buf, len, "an integer from %lld to %lld", (long long)r->min, (long long)r->max);
        break;
    case DC_OPT_U64: snprintf(buf, len, "a non-negative integer"); break;
    case DC_OPT_NUM:
        snprintf(buf, len, "a %snumber", r->lo != 0 ? "" : r->open_lo ? "positive " : "non-negative ");
        break;
    case DC_OPT_ENUM: choice_list(r->choices, buf, len); break;
    default: snprintf(buf, len, "%s", r->arg ? r->arg : "a value"); break;
    }
}

/* Writes the value v of row r into its field; false after a usage message. */
static bool set_value(const char *cmd, const dc_opt *r, void *base, const char *v) {
    char *field = (char *)base + r->at, *end;
    char what[256], err[1024];
    switch (r->kind) {
    case DC_OPT_FLAG: *(bool *)field = true; return true;
    case DC_OPT_STR: *(const char **)field = v; return true;
    case DC_OPT_INT: {
        uint64_t u;
        if (!parse_u64(v, (uint64_t)r->max, &u) || (int64_t)u < r->min) break;
        if (r->size == sizeof(int64_t)) *(int64_t *)field = (int64_t)u;
        else *(int *)field = (int)u;
        return true;
    }
    case DC_OPT_U64:
        if (!parse_u64(v, UINT64_MAX, (uint64_t *)field)) break;
        return true;
    case DC_OPT_NUM: {
        double d = strtod(v, &end);
        if (!*v || *end || !isfinite(d) || d < r->lo || d > r->hi || (r->open_lo && d == r->lo)) break;
        if (r->size == sizeof(double)) *(double *)field = d;
        else *(float *)field = (float)d;
        return true;
    }
    case DC_OPT_ENUM:
        for (int k = 0; r->choices[k]; k++)
            if (strcmp(v, r->choices[k]) == 0) {
                *(int *)field = k;
                return true;
            }
        break;
    case DC_OPT_FN:
        if (r->parse(v, field, err, sizeof err)) return true;
        dc_usage_error(cmd, "%s", err);
        return false;
    }
    takes(r, what, sizeof what);
    dc_usage_error(cmd, "%s takes %s, got '%s'", r->name, what, v);
    return false;
}

/* The row of sets that argument a names ("--name" or "--name=..."); NULL if none. */
static const dc_opt *find_row(dc_opt_set *sets, int n_sets, const char *a, dc_opt_set **set) {
    for (int s = 0; s < n_sets; s++)
        for (const dc_opt *r = sets[s].rows; r && r->name; r++) {
            size_t n = strlen(r->name);
            if (strncmp(a, r->name, n) == 0 && (a[n] == 0 || a[n] == '=')) {
                *set = &sets[s];
                return r;
            }
        }
    return NULL;
}

int dc_cli_next(const char *cmd, dc_opt_set *sets, int n_sets, int argc, char **argv, int *i, const char **arg) {
    for (; *i < argc; ++*i) {
        const char *a = argv[*i];
        if (a[0] != '-' || a[1] == 0) {
            *arg = a;
            ++*i;
            return 0;
        }
        dc_opt_set *set;
        const dc_opt *r = find_row(sets, n_sets, a, &set);
        if (!r) return dc_usage_error(cmd, "unknown option '%s'", a);
        const char *eq = a + strlen(r->name), *v = NULL;
        if (r->kind == DC_OPT_FLAG && *eq) return dc_usage_error(cmd, "option '%s' takes no value", r->name);
        if (*eq) v = eq + 1;
        else if (r->kind != DC_OPT_FLAG) {
            if (*i + 1 >= argc) return dc_usage_error(cmd, "option '%s' needs a value", a);
            v = argv[++*i];
        }
        if (!set_value(cmd, r, set->base, v)) return EXIT_USAGE;
        set->given |= 1ull << (r - set->rows);
    }
    *arg = NULL;
    return 0;
}

int dc_cli_check_required(const char *cmd, const dc_opt_set *sets, int n_sets) {
    for (int s = 0; s < n_sets; s++)
        for (const dc_opt *r = sets[s].rows; r && r->name; r++)
            if (r->required && !(sets[s].given >> (r - sets[s].rows) & 1))
                return dc_usage_error(cmd, "%s %s is required", r->name, r->arg);
    return 0;
}

int dc_cli_parse(const dc_command *c, void *base, int argc, char **argv, const char **arg) {
    dc_opt_set set = { c->options, base, 0 };
    const char *first = NULL, *a;
    for (int i = 1, st;;) {
        if ((st = dc_cli_next(c->name, &set, 1, argc, argv, &i, &a))) return st;
        if (!a) break;
        if (!arg || (first && !c->arg_what)) return dc_usage_error(c->name, "unexpected argument '%s'", a);
        if (first) return dc_usage_error(c->name, "more than one %s ('%s' and '%s')", c->arg_what, first, a);
        first = a;
    }
    if (arg) *arg = first;
    return dc_cli_check_required(c->name, &set, 1);
}

bool dc_opt_given(const dc_opt_set *s, const char *name) {
    for (const dc_opt *r = s->rows; r && r->name; r++)
        if (strcmp(r->name, name) == 0) return s->given >> (r - s->rows) & 1;
    return false;
}

bool dc_cli_backend(const char *cmd, int *backend, dc_backend fallback) {
    char err[DC_ERR_LEN];
    if (*backend < 0 && (*backend = dc_backend_from_env(fallback, err, sizeof err)) < 0) {
        dc_usage_error(cmd, "%s", err);
        return false;
    }
    return true;
}

void dc_cli_no_tune(bool no_tune) {
    if (no_tune) setenv("DISCO_TUNE", "off", 1);
}

/* ---- help ----------------------------------------------------------------------------- */

/* "--name ARG" of row r into buf */
static void row_syntax(const dc_opt *r, char *buf, size_t len) {
    char choices[128] = "";
    if (r->kind == DC_OPT_ENUM && !r->arg)
        for (int k = 0; r->choices[k]; k++)
            snprintf(choices + strlen(choices), sizeof choices - strlen(choices), "%s%s", k ? "|" : "", r->choices[k]);
    const char *arg = r->kind == DC_OPT_FLAG ? NULL : r->arg ? r->arg : choices;
    snprintf(buf, len, "%s%s%s", r->name, arg ? " " : "", arg ? arg : "");
}

void dc_cli_print_indented(FILE *f, const char *text, int indent) {
    for (const char *p = text; *p; p++) {
        fputc(*p, f);
        if (*p == '\n' && p[1]) fprintf(f, "%*s", indent, "");
    }
    fputc('\n', f);
}

void dc_cli_print_rows(FILE *f, const dc_opt *rows, int indent) {
    int width = 0;
    char syn[160];
    for (const dc_opt *r = rows; r && r->name; r++) {
        row_syntax(r, syn, sizeof syn);
        int n = (int)strlen(syn);
        if (n <= NAME_COLUMN && n > width) width = n;
    }
    for (const dc_opt *r = rows; r && r->name; r++) {
        row_syntax(r, syn, sizeof syn);
        if ((int)strlen(syn) > width) fprintf(f, "%*s%s\n%*s", indent, "", syn, indent + width + 2, "");
        else fprintf(f, "%*s%-*s  ", indent, "", width, syn);
        dc_cli_print_indented(f, r->help, indent + width + 2);
    }
}

void dc_cli_help(const dc_command *c, FILE *f) {
    char head[128], syn[160];
    int n = snprintf(head, sizeof head, "usage: disco %s%s%s", c->name, c->args ? " " : "", c->args ? c->args : "");
    fputs(head, f);
    int col = n, indent = (int)strlen("usage: disco ") + (int)strlen(c->name) + 1;
    for (const dc_opt *r = c->options; r && r->name; r++) {
        row_syntax(r, syn, sizeof syn);
        int w = (int)strlen(syn) + (r->required ? 1 : 3);
        if (col + w > HELP_WIDTH) {
            fprintf(f, "\n%*s", indent - 1, "");
            col = indent - 1;
        }
        fprintf(f, r->required ? " %s" : " [%s]", syn);
        col += w;
    }
    fprintf(f, "\n\n%s", c->about);
    if (c->options && c->options->name) {
        fprintf(f, "\nOptions:\n");
        dc_cli_print_rows(f, c->options, 2);
    }
    if (c->more_help) c->more_help(f);
    if (c->notes) fputs(c->notes, f);
}
