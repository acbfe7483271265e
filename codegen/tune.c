/* tune.c — the tuner (`disco tune`) and what compiling needs of it: the signatures a
 * contraction's, an attention's and a loop kernel's choice is keyed by, the choice strings, the
 * default rule for a contraction without a tuned choice, and the process's tuning database.
 *
 * For each distinct contraction of a graph without an entry in the database, the tuner builds
 * a one-node program per candidate (oneDNN, ref, and for the GEMM ops jit kernels from the
 * tuning space, dc_gemm_tuning_space), runs each on random inputs and keeps medians of
 * repeated runs (one warm-up run first: oneDNN builds its primitive, caches warm up):
 *   0. oneDNN and the default jit kernel: when the jit kernel is more than 3x slower, the jit
 *      search is pruned (no tile closes such a gap; the im2col packing of today's implicit-GEMM
 *      convolutions makes them 5-20x slower than oneDNN's);
 *   1. successive halving over one jit GEMM kernel per tile and vector width (a convolution's
 *      being an implicit GEMM)
 *      (tiles wider than N pruned): each round times every survivor with twice the runs of
 *      the round before and keeps the faster half;
 *   2. coordinate descent from the best jit kernel over kc, mc, nc, unroll, prefetch and
 *      pack_a: each value of one parameter in turn, a change kept when it is faster by more
 *      than the tolerance band;
 *   3. the finalists timed alike: oneDNN, ref when the node is small, the best jit kernel;
 *   4. the incumbent, the default rule's choice, against the fastest: the incumbent stays
 *      unless the other is faster by more than 3%, so winners do not flip between runs.
 * An attention computation (its result nodes, one flash step) is tuned alike over the flash
 * kernel's block sizes (tune_attention). Then the loop kernels, whose one choice is whether
 * they split over the threads, are timed in the whole program compiled with those choices
 * (tune_loops). Nothing is timed outside dc_tune_graph; compiling reads the database only, so runs with
 * the same database are bitwise identical. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "oneapi/dnnl/dnnl_version.h"
#include "runtime/runtime.h"

#define TOLERANCE 0.03 /* a challenger must be this much faster to replace the incumbent */
#define MIN_RUN_SECONDS 0.002 /* a timing covers at least this long (runs repeated) */
#define PRUNE 3.0 /* no jit search where the default jit kernel is this many times slower than oneDNN */

/* ---- signatures and choices ----------------------------------------------------------------- */

static bool tunable(const dc_node *n) {
    switch (n->op) {
    case DC_OP_MATMUL:
    case DC_OP_LINEAR:
    case DC_OP_FUSED_MATMUL:
    case DC_OP_CONV2D:
    case DC_OP_CONV2D_BWD_DATA:
    case DC_OP_CONV2D_BWD_WEIGHT:
    case DC_OP_FUSED_CONV2D:
    case DC_OP_ATTENTION:
    case DC_OP_ATTENTION_BWD:
        return true;
    default:
        return false;
    }
}

bool dc_tune_signature(const dc_graph *g, int node, char *buf, size_t len) {
    const dc_node *n = &g->nodes[node];
    if (!tunable(n)) return false;
    dc_strbuf s = { 0 };
    dc_sb_printf(&s, "%s", dc_op_name(n->op));
    for (int k = 0; k < n->n_in; k++) dc_sb_printf(&s, "%s%s", k ? ", " : " ", dc_type_s(&g->nodes[n->in[k]].type).s);
    dc_sb_printf(&s, " -> %s", dc_type_s(&n->type).s);
    dc_sb_attrs(&s, n);
    int results = dc_results_last(g, node) - node + 1;
    if (results > 1) dc_sb_printf(&s, " results=%d", results);
    dc_sb_printf(&s, " threads=%d onednn=%d.%d.%d", omp_get_max_threads(), DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR,
                 DNNL_VERSION_PATCH);
    bool fits = s.len < len;
    if (fits) memcpy(buf, s.buf, s.len + 1);
    free(s.buf);
    return fits;
}

bool dc_tune_loop_signature(const dc_step *s, char *buf, size_t len) {
    if (!s->kernel || s->range <= 1) return false;
    int n = snprintf(buf, len, "loop %s range=%lld work=%lld threads=%d", s->impl, (long long)s->range,
                     (long long)s->work, omp_get_max_threads());
    return n >= 0 && (size_t)n < len;
}

dc_split_mode dc_tune_loop_choice(const char *choice) {
    if (choice && strcmp(choice, "loop split") == 0) return DC_SPLIT_ALWAYS;
    if (choice && strcmp(choice, "loop serial") == 0) return DC_SPLIT_NEVER;
    return DC_SPLIT_RULE;
}

