/* ops.c — the oneDNN provider's public calls: checks disco tensors against the op's shape
 * rule, describes them to oneDNN (NHWC activations as dnnl nhwc = acdb, HWIO weights as
 * hwio = cdba or, grouped, hwigo = decab; matrices with explicit strides so transposes and
 * broadcast batch dims cost nothing), turns the epilogue into bias + post-ops, and hands
 * the call to core.c. */
#include "codegen/dnnl/dnnl_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- small helpers -------------------------------------------------------------------- */

static bool fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return false;
}

static const char *type_s(const dc_tensor *t, char *buf, size_t len) {
    return dc_type_str(&t->type, buf, len);
}

static bool is_f32(const dc_tensor *t) { return t->type.dtype == DC_F32; }

/* oneDNN's fixed-size dims array holding the nd values v. */
static void to_dims(dnnl_dims_t d, int nd, const int64_t *v) {
    memset(d, 0, sizeof(dnnl_dims_t));
    memcpy(d, v, (size_t)nd * sizeof(int64_t));
}

/* A plain layout with tag; false if oneDNN cannot describe the dims. */
static bool md_tag(dnnl_memory_desc_t *md, int nd, const int64_t *dims, dnnl_format_tag_t tag) {
    dnnl_dims_t d;
    to_dims(d, nd, dims);
    return dnnl_memory_desc_init_by_tag(md, nd, d, dnnl_f32, tag) == dnnl_success;
}

static bool md_strides(dnnl_memory_desc_t *md, int nd, const int64_t *dims, const int64_t *strides) {
    dnnl_dims_t d, st;
    to_dims(d, nd, dims);
    to_dims(st, nd, strides);
    return dnnl_memory_desc_init_by_strides(md, nd, d, dnnl_f32, st) == dnnl_success;
}

/* ---- the epilogue --------------------------------------------------------------------- */

static bool same_shape(const dc_tensor *a, const dc_tensor *b) {
    return dc_shape_eq(&a->type.shape, &b->type.shape);
}

/* oneDNN's eltwise algorithm for a (not none) activation, and its alpha: silu is swish with
 * alpha 1, gelu the tanh form */
static dnnl_alg_kind_t act_alg(dc_activation act) {
    static const dnnl_alg_kind_t alg[] = { [DC_ACTIVATION_RELU] = dnnl_eltwise_relu,
                                           [DC_ACTIVATION_GELU] = dnnl_eltwise_gelu_tanh,
                                           [DC_ACTIVATION_SILU] = dnnl_eltwise_swish };
    return alg[act];
}

static float act_alpha(dc_activation act) { return act == DC_ACTIVATION_SILU ? 1.0f : 0.0f; }

/* Adds e to c: out = act(scale * y + bias) + residual. With scale 1 the bias is the
 * primitive's own (added to y before the post-ops); otherwise it is a binary post-op after
 * the linear scaling. The residual is added by disco after the primitive, not as a post-op:
 * oneDNN 2.6's gemm-based convolution (1x1 kernels with padding) applies a full-tensor
 * binary-add post-op at wrong offsets in the padded border, and its sum post-op leaves grouped
 * convolutions with reference implementations only. bias_native / bias_post: the bias
 * layouts for both cases. */
