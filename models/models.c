/* models.c — the table of registered models (models.h). A new model adds one line here. */
#include "models/models.h"

#include <string.h>

static const dc_model *const table[] = { &dc_model_fmnist_mlp, &dc_model_fmnist_cnn };

const dc_model *const *dc_models(int *n) {
    *n = (int)(sizeof table / sizeof table[0]);
    return table;
}

const dc_model *dc_model_find(const char *name) {
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i]->name, name) == 0) return table[i];
    return NULL;
}
