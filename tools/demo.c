/* demo.c — `disco demo`: the paper's toy experiment end to end. Trains DisCo-Diff (encoder,
 * denoiser, then its prior) and the EDM baseline with the same budget, samples both with 50
 * Heun steps and with 5, 10 and 20, measures every metric of models/disco/disco.h, prints one
 * table next to the reference numbers (labelled as the paper's or the issue's), and writes
 * DIR/metrics.json, DIR/samples_{disco,edm}.npy and the PNG plots.
 *
 * Both cores are used by running the two models side by side in two child processes, one
 * OpenMP thread each (forked before this process starts any thread pool, oneDNN or LLVM): a
 * model this small gains little from a second thread inside one step, and one thread per
 * process keeps every result bitwise reproducible for a given seed.
 *
 * The children hand everything back as data, never as text for a parser:
 *   - results (the training report, the metrics, the samples, codes and ODE trajectories) in a
 *     memory map shared with the parent: a `slot` per model and the arrays after it;
 *   - progress as fixed-size binary records (progress_msg) on a pipe per child: one per
 *     training step (from the trainer's on_step hook) and one per evaluation stage. A record
 *     is { int32 phase (0: the denoiser or the evaluation, 1: the prior), int32 0, int64 steps
 *     of that phase done, double loss of that step (NaN: none) } in the host's byte order;
 *     it is smaller than PIPE_BUF, so every write is whole. The parent folds the records of
 *     both children into one progress bar showing DisCo-Diff's training loss. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "models/disco/disco.h"
#include "tools/cli.h"

#define N_MODELS 2                  /* 0: DisCo-Diff, 1: the EDM baseline */
#define N_PHASES 2                  /* progress phases per child: the denoiser, the prior */
#define TRAJ_DRAW 160               /* ODE paths drawn per panel */
/* The code-usage weight of the demo's DisCo-Diff: without it the encoder leaves codes unused
 * and merges modes (purity 0.63-0.875); with it every code stays in use (docs/toy.md) */
#define DEMO_USAGE 1.0f

static const char *const model_key[N_MODELS] = { "disco", "edm" };
static const char *const model_title[N_MODELS] = { "DisCo-Diff", "EDM" };

typedef struct {
    const char *out;
    int64_t steps, prior_steps, batch, n, seed;
    int64_t codes;
    float tau, sigma_data, usage;
    int backend;                /* a dc_backend; -1 until given */
} demo_opts;

/* What a child hands back, in memory shared with the parent. The arrays follow the slot. */
typedef struct {
    int ok;
    char err[DC_ERR_LEN];
    dc_toy_report report;
    dc_toy_metrics metrics;
    double eval_s;
} slot;

typedef struct {
    slot *s;
    float *pts;                 /* [n,2] the main samples (50 Heun steps) */
    int32_t *codes;             /* [n] the prior's codes (DisCo-Diff) */
    float *traj;                /* [(heun+1), n, 2] */
} shared_model;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- options ------------------------------------------------------------------------- */

static const dc_opt options[] = {
    DC_OPT_STR("--out", "DIR", demo_opts, out, "output directory (default out/demo)"),
    DC_OPT_INT("--steps", "N", demo_opts, steps, 10, 10000000, "training steps of each model (default 8000)"),
    DC_OPT_INT("--prior-steps", "N", demo_opts, prior_steps, 10, 10000000, "training steps of the prior (default 600)"),
    DC_OPT_INT("--batch", "B", demo_opts, batch, 1, DC_TOY_TRAIN_N, "batch size (default 512)"),
    DC_OPT_INT("--n", "N", demo_opts, n, 16, 10000, "points per evaluation set (default 2000)"),
    DC_OPT_INT("--seed", "S", demo_opts, seed, 0, INT64_MAX / 4, "data, init, training and sampling seed (default 0)"),
    DC_OPT_INT("--codes", "K", demo_opts, codes, 2, DC_TOY_MAX_CODES, "codes of the one latent (default 8)"),
    DC_OPT_POS("--tau", "T", demo_opts, tau, 1e6, "Gumbel-softmax temperature (default 1)"),
    DC_OPT_POS("--sigma-data", "SD", demo_opts, sigma_data, 1e6, "EDM sigma_data (default 0.5)"),
    DC_OPT_NUM("--usage", "U", demo_opts, usage, 0, 1e6,
               "weight of the code-usage term, U * KL(batch-mean code probabilities ||\n"
               "uniform) (default 1; 0 trains the plain model of the issue)"),
    DC_OPT_BACKEND(demo_opts, backend),
    { 0 }
};