static bool add_epilogue(call *c, const dc_epilogue *e, const dc_tensor *out,
                         const dnnl_memory_desc_t *bias_native, const dnnl_memory_desc_t *bias_post,
                         char *err, size_t len) {
    c->key.scale = 1.0f;
    if (!e) return true;
    const dc_shape *so = &out->type.shape;
    char b1[64], b2[64];
    if (e->bias && (!is_f32(e->bias) || e->bias->type.shape.rank != 1 ||
                    e->bias->type.shape.dim[0] != so->dim[so->rank - 1]))
        return fail(err, len, "dnnl %s: bias is %s, expected f32[%lld]", c->name,
                    type_s(e->bias, b1, sizeof b1), (long long)so->dim[so->rank - 1]);
    if (e->residual && (!is_f32(e->residual) || !same_shape(e->residual, out)))
        return fail(err, len, "dnnl %s: residual is %s, the output is %s", c->name,
                    type_s(e->residual, b1, sizeof b1), type_s(out, b2, sizeof b2));
    if (e->act < DC_ACTIVATION_NONE || e->act >= DC_NACTIVATIONS)
        return fail(err, len, "dnnl %s: unknown activation %d", c->name, (int)e->act);
    float scale = e->scale == 0.0f ? 1.0f : e->scale;
    c->key.scale = scale;
    c->key.has_bias = e->bias != NULL;
    c->key.act = e->act;
    c->key.has_residual = e->residual != NULL;
    if (scale != 1.0f)
        c->postops[c->n_postops++] = (call_postop){ .alg = dnnl_eltwise_linear, .alpha = scale, .binary_arg = -1 };
    if (e->bias && scale == 1.0f) dnnl_call_arg(c, DNNL_ARG_BIAS, bias_native, e->bias->data);
    if (e->bias && scale != 1.0f) {
        int i = dnnl_call_arg(c, DNNL_ARG_ATTR_MULTIPLE_POST_OP(c->n_postops) | DNNL_ARG_SRC_1,
                              bias_post, e->bias->data);
        c->postops[c->n_postops++] = (call_postop){ .alg = dnnl_binary_add, .binary_arg = i };
    }
    if (e->act != DC_ACTIVATION_NONE)
        c->postops[c->n_postops++] = (call_postop){ .alg = act_alg(e->act), .alpha = act_alpha(e->act),
                                                    .binary_arg = -1 };
    if (e->residual) {
        c->residual = e->residual->data;
        c->residual_n = dc_numel(&out->type.shape);
    }
    return true;
}

/* ---- an activation ---------------------------------------------------------------------- */

static dnnl_status_t eltwise_desc(const call *c, const dnnl_memory_desc_t *wmd, bool winograd, call_desc *d,
                                  call_desc *hint, bool *has_hint) {
    (void)wmd, (void)winograd, (void)hint;
    *has_hint = false;
    dc_activation act = (dc_activation)c->key.act;
    return dnnl_eltwise_forward_desc_init(&d->eltwise, dnnl_forward_inference, act_alg(act),
                                          &dnnl_call_find(c, DNNL_ARG_SRC)->md, act_alpha(act), 0.0f);
}

bool dc_dnnl_activation(const dc_tensor *x, dc_activation act, const dc_tensor *residual, dc_tensor *out, char *err,
                        size_t len) {
    char sx[64], so[64], sr[64];
    type_s(x, sx, sizeof sx);
    if (act <= DC_ACTIVATION_NONE || act >= DC_NACTIVATIONS)
        return fail(err, len, "dnnl activation: unknown activation %d", (int)act);
    if (!is_f32(x) || !is_f32(out) || !same_shape(x, out) || (residual && (!is_f32(residual) || !same_shape(residual, out))))
        return fail(err, len, "dnnl activation: x %s, residual %s and out %s must be f32 of one shape",
                    sx, residual ? type_s(residual, sr, sizeof sr) : "none",
                    type_s(out, so, sizeof so));
    call c;
    dnnl_call_init(&c, CALL_ELTWISE, "activation");
    snprintf(c.what, sizeof c.what, "%s of %s%s", dc_activation_name(act), sx, residual ? " + residual" : "");
    int64_t n = dc_numel(&x->type.shape);
    dnnl_call_key_shape(&c, 0, &x->type.shape);
    c.key.act = act;
    c.key.has_residual = residual != NULL;
    c.key.scale = 1.0f;
    c.desc = eltwise_desc;
    dnnl_memory_desc_t md;
    if (!md_tag(&md, 1, &n, dnnl_a)) return fail(err, len, "dnnl activation: oneDNN cannot describe %s", c.what);
    dnnl_call_arg(&c, DNNL_ARG_SRC, &md, x->data);
    dnnl_call_arg(&c, DNNL_ARG_DST, &md, out->data);
    if (residual) {
        c.residual = residual->data;
        c.residual_n = n;
    }
    return dnnl_call_run(&c, err, len);
}

/* ---- matmul and linear ---------------------------------------------------------------- */

/* The layout of a matrix operand as nd logical dims [1.., batch.., rows, cols]: stored
 * row-major as [batch.., rows, cols], or as [batch.., cols, rows] when trans. */
static bool matrix_md(dnnl_memory_desc_t *md, const dc_shape *s, bool trans, int nd) {
    int r = s->rank, lead = nd - r;
    int64_t dims[DC_MAX_RANK], strides[DC_MAX_RANK];
    int64_t rows = s->dim[r - (trans ? 1 : 2)], cols = s->dim[r - (trans ? 2 : 1)];
    int64_t mat = rows * cols, acc = mat;
    for (int d = r - 3; d >= 0; d--) {
        dims[lead + d] = s->dim[d];
        strides[lead + d] = acc;
        acc *= s->dim[d];
    }
    for (int d = 0; d < lead; d++) {
        dims[d] = 1;
        strides[d] = acc;
    }
    dims[nd - 2] = rows;
    dims[nd - 1] = cols;
    strides[nd - 2] = trans ? 1 : cols;
    strides[nd - 1] = trans ? rows : 1;
    return md_strides(md, nd, dims, strides);
}

