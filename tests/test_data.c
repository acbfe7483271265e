/* test_data.c — the IDX reader and Fashion-MNIST: small synthetic IDX files (gzip'd through
 * zlib and plain) read back exactly, every malformed case with its message, the missing-dataset
 * message naming the Debian package, the real test split when it is installed (10000 images of
 * 28x28, 1000 per class, pixels in [0, 1]), and the epoch shuffle (a permutation, reproducible,
 * different across epochs, unbiased on 3 elements). Files live in a mkdtemp directory. */
#include "tests/test.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "ir/ir.h"
#include "models/data/data.h"

#define N_IMG 5
#define ROWS 3
#define COLS 4

/* An IDX file's bytes: big-endian magic and dims, then the payload. Returns its length. */
static size_t build_idx(unsigned char *buf, uint32_t magic, int ndims, const uint32_t *dims,
                        const unsigned char *payload, size_t n) {
    size_t k = 0;
    for (int d = -1; d < ndims; d++) {
        uint32_t v = d < 0 ? magic : dims[d];
        for (int s = 24; s >= 0; s -= 8) buf[k++] = (unsigned char)(v >> s);
    }
    memcpy(buf + k, payload, n);
    return k + n;
}

static void write_plain(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    if (!f) return;
    CHECK(fwrite(b, 1, n, f) == n);
    fclose(f);
}

static void write_gz(const char *path, const unsigned char *b, size_t n) {
    gzFile f = gzopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    if (!f) return;
    CHECK(gzwrite(f, b, (unsigned)n) == (int)n);
    CHECK(gzclose(f) == Z_OK);
}

/* The test's data directory and its files: img, lab, img.gz, lab.gz, bad. */
typedef struct {
    char dir[64], img[96], lab[96], img_gz[96], lab_gz[96], bad[96];
    unsigned char pixels[N_IMG * ROWS * COLS], labels[N_IMG];
} fixture;

static void setup(fixture *fx) {
    snprintf(fx->dir, sizeof fx->dir, "/tmp/disco_data_XXXXXX");
    if (!mkdtemp(fx->dir)) fx->dir[0] = 0;
    CHECK_MSG(fx->dir[0], "mkdtemp failed");
    snprintf(fx->img, sizeof fx->img, "%s/img", fx->dir);
    snprintf(fx->lab, sizeof fx->lab, "%s/lab", fx->dir);
    snprintf(fx->img_gz, sizeof fx->img_gz, "%s/img.gz", fx->dir);
    snprintf(fx->lab_gz, sizeof fx->lab_gz, "%s/lab.gz", fx->dir);
    snprintf(fx->bad, sizeof fx->bad, "%s/bad", fx->dir);
    for (int i = 0; i < N_IMG * ROWS * COLS; i++) fx->pixels[i] = (unsigned char)(i * 37 % 256);
    fx->pixels[7] = 255;
    for (int i = 0; i < N_IMG; i++) fx->labels[i] = (unsigned char)((i * 3) % 10);
    unsigned char buf[256];
    uint32_t idims[3] = { N_IMG, ROWS, COLS }, ldims[1] = { N_IMG };
    size_t k = build_idx(buf, 0x803, 3, idims, fx->pixels, sizeof fx->pixels);
    write_plain(fx->img, buf, k);
    write_gz(fx->img_gz, buf, k);
    k = build_idx(buf, 0x801, 1, ldims, fx->labels, sizeof fx->labels);
    write_plain(fx->lab, buf, k);
    write_gz(fx->lab_gz, buf, k);
}

static void teardown(fixture *fx) {
    if (!fx->dir[0]) return;
    const char *files[5] = { fx->img, fx->lab, fx->img_gz, fx->lab_gz, fx->bad };
    for (int i = 0; i < 5; i++) unlink(files[i]);
    CHECK(rmdir(fx->dir) == 0);
}

static void check_exact(const fixture *fx, const dc_dataset *d) {
    CHECK_EQ_INT(d->n, N_IMG);
    CHECK_EQ_INT(d->rows, ROWS);
    CHECK_EQ_INT(d->cols, COLS);
    for (int i = 0; d->images && i < N_IMG * ROWS * COLS; i++)
        CHECK_MSG(d->images[i] == (float)fx->pixels[i] / 255.0f, "pixel %d", i);
    for (int i = 0; d->labels && i < N_IMG; i++) CHECK_EQ_INT(d->labels[i], fx->labels[i]);
}

