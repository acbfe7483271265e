/* prior.c — the autoregressive prior of DisCo-Diff over the m discrete latents: a small
 * pre-norm causal transformer (token + position embeddings, masked multi-head self-attention
 * written with matmul/softmax and an iota causal mask, GELU MLP, layer norms), trained with
 * next-code cross-entropy through the shared trainer, and sampled code by code on the host
 * with a temperature. Position i reads token i, which is a start token at i = 0 (id k, or
 * k + c for an example of class c when the prior is class-conditional) and code i-1 after,
 * and predicts code i. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/disco/disco.h"
#include "models/train.h"

/* the masked-out attention score: exp() of it minus the row max is exactly 0 */
#define MASKED_SCORE -1e9f

/* h [B,m,d] -> [B,m,d]: causal multi-head self-attention, params NAME.{q,k,v,o} */
static dc_t causal_attention(dc_graph *g, dc_t h, const dc_prior_config *c, int64_t batch) {
    int64_t m = c->m, d = c->d_model, nh = c->heads, dh = d / nh;
    dc_t out = DC_NONE;
    DC_SCOPE(g, "attn") {
        dc_t qkv[3];
        const char *names[3] = { "q", "k", "v" };
        for (int i = 0; i < 3; i++) {
            dc_t t = dc_linear(g, h, d, .name = names[i]);                          /* [B,m,d] */
            t = dc_reshape(g, t, 4, ((int64_t[]){ batch, m, nh, dh }));             /* [B,m,H,dh] */
            qkv[i] = dc_transpose(g, t, DC_INTS(0, 2, 1, 3));                       /* [B,H,m,dh] */
        }
        dc_t s = dc_matmul(g, qkv[0], qkv[1], .trans_b = true);                     /* [B,H,m,m] */
        s = dc_mul_scalar(g, s, 1.0f / sqrtf((float)dh));
        dc_t row = dc_iota(g, 0, 2, ((int64_t[]){ m, m }));                         /* [m,m] query i */
        dc_t col = dc_iota(g, 1, 2, ((int64_t[]){ m, m }));                         /* [m,m] key j */
        s = dc_where(g, dc_le(g, col, row), s, dc_scalar(g, MASKED_SCORE));         /* j <= i kept */
        dc_t p = dc_softmax(g, s, -1);
        dc_t o = dc_matmul(g, p, qkv[2]);                                           /* [B,H,m,dh] */
        o = dc_transpose(g, o, DC_INTS(0, 2, 1, 3));                                /* [B,m,H,dh] */
        o = dc_reshape(g, o, 3, ((int64_t[]){ batch, m, d }));
        out = dc_linear(g, o, d, .name = "o");
    }
    return out;
}

/* h [B,m,d] -> [B,m,d]: linear d -> 4d, GELU, linear 4d -> d */
static dc_t mlp(dc_graph *g, dc_t h, int64_t d) {
    dc_t out = DC_NONE;
    DC_SCOPE(g, "mlp") {
        out = dc_gelu(g, dc_linear(g, h, 4 * d, .name = "up"));
        out = dc_linear(g, out, d, .name = "down");
    }
    return out;
}

dc_t dc_prior_logits(dc_graph *g, dc_t tokens, const dc_prior_config *c) {
    const dc_type *tt = dc_type_of(g, tokens);
    int64_t batch = tt && tt->shape.rank == 2 ? tt->shape.dim[0] : 1, m = c->m, d = c->d_model;
    dc_t logits = DC_NONE;
    DC_SCOPE(g, "prior") {
        int64_t vocab = c->k + (c->classes > 0 ? c->classes : 1);
        dc_t tok = dc_param(g, "tok", 2, ((int64_t[]){ vocab, d }), .init = DC_INIT_NORMAL, .a = 0.1f);
        dc_t pos = dc_param(g, "pos", 2, ((int64_t[]){ m, d }), .init = DC_INIT_NORMAL, .a = 0.1f);
        dc_t h = dc_add(g, dc_gather(g, tok, tokens), pos);                         /* [B,m,d] */
        for (int l = 0; l < c->layers; l++) {
            char name[16];
            snprintf(name, sizeof name, "block%d", l);
            DC_SCOPE(g, name) {
                h = dc_add(g, h, causal_attention(g, dc_layer_norm_m(g, h, .name = "ln1"), c, batch));
                h = dc_add(g, h, mlp(g, dc_layer_norm_m(g, h, .name = "ln2"), d));
            }
        }
        h = dc_layer_norm_m(g, h, .name = "ln_f");
        logits = dc_linear(g, h, c->k, .name = "head");                             /* [B,m,k] */
    }
    return logits;
}

