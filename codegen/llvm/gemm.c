/* gemm.c — GEMM kernels in LLVM IR (codegen.h: dc_gemm_spec), with the C side of their contract
 * (spec checks, canonical text, run-time sizes, B packing, the tuning space and defaults).
 *
 * One work item computes a block of mc rows and nc columns of one batch's output, in the loop
 * order of the Goto/BLIS GEMM with the roles of the caches kept so the A micro-panel stays in
 * L1:
 *   for each pass over K (kc deep):
 *     pack_a: pack the item's A block (mc x kc) into [slab of mr rows][k][mr] on the thread's
 *     scratch, rows past M zero (else read A where it is, packing only a last partial slab);
 *     for each slab of mr rows (its kc x mr panel reused by every panel: L1):
 *       for each panel of nr columns of packed B (kc x nc reused by every slab: L2): the
 *       micro-kernel, then the tile's store.
 * The micro-kernel keeps mr x nr/lanes accumulator vectors; per k it loads nr/lanes vectors
 * of packed B and broadcasts mr values of A, one fused multiply-add each. Stores are masked
 * by column (N need not be a multiple of anything) and skipped by row past M. A pass that is
 * not the first adds the partial sums stored by the previous one; the last pass applies the
 * epilogue act(scale * y + bias) + residual (storing scale * y + bias too when the spec keeps
 * the pre-activation). A convolution is an implicit GEMM (dc_gemm_conv):
 * its A is gathered by the packing, or read in place (conv_rows: a direct forward convolution
 * over whole output rows of a padded input). Every sum runs in one fixed order inside its work
 * item, so results are bitwise the same for any split of the items over threads. */
#include <stdio.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/llvm/llvm_internal.h"

#define MAX_MR 32
#define MAX_NV 4

/* ---- the contract's C side -------------------------------------------------------------- */

/* A direct convolution reads its slab in place (forward, and backward-data at stride 1): the
 * mr rows of a slab are mr neighbours along one row of the grid they index, so for each tap
 * (kh, kw) their windows start sw*C (backward-data: O) floats apart in the input, and a tap
 * is one micro-kernel loop over its channels with B's rows of that tap. */
static bool conv_direct_kind(const dc_gemm_conv *c) {
    return c->kind == DC_GEMM_CONV_FWD || (c->kind == DC_GEMM_CONV_BWD_DATA && c->sh == 1 && c->sw == 1);
}

bool dc_gemm_spec_ok(const dc_gemm_spec *s, int lanes, char *why, size_t len) {
    const char *bad = NULL;
    if (s->lanes != 8 && s->lanes != 16) bad = "lanes must be 8 or 16";
    else if (s->lanes > lanes) bad = "the target has fewer vector lanes than the spec asks";
    else if (s->nr < s->lanes || s->nr % s->lanes || s->nr / s->lanes > MAX_NV) bad = "nr must be 1 to 4 vectors";
    else if (s->mr < 1 || s->mr > MAX_MR) bad = "mr must be 1 to 32";
    else if (s->mr * (s->nr / s->lanes) + s->nr / s->lanes + 1 > 32) bad = "the tile needs more than 32 vector registers";
    else if (s->kc < 1 || s->kc > 4096) bad = "kc must be 1 to 4096";
    else if (s->mc < s->mr || s->mc % s->mr || s->mc * s->kc > (1 << 22)) bad = "mc must be a multiple of mr, mc * kc at most 4M";
    else if (s->nc < s->nr || s->nc % s->nr) bad = "nc must be a multiple of nr";
    else if (s->unroll < 1 || s->unroll > 16) bad = "unroll must be 1 to 16";
    else if (s->prefetch < 0 || s->prefetch > 256) bad = "prefetch must be 0 to 256";
    else if ((int)s->act < 0 || s->act >= DC_NACTIVATIONS) bad = "unknown activation";
    else if (s->conv.kind != DC_GEMM_PLAIN && s->trans_a) bad = "a convolution's A is untransposed";
    else if (s->conv.kind != DC_GEMM_PLAIN && !s->pack_a &&
             (!conv_direct_kind(&s->conv) || s->kc < s->conv.KH * s->conv.KW * (s->conv.kind == DC_GEMM_CONV_FWD ? s->conv.C : s->conv.O)))
        bad = "a direct convolution (pack_a 0) is a forward or stride-1 backward-data one in one pass over K (kc >= K)";
    else if (s->conv.kind != DC_GEMM_PLAIN && (s->conv.sh < 1 || s->conv.sw < 1 || s->conv.ph < 0 || s->conv.pw < 0))
        bad = "a convolution needs strides >= 1 and paddings >= 0";
    if (bad) snprintf(why, len, "gemm: %s", bad);
    return !bad;
}

