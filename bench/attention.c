/* attention.c — the attention benchmark: for each shape, the attention op (fused: what
 * dc_attention builds, run by whichever kernel the compiler picks for it) against its plain
 * spelling (unfused: matmul with k transposed, scale, causal mask by where over iotas,
 * softmax, matmul), forward alone and forward + backward (the gradients of q, k, v by
 * dc_grad), each through the compiler's pipeline for the auto backend (unfused: without
 * fuse-attention, which would find the forward's plain spelling) and dc_compile. Prints per program the
 * median, min and max of single dc_exec_run calls, GFLOP/s against an AVX-512 FMA peak
 * measured in the same run, the arena (the memory plan's peak), the unfused/fused ratio, the
 * largest difference between the two programs' outputs, and which provider ran the attention
 * steps. bench/attention_torch.py prints the same rows for PyTorch and
 * bench/attention_vs_torch.sh runs both side by side. `attention --help` lists the flags. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "codegen/codegen.h"
#include "frontend/dsl.h"
#include "passes/passes.h"

#define MAX_LIST 16
#define MIN_REPS 3        /* when a run fits the budget this many times */
#define MAX_REPS 200
#define PEAK_REPS 5
#define MAX_KINDS 32      /* distinct step descriptions in the steps column */
#define CHECK_TOL 1e-3    /* max |fused - unfused| / max(1, max |unfused|) */

static const char *const usage =
    "usage: build/bench/attention [flags]\n"
    "  --mode LIST        fwd, fwdbwd (default both)\n"
    "  --causal LIST      0, 1 (default both)\n"
    "  --bh LIST          batch x heads, run as B = 1, H = BH (default 8,32)\n"
    "  --s LIST           Sq = Sk (default 49,196,256,1024,4096)\n"
    "  --d LIST           D = Dv (default 32,64)\n"
    "  --variant LIST     fused, unfused (default both)\n"
    "  --threads N        OpenMP threads (default 2)\n"
    "  --budget SEC       time of the timed runs of one program, about (default 0.3); at least\n"
    "                     3 runs, 2 when one run takes longer than SEC, at most 200\n"
    "  --max-seconds SEC  skip a program whose warm-up and 2 runs would take longer, estimated\n"
    "                     from the GFLOP/s of the same kind at the largest smaller S measured\n"
    "                     in this invocation (default 30)\n"
    "  --max-gib GIB      skip a program whose arena (its memory plan's peak) is larger\n"
    "                     (default 8)\n"
    "  --history FILE     rows of this table from earlier runs: their GFLOP/s count for\n"
    "                     --max-seconds as if measured here (attention_vs_torch.sh runs one S at\n"
    "                     a time and passes the rows of the smaller ones)\n"
    "LIST: comma-separated values, e.g. --s 256,1024. Exit status 1 when the fused and unfused\n"
    "outputs of a shape differ by more than the tolerance, 2 on a bad flag.\n";

typedef enum { FWD, FWDBWD } mode;
typedef enum { FUSED, UNFUSED } variant;
static const char *const mode_name[] = { "fwd", "fwdbwd" }, *const variant_name[] = { "fused", "unfused" };

typedef struct {
    int n;
    int64_t v[MAX_LIST];
} list;

typedef struct {
    list mode, causal, bh, s, d, variant;
    int threads;
    double budget, max_seconds, max_gib;
    const char *history;
} config;

typedef struct {
    mode m;
    bool causal;
    int64_t bh, s, d;
} shape;

static void die(const char *what, const char *msg) {
    fprintf(stderr, "attention: %s: %s\n", what, msg);
    exit(2);
}

/* ---- the command line ------------------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static void bad_flag(const char *flag, const char *fmt, ...) {
    fprintf(stderr, "attention: %s: ", flag);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see --help)\n");
    exit(2);
}

/* a positive number of at most max; names, when not NULL, are the words that stand for 0, 1, ... */
static int64_t parse_value(const char *flag, const char *s, int64_t max, const char *const *names, int n_names) {
    for (int i = 0; i < n_names; i++)
        if (strcmp(s, names[i]) == 0) return i;
    if (n_names) bad_flag(flag, "'%s' is not one of the allowed values", s);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max) bad_flag(flag, "'%s' is not an integer in 1..%lld", s, (long long)max);
    return v;
}

