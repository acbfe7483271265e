/* file.c — what the runtime's file formats share: atomic writing (.npy, checkpoints) and
 * little-endian integers. Atomic writing:
 * contents go to PATH.tmp, which is flushed, fsync'd and renamed over PATH, then the directory
 * is fsync'd so the rename itself survives a crash. A failed write leaves PATH untouched. */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* fsyncs the directory holding path, so a rename in it is durable. */
static bool fsync_dir_of(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return false;
    bool ok = fsync(fd) == 0;
    int e = errno;
    close(fd);
    errno = e;
    return ok;
}

bool dc_file_write_atomic(const char *path, bool (*fill)(FILE *f, void *ctx), void *ctx,
                          char *err, size_t len) {
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        snprintf(err, len, "%s: path too long", path);
        return false;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, len, "%s: cannot create: %s", tmp, strerror(errno));
        return false;
    }
    errno = EIO;
    bool ok = fill(f, ctx) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        snprintf(err, len, "%s: cannot write: %s", path, strerror(e));
        unlink(tmp);
        return false;
    }
    if (!fsync_dir_of(path)) {
        snprintf(err, len, "%s: cannot sync its directory: %s", path, strerror(errno));
        return false;
    }
    return true;
}

void dc_le_put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

void dc_le_put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

uint32_t dc_le_get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}

uint64_t dc_le_get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
