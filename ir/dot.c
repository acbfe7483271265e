/* dot.c — Graphviz DOT of a graph: one box per node labelled with its SSA name, op and
 * type (inputs, params and outputs styled apart), one edge per input use, and one dashed
 * `assign` edge from each state update's value back to its param. */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

/* Appends str inside a DOT double-quoted string: quotes and backslashes escaped. */
static void sb_escaped(dc_strbuf *s, const char *str) {
    for (; *str; str++) {
        if (*str == '"' || *str == '\\') dc_sb_printf(s, "\\%c", *str);
        else if (*str == '\n') dc_sb_printf(s, "\\n");
        else dc_sb_printf(s, "%c", *str);
    }
}

static bool is_output(const dc_graph *g, int id) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == id) return true;
    return false;
}

static void dot_node(dc_strbuf *s, const dc_graph *g, int id, int k) {
    const dc_node *n = &g->nodes[id];
    char ty[192];
    dc_sb_printf(s, "  n%d [label=\"", id);
    if (n->op == DC_OP_INPUT) {
        dc_sb_printf(s, "%%");
        sb_escaped(s, n->name);
    } else {
        dc_sb_printf(s, "%%%d", k);
    }
    dc_sb_printf(s, " = %s", dc_op_name(n->op));
    if (n->op == DC_OP_PARAM) {
        dc_sb_printf(s, " \\\"");
        sb_escaped(s, n->name);
        dc_sb_printf(s, "\\\"");
    }
    dc_sb_printf(s, "\\n%s\"", dc_type_str(&n->type, ty, sizeof ty));
    if (n->op == DC_OP_INPUT) dc_sb_printf(s, ", style=filled, fillcolor=lightblue");
    else if (n->op == DC_OP_PARAM) dc_sb_printf(s, ", style=filled, fillcolor=lightyellow");
    if (is_output(g, id)) dc_sb_printf(s, ", peripheries=2, color=red");
    dc_sb_printf(s, "];\n");
}

char *dc_print_dot(const dc_graph *g) {
    dc_strbuf s = { 0 };
    dc_sb_printf(&s, "digraph \"");
    sb_escaped(&s, g->name);
    dc_sb_printf(&s, "\" {\n  node [shape=box, fontname=\"monospace\"];\n");
    for (int i = 0, k = 0; i < g->n_nodes; i++) {
        dot_node(&s, g, i, k);
        k += g->nodes[i].op != DC_OP_INPUT;
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) dc_sb_printf(&s, "  n%d -> n%d;\n", g->nodes[i].in[j], i);
    for (int j = 0; j < g->n_updates; j++)
        dc_sb_printf(&s, "  n%d -> n%d [style=dashed, color=blue, label=\"assign\", constraint=false];\n",
                  g->updates[j].value, g->updates[j].param);
    dc_sb_printf(&s, "}\n");
    return s.buf;
}
