/* img_layers.c — the pieces shared by the image networks (see img_layers.h): multi-head
 * attention written with matmul and softmax, the pre-norm transformer encoder, and the input
 * type check. Param names follow the prior's transformer (blockL.{ln1,attn,ln2,mlp}, ln_f). */
#include "models/disco/img_layers.h"

#include <math.h>

/* t [B,N,H*dh] -> [B,H,N,dh] */
static dc_t split_heads(dc_graph *g, dc_t t, int64_t batch, int64_t n, int64_t heads, int64_t dh) {
    t = dc_reshape(g, t, 4, ((int64_t[]){ batch, n, heads, dh }));                 /* [B,N,H,dh] */
    return dc_transpose(g, t, DC_INTS(0, 2, 1, 3));                                 /* [B,H,N,dh] */
}

dc_t dc_img_attention(dc_graph *g, dc_t x, dc_t ctx, int heads, const char *name, dc_init_kind o_init) {
    const dc_type *xt = dc_operand_at(g, x, "attention", 1, __FILE__, __LINE__);
    dc_shape xs = xt ? xt->shape : (dc_shape){ 0 };
    const dc_type *ct = xt ? dc_operand_at(g, ctx, "attention", 2, __FILE__, __LINE__) : NULL;
    if (!ct) return DC_NONE;
    char a[64], b[64];
    if (xs.rank != 3 || ct->shape.rank != 3 || ct->shape.dim[0] != xs.dim[0]) {
        dc_fail_at(g, __FILE__, __LINE__, "attention", "queries and context must be [B,N,C] and [B,M,D], got %s and %s",
                   dc_type_str(xt, a, sizeof a), dc_type_str(ct, b, sizeof b));
        return DC_NONE;
    }
    int64_t batch = xs.dim[0], n = xs.dim[1], c = xs.dim[2], m = ct->shape.dim[1];
    if (heads < 1 || c % heads) {
        dc_fail_at(g, __FILE__, __LINE__, "attention", "%lld channels are not divisible by %d heads", (long long)c, heads);
        return DC_NONE;
    }
    int64_t dh = c / heads;
    dc_t out = DC_NONE;
    DC_SCOPE(g, name) {
        dc_t q = split_heads(g, dc_linear(g, x, c, .name = "q"), batch, n, heads, dh);      /* [B,H,N,dh] */
        /* no bias: q . b_k is the same for every key of a query, which softmax ignores */
        dc_t k = split_heads(g, dc_linear(g, ctx, c, .name = "k", .bias = false), batch, m, heads, dh); /* [B,H,M,dh] */
        dc_t v = split_heads(g, dc_linear(g, ctx, c, .name = "v"), batch, m, heads, dh);    /* [B,H,M,dh] */
        dc_t s = dc_matmul(g, q, k, .trans_b = true);                                       /* [B,H,N,M] */
        dc_t p = dc_softmax(g, dc_mul_scalar(g, s, 1.0f / sqrtf((float)dh)), -1);
        dc_t o = dc_matmul(g, p, v);                                                        /* [B,H,N,dh] */
        o = dc_transpose(g, o, DC_INTS(0, 2, 1, 3));                                        /* [B,N,H,dh] */
        o = dc_reshape(g, o, 3, ((int64_t[]){ batch, n, c }));                              /* [B,N,C] */
        out = dc_linear(g, o, c, .name = "o", .init = o_init);
    }
    return out;
}

/* h [B,N,d] -> [B,N,d]: linear d -> 4d, GELU, linear 4d -> d */
static dc_t mlp(dc_graph *g, dc_t h, int64_t d) {
    dc_t out = DC_NONE;
    DC_SCOPE(g, "mlp") {
        out = dc_gelu(g, dc_linear(g, h, 4 * d, .name = "up"));                             /* [B,N,4d] */
        out = dc_linear(g, out, d, .name = "down");                                         /* [B,N,d] */
    }
    return out;
}

dc_t dc_img_transformer(dc_graph *g, dc_t h, int heads, int layers) {
    const dc_type *t = dc_operand_at(g, h, "transformer", 1, __FILE__, __LINE__);
    if (!t) return DC_NONE;
    int64_t d = t->shape.dim[t->shape.rank > 0 ? t->shape.rank - 1 : 0];
    for (int l = 0; l < layers; l++) {
        char name[24];
        snprintf(name, sizeof name, "block%d", l);
        DC_SCOPE(g, name) {
            dc_t n = dc_layer_norm_m(g, h, .name = "ln1");
            h = dc_add(g, h, dc_img_attention(g, n, n, heads, "attn", DC_INIT_KAIMING));
            h = dc_add(g, h, mlp(g, dc_layer_norm_m(g, h, .name = "ln2"), d));
        }
    }
    return dc_layer_norm_m(g, h, .name = "ln_f");
}

bool dc_img_expect_at(dc_graph *g, dc_t t, const char *what, const char *name, dc_dtype dt, int rank,
                      const int64_t *dims, const char *file, int line) {
    const dc_type *tt = dc_operand_at(g, t, what, 1, file, line);
    if (!tt) return false;
    bool ok = tt->dtype == dt && tt->shape.rank == rank;
    for (int i = 0; ok && i < rank; i++) ok = dims[i] < 0 || tt->shape.dim[i] == dims[i];
    if (ok) return true;
    char want[160], got[160];
    size_t k = (size_t)snprintf(want, sizeof want, "%s[", dc_dtype_name(dt));
    for (int i = 0; i < rank && k < sizeof want; i++)
        k += (size_t)(dims[i] < 0 ? snprintf(want + k, sizeof want - k, "%sB", i ? "," : "")
                                  : snprintf(want + k, sizeof want - k, "%s%lld", i ? "," : "", (long long)dims[i]));
    if (k < sizeof want) snprintf(want + k, sizeof want - k, "]");
    dc_fail_at(g, file, line, what, "%s must be %s, got %s", name, want, dc_type_str(tt, got, sizeof got));
    return false;
}
