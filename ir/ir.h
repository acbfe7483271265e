/* ir.h — the graph IR: dtypes, shapes, the op table, typed attributes, nodes and graphs,
 * and the stage's entry points (shape rules, verifier, printer, parser, DOT, hashing).
 * This header includes nothing of disco's: it is the ground every other stage stands on. */
#ifndef DC_IR_H
#define DC_IR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DC_MAX_RANK 6
#define DC_MAX_INPUTS 16
#define DC_ERR_LEN 512
#define DC_MAX_NUMEL ((int64_t)1 << 40) /* elements of one value, at most */

/* ---- dtypes and shapes ---------------------------------------------------------------- */

typedef enum { DC_F32, DC_I32, DC_NDTYPES } dc_dtype;

typedef struct {
    int rank;                    /* 0..DC_MAX_RANK; rank 0 is a scalar */
    int64_t dim[DC_MAX_RANK];    /* every dim >= 1; unused entries are 0 */
} dc_shape;

typedef struct {
    dc_dtype dtype;
    dc_shape shape;
} dc_type;

const char *dc_dtype_name(dc_dtype t);          /* "f32", "i32" */
int dc_dtype_from_name(const char *s, size_t n); /* -1 if unknown */
size_t dc_dtype_size(dc_dtype t);
int64_t dc_numel(const dc_shape *s);
bool dc_shape_eq(const dc_shape *a, const dc_shape *b);
bool dc_type_eq(const dc_type *a, const dc_type *b);
/* "f32[4,8]" into buf; returns buf */
char *dc_type_str(const dc_type *t, char *buf, size_t len);
/* numpy broadcasting of a and b into out; false if incompatible */
bool dc_broadcast_shapes(const dc_shape *a, const dc_shape *b, dc_shape *out);

/* ---- the op table ------------------------------------------------------------------- */

typedef enum {
    DC_KIND_SOURCE,
    DC_KIND_ELEMENTWISE,
    DC_KIND_REDUCTION,
    DC_KIND_CONTRACTION,
    DC_KIND_NORM,
    DC_KIND_MOVEMENT,
    DC_KIND_RANDOM,
    DC_KIND_LOSS,
} dc_op_kind;

typedef enum {
#define DC_OP(NAME, text, kind, arity, attr, shape, vjp, ref, lower, form) DC_OP_##NAME,
#include "ir/ops.def"
#undef DC_OP
    DC_OP_COUNT
} dc_op;

/* A hook column of ops.def names a function PREFIX##name, or is `none`. DC_HOOK(PREFIX, name)
 * is that function, or 0 for none; DC_HAS_HOOK(name) is 1, or 0 for none. (The probe: only
 * DC_PROBE_none is a macro, and it shifts a 0 into the second place.) */
#define DC_PROBE_none ~, 0
#define DC_SECOND_(a, b, ...) b
#define DC_SECOND(...) DC_SECOND_(__VA_ARGS__)
#define DC_HOOK(PREFIX, name) DC_SECOND(DC_PROBE_##name, PREFIX##name, ~)
#define DC_HAS_HOOK(name) DC_SECOND(DC_PROBE_##name, 1, ~)

/* A MAP row's case in a switch over ops: with `#define DC_OP DC_FORM_CASE` before including
 * ops.def, each MAP row gives `case DC_OP_NAME: form break;` and other rows nothing. Define
 * F32(e), ANY(e) and CMP(e) first (the form's dtype classes, see ops.def), and the primitives
 * the formula e is written in. */
#define DC_FORM_CASE(NAME, text, kind, arity, attr, shape, vjp, ref, lower, form) DC_FORM_CASE_##lower(NAME, form)
#define DC_FORM_CASE_MAP(NAME, ...) case DC_OP_##NAME: __VA_ARGS__ break;
#define DC_FORM_CASE_NONE(NAME, ...)
#define DC_FORM_CASE_CAST(NAME, ...)
#define DC_FORM_CASE_ROW(NAME, ...)
#define DC_FORM_CASE_FILL(NAME, ...)
#define DC_FORM_CASE_IOTA(NAME, ...)
#define DC_FORM_CASE_RESHAPE(NAME, ...)
#define DC_FORM_CASE_TRANSPOSE(NAME, ...)
#define DC_FORM_CASE_BROADCAST(NAME, ...)
#define DC_FORM_CASE_UPSAMPLE(NAME, ...)
#define DC_FORM_CASE_ONE_HOT(NAME, ...)
#define DC_FORM_CASE_SLICE(NAME, ...)
#define DC_FORM_CASE_UNSLICE(NAME, ...)
#define DC_FORM_CASE_CONCAT(NAME, ...)
#define DC_FORM_CASE_GATHER(NAME, ...)


