/* toy.c — the DisCo-Diff toy on the command line: `disco train toy` (trains DisCo-Diff or the
 * baseline and its prior, writes the model file), `disco sample toy` (points to .npy) and
 * `disco eval toy` (metrics of one or two models as JSON), over the API of
 * models/disco/disco.h. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/disco.h"
#include "tools/cli.h"

#define MAX_OPTS 16

/* A command's options: names[i] takes a value unless it is in flags. */
typedef struct {
    const char *cmd;
    int n;
    const char *names[MAX_OPTS];
    bool is_flag[MAX_OPTS];
    const char *val[MAX_OPTS];  /* the value given, "1" for a flag given, NULL if absent */
} toy_opts;

/* Parses argv[2..] (argv[1] must be "toy"); EXIT_USAGE after a message, 0 when fine. */
static int parse(toy_opts *o, int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "toy") != 0)
        return dc_usage_error(o->cmd, "the only model is 'toy' (got '%s')", argc < 2 ? "" : argv[1]);
    for (int i = 2; i < argc; i++) {
        bool missing = false, matched = false;
        for (int k = 0; k < o->n && !matched && !missing; k++) {
            if (o->is_flag[k]) {
                if (strcmp(argv[i], o->names[k]) == 0) o->val[k] = "1", matched = true;
                continue;
            }
            const char *v = dc_option_value(argc, argv, &i, o->names[k], &missing);
            if (v) o->val[k] = v, matched = true;
        }
        if (missing) return dc_usage_error(o->cmd, "option '%s' needs a value", argv[i]);
        if (!matched) return dc_usage_error(o->cmd, "unexpected argument '%s'", argv[i]);
    }
    return 0;
}

static const char *opt(const toy_opts *o, const char *name) {
    for (int k = 0; k < o->n; k++)
        if (strcmp(o->names[k], name) == 0) return o->val[k];
    return NULL;
}

/* Integer option in [lo, hi] into *out (untouched when absent); false after a usage message. */
static bool int_opt(const toy_opts *o, const char *name, int64_t lo, int64_t hi, int64_t *out) {
    const char *v = opt(o, name);
    uint64_t u;
    if (!v) return true;
    if (!dc_parse_u64(v, (uint64_t)hi, &u) || (int64_t)u < lo) {
        dc_usage_error(o->cmd, "%s takes an integer from %lld to %lld, got '%s'", name, (long long)lo, (long long)hi, v);
        return false;
    }
    *out = (int64_t)u;
    return true;
}

/* Number option (finite; > 0 when positive) into *out; false after a usage message. */
static bool num_opt(const toy_opts *o, const char *name, bool positive, float *out) {
    const char *v = opt(o, name);
    if (!v) return true;
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end || !isfinite(d) || (positive && !(d > 0)) || fabs(d) > 1e30) {
        dc_usage_error(o->cmd, "%s takes a %snumber, got '%s'", name, positive ? "positive " : "", v);
        return false;
    }
    *out = (float)d;
    return true;
}

/* --threads and --backend; false after a usage message */
static bool runtime_opts(const toy_opts *o, dc_backend *backend) {
    int64_t threads = 0;
    if (!int_opt(o, "--threads", 1, 1024, &threads)) return false;
    if (threads > 0) omp_set_num_threads((int)threads);
    char err[DC_ERR_LEN];
    const char *b = opt(o, "--backend");
    int be = b ? dc_backend_from_name(b) : dc_backend_from_env(DC_BACKEND_AUTO, err, sizeof err);
    if (be < 0) {
        if (b) dc_usage_error(o->cmd, "--backend takes auto, ref, dnnl or jit, got '%s'", b);
        else dc_usage_error(o->cmd, "%s", err);
        return false;
    }
    *backend = (dc_backend)be;
    return true;
}

static int run_error(const char *cmd, const char *err) {
    fflush(stdout);
    fprintf(stderr, "disco %s: %s\n", cmd, err);
    return 1;
}

/* ---- disco train toy -------------------------------------------------------------------- */

