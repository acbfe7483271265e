/* images_twin.c — disco's side of the parity check against the PyTorch twin of the image model
 * (bench/images_torch.py --parity, run by bench/images_parity.sh): the loss of one batch of
 * the DisCo-Diff (or --baseline EDM) config of dc_img_config_defaults through
 * dc_img_loss_graph, whose random draws are inputs here, and the gradient of that loss with
 * respect to every param (dc_grad), in one compiled program.
 *
 * The params start from their initial values under --seed, each then moved by uniform noise
 * in [-0.05, 0.05): the zero-initialised attention output projections would otherwise leave
 * the gradients of their queries, keys and values at exactly zero. The batch: the first B
 * Fashion-MNIST test images and their classes; sigmas spread geometrically from 0.05 to 50;
 * noise and Gumbel noise from disco's RNG; the last example of every four on the null code.
 *
 * Writes into DIR: param/NAME.npy (every param as used), input/NAME.npy (x, y, sigma, noise
 * and with latents gumbel and drop), grad/NAME.npy (d loss / d param), loss.npy and
 * manifest.json (the config, the batch, the loss, and every param's and input's name and
 * shape in the graph's order).
 *
 * usage: build/bench/images_twin DIR [--baseline] [--groups G] [--batch B] [--seed S]
 *        [--backend auto|ref|dnnl|jit] [--data DIR] */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codegen/codegen.h"
#include "models/data/data.h"
#include "models/disco/images.h"
#include "passes/passes.h"

#define MAX_PARAMS 1024
#define SIGMA_LO 0.05
#define SIGMA_HI 50.0
#define PERTURB 0.1f            /* width of the params' uniform noise */
#define STREAM_NOISE 1
#define STREAM_GUMBEL 2
#define STREAM_PERTURB 16     /* + the param's index */

typedef struct {
    const char *dir, *data, *backend_name;
    bool baseline;
    int groups;
    int64_t batch;
    uint64_t seed;
} args;

static void die(const char *what, const char *msg) {
    fprintf(stderr, "images_twin: %s: %s\n", what, msg);
    exit(1);
}

static void usage(void) {
    fprintf(stderr, "usage: images_twin DIR [--baseline] [--groups G] [--batch B] [--seed S] "
                    "[--backend auto|ref|dnnl|jit] [--data DIR]\n");
    exit(2);
}

static args parse_args(int argc, char **argv) {
    args a = { .backend_name = "auto", .groups = 1, .batch = 4 };
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(s, "--baseline") == 0) a.baseline = true;
        else if (s[0] != '-' && !a.dir) a.dir = s;
        else if (!v) usage();
        else if (strcmp(s, "--groups") == 0) a.groups = atoi(v), i++;
        else if (strcmp(s, "--batch") == 0) a.batch = atoll(v), i++;
        else if (strcmp(s, "--seed") == 0) a.seed = strtoull(v, NULL, 10), i++;
        else if (strcmp(s, "--backend") == 0) a.backend_name = v, i++;
        else if (strcmp(s, "--data") == 0) a.data = v, i++;
        else usage();
    }
    if (!a.dir || a.batch < 1 || a.batch > 10000) usage();
    return a;
}

static void make_dir(const char *path) {
    if (mkdir(path, 0777) != 0 && errno != EEXIST) die(path, strerror(errno));
}

static dc_tensor *tensor(dc_dtype dt, int rank, const int64_t *dims) {
    dc_type t = { .dtype = dt, .shape = { .rank = rank } };
    for (int i = 0; i < rank; i++) t.shape.dim[i] = dims[i];
    return dc_tensor_new(&t);
}

static void write_npy(const char *dir, const char *sub, const char *name, const dc_tensor *t) {
    char path[1024], err[DC_ERR_LEN];
    snprintf(path, sizeof path, "%s/%s%s%s.npy", dir, sub, sub[0] ? "/" : "", name);
    if (!dc_npy_write(path, t, err, sizeof err)) die("write", err);
}

/* one input of the loss graph and its value */
typedef struct {
    const char *name;
    dc_tensor *t;
} input;

