/* lower_gemm.c — the jit step of a matmul, linear, fused_matmul, conv2d, fused_conv2d,
 * conv2d_bwd_data or conv2d_bwd_weight node: one GEMM kernel (codegen/llvm/gemm.c) over the
 * node's batch, a convolution as an implicit GEMM (groups 1; dc_gemm_conv) whose A the kernel
 * gathers from its input as it packs it. The operands' batch dims broadcast numpy-style
 * (as the matmul op): the step keeps, per output batch, the offset of its A and of its B's
 * packing. When B has no batch of its own and A is not transposed, the batch folds into M (a
 * linear layer over [B, S, I] is one [B*S, I] x [I, O] product). A call packs each distinct
 * B once (in parallel over panels), then runs the kernel's work items split statically over
 * the OpenMP threads, each thread with its own A scratch; every item is computed alike, so
 * results are bitwise the same for any thread count. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/lower_jit.h"

typedef struct {
    dc_codegen_ctx base;
    dc_jit_kernel *jk;
    dc_gemm_spec spec;
    dc_gemm_sizes sizes;
    int64_t M, N, K, batch, range;
    bool trans_b;
    int64_t ldb;
    int64_t *a_off, *b_off;  /* [batch]: offset of A[b], of B[b]'s packing */
    int64_t n_b;             /* distinct B matrices */
    int64_t *b_src;          /* [n_b]: offset of each in B */
    float *packed;           /* n_b packings */
    int64_t packed_size;     /* floats of one */
    float *scratch;          /* threads x dc_gemm_scratch_size */
    float *padded;           /* a direct forward convolution's zero-padded copy of x, or NULL */
    int threads;
    int in_bias, in_res;     /* input index of bias and residual, -1 for none */
    int out, pre;            /* the nodes of the epilogue's value and of the kept pre-activation
                              * (a fused contraction's results 0 and 1), -1 for none */
} gemm_ctx;

static void *alloc_or_die(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) abort(); /* out of memory */
    return p;
}

static void release(dc_codegen_ctx *base) {
    gemm_ctx *c = (gemm_ctx *)base;
    dc_jit_release(c->jk);
    free(c->a_off);
    free(c->b_off);
    free(c->b_src);
    free(c->packed);
    free(c->scratch);
    free(c->padded);
    free(c);
}

static bool gemm_call(const dc_step *s, const dc_frame *f, char *err, size_t len) {
    (void)err, (void)len;
    const gemm_ctx *c = s->ctx;
    const dc_node *n = &f->g->nodes[s->node];
    const float *b = f->vals[n->in[1]].data;
    int64_t panels = (c->N + c->spec.nr - 1) / c->spec.nr;
    #pragma omp parallel for schedule(static) if (c->n_b * panels > 1)
    for (int64_t t = 0; t < c->n_b * panels; t++) {
        int64_t i = t / panels, p = t % panels;
        dc_gemm_pack_b(&c->spec, b + c->b_src[i], c->trans_b, c->ldb, c->N, c->K, p, p + 1,
                       c->packed + i * c->packed_size);
    }
    const float *a = f->vals[n->in[0]].data;
    if (c->padded) {
        /* x's rows into the interior of the padded copy (its border stays zero) */
        const dc_gemm_conv *cv = &c->spec.conv;
        int64_t hp = cv->H + 2 * cv->ph, wp = cv->W + 2 * cv->pw, rows = c->M / (cv->OH * ((cv->OW + c->spec.mr - 1) / c->spec.mr * c->spec.mr)) * cv->H;
        #pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++)
            memcpy(c->padded + ((r / cv->H * hp + r % cv->H + cv->ph) * wp + cv->pw) * cv->C, a + r * cv->W * cv->C,
                   (size_t)(cv->W * cv->C) * sizeof(float));
        a = c->padded;
    }
    void *args[10] = { (void *)&c->sizes, (void *)a, c->a_off, c->packed, c->b_off,
                       f->vals[c->out >= 0 ? c->out : c->pre].data,
                       c->in_bias >= 0 ? f->vals[n->in[c->in_bias]].data : NULL,
                       c->in_res >= 0 ? f->vals[n->in[c->in_res]].data : NULL, NULL,
                       c->out >= 0 && c->pre >= 0 ? f->vals[c->pre].data : NULL };
    dc_range_kernel kernel = dc_jit_entry(c->jk);
    int64_t range = c->range, per = dc_gemm_scratch_size(&c->spec);
    #pragma omp parallel num_threads(c->threads) if (range > 1)
    {
        int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t begin = range * t / nt, end = range * (t + 1) / nt;
        void *a[10];
        memcpy(a, args, sizeof a);
        a[8] = c->scratch + t * per;
        if (begin < end) kernel(a, begin, end);
    }
    return true;
}

