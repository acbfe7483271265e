/* test_tune.c — the tuner (codegen/tune.c) in process: the signature a choice is keyed by
 * (checked against the hand-written text), GEMM choice strings (round trip over the tuning
 * space, malformed ones refused), and dc_tune_graph on a small graph with a database of its
 * own: every distinct contraction tuned once and stored, a second run timing nothing, and the
 * program compiled from the stored choices running each contraction on its chosen provider
 * with outputs equal to the ref backend's within the GEMM's error bound; attention computations
 * tuned once each to flash-attention block sizes, which the compiled steps then use. The command line
 * (`disco tune`, --show, a second run, another CPU's features, a corrupt database) is tested in
 * tests/test_cli.c. */
#include "tests/test.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "frontend/dsl.h"
#include "oneapi/dnnl/dnnl_version.h"
#include "passes/passes.h"
#include "tests/op_util.h"

static const char GRAPH[] =
    "graph @t(%a: f32[4,9,24], %b: f32[24,20], %c: f32[20], %p: f32[3,5,7], %q: f32[3,7,6]) -> (f32[4,9,20], "
    "f32[3,5,6], f32[3,5,6]) {\n"
    "  %0 = linear %a, %b, %c : f32[4,9,20]\n"
    "  %1 = matmul %p, %q {trans_a=false, trans_b=false} : f32[3,5,6]\n"
    "  %2 = exp %p : f32[3,5,7]\n"
    "  %3 = matmul %2, %q {trans_a=false, trans_b=false} : f32[3,5,6]\n"
    "  return %0, %1, %3\n"
    "}\n";

static dc_graph *graph(void) {
    char err[DC_ERR_LEN];
    dc_graph *g = dc_parse(GRAPH, strlen(GRAPH), "tune_graph", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    return g;
}

TEST(tune_signature) {
    dc_graph *g = graph();
    if (!g) return;
    char sig[DC_TUNE_SIG_LEN], want[DC_TUNE_SIG_LEN];
    int lin = -1, mm = -1, ex = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op == DC_OP_LINEAR) lin = i;
        if (g->nodes[i].op == DC_OP_MATMUL && mm < 0) mm = i;
        if (g->nodes[i].op == DC_OP_EXP) ex = i;
    }
    CHECK(dc_tune_signature(g, lin, sig, sizeof sig));
    snprintf(want, sizeof want, "linear f32[4,9,24], f32[24,20], f32[20] -> f32[4,9,20] threads=%d onednn=%d.%d.%d",
             omp_get_max_threads(), DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR, DNNL_VERSION_PATCH);
    CHECK_STR_EQ(sig, want);
    CHECK(dc_tune_signature(g, mm, sig, sizeof sig));
    snprintf(want, sizeof want,
             "matmul f32[3,5,7], f32[3,7,6] -> f32[3,5,6] {trans_a=false, trans_b=false} threads=%d onednn=%d.%d.%d",
             omp_get_max_threads(), DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR, DNNL_VERSION_PATCH);
    CHECK_STR_EQ(sig, want);
    CHECK(!dc_tune_signature(g, ex, sig, sizeof sig)); /* not a contraction */
    CHECK(!dc_tune_signature(g, mm, sig, 20));           /* does not fit */
    dc_graph_free(g);
}

