/* test_trace.c — profile and trace of runtime programs: $DISCO_TRACE gives a Chrome trace that
 * Python's json module parses, with exactly one "X" event per executed step, in order, named
 * after the step's op and node, with its provider and impl, across two executors; an
 * unwritable trace path is an error naming DISCO_TRACE; the profile table lists every step
 * with its call count; `disco run --profile`, `--backend` and $DISCO_BACKEND from the command
 * line (bad values exit 2 naming the value and the choices, jit exits 1). */
#include "tests/test.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/codegen.h"

static const char *disco_bin(void) {
    const char *d = getenv("DISCO");
    return d && *d ? d : "build/disco";
}

/* Runs the shell command; returns its exit status and its stdout+stderr in *out (malloc'd). */
static int shell(const char *cmd, char **out) {
    char path[64], full[2048];
    snprintf(path, sizeof path, "/tmp/disco_trace_sh_%d.txt", (int)getpid());
    snprintf(full, sizeof full, "%s >%s 2>&1", cmd, path);
    int st = system(full);
    *out = dc_test_read_file(path, NULL);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The trace at path parsed by Python's json module, one line per "X" event:
 * "NAME|CAT|NODE|IMPL|TID", after checking every field's type; "BAD ..." if it is not. */
static char *events_of(const char *path) {
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,sys\n"
             "d = json.load(open(sys.argv[1]))\n"
             "for e in d[\"traceEvents\"]:\n"
             "    ok = e[\"ph\"] == \"X\" and isinstance(e[\"ts\"], (int, float)) and e[\"dur\"] >= 0 and "
             "isinstance(e[\"pid\"], int)\n"
             "    print((\"%%s|%%s|%%s|%%s|%%d\" %% (e[\"name\"], e[\"cat\"], e[\"args\"][\"node\"], "
             "e[\"args\"][\"impl\"], e[\"tid\"])) if ok else \"BAD %%s\" %% e)' %s",
             path);
    int st = shell(cmd, &out);
    CHECK_MSG(st == 0, "python could not read the trace %s: %s", path, out ? out : "");
    return out;
}

static dc_graph *golden(const char *path) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = dc_parse_file(path, err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    return g;
}

/* Appends the lines of `runs` runs of e's steps as events_of prints them, without the tid. */
static void expected_events(dc_exec *e, const dc_graph *g, int runs, dc_strbuf *b) {
    int n;
    const dc_step *s = dc_exec_steps(e, &n);
    for (int r = 0; r < runs; r++)
        for (int i = 0; i < n; i++) {
            char label[64];
            dc_node_label(g, s[i].node, label, sizeof label);
            dc_sb_printf(b, "%s %s|%s|%s|%s\n", dc_op_name(g->nodes[s[i].node].op), label, s[i].provider, label,
                         s[i].impl);
        }
}

/* Cuts the "|TID" off every line of text, storing the tids; returns the number of lines. */
static int split_tids(char *text, int *tids, int max) {
    int n = 0;
    for (char *line = text; text && *line && n < max; n++) {
        char *end = strchr(line, '\n'), *bar = NULL;
        for (char *p = line; end && p < end; p++)
            if (*p == '|') bar = p;
        if (!bar) break;
        tids[n] = atoi(bar + 1);
        memmove(bar, end, strlen(end) + 1);
        line = bar + 1;
    }
    return n;
}

TEST(trace_has_one_event_per_executed_step) {
    char path[64], err[DC_ERR_LEN] = "";
    snprintf(path, sizeof path, "/tmp/disco_trace_%d.json", (int)getpid());
    dc_graph *g = golden("tests/ir/conv_block.dcir"), *h = golden("tests/ir/mlp.dcir");
    setenv("DISCO_TRACE", path, 1);
    dc_exec *e = g ? dc_compile(g, 0, DC_BACKEND_AUTO, err, sizeof err) : NULL;
    dc_exec *f = h ? dc_compile(h, 0, DC_BACKEND_REF, err, sizeof err) : NULL;
    unsetenv("DISCO_TRACE");
    CHECK_MSG(e && f, "%s", err);
    if (e && f) {
        for (int r = 0; r < 3; r++) CHECK(dc_exec_run(e, err, sizeof err));
        CHECK(dc_exec_run(f, err, sizeof err));
        char *empty = events_of(path); /* the executors began an empty trace */
        CHECK_STR_EQ(empty, "");
        free(empty);
        dc_strbuf want = { 0 };
        int n_e, n_f, tids[256];
        dc_exec_steps(e, &n_e);
        dc_exec_steps(f, &n_f);
        expected_events(e, g, 3, &want);
        dc_exec_free(e); /* writes e's events */
        e = NULL;
        char *got = events_of(path);
        CHECK_EQ_INT(split_tids(got, tids, 256), 3 * n_e);
        CHECK_STR_EQ(got, want.buf);
        free(got);
        expected_events(f, h, 1, &want);
        dc_exec_free(f); /* adds f's */
        f = NULL;
        got = events_of(path);
        CHECK_EQ_INT(split_tids(got, tids, 256), 3 * n_e + n_f);
        CHECK_STR_EQ(got, want.buf);
        for (int i = 0; i < 3 * n_e + n_f; i++) CHECK_EQ_INT(tids[i], tids[0] + (i >= 3 * n_e));
        free(got);
        free(want.buf);
    }
    dc_exec_free(e);
    dc_exec_free(f);
    dc_trace_end();
    unlink(path);
    dc_graph_free(g);
    dc_graph_free(h);
}

