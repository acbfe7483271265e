/* core.c — the machinery of the oneDNN provider: the process's one engine and stream, the
 * primitive cache (keyed by XXH3-128 of a call's full descriptor), the choice of an
 * implementation that is not oneDNN's reference code, cached weight reorders, and execution.
 *
 * Weight layouts: a weight argument is first offered to oneDNN as `any` (the kernel picks
 * its blocked layout; the caller's plain HWIO buffer is reordered into it), then pinned to
 * the caller's plain layout. Activations are pinned to the caller's layout (NHWC, row-major
 * matrices), except for a Winograd convolution, tried first when the call asks for it: its
 * kernels want blocked activations, reordered from the caller's buffers before the run and
 * back after it through one scratch buffer the process's calls share (they run one at a
 * time). The first candidate whose primitive and reorders are all non-ref wins.
 *
 * Weight reorder cache: a reordered weight is kept per (primitive, caller's weight pointer)
 * with the XXH3-128 of the weight's bytes; a later call whose weight bytes hash the same
 * reuses it (sampling programs reorder each weight once), otherwise it is reordered again in
 * place (training). Hashing the content costs one read of the weight and, unlike a version
 * number bumped by the caller, can never serve a stale copy. */
#include "codegen/dnnl/dnnl_internal.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define N_BUCKETS 256

/* A reordered copy of one caller weight buffer. */
typedef struct wslot {
    const void *user;
    XXH128_hash_t content;
    void *buf;
    struct wslot *next;
} wslot;

/* A cached primitive with its argument memories and optional weight reorders. */
typedef struct entry {
    call_key key;
    XXH128_hash_t hash;
    dnnl_primitive_t prim;
    dnnl_primitive_t reorder;   /* weights: caller -> kernel (input) or kernel -> caller (output) */
    dnnl_memory_t user_weight;  /* the caller's weight layout, for the reorder */
    size_t weight_bytes;        /* size of the kernel-layout weight buffer */
    void *out_weight;           /* kernel-layout diff weights, when weight_is_output */
    dnnl_primitive_t act_reorder[DNNL_MAX_ARGS]; /* per non-weight argument in another layout */
    dnnl_memory_t act_user[DNNL_MAX_ARGS];       /* the caller's layout of that argument */
    size_t act_offset[DNNL_MAX_ARGS];            /* its kernel-layout copy's place in the scratch */
    size_t act_bytes;                            /* scratch the copies need */
    int n_args;
    int args[DNNL_MAX_ARGS];
    dnnl_memory_t mem[DNNL_MAX_ARGS];
    wslot *slots;
    char impl[256];
    struct entry *next;
} entry;

static struct {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    entry *buckets[N_BUCKETS];
    const char *last_impl;
    dc_dnnl_stats stats;
    void *scratch;              /* the kernel-layout copies of activations */
    size_t scratch_bytes;
} S;

static void *alloc64(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) abort(); /* out of memory */
    return p;
}

/* ---- calls ---------------------------------------------------------------------------- */

void dnnl_call_init(call *c, call_op op, const char *name) {
    memset(c, 0, sizeof *c);
    c->name = name;
    c->key.op = op;
    c->key.threads = omp_get_max_threads();
    c->weight = -1;
}

int dnnl_call_arg(call *c, int arg, const dnnl_memory_desc_t *md, const void *ptr) {
    if (c->n_args == DNNL_MAX_ARGS) abort(); /* broken invariant: ops.c adds at most 8 */
    c->args[c->n_args] = (call_arg){ arg, *md, (void *)ptr };
    return c->n_args++;
}

const call_arg *dnnl_call_find(const call *c, int arg) {
    for (int i = 0; i < c->n_args; i++)
        if (c->args[i].arg == arg) return &c->args[i];
    return NULL;
}

void dnnl_call_key_shape(call *c, int i, const dc_shape *s) {
    c->key.rank[i] = s->rank;
    for (int d = 0; d < s->rank; d++) c->key.dim[i][d] = s->dim[d];
}

