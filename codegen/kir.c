/* kir.c — the kernel IR (codegen/kir.h): builder with validation, canonical printer and hash,
 * the plain C interpreter (the codegen oracle) and the axis-collapsing normal form. */
#include "codegen/kir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ir/scalar.h"

/* ---- building ------------------------------------------------------------------------ */

static void *grow(void *p, int *cap, int need, size_t elem) {
    if (need <= *cap) return p;
    int c = *cap ? *cap * 2 : 16;
    while (c < need) c *= 2;
    void *q = realloc(p, (size_t)c * elem);
    if (!q) abort(); /* out of memory */
    *cap = c;
    return q;
}

/* Records the first error; returns -1 for the caller to pass on. */
static int fail(dc_kir *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(dc_kir *k, const char *fmt, ...) {
    if (k->err[0]) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->err, sizeof k->err, fmt, ap);
    va_end(ap);
    return -1;
}

static bool set_space(dc_kir *k, const char *what, int rank, const int64_t *dims, int *r,
                      int64_t *out) {
    if (rank < 0 || rank > DC_MAX_RANK || (rank > 0 && !dims)) {
        fail(k, "%s rank %d not in 0..%d", what, rank, DC_MAX_RANK);
        return false;
    }
    int64_t n = 1;
    for (int d = 0; d < rank; d++) {
        if (dims[d] < 1 || __builtin_mul_overflow(n, dims[d], &n)) {
            fail(k, "%s dim %d is %lld (dims must be >= 1, their product an int64)", what, d,
                 (long long)dims[d]);
            return false;
        }
        out[d] = dims[d];
    }
    *r = rank;
    return true;
}

dc_kir *dc_kir_new(int outer_rank, const int64_t *outer, int inner_rank, const int64_t *inner) {
    dc_kir *k = calloc(1, sizeof *k);
    if (!k) abort(); /* out of memory */
    if (set_space(k, "outer", outer_rank, outer, &k->outer_rank, k->outer))
        set_space(k, "inner", inner_rank, inner, &k->inner_rank, k->inner);
    return k;
}

void dc_kir_free(dc_kir *k) {
    if (!k) return;
    free(k->exprs);
    free(k->phases);
    free(k->reduces);
    free(k->stores);
    free(k);
}

const char *dc_kir_error(const dc_kir *k) { return k->err[0] ? k->err : NULL; }

int64_t dc_kir_range(const dc_kir *k) {
    int64_t n = 1;
    for (int d = 0; d < k->outer_rank; d++) n *= k->outer[d];
    return n;
}

int dc_kir_buffer_add(dc_kir *k, dc_dtype dtype, int64_t numel, bool written) {
    if (k->err[0]) return -1;
    if (k->n_bufs == DC_KIR_MAX_BUFS) return fail(k, "more than %d buffers", DC_KIR_MAX_BUFS);
    if ((int)dtype < 0 || dtype >= DC_NDTYPES) return fail(k, "buffer of unknown dtype %d", dtype);
    if (numel < 1) return fail(k, "buffer of %lld elements", (long long)numel);
    k->bufs[k->n_bufs] = (dc_kir_buffer){ dtype, numel, written };
    return k->n_bufs++;
}

dc_kir_map dc_kir_map_make(const dc_kir *k, int64_t offset, const int64_t *outer, const int64_t *inner) {
    dc_kir_map m = { .offset = offset };
    for (int d = 0; d < k->outer_rank && outer; d++) m.outer[d] = outer[d];
    for (int d = 0; d < k->inner_rank && inner; d++) m.inner[d] = inner[d];
    return m;
}

/* The map with the entries past each space's rank cleared; false if some access over the
 * whole index space falls outside [0, numel) (numel < 0: no bound, only overflow checks). */
