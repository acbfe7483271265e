/* optim.c — the optimizer graph builders of optim.h: global norm, clipping, AdamW, EMA. Each
 * checks its operands (params are PARAM nodes, values match their param's type), makes its
 * state params outside the current scope, and appends the update arithmetic with DSL ops. */
#include "frontend/optim.h"

#include <stdio.h>
#include <string.h>

/* true if t is a PARAM of g; records "what: operand k is not a param" if not */
static bool is_param(dc_graph *g, dc_t t, const char *what, int k, const char *file, int line) {
    if (!dc_operand_at(g, t, what, k, file, line)) return false;
    if (g->nodes[t.id].op == DC_OP_PARAM) return true;
    dc_fail_at(g, file, line, what, "operand %d is not a param (it is a %s)", k, dc_op_name(g->nodes[t.id].op));
    return false;
}

/* true if value v has the type of param p; records the mismatch if not */
static bool same_type(dc_graph *g, dc_t p, dc_t v, const char *what, int k, const char *file, int line) {
    const dc_type *tv = dc_operand_at(g, v, what, k, file, line);
    if (!tv) return false;
    const dc_type *tp = &g->nodes[p.id].type;
    if (dc_type_eq(tp, tv)) return true;
    char a[128], b[128];
    dc_fail_at(g, file, line, what, "value %d is %s, param '%s' is %s", k, dc_type_str(tv, a, sizeof a),
               g->nodes[p.id].name, dc_type_str(tp, b, sizeof b));
    return false;
}

/* PARAM "PREFIX.NAME" of p's type, zeros, named outside the current scope */
static dc_t state_param(dc_graph *g, const char *prefix, dc_t p, const char *file, int line) {
    char name[DC_ERR_LEN], scope[sizeof g->scope];
    snprintf(name, sizeof name, "%s.%s", prefix, g->nodes[p.id].name);
    dc_type t = g->nodes[p.id].type;
    memcpy(scope, g->scope, sizeof scope);
    g->scope[0] = 0;
    dc_t s = dc_param_at(g, name, t.shape.rank, t.shape.dim, (dc_param_opts){ .init = DC_INIT_ZEROS }, file, line);
    memcpy(g->scope, scope, sizeof scope);
    return s;
}

/* a*x + b*y for scalars a, b */
static dc_t lerp(dc_graph *g, dc_t x, float a, dc_t y, float b, const char *file, int line) {
    return dc_add_at(g, dc_mul_scalar_at(g, x, a, file, line), dc_mul_scalar_at(g, y, b, file, line), file, line);
}

dc_t dc_global_norm_at(dc_graph *g, int n, const dc_t *ts, const char *file, int line) {
    dc_t total = dc_fill_at(g, 0.0f, 0, NULL, (dc_source_opts){ DC_F32 }, file, line);
    for (int i = 0; i < n; i++) {
        dc_t sq = dc_sum_at(g, dc_square_at(g, ts[i], file, line), (dc_reduce_opts){ 0 }, file, line);
        total = i == 0 ? sq : dc_add_at(g, total, sq, file, line);
    }
    return dc_sqrt_at(g, total, file, line);
}

void dc_clip_by_norm_at(dc_graph *g, int n, dc_t *grads, dc_t norm, float max_norm, const char *file,
                        int line) {
    if (!(max_norm > 0)) return;
    /* scale = min(1, max_norm / (norm + 1e-6)) : f32[] */
    dc_t one = dc_fill_at(g, 1.0f, 0, NULL, (dc_source_opts){ DC_F32 }, file, line);
    dc_t limit = dc_fill_at(g, max_norm, 0, NULL, (dc_source_opts){ DC_F32 }, file, line);
    dc_t scale = dc_minimum_at(g, one, dc_div_at(g, limit, dc_add_scalar_at(g, norm, 1e-6f, file, line), file, line),
                               file, line);
    for (int i = 0; i < n; i++) grads[i] = dc_mul_at(g, grads[i], scale, file, line);
}

void dc_adamw_at(dc_graph *g, int n, const dc_t *params, const dc_t *grads, dc_t lr, dc_t bc1, dc_t bc2,
                 dc_adamw_opts o, dc_t *new_params, const char *file, int line) {
    const char *what = "adamw";
    if (dc_graph_failed(g)) return;
    if (!(o.b1 >= 0 && o.b1 < 1 && o.b2 >= 0 && o.b2 < 1 && o.eps > 0 && o.weight_decay >= 0)) {
        dc_fail_at(g, file, line, what, "needs 0 <= b1, b2 < 1, eps > 0, weight_decay >= 0 (got %g, %g, %g, %g)",
                   o.b1, o.b2, o.eps, o.weight_decay);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (!is_param(g, params[i], what, i + 1, file, line) || !same_type(g, params[i], grads[i], what, i + 1, file, line))
            return;
        dc_t p = params[i], gr = grads[i];
        dc_t m = state_param(g, "opt.m", p, file, line), v = state_param(g, "opt.v", p, file, line);
        dc_t m1 = lerp(g, m, o.b1, gr, 1.0f - o.b1, file, line);
        dc_t v1 = lerp(g, v, o.b2, dc_square_at(g, gr, file, line), 1.0f - o.b2, file, line);
        /* step = m' bc1 / (sqrt(v' bc2) + eps) + wd p */
        dc_t den = dc_add_scalar_at(g, dc_sqrt_at(g, dc_mul_at(g, v1, bc2, file, line), file, line), o.eps, file, line);
        dc_t step = dc_div_at(g, dc_mul_at(g, m1, bc1, file, line), den, file, line);
        if (o.weight_decay > 0) step = dc_add_at(g, step, dc_mul_scalar_at(g, p, o.weight_decay, file, line), file, line);
        dc_t p1 = dc_sub_at(g, p, dc_mul_at(g, step, lr, file, line), file, line);
        if (dc_graph_failed(g)) return;
        dc_graph_add_update(g, p.id, p1.id);
        dc_graph_add_update(g, m.id, m1.id);
        dc_graph_add_update(g, v.id, v1.id);
        if (new_params) new_params[i] = p1;
    }
}

void dc_ema_at(dc_graph *g, int n, const dc_t *params, const dc_t *values, float decay, const char *file,
               int line) {
    const char *what = "ema";
    if (dc_graph_failed(g)) return;
    if (!(decay >= 0 && decay <= 1)) {
        dc_fail_at(g, file, line, what, "decay must be in [0, 1], got %g", decay);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (!is_param(g, params[i], what, i + 1, file, line) || !same_type(g, params[i], values[i], what, i + 1, file, line))
            return;
        dc_t e = state_param(g, "ema", params[i], file, line);
        dc_t e1 = lerp(g, e, decay, values[i], 1.0f - decay, file, line);
        if (dc_graph_failed(g)) return;
        dc_graph_add_update(g, e.id, e1.id);
    }
}