int dc_toy_train_main(int argc, char **argv) {
    toy_opts o = { .cmd = "train", .n = 14,
                   .names = { "--latents", "--codes", "--steps", "--baseline", "--seed", "--out", "--sigma-data",
                              "--tau", "--batch", "--threads", "--backend", "--prior-steps", "--lr", "--usage" },
                   .is_flag = { [3] = true } };
    int st = parse(&o, argc, argv);
    if (st) return st;
    dc_toy_setup s = dc_toy_setup_defaults();
    int64_t m = s.model.m, k = s.model.k, seed = 0;
    float lr = (float)s.train.lr;
    dc_backend backend;
    if (!int_opt(&o, "--latents", 1, DC_TOY_MAX_LATENTS, &m) || !int_opt(&o, "--codes", 2, DC_TOY_MAX_CODES, &k) ||
        !int_opt(&o, "--steps", 1, 10000000, &s.train.steps) || !int_opt(&o, "--seed", 0, INT64_MAX, &seed) ||
        !int_opt(&o, "--batch", 1, DC_TOY_TRAIN_N, &s.train.batch) ||
        !int_opt(&o, "--prior-steps", 1, 10000000, &s.prior_train.steps) ||
        !num_opt(&o, "--sigma-data", true, &s.model.sigma_data) || !num_opt(&o, "--tau", true, &s.model.tau) ||
        !num_opt(&o, "--lr", true, &lr) || !num_opt(&o, "--usage", false, &s.model.usage_weight) ||
        !runtime_opts(&o, &backend))
        return EXIT_USAGE;
    if (s.model.usage_weight < 0) return dc_usage_error("train", "--usage takes a number >= 0");
    s.model.baseline = opt(&o, "--baseline") != NULL;
    s.model.m = (int)m, s.model.k = (int)k;
    s.prior = dc_prior_config_defaults((int)m, (int)k);
    s.train.lr = lr;
    if (s.train.warmup > s.train.steps / 10) s.train.warmup = s.train.steps / 10;
    if (s.prior_train.warmup > s.prior_train.steps / 10) s.prior_train.warmup = s.prior_train.steps / 10;
    s.train.seed = s.prior_train.seed = s.data_seed = (uint64_t)seed;
    s.train.backend = s.prior_train.backend = backend;
    s.train.progress = s.prior_train.progress = stdout;
    const char *dir = opt(&o, "--out") ? opt(&o, "--out") : "runs";
    const char *name = s.model.baseline ? "toy-edm.ckpt" : "toy-disco.ckpt";
    char path[4096], err[DC_ERR_LEN];
    if (!dc_train_out_path(dir, name, path, sizeof path, err, sizeof err)) return run_error("train", err);
    if (s.model.baseline)
        printf("toy: EDM baseline, %lld steps of batch %lld, sigma_data %g\n", (long long)s.train.steps,
               (long long)s.train.batch, (double)s.model.sigma_data);
    else
        printf("toy: DisCo-Diff with %d latent(s) of %d codes, tau %g, %lld steps of batch %lld, sigma_data %g; "
               "prior %lld steps\n", s.model.m, s.model.k, (double)s.model.tau, (long long)s.train.steps,
               (long long)s.train.batch, (double)s.model.sigma_data, (long long)s.prior_train.steps);
    fflush(stdout);
    dc_toy_report r;
    if (!dc_toy_train(&s, path, &r, err, sizeof err)) return run_error("train", err);
    printf("denoiser loss %.4f (mean of the last tenth), %.1f s\n", r.loss, r.train_s);
    if (!s.model.baseline) printf("prior loss %.4f nats, %.1f s\n", r.prior_loss, r.prior_s);
    printf("wrote %s\n", path);
    return 0;
}

/* ---- disco sample toy ------------------------------------------------------------------- */