void dc_gemm_choice_text(const dc_gemm_spec *s, char *buf, size_t len) {
    snprintf(buf, len, "jit mr=%d nr=%d kc=%lld mc=%lld nc=%lld unroll=%d prefetch=%d lanes=%d pack_a=%d", s->mr, s->nr,
             (long long)s->kc, (long long)s->mc, (long long)s->nc, s->unroll, s->prefetch, s->lanes, s->pack_a);
}

bool dc_gemm_choice_parse(const char *text, dc_gemm_spec *s) {
    long long kc, mc, nc;
    int pack, end = 0;
    memset(s, 0, sizeof *s);
    if (sscanf(text, "jit mr=%d nr=%d kc=%lld mc=%lld nc=%lld unroll=%d prefetch=%d lanes=%d pack_a=%d%n", &s->mr, &s->nr,
               &kc, &mc, &nc, &s->unroll, &s->prefetch, &s->lanes, &pack, &end) != 9 || text[end] != 0 ||
        (pack != 0 && pack != 1))
        return false;
    s->kc = kc, s->mc = mc, s->nc = nc, s->pack_a = pack;
    char why[128];
    return dc_gemm_spec_ok(s, s->lanes, why, sizeof why);
}

/* ---- the default rule --------------------------------------------------------------------------- */

bool dc_conv_winograd_fits(const dc_graph *g, int node) {
    const dc_node *n = &g->nodes[node];
    const dc_ints *stride, *pad;
    int64_t groups;
    switch (n->op) {
    case DC_OP_CONV2D:
    case DC_OP_CONV2D_BWD_DATA:
    case DC_OP_CONV2D_BWD_WEIGHT:
        stride = &n->attr.conv.stride, pad = &n->attr.conv.pad, groups = n->attr.conv.groups;
        break;
    case DC_OP_FUSED_CONV2D:
        stride = &n->attr.fused_conv.stride, pad = &n->attr.fused_conv.pad, groups = n->attr.fused_conv.groups;
        break;
    default:
        return false;
    }
    /* the weight is input 1 except for the backward-weight, whose output it is */
    const dc_shape *w = n->op == DC_OP_CONV2D_BWD_WEIGHT ? &n->type.shape : &g->nodes[n->in[1]].type.shape;
    return groups == 1 && w->rank == 4 && w->dim[0] == 3 && w->dim[1] == 3 && w->dim[2] % 16 == 0 &&
           w->dim[3] % 16 == 0 && stride->v[0] == 1 && stride->v[1] == 1 && pad->v[0] <= 1 && pad->v[1] <= 1;
}

const char *dc_contraction_default(const dc_graph *g, int node) {
    const dc_node *n = &g->nodes[node];
    const dc_shape *o = &n->type.shape;
    /* a forward convolution of one input channel: the jit implicit GEMM (1.4-1.65x) */
    if ((n->op == DC_OP_CONV2D || n->op == DC_OP_FUSED_CONV2D) && g->nodes[n->in[1]].type.shape.dim[2] == 1)
        return "jit";
    /* Winograd, except forward and backward-data with 16 input channels (1.05-1.7x slower) */
    if (dc_conv_winograd_fits(g, node) &&
        (n->op == DC_OP_CONV2D_BWD_WEIGHT || g->nodes[n->in[1]].type.shape.dim[2] >= 32))
        return "dnnl winograd";
    int64_t M = o->rank >= 2 ? o->dim[o->rank - 2] : 1, N = o->dim[o->rank - 1];
    if (n->op == DC_OP_FUSED_MATMUL) {
        /* a residual without a bias: oneDNN's matmul with a full-tensor add post-op is 1.7-3x
         * slower than the jit GEMM from 64 columns on */
        const dc_fused_matmul_attr *f = &n->attr.fused_matmul;
        return f->residual && !f->bias && N >= 64 ? "jit" : "dnnl";
    }
    if (n->op != DC_OP_MATMUL || o->rank < 3 || g->nodes[n->in[1]].type.shape.rank < 3) return "dnnl";
    /* per-head products of attention: the jit GEMM wins on tall ones (P^T dO up to 2x) */
    if (n->attr.matmul.trans_a) return M >= 64 ? "jit" : "dnnl";
    return M >= 128 && N <= 16 ? "jit" : "dnnl";
}

/* ---- the process's database ------------------------------------------------------------------- */

static struct {
    bool opened;
    dc_tune_db *db;
} P;

bool dc_tune_enabled(void) {
    const char *v = getenv("DISCO_TUNE");
    return !(v && strcmp(v, "off") == 0);
}

dc_tune_db *dc_tune_db_default(void) {
    if (!dc_tune_enabled()) return NULL;
    if (!P.opened) {
        P.opened = true;
        char err[DC_ERR_LEN];
        P.db = dc_tune_db_open(NULL, err, sizeof err);
        if (!P.db) fprintf(stderr, "disco: tuning database: %s (compiling with the defaults)\n", err);
        else if (*dc_tune_db_message(P.db)) fprintf(stderr, "%s", dc_tune_db_message(P.db));
    }
    return P.db;
}