/* The batch (see the file's comment): inputs of the loss graph of c; returns their count. */
static int make_batch(const args *a, const dc_img_config *c, input *in) {
    dc_dataset ds;
    char err[DC_ERR_LEN];
    if (!dc_fmnist_load(a->data, false, &ds, err, sizeof err)) die("data", err);
    int64_t b = a->batch, px = DC_IMG_PIXELS;
    if (b > ds.n) die("data", "fewer test images than the batch");
    int n = 0;
    in[n++] = (input){ "x", tensor(DC_F32, 4, (int64_t[]){ b, DC_IMG_SIDE, DC_IMG_SIDE, 1 }) };
    in[n++] = (input){ "y", tensor(DC_I32, 1, &b) };
    in[n++] = (input){ "sigma", tensor(DC_F32, 2, (int64_t[]){ b, 1 }) };
    in[n++] = (input){ "noise", tensor(DC_F32, 4, (int64_t[]){ b, DC_IMG_SIDE, DC_IMG_SIDE, 1 }) };
    memcpy(in[0].t->data, ds.images, (size_t)(b * px) * sizeof(float));
    memcpy(in[1].t->data, ds.labels, (size_t)b * sizeof(int32_t));
    dc_dataset_free(&ds);
    float *sigma = in[2].t->data, *noise = in[3].t->data;
    for (int64_t i = 0; i < b; i++)
        sigma[i] = (float)(SIGMA_LO * pow(SIGMA_HI / SIGMA_LO, b > 1 ? (double)i / (double)(b - 1) : 0.5));
    for (int64_t i = 0; i < b * px; i++) noise[i] = dc_rng_normal(a->seed, STREAM_NOISE, (uint64_t)i);
    if (c->baseline) return n;
    in[n++] = (input){ "gumbel", tensor(DC_F32, 3, (int64_t[]){ b, c->m, c->k }) };
    in[n++] = (input){ "drop", tensor(DC_F32, 3, (int64_t[]){ b, 1, 1 }) };
    float *gumbel = in[4].t->data, *drop = in[5].t->data;
    for (int64_t i = 0; i < b * c->m * c->k; i++)
        gumbel[i] = -logf(-logf(dc_rng_uniform01(a->seed, STREAM_GUMBEL, (uint64_t)i)));
    for (int64_t i = 0; i < b; i++) drop[i] = i % 4 == 3 ? 1.0f : 0.0f;
    return n;
}

static void json_shape(FILE *f, const dc_shape *s) {
    fputc('[', f);
    for (int d = 0; d < s->rank; d++) fprintf(f, "%s%lld", d ? ", " : "", (long long)s->dim[d]);
    fputc(']', f);
}

/* a param of the loss graph: its name and shape (kept before compiling, which may renumber
 * the nodes) */
typedef struct {
    char name[128];
    dc_shape shape;
} param;

