/* test_prior.c — the autoregressive prior on latents with a known distribution: codes of m = 4
 * latents over k = 3 codes that follow a fixed Markov chain (initial law p0, transition matrix
 * T). After training, 4000 sampled sequences must match the truth: KL(truth || sampled) of the
 * first code's law and of each position's transition rows below a bound. Also: the causal
 * mask (logits at position i do not change when later tokens change) and bad configs. */
#include "tests/test.h"

#include <stdlib.h>

#include "models/disco/disco.h"

enum { M = 4, K = 3, TRAIN_N = 4096, SAMPLE_N = 4000 };
static const double p0[K] = { 0.6, 0.3, 0.1 };
static const double T[K][K] = { { 0.8, 0.1, 0.1 }, { 0.2, 0.6, 0.2 }, { 0.1, 0.3, 0.6 } };

static int draw(const double *p, float u) {
    double acc = 0;
    for (int j = 0; j < K; j++)
        if (u < (acc += p[j])) return j;
    return K - 1;
}

/* KL(p || q) with q's empirical zeros floored at 1e-6 */
static double kl(const double *p, const double *q) {
    double s = 0;
    for (int j = 0; j < K; j++) s += p[j] > 0 ? p[j] * log(p[j] / fmax(q[j], 1e-6)) : 0;
    return s;
}

static dc_prior_config small_prior(void) {
    dc_prior_config c = dc_prior_config_defaults(M, K);
    c.d_model = 32, c.heads = 2, c.layers = 1;
    return c;
}

TEST(prior_learns_a_markov_chain) {
    int32_t *codes = malloc(TRAIN_N * M * sizeof *codes), *sampled = malloc(SAMPLE_N * M * sizeof *sampled);
    for (int n = 0; n < TRAIN_N; n++)
        for (int i = 0; i < M; i++)
            codes[n * M + i] = draw(i ? T[codes[n * M + i - 1]] : p0, dc_rng_uniform01(77, (uint64_t)i, (uint64_t)n));
    dc_prior_config pc = small_prior();
    dc_train_config tc = { .steps = 400, .batch = 256, .warmup = 20, .lr = 3e-3, .min_lr_ratio = 0.1, .b1 = 0.9f,
                           .b2 = 0.999f, .eps = 1e-8f, .clip_norm = 1.0f, .seed = 1 };
    dc_graph *g = dc_prior_sample_graph(&pc, SAMPLE_N);
    char err[DC_ERR_LEN];
    dc_exec *e = dc_compile(g, 0, DC_BACKEND_AUTO, err, sizeof err);
    CHECK_MSG(e, "%s", err);
    double loss = 0;
    bool ok = e && dc_prior_train(&pc, &tc, codes, NULL, TRAIN_N, e, &loss, err, sizeof err) &&
              dc_prior_sample(e, &pc, 1.0f, 9, NULL, sampled, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    if (ok) {
        /* the chain's entropy per sequence / M is the loss floor: about 0.78 nats */
        CHECK_MSG(loss < 0.85, "prior loss %g", loss);
        double first[K] = { 0 }, trans[M][K][K] = { { { 0 } } }, rows[M][K] = { { 0 } };
        for (int n = 0; n < SAMPLE_N; n++) {
            const int32_t *s = sampled + n * M;
            first[s[0]] += 1.0 / SAMPLE_N;
            for (int i = 1; i < M; i++) trans[i][s[i - 1]][s[i]] += 1, rows[i][s[i - 1]] += 1;
        }
        double k0 = kl(p0, first);
        CHECK_MSG(k0 < 0.01, "KL of the first code %g", k0);
        for (int i = 1; i < M; i++)
            for (int a = 0; a < K; a++) {
                double q[K];
                for (int b = 0; b < K; b++) q[b] = rows[i][a] > 0 ? trans[i][a][b] / rows[i][a] : 0;
                double d = kl(T[a], q);
                /* a row seen ~130 times (state 2 is rare) has sampling KL ~ (K-1)/(2*130) = 0.008 */
                CHECK_MSG(d < 0.05, "position %d, from code %d: KL %g (%g samples)", i, a, d, rows[i][a]);
            }
    }
    dc_exec_free(e);
    dc_graph_free(g);
    free(codes);
    free(sampled);
}

TEST(prior_attention_is_causal) {
    enum { B = 2 };
    dc_prior_config pc = small_prior();
    dc_graph *g = dc_prior_sample_graph(&pc, B);
    char err[DC_ERR_LEN];
    dc_exec *e = dc_exec_new(g, 5, err, sizeof err);
    CHECK_MSG(e, "%s", err);
    dc_tensor *tok = dc_tensor_new(&(dc_type){ DC_I32, { 2, { B, M } } });
    int32_t *t = tok->data;
    /* row 0 and row 1 share tokens 0..1 and differ after */
    const int32_t rows[B][M] = { { K, 0, 1, 2 }, { K, 0, 2, 0 } };
    memcpy(t, rows, sizeof rows);
    if (e && dc_exec_set_input(e, "tokens", tok, err, sizeof err) && dc_exec_run(e, err, sizeof err)) {
        const float *l = dc_exec_output(e, 0)->data;   /* [B,M,K] */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < K; j++) {
                float a = l[(0 * M + i) * K + j], b = l[(1 * M + i) * K + j];
                if (i < 2) CHECK_MSG(a == b, "position %d sees a later token", i);
                else CHECK_MSG(a != b, "position %d ignores its own token", i);
            }
    }
    dc_tensor_free(tok);
    dc_exec_free(e);
    dc_graph_free(g);
}

