/* toy.c — the DisCo-Diff toy's own commands: `disco sample toy` (points to .npy) and `disco eval
 * toy` (metrics of one or two models as JSON), over the API of models/disco/disco.h. (`disco
 * train toy` is the registry's toy model, models/toy.c.) */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/disco.h"
#include "tools/cli.h"

/* The model argument (only "toy"), --threads and --backend; 0 or EXIT_USAGE. */
static int toy_runtime(const char *cmd, const char *model, int threads, int *backend) {
    if (!model || strcmp(model, "toy") != 0)
        return dc_usage_error(cmd, "the models are 'toy' and 'fmnist-disco' (got '%s')", model ? model : "");
    if (threads > 0) omp_set_num_threads(threads);
    return dc_cli_backend(cmd, backend, DC_BACKEND_AUTO) ? 0 : EXIT_USAGE;
}

/* ---- disco sample toy ------------------------------------------------------------------- */

typedef struct {
    const char *model, *ckpt, *out, *codes_out;
    int64_t n;
    int threads, backend;
    dc_toy_sample_opts so;
} sample_args;

static int cmd_sample(int argc, char **argv) {
    sample_args a = { .out = "samples.npy", .n = 2000, .backend = -1, .so = dc_toy_sample_defaults() };
    int st = dc_cli_parse(&dc_cmd_sample, &a, argc, argv, &a.model);
    if (st || (st = toy_runtime("sample", a.model, a.threads, &a.backend))) return st;
    char err[DC_ERR_LEN];
    dc_toy_model *m = dc_toy_load(a.ckpt, err, sizeof err);
    if (!m) return dc_run_error("sample", err);
    int64_t n = a.n;
    int lat = dc_toy_model_setup(m)->model.baseline ? 0 : dc_toy_model_setup(m)->model.m;
    dc_tensor *pts = dc_tensor_new(&(dc_type){ DC_F32, { 2, { n, 2 } } });
    dc_tensor *codes = lat ? dc_tensor_new(&(dc_type){ DC_I32, { 2, { n, lat } } }) : NULL;
    dc_toy_sampler *s = dc_toy_sampler_new(m, n, (dc_backend)a.backend, err, sizeof err);
    double t0 = dc_seconds();
    bool ok = s && dc_toy_generate(s, &a.so, pts->data, codes ? codes->data : NULL, NULL, err, sizeof err);
    double total_s = dc_seconds() - t0;
    ok = ok && dc_npy_write(a.out, pts, err, sizeof err);
    if (ok && a.codes_out) {
        if (codes) ok = dc_npy_write(a.codes_out, codes, err, sizeof err);
        else snprintf(err, sizeof err, "--codes-out: the baseline has no latent codes"), ok = false;
    }
    if (ok) {
        char ops[600];
        int n_ref = dc_toy_sampler_ref_summary(s, ops, sizeof ops);
        fprintf(stderr, "sampler: %d steps on ref%s%s\n", n_ref, n_ref ? ": " : "", ops);
        const dc_toy_sample_times *t = dc_toy_sampler_times(s);
        printf("sampled %lld points in %.3f s: prior %.3f s, ODE %.3f s (%lld denoiser calls)\n", (long long)n,
               total_s, t->prior_s, t->ode_s, (long long)t->denoiser_calls);
        printf("wrote %lld points (%d Heun steps, guidance %g) to %s\n", (long long)n, a.so.heun_steps,
               (double)a.so.guidance, a.out);
    }
    dc_toy_sampler_free(s);
    dc_tensor_free(pts);
    dc_tensor_free(codes);
    dc_toy_model_free(m);
    return ok ? 0 : dc_run_error("sample", err);
}

/* ---- disco eval toy --------------------------------------------------------------------- */

typedef struct {
    const char *model, *ckpt, *baseline_ckpt, *samples_dir;
    int threads, backend;
    dc_toy_eval_opts eo;
} eval_args;

