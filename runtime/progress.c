/* progress.c — the progress display of long loops: a bar redrawn in place on a terminal, plain
 * log lines every ~5% when the stream is a file or a pipe. Rates count from the first update,
 * so a run resumed at step 5000 reports its own speed. */
#include "runtime/runtime.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 30
#define TTY_INTERVAL 0.1   /* seconds between redraws */
#define LOG_PARTS 20       /* a plain line every 1/LOG_PARTS of total */

struct dc_progress {
    char *what;
    int64_t total;
    FILE *f;
    bool tty;
    double t0;             /* when the first step started */
    int64_t base;          /* steps done before the first update's step */
    bool started;
    int64_t step;
    double loss;
    double last_draw;      /* tty: time of the last redraw */
    int64_t next_log;      /* plain: the step of the next line */
    int64_t logged;        /* plain: the step of the last line, -1 before any */
};

dc_progress *dc_progress_new(const char *what, int64_t total, FILE *f) {
    dc_progress *p = calloc(1, sizeof *p);
    if (!p || !(p->what = strdup(what))) abort(); /* out of memory */
    p->total = total > 0 ? total : 1;
    p->f = f;
    p->tty = isatty(fileno(f));
    p->t0 = dc_seconds();
    p->last_draw = -1;
    p->logged = -1;
    return p;
}

/* Steps per second since the first update, and the seconds left at that rate (-1: unknown). */
static void rate_eta(const dc_progress *p, double *rate, double *eta) {
    double dt = dc_seconds() - p->t0;
    int64_t done = p->step - p->base;
    *rate = dt > 0 && done > 0 ? (double)done / dt : 0;
    *eta = *rate > 0 ? (double)(p->total - p->step) / *rate : -1;
    if (*eta < 0 && *rate > 0) *eta = 0;
}

/* "m:ss" or "h:mm:ss"; "?:??" when unknown. */
static const char *clock_str(double s, char *buf, size_t len) {
    if (s < 0) snprintf(buf, len, "?:??");
    else {
        long t = (long)(s + 0.5);
        if (t >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
        else snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
    }
    return buf;
}

/* " loss L", or "" when the caller has no loss to show (NAN) */
static const char *loss_str(const dc_progress *p, char *buf, size_t len) {
    if (isnan(p->loss)) buf[0] = 0;
    else snprintf(buf, len, " loss %.4f", p->loss);
    return buf;
}

/* \r what [#####.....] step/total loss L R it/s ETA m:ss, then clear to the end of the line. */
static void draw_bar(dc_progress *p) {
    double rate, eta;
    rate_eta(p, &rate, &eta);
    int64_t s = p->step < p->total ? p->step : p->total;
    int fill = (int)(s * BAR_WIDTH / p->total);
    char bar[BAR_WIDTH + 1], clk[32];
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
    bar[BAR_WIDTH] = 0;
    char loss[32];
    fprintf(p->f, "\r%s [%s] %" PRId64 "/%" PRId64 "%s %.1f it/s ETA %s\033[K", p->what, bar, p->step,
            p->total, loss_str(p, loss, sizeof loss), rate, clock_str(eta, clk, sizeof clk));
    fflush(p->f);
    p->last_draw = dc_seconds();
}

/* what step S/T loss L it/s R eta Ns */
static void log_line(dc_progress *p) {
    double rate, eta;
    rate_eta(p, &rate, &eta);
    char loss[32];
    fprintf(p->f, "%s step %" PRId64 "/%" PRId64 "%s it/s %.1f eta ", p->what, p->step, p->total,
            loss_str(p, loss, sizeof loss), rate);
    if (eta < 0) fprintf(p->f, "?\n");
    else fprintf(p->f, "%.0fs\n", eta);
    fflush(p->f);
    p->logged = p->step;
}

/* The first step at or after which the next plain line is due, given the current step. */
static int64_t next_threshold(const dc_progress *p) {
    int64_t k = p->step * LOG_PARTS / p->total + 1;
    return (k * p->total + LOG_PARTS - 1) / LOG_PARTS;
}

void dc_progress_update(dc_progress *p, int64_t step, double loss) {
    if (!p->started) {
        p->started = true;
        p->base = step > 0 ? step - 1 : 0;
        p->step = p->base;
        p->next_log = next_threshold(p);
    }
    p->step = step;
    p->loss = loss;
    if (p->tty) {
        if (step >= p->total || dc_seconds() - p->last_draw >= TTY_INTERVAL || p->last_draw < 0)
            draw_bar(p);
    } else if (step >= p->next_log) {
        log_line(p);
        p->next_log = next_threshold(p);
    }
}

void dc_progress_done(dc_progress *p) {
    if (!p) return;
    if (p->tty) {
        draw_bar(p);
        fputc('\n', p->f);
        fflush(p->f);
    } else if (p->started && p->logged != p->step) {
        log_line(p);
    }
    free(p->what);
    free(p);
}
