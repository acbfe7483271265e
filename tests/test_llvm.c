/* test_llvm.c — the LLVM JIT against the kernel IR interpreter: elementwise chains with
 * broadcast and transposed loads, softmax, log_softmax, layer_norm, group_norm NHWC (groups of
 * 1..8 channels: the block layouts), a group norm's backward shape (per-row loads), row sums
 * and maxes, sums and maxima over a leading axis, reducing stores (per-lane sums of a norm's
 * rows, a fold of a middle axis), checked loads (a concat's guarded halves, a gather with
 * indices out of range), AdamW, i32 ops, on sizes around the vector widths (1, 15, 17, 33), each
 * compiled for the host (AVX-512 here), forced AVX2 (-avx512f) and scalar (-avx); the
 * measured error of the vector exp/log/tanh/sigmoid/gelu/silu against double precision, and
 * exp/sigmoid/silu at their clamps, the infinities and NaN; the
 * kernel cache (a second compile loads the object and runs no optimizer); compile times and
 * the bandwidth of a large elementwise kernel next to memcpy.
 *
 * Tolerances: kernels of exact ops (+ - * /, sqrt, compares, casts, where, max, libm calls)
 * must match the interpreter bitwise: generated code performs the same IEEE operations in the
 * same order. Kernels with exp/log/tanh/sigmoid/silu/gelu: relative 4e-6 + absolute 1e-6 (the
 * approximations are within a few ulp, see llvm_vmath_error, and softmax-like chains add a
 * few roundings). f32 sums: relative 1e-5 + absolute 1e-5 (vector accumulators sum in another
 * order than the interpreter's sequential loop). */
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "tests/test.h"

#define NTARGETS 3
static const dc_jit_options targets[NTARGETS] = {
    { .no_cache = true },
    { .features = "-avx512f", .no_cache = true },
    { .features = "-avx", .no_cache = true },
};
static const int target_lanes[NTARGETS] = { 16, 8, 1 };

typedef struct {
    const char *name;
    dc_kir *k;
    float lo[DC_KIR_MAX_BUFS], hi[DC_KIR_MAX_BUFS]; /* fill range per buffer (both 0: [-3, 3]) */
    double atol, rtol;                             /* 0, 0: bitwise */
} kcase;

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill(const kcase *c, void **bufs) {
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int b = 0; b < c->k->n_bufs; b++) {
        float lo = c->lo[b], hi = c->hi[b];
        if (lo == 0 && hi == 0) lo = -3, hi = 3;
        for (int64_t i = 0; i < c->k->bufs[b].numel; i++) {
            double u = (double)(rng_next(&s) >> 11) / 9007199254740992.0;
            if (c->k->bufs[b].dtype == DC_F32) ((float *)bufs[b])[i] = (float)(lo + (hi - lo) * u);
            else ((int32_t *)bufs[b])[i] = (int32_t)(lo + (hi - lo) * u);
        }
    }
}

static void **alloc_bufs(const dc_kir *k) {
    void **b = calloc((size_t)k->n_bufs, sizeof *b);
    for (int i = 0; i < k->n_bufs; i++) b[i] = calloc((size_t)k->bufs[i].numel, 4);
    return b;
}

static void free_bufs(const dc_kir *k, void **b) {
    for (int i = 0; i < k->n_bufs; i++) free(b[i]);
    free(b);
}

/* Written buffers of got against want: bitwise (both NaN counts as equal) or within tolerance. */
static int compare(const kcase *c, const char *what, void **got, void **want) {
    int bad = 0;
    for (int b = 0; b < c->k->n_bufs && !bad; b++) {
        if (!c->k->bufs[b].written) continue;
        for (int64_t i = 0; i < c->k->bufs[b].numel && !bad; i++) {
            if (c->k->bufs[b].dtype == DC_I32) {
                int32_t g = ((int32_t *)got[b])[i], w = ((int32_t *)want[b])[i];
                if (g != w) {
                    dc_test_fail(__FILE__, __LINE__, "%s %s: b%d[%lld] = %d, expected %d", c->name,
                                 what, b, (long long)i, g, w);
                    bad = 1;
                }
                continue;
            }
            float g = ((float *)got[b])[i], w = ((float *)want[b])[i];
            bool ok = (isnan(g) && isnan(w)) || memcmp(&g, &w, 4) == 0 ||
                      ((c->atol > 0 || c->rtol > 0) && fabs((double)g - w) <= c->atol + c->rtol * fabs(w));
            if (!ok) {
                dc_test_fail(__FILE__, __LINE__, "%s %s: b%d[%lld] = %.9g, expected %.9g", c->name,
                             what, b, (long long)i, (double)g, (double)w);
                bad = 1;
            }
        }
    }
    return bad;
}

/* Runs case c under the interpreter and every target (the range split in three parts, so
 * begin/end fall inside rows and blocks), compares each target with the interpreter and AVX2
 * with AVX-512, and each target's split run bitwise with one run over the whole range (what
 * one thread computes equals what several compute); frees c->k. */
static void run_case(kcase *c) {
    const char *err = dc_kir_error(c->k);
    CHECK_MSG(!err, "%s: %s", c->name, err ? err : "");
    int64_t n = dc_kir_range(c->k);
    void **want = alloc_bufs(c->k), *outs[NTARGETS] = { 0 };
    fill(c, want);
    CHECK(dc_kir_interpret(c->k, want, 0, n));
    for (int t = 0; t < NTARGETS; t++) {
        char msg[DC_ERR_LEN] = "";
        dc_jit_kernel *jk = dc_jit_compile(c->k, &targets[t], msg, sizeof msg);
        CHECK_MSG(jk, "%s: %s", c->name, msg);
        if (!jk) continue;
        CHECK_EQ_INT(dc_jit_lanes(jk), target_lanes[t]);
        void **got = alloc_bufs(c->k), **whole = alloc_bufs(c->k);
        fill(c, got);
        fill(c, whole);
        int64_t cut[4] = { 0, n / 3, 2 * n / 3, n };
        for (int p = 0; p < 3; p++)
            if (cut[p] < cut[p + 1]) dc_jit_entry(jk)(got, cut[p], cut[p + 1]);
        dc_jit_entry(jk)(whole, 0, n);
        char what[40];
        snprintf(what, sizeof what, "x%d vs interpreter", target_lanes[t]);
        compare(c, what, got, want);
        kcase exact = *c;
        exact.atol = exact.rtol = 0;
        snprintf(what, sizeof what, "x%d split vs whole range", target_lanes[t]);
        compare(&exact, what, got, whole);
        free_bufs(c->k, whole);
        outs[t] = got;
        dc_jit_release(jk);
    }
    if (outs[0] && outs[1]) compare(c, "x8 vs x16", outs[1], outs[0]);
    for (int t = 0; t < NTARGETS; t++)
        if (outs[t]) free_bufs(c->k, outs[t]);
    free_bufs(c->k, want);
    dc_kir_free(c->k);
}

