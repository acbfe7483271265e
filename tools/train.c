/* train.c — `disco train MODEL`: looks the model up in the registry (models/models.h), applies
 * the common options and the model's own option rows to its defaults and runs its train
 * function. The --help page lists every model with its defaults and its own options. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"
#include "tools/cli.h"

typedef struct {
    dc_train_config c;
    const char *out, *resume, *data;
    int backend;
    bool no_tune;
} train_args;

static const dc_opt common[] = {
    DC_OPT_INT("--steps", "N", train_args, c.steps, 1, INT64_MAX, "optimizer steps (warmup is cut to N/10 if longer)"),
    DC_OPT_INT("--batch", "B", train_args, c.batch, 1, 1 << 20, "examples per step"),
    DC_OPT_POS("--lr", "X", train_args, c.lr, DBL_MAX, "peak learning rate"),
    DC_OPT_U64("--seed", "S", train_args, c.seed, "seed of param init, data order and random ops (default 0)"),
    DC_OPT_THREADS(train_args, c.threads),
    DC_OPT_STR("--out", "DIR", train_args, out, "where MODEL.ckpt is written, created if missing (default runs)"),
    DC_OPT_STR("--resume", "CKPT", train_args, resume, "continue from a checkpoint of the same config"),
    DC_OPT_INT("--ckpt-every", "N", train_args, c.ckpt_every, 0, INT64_MAX, "also save every N steps (0: only at the end)"),
    DC_OPT_STR("--data", "DIR", train_args, data,
               "dataset directory (default $DISCO_FMNIST_DIR or\n/usr/share/datasets/fashion-mnist)"),
    DC_OPT_BACKEND(train_args, backend),
    DC_OPT_NO_TUNE(train_args, no_tune),
    { 0 }
};

/* "a, b, c": the registered model names */
static void model_names(char *buf, size_t len) {
    int n;
    const dc_model *const *m = dc_models(&n);
    buf[0] = 0;
    for (int i = 0; i < n; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? ", " : "", m[i]->name);
}

/* The model named by the first argument of argv (options before it are the common ones). */
static int find_model(int argc, char **argv, const dc_model **m) {
    train_args scratch = { 0 };
    dc_opt_set probe = { common, &scratch, 0 };
    const char *name;
    int i = 1, st = dc_cli_next("train", &probe, 1, argc, argv, &i, &name);
    if (st) return st;
    char known[1024];
    model_names(known, sizeof known);
    if (!name) return dc_usage_error("train", "no model given (known models: %s)", known);
    if (!(*m = dc_model_find(name))) return dc_usage_error("train", "unknown model '%s' (known models: %s)", name, known);
    return 0;
}

/* The options of argv into a and own (the model's own options); 0 or EXIT_USAGE. */
static int parse(const dc_model *m, int argc, char **argv, train_args *a, void *own) {
    dc_opt_set sets[2] = { { common, a, 0 }, { m->options, own, 0 } };
    const char *arg, *model = NULL;
    for (int i = 1, st;;) {
        if ((st = dc_cli_next("train", sets, 2, argc, argv, &i, &arg))) return st;
        if (!arg) break;
        if (model) return dc_usage_error("train", "more than one model ('%s' and '%s')", model, arg);
        model = arg;
    }
    for (const char *const *w = m->without; w && *w; w++)
        if (dc_opt_given(&sets[0], *w)) return dc_usage_error("train", "the model %s takes no %s", m->name, *w);
    if (dc_opt_given(&sets[0], "--steps") && a->c.warmup > a->c.steps / 10) a->c.warmup = a->c.steps / 10;
    if (!dc_cli_backend("train", &a->backend, a->c.backend)) return EXIT_USAGE;
    a->c.backend = (dc_backend)a->backend;
    dc_cli_no_tune(a->no_tune);
    return dc_cli_check_required("train", sets, 2);
}

static int cmd_train(int argc, char **argv) {
    const dc_model *m;
    int st = find_model(argc, argv, &m);
    if (st) return st;
    train_args a = { .out = "runs", .backend = -1 };
    void *own = m->options_size ? malloc(m->options_size) : NULL;
    if (m->options_size && !own) abort(); /* out of memory */
    dc_model_defaults(m, &a.c, own);
    st = parse(m, argc, argv, &a, own);
    if (!st) {
        a.c.progress = stdout;
        dc_train_request r = { .out_dir = a.out, .resume = a.resume, .data_dir = a.data, .options = own, .out = stdout };
        char err[DC_ERR_LEN];
        if (!m->train(&a.c, &r, err, sizeof err)) {
            fflush(stdout);
            fprintf(stderr, "disco train: %s\n", err);
            st = 1;
        }
    }
    free(own);
    return st;
}

/* Every model: its summary, defaults and own options. */
static void models_help(FILE *f) {
    int n;
    const dc_model *const *ms = dc_models(&n);
    fprintf(f, "\nModels:\n");
    for (int i = 0; i < n; i++) {
        const dc_model *m = ms[i];
        dc_train_config c;
        dc_model_defaults(m, &c, NULL);
        fprintf(f, "  %s\n    ", m->name);
        dc_cli_print_indented(f, m->summary, 4);
        fprintf(f, "    defaults: %lld steps of batch %lld, lr %g", (long long)c.steps, (long long)c.batch, c.lr);
        for (const char *const *w = m->without; w && *w; w++) fprintf(f, "%s%s", w == m->without ? "; no " : ", ", *w);
        fprintf(f, "\n");
        if (!m->options) continue;
        fprintf(f, "    its own options:\n");
        dc_cli_print_rows(f, m->options, 4);
    }
}

const dc_command dc_cmd_train = {
    .name = "train", .fn = cmd_train, .summary = "train a model and report its test metric", .args = "MODEL",
    .arg_what = "model", .options = common,
    .about = "Trains MODEL with one compiled training graph (forward, loss, gradients, clipping by\n"
             "global norm, AdamW, EMA of the params) and reports its test metric. The options\n"
             "override the model's defaults (listed with the models); a model may add its own.\n",
    .notes = "Same seed, config, backend and thread count give bitwise-identical params; a resumed run\n"
             "continues bitwise-identically to an uninterrupted one.\n"
             "DISCO_TRACE=FILE.json writes a Chrome trace (chrome://tracing, Perfetto) of every step.\n",
    .more_help = models_help,
};
