/* parse.c — the parser of the IR text form (see print.c for the canonical spelling): a
 * byte-safe lexer, a flat recursive-descent parser that builds the graph node by node and
 * then its `assign` state updates, checks every node against its shape rule, every loop
 * group suffix ` group=K` (K >= 1, a groupable op, members consecutive) and every update
 * against its param as it goes, and reports the first error as
 * "FILE:LINE:COL: error: ...". It never reads past `len` and never aborts on bad input. */
#include "ir/ir.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ELEMS ((int64_t)1 << 40) /* the most elements one tensor type may have */

typedef enum { T_EOF, T_ERR, T_IDENT, T_NUM, T_PCT, T_AT, T_STR, T_ARROW, T_PUNCT } tok_kind;

typedef struct {
    tok_kind k;
    const char *s; /* text; for T_PCT/T_AT the name after the sigil, for T_STR the contents */
    size_t n;
    char c;        /* the character of a T_PUNCT */
    int line, col;
} token;

typedef struct { const char *s; size_t n; int val; } sym;
typedef struct { sym *e; size_t cap, n; } symtab;

typedef struct {
    const char *src, *file;
    size_t len, pos;
    int line, col;
    token tok;
    bool failed;
    char *err;
    size_t errlen;
    dc_graph *g;
    symtab values, params, outs;
    int *group;        /* loop group of each node parsed so far (becomes g->group) */
    int n_group, cap_group;
    bool grouped;      /* some node has a group suffix */
} parser;

/* One declared output from the header. */
typedef struct { const char *s; size_t n; dc_type type; int line, col; } out_decl;

/* ---- errors ------------------------------------------------------------------------- */

