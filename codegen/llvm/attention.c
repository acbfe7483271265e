/* attention.c — flash-attention kernels in LLVM IR (codegen.h: dc_attn_spec, the attention op
 * of ops/attention.c), every size compiled in.
 *
 * Forward, one work item per (b, h, query block of bq rows): for each key block of bk keys
 * (blocks wholly above the causal diagonal skipped), the logits tile S = scale q k^T + bias,
 * masked to -inf, then the online softmax per row (running max m, a vector of running sums l,
 * the output accumulator rescaled by exp(m_old - m_new)), then O += P v. At the end out = O / l
 * and lse = m + log l (a row with every key masked: out 0, lse -inf). A key is masked where
 * the causal mask or a bias of -inf says so, whatever q . k is (ops/attention.c). No [Sq, Sk] tensor
 * exists: the tiles live on the thread's stack.
 *
 * Backward, one work item per (b, h): delta = rowsum(dout * out) for the head's rows, dq
 * zeroed; then for each key block (k and v of the block packed transposed on the stack, dk
 * and dv accumulators zeroed) and each query block at or below the diagonal: P = exp(S - lse)
 * recomputed, dS = scale P (dout v^T - delta), dv += P^T dout, dk += dS^T q, dq += dS k. Every
 * sum runs in one fixed order inside one work item, so results are bitwise the same for any
 * split of the items over threads.
 *
 * The contractions are register-tiled loops (run_job): mr rows x nc vectors of accumulators,
 * per step k one vector load per column vector and one broadcast scalar per row, the columns
 * in chunks whose width and mr need the fewest loads (the accumulators, the loaded vectors and
 * the broadcast fit the 32 vector registers of AVX-512). A head size under a vector (D = 8
 * with 16 lanes) would leave lanes idle where it is the column count, so there the keys fill
 * the lanes: P v and dq = dS k are dot jobs (run_dot: one accumulator vector per output,
 * summed over its lanes at the end; the forward reads v transposed per key block, as k), and
 * dv, dk are accumulated transposed ([Dv][bk]: dout^T P, q^T dS). Sums use fused
 * multiply-adds; the row sums, maxima and lane sums run in a fixed order (the lane tree). exp
 * and log are vmath.c's. */
#include <math.h>
#include <stdlib.h>

#include "codegen/codegen.h"
#include "codegen/llvm/llvm_internal.h"

#define MAX_ACC 32  /* accumulator vectors of one tile */
#define MAX_NV 32   /* vectors per row: D and Dv up to 32 * lanes */

typedef struct {
    dc_lx *x;
    const dc_attn_spec *s;
    LLVMValueRef fn;
    LLVMBuilderRef eb;           /* the entry block's builder: allocas */
    int W;                       /* lanes */
    LLVMTypeRef vt;
    int64_t bkp, dp, dvp;        /* bk, D, Dv rounded up to W */
    LLVMValueRef acc[MAX_ACC];   /* accumulator vectors (allocas) */
    /* the run-time sizes (dc_attn_spec's, read from args[0] at the kernel's start) */
    LLVMValueRef H, sq, sk, scale, bst[3];
    LLVMValueRef nqb, nkb;       /* query and key blocks */
} ax;

/* ---- small builders -------------------------------------------------------------------- */

static int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

static LLVMValueRef i64c(ax *a, int64_t v) { return dc_lx_i64c(a->x, v); }
static LLVMValueRef add(ax *a, LLVMValueRef u, LLVMValueRef v) { return LLVMBuildAdd(a->x->b, u, v, ""); }
static LLVMValueRef mul(ax *a, LLVMValueRef u, LLVMValueRef v) { return LLVMBuildMul(a->x->b, u, v, ""); }
static LLVMValueRef addc(ax *a, LLVMValueRef u, int64_t c) { return c ? add(a, u, i64c(a, c)) : u; }
static LLVMValueRef mulc(ax *a, LLVMValueRef u, int64_t c) { return c == 1 ? u : mul(a, u, i64c(a, c)); }
static LLVMValueRef fmul(ax *a, LLVMValueRef u, LLVMValueRef v) { return LLVMBuildFMul(a->x->b, u, v, ""); }
static LLVMValueRef fadd(ax *a, LLVMValueRef u, LLVMValueRef v) { return LLVMBuildFAdd(a->x->b, u, v, ""); }
static LLVMValueRef fsub(ax *a, LLVMValueRef u, LLVMValueRef v) { return LLVMBuildFSub(a->x->b, u, v, ""); }
static LLVMValueRef sel(ax *a, LLVMValueRef c, LLVMValueRef u, LLVMValueRef v) {
    return LLVMBuildSelect(a->x->b, c, u, v, "");
}
static LLVMValueRef fcmp(ax *a, LLVMRealPredicate p, LLVMValueRef u, LLVMValueRef v) {
    return LLVMBuildFCmp(a->x->b, p, u, v, "");
}
static LLVMValueRef icmp(ax *a, LLVMIntPredicate p, LLVMValueRef u, LLVMValueRef v) {
    return LLVMBuildICmp(a->x->b, p, u, v, "");
}
static LLVMValueRef smin(ax *a, LLVMValueRef u, LLVMValueRef v) { return sel(a, icmp(a, LLVMIntSLT, u, v), u, v); }
static LLVMValueRef fconst(ax *a, float v) { return LLVMConstReal(a->x->f32, v); }
static LLVMValueRef vconst(ax *a, float v) { return dc_lx_f32(a->x, v, a->W); }
static LLVMValueRef splat(ax *a, LLVMValueRef v) { return dc_lx_splat(a->x, v, a->W); }

