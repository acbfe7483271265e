/* codegen.h — the codegen stage: compiling a graph into a runtime program (the backends, the
 * pass pipeline policy, dc_compile), then the kernel providers behind the program's steps:
 * oneDNN (codegen/dnnl/), the on-disk kernel cache (cache.c) and the LLVM JIT (codegen/llvm/);
 * ref kernels are the runtime's own. */
#ifndef DC_CODEGEN_H
#define DC_CODEGEN_H

#include "runtime/runtime.h"

/* ---- compiling a graph into an executable program ----------------------------------- */

/* Which provider computes a node: DC_BACKEND_AUTO picks per node by rule (oneDNN for the
 * contractions it accepts without a reference implementation, ref otherwise); the others
 * force one provider wherever it has a kernel (ref everywhere else). */
typedef enum { DC_BACKEND_AUTO, DC_BACKEND_REF, DC_BACKEND_DNNL, DC_BACKEND_JIT } dc_backend;

/* "auto", "ref", "dnnl", "jit" -> backend; -1 if unknown. */
int dc_backend_from_name(const char *s);
/* The backend named by $DISCO_BACKEND, or fallback when it is unset; -1 (and err) when it
 * names no backend. */
int dc_backend_from_env(dc_backend fallback, char *err, size_t len);
/* Whether backend b runs the loop groups of fuse-loops as JIT kernels (auto and jit; ref and
 * dnnl would run them node by node, so their pipelines do not group loops). */
bool dc_backend_uses_jit(dc_backend b);

/* the pass pipeline (comma-separated pass names) the compiler runs on every graph it compiles
 * for backend b (training, evaluation and sampling programs, `disco run`): the one place this
 * policy lives (codegen/pipeline.c) */
const char *dc_pipeline(dc_backend b);

/* the passes a model's forward graph goes through before it is differentiated (the trainer
 * runs them before dc_grad): fuse-attention under auto and jit, so training runs attention
 * and attention_bwd where its rule says that is faster, and saves no [Sq, Sk] probabilities
 * there; NULL for the other backends (ref and dnnl run the plain spelling: the flash kernels
 * are jit kernels) */
const char *dc_forward_pipeline(dc_backend b);

/* Lowers a (planned or unplanned) graph into a runtime program (codegen/lower.c), one step
 * per computed node with the provider chosen for it, and returns an executor for it (params
 * initialised from seed, as dc_exec_new). Rule: dnnl gives the f32 matmul, linear, conv2d,
 * conv2d_bwd_data, conv2d_bwd_weight, fused_conv2d and fused_matmul nodes to oneDNN; auto gives
 * each to its tuned choice from the tuning database (oneDNN, ref or a jit GEMM: see
 * dc_compile_choosing), else to dc_contraction_default's provider; jit runs matmul, linear and
 * fused_matmul as jit GEMMs; everything else goes to ref. Every oneDNN step is tried once on the arena while the program is
 * built; one that oneDNN refuses, or whose output the memory plan puts over one of its inputs,
 * runs on ref instead and its step's note says why (`disco run --profile` prints it). Under
 * DC_BACKEND_DNNL a refusal is an error instead. ref: ref everywhere. Loop groups (fuse-loops)
 * run as LLVM JIT kernels under auto and jit; jit also lowers every ungrouped elementwise and
 * reduction node as a kernel of its own; a group the kernel IR cannot express runs node by
 * node on ref with a note. The consecutive result nodes of one attention or attention_bwd
 * (schedule-results) run as one flash-attention jit step under auto and jit (ref, with a
 * note, when the flash kernel cannot take them). NULL and err when the graph does not verify or a forced
 * provider cannot run a node it claims. The steps can be inspected with dc_exec_steps. */
dc_exec *dc_compile(const dc_graph *g, uint64_t seed, dc_backend backend, char *err, size_t len);
/* dc_compile with the program's arena in host's scratch when it fits (dc_exec_new_program_in:
 * its values hold until host runs again); host NULL is dc_compile. */
dc_exec *dc_compile_in(const dc_graph *g, uint64_t seed, dc_backend backend, dc_exec *host, char *err, size_t len);
/* Runs the pipeline dc_pipeline(backend) over g (rewriting it in place), then dc_compile_in
 * (host NULL: an arena of its own): how the models compile their training and inference
 * programs. */
dc_exec *dc_compile_for(dc_graph *g, uint64_t seed, dc_backend backend, dc_exec *host, char *err, size_t len);

/* ---- the oneDNN provider ------------------------------------------------------------- */

