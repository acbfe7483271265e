/* test_tune_db.c — the tuner's database (codegen/tune_db.c): the key's documented formula and
 * that every part of it counts, round trips checked byte for byte against the documented file
 * format built here, replacing entries, entries of other CPUs and versions ignored yet kept,
 * every truncation and flipped byte refused, malformed files refused at their line, odd paths,
 * and the `--show` table. Each test works in its own mkdtemp directory, removed after, with
 * $DISCO_CPU naming a made-up CPU so the target text is known. */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "codegen/codegen.h"
#include "tests/test.h"

#define HEADER "# disco tuning database, format 1\n"
#define REFUSED_TAIL "; the database is ignored and the next save replaces it\n"

static const char *const K1 = "matmul batch=512 m=196 n=8 k=196 trans_a=0 trans_b=0 bias=1 act=none "
                              "residual=0 scale=1";
static const char *const C1 = "jit mr=14 nr=32 kc=256 mc=64 nc=256 unroll=4 prefetch=0 lanes=16";
static const char *const T1 = "jit=12.3us dnnl=20.1us ref=900us";
static const char *const K2 = "matmul batch=1 m=64 n=64 k=64 trans_a=1 trans_b=0 bias=0 act=gelu "
                              "residual=1 scale=1";
/* every byte the format escapes, and a UTF-8 one it does not */
static const char *const K3 = "odd \"quoted\" \\back\\slash\nnew line\ttab\x01"
                              "ctl\x7f del \xc3\xa9";
static const char *const K3_ESCAPED = "odd \\\"quoted\\\" \\\\back\\\\slash\\nnew line\\ttab\\x01"
                                      "ctl\\x7f del \xc3\xa9";

static const char *const env_names[3] = { "DISCO_CPU", "DISCO_CPU_FEATURES", "DISCO_CACHE_DIR" };

/* A test's temp directory, the database's path in it, and the environment it changes. */
typedef struct {
    char dir[64], path[128];
    char *saved[3];
} tdb_env;

static void set_env(const char *name, const char *value) {
    if (value) setenv(name, value, 1);
    else unsetenv(name);
}

static tdb_env tdb_begin(const char *cpu) {
    tdb_env t;
    snprintf(t.dir, sizeof t.dir, "/tmp/disco_tunedbXXXXXX");
    if (!mkdtemp(t.dir)) abort(); /* the test cannot run without a temp dir */
    snprintf(t.path, sizeof t.path, "%s/tune.db", t.dir);
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(env_names[i]);
        t.saved[i] = v ? strdup(v) : NULL;
    }
    set_env("DISCO_CPU", cpu);
    unsetenv("DISCO_CPU_FEATURES");
    return t;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void tdb_end(tdb_env *t) {
    for (int i = 0; i < 3; i++) {
        set_env(env_names[i], t->saved[i]);
        free(t->saved[i]);
    }
    nftw(t->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bool write_bytes(const char *path, const char *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Opens path, failing the test (and returning NULL) when it cannot. */
static dc_tune_db *open_ok(const char *path) {
    char err[DC_ERR_LEN] = "";
    dc_tune_db *db = dc_tune_db_open(path, err, sizeof err);
    CHECK_MSG(db, "open %s: %s", path ? path : "(the default)", err);
    return db;
}

static void save_ok(dc_tune_db *db) {
    char err[DC_ERR_LEN] = "";
    CHECK_MSG(dc_tune_db_save(db, err, sizeof err), "save: %s", err);
}

/* The key as the format writes it: 32 lowercase hex digits, the high word first. */
static void key_hex(const char *kernel, const char *target, int tuner, char out[33]) {
    dc_hash128 k = dc_tune_key(kernel, target, tuner);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)k.hi, (unsigned long long)k.lo);
}

/* A target text in quotes: it holds newlines to escape and nothing else the format escapes. */
static void put_target(dc_strbuf *s, const char *target) {
    dc_sb_printf(s, "\"");
    for (const char *p = target; *p; p++) {
        CHECK_MSG(*p != '"' && *p != '\\' && (*p == '\n' || (unsigned char)*p >= 0x20),
                  "the target text holds a byte this test does not escape: %s", target);
        if (*p == '\n') dc_sb_printf(s, "\\n");
        else dc_sb_printf(s, "%c", *p);
    }
    dc_sb_printf(s, "\"");
}

static void put_target_line(dc_strbuf *s, const char *target, int tuner) {
    dc_sb_printf(s, "target tuner=%d ", tuner);
    put_target(s, target);
    dc_sb_printf(s, "\n");
}

/* An entry line whose strings need no escapes, keyed for (target, tuner). */
static void put_entry(dc_strbuf *s, const char *kernel, const char *choice, const char *times,
                      const char *target, int tuner) {
    char hex[33];
    key_hex(kernel, target, tuner, hex);
    dc_sb_printf(s, "entry key=%s kernel=\"%s\" choice=\"%s\" times=\"%s\"\n", hex, kernel, choice, times);
}

/* Appends the checksum line of everything in s. */
static void put_checksum(dc_strbuf *s) {
    dc_sb_printf(s, "checksum %016llx\n", (unsigned long long)XXH3_64bits(s->buf, s->len));
}

/* target with its line "name ..." replaced by "name value" (malloc'd). */
static char *with_line(const char *target, const char *name, const char *value) {
    dc_strbuf s = { 0 };
    size_t n = strlen(name);
    for (const char *p = target; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p + 1) : strlen(p);
        if (strncmp(p, name, n) == 0 && p[n] == ' ') dc_sb_printf(&s, "%s %s\n", name, value);
        else dc_sb_printf(&s, "%.*s", (int)len, p);
        p += len;
    }
    return s.buf;
}