static bool check_map(dc_kir *k, dc_kir_map *m, int64_t numel) {
    int64_t lo = m->offset, hi = m->offset;
    for (int s = 0; s < 2; s++) {
        int rank = s ? k->inner_rank : k->outer_rank;
        const int64_t *dims = s ? k->inner : k->outer;
        int64_t *st = s ? m->inner : m->outer;
        for (int d = rank; d < DC_MAX_RANK; d++) st[d] = 0;
        for (int d = 0; d < rank; d++) {
            int64_t span;
            if (__builtin_mul_overflow(st[d], dims[d] - 1, &span)) return false;
            if (__builtin_add_overflow(span < 0 ? lo : hi, span, span < 0 ? &lo : &hi))
                return false;
        }
    }
    return numel < 0 || (lo >= 0 && hi < numel);
}

static int push_expr(dc_kir *k, dc_kir_expr e) {
    k->exprs = grow(k->exprs, &k->cap_exprs, k->n_exprs + 1, sizeof *k->exprs);
    k->exprs[k->n_exprs] = e;
    return k->n_exprs++;
}

static dc_kir_expr blank(dc_kir_kind kind, dc_dtype dtype) {
    return (dc_kir_expr){ .kind = kind, .dtype = dtype, .arg = { -1, -1, -1 }, .buf = -1,
                          .result = -1, .after = -1 };
}

bool dc_kir_map_inner_free(const dc_kir_map *m) {
    for (int d = 0; d < DC_MAX_RANK; d++)
        if (m->inner[d]) return false;
    return true;
}

static bool valid_expr(dc_kir *k, int a) {
    if (a >= 0 && a < k->n_exprs) return true;
    fail(k, "operand %d is not an expression", a);
    return false;
}

int dc_kir_load(dc_kir *k, int buf, dc_kir_map map) {
    if (k->err[0]) return -1;
    if (buf < 0 || buf >= k->n_bufs) return fail(k, "load from undeclared buffer %d", buf);
    if (!check_map(k, &map, k->bufs[buf].numel))
        return fail(k, "load from buffer %d reaches outside its %lld elements", buf,
                    (long long)k->bufs[buf].numel);
    dc_kir_expr e = blank(DC_KIR_LOAD, k->bufs[buf].dtype);
    e.buf = buf;
    e.map = map;
    return push_expr(k, e);
}

int dc_kir_load_checked(dc_kir *k, int buf, dc_kir_map map, int index, int64_t stride, int guard) {
    if (index < 0 && guard < 0) return dc_kir_load(k, buf, map);
    if (k->err[0]) return -1;
    if (buf < 0 || buf >= k->n_bufs) return fail(k, "load from undeclared buffer %d", buf);
    int ops[2] = { index, guard };
    for (int j = 0; j < 2; j++)
        if (ops[j] >= 0 && (!valid_expr(k, ops[j]) || k->exprs[ops[j]].dtype != DC_I32))
            return fail(k, "a checked load's %s is not an i32 expression", j ? "guard" : "index");
    if (!check_map(k, &map, -1)) return fail(k, "a checked load's map overflows");
    dc_kir_expr e = blank(DC_KIR_LOAD, k->bufs[buf].dtype);
    e.buf = buf;
    e.map = map;
    e.stride = index >= 0 ? stride : 0;
    for (int j = 0; j < 2; j++) {
        e.arg[j] = ops[j];
        if (ops[j] >= 0 && k->exprs[ops[j]].after > e.after) e.after = k->exprs[ops[j]].after;
    }
    return push_expr(k, e);
}

int dc_kir_const_f32(dc_kir *k, float v) {
    if (k->err[0]) return -1;
    dc_kir_expr e = blank(DC_KIR_CONST, DC_F32);
    e.f = v;
    return push_expr(k, e);
}

int dc_kir_const_i32(dc_kir *k, int32_t v) {
    if (k->err[0]) return -1;
    dc_kir_expr e = blank(DC_KIR_CONST, DC_I32);
    e.i = v;
    return push_expr(k, e);
}

