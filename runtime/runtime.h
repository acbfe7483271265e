/* runtime.h — executing graphs: tensors, the ref kernels, programs of provider steps and their
 * executor (one arena), profile and Chrome trace, the counter-based RNG, parameter
 * initialisation, .npy files and checkpoints. Stands on ir/ only. */
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
/* True when the data of a and b share bytes (e.g. two values of one arena). */
bool dc_tensor_overlap(const dc_tensor *a, const dc_tensor *b);

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

/* ---- programs and the executor ----------------------------------------------------- */
/* A program is an ordered list of steps; each runs one provider's kernel that computes the
 * value of one node (a fused kernel may compute several nodes: then only the last has a
 * step) from values in the executor's arena. The executor runs the steps in order without
 * knowing where they came from (codegen/ makes them; dc_exec_new makes the all-ref one). */
typedef struct dc_exec dc_exec;
typedef struct dc_step dc_step;
/* the most buffers a step's kernel takes (a fused group's inputs and outputs) */
#define DC_STEP_MAX_ARGS 32

/* What a step's call sees: the graph, every node's value (views into the arena), the seed
 * of this run's random ops. */
typedef struct {
    const dc_graph *g;
    dc_tensor *vals;
    uint64_t seed;
} dc_frame;

/* A range kernel (the jit provider's form): computes the outer iterations [begin, end) of
 * its node; args[i] is the data pointer of node step->args[i]. */
typedef void (*dc_range_kernel)(void **args, int64_t begin, int64_t end);

/* Whether a range kernel step is split over the threads: by its work against DC_PAR_MIN_WORK
 * (the default), or as `disco tune` measured faster in the program. Results are bitwise the
 * same either way (an outer index is computed alike). */
typedef enum { DC_SPLIT_RULE, DC_SPLIT_ALWAYS, DC_SPLIT_NEVER } dc_split_mode;

/* What a step's prepare hook decided about it. */
typedef enum {
    DC_STEP_READY,              /* the step runs as it is */
    DC_STEP_FALLBACK,           /* the step becomes dc_ref_step(node), the message its note */
    DC_STEP_FAILED,             /* the program cannot be built: the message says why */
} dc_step_verdict;

struct dc_step {
    int node;                   /* the node whose value the step writes */
    int span;                   /* it also writes the span nodes before node: the results of one
                                 * computation (ir.h: dc_results_last), node the last of them */
    const char *provider;       /* "ref", "dnnl", "jit": a static string */
    char impl[128];             /* the implementation, e.g. "brg:avx512_core"; may be "" */
    char note[160];             /* why the rule's provider was not used, or "" */
    bool writes_all;            /* writes every element of its output: no zero-fill first */
    /* exactly one of call and kernel is set */
    bool (*call)(const dc_step *s, const dc_frame *f, char *err, size_t len);
    dc_range_kernel kernel;     /* run as kernel(args, b, e) over [0, range), the range split
                                 * statically over the OpenMP threads (thread t of T gets
                                 * [range*t/T, range*(t+1)/T)), or over the whole range on the
                                 * calling thread when work < DC_PAR_MIN_WORK (an outer index
                                 * is computed alike either way) */
    int64_t range;
    int64_t work;               /* kernel: the elements it reads and writes, about; 0 = large */
    dc_split_mode split;        /* kernel: DC_SPLIT_RULE (by work), or a tuned choice */
    int n_args;
    int args[DC_STEP_MAX_ARGS];
    /* optional, range kernels: run before the kernel, after every earlier step; false refuses
     * the run with a message in err about node *node (a gather's index out of range, which
     * the kernel itself cannot report) */
    bool (*check)(const dc_step *s, const dc_frame *f, int *node, char *err, size_t len);
    void *ctx;                  /* the provider's, freed with the program's free_ctx */
    /* optional: called once, in step order, while dc_exec_new_program builds the program (the
     * arena laid out, params initialised), for a provider to validate its step where it will
     * run: it may try its kernel on the arena (f's values) and set s->impl; a message goes to
     * err. */
    dc_step_verdict (*prepare)(dc_step *s, const dc_frame *f, char *err, size_t len);
};