/* ---- attributes: one plain struct per schema named in ops.def ----------------------- */
/* Every attribute struct is zero-filled before it is set, so two attributes are equal
 * exactly when their bytes are (hashing and CSE compare bytes). */

typedef struct { int n; int64_t v[DC_MAX_RANK]; } dc_ints;

typedef enum {
    DC_INIT_ZEROS,   /* 0 */
    DC_INIT_ONES,    /* 1 */
    DC_INIT_NORMAL,  /* N(0, a^2) */
    DC_INIT_UNIFORM, /* U[a, b) */
    DC_INIT_KAIMING, /* N(0, 2/fan_in) */
    DC_INIT_XAVIER,  /* U(-r, r), r = sqrt(6/(fan_in+fan_out)) */
    DC_NINITS
} dc_init_kind;
/* fan_out = last dim, fan_in = numel / fan_out (rank 0: both 1). So a linear weight [in,out]
 * has fan_in = in and an HWIO conv weight has fan_in = KH*KW*C/groups. */

typedef struct { char unused; } dc_none_attr;
typedef struct { dc_init_kind kind; float a, b; } dc_init_attr;          /* param */
typedef struct { float value; } dc_scalar_attr;                         /* fill value, pow exponent */
typedef struct { int64_t axis; } dc_axis_attr;                          /* 0 <= axis < rank */
typedef struct { dc_dtype to; } dc_cast_attr;
typedef struct { dc_ints axes; bool keepdims; } dc_reduce_attr;         /* axes sorted, unique; n = 0: all */
typedef struct { bool trans_a, trans_b; } dc_matmul_attr;
typedef struct { dc_ints stride, pad; int64_t groups; } dc_conv_attr;   /* stride, pad: [h, w] */
typedef struct { int64_t factor; } dc_pool_attr;
typedef struct { float eps; } dc_eps_attr;
typedef struct { int64_t groups; float eps; } dc_group_norm_attr;
typedef struct { dc_ints perm; } dc_perm_attr;
typedef struct { dc_ints start, stop, step; } dc_slice_attr;            /* one entry per axis */
typedef struct { dc_ints lo, hi; float value; } dc_pad_attr;            /* one entry per axis */
typedef struct { int64_t depth; } dc_one_hot_attr;
typedef struct { int64_t stream; float a, b; } dc_random_attr;
/* uniform: U[a, b); normal: mean a, std b; gumbel: location a, scale b */

/* The activation of a fused contraction's epilogue, printed by name (none, relu, gelu, silu),
 * computed as the relu, gelu (tanh form) and silu ops. */
typedef enum {
    DC_ACTIVATION_NONE,
    DC_ACTIVATION_RELU,
    DC_ACTIVATION_GELU,
    DC_ACTIVATION_SILU,
    DC_NACTIVATIONS
} dc_activation;
const char *dc_activation_name(dc_activation a);
/* The elementwise op of activation a (relu, gelu, silu); DC_OP_COUNT for none. */
dc_op dc_activation_op(dc_activation a);
/* fused_conv2d: conv2d's fields, then the epilogue act(y + bias) + residual; bias and
 * residual say which optional inputs follow x and w (in that order); result: which of the
 * op's results the node is (0: the epilogue's value, 1: the pre-activation y + bias, kept
 * for a backward that reads it). Nodes that differ only in result are one computation. */
