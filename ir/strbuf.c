/* strbuf.c — text building: a growing string for the printers (text, DOT, memory plan) and
 * the prefixed error messages of the verifier and the shape rules. */
#include "ir/ir.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void dc_sb_printf(dc_strbuf *s, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->buf ? s->buf + s->len : NULL, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n < 0) abort(); /* an invalid format: a bug in disco */
        if (s->len + (size_t)n < s->cap) {
            s->len += (size_t)n;
            return;
        }
        s->cap = 2 * (s->cap + (size_t)n) + 256;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf) abort(); /* out of memory */
    }
}

void dc_vprefixed(char *err, size_t len, const char *prefix, const char *fmt, va_list ap) {
    int k = snprintf(err, len, "%s", prefix);
    if (k >= 0 && (size_t)k < len) vsnprintf(err + k, len - (size_t)k, fmt, ap);
}
