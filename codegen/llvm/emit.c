/* emit.c — kernel IR to LLVM IR: the loops of one kernel and its expressions on vectors.
 *
 * Three layouts of the vector lanes over the index space, chosen per kernel by counting what
 * each costs (vector bodies times the accesses of a body: a gather or scatter costs a lane
 * per lane, a vector or broadcast access one; loads that no inner index moves are hoisted out
 * of the inner loops and cost nothing):
 *   - runs (no inner space): the lanes step along the last outer axis; the range
 *     [begin, end) is cut into runs along it;
 *   - rows (an inner space): one pass per outer index and phase, the lanes stepping along the
 *     last inner axis (the other inner axes form a flattened loop around it);
 *   - blocks (an inner space): the lanes span R consecutive outer indices along the last outer
 *     axis, L lanes each: L = the last inner axis's extent when it is shorter than a vector
 *     (a group norm's channels of a group: lane = (group, channel)), or L = 1 (a sum over
 *     leading axes: lane = kept channel, the inner space walked element by element). Blocks
 *     never cross the end of the last outer axis or of [begin, end); a shorter block masks its
 *     missing rows.
 * Full vectors step along the vector axis, then one masked step for the tail. Each lane's
 * element offset from lane 0 picks the access: all 0 a scalar load broadcast, lane i at i a
 * vector (masked) load or store, anything else a gather / scatter (scatters store lanes in
 * order, as the interpreter's row-major order does). Loop variables and accumulators live in
 * allocas that the optimizer promotes to registers. Reductions keep one accumulator vector per
 * reduction, combined at the end within each row's lanes by an xor butterfly (lane i with
 * i ^ h, h = half the row's lanes down to 1) — a fixed order that leaves every lane of a row
 * the same result, which its later phases read lane by lane. A per-row phase runs once per
 * row (a block: once per block, each lane at its row's inner index 0; the first lane of each
 * row stores). A value of two or more operations that a later pass over the same rows would
 * compute again (softmax's exp) is stashed by the first pass that computes it, one vector per
 * body in a buffer on the thread's stack, and loaded by the later ones (plan_stashes). A
 * reducing store loads its elements, combines and stores them back at every body (the identity
 * instead of the load at the first index of its folded axes): each lane accumulates its own
 * element in the interpreter's order. A checked load is a masked gather from clamped positions.
 * Loads that read the same elements at every body of a pass (no inner index moves them, or in
 * blocks spanning the vector axis only that axis does: a group norm's gamma and beta) are
 * evaluated once per row before the pass. A kernel of two or more passes over the inner space
 * prefetches, in its last pass, what its first pass loads at the same inner position of the
 * next row (plan_prefetch): the first pass waits on memory, the later ones compute. */
#include "codegen/llvm/llvm_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* accumulator sets per reduction: rows of a short pass add into them in turn */
#define ACC_SETS 2
#define SHORT_BODY 24

typedef struct {
    dc_lx *x;
    const dc_kir *k;
    LLVMValueRef fn;
    LLVMValueRef bufs[DC_KIR_MAX_BUFS];
    LLVMValueRef oidx[DC_MAX_RANK], iidx[DC_MAX_RANK]; /* i64 index values; NULL = 0 */
    bool vec_inner;  /* the vector axis is the last inner axis (else the last outer one) */
    int vaxis;       /* its position in its space; -1 for a rank-0 outer space */
    int L;           /* blocks: lanes per row (0: runs or rows) */
    int oaxis;       /* blocks: the outer axis the rows of a block follow (the last) */
    LLVMValueRef *results, *accs; /* allocas per reduction: result, ACC_SETS accumulator vectors */
    int acc_set;                  /* the accumulators the bodies being emitted add into */
    LLVMValueRef *memo;           /* per body: value of each expression, or NULL */
    LLVMValueRef *hoisted;        /* per phase: loads evaluated before its inner loops, or NULL */
    int *stash_phase;             /* [n_exprs] the phase that computes and stashes it, or -1 */
    LLVMValueRef *stash;          /* [n_exprs] its stash: one vector per body of a row pass */
    int phase;                    /* the phase being emitted */
    int fetch_phase;              /* the phase whose bodies prefetch the next row's (-1: none) */
    bool *fetch;                  /* [n_exprs] the loads prefetched: the first pass's */
    LLVMValueRef next_oidx[DC_MAX_RANK]; /* the next row's (block's) outer multi-index */
} kx;

/* One emission of the loop body: position j along the vector axis, w lanes, mask (NULL when
 * every lane is live); row: a per-row evaluation (every inner index 0); slot: the body's index
 * among the bodies of a pass over the inner space (NULL: no stash). */
typedef struct { LLVMValueRef j; int w; LLVMValueRef mask; bool row; LLVMValueRef slot; } body;

/* ---- loops ---------------------------------------------------------------------------- */

static LLVMValueRef i64c(kx *c, int64_t v) { return LLVMConstInt(c->x->i64, (uint64_t)v, 1); }

static LLVMValueRef load_var(kx *c, LLVMValueRef var) {
    return LLVMBuildLoad2(c->x->b, c->x->i64, var, "");
}

/* idx[0..rank) = the row-major multi-index of t over dims[0..rank) */
static void unflatten(kx *c, LLVMValueRef t, int rank, const int64_t *dims, LLVMValueRef *idx) {
    int64_t after = 1;
    for (int d = rank - 1; d >= 0; d--) {
        LLVMValueRef q = after == 1 ? t : LLVMBuildUDiv(c->x->b, t, i64c(c, after), "");
        idx[d] = d == 0 ? q : LLVMBuildURem(c->x->b, q, i64c(c, dims[d]), "");
        after *= dims[d];
    }
}

/* ---- accesses -------------------------------------------------------------------------- */

static int64_t vstride(const kx *c, const dc_kir_map *m) {
    if (c->vaxis < 0) return 0;
    return c->vec_inner ? m->inner[c->vaxis] : m->outer[c->vaxis];
}

/* The element offset of lane l from lane 0 under map m, in a body of the layout. */
static int64_t lane_offset(const kx *c, bool row, const dc_kir_map *m, int l) {
    if (!c->L) return row ? 0 : l * vstride(c, m);
    return l / c->L * m->outer[c->oaxis] + (row ? 0 : l % c->L * m->inner[c->vaxis]);
}

typedef enum { ACC_SCALAR, ACC_VECTOR, ACC_GATHER } access;

/* How map m is accessed by w lanes: every lane at lane 0's element, lane i at element i, or
 * anything else. */
