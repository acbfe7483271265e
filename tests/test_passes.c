/* test_passes.c — the pass manager and the dce, cse, fold, simplify passes.
 * Golden files tests/passes/NAME.dcir (`// RUN: FLAGS`, the input, `// EXPECT:` and the
 * expected `disco opt` output as comment lines) run through the library and through the
 * $DISCO binary and must match exactly. Each golden is also checked against two oracles that
 * do not trust the passes: the reference executor (the graph before and after the pipeline
 * computes the same outputs, on ordinary inputs and on inputs holding inf, NaN and -0; up to
 * rounding when the pipeline has fuse-attention, whose op sums in another order), and
 * idempotence (each pass of the pipeline, run twice, changes nothing the second time). The
 * IR goldens of tests/ir get the executor oracle under every pass; constant folding is
 * checked against the ref kernels op by op. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "ir/scalar.h"
#include "passes/passes.h"
#include "runtime/runtime.h"
#include "tests/test.h"

#define MAX_ARGS 16
#define MAX_FILES 128

static const char *disco_bin(void) {
    const char *d = getenv("DISCO");
    return d && *d ? d : "build/disco";
}

/* ---- golden files -------------------------------------------------------------------- */

typedef struct {
    char *text;              /* the whole file; the input is everything before `// EXPECT:` */
    size_t input_len;
    char *expect;            /* the expected output, comment prefixes removed */
    char *argv[MAX_ARGS];    /* the RUN line's flags (pointers into args) */
    int argc;
    char args[512];
} golden;

static void golden_free(golden *gd) {
    free(gd->text);
    free(gd->expect);
}

/* Reads path into gd; false with the reason in why. */
static bool golden_load(const char *path, golden *gd, char *why, size_t len) {
    memset(gd, 0, sizeof *gd);
    gd->text = dc_test_read_file(path, NULL);
    if (!gd->text) return snprintf(why, len, "cannot read %.200s", path), false;
    const char *run = "// RUN:", *mark = strstr(gd->text, "\n// EXPECT:\n");
    char *eol = strchr(gd->text, '\n');
    if (strncmp(gd->text, run, strlen(run)) != 0 || !eol || !mark)
        return snprintf(why, len, "%.200s: needs a first `// RUN:` line and an `// EXPECT:` line", path), false;
    snprintf(gd->args, sizeof gd->args, "%.*s", (int)(eol - gd->text - strlen(run)), gd->text + strlen(run));
    for (char *tok = strtok(gd->args, " "); tok && gd->argc < MAX_ARGS; tok = strtok(NULL, " "))
        gd->argv[gd->argc++] = tok;
    gd->input_len = (size_t)(mark - gd->text) + 1;
    const char *p = mark + strlen("\n// EXPECT:\n");
    gd->expect = malloc(strlen(p) + 1);
    if (!gd->expect) abort();
    size_t k = 0;
    while (*p) {
        if (strncmp(p, "// ", 3) == 0) p += 3;
        else if (strncmp(p, "//", 2) == 0) p += 2;
        else return snprintf(why, len, "%.200s: expected output line without `//`", path), false;
        while (*p && *p != '\n') gd->expect[k++] = *p++;
        if (*p) gd->expect[k++] = *p++;
    }
    gd->expect[k] = 0;
    return true;
}

/* The RUN flags as pass options; returns the pipeline (NULL if none). */
static const char *golden_opts(const golden *gd, dc_pass_opts *o) {
    const char *pipeline = NULL;
    for (int i = 0; i < gd->argc; i++) {
        const char *a = gd->argv[i];
        if (strncmp(a, "--passes=", 9) == 0) pipeline = a + 9;
        else if (strncmp(a, "--print-after=", 14) == 0) o->print_after = a + 14;
        else if (strcmp(a, "--print-after-all") == 0) o->print_after_all = true;
        else if (strcmp(a, "--verify-each") == 0) o->verify_each = true;
    }
    return pipeline;
}

static dc_graph *parse_input(const golden *gd, const char *path, char *why, size_t len) {
    return dc_parse(gd->text, gd->input_len, path, why, len);
}

