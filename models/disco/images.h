/* images.h — DisCo-Diff on images: class-conditional Fashion-MNIST (28x28x1 NHWC, pixels in
 * [-1, 1]) with a U-Net denoiser that reads the discrete latents through cross-attention, a ViT
 * encoder that infers them from the clean image, and the EDM baseline (the same U-Net without
 * latents). The networks are built in the DSL (unet.c, vit.c); the training, encoding and
 * denoising graphs follow them (images.c).
 *
 * Latents: m of them, k codes each, plus a null code (id k) that stands for "no latent" (latent
 * dropout in training, the unconditional branch of guidance on latents in sampling). A latent
 * is fed to the U-Net as a one-hot row over k + 1 ids, embedded (a learned table plus a
 * position per latent) and passed through a small transformer encoder; its output tokens are
 * the keys and values of the U-Net's cross-attentions.
 *
 * Group-hierarchical latents (latent_groups = 2): latents 0 .. m/2-1 are read by the
 * cross-attentions at 7x7, latents m/2 .. m-1 by those at 14x14 (the coarse resolution gets
 * the first group); with latent_groups = 1 every cross-attention reads all m. */
#ifndef DC_MODELS_DISCO_IMAGES_H
#define DC_MODELS_DISCO_IMAGES_H

#include "frontend/dsl.h"

#define DC_IMG_SIDE 28
#define DC_IMG_PIXELS (DC_IMG_SIDE * DC_IMG_SIDE)
#define DC_IMG_CLASSES 10
#define DC_IMG_MAX_LATENTS 32
#define DC_IMG_MAX_CODES 512
#define DC_IMG_GROUPS 8         /* group-norm groups of the U-Net: ch must be a multiple */

typedef struct {
    bool baseline;          /* EDM: no encoder and no latents (the U-Net has no cross-attention) */
    int m, k;               /* latents and codes per latent (k + 1 ids with the null code) */
    int latent_groups;      /* 1, or 2 (hierarchical, see above; m even) */
    float tau;              /* Gumbel-softmax temperature in training (1) */
    float sigma_data;       /* EDM sigma_data (0.5) */
    float null_prob;        /* latent dropout: share of examples trained on the null code (0.1) */
    int ch;                 /* U-Net channels at 28x28; 2 ch at 14x14 and 7x7 */
    int emb;                /* width of the noise + class embedding */
    int heads;              /* heads of every attention (U-Net, latent transformer, ViT) */
    int lat_d, lat_layers;  /* latent tokens: width and transformer layers */
    int vit_d, vit_layers;  /* ViT encoder: width and transformer layers */
    int vit_patch;          /* patch side (divides 28) */
} dc_img_config;

dc_img_config dc_img_config_defaults(void);
/* false and err naming the field when c is inconsistent (m, k out of range, widths not
 * divisible by heads or by the group-norm groups, patch not dividing 28, ...) */
bool dc_img_config_ok(const dc_img_config *c, char *err, size_t len);

/* ---- the networks (unet.c, vit.c) --------------------------------------------------- */

/* The raw U-Net F: x_in [B,28,28,1] (c_in * x), c_noise [B,1], labels i32 [B] (0..9),
 * lat [B,m,lat_d] latent tokens (DC_NONE for the baseline) -> [B,28,28,1]. Params unet.* */
dc_t dc_img_unet(dc_graph *g, dc_t x_in, dc_t c_noise, dc_t labels, dc_t lat, const dc_img_config *c);
/* z [B,m,k+1] one-hot rows (null code = id k; soft rows pass gradients) -> latent tokens
 * [B,m,lat_d]. Params lat.* */
dc_t dc_img_latent_tokens(dc_graph *g, dc_t z, const dc_img_config *c);
/* The ViT encoder: clean images y [B,28,28,1] -> logits [B,m,k]. Params vit.* */
dc_t dc_img_vit(dc_graph *g, dc_t y, const dc_img_config *c);

/* ---- graphs (images.c) ---------------------------------------------------------------- */

/* Training: inputs "y" f32[B,28,28,1], "label" i32[B]; output "loss" (the EDM loss) and, with
 * latents, "drop_rate". Sigmas, noise, Gumbel noise and latent dropout are random ops. */
dc_graph *dc_img_train_graph(const dc_img_config *c, int64_t batch);
/* Denoising: inputs "x" f32[B,28,28,1], "sigma" f32[B,1], "label" i32[B] and, with latents,
 * "codes" i32[B,m] (k = the null code); output "denoised" f32[B,28,28,1]. */
dc_graph *dc_img_denoise_graph(const dc_img_config *c, int64_t batch);
/* Encoding: input "y" f32[B,28,28,1]; output "codes" i32[B,m] = argmax of the ViT's logits. */
dc_graph *dc_img_encode_graph(const dc_img_config *c, int64_t batch);

#endif