static access access_of(const kx *c, bool row, const dc_kir_map *m, int w) {
    bool zero = true, iota = true;
    for (int l = 0; l < w; l++) {
        int64_t o = lane_offset(c, row, m, l);
        zero = zero && o == 0;
        iota = iota && o == l;
    }
    return zero ? ACC_SCALAR : iota ? ACC_VECTOR : ACC_GATHER;
}

/* The constant vector of lane offsets of map m (i64, w lanes). */
static LLVMValueRef lane_offsets(kx *c, const body *bd, const dc_kir_map *m) {
    LLVMValueRef e[64];
    for (int l = 0; l < bd->w; l++) e[l] = LLVMConstInt(c->x->i64, (uint64_t)lane_offset(c, bd->row, m, l), 1);
    return LLVMConstVector(e, (unsigned)bd->w);
}

/* The element offset of map m at the body's lane 0. */
static LLVMValueRef offset_of(kx *c, const body *bd, const dc_kir_map *m) {
    LLVMBuilderRef b = c->x->b;
    LLVMValueRef a = i64c(c, m->offset);
    for (int s = 0; s < 2; s++) {
        const int64_t *st = s ? m->inner : m->outer;
        LLVMValueRef *idx = s ? c->iidx : c->oidx;
        for (int d = 0; d < DC_MAX_RANK; d++) {
            if (st[d] == 0 || !idx[d] || (d == c->vaxis && (s == 1) == c->vec_inner)) continue;
            a = LLVMBuildAdd(b, a, LLVMBuildMul(b, idx[d], i64c(c, st[d]), ""), "");
        }
    }
    int64_t sv = vstride(c, m);
    if (sv) a = LLVMBuildAdd(b, a, LLVMBuildMul(b, bd->j, i64c(c, sv), ""), "");
    return a;
}

/* Whether map m reads the same elements at every body of a pass over the inner space: no
 * inner index moves it, or only the vector axis does and one body spans that axis (blocks
 * with L = its extent: a group norm's gamma and beta). */
static bool body_invariant(const kx *c, const dc_kir_map *m) {
    bool spans = c->L && c->L == c->k->inner[c->vaxis];
    for (int d = 0; d < DC_MAX_RANK; d++)
        if (m->inner[d] && !(spans && d == c->vaxis)) return false;
    return true;
}

static LLVMTypeRef elem_type(kx *c, dc_dtype t) { return t == DC_F32 ? c->x->f32 : c->x->i32; }

static LLVMValueRef all_true(kx *c, int w) {
    return dc_lx_splat(c->x, LLVMConstInt(c->x->i1, 1, 0), w);
}

/* The w lane pointers of map m, lane 0 at p. */
static LLVMValueRef lane_ptrs(kx *c, const body *bd, LLVMTypeRef et, LLVMValueRef p, const dc_kir_map *m) {
    LLVMValueRef off = lane_offsets(c, bd, m);
    return LLVMBuildGEP2(c->x->b, et, p, &off, 1, "");
}

static LLVMValueRef value_of(kx *c, const body *bd, int i);

/* Checked load e (an index and / or a guard): the positions of the w lanes, plus index times
 * stride, clamped into the buffer; a gather of the lanes whose guard holds (0 elsewhere). */
static LLVMValueRef emit_checked_load(kx *c, const body *bd, const dc_kir_expr *e) {
    dc_lx *x = c->x;
    LLVMBuilderRef b = x->b;
    int w = bd->w;
    LLVMTypeRef et = elem_type(c, c->k->bufs[e->buf].dtype), it = dc_lx_type(x->i64, w);
    LLVMValueRef off = offset_of(c, bd, &e->map);
    if (w > 1) off = LLVMBuildAdd(b, dc_lx_splat(x, off, w), lane_offsets(c, bd, &e->map), "");
    int64_t last = c->k->bufs[e->buf].numel - 1;
    LLVMValueRef lo = i64c(c, 0), hi = i64c(c, last), stride = i64c(c, e->stride);
    if (w > 1) lo = dc_lx_splat(x, lo, w), hi = dc_lx_splat(x, hi, w), stride = dc_lx_splat(x, stride, w);
    if (e->arg[0] >= 0) {
        LLVMValueRef idx = LLVMBuildSExt(b, value_of(c, bd, e->arg[0]), it, "");
        off = LLVMBuildAdd(b, off, LLVMBuildMul(b, idx, stride, ""), "");
    }
    off = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, off, lo, ""), lo, off, "");
    off = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, off, hi, ""), hi, off, "");
    LLVMValueRef mask = bd->mask ? bd->mask : w > 1 ? all_true(c, w) : NULL;
    if (e->arg[1] >= 0) {
        LLVMValueRef g = value_of(c, bd, e->arg[1]);
        g = LLVMBuildICmp(b, LLVMIntNE, g, LLVMConstNull(LLVMTypeOf(g)), "");
        mask = mask ? LLVMBuildAnd(b, mask, g, "") : g;
    }
    LLVMValueRef zero = LLVMConstNull(dc_lx_type(et, w));
    if (w == 1) {
        LLVMValueRef v = LLVMBuildLoad2(b, et, LLVMBuildGEP2(b, et, c->bufs[e->buf], &off, 1, ""), "");
        LLVMSetAlignment(v, 4);
        return mask ? LLVMBuildSelect(b, mask, v, zero, "") : v;
    }
    LLVMValueRef ptrs = LLVMBuildGEP2(b, et, c->bufs[e->buf], &off, 1, "");
    return dc_lx_intrinsic(x, "llvm.masked.gather", (LLVMTypeRef[]){ dc_lx_type(et, w), LLVMTypeOf(ptrs) }, 2,
                           (LLVMValueRef[]){ ptrs, LLVMConstInt(x->i32, 4, 0), mask, zero }, 4);
}