/* ---- timing one candidate ----------------------------------------------------------------------- */

/* a one-step program: the node of the graph under tuning (with the other result nodes of its
 * computation, for an attention), its inputs as graph inputs, its results as outputs */
typedef struct {
    dc_graph *g;
    int node;
    dc_op op;
} mini;

static bool mini_new(const dc_graph *g, int node, mini *m, char *err, size_t len) {
    const dc_node *n = &g->nodes[node];
    m->g = dc_graph_new("tune");
    int in[DC_MAX_INPUTS];
    for (int k = 0; k < n->n_in; k++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", k);
        in[k] = dc_graph_emit(m->g, DC_OP_INPUT, 0, NULL, NULL, &g->nodes[n->in[k]].type, name, NULL, 0, err, len);
    }
    m->op = n->op;
    m->node = -1;
    int last = dc_results_last(g, node);
    for (int i = node; i <= last; i++) {
        const dc_node *r = &g->nodes[i];
        int id = dc_graph_emit(m->g, r->op, r->n_in, in, &r->attr, &r->type, NULL, NULL, 0, err, len);
        if (id < 0) {
            dc_graph_free(m->g);
            return false;
        }
        if (m->node < 0) m->node = id;
        char name[16];
        snprintf(name, sizeof name, "y%d", i - node);
        dc_graph_add_output(m->g, id, name);
    }
    return true;
}

static const char *fixed_choice(void *ctx, const char *signature) {
    (void)signature;
    return ctx;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Fills the inputs of e's graph g: f32 uniform in [-1, 1), or in [0.25, 0.75) when positive (a whole
 * training program's inputs are images, noise levels, uniforms: a negative noise level would
 * fill the program with NaNs and subnormals, and time it on them), other types zero (valid
 * indices). */
static void fill_inputs(dc_exec *e, const dc_graph *g, bool positive) {
    char err[DC_ERR_LEN];
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *nd = &g->nodes[i];
        if (nd->op != DC_OP_INPUT) continue;
        dc_tensor *t = dc_tensor_new(&nd->type);
        if (nd->type.dtype == DC_F32) {
            float *p = t->data;
            for (int64_t k = 0; k < dc_numel(&nd->type.shape); k++) {
                float u = dc_rng_uniform01(7, (uint64_t)i, (uint64_t)k);
                p[k] = positive ? 0.5f * u + 0.25f : 2.0f * u - 1.0f;
            }
        }
        dc_exec_set_input(e, nd->name, t, err, sizeof err);
        dc_tensor_free(t);
    }
}

/* The median seconds of one run of m under choice over `runs` timings (each of enough runs to
 * last MIN_RUN_SECONDS), after a warm-up run; -1 when the choice does not build as itself (a
 * jit kernel that fell back, a oneDNN refusal). */
static double time_choice(const mini *m, const char *choice, int runs, int64_t *timed) {
    char err[DC_ERR_LEN];
    dc_exec *e = dc_compile_choosing(m->g, 0, DC_BACKEND_AUTO, fixed_choice, (void *)choice, NULL, err, sizeof err);
    if (!e) return -1;
    int n;
    const dc_step *st = dc_exec_steps(e, &n);
    bool wino = strcmp(choice, "dnnl winograd") == 0;
    const char *want = wino ? "dnnl" : strcmp(choice, "dnnl") == 0 || strcmp(choice, "ref") == 0 ? choice : "jit";
    if (n != 1 || strcmp(st[0].provider, want) != 0 || st[0].note[0] || (wino && !strstr(st[0].impl, "wino"))) {
        dc_exec_free(e);
        return -1;
    }
    fill_inputs(e, m->g, false);
    double t0 = dc_seconds();
    bool ok = dc_exec_run(e, err, sizeof err);
    double once = dc_seconds() - t0;
    int per = once >= MIN_RUN_SECONDS ? 1 : (int)(MIN_RUN_SECONDS / (once + 1e-9)) + 1;
    double r[64];
    if (runs > 64) runs = 64;
    for (int i = 0; i < runs && ok; i++) {
        t0 = dc_seconds();
        for (int j = 0; j < per && ok; j++) ok = dc_exec_run(e, err, sizeof err);
        r[i] = (dc_seconds() - t0) / per;
        *timed += per;
    }
    dc_exec_free(e);
    if (!ok) return -1;
    qsort(r, (size_t)runs, sizeof *r, cmp_double);
    return r[runs / 2];
}

double dc_tune_time(const dc_graph *g, int node, const char *choice, int runs) {
    mini m;
    char err[DC_ERR_LEN];
    if (!tunable(&g->nodes[node]) || !mini_new(g, node, &m, err, sizeof err)) return -1;
    int64_t timed = 0;
    double t = time_choice(&m, choice, runs, &timed);
    dc_graph_free(m.g);
    return t;
}

/* ---- the search --------------------------------------------------------------------------------- */

