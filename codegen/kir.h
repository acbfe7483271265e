/* kir.h — the kernel IR: one fused group as a loop-level program that codegen/llvm/ turns into
 * a SIMD kernel `void k(void **args, int64_t begin, int64_t end)` and dc_kir_interpret runs in
 * plain C (the oracle of the codegen tests).
 *
 * The loops. A kernel has an OUTER index space (rank 0..6, dims >= 1; N = product of its dims,
 * 1 for rank 0) and an INNER index space (rank 0..6, dims >= 1). The runtime runs the kernel
 * over the flattened, row-major outer range [0, N), split into [begin, end) per thread. For
 * every outer index o, the kernel's PHASES run in order. A phase is one pass over the inner
 * space (row-major order), or, for a per-row phase, a single evaluation with every inner index
 * 0. A phase holds, in creation order:
 *   - stores: for every inner index, buffer[map(o, i)] = expr(o, i);
 *   - reductions: combine (sum or max) of expr(o, i) over the inner space into one scalar per
 *     outer index, which the expressions of LATER phases read (a DC_KIR_RESULT node);
 *   - reducing stores: buffer[map(o, i)] = the combine of expr(o, i) over the inner axes along
 *     which map does not move (its folded axes), one per outer index and kept inner index (a
 *     bias gradient's per-channel sums of one sample, kept per lane of a group norm's rows):
 *     in row-major order from the combine's identity, the first index of the folded axes
 *     starting over. Nothing reads them back in the kernel. The kept axes must include the
 *     last inner axis of extent > 1 (the axis code vectorises, so lanes never fold together).
 * Reductions and reducing stores need an inner rank >= 1 and are not allowed in per-row
 * phases.
 *
 * Memory semantics. At one index of a phase, every load of the phase reads memory as it was
 * before any store of that index (all expressions are evaluated, then the stores happen in
 * order), so in-place updates (AdamW writing p, m, v over its inputs) are well defined when a
 * store's map equals the loads' of the same buffer. Stores of earlier phases are visible to
 * later phases of the same outer index. A phase must not load an element that it stores at
 * another index, and distinct outer indices must not depend on each other (threads run them
 * in any order): the result is unspecified then (never a crash: every access is checked to
 * stay inside its buffer when the kernel is built).
 *
 * Expressions form a DAG (an array; operands are earlier entries) of:
 *   LOAD   buffer[map(o, i)], the buffer's dtype; a checked load (dc_kir_load_checked) adds an
 *          i32 index expression times a stride to the position (a gather) and/or is 0 where an
 *          i32 guard expression is 0 (a concat's or a padding's missing part), and clamps its
 *          position into the buffer, so any index or guard is memory-safe;
 *   CONST  an f32 or i32 constant;
 *   INDEX  the i32 value map(o, i) itself (iota: the position along an axis, a flat index...);
 *   RESULT the scalar of an earlier phase's reduction (same for every inner index);
 *   OP     an elementwise op with its exact semantics: one whose ops.def lower column is MAP
 *          (its formula; POW with its exponent), CAST with its target dtype, or WHERE(i32
 *          cond, a, b).
 *
 * Index maps are affine, in elements: map(o, i) = offset + sum_d outer[d] * o_d
 * + sum_d inner[d] * i_d, where o_d / i_d are the multi-index of the outer / inner index.
 * Broadcast is stride 0, a transpose permutes strides, a slice has an offset and strides.
 * Entries past the space's rank are ignored (stored as 0).
 *
 * Reduction order: the interpreter combines in inner row-major order (sums in the dtype of
 * the expression, starting from 0; max as the maximum op's, NaN-propagating, starting
 * from -inf / INT32_MIN); generated code uses vector accumulators and a fixed-order
 * horizontal reduction, so f32 sums agree within rounding, not bitwise.
 *
 * Building. Builder calls return the new entry's index, or -1 on bad input (an operand of -1,
 * a dtype mismatch, an access outside its buffer, too many entries...): the first error is
 * kept in the kernel (dc_kir_error) and every later call returns -1, so a caller may build a
 * whole kernel and check once. A kernel with an error cannot be printed, hashed, interpreted
 * or compiled (those fail cleanly). Not thread-safe per kernel; kernels are independent. */
#ifndef DC_KIR_H
#define DC_KIR_H

#include "ir/ir.h"

#define DC_KIR_MAX_BUFS 32

typedef struct {
    int64_t offset;
    int64_t outer[DC_MAX_RANK];  /* stride per outer axis, in elements */
    int64_t inner[DC_MAX_RANK];  /* stride per inner axis, in elements */
} dc_kir_map;

typedef enum { DC_KIR_LOAD, DC_KIR_CONST, DC_KIR_INDEX, DC_KIR_RESULT, DC_KIR_OP } dc_kir_kind;

typedef struct {
    dc_kir_kind kind;
    dc_dtype dtype;      /* of the value */
    dc_op op;            /* OP: the elementwise op */
    int arg[3];          /* OP: operands (earlier expressions), -1 when unused; a checked
                          * LOAD: arg[0] its index, arg[1] its guard (-1: none) */
    int64_t stride;      /* a checked LOAD's index stride */
    int buf;             /* LOAD: the buffer (args index) */
    dc_kir_map map;      /* LOAD, INDEX */
    float f;             /* CONST f32 value; POW exponent */
    int32_t i;           /* CONST i32 value */
    dc_dtype to;         /* CAST: target dtype */
    int result;          /* RESULT: the reduction's index in dc_kir.reduces */
    int after;           /* the latest phase whose results it reads (-1: none) */
} dc_kir_expr;

typedef enum { DC_KIR_SUM, DC_KIR_MAX } dc_kir_combine;

