/* jit.c — the JIT's entry points (codegen.h): target selection (host CPU and features, the
 * DISCO_CPU / DISCO_CPU_FEATURES overrides), the cache key, compiling a kernel IR to an object
 * (emit.c, `default<O3>` with the target machine, object emission), the on-disk cache, and
 * loading objects into the process's one ORC LLJIT (one resource tracker per kernel, shared
 * by identical kernels). */
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "codegen/codegen.h"
#include "codegen/llvm/llvm_internal.h"

struct dc_jit_kernel {
    dc_hash128 key;
    char name[40];
    LLVMOrcResourceTrackerRef rt;
    dc_range_kernel fn;
    int lanes;
    char impl[96];
    int refs;
    dc_jit_kernel *next;
};

static struct {
    LLVMOrcLLJITRef jit;
    dc_jit_kernel *live;
    dc_jit_stats stats;
    bool warned_store;
} J;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Takes the error's message into err and disposes of it; false for the caller to return. */
static bool llvm_fail(LLVMErrorRef e, const char *what, char *err, size_t len) {
    char *msg = LLVMGetErrorMessage(e);
    snprintf(err, len, "jit: %s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return false;
}

/* ---- the target ------------------------------------------------------------------------ */

typedef struct {
    char cpu[64];
    char *features; /* malloc'd: the host's, then the override */
    int lanes;
} target;

/* Whether the comma-separated feature list leaves feature f enabled (the last +f / -f). */
static bool feature_on(const char *list, const char *f) {
    bool on = false;
    size_t n = strlen(f);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n + 1 && (p[0] == '+' || p[0] == '-') && memcmp(p + 1, f, n) == 0) on = p[0] == '+';
        p = e ? e + 1 : NULL;
    }
    return on;
}

static void target_init(target *t, const dc_jit_options *opt) {
    const char *cpu = opt && opt->cpu ? opt->cpu : getenv("DISCO_CPU");
    char *host = LLVMGetHostCPUName();
    snprintf(t->cpu, sizeof t->cpu, "%s", cpu && *cpu ? cpu : host);
    LLVMDisposeMessage(host);
    const char *extra = opt && opt->features ? opt->features : getenv("DISCO_CPU_FEATURES");
    char *base = LLVMGetHostCPUFeatures();
    size_t n = strlen(base) + (extra ? strlen(extra) : 0) + 2;
    t->features = malloc(n);
    if (!t->features) abort(); /* out of memory */
    snprintf(t->features, n, "%s%s%s", base, extra && *extra ? "," : "", extra ? extra : "");
    LLVMDisposeMessage(base);
    bool avx2 = feature_on(t->features, "avx") && feature_on(t->features, "avx2");
    t->lanes = avx2 && feature_on(t->features, "avx512f") ? 16 : avx2 ? 8 : 1;
}

static LLVMTargetMachineRef target_machine(const target *t, char *err, size_t len) {
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    char *triple = LLVMGetDefaultTargetTriple(), *msg = NULL;
    LLVMTargetRef tg;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMGetTargetFromTriple(triple, &tg, &msg)) {
        snprintf(err, len, "jit: no target for %s: %s", triple, msg);
        LLVMDisposeMessage(msg);
    } else {
        tm = LLVMCreateTargetMachine(tg, triple, t->cpu, t->features, LLVMCodeGenLevelAggressive,
                                     LLVMRelocPIC, LLVMCodeModelDefault);
        if (!tm) snprintf(err, len, "jit: cannot make a target machine for %s", t->cpu);
    }
    LLVMDisposeMessage(triple);
    return tm;
}

/* The target's part of every key: CPU, full feature string, LLVM and codegen versions. */
static void target_text(dc_strbuf *s, const target *t) {
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    dc_sb_printf(s, "cpu %s\nfeatures %s\nllvm %u.%u.%u\ncodegen %d\n", t->cpu, t->features, major, minor,
                 patch, DC_JIT_CODEGEN_VERSION);
}

