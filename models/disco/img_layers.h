/* img_layers.h — the pieces the image networks share (unet.c, vit.c): multi-head attention
 * (self- or cross-), the pre-norm transformer encoder of the latent tokens and of the ViT, and
 * the check of a network's input types. Internal to models/disco. */
#ifndef DC_MODELS_DISCO_IMG_LAYERS_H
#define DC_MODELS_DISCO_IMG_LAYERS_H

#include "frontend/dsl.h"

/* x [B,N,C] attends to ctx [B,M,D] (pass ctx = x for self-attention), every query to every
 * key (no mask), with `heads` heads of C/heads -> [B,N,C]. Params NAME.q [C,C], NAME.k and
 * NAME.v [D,C], NAME.o [C,C] (linears, with biases but for k) in the current scope; NAME.o.w
 * starts from o_init (DC_INIT_ZEROS makes a residual branch start as the identity). */
dc_t dc_img_attention(dc_graph *g, dc_t x, dc_t ctx, int heads, const char *name, dc_init_kind o_init);

/* h [B,N,d] -> [B,N,d]: `layers` pre-norm transformer encoder layers blockL (h += attn(ln1(h)),
 * h += mlp(ln2(h)), the MLP d -> 4d -> d with GELU), then the final layer norm ln_f. */
dc_t dc_img_transformer(dc_graph *g, dc_t h, int heads, int layers);

/* Whether t is a value of g of dtype dt and shape dims (an entry < 0 takes any size; "B" in
 * the message); if not, records "FILE:LINE: what: NAME must be f32[B,28,28,1], got ..." (or
 * the invalid handle) and returns false. */
bool dc_img_expect_at(dc_graph *g, dc_t t, const char *what, const char *name, dc_dtype dt, int rank,
                      const int64_t *dims, const char *file, int line);
#define dc_img_expect(g, t, what, name, dt, rank, dims)                                    \
    dc_img_expect_at((g), (t), (what), (name), (dt), (rank), (dims), __FILE__, __LINE__)

#endif
