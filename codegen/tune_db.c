/* tune_db.c — the tuner's database: the choices of `disco tune` per kernel and target, in a
 * readable text file beside the kernel cache (DIR/tune.db, DIR = dc_kcache_dir()).
 *
 * File format (lines ending in \n):
 *   # disco tuning database, format 1
 *   target tuner=1 "cpu znver4\nfeatures +64bit,+adx,...\nllvm 19.1.7\ncodegen 5\n"
 *   entry key=<32 hex> kernel="matmul batch=512 ..." choice="jit mr=14 ..." times="jit=12.3us ..."
 *   ...
 *   checksum <16 hex>
 * A target line starts a section: the target text (dc_jit_target_text) and tuner version the
 * entries after it were measured with. An entry's key is dc_tune_key of its kernel and its
 * section, the high word first. Strings are in double quotes with \\, \", \n, \t and \xHH (the
 * other control bytes) escaped; other bytes stand as they are. The checksum is XXH3-64 of every
 * byte before its line. Hex digits are lowercase. Saving writes one section per target that
 * has entries, its entries in the order they were stored.
 *
 * Loading checks all of it: the header and its format number, the checksum line at the end
 * (its absence means a truncated file), the checksum, every line's syntax, each key against
 * its entry's fields, one entry per key. The first problem refuses the whole file, with a
 * message "PATH:LINE: problem; ..." in the database's message: any byte sequence either loads
 * exactly as saved or not at all. */
#include "codegen/codegen.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define TD_HEADER "# disco tuning database, format "
#define TD_FORMAT "1"
#define TD_CHECKSUM "checksum "

/* A target and tuner version: the entries measured under them. */
typedef struct {
    char *target;
    int tuner;
} section;

typedef struct {
    dc_hash128 key;
    int section;
    char *kernel, *choice, *times;
} entry;

struct dc_tune_db {
    char *path;
    char *target;   /* the current target's text */
    int cur;        /* the section of the current target and DC_TUNER_VERSION; -1 until one exists */
    section *sections;
    int n_sections, cap_sections;
    entry *entries;
    int n_entries, cap_entries;
    int64_t hits, misses;
    bool refused;
    dc_strbuf message;
};

typedef enum { TD_CURRENT, TD_FOREIGN, TD_STALE } td_kind;

static atomic_uint n_staged;

static void *grow(void *p, int *cap, int need, size_t elem) {
    if (need <= *cap) return p;
    int c = *cap ? *cap * 2 : 16;
    void *q = realloc(p, (size_t)c * elem);
    if (!q) abort(); /* out of memory */
    *cap = c;
    return q;
}

static char *xstrdup(const char *s) {
    char *d = strdup(s);
    if (!d) abort(); /* out of memory */
    return d;
}

dc_hash128 dc_tune_key(const char *kernel, const char *target, int tuner) {
    dc_strbuf s = { 0 };
    dc_sb_printf(&s, "disco tune key\nkernel %zu %s\ntarget %zu %s\ntuner %d\n", strlen(kernel), kernel,
                 strlen(target), target, tuner);
    XXH128_hash_t h = XXH3_128bits(s.buf, s.len);
    free(s.buf);
    return (dc_hash128){ h.low64, h.high64 };
}

/* ---- sections and entries ---------------------------------------------------------------- */

static int find_section(const dc_tune_db *db, const char *target, int tuner) {
    for (int i = 0; i < db->n_sections; i++)
        if (db->sections[i].tuner == tuner && strcmp(db->sections[i].target, target) == 0) return i;
    return -1;
}

/* The section of (target, tuner), added when new; takes target (malloc'd). */
static int add_section(dc_tune_db *db, char *target, int tuner) {
    int i = find_section(db, target, tuner);
    if (i >= 0) {
        free(target);
        return i;
    }
    db->sections = grow(db->sections, &db->cap_sections, db->n_sections + 1, sizeof *db->sections);
    db->sections[db->n_sections] = (section){ target, tuner };
    return db->n_sections++;
}