TEST(idx_round_trip_gzip_and_plain) {
    fixture fx;
    setup(&fx);
    const char *pairs[3][2] = { { fx.img, fx.lab }, { fx.img_gz, fx.lab_gz }, { fx.img_gz, fx.lab } };
    for (int p = 0; p < 3 && fx.dir[0]; p++) {
        dc_dataset d;
        char err[DC_ERR_LEN];
        CHECK_MSG(dc_idx_load(pairs[p][0], pairs[p][1], &d, err, sizeof err), "%s", err);
        check_exact(&fx, &d);
        CHECK(d.images[7] == 1.0f);
        dc_dataset_free(&d);
        CHECK(d.images == NULL && d.labels == NULL && d.n == 0);
    }
    teardown(&fx);
}

/* Writes bytes to fx->bad (gzip'd or not) and expects loading it as images (or labels) to
 * fail with "idx: " and want in the message, leaving *out zeroed. */
static void expect_bad(fixture *fx, bool as_images, bool gz, const unsigned char *b, size_t n,
                       const char *want) {
    if (gz) write_gz(fx->bad, b, n);
    else write_plain(fx->bad, b, n);
    dc_dataset d = { .n = 99 };
    char err[DC_ERR_LEN];
    bool ok = as_images ? dc_idx_load(fx->bad, fx->lab, &d, err, sizeof err)
                        : dc_idx_load(fx->img, fx->bad, &d, err, sizeof err);
    CHECK_MSG(!ok, "loaded: %s", want);
    CHECK_MSG(ok || (strncmp(err, "idx: ", 5) == 0 && strstr(err, want)), "'%s' lacks '%s'",
              err, want);
    CHECK(d.n == 0 && d.images == NULL && d.labels == NULL);
    if (ok) dc_dataset_free(&d);
}

TEST(idx_malformed_files) {
    fixture fx;
    setup(&fx);
    unsigned char b[512];
    uint32_t dims[3] = { N_IMG, ROWS, COLS };
    size_t k;
    for (int gz = 0; gz < 2 && fx.dir[0]; gz++) {
        k = build_idx(b, 0x801, 3, dims, fx.pixels, sizeof fx.pixels);
        expect_bad(&fx, true, gz, b, k, "bad magic 0x00000801 (expected 0x00000803, an IDX image file)");
        k = build_idx(b, 0x803, 1, dims, fx.labels, sizeof fx.labels);
        expect_bad(&fx, false, gz, b, k, "bad magic 0x00000803 (expected 0x00000801, an IDX label file)");
        k = build_idx(b, 0x803, 3, dims, fx.pixels, sizeof fx.pixels);
        expect_bad(&fx, true, gz, b, k - 1, "truncated");
        expect_bad(&fx, true, gz, b, 10, "truncated");
        expect_bad(&fx, true, gz, b, 2, "truncated");
        expect_bad(&fx, true, gz, b, 0, "truncated");
        b[k] = 0;
        expect_bad(&fx, true, gz, b, k + 1, "trailing bytes after the data");
        uint32_t four[1] = { N_IMG - 1 };
        k = build_idx(b, 0x801, 1, four, fx.labels, N_IMG - 1);
        expect_bad(&fx, false, gz, b, k, "/img has 5 images but");
        expect_bad(&fx, false, gz, b, k, "/bad has 4 labels");
        unsigned char labels[N_IMG] = { 1, 2, 3, 10, 4 };
        uint32_t five[1] = { N_IMG };
        k = build_idx(b, 0x801, 1, five, labels, N_IMG);
        expect_bad(&fx, false, gz, b, k, "label 10 at index 3 is out of range 0..9");
        uint32_t huge[3] = { 0xffffffffu, 0xffffffffu, 0xffffffffu };
        k = build_idx(b, 0x803, 3, huge, fx.pixels, sizeof fx.pixels);
        expect_bad(&fx, true, gz, b, k, "dims 4294967295x4294967295x4294967295 are too large");
        uint32_t big[3] = { 1000000, 28, 28 };
        k = build_idx(b, 0x803, 3, big, fx.pixels, sizeof fx.pixels);
        expect_bad(&fx, true, gz, b, k, gz ? "more than the file can hold" : "truncated");
        uint32_t zero[3] = { N_IMG, 0, COLS };
        k = build_idx(b, 0x803, 3, zero, fx.pixels, sizeof fx.pixels);
        expect_bad(&fx, true, gz, b, k, "dimension 1 is 0");
    }
    if (fx.dir[0]) {
        static const unsigned char garbage[] = "this is not an IDX file, nor gzip";
        expect_bad(&fx, true, false, garbage, sizeof garbage, "bad magic 0x74686973");
        static const unsigned char fake_gz[] = { 0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef,
                                                 0x00, 0x03, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99 };
        expect_bad(&fx, true, false, fake_gz, sizeof fake_gz, "/bad: cannot read the magic number");
        /* a gzip stream cut in the middle */
        size_t n = 0;
        unsigned char *whole = (unsigned char *)dc_test_read_file(fx.img_gz, &n);
        if (whole) expect_bad(&fx, true, false, whole, n / 2, "/bad: truncated");
        free(whole);
    }
    teardown(&fx);
}