typedef struct {
    dc_ints stride, pad;
    int64_t groups;
    dc_activation act;
    bool bias, residual;
    int64_t result;
} dc_fused_conv_attr;
/* fused_matmul: matmul's flags, then the same epilogue and results */
typedef struct { bool trans_a, trans_b; dc_activation act; bool bias, residual; int64_t result; } dc_fused_matmul_attr;
/* attention and attention_bwd: logits scale * q k^T + bias (bias: whether the additive bias
 * input is there), causal: key j > query i masked; result: which of the op's results the node
 * is (attention: 0 out, 1 the rows' logsumexp; attention_bwd: 0 dq, 1 dk, 2 dv, 3 dbias).
 * Nodes that differ only in result are one computation (see ops/attention.c). */
typedef struct { float scale; bool causal, bias; int64_t result; } dc_attention_attr;

typedef union {
    dc_none_attr none;
    dc_init_attr init;
    dc_scalar_attr scalar;
    dc_axis_attr axis;
    dc_cast_attr cast;
    dc_reduce_attr reduce;
    dc_matmul_attr matmul;
    dc_conv_attr conv;
    dc_pool_attr pool;
    dc_eps_attr eps;
    dc_group_norm_attr group_norm;
    dc_perm_attr perm;
    dc_slice_attr slice;
    dc_pad_attr pad;
    dc_one_hot_attr one_hot;
    dc_random_attr random;
    dc_fused_conv_attr fused_conv;
    dc_fused_matmul_attr fused_matmul;
    dc_attention_attr attention;
} dc_attr;

/* The text form of an attribute struct: its fields, printed `{name=value, ...}` in this
 * order. Field types: INT (int64_t), FLOAT (float), BOOL (bool), INTS (dc_ints), DTYPE, ENUM
 * (a C enum stored as int, printed and parsed by name: names[0..n_names) are its values). */
typedef enum { DC_FT_INT, DC_FT_FLOAT, DC_FT_BOOL, DC_FT_INTS, DC_FT_DTYPE, DC_FT_ENUM } dc_field_type;
typedef struct {
    const char *name;
    dc_field_type type;
    size_t offset;
    const char *const *names;   /* ENUM only: the value names; NULL otherwise */
    int n_names;
} dc_attr_field;
typedef struct { const char *name; int n_fields; const dc_attr_field *fields; } dc_attr_schema;

/* How a loop group lowers an op to the kernel IR (ops.def's lower column). */
typedef enum {
    DC_LOWER_NONE,       /* not groupable */
    DC_LOWER_MAP,        /* its formula, element by element */
    DC_LOWER_CAST,
    DC_LOWER_ROW,        /* a row reduction, by its dc_row_desc */
    DC_LOWER_FILL,
    DC_LOWER_IOTA,
    DC_LOWER_RESHAPE,    /* the index remaps */
    DC_LOWER_TRANSPOSE,
    DC_LOWER_BROADCAST,
    DC_LOWER_UPSAMPLE,   /* an element reads its input at its H and W divided by attr.pool.factor */
    DC_LOWER_ONE_HOT,    /* 1 where the last coordinate equals the input at the others, else 0 */
    DC_LOWER_SLICE,      /* an element reads its input at start + step * its coordinates */
    DC_LOWER_UNSLICE,    /* an element on the slice reads dy at its slice coordinates, else 0 */
    DC_LOWER_CONCAT,     /* an element reads the input whose part of the axis holds it */
    DC_LOWER_GATHER,     /* an element reads the table at the row its index names */
} dc_lower;

/* The operand dtypes of a MAP op's formula: F32 only; ANY: f32 or i32, the result's dtype;
 * CMP: f32 or i32 in, i32 0/1 out. NONE for ops without a formula. */
typedef enum { DC_MAP_NONE, DC_MAP_F32, DC_MAP_ANY, DC_MAP_CMP } dc_map_dtypes;

/* A row reduction: which dims of input 0 one row folds (AXES: attr.reduce.axes, all when
 * empty; AXIS: attr.axis; LAST: the last dim; GROUPS: every position and the channels of one
 * of attr.group_norm.groups groups, per batch entry; WINDOW: the attr.pool.factor^2 window of
 * an output position over H and W of NHWC x; LABELS: the last dim, input 1 holding each row's
 * label) and what it computes of each row. AXES, WINDOW and LABELS ops give one value per row;
 * the others give one per element of the row. */