int dc_kir_index(dc_kir *k, dc_kir_map map) {
    if (k->err[0]) return -1;
    if (!check_map(k, &map, -1)) return fail(k, "index map overflows");
    dc_kir_expr e = blank(DC_KIR_INDEX, DC_I32);
    e.map = map;
    return push_expr(k, e);
}

static int push_op(dc_kir *k, dc_op op, dc_dtype dtype, int a, int b, int c) {
    dc_kir_expr e = blank(DC_KIR_OP, dtype);
    e.op = op;
    int args[3] = { a, b, c };
    for (int j = 0; j < 3; j++) {
        e.arg[j] = args[j];
        if (args[j] >= 0 && k->exprs[args[j]].after > e.after) e.after = k->exprs[args[j]].after;
    }
    return push_expr(k, e);
}

int dc_kir_op(dc_kir *k, dc_op op, const int *args, float exponent) {
    if (k->err[0]) return -1;
    if ((unsigned)op >= DC_OP_COUNT || dc_op_get(op)->lower != DC_LOWER_MAP || op == DC_OP_WHERE)
        return fail(k, "op %s has no formula", (unsigned)op < DC_OP_COUNT ? dc_op_name(op) : "?");
    const dc_op_info *info = dc_op_get(op);
    for (int j = 0; j < info->arity; j++)
        if (!valid_expr(k, args[j])) return -1;
    dc_dtype t = k->exprs[args[0]].dtype;
    for (int j = 1; j < info->arity; j++)
        if (k->exprs[args[j]].dtype != t)
            return fail(k, "%s on %s and %s", dc_op_name(op), dc_dtype_name(t), dc_dtype_name(k->exprs[args[j]].dtype));
    if (info->map == DC_MAP_F32 && t != DC_F32) return fail(k, "%s of an i32 value", dc_op_name(op));
    int r = push_op(k, op, info->map == DC_MAP_CMP ? DC_I32 : t, args[0], info->arity > 1 ? args[1] : -1, -1);
    k->exprs[r].f = exponent;
    return r;
}

int dc_kir_unary(dc_kir *k, dc_op op, int a) { return dc_kir_op(k, op, &a, 0.0f); }

int dc_kir_binary(dc_kir *k, dc_op op, int a, int b) { return dc_kir_op(k, op, (int[]){ a, b }, 0.0f); }

int dc_kir_cast(dc_kir *k, int a, dc_dtype to) {
    if (k->err[0] || !valid_expr(k, a)) return -1;
    if ((int)to < 0 || to >= DC_NDTYPES) return fail(k, "cast to unknown dtype %d", to);
    int r = push_op(k, DC_OP_CAST, to, a, -1, -1);
    k->exprs[r].to = to;
    return r;
}

int dc_kir_where(dc_kir *k, int cond, int a, int b) {
    if (k->err[0] || !valid_expr(k, cond) || !valid_expr(k, a) || !valid_expr(k, b)) return -1;
    if (k->exprs[cond].dtype != DC_I32) return fail(k, "where with an f32 condition");
    if (k->exprs[a].dtype != k->exprs[b].dtype) return fail(k, "where of mixed dtypes");
    return push_op(k, DC_OP_WHERE, k->exprs[a].dtype, cond, a, b);
}

int dc_kir_phase_begin(dc_kir *k, bool per_row) {
    if (k->err[0]) return -1;
    k->phases = grow(k->phases, &k->cap_phases, k->n_phases + 1, sizeof *k->phases);
    k->phases[k->n_phases] = (dc_kir_phase){ per_row };
    return k->n_phases++;
}

/* expr is usable by the current phase: it reads only results of earlier phases. */
static bool usable(dc_kir *k, int expr) {
    if (k->n_phases == 0) {
        fail(k, "a store or reduction before the first phase");
        return false;
    }
    if (!valid_expr(k, expr)) return false;
    if (k->exprs[expr].after >= k->n_phases - 1) {
        fail(k, "phase %d uses a result of phase %d", k->n_phases - 1, k->exprs[expr].after);
        return false;
    }
    return true;
}

