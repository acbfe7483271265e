/* fuse_attention.c — attention groups: the plain spelling of scaled dot-product attention
 * becomes one attention node (result 0, the output): every match under fuse-attention-all,
 * and under fuse-attention (the compiler's pipelines) the matches where the measured rule
 * dc_attention_fuses says the flash kernels are faster than the plain spelling's.
 * Rewrites: out = matmul(P, V) (trans_a false; with trans_b, V is given as [..., Dv, Sk]),
 *   P = softmax(S) over S's last axis, S = steps over the root S0 = matmul(Q, K) (trans_a
 *   false; without trans_b, K is given as [..., D, Sk]). Walking from S back to S0, a step is
 *   - a scale: mul by a fill (either side) or div by a nonzero fill, of any shape that does not
 *     grow the value; the factors multiply into the op's scale;
 *   - a bias: add of an f32 operand (either side) that does not grow the value;
 *   - a mask: where(cond, x, c) or where(cond, c, x), c a fill of -inf or <= -1e9, that does
 *     not grow the value x (the side kept). The causal mask becomes causal=true: cond compares
 *     two iotas, one holding S's row i (an iota over the axis of S's Sq, with Sq entries along
 *     it), the other its column j (over Sk's axis, Sk entries), i32, or f32 with Sq, Sk <= 2^24
 *     so every index is exact: le(j, i) or ge(i, j) where x is kept when cond holds, gt(j, i)
 *     or lt(i, j) where x is kept when it fails. Any other cond becomes the additive bias
 *     where(cond, 0, -inf) (where(cond, -inf, 0) when x is kept where cond fails).
 *   Biases and masks must come after every scale (a bias before a scale would need scaling:
 *   such chains are left alone). The op's bias is the sum of the chain's biases and masks,
 *   in order from S0. Q, K, V (as the op reads them: K [..., Sk, D], V [..., Sk, Dv]) have one
 *   rank r >= 2 and equal batch dims. K or V given transposed gets a transpose of its last two
 *   axes, composed with the transpose it comes from (none when the two cancel). For r != 4
 *   the batch dims are split into the op's B (the leading ones) and H (the rest): r = 2 gives
 *   [1,1], r = 3 [N,1], r >= 5 merges all but the last batch dim into B or, when the bias
 *   does not broadcast after that split, the first split it does; Q, K, V, a bias of rank > 2
 *   and the output are reshaped. The attention node and the nodes feeding it take out's place.
 * Left alone: softmax over another axis; a value of the chain (S0, a step, P) with another use
 *   (a live node, an output, an update; dead readers do not count); a scale that is not a
 *   fill; a bias or mask that grows the value; a where whose other operand is not a mask
 *   fill; Q, K, V of different ranks or batch dims (a broadcasting matmul); a bias no split
 *   fits; a scale not finite as an f32; chains of more than 32 values or 8 biases and masks.
 * Guarantees: the graph stays valid; every value the graph still reads is computed as before
 *   up to rounding (the op sums in double and scales once), except in a row where every key
 *   is masked: the plain spelling gives the mean of V (a finite fill) or NaN (-inf), the op 0
 *   (the causal mask keeps key 0 of every row, so only other masks can do this). Mask fills
 *   count as -inf: a masked logit is not read (the op skips it, as the where replaced it),
 *   and a fill of -1e9 under a bias of +1e9 would no longer let the key through. When it
 *   fuses anything the pass ends with dce, so the old spelling's nodes (and any other dead
 *   node) are gone. Groups do not overlap (a chain's values have one use each; outs are
 *   claimed in schedule order). Idempotent: an attention node starts no chain, and a chain
 *   left alone is left alone for a reason a second run sees again. Runs on forward graphs,
 *   before autodiff (the op's VJP gives attention_bwd). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "passes/rewrite.h"

#define MAX_STEPS 32      /* values of one chain (P, the steps, S0) */
#define MAX_TERMS 8       /* biases and masks of one chain */
#define MASK_FILL -1e9f   /* a where's fill at or below this masks */
#define EXACT_F32 (1 << 24)

/* An additive term of the logits: a bias, or a mask's cond (kept where cond holds, or where it
 * fails). */
typedef enum { TERM_BIAS, TERM_KEEP_TRUE, TERM_KEEP_FALSE } term_kind;
typedef struct {
    int id;
    term_kind kind;
} term;