dc_prior_config dc_prior_config_defaults(int m, int k) {
    return (dc_prior_config){ .m = m, .k = k, .d_model = 64, .heads = 4, .layers = 2 };
}

bool dc_prior_config_ok(const dc_prior_config *c, char *err, size_t len) {
    const char *bad = NULL;
    if (c->m < 1 || c->m > DC_TOY_MAX_LATENTS) bad = "the number of latents must be in [1, 64]";
    else if (c->k < 2 || c->k > DC_TOY_MAX_CODES) bad = "the number of codes must be in [2, 1024]";
    else if (c->d_model < 1 || c->heads < 1 || c->d_model % c->heads != 0)
        bad = "the width must be a positive multiple of the number of heads";
    else if (c->layers < 1) bad = "the prior needs at least one layer";
    else if (c->classes < 0 || c->classes > 1000) bad = "the number of classes must be in [0, 1000]";
    if (bad) snprintf(err, len, "prior: %s", bad);
    return !bad;
}

dc_graph *dc_prior_train_graph(const dc_prior_config *c, int64_t batch) {
    dc_graph *g = dc_graph_new("disco_prior_train");
    dc_t tokens = dc_input(g, "tokens", DC_I32, 2, ((int64_t[]){ batch, c->m }));
    dc_t codes = dc_input(g, "codes", DC_I32, 2, ((int64_t[]){ batch, c->m }));
    dc_output(g, dc_cross_entropy(g, dc_prior_logits(g, tokens, c), codes), "loss");
    return g;
}

dc_graph *dc_prior_sample_graph(const dc_prior_config *c, int64_t batch) {
    dc_graph *g = dc_graph_new("disco_prior_sample");
    dc_t tokens = dc_input(g, "tokens", DC_I32, 2, ((int64_t[]){ batch, c->m }));
    dc_output(g, dc_prior_logits(g, tokens, c), "logits");
    return g;
}

/* The start token of an example of class cls (ignored unless the prior has classes). */
static int32_t start_token(const dc_prior_config *c, int32_t cls) { return c->k + (c->classes > 0 ? cls : 0); }

/* a row of codes [m] shifted right behind the start token, into tokens [m] */
static void shift_codes(const int32_t *codes, int m, int32_t start, int32_t *tokens) {
    tokens[0] = start;
    for (int i = 1; i < m; i++) tokens[i] = codes[i - 1];
}

typedef struct {
    const dc_prior_config *c;
    const int32_t *codes;   /* [n,m] */
    const int32_t *classes; /* [n] or NULL */
    dc_tensor *tokens, *targets;  /* i32 [B,m] staging */
} prior_feeder;

static bool prior_feed(void *ctx, dc_exec *e, const int64_t *idx, int64_t batch, char *err, size_t len) {
    prior_feeder *f = ctx;
    int32_t *tok = f->tokens->data, *tgt = f->targets->data;
    int m = f->c->m;
    for (int64_t b = 0; b < batch; b++) {
        const int32_t *row = f->codes + idx[b] * m;
        shift_codes(row, m, start_token(f->c, f->classes ? f->classes[idx[b]] : 0), tok + b * m);
        memcpy(tgt + b * m, row, (size_t)m * sizeof *tgt);
    }
    return dc_exec_set_input(e, "tokens", f->tokens, err, len) && dc_exec_set_input(e, "codes", f->targets, err, len);
}

/* false and err unless the start classes of n examples are in range (or the prior has none) */
static bool classes_ok(const dc_prior_config *c, const int32_t *classes, int64_t n, char *err, size_t len) {
    if ((c->classes > 0) != (classes != NULL)) {
        snprintf(err, len, "prior: %s", c->classes > 0 ? "a class-conditional prior needs the classes"
                                                       : "classes given to a prior without classes");
        return false;
    }
    for (int64_t i = 0; classes && i < n; i++)
        if (classes[i] < 0 || classes[i] >= c->classes) {
            snprintf(err, len, "prior: class %d of example %lld is outside [0, %d)", classes[i], (long long)i,
                     c->classes);
            return false;
        }
    return true;
}

