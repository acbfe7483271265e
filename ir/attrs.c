/* attrs.c — the text schemas of the attribute structs (field names, types, offsets) and the
 * op table built from ops.def. The printer, parser and DOT writer walk these schemas, so an
 * attribute struct is described once. */
#include "ir/ir.h"

#include <string.h>

#define F(S, field, T) { #field, DC_FT_##T, offsetof(S, field), NULL, 0 }
/* an enum field stored as int, named by the table NAMES */
#define E(S, field, NAMES) { #field, DC_FT_ENUM, offsetof(S, field), NAMES, (int)(sizeof NAMES / sizeof NAMES[0]) }
#define SCHEMA(NAME, ...)                                                              \
    static const dc_attr_field NAME##_fields[] = { __VA_ARGS__ };                      \
    static const dc_attr_schema NAME##_schema = {                                       \
        #NAME, (int)(sizeof NAME##_fields / sizeof NAME##_fields[0]), NAME##_fields };
#define EMPTY_SCHEMA(NAME) static const dc_attr_schema NAME##_schema = { #NAME, 0, NULL };

EMPTY_SCHEMA(none)
/* param prints its init as `init=KIND(a, b)` after the type; see print.c */
EMPTY_SCHEMA(init)
SCHEMA(scalar, F(dc_scalar_attr, value, FLOAT))
SCHEMA(axis, F(dc_axis_attr, axis, INT))
SCHEMA(cast, F(dc_cast_attr, to, DTYPE))
SCHEMA(reduce, F(dc_reduce_attr, axes, INTS), F(dc_reduce_attr, keepdims, BOOL))
SCHEMA(matmul, F(dc_matmul_attr, trans_a, BOOL), F(dc_matmul_attr, trans_b, BOOL))
SCHEMA(conv, F(dc_conv_attr, stride, INTS), F(dc_conv_attr, pad, INTS), F(dc_conv_attr, groups, INT))
SCHEMA(pool, F(dc_pool_attr, factor, INT))
SCHEMA(eps, F(dc_eps_attr, eps, FLOAT))
SCHEMA(group_norm, F(dc_group_norm_attr, groups, INT), F(dc_group_norm_attr, eps, FLOAT))
SCHEMA(perm, F(dc_perm_attr, perm, INTS))
SCHEMA(slice, F(dc_slice_attr, start, INTS), F(dc_slice_attr, stop, INTS), F(dc_slice_attr, step, INTS))
SCHEMA(pad, F(dc_pad_attr, lo, INTS), F(dc_pad_attr, hi, INTS), F(dc_pad_attr, value, FLOAT))
SCHEMA(one_hot, F(dc_one_hot_attr, depth, INT))
SCHEMA(random, F(dc_random_attr, stream, INT), F(dc_random_attr, a, FLOAT), F(dc_random_attr, b, FLOAT))

static const char *const act_names[DC_NACTIVATIONS] = { "none", "relu", "gelu", "silu" };
_Static_assert(sizeof(dc_activation) == sizeof(int), "enum fields are stored as int");
const char *dc_activation_name(dc_activation a) { return (unsigned)a < DC_NACTIVATIONS ? act_names[a] : "?"; }

dc_op dc_activation_op(dc_activation a) {
    switch (a) {
    case DC_ACTIVATION_RELU: return DC_OP_RELU;
    case DC_ACTIVATION_GELU: return DC_OP_GELU;
    case DC_ACTIVATION_SILU: return DC_OP_SILU;
    default: return DC_OP_COUNT;
    }
}
SCHEMA(fused_conv, F(dc_fused_conv_attr, stride, INTS), F(dc_fused_conv_attr, pad, INTS),
       F(dc_fused_conv_attr, groups, INT), E(dc_fused_conv_attr, act, act_names),
       F(dc_fused_conv_attr, bias, BOOL), F(dc_fused_conv_attr, residual, BOOL),
       F(dc_fused_conv_attr, result, INT))
SCHEMA(fused_matmul, F(dc_fused_matmul_attr, trans_a, BOOL), F(dc_fused_matmul_attr, trans_b, BOOL),
       E(dc_fused_matmul_attr, act, act_names), F(dc_fused_matmul_attr, bias, BOOL),
       F(dc_fused_matmul_attr, residual, BOOL), F(dc_fused_matmul_attr, result, INT))
SCHEMA(attention, F(dc_attention_attr, scale, FLOAT), F(dc_attention_attr, causal, BOOL),
       F(dc_attention_attr, bias, BOOL), F(dc_attention_attr, result, INT))

/* the form column, as the info's map dtypes and row description */
#define F32(e) DC_MAP_F32, { 0 }
#define ANY(e) DC_MAP_ANY, { 0 }
#define CMP(e) DC_MAP_CMP, { 0 }
#define ROW(rows, value, data) DC_MAP_NONE, { DC_ROWS_##rows, DC_ROW_##value, data }
#define NOFORM DC_MAP_NONE, { 0 }
static const dc_op_info op_table[DC_OP_COUNT] = {
#define DC_OP(NAME, text, KIND, arity, attr, shape, vjp, ref, lower, form)                   \
    [DC_OP_##NAME] = { text, DC_KIND_##KIND, arity, &attr##_schema, DC_HAS_HOOK(vjp),      \
                       DC_LOWER_##lower, form },
#include "ir/ops.def"
#undef DC_OP
};

bool dc_op_groupable(dc_op op) { return op_table[op].lower != DC_LOWER_NONE; }

const dc_op_info *dc_op_get(dc_op op) { return &op_table[op]; }
const char *dc_op_name(dc_op op) { return op_table[op].text; }

int dc_op_from_name(const char *s, size_t n) {
    for (int i = 0; i < DC_OP_COUNT; i++)
        if (strlen(op_table[i].text) == n && memcmp(op_table[i].text, s, n) == 0) return i;
    return -1;
}

static const char *init_names[DC_NINITS] = { "zeros", "ones", "normal", "uniform", "kaiming", "xavier" };
const char *dc_init_name(dc_init_kind k) { return init_names[k]; }
