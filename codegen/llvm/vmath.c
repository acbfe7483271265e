/* vmath.c — vector helpers and f32 math for the LLVM codegen. exp (a degree-6 minimax
 * polynomial) and log are polynomial approximations with Cody-Waite range reduction (no libm calls, no fast-math flags; the
 * polynomials and the reduction are fused multiply-adds, llvm.fma, rounded once on every
 * target, by the FMA unit or by libm's fmaf, so every target rounds alike); tanh, sigmoid and log1p are built from exp and log
 * (gelu, silu and softplus are ops.def formulas over them). Max errors against double precision, measured by tests/test_llvm.c
 * (llvm_vmath_error) over exp [-103, 88.7], log (0, 3e38], the others [-20, 20], the same on
 * every target: exp 0.9 ulp, log 1.9 ulp, tanh 5.3 ulp, sigmoid 2.1 ulp, silu 2.9 ulp, gelu 1.5 ulp
 * of max(|gelu(x)|, |x|); sigmoid and silu flush to 0 under -87.3 (llvm_vmath_edges). Also the formula primitives of ir/formula.h in LLVM, and dc_lx_formula,
 * which expands a MAP op's ops.def formula with them (the kernel IR's expressions, the GEMM's
 * epilogue activations). */
#include "codegen/llvm/llvm_internal.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

LLVMTypeRef dc_lx_type(LLVMTypeRef t, int w) {
    return w == 1 ? t : LLVMVectorType(t, (unsigned)w);
}

LLVMValueRef dc_lx_splat(dc_lx *x, LLVMValueRef v, int w) {
    if (w == 1) return v;
    if (LLVMIsConstant(v)) {
        LLVMValueRef e[64];
        for (int i = 0; i < w; i++) e[i] = v;
        return LLVMConstVector(e, (unsigned)w);
    }
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(v), (unsigned)w);
    LLVMValueRef one = LLVMBuildInsertElement(x->b, LLVMGetPoison(vt), v,
                                              LLVMConstInt(x->i32, 0, 0), "");
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(x->i32, (unsigned)w));
    return LLVMBuildShuffleVector(x->b, one, LLVMGetPoison(vt), zeros, "");
}

LLVMValueRef dc_lx_f32(dc_lx *x, float v, int w) {
    return dc_lx_splat(x, LLVMConstReal(x->f32, v), w);
}

LLVMValueRef dc_lx_i32(dc_lx *x, int32_t v, int w) {
    return dc_lx_splat(x, LLVMConstInt(x->i32, (uint64_t)(int64_t)v, 1), w);
}

LLVMValueRef dc_lx_iota64(dc_lx *x, int w) {
    LLVMValueRef e[64];
    for (int i = 0; i < w; i++) e[i] = LLVMConstInt(x->i64, (uint64_t)i, 0);
    return LLVMConstVector(e, (unsigned)w);
}

LLVMValueRef dc_lx_intrinsic(dc_lx *x, const char *name, LLVMTypeRef *tys, int n_tys,
                             LLVMValueRef *args, int n_args) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(x->mod, id, tys, (size_t)n_tys);
    LLVMTypeRef ft = LLVMIntrinsicGetType(x->ctx, id, tys, (size_t)n_tys);
    return LLVMBuildCall2(x->b, ft, fn, args, (unsigned)n_args, "");
}

