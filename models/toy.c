/* toy.c — the `toy` model of the registry: DisCo-Diff (or, with --baseline, the plain EDM
 * baseline) on the paper's 8 Gaussians, trained by dc_toy_train (models/disco/) into the model
 * file DIR/toy-disco.ckpt or DIR/toy-edm.ckpt that `disco sample toy` and `disco eval toy` read.
 * Its own options write straight into a dc_toy_setup, whose defaults (dc_toy_setup_defaults)
 * are the model's: the common options override the denoiser run's config (steps, batch, lr,
 * seed, threads, backend), and the seed also keys the data and the prior's run. */
#include <stdio.h>

#include "models/disco/disco.h"
#include "models/models.h"

static void init(dc_train_config *c, void *options) {
    dc_toy_setup s = dc_toy_setup_defaults();
    *c = s.train;
    if (options) *(dc_toy_setup *)options = s;
}

static bool train(const dc_train_config *c, const dc_train_request *r, char *err, size_t len) {
    dc_toy_setup s = *(const dc_toy_setup *)r->options;
    s.train = *c;
    s.prior = dc_prior_config_defaults(s.model.m, s.model.k);
    if (s.prior_train.warmup > s.prior_train.steps / 10) s.prior_train.warmup = s.prior_train.steps / 10;
    s.prior_train.seed = s.data_seed = c->seed;
    s.prior_train.threads = c->threads;
    s.prior_train.backend = c->backend;
    s.prior_train.progress = c->progress;
    char path[4096];
    if (!dc_train_out_path(r->out_dir, s.model.baseline ? "toy-edm.ckpt" : "toy-disco.ckpt", path, sizeof path, err,
                           len))
        return false;
    if (s.model.baseline)
        fprintf(r->out, "toy: EDM baseline, %lld steps of batch %lld, sigma_data %g\n", (long long)s.train.steps,
                (long long)s.train.batch, (double)s.model.sigma_data);
    else
        fprintf(r->out,
                "toy: DisCo-Diff with %d latent(s) of %d codes, tau %g, %lld steps of batch %lld, sigma_data %g; "
                "prior %lld steps\n", s.model.m, s.model.k, (double)s.model.tau, (long long)s.train.steps,
                (long long)s.train.batch, (double)s.model.sigma_data, (long long)s.prior_train.steps);
    fflush(r->out);
    dc_toy_report rep;
    if (!dc_toy_train(&s, path, &rep, err, len)) return false;
    fprintf(r->out, "denoiser loss %.4f (mean of the last tenth), %.1f s\n", rep.loss, rep.train_s);
    if (!s.model.baseline) fprintf(r->out, "prior loss %.4f nats, %.1f s\n", rep.prior_loss, rep.prior_s);
    fprintf(r->out, "wrote %s\n", path);
    return true;
}

static const dc_opt options[] = {
    DC_OPT_FLAG("--baseline", dc_toy_setup, model.baseline,
                "train the plain EDM baseline (no encoder, latents or prior) into\n"
                "DIR/toy-edm.ckpt instead of DisCo-Diff into DIR/toy-disco.ckpt"),
    DC_OPT_INT("--latents", "M", dc_toy_setup, model.m, 1, DC_TOY_MAX_LATENTS, "latents per point (default 1)"),
    DC_OPT_INT("--codes", "K", dc_toy_setup, model.k, 2, DC_TOY_MAX_CODES, "codes per latent (default 8)"),
    DC_OPT_POS("--tau", "T", dc_toy_setup, model.tau, 1e30, "Gumbel-softmax temperature in training (default 1)"),
    DC_OPT_POS("--sigma-data", "X", dc_toy_setup, model.sigma_data, 1e30, "EDM sigma_data (default 0.5)"),
    DC_OPT_NUM("--usage", "U", dc_toy_setup, model.usage_weight, 0, 1e30,
               "adds U * KL(batch-mean code probabilities || uniform) to the loss,\n"
               "which keeps every code in use (default 0; docs/toy.md)"),
    DC_OPT_INT("--prior-steps", "N", dc_toy_setup, prior_train.steps, 1, 10000000,
               "training steps of the prior (default 600)"),
    { 0 }
};

const dc_model dc_model_toy = {
    .name = "toy",
    .summary = "DisCo-Diff (or --baseline: plain EDM) on 8 Gaussians; writes the model file\n"
               "DIR/toy-disco.ckpt or DIR/toy-edm.ckpt for `disco sample toy` and `disco eval toy`",
    .options = options,
    .options_size = sizeof(dc_toy_setup),
    .init = init,
    .without = (const char *const[]){ "--resume", "--ckpt-every", "--data", NULL },
    .train = train,
};
