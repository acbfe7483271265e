/* cache.c — `disco cache`: shows (stats) or empties (clear) the on-disk kernel cache of
 * codegen/cache.c. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "codegen/codegen.h"
#include "tools/cli.h"

static int cache_stats(void) {
    const char *dir = dc_kcache_dir();
    dc_kcache_stats s = dc_kcache_get_stats();
    printf("dir      %s\nentries  %" PRId64 "\nbytes    %" PRId64 "\n", dir, s.entries, s.bytes);
    return 0;
}

static int cache_clear(void) {
    char err[DC_ERR_LEN];
    const char *dir = dc_kcache_dir();
    int64_t before = dc_kcache_get_stats().entries;
    bool ok = dc_kcache_clear(err, sizeof err);
    int64_t removed = before - dc_kcache_get_stats().entries;
    printf("removed %" PRId64 " %s from %s\n", removed > 0 ? removed : 0,
           removed == 1 ? "entry" : "entries", dir);
    if (ok) return 0;
    fprintf(stderr, "disco cache: %s\n", err);
    return 1;
}

static int cmd_cache(int argc, char **argv) {
    if (argc < 2) return dc_usage_error("cache", "missing subcommand (stats or clear)");
    if (argc > 2) return dc_usage_error("cache", "unexpected argument '%s'", argv[2]);
    if (strcmp(argv[1], "stats") == 0) return cache_stats();
    if (strcmp(argv[1], "clear") == 0) return cache_clear();
    return dc_usage_error("cache", "unknown subcommand '%s' (stats or clear)", argv[1]);
}

const dc_command dc_cmd_cache = { "cache", cmd_cache, "show or empty the kernel cache",
      "usage: disco cache stats|clear\n"
      "\n"
      "The kernel cache holds JIT-compiled kernels, one file per kernel (k-<32 hex digits>.o),\n"
      "in $DISCO_CACHE_DIR, else $XDG_CACHE_HOME/disco, else ~/.cache/disco.\n"
      "  stats   print the directory, the number of entries and their bytes on disk\n"
      "  clear   remove every entry (other files in the directory are left alone) and print\n"
      "          how many were removed\n" };