/* ---- the kernels ---------------------------------------------------------------------- */

/* y = relu(x * b + t) - sqrt(|x|) / (1 + b^2) - max(x, t) with b [C] broadcast over rows and
 * t [C, R] read transposed; rows: inner space [C] instead of outer [R, C]. */
static kcase ew_chain(int64_t r, int64_t cdim, bool rows) {
    dc_kir *k = rows ? dc_kir_new(1, (int64_t[]){ r }, 1, (int64_t[]){ cdim })
                     : dc_kir_new(2, (int64_t[]){ r, cdim }, 0, NULL);
    int x = dc_kir_buffer_add(k, DC_F32, r * cdim, false);
    int b = dc_kir_buffer_add(k, DC_F32, cdim, false);
    int t = dc_kir_buffer_add(k, DC_F32, r * cdim, false);
    int y = dc_kir_buffer_add(k, DC_F32, r * cdim, true);
    dc_kir_map mx = rows ? dc_kir_map_make(k, 0, (int64_t[]){ cdim }, (int64_t[]){ 1 })
                         : dc_kir_map_make(k, 0, (int64_t[]){ cdim, 1 }, NULL);
    dc_kir_map mb = rows ? dc_kir_map_make(k, 0, NULL, (int64_t[]){ 1 })
                         : dc_kir_map_make(k, 0, (int64_t[]){ 0, 1 }, NULL);
    dc_kir_map mt = rows ? dc_kir_map_make(k, 0, (int64_t[]){ 1 }, (int64_t[]){ r })
                         : dc_kir_map_make(k, 0, (int64_t[]){ 1, r }, NULL);
    int lx = dc_kir_load(k, x, mx), lb = dc_kir_load(k, b, mb), lt = dc_kir_load(k, t, mt);
    int v = dc_kir_unary(k, DC_OP_RELU, dc_kir_binary(k, DC_OP_ADD, dc_kir_binary(k, DC_OP_MUL, lx, lb), lt));
    int den = dc_kir_binary(k, DC_OP_ADD, dc_kir_const_f32(k, 1), dc_kir_unary(k, DC_OP_SQUARE, lb));
    int q = dc_kir_binary(k, DC_OP_DIV, dc_kir_unary(k, DC_OP_SQRT, dc_kir_unary(k, DC_OP_ABS, lx)), den);
    v = dc_kir_binary(k, DC_OP_SUB, dc_kir_binary(k, DC_OP_SUB, v, q), dc_kir_binary(k, DC_OP_MAXIMUM, lx, lt));
    v = dc_kir_binary(k, DC_OP_ADD, v, dc_kir_unary(k, DC_OP_RSQRT, dc_kir_binary(k, DC_OP_MINIMUM,
                                                         dc_kir_unary(k, DC_OP_NEG, lb), lx)));
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, y, mx, v);
    return (kcase){ .name = rows ? "ew_chain_rows" : "ew_chain", .k = k };
}

/* every approximated function, plus sin/cos/pow (libm) on one input */
static kcase ew_approx(int64_t n) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ n }, 0, NULL);
    int x = dc_kir_buffer_add(k, DC_F32, n, false);
    int y = dc_kir_buffer_add(k, DC_F32, n, true);
    int z = dc_kir_buffer_add(k, DC_F32, n, true);
    dc_kir_map m = dc_kir_map_make(k, 0, (int64_t[]){ 1 }, NULL);
    int lx = dc_kir_load(k, x, m);
    int a = dc_kir_unary(k, DC_OP_EXP, lx);
    a = dc_kir_binary(k, DC_OP_ADD, a, dc_kir_unary(k, DC_OP_LOG, dc_kir_binary(k, DC_OP_ADD,
                                           dc_kir_unary(k, DC_OP_ABS, lx), dc_kir_const_f32(k, 0.1f))));
    a = dc_kir_binary(k, DC_OP_ADD, a, dc_kir_unary(k, DC_OP_TANH, lx));
    a = dc_kir_binary(k, DC_OP_ADD, a, dc_kir_unary(k, DC_OP_SIGMOID, lx));
    int b = dc_kir_binary(k, DC_OP_ADD, dc_kir_unary(k, DC_OP_SILU, lx), dc_kir_unary(k, DC_OP_GELU, lx));
    int c = dc_kir_binary(k, DC_OP_ADD, dc_kir_unary(k, DC_OP_SIN, lx), dc_kir_unary(k, DC_OP_COS, lx));
    c = dc_kir_binary(k, DC_OP_ADD, c, dc_kir_op(k, DC_OP_POW, (int[]){ dc_kir_unary(k, DC_OP_ABS, lx) }, 1.5f));
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, y, m, a);
    dc_kir_store_add(k, z, m, dc_kir_binary(k, DC_OP_MUL, b, c));
    return (kcase){ .name = "ew_approx", .k = k, .lo = { -6 }, .hi = { 6 }, .atol = 1e-6, .rtol = 4e-6 };
}

static dc_kir_map row_map(const dc_kir *k, int64_t c) { return dc_kir_map_make(k, 0, (int64_t[]){ c }, (int64_t[]){ 1 }); }