void dnnl_any_md(dnnl_memory_desc_t *any, const dnnl_memory_desc_t *user) {
    if (dnnl_memory_desc_init_by_tag(any, user->ndims, user->dims, dnnl_f32, dnnl_format_tag_any) != dnnl_success)
        abort(); /* broken invariant: the caller's layout was valid */
}

/* ---- engine, implementation choice ---------------------------------------------------- */

static bool ensure_engine(char *err, size_t len) {
    if (S.engine) return true;
    if (dnnl_engine_create(&S.engine, dnnl_cpu, 0) != dnnl_success) {
        snprintf(err, len, "dnnl: cannot create a CPU engine");
        S.engine = NULL;
        return false;
    }
    if (dnnl_stream_create(&S.stream, S.engine, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(err, len, "dnnl: cannot create a stream");
        dnnl_engine_destroy(S.engine);
        S.engine = NULL;
        return false;
    }
    return true;
}

static const char *impl_of(const_dnnl_primitive_desc_t pd) {
    const char *s = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s)
        return "?";
    return s;
}

static void append(char *buf, size_t len, const char *s) {
    size_t n = strlen(buf);
    if (n < len) snprintf(buf + n, len - n, "%s%s", n ? ", " : "", s);
}

/* The first implementation oneDNN offers for d that is not a reference one; NULL if there
 * is none, with the refused names (or the status) appended to `refused`. */
static dnnl_primitive_desc_t first_fast_pd(const call_desc *d, const_dnnl_primitive_attr_t attr,
                                           const_dnnl_primitive_desc_t hint, char *refused,
                                           size_t len) {
    dnnl_primitive_desc_iterator_t it;
    dnnl_status_t st = dnnl_primitive_desc_iterator_create(&it, d, attr, S.engine, hint);
    if (st != dnnl_success) {
        append(refused, len, st == dnnl_unimplemented ? "no implementation" : "invalid descriptor");
        return NULL;
    }
    dnnl_primitive_desc_t pd = NULL;
    do {
        dnnl_primitive_desc_t cur = dnnl_primitive_desc_iterator_fetch(it);
        if (!cur) break;
        if (!strstr(impl_of(cur), "ref")) {
            pd = cur;
            break;
        }
        append(refused, len, impl_of(cur));
        dnnl_primitive_desc_destroy(cur);
    } while (dnnl_primitive_desc_iterator_next(it) == dnnl_success);
    dnnl_primitive_desc_iterator_destroy(it);
    return pd;
}

/* A non-ref reorder primitive between two layouts of argument arg; NULL with the reason in
 * `refused`. impl gains " + reorder NAME" (once per distinct NAME). */
static dnnl_primitive_t make_reorder(int arg, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                     char *impl, size_t impl_len, char *refused, size_t len) {
    dnnl_primitive_desc_t pd;
    char msg[128];
    if (dnnl_reorder_primitive_desc_create(&pd, from, S.engine, to, S.engine, NULL) != dnnl_success) {
        snprintf(msg, sizeof msg, "reorder of argument %d unavailable", arg);
        append(refused, len, msg);
        return NULL;
    }
    const char *name = impl_of(pd);
    dnnl_primitive_t p = NULL;
    if (strstr(name, "ref")) {
        snprintf(msg, sizeof msg, "reorder of argument %d: %s", arg, name);
        append(refused, len, msg);
    } else if (dnnl_primitive_create(&p, pd) != dnnl_success) {
        snprintf(msg, sizeof msg, "reorder of argument %d: creation failed", arg);
        append(refused, len, msg);
        p = NULL;
    } else {
        snprintf(msg, sizeof msg, " + reorder %s", name);
        size_t n = strlen(impl);
        if (!strstr(impl, msg)) snprintf(impl + n, impl_len - n, "%s", msg);
    }
    dnnl_primitive_desc_destroy(pd);
    return p;
}

