/* passes.h — graph-to-graph transformations: the pass manager (passes by name, a pipeline
 * string, verify/print/time options), the passes, and reverse-mode autodiff. Stands on ir/. */
#ifndef DC_PASSES_H
#define DC_PASSES_H

#include "ir/ir.h"

typedef struct {
    bool verify_each;          /* run dc_verify after every pass */
    const char *print_after;   /* print the graph after the pass of this name (NULL: none) */
    bool print_after_all;      /* print after every pass */
    bool time_passes;          /* report each pass's wall time */
    FILE *out;                 /* where printing and timing go (NULL: stderr) */
    bool groups_as_kernels;    /* plan-memory: each loop group runs as one kernel, so values
                                * internal to a group (dc_loop_internal) get no slot (offset
                                * -1); off, every value gets a slot (the ref executor runs
                                * groups node by node) */
} dc_pass_opts;

/* A pass rewrites g in place; false with a message in err on failure. */
typedef bool (*dc_pass_fn)(dc_graph *g, const dc_pass_opts *o, char *err, size_t len);

typedef struct {
    const char *name;          /* as written in a pipeline: "cse", "plan-memory" */
    dc_pass_fn fn;
    const char *summary;
} dc_pass;

/* The registered passes, in a fixed order; n receives their count. */
const dc_pass *dc_passes(int *n);
const dc_pass *dc_pass_find(const char *name);
/* Runs "a,b,c" on g. Unknown pass names are an error before anything runs. */
bool dc_run_pipeline(dc_graph *g, const char *pipeline, const dc_pass_opts *o, char *err, size_t len);

/* The passes (one file each; the manager's table names them). */
bool dc_pass_dce(dc_graph *g, const dc_pass_opts *o, char *err, size_t len);
bool dc_pass_cse(dc_graph *g, const dc_pass_opts *o, char *err, size_t len);
bool dc_pass_fold(dc_graph *g, const dc_pass_opts *o, char *err, size_t len);
bool dc_pass_simplify(dc_graph *g, const dc_pass_opts *o, char *err, size_t len);
bool dc_pass_plan_memory(dc_graph *g, const dc_pass_opts *o, char *err, size_t len);
bool dc_pass_fuse_attention(dc_graph *g, const dc_pass_opts *o, char *err, size_t len);
bool dc_pass_fuse_attention_all(dc_graph *g, const dc_pass_opts *o, char *err, size_t len);
/* fuse-attention's rule: whether the attention op (the flash kernels) beats the plain
 * spelling for `heads` (the product of the batch dims) heads of Sq queries, Sk keys and head
 * size D, causal or not (measured; fuse_attention.c); why (may be NULL) gets the verdict and
 * what it was read from, e.g. "rule: fused for unmasked, D 8, 512x196x196 logits" */
bool dc_attention_fuses(int64_t heads, int64_t sq, int64_t sk, int64_t d, bool causal, char *why, size_t len);
bool dc_pass_fuse_contraction(dc_graph *g, const dc_pass_opts *o, char *err, size_t len);
bool dc_pass_split_reductions(dc_graph *g, const dc_pass_opts *o, char *err, size_t len);
bool dc_pass_fuse_loops(dc_graph *g, const dc_pass_opts *o, char *err, size_t len);
bool dc_pass_schedule_results(dc_graph *g, const dc_pass_opts *o, char *err, size_t len);

/* The loop-group view (fuse_loops.c): rows = n * groups, split across threads, and
 * inner = s * k positions per row. A full value (rows * inner elements) holds element
 * f = ((i * s + j) * groups + q) * k + l in row i * groups + q at inner position j * k + l; a
 * row value (rows elements) holds element r in row r. Plain row views have s = groups = 1. */
typedef struct { int64_t n, s, groups, k; } dc_loop_view;
/* The most buffers one loop group's kernel may touch: the values it reads from outside the
 * group (fills and iotas it computes) and the members it stores (the kernel IR's and a runtime
 * step's limit, codegen/kir.h and runtime/runtime.h). */