#define MAX_CANDS 48
#define MAX_TILE (128 * 256) /* the largest bq x bk of a flash-attention candidate */

typedef struct {
    char choice[160];
    double t;   /* the latest median, -1: failed */
} cand;

/* the jit candidates of stage 1: one per tile and vector width that fits N, defaults else */
static int jit_candidates(const dc_gemm_spec *def, int64_t N, cand *c, int max) {
    const dc_gemm_space *sp = &dc_gemm_tuning_space;
    int target = dc_jit_target_lanes(NULL), n = 0;
    for (int l = 0; l < sp->n_lanes; l++) {
        int lanes = sp->lanes[l];
        if (lanes > target) continue;
        for (int t = 0; t < sp->n_tiles && n < max; t++) {
            int64_t nr = (int64_t)sp->tile_nv[t] * lanes;
            if (nr > (N + lanes - 1) / lanes * lanes && sp->tile_nv[t] > 1) continue; /* wider than N */
            dc_gemm_spec s = dc_gemm_spec_of(t, lanes, def->kc, def->mc, def->nc, def->unroll, def->prefetch, def->pack_a);
            dc_gemm_choice_text(&s, c[n++].choice, sizeof c[0].choice);
        }
    }
    return n;
}

typedef struct {
    const dc_tune_options *o;
    double deadline;   /* dc_seconds() past which searches stop early; 0: none */
    int64_t timed;
} search;

static bool out_of_time(const search *s) { return s->deadline > 0 && dc_seconds() > s->deadline; }

/* Successive halving over c[0..n): returns the index of the survivor (-1: none built). */
static int halve(search *s, const mini *m, cand *c, int n) {
    int alive[MAX_CANDS], na = 0;
    for (int i = 0; i < n; i++) alive[na++] = i;
    for (int runs = 3, round = 0; na > 1 || round == 0; runs *= 2, round++) {
        for (int i = 0; i < na; i++) c[alive[i]].t = time_choice(m, c[alive[i]].choice, runs, &s->timed);
        int k = 0;
        for (int i = 0; i < na; i++)
            if (c[alive[i]].t > 0) alive[k++] = alive[i];
        na = k;
        /* sort the survivors by time, keep the faster half */
        for (int i = 1; i < na; i++)
            for (int j = i; j > 0 && c[alive[j]].t < c[alive[j - 1]].t; j--) {
                int t = alive[j];
                alive[j] = alive[j - 1], alive[j - 1] = t;
            }
        if (na > 1) na = out_of_time(s) ? 1 : (na + 1) / 2;
    }
    return na ? alive[0] : -1;
}

/* Coordinate descent over the non-tile parameters from best (its time in *t). */
static void descend(search *s, const mini *m, dc_gemm_spec *best, double *t) {
    const dc_gemm_space *sp = &dc_gemm_tuning_space;
    for (int param = 0; param < 6 && !out_of_time(s); param++) {
        int count = (int[]){ sp->n_kc, sp->n_mc, sp->n_nc, sp->n_unroll, sp->n_prefetch, sp->n_pack_a }[param];
        dc_gemm_spec start = *best;
        for (int v = 0; v < count; v++) {
            dc_gemm_spec c = start;
            switch (param) {
            case 0: c.kc = sp->kc[v]; break;
            case 1: c.mc = (sp->mc[v] + c.mr - 1) / c.mr * c.mr; break;
            case 2: c.nc = (sp->nc[v] + c.nr - 1) / c.nr * c.nr; break;
            case 3: c.unroll = sp->unroll[v]; break;
            case 4: c.prefetch = sp->prefetch[v]; break;
            default: c.pack_a = sp->pack_a[v]; break;
            }
            if (memcmp(&c, &start, sizeof c) == 0) continue;
            char text[160];
            dc_gemm_choice_text(&c, text, sizeof text);
            double tc = time_choice(m, text, 5, &s->timed);
            if (tc > 0 && tc < *t * (1 - TOLERANCE)) *best = c, *t = tc;
        }
    }
}

/* Tunes the attention computation of m (first result node `node`) into *r: successive halving
 * over the flash kernel's block sizes (bq 16-128; bk the multiples of the vector from 16 to
 * 512 that are powers of two up to the one holding Sk, and Sk rounded up to a vector; tiles of
 * at most MAX_TILE floats, as a thread's stack holds a few), then
 * the best against the default blocks, timed alike; the default stays unless beaten by more
 * than the band. */