/* One attention group: old ids; k_t, v_t: K, V are given with their last two axes swapped. */
typedef struct {
    int out, q, k, v;
    bool k_t, v_t, causal, scaled;
    double scale;
    int split;               /* batch dims [0, split) form B, [split, r - 2) H */
    int n_terms, n_steps;
    term terms[MAX_TERMS];   /* from S back to S0 */
    int steps[MAX_STEPS];
} group;

typedef struct {
    const dc_graph *g;
    bool *live;              /* dc_live_nodes: dead nodes are no readers and start no group */
    dc_uses u;               /* uses by live nodes */
    bool *claimed;           /* a value of a group found earlier */
    bool every;              /* fuse-attention-all: every match, whatever the rule says */
} finder;

static const dc_type *type_of(const dc_graph *g, int id) { return &g->nodes[id].type; }

static bool same_type(const dc_graph *g, int a, int b) { return dc_type_eq(type_of(g, a), type_of(g, b)); }

static bool is_mask_fill(const dc_graph *g, int id) {
    double v;
    return type_of(g, id)->dtype == DC_F32 && dc_fill_value(g, id, &v) && v <= MASK_FILL;
}

/* Which index of S's [sq, sk] positions iota node id holds: 0 the row (query i), 1 the column
 * (key j), -1 neither (or not exactly). */
static int iota_index(const dc_graph *g, int id, int64_t sq, int64_t sk) {
    const dc_node *n = &g->nodes[id];
    if (n->op != DC_OP_IOTA) return -1;
    if (n->type.dtype == DC_F32 && (sq > EXACT_F32 || sk > EXACT_F32)) return -1;
    int r = n->type.shape.rank;
    int64_t ax = n->attr.axis.axis;
    if (ax == r - 1 && n->type.shape.dim[r - 1] == sk) return 1;
    if (r >= 2 && ax == r - 2 && n->type.shape.dim[r - 2] == sq) return 0;
    return -1;
}

/* Whether cond holds exactly where the causal mask keeps (j <= i) or, keep_true false,
 * exactly where it masks (j > i). */
static bool is_causal(const dc_graph *g, int cond, int64_t sq, int64_t sk, bool keep_true) {
    const dc_node *n = &g->nodes[cond];
    if (n->op != DC_OP_LE && n->op != DC_OP_LT && n->op != DC_OP_GE && n->op != DC_OP_GT) return false;
    int a = iota_index(g, n->in[0], sq, sk), b = iota_index(g, n->in[1], sq, sk);
    if (a < 0 || b < 0 || a == b) return false;
    bool j_first = a == 1; /* cmp(j, i), else cmp(i, j) */
    if (keep_true) return n->op == (j_first ? DC_OP_LE : DC_OP_GE);
    return n->op == (j_first ? DC_OP_GT : DC_OP_LT);
}

static bool walk(const finder *f, int x, group m, group *res);

/* x = a scale step (mul or div by a fill) of the value operand; walks on from it. */
static bool walk_scale(const finder *f, int x, group m, group *res) {
    const dc_node *n = &f->g->nodes[x];
    for (int k = 1; k >= (n->op == DC_OP_MUL ? 0 : 1); k--) {
        double c;
        int s = n->in[1 - k];
        if (!dc_fill_value(f->g, n->in[k], &c) || !same_type(f->g, s, x)) continue;
        if (n->op == DC_OP_DIV && c == 0) return false;
        m.scale = n->op == DC_OP_DIV ? m.scale / c : m.scale * c;
        m.scaled = true;
        return walk(f, s, m, res);
    }
    return false;
}

/* x = a bias (add) or mask (where) step; walks on from the value operand. */
static bool walk_term(const finder *f, int x, group m, group *res) {
    const dc_node *n = &f->g->nodes[x];
    if (m.scaled || m.n_terms == MAX_TERMS) return false;
    const dc_shape *s = &n->type.shape;
    for (int k = 0; k < 2; k++) {
        group t = m;
        int v;
        if (n->op == DC_OP_ADD) {
            v = n->in[k];
            t.terms[t.n_terms++] = (term){ n->in[1 - k], TERM_BIAS };
        } else {
            v = n->in[1 + k];
            if (!is_mask_fill(f->g, n->in[2 - k])) continue;
            if (is_causal(f->g, n->in[0], s->dim[s->rank - 2], s->dim[s->rank - 1], k == 0)) t.causal = true;
            else t.terms[t.n_terms++] = (term){ n->in[0], k == 0 ? TERM_KEEP_TRUE : TERM_KEEP_FALSE };
        }
        if (same_type(f->g, v, x) && walk(f, v, t, res)) return true;
    }
    return false;
}