char *dc_jit_target_text(const dc_jit_options *opt) {
    target t;
    target_init(&t, opt);
    dc_strbuf s = { 0 };
    target_text(&s, &t);
    free(t.features);
    return s.buf;
}

int dc_jit_target_lanes(const dc_jit_options *opt) {
    target t;
    target_init(&t, opt);
    free(t.features);
    return t.lanes;
}

/* XXH3-128 of everything the object depends on. */
static dc_hash128 cache_key(const char *text, const target *t) {
    dc_strbuf s = { 0 };
    dc_sb_printf(&s, "%s\n", text);
    target_text(&s, t);
    dc_sb_printf(&s, "opt default<O3> lanes %d pic\n", t->lanes);
    XXH128_hash_t h = XXH3_128bits(s.buf, s.len);
    free(s.buf);
    return (dc_hash128){ h.low64, h.high64 };
}

/* ---- compiling --------------------------------------------------------------------------- */

/* What a kernel is built from: an emitter of its LLVM function and the emitter's input. */
typedef struct {
    void (*emit)(dc_lx *x, const void *src, const char *name);
    const void *src;
} source;

static void emit_kir(dc_lx *x, const void *src, const char *name) { dc_lx_emit_kernel(x, src, name); }
static void emit_attention(dc_lx *x, const void *src, const char *name) { dc_lx_emit_attention(x, src, name); }
static void emit_gemm(dc_lx *x, const void *src, const char *name) { dc_lx_emit_gemm(x, src, name); }

/* The optimized object of the kernel src emits, named name; NULL and err on failure. */
static LLVMMemoryBufferRef compile(const source *src, const char *name, const target *t, char *err,
                                   size_t len) {
    LLVMTargetMachineRef tm = target_machine(t, err, len);
    if (!tm) return NULL;
    dc_lx x = { .ctx = LLVMContextCreate(), .lanes = t->lanes };
    x.mod = LLVMModuleCreateWithNameInContext(name, x.ctx);
    x.b = LLVMCreateBuilderInContext(x.ctx);
    x.f32 = LLVMFloatTypeInContext(x.ctx);
    x.i32 = LLVMInt32TypeInContext(x.ctx);
    x.i64 = LLVMInt64TypeInContext(x.ctx);
    x.i1 = LLVMInt1TypeInContext(x.ctx);
    x.ptr = LLVMPointerTypeInContext(x.ctx, 0);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(x.mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(x.mod, td);
    LLVMDisposeTargetData(td);
    src->emit(&x, src->src, name);
    LLVMMemoryBufferRef obj = NULL;
    char *msg = NULL;
    if (LLVMVerifyModule(x.mod, LLVMReturnStatusAction, &msg)) {
        snprintf(err, len, "jit: invalid LLVM IR (a codegen bug): %.300s", msg);
    } else {
        LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
        LLVMErrorRef e = LLVMRunPasses(x.mod, "default<O3>", tm, po);
        J.stats.optimizer_runs++;
        LLVMDisposePassBuilderOptions(po);
        if (e) {
            llvm_fail(e, "optimizer", err, len);
        } else if (LLVMTargetMachineEmitToMemoryBuffer(tm, x.mod, LLVMObjectFile, &msg, &obj)) {
            snprintf(err, len, "jit: emitting the object: %s", msg);
            obj = NULL;
        }
    }
    LLVMDisposeMessage(msg);
    LLVMDisposeBuilder(x.b);
    LLVMDisposeModule(x.mod);
    LLVMContextDispose(x.ctx);
    LLVMDisposeTargetMachine(tm);
    return obj;
}

/* ---- loading ----------------------------------------------------------------------------- */

static bool ensure_jit(char *err, size_t len) {
    if (J.jit) return true;
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&J.jit, NULL);
    if (e) {
        J.jit = NULL;
        return llvm_fail(e, "creating the LLJIT", err, len);
    }
    /* libm (sinf, cosf, powf) and whatever the optimizer calls (memset, memcpy) */
    LLVMOrcDefinitionGeneratorRef gen;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(J.jit),
                                                             NULL, NULL);
    if (e) return llvm_fail(e, "resolving process symbols", err, len);
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(J.jit), gen);
    return true;
}