/* The current phase may hold a reduction or a reducing store. */
static bool reducible(dc_kir *k, dc_kir_combine combine, const char *what) {
    if (combine != DC_KIR_SUM && combine != DC_KIR_MAX) return fail(k, "unknown combine %d", combine) == 0;
    if (k->inner_rank == 0) return fail(k, "a %s over an empty inner space", what) == 0;
    if (k->phases[k->n_phases - 1].per_row) return fail(k, "a %s in a per-row phase", what) == 0;
    return true;
}

int dc_kir_reduce_add(dc_kir *k, dc_kir_combine combine, int expr) {
    if (k->err[0] || !usable(k, expr) || !reducible(k, combine, "reduction")) return -1;
    int phase = k->n_phases - 1;
    k->reduces = grow(k->reduces, &k->cap_reduces, k->n_reduces + 1, sizeof *k->reduces);
    k->reduces[k->n_reduces] = (dc_kir_reduce){ phase, combine, expr };
    dc_kir_expr e = blank(DC_KIR_RESULT, k->exprs[expr].dtype);
    e.result = k->n_reduces++;
    e.after = phase;
    return push_expr(k, e);
}

static int add_store(dc_kir *k, int buf, dc_kir_map map, int expr, bool reduce, dc_kir_combine combine) {
    if (k->err[0] || !usable(k, expr)) return -1;
    if (buf < 0 || buf >= k->n_bufs || !k->bufs[buf].written)
        return fail(k, "store to buffer %d, which is not a written buffer", buf);
    if (k->bufs[buf].dtype != k->exprs[expr].dtype)
        return fail(k, "store of %s into an %s buffer", dc_dtype_name(k->exprs[expr].dtype),
                    dc_dtype_name(k->bufs[buf].dtype));
    if (!check_map(k, &map, k->bufs[buf].numel))
        return fail(k, "store to buffer %d reaches outside its %lld elements", buf,
                    (long long)k->bufs[buf].numel);
    k->stores = grow(k->stores, &k->cap_stores, k->n_stores + 1, sizeof *k->stores);
    k->stores[k->n_stores] = (dc_kir_store){ k->n_phases - 1, buf, map, expr, reduce, combine };
    return k->n_stores++;
}

int dc_kir_store_add(dc_kir *k, int buf, dc_kir_map map, int expr) {
    return add_store(k, buf, map, expr, false, DC_KIR_SUM);
}

int dc_kir_store_reduce_add(dc_kir *k, int buf, dc_kir_map map, int expr, dc_kir_combine combine) {
    if (k->err[0] || !usable(k, expr) || !reducible(k, combine, "reducing store")) return -1;
    int last = k->inner_rank - 1;
    while (last > 0 && k->inner[last] == 1) last--;
    if (k->inner[last] > 1 && map.inner[last] == 0)
        return fail(k, "a reducing store that folds inner axis %d, the last of extent > 1", last);
    return add_store(k, buf, map, expr, true, combine);
}

/* ---- printing and hashing -------------------------------------------------------------- */

static void print_dims(dc_strbuf *s, int rank, const int64_t *v) {
    dc_sb_printf(s, "[");
    for (int d = 0; d < rank; d++) dc_sb_printf(s, "%s%lld", d ? "," : "", (long long)v[d]);
    dc_sb_printf(s, "]");
}

static void print_map(dc_strbuf *s, const dc_kir *k, const dc_kir_map *m) {
    dc_sb_printf(s, "{%lld o", (long long)m->offset);
    print_dims(s, k->outer_rank, m->outer);
    dc_sb_printf(s, " i");
    print_dims(s, k->inner_rank, m->inner);
    dc_sb_printf(s, "}");
}

static void print_f32(dc_strbuf *s, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    dc_sb_printf(s, "0x%08x(%.9g)", bits, (double)v);
}