/* Checks that the file at path holds exactly the bytes of want. */
static void check_file(const char *path, const dc_strbuf *want, const char *what) {
    size_t n = 0;
    char *got = dc_test_read_file(path, &n);
    CHECK_MSG(got && n == want->len && memcmp(got, want->buf, n) == 0,
              "%s: the file:\n%s\nexpected:\n%s", what, got ? got : "(none)", want->buf);
    free(got);
}

/* Files in dir other than . and .. */
static int files_in(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d) closedir(d);
    return n;
}

/* Checks that db refused its file at line with a message naming why. */
static void check_refused(dc_tune_db *db, const char *path, int line, const char *why, const char *what) {
    dc_tune_db_stats s = dc_tune_db_get_stats(db);
    CHECK_MSG(s.refused && s.entries == 0, "%s: not refused (%lld entries)", what, (long long)s.entries);
    char want[512];
    snprintf(want, sizeof want, "%s:%d: %s", path, line, why);
    const char *msg = dc_tune_db_message(db);
    size_t n = strlen(msg), tail = strlen(REFUSED_TAIL);
    CHECK_MSG(strncmp(msg, want, strlen(want)) == 0 && n > tail && strcmp(msg + n - tail, REFUSED_TAIL) == 0,
              "%s:\n  message:  %s  expected: %s...%s", what, msg, want, REFUSED_TAIL);
}

/* ---- the key ----------------------------------------------------------------------------- */