/* Links object obj (taken) into the JIT as kernel jk's code. */
static bool load(dc_jit_kernel *jk, LLVMMemoryBufferRef obj, char *err, size_t len) {
    double t0 = now_ms();
    if (!ensure_jit(err, len)) {
        LLVMDisposeMemoryBuffer(obj);
        return false;
    }
    jk->rt = LLVMOrcJITDylibCreateResourceTracker(LLVMOrcLLJITGetMainJITDylib(J.jit));
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFileWithRT(J.jit, jk->rt, obj);
    LLVMOrcExecutorAddress addr = 0;
    if (!e) e = LLVMOrcLLJITLookup(J.jit, &addr, jk->name);
    if (e) {
        llvm_fail(e, "loading the kernel", err, len);
        LLVMErrorRef r = LLVMOrcResourceTrackerRemove(jk->rt);
        if (r) LLVMConsumeError(r);
        LLVMOrcReleaseResourceTracker(jk->rt);
        jk->rt = NULL;
        return false;
    }
    jk->fn = (dc_range_kernel)(uintptr_t)addr;
    J.stats.load_ms += now_ms() - t0;
    return true;
}

/* Loads the cached object of jk; false on a miss or when the stored object does not load. */
static bool load_cached(dc_jit_kernel *jk) {
    void *data;
    size_t n;
    if (!dc_kcache_get((dc_kcache_key){ jk->key.lo, jk->key.hi }, &data, &n)) return false;
    LLVMMemoryBufferRef obj = LLVMCreateMemoryBufferWithMemoryRangeCopy(data, n, jk->name);
    free(data);
    char msg[DC_ERR_LEN];
    if (load(jk, obj, msg, sizeof msg)) return true;
    fprintf(stderr, "disco: warning: cached kernel %s did not load (%s); compiling it again\n",
            jk->name, msg);
    return false;
}

static bool build(dc_jit_kernel *jk, const source *src, const target *t, bool no_cache, char *err,
                  size_t len) {
    double t0 = now_ms();
    LLVMMemoryBufferRef obj = compile(src, jk->name, t, err, len);
    if (!obj) return false;
    J.stats.compiled++;
    J.stats.compile_ms += now_ms() - t0;
    char msg[DC_ERR_LEN];
    if (!no_cache && !dc_kcache_put((dc_kcache_key){ jk->key.lo, jk->key.hi }, LLVMGetBufferStart(obj),
                                    LLVMGetBufferSize(obj), msg, sizeof msg) && !J.warned_store) {
        fprintf(stderr, "disco: warning: kernels are not cached: %s\n", msg);
        J.warned_store = true;
    }
    return load(jk, obj, err, len);
}

/* ---- the API ------------------------------------------------------------------------------ */

/* The kernel whose canonical text is text (the cache key's start), built from src: an
 * identical live kernel shared, else the cached object loaded, else compiled. */
static dc_jit_kernel *get_kernel(const char *text, const source *src, const target *t, const dc_jit_options *opt,
                                 char *err, size_t len) {
    dc_hash128 key = cache_key(text, t);
    for (dc_jit_kernel *p = J.live; p; p = p->next)
        if (p->key.lo == key.lo && p->key.hi == key.hi) {
            p->refs++;
            J.stats.shared++;
            return p;
        }
    dc_jit_kernel *jk = calloc(1, sizeof *jk);
    if (!jk) abort(); /* out of memory */
    jk->key = key;
    jk->lanes = t->lanes;
    jk->refs = 1;
    snprintf(jk->name, sizeof jk->name, "dck_%016llx%016llx", (unsigned long long)key.hi, (unsigned long long)key.lo);
    snprintf(jk->impl, sizeof jk->impl, "%s x%d", t->cpu, t->lanes);
    bool no_cache = opt && opt->no_cache;
    if (!no_cache && load_cached(jk)) {
        J.stats.cache_loads++;
    } else if (!build(jk, src, t, no_cache, err, len)) {
        free(jk);
        return NULL;
    }
    jk->next = J.live;
    J.live = jk;
    return jk;
}

