/* dsl.c — the op builders of the DSL. Every builder normalises its arguments (negative
 * axes, partial slice/pad specs), fills a zeroed attribute struct and hands it to emit(),
 * the one function that checks handles, runs the shape rule (dc_infer_type) and appends the
 * node with its call site. Errors are sticky: the first is kept, later builders do nothing. */
#include "frontend/dsl.h"

#include <stdarg.h>
#include <string.h>

/* ---- errors and handles ------------------------------------------------------------- */

bool dc_graph_failed(const dc_graph *g) { return !g || g->failed; }

const char *dc_graph_error(const dc_graph *g) { return g ? g->error : "no graph (NULL)"; }

static void fail_v(dc_graph *g, const char *file, int line, const char *what, const char *fmt,
                   va_list ap) {
    if (!g || g->failed) return;
    g->failed = true;
    int k = snprintf(g->error, sizeof g->error, "%s:%d: %s%s", file ? file : "?", line,
                     what ? what : "", what ? ": " : "");
    if (k >= 0 && (size_t)k < sizeof g->error) vsnprintf(g->error + k, sizeof g->error - (size_t)k, fmt, ap);
}

void dc_fail_at(dc_graph *g, const char *file, int line, const char *what, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_v(g, file, line, what, fmt, ap);
    va_end(ap);
}

const dc_type *dc_type_of(const dc_graph *g, dc_t t) {
    if (!g || t.id < 0 || t.id >= g->n_nodes) return NULL;
    return &g->nodes[t.id].type;
}

const dc_type *dc_operand_at(dc_graph *g, dc_t t, const char *what, int k, const char *file,
                             int line) {
    if (dc_graph_failed(g)) return NULL;
    if (t.id < 0) {
        dc_fail_at(g, file, line, what, "operand %d is an invalid handle", k);
        return NULL;
    }
    if (t.id >= g->n_nodes) {
        dc_fail_at(g, file, line, what, "operand %d is out of range (id %d, graph has %d nodes)", k,
                   t.id, g->n_nodes);
        return NULL;
    }
    return &g->nodes[t.id].type;
}

/* an attribute list of 0..DC_MAX_RANK entries; records the error if not */
static bool ints_ok(dc_graph *g, const char *what, const char *field, const dc_ints *v,
                    const char *file, int line) {
    if (dc_graph_failed(g)) return false;
    if (v->n >= 0 && v->n <= DC_MAX_RANK) return true;
    dc_fail_at(g, file, line, what, "%s has %d entries, want 0..%d", field, v->n, DC_MAX_RANK);
    return false;
}

static int rank_of(const dc_graph *g, dc_t t) {
    const dc_type *ty = dc_type_of(g, t);
    return ty ? ty->shape.rank : 0;
}

/* axis in [-rank, -1] counts from the end; anything else is left for the shape rule */
static int64_t norm_axis(int64_t axis, int rank) { return axis < 0 && axis >= -rank ? axis + rank : axis; }

/* ---- emit: the one way a node enters the graph ------------------------------------- */

static dc_t emit(dc_graph *g, dc_op op, int n_in, const dc_t *in, const dc_attr *attr,
                 const dc_type *declared, const char *name, const char *file, int line) {
    const char *what = dc_op_name(op);
    if (n_in > DC_MAX_INPUTS) {
        dc_fail_at(g, file, line, what, "%d operands (at most %d)", n_in, DC_MAX_INPUTS);
        return DC_NONE;
    }
    for (int i = 0; i < n_in; i++)
        if (!dc_operand_at(g, in[i], what, i + 1, file, line)) return DC_NONE;
    if (dc_graph_failed(g)) return DC_NONE;
    int ids[DC_MAX_INPUTS];
    for (int i = 0; i < n_in; i++) ids[i] = in[i].id;
    char err[DC_ERR_LEN];
    int id = dc_graph_emit(g, op, n_in, ids, attr, declared, name, file, line, err, sizeof err);
    if (id < 0) dc_fail_at(g, file, line, NULL, "%s", err); /* the rule's message is "OP: ..." */
    return (dc_t){ id };
}

/* attributes are zeroed in place, padding included: hashing and CSE compare their bytes */
static void zero_attr(dc_attr *a) { memset(a, 0, sizeof *a); }

