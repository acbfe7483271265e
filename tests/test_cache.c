/* test_cache.c — the on-disk kernel cache (codegen/cache.c) and `disco cache`: entries checked
 * byte for byte against the documented format built here independently, round trips, every
 * truncation and every flipped byte reported and rebuilt, entries under the wrong name
 * refused, two processes writing one key at once, an uncreatable directory, stats, clear
 * leaving foreign files alone, the directory's environment variables, and the CLI via $DISCO.
 * Each test works in its own mkdtemp directory, set as $DISCO_CACHE_DIR and removed after. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "codegen/codegen.h"
#include "tests/test.h"

static const char *const env_names[3] = { "DISCO_CACHE_DIR", "XDG_CACHE_HOME", "HOME" };

/* A test's temp directory (root), its cache directory (root/cache) and the saved environment. */
typedef struct {
    char root[64], dir[128];
    char *saved[3];
} cache_env;

static void env_restore_one(const char *name, const char *value) {
    if (value) setenv(name, value, 1);
    else unsetenv(name);
}

static cache_env env_begin(void) {
    cache_env c;
    snprintf(c.root, sizeof c.root, "/tmp/disco_kcacheXXXXXX");
    if (!mkdtemp(c.root)) abort(); /* the test cannot run without a temp dir */
    snprintf(c.dir, sizeof c.dir, "%s/cache", c.root);
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(env_names[i]);
        c.saved[i] = v ? strdup(v) : NULL;
    }
    setenv("DISCO_CACHE_DIR", c.dir, 1);
    return c;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void env_end(cache_env *c) {
    for (int i = 0; i < 3; i++) {
        env_restore_one(env_names[i], c->saved[i]);
        free(c->saved[i]);
    }
    nftw(c->root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static dc_kcache_key make_key(uint64_t i) {
    return (dc_kcache_key){ .lo = 0x0123456789abcdefULL ^ (i * 0x9e3779b97f4a7c15ULL),
                            .hi = 0xfedcba9876543210ULL + i };
}

/* n deterministic pseudo-random bytes (malloc'd; never NULL, even for n = 0). */
static unsigned char *make_payload(size_t n, uint32_t seed) {
    unsigned char *p = malloc(n + 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (unsigned char)(x >> 24);
    }
    return p;
}

/* The entry file of key in c's cache directory, as the format names it. */
static void path_of(const cache_env *c, dc_kcache_key key, char *path, size_t n) {
    snprintf(path, n, "%s/k-%016llx%016llx.o", c->dir, (unsigned long long)key.hi,
             (unsigned long long)key.lo);
}

static void le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* The documented entry format: "DISCOKRN", u32 1, u32 0, key lo, key hi, u64 size, payload,
 * XXH3-64 of all before it. Sets *n to its length. */
static unsigned char *expected_entry(dc_kcache_key key, const unsigned char *payload, size_t len,
                                     size_t *n) {
    *n = 48 + len;
    unsigned char *e = calloc(1, *n);
    memcpy(e, "DISCOKRN", 8);
    e[8] = 1;
    le64(e + 16, key.lo);
    le64(e + 24, key.hi);
    le64(e + 32, len);
    memcpy(e + 40, payload, len);
    le64(e + 40 + len, XXH3_64bits(e, 40 + len));
    return e;
}

static bool write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

/* dc_kcache_get with stderr captured into *warn (malloc'd, "" when nothing was printed). */
static bool get_captured(const cache_env *c, dc_kcache_key key, void **data, size_t *len, char **warn) {
    char path[128];
    snprintf(path, sizeof path, "%s/stderr.txt", c->root);
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    bool ok = dc_kcache_get(key, data, len);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    *warn = dc_test_read_file(path, NULL);
    unlink(path);
    return ok;
}

/* True when key's entry reads back as exactly payload[0..len). */
static bool reads_back(dc_kcache_key key, const unsigned char *payload, size_t len) {
    void *data = NULL;
    size_t n = 0;
    bool ok = dc_kcache_get(key, &data, &n) && n == len && memcmp(data, payload, len) == 0;
    free(data);
    return ok;
}

/* Checks that a get of key (whose entry file is path) warns naming path, misses, and removes
 * the file; `reason` (may be NULL) must appear in the warning. */
static void check_rejected(const cache_env *c, dc_kcache_key key, const char *path,
                           const char *reason, const char *what) {
    void *data = NULL;
    size_t n = 0;
    char *warn = NULL;
    bool hit = get_captured(c, key, &data, &n, &warn);
    CHECK_MSG(!hit, "%s: a bad entry was read as a hit", what);
    CHECK_MSG(warn && strstr(warn, "disco: kernel cache: ") && strstr(warn, path) &&
                  strstr(warn, "; rebuilding\n"),
              "%s: warning: %s", what, warn ? warn : "(none)");
    CHECK_MSG(!reason || (warn && strstr(warn, reason)), "%s: warning without '%s': %s", what,
              reason, warn ? warn : "(none)");
    CHECK_MSG(!exists(path), "%s: the bad entry was not removed", what);
    if (hit) free(data);
    free(warn);
}

TEST(kcache_round_trip) {
    cache_env c = env_begin();
    const size_t sizes[] = { 0, 1, 47, 48, 4096, 100000 };
    char err[DC_ERR_LEN], path[256];
    for (int i = 0; i < 6; i++) {
        dc_kcache_key key = make_key((uint64_t)i);
        unsigned char *p = make_payload(sizes[i], (uint32_t)i);
        CHECK_MSG(dc_kcache_put(key, p, sizes[i], err, sizeof err), "put: %s", err);
        path_of(&c, key, path, sizeof path);
        size_t want_n, got_n = 0;
        unsigned char *want = expected_entry(key, p, sizes[i], &want_n);
        char *got = dc_test_read_file(path, &got_n);
        CHECK_MSG(got && got_n == want_n && memcmp(got, want, want_n) == 0,
                  "entry of %zu bytes differs from the documented format", sizes[i]);
        CHECK(reads_back(key, p, sizes[i]));
        free(got);
        free(want);
        free(p);
    }
    void *data = NULL;
    size_t n = 0;
    char *warn = NULL;
    CHECK(!get_captured(&c, make_key(99), &data, &n, &warn));
    CHECK_STR_EQ(warn, "");
    path_of(&c, make_key(99), path, sizeof path);
    CHECK(!exists(path));
    free(warn);
    CHECK_STR_EQ(dc_kcache_dir(), c.dir);
    env_end(&c);
}

TEST(kcache_truncated_entries) {
    cache_env c = env_begin();
    const size_t sizes[] = { 0, 5, 200 };
    char err[DC_ERR_LEN], path[256];
    for (int i = 0; i < 3; i++) {
        dc_kcache_key key = make_key(10 + (uint64_t)i);
        unsigned char *p = make_payload(sizes[i], 7u + (uint32_t)i);
        size_t full;
        unsigned char *entry = expected_entry(key, p, sizes[i], &full);
        path_of(&c, key, path, sizeof path);
        CHECK(dc_kcache_put(key, p, sizes[i], err, sizeof err));
        for (size_t t = 0; t < full; t++) {
            char what[64];
            snprintf(what, sizeof what, "payload %zu cut to %zu bytes", sizes[i], t);
            CHECK(write_bytes(path, entry, t));
            check_rejected(&c, key, path, "truncated", what);
        }
        unsigned char *longer = calloc(1, full + 1);
        memcpy(longer, entry, full);
        CHECK(write_bytes(path, longer, full + 1));
        check_rejected(&c, key, path, "trailing", "one byte appended");
        CHECK_MSG(dc_kcache_put(key, p, sizes[i], err, sizeof err), "rebuild: %s", err);
        CHECK(reads_back(key, p, sizes[i]));
        free(longer);
        free(entry);
        free(p);
    }
    env_end(&c);
}

TEST(kcache_corrupted_entries) {
    cache_env c = env_begin();
    dc_kcache_key key = make_key(20);
    enum { LEN = 64 };
    unsigned char *p = make_payload(LEN, 3);
    size_t full;
    unsigned char *entry = expected_entry(key, p, LEN, &full);
    char err[DC_ERR_LEN], path[256];
    path_of(&c, key, path, sizeof path);
    CHECK(dc_kcache_put(key, p, LEN, err, sizeof err));
    dc_kcache_stats before = dc_kcache_get_stats();
    for (size_t pos = 0; pos < full; pos++) {
        char what[64];
        snprintf(what, sizeof what, "byte %zu flipped", pos);
        entry[pos] ^= 0x10;
        CHECK(write_bytes(path, entry, full));
        /* magic, version, key and size have their own reasons; payload and sum the checksum */
        const char *reason = pos < 8 ? "bad magic" : pos < 12 ? "version" : pos < 16 ? "header"
                           : pos < 32 ? "does not match its file name" : pos < 40 ? NULL
                                      : "bad checksum";
        check_rejected(&c, key, path, reason, what);
        entry[pos] ^= 0x10;
    }
    dc_kcache_stats after = dc_kcache_get_stats();
    CHECK_EQ_INT(after.corrupt - before.corrupt, (long long)full);
    CHECK_EQ_INT(after.misses - before.misses, (long long)full);
    CHECK_MSG(dc_kcache_put(key, p, LEN, err, sizeof err), "rebuild: %s", err);
    CHECK(reads_back(key, p, LEN));
    free(entry);
    free(p);
    env_end(&c);
}

TEST(kcache_entry_under_wrong_name) {
    cache_env c = env_begin();
    dc_kcache_key a = make_key(30), b = make_key(31);
    unsigned char *p = make_payload(100, 30);
    char err[DC_ERR_LEN], pa[256], pb[256];
    CHECK(dc_kcache_put(a, p, 100, err, sizeof err));
    path_of(&c, a, pa, sizeof pa);
    path_of(&c, b, pb, sizeof pb);
    size_t n = 0;
    char *bytes = dc_test_read_file(pa, &n);
    CHECK(bytes && write_bytes(pb, bytes, n));
    check_rejected(&c, b, pb, "does not match its file name", "a's entry named as b");
    CHECK(reads_back(a, p, 100));
    free(bytes);
    free(p);
    env_end(&c);
}

/* Puts payload under key `rounds` times, reading the entry back after each put: it must be
 * whole and be one of the two payloads. Returns the number of failures. */
static int hammer(dc_kcache_key key, const unsigned char *mine, const unsigned char *other,
                  size_t len, int rounds) {
    int failures = 0;
    char err[DC_ERR_LEN];
    for (int r = 0; r < rounds; r++) {
        if (!dc_kcache_put(key, mine, len, err, sizeof err)) failures++;
        void *data = NULL;
        size_t n = 0;
        if (!dc_kcache_get(key, &data, &n) || n != len ||
            (memcmp(data, mine, len) != 0 && memcmp(data, other, len) != 0))
            failures++;
        free(data);
    }
    return failures;
}

TEST(kcache_two_processes_one_key) {
    cache_env c = env_begin();
    dc_kcache_key key = make_key(40);
    enum { LEN = 50000, ROUNDS = 100 };
    unsigned char *a = make_payload(LEN, 41), *b = make_payload(LEN, 42);
    char err[DC_ERR_LEN];
    CHECK(dc_kcache_put(key, a, LEN, err, sizeof err)); /* the directory exists before the race */
    dc_kcache_stats before = dc_kcache_get_stats();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) /* the child inherits the counters */
        _exit(hammer(key, b, a, LEN, ROUNDS) == 0 && dc_kcache_get_stats().corrupt == before.corrupt ? 0 : 1);
    int parent_failures = hammer(key, a, b, LEN, ROUNDS);
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child failed (status %d)", st);
    CHECK_EQ_INT(parent_failures, 0);
    CHECK_EQ_INT(dc_kcache_get_stats().corrupt - before.corrupt, 0);
    CHECK(reads_back(key, a, LEN) || reads_back(key, b, LEN));
    dc_kcache_stats s = dc_kcache_get_stats();
    CHECK_EQ_INT(s.entries, 1);
    CHECK_EQ_INT(s.bytes, 48 + LEN);
    /* no staging file is left behind: the directory holds the entry alone */
    int files = 0;
    DIR *d = opendir(c.dir);
    for (struct dirent *e; d && (e = readdir(d));) files += e->d_name[0] != '.';
    if (d) closedir(d);
    CHECK_EQ_INT(files, 1);
    free(a);
    free(b);
    env_end(&c);
}

TEST(kcache_uncreatable_directory) {
    cache_env c = env_begin();
    char file[128], sub[160], err[DC_ERR_LEN] = "";
    snprintf(file, sizeof file, "%s/file", c.root);
    snprintf(sub, sizeof sub, "%s/sub", file);
    CHECK(write_bytes(file, "x", 1));
    setenv("DISCO_CACHE_DIR", sub, 1);
    dc_kcache_key key = make_key(50);
    unsigned char *p = make_payload(10, 50);
    for (int round = 0; round < 2; round++) {
        CHECK(!dc_kcache_put(key, p, 10, err, sizeof err));
        CHECK_MSG(strstr(err, sub) && strstr(err, "cannot create"), "err: %s", err);
        void *data = NULL;
        size_t n = 0;
        char *warn = NULL;
        CHECK(!get_captured(&c, key, &data, &n, &warn));
        CHECK_STR_EQ(warn, "");
        free(warn);
    }
    CHECK_STR_EQ(dc_kcache_dir(), sub);
    CHECK_EQ_INT(dc_kcache_get_stats().entries, 0);
    err[0] = 0;
    CHECK(!dc_kcache_clear(err, sizeof err));
    CHECK_MSG(strstr(err, sub), "err: %s", err);
    size_t n = 0;
    char *left = dc_test_read_file(file, &n);
    CHECK(left && n == 1 && left[0] == 'x');
    free(left);
    free(p);
    env_end(&c);
}

TEST(kcache_stats_counts) {
    cache_env c = env_begin();
    dc_kcache_stats s0 = dc_kcache_get_stats();
    CHECK_EQ_INT(s0.entries, 0);
    CHECK_EQ_INT(s0.bytes, 0);
    char err[DC_ERR_LEN], path[256], foreign[160];
    unsigned char *p = make_payload(30, 60);
    for (int i = 0; i < 3; i++) CHECK(dc_kcache_put(make_key(60 + (uint64_t)i), p, 10 * (size_t)(i + 1), err, sizeof err));
    snprintf(foreign, sizeof foreign, "%s/notes.txt", c.dir);
    CHECK(write_bytes(foreign, "not an entry", 12));
    dc_kcache_stats s1 = dc_kcache_get_stats();
    CHECK_EQ_INT(s1.entries, 3);
    CHECK_EQ_INT(s1.bytes, 3 * 48 + 10 + 20 + 30);
    CHECK(reads_back(make_key(60), p, 10));
    CHECK(reads_back(make_key(61), p, 20));
    CHECK(!reads_back(make_key(70), p, 0));
    path_of(&c, make_key(62), path, sizeof path);
    CHECK(write_bytes(path, "garbage", 7));
    check_rejected(&c, make_key(62), path, NULL, "garbage entry");
    dc_kcache_stats s2 = dc_kcache_get_stats();
    CHECK_EQ_INT(s2.hits - s1.hits, 2);
    CHECK_EQ_INT(s2.misses - s1.misses, 2);
    CHECK_EQ_INT(s2.corrupt - s1.corrupt, 1);
    CHECK_EQ_INT(s2.entries, 2);
    CHECK_EQ_INT(s2.bytes, 2 * 48 + 10 + 20);
    free(p);
    env_end(&c);
}

TEST(kcache_clear_removes_only_entries) {
    cache_env c = env_begin();
    char err[DC_ERR_LEN], path[256];
    unsigned char *p = make_payload(16, 80);
    for (int i = 0; i < 3; i++) CHECK(dc_kcache_put(make_key(80 + (uint64_t)i), p, 16, err, sizeof err));
    const char *keep[] = { "notes.txt", "k-0123.o", "k-0123456789abcdef0123456789abcdef.obj",
                           "k-0123456789ABCDEF0123456789ABCDEF.o", "x-0123456789abcdef0123456789abcdef.o" };
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", c.dir, keep[i]);
        CHECK(write_bytes(path, "keep", 4));
    }
    snprintf(path, sizeof path, "%s/k-00000000000000000000000000000000.o", c.dir);
    CHECK(mkdir(path, 0755) == 0); /* a directory named like an entry is not an entry */
    snprintf(path, sizeof path, "%s/k-00000000000000000000000000000001.o.123.0", c.dir);
    CHECK(write_bytes(path, "staging", 7)); /* a writer's leftover is the cache's own */
    CHECK_EQ_INT(dc_kcache_get_stats().entries, 3);
    CHECK_MSG(dc_kcache_clear(err, sizeof err), "clear: %s", err);
    CHECK_EQ_INT(dc_kcache_get_stats().entries, 0);
    CHECK(!exists(path));
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", c.dir, keep[i]);
        CHECK_MSG(exists(path), "clear removed %s", keep[i]);
    }
    snprintf(path, sizeof path, "%s/k-00000000000000000000000000000000.o", c.dir);
    CHECK(exists(path));
    CHECK(!reads_back(make_key(80), p, 16));
    CHECK(dc_kcache_put(make_key(80), p, 16, err, sizeof err));
    CHECK(reads_back(make_key(80), p, 16));
    snprintf(path, sizeof path, "%s/none", c.root);
    setenv("DISCO_CACHE_DIR", path, 1); /* a missing cache: nothing to clear */
    CHECK(dc_kcache_clear(err, sizeof err));
    CHECK(!exists(path));
    free(p);
    env_end(&c);
}