typedef enum { DC_ROWS_NONE, DC_ROWS_AXES, DC_ROWS_AXIS, DC_ROWS_LAST, DC_ROWS_GROUPS, DC_ROWS_WINDOW, DC_ROWS_LABELS } dc_rows;
typedef enum {
    DC_ROW_NONE,
    DC_ROW_SUM,          /* sum (f32 or i32) */
    DC_ROW_MEAN,
    DC_ROW_MAX,          /* max (f32 or i32) */
    DC_ROW_LOGSUMEXP,    /* m + log(sum(exp(x - m))), m the row max (m when m is infinite) */
    DC_ROW_SOFTMAX,      /* exp(x - m) * (1 / sum(exp(x - m))) */
    DC_ROW_LOG_SOFTMAX,  /* (x - m) - log(sum(exp(x - m))) */
    DC_ROW_SOFTMAX_BWD,  /* (y, dy): y * (dy - sum(dy * y)) */
    DC_ROW_NORM,         /* (x, gamma, beta): (x - mean) * rsqrt(var + eps) * gamma + beta */
    DC_ROW_NORM_BWD,     /* (x, gamma, dy): rstd (g - mean(g) - xh mean(g xh)), g = dy gamma,
                          * xh = (x - mean) rstd: the norm's gradient w.r.t. x */
    DC_ROW_XENT,         /* (x, label): logsumexp(x) - x[label] */
} dc_row_value;
typedef struct {
    dc_rows rows;
    dc_row_value value;
    int data;            /* bit k set: input k is read per element of the row (x, dy); the
                          * others per channel (gamma, beta) */
} dc_row_desc;
/* Whether row op input k is read per element of the row. */
static inline bool dc_row_data(const dc_row_desc *r, int k) { return (r->data >> k) & 1; }

typedef struct {
    const char *text;            /* IR spelling */
    dc_op_kind kind;
    int arity;                   /* -1: variadic */
    const dc_attr_schema *attr;  /* schema of dc_node.attr for this op */
    bool differentiable;         /* it has a VJP */
    dc_lower lower;
    dc_map_dtypes map;           /* MAP ops: the dtypes of the formula */
    dc_row_desc row;             /* ROW ops: the row description */
} dc_op_info;

const dc_op_info *dc_op_get(dc_op op);
int dc_op_from_name(const char *s, size_t n); /* -1 if unknown */
const char *dc_op_name(dc_op op);
const char *dc_init_name(dc_init_kind k); /* "zeros", "normal", ... */

/* ---- nodes and graphs --------------------------------------------------------------- */

typedef struct { uint64_t lo, hi; } dc_hash128;

typedef struct {
    dc_op op;
    dc_type type;               /* result type */
    int n_in;
    int in[DC_MAX_INPUTS];      /* ids of earlier nodes */
    dc_attr attr;
    char *name;                 /* INPUT and PARAM: owned name; otherwise NULL */
    const char *file;           /* where it was made (DSL call site or IR text); may be NULL */
    int line, col;
    dc_hash128 hash;            /* filled by dc_graph_hash */
} dc_node;

/* State update: after a run, the value of node `value` becomes the new value of PARAM node
 * `param` (optimizer steps, EMA). All updates read values of the same run. Text form, after the
 * nodes and before return: `  assign %PARAM, %VALUE`. */
typedef struct { int param, value; } dc_update;

/* A graph is a flat SSA array: node i only uses nodes < i; the array order is the schedule.
 * Its inputs are its INPUT nodes, in node order. */
typedef struct dc_graph {
    char *name;
    dc_node *nodes;
    int n_nodes, cap_nodes;
    int n_outputs, cap_outputs;
    int *outputs;               /* node ids */
    char **output_names;        /* owned; an entry may be NULL (then "outI") */
    int n_updates, cap_updates;
    dc_update *updates;
    int64_t *plan_offset;       /* memory plan: [n_nodes] arena byte offsets; NULL = unplanned */
    int64_t plan_bytes;         /* arena size of the plan (its peak) */
    int *group;                 /* fused loop groups (fuse-loops): [n_nodes] group id >= 1 of
                                 * each node, 0 = in no group; NULL = no grouping. A group's
                                 * members are consecutive in node order; values used only inside
                                 * their group are never materialised. Text: ` group=K` after a
                                 * node's type. Passes that change nodes drop it. */
    int64_t next_stream;        /* next unused random stream id */
    char *src_file;             /* owned copy of the file name nodes' .file point to */
    /* frontend state: the first error (sticky) and the current name scope */
    bool failed;
    char error[DC_ERR_LEN];
    char scope[256];
} dc_graph;

