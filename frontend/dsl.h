/* dsl.h — the C DSL that builds graphs: dc_t handles, one builder per op in ir/ops.def,
 * params with init specs, name scopes, module helpers (linear, conv, group/layer norm), and
 * sticky call-site errors.
 *
 * Every builder is a macro that records the caller's __FILE__/__LINE__ and calls a `*_at`
 * function. Optional arguments are designated initializers:
 *     dc_sum(g, x, .axes = DC_AXES(1, 2), .keepdims = true)
 *     dc_conv2d(g, x, w, .stride = 2, .pad = 1)
 * Options not given take the defaults listed at each options struct.
 *
 * Errors never abort. The first one is kept in the graph as "FILE:LINE: OP: message" and
 * every later builder does nothing and returns an invalid handle (id < 0). A NULL graph is
 * accepted everywhere and yields invalid handles.
 *
 * Axes may be negative (-1 = last); builders normalise them before the node is made. */
#ifndef DC_DSL_H
#define DC_DSL_H

#include "ir/ir.h"

typedef struct { int id; } dc_t;   /* a node of the graph; id < 0 is the invalid handle */
#define DC_NONE ((dc_t){ -1 })

/* dc_ints from a list: DC_INTS(1, 2) (1 to 6 entries). */
#define DC_INTS(...)                                                                    \
    ((dc_ints){ .n = (int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)),      \
                .v = { __VA_ARGS__ } })
#define DC_AXES(...) DC_INTS(__VA_ARGS__)
/* slice stop meaning "to the end of the axis" */
#define DC_END INT64_MAX

/* Options struct T with defaults, overridden by the caller's designated initializers. */
#define DC_OPTS(T, ...)                                                                 \
    ({                                                                                  \
        _Pragma("GCC diagnostic push")                                                  \
        _Pragma("GCC diagnostic ignored \"-Woverride-init\"")                           \
        T dc_opts_ = { __VA_ARGS__ };                                                   \
        _Pragma("GCC diagnostic pop")                                                   \
        dc_opts_;                                                                       \
    })

/* ---- graph state -------------------------------------------------------------------- */

bool dc_graph_failed(const dc_graph *g);        /* true after an error (or for NULL) */
const char *dc_graph_error(const dc_graph *g);  /* the first error, "" if none */
/* The type of a valid handle of g, else NULL; valid until the next node is added. */
const dc_type *dc_type_of(const dc_graph *g, dc_t t);

/* For module authors: checks that t is a valid handle of g (recording the error
 * "what: operand k is an invalid handle" if not) and returns its type or NULL. */
const dc_type *dc_operand_at(dc_graph *g, dc_t t, const char *what, int k, const char *file,
                             int line);
/* Records "FILE:LINE: what: message" ("FILE:LINE: message" if what is NULL) unless the
 * graph already failed. */
