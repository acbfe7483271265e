/* models.h — the registry of trainable models: `disco train MODEL` finds a model here by name,
 * starts from its default training config, applies the command-line overrides (the common
 * options, and the model's own option rows when it has any) and calls its train function,
 * which owns everything model-specific (data, graph, evaluation, report). */
#ifndef DC_MODELS_MODELS_H
#define DC_MODELS_MODELS_H

#include "models/options.h"
#include "models/train.h"

/* What the command line asks of a training run besides the config. */
typedef struct {
    const char *out_dir;    /* directory of the checkpoint DIR/MODEL.ckpt (created if missing) */
    const char *resume;     /* checkpoint to continue from; NULL: start fresh */
    const char *data_dir;   /* dataset directory; NULL: the model's default */
    const void *options;    /* the model's own options (dc_model.options); NULL when it has none */
    FILE *out;              /* the report (final metrics, paths) */
} dc_train_request;

typedef struct {
    const char *name;       /* "fmnist-mlp" */
    const char *summary;
    dc_train_config defaults;
    /* Its own options beyond the common ones of `disco train` (NULL: none): rows writing into a
     * struct of options_size bytes that reaches train as r->options. */
    const dc_opt *options;
    size_t options_size;
    /* Sets the defaults of the config and of the own options, for a model whose defaults live in
     * its own code; NULL: the config is .defaults and the own options are zeros. */
    void (*init)(dc_train_config *c, void *options);
    /* The common options that mean nothing to this model, NULL-terminated (NULL: none);
     * `disco train` refuses them. */
    const char *const *without;
    /* The forward graph of its training step for config c and its own options (NULL: the
     * defaults), as dc_train_graph wants it: what `disco tune MODEL` tunes. NULL: none. */
    dc_graph *(*train_graph)(const dc_train_config *c, const void *options);
    /* Trains, evaluates and reports on r->out; false and err on failure. c->ckpt_path is set by
     * the model from r->out_dir. */
    bool (*train)(const dc_train_config *c, const dc_train_request *r, char *err, size_t len);
} dc_model;

/* The registered models, in a fixed order; n receives their count. */
const dc_model *const *dc_models(int *n);
const dc_model *dc_model_find(const char *name);
/* The defaults of m: its training config into *c and, when options is not NULL, its own options
 * (m->options_size bytes). */
void dc_model_defaults(const dc_model *m, dc_train_config *c, void *options);

/* The models (one file each). */
extern const dc_model dc_model_fmnist_mlp;
extern const dc_model dc_model_fmnist_cnn;
extern const dc_model dc_model_toy;         /* models/toy.c: DisCo-Diff on 8 Gaussians */
extern const dc_model dc_model_fmnist_disco; /* models/fmnist_disco.c: DisCo-Diff on Fashion-MNIST */

/* fmnist-cnn's classifier for reuse (e.g. the penultimate features of a Frechet distance):
 * input x f32[B,28,28,1] (pixels in [0, 1]), outputs "logits" f32[B,10] and "features"
 * f32[B,128]; params cnn.* exactly those of the DIR/fmnist-cnn.weights file that
 * `disco train fmnist-cnn` writes, so dc_checkpoint_load(weights, exec, NULL, 0, ...) loads it. */
dc_graph *dc_fmnist_cnn_graph(int64_t batch);

#endif
