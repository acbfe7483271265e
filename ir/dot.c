/* dot.c — Graphviz DOT of a graph: one box per node labelled with its SSA name, op and
 * type (inputs, params and outputs styled apart), one edge per input use, and one dashed
 * `assign` edge from each state update's value back to its param. */
#include "ir/ir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *buf; size_t len, cap; } strbuf;

static void sb_printf(strbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(strbuf *s, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->buf ? s->buf + s->len : NULL, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n < 0) abort();
        if (s->len + (size_t)n < s->cap) {
            s->len += (size_t)n;
            return;
        }
        s->cap = 2 * (s->cap + (size_t)n) + 256;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf) abort(); /* out of memory */
    }
}

/* Appends str inside a DOT double-quoted string: quotes and backslashes escaped. */
static void sb_escaped(strbuf *s, const char *str) {
    for (; *str; str++) {
        if (*str == '"' || *str == '\\') sb_printf(s, "\\%c", *str);
        else if (*str == '\n') sb_printf(s, "\\n");
        else sb_printf(s, "%c", *str);
    }
}

static bool is_output(const dc_graph *g, int id) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == id) return true;
    return false;
}

static void dot_node(strbuf *s, const dc_graph *g, int id, int k) {
    const dc_node *n = &g->nodes[id];
    char ty[192];
    sb_printf(s, "  n%d [label=\"", id);
    if (n->op == DC_OP_INPUT) {
        sb_printf(s, "%%");
        sb_escaped(s, n->name);
    } else {
        sb_printf(s, "%%%d", k);
    }
    sb_printf(s, " = %s", dc_op_name(n->op));
    if (n->op == DC_OP_PARAM) {
        sb_printf(s, " \\\"");
        sb_escaped(s, n->name);
        sb_printf(s, "\\\"");
    }
    sb_printf(s, "\\n%s\"", dc_type_str(&n->type, ty, sizeof ty));
    if (n->op == DC_OP_INPUT) sb_printf(s, ", style=filled, fillcolor=lightblue");
    else if (n->op == DC_OP_PARAM) sb_printf(s, ", style=filled, fillcolor=lightyellow");
    if (is_output(g, id)) sb_printf(s, ", peripheries=2, color=red");
    sb_printf(s, "];\n");
}

char *dc_print_dot(const dc_graph *g) {
    strbuf s = { 0 };
    sb_printf(&s, "digraph \"");
    sb_escaped(&s, g->name);
    sb_printf(&s, "\" {\n  node [shape=box, fontname=\"monospace\"];\n");
    for (int i = 0, k = 0; i < g->n_nodes; i++) {
        dot_node(&s, g, i, k);
        k += g->nodes[i].op != DC_OP_INPUT;
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) sb_printf(&s, "  n%d -> n%d;\n", g->nodes[i].in[j], i);
    for (int j = 0; j < g->n_updates; j++)
        sb_printf(&s, "  n%d -> n%d [style=dashed, color=blue, label=\"assign\", constraint=false];\n",
                  g->updates[j].value, g->updates[j].param);
    sb_printf(&s, "}\n");
    return s.buf;
}