/* softmax (log = false) or log_softmax over rows of c, and the row's logsumexp */
static kcase softmax(int64_t r, int64_t c, bool log) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ r }, 1, (int64_t[]){ c });
    int x = dc_kir_buffer_add(k, DC_F32, r * c, false);
    int y = dc_kir_buffer_add(k, DC_F32, r * c, true);
    int l = dc_kir_buffer_add(k, DC_F32, r, true);
    int lx = dc_kir_load(k, x, row_map(k, c));
    dc_kir_phase_begin(k, false);
    int m = dc_kir_reduce_add(k, DC_KIR_MAX, lx);
    int d = dc_kir_binary(k, DC_OP_SUB, lx, m);
    int e = dc_kir_unary(k, DC_OP_EXP, d);
    dc_kir_phase_begin(k, false);
    int s = dc_kir_reduce_add(k, DC_KIR_SUM, e);
    int ls = dc_kir_unary(k, DC_OP_LOG, s);
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, y, row_map(k, c), log ? dc_kir_binary(k, DC_OP_SUB, d, ls) : dc_kir_binary(k, DC_OP_DIV, e, s));
    dc_kir_phase_begin(k, true);
    dc_kir_store_add(k, l, dc_kir_map_make(k, 0, (int64_t[]){ 1 }, NULL), dc_kir_binary(k, DC_OP_ADD, m, ls));
    return (kcase){ .name = log ? "log_softmax" : "softmax", .k = k, .lo = { -8 }, .hi = { 8 },
                    .atol = 1e-5, .rtol = 1e-5 };
}

/* layer_norm over rows of c: (x - mean) * rsqrt(var + eps) * gamma + beta */
static kcase layer_norm(int64_t r, int64_t c) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ r }, 1, (int64_t[]){ c });
    int x = dc_kir_buffer_add(k, DC_F32, r * c, false);
    int g = dc_kir_buffer_add(k, DC_F32, c, false);
    int be = dc_kir_buffer_add(k, DC_F32, c, false);
    int y = dc_kir_buffer_add(k, DC_F32, r * c, true);
    int lx = dc_kir_load(k, x, row_map(k, c));
    int inv = dc_kir_const_f32(k, 1.0f / (float)c);
    dc_kir_phase_begin(k, false);
    int mean = dc_kir_binary(k, DC_OP_MUL, dc_kir_reduce_add(k, DC_KIR_SUM, lx), inv);
    int d = dc_kir_binary(k, DC_OP_SUB, lx, mean);
    dc_kir_phase_begin(k, false);
    int var = dc_kir_binary(k, DC_OP_MUL, dc_kir_reduce_add(k, DC_KIR_SUM, dc_kir_unary(k, DC_OP_SQUARE, d)), inv);
    int rs = dc_kir_unary(k, DC_OP_RSQRT, dc_kir_binary(k, DC_OP_ADD, var, dc_kir_const_f32(k, 1e-5f)));
    dc_kir_map bc = dc_kir_map_make(k, 0, NULL, (int64_t[]){ 1 });
    int v = dc_kir_binary(k, DC_OP_MUL, dc_kir_binary(k, DC_OP_MUL, d, rs), dc_kir_load(k, g, bc));
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, y, row_map(k, c), dc_kir_binary(k, DC_OP_ADD, v, dc_kir_load(k, be, bc)));
    return (kcase){ .name = "layer_norm", .k = k, .atol = 1e-5, .rtol = 1e-5 };
}

/* group_norm + silu on NHWC x [n, hw, ch] with g groups: outer [n, g], inner [hw, ch/g] */
static kcase group_norm_silu(int64_t n, int64_t hw, int64_t ch, int64_t g) {
    int64_t cg = ch / g;
    dc_kir *k = dc_kir_new(2, (int64_t[]){ n, g }, 2, (int64_t[]){ hw, cg });
    int x = dc_kir_buffer_add(k, DC_F32, n * hw * ch, false);
    int gm = dc_kir_buffer_add(k, DC_F32, ch, false);
    int bt = dc_kir_buffer_add(k, DC_F32, ch, false);
    int y = dc_kir_buffer_add(k, DC_F32, n * hw * ch, true);
    dc_kir_map mx = dc_kir_map_make(k, 0, (int64_t[]){ hw * ch, cg }, (int64_t[]){ ch, 1 });
    dc_kir_map mc = dc_kir_map_make(k, 0, (int64_t[]){ 0, cg }, (int64_t[]){ 0, 1 });
    int lx = dc_kir_load(k, x, mx);
    int inv = dc_kir_const_f32(k, 1.0f / (float)(hw * cg));
    dc_kir_phase_begin(k, false);
    int mean = dc_kir_binary(k, DC_OP_MUL, dc_kir_reduce_add(k, DC_KIR_SUM, lx), inv);
    int d = dc_kir_binary(k, DC_OP_SUB, lx, mean);
    dc_kir_phase_begin(k, false);
    int var = dc_kir_binary(k, DC_OP_MUL, dc_kir_reduce_add(k, DC_KIR_SUM, dc_kir_unary(k, DC_OP_SQUARE, d)), inv);
    int rs = dc_kir_unary(k, DC_OP_RSQRT, dc_kir_binary(k, DC_OP_ADD, var, dc_kir_const_f32(k, 1e-5f)));
    int v = dc_kir_binary(k, DC_OP_MUL, dc_kir_binary(k, DC_OP_MUL, d, rs), dc_kir_load(k, gm, mc));
    v = dc_kir_unary(k, DC_OP_SILU, dc_kir_binary(k, DC_OP_ADD, v, dc_kir_load(k, bt, mc)));
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, y, mx, v);
    return (kcase){ .name = "group_norm_silu", .k = k, .atol = 1e-5, .rtol = 1e-5 };
}

/* per row of x [r, a, b] read transposed as [r, b, a]: f32 sum and max, i32 sum and max */
static kcase reduce_rows(int64_t r, int64_t a, int64_t b) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ r }, 2, (int64_t[]){ b, a });
    int x = dc_kir_buffer_add(k, DC_F32, r * a * b, false);
    int xi = dc_kir_buffer_add(k, DC_I32, r * a * b, false);
    int fo = dc_kir_buffer_add(k, DC_F32, 2 * r, true);
    int io = dc_kir_buffer_add(k, DC_I32, 2 * r, true);
    dc_kir_map m = dc_kir_map_make(k, 0, (int64_t[]){ a * b }, (int64_t[]){ 1, b });
    int lx = dc_kir_load(k, x, m), li = dc_kir_load(k, xi, m);
    dc_kir_phase_begin(k, false);
    int s = dc_kir_reduce_add(k, DC_KIR_SUM, lx), mx = dc_kir_reduce_add(k, DC_KIR_MAX, lx);
    int si = dc_kir_reduce_add(k, DC_KIR_SUM, li), mi = dc_kir_reduce_add(k, DC_KIR_MAX, li);
    dc_kir_phase_begin(k, true);
    dc_kir_store_add(k, fo, dc_kir_map_make(k, 0, (int64_t[]){ 2 }, NULL), s);
    dc_kir_store_add(k, fo, dc_kir_map_make(k, 1, (int64_t[]){ 2 }, NULL), mx);
    dc_kir_store_add(k, io, dc_kir_map_make(k, 0, (int64_t[]){ 2 }, NULL), si);
    dc_kir_store_add(k, io, dc_kir_map_make(k, 1, (int64_t[]){ 2 }, NULL), mi);
    return (kcase){ .name = "reduce_rows", .k = k, .lo = { 0, -1000 }, .hi = { 0, 1000 },
                    .atol = 1e-5, .rtol = 1e-5 };
}