static LLVMValueRef gep(ax *a, LLVMValueRef p, LLVMValueRef off) { return dc_lx_gep(a->x, p, off); }

static LLVMValueRef stack(ax *a, LLVMTypeRef t, int64_t n) { return dc_lx_stack(a->x, a->eb, t, n); }

static LLVMValueRef sload(ax *a, LLVMValueRef p, LLVMValueRef off) { return dc_lx_sload(a->x, p, off); }

static void sstore(ax *a, LLVMValueRef p, LLVMValueRef off, LLVMValueRef v) { dc_lx_sstore(a->x, p, off, v); }

static LLVMValueRef vload(ax *a, LLVMValueRef p, LLVMValueRef off, LLVMValueRef mask) {
    return dc_lx_vload(a->x, a->vt, p, off, mask);
}
static void vstore(ax *a, LLVMValueRef p, LLVMValueRef off, LLVMValueRef v, LLVMValueRef mask) {
    dc_lx_vstore(a->x, p, off, v, mask);
}
static LLVMValueRef vfma(ax *a, LLVMValueRef u, LLVMValueRef v, LLVMValueRef w) { return dc_lx_fma(a->x, u, v, w); }

/* the lanes [0, n) of a vector, as a constant mask; NULL when that is every lane */
static LLVMValueRef first_lanes(ax *a, int64_t n) {
    if (n % a->W == 0) return NULL;
    LLVMValueRef e[64];
    for (int i = 0; i < a->W; i++) e[i] = LLVMConstInt(a->x->i1, i < n % a->W, 0);
    return LLVMConstVector(e, (unsigned)a->W);
}

/* the mask of the last of nv vectors covering n columns (NULL for the others) */
static LLVMValueRef tail(ax *a, int n, int nv, int64_t cols) { return n == nv - 1 ? first_lanes(a, cols) : NULL; }

/* v's lanes combined by f (sum or max) in a fixed tree order (the xor butterfly): lane 0 */
static LLVMValueRef lane_tree(ax *a, LLVMValueRef v, LLVMValueRef (*f)(dc_lx *, LLVMValueRef, LLVMValueRef)) {
    for (int h = a->W / 2; h >= 1; h /= 2) v = f(a->x, v, dc_lx_lane_xor(a->x, v, h));
    return LLVMBuildExtractElement(a->x->b, v, i64c(a, 0), "");
}

static LLVMValueRef fadd_x(dc_lx *x, LLVMValueRef u, LLVMValueRef v) { return LLVMBuildFAdd(x->b, u, v, ""); }
static LLVMValueRef lane_sum(ax *a, LLVMValueRef v) { return lane_tree(a, v, fadd_x); }
/* u > v ? u : v, one vmaxps: a NaN logit is passed over here, and the row it is in still
 * ends NaN, as its exp(s - m) is NaN */
static LLVMValueRef max_x(dc_lx *x, LLVMValueRef u, LLVMValueRef v) {
    return LLVMBuildSelect(x->b, LLVMBuildFCmp(x->b, LLVMRealOGT, u, v, ""), u, v, "");
}
static LLVMValueRef lane_max(ax *a, LLVMValueRef v) { return lane_tree(a, v, max_x); }

/* v[0] f v[1] f ... v[n-1] combined pairwise (a tree of depth log2 n, in a fixed order) */
static LLVMValueRef tree(ax *a, LLVMValueRef *v, int n, LLVMValueRef (*f)(dc_lx *, LLVMValueRef, LLVMValueRef)) {
    LLVMValueRef t[MAX_NV];
    for (int i = 0; i < n; i++) t[i] = v[i];
    while (n > 1) {
        int h = n / 2;
        for (int i = 0; i < h; i++) t[i] = f(a->x, t[2 * i], t[2 * i + 1]);
        if (n % 2) t[h] = t[n - 1];
        n = h + n % 2;
    }
    return t[0];
}

/* ---- loops ------------------------------------------------------------------------------- */

/* for (i = lo; i + need <= hi; i += step): opens the body and returns i there */
static LLVMValueRef for_open(ax *a, dc_lx_loop *l, LLVMValueRef lo, LLVMValueRef hi, int64_t need) {
    LLVMValueRef var = stack(a, a->x->i64, 1);
    dc_lx_loop_open(a->x, a->fn, l, var, lo);
    LLVMValueRef i = LLVMBuildLoad2(a->x->b, a->x->i64, var, "");
    dc_lx_loop_test(a->x, a->fn, l, icmp(a, LLVMIntSLE, addc(a, i, need), hi));
    return i;
}

static void for_close(ax *a, dc_lx_loop *l, int64_t step) { dc_lx_loop_close(a->x, l, i64c(a, step)); }

/* ---- register tiles ---------------------------------------------------------------------- */

/* What a tile job ends with: store the accumulators; or the logits epilogue, which stores
 * the masked logits (LOGITS) or the probabilities exp(s - lse) (PROBS); or dS = scale P
 * (acc - delta) (DS). */
typedef enum { FIN_STORE, FIN_LOGITS, FIN_PROBS, FIN_DS } fin_kind;

/* acc[i][n] (+)= sum_{k < kn} W[i][k] R[k][n] over rows [r0, r0 + mr): W[i][k] is the scalar
 * w[i*wr + k*wk], R[k][n] the vector r[k*rk + n*W] (its last vector masked to cols); the
 * accumulators start at 0 or at acc_base[i*acc_rs + n*W] and end as fin says. */
