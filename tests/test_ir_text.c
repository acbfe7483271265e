/* test_ir_text.c — tests of the IR text form: golden files round-trip byte for byte,
 * malformed texts under tests/ir/errors/ give their expected `FILE:LINE:COL: error:`
 * message, truncated and mutated texts never crash, plus structural hashing and DOT. */
#include "tests/test.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>

#include "ir/ir.h"

static const char *goldens[] = {
    "tests/ir/mlp.dcir",
    "tests/ir/conv_block.dcir",
    "tests/ir/attention.dcir",
    "tests/ir/all_ops.dcir",
    "tests/ir/sgd_step.dcir",
};
#define N_GOLDENS (int)(sizeof goldens / sizeof goldens[0])

/* Parses text of exactly len bytes from a private copy, so reads past len are caught. */
static dc_graph *parse_exact(const char *text, size_t len, const char *file, char *err, size_t errlen) {
    char *copy = malloc(len ? len : 1);
    if (!copy) abort();
    memcpy(copy, text, len);
    dc_graph *g = dc_parse(copy, len, file, err, errlen);
    free(copy);
    return g;
}

static dc_graph *parse_str(const char *text) {
    char err[DC_ERR_LEN];
    dc_graph *g = dc_parse(text, strlen(text), "t.dcir", err, sizeof err);
    if (!g) dc_test_fail(__FILE__, __LINE__, "parse failed: %s", err);
    return g;
}

TEST(ir_text_goldens_round_trip) {
    bool seen[DC_OP_COUNT] = { false };
    for (int i = 0; i < N_GOLDENS; i++) {
        size_t len;
        char *text = dc_test_read_file(goldens[i], &len);
        char err[DC_ERR_LEN] = "";
        dc_graph *g = text ? dc_parse(text, len, goldens[i], err, sizeof err) : NULL;
        char *out = g ? dc_print(g) : NULL;
        dc_graph *g2 = out ? dc_parse(out, strlen(out), goldens[i], err, sizeof err) : NULL;
        char *out2 = g2 ? dc_print(g2) : NULL;
        bool ok = out && strcmp(out, text) == 0 && out2 && strcmp(out2, out) == 0;
        dc_test_case(goldens[i], ok, "%s", !text ? "cannot read" : !g ? err : "printed text differs");
        if (!ok && out) printf("--- printed:\n%s", out);
        for (int k = 0; g && k < g->n_nodes; k++) seen[g->nodes[k].op] = true;
        free(out);
        free(out2);
        dc_graph_free(g);
        dc_graph_free(g2);
        free(text);
    }
    for (int op = 0; op < DC_OP_COUNT; op++)
        CHECK_MSG(seen[op], "op %s appears in no golden file", dc_op_name((dc_op)op));
}

/* Non-canonical but valid spellings: comments, blank lines, named SSA values, attributes
 * out of order, odd spacing, floats written as ints. The printer canonicalises them. */
TEST(ir_text_parse_accepts_and_canonicalises) {
    const char *in =
        "// a comment\n"
        "\n"
        "graph @g( %x :f32[2,3] ) -> ( f32[2,1] ,s: f32[] ) {   // trailing comment\n"
        "  %w = param \"a.b c\" : f32[3] init=uniform(-1, 2.5)\n"
        "  %h=mul %x,%w:f32[2,3]\n"
        "  %7 = sum %h {keepdims=true, axes=[1]} : f32[2,1]\n"
        "  %s = fill {value=1e-5} : f32[]\n"
        "  %n = normal {b=1, a=0, stream=4} : f32[2]\n"
        "  return %7,%s\n"
        "}";
    const char *want =
        "graph @g(%x: f32[2,3]) -> (f32[2,1], s: f32[]) {\n"
        "  %0 = param \"a.b c\" : f32[3] init=uniform(-1, 2.5)\n"
        "  %1 = mul %x, %0 : f32[2,3]\n"
        "  %2 = sum %1 {axes=[1], keepdims=true} : f32[2,1]\n"
        "  %3 = fill {value=1e-05} : f32[]\n"
        "  %4 = normal {stream=4, a=0, b=1} : f32[2]\n"
        "  return %2, %3\n"
        "}\n";
    dc_graph *g = parse_str(in);
    if (!g) return;
    char *out = dc_print(g);
    CHECK_STR_EQ(out, want);
    CHECK_EQ_INT(g->next_stream, 5);
    CHECK_STR_EQ(g->src_file, "t.dcir");
    CHECK_STR_EQ(g->nodes[2].file, "t.dcir");
    CHECK_EQ_INT(g->nodes[2].line, 5);
    CHECK_EQ_INT(g->nodes[2].col, 3);
    CHECK_EQ_INT(g->nodes[0].line, 3);
    CHECK_EQ_INT(g->nodes[0].col, 11);
    CHECK_NEAR(g->nodes[1].attr.init.a, -1.0, 0, 0);
    CHECK_NEAR(g->nodes[1].attr.init.b, 2.5, 0, 0);
    CHECK(g->output_names[0] == NULL);
    CHECK_STR_EQ(g->output_names[1], "s");
    free(out);
    dc_graph_free(g);
}