/* Sums and maxima over the leading axis of x [r, c] (a bias gradient: one row per column c,
 * inner stride c), stored per row, and x minus its column's max stored elementwise. */
static kcase column_reduce(int64_t r, int64_t c) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ c }, 1, (int64_t[]){ r });
    int x = dc_kir_buffer_add(k, DC_F32, r * c, false);
    int out = dc_kir_buffer_add(k, DC_F32, 2 * c, true);
    int y = dc_kir_buffer_add(k, DC_F32, r * c, true);
    dc_kir_map m = dc_kir_map_make(k, 0, (int64_t[]){ 1 }, (int64_t[]){ c });
    int lx = dc_kir_load(k, x, m);
    dc_kir_phase_begin(k, false);
    int s = dc_kir_reduce_add(k, DC_KIR_SUM, lx), mx = dc_kir_reduce_add(k, DC_KIR_MAX, lx);
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, y, m, dc_kir_binary(k, DC_OP_SUB, lx, mx));
    dc_kir_phase_begin(k, true);
    dc_kir_store_add(k, out, dc_kir_map_make(k, 0, (int64_t[]){ 1 }, NULL), s);
    dc_kir_store_add(k, out, dc_kir_map_make(k, c, (int64_t[]){ 1 }, NULL), mx);
    return (kcase){ .name = "column_reduce", .k = k, .atol = 1e-5, .rtol = 1e-5 };
}

/* A group norm's backward shape over x [n, hw, g * cg]: saved per-group statistics [n, g]
 * read at every position (loads no inner index moves), dx = (x - mean) * rstd * dy, and the
 * per-group sum of dx * x stored per row. */
static kcase norm_apply(int64_t n, int64_t hw, int64_t g, int64_t cg) {
    int64_t ch = g * cg;
    dc_kir *k = dc_kir_new(2, (int64_t[]){ n, g }, 2, (int64_t[]){ hw, cg });
    int x = dc_kir_buffer_add(k, DC_F32, n * hw * ch, false);
    int dy = dc_kir_buffer_add(k, DC_F32, n * hw * ch, false);
    int st = dc_kir_buffer_add(k, DC_F32, 2 * n * g, false);
    int dx = dc_kir_buffer_add(k, DC_F32, n * hw * ch, true);
    int out = dc_kir_buffer_add(k, DC_F32, n * g, true);
    dc_kir_map mx = dc_kir_map_make(k, 0, (int64_t[]){ hw * ch, cg }, (int64_t[]){ ch, 1 });
    dc_kir_map mrow = dc_kir_map_make(k, 0, (int64_t[]){ g, 1 }, NULL);
    dc_kir_map mrs = dc_kir_map_make(k, n * g, (int64_t[]){ g, 1 }, NULL);
    int lx = dc_kir_load(k, x, mx);
    int d = dc_kir_binary(k, DC_OP_MUL, dc_kir_binary(k, DC_OP_SUB, lx, dc_kir_load(k, st, mrow)), dc_kir_load(k, st, mrs));
    d = dc_kir_binary(k, DC_OP_MUL, d, dc_kir_load(k, dy, mx));
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, dx, mx, d);
    int s = dc_kir_reduce_add(k, DC_KIR_SUM, dc_kir_binary(k, DC_OP_MUL, d, lx));
    dc_kir_phase_begin(k, true);
    dc_kir_store_add(k, out, mrow, s);
    return (kcase){ .name = "norm_apply", .k = k, .atol = 1e-5, .rtol = 1e-5 };
}

/* A group norm's backward shape with its parameter gradients kept per lane: over x, dy
 * [n, hw, g * cg] (outer (n, g), inner (hw, cg)), dx = x * dy stored elementwise, and reducing
 * stores per sample and channel: the sums over positions of dx and of dy, the max of x, an i32
 * sum; the same order as the interpreter, so bitwise. */
static kcase lane_sums(int64_t n, int64_t hw, int64_t g, int64_t cg) {
    int64_t ch = g * cg;
    dc_kir *k = dc_kir_new(2, (int64_t[]){ n, g }, 2, (int64_t[]){ hw, cg });
    int x = dc_kir_buffer_add(k, DC_F32, n * hw * ch, false);
    int dy = dc_kir_buffer_add(k, DC_F32, n * hw * ch, false);
    int xi = dc_kir_buffer_add(k, DC_I32, n * hw * ch, false);
    int dx = dc_kir_buffer_add(k, DC_F32, n * hw * ch, true);
    int sums = dc_kir_buffer_add(k, DC_F32, 3 * n * ch, true);
    int isum = dc_kir_buffer_add(k, DC_I32, n * ch, true);
    dc_kir_map mx = dc_kir_map_make(k, 0, (int64_t[]){ hw * ch, cg }, (int64_t[]){ ch, 1 });
    int lx = dc_kir_load(k, x, mx), ldy = dc_kir_load(k, dy, mx);
    int d = dc_kir_binary(k, DC_OP_MUL, lx, ldy);
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, dx, mx, d);
    for (int j = 0; j < 3; j++)
        dc_kir_store_reduce_add(k, sums, dc_kir_map_make(k, j * n * ch, (int64_t[]){ ch, cg }, (int64_t[]){ 0, 1 }),
                                j == 0 ? d : j == 1 ? ldy : lx, j == 2 ? DC_KIR_MAX : DC_KIR_SUM);
    dc_kir_store_reduce_add(k, isum, dc_kir_map_make(k, 0, (int64_t[]){ ch, cg }, (int64_t[]){ 0, 1 }),
                            dc_kir_load(k, xi, mx), DC_KIR_SUM);
    return (kcase){ .name = "lane_sums", .k = k, .lo = { 0, 0, -1000 }, .hi = { 0, 0, 1000 } };
}