TEST(fmnist_missing_dataset_message) {
    fixture fx;
    setup(&fx);
    char err[DC_ERR_LEN], want[DC_ERR_LEN];
    dc_dataset d;
    if (fx.dir[0]) {
        CHECK(!dc_fmnist_load(fx.dir, true, &d, err, sizeof err));
        snprintf(want, sizeof want,
                 "fashion-mnist: cannot open %s/train-images-idx3-ubyte.gz: No such file or "
                 "directory (install the Debian package dataset-fashion-mnist: make deps)",
                 fx.dir);
        CHECK_STR_EQ(err, want);
        const char *old = getenv("DISCO_FMNIST_DIR");
        char *saved = old ? strdup(old) : NULL;
        setenv("DISCO_FMNIST_DIR", fx.dir, 1);
        CHECK_STR_EQ(dc_fmnist_dir(), fx.dir);
        CHECK(!dc_fmnist_load(NULL, false, &d, err, sizeof err));
        snprintf(want, sizeof want, "cannot open %s/t10k-images-idx3-ubyte.gz", fx.dir);
        CHECK_MSG(strstr(err, want) && strstr(err, "dataset-fashion-mnist"), "%s", err);
        if (saved) setenv("DISCO_FMNIST_DIR", saved, 1);
        else unsetenv("DISCO_FMNIST_DIR");
        free(saved);
    }
    teardown(&fx);
}

TEST(fmnist_real_test_split) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
        printf("  (skipped: Fashion-MNIST is not installed in %s)\n", dir);
        return;
    }
    dc_dataset d;
    char err[DC_ERR_LEN];
    CHECK_MSG(dc_fmnist_load(dir, false, &d, err, sizeof err), "%s", err);
    if (!d.images) return;
    CHECK_EQ_INT(d.n, 10000);
    CHECK_EQ_INT(d.rows, 28);
    CHECK_EQ_INT(d.cols, 28);
    int64_t hist[10] = { 0 }, total = 0;
    for (int64_t i = 0; i < d.n; i++)
        if (d.labels[i] >= 0 && d.labels[i] <= 9) hist[d.labels[i]]++;
    for (int c = 0; c < 10; c++) {
        CHECK_EQ_INT(hist[c], 1000);
        total += hist[c];
    }
    CHECK_EQ_INT(total, 10000);
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < d.n * 784; i++) {
        lo = d.images[i] < lo ? d.images[i] : lo;
        hi = d.images[i] > hi ? d.images[i] : hi;
    }
    CHECK(lo == 0.0f && hi == 1.0f);
    dc_dataset_free(&d);
}

TEST(shuffle_is_a_reproducible_permutation) {
    enum { N = 1000 };
    int64_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c);
    char *seen = calloc(N, 1);
    if (!a || !b || !c || !seen) abort(); /* out of memory */
    dc_shuffle(a, N, 42, 3);
    dc_shuffle(b, N, 42, 3);
    CHECK(memcmp(a, b, N * sizeof *a) == 0);
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        CHECK(a[i] >= 0 && a[i] < N && !seen[a[i]]);
        if (a[i] >= 0 && a[i] < N) seen[a[i]] = 1;
        fixed += a[i] == i;
    }
    CHECK(fixed < 10); /* a random permutation has ~1 fixed point */
    dc_shuffle(b, N, 42, 4);
    dc_shuffle(c, N, 43, 3);
    CHECK(memcmp(a, b, N * sizeof *a) != 0);
    CHECK(memcmp(a, c, N * sizeof *a) != 0);
    dc_shuffle(c, 1, 42, 0);
    CHECK_EQ_INT(c[0], 0);
    dc_shuffle(c, 0, 42, 0);
    free(a);
    free(b);
    free(c);
    free(seen);
}

/* The 6 orders of 3 elements over 6000 epochs: each ~1000 (sd ~29); 5 sd is a wide margin. */
TEST(shuffle_is_unbiased_on_three) {
    int count[6] = { 0 };
    for (uint64_t e = 0; e < 6000; e++) {
        int64_t p[3];
        dc_shuffle(p, 3, 7, e);
        int code = (int)(p[0] * 3 + p[1]); /* p[2] is implied */
        static const int index[9] = { -1, 0, 1, 2, -1, 3, 4, 5, -1 };
        if (code >= 0 && code < 9 && index[code] >= 0) count[index[code]]++;
    }
    for (int k = 0; k < 6; k++) CHECK_MSG(abs(count[k] - 1000) < 5 * 29, "order %d: %d", k, count[k]);
}
