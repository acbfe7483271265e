/* unet.c — the raw U-Net F of DisCo-Diff on images and the latent tokens it reads (images.h).
 *
 * U-Net, NHWC, C = ch, E = emb; "attn" is self-attention over the positions followed, when
 * there are latent tokens, by cross-attention from the positions to the tokens (7x7 reads the
 * first latent group, 14x14 the second; one group = every latent):
 *
 *     embedding  sin/cos of c_noise at 32 frequencies -> linear E -> silu -> linear E,
 *                plus the label's row of unet.class [10,E]; silu -> e, read by every res block
 *     in         conv3x3 1 -> C                               28x28
 *     down0      res C -> C                  = s0             28x28
 *     down1      avg pool, res C -> 2C       = s1             14x14
 *     down2      avg pool, res 2C -> 2C, attn = s2            7x7
 *     mid0/mid1  res, attn / res             2C               7x7
 *     up2        [h,s2] res 4C -> 2C, attn                    7x7
 *     up1        up, [h,s1] res 3C -> 2C, attn                14x14
 *     up0        up, [h,s0] res 2C -> C                       28x28
 *     out        group norm, silu, conv3x3 C -> 1
 *
 * A res block: group norm, silu, conv3x3, + linear(e) per channel, group norm, silu, conv3x3,
 * plus the input (through a 1x1 conv when the channels change). "up" is a 1x1 conv 2C -> C
 * and nearest upsampling: the concatenations stay narrow. The attention output
 * projections start at zero, so each attention starts as the identity.
 *
 * Size at ch 32, emb 128, heads 4, lat_d 64, m 8: 769k params with latents (702k without),
 * and one image's forward pass takes 202 MFLOP with latents (195 without), counted from the
 * built graph's convolutions and matmuls at 2 FLOP a multiply-add: the 28x28 convolutions 76
 * of them, the 14x14 self-attention 16, a cross-attention 1 to 4.
 *
 * Latent tokens: z [B,m,k+1] @ lat.embed [k+1,lat_d] + lat.pos [m,lat_d], then the shared
 * pre-norm transformer encoder (img_layers.c) with lat_layers layers. */
#include "models/disco/images.h"

#include <math.h>

#include "models/disco/img_layers.h"

#define NOISE_FREQS 32

/* c_noise [B,1], labels [B] -> e [B,E]: params emb0, emb1 and the class table */
static dc_t embedding(dc_graph *g, dc_t c_noise, dc_t labels, const dc_img_config *c) {
    dc_t e = dc_edm_noise_features(g, c_noise, NOISE_FREQS);                            /* [B,2F] */
    e = dc_silu(g, dc_linear(g, e, c->emb, .name = "emb0"));                            /* [B,E] */
    e = dc_linear(g, e, c->emb, .name = "emb1");
    dc_t table = dc_param(g, "class", 2, ((int64_t[]){ DC_IMG_CLASSES, c->emb }), .init = DC_INIT_NORMAL, .a = 1.0f);
    return dc_silu(g, dc_add(g, e, dc_gather(g, table, labels)));                       /* [B,E] */
}

/* h [B,S,S,I] -> [B,S,S,O]: params res.{gn1,conv1,emb,gn2,conv2} and res.skip when I != O */
static dc_t res_block(dc_graph *g, dc_t h, dc_t emb, int64_t out) {
    const dc_type *t = dc_type_of(g, h);
    if (!t) return h;
    int64_t batch = t->shape.dim[0], in = t->shape.dim[3];
    dc_t y = DC_NONE;
    DC_SCOPE(g, "res") {
        y = dc_silu(g, dc_group_norm_m(g, h, .name = "gn1", .groups = DC_IMG_GROUPS));
        y = dc_conv(g, y, out, .name = "conv1");                                        /* [B,S,S,O] */
        dc_t e = dc_linear(g, emb, out, .name = "emb");                                 /* [B,O] */
        y = dc_add(g, y, dc_reshape(g, e, 4, ((int64_t[]){ batch, 1, 1, out })));       /* + [B,1,1,O] */
        y = dc_silu(g, dc_group_norm_m(g, y, .name = "gn2", .groups = DC_IMG_GROUPS));
        y = dc_conv(g, y, out, .name = "conv2");
        dc_t skip = in == out ? h : dc_conv(g, h, out, .name = "skip", .kernel = 1);   /* [B,S,S,O] */
        y = dc_add(g, skip, y);
    }
    return y;
}

