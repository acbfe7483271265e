/* test_npy.c — .npy read and write: round trips of f32 and i32 at ranks 0..6, the exact bytes
 * of a written header, a hand-written 2.0 file, malformed files each with its message, and
 * exchange with numpy in both directions when numpy is installed. Files live in a mkdtemp
 * directory that is removed at the end. */
#include "tests/test.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/runtime.h"

/* A fresh temporary directory; "" if none could be made. */
static void make_tmpdir(char *dir, size_t len) {
    snprintf(dir, len, "/tmp/disco_npy_XXXXXX");
    if (!mkdtemp(dir)) dir[0] = 0;
    CHECK_MSG(dir[0], "mkdtemp failed");
}

static void write_bytes(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    if (!f) return;
    CHECK(fwrite(bytes, 1, n, f) == n);
    fclose(f);
}

/* Builds a .npy byte string: magic, version major.0, header length (2 or 4 bytes), header
 * text, then data_len bytes of data (0x11 each). Returns its length. */
static size_t build_npy(unsigned char *buf, int major, const char *header, size_t data_len) {
    size_t h = strlen(header), k = 0;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    k = 8;
    buf[k++] = (unsigned char)(h & 0xff);
    buf[k++] = (unsigned char)(h >> 8);
    if (major >= 2) {
        buf[k++] = (unsigned char)(h >> 16);
        buf[k++] = (unsigned char)(h >> 24);
    }
    memcpy(buf + k, header, h);
    k += h;
    memset(buf + k, 0x11, data_len);
    return k + data_len;
}

TEST(npy_round_trip_ranks_0_to_6) {
    char dir[64], path[128], err[DC_ERR_LEN];
    make_tmpdir(dir, sizeof dir);
    static const int64_t dims[6] = { 2, 1, 3, 2, 1, 2 };
    for (int dt = 0; dt < 2 && dir[0]; dt++)
        for (int rank = 0; rank <= 6; rank++) {
            dc_type t = { .dtype = dt ? DC_I32 : DC_F32, .shape = { .rank = rank } };
            for (int d = 0; d < rank; d++) t.shape.dim[d] = dims[d];
            dc_tensor *x = dc_tensor_new(&t);
            int64_t n = dc_numel(&t.shape);
            for (int64_t i = 0; i < n; i++) {
                if (dt) ((int32_t *)x->data)[i] = (int32_t)(i * 7919 - 100000);
                else ((float *)x->data)[i] = (float)i / 3.0f - 1.5f;
            }
            snprintf(path, sizeof path, "%s/r%d_%d.npy", dir, rank, dt);
            CHECK_MSG(dc_npy_write(path, x, err, sizeof err), "write: %s", err);
            dc_tensor *y = dc_npy_read(path, err, sizeof err);
            CHECK_MSG(y != NULL, "read %s: %s", path, err);
            if (y) {
                CHECK_MSG(dc_type_eq(&x->type, &y->type), "rank %d dtype %d: type changed", rank, dt);
                CHECK(memcmp(x->data, y->data, (size_t)n * 4) == 0);
            }
            /* the data starts at a multiple of 64 and no temp file is left behind */
            size_t len = 0;
            char *raw = dc_test_read_file(path, &len);
            CHECK(raw && len >= 64 && (len - (size_t)n * 4) % 64 == 0);
            free(raw);
            char tmp[160];
            snprintf(tmp, sizeof tmp, "%s.tmp", path);
            CHECK(access(tmp, F_OK) != 0);
            unlink(path);
            dc_tensor_free(x);
            dc_tensor_free(y);
        }
    if (dir[0]) CHECK(rmdir(dir) == 0);
}