TEST(prior_rejects_bad_configs_and_codes) {
    char err[DC_ERR_LEN];
    dc_prior_config c = small_prior();
    c.heads = 3;
    CHECK(!dc_prior_config_ok(&c, err, sizeof err) && strstr(err, "heads"));
    c = small_prior();
    c.m = 0;
    CHECK(!dc_prior_config_ok(&c, err, sizeof err));
    c = small_prior();
    int32_t codes[2 * M] = { 0, 1, 2, 0, 1, 3, 0, 0 };   /* 3 is outside [0, K) */
    dc_train_config tc = { .steps = 1, .batch = 2, .lr = 1e-3, .b1 = 0.9f, .b2 = 0.999f, .eps = 1e-8f };
    CHECK(!dc_prior_train(&c, &tc, codes, NULL, 2, NULL, NULL, err, sizeof err) && strstr(err, "outside"));
}

/* A class-conditional prior: the class is the first token, and the codes are a function of
 * it, code i = (class + i) % K; sampled sequences must follow their class. */
TEST(prior_starts_from_the_class) {
    enum { CLASSES = 3, N = 1536, S = 300 };
    int32_t *codes = malloc(N * M * sizeof *codes), *cls = malloc(N * sizeof *cls);
    int32_t *sampled = malloc(S * M * sizeof *sampled), *want = malloc(S * sizeof *want);
    for (int n = 0; n < N; n++) {
        cls[n] = n % CLASSES;
        for (int i = 0; i < M; i++) codes[n * M + i] = (cls[n] + i) % K;
    }
    for (int b = 0; b < S; b++) want[b] = (b * 7) % CLASSES;
    dc_prior_config pc = small_prior();
    pc.classes = CLASSES;
    dc_train_config tc = { .steps = 150, .batch = 128, .warmup = 10, .lr = 3e-3, .min_lr_ratio = 0.1, .b1 = 0.9f,
                           .b2 = 0.999f, .eps = 1e-8f, .clip_norm = 1.0f, .seed = 2 };
    dc_graph *g = dc_prior_sample_graph(&pc, S);
    char err[DC_ERR_LEN];
    dc_exec *e = dc_compile(g, 0, DC_BACKEND_AUTO, err, sizeof err);
    CHECK_MSG(e, "%s", err);
    bool ok = e && dc_prior_train(&pc, &tc, codes, cls, N, e, NULL, err, sizeof err) &&
              dc_prior_sample(e, &pc, 1.0f, 3, want, sampled, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    int exact = 0;
    for (int b = 0; ok && b < S; b++) {
        bool same = true;
        for (int i = 0; i < M; i++) same = same && sampled[b * M + i] == (want[b] + i) % K;
        exact += same;
    }
    CHECK_MSG(!ok || exact >= S * 95 / 100, "%d of %d sequences follow their class", exact, S);
    /* the classes are checked: missing, out of range, or given to a prior without classes */
    CHECK(!dc_prior_train(&pc, &tc, codes, NULL, N, e, NULL, err, sizeof err) && strstr(err, "needs the classes"));
    cls[5] = CLASSES;
    CHECK(!dc_prior_train(&pc, &tc, codes, cls, N, e, NULL, err, sizeof err) && strstr(err, "class 3 of example 5"));
    pc.classes = 0;
    CHECK(!dc_prior_train(&pc, &tc, codes, cls, N, e, NULL, err, sizeof err) && strstr(err, "without classes"));
    dc_exec_free(e);
    dc_graph_free(g);
    free(codes);
    free(cls);
    free(sampled);
    free(want);
}
