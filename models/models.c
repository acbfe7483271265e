/* models.c — the table of registered models (models.h). A new model adds one line here. */
#include "models/models.h"

#include <string.h>

static const dc_model *const table[] = { &dc_model_fmnist_mlp, &dc_model_fmnist_cnn, &dc_model_toy, &dc_model_fmnist_disco };

const dc_model *const *dc_models(int *n) {
    *n = (int)(sizeof table / sizeof table[0]);
    return table;
}

const dc_model *dc_model_find(const char *name) {
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i]->name, name) == 0) return table[i];
    return NULL;
}

void dc_model_defaults(const dc_model *m, dc_train_config *c, void *options) {
    *c = m->defaults;
    if (options) memset(options, 0, m->options_size);
    if (m->init) m->init(c, options);
}