TEST(tune_db_key) {
    const char *target = "cpu znver4\nfeatures +avx,+avx2,+fma\nllvm 19.1.7\ncodegen 5\n";
    char pre[1024];
    int n = snprintf(pre, sizeof pre, "disco tune key\nkernel %zu %s\ntarget %zu %s\ntuner 1\n", strlen(K1),
                     K1, strlen(target), target);
    XXH128_hash_t want = XXH3_128bits(pre, (size_t)n);
    dc_hash128 base = dc_tune_key(K1, target, 1);
    CHECK(base.lo == want.low64 && base.hi == want.high64);

    /* each part changed alone: the kernel, cpu, features, LLVM, codegen and tuner versions */
    const char *variants[][2] = {
        { "matmul batch=512 m=197 n=8 k=196 trans_a=0 trans_b=0 bias=1 act=none residual=0 scale=1", target },
        { K1, "cpu znver3\nfeatures +avx,+avx2,+fma\nllvm 19.1.7\ncodegen 5\n" },
        { K1, "cpu znver4\nfeatures +avx,+avx2,-fma\nllvm 19.1.7\ncodegen 5\n" },
        { K1, "cpu znver4\nfeatures +avx,+avx2,+fma\nllvm 19.1.6\ncodegen 5\n" },
        { K1, "cpu znver4\nfeatures +avx,+avx2,+fma\nllvm 19.1.7\ncodegen 6\n" },
        { K1, target },
    };
    dc_hash128 keys[7] = { base };
    for (int i = 0; i < 6; i++) keys[i + 1] = dc_tune_key(variants[i][0], variants[i][1], i == 5 ? 2 : 1);
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < i; j++)
            CHECK_MSG(keys[i].lo != keys[j].lo || keys[i].hi != keys[j].hi, "keys %d and %d are equal", i, j);
    /* the parts are length-prefixed: moving a line from the kernel to the target changes it */
    dc_hash128 a = dc_tune_key("a\nb", "c", 1), b = dc_tune_key("a", "b\nc", 1);
    CHECK(a.lo != b.lo || a.hi != b.hi);

    /* the target text of the running disco covers the CPU, its features and both versions */
    tdb_env t = tdb_begin("tunedb-cpu-a");
    char *ta = dc_jit_target_text(NULL);
    set_env("DISCO_CPU", "tunedb-cpu-b");
    char *tb = dc_jit_target_text(NULL);
    set_env("DISCO_CPU_FEATURES", "-avx512f");
    char *tf = dc_jit_target_text(NULL);
    char codegen[32];
    snprintf(codegen, sizeof codegen, "\ncodegen %d\n", DC_JIT_CODEGEN_VERSION);
    CHECK(strncmp(ta, "cpu tunedb-cpu-a\nfeatures ", 26) == 0);
    CHECK(strstr(ta, "\nllvm ") && strstr(ta, codegen));
    CHECK(strncmp(tb, "cpu tunedb-cpu-b\n", 17) == 0);
    CHECK(strstr(tf, ",-avx512f\nllvm ") != NULL);
    dc_hash128 ka = dc_tune_key(K1, ta, DC_TUNER_VERSION), kb = dc_tune_key(K1, tb, DC_TUNER_VERSION),
               kf = dc_tune_key(K1, tf, DC_TUNER_VERSION);
    CHECK(ka.lo != kb.lo && kb.lo != kf.lo && ka.lo != kf.lo);
    free(ta);
    free(tb);
    free(tf);
    tdb_end(&t);
}

/* ---- round trips ------------------------------------------------------------------------- */

TEST(tune_db_round_trip) {
    tdb_env t = tdb_begin("tunedb-cpu");
    dc_tune_db *db = open_ok(t.path);
    if (!db) goto done;
    CHECK_STR_EQ(dc_tune_db_path(db), t.path);
    CHECK_STR_EQ(dc_tune_db_message(db), "");
    CHECK(dc_tune_db_lookup(db, K1) == NULL);
    dc_tune_db_stats s = dc_tune_db_get_stats(db);
    CHECK(s.entries == 0 && s.hits == 0 && s.misses == 1 && !s.refused && s.foreign == 0 && s.stale == 0);
    dc_tune_db_store(db, K1, C1, T1);
    dc_tune_db_store(db, K2, "dnnl", "jit=30.0us dnnl=20.1us");
    dc_tune_db_store(db, K3, "say \"x\"", "");
    CHECK_STR_EQ(dc_tune_db_lookup(db, K1), C1);
    CHECK_STR_EQ(dc_tune_db_lookup(db, K3), "say \"x\"");
    save_ok(db);
    dc_tune_db_free(db);

    /* the file, as the format documents it */
    char *target = dc_jit_target_text(NULL);
    char k1[33], k2[33], k3[33];
    key_hex(K1, target, DC_TUNER_VERSION, k1);
    key_hex(K2, target, DC_TUNER_VERSION, k2);
    key_hex(K3, target, DC_TUNER_VERSION, k3);
    dc_strbuf want = { 0 };
    dc_sb_printf(&want, HEADER);
    put_target_line(&want, target, DC_TUNER_VERSION);
    dc_sb_printf(&want, "entry key=%s kernel=\"%s\" choice=\"%s\" times=\"%s\"\n", k1, K1, C1, T1);
    dc_sb_printf(&want, "entry key=%s kernel=\"%s\" choice=\"dnnl\" times=\"jit=30.0us dnnl=20.1us\"\n",
                 k2, K2);
    dc_sb_printf(&want, "entry key=%s kernel=\"%s\" choice=\"say \\\"x\\\"\" times=\"\"\n", k3, K3_ESCAPED);
    put_checksum(&want);
    check_file(t.path, &want, "saved");
    CHECK_EQ_INT(files_in(t.dir), 1);

    /* reopened: every string back, byte for byte; saved again: the same file */
    db = open_ok(t.path);
    if (db) {
        CHECK_STR_EQ(dc_tune_db_message(db), "");
        CHECK_STR_EQ(dc_tune_db_lookup(db, K1), C1);
        CHECK_STR_EQ(dc_tune_db_lookup(db, K2), "dnnl");
        CHECK_STR_EQ(dc_tune_db_lookup(db, K3), "say \"x\"");
        CHECK(dc_tune_db_lookup(db, "matmul batch=2") == NULL);
        s = dc_tune_db_get_stats(db);
        CHECK(s.entries == 3 && s.hits == 3 && s.misses == 1 && !s.refused && s.foreign == 0 && s.stale == 0);
        save_ok(db);
        check_file(t.path, &want, "saved again");
        dc_tune_db_free(db);
    }
    free(want.buf);
    free(target);
done:
    tdb_end(&t);
}

