/* test_cli.c — the `disco` command line as a user meets it: help and bad flags (one parser and
 * generated help pages for every command), `train toy` through the model registry, `opt` printing
 * every golden back byte for byte, truncated and mutated files giving `FILE:LINE:COL: error:`
 * and status 1 (never a signal), `run` writing .npy outputs that numpy reads, bitwise the same
 * with 1 and 2 threads, and running the compiler's sampling pipeline (JIT kernels for an
 * elementwise chain under auto) as `disco opt --pipeline` shows it, and `disco tune` (a second
 * run timing nothing, another CPU's entries ignored, a truncated database rebuilt). The binary
 * is $DISCO (set by `make test`), else build/disco. */
#include <dirent.h>
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "runtime/runtime.h"
#include "tests/test.h"

typedef struct {
    int status;      /* exit status, or 128 + signal */
    char *out, *err; /* captured stdout and stderr */
} run_result;

static const char *disco_bin(void) {
    const char *d = getenv("DISCO");
    return d && *d ? d : "build/disco";
}

static void run_free(run_result *r) {
    free(r->out);
    free(r->err);
}

/* Runs `disco ARGS` (a NULL-terminated list) with stdout/stderr captured in temp files. */
static run_result run_disco(const char *const *args) {
    char out_path[] = "/tmp/disco_cli_outXXXXXX", err_path[] = "/tmp/disco_cli_errXXXXXX";
    int fo = mkstemp(out_path), fe = mkstemp(err_path);
    run_result r = { .status = -1 };
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        const char *argv[32] = { disco_bin() };
        for (int i = 0; args[i] && i < 30; i++) argv[i + 1] = args[i];
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    close(fo);
    close(fe);
    r.out = dc_test_read_file(out_path, NULL);
    r.err = dc_test_read_file(err_path, NULL);
    unlink(out_path);
    unlink(err_path);
    return r;
}

/* Paths of the .dcir files in tests/ir, sorted; returns the count. */
static int golden_files(char paths[][256], int max) {
    DIR *d = opendir("tests/ir");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".dcir") == 0)
            snprintf(paths[n++], 256, "tests/ir/%s", e->d_name);
    }
    if (d) closedir(d);
    qsort(paths, (size_t)n, 256, (int (*)(const void *, const void *))strcmp);
    return n;
}

/* `disco ARGS` exits 2 with stderr starting with expect. */
static void expect_usage_error(const char *const *args, const char *expect) {
    run_result r = run_disco(args);
    CHECK_EQ_INT(r.status, 2);
    CHECK_MSG(r.err && strncmp(r.err, expect, strlen(expect)) == 0, "stderr '%s', expected '%s'", r.err ? r.err : "",
              expect);
    run_free(&r);
}

TEST(cli_help_and_usage_errors) {
    run_result r = run_disco((const char *[]){ "--help", NULL });
    CHECK_EQ_INT(r.status, 0);
    CHECK(r.out && strstr(r.out, "opt") && strstr(r.out, "run"));
    run_free(&r);
    r = run_disco((const char *[]){ "run", "--help", NULL });
    CHECK_EQ_INT(r.status, 0);
    CHECK(r.out && strstr(r.out, "usage: disco run"));
    run_free(&r);
    const char *const bad[][5] = {
        { "frobnicate", NULL },
        { "opt", "--bogus", "tests/ir/mlp.dcir", NULL },
        { "opt", NULL },
        { "run", "tests/ir/mlp.dcir", "--seed", "-3" },
        { "run", "tests/ir/mlp.dcir", "--threads", "0" },
        { "run", "tests/ir/mlp.dcir", "--input", "x" },
        { "run", "tests/ir/mlp.dcir", "--seed", NULL },
    };
    const char *expect[] = {
        "disco: unknown command 'frobnicate'",
        "disco opt: unknown option '--bogus'",
        "disco opt: no input file",
        "disco run: --seed takes a non-negative integer, got '-3'",
        "disco run: --threads takes an integer from 1 to 1024, got '0'",
        "disco run: --input takes NAME=FILE.npy, got 'x'",
        "disco run: option '--seed' needs a value",
    };
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) expect_usage_error(bad[i], expect[i]);
    r = run_disco((const char *[]){ "opt", "/nonexistent/g.dcir", NULL });
    CHECK_EQ_INT(r.status, 1);
    CHECK(r.err && strstr(r.err, "/nonexistent/g.dcir"));
    run_free(&r);
}

