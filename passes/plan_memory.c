/* plan_memory.c — static memory planning: one arena for every value of a graph.
 * Rewrites: no node; sets g->plan_offset[i] (the byte offset of node i's value, 64-byte
 *   aligned) and g->plan_bytes (the arena size, i.e. the peak). Keeps the loop groups.
 * Schedule: the node order, unchanged (it is already topological; the executor runs it).
 * Liveness: a value is live from its node to its last use; INPUT and PARAM values live for the
 *   whole program in a region of their own at the start of the arena and are never reused;
 *   outputs and the values of state updates live to the end.
 * Loop groups (fuse-loops) are planned as one step each, so the plan holds whether a group
 *   runs as one kernel or node by node: every member's slot is taken when the group starts,
 *   and a value the group reads (a member's or one from outside) is freed when the group
 *   ends, not earlier; no member is placed in place of anything. With
 *   dc_pass_opts.groups_as_kernels, values internal to their group (dc_loop_internal: read
 *   only by members of their group, neither outputs nor update values) get no slot at all:
 *   offset -1, which the executor must never touch (their group runs as one kernel that keeps
 *   them in registers). Without it they get slots and the ref executor can run the graph.
 *   The consecutive results of one computation (dc_results_last: one step writes them all)
 *   are planned as a group too.
 * In-place: an ungrouped ELEMENTWISE node whose inputs all have its exact type (so no
 *   broadcasting) writes into the slot of the first input whose value dies at that node
 *   (never an INPUT or PARAM slot); the kernels read each element before writing it.
 *   A state update's value takes its param's slot when the param's old value is dead once
 *   the value is written (update_slot: nothing after it reads the param, and its loop group
 *   is one elementwise pass); the executor then has nothing to copy after the run.
 * Placement: every other value takes the best-fitting free block (smallest that fits, lowest
 *   offset on ties) of a free list that coalesces neighbours, or grows the arena's end.
 * Guarantees: no two values that are live at the same node overlap; deterministic; the same
 *   results as the unplanned bump layout, bit for bit. Any pass that changes nodes drops it. */
#include "passes/passes.h"

#include <stdlib.h>
#include <string.h>

static int64_t slot_bytes(const dc_type *t) {
    int64_t bytes = dc_numel(&t->shape) * (int64_t)dc_dtype_size(t->dtype);
    return (bytes + 63) / 64 * 64;
}

static bool is_persistent(const dc_node *n) { return n->op == DC_OP_INPUT || n->op == DC_OP_PARAM; }

/* The last node of the group of node i: its loop group's, or its computation's last result
 * (dc_results_last), or i itself. */
static int group_end(const dc_graph *g, int i) {
    if (dc_op_multi_result(g->nodes[i].op)) return dc_results_last(g, i);
    int k = g->group ? g->group[i] : 0;
    while (k > 0 && i + 1 < g->n_nodes && g->group[i + 1] == k) i++;
    return i;
}

/* last[i]: the index of the last node that reads value i (the last node of its group when
 * that node is grouped), i's own (group's last) node when none does, and n_nodes for values
 * needed after the run (INPUT, PARAM, outputs, update values). */
static void last_uses(const dc_graph *g, int *last) {
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *n = &g->nodes[i];
        last[i] = is_persistent(n) ? g->n_nodes : i;
        for (int k = 0; k < n->n_in; k++)
            if (last[n->in[k]] < i) last[n->in[k]] = i;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (last[i] < g->n_nodes) last[i] = group_end(g, last[i]);
    for (int i = 0; i < g->n_outputs; i++) last[g->outputs[i]] = g->n_nodes;
    for (int j = 0; j < g->n_updates; j++) last[g->updates[j].value] = g->n_nodes;
}

/* Whether node n is elementwise and every input has its type (no broadcasting): it reads each
 * element before writing it, so it may write over an input. */
static bool overwrites_alike(const dc_graph *g, const dc_node *n) {
    if (dc_op_get(n->op)->kind != DC_KIND_ELEMENTWISE) return false;
    for (int k = 0; k < n->n_in; k++)
        if (!dc_type_eq(&g->nodes[n->in[k]].type, &n->type)) return false;
    return true;
}

/* The input of node i whose slot i may take over, or -1: overwrites_alike, and that input is
 * a computed value read for the last time by i. */
static int in_place_source(const dc_graph *g, int i, const int *last) {
    const dc_node *n = &g->nodes[i];
    if (!overwrites_alike(g, n)) return -1;
    for (int k = 0; k < n->n_in; k++) {
        int j = n->in[k];
        if (!is_persistent(&g->nodes[j]) && last[j] == i) return j;
    }
    return -1;
}

/* Whether node i reads value j. */
static bool reads(const dc_node *n, int j) {
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] == j) return true;
    return false;
}