static void tune_attention(search *s, const mini *m, const dc_graph *g, int node, dc_tune_result *r) {
    const dc_node *nd = &g->nodes[node];
    int64_t sq = g->nodes[nd->in[0]].type.shape.dim[2], sk = g->nodes[nd->in[1]].type.shape.dim[2];
    int64_t lanes = dc_jit_target_lanes(NULL), whole = (sk + lanes - 1) / lanes * lanes, dq, dk;
    cand c[MAX_CANDS];
    int n = 0;
    for (int64_t bq = 16; bq <= 128 && bq / 2 < sq; bq *= 2)
        for (int64_t bk = 16; bk <= 512 && bk / 2 < sk; bk *= 2)
            if (bk % lanes == 0 && bk != whole && bq * bk <= MAX_TILE) dc_attn_choice_text(bq, bk, c[n++].choice, sizeof c[0].choice);
    for (int64_t bq = 16; bq <= 128 && bq / 2 < sq && whole <= 512 && bq * whole <= MAX_TILE; bq *= 2)
        dc_attn_choice_text(bq, whole, c[n++].choice, sizeof c[0].choice);
    dc_attn_default_blocks(g, node, &dq, &dk);
    char inc[64];
    dc_attn_choice_text(dq, dk, inc, sizeof inc);
    int w = halve(s, m, c, n);
    r->t_default = time_choice(m, inc, 9, &s->timed);
    if (w >= 0) {
        snprintf(r->jit, sizeof r->jit, "%s", c[w].choice);
        r->t_jit = time_choice(m, c[w].choice, 9, &s->timed);
    }
    bool keep = r->t_default > 0 && !(r->t_jit > 0 && r->t_jit < r->t_default * (1 - TOLERANCE));
    snprintf(r->choice, sizeof r->choice, "%s", keep || r->t_jit <= 0 ? inc : r->jit);
    r->t_choice = keep || r->t_jit <= 0 ? r->t_default : r->t_jit;
}

/* Tunes the node of m into *r. */
static void tune_node(search *s, const mini *m, const dc_graph *g, int node, dc_tune_result *r) {
    memset(r, 0, sizeof *r);
    r->t_jit = r->t_dnnl = -1;
    const dc_node *nd = &g->nodes[node];
    if (dc_op_attention(nd->op)) {
        tune_attention(s, m, g, node, r);
        return;
    }
    cand c[MAX_CANDS];
    /* the best jit kernel: halving over the tiles, then each other parameter; pruned when the
     * default jit kernel is more than PRUNE times slower than oneDNN (no tile closes such a gap) */
    int64_t N = nd->type.shape.dim[nd->type.shape.rank - 1];
    dc_gemm_spec def = dc_gemm_default(1, dc_numel(&nd->type.shape) / N, N, dc_jit_target_lanes(NULL)), spec;
    double td = time_choice(m, "dnnl", 3, &s->timed), tj = time_choice(m, "jit", 3, &s->timed);
    bool search_jit = tj > 0 && !(td > 0 && tj > PRUNE * td) && !out_of_time(s);
    int w = search_jit ? halve(s, m, c, jit_candidates(&def, N, c, MAX_CANDS)) : -1;
    if (w >= 0 && dc_gemm_choice_parse(c[w].choice, &spec)) {
        r->t_jit = c[w].t;
        descend(s, m, &spec, &r->t_jit);
        dc_gemm_choice_text(&spec, r->jit, sizeof r->jit);
    }
    /* the finalists, timed alike: oneDNN, ref for small nodes (about a MFLOP; it loses
     * everywhere else), the best jit kernel */
    int n = 0;
    snprintf(c[n++].choice, sizeof c[0].choice, "dnnl");
    if (dc_conv_winograd_fits(g, node)) snprintf(c[n++].choice, sizeof c[0].choice, "dnnl winograd");
    const dc_shape *a = &g->nodes[nd->in[0]].type.shape;
    if (2.0 * (double)dc_numel(&nd->type.shape) * (double)a->dim[a->rank - 1] < 1e6)
        snprintf(c[n++].choice, sizeof c[0].choice, "ref");
    if (r->t_jit > 0) snprintf(c[n++].choice, sizeof c[0].choice, "%s", r->jit);
    int best = -1;
    for (int i = 0; i < n; i++) {
        c[i].t = time_choice(m, c[i].choice, 9, &s->timed);
        if (c[i].t > 0 && (best < 0 || c[i].t < c[best].t)) best = i;
    }
    r->t_dnnl = c[0].t;
    /* the incumbent, the default rule's choice ("jit": the default parameters), stays unless
     * the best is faster by more than the band */
    const char *inc = dc_contraction_default(g, node);
    r->t_default = strcmp(inc, "dnnl") == 0 ? r->t_dnnl : time_choice(m, inc, 9, &s->timed);
    bool keep = r->t_default > 0 && !(best >= 0 && c[best].t < r->t_default * (1 - TOLERANCE));
    snprintf(r->choice, sizeof r->choice, "%s", keep || best < 0 ? inc : c[best].choice);
    r->t_choice = keep || best < 0 ? r->t_default : c[best].t;
}