static void parse_list(const char *flag, const char *arg, list *l, int64_t max, const char *const *names,
                       int n_names) {
    char buf[512];
    if (strlen(arg) >= sizeof buf) bad_flag(flag, "'%s' is too long", arg);
    snprintf(buf, sizeof buf, "%s", arg);
    l->n = 0;
    for (char *rest = buf, *t; (t = strsep(&rest, ",")) != NULL;) {
        if (l->n == MAX_LIST) bad_flag(flag, "'%s' has more than 16 values", arg);
        if (!*t) bad_flag(flag, "'%s' has an empty value", arg);
        l->v[l->n++] = parse_value(flag, t, max, names, n_names);
    }
}

static double parse_seconds(const char *flag, const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || !isfinite(v)) bad_flag(flag, "'%s' is not a positive number", s);
    return v;
}

static config parse_args(int argc, char **argv) {
    config c = { .mode = { 2, { FWD, FWDBWD } }, .causal = { 2, { 0, 1 } }, .bh = { 2, { 8, 32 } },
                 .s = { 5, { 49, 196, 256, 1024, 4096 } }, .d = { 2, { 32, 64 } },
                 .variant = { 2, { FUSED, UNFUSED } }, .threads = 2, .budget = 0.3, .max_seconds = 30,
                 .max_gib = 8 };
    static const char *const causal_names[] = { "0", "1" };
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "-h") == 0 || strcmp(flag, "--help") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (strncmp(flag, "--", 2) != 0) bad_flag(flag, "%s", "not a flag");
        if (i + 1 >= argc) bad_flag(flag, "%s", "needs a value");
        const char *arg = argv[++i];
        const int64_t big = (int64_t)1 << 20;
        if (strcmp(flag, "--mode") == 0) parse_list(flag, arg, &c.mode, 0, mode_name, 2);
        else if (strcmp(flag, "--causal") == 0) parse_list(flag, arg, &c.causal, 0, causal_names, 2);
        else if (strcmp(flag, "--variant") == 0) parse_list(flag, arg, &c.variant, 0, variant_name, 2);
        else if (strcmp(flag, "--bh") == 0) parse_list(flag, arg, &c.bh, big, NULL, 0);
        else if (strcmp(flag, "--s") == 0) parse_list(flag, arg, &c.s, big, NULL, 0);
        else if (strcmp(flag, "--d") == 0) parse_list(flag, arg, &c.d, 4096, NULL, 0);
        else if (strcmp(flag, "--threads") == 0) c.threads = (int)parse_value(flag, arg, 1024, NULL, 0);
        else if (strcmp(flag, "--budget") == 0) c.budget = parse_seconds(flag, arg);
        else if (strcmp(flag, "--max-seconds") == 0) c.max_seconds = parse_seconds(flag, arg);
        else if (strcmp(flag, "--max-gib") == 0) c.max_gib = parse_seconds(flag, arg);
        else if (strcmp(flag, "--history") == 0) c.history = arg;
        else bad_flag(flag, "%s", "unknown flag");
    }
    return c;
}

/* ---- the programs ---------------------------------------------------------------------- */

/* forward FLOPs: the two matmuls, 2 * S * S * D each per head; causal counts half; forward +
 * backward 3.5x the forward */
static double flops(const shape *s) {
    double f = 4.0 * (double)s->bh * (double)s->s * (double)s->s * (double)s->d * (s->causal ? 0.5 : 1.0);
    return s->m == FWDBWD ? 3.5 * f : f;
}

/* softmax(scale q k^T, causal) v written out as a model would */
static dc_t plain_attention(dc_graph *g, const shape *s, dc_t q, dc_t k, dc_t v, float scale) {
    dc_t logits = dc_mul_scalar(g, dc_matmul(g, q, k, .trans_b = true), scale);
    if (s->causal) {
        int64_t ss[2] = { s->s, s->s };
        dc_t row = dc_iota(g, 0, 2, ss, .dtype = DC_I32), col = dc_iota(g, 1, 2, ss, .dtype = DC_I32);
        logits = dc_where(g, dc_gt(g, col, row), dc_scalar(g, -INFINITY), logits);
    }
    return dc_matmul(g, dc_softmax(g, logits, -1), v);
}

static const char *const input_names[] = { "q", "k", "v", "r" };

/* The program of shape s in variant v: inputs q, k, v [1,BH,S,D] (and r for the loss); output
 * out, or dq, dk, dv of sum(out * r). */