/* The oneDNN provider (codegen/dnnl/): matmul, linear and conv2d forward with fused
 * epilogues, and conv2d backward-data / backward-weights, on disco's dense C-order tensors
 * (NHWC activations, HWIO weights [KH,KW,C/groups,O], linear weights [I,O]).
 *
 * Every call builds (once) and runs oneDNN primitives with pinned memory formats. A
 * primitive is cached under the XXH3-128 of its full descriptor (operation, every operand
 * shape, transposes, stride/padding/groups, epilogue kinds and scale, OpenMP thread count),
 * so a repeated call only binds pointers and executes. Implementations whose name contains
 * "ref" are never used: if oneDNN offers nothing else for every format tried, the call
 * returns false with a message naming what oneDNN refused and the caller runs disco's own
 * ref kernel. Calls never abort on a shape oneDNN does not support.
 *
 * Weights: conv weights are reordered into the layout the chosen kernel wants. The reordered
 * copy is cached per (primitive, weight buffer pointer) together with the XXH3-128 of the
 * weight's bytes: a call whose weight bytes hash the same reuses it (a sampling program
 * reorders each weight once), a changed weight is reordered again (training). Content
 * hashing costs one read of the weight and cannot serve a stale copy, whatever the caller
 * does; the cache holds one copy per distinct weight buffer until dc_dnnl_shutdown.
 *
 * Not thread-safe: one caller thread at a time (oneDNN itself runs on OpenMP threads).
 * Results are bitwise reproducible for given shapes and thread count. */

/* The fused epilogue of a forward contraction y = contraction(inputs):
 *     out = act(scale * y + bias) + residual
 * bias: [O] (the output's last dim), added per output channel / column; NULL for none.
 * residual: the output's shape, added after the activation; NULL for none.
 * scale: 0 is read as 1, so a zero-filled epilogue is the identity.
 * A NULL epilogue pointer means the identity too. */
typedef struct {
    const dc_tensor *bias;
    dc_activation act;          /* ir.h: gelu is the tanh form, silu x * sigmoid(x) */
    const dc_tensor *residual;
    float scale;
} dc_epilogue;

/* matmul: a [..., M, K] ([..., K, M] if t.trans_a), b [..., K, N] ([..., N, K] if t.trans_b)
 * -> out [..., M, N]; batch dims broadcast numpy-style (as the matmul op). out is allocated
 * by the caller with the op's result type. */
bool dc_dnnl_matmul(const dc_tensor *a, const dc_tensor *b, dc_matmul_attr t,
                    const dc_epilogue *e, dc_tensor *out, char *err, size_t len);
/* linear: x [..., I] @ w [I, O] -> out [..., O], then the epilogue (the linear op is the
 * epilogue with .bias = b). */
bool dc_dnnl_linear(const dc_tensor *x, const dc_tensor *w, const dc_epilogue *e,
                    dc_tensor *out, char *err, size_t len);
/* How a convolution is computed: directly, or with oneDNN's Winograd F(4x4, 3x3) kernels
 * (3x3 stride-1 convolutions with channel counts a multiple of 16; fewer multiplications, the
 * activations reordered to and from a blocked layout, results within rounding of the direct
 * ones). A Winograd call oneDNN has no kernel for runs directly; the implementation string
 * says which ran. */
typedef enum { DC_CONV_DIRECT, DC_CONV_WINOGRAD } dc_conv_algo;

/* conv2d: x [N,H,W,C] * w [KH,KW,C/G,O] -> out [N,OH,OW,O] (stride, symmetric padding,
 * groups as the conv2d op), then the epilogue. */
bool dc_dnnl_conv2d(const dc_tensor *x, const dc_tensor *w, dc_conv_attr attr, dc_conv_algo algo,
                    const dc_epilogue *e, dc_tensor *out, char *err, size_t len);
/* The gradient of conv2d w.r.t. its input: dy [N,OH,OW,O], w -> dx [N,H,W,C] (dx's shape
 * chooses H and W, as the conv2d_bwd_data op's declared type). */
bool dc_dnnl_conv2d_bwd_data(const dc_tensor *dy, const dc_tensor *w, dc_conv_attr attr,
                             dc_conv_algo algo, dc_tensor *dx, char *err, size_t len);
/* The gradient of conv2d w.r.t. its weight: x, dy -> dw [KH,KW,C/G,O]; and, when db is not
 * NULL, the bias gradient db [O] = sum of dy over N, OH, OW, from the same primitive. */
bool dc_dnnl_conv2d_bwd_weight(const dc_tensor *x, const dc_tensor *dy, dc_conv_attr attr,
                               dc_conv_algo algo, dc_tensor *dw, dc_tensor *db, char *err, size_t len);

/* out = act(x) + residual (residual may be NULL), all f32 of one shape, act not none: the
 * epilogue of a fused contraction that keeps its pre-activation x (oneDNN's primitives write
 * one output, so the activation is a pass of its own). */
