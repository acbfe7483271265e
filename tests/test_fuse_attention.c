/* test_fuse_attention.c — the fuse-attention pass on the models' forward graphs: the toy
 * prior (causal self-attention, the mask written as where over two iotas), the image U-Net
 * with its latent tokens' transformer (self- and cross-attention) and the ViT encoder. After
 * the pass each graph has one attention node per attention block of the model (counted from
 * the model's structure: the prior's layers; the U-Net's four attention levels, each with a
 * cross-attention when there are latents, plus the tokens' transformer layers; the ViT's
 * layers) and no softmax; the pass is idempotent on it; and its outputs agree with the
 * unfused graph's (the oracle) under the reference executor, with every param moved off its
 * init (the U-Net's attention output projections start at zero) and copied by name. The
 * pass's own rules are the goldens tests/passes/fuse_attention_*.dcir. */
#include "tests/test.h"

#include <stdlib.h>

#include "frontend/dsl.h"
#include "models/disco/images.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

enum { BATCH = 2 };

static int count_op(const dc_graph *g, dc_op op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == op;
    return n;
}

/* a copy of g through its text form */
static dc_graph *copy_graph(const dc_graph *g) {
    char *text = dc_print(g), err[DC_ERR_LEN];
    dc_graph *c = dc_parse(text, strlen(text), "copy", err, sizeof err);
    CHECK_MSG(c, "%s", err);
    free(text);
    return c;
}

/* e on its graph's inputs: i32 inputs uniform in [0, ids), f32 ones normal; run */
static bool run_on_inputs(dc_exec *e, const dc_graph *g, int32_t ids, char *err, size_t len) {
    bool ok = true;
    for (int k = 0; ok && k < dc_graph_n_inputs(g); k++) {
        const dc_node *in = &g->nodes[dc_graph_input(g, k)];
        dc_tensor *t = dc_tensor_new(&in->type);
        for (int64_t i = 0; i < dc_numel(&in->type.shape); i++) {
            if (in->type.dtype == DC_I32) ((int32_t *)t->data)[i] = (int32_t)(dc_rng_u32(7, (uint64_t)k, (uint64_t)i) % (uint32_t)ids);
            else ((float *)t->data)[i] = dc_rng_normal(7, (uint64_t)k, (uint64_t)i);
        }
        ok = dc_exec_set_input(e, in->name, t, err, len);
        dc_tensor_free(t);
    }
    return ok && dc_exec_run(e, err, len);
}

/* the largest |a - b| / (1e-4 + 1e-4 |b|) over every output (NaN: infinite) */
static double worst_output(const dc_exec *a, const dc_exec *b, int n_outputs) {
    double w = 0;
    for (int o = 0; o < n_outputs; o++) {
        const dc_tensor *x = dc_exec_output(a, o), *y = dc_exec_output(b, o);
        if (!dc_type_eq(&x->type, &y->type)) return INFINITY;
        for (int64_t i = 0; i < dc_numel(&x->type.shape); i++) {
            double u = ((const float *)x->data)[i], v = ((const float *)y->data)[i];
            double e = fabs(u - v) / (1e-4 + 1e-4 * fabs(v));
            if (!(e <= w)) w = isnan(e) ? INFINITY : e;
        }
    }
    return w;
}

/* g (a model's forward graph, consumed) after fuse-attention: `blocks` attention nodes, no
 * softmax, idempotent, the same outputs; ids: the range of its i32 inputs */