TEST(tune_db_replace) {
    tdb_env t = tdb_begin("tunedb-cpu");
    dc_tune_db *db = open_ok(t.path);
    if (!db) goto done;
    dc_tune_db_store(db, K1, "jit mr=6", "jit=9us");
    dc_tune_db_store(db, K2, "dnnl", "dnnl=5us");
    dc_tune_db_store(db, K1, "dnnl", "jit=9us dnnl=8us");
    /* the choice given is the stored one itself */
    dc_tune_db_store(db, K1, dc_tune_db_lookup(db, K1), "jit=9us dnnl=7us");
    CHECK_STR_EQ(dc_tune_db_lookup(db, K1), "dnnl");
    CHECK_EQ_INT(dc_tune_db_get_stats(db).entries, 2);
    save_ok(db);
    dc_tune_db_free(db);

    char *target = dc_jit_target_text(NULL);
    dc_strbuf want = { 0 };
    dc_sb_printf(&want, HEADER);
    put_target_line(&want, target, DC_TUNER_VERSION);
    put_entry(&want, K1, "dnnl", "jit=9us dnnl=7us", target, DC_TUNER_VERSION);
    put_entry(&want, K2, "dnnl", "dnnl=5us", target, DC_TUNER_VERSION);
    put_checksum(&want);
    check_file(t.path, &want, "replaced");
    db = open_ok(t.path);
    if (db) {
        CHECK_STR_EQ(dc_tune_db_lookup(db, K1), "dnnl");
        CHECK_EQ_INT(dc_tune_db_get_stats(db).entries, 2);
        dc_tune_db_free(db);
    }
    free(want.buf);
    free(target);
done:
    tdb_end(&t);
}

/* ---- other targets ----------------------------------------------------------------------- */

TEST(tune_db_other_cpus) {
    tdb_env t = tdb_begin("tunedb-cpu-a");
    dc_tune_db *db = open_ok(t.path);
    if (!db) goto done;
    dc_tune_db_store(db, K1, "a1", "ta1");
    dc_tune_db_store(db, K2, "a2", "ta2");
    save_ok(db);
    dc_tune_db_free(db);

    /* on CPU b: a's entries are ignored, counted, reported, and kept */
    set_env("DISCO_CPU", "tunedb-cpu-b");
    char want[512];
    db = open_ok(t.path);
    if (!db) goto done;
    snprintf(want, sizeof want, "%s: 2 entries are for another CPU (tunedb-cpu-a), ignored\n", t.path);
    CHECK_STR_EQ(dc_tune_db_message(db), want);
    CHECK(dc_tune_db_lookup(db, K1) == NULL && dc_tune_db_lookup(db, K2) == NULL);
    dc_tune_db_store(db, K1, "b1", "tb1");
    CHECK_STR_EQ(dc_tune_db_lookup(db, K1), "b1");
    dc_tune_db_stats s = dc_tune_db_get_stats(db);
    CHECK(s.entries == 3 && s.foreign == 2 && s.stale == 0 && s.hits == 1 && s.misses == 2 && !s.refused);
    save_ok(db);
    dc_tune_db_free(db);

    /* b's name with other features is another CPU too */
    set_env("DISCO_CPU_FEATURES", "-avx512f");
    db = open_ok(t.path);
    if (!db) goto done;
    snprintf(want, sizeof want,
             "%s: 3 entries are for another CPU (tunedb-cpu-a, tunedb-cpu-b with other features), ignored\n",
             t.path);
    CHECK_STR_EQ(dc_tune_db_message(db), want);
    CHECK(dc_tune_db_lookup(db, K1) == NULL);
    CHECK_EQ_INT(dc_tune_db_get_stats(db).foreign, 3);
    dc_tune_db_free(db);

    /* back on a: its entries as stored, b's ignored */
    unsetenv("DISCO_CPU_FEATURES");
    set_env("DISCO_CPU", "tunedb-cpu-a");
    db = open_ok(t.path);
    if (!db) goto done;
    snprintf(want, sizeof want, "%s: 1 entry is for another CPU (tunedb-cpu-b), ignored\n", t.path);
    CHECK_STR_EQ(dc_tune_db_message(db), want);
    CHECK_STR_EQ(dc_tune_db_lookup(db, K1), "a1");
    CHECK_STR_EQ(dc_tune_db_lookup(db, K2), "a2");
    s = dc_tune_db_get_stats(db);
    CHECK(s.entries == 3 && s.foreign == 1 && s.hits == 2 && s.misses == 0);
    dc_tune_db_free(db);
done:
    tdb_end(&t);
}