TEST(trace_to_an_unwritable_path_is_an_error) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = golden("tests/ir/mlp.dcir");
    if (!g) return;
    setenv("DISCO_TRACE", "/nonexistent/dir/t.json", 1);
    dc_exec *e = dc_compile(g, 0, DC_BACKEND_AUTO, err, sizeof err);
    unsetenv("DISCO_TRACE");
    CHECK(e == NULL);
    CHECK_MSG(strstr(err, "DISCO_TRACE: /nonexistent/dir/t.json"), "err: %s", err);
    dc_exec_free(e);
    dc_trace_end();
    dc_graph_free(g);
}

TEST(profile_table_lists_every_step) {
    char err[DC_ERR_LEN] = "";
    dc_graph *g = golden("tests/ir/conv_block.dcir");
    if (!g) return;
    dc_exec *e = dc_compile(g, 0, DC_BACKEND_AUTO, err, sizeof err);
    CHECK_MSG(e != NULL, "%s", err);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (e && f) {
        for (int r = 0; r < 2; r++) CHECK(dc_exec_run(e, err, sizeof err));
        dc_exec_print_profile(e, f);
        fclose(f);
        f = NULL;
        int n;
        const dc_step *s = dc_exec_steps(e, &n);
        const char *line = strchr(text, '\n');
        CHECK(strncmp(text, " step  node", 11) == 0);
        for (int i = 0; i < n && line; i++) {
            char label[64];
            int step, calls;
            char node[64], op[64], prov[64], impl[96];
            int got = sscanf(line + 1, "%d %63s %63s %63s %95s", &step, node, op, prov, impl);
            CHECK_EQ_INT(got, 5);
            CHECK_EQ_INT(step, i);
            CHECK_STR_EQ(node, dc_node_label(g, s[i].node, label, sizeof label));
            CHECK_STR_EQ(op, dc_op_name(g->nodes[s[i].node].op));
            CHECK_STR_EQ(prov, s[i].provider);
            /* calls is the fourth column from the end (the impl may hold spaces) */
            const char *end = strchr(line + 1, '\n'), *p = end;
            for (int col = 0; p && col < 4; col++) {
                while (p > line && p[-1] == ' ') p--;
                while (p > line && p[-1] != ' ') p--;
            }
            CHECK(p && sscanf(p, "%d", &calls) == 1 && calls == 2);
            line = strchr(line + 1, '\n');
        }
        char total[64];
        snprintf(total, sizeof total, "\ntotal: %d steps, ", n);
        CHECK_MSG(strstr(text, total), "no total line in:\n%s", text);
    }
    if (f) fclose(f);
    free(text);
    dc_exec_free(e);
    dc_graph_free(g);
}

TEST(cli_run_profile_backend_and_trace) {
    char cmd[1024], *out = NULL, path[64];
    snprintf(cmd, sizeof cmd, "%s run tests/ir/conv_block.dcir --backend auto --no-passes --profile", disco_bin());
    CHECK_EQ_INT(shell(cmd, &out), 0);
    CHECK_MSG(out && strstr(out, "y: f32[2,4,4,8]") && strstr(out, "conv2d             dnnl") &&
                  strstr(out, "total: 7 steps"), "output:\n%s", out ? out : "");
    free(out);
    /* the run pipeline: conv + bias fused on oneDNN, the silu a JIT kernel */
    snprintf(cmd, sizeof cmd, "%s run tests/ir/conv_block.dcir --backend auto --profile", disco_bin());
    CHECK_EQ_INT(shell(cmd, &out), 0);
    CHECK_MSG(out && strstr(out, "fused_conv2d       dnnl") && strstr(out, "silu               jit") &&
                  strstr(out, "total: 4 steps"), "output:\n%s", out ? out : "");
    free(out);

    snprintf(path, sizeof path, "/tmp/disco_trace_cli_%d.json", (int)getpid());
    snprintf(cmd, sizeof cmd, "DISCO_TRACE=%s DISCO_BACKEND=ref %s run tests/ir/mlp.dcir --no-passes", path, disco_bin());
    CHECK_EQ_INT(shell(cmd, &out), 0);
    free(out);
    out = events_of(path);
    CHECK_STR_EQ(out, "linear %2|ref|%2|ref|1\nsilu %3|ref|%3|ref|1\nlinear %6|ref|%6|ref|1\nmse %7|ref|%7|ref|1\n");
    free(out);
    snprintf(cmd, sizeof cmd, "DISCO_TRACE=/nonexistent/t.json %s run tests/ir/mlp.dcir", disco_bin());
    CHECK_EQ_INT(shell(cmd, &out), 1);
    CHECK_MSG(out && strstr(out, "DISCO_TRACE: /nonexistent/t.json"), "output:\n%s", out ? out : "");
    free(out);
    unlink(path);

    const char *bad[][2] = {
        { "", "run tests/ir/mlp.dcir --backend cuda" },
        { "DISCO_BACKEND=cuda", "run tests/ir/mlp.dcir" },
        { "DISCO_BACKEND=cuda", "train fmnist-mlp --steps 1" },
        { "", "train fmnist-mlp --backend=x" },
    };
    const char *want[] = {
        "disco run: --backend takes auto, ref, dnnl or jit, got 'cuda'",
        "disco run: DISCO_BACKEND='cuda' names no backend (choose auto, ref, dnnl or jit)",
        "disco train: DISCO_BACKEND='cuda' names no backend (choose auto, ref, dnnl or jit)",
        "disco train: --backend takes auto, ref, dnnl or jit, got 'x'",
    };
    for (int i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, "%s %s %s", bad[i][0], disco_bin(), bad[i][1]);
        int st = shell(cmd, &out);
        CHECK_MSG(st == 2, "'%s' exited %d", cmd, st);
        CHECK_MSG(out && strstr(out, want[i]), "'%s' printed:\n%s", cmd, out ? out : "");
        free(out);
    }
}