void dc_gemm_spec_text(const dc_gemm_spec *s, char *buf, size_t len) {
    static const char *const kinds[] = { "", "fwd", "bwd_data", "bwd_weight" };
    int n = snprintf(buf, len, "gemm mr %d nr %d kc %lld mc %lld nc %lld unroll %d prefetch %d lanes %d pack_a %d "
                     "trans_a %d bias %d act %s residual %d", s->mr, s->nr, (long long)s->kc, (long long)s->mc,
                     (long long)s->nc, s->unroll, s->prefetch, s->lanes, s->pack_a, s->trans_a, s->bias,
                     dc_activation_name(s->act), s->residual);
    if (s->pre && n >= 0 && (size_t)n < len) n += snprintf(buf + n, len - (size_t)n, " pre 1");
    const dc_gemm_conv *c = &s->conv;
    if (c->kind != DC_GEMM_PLAIN && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, " conv %s H %lld W %lld C %lld OH %lld OW %lld O %lld KH %lld KW %lld "
                 "stride %lld,%lld pad %lld,%lld", kinds[c->kind], (long long)c->H, (long long)c->W, (long long)c->C,
                 (long long)c->OH, (long long)c->OW, (long long)c->O, (long long)c->KH, (long long)c->KW,
                 (long long)c->sh, (long long)c->sw, (long long)c->ph, (long long)c->pw);
}

dc_gemm_sizes dc_gemm_sizes_of(const dc_gemm_spec *s, int64_t M, int64_t N, int64_t K, int64_t lda, float scale) {
    dc_gemm_sizes z = { { M, N, K, lda, (M + s->mc - 1) / s->mc, (N + s->nc - 1) / s->nc, 0 } };
    memcpy(&z.v[6], &scale, sizeof scale);
    return z;
}

int64_t dc_gemm_items(const dc_gemm_sizes *z) { return z->v[4] * z->v[5]; }

int64_t dc_gemm_packed_size(const dc_gemm_spec *s, int64_t N, int64_t K) { return (N + s->nr - 1) / s->nr * s->nr * K; }

void dc_gemm_pack_b(const dc_gemm_spec *s, const float *b, bool trans_b, int64_t ldb, int64_t N, int64_t K,
                    int64_t p0, int64_t p1, float *dst) {
    int64_t nr = s->nr, O = s->conv.O, C = s->conv.C;
    bool bwd_data = s->conv.kind == DC_GEMM_CONV_BWD_DATA;
    for (int64_t j0 = p0 * nr; j0 < N && j0 < p1 * nr; j0 += nr) {
        int64_t w = N - j0 < nr ? N - j0 : nr;
        float *p = dst + j0 * K;
        for (int64_t k = 0; k < K; k++, p += nr) {
            if (bwd_data) /* k = (kh, kw, o), column j = c: w[kh, kw, c, o] */
                for (int64_t j = 0; j < w; j++) p[j] = b[(k / O * C + j0 + j) * O + k % O];
            else if (trans_b)
                for (int64_t j = 0; j < w; j++) p[j] = b[(j0 + j) * ldb + k];
            else
                memcpy(p, b + k * ldb + j0, (size_t)w * sizeof *p);
            for (int64_t j = w; j < nr; j++) p[j] = 0.0f;
        }
    }
}

const dc_gemm_space dc_gemm_tuning_space = {
    .n_tiles = 10,
    .tile_mr = { 14, 28, 6, 12, 6, 8, 4, 4, 6, 2 },
    .tile_nv = { 1, 1, 2, 2, 3, 3, 3, 4, 4, 4 },
    .n_kc = 4, .kc = { 64, 128, 256, 512 },
    .n_mc = 4, .mc = { 16, 32, 64, 128 },
    .n_nc = 3, .nc = { 64, 256, 1024 },
    .n_unroll = 4, .unroll = { 1, 2, 4, 8 },
    .n_prefetch = 3, .prefetch = { 0, 4, 16 },
    .n_lanes = 2, .lanes = { 16, 8 },
    .n_pack_a = 2, .pack_a = { true, false },
};

static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

dc_gemm_spec dc_gemm_spec_of(int t, int lanes, int64_t kc, int64_t mc, int64_t nc, int unroll, int prefetch,
                             bool pack_a) {
    int mr = dc_gemm_tuning_space.tile_mr[t], nr = dc_gemm_tuning_space.tile_nv[t] * lanes;
    return (dc_gemm_spec){ .mr = mr, .nr = nr, .kc = kc, .mc = round_up(mc, mr), .nc = round_up(nc, nr),
                           .unroll = unroll, .prefetch = prefetch, .lanes = lanes, .pack_a = pack_a };
}

dc_gemm_spec dc_gemm_default(int64_t batch, int64_t M, int64_t N, int lanes) {
    static const int tile[MAX_NV + 1] = { 0, 0, 3, 5, 7 }; /* by vectors per row: 14x1, 12x2, 8x3, 4x4, measured */
    if (N <= 8 && lanes > 8) lanes = 8;
    int nv = (int)((N + lanes - 1) / lanes);
    nv = nv < 1 ? 1 : nv > MAX_NV ? MAX_NV : nv;
    int64_t nr = (int64_t)nv * lanes;
    dc_gemm_spec s = dc_gemm_spec_of(tile[nv], lanes, 256, 64, 256, 4, 0, (N + nr - 1) / nr > 2);
    s.mc = s.mc < round_up(M, s.mr) ? s.mc : round_up(M, s.mr);
    /* at least 8 work items where the shape allows, for the threads to share */
    while (batch * ((M + s.mc - 1) / s.mc) * ((N + s.nc - 1) / s.nc) < 8 && (s.mc > s.mr || s.nc > s.nr)) {
        if (s.nc > s.nr && (s.nc >= N || s.mc <= s.mr)) s.nc = round_up(s.nc / 2, s.nr);
        else s.mc = round_up(s.mc / 2, s.mr);
    }
    return s;
}

