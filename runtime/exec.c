/* exec.c — the executor of runtime programs: verifies a graph, lays every node's value out in
 * one arena (at the offsets of the graph's memory plan when it has one, else one
 * bump-allocated 64-byte aligned slot per node), initialises the params, lets each step's
 * provider validate it there once (its prepare hook: keep it, fall back to ref, or fail), and
 * copies params by name between executors. A run executes the program's
 * steps in order (calls, or range kernels split statically over the OpenMP threads, each run
 * of consecutive range kernels in one parallel region with a barrier between steps, calls
 * outside it; a kernel with a check starts a new run, the check first), times each step
 * (and records it for the Chrome trace when $DISCO_TRACE is set), then applies the graph's
 * state updates (param <- value). With a plan, only INPUT, PARAM, output and update values
 * are meaningful after a run (others share slots).
 * INPUT and PARAM values stay in place between runs. Updates are simultaneous: each reads the
 * value of this run, so an update whose value is a param that is itself updated reads it
 * through a staging copy taken before any param is written. An output that is a PARAM node
 * is a view of the param, so after the run it shows the updated value. */
#include "runtime/runtime.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int step; int64_t start_ns, dur_ns; } trace_event;

struct dc_exec {
    const dc_graph *g;
    uint64_t seed;
    char *arena;
    size_t arena_bytes;
    bool borrowed;               /* the arena lies in another executor's scratch */
    dc_tensor *vals;             /* [n_nodes] views into the arena (owned = false) */
    bool *in_place;              /* [n_nodes] the node's slot is one of its inputs' */
    char *stage;                 /* staging copies of update values that are updated params */
    size_t *stage_at;            /* [n_updates] offset into stage, or SIZE_MAX: read in place */
    dc_step *steps;              /* the program */
    int n_steps;
    void (*free_ctx)(void *ctx);
    dc_step_time *time;          /* [n_steps] */
    bool tracing;                /* $DISCO_TRACE was set when the executor was made */
    bool share_regions;          /* consecutive range kernels share a parallel region */
    int tid;                     /* the executor's number in the trace */
    trace_event *events;
    int64_t n_events, cap_events;
};

static size_t value_bytes(const dc_type *t) {
    return (size_t)dc_numel(&t->shape) * dc_dtype_size(t->dtype);
}

static size_t slot_bytes(const dc_type *t) { return (value_bytes(t) + 63) / 64 * 64; }

static bool is_updated(const dc_graph *g, int node) {
    for (int j = 0; j < g->n_updates; j++)
        if (g->updates[j].param == node) return true;
    return false;
}

/* Decides which update values need a staging copy: those that are a param some update
 * writes (other than the update itself writing it back unchanged). */
static void plan_updates(dc_exec *e) {
    const dc_graph *g = e->g;
    e->stage_at = malloc((size_t)(g->n_updates ? g->n_updates : 1) * sizeof *e->stage_at);
    if (!e->stage_at) abort(); /* out of memory */
    size_t top = 0;
    for (int j = 0; j < g->n_updates; j++) {
        const dc_update *u = &g->updates[j];
        e->stage_at[j] = SIZE_MAX;
        if (u->value == u->param || !is_updated(g, u->value)) continue;
        e->stage_at[j] = top;
        top += slot_bytes(&g->nodes[u->value].type);
    }
    e->stage = aligned_alloc(64, top ? top : 64);
    if (!e->stage) abort(); /* out of memory */
}

/* Stages the values that an update would overwrite, then writes every param. */
static void apply_updates(dc_exec *e) {
    const dc_graph *g = e->g;
    for (int j = 0; j < g->n_updates; j++)
        if (e->stage_at[j] != SIZE_MAX) {
            const dc_tensor *v = &e->vals[g->updates[j].value];
            memcpy(e->stage + e->stage_at[j], v->data, value_bytes(&v->type));
        }
    for (int j = 0; j < g->n_updates; j++) {
        const dc_update *u = &g->updates[j];
        dc_tensor *p = &e->vals[u->param];
        const void *src = e->stage_at[j] != SIZE_MAX ? e->stage + e->stage_at[j] : e->vals[u->value].data;
        if (src != p->data) memcpy(p->data, src, value_bytes(&p->type));
    }
}