/* The attribute carrying c's post-ops; NULL (and `refused`) if oneDNN rejects one. */
static dnnl_primitive_attr_t make_attr(const call *c, char *refused, size_t len) {
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) abort(); /* out of memory */
    if (dnnl_post_ops_create(&po) != dnnl_success) abort();
    bool ok = true;
    for (int i = 0; i < c->n_postops && ok; i++) {
        const call_postop *p = &c->postops[i];
        if (p->binary_arg >= 0)
            ok = dnnl_post_ops_append_binary(po, dnnl_binary_add, &c->args[p->binary_arg].md) ==
                 dnnl_success;
        else ok = dnnl_post_ops_append_eltwise(po, 1.0f, p->alg, p->alpha, p->beta) == dnnl_success;
    }
    ok = ok && dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    dnnl_post_ops_destroy(po);
    if (!ok) {
        append(refused, len, "post-ops rejected");
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

/* ---- building an entry ---------------------------------------------------------------- */

static void entry_free(entry *e) {
    for (wslot *s = e->slots, *next; s; s = next) {
        next = s->next;
        free(s->buf);
        free(s);
    }
    for (int i = 0; i < e->n_args; i++)
        if (e->mem[i]) dnnl_memory_destroy(e->mem[i]);
    if (e->user_weight) dnnl_memory_destroy(e->user_weight);
    if (e->reorder) dnnl_primitive_destroy(e->reorder);
    for (int i = 0; i < DNNL_MAX_ARGS; i++) {
        if (e->act_user[i]) dnnl_memory_destroy(e->act_user[i]);
        if (e->act_reorder[i]) dnnl_primitive_destroy(e->act_reorder[i]);
    }
    if (e->prim) dnnl_primitive_destroy(e->prim);
    free(e->out_weight);
    free(e);
}

/* Whether argument arg is written by the primitive. */
static bool is_output(int arg) {
    return arg == DNNL_ARG_DST || arg == DNNL_ARG_DIFF_SRC || arg == DNNL_ARG_DIFF_WEIGHTS ||
           arg == DNNL_ARG_DIFF_BIAS;
}

/* A reorder between the caller's layout of argument a and the layout `want` of the kernel:
 * caller -> kernel for an input, kernel -> caller for an output; the caller's memory object
 * in *user_mem. */
static dnnl_primitive_t arg_reorder(entry *e, const call_arg *a, const dnnl_memory_desc_t *want,
                                    dnnl_memory_t *user_mem, char *refused, size_t len) {
    if (dnnl_memory_create(user_mem, &a->md, S.engine, DNNL_MEMORY_NONE) != dnnl_success) {
        *user_mem = NULL;
        append(refused, len, "memory creation failed");
        return NULL;
    }
    return is_output(a->arg) ? make_reorder(a->arg, want, &a->md, e->impl, sizeof e->impl, refused, len)
                             : make_reorder(a->arg, &a->md, want, e->impl, sizeof e->impl, refused, len);
}

/* Makes the primitive pd of c into e: argument memories, with a reorder for each argument
 * pd wants in another layout than the caller's (the weight's copy cached, the others in the
 * scratch). False with `refused` otherwise. */
static bool fill_entry(entry *e, const call *c, const_dnnl_primitive_desc_t pd, char *refused,
                       size_t len) {
    snprintf(e->impl, sizeof e->impl, "%s", impl_of(pd));
    for (int i = 0; i < c->n_args; i++) {
        const call_arg *a = &c->args[i];
        const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, a->arg);
        e->args[i] = a->arg;
        e->n_args = i + 1;
        if (dnnl_memory_create(&e->mem[i], want, S.engine, DNNL_MEMORY_NONE) != dnnl_success) {
            e->mem[i] = NULL;
            append(refused, len, "memory creation failed");
            return false;
        }
        if (dnnl_memory_desc_equal(want, &a->md)) continue;
        size_t bytes = (dnnl_memory_desc_get_size(want) + 63) / 64 * 64;
        if (i == c->weight) {
            e->weight_bytes = bytes;
            if (!(e->reorder = arg_reorder(e, a, want, &e->user_weight, refused, len))) return false;
            if (c->weight_is_output) e->out_weight = alloc64(e->weight_bytes);
            continue;
        }
        e->act_offset[i] = e->act_bytes;
        e->act_bytes += bytes;
        if (!(e->act_reorder[i] = arg_reorder(e, a, want, &e->act_user[i], refused, len))) return false;
    }
    if (dnnl_primitive_create(&e->prim, pd) != dnnl_success) {
        e->prim = NULL;
        append(refused, len, "primitive creation failed");
        return false;
    }
    return true;
}

