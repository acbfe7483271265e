/* checkpoint.c — saving and loading the parameters of an executor with a caller's meta blob.
 * Format (little-endian):
 *   header (64 bytes): "DISCOCKP", u32 version, u32 n_tensors, u64 table_bytes, u64 meta_len,
 *                      u64 data_offset, u64 data_bytes, u64 file_bytes, u64 XXH3-64 of the
 *                      56 bytes before it
 *   table: per tensor u32 name_len, name, u32 dtype, u32 rank, i64 dims[rank],
 *          u64 offset (from data_offset), u64 bytes
 *   meta blob, zero padding up to data_offset (a multiple of 64)
 *   data: each tensor at a multiple of 64, zero padding between
 *   u64 XXH3-64 of every byte before it
 * Loading verifies everything (every length read is bounded by the file's real size) before
 * it changes a single parameter. */
#include "runtime/runtime.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#define CKPT_VERSION 1u
#define HEADER_BYTES 64
#define HEADER_HASHED 56
#define MAX_NAME 4096
/* name_len, dtype, rank, offset, bytes with an empty rank and a 1-byte name */
#define MIN_ENTRY_BYTES (4 + 1 + 4 + 4 + 8 + 8)

static const char ckpt_magic[8] = { 'D', 'I', 'S', 'C', 'O', 'C', 'K', 'P' };

static uint64_t align64(uint64_t x) { return (x + 63) / 64 * 64; }

static size_t tensor_bytes(const dc_type *t) {
    return (size_t)dc_numel(&t->shape) * dc_dtype_size(t->dtype);
}

/* ---- saving ------------------------------------------------------------------------------ */

/* Everything dc_checkpoint_save writes, laid out before the file is opened. */
typedef struct {
    const dc_graph *g;
    dc_exec *e;
    unsigned char header[HEADER_BYTES];
    unsigned char *table;
    size_t table_bytes;
    const void *meta;
    size_t meta_len;
    uint64_t data_offset;
    XXH3_state_t *hash;
} ckpt_writer;

/* The table entry of PARAM node n at data offset off into p (NULL: only its size). */
static size_t put_entry(unsigned char *p, const dc_node *n, uint64_t off) {
    size_t name_len = strlen(n->name), k = 4 + name_len + 8 + 8 * (size_t)n->type.shape.rank + 16;
    if (!p) return k;
    dc_le_put_u32(p, (uint32_t)name_len);
    memcpy(p + 4, n->name, name_len);
    p += 4 + name_len;
    dc_le_put_u32(p, (uint32_t)n->type.dtype);
    dc_le_put_u32(p + 4, (uint32_t)n->type.shape.rank);
    p += 8;
    for (int d = 0; d < n->type.shape.rank; d++, p += 8) dc_le_put_u64(p, (uint64_t)n->type.shape.dim[d]);
    dc_le_put_u64(p, off);
    dc_le_put_u64(p + 8, tensor_bytes(&n->type));
    return k;
}

/* Builds the table and header of w's graph. */
static void layout_checkpoint(ckpt_writer *w) {
    const dc_graph *g = w->g;
    uint32_t count = 0;
    w->table_bytes = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_PARAM) {
            w->table_bytes += put_entry(NULL, &g->nodes[i], 0);
            count++;
        }
    w->table = malloc(w->table_bytes ? w->table_bytes : 1);
    if (!w->table) abort(); /* out of memory */
    uint64_t off = 0;
    size_t at = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_PARAM) {
            at += put_entry(w->table + at, &g->nodes[i], off);
            off = align64(off + tensor_bytes(&g->nodes[i].type));
        }
    w->data_offset = align64(HEADER_BYTES + w->table_bytes + w->meta_len);
    unsigned char *h = w->header;
    memset(h, 0, sizeof w->header);
    memcpy(h, ckpt_magic, 8);
    dc_le_put_u32(h + 8, CKPT_VERSION);
    dc_le_put_u32(h + 12, count);
    dc_le_put_u64(h + 16, w->table_bytes);
    dc_le_put_u64(h + 24, w->meta_len);
    dc_le_put_u64(h + 32, w->data_offset);
    dc_le_put_u64(h + 40, off);
    dc_le_put_u64(h + 48, w->data_offset + off + 8);
    dc_le_put_u64(h + 56, XXH3_64bits(h, HEADER_HASHED));
}