TEST(npy_written_header_bytes) {
    char dir[64], path[128], err[DC_ERR_LEN];
    make_tmpdir(dir, sizeof dir);
    if (!dir[0]) return;
    dc_type t = { .dtype = DC_F32, .shape = { .rank = 2, .dim = { 2, 3 } } };
    dc_tensor *x = dc_tensor_new(&t);
    ((float *)x->data)[0] = 1.0f; /* bytes 00 00 80 3f */
    snprintf(path, sizeof path, "%s/h.npy", dir);
    CHECK_MSG(dc_npy_write(path, x, err, sizeof err), "write: %s", err);
    size_t len = 0;
    unsigned char *raw = (unsigned char *)dc_test_read_file(path, &len);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    CHECK_EQ_INT(len, 128 + 24);
    if (raw && len == 128 + 24) {
        CHECK(memcmp(raw, "\x93NUMPY\x01\x00", 8) == 0);
        CHECK_EQ_INT(raw[8] | raw[9] << 8, 118);
        CHECK(memcmp(raw + 10, dict, strlen(dict)) == 0);
        for (size_t i = 10 + strlen(dict); i < 127; i++) CHECK_EQ_INT(raw[i], ' ');
        CHECK_EQ_INT(raw[127], '\n');
        CHECK(memcmp(raw + 128, "\x00\x00\x80\x3f", 4) == 0);
    }
    free(raw);
    unlink(path);
    dc_tensor_free(x);
    rmdir(dir);
}

TEST(npy_reads_hand_written_versions) {
    char dir[64], path[128], err[DC_ERR_LEN];
    make_tmpdir(dir, sizeof dir);
    if (!dir[0]) return;
    unsigned char buf[256];
    /* 2.0: 4-byte header length, keys in another order, double quotes, no trailing comma */
    size_t n = build_npy(buf, 2, "{\"shape\": (2,), 'fortran_order': False, 'descr': '<i4'}\n", 0);
    memcpy(buf + n, "\x07\x00\x00\x00\xfd\xff\xff\xff", 8); /* 7, -3 */
    snprintf(path, sizeof path, "%s/v2.npy", dir);
    write_bytes(path, buf, n + 8);
    dc_tensor *y = dc_npy_read(path, err, sizeof err);
    CHECK_MSG(y != NULL, "read: %s", err);
    if (y) {
        CHECK(y->type.dtype == DC_I32 && y->type.shape.rank == 1 && y->type.shape.dim[0] == 2);
        CHECK_EQ_INT(((int32_t *)y->data)[0], 7);
        CHECK_EQ_INT(((int32_t *)y->data)[1], -3);
    }
    dc_tensor_free(y);
    /* 3.0, rank 0: a scalar float 2.5 (bytes 00 00 20 40) */
    n = build_npy(buf, 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }   \n", 0);
    memcpy(buf + n, "\x00\x00\x20\x40", 4);
    write_bytes(path, buf, n + 4);
    y = dc_npy_read(path, err, sizeof err);
    CHECK_MSG(y != NULL, "read: %s", err);
    if (y) {
        CHECK(y->type.dtype == DC_F32 && y->type.shape.rank == 0);
        CHECK_NEAR(((float *)y->data)[0], 2.5, 0, 0);
    }
    dc_tensor_free(y);
    unlink(path);
    rmdir(dir);
}

typedef struct {
    const char *name;
    int major;           /* 0: raw bytes below instead of a built file */
    const char *header;
    size_t data_len;
    const char *raw;     /* major == 0: the whole file */
    size_t raw_len;
    const char *expect;  /* the message after "PATH: " */
} bad_file;