/* Over x [r, a, b, c] (outer r, inner (a, b, c)): the sum over b kept per (a, c), the store
 * folding a middle axis (its first index tested on b alone); bitwise. */
static kcase middle_sum(int64_t r, int64_t a, int64_t b, int64_t c) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ r }, 3, (int64_t[]){ a, b, c });
    int x = dc_kir_buffer_add(k, DC_F32, r * a * b * c, false);
    int out = dc_kir_buffer_add(k, DC_F32, r * a * c, true);
    int lx = dc_kir_load(k, x, dc_kir_map_make(k, 0, (int64_t[]){ a * b * c }, (int64_t[]){ b * c, c, 1 }));
    dc_kir_phase_begin(k, false);
    dc_kir_store_reduce_add(k, out, dc_kir_map_make(k, 0, (int64_t[]){ a * c }, (int64_t[]){ c, 0, 1 }),
                            dc_kir_unary(k, DC_OP_SQUARE, lx), DC_KIR_SUM);
    return (kcase){ .name = "middle_sum", .k = k };
}

/* Checked loads over out [r, a + b] (outer (r, col), or inner col when rows): the concat of x
 * [r, a] and y [r, b] along the columns (each load guarded by the column's side, its position
 * clamped where the guard is off), and a gather of table t [v, a + b] at row idx[r], indices
 * in [-3, v + 3) (clamped positions; guarded to [0, v)); bitwise. */
static kcase checked_loads(int64_t r, int64_t a, int64_t b, int64_t v, bool rows) {
    int64_t n = a + b;
    dc_kir *k = rows ? dc_kir_new(1, (int64_t[]){ r }, 1, (int64_t[]){ n }) : dc_kir_new(2, (int64_t[]){ r, n }, 0, NULL);
    int x = dc_kir_buffer_add(k, DC_F32, r * a, false);
    int y = dc_kir_buffer_add(k, DC_F32, r * b, false);
    int t = dc_kir_buffer_add(k, DC_F32, v * n, false);
    int idx = dc_kir_buffer_add(k, DC_I32, r, false);
    int out = dc_kir_buffer_add(k, DC_F32, r * n, true);
    int out2 = dc_kir_buffer_add(k, DC_F32, r * n, true);
#define MAP(off, sr, sc) (rows ? dc_kir_map_make(k, off, (int64_t[]){ sr }, (int64_t[]){ sc }) \
                              : dc_kir_map_make(k, off, (int64_t[]){ sr, sc }, NULL))
    int col = dc_kir_index(k, MAP(0, 0, 1));
    int left = dc_kir_binary(k, DC_OP_LT, col, dc_kir_const_i32(k, (int32_t)a));
    int right = dc_kir_binary(k, DC_OP_GE, col, dc_kir_const_i32(k, (int32_t)a));
    int lx = dc_kir_load_checked(k, x, MAP(0, a, 1), -1, 0, left);
    int ly = dc_kir_load_checked(k, y, MAP(-a, b, 1), -1, 0, right);
    int cat = dc_kir_where(k, left, lx, ly);
    int li = dc_kir_load(k, idx, MAP(0, 1, 0));
    int ok = dc_kir_binary(k, DC_OP_MUL, dc_kir_binary(k, DC_OP_GE, li, dc_kir_const_i32(k, 0)),
                           dc_kir_binary(k, DC_OP_LT, li, dc_kir_const_i32(k, (int32_t)v)));
    int lt = dc_kir_load_checked(k, t, MAP(0, 0, 1), li, n, ok);
    int raw = dc_kir_load_checked(k, t, MAP(0, 0, 1), li, n, -1);
#undef MAP
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, out, rows ? dc_kir_map_make(k, 0, (int64_t[]){ n }, (int64_t[]){ 1 }) : dc_kir_map_make(k, 0, (int64_t[]){ n, 1 }, NULL), cat);
    dc_kir_store_add(k, out2, rows ? dc_kir_map_make(k, 0, (int64_t[]){ n }, (int64_t[]){ 1 }) : dc_kir_map_make(k, 0, (int64_t[]){ n, 1 }, NULL),
                     dc_kir_binary(k, DC_OP_ADD, dc_kir_binary(k, DC_OP_MUL, lt, dc_kir_const_f32(k, 2.0f)), raw));
    return (kcase){ .name = rows ? "checked_loads rows" : "checked_loads", .k = k, .lo = { 0, 0, 0, -3 },
                    .hi = { 0, 0, 0, (float)(v + 3) } };
}

/* AdamW in place: p, m, v updated from g with lr, betas, eps, weight decay, step 3 */
static kcase adamw(int64_t n) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ n }, 0, NULL);
    int p = dc_kir_buffer_add(k, DC_F32, n, true);
    int g = dc_kir_buffer_add(k, DC_F32, n, false);
    int m = dc_kir_buffer_add(k, DC_F32, n, true);
    int v = dc_kir_buffer_add(k, DC_F32, n, true);
    int lr = dc_kir_buffer_add(k, DC_F32, 1, false);
    dc_kir_map id = dc_kir_map_make(k, 0, (int64_t[]){ 1 }, NULL);
    int lp = dc_kir_load(k, p, id), lg = dc_kir_load(k, g, id), lm = dc_kir_load(k, m, id);
    int lv = dc_kir_load(k, v, id), llr = dc_kir_load(k, lr, dc_kir_map_make(k, 0, NULL, NULL));
#define C(x) dc_kir_const_f32(k, x)
#define B(op, a, b) dc_kir_binary(k, DC_OP_##op, a, b)
    int m2 = B(ADD, B(MUL, C(0.9f), lm), B(MUL, C(0.1f), lg));
    int v2 = B(ADD, B(MUL, C(0.999f), lv), B(MUL, C(0.001f), dc_kir_unary(k, DC_OP_SQUARE, lg)));
    int mh = B(DIV, m2, C(1 - 0.729f)), vh = B(DIV, v2, C(1 - 0.997003f));
    int upd = B(DIV, mh, B(ADD, dc_kir_unary(k, DC_OP_SQRT, vh), C(1e-8f)));
    int p2 = B(SUB, B(SUB, lp, B(MUL, llr, upd)), B(MUL, B(MUL, llr, C(0.01f)), lp));
