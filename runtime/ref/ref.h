/* ref.h — internal interface of the reference kernels: one entry point per op family
 * (the KIND column of ops.def); ref.c dispatches to them. */
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

/* Each returns false (and writes a->err) on a run-time error or an op it does not own. */
bool dc_ref_source(const dc_ref_args *a);       /* fill, iota */
bool dc_ref_elementwise(const dc_ref_args *a);
bool dc_ref_reduction(const dc_ref_args *a);
bool dc_ref_contraction(const dc_ref_args *a);
bool dc_ref_norm(const dc_ref_args *a);
bool dc_ref_movement(const dc_ref_args *a);
bool dc_ref_random(const dc_ref_args *a);
bool dc_ref_loss(const dc_ref_args *a);

#endif