typedef struct {
    LLVMValueRef w, r, kn;
    int64_t wr, wk, cols;
    LLVMValueRef rk;
    int nv;
    bool load_init;
    LLVMValueRef acc_base;       /* FIN_STORE and load_init: where row i's accumulators live */
    int64_t acc_rs, acc_cols;    /* its row stride, and the columns a row holds (masked store) */
    fin_kind fin;
    /* the logits epilogues: the tile rows are queries q0 + i, keys j0 + column */
    LLVMValueRef q0, j0, bias;   /* bias: the bias at (b, h) (NULL: none) */
    LLVMValueRef out;            /* LOGITS / PROBS / DS: the [rows][bkp] tile written */
    LLVMValueRef lse, delta;     /* PROBS: lse of the head; DS: delta of the head (by query) */
    LLVMValueRef probs;          /* DS: the P tile read */
} job;

/* how many rows a tile of nc vectors per row takes: accumulators, the loaded vectors and the
 * broadcast scalar in 32 registers */
static int tile_rows(int nc) {
    int mr = (30 - nc) / nc;
    return mr < 1 ? 1 : mr > 12 ? 12 : mr;
}

/* s (the accumulated q.k of query qi, vector n) scaled, biased and masked */
static LLVMValueRef logits(ax *a, const job *j, LLVMValueRef acc, LLVMValueRef qi, int n) {
    const dc_attn_spec *s = a->s;
    dc_lx *x = a->x;
    LLVMValueRef v = fmul(a, acc, splat(a, a->scale));
    LLVMValueRef c0 = addc(a, j->j0, (int64_t)n * a->W);
    LLVMValueRef col = add(a, splat(a, c0), dc_lx_iota64(x, a->W));
    LLVMValueRef valid = icmp(a, LLVMIntSLT, col, splat(a, a->sk));
    if (s->causal) valid = LLVMBuildAnd(x->b, valid, icmp(a, LLVMIntSLE, col, splat(a, qi)), "");
    if (j->bias) {
        LLVMValueRef row = mul(a, qi, a->bst[2]);
        LLVMValueRef b = s->bias_last_broadcast ? splat(a, sload(a, j->bias, row))
                                                : vload(a, j->bias, add(a, row, c0),
                                                        icmp(a, LLVMIntSLT, col, splat(a, a->sk)));
        v = fadd(a, v, b);
        valid = LLVMBuildAnd(x->b, valid, fcmp(a, LLVMRealUNE, b, vconst(a, -INFINITY)), ""); /* a mask */
    }
    return sel(a, valid, v, vconst(a, -INFINITY));
}

/* exp(v - m), exactly 0 where v is -inf */
static LLVMValueRef exp_from(ax *a, LLVMValueRef v, LLVMValueRef m) {
    LLVMValueRef e = dc_lx_exp_nonpos(a->x, fsub(a, v, splat(a, m)), a->W);
    return sel(a, fcmp(a, LLVMRealOEQ, v, vconst(a, -INFINITY)), vconst(a, 0.0f), e);
}

/* the job's vectors [n0, n0 + nc) of rows [r0, r0 + mr) */
static void tile(ax *a, const job *j, LLVMValueRef r0, int mr, int n0, int nc) {
    int nv = j->nv;
    for (int i = 0; i < mr; i++)
        for (int n = n0; n < n0 + nc; n++) {
            LLVMValueRef init = vconst(a, 0.0f);
            if (j->load_init)
                init = vload(a, j->acc_base, addc(a, mulc(a, addc(a, r0, i), j->acc_rs), (int64_t)n * a->W),
                             tail(a, n, nv, j->acc_cols));
            LLVMBuildStore(a->x->b, init, a->acc[i * nc + n - n0]);
        }
    LLVMValueRef w = gep(a, j->w, mulc(a, r0, j->wr));
    dc_lx_loop l;
    LLVMValueRef k = for_open(a, &l, i64c(a, 0), j->kn, 1);
    LLVMValueRef rv[MAX_NV];
    for (int n = n0; n < n0 + nc; n++)
        rv[n - n0] = vload(a, j->r, addc(a, mul(a, k, j->rk), (int64_t)n * a->W), tail(a, n, nv, j->cols));
    for (int i = 0; i < mr; i++) {
        LLVMValueRef ws = splat(a, sload(a, w, addc(a, mulc(a, k, j->wk), i * j->wr)));
        for (int n = 0; n < nc; n++) {
            LLVMValueRef p = a->acc[i * nc + n];
            LLVMBuildStore(a->x->b, vfma(a, ws, rv[n], LLVMBuildLoad2(a->x->b, a->vt, p, "")), p);
        }
    }
    for_close(a, &l, 1);
    for (int i = 0; i < mr; i++) {
        LLVMValueRef row = addc(a, r0, i);
        LLVMValueRef qi = j->q0 ? add(a, j->q0, row) : NULL;
        for (int n = n0; n < n0 + nc; n++) {
            LLVMValueRef v = LLVMBuildLoad2(a->x->b, a->vt, a->acc[i * nc + n - n0], "");
            LLVMValueRef at = addc(a, mulc(a, row, a->bkp), (int64_t)n * a->W);
            switch (j->fin) {
            case FIN_STORE:
                vstore(a, j->acc_base, addc(a, mulc(a, row, j->acc_rs), (int64_t)n * a->W), v, tail(a, n, nv, j->acc_cols));
                break;
            case FIN_LOGITS:
                vstore(a, j->out, at, logits(a, j, v, qi, n), NULL);
                break;
            case FIN_PROBS:
                vstore(a, j->out, at, exp_from(a, logits(a, j, v, qi, n), sload(a, j->lse, qi)), NULL);
                break;
            case FIN_DS: {
                LLVMValueRef d = fsub(a, v, splat(a, sload(a, j->delta, qi)));
                LLVMValueRef p = vload(a, j->probs, at, NULL);
                vstore(a, j->out, at, fmul(a, fmul(a, p, d), splat(a, a->scale)), NULL);
                break;
            }
            }
        }
    }
}