bool dc_dnnl_activation(const dc_tensor *x, dc_activation act, const dc_tensor *residual, dc_tensor *out, char *err,
                        size_t len);

/* The implementation oneDNN chose for the last successful call, e.g.
 * "brg:avx512_core" or "jit:avx512_core + reorder jit:uni" (weight reorders included), for
 * `--profile`. "" before any call. Valid until dc_dnnl_shutdown. */
const char *dc_dnnl_last_impl(void);

/* Statistics of the caches, for tests and `--profile`. */
typedef struct {
    int64_t primitives;       /* cached descriptors */
    int64_t primitive_hits;   /* calls that found their primitive cached */
    int64_t weight_reorders;  /* weight reorders run */
    int64_t weight_hits;      /* calls that reused a cached reordered weight */
} dc_dnnl_stats;
dc_dnnl_stats dc_dnnl_get_stats(void);

/* Frees the caches, the stream and the engine; the next call starts afresh. */
void dc_dnnl_shutdown(void);

/* ---- the on-disk kernel cache (codegen/cache.c) --------------------------------------- */
/* Compiled kernel objects live under $DISCO_CACHE_DIR (default $XDG_CACHE_HOME/disco, else
 * ~/.cache/disco), one file per key: a header (magic, version, key, payload size), the payload
 * (an object file), an XXH3 checksum. Entries are written to a temp file and renamed, so two
 * processes compiling the same kernel both succeed; a truncated or corrupt entry is reported
 * as a warning on stderr, removed, and treated as a miss. */
typedef struct { uint64_t lo, hi; } dc_kcache_key;

/* The payload stored under key: malloc'd bytes in *data, their count in *len; false on a miss
 * (including a corrupt entry, which is reported and removed). */
bool dc_kcache_get(dc_kcache_key key, void **data, size_t *len);
/* Stores the payload under key; false and err when the cache directory cannot be written (the
 * caller goes on without caching). */
bool dc_kcache_put(dc_kcache_key key, const void *data, size_t len, char *err, size_t errlen);
/* The cache directory in use (created on first use). */
const char *dc_kcache_dir(void);
typedef struct { int64_t entries, bytes, hits, misses, corrupt; } dc_kcache_stats;
/* Entries and bytes on disk; hits/misses/corrupt counted by this process. */
dc_kcache_stats dc_kcache_get_stats(void);
/* Removes every entry; false and err on failure. */
bool dc_kcache_clear(char *err, size_t len);

/* ---- the LLVM JIT (codegen/llvm/) ------------------------------------------------------ */
/* Compiles a kernel IR (codegen/kir.h) into a range kernel `void k(void **args, int64_t begin,
 * int64_t end)` for the target CPU: the kernel in its collapsed form (dc_kir_collapse) becomes
 * LLVM IR whose innermost axis runs on explicit vectors (16 lanes with avx512f, 8 with avx2, 1
 * otherwise; tails by masked loads/stores), is optimized with `default<O3>` for the target
 * machine, emitted as an object and loaded into the process's one ORC LLJIT. exp, log, tanh,
 * sigmoid, silu and gelu are polynomial vector code (errors measured in tests/test_llvm.c);
 * sin, cos and pow call libm per lane. Everything else computes exactly what ir/scalar.h says
 * (no fast-math, no contraction), so elementwise results are bitwise the interpreter's, and
 * f32 sums differ from its sequential order only by rounding (vector accumulators reduced in
 * a fixed order: reproducible for a given CPU and feature string).
 *
 * Cache: the key is XXH3-128 of the collapsed kernel text, CPU name, full feature string,
 * LLVM version, DC_JIT_CODEGEN_VERSION and every option; a hit loads the stored object and
 * runs no optimizer; a miss compiles and stores it (a failing store is not an error).
 * Identical kernels compiled twice share one loaded object (reference counted).
 * Not thread-safe: one caller thread (the kernels themselves run on any threads). */
#include "codegen/kir.h"

#define DC_JIT_CODEGEN_VERSION 8 /* 2: the formulas of ops.def; 3: block layouts, hoisted loads; 4: fused multiply-adds in exp, log; stashes; 5: flash attention; 6: GEMM and implicit-GEMM convolution kernels; 7: flash attention for head sizes under a vector; 8: exp by a degree-6 minimax polynomial, sigmoid on the non-positive exp, norms scaled by rstd * gamma, hoisted per-channel loads, prefetch of the next row */