void dc_fail_at(dc_graph *g, const char *file, int line, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- sources, outputs, params, scopes ----------------------------------------------- */

/* Input names match [A-Za-z_][A-Za-z0-9_.]* and are unique. */
dc_t dc_input_at(dc_graph *g, const char *name, dc_dtype dtype, int rank, const int64_t *dims,
                 const char *file, int line);
#define dc_input(g, name, dtype, rank, dims)                                            \
    dc_input_at((g), (name), (dtype), (rank), (dims), __FILE__, __LINE__)

/* name may be NULL (printed "outI"); a given name is an identifier, unique among outputs. */
void dc_output_at(dc_graph *g, dc_t t, const char *name, const char *file, int line);
#define dc_output(g, t, name) dc_output_at((g), (t), (name), __FILE__, __LINE__)

/* Param init: default kaiming. normal: std .a (> 0); uniform: [.a, .b) with a < b;
 * zeros, ones, kaiming, xavier ignore .a and .b. */
typedef struct { dc_init_kind init; float a, b; } dc_param_opts;
/* Makes PARAM "<scope>.<name>" (just name when the scope is empty). Names are made of
 * [A-Za-z0-9_] components joined by '.', unique in the graph. */
dc_t dc_param_at(dc_graph *g, const char *name, int rank, const int64_t *dims, dc_param_opts o,
                 const char *file, int line);
#define dc_param(g, name, rank, dims, ...)                                              \
    dc_param_at((g), (name), (rank), (dims),                                            \
                DC_OPTS(dc_param_opts, .init = DC_INIT_KAIMING, __VA_ARGS__), __FILE__, __LINE__)

/* Scope names are one [A-Za-z0-9_]+ component; the whole scope is at most 255 chars. */
void dc_scope_push_at(dc_graph *g, const char *name, const char *file, int line);
void dc_scope_pop_at(dc_graph *g, const char *file, int line);
#define dc_scope_push(g, name) dc_scope_push_at((g), (name), __FILE__, __LINE__)
#define dc_scope_pop(g) dc_scope_pop_at((g), __FILE__, __LINE__)
#define DC_CAT_(a, b) a##b
#define DC_CAT(a, b) DC_CAT_(a, b)
/* DC_SCOPE(g, "block3") { ... }: the body runs once inside the scope (do not `break` out). */
#define DC_SCOPE(g, name)                                                               \
    for (int DC_CAT(dc_scope_once_, __LINE__) = (dc_scope_push(g, name), 1);            \
         DC_CAT(dc_scope_once_, __LINE__);                                              \
         DC_CAT(dc_scope_once_, __LINE__) = (dc_scope_pop(g), 0))

/* fill and iota: dtype default f32 */
typedef struct { dc_dtype dtype; } dc_source_opts;
dc_t dc_fill_at(dc_graph *g, float value, int rank, const int64_t *dims, dc_source_opts o,
                const char *file, int line);
#define dc_fill(g, value, rank, dims, ...)                                              \
    dc_fill_at((g), (value), (rank), (dims), DC_OPTS(dc_source_opts, .dtype = DC_F32, __VA_ARGS__), \
               __FILE__, __LINE__)
/* element = its index along axis */
dc_t dc_iota_at(dc_graph *g, int64_t axis, int rank, const int64_t *dims, dc_source_opts o,
                const char *file, int line);
#define dc_iota(g, axis, rank, dims, ...)                                               \
    dc_iota_at((g), (axis), (rank), (dims), DC_OPTS(dc_source_opts, .dtype = DC_F32, __VA_ARGS__), \
               __FILE__, __LINE__)
/* f32[] holding v */
#define dc_scalar(g, v) dc_fill_at((g), (v), 0, NULL, (dc_source_opts){ DC_F32 }, __FILE__, __LINE__)
/* x + v and x * v, v broadcast as a scalar of x's dtype */
dc_t dc_add_scalar_at(dc_graph *g, dc_t x, float v, const char *file, int line);
dc_t dc_mul_scalar_at(dc_graph *g, dc_t x, float v, const char *file, int line);
#define dc_add_scalar(g, x, v) dc_add_scalar_at((g), (x), (v), __FILE__, __LINE__)
#define dc_mul_scalar(g, x, v) dc_mul_scalar_at((g), (x), (v), __FILE__, __LINE__)

/* ---- elementwise -------------------------------------------------------------------- */

#define DC_UNARY_OPS(X)                                                                 \
    X(neg, NEG) X(abs, ABS) X(exp, EXP) X(log, LOG) X(sqrt, SQRT) X(rsqrt, RSQRT)       \
    X(square, SQUARE) X(sin, SIN) X(cos, COS) X(tanh, TANH) X(sigmoid, SIGMOID)         \
    X(silu, SILU) X(gelu, GELU) X(relu, RELU) X(softplus, SOFTPLUS)
#define DC_BINARY_OPS(X)                                                                \
    X(add, ADD) X(sub, SUB) X(mul, MUL) X(div, DIV) X(maximum, MAXIMUM)                 \
    X(minimum, MINIMUM) X(eq, EQ) X(ne, NE) X(lt, LT) X(le, LE) X(gt, GT) X(ge, GE)
#define DC_DECLARE_UNARY(name, OP) dc_t dc_##name##_at(dc_graph *g, dc_t x, const char *file, int line);
#define DC_DECLARE_BINARY(name, OP)                                                     \
    dc_t dc_##name##_at(dc_graph *g, dc_t a, dc_t b, const char *file, int line);
DC_UNARY_OPS(DC_DECLARE_UNARY)
DC_BINARY_OPS(DC_DECLARE_BINARY)

/* Any op whose ops.def lower column is MAP (an elementwise formula), by its enum, on its
 * operands: dc_map(g, DC_OP_SOFTPLUS, x), dc_map(g, DC_OP_ADD, a, b). An op that is not one,
 * or a wrong operand count, is a DSL error. */
dc_t dc_map_at(dc_graph *g, dc_op op, int n, const dc_t *in, const char *file, int line);
#define dc_map(g, op, ...)                                                              \
    dc_map_at((g), (op), (int)(sizeof((dc_t[]){ __VA_ARGS__ }) / sizeof(dc_t)),         \
              (dc_t[]){ __VA_ARGS__ }, __FILE__, __LINE__)

#define dc_neg(g, x) dc_neg_at((g), (x), __FILE__, __LINE__)
#define dc_abs(g, x) dc_abs_at((g), (x), __FILE__, __LINE__)
#define dc_exp(g, x) dc_exp_at((g), (x), __FILE__, __LINE__)
#define dc_log(g, x) dc_log_at((g), (x), __FILE__, __LINE__)
#define dc_sqrt(g, x) dc_sqrt_at((g), (x), __FILE__, __LINE__)
#define dc_rsqrt(g, x) dc_rsqrt_at((g), (x), __FILE__, __LINE__)
#define dc_square(g, x) dc_square_at((g), (x), __FILE__, __LINE__)
#define dc_sin(g, x) dc_sin_at((g), (x), __FILE__, __LINE__)
#define dc_cos(g, x) dc_cos_at((g), (x), __FILE__, __LINE__)
#define dc_tanh(g, x) dc_tanh_at((g), (x), __FILE__, __LINE__)
#define dc_sigmoid(g, x) dc_sigmoid_at((g), (x), __FILE__, __LINE__)
#define dc_silu(g, x) dc_silu_at((g), (x), __FILE__, __LINE__)
#define dc_gelu(g, x) dc_gelu_at((g), (x), __FILE__, __LINE__)
#define dc_relu(g, x) dc_relu_at((g), (x), __FILE__, __LINE__)
#define dc_softplus(g, x) dc_softplus_at((g), (x), __FILE__, __LINE__)

#define dc_add(g, a, b) dc_add_at((g), (a), (b), __FILE__, __LINE__)
#define dc_sub(g, a, b) dc_sub_at((g), (a), (b), __FILE__, __LINE__)
#define dc_mul(g, a, b) dc_mul_at((g), (a), (b), __FILE__, __LINE__)
#define dc_div(g, a, b) dc_div_at((g), (a), (b), __FILE__, __LINE__)
#define dc_maximum(g, a, b) dc_maximum_at((g), (a), (b), __FILE__, __LINE__)
#define dc_minimum(g, a, b) dc_minimum_at((g), (a), (b), __FILE__, __LINE__)
#define dc_eq(g, a, b) dc_eq_at((g), (a), (b), __FILE__, __LINE__)
#define dc_ne(g, a, b) dc_ne_at((g), (a), (b), __FILE__, __LINE__)
#define dc_lt(g, a, b) dc_lt_at((g), (a), (b), __FILE__, __LINE__)
#define dc_le(g, a, b) dc_le_at((g), (a), (b), __FILE__, __LINE__)
#define dc_gt(g, a, b) dc_gt_at((g), (a), (b), __FILE__, __LINE__)
#define dc_ge(g, a, b) dc_ge_at((g), (a), (b), __FILE__, __LINE__)

/* x ** exponent */
dc_t dc_pow_at(dc_graph *g, dc_t x, float exponent, const char *file, int line);
#define dc_pow(g, x, exponent) dc_pow_at((g), (x), (exponent), __FILE__, __LINE__)
dc_t dc_cast_at(dc_graph *g, dc_t x, dc_dtype to, const char *file, int line);
#define dc_cast(g, x, to) dc_cast_at((g), (x), (to), __FILE__, __LINE__)
/* cond (i32) ? a : b, broadcast */
dc_t dc_where_at(dc_graph *g, dc_t cond, dc_t a, dc_t b, const char *file, int line);
#define dc_where(g, cond, a, b) dc_where_at((g), (cond), (a), (b), __FILE__, __LINE__)
/* Gumbel-softmax straight-through: the value of hard (f32, soft's shape); the gradient goes
 * to soft only */
dc_t dc_straight_through_at(dc_graph *g, dc_t hard, dc_t soft, const char *file, int line);
#define dc_straight_through(g, hard, soft) dc_straight_through_at((g), (hard), (soft), __FILE__, __LINE__)

/* ---- reductions --------------------------------------------------------------------- */

/* axes: any order, negative allowed; none given = all axes. keepdims default false. */
typedef struct { dc_ints axes; bool keepdims; } dc_reduce_opts;
#define DC_REDUCE_OPS(X) X(sum, SUM) X(mean, MEAN) X(max, MAX) X(logsumexp, LOGSUMEXP)
#define DC_AXIS_OPS(X) X(softmax, SOFTMAX) X(log_softmax, LOG_SOFTMAX) X(argmax, ARGMAX)
#define DC_DECLARE_REDUCE(name, OP)                                                     \
    dc_t dc_##name##_at(dc_graph *g, dc_t x, dc_reduce_opts o, const char *file, int line);
#define DC_DECLARE_AXIS(name, OP)                                                       \
    dc_t dc_##name##_at(dc_graph *g, dc_t x, int64_t axis, const char *file, int line);
DC_REDUCE_OPS(DC_DECLARE_REDUCE)
DC_AXIS_OPS(DC_DECLARE_AXIS)

#define dc_sum(g, x, ...) dc_sum_at((g), (x), DC_OPTS(dc_reduce_opts, __VA_ARGS__), __FILE__, __LINE__)
#define dc_mean(g, x, ...) dc_mean_at((g), (x), DC_OPTS(dc_reduce_opts, __VA_ARGS__), __FILE__, __LINE__)
#define dc_max(g, x, ...) dc_max_at((g), (x), DC_OPTS(dc_reduce_opts, __VA_ARGS__), __FILE__, __LINE__)
#define dc_logsumexp(g, x, ...)                                                         \
    dc_logsumexp_at((g), (x), DC_OPTS(dc_reduce_opts, __VA_ARGS__), __FILE__, __LINE__)
#define dc_softmax(g, x, axis) dc_softmax_at((g), (x), (axis), __FILE__, __LINE__)
#define dc_log_softmax(g, x, axis) dc_log_softmax_at((g), (x), (axis), __FILE__, __LINE__)
/* i32 index of the maximum along axis (axis removed) */
#define dc_argmax(g, x, axis) dc_argmax_at((g), (x), (axis), __FILE__, __LINE__)
/* softmax's gradient: y * (dy - sum(dy * y, axis, keepdims)) for y = softmax(x, axis) */
dc_t dc_softmax_bwd_at(dc_graph *g, dc_t y, dc_t dy, int64_t axis, const char *file, int line);
#define dc_softmax_bwd(g, y, dy, axis) dc_softmax_bwd_at((g), (y), (dy), (axis), __FILE__, __LINE__)

/* ---- contractions ------------------------------------------------------------------- */

typedef struct { bool trans_a, trans_b; } dc_matmul_opts;
dc_t dc_matmul_at(dc_graph *g, dc_t a, dc_t b, dc_matmul_opts o, const char *file, int line);
#define dc_matmul(g, a, b, ...)                                                         \
    dc_matmul_at((g), (a), (b), DC_OPTS(dc_matmul_opts, __VA_ARGS__), __FILE__, __LINE__)
/* the LINEAR op: x [...,I] @ w [I,O] + b [O]; dc_linear is the module that makes w and b */
dc_t dc_linear_op_at(dc_graph *g, dc_t x, dc_t w, dc_t b, const char *file, int line);
#define dc_linear_op(g, x, w, b) dc_linear_op_at((g), (x), (w), (b), __FILE__, __LINE__)
/* x [N,H,W,C], w [KH,KW,C/groups,O]; stride and pad apply to H and W.
 * Defaults: stride 1, pad 0, groups 1. */
typedef struct { int64_t stride, pad, groups; } dc_conv2d_opts;
dc_t dc_conv2d_at(dc_graph *g, dc_t x, dc_t w, dc_conv2d_opts o, const char *file, int line);
#define dc_conv2d(g, x, w, ...)                                                         \
    dc_conv2d_at((g), (x), (w), DC_OPTS(dc_conv2d_opts, .stride = 1, .groups = 1, __VA_ARGS__), \
                 __FILE__, __LINE__)
/* [N,H,W,C] -> [N,H/f,W/f,C] mean of f x f windows, and nearest [N,H*f,W*f,C] */
dc_t dc_avg_pool_at(dc_graph *g, dc_t x, int64_t factor, const char *file, int line);
dc_t dc_upsample_at(dc_graph *g, dc_t x, int64_t factor, const char *file, int line);
/* conv2d's gradients for y = conv2d(x, w, opts): w.r.t. x from dy [N,OH,OW,O] and w, with x's
 * dims [N,H,W,C] given (floor in the output size makes them ambiguous); w.r.t. w from x and
 * dy, with w's dims [KH,KW,C/groups,O] given. Options and defaults as dc_conv2d. */
dc_t dc_conv2d_bwd_data_at(dc_graph *g, dc_t dy, dc_t w, int rank, const int64_t *x_dims,
                           dc_conv2d_opts o, const char *file, int line);
dc_t dc_conv2d_bwd_weight_at(dc_graph *g, dc_t x, dc_t dy, int rank, const int64_t *w_dims,
                             dc_conv2d_opts o, const char *file, int line);
#define dc_conv2d_bwd_data(g, dy, w, rank, x_dims, ...)                                 \
    dc_conv2d_bwd_data_at((g), (dy), (w), (rank), (x_dims),                             \
                          DC_OPTS(dc_conv2d_opts, .stride = 1, .groups = 1, __VA_ARGS__), \
                          __FILE__, __LINE__)
#define dc_conv2d_bwd_weight(g, x, dy, rank, w_dims, ...)                               \
    dc_conv2d_bwd_weight_at((g), (x), (dy), (rank), (w_dims),                           \
                            DC_OPTS(dc_conv2d_opts, .stride = 1, .groups = 1, __VA_ARGS__), \
                            __FILE__, __LINE__)
#define dc_avg_pool(g, x, factor) dc_avg_pool_at((g), (x), (factor), __FILE__, __LINE__)
#define dc_upsample(g, x, factor) dc_upsample_at((g), (x), (factor), __FILE__, __LINE__)
/* Fused contractions (the fuse-contraction pass makes them after autodiff; they have no
 * gradient): out = act(y + bias) + residual with y = conv2d(x, w) / matmul(a, b). bias [O]
 * and residual (y's type) are optional: DC_NONE leaves one out. Options and defaults as
 * dc_conv2d / dc_matmul, plus .act (default DC_ACTIVATION_NONE). */
typedef struct { int64_t stride, pad, groups; dc_activation act; } dc_fused_conv2d_opts;
dc_t dc_fused_conv2d_at(dc_graph *g, dc_t x, dc_t w, dc_t bias, dc_t residual,
                        dc_fused_conv2d_opts o, const char *file, int line);
#define dc_fused_conv2d(g, x, w, bias, residual, ...)                                   \
    dc_fused_conv2d_at((g), (x), (w), (bias), (residual),                               \
                       DC_OPTS(dc_fused_conv2d_opts, .stride = 1, .groups = 1, __VA_ARGS__), \
                       __FILE__, __LINE__)
typedef struct { bool trans_a, trans_b; dc_activation act; } dc_fused_matmul_opts;
dc_t dc_fused_matmul_at(dc_graph *g, dc_t a, dc_t b, dc_t bias, dc_t residual,
                        dc_fused_matmul_opts o, const char *file, int line);
#define dc_fused_matmul(g, a, b, bias, residual, ...)                                   \
    dc_fused_matmul_at((g), (a), (b), (bias), (residual),                               \
                       DC_OPTS(dc_fused_matmul_opts, __VA_ARGS__), __FILE__, __LINE__)

/* Scaled dot-product attention: softmax(scale * q k^T + bias, causal mask) v with q
 * [B,H,Sq,D], k [B,H,Sk,D], v [B,H,Sk,Dv] -> [B,H,Sq,Dv]; bias (broadcast to [B,H,Sq,Sk]) is
 * optional: DC_NONE leaves it out. Models usually spell attention out (matmul, softmax,
 * matmul) and the fuse-attention pass finds it; this is the op itself. .lse gives the rows'
 * logsumexp [B,H,Sq] instead of the output. Defaults: scale 1, not causal. */
typedef struct { float scale; bool causal, lse; } dc_attention_opts;
dc_t dc_attention_at(dc_graph *g, dc_t q, dc_t k, dc_t v, dc_t bias, dc_attention_opts o,
                     const char *file, int line);
#define dc_attention(g, q, k, v, bias, ...)                                             \
    dc_attention_at((g), (q), (k), (v), (bias), DC_OPTS(dc_attention_opts, .scale = 1, __VA_ARGS__), \
                    __FILE__, __LINE__)
/* attention's gradient w.r.t. input `wrt` (0 q, 1 k, 2 v, 3 bias) from the forward's out,
 * its gradient dout and lse; options as the forward's */
dc_t dc_attention_bwd_at(dc_graph *g, dc_t q, dc_t k, dc_t v, dc_t bias, dc_t out, dc_t dout,
                         dc_t lse, int wrt, dc_attention_opts o, const char *file, int line);
#define dc_attention_bwd(g, q, k, v, bias, out, dout, lse, wrt, ...)                    \
    dc_attention_bwd_at((g), (q), (k), (v), (bias), (out), (dout), (lse), (wrt),        \
                        DC_OPTS(dc_attention_opts, .scale = 1, __VA_ARGS__), __FILE__, __LINE__)

/* ---- normalisation ------------------------------------------------------------------ */

/* Defaults: eps 1e-5; group_norm groups 32. */
typedef struct { float eps; } dc_layer_norm_opts;
typedef struct { int64_t groups; float eps; } dc_group_norm_opts;
dc_t dc_layer_norm_at(dc_graph *g, dc_t x, dc_t gamma, dc_t beta, dc_layer_norm_opts o,
                      const char *file, int line);
dc_t dc_group_norm_at(dc_graph *g, dc_t x, dc_t gamma, dc_t beta, dc_group_norm_opts o,
                      const char *file, int line);
#define dc_layer_norm(g, x, gamma, beta, ...)                                           \
    dc_layer_norm_at((g), (x), (gamma), (beta), DC_OPTS(dc_layer_norm_opts, .eps = 1e-5f, __VA_ARGS__), \
                     __FILE__, __LINE__)
#define dc_group_norm(g, x, gamma, beta, ...)                                           \
    dc_group_norm_at((g), (x), (gamma), (beta),                                         \
                     DC_OPTS(dc_group_norm_opts, .groups = 32, .eps = 1e-5f, __VA_ARGS__),     \
                     __FILE__, __LINE__)

/* Their gradients w.r.t. x: (x, gamma, dy [x's shape]) -> dx; options as the forward ops. */
dc_t dc_layer_norm_bwd_at(dc_graph *g, dc_t x, dc_t gamma, dc_t dy, dc_layer_norm_opts o,
                          const char *file, int line);
dc_t dc_group_norm_bwd_at(dc_graph *g, dc_t x, dc_t gamma, dc_t dy, dc_group_norm_opts o,
                          const char *file, int line);
#define dc_layer_norm_bwd(g, x, gamma, dy, ...)                                         \
    dc_layer_norm_bwd_at((g), (x), (gamma), (dy), DC_OPTS(dc_layer_norm_opts, .eps = 1e-5f, __VA_ARGS__), \
                         __FILE__, __LINE__)
#define dc_group_norm_bwd(g, x, gamma, dy, ...)                                         \
    dc_group_norm_bwd_at((g), (x), (gamma), (dy),                                       \
                         DC_OPTS(dc_group_norm_opts, .groups = 32, .eps = 1e-5f, __VA_ARGS__), \
                         __FILE__, __LINE__)

/* ---- data movement ------------------------------------------------------------------ */

dc_t dc_reshape_at(dc_graph *g, dc_t x, int rank, const int64_t *dims, const char *file, int line);
dc_t dc_broadcast_to_at(dc_graph *g, dc_t x, int rank, const int64_t *dims, const char *file,
                        int line);
#define dc_reshape(g, x, rank, dims) dc_reshape_at((g), (x), (rank), (dims), __FILE__, __LINE__)
#define dc_broadcast_to(g, x, rank, dims)                                               \
    dc_broadcast_to_at((g), (x), (rank), (dims), __FILE__, __LINE__)
/* perm: one entry per axis, negative allowed: dc_transpose(g, x, DC_INTS(0, 2, 1)) */
dc_t dc_transpose_at(dc_graph *g, dc_t x, dc_ints perm, const char *file, int line);
#define dc_transpose(g, x, perm) dc_transpose_at((g), (x), (perm), __FILE__, __LINE__)
/* Entries are given for the leading axes; an axis without one is taken whole (start 0,
 * stop = dim, step 1). Negative start/stop count from the end; stop DC_END = dim. */
typedef struct { dc_ints start, stop, step; } dc_slice_opts;
dc_t dc_slice_at(dc_graph *g, dc_t x, dc_slice_opts o, const char *file, int line);
#define dc_slice(g, x, ...) dc_slice_at((g), (x), DC_OPTS(dc_slice_opts, __VA_ARGS__), __FILE__, __LINE__)
/* x[..., start:stop, ...] along one axis */
dc_t dc_slice_axis_at(dc_graph *g, dc_t x, int64_t axis, int64_t start, int64_t stop,
                      const char *file, int line);
/* slice's gradient: zeros of dy's dtype and the given dims, with dy written at the positions
 * that dc_slice(those dims, opts) reads; opts are read against the given dims. */
dc_t dc_unslice_at(dc_graph *g, dc_t dy, int rank, const int64_t *dims, dc_slice_opts o,
                   const char *file, int line);
#define dc_unslice(g, dy, rank, dims, ...)                                              \
    dc_unslice_at((g), (dy), (rank), (dims), DC_OPTS(dc_slice_opts, __VA_ARGS__), __FILE__, __LINE__)
#define dc_slice_axis(g, x, axis, start, stop)                                          \
    dc_slice_axis_at((g), (x), (axis), (start), (stop), __FILE__, __LINE__)
/* 1..16 operands: dc_concat(g, axis, a, b, c), or dc_concatv(g, axis, n, array) */
dc_t dc_concat_at(dc_graph *g, int64_t axis, int n, const dc_t *ts, const char *file, int line);
#define dc_concat(g, axis, ...)                                                         \
    dc_concat_at((g), (axis), (int)(sizeof((dc_t[]){ __VA_ARGS__ }) / sizeof(dc_t)),    \
                 (dc_t[]){ __VA_ARGS__ }, __FILE__, __LINE__)
#define dc_concatv(g, axis, n, ts) dc_concat_at((g), (axis), (n), (ts), __FILE__, __LINE__)
/* lo/hi given for the leading axes (others 0), value default 0 */
typedef struct { dc_ints lo, hi; float value; } dc_pad_opts;
dc_t dc_pad_at(dc_graph *g, dc_t x, dc_pad_opts o, const char *file, int line);
#define dc_pad(g, x, ...) dc_pad_at((g), (x), DC_OPTS(dc_pad_opts, __VA_ARGS__), __FILE__, __LINE__)
/* table [V,...] rows picked by idx (i32 [...]) -> [..., ...] */
dc_t dc_gather_at(dc_graph *g, dc_t table, dc_t idx, const char *file, int line);
#define dc_gather(g, table, idx) dc_gather_at((g), (table), (idx), __FILE__, __LINE__)
/* gather's gradient: idx (i32 [m...]), src f32 [m..., rest...] -> f32 [rows, rest...], zeros
 * with src row j added to row idx[j] (an index outside [0, rows) is a run-time error) */
dc_t dc_scatter_add_at(dc_graph *g, dc_t idx, dc_t src, int64_t rows, const char *file, int line);
#define dc_scatter_add(g, idx, src, rows) dc_scatter_add_at((g), (idx), (src), (rows), __FILE__, __LINE__)
/* i32 [...] -> f32 [..., depth] */
dc_t dc_one_hot_at(dc_graph *g, dc_t idx, int64_t depth, const char *file, int line);
#define dc_one_hot(g, idx, depth) dc_one_hot_at((g), (idx), (depth), __FILE__, __LINE__)

/* ---- random (f32, each call draws a fresh stream) ----------------------------------- */

typedef struct { float lo, hi; } dc_uniform_opts;     /* default [0, 1) */
typedef struct { float mean, std; } dc_normal_opts;   /* default 0, 1 */
typedef struct { float loc, scale; } dc_gumbel_opts;  /* default 0, 1 */
dc_t dc_uniform_at(dc_graph *g, int rank, const int64_t *dims, dc_uniform_opts o,
                   const char *file, int line);
dc_t dc_normal_at(dc_graph *g, int rank, const int64_t *dims, dc_normal_opts o, const char *file,
                  int line);
dc_t dc_gumbel_at(dc_graph *g, int rank, const int64_t *dims, dc_gumbel_opts o, const char *file,
                  int line);
#define dc_uniform(g, rank, dims, ...)                                                  \
    dc_uniform_at((g), (rank), (dims), DC_OPTS(dc_uniform_opts, .hi = 1.0f, __VA_ARGS__), \
                  __FILE__, __LINE__)
#define dc_normal(g, rank, dims, ...)                                                   \
    dc_normal_at((g), (rank), (dims), DC_OPTS(dc_normal_opts, .std = 1.0f, __VA_ARGS__), \
                 __FILE__, __LINE__)
#define dc_gumbel(g, rank, dims, ...)                                                   \
    dc_gumbel_at((g), (rank), (dims), DC_OPTS(dc_gumbel_opts, .scale = 1.0f, __VA_ARGS__), \
                 __FILE__, __LINE__)

/* ---- losses (f32[], and cross_entropy's per-row terms f32 [...]) ---------------------- */

dc_t dc_cross_entropy_at(dc_graph *g, dc_t logits, dc_t labels, const char *file, int line);
dc_t dc_cross_entropy_rows_at(dc_graph *g, dc_t logits, dc_t labels, const char *file, int line);
dc_t dc_mse_at(dc_graph *g, dc_t a, dc_t b, const char *file, int line);
#define dc_cross_entropy(g, logits, labels)                                             \
    dc_cross_entropy_at((g), (logits), (labels), __FILE__, __LINE__)
#define dc_cross_entropy_rows(g, logits, labels)                                        \
    dc_cross_entropy_rows_at((g), (logits), (labels), __FILE__, __LINE__)
#define dc_mse(g, a, b) dc_mse_at((g), (a), (b), __FILE__, __LINE__)

/* ---- modules: make their own params under .name (inside the current scope) ---------- */

/* x [...,I] -> [...,O]: params NAME.w [I,O] (init, default kaiming) and NAME.b [O] zeros;
 * op LINEAR, or MATMUL when bias is false. Defaults: name "linear", bias true. */
typedef struct { const char *name; bool bias; dc_init_kind init; } dc_linear_opts;
dc_t dc_linear_at(dc_graph *g, dc_t x, int64_t out_features, dc_linear_opts o, const char *file,
                  int line);
#define dc_linear(g, x, out_features, ...)                                              \
    dc_linear_at((g), (x), (out_features),                                              \
                 DC_OPTS(dc_linear_opts, .name = "linear", .bias = true, .init = DC_INIT_KAIMING, \
                         __VA_ARGS__),                                                  \
                 __FILE__, __LINE__)

/* x [N,H,W,C] -> conv2d with NAME.w [k,k,C/groups,out] kaiming, plus NAME.b [out] zeros.
 * Defaults: name "conv", kernel 3, stride 1, pad -1 (= kernel/2, "same"), groups 1, bias. */
typedef struct { const char *name; int64_t kernel, stride, pad, groups; bool bias; } dc_conv_opts;
dc_t dc_conv_at(dc_graph *g, dc_t x, int64_t out_channels, dc_conv_opts o, const char *file,
                int line);
#define dc_conv(g, x, out_channels, ...)                                                \
    dc_conv_at((g), (x), (out_channels),                                                \
               DC_OPTS(dc_conv_opts, .name = "conv", .kernel = 3, .stride = 1, .pad = -1,    \
                       .groups = 1, .bias = true, __VA_ARGS__),                          \
               __FILE__, __LINE__)

/* Norms over the last dim C with params NAME.scale [C] ones and NAME.bias [C] zeros.
 * Defaults: name "gn" / "ln", groups 32, eps 1e-5. */
typedef struct { const char *name; int64_t groups; float eps; } dc_group_norm_m_opts;
typedef struct { const char *name; float eps; } dc_layer_norm_m_opts;
dc_t dc_group_norm_m_at(dc_graph *g, dc_t x, dc_group_norm_m_opts o, const char *file, int line);
dc_t dc_layer_norm_m_at(dc_graph *g, dc_t x, dc_layer_norm_m_opts o, const char *file, int line);
#define dc_group_norm_m(g, x, ...)                                                      \
    dc_group_norm_m_at((g), (x),                                                        \
                       DC_OPTS(dc_group_norm_m_opts, .name = "gn", .groups = 32, .eps = 1e-5f, \
                               __VA_ARGS__),                                            \
                       __FILE__, __LINE__)
#define dc_layer_norm_m(g, x, ...)                                                      \
    dc_layer_norm_m_at((g), (x), DC_OPTS(dc_layer_norm_m_opts, .name = "ln", .eps = 1e-5f, __VA_ARGS__), \
                       __FILE__, __LINE__)

#endif
