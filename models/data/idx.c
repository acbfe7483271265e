/* idx.c — IDX files (the MNIST format: big-endian magic and dims, then u8 data), gzip'd or
 * plain, read through zlib; Fashion-MNIST from Debian's dataset-fashion-mnist on top; and the
 * deterministic epoch shuffle. Every size in a header is bounded by what the file can hold
 * before anything is allocated, and every malformed file gives an error naming it. */
#include "models/data/data.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_IMAGES 0x00000803u
#define IDX_LABELS 0x00000801u
#define MAX_PIXELS (1 << 24)       /* rows*cols of one image */
#define MAX_INFLATE 1032           /* deflate never expands data by more than ~1032x */
#define MAX_CHUNK (1u << 30)       /* one gzread call */
#define FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define FMNIST_HINT " (install the Debian package dataset-fashion-mnist: make deps)"
/* dc_shuffle's streams, far from the small stream ids of random ops under the same seed */
#define SHUFFLE_STREAM_BASE ((uint64_t)1 << 62)

/* An open IDX file: its header, and the most data bytes its size allows. */
typedef struct {
    const char *path;
    gzFile gz;
    uint32_t dim[3];
    uint64_t limit;                /* upper bound of the payload size */
    bool plain;                    /* not gzip'd: the payload size is exact */
    bool missing;                  /* open failed with ENOENT */
} idx_file;

/* Reads exactly n bytes; false with "PATH: ..." on a short read or a gzip error. */
static bool gz_read_all(idx_file *x, void *buf, uint64_t n, const char *what, char *err,
                        size_t len) {
    unsigned char *p = buf;
    uint64_t got = 0;
    while (got < n) {
        unsigned chunk = n - got < MAX_CHUNK ? (unsigned)(n - got) : MAX_CHUNK;
        int k = gzread(x->gz, p + got, chunk);
        if (k < 0) {
            int code;
            const char *msg = gzerror(x->gz, &code);
            snprintf(err, len, "%s: cannot read %s: %s", x->path, what,
                     code == Z_ERRNO ? strerror(errno) : msg);
            return false;
        }
        if (k == 0) {
            snprintf(err, len, "%s: truncated: %" PRIu64 " bytes of %s expected, %" PRIu64 " found",
                     x->path, n, what, got);
            return false;
        }
        got += (uint64_t)k;
    }
    return true;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Opens path and reads its header: magic, then ndims (from the magic) big-endian dims. */
static bool idx_open(idx_file *x, const char *path, uint32_t magic, char *err, size_t len) {
    *x = (idx_file){ .path = path };
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        x->missing = fd < 0 && errno == ENOENT;
        snprintf(err, len, "cannot open %s: %s", path, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) close(fd);
        return false;
    }
    x->gz = gzdopen(fd, "rb");
    if (!x->gz) abort(); /* out of memory: gzdopen fails on nothing else with a valid fd */
    gzbuffer(x->gz, 1 << 17);
    int ndims = (int)(magic & 0xff);
    unsigned char head[16];
    if (!gz_read_all(x, head, 4, "the magic number", err, len)) return false;
    x->plain = gzdirect(x->gz);
    if (be32(head) != magic) {
        snprintf(err, len, "%s: bad magic 0x%08" PRIx32 " (expected 0x%08" PRIx32 ", an IDX %s file)",
                 path, be32(head), magic, magic == IDX_IMAGES ? "image" : "label");
        return false;
    }
    if (!gz_read_all(x, head + 4, 4 * (uint64_t)ndims, "the header", err, len)) return false;
    for (int d = 0; d < ndims; d++) {
        x->dim[d] = be32(head + 4 + 4 * d);
        if (x->dim[d] == 0) {
            snprintf(err, len, "%s: dimension %d is 0", path, d);
            return false;
        }
    }
    uint64_t size = (uint64_t)st.st_size, head_bytes = 4 + 4 * (uint64_t)ndims;
    x->limit = x->plain ? size - head_bytes : size * MAX_INFLATE;
    return true;
}

/* The payload size the dims claim, when the file can hold it; else an error naming the dims. */
static bool payload_bytes(const idx_file *x, int ndims, uint64_t *out, char *err, size_t len) {
    uint64_t n = x->dim[0], per = ndims == 3 ? (uint64_t)x->dim[1] * x->dim[2] : 1;
    char dims[64];
    if (ndims == 3)
        snprintf(dims, sizeof dims, "%" PRIu32 "x%" PRIu32 "x%" PRIu32, x->dim[0], x->dim[1], x->dim[2]);
    else snprintf(dims, sizeof dims, "%" PRIu32, x->dim[0]);
    if (per > MAX_PIXELS || n > INT32_MAX)
        snprintf(err, len, "%s: dims %s are too large", x->path, dims);
    else if (n * per > x->limit && x->plain)
        snprintf(err, len, "%s: truncated: dims %s need %" PRIu64 " bytes of data, the file has %" PRIu64,
                 x->path, dims, n * per, x->limit);
    else if (n * per > x->limit)
        snprintf(err, len, "%s: dims %s need %" PRIu64 " bytes of data, more than the file can hold",
                 x->path, dims, n * per);
    else if (n * per < x->limit && x->plain)
        snprintf(err, len, "%s: %" PRIu64 " trailing bytes after the data", x->path, x->limit - n * per);
    else {
        *out = n * per;
        return true;
    }
    return false;
}