TEST(tune_db_stale_versions) {
    tdb_env t = tdb_begin("tunedb-cpu");
    char *target = dc_jit_target_text(NULL), *old_llvm = with_line(target, "llvm", "1.2.3");
    char *old_codegen = with_line(target, "codegen", "0");
    dc_strbuf f = { 0 };
    dc_sb_printf(&f, HEADER);
    put_target_line(&f, target, DC_TUNER_VERSION + 1);
    put_entry(&f, K1, "newer tuner", "x=1us", target, DC_TUNER_VERSION + 1);
    put_target_line(&f, old_llvm, DC_TUNER_VERSION);
    put_entry(&f, K1, "old llvm", "x=2us", old_llvm, DC_TUNER_VERSION);
    put_target_line(&f, old_codegen, DC_TUNER_VERSION);
    put_entry(&f, K1, "old codegen", "x=3us", old_codegen, DC_TUNER_VERSION);
    put_target_line(&f, target, DC_TUNER_VERSION);
    put_entry(&f, K2, "current", "x=4us", target, DC_TUNER_VERSION);
    put_checksum(&f);
    CHECK(write_bytes(t.path, f.buf, f.len));
    for (int round = 0; round < 2; round++) {
        dc_tune_db *db = open_ok(t.path);
        if (!db) break;
        char want[512];
        snprintf(want, sizeof want,
                 "%s: 3 entries are for this CPU under another LLVM, codegen or tuner version, ignored\n",
                 t.path);
        CHECK_STR_EQ(dc_tune_db_message(db), want);
        CHECK(dc_tune_db_lookup(db, K1) == NULL);
        CHECK_STR_EQ(dc_tune_db_lookup(db, K2), "current");
        dc_tune_db_stats s = dc_tune_db_get_stats(db);
        CHECK(s.entries == 4 && s.stale == 3 && s.foreign == 0 && !s.refused);
        /* kept as they were: the saved file is the one written here */
        save_ok(db);
        check_file(t.path, &f, "stale entries saved");
        dc_tune_db_free(db);
    }
    free(f.buf);
    free(old_codegen);
    free(old_llvm);
    free(target);
    tdb_end(&t);
}

/* ---- damaged files ----------------------------------------------------------------------- */

/* A small valid database at t's path: K1 and K3 (malloc'd bytes, their count in *n). */
static char *small_db(const tdb_env *t, size_t *n) {
    dc_tune_db *db = open_ok(t->path);
    if (!db) return NULL;
    dc_tune_db_store(db, K1, C1, T1);
    dc_tune_db_store(db, K3, "dnnl", "dnnl=1us");
    save_ok(db);
    dc_tune_db_free(db);
    return dc_test_read_file(t->path, n);
}

/* Opens t's file, expecting it refused (no hit for K1 or K3); what names the damage. */
static void check_damaged(const tdb_env *t, const char *what) {
    char err[DC_ERR_LEN] = "";
    dc_tune_db *db = dc_tune_db_open(t->path, err, sizeof err);
    CHECK_MSG(db, "%s: open failed: %s", what, err);
    if (!db) return;
    CHECK_MSG(dc_tune_db_lookup(db, K1) == NULL && dc_tune_db_lookup(db, K3) == NULL, "%s: a hit", what);
    dc_tune_db_stats s = dc_tune_db_get_stats(db);
    const char *msg = dc_tune_db_message(db);
    size_t n = strlen(msg), tail = strlen(REFUSED_TAIL), p = strlen(t->path);
    CHECK_MSG(s.refused && s.entries == 0 && strncmp(msg, t->path, p) == 0 && msg[p] == ':' && n > tail &&
                  strcmp(msg + n - tail, REFUSED_TAIL) == 0,
              "%s: refused %d, %lld entries, message %s", what, s.refused, (long long)s.entries, msg);
    dc_tune_db_free(db);
}