TEST(kcache_directory_from_environment) {
    cache_env c = env_begin();
    char want[256], rel[] = "relative/xdg";
    snprintf(want, sizeof want, "%s/xdg/disco", c.root);
    char xdg[160];
    snprintf(xdg, sizeof xdg, "%s/xdg", c.root);
    setenv("DISCO_CACHE_DIR", "", 1); /* empty is unset */
    setenv("XDG_CACHE_HOME", xdg, 1);
    CHECK_STR_EQ(dc_kcache_dir(), want);
    struct stat st;
    CHECK(stat(want, &st) == 0 && S_ISDIR(st.st_mode));
    char home[160];
    snprintf(home, sizeof home, "%s/home", c.root);
    snprintf(want, sizeof want, "%s/home/.cache/disco", c.root);
    setenv("HOME", home, 1);
    setenv("XDG_CACHE_HOME", rel, 1); /* not absolute: ignored, as the XDG spec says */
    CHECK_STR_EQ(dc_kcache_dir(), want);
    unsetenv("XDG_CACHE_HOME");
    unsetenv("DISCO_CACHE_DIR");
    CHECK_STR_EQ(dc_kcache_dir(), want);
    CHECK(stat(want, &st) == 0 && S_ISDIR(st.st_mode));
    env_end(&c);
}

