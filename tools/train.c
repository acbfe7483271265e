/* train.c — `disco train MODEL`: looks the model up in the registry (models/models.h), applies
 * the command-line overrides to its default training config and runs its train function. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"
#include "tools/cli.h"

/* "a, b, c": the registered model names */
static void model_names(char *buf, size_t len) {
    int n;
    const dc_model *const *m = dc_models(&n);
    buf[0] = 0;
    for (int i = 0; i < n; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? ", " : "", m[i]->name);
}

static bool parse_positive(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v) || !(v > 0)) return false;
    *out = v;
    return true;
}

static int cmd_train(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "toy") == 0) return dc_toy_train_main(argc, argv);
    const char *model = NULL;
    const char *opt[10] = { 0 };  /* values of the options below, by index */
    static const char *const names[10] = { "--steps", "--batch", "--lr", "--seed", "--threads",
                                           "--out", "--resume", "--ckpt-every", "--data", "--backend" };
    for (int i = 1; i < argc; i++) {
        bool missing = false, matched = false;
        for (int k = 0; k < 10 && !matched && !missing; k++) {
            const char *v = dc_option_value(argc, argv, &i, names[k], &missing);
            if (v) opt[k] = v, matched = true;
        }
        if (missing) return dc_usage_error("train", "option '%s' needs a value", argv[i]);
        if (matched) continue;
        if (argv[i][0] == '-' && argv[i][1]) return dc_usage_error("train", "unknown option '%s'", argv[i]);
        if (model) return dc_usage_error("train", "more than one model ('%s' and '%s')", model, argv[i]);
        model = argv[i];
    }
    char known[1024];
    model_names(known, sizeof known);
    if (!model) return dc_usage_error("train", "no model given (known models: %s)", known);
    const dc_model *m = dc_model_find(model);
    if (!m) return dc_usage_error("train", "unknown model '%s' (known models: %s)", model, known);

    dc_train_config c = m->defaults;
    uint64_t u;
    if (opt[0]) {
        if (!dc_parse_u64(opt[0], INT64_MAX, &u) || u == 0) return dc_usage_error("train", "--steps takes a positive integer, got '%s'", opt[0]);
        c.steps = (int64_t)u;
        if (c.warmup > c.steps / 10) c.warmup = c.steps / 10;
    }
    if (opt[1]) {
        if (!dc_parse_u64(opt[1], 1 << 20, &u) || u == 0) return dc_usage_error("train", "--batch takes an integer from 1 to 1048576, got '%s'", opt[1]);
        c.batch = (int64_t)u;
    }
    if (opt[2] && !parse_positive(opt[2], &c.lr)) return dc_usage_error("train", "--lr takes a positive number, got '%s'", opt[2]);
    if (opt[3] && !dc_parse_u64(opt[3], UINT64_MAX, &c.seed)) return dc_usage_error("train", "--seed takes a non-negative integer, got '%s'", opt[3]);
    if (opt[4]) {
        if (!dc_parse_u64(opt[4], 1024, &u) || u == 0) return dc_usage_error("train", "--threads takes an integer from 1 to 1024, got '%s'", opt[4]);
        c.threads = (int)u;
    }
    if (opt[7]) {
        if (!dc_parse_u64(opt[7], INT64_MAX, &u)) return dc_usage_error("train", "--ckpt-every takes a non-negative integer, got '%s'", opt[7]);
        c.ckpt_every = (int64_t)u;
    }
    char err[DC_ERR_LEN];
    int backend = opt[9] ? dc_backend_from_name(opt[9]) : dc_backend_from_env(c.backend, err, sizeof err);
    if (backend < 0 && opt[9]) return dc_usage_error("train", "--backend takes auto, ref, dnnl or jit, got '%s'", opt[9]);
    if (backend < 0) return dc_usage_error("train", "%s", err);
    c.backend = (dc_backend)backend;
    c.progress = stdout;
    dc_train_request r = { .out_dir = opt[5] ? opt[5] : "runs", .resume = opt[6], .data_dir = opt[8], .out = stdout };
    if (!m->train(&c, &r, err, sizeof err)) {
        fflush(stdout);
        fprintf(stderr, "disco train: %s\n", err);
        return 1;
    }
    return 0;
}

const dc_command dc_cmd_train = { "train", cmd_train, "train a model and report its test metric",
      "usage: disco train MODEL [--steps N] [--batch B] [--lr X] [--seed S] [--threads T]\n"
      "                         [--out DIR] [--resume CKPT] [--ckpt-every N] [--data DIR]\n"
      "                         [--backend auto|ref|dnnl|jit]\n"
      "\n"
      "Trains MODEL with one compiled training graph (forward, loss, gradients, clipping by\n"
      "global norm, AdamW, EMA of the params) and reports its test metric.\n"
      "Models:\n"
      "  fmnist-mlp      MLP 784-512-256-10 on Fashion-MNIST; prints 'test accuracy 0.XXXX'\n"
      "                  (defaults: 2340 steps = 5 epochs of batch 128, lr 1e-3, 100 warmup\n"
      "                  steps then cosine to 0, weight decay 1e-4, clip 1.0, EMA 0.998)\n"
      "  fmnist-cnn      3 x (conv3x3 + group_norm + silu), 2 avg_pools, 2 linears, NHWC, on\n"
      "                  Fashion-MNIST; prints 'test accuracy 0.XXXX' (700 steps of batch 128)\n"
      "  toy             DisCo-Diff (or --baseline: plain EDM) on 8 Gaussians, with its own options:\n"
      "                  disco train toy [--latents M] [--codes K] [--steps N] [--baseline]\n"
      "                  [--seed S] [--out DIR] [--sigma-data X] [--tau T] [--batch B] [--lr X]\n"
      "                  [--prior-steps N] [--usage U] [--threads T] [--backend B]; writes\n"
      "                  DIR/toy-disco.ckpt or DIR/toy-edm.ckpt (defaults: m 1, k 8, tau 1,\n"
      "                  sigma_data 0.5, 4000 steps of batch 512, Adam lr 1e-3, prior 600\n"
      "                  steps, usage 0); --usage U adds U * KL(batch-mean code probabilities ||\n"
      "                  uniform) to the loss, which keeps every code in use (docs/toy.md)\n"
      "Options (defaults are the model's):\n"
      "  --steps N       optimizer steps (warmup is cut to N/10 if longer)\n"
      "  --batch B       examples per step\n"
      "  --lr X          peak learning rate\n"
      "  --seed S        seed of param init, data order and random ops (default 0)\n"
      "  --threads T     OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
      "  --out DIR       where MODEL.ckpt is written, created if missing (default runs)\n"
      "  --resume CKPT   continue from a checkpoint of the same config\n"
      "  --ckpt-every N  also save every N steps (0: only at the end)\n"
      "  --data DIR      dataset directory (default $DISCO_FMNIST_DIR or\n"
      "                  /usr/share/datasets/fashion-mnist)\n"
      "  --backend B     kernel providers (default $DISCO_BACKEND, else auto): auto = oneDNN\n"
      "                  for the f32 contractions, ref for the rest; dnnl = the same, a\n"
      "                  oneDNN refusal is an error; ref = reference kernels only; jit = the\n"
      "                  training graph's loops fused (fuse-loops) into LLVM JIT kernels\n"
      "Same seed, config, backend and thread count give bitwise-identical params; a resumed run\n"
      "continues bitwise-identically to an uninterrupted one.\n"
      "DISCO_TRACE=FILE.json writes a Chrome trace (chrome://tracing, Perfetto) of every step.\n" };
