/* ref.h — the interface of the reference kernels: what a kernel sees, and the kernel of every
 * op, named by ops.def's ref column and defined in the op's family file (ops/). ref.c builds
 * the dispatch table from the rows. */
#ifndef DC_REF_H
#define DC_REF_H

#include "runtime/runtime.h"

typedef struct {
    const dc_graph *g;
    const dc_node *n;            /* the node computed; n->type is out's type */
    const dc_tensor *const *in;  /* in[k]: value of n->in[k] */
    dc_tensor *out;              /* allocated, n->type */
    uint64_t seed;               /* run seed, for random ops */
    char *err;                   /* run-time errors: "gather: index 12 out of range [0, 10)" */
    size_t len;
} dc_ref_args;

/* A kernel: computes a->out; false (and a->err) on a run-time error. */
typedef bool dc_ref_fn(const dc_ref_args *a);
#define DC_OP(NAME, text, kind, arity, attr, shape, vjp, ref, lower, form) dc_ref_fn dc_ref_##ref;
#include "ir/ops.def"
#undef DC_OP

#endif
