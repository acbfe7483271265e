/* dnnl_internal.h — what the oneDNN provider's two files share: a call is a description of
 * one contraction (or activation) (its cache key, its arguments with their memory layouts and pointers, its
 * post-ops and how to make its oneDNN descriptor); ops.c fills calls from disco tensors and
 * core.c turns them into cached primitives and runs them. */
#ifndef DC_DNNL_INTERNAL_H
#define DC_DNNL_INTERNAL_H

#include <oneapi/dnnl/dnnl.h>

#include "codegen/codegen.h"

#define DNNL_MAX_ARGS 8
#define DNNL_MAX_POSTOPS 4

typedef enum { CALL_MATMUL, CALL_CONV_FWD, CALL_CONV_BWD_DATA, CALL_CONV_BWD_WEIGHT, CALL_ELTWISE } call_op;

/* The full descriptor of a call, hashed and compared by its bytes: every field is an
 * int64_t or a float written explicitly into a zero-filled key, so there is no padding. */
typedef struct {
    int64_t op, threads;
    int64_t rank[DNNL_MAX_ARGS];
    int64_t dim[DNNL_MAX_ARGS][DC_MAX_RANK];
    int64_t trans_a, trans_b;
    int64_t stride[2], pad[2], groups;
    int64_t has_bias, act, has_residual, has_db;
    int64_t winograd; /* a convolution: try oneDNN's Winograd kernels first */
    float scale, pad_to_8; /* pad_to_8 stays 0: the key has no implicit padding */
} call_key;

/* One argument of the primitive: its DNNL_ARG_*, the layout of the caller's buffer, and the
 * buffer. */
typedef struct {
    int arg;
    dnnl_memory_desc_t md;
    void *ptr;
} call_arg;

/* A post-op: eltwise (alg, alpha, beta) or, when binary_arg >= 0, a binary add of that
 * argument. */
typedef struct {
    dnnl_alg_kind_t alg;
    float alpha, beta;
    int binary_arg;
} call_postop;

typedef union {
    dnnl_convolution_desc_t conv;
    dnnl_matmul_desc_t matmul;
    dnnl_eltwise_desc_t eltwise;
} call_desc;

typedef struct call call;
/* Fills the operation descriptor with the weights layout wmd (plain or `any`); for backward
 * ops also the forward descriptor that hints oneDNN's choice (*has_hint). winograd: describe
 * a convolution as Winograd with its activations' layouts `any` (the kernels want blocked
 * ones; core.c reorders the caller's buffers to and from them). */
typedef dnnl_status_t (*call_desc_fn)(const call *c, const dnnl_memory_desc_t *wmd, bool winograd,
                                      call_desc *d, call_desc *hint, bool *has_hint);

struct call {
    const char *name;          /* "matmul", "conv2d", ... for messages */
    char what[256];            /* operand shapes and attributes, for messages */
    call_key key;
    int n_args;
    call_arg args[DNNL_MAX_ARGS];
    int weight;                /* index of the weight argument that may use a blocked layout, or -1 */
    bool weight_is_output;     /* that argument is written (diff weights) rather than read */
    int n_postops;
    call_postop postops[DNNL_MAX_POSTOPS];
    call_desc_fn desc;
    const float *residual;     /* added to the dst argument after each run; NULL for none */
    int64_t residual_n;
};

/* Zero-fills c and sets its op, name and thread count. */
void dnnl_call_init(call *c, call_op op, const char *name);
/* Appends an argument; returns its index. */
int dnnl_call_arg(call *c, int arg, const dnnl_memory_desc_t *md, const void *ptr);
/* The argument with DNNL_ARG_* `arg`, or NULL. */
const call_arg *dnnl_call_find(const call *c, int arg);
/* Records shape s as key operand i. */
void dnnl_call_key_shape(call *c, int i, const dc_shape *s);
/* *any = the layout `any` (the kernel's choice) of user's dims. */
void dnnl_any_md(dnnl_memory_desc_t *any, const dnnl_memory_desc_t *user);
/* Builds (or finds) the primitive for c and runs it. */
bool dnnl_call_run(call *c, char *err, size_t len);

#endif