/* A declared type from user arguments; records the error under `what` if it is bad. */
static bool make_type(dc_graph *g, const char *what, dc_dtype dtype, int rank, const int64_t *dims,
                      dc_type *t, const char *file, int line) {
    memset(t, 0, sizeof *t);
    if ((unsigned)dtype >= DC_NDTYPES) {
        dc_fail_at(g, file, line, what, "unknown dtype %d", (int)dtype);
        return false;
    }
    if (rank < 0 || rank > DC_MAX_RANK) {
        dc_fail_at(g, file, line, what, "rank %d is out of range 0..%d", rank, DC_MAX_RANK);
        return false;
    }
    if (rank > 0 && !dims) {
        dc_fail_at(g, file, line, what, "dims is NULL for rank %d", rank);
        return false;
    }
    t->dtype = dtype;
    t->shape.rank = rank;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 1) {
            dc_fail_at(g, file, line, what, "dim %d is %lld, dims must be >= 1", i, (long long)dims[i]);
            return false;
        }
        t->shape.dim[i] = dims[i];
    }
    return true;
}

/* ---- names -------------------------------------------------------------------------- */

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_alnum(char c) { return is_alpha(c) || (c >= '0' && c <= '9'); }

/* [A-Za-z_][A-Za-z0-9_.]* */
static bool is_ident(const char *s) {
    if (!is_alpha(s[0])) return false;
    for (const char *p = s + 1; *p; p++)
        if (!is_alnum(*p) && *p != '.') return false;
    return true;
}

/* [A-Za-z0-9_]+ components joined by '.' (dots allowed only if dotted) */
static bool is_path(const char *s, bool dotted) {
    bool empty = true;
    for (const char *p = s;; p++) {
        if (*p == '.' || !*p) {
            if (empty || (*p == '.' && !dotted)) return false;
            if (!*p) return true;
            empty = true;
        } else if (!is_alnum(*p)) {
            return false;
        } else {
            empty = false;
        }
    }
}

/* NULL / empty / bad characters; records the error. want: the pattern for the message. */
static bool check_name(dc_graph *g, const char *what, const char *name, bool ok, const char *want,
                       const char *file, int line) {
    if (!name) dc_fail_at(g, file, line, what, "name is NULL");
    else if (!*name) dc_fail_at(g, file, line, what, "empty name");
    else if (!ok) dc_fail_at(g, file, line, what, "bad name '%s' (want %s)", name, want);
    return name && *name && ok;
}

static bool node_name_taken(const dc_graph *g, dc_op op, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == op && g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0) return true;
    return false;
}

/* ---- sources, outputs, params, scopes ----------------------------------------------- */

dc_t dc_input_at(dc_graph *g, const char *name, dc_dtype dtype, int rank, const int64_t *dims,
                 const char *file, int line) {
    dc_type t;
    if (dc_graph_failed(g)) return DC_NONE;
    if (!check_name(g, "input", name, name && is_ident(name), "[A-Za-z_][A-Za-z0-9_.]*", file, line))
        return DC_NONE;
    if (node_name_taken(g, DC_OP_INPUT, name)) {
        dc_fail_at(g, file, line, "input", "duplicate name '%s'", name);
        return DC_NONE;
    }
    if (!make_type(g, "input", dtype, rank, dims, &t, file, line)) return DC_NONE;
    return emit(g, DC_OP_INPUT, 0, NULL, NULL, &t, name, file, line);
}

void dc_output_at(dc_graph *g, dc_t t, const char *name, const char *file, int line) {
    if (!dc_operand_at(g, t, "output", 1, file, line)) return;
    if (name && !check_name(g, "output", name, is_ident(name), "[A-Za-z_][A-Za-z0-9_.]*", file, line))
        return;
    for (int i = 0; name && i < g->n_outputs; i++)
        if (g->output_names[i] && strcmp(g->output_names[i], name) == 0) {
            dc_fail_at(g, file, line, "output", "duplicate name '%s'", name);
            return;
        }
    dc_graph_add_output(g, t.id, name);
}

dc_t dc_param_at(dc_graph *g, const char *name, int rank, const int64_t *dims, dc_param_opts o,
                 const char *file, int line) {
    if (dc_graph_failed(g)) return DC_NONE;
    if (!check_name(g, "param", name, name && is_path(name, true), "[A-Za-z0-9_] components joined by '.'",
                    file, line))
        return DC_NONE;
    char full[DC_ERR_LEN];
    int k = snprintf(full, sizeof full, "%s%s%s", g->scope, g->scope[0] ? "." : "", name);
    if (k < 0 || (size_t)k >= sizeof full) {
        dc_fail_at(g, file, line, "param", "name '%s' is too long", name);
        return DC_NONE;
    }
    if (node_name_taken(g, DC_OP_PARAM, full)) {
        dc_fail_at(g, file, line, "param", "duplicate name '%s'", full);
        return DC_NONE;
    }
    dc_attr a;
    zero_attr(&a);
    a.init.kind = o.init;
    switch (o.init) {
    case DC_INIT_ZEROS: case DC_INIT_ONES: case DC_INIT_KAIMING: case DC_INIT_XAVIER: break;
    case DC_INIT_NORMAL:
        if (!(o.a > 0)) {
            dc_fail_at(g, file, line, "param", "normal init of '%s' needs .a (std) > 0, got %g", full, o.a);
            return DC_NONE;
        }
        a.init.a = o.a;
        break;
    case DC_INIT_UNIFORM:
        if (!(o.a < o.b)) {
            dc_fail_at(g, file, line, "param", "uniform init of '%s' needs .a < .b, got [%g, %g)", full,
                       o.a, o.b);
            return DC_NONE;
        }
        a.init.a = o.a;
        a.init.b = o.b;
        break;
    default:
        dc_fail_at(g, file, line, "param", "unknown init %d", (int)o.init);
        return DC_NONE;
    }
    dc_type t;
    if (!make_type(g, "param", DC_F32, rank, dims, &t, file, line)) return DC_NONE;
    return emit(g, DC_OP_PARAM, 0, NULL, &a, &t, full, file, line);
}