static dc_toy_setup setup_of(const demo_opts *o, int model) {
    dc_toy_setup s = dc_toy_setup_defaults();
    s.model.baseline = model == 1;
    s.model.k = (int)o->codes;
    s.model.tau = o->tau;
    s.model.sigma_data = o->sigma_data;
    s.model.usage_weight = o->usage;
    s.prior = dc_prior_config_defaults(s.model.m, s.model.k);
    s.train.steps = o->steps;
    s.train.batch = o->batch;
    s.prior_train.steps = o->prior_steps;
    if (s.train.warmup > s.train.steps / 10) s.train.warmup = s.train.steps / 10;
    if (s.prior_train.warmup > s.prior_train.steps / 10) s.prior_train.warmup = s.prior_train.steps / 10;
    s.train.seed = s.prior_train.seed = s.data_seed = (uint64_t)o->seed;
    s.train.threads = s.prior_train.threads = 1;
    s.train.backend = s.prior_train.backend = (dc_backend)o->backend;
    return s;
}

static dc_toy_eval_opts eval_opts_of(const demo_opts *o) {
    dc_toy_eval_opts e = dc_toy_eval_defaults();
    e.n = o->n;
    e.seed = (uint64_t)o->seed;
    return e;
}

/* ---- the two child jobs -------------------------------------------------------------- */

static bool ckpt_path(const demo_opts *o, int model, char *path, size_t n, char *err, size_t len) {
    char file[64];
    snprintf(file, sizeof file, "toy-%s.ckpt", model_key[model]);
    return dc_train_out_path(o->out, file, path, n, err, len);
}

/* One progress record of a child (see the top of the file). */
typedef struct {
    int32_t phase, pad;
    int64_t done;
    double loss;
} progress_msg;

static void send_progress(int fd, int phase, int64_t done, double loss) {
    progress_msg m = { .phase = phase, .done = done, .loss = loss };
    while (write(fd, &m, sizeof m) < 0 && errno == EINTR) {}
}

/* the trainer's on_step hook: ctx is a progress_to */
typedef struct {
    int fd, phase;
} progress_to;

static void on_step(void *ctx, const dc_train_stats *st) {
    const progress_to *p = ctx;
    send_progress(p->fd, p->phase, st->step, st->loss);
}

static bool child_train(const demo_opts *o, int model, int fd, shared_model *sh) {
    dc_toy_setup s = setup_of(o, model);
    progress_to to[N_PHASES] = { { fd, 0 }, { fd, 1 } };
    s.train.on_step = s.prior_train.on_step = on_step;
    s.train.on_step_ctx = &to[0];
    s.prior_train.on_step_ctx = &to[1];
    char path[4096];
    return ckpt_path(o, model, path, sizeof path, sh->s->err, sizeof sh->s->err) &&
           dc_toy_train(&s, path, &sh->s->report, sh->s->err, sizeof sh->s->err);
}

/* Evaluates the model, then samples it again with the same seed (the same points) keeping the
 * codes and the trajectory for the plots. */
static bool child_eval(const demo_opts *o, int model, int fd, shared_model *sh) {
    char path[4096], *err = sh->s->err;
    size_t len = sizeof sh->s->err;
    if (!ckpt_path(o, model, path, sizeof path, err, len)) return false;
    dc_toy_model *m = dc_toy_load(path, err, len);
    if (!m) return false;
    dc_toy_eval_opts eo = eval_opts_of(o);
    double t0 = now_s();
    bool ok = dc_toy_evaluate(m, &eo, (dc_backend)o->backend, &sh->s->metrics, sh->pts, err, len);
    sh->s->eval_s = now_s() - t0;
    send_progress(fd, 0, 1, NAN);
    dc_toy_sampler *s = ok ? dc_toy_sampler_new(m, o->n, (dc_backend)o->backend, err, len) : NULL;
    dc_toy_sample_opts so = dc_toy_sample_defaults();
    so.heun_steps = eo.heun_steps;
    so.seed = eo.seed;
    float *pts = malloc((size_t)o->n * 2 * sizeof *pts);
    if (!pts) abort(); /* out of memory */
    ok = s && dc_toy_generate(s, &so, pts, model == 0 ? sh->codes : NULL, sh->traj, err, len);
    if (ok && memcmp(pts, sh->pts, (size_t)o->n * 2 * sizeof *pts) != 0) {
        snprintf(err, len, "demo: sampling the same seed twice gave different points");
        ok = false;
    }
    free(pts);
    dc_toy_sampler_free(s);
    dc_toy_model_free(m);
    if (ok) send_progress(fd, 0, 2, NAN);
    return ok;
}

