/* optim.h — optimizer graph builders: the global gradient norm and clipping by it, AdamW with
 * decoupled weight decay, and an exponential moving average (EMA) of parameters. They append
 * ordinary nodes, state params and state updates (dc_graph_add_update) to a graph that already
 * holds the forward pass, the loss and its gradients, so a whole training step is one graph.
 *
 * Errors follow the DSL: recorded at the call site, sticky, never an abort. State params are
 * named from the param they belong to, outside any current scope: "opt.m.NAME", "opt.v.NAME",
 * "ema.NAME". */
#ifndef DC_OPTIM_H
#define DC_OPTIM_H

#include "frontend/dsl.h"

/* f32[]: sqrt(sum_i sum(ts[i]^2)), summed in index order (0 for n = 0). */
dc_t dc_global_norm_at(dc_graph *g, int n, const dc_t *ts, const char *file, int line);
#define dc_global_norm(g, n, ts) dc_global_norm_at((g), (n), (ts), __FILE__, __LINE__)

/* Clipping by global norm: grads[i] <- grads[i] * min(1, max_norm / (norm + 1e-6)), with norm
 * the f32[] of dc_global_norm(grads). max_norm <= 0 leaves grads as they are. */
void dc_clip_by_norm_at(dc_graph *g, int n, dc_t *grads, dc_t norm, float max_norm,
                        const char *file, int line);
#define dc_clip_by_norm(g, n, grads, norm, max_norm)                                    \
    dc_clip_by_norm_at((g), (n), (grads), (norm), (max_norm), __FILE__, __LINE__)

/* Defaults: b1 0.9, b2 0.999, eps 1e-8, weight_decay 0. */
typedef struct { float b1, b2, eps, weight_decay; } dc_adamw_opts;

/* One AdamW step for each PARAM params[i] with gradient grads[i] (same type). State params
 * m = opt.m.NAME and v = opt.v.NAME start at zeros. lr, bc1 = 1/(1-b1^t), bc2 = 1/(1-b2^t) are
 * f32[] handles the host sets each step t = 1, 2, ... (graph inputs):
 *   m' = b1 m + (1-b1) g          v' = b2 v + (1-b2) g^2
 *   p' = p - lr (m' bc1 / (sqrt(v' bc2) + eps) + weight_decay p)
 * and the updates p <- p', m <- m', v <- v'. Weight decay applies to every param given.
 * new_params (may be NULL) receives the handles of p'. */
void dc_adamw_at(dc_graph *g, int n, const dc_t *params, const dc_t *grads, dc_t lr, dc_t bc1,
                 dc_t bc2, dc_adamw_opts o, dc_t *new_params, const char *file, int line);
#define dc_adamw(g, n, params, grads, lr, bc1, bc2, new_params, ...)                    \
    dc_adamw_at((g), (n), (params), (grads), (lr), (bc1), (bc2),                        \
                DC_OPTS(dc_adamw_opts, .b1 = 0.9f, .b2 = 0.999f, .eps = 1e-8f, __VA_ARGS__), \
                (new_params), __FILE__, __LINE__)

/* EMA of PARAM params[i] tracking values[i] (the param's value after this step, same type):
 * state param e = ema.NAME (zeros in the graph: the host copies the param's initial value in
 * before the first run), e' = decay e + (1-decay) values[i], update e <- e'. 0 <= decay <= 1. */
void dc_ema_at(dc_graph *g, int n, const dc_t *params, const dc_t *values, float decay,
               const char *file, int line);
#define dc_ema(g, n, params, values, decay)                                             \
    dc_ema_at((g), (n), (params), (values), (decay), __FILE__, __LINE__)

#endif