/* Below this many elements of work a range kernel runs on the calling thread: the barrier
 * after it (or entering an OpenMP parallel region) costs more than splitting saves. */
#define DC_PAR_MIN_WORK 32768

/* The ref step of node `node`: dc_ref_eval on a zero-filled (or in-place) output. */
dc_step dc_ref_step(int node);

/* Verifies g, lays out every value in one arena (at the offsets of the graph's memory plan
 * when it has one), initialises parameters from seed, takes a copy of the n steps, and runs
 * the prepare hook of each step that has one (a step that falls back to ref has its ctx freed;
 * a failed one fails the build: "node %3 (matmul): MESSAGE").
 * Steps must name non-source nodes in increasing order, kernels must have range >= 1 and
 * argument nodes in the graph. free_ctx (may be NULL) is called on each non-NULL ctx when
 * the executor is freed (also on failure here). g must outlive the executor. NULL and err on
 * failure. With $DISCO_TRACE set to FILE.json, every executed step becomes an event of a
 * Chrome trace written (atomically) to that file when an executor is freed (see dc_trace). */
dc_exec *dc_exec_new_program(const dc_graph *g, uint64_t seed, const dc_step *steps, int n,
                             void (*free_ctx)(void *ctx), char *err, size_t len);
/* dc_exec_new_program with the arena inside host's scratch (everything past its INPUT and
 * PARAM values, which a planned graph places first) when it fits there, else an arena of its
 * own (dc_exec_borrows_arena says which): a program run between the host's runs, as an
 * evaluation between training steps, then adds nothing to the process's peak memory. A
 * borrowing executor's values, params included, hold only until the host runs again (copy
 * params in before each use); host must outlive it; host NULL is dc_exec_new_program. */
dc_exec *dc_exec_new_program_in(const dc_graph *g, uint64_t seed, const dc_step *steps, int n,
                                void (*free_ctx)(void *ctx), dc_exec *host, char *err, size_t len);
/* Whether e's arena lies in another executor's scratch (dc_exec_new_program_in). */
bool dc_exec_borrows_arena(const dc_exec *e);
/* The all-ref program: one dc_ref_step per non-source node. */
dc_exec *dc_exec_new(const dc_graph *g, uint64_t seed, char *err, size_t len);
void dc_exec_free(dc_exec *e);
/* Copies t into the input called name; the type must match exactly. */
bool dc_exec_set_input(dc_exec *e, const char *name, const dc_tensor *t, char *err, size_t len);
/* The seed of random ops from the next run on (parameters keep their values). */
void dc_exec_set_seed(dc_exec *e, uint64_t seed);
/* Runs every step in order, then applies the graph's state updates as if at once. Inputs not
 * set hold zeros. Outputs are zero-filled before a step unless the step writes them all or
 * writes in place (its output slot is an input's, per the memory plan). Each run of
 * consecutive range kernels that has one to split shares one OpenMP parallel region, with a
 * barrier after each split step (unsplit ones run on the calling thread, its thread 0);
 * calls run outside it (they may open their own). Errors:
 * "node %3 (conv2d): MESSAGE" (a provider's messages name it: "dnnl conv2d: ..."). */
bool dc_exec_run(dc_exec *e, char *err, size_t len);
/* Whether range kernels share parallel regions (the default); false gives each split range
 * kernel a region of its own, for benchmarks and tests that compare the two. Results are
 * bitwise the same either way for a thread count. */