/* Walks the chain back from value x (read once, by the step after it) to its root matmul. */
static bool walk(const finder *f, int x, group m, group *res) {
    const dc_node *n = &f->g->nodes[x];
    if (f->u.uses[x] != 1 || f->claimed[x] || m.n_steps == MAX_STEPS) return false;
    m.steps[m.n_steps++] = x;
    switch (n->op) {
    case DC_OP_MATMUL:
        if (n->attr.matmul.trans_a) return false;
        m.q = n->in[0];
        m.k = n->in[1];
        m.k_t = !n->attr.matmul.trans_b;
        *res = m;
        return true;
    case DC_OP_MUL: case DC_OP_DIV: return walk_scale(f, x, m, res);
    case DC_OP_ADD: case DC_OP_WHERE: return walk_term(f, x, m, res);
    default: return false;
    }
}

/* The shape of the additive terms together (each broadcasts into S's). */
static dc_shape terms_shape(const dc_graph *g, const group *m) {
    dc_shape s = { .rank = 0 };
    for (int i = 0; i < m->n_terms; i++)
        if (!dc_broadcast_shapes(&s, &type_of(g, m->terms[i].id)->shape, &s)) abort(); /* checked by the steps */
    return s;
}

/* s (rank <= r, broadcasting into a [batch..., X, Y] value of rank r) as [B, H, X, Y]: its
 * dims padded with leading 1s to rank r, batch dims [0, split) merged into B, the rest
 * into H. */
static dc_shape as_bhxy(const dc_shape *s, int r, int split) {
    int64_t d[DC_MAX_RANK];
    for (int i = 0; i < r; i++) d[i] = i < r - s->rank ? 1 : s->dim[i - (r - s->rank)];
    dc_shape o = { .rank = 4, .dim = { 1, 1, d[r - 2], d[r - 1] } };
    for (int i = 0; i < r - 2; i++) o.dim[i < split ? 0 : 1] *= d[i];
    return o;
}

/* Whether bias shape b (into out shape o, rank r) still broadcasts after the split: in each
 * part the bias is 1 everywhere or the whole part. */
static bool split_fits(const dc_shape *b, const dc_shape *o, int split) {
    dc_shape bb = as_bhxy(b, o->rank, split), ob = as_bhxy(o, o->rank, split);
    return (bb.dim[0] == 1 || bb.dim[0] == ob.dim[0]) && (bb.dim[1] == 1 || bb.dim[1] == ob.dim[1]);
}

/* Q, K, V have one rank and equal batch dims, the scale is finite, and the terms fit a split
 * of the batch dims (chosen into m->split). */
static bool operands_fit(const dc_graph *g, group *m) {
    const dc_shape *o = &type_of(g, m->out)->shape;
    int r = o->rank, ids[3] = { m->q, m->k, m->v };
    for (int i = 0; i < 3; i++) {
        const dc_shape *s = &type_of(g, ids[i])->shape;
        if (s->rank != r || memcmp(s->dim, o->dim, sizeof(int64_t) * (size_t)(r - 2)) != 0) return false;
    }
    if (!isfinite((float)m->scale)) return false;
    dc_shape b = terms_shape(g, m);
    int prefer = r >= 4 ? r - 3 : r - 2;
    if (split_fits(&b, o, prefer)) return m->split = prefer, true;
    for (int k = 0; k <= r - 2; k++)
        if (split_fits(&b, o, k)) return m->split = k, true;
    return false;
}

/* Measured with bench/attention (2 threads, AVX-512, medians of quiet runs, bench/RESULTS.md).
 * Under the causal mask (B*H 8 and 32, D 32 and 64) the flash kernels beat the plain spelling
 * (oneDNN matmuls, a JIT softmax) from Sk = 128 on (forward + backward 1.05-2.25x at 196) and
 * lose at 49. Without a mask what counts is the logits tensor the plain spelling writes and
 * reads back, n = B*H*Sq*Sk floats, against the head size (forward + backward, 2026-12-05,
 * B*H 32 and 512, S 49-1024): D 8 and 16 fused 1.29-2.21x from n = 2M on (32x256x256), 0.79-1.06x
 * below (32x196x196, 512x49x49); D 32 fused 1.11-1.15x from 32M (512x256x256, 32x1024x1024),
 * 0.88-0.93x at 20M and below; D 64 fused 0.78-0.93x wherever the plain spelling fits, so
 * only when its logits pass 1 GiB (n >= 2^28, where its training arena needs several). */