typedef struct { int phase; dc_kir_combine combine; int expr; } dc_kir_reduce;
typedef struct {
    int phase, buf;
    dc_kir_map map;
    int expr;
    bool reduce;             /* a reducing store, with combine */
    dc_kir_combine combine;
} dc_kir_store;
typedef struct { bool per_row; } dc_kir_phase;
typedef struct { dc_dtype dtype; int64_t numel; bool written; } dc_kir_buffer;

/* The kernel. Read its fields freely (codegen, tests, printers); change it only through the
 * builder, which keeps it valid. */
typedef struct dc_kir {
    int outer_rank, inner_rank;
    int64_t outer[DC_MAX_RANK], inner[DC_MAX_RANK];
    int n_bufs;
    dc_kir_buffer bufs[DC_KIR_MAX_BUFS];
    int n_exprs, n_phases, n_reduces, n_stores;
    dc_kir_expr *exprs;
    dc_kir_phase *phases;
    dc_kir_reduce *reduces;
    dc_kir_store *stores;
    int cap_exprs, cap_phases, cap_reduces, cap_stores;
    char err[DC_ERR_LEN];        /* "" while the kernel is valid */
} dc_kir;

/* ---- building ------------------------------------------------------------------------ */

/* A new kernel over outer dims [outer_rank] and inner dims [inner_rank] (either may be
 * NULL with rank 0). Bad ranks or dims give a kernel whose error says so. Never NULL. */
dc_kir *dc_kir_new(int outer_rank, const int64_t *outer, int inner_rank, const int64_t *inner);
void dc_kir_free(dc_kir *k);
/* The first error, or NULL while the kernel is valid. */
const char *dc_kir_error(const dc_kir *k);
/* N, the size of the flattened outer range (the runtime step's range). */
int64_t dc_kir_range(const dc_kir *k);

/* Declares args[next] as a buffer of numel elements of dtype; written: the kernel may store
 * to it (it may also load from it). Returns the buffer index (0, 1, ... in call order). */
int dc_kir_buffer_add(dc_kir *k, dc_dtype dtype, int64_t numel, bool written);

/* A map with the given offset and strides: outer has k's outer rank entries, inner its inner
 * rank entries; either may be NULL (all 0). */
dc_kir_map dc_kir_map_make(const dc_kir *k, int64_t offset, const int64_t *outer, const int64_t *inner);

/* Whether map m does not move with the inner index (every inner stride 0). */
bool dc_kir_map_inner_free(const dc_kir_map *m);

int dc_kir_load(dc_kir *k, int buf, dc_kir_map map);
/* A checked load: buf[map(o, i) + index * stride], or 0 where guard is 0; index and guard are
 * i32 expressions or -1 (none); the position is clamped into the buffer (no bound check when
 * built). With neither, dc_kir_load. */
int dc_kir_load_checked(dc_kir *k, int buf, dc_kir_map map, int index, int64_t stride, int guard);
int dc_kir_const_f32(dc_kir *k, float v);
int dc_kir_const_i32(dc_kir *k, int32_t v);
int dc_kir_index(dc_kir *k, dc_kir_map map);
/* An op whose ops.def lower column is MAP (its formula), but where: args[0..arity) of one
 * dtype that the formula takes; exponent is pow's (0 for the others). */
int dc_kir_op(dc_kir *k, dc_op op, const int *args, float exponent);
int dc_kir_unary(dc_kir *k, dc_op op, int a);        /* dc_kir_op of one operand */
int dc_kir_binary(dc_kir *k, dc_op op, int a, int b); /* dc_kir_op of two operands */
int dc_kir_cast(dc_kir *k, int a, dc_dtype to);
int dc_kir_where(dc_kir *k, int cond, int a, int b);

/* Starts a new phase (later stores and reductions belong to it); returns its index. A
 * kernel starts with no phase: call this before the first store or reduction. */
int dc_kir_phase_begin(dc_kir *k, bool per_row);
/* Adds a reduction of expr to the current phase; returns a RESULT expression (f32 or i32,
 * expr's dtype) that expressions used by later phases may read. */
int dc_kir_reduce_add(dc_kir *k, dc_kir_combine combine, int expr);
/* Adds buf[map] = expr to the current phase (buf written, dtypes equal); returns the store's
 * index. An expression used by a phase may only read results of earlier phases. */
int dc_kir_store_add(dc_kir *k, int buf, dc_kir_map map, int expr);
/* Adds a reducing store (see the phases above) of expr into buf[map] to the current phase;
 * returns the store's index. */
int dc_kir_store_reduce_add(dc_kir *k, int buf, dc_kir_map map, int expr, dc_kir_combine combine);

/* ---- using ----------------------------------------------------------------------------- */

/* The canonical text (deterministic: equal kernels print equal text, any change to the
 * kernel changes it), malloc'd; NULL for a kernel with an error. Floats print as exact hex
 * bit patterns next to their decimal value. */
char *dc_kir_print(const dc_kir *k);
/* XXH3-128 of the canonical text; {0, 0} for a kernel with an error. */
dc_hash128 dc_kir_hash(const dc_kir *k);

/* Runs outer indices [begin, end) with args[b] the data of buffer b; false (and nothing
 * done) for a kernel with an error, a kernel without phases, or a range outside [0, N]. */
bool dc_kir_interpret(const dc_kir *k, void **args, int64_t begin, int64_t end);

/* A copy of k with size-1 axes dropped and adjacent axes merged wherever every map's strides
 * allow (stride[d] == stride[d+1] * dim[d+1] for all loads, stores and indices): the same
 * kernel on fewer, longer axes (same range N, same results; an inner space keeps rank >= 1
 * when it had it). Codegen compiles this form. A kernel with an error copies as it is. */
dc_kir *dc_kir_collapse(const dc_kir *k);

#endif