TEST(tune_db_truncated) {
    tdb_env t = tdb_begin("tunedb-cpu");
    size_t n = 0;
    char *full = small_db(&t, &n);
    if (!full) goto done;
    for (size_t k = 0; k < n; k++) {
        char what[64];
        snprintf(what, sizeof what, "cut to %zu of %zu bytes", k, n);
        CHECK(write_bytes(t.path, full, k));
        check_damaged(&t, what);
    }
    char *longer = malloc(n + 1);
    memcpy(longer, full, n);
    longer[n] = '\n';
    CHECK(write_bytes(t.path, longer, n + 1));
    check_damaged(&t, "a newline appended");
    longer[n] = 'x';
    CHECK(write_bytes(t.path, longer, n + 1));
    check_damaged(&t, "a byte appended");
    /* the whole file still loads */
    CHECK(write_bytes(t.path, full, n));
    dc_tune_db *db = open_ok(t.path);
    if (db) {
        CHECK_STR_EQ(dc_tune_db_lookup(db, K1), C1);
        CHECK_STR_EQ(dc_tune_db_lookup(db, K3), "dnnl");
        dc_tune_db_free(db);
    }
    free(longer);
    free(full);
done:
    tdb_end(&t);
}

TEST(tune_db_flipped_bytes) {
    tdb_env t = tdb_begin("tunedb-cpu");
    size_t n = 0;
    char *full = small_db(&t, &n);
    if (!full) goto done;
    const unsigned char masks[3] = { 0x01, 0x20, 0x80 };
    for (size_t k = 0; k < n; k++)
        for (int m = 0; m < 3; m++) {
            char what[64];
            snprintf(what, sizeof what, "byte %zu of %zu xor 0x%02x", k, n, masks[m]);
            full[k] ^= (char)masks[m];
            CHECK(write_bytes(t.path, full, n));
            check_damaged(&t, what);
            full[k] ^= (char)masks[m];
        }
    free(full);
done:
    tdb_end(&t);
}

/* One malformed file: its text (a checksum line is appended when sum), and where and why it is
 * refused. */
typedef struct {
    const char *name;
    char *text;
    bool sum;
    int line;
    const char *why;
} bad_file;

