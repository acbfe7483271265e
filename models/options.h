/* options.h — one row of a command-line option table: the option's name, the kind of value it
 * takes, where the value goes and its help text. tools/cli.c parses argv with such tables and
 * prints every `disco` command's --help page from the same tables; a model of the registry
 * (models.h) contributes its own rows to `disco train`, which is why the row type lives here
 * and not in tools/.
 *
 * A row writes into a struct at its offset: DC_OPT_INT("--steps", "N", my_args, steps, 1, 100,
 * "...") parses `--steps 7` or `--steps=7` into ((my_args *)base)->steps. The macros check the
 * field's type at compile time. A table ends with a row whose name is NULL ({ 0 }). */
#ifndef DC_MODELS_OPTIONS_H
#define DC_MODELS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    DC_OPT_FLAG,    /* no value; sets a bool */
    DC_OPT_STR,     /* const char *: the value as given */
    DC_OPT_INT,     /* int or int64_t in [min, max] */
    DC_OPT_U64,     /* uint64_t: any non-negative integer */
    DC_OPT_NUM,     /* float or double: finite, in [lo, hi]; lo excluded when open_lo */
    DC_OPT_ENUM,    /* int or enum: the index of the value in choices */
    DC_OPT_FN,      /* parse(value, field) decides, and may take the option more than once */
} dc_opt_kind;

typedef struct {
    const char *name;               /* "--steps"; NULL ends a table */
    dc_opt_kind kind;
    size_t at, size;                /* offset and size of the field written */
    const char *arg;                /* the value's name in the help ("N", "DIR"); ENUM: NULL
                                     * shows the choices (a|b|c) */
    const char *help;               /* one or more lines, '\n' between them */
    bool required;                  /* a usage error when not given */
    int64_t min, max;               /* INT */
    double lo, hi;                  /* NUM */
    bool open_lo;                   /* NUM: lo itself is refused ("a positive number") */
    const char *const *choices;     /* ENUM: the values, NULL-terminated */
    /* FN: false with the whole message in err ("--input takes NAME=FILE.npy, got 'x'") */
    bool (*parse)(const char *value, void *field, char *err, size_t len);
} dc_opt;

/* .at and .size of field F of struct T, a compile error unless OK holds */
#define DC_OPT_AT_(T, F, OK) .at = offsetof(T, F) + 0 * sizeof(char[(OK) ? 1 : -1]), .size = sizeof(((T *)0)->F)
#define DC_OPT_IS_(T, F, TYPE) __builtin_types_compatible_p(__typeof__(((T *)0)->F), TYPE)

#define DC_OPT_FLAG(NAME, T, F, HELP) \
    { .name = NAME, .kind = DC_OPT_FLAG, DC_OPT_AT_(T, F, DC_OPT_IS_(T, F, bool)), .help = HELP }
#define DC_OPT_STR(NAME, ARG, T, F, HELP) \
    { .name = NAME, .kind = DC_OPT_STR, DC_OPT_AT_(T, F, DC_OPT_IS_(T, F, const char *)), .arg = ARG, .help = HELP }
/* a string option that must be given */
#define DC_OPT_STR_REQUIRED(NAME, ARG, T, F, HELP)                                                       \
    { .name = NAME, .kind = DC_OPT_STR, DC_OPT_AT_(T, F, DC_OPT_IS_(T, F, const char *)), .arg = ARG, .help = HELP, \
      .required = true }
#define DC_OPT_INT(NAME, ARG, T, F, MIN, MAX, HELP)                                                     \
    { .name = NAME, .kind = DC_OPT_INT, DC_OPT_AT_(T, F, DC_OPT_IS_(T, F, int) || DC_OPT_IS_(T, F, int64_t)), \
      .arg = ARG, .help = HELP, .min = MIN, .max = MAX }
#define DC_OPT_U64(NAME, ARG, T, F, HELP) \
    { .name = NAME, .kind = DC_OPT_U64, DC_OPT_AT_(T, F, DC_OPT_IS_(T, F, uint64_t)), .arg = ARG, .help = HELP }
/* a number in [LO, HI] */
#define DC_OPT_NUM(NAME, ARG, T, F, LO, HI, HELP)                                                        \
    { .name = NAME, .kind = DC_OPT_NUM, DC_OPT_AT_(T, F, DC_OPT_IS_(T, F, float) || DC_OPT_IS_(T, F, double)), \
      .arg = ARG, .help = HELP, .lo = LO, .hi = HI }
/* a number in (0, HI] */
#define DC_OPT_POS(NAME, ARG, T, F, HI, HELP)                                                            \
    { .name = NAME, .kind = DC_OPT_NUM, DC_OPT_AT_(T, F, DC_OPT_IS_(T, F, float) || DC_OPT_IS_(T, F, double)), \
      .arg = ARG, .help = HELP, .lo = 0, .hi = HI, .open_lo = true }
#define DC_OPT_ENUM(NAME, T, F, CHOICES, HELP) \
    { .name = NAME, .kind = DC_OPT_ENUM, DC_OPT_AT_(T, F, sizeof(((T *)0)->F) == sizeof(int)), .help = HELP, .choices = CHOICES }
#define DC_OPT_FN(NAME, ARG, T, F, PARSE, HELP) \
    { .name = NAME, .kind = DC_OPT_FN, DC_OPT_AT_(T, F, 1), .arg = ARG, .help = HELP, .parse = PARSE }

#endif
