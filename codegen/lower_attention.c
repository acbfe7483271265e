/* lower_attention.c — the jit step of one attention: the consecutive nodes that are results of
 * one attention or attention_bwd computation (dc_same_computation; the schedule-results pass
 * puts them together) run as one flash-attention kernel (codegen/llvm/attention.c) that
 * writes every result the graph has; results it has not (the forward's lse in an inference
 * program, a gradient nobody asked for) go to scratch the step owns. The forward also keeps
 * the keys transposed per key block ([B*H][Sk/bk][D][bk], O(S*D)) as scratch, and the values
 * too when Dv is under a vector (the kernel's P V is then a dot product along the keys), the backward
 * the rows' delta = rowsum(dout * out). The kernel's work items are split statically over the OpenMP
 * threads, as the executor splits range kernels, so results are bitwise the same for a thread
 * count (and, as every item is computed alike, for any). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/lower_jit.h"
#include "passes/passes.h"

/* default block sizes, chosen by measurement (BH 8 and 32, S 256 and 1024, D 32 and 64, 2
 * threads): 128 keys per block are 5-10% faster without a mask; with the causal mask 64 waste
 * less on the diagonal blocks. `disco tune` may choose others per shape. */
#define BQ 64
#define BK(causal) ((causal) ? 64 : 128)

/* the key block for Sk keys: bk, or the power of two from 16 up that holds them when fewer
 * (a short sequence is one block with little padding; few sizes, few kernels) */
static int64_t key_block(int64_t bk, int64_t sk) {
    int64_t b = 16;
    while (b < sk && b < bk) b *= 2;
    return b;
}

typedef struct {
    dc_codegen_ctx base;
    dc_jit_kernel *jk;
    dc_attn_spec spec;
    dc_attn_sizes sizes;
    int64_t range;
    int result_node[4];   /* the node of each result, -1 when the graph has none */
    float *scratch[4];    /* the missing results' buffers */
    float *kt, *vt, *delta; /* forward: the transposed keys (and values); backward: delta */
} attn_ctx;

static void *alloc_floats(int64_t n) {
    void *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64));
    if (!p) abort(); /* out of memory */
    return p;
}

static void release(dc_codegen_ctx *base) {
    attn_ctx *c = (attn_ctx *)base;
    dc_jit_release(c->jk);
    for (int r = 0; r < 4; r++) free(c->scratch[r]);
    free(c->kt);
    free(c->vt);
    free(c->delta);
    free(c);
}

/* dst[bh][kb][d][c] = x[bh][kb*bk + c][d] (x: keys or values, D columns), 0 past Sk: each key
 * block transposed into one contiguous [D][bk] tile (rows of a whole head apart would alias in
 * the L1 cache) */
static void transpose_keys(const dc_attn_spec *s, const float *x, int64_t D, float *dst) {
    int64_t nkb = (s->sk + s->bk - 1) / s->bk;
    #pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < s->B * s->H * nkb; t++) {
        int64_t bh = t / nkb, j0 = t % nkb * s->bk, nk = s->sk - j0 < s->bk ? s->sk - j0 : s->bk;
        const float *src = x + (bh * s->sk + j0) * D;
        float *tile = dst + t * D * s->bk;
        for (int64_t j = 0; j < s->bk; j++)
            for (int64_t d = 0; d < D; d++) tile[d * s->bk + j] = j < nk ? src[j * D + d] : 0.0f;
    }
}

static void *result_ptr(const attn_ctx *c, const dc_frame *f, int r) {
    return c->result_node[r] >= 0 ? f->vals[c->result_node[r]].data : c->scratch[r];
}

static bool attn_call(const dc_step *s, const dc_frame *f, char *err, size_t len) {
    (void)err, (void)len;
    const attn_ctx *c = s->ctx;
    const dc_node *n = &f->g->nodes[s->node];
    int nf = 3 + c->spec.bias;
    void *args[12];
    int na = 0;
    args[na++] = (void *)&c->sizes;
    for (int k = 0; k < nf; k++) args[na++] = f->vals[n->in[k]].data;
    if (c->spec.backward) {
        for (int k = nf; k < nf + 3; k++) args[na++] = f->vals[n->in[k]].data;
        args[na++] = c->delta;
        for (int r = 0; r < 3; r++) args[na++] = result_ptr(c, f, r);
    } else {
        transpose_keys(&c->spec, f->vals[n->in[1]].data, c->spec.d, c->kt);
        args[na++] = c->kt;
        if (c->vt) {
            transpose_keys(&c->spec, f->vals[n->in[2]].data, c->spec.dv, c->vt);
            args[na++] = c->vt;
        }
        for (int r = 0; r < 2; r++) args[na++] = result_ptr(c, f, r);
    }
    dc_range_kernel kernel = dc_jit_entry(c->jk);
    int64_t range = c->range;
    #pragma omp parallel
    {
        int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t begin = range * t / nt, end = range * (t + 1) / nt;
        if (begin < end) kernel(args, begin, end);
    }
    return true;
}

