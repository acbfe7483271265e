/* overhead.c — issue 10 item 6's per-step overhead benchmark: chains of 200 elementwise ops
 * (neg and add, alternating), written as IR text, planned (plan-memory) and compiled with
 * dc_compile under the jit backend without fusion, so each op is a range kernel step of its
 * own. Each chain runs under both mechanisms of the executor in the same invocation,
 * alternating: each split step in an OpenMP parallel region of its own (before issue 10,
 * dc_exec_share_regions(e, false)) and all the steps in one region with barriers between them
 * (the default). Prints microseconds per step for each, the kernels' own time per step (each
 * step's kernel called alone over its whole range on one thread, divided by the thread count
 * for the steps the executor splits: the time of perfect splitting, no OpenMP), the overhead
 * per step (the time per step minus the kernels' time) and the cost of an empty parallel
 * region and of a barrier measured in the same run; checks that both mechanisms give the same
 * bits. Every figure is a median of REPS repetitions, each running the chain enough times to
 * last >= MIN_REP_SECONDS, and again the fastest repetition (the machine when nobody else
 * runs: a thread of a busy machine that waits at a barrier or a region's join may lose its
 * core for a time slice). Run from the repository root with OMP_NUM_THREADS=2. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/codegen.h"
#include "passes/passes.h"

#define STEPS 200
#define REPS 7
#define MIN_REP_SECONDS 0.05
#define TINY 256 /* floats: a step far below DC_PAR_MIN_WORK */

static void die(const char *what, const char *msg) {
    fprintf(stderr, "overhead: %s: %s\n", what, msg);
    exit(1);
}

/* A chain: STEPS ops on x (f32[n]), or, when mixed, every other one on s (f32[TINY]). */
typedef struct {
    const char *name;
    int64_t n;
    bool mixed;
} chain;

/* The IR text of c: on each of x and s, op k of that value is neg when k is even, else add of
 * the previous value and the input. */
static char *chain_text(const chain *c) {
    dc_strbuf sb = { 0 };
    dc_sb_printf(&sb, "graph @chain(%%x: f32[%lld], %%s: f32[%d]) -> (f32[%lld], f32[%d]) {\n", (long long)c->n,
                 TINY, (long long)c->n, TINY);
    char cur[2][16] = { "%x", "%s" };
    int count[2] = { 0, 0 };
    for (int k = 0; k < STEPS; k++) {
        int v = c->mixed && k % 2;
        long long len = v ? TINY : (long long)c->n;
        if (count[v]++ % 2 == 0) dc_sb_printf(&sb, "  %%%d = neg %s : f32[%lld]\n", k, cur[v], len);
        else dc_sb_printf(&sb, "  %%%d = add %s, %s : f32[%lld]\n", k, cur[v], v ? "%s" : "%x", len);
        snprintf(cur[v], sizeof cur[v], "%%%d", k);
    }
    dc_sb_printf(&sb, "  return %s, %s\n}\n", cur[0], cur[1]);
    return sb.buf;
}

/* c compiled: parsed, planned, dc_compile jit; every step a jit range kernel. */
static dc_exec *compile_chain(const chain *c, dc_graph **g) {
    char err[DC_ERR_LEN] = "";
    char *text = chain_text(c);
    *g = dc_parse(text, strlen(text), c->name, err, sizeof err);
    free(text);
    if (!*g || !dc_run_pipeline(*g, "plan-memory", &(dc_pass_opts){ 0 }, err, sizeof err)) die(c->name, err);
    dc_exec *e = dc_compile(*g, 1, DC_BACKEND_JIT, err, sizeof err);
    if (!e) die(c->name, err);
    int n;
    const dc_step *s = dc_exec_steps(e, &n);
    if (n != STEPS) die(c->name, "not one step per op");
    for (int i = 0; i < n; i++)
        if (!s[i].kernel) die(c->name, "a step is not a range kernel");
    for (int in = 0; in < 2; in++) {
        dc_tensor *t = dc_exec_value(e, dc_graph_find_input(*g, in ? "s" : "x"));
        for (int64_t k = 0; k < dc_numel(&t->type.shape); k++) ((float *)t->data)[k] = 0.25f * (float)(k % 13);
    }
    return e;
}

/* Seconds of `runs` runs of e under the mechanism `share`. */
static double time_runs(dc_exec *e, bool share, int runs) {
    char err[DC_ERR_LEN] = "";
    dc_exec_share_regions(e, share);
    double t0 = dc_seconds();
    for (int r = 0; r < runs; r++)
        if (!dc_exec_run(e, err, sizeof err)) die("run", err);
    return dc_seconds() - t0;
}

/* Whether both mechanisms leave the same bits in e's outputs. */
static bool same_bits(dc_exec *e, const dc_graph *g) {
    bool same = true;
    for (int o = 0; o < g->n_outputs; o++) {
        size_t bytes = (size_t)dc_numel(&dc_exec_output(e, o)->type.shape) * sizeof(float);
        void *copy = malloc(bytes);
        if (!copy) abort(); /* out of memory */
        time_runs(e, false, 1);
        memcpy(copy, dc_exec_output(e, o)->data, bytes);
        time_runs(e, true, 1);
        same = same && memcmp(copy, dc_exec_output(e, o)->data, bytes) == 0;
        free(copy);
    }
    return same;
}

/* Seconds per run of the kernels alone: each step's kernel over its whole range on this
 * thread, timed step by step, divided by nt for the steps the executor splits. */
