/* test_gemm.c — the JIT GEMM (codegen/llvm/gemm.c, codegen/lower_gemm.c) against oracles.
 *
 * gemm_space: every tile of the tuner's space on both vector widths, and every value of every
 * other parameter the tuner may choose, each kernel on random small shapes (sizes of 1, odd
 * sizes, sizes that are no multiple of the lanes or of any tile or block, K longer than kc so
 * the passes over K add up, two batches sharing or not sharing B) with trans_a / trans_b and
 * an epilogue (bias, activation, residual, scale) cycled so every combination occurs. The
 * oracle is the product in double with the epilogue in double; an element passes when
 *     |got - ref| <= 4 u ((K + 2) S + 4 (|ref| + |residual|)),   u = 2^-24,
 * S = |scale| sum_k |a_ik b_kj| + |bias_j|: the forward error bound of an f32 dot product of
 * K terms (K u S), doubled, plus a few ulps for the activation's polynomial.
 * gemm_lowering: matmul (broadcast batch dims, transposes), linear, fused_matmul and the
 * convolutions (conv2d, fused_conv2d, conv2d_bwd_data, conv2d_bwd_weight: 3x3 and 1x1, stride
 * 1 and 2, padding) compiled under the jit backend run as GEMM steps and agree with the ref
 * backend within the same bound, and two runs with 1 and 2 threads agree bit for bit.
 * gemm_conv_space: every tile of the tuning space and every value of the other parameters on
 * each convolution kind, against ref.
 * gemm_spec_refused: specs outside what the emitter builds are refused with a reason. */
#include "tests/test.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "codegen/codegen.h"
#include "tests/op_util.h"
#include "runtime/runtime.h"

#define U 5.9604644775390625e-8 /* 2^-24 */

typedef struct {
    int64_t batch, M, N, K;
    bool trans_b, shared_b;
    float scale;
} gshape;

static float uniform(uint64_t seed, uint64_t stream, int64_t i) {
    return 2.0f * dc_rng_uniform01(seed, stream, (uint64_t)i) - 1.0f;
}

static float *floats(int64_t n, uint64_t seed, uint64_t stream) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++) p[i] = uniform(seed, stream, i);
    return p;
}

static double act_ref(dc_activation a, double x) {
    switch (a) {
    case DC_ACTIVATION_RELU: return x < 0 ? 0 : x;
    case DC_ACTIVATION_GELU: return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case DC_ACTIVATION_SILU: return x / (1 + exp(-x));
    default: return x;
    }
}

/* Runs spec's kernel on shape h (inputs from seed) and checks every element against the
 * double oracle; false and the first failure in msg. */