static LLVMValueRef emit_load(kx *c, const body *bd, int buf, const dc_kir_map *m) {
    dc_lx *x = c->x;
    LLVMTypeRef et = elem_type(c, c->k->bufs[buf].dtype), vt = dc_lx_type(et, bd->w);
    LLVMValueRef off = offset_of(c, bd, m);
    LLVMValueRef p = LLVMBuildGEP2(x->b, et, c->bufs[buf], &off, 1, "");
    access a = bd->w == 1 ? ACC_SCALAR : access_of(c, bd->row, m, bd->w);
    if (a == ACC_SCALAR) {
        LLVMValueRef v = LLVMBuildLoad2(x->b, et, p, "");
        LLVMSetAlignment(v, 4);
        return dc_lx_splat(x, v, bd->w);
    }
    LLVMValueRef align = LLVMConstInt(x->i32, 4, 0), zero = LLVMConstNull(vt);
    if (a == ACC_VECTOR && !bd->mask) {
        LLVMValueRef v = LLVMBuildLoad2(x->b, vt, p, "");
        LLVMSetAlignment(v, 4);
        return v;
    }
    LLVMValueRef mask = bd->mask ? bd->mask : all_true(c, bd->w);
    if (a == ACC_VECTOR)
        return dc_lx_intrinsic(x, "llvm.masked.load", (LLVMTypeRef[]){ vt, x->ptr }, 2,
                               (LLVMValueRef[]){ p, align, mask, zero }, 4);
    LLVMValueRef ptrs = lane_ptrs(c, bd, et, p, m);
    return dc_lx_intrinsic(x, "llvm.masked.gather", (LLVMTypeRef[]){ vt, LLVMTypeOf(ptrs) }, 2,
                           (LLVMValueRef[]){ ptrs, align, mask, zero }, 4);
}

static void emit_store(kx *c, const body *bd, const dc_kir_store *st, LLVMValueRef v) {
    dc_lx *x = c->x;
    LLVMTypeRef et = elem_type(c, c->k->bufs[st->buf].dtype), vt = dc_lx_type(et, bd->w);
    LLVMValueRef off = offset_of(c, bd, &st->map);
    LLVMValueRef p = LLVMBuildGEP2(x->b, et, c->bufs[st->buf], &off, 1, "");
    access a = bd->w == 1 ? ACC_SCALAR : access_of(c, bd->row, &st->map, bd->w);
    if (bd->w == 1 || (a == ACC_VECTOR && !bd->mask)) {
        LLVMSetAlignment(LLVMBuildStore(x->b, v, p), 4);
        return;
    }
    LLVMValueRef align = LLVMConstInt(x->i32, 4, 0);
    LLVMValueRef mask = bd->mask ? bd->mask : all_true(c, bd->w);
    if (a == ACC_VECTOR) {
        dc_lx_intrinsic(x, "llvm.masked.store", (LLVMTypeRef[]){ vt, x->ptr }, 2,
                        (LLVMValueRef[]){ v, p, align, mask }, 4);
        return;
    }
    LLVMValueRef ptrs = lane_ptrs(c, bd, et, p, &st->map);
    dc_lx_intrinsic(x, "llvm.masked.scatter", (LLVMTypeRef[]){ vt, LLVMTypeOf(ptrs) }, 2,
                    (LLVMValueRef[]){ v, ptrs, align, mask }, 4);
}

/* ---- expressions ----------------------------------------------------------------------- */

static LLVMValueRef cast(kx *c, const dc_kir_expr *e, dc_dtype from, LLVMValueRef a, int w) {
    dc_lx *x = c->x;
    if (from == e->to) return a;
    if (e->to == DC_F32) return LLVMBuildSIToFP(x->b, a, dc_lx_type(x->f32, w), "");
    LLVMTypeRef tys[2] = { dc_lx_type(x->i32, w), LLVMTypeOf(a) };
    return dc_lx_intrinsic(x, "llvm.fptosi.sat", tys, 2, &a, 1);
}

/* An OP expression: cast, or its op's ops.def formula with the primitives above. */
static LLVMValueRef emit_op(kx *c, const body *bd, const dc_kir_expr *e) {
    int w = bd->w;
    LLVMValueRef x = value_of(c, bd, e->arg[0]);
    LLVMValueRef y = e->arg[1] >= 0 ? value_of(c, bd, e->arg[1]) : x;
    LLVMValueRef z = e->arg[2] >= 0 ? value_of(c, bd, e->arg[2]) : x;
    if (e->op == DC_OP_CAST) return cast(c, e, c->k->exprs[e->arg[0]].dtype, x, w);
    return dc_lx_formula(c->x, e->op, x, y, z, e->f, w);
}

static LLVMValueRef value_of(kx *c, const body *bd, int i) {
    if (c->memo[i]) return c->memo[i];
    if (c->hoisted && c->hoisted[i]) return c->memo[i] = c->hoisted[i];
    bool stashed = c->stash_phase && c->stash_phase[i] >= 0 && bd->slot;
    LLVMTypeRef vt = dc_lx_type(elem_type(c, c->k->exprs[i].dtype), bd->w);
    LLVMValueRef at = stashed ? LLVMBuildGEP2(c->x->b, vt, c->stash[i], (LLVMValueRef[]){ bd->slot }, 1, "") : NULL;
    if (stashed && c->phase > c->stash_phase[i]) return c->memo[i] = LLVMBuildLoad2(c->x->b, vt, at, "");
    const dc_kir_expr *e = &c->k->exprs[i];
    dc_lx *x = c->x;
    LLVMValueRef v = NULL;
    switch (e->kind) {
    case DC_KIR_LOAD:
        v = e->arg[0] >= 0 || e->arg[1] >= 0 ? emit_checked_load(c, bd, e) : emit_load(c, bd, e->buf, &e->map);
        break;
    case DC_KIR_CONST: v = e->dtype == DC_F32 ? dc_lx_f32(x, e->f, bd->w) : dc_lx_i32(x, e->i, bd->w); break;
    case DC_KIR_INDEX: {
        LLVMValueRef off = offset_of(c, bd, &e->map);
        if (bd->w > 1) off = LLVMBuildAdd(x->b, dc_lx_splat(x, off, bd->w), lane_offsets(c, bd, &e->map), "");
        v = LLVMBuildTrunc(x->b, off, dc_lx_type(x->i32, bd->w), "");
        break;
    }
    case DC_KIR_RESULT:
        v = LLVMBuildLoad2(x->b, dc_lx_type(elem_type(c, e->dtype), x->lanes), c->results[e->result], "");
        if (bd->w == 1 && x->lanes > 1) v = LLVMBuildExtractElement(x->b, v, LLVMConstInt(x->i32, 0, 0), "");
        break;
    case DC_KIR_OP: v = emit_op(c, bd, e); break;
    }
    if (stashed && c->phase == c->stash_phase[i]) LLVMBuildStore(c->x->b, v, at);
    c->memo[i] = v;
    return v;
}

/* ---- phases ---------------------------------------------------------------------------- */