/* Every command parses with the one table-driven parser (tools/cli.c): the same messages for an
 * unknown option and a missing value, `--opt=V` like `--opt V`, and a --help page generated
 * from the table that parses; `disco train` takes a model's own options from the registry. */
TEST(cli_every_command_one_parser) {
    static const char *const cmds[] = { "opt", "run", "train", "cache", "tune", "sample", "eval", "demo" };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        char want[128];
        snprintf(want, sizeof want, "disco %s: unknown option '--bogus'", cmds[i]);
        expect_usage_error((const char *[]){ cmds[i], "--bogus", NULL }, want);
        run_result r = run_disco((const char *[]){ cmds[i], "--help", NULL });
        snprintf(want, sizeof want, "usage: disco %s", cmds[i]);
        CHECK_EQ_INT(r.status, 0);
        CHECK_MSG(r.out && strncmp(r.out, want, strlen(want)) == 0, "%s --help: '%s'", cmds[i], r.out ? r.out : "");
        run_free(&r);
    }
    const char *const bad[][5] = {
        { "train", "fmnist-mlp", "--steps=0", NULL },
        { "train", "toy", "--latents", NULL },
        { "train", "--latents", "2", "toy", NULL },
        { "train", "toy", "--resume", "x.ckpt", NULL },
        { "train", "toy", "--usage=-1", NULL },
        { "sample", "toy", NULL },
        { "eval", "toy", "--ckpt", "x", "--w2-steps=5,0" },
        { "demo", "--backend=nope", NULL },
        { "opt", "--dot=1", "tests/ir/mlp.dcir", NULL },
        { "sample", "fmnist-disco", "--ckpt", "m", "--class=10" },
        { "sample", "fmnist-disco", "--ckpt", "m", "--sampler=ddim" },
        { "eval", "fmnist-disco", "--ckpt", "m", "--steps=5,x" },
        { "train", "fmnist-disco", "--groups=3", NULL },
        { "sample", "fmnist", "--ckpt", "m", NULL },
    };
    const char *expect[] = {
        "disco train: --steps takes a positive integer, got '0'",
        "disco train: option '--latents' needs a value",
        "disco train: unknown option '--latents'",
        "disco train: the model toy takes no --resume",
        "disco train: --usage takes a non-negative number, got '-1'",
        "disco sample: --ckpt FILE is required",
        "disco eval: --w2-steps takes up to 8 comma-separated step counts from 1 to 100000, got '5,0'",
        "disco demo: --backend takes auto, ref, dnnl or jit, got 'nope'",
        "disco opt: option '--dot' takes no value",
        "disco sample: --class takes an integer from 0 to 9, got '10'",
        "disco sample: --sampler takes euler, heun or churn, got 'ddim'",
        "disco eval: --steps takes up to 8 comma-separated numbers from 1 to 100000, got '5,x'",
        "disco train: --groups takes an integer from 1 to 2, got '3'",
        "disco sample: the models are 'toy' and 'fmnist-disco' (got 'fmnist')",
    };
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) expect_usage_error(bad[i], expect[i]);
    run_result r = run_disco((const char *[]){ "train", "--help", NULL });
    CHECK(r.out && strstr(r.out, "fmnist-mlp") && strstr(r.out, "  toy\n") && strstr(r.out, "--latents M") &&
          strstr(r.out, "--prior-steps N") && strstr(r.out, "  fmnist-disco\n"));
    run_free(&r);
    /* the image model's own sample and eval pages */
    r = run_disco((const char *[]){ "sample", "fmnist-disco", "--help", NULL });
    CHECK(r.out && strncmp(r.out, "usage: disco sample fmnist-disco", 32) == 0 && strstr(r.out, "--guidance W"));
    run_free(&r);
    r = run_disco((const char *[]){ "eval", "fmnist-disco", "--help", NULL });
    CHECK(r.out && strncmp(r.out, "usage: disco eval fmnist-disco", 30) == 0 && strstr(r.out, "--guidance-steps N"));
    run_free(&r);
    r = run_disco((const char *[]){ "sample", "fmnist-disco", "--ckpt", "/nonexistent.model", NULL });
    CHECK(r.status == 1 && r.err && strstr(r.err, "/nonexistent.model") && strstr(r.err, "cannot open"));
    run_free(&r);
}