/* What `disco opt` prints, computed through the library; NULL and why on an error. */
static char *opt_through_library(const golden *gd, const char *path, char *why, size_t len) {
    dc_graph *g = parse_input(gd, path, why, len);
    if (!g) return NULL;
    char *buf = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&buf, &n);
    dc_pass_opts o = { .out = out };
    const char *pipeline = golden_opts(gd, &o);
    bool ok = !pipeline || dc_run_pipeline(g, pipeline, &o, why, len);
    if (ok) {
        char *text = dc_print(g), *plan = dc_print_plan(g);
        fputs(text, out);
        if (plan) fputs(plan, out);
        free(text);
        free(plan);
    }
    fclose(out);
    dc_graph_free(g);
    if (!ok) free(buf);
    return ok ? buf : NULL;
}

/* stdout of `$DISCO opt path FLAGS`; NULL and why unless it exits 0. */
static char *opt_through_binary(const golden *gd, const char *path, char *why, size_t len) {
    char cmd[1024];
    int k = snprintf(cmd, sizeof cmd, "'%s' opt '%s'", disco_bin(), path);
    for (int i = 0; i < gd->argc; i++) k += snprintf(cmd + k, sizeof cmd - (size_t)k, " %s", gd->argv[i]);
    snprintf(cmd + k, sizeof cmd - (size_t)k, " 2>/dev/null");
    FILE *f = popen(cmd, "r");
    if (!f) return snprintf(why, len, "cannot run %s", cmd), NULL;
    size_t cap = 4096, n = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0)
        if ((n += r) + 1 == cap) buf = realloc(buf, cap *= 2);
    if (!buf) abort();
    buf[n] = 0;
    int st = pclose(f);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(why, len, "`%s` exited with status %d", cmd, st);
        free(buf);
        return NULL;
    }
    return buf;
}

/* "line N: got ... expected ..." for the first line where a and b differ */
static void first_difference(const char *a, const char *b, char *why, size_t len) {
    int line = 1;
    while (*a && *a == *b) line += *a == '\n', a++, b++;
    while (line > 1 && a[-1] != '\n') a--, b--;
    snprintf(why, len, "line %d:\n  got:      %.*s\n  expected: %.*s", line, (int)strcspn(a, "\n"), a,
             (int)strcspn(b, "\n"), b);
}

/* ---- the executor oracle ------------------------------------------------------------- */

/* Input element i of input k: normal values, or (specials) inf, -inf, NaN, -0 first. */
static void fill_input(dc_tensor *t, int k, bool specials) {
    int64_t n = dc_numel(&t->type.shape);
    const float special[] = { INFINITY, -INFINITY, NAN, -0.0f };
    for (int64_t i = 0; i < n; i++) {
        if (t->type.dtype == DC_I32) ((int32_t *)t->data)[i] = (int32_t)(dc_rng_u32(5, (uint64_t)k, (uint64_t)i) % 4);
        else if (specials && i < 4) ((float *)t->data)[i] = special[i];
        else ((float *)t->data)[i] = dc_rng_normal(5, (uint64_t)k, (uint64_t)i);
    }
}

/* Runs g on its generated inputs; returns copies of the outputs ([n_outputs]), NULL on error. */
static dc_tensor **run_graph(const dc_graph *g, bool specials, char *why, size_t len) {
    dc_exec *e = dc_exec_new(g, 11, why, len);
    if (!e) return NULL;
    bool ok = true;
    for (int k = 0; k < dc_graph_n_inputs(g) && ok; k++) {
        const dc_node *in = &g->nodes[dc_graph_input(g, k)];
        dc_tensor *t = dc_tensor_new(&in->type);
        fill_input(t, k, specials);
        ok = dc_exec_set_input(e, in->name, t, why, len);
        dc_tensor_free(t);
    }
    dc_tensor **outs = NULL;
    if (ok && dc_exec_run(e, why, len)) {
        outs = calloc((size_t)g->n_outputs, sizeof *outs);
        if (!outs) abort();
        for (int i = 0; i < g->n_outputs; i++) {
            const dc_tensor *o = dc_exec_output(e, i);
            outs[i] = dc_tensor_new(&o->type);
            memcpy(outs[i]->data, o->data, (size_t)dc_numel(&o->type.shape) * dc_dtype_size(o->type.dtype));
        }
    }
    dc_exec_free(e);
    return outs;
}