/* Floats print with the fewest of 6..9 significant digits that read back exactly. */
TEST(ir_text_float_spelling) {
    static const struct { const char *in, *out; } cases[] = {
        { "0.1", "0.1" },           { "1e-5", "1e-05" },      { "16777216", "16777216" },
        { "3.14159265", "3.1415927" }, { "1.0000001", "1.0000001" }, { "-0", "-0" },
        { "inf", "inf" },           { "-inf", "-inf" },       { "nan", "nan" },
        { "123456789", "1.2345679e+08" }, { "2.5e+3", "2500" },  { "1e-45", "1.4013e-45" },
        { "0.3", "0.3" },           { "16777217", "16777216" }, { "1e38", "1e+38" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[256], want[256];
        snprintf(in, sizeof in, "graph @g() -> (f32[]) {\n  %%0 = fill {value=%s} : f32[]\n  return %%0\n}\n",
                 cases[i].in);
        snprintf(want, sizeof want, "graph @g() -> (f32[]) {\n  %%0 = fill {value=%s} : f32[]\n  return %%0\n}\n",
                 cases[i].out);
        dc_graph *g = parse_str(in);
        if (!g) continue;
        char *out = dc_print(g);
        CHECK_STR_EQ(out, want);
        free(out);
        dc_graph_free(g);
    }
}

TEST(ir_text_parse_file_errors) {
    char err[DC_ERR_LEN];
    CHECK(dc_parse_file("tests/ir/no_such_file.dcir", err, sizeof err) == NULL);
    CHECK_STR_EQ(err, "tests/ir/no_such_file.dcir: error: cannot read: No such file or directory");
    CHECK(dc_parse_file("tests/ir", err, sizeof err) == NULL);
    CHECK_STR_EQ(err, "tests/ir: error: cannot read: Is a directory");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Each tests/ir/errors/NAME.dcir opens with `// ERROR: L:C: error: MESSAGE`. */
TEST(ir_text_error_files) {
    const char *dir = "tests/ir/errors";
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return;
    char *names[256];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 256;) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".dcir") == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    CHECK_MSG(n >= 30, "only %d malformed texts in %s, expected at least 30", n, dir);
    for (int i = 0; i < n; i++) {
        char path[512], want[DC_ERR_LEN + 512], err[DC_ERR_LEN] = "";
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len;
        char *text = dc_test_read_file(path, &len);
        const char *tag = "// ERROR: ";
        char *eol = text ? strchr(text, '\n') : NULL;
        if (!text || strncmp(text, tag, strlen(tag)) != 0 || !eol) {
            dc_test_case(path, false, "does not open with '%s'", tag);
        } else {
            snprintf(want, sizeof want, "%s:%.*s", path, (int)(eol - text - strlen(tag)), text + strlen(tag));
            dc_graph *g = dc_parse_file(path, err, sizeof err);
            dc_test_case(path, !g && strcmp(err, want) == 0, "\n  got:      %s\n  expected: %s",
                         g ? "(parsed)" : err, want);
            dc_graph_free(g);
        }
        free(text);
        free(names[i]);
    }
}