TEST(tune_choice_text) {
    const dc_gemm_space *sp = &dc_gemm_tuning_space;
    for (int t = 0; t < sp->n_tiles; t++)
        for (int l = 0; l < sp->n_lanes; l++) {
            dc_gemm_spec s = dc_gemm_spec_of(t, sp->lanes[l], sp->kc[t % sp->n_kc], sp->mc[t % sp->n_mc],
                                             sp->nc[t % sp->n_nc], sp->unroll[t % sp->n_unroll],
                                             sp->prefetch[t % sp->n_prefetch], sp->pack_a[t % 2]),
                         back;
            char text[200];
            dc_gemm_choice_text(&s, text, sizeof text);
            CHECK_MSG(dc_gemm_choice_parse(text, &back) && memcmp(&s, &back, sizeof s) == 0, "'%s'", text);
        }
    dc_gemm_spec s;
    CHECK(dc_gemm_choice_parse("jit mr=4 nr=64 kc=256 mc=64 nc=256 unroll=4 prefetch=0 lanes=16 pack_a=1", &s));
    CHECK(s.mr == 4 && s.nr == 64 && s.kc == 256 && s.mc == 64 && s.nc == 256 && s.unroll == 4 && s.lanes == 16 && s.pack_a);
    static const char *const bad[] = {
        "dnnl", "jit", "",
        "jit mr=4 nr=64 kc=256 mc=64 nc=256 unroll=4 prefetch=0 lanes=16 pack_a=1 x",
        "jit mr=4 nr=64 kc=256 mc=64 nc=256 unroll=4 prefetch=0 lanes=16 pack_a=2",
        "jit mr=9 nr=64 kc=256 mc=63 nc=256 unroll=4 prefetch=0 lanes=16 pack_a=1", /* 41 registers */
        "jit mr=4 nr=24 kc=256 mc=64 nc=256 unroll=4 prefetch=0 lanes=16 pack_a=1",
        "jit mr=4 nr=64 kc=256 mc=64 nc=256 unroll=4 prefetch=0 lanes=12 pack_a=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK_MSG(!dc_gemm_choice_parse(bad[i], &s), "'%s'", bad[i]);
}

static const char *db_lookup(void *ctx, const char *signature) { return dc_tune_db_lookup(ctx, signature); }

static dc_exec *compile_run(const dc_graph *g, dc_backend b, dc_choose_fn choose, void *ctx) {
    char err[DC_ERR_LEN];
    dc_exec *e = dc_compile_choosing(g, 0, b, choose, ctx, NULL, err, sizeof err);
    CHECK_MSG(e != NULL, "%s", err);
    if (!e) return NULL;
    CHECK(tu_set_uniform_inputs(e, g, 5));
    CHECK_MSG(dc_exec_run(e, err, sizeof err), "%s", err);
    return e;
}

TEST(tune_graph_tunes_once_and_compiles_the_choices) {
    if (dc_jit_target_lanes(NULL) < 8) return;
    dc_graph *g = graph();
    if (!g) return;
    char dir[] = "/tmp/disco_tune_testXXXXXX", path[64], err[DC_ERR_LEN];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/tune.db", dir);
    dc_tune_db *db = dc_tune_db_open(path, err, sizeof err);
    CHECK_MSG(db != NULL, "%s", err);
    if (!db) return;
    dc_tune_report r;
    CHECK_MSG(dc_tune_graph(g, db, &(dc_tune_options){ 0 }, &r, err, sizeof err), "%s", err);
    /* linear, and the two matmuls of one signature (the graph has not been through fuse-loops:
     * the exp is no loop kernel) */
    CHECK_EQ_INT(r.kernels, 2);
    CHECK_EQ_INT(r.tuned, 2);
    CHECK_EQ_INT(r.cached, 0);
    CHECK_EQ_INT(r.jit + r.dnnl + r.ref, 2);
    CHECK(r.timed_runs > 0);
    dc_tune_db_free(db);
    db = dc_tune_db_open(path, err, sizeof err);
    CHECK_MSG(db != NULL && dc_tune_db_get_stats(db).entries == 2, "the saved database");
    if (!db) return;
    CHECK(dc_tune_graph(g, db, &(dc_tune_options){ 0 }, &r, err, sizeof err));
    CHECK_EQ_INT(r.tuned, 0);
    CHECK_EQ_INT(r.cached, 2);
    CHECK_EQ_INT(r.timed_runs, 0);
    dc_exec *ref = compile_run(g, DC_BACKEND_REF, NULL, NULL), *tuned = compile_run(g, DC_BACKEND_AUTO, db_lookup, db);
    if (ref && tuned) {
        int n;
        const dc_step *st = dc_exec_steps(tuned, &n);
        for (int k = 0; k < n; k++) {
            char sig[DC_TUNE_SIG_LEN];
            if (!dc_tune_signature(g, st[k].node, sig, sizeof sig)) continue;
            const char *choice = dc_tune_db_lookup(db, sig);
            CHECK_MSG(choice && strncmp(choice, st[k].provider, strlen(st[k].provider)) == 0, "step %d: %s for choice %s",
                      k, st[k].provider, choice ? choice : "(none)");
        }
        for (int o = 0; o < 3; o++) {
            const dc_tensor *a = dc_exec_output(ref, o), *b = dc_exec_output(tuned, o);
            for (int64_t k = 0; k < dc_numel(&a->type.shape); k++)
                CHECK_NEAR(tu_get(b, k), tu_get(a, k), 1e-5, 1e-5);
        }
    }
    dc_exec_free(ref);
    dc_exec_free(tuned);
    dc_tune_db_free(db);
    dc_graph_free(g);
    unlink(path);
    rmdir(dir);
}

/* out, lse of an unmasked attention (2 heads, 20 queries, 30 keys, D 8) and its dq, dk, dv:
 * two attention computations, through the compiler's pipeline */
static dc_graph *attention_graph(void) {
    dc_graph *g = dc_graph_new("tune_attention");
    dc_t q = dc_input(g, "q", DC_F32, 4, ((int64_t[]){ 1, 2, 20, 8 }));
    dc_t k = dc_input(g, "k", DC_F32, 4, ((int64_t[]){ 1, 2, 30, 8 }));
    dc_t v = dc_input(g, "v", DC_F32, 4, ((int64_t[]){ 1, 2, 30, 8 }));
    dc_t r = dc_input(g, "r", DC_F32, 4, ((int64_t[]){ 1, 2, 20, 8 }));
    dc_t out = dc_attention(g, q, k, v, DC_NONE, .scale = 0.5f);
    dc_t lse = dc_attention(g, q, k, v, DC_NONE, .scale = 0.5f, .lse = true);
    dc_output(g, out, "out");
    dc_output(g, lse, "lse");
    static const char *const names[3] = { "dq", "dk", "dv" };
    for (int w = 0; w < 3; w++) dc_output(g, dc_attention_bwd(g, q, k, v, DC_NONE, out, r, lse, w, .scale = 0.5f), names[w]);
    char err[DC_ERR_LEN];
    CHECK_MSG(dc_run_pipeline(g, dc_pipeline(DC_BACKEND_AUTO), &(dc_pass_opts){ 0 }, err, sizeof err), "%s", err);
    return g;
}

static const char *fixed(void *ctx, const char *signature) {
    (void)signature;
    return ctx;
}

/* The program of choose against the ref backend's: every output within the flash kernels'
 * tolerance (tests/test_attention.c), and each flash step's impl naming the chosen blocks. */
static void check_attention_program(const dc_graph *g, dc_choose_fn choose, void *ctx) {
    dc_exec *ref = compile_run(g, DC_BACKEND_REF, NULL, NULL), *e = compile_run(g, DC_BACKEND_AUTO, choose, ctx);
    if (ref && e) {
        int n, flash = 0;
        const dc_step *st = dc_exec_steps(e, &n);
        for (int k = 0; k < n; k++) {
            char sig[DC_TUNE_SIG_LEN], want[32];
            if (strncmp(st[k].impl, "flash", 5) != 0) continue;
            flash++;
            int first = st[k].node;
            while (first > 0 && dc_op_multi_result(g->nodes[first - 1].op) && dc_results_last(g, first - 1) == st[k].node) first--;
            CHECK(dc_tune_signature(g, first, sig, sizeof sig));
            int64_t bq, bk;
            CHECK(dc_attn_choice_parse(choose(ctx, sig), &bq, &bk));
            snprintf(want, sizeof want, " bq%lld bk%lld ", (long long)bq, (long long)bk);
            CHECK_MSG(strstr(st[k].impl, want) != NULL, "step %d: '%s' for choice %s", k, st[k].impl, choose(ctx, sig));
        }
        CHECK_EQ_INT(flash, 2);
        for (int o = 0; o < g->n_outputs; o++) {
            const dc_tensor *a = dc_exec_output(ref, o), *b = dc_exec_output(e, o);
            for (int64_t k = 0; k < dc_numel(&a->type.shape); k++) CHECK_NEAR(tu_get(b, k), tu_get(a, k), 1e-4, 1e-3);
        }
    }
    dc_exec_free(ref);
    dc_exec_free(e);
}

/* Attention computations are tuned once each (not once per result node) to a flash choice,
 * and programs compiled from stored or forced choices run those blocks with the ref's results. */
TEST(tune_attention_blocks) {
    if (dc_jit_target_lanes(NULL) < 8) return;
    char text[64];
    int64_t bq, bk;
    dc_attn_choice_text(32, 48, text, sizeof text);
    CHECK_STR_EQ(text, "flash bq=32 bk=48");
    CHECK(dc_attn_choice_parse(text, &bq, &bk) && bq == 32 && bk == 48);
    static const char *const bad[] = { "flash", "flash bq=0 bk=64", "flash bq=64 bk=64 x", "jit bq=64 bk=64", "dnnl" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK_MSG(!dc_attn_choice_parse(bad[i], &bq, &bk), "'%s'", bad[i]);
    dc_graph *g = attention_graph();
    char dir[] = "/tmp/disco_tune_testXXXXXX", path[64], err[DC_ERR_LEN];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/tune.db", dir);
    dc_tune_db *db = dc_tune_db_open(path, err, sizeof err);
    CHECK_MSG(db != NULL, "%s", err);
    dc_tune_report r;
    bool tuned = db && dc_tune_graph(g, db, &(dc_tune_options){ 0 }, &r, err, sizeof err);
    CHECK_MSG(tuned, "%s", err);
    if (tuned) {
        CHECK_EQ_INT(r.kernels, 2);
        CHECK_EQ_INT(r.jit, 2);
        check_attention_program(g, db_lookup, db);
    }
    check_attention_program(g, fixed, "flash bq=16 bk=32");
    dc_tune_db_free(db);
    dc_graph_free(g);
    unlink(path);
    rmdir(dir);
}

/* exp of a [256,256] value (split by the work rule) and of a [6,8] one (not), each added to
 * itself: two loop kernels */
static const char LOOPS[] = "graph @l(%a: f32[256,256], %b: f32[6,8]) -> (f32[256,256], f32[6,8]) {\n"
                            "  %0 = exp %a : f32[256,256]\n"
                            "  %1 = add %0, %0 : f32[256,256]\n"
                            "  %2 = exp %b : f32[6,8]\n"
                            "  %3 = add %2, %2 : f32[6,8]\n"
                            "  return %1, %3\n"
                            "}\n";

/* Loop kernels the work rule splits are tuned in the program to a split mode each (the others
 * keep the rule); programs compiled from the stored or forced modes run their steps so, with
 * outputs bitwise equal to the rule's. */
TEST(tune_loops_in_the_program) {
    if (dc_jit_target_lanes(NULL) < 8) return;
    char err[DC_ERR_LEN];
    dc_graph *g = dc_parse(LOOPS, strlen(LOOPS), "loops", err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    if (!g) return;
    CHECK_MSG(dc_run_pipeline(g, dc_pipeline(DC_BACKEND_AUTO), &(dc_pass_opts){ 0 }, err, sizeof err), "%s", err);
    CHECK(dc_tune_loop_choice("loop split") == DC_SPLIT_ALWAYS && dc_tune_loop_choice("loop serial") == DC_SPLIT_NEVER &&
          dc_tune_loop_choice(NULL) == DC_SPLIT_RULE && dc_tune_loop_choice("loop") == DC_SPLIT_RULE);
    char dir[] = "/tmp/disco_tune_testXXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/tune.db", dir);
    dc_tune_db *db = dc_tune_db_open(path, err, sizeof err);
    dc_tune_report r;
    bool tuned = db && dc_tune_graph(g, db, &(dc_tune_options){ 0 }, &r, err, sizeof err);
    CHECK_MSG(tuned, "%s", err);
    if (tuned) { /* the [256,256] kernel: the rule keeps the [6,8] one on one thread */
        CHECK_EQ_INT(r.kernels, 1);
        CHECK_EQ_INT(r.tuned, 1);
    }
    dc_exec *rule = compile_run(g, DC_BACKEND_AUTO, NULL, NULL);
    const struct { dc_choose_fn f; void *ctx; } progs[3] = { { db_lookup, db }, { fixed, "loop serial" }, { fixed, "loop split" } };
    for (int p = 0; p < 3 && rule && tuned; p++) {
        dc_exec *e = compile_run(g, DC_BACKEND_AUTO, progs[p].f, progs[p].ctx);
        if (!e) continue;
        int n, loops = 0;
        const dc_step *st = dc_exec_steps(e, &n);
        for (int k = 0; k < n; k++) {
            char sig[DC_TUNE_SIG_LEN];
            if (!dc_tune_loop_signature(&st[k], sig, sizeof sig)) continue;
            loops++;
            dc_split_mode want = dc_tune_loop_choice(progs[p].f(progs[p].ctx, sig));
            CHECK_MSG(st[k].split == want, "program %d step %d: mode %d, want %d", p, k, (int)st[k].split, (int)want);
            if (p > 0 || st[k].work >= DC_PAR_MIN_WORK) CHECK(want != DC_SPLIT_RULE && dc_step_splits(&st[k]) == (want == DC_SPLIT_ALWAYS));
            else CHECK(want == DC_SPLIT_RULE && !dc_step_splits(&st[k]));
        }
        CHECK_EQ_INT(loops, 2);
        for (int o = 0; o < 2; o++) {
            const dc_tensor *a = dc_exec_output(rule, o), *b = dc_exec_output(e, o);
            CHECK(memcmp(a->data, b->data, (size_t)dc_numel(&a->type.shape) * sizeof(float)) == 0);
        }
        dc_exec_free(e);
    }
    dc_exec_free(rule);
    dc_tune_db_free(db);
    dc_graph_free(g);
    unlink(path);
    rmdir(dir);
}