/* h [B,S,S,C] -> [B,S,S,C]: self-attention over the S*S positions (params attn_gn, attn),
 * then with lat [B,M,D] cross-attention to it (params cross_gn, cross), each added to h */
static dc_t attention_block(dc_graph *g, dc_t h, dc_t lat, const dc_img_config *c) {
    const dc_type *t = dc_type_of(g, h);
    if (!t) return h;
    dc_shape s = t->shape;
    dc_t x = dc_reshape(g, h, 3, ((int64_t[]){ s.dim[0], s.dim[1] * s.dim[2], s.dim[3] }));   /* [B,SS,C] */
    dc_t n = dc_group_norm_m(g, x, .name = "attn_gn", .groups = DC_IMG_GROUPS);
    x = dc_add(g, x, dc_img_attention(g, n, n, c->heads, "attn", DC_INIT_ZEROS));
    if (lat.id >= 0) {
        n = dc_group_norm_m(g, x, .name = "cross_gn", .groups = DC_IMG_GROUPS);
        x = dc_add(g, x, dc_img_attention(g, n, lat, c->heads, "cross", DC_INIT_ZEROS));
    }
    return dc_reshape(g, x, 4, s.dim);                                                  /* [B,S,S,C] */
}

/* one level: a res block to out channels, then the attention block when attn; params NAME.* */
static dc_t level(dc_graph *g, const char *name, dc_t h, dc_t emb, int64_t out, bool attn, dc_t lat,
                  const dc_img_config *c) {
    DC_SCOPE(g, name) {
        h = res_block(g, h, emb, out);
        if (attn) h = attention_block(g, h, lat, c);
    }
    return h;
}

/* h [B,S,S,I] -> [B,2S,2S,O]: a 1x1 conv to O channels (params NAME.*), then nearest upsampling */
static dc_t upsample(dc_graph *g, dc_t h, int64_t out, const char *name) {
    return dc_upsample(g, dc_conv(g, h, out, .name = name, .kernel = 1), 2);
}

/* the argument checks of dc_img_unet: a graph error and false on the first bad one */
static bool unet_args_ok(dc_graph *g, dc_t x_in, dc_t c_noise, dc_t labels, dc_t lat, const dc_img_config *c) {
    if (dc_graph_failed(g)) return false;
    const char *bad = NULL;
    if (!c) bad = "no config";
    else if (c->ch < 1 || c->ch % DC_IMG_GROUPS) bad = "ch must be a positive multiple of the group-norm groups (8)";
    else if (c->baseline && lat.id >= 0) bad = "the baseline takes no latent tokens";
    else if (!c->baseline && lat.id < 0) bad = "the model with latents needs latent tokens (lat)";
    else if (!c->baseline && c->latent_groups != 1 && (c->latent_groups != 2 || c->m % 2))
        bad = "latent_groups must be 1, or 2 with an even m";
    if (bad) {
        dc_fail_at(g, __FILE__, __LINE__, "unet", "%s", bad);
        return false;
    }
    if (!dc_img_expect(g, x_in, "unet", "x_in", DC_F32, 4, ((int64_t[]){ -1, DC_IMG_SIDE, DC_IMG_SIDE, 1 })))
        return false;
    int64_t batch = dc_type_of(g, x_in)->shape.dim[0];
    return dc_img_expect(g, c_noise, "unet", "c_noise", DC_F32, 2, ((int64_t[]){ batch, 1 })) &&
           dc_img_expect(g, labels, "unet", "labels", DC_I32, 1, &batch) &&
           (c->baseline || dc_img_expect(g, lat, "unet", "lat", DC_F32, 3, ((int64_t[]){ batch, c->m, c->lat_d })));
}