typedef bool (*child_fn)(const demo_opts *o, int model, int fd, shared_model *sh);

/* ---- progress from the children's records -------------------------------------------- */

typedef struct {
    int64_t done[N_PHASES];
    unsigned char buf[64 * sizeof(progress_msg)];
    size_t used;
    bool open;
} child_progress;

/* Takes the whole records in c->buf; the DisCo-Diff denoiser's loss into *loss (loss may be
 * NULL). */
static void take_records(child_progress *c, double *loss) {
    size_t k = 0;
    for (; k + sizeof(progress_msg) <= c->used; k += sizeof(progress_msg)) {
        progress_msg m;
        memcpy(&m, c->buf + k, sizeof m);
        if (m.phase < 0 || m.phase >= N_PHASES) continue;
        c->done[m.phase] = m.done;
        if (m.phase == 0 && loss) *loss = m.loss;
    }
    c->used -= k;
    memmove(c->buf, c->buf + k, c->used);
}

static int64_t child_done(const child_progress *c) {
    int64_t d = 0;
    for (int k = 0; k < N_PHASES; k++) d += c->done[k];
    return d;
}

/* Runs job for both models in two child processes and waits for them, with one progress bar
 * of total steps; false (and err) when a child failed. */
static bool run_children(const demo_opts *o, child_fn job, const char *what, int64_t total, shared_model *sh,
                         char *err, size_t len) {
    int fds[N_MODELS];
    pid_t pid[N_MODELS];
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < N_MODELS; i++) {
        int p[2];
        if (pipe(p) != 0) {
            snprintf(err, len, "demo: pipe: %s", strerror(errno));
            return false;
        }
        pid[i] = fork();
        if (pid[i] < 0) {
            snprintf(err, len, "demo: fork: %s", strerror(errno));
            return false;
        }
        if (pid[i] == 0) {
            close(p[0]);
            for (int j = 0; j < i; j++) close(fds[j]);
            omp_set_num_threads(1);
            bool ok = job(o, i, p[1], &sh[i]);
            sh[i].s->ok = ok;
            close(p[1]);
            _exit(ok ? 0 : 1);
        }
        close(p[1]);
        fds[i] = p[0];
    }
    child_progress kids[N_MODELS];
    memset(kids, 0, sizeof kids);
    dc_progress *bar = dc_progress_new(what, total, stdout);
    double loss = NAN; /* no loss shown until a training child reports one */
    int open = N_MODELS;
    for (int i = 0; i < N_MODELS; i++) kids[i].open = true;
    while (open > 0) {
        struct pollfd pf[N_MODELS];
        for (int i = 0; i < N_MODELS; i++) pf[i] = (struct pollfd){ .fd = kids[i].open ? fds[i] : -1, .events = POLLIN };
        if (poll(pf, N_MODELS, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < N_MODELS; i++) {
            if (!kids[i].open || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            child_progress *c = &kids[i];
            ssize_t r = read(fds[i], c->buf + c->used, sizeof c->buf - c->used);
            if (r <= 0) {
                c->open = false, open--;
                continue;
            }
            c->used += (size_t)r;
            take_records(c, i == 0 ? &loss : NULL);   /* the bar shows DisCo-Diff's loss */
            int64_t d = child_done(&kids[0]) + child_done(&kids[1]);
            dc_progress_update(bar, d < 1 ? 1 : d, loss);
        }
    }
    dc_progress_done(bar);
    bool ok = true;
    for (int i = 0; i < N_MODELS; i++) {
        close(fds[i]);
        int st = 0;
        while (waitpid(pid[i], &st, 0) < 0 && errno == EINTR) {}
        bool good = WIFEXITED(st) && WEXITSTATUS(st) == 0 && sh[i].s->ok;
        if (!good && ok) {
            if (sh[i].s->err[0]) snprintf(err, len, "%.20s: %.400s", model_title[i], sh[i].s->err);
            else snprintf(err, len, "%s: the worker process died (status %d)", model_title[i], st);
        }
        ok = ok && good;
    }
    return ok;
}

/* ---- outputs ------------------------------------------------------------------------- */

typedef struct {
    const demo_opts *o;
    const shared_model *sh;
    double train_s;
} json_ctx;

static bool fill_json(FILE *f, void *ctx) {
    const json_ctx *j = ctx;
    const slot *d = j->sh[0].s, *e = j->sh[1].s;
    fprintf(f, "{\"n\": %lld, \"heun_steps\": %d, \"train_steps\": %lld, \"prior_steps\": %lld, \"batch\": %lld, "
               "\"seed\": %lld, \"codes\": %lld, \"tau\": %g, \"sigma_data\": %g, \"usage_weight\": %g, \"w2_floor\": %.6g",
            (long long)j->o->n, dc_toy_eval_defaults().heun_steps, (long long)j->o->steps,
            (long long)j->o->prior_steps, (long long)j->o->batch, (long long)j->o->seed, (long long)j->o->codes,
            (double)j->o->tau, (double)j->o->sigma_data, (double)j->o->usage, d->metrics.w2_floor);
    fprintf(f, ", \"train_seconds\": %.1f, \"disco\": ", j->train_s);
    bool ok = dc_toy_metrics_json(f, &d->metrics);
    fprintf(f, ", \"edm\": ");
    ok = dc_toy_metrics_json(f, &e->metrics) && ok;
    return fprintf(f, "}\n") > 0 && ok && !ferror(f);
}

static bool write_outputs(const demo_opts *o, const shared_model *sh, double train_s, char *err, size_t len) {
    char p[4096];
    json_ctx j = { o, sh, train_s };
    if (!dc_train_out_path(o->out, "metrics.json", p, sizeof p, err, len) ||
        !dc_file_write_atomic(p, fill_json, &j, err, len))
        return false;
    for (int i = 0; i < N_MODELS; i++) {
        char file[64];
        snprintf(file, sizeof file, "samples_%s.npy", model_key[i]);
        dc_tensor t = { .type = { DC_F32, { 2, { o->n, 2 } } }, .data = sh[i].pts };
        if (!dc_train_out_path(o->out, file, p, sizeof p, err, len) || !dc_npy_write(p, &t, err, len)) return false;
    }
    int heun = dc_toy_eval_defaults().heun_steps;
    dc_plot_view v = { -4.5, 4.5, -4.5, 4.5 };
    if (!dc_train_out_path(o->out, "samples_disco_codes.png", p, sizeof p, err, len) ||
        !dc_plot_scatter(p, sh[0].pts, sh[0].codes, o->n, v, 640, 640, err, len) ||
        !dc_train_out_path(o->out, "samples_edm.png", p, sizeof p, err, len) ||
        !dc_plot_scatter(p, sh[1].pts, NULL, o->n, v, 640, 640, err, len))
        return false;
    int64_t draw = o->n < TRAJ_DRAW ? o->n : TRAJ_DRAW;
    dc_plot_paths left = { sh[0].traj, heun, o->n, draw, sh[0].codes }, right = { sh[1].traj, heun, o->n, draw, NULL };
    dc_plot_view tv = { -6, 6, -6, 6 };
    if (!dc_train_out_path(o->out, "trajectories.png", p, sizeof p, err, len) ||
        !dc_plot_trajectories(p, &left, &right, tv, 560, 560, err, len))
        return false;
    /* W2 against the number of Heun steps: both models, and the floor dashed */
    enum { NS = DC_METRICS_MAX_W2_AT + 1 };
    double x[N_MODELS][NS], y[N_MODELS][NS];
    int cnt[N_MODELS];
    for (int i = 0; i < N_MODELS; i++) {
        const dc_toy_metrics *m = &sh[i].s->metrics;
        cnt[i] = 0;
        for (int k = 0; k < m->n_w2_at; k++) x[i][cnt[i]] = m->w2_at_steps[k], y[i][cnt[i]++] = m->w2_at[k];
        x[i][cnt[i]] = heun, y[i][cnt[i]++] = m->w2;
    }
    double fx[2] = { x[0][0], heun }, fy[2] = { sh[0].s->metrics.w2_floor, sh[0].s->metrics.w2_floor };
    dc_plot_series s[3] = { { x[0], y[0], cnt[0], dc_plot_color(0), false },
                            { x[1], y[1], cnt[1], dc_plot_color(1), false },
                            { fx, fy, 2, 0x808080, true } };
    return dc_train_out_path(o->out, "w2_vs_steps.png", p, sizeof p, err, len) &&
           dc_plot_lines(p, s, 3, true, 640, 420, err, len);
}

/* ---- the table ----------------------------------------------------------------------- */

static void cell(double v) {
    if (isnan(v)) printf(" %10s", "-");
    else if (v != 0 && (fabs(v) >= 1e4 || fabs(v) < 1e-3)) printf(" %10.3e", v);
    else printf(" %10.4f", v);
}

static void row(const char *label, double d, double e, const char *ref) {
    printf("  %-30s", label);
    cell(d);
    cell(e);
    printf("   %s\n", ref);
}

static void print_table(const demo_opts *o, const shared_model *sh) {
    const dc_toy_metrics *d = &sh[0].s->metrics, *e = &sh[1].s->metrics;
    printf("\n8 Gaussians, n = %lld points per set, seed %lld; both models %lld steps of batch %lld\n",
           (long long)o->n, (long long)o->seed, (long long)o->steps, (long long)o->batch);
    printf("reference: [issue] the issue's PyTorch re-implementation (20k steps, sigma_data 0.5), "
           "DisCo / EDM;\n           [paper] the DisCo-Diff paper's toy experiment\n\n");
    printf("  %-30s %10s %10s   %s\n", "metric", "DisCo-Diff", "EDM", "reference");
    row("W2 floor (two data draws)", d->w2_floor, e->w2_floor, "[issue] ~0.31 at n = 2000");
    row("W2, 50 Heun steps", d->w2, e->w2, "[issue] 0.53 / 0.44   [paper] 0.118 / 0.27");
    static const char *ref_at[] = { "[issue] 0.97 / 2.68", "", "" };
    for (int k = 0; k < d->n_w2_at; k++) {
        char label[64];
        snprintf(label, sizeof label, "W2, %d Heun steps", d->w2_at_steps[k]);
        row(label, d->w2_at[k], e->w2_at[k], k < 3 ? ref_at[k] : "");
    }
    row("within-mode W2", d->w2_within, e->w2_within, "[issue] ~0.07 for good models");
    row("mode-weight error (TV)", d->mode_tv, e->mode_tv, "");
    row("mode coverage", d->coverage, e->coverage, "");
    row("off-mode fraction", d->off_mode, e->off_mode, "");
    static const char *band[DC_SIGMA_BANDS] = { "sigma > 10", "sigma 1-10", "sigma 0.1-1", "sigma < 0.1 (noisy)" };
    for (int b = 0; b < DC_SIGMA_BANDS; b++) {
        char label[64];
        snprintf(label, sizeof label, "curvature, %s", band[b]);
        row(label, d->curv[b], e->curv[b], b == 1 ? "[issue] 0.15 / 34" : "");
    }
    static const char *jband[DC_SIGMA_BANDS] = { "sigma > 10", "sigma 1-10", "sigma 0.1-1", "sigma < 0.1" };
    for (int b = 0; b < DC_SIGMA_BANDS; b++) {
        char label[64];
        snprintf(label, sizeof label, "|J|_F^2, %s", jband[b]);
        row(label, d->jac[b], e->jac[b], "");
    }
    row("latent purity", d->purity, e->purity, "[issue] 0.875");
    double ratio = e->curv[1] / d->curv[1];
    printf("\nthe paper's mechanism, measured in this run:\n");
    printf("  curvature (sigma 1-10), EDM / DisCo-Diff: %.1fx (target >= 10x): %s\n", ratio,
           ratio >= 10 ? "yes" : "no");
    if (d->n_w2_at > 0)
        printf("  W2 with %d Heun steps lower for DisCo-Diff (%.3f vs %.3f): %s\n", d->w2_at_steps[0], d->w2_at[0],
               e->w2_at[0], d->w2_at[0] < e->w2_at[0] ? "yes" : "no");
    printf("  latent purity %.3f (target >= 0.85): %s\n", d->purity, d->purity >= 0.85 ? "yes" : "no");
    printf("  W2 at 50 steps: DisCo-Diff %.3f, EDM %.3f, floor %.3f\n", d->w2, e->w2, d->w2_floor);
}

/* ---- the command --------------------------------------------------------------------- */

static void *shared_alloc(size_t n) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static int cmd_demo(int argc, char **argv) {
    dc_toy_setup def = dc_toy_setup_defaults();
    demo_opts o = { .out = "out/demo", .steps = 8000, .prior_steps = def.prior_train.steps,
                    .batch = def.train.batch, .n = 2000, .seed = 0, .codes = def.model.k,
                    .tau = def.model.tau, .sigma_data = def.model.sigma_data, .usage = DEMO_USAGE, .backend = -1 };
    int st = dc_cli_parse(&dc_cmd_demo, &o, argc, argv, NULL);
    if (st) return st;
    if (!dc_cli_backend("demo", &o.backend, DC_BACKEND_AUTO)) return EXIT_USAGE;
    char err[DC_ERR_LEN], probe[4096];
    if (!dc_train_out_path(o.out, "metrics.json", probe, sizeof probe, err, sizeof err)) {
        fprintf(stderr, "disco demo: %s\n", err);
        return 1;
    }
    int heun = dc_toy_eval_defaults().heun_steps;
    size_t per_model = sizeof(slot) + (size_t)o.n * 2 * sizeof(float) + (size_t)o.n * sizeof(int32_t) +
                       (size_t)(heun + 1) * (size_t)o.n * 2 * sizeof(float);
    unsigned char *mem = shared_alloc(N_MODELS * per_model);
    if (!mem) {
        fprintf(stderr, "disco demo: cannot map %zu bytes of shared memory\n", N_MODELS * per_model);
        return 1;
    }
    shared_model sh[N_MODELS];
    for (int i = 0; i < N_MODELS; i++) {
        unsigned char *b = mem + (size_t)i * per_model;
        sh[i].s = (slot *)b;
        sh[i].pts = (float *)(b + sizeof(slot));
        sh[i].traj = sh[i].pts + o.n * 2;
        sh[i].codes = (int32_t *)(sh[i].traj + (size_t)(heun + 1) * (size_t)o.n * 2);
    }
    printf("disco demo: DisCo-Diff (1 latent of %lld codes, tau %g, code-usage weight %g) and the EDM baseline\n"
           "  on the 8-Gaussian toy, %lld steps of batch %lld each (prior: %lld steps), sigma_data %g,\n"
           "  two processes of one thread, backend %s\n",
           (long long)o.codes, (double)o.tau, (double)o.usage, (long long)o.steps, (long long)o.batch, (long long)o.prior_steps,
           (double)o.sigma_data, dc_backend_names[o.backend]);
    double t0 = now_s();
    bool ok = run_children(&o, child_train, "train", 2 * o.steps + o.prior_steps, sh, err, sizeof err);
    double train_s = now_s() - t0;
    if (ok) {
        printf("trained in %.1f s: DisCo-Diff loss %.4f (%.1f s) and prior %.4f nats (%.1f s); EDM loss %.4f (%.1f s)\n",
               train_s, sh[0].s->report.loss, sh[0].s->report.train_s, sh[0].s->report.prior_loss,
               sh[0].s->report.prior_s, sh[1].s->report.loss, sh[1].s->report.train_s);
        t0 = now_s();
        ok = run_children(&o, child_eval, "evaluate", 4, sh, err, sizeof err);
    }
    if (ok) {
        printf("evaluated in %.1f s (sampling at 5, 10, 20, 50 Heun steps, exact W2, curvature, Jacobian)\n",
               now_s() - t0);
        ok = write_outputs(&o, sh, train_s, err, sizeof err);
    }
    if (ok) {
        print_table(&o, sh);
        printf("\nwrote %s/metrics.json, samples_disco.npy, samples_edm.npy (float32 [%lld,2], 50 Heun steps),\n"
               "  samples_disco_codes.png, samples_edm.png, trajectories.png, w2_vs_steps.png, toy-*.ckpt\n",
               o.out, (long long)o.n);
    }
    munmap(mem, N_MODELS * per_model);
    if (!ok) {
        fflush(stdout);
        fprintf(stderr, "disco demo: %s\n", err);
        return 1;
    }
    return 0;
}

const dc_command dc_cmd_demo = {
    .name = "demo", .fn = cmd_demo, .summary = "the paper's toy experiment end to end (make demo)", .options = options,
    .about = "Trains DisCo-Diff (encoder + denoiser, then the prior) and the EDM baseline with the same\n"
             "steps and batch, side by side in two processes of one thread; samples each with 50 Heun\n"
             "steps and with 5, 10, 20; prints W2 (exact, next to its floor), its decomposition, mode\n"
             "coverage, off-mode fraction, ODE curvature and drift Jacobian per sigma band and latent\n"
             "purity next to the reference numbers; writes DIR/metrics.json, DIR/samples_disco.npy and\n"
             "DIR/samples_edm.npy (float32 [n,2]) and the PNG plots.\n",
};
