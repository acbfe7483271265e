/* op_util.h — helpers for op forward tests: make tensors from literals and evaluate one op
 * through its shape rule and ref kernel; random inputs for a compiled program; the memory
 * plan checks' rule for a state update written over its param. */
#ifndef DC_OP_UTIL_H
#define DC_OP_UTIL_H

#include "runtime/runtime.h"

/* A tensor of the given type filled from vals (numel floats, converted for i32). */
dc_tensor *tu_tensor(dc_dtype dt, int rank, const int64_t *dims, const float *vals);
/* Evaluates op on inputs with attr (NULL: zeros). declared: the type for ops whose type is
 * declared (sources, reshape, broadcast_to, random), else NULL. Returns the result, or NULL
 * with the shape rule's or kernel's message in err. seed keys random ops. */
dc_tensor *tu_eval(dc_op op, const dc_attr *attr, int n_in, dc_tensor *const *ins,
                   const dc_type *declared, uint64_t seed, char *err, size_t len);
/* Frees n tensors (NULLs allowed). */
void tu_free(int n, ...);
/* Element i as double (f32 or i32). */
double tu_get(const dc_tensor *t, int64_t i);
/* Sets every (f32) INPUT of g in e to uniform values in [-1, 1) from seed (stream: the node's
 * id); false on the first input e refuses. */
bool tu_set_uniform_inputs(dc_exec *e, const dc_graph *g, uint64_t seed);

/* Value b may take param a's slot: b is a's state-update value and no node after b reads a
 * (a's old value is dead once b is written). */
bool tu_update_over_param(const dc_graph *g, int a, int b);

#endif
