/* cache.c — the on-disk kernel cache: compiled kernel objects under $DISCO_CACHE_DIR (else
 * $XDG_CACHE_HOME/disco, else $HOME/.cache/disco; the environment is read on every call, and
 * the directory is created with its parents when first written), one file per key, named
 * k-<32 hex digits>.o (the key's hi then lo word, lowercase).
 *
 * Entry format (little-endian):
 *   header (40 bytes): "DISCOKRN", u32 version, u32 zero, u64 key.lo, u64 key.hi,
 *                      u64 payload bytes
 *   the payload (an object file)
 *   u64 XXH3-64 of every byte before it
 * get verifies all of it: magic, version, the key against the one its file is named by, the
 * payload size against the file's length, the checksum. A bad entry is reported on stderr
 * ("disco: kernel cache: FILE: bad checksum; rebuilding"), removed (unless another process
 * has already renamed a fresh entry over it) and is a miss.
 *
 * put writes the entry with dc_file_write_atomic to a staging name unique to the process and
 * call, k-<hex>.o.<pid>.<n>, then renames that over the entry: concurrent writers never share
 * a temp file, every writer succeeds, the last rename wins, and a reader sees a whole entry or
 * none. A staging file left by a crash is never read; clear removes it with the entries.
 *
 * Counters are per process and atomic: a get that returns false is a miss, and one that found
 * a bad entry also counts in corrupt. Thread-safe as long as no thread changes the
 * environment meanwhile. */
#include "codegen/codegen.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define KC_VERSION 1u
#define KC_HEADER 40
#define KC_OVERHEAD (KC_HEADER + 8)
#define KC_NAME_LEN (2 + 32 + 2) /* "k-" hex ".o" */
#define KC_PATH 4096
/* room left in a path after the directory for "/", the entry name and the staging suffix */
#define KC_NAME_ROOM 96

static const char kc_magic[8] = { 'D', 'I', 'S', 'C', 'O', 'K', 'R', 'N' };

static atomic_llong n_hits, n_misses, n_corrupt;
static atomic_ullong n_staged;

/* ---- where entries live ------------------------------------------------------------------ */

/* The cache directory named by the environment into buf; false when it does not fit. */
static bool resolve_dir(char *buf) {
    const char *d = getenv("DISCO_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    int n;
    if (d && *d) n = snprintf(buf, KC_PATH, "%s", d);
    else if (xdg && xdg[0] == '/') n = snprintf(buf, KC_PATH, "%s/disco", xdg);
    else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            struct passwd *pw = getpwuid(getuid());
            home = pw && pw->pw_dir ? pw->pw_dir : "/tmp";
        }
        n = snprintf(buf, KC_PATH, "%s/.cache/disco", home);
    }
    return n > 0 && n < KC_PATH - KC_NAME_ROOM;
}

/* mkdir -p path; false with errno set when it does not end as a directory. */
static bool make_dirs(const char *path) {
    char p[KC_PATH];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return false;
        *s = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(p, &st) != 0) return false;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return false;
    }
    return true;
}

/* The file name of key's entry. */
static void entry_name(dc_kcache_key key, char name[KC_NAME_LEN + 1]) {
    snprintf(name, KC_NAME_LEN + 1, "k-%016" PRIx64 "%016" PRIx64 ".o", key.hi, key.lo);
}

/* The path of key's entry into path (KC_PATH bytes); false when the directory is unusable. */
static bool entry_path(dc_kcache_key key, char *path) {
    if (!resolve_dir(path)) return false;
    char name[KC_NAME_LEN + 1];
    entry_name(key, name);
    size_t n = strlen(path);
    snprintf(path + n, KC_PATH - n, "/%s", name);
    return true;
}