/* Offsets of every node's value: g's memory plan when it has one, else one bump-allocated
 * slot per node. Returns the arena size, or -1 if the plan does not fit its own arena (a
 * stale plan: a pass changed nodes without dropping it). */
static int64_t value_offsets(const dc_graph *g, int64_t *offset) {
    if (g->plan_offset) {
        for (int i = 0; i < g->n_nodes; i++) {
            int64_t o = g->plan_offset[i];
            if (o < 0 || o % 64 || o > g->plan_bytes || (int64_t)slot_bytes(&g->nodes[i].type) > g->plan_bytes - o)
                return -1;
            offset[i] = o;
        }
        return g->plan_bytes;
    }
    int64_t top = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        offset[i] = top;
        top += (int64_t)slot_bytes(&g->nodes[i].type);
    }
    return top;
}

/* Whether node i writes over one of its inputs (a plan's in-place reuse): then its kernel
 * must not see a zero-filled output, since that would erase the input it reads. */
static bool writes_in_place(const dc_exec *e, int i) {
    const dc_node *n = &e->g->nodes[i];
    for (int k = 0; k < n->n_in; k++)
        if (e->vals[n->in[k]].data == e->vals[i].data) return true;
    return false;
}

/* Where host's scratch starts: past its INPUT and PARAM values, the only ones its runs need
 * kept between them (a planned graph puts them first); its arena's end when it has no plan. */
static size_t scratch_start(const dc_exec *host) {
    const dc_graph *g = host->g;
    if (!g->plan_offset) return host->arena_bytes;
    size_t end = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != DC_OP_INPUT && g->nodes[i].op != DC_OP_PARAM) continue;
        size_t e = (size_t)g->plan_offset[i] + slot_bytes(&g->nodes[i].type);
        if (e > end) end = e;
    }
    return end;
}

/* Allocates the arena (or takes it from host's scratch when it fits) and points vals[i] at
 * each node's slot. */
static bool layout(dc_exec *e, dc_exec *host, char *err, size_t len) {
    const dc_graph *g = e->g;
    size_t cnt = (size_t)(g->n_nodes ? g->n_nodes : 1);
    int64_t *offset = malloc(cnt * sizeof *offset);
    e->vals = calloc(cnt, sizeof *e->vals);
    e->in_place = calloc(cnt, sizeof *e->in_place);
    if (!offset || !e->vals || !e->in_place) abort(); /* out of memory */
    int64_t top = value_offsets(g, offset);
    if (top < 0) {
        free(offset);
        snprintf(err, len, "graph @%s: its memory plan does not fit its arena of %lld bytes (a stale plan?)",
                 g->name, (long long)g->plan_bytes);
        return false;
    }
    e->arena_bytes = (size_t)top;
    size_t start = host ? scratch_start(host) : 0;
    e->borrowed = host && start <= host->arena_bytes && (size_t)top <= host->arena_bytes - start;
    e->arena = e->borrowed ? host->arena + start : aligned_alloc(64, top ? (size_t)top : 64);
    if (!e->arena) abort(); /* out of memory */
    memset(e->arena, 0, (size_t)top);
    for (int i = 0; i < g->n_nodes; i++)
        e->vals[i] = (dc_tensor){ .type = g->nodes[i].type, .data = e->arena + offset[i] };
    for (int i = 0; i < g->n_nodes; i++) e->in_place[i] = writes_in_place(e, i);
    free(offset);
    return true;
}

/* The ref kernel of each node the step writes; the results before its node get a zero-filled
 * output first, as the executor gives its node (a result is never computed in place). */
static bool ref_call(const dc_step *s, const dc_frame *f, char *err, size_t len) {
    for (int i = s->node - s->span; i <= s->node; i++) {
        const dc_node *n = &f->g->nodes[i];
        const dc_tensor *in[DC_MAX_INPUTS];
        for (int k = 0; k < n->n_in; k++) in[k] = &f->vals[n->in[k]];
        if (i < s->node) memset(f->vals[i].data, 0, value_bytes(&n->type));
        if (!dc_ref_eval(f->g, n, in, &f->vals[i], f->seed, err, len)) return false;
    }
    return true;
}

dc_step dc_ref_step(int node) {
    dc_step s;
    memset(&s, 0, sizeof s);
    s.node = node;
    s.provider = "ref";
    snprintf(s.impl, sizeof s.impl, "ref");
    s.call = ref_call;
    return s;
}

