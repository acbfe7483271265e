/* main.c — the test runner: runs every registered test (or those whose name contains
 * argv[1]), checks that every op in ops.def has a forward test, and ends with
 * `N passed, N failed`. Exit status is 1 on any failure. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "tests/test.h"

#include <ftw.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "ir/ir.h"

typedef struct { const char *name, *file; dc_test_fn fn; int op; } test_entry;

static test_entry *tests;
static int n_tests, cap_tests;
static int passed, failed;
static bool current_failed;
static const char *current_name;

void dc_test_register(const char *name, const char *file, dc_test_fn fn, int op) {
    if (n_tests == cap_tests) {
        cap_tests = cap_tests ? 2 * cap_tests : 256;
        tests = realloc(tests, (size_t)cap_tests * sizeof *tests);
        if (!tests) abort();
    }
    tests[n_tests++] = (test_entry){ name, file, fn, op };
}

void dc_test_fail(const char *file, int line, const char *fmt, ...) {
    if (!current_failed) printf("FAIL %s\n", current_name);
    current_failed = true;
    printf("  %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

void dc_test_case(const char *name, bool ok, const char *fmt, ...) {
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

char *dc_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *f) {
    (void)st, (void)flag, (void)f;
    return remove(path);
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    /* JIT kernels compiled by the tests go to a fresh cache, removed at the end, unless the
     * caller chose one: a test run neither reads nor fills the user's cache. */
    char cache_dir[] = "/tmp/disco_test_cacheXXXXXX";
    bool own_cache = !getenv("DISCO_CACHE_DIR") && mkdtemp(cache_dir);
    if (own_cache) setenv("DISCO_CACHE_DIR", cache_dir, 1);
    for (int i = 0; i < n_tests; i++) {
        if (filter && !strstr(tests[i].name, filter)) continue;
        current_name = tests[i].name;
        current_failed = false;
        double t0 = omp_get_wtime();
        tests[i].fn();
        double dt = omp_get_wtime() - t0;
        if (dt > 2.0) printf("slow: %s took %.1f s\n", tests[i].name, dt);
        if (current_failed) failed++;
        else passed++;
        fflush(stdout);
    }
    if (!filter) {
        int covered = 0;
        for (int op = 0; op < DC_OP_COUNT; op++) {
            bool has = false;
            for (int i = 0; i < n_tests; i++) has |= tests[i].op == op;
            covered += has;
            dc_test_case("op coverage", has, "op %s has no forward test (OP_TEST)", dc_op_name(op));
        }
        printf("forward tests cover %d of %d ops in ops.def\n", covered, DC_OP_COUNT);
    }
    if (own_cache) nftw(cache_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