bool dc_prior_train(const dc_prior_config *pc, const dc_train_config *tc, const int32_t *codes,
                    const int32_t *classes, int64_t n, dc_exec *dst, double *final_loss, char *err, size_t len) {
    if (!dc_prior_config_ok(pc, err, len) || !classes_ok(pc, classes, n, err, len)) return false;
    for (int64_t i = 0; i < n * pc->m; i++)
        if (codes[i] < 0 || codes[i] >= pc->k) {
            snprintf(err, len, "prior: code %d at %lld is outside [0, %d)", codes[i], (long long)i, pc->k);
            return false;
        }
    dc_type bt = { DC_I32, { 2, { tc->batch, pc->m } } };
    prior_feeder f = { pc, codes, classes, dc_tensor_new(&bt), dc_tensor_new(&bt) };
    dc_train_data d = { n, prior_feed, &f };
    dc_trainer *t = dc_trainer_new(dc_prior_train_graph(pc, tc->batch), tc, &d, err, len);
    float *losses = t ? malloc((size_t)tc->steps * sizeof *losses) : NULL;
    if (t && !losses && tc->steps > 0) abort(); /* out of memory */
    bool ok = t && dc_trainer_run(t, tc->steps, losses, err, len) &&
              dc_exec_copy_params(dc_trainer_exec(t), dst, &(dc_param_map){ 0 }, err, len);
    if (ok && final_loss) *final_loss = dc_loss_tail_mean(losses, tc->steps);
    free(losses);
    dc_trainer_free(t);
    dc_tensor_free(f.tokens);
    dc_tensor_free(f.targets);
    return ok;
}

/* Draws one code from logits [k] / temperature with the uniform u in (0, 1). */
static int32_t draw_code(const float *logits, int k, float temperature, float u) {
    double mx = logits[0], p[DC_TOY_MAX_CODES], total = 0;
    for (int j = 1; j < k; j++) mx = logits[j] > mx ? logits[j] : mx;
    for (int j = 0; j < k; j++) total += p[j] = exp(((double)logits[j] - mx) / temperature);
    double target = (double)u * total, acc = 0;
    for (int j = 0; j < k; j++) {
        acc += p[j];
        if (target < acc) return j;
    }
    return k - 1;
}

bool dc_prior_sample(dc_exec *e, const dc_prior_config *c, float temperature, uint64_t seed,
                     const int32_t *classes, int32_t *codes, char *err, size_t len) {
    const dc_graph *g = dc_exec_graph(e);
    int in = dc_graph_find_input(g, "tokens");
    if (in < 0 || g->nodes[in].type.shape.rank != 2 || g->nodes[in].type.shape.dim[1] != c->m) {
        snprintf(err, len, "prior: the executor is not a prior sampling program for %d latents", c->m);
        return false;
    }
    if (!(temperature > 0) || !isfinite(temperature)) {
        snprintf(err, len, "prior: the temperature must be a positive number, got %g", (double)temperature);
        return false;
    }
    int64_t n = g->nodes[in].type.shape.dim[0];
    if (!classes_ok(c, classes, n, err, len)) return false;
    dc_tensor *tok = dc_tensor_new(&g->nodes[in].type);
    int32_t *tv = tok->data;
    for (int64_t b = 0; b < n; b++) tv[b * c->m] = start_token(c, classes ? classes[b] : 0);
    bool ok = true;
    for (int i = 0; ok && i < c->m; i++) {
        ok = dc_exec_set_input(e, "tokens", tok, err, len) && dc_exec_run(e, err, len);
        if (!ok) break;
        const float *logits = dc_exec_output(e, 0)->data;   /* [n,m,k] */
        for (int64_t b = 0; b < n; b++) {
            float u = dc_rng_uniform01(seed, (uint64_t)i, (uint64_t)b);
            int32_t code = draw_code(logits + (b * c->m + i) * c->k, c->k, temperature, u);
            codes[b * c->m + i] = code;
            if (i + 1 < c->m) tv[b * c->m + i + 1] = code;
        }
    }
    dc_tensor_free(tok);
    return ok;
}