static bool check_kernel(const dc_gemm_spec *spec, gshape h, uint64_t seed, char *msg, size_t len) {
    char err[DC_ERR_LEN];
    dc_jit_kernel *jk = dc_jit_compile_gemm(spec, NULL, err, sizeof err);
    if (!jk) return snprintf(msg, len, "compile: %.400s", err), false;
    int64_t M = h.M, N = h.N, K = h.K, nb = h.shared_b ? 1 : h.batch;
    float *a = floats(h.batch * M * K, seed, 1), *b = floats(nb * K * N, seed, 2), *bias = floats(N, seed, 3);
    float *res = floats(h.batch * M * N, seed, 4), *out = floats(h.batch * M * N, seed, 5);
    int64_t ps = dc_gemm_packed_size(spec, N, K), panels = (N + spec->nr - 1) / spec->nr;
    float *packed = malloc((size_t)(nb * ps) * sizeof *packed);
    for (int64_t i = 0; i < nb; i++)
        dc_gemm_pack_b(spec, b + i * K * N, h.trans_b, h.trans_b ? K : N, N, K, 0, panels, packed + i * ps);
    int64_t a_off[4], b_off[4];
    for (int64_t i = 0; i < h.batch; i++) a_off[i] = i * M * K, b_off[i] = h.shared_b ? 0 : i * ps;
    dc_gemm_sizes sz = dc_gemm_sizes_of(spec, M, N, K, spec->trans_a ? M : K, h.scale);
    int64_t range = h.batch * dc_gemm_items(&sz), per = dc_gemm_scratch_size(spec);
    float *scratch = malloc((size_t)(2 * per) * sizeof *scratch);
    dc_range_kernel fn = dc_jit_entry(jk);
    #pragma omp parallel num_threads(2)
    {
        int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        void *args[9] = { &sz, a, a_off, packed, b_off, out, spec->bias ? bias : NULL, spec->residual ? res : NULL,
                          scratch + t * per };
        if (range * t / nt < range * (t + 1) / nt) fn(args, range * t / nt, range * (t + 1) / nt);
    }
    bool ok = true;
    for (int64_t p = 0; p < h.batch && ok; p++)
        for (int64_t i = 0; i < M && ok; i++)
            for (int64_t j = 0; j < N && ok; j++) {
                const float *ap = a + p * M * K, *bp = b + (h.shared_b ? 0 : p) * K * N;
                double y = 0, s = 0;
                for (int64_t k = 0; k < K; k++) {
                    double x = (double)(spec->trans_a ? ap[k * M + i] : ap[i * K + k]) *
                               (double)(h.trans_b ? bp[j * K + k] : bp[k * N + j]);
                    y += x;
                    s += fabs(x);
                }
                double r = act_ref(spec->act, h.scale * y + (spec->bias ? bias[j] : 0.0));
                double rv = spec->residual ? res[(p * M + i) * N + j] : 0.0;
                r += rv;
                s = fabs(h.scale) * s + (spec->bias ? fabs(bias[j]) : 0.0);
                double got = out[(p * M + i) * N + j];
                double tol = 4 * U * ((double)(K + 2) * s + 4 * (fabs(r) + fabs(rv)));
                if (!(fabs(got - r) <= tol)) {
                    char text[256];
                    dc_gemm_spec_text(spec, text, sizeof text);
                    snprintf(msg, len, "%s, batch %lld M %lld N %lld K %lld trans_b %d shared_b %d: [%lld,%lld,%lld] = %.9g, "
                             "expected %.9g (tolerance %.3g)", text, (long long)h.batch, (long long)M, (long long)N,
                             (long long)K, h.trans_b, h.shared_b, (long long)p, (long long)i, (long long)j, got, r, tol);
                    ok = false;
                }
            }
    free(a), free(b), free(bias), free(res), free(out), free(packed), free(scratch);
    dc_jit_release(jk);
    return ok;
}

static const int64_t SIZES_M[] = { 1, 2, 7, 13, 29, 33, 64, 100 };
static const int64_t SIZES_N[] = { 1, 3, 8, 16, 17, 31, 48, 65, 130 };
static const int64_t SIZES_K[] = { 1, 5, 16, 33, 70, 300 };
#define PICK(arr, r) arr[(r) % (sizeof arr / sizeof arr[0])]

/* three random shapes for kernel number i */
static bool check_spec(dc_gemm_spec spec, int i, int *cases) {
    static const dc_activation acts[] = { DC_ACTIVATION_NONE, DC_ACTIVATION_RELU, DC_ACTIVATION_GELU, DC_ACTIVATION_SILU };
    spec.act = acts[i % 4];
    spec.bias = i / 4 % 2;
    spec.residual = i / 8 % 2;
    spec.trans_a = i / 16 % 2 ^ i % 2;
    for (int c = 0; c < 3; c++) {
        uint64_t r = dc_rng_u32(77, (uint64_t)i, (uint64_t)c);
        gshape h = { .batch = 1 + (int64_t)(r >> 20) % 3, .M = PICK(SIZES_M, r), .N = PICK(SIZES_N, r >> 4),
                     .K = PICK(SIZES_K, r >> 8), .trans_b = (r >> 12) & 1, .shared_b = (r >> 13) & 1,
                     .scale = (r >> 14) & 1 ? 1.0f : -0.75f };
        char msg[512];
        (*cases)++;
        if (!check_kernel(&spec, h, 1000 + (uint64_t)i * 3 + (uint64_t)c, msg, sizeof msg)) {
            CHECK_MSG(false, "%s", msg);
            return false;
        }
    }
    return true;
}