/* rows [0, nrows) (at most block) with tiles of mr rows, then single rows: mr is the largest
 * count up to max_rows that divides block, so full blocks have no single rows */
static int divisor_rows(int max_rows, int64_t block) {
    int mr = max_rows;
    while (block % mr) mr--;
    return mr;
}

/* The column chunk of a job of nv vectors per row: each chunk of c vectors runs in tiles of
 * mr = divisor_rows(tile_rows(c)) rows, loading c vectors and broadcasting mr scalars for
 * c * mr fused multiply-adds per step; the chunk width with the fewest loads over the row is
 * taken (the widest of equals). */
static int chunk_of(int nv, int64_t block) {
    int best = nv;
    double best_loads = 1e30;
    for (int c = nv; c >= 1; c--) {
        double loads = 0;
        for (int n0 = 0; n0 < nv; n0 += c) {
            int w = nv - n0 < c ? nv - n0 : c, mr = divisor_rows(tile_rows(w), block);
            loads += (double)w / mr + 1;
        }
        if (loads < best_loads - 1e-9) best_loads = loads, best = c;
    }
    return best;
}

/* the job over rows [0, nrows) (at most block), chunk by chunk of its columns */
static void run_job(ax *a, const job *j, LLVMValueRef nrows, int64_t block) {
    int c = chunk_of(j->nv, block);
    for (int n0 = 0; n0 < j->nv; n0 += c) {
        int nc = j->nv - n0 < c ? j->nv - n0 : c, mr = divisor_rows(tile_rows(nc), block);
        dc_lx_loop l;
        LLVMValueRef r0 = for_open(a, &l, i64c(a, 0), nrows, mr);
        tile(a, j, r0, mr, n0, nc);
        for_close(a, &l, mr);
        if (mr == 1) continue;
        LLVMValueRef rest = LLVMBuildLoad2(a->x->b, a->x->i64, l.var, "");
        dc_lx_loop lt;
        LLVMValueRef r = for_open(a, &lt, rest, nrows, 1);
        tile(a, j, r, 1, n0, nc);
        for_close(a, &lt, 1);
    }
}

/* out[i][c] += sum_k W[i][k] R[c][k] for rows i in [0, nrows), c < nc, over the keys of the
 * first nkv vectors: W's rows at w + i*wr, R's at r + c*rr, both contiguous along the keys and
 * zero past them; out's rows ors apart. For head sizes under a vector (a tile of them would
 * leave lanes idle): one accumulator vector per (row, column) in a tile of mr rows, the lanes
 * summed at the end (lane_sum). */
typedef struct {
    LLVMValueRef w, r, nkv, out;
    int64_t wr, rr, ors;
    int nc;
} dot_job;

static void dot_tile(ax *a, const dot_job *j, LLVMValueRef r0, int mr) {
    int nc = j->nc;
    for (int i = 0; i < mr * nc; i++) LLVMBuildStore(a->x->b, vconst(a, 0.0f), a->acc[i]);
    LLVMValueRef w = gep(a, j->w, mulc(a, r0, j->wr));
    dc_lx_loop l;
    LLVMValueRef kv = for_open(a, &l, i64c(a, 0), j->nkv, 1);
    LLVMValueRef k = mulc(a, kv, a->W), rv[MAX_NV], wv[MAX_ACC];
    for (int c = 0; c < nc; c++) rv[c] = vload(a, j->r, addc(a, k, c * j->rr), NULL);
    for (int i = 0; i < mr; i++) wv[i] = vload(a, w, addc(a, k, i * j->wr), NULL);
    for (int i = 0; i < mr; i++)
        for (int c = 0; c < nc; c++) {
            LLVMValueRef p = a->acc[i * nc + c];
            LLVMBuildStore(a->x->b, vfma(a, wv[i], rv[c], LLVMBuildLoad2(a->x->b, a->vt, p, "")), p);
        }
    for_close(a, &l, 1);
    for (int i = 0; i < mr; i++)
        for (int c = 0; c < nc; c++) {
            LLVMValueRef at = addc(a, mulc(a, addc(a, r0, i), j->ors), c);
            LLVMValueRef sum = lane_sum(a, LLVMBuildLoad2(a->x->b, a->vt, a->acc[i * nc + c], ""));
            sstore(a, j->out, at, fadd(a, sload(a, j->out, at), sum));
        }
}

static void run_dot(ax *a, const dot_job *j, LLVMValueRef nrows, int64_t block) {
    int most = (31 - j->nc) / (j->nc + 1);
    if (most * j->nc > MAX_ACC) most = MAX_ACC / j->nc;
    int mr = divisor_rows(most < 1 ? 1 : most, block);
    dc_lx_loop l;
    LLVMValueRef r0 = for_open(a, &l, i64c(a, 0), nrows, mr);
    dot_tile(a, j, r0, mr);
    for_close(a, &l, mr);
    if (mr == 1) return;
    LLVMValueRef rest = LLVMBuildLoad2(a->x->b, a->x->i64, l.var, "");
    dc_lx_loop lt;
    LLVMValueRef r = for_open(a, &lt, rest, nrows, 1);
    dot_tile(a, j, r, 1);
    for_close(a, &lt, 1);
}

/* rows [0, n) of a [n][cols] buffer with row stride rs, every vector set to 0 */
static void zero_rows(ax *a, LLVMValueRef p, LLVMValueRef n, int64_t rs, int64_t cols) {
    int nv = (int)((cols + a->W - 1) / a->W);
    dc_lx_loop l;
    LLVMValueRef r = for_open(a, &l, i64c(a, 0), n, 1);
    for (int v = 0; v < nv; v++) vstore(a, p, addc(a, mulc(a, r, rs), (int64_t)v * a->W), vconst(a, 0.0f), tail(a, v, nv, cols));
    for_close(a, &l, 1);
}