/* Checks the program against g: steps on non-source nodes in increasing order, spans over
 * one computation's results, one kernel form each, range kernels with valid arguments. */
static bool check_program(const dc_graph *g, const dc_step *steps, int n, char *err, size_t len) {
    for (int i = 0; i < n; i++) {
        const dc_step *s = &steps[i];
        const char *bad = NULL;
        if (s->node < 0 || s->node >= g->n_nodes) bad = "names no node of the graph";
        else if (g->nodes[s->node].op == DC_OP_INPUT || g->nodes[s->node].op == DC_OP_PARAM)
            bad = "computes an input or param";
        else if (i > 0 && s->node - s->span <= steps[i - 1].node) bad = "is out of schedule order";
        else if (s->span < 0 || s->node - s->span < 0 ||
                 (s->span > 0 && dc_results_last(g, s->node - s->span) != s->node))
            bad = "spans nodes that are not the results of one computation";
        else if (!s->call == !s->kernel) bad = "needs exactly one of a call and a range kernel";
        else if (s->kernel && (s->range < 1 || s->n_args < 1 || s->n_args > DC_STEP_MAX_ARGS))
            bad = "has a range kernel with an empty range or a bad argument count";
        for (int k = 0; !bad && s->kernel && k < s->n_args; k++)
            if (s->args[k] < 0 || s->args[k] >= g->n_nodes) bad = "has an argument that names no node";
        if (bad) {
            snprintf(err, len, "graph @%s: program step %d (node %d, %s) %s", g->name, i, s->node,
                     s->provider ? s->provider : "?", bad);
            return false;
        }
    }
    return true;
}

/* "node %3 (matmul): " + msg into err */
static void node_error(const dc_graph *g, int node, const char *msg, char *err, size_t len) {
    char label[64];
    snprintf(err, len, "node %s (%s): %s", dc_node_label(g, node, label, sizeof label), dc_op_name(g->nodes[node].op),
             msg);
}

/* Runs the prepare hook of every step that has one, in order; false and err when one fails. */
static bool prepare_steps(dc_exec *e, char *err, size_t len) {
    dc_frame f = { e->g, e->vals, e->seed };
    for (int i = 0; i < e->n_steps; i++) {
        dc_step *s = &e->steps[i];
        char msg[DC_ERR_LEN] = "";
        dc_step_verdict v = s->prepare ? s->prepare(s, &f, msg, sizeof msg) : DC_STEP_READY;
        if (v == DC_STEP_FAILED) {
            node_error(e->g, s->node, msg, err, len);
            return false;
        }
        if (v == DC_STEP_FALLBACK) {
            if (s->ctx && e->free_ctx) e->free_ctx(s->ctx);
            int span = s->span;
            *s = dc_ref_step(s->node);
            s->span = span;
            snprintf(s->note, sizeof s->note, "%s", msg);
        }
    }
    return true;
}

static void free_program(dc_exec *e) {
    for (int i = 0; e->free_ctx && i < e->n_steps; i++)
        if (e->steps[i].ctx) e->free_ctx(e->steps[i].ctx);
    free(e->steps);
    free(e->time);
}

dc_exec *dc_exec_new_program(const dc_graph *g, uint64_t seed, const dc_step *steps, int n,
                             void (*free_ctx)(void *ctx), char *err, size_t len) {
    return dc_exec_new_program_in(g, seed, steps, n, free_ctx, NULL, err, len);
}

dc_exec *dc_exec_new_program_in(const dc_graph *g, uint64_t seed, const dc_step *steps, int n,
                                void (*free_ctx)(void *ctx), dc_exec *host, char *err, size_t len) {
    dc_exec *e = calloc(1, sizeof *e);
    if (!e) abort(); /* out of memory */
    e->g = g;
    e->seed = seed;
    e->n_steps = n;
    e->free_ctx = free_ctx;
    e->share_regions = true;
    e->steps = malloc((size_t)(n ? n : 1) * sizeof *e->steps);
    e->time = calloc((size_t)(n ? n : 1), sizeof *e->time);
    if (!e->steps || !e->time) abort(); /* out of memory */
    if (n) memcpy(e->steps, steps, (size_t)n * sizeof *steps);
    const char *trace = getenv("DISCO_TRACE");
    e->tracing = trace && *trace;
    bool ok = dc_verify(g, err, len) && check_program(g, steps, n, err, len) &&
              (!e->tracing || dc_trace_begin(trace, err, len)) && layout(e, host, err, len);
    if (ok) {
        plan_updates(e);
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == DC_OP_PARAM) dc_param_init(&g->nodes[i], &e->vals[i], seed);
        ok = prepare_steps(e, err, len);
    }
    if (!ok) {
        e->tracing = false;
        dc_exec_free(e);
        return NULL;
    }
    static int executors;
    e->tid = ++executors;
    return e;
}

