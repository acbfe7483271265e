/* manager.c — the pass manager: the table of passes by name, and pipelines ("cse,dce")
 * run with the options of dc_pass_opts (verify after each pass, print after one or all,
 * a table of per-pass wall times). A pipeline is checked whole (names known, none empty)
 * before any pass runs, and the graph must verify before the first pass. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "passes/passes.h"

static const dc_pass passes[] = {
    { "dce", dc_pass_dce, "remove nodes no output or update uses (inputs and params stay)" },
    { "cse", dc_pass_cse, "merge nodes computing the same value (structural hash + equality)" },
    { "fold", dc_pass_fold, "fold constant (fill) operands into fills" },
    { "simplify", dc_pass_simplify, "algebraic identities: x*1, x+0, x-x, neg(neg x), view chains, ..." },
    { "fuse-attention", dc_pass_fuse_attention,
      "matmul, scale, bias, mask, softmax, matmul into one attention node where the measured rule\n"
      "says it is faster (forward graphs)" },
    { "fuse-attention-all", dc_pass_fuse_attention_all, "fuse-attention at every match, whatever the rule says" },
    { "fuse-contraction", dc_pass_fuse_contraction,
      "conv2d/matmul/linear + bias + relu/gelu/silu + residual into one fused node" },
    { "split-reductions", dc_pass_split_reductions,
      "a reduction over leading axes 0..k as one over axes 1..k per index of axis 0, then one over\n"
      "axis 0 (its first kernel splits over the threads as its producers do)" },
    { "fuse-loops", dc_pass_fuse_loops,
      "group elementwise chains, row reductions and optimizer updates into row-kernel loop groups" },
    { "schedule-results", dc_pass_schedule_results,
      "put the result nodes of one computation (attention's out and lse, its gradients) together" },
    { "plan-memory", dc_pass_plan_memory, "liveness, in-place reuse and arena offsets (the peak)" },
};
#define N_PASSES (int)(sizeof passes / sizeof passes[0])
#define MAX_PIPELINE 64

const dc_pass *dc_passes(int *n) {
    *n = N_PASSES;
    return passes;
}

/* The pass named by the n bytes at s, or NULL. */
static const dc_pass *find_n(const char *s, size_t n) {
    for (int i = 0; i < N_PASSES; i++)
        if (strlen(passes[i].name) == n && memcmp(passes[i].name, s, n) == 0) return &passes[i];
    return NULL;
}

const dc_pass *dc_pass_find(const char *name) { return find_n(name, strlen(name)); }

/* "dce, cse, ..." into buf */
static const char *known_names(char *buf, size_t len) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < N_PASSES && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? ", " : "", passes[i].name);
    return buf;
}

/* Splits pipeline on commas into its passes; false and err on an empty or unknown name. */
static bool parse_pipeline(const char *pipeline, const dc_pass **out, int *n, char *err, size_t len) {
    char known[256];
    *n = 0;
    for (const char *s = pipeline;;) {
        const char *e = strchr(s, ',');
        size_t m = e ? (size_t)(e - s) : strlen(s);
        const dc_pass *p = find_n(s, m);
        if (m == 0) {
            snprintf(err, len, "pipeline '%s': empty pass name (known passes: %s)", pipeline,
                     known_names(known, sizeof known));
            return false;
        }
        if (!p) {
            snprintf(err, len, "pipeline '%s': unknown pass '%.*s' (known passes: %s)", pipeline,
                     (int)m, s, known_names(known, sizeof known));
            return false;
        }
        if (*n == MAX_PIPELINE) {
            snprintf(err, len, "pipeline '%s': more than %d passes", pipeline, MAX_PIPELINE);
            return false;
        }
        out[(*n)++] = p;
        if (!e) return true;
        s = e + 1;
    }
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static void print_graph(FILE *f, const dc_graph *g, const char *after) {
    char *text = dc_print(g);
    fprintf(f, "// ----- after %s -----\n%s", after, text);
    free(text);
}

static void print_times(FILE *f, const dc_pass *const *p, const double *ms, int n) {
    double total = 0;
    fprintf(f, "// ----- pass timing -----\n//   %-14s %12s\n", "pass", "wall ms");
    for (int i = 0; i < n; i++) {
        fprintf(f, "//   %-14s %12.3f\n", p[i]->name, ms[i]);
        total += ms[i];
    }
    fprintf(f, "//   %-14s %12.3f\n", "total", total);
}

bool dc_run_pipeline(dc_graph *g, const char *pipeline, const dc_pass_opts *o, char *err, size_t len) {
    const dc_pass *p[MAX_PIPELINE];
    double ms[MAX_PIPELINE];
    int n;
    char msg[DC_ERR_LEN], known[256];
    FILE *out = o->out ? o->out : stderr;
    if (!parse_pipeline(pipeline, p, &n, err, len)) return false;
    if (o->print_after && !dc_pass_find(o->print_after)) {
        snprintf(err, len, "print-after: unknown pass '%s' (known passes: %s)", o->print_after,
                 known_names(known, sizeof known));
        return false;
    }
    if (!dc_verify(g, msg, sizeof msg)) {
        snprintf(err, len, "the input graph does not verify: %s", msg);
        return false;
    }
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        if (!p[i]->fn(g, o, msg, sizeof msg)) {
            snprintf(err, len, "pass '%s' failed: %s", p[i]->name, msg);
            return false;
        }
        ms[i] = now_ms() - t0;
        if (o->verify_each && !dc_verify(g, msg, sizeof msg)) {
            snprintf(err, len, "after pass '%s': the graph does not verify: %s", p[i]->name, msg);
            return false;
        }
        if (o->print_after_all || (o->print_after && strcmp(o->print_after, p[i]->name) == 0))
            print_graph(out, g, p[i]->name);
    }
    if (o->time_passes) print_times(out, p, ms, n);
    return true;
}