void dc_scope_push_at(dc_graph *g, const char *name, const char *file, int line) {
    if (dc_graph_failed(g)) return;
    if (!check_name(g, "scope", name, name && is_path(name, false), "[A-Za-z0-9_]+", file, line)) return;
    size_t used = strlen(g->scope), add = strlen(name) + (used ? 1 : 0);
    if (used + add >= sizeof g->scope) {
        dc_fail_at(g, file, line, "scope", "pushing '%s' overflows the scope (at most %zu characters)",
                   name, sizeof g->scope - 1);
        return;
    }
    snprintf(g->scope + used, sizeof g->scope - used, "%s%s", used ? "." : "", name);
}

void dc_scope_pop_at(dc_graph *g, const char *file, int line) {
    if (dc_graph_failed(g)) return;
    if (!g->scope[0]) {
        dc_fail_at(g, file, line, "scope", "pop without a matching push");
        return;
    }
    char *dot = strrchr(g->scope, '.');
    *(dot ? dot : g->scope) = 0;
}

static dc_t source(dc_graph *g, dc_op op, const dc_attr *a, dc_dtype dtype, int rank,
                   const int64_t *dims, const char *file, int line) {
    dc_type t;
    if (dc_graph_failed(g) || !make_type(g, dc_op_name(op), dtype, rank, dims, &t, file, line))
        return DC_NONE;
    return emit(g, op, 0, NULL, a, &t, NULL, file, line);
}

dc_t dc_fill_at(dc_graph *g, float value, int rank, const int64_t *dims, dc_source_opts o,
                const char *file, int line) {
    dc_attr a;
    zero_attr(&a);
    a.scalar.value = value;
    return source(g, DC_OP_FILL, &a, o.dtype, rank, dims, file, line);
}

dc_t dc_iota_at(dc_graph *g, int64_t axis, int rank, const int64_t *dims, dc_source_opts o,
                const char *file, int line) {
    dc_attr a;
    zero_attr(&a);
    a.axis.axis = norm_axis(axis, rank);
    return source(g, DC_OP_IOTA, &a, o.dtype, rank, dims, file, line);
}

static dc_t scalar_binary(dc_graph *g, dc_op op, dc_t x, float v, const char *file, int line) {
    const dc_type *t = dc_operand_at(g, x, dc_op_name(op), 1, file, line);
    if (!t) return DC_NONE;
    dc_attr a;
    zero_attr(&a);
    a.scalar.value = v;
    dc_t s = source(g, DC_OP_FILL, &a, t->dtype, 0, NULL, file, line);
    return emit(g, op, 2, (dc_t[]){ x, s }, NULL, NULL, NULL, file, line);
}

dc_t dc_add_scalar_at(dc_graph *g, dc_t x, float v, const char *file, int line) {
    return scalar_binary(g, DC_OP_ADD, x, v, file, line);
}

dc_t dc_mul_scalar_at(dc_graph *g, dc_t x, float v, const char *file, int line) {
    return scalar_binary(g, DC_OP_MUL, x, v, file, line);
}

/* ---- elementwise -------------------------------------------------------------------- */

#define DEFINE_UNARY(name, OP)                                                          \
    dc_t dc_##name##_at(dc_graph *g, dc_t x, const char *file, int line) {              \
        return emit(g, DC_OP_##OP, 1, &x, NULL, NULL, NULL, file, line);                \
    }
#define DEFINE_BINARY(name, OP)                                                         \
    dc_t dc_##name##_at(dc_graph *g, dc_t a, dc_t b, const char *file, int line) {      \
        return emit(g, DC_OP_##OP, 2, (dc_t[]){ a, b }, NULL, NULL, NULL, file, line);  \
    }
DC_UNARY_OPS(DEFINE_UNARY)
DC_BINARY_OPS(DEFINE_BINARY)