static int find_entry(const dc_tune_db *db, dc_hash128 key) {
    for (int i = 0; i < db->n_entries; i++)
        if (db->entries[i].key.lo == key.lo && db->entries[i].key.hi == key.hi) return i;
    return -1;
}

static void free_entry(entry *e) {
    free(e->kernel);
    free(e->choice);
    free(e->times);
}

/* Forgets every section and entry. */
static void clear(dc_tune_db *db) {
    for (int i = 0; i < db->n_entries; i++) free_entry(&db->entries[i]);
    for (int i = 0; i < db->n_sections; i++) free(db->sections[i].target);
    db->n_entries = db->n_sections = 0;
    db->cur = -1;
}

/* The value of target's line "name VALUE" (its length in *n); NULL when it has none. */
static const char *target_field(const char *target, const char *name, size_t *n) {
    size_t k = strlen(name);
    for (const char *p = target; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > k && strncmp(p, name, k) == 0 && p[k] == ' ') {
            *n = len - k - 1;
            return p + k + 1;
        }
        p += len + (e != NULL);
    }
    return NULL;
}

static bool same_field(const char *a, const char *b, const char *name) {
    size_t na = 0, nb = 0;
    const char *va = target_field(a, name, &na), *vb = target_field(b, name, &nb);
    return (!va && !vb) || (va && vb && na == nb && memcmp(va, vb, na) == 0);
}

static td_kind kind_of(const dc_tune_db *db, int s) {
    if (s == db->cur) return TD_CURRENT;
    const char *t = db->sections[s].target;
    bool same_cpu = same_field(t, db->target, "cpu") && same_field(t, db->target, "features");
    return same_cpu ? TD_STALE : TD_FOREIGN;
}

static int64_t entries_of(const dc_tune_db *db, int s) {
    int64_t n = 0;
    for (int i = 0; i < db->n_entries; i++) n += db->entries[i].section == s;
    return n;
}

/* ---- strings ----------------------------------------------------------------------------- */

/* Appends str with \\, \", \n, \t and \xHH escapes (quotes around it when quote). */
static void put_escaped(dc_strbuf *s, const char *str, bool quote) {
    dc_sb_printf(s, "%s", quote ? "\"" : "");
    for (const unsigned char *p = (const unsigned char *)str; *p;) {
        size_t run = 0;
        while (p[run] && p[run] >= 0x20 && p[run] != 0x7f && p[run] != '"' && p[run] != '\\') run++;
        if (run) dc_sb_printf(s, "%.*s", (int)run, (const char *)p);
        p += run;
        if (!*p) break;
        if (*p == '"' || *p == '\\') dc_sb_printf(s, "\\%c", *p);
        else if (*p == '\n') dc_sb_printf(s, "\\n");
        else if (*p == '\t') dc_sb_printf(s, "\\t");
        else dc_sb_printf(s, "\\x%02x", *p);
        p++;
    }
    if (quote) dc_sb_printf(s, "\"");
}

/* ---- loading ----------------------------------------------------------------------------- */

/* The rest of one line being parsed, and why it failed. */
typedef struct {
    const char *p, *end;
    const char *why;
} cursor;

static bool lit(cursor *c, const char *s) {
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0) return false;
    c->p += n;
    return true;
}

static int hex_digit(char ch) {
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Exactly 16 hex digits. */
static bool hex64(cursor *c, uint64_t *v) {
    if (c->end - c->p < 16) return false;
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        int d = hex_digit(c->p[i]);
        if (d < 0) return false;
        x = x << 4 | (uint64_t)d;
    }
    c->p += 16;
    *v = x;
    return true;
}

/* A decimal number of 1 to 9 digits. */
static bool number(cursor *c, int *v) {
    int x = 0, n = 0;
    for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++, n++)
        if (n < 9) x = 10 * x + (*c->p - '0');
    *v = x;
    return n >= 1 && n <= 9;
}