/* ---- the kernels ------------------------------------------------------------------------- */

static LLVMValueRef arg(ax *a, int i) {
    LLVMValueRef idx = i64c(a, i);
    LLVMValueRef slot = LLVMBuildGEP2(a->x->b, a->x->ptr, LLVMGetParam(a->fn, 0), &idx, 1, "");
    return LLVMBuildLoad2(a->x->b, a->x->ptr, slot, "");
}

/* the bias at (b, h) of head bh, or NULL */
static LLVMValueRef bias_at(ax *a, LLVMValueRef bias, LLVMValueRef bh) {
    if (!bias) return NULL;
    LLVMValueRef b = LLVMBuildSDiv(a->x->b, bh, a->H, ""), h = LLVMBuildSRem(a->x->b, bh, a->H, "");
    return gep(a, bias, add(a, mul(a, b, a->bst[0]), mul(a, h, a->bst[1])));
}

/* the run-time sizes from args[0]: int64 H, Sq, Sk, the bias strides over B, H, Sq, then the
 * f32 scale in the next 8 bytes (dc_attn_spec's order) */
static void load_sizes(ax *a) {
    LLVMValueRef p = arg(a, 0);
    LLVMValueRef *dst[6] = { &a->H, &a->sq, &a->sk, &a->bst[0], &a->bst[1], &a->bst[2] };
    for (int i = 0; i < 6; i++) {
        LLVMValueRef idx = i64c(a, i);
        *dst[i] = LLVMBuildLoad2(a->x->b, a->x->i64, LLVMBuildGEP2(a->x->b, a->x->i64, p, &idx, 1, ""), "");
    }
    LLVMValueRef six = i64c(a, 6);
    a->scale = LLVMBuildLoad2(a->x->b, a->x->f32, LLVMBuildGEP2(a->x->b, a->x->i64, p, &six, 1, ""), "");
    a->nqb = LLVMBuildSDiv(a->x->b, addc(a, a->sq, a->s->bq - 1), i64c(a, a->s->bq), "");
    a->nkb = LLVMBuildSDiv(a->x->b, addc(a, a->sk, a->s->bk - 1), i64c(a, a->s->bk), "");
}

/* a head size under a vector: its products run as dot jobs or with the output transposed, so
 * that the keys fill the lanes */
static bool small(const ax *a, int64_t n) { return n < a->W; }

/* the key vectors that hold nk keys */
static LLVMValueRef key_vectors(ax *a, LLVMValueRef nk) { return LLVMBuildSDiv(a->x->b, addc(a, nk, a->W - 1), i64c(a, a->W), ""); }