static bool fail_at(parser *p, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static bool fail_at(parser *p, int line, int col, const char *fmt, ...) {
    if (p->failed) return false;
    p->failed = true;
    int k = snprintf(p->err, p->errlen, "%s:%d:%d: error: ", p->file, line, col);
    if (k >= 0 && (size_t)k < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    p->tok.k = T_ERR;
    return false;
}

/* An error at the current token; at the end of the file it reads "unexpected end of file". */
static bool fail_tok(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail_tok(parser *p, const char *fmt, ...) {
    if (p->tok.k == T_EOF) return fail_at(p, p->tok.line, p->tok.col, "unexpected end of file");
    char msg[DC_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail_at(p, p->tok.line, p->tok.col, "%s", msg);
}

/* Token text, shortened for messages. */
#define TXT(t) (int)((t).n > 60 ? 60 : (t).n), (t).s

/* ---- symbol tables (open addressing over token text) -------------------------------- */

static size_t sym_hash(const char *s, size_t n) {
    size_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

static sym *sym_slot(symtab *t, const char *s, size_t n) {
    size_t i = sym_hash(s, n) & (t->cap - 1);
    while (t->e[i].s && !(t->e[i].n == n && memcmp(t->e[i].s, s, n) == 0)) i = (i + 1) & (t->cap - 1);
    return &t->e[i];
}

static int sym_get(symtab *t, const char *s, size_t n) {
    if (!t->cap) return -1;
    sym *e = sym_slot(t, s, n);
    return e->s ? e->val : -1;
}

static void sym_put(symtab *t, const char *s, size_t n, int val) {
    if (2 * (t->n + 1) > t->cap) {
        symtab bigger = { calloc(t->cap ? 2 * t->cap : 64, sizeof(sym)), t->cap ? 2 * t->cap : 64, 0 };
        if (!bigger.e) abort(); /* out of memory */
        for (size_t i = 0; i < t->cap; i++)
            if (t->e[i].s) *sym_slot(&bigger, t->e[i].s, t->e[i].n) = t->e[i];
        bigger.n = t->n;
        free(t->e);
        *t = bigger;
    }
    sym *e = sym_slot(t, s, n);
    if (!e->s) t->n++;
    *e = (sym){ s, n, val };
}

/* ---- the lexer ---------------------------------------------------------------------- */

static bool is_ident_start(int c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
static bool is_ident_char(int c) { return is_ident_start(c) || (c >= '0' && c <= '9') || c == '.'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static int peekc(const parser *p, size_t off) {
    return p->pos + off < p->len ? (unsigned char)p->src[p->pos + off] : -1;
}

static void advance(parser *p) {
    if (p->src[p->pos] == '\n') {
        p->line++;
        p->col = 1;
    } else {
        p->col++;
    }
    p->pos++;
}

static bool bad_byte(parser *p, int c) {
    if (c == 0) return fail_at(p, p->line, p->col, "unexpected NUL byte");
    if (c >= 0x20 && c < 0x7f) return fail_at(p, p->line, p->col, "unexpected character '%c'", c);
    return fail_at(p, p->line, p->col, "unexpected byte 0x%02x", c);
}

/* Skips blanks and `//` comments; false on a NUL byte. */
static bool skip_space(parser *p) {
    for (int c; (c = peekc(p, 0)) >= 0;) {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            advance(p);
        } else if (c == '/' && peekc(p, 1) == '/') {
            while ((c = peekc(p, 0)) >= 0 && c != '\n') {
                if (c == 0) return bad_byte(p, c);
                advance(p);
            }
        } else {
            break;
        }
    }
    return true;
}

static void lex_name(parser *p, token *t, tok_kind k, char sigil) {
    advance(p);
    size_t start = p->pos;
    while (peekc(p, 0) >= 0 && is_ident_char(peekc(p, 0))) advance(p);
    if (p->pos == start) {
        fail_at(p, t->line, t->col, "expected a name after '%c'", sigil);
        return;
    }
    *t = (token){ k, p->src + start, p->pos - start, 0, t->line, t->col };
}

/* A number token: an optional '-', then letters, digits, '.', and a sign after e/E; its
 * spelling is checked where a value is read, so "12ab" reads as one bad number. */
static void lex_number(parser *p, token *t) {
    size_t start = p->pos;
    if (peekc(p, 0) == '-') advance(p);
    for (int c; (c = peekc(p, 0)) >= 0;) {
        int prev = p->pos > start ? (unsigned char)p->src[p->pos - 1] : 0;
        if (is_ident_char(c) || ((c == '+' || c == '-') && (prev == 'e' || prev == 'E'))) advance(p);
        else break;
    }
    *t = (token){ T_NUM, p->src + start, p->pos - start, 0, t->line, t->col };
}

static void lex_string(parser *p, token *t) {
    advance(p);
    size_t start = p->pos;
    for (;;) {
        int c = peekc(p, 0);
        if (c < 0 || c == '\n') {
            fail_at(p, t->line, t->col, "unterminated string");
            return;
        }
        if (c == '"') break;
        if (c == '\\') {
            fail_at(p, p->line, p->col, "escape sequences are not allowed in names");
            return;
        }
        if (c < 0x20 || c >= 0x7f) {
            bad_byte(p, c);
            return;
        }
        advance(p);
    }
    *t = (token){ T_STR, p->src + start, p->pos - start, 0, t->line, t->col };
    advance(p);
}

/* Reads the next token into p->tok (T_ERR after a lexical error). */
static void next(parser *p) {
    if (p->failed) return;
    if (!skip_space(p)) return;
    token t = { T_EOF, p->src + p->pos, 0, 0, p->line, p->col };
    int c = peekc(p, 0), c1 = peekc(p, 1);
    if (c < 0) {
        p->tok = t;
        return;
    }
    if (is_ident_start(c)) {
        size_t start = p->pos;
        while (peekc(p, 0) >= 0 && is_ident_char(peekc(p, 0))) advance(p);
        t.k = T_IDENT;
        t.n = p->pos - start;
    } else if (c == '%' || c == '@') {
        lex_name(p, &t, c == '%' ? T_PCT : T_AT, (char)c);
    } else if (is_digit(c) || (c == '.' && c1 >= 0 && is_digit(c1)) ||
               (c == '-' && c1 >= 0 && (is_ident_char(c1)))) {
        lex_number(p, &t);
    } else if (c == '-' && c1 == '>') {
        advance(p);
        advance(p);
        t.k = T_ARROW;
        t.n = 2;
    } else if (c == '"') {
        lex_string(p, &t);
    } else if (c != 0 && strchr("()[]{},:=", c)) {
        advance(p);
        t.k = T_PUNCT;
        t.n = 1;
        t.c = (char)c;
    } else {
        bad_byte(p, c);
        return;
    }
    if (!p->failed) p->tok = t;
}

static bool is_punct(const parser *p, char c) { return p->tok.k == T_PUNCT && p->tok.c == c; }

static bool is_word(const parser *p, const char *w) {
    return p->tok.k == T_IDENT && p->tok.n == strlen(w) && memcmp(p->tok.s, w, p->tok.n) == 0;
}

/* Consumes punctuation c or fails with "expected ..." (what). */
static bool expect(parser *p, char c, const char *what) {
    if (!is_punct(p, c)) return fail_tok(p, "expected %s", what);
    next(p);
    return true;
}

/* ---- values ------------------------------------------------------------------------- */

static bool parse_int_tok(parser *p, int64_t *out) {
    token t = p->tok;
    if (t.k != T_NUM) return false;
    size_t i = t.s[0] == '-';
    if (i == t.n) return fail_tok(p, "invalid integer '%.*s'", TXT(t));
    uint64_t v = 0, limit = i ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < t.n; i++) {
        if (!is_digit(t.s[i])) return fail_tok(p, "invalid integer '%.*s'", TXT(t));
        unsigned d = (unsigned)(t.s[i] - '0');
        if (v > (limit - d) / 10) return fail_tok(p, "integer '%.*s' out of range", TXT(t));
        v = v * 10 + d;
    }
    *out = t.s[0] == '-' ? (int64_t)(0 - v) : (int64_t)v;
    next(p);
    return true;
}

/* An integer value; what names it in the message when the token is not a number. */
static bool parse_int(parser *p, int64_t *out, const char *what) {
    if (p->tok.k != T_NUM) return fail_tok(p, "expected an integer for %s", what);
    return parse_int_tok(p, out);
}

/* Checks the spelling -?(D+(.D*)?|.D+)([eE][+-]?D+)? of a float literal. */
static bool float_syntax(const char *s, size_t n) {
    size_t i = s[0] == '-', d = 0;
    while (i < n && is_digit(s[i])) i++, d++;
    if (i < n && s[i] == '.')
        for (i++; i < n && is_digit(s[i]); i++) d++;
    if (!d) return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i == n || !is_digit(s[i])) return false;
        while (i < n && is_digit(s[i])) i++;
    }
    return i == n;
}

static bool parse_float(parser *p, float *out, const char *what) {
    token t = p->tok;
    bool neg = t.k == T_NUM && t.s[0] == '-';
    const char *w = t.s + neg;
    size_t wn = t.n - neg;
    if ((t.k == T_IDENT || t.k == T_NUM) && wn == 3 && memcmp(w, "inf", 3) == 0) {
        *out = neg ? -INFINITY : INFINITY;
    } else if (t.k == T_IDENT && t.n == 3 && memcmp(t.s, "nan", 3) == 0) {
        *out = NAN;
    } else if (t.k != T_NUM) {
        return fail_tok(p, "expected a number for %s", what);
    } else if (!float_syntax(t.s, t.n)) {
        return fail_tok(p, "invalid number '%.*s'", TXT(t));
    } else {
        char *tmp = malloc(t.n + 1);
        if (!tmp) abort(); /* out of memory */
        memcpy(tmp, t.s, t.n);
        tmp[t.n] = 0;
        *out = strtof(tmp, NULL);
        free(tmp);
        if (isinf(*out)) return fail_tok(p, "number '%.*s' out of range for f32", TXT(t));
    }
    next(p);
    return true;
}

static bool parse_ints(parser *p, dc_ints *v, const char *what) {
    memset(v, 0, sizeof *v);
    if (!expect(p, '[', "'[' to open a list")) return false;
    if (is_punct(p, ']')) {
        next(p);
        return true;
    }
    for (;;) {
        if (v->n == DC_MAX_RANK) return fail_tok(p, "too many entries in %s (the maximum is %d)", what, DC_MAX_RANK);
        if (!parse_int(p, &v->v[v->n++], what)) return false;
        if (is_punct(p, ']')) break;
        if (!expect(p, ',', "',' or ']' in a list")) return false;
    }
    next(p);
    return true;
}

/* The dims of a type, from '[' to ']', after its dtype. */
static bool parse_dims(parser *p, dc_type *t) {
    if (!expect(p, '[', "'[' after the dtype")) return false;
    if (is_punct(p, ']')) {
        next(p);
        return true;
    }
    int64_t numel = 1;
    for (;;) {
        int line = p->tok.line, col = p->tok.col;
        int64_t d;
        if (p->tok.k != T_NUM) return fail_tok(p, "expected a dimension");
        if (t->shape.rank == DC_MAX_RANK)
            return fail_at(p, line, col, "rank %d exceeds the maximum %d", DC_MAX_RANK + 1, DC_MAX_RANK);
        if (!parse_int_tok(p, &d)) return false;
        if (d < 1) return fail_at(p, line, col, "dimension must be >= 1");
        if (d > MAX_ELEMS / numel)
            return fail_at(p, line, col, "type has more than 2^40 elements");
        numel *= d;
        t->shape.dim[t->shape.rank++] = d;
        if (is_punct(p, ']')) break;
        if (!expect(p, ',', "',' or ']' in a shape")) return false;
    }
    next(p);
    return true;
}

/* A type whose dtype token has already been read (dt is that token). */
static bool parse_type_from(parser *p, token dt, dc_type *t) {
    memset(t, 0, sizeof *t);
    int k = dc_dtype_from_name(dt.s, dt.n);
    if (k < 0) return fail_at(p, dt.line, dt.col, "unknown dtype '%.*s'", TXT(dt));
    t->dtype = (dc_dtype)k;
    return parse_dims(p, t);
}

static bool parse_type(parser *p, dc_type *t) {
    if (p->tok.k != T_IDENT) return fail_tok(p, "expected a type");
    token dt = p->tok;
    next(p);
    return parse_type_from(p, dt, t);
}

/* ---- attributes --------------------------------------------------------------------- */

static bool parse_field(parser *p, const dc_attr_field *f, char *base) {
    char what[64];
    snprintf(what, sizeof what, "'%s'", f->name);
    switch (f->type) {
    case DC_FT_INT: return parse_int(p, (int64_t *)(base + f->offset), what);
    case DC_FT_FLOAT: return parse_float(p, (float *)(base + f->offset), what);
    case DC_FT_INTS: return parse_ints(p, (dc_ints *)(base + f->offset), what);
    case DC_FT_BOOL:
        if (!is_word(p, "true") && !is_word(p, "false"))
            return fail_tok(p, "expected true or false for %s", what);
        *(bool *)(base + f->offset) = is_word(p, "true");
        next(p);
        return true;
    case DC_FT_DTYPE: {
        if (p->tok.k != T_IDENT) return fail_tok(p, "expected a dtype for %s", what);
        int k = dc_dtype_from_name(p->tok.s, p->tok.n);
        if (k < 0) return fail_tok(p, "unknown dtype '%.*s'", TXT(p->tok));
        *(dc_dtype *)(base + f->offset) = (dc_dtype)k;
        next(p);
        return true;
    }
    case DC_FT_ENUM: {
        if (p->tok.k != T_IDENT) return fail_tok(p, "expected a name for %s", what);
        for (int k = 0; k < f->n_names; k++)
            if (strlen(f->names[k]) == p->tok.n && memcmp(f->names[k], p->tok.s, p->tok.n) == 0) {
                *(int *)(base + f->offset) = k;
                next(p);
                return true;
            }
        return fail_tok(p, "unknown value '%.*s' for %s", TXT(p->tok), what);
    }
    }
    return false;
}

/* `{name=value, ...}`: every field of n's schema exactly once, in any order. */
static bool parse_attrs(parser *p, dc_node *n) {
    const dc_attr_schema *sc = dc_op_get(n->op)->attr;
    bool seen[16] = { 0 }, braced = is_punct(p, '{');
    if (braced) {
        next(p);
        while (!is_punct(p, '}')) {
            if (p->tok.k != T_IDENT) return fail_tok(p, "expected an attribute name");
            token name = p->tok;
            int f = -1;
            for (int i = 0; i < sc->n_fields; i++)
                if (strlen(sc->fields[i].name) == name.n && memcmp(sc->fields[i].name, name.s, name.n) == 0) f = i;
            if (f < 0) return fail_tok(p, "unknown attribute '%.*s' for %s", TXT(name), dc_op_name(n->op));
            if (seen[f]) return fail_tok(p, "duplicate attribute '%s'", sc->fields[f].name);
            seen[f] = true;
            next(p);
            char what[64];
            snprintf(what, sizeof what, "'=' after '%s'", sc->fields[f].name);
            if (!expect(p, '=', what)) return false;
            if (!parse_field(p, &sc->fields[f], (char *)&n->attr)) return false;
            if (is_punct(p, '}')) break;
            if (!expect(p, ',', "',' or '}' in attributes")) return false;
        }
    }
    for (int i = 0; i < sc->n_fields; i++)
        if (!seen[i]) return fail_tok(p, "missing attribute '%s'", sc->fields[i].name);
    if (braced) next(p);
    return true;
}

/* ---- nodes -------------------------------------------------------------------------- */

/* A use `%name`: the id of an earlier definition. */
static bool parse_use(parser *p, int *id) {
    if (p->tok.k != T_PCT) return fail_tok(p, "expected a value '%%NAME'");
    *id = sym_get(&p->values, p->tok.s, p->tok.n);
    if (*id < 0) return fail_tok(p, "use of undefined value '%%%.*s'", TXT(p->tok));
    next(p);
    return true;
}

/* `init=KIND` or `init=normal(STD)` or `init=uniform(LO, HI)` */
static bool parse_init(parser *p, dc_init_attr *a) {
    if (!is_word(p, "init")) return fail_tok(p, "expected 'init=' after the param type");
    next(p);
    if (!expect(p, '=', "'=' after 'init'")) return false;
    if (p->tok.k != T_IDENT) return fail_tok(p, "expected an init kind");
    int k = -1;
    for (int i = 0; i < DC_NINITS; i++)
        if (is_word(p, dc_init_name((dc_init_kind)i))) k = i;
    if (k < 0) return fail_tok(p, "unknown init '%.*s'", TXT(p->tok));
    a->kind = (dc_init_kind)k;
    next(p);
    if (k != DC_INIT_NORMAL && k != DC_INIT_UNIFORM) return true;
    if (!expect(p, '(', k == DC_INIT_NORMAL ? "'(' after normal" : "'(' after uniform")) return false;
    if (!parse_float(p, &a->a, k == DC_INIT_NORMAL ? "the std of normal" : "the low bound of uniform"))
        return false;
    if (k == DC_INIT_UNIFORM &&
        (!expect(p, ',', "',' after the low bound") || !parse_float(p, &a->b, "the high bound of uniform")))
        return false;
    return expect(p, ')', "')' after the init arguments");
}

/* `"NAME" : TYPE init=SPEC` after `param`; the name is malloc'd into *name. */
static bool parse_param(parser *p, dc_node *n, char **name) {
    if (p->tok.k != T_STR) return fail_tok(p, "expected a quoted param name");
    token s = p->tok;
    if (s.n == 0) return fail_tok(p, "empty param name");
    if (sym_get(&p->params, s.s, s.n) >= 0) return fail_tok(p, "duplicate param \"%.*s\"", TXT(s));
    sym_put(&p->params, s.s, s.n, 1);
    *name = malloc(s.n + 1);
    if (!*name) abort(); /* out of memory */
    memcpy(*name, s.s, s.n);
    (*name)[s.n] = 0;
    next(p);
    if (!expect(p, ':', "':' after the param name")) return false;
    return parse_type(p, &n->type) && parse_init(p, &n->attr.init);
}

/* Inputs, attributes and declared type of a non-param node, after its op. */
static bool parse_operation(parser *p, dc_node *n, token op) {
    if (p->tok.k == T_PCT) {
        for (;;) {
            if (n->n_in == DC_MAX_INPUTS) return fail_tok(p, "too many inputs (the maximum is %d)", DC_MAX_INPUTS);
            if (!parse_use(p, &n->in[n->n_in++])) return false;
            if (!is_punct(p, ',')) break;
            next(p);
        }
    }
    int arity = dc_op_get(n->op)->arity;
    if (arity >= 0 && n->n_in != arity)
        return fail_at(p, op.line, op.col, "%s expects %d input%s, got %d", dc_op_name(n->op), arity,
                       arity == 1 ? "" : "s", n->n_in);
    if (arity < 0 && n->n_in == 0)
        return fail_at(p, op.line, op.col, "%s expects 1 to %d inputs, got 0", dc_op_name(n->op), DC_MAX_INPUTS);
    if (!parse_attrs(p, n)) return false;
    if (!is_punct(p, ':'))
        return fail_tok(p, "expected ':' after %s", dc_op_get(n->op)->attr->n_fields ? "attributes" : "inputs");
    next(p);
    return parse_type(p, &n->type);
}

/* Records group k for node id (the next node), zero for the nodes before it not yet seen. */
static void set_group(parser *p, int id, int k) {
    if (id >= p->cap_group) {
        p->cap_group = 2 * id + 16;
        p->group = realloc(p->group, (size_t)p->cap_group * sizeof *p->group);
        if (!p->group) abort(); /* out of memory */
    }
    while (p->n_group <= id) p->group[p->n_group++] = 0;
    p->group[id] = k;
}

/* Whether group k has a member before node id other than the node just before it. */
static bool group_closed(const parser *p, int id, int k) {
    if (id > 0 && p->group[id - 1] == k) return false;
    for (int j = 0; j < id; j++)
        if (p->group[j] == k) return true;
    return false;
}

/* The optional ` group=K` after the node of op `op` that gets id p->g->n_nodes. */
static bool parse_group(parser *p, dc_op op) {
    int id = p->g->n_nodes;
    set_group(p, id, 0);
    if (!is_word(p, "group")) return true;
    token gt = p->tok;
    next(p);
    if (!expect(p, '=', "'=' after 'group'")) return false;
    token kt = p->tok;
    int64_t k;
    if (!parse_int(p, &k, "the group id")) return false;
    if (k < 1 || k > INT_MAX) return fail_at(p, kt.line, kt.col, "group id must be between 1 and %d", INT_MAX);
    if (!dc_op_groupable(op)) return fail_at(p, gt.line, gt.col, "%s cannot be in a loop group", dc_op_name(op));
    set_group(p, id, (int)k);
    if (group_closed(p, id, (int)k))
        return fail_at(p, gt.line, gt.col, "group %d is not consecutive: its members must be consecutive nodes",
                       (int)k);
    p->grouped = true;
    return true;
}

/* Hands the parsed groups to the graph (when any node has one). */
static void attach_groups(parser *p) {
    if (!p->grouped) return;
    set_group(p, p->g->n_nodes, 0);
    p->g->group = p->group;
    p->group = NULL;
}

/* Checks n's declared type against its shape rule. */
static bool check_type(parser *p, const dc_node *n) {
    char msg[DC_ERR_LEN], a[192], b[192];
    dc_type got;
    if (!dc_infer_type(p->g, n, &got, msg, sizeof msg)) return fail_at(p, n->line, n->col, "%s", msg);
    if (!dc_type_eq(&got, &n->type))
        return fail_at(p, n->line, n->col, "declared %s but %s gives %s", dc_type_str(&n->type, a, sizeof a),
                       dc_op_name(n->op), dc_type_str(&got, b, sizeof b));
    return true;
}

/* `%NAME = OP ...` : one body node. */
static bool parse_node(parser *p) {
    token def = p->tok;
    if (sym_get(&p->values, def.s, def.n) >= 0) return fail_tok(p, "redefinition of '%%%.*s'", TXT(def));
    next(p);
    char what[96];
    snprintf(what, sizeof what, "'=' after '%%%.*s'", TXT(def));
    if (!expect(p, '=', what)) return false;
    if (p->tok.k != T_IDENT) return fail_tok(p, "expected an op name");
    token op = p->tok;
    int k = dc_op_from_name(op.s, op.n);
    if (k < 0) return fail_tok(p, "unknown op '%.*s'", TXT(op));
    if (k == DC_OP_INPUT) return fail_tok(p, "inputs are declared in the graph header");
    next(p);
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = (dc_op)k;
    n.file = p->g->src_file;
    n.line = def.line;
    n.col = def.col;
    char *name = NULL;
    bool ok = k == DC_OP_PARAM ? parse_param(p, &n, &name) : parse_operation(p, &n, op);
    n.name = name;
    ok = ok && parse_group(p, n.op) && check_type(p, &n);
    if (ok) sym_put(&p->values, def.s, def.n, dc_graph_append(p->g, &n));
    free(name);
    return ok;
}

/* `assign %P, %V` : one state update; P a param not assigned before, V of P's type. */
static bool parse_assign(parser *p) {
    next(p);
    token pt = p->tok;
    int param, value;
    if (!parse_use(p, &param)) return false;
    if (p->g->nodes[param].op != DC_OP_PARAM)
        return fail_at(p, pt.line, pt.col, "assign: '%%%.*s' is not a param", TXT(pt));
    for (int j = 0; j < p->g->n_updates; j++)
        if (p->g->updates[j].param == param)
            return fail_at(p, pt.line, pt.col, "assign: param '%%%.*s' is assigned twice", TXT(pt));
    if (!expect(p, ',', "',' after the param of assign")) return false;
    token vt = p->tok;
    if (!parse_use(p, &value)) return false;
    const dc_type *want = &p->g->nodes[param].type, *have = &p->g->nodes[value].type;
    if (!dc_type_eq(have, want)) {
        char a[192], b[192];
        return fail_at(p, vt.line, vt.col, "assign: type %s of '%%%.*s' does not match param '%%%.*s' %s",
                       dc_type_str(have, a, sizeof a), TXT(vt), TXT(pt), dc_type_str(want, b, sizeof b));
    }
    dc_graph_add_update(p->g, param, value);
    return true;
}

/* The body after '{': nodes, then assign lines, then the return (checked by the caller). */
static bool parse_body(parser *p) {
    while (p->tok.k == T_PCT)
        if (!parse_node(p)) return false;
    while (is_word(p, "assign"))
        if (!parse_assign(p)) return false;
    if (p->tok.k == T_PCT)
        return fail_tok(p, "node after 'assign': assign lines come after all nodes");
    if (!is_word(p, "return"))
        return fail_tok(p, p->g->n_updates > 0 ? "expected 'assign' or 'return'"
                                               : "expected a node '%%NAME = ...' or 'return'");
    return true;
}

/* ---- the header and the return ------------------------------------------------------ */

static bool parse_inputs(parser *p) {
    if (!expect(p, '(', "'(' after the graph name")) return false;
    while (!is_punct(p, ')')) {
        if (p->tok.k != T_PCT) return fail_tok(p, "expected an input '%%NAME' or ')'");
        token t = p->tok;
        if (!is_ident_start((unsigned char)t.s[0])) return fail_tok(p, "input name '%.*s' is not an identifier", TXT(t));
        if (sym_get(&p->values, t.s, t.n) >= 0) return fail_tok(p, "redefinition of '%%%.*s'", TXT(t));
        next(p);
        if (!expect(p, ':', "':' after the input name")) return false;
        dc_node n;
        memset(&n, 0, sizeof n);
        if (!parse_type(p, &n.type)) return false;
        n.op = DC_OP_INPUT;
        n.file = p->g->src_file;
        n.line = t.line;
        n.col = t.col;
        char *name = malloc(t.n + 1);
        if (!name) abort(); /* out of memory */
        memcpy(name, t.s, t.n);
        name[t.n] = 0;
        n.name = name;
        sym_put(&p->values, t.s, t.n, dc_graph_append(p->g, &n));
        free(name);
        if (is_punct(p, ')')) break;
        if (!expect(p, ',', "',' or ')' after an input")) return false;
    }
    next(p);
    return true;
}

static bool parse_outputs(parser *p, out_decl **outs, int *n_outs) {
    if (p->tok.k != T_ARROW) return fail_tok(p, "expected '->' after inputs");
    next(p);
    if (!expect(p, '(', "'(' after '->'")) return false;
    int cap = 0;
    while (!is_punct(p, ')')) {
        if (p->tok.k != T_IDENT) return fail_tok(p, "expected an output type or 'NAME: TYPE'");
        token first = p->tok;
        out_decl d = { NULL, 0, { 0 }, first.line, first.col };
        next(p);
        if (is_punct(p, ':')) {
            if (sym_get(&p->outs, first.s, first.n) >= 0)
                return fail_at(p, first.line, first.col, "duplicate output name '%.*s'", TXT(first));
            sym_put(&p->outs, first.s, first.n, 1);
            d.s = first.s;
            d.n = first.n;
            next(p);
            if (!parse_type(p, &d.type)) return false;
        } else if (!parse_type_from(p, first, &d.type)) {
            return false;
        }
        if (*n_outs == cap) {
            cap = cap ? 2 * cap : 8;
            *outs = realloc(*outs, (size_t)cap * sizeof **outs);
            if (!*outs) abort(); /* out of memory */
        }
        (*outs)[(*n_outs)++] = d;
        if (is_punct(p, ')')) break;
        if (!expect(p, ',', "',' or ')' after an output")) return false;
    }
    if (*n_outs == 0) return fail_tok(p, "a graph needs at least one output");
    next(p);
    return true;
}

/* `return %a, %b` against the header's declared outputs. */
static bool parse_return(parser *p, const out_decl *outs, int n_outs) {
    token ret = p->tok;
    next(p);
    int k = 0;
    while (p->tok.k == T_PCT) {
        token t = p->tok;
        int id;
        if (!parse_use(p, &id)) return false;
        if (k >= n_outs)
            return fail_at(p, t.line, t.col, "return has more values than the %d declared outputs", n_outs);
        const out_decl *d = &outs[k];
        const dc_type *have = &p->g->nodes[id].type;
        if (!dc_type_eq(have, &d->type)) {
            char a[192], b[192];
            return fail_at(p, t.line, t.col, "output %d is declared %s but '%%%.*s' is %s", k,
                           dc_type_str(&d->type, a, sizeof a), TXT(t), dc_type_str(have, b, sizeof b));
        }
        char *name = NULL;
        if (d->s) {
            name = malloc(d->n + 1);
            if (!name) abort(); /* out of memory */
            memcpy(name, d->s, d->n);
            name[d->n] = 0;
        }
        dc_graph_add_output(p->g, id, name);
        free(name);
        k++;
        if (!is_punct(p, ',')) break;
        next(p);
        if (p->tok.k != T_PCT) return fail_tok(p, "expected a value after ','");
    }
    if (k < n_outs)
        return fail_at(p, ret.line, ret.col, "return has %d value%s but the header declares %d outputs", k,
                       k == 1 ? "" : "s", n_outs);
    return true;
}

static void set_next_stream(dc_graph *g) {
    int64_t next = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (dc_op_get(g->nodes[i].op)->kind == DC_KIND_RANDOM && g->nodes[i].attr.random.stream >= next)
            next = g->nodes[i].attr.random.stream == INT64_MAX ? INT64_MAX : g->nodes[i].attr.random.stream + 1;
    g->next_stream = next;
}

static bool parse_graph(parser *p) {
    token first = p->tok;
    if (!is_word(p, "graph")) return fail_tok(p, "expected 'graph'");
    next(p);
    if (p->tok.k != T_AT) return fail_tok(p, "expected '@NAME' after 'graph'");
    if (!is_ident_start((unsigned char)p->tok.s[0]))
        return fail_tok(p, "graph name '%.*s' is not an identifier", TXT(p->tok));
    char *name = malloc(p->tok.n + 1);
    if (!name) abort(); /* out of memory */
    memcpy(name, p->tok.s, p->tok.n);
    name[p->tok.n] = 0;
    free(p->g->name);
    p->g->name = name;
    next(p);
    out_decl *outs = NULL;
    int n_outs = 0;
    bool ok = parse_inputs(p) && parse_outputs(p, &outs, &n_outs) && expect(p, '{', "'{' to open the body");
    ok = ok && parse_body(p) && parse_return(p, outs, n_outs);
    if (ok && is_word(p, "assign")) ok = fail_tok(p, "assign after return: assign lines come before 'return'");
    ok = ok && expect(p, '}', "'}' after the return values");
    free(outs);
    if (ok && p->tok.k != T_EOF) ok = fail_tok(p, "trailing text after '}'");
    if (!ok) return false;
    set_next_stream(p->g);
    attach_groups(p);
    char msg[DC_ERR_LEN];
    if (!dc_verify(p->g, msg, sizeof msg)) return fail_at(p, first.line, first.col, "%s", msg);
    return true;
}

dc_graph *dc_parse(const char *text, size_t len, const char *file, char *err, size_t errlen) {
    parser p = { 0 };
    p.src = text;
    p.len = len;
    p.file = file ? file : "<input>";
    p.line = p.col = 1;
    p.err = err;
    p.errlen = errlen;
    p.g = dc_graph_new("g");
    size_t fn = strlen(p.file) + 1;
    p.g->src_file = malloc(fn);
    if (!p.g->src_file) abort(); /* out of memory */
    memcpy(p.g->src_file, p.file, fn);
    next(&p);
    bool ok = parse_graph(&p);
    free(p.values.e);
    free(p.params.e);
    free(p.outs.e);
    free(p.group);
    if (ok) return p.g;
    dc_graph_free(p.g);
    return NULL;
}

dc_graph *dc_parse_file(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: error: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    if (!buf) abort(); /* out of memory */
    while ((k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            buf = realloc(buf, cap *= 2);
            if (!buf) abort(); /* out of memory */
        }
    }
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (e) {
        free(buf);
        snprintf(err, errlen, "%s: error: cannot read: %s", path, strerror(e));
        return NULL;
    }
    dc_graph *g = dc_parse(buf, n, path, err, errlen);
    free(buf);
    return g;
}