LLVMValueRef dc_lx_libm(dc_lx *x, const char *name, LLVMValueRef a, LLVMValueRef b, int w) {
    LLVMTypeRef params[2] = { x->f32, x->f32 };
    unsigned n = b ? 2 : 1;
    LLVMTypeRef ft = LLVMFunctionType(x->f32, params, n, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(x->mod, name);
    if (!fn) fn = LLVMAddFunction(x->mod, name, ft);
    if (w == 1) {
        LLVMValueRef args[2] = { a, b };
        return LLVMBuildCall2(x->b, ft, fn, args, n, "");
    }
    LLVMValueRef r = LLVMGetPoison(LLVMTypeOf(a));
    for (int i = 0; i < w; i++) {
        LLVMValueRef lane = LLVMConstInt(x->i32, (uint64_t)i, 0);
        LLVMValueRef args[2] = { LLVMBuildExtractElement(x->b, a, lane, ""),
                                 b ? LLVMBuildExtractElement(x->b, b, lane, "") : NULL };
        r = LLVMBuildInsertElement(x->b, r, LLVMBuildCall2(x->b, ft, fn, args, n, ""), lane, "");
    }
    return r;
}

/* ---- loops ---------------------------------------------------------------------------- */

void dc_lx_loop_open(dc_lx *x, LLVMValueRef fn, dc_lx_loop *l, LLVMValueRef var, LLVMValueRef init) {
    l->var = var;
    LLVMBuildStore(x->b, init, var);
    l->head = LLVMAppendBasicBlockInContext(x->ctx, fn, "head");
    LLVMBuildBr(x->b, l->head);
    LLVMPositionBuilderAtEnd(x->b, l->head);
}

void dc_lx_loop_test(dc_lx *x, LLVMValueRef fn, dc_lx_loop *l, LLVMValueRef cond) {
    LLVMBasicBlockRef bodyb = LLVMAppendBasicBlockInContext(x->ctx, fn, "body");
    l->exit = LLVMAppendBasicBlockInContext(x->ctx, fn, "exit");
    LLVMBuildCondBr(x->b, cond, bodyb, l->exit);
    LLVMPositionBuilderAtEnd(x->b, bodyb);
}

void dc_lx_loop_close(dc_lx *x, dc_lx_loop *l, LLVMValueRef step) {
    LLVMValueRef v = LLVMBuildLoad2(x->b, x->i64, l->var, "");
    LLVMBuildStore(x->b, LLVMBuildAdd(x->b, v, step, ""), l->var);
    LLVMBuildBr(x->b, l->head);
    LLVMPositionBuilderAtEnd(x->b, l->exit);
}

/* ---- range kernels ------------------------------------------------------------------------- */

dc_lx_fn dc_lx_fn_open(dc_lx *x, const char *name) {
    dc_lx_fn f;
    LLVMTypeRef params[3] = { x->ptr, x->i64, x->i64 };
    f.fn = LLVMAddFunction(x->mod, name, LLVMFunctionType(LLVMVoidTypeInContext(x->ctx), params, 3, 0));
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(f.fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(x->ctx, nounwind, 0));
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(x->ctx, f.fn, "entry");
    f.start = LLVMAppendBasicBlockInContext(x->ctx, f.fn, "start");
    f.entry = LLVMCreateBuilderInContext(x->ctx);
    LLVMPositionBuilderAtEnd(f.entry, entry);
    LLVMPositionBuilderAtEnd(x->b, f.start);
    return f;
}

void dc_lx_fn_close(dc_lx *x, dc_lx_fn *f) {
    LLVMBuildRetVoid(x->b);
    LLVMBuildBr(f->entry, f->start);
    LLVMDisposeBuilder(f->entry);
}

/* ---- memory ------------------------------------------------------------------------------ */

LLVMValueRef dc_lx_i64c(dc_lx *x, int64_t v) { return LLVMConstInt(x->i64, (uint64_t)v, 1); }

LLVMValueRef dc_lx_gep(dc_lx *x, LLVMValueRef p, LLVMValueRef off) {
    return LLVMBuildGEP2(x->b, x->f32, p, &off, 1, "");
}

LLVMValueRef dc_lx_sload(dc_lx *x, LLVMValueRef p, LLVMValueRef off) {
    LLVMValueRef v = LLVMBuildLoad2(x->b, x->f32, dc_lx_gep(x, p, off), "");
    LLVMSetAlignment(v, 4);
    return v;
}

void dc_lx_sstore(dc_lx *x, LLVMValueRef p, LLVMValueRef off, LLVMValueRef v) {
    LLVMSetAlignment(LLVMBuildStore(x->b, v, dc_lx_gep(x, p, off)), 4);
}

LLVMValueRef dc_lx_vload(dc_lx *x, LLVMTypeRef vt, LLVMValueRef p, LLVMValueRef off, LLVMValueRef mask) {
    LLVMValueRef q = dc_lx_gep(x, p, off);
    if (!mask) {
        LLVMValueRef v = LLVMBuildLoad2(x->b, vt, q, "");
        LLVMSetAlignment(v, 4);
        return v;
    }
    return dc_lx_intrinsic(x, "llvm.masked.load", (LLVMTypeRef[]){ vt, x->ptr }, 2,
                           (LLVMValueRef[]){ q, LLVMConstInt(x->i32, 4, 0), mask, LLVMConstNull(vt) }, 4);
}

void dc_lx_vstore(dc_lx *x, LLVMValueRef p, LLVMValueRef off, LLVMValueRef v, LLVMValueRef mask) {
    LLVMValueRef q = dc_lx_gep(x, p, off);
    if (!mask) {
        LLVMSetAlignment(LLVMBuildStore(x->b, v, q), 4);
        return;
    }
    LLVMTypeRef vt = LLVMTypeOf(v);
    dc_lx_intrinsic(x, "llvm.masked.store", (LLVMTypeRef[]){ vt, x->ptr }, 2,
                    (LLVMValueRef[]){ v, q, LLVMConstInt(x->i32, 4, 0), mask }, 4);
}

LLVMValueRef dc_lx_fma(dc_lx *x, LLVMValueRef u, LLVMValueRef v, LLVMValueRef w) {
    LLVMTypeRef t = LLVMTypeOf(u);
    return dc_lx_intrinsic(x, "llvm.fma", &t, 1, (LLVMValueRef[]){ u, v, w }, 3);
}

LLVMValueRef dc_lx_stack(dc_lx *x, LLVMBuilderRef entry, LLVMTypeRef t, int64_t n) {
    LLVMValueRef v = LLVMBuildArrayAlloca(entry, t, dc_lx_i64c(x, n), "");
    LLVMSetAlignment(v, 64);
    return v;
}

/* ---- small builders -------------------------------------------------------------------- */

static LLVMValueRef fmul(dc_lx *x, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(x->b, a, b, ""); }
static LLVMValueRef fadd(dc_lx *x, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(x->b, a, b, ""); }
static LLVMValueRef fsub(dc_lx *x, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(x->b, a, b, ""); }
static LLVMValueRef fcmp(dc_lx *x, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFCmp(x->b, p, a, b, "");
}
static LLVMValueRef sel(dc_lx *x, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(x->b, c, a, b, "");
}

/* a * b + c, rounded once */
static LLVMValueRef fma3(dc_lx *x, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    LLVMTypeRef t = LLVMTypeOf(a);
    return dc_lx_intrinsic(x, "llvm.fma", &t, 1, (LLVMValueRef[]){ a, b, c }, 3);
}

/* c[0] + v * (c[1] + v * (... c[n-1])), each step one fused multiply-add */
static LLVMValueRef horner(dc_lx *x, LLVMValueRef v, const double *c, int n, int w) {
    LLVMValueRef p = dc_lx_f32(x, (float)c[n - 1], w);
    for (int i = n - 2; i >= 0; i--) p = fma3(x, v, p, dc_lx_f32(x, (float)c[i], w));
    return p;
}

LLVMValueRef dc_lx_lane_xor(dc_lx *x, LLVMValueRef v, int h) {
    int w = (int)LLVMGetVectorSize(LLVMTypeOf(v));
    LLVMValueRef partner[64];
    for (int i = 0; i < w; i++) partner[i] = LLVMConstInt(x->i32, (uint64_t)(i ^ h), 0);
    return LLVMBuildShuffleVector(x->b, v, LLVMGetPoison(LLVMTypeOf(v)), LLVMConstVector(partner, (unsigned)w), "");
}

LLVMValueRef dc_lx_maxf(dc_lx *x, LLVMValueRef u, LLVMValueRef v) {
    LLVMValueRef c = LLVMBuildOr(x->b, fcmp(x, LLVMRealUNO, u, u), fcmp(x, LLVMRealOGT, u, v), "");
    return sel(x, c, u, v);
}

LLVMValueRef dc_lx_minf(dc_lx *x, LLVMValueRef u, LLVMValueRef v) {
    LLVMValueRef c = LLVMBuildOr(x->b, fcmp(x, LLVMRealUNO, u, u), fcmp(x, LLVMRealOLT, u, v), "");
    return sel(x, c, u, v);
}

/* ---- exp -------------------------------------------------------------------------------- */

/* 2^n for i32 n in [-126, 127] */
static LLVMValueRef pow2i(dc_lx *x, LLVMValueRef n, int w) {
    LLVMValueRef bits = LLVMBuildShl(x->b, LLVMBuildAdd(x->b, n, dc_lx_i32(x, 127, w), ""),
                                     dc_lx_i32(x, 23, w), "");
    return LLVMBuildBitCast(x->b, bits, dc_lx_type(x->f32, w), "");
}

/* p(r) ~ exp(r) on |r| <= ln 2 / 2: 1 + r + r^2 (c2 + ... + c6 r^4), minimax for the relative
 * error (3.8e-9 with these f32 coefficients; the degree-7 Taylor polynomial: 7.0e-9) */
static const double exp_poly[7] = { 1.0, 1.0, 0.4999999403953552, 0.1666652113199234, 0.04166838899254799,
                                    0.008368708193302155, 0.001381460577249527 };

/* The reduction of exp(v), v in [-104, 89]: returns r = v - n ln 2 (two-constant reduction,
 * fused) with n = round(v / ln 2), and *n as an i32, read from the bits of v / ln 2 + 1.5 * 2^23
 * (whose low bits hold n after the add rounds). */
static LLVMValueRef exp_reduce(dc_lx *x, LLVMValueRef v, int w, LLVMValueRef *n) {
    LLVMValueRef magic = dc_lx_f32(x, 12582912.0f, w); /* 1.5 * 2^23: rounds to an integer */
    LLVMValueRef shifted = fadd(x, fmul(x, v, dc_lx_f32(x, 1.44269504088896341f, w)), magic);
    LLVMValueRef nf = fsub(x, shifted, magic);
    *n = LLVMBuildSub(x->b, LLVMBuildBitCast(x->b, shifted, dc_lx_type(x->i32, w), ""), dc_lx_i32(x, 0x4b400000, w), "");
    LLVMValueRef r = fma3(x, nf, dc_lx_f32(x, -0.693359375f, w), v);
    return fma3(x, nf, dc_lx_f32(x, 2.12194440e-4f, w), r);
}

/* exp(v) = 2^n * p(r) (exp_reduce, exp_poly); 2^n is applied in two halves so that results
 * down to the subnormals come out. */
LLVMValueRef dc_lx_exp(dc_lx *x, LLVMValueRef v, int w) {
    LLVMValueRef xc = sel(x, fcmp(x, LLVMRealOLT, v, dc_lx_f32(x, 89.0f, w)), v, dc_lx_f32(x, 89.0f, w));
    xc = sel(x, fcmp(x, LLVMRealOGT, xc, dc_lx_f32(x, -104.0f, w)), xc, dc_lx_f32(x, -104.0f, w));
    LLVMValueRef n, r = exp_reduce(x, xc, w, &n);
    LLVMValueRef p = horner(x, r, exp_poly, 7, w);
    LLVMValueRef n1 = LLVMBuildAShr(x->b, n, dc_lx_i32(x, 1, w), "");
    LLVMValueRef n2 = LLVMBuildSub(x->b, n, n1, "");
    LLVMValueRef res = fmul(x, fmul(x, p, pow2i(x, n1, w)), pow2i(x, n2, w));
    return sel(x, fcmp(x, LLVMRealUNO, v, v), v, res);
}

/* exp(v) for v <= 0 (softmax's exp(s - max)), cheaper than dc_lx_exp: v is clamped at
 * -87.3 (exp = 1.2e-38, so 2^n stays a normal number and one multiply applies it), so
 * results under that come out as about 1e-38 instead of the subnormals; -inf gives 1e-38
 * too (callers that need 0 select it), NaN stays NaN. */
LLVMValueRef dc_lx_exp_nonpos(dc_lx *x, LLVMValueRef v, int w) {
    LLVMValueRef lo = dc_lx_f32(x, -87.3f, w);
    LLVMValueRef xc = sel(x, fcmp(x, LLVMRealOLT, v, lo), lo, v);
    LLVMValueRef n, r = exp_reduce(x, xc, w, &n);
    return fmul(x, horner(x, r, exp_poly, 7, w), pow2i(x, n, w));
}

/* ---- log -------------------------------------------------------------------------------- */

/* log(v) = e ln 2 + log(m), v = m 2^e with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s),
 * s = (m-1)/(m+1), by its series to s^9 (|s| <= 0.1716: truncation < 3e-9 relative).
 * Subnormals are scaled by 2^23 first; v < 0 -> NaN, 0 -> -inf, inf -> inf, NaN -> NaN. */
LLVMValueRef dc_lx_log(dc_lx *x, LLVMValueRef v, int w) {
    static const double c[5] = { 1.0, 1.0 / 3, 1.0 / 5, 1.0 / 7, 1.0 / 9 };
    LLVMTypeRef it = dc_lx_type(x->i32, w), ft = dc_lx_type(x->f32, w);
    LLVMValueRef den = fcmp(x, LLVMRealOLT, v, dc_lx_f32(x, 1.17549435e-38f, w));
    LLVMValueRef vs = sel(x, den, fmul(x, v, dc_lx_f32(x, 8388608.0f, w)), v);
    LLVMValueRef bits = LLVMBuildBitCast(x->b, vs, it, "");
    LLVMValueRef e = LLVMBuildSub(x->b, LLVMBuildLShr(x->b, bits, dc_lx_i32(x, 23, w), ""),
                                  sel(x, den, dc_lx_i32(x, 150, w), dc_lx_i32(x, 127, w)), "");
    LLVMValueRef mbits = LLVMBuildOr(x->b, LLVMBuildAnd(x->b, bits, dc_lx_i32(x, 0x7fffff, w), ""),
                                     dc_lx_i32(x, 0x3f800000, w), "");
    LLVMValueRef m = LLVMBuildBitCast(x->b, mbits, ft, "");
    LLVMValueRef big = fcmp(x, LLVMRealOGT, m, dc_lx_f32(x, 1.41421356f, w));
    m = sel(x, big, fmul(x, m, dc_lx_f32(x, 0.5f, w)), m);
    e = sel(x, big, LLVMBuildAdd(x->b, e, dc_lx_i32(x, 1, w), ""), e);
    LLVMValueRef f = fsub(x, m, dc_lx_f32(x, 1.0f, w));
    LLVMValueRef s = LLVMBuildFDiv(x->b, f, fadd(x, f, dc_lx_f32(x, 2.0f, w)), "");
    LLVMValueRef s2 = fadd(x, s, s);
    LLVMValueRef z = fmul(x, s, s);
    LLVMValueRef tail = fmul(x, s2, fmul(x, z, horner(x, z, c + 1, 4, w)));
    LLVMValueRef logm = fadd(x, s2, tail);
    LLVMValueRef ef = LLVMBuildSIToFP(x->b, e, ft, "");
    LLVMValueRef res = fadd(x, fmul(x, ef, dc_lx_f32(x, 0.693359375f, w)),
                            fadd(x, fmul(x, ef, dc_lx_f32(x, -2.12194440e-4f, w)), logm));
    res = sel(x, fcmp(x, LLVMRealOEQ, v, dc_lx_f32(x, 0.0f, w)), dc_lx_f32(x, -INFINITY, w), res);
    res = sel(x, fcmp(x, LLVMRealOLT, v, dc_lx_f32(x, 0.0f, w)), dc_lx_f32(x, NAN, w), res);
    res = sel(x, fcmp(x, LLVMRealOEQ, v, dc_lx_f32(x, INFINITY, w)), v, res);
    return sel(x, fcmp(x, LLVMRealUNO, v, v), v, res);
}

/* ---- tanh, sigmoid, log1p --------------------------------------------------------------- */

/* |v| < 0.25: the odd Taylor series to v^13 (truncation < 6e-12 relative); otherwise
 * sign(v) (1 - 2 / (exp(2|v|) + 1)). */
LLVMValueRef dc_lx_tanh(dc_lx *x, LLVMValueRef v, int w) {
    static const double c[6] = { -1.0 / 3, 2.0 / 15, -17.0 / 315, 62.0 / 2835, -1382.0 / 155925,
                                 21844.0 / 6081075 };
    LLVMValueRef a = dc_lx_intrinsic(x, "llvm.fabs", (LLVMTypeRef[]){ LLVMTypeOf(v) }, 1, &v, 1);
    LLVMValueRef z = fmul(x, v, v);
    LLVMValueRef small = fadd(x, v, fmul(x, fmul(x, v, z), horner(x, z, c, 6, w)));
    LLVMValueRef e = dc_lx_exp(x, fadd(x, a, a), w);
    LLVMValueRef q = LLVMBuildFDiv(x->b, dc_lx_f32(x, 2.0f, w), fadd(x, e, dc_lx_f32(x, 1.0f, w)), "");
    LLVMValueRef t = fsub(x, dc_lx_f32(x, 1.0f, w), q);
    t = sel(x, fcmp(x, LLVMRealOLT, v, dc_lx_f32(x, 0.0f, w)), LLVMBuildFNeg(x->b, t, ""), t);
    return sel(x, fcmp(x, LLVMRealOLT, a, dc_lx_f32(x, 0.25f, w)), small, t);
}

/* dc_sigmoidf: v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v)); exp(-|v|) by
 * dc_lx_exp_nonpos, 0 where -|v| < -87.3 (sigmoid(v) < 1.2e-38 there: flushed to 0) */
LLVMValueRef dc_lx_sigmoid(dc_lx *x, LLVMValueRef v, int w) {
    LLVMValueRef a = dc_lx_intrinsic(x, "llvm.fabs", (LLVMTypeRef[]){ LLVMTypeOf(v) }, 1, &v, 1);
    LLVMValueRef e = dc_lx_exp_nonpos(x, LLVMBuildFNeg(x->b, a, ""), w);
    e = sel(x, fcmp(x, LLVMRealOGT, a, dc_lx_f32(x, 87.3f, w)), dc_lx_f32(x, 0.0f, w), e);
    LLVMValueRef d = fadd(x, dc_lx_f32(x, 1.0f, w), e);
    LLVMValueRef pos = LLVMBuildFDiv(x->b, dc_lx_f32(x, 1.0f, w), d, "");
    LLVMValueRef neg = LLVMBuildFDiv(x->b, e, d, "");
    return sel(x, fcmp(x, LLVMRealOGE, v, dc_lx_f32(x, 0.0f, w)), pos, neg);
}

/* log1p(v) = log(u) * v / (u - 1), u = 1 + v (v itself when u rounds to 1): the rounding error
 * of 1 + v cancels in the quotient */
LLVMValueRef dc_lx_log1p(dc_lx *x, LLVMValueRef v, int w) {
    LLVMValueRef u = fadd(x, dc_lx_f32(x, 1.0f, w), v);
    LLVMValueRef d = fsub(x, u, dc_lx_f32(x, 1.0f, w));
    LLVMValueRef r = LLVMBuildFDiv(x->b, fmul(x, dc_lx_log(x, u, w), v), d, "");
    return sel(x, fcmp(x, LLVMRealOEQ, d, dc_lx_f32(x, 0.0f, w)), v, r);
}

/* ---- the formula primitives in LLVM (ir/formula.h gives their C meaning) ----------------- */

static bool is_f32(LLVMValueRef v) {
    LLVMTypeRef t = LLVMTypeOf(v);
    if (LLVMGetTypeKind(t) == LLVMVectorTypeKind) t = LLVMGetElementType(t);
    return LLVMGetTypeKind(t) == LLVMFloatTypeKind;
}

static LLVMValueRef i32_neg(dc_lx *lx, LLVMValueRef a, int w) {
    return LLVMBuildSub(lx->b, dc_lx_i32(lx, 0, w), a, "");
}

static LLVMValueRef lx_neg(dc_lx *lx, LLVMValueRef a, int w) {
    return is_f32(a) ? LLVMBuildFNeg(lx->b, a, "") : i32_neg(lx, a, w);
}

static LLVMValueRef lx_abs(dc_lx *lx, LLVMValueRef a, int w) {
    LLVMBuilderRef b = lx->b;
    LLVMTypeRef t = LLVMTypeOf(a);
    if (is_f32(a)) return dc_lx_intrinsic(lx, "llvm.fabs", &t, 1, &a, 1);
    return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, a, dc_lx_i32(lx, 0, w), ""), i32_neg(lx, a, w), a, "");
}