/* A quoted string, unescaped into *out (malloc'd); false with c->why when malformed. */
static bool quoted(cursor *c, char **out) {
    if (c->p == c->end || *c->p != '"') return false;
    c->p++;
    dc_strbuf s = { 0 };
    dc_sb_printf(&s, "%s", "");
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch < 0x20 || ch == 0x7f) {
            c->why = "a control byte in a string (it should be escaped)";
            break;
        }
        if (ch == '\\') {
            char e = c->p < c->end ? *c->p++ : 0;
            int h1 = 0, h2 = 0;
            if (e == 'x' && c->end - c->p >= 2) {
                h1 = hex_digit(c->p[0]);
                h2 = hex_digit(c->p[1]);
                c->p += 2;
            }
            ch = e == '"' || e == '\\' ? (unsigned char)e : e == 'n' ? '\n' : e == 't' ? '\t'
                 : e == 'x' && h1 >= 0 && h2 >= 0 ? (unsigned char)(h1 * 16 + h2) : 0;
            if (!ch) {
                c->why = "a bad escape in a string";
                break;
            }
        }
        dc_sb_printf(&s, "%c", ch);
    }
    if (!c->why && c->p == c->end) c->why = "an unterminated string";
    if (c->why) {
        free(s.buf);
        return false;
    }
    c->p++;
    *out = s.buf;
    return true;
}

/* Parses the body line [p, end) into db; *sec is the section of the last target line. NULL on
 * success, else why not. */
static const char *parse_line(dc_tune_db *db, const char *p, const char *end, int *sec) {
    cursor c = { p, end, NULL };
    entry e = { 0 };
    if (lit(&c, "target ")) {
        int tuner;
        char *target = NULL;
        if (!lit(&c, "tuner=") || !number(&c, &tuner) || !lit(&c, " ") || !quoted(&c, &target) ||
            c.p != end) {
            free(target);
            return c.why ? c.why : "a malformed target line (expected: target tuner=N \"TEXT\")";
        }
        *sec = add_section(db, target, tuner);
        return NULL;
    }
    if (!lit(&c, "entry ")) return "an unknown line (expected a target, entry or checksum line)";
    if (*sec < 0) return "an entry before any target line";
    const char *why = NULL;
    if (!lit(&c, "key=") || !hex64(&c, &e.key.hi) || !hex64(&c, &e.key.lo) ||
        !lit(&c, " kernel=") || !quoted(&c, &e.kernel) || !lit(&c, " choice=") ||
        !quoted(&c, &e.choice) || !lit(&c, " times=") || !quoted(&c, &e.times) || c.p != end)
        why = c.why ? c.why
                    : "a malformed entry line (expected: entry key=<32 hex digits> kernel=\"...\" "
                      "choice=\"...\" times=\"...\")";
    else {
        const section *s = &db->sections[*sec];
        dc_hash128 k = dc_tune_key(e.kernel, s->target, s->tuner);
        if (k.lo != e.key.lo || k.hi != e.key.hi)
            why = "the key does not match the entry's kernel and target";
        else if (find_entry(db, e.key) >= 0) why = "a second entry for one kernel and target";
    }
    if (why) {
        free_entry(&e);
        return why;
    }
    e.section = *sec;
    db->entries = grow(db->entries, &db->cap_entries, db->n_entries + 1, sizeof *db->entries);
    db->entries[db->n_entries++] = e;
    return NULL;
}

/* Parses the file's n bytes into db; NULL on success, else why not with the line in *line. */
static const char *parse(dc_tune_db *db, const char *buf, size_t n, int *line) {
    size_t hn = strlen(TD_HEADER);
    const char *end = buf + n, *nl = memchr(buf, '\n', n);
    *line = 1;
    if (n == 0) return "an empty file";
    if (memcmp(buf, TD_HEADER, n < hn ? n : hn) != 0)
        return "not a disco tuning database (the first line is not '" TD_HEADER "N')";
    if (!nl || n < hn) return "truncated (in the first line)";
    size_t fn = strlen(TD_FORMAT);
    if ((size_t)(nl - buf) != hn + fn || memcmp(buf + hn, TD_FORMAT, fn) != 0)
        return "an unknown format (this disco reads format " TD_FORMAT ")";
    int lines = 0;
    for (const char *p = buf; (p = memchr(p, '\n', (size_t)(end - p))); p++) lines++;
    if (end[-1] != '\n') {
        *line = lines + 1;
        return "truncated (the last line is incomplete)";
    }
    *line = lines;
    const char *last = end - 1;
    while (last > buf && last[-1] != '\n') last--;
    cursor c = { last, end - 1, NULL };
    uint64_t sum;
    if (last == buf || !lit(&c, TD_CHECKSUM) || !hex64(&c, &sum) || c.p != c.end)
        return "truncated (the last line is not the checksum line)";
    if (XXH3_64bits(buf, (size_t)(last - buf)) != sum) return "bad checksum";
    int sec = -1;
    *line = 2;
    for (const char *p = nl + 1; p < last; (*line)++) {
        const char *e = memchr(p, '\n', (size_t)(last - p));
        const char *why = parse_line(db, p, e, &sec);
        if (why) return why;
        p = e + 1;
    }
    return NULL;
}

