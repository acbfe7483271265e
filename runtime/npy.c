/* npy.c — reading and writing numpy .npy files: float32 ('<f4') and int32 ('<i4'), C order,
 * rank <= 6. Reads format versions 1.0, 2.0 and 3.0; writes 1.0 with the header padded so the
 * data starts at a multiple of 64 bytes, atomically (dc_file_write_atomic). Every malformed
 * file gives an error naming the file and what is wrong, never a crash. */
#include "runtime/runtime.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npy.c assumes a little-endian host");

static const char npy_magic[6] = { '\x93', 'N', 'U', 'M', 'P', 'Y' };
#define MAX_HEADER (1 << 20)
#define MAX_ELEMS ((int64_t)1 << 40)

/* ---- header parsing ---------------------------------------------------------------------- */

/* A cursor over the header text; on error msg holds what is wrong. */
typedef struct {
    const char *s;
    size_t n, i;
    char msg[160];
} hparser;

static bool hfail(hparser *p, const char *what) {
    snprintf(p->msg, sizeof p->msg, "malformed header: %s at offset %zu", what, p->i);
    return false;
}

static void skip_ws(hparser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                           p->s[p->i] == '\r'))
        p->i++;
}

static bool peek_is(hparser *p, char c) {
    skip_ws(p);
    return p->i < p->n && p->s[p->i] == c;
}

static bool expect(hparser *p, char c) {
    if (!peek_is(p, c)) {
        char what[32];
        snprintf(what, sizeof what, "expected '%c'", c);
        return hfail(p, what);
    }
    p->i++;
    return true;
}

/* A quoted Python string ('...' or "...", no escapes) into out. */
static bool parse_str(hparser *p, char *out, size_t cap) {
    skip_ws(p);
    if (p->i >= p->n || (p->s[p->i] != '\'' && p->s[p->i] != '"'))
        return hfail(p, "expected a quoted string");
    char q = p->s[p->i++];
    size_t start = p->i;
    while (p->i < p->n && p->s[p->i] != q) p->i++;
    if (p->i >= p->n) return hfail(p, "unterminated string");
    size_t k = p->i - start;
    if (k >= cap) return hfail(p, "string too long");
    memcpy(out, p->s + start, k);
    out[k] = 0;
    p->i++;
    return true;
}

static bool parse_bool(hparser *p, bool *v) {
    skip_ws(p);
    const char *rest = p->s + p->i;
    size_t left = p->n - p->i;
    if (left >= 4 && memcmp(rest, "True", 4) == 0) { *v = true; p->i += 4; return true; }
    if (left >= 5 && memcmp(rest, "False", 5) == 0) { *v = false; p->i += 5; return true; }
    return hfail(p, "expected True or False");
}

/* A non-negative integer (Python 2 writers may append 'L'). */
static bool parse_int(hparser *p, int64_t *v) {
    skip_ws(p);
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
        return hfail(p, "expected a non-negative integer");
    int64_t x = 0;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        x = x * 10 + (p->s[p->i++] - '0');
        if (x > MAX_ELEMS) return hfail(p, "dimension too large");
    }
    if (p->i < p->n && p->s[p->i] == 'L') p->i++;
    *v = x;
    return true;
}

/* A shape tuple: (), (3,), (2, 3) or (2, 3,) */
static bool parse_shape(hparser *p, dc_shape *s) {
    *s = (dc_shape){ 0 };
    if (!expect(p, '(')) return false;
    while (!peek_is(p, ')')) {
        if (s->rank == DC_MAX_RANK) return hfail(p, "shape has more than 6 dims");
        if (!parse_int(p, &s->dim[s->rank])) return false;
        s->rank++;
        if (peek_is(p, ',')) p->i++;
        else if (!peek_is(p, ')')) return hfail(p, "expected ',' or ')' in shape");
    }
    p->i++;
    return true;
}