/* The param whose slot state-update value v takes over, or -1. v is the value of param P's
 * update, of P's type, computed by an elementwise node; no update reads P itself as its value
 * (updates are simultaneous: it would see the new value); every node reading P comes at or
 * before v, so P's old value is dead once v is written. If v is a loop-group member, every
 * member of its group is elementwise or a fill (one pass over the same elements, each loaded
 * before it is stored at that index) and every member reading P has P's type; an ungrouped v
 * that reads P has every input of its type (the in-place rule). */
/* The param that value v is the (first) state update of, or -1. */
static int updated_param(const dc_graph *g, int v) {
    for (int j = 0; j < g->n_updates; j++)
        if (g->updates[j].value == v) return g->updates[j].param;
    return -1;
}

static int update_slot(const dc_graph *g, int v) {
    int p = updated_param(g, v);
    const dc_node *n = &g->nodes[v];
    if (p < 0 || p == v || is_persistent(n) || dc_op_get(n->op)->kind != DC_KIND_ELEMENTWISE ||
        !dc_type_eq(&g->nodes[p].type, &n->type))
        return -1;
    for (int j = 0; j < g->n_updates; j++)
        if (g->updates[j].value == p) return -1;
    for (int i = v + 1; i < g->n_nodes; i++)
        if (reads(&g->nodes[i], p)) return -1;
    int k = g->group ? g->group[v] : 0, first = v, end = v;
    if (k > 0) {
        while (first > 0 && g->group[first - 1] == k) first--;
        end = group_end(g, v);
    }
    for (int i = first; i <= end; i++) {
        const dc_node *m = &g->nodes[i];
        dc_op_kind kind = dc_op_get(m->op)->kind;
        if (k > 0 && kind != DC_KIND_ELEMENTWISE && m->op != DC_OP_FILL) return -1;
        if (reads(m, p) && (k > 0 ? !dc_type_eq(&m->type, &n->type) : !overwrites_alike(g, m))) return -1;
    }
    return p;
}

/* ---- the free list: blocks sorted by offset, never adjacent (coalesced) ------------------- */

typedef struct { int64_t off, size; } block;

typedef struct {
    block *b;
    int n, cap;
    int64_t top;               /* arena end so far: the peak */
} arena;

static void remove_block(arena *a, int k) {
    memmove(&a->b[k], &a->b[k + 1], (size_t)(a->n - k - 1) * sizeof *a->b);
    a->n--;
}

/* Best fit among the free blocks; else the free block at the arena's end grown; else the end. */
static int64_t arena_alloc(arena *a, int64_t size) {
    int best = -1;
    for (int k = 0; k < a->n; k++)
        if (a->b[k].size >= size && (best < 0 || a->b[k].size < a->b[best].size)) best = k;
    if (best >= 0) {
        int64_t off = a->b[best].off;
        a->b[best].off += size;
        a->b[best].size -= size;
        if (a->b[best].size == 0) remove_block(a, best);
        return off;
    }
    int64_t off = a->top;
    if (a->n > 0 && a->b[a->n - 1].off + a->b[a->n - 1].size == a->top) {
        off = a->b[a->n - 1].off;
        remove_block(a, a->n - 1);
    }
    a->top = off + size;
    return off;
}

static void arena_free(arena *a, int64_t off, int64_t size) {
    int k = 0;
    while (k < a->n && a->b[k].off < off) k++;
    if (k > 0 && a->b[k - 1].off + a->b[k - 1].size == off) {
        a->b[k - 1].size += size;
        if (k < a->n && a->b[k - 1].off + a->b[k - 1].size == a->b[k].off) {
            a->b[k - 1].size += a->b[k].size;
            remove_block(a, k);
        }
        return;
    }
    if (k < a->n && off + size == a->b[k].off) {
        a->b[k].off = off;
        a->b[k].size += size;
        return;
    }
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->b = realloc(a->b, (size_t)a->cap * sizeof *a->b);
        if (!a->b) abort(); /* out of memory */
    }
    memmove(&a->b[k + 1], &a->b[k], (size_t)(a->n - k) * sizeof *a->b);
    a->b[k] = (block){ off, size };
    a->n++;
}

/* ---- the pass --------------------------------------------------------------------------- */

/* Whether node i's input k is the first occurrence of that value among its inputs. */
static bool first_use_in(const dc_node *n, int k) {
    for (int m = 0; m < k; m++)
        if (n->in[m] == n->in[k]) return false;
    return true;
}