#undef C
#undef B
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, p, id, p2);
    dc_kir_store_add(k, m, id, m2);
    dc_kir_store_add(k, v, id, v2);
    return (kcase){ .name = "adamw", .k = k, .lo = { 0, 0, 0, 0, 1e-3f }, .hi = { 0, 0, 0, 5, 1e-2f } };
}

/* i32 compares, where, division (by 0 and -1 among the inputs), casts both ways, iota */
static kcase i32_ops(int64_t n) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ n }, 0, NULL);
    int a = dc_kir_buffer_add(k, DC_I32, n, false);
    int b = dc_kir_buffer_add(k, DC_I32, n, false);
    int f = dc_kir_buffer_add(k, DC_F32, n, false);
    int o = dc_kir_buffer_add(k, DC_I32, n, true);
    int of = dc_kir_buffer_add(k, DC_F32, n, true);
    dc_kir_map id = dc_kir_map_make(k, 0, (int64_t[]){ 1 }, NULL);
    int la = dc_kir_load(k, a, id), lb = dc_kir_load(k, b, id), lf = dc_kir_load(k, f, id);
    int big = dc_kir_binary(k, DC_OP_MUL, lf, dc_kir_const_f32(k, 1e9f));
    int q = dc_kir_where(k, dc_kir_binary(k, DC_OP_LT, la, lb), dc_kir_binary(k, DC_OP_DIV, la, lb),
                         dc_kir_binary(k, DC_OP_SUB, dc_kir_binary(k, DC_OP_MUL, lb, la), dc_kir_unary(k, DC_OP_ABS, la)));
    q = dc_kir_binary(k, DC_OP_ADD, q, dc_kir_cast(k, big, DC_I32));
    q = dc_kir_binary(k, DC_OP_ADD, q, dc_kir_index(k, dc_kir_map_make(k, 7, (int64_t[]){ 3 }, NULL)));
    q = dc_kir_binary(k, DC_OP_MAXIMUM, q, dc_kir_unary(k, DC_OP_NEG, dc_kir_unary(k, DC_OP_SQUARE, lb)));
    int cmp = dc_kir_binary(k, DC_OP_ADD, dc_kir_binary(k, DC_OP_EQ, la, lb), dc_kir_binary(k, DC_OP_GE, lf, dc_kir_const_f32(k, 0)));
    cmp = dc_kir_binary(k, DC_OP_ADD, cmp, dc_kir_binary(k, DC_OP_NE, la, dc_kir_const_i32(k, 1)));
    int fq = dc_kir_binary(k, DC_OP_ADD, dc_kir_cast(k, cmp, DC_F32), dc_kir_cast(k, q, DC_F32));
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, o, id, dc_kir_binary(k, DC_OP_MINIMUM, q, dc_kir_const_i32(k, 1 << 30)));
    dc_kir_store_add(k, of, id, fq);
    return (kcase){ .name = "i32_ops", .k = k, .lo = { -4, -2 }, .hi = { 4, 2 } };
}

TEST(llvm_kernels_vs_interpreter) {
    static const int64_t sizes[] = { 1, 15, 17, 33 };
    dc_jit_stats s0 = dc_jit_get_stats();
    double t0 = omp_get_wtime();
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t n = sizes[i];
        kcase cases[] = {
            ew_chain(3, n, false), ew_chain(3, n, true), ew_approx(n * 7), softmax(3, n, false),
            softmax(2, n, true), layer_norm(3, n), group_norm_silu(2, n, 12, 4), reduce_rows(3, n, 3),
            adamw(n * 5), i32_ops(n * 3), column_reduce(n, 3), column_reduce(7, n * 2), column_reduce(n, 40),
            group_norm_silu(3, n, 32, 8), group_norm_silu(2, n, 20, 5), group_norm_silu(2, n, 8, 8),
            group_norm_silu(1, n, 16, 8), norm_apply(3, n, 8, 4), norm_apply(2, n, 5, 2), norm_apply(2, n, 3, 1),
            lane_sums(3, n, 8, 4), lane_sums(2, n, 3, 5), lane_sums(2, n, 2, 3), lane_sums(2, 3, 1, n + 1),
            middle_sum(2, 3, n, 5), middle_sum(3, n, 2, 16),
            checked_loads(3, n, 5, 4, false), checked_loads(2, 3, n, 7, true), checked_loads(n, 1, 2, 3, true),
        };
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) run_case(&cases[c]);
    }
    kcase big[] = { group_norm_silu(2, 64, 64, 2), softmax(4, 1000, false), adamw(4099) };
    for (size_t c = 0; c < sizeof big / sizeof big[0]; c++) run_case(&big[c]);
    dc_jit_stats s = dc_jit_get_stats();
    int64_t compiled = s.compiled - s0.compiled;
    CHECK(compiled > 0);
    CHECK_EQ_INT(s.optimizer_runs - s0.optimizer_runs, compiled);
    printf("  llvm: %lld kernels compiled, %.1f ms each (codegen + O3 + emit), %.1f ms linking each;"
           " whole test %.2f s\n",
           (long long)compiled, (s.compile_ms - s0.compile_ms) / (double)compiled,
           (s.load_ms - s0.load_ms) / (double)compiled, omp_get_wtime() - t0);
}

/* ---- approximation errors ---------------------------------------------------------------- */

static double ulp_of(double v) {
    double a = fabs(v);
    if (a < 1.1754943508222875e-38) return 1.401298464324817e-45;
    return ldexp(1.0, ilogb(a) - 23);
}

static double gelu_d(double v) { return 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))); }
/* Compiles k for target t and runs it over [0, n) on args; false (a failed check) when it
 * does not compile. */
static bool run_on_target(const dc_kir *k, int t, void **args, int64_t n) {
    char msg[DC_ERR_LEN] = "";
    dc_jit_kernel *jk = dc_jit_compile(k, &targets[t], msg, sizeof msg);
    CHECK_MSG(jk, "%s", msg);
    if (!jk) return false;
    dc_jit_entry(jk)(args, 0, n);
    dc_jit_release(jk);
    return true;
}