typedef struct {
    const char *cpu;       /* NULL: $DISCO_CPU, else the host's (LLVMGetHostCPUName) */
    const char *features;  /* NULL: $DISCO_CPU_FEATURES; either is appended to the host's
                            * features (LLVM's "+a,-b" form, later entries win), so
                            * "-avx512f" forces AVX2 code on an AVX-512 host */
    bool no_cache;         /* neither read nor write the on-disk cache */
} dc_jit_options;

typedef struct dc_jit_kernel dc_jit_kernel;

/* The target a compile with opt would build for, as the lines "cpu NAME", "features LIST" (the
 * full feature string, overrides applied), "llvm X.Y.Z" and "codegen N": the machine part of
 * every cache key, and of the tuner's database keys. malloc'd. */
char *dc_jit_target_text(const dc_jit_options *opt);
/* The vector lanes of that target's code: 16 with AVX-512F, 8 with AVX2, else 1. */
int dc_jit_target_lanes(const dc_jit_options *opt);

/* A flash-attention kernel (codegen/llvm/attention.c): the attention op of ops/attention.c
 * on dense [B,H,S,D] tensors. The kernel is compiled for the head sizes, masks and blocks; the
 * batch, heads, lengths, bias strides and scale are read at run time (args[0]), so one kernel
 * serves every attention of a model with the same head sizes. */
typedef struct {
    /* compiled in */
    bool backward;
    int64_t d, dv;           /* head sizes of q/k and v */
    bool causal, bias;
    bool bias_last_broadcast; /* the bias is broadcast along the keys */
    int64_t bq, bk;          /* query and key block sizes */
    /* read at run time */
    int64_t B, H, sq, sk;
    int64_t bias_stride[4];  /* element strides of the bias over [B,H,Sq,Sk] (0: broadcast) */
    float scale;
} dc_attn_spec;

/* A flash-attention choice of `disco tune`: "flash bq=64 bk=128" (the block sizes; parse:
 * false for any other text). The default blocks of the attention computation whose first
 * result node is first: bq 64, bk 128 (64 under the causal mask) or the power of two from 16
 * that holds Sk when that is less. */
void dc_attn_choice_text(int64_t bq, int64_t bk, char *buf, size_t len);
bool dc_attn_choice_parse(const char *text, int64_t *bq, int64_t *bk);
void dc_attn_default_blocks(const dc_graph *g, int first, int64_t *bq, int64_t *bk);

/* args[0] of a flash-attention kernel: H, Sq, Sk, the bias strides over B, H and Sq, then the
 * f32 scale (in the low 4 bytes of the last slot). */
typedef struct { int64_t v[7]; } dc_attn_sizes;
dc_attn_sizes dc_attn_sizes_of(const dc_attn_spec *s);

/* An implicit-GEMM convolution (NHWC input x [N,H,W,C], HWIO weights w [KH,KW,C,O], output
 * [N,OH,OW,O], groups 1): A's elements are gathered from the tensor given as A by its packing,
 * zero where the window leaves the input:
 *   forward:          M = N*OH*OW rows (n,oh,ow), K = KH*KW*C (kh,kw,c), N = O; A from x;
 *   backward-data:    M = N*H*W (n,ih,iw), K = KH*KW*O (kh,kw,o), N = C; A from dy, B(k, c) =
 *                     w[kh,kw,c,o] (dc_gemm_pack_b reads w so);
 *   backward-weight:  M = KH*KW*C (kh,kw,c), K = N*OH*OW (n,oh,ow), N = O; A from x, B = dy.
 * With pack_a 0 a convolution reads A in place: forward as a direct convolution over whole
 * output rows, from a copy of x zero-padded by ph, pw on each side ([N, H+2ph, W+2pw, C] then
 * dc_gemm_conv_slack floats) with M = N*OH*ceil(OW/mr)*mr (each output row's positions padded
 * to whole slabs; the padding positions are not stored); stride-1 backward-data slabs that lie
 * inside dy; both in one pass over K (kc >= K). */
typedef enum { DC_GEMM_PLAIN, DC_GEMM_CONV_FWD, DC_GEMM_CONV_BWD_DATA, DC_GEMM_CONV_BWD_WEIGHT } dc_gemm_kind;
typedef struct {
    dc_gemm_kind kind;
    int64_t H, W, C, OH, OW, O, KH, KW, sh, sw, ph, pw;
} dc_gemm_conv;
/* floats past the padded copy of a direct forward convolution's x: a last slab's padding
 * positions read that far */
int64_t dc_gemm_conv_slack(const dc_gemm_conv *c, int mr);