int64_t dc_gemm_conv_slack(const dc_gemm_conv *c, int mr) { return ((int64_t)mr * c->sw + c->KW) * c->C; }

int64_t dc_gemm_scratch_size(const dc_gemm_spec *s) { return s->mc * s->kc; }

/* ---- emission --------------------------------------------------------------------------- */

typedef struct {
    dc_lx *x;
    const dc_gemm_spec *s;
    LLVMValueRef fn;
    LLVMBuilderRef eb;  /* the entry block's builder: allocas */
    int W, nv;          /* lanes, vectors per tile row */
    LLVMTypeRef vt;
    LLVMValueRef acc[MAX_MR][MAX_NV];
    /* run time: sizes, and the item's operands */
    LLVMValueRef M, N, K, lda, scale, mblocks, nblocks;
    LLVMValueRef A, Bp, C, bias, res, Ap, pre;
} gx;

static LLVMValueRef c64(gx *g, int64_t v) { return dc_lx_i64c(g->x, v); }
static LLVMValueRef add(gx *g, LLVMValueRef u, LLVMValueRef v) { return LLVMBuildAdd(g->x->b, u, v, ""); }
static LLVMValueRef sub(gx *g, LLVMValueRef u, LLVMValueRef v) { return LLVMBuildSub(g->x->b, u, v, ""); }
static LLVMValueRef mul(gx *g, LLVMValueRef u, LLVMValueRef v) { return LLVMBuildMul(g->x->b, u, v, ""); }
static LLVMValueRef addc(gx *g, LLVMValueRef u, int64_t c) { return c ? add(g, u, c64(g, c)) : u; }
static LLVMValueRef mulc(gx *g, LLVMValueRef u, int64_t c) { return c == 1 ? u : mul(g, u, c64(g, c)); }
static LLVMValueRef lt(gx *g, LLVMValueRef u, LLVMValueRef v) { return LLVMBuildICmp(g->x->b, LLVMIntSLT, u, v, ""); }
static LLVMValueRef smin(gx *g, LLVMValueRef u, LLVMValueRef v) {
    return LLVMBuildSelect(g->x->b, lt(g, u, v), u, v, "");
}
static LLVMValueRef load64(gx *g, LLVMValueRef p, int64_t i) {
    LLVMValueRef q = LLVMBuildGEP2(g->x->b, g->x->i64, p, (LLVMValueRef[]){ c64(g, i) }, 1, "");
    return LLVMBuildLoad2(g->x->b, g->x->i64, q, "");
}
static LLVMValueRef arg(gx *g, LLVMValueRef args, int i) {
    LLVMValueRef q = LLVMBuildGEP2(g->x->b, g->x->ptr, args, (LLVMValueRef[]){ c64(g, i) }, 1, "");
    return LLVMBuildLoad2(g->x->b, g->x->ptr, q, "");
}

/* for (i = lo; i < hi; i += step): opens the body and returns i there */
static LLVMValueRef for_open(gx *g, dc_lx_loop *l, LLVMValueRef lo, LLVMValueRef hi) {
    LLVMValueRef var = dc_lx_stack(g->x, g->eb, g->x->i64, 1);
    dc_lx_loop_open(g->x, g->fn, l, var, lo);
    LLVMValueRef i = LLVMBuildLoad2(g->x->b, g->x->i64, var, "");
    dc_lx_loop_test(g->x, g->fn, l, lt(g, i, hi));
    return i;
}
static void for_close(gx *g, dc_lx_loop *l, int64_t step) { dc_lx_loop_close(g->x, l, c64(g, step)); }

/* if (cond) { ... }: opens the then-block; if_close continues after it */
static LLVMBasicBlockRef if_open(gx *g, LLVMValueRef cond) {
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(g->x->ctx, g->fn, "then");
    LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(g->x->ctx, g->fn, "after");
    LLVMBuildCondBr(g->x->b, cond, then, after);
    LLVMPositionBuilderAtEnd(g->x->b, then);
    return after;
}
static void if_close(gx *g, LLVMBasicBlockRef after) {
    LLVMBuildBr(g->x->b, after);
    LLVMPositionBuilderAtEnd(g->x->b, after);
}

static LLVMValueRef sdivc(gx *g, LLVMValueRef u, int64_t c) { return c == 1 ? u : LLVMBuildSDiv(g->x->b, u, c64(g, c), ""); }
static LLVMValueRef sremc(gx *g, LLVMValueRef u, int64_t c) { return c == 1 ? c64(g, 0) : LLVMBuildSRem(g->x->b, u, c64(g, c), ""); }
static LLVMValueRef and1(gx *g, LLVMValueRef u, LLVMValueRef v) { return LLVMBuildAnd(g->x->b, u, v, ""); }
/* 0 <= v < n */
static LLVMValueRef in_range(gx *g, LLVMValueRef v, int64_t n) {
    return LLVMBuildICmp(g->x->b, LLVMIntULT, v, c64(g, n), "");
}

/* The offset in the tensor given as A of element (row, k) of a convolution's implicit A, and
 * in *valid whether the window is inside the input there (dc_gemm_conv). */