static void free_outputs(dc_tensor **t, int n) {
    for (int i = 0; t && i < n; i++) dc_tensor_free(t[i]);
    free(t);
}

/* How the outputs before and after a pipeline must agree: bit for bit (NaN payloads aside),
 * as numbers (signed zeros equal), or up to rounding (NaN where the other is NaN, infinities
 * equal, finite values within ROUNDING_TOL relative to the larger magnitude, at least 1). */
typedef enum { SAME_BITS, SAME_NUMBERS, SAME_ROUNDED } sameness;
#define ROUNDING_TOL 1e-5

static bool same_values(const dc_tensor *a, const dc_tensor *b, sameness how) {
    if (!dc_type_eq(&a->type, &b->type)) return false;
    int64_t n = dc_numel(&a->type.shape);
    for (int64_t i = 0; i < n; i++) {
        if (a->type.dtype == DC_I32) {
            if (((int32_t *)a->data)[i] != ((int32_t *)b->data)[i]) return false;
            continue;
        }
        float x = ((float *)a->data)[i], y = ((float *)b->data)[i];
        bool eq = (isnan(x) && isnan(y)) || (x == y && (how != SAME_BITS || signbit(x) == signbit(y)));
        if (!eq && how == SAME_ROUNDED && isfinite(x) && isfinite(y))
            eq = fabs((double)x - y) <= ROUNDING_TOL * fmax(1, fmax(fabs(x), fabs(y)));
        if (!eq) return false;
    }
    return true;
}

/* Outputs of `before` and of `after` (the pipeline's result) agree, on ordinary and on special
 * inputs. simplify may turn -0 into +0 (documented), so zeros compare as numbers for it;
 * fuse-attention and split-reductions sum in another order (documented), so their results
 * agree up to rounding. */
static bool same_results(const dc_graph *before, const dc_graph *after, const char *pipeline,
                         char *why, size_t len) {
    sameness how = strstr(pipeline, "fuse-attention") || strstr(pipeline, "split-reductions") ? SAME_ROUNDED
                   : strstr(pipeline, "simplify")     ? SAME_NUMBERS
                                                      : SAME_BITS;
    for (int specials = 0; specials < 2; specials++) {
        char e1[DC_ERR_LEN], e2[DC_ERR_LEN];
        dc_tensor **a = run_graph(before, specials, e1, sizeof e1);
        dc_tensor **b = run_graph(after, specials, e2, sizeof e2);
        bool ok = (a == NULL) == (b == NULL) && before->n_outputs == after->n_outputs;
        if (!ok) snprintf(why, len, "runs differ: before: %s; after: %s", a ? "ok" : e1, b ? "ok" : e2);
        for (int i = 0; ok && a && i < before->n_outputs; i++)
            if (!same_values(a[i], b[i], how)) {
                snprintf(why, len, "after %s, output %d differs (%s inputs)", pipeline, i,
                         specials ? "inf/NaN/-0" : "ordinary");
                ok = false;
            }
        free_outputs(a, before->n_outputs);
        free_outputs(b, before->n_outputs);
        if (!ok) return false;
    }
    return true;
}

/* The pipeline keeps g's results (executor oracle); g itself is left as it was. */
static bool pipeline_keeps_results(const dc_graph *g, const char *text, size_t len_text,
                                   const char *file, const char *pipeline, char *why, size_t len) {
    dc_graph *h = dc_parse(text, len_text, file, why, len);
    if (!h) return false;
    FILE *sink = fopen("/dev/null", "w");
    dc_pass_opts o = { .verify_each = true, .out = sink };
    bool ok = dc_run_pipeline(h, pipeline, &o, why, len) && same_results(g, h, pipeline, why, len);
    fclose(sink);
    dc_graph_free(h);
    return ok;
}

