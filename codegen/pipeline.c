/* pipeline.c — the compiler's pipeline policy, in one place: which passes every graph (a
 * training program, an evaluation or sampling program, a graph `disco run` executes) goes
 * through before it is lowered, and which backends run fused loop groups as JIT kernels:
 * simplify, cse, dce, fuse-contraction, [split-reductions and fuse-loops with auto and jit,]
 * schedule-results, plan-memory. Every
 * program is compiled alike: inference gets the fusion and the JIT kernels that training gets.
 * Every value gets a memory slot (dc_pass_opts.groups_as_kernels off), so a group the JIT
 * cannot compile still runs node by node on ref. */
#include "codegen/codegen.h"

#include "passes/passes.h"

bool dc_backend_uses_jit(dc_backend b) { return b == DC_BACKEND_AUTO || b == DC_BACKEND_JIT; }

const char *dc_forward_pipeline(dc_backend b) { return dc_backend_uses_jit(b) ? "fuse-attention,dce" : NULL; }

const char *dc_pipeline(dc_backend b) {
    return dc_backend_uses_jit(b)
               ? "fuse-attention,simplify,cse,dce,fuse-contraction,split-reductions,fuse-loops,schedule-results,"
                 "plan-memory"
               : "simplify,cse,dce,fuse-contraction,schedule-results,plan-memory";
}

dc_exec *dc_compile_for(dc_graph *g, uint64_t seed, dc_backend backend, dc_exec *host, char *err, size_t len) {
    if (!dc_run_pipeline(g, dc_pipeline(backend), &(dc_pass_opts){ 0 }, err, len)) return NULL;
    return dc_compile_in(g, seed, backend, host, err, len);
}