typedef struct {
    char descr[32];
    bool fortran;
    dc_shape shape;
} npy_header;

/* The header dict {'descr': ..., 'fortran_order': ..., 'shape': ...}, keys in any order,
 * each exactly once, optional trailing comma, then only whitespace. */
static bool parse_header(hparser *p, npy_header *h) {
    bool seen[3] = { false, false, false };
    static const char *keys[3] = { "descr", "fortran_order", "shape" };
    if (!expect(p, '{')) return false;
    while (!peek_is(p, '}')) {
        char key[32];
        skip_ws(p);
        size_t key_at = p->i;
        if (!parse_str(p, key, sizeof key)) return false;
        int k = 0;
        while (k < 3 && strcmp(key, keys[k]) != 0) k++;
        if (k == 3 || seen[k]) {
            p->i = key_at;
            return hfail(p, k == 3 ? "unknown key" : "duplicate key");
        }
        if (!expect(p, ':')) return false;
        seen[k] = true;
        bool ok = k == 0 ? parse_str(p, h->descr, sizeof h->descr)
                : k == 1 ? parse_bool(p, &h->fortran)
                         : parse_shape(p, &h->shape);
        if (!ok) return false;
        if (peek_is(p, ',')) p->i++;
        else if (!peek_is(p, '}')) return hfail(p, "expected ',' or '}'");
    }
    p->i++;
    skip_ws(p);
    if (p->i != p->n) return hfail(p, "unexpected text after the dict");
    for (int k = 0; k < 3; k++)
        if (!seen[k]) {
            snprintf(p->msg, sizeof p->msg, "malformed header: missing key '%s'", keys[k]);
            return false;
        }
    return true;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* Checks the header's meaning: dtype, order, dims. */
static bool check_header(const npy_header *h, const char *path, dc_dtype *dt, char *err,
                         size_t len) {
    if (strcmp(h->descr, "<f4") == 0) *dt = DC_F32;
    else if (strcmp(h->descr, "<i4") == 0) *dt = DC_I32;
    else {
        snprintf(err, len, "%s: unsupported dtype '%s' (disco reads float32 and int32)", path,
                 h->descr);
        return false;
    }
    if (h->fortran) {
        snprintf(err, len, "%s: fortran_order True is not supported (disco reads C order)", path);
        return false;
    }
    int64_t count = 1;
    for (int d = 0; d < h->shape.rank; d++) {
        if (h->shape.dim[d] < 1) {
            snprintf(err, len, "%s: dim %d of the shape is %" PRId64 " (disco needs dims >= 1)",
                     path, d, h->shape.dim[d]);
            return false;
        }
        count *= h->shape.dim[d];
        if (count > MAX_ELEMS) {
            snprintf(err, len, "%s: shape has too many elements", path);
            return false;
        }
    }
    return true;
}

/* Reads the preamble and header of f (size bytes); on success *data_off is where data starts. */
static bool read_header(FILE *f, int64_t size, const char *path, npy_header *h,
                        int64_t *data_off, char *err, size_t len) {
    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, f);
    size_t cmp = got < 6 ? got : 6;
    if (memcmp(pre, npy_magic, cmp) != 0 || size == 0) {
        snprintf(err, len, "%s: not a .npy file (bad magic)", path);
        return false;
    }
    if (got < 10) {
        snprintf(err, len, "%s: truncated .npy preamble (%zu bytes)", path, got);
        return false;
    }
    int major = pre[6], minor = pre[7];
    if ((major < 1 || major > 3) || minor != 0) {
        snprintf(err, len, "%s: unsupported .npy format version %d.%d", path, major, minor);
        return false;
    }
    int64_t hlen, hstart = major == 1 ? 10 : 12;
    if (major == 1) hlen = pre[8] | pre[9] << 8;
    else {
        if (fread(pre + 10, 1, 2, f) != 2) {
            snprintf(err, len, "%s: truncated .npy preamble", path);
            return false;
        }
        hlen = (int64_t)pre[8] | (int64_t)pre[9] << 8 | (int64_t)pre[10] << 16 |
               (int64_t)pre[11] << 24;
    }
    if (hlen > MAX_HEADER) {
        snprintf(err, len, "%s: header length %" PRId64 " is too large", path, hlen);
        return false;
    }
    if (hstart + hlen > size) {
        snprintf(err, len, "%s: truncated header: it claims %" PRId64 " bytes, file has %" PRId64,
                 path, hlen, size - hstart);
        return false;
    }
    char *text = malloc((size_t)hlen + 1);
    if (!text) abort(); /* out of memory */
    bool ok = fread(text, 1, (size_t)hlen, f) == (size_t)hlen;
    hparser p = { .s = text, .n = (size_t)hlen };
    if (!ok) snprintf(err, len, "%s: cannot read the header", path);
    else if (!(ok = parse_header(&p, h))) snprintf(err, len, "%s: %s", path, p.msg);
    free(text);
    *data_off = hstart + hlen;
    return ok;
}