dc_exec *dc_exec_new(const dc_graph *g, uint64_t seed, char *err, size_t len) {
    dc_step *steps = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *steps);
    if (!steps) abort(); /* out of memory */
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op != DC_OP_INPUT && g->nodes[i].op != DC_OP_PARAM) steps[n++] = dc_ref_step(i);
    dc_exec *e = dc_exec_new_program(g, seed, steps, n, NULL, err, len);
    free(steps);
    return e;
}

/* Hands the executor's recorded steps to the process's trace and rewrites the file. */
static void flush_trace(dc_exec *e) {
    for (int64_t k = 0; k < e->n_events; k++) {
        const trace_event *t = &e->events[k];
        const dc_step *s = &e->steps[t->step];
        char label[64];
        dc_trace_add(dc_op_name(e->g->nodes[s->node].op), dc_node_label(e->g, s->node, label, sizeof label),
                     s->provider, s->impl, e->tid, t->start_ns, t->dur_ns);
    }
    char err[DC_ERR_LEN];
    if (!dc_trace_flush(err, sizeof err)) fprintf(stderr, "disco: %s\n", err);
}

void dc_exec_free(dc_exec *e) {
    if (!e) return;
    if (e->tracing) flush_trace(e);
    free_program(e);
    free(e->events);
    if (!e->borrowed) free(e->arena);
    free(e->vals);
    free(e->in_place);
    free(e->stage);
    free(e->stage_at);
    free(e);
}

bool dc_exec_set_input(dc_exec *e, const char *name, const dc_tensor *t, char *err, size_t len) {
    int id = dc_graph_find_input(e->g, name);
    if (id < 0) {
        snprintf(err, len, "no input named '%s'", name);
        return false;
    }
    dc_tensor *v = &e->vals[id];
    if (!dc_type_eq(&v->type, &t->type)) {
        char want[128], got[128];
        snprintf(err, len, "input '%s' expects %s, got %s", name,
                 dc_type_str(&v->type, want, sizeof want), dc_type_str(&t->type, got, sizeof got));
        return false;
    }
    memcpy(v->data, t->data, value_bytes(&t->type));
    return true;
}

void dc_exec_set_seed(dc_exec *e, uint64_t seed) { e->seed = seed; }

bool dc_step_splits(const dc_step *s) {
    if (s->range <= 1 || s->split == DC_SPLIT_NEVER) return false;
    return s->split == DC_SPLIT_ALWAYS || !(s->work > 0 && s->work < DC_PAR_MIN_WORK);
}

void dc_exec_set_split(dc_exec *e, int i, dc_split_mode m) { e->steps[i].split = m; }


/* Whether step s's output is zero-filled before it runs: kernels that do not write every
 * element see a zero-filled output, as they do when called on a fresh tensor, except in
 * place, where the output is an input the (elementwise) kernel still reads. */
static bool zero_fills(const dc_exec *e, const dc_step *s) {
    return !s->writes_all && !e->in_place[s->node];
}

/* Zero-fills part t of nt of step s's output bytes. */
static void zero_part(dc_exec *e, const dc_step *s, int64_t t, int64_t nt) {
    dc_tensor *out = &e->vals[s->node];
    int64_t bytes = (int64_t)value_bytes(&out->type);
    int64_t begin = bytes * t / nt, end = bytes * (t + 1) / nt;
    memset((char *)out->data + begin, 0, (size_t)(end - begin));
}

/* Runs part t of nt of range kernel step s: [range*t/nt, range*(t+1)/nt). */
static void run_part(const dc_exec *e, const dc_step *s, int64_t t, int64_t nt) {
    void *args[DC_STEP_MAX_ARGS];
    for (int k = 0; k < s->n_args; k++) args[k] = e->vals[s->args[k]].data;
    int64_t begin = s->range * t / nt, end = s->range * (t + 1) / nt;
    if (begin < end) s->kernel(args, begin, end);
}