static const bad_file bad_files[] = {
    { "empty file", 0, NULL, 0, "", 0, "not a .npy file (bad magic)" },
    { "text file", 0, NULL, 0, "hello, world\n", 13, "not a .npy file (bad magic)" },
    { "magic only", 0, NULL, 0, "\x93NUMPY", 6, "truncated .npy preamble (6 bytes)" },
    { "version 4.0", 0, NULL, 0, "\x93NUMPY\x04\x00\x10\x00{}", 12,
      "unsupported .npy format version 4.0" },
    { "header past the end", 0, NULL, 0, "\x93NUMPY\x01\x00\xc8\x00{'descr': '<f4'}", 26,
      "truncated header: it claims 200 bytes, file has 16" },
    { "header length overflow", 0, NULL, 0, "\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14,
      "header length 4294967295 is too large" },
    { "float64", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", 16, NULL, 0,
      "unsupported dtype '<f8' (disco reads float32 and int32)" },
    { "big-endian", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", 8, NULL, 0,
      "unsupported dtype '>f4' (disco reads float32 and int32)" },
    { "fortran order", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", 24,
      NULL, 0, "fortran_order True is not supported (disco reads C order)" },
    { "data short", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 20,
      NULL, 0, "data truncated: the shape needs 24 bytes, file has 20" },
    { "trailing bytes", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }\n", 28,
      NULL, 0, "4 trailing bytes after the data" },
    { "missing shape", 1, "{'descr': '<f4', 'fortran_order': False, }\n", 4, NULL, 0,
      "malformed header: missing key 'shape'" },
    { "rank 7", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1), }\n", 4,
      NULL, 0, "malformed header: shape has more than 6 dims at offset 63" },
    { "zero dim", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0), }\n", 0, NULL, 0,
      "dim 1 of the shape is 0 (disco needs dims >= 1)" },
    { "unterminated dict", 1, "{'descr': '<f4'", 0, NULL, 0,
      "malformed header: expected ',' or '}' at offset 15" },
    { "text after dict", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x\n", 4,
      NULL, 0, "malformed header: unexpected text after the dict at offset 58" },
    { "duplicate key", 1, "{'descr': '<f4', 'descr': '<f4'}\n", 4, NULL, 0,
      "malformed header: duplicate key at offset 17" },
    { "unknown key", 1, "{'dtype': '<f4'}\n", 4, NULL, 0, "malformed header: unknown key at offset 1" },
    { "huge dim", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n",
      4, NULL, 0, "malformed header: dimension too large at offset 64" },
    { "negative dim", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", 4, NULL,
      0, "malformed header: expected a non-negative integer at offset 51" },
    { "bad bool", 1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }\n", 8, NULL, 0,
      "malformed header: expected True or False at offset 34" },
    { "unterminated string", 1, "{'descr': '<f4", 0, NULL, 0,
      "malformed header: unterminated string at offset 14" },
};

TEST(npy_malformed_files) {
    char dir[64], path[128], err[DC_ERR_LEN], want[DC_ERR_LEN];
    make_tmpdir(dir, sizeof dir);
    if (!dir[0]) return;
    snprintf(path, sizeof path, "%s/bad.npy", dir);
    unsigned char buf[512];
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        const bad_file *b = &bad_files[i];
        if (b->major) write_bytes(path, buf, build_npy(buf, b->major, b->header, b->data_len));
        else write_bytes(path, b->raw, b->raw_len);
        err[0] = 0;
        dc_tensor *y = dc_npy_read(path, err, sizeof err);
        snprintf(want, sizeof want, "%s: %s", path, b->expect);
        dc_test_case(b->name, y == NULL && strcmp(err, want) == 0,
                     "npy malformed file '%s':\n  got:      %s\n  expected: %s", b->name,
                     y ? "(a tensor)" : err, want);
        dc_tensor_free(y);
    }
    unlink(path);
    dc_tensor *y = dc_npy_read(path, err, sizeof err);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    CHECK(y == NULL);
    CHECK_STR_EQ(err, want);
    /* writing into a directory that does not exist fails with a message, leaves nothing */
    dc_type t = { .dtype = DC_F32, .shape = { .rank = 1, .dim = { 2 } } };
    dc_tensor *x = dc_tensor_new(&t);
    snprintf(path, sizeof path, "%s/missing/out.npy", dir);
    CHECK(!dc_npy_write(path, x, err, sizeof err));
    snprintf(want, sizeof want, "%s/missing/out.npy.tmp: cannot create: No such file or directory", dir);
    CHECK_STR_EQ(err, want);
    dc_tensor_free(x);
    CHECK(rmdir(dir) == 0);
}

/* Runs a python3 snippet; true when it exits 0. */
static bool python(const char *code) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"%s\"", code);
    return system(cmd) == 0;
}

