/* test_checkpoint.c — checkpoints: a bitwise round trip with the file's layout checked by hand
 * (magic, version, XXH3 checksum recomputed here), every single-byte corruption and every
 * truncation at sampled positions refused with the right message and the params untouched,
 * the mismatch messages (missing, extra, shape, dtype, meta, magic, version), and a child
 * killed with SIGKILL while writing: the last complete checkpoint still loads. Reading only the
 * meta (dc_checkpoint_read_meta) gives the same meta and refuses the same files alike. Files live in a
 * mkdtemp directory that is removed at the end. */
#include "tests/test.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "runtime/runtime.h"

typedef struct { int64_t step, pos; } meta_t;

static const char *small_ir =
    "graph @t(%x: f32[2,3]) -> (f32[2,4]) {\n"
    "  %0 = param \"l0.w\" : f32[3,4] init=normal(1.0)\n"
    "  %1 = param \"l0.b\" : f32[4] init=uniform(-1.0, 1.0)\n"
    "  %2 = linear %x, %0, %1 : f32[2,4]\n"
    "  return %2\n"
    "}\n";

/* A graph and its executor; both NULL on failure (reported). */
typedef struct { dc_graph *g; dc_exec *e; } model;

static model make_model(const char *ir, uint64_t seed) {
    char err[DC_ERR_LEN];
    model m = { dc_parse(ir, strlen(ir), "ckpt_test.dcir", err, sizeof err), NULL };
    CHECK_MSG(m.g != NULL, "parse: %s", err);
    if (m.g) m.e = dc_exec_new(m.g, seed, err, sizeof err);
    CHECK_MSG(!m.g || m.e != NULL, "exec: %s", err);
    return m;
}

static void free_model(model *m) {
    if (m->e) dc_exec_free(m->e);
    if (m->g) dc_graph_free(m->g);
}

static void make_tmpdir(char *dir, size_t len) {
    snprintf(dir, len, "/tmp/disco_ckpt_XXXXXX");
    if (!mkdtemp(dir)) dir[0] = 0;
    CHECK_MSG(dir[0], "mkdtemp failed");
}