/* `disco train toy` goes through the model registry like the other models, with its own
 * options; `disco sample toy` reads the model file it writes and prints how long sampling took. */
TEST(cli_train_toy_through_registry) {
    char dir[] = "/tmp/disco_cli_toyXXXXXX", ckpt[128], npy[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(ckpt, sizeof ckpt, "%s/toy-disco.ckpt", dir);
    snprintf(npy, sizeof npy, "%s/s.npy", dir);
    run_result r = run_disco((const char *[]){ "train", "--steps=12", "toy", "--prior-steps", "10", "--codes=4",
                                               "--out", dir, "--threads", "1", NULL });
    CHECK_MSG(r.status == 0, "disco train toy: status %d: %s", r.status, r.err ? r.err : "");
    CHECK(r.out && strstr(r.out, "1 latent(s) of 4 codes") && strstr(r.out, "12 steps") && strstr(r.out, ckpt));
    run_free(&r);
    r = run_disco((const char *[]){ "sample", "toy", "--ckpt", ckpt, "--n", "16", "--out", npy, NULL });
    CHECK_MSG(r.status == 0, "disco sample toy: status %d: %s", r.status, r.err ? r.err : "");
    /* the sampling's own time apart from compiling: prior + ODE within the total (each printed
     * to 0.0005 s), 2 * 50 - 1 denoiser calls for the default 50 Heun steps */
    double total = -1, prior = -1, ode = -1;
    long long calls = -1;
    const char *line = r.out ? strstr(r.out, "sampled 16 points in ") : NULL;
    CHECK_MSG(line && sscanf(line, "sampled 16 points in %lf s: prior %lf s, ODE %lf s (%lld denoiser calls)",
                             &total, &prior, &ode, &calls) == 4, "no timing line in: %s", r.out ? r.out : "");
    CHECK_MSG(total > 0 && ode > 0 && prior >= 0 && prior + ode <= total + 0.0015 && calls == 99,
              "implausible timing: total %g, prior %g, ODE %g, %lld calls", total, prior, ode, calls);
    run_free(&r);
    char err[DC_ERR_LEN];
    dc_tensor *t = dc_npy_read(npy, err, sizeof err);
    CHECK_MSG(t && t->type.shape.rank == 2 && t->type.shape.dim[0] == 16, "%s", t ? "wrong shape" : err);
    dc_tensor_free(t);
    char rm[200];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    CHECK(system(rm) == 0);
}

TEST(cli_opt_prints_goldens_byte_for_byte) {
    char paths[64][256];
    int n = golden_files(paths, 64);
    CHECK(n >= 3);
    for (int i = 0; i < n; i++) {
        char *want = dc_test_read_file(paths[i], NULL);
        run_result r = run_disco((const char *[]){ "opt", paths[i], NULL });
        dc_test_case(paths[i], r.status == 0 && want && r.out && strcmp(r.out, want) == 0,
                     "disco opt did not print the file back (status %d): %s", r.status, r.err ? r.err : "");
        r.status = 0;
        run_free(&r);
        free(want);
        r = run_disco((const char *[]){ "opt", "--dot", paths[i], NULL });
        CHECK_MSG(r.status == 0 && r.out && strncmp(r.out, "digraph", 7) == 0, "--dot on %s", paths[i]);
        run_free(&r);
    }
}

/* `disco opt --train --forward-passes fuse-attention-all,dce --pipeline` on the prior's forward
 * graph: the training step runs the fused attention forward and backward and keeps no [m, m]
 * value; without --forward-passes the rule keeps this short prior unfused; a graph without a
 * loss is an error naming the file. */
TEST(cli_opt_train_shows_the_fused_training_step) {
    run_result r = run_disco((const char *[]){ "opt", "tests/ir/prior_train.dcir", "--train", "--pipeline", NULL });
    CHECK_MSG(r.status == 0 && r.out && !strstr(r.out, "attention") && strstr(r.out, "softmax_bwd"),
              "status %d, stderr %s", r.status, r.err ? r.err : "");
    run_free(&r);
    r = run_disco((const char *[]){ "opt", "tests/ir/prior_train.dcir", "--train", "--forward-passes",
                                    "fuse-attention-all,dce", "--pipeline", NULL });
    CHECK_MSG(r.status == 0 && r.out && strstr(r.out, "= attention %") && strstr(r.out, "= attention_bwd %") &&
                  !strstr(r.out, "softmax_bwd") && !strstr(r.out, ",7,7]"),
              "status %d, stderr %s", r.status, r.err ? r.err : "");
    run_free(&r);
    r = run_disco((const char *[]){ "opt", "tests/ir/attention.dcir", "--train", NULL });
    CHECK_MSG(r.status == 1 && r.err && strstr(r.err, "tests/ir/attention.dcir: error: train: graph") && strstr(r.err, "'loss'"),
              "status %d, stderr %s", r.status, r.err ? r.err : "");
    run_free(&r);
    expect_usage_error((const char *[]){ "opt", "tests/ir/mlp.dcir", "--backend", "ref", NULL }, "disco opt: --backend chooses");
    expect_usage_error((const char *[]){ "opt", "tests/ir/mlp.dcir", "--forward-passes", "dce", NULL },
                       "disco opt: --forward-passes needs --train");
}

/* A corrupted copy of text: kind 0 truncates at pos, 1 flips a byte, 2 deletes one, 3 inserts
 * a random printable byte. */
static size_t corrupt(const char *text, size_t len, char *out, uint64_t seed) {
    uint64_t r = seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
    r ^= r >> 29;
    size_t pos = (size_t)(r % (len ? len : 1));
    switch ((r >> 40) % 4) {
    case 0: memcpy(out, text, pos); return pos;
    case 1: memcpy(out, text, len); out[pos] = (char)(' ' + (r >> 48) % 95); return len;
    case 2: memcpy(out, text, pos); memcpy(out + pos, text + pos + 1, len - pos - 1); return len - 1;
    default:
        memcpy(out, text, pos);
        out[pos] = (char)(' ' + (r >> 48) % 95);
        memcpy(out + pos + 1, text + pos, len - pos);
        return len + 1;
    }
}

TEST(cli_corrupt_files_give_located_errors) {
    char paths[64][256];
    int n = golden_files(paths, 64);
    char tmp[] = "/tmp/disco_cli_corruptXXXXXX.dcir";
    int fd = mkstemps(tmp, 5);
    close(fd);
    regex_t re;
    char pattern[512];
    snprintf(pattern, sizeof pattern, "^%s:[0-9]+:[0-9]+: error: ", tmp);
    regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    int bad = 0, runs = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        char *text = dc_test_read_file(paths[i], &len);
        char *buf = malloc(len + 2);
        for (uint64_t k = 0; text && k < 24; k++) {
            size_t m = corrupt(text, len, buf, k * 7919 + (uint64_t)i);
            FILE *f = fopen(tmp, "wb");
            fwrite(buf, 1, m, f);
            fclose(f);
            for (int cmd = 0; cmd < 2; cmd++) {
                run_result r = run_disco((const char *[]){ cmd ? "run" : "opt", tmp, NULL });
                runs++;
                /* opt: 0 if the corruption left a valid graph; run: 1 may also be a run-time error */
                bool ok = r.status == 0 || (r.status == 1 && r.err &&
                                            (regexec(&re, r.err, 0, NULL, 0) == 0 || cmd == 1));
                if (r.status == 1 && cmd == 0) ok = ok && regexec(&re, r.err, 0, NULL, 0) == 0;
                if (!ok) {
                    bad++;
                    dc_test_fail(__FILE__, __LINE__, "%s corrupted (%llu): disco %s: status %d: %s", paths[i],
                                 (unsigned long long)k, cmd ? "run" : "opt", r.status, r.err ? r.err : "");
                }
                run_free(&r);
            }
        }
        free(buf);
        free(text);
    }
    regfree(&re);
    unlink(tmp);
    CHECK(runs > 0 && bad == 0);
}

