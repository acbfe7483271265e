/* print.c — the canonical text form of a graph: header, one node per line with inputs,
 * attributes (walked from the op's schema in attrs.c) and type, param init specs, the loop
 * group ` group=K` last on the line of a node in group K >= 1 (when g->group is set), one
 * `assign %PARAM, %VALUE` line per state update (in g->updates order), return.
 * Deterministic, so print(parse(print(g))) == print(g). */
#include "ir/ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Shortest %.{6..9}g spelling that reads back (strtof) as the same float. */
static void print_float(dc_strbuf *s, float v) {
    if (isnan(v)) {
        dc_sb_printf(s, "nan");
        return;
    }
    char tmp[64];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, (double)v);
        if (strtof(tmp, NULL) == v) break;
    }
    dc_sb_printf(s, "%s", tmp);
}

static void print_ints(dc_strbuf *s, const dc_ints *v) {
    dc_sb_printf(s, "[");
    for (int i = 0; i < v->n; i++) dc_sb_printf(s, i ? ",%lld" : "%lld", (long long)v->v[i]);
    dc_sb_printf(s, "]");
}

/* an enum field by name; a value outside the table (a graph the verifier rejects) as a number */
static void print_enum(dc_strbuf *s, const dc_attr_field *f, int v) {
    if (v >= 0 && v < f->n_names) dc_sb_printf(s, "%s", f->names[v]);
    else dc_sb_printf(s, "%d", v);
}

static void print_type(dc_strbuf *s, const dc_type *t) {
    char buf[192];
    dc_sb_printf(s, "%s", dc_type_str(t, buf, sizeof buf));
}

void dc_sb_attrs(dc_strbuf *s, const dc_node *n) {
    const dc_attr_schema *sc = dc_op_get(n->op)->attr;
    if (sc->n_fields == 0) return;
    dc_sb_printf(s, " {");
    for (int i = 0; i < sc->n_fields; i++) {
        const dc_attr_field *f = &sc->fields[i];
        const char *p = (const char *)&n->attr + f->offset;
        dc_sb_printf(s, "%s%s=", i ? ", " : "", f->name);
        switch (f->type) {
        case DC_FT_INT: dc_sb_printf(s, "%lld", (long long)*(const int64_t *)p); break;
        case DC_FT_FLOAT: print_float(s, *(const float *)p); break;
        case DC_FT_BOOL: dc_sb_printf(s, "%s", *(const bool *)p ? "true" : "false"); break;
        case DC_FT_INTS: print_ints(s, (const dc_ints *)p); break;
        case DC_FT_DTYPE: dc_sb_printf(s, "%s", dc_dtype_name(*(const dc_dtype *)p)); break;
        case DC_FT_ENUM: print_enum(s, f, *(const int *)p); break;
        }
    }
    dc_sb_printf(s, "}");
}

static void print_init(dc_strbuf *s, const dc_init_attr *a) {
    dc_sb_printf(s, " init=%s", dc_init_name(a->kind));
    if (a->kind == DC_INIT_NORMAL) {
        dc_sb_printf(s, "(");
        print_float(s, a->a);
        dc_sb_printf(s, ")");
    } else if (a->kind == DC_INIT_UNIFORM) {
        dc_sb_printf(s, "(");
        print_float(s, a->a);
        dc_sb_printf(s, ", ");
        print_float(s, a->b);
        dc_sb_printf(s, ")");
    }
}

static void print_header(dc_strbuf *s, const dc_graph *g) {
    dc_sb_printf(s, "graph @%s(", g->name);
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *n = &g->nodes[i];
        if (n->op != DC_OP_INPUT) continue;
        dc_sb_printf(s, "%s%%%s: ", k++ ? ", " : "", n->name);
        print_type(s, &n->type);
    }
    dc_sb_printf(s, ") -> (");
    for (int i = 0; i < g->n_outputs; i++) {
        if (i) dc_sb_printf(s, ", ");
        if (g->output_names[i]) dc_sb_printf(s, "%s: ", g->output_names[i]);
        print_type(s, &g->nodes[g->outputs[i]].type);
    }
    dc_sb_printf(s, ") {\n");
}

/* The SSA name of node id, as dc_node_label spells it; num[id] counts the non-input nodes
 * before id, precomputed so that printing stays linear. */
static void print_ref(dc_strbuf *s, const dc_graph *g, const int *num, int id) {
    if (g->nodes[id].op == DC_OP_INPUT) dc_sb_printf(s, "%%%s", g->nodes[id].name);
    else dc_sb_printf(s, "%%%d", num[id]);
}

/* ` group=K` when node id is in loop group K (any nonzero id is printed, so a graph the
 * verifier rejects still shows what it holds) */
static void print_group(dc_strbuf *s, const dc_graph *g, int id) {
    if (g->group && g->group[id] != 0) dc_sb_printf(s, " group=%d", g->group[id]);
}

static void print_node(dc_strbuf *s, const dc_graph *g, const int *num, int id) {
    const dc_node *n = &g->nodes[id];
    dc_sb_printf(s, "  ");
    print_ref(s, g, num, id);
    dc_sb_printf(s, " = %s", dc_op_name(n->op));
    if (n->op == DC_OP_PARAM) {
        dc_sb_printf(s, " \"%s\" : ", n->name);
        print_type(s, &n->type);
        print_init(s, &n->attr.init);
        print_group(s, g, id);
        dc_sb_printf(s, "\n");
        return;
    }
    for (int i = 0; i < n->n_in; i++) {
        dc_sb_printf(s, i ? ", " : " ");
        print_ref(s, g, num, n->in[i]);
    }
    dc_sb_attrs(s, n);
    dc_sb_printf(s, " : ");
    print_type(s, &n->type);
    print_group(s, g, id);
    dc_sb_printf(s, "\n");
}

char *dc_print(const dc_graph *g) {
    dc_strbuf s = { 0 };
    int *num = malloc(((size_t)g->n_nodes + 1) * sizeof *num);
    if (!num) abort(); /* out of memory */
    for (int i = 0, k = 0; i < g->n_nodes; i++) {
        num[i] = k;
        k += g->nodes[i].op != DC_OP_INPUT;
    }
    print_header(&s, g);
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op != DC_OP_INPUT) print_node(&s, g, num, i);
    for (int j = 0; j < g->n_updates; j++) {
        dc_sb_printf(&s, "  assign ");
        print_ref(&s, g, num, g->updates[j].param);
        dc_sb_printf(&s, ", ");
        print_ref(&s, g, num, g->updates[j].value);
        dc_sb_printf(&s, "\n");
    }
    dc_sb_printf(&s, "  return");
    for (int i = 0; i < g->n_outputs; i++) {
        dc_sb_printf(&s, i ? ", " : " ");
        print_ref(&s, g, num, g->outputs[i]);
    }
    dc_sb_printf(&s, "\n}\n");
    free(num);
    return s.buf;
}