/* Writes n bytes (NULL: zeros) to f and into the running checksum. */
static bool emit(ckpt_writer *w, FILE *f, const void *p, size_t n) {
    static const unsigned char zeros[64];
    if (!p) {
        if (n > sizeof zeros) abort(); /* padding is always < 64 bytes */
        p = zeros;
    }
    if (XXH3_64bits_update(w->hash, p, n) != XXH_OK) abort(); /* cannot fail on a valid state */
    return fwrite(p, 1, n, f) == n;
}

/* dc_file_write_atomic's fill callback: the whole checkpoint of ctx, a ckpt_writer. */
static bool fill_checkpoint(FILE *f, void *ctx) {
    ckpt_writer *w = ctx;
    if (XXH3_64bits_reset(w->hash) != XXH_OK) abort(); /* cannot fail on a valid state */
    uint64_t at = HEADER_BYTES + w->table_bytes + w->meta_len;
    bool ok = emit(w, f, w->header, HEADER_BYTES) && emit(w, f, w->table, w->table_bytes) &&
              (w->meta_len == 0 || emit(w, f, w->meta, w->meta_len)) &&
              emit(w, f, NULL, w->data_offset - at);
    for (int i = 0; ok && i < w->g->n_nodes; i++) {
        if (w->g->nodes[i].op != DC_OP_PARAM) continue;
        const dc_tensor *t = dc_exec_value(w->e, i);
        size_t n = tensor_bytes(&t->type);
        ok = emit(w, f, t->data, n) && emit(w, f, NULL, align64(n) - n);
    }
    unsigned char sum[8];
    dc_le_put_u64(sum, XXH3_64bits_digest(w->hash));
    return ok && fwrite(sum, 1, 8, f) == 8;
}

bool dc_checkpoint_save(const char *path, dc_exec *e, const void *meta, size_t meta_len,
                        char *err, size_t len) {
    ckpt_writer w = { .g = dc_exec_graph(e), .e = e, .meta = meta, .meta_len = meta_len };
    w.hash = XXH3_createState();
    if (!w.hash) abort(); /* out of memory */
    layout_checkpoint(&w);
    char why[DC_ERR_LEN];
    bool ok = dc_file_write_atomic(path, fill_checkpoint, &w, why, sizeof why);
    if (!ok) snprintf(err, len, "ckpt: %s", why);
    free(w.table);
    XXH3_freeState(w.hash);
    return ok;
}

/* ---- loading ----------------------------------------------------------------------------- */

/* One table entry, pointing into the file's bytes. */
typedef struct {
    const char *name;
    size_t name_len;
    dc_type type;
    uint64_t offset, bytes;
} ckpt_entry;

/* The file in memory and what its header says. */
typedef struct {
    const char *path;
    unsigned char *buf;
    uint64_t size;
    uint32_t n_tensors;
    uint64_t table_bytes, meta_len, data_offset, data_bytes;
    ckpt_entry *entries;
    char *err;
    size_t len;
} ckpt_reader;