/* A step whose output the memory plan puts over one of its inputs runs on ref: the kernel
 * reads A and the residual while it writes the output. */
static dc_step_verdict gemm_prepare(dc_step *s, const dc_frame *f, char *err, size_t len) {
    char why[DC_ERR_LEN];
    if (!dc_step_overlaps(s, f, why, sizeof why)) return DC_STEP_READY;
    snprintf(err, len, "jit: %s; the GEMM needs them apart", why);
    return DC_STEP_FALLBACK;
}

/* The GEMM's view of node n: M, N, K, transposes and epilogue inputs; false and why for a
 * node it cannot take. */
typedef struct {
    int64_t M, N, K;
    bool trans_a, trans_b, bias, residual;
    dc_activation act;
    dc_gemm_conv conv;
} gemm_op;

/* A convolution's implicit GEMM (dc_gemm_conv) from x [N,H,W,C], the HWIO weight shape and the
 * output [N,OH,OW,O]; false and why for groups > 1. */
static bool conv_of(const dc_shape *x, const dc_shape *w, const dc_shape *y, const dc_ints *stride, const dc_ints *pad,
                    int64_t groups, dc_gemm_kind kind, gemm_op *o, char *why, size_t len) {
    if (groups != 1) {
        snprintf(why, len, "the jit convolution has groups 1 only");
        return false;
    }
    o->conv = (dc_gemm_conv){ .kind = kind, .H = x->dim[1], .W = x->dim[2], .C = x->dim[3], .OH = y->dim[1],
                              .OW = y->dim[2], .O = y->dim[3], .KH = w->dim[0], .KW = w->dim[1], .sh = stride->v[0],
                              .sw = stride->v[1], .ph = pad->v[0], .pw = pad->v[1] };
    const dc_gemm_conv *c = &o->conv;
    int64_t N = x->dim[0];
    if (kind == DC_GEMM_CONV_FWD) o->M = N * c->OH * c->OW, o->K = c->KH * c->KW * c->C, o->N = c->O;
    else if (kind == DC_GEMM_CONV_BWD_DATA) o->M = N * c->H * c->W, o->K = c->KH * c->KW * c->O, o->N = c->C;
    else o->M = c->KH * c->KW * c->C, o->K = N * c->OH * c->OW, o->N = c->O;
    return true;
}

static bool gemm_op_of(const dc_graph *g, const dc_node *n, gemm_op *o, char *why, size_t len) {
    memset(o, 0, sizeof *o);
    if (n->type.dtype != DC_F32 || g->nodes[n->in[0]].type.dtype != DC_F32 || g->nodes[n->in[1]].type.dtype != DC_F32) {
        snprintf(why, len, "the jit GEMM is f32 only");
        return false;
    }
    const dc_shape *a = &g->nodes[n->in[0]].type.shape, *b = &g->nodes[n->in[1]].type.shape;
    switch (n->op) {
    case DC_OP_MATMUL:
        o->trans_a = n->attr.matmul.trans_a;
        o->trans_b = n->attr.matmul.trans_b;
        break;
    case DC_OP_FUSED_MATMUL:
        o->trans_a = n->attr.fused_matmul.trans_a;
        o->trans_b = n->attr.fused_matmul.trans_b;
        o->bias = n->attr.fused_matmul.bias;
        o->residual = n->attr.fused_matmul.residual;
        o->act = n->attr.fused_matmul.act;
        break;
    case DC_OP_LINEAR:
        o->bias = true;
        break;
    case DC_OP_CONV2D:
        return conv_of(a, b, &n->type.shape, &n->attr.conv.stride, &n->attr.conv.pad, n->attr.conv.groups,
                       DC_GEMM_CONV_FWD, o, why, len);
    case DC_OP_FUSED_CONV2D: {
        const dc_fused_conv_attr *f = &n->attr.fused_conv;
        o->bias = f->bias;
        o->residual = f->residual;
        o->act = f->act;
        return conv_of(a, b, &n->type.shape, &f->stride, &f->pad, f->groups, DC_GEMM_CONV_FWD, o, why, len);
    }
    case DC_OP_CONV2D_BWD_DATA: /* dy, w -> dx */
        return conv_of(&n->type.shape, b, a, &n->attr.conv.stride, &n->attr.conv.pad, n->attr.conv.groups,
                       DC_GEMM_CONV_BWD_DATA, o, why, len);
    case DC_OP_CONV2D_BWD_WEIGHT: /* x, dy -> dw */
        return conv_of(a, &n->type.shape, b, &n->attr.conv.stride, &n->attr.conv.pad, n->attr.conv.groups,
                       DC_GEMM_CONV_BWD_WEIGHT, o, why, len);
    default:
        snprintf(why, len, "the jit GEMM has no kernel for %s", dc_op_name(n->op));
        return false;
    }
    if (n->op == DC_OP_LINEAR) {
        o->K = a->dim[a->rank - 1];
        o->M = dc_numel(a) / (o->K ? o->K : 1);
        o->N = b->dim[1];
    } else {
        o->M = n->type.shape.dim[n->type.shape.rank - 2];
        o->N = n->type.shape.dim[n->type.shape.rank - 1];
        o->K = a->dim[o->trans_a ? a->rank - 2 : a->rank - 1];
    }
    return true;
}