static double sigmoid_d(double v) { return 1 / (1 + exp(-v)); }

/* Max error in ulp of each function over its range against double precision, for every
 * target; bounds are the measured maxima rounded up. gelu's error is in ulp of max(|gelu(x)|,
 * |x|): the formula of ops.def cancels in 1 + tanh(..) for x << 0, so any f32 evaluation
 * of it (libm's included) is off by a few ulp of 1 in the factor multiplying x there. */
TEST(llvm_vmath_error) {
    enum { N = 1 << 18, F = 6 };
    static const char *names[F] = { "exp", "log", "tanh", "sigmoid", "silu", "gelu" };
    static const double bound[F] = { 2, 2, 6, 3, 4, 4 };
    dc_kir *k = dc_kir_new(1, (int64_t[]){ N }, 0, NULL);
    int in[3], out[F];
    for (int i = 0; i < 3; i++) in[i] = dc_kir_buffer_add(k, DC_F32, N, false);
    for (int i = 0; i < F; i++) out[i] = dc_kir_buffer_add(k, DC_F32, N, true);
    dc_kir_map id = dc_kir_map_make(k, 0, (int64_t[]){ 1 }, NULL);
    int l0 = dc_kir_load(k, in[0], id), l1 = dc_kir_load(k, in[1], id), l2 = dc_kir_load(k, in[2], id);
    dc_kir_phase_begin(k, false);
    static const dc_op ops[F] = { DC_OP_EXP, DC_OP_LOG, DC_OP_TANH, DC_OP_SIGMOID, DC_OP_SILU, DC_OP_GELU };
    for (int i = 0; i < F; i++) dc_kir_store_add(k, out[i], id, dc_kir_unary(k, ops[i], i == 0 ? l0 : i == 1 ? l1 : l2));
    float *x0 = malloc(N * 4), *x1 = malloc(N * 4), *x2 = malloc(N * 4), *y[F];
    for (int i = 0; i < N; i++) {
        double u = (i + 0.5) / N;
        x0[i] = (float)(-103.0 + u * (88.72 + 103.0));               /* exp: to the subnormals */
        x1[i] = i % 2 ? (float)exp2(-149.0 + u * 277.0) : (float)(0.5 + u); /* log: all positive floats, and near 1 */
        x2[i] = (float)(i % 2 ? -20.0 + 40.0 * u : (u - 0.5) * 2.0);     /* tanh & co, and near 0 */
    }
    for (int i = 0; i < F; i++) y[i] = malloc(N * 4);
    void *args[3 + F] = { x0, x1, x2 };
    for (int i = 0; i < F; i++) args[3 + i] = y[i];
    for (int t = 0; t < NTARGETS; t++) {
        if (!run_on_target(k, t, args, N)) continue;
        double worst[F] = { 0 };
        for (int i = 0; i < N; i++) {
            double ref[F] = { exp(x0[i]), log(x1[i]), tanh(x2[i]), sigmoid_d(x2[i]),
                              x2[i] * sigmoid_d(x2[i]), gelu_d(x2[i]) };
            for (int f = 0; f < F; f++) {
                double r = ref[f];
                if (r > 3.4028234663852886e38) r = INFINITY;
                double scale = f == 5 && fabs(x2[i]) > fabs(r) ? fabs(x2[i]) : r;
                double e = isinf(r) && y[f][i] == r ? 0 : fabs(y[f][i] - r) / ulp_of(scale);
                if (!(e <= worst[f])) worst[f] = e;
            }
        }
        printf("  vmath x%-2d max error in ulp:", target_lanes[t]);
        for (int f = 0; f < F; f++) {
            printf(" %s %.2f", names[f], worst[f]);
            CHECK_MSG(worst[f] <= bound[f], "%s x%d: %.2f ulp > %.0f", names[f], target_lanes[t], worst[f], bound[f]);
        }
        printf("\n");
    }
    for (int i = 0; i < F; i++) free(y[i]);
    free(x0);
    free(x1);
    free(x2);
    dc_kir_free(k);
}

/* exp, sigmoid and silu where the polynomials stop: past the clamps, at the infinities and NaN,
 * against libm in double (sigmoid and silu under -87.3 flush to 0; the true values are below
 * 1.2e-38 there), on every target. */
TEST(llvm_vmath_edges) {
    static const float xs[] = { -INFINITY, -1000.0f, -104.0f, -103.5f, -100.0f, -88.0f, -87.4f, -87.2f, -86.0f,
                                -30.0f, -1e-30f, 0.0f, 1e-30f, 30.0f, 88.0f, 88.7f, 100.0f, INFINITY, NAN };
    enum { N = sizeof xs / sizeof xs[0], F = 3 };
    static const dc_op ops[F] = { DC_OP_EXP, DC_OP_SIGMOID, DC_OP_SILU };
    dc_kir *k = dc_kir_new(1, (int64_t[]){ N }, 0, NULL);
    int in = dc_kir_buffer_add(k, DC_F32, N, false), out[F];
    for (int f = 0; f < F; f++) out[f] = dc_kir_buffer_add(k, DC_F32, N, true);
    dc_kir_map id = dc_kir_map_make(k, 0, (int64_t[]){ 1 }, NULL);
    int l = dc_kir_load(k, in, id);
    dc_kir_phase_begin(k, false);
    for (int f = 0; f < F; f++) dc_kir_store_add(k, out[f], id, dc_kir_unary(k, ops[f], l));
    float y[F][N];
    void *args[1 + F] = { (void *)xs, y[0], y[1], y[2] };
    for (int t = 0; t < NTARGETS; t++) {
        if (!run_on_target(k, t, args, N)) continue;
        for (int i = 0; i < N; i++) {
            double x = xs[i], s = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
            double want[F] = { exp(x), s, x * s };
            if (x < -87.3) want[1] = 0, want[2] = x * 0.0;
            for (int f = 0; f < F; f++) {
                double w = want[f], g = y[f][i];
                bool ok = isnan(w) ? isnan(g) : isinf(w) || fabs(w) > 3.4e38 ? g == (w > 0 ? INFINITY : -INFINITY)
                                                                            : fabs(g - w) <= 4e-7 * fabs(w) + 1.5e-45;
                CHECK_MSG(ok, "target %d: %s(%g) = %g, want %g", t, dc_op_name(ops[f]), x, g, w);
            }
        }
    }
    dc_kir_free(k);
}