/* Tries c with weight layout wmd (and Winograd's algorithm): the hint (backward ops), the
 * primitive, the reorders. */
static entry *try_layout(const call *c, const dnnl_memory_desc_t *wmd, bool winograd, char *refused, size_t len) {
    call_desc d, hint;
    bool has_hint = false;
    if (c->desc(c, wmd, winograd, &d, &hint, &has_hint) != dnnl_success) {
        append(refused, len, "descriptor rejected");
        return NULL;
    }
    dnnl_primitive_desc_t hint_pd = NULL, pd = NULL;
    if (has_hint && !(hint_pd = first_fast_pd(&hint, NULL, NULL, refused, len))) return NULL;
    dnnl_primitive_attr_t attr = make_attr(c, refused, len);
    if (attr) pd = first_fast_pd(&d, attr, hint_pd, refused, len);
    entry *e = NULL;
    if (pd) {
        e = calloc(1, sizeof *e);
        if (!e) abort(); /* out of memory */
        if (!fill_entry(e, c, pd, refused, len)) {
            entry_free(e);
            e = NULL;
        }
        dnnl_primitive_desc_destroy(pd);
    }
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (hint_pd) dnnl_primitive_desc_destroy(hint_pd);
    return e;
}

/* A new entry for c: Winograd when asked for (weight `any`), then the weight as `any`, then
 * as the caller's layout. */
static entry *build(const call *c, char *err, size_t len) {
    char refused[400] = "";
    entry *e = NULL;
    if (c->weight >= 0) {
        const dnnl_memory_desc_t *user = &c->args[c->weight].md;
        dnnl_memory_desc_t any;
        dnnl_any_md(&any, user);
        if (c->key.winograd) e = try_layout(c, &any, true, refused, sizeof refused);
        if (!e) e = try_layout(c, &any, false, refused, sizeof refused);
        if (!e) e = try_layout(c, user, false, refused, sizeof refused);
    } else {
        e = try_layout(c, NULL, false, refused, sizeof refused);
    }
    if (!e) snprintf(err, len, "dnnl %s: oneDNN refused %s: %s", c->name, c->what, refused);
    return e;
}

/* ---- the cache and execution ---------------------------------------------------------- */

static entry *lookup(const call *c, XXH128_hash_t h) {
    for (entry *e = S.buckets[h.low64 % N_BUCKETS]; e; e = e->next)
        if (XXH128_isEqual(e->hash, h) && !memcmp(&e->key, &c->key, sizeof c->key)) return e;
    return NULL;
}

static bool exec(dnnl_primitive_t p, int n, const dnnl_exec_arg_t *args) {
    return dnnl_primitive_execute(p, S.stream, n, args) == dnnl_success;
}

/* The kernel-layout copy of c's weight, reordered only if the weight's bytes changed since
 * the last call with that buffer; NULL if the reorder fails. */
static void *weight_in(entry *e, const call *c) {
    const call_arg *a = &c->args[c->weight];
    XXH128_hash_t content = XXH3_128bits(a->ptr, dnnl_memory_desc_get_size(&a->md));
    wslot *s = e->slots;
    while (s && s->user != a->ptr) s = s->next;
    if (s && XXH128_isEqual(s->content, content)) {
        S.stats.weight_hits++;
        return s->buf;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) abort(); /* out of memory */
        s->user = a->ptr;
        s->buf = alloc64(e->weight_bytes);
        s->next = e->slots;
        e->slots = s;
    }
    dnnl_memory_set_data_handle(e->user_weight, a->ptr);
    dnnl_memory_set_data_handle(e->mem[c->weight], s->buf);
    dnnl_exec_arg_t r[2] = { { DNNL_ARG_FROM, e->user_weight }, { DNNL_ARG_TO, e->mem[c->weight] } };
    if (!exec(e->reorder, 2, r)) return NULL;
    s->content = content;
    S.stats.weight_reorders++;
    return s->buf;
}