static dc_graph *build(const shape *s, variant v) {
    dc_graph *g = dc_graph_new(v == FUSED ? "attention_fused" : "attention_unfused");
    int64_t dims[4] = { 1, s->bh, s->s, s->d };
    dc_t in[4];
    for (int i = 0; i < (s->m == FWDBWD ? 4 : 3); i++) in[i] = dc_input(g, input_names[i], DC_F32, 4, dims);
    float scale = 1.0f / sqrtf((float)s->d);
    dc_t out = v == FUSED ? dc_attention(g, in[0], in[1], in[2], DC_NONE, .scale = scale, .causal = s->causal)
                          : plain_attention(g, s, in[0], in[1], in[2], scale);
    if (s->m == FWD) {
        dc_output(g, out, "out");
    } else {
        dc_t loss = dc_sum(g, dc_mul(g, out, in[3]));
        if (dc_graph_failed(g)) die("building the graph", dc_graph_error(g));
        int wrt[3] = { in[0].id, in[1].id, in[2].id }, grads[3];
        char err[DC_ERR_LEN];
        if (!dc_grad(g, loss.id, wrt, 3, grads, err, sizeof err)) die("dc_grad", err);
        for (int i = 0; i < 3; i++) {
            char name[8];
            snprintf(name, sizeof name, "d%s", input_names[i]);
            dc_output(g, (dc_t){ grads[i] }, name);
        }
    }
    if (dc_graph_failed(g)) die("building the graph", dc_graph_error(g));
    return g;
}

/* The passes of variant v: the compiler's pipeline; for unfused, without its fuse-attention
 * (which would find the forward's plain spelling) */
static const char *pipeline_of(variant v) {
    const char *p = dc_pipeline(DC_BACKEND_AUTO), *f = "fuse-attention,";
    return v == UNFUSED && strncmp(p, f, strlen(f)) == 0 ? p + strlen(f) : p;
}

/* The graph of s in variant v through pipeline_of(v) */
static dc_graph *build_piped(const shape *s, variant v) {
    dc_graph *g = build(s, v);
    char err[DC_ERR_LEN];
    if (!dc_run_pipeline(g, pipeline_of(v), &(dc_pass_opts){ 0 }, err, sizeof err)) die("the compiler's pipeline", err);
    return g;
}

/* The arena the program of s in variant v would take: the peak of its memory plan after the
 * pipeline, from a graph of its own. */
static int64_t arena_estimate(const shape *s, variant v) {
    dc_graph *g = build_piped(s, v);
    int64_t b = g->plan_bytes;
    dc_graph_free(g);
    return b;
}

/* Every input of e: U(-1, 1) from the Philox stream of its name's index, the same in both
 * variants. */
static void set_inputs(dc_exec *e, const dc_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *n = &g->nodes[i];
        if (n->op != DC_OP_INPUT) continue;
        uint64_t stream = 0;
        while (stream < 3 && strcmp(input_names[stream], n->name) != 0) stream++;
        dc_tensor *t = dc_tensor_new(&n->type);
        float *p = t->data;
        int64_t count = dc_numel(&n->type.shape);
        #pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < count; j++) p[j] = 2.0f * dc_rng_uniform01(1, stream, (uint64_t)j) - 1.0f;
        char err[DC_ERR_LEN];
        if (!dc_exec_set_input(e, n->name, t, err, sizeof err)) die("set input", err);
        dc_tensor_free(t);
    }
}

static double run(dc_exec *e) {
    char err[DC_ERR_LEN];
    double t0 = dc_seconds();
    if (!dc_exec_run(e, err, sizeof err)) die("dc_exec_run", err);
    return dc_seconds() - t0;
}

typedef struct {
    int reps;
    double med, min, max; /* seconds of one dc_exec_run */
} timing;

/* Warm-up (a second one when the first is short), then reps single runs: MIN_REPS or as many as
 * fit in budget, 2 when one run takes longer than budget. */
static timing time_runs(dc_exec *e, double budget) {
    double once = run(e);
    if (once < 0.1) once = run(e);
    int reps = once > budget ? 2 : (int)(budget / once);
    reps = reps < 2 ? 2 : reps > MAX_REPS ? MAX_REPS : reps;
    if (once <= budget && reps < MIN_REPS) reps = MIN_REPS;
    double t[MAX_REPS];
    timing r = { .reps = reps, .min = INFINITY, .max = 0 };
    for (int i = 0; i < reps; i++) {
        t[i] = run(e);
        r.min = t[i] < r.min ? t[i] : r.min;
        r.max = t[i] > r.max ? t[i] : r.max;
    }
    r.med = dc_median(t, reps);
    return r;
}