static void print_expr(dc_strbuf *s, const dc_kir *k, int i) {
    const dc_kir_expr *e = &k->exprs[i];
    dc_sb_printf(s, "  %%%d = ", i);
    switch (e->kind) {
    case DC_KIR_LOAD:
        dc_sb_printf(s, "load b%d ", e->buf);
        print_map(s, k, &e->map);
        if (e->arg[0] >= 0) dc_sb_printf(s, " + %%%d * %lld", e->arg[0], (long long)e->stride);
        if (e->arg[1] >= 0) dc_sb_printf(s, " if %%%d", e->arg[1]);
        break;
    case DC_KIR_CONST:
        if (e->dtype == DC_F32) {
            dc_sb_printf(s, "const ");
            print_f32(s, e->f);
        } else {
            dc_sb_printf(s, "const %d", e->i);
        }
        break;
    case DC_KIR_INDEX:
        dc_sb_printf(s, "index ");
        print_map(s, k, &e->map);
        break;
    case DC_KIR_RESULT: dc_sb_printf(s, "result r%d", e->result); break;
    case DC_KIR_OP:
        dc_sb_printf(s, "%s", dc_op_name(e->op));
        for (int j = 0; j < 3 && e->arg[j] >= 0; j++) dc_sb_printf(s, "%s%%%d", j ? ", " : " ", e->arg[j]);
        if (e->f != 0.0f) { /* pow's exponent */
            dc_sb_printf(s, " ^");
            print_f32(s, e->f);
        }
        break;
    }
    dc_sb_printf(s, " : %s\n", dc_dtype_name(e->dtype));
}

char *dc_kir_print(const dc_kir *k) {
    if (k->err[0]) return NULL;
    dc_strbuf s = { 0 };
    dc_sb_printf(&s, "kir outer");
    print_dims(&s, k->outer_rank, k->outer);
    dc_sb_printf(&s, " inner");
    print_dims(&s, k->inner_rank, k->inner);
    dc_sb_printf(&s, "\n");
    for (int b = 0; b < k->n_bufs; b++)
        dc_sb_printf(&s, "  b%d : %s[%lld] %s\n", b, dc_dtype_name(k->bufs[b].dtype),
                     (long long)k->bufs[b].numel, k->bufs[b].written ? "inout" : "in");
    for (int i = 0; i < k->n_exprs; i++) print_expr(&s, k, i);
    for (int p = 0; p < k->n_phases; p++) {
        dc_sb_printf(&s, "phase %d%s\n", p, k->phases[p].per_row ? " per-row" : "");
        for (int r = 0; r < k->n_reduces; r++)
            if (k->reduces[r].phase == p)
                dc_sb_printf(&s, "  r%d = %s %%%d\n", r,
                             k->reduces[r].combine == DC_KIR_SUM ? "sum" : "max", k->reduces[r].expr);
        for (int t = 0; t < k->n_stores; t++)
            if (k->stores[t].phase == p) {
                dc_sb_printf(&s, "  store b%d ", k->stores[t].buf);
                print_map(&s, k, &k->stores[t].map);
                const dc_kir_store *st = &k->stores[t];
                const char *how = !st->reduce ? "" : st->combine == DC_KIR_SUM ? "sum " : "max ";
                dc_sb_printf(&s, " = %s%%%d\n", how, st->expr);
            }
    }
    return s.buf;
}

dc_hash128 dc_kir_hash(const dc_kir *k) {
    char *text = dc_kir_print(k);
    if (!text) return (dc_hash128){ 0, 0 };
    XXH128_hash_t h = XXH3_128bits(text, strlen(text));
    free(text);
    return (dc_hash128){ h.low64, h.high64 };
}

/* ---- the interpreter ------------------------------------------------------------------- */

typedef dc_scalar value;