bool dc_tune_node(const dc_graph *g, int node, const dc_tune_options *o, dc_tune_result *r) {
    mini m;
    char err[DC_ERR_LEN];
    if (!tunable(&g->nodes[node]) || !mini_new(g, node, &m, err, sizeof err)) return false;
    search s = { .o = o, .deadline = o->budget > 0 ? dc_seconds() + o->budget : 0 };
    tune_node(&s, &m, g, node, r);
    r->timed_runs = s.timed;
    dc_graph_free(m.g);
    return true;
}

/* ---- loop kernels, timed in the program -------------------------------------------------- */

#define LOOP_RUNS 7 /* program runs per split mode */

static const char *db_choice(void *ctx, const char *signature) { return dc_tune_db_lookup(ctx, signature); }

/* One run of e, timed where it runs: each step's seconds (the executor's per-step clock) are
 * added to t[key(step) * 2 * LOOP_RUNS + slot], key(step) = key[node of the step] when by_node,
 * else key[step]; steps with key -1 are not counted. */
static bool timed_run(dc_exec *e, const int *key, bool by_node, double *t, size_t slot, search *sr, char *err,
                      size_t len) {
    int n;
    const dc_step *st = dc_exec_steps(e, &n);
    int64_t *before = malloc((size_t)(n ? n : 1) * sizeof *before);
    if (!before) abort(); /* out of memory */
    for (int i = 0; i < n; i++) before[i] = dc_exec_step_time(e, i).ns;
    bool ok = dc_exec_run(e, err, len);
    sr->timed++;
    for (int i = 0; i < n; i++) {
        int k = key[by_node ? st[i].node : i];
        if (k >= 0) t[(size_t)k * 2 * LOOP_RUNS + slot] += 1e-9 * (double)(dc_exec_step_time(e, i).ns - before[i]);
    }
    free(before);
    return ok;
}

/* The medians of the two sets of LOOP_RUNS timings of key k in t (sorted in place). */
static void pair_medians(double *t, int k, double *ta, double *tb) {
    double *a = &t[(size_t)k * 2 * LOOP_RUNS], *b = a + LOOP_RUNS;
    qsort(a, LOOP_RUNS, sizeof *a, cmp_double);
    qsort(b, LOOP_RUNS, sizeof *b, cmp_double);
    *ta = a[LOOP_RUNS / 2], *tb = b[LOOP_RUNS / 2];
}

/* The loop kernel steps of g's program that the work rule splits over the threads, without a
 * choice in db: each is timed inside the whole program (compiled with db's choices) split and
 * on the calling thread, the two modes alternating run by run (LOOP_RUNS each, after a
 * warm-up run); a signature's time is the median over runs of the sum over its steps. A split
 * stays unless running on one thread is faster by more than the band (a split kernel with a
 * short range can be slower than one thread). Steps the rule keeps on one thread stay there:
 * splitting one opens a parallel region where there was none, and its cost falls on the steps
 * after it, not on the step's own clock (on fmnist-disco, forcing such splits that timed
 * faster made the ref and oneDNN steps after them up to 2x slower). Adds to r; false and err
 * when the program cannot be built or run. */
static bool tune_loops(const dc_graph *g, dc_tune_db *db, const dc_tune_options *o, dc_tune_report *r, search *sr,
                       char *err, size_t len) {
    dc_exec *e = dc_compile_choosing(g, 0, DC_BACKEND_AUTO, db_choice, db, NULL, err, len);
    if (!e) return false;
    int n;
    const dc_step *st = dc_exec_steps(e, &n);
    /* the signatures to tune, and each step's (-1: not one of them) */
    int *sig_of = malloc((size_t)(n ? n : 1) * sizeof *sig_of), n_sig = 0;
    char (*sigs)[DC_TUNE_SIG_LEN] = malloc((size_t)(n ? n : 1) * DC_TUNE_SIG_LEN);
    double *t = calloc((size_t)(n ? n : 1) * 2 * LOOP_RUNS, sizeof *t); /* [sig][mode][run] */
    if (!sig_of || !sigs || !t) abort(); /* out of memory */
    for (int i = 0; i < n; i++) {
        char sig[DC_TUNE_SIG_LEN];
        sig_of[i] = -1;
        dc_step rule = st[i];
        rule.split = DC_SPLIT_RULE;
        if (!dc_step_splits(&rule) || !dc_tune_loop_signature(&st[i], sig, sizeof sig)) continue;
        int k = 0;
        while (k < n_sig && strcmp(sigs[k], sig) != 0) k++;
        if (k == n_sig) {
            r->kernels++;
            memcpy(sigs[n_sig++], sig, sizeof sig);
            if (dc_tune_db_lookup(db, sig)) r->cached++;
        }
        if (dc_tune_db_lookup(db, sig)) continue;
        sig_of[i] = k;
    }
    int todo = 0;
    for (int i = 0; i < n; i++) todo += sig_of[i] >= 0;
    fill_inputs(e, g, true);
    bool ok = todo == 0 || dc_exec_run(e, err, len);
    for (int run = 0; ok && todo && run < 2 * LOOP_RUNS; run++) {
        int mode = run % 2; /* 0: split (the rule's mode), 1: on the calling thread */
        for (int i = 0; i < n; i++)
            if (sig_of[i] >= 0) dc_exec_set_split(e, i, mode ? DC_SPLIT_NEVER : DC_SPLIT_ALWAYS);
        ok = timed_run(e, sig_of, false, t, (size_t)(mode * LOOP_RUNS + run / 2), sr, err, len);
    }
    for (int k = 0; ok && k < n_sig; k++) {
        if (dc_tune_db_lookup(db, sigs[k])) continue; /* cached */
        double ta, tb;
        pair_medians(t, k, &ta, &tb);
        bool serial = tb < ta * (1 - TOLERANCE);
        char times[128];
        snprintf(times, sizeof times, "chosen=%.1fus default=%.1fus", 1e6 * (serial ? tb : ta), 1e6 * ta);
        const char *choice = serial ? "loop serial" : "loop split";
        dc_tune_db_store(db, sigs[k], choice, times);
        r->tuned++;
        r->jit++;
        if (o->log) fprintf(o->log, "%s\n  -> %s (%s)\n", sigs[k], choice, times);
    }
    free(sig_of);
    free(sigs);
    free(t);
    dc_exec_free(e);
    return ok;
}