static LLVMValueRef identity(kx *c, dc_kir_combine how, dc_dtype t, int w) {
    if (how == DC_KIR_SUM) return t == DC_F32 ? dc_lx_f32(c->x, 0.0f, w) : dc_lx_i32(c->x, 0, w);
    return t == DC_F32 ? dc_lx_f32(c->x, -INFINITY, w) : dc_lx_i32(c->x, INT32_MIN, w);
}

/* The combine how of (acc, v), as the interpreter's. */
static LLVMValueRef combine(kx *c, dc_kir_combine how, dc_dtype t, LLVMValueRef acc, LLVMValueRef v) {
    LLVMBuilderRef b = c->x->b;
    if (how == DC_KIR_SUM) return t == DC_F32 ? LLVMBuildFAdd(b, acc, v, "") : LLVMBuildAdd(b, acc, v, "");
    if (t == DC_F32) return dc_lx_maxf(c->x, acc, v);
    return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, v, acc, ""), v, acc, "");
}

static dc_dtype reduce_type(const kx *c, int r) { return c->k->exprs[c->k->reduces[r].expr].dtype; }

/* Reducing store st of v at the body: its elements so far (the identity at the first index of
 * its folded axes, which all lie before the vector axis) combined with v. */
static LLVMValueRef reduce_into(kx *c, const body *bd, const dc_kir_store *st, LLVMValueRef v) {
    dc_lx *x = c->x;
    dc_dtype t = c->k->bufs[st->buf].dtype;
    LLVMValueRef first = LLVMConstInt(x->i1, 1, 0);
    for (int d = 0; d < c->vaxis; d++)
        if (st->map.inner[d] == 0 && c->k->inner[d] > 1)
            first = LLVMBuildAnd(x->b, first, LLVMBuildICmp(x->b, LLVMIntEQ, c->iidx[d], i64c(c, 0), ""), "");
    LLVMValueRef old = emit_load(c, bd, st->buf, &st->map);
    LLVMValueRef acc = LLVMBuildSelect(x->b, first, identity(c, st->combine, t, bd->w), old, "");
    return combine(c, st->combine, t, acc, v);
}

/* Prefetches (into L2) what the first pass over the inner space will load at this body's
 * inner position in the next row or block, so the next row's first pass, which waits on
 * memory, finds it in cache while this pass computes. */
static void emit_prefetches(kx *c, const body *bd) {
    dc_lx *x = c->x;
    LLVMValueRef here[DC_MAX_RANK];
    memcpy(here, c->oidx, sizeof here);
    memcpy(c->oidx, c->next_oidx, sizeof here);
    for (int i = 0; i < c->k->n_exprs; i++) {
        if (!c->fetch[i]) continue;
        const dc_kir_expr *e = &c->k->exprs[i];
        LLVMValueRef off = offset_of(c, bd, &e->map);
        LLVMValueRef p = LLVMBuildGEP2(x->b, elem_type(c, c->k->bufs[e->buf].dtype), c->bufs[e->buf], &off, 1, "");
        dc_lx_intrinsic(x, "llvm.prefetch", &x->ptr, 1,
                        (LLVMValueRef[]){ p, LLVMConstInt(x->i32, 0, 0), LLVMConstInt(x->i32, 2, 0),
                                          LLVMConstInt(x->i32, 1, 0) }, 4);
    }
    memcpy(c->oidx, here, sizeof here);
}

/* Phases [p0, p1) at one body position: per phase, every value first, then the reductions'
 * accumulation and the stores in order. */
static void emit_body(kx *c, const body *bd, int p0, int p1) {
    const dc_kir *k = c->k;
    LLVMValueRef *staged = calloc((size_t)k->n_stores + 1, sizeof *staged);
    if (!staged) abort(); /* out of memory */
    for (int p = p0; p < p1; p++) {
        if (p == c->fetch_phase && !bd->row) emit_prefetches(c, bd);
        c->phase = p;
        for (int i = 0; i < k->n_exprs; i++) c->memo[i] = NULL;
        for (int r = 0; r < k->n_reduces; r++)
            if (k->reduces[r].phase == p) value_of(c, bd, k->reduces[r].expr);
        for (int s = 0; s < k->n_stores; s++)
            if (k->stores[s].phase == p) staged[s] = value_of(c, bd, k->stores[s].expr);
        for (int r = 0; r < k->n_reduces; r++) {
            if (k->reduces[r].phase != p) continue;
            LLVMValueRef v = c->memo[k->reduces[r].expr];
            dc_kir_combine how = k->reduces[r].combine;
            if (bd->mask) v = LLVMBuildSelect(c->x->b, bd->mask, v, identity(c, how, reduce_type(c, r), bd->w), "");
            LLVMTypeRef at = LLVMTypeOf(v);
            LLVMValueRef slot = c->accs[r * ACC_SETS + c->acc_set];
            LLVMValueRef acc = LLVMBuildLoad2(c->x->b, at, slot, "");
            LLVMBuildStore(c->x->b, combine(c, how, reduce_type(c, r), acc, v), slot);
        }
        for (int s = 0; s < k->n_stores; s++) {
            const dc_kir_store *st = &k->stores[s];
            if (st->phase == p) emit_store(c, bd, st, st->reduce ? reduce_into(c, bd, st, staged[s]) : staged[s]);
        }
    }
    free(staged);
}

/* The slot of the rows-layout body at inner row t and position j (NULL without t: runs). */
static LLVMValueRef slot_of(kx *c, LLVMValueRef t, LLVMValueRef j) {
    if (!t) return NULL;
    int64_t per_row = (c->k->inner[c->vaxis] + c->x->lanes - 1) / c->x->lanes;
    return LLVMBuildAdd(c->x->b, LLVMBuildMul(c->x->b, t, i64c(c, per_row), ""),
                        LLVMBuildUDiv(c->x->b, j, i64c(c, c->x->lanes), ""), "");
}

/* The vector loop over [j0, jn) along the vector axis at inner row t (NULL: runs), running
 * phases [p0, p1). */
