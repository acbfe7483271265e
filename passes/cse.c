/* cse.c — common-subexpression elimination.
 * Rewrites: a node whose XXH3 structural hash (dc_graph_hash) and full structure (op,
 * attribute bytes, type, inputs after merging, names) equal those of an earlier node into
 * that node; a hash collision between different nodes merges nothing.
 * Keeps: INPUT and PARAM nodes distinct (never merged); random ops distinct unless their
 * attributes (stream included) are equal, in which case they draw the same numbers and
 * merge; the order of the nodes it keeps; outputs, their names, updates.
 * After: no two nodes compute the same value. One forward walk suffices, since the hash is
 * structural (equal computations have equal hashes whatever their ids). Idempotent. */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "passes/rewrite.h"

/* Open addressing over new node ids, keyed by the low word of the structural hash. */
typedef struct {
    int *slot;    /* new node id, or -1 */
    size_t mask;
} table;

static void table_init(table *t, int n) {
    size_t cap = 16;
    while (cap < 2 * (size_t)n) cap *= 2;
    t->slot = malloc(cap * sizeof *t->slot);
    if (!t->slot) abort(); /* out of memory */
    for (size_t i = 0; i < cap; i++) t->slot[i] = -1;
    t->mask = cap - 1;
}

static bool same_node(const dc_node *a, const dc_node *b) {
    if (a->op != b->op || a->n_in != b->n_in || !dc_type_eq(&a->type, &b->type)) return false;
    if (memcmp(&a->attr, &b->attr, sizeof a->attr) != 0) return false;
    if (memcmp(a->in, b->in, (size_t)a->n_in * sizeof a->in[0]) != 0) return false;
    if (!a->name != !b->name) return false;
    return !a->name || strcmp(a->name, b->name) == 0;
}

/* The earlier new node equal to n, or -1; *at receives the free slot where n goes. */
static int table_find(const table *t, const dc_graph *g, const dc_node *n, size_t *at) {
    size_t i = (size_t)n->hash.lo & t->mask;
    for (; t->slot[i] >= 0; i = (i + 1) & t->mask) {
        const dc_node *m = &g->nodes[t->slot[i]];
        if (m->hash.lo == n->hash.lo && m->hash.hi == n->hash.hi && same_node(m, n)) return t->slot[i];
    }
    *at = i;
    return -1;
}

bool dc_pass_cse(dc_graph *g, const dc_pass_opts *o, char *err, size_t len) {
    (void)o, (void)err, (void)len;
    dc_graph_hash(g);
    table t;
    table_init(&t, g->n_nodes);
    dc_rewriter rw;
    dc_rw_begin(&rw, g);
    for (int i = 0; i < rw.n_old; i++) {
        dc_op op = rw.old[i].op;
        if (op == DC_OP_INPUT || op == DC_OP_PARAM) {
            dc_rw_keep(&rw, i);
            continue;
        }
        dc_node n = dc_rw_mapped(&rw, i);
        size_t at = 0;
        int same = table_find(&t, g, &n, &at);
        if (same >= 0) rw.map[i] = same;
        else t.slot[at] = dc_rw_keep(&rw, i);
    }
    dc_rw_end(&rw);
    free(t.slot);
    return true;
}
