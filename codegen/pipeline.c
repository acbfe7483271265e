/* pipeline.c — the compiler's pipeline policy, in one place: which passes a graph of each kind
 * (a training program, an inference program) goes through before dc_compile, and which
 * backends run fused loop groups as JIT kernels. */
#include "codegen/codegen.h"

bool dc_backend_uses_jit(dc_backend b) { return b == DC_BACKEND_AUTO || b == DC_BACKEND_JIT; }

const char *dc_pipeline(dc_pipeline_kind kind, dc_backend b) {
    bool jit = dc_backend_uses_jit(b);
    if (kind == DC_PIPELINE_TRAIN)
        return jit ? "simplify,cse,dce,fuse-contraction,fuse-loops,plan-memory"
                   : "simplify,cse,dce,fuse-contraction,plan-memory";
    return jit ? "simplify,cse,dce,fuse-contraction,fuse-loops,plan-memory"
               : "simplify,cse,dce,fuse-contraction,plan-memory";
}
