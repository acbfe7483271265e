/* test_demo.c — a smoke test of `disco demo` (tools/demo.c) with a tiny budget: it exits 0,
 * metrics.json holds every key the issue names for both models, the sample files are float32
 * [n,2], the PNGs are PNGs, and the mode-weight error and off-mode fraction recomputed here by
 * hand from the written samples match the JSON; bad options exit 2. The binary is $DISCO (set
 * by `make test`), else build/disco. Files live in a mkdtemp directory removed at the end. */
#include "tests/test.h"

#include <stdlib.h>
#include <unistd.h>

#include "models/disco/disco.h"

#define SMOKE_N 64

static const char *disco_bin(void) {
    const char *d = getenv("DISCO");
    return d && *d ? d : "build/disco";
}

/* The exit status of `disco ARGS` with its output discarded. */
static int run(const char *args) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s %s >/dev/null 2>&1", disco_bin(), args);
    int st = system(cmd);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The number after "key": inside the object that follows "name": in json (NAN if absent);
 * name NULL: the top level (the first occurrence). */
static double json_num(const char *json, const char *name, const char *key) {
    char pat[96];
    const char *from = json, *end = json + strlen(json);
    if (name) {
        snprintf(pat, sizeof pat, "\"%s\": {", name);
        from = strstr(json, pat);
        if (!from) return NAN;
        end = strchr(from, '}');
        if (!end) return NAN;
    }
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(from, pat);
    if (!p || p > end) return NAN;
    p += strlen(pat);
    if (strncmp(p, "null", 4) == 0) return INFINITY;   /* present, but not measured */
    return strtod(p, NULL);
}

/* Mode TV and off-mode fraction computed directly from the definitions in disco.h. */
static void by_hand(const float *pts, int64_t n, double *tv, double *off) {
    int64_t count[DC_TOY_MODES] = { 0 }, far = 0;
    for (int64_t i = 0; i < n; i++) {
        int best = 0;
        double best_d = INFINITY;
        for (int k = 0; k < DC_TOY_MODES; k++) {
            double mx = DC_TOY_RADIUS * cos(k * M_PI / 4), my = DC_TOY_RADIUS * sin(k * M_PI / 4);
            double d = hypot(pts[2 * i] - mx, pts[2 * i + 1] - my);
            if (d < best_d) best_d = d, best = k;
        }
        count[best]++;
        far += best_d > 3 * DC_TOY_STD;
    }
    *tv = 0;
    for (int k = 0; k < DC_TOY_MODES; k++) *tv += fabs((double)count[k] / (double)n - 1.0 / DC_TOY_MODES) / 2;
    *off = (double)far / (double)n;
}

TEST(demo_smoke) {
    char dir[] = "/tmp/disco_demo_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK_MSG(false, "mkdtemp failed");
        return;
    }
    char args[512];
    snprintf(args, sizeof args, "demo --out %s --steps 20 --prior-steps 10 --n %d --seed 3", dir, SMOKE_N);
    CHECK_EQ_INT(run(args), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    char *json = dc_test_read_file(path, NULL);
    CHECK_MSG(json != NULL, "no %s", path);
    static const char *keys[] = { "w2", "w2_5", "w2_10", "w2_20", "w2_within", "mode_tv", "curv_1_10", "curv_01_1",
                                  "off_mode" };
    static const char *models[] = { "disco", "edm" };
    if (json) {
        CHECK(json_num(json, NULL, "w2_floor") > 0);
        for (int m = 0; m < 2; m++)
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
                double v = json_num(json, models[m], keys[k]);
                CHECK_MSG(isfinite(v) && v >= 0, "%s.%s = %g", models[m], keys[k], v);
            }
        double purity = json_num(json, "disco", "purity");
        CHECK_MSG(purity >= 1.0 / DC_TOY_MODES && purity <= 1, "disco.purity = %g", purity);
    }
    for (int m = 0; m < 2; m++) {
        char err[DC_ERR_LEN];
        snprintf(path, sizeof path, "%s/samples_%s.npy", dir, models[m]);
        dc_tensor *t = dc_npy_read(path, err, sizeof err);
        CHECK_MSG(t != NULL, "%s", t ? "" : err);
        if (!t) continue;
        CHECK_EQ_INT(t->type.dtype, DC_F32);
        CHECK_EQ_INT(t->type.shape.rank, 2);
        CHECK_EQ_INT(t->type.shape.dim[0], SMOKE_N);
        CHECK_EQ_INT(t->type.shape.dim[1], 2);
        if (json && t->type.shape.rank == 2 && t->type.shape.dim[0] == SMOKE_N && t->type.dtype == DC_F32) {
            double tv, off;
            by_hand(t->data, SMOKE_N, &tv, &off);
            CHECK_NEAR(json_num(json, models[m], "mode_tv"), tv, 1e-5, 0);
            CHECK_NEAR(json_num(json, models[m], "off_mode"), off, 1e-5, 0);
        }
        dc_tensor_free(t);
    }
    static const char *pngs[] = { "samples_disco_codes.png", "samples_edm.png", "trajectories.png", "w2_vs_steps.png" };
    for (size_t i = 0; i < sizeof pngs / sizeof pngs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, pngs[i]);
        size_t len = 0;
        char *png = dc_test_read_file(path, &len);
        CHECK_MSG(png && len > 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0, "%s is not a PNG", pngs[i]);
        free(png);
    }
    free(json);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    CHECK(system(args) == 0);
}

TEST(demo_usage_errors) {
    CHECK_EQ_INT(run("demo --steps x"), 2);
    CHECK_EQ_INT(run("demo --steps"), 2);
    CHECK_EQ_INT(run("demo --tau -1"), 2);
    CHECK_EQ_INT(run("demo --backend nope"), 2);
    CHECK_EQ_INT(run("demo extra"), 2);
}
