/* modules.c — module helpers of the DSL: linear, conv, group norm and layer norm, each
 * making its own params named "<scope>.<name>.<leaf>" and built only from the op builders,
 * so errors carry the module's call site. */
#include "frontend/dsl.h"

#include <string.h>

/* PARAM "<module>.<leaf>" in the current scope */
static dc_t module_param(dc_graph *g, const char *what, const char *module, const char *leaf,
                         int rank, const int64_t *dims, dc_init_kind init, const char *file,
                         int line) {
    if (dc_graph_failed(g)) return DC_NONE;
    if (!module || !*module) {
        dc_fail_at(g, file, line, what, "empty module name");
        return DC_NONE;
    }
    char name[DC_ERR_LEN];
    int k = snprintf(name, sizeof name, "%s.%s", module, leaf);
    if (k < 0 || (size_t)k >= sizeof name) {
        dc_fail_at(g, file, line, what, "module name '%.32s...' is too long", module);
        return DC_NONE;
    }
    dc_param_opts o;
    memset(&o, 0, sizeof o);
    o.init = init;
    return dc_param_at(g, name, rank, dims, o, file, line);
}

/* the input's type, which must have rank >= min_rank; records the error if not */
static const dc_type *module_input(dc_graph *g, dc_t x, const char *what, int min_rank,
                                   const char *file, int line) {
    const dc_type *t = dc_operand_at(g, x, what, 1, file, line);
    if (t && t->shape.rank < min_rank) {
        dc_fail_at(g, file, line, what, "input has rank %d, want at least %d", t->shape.rank, min_rank);
        return NULL;
    }
    return t;
}

dc_t dc_linear_at(dc_graph *g, dc_t x, int64_t out_features, dc_linear_opts o, const char *file,
                  int line) {
    const dc_type *t = module_input(g, x, "linear", 1, file, line);
    if (!t) return DC_NONE;
    if (out_features < 1) {
        dc_fail_at(g, file, line, "linear", "out_features must be >= 1, got %lld", (long long)out_features);
        return DC_NONE;
    }
    int64_t in = t->shape.dim[t->shape.rank - 1];
    dc_t w = module_param(g, "linear", o.name, "w", 2, (int64_t[]){ in, out_features }, o.init, file, line);
    if (!o.bias) return dc_matmul_at(g, x, w, (dc_matmul_opts){ false, false }, file, line);
    dc_t b = module_param(g, "linear", o.name, "b", 1, &out_features, DC_INIT_ZEROS, file, line);
    return dc_linear_op_at(g, x, w, b, file, line);
}

dc_t dc_conv_at(dc_graph *g, dc_t x, int64_t out_channels, dc_conv_opts o, const char *file,
                int line) {
    const dc_type *t = module_input(g, x, "conv", 4, file, line);
    if (!t) return DC_NONE;
    int64_t c = t->shape.dim[t->shape.rank - 1];
    if (o.kernel < 1 || o.groups < 1 || out_channels < 1) {
        dc_fail_at(g, file, line, "conv", "kernel, groups and out_channels must be >= 1, got %lld, %lld, %lld",
                   (long long)o.kernel, (long long)o.groups, (long long)out_channels);
        return DC_NONE;
    }
    if (c % o.groups || out_channels % o.groups) {
        dc_fail_at(g, file, line, "conv", "%lld input and %lld output channels are not divisible by %lld groups",
                   (long long)c, (long long)out_channels, (long long)o.groups);
        return DC_NONE;
    }
    int64_t wdims[4] = { o.kernel, o.kernel, c / o.groups, out_channels };
    dc_t w = module_param(g, "conv", o.name, "w", 4, wdims, DC_INIT_KAIMING, file, line);
    dc_conv2d_opts co = { .stride = o.stride, .pad = o.pad < 0 ? o.kernel / 2 : o.pad, .groups = o.groups };
    dc_t y = dc_conv2d_at(g, x, w, co, file, line);
    if (!o.bias) return y;
    dc_t b = module_param(g, "conv", o.name, "b", 1, &out_channels, DC_INIT_ZEROS, file, line);
    return dc_add_at(g, y, b, file, line);
}

/* NAME.scale [C] ones and NAME.bias [C] zeros for a norm over the last dim of x */
static bool norm_params(dc_graph *g, dc_t x, const char *what, const char *name, dc_t *scale,
                        dc_t *bias, const char *file, int line) {
    const dc_type *t = module_input(g, x, what, 1, file, line);
    if (!t) return false;
    int64_t c = t->shape.dim[t->shape.rank - 1];
    *scale = module_param(g, what, name, "scale", 1, &c, DC_INIT_ONES, file, line);
    *bias = module_param(g, what, name, "bias", 1, &c, DC_INIT_ZEROS, file, line);
    return !dc_graph_failed(g);
}

dc_t dc_group_norm_m_at(dc_graph *g, dc_t x, dc_group_norm_m_opts o, const char *file, int line) {
    dc_t scale, bias;
    if (!norm_params(g, x, "group_norm", o.name, &scale, &bias, file, line)) return DC_NONE;
    return dc_group_norm_at(g, x, scale, bias, (dc_group_norm_opts){ .groups = o.groups, .eps = o.eps },
                            file, line);
}

dc_t dc_layer_norm_m_at(dc_graph *g, dc_t x, dc_layer_norm_m_opts o, const char *file, int line) {
    dc_t scale, bias;
    if (!norm_params(g, x, "layer_norm", o.name, &scale, &bias, file, line)) return DC_NONE;
    return dc_layer_norm_at(g, x, scale, bias, (dc_layer_norm_opts){ .eps = o.eps }, file, line);
}