bool dc_attention_fuses(int64_t heads, int64_t sq, int64_t sk, int64_t d, bool causal, char *why, size_t len) {
    double n = (double)heads * (double)sq * (double)sk;
    bool fuse = causal ? sk >= 128 : (d <= 16 && n >= 0x1p21) || (d <= 32 && n >= 0x1p25) || n >= 0x1p28;
    if (why)
        snprintf(why, len, "rule: %s for %s, D %lld, %lldx%lldx%lld logits", fuse ? "fused" : "unfused",
                 causal ? "causal" : "unmasked", (long long)d, (long long)heads, (long long)sq, (long long)sk);
    return fuse;
}

/* The group whose output is old node out, if there is one that no earlier group claimed. */
static bool find_group(const finder *f, int out, group *res) {
    const dc_graph *g = f->g;
    const dc_node *o = &g->nodes[out];
    if (o->op != DC_OP_MATMUL || o->attr.matmul.trans_a || !f->live[out] || f->claimed[out]) return false;
    const dc_node *p = &g->nodes[o->in[0]];
    if (p->op != DC_OP_SOFTMAX || p->attr.axis.axis != p->type.shape.rank - 1) return false;
    group m = { .out = out, .v = o->in[1], .v_t = o->attr.matmul.trans_b, .scale = 1 };
    if (f->u.uses[o->in[0]] != 1 || f->claimed[o->in[0]]) return false;
    m.steps[m.n_steps++] = o->in[0];
    if (!walk(f, p->in[0], m, res) || !operands_fit(g, res)) return false;
    const dc_shape *ks = &type_of(g, res->k)->shape;
    int64_t sk = ks->dim[ks->rank - (res->k_t ? 1 : 2)], d = ks->dim[ks->rank - (res->k_t ? 2 : 1)];
    const dc_shape *qs = &type_of(g, res->q)->shape;
    int64_t heads = dc_numel(qs) / (qs->dim[qs->rank - 1] * qs->dim[qs->rank - 2]);
    return f->every || dc_attention_fuses(heads, qs->dim[qs->rank - 2], sk, d, res->causal, NULL, 0);
}

/* ---- the rewrite ----------------------------------------------------------------------- */

/* Old node x with its last two axes swapped: a transpose of it, composed with the transpose x
 * comes from (nothing when the two cancel). */
static int swap_last2(dc_rewriter *rw, int at, int x) {
    const dc_node *n = &rw->old[x];
    int r = n->type.shape.rank;
    dc_attr a;
    memset(&a, 0, sizeof a);
    a.perm.perm.n = r;
    for (int i = 0; i < r; i++) a.perm.perm.v[i] = i < r - 2 ? i : 2 * r - 3 - i;
    if (n->op == DC_OP_TRANSPOSE) {
        bool identity = true;
        for (int i = 0; i < r; i++) {
            a.perm.perm.v[i] = n->attr.perm.perm.v[a.perm.perm.v[i]];
            identity &= a.perm.perm.v[i] == i;
        }
        x = n->in[0];
        if (identity) return rw->map[x];
    }
    int in = rw->map[x];
    return dc_rw_emit(rw, at, DC_OP_TRANSPOSE, 1, &in, &a, NULL);
}

/* New node id as shape s: itself, or a reshape. */
static int reshaped(dc_rewriter *rw, int at, int id, const dc_shape *s) {
    const dc_type *t = &rw->g->nodes[id].type;
    if (dc_shape_eq(&t->shape, s)) return id;
    dc_type to = dc_make_type(t->dtype, s);
    return dc_rw_emit(rw, at, DC_OP_RESHAPE, 1, &id, NULL, &to);
}

/* The additive term as a new node: the bias, or where(cond, 0, -inf) / where(cond, -inf, 0)
 * with the group's fills (made at its first mask: fills[0] 0, fills[1] -inf). */