static LLVMValueRef lx_sqrt(dc_lx *lx, LLVMValueRef a) {
    LLVMTypeRef t = LLVMTypeOf(a);
    return dc_lx_intrinsic(lx, "llvm.sqrt", &t, 1, &a, 1);
}

/* dc_i32_div: v == 0 -> 0, v == -1 -> -u, else u / v */
static LLVMValueRef i32_div(dc_lx *lx, LLVMValueRef u, LLVMValueRef v, int w) {
    LLVMBuilderRef b = lx->b;
    LLVMValueRef zero = LLVMBuildICmp(b, LLVMIntEQ, v, dc_lx_i32(lx, 0, w), "");
    LLVMValueRef m1 = LLVMBuildICmp(b, LLVMIntEQ, v, dc_lx_i32(lx, -1, w), "");
    LLVMValueRef safe = LLVMBuildSelect(b, LLVMBuildOr(b, zero, m1, ""), dc_lx_i32(lx, 1, w), v, "");
    LLVMValueRef q = LLVMBuildSDiv(b, u, safe, "");
    q = LLVMBuildSelect(b, m1, i32_neg(lx, u, w), q, "");
    return LLVMBuildSelect(b, zero, dc_lx_i32(lx, 0, w), q, "");
}

typedef enum { ARITH_ADD, ARITH_SUB, ARITH_MUL, ARITH_DIV, ARITH_MAX, ARITH_MIN } arith;