static dnnl_status_t matmul_desc(const call *c, const dnnl_memory_desc_t *wmd, bool winograd, call_desc *d,
                                 call_desc *hint, bool *has_hint) {
    (void)wmd;
    (void)winograd;
    (void)hint;
    *has_hint = false;
    const call_arg *bias = dnnl_call_find(c, DNNL_ARG_BIAS);
    return dnnl_matmul_desc_init(&d->matmul, &dnnl_call_find(c, DNNL_ARG_SRC)->md,
                                 &dnnl_call_find(c, DNNL_ARG_WEIGHTS)->md, bias ? &bias->md : NULL,
                                 &dnnl_call_find(c, DNNL_ARG_DST)->md);
}

/* The matmul op's shape rule: out's shape for a, b, t; false if they do not fit. */
static bool matmul_shape(const dc_shape *a, const dc_shape *b, dc_matmul_attr t, dc_shape *out) {
    if (a->rank < 2 || b->rank < 2) return false;
    int ra = a->rank, rb = b->rank;
    int64_t m = a->dim[ra - (t.trans_a ? 1 : 2)], ka = a->dim[ra - (t.trans_a ? 2 : 1)];
    int64_t kb = b->dim[rb - (t.trans_b ? 1 : 2)], n = b->dim[rb - (t.trans_b ? 2 : 1)];
    if (ka != kb) return false;
    dc_shape ba = { .rank = ra - 2 }, bb = { .rank = rb - 2 };
    for (int d = 0; d < ra - 2; d++) ba.dim[d] = a->dim[d];
    for (int d = 0; d < rb - 2; d++) bb.dim[d] = b->dim[d];
    if (!dc_broadcast_shapes(&ba, &bb, out)) return false;
    out->dim[out->rank++] = m;
    out->dim[out->rank++] = n;
    return true;
}

static bool matmul_named(const char *name, const dc_tensor *a, const dc_tensor *b, dc_matmul_attr t,
                         const dc_epilogue *e, dc_tensor *out, char *err, size_t len) {
    char sa[64], sb[64], so[64];
    type_s(a, sa, sizeof sa);
    type_s(b, sb, sizeof sb);
    type_s(out, so, sizeof so);
    dc_shape want;
    if (!is_f32(a) || !is_f32(b) || !is_f32(out) ||
        !matmul_shape(&a->type.shape, &b->type.shape, t, &want) || !dc_shape_eq(&want, &out->type.shape))
        return fail(err, len, "dnnl %s: operands %s%s, %s%s do not give the output %s", name, sa,
                    t.trans_a ? " (transposed)" : "", sb, t.trans_b ? " (transposed)" : "", so);
    call c;
    dnnl_call_init(&c, CALL_MATMUL, name);
    snprintf(c.what, sizeof c.what, "a %s%s, b %s%s -> %s", sa, t.trans_a ? "^T" : "", sb,
             t.trans_b ? "^T" : "", so);
    dnnl_call_key_shape(&c, 0, &a->type.shape);
    dnnl_call_key_shape(&c, 1, &b->type.shape);
    dnnl_call_key_shape(&c, 2, &out->type.shape);
    c.key.trans_a = t.trans_a;
    c.key.trans_b = t.trans_b;
    c.desc = matmul_desc;
    int nd = want.rank;
    int64_t bias_dims[DC_MAX_RANK], bias_strides[DC_MAX_RANK];
    for (int d = 0; d < nd; d++) {
        bias_dims[d] = d == nd - 1 ? want.dim[d] : 1;
        bias_strides[d] = d == nd - 1 ? 1 : want.dim[nd - 1];
    }
    dnnl_memory_desc_t amd, bmd, omd, bias_md;
    if (!matrix_md(&amd, &a->type.shape, t.trans_a, nd) || !matrix_md(&bmd, &b->type.shape, t.trans_b, nd) ||
        !matrix_md(&omd, &want, false, nd) || !md_strides(&bias_md, nd, bias_dims, bias_strides))
        return fail(err, len, "dnnl %s: oneDNN cannot describe %s", name, c.what);
    dnnl_call_arg(&c, DNNL_ARG_SRC, &amd, a->data);
    dnnl_call_arg(&c, DNNL_ARG_WEIGHTS, &bmd, b->data);
    dnnl_call_arg(&c, DNNL_ARG_DST, &omd, out->data);
    return add_epilogue(&c, e, out, &bias_md, &bias_md, err, len) && dnnl_call_run(&c, err, len);
}

