/* fmnist_disco.c — the `fmnist-disco` model of the registry: DisCo-Diff on class-conditional
 * Fashion-MNIST (or, with --baseline, the same U-Net as a plain class-conditional EDM), trained
 * by dc_img_train (models/disco/images.c) into the model file DIR/fmnist-disco.model or
 * DIR/fmnist-edm.model. The denoiser stage checkpoints to DIR/fmnist-disco.ckpt (or
 * fmnist-edm.ckpt), which --resume continues. Its own options write straight into a
 * dc_img_setup; the common options override the denoiser stage's config, and the seed, threads
 * and backend also reach the prior's stage. */
#include <stdio.h>

#include "models/disco/images.h"
#include "models/models.h"

typedef struct {
    dc_img_setup s;
    bool quick;
} options_t;

static void init(dc_train_config *c, void *options) {
    dc_img_setup s = dc_img_setup_defaults();
    *c = s.train;
    if (options) *(options_t *)options = (options_t){ .s = s };
}

static bool train(const dc_train_config *c, const dc_train_request *r, char *err, size_t len) {
    const options_t *o = r->options;
    dc_img_setup s = o->s;
    s.train = *c;
    if (o->quick) dc_img_setup_quick(&s);
    s.prior = (dc_prior_config){ .m = s.model.m, .k = s.model.k, .d_model = s.prior.d_model, .heads = s.prior.heads,
                                 .layers = s.prior.layers, .classes = DC_IMG_CLASSES };
    if (s.prior_train.warmup > s.prior_train.steps / 10) s.prior_train.warmup = s.prior_train.steps / 10;
    s.prior_train.seed = c->seed;
    s.prior_train.threads = c->threads;
    s.prior_train.backend = c->backend;
    s.prior_train.progress = c->progress;
    const char *name = s.model.baseline ? "fmnist-edm" : "fmnist-disco";
    char ckpt[4096], path[4096], file[64];
    snprintf(file, sizeof file, "%s.ckpt", name);
    if (!dc_train_out_path(r->out_dir, file, ckpt, sizeof ckpt, err, len)) return false;
    snprintf(file, sizeof file, "%s.model", name);
    if (!dc_train_out_path(r->out_dir, file, path, sizeof path, err, len)) return false;
    dc_dataset ds = { 0 };
    if (!dc_fmnist_load(r->data_dir, true, &ds, err, len)) return false;
    const dc_img_config *m = &s.model;
    if (m->baseline)
        fprintf(r->out, "%s: class-conditional EDM, U-Net of %d channels, %lld steps of batch %lld%s\n", name, m->ch,
                (long long)s.train.steps, (long long)s.train.batch, o->quick ? " (quick)" : "");
    else
        fprintf(r->out,
                "%s: %d latents of %d codes (%s), U-Net of %d channels, ViT of width %d; %lld steps of batch %lld; "
                "prior %lld steps%s\n", name, m->m, m->k, m->latent_groups == 2 ? "2 groups" : "one group", m->ch,
                m->vit_d, (long long)s.train.steps, (long long)s.train.batch, (long long)s.prior_train.steps,
                o->quick ? " (quick)" : "");
    fflush(r->out);
    dc_img_report rep;
    bool ok = dc_img_train(&s, &ds, ckpt, r->resume, path, &rep, err, len);
    dc_dataset_free(&ds);
    if (!ok) return false;
    fprintf(r->out, "denoiser loss %.4f (mean of the last tenth), %lld params, %.1f s, %.1f images/s\n", rep.loss,
            (long long)rep.params, rep.train_s, rep.images_per_s);
    if (!m->baseline)
        fprintf(r->out, "prior loss %.4f nats, %lld params, %.1f s\n", rep.prior_loss, (long long)rep.prior_params,
                rep.prior_s);
    fprintf(r->out, "checkpoint %s\nwrote %s\n", ckpt, path);
    return true;
}

static const dc_opt options[] = {
    DC_OPT_FLAG("--baseline", options_t, s.model.baseline,
                "train the class-conditional EDM baseline (the same U-Net, no encoder,\n"
                "latents or prior) into DIR/fmnist-edm.model"),
    DC_OPT_FLAG("--quick", options_t, quick,
                "tiny networks and a few steps of each stage: the whole path in\n"
                "seconds, a test of the plumbing (it overrides --steps and --batch)"),
    DC_OPT_INT("--latents", "M", options_t, s.model.m, 1, DC_IMG_MAX_LATENTS, "latents per image (default 8)"),
    DC_OPT_INT("--codes", "K", options_t, s.model.k, 2, DC_IMG_MAX_CODES, "codes per latent (default 16)"),
    DC_OPT_INT("--groups", "G", options_t, s.model.latent_groups, 1, 2,
               "1: every cross-attention reads all latents; 2: group-hierarchical\n"
               "latents, the first half read at 7x7, the second at 14x14 (default 1)"),
    DC_OPT_INT("--channels", "C", options_t, s.model.ch, 8, 1024,
               "U-Net channels at 28x28 (2C at 14x14 and 7x7; default 16)"),
    DC_OPT_POS("--tau", "T", options_t, s.model.tau, 1e30, "Gumbel-softmax temperature in training (default 1)"),
    DC_OPT_NUM("--usage", "U", options_t, s.model.usage_weight, 0, 1e30,
               "adds U * KL(batch-mean code probabilities || uniform) to the loss, the\n"
               "toy's remedy for unused codes (default 0)"),
    DC_OPT_INT("--prior-steps", "N", options_t, s.prior_train.steps, 1, 10000000,
               "training steps of the prior (default 2000)"),
    { 0 }
};

static dc_graph *model_train_graph(const dc_train_config *c, const void *options) {
    options_t o;
    if (options) o = *(const options_t *)options;
    else init(&(dc_train_config){ 0 }, &o);
    if (o.quick) dc_img_setup_quick(&o.s);
    return dc_img_train_graph(&o.s.model, o.quick ? o.s.train.batch : c->batch);
}

const dc_model dc_model_fmnist_disco = {
    .name = "fmnist-disco",
    .summary = "DisCo-Diff (or --baseline: EDM) on class-conditional Fashion-MNIST: U-Net with\n"
               "self- and cross-attention, ViT encoder, autoregressive prior; writes\n"
               "DIR/fmnist-disco.model or DIR/fmnist-edm.model",
    .options = options,
    .options_size = sizeof(options_t),
    .init = init,
    .train_graph = model_train_graph,
    .train = train,
};