/* The default rule's choice for the contraction or attention whose (first) node is node. */
static void default_choice(const dc_graph *g, int node, char *buf, size_t len) {
    int64_t bq, bk;
    if (!dc_op_attention(g->nodes[node].op)) {
        snprintf(buf, len, "%s", dc_contraction_default(g, node));
        return;
    }
    dc_attn_default_blocks(g, node, &bq, &bk);
    dc_attn_choice_text(bq, bk, buf, len);
}

/* The choices just made for signatures sigs[k] with fresh[k] (first node first[k]), checked
 * where they run: the whole program compiled with db's choices and with the default rule's
 * runs alternately (LOOP_RUNS each, after a warm-up run of each), and a choice whose steps
 * (every node of its signature) are not faster by more than the band there, median against
 * median, is replaced by the default rule's. One node timed alone can mislead: in the program
 * its inputs come from the step before, and a jit GEMM's packed and padded buffers compete
 * for the cache with its neighbours'. Adds to r->reverted; false and err when a program
 * cannot be built or run. */
static bool check_in_program(const dc_graph *g, dc_tune_db *db, const dc_tune_options *o, char (*sigs)[DC_TUNE_SIG_LEN],
                             const int *first, const bool *fresh, int n_sig, dc_tune_report *r, search *sr, char *err,
                             size_t len) {
    size_t ns = n_sig > 0 ? (size_t)n_sig : 1;
    char (*def)[160] = malloc(ns * sizeof *def);
    int *sig_of = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *sig_of), todo = 0;
    bool *check = malloc(ns * sizeof *check);
    if (!def || !sig_of || !check) abort(); /* out of memory */
    for (int k = 0; k < n_sig; k++) {
        default_choice(g, first[k], def[k], sizeof def[k]);
        todo += check[k] = fresh[k] && strcmp(dc_tune_db_lookup(db, sigs[k]), def[k]) != 0;
    }
    /* each step's node (an attention's last result node) -> the signature checked, or -1 */
    for (int i = 0; i < g->n_nodes; i++) sig_of[i] = -1;
    for (int i = 0; todo && i < g->n_nodes; i++) {
        char sig[DC_TUNE_SIG_LEN];
        int at = i;
        if (dc_op_multi_result(g->nodes[i].op)) i = dc_results_last(g, i);
        if (!dc_tune_signature(g, at, sig, sizeof sig)) continue;
        for (int k = 0; k < n_sig; k++)
            if (check[k] && strcmp(sig, sigs[k]) == 0) sig_of[i] = k;
    }
    dc_exec *e[2] = { NULL, NULL };
    bool ok = true;
    double *t = calloc(ns * 2 * LOOP_RUNS, sizeof *t); /* [sig][program][run] */
    if (!t) abort(); /* out of memory */
    for (int p = 0; todo && ok && p < 2; p++) {
        e[p] = dc_compile_choosing(g, 0, DC_BACKEND_AUTO, p == 0 ? db_choice : NULL, db, NULL, err, len);
        ok = e[p] != NULL;
        if (ok) fill_inputs(e[p], g, true);
        ok = ok && dc_exec_run(e[p], err, len);
    }
    for (int run = 0; todo && ok && run < 2 * LOOP_RUNS; run++) {
        int p = run % 2;
        ok = timed_run(e[p], sig_of, true, t, (size_t)(p * LOOP_RUNS + run / 2), sr, err, len);
    }
    for (int k = 0; todo && ok && k < n_sig; k++) {
        if (!check[k]) continue;
        double ta, tb;
        pair_medians(t, k, &ta, &tb);
        if (ta > 0 && ta < tb * (1 - TOLERANCE)) continue;
        char times[256];
        snprintf(times, sizeof times, "in the program: %s %.1fus, default %.1fus", dc_tune_db_lookup(db, sigs[k]), 1e6 * ta,
                 1e6 * tb);
        if (o->log) fprintf(o->log, "%s\n  -> %s (%s)\n", sigs[k], def[k], times);
        dc_tune_db_store(db, sigs[k], def[k], times);
        r->reverted++;
    }
    dc_exec_free(e[0]);
    dc_exec_free(e[1]);
    free(t);
    free(def);
    free(check);
    free(sig_of);
    return ok;
}