/* A GEMM kernel (codegen/llvm/gemm.c): for each batch b,
 *     out[b] = act(scale * A[b] B[b] + bias) + residual[b]
 * A[b] [M, K] ([K, M] when trans_a) at its batch's offset, B[b] packed beforehand into panels of
 * nr columns (dc_gemm_pack_b), out and residual dense [batch, M, N], bias [N]. The parameters
 * are compiled in and are all in the kernel's cache key: an mr x nr register tile (nr/lanes
 * vectors of fused multiply-adds per row, one broadcast per row and k), cache blocks of kc
 * (the depth of one pass over K), mc and nc (the rows and columns of one work item; its A block
 * is packed [k][mr] on the thread's scratch when pack_a), the k loop unrolled
 * `unroll` times, packed B prefetched `prefetch` k steps ahead (0: no prefetch), and the
 * vector width. The sizes are read at run time (args[0], a dc_gemm_sizes), so one kernel
 * serves every shape with the same parameters and epilogue. */
typedef struct {
    int mr, nr, unroll, prefetch, lanes;
    int64_t kc, mc, nc;
    bool pack_a;  /* pack each pass's A block (else read A where it is, packing only a last
                   * partial slab of rows): worth it when many panels reuse it */
    bool trans_a, bias, residual;
    dc_activation act;
    bool pre;           /* also store the pre-activation scale * A B + bias into pre[b] */
    dc_gemm_conv conv;  /* kind DC_GEMM_PLAIN (zero): a plain GEMM; else A is gathered (pack_a) */
} dc_gemm_spec;

/* args[0] of a GEMM kernel: M, N, K, A's leading dimension, the row blocks (ceil(M / mc))
 * and column blocks (ceil(N / nc)) per batch, then the f32 scale (in the low 4 bytes of the
 * last slot). */
typedef struct { int64_t v[7]; } dc_gemm_sizes;
dc_gemm_sizes dc_gemm_sizes_of(const dc_gemm_spec *s, int64_t M, int64_t N, int64_t K, int64_t lda, float scale);
/* work items per batch: row blocks x column blocks */
int64_t dc_gemm_items(const dc_gemm_sizes *z);

/* The parameters the compiler uses for `batch` products of M x N outputs without a tuned choice: the
 * tile that fits N (8 lanes for N <= 8, nr up to 4 vectors, mr as many rows as the registers
 * hold), kc 256, up to 64 rows and 256 columns per work item, smaller blocks until there are
 * 8 work items where the shape allows, A packed when more than two panels reuse it, unroll 4,
 * no prefetch. lanes: the target's. */
dc_gemm_spec dc_gemm_default(int64_t batch, int64_t M, int64_t N, int lanes);

/* The values `disco tune` tries for each GEMM parameter (codegen/tune.c): tiles (mr rows x
 * nv vectors), kc, rows per work item (mc, rounded up to a multiple of mr), columns per B
 * block (nc, rounded up to a multiple of nr), unroll, prefetch and vector lanes. Every
 * combination passes dc_gemm_spec_ok on a target with that many lanes. */
#define DC_GEMM_SPACE_MAX 12
typedef struct {
    int n_tiles, tile_mr[DC_GEMM_SPACE_MAX], tile_nv[DC_GEMM_SPACE_MAX];
    int n_kc, n_mc, n_nc, n_unroll, n_prefetch, n_lanes, n_pack_a;
    int64_t kc[DC_GEMM_SPACE_MAX], mc[DC_GEMM_SPACE_MAX], nc[DC_GEMM_SPACE_MAX];
    int unroll[DC_GEMM_SPACE_MAX], prefetch[DC_GEMM_SPACE_MAX], lanes[DC_GEMM_SPACE_MAX];
    bool pack_a[2];
} dc_gemm_space;
extern const dc_gemm_space dc_gemm_tuning_space;
/* The spec of tile t (an index into the space's tiles) with lanes, kc, mc, nc (rounded up to
 * the tile), unroll, prefetch and pack_a. */
dc_gemm_spec dc_gemm_spec_of(int t, int lanes, int64_t kc, int64_t mc, int64_t nc, int unroll, int prefetch,
                             bool pack_a);

/* Whether spec is a kernel the emitter builds on `lanes`-wide vectors (lanes 8 or 16, and at
 * most the target's); false and why otherwise. */
bool dc_gemm_spec_ok(const dc_gemm_spec *s, int lanes, char *why, size_t len);
/* The spec's canonical text, e.g. "gemm mr 14 nr 32 kc 256 mc 112 nc 256 unroll 4 prefetch 0
 * lanes 16 trans_a 0 bias 1 act none residual 0": the kernel's part of its cache key. */
void dc_gemm_spec_text(const dc_gemm_spec *s, char *buf, size_t len);

