/* test_progress.c — the progress display: the plain log lines written to a file (one every 5%
 * and one at the end, each with its fields), and the bar redrawn on a pseudo-terminal. */
#include "tests/test.h"

#include <fcntl.h>
#include <pty.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/runtime.h"

/* Runs steps 1..last of a total-step loop into a tmpfile; returns the lines' text (malloc'd). */
static char *plain_run(int64_t total, int64_t last) {
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f) return NULL;
    dc_progress *p = dc_progress_new("train", total, f);
    for (int64_t s = 1; s <= last; s++) dc_progress_update(p, s, 1.0 / (double)s);
    dc_progress_done(p);
    long n = ftell(f);
    char *text = calloc((size_t)n + 1, 1);
    rewind(f);
    CHECK(text && fread(text, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    return text;
}

/* Checks every line of text is "train step S/T loss L it/s R eta Ns" with S = steps[i]. */
static void check_lines(char *text, int64_t total, const int64_t *steps, int n_steps) {
    int i = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), i++) {
        long long s, t;
        double loss, rate;
        char eta[32];
        int got = sscanf(line, "train step %lld/%lld loss %lf it/s %lf eta %31s", &s, &t, &loss,
                         &rate, eta);
        CHECK_MSG(got == 5, "line '%s'", line);
        if (got != 5 || i >= n_steps) continue;
        CHECK_EQ_INT(s, steps[i]);
        CHECK_EQ_INT(t, total);
        CHECK_NEAR(loss, 1.0 / (double)steps[i], 5e-5, 0);
        CHECK(rate >= 0);
        CHECK_MSG(eta[strlen(eta) - 1] == 's' && strtol(eta, NULL, 10) >= 0, "eta '%s'", eta);
    }
    CHECK_EQ_INT(i, n_steps);
}

TEST(progress_plain_lines_every_5_percent) {
    int64_t steps[20];
    for (int k = 0; k < 20; k++) steps[k] = 120 * (k + 1);
    char *text = plain_run(2400, 2400);
    if (text) check_lines(text, 2400, steps, 20);
    free(text);
    /* stopped early at 37 of 100: lines at 5, 10, ..., 35 and the last step */
    int64_t early[8] = { 5, 10, 15, 20, 25, 30, 35, 37 };
    text = plain_run(100, 37);
    if (text) check_lines(text, 100, early, 8);
    free(text);
    /* fewer steps than parts: a line per step */
    int64_t few[3] = { 1, 2, 3 };
    text = plain_run(3, 3);
    if (text) check_lines(text, 3, few, 3);
    free(text);
}

TEST(progress_bar_on_a_terminal) {
    int master, slave;
    if (openpty(&master, &slave, NULL, NULL, NULL) != 0) {
        printf("  (skipped: no pseudo-terminal)\n");
        return;
    }
    FILE *f = fdopen(slave, "w");
    CHECK(f != NULL);
    if (f) {
        dc_progress *p = dc_progress_new("fit", 50, f);
        for (int64_t s = 1; s <= 50; s++) dc_progress_update(p, s, 0.5);
        dc_progress_done(p);
        fclose(f);
    } else {
        close(slave);
    }
    char buf[8192];
    size_t n = 0;
    fcntl(master, F_SETFL, O_NONBLOCK);
    for (ssize_t k; n < sizeof buf - 1 && (k = read(master, buf + n, sizeof buf - 1 - n)) > 0;)
        n += (size_t)k;
    buf[n] = 0;
    close(master);
    /* the first draw (step 1) and the final state; the loop is far faster than 0.1 s, so at
     * most a few redraws happen in between */
    CHECK_MSG(strstr(buf, "\rfit [..............................] 1/50 loss 0.5000 ") != NULL, "%s", buf);
    CHECK_MSG(strstr(buf, "\rfit [##############################] 50/50 loss 0.5000 ") != NULL, "%s", buf);
    CHECK(strstr(buf, " it/s ETA ") != NULL);
    int redraws = 0;
    for (char *c = buf; (c = strchr(c, '\r')); c++) redraws += c[1] == 'f';
    CHECK_MSG(redraws >= 2 && redraws <= 6, "%d redraws", redraws);
    CHECK(n >= 2 && buf[n - 1] == '\n');
}
