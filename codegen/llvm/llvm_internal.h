/* llvm_internal.h — shared by the LLVM codegen files: the emission context (one LLVM context,
 * module and builder per compiled kernel), the vector helpers and math of vmath.c, and the
 * kernel-IR-to-module lowering of emit.c. Values have a width w: w == 1 is a plain scalar,
 * w > 1 an LLVM vector of w lanes. */
#ifndef DC_LLVM_INTERNAL_H
#define DC_LLVM_INTERNAL_H

#include <llvm-c/Core.h>

#include "codegen/codegen.h"
#include "codegen/kir.h"

typedef struct {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef f32, i32, i64, i1, ptr;
    int lanes;  /* the kernel's vector width */
} dc_lx;

/* ---- vmath.c: types, constants, intrinsics --------------------------------------------- */

/* The width-w form of scalar type t. */
LLVMTypeRef dc_lx_type(LLVMTypeRef t, int w);
/* v (scalar) broadcast to width w. */
LLVMValueRef dc_lx_splat(dc_lx *x, LLVMValueRef v, int w);
LLVMValueRef dc_lx_f32(dc_lx *x, float v, int w);
LLVMValueRef dc_lx_i32(dc_lx *x, int32_t v, int w);
/* <0, 1, ..., w-1> as i64 (w > 1). */
LLVMValueRef dc_lx_iota64(dc_lx *x, int w);
/* A call of intrinsic `name` overloaded on types tys[n_tys]. */
LLVMValueRef dc_lx_intrinsic(dc_lx *x, const char *name, LLVMTypeRef *tys, int n_tys,
                             LLVMValueRef *args, int n_args);
/* scalar libm function float f(float[, float]) applied lane by lane. */
LLVMValueRef dc_lx_libm(dc_lx *x, const char *name, LLVMValueRef a, LLVMValueRef b, int w);

/* A range kernel's function `void name(ptr args, i64 begin, i64 end)` (nounwind): open makes
 * it with an entry block for allocas (built through .entry, which the optimizer promotes or
 * sizes once) and positions x->b at the start of its code; close returns after the code built
 * there and branches from the entry block to it. */
typedef struct { LLVMValueRef fn; LLVMBuilderRef entry; LLVMBasicBlockRef start; } dc_lx_fn;
dc_lx_fn dc_lx_fn_open(dc_lx *x, const char *name);
void dc_lx_fn_close(dc_lx *x, dc_lx_fn *f);

/* Memory: p is an f32 pointer, off an i64 element offset. A vector access of type vt with a
 * mask (an i1 vector; NULL: every lane) reads masked-off lanes as 0 and leaves them unwritten;
 * accesses assume 4-byte alignment only. */
LLVMValueRef dc_lx_i64c(dc_lx *x, int64_t v);
LLVMValueRef dc_lx_gep(dc_lx *x, LLVMValueRef p, LLVMValueRef off);
LLVMValueRef dc_lx_sload(dc_lx *x, LLVMValueRef p, LLVMValueRef off);
void dc_lx_sstore(dc_lx *x, LLVMValueRef p, LLVMValueRef off, LLVMValueRef v);
LLVMValueRef dc_lx_vload(dc_lx *x, LLVMTypeRef vt, LLVMValueRef p, LLVMValueRef off, LLVMValueRef mask);
void dc_lx_vstore(dc_lx *x, LLVMValueRef p, LLVMValueRef off, LLVMValueRef v, LLVMValueRef mask);
/* u * v + w rounded once (llvm.fma), scalar or vector */
LLVMValueRef dc_lx_fma(dc_lx *x, LLVMValueRef u, LLVMValueRef v, LLVMValueRef w);
/* n elements of type t on the stack, 64-byte aligned, allocated by entry (a builder in the
 * function's entry block, so the optimizer promotes or sizes them once) */
LLVMValueRef dc_lx_stack(dc_lx *x, LLVMBuilderRef entry, LLVMTypeRef t, int64_t n);

/* A loop over an i64 variable (an alloca the optimizer promotes): dc_lx_loop_open stores init
 * and opens the head block, where the caller builds the condition for dc_lx_loop_test, which
 * opens the body; dc_lx_loop_close adds step to the variable, branches back to the head and
 * continues after the loop. */
typedef struct { LLVMValueRef var; LLVMBasicBlockRef head, exit; } dc_lx_loop;
void dc_lx_loop_open(dc_lx *x, LLVMValueRef fn, dc_lx_loop *l, LLVMValueRef var, LLVMValueRef init);
void dc_lx_loop_test(dc_lx *x, LLVMValueRef fn, dc_lx_loop *l, LLVMValueRef cond);
void dc_lx_loop_close(dc_lx *x, dc_lx_loop *l, LLVMValueRef step);

/* ---- vmath.c: f32 math with the semantics of ir/formula.h's primitives ------------------ */

LLVMValueRef dc_lx_exp(dc_lx *x, LLVMValueRef v, int w);
LLVMValueRef dc_lx_exp_nonpos(dc_lx *x, LLVMValueRef v, int w);
LLVMValueRef dc_lx_log(dc_lx *x, LLVMValueRef v, int w);
LLVMValueRef dc_lx_tanh(dc_lx *x, LLVMValueRef v, int w);
LLVMValueRef dc_lx_sigmoid(dc_lx *x, LLVMValueRef v, int w);
LLVMValueRef dc_lx_log1p(dc_lx *x, LLVMValueRef v, int w);
/* v with lane i taking lane i ^ h (a step of the xor butterfly that reduces a vector) */
LLVMValueRef dc_lx_lane_xor(dc_lx *x, LLVMValueRef v, int h);
/* dc_maxf / dc_minf (NaN from either side) */
LLVMValueRef dc_lx_maxf(dc_lx *x, LLVMValueRef u, LLVMValueRef v);
LLVMValueRef dc_lx_minf(dc_lx *x, LLVMValueRef u, LLVMValueRef v);

/* The value of MAP op's ops.def formula (ir/formula.h's primitives in LLVM) with operands
 * x, y, z (unused ones may repeat x) and exponent e, at width w. */
LLVMValueRef dc_lx_formula(dc_lx *lx, dc_op op, LLVMValueRef x, LLVMValueRef y, LLVMValueRef z, float e, int w);

/* ---- emit.c ---------------------------------------------------------------------------- */

/* Builds into x->mod the function `void name(ptr args, i64 begin, i64 end)` computing k
 * (a collapsed, valid kernel with phases) with x->lanes-wide vectors. */
void dc_lx_emit_kernel(dc_lx *x, const dc_kir *k, const char *name);

/* ---- attention.c ------------------------------------------------------------------------ */

/* Whether dc_lx_emit_attention can build spec's kernel with `lanes`-wide vectors (8 or 16;
 * D, Dv and bk at most 32 vectors; bk a multiple of the lanes). */
bool dc_lx_attention_supported(const dc_attn_spec *s, int lanes);
/* Builds into x->mod the function `void name(ptr args, i64 begin, i64 end)` of spec's
 * forward or backward flash-attention kernel (codegen.h: dc_jit_compile_attention). */
void dc_lx_emit_attention(dc_lx *x, const dc_attn_spec *s, const char *name);

/* ---- gemm.c ------------------------------------------------------------------------------ */

/* Builds into x->mod the function `void name(ptr args, i64 begin, i64 end)` of spec's GEMM
 * kernel (codegen.h: dc_jit_compile_gemm); spec passed dc_gemm_spec_ok. */
void dc_lx_emit_gemm(dc_lx *x, const dc_gemm_spec *s, const char *name);

#endif