/* B [K, N] (trans_b: [N, K], row stride ldb) packed for spec: ceil(N/nr) panels, each
 * [K][nr] with the columns past N zero, so the whole packing is dc_gemm_packed_size floats;
 * dc_gemm_pack_b writes panels [p0, p1) of it into dst (the packing's start). For a
 * backward-data convolution b is w [KH,KW,C,O] and trans_b, ldb are ignored. */
int64_t dc_gemm_packed_size(const dc_gemm_spec *s, int64_t N, int64_t K);
void dc_gemm_pack_b(const dc_gemm_spec *s, const float *b, bool trans_b, int64_t ldb, int64_t N, int64_t K,
                    int64_t p0, int64_t p1, float *dst);
/* floats of the per-thread scratch a work item packs its A block into */
int64_t dc_gemm_scratch_size(const dc_gemm_spec *s);

/* The kernel for k (opt may be NULL: defaults); NULL and err for a kernel with an error or
 * without phases, or when LLVM fails. Release it with dc_jit_release. */
dc_jit_kernel *dc_jit_compile(const dc_kir *k, const dc_jit_options *opt, char *err, size_t len);
/* The flash-attention kernel of spec (lanes 8 or 16: NULL and err on a target without
 * AVX2). Its entry runs work items [begin, end): forward, one query block of one (b, h) each
 * (range B*H*ceil(Sq/bq)), args sizes, q, k, v, [bias,] kt, out, lse with kt the keys
 * transposed per key block, [B*H][ceil(Sk/bk)][D][bk] (zero past Sk); backward, one
 * (b, h) each (range B*H), args sizes, q, k, v, [bias,] out, dout, lse, delta (B*H*Sq scratch),
 * dq, dk, dv. sizes: a dc_attn_sizes. */
dc_jit_kernel *dc_jit_compile_attention(const dc_attn_spec *spec, const dc_jit_options *opt, char *err,
                                        size_t len);
/* The GEMM kernel of spec. Its entry runs work items [begin, end), item t computing the block
 * of mc rows and nc columns (row block r / column blocks, column block r % column blocks) of
 * batch b = t / items, r = t % items (items: dc_gemm_items), with args:
 * sizes (dc_gemm_sizes), A, a_off (int64 per batch: the offset of A[b] in floats), packed B,
 * b_off (int64 per batch: the offset of B[b]'s packing), out, bias, residual (NULL when the
 * spec has none), scratch (dc_gemm_scratch_size floats, one per thread), pre (dense as out;
 * NULL unless spec.pre). */
dc_jit_kernel *dc_jit_compile_gemm(const dc_gemm_spec *spec, const dc_jit_options *opt, char *err, size_t len);
/* The entry point, valid until the kernel is released; run it over [0, dc_kir_range(k)). */
dc_range_kernel dc_jit_entry(const dc_jit_kernel *jk);
/* Vector lanes of the generated code (16, 8 or 1). */
int dc_jit_lanes(const dc_jit_kernel *jk);
/* "znver5 +avx512f", for `--profile` notes: CPU name and the widest vector feature used. */
const char *dc_jit_impl(const dc_jit_kernel *jk);
void dc_jit_release(dc_jit_kernel *jk);

typedef struct {
    int64_t compiled;        /* kernels built by LLVM (cache misses) */
    int64_t cache_loads;     /* kernels loaded from cached objects */
    int64_t shared;          /* compiles answered by an already loaded identical kernel */
    int64_t optimizer_runs;  /* LLVMRunPasses calls */
    double compile_ms;       /* time building, optimizing and emitting (misses) */
    double load_ms;          /* time linking objects into the JIT (misses and hits) */
} dc_jit_stats;
dc_jit_stats dc_jit_get_stats(void);

/* Releases every kernel still loaded and the LLJIT; statistics restart from 0. */
void dc_jit_shutdown(void);

/* ---- the tuner and tuned compiling (codegen/tune.c) ------------------------------------- */

/* Where a compile gets a tuned choice: choose(ctx, signature) returns, for a contraction,
 * "dnnl", "ref", "jit" (the GEMM with dc_gemm_default's parameters) or a GEMM choice
 * (dc_gemm_choice_text); for an attention computation a flash choice (dc_attn_choice_text);
 * for a loop kernel step "loop split" or "loop serial" (dc_tune_loop_signature); NULL for
 * none (the default rule). */
typedef const char *(*dc_choose_fn)(void *ctx, const char *signature);
/* dc_compile_in with the choices of choose (NULL: none); dc_compile and dc_compile_in choose
 * from the process's tuning database (dc_tune_db_default). Under auto a contraction runs on
 * its choice ("dnnl", "dnnl winograd", "ref", a jit choice), else on dc_contraction_default's
 * provider; under jit the GEMM ops run as GEMMs
 * with a jit choice's parameters; under both, attention steps take their flash blocks and
 * loop kernel steps their split mode from the choices; dnnl and ref ignore choices. */