static int cmd_sample(int argc, char **argv) {
    toy_opts o = { .cmd = "sample", .n = 10,
                   .names = { "--ckpt", "--heun-steps", "--guidance", "--n", "--seed", "--out", "--temperature",
                              "--threads", "--backend", "--codes-out" } };
    int st = parse(&o, argc, argv);
    if (st) return st;
    dc_toy_sample_opts so = dc_toy_sample_defaults();
    int64_t steps = so.heun_steps, n = 2000, seed = 0;
    dc_backend backend;
    if (!opt(&o, "--ckpt")) return dc_usage_error("sample", "--ckpt FILE is required");
    if (!int_opt(&o, "--heun-steps", 1, 100000, &steps) || !int_opt(&o, "--n", 1, 1 << 24, &n) ||
        !int_opt(&o, "--seed", 0, INT64_MAX, &seed) || !num_opt(&o, "--guidance", false, &so.guidance) ||
        !num_opt(&o, "--temperature", true, &so.temperature) || !runtime_opts(&o, &backend))
        return EXIT_USAGE;
    so.heun_steps = (int)steps, so.seed = (uint64_t)seed;
    const char *out = opt(&o, "--out") ? opt(&o, "--out") : "samples.npy";
    char err[DC_ERR_LEN];
    dc_toy_model *m = dc_toy_load(opt(&o, "--ckpt"), err, sizeof err);
    if (!m) return run_error("sample", err);
    int lat = dc_toy_model_setup(m)->model.baseline ? 0 : dc_toy_model_setup(m)->model.m;
    dc_tensor *pts = dc_tensor_new(&(dc_type){ DC_F32, { 2, { n, 2 } } });
    dc_tensor *codes = lat ? dc_tensor_new(&(dc_type){ DC_I32, { 2, { n, lat } } }) : NULL;
    dc_toy_sampler *s = dc_toy_sampler_new(m, n, backend, err, sizeof err);
    bool ok = s && dc_toy_generate(s, &so, pts->data, codes ? codes->data : NULL, NULL, err, sizeof err) &&
              dc_npy_write(out, pts, err, sizeof err);
    if (ok && opt(&o, "--codes-out")) {
        if (codes) ok = dc_npy_write(opt(&o, "--codes-out"), codes, err, sizeof err);
        else snprintf(err, sizeof err, "--codes-out: the baseline has no latent codes"), ok = false;
    }
    if (ok) printf("wrote %lld points (%d Heun steps, guidance %g) to %s\n", (long long)n, so.heun_steps,
                   (double)so.guidance, out);
    dc_toy_sampler_free(s);
    dc_tensor_free(pts);
    dc_tensor_free(codes);
    dc_toy_model_free(m);
    return ok ? 0 : run_error("sample", err);
}

/* ---- disco eval toy --------------------------------------------------------------------- */

/* "5,10,20" into o->extra_steps; false after a usage message */
static bool steps_list(const toy_opts *t, dc_toy_eval_opts *o) {
    const char *v = opt(t, "--w2-steps");
    if (!v) return true;
    o->n_extra = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint64_t u;
        if (o->n_extra == DC_METRICS_MAX_W2_AT || !dc_parse_u64(tok, 100000, &u) || u == 0) {
            dc_usage_error(t->cmd, "--w2-steps takes up to %d comma-separated step counts from 1 to 100000, got '%s'",
                           DC_METRICS_MAX_W2_AT, v);
            return false;
        }
        o->extra_steps[o->n_extra++] = (int)u;
    }
    return true;
}

/* Loads and evaluates the model of path; the metrics into *out, samples written into
 * DIR/samples_NAME.npy when dir is given. name receives "disco" or "edm". */
static bool eval_one(const char *path, const dc_toy_eval_opts *eo, dc_backend backend, const char *dir,
                     dc_toy_metrics *out, const char **name, char *err, size_t len) {
    dc_toy_model *m = dc_toy_load(path, err, len);
    if (!m) return false;
    *name = dc_toy_model_setup(m)->model.baseline ? "edm" : "disco";
    dc_tensor *pts = dc_tensor_new(&(dc_type){ DC_F32, { 2, { eo->n, 2 } } });
    bool ok = dc_toy_evaluate(m, eo, backend, out, pts->data, err, len);
    if (ok && dir) {
        char file[64], p[4096];
        snprintf(file, sizeof file, "samples_%s.npy", *name);
        ok = dc_train_out_path(dir, file, p, sizeof p, err, len) && dc_npy_write(p, pts, err, len);
    }
    dc_tensor_free(pts);
    dc_toy_model_free(m);
    return ok;
}