/* --w2-steps "5,10,20" into the dc_toy_eval_opts field */
static bool parse_w2_steps(const char *v, void *field, char *err, size_t len) {
    dc_toy_eval_opts *o = field;
    o->n_extra = 0;
    for (const char *p = v; *p; p += *p == ',') {
        char *end;
        unsigned long long u = *p >= '0' && *p <= '9' ? strtoull(p, &end, 10) : 0;
        if (u == 0 || u > 100000 || (*end && *end != ',') || o->n_extra == DC_METRICS_MAX_W2_AT) {
            snprintf(err, len, "--w2-steps takes up to %d comma-separated step counts from 1 to 100000, got '%s'",
                     DC_METRICS_MAX_W2_AT, v);
            return false;
        }
        o->extra_steps[o->n_extra++] = (int)u;
        p = end;
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
    eval_args a = { .backend = -1, .eo = dc_toy_eval_defaults() };
    int st = dc_cli_parse(&dc_cmd_eval, &a, argc, argv, &a.model);
    if (st || (st = toy_runtime("eval", a.model, a.threads, &a.backend))) return st;
    const dc_toy_eval_opts *eo = &a.eo;
    const char *paths[2] = { a.ckpt, a.baseline_ckpt }, *names[2];
    dc_toy_metrics mt[2];
    char err[DC_ERR_LEN];
    for (int i = 0; i < 2; i++)
        if (paths[i] && !eval_one(paths[i], eo, (dc_backend)a.backend, a.samples_dir, &mt[i], &names[i], err, sizeof err))
            return dc_run_error("eval", err);
    printf("{\"n\": %lld, \"heun_steps\": %d, \"w2_floor\": %.6g", (long long)eo->n, eo->heun_steps, mt[0].w2_floor);
    for (int i = 0; i < 2; i++) {
        if (!paths[i]) continue;
        printf(", \"%s%s\": ", names[i], i == 1 && strcmp(names[0], names[1]) == 0 ? "_2" : "");
        dc_toy_metrics_json(stdout, &mt[i]);
    }
    printf("}\n");
    return 0;
}

static const dc_opt sample_options[] = {
    DC_OPT_STR_REQUIRED("--ckpt", "FILE", sample_args, ckpt, "a model file of 'disco train toy' (DisCo-Diff or baseline)"),
    DC_OPT_INT("--heun-steps", "N", sample_args, so.heun_steps, 1, 100000, "ODE steps on the EDM schedule (default 50)"),
    DC_OPT_NUM("--guidance", "W", sample_args, so.guidance, -1e30, 1e30,
               "classifier-free guidance on the latents, D = D_cond + W (D_cond - D_null);\n"
               "0 (default) is plain conditional sampling"),
    DC_OPT_POS("--temperature", "T", sample_args, so.temperature, 1e30, "the prior's sampling temperature (default 1)"),
    DC_OPT_INT("--n", "N", sample_args, n, 1, 1 << 24, "points (default 2000)"),
    DC_OPT_U64("--seed", "S", sample_args, so.seed, "codes from seed S, initial noise from S+1 (default 0)"),
    DC_OPT_STR("--out", "FILE.npy", sample_args, out, "default samples.npy"),
    DC_OPT_STR("--codes-out", "FILE", sample_args, codes_out, "also write the codes, int32 [n,m] (DisCo-Diff only)"),
    DC_OPT_THREADS(sample_args, threads),
    DC_OPT_BACKEND(sample_args, backend),
    { 0 }
};

const dc_command dc_cmd_sample = {
    .name = "sample", .fn = cmd_sample, .summary = "sample a trained model (toy, fmnist-disco)", .args = "toy",
    .arg_what = "model", .options = sample_options, .variants = (const dc_command *const[]){ &dc_cmd_sample_images, NULL },
    .about = "Draws latent codes from the model's prior, then integrates the EDM probability-flow ODE\n"
             "with Heun's method conditioned on them, and writes the points as float32 [n,2] .npy.\n"
             "Prints how long sampling took apart from compiling: the total, drawing the codes (prior)\n"
             "and the integration (ODE), and how many times the denoiser ran.\n"
             "`disco sample fmnist-disco --help` describes sampling the image model.\n",
};

static const dc_opt eval_options[] = {
    DC_OPT_STR_REQUIRED("--ckpt", "FILE", eval_args, ckpt, "a model file of 'disco train toy'"),
    DC_OPT_STR("--baseline-ckpt", "FILE", eval_args, baseline_ckpt, "a second model evaluated the same way"),
    DC_OPT_INT("--n", "N", eval_args, eo.n, 2, 20000, "points per set (default 2000)"),
    DC_OPT_INT("--heun-steps", "N", eval_args, eo.heun_steps, 1, 100000, "main step count (default 50)"),
    DC_OPT_FN("--w2-steps", "LIST", eval_args, eo, parse_w2_steps, "extra step counts for w2_<steps> (default 5,10,20)"),
    DC_OPT_NUM("--guidance", "W", eval_args, eo.guidance, -1e30, 1e30, "guidance on the latents (default 0: conditional)"),
    DC_OPT_U64("--seed", "S", eval_args, eo.seed,
               "sampling seed; fresh data from S+1000, the floor from S+2000 (default 0)"),
    DC_OPT_STR("--samples-dir", "DIR", eval_args, samples_dir,
               "also write DIR/samples_disco.npy / samples_edm.npy (main step count)"),
    DC_OPT_THREADS(eval_args, threads),
    DC_OPT_BACKEND(eval_args, backend),
    { 0 }
};

const dc_command dc_cmd_eval = {
    .name = "eval", .fn = cmd_eval, .summary = "metrics of trained models (toy, fmnist-disco)", .args = "toy",
    .arg_what = "model", .options = eval_options, .variants = (const dc_command *const[]){ &dc_cmd_eval_images, NULL },
    .about = "Samples each model (n points, Heun) and prints one JSON object: n, heun_steps, w2_floor,\n"
             "and per model (\"disco\" or \"edm\") w2 (exact W2 against n fresh data points), w2_floor,\n"
             "w2_<steps> for the extra step counts, w2_within, mode_tv, coverage, off_mode, purity\n"
             "(DisCo-Diff), curvature and squared Jacobian norm per sigma band (curv_gt10, curv_1_10,\n"
             "curv_01_1, curv_lt01, jac_...). The same seed gives both models the same data draws.\n",
};