static void write_manifest(const args *a, const dc_img_config *c, const param *ps, int n_params, const input *in,
                           int n_in, double loss) {
    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.json", a->dir);
    FILE *f = fopen(path, "w");
    if (!f) die(path, strerror(errno));
    fprintf(f, "{\n  \"config\": {\"baseline\": %s, \"m\": %d, \"k\": %d, \"latent_groups\": %d, \"tau\": %.9g, "
               "\"sigma_data\": %.9g, \"ch\": %d, \"emb\": %d, \"heads\": %d, \"lat_d\": %d, \"lat_layers\": %d, "
               "\"vit_d\": %d, \"vit_layers\": %d, \"vit_patch\": %d, \"gn_groups\": %d},\n",
            c->baseline ? "true" : "false", c->m, c->k, c->latent_groups, (double)c->tau, (double)c->sigma_data,
            c->ch, c->emb, c->heads, c->lat_d, c->lat_layers, c->vit_d, c->vit_layers, c->vit_patch, DC_IMG_GROUPS);
    fprintf(f, "  \"batch\": %lld, \"seed\": %llu, \"backend\": \"%s\", \"loss\": %.9g,\n", (long long)a->batch,
            (unsigned long long)a->seed, a->backend_name, loss);
    fprintf(f, "  \"inputs\": [\n");
    for (int i = 0; i < n_in; i++) {
        fprintf(f, "    {\"name\": \"%s\", \"dtype\": \"%s\", \"shape\": ", in[i].name, dc_dtype_name(in[i].t->type.dtype));
        json_shape(f, &in[i].t->type.shape);
        fprintf(f, "}%s\n", i + 1 < n_in ? "," : "");
    }
    fprintf(f, "  ],\n  \"params\": [\n");
    for (int i = 0; i < n_params; i++) {
        fprintf(f, "    {\"name\": \"%s\", \"shape\": ", ps[i].name);
        json_shape(f, &ps[i].shape);
        fprintf(f, "}%s\n", i + 1 < n_params ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0) die(path, strerror(errno));
}

int main(int argc, char **argv) {
    args a = parse_args(argc, argv);
    int backend = dc_backend_from_name(a.backend_name);
    if (backend < 0) die("--backend", "must be auto, ref, dnnl or jit");
    dc_img_config c = dc_img_config_defaults();
    c.baseline = a.baseline, c.latent_groups = a.groups;
    char err[DC_ERR_LEN];
    if (!dc_img_config_ok(&c, err, sizeof err)) die("config", err);

    dc_graph *g = dc_img_loss_graph(&c, a.batch);
    if (dc_graph_failed(g)) die("graph", dc_graph_error(g));
    int params[MAX_PARAMS], grads[MAX_PARAMS], n_params = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == DC_OP_PARAM) {
            if (n_params == MAX_PARAMS) die("graph", "too many params");
            params[n_params++] = i;
        }
    if (!dc_grad(g, g->outputs[0], params, n_params, grads, err, sizeof err)) die("grad", err);
    for (int i = 0; i < n_params; i++) dc_graph_add_output(g, grads[i], NULL);
    param *ps = calloc((size_t)n_params, sizeof *ps);
    if (!ps) abort(); /* out of memory */
    for (int i = 0; i < n_params; i++) {
        snprintf(ps[i].name, sizeof ps[i].name, "%s", g->nodes[params[i]].name);
        ps[i].shape = g->nodes[params[i]].type.shape;
    }
    input in[6];
    int n_in = make_batch(&a, &c, in);
    make_dir(a.dir);
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/input", a.dir), make_dir(sub);
    snprintf(sub, sizeof sub, "%s/param", a.dir), make_dir(sub);
    snprintf(sub, sizeof sub, "%s/grad", a.dir), make_dir(sub);

    dc_exec *e = dc_compile_for(g, a.seed, (dc_backend)backend, NULL, err, sizeof err);
    if (!e) die("compile", err);
    for (int i = 0; i < n_params; i++) {
        dc_tensor *p = dc_exec_param(e, ps[i].name);
        if (!p) die(ps[i].name, "the compiled program lost this param");
        float *v = p->data;
        for (int64_t j = 0; j < dc_numel(&p->type.shape); j++)
            v[j] += PERTURB * (dc_rng_uniform01(a.seed, STREAM_PERTURB + (uint64_t)i, (uint64_t)j) - 0.5f);
        write_npy(a.dir, "param", ps[i].name, p);
    }
    for (int i = 0; i < n_in; i++) {
        if (!dc_exec_set_input(e, in[i].name, in[i].t, err, sizeof err)) die("input", err);
        write_npy(a.dir, "input", in[i].name, in[i].t);
    }
    if (!dc_exec_run(e, err, sizeof err)) die("run", err);
    const dc_tensor *loss = dc_exec_output(e, 0);
    write_npy(a.dir, "", "loss", loss);
    for (int i = 0; i < n_params; i++) write_npy(a.dir, "grad", ps[i].name, dc_exec_output(e, 1 + i));
    double lv = ((const float *)loss->data)[0];
    write_manifest(&a, &c, ps, n_params, in, n_in, lv);
    printf("images_twin: %s, batch %lld, seed %llu, backend %s: loss %.6f, %d params and their gradients in %s\n",
           c.baseline ? "EDM baseline" : "DisCo-Diff", (long long)a.batch, (unsigned long long)a.seed, a.backend_name,
           lv, n_params, a.dir);
    for (int i = 0; i < n_in; i++) dc_tensor_free(in[i].t);
    dc_exec_free(e);
    dc_graph_free(g);
    free(ps);
    return 0;
}