bool dc_dnnl_matmul(const dc_tensor *a, const dc_tensor *b, dc_matmul_attr t, const dc_epilogue *e,
                    dc_tensor *out, char *err, size_t len) {
    return matmul_named("matmul", a, b, t, e, out, err, len);
}

/* A view of t with shape [rows, cols] (t's numel), sharing its data. */
static dc_tensor view2(const dc_tensor *t, int64_t rows, int64_t cols) {
    dc_tensor v = { .type = { .dtype = t->type.dtype, .shape = { .rank = 2, .dim = { rows, cols } } },
                    .data = t->data, .owned = false };
    return v;
}

bool dc_dnnl_linear(const dc_tensor *x, const dc_tensor *w, const dc_epilogue *e, dc_tensor *out,
                    char *err, size_t len) {
    const dc_shape *sx = &x->type.shape, *sw = &w->type.shape, *so = &out->type.shape;
    char s1[64], s2[64], s3[64];
    bool fits = sx->rank >= 1 && sw->rank == 2 && so->rank == sx->rank &&
                sx->dim[sx->rank - 1] == sw->dim[0] && so->dim[so->rank - 1] == sw->dim[1];
    for (int d = 0; fits && d < sx->rank - 1; d++) fits = sx->dim[d] == so->dim[d];
    if (!fits)
        return fail(err, len, "dnnl linear: x %s and weight %s do not give the output %s",
                    type_s(x, s1, sizeof s1), type_s(w, s2, sizeof s2), type_s(out, s3, sizeof s3));
    int64_t rows = dc_numel(sx) / sw->dim[0];
    dc_tensor xv = view2(x, rows, sw->dim[0]), ov = view2(out, rows, sw->dim[1]), rv;
    dc_epilogue ev = e ? *e : (dc_epilogue){ 0 };
    if (e && e->residual && same_shape(e->residual, out)) {
        rv = view2(e->residual, rows, sw->dim[1]);
        ev.residual = &rv;
    }
    return matmul_named("linear", &xv, w, (dc_matmul_attr){ 0 }, &ev, &ov, err, len);
}

/* ---- conv2d --------------------------------------------------------------------------- */

/* The conv2d op's shape rule: the output of x and w under a, or false. */
static bool conv_shape(const dc_shape *x, const dc_shape *w, const dc_conv_attr *a, dc_shape *y) {
    if (x->rank != 4 || w->rank != 4 || a->stride.n != 2 || a->pad.n != 2 || a->groups < 1) return false;
    if (a->stride.v[0] < 1 || a->stride.v[1] < 1 || a->pad.v[0] < 0 || a->pad.v[1] < 0) return false;
    if (x->dim[3] != w->dim[2] * a->groups || w->dim[3] % a->groups) return false;
    int64_t ph = x->dim[1] + 2 * a->pad.v[0], pw = x->dim[2] + 2 * a->pad.v[1];
    if (w->dim[0] > ph || w->dim[1] > pw) return false;
    *y = (dc_shape){ .rank = 4, .dim = { x->dim[0], (ph - w->dim[0]) / a->stride.v[0] + 1,
                                         (pw - w->dim[1]) / a->stride.v[1] + 1, w->dim[3] } };
    return true;
}

/* oneDNN's logical dims of an NHWC activation, [N, C, H, W], laid out nhwc. */
static bool act_md(dnnl_memory_desc_t *md, const dc_shape *s) {
    int64_t d[4] = { s->dim[0], s->dim[3], s->dim[1], s->dim[2] };
    return md_tag(md, 4, d, dnnl_acdb);
}

/* An HWIO weight [KH,KW,C/G,O]: [O, C, KH, KW] as hwio, or grouped [G, O/G, C/G, KH, KW]
 * as hwigo. */
static bool weight_md(dnnl_memory_desc_t *md, const dc_shape *s, int64_t g) {
    if (g == 1) return md_tag(md, 4, (int64_t[]){ s->dim[3], s->dim[2], s->dim[0], s->dim[1] }, dnnl_cdba);
    return md_tag(md, 5, (int64_t[]){ g, s->dim[3] / g, s->dim[2], s->dim[0], s->dim[1] }, dnnl_decab);
}