bool dc_tune_graph(const dc_graph *g, dc_tune_db *db, const dc_tune_options *o, dc_tune_report *r, char *err,
                   size_t len) {
    memset(r, 0, sizeof *r);
    double t0 = dc_seconds();
    /* the distinct signatures, each with its first node (an attention's: its first result node,
     * which compiling looks its choice up by) */
    int *first = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *first), n_sig = 0;
    char (*sigs)[DC_TUNE_SIG_LEN] = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * DC_TUNE_SIG_LEN);
    if (!first || !sigs) abort(); /* out of memory */
    for (int i = 0; i < g->n_nodes; i++) {
        char sig[DC_TUNE_SIG_LEN];
        int at = i;
        if (dc_op_multi_result(g->nodes[i].op)) i = dc_results_last(g, i);
        if (!dc_tune_signature(g, at, sig, sizeof sig)) continue;
        bool seen = false;
        for (int k = 0; k < n_sig && !seen; k++) seen = strcmp(sigs[k], sig) == 0;
        if (seen) continue;
        memcpy(sigs[n_sig], sig, sizeof sig);
        first[n_sig++] = at;
    }
    r->kernels = n_sig;
    int todo = 0;
    bool *fresh = malloc((size_t)(n_sig ? n_sig : 1) * sizeof *fresh);
    if (!fresh) abort(); /* out of memory */
    for (int k = 0; k < n_sig; k++) todo += fresh[k] = dc_tune_db_lookup(db, sigs[k]) == NULL;
    r->cached = n_sig - todo;
    search s = { .o = o };
    dc_progress *p = todo && o->progress ? dc_progress_new("tune", todo, o->progress) : NULL;
    bool ok = true;
    for (int k = 0; k < n_sig && ok; k++) {
        if (dc_tune_db_lookup(db, sigs[k])) continue;
        /* each signature left gets an equal share of the budget left */
        if (o->budget > 0) s.deadline = dc_seconds() + (t0 + o->budget - dc_seconds()) / (todo - r->tuned);
        mini m;
        if (!mini_new(g, first[k], &m, err, len)) {
            ok = false;
            break;
        }
        dc_tune_result t;
        tune_node(&s, &m, g, first[k], &t);
        dc_graph_free(m.g);
        char times[256];
        int tn = snprintf(times, sizeof times, "chosen=%.1fus", 1e6 * t.t_choice);
        if (t.t_dnnl > 0) tn += snprintf(times + tn, sizeof times - (size_t)tn, " dnnl=%.1fus", 1e6 * t.t_dnnl);
        tn += snprintf(times + tn, sizeof times - (size_t)tn, " default=%.1fus", 1e6 * t.t_default);
        if (t.t_jit > 0) snprintf(times + tn, sizeof times - (size_t)tn, " best-jit=%.1fus", 1e6 * t.t_jit);
        dc_tune_db_store(db, sigs[k], t.choice, times);
        r->tuned++;
        if (o->log) fprintf(o->log, "%s\n  -> %s (%s)\n", sigs[k], t.choice, times);
        if (p) dc_progress_update(p, r->tuned, NAN);
    }
    dc_progress_done(p);
    bool nodes_ok = ok; /* what the nodes' searches found is saved even if a program fails below */
    ok = ok && check_in_program(g, db, o, sigs, first, fresh, n_sig, r, &s, err, len);
    for (int k = 0; nodes_ok && k < n_sig; k++) {
        const char *c = fresh[k] ? dc_tune_db_lookup(db, sigs[k]) : NULL;
        if (!c) continue;
        if (strncmp(c, "dnnl", 4) == 0) r->dnnl++;
        else if (strcmp(c, "ref") == 0) r->ref++;
        else r->jit++;
    }
    free(first);
    free(sigs);
    free(fresh);
    ok = ok && tune_loops(g, db, o, r, &s, err, len);
    r->timed_runs = s.timed;
    r->seconds = dc_seconds() - t0;
    char save_err[DC_ERR_LEN];
    if (nodes_ok && r->tuned > 0 && !dc_tune_db_save(db, save_err, sizeof save_err)) {
        if (ok) snprintf(err, len, "%s", save_err);
        return false;
    }
    return ok;
}