typedef struct {
    int status;
    char *out, *err;
} cli_result;

/* Runs $DISCO (else build/disco) with args (NULL-terminated), capturing stdout and stderr. */
static cli_result run_cli(const cache_env *c, const char *const *args) {
    char out_path[128], err_path[128];
    snprintf(out_path, sizeof out_path, "%s/out.txt", c->root);
    snprintf(err_path, sizeof err_path, "%s/err.txt", c->root);
    const char *bin = getenv("DISCO");
    if (!bin || !*bin) bin = "build/disco";
    cli_result r = { .status = -1 };
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fo, 1);
        dup2(fe, 2);
        const char *argv[8] = { bin };
        for (int i = 0; args[i] && i < 6; i++) argv[i + 1] = args[i];
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = dc_test_read_file(out_path, NULL);
    r.err = dc_test_read_file(err_path, NULL);
    unlink(out_path);
    unlink(err_path);
    return r;
}

static void cli_free(cli_result *r) {
    free(r->out);
    free(r->err);
}

TEST(kcache_cli) {
    cache_env c = env_begin();
    char err[DC_ERR_LEN], line[256];
    unsigned char *p = make_payload(100, 90);
    CHECK(dc_kcache_put(make_key(90), p, 100, err, sizeof err));
    CHECK(dc_kcache_put(make_key(91), p, 52, err, sizeof err));
    cli_result r = run_cli(&c, (const char *[]){ "cache", "stats", NULL });
    CHECK_EQ_INT(r.status, 0);
    snprintf(line, sizeof line, "dir      %s\nentries  2\nbytes    248\n", c.dir);
    CHECK_STR_EQ(r.out, line);
    cli_free(&r);
    r = run_cli(&c, (const char *[]){ "cache", "clear", NULL });
    CHECK_EQ_INT(r.status, 0);
    snprintf(line, sizeof line, "removed 2 entries from %s\n", c.dir);
    CHECK_STR_EQ(r.out, line);
    cli_free(&r);
    CHECK_EQ_INT(dc_kcache_get_stats().entries, 0);
    r = run_cli(&c, (const char *[]){ "cache", "--help", NULL });
    CHECK_EQ_INT(r.status, 0);
    CHECK(r.out && strstr(r.out, "usage: disco cache stats|clear"));
    cli_free(&r);
    r = run_cli(&c, (const char *[]){ "--help", NULL });
    CHECK(r.out && strstr(r.out, "cache"));
    cli_free(&r);
    const char *const bad[][3] = { { "cache", NULL }, { "cache", "bogus", NULL },
                                   { "cache", "stats", "extra" } };
    for (int i = 0; i < 3; i++) {
        const char *args[4] = { bad[i][0], bad[i][1], bad[i][2], NULL };
        r = run_cli(&c, args);
        CHECK_MSG(r.status == 2, "disco %s %s: status %d", args[0], args[1] ? args[1] : "", r.status);
        CHECK(r.err && strstr(r.err, "disco cache: "));
        cli_free(&r);
    }
    char file[128], sub[160];
    snprintf(file, sizeof file, "%s/file", c.root);
    snprintf(sub, sizeof sub, "%s/sub", file);
    CHECK(write_bytes(file, "x", 1));
    setenv("DISCO_CACHE_DIR", sub, 1);
    r = run_cli(&c, (const char *[]){ "cache", "clear", NULL });
    CHECK_EQ_INT(r.status, 1);
    CHECK(r.err && strstr(r.err, sub));
    cli_free(&r);
    free(p);
    env_end(&c);
}