/* Argument arg's layout: the caller's, or for a Winograd descriptor the same dims as `any`. */
static const dnnl_memory_desc_t *arg_md(const call *c, int arg, bool any, dnnl_memory_desc_t *buf) {
    const call_arg *a = dnnl_call_find(c, arg);
    if (!a || !any) return a ? &a->md : NULL;
    dnnl_any_md(buf, &a->md);
    return buf;
}

/* Symmetric padding: oneDNN's output size (H - KH + 2p) / s + 1 rounds down as disco's. */
static dnnl_status_t conv_desc(const call *c, const dnnl_memory_desc_t *wmd, bool winograd, call_desc *d,
                               call_desc *hint, bool *has_hint) {
    dnnl_dims_t st, pad;
    to_dims(st, 2, c->key.stride);
    to_dims(pad, 2, c->key.pad);
    dnnl_alg_kind_t alg = winograd ? dnnl_convolution_winograd : dnnl_convolution_direct;
    dnnl_memory_desc_t xb, yb;
    bool dx = c->key.op == CALL_CONV_BWD_DATA, dy = c->key.op != CALL_CONV_FWD;
    const dnnl_memory_desc_t *x = arg_md(c, dx ? DNNL_ARG_DIFF_SRC : DNNL_ARG_SRC, winograd, &xb),
                             *y = arg_md(c, dy ? DNNL_ARG_DIFF_DST : DNNL_ARG_DST, winograd, &yb);
    *has_hint = dy;
    switch ((call_op)c->key.op) {
    case CALL_CONV_BWD_DATA:
        if (dnnl_convolution_backward_data_desc_init(&d->conv, alg, x, wmd, y, st, pad, pad) != dnnl_success)
            return dnnl_invalid_arguments;
        break;
    case CALL_CONV_BWD_WEIGHT: {
        const call_arg *db = dnnl_call_find(c, DNNL_ARG_DIFF_BIAS);
        if (dnnl_convolution_backward_weights_desc_init(&d->conv, alg, x, wmd, db ? &db->md : NULL, y, st, pad,
                                                        pad) != dnnl_success)
            return dnnl_invalid_arguments;
        break;
    }
    default: {
        const call_arg *b = dnnl_call_find(c, DNNL_ARG_BIAS);
        return dnnl_convolution_forward_desc_init(&d->conv, dnnl_forward_training, alg, x, wmd, b ? &b->md : NULL,
                                                  y, st, pad, pad);
    }
    }
    return dnnl_convolution_forward_desc_init(&hint->conv, dnnl_forward_training, alg, x, wmd, NULL, y, st, pad,
                                              pad);
}

/* A conv call on x, w -> y shapes (whichever of them the op reads or writes). */
static bool conv_call(call *c, call_op op, const char *name, const dc_tensor *x, const dc_tensor *w,
                      const dc_tensor *y, const dc_conv_attr *a, dc_conv_algo algo, char *err, size_t len) {
    char sx[64], sw[64], sy[64];
    type_s(x, sx, sizeof sx);
    type_s(w, sw, sizeof sw);
    type_s(y, sy, sizeof sy);
    dc_shape want;
    if (!is_f32(x) || !is_f32(w) || !is_f32(y) || !conv_shape(&x->type.shape, &w->type.shape, a, &want) ||
        !dc_shape_eq(&want, &y->type.shape))
        return fail(err, len, "dnnl %s: input %s, weight %s and output %s do not fit stride/pad/groups",
                    name, sx, sw, sy);
    dnnl_call_init(c, op, name);
    snprintf(c->what, sizeof c->what, "x %s, w %s, y %s, stride [%lld,%lld], pad [%lld,%lld], groups %lld",
             sx, sw, sy, (long long)a->stride.v[0], (long long)a->stride.v[1], (long long)a->pad.v[0],
             (long long)a->pad.v[1], (long long)a->groups);
    dnnl_call_key_shape(c, 0, &x->type.shape);
    dnnl_call_key_shape(c, 1, &w->type.shape);
    dnnl_call_key_shape(c, 2, &y->type.shape);
    for (int i = 0; i < 2; i++) {
        c->key.stride[i] = a->stride.v[i];
        c->key.pad[i] = a->pad.v[i];
    }
    c->key.groups = a->groups;
    c->key.winograd = algo == DC_CONV_WINOGRAD;
    c->desc = conv_desc;
    return true;
}