/* A message of the form "FILE:N:N: error: ...". */
static bool located(const char *err, const char *file) {
    size_t fl = strlen(file);
    if (strncmp(err, file, fl) != 0 || err[fl] != ':') return false;
    const char *s = err + fl + 1;
    for (int part = 0; part < 2; part++) {
        if (*s < '1' || *s > '9') return false;
        while (*s >= '0' && *s <= '9') s++;
        if (*s++ != ':') return false;
    }
    return strncmp(s, " error: ", 8) == 0;
}

/* Parses text; on success checks print -> parse -> print is stable, else the message. */
static bool parse_is_sane(const char *text, size_t len, const char *file, char *why, size_t whylen) {
    char err[DC_ERR_LEN];
    dc_graph *g = parse_exact(text, len, file, err, sizeof err);
    if (!g) {
        snprintf(why, whylen, "bad message: %s", err);
        return located(err, file);
    }
    char *a = dc_print(g);
    dc_graph *g2 = dc_parse(a, strlen(a), file, err, sizeof err);
    char *b = g2 ? dc_print(g2) : NULL;
    bool ok = b && strcmp(a, b) == 0;
    snprintf(why, whylen, "re-parse of the printed text %s", g2 ? "prints differently" : err);
    free(a);
    free(b);
    dc_graph_free(g);
    dc_graph_free(g2);
    return ok;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One random edit of buf (len bytes, capacity cap): flip, insert or delete a byte, or
 * duplicate a line. Returns the new length. */
static size_t mutate(char *buf, size_t len, size_t cap, uint64_t *s) {
    static const char alphabet[] = "%@{}[](),:=-> \n\"0123456789.e+fi32[]xyz_/";
    size_t at = len ? rng_next(s) % len : 0;
    switch (rng_next(s) % 4) {
    case 0:
        if (len) buf[at] = (char)(rng_next(s) & 1 ? rng_next(s) : (uint64_t)alphabet[rng_next(s) % (sizeof alphabet - 1)]);
        return len;
    case 1:
        if (len + 1 > cap) return len;
        memmove(buf + at + 1, buf + at, len - at);
        buf[at] = rng_next(s) & 1 ? (char)rng_next(s) : alphabet[rng_next(s) % (sizeof alphabet - 1)];
        return len + 1;
    case 2:
        if (!len) return len;
        memmove(buf + at, buf + at + 1, len - at - 1);
        return len - 1;
    default: {
        size_t b = at, e = at;
        while (b > 0 && buf[b - 1] != '\n') b--;
        while (e < len && buf[e] != '\n') e++;
        if (e < len) e++;
        if (len + (e - b) > cap) return len;
        memmove(buf + e + (e - b), buf + e, len - e);
        memcpy(buf + e, buf + b, e - b);
        return len + (e - b);
    }
    }
}

TEST(ir_text_robust_to_truncation_and_mutation) {
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < N_GOLDENS; i++) {
        size_t len;
        char *text = dc_test_read_file(goldens[i], &len);
        CHECK_MSG(text != NULL, "cannot read %s", goldens[i]);
        if (!text) continue;
        char why[DC_ERR_LEN + 64];
        int bad = 0;
        for (size_t n = 0; n <= len; n++)
            if (!parse_is_sane(text, n, goldens[i], why, sizeof why) && bad++ < 3)
                dc_test_fail(__FILE__, __LINE__, "%s truncated to %zu bytes: %s", goldens[i], n, why);
        size_t cap = 2 * len + 64;
        char *buf = malloc(cap);
        if (!buf) abort();
        for (int round = 0; round < 1000; round++) {
            memcpy(buf, text, len);
            size_t m = len;
            int edits = 1 + (int)(rng_next(&seed) % 4);
            for (int k = 0; k < edits; k++) m = mutate(buf, m, cap, &seed);
            if (!parse_is_sane(buf, m, goldens[i], why, sizeof why) && bad++ < 3)
                dc_test_fail(__FILE__, __LINE__, "%s mutation round %d: %s\n%.*s", goldens[i], round, why,
                             (int)m, buf);
        }
        free(buf);
        free(text);
    }
}