static int cmd_eval(int argc, char **argv) {
    toy_opts o = { .cmd = "eval", .n = 10,
                   .names = { "--ckpt", "--baseline-ckpt", "--n", "--heun-steps", "--w2-steps", "--guidance",
                              "--seed", "--threads", "--backend", "--samples-dir" } };
    int st = parse(&o, argc, argv);
    if (st) return st;
    dc_toy_eval_opts eo = dc_toy_eval_defaults();
    int64_t n = eo.n, steps = eo.heun_steps, seed = 0;
    dc_backend backend;
    if (!opt(&o, "--ckpt")) return dc_usage_error("eval", "--ckpt FILE is required");
    if (!int_opt(&o, "--n", 2, 20000, &n) || !int_opt(&o, "--heun-steps", 1, 100000, &steps) ||
        !int_opt(&o, "--seed", 0, INT64_MAX, &seed) || !num_opt(&o, "--guidance", false, &eo.guidance) ||
        !steps_list(&o, &eo) || !runtime_opts(&o, &backend))
        return EXIT_USAGE;
    eo.n = n, eo.heun_steps = (int)steps, eo.seed = (uint64_t)seed;
    const char *paths[2] = { opt(&o, "--ckpt"), opt(&o, "--baseline-ckpt") }, *names[2];
    dc_toy_metrics mt[2];
    char err[DC_ERR_LEN];
    for (int i = 0; i < 2; i++)
        if (paths[i] && !eval_one(paths[i], &eo, backend, opt(&o, "--samples-dir"), &mt[i], &names[i], err, sizeof err))
            return run_error("eval", err);
    printf("{\"n\": %lld, \"heun_steps\": %d, \"w2_floor\": %.6g", (long long)eo.n, eo.heun_steps, mt[0].w2_floor);
    for (int i = 0; i < 2; i++) {
        if (!paths[i]) continue;
        printf(", \"%s%s\": ", names[i], i == 1 && strcmp(names[0], names[1]) == 0 ? "_2" : "");
        dc_toy_metrics_json(stdout, &mt[i]);
    }
    printf("}\n");
    return 0;
}

const dc_command dc_cmd_sample = { "sample", cmd_sample, "sample a trained toy model to .npy",
    "usage: disco sample toy --ckpt FILE [--heun-steps N] [--guidance W] [--temperature T] [--n N]\n"
    "                        [--seed S] [--out FILE.npy] [--codes-out FILE.npy] [--threads T]\n"
    "                        [--backend auto|ref|dnnl|jit]\n"
    "\n"
    "Draws latent codes from the model's prior, then integrates the EDM probability-flow ODE\n"
    "with Heun's method conditioned on them, and writes the points as float32 [n,2] .npy.\n"
    "  --ckpt FILE        a model file of 'disco train toy' (DisCo-Diff or baseline)\n"
    "  --heun-steps N     ODE steps on the EDM schedule (default 50)\n"
    "  --guidance W       classifier-free guidance on the latents, D = D_cond + W (D_cond - D_null);\n"
    "                     0 (default) is plain conditional sampling\n"
    "  --temperature T    the prior's sampling temperature (default 1)\n"
    "  --n N              points (default 2000)\n"
    "  --seed S           codes from seed S, initial noise from S+1 (default 0)\n"
    "  --out FILE.npy     default samples.npy\n"
    "  --codes-out FILE   also write the codes, int32 [n,m] (DisCo-Diff only)\n"
    "  --threads T        OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
    "  --backend B        kernel providers (default $DISCO_BACKEND, else auto)\n" };

const dc_command dc_cmd_eval = { "eval", cmd_eval, "metrics of trained toy models as JSON",
    "usage: disco eval toy --ckpt FILE [--baseline-ckpt FILE] [--n N] [--heun-steps N]\n"
    "                      [--w2-steps 5,10,20] [--guidance W] [--seed S] [--samples-dir DIR]\n"
    "                      [--threads T] [--backend auto|ref|dnnl|jit]\n"
    "\n"
    "Samples each model (n points, Heun) and prints one JSON object: n, heun_steps, w2_floor,\n"
    "and per model (\"disco\" or \"edm\") w2 (exact W2 against n fresh data points), w2_floor,\n"
    "w2_<steps> for the extra step counts, w2_within, mode_tv, coverage, off_mode, purity\n"
    "(DisCo-Diff), curvature and squared Jacobian norm per sigma band (curv_gt10, curv_1_10,\n"
    "curv_01_1, curv_lt01, jac_...). The same seed gives both models the same data draws.\n"
    "  --ckpt FILE           a model file of 'disco train toy'\n"
    "  --baseline-ckpt FILE  a second model evaluated the same way\n"
    "  --n N                 points per set (default 2000)\n"
    "  --heun-steps N        main step count (default 50)\n"
    "  --w2-steps LIST       extra step counts for w2_<steps> (default 5,10,20)\n"
    "  --guidance W          guidance on the latents (default 0: conditional)\n"
    "  --seed S              sampling seed; fresh data from S+1000, the floor from S+2000 (default 0)\n"
    "  --samples-dir DIR     also write DIR/samples_disco.npy / samples_edm.npy (main step count)\n"
    "  --threads T, --backend B   as for sample\n" };