/* Running pass p twice on g prints the same as running it once. */
static bool pass_idempotent(const char *text, size_t len_text, const char *file, const char *p,
                            char *why, size_t len) {
    dc_graph *g = dc_parse(text, len_text, file, why, len);
    if (!g) return false;
    dc_pass_opts o = { .verify_each = true };
    bool ok = dc_run_pipeline(g, p, &o, why, len);
    char *once = ok ? dc_print(g) : NULL;
    ok = ok && dc_run_pipeline(g, p, &o, why, len);
    char *twice = ok ? dc_print(g) : NULL;
    if (ok && strcmp(once, twice) != 0) {
        char diff[DC_ERR_LEN];
        first_difference(twice, once, diff, sizeof diff);
        snprintf(why, len, "%s is not idempotent: %s", p, diff);
        ok = false;
    }
    free(once);
    free(twice);
    dc_graph_free(g);
    return ok;
}

/* ---- the goldens --------------------------------------------------------------------- */

/* Paths of the .dcir files in dir, sorted; returns the count. */
static int dcir_files(const char *dir, char paths[][256], int max) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".dcir") == 0)
            snprintf(paths[n++], 256, "%s/%s", dir, e->d_name);
    }
    if (d) closedir(d);
    qsort(paths, (size_t)n, 256, (int (*)(const void *, const void *))strcmp);
    return n;
}

/* Each pass named in pipeline is idempotent on the input. */
static bool passes_idempotent(const golden *gd, const char *path, const char *pipeline, char *why, size_t len) {
    char names[256];
    snprintf(names, sizeof names, "%s", pipeline);
    char *save = NULL;
    for (char *p = strtok_r(names, ",", &save); p; p = strtok_r(NULL, ",", &save))
        if (!pass_idempotent(gd->text, gd->input_len, path, p, why, len)) return false;
    return true;
}

static bool check_golden(const char *path, char *why, size_t len) {
    golden gd;
    bool ok = golden_load(path, &gd, why, len);
    char *lib = ok ? opt_through_library(&gd, path, why, len) : NULL;
    char *bin = lib ? opt_through_binary(&gd, path, why, len) : NULL;
    ok = bin != NULL;
    if (ok && strcmp(lib, gd.expect) != 0) {
        first_difference(lib, gd.expect, why, len);
        ok = false;
    } else if (ok && strcmp(bin, gd.expect) != 0) {
        first_difference(bin, gd.expect, why, len);
        ok = false;
    }
    dc_pass_opts o = { 0 };
    const char *pipeline = ok ? golden_opts(&gd, &o) : NULL;
    if (pipeline) {
        dc_graph *g = parse_input(&gd, path, why, len);
        ok = g && pipeline_keeps_results(g, gd.text, gd.input_len, path, pipeline, why, len) &&
             passes_idempotent(&gd, path, pipeline, why, len);
        dc_graph_free(g);
    }
    free(lib);
    free(bin);
    golden_free(&gd);
    return ok;
}

TEST(pass_goldens) {
    static char paths[MAX_FILES][256];
    int n = dcir_files("tests/passes", paths, MAX_FILES);
    CHECK_MSG(n >= 20, "only %d golden files in tests/passes", n);
    const char *kinds[] = { "dce", "cse", "fold", "simplify", "pipeline" };
    for (int k = 0; k < 5; k++) {
        int count = 0;
        for (int i = 0; i < n; i++) count += strncmp(paths[i] + strlen("tests/passes/"), kinds[k], strlen(kinds[k])) == 0;
        CHECK_MSG(count >= (k < 4 ? 4 : 1), "%d goldens for %s", count, kinds[k]);
    }
    for (int i = 0; i < n; i++) {
        char why[4 * DC_ERR_LEN] = "";
        dc_test_case(paths[i], check_golden(paths[i], why, sizeof why), "%s", why);
    }
}

/* Every pass (and a full pipeline) keeps the results of the IR goldens of tests/ir. */
TEST(pass_semantics_ir_goldens) {
    static char paths[MAX_FILES][256];
    int n = dcir_files("tests/ir", paths, MAX_FILES);
    CHECK(n >= 4);
    const char *pipelines[] = { "dce", "cse", "fold", "simplify", "fuse-attention-all", "simplify,fold,cse,dce" };
    int n_pipelines = (int)(sizeof pipelines / sizeof pipelines[0]);
    for (int i = 0; i < n; i++) {
        size_t len_text = 0;
        char *text = dc_test_read_file(paths[i], &len_text);
        char why[DC_ERR_LEN] = "";
        dc_graph *g = text ? dc_parse(text, len_text, paths[i], why, sizeof why) : NULL;
        CHECK_MSG(g, "%s: %s", paths[i], why);
        for (int p = 0; g && p < n_pipelines; p++) {
            char name[300];
            snprintf(name, sizeof name, "%s under %s", paths[i], pipelines[p]);
            bool ok = pipeline_keeps_results(g, text, len_text, paths[i], pipelines[p], why, sizeof why);
            dc_test_case(name, ok, "%s", why);
        }
        dc_graph_free(g);
        free(text);
    }
}