dc_t dc_map_at(dc_graph *g, dc_op op, int n, const dc_t *in, const char *file, int line) {
    if ((unsigned)op >= DC_OP_COUNT || dc_op_get(op)->lower != DC_LOWER_MAP) {
        if (dc_graph_failed(g)) return DC_NONE;
        if ((unsigned)op < DC_OP_COUNT) dc_fail_at(g, file, line, "map", "%s is not an elementwise formula op", dc_op_name(op));
        else dc_fail_at(g, file, line, "map", "unknown op %d", (int)op);
        return DC_NONE;
    }
    return emit(g, op, n, in, NULL, NULL, NULL, file, line);
}

dc_t dc_pow_at(dc_graph *g, dc_t x, float exponent, const char *file, int line) {
    dc_attr a;
    zero_attr(&a);
    a.scalar.value = exponent;
    return emit(g, DC_OP_POW, 1, &x, &a, NULL, NULL, file, line);
}

dc_t dc_cast_at(dc_graph *g, dc_t x, dc_dtype to, const char *file, int line) {
    if (!dc_graph_failed(g) && (unsigned)to >= DC_NDTYPES) {
        dc_fail_at(g, file, line, "cast", "unknown dtype %d", (int)to);
        return DC_NONE;
    }
    dc_attr a;
    zero_attr(&a);
    a.cast.to = to;
    return emit(g, DC_OP_CAST, 1, &x, &a, NULL, NULL, file, line);
}

dc_t dc_where_at(dc_graph *g, dc_t cond, dc_t a, dc_t b, const char *file, int line) {
    return emit(g, DC_OP_WHERE, 3, (dc_t[]){ cond, a, b }, NULL, NULL, NULL, file, line);
}

dc_t dc_straight_through_at(dc_graph *g, dc_t hard, dc_t soft, const char *file, int line) {
    return emit(g, DC_OP_STRAIGHT_THROUGH, 2, (dc_t[]){ hard, soft }, NULL, NULL, NULL, file, line);
}

/* ---- reductions --------------------------------------------------------------------- */

/* negative axes normalised, then sorted ascending (duplicates are the shape rule's) */
static void put_axes(dc_ints *dst, const dc_ints *src, int rank) {
    int n = src->n;
    dst->n = n;
    for (int i = 0; i < n; i++) {
        int64_t v = norm_axis(src->v[i], rank);
        int j = i;
        for (; j > 0 && dst->v[j - 1] > v; j--) dst->v[j] = dst->v[j - 1];
        dst->v[j] = v;
    }
}

static dc_t reduce(dc_graph *g, dc_op op, dc_t x, const dc_reduce_opts *o, const char *file, int line) {
    if (!ints_ok(g, dc_op_name(op), "axes", &o->axes, file, line)) return DC_NONE;
    dc_attr a;
    zero_attr(&a);
    put_axes(&a.reduce.axes, &o->axes, rank_of(g, x));
    a.reduce.keepdims = o->keepdims;
    return emit(g, op, 1, &x, &a, NULL, NULL, file, line);
}

static dc_t axis_op(dc_graph *g, dc_op op, dc_t x, int64_t axis, const char *file, int line) {
    dc_attr a;
    zero_attr(&a);
    a.axis.axis = norm_axis(axis, rank_of(g, x));
    return emit(g, op, 1, &x, &a, NULL, NULL, file, line);
}

#define DEFINE_REDUCE(name, OP)                                                         \
    dc_t dc_##name##_at(dc_graph *g, dc_t x, dc_reduce_opts o, const char *file, int line) { \
        return reduce(g, DC_OP_##OP, x, &o, file, line);                                \
    }
#define DEFINE_AXIS(name, OP)                                                           \
    dc_t dc_##name##_at(dc_graph *g, dc_t x, int64_t axis, const char *file, int line) { \
        return axis_op(g, DC_OP_##OP, x, axis, file, line);                             \
    }
DC_REDUCE_OPS(DEFINE_REDUCE)
DC_AXIS_OPS(DEFINE_AXIS)

dc_t dc_softmax_bwd_at(dc_graph *g, dc_t y, dc_t dy, int64_t axis, const char *file, int line) {
    dc_attr a;
    zero_attr(&a);
    a.axis.axis = norm_axis(axis, rank_of(g, y));
    return emit(g, DC_OP_SOFTMAX_BWD, 2, (dc_t[]){ y, dy }, &a, NULL, NULL, file, line);
}

/* ---- contractions ------------------------------------------------------------------- */

dc_t dc_matmul_at(dc_graph *g, dc_t a, dc_t b, dc_matmul_opts o, const char *file, int line) {
    dc_attr at;
    zero_attr(&at);
    at.matmul.trans_a = o.trans_a;
    at.matmul.trans_b = o.trans_b;
    return emit(g, DC_OP_MATMUL, 2, (dc_t[]){ a, b }, &at, NULL, NULL, file, line);
}