static LLVMValueRef conv_offset(gx *g, LLVMValueRef row, LLVMValueRef k, LLVMValueRef *valid) {
    const dc_gemm_conv *c = &g->s->conv;
    dc_lx *x = g->x;
    if (c->kind == DC_GEMM_CONV_BWD_DATA) {
        /* row (n, ih, iw), k (kh, kw, o): dy[n, (ih+ph-kh)/sh, (iw+pw-kw)/sw, o] where it divides */
        LLVMValueRef n = sdivc(g, row, c->H * c->W), rem = sremc(g, row, c->H * c->W);
        LLVMValueRef th = sub(g, addc(g, sdivc(g, rem, c->W), c->ph), sdivc(g, k, c->KW * c->O));
        LLVMValueRef tw = sub(g, addc(g, sremc(g, rem, c->W), c->pw), sdivc(g, sremc(g, k, c->KW * c->O), c->O));
        LLVMValueRef o = sremc(g, k, c->O);
        LLVMValueRef zero = c64(g, 0);
        LLVMValueRef ok = and1(g, LLVMBuildICmp(x->b, LLVMIntSGE, th, zero, ""), LLVMBuildICmp(x->b, LLVMIntSGE, tw, zero, ""));
        ok = and1(g, ok, LLVMBuildICmp(x->b, LLVMIntEQ, sremc(g, th, c->sh), zero, ""));
        ok = and1(g, ok, LLVMBuildICmp(x->b, LLVMIntEQ, sremc(g, tw, c->sw), zero, ""));
        LLVMValueRef oh = sdivc(g, th, c->sh), ow = sdivc(g, tw, c->sw);
        *valid = and1(g, ok, and1(g, in_range(g, oh, c->OH), in_range(g, ow, c->OW)));
        return add(g, mulc(g, add(g, mulc(g, add(g, mulc(g, n, c->OH), oh), c->OW), ow), c->O), o);
    }
    /* forward: row (n, oh, ow), k (kh, kw, c); backward-weight: row (kh, kw, c), k (n, oh, ow):
     * x[n, oh*sh + kh - ph, ow*sw + kw - pw, c] */
    bool fwd = c->kind == DC_GEMM_CONV_FWD;
    LLVMValueRef pos = fwd ? row : k, tap = fwd ? k : row;
    LLVMValueRef n = sdivc(g, pos, c->OH * c->OW), rem = sremc(g, pos, c->OH * c->OW);
    LLVMValueRef kh = sdivc(g, tap, c->KW * c->C), kw = sdivc(g, sremc(g, tap, c->KW * c->C), c->C);
    LLVMValueRef ih = sub(g, add(g, mulc(g, sdivc(g, rem, c->OW), c->sh), kh), c64(g, c->ph));
    LLVMValueRef iw = sub(g, add(g, mulc(g, sremc(g, rem, c->OW), c->sw), kw), c64(g, c->pw));
    *valid = and1(g, in_range(g, ih, c->H), in_range(g, iw, c->W));
    return add(g, mulc(g, add(g, mulc(g, add(g, mulc(g, n, c->H), ih), c->W), iw), c->C), sremc(g, tap, c->C));
}

/* Packs rows [m0, m0 + mcur) x depth [k0, k0 + kcur) of A into the scratch as slabs
 * [ceil(mcur/mr)][kcur][mr], rows past mcur (and a convolution's taps outside the input)
 * zero. */
static void pack_a(gx *g, LLVMValueRef a, LLVMValueRef m0, LLVMValueRef mcur, LLVMValueRef k0, LLVMValueRef kcur) {
    dc_lx *x = g->x;
    int64_t mr = g->s->mr;
    LLVMValueRef rows = mulc(g, LLVMBuildSDiv(x->b, addc(g, mcur, mr - 1), c64(g, mr), ""), mr);
    dc_lx_loop lo, li;
    /* the loop over A's contiguous index is the inner one */
    bool t = g->s->trans_a || g->s->conv.kind == DC_GEMM_CONV_BWD_WEIGHT;
    LLVMValueRef u = for_open(g, &lo, c64(g, 0), t ? kcur : rows);
    LLVMValueRef v = for_open(g, &li, c64(g, 0), t ? rows : kcur);
    LLVMValueRef r = t ? v : u, k = t ? u : v;
    LLVMValueRef live = lt(g, r, mcur);
    LLVMValueRef row = add(g, m0, LLVMBuildSelect(x->b, live, r, c64(g, 0), ""));
    LLVMValueRef off;
    if (g->s->conv.kind != DC_GEMM_PLAIN) {
        LLVMValueRef valid;
        off = conv_offset(g, row, add(g, k0, k), &valid);
        live = and1(g, live, valid);
        off = LLVMBuildSelect(x->b, live, off, c64(g, 0), "");
    } else {
        off = g->s->trans_a ? add(g, mul(g, add(g, k0, k), g->lda), row) : add(g, mul(g, row, g->lda), add(g, k0, k));
    }
    LLVMValueRef val = LLVMBuildSelect(x->b, live, dc_lx_sload(x, a, off), LLVMConstReal(x->f32, 0.0), "");
    LLVMValueRef slab = LLVMBuildSDiv(x->b, r, c64(g, mr), "");
    LLVMValueRef dst = add(g, mul(g, slab, mulc(g, kcur, mr)), add(g, mulc(g, k, mr), LLVMBuildSRem(x->b, r, c64(g, mr), "")));
    dc_lx_sstore(x, g->Ap, dst, val);
    for_close(g, &li, 1);
    for_close(g, &lo, 1);
}