TEST(tune_db_malformed) {
    tdb_env t = tdb_begin("tunedb-cpu");
    char *target = dc_jit_target_text(NULL);
    char k1[33];
    key_hex(K1, target, DC_TUNER_VERSION, k1);
    dc_strbuf tl = { 0 }, e1 = { 0 }, e2 = { 0 };
    put_target_line(&tl, target, DC_TUNER_VERSION);
    put_entry(&e1, K1, "jit", "jit=1us", target, DC_TUNER_VERSION);
    put_entry(&e2, K2, "dnnl", "dnnl=1us", target, DC_TUNER_VERSION);
    /* a line of entry with K1's key and the given text after "kernel=" */
    static const char *const after_key[] = {
        "kernel=\"a\\qb\" choice=\"\" times=\"\"",     "kernel=\"a\\x00b\" choice=\"\" times=\"\"",
        "kernel=\"a\\x4\" choice=\"\" times=\"\"",     "kernel=\"a\tb\" choice=\"\" times=\"\"",
        "kernel=\"abc",                                "kernel=\"a\" choice=\"\" times=\"\" extra",
        "kernel=\"a\" choice=\"\"",                    "kernel=\"a\\\" choice=\"\" times=\"\"",
    };
    static const char *const after_key_why[] = {
        "a bad escape in a string", "a bad escape in a string", "a bad escape in a string",
        "a control byte in a string", "an unterminated string", "a malformed entry line",
        "a malformed entry line", "a malformed entry line",
    };
    enum { N_AFTER = sizeof after_key / sizeof *after_key, N_BAD = N_AFTER + 15 };
    bad_file bad[N_BAD];
    int nb = 0;
    dc_strbuf s = { 0 };
#define BAD(NAME, SUM, LINE, WHY, ...)                                                              \
    do {                                                                                        \
        s = (dc_strbuf){ 0 };                                                                   \
        dc_sb_printf(&s, "%s", "");                                                             \
        dc_sb_printf(&s, __VA_ARGS__);                                                          \
        bad[nb++] = (bad_file){ NAME, s.buf, SUM, LINE, WHY };                                  \
    } while (0)
    BAD("empty", false, 1, "an empty file", "%s", "");
    BAD("garbage", false, 1, "not a disco tuning database", "\x7f" "ELF\x02\x01 garbage\n");
    BAD("header cut", false, 1, "truncated (in the first line)", "# disco tuning");
    BAD("format 2", true, 1, "an unknown format", "# disco tuning database, format 2\n%s%s", tl.buf, e1.buf);
    BAD("format 10", true, 1, "an unknown format", "# disco tuning database, format 10\n%s%s", tl.buf,
        e1.buf);
    BAD("CRLF", true, 1, "an unknown format", "# disco tuning database, format 1\r\n%s%s", tl.buf, e1.buf);
    BAD("header only", false, 1, "truncated (the last line is not the checksum line)", HEADER);
    BAD("bad checksum", false, 4, "bad checksum", HEADER "%s%schecksum 0123456789abcdef\n", tl.buf, e1.buf);
    BAD("unknown line", true, 3, "an unknown line", HEADER "%sbest=jit\n%s", tl.buf, e1.buf);
    BAD("entry first", true, 2, "an entry before any target line", HEADER "%s%s", e1.buf, tl.buf);
    BAD("second entry", true, 4, "a second entry", HEADER "%s%s%s", tl.buf, e1.buf, e1.buf);
    BAD("key of another kernel", true, 4, "the key does not match", HEADER "%s%sentry key=%s kernel=\"%s\" "
        "choice=\"jit\" times=\"\"\n", tl.buf, e2.buf, k1, K2);
    BAD("key of another tuner", true, 3, "the key does not match", HEADER "target tuner=%d %s%s",
        DC_TUNER_VERSION + 1, strchr(tl.buf, '"'), e1.buf);
    BAD("tuner of 10 digits", true, 2, "a malformed target line", HEADER "target tuner=1234567890 %s%s",
        strchr(tl.buf, '"'), e1.buf);
    BAD("no tuner", true, 2, "a malformed target line", HEADER "target %s%s", strchr(tl.buf, '"'), e1.buf);
    for (int i = 0; i < N_AFTER; i++)
        BAD(after_key[i], true, 4, after_key_why[i], HEADER "%s%sentry key=%s %s\n", tl.buf, e2.buf, k1,
            after_key[i]);
#undef BAD
    CHECK_EQ_INT(nb, N_BAD);
    for (int i = 0; i < nb; i++) {
        s = (dc_strbuf){ bad[i].text, strlen(bad[i].text), strlen(bad[i].text) + 1 };
        if (bad[i].sum) put_checksum(&s);
        CHECK(write_bytes(t.path, s.buf, s.len));
        dc_tune_db *db = open_ok(t.path);
        if (db) {
            check_refused(db, t.path, bad[i].line, bad[i].why, bad[i].name);
            CHECK_MSG(dc_tune_db_lookup(db, K1) == NULL, "%s: a hit", bad[i].name);
            dc_tune_db_free(db);
        }
        free(s.buf);
    }
    /* a refused file is replaced by the next save */
    dc_tune_db *db = open_ok(t.path);
    if (db) {
        dc_tune_db_store(db, K2, "dnnl", "dnnl=1us");
        save_ok(db);
        dc_tune_db_free(db);
    }
    dc_strbuf want = { 0 };
    dc_sb_printf(&want, HEADER "%s%s", tl.buf, e2.buf);
    put_checksum(&want);
    check_file(t.path, &want, "the refused file replaced");
    free(want.buf);
    free(tl.buf);
    free(e1.buf);
    free(e2.buf);
    free(target);
    tdb_end(&t);
}

/* ---- paths ------------------------------------------------------------------------------- */