static int64_t map_at(const dc_kir_map *m, const int64_t *oi, const int64_t *ii) {
    int64_t a = m->offset;
    for (int d = 0; d < DC_MAX_RANK; d++) a += m->outer[d] * oi[d] + m->inner[d] * ii[d];
    return a;
}

/* Row-major multi-index of flat index t over dims[rank]; entries past rank are 0. */
static void unflatten(int64_t t, int rank, const int64_t *dims, int64_t *idx) {
    for (int d = DC_MAX_RANK - 1; d >= 0; d--) {
        if (d >= rank) {
            idx[d] = 0;
            continue;
        }
        idx[d] = t % dims[d];
        t /= dims[d];
    }
}

static value eval_op(const dc_kir *k, const dc_kir_expr *e, const value *v) {
    value x[3], r = { 0 };
    for (int j = 0; j < 3; j++) x[j] = e->arg[j] >= 0 ? v[e->arg[j]] : r;
    dc_dtype t = k->exprs[e->arg[0]].dtype;
    if (e->op == DC_OP_CAST) return dc_cast_eval(t, e->to, x[0]);
    dc_map_eval(e->op, t, e->f, x, &r);
    return r;
}

/* The value of expression i at index (oi, ii); v holds its operands' values already. */
static value eval(const dc_kir *k, int i, const value *v, void **args, const int64_t *oi,
                  const int64_t *ii, const value *results) {
    const dc_kir_expr *e = &k->exprs[i];
    value r = { 0 };
    switch (e->kind) {
    case DC_KIR_LOAD: {
        int64_t a = map_at(&e->map, oi, ii), n = k->bufs[e->buf].numel;
        if (e->arg[1] >= 0 && v[e->arg[1]].i == 0) return r;
        if (e->arg[0] >= 0) a += (int64_t)v[e->arg[0]].i * e->stride;
        if (e->arg[0] >= 0 || e->arg[1] >= 0) a = a < 0 ? 0 : a >= n ? n - 1 : a;
        if (e->dtype == DC_F32) r.f = ((const float *)args[e->buf])[a];
        else r.i = ((const int32_t *)args[e->buf])[a];
        return r;
    }
    case DC_KIR_CONST: return e->dtype == DC_F32 ? (value){ .f = e->f } : (value){ .i = e->i };
    case DC_KIR_INDEX: r.i = (int32_t)(uint32_t)(uint64_t)map_at(&e->map, oi, ii); return r;
    case DC_KIR_RESULT: return results[e->result];
    case DC_KIR_OP: break;
    }
    return eval_op(k, e, v);
}

/* need[p * n_exprs + i]: phase p evaluates expression i. */
static bool *phase_needs(const dc_kir *k) {
    int n = k->n_exprs;
    bool *need = calloc((size_t)k->n_phases * (size_t)n + 1, sizeof *need);
    if (!need) abort(); /* out of memory */
    for (int r = 0; r < k->n_reduces; r++) need[k->reduces[r].phase * n + k->reduces[r].expr] = true;
    for (int t = 0; t < k->n_stores; t++) need[k->stores[t].phase * n + k->stores[t].expr] = true;
    for (int p = 0; p < k->n_phases; p++)
        for (int i = n - 1; i >= 0; i--)
            if (need[p * n + i] && (k->exprs[i].kind == DC_KIR_OP || k->exprs[i].kind == DC_KIR_LOAD))
                for (int j = 0; j < 3; j++)
                    if (k->exprs[i].arg[j] >= 0) need[p * n + k->exprs[i].arg[j]] = true;
    return need;
}

static void combine(dc_kir_combine how, dc_dtype t, value *acc, value x) {
    if (how == DC_KIR_SUM) {
        if (t == DC_F32) acc->f = acc->f + x.f;
        else acc->i = dc_i32_add(acc->i, x.i);
    } else {
        if (t == DC_F32) acc->f = dc_maxf(acc->f, x.f);
        else acc->i = x.i > acc->i ? x.i : acc->i;
    }
}