dc_exec *dc_compile_choosing(const dc_graph *g, uint64_t seed, dc_backend backend, dc_choose_fn choose, void *ctx,
                             dc_exec *host, char *err, size_t len);

#define DC_TUNE_SIG_LEN 512
/* The signature node's choice is keyed by: its op, input and output types and attributes, the
 * OpenMP thread count and the oneDNN version (both change which provider wins), e.g.
 * "matmul f32[512,196,196], f32[512,196,8] -> f32[512,196,8] {trans_a=false, trans_b=false}
 * threads=2 onednn=2.6.3"; false for a node the tuner does not tune (or a signature longer
 * than len). The tuning database adds the target (CPU, features, LLVM and codegen versions). */
bool dc_tune_signature(const dc_graph *g, int node, char *buf, size_t len);
/* The signature a loop kernel step's choice is keyed by: "loop <impl> range=R work=W
 * threads=T" (impl names the compiled kernel by its canonical key and target); false for a
 * step that is not a range kernel or a signature longer than len. Its choices: "loop split"
 * (over the threads) and "loop serial" (on the calling thread), chosen by timing the step in
 * the whole program both ways; without one the step splits by its work (DC_PAR_MIN_WORK). */
bool dc_tune_loop_signature(const dc_step *s, char *buf, size_t len);
/* The split mode of a loop choice (DC_SPLIT_RULE for any other text). */
dc_split_mode dc_tune_loop_choice(const char *choice);
/* A GEMM choice: "jit mr=4 nr=64 kc=256 mc=64 nc=256 unroll=4 prefetch=0 lanes=16 pack_a=1"
 * (the spec's parameters; its operation comes from the node). parse: false for any other
 * text or for parameters dc_gemm_spec_ok refuses at their lanes. */
void dc_gemm_choice_text(const dc_gemm_spec *s, char *buf, size_t len);
bool dc_gemm_choice_parse(const char *text, dc_gemm_spec *s);
/* Whether convolution node `node` (conv2d, its backward ops, fused_conv2d) is one oneDNN's
 * Winograd kernels compute: 3x3, stride 1, padding at most 1, no groups, input and output
 * channels multiples of 16. */
bool dc_conv_winograd_fits(const dc_graph *g, int node);
/* The provider of contraction node without a tuned choice under auto, by measurement
 * (bench/contractions, `disco tune`'s log, bench/RESULTS.md): "dnnl winograd" for a
 * convolution Winograd fits (dc_conv_winograd_fits), its forward and backward-data only from 32
 * input channels; "jit" for a forward convolution of one input channel, for a fused_matmul with a residual but no
 * bias and N >= 64, for a batched matmul (both operands batched: attention's per-head
 * products) with trans_a and M >= 64 or without it and M >= 128, N <= 16; "dnnl" else. */
const char *dc_contraction_default(const dc_graph *g, int node);

typedef struct dc_tune_db dc_tune_db;
/* The process's tuning database, opened on first use (its message, if any, printed to
 * stderr once); NULL when $DISCO_TUNE is "off" (`--no-tune`) or it cannot be opened. */
dc_tune_db *dc_tune_db_default(void);
/* Whether $DISCO_TUNE allows reading the database (anything but "off"). */
bool dc_tune_enabled(void);

typedef struct {
    double budget;   /* seconds for the whole graph, shared equally by the contractions left
                      * (each search stops early past its share); 0: no limit */
    FILE *progress;  /* progress bar (NULL: none) */
    FILE *log;       /* a line per tuned kernel: signature, choice, times (NULL: none) */
} dc_tune_options;
typedef struct {
    int kernels;         /* distinct tunable signatures in the graph (loop kernels included) */
    int cached;          /* of them already in the database: not timed */
    int tuned, jit, dnnl, ref;  /* tuned now, and the providers chosen */
    int reverted;        /* of them, choices replaced by the default rule's as they were not
                          * faster inside the whole program */
    int64_t timed_runs;  /* program runs timed */
    double seconds;
} dc_tune_report;
/* The tuner's measurement of contraction node of g under choice: the median seconds of one run
 * of a program of that node alone over `runs` timings (each of enough runs to last 2 ms),
 * after a warm-up run, on random inputs; -1 when the choice does not run as itself (a jit
 * kernel that fell back to oneDNN, oneDNN refusing) or the node is not a contraction. */
double dc_tune_time(const dc_graph *g, int node, const char *choice, int runs);
/* What tuning one contraction found: its choice, the best jit kernel (GEMM ops; "" and t_jit
 * -1 for others or when none built), and the median seconds of the choice, oneDNN, the
 * default rule's choice and the best jit kernel (-1: failed to run). */