/* ---- cache, sharing, bad input, bandwidth ------------------------------------------------ */

/* out = x * s + 1 over n floats */
static dc_kir *scale_kernel(int64_t n, float s) {
    dc_kir *k = dc_kir_new(1, (int64_t[]){ n }, 0, NULL);
    int x = dc_kir_buffer_add(k, DC_F32, n, false);
    int y = dc_kir_buffer_add(k, DC_F32, n, true);
    dc_kir_map id = dc_kir_map_make(k, 0, (int64_t[]){ 1 }, NULL);
    int v = dc_kir_binary(k, DC_OP_ADD, dc_kir_binary(k, DC_OP_MUL, dc_kir_load(k, x, id), dc_kir_const_f32(k, s)),
                          dc_kir_const_f32(k, 1));
    dc_kir_phase_begin(k, false);
    dc_kir_store_add(k, y, id, v);
    return k;
}

TEST(llvm_cache_and_sharing) {
    char dir[] = "/tmp/disco-llvm-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *old = getenv("DISCO_CACHE_DIR") ? strdup(getenv("DISCO_CACHE_DIR")) : NULL;
    setenv("DISCO_CACHE_DIR", dir, 1);
    dc_kir *k = scale_kernel(100, 3.0f);
    char msg[DC_ERR_LEN] = "";
    dc_jit_stats s0 = dc_jit_get_stats();
    dc_jit_kernel *a = dc_jit_compile(k, NULL, msg, sizeof msg);
    CHECK_MSG(a, "%s", msg);
    dc_jit_kernel *b = dc_jit_compile(k, NULL, msg, sizeof msg); /* shared, still loaded */
    CHECK(a == b);
    dc_jit_stats s1 = dc_jit_get_stats();
    CHECK_EQ_INT(s1.compiled - s0.compiled, 1);
    CHECK_EQ_INT(s1.shared - s0.shared, 1);
    dc_jit_release(a);
    dc_jit_release(b);
    dc_jit_kernel *c = dc_jit_compile(k, NULL, msg, sizeof msg); /* from the disk cache */
    CHECK_MSG(c, "%s", msg);
    dc_jit_stats s2 = dc_jit_get_stats();
    CHECK_EQ_INT(s2.cache_loads - s1.cache_loads, 1);
    CHECK_EQ_INT(s2.optimizer_runs - s1.optimizer_runs, 0);
    CHECK_EQ_INT(s2.compiled - s1.compiled, 0);
    if (c) {
        float x[100], y[100];
        for (int i = 0; i < 100; i++) x[i] = (float)i;
        dc_jit_entry(c)((void *[]){ x, y }, 0, 100);
        for (int i = 0; i < 100; i++) CHECK(y[i] == (float)i * 3.0f + 1.0f);
    }
    dc_jit_release(c);
    /* another feature string is another key: compiled, not loaded */
    dc_jit_kernel *d = dc_jit_compile(k, &(dc_jit_options){ .features = "-avx512f" }, msg, sizeof msg);
    CHECK(d && dc_jit_get_stats().compiled == s2.compiled + 1);
    dc_jit_release(d);
    dc_kir_free(k);
    char err[DC_ERR_LEN];
    CHECK(dc_kcache_clear(err, sizeof err));
    rmdir(dir);
    if (old) setenv("DISCO_CACHE_DIR", old, 1);
    else unsetenv("DISCO_CACHE_DIR");
    free(old);
}

TEST(llvm_bad_kernels) {
    char msg[DC_ERR_LEN] = "";
    dc_kir *k = dc_kir_new(1, (int64_t[]){ 4 }, 0, NULL);
    CHECK(dc_jit_compile(k, NULL, msg, sizeof msg) == NULL); /* no phases */
    CHECK(strstr(msg, "phases") != NULL);
    dc_kir_load(k, 3, dc_kir_map_make(k, 0, NULL, NULL));
    CHECK(dc_jit_compile(k, NULL, msg, sizeof msg) == NULL); /* an error */
    CHECK(strstr(msg, "invalid kernel") != NULL);
    dc_kir_free(k);
}

/* y = x * 3 + 1 over 2^24 floats on the OpenMP threads, as the runtime splits ranges, next
 * to memcpy of the same bytes: bandwidth printed (a benchmark, not a check), values checked. */
TEST(llvm_bandwidth) {
    const int64_t n = 1 << 24;
    dc_kir *k = scale_kernel(n, 3.0f);
    char msg[DC_ERR_LEN] = "";
    dc_jit_kernel *jk = dc_jit_compile(k, &targets[0], msg, sizeof msg);
    CHECK_MSG(jk, "%s", msg);
    float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(i & 1023);
    double best_k = 1e9, best_m = 1e9;
    for (int rep = 0; rep < 5 && jk; rep++) {
        double t0 = omp_get_wtime();
#pragma omp parallel
        {
            int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
            int64_t b = n * t / nt, e = n * (t + 1) / nt;
            dc_jit_entry(jk)((void *[]){ x, y }, b, e);
        }
        double t1 = omp_get_wtime();
#pragma omp parallel
        {
            int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
            int64_t b = n * t / nt, e = n * (t + 1) / nt;
            memcpy(y + b, x + b, (size_t)(e - b) * 4);
        }
        double t2 = omp_get_wtime();
        if (t1 - t0 < best_k) best_k = t1 - t0;
        if (t2 - t1 < best_m) best_m = t2 - t1;
    }
    if (jk) {
        dc_jit_entry(jk)((void *[]){ x, y }, 0, n);
        int bad = 0;
        for (int64_t i = 0; i < n && !bad; i++) bad = y[i] != x[i] * 3.0f + 1.0f;
        CHECK(!bad);
        double gb = 2.0 * (double)n * 4 / 1e9;
        printf("  llvm bandwidth (%d threads): kernel %.1f GB/s, memcpy %.1f GB/s (read + write)\n",
               omp_get_max_threads(), gb / best_k, gb / best_m);
    }
    dc_jit_release(jk);
    free(x);
    free(y);
    dc_kir_free(k);
}