static value identity(dc_kir_combine how, dc_dtype t) {
    if (how == DC_KIR_SUM) return t == DC_F32 ? (value){ .f = 0.0f } : (value){ .i = 0 };
    return t == DC_F32 ? (value){ .f = -INFINITY } : (value){ .i = INT32_MIN };
}

/* Reducing store st at inner index ii: its element so far, or the identity at the first index
 * of its folded axes, combined with x. */
static value reduce_into(const dc_kir *k, const dc_kir_store *st, void **args, int64_t a, const int64_t *ii, value x) {
    dc_dtype t = k->bufs[st->buf].dtype;
    bool first = true;
    for (int d = 0; d < k->inner_rank; d++) first = first && (st->map.inner[d] != 0 || ii[d] == 0);
    value acc = identity(st->combine, t);
    if (!first && t == DC_F32) acc.f = ((const float *)args[st->buf])[a];
    else if (!first) acc.i = ((const int32_t *)args[st->buf])[a];
    combine(st->combine, t, &acc, x);
    return acc;
}

/* Runs phase p at outer multi-index oi. */
static void run_phase(const dc_kir *k, int p, const bool *need, void **args, const int64_t *oi,
                      value *v, value *results, value *staged) {
    int64_t count = 1, ii[DC_MAX_RANK] = { 0 };
    if (!k->phases[p].per_row)
        for (int d = 0; d < k->inner_rank; d++) count *= k->inner[d];
    for (int r = 0; r < k->n_reduces; r++)
        if (k->reduces[r].phase == p) results[r] = identity(k->reduces[r].combine, k->exprs[k->reduces[r].expr].dtype);
    for (int64_t t = 0; t < count; t++) {
        if (!k->phases[p].per_row) unflatten(t, k->inner_rank, k->inner, ii);
        for (int i = 0; i < k->n_exprs; i++)
            if (need[i]) v[i] = eval(k, i, v, args, oi, ii, results);
        for (int r = 0; r < k->n_reduces; r++)
            if (k->reduces[r].phase == p)
                combine(k->reduces[r].combine, k->exprs[k->reduces[r].expr].dtype, &results[r], v[k->reduces[r].expr]);
        for (int s = 0; s < k->n_stores; s++)
            if (k->stores[s].phase == p) staged[s] = v[k->stores[s].expr];
        for (int s = 0; s < k->n_stores; s++) {
            const dc_kir_store *st = &k->stores[s];
            if (st->phase != p) continue;
            int64_t a = map_at(&st->map, oi, ii);
            if (st->reduce) staged[s] = reduce_into(k, st, args, a, ii, staged[s]);
            if (k->bufs[st->buf].dtype == DC_F32) ((float *)args[st->buf])[a] = staged[s].f;
            else ((int32_t *)args[st->buf])[a] = staged[s].i;
        }
    }
}

bool dc_kir_interpret(const dc_kir *k, void **args, int64_t begin, int64_t end) {
    if (k->err[0] || k->n_phases == 0 || begin < 0 || end < begin || end > dc_kir_range(k))
        return false;
    bool *need = phase_needs(k);
    value *v = calloc((size_t)k->n_exprs + 1, sizeof *v);
    value *results = calloc((size_t)k->n_reduces + 1, sizeof *results);
    value *staged = calloc((size_t)k->n_stores + 1, sizeof *staged);
    if (!v || !results || !staged) abort(); /* out of memory */
    for (int64_t o = begin; o < end; o++) {
        int64_t oi[DC_MAX_RANK];
        unflatten(o, k->outer_rank, k->outer, oi);
        for (int p = 0; p < k->n_phases; p++)
            run_phase(k, p, need + (size_t)p * (size_t)k->n_exprs, args, oi, v, results, staged);
    }
    free(need);
    free(v);
    free(results);
    free(staged);
    return true;
}

/* ---- the collapsed normal form --------------------------------------------------------- */