/* ---- what ran: providers of the steps ---------------------------------------------------- */

/* "attention ref x2, attention_bwd ref x3" for the attention steps of a fused program ("op
 * provider[impl]" with counts, in program order), or "dnnl 2, jit 3" for every step of an
 * unfused one and the ops of its ref steps; then the notes of those steps (why a step's
 * provider is not the rule's), each once. */
static void describe_steps(const dc_exec *e, const dc_graph *g, variant v, char *buf, size_t len) {
    int n;
    const dc_step *st = dc_exec_steps(e, &n);
    char key[MAX_KINDS][160], note[MAX_KINDS][200];
    int count[MAX_KINDS], k = 0, n_notes = 0;
    for (int i = 0; i < n; i++) {
        dc_op op = g->nodes[st[i].node].op;
        if (v == FUSED && op != DC_OP_ATTENTION && op != DC_OP_ATTENTION_BWD) continue;
        char this[160];
        bool impl = st[i].impl[0] && strcmp(st[i].impl, st[i].provider) != 0;
        if (v == FUSED)
            snprintf(this, sizeof this, "%s %s%s%s%s", dc_op_name(op), st[i].provider, impl ? "[" : "",
                     impl ? st[i].impl : "", impl ? "]" : "");
        else
            snprintf(this, sizeof this, "%s", st[i].provider);
        int j = 0;
        while (j < k && strcmp(key[j], this) != 0) j++;
        if (j == k && k < MAX_KINDS) snprintf(key[k], sizeof key[k], "%s", this), count[k++] = 0;
        if (j < k) count[j]++;
        if (!st[i].note[0]) continue;
        char this_note[200];
        snprintf(this_note, sizeof this_note, "%s: %s", dc_op_name(op), st[i].note);
        int m = 0;
        while (m < n_notes && strcmp(note[m], this_note) != 0) m++;
        if (m == n_notes && n_notes < MAX_KINDS) memcpy(note[n_notes++], this_note, sizeof this_note);
    }
    size_t at = 0;
    buf[0] = 0;
    for (int j = 0; j < k && at < len; j++)
        at += (size_t)snprintf(buf + at, len - at, v == FUSED ? "%s%s x%d" : "%s%s %d", j ? ", " : "", key[j], count[j]);
    char refs[256];
    if (v == UNFUSED && dc_exec_ref_summary(e, refs, sizeof refs) > 0 && at < len)
        at += (size_t)snprintf(buf + at, len - at, " (ref: %s)", refs);
    for (int j = 0; j < n_notes && at < len; j++)
        at += (size_t)snprintf(buf + at, len - at, "%s%s", j ? "; " : "; notes: ", note[j]);
}

/* ---- one shape ---------------------------------------------------------------------------- */

/* GFLOP/s measured for a kind of program (variant, mode, causal, bh, d), at its largest S so
 * far: what --max-seconds estimates a larger S from. */
typedef struct {
    variant v;
    shape s;
    double gflops;
} rate;
static rate rates[2 * 2 * 2 * MAX_LIST * MAX_LIST]; /* variants x modes x causal x bh x d */
static int n_rates;

static rate *rate_of(variant v, const shape *s) {
    for (int i = 0; i < n_rates; i++) {
        const rate *r = &rates[i];
        if (r->v == v && r->s.m == s->m && r->s.causal == s->causal && r->s.bh == s->bh && r->s.d == s->d)
            return &rates[i];
    }
    return NULL;
}

static void record_rate(variant v, const shape *s, double gflops) {
    rate *r = rate_of(v, s);
    if (!r) r = &rates[n_rates++];
    if (r->s.s <= s->s) *r = (rate){ v, *s, gflops };
}

/* The index of word in names[0..n), or -1. */
static int index_of(const char *word, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(word, names[i]) == 0) return i;
    return -1;
}

/* Records the GFLOP/s of every fused or unfused row of the table in file path. */
static void read_history(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) bad_flag("--history", "cannot read '%s'", path);
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        char m[16], var[32];
        int causal, reps;
        long long bh, s, d;
        double med, lo, hi, gflops;
        if (sscanf(line, "%15s %d %lld %lld %lld %31s %d %lf %lf %lf %lf", m, &causal, &bh, &s, &d, var, &reps, &med,
                   &lo, &hi, &gflops) != 11)
            continue;
        int mi = index_of(m, mode_name, 2), vi = index_of(var, variant_name, 2);
        if (mi < 0 || vi < 0 || !(gflops > 0)) continue;
        shape sh = { (mode)mi, causal != 0, bh, s, d };
        record_rate((variant)vi, &sh, gflops);
    }
    fclose(f);
}