dc_graph *dc_graph_new(const char *name);
void dc_graph_free(dc_graph *g);
/* Makes room for n nodes in all, so that the next n - n_nodes appends move no node (pointers
 * into g->nodes stay valid). */
void dc_graph_reserve(dc_graph *g, int n);
/* Appends a copy of *n (name is copied); returns its id. Does not check anything. Pointers
 * into g->nodes are invalidated unless room was reserved. */
int dc_graph_append(dc_graph *g, const dc_node *n);
/* Makes a node (zero-filled, then op, inputs, attr, declared type, name, site), runs its shape
 * rule and appends it: the one way passes and the DSL add nodes. Returns the new id, or -1
 * with the shape rule's message ("OP: what is wrong") in err. attr/declared/name may be NULL. */
int dc_graph_emit(dc_graph *g, dc_op op, int n_in, const int *in, const dc_attr *attr,
                  const dc_type *declared, const char *name, const char *file, int line,
                  char *err, size_t len);
/* Appends an output; name may be NULL. */
void dc_graph_add_output(dc_graph *g, int node, const char *name);
/* Appends a state update (param <- value). */
void dc_graph_add_update(dc_graph *g, int param, int value);
/* Forgets the memory plan and the loop groups; every pass that changes nodes calls it. */
void dc_graph_drop_plan(dc_graph *g);
int dc_graph_n_inputs(const dc_graph *g);
int dc_graph_input(const dc_graph *g, int i);            /* node id of the i-th INPUT */
int dc_graph_find_input(const dc_graph *g, const char *name); /* node id or -1 */
/* The printed SSA name of node id: "%NAME" for inputs, else "%K" where K counts the
 * non-input nodes before it (the printer's numbering). Returns buf. */
char *dc_node_label(const dc_graph *g, int id, char *buf, size_t len);
/* output name, "outI" when unnamed; buf holds the generated one */
const char *dc_graph_output_name(const dc_graph *g, int i, char *buf, size_t len);

/* Whether op has several results, told apart by the result field of its attributes:
 * attention, attention_bwd, fused_conv2d and fused_matmul. */
bool dc_op_multi_result(dc_op op);
/* Whether op is attention or attention_bwd: results one flash-attention kernel computes. */
bool dc_op_attention(dc_op op);
/* Which result of its op node n is (0 for an op with one result). */
int64_t dc_node_result(const dc_node *n);
/* The epilogue of a fused_conv2d or fused_matmul node (its attributes'; none for other ops). */
typedef struct { dc_activation act; bool bias, residual; } dc_fused_epilogue;
dc_fused_epilogue dc_fused_epilogue_of(const dc_node *n);
/* Whether nodes a and b are results of one computation: nodes of a multi-result op with the
 * same inputs and attributes but their result. One step computes them all
 * (codegen/lower_attention.c, codegen/lower.c). */
bool dc_same_computation(const dc_node *a, const dc_node *b);
/* The last of the consecutive nodes from `first` on that are results of first's computation
 * (first itself when it has no such neighbour). */
int dc_results_last(const dc_graph *g, int first);
/* node[r] = the node of result r of the computation of nodes first..last (-1 for a result
 * the graph does not have), r < max. */
void dc_result_nodes(const dc_graph *g, int first, int last, int *node, int max);

/* ---- shape rules, verifier ---------------------------------------------------------- */

/* The shape rule of n->op: computes n's result type from its inputs' types and its attrs.
 * For ops whose type is declared (sources, random ops, reshape, broadcast_to, conv2d_bwd_data,
 * conv2d_bwd_weight, scatter_add, unslice) the declared n->type is checked instead. On failure writes "OP: what is wrong" to err and returns false. */