void dc_attn_choice_text(int64_t bq, int64_t bk, char *buf, size_t len) {
    snprintf(buf, len, "flash bq=%lld bk=%lld", (long long)bq, (long long)bk);
}

bool dc_attn_choice_parse(const char *text, int64_t *bq, int64_t *bk) {
    long long q, k;
    int end = 0;
    if (sscanf(text, "flash bq=%lld bk=%lld%n", &q, &k, &end) != 2 || text[end] || q < 1 || q > 4096 || k < 1 || k > 4096)
        return false;
    *bq = q, *bk = k;
    return true;
}

void dc_attn_default_blocks(const dc_graph *g, int first, int64_t *bq, int64_t *bk) {
    const dc_node *n = &g->nodes[first];
    *bq = BQ;
    *bk = key_block(BK(n->attr.attention.causal), g->nodes[n->in[1]].type.shape.dim[2]);
}

bool dc_attention_step(const dc_graph *g, int first, int last, const char *choice, dc_step *s, char *why, size_t len) {
    const dc_node *n = &g->nodes[first];
    const dc_attention_attr *at = &n->attr.attention;
    bool bwd = n->op == DC_OP_ATTENTION_BWD;
    int n_results = bwd ? 3 + at->bias : 2;
    const dc_shape *qs = &g->nodes[n->in[0]].type.shape;
    dc_attn_spec spec = { .backward = bwd, .B = qs->dim[0], .H = qs->dim[1], .sq = qs->dim[2], .d = qs->dim[3],
                          .sk = g->nodes[n->in[1]].type.shape.dim[2], .dv = g->nodes[n->in[2]].type.shape.dim[3],
                          .scale = at->scale, .causal = at->causal, .bias = at->bias };
    if (!choice || !dc_attn_choice_parse(choice, &spec.bq, &spec.bk)) dc_attn_default_blocks(g, first, &spec.bq, &spec.bk);
    if (at->bias) {
        const dc_shape *bs = &g->nodes[n->in[3]].type.shape;
        int64_t st = 1;
        for (int i = bs->rank - 1; i >= 0; i--) {
            spec.bias_stride[4 - bs->rank + i] = bs->dim[i] == 1 ? 0 : st;
            st *= bs->dim[i];
        }
        spec.bias_last_broadcast = spec.bias_stride[3] == 0;
    }
    int result_node[4];
    dc_result_nodes(g, first, last, result_node, 4);
    if (bwd && at->bias && result_node[3] >= 0) {
        snprintf(why, len, "the flash backward has no bias gradient");
        return false;
    }
    char msg[DC_ERR_LEN];
    dc_jit_kernel *jk = dc_jit_compile_attention(&spec, NULL, msg, sizeof msg);
    if (!jk) {
        snprintf(why, len, "%s", msg);
        return false;
    }
    attn_ctx *c = calloc(1, sizeof *c);
    if (!c) abort(); /* out of memory */
    c->base.release = release;
    c->jk = jk;
    c->spec = spec;
    c->sizes = dc_attn_sizes_of(&spec);
    int64_t bh = spec.B * spec.H;
    c->range = bwd ? bh : bh * ((spec.sq + spec.bq - 1) / spec.bq);
    memcpy(c->result_node, result_node, sizeof result_node);
    for (int r = 0; r < n_results; r++)
        if (result_node[r] < 0)
            c->scratch[r] = alloc_floats(bwd ? dc_numel(&g->nodes[n->in[r]].type.shape) : bh * spec.sq * (r == 0 ? spec.dv : 1));
    if (bwd) c->delta = alloc_floats(bh * spec.sq);
    else {
        int64_t keys = (spec.sk + spec.bk - 1) / spec.bk * spec.bk;
        c->kt = alloc_floats(bh * spec.d * keys);
        if (spec.dv < dc_jit_lanes(jk)) c->vt = alloc_floats(bh * spec.dv * keys);
    }
    memset(s, 0, sizeof *s);
    s->node = last;
    s->provider = "jit";
    char rule[96];
    dc_attention_fuses(spec.B * spec.H, spec.sq, spec.sk, spec.d, spec.causal, rule, sizeof rule);
    snprintf(s->impl, sizeof s->impl, "flash %s bq%lld bk%lld %s (%s)", bwd ? "bwd" : "fwd", (long long)spec.bq,
             (long long)spec.bk, dc_jit_impl(jk), rule);
    s->writes_all = true;
    s->call = attn_call;
    s->ctx = c;
    return true;
}
