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
    const char *sub;
    int st = dc_cli_parse(&dc_cmd_cache, NULL, argc, argv, &sub);
    if (st) return st;
    if (!sub) return dc_usage_error("cache", "missing subcommand (stats or clear)");
    if (strcmp(sub, "stats") == 0) return cache_stats();
    if (strcmp(sub, "clear") == 0) return cache_clear();
    return dc_usage_error("cache", "unknown subcommand '%s' (stats or clear)", sub);
}

const dc_command dc_cmd_cache = {
    .name = "cache", .fn = cmd_cache, .summary = "show or empty the kernel cache", .args = "stats|clear",
    .about = "The kernel cache holds JIT-compiled kernels, one file per kernel (k-<32 hex digits>.o),\n"
             "in $DISCO_CACHE_DIR, else $XDG_CACHE_HOME/disco, else ~/.cache/disco.\n"
             "  stats   print the directory, the number of entries and their bytes on disk\n"
             "  clear   remove every entry (other files in the directory are left alone) and print\n"
             "          how many were removed\n",
};