static LLVMValueRef lx_arith(dc_lx *lx, arith op, LLVMValueRef u, LLVMValueRef v, int w) {
    LLVMBuilderRef b = lx->b;
    bool f = is_f32(u);
    switch (op) {
    case ARITH_ADD: return f ? LLVMBuildFAdd(b, u, v, "") : LLVMBuildAdd(b, u, v, "");
    case ARITH_SUB: return f ? LLVMBuildFSub(b, u, v, "") : LLVMBuildSub(b, u, v, "");
    case ARITH_MUL: return f ? LLVMBuildFMul(b, u, v, "") : LLVMBuildMul(b, u, v, "");
    case ARITH_DIV: return f ? LLVMBuildFDiv(b, u, v, "") : i32_div(lx, u, v, w);
    case ARITH_MAX:
        return f ? dc_lx_maxf(lx, u, v) : LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, u, v, ""), u, v, "");
    case ARITH_MIN:
        return f ? dc_lx_minf(lx, u, v) : LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, u, v, ""), u, v, "");
    }
    abort(); /* every arith is handled above */
}

/* a comparison as i32 0/1 */
static LLVMValueRef lx_cmp(dc_lx *lx, LLVMRealPredicate fp, LLVMIntPredicate ip, LLVMValueRef u, LLVMValueRef v, int w) {
    LLVMBuilderRef b = lx->b;
    LLVMValueRef r = is_f32(u) ? LLVMBuildFCmp(b, fp, u, v, "") : LLVMBuildICmp(b, ip, u, v, "");
    return LLVMBuildZExt(b, r, dc_lx_type(lx->i32, w), "");
}