TEST(tune_db_paths) {
    tdb_env t = tdb_begin("tunedb-cpu");
    char err[DC_ERR_LEN], want[512], path[256];
    /* a directory where the file should be */
    CHECK(mkdir(t.path, 0755) == 0);
    err[0] = 0;
    CHECK(dc_tune_db_open(t.path, err, sizeof err) == NULL);
    snprintf(want, sizeof want, "%s: not a regular file", t.path);
    CHECK_STR_EQ(err, want);
    /* a regular file where a directory should be */
    snprintf(path, sizeof path, "%s/file", t.dir);
    CHECK(write_bytes(path, "x", 1));
    snprintf(path, sizeof path, "%s/file/tune.db", t.dir);
    err[0] = 0;
    CHECK(dc_tune_db_open(path, err, sizeof err) == NULL);
    snprintf(want, sizeof want, "%s: cannot open: Not a directory", path);
    CHECK_STR_EQ(err, want);
    /* a missing directory: opens empty, cannot be saved */
    snprintf(path, sizeof path, "%s/no/such/tune.db", t.dir);
    dc_tune_db *db = open_ok(path);
    if (db) {
        CHECK_STR_EQ(dc_tune_db_message(db), "");
        dc_tune_db_store(db, K1, "dnnl", "");
        err[0] = 0;
        CHECK(!dc_tune_db_save(db, err, sizeof err));
        CHECK_MSG(strstr(err, path) && strstr(err, "No such file or directory"), "err: %s", err);
        dc_tune_db_free(db);
    }
    CHECK_EQ_INT(files_in(t.dir), 2); /* tune.db/ and file */

    /* the default: DIR/tune.db beside the kernel cache */
    snprintf(path, sizeof path, "%s/cache", t.dir);
    set_env("DISCO_CACHE_DIR", path);
    db = open_ok(NULL);
    if (db) {
        snprintf(want, sizeof want, "%s/cache/tune.db", t.dir);
        CHECK_STR_EQ(dc_tune_db_path(db), want);
        dc_tune_db_store(db, K1, "dnnl", "");
        save_ok(db);
        dc_tune_db_free(db);
        CHECK_EQ_INT(files_in(path), 1);
        db = open_ok(want);
        if (db) CHECK_STR_EQ(dc_tune_db_lookup(db, K1), "dnnl");
        dc_tune_db_free(db);
    }
    tdb_end(&t);
}

/* ---- the --show table -------------------------------------------------------------------- */

TEST(tune_db_print) {
    tdb_env t = tdb_begin("tunedb-cpu-a");
    dc_tune_db *db = open_ok(t.path);
    if (!db) goto done;
    dc_tune_db_store(db, "conv n=1", "dnnl", "dnnl=3us");
    save_ok(db);
    dc_tune_db_free(db);
    set_env("DISCO_CPU", "tunedb-cpu-b");
    db = open_ok(t.path);
    if (!db) goto done;
    dc_tune_db_store(db, "matmul m=1", "jit mr=6", "jit=2us dnnl=3us");
    dc_tune_db_store(db, "a\nb \"q\"", "dnnl", "");
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    dc_tune_db_print(db, f);
    fclose(f);
    dc_tune_db_free(db);
    /* the lines, the target descriptions checked by their start and end */
    char codegen[64];
    snprintf(codegen, sizeof codegen, ", codegen %d, tuner %d):", DC_JIT_CODEGEN_VERSION, DC_TUNER_VERSION);
    const char *want[] = {
        NULL, "", "this target (cpu tunedb-cpu-b, features #", codegen,
        "  kernel      choice    times",
        "  matmul m=1  jit mr=6  jit=2us dnnl=3us",
        "  a\\nb \\\"q\\\"  dnnl      ",
        "", "another CPU, ignored (cpu tunedb-cpu-a, features #", codegen,
        "  kernel    choice  times",
        "  conv n=1  dnnl    dnnl=3us",
    };
    char first[256];
    snprintf(first, sizeof first, "%s: 3 entries", t.path);
    want[0] = first;
    char *line = out;
    for (int i = 0; i < 12; i++) {
        char *e = line ? strchr(line, '\n') : NULL;
        CHECK_MSG(e, "the table ends before line %d:\n%s", i, out ? out : "");
        if (!e) break;
        *e = 0;
        bool describe = i == 2 || i == 8;
        if (describe) {
            size_t a = strlen(want[i]), b = strlen(want[i + 1]), len = strlen(line);
            CHECK_MSG(len > a + b && strncmp(line, want[i], a) == 0 &&
                          strcmp(line + len - b, want[i + 1]) == 0,
                      "line %d: %s", i, line);
            i++;
        } else CHECK_STR_EQ(line, want[i]);
        line = e + 1;
    }
    CHECK_STR_EQ(line, "");
    free(out);
done:
    tdb_end(&t);
}