dc_jit_kernel *dc_jit_compile(const dc_kir *k, const dc_jit_options *opt, char *err, size_t len) {
    if (dc_kir_error(k)) {
        snprintf(err, len, "jit: invalid kernel: %s", dc_kir_error(k));
        return NULL;
    }
    if (k->n_phases == 0) {
        snprintf(err, len, "jit: the kernel has no phases");
        return NULL;
    }
    dc_kir *ck = dc_kir_collapse(k);
    char *text = dc_kir_print(ck);
    target t;
    target_init(&t, opt);
    dc_jit_kernel *jk = get_kernel(text, &(source){ emit_kir, ck }, &t, opt, err, len);
    free(text);
    free(t.features);
    dc_kir_free(ck);
    return jk;
}

dc_jit_kernel *dc_jit_compile_attention(const dc_attn_spec *s, const dc_jit_options *opt, char *err, size_t len) {
    target t;
    target_init(&t, opt);
    dc_jit_kernel *jk = NULL;
    if (!dc_lx_attention_supported(s, t.lanes)) {
        snprintf(err, len, "jit: no flash-attention kernel for D=%lld, Dv=%lld, bk=%lld on %d lanes (needs AVX2 and "
                 "D, Dv, bk at most 32 vectors)", (long long)s->d, (long long)s->dv, (long long)s->bk, t.lanes);
    } else {
        char text[512];
        snprintf(text, sizeof text, "attention %s D%lld Dv%lld causal %d bias %d last-broadcast %d bq %lld bk %lld",
                 s->backward ? "bwd" : "fwd", (long long)s->d, (long long)s->dv, s->causal, s->bias,
                 s->bias_last_broadcast, (long long)s->bq, (long long)s->bk);
        jk = get_kernel(text, &(source){ emit_attention, s }, &t, opt, err, len);
    }
    free(t.features);
    return jk;
}

dc_jit_kernel *dc_jit_compile_gemm(const dc_gemm_spec *s, const dc_jit_options *opt, char *err, size_t len) {
    target t;
    target_init(&t, opt);
    dc_jit_kernel *jk = NULL;
    char text[256];
    if (dc_gemm_spec_ok(s, t.lanes, err, len)) {
        dc_gemm_spec_text(s, text, sizeof text);
        jk = get_kernel(text, &(source){ emit_gemm, s }, &t, opt, err, len);
    }
    free(t.features);
    return jk;
}

dc_attn_sizes dc_attn_sizes_of(const dc_attn_spec *s) {
    dc_attn_sizes z = { { s->H, s->sq, s->sk, s->bias_stride[0], s->bias_stride[1], s->bias_stride[2], 0 } };
    memcpy(&z.v[6], &s->scale, sizeof s->scale);
    return z;
}

dc_range_kernel dc_jit_entry(const dc_jit_kernel *jk) { return jk->fn; }
int dc_jit_lanes(const dc_jit_kernel *jk) { return jk->lanes; }
const char *dc_jit_impl(const dc_jit_kernel *jk) { return jk->impl; }

void dc_jit_release(dc_jit_kernel *jk) {
    if (!jk || --jk->refs > 0) return;
    for (dc_jit_kernel **p = &J.live; *p; p = &(*p)->next)
        if (*p == jk) {
            *p = jk->next;
            break;
        }
    LLVMErrorRef e = LLVMOrcResourceTrackerRemove(jk->rt);
    if (e) LLVMConsumeError(e);
    LLVMOrcReleaseResourceTracker(jk->rt);
    free(jk);
}

dc_jit_stats dc_jit_get_stats(void) { return J.stats; }

void dc_jit_shutdown(void) {
    while (J.live) {
        J.live->refs = 1;
        dc_jit_release(J.live);
    }
    if (J.jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(J.jit);
        if (e) LLVMConsumeError(e);
    }
    J.jit = NULL;
    J.stats = (dc_jit_stats){ 0 };
}
