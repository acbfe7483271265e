/* graphgen.c — the random graph generator of graphgen.h. A graph is a chain of 1-3 stages
 * of one family: images (an NHWC input through conv2d or linear stages) or matrices (a rank
 * 2-4 input through matmul or linear stages). Every choice comes from one splitmix64 stream
 * seeded by the graph number, so a seed names a graph. Weights are N(0, 1/K) params with K
 * the reduction length, inputs U[-1, 1), so every stage's values stay O(1). */
#include "tests/graphgen.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "frontend/dsl.h"

typedef struct {
    uint64_t state;
    dc_graph *g;
    gg_graph *out;
    int n_inputs, n_params;
    size_t summary_len;
} gen;

static uint64_t next_u64(gen *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static int64_t pick(gen *r, int64_t lo, int64_t hi) {
    return lo + (int64_t)(next_u64(r) % (uint64_t)(hi - lo + 1));
}

static bool chance(gen *r, double p) { return (double)(next_u64(r) >> 11) / 9007199254740992.0 < p; }

static void note(gen *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(gen *r, const char *fmt, ...) {
    size_t cap = sizeof r->out->summary;
    if (r->summary_len >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    r->summary_len += (size_t)vsnprintf(r->out->summary + r->summary_len, cap - r->summary_len, fmt, ap);
    va_end(ap);
}

static const dc_shape *shape_of(gen *r, dc_t t) { return &dc_type_of(r->g, t)->shape; }

static int64_t last_dim(gen *r, dc_t t) {
    const dc_shape *s = shape_of(r, t);
    return s->dim[s->rank - 1];
}

static dc_t new_input(gen *r, const dc_shape *s) {
    char name[32];
    snprintf(name, sizeof name, "in%d", r->n_inputs++);
    return dc_input(r->g, name, DC_F32, s->rank, s->dim);
}

/* A param of shape s drawn from N(0, std^2). */
static dc_t new_param(gen *r, const dc_shape *s, double std) {
    char name[32];
    snprintf(name, sizeof name, "p%d", r->n_params++);
    return dc_param(r->g, name, s->rank, s->dim, .init = DC_INIT_NORMAL, .a = (float)std);
}

/* ---- stages: a contraction of the chain value h ------------------------------------------- */

/* A small spatial or matrix extent: mostly up to 9, sometimes past a vector width. */
static int64_t extent(gen *r) { return chance(r, 0.15) ? pick(r, 13, 24) : pick(r, 1, 9); }

/* A conv2d of h; a quarter of them keep h's shape (stride 1, "same" padding, O = C), so that
 * h can be their residual. */
static dc_t stage_conv(gen *r, dc_t h) {
    const dc_shape *s = shape_of(r, h);
    int64_t n = s->dim[0], ih = s->dim[1], iw = s->dim[2], c = s->dim[3];
    bool keep = chance(r, 0.25);
    int64_t pad = pick(r, 0, 2), small = ih < iw ? ih : iw, k;
    do k = 2 * pick(r, 0, 2) + 1;
    while (!keep && k > small + 2 * pad);
    if (keep) pad = k / 2;
    int64_t stride = keep ? 1 : pick(r, 1, 2), groups = 1, o;
    int64_t mode = pick(r, 0, 2); /* 0: dense, 1: two groups, 2: depthwise */
    if (mode == 1 && c % 2 == 0) {
        groups = 2;
        o = keep ? c : 2 * pick(r, 1, 4);
    } else if (mode == 2 && c > 1) {
        groups = c;
        o = keep ? c : c * pick(r, 1, 2);
    } else {
        o = keep ? c : pick(r, 1, 8);
    }
    int64_t cg = c / groups;
    dc_shape ws = { .rank = 4, .dim = { k, k, cg, o } };
    dc_t w = new_param(r, &ws, 1.0 / sqrt((double)(k * k * cg)));
    dc_t y = dc_conv2d(r->g, h, w, .stride = stride, .pad = pad, .groups = groups);
    if (y.id < 0) return y;
    const dc_shape *ys = shape_of(r, y);
    r->out->k_total += k * k * cg + k * k * (o / groups) + n * ys->dim[1] * ys->dim[2];
    note(r, "conv2d k%lld s%lld p%lld g%lld o%lld", (long long)k, (long long)stride, (long long)pad,
         (long long)groups, (long long)o);
    return y;
}

/* A linear of h; a quarter of them keep h's shape (O = I). */
static dc_t stage_linear(gen *r, dc_t h) {
    int64_t in = last_dim(r, h), o = chance(r, 0.25) ? in : pick(r, 1, 12), rows = dc_numel(shape_of(r, h)) / in;
    dc_t w = new_param(r, &(dc_shape){ .rank = 2, .dim = { in, o } }, 1.0 / sqrt((double)in));
    dc_t b = new_param(r, &(dc_shape){ .rank = 1, .dim = { o } }, 0.5);
    r->out->k_total += in + o + 2 * rows;
    note(r, "linear o%lld", (long long)o);
    return dc_linear_op(r->g, h, w, b);
}

static int64_t batch_numel(const dc_shape *s) { return dc_numel(s) / (s->dim[s->rank - 1] * s->dim[s->rank - 2]); }

/* The other operand's batch dims against h's batch dims hb (rank hr): the output batch keeps
 * h's dims, grows h's 1s, may gain a leading dim; the operand has a 1 wherever h covers the
 * output dim and a coin says so, and sometimes drops leading dims that are all 1. */
static int other_batch(gen *r, const dc_shape *hs, int64_t *ob) {
    int hr = hs->rank - 2, rank = hr + (hr < 2 && chance(r, 0.4));
    for (int j = 0; j < rank; j++) {
        int hj = j - (rank - hr); /* h's batch axis aligned with output axis j, or < 0 */
        int64_t hd = hj >= 0 ? hs->dim[hj] : 1, od = hd == 1 ? pick(r, 1, 3) : hd;
        ob[j] = (hd == od && chance(r, 0.4)) ? 1 : od;
    }
    int drop = 0;
    while (drop < rank && ob[drop] == 1 && chance(r, 0.5)) drop++;
    memmove(ob, ob + drop, (size_t)(rank - drop) * sizeof *ob);
    return rank - drop;
}

static dc_t stage_matmul(gen *r, dc_t h) {
    dc_shape hs = *shape_of(r, h), os = { 0 };
    int64_t p = hs.dim[hs.rank - 2], q = hs.dim[hs.rank - 1], fresh = extent(r);
    bool h_is_a = chance(r, 0.5), ta = chance(r, 0.5), tb = chance(r, 0.5);
    bool h_trans = h_is_a ? ta : tb;
    /* h is [.., p, q]: as a it is [M, K] (or [K, M]), as b [K, N] (or [N, K]) */
    int64_t kk = h_is_a ? (h_trans ? p : q) : (h_trans ? q : p), mn = h_is_a ? (h_trans ? q : p) : (h_trans ? p : q);
    int64_t ob[DC_MAX_RANK];
    int orank = other_batch(r, &hs, ob);
    os.rank = orank + 2;
    memcpy(os.dim, ob, (size_t)orank * sizeof *ob);
    bool other_trans = h_is_a ? tb : ta;
    /* the other operand: b = [K, N] / [N, K] when h is a; a = [M, K] / [K, M] when h is b */
    bool k_first = h_is_a ? !other_trans : other_trans;
    os.dim[orank] = k_first ? kk : fresh;
    os.dim[orank + 1] = k_first ? fresh : kk;
    dc_t other = chance(r, 0.5) ? new_param(r, &os, 1.0 / sqrt((double)kk)) : new_input(r, &os);
    dc_t a = h_is_a ? h : other, b = h_is_a ? other : h;
    dc_t y = dc_matmul(r->g, a, b, .trans_a = ta, .trans_b = tb);
    if (y.id < 0) return y;
    const dc_shape *ys = shape_of(r, y);
    int64_t m = h_is_a ? mn : fresh, n = h_is_a ? fresh : mn, yb = batch_numel(ys);
    r->out->k_total += kk + n * yb / batch_numel(shape_of(r, a)) + m * yb / batch_numel(shape_of(r, b));
    note(r, "matmul %s%s%s rank %d x %d", h_is_a ? "h@w" : "w@h", ta ? " ta" : "", tb ? " tb" : "",
         shape_of(r, a)->rank, shape_of(r, b)->rank);
    return y;
}

/* ---- epilogues ------------------------------------------------------------------------------ */

/* x + y with the operands in a random order (fusion must accept both). */
static dc_t add_either_way(gen *r, dc_t x, dc_t y) {
    return chance(r, 0.5) ? dc_add(r->g, x, y) : dc_add(r->g, y, x);
}

/* y -> [+ bias] -> [act] -> [+ residual]; h is the stage's input (a residual when shaped as y). */
static dc_t epilogue(gen *r, dc_t h, dc_t y, bool may_bias) {
    if (y.id < 0) return y;
    int64_t o = last_dim(r, y);
    if (may_bias && chance(r, 0.6)) {
        /* [O], sometimes [1,...,1,O] */
        dc_shape bs = { .rank = chance(r, 0.25) ? (int)pick(r, 2, shape_of(r, y)->rank) : 1 };
        for (int j = 0; j < bs.rank; j++) bs.dim[j] = j == bs.rank - 1 ? o : 1;
        y = add_either_way(r, y, new_param(r, &bs, 0.5));
        r->out->k_total += dc_numel(shape_of(r, y)) / o;
        note(r, " +bias");
    }
    switch (pick(r, 0, 3)) {
    case 1:
        if (r->out->n_kinks < GG_MAX_KINKS) r->out->kinks[r->out->n_kinks++] = y.id;
        y = dc_relu(r->g, y);
        note(r, " relu");
        break;
    case 2: y = dc_gelu(r->g, y); note(r, " gelu"); break;
    case 3: y = dc_silu(r->g, y); note(r, " silu"); break;
    default: break;
    }
    if (chance(r, 0.4)) {
        dc_shape ys = *shape_of(r, y);
        bool same = dc_shape_eq(shape_of(r, h), &ys) && chance(r, 0.7);
        y = add_either_way(r, y, same ? h : new_input(r, &ys));
        note(r, same ? " +res(h)" : " +res(in)");
    }
    return y;
}

/* ---- the graph ------------------------------------------------------------------------------ */

static dc_t image_input(gen *r) {
    dc_shape s = { .rank = 4, .dim = { pick(r, 1, 2), pick(r, 3, 9), pick(r, 3, 9), 0 } };
    static const int64_t channels[] = { 1, 2, 3, 4, 6, 8 };
    s.dim[3] = channels[pick(r, 0, 5)];
    return new_input(r, &s);
}

static dc_t matrix_input(gen *r) {
    dc_shape s = { .rank = (int)pick(r, 2, 4) };
    for (int j = 0; j < s.rank - 2; j++) s.dim[j] = pick(r, 1, 3);
    s.dim[s.rank - 2] = extent(r);
    s.dim[s.rank - 1] = extent(r);
    return new_input(r, &s);
}

static dc_t chain(gen *r) {
    bool images = chance(r, 0.5);
    dc_t h = images ? image_input(r) : matrix_input(r);
    int stages = (int)pick(r, 1, 3);
    for (int i = 0; i < stages && h.id >= 0; i++) {
        if (i) note(r, " | ");
        bool linear = chance(r, 0.3) && (images || i > 0);
        dc_t y = linear ? stage_linear(r, h) : images ? stage_conv(r, h) : stage_matmul(r, h);
        r->out->n_contractions++;
        h = epilogue(r, h, y, !linear);
    }
    return h;
}

bool gg_build(uint64_t seed, gg_graph *out, char *err, size_t len) {
    memset(out, 0, sizeof *out);
    char name[48];
    snprintf(name, sizeof name, "diff_%llu", (unsigned long long)seed);
    gen r = { .state = seed * 0x2545f4914f6cdd1dull + 1, .g = dc_graph_new(name), .out = out };
    out->g = r.g;
    dc_t y = chain(&r);
    dc_t loss;
    if (chance(&r, 0.5)) {
        loss = dc_sum(r.g, dc_mul(r.g, y, new_input(&r, shape_of(&r, y))));
        note(&r, " | sum(y*R)");
    } else {
        loss = dc_mse(r.g, y, new_input(&r, shape_of(&r, y)));
        note(&r, " | mse");
    }
    dc_output(r.g, y, "y");
    dc_output(r.g, loss, "loss");
    if (dc_graph_failed(r.g)) {
        snprintf(err, len, "graph %llu: %s", (unsigned long long)seed, dc_graph_error(r.g));
        return false;
    }
    out->y = y.id;
    out->loss = loss.id;
    return true;
}

bool gg_set_inputs(dc_exec *e, const dc_graph *g, uint64_t seed, char *err, size_t len) {
    for (int i = 0; i < dc_graph_n_inputs(g); i++) {
        const dc_node *n = &g->nodes[dc_graph_input(g, i)];
        dc_tensor *t = dc_tensor_new(&n->type);
        float *p = t->data;
        uint64_t stream = XXH64(n->name, strlen(n->name), 0);
        for (int64_t j = 0; j < dc_numel(&n->type.shape); j++)
            p[j] = 2.0f * dc_rng_uniform01(seed, stream, (uint64_t)j) - 1.0f;
        bool ok = dc_exec_set_input(e, n->name, t, err, len);
        dc_tensor_free(t);
        if (!ok) return false;
    }
    return true;
}

/* ---- loop graphs: elementwise ops and row reductions ------------------------------------ */

/* The chain value: exact when every op so far rounds exactly (then ref and jit agree bit for
 * bit, and rounding-sensitive decisions may read it). */
typedef struct {
    dc_t t;
    bool exact;
} lval;

static int64_t loop_extent(gen *r) {
    static const int64_t dims[] = { 1, 3, 4, 8, 17 };
    return dims[pick(r, 0, 4)];
}

/* a same-shaped or broadcastable operand for x: an input or a param with some dims dropped
 * (leading) or set to 1 */
static dc_t loop_operand(gen *r, dc_t x) {
    dc_shape s = *shape_of(r, x);
    int drop = (int)pick(r, 0, s.rank);
    memmove(s.dim, s.dim + drop, (size_t)(s.rank - drop) * sizeof *s.dim);
    s.rank -= drop;
    for (int d = 0; d < s.rank; d++)
        if (chance(r, 0.3)) s.dim[d] = 1;
    return chance(r, 0.5) ? new_input(r, &s) : new_param(r, &s, 0.5);
}

static lval loop_unary(gen *r, lval h) {
    dc_graph *g = r->g;
    static const char *const names[] = { "tanh", "sigmoid", "silu", "gelu", "exp(tanh)", "log(1+x^2)", "sin" };
    int k = (int)pick(r, 0, 6);
    dc_t t = h.t;
    switch (k) {
    case 0: t = dc_tanh(g, t); break;
    case 1: t = dc_sigmoid(g, t); break;
    case 2: t = dc_silu(g, t); break;
    case 3: t = dc_gelu(g, t); break;
    case 4: t = dc_exp(g, dc_tanh(g, t)); break;
    case 5: t = dc_log(g, dc_add_scalar(g, dc_square(g, t), 1.0f)); break;
    default: t = dc_sin(g, t); break;
    }
    r->out->k_total += GG_APPROX * (k == 4 ? 2 : 1);
    note(r, " %s", names[k]);
    return (lval){ t, false };
}

/* an exactly rounded binary op with a broadcast operand; the rounding-sensitive ones only on
 * exact values */
static lval loop_binary(gen *r, lval h) {
    dc_graph *g = r->g;
    dc_t o = loop_operand(r, h.t);
    bool swap = chance(r, 0.5);
    dc_t a = swap ? o : h.t, b = swap ? h.t : o;
    int k = (int)pick(r, 0, h.exact ? 6 : 3);
    static const char *const names[] = { "add", "sub", "mul", "div", "maximum", "minimum", "relu" };
    dc_t t;
    switch (k) {
    case 0: t = dc_add(g, a, b); break;
    case 1: t = dc_sub(g, a, b); break;
    case 2: t = dc_mul(g, a, b); break;
    case 3: t = dc_div(g, h.t, dc_add_scalar(g, dc_abs(g, o), 1.5f)); break;
    case 4: t = dc_maximum(g, a, b); break;
    case 5: t = dc_minimum(g, a, b); break;
    default: t = dc_relu(g, dc_add(g, a, b)); break;
    }
    note(r, " %s", names[k]);
    return (lval){ t, h.exact };
}

/* The dims past `from` of x folded: a param-free row reduction. */
static dc_reduce_opts trailing(gen *r, int rank, bool keep) {
    dc_reduce_opts o = { .keepdims = keep };
    int from = (int)pick(r, rank > 1 ? 1 : 0, rank - 1);
    for (int d = from; d < rank; d++) o.axes.v[o.axes.n++] = d;
    return o;
}

static int64_t folded(const dc_shape *s, const dc_reduce_opts *o) {
    int64_t n = 1;
    for (int i = 0; i < o->axes.n; i++) n *= s->dim[o->axes.v[i]];
    return n;
}

/* a row op: the result keeps x's shape */
static lval loop_row(gen *r, lval h) {
    dc_graph *g = r->g;
    dc_shape s = *shape_of(r, h.t);
    int64_t c = s.dim[s.rank - 1];
    int k = (int)pick(r, 0, 6);
    dc_t t;
    if (k == 2 && c < 4) k = 0;
    switch (k) {
    case 0: t = dc_softmax(g, h.t, s.rank - 1); note(r, " softmax"); break;
    case 1: t = dc_log_softmax(g, h.t, s.rank - 1); note(r, " log_softmax"); break;
    case 2: {
        /* jittered rows of >= 4 values: a variance far from 0, so f32 and double agree */
        h.t = dc_add(g, h.t, new_input(r, &s));
        dc_t gamma = new_param(r, &(dc_shape){ .rank = 1, .dim = { c } }, 1.0);
        dc_t beta = new_param(r, &(dc_shape){ .rank = 1, .dim = { c } }, 0.5);
        if (s.rank >= 3 && chance(r, 0.6)) {
            int64_t groups = c % 4 == 0 ? 4 : c % 2 == 0 ? 2 : 1;
            t = dc_group_norm(g, h.t, gamma, beta, .groups = groups);
            note(r, " group_norm G%lld", (long long)groups);
        } else {
            t = dc_layer_norm(g, h.t, gamma, beta);
            note(r, " layer_norm");
        }
        break;
    }
    default: {
        dc_reduce_opts o = trailing(r, s.rank, true);
        int64_t n = folded(&s, &o);
        if (k == 3) t = dc_sub(g, h.t, dc_mean_at(g, h.t, o, __FILE__, __LINE__));
        else if (k == 4) t = dc_sub(g, h.t, dc_logsumexp_at(g, h.t, o, __FILE__, __LINE__));
        else if (k == 5 && h.exact) t = dc_sub(g, h.t, dc_max_at(g, h.t, o, __FILE__, __LINE__));
        else t = dc_mul_scalar(g, dc_sum_at(g, h.t, o, __FILE__, __LINE__), 1.0f / (float)n), t = dc_add(g, h.t, t);
        note(r, " x-%s(%d axes)", k == 3 ? "mean" : k == 4 ? "logsumexp" : k == 5 && h.exact ? "max" : "sum/n", o.axes.n);
        r->out->k_total += n;
        return (lval){ t, h.exact && k == 5 };
    }
    }
    r->out->k_total += 2 * c + GG_APPROX;
    return (lval){ t, false };
}

/* a reduction that drops the trailing dims (rank >= 2 only) */
static lval loop_reduce(gen *r, lval h) {
    dc_graph *g = r->g;
    dc_shape s = *shape_of(r, h.t);
    dc_reduce_opts o = trailing(r, s.rank, false);
    int k = (int)pick(r, 0, 3);
    static const char *const names[] = { "sum", "mean", "max", "logsumexp" };
    dc_t t = k == 0 ? dc_sum_at(g, h.t, o, __FILE__, __LINE__) : k == 1 ? dc_mean_at(g, h.t, o, __FILE__, __LINE__)
             : k == 2 ? dc_max_at(g, h.t, o, __FILE__, __LINE__) : dc_logsumexp_at(g, h.t, o, __FILE__, __LINE__);
    r->out->k_total += folded(&s, &o) + (k == 3 ? GG_APPROX : 0);
    note(r, " %s(%d axes)", names[k], o.axes.n);
    return (lval){ t, h.exact && k == 2 };
}

/* a transposed or reshaped view */
static lval loop_view(gen *r, lval h) {
    dc_shape s = *shape_of(r, h.t);
    if (s.rank >= 2 && chance(r, 0.5)) {
        dc_ints perm = { .n = s.rank };
        for (int d = 0; d < s.rank; d++) perm.v[d] = d;
        for (int d = s.rank - 1; d > 0; d--) {
            int j = (int)pick(r, 0, d);
            int64_t t = perm.v[d];
            perm.v[d] = perm.v[j], perm.v[j] = t;
        }
        note(r, " transpose");
        return (lval){ dc_transpose(r->g, h.t, perm), h.exact };
    }
    /* merge two neighbouring dims, or split the last one off a factor */
    dc_shape n = s;
    if (s.rank >= 2 && chance(r, 0.5)) {
        int d = (int)pick(r, 0, s.rank - 2);
        n.dim[d] *= n.dim[d + 1];
        memmove(n.dim + d + 1, n.dim + d + 2, (size_t)(s.rank - d - 2) * sizeof *n.dim);
        n.rank--;
    } else if (s.rank < 4 && s.dim[s.rank - 1] % 2 == 0) {
        n.dim[s.rank - 1] = s.dim[s.rank - 1] / 2;
        n.dim[s.rank] = 2;
        n.rank++;
    } else {
        n.rank++;
        memmove(n.dim + 1, n.dim, (size_t)s.rank * sizeof *n.dim);
        n.dim[0] = 1;
    }
    note(r, " reshape");
    return (lval){ dc_reshape(r->g, h.t, n.rank, n.dim), h.exact };
}

/* i32: a compare of the exact value with an operand, then where, or the compare cast back,
 * or the value truncated to i32 and back */
static lval loop_i32(gen *r, lval h) {
    dc_graph *g = r->g;
    dc_t o = loop_operand(r, h.t);
    int k = (int)pick(r, 0, 2);
    dc_t t;
    if (k == 0) {
        t = dc_where(g, dc_gt(g, h.t, o), h.t, dc_mul_scalar(g, h.t, 0.5f));
        note(r, " where(gt)");
    } else if (k == 1) {
        t = dc_add(g, h.t, dc_cast(g, dc_le(g, o, h.t), DC_F32));
        note(r, " +cast(le)");
    } else {
        dc_t q = dc_cast(g, dc_mul_scalar(g, h.t, 4.0f), DC_I32);
        t = dc_add(g, dc_mul_scalar(g, dc_cast(g, q, DC_F32), 0.25f), h.t);
        note(r, " +cast(i32)");
    }
    return (lval){ t, true };
}

bool gg_build_loops(uint64_t seed, gg_graph *out, char *err, size_t len) {
    memset(out, 0, sizeof *out);
    char name[48];
    snprintf(name, sizeof name, "loops_%llu", (unsigned long long)seed);
    gen r = { .state = seed * 0x9e3779b97f4a7c15ull + 7, .g = dc_graph_new(name), .out = out };
    out->g = r.g;
    dc_shape s = { .rank = (int)pick(&r, 1, 4) };
    for (int d = 0; d < s.rank; d++) s.dim[d] = loop_extent(&r);
    lval h = { new_input(&r, &s), true };
    note(&r, "x%d", s.rank);
    int stages = (int)pick(&r, 2, 4);
    for (int i = 0; i < stages && !dc_graph_failed(r.g); i++) {
        int rank = shape_of(&r, h.t)->rank;
        switch (pick(&r, 0, 7)) {
        case 0: h = loop_unary(&r, h); break;
        case 1: case 2: h = loop_binary(&r, h); break;
        case 3: case 4: h = loop_row(&r, h); break;
        case 5: h = rank >= 2 ? loop_reduce(&r, h) : loop_unary(&r, h); break;
        case 6: h = loop_view(&r, h); break;
        default: h = h.exact ? loop_i32(&r, h) : loop_binary(&r, h); break;
        }
    }
    dc_t y = h.t;
    dc_t loss = dc_sum(r.g, dc_mul(r.g, y, new_input(&r, shape_of(&r, y))));
    note(&r, " | sum(y*R)");
    dc_output(r.g, y, "y");
    dc_output(r.g, loss, "loss");
    if (dc_graph_failed(r.g)) {
        snprintf(err, len, "graph %llu: %s", (unsigned long long)seed, dc_graph_error(r.g));
        return false;
    }
    out->y = y.id;
    out->loss = loss.id;
    return true;
}

dc_exec *gg_run(const dc_graph *g, uint64_t seed, dc_backend backend, char *err, size_t len) {
    dc_exec *e = dc_compile(g, seed, backend, err, len);
    if (!e) return NULL;
    if (gg_set_inputs(e, g, seed, err, len) && dc_exec_run(e, err, len)) return e;
    dc_exec_free(e);
    return NULL;
}

double gg_rms(const dc_tensor *t) {
    const float *p = t->data;
    int64_t n = dc_numel(&t->type.shape);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)p[i] * p[i];
    return sqrt(s / (double)n);
}

double gg_tol_at(double rel, double scale, float want) { return rel * (fabs((double)want) + scale); }