TEST(npy_numpy_interop) {
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        printf("note: numpy not available; skipping npy_numpy_interop\n");
        return;
    }
    char dir[64], path[128], code[1024], err[DC_ERR_LEN];
    make_tmpdir(dir, sizeof dir);
    if (!dir[0]) return;
    /* disco writes, numpy reads: f32 [3,4] = i/2 - 1, i32 [5] = i*i - 3 */
    dc_type tf = { .dtype = DC_F32, .shape = { .rank = 2, .dim = { 3, 4 } } };
    dc_type ti = { .dtype = DC_I32, .shape = { .rank = 1, .dim = { 5 } } };
    dc_tensor *f = dc_tensor_new(&tf), *i32 = dc_tensor_new(&ti);
    for (int i = 0; i < 12; i++) ((float *)f->data)[i] = (float)i / 2 - 1;
    for (int i = 0; i < 5; i++) ((int32_t *)i32->data)[i] = i * i - 3;
    snprintf(path, sizeof path, "%s/f.npy", dir);
    CHECK(dc_npy_write(path, f, err, sizeof err));
    snprintf(path, sizeof path, "%s/i.npy", dir);
    CHECK(dc_npy_write(path, i32, err, sizeof err));
    snprintf(code, sizeof code,
             "import numpy as np, sys; d='%s'; a=np.load(d+'/f.npy'); b=np.load(d+'/i.npy');"
             "ok = a.dtype==np.float32 and a.shape==(3,4) and (a.ravel()==np.arange(12,dtype=np.float32)/2-1).all()"
             " and b.dtype==np.int32 and b.shape==(5,) and (b==np.arange(5)**2-3).all();"
             "sys.exit(0 if ok else 1)", dir);
    CHECK_MSG(python(code), "numpy did not read disco's files back");
    /* numpy writes (1.0 and 2.0, rank 3 and rank 0), disco reads */
    snprintf(code, sizeof code,
             "import numpy as np; d='%s'; np.save(d+'/n3.npy', np.arange(24,dtype=np.float32).reshape(2,3,4)/7);"
             "np.save(d+'/n0.npy', np.array(-5, dtype=np.int32));"
             "f=open(d+'/n2.npy','wb'); np.lib.format.write_array(f, np.arange(6,dtype=np.int32).reshape(3,2), version=(2,0)); f.close()",
             dir);
    CHECK_MSG(python(code), "numpy could not write its files");
    snprintf(path, sizeof path, "%s/n3.npy", dir);
    dc_tensor *n3 = dc_npy_read(path, err, sizeof err);
    CHECK_MSG(n3 != NULL, "%s", err);
    if (n3) {
        CHECK(n3->type.dtype == DC_F32 && n3->type.shape.rank == 3 && n3->type.shape.dim[2] == 4);
        for (int i = 0; i < 24; i++) CHECK_NEAR(((float *)n3->data)[i], (float)i / 7.0f, 0, 0);
    }
    snprintf(path, sizeof path, "%s/n0.npy", dir);
    dc_tensor *n0 = dc_npy_read(path, err, sizeof err);
    CHECK_MSG(n0 != NULL, "%s", err);
    if (n0) CHECK(n0->type.shape.rank == 0 && ((int32_t *)n0->data)[0] == -5);
    snprintf(path, sizeof path, "%s/n2.npy", dir);
    dc_tensor *n2 = dc_npy_read(path, err, sizeof err);
    CHECK_MSG(n2 != NULL, "%s", err);
    if (n2) {
        CHECK(n2->type.dtype == DC_I32 && n2->type.shape.rank == 2 && n2->type.shape.dim[0] == 3);
        for (int i = 0; i < 6; i++) CHECK_EQ_INT(((int32_t *)n2->data)[i], i);
    }
    static const char *files[] = { "f", "i", "n3", "n0", "n2" };
    for (int k = 0; k < 5; k++) {
        snprintf(path, sizeof path, "%s/%s.npy", dir, files[k]);
        unlink(path);
    }
    CHECK(rmdir(dir) == 0);
    dc_tensor_free(f);
    dc_tensor_free(i32);
    dc_tensor_free(n3);
    dc_tensor_free(n0);
    dc_tensor_free(n2);
}