static dc_kir *copy(const dc_kir *k) {
    dc_kir *c = malloc(sizeof *c);
    if (!c) abort(); /* out of memory */
    *c = *k;
    c->cap_exprs = k->n_exprs;
    c->cap_phases = k->n_phases;
    c->cap_reduces = k->n_reduces;
    c->cap_stores = k->n_stores;
    c->exprs = malloc(sizeof *c->exprs * ((size_t)k->n_exprs + 1));
    c->phases = malloc(sizeof *c->phases * ((size_t)k->n_phases + 1));
    c->reduces = malloc(sizeof *c->reduces * ((size_t)k->n_reduces + 1));
    c->stores = malloc(sizeof *c->stores * ((size_t)k->n_stores + 1));
    if (!c->exprs || !c->phases || !c->reduces || !c->stores) abort(); /* out of memory */
    if (k->n_exprs) memcpy(c->exprs, k->exprs, sizeof *c->exprs * (size_t)k->n_exprs);
    if (k->n_phases) memcpy(c->phases, k->phases, sizeof *c->phases * (size_t)k->n_phases);
    if (k->n_reduces) memcpy(c->reduces, k->reduces, sizeof *c->reduces * (size_t)k->n_reduces);
    if (k->n_stores) memcpy(c->stores, k->stores, sizeof *c->stores * (size_t)k->n_stores);
    return c;
}

/* Every map of k (loads, indices, stores), for one pass over them. */
static int maps_of(dc_kir *k, dc_kir_map **out) {
    int n = 0;
    for (int i = 0; i < k->n_exprs; i++)
        if (k->exprs[i].kind == DC_KIR_LOAD || k->exprs[i].kind == DC_KIR_INDEX) out[n++] = &k->exprs[i].map;
    for (int s = 0; s < k->n_stores; s++) out[n++] = &k->stores[s].map;
    return n;
}

/* Removes axis a of one space (dims and every map's strides). */
static void drop_axis(int *rank, int64_t *dims, dc_kir_map **maps, int n, bool inner, int a) {
    for (int d = a; d + 1 < *rank; d++) dims[d] = dims[d + 1];
    dims[*rank - 1] = 0;
    for (int m = 0; m < n; m++) {
        int64_t *st = inner ? maps[m]->inner : maps[m]->outer;
        for (int d = a; d + 1 < *rank; d++) st[d] = st[d + 1];
        st[*rank - 1] = 0;
    }
    (*rank)--;
}

static void collapse_space(dc_kir *k, dc_kir_map **maps, int n, bool inner) {
    int *rank = inner ? &k->inner_rank : &k->outer_rank;
    int64_t *dims = inner ? k->inner : k->outer;
    bool keep_one = inner && *rank > 0;
    for (int d = *rank - 1; d >= 0; d--)
        if (dims[d] == 1) drop_axis(rank, dims, maps, n, inner, d);
    if (keep_one && *rank == 0) {
        *rank = 1;
        dims[0] = 1;
    }
    for (int d = *rank - 2; d >= 0; d--) {
        bool ok = true;
        for (int m = 0; m < n && ok; m++) {
            const int64_t *st = inner ? maps[m]->inner : maps[m]->outer;
            ok = st[d] == st[d + 1] * dims[d + 1];
        }
        if (!ok) continue;
        dims[d + 1] *= dims[d];
        drop_axis(rank, dims, maps, n, inner, d);
    }
}

dc_kir *dc_kir_collapse(const dc_kir *k) {
    dc_kir *c = copy(k);
    if (c->err[0]) return c;
    dc_kir_map **maps = malloc(sizeof *maps * ((size_t)c->n_exprs + (size_t)c->n_stores + 1));
    if (!maps) abort(); /* out of memory */
    int n = maps_of(c, maps);
    collapse_space(c, maps, n, false);
    collapse_space(c, maps, n, true);
    free(maps);
    return c;
}
