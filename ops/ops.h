/* ops.h — what an op family file stands on. A family file (ops/<family>.c) holds, for each of
 * its ops, the hooks that ops.def's row names, side by side: the shape rule (ir.h's
 * dc_shape_fn), the VJP (passes.h's dc_vjp_fn, written with the dc_ad_ builders) and the
 * reference kernel (runtime/ref/ref.h's dc_ref_fn). Formulas and row descriptions are data in
 * the row itself. The stages reach the hooks through tables they generate from ops.def, so
 * nothing includes ops/: it is a leaf above ir/, passes/ and runtime/. */
#ifndef DC_OPS_H
#define DC_OPS_H

#include "passes/passes.h"
#include "runtime/ref/ref.h"

#endif