typedef struct {
    bool ran;
    char skipped[200];
    timing t;
    double arena;
    char steps[1024];
} result;

/* the row's key; the variant the compiler's rule (fuse-attention: dc_attention_fuses) picks
 * for the shape is starred */
static void print_key(const shape *s, variant v) {
    char name[16];
    bool picked = dc_attention_fuses(s->bh, s->s, s->s, s->d, s->causal, NULL, 0) == (v == FUSED);
    snprintf(name, sizeof name, "%s%s", variant_name[v], picked ? "*" : "");
    printf("%-7s %6d %5lld %6lld %4lld %-13s", mode_name[s->m], s->causal, (long long)s->bh, (long long)s->s,
           (long long)s->d, name);
}

/* Compiles and times the program of s in variant v unless it is over a limit; the executor
 * stays in *e (NULL when skipped) for the caller's check. */
static result measure(const config *c, const shape *s, variant v, dc_exec **e, dc_graph **g) {
    result r = { 0 };
    *e = NULL, *g = NULL;
    double mib = (double)arena_estimate(s, v) / (1 << 20);
    if (mib > c->max_gib * 1024) {
        snprintf(r.skipped, sizeof r.skipped, "skipped: needs %.1f GiB of arena > --max-gib %g", mib / 1024, c->max_gib);
        return r;
    }
    const rate *known = rate_of(v, s);
    double est = known && known->s.s < s->s ? flops(s) / (known->gflops * 1e9) : 0;
    if (3 * est > c->max_seconds) {
        snprintf(r.skipped, sizeof r.skipped,
                 "skipped: about %.1f s a run (%.2f GFLOP/s at S=%lld); warm-up + 2 runs > --max-seconds %g; "
                 "arena %.1f MiB", est, known->gflops, (long long)known->s.s, c->max_seconds, mib);
        return r;
    }
    *g = build_piped(s, v);
    char err[DC_ERR_LEN];
    *e = dc_compile(*g, 1, DC_BACKEND_AUTO, err, sizeof err);
    if (!*e) die("dc_compile", err);
    set_inputs(*e, *g);
    r.ran = true;
    r.t = time_runs(*e, c->budget);
    r.arena = (double)dc_exec_arena_bytes(*e);
    describe_steps(*e, *g, v, r.steps, sizeof r.steps);
    record_rate(v, s, flops(s) / r.t.med * 1e-9);
    return r;
}

/* max |a - b| over every output of two executors of the same outputs; *scale: max |b| */
static double max_diff(const dc_exec *a, const dc_exec *b, int n_outputs, double *scale) {
    double m = 0;
    *scale = 0;
    for (int o = 0; o < n_outputs; o++) {
        const dc_tensor *x = dc_exec_output(a, o), *y = dc_exec_output(b, o);
        const float *p = x->data, *q = y->data;
        for (int64_t j = 0; j < dc_numel(&x->type.shape); j++) {
            double d = fabs((double)p[j] - q[j]);
            if (!(d <= m)) m = d; /* NaN propagates */
            if (fabs((double)q[j]) > *scale) *scale = fabs((double)q[j]);
        }
    }
    return m;
}

/* Measures both variants of s and prints their rows; false when their outputs disagree. */
static bool bench_shape(const config *c, const shape *s, double peak) {
    result r[2] = { 0 };
    dc_exec *e[2] = { NULL, NULL };
    dc_graph *g[2] = { NULL, NULL };
    for (int i = 0; i < c->variant.n; i++) {
        variant v = (variant)c->variant.v[i];
        r[v] = measure(c, s, v, &e[v], &g[v]);
    }
    bool ok = true;
    char check[48] = "-";
    if (e[FUSED] && e[UNFUSED]) {
        double scale, d = max_diff(e[FUSED], e[UNFUSED], g[FUSED]->n_outputs, &scale);
        ok = d <= CHECK_TOL * (scale > 1 ? scale : 1);
        snprintf(check, sizeof check, "%.1e%s", d, ok ? "" : " MISMATCH");
    }
    for (int i = 0; i < c->variant.n; i++) {
        variant v = (variant)c->variant.v[i];
        print_key(s, v);
        if (!r[v].ran) {
            printf(" %s\n", r[v].skipped);
            continue;
        }
        const timing *t = &r[v].t;
        double gf = flops(s) / t->med * 1e-9;
        char ratio[16] = "-";
        if (v == UNFUSED && r[FUSED].ran) snprintf(ratio, sizeof ratio, "%.2fx", t->med / r[FUSED].t.med);
        printf(" %4d %9.3f %9.3f %9.3f %8.1f %5.1f%% %9.1f %7s %9s  %s\n", t->reps, t->med * 1e3, t->min * 1e3,
               t->max * 1e3, gf, 100 * gf / peak, r[v].arena / (1 << 20), ratio, v == UNFUSED ? check : "-",
               r[v].steps);
    }
    fflush(stdout);
    for (int v = 0; v < 2; v++) {
        dc_exec_free(e[v]);
        dc_graph_free(g[v]);
    }
    return ok;
}

