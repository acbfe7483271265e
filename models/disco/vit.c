/* vit.c — the ViT encoder of DisCo-Diff on images (images.h): the clean image cut into
 * P = (28/p)^2 patches of p x p pixels, each a linear token of width vit_d plus a learned
 * position, m learned latent tokens put in front, the shared pre-norm transformer encoder
 * (img_layers.c) with vit_layers layers, and the m latent tokens' outputs mapped to k logits
 * each. Params vit.*. */
#include "models/disco/images.h"

#include "models/disco/img_layers.h"

dc_t dc_img_vit(dc_graph *g, dc_t y, const dc_img_config *c) {
    if (dc_graph_failed(g)) return DC_NONE;
    if (!c || c->vit_patch < 1 || DC_IMG_SIDE % c->vit_patch) {
        dc_fail_at(g, __FILE__, __LINE__, "vit", "the patch side must divide %d, got %d", DC_IMG_SIDE,
                   c ? c->vit_patch : 0);
        return DC_NONE;
    }
    if (!dc_img_expect(g, y, "vit", "y", DC_F32, 4, ((int64_t[]){ -1, DC_IMG_SIDE, DC_IMG_SIDE, 1 })))
        return DC_NONE;
    int64_t batch = dc_type_of(g, y)->shape.dim[0], p = c->vit_patch, n = DC_IMG_SIDE / p, d = c->vit_d, m = c->m;
    dc_t logits = DC_NONE;
    DC_SCOPE(g, "vit") {
        dc_t t = dc_reshape(g, y, 5, ((int64_t[]){ batch, n, p, n, p }));              /* [B,n,p,n,p] */
        t = dc_transpose(g, t, DC_INTS(0, 1, 3, 2, 4));                                 /* [B,n,n,p,p] */
        t = dc_reshape(g, t, 3, ((int64_t[]){ batch, n * n, p * p }));                 /* [B,P,p*p] */
        dc_t pos = dc_param(g, "pos", 2, ((int64_t[]){ n * n, d }), .init = DC_INIT_NORMAL, .a = 0.1f);
        t = dc_add(g, dc_linear(g, t, d, .name = "patch"), pos);                       /* [B,P,d] */
        dc_t lat = dc_param(g, "latents", 2, ((int64_t[]){ m, d }), .init = DC_INIT_NORMAL, .a = 0.1f);
        lat = dc_broadcast_to(g, lat, 3, ((int64_t[]){ batch, m, d }));                /* [B,m,d] */
        dc_t h = dc_concat(g, 1, lat, t);                                               /* [B,m+P,d] */
        h = dc_img_transformer(g, h, c->heads, c->vit_layers);
        h = dc_slice_axis(g, h, 1, 0, m);                                               /* [B,m,d] */
        logits = dc_linear(g, h, c->k, .name = "head");                                 /* [B,m,k] */
    }
    return logits;
}