static void emit_vloop(kx *c, LLVMValueRef jvar, LLVMValueRef t, LLVMValueRef j0, LLVMValueRef jn, int p0, int p1) {
    dc_lx *x = c->x;
    int w = x->lanes;
    dc_lx_loop l;
    dc_lx_loop_open(c->x, c->fn, &l, jvar, j0);
    LLVMValueRef j = load_var(c, jvar);
    dc_lx_loop_test(c->x, c->fn, &l, LLVMBuildICmp(x->b, LLVMIntSLE, LLVMBuildAdd(x->b, j, i64c(c, w), ""), jn, ""));
    emit_body(c, &(body){ load_var(c, jvar), w, NULL, false, slot_of(c, t, load_var(c, jvar)) }, p0, p1);
    dc_lx_loop_close(c->x, &l, i64c(c, w));
    if (w == 1) return;
    j = load_var(c, jvar);
    LLVMBasicBlockRef tail = LLVMAppendBasicBlockInContext(x->ctx, c->fn, "tail");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(x->ctx, c->fn, "done");
    LLVMBuildCondBr(x->b, LLVMBuildICmp(x->b, LLVMIntSLT, j, jn, ""), tail, done);
    LLVMPositionBuilderAtEnd(x->b, tail);
    LLVMValueRef pos = LLVMBuildAdd(x->b, dc_lx_iota64(x, w), dc_lx_splat(x, j, w), "");
    LLVMValueRef mask = LLVMBuildICmp(x->b, LLVMIntSLT, pos, dc_lx_splat(x, jn, w), "");
    emit_body(c, &(body){ j, w, mask, false, slot_of(c, t, j) }, p0, p1);
    LLVMBuildBr(x->b, done);
    LLVMPositionBuilderAtEnd(x->b, done);
}

/* Combines the sets of accumulator r the phase used (sets (0 + 1) + (2 + 3) with four), then
 * within each row's lanes (the xor butterfly), into its result vector. */
static void finish_reduce(kx *c, int r, int sets) {
    dc_lx *x = c->x;
    int w = x->lanes, row_lanes = c->L ? c->L : w;
    dc_kir_combine how = c->k->reduces[r].combine;
    LLVMTypeRef vt = dc_lx_type(elem_type(c, reduce_type(c, r)), w);
    LLVMValueRef a[ACC_SETS];
    for (int u = 0; u < sets; u++) a[u] = LLVMBuildLoad2(x->b, vt, c->accs[r * ACC_SETS + u], "");
    for (int n = sets; n > 1; n /= 2)
        for (int u = 0; u < n / 2; u++) a[u] = combine(c, how, reduce_type(c, r), a[2 * u], a[2 * u + 1]);
    LLVMValueRef v = a[0];
    for (int h = row_lanes / 2; h >= 1; h /= 2)
        v = combine(c, c->k->reduces[r].combine, reduce_type(c, r), v, dc_lx_lane_xor(x, v, h));
    LLVMBuildStore(x->b, v, c->results[r]);
}

/* Evaluates, for phase p, every load that is the same at every body (body_invariant) and that
 * p does not store to, once per row (or block) before p's inner loops: later bodies of p reuse
 * the values. */
static void hoist_loads(kx *c, int p, LLVMValueRef mask) {
    const dc_kir *k = c->k;
    for (int i = 0; i < k->n_exprs; i++) c->memo[i] = c->hoisted[i] = NULL;
    body bd = { i64c(c, 0), c->x->lanes, mask, false, NULL };
    for (int i = 0; i < k->n_exprs; i++) {
        const dc_kir_expr *e = &k->exprs[i];
        if (e->kind != DC_KIR_LOAD || !body_invariant(c, &e->map) || e->arg[0] >= 0 || e->arg[1] >= 0) continue;
        bool stored = false;
        for (int t = 0; t < k->n_stores; t++) stored = stored || (k->stores[t].phase == p && k->stores[t].buf == e->buf);
        if (!stored) c->hoisted[i] = value_of(c, &bd, i);
    }
}

static void init_reduces(kx *c, int p, int sets) {
    for (int r = 0; r < c->k->n_reduces; r++)
        for (int u = 0; u < sets && c->k->reduces[r].phase == p; u++)
            LLVMBuildStore(c->x->b, identity(c, c->k->reduces[r].combine, reduce_type(c, r), c->x->lanes),
                           c->accs[r * ACC_SETS + u]);
}

static void finish_reduces(kx *c, int p, int sets) {
    for (int r = 0; r < c->k->n_reduces; r++)
        if (c->k->reduces[r].phase == p) finish_reduce(c, r, sets);
}

/* Inner row t (an i64 value) of phase p: along the vector axis, the vector loop (rows), a
 * single body (blocks with L = the axis's extent), or one body per element (blocks with L = 1). */
static void emit_row(kx *c, int p, LLVMValueRef mask, LLVMValueRef t, LLVMValueRef jvar) {
    dc_lx *x = c->x;
    int64_t len = c->k->inner[c->vaxis];
    unflatten(c, t, c->vaxis, c->k->inner, c->iidx);
    if (!c->L) {
        emit_vloop(c, jvar, t, i64c(c, 0), i64c(c, len), p, p + 1);
    } else if (c->L == len) {
        emit_body(c, &(body){ i64c(c, 0), x->lanes, mask, false, t }, p, p + 1);
    } else {
        dc_lx_loop lj;
        dc_lx_loop_open(c->x, c->fn, &lj, jvar, i64c(c, 0));
        dc_lx_loop_test(c->x, c->fn, &lj, LLVMBuildICmp(x->b, LLVMIntSLT, load_var(c, jvar), i64c(c, len), ""));
        LLVMValueRef slot = LLVMBuildAdd(x->b, LLVMBuildMul(x->b, t, i64c(c, len), ""), load_var(c, jvar), "");
        emit_body(c, &(body){ load_var(c, jvar), x->lanes, mask, false, slot }, p, p + 1);
        dc_lx_loop_close(c->x, &lj, i64c(c, 1));
    }
}

static void phase_needs(const kx *c, int p, bool *need);

/* The expressions phase p evaluates per body. */
static int phase_size(const kx *c, int p) {
    bool *need = malloc((size_t)c->k->n_exprs + 1);
    if (!need) abort(); /* out of memory */
    phase_needs(c, p, need);
    int n = 0;
    for (int i = 0; i < c->k->n_exprs; i++) n += need[i];
    free(need);
    return n;
}

/* Phase p (not per-row) over the inner space: the rows of the inner axes before the vector
 * axis (emit_row each). A phase with reductions, a short body (at most SHORT_BODY expressions:
 * where the chain of adds into one accumulator, not the body, sets the pace) and at least 2
 * ACC_SETS rows runs its rows ACC_SETS at a time, row t + u adding into accumulator set u
 * (independent chains), then the rest into set 0. mask: the block's live rows. */