/* Deep or long garbage: many brackets, a very long line, huge numbers. */
TEST(ir_text_robust_to_garbage) {
    char err[DC_ERR_LEN];
    size_t n = 1 << 20;
    char *big = malloc(n);
    if (!big) abort();
    static const char *fills[] = { "[", "{", "(", "%", "9", "graph @g(", "\"" };
    for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++) {
        size_t fl = strlen(fills[f]);
        for (size_t i = 0; i < n; i++) big[i] = fills[f][i % fl];
        dc_graph *g = parse_exact(big, n, "g.dcir", err, sizeof err);
        CHECK(g == NULL);
        CHECK_MSG(located(err, "g.dcir"), "fill '%s': %s", fills[f], err);
        dc_graph_free(g);
    }
    free(big);
    const char *huge = "graph @g(%x: f32[99999999999999999999999]) -> (f32[1]) {\n  return %x\n}\n";
    CHECK(dc_parse(huge, strlen(huge), "h.dcir", err, sizeof err) == NULL);
    CHECK_STR_EQ(err, "h.dcir:1:18: error: integer '99999999999999999999999' out of range");
}

/* ---- hashing ------------------------------------------------------------------------ */

static dc_hash128 out_hash(const char *text) {
    dc_graph *g = parse_str(text);
    if (!g) return (dc_hash128){ 0, 0 };
    dc_graph_hash(g);
    dc_hash128 h = g->nodes[g->outputs[0]].hash;
    dc_graph_free(g);
    return h;
}

static bool hash_eq(dc_hash128 a, dc_hash128 b) { return a.lo == b.lo && a.hi == b.hi; }

TEST(ir_text_hash) {
    const char *base =
        "graph @g(%a: f32[2,3], %b: f32[2,3]) -> (f32[2,1]) {\n"
        "  %0 = param \"w\" : f32[3] init=zeros\n"
        "  %1 = sub %a, %b : f32[2,3]\n"
        "  %2 = mul %1, %0 : f32[2,3]\n"
        "  %3 = sum %2 {axes=[1], keepdims=true} : f32[2,1]\n"
        "  return %3\n"
        "}\n";
    const char *renamed = /* other SSA names, comments, graph name: same structure */
        "graph @other(%a: f32[2,3], %b: f32[2,3]) -> (f32[2,1]) {\n"
        "  %w = param \"w\" : f32[3] init=zeros // weight\n"
        "  %d = sub %a, %b : f32[2,3]\n"
        "  %p = mul %d, %w : f32[2,3]\n"
        "  %s = sum %p {keepdims=true, axes=[1]} : f32[2,1]\n"
        "  return %s\n"
        "}\n";
    const char *attr = /* keepdims=false */
        "graph @g(%a: f32[2,3], %b: f32[2,3]) -> (f32[2]) {\n"
        "  %0 = param \"w\" : f32[3] init=zeros\n"
        "  %1 = sub %a, %b : f32[2,3]\n"
        "  %2 = mul %1, %0 : f32[2,3]\n"
        "  %3 = sum %2 {axes=[1], keepdims=false} : f32[2]\n"
        "  return %3\n"
        "}\n";
    const char *order = /* sub %b, %a */
        "graph @g(%a: f32[2,3], %b: f32[2,3]) -> (f32[2,1]) {\n"
        "  %0 = param \"w\" : f32[3] init=zeros\n"
        "  %1 = sub %b, %a : f32[2,3]\n"
        "  %2 = mul %1, %0 : f32[2,3]\n"
        "  %3 = sum %2 {axes=[1], keepdims=true} : f32[2,1]\n"
        "  return %3\n"
        "}\n";
    const char *pname = /* param "v" */
        "graph @g(%a: f32[2,3], %b: f32[2,3]) -> (f32[2,1]) {\n"
        "  %0 = param \"v\" : f32[3] init=zeros\n"
        "  %1 = sub %a, %b : f32[2,3]\n"
        "  %2 = mul %1, %0 : f32[2,3]\n"
        "  %3 = sum %2 {axes=[1], keepdims=true} : f32[2,1]\n"
        "  return %3\n"
        "}\n";
    const char *dim = /* inputs [1,3] */
        "graph @g(%a: f32[1,3], %b: f32[1,3]) -> (f32[1,1]) {\n"
        "  %0 = param \"w\" : f32[3] init=zeros\n"
        "  %1 = sub %a, %b : f32[1,3]\n"
        "  %2 = mul %1, %0 : f32[1,3]\n"
        "  %3 = sum %2 {axes=[1], keepdims=true} : f32[1,1]\n"
        "  return %3\n"
        "}\n";
    dc_hash128 h = out_hash(base);
    CHECK(h.lo || h.hi);
    CHECK(hash_eq(h, out_hash(base)));
    CHECK(hash_eq(h, out_hash(renamed)));
    CHECK(!hash_eq(h, out_hash(attr)));
    CHECK(!hash_eq(h, out_hash(order)));
    CHECK(!hash_eq(h, out_hash(pname)));
    CHECK(!hash_eq(h, out_hash(dim)));

    /* within one graph: distinct nodes hash apart, identical computations together */
    dc_graph *g = parse_str(
        "graph @g(%a: f32[4], %b: f32[4]) -> (f32[4]) {\n"
        "  %0 = exp %a : f32[4]\n"
        "  %1 = exp %a : f32[4]\n"
        "  %2 = exp %b : f32[4]\n"
        "  %3 = uniform {stream=0, a=0, b=1} : f32[4]\n"
        "  %4 = uniform {stream=1, a=0, b=1} : f32[4]\n"
        "  %5 = add %0, %1 : f32[4]\n"
        "  return %5\n"
        "}\n");
    if (!g) return;
    dc_graph_hash(g);
    CHECK(!hash_eq(g->nodes[0].hash, g->nodes[1].hash)); /* inputs a and b: names differ */
    CHECK(hash_eq(g->nodes[2].hash, g->nodes[3].hash));
    CHECK(!hash_eq(g->nodes[2].hash, g->nodes[4].hash));
    CHECK(!hash_eq(g->nodes[5].hash, g->nodes[6].hash));
    dc_graph_free(g);
}