static bool fail(ckpt_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(ckpt_reader *r, const char *fmt, ...) {
    char what[DC_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->len, "ckpt: %s: %s", r->path, what);
    return false;
}

/* Checks the header (the first `have` bytes of it are in h): magic, version, its own hash,
 * and that the sizes it claims add up to the file's real size. */
static bool check_header(ckpt_reader *r, const unsigned char *h, size_t have) {
    size_t cmp = have < 8 ? have : 8;
    if (memcmp(h, ckpt_magic, cmp) != 0) return fail(r, "not a disco checkpoint (bad magic)");
    if (have >= 12 && dc_le_get_u32(h + 8) != CKPT_VERSION)
        return fail(r, "unsupported version %" PRIu32 " (this disco reads version %u)",
                    dc_le_get_u32(h + 8), CKPT_VERSION);
    if (have < HEADER_BYTES)
        return fail(r, "truncated (%" PRIu64 " bytes, the header alone needs %d)", r->size,
                    HEADER_BYTES);
    if (dc_le_get_u64(h + 56) != XXH3_64bits(h, HEADER_HASHED)) return fail(r, "bad checksum (header)");
    r->n_tensors = dc_le_get_u32(h + 12);
    r->table_bytes = dc_le_get_u64(h + 16);
    r->meta_len = dc_le_get_u64(h + 24);
    r->data_offset = dc_le_get_u64(h + 32);
    r->data_bytes = dc_le_get_u64(h + 40);
    uint64_t claimed = dc_le_get_u64(h + 48);
    if (claimed > r->size) return fail(r, "truncated (%" PRIu64 " of %" PRIu64 " bytes)", r->size, claimed);
    if (claimed < r->size) return fail(r, "%" PRIu64 " trailing bytes", r->size - claimed);
    /* each term is now below the real size, so the sums cannot overflow */
    if (r->table_bytes > r->size || r->meta_len > r->size || r->data_offset > r->size ||
        r->data_bytes > r->size || r->data_offset % 64 != 0 ||
        HEADER_BYTES + r->table_bytes + r->meta_len > r->data_offset ||
        r->data_offset + r->data_bytes + 8 != r->size ||
        r->n_tensors > r->table_bytes / MIN_ENTRY_BYTES)
        return fail(r, "inconsistent sizes in the header");
    return true;
}

/* Parses entry i at *at (inside the table), bounding every field. */
static bool parse_entry(ckpt_reader *r, uint32_t i, uint64_t *at) {
    const unsigned char *t = r->buf + HEADER_BYTES, *end = t + r->table_bytes, *p = t + *at;
    ckpt_entry *x = &r->entries[i];
    if (end - p < 4) return fail(r, "tensor table entry %" PRIu32 " is cut off", i);
    x->name_len = dc_le_get_u32(p);
    p += 4;
    if (x->name_len == 0 || x->name_len > MAX_NAME || (size_t)(end - p) < x->name_len + 8)
        return fail(r, "tensor table entry %" PRIu32 " has a bad name length", i);
    x->name = (const char *)p;
    if (memchr(p, 0, x->name_len)) return fail(r, "tensor table entry %" PRIu32 " has a bad name", i);
    p += x->name_len;
    uint32_t dtype = dc_le_get_u32(p), rank = dc_le_get_u32(p + 4);
    p += 8;
    if (dtype >= DC_NDTYPES || rank > DC_MAX_RANK || (size_t)(end - p) < 8 * rank + 16)
        return fail(r, "tensor '%.*s' has a bad dtype or rank", (int)x->name_len, x->name);
    x->type = (dc_type){ .dtype = (dc_dtype)dtype, .shape.rank = (int)rank };
    uint64_t numel = 1;
    for (uint32_t d = 0; d < rank; d++, p += 8) {
        uint64_t dim = dc_le_get_u64(p);
        if (dim < 1 || dim > r->size / numel)
            return fail(r, "tensor '%.*s' has a bad shape", (int)x->name_len, x->name);
        numel *= dim;
        x->type.shape.dim[d] = (int64_t)dim;
    }
    x->offset = dc_le_get_u64(p);
    x->bytes = dc_le_get_u64(p + 8);
    p += 16;
    if (x->bytes != numel * dc_dtype_size(x->type.dtype) || x->offset > r->data_bytes ||
        x->bytes > r->data_bytes - x->offset)
        return fail(r, "tensor '%.*s' has a bad data range", (int)x->name_len, x->name);
    *at = (uint64_t)(p - t);
    return true;
}

/* Parses the whole table: entries fill it exactly, names are unique. */
static bool parse_table(ckpt_reader *r) {
    r->entries = calloc(r->n_tensors ? r->n_tensors : 1, sizeof *r->entries);
    if (!r->entries) abort(); /* out of memory */
    uint64_t at = 0;
    for (uint32_t i = 0; i < r->n_tensors; i++) {
        if (!parse_entry(r, i, &at)) return false;
        for (uint32_t j = 0; j < i; j++)
            if (r->entries[j].name_len == r->entries[i].name_len &&
                memcmp(r->entries[j].name, r->entries[i].name, r->entries[i].name_len) == 0)
                return fail(r, "duplicate tensor '%.*s'", (int)r->entries[i].name_len,
                            r->entries[i].name);
    }
    if (at != r->table_bytes) return fail(r, "%" PRIu64 " stray bytes after the tensor table",
                                          r->table_bytes - at);
    return true;
}

static const ckpt_entry *find_entry(const ckpt_reader *r, const char *name) {
    size_t n = strlen(name);
    for (uint32_t i = 0; i < r->n_tensors; i++)
        if (r->entries[i].name_len == n && memcmp(r->entries[i].name, name, n) == 0)
            return &r->entries[i];
    return NULL;
}

/* Every param of g is in the file with its type, and the file has nothing else. */
static bool match_graph(ckpt_reader *r, const dc_graph *g) {
    uint32_t matched = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *n = &g->nodes[i];
        if (n->op != DC_OP_PARAM) continue;
        const ckpt_entry *x = find_entry(r, n->name);
        if (!x) return fail(r, "missing tensor '%s'", n->name);
        if (!dc_type_eq(&x->type, &n->type)) {
            char a[96], b[96];
            return fail(r, "tensor '%s' is %s, the graph has %s", n->name,
                        dc_type_str(&x->type, a, sizeof a), dc_type_str(&n->type, b, sizeof b));
        }
        matched++;
    }
    if (matched == r->n_tensors) return true;
    for (uint32_t i = 0; i < r->n_tensors; i++) {
        bool found = false;
        for (int k = 0; k < g->n_nodes && !found; k++) {
            const dc_node *n = &g->nodes[k];
            found = n->op == DC_OP_PARAM && strlen(n->name) == r->entries[i].name_len &&
                    memcmp(n->name, r->entries[i].name, r->entries[i].name_len) == 0;
        }
        if (!found)
            return fail(r, "tensor '%.*s' is not a param of the graph", (int)r->entries[i].name_len,
                        r->entries[i].name);
    }
    return fail(r, "the graph has duplicate param names");
}