/* ---- fold against the kernels -------------------------------------------------------- */

static const float f32_vals[] = { -2.5f, -1, -0.0f, 0, 0.5f, 1, 3, INFINITY, NAN };
static const float i32_vals[] = { -7, -1, 0, 1, 3, 2147483647.0f, -2147483648.0f };

/* A graph computing op on every combination of fill values (inputs of dtype dt; where takes
 * an i32 condition) as its outputs; NULL if op does not take dt. */
static dc_graph *all_combinations(dc_op op, dc_dtype dt, const dc_attr *attr) {
    const float *vals = dt == DC_F32 ? f32_vals : i32_vals;
    int nv = dt == DC_F32 ? 9 : 7, arity = dc_op_get(op)->arity;
    dc_graph *g = dc_graph_new("fold_oracle");
    char err[DC_ERR_LEN];
    int fills[2][9];
    for (int d = 0; d < 2; d++)
        for (int v = 0; v < nv; v++) {
            dc_attr a = { .scalar = { vals[v] } };
            dc_type t = { d == 0 && op == DC_OP_WHERE ? DC_I32 : dt, { 1, { 2 } } };
            fills[d][v] = dc_graph_emit(g, DC_OP_FILL, 0, NULL, &a, &t, NULL, NULL, 0, err, sizeof err);
        }
    int combos = arity == 1 ? nv : nv * nv;
    for (int c = 0; c < combos; c++) {
        int in[3] = { fills[0][c % nv], fills[1][c / nv % nv], fills[1][(c + 1) % nv] };
        int id = dc_graph_emit(g, op, arity, in, attr, NULL, NULL, NULL, 0, err, sizeof err);
        if (id < 0) {
            dc_graph_free(g);
            return NULL;
        }
        dc_graph_add_output(g, id, NULL);
    }
    return g;
}

/* Folds g; true if every output became a fill holding exactly the kernels' value, except
 * i32 values a fill's f32 attribute cannot hold, which must stay. A g the kernels cannot run
 * (an op without a kernel for that dtype) passes if fold leaves it alone. */
static bool folds_like_kernels(dc_graph *g, char *why, size_t len) {
    dc_graph *orig = dc_graph_new("orig");
    for (int i = 0; i < g->n_nodes; i++) dc_graph_append(orig, &g->nodes[i]);
    for (int i = 0; i < g->n_outputs; i++) dc_graph_add_output(orig, g->outputs[i], NULL);
    char kerr[DC_ERR_LEN];
    dc_tensor **want = run_graph(orig, false, kerr, sizeof kerr);
    dc_pass_opts o = { .verify_each = true };
    bool ok = dc_run_pipeline(g, "fold", &o, why, len);
    for (int i = 0; ok && i < g->n_outputs; i++) {
        const dc_node *n = &g->nodes[g->outputs[i]];
        int32_t v = want ? ((int32_t *)want[i]->data)[0] : 0;
        bool must_fold = want && (n->type.dtype == DC_F32 || dc_f32_to_i32((float)v) == v);
        if ((n->op == DC_OP_FILL) != must_fold) {
            snprintf(why, len, "output %d was %sfolded", i, must_fold ? "not " : "");
            ok = false;
        }
    }
    ok = ok && (!want || same_results(orig, g, "fold", why, len));
    free_outputs(want, g->n_outputs);
    dc_graph_free(orig);
    return ok;
}