#define DC_LOOP_MAX_BUFFERS 32
/* The view of the group made of nodes first..last (consecutive, as g->group marks them);
 * false if the group breaks the row-kernel rule of fuse_loops.c. */
bool dc_loop_group_view(const dc_graph *g, int first, int last, dc_loop_view *v);
/* internal[i] (for every node): node i is in a group, has at least one reader, every reader
 * is a node of the same group, and it is neither an output nor an update value. Such values
 * are never materialised when groups run as kernels; every other member value is stored. */
void dc_loop_internal(const dc_graph *g, bool *internal);

/* The memory plan of g (after plan-memory) as comment lines, one per value with its offset,
 * size and whether it reuses a dead input in place, ending with the peak; malloc'd. NULL if g
 * has no plan. `disco opt` prints it after the graph. */
char *dc_print_plan(const dc_graph *g);

/* Reverse-mode autodiff: appends to g the gradient of the scalar f32 node `loss` with respect
 * to nodes wrt[0..n) and stores the gradient node ids in grads[0..n) (a zeros fill when loss
 * does not depend on wrt[i]). Ops whose vjp column in ops.def is none pass no gradient to
 * their inputs. false and err if loss is not an f32 scalar or an id is out of range. */
bool dc_grad(dc_graph *g, int loss, const int *wrt, int n, int *grads, char *err, size_t len);

/* ---- the VJP builder: what the op families' VJPs (ops/) are written with ----------------- */

/* One dc_grad call's state. A VJP appends nodes through these builders (each returns the new
 * node id, or -1 once anything failed: a failure is sticky and dc_grad reports it) and adds
 * each input's share with dc_ad_accum. New nodes carry the site of the node differentiated. */
typedef struct dc_ad dc_ad;
/* The VJP of node n (a copy: emitting moves the node array), whose value is node y and whose
 * adjoint is node dy. */
typedef void dc_vjp_fn(dc_ad *a, const dc_node *n, int y, int dy);
#define DC_OP(NAME, text, kind, arity, attr, shape, vjp, ref, lower, form) dc_vjp_fn dc_vjp_##vjp;
#include "ir/ops.def"
#undef DC_OP

int dc_ad_emit(dc_ad *a, dc_op op, int n_in, const int *in, const dc_attr *attr, const dc_type *declared);
int dc_ad_un(dc_ad *a, dc_op op, int x);
int dc_ad_bin(dc_ad *a, dc_op op, int x, int y);
int dc_ad_fill(dc_ad *a, float v, const dc_shape *s);   /* f32 fill of shape s */
int dc_ad_scalar(dc_ad *a, float v);                    /* f32[] fill */
int dc_ad_mul_s(dc_ad *a, int x, float v);              /* x * v */
int dc_ad_to_f32(dc_ad *a, int x);                      /* an i32 0/1 mask as f32 */
/* x viewed (op reshape or broadcast_to) as shape s; x itself when it has that shape */
int dc_ad_view(dc_ad *a, dc_op op, int x, const dc_shape *s);
int dc_ad_reshape(dc_ad *a, int x, const dc_shape *s);
int dc_ad_sum_axes(dc_ad *a, int x, const dc_ints *axes, bool keepdims); /* axes sorted, n >= 1 */
/* where(cond, x, 0) (x_when_true) or where(cond, 0, x) */
int dc_ad_where0(dc_ad *a, int cond, int x, bool x_when_true);
/* dy of a broadcast result summed back to shape s (over the axes s lacks or has as 1) */
int dc_ad_unbroadcast(dc_ad *a, int dy, const dc_shape *s);
/* dy of a reduction over axes of x broadcast back to x's shape xs */
int dc_ad_expand(dc_ad *a, int dy, const dc_shape *xs, const dc_ints *axes);
const dc_type *dc_ad_type(const dc_ad *a, int id);
/* Whether node id takes a gradient (f32, on a path from a wrt node to the loss). */
bool dc_ad_wants(const dc_ad *a, int id);
/* adj[id] += grad (grad of id's shape); ignored for values that take no gradient. */
void dc_ad_accum(dc_ad *a, int id, int grad);

#endif