bool dc_infer_type(const dc_graph *g, const dc_node *n, dc_type *out, char *err, size_t len);
/* Checks the whole graph: SSA order, arity, attribute ranges, every type against its shape
 * rule, names, outputs. Messages name the node: "node %5 (matmul) at f.dcir:7: ...". */
bool dc_verify(const dc_graph *g, char *err, size_t len);
/* Whether op may be a member of a loop group (g->group): its lower column is not NONE. */
bool dc_op_groupable(dc_op op);

/* ---- shape rules: the context the op families' rules (ops/) are written against ------- */

/* The rule's context: the node, its op's text, its input types (arity and types already
 * checked: every input type is well-formed), where errors go. */
typedef struct {
    const dc_node *n;
    const char *op;
    const dc_type *in[DC_MAX_INPUTS];
    char *err;
    size_t len;
} dc_rule;
/* A shape rule: n's result type into out, or false with "OP: what is wrong" in r->err. */
typedef bool dc_shape_fn(dc_rule *r, dc_type *out);
#define DC_OP(NAME, text, kind, arity, attr, shape, vjp, ref, lower, form) dc_shape_fn dc_shape_##shape;
#include "ir/ops.def"
#undef DC_OP

/* Printable forms, returned by value so several fit in one printf. */
typedef struct { char s[160]; } dc_str;
dc_str dc_type_s(const dc_type *t);
dc_str dc_ints_s(const dc_ints *v);
/* Writes "OP: " and the message to r->err; returns false. */
bool dc_rule_fail(dc_rule *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A well-formed type: known dtype, rank 0..6, dims >= 1, numel <= 2^40; what names it. */
bool dc_rule_check_type(dc_rule *r, const dc_type *t, const char *what);
/* Input k has dtype want (role names it in the message; NULL: a generic message). */
bool dc_rule_dtype(dc_rule *r, int k, const char *role, dc_dtype want);
bool dc_rule_rank(dc_rule *r, int k, const char *role, int rank, const char *layout);
bool dc_rule_min_rank(dc_rule *r, int k, const char *role, int rank);
bool dc_rule_axis(dc_rule *r, int64_t axis, int rank);
/* dc_ints with one entry per axis (n == rank), each in [lo, hi]. */
bool dc_rule_per_axis(dc_rule *r, const dc_ints *v, const char *what, int rank, int64_t lo, int64_t hi);
/* The node's declared type is a well-formed f32 type. */
bool dc_rule_declared_f32(dc_rule *r);
/* The type (dt, s) with unused dims zeroed. */
dc_type dc_make_type(dc_dtype dt, const dc_shape *s);

/* ---- text form ---------------------------------------------------------------------- */

/* Canonical text; malloc'd. Printing is deterministic, so print(parse(print(g))) == print(g). */
char *dc_print(const dc_graph *g);
/* Graphviz DOT; malloc'd. */
char *dc_print_dot(const dc_graph *g);
/* Parses text (file name for messages). On error returns NULL and writes
 * "FILE:LINE:COL: error: ..." to err. The result is verified. */
dc_graph *dc_parse(const char *text, size_t len, const char *file, char *err, size_t errlen);
/* Reads and parses a file; errors as dc_parse (or "FILE: error: cannot read: ..."). */
dc_graph *dc_parse_file(const char *path, char *err, size_t errlen);

/* ---- text building ---------------------------------------------------------------- */

/* A growing string (zero-initialise it); buf is malloc'd and NUL-terminated once written. */
typedef struct { char *buf; size_t len, cap; } dc_strbuf;
void dc_sb_printf(dc_strbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends node n's attributes as the printer writes them, " {name=value, ...}" (nothing for
 * an op without attributes). */
void dc_sb_attrs(dc_strbuf *s, const dc_node *n);
/* Writes prefix, then the message, into err (truncated to len). */
void dc_vprefixed(char *err, size_t len, const char *prefix, const char *fmt, va_list ap);

/* ---- hashing ------------------------------------------------------------------------ */

/* Fills every node's XXH3-128 structural hash: op, attribute bytes, input hashes, type,
 * and (for INPUT and PARAM) the name. */
void dc_graph_hash(dc_graph *g);

#endif
