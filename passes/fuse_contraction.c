/* fuse_contraction.c — contraction groups: a conv2d, matmul or linear and the epilogue that
 * follows it become one fused_conv2d / fused_matmul node.
 * Rewrites: conv2d -> add bias -> activation -> add residual, and matmul / linear (a linear
 *   is a matmul whose bias is already taken) -> add bias -> activation -> add residual, any
 *   of the three steps absent, into one node computing act(y + bias) + residual, placed where
 *   the last node of the chain was. The chain grows from the contraction one consumer at a
 *   time, in this order, as far as it is legal:
 *   - bias: an add of the value and an f32 operand of shape [O] or [1,...,1,O] (no longer than
 *     the value's rank), O the value's last dim, so the add does not broadcast the value; a
 *     [1,...,1,O] operand is reshaped to [O];
 *   - activation: relu, gelu or silu of the value;
 *   - residual: an add of the value and an operand of exactly the value's type (no broadcast).
 *   A chain of the contraction alone is left as it is, except that a linear always becomes
 *   a fused_matmul with bias. A linear whose x has rank 1 is left as it is (matmul needs a
 *   matrix).
 * Fan-out rule: a value of the chain that has any other use (another node's input, a graph
 *   output, a state update) ends the chain, with one exception: the value an activation
 *   reads (the pre-activation, which the backward pass reads for the activation's
 *   derivative) may have other readers when the activation is its first reader and every
 *   other reader comes after the chain's last node. The chain then goes on, and the fused
 *   computation has two results: the node of result 0 (the chain's last value) and, right
 *   after it, the node of result 1 (the pre-activation y + bias, attr result=1), which the
 *   other readers now read; one step computes both (codegen/lower.c). Any other value read
 *   elsewhere is never recomputed and never dropped: fusion stops at it.
 * Guarantees: every value the graph still reads is computed exactly as before (the ref kernel
 *   runs the same kernels in the same order, so results are bitwise equal); a bias or
 *   residual operand never depends on the fused node (it feeds a chain node, and chain values
 *   other than the last have one use, the next chain node, and the pre-activation's other
 *   readers come after the last, so a path from the chain to the operand would be a second
 *   use before it); chains do not overlap (contractions are claimed in
 *   schedule order and a node joins one chain at most); outputs and updates follow their
 *   values; the node order of everything else is kept; the memory plan is dropped when
 *   anything fuses. Idempotent: fused nodes start no chain, and a contraction left alone is
 *   left alone for a reason a second run sees again. Runs after autodiff (fused ops have no
 *   gradient). */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "passes/rewrite.h"

/* The epilogue steps, in the order a chain may take them. */
enum { STEP_NONE, STEP_BIAS, STEP_ACT, STEP_RESIDUAL };

/* A chain: its contraction, its last node, the epilogue operands (old ids, -1 if absent),
 * and the value before the activation when the chain keeps it as result 1 (else -1). */
typedef struct {
    int root, last;
    int bias, residual;
    dc_activation act;
    int pre;
} chain;

/* The operand of binary node c other than v, or -1 if both are v. */
static int other_operand(const dc_node *c, int v) {
    if (c->in[0] == v) return c->in[1] == v ? -1 : c->in[1];
    return c->in[0];
}

/* A bias of value type t: f32 [1,...,1,O], rank 1..rank(t), O = t's last dim. */
static bool is_bias(const dc_type *b, const dc_type *t) {
    int r = b->shape.rank;
    if (b->dtype != DC_F32 || r < 1 || r > t->shape.rank) return false;
    for (int d = 0; d + 1 < r; d++)
        if (b->shape.dim[d] != 1) return false;
    return b->shape.dim[r - 1] == t->shape.dim[t->shape.rank - 1];
}

static dc_activation activation_of(dc_op op) {
    switch (op) {
    case DC_OP_RELU: return DC_ACTIVATION_RELU;
    case DC_OP_GELU: return DC_ACTIVATION_GELU;
    case DC_OP_SILU: return DC_ACTIVATION_SILU;
    default: return DC_ACTIVATION_NONE;
    }
}

/* A contraction that can start a chain, and the step it has already taken. */
static bool is_root(const dc_graph *g, const dc_node *n, int *step) {
    *step = n->op == DC_OP_LINEAR ? STEP_BIAS : STEP_NONE;
    if (n->op == DC_OP_LINEAR) return g->nodes[n->in[0]].type.shape.rank >= 2;
    return n->op == DC_OP_CONV2D || n->op == DC_OP_MATMUL;
}

/* The first two nodes that read value v, in schedule order (-1 where there are fewer). */
static void first_readers(const dc_graph *g, int v, int *first, int *second) {
    *first = *second = -1;
    for (int i = v + 1; i < g->n_nodes && *second < 0; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] == v) {
                if (*first < 0) *first = i;
                else if (*first != i) *second = i;
            }
}

/* The next node of the chain after value v: its one consumer, or, at the activation step
 * of a value with other uses, its first reader when that is an activation of it (then v is
 * kept: *kept, and *limit is the next reader, which the chain must end before); -1 if none. */
static int next_node(const dc_graph *g, const dc_uses *u, int v, int step, bool *kept, int *limit) {
    *kept = false;
    if (u->uses[v] == 1) return u->consumer[v];
    int first, second;
    first_readers(g, v, &first, &second);
    if (step >= STEP_ACT || first < 0 || activation_of(g->nodes[first].op) == DC_ACTIVATION_NONE) return -1;
    *kept = true;
    *limit = second >= 0 ? second : g->n_nodes;
    return first;
}

