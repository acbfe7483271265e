/* runtime.h — executing graphs: tensors, the reference executor (ref kernels over one
 * arena), the counter-based RNG, parameter initialisation, and .npy files. Stands on ir/ only. */
#ifndef DC_RUNTIME_H
#define DC_RUNTIME_H

#include "ir/ir.h"

/* A tensor: a type and a pointer to dense C-order data. */
typedef struct {
    dc_type type;
    void *data;
    bool owned;                 /* data is freed by dc_tensor_free */
} dc_tensor;

dc_tensor *dc_tensor_new(const dc_type *t);  /* zero-filled, 64-byte aligned */
void dc_tensor_free(dc_tensor *t);

/* ---- RNG: Philox4x32-10 ------------------------------------------------------------- */
void dc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* The i-th 32-bit word of stream `stream` under `seed`: word i%4 of the Philox block with
 * counter (i/4 lo, i/4 hi, stream lo, stream hi) and key (seed lo, seed hi). So a value
 * depends only on (seed, stream, i), never on threads or order. */
uint32_t dc_rng_u32(uint64_t seed, uint64_t stream, uint64_t i);
/* Uniform in (0, 1): never 0 or 1, so log() of it is finite. */
float dc_rng_uniform01(uint64_t seed, uint64_t stream, uint64_t i);
/* Standard normal from two uniforms (Box-Muller on words 2i and 2i+1). */
float dc_rng_normal(uint64_t seed, uint64_t stream, uint64_t i);

/* ---- ref kernels -------------------------------------------------------------------- */
/* Computes node n of g with plain C kernels: in[k] holds the value of n->in[k], out is
 * allocated with n->type. seed keys the random ops. Returns false and writes err on a
 * run-time error (gather index out of range, ...). Results do not depend on the number of
 * threads: work is split over outputs and each output is computed in a fixed order. */
bool dc_ref_eval(const dc_graph *g, const dc_node *n, const dc_tensor *const *in,
                 dc_tensor *out, uint64_t seed, char *err, size_t len);

/* Fills t per the init spec of PARAM node n, from stream XXH64(name) under seed. */
void dc_param_init(const dc_node *n, dc_tensor *t, uint64_t seed);

/* ---- the reference executor --------------------------------------------------------- */
typedef struct dc_exec dc_exec;

/* Verifies g, lays out every value in one arena, and initialises parameters from seed.
 * g must outlive the executor. NULL and err on failure. */
dc_exec *dc_exec_new(const dc_graph *g, uint64_t seed, char *err, size_t len);
void dc_exec_free(dc_exec *e);
/* Copies t into the input called name; the type must match exactly. */
bool dc_exec_set_input(dc_exec *e, const char *name, const dc_tensor *t, char *err, size_t len);
/* The seed of random ops from the next run on (parameters keep their values). */
void dc_exec_set_seed(dc_exec *e, uint64_t seed);
/* Runs every node in order. Inputs not set hold zeros. */
bool dc_exec_run(dc_exec *e, char *err, size_t len);
/* Views into the arena, valid until the next run or free. */
const dc_tensor *dc_exec_output(const dc_exec *e, int i);
dc_tensor *dc_exec_value(dc_exec *e, int node);
dc_tensor *dc_exec_param(dc_exec *e, const char *name);  /* NULL if no such param */
size_t dc_exec_arena_bytes(const dc_exec *e);

/* ---- .npy --------------------------------------------------------------------------- */
/* float32 and int32, little-endian, C order, format versions 1.0-3.0 on read; 1.0 on write.
 * Writes to PATH.tmp, fsyncs and renames. Errors name the file and what is wrong. */
bool dc_npy_write(const char *path, const dc_tensor *t, char *err, size_t len);
dc_tensor *dc_npy_read(const char *path, char *err, size_t len);

#endif