static void emit_inner(kx *c, int p, LLVMValueRef mask, LLVMValueRef tvar, LLVMValueRef jvar) {
    const dc_kir *k = c->k;
    dc_lx *x = c->x;
    int64_t rows = 1;
    for (int d = 0; d < c->vaxis; d++) rows *= k->inner[d];
    bool reduces = false;
    for (int r = 0; r < k->n_reduces; r++) reduces = reduces || k->reduces[r].phase == p;
    int sets = reduces && rows >= 2 * ACC_SETS && phase_size(c, p) <= SHORT_BODY ? ACC_SETS : 1;
    init_reduces(c, p, sets);
    hoist_loads(c, p, mask);
    LLVMValueRef t0 = i64c(c, 0);
    if (sets > 1) {
        dc_lx_loop lu;
        dc_lx_loop_open(c->x, c->fn, &lu, tvar, t0);
        dc_lx_loop_test(c->x, c->fn, &lu, LLVMBuildICmp(x->b, LLVMIntSLE, LLVMBuildAdd(x->b, load_var(c, tvar), i64c(c, sets), ""), i64c(c, rows), ""));
        for (c->acc_set = 0; c->acc_set < sets; c->acc_set++)
            emit_row(c, p, mask, LLVMBuildAdd(x->b, load_var(c, tvar), i64c(c, c->acc_set), ""), jvar);
        dc_lx_loop_close(c->x, &lu, i64c(c, sets));
        c->acc_set = 0;
        t0 = load_var(c, tvar);
    }
    dc_lx_loop lt;
    dc_lx_loop_open(c->x, c->fn, &lt, tvar, t0);
    dc_lx_loop_test(c->x, c->fn, &lt, LLVMBuildICmp(x->b, LLVMIntSLT, load_var(c, tvar), i64c(c, rows), ""));
    emit_row(c, p, mask, load_var(c, tvar), jvar);
    dc_lx_loop_close(c->x, &lt, i64c(c, 1));
    for (int i = 0; i < k->n_exprs; i++) c->hoisted[i] = NULL;
    finish_reduces(c, p, sets);
}

/* next_oidx = the multi-index of outer index o + step, or of end - 1 past the range's end. */
static void next_row(kx *c, LLVMValueRef o, LLVMValueRef step, LLVMValueRef end) {
    if (c->fetch_phase < 0) return;
    LLVMBuilderRef b = c->x->b;
    LLVMValueRef n = LLVMBuildAdd(b, o, step, ""), last = LLVMBuildSub(b, end, i64c(c, 1), "");
    n = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, n, end, ""), n, last, "");
    unflatten(c, n, c->k->outer_rank, c->k->outer, c->next_oidx);
}

/* Kernels with an inner space, rows layout: per outer index, each phase over the inner space. */
static void emit_rows(kx *c, LLVMValueRef begin, LLVMValueRef end, LLVMValueRef ovar,
                      LLVMValueRef tvar, LLVMValueRef jvar) {
    const dc_kir *k = c->k;
    dc_lx *x = c->x;
    dc_lx_loop lo;
    dc_lx_loop_open(c->x, c->fn, &lo, ovar, begin);
    dc_lx_loop_test(c->x, c->fn, &lo, LLVMBuildICmp(x->b, LLVMIntSLT, load_var(c, ovar), end, ""));
    unflatten(c, load_var(c, ovar), k->outer_rank, k->outer, c->oidx);
    next_row(c, load_var(c, ovar), i64c(c, 1), end);
    for (int p = 0; p < k->n_phases; p++) {
        for (int d = 0; d < DC_MAX_RANK; d++) c->iidx[d] = NULL;
        if (k->phases[p].per_row) emit_body(c, &(body){ i64c(c, 0), 1, NULL, true, NULL }, p, p + 1);
        else emit_inner(c, p, NULL, tvar, jvar);
    }
    dc_lx_loop_close(c->x, &lo, i64c(c, 1));
}

/* Kernels with an inner space, blocks layout: per block of up to lanes / L rows along the last
 * outer axis, each phase over the inner space; the lanes of missing rows are masked. */
static void emit_blocks(kx *c, LLVMValueRef begin, LLVMValueRef end, LLVMValueRef ovar,
                        LLVMValueRef tvar, LLVMValueRef jvar) {
    const dc_kir *k = c->k;
    dc_lx *x = c->x;
    LLVMBuilderRef b = x->b;
    int w = x->lanes;
    int64_t len = k->outer[c->oaxis], R = w / c->L;
    dc_lx_loop lo;
    dc_lx_loop_open(c->x, c->fn, &lo, ovar, begin);
    dc_lx_loop_test(c->x, c->fn, &lo, LLVMBuildICmp(b, LLVMIntSLT, load_var(c, ovar), end, ""));
    LLVMValueRef o = load_var(c, ovar);
    LLVMValueRef r0 = LLVMBuildURem(b, o, i64c(c, len), "");
    LLVMValueRef room = LLVMBuildSub(b, i64c(c, len), r0, ""), left = LLVMBuildSub(b, end, o, "");
    LLVMValueRef seg = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, room, left, ""), room, left, "");
    seg = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, seg, i64c(c, R), ""), seg, i64c(c, R), "");
    if (c->oaxis > 0) unflatten(c, LLVMBuildUDiv(b, o, i64c(c, len), ""), c->oaxis, k->outer, c->oidx);
    c->oidx[c->oaxis] = r0;
    next_row(c, o, seg, end);
    LLVMValueRef row_of_lane[64], first[64];
    for (int l = 0; l < w; l++) {
        row_of_lane[l] = LLVMConstInt(x->i64, (uint64_t)(l / c->L), 0);
        first[l] = LLVMConstInt(x->i1, l % c->L == 0, 0);
    }
    LLVMValueRef live = LLVMBuildICmp(b, LLVMIntSLT, LLVMConstVector(row_of_lane, (unsigned)w), dc_lx_splat(x, seg, w), "");
    LLVMValueRef firsts = LLVMBuildAnd(b, live, LLVMConstVector(first, (unsigned)w), "");
    for (int p = 0; p < k->n_phases; p++) {
        for (int d = 0; d < DC_MAX_RANK; d++) c->iidx[d] = NULL;
        if (k->phases[p].per_row) emit_body(c, &(body){ i64c(c, 0), w, firsts, true, NULL }, p, p + 1);
        else emit_inner(c, p, live, tvar, jvar);
    }
    dc_lx_loop_close(c->x, &lo, seg);
}