/* Runs argument i's reorder between the caller's buffer and its kernel-layout copy: into the
 * copy (in), or back to the caller (!in). */
static bool reorder_arg(entry *e, int i, void *user, void *copy, bool in) {
    dnnl_memory_set_data_handle(e->act_user[i], user);
    dnnl_memory_set_data_handle(e->mem[i], copy);
    dnnl_exec_arg_t r[2] = { { DNNL_ARG_FROM, in ? e->act_user[i] : e->mem[i] },
                             { DNNL_ARG_TO, in ? e->mem[i] : e->act_user[i] } };
    return exec(e->act_reorder[i], 2, r);
}

bool dnnl_call_run(call *c, char *err, size_t len) {
    if (!ensure_engine(err, len)) return false;
    XXH128_hash_t h = XXH3_128bits(&c->key, sizeof c->key);
    entry *e = lookup(c, h);
    if (e) S.stats.primitive_hits++;
    else {
        if (!(e = build(c, err, len))) return false;
        e->key = c->key;
        e->hash = h;
        e->next = S.buckets[h.low64 % N_BUCKETS];
        S.buckets[h.low64 % N_BUCKETS] = e;
        S.stats.primitives++;
    }
    if (e->act_bytes > S.scratch_bytes) {
        free(S.scratch);
        S.scratch = alloc64(e->act_bytes);
        S.scratch_bytes = e->act_bytes;
    }
    dnnl_exec_arg_t args[DNNL_MAX_ARGS];
    bool ok = true;
    for (int i = 0; i < c->n_args; i++) {
        void *ptr = c->args[i].ptr;
        if (i == c->weight && e->reorder) {
            ptr = c->weight_is_output ? e->out_weight : weight_in(e, c);
            ok = ok && ptr;
        }
        if (e->act_reorder[i]) {
            ptr = (char *)S.scratch + e->act_offset[i];
            if (!is_output(e->args[i])) ok = ok && reorder_arg(e, i, c->args[i].ptr, ptr, true);
        }
        dnnl_memory_set_data_handle(e->mem[i], ptr);
        args[i] = (dnnl_exec_arg_t){ e->args[i], e->mem[i] };
    }
    ok = ok && exec(e->prim, c->n_args, args);
    for (int i = 0; ok && i < c->n_args; i++)
        if (e->act_reorder[i] && is_output(e->args[i]))
            ok = reorder_arg(e, i, c->args[i].ptr, (char *)S.scratch + e->act_offset[i], false);
    if (ok && c->weight_is_output && e->reorder) {
        dnnl_memory_set_data_handle(e->user_weight, c->args[c->weight].ptr);
        dnnl_exec_arg_t r[2] = { { DNNL_ARG_FROM, e->mem[c->weight] }, { DNNL_ARG_TO, e->user_weight } };
        ok = exec(e->reorder, 2, r);
    }
    ok = ok && dnnl_stream_wait(S.stream) == dnnl_success;
    if (!ok) {
        snprintf(err, len, "dnnl %s: execution of %s failed for %s", c->name, e->impl, c->what);
        return false;
    }
    if (c->residual) {
        float *y = dnnl_call_find(c, DNNL_ARG_DST)->ptr;
        const float *r = c->residual;
#pragma omp parallel for simd if (c->residual_n > 65536)
        for (int64_t i = 0; i < c->residual_n; i++) y[i] += r[i];
    }
    S.last_impl = e->impl;
    return true;
}

const char *dc_dnnl_last_impl(void) { return S.last_impl ? S.last_impl : ""; }

dc_dnnl_stats dc_dnnl_get_stats(void) { return S.stats; }

void dc_dnnl_shutdown(void) {
    for (int b = 0; b < N_BUCKETS; b++)
        for (entry *e = S.buckets[b], *next; e; e = next) {
            next = e->next;
            entry_free(e);
        }
    if (S.stream) dnnl_stream_destroy(S.stream);
    if (S.engine) dnnl_engine_destroy(S.engine);
    free(S.scratch);
    memset(&S, 0, sizeof S);
}