/* ---- DOT ---------------------------------------------------------------------------- */

static int count_lines_with(const char *text, const char *needle) {
    int k = 0;
    for (const char *l = text; *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line - 1 ? n : sizeof line - 1), l);
        k += strstr(line, needle) != NULL;
        l += n + (e != NULL);
    }
    return k;
}

TEST(ir_text_dot) {
    for (int i = 0; i < N_GOLDENS; i++) {
        char err[DC_ERR_LEN];
        dc_graph *g = dc_parse_file(goldens[i], err, sizeof err);
        CHECK_MSG(g != NULL, "%s", err);
        if (!g) continue;
        char *dot = dc_print_dot(g);
        int uses = 0;
        for (int k = 0; k < g->n_nodes; k++) uses += g->nodes[k].n_in;
        CHECK(strncmp(dot, "digraph \"", 9) == 0);
        CHECK(strcmp(dot + strlen(dot) - 2, "}\n") == 0);
        CHECK_EQ_INT(count_lines_with(dot, " [label=\""), g->n_nodes);
        CHECK_EQ_INT(count_lines_with(dot, " -> "), uses + g->n_updates); /* one per update too */
        CHECK_EQ_INT(count_lines_with(dot, "fillcolor=lightblue"), dc_graph_n_inputs(g));
        char want[64];
        snprintf(want, sizeof want, "  n%d -> n%d;\n", g->nodes[g->n_nodes - 1].in[0], g->n_nodes - 1);
        CHECK_MSG(strstr(dot, want) != NULL, "%s: no edge '%s'", goldens[i], want);
        free(dot);
        dc_graph_free(g);
    }
    dc_graph *g = parse_str("graph @g(%x: f32[2]) -> (f32[2]) {\n"
                            "  %0 = param \"p.w\" : f32[2] init=ones\n"
                            "  %1 = add %x, %0 : f32[2]\n"
                            "  return %1\n"
                            "}\n");
    if (!g) return;
    free(g->name);
    g->name = strdup("quote\"back\\slash");
    char *dot = dc_print_dot(g);
    const char *head = "digraph \"quote\\\"back\\\\slash\" {\n";
    CHECK(strncmp(dot, head, strlen(head)) == 0);
    CHECK(strstr(dot, "  n1 [label=\"%0 = param \\\"p.w\\\"\\nf32[2]\"") != NULL);
    CHECK(strstr(dot, "  n2 [label=\"%1 = add\\nf32[2]\", peripheries=2") != NULL);
    CHECK(strstr(dot, "  n0 -> n2;\n  n1 -> n2;\n") != NULL);
    free(dot);
    dc_graph_free(g);
}