/* The outputs of `disco run FILE --seed 3 --threads T --out DIR`, read back; count returned. */
static int run_outputs(const char *file, const char *threads, const char *dir, dc_tensor **outs, int max) {
    run_result r = run_disco((const char *[]){ "run", file, "--seed", "3", "--threads", threads, "--out", dir, NULL });
    CHECK_MSG(r.status == 0, "disco run %s: status %d: %s", file, r.status, r.err ? r.err : "");
    int n = 0;
    for (char *line = r.out; line && (line = strstr(line, "wrote ")) && n < max; line++) {
        char path[512];
        if (sscanf(line, "wrote %511s", path) != 1) break;
        char err[DC_ERR_LEN];
        outs[n] = dc_npy_read(path, err, sizeof err);
        CHECK_MSG(outs[n], "%s", err);
        if (outs[n]) n++;
    }
    run_free(&r);
    return n;
}

TEST(cli_run_writes_npy_bitwise_reproducible) {
    char paths[64][256];
    int n = golden_files(paths, 64);
    bool numpy = system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
    if (!numpy) printf("  note: /usr/bin/python3 with numpy absent; .npy files not cross-read\n");
    for (int i = 0; i < n; i++) {
        char d1[] = "/tmp/disco_cli_runXXXXXX", d2[] = "/tmp/disco_cli_runXXXXXX";
        mkdtemp(d1);
        mkdtemp(d2);
        dc_tensor *a[16] = { 0 }, *b[16] = { 0 };
        int na = run_outputs(paths[i], "1", d1, a, 16), nb = run_outputs(paths[i], "2", d2, b, 16);
        bool same = na > 0 && na == nb;
        for (int k = 0; same && k < na; k++) {
            size_t bytes = (size_t)dc_numel(&a[k]->type.shape) * 4;
            same = dc_type_eq(&a[k]->type, &b[k]->type) && memcmp(a[k]->data, b[k]->data, bytes) == 0;
        }
        dc_test_case(paths[i], same, "outputs differ between 1 and 2 threads (or are missing)");
        if (numpy && na > 0) {
            /* numpy reads every output and reports its sum, compared with ours */
            char cmd[1024];
            snprintf(cmd, sizeof cmd,
                     "/usr/bin/python3 -c 'import numpy,glob,sys; "
                     "[print(float(numpy.load(f).astype(numpy.float64).sum())) for f in sorted(glob.glob(\"%s/*.npy\"))]'"
                     " > %s/sums.txt", d1, d1);
            CHECK(system(cmd) == 0);
            char sums_path[512];
            snprintf(sums_path, sizeof sums_path, "%s/sums.txt", d1);
            char *sums = dc_test_read_file(sums_path, NULL);
            double total_np = 0, total = 0;
            char *p = sums, *end;
            for (double v; p && (v = strtod(p, &end), end != p); p = end) total_np += v;
            for (int k = 0; k < na; k++)
                for (int64_t j = 0; j < dc_numel(&a[k]->type.shape); j++)
                    total += a[k]->type.dtype == DC_F32 ? ((float *)a[k]->data)[j] : ((int32_t *)a[k]->data)[j];
            CHECK_NEAR(total_np, total, 1e-6, 1e-9);
            free(sums);
            unlink(sums_path);
        }
        for (int k = 0; k < 16; k++) {
            dc_tensor_free(a[k]);
            dc_tensor_free(b[k]);
        }
        char rm[600];
        snprintf(rm, sizeof rm, "rm -rf %s %s", d1, d2);
        CHECK(system(rm) == 0);
    }
}