void dc_exec_share_regions(dc_exec *e, bool share);
/* Sets range kernel step i's split mode (the tuner times a program both ways). */
void dc_exec_set_split(dc_exec *e, int i, dc_split_mode m);
/* Whether range kernel step s runs split over the threads under its mode. */
bool dc_step_splits(const dc_step *s);
/* The program's steps as built (after their prepare hooks). */
const dc_step *dc_exec_steps(const dc_exec *e, int *n);
/* How many of the program's steps run on ref; buf gets their ops with counts in program
 * order ("group_norm_bwd x3, sum x11"; "" when none), truncated to len. No fallback is
 * silent: the trainer and the samplers print this. */
int dc_exec_ref_summary(const dc_exec *e, char *buf, size_t len);
/* Time spent in step i over all runs so far (CLOCK_MONOTONIC). */
typedef struct { int64_t calls, ns; } dc_step_time;
dc_step_time dc_exec_step_time(const dc_exec *e, int i);
/* Views into the arena, valid until the next run or free. */
const dc_tensor *dc_exec_output(const dc_exec *e, int i);
/* With a memory plan, only INPUT, PARAM, output and update values are valid after a run:
 * intermediates share arena space. */
dc_tensor *dc_exec_value(dc_exec *e, int node);
dc_tensor *dc_exec_param(dc_exec *e, const char *name);  /* NULL if no such param */
/* Which params dc_exec_copy_params copies: every PARAM of dst's graph whose name is
 * to + REST gets the value of src's param from + REST (NULL prefixes read as ""). */
typedef struct {
    const char *from, *to;
    bool need_all;              /* a dst param without its source in src is an error; else it
                                 * is left alone */
} dc_param_map;
/* Copies param values by name between executors (or within one: from "", to "ema." starts an
 * EMA at the params), e.g. trained params into a forward-only program of the same model.
 * Nothing is copied unless every source found has its destination's type: else false and
 * "params: 'a.w' of graph @x is f32[2,3], 'a.w' of graph @y f32[3,3]" (or "params: graph @x
 * has no param 'a.w' (for 'a.w' of graph @y)" when need_all). */
bool dc_exec_copy_params(const dc_exec *src, dc_exec *dst, const dc_param_map *map, char *err, size_t len);
size_t dc_exec_arena_bytes(const dc_exec *e);

/* ---- profile and trace (runtime/trace.c) ------------------------------------------- */
/* The per-step table of `disco run --profile`, in schedule order: step, node, op, provider,
 * impl, calls, total ms, mean us, % of the time in steps; then the total, and a line per step
 * whose note says why its provider is not the rule's. */
void dc_exec_print_profile(dc_exec *e, FILE *f);

/* The Chrome trace (chrome://tracing, Perfetto): {"traceEvents":[...]} with one complete
 * ("X") event per executed step: name "OP %NODE", cat the provider, ts and dur in
 * microseconds since the trace began (CLOCK_MONOTONIC), pid the process, tid the executor's
 * number (1, 2, ... in creation order), args {node, impl}. Events are kept in the executor
 * while it runs; freeing it appends them to the process's trace and rewrites the file
 * atomically, so the file always holds every freed executor's steps. Not thread-safe: one
 * thread creates, runs and frees executors. */
/* Starts the trace of path (or keeps it when it is already the current one): checks that
 * path can be written by writing an empty trace. "DISCO_TRACE: PATH: cannot write: ..." */
bool dc_trace_begin(const char *path, char *err, size_t len);
/* Seconds of CLOCK_MONOTONIC from an arbitrary origin: the one clock that times runs, stages
 * and benchmarks (elapsed = dc_seconds() - t0). */
double dc_seconds(void);
/* The median of v[0..n) (the upper one when n is even), n >= 1; sorts v. */
double dc_median(double *v, int n);
/* Nanoseconds of CLOCK_MONOTONIC since the first call in the process: the trace's time axis. */
int64_t dc_trace_now_ns(void);
/* Appends one event (times in ns of dc_trace_now_ns) to the process's trace. */
void dc_trace_add(const char *op, const char *node, const char *provider, const char *impl,
                  int tid, int64_t start_ns, int64_t dur_ns);