/* Where the micro-kernel reads A: element (row i of the slab, step k) at p[k*ks + i*is] */
typedef struct { LLVMValueRef p, ks, is; } a_view;

/* one k step of the micro-kernel: acc[i][v] += A(i, k) * bp[k*nr + v*W] */
static void micro_step(gx *g, a_view av, LLVMValueRef bp, LLVMValueRef k) {
    dc_lx *x = g->x;
    const dc_gemm_spec *s = g->s;
    LLVMValueRef bv[MAX_NV];
    LLVMValueRef kb = mulc(g, k, s->nr);
    if (s->prefetch) {
        LLVMValueRef p = dc_lx_gep(x, bp, addc(g, kb, (int64_t)s->prefetch * s->nr));
        dc_lx_intrinsic(x, "llvm.prefetch", &x->ptr, 1,
                        (LLVMValueRef[]){ p, LLVMConstInt(x->i32, 0, 0), LLVMConstInt(x->i32, 3, 0),
                                          LLVMConstInt(x->i32, 1, 0) }, 4);
    }
    for (int v = 0; v < g->nv; v++) bv[v] = dc_lx_vload(x, g->vt, bp, addc(g, kb, (int64_t)v * g->W), NULL);
    LLVMValueRef ka = mul(g, k, av.ks);
    for (int i = 0; i < s->mr; i++) {
        LLVMValueRef off = i ? add(g, ka, mulc(g, av.is, i)) : ka;
        LLVMValueRef a = dc_lx_splat(x, dc_lx_sload(x, av.p, off), g->W);
        for (int v = 0; v < g->nv; v++) {
            LLVMValueRef cur = LLVMBuildLoad2(x->b, g->vt, g->acc[i][v], "");
            LLVMBuildStore(x->b, dc_lx_fma(x, a, bv[v], cur), g->acc[i][v]);
        }
    }
}

static void micro_zero(gx *g) {
    for (int i = 0; i < g->s->mr; i++)
        for (int v = 0; v < g->nv; v++) LLVMBuildStore(g->x->b, dc_lx_f32(g->x, 0.0f, g->W), g->acc[i][v]);
}

/* kcur steps of the micro-kernel, unrolled, into the accumulators as they are */
static void micro_loop(gx *g, a_view av, LLVMValueRef bp, LLVMValueRef kcur) {
    dc_lx *x = g->x;
    int u = g->s->unroll;
    dc_lx_loop l;
    LLVMValueRef main_end = sub(g, kcur, LLVMBuildSRem(x->b, kcur, c64(g, u), ""));
    LLVMValueRef k = for_open(g, &l, c64(g, 0), main_end);
    for (int j = 0; j < u; j++) micro_step(g, av, bp, addc(g, k, j));
    for_close(g, &l, u);
    if (u > 1) {
        dc_lx_loop lr;
        k = for_open(g, &lr, main_end, kcur);
        micro_step(g, av, bp, k);
        for_close(g, &lr, 1);
    }
}

/* the micro-kernel over kcur steps, from zero */
static void micro(gx *g, a_view av, LLVMValueRef bp, LLVMValueRef kcur) {
    micro_zero(g);
    micro_loop(g, av, bp, kcur);
}

/* Whether the slab of a stride-1 backward-data convolution from row0 (mr full rows) lies on one
 * row of dx with every tap's window inside dy horizontally; the position into *n, *y, *x0. */
static LLVMValueRef conv_slab_inside(gx *g, LLVMValueRef row0, LLVMValueRef *n, LLVMValueRef *y, LLVMValueRef *x0) {
    const dc_gemm_conv *c = &g->s->conv;
    int64_t mr = g->s->mr;
    *n = sdivc(g, row0, c->H * c->W);
    LLVMValueRef rem = sremc(g, row0, c->H * c->W);
    *y = sdivc(g, rem, c->W);
    *x0 = sremc(g, rem, c->W);
    LLVMValueRef ok = LLVMBuildICmp(g->x->b, LLVMIntSLE, addc(g, *x0, mr), c64(g, c->W), "");
    /* the first row's leftmost and the last row's rightmost reads */
    ok = and1(g, ok, LLVMBuildICmp(g->x->b, LLVMIntSGE, addc(g, *x0, c->pw - (c->KW - 1)), c64(g, 0), ""));
    return and1(g, ok, LLVMBuildICmp(g->x->b, LLVMIntSLT, addc(g, *x0, mr - 1 + c->pw), c64(g, c->OW), ""));
}

/* the taps of a slab (forward: conv_rows; backward-data: conv_slab_inside), accumulated into the
 * accumulators; bpan: the panel of B */