dc_t dc_linear_op_at(dc_graph *g, dc_t x, dc_t w, dc_t b, const char *file, int line) {
    return emit(g, DC_OP_LINEAR, 3, (dc_t[]){ x, w, b }, NULL, NULL, NULL, file, line);
}

/* the conv attribute of o: one stride and pad for both spatial axes */
static dc_attr conv_attr(const dc_conv2d_opts *o) {
    dc_attr a;
    zero_attr(&a);
    a.conv.stride.n = a.conv.pad.n = 2;
    a.conv.stride.v[0] = a.conv.stride.v[1] = o->stride;
    a.conv.pad.v[0] = a.conv.pad.v[1] = o->pad;
    a.conv.groups = o->groups;
    return a;
}

dc_t dc_conv2d_at(dc_graph *g, dc_t x, dc_t w, dc_conv2d_opts o, const char *file, int line) {
    dc_attr a = conv_attr(&o);
    return emit(g, DC_OP_CONV2D, 2, (dc_t[]){ x, w }, &a, NULL, NULL, file, line);
}

/* A fused contraction of a0, a1 and the epilogue operands present (bias, then residual,
 * each absent when its id is negative); a's presence flags say the same. */
static dc_t fused(dc_graph *g, dc_op op, dc_t a0, dc_t a1, dc_t bias, dc_t residual,
                  const dc_attr *a, const char *file, int line) {
    dc_t in[4] = { a0, a1 };
    int n = 2;
    if (bias.id >= 0) in[n++] = bias;
    if (residual.id >= 0) in[n++] = residual;
    return emit(g, op, n, in, a, NULL, NULL, file, line);
}

dc_t dc_fused_conv2d_at(dc_graph *g, dc_t x, dc_t w, dc_t bias, dc_t residual,
                        dc_fused_conv2d_opts o, const char *file, int line) {
    dc_conv2d_opts co = { o.stride, o.pad, o.groups };
    dc_attr c = conv_attr(&co), a;
    zero_attr(&a);
    a.fused_conv.stride = c.conv.stride;
    a.fused_conv.pad = c.conv.pad;
    a.fused_conv.groups = c.conv.groups;
    a.fused_conv.act = o.act;
    a.fused_conv.bias = bias.id >= 0;
    a.fused_conv.residual = residual.id >= 0;
    return fused(g, DC_OP_FUSED_CONV2D, x, w, bias, residual, &a, file, line);
}

dc_t dc_fused_matmul_at(dc_graph *g, dc_t a, dc_t b, dc_t bias, dc_t residual,
                        dc_fused_matmul_opts o, const char *file, int line) {
    dc_attr at;
    zero_attr(&at);
    at.fused_matmul.trans_a = o.trans_a;
    at.fused_matmul.trans_b = o.trans_b;
    at.fused_matmul.act = o.act;
    at.fused_matmul.bias = bias.id >= 0;
    at.fused_matmul.residual = residual.id >= 0;
    return fused(g, DC_OP_FUSED_MATMUL, a, b, bias, residual, &at, file, line);
}

/* attention and attention_bwd: q, k, v, the bias when present, then the backward's extras */
static dc_t attention(dc_graph *g, dc_op op, const dc_t *qkvb, const dc_t *extra, int n_extra, int64_t result,
                      const dc_attention_opts *o, const char *file, int line) {
    dc_attr a;
    zero_attr(&a);
    a.attention.scale = o->scale;
    a.attention.causal = o->causal;
    a.attention.bias = qkvb[3].id >= 0;
    a.attention.result = result;
    dc_t in[7];
    int n = 3 + a.attention.bias;
    memcpy(in, qkvb, sizeof(dc_t) * (size_t)n);
    for (int i = 0; i < n_extra; i++) in[n++] = extra[i];
    return emit(g, op, n, in, &a, NULL, NULL, file, line);
}

dc_t dc_attention_at(dc_graph *g, dc_t q, dc_t k, dc_t v, dc_t bias, dc_attention_opts o,
                     const char *file, int line) {
    return attention(g, DC_OP_ATTENTION, (dc_t[]){ q, k, v, bias }, NULL, 0, o.lse, &o, file, line);
}

dc_t dc_attention_bwd_at(dc_graph *g, dc_t q, dc_t k, dc_t v, dc_t bias, dc_t out, dc_t dout,
                         dc_t lse, int wrt, dc_attention_opts o, const char *file, int line) {
    return attention(g, DC_OP_ATTENTION_BWD, (dc_t[]){ q, k, v, bias }, (dc_t[]){ out, dout, lse }, 3, wrt, &o,
                     file, line);
}

