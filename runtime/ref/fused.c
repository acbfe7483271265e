/* fused.c — the ref kernel of the fused contractions (fused_conv2d, fused_matmul): the ref
 * conv2d / matmul kernel into the output, then the epilogue in place, one ref elementwise
 * kernel per step: add bias, the activation, add residual. Each step is the very kernel the
 * unfused node would run, in the unfused order, so a fused node equals the chain it replaced
 * bit for bit (float addition commutes, so operand order of the adds does not matter). */
#include "runtime/ref/ref.h"

#include <string.h>

/* The plain contraction of a fused node: conv2d or matmul of its first two inputs. */
static dc_node contraction_of(const dc_node *f) {
    dc_node n;
    memset(&n, 0, sizeof n);
    n.type = f->type;
    n.in[0] = f->in[0];
    n.in[1] = f->in[1];
    if (f->op == DC_OP_FUSED_CONV2D) {
        n.op = DC_OP_CONV2D;
        n.attr.conv.stride = f->attr.fused_conv.stride;
        n.attr.conv.pad = f->attr.fused_conv.pad;
        n.attr.conv.groups = f->attr.fused_conv.groups;
    } else {
        n.op = DC_OP_MATMUL;
        n.attr.matmul.trans_a = f->attr.fused_matmul.trans_a;
        n.attr.matmul.trans_b = f->attr.fused_matmul.trans_b;
    }
    return n;
}

/* Runs kernel on node n with inputs in[0..n_in) into a->out. */
static bool run(const dc_ref_args *a, bool (*kernel)(const dc_ref_args *), dc_node *n,
                int n_in, const dc_tensor *const *in) {
    n->n_in = n_in;
    dc_ref_args s = *a;
    s.n = n;
    s.in = in;
    return kernel(&s);
}

/* One epilogue step in place on a->out: op(out) for a unary op, op(out, operand) else. */
static bool epilogue_step(const dc_ref_args *a, dc_op op, const dc_tensor *operand) {
    dc_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.type = a->out->type;
    const dc_tensor *in[2] = { a->out, operand };
    return run(a, dc_ref_elementwise, &n, operand ? 2 : 1, in);
}

bool dc_ref_fused(const dc_ref_args *a) {
    static const dc_op act_op[DC_NACTIVATIONS] = {
        [DC_ACTIVATION_NONE] = DC_OP_COUNT, [DC_ACTIVATION_RELU] = DC_OP_RELU,
        [DC_ACTIVATION_GELU] = DC_OP_GELU, [DC_ACTIVATION_SILU] = DC_OP_SILU,
    };
    const dc_node *f = a->n;
    bool conv = f->op == DC_OP_FUSED_CONV2D;
    dc_activation act = conv ? f->attr.fused_conv.act : f->attr.fused_matmul.act;
    bool bias = conv ? f->attr.fused_conv.bias : f->attr.fused_matmul.bias;
    bool residual = conv ? f->attr.fused_conv.residual : f->attr.fused_matmul.residual;
    dc_node c = contraction_of(f);
    if (!run(a, dc_ref_contraction, &c, 2, a->in)) return false;
    if (bias && !epilogue_step(a, DC_OP_ADD, a->in[2])) return false;
    if (act != DC_ACTIVATION_NONE && !epilogue_step(a, act_op[act], NULL)) return false;
    return !residual || epilogue_step(a, DC_OP_ADD, a->in[2 + bias]);
}