static void conv_direct(gx *g, LLVMValueRef a, LLVMValueRef n, LLVMValueRef y, LLVMValueRef x0, LLVMValueRef bpan) {
    const dc_gemm_conv *c = &g->s->conv;
    /* forward reads the zero-padded copy of x (dc_gemm_conv_padded), every window inside it */
    bool fwd = c->kind == DC_GEMM_CONV_FWD;
    int64_t IH = fwd ? c->H + 2 * c->ph : c->OH, IW = fwd ? c->W + 2 * c->pw : c->OW, CH = fwd ? c->C : c->O;
    for (int64_t kh = 0; kh < c->KH; kh++) {
        LLVMValueRef iy = fwd ? addc(g, mulc(g, y, c->sh), kh) : addc(g, y, c->ph - kh);
        LLVMBasicBlockRef after = if_open(g, fwd ? LLVMConstInt(g->x->i1, 1, 0) : in_range(g, iy, IH));
        for (int64_t kw = 0; kw < c->KW; kw++) {
            LLVMValueRef ix = fwd ? addc(g, mulc(g, x0, c->sw), kw) : addc(g, x0, c->pw - kw);
            LLVMValueRef off = mulc(g, add(g, mulc(g, add(g, mulc(g, n, IH), iy), IW), ix), CH);
            a_view v = { dc_lx_gep(g->x, a, off), c64(g, 1), c64(g, fwd ? c->sw * CH : CH) };
            micro_loop(g, v, dc_lx_gep(g->x, bpan, c64(g, (kh * c->KW + kw) * CH * g->s->nr)), c64(g, CH));
        }
        if_close(g, after);
    }
}

/* the column masks of a tile, its bias vectors, and whether over_tile stores into the output
 * (else back into the accumulators) */
typedef struct { LLVMValueRef mask[MAX_NV], bias[MAX_NV]; bool store; } tile_ctx;

/* y = f(accumulator vector v of row i, its element offset off in the item's output) */
typedef LLVMValueRef (*tile_fn)(gx *g, tile_ctx *c, int v, LLVMValueRef off, LLVMValueRef y);

/* Runs f over the tile at rows r0 + [0, rows) of the item's output, columns j0 + [0, nr). */
static void over_tile(gx *g, LLVMValueRef r0, LLVMValueRef rows, LLVMValueRef j0, tile_fn f, tile_ctx *c) {
    dc_lx *x = g->x;
    for (int i = 0; i < g->s->mr; i++) {
        LLVMBasicBlockRef after = if_open(g, lt(g, c64(g, i), rows));
        LLVMValueRef off = add(g, mul(g, addc(g, r0, i), g->N), j0);
        for (int v = 0; v < g->nv; v++) {
            LLVMValueRef o = addc(g, off, (int64_t)v * g->W);
            LLVMValueRef y = f(g, c, v, o, LLVMBuildLoad2(x->b, g->vt, g->acc[i][v], ""));
            if (c->store) dc_lx_vstore(x, g->C, o, y, c->mask[v]);
            else LLVMBuildStore(x->b, y, g->acc[i][v]);
        }
        if_close(g, after);
    }
}

/* the partial sums of the previous passes over K, added */
static LLVMValueRef add_partial(gx *g, tile_ctx *c, int v, LLVMValueRef off, LLVMValueRef y) {
    return LLVMBuildFAdd(g->x->b, y, dc_lx_vload(g->x, g->vt, g->C, off, c->mask[v]), "");
}

/* the epilogue act(scale * y + bias) + residual, the pre-activation stored when kept */
static LLVMValueRef epilogue(gx *g, tile_ctx *c, int v, LLVMValueRef off, LLVMValueRef y) {
    dc_lx *x = g->x;
    LLVMValueRef e = LLVMBuildFMul(x->b, y, dc_lx_splat(x, g->scale, g->W), "");
    if (c->bias[v]) e = LLVMBuildFAdd(x->b, e, c->bias[v], "");
    if (g->pre) dc_lx_vstore(x, g->pre, off, e, c->mask[v]);
    if (g->s->act != DC_ACTIVATION_NONE) e = dc_lx_formula(x, dc_activation_op(g->s->act), e, e, e, 0.0f, g->W);
    if (g->s->residual) e = LLVMBuildFAdd(x->b, e, dc_lx_vload(x, g->vt, g->res, off, c->mask[v]), "");
    return e;
}

static LLVMValueRef same(gx *g, tile_ctx *c, int v, LLVMValueRef off, LLVMValueRef y) {
    (void)g, (void)c, (void)v, (void)off;
    return y;
}

/* Stores the tile at rows r0 + [0, rows), columns j0 + [0, nr) (masked past N): the partial
 * sums of earlier passes added when accumulate, the epilogue applied when final. */
static void store_tile(gx *g, LLVMValueRef r0, LLVMValueRef rows, LLVMValueRef j0, LLVMValueRef accumulate,
                       LLVMValueRef final) {
    dc_lx *x = g->x;
    LLVMTypeRef it = dc_lx_type(x->i32, g->W);
    LLVMValueRef left = LLVMBuildTrunc(x->b, sub(g, g->N, j0), x->i32, "");
    LLVMValueRef iota = LLVMBuildTrunc(x->b, dc_lx_iota64(x, g->W), it, "");
    tile_ctx c = { .store = false };
    for (int v = 0; v < g->nv; v++) {
        LLVMValueRef lim = LLVMBuildSub(x->b, left, LLVMConstInt(x->i32, (uint64_t)v * (uint64_t)g->W, 0), "");
        c.mask[v] = LLVMBuildICmp(x->b, LLVMIntSLT, iota, dc_lx_splat(x, lim, g->W), "");
    }
    LLVMBasicBlockRef after = if_open(g, accumulate);
    over_tile(g, r0, rows, j0, add_partial, &c);
    if_close(g, after);
    after = if_open(g, final);
    for (int v = 0; v < g->nv; v++)
        c.bias[v] = g->s->bias ? dc_lx_vload(x, g->vt, g->bias, addc(g, j0, (int64_t)v * g->W), c.mask[v]) : NULL;
    over_tile(g, r0, rows, j0, epilogue, &c);
    if_close(g, after);
    c.store = true;
    over_tile(g, r0, rows, j0, same, &c);
}