static void record_event(dc_exec *e, int step, int64_t start, int64_t dur) {
    if (e->n_events == e->cap_events) {
        e->cap_events = e->cap_events ? 2 * e->cap_events : 1024;
        e->events = realloc(e->events, (size_t)e->cap_events * sizeof *e->events);
        if (!e->events) abort(); /* out of memory */
    }
    e->events[e->n_events++] = (trace_event){ step, start, dur };
}

/* Charges the time since *t0 to step i (and the trace); *t0 becomes now. */
static void clock_step(dc_exec *e, int i, int64_t *t0) {
    int64_t now = dc_trace_now_ns(), dt = now - *t0;
    e->time[i].calls++;
    e->time[i].ns += dt;
    if (e->tracing) record_event(e, i, *t0, dt);
    *t0 = now;
}

/* Runs the range kernel steps [a, b) on the calling thread when none of them splits; else in
 * one OpenMP parallel region, where a split step is followed by a barrier and the others run
 * on thread 0 (the calling thread) alone, with a barrier before the next split step. The
 * split of each step is the same either way. Thread 0 clocks each step from the end of the
 * previous one (the first from before the region, the last to after it). */
static void run_kernels(dc_exec *e, int a, int b) {
    int64_t t0 = dc_trace_now_ns();
    bool any_split = false;
    for (int i = a; i < b && !any_split; i++) any_split = dc_step_splits(&e->steps[i]);
    if (!any_split) {
        for (int i = a; i < b; i++) {
            if (zero_fills(e, &e->steps[i])) zero_part(e, &e->steps[i], 0, 1);
            run_part(e, &e->steps[i], 0, 1);
            clock_step(e, i, &t0);
        }
        return;
    }
#pragma omp parallel
    {
        int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int i = a; i < b; i++) {
            const dc_step *s = &e->steps[i];
            bool split = dc_step_splits(s);
            if (split) {
                if (zero_fills(e, s)) {
                    zero_part(e, s, t, nt);
#pragma omp barrier
                }
                run_part(e, s, t, nt);
            } else if (t == 0) {
                if (zero_fills(e, s)) zero_part(e, s, 0, 1);
                run_part(e, s, 0, 1);
            }
            if (i + 1 < b) {
                if (split || dc_step_splits(&e->steps[i + 1])) {
#pragma omp barrier
                }
                if (t == 0) clock_step(e, i, &t0);
            }
        }
    }
    clock_step(e, b - 1, &t0);
}

/* Runs call step i (outside any parallel region of ours: a call may open its own), timed. */
static bool run_call(dc_exec *e, int i, char *err, size_t len) {
    int64_t t0 = dc_trace_now_ns();
    const dc_step *s = &e->steps[i];
    if (zero_fills(e, s)) zero_part(e, s, 0, 1);
    char msg[DC_ERR_LEN] = "";
    dc_frame f = { e->g, e->vals, e->seed };
    if (!s->call(s, &f, msg, sizeof msg)) {
        node_error(e->g, s->node, msg, err, len);
        return false;
    }
    clock_step(e, i, &t0);
    return true;
}

/* Runs the check of kernel step i, if it has one. */
static bool run_check(dc_exec *e, int i, char *err, size_t len) {
    const dc_step *s = &e->steps[i];
    char msg[DC_ERR_LEN] = "";
    dc_frame f = { e->g, e->vals, e->seed };
    int node = s->node;
    if (!s->check || s->check(s, &f, &node, msg, sizeof msg)) return true;
    node_error(e->g, node, msg, err, len);
    return false;
}

bool dc_exec_run(dc_exec *e, char *err, size_t len) {
    for (int i = 0; i < e->n_steps;) {
        if (e->steps[i].call) {
            if (!run_call(e, i, err, len)) return false;
            i++;
            continue;
        }
        if (!run_check(e, i, err, len)) return false;
        int end = i + 1;
        while (e->share_regions && end < e->n_steps && e->steps[end].kernel && !e->steps[end].check) end++;
        run_kernels(e, i, end);
        i = end;
    }
    apply_updates(e);
    return true;
}

void dc_exec_share_regions(dc_exec *e, bool share) { e->share_regions = share; }

const dc_step *dc_exec_steps(const dc_exec *e, int *n) {
    *n = e->n_steps;
    return e->steps;
}