TEST(gemm_space) {
    const dc_gemm_space *sp = &dc_gemm_tuning_space;
    int target = dc_jit_target_lanes(NULL), i = 0, cases = 0;
    if (target < 8) {
        printf("gemm_space: skipped, the target has no AVX2\n");
        return;
    }
    for (int l = 0; l < sp->n_lanes; l++)
        for (int t = 0; t < sp->n_tiles; t++)
            if (sp->lanes[l] <= target) {
                check_spec(dc_gemm_spec_of(t, sp->lanes[l], 64, 32, 64, 2, 0, i % 2), i, &cases);
                i++;
            }
    int lanes = target >= 16 ? 16 : 8;
    /* each other parameter's values, on tiles taken in turn */
    for (int k = 0; k < sp->n_kc; k++, i++) check_spec(dc_gemm_spec_of(i % sp->n_tiles, lanes, sp->kc[k], 64, 256, 4, 0, i % 2), i, &cases);
    for (int k = 0; k < sp->n_mc; k++, i++) check_spec(dc_gemm_spec_of(i % sp->n_tiles, lanes, 64, sp->mc[k], 256, 4, 0, i % 2), i, &cases);
    for (int k = 0; k < sp->n_nc; k++, i++) check_spec(dc_gemm_spec_of(i % sp->n_tiles, lanes, 64, 64, sp->nc[k], 4, 0, i % 2), i, &cases);
    for (int k = 0; k < sp->n_unroll; k++, i++)
        check_spec(dc_gemm_spec_of(i % sp->n_tiles, lanes, 64, 64, 256, sp->unroll[k], 0, i % 2), i, &cases);
    for (int k = 0; k < sp->n_prefetch; k++, i++)
        check_spec(dc_gemm_spec_of(i % sp->n_tiles, lanes, 64, 64, 256, 4, sp->prefetch[k], i % 2), i, &cases);
    for (int k = 0; k < sp->n_pack_a; k++, i++)
        check_spec(dc_gemm_spec_of(i % sp->n_tiles, lanes, 64, 64, 256, 4, 0, sp->pack_a[k]), i, &cases);
    printf("gemm_space: %d kernels, %d shapes checked against the double oracle\n", i, cases);
}