/* A direct forward convolution's work item: its M counts the output rows' positions padded to a
 * multiple of mr (dc_gemm_conv_rows), so every slab lies on one output row: the slab at
 * virtual row v is output row (n, oh), columns x0 .. x0 + count with count = min(mr, OW - x0);
 * every tap is one micro-kernel loop reading the padded input in place; one pass over K. */
static void conv_rows(gx *g, LLVMValueRef a, LLVMValueRef m0, LLVMValueRef mcur, LLVMValueRef n0, LLVMValueRef n1,
                      LLVMValueRef bp) {
    const dc_gemm_conv *c = &g->s->conv;
    int64_t mr = g->s->mr, owp = (c->OW + mr - 1) / mr * mr;
    dc_lx_loop ls, lj;
    LLVMValueRef r0 = for_open(g, &ls, c64(g, 0), mcur);
    LLVMValueRef v = add(g, m0, r0);
    LLVMValueRef n = sdivc(g, v, c->OH * owp), rem = sremc(g, v, c->OH * owp);
    LLVMValueRef oh = sdivc(g, rem, owp), x0 = sremc(g, rem, owp);
    LLVMValueRef count = smin(g, c64(g, mr), sub(g, c64(g, c->OW), x0));
    LLVMValueRef row = add(g, mulc(g, add(g, mulc(g, n, c->OH), oh), c->OW), x0);
    LLVMValueRef j0 = for_open(g, &lj, n0, n1);
    micro_zero(g);
    conv_direct(g, a, n, oh, x0, dc_lx_gep(g->x, bp, mul(g, j0, g->K)));
    LLVMValueRef no = LLVMConstInt(g->x->i1, 0, 0), yes = LLVMConstInt(g->x->i1, 1, 0);
    store_tile(g, row, count, j0, no, yes);
    for_close(g, &lj, g->s->nr);
    for_close(g, &ls, mr);
}

/* The passes over K of a GEMM's work item (see the top of the file): A packed or read in
 * place, the micro-kernels, the stores. */
static void item_passes(gx *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef m0, LLVMValueRef mcur, LLVMValueRef n0,
                        LLVMValueRef n1, LLVMValueRef bp, LLVMValueRef C, LLVMValueRef R, LLVMValueRef P) {
    dc_lx *x = g->x;
    const dc_gemm_spec *s = g->s;
    LLVMValueRef coff = add(g, mul(g, mul(g, b, g->M), g->N), mul(g, m0, g->N));
    g->C = dc_lx_gep(x, C, coff);
    g->res = R ? dc_lx_gep(x, R, coff) : NULL;
    g->pre = P ? dc_lx_gep(x, P, coff) : NULL;

    dc_lx_loop lk;
    LLVMValueRef k0 = for_open(g, &lk, c64(g, 0), g->K);
    LLVMValueRef kcur = smin(g, c64(g, s->kc), sub(g, g->K, k0));
    if (s->pack_a) pack_a(g, a, m0, mcur, k0, kcur);
    LLVMValueRef accumulate = LLVMBuildICmp(x->b, LLVMIntSGT, k0, c64(g, 0), "");
    LLVMValueRef final = LLVMBuildICmp(x->b, LLVMIntSGE, addc(g, k0, s->kc), g->K, "");
    dc_lx_loop ls;
    LLVMValueRef r0 = for_open(g, &ls, c64(g, 0), mcur);
    LLVMValueRef rows = sub(g, mcur, r0);
    /* the slab packed (by pack_a above, or here when it is the last, partial slab of a
     * direct kernel), else read where it is */
    a_view packed = { dc_lx_gep(x, g->Ap, s->pack_a ? mul(g, r0, kcur) : c64(g, 0)), c64(g, s->mr), c64(g, 1) };
    LLVMValueRef full = LLVMBuildICmp(x->b, LLVMIntSGE, rows, c64(g, s->mr), "");
    a_view direct = { NULL, NULL, NULL };
    bool conv = s->conv.kind != DC_GEMM_PLAIN;
    LLVMValueRef cn = NULL, cy = NULL, cx0 = NULL;
    if (!s->pack_a && conv) {
        full = and1(g, full, conv_slab_inside(g, add(g, m0, r0), &cn, &cy, &cx0));
    } else if (!s->pack_a) {
        LLVMValueRef row = add(g, m0, r0);
        direct.p = dc_lx_gep(x, a, s->trans_a ? add(g, mul(g, k0, g->lda), row) : add(g, mul(g, row, g->lda), k0));
        direct.ks = s->trans_a ? g->lda : c64(g, 1);
        direct.is = s->trans_a ? c64(g, 1) : g->lda;
    }
    if (!s->pack_a) {
        LLVMBasicBlockRef after = if_open(g, LLVMBuildNot(x->b, full, ""));
        pack_a(g, a, add(g, m0, r0), rows, k0, kcur);
        if_close(g, after);
    }
    dc_lx_loop lj;
    LLVMValueRef j0 = for_open(g, &lj, n0, n1);
    /* panel j0 / nr of packed B starts at j0 * K; this pass reads its rows [k0, k0 + kcur) */
    LLVMValueRef bpan = dc_lx_gep(x, bp, add(g, mul(g, j0, g->K), mulc(g, k0, s->nr)));
    if (s->pack_a) {
        micro(g, packed, bpan, kcur);
    } else {
        LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(x->ctx, g->fn, "direct");
        LLVMBasicBlockRef other = LLVMAppendBasicBlockInContext(x->ctx, g->fn, "packed");
        LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(x->ctx, g->fn, "tile");
        LLVMBuildCondBr(x->b, full, then, other);
        LLVMPositionBuilderAtEnd(x->b, then);
        if (conv) {
            micro_zero(g);
            conv_direct(g, a, cn, cy, cx0, bpan);
        } else {
            micro(g, direct, bpan, kcur);
        }
        LLVMBuildBr(x->b, after);
        LLVMPositionBuilderAtEnd(x->b, other);
        micro(g, packed, bpan, kcur);
        LLVMBuildBr(x->b, after);
        LLVMPositionBuilderAtEnd(x->b, after);
    }
    store_tile(g, r0, rows, j0, accumulate, final);
    for_close(g, &lj, s->nr);
    for_close(g, &ls, s->mr);
    for_close(g, &lk, s->kc);
}