int dc_exec_ref_summary(const dc_exec *e, char *buf, size_t len) {
    int count[DC_OP_COUNT] = { 0 }, n_ref = 0;
    dc_op order[DC_OP_COUNT];
    int n_ops = 0;
    for (int i = 0; i < e->n_steps; i++) {
        if (strcmp(e->steps[i].provider, "ref") != 0) continue;
        dc_op op = e->g->nodes[e->steps[i].node].op;
        if (count[op]++ == 0) order[n_ops++] = op;
        n_ref++;
    }
    dc_strbuf sb = { 0 };
    dc_sb_printf(&sb, "%s", "");
    for (int k = 0; k < n_ops; k++) dc_sb_printf(&sb, "%s%s x%d", k ? ", " : "", dc_op_name(order[k]), count[order[k]]);
    snprintf(buf, len, "%s", sb.buf);
    free(sb.buf);
    return n_ref;
}

dc_step_time dc_exec_step_time(const dc_exec *e, int i) { return e->time[i]; }

const dc_tensor *dc_exec_output(const dc_exec *e, int i) { return &e->vals[e->g->outputs[i]]; }

dc_tensor *dc_exec_value(dc_exec *e, int node) { return &e->vals[node]; }

/* The node of the param called prefix + rest in g, or -1. */
static int find_param(const dc_graph *g, const char *prefix, const char *rest) {
    size_t np = strlen(prefix);
    for (int i = 0; i < g->n_nodes; i++) {
        const dc_node *n = &g->nodes[i];
        if (n->op == DC_OP_PARAM && n->name && strncmp(n->name, prefix, np) == 0 && strcmp(n->name + np, rest) == 0)
            return i;
    }
    return -1;
}

dc_tensor *dc_exec_param(dc_exec *e, const char *name) {
    int i = find_param(e->g, "", name);
    return i < 0 ? NULL : &e->vals[i];
}

/* The source node in src of each param of dst that map selects (-1: none), into from[];
 * false and err when a source is missing (need_all) or of another type. */
static bool map_params(const dc_exec *src, const dc_exec *dst, const dc_param_map *map, int *from, char *err,
                       size_t len) {
    const char *pf = map->from ? map->from : "", *pt = map->to ? map->to : "";
    size_t nt = strlen(pt);
    const dc_graph *sg = src->g, *dg = dst->g;
    for (int i = 0; i < dg->n_nodes; i++) {
        const dc_node *n = &dg->nodes[i];
        from[i] = -1;
        if (n->op != DC_OP_PARAM || !n->name || strncmp(n->name, pt, nt) != 0) continue;
        int k = find_param(sg, pf, n->name + nt);
        if (k < 0 && map->need_all) {
            snprintf(err, len, "params: graph @%s has no param '%s%s' (for '%s' of graph @%s)", sg->name, pf,
                     n->name + nt, n->name, dg->name);
            return false;
        }
        if (k >= 0 && !dc_type_eq(&sg->nodes[k].type, &n->type)) {
            char a[128], b[128];
            snprintf(err, len, "params: '%s' of graph @%s is %s, '%s' of graph @%s %s", sg->nodes[k].name, sg->name,
                     dc_type_str(&sg->nodes[k].type, a, sizeof a), n->name, dg->name,
                     dc_type_str(&n->type, b, sizeof b));
            return false;
        }
        from[i] = k;
    }
    return true;
}

bool dc_exec_copy_params(const dc_exec *src, dc_exec *dst, const dc_param_map *map, char *err, size_t len) {
    int *from = malloc((size_t)(dst->g->n_nodes ? dst->g->n_nodes : 1) * sizeof *from);
    if (!from) abort(); /* out of memory */
    bool ok = map_params(src, dst, map, from, err, len);
    for (int i = 0; ok && i < dst->g->n_nodes; i++)
        if (from[i] >= 0 && &src->vals[from[i]] != &dst->vals[i])
            memcpy(dst->vals[i].data, src->vals[from[i]].data, value_bytes(&dst->vals[i].type));
    free(from);
    return ok;
}

size_t dc_exec_arena_bytes(const dc_exec *e) { return e->arena_bytes; }

bool dc_exec_borrows_arena(const dc_exec *e) { return e->borrowed; }

const dc_graph *dc_exec_graph(const dc_exec *e) { return e->g; }