dc_tensor *dc_npy_read(const char *path, char *err, size_t len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, len, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    npy_header h;
    int64_t data_off;
    dc_type t;
    dc_tensor *x = NULL;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        snprintf(err, len, "%s: not a regular file", path);
    else if (read_header(f, st.st_size, path, &h, &data_off, err, len) &&
             check_header(&h, path, &t.dtype, err, len)) {
        t.shape = h.shape;
        int64_t need = dc_numel(&t.shape) * (int64_t)dc_dtype_size(t.dtype);
        int64_t have = st.st_size - data_off;
        if (have < need)
            snprintf(err, len, "%s: data truncated: the shape needs %" PRId64 " bytes, file has %" PRId64,
                     path, need, have);
        else if (have > need)
            snprintf(err, len, "%s: %" PRId64 " trailing bytes after the data", path, have - need);
        else {
            x = dc_tensor_new(&t);
            if (fread(x->data, 1, (size_t)need, f) != (size_t)need) {
                snprintf(err, len, "%s: cannot read the data", path);
                dc_tensor_free(x);
                x = NULL;
            }
        }
    }
    fclose(f);
    return x;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* The 1.0 preamble + header, padded with spaces and ending in '\n' so its length is a
 * multiple of 64. Returns the length written into buf. */
static size_t make_header(const dc_type *t, char *buf, size_t cap) {
    char dict[256];
    size_t k = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                t->dtype == DC_F32 ? "<f4" : "<i4");
    for (int d = 0; d < t->shape.rank; d++)
        k += (size_t)snprintf(dict + k, sizeof dict - k, d ? ", %" PRId64 : "%" PRId64,
                              t->shape.dim[d]);
    k += (size_t)snprintf(dict + k, sizeof dict - k, "%s), }", t->shape.rank == 1 ? "," : "");
    size_t total = (10 + k + 1 + 63) / 64 * 64;
    if (total > cap) abort(); /* rank <= 6 keeps the header far below cap */
    size_t hlen = total - 10;
    memcpy(buf, npy_magic, 6);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, k);
    memset(buf + 10 + k, ' ', hlen - k - 1);
    buf[total - 1] = '\n';
    return total;
}

/* dc_file_write_atomic's fill callback: the header, then the data of the tensor ctx. */
static bool npy_fill(FILE *f, void *ctx) {
    const dc_tensor *t = ctx;
    char head[512];
    size_t hn = make_header(&t->type, head, sizeof head);
    size_t dn = (size_t)dc_numel(&t->type.shape) * dc_dtype_size(t->type.dtype);
    return fwrite(head, 1, hn, f) == hn && fwrite(t->data, 1, dn, f) == dn;
}

bool dc_npy_write(const char *path, const dc_tensor *t, char *err, size_t len) {
    return dc_file_write_atomic(path, npy_fill, (void *)t, err, len);
}