dc_t dc_img_unet(dc_graph *g, dc_t x_in, dc_t c_noise, dc_t labels, dc_t lat, const dc_img_config *c) {
    if (!unet_args_ok(g, x_in, c_noise, labels, lat, c)) return DC_NONE;
    int64_t ch = c->ch, ch2 = 2 * ch;
    dc_t lat7 = lat, lat14 = lat;                          /* the tokens read at 7x7 and 14x14 */
    if (!c->baseline && c->latent_groups == 2) {
        lat7 = dc_slice_axis(g, lat, 1, 0, c->m / 2);                                   /* [B,m/2,D] */
        lat14 = dc_slice_axis(g, lat, 1, c->m / 2, c->m);                               /* [B,m/2,D] */
    }
    dc_t out = DC_NONE;
    DC_SCOPE(g, "unet") {
        dc_t emb = embedding(g, c_noise, labels, c);                                    /* [B,E] */
        dc_t h = dc_conv(g, x_in, ch, .name = "in");                                    /* [B,28,28,C] */
        dc_t s0 = h = level(g, "down0", h, emb, ch, false, DC_NONE, c);                 /* [B,28,28,C] */
        h = dc_avg_pool(g, h, 2);                                                       /* [B,14,14,C] */
        dc_t s1 = h = level(g, "down1", h, emb, ch2, false, DC_NONE, c);                /* [B,14,14,2C] */
        h = dc_avg_pool(g, h, 2);                                                       /* [B,7,7,2C] */
        dc_t s2 = h = level(g, "down2", h, emb, ch2, true, lat7, c);                    /* [B,7,7,2C] */
        h = level(g, "mid0", h, emb, ch2, true, lat7, c);
        h = level(g, "mid1", h, emb, ch2, false, DC_NONE, c);
        h = dc_concat(g, 3, h, s2);                                                     /* [B,7,7,4C] */
        h = level(g, "up2", h, emb, ch2, true, lat7, c);                                /* [B,7,7,2C] */
        h = dc_concat(g, 3, upsample(g, h, ch, "up1_proj"), s1);                        /* [B,14,14,3C] */
        h = level(g, "up1", h, emb, ch2, true, lat14, c);                               /* [B,14,14,2C] */
        h = dc_concat(g, 3, upsample(g, h, ch, "up0_proj"), s0);                        /* [B,28,28,2C] */
        h = level(g, "up0", h, emb, ch, false, DC_NONE, c);                             /* [B,28,28,C] */
        h = dc_silu(g, dc_group_norm_m(g, h, .name = "out_gn", .groups = DC_IMG_GROUPS));
        out = dc_conv(g, h, 1, .name = "out");                                          /* [B,28,28,1] */
    }
    return out;
}

dc_t dc_img_latent_tokens(dc_graph *g, dc_t z, const dc_img_config *c) {
    if (dc_graph_failed(g)) return DC_NONE;
    if (!c) {
        dc_fail_at(g, __FILE__, __LINE__, "latent tokens", "no config");
        return DC_NONE;
    }
    int64_t m = c->m, d = c->lat_d;
    if (!dc_img_expect(g, z, "latent tokens", "z", DC_F32, 3, ((int64_t[]){ -1, m, (int64_t)c->k + 1 })))
        return DC_NONE;
    dc_t h = DC_NONE;
    DC_SCOPE(g, "lat") {
        dc_t embed = dc_param(g, "embed", 2, ((int64_t[]){ (int64_t)c->k + 1, d }), .init = DC_INIT_NORMAL, .a = 0.1f);
        dc_t pos = dc_param(g, "pos", 2, ((int64_t[]){ m, d }), .init = DC_INIT_NORMAL, .a = 0.1f);
        h = dc_add(g, dc_matmul(g, z, embed), pos);                                     /* [B,m,D] */
        h = dc_img_transformer(g, h, c->heads, c->lat_layers);                          /* [B,m,D] */
    }
    return h;
}