static LLVMValueRef lx_where(dc_lx *lx, LLVMValueRef cond, LLVMValueRef a, LLVMValueRef b, int w) {
    LLVMValueRef t = LLVMBuildICmp(lx->b, LLVMIntNE, cond, dc_lx_i32(lx, 0, w), "");
    return LLVMBuildSelect(lx->b, t, a, b, "");
}

LLVMValueRef dc_lx_formula(dc_lx *lx, dc_op op, LLVMValueRef x, LLVMValueRef y, LLVMValueRef z, float e, int w) {
    (void)y, (void)z, (void)e;
#define X x
#define Y y
#define Z z
#define E dc_lx_f32(lx, e, w)
#define K(v) dc_lx_f32(lx, v, w)
#define NEG(a) lx_neg(lx, a, w)
#define ABS(a) lx_abs(lx, a, w)
#define EXP(a) dc_lx_exp(lx, a, w)
#define LOG(a) dc_lx_log(lx, a, w)
#define LOG1P(a) dc_lx_log1p(lx, a, w)
#define SQRT(a) lx_sqrt(lx, a)
#define SIN(a) dc_lx_libm(lx, "sinf", a, NULL, w)
#define COS(a) dc_lx_libm(lx, "cosf", a, NULL, w)
#define TANH(a) dc_lx_tanh(lx, a, w)
#define SIGMOID(a) dc_lx_sigmoid(lx, a, w)
#define POW(a, b) dc_lx_libm(lx, "powf", a, b, w)
#define ADD(a, b) lx_arith(lx, ARITH_ADD, a, b, w)
#define SUB(a, b) lx_arith(lx, ARITH_SUB, a, b, w)
#define MUL(a, b) lx_arith(lx, ARITH_MUL, a, b, w)
#define DIV(a, b) lx_arith(lx, ARITH_DIV, a, b, w)
#define MAX(a, b) lx_arith(lx, ARITH_MAX, a, b, w)
#define MIN(a, b) lx_arith(lx, ARITH_MIN, a, b, w)
#define EQ(a, b) lx_cmp(lx, LLVMRealOEQ, LLVMIntEQ, a, b, w)
#define NE(a, b) lx_cmp(lx, LLVMRealUNE, LLVMIntNE, a, b, w)
#define LT(a, b) lx_cmp(lx, LLVMRealOLT, LLVMIntSLT, a, b, w)
#define LE(a, b) lx_cmp(lx, LLVMRealOLE, LLVMIntSLE, a, b, w)
#define GT(a, b) lx_cmp(lx, LLVMRealOGT, LLVMIntSGT, a, b, w)
#define GE(a, b) lx_cmp(lx, LLVMRealOGE, LLVMIntSGE, a, b, w)
#define WHERE(cond, a, b) lx_where(lx, cond, a, b, w)
#define F32(f) return f;
#define ANY(f) return f;
#define CMP(f) return f;
    switch (op) {
#define DC_OP DC_FORM_CASE
#include "ir/ops.def"
#undef DC_OP
    default: abort(); /* the callers admit MAP ops only */
    }
}