/* conv2d_bwd_data(dy, w) / conv2d_bwd_weight(x, dy) with the declared f32 result dims */
static dc_t conv_bwd(dc_graph *g, dc_op op, dc_t a0, dc_t a1, int rank, const int64_t *dims,
                     const dc_conv2d_opts *o, const char *file, int line) {
    dc_type t;
    if (dc_graph_failed(g) || !make_type(g, dc_op_name(op), DC_F32, rank, dims, &t, file, line))
        return DC_NONE;
    dc_attr a = conv_attr(o);
    return emit(g, op, 2, (dc_t[]){ a0, a1 }, &a, &t, NULL, file, line);
}

dc_t dc_conv2d_bwd_data_at(dc_graph *g, dc_t dy, dc_t w, int rank, const int64_t *x_dims,
                           dc_conv2d_opts o, const char *file, int line) {
    return conv_bwd(g, DC_OP_CONV2D_BWD_DATA, dy, w, rank, x_dims, &o, file, line);
}

dc_t dc_conv2d_bwd_weight_at(dc_graph *g, dc_t x, dc_t dy, int rank, const int64_t *w_dims,
                             dc_conv2d_opts o, const char *file, int line) {
    return conv_bwd(g, DC_OP_CONV2D_BWD_WEIGHT, x, dy, rank, w_dims, &o, file, line);
}

static dc_t pool(dc_graph *g, dc_op op, dc_t x, int64_t factor, const char *file, int line) {
    dc_attr a;
    zero_attr(&a);
    a.pool.factor = factor;
    return emit(g, op, 1, &x, &a, NULL, NULL, file, line);
}

dc_t dc_avg_pool_at(dc_graph *g, dc_t x, int64_t factor, const char *file, int line) {
    return pool(g, DC_OP_AVG_POOL, x, factor, file, line);
}

dc_t dc_upsample_at(dc_graph *g, dc_t x, int64_t factor, const char *file, int line) {
    return pool(g, DC_OP_UPSAMPLE, x, factor, file, line);
}

/* ---- normalisation ------------------------------------------------------------------ */

dc_t dc_layer_norm_at(dc_graph *g, dc_t x, dc_t gamma, dc_t beta, dc_layer_norm_opts o,
                      const char *file, int line) {
    dc_attr a;
    zero_attr(&a);
    a.eps.eps = o.eps;
    return emit(g, DC_OP_LAYER_NORM, 3, (dc_t[]){ x, gamma, beta }, &a, NULL, NULL, file, line);
}

dc_t dc_group_norm_at(dc_graph *g, dc_t x, dc_t gamma, dc_t beta, dc_group_norm_opts o,
                      const char *file, int line) {
    dc_attr a;
    zero_attr(&a);
    a.group_norm.groups = o.groups;
    a.group_norm.eps = o.eps;
    return emit(g, DC_OP_GROUP_NORM, 3, (dc_t[]){ x, gamma, beta }, &a, NULL, NULL, file, line);
}

dc_t dc_layer_norm_bwd_at(dc_graph *g, dc_t x, dc_t gamma, dc_t dy, dc_layer_norm_opts o,
                          const char *file, int line) {
    dc_attr a;
    zero_attr(&a);
    a.eps.eps = o.eps;
    return emit(g, DC_OP_LAYER_NORM_BWD, 3, (dc_t[]){ x, gamma, dy }, &a, NULL, NULL, file, line);
}

dc_t dc_group_norm_bwd_at(dc_graph *g, dc_t x, dc_t gamma, dc_t dy, dc_group_norm_opts o,
                          const char *file, int line) {
    dc_attr a;
    zero_attr(&a);
    a.group_norm.groups = o.groups;
    a.group_norm.eps = o.eps;
    return emit(g, DC_OP_GROUP_NORM_BWD, 3, (dc_t[]){ x, gamma, dy }, &a, NULL, NULL, file, line);
}

/* ---- data movement ------------------------------------------------------------------ */

static dc_t declared_movement(dc_graph *g, dc_op op, dc_t x, int rank, const int64_t *dims,
                              const char *file, int line) {
    const dc_type *xt = dc_operand_at(g, x, dc_op_name(op), 1, file, line);
    dc_type t;
    if (!xt || !make_type(g, dc_op_name(op), xt->dtype, rank, dims, &t, file, line)) return DC_NONE;
    return emit(g, op, 1, &x, NULL, &t, NULL, file, line);
}

dc_t dc_reshape_at(dc_graph *g, dc_t x, int rank, const int64_t *dims, const char *file, int line) {
    return declared_movement(g, DC_OP_RESHAPE, x, rank, dims, file, line);
}

dc_t dc_broadcast_to_at(dc_graph *g, dc_t x, int rank, const int64_t *dims, const char *file,
                        int line) {
    return declared_movement(g, DC_OP_BROADCAST_TO, x, rank, dims, file, line);
}