/* Places the computed value of ungrouped node i, then frees the inputs (and i) that die at i. */
static void place_node(const dc_graph *g, int i, const int *last, arena *a, int64_t *off) {
    const dc_node *n = &g->nodes[i];
    int src = in_place_source(g, i, last), p = update_slot(g, i);
    off[i] = p >= 0 ? off[p] : src >= 0 ? off[src] : arena_alloc(a, slot_bytes(&n->type));
    if (p >= 0) src = -1;
    for (int k = 0; k < n->n_in; k++) {
        int j = n->in[k];
        if (j != src && last[j] == i && !is_persistent(&g->nodes[j]) && first_use_in(n, k))
            arena_free(a, off[j], slot_bytes(&g->nodes[j].type));
    }
    if (last[i] == i) arena_free(a, off[i], slot_bytes(&n->type));
}

/* Places the members first..end of one group (internal ones only when they get slots),
 * then frees every slot that dies with the group; freed[] marks what is already freed. */
static void place_group(const dc_graph *g, int first, int end, const int *last, const bool *internal,
                        arena *a, int64_t *off, bool *freed) {
    for (int i = first; i <= end; i++) {
        int p = update_slot(g, i);
        off[i] = internal[i] ? -1 : p >= 0 ? off[p] : arena_alloc(a, slot_bytes(&g->nodes[i].type));
    }
    for (int i = first; i <= end; i++) {
        const dc_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            int j = n->in[k];
            if (j >= first || last[j] != end || is_persistent(&g->nodes[j]) || freed[j]) continue;
            freed[j] = true;
            arena_free(a, off[j], slot_bytes(&g->nodes[j].type));
        }
    }
    for (int i = first; i <= end; i++)
        if (last[i] == end && off[i] >= 0) arena_free(a, off[i], slot_bytes(&g->nodes[i].type));
}

bool dc_pass_plan_memory(dc_graph *g, const dc_pass_opts *o, char *err, size_t len) {
    (void)err;
    (void)len;
    size_t cnt = (size_t)(g->n_nodes ? g->n_nodes : 1);
    int *last = malloc(cnt * sizeof *last);
    int64_t *off = malloc(cnt * sizeof *off);
    bool *internal = calloc(cnt, sizeof *internal), *freed = calloc(cnt, sizeof *freed);
    if (!last || !off || !internal || !freed) abort(); /* out of memory */
    last_uses(g, last);
    if (o->groups_as_kernels) dc_loop_internal(g, internal);
    arena a = { 0 };
    for (int i = 0; i < g->n_nodes; i++)
        if (is_persistent(&g->nodes[i])) off[i] = arena_alloc(&a, slot_bytes(&g->nodes[i].type));
    for (int i = 0; i < g->n_nodes; i++) {
        int end = group_end(g, i);
        if ((g->group && g->group[i] > 0) || end > i) place_group(g, i, end, last, internal, &a, off, freed);
        else if (!is_persistent(&g->nodes[i])) place_node(g, i, last, &a, off);
        i = end;
    }
    free(a.b);
    free(last);
    free(internal);
    free(freed);
    free(g->plan_offset);
    g->plan_offset = off;
    g->plan_bytes = a.top;
    return true;
}

/* ---- the plan as text ------------------------------------------------------------------- */

/* The input of node i that i overwrites in place: the one planned at i's offset, or -1.
 * (An input is live while i runs, so sharing its offset means taking over its slot.) */
static int planned_in_place_of(const dc_graph *g, int i) {
    const dc_node *n = &g->nodes[i];
    if (g->plan_offset[i] < 0) return -1;
    for (int k = 0; k < n->n_in; k++)
        if (g->plan_offset[n->in[k]] == g->plan_offset[i]) return n->in[k];
    return -1;
}

char *dc_print_plan(const dc_graph *g) {
    if (!g->plan_offset) return NULL;
    dc_strbuf s = { 0 };
    int64_t unplanned = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        char label[64], src[64];
        int64_t bytes = slot_bytes(&g->nodes[i].type);
        unplanned += bytes;
        dc_sb_printf(&s, "// plan: %s offset %lld bytes %lld", dc_node_label(g, i, label, sizeof label),
                  (long long)g->plan_offset[i], (long long)bytes);
        int j = planned_in_place_of(g, i), p = updated_param(g, i);
        if (p >= 0 && g->plan_offset[i] == g->plan_offset[p]) dc_sb_printf(&s, " over param %s (its update)", dc_node_label(g, p, src, sizeof src));
        else if (j >= 0) dc_sb_printf(&s, " in-place of %s", dc_node_label(g, j, src, sizeof src));
        if (g->plan_offset[i] < 0) dc_sb_printf(&s, " (inside its group, never stored)");
        dc_sb_printf(&s, "\n");
    }
    dc_sb_printf(&s, "// plan: peak %lld bytes (unplanned %lld bytes)\n", (long long)g->plan_bytes,
              (long long)unplanned);
    return s.buf;
}
