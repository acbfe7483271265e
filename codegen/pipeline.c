/* pipeline.c — the compiler's pipeline policy, in one place: which passes a graph of each kind
 * (a training program, an inference program) goes through before it is lowered, and which
 * backends run fused loop groups as JIT kernels.
 *   train, run: simplify, cse, dce, fuse-contraction, [fuse-loops with auto and jit,]
 *           plan-memory: the whole compiler, for training programs and for any graph `disco run`
 *           executes;
 *   sample: simplify, cse, dce, plan-memory, for the models' evaluation and sampling programs.
 *           No fusion there yet: fused contractions (oneDNN's own activation epilogues) and JIT
 *           loop kernels compute the same values to a few ulp, not bit for bit, and the models'
 *           results are kept bitwise as they were until fused inference is measured against
 *           them (the slow-path issue).
 * Every value gets a memory slot (dc_pass_opts.groups_as_kernels off), so a group the JIT
 * cannot compile still runs node by node on ref. */
#include "codegen/codegen.h"

#include "passes/passes.h"

bool dc_backend_uses_jit(dc_backend b) { return b == DC_BACKEND_AUTO || b == DC_BACKEND_JIT; }

const char *dc_pipeline(dc_pipeline_kind kind, dc_backend b) {
    if (kind == DC_PIPELINE_SAMPLE) return "simplify,cse,dce,plan-memory";
    return dc_backend_uses_jit(b) ? "simplify,cse,dce,fuse-contraction,fuse-loops,plan-memory"
                                  : "simplify,cse,dce,fuse-contraction,plan-memory";
}

dc_exec *dc_compile_for(dc_graph *g, dc_pipeline_kind kind, uint64_t seed, dc_backend backend, char *err,
                        size_t len) {
    if (!dc_run_pipeline(g, dc_pipeline(kind, backend), &(dc_pass_opts){ 0 }, err, len)) return NULL;
    return dc_compile(g, seed, backend, err, len);
}
