/* trace.c — where the time of a program's steps goes: the per-step profile table of
 * `disco run --profile`, the process's Chrome trace ($DISCO_TRACE): events handed over by
 * executors as they are freed, kept as JSON text and written atomically on every flush; the
 * monotonic clock everything is timed with, and the median benchmarks report. */
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the profile table --------------------------------------------------------------- */

void dc_exec_print_profile(dc_exec *e, FILE *f) {
    const dc_graph *g = dc_exec_graph(e);
    int n;
    const dc_step *steps = dc_exec_steps(e, &n);
    int64_t total = 0;
    int w = 4;
    for (int i = 0; i < n; i++) {
        total += dc_exec_step_time(e, i).ns;
        if ((int)strlen(steps[i].impl) > w) w = (int)strlen(steps[i].impl);
    }
    fprintf(f, "%5s  %-10s %-18s %-8s %-*s %6s %10s %10s %6s\n", "step", "node", "op", "provider", w, "impl",
            "calls", "total ms", "mean us", "%");
    for (int i = 0; i < n; i++) {
        const dc_step *s = &steps[i];
        dc_step_time t = dc_exec_step_time(e, i);
        char label[64];
        fprintf(f, "%5d  %-10s %-18s %-8s %-*s %6lld %10.3f %10.1f %6.2f\n", i,
                dc_node_label(g, s->node, label, sizeof label), dc_op_name(g->nodes[s->node].op), s->provider,
                w, s->impl, (long long)t.calls, 1e-6 * (double)t.ns,
                t.calls ? 1e-3 * (double)t.ns / (double)t.calls : 0.0,
                total ? 100.0 * (double)t.ns / (double)total : 0.0);
    }
    fprintf(f, "total: %d steps, %.3f ms\n", n, 1e-6 * (double)total);
    for (int i = 0; i < n; i++)
        if (steps[i].note[0]) {
            char label[64];
            fprintf(f, "step %d (%s %s) runs on %s: %s\n", i, dc_op_name(g->nodes[steps[i].node].op),
                    dc_node_label(g, steps[i].node, label, sizeof label), steps[i].provider, steps[i].note);
        }
}

/* ---- the Chrome trace ---------------------------------------------------------------- */

static struct {
    char *path;          /* NULL: no trace */
    dc_strbuf events;    /* the events' JSON, comma-separated */
    int64_t n;
} T;

double dc_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double dc_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

int64_t dc_trace_now_ns(void) {
    static int64_t origin = -1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (origin < 0) origin = now;
    return now - origin;
}

/* s as a JSON string literal. */
static void json_str(dc_strbuf *b, const char *s) {
    dc_sb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') dc_sb_printf(b, "\\%c", c);
        else if (c < 0x20) dc_sb_printf(b, "\\u%04x", c);
        else dc_sb_printf(b, "%c", c);
    }
    dc_sb_printf(b, "\"");
}

static bool write_trace(FILE *f, void *ctx) {
    (void)ctx;
    return fputs("{\"traceEvents\":[", f) >= 0 && (!T.events.buf || fputs(T.events.buf, f) >= 0) &&
           fputs("\n],\"displayTimeUnit\":\"ms\"}\n", f) >= 0;
}

bool dc_trace_flush(char *err, size_t len) {
    if (!T.path) return true;
    char msg[DC_ERR_LEN];
    if (dc_file_write_atomic(T.path, write_trace, NULL, msg, sizeof msg)) return true;
    snprintf(err, len, "DISCO_TRACE: %s", msg);
    return false;
}

void dc_trace_end(void) {
    free(T.path);
    free(T.events.buf);
    memset(&T, 0, sizeof T);
}

bool dc_trace_begin(const char *path, char *err, size_t len) {
    if (T.path && strcmp(T.path, path) == 0) return true;
    dc_trace_end();
    T.path = strdup(path);
    if (!T.path) abort(); /* out of memory */
    if (dc_trace_flush(err, len)) return true;
    dc_trace_end();
    return false;
}

void dc_trace_add(const char *op, const char *node, const char *provider, const char *impl, int tid,
                  int64_t start_ns, int64_t dur_ns) {
    if (!T.path) return;
    dc_strbuf *b = &T.events;
    dc_sb_printf(b, "%s\n{\"name\":", T.n++ ? "," : "");
    char name[128];
    snprintf(name, sizeof name, "%s %s", op, node);
    json_str(b, name);
    dc_sb_printf(b, ",\"cat\":");
    json_str(b, provider);
    dc_sb_printf(b, ",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%d,\"tid\":%d,\"args\":{\"node\":",
                 1e-3 * (double)start_ns, 1e-3 * (double)dur_ns, (int)getpid(), tid);
    json_str(b, node);
    dc_sb_printf(b, ",\"impl\":");
    json_str(b, impl);
    dc_sb_printf(b, "}}");
}