/* The whole file open on fd (NUL-terminated, malloc'd) and its length; NULL with errno on a
 * read error. */
static char *read_all(int fd, size_t *n) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) abort(); /* out of memory */
    for (;;) {
        if (len + 1 == cap) {
            buf = realloc(buf, cap *= 2);
            if (!buf) abort(); /* out of memory */
        }
        ssize_t k = read(fd, buf + len, cap - len - 1);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            free(buf);
            return NULL;
        }
        if (k == 0) break;
        len += (size_t)k;
    }
    buf[len] = 0;
    *n = len;
    return buf;
}

/* The CPUs of the foreign sections with entries, for the message: "znver3, znver4". */
static void foreign_cpus(const dc_tune_db *db, dc_strbuf *s) {
    size_t own_n = 0;
    const char *own = target_field(db->target, "cpu", &own_n);
    for (int i = 0; i < db->n_sections; i++) {
        size_t n = 0;
        const char *cpu = target_field(db->sections[i].target, "cpu", &n);
        bool seen = kind_of(db, i) != TD_FOREIGN || entries_of(db, i) == 0;
        for (int j = 0; j < i && !seen; j++) {
            size_t m = 0;
            const char *other = target_field(db->sections[j].target, "cpu", &m);
            seen = kind_of(db, j) == TD_FOREIGN && entries_of(db, j) > 0 && m == n &&
                   (n == 0 || memcmp(other, cpu, n) == 0);
        }
        if (seen) continue;
        bool same = cpu && own && n == own_n && memcmp(cpu, own, n) == 0;
        dc_sb_printf(s, "%s%.*s%s", s->len ? ", " : "", cpu ? (int)n : 1, cpu ? cpu : "?",
                     same ? " with other features" : "");
    }
}

/* Loads the file into db, or refuses it with a message; false and err when it cannot be read. */
static bool load(dc_tune_db *db, char *err, size_t len) {
    int fd = open(db->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return true;
        snprintf(err, len, "%s: cannot open: %s", db->path, strerror(errno));
        return false;
    }
    struct stat st;
    size_t n = 0;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) snprintf(err, len, "%s: cannot stat: %s", db->path, strerror(errno));
    else if (!S_ISREG(st.st_mode)) snprintf(err, len, "%s: not a regular file", db->path);
    else if (!(buf = read_all(fd, &n)))
        snprintf(err, len, "%s: cannot read: %s", db->path, strerror(errno));
    close(fd);
    if (!buf) return false;
    int line = 0;
    const char *why = parse(db, buf, n, &line);
    free(buf);
    if (why) {
        clear(db);
        db->refused = true;
        dc_sb_printf(&db->message, "%s:%d: %s; the database is ignored and the next save replaces it\n",
                     db->path, line, why);
        return true;
    }
    db->cur = find_section(db, db->target, DC_TUNER_VERSION);
    dc_tune_db_stats s = dc_tune_db_get_stats(db);
    if (s.foreign) {
        dc_strbuf cpus = { 0 };
        foreign_cpus(db, &cpus);
        dc_sb_printf(&db->message, "%s: %" PRId64 " %s for another CPU (%s), ignored\n", db->path,
                     s.foreign, s.foreign == 1 ? "entry is" : "entries are", cpus.buf);
        free(cpus.buf);
    }
    if (s.stale)
        dc_sb_printf(&db->message,
                     "%s: %" PRId64 " %s for this CPU under another LLVM, codegen or tuner version, "
                     "ignored\n",
                     db->path, s.stale, s.stale == 1 ? "entry is" : "entries are");
    return true;
}