static int term_value(dc_rewriter *rw, int at, const term *t, int *fills) {
    if (t->kind == TERM_BIAS) return rw->map[t->id];
    dc_type scalar = { .dtype = DC_F32 };
    if (fills[0] < 0) {
        fills[0] = dc_rw_fill(rw, at, 0, &scalar);
        fills[1] = dc_rw_fill(rw, at, -INFINITY, &scalar);
    }
    bool keep_true = t->kind == TERM_KEEP_TRUE;
    int in[3] = { rw->map[t->id], fills[keep_true ? 0 : 1], fills[keep_true ? 1 : 0] };
    return dc_rw_emit(rw, at, DC_OP_WHERE, 3, in, NULL, NULL);
}

/* Emits group m's attention (and the nodes feeding it) at out's place; returns the new id of
 * out's value. */
static int emit_group(dc_rewriter *rw, const group *m) {
    int at = m->out, r = rw->old[at].type.shape.rank;
    int ids[3] = { m->q, m->k, m->v }, in[4], n = 3;
    bool swap[3] = { false, m->k_t, m->v_t };
    for (int i = 0; i < 3; i++) {
        int x = swap[i] ? swap_last2(rw, at, ids[i]) : rw->map[ids[i]];
        dc_shape s = as_bhxy(&rw->g->nodes[x].type.shape, r, m->split);
        in[i] = reshaped(rw, at, x, &s);
    }
    if (m->n_terms > 0) {
        int bias = -1, fills[2] = { -1, -1 };
        for (int i = m->n_terms - 1; i >= 0; i--) {
            int t = term_value(rw, at, &m->terms[i], fills);
            bias = bias < 0 ? t : dc_rw_emit(rw, at, DC_OP_ADD, 2, (int[]){ bias, t }, NULL, NULL);
        }
        const dc_shape *bs = &rw->g->nodes[bias].type.shape;
        if (bs->rank > 2 && r != 4) {
            dc_shape s = as_bhxy(bs, r, m->split);
            bias = reshaped(rw, at, bias, &s);
        }
        in[n++] = bias;
    }
    dc_attr a;
    memset(&a, 0, sizeof a);
    a.attention.scale = (float)m->scale;
    a.attention.causal = m->causal;
    a.attention.bias = n == 4;
    int y = dc_rw_emit(rw, at, DC_OP_ATTENTION, n, in, &a, NULL);
    return reshaped(rw, at, y, &rw->old[at].type.shape);
}

static bool fuse(dc_graph *g, bool every, const dc_pass_opts *o, char *err, size_t len) {
    size_t nn = (size_t)g->n_nodes + 1, n_softmax = 1;
    for (int i = 0; i < g->n_nodes; i++) n_softmax += g->nodes[i].op == DC_OP_SOFTMAX;
    bool *live = dc_live_nodes(g);
    finder f = { g, live, dc_uses_of(g, live), calloc(nn, sizeof(bool)), every };
    group *groups = malloc(n_softmax * sizeof *groups); /* a group has a softmax of its own */
    int *group_at = malloc(nn * sizeof *group_at), n = 0;
    if (!f.claimed || !groups || !group_at) abort(); /* out of memory */
    for (int i = 0; i < g->n_nodes; i++) {
        group_at[i] = -1;
        if (!find_group(&f, i, &groups[n])) continue;
        for (int s = 0; s < groups[n].n_steps; s++) f.claimed[groups[n].steps[s]] = true;
        f.claimed[i] = true;
        group_at[i] = n++;
    }
    bool ok = true;
    if (n > 0) {
        dc_rewriter rw;
        dc_rw_begin(&rw, g);
        for (int i = 0; i < rw.n_old; i++) {
            if (group_at[i] >= 0) rw.map[i] = emit_group(&rw, &groups[group_at[i]]);
            else if (live[i] && !f.claimed[i]) dc_rw_keep(&rw, i);
        }
        dc_rw_end(&rw);
        ok = dc_pass_dce(g, o, err, len);
    }
    dc_uses_free(&f.u);
    free(live);
    free(f.claimed);
    free(groups);
    free(group_at);
    return ok;
}

bool dc_pass_fuse_attention(dc_graph *g, const dc_pass_opts *o, char *err, size_t len) {
    return fuse(g, false, o, err, len);
}

bool dc_pass_fuse_attention_all(dc_graph *g, const dc_pass_opts *o, char *err, size_t len) {
    return fuse(g, true, o, err, len);
}