/* Rewrites the trace file with every event added so far. */
bool dc_trace_flush(char *err, size_t len);
/* Ends the trace and forgets its events (the file stays). */
void dc_trace_end(void);

/* ---- .npy --------------------------------------------------------------------------- */
/* float32 and int32, little-endian, C order, format versions 1.0-3.0 on read; 1.0 on write.
 * Writes to PATH.tmp, fsyncs and renames. Errors name the file and what is wrong. */
bool dc_npy_write(const char *path, const dc_tensor *t, char *err, size_t len);
dc_tensor *dc_npy_read(const char *path, char *err, size_t len);

/* ---- files, checkpoints, progress -------------------------------------------------- */
/* Writes PATH atomically: fill(f, ctx) writes the contents to PATH.tmp, which is then flushed,
 * fsync'd, renamed over PATH, and the directory fsync'd; on any failure PATH.tmp is removed
 * and PATH is untouched. fill returns false (with errno set) on a write error. Errors:
 * "PATH: cannot write: REASON" (or "PATH.tmp: cannot create: REASON"). */
bool dc_file_write_atomic(const char *path, bool (*fill)(FILE *f, void *ctx), void *ctx,
                          char *err, size_t len);

/* The graph e executes (a one-line accessor in exec.c). */
const dc_graph *dc_exec_graph(const dc_exec *e);

/* Saves every PARAM of e's graph (name, dtype, shape, data) and the caller's blob meta (e.g.
 * the training step and data position): a versioned header, a tensor table, the data, and an
 * XXH3-64 checksum of all of it; written to PATH.tmp, fsync'd, renamed over PATH, directory
 * fsync'd. */
bool dc_checkpoint_save(const char *path, dc_exec *e, const void *meta, size_t meta_len,
                        char *err, size_t len);
/* Loads PATH into e's params. Everything is verified before anything is changed: magic,
 * version, sizes, checksum, meta_len, and every param of the graph present by name with the
 * same dtype and shape (a tensor the graph does not have is an error too). Errors name the
 * file and the problem: "ckpt: PATH: bad checksum", "ckpt: PATH: truncated (...)",
 * "ckpt: PATH: missing tensor 'l0.w'", "ckpt: PATH: tensor 'l0.w' is f32[3,4], the graph
 * has f32[4,4]". meta may be NULL only when meta_len is 0. */
bool dc_checkpoint_load(const char *path, dc_exec *e, void *meta, size_t meta_len,
                        char *err, size_t len);
/* Only the meta blob of PATH (meta_len bytes) into meta, with the same checks of the whole
 * file as dc_checkpoint_load (so a model file's settings can be read before its graph is
 * built). */
bool dc_checkpoint_read_meta(const char *path, void *meta, size_t meta_len, char *err, size_t len);

/* A progress display for long loops. On a terminal (isatty(fileno(f))): one line redrawn
 * with \r at most ~10 times a second, `what [#####.....] step/total loss 0.1234 12.3 it/s
 * ETA 0:42`. Otherwise a plain line every ~5% of total and at the end: `what step 120/2400
 * loss 0.4321 it/s 35.2 eta 65s`. Rates and ETA from CLOCK_MONOTONIC since _new. */
typedef struct dc_progress dc_progress;
dc_progress *dc_progress_new(const char *what, int64_t total, FILE *f);
/* step: steps done so far (1..total); loss: the latest loss. */
/* loss NAN: no loss field (a stage that has none) */
void dc_progress_update(dc_progress *p, int64_t step, double loss);
/* Prints the final state (ends the terminal line with \n) and frees p. NULL is a no-op. */
void dc_progress_done(dc_progress *p);

/* Little-endian integers in byte buffers (the checkpoint and kernel-cache formats). */
void dc_le_put_u32(unsigned char *p, uint32_t v);
void dc_le_put_u64(unsigned char *p, uint64_t v);
uint32_t dc_le_get_u32(const unsigned char *p);
uint64_t dc_le_get_u64(const unsigned char *p);

#endif