dc_tune_db *dc_tune_db_open(const char *path, char *err, size_t len) {
    dc_tune_db *db = calloc(1, sizeof *db);
    if (!db) abort(); /* out of memory */
    dc_strbuf p = { 0 };
    if (path) dc_sb_printf(&p, "%s", path);
    else dc_sb_printf(&p, "%s/tune.db", dc_kcache_dir());
    db->path = p.buf;
    db->target = dc_jit_target_text(NULL);
    db->cur = -1;
    dc_sb_printf(&db->message, "%s", "");
    if (load(db, err, len)) return db;
    dc_tune_db_free(db);
    return NULL;
}

/* ---- lookups and stores ------------------------------------------------------------------ */

const char *dc_tune_db_message(const dc_tune_db *db) { return db->message.buf; }

const char *dc_tune_db_path(const dc_tune_db *db) { return db->path; }

const char *dc_tune_db_lookup(dc_tune_db *db, const char *kernel) {
    int i = find_entry(db, dc_tune_key(kernel, db->target, DC_TUNER_VERSION));
    if (i < 0) {
        db->misses++;
        return NULL;
    }
    db->hits++;
    return db->entries[i].choice;
}

void dc_tune_db_store(dc_tune_db *db, const char *kernel, const char *choice, const char *times) {
    if (db->cur < 0) db->cur = add_section(db, xstrdup(db->target), DC_TUNER_VERSION);
    dc_hash128 key = dc_tune_key(kernel, db->target, DC_TUNER_VERSION);
    char *c = xstrdup(choice), *t = xstrdup(times);
    int i = find_entry(db, key);
    if (i < 0) {
        db->entries = grow(db->entries, &db->cap_entries, db->n_entries + 1, sizeof *db->entries);
        i = db->n_entries++;
        db->entries[i] = (entry){ key, db->cur, xstrdup(kernel), NULL, NULL };
    }
    entry *e = &db->entries[i];
    free(e->choice);
    free(e->times);
    e->choice = c;
    e->times = t;
}

/* ---- saving and printing ----------------------------------------------------------------- */

/* dc_file_write_atomic's fill callback: ctx is the file's text, a dc_strbuf. */
static bool fill_text(FILE *f, void *ctx) {
    const dc_strbuf *s = ctx;
    return fwrite(s->buf, 1, s->len, f) == s->len;
}

bool dc_tune_db_save(dc_tune_db *db, char *err, size_t len) {
    dc_strbuf s = { 0 };
    dc_sb_printf(&s, "%s%s\n", TD_HEADER, TD_FORMAT);
    for (int i = 0; i < db->n_sections; i++) {
        if (entries_of(db, i) == 0) continue;
        dc_sb_printf(&s, "target tuner=%d ", db->sections[i].tuner);
        put_escaped(&s, db->sections[i].target, true);
        dc_sb_printf(&s, "\n");
        for (int j = 0; j < db->n_entries; j++) {
            const entry *e = &db->entries[j];
            if (e->section != i) continue;
            dc_sb_printf(&s, "entry key=%016" PRIx64 "%016" PRIx64 " kernel=", e->key.hi, e->key.lo);
            put_escaped(&s, e->kernel, true);
            dc_sb_printf(&s, " choice=");
            put_escaped(&s, e->choice, true);
            dc_sb_printf(&s, " times=");
            put_escaped(&s, e->times, true);
            dc_sb_printf(&s, "\n");
        }
    }
    dc_sb_printf(&s, "%s%016" PRIx64 "\n", TD_CHECKSUM, XXH3_64bits(s.buf, s.len));
    /* a staging name unique to the process and call, renamed over the file: concurrent savers
     * never share a temp file, and the last rename wins */
    dc_strbuf staging = { 0 };
    dc_sb_printf(&staging, "%s.%ld.%u", db->path, (long)getpid(), atomic_fetch_add(&n_staged, 1));
    char why[DC_ERR_LEN];
    bool ok = dc_file_write_atomic(staging.buf, fill_text, &s, why, sizeof why);
    if (!ok) snprintf(err, len, "tune.db: %s", why);
    else if (rename(staging.buf, db->path) != 0) {
        snprintf(err, len, "tune.db: %s: cannot write: %s", db->path, strerror(errno));
        unlink(staging.buf);
        ok = false;
    }
    free(staging.buf);
    free(s.buf);
    return ok;
}