/* The layouts of a conv call's x, w, y; false (with err) if oneDNN cannot describe them. */
static bool conv_mds(const call *c, const dc_tensor *x, const dc_tensor *w, const dc_tensor *y,
                     dnnl_memory_desc_t md[3], char *err, size_t len) {
    if (act_md(&md[0], &x->type.shape) && weight_md(&md[1], &w->type.shape, c->key.groups) &&
        act_md(&md[2], &y->type.shape))
        return true;
    return fail(err, len, "dnnl %s: oneDNN cannot describe %s", c->name, c->what);
}

bool dc_dnnl_conv2d(const dc_tensor *x, const dc_tensor *w, dc_conv_attr attr, dc_conv_algo algo,
                    const dc_epilogue *e, dc_tensor *out, char *err, size_t len) {
    call c;
    dnnl_memory_desc_t md[3], bias_native, bias_post;
    if (!conv_call(&c, CALL_CONV_FWD, "conv2d", x, w, out, &attr, algo, err, len) ||
        !conv_mds(&c, x, w, out, md, err, len))
        return false;
    int64_t o = w->type.shape.dim[3];
    if (!md_tag(&bias_native, 1, &o, dnnl_a) || !md_tag(&bias_post, 4, (int64_t[]){ 1, o, 1, 1 }, dnnl_abcd))
        return fail(err, len, "dnnl conv2d: oneDNN cannot describe a bias of %lld", (long long)o);
    dnnl_call_arg(&c, DNNL_ARG_SRC, &md[0], x->data);
    c.weight = dnnl_call_arg(&c, DNNL_ARG_WEIGHTS, &md[1], w->data);
    dnnl_call_arg(&c, DNNL_ARG_DST, &md[2], out->data);
    return add_epilogue(&c, e, out, &bias_native, &bias_post, err, len) && dnnl_call_run(&c, err, len);
}

bool dc_dnnl_conv2d_bwd_data(const dc_tensor *dy, const dc_tensor *w, dc_conv_attr attr, dc_conv_algo algo,
                             dc_tensor *dx, char *err, size_t len) {
    call c;
    dnnl_memory_desc_t md[3];
    if (!conv_call(&c, CALL_CONV_BWD_DATA, "conv2d_bwd_data", dx, w, dy, &attr, algo, err, len) ||
        !conv_mds(&c, dx, w, dy, md, err, len))
        return false;
    dnnl_call_arg(&c, DNNL_ARG_DIFF_DST, &md[2], dy->data);
    c.weight = dnnl_call_arg(&c, DNNL_ARG_WEIGHTS, &md[1], w->data);
    dnnl_call_arg(&c, DNNL_ARG_DIFF_SRC, &md[0], dx->data);
    return dnnl_call_run(&c, err, len);
}

bool dc_dnnl_conv2d_bwd_weight(const dc_tensor *x, const dc_tensor *dy, dc_conv_attr attr, dc_conv_algo algo,
                               dc_tensor *dw, dc_tensor *db, char *err, size_t len) {
    call c;
    dnnl_memory_desc_t md[3], bias;
    char sb[64];
    if (!conv_call(&c, CALL_CONV_BWD_WEIGHT, "conv2d_bwd_weight", x, dw, dy, &attr, algo, err, len) ||
        !conv_mds(&c, x, dw, dy, md, err, len))
        return false;
    int64_t o = dw->type.shape.dim[3];
    if (db && (!is_f32(db) || db->type.shape.rank != 1 || db->type.shape.dim[0] != o))
        return fail(err, len, "dnnl conv2d_bwd_weight: bias gradient is %s, expected f32[%lld]",
                    type_s(db, sb, sizeof sb), (long long)o);
    if (!md_tag(&bias, 1, &o, dnnl_a))
        return fail(err, len, "dnnl conv2d_bwd_weight: oneDNN cannot describe a bias of %lld", (long long)o);
    c.key.has_db = db != NULL;
    dnnl_call_arg(&c, DNNL_ARG_SRC, &md[0], x->data);
    dnnl_call_arg(&c, DNNL_ARG_DIFF_DST, &md[2], dy->data);
    c.weight = dnnl_call_arg(&c, DNNL_ARG_DIFF_WEIGHTS, &md[1], dw->data);
    c.weight_is_output = true;
    if (db) dnnl_call_arg(&c, DNNL_ARG_DIFF_BIAS, &bias, db->data);
    return dnnl_call_run(&c, err, len);
}