static double kernels_alone(dc_exec *e, int nt) {
    int n;
    const dc_step *s = dc_exec_steps(e, &n);
    double total = 0;
    for (int i = 0; i < n; i++) {
        void *args[DC_MAX_INPUTS + 1];
        for (int k = 0; k < s[i].n_args; k++) args[k] = dc_exec_value(e, s[i].args[k])->data;
        double t0 = dc_seconds();
        s[i].kernel(args, 0, s[i].range);
        double dt = dc_seconds() - t0;
        bool split = dc_step_splits(&s[i]);
        total += split ? dt / nt : dt;
    }
    return total;
}

/* [0] medians, [1] fastest repetitions, in microseconds per step */
typedef struct { double old_us[2], new_us[2], kernel_us[2]; int split; bool same; } result;

static result measure(const chain *c) {
    dc_graph *g;
    dc_exec *e = compile_chain(c, &g);
    int nt = omp_get_max_threads(), n;
    const dc_step *s = dc_exec_steps(e, &n);
    result r = { .same = same_bits(e, g) };
    for (int i = 0; i < n; i++) r.split += dc_step_splits(&s[i]);
    time_runs(e, false, 3);
    time_runs(e, true, 3);
    int runs = 1;
    while (time_runs(e, false, runs) < MIN_REP_SECONDS) runs *= 2;
    double old_t[REPS], new_t[REPS], kern_t[REPS];
    for (int k = 0; k < REPS; k++) {
        old_t[k] = time_runs(e, false, runs) / runs;
        new_t[k] = time_runs(e, true, runs) / runs;
        double sum = 0;
        for (int q = 0; q < runs; q++) sum += kernels_alone(e, nt);
        kern_t[k] = sum / runs;
    }
    r.old_us[0] = dc_median(old_t, REPS) / STEPS * 1e6;
    r.new_us[0] = dc_median(new_t, REPS) / STEPS * 1e6;
    r.kernel_us[0] = dc_median(kern_t, REPS) / STEPS * 1e6;
    r.old_us[1] = old_t[0] / STEPS * 1e6; /* dc_median sorted them */
    r.new_us[1] = new_t[0] / STEPS * 1e6;
    r.kernel_us[1] = kern_t[0] / STEPS * 1e6;
    dc_exec_free(e);
    dc_graph_free(g);
    return r;
}

/* Microseconds of an empty parallel region (barrier true: of a barrier inside one region):
 * the median of REPS, the fastest in *best. */
static double primitive_us(bool barrier, double *best) {
    const int n = 20000;
    double t[REPS];
    for (int k = 0; k < REPS; k++) {
        double t0 = dc_seconds();
        if (barrier) {
#pragma omp parallel
            for (int i = 0; i < n; i++) {
#pragma omp barrier
            }
        } else {
            for (int i = 0; i < n; i++) {
#pragma omp parallel
                {
                    __asm__ volatile("" ::: "memory");
                }
            }
        }
        t[k] = (dc_seconds() - t0) / n * 1e6;
    }
    double m = dc_median(t, REPS);
    *best = t[0];
    return m;
}

int main(void) {
    const chain chains[] = {
        { "tiny f32[256] (no step split)", TINY, false },
        { "small f32[16384] (every step split)", 16384, false },
        { "medium f32[65536] (every step split)", 65536, false },
        { "mixed f32[16384] / f32[256] alternating", 16384, true },
    };
    enum { N_CHAINS = sizeof chains / sizeof chains[0] };
    double load[2][3];
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    if (getloadavg(load[0], 3) != 3) die("getloadavg", "failed");
    double region_best, barrier_best;
    double region = primitive_us(false, &region_best), barrier = primitive_us(true, &barrier_best);
    result res[N_CHAINS];
    for (int i = 0; i < N_CHAINS; i++) res[i] = measure(&chains[i]);
    if (getloadavg(load[1], 3) != 3) die("getloadavg", "failed");

    printf("per-step overhead of range kernel steps: %d-op chains, jit, no fusion; %d threads; medians of %d\n",
           STEPS, omp_get_max_threads(), REPS);
    printf("%s; load average %.2f %.2f %.2f at the start, %.2f %.2f %.2f at the end\n", date, load[0][0],
           load[0][1], load[0][2], load[1][0], load[1][1], load[1][2]);
    printf("empty parallel region %.2f us (fastest %.2f), barrier %.2f us (fastest %.2f), same run\n", region,
           region_best, barrier, barrier_best);
    printf("old = a region per split step; new = one region per run of kernels, barriers between steps\n\n");
    for (int m = 0; m < 2; m++) {
        printf("%s\n", m ? "\nthe fastest repetition of each:" : "medians:");
        printf("%-42s %5s %9s %9s %9s %10s %10s %5s\n", "chain", "split", "old us", "new us", "kernel us",
               "old ovh us", "new ovh us", "bits");
        for (int i = 0; i < N_CHAINS; i++) {
            const result *r = &res[i];
            printf("%-42s %5d %9.3f %9.3f %9.3f %10.3f %10.3f %5s\n", chains[i].name, r->split, r->old_us[m],
                   r->new_us[m], r->kernel_us[m], r->old_us[m] - r->kernel_us[m], r->new_us[m] - r->kernel_us[m],
                   r->same ? "same" : "DIFF");
        }
    }
    for (int i = 0; i < N_CHAINS; i++)
        if (!res[i].same) return 1;
    return 0;
}