/* "cpu znver4, features #1a2b3c4d, llvm 19.1.7, codegen 5, tuner 1": the lines of section s,
 * a value longer than 32 bytes shown as the start of its XXH3-64. */
static void describe(const section *s, dc_strbuf *out) {
    for (const char *p = s->target; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *sp = memchr(p, ' ', n);
        size_t name = sp ? (size_t)(sp - p) : n, value = sp ? n - name - 1 : 0;
        if (value > 32)
            dc_sb_printf(out, "%.*s #%08" PRIx64 ", ", (int)name, p, XXH3_64bits(sp + 1, value) >> 32);
        else dc_sb_printf(out, "%.*s, ", (int)n, p);
        p += n + (e != NULL);
    }
    dc_sb_printf(out, "tuner %d", s->tuner);
}

static const char *const kind_names[] = {
    [TD_CURRENT] = "this target",
    [TD_FOREIGN] = "another CPU, ignored",
    [TD_STALE] = "another LLVM, codegen or tuner version, ignored",
};

/* Section s: what it is, then its kernels, choices and times in aligned columns. */
static void print_section(const dc_tune_db *db, int s, FILE *f) {
    dc_strbuf d = { 0 };
    describe(&db->sections[s], &d);
    fprintf(f, "\n%s (%s):\n", kind_names[kind_of(db, s)], d.buf);
    free(d.buf);
    int w[2] = { (int)strlen("kernel"), (int)strlen("choice") };
    for (int pass = 0; pass < 2; pass++) {
        if (pass) fprintf(f, "  %-*s  %-*s  times\n", w[0], "kernel", w[1], "choice");
        for (int i = 0; i < db->n_entries; i++) {
            const entry *e = &db->entries[i];
            if (e->section != s) continue;
            const char *text[3] = { e->kernel, e->choice, e->times };
            dc_strbuf c[3] = { { 0 } };
            for (int j = 0; j < 3; j++) put_escaped(&c[j], text[j], false);
            for (int j = 0; j < 2 && !pass; j++) w[j] = (int)c[j].len > w[j] ? (int)c[j].len : w[j];
            if (pass) fprintf(f, "  %-*s  %-*s  %s\n", w[0], c[0].buf, w[1], c[1].buf, c[2].buf);
            for (int j = 0; j < 3; j++) free(c[j].buf);
        }
    }
}

void dc_tune_db_print(const dc_tune_db *db, FILE *f) {
    fprintf(f, "%s: %d %s\n", db->path, db->n_entries, db->n_entries == 1 ? "entry" : "entries");
    if (db->cur >= 0 && entries_of(db, db->cur)) print_section(db, db->cur, f);
    for (int i = 0; i < db->n_sections; i++)
        if (i != db->cur && entries_of(db, i)) print_section(db, i, f);
}

dc_tune_db_stats dc_tune_db_get_stats(const dc_tune_db *db) {
    dc_tune_db_stats s = { .entries = db->n_entries, .hits = db->hits, .misses = db->misses,
                           .refused = db->refused };
    for (int i = 0; i < db->n_sections; i++) {
        td_kind k = kind_of(db, i);
        if (k != TD_CURRENT) *(k == TD_FOREIGN ? &s.foreign : &s.stale) += entries_of(db, i);
    }
    return s;
}

void dc_tune_db_free(dc_tune_db *db) {
    if (!db) return;
    clear(db);
    free(db->sections);
    free(db->entries);
    free(db->path);
    free(db->target);
    free(db->message.buf);
    free(db);
}