void dc_lx_emit_gemm(dc_lx *x, const dc_gemm_spec *s, const char *name) {
    gx g = { .x = x, .s = s, .W = s->lanes, .nv = s->nr / s->lanes };
    g.vt = dc_lx_type(x->f32, g.W);
    dc_lx_fn f = dc_lx_fn_open(x, name);
    g.fn = f.fn;
    g.eb = f.entry;
    for (int i = 0; i < s->mr; i++)
        for (int v = 0; v < g.nv; v++) g.acc[i][v] = dc_lx_stack(x, g.eb, g.vt, 1);
    LLVMValueRef args = LLVMGetParam(g.fn, 0);
    LLVMValueRef sizes = arg(&g, args, 0);
    g.M = load64(&g, sizes, 0);
    g.N = load64(&g, sizes, 1);
    g.K = load64(&g, sizes, 2);
    g.lda = load64(&g, sizes, 3);
    g.mblocks = load64(&g, sizes, 4);
    g.nblocks = load64(&g, sizes, 5);
    g.scale = LLVMBuildBitCast(x->b, LLVMBuildTrunc(x->b, load64(&g, sizes, 6), x->i32, ""), x->f32, "");
    LLVMValueRef A = arg(&g, args, 1), aoff = arg(&g, args, 2), Bp = arg(&g, args, 3), boff = arg(&g, args, 4);
    LLVMValueRef C = arg(&g, args, 5);
    g.bias = s->bias ? arg(&g, args, 6) : NULL;
    LLVMValueRef R = s->residual ? arg(&g, args, 7) : NULL;
    g.Ap = arg(&g, args, 8);
    LLVMValueRef P = s->pre ? arg(&g, args, 9) : NULL;

    dc_lx_loop lt_;
    LLVMValueRef t = for_open(&g, &lt_, LLVMGetParam(g.fn, 1), LLVMGetParam(g.fn, 2));
    LLVMValueRef per_batch = mul(&g, g.mblocks, g.nblocks);
    LLVMValueRef b = LLVMBuildSDiv(x->b, t, per_batch, "");
    LLVMValueRef r = LLVMBuildSRem(x->b, t, per_batch, "");
    LLVMValueRef m0 = mulc(&g, LLVMBuildSDiv(x->b, r, g.nblocks, ""), s->mc);
    LLVMValueRef n0 = mulc(&g, LLVMBuildSRem(x->b, r, g.nblocks, ""), s->nc);
    LLVMValueRef n1 = smin(&g, addc(&g, n0, s->nc), g.N);
    LLVMValueRef mcur = smin(&g, c64(&g, s->mc), sub(&g, g.M, m0));
    LLVMValueRef ld = LLVMBuildGEP2(x->b, x->i64, aoff, &b, 1, "");
    LLVMValueRef a = dc_lx_gep(x, A, LLVMBuildLoad2(x->b, x->i64, ld, ""));
    ld = LLVMBuildGEP2(x->b, x->i64, boff, &b, 1, "");
    LLVMValueRef bp = dc_lx_gep(x, Bp, LLVMBuildLoad2(x->b, x->i64, ld, ""));
    if (s->conv.kind == DC_GEMM_CONV_FWD && !s->pack_a) {
        g.C = C, g.res = R, g.pre = P;
        conv_rows(&g, a, m0, mcur, n0, n1, bp);
    } else {
        item_passes(&g, a, b, m0, mcur, n0, n1, bp, C, R, P);
    }
    for_close(&g, &lt_, 1);
    dc_lx_fn_close(x, &f);
}