typedef struct {
    char choice[160], jit[160];
    double t_choice, t_dnnl, t_default, t_jit;
    int64_t timed_runs;
} dc_tune_result;
/* Tunes node of g alone (o->budget bounds its search; progress and log unused); false for a
 * node the tuner does not tune. */
bool dc_tune_node(const dc_graph *g, int node, const dc_tune_options *o, dc_tune_result *r);
/* Tunes every contraction, attention and loop kernel of g (a graph as the compiler will lower
 * it) without an entry in db, stores the choices and saves db when anything was tuned: the
 * contractions and attentions each alone (budget shared), then the loop kernels timed in the
 * whole program compiled with those choices. false and err when the program cannot be built
 * or run (what was tuned before is still saved), or db cannot be saved. */
bool dc_tune_graph(const dc_graph *g, dc_tune_db *db, const dc_tune_options *o, dc_tune_report *r, char *err,
                   size_t len);

/* ---- the tuner's database (codegen/tune_db.c) ----------------------------------------- */
/* The choices of `disco tune`, per kernel and target: a kernel is a one-line canonical signature
 * with its shapes ("matmul batch=512 m=196 n=8 k=196 trans_a=0 ..."), its choice says what to
 * run ("jit mr=14 nr=32 kc=256 ..." or "dnnl") and its times are the measured medians of the
 * providers tried ("jit=12.3us dnnl=20.1us"); the database never interprets these strings.
 * They live in a readable text file, DIR/tune.db with DIR = dc_kcache_dir() unless a path is
 * given (format in tune_db.c), saved atomically. Entries are keyed by dc_tune_key of the kernel,
 * the target they were measured on (dc_jit_target_text) and DC_TUNER_VERSION. A lookup sees
 * only the entries of the current target; the others (another CPU, or this CPU under another
 * LLVM, codegen or tuner version) are ignored, counted, and kept when saving, so one file can
 * serve several machines. A truncated, corrupt or malformed file is refused: the database
 * opens empty, its message names the file and line, and the next save replaces the file.
 * Not thread-safe: one thread uses a database. */
#define DC_TUNER_VERSION 2 /* the tuner's measuring and choosing (2: Winograd finalists); part of every key */


/* XXH3-128 of "disco tune key\nkernel LEN KERNEL\ntarget LEN TARGET\ntuner N\n", LEN being
 * the byte length of the string after it: the key of kernel measured on target (the lines of
 * dc_jit_target_text) by tuner version N. */
dc_hash128 dc_tune_key(const char *kernel, const char *target, int tuner);
/* The database at path (NULL: DIR/tune.db) for the current target, dc_jit_target_text(NULL) as
 * it is now. A missing file is an empty database, a bad one an empty database with a message;
 * NULL and err only when the file exists but cannot be read (a directory, no permission). */
dc_tune_db *dc_tune_db_open(const char *path, char *err, size_t len);
/* What opening found for the user, shown once by the caller: "" or lines ending in \n, e.g.
 * "PATH:7: bad checksum; the database is ignored and the next save replaces it" or "PATH: 3
 * entries are for another CPU (znver3), ignored". */
const char *dc_tune_db_message(const dc_tune_db *db);
/* The file the database is loaded from and saved to. */
const char *dc_tune_db_path(const dc_tune_db *db);
/* The choice stored for kernel on the current target, valid until the next store or free;
 * NULL on a miss. */
const char *dc_tune_db_lookup(dc_tune_db *db, const char *kernel);
/* Inserts or replaces the entry of kernel on the current target (in memory until saved). */
void dc_tune_db_store(dc_tune_db *db, const char *kernel, const char *choice, const char *times);
/* Writes every entry, other targets' included, to the file atomically; false and err on
 * failure (the file is then untouched). */
bool dc_tune_db_save(dc_tune_db *db, char *err, size_t len);
/* The table of `disco tune --show`: per target, its kernels, choices and times; the targets
 * other than the current one say why they are ignored. */
void dc_tune_db_print(const dc_tune_db *db, FILE *f);
typedef struct {
    int64_t entries;       /* every entry, whatever its target */
    int64_t foreign;       /* entries for another CPU (name or feature string) */
    int64_t stale;         /* entries for this CPU under another LLVM, codegen or tuner version */
    int64_t hits, misses;  /* lookups since opening */
    bool refused;          /* the file was refused, so the database opened empty */
} dc_tune_db_stats;
dc_tune_db_stats dc_tune_db_get_stats(const dc_tune_db *db);
/* Frees the database without saving it. */
void dc_tune_db_free(dc_tune_db *db);

#endif
