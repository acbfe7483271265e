/* lower_jit.h — the jit provider's lowerings for codegen/lower.c: a loop group (a run of
 * consecutive graph nodes, codegen/lower_jit.c) to one kernel IR (codegen/kir.h), and an
 * attention's result nodes to one flash-attention step (codegen/lower_attention.c). */
#ifndef DC_LOWER_JIT_H
#define DC_LOWER_JIT_H

#include "codegen/codegen.h"
#include "codegen/kir.h"
#include "runtime/runtime.h"

/* An index value (an i32 node read from its buffer) that a step must find in [0, bound)
 * before its kernel runs, the node that reads it and the words its error starts with
 * ("gather: index": "gather: index 12 out of range [0, 10)", as the ref kernels say). */
typedef struct { int node; int64_t bound; int reader; const char *what; } dc_index_check;

/* A lowered group: the kernel, the graph node whose data each kernel buffer is (the
 * materialised outputs first, in node order, then the external inputs in the order the
 * kernel first reads them): a runtime step's args, and its index checks. */
typedef struct {
    dc_kir *kir;
    int n_args;
    int args[DC_KIR_MAX_BUFS];
    int n_checks;
    dc_index_check checks[DC_KIR_MAX_BUFS];
} dc_jit_group;

/* Lowers nodes first..last of g (all of them computed, groupable ops) into out->kir, which
 * computes every member value that is read after the group, is a graph output or a state
 * update's value, and stores it into that node's buffer. false, out->kir NULL and the reason
 * in why when the kernel IR cannot express the group (the caller runs it on ref). */
bool dc_lower_group(const dc_graph *g, int first, int last, dc_jit_group *out, char *why, size_t len);

/* A step context made by codegen; the program's free_ctx calls its release. */
typedef struct dc_codegen_ctx { void (*release)(struct dc_codegen_ctx *self); } dc_codegen_ctx;

/* One jit step computing the results of the attention or attention_bwd computation whose
 * nodes are first..last (dc_results_last) with a flash-attention kernel, of the block sizes of
 * choice (a tuned "flash bq=.. bk=.." choice; NULL or another text: the defaults); false and
 * why when that kernel cannot take it (the caller runs the nodes on ref). */
bool dc_attention_step(const dc_graph *g, int first, int last, const char *choice, dc_step *s, char *why, size_t len);

/* Whether the memory plan puts a value step s writes over one of the inputs of its nodes (a
 * contraction's kernels read those while they write): the message names both. */
bool dc_step_overlaps(const dc_step *s, const dc_frame *f, char *msg, size_t len);

/* The jit GEMM step (codegen/lower_gemm.c) of a matmul, linear or fused_matmul node with the
 * kernel parameters of params (its operation fields are set from the node; NULL: the
 * dc_gemm_default for the node's shape); false and why for a node the GEMM cannot take or a
 * kernel LLVM cannot build. */
bool dc_gemm_step(const dc_graph *g, int node, const dc_gemm_spec *params, dc_step *s, char *why, size_t len);

#endif