/* Whether `disco run FILE --profile ARGS...` succeeds and its profile has a step on provider jit. */
static bool run_has_jit_steps(const char *file, const char *a1, const char *a2) {
    run_result r = run_disco((const char *[]){ "run", file, "--profile", a1, a2, NULL });
    CHECK_MSG(r.status == 0, "disco run %s %s: status %d: %s", file, a1 ? a1 : "", r.status, r.err ? r.err : "");
    regex_t re;
    regcomp(&re, "^ +[0-9]+ +%[0-9]+ +[a-z_]+ +jit ", REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
    bool jit = r.status == 0 && r.out && regexec(&re, r.out, 0, NULL, 0) == 0;
    regfree(&re);
    run_free(&r);
    return jit;
}

/* `disco run` runs the compiler's pipeline for its backend, which `disco opt --pipeline
 * --print-pipeline` prints: under auto an exp/mul/add/tanh chain becomes one
 * loop group, run as a JIT kernel; --no-passes runs the graph as written (ref steps). The
 * printed pipelines are checked against the policy written out by hand. */
TEST(cli_run_uses_the_run_pipeline) {
    const char *chain = "tests/ir/elementwise_chain.dcir";
    CHECK_MSG(run_has_jit_steps(chain, "--backend", "auto"), "no jit step in the profile of disco run %s", chain);
    CHECK(!run_has_jit_steps(chain, "--no-passes", NULL));
    CHECK(run_has_jit_steps(chain, "--no-passes", "--backend=jit"));
    CHECK(run_has_jit_steps(chain, "--passes=fuse-loops,plan-memory", NULL));
    expect_usage_error((const char *[]){ "run", chain, "--passes=dce", "--no-passes", NULL },
                       "disco run: --passes and --no-passes exclude each other");
    static const struct { const char *backend, *passes; } cases[] = {
        { "auto", "fuse-attention,simplify,cse,dce,fuse-contraction,split-reductions,fuse-loops,schedule-results,plan-memory" },
        { "ref", "simplify,cse,dce,fuse-contraction,schedule-results,plan-memory" },
        { "dnnl", "simplify,cse,dce,fuse-contraction,schedule-results,plan-memory" },
        { "jit", "fuse-attention,simplify,cse,dce,fuse-contraction,split-reductions,fuse-loops,schedule-results,plan-memory" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char backend[32], want[512];
        snprintf(backend, sizeof backend, "--backend=%s", cases[i].backend);
        snprintf(want, sizeof want, "%s\n", cases[i].passes);
        run_result r = run_disco((const char *[]){ "opt", "--pipeline", backend, "--print-pipeline", NULL });
        CHECK_EQ_INT(r.status, 0);
        CHECK_STR_EQ(r.out ? r.out : "", want);
        run_free(&r);
    }
    run_result r = run_disco((const char *[]){ "opt", chain, "--pipeline", "--backend", "ref", NULL });
    CHECK_MSG(r.status == 0 && r.err && strstr(r.err, "simplify,cse,dce,fuse-contraction,schedule-results,plan-memory"),
              "disco opt --pipeline: status %d, stderr '%s'", r.status, r.err ? r.err : "");
    run_free(&r);
    expect_usage_error((const char *[]){ "opt", chain, "--passes=dce", "--pipeline", NULL },
                       "disco opt: --passes and --pipeline exclude each other");
}

/* The acceptance line, kept as a test: valgrind finds no error in `disco run` on the conv
 * block golden (skipped under the sanitizers, which valgrind cannot run beside, and where
 * valgrind is not installed). */
TEST(cli_run_valgrind_clean) {
#ifdef __SANITIZE_ADDRESS__
    printf("  note: sanitizer build; valgrind check skipped\n");
#else
    if (system("valgrind --version >/dev/null 2>&1") != 0) {
        printf("  note: valgrind not installed; check skipped\n");
        return;
    }
    char dir[] = "/tmp/disco_cli_vgXXXXXX", cmd[1024];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cmd, sizeof cmd,
             "valgrind --error-exitcode=99 -q %s run tests/ir/conv_block.dcir --out %s >%s/log 2>&1", disco_bin(),
             dir, dir);
    int st = system(cmd);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        dc_test_fail(__FILE__, __LINE__, "valgrind reported errors (status %d): see %s/log", st, dir);
        return;
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
#endif
}

static const char TUNE_GRAPH[] =
    "graph @t(%a: f32[4,9,24], %b: f32[24,20], %c: f32[20], %p: f32[3,5,7], %q: f32[3,7,6]) -> (f32[4,9,20], "
    "f32[3,5,6]) {\n"
    "  %0 = linear %a, %b, %c : f32[4,9,20]\n"
    "  %1 = matmul %p, %q {trans_a=false, trans_b=false} : f32[3,5,6]\n"
    "  return %0, %1\n"
    "}\n";

static bool contains(const char *text, const char *part) { return text && strstr(text, part); }

/* `disco tune` as a user meets it, in a cache directory of its own: a first run tunes both
 * contractions and saves tune.db, a second times nothing and says so, --show lists them,
 * another CPU's features (AVX2 only) miss every entry and tune anew while keeping the first
 * CPU's, a truncated database is refused with its file and line and rebuilt. */
TEST(cli_tune) {
    if (dc_jit_target_lanes(NULL) < 8) return;
    char dir[] = "/tmp/disco_cli_tuneXXXXXX", file[64], db[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(file, sizeof file, "%s/g.dcir", dir);
    snprintf(db, sizeof db, "%s/tune.db", dir);
    FILE *f = fopen(file, "w");
    CHECK(f && fputs(TUNE_GRAPH, f) >= 0 && fclose(f) == 0);
    char *saved = getenv("DISCO_CACHE_DIR") ? strdup(getenv("DISCO_CACHE_DIR")) : NULL;
    setenv("DISCO_CACHE_DIR", dir, 1);
    run_result r = run_disco((const char *[]){ "tune", file, NULL });
    CHECK_MSG(r.status == 0 && contains(r.out, "2 kernels") && contains(r.out, "tuned 2") && contains(r.out, db),
              "first: %d '%s' '%s'", r.status, r.out, r.err);
    run_free(&r);
    r = run_disco((const char *[]){ "tune", file, NULL });
    CHECK_MSG(r.status == 0 && contains(r.out, "nothing timed"), "second: '%s'", r.out);
    run_free(&r);
    r = run_disco((const char *[]){ "tune", "--show", NULL });
    CHECK_MSG(r.status == 0 && contains(r.out, "fused_matmul f32[4,9,24], f32[24,20], f32[20] -> f32[4,9,20]") &&
                  contains(r.out, "matmul f32[3,5,7], f32[3,7,6]"), "show: '%s'", r.out);
    run_free(&r);
    setenv("DISCO_CPU_FEATURES", "-avx512f", 1);
    r = run_disco((const char *[]){ "tune", file, NULL });
    CHECK_MSG(r.status == 0 && contains(r.out, "0 in the database; tuned 2") && contains(r.err, "another CPU"),
              "AVX2: '%s' '%s'", r.out, r.err);
    run_free(&r);
    unsetenv("DISCO_CPU_FEATURES");
    r = run_disco((const char *[]){ "tune", file, NULL });
    CHECK_MSG(r.status == 0 && contains(r.out, "nothing timed"), "back on this CPU: '%s'", r.out);
    run_free(&r);
    size_t len = 0;
    char *text = dc_test_read_file(db, &len);
    f = fopen(db, "w");
    CHECK(text && f && fwrite(text, 1, len / 2, f) == len / 2 && fclose(f) == 0);
    free(text);
    r = run_disco((const char *[]){ "tune", file, NULL });
    CHECK_MSG(r.status == 0 && contains(r.err, db) && contains(r.err, "next save replaces it") && contains(r.out, "tuned 2"),
              "truncated: '%s' '%s'", r.out, r.err);
    run_free(&r);
    r = run_disco((const char *[]){ "tune", file, NULL });
    CHECK_MSG(r.status == 0 && contains(r.out, "nothing timed"), "rebuilt: '%s' '%s'", r.out, r.err);
    run_free(&r);
    expect_usage_error((const char *[]){ "tune", NULL }, "disco tune: missing MODEL or FILE.dcir");
    r = run_disco((const char *[]){ "tune", "no-such-model", NULL });
    CHECK_MSG(r.status == 1 && contains(r.err, "'no-such-model' is neither a model"), "'%s'", r.err);
    run_free(&r);
    if (saved) setenv("DISCO_CACHE_DIR", saved, 1);
    free(saved);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}