int main(int argc, char **argv) {
    config c = parse_args(argc, argv);
    if (c.history) read_history(c.history);
    if (!bench_has_avx512()) die("FMA peak", "this CPU has no AVX-512F, which the FMA-peak loop needs");
    omp_set_num_threads(c.threads);
    double t_start = dc_seconds();
    char load[64], date[64];
    time_t wall = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime(&wall));
    bench_loadavg(load, sizeof load);
    double peak, median = bench_fma_peak(PEAK_REPS, &peak);
    printf("# disco attention: fused (the attention op) vs unfused (matmul k^T, scale, where-mask, softmax, matmul);\n"
           "#   dc_compile_for backend auto; %d threads; %s; %ld cores online; load average %s at the start\n",
           c.threads, date, sysconf(_SC_NPROCESSORS_ONLN), load);
    printf("# q, k, v [B=1, H=BH, S, D] (Sq = Sk = S, Dv = D), scale 1/sqrt(D), inputs U(-1,1);\n"
           "#   fwdbwd: loss = sum(out * R), R a fixed U(-1,1) input; outputs dq, dk, dv (dc_grad)\n");
    printf("# FLOP: fwd = 4*BH*S*S*D (two matmuls), causal half of it; fwdbwd = 3.5x fwd (FlashAttention's\n"
           "#   convention: backward = 2.5x forward)\n");
    printf("# FMA peak (AVX-512, %d threads, best of %d; median %.1f): %.1f GFLOP/s\n", c.threads, PEAK_REPS, median,
           peak);
    printf("# ms: one dc_exec_run; warm-up first, then median/min/max of reps runs (~%g s of runs, >= %d;\n"
           "#   2 when one run is longer); arena: the memory plan's peak; unf/fus: unfused ms / fused ms;\n"
           "#   max|d|: max |fused - unfused| over the outputs (MISMATCH above %g x max(1, max |unfused|));\n"
           "#   steps: fused: provider[impl] of the attention steps; unfused: steps per provider; notes: why a\n"
           "#   step's provider is not the compiler's rule's; *: the variant the compiler picks for the shape\n"
           "#   (fuse-attention's measured rule, dc_attention_fuses)\n",
           c.budget, MIN_REPS, CHECK_TOL);
    printf("%-7s %6s %5s %6s %4s %-13s %4s %9s %9s %9s %8s %6s %9s %7s %9s  %s\n", "mode", "causal", "bh", "S", "D",
           "variant", "reps", "med ms", "min ms", "max ms", "GFLOP/s", "%peak", "arena MiB", "unf/fus", "max|d|",
           "steps");
    bool ok = true;
    for (int mi = 0; mi < c.mode.n; mi++)
        for (int ci = 0; ci < c.causal.n; ci++)
            for (int bi = 0; bi < c.bh.n; bi++)
                for (int di = 0; di < c.d.n; di++)
                    for (int si = 0; si < c.s.n; si++) {
                        shape s = { (mode)c.mode.v[mi], c.causal.v[ci] != 0, c.bh.v[bi], c.s.v[si], c.d.v[di] };
                        ok &= bench_shape(&c, &s, peak);
                    }
    bench_loadavg(load, sizeof load);
    double end_peak, end_median = bench_fma_peak(PEAK_REPS, &end_peak);
    printf("# FMA peak at the end: best %.1f, median %.1f GFLOP/s; load average %s at the end; wall %.0f s\n",
           end_peak, end_median, load, dc_seconds() - t_start);
    if (!ok) fprintf(stderr, "attention: fused and unfused outputs differ (MISMATCH rows)\n");
    dc_jit_shutdown();
    dc_dnnl_shutdown();
    return ok ? 0 : 1;
}