static void forward(ax *a) {
    const dc_attn_spec *s = a->s;
    dc_lx *x = a->x;
    int ai = 1;
    LLVMValueRef q = arg(a, ai++), k = arg(a, ai++), v = arg(a, ai++);
    (void)k;
    LLVMValueRef bias = s->bias ? arg(a, ai++) : NULL;
    bool dot_pv = small(a, s->dv);
    LLVMValueRef kt = arg(a, ai++), vt = dot_pv ? arg(a, ai++) : NULL, out = arg(a, ai++), lse = arg(a, ai++);
    int nvk = (int)(a->bkp / a->W), nvv = (int)(a->dvp / a->W);
    LLVMValueRef S = stack(a, x->f32, s->bq * a->bkp), O = stack(a, x->f32, s->bq * a->dvp);
    /* per row: the running max M, the block's new max Mn, the max subtracted Ms (0 for -inf),
     * the rescale factor A (vectors of rows: bq rounded up), the running sums L */
    int64_t bqp = round_up(s->bq, a->W);
    LLVMValueRef M = stack(a, x->f32, bqp), Mn = stack(a, x->f32, bqp), Ms = stack(a, x->f32, bqp);
    LLVMValueRef A = stack(a, x->f32, bqp), L = stack(a, a->vt, s->bq);
    dc_lx_loop li;
    LLVMValueRef t = for_open(a, &li, LLVMGetParam(a->fn, 1), LLVMGetParam(a->fn, 2), 1);
    LLVMValueRef bh = LLVMBuildSDiv(x->b, t, a->nqb, "");
    LLVMValueRef i0 = mulc(a, LLVMBuildSRem(x->b, t, a->nqb, ""), s->bq);
    LLVMValueRef nq = smin(a, i64c(a, s->bq), LLVMBuildSub(x->b, a->sq, i0, ""));
    LLVMValueRef row0 = add(a, mul(a, bh, a->sq), i0); /* the block's first row in [B*H*Sq] */
    dc_lx_loop lr;
    LLVMValueRef r = for_open(a, &lr, i64c(a, 0), nq, 1);
    sstore(a, M, r, fconst(a, -INFINITY));
    LLVMBuildStore(x->b, vconst(a, 0.0f), LLVMBuildGEP2(x->b, a->vt, L, &r, 1, ""));
    for_close(a, &lr, 1);
    zero_rows(a, O, nq, a->dvp, a->dvp);
    LLVMValueRef kb_end = a->nkb;
    if (s->causal) /* key blocks up to the one holding key i0 + nq - 1 */
        kb_end = smin(a, kb_end, addc(a, LLVMBuildSDiv(x->b, addc(a, add(a, i0, nq), -1), i64c(a, s->bk), ""), 1));
    dc_lx_loop lk;
    LLVMValueRef kb = for_open(a, &lk, i64c(a, 0), kb_end, 1);
    LLVMValueRef j0 = mulc(a, kb, s->bk);
    LLVMValueRef nk = smin(a, i64c(a, s->bk), LLVMBuildSub(x->b, a->sk, j0, ""));
    job js = { .w = gep(a, q, mulc(a, row0, s->d)), .wr = s->d, .wk = 1,
               .r = gep(a, kt, mulc(a, add(a, mul(a, bh, a->nkb), kb), s->d * s->bk)), .rk = i64c(a, s->bk), .cols = a->bkp, .nv = nvk,
               .kn = i64c(a, s->d), .fin = FIN_LOGITS, .q0 = i0, .j0 = j0, .bias = bias_at(a, bias, bh), .out = S };
    run_job(a, &js, nq, s->bq);
    /* the online softmax in three passes over the block's rows, so that no row waits on
     * another: the rows' new maxima; then, a vector of rows at a time, the rescale factors
     * alpha = exp(m_old - m_new); then the probabilities, their sums and O rescaled */
    LLVMValueRef ninf = fconst(a, -INFINITY), vninf = vconst(a, -INFINITY);
    dc_lx_loop ls;
    r = for_open(a, &ls, i64c(a, 0), nq, 1);
    LLVMValueRef sv[MAX_NV];
    for (int n = 0; n < nvk; n++) sv[n] = vload(a, S, addc(a, mulc(a, r, a->bkp), (int64_t)n * a->W), NULL);
    sstore(a, Mn, r, dc_lx_maxf(x, sload(a, M, r), lane_max(a, tree(a, sv, nvk, max_x))));
    for_close(a, &ls, 1);
    dc_lx_loop la;
    r = for_open(a, &la, i64c(a, 0), nq, 1);
    LLVMValueRef m_old = vload(a, M, r, NULL), m_new = vload(a, Mn, r, NULL);
    LLVMValueRef m_safe = sel(a, fcmp(a, LLVMRealOEQ, m_new, vninf), vconst(a, 0.0f), m_new);
    vstore(a, Ms, r, m_safe, NULL);
    vstore(a, A, r, sel(a, fcmp(a, LLVMRealOEQ, m_old, vninf), vconst(a, 0.0f), dc_lx_exp_nonpos(x, fsub(a, m_old, m_safe), a->W)), NULL);
    vstore(a, M, r, m_new, NULL);
    for_close(a, &la, a->W);
    dc_lx_loop lp;
    r = for_open(a, &lp, i64c(a, 0), nq, 1);
    LLVMValueRef m_row = sload(a, Ms, r), alpha = splat(a, sload(a, A, r)), pv[MAX_NV];
    for (int n = 0; n < nvk; n++) {
        LLVMValueRef at = addc(a, mulc(a, r, a->bkp), (int64_t)n * a->W);
        pv[n] = exp_from(a, vload(a, S, at, NULL), m_row);
        vstore(a, S, at, pv[n], NULL);
    }
    LLVMValueRef lrow = LLVMBuildGEP2(x->b, a->vt, L, &r, 1, "");
    LLVMBuildStore(x->b, vfma(a, LLVMBuildLoad2(x->b, a->vt, lrow, ""), alpha, tree(a, pv, nvk, fadd_x)), lrow);
    for (int n = 0; n < nvv; n++) {
        LLVMValueRef off = addc(a, mulc(a, r, a->dvp), (int64_t)n * a->W);
        vstore(a, O, off, fmul(a, vload(a, O, off, NULL), alpha), NULL);
    }
    for_close(a, &lp, 1);
    LLVMValueRef kblock = add(a, mul(a, bh, a->nkb), kb);
    if (dot_pv) {
        dot_job jv = { .w = S, .wr = a->bkp, .r = gep(a, vt, mulc(a, kblock, s->dv * s->bk)), .rr = s->bk,
                       .nkv = key_vectors(a, nk), .out = O, .ors = a->dvp, .nc = (int)s->dv };
        run_dot(a, &jv, nq, s->bq);
    } else {
        job jv = { .w = S, .wr = a->bkp, .wk = 1, .r = gep(a, v, mulc(a, add(a, mul(a, bh, a->sk), j0), s->dv)),
                   .rk = i64c(a, s->dv), .cols = s->dv, .nv = nvv, .kn = nk, .load_init = true, .acc_base = O,
                   .acc_rs = a->dvp, .acc_cols = a->dvp, .fin = FIN_STORE };
        run_job(a, &jv, nq, s->bq);
    }
    for_close(a, &lk, 1);
    /* out = O / l, lse = m + log l */
    dc_lx_loop lf;
    r = for_open(a, &lf, i64c(a, 0), nq, 1);
    LLVMValueRef l = lane_sum(a, LLVMBuildLoad2(x->b, a->vt, LLVMBuildGEP2(x->b, a->vt, L, &r, 1, ""), ""));
    LLVMValueRef some = fcmp(a, LLVMRealOGT, l, fconst(a, 0.0f));
    LLVMValueRef inv = sel(a, some, LLVMBuildFDiv(x->b, fconst(a, 1.0f), l, ""), fconst(a, 0.0f));
    LLVMValueRef orow = mulc(a, add(a, row0, r), s->dv);
    for (int n = 0; n < nvv; n++)
        vstore(a, out, addc(a, orow, (int64_t)n * a->W),
               fmul(a, vload(a, O, addc(a, mulc(a, r, a->dvp), (int64_t)n * a->W), NULL), splat(a, inv)),
               tail(a, n, nvv, s->dv));
    sstore(a, lse, add(a, row0, r), sel(a, some, fadd(a, sload(a, M, r), dc_lx_log(x, l, 1)), ninf));
    for_close(a, &lf, 1);
    for_close(a, &li, 1);
}