static void check_model(const char *name, dc_graph *g, int blocks, int32_t ids) {
    CHECK_MSG(!dc_graph_failed(g), "%s: %s", name, dc_graph_error(g));
    if (dc_graph_failed(g)) {
        dc_graph_free(g);
        return;
    }
    char err[DC_ERR_LEN];
    dc_graph *f = copy_graph(g);
    dc_pass_opts o = { .verify_each = true };
    bool ok = f && dc_run_pipeline(f, "fuse-attention-all", &o, err, sizeof err);
    CHECK_MSG(ok, "%s: %s", name, err);
    if (ok) {
        CHECK_MSG(count_op(g, DC_OP_SOFTMAX) == blocks, "%s: %d softmax before, %d blocks", name,
                  count_op(g, DC_OP_SOFTMAX), blocks);
        CHECK_MSG(count_op(f, DC_OP_ATTENTION) == blocks && count_op(f, DC_OP_SOFTMAX) == 0,
                  "%s: %d attention nodes and %d softmax after, %d blocks", name, count_op(f, DC_OP_ATTENTION),
                  count_op(f, DC_OP_SOFTMAX), blocks);
        char *once = dc_print(f);
        CHECK(dc_run_pipeline(f, "fuse-attention-all", &o, err, sizeof err));
        char *twice = dc_print(f);
        CHECK_MSG(strcmp(once, twice) == 0, "%s: fuse-attention is not idempotent", name);
        free(once);
        free(twice);
    }
    dc_exec *eg = dc_exec_new(g, 3, err, sizeof err), *ef = ok ? dc_exec_new(f, 5, err, sizeof err) : NULL;
    CHECK_MSG(eg && (ef || !ok), "%s: dc_exec_new: %s", name, err);
    if (eg && ef) {
        for (int i = 0; i < g->n_nodes; i++) {
            if (g->nodes[i].op != DC_OP_PARAM) continue;
            dc_tensor *p = dc_exec_param(eg, g->nodes[i].name);
            for (int64_t j = 0; j < dc_numel(&p->type.shape); j++)
                ((float *)p->data)[j] += 0.1f * (dc_rng_uniform01(13, (uint64_t)i, (uint64_t)j) - 0.5f);
        }
        ok = dc_exec_copy_params(eg, ef, &(dc_param_map){ .need_all = true }, err, sizeof err) &&
             run_on_inputs(eg, g, ids, err, sizeof err) && run_on_inputs(ef, f, ids, err, sizeof err);
        CHECK_MSG(ok, "%s: %s", name, err);
        double w = ok ? worst_output(ef, eg, g->n_outputs) : 0;
        CHECK_MSG(w <= 1, "%s: outputs differ by %.3g of the tolerance", name, w);
    }
    dc_exec_free(eg);
    dc_exec_free(ef);
    dc_graph_free(f);
    dc_graph_free(g);
}

TEST(fuse_attention_prior) {
    dc_prior_config c = dc_prior_config_defaults(4, 6);
    c.d_model = 16;
    c.heads = 2;
    check_model("prior", dc_prior_sample_graph(&c, BATCH), c.layers, c.k + 1);
}

static dc_img_config small_config(bool baseline) {
    return (dc_img_config){ .baseline = baseline, .m = 4, .k = 5, .latent_groups = 2, .tau = 1.0f, .sigma_data = 0.5f,
                            .null_prob = 0.1f, .ch = 16, .emb = 16, .heads = 2, .lat_d = 8, .lat_layers = 2,
                            .vit_d = 8, .vit_layers = 2, .vit_patch = 7 };
}

/* the U-Net on x, c_noise, labels and (with latents) the tokens of z; output its F */
static dc_graph *unet_graph(const dc_img_config *c) {
    dc_graph *g = dc_graph_new(c->baseline ? "unet_baseline" : "unet");
    int64_t b = BATCH;
    dc_t x = dc_input(g, "x", DC_F32, 4, ((int64_t[]){ b, DC_IMG_SIDE, DC_IMG_SIDE, 1 }));
    dc_t c_noise = dc_input(g, "c_noise", DC_F32, 2, ((int64_t[]){ b, 1 }));
    dc_t labels = dc_input(g, "labels", DC_I32, 1, &b);
    dc_t lat = DC_NONE;
    if (!c->baseline) lat = dc_img_latent_tokens(g, dc_input(g, "z", DC_F32, 3, ((int64_t[]){ b, c->m, c->k + 1 })), c);
    dc_output(g, dc_img_unet(g, x, c_noise, labels, lat, c), "f");
    return g;
}

TEST(fuse_attention_unet) {
    /* down2, mid0, up2, up1 have attention; with latents each adds a cross-attention */
    dc_img_config c = small_config(false);
    check_model("unet", unet_graph(&c), 4 * 2 + c.lat_layers, DC_IMG_CLASSES);
    c = small_config(true);
    check_model("unet baseline", unet_graph(&c), 4, DC_IMG_CLASSES);
}

TEST(fuse_attention_vit) {
    dc_img_config c = small_config(false);
    dc_graph *g = dc_graph_new("vit");
    dc_t y = dc_input(g, "y", DC_F32, 4, ((int64_t[]){ BATCH, DC_IMG_SIDE, DC_IMG_SIDE, 1 }));
    dc_output(g, dc_img_vit(g, y, &c), "logits");
    check_model("vit", g, c.vit_layers, 1);
}