/* Grows the chain of root as far as it is legal, claiming its nodes. */
static chain grow(const dc_graph *g, const dc_uses *u, bool *claimed, int root, int step) {
    chain c = { root, root, g->nodes[root].op == DC_OP_LINEAR ? g->nodes[root].in[2] : -1, -1,
                DC_ACTIVATION_NONE, -1 };
    int limit = g->n_nodes;
    while (step < STEP_RESIDUAL) {
        bool kept;
        int lim = limit, next = next_node(g, u, c.last, step, &kept, &lim);
        if (next < 0 || next >= limit || claimed[next]) break;
        const dc_node *n = &g->nodes[next];
        const dc_type *t = &g->nodes[c.last].type;
        int other = n->op == DC_OP_ADD ? other_operand(n, c.last) : -1;
        if (kept) {
            c.pre = c.last; /* an activation whose input has other uses, kept as result 1 */
            limit = lim;
        }
        if (other >= 0 && step < STEP_BIAS && is_bias(&g->nodes[other].type, t)) {
            c.bias = other;
            step = STEP_BIAS;
        } else if (step < STEP_ACT && activation_of(n->op) != DC_ACTIVATION_NONE) {
            c.act = activation_of(n->op);
            step = STEP_ACT;
        } else if (other >= 0 && dc_type_eq(&g->nodes[other].type, t)) {
            c.residual = other;
            step = STEP_RESIDUAL;
        } else {
            break;
        }
        c.last = next;
        claimed[next] = true;
    }
    return c;
}

/* Emits the fused node of chain c at its last node's place, and its result 1 after it when
 * the chain keeps the pre-activation (mapped from the old value); returns result 0's new id. */
static int emit_fused(dc_rewriter *rw, const chain *c) {
    const dc_node *r = &rw->old[c->root];
    int in[4] = { rw->map[r->in[0]], rw->map[r->in[1]] }, n = 2;
    if (c->bias >= 0) {
        in[n] = rw->map[c->bias];
        const dc_type *bt = &rw->g->nodes[in[n]].type;
        if (bt->shape.rank != 1) {
            dc_type flat = { .dtype = DC_F32, .shape = { .rank = 1, .dim = { bt->shape.dim[bt->shape.rank - 1] } } };
            in[n] = dc_rw_emit(rw, c->root, DC_OP_RESHAPE, 1, &in[n], NULL, &flat);
        }
        n++;
    }
    if (c->residual >= 0) in[n++] = rw->map[c->residual];
    dc_attr a;
    memset(&a, 0, sizeof a);
    dc_op op = r->op == DC_OP_CONV2D ? DC_OP_FUSED_CONV2D : DC_OP_FUSED_MATMUL;
    int64_t *result;
    if (r->op == DC_OP_CONV2D) {
        a.fused_conv.stride = r->attr.conv.stride;
        a.fused_conv.pad = r->attr.conv.pad;
        a.fused_conv.groups = r->attr.conv.groups;
        a.fused_conv.act = c->act;
        a.fused_conv.bias = c->bias >= 0;
        a.fused_conv.residual = c->residual >= 0;
        result = &a.fused_conv.result;
    } else {
        a.fused_matmul.trans_a = r->op == DC_OP_MATMUL && r->attr.matmul.trans_a;
        a.fused_matmul.trans_b = r->op == DC_OP_MATMUL && r->attr.matmul.trans_b;
        a.fused_matmul.act = c->act;
        a.fused_matmul.bias = c->bias >= 0;
        a.fused_matmul.residual = c->residual >= 0;
        result = &a.fused_matmul.result;
    }
    int out = dc_rw_emit(rw, c->root, op, n, in, &a, NULL);
    if (c->pre >= 0) {
        *result = 1;
        rw->map[c->pre] = dc_rw_emit(rw, c->root, op, n, in, &a, NULL);
    }
    return out;
}

/* The chains of g worth fusing; chain_at[i] >= 0 marks old node i as the last node of chain
 * chain_at[i], member[i] every node a chain replaces. Returns their count. */
static int find_chains(const dc_graph *g, chain *chains, int *chain_at, bool *member) {
    dc_uses u = dc_uses_of(g, NULL);
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        int step;
        if (!is_root(g, &g->nodes[i], &step)) continue;
        chain c = grow(g, &u, member, i, step);
        if (c.last == i && g->nodes[i].op != DC_OP_LINEAR) continue;
        member[i] = true;
        chain_at[c.last] = n;
        chains[n++] = c;
    }
    dc_uses_free(&u);
    return n;
}

bool dc_pass_fuse_contraction(dc_graph *g, const dc_pass_opts *o, char *err, size_t len) {
    (void)o, (void)err, (void)len;
    size_t nn = (size_t)g->n_nodes + 1;
    chain *chains = malloc(nn * sizeof *chains);
    int *chain_at = malloc(nn * sizeof *chain_at);
    bool *member = calloc(nn, sizeof *member);
    if (!chains || !chain_at || !member) abort(); /* out of memory */
    for (int i = 0; i < g->n_nodes; i++) chain_at[i] = -1;
    if (find_chains(g, chains, chain_at, member) > 0) {
        dc_rewriter rw;
        dc_rw_begin(&rw, g);
        for (int i = 0; i < rw.n_old; i++) {
            if (chain_at[i] >= 0) rw.map[i] = emit_fused(&rw, &chains[chain_at[i]]);
            else if (!member[i]) dc_rw_keep(&rw, i);
        }
        dc_rw_end(&rw);
    }
    free(chains);
    free(chain_at);
    free(member);
    return true;
}