/* True when name starts with an entry's name: "k-", 32 lowercase hex digits, ".o". */
static bool has_entry_prefix(const char *name) {
    if (strncmp(name, "k-", 2) != 0) return false;
    for (int i = 2; i < 34; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return false;
    return strncmp(name + 34, ".o", 2) == 0;
}

static bool is_entry_name(const char *name) {
    return has_entry_prefix(name) && name[KC_NAME_LEN] == 0;
}

/* A staging file of put: an entry's name, ".", then the writer's suffix. */
static bool is_staging_name(const char *name) {
    return has_entry_prefix(name) && name[KC_NAME_LEN] == '.' && name[KC_NAME_LEN + 1] != 0;
}

const char *dc_kcache_dir(void) {
    static _Thread_local char dir[KC_PATH];
    if (resolve_dir(dir)) make_dirs(dir);
    return dir;
}

/* ---- get --------------------------------------------------------------------------------- */

/* Reads all n bytes at fd's position; false on an error or a short file. */
static bool read_full(int fd, void *buf, size_t n) {
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Reads and verifies the entry of key open on fd (size bytes long): on success the payload in
 * *data (malloc'd) and its length in *len; otherwise false and the reason in why. */
static bool read_entry(int fd, uint64_t size, dc_kcache_key key, void **data, size_t *len,
                       char *why, size_t wlen) {
    unsigned char h[KC_HEADER];
    if (size < KC_OVERHEAD) {
        snprintf(why, wlen, "truncated (%" PRIu64 " bytes, an entry has at least %d)", size,
                 KC_OVERHEAD);
        return false;
    }
    if (!read_full(fd, h, KC_HEADER)) {
        snprintf(why, wlen, "cannot read: %s", errno ? strerror(errno) : "file shrank");
        return false;
    }
    uint64_t claimed = dc_le_get_u64(h + 32), have = size - KC_OVERHEAD;
    const char *bad = memcmp(h, kc_magic, 8) != 0       ? "not a kernel cache entry (bad magic)"
                      : dc_le_get_u32(h + 8) != KC_VERSION    ? "unsupported version"
                      : dc_le_get_u32(h + 12) != 0            ? "bad header"
                      : dc_le_get_u64(h + 16) != key.lo || dc_le_get_u64(h + 24) != key.hi
                          ? "its key does not match its file name"
                          : NULL;
    if (bad) {
        snprintf(why, wlen, "%s", bad);
        return false;
    }
    if (claimed != have) {
        if (claimed > have)
            snprintf(why, wlen, "truncated (%" PRIu64 " payload bytes of %" PRIu64 ")", have, claimed);
        else snprintf(why, wlen, "%" PRIu64 " trailing bytes", have - claimed);
        return false;
    }
    unsigned char *buf = malloc(have + 8);
    if (!buf) abort(); /* out of memory: the size is the file's real size */
    if (!read_full(fd, buf, have + 8)) {
        snprintf(why, wlen, "cannot read: %s", errno ? strerror(errno) : "file shrank");
        free(buf);
        return false;
    }
    XXH3_state_t *st = XXH3_createState();
    if (!st) abort(); /* out of memory */
    if (XXH3_64bits_reset(st) != XXH_OK || XXH3_64bits_update(st, h, KC_HEADER) != XXH_OK ||
        XXH3_64bits_update(st, buf, have) != XXH_OK)
        abort(); /* cannot fail on a valid state */
    bool ok = XXH3_64bits_digest(st) == dc_le_get_u64(buf + have);
    XXH3_freeState(st);
    if (!ok) {
        snprintf(why, wlen, "bad checksum");
        free(buf);
        return false;
    }
    *data = buf;
    *len = (size_t)have;
    return true;
}

/* Removes path if it is still the file opened as st (a writer may have renamed a fresh entry
 * over it since). */
static void remove_if_same(const char *path, const struct stat *st) {
    struct stat now;
    if (lstat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino) unlink(path);
}

bool dc_kcache_get(dc_kcache_key key, void **data, size_t *len) {
    char path[KC_PATH];
    int fd = entry_path(key, path) ? open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
    if (fd < 0) {
        atomic_fetch_add(&n_misses, 1);
        return false;
    }
    struct stat st = { 0 };
    char why[160];
    bool ok = false;
    if (fstat(fd, &st) != 0) snprintf(why, sizeof why, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode)) snprintf(why, sizeof why, "not a regular file");
    else {
        errno = 0;
        ok = read_entry(fd, (uint64_t)st.st_size, key, data, len, why, sizeof why);
    }
    close(fd);
    if (ok) {
        atomic_fetch_add(&n_hits, 1);
        return true;
    }
    fprintf(stderr, "disco: kernel cache: %s: %s; rebuilding\n", path, why);
    if (S_ISREG(st.st_mode)) remove_if_same(path, &st);
    atomic_fetch_add(&n_corrupt, 1);
    atomic_fetch_add(&n_misses, 1);
    return false;
}

/* ---- put --------------------------------------------------------------------------------- */

typedef struct {
    dc_kcache_key key;
    const void *data;
    size_t len;
} entry_writer;

/* dc_file_write_atomic's fill callback: the whole entry of ctx, an entry_writer. */
static bool fill_entry(FILE *f, void *ctx) {
    const entry_writer *w = ctx;
    unsigned char h[KC_HEADER], sum[8];
    memcpy(h, kc_magic, 8);
    dc_le_put_u32(h + 8, KC_VERSION);
    dc_le_put_u32(h + 12, 0);
    dc_le_put_u64(h + 16, w->key.lo);
    dc_le_put_u64(h + 24, w->key.hi);
    dc_le_put_u64(h + 32, (uint64_t)w->len);
    XXH3_state_t *st = XXH3_createState();
    if (!st) abort(); /* out of memory */
    if (XXH3_64bits_reset(st) != XXH_OK || XXH3_64bits_update(st, h, KC_HEADER) != XXH_OK ||
        XXH3_64bits_update(st, w->data, w->len) != XXH_OK)
        abort(); /* cannot fail on a valid state */
    dc_le_put_u64(sum, XXH3_64bits_digest(st));
    XXH3_freeState(st);
    return fwrite(h, 1, KC_HEADER, f) == KC_HEADER &&
           (w->len == 0 || fwrite(w->data, 1, w->len, f) == w->len) && fwrite(sum, 1, 8, f) == 8;
}

bool dc_kcache_put(dc_kcache_key key, const void *data, size_t len, char *err, size_t errlen) {
    char dir[KC_PATH], path[KC_PATH], staging[KC_PATH + 64];
    if (!resolve_dir(dir)) {
        snprintf(err, errlen, "kernel cache: the cache directory's path is too long");
        return false;
    }
    if (!make_dirs(dir)) {
        snprintf(err, errlen, "kernel cache: %s: cannot create: %s", dir, strerror(errno));
        return false;
    }
    entry_path(key, path);
    snprintf(staging, sizeof staging, "%s.%ld.%llu", path, (long)getpid(),
             (unsigned long long)atomic_fetch_add(&n_staged, 1));
    entry_writer w = { key, data, len };
    char why[DC_ERR_LEN];
    if (!dc_file_write_atomic(staging, fill_entry, &w, why, sizeof why)) {
        snprintf(err, errlen, "kernel cache: %s", why);
        return false;
    }
    if (rename(staging, path) != 0) {
        snprintf(err, errlen, "kernel cache: %s: cannot write: %s", path, strerror(errno));
        unlink(staging);
        return false;
    }
    return true;
}

/* ---- stats and clear --------------------------------------------------------------------- */

dc_kcache_stats dc_kcache_get_stats(void) {
    dc_kcache_stats s = { .hits = atomic_load(&n_hits), .misses = atomic_load(&n_misses),
                          .corrupt = atomic_load(&n_corrupt) };
    char dir[KC_PATH];
    DIR *d = resolve_dir(dir) ? opendir(dir) : NULL;
    if (!d) return s;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)))
        if (is_entry_name(e->d_name) && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode)) {
            s.entries++;
            s.bytes += st.st_size;
        }
    closedir(d);
    return s;
}

bool dc_kcache_clear(char *err, size_t len) {
    char dir[KC_PATH];
    if (!resolve_dir(dir)) {
        snprintf(err, len, "kernel cache: the cache directory's path is too long");
        return false;
    }
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return true;
        snprintf(err, len, "kernel cache: %s: cannot open: %s", dir, strerror(errno));
        return false;
    }
    bool ok = true;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d))) {
        if (!is_entry_name(e->d_name) && !is_staging_name(e->d_name)) continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT && ok) {
            snprintf(err, len, "kernel cache: %s/%s: cannot remove: %s", dir, e->d_name, strerror(errno));
            ok = false;
        }
    }
    closedir(d);
    return ok;
}