/* dst[c][d] = src[(j0 + c) * cols + d] for c < nk, 0 for nk <= c < bkp (dst row stride bkp,
 * transposed: dst[d * bkp + c]) */
static void pack_transposed(ax *a, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef nk, int64_t cols) {
    dc_lx_loop ld, lc;
    LLVMValueRef d = for_open(a, &ld, i64c(a, 0), i64c(a, cols), 1);
    LLVMValueRef c = for_open(a, &lc, i64c(a, 0), i64c(a, a->bkp), 1);
    LLVMValueRef in = icmp(a, LLVMIntSLT, c, nk);
    LLVMValueRef cc = sel(a, in, c, i64c(a, 0));
    LLVMValueRef val = sel(a, in, sload(a, src, add(a, mulc(a, cc, cols), d)), fconst(a, 0.0f));
    sstore(a, dst, add(a, mulc(a, d, a->bkp), c), val);
    for_close(a, &lc, 1);
    for_close(a, &ld, 1);
}

/* dst's row krow (cols wide) from key c of the block's accumulator src: [bkp][cols rounded up
 * to a vector], or [cols][bkp] when transposed */
static void store_key_row(ax *a, LLVMValueRef dst, LLVMValueRef krow, LLVMValueRef src, LLVMValueRef c, int64_t cols,
                          bool transposed) {
    LLVMValueRef at = mulc(a, krow, cols);
    if (transposed) {
        for (int64_t e = 0; e < cols; e++) sstore(a, dst, addc(a, at, e), sload(a, src, addc(a, c, e * a->bkp)));
        return;
    }
    int nv = (int)(round_up(cols, a->W) / a->W);
    for (int n = 0; n < nv; n++)
        vstore(a, dst, addc(a, at, (int64_t)n * a->W), vload(a, src, addc(a, mulc(a, c, nv * a->W), (int64_t)n * a->W), NULL),
               tail(a, n, nv, cols));
}