/* The element offset of operand x's matrix for output batch index t (x's batch dims right-
 * aligned against the output's, size-1 dims broadcast). */
static int64_t batch_offset(const dc_shape *x, int x_batch_rank, const dc_shape *out, int out_batch_rank, int64_t t) {
    int64_t off = 0, stride = x->dim[x->rank - 1] * x->dim[x->rank - 2];
    for (int d = out_batch_rank - 1, e = x_batch_rank - 1; d >= 0; d--, e--) {
        int64_t i = t % out->dim[d];
        t /= out->dim[d];
        if (e < 0) continue;
        if (x->dim[e] != 1) off += i * stride;
        stride *= x->dim[e];
    }
    return off;
}

bool dc_gemm_step(const dc_graph *g, int node, const dc_gemm_spec *params, dc_step *s, char *why, size_t len) {
    const dc_node *n = &g->nodes[node];
    gemm_op o;
    if (!gemm_op_of(g, n, &o, why, len)) return false;
    int last = dc_results_last(g, node), res[2];
    dc_result_nodes(g, node, last, res, 2);
    if (res[0] < 0) { /* the pre-activation alone */
        o.act = DC_ACTIVATION_NONE;
        o.residual = false;
    }
    const dc_shape *as = &g->nodes[n->in[0]].type.shape, *bs = &g->nodes[n->in[1]].type.shape;
    const dc_shape *os = &n->type.shape;
    /* batch dims: the output's, A's and B's before their matrices (none for linear and the
     * convolutions, whose whole operands are one matrix each) */
    bool flat = n->op == DC_OP_LINEAR || o.conv.kind != DC_GEMM_PLAIN;
    int obr = flat ? 0 : os->rank - 2, abr = flat ? 0 : as->rank - 2, bbr = flat ? 0 : bs->rank - 2;
    int64_t batch = 1, b_batch = 1, a_batch = 1;
    for (int d = 0; d < obr; d++) batch *= os->dim[d];
    for (int d = 0; d < bbr; d++) b_batch *= bs->dim[d];
    for (int d = 0; d < abr; d++) a_batch *= as->dim[d];
    int64_t M = o.M;
    if (b_batch == 1 && !o.trans_a && a_batch == batch) {
        M *= batch;
        batch = 1;
        obr = 0;
    }
    dc_gemm_spec spec = params ? *params : dc_gemm_default(batch, M, o.N, dc_jit_target_lanes(NULL));
    /* by default a forward convolution is direct (whole output rows over a padded copy of x:
     * about 10x faster than packing at 16 channels, with the 28-row tile where one vector
     * holds the output channels); the others pack (backward-data's direct path reads in place
     * only slabs away from the edges, most of them at these sizes, and measured slower) */
    if (o.conv.kind != DC_GEMM_PLAIN && !params) {
        spec.pack_a = o.conv.kind != DC_GEMM_CONV_FWD;
        if (!spec.pack_a && spec.nr == spec.lanes && spec.mr == dc_gemm_tuning_space.tile_mr[0])
            spec = dc_gemm_spec_of(1, spec.lanes, spec.kc, spec.mc, spec.nc, spec.unroll, spec.prefetch, false);
    }
    spec.conv = o.conv;
    if (o.conv.kind != DC_GEMM_PLAIN && !spec.pack_a) {
        /* a direct convolution takes K in one pass; the kinds that cannot read in place pack */
        char ignored[DC_ERR_LEN];
        spec.kc = spec.kc > o.K ? spec.kc : o.K;
        if (!dc_gemm_spec_ok(&spec, spec.lanes, ignored, sizeof ignored)) spec.pack_a = true;
    }
    /* a direct forward convolution: whole output rows of slabs over a padded copy of x */
    bool rows = o.conv.kind == DC_GEMM_CONV_FWD && !spec.pack_a;
    int64_t images = rows ? o.M / (o.conv.OH * o.conv.OW) : 0;
    if (rows) M = images * o.conv.OH * ((o.conv.OW + spec.mr - 1) / spec.mr * spec.mr);
    spec.trans_a = o.trans_a;
    spec.bias = o.bias;
    spec.residual = o.residual;
    spec.act = o.act;
    spec.pre = res[0] >= 0 && res[1] >= 0;
    char msg[DC_ERR_LEN];
    dc_jit_kernel *jk = dc_jit_compile_gemm(&spec, NULL, msg, sizeof msg);
    if (!jk) {
        snprintf(why, len, "%s", msg);
        return false;
    }
    gemm_ctx *c = calloc(1, sizeof *c);
    if (!c) abort(); /* out of memory */
    c->base.release = release;
    c->jk = jk;
    c->spec = spec;
    c->M = M;
    c->N = o.N;
    c->K = o.K;
    c->batch = batch;
    c->trans_b = o.trans_b;
    c->ldb = o.trans_b ? o.K : o.N;
    c->sizes = dc_gemm_sizes_of(&spec, M, o.N, o.K, o.trans_a ? M : o.K, 1.0f);
    c->range = batch * dc_gemm_items(&c->sizes);
    c->a_off = alloc_or_die((size_t)batch * sizeof *c->a_off);
    c->b_off = alloc_or_die((size_t)batch * sizeof *c->b_off);
    c->n_b = b_batch;
    c->b_src = alloc_or_die((size_t)b_batch * sizeof *c->b_src);
    c->packed_size = dc_gemm_packed_size(&spec, o.N, o.K);
    c->packed = alloc_or_die((size_t)(b_batch * c->packed_size) * sizeof(float));
    for (int64_t i = 0; i < b_batch; i++) c->b_src[i] = i * o.K * o.N;
    for (int64_t t = 0; t < batch; t++) {
        c->a_off[t] = obr ? batch_offset(as, abr, os, obr, t) : 0;
        c->b_off[t] = obr ? batch_offset(bs, bbr, os, obr, t) / (o.K * o.N) * c->packed_size : 0;
    }
    c->threads = omp_get_max_threads();
    c->scratch = alloc_or_die((size_t)(c->threads * dc_gemm_scratch_size(&spec)) * sizeof(float));
    if (rows) {
        const dc_gemm_conv *cv = &spec.conv;
        size_t floats = (size_t)(images * (cv->H + 2 * cv->ph) * (cv->W + 2 * cv->pw) * cv->C + dc_gemm_conv_slack(cv, spec.mr));
        c->padded = alloc_or_die(floats * sizeof(float));
        memset(c->padded, 0, floats * sizeof(float));
    }
    c->in_bias = o.bias ? 2 : -1;
    c->in_res = o.residual ? 2 + o.bias : -1;
    c->out = res[0];
    c->pre = res[1];
    memset(s, 0, sizeof *s);
    s->node = last;
    s->span = last - node;
    s->provider = "jit";
    snprintf(s->impl, sizeof s->impl, "gemm %dx%d kc%lld mc%lld nc%lld u%d pf%d %s", spec.mr, spec.nr,
             (long long)spec.kc, (long long)spec.mc, (long long)spec.nc, spec.unroll, spec.prefetch, dc_jit_impl(jk));
    s->writes_all = true;
    s->call = gemm_call;
    s->prepare = gemm_prepare;
    s->ctx = c;
    return true;
}