/* Kernels without an inner space: runs of [begin, end) along the last outer axis. */
static void emit_runs(kx *c, LLVMValueRef begin, LLVMValueRef end, LLVMValueRef ovar,
                      LLVMValueRef jvar) {
    const dc_kir *k = c->k;
    dc_lx *x = c->x;
    LLVMBuilderRef b = x->b;
    int64_t len = c->vaxis >= 0 ? k->outer[c->vaxis] : 1;
    dc_lx_loop lo;
    dc_lx_loop_open(c->x, c->fn, &lo, ovar, begin);
    dc_lx_loop_test(c->x, c->fn, &lo, LLVMBuildICmp(b, LLVMIntSLT, load_var(c, ovar), end, ""));
    LLVMValueRef o = load_var(c, ovar);
    LLVMValueRef q = LLVMBuildUDiv(b, o, i64c(c, len), "");
    LLVMValueRef j0 = LLVMBuildURem(b, o, i64c(c, len), "");
    LLVMValueRef room = LLVMBuildSub(b, i64c(c, len), j0, ""), left = LLVMBuildSub(b, end, o, "");
    LLVMValueRef seg = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, room, left, ""), room, left, "");
    if (c->vaxis > 0) unflatten(c, q, c->vaxis, k->outer, c->oidx);
    emit_vloop(c, jvar, NULL, j0, LLVMBuildAdd(b, j0, seg, ""), 0, k->n_phases);
    dc_lx_loop_close(c->x, &lo, seg);
}

/* The cost of layout L (0: rows) for a kernel with an inner space: vector bodies run times
 * the accesses of one body (inner-invariant loads are hoisted: free). */
static double layout_cost(kx *c, int L) {
    const dc_kir *k = c->k;
    int w = c->x->lanes;
    c->L = L;
    double outer = (double)dc_kir_range(k), inner = 1, len = (double)k->inner[c->vaxis];
    for (int d = 0; d < c->vaxis; d++) inner *= (double)k->inner[d];
    double olast = (double)k->outer[c->oaxis], bodies;
    if (!L) bodies = outer * inner * ceil(len / w);
    else bodies = outer / olast * ceil(olast / (w / L)) * inner * (L == 1 ? len : 1);
    double per_body = 0;
    for (int i = 0; i < k->n_exprs; i++)
        if (k->exprs[i].kind == DC_KIR_LOAD && (k->exprs[i].arg[0] >= 0 || k->exprs[i].arg[1] >= 0)) per_body += w;
        else if (k->exprs[i].kind == DC_KIR_LOAD && !body_invariant(c, &k->exprs[i].map))
            per_body += access_of(c, false, &k->exprs[i].map, w) == ACC_GATHER ? w : 1;
    for (int s = 0; s < k->n_stores; s++)
        if (!k->phases[k->stores[s].phase].per_row)
            per_body += (k->stores[s].reduce ? 2 : 1) * (access_of(c, false, &k->stores[s].map, w) == ACC_GATHER ? w : 1);
    return bodies * (per_body + 1);
}

/* The layout of a kernel with an inner space: rows, or the cheaper blocks (ties: rows). */
static int choose_layout(kx *c) {
    const dc_kir *k = c->k;
    int w = c->x->lanes;
    int64_t len = k->inner[c->vaxis];
    if (w < 2 || k->outer_rank == 0 || k->outer[c->oaxis] < 2) return 0;
    int best = 0;
    double best_cost = layout_cost(c, 0);
    int cand[2] = { 1, len < w && w % len == 0 ? (int)len : 1 };
    for (int i = 0; i < 2; i++) {
        double cost = layout_cost(c, cand[i]);
        if (cost < best_cost) best = cand[i], best_cost = cost;
    }
    return best;
}

/* ---- stashes ------------------------------------------------------------------------ */

/* at most this many bytes of stashes per kernel (they live on each thread's stack) */
#define STASH_BYTES (192 * 1024)

/* Marks in need[] the expressions phase p evaluates (from its reductions and stores), not
 * looking below expressions it takes from a stash of an earlier phase. */
static void phase_needs(const kx *c, int p, bool *need) {
    const dc_kir *k = c->k;
    for (int i = 0; i < k->n_exprs; i++) need[i] = false;
    for (int r = 0; r < k->n_reduces; r++)
        if (k->reduces[r].phase == p) need[k->reduces[r].expr] = true;
    for (int s = 0; s < k->n_stores; s++)
        if (k->stores[s].phase == p) need[k->stores[s].expr] = true;
    for (int i = k->n_exprs - 1; i >= 0; i--) {
        if (!need[i] || (c->stash_phase[i] >= 0 && c->stash_phase[i] < p)) continue;
        for (int a = 0; a < 3; a++)
            if (k->exprs[i].arg[a] >= 0) need[k->exprs[i].arg[a]] = true;
    }
}

/* Whether any of the buffers in mask (bit b: buffer b) is stored by phases [p0, p1). */
static bool stored_in(const dc_kir *k, uint32_t mask, int p0, int p1) {
    for (int s = 0; s < k->n_stores; s++)
        if ((mask >> k->stores[s].buf & 1) && k->stores[s].phase >= p0 && k->stores[s].phase < p1) return true;
    return false;
}

/* The OP expressions below expression i, i included (at least: it stops counting at 2). */
static int op_count(const dc_kir *k, int i) {
    if (k->exprs[i].kind != DC_KIR_OP) return 0;
    int n = 1;
    for (int a = 0; a < 3 && n < 2; a++)
        if (k->exprs[i].arg[a] >= 0) n += op_count(k, k->exprs[i].arg[a]);
    return n;
}

/* Which expressions a later pass over the inner space takes from a stash filled by an earlier
 * one instead of computing again (softmax's exp, a norm backward's activation derivative):
 * those of two or more operations that several non-per-row phases evaluate and whose loads no
 * phase in between stores to, largest first, within STASH_BYTES. Stash slots: one vector per
 * body of a pass, allocas in the entry block. */