/* After the payload a gzip'd file must end. */
static bool expect_end(idx_file *x, char *err, size_t len) {
    unsigned char c;
    int k = gzread(x->gz, &c, 1);
    if (k == 0) return true;
    int code;
    const char *msg = gzerror(x->gz, &code);
    if (k < 0) snprintf(err, len, "%s: cannot read: %s", x->path, code == Z_ERRNO ? strerror(errno) : msg);
    else snprintf(err, len, "%s: trailing bytes after the data", x->path);
    return false;
}

static void idx_close(idx_file *x) {
    if (x->gz) gzclose(x->gz);
    x->gz = NULL;
}

/* Reads the images of path into out (n, rows, cols, images). */
static bool read_images(const char *path, dc_dataset *out, bool *missing, char *err, size_t len) {
    idx_file x;
    uint64_t bytes = 0;
    bool ok = idx_open(&x, path, IDX_IMAGES, err, len) && payload_bytes(&x, 3, &bytes, err, len);
    *missing = x.missing;
    unsigned char *raw = NULL;
    if (ok) {
        raw = malloc(bytes);
        if (!raw) abort(); /* out of memory */
        ok = gz_read_all(&x, raw, bytes, "the pixels", err, len) && expect_end(&x, err, len);
    }
    if (ok) {
        out->n = x.dim[0];
        out->rows = (int)x.dim[1];
        out->cols = (int)x.dim[2];
        out->images = malloc(bytes * sizeof *out->images);
        if (!out->images) abort(); /* out of memory */
        for (uint64_t i = 0; i < bytes; i++) out->images[i] = (float)raw[i] / 255.0f;
    }
    free(raw);
    idx_close(&x);
    return ok;
}

/* Reads the labels of path into out->labels; there must be out->n of them, each in 0..9. */
static bool read_labels(const char *path, const char *images, dc_dataset *out, bool *missing,
                        char *err, size_t len) {
    idx_file x;
    uint64_t n = 0;
    bool ok = idx_open(&x, path, IDX_LABELS, err, len) && payload_bytes(&x, 1, &n, err, len);
    *missing = x.missing;
    if (ok && (int64_t)n != out->n) {
        snprintf(err, len, "%s has %" PRId64 " images but %s has %" PRIu64 " labels", images,
                 out->n, path, n);
        ok = false;
    }
    unsigned char *raw = NULL;
    if (ok) {
        raw = malloc(n);
        if (!raw) abort(); /* out of memory */
        ok = gz_read_all(&x, raw, n, "the labels", err, len) && expect_end(&x, err, len);
    }
    for (uint64_t i = 0; ok && i < n; i++)
        if (raw[i] > 9) {
            snprintf(err, len, "%s: label %d at index %" PRIu64 " is out of range 0..9", path,
                     raw[i], i);
            ok = false;
        }
    if (ok) {
        out->labels = malloc(n * sizeof *out->labels);
        if (!out->labels) abort(); /* out of memory */
        for (uint64_t i = 0; i < n; i++) out->labels[i] = raw[i];
    }
    free(raw);
    idx_close(&x);
    return ok;
}

/* Both files into out, or "PREFIX: problem" (+ hint when a file is missing) and *out zeroed. */
static bool load_pair(const char *images, const char *labels, dc_dataset *out, const char *prefix,
                      const char *hint, char *err, size_t len) {
    char why[DC_ERR_LEN];
    bool missing = false;
    *out = (dc_dataset){ 0 };
    if (read_images(images, out, &missing, why, sizeof why) &&
        read_labels(labels, images, out, &missing, why, sizeof why))
        return true;
    snprintf(err, len, "%s: %s%s", prefix, why, missing ? hint : "");
    dc_dataset_free(out);
    return false;
}

bool dc_idx_load(const char *images, const char *labels, dc_dataset *out, char *err, size_t len) {
    return load_pair(images, labels, out, "idx", "", err, len);
}

const char *dc_fmnist_dir(void) {
    const char *d = getenv("DISCO_FMNIST_DIR");
    return d && *d ? d : FMNIST_DEFAULT_DIR;
}

bool dc_fmnist_load(const char *dir, bool train, dc_dataset *out, char *err, size_t len) {
    char images[4096], labels[4096];
    const char *split = train ? "train" : "t10k";
    if (!dir) dir = dc_fmnist_dir();
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    return load_pair(images, labels, out, "fashion-mnist", FMNIST_HINT, err, len);
}

void dc_dataset_free(dc_dataset *d) {
    free(d->images);
    free(d->labels);
    *d = (dc_dataset){ 0 };
}

void dc_shuffle(int64_t *perm, int64_t n, uint64_t seed, uint64_t epoch) {
    uint64_t stream = SHUFFLE_STREAM_BASE + epoch, c = 0;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t m = (uint64_t)i + 1, floor = -m % m, x;
        do {
            x = (uint64_t)dc_rng_u32(seed, stream, c) << 32 | dc_rng_u32(seed, stream, c + 1);
            c += 2;
        } while (x < floor);
        int64_t j = (int64_t)(x % m), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