/* Removes dir/ckpt, dir/ckpt.tmp and dir. */
static void remove_tmpdir(const char *dir) {
    char p[256];
    snprintf(p, sizeof p, "%s/ckpt", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/ckpt.tmp", dir);
    unlink(p);
    CHECK(rmdir(dir) == 0);
}

/* Writes a fresh file (unlinked first: ext4 flushes a file truncated by O_TRUNC on close). */
static bool write_bytes(const char *path, const unsigned char *b, size_t n) {
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(b, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* A malloc'd copy of every param's bytes, in node order (the oracle of "unchanged"). */
static unsigned char *snapshot(model *m, size_t *n) {
    size_t total = 0, at = 0;
    for (int i = 0; i < m->g->n_nodes; i++)
        if (m->g->nodes[i].op == DC_OP_PARAM)
            total += (size_t)dc_numel(&m->g->nodes[i].type.shape) * 4;
    unsigned char *s = malloc(total ? total : 1);
    for (int i = 0; s && i < m->g->n_nodes; i++)
        if (m->g->nodes[i].op == DC_OP_PARAM) {
            size_t k = (size_t)dc_numel(&m->g->nodes[i].type.shape) * 4;
            memcpy(s + at, dc_exec_value(m->e, i)->data, k);
            at += k;
        }
    *n = total;
    return s;
}

static bool same_params(model *m, const unsigned char *snap, size_t n) {
    size_t k;
    unsigned char *now = snapshot(m, &k);
    bool same = now && k == n && memcmp(now, snap, n) == 0;
    free(now);
    return same;
}

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Recomputes the header hash and the file checksum after an edit, so only the edit is wrong. */
static void reseal(unsigned char *b, size_t n) {
    put_le64(b + 56, XXH3_64bits(b, 56));
    put_le64(b + n - 8, XXH3_64bits(b, n - 8));
}

/* Loads path into m expecting failure with "ckpt: PATH: " + want; params must be unchanged. */
/* Loading path into m fails with want and changes nothing; when the file itself is at fault
 * (not the graph), reading only its meta fails with the same message. */
static void expect_refused(model *m, const char *path, const char *want, const char *what) {
    char err[DC_ERR_LEN], prefix[300];
    size_t n;
    unsigned char *before = snapshot(m, &n);
    meta_t meta = { -1, -1 };
    bool ok = dc_checkpoint_load(path, m->e, &meta, sizeof meta, err, sizeof err);
    snprintf(prefix, sizeof prefix, "ckpt: %s: ", path);
    CHECK_MSG(!ok, "%s: loaded", what);
    CHECK_MSG(ok || (strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, want)),
              "%s: message '%s' lacks '%s'", what, err, want);
    CHECK_MSG(same_params(m, before, n), "%s: params changed", what);
    CHECK_MSG(meta.step == -1 && meta.pos == -1, "%s: meta changed", what);
    bool graph_fault = strstr(want, "tensor '") != NULL;
    char err2[DC_ERR_LEN];
    ok = dc_checkpoint_read_meta(path, &meta, sizeof meta, err2, sizeof err2);
    CHECK_MSG(graph_fault || (!ok && strcmp(err, err2) == 0), "%s: read_meta says '%s', load said '%s'", what,
              ok ? "ok" : err2, err);
    CHECK_MSG(graph_fault || (meta.step == -1 && meta.pos == -1), "%s: meta changed by read_meta", what);
    free(before);
}

/* Saves a's params to path with meta {123, 456}; returns the file's bytes (malloc'd). */
static unsigned char *save_and_read(model *a, const char *path, size_t *n) {
    char err[DC_ERR_LEN];
    meta_t meta = { 123, 456 };
    CHECK_MSG(dc_checkpoint_save(path, a->e, &meta, sizeof meta, err, sizeof err), "save: %s", err);
    return (unsigned char *)dc_test_read_file(path, n);
}

TEST(checkpoint_round_trip_bitwise) {
    char dir[64], path[128], err[DC_ERR_LEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt", dir);
    model a = make_model(small_ir, 1), b = make_model(small_ir, 2);
    if (a.e && b.e && dir[0]) {
        size_t n, sn;
        unsigned char *bytes = save_and_read(&a, path, &n);
        unsigned char *want = snapshot(&a, &sn);
        CHECK(!same_params(&b, want, sn)); /* different seeds: the load must change them */
        CHECK(bytes && n > 72 && memcmp(bytes, "DISCOCKP", 8) == 0);
        CHECK(bytes && bytes[8] == 1 && bytes[9] == 0 && bytes[10] == 0 && bytes[11] == 0);
        CHECK(bytes && le64(bytes + n - 8) == XXH3_64bits(bytes, n - 8));
        CHECK(bytes && le64(bytes + 32) % 64 == 0);
        meta_t meta = { 0, 0 };
        CHECK_MSG(dc_checkpoint_load(path, b.e, &meta, sizeof meta, err, sizeof err), "%s", err);
        CHECK(same_params(&b, want, sn));
        CHECK_EQ_INT(meta.step, 123);
        CHECK_EQ_INT(meta.pos, 456);
        meta_t only = { 0, 0 };
        CHECK_MSG(dc_checkpoint_read_meta(path, &only, sizeof only, err, sizeof err), "%s", err);
        CHECK(only.step == 123 && only.pos == 456);
        /* a checkpoint without meta */
        CHECK(dc_checkpoint_save(path, a.e, NULL, 0, err, sizeof err));
        CHECK_MSG(dc_checkpoint_load(path, b.e, NULL, 0, err, sizeof err), "%s", err);
        CHECK(same_params(&b, want, sn));
        free(bytes);
        free(want);
    }
    free_model(&a);
    free_model(&b);
    if (dir[0]) remove_tmpdir(dir);
}

TEST(checkpoint_every_corruption_and_truncation_refused) {
    char dir[64], path[128], what[64];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt", dir);
    model a = make_model(small_ir, 1), b = make_model(small_ir, 2);
    size_t n = 0;
    unsigned char *bytes = a.e && b.e && dir[0] ? save_and_read(&a, path, &n) : NULL;
    unsigned char *c = bytes ? malloc(n) : NULL;
    for (size_t pos = 0; c && pos < n; pos += pos < 160 ? 1 : 5) {
        static const unsigned char flips[3] = { 0x01, 0x80, 0xff };
        for (int k = 0; k < 3; k++) {
            memcpy(c, bytes, n);
            c[pos] ^= flips[k];
            CHECK(write_bytes(path, c, n));
            const char *want = pos < 8 ? "not a disco checkpoint (bad magic)"
                             : pos < 12 ? "unsupported version"
                             : pos < 64 ? "bad checksum (header)"
                                        : "bad checksum";
            snprintf(what, sizeof what, "byte %zu ^ 0x%02x", pos, flips[k]);
            expect_refused(&b, path, want, what);
        }
    }
    for (size_t cut = 0; c && cut < n; cut += cut < 100 ? 1 : 11) {
        CHECK(write_bytes(path, bytes, cut));
        snprintf(what, sizeof what, "cut at %zu", cut);
        expect_refused(&b, path, "truncated (", what);
    }
    if (c) {
        CHECK(write_bytes(path, bytes, n - 1));
        expect_refused(&b, path, "truncated (", "cut at n-1");
        CHECK(write_bytes(path, bytes, n));
        FILE *f = fopen(path, "ab");
        CHECK(f && fputc(0, f) == 0);
        if (f) fclose(f);
        expect_refused(&b, path, "1 trailing bytes", "one byte appended");
    }
    free(c);
    free(bytes);
    free_model(&a);
    free_model(&b);
    if (dir[0]) remove_tmpdir(dir);
}

/* Saves graph `from`'s checkpoint and loads it into graph `to`, expecting want. */
static void mismatch_case(const char *from, const char *to, const char *want) {
    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt", dir);
    model a = make_model(from, 1), b = make_model(to, 2);
    if (a.e && b.e && dir[0]) {
        size_t n;
        free(save_and_read(&a, path, &n));
        expect_refused(&b, path, want, want);
    }
    free_model(&a);
    free_model(&b);
    if (dir[0]) remove_tmpdir(dir);
}

TEST(checkpoint_graph_mismatch_messages) {
    mismatch_case(small_ir,
                  "graph @t(%x: f32[2,3]) -> (f32[2,4]) {\n"
                  "  %0 = param \"l0.w\" : f32[3,4] init=normal(1.0)\n"
                  "  %1 = param \"l0.b\" : f32[4] init=zeros\n"
                  "  %2 = param \"l1.w\" : f32[4,4] init=zeros\n"
                  "  %3 = linear %x, %0, %1 : f32[2,4]\n"
                  "  %4 = matmul %3, %2 {trans_a=false, trans_b=false} : f32[2,4]\n"
                  "  return %4\n"
                  "}\n",
                  "missing tensor 'l1.w'");
    mismatch_case(small_ir,
                  "graph @t(%x: f32[2,3]) -> (f32[2,4]) {\n"
                  "  %0 = param \"l0.w\" : f32[3,4] init=normal(1.0)\n"
                  "  %1 = matmul %x, %0 {trans_a=false, trans_b=false} : f32[2,4]\n"
                  "  return %1\n"
                  "}\n",
                  "tensor 'l0.b' is not a param of the graph");
    mismatch_case(small_ir,
                  "graph @t(%x: f32[2,4]) -> (f32[2,4]) {\n"
                  "  %0 = param \"l0.w\" : f32[4,4] init=normal(1.0)\n"
                  "  %1 = param \"l0.b\" : f32[4] init=zeros\n"
                  "  %2 = linear %x, %0, %1 : f32[2,4]\n"
                  "  return %2\n"
                  "}\n",
                  "tensor 'l0.w' is f32[3,4], the graph has f32[4,4]");
}

/* Edits one saved file in several ways (resealed so only the edit is wrong). */
TEST(checkpoint_file_level_messages) {
    char dir[64], path[128], err[DC_ERR_LEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt", dir);
    model a = make_model(small_ir, 1), b = make_model(small_ir, 2);
    size_t n = 0;
    unsigned char *bytes = a.e && b.e && dir[0] ? save_and_read(&a, path, &n) : NULL;
    if (bytes) {
        /* the first entry is "l0.w": u32 name_len at 64, the name at 68, u32 dtype at 72 */
        CHECK(memcmp(bytes + 68, "l0.w", 4) == 0);
        bytes[72] = DC_I32;
        reseal(bytes, n);
        CHECK(write_bytes(path, bytes, n));
        expect_refused(&b, path, "tensor 'l0.w' is i32[3,4], the graph has f32[3,4]", "dtype");
        bytes[72] = DC_F32;
        bytes[8] = 2; /* a future version: nothing after the version is read */
        CHECK(write_bytes(path, bytes, n));
        expect_refused(&b, path, "unsupported version 2 (this disco reads version 1)", "version");
        bytes[8] = 1;
        memcpy(bytes, "NOTACKPT", 8);
        CHECK(write_bytes(path, bytes, n));
        expect_refused(&b, path, "not a disco checkpoint (bad magic)", "magic");
        memcpy(bytes, "DISCOCKP", 8);
        bytes[12] = 0xff; /* n_tensors: a huge count must be bounded, not allocated */
        bytes[13] = 0xff;
        bytes[14] = 0xff;
        reseal(bytes, n);
        CHECK(write_bytes(path, bytes, n));
        expect_refused(&b, path, "inconsistent sizes in the header", "count");
        CHECK(dc_checkpoint_save(path, a.e, &(meta_t){ 1, 2 }, sizeof(meta_t), err, sizeof err));
        size_t before_n;
        unsigned char *before = snapshot(&b, &before_n);
        int64_t small = 0;
        CHECK(!dc_checkpoint_load(path, b.e, &small, sizeof small, err, sizeof err));
        CHECK(strstr(err, "meta is 16 bytes, the caller expects 8") != NULL);
        CHECK(same_params(&b, before, before_n));
        free(before);
        unlink(path);
        expect_refused(&b, path, "cannot open: No such file or directory", "missing file");
        snprintf(err, sizeof err, "%s/no/such/dir/ckpt", dir);
        CHECK(!dc_checkpoint_save(err, a.e, NULL, 0, err, sizeof err));
        CHECK(strncmp(err, "ckpt: ", 6) == 0 && strstr(err, "cannot create") != NULL);
    }
    free(bytes);
    free_model(&a);
    free_model(&b);
    if (dir[0]) remove_tmpdir(dir);
}

/* ---- killed mid-write -------------------------------------------------------------------- */

static const char *big_ir =
    "graph @big(%x: f32[1,512]) -> (f32[1,512]) {\n"
    "  %0 = param \"a.w\" : f32[512,1024] init=zeros\n"
    "  %1 = param \"b.w\" : f32[1024,512] init=zeros\n"
    "  %2 = matmul %x, %0 {trans_a=false, trans_b=false} : f32[1,1024]\n"
    "  %3 = matmul %2, %1 {trans_a=false, trans_b=false} : f32[1,512]\n"
    "  return %3\n"
    "}\n";

/* The params of generation k: element i of param j is a function of (k, j, i). */
static void fill_generation(model *m, int64_t k) {
    for (int j = 0; j < m->g->n_nodes; j++) {
        if (m->g->nodes[j].op != DC_OP_PARAM) continue;
        dc_tensor *t = dc_exec_value(m->e, j);
        int64_t n = dc_numel(&t->type.shape);
        for (int64_t i = 0; i < n; i++) ((float *)t->data)[i] = (float)((k * 7919 + j * 131 + i) % 1000003);
    }
}

static bool is_generation(model *m, int64_t k) {
    for (int j = 0; j < m->g->n_nodes; j++) {
        if (m->g->nodes[j].op != DC_OP_PARAM) continue;
        const dc_tensor *t = dc_exec_value(m->e, j);
        int64_t n = dc_numel(&t->type.shape);
        for (int64_t i = 0; i < n; i++)
            if (((float *)t->data)[i] != (float)((k * 7919 + j * 131 + i) % 1000003)) return false;
    }
    return true;
}

/* The child: saves generations 1, 2, ... until killed. */
static void child_saves_forever(model *m, const char *path) {
    char err[DC_ERR_LEN];
    for (int64_t k = 1; k < 100000; k++) {
        fill_generation(m, k);
        if (!dc_checkpoint_save(path, m->e, &k, sizeof k, err, sizeof err)) _exit(3);
    }
    _exit(0);
}

TEST(checkpoint_survives_sigkill_mid_write) {
    char dir[64], path[128], err[DC_ERR_LEN];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt", dir);
    model m = make_model(big_ir, 1);
    srand((unsigned)time(NULL));
    for (int round = 0; round < 4 && m.e && dir[0]; round++) {
        int64_t k = 0;
        fill_generation(&m, 0);
        CHECK_MSG(dc_checkpoint_save(path, m.e, &k, sizeof k, err, sizeof err), "%s", err);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) child_saves_forever(&m, path);
        CHECK(pid > 0);
        if (pid < 0) break;
        usleep((useconds_t)(5000 + rand() % 40000));
        kill(pid, SIGKILL);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
        fill_generation(&m, -1);
        k = -1;
        CHECK_MSG(dc_checkpoint_load(path, m.e, &k, sizeof k, err, sizeof err), "round %d: %s",
                  round, err);
        CHECK_MSG(k >= 0 && is_generation(&m, k), "round %d: params are not generation %lld",
                  round, (long long)k);
        /* a leftover PATH.tmp does not break the next save */
        k = 77;
        fill_generation(&m, k);
        CHECK_MSG(dc_checkpoint_save(path, m.e, &k, sizeof k, err, sizeof err), "%s", err);
        fill_generation(&m, 0);
        CHECK(dc_checkpoint_load(path, m.e, &k, sizeof k, err, sizeof err));
        CHECK(k == 77 && is_generation(&m, 77));
    }
    free_model(&m);
    if (dir[0]) remove_tmpdir(dir);
}