/* Reads the file into r->buf after checking its header; false with the error on failure. */
static bool read_file(ckpt_reader *r) {
    FILE *f = fopen(r->path, "rb");
    if (!f) return fail(r, "cannot open: %s", strerror(errno));
    struct stat st;
    bool ok;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) ok = fail(r, "not a regular file");
    else {
        r->size = (uint64_t)st.st_size;
        unsigned char h[HEADER_BYTES];
        size_t have = fread(h, 1, sizeof h, f);
        ok = check_header(r, h, have);
        if (ok) {
            r->buf = malloc(r->size);
            if (!r->buf) abort(); /* out of memory: the size is the file's real size */
            memcpy(r->buf, h, HEADER_BYTES);
            if (fread(r->buf + HEADER_BYTES, 1, r->size - HEADER_BYTES, f) != r->size - HEADER_BYTES)
                ok = fail(r, "cannot read: %s", ferror(f) ? strerror(errno) : "file shrank");
        }
    }
    fclose(f);
    return ok;
}

/* Reads and verifies the whole file (header, checksum, tensor table) and that its meta blob is
 * meta_len bytes. */
static bool read_verified(ckpt_reader *r, size_t meta_len) {
    bool ok = read_file(r);
    if (ok && dc_le_get_u64(r->buf + r->size - 8) != XXH3_64bits(r->buf, r->size - 8))
        ok = fail(r, "bad checksum");
    if (ok && r->meta_len != meta_len)
        ok = fail(r, "meta is %" PRIu64 " bytes, the caller expects %zu", r->meta_len, meta_len);
    return ok && parse_table(r);
}

static const unsigned char *meta_of(const ckpt_reader *r) { return r->buf + HEADER_BYTES + r->table_bytes; }

bool dc_checkpoint_read_meta(const char *path, void *meta, size_t meta_len, char *err, size_t len) {
    ckpt_reader r = { .path = path, .err = err, .len = len };
    bool ok = read_verified(&r, meta_len);
    if (ok && meta_len) memcpy(meta, meta_of(&r), meta_len);
    free(r.entries);
    free(r.buf);
    return ok;
}

bool dc_checkpoint_load(const char *path, dc_exec *e, void *meta, size_t meta_len,
                        char *err, size_t len) {
    ckpt_reader r = { .path = path, .err = err, .len = len };
    const dc_graph *g = dc_exec_graph(e);
    bool ok = read_verified(&r, meta_len) && match_graph(&r, g);
    if (ok) {
        if (meta_len) memcpy(meta, meta_of(&r), meta_len);
        for (int i = 0; i < g->n_nodes; i++) {
            if (g->nodes[i].op != DC_OP_PARAM) continue;
            const ckpt_entry *x = find_entry(&r, g->nodes[i].name);
            memcpy(dc_exec_value(e, i)->data, r.buf + r.data_offset + x->offset, x->bytes);
        }
    }
    free(r.entries);
    free(r.buf);
    return ok;
}