dc_t dc_transpose_at(dc_graph *g, dc_t x, dc_ints perm, const char *file, int line) {
    if (!ints_ok(g, "transpose", "perm", &perm, file, line)) return DC_NONE;
    dc_attr a;
    zero_attr(&a);
    int rank = rank_of(g, x);
    a.perm.perm.n = perm.n;
    for (int i = 0; i < perm.n; i++) a.perm.perm.v[i] = norm_axis(perm.v[i], rank);
    return emit(g, DC_OP_TRANSPOSE, 1, &x, &a, NULL, NULL, file, line);
}

/* index in [-dim, -1] counts from the end */
static int64_t norm_index(int64_t i, int64_t dim) { return i < 0 && i >= -dim ? i + dim : i; }

/* The full slice attribute of o for a sliced tensor of shape s (missing entries: whole
 * axis; negative indices and DC_END resolved); records the error under what if o has more
 * entries than s has axes. */
static bool slice_attr(dc_graph *g, const char *what, const dc_shape *sh, const dc_slice_opts *o,
                       dc_attr *a, const char *file, int line) {
    int rank = sh->rank;
    if (o->start.n > rank || o->stop.n > rank || o->step.n > rank) {
        dc_fail_at(g, file, line, what, "more start/stop/step entries than the %d axes of the input", rank);
        return false;
    }
    zero_attr(a);
    dc_slice_attr *s = &a->slice;
    s->start.n = s->stop.n = s->step.n = rank;
    for (int i = 0; i < rank; i++) {
        int64_t dim = sh->dim[i];
        int64_t stop = i < o->stop.n ? o->stop.v[i] : DC_END;
        s->start.v[i] = i < o->start.n ? norm_index(o->start.v[i], dim) : 0;
        s->stop.v[i] = stop == DC_END ? dim : norm_index(stop, dim);
        s->step.v[i] = i < o->step.n ? o->step.v[i] : 1;
    }
    return true;
}

dc_t dc_slice_at(dc_graph *g, dc_t x, dc_slice_opts o, const char *file, int line) {
    const dc_type *t = dc_operand_at(g, x, "slice", 1, file, line);
    dc_attr a;
    if (!t || !slice_attr(g, "slice", &t->shape, &o, &a, file, line)) return DC_NONE;
    return emit(g, DC_OP_SLICE, 1, &x, &a, NULL, NULL, file, line);
}

dc_t dc_unslice_at(dc_graph *g, dc_t dy, int rank, const int64_t *dims, dc_slice_opts o,
                   const char *file, int line) {
    const dc_type *t = dc_operand_at(g, dy, "unslice", 1, file, line);
    dc_type decl;
    dc_attr a;
    if (!t || !make_type(g, "unslice", t->dtype, rank, dims, &decl, file, line) ||
        !slice_attr(g, "unslice", &decl.shape, &o, &a, file, line))
        return DC_NONE;
    return emit(g, DC_OP_UNSLICE, 1, &dy, &a, &decl, NULL, file, line);
}

dc_t dc_slice_axis_at(dc_graph *g, dc_t x, int64_t axis, int64_t start, int64_t stop,
                      const char *file, int line) {
    const dc_type *t = dc_operand_at(g, x, "slice", 1, file, line);
    if (!t) return DC_NONE;
    int rank = t->shape.rank;
    int64_t ax = norm_axis(axis, rank);
    if (ax < 0 || ax >= rank) {
        dc_fail_at(g, file, line, "slice", "axis %lld is out of range for rank %d", (long long)axis, rank);
        return DC_NONE;
    }
    dc_slice_opts o;
    memset(&o, 0, sizeof o);
    o.start.n = o.stop.n = (int)ax + 1;
    for (int i = 0; i < (int)ax; i++) o.stop.v[i] = DC_END;
    o.start.v[ax] = start;
    o.stop.v[ax] = stop;
    return dc_slice_at(g, x, o, file, line);
}

dc_t dc_concat_at(dc_graph *g, int64_t axis, int n, const dc_t *ts, const char *file, int line) {
    if (dc_graph_failed(g)) return DC_NONE;
    if (n < 1 || n > DC_MAX_INPUTS || !ts) {
        dc_fail_at(g, file, line, "concat", "%d operands, want 1..%d", ts ? n : 0, DC_MAX_INPUTS);
        return DC_NONE;
    }
    dc_attr a;
    zero_attr(&a);
    a.axis.axis = norm_axis(axis, rank_of(g, ts[0]));
    return emit(g, DC_OP_CONCAT, n, ts, &a, NULL, NULL, file, line);
}