static void plan_stashes(kx *c) {
    const dc_kir *k = c->k;
    int64_t slots = 1;
    for (int d = 0; d < c->vaxis; d++) slots *= k->inner[d];
    int64_t len = k->inner[c->vaxis];
    slots *= !c->L ? (len + c->x->lanes - 1) / c->x->lanes : c->L == len ? 1 : len;
    int64_t bytes = slots * c->x->lanes * 4, used = 0;
    bool *need = malloc((size_t)k->n_exprs + 1);
    int *first = malloc(((size_t)k->n_exprs + 1) * sizeof *first);
    uint32_t *loads = malloc(((size_t)k->n_exprs + 1) * sizeof *loads); /* the buffers each reads, below it */
    if (!need || !first || !loads) abort(); /* out of memory */
    for (int i = 0; i < k->n_exprs; i++) {
        const dc_kir_expr *e = &k->exprs[i];
        c->stash_phase[i] = first[i] = -1;
        loads[i] = e->kind == DC_KIR_LOAD ? (uint32_t)1 << e->buf : 0;
        for (int a = 0; a < 3; a++)
            if (e->arg[a] >= 0) loads[i] |= loads[e->arg[a]];
    }
    for (int p = 0; p < k->n_phases; p++) {
        if (k->phases[p].per_row) continue;
        phase_needs(c, p, need);
        for (int i = k->n_exprs - 1; i >= 0; i--) {
            if (!need[i]) continue;
            if (first[i] < 0) {
                first[i] = p;
                continue;
            }
            if (c->stash_phase[i] >= 0 || used + bytes > STASH_BYTES || op_count(k, i) < 2 ||
                stored_in(k, loads[i], first[i], p))
                continue;
            c->stash_phase[i] = first[i];
            used += bytes;
            phase_needs(c, p, need); /* what is below i is no longer needed here */
        }
    }
    for (int i = 0; i < k->n_exprs; i++)
        if (c->stash_phase[i] >= 0)
            c->stash[i] = LLVMBuildArrayAlloca(c->x->b, dc_lx_type(elem_type(c, k->exprs[i].dtype), c->x->lanes),
                                               i64c(c, slots), "");
    free(need);
    free(first);
    free(loads);
}

/* Prefetching: when a kernel makes two or more passes over the inner space, its last pass
 * prefetches the loads of its first (those an inner index moves, vector or broadcast, not
 * checked) at the next row: a row's first pass waits on memory, its later passes compute on
 * what the first brought into cache. */
static void plan_prefetch(kx *c) {
    const dc_kir *k = c->k;
    int first = -1, last = -1;
    for (int p = 0; p < k->n_phases; p++)
        if (!k->phases[p].per_row) last = p, first = first < 0 ? p : first;
    if (first == last) return;
    bool *need = malloc((size_t)k->n_exprs + 1);
    if (!need) abort(); /* out of memory */
    phase_needs(c, first, need);
    bool any = false;
    for (int i = 0; i < k->n_exprs; i++) {
        const dc_kir_expr *e = &k->exprs[i];
        c->fetch[i] = need[i] && e->kind == DC_KIR_LOAD && e->arg[0] < 0 && e->arg[1] < 0 &&
                      !body_invariant(c, &e->map) && access_of(c, false, &e->map, c->x->lanes) != ACC_GATHER;
        any = any || c->fetch[i];
    }
    free(need);
    if (any) c->fetch_phase = last;
}

static LLVMValueRef entry_alloca(kx *c, LLVMTypeRef t) { return LLVMBuildAlloca(c->x->b, t, ""); }

void dc_lx_emit_kernel(dc_lx *x, const dc_kir *k, const char *name) {
    kx c = { .x = x, .k = k };
    LLVMTypeRef params[3] = { x->ptr, x->i64, x->i64 };
    LLVMTypeRef ft = LLVMFunctionType(LLVMVoidTypeInContext(x->ctx), params, 3, 0);
    c.fn = LLVMAddFunction(x->mod, name, ft);
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(c.fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(x->ctx, nounwind, 0));
    LLVMPositionBuilderAtEnd(x->b, LLVMAppendBasicBlockInContext(x->ctx, c.fn, "entry"));
    c.vec_inner = k->inner_rank > 0;
    c.vaxis = c.vec_inner ? k->inner_rank - 1 : k->outer_rank - 1;
    c.oaxis = k->outer_rank - 1;
    c.results = calloc((size_t)k->n_reduces + 1, sizeof *c.results);
    c.accs = calloc((size_t)k->n_reduces * ACC_SETS + 1, sizeof *c.accs);
    c.memo = calloc((size_t)k->n_exprs + 1, sizeof *c.memo);
    c.hoisted = calloc((size_t)k->n_exprs + 1, sizeof *c.hoisted);
    c.stash_phase = calloc((size_t)k->n_exprs + 1, sizeof *c.stash_phase);
    c.stash = calloc((size_t)k->n_exprs + 1, sizeof *c.stash);
    c.fetch = calloc((size_t)k->n_exprs + 1, sizeof *c.fetch);
    if (!c.results || !c.accs || !c.memo || !c.hoisted || !c.stash_phase || !c.stash || !c.fetch) abort(); /* out of memory */
    c.fetch_phase = -1;
    if (c.vec_inner) {
        c.L = choose_layout(&c);
        plan_stashes(&c);
        plan_prefetch(&c);
    } else {
        for (int i = 0; i < k->n_exprs; i++) c.stash_phase[i] = -1;
    }
    for (int r = 0; r < k->n_reduces; r++) {
        LLVMTypeRef vt = dc_lx_type(elem_type(&c, k->exprs[k->reduces[r].expr].dtype), x->lanes);
        c.results[r] = entry_alloca(&c, vt);
        for (int u = 0; u < ACC_SETS; u++) c.accs[r * ACC_SETS + u] = entry_alloca(&c, vt);
    }
    LLVMValueRef ovar = entry_alloca(&c, x->i64), tvar = entry_alloca(&c, x->i64);
    LLVMValueRef jvar = entry_alloca(&c, x->i64);
    LLVMValueRef args = LLVMGetParam(c.fn, 0);
    for (int bi = 0; bi < k->n_bufs; bi++) {
        LLVMValueRef idx = i64c(&c, bi);
        LLVMValueRef slot = LLVMBuildGEP2(x->b, x->ptr, args, &idx, 1, "");
        c.bufs[bi] = LLVMBuildLoad2(x->b, x->ptr, slot, "");
    }
    LLVMValueRef begin = LLVMGetParam(c.fn, 1), end = LLVMGetParam(c.fn, 2);
    if (c.L) emit_blocks(&c, begin, end, ovar, tvar, jvar);
    else if (c.vec_inner) emit_rows(&c, begin, end, ovar, tvar, jvar);
    else emit_runs(&c, begin, end, ovar, jvar);
    LLVMBuildRetVoid(x->b);
    free(c.results);
    free(c.accs);
    free(c.memo);
    free(c.hoisted);
    free(c.stash_phase);
    free(c.stash);
    free(c.fetch);
}