TEST(pass_fold_matches_kernels) {
    int folded = 0;
    for (int op = 0; op < DC_OP_COUNT; op++) {
        if (dc_op_get(op)->kind != DC_KIND_ELEMENTWISE) continue;
        bool any = false;
        for (int dt = 0; dt < DC_NDTYPES; dt++)
            for (int v = 0; v < 2; v++) {
                dc_attr a;
                memset(&a, 0, sizeof a);
                if (op == DC_OP_POW) a.scalar.value = v ? 1.5f : 2;
                if (op == DC_OP_CAST) a.cast.to = (dc_dtype)v;
                dc_graph *g = all_combinations(op, (dc_dtype)dt, &a);
                if (!g) continue;
                char why[DC_ERR_LEN] = "", name[96];
                snprintf(name, sizeof name, "fold %s on %s (variant %d)", dc_op_name(op), dc_dtype_name(dt), v);
                dc_test_case(name, folds_like_kernels(g, why, sizeof why), "%s", why);
                dc_graph_free(g);
                any = true;
            }
        CHECK_MSG(any, "no dtype of %s could be folded", dc_op_name(op));
        folded++;
    }
    /* every elementwise op: 15 unary maps, cast, 6 arithmetic and 6 comparison ops, where and
     * straight_through, whatever their rows' order */
    CHECK(folded >= 30);
}

/* ---- the manager --------------------------------------------------------------------- */

TEST(pass_manager_table) {
    int n = 0;
    const dc_pass *p = dc_passes(&n);
    const char *want[] = { "dce", "cse", "fold", "simplify", "fuse-attention", "fuse-attention-all", "fuse-contraction", "split-reductions", "fuse-loops", "schedule-results", "plan-memory" };
    int n_want = (int)(sizeof want / sizeof want[0]);
    CHECK_EQ_INT(n, n_want);
    for (int i = 0; i < n && i < n_want; i++) {
        CHECK_STR_EQ(p[i].name, want[i]);
        CHECK(p[i].fn && p[i].summary && p[i].summary[0]);
        CHECK(dc_pass_find(want[i]) == &p[i]);
    }
    CHECK(dc_pass_find("fuse") == NULL);
    CHECK(dc_pass_find("") == NULL);
    CHECK(dc_pass_find("dce,cse") == NULL);
}

static const char small_graph[] =
    "graph @g(%x: f32[4]) -> (f32[4]) {\n"
    "  %0 = exp %x : f32[4]\n"
    "  %1 = exp %x : f32[4]\n"
    "  %2 = add %0, %1 : f32[4]\n"
    "  return %2\n"
    "}\n";

/* Runs pipeline on small_graph with o; returns whether it succeeded, err holding the message
 * and *unchanged whether the graph prints as before. */
static bool try_pipeline(const char *pipeline, const dc_pass_opts *o, char *err, size_t len, bool *unchanged) {
    char perr[DC_ERR_LEN];
    dc_graph *g = dc_parse(small_graph, sizeof small_graph - 1, "small", perr, sizeof perr);
    if (!g) abort(); /* the literal above parses */
    char *before = dc_print(g);
    bool ok = dc_run_pipeline(g, pipeline, o, err, len);
    char *after = dc_print(g);
    *unchanged = strcmp(before, after) == 0;
    free(before);
    free(after);
    dc_graph_free(g);
    return ok;
}

TEST(pass_pipeline_errors) {
    const char *bad[][2] = {
        { "cse,bogus", "unknown pass 'bogus'" }, { "", "empty pass name" },
        { "cse,,dce", "empty pass name" },       { "dce,", "empty pass name" },
        { "CSE", "unknown pass 'CSE'" },         { " cse", "unknown pass ' cse'" },
    };
    dc_pass_opts o = { 0 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[DC_ERR_LEN] = "";
        bool unchanged = false;
        CHECK_MSG(!try_pipeline(bad[i][0], &o, err, sizeof err, &unchanged), "'%s' accepted", bad[i][0]);
        CHECK_MSG(strstr(err, bad[i][1]) && strstr(err, "known passes: dce, cse, fold, simplify, fuse-attention, fuse-attention-all, fuse-contraction, split-reductions, fuse-loops, schedule-results, plan-memory"),
                  "'%s': %s", bad[i][0], err);
        CHECK_MSG(unchanged, "'%s' changed the graph before failing", bad[i][0]);
    }
    char err[DC_ERR_LEN] = "";
    bool unchanged = false;
    dc_pass_opts pa = { .print_after = "fuse" };
    CHECK(!try_pipeline("cse", &pa, err, sizeof err, &unchanged) && unchanged);
    CHECK_MSG(strstr(err, "unknown pass 'fuse'"), "%s", err);
    /* a graph that does not verify is refused before any pass runs */
    dc_graph *g = dc_parse(small_graph, sizeof small_graph - 1, "small", err, sizeof err);
    g->nodes[2].type.shape.dim[0] = 5;
    CHECK(!dc_run_pipeline(g, "dce", &o, err, sizeof err));
    CHECK_MSG(strstr(err, "does not verify") && strstr(err, "small:"), "%s", err);
    dc_graph_free(g);
}