dc_t dc_pad_at(dc_graph *g, dc_t x, dc_pad_opts o, const char *file, int line) {
    const dc_type *t = dc_operand_at(g, x, "pad", 1, file, line);
    if (!t) return DC_NONE;
    int rank = t->shape.rank;
    if (o.lo.n > rank || o.hi.n > rank) {
        dc_fail_at(g, file, line, "pad", "more lo/hi entries than the %d axes of the input", rank);
        return DC_NONE;
    }
    dc_attr a;
    zero_attr(&a);
    a.pad.lo.n = a.pad.hi.n = rank;
    for (int i = 0; i < rank; i++) {
        a.pad.lo.v[i] = i < o.lo.n ? o.lo.v[i] : 0;
        a.pad.hi.v[i] = i < o.hi.n ? o.hi.v[i] : 0;
    }
    a.pad.value = o.value;
    return emit(g, DC_OP_PAD, 1, &x, &a, NULL, NULL, file, line);
}

dc_t dc_gather_at(dc_graph *g, dc_t table, dc_t idx, const char *file, int line) {
    return emit(g, DC_OP_GATHER, 2, (dc_t[]){ table, idx }, NULL, NULL, NULL, file, line);
}

dc_t dc_scatter_add_at(dc_graph *g, dc_t idx, dc_t src, int64_t rows, const char *file, int line) {
    const dc_type *ti = dc_operand_at(g, idx, "scatter_add", 1, file, line);
    const dc_type *ts = ti ? dc_operand_at(g, src, "scatter_add", 2, file, line) : NULL;
    if (!ts) return DC_NONE;
    /* [rows, src dims after idx's]; when src has too few dims, [rows] for the rule to reject */
    int rest = ts->shape.rank - ti->shape.rank;
    if (rest < 0 || rest >= DC_MAX_RANK) rest = 0;
    int64_t dims[DC_MAX_RANK] = { rows };
    for (int i = 0; i < rest; i++) dims[1 + i] = ts->shape.dim[ti->shape.rank + i];
    dc_type t;
    if (!make_type(g, "scatter_add", DC_F32, 1 + rest, dims, &t, file, line)) return DC_NONE;
    return emit(g, DC_OP_SCATTER_ADD, 2, (dc_t[]){ idx, src }, NULL, &t, NULL, file, line);
}

dc_t dc_one_hot_at(dc_graph *g, dc_t idx, int64_t depth, const char *file, int line) {
    dc_attr a;
    zero_attr(&a);
    a.one_hot.depth = depth;
    return emit(g, DC_OP_ONE_HOT, 1, &idx, &a, NULL, NULL, file, line);
}

/* ---- random ------------------------------------------------------------------------- */

static dc_t random_op(dc_graph *g, dc_op op, int rank, const int64_t *dims, float a, float b,
                      const char *file, int line) {
    if (dc_graph_failed(g)) return DC_NONE;
    dc_attr at;
    zero_attr(&at);
    at.random.stream = g->next_stream;
    at.random.a = a;
    at.random.b = b;
    dc_t r = source(g, op, &at, DC_F32, rank, dims, file, line);
    if (r.id >= 0) g->next_stream++;
    return r;
}

dc_t dc_uniform_at(dc_graph *g, int rank, const int64_t *dims, dc_uniform_opts o,
                   const char *file, int line) {
    return random_op(g, DC_OP_UNIFORM, rank, dims, o.lo, o.hi, file, line);
}

dc_t dc_normal_at(dc_graph *g, int rank, const int64_t *dims, dc_normal_opts o, const char *file,
                  int line) {
    return random_op(g, DC_OP_NORMAL, rank, dims, o.mean, o.std, file, line);
}

dc_t dc_gumbel_at(dc_graph *g, int rank, const int64_t *dims, dc_gumbel_opts o, const char *file,
                  int line) {
    return random_op(g, DC_OP_GUMBEL, rank, dims, o.loc, o.scale, file, line);
}

/* ---- losses ------------------------------------------------------------------------- */

dc_t dc_cross_entropy_at(dc_graph *g, dc_t logits, dc_t labels, const char *file, int line) {
    return emit(g, DC_OP_CROSS_ENTROPY, 2, (dc_t[]){ logits, labels }, NULL, NULL, NULL, file, line);
}

dc_t dc_cross_entropy_rows_at(dc_graph *g, dc_t logits, dc_t labels, const char *file, int line) {
    return emit(g, DC_OP_CROSS_ENTROPY_ROWS, 2, (dc_t[]){ logits, labels }, NULL, NULL, NULL, file, line);
}

dc_t dc_mse_at(dc_graph *g, dc_t a, dc_t b, const char *file, int line) {
    return emit(g, DC_OP_MSE, 2, (dc_t[]){ a, b }, NULL, NULL, NULL, file, line);
}