TEST(gemm_spec_refused) {
    dc_gemm_spec ok = dc_gemm_spec_of(0, 16, 64, 64, 256, 4, 0, true);
    char why[256];
    CHECK(dc_gemm_spec_ok(&ok, 16, why, sizeof why));
    struct { const char *what; dc_gemm_spec s; int lanes; const char *says; } bad[] = {
        { "lanes 4", { .mr = 4, .nr = 16, .kc = 64, .mc = 64, .nc = 64, .unroll = 1, .lanes = 4 }, 16, "lanes must be 8 or 16" },
        { "16 lanes on AVX2", ok, 8, "fewer vector lanes" },
        { "nr not a vector multiple", { .mr = 4, .nr = 24, .kc = 64, .mc = 64, .nc = 48, .unroll = 1, .lanes = 16 }, 16, "nr must be" },
        { "too many registers", { .mr = 8, .nr = 64, .kc = 64, .mc = 64, .nc = 64, .unroll = 1, .lanes = 16 }, 16, "32 vector registers" },
        { "mc not a multiple of mr", { .mr = 6, .nr = 16, .kc = 64, .mc = 64, .nc = 64, .unroll = 1, .lanes = 16 }, 16, "mc must be" },
        { "nc not a multiple of nr", { .mr = 4, .nr = 32, .kc = 64, .mc = 64, .nc = 48, .unroll = 1, .lanes = 16 }, 16, "nc must be" },
        { "unroll 0", { .mr = 4, .nr = 16, .kc = 64, .mc = 64, .nc = 64, .unroll = 0, .lanes = 16 }, 16, "unroll" },
        { "kc 0", { .mr = 4, .nr = 16, .kc = 0, .mc = 64, .nc = 64, .unroll = 1, .lanes = 16 }, 16, "kc" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = 0;
        CHECK_MSG(!dc_gemm_spec_ok(&bad[i].s, bad[i].lanes, why, sizeof why) && strstr(why, bad[i].says),
                  "%s: '%s'", bad[i].what, why);
        char err[256] = "";
        if (bad[i].lanes == 16 && dc_jit_target_lanes(NULL) == 16)
            CHECK_MSG(!dc_jit_compile_gemm(&bad[i].s, NULL, err, sizeof err) && strstr(err, bad[i].says), "%s: '%s'",
                      bad[i].what, err);
    }
}

/* ---- lowering ---------------------------------------------------------------------------- */

static const char *const LOWERING[] = {
    "graph @t(%a: f32[2,3,5,7], %b: f32[3,7,4]) -> (f32[2,3,5,4]) {\n"
    "  %0 = matmul %a, %b {trans_a=false, trans_b=false} : f32[2,3,5,4]\n  return %0\n}\n",
    "graph @t(%a: f32[3,1,9,5], %b: f32[2,17,9]) -> (f32[3,2,5,17]) {\n"
    "  %0 = matmul %a, %b {trans_a=true, trans_b=true} : f32[3,2,5,17]\n  return %0\n}\n",
    "graph @t(%a: f32[4,11,33], %b: f32[33,20]) -> (f32[4,11,20]) {\n"
    "  %0 = matmul %a, %b {trans_a=false, trans_b=false} : f32[4,11,20]\n  return %0\n}\n",
    "graph @t(%x: f32[6,13,24], %w: f32[24,40], %c: f32[40]) -> (f32[6,13,40]) {\n"
    "  %0 = linear %x, %w, %c : f32[6,13,40]\n  return %0\n}\n",
    "graph @t(%a: f32[70,300], %b: f32[130,300], %c: f32[130], %r: f32[70,130]) -> (f32[70,130]) {\n"
    "  %0 = fused_matmul %a, %b, %c, %r {trans_a=false, trans_b=true, act=gelu, bias=true, residual=true, result=0} : f32[70,130]\n"
    "  return %0\n}\n",
    "graph @t(%a: f32[2,40,3], %b: f32[2,40,16], %r: f32[2,3,16]) -> (f32[2,3,16]) {\n"
    "  %0 = fused_matmul %a, %b, %r {trans_a=true, trans_b=false, act=silu, bias=false, residual=true, result=0} : f32[2,3,16]\n"
    "  return %0\n}\n",
    /* fused contractions that keep their pre-activation (result 1): one kernel stores both */
    "graph @t(%a: f32[70,300], %b: f32[130,300], %c: f32[130], %r: f32[70,130]) -> (f32[70,130], f32[70,130]) {\n"
    "  %0 = fused_matmul %a, %b, %c, %r {trans_a=false, trans_b=true, act=gelu, bias=true, residual=true, result=0} : f32[70,130]\n"
    "  %1 = fused_matmul %a, %b, %c, %r {trans_a=false, trans_b=true, act=gelu, bias=true, residual=true, result=1} : f32[70,130]\n"
    "  return %0, %1\n}\n",
    "graph @t(%x: f32[2,7,9,5], %w: f32[3,3,5,11], %b: f32[11]) -> (f32[2,7,9,11], f32[2,7,9,11]) {\n"
    "  %0 = fused_conv2d %x, %w, %b {stride=[1,1], pad=[1,1], groups=1, act=silu, bias=true, residual=false, result=0} : "
    "f32[2,7,9,11]\n"
    "  %1 = fused_conv2d %x, %w, %b {stride=[1,1], pad=[1,1], groups=1, act=silu, bias=true, residual=false, result=1} : "
    "f32[2,7,9,11]\n  return %0, %1\n}\n",
    "graph @t(%x: f32[2,9,8,3], %w: f32[3,3,3,17]) -> (f32[2,5,4,17]) {\n"
    "  %0 = fused_conv2d %x, %w {stride=[2,2], pad=[1,1], groups=1, act=relu, bias=false, residual=false, result=1} : "
    "f32[2,5,4,17]\n  return %0\n}\n",
    /* convolutions: 3x3 and 1x1, stride 1 and 2, padding, channels no multiple of the lanes */
    "graph @t(%x: f32[2,7,9,5], %w: f32[3,3,5,11]) -> (f32[2,7,9,11]) {\n"
    "  %0 = conv2d %x, %w {stride=[1,1], pad=[1,1], groups=1} : f32[2,7,9,11]\n  return %0\n}\n",
    "graph @t(%x: f32[2,9,8,3], %w: f32[3,3,3,17]) -> (f32[2,5,4,17]) {\n"
    "  %0 = conv2d %x, %w {stride=[2,2], pad=[1,1], groups=1} : f32[2,5,4,17]\n  return %0\n}\n",
    "graph @t(%x: f32[3,6,6,20], %w: f32[1,1,20,8], %b: f32[8], %r: f32[3,6,6,8]) -> (f32[3,6,6,8]) {\n"
    "  %0 = fused_conv2d %x, %w, %b, %r {stride=[1,1], pad=[0,0], groups=1, act=silu, bias=true, residual=true, result=0} : "
    "f32[3,6,6,8]\n  return %0\n}\n",
    "graph @t(%x: f32[2,8,8,4], %w: f32[3,3,4,6], %b: f32[6]) -> (f32[2,4,4,6]) {\n"
    "  %0 = fused_conv2d %x, %w, %b {stride=[2,2], pad=[1,1], groups=1, act=relu, bias=true, residual=false, result=0} : "
    "f32[2,4,4,6]\n  return %0\n}\n",
    "graph @t(%dy: f32[2,7,9,11], %w: f32[3,3,5,11]) -> (f32[2,7,9,5]) {\n"
    "  %0 = conv2d_bwd_data %dy, %w {stride=[1,1], pad=[1,1], groups=1} : f32[2,7,9,5]\n  return %0\n}\n",
    "graph @t(%dy: f32[2,5,4,17], %w: f32[3,3,3,17]) -> (f32[2,9,8,3]) {\n"
    "  %0 = conv2d_bwd_data %dy, %w {stride=[2,2], pad=[1,1], groups=1} : f32[2,9,8,3]\n  return %0\n}\n",
    "graph @t(%dy: f32[3,6,6,8], %w: f32[1,1,20,8]) -> (f32[3,6,6,20]) {\n"
    "  %0 = conv2d_bwd_data %dy, %w {stride=[1,1], pad=[0,0], groups=1} : f32[3,6,6,20]\n  return %0\n}\n",
    "graph @t(%x: f32[2,7,9,5], %dy: f32[2,7,9,11]) -> (f32[3,3,5,11]) {\n"
    "  %0 = conv2d_bwd_weight %x, %dy {stride=[1,1], pad=[1,1], groups=1} : f32[3,3,5,11]\n  return %0\n}\n",
    "graph @t(%x: f32[2,9,8,3], %dy: f32[2,5,4,17]) -> (f32[3,3,3,17]) {\n"
    "  %0 = conv2d_bwd_weight %x, %dy {stride=[2,2], pad=[1,1], groups=1} : f32[3,3,3,17]\n  return %0\n}\n",
    "graph @t(%x: f32[3,6,6,20], %dy: f32[3,6,6,8]) -> (f32[1,1,20,8]) {\n"
    "  %0 = conv2d_bwd_weight %x, %dy {stride=[1,1], pad=[0,0], groups=1} : f32[1,1,20,8]\n  return %0\n}\n",
};

/* the reduction length of node n's contraction (the oracle's error bound grows with it) */
static int64_t reduction_length(const dc_graph *g, const dc_node *n) {
    const dc_shape *a = &g->nodes[n->in[0]].type.shape, *b = &g->nodes[n->in[1]].type.shape;
    switch (n->op) {
    case DC_OP_MATMUL: return a->dim[n->attr.matmul.trans_a ? a->rank - 2 : a->rank - 1];
    case DC_OP_FUSED_MATMUL: return a->dim[n->attr.fused_matmul.trans_a ? a->rank - 2 : a->rank - 1];
    case DC_OP_LINEAR: return a->dim[a->rank - 1];
    case DC_OP_CONV2D:
    case DC_OP_FUSED_CONV2D: return b->dim[0] * b->dim[1] * b->dim[2];
    case DC_OP_CONV2D_BWD_DATA: return b->dim[0] * b->dim[1] * b->dim[3];
    default: return a->dim[0] * b->dim[1] * b->dim[2]; /* bwd_weight: N * OH * OW */
    }
}

static const char *fixed_choice(void *ctx, const char *signature) {
    (void)signature;
    return ctx;
}

/* the program of g under backend (with every contraction on choice when it is not NULL) with
 * inputs from seed 3, run once with `threads` threads */
static dc_exec *run_choice(const dc_graph *g, dc_backend backend, const char *choice, int threads) {
    char err[DC_ERR_LEN];
    dc_exec *e = dc_compile_choosing(g, 0, backend, choice ? fixed_choice : NULL, (void *)choice, NULL, err, sizeof err);
    CHECK_MSG(e != NULL, "compile: %s", err);
    if (!e) return NULL;
    CHECK(tu_set_uniform_inputs(e, g, 3));
    int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    CHECK_MSG(dc_exec_run(e, err, sizeof err), "run: %s", err);
    omp_set_num_threads(before);
    return e;
}

static dc_exec *run_graph(const dc_graph *g, dc_backend backend, int threads) {
    return run_choice(g, backend, NULL, threads);
}

/* Whether out's elements are within the GEMM's error bound of ref's (K the reduction length);
 * the first failure is reported with what. */
static bool close_to_ref(const dc_tensor *out, const dc_tensor *ref, int64_t K, const char *what) {
    int64_t total = dc_numel(&ref->type.shape);
    double rms = 0;
    for (int64_t k = 0; k < total; k++) rms += tu_get(ref, k) * tu_get(ref, k);
    rms = sqrt(rms / (double)total);
    for (int64_t k = 0; k < total; k++) {
        /* inputs in [-1, 1]: sum |a b| <= K, and the epilogue's terms are O(1) */
        double tol = 4 * U * ((double)(K + 2) * (double)K + 4 * (fabs(tu_get(ref, k)) + rms + 1));
        if (!(fabs(tu_get(out, k) - tu_get(ref, k)) <= tol)) {
            CHECK_MSG(false, "%s: element %lld = %.9g, expected %.9g", what, (long long)k, tu_get(out, k), tu_get(ref, k));
            return false;
        }
    }
    return true;
}

TEST(gemm_lowering) {
    if (dc_jit_target_lanes(NULL) < 8) return;
    for (size_t c = 0; c < sizeof LOWERING / sizeof LOWERING[0]; c++) {
        char err[DC_ERR_LEN];
        dc_graph *g = dc_parse(LOWERING[c], strlen(LOWERING[c]), "gemm_lowering", err, sizeof err);
        CHECK_MSG(g != NULL, "case %zu: %s", c, err);
        if (!g) continue;
        dc_exec *ref = run_graph(g, DC_BACKEND_REF, 2), *jit = run_graph(g, DC_BACKEND_JIT, 2);
        dc_exec *one = run_graph(g, DC_BACKEND_JIT, 1);
        if (ref && jit && one) {
            int ns;
            const dc_step *st = dc_exec_steps(jit, &ns);
            CHECK_MSG(ns == 1 && strncmp(st[0].impl, "gemm ", 5) == 0, "case %zu: step impl '%s'", c, st[0].impl);
            int64_t K = reduction_length(g, &g->nodes[g->n_nodes - 1]);
            for (int k = 0; k < g->n_outputs; k++) {
                const dc_tensor *r = dc_exec_output(ref, k), *j = dc_exec_output(jit, k), *o = dc_exec_output(one, k);
                int64_t total = dc_numel(&r->type.shape);
                char what[32];
                snprintf(what, sizeof what, "case %zu output %d", c, k);
                close_to_ref(j, r, K, what);
                CHECK_MSG(memcmp(j->data, o->data, (size_t)total * sizeof(float)) == 0,
                          "case %zu output %d: 1 and 2 threads differ", c, k);
            }
        }
        dc_exec_free(ref), dc_exec_free(jit), dc_exec_free(one);
        dc_graph_free(g);
    }
}

/* Convolutions wide enough for slabs of every tile to lie on one grid row inside the input,
 * so the direct (read in place) path runs next to the packed one at the edges. */
static const char *const CONVS[] = {
    "graph @t(%x: f32[2,5,40,6], %w: f32[3,3,6,9]) -> (f32[2,5,40,9]) {\n"
    "  %0 = conv2d %x, %w {stride=[1,1], pad=[1,1], groups=1} : f32[2,5,40,9]\n  return %0\n}\n",
    "graph @t(%dy: f32[1,3,31,17], %w: f32[3,3,3,17]) -> (f32[1,6,61,3]) {\n"
    "  %0 = conv2d_bwd_data %dy, %w {stride=[2,2], pad=[1,1], groups=1} : f32[1,6,61,3]\n  return %0\n}\n",
    "graph @t(%x: f32[1,6,61,3], %w: f32[3,3,3,17]) -> (f32[1,3,31,17]) {\n"
    "  %0 = conv2d %x, %w {stride=[2,2], pad=[1,1], groups=1} : f32[1,3,31,17]\n  return %0\n}\n",
    "graph @t(%dy: f32[2,5,40,9], %w: f32[3,3,6,9]) -> (f32[2,5,40,6]) {\n"
    "  %0 = conv2d_bwd_data %dy, %w {stride=[1,1], pad=[1,1], groups=1} : f32[2,5,40,6]\n  return %0\n}\n",
    "graph @t(%x: f32[1,6,61,3], %dy: f32[1,3,31,17]) -> (f32[3,3,3,17]) {\n"
    "  %0 = conv2d_bwd_weight %x, %dy {stride=[2,2], pad=[1,1], groups=1} : f32[3,3,3,17]\n  return %0\n}\n",
};

/* Every tile of the tuning space on forward and backward-data convolutions at strides 1 and 2
 * and a backward-weight one (padding, odd channels), read in place (pack_a 0: a direct
 * convolution where the kind allows) and packed in turn, and every value of each other
 * parameter on the first two; each against ref. */
TEST(gemm_conv_space) {
    int target = dc_jit_target_lanes(NULL);
    if (target < 8) return;
    const dc_gemm_space *sp = &dc_gemm_tuning_space;
    int kernels = 0;
    for (size_t i = 0; i < sizeof CONVS / sizeof *CONVS; i++) {
        char err[DC_ERR_LEN];
        dc_graph *g = dc_parse(CONVS[i], strlen(CONVS[i]), "gemm_conv_space", err, sizeof err);
        CHECK_MSG(g != NULL, "%s", err);
        if (!g) continue;
        dc_exec *ref = run_graph(g, DC_BACKEND_REF, 2);
        int64_t K = reduction_length(g, &g->nodes[g->n_nodes - 1]);
        dc_gemm_spec specs[64];
        int n = 0;
        for (int t = 0; t < sp->n_tiles; t++) {
            int l = sp->lanes[(t + (int)i) % sp->n_lanes] <= target ? sp->lanes[(t + (int)i) % sp->n_lanes] : 8;
            specs[n++] = dc_gemm_spec_of(t, l, 64, 32, 64, 2, 0, (t + (int)i) % 2);
        }
        int lanes = target >= 16 ? 16 : 8, t = (int)i;
        for (int k = 0; i < 2 && k < sp->n_kc; k++, t++)
            specs[n++] = dc_gemm_spec_of(t % sp->n_tiles, lanes, sp->kc[k], 64, 256, 4, 0, t % 2);
        for (int k = 0; i < 2 && k < sp->n_mc; k++, t++)
            specs[n++] = dc_gemm_spec_of(t % sp->n_tiles, lanes, 64, sp->mc[k], 256, 4, 0, t % 2);
        for (int k = 0; i < 2 && k < sp->n_nc; k++, t++)
            specs[n++] = dc_gemm_spec_of(t % sp->n_tiles, lanes, 64, 64, sp->nc[k], 4, 0, t % 2);
        for (int k = 0; i < 2 && k < sp->n_unroll; k++, t++)
            specs[n++] = dc_gemm_spec_of(t % sp->n_tiles, lanes, 64, 64, 256, sp->unroll[k], 0, t % 2);
        for (int k = 0; i < 2 && k < sp->n_prefetch; k++, t++)
            specs[n++] = dc_gemm_spec_of(t % sp->n_tiles, lanes, 64, 64, 256, 4, sp->prefetch[k], t % 2);
        for (int k = 0; ref && k < n; k++) {
            char choice[200], what[300];
            dc_gemm_choice_text(&specs[k], choice, sizeof choice);
            dc_exec *e = run_choice(g, DC_BACKEND_AUTO, choice, 2);
            if (!e) continue;
            int ns;
            const dc_step *st = dc_exec_steps(e, &ns);
            snprintf(what, sizeof what, "%s, %s", dc_op_name(g->nodes[g->n_nodes - 1].op), choice);
            CHECK_MSG(ns == 1 && strncmp(st[0].impl, "gemm ", 5) == 0, "%s: step '%s' (%s)", what, st[0].impl, st[0].note);
            close_to_ref(dc_exec_output(e, 0), dc_exec_output(ref, 0), K, what);
            dc_exec_free(e);
            kernels++;
        }
        dc_exec_free(ref);
        dc_graph_free(g);
    }
    printf("gemm_conv_space: %d convolution kernels checked against ref\n", kernels);
}