/* Runs pipeline on small_graph with o (out captured); returns what was written. */
static char *pipeline_output(const char *pipeline, dc_pass_opts o) {
    char *buf = NULL, err[DC_ERR_LEN];
    size_t n = 0;
    o.out = open_memstream(&buf, &n);
    bool unchanged;
    bool ok = try_pipeline(pipeline, &o, err, sizeof err, &unchanged);
    fclose(o.out);
    if (!ok) dc_test_fail(__FILE__, __LINE__, "%s: %s", pipeline, err);
    return buf;
}

TEST(pass_print_and_time) {
    char *t = pipeline_output("cse,dce,cse", (dc_pass_opts){ .time_passes = true });
    CHECK_MSG(strstr(t, "// ----- pass timing -----") && strstr(t, "total") && !strstr(t, "after"), "%s", t);
    int lines = 0;
    for (const char *p = t; (p = strstr(p, "\n//   cse ")); p++) lines++;
    CHECK_EQ_INT(lines, 2);
    free(t);
    t = pipeline_output("cse,dce", (dc_pass_opts){ .print_after_all = true });
    const char *a = strstr(t, "// ----- after cse -----\ngraph @g("), *b = strstr(t, "// ----- after dce -----\ngraph @g(");
    CHECK_MSG(a && b && a < b && !strstr(t, "timing"), "%s", t);
    free(t);
    t = pipeline_output("cse,dce", (dc_pass_opts){ .print_after = "dce" });
    CHECK_MSG(!strstr(t, "after cse") && strncmp(t, "// ----- after dce -----\n", 25) == 0, "%s", t);
    free(t);
}

/* dce keeps the signature and the state even when nothing uses them. */
TEST(pass_dce_keeps_inputs_and_params) {
    static const char text[] =
        "graph @g(%a: f32[2], %b: i32[3]) -> (f32[2]) {\n"
        "  %0 = param \"p\" : f32[5] init=zeros\n"
        "  %1 = neg %a : f32[2]\n"
        "  %2 = exp %a : f32[2]\n"
        "  return %1\n"
        "}\n";
    char err[DC_ERR_LEN];
    dc_graph *g = dc_parse(text, sizeof text - 1, "t", err, sizeof err);
    dc_pass_opts o = { .verify_each = true };
    CHECK(dc_run_pipeline(g, "dce", &o, err, sizeof err));
    CHECK_EQ_INT(g->n_nodes, 4);
    CHECK_EQ_INT(dc_graph_n_inputs(g), 2);
    CHECK(g->nodes[2].op == DC_OP_PARAM && g->nodes[3].op == DC_OP_NEG);
    CHECK_EQ_INT(g->outputs[0], 3);
    dc_graph_free(g);
}

TEST(pass_opt_cli_errors) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' opt tests/passes/cse_basic.dcir --passes=cse,bogus >/dev/null 2>&1", disco_bin());
    int st = system(cmd);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 1, "unknown pass: status %d", st);
    snprintf(cmd, sizeof cmd, "'%s' opt tests/passes/cse_basic.dcir --verify-each >/dev/null 2>&1", disco_bin());
    st = system(cmd);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 2, "--verify-each without --passes: status %d", st);
    snprintf(cmd, sizeof cmd, "'%s' opt tests/passes/cse_basic.dcir --passes >/dev/null 2>&1", disco_bin());
    st = system(cmd);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 2, "--passes without a value: status %d", st);
}