static void backward(ax *a) {
    const dc_attn_spec *s = a->s;
    dc_lx *x = a->x;
    int ai = 1;
    LLVMValueRef q = arg(a, ai++), k = arg(a, ai++), v = arg(a, ai++);
    LLVMValueRef bias = s->bias ? arg(a, ai++) : NULL;
    LLVMValueRef out = arg(a, ai++), dout = arg(a, ai++), lse = arg(a, ai++), delta = arg(a, ai++);
    LLVMValueRef dq = arg(a, ai++), dk = arg(a, ai++), dv = arg(a, ai++);
    int nvk = (int)(a->bkp / a->W), nvd = (int)(a->dp / a->W), nvv = (int)(a->dvp / a->W);
    LLVMValueRef Kt = stack(a, x->f32, s->d * a->bkp), Vt = stack(a, x->f32, s->dv * a->bkp);
    LLVMValueRef P = stack(a, x->f32, s->bq * a->bkp), dS = stack(a, x->f32, s->bq * a->bkp);
    bool tk = small(a, s->d), tv = small(a, s->dv); /* dK, dV kept transposed: [D][bkp], [Dv][bkp] */
    LLVMValueRef dK = stack(a, x->f32, a->bkp * a->dp), dV = stack(a, x->f32, a->bkp * a->dvp);
    dc_lx_loop li;
    LLVMValueRef bh = for_open(a, &li, LLVMGetParam(a->fn, 1), LLVMGetParam(a->fn, 2), 1);
    LLVMValueRef hrow = mul(a, bh, a->sq); /* the head's first row in [B*H*Sq] */
    LLVMValueRef hkey = mul(a, bh, a->sk);
    /* delta = rowsum(dout * out) */
    dc_lx_loop lr;
    LLVMValueRef r = for_open(a, &lr, i64c(a, 0), a->sq, 1);
    LLVMValueRef off = mulc(a, add(a, hrow, r), s->dv), acc = NULL;
    for (int n = 0; n < nvv; n++) {
        LLVMValueRef o = addc(a, off, (int64_t)n * a->W);
        LLVMValueRef m = tail(a, n, nvv, s->dv);
        LLVMValueRef p = fmul(a, vload(a, dout, o, m), vload(a, out, o, m));
        acc = acc ? fadd(a, acc, p) : p;
    }
    sstore(a, delta, add(a, hrow, r), lane_sum(a, acc));
    for_close(a, &lr, 1);
    zero_rows(a, gep(a, dq, mulc(a, hrow, s->d)), a->sq, s->d, s->d);
    LLVMValueRef hbias = bias_at(a, bias, bh);
    dc_lx_loop lk;
    LLVMValueRef kb = for_open(a, &lk, i64c(a, 0), a->nkb, 1);
    LLVMValueRef j0 = mulc(a, kb, s->bk);
    LLVMValueRef nk = smin(a, i64c(a, s->bk), LLVMBuildSub(x->b, a->sk, j0, ""));
    pack_transposed(a, Kt, gep(a, k, mulc(a, add(a, hkey, j0), s->d)), nk, s->d);
    pack_transposed(a, Vt, gep(a, v, mulc(a, add(a, hkey, j0), s->dv)), nk, s->dv);
    if (tk) zero_rows(a, dK, i64c(a, s->d), a->bkp, a->bkp);
    else zero_rows(a, dK, i64c(a, a->bkp), a->dp, a->dp);
    if (tv) zero_rows(a, dV, i64c(a, s->dv), a->bkp, a->bkp);
    else zero_rows(a, dV, i64c(a, a->bkp), a->dvp, a->dvp);
    LLVMValueRef qb0 = s->causal ? LLVMBuildSDiv(x->b, j0, i64c(a, s->bq), "") : i64c(a, 0);
    dc_lx_loop lq;
    LLVMValueRef qb = for_open(a, &lq, qb0, a->nqb, 1);
    LLVMValueRef i0 = mulc(a, qb, s->bq);
    LLVMValueRef nq = smin(a, i64c(a, s->bq), LLVMBuildSub(x->b, a->sq, i0, ""));
    LLVMValueRef qrow = add(a, hrow, i0);
    LLVMValueRef qblk = gep(a, q, mulc(a, qrow, s->d)), doblk = gep(a, dout, mulc(a, qrow, s->dv));
    job jp = { .w = qblk, .wr = s->d, .wk = 1, .r = Kt, .rk = i64c(a, a->bkp), .cols = a->bkp, .nv = nvk,
               .kn = i64c(a, s->d), .fin = FIN_PROBS, .q0 = i0, .j0 = j0, .bias = hbias, .out = P,
               .lse = gep(a, lse, hrow) };
    run_job(a, &jp, nq, s->bq);
    job jd = { .w = doblk, .wr = s->dv, .wk = 1, .r = Vt, .rk = i64c(a, a->bkp), .cols = a->bkp, .nv = nvk,
               .kn = i64c(a, s->dv), .fin = FIN_DS, .q0 = i0, .j0 = j0, .out = dS, .probs = P,
               .delta = gep(a, delta, hrow) };
    run_job(a, &jd, nq, s->bq);
    if (tv) { /* dV^T += dout^T P */
        job jdv = { .w = doblk, .wr = 1, .wk = s->dv, .r = P, .rk = i64c(a, a->bkp), .cols = a->bkp, .nv = nvk, .kn = nq,
                    .load_init = true, .acc_base = dV, .acc_rs = a->bkp, .acc_cols = a->bkp, .fin = FIN_STORE };
        run_job(a, &jdv, i64c(a, s->dv), s->dv);
    } else {
        job jdv = { .w = P, .wr = 1, .wk = a->bkp, .r = doblk, .rk = i64c(a, s->dv), .cols = s->dv, .nv = nvv, .kn = nq,
                    .load_init = true, .acc_base = dV, .acc_rs = a->dvp, .acc_cols = a->dvp, .fin = FIN_STORE };
        run_job(a, &jdv, nk, s->bk);
    }
    if (tk) { /* dK^T += q^T dS */
        job jdk = { .w = qblk, .wr = 1, .wk = s->d, .r = dS, .rk = i64c(a, a->bkp), .cols = a->bkp, .nv = nvk, .kn = nq,
                    .load_init = true, .acc_base = dK, .acc_rs = a->bkp, .acc_cols = a->bkp, .fin = FIN_STORE };
        run_job(a, &jdk, i64c(a, s->d), s->d);
        dot_job jdq = { .w = dS, .wr = a->bkp, .r = Kt, .rr = a->bkp, .nkv = key_vectors(a, nk),
                        .out = gep(a, dq, mulc(a, qrow, s->d)), .ors = s->d, .nc = (int)s->d };
        run_dot(a, &jdq, nq, s->bq);
    } else {
        job jdk = { .w = dS, .wr = 1, .wk = a->bkp, .r = qblk, .rk = i64c(a, s->d), .cols = s->d, .nv = nvd, .kn = nq,
                    .load_init = true, .acc_base = dK, .acc_rs = a->dp, .acc_cols = a->dp, .fin = FIN_STORE };
        run_job(a, &jdk, nk, s->bk);
        job jdq = { .w = dS, .wr = a->bkp, .wk = 1, .r = gep(a, k, mulc(a, add(a, hkey, j0), s->d)), .rk = i64c(a, s->d),
                    .cols = s->d, .nv = nvd, .kn = nk, .load_init = true, .acc_base = gep(a, dq, mulc(a, qrow, s->d)),
                    .acc_rs = s->d, .acc_cols = s->d, .fin = FIN_STORE };
        run_job(a, &jdq, nq, s->bq);
    }
    for_close(a, &lq, 1);
    /* the key block's dk, dv rows */
    dc_lx_loop lc;
    LLVMValueRef c = for_open(a, &lc, i64c(a, 0), nk, 1);
    LLVMValueRef krow = add(a, add(a, hkey, j0), c);
    store_key_row(a, dk, krow, dK, c, s->d, tk);
    store_key_row(a, dv, krow, dV, c, s->dv, tv);
    for_close(a, &lc, 1);
    for_close(a, &lk, 1);
    for_close(a, &li, 1);
}

bool dc_lx_attention_supported(const dc_attn_spec *s, int lanes) {
    return lanes >= 8 && s->bk % lanes == 0 && s->d >= 1 && s->dv >= 1 && round_up(s->d, lanes) / lanes <= MAX_NV &&
           round_up(s->dv, lanes) / lanes <= MAX_NV && round_up(s->bk, lanes) / lanes <= MAX_NV && s->bq >= 1;
}

void dc_lx_emit_attention(dc_lx *x, const dc_attn_spec *s, const char *name) {
    ax a = { .x = x, .s = s, .W = x->lanes };
    a.vt = LLVMVectorType(x->f32, (unsigned)a.W);
    a.bkp = round_up(s->bk, a.W);
    a.dp = round_up(s->d, a.W);
    a.dvp = round_up(s->dv, a.W);
    dc_lx_fn f = dc_lx_fn_open(x, name);
    a.fn = f.fn;
    a.eb = f.entry;
    for (int i = 0; i < MAX_ACC; i++) a.acc[i] = stack(&a, a.vt, 1);
    load_sizes(&a);
    if (s->backward) backward(&a);
    else forward(&a);
    dc_lx_fn_close(x, &f);
}
