/* split_reductions.c — the split-reductions pass: a reduction over the leading axes 0..k
 * (k >= 1) of a value with kept axes after them becomes two reductions:
 *     sum(x [d0, d1.., rest], axes 0..k)
 *         -> sum(sum(x, axes 1..k, keepdims) [d0, 1.., rest], axes 0..k)
 * (mean and max alike). The first reduces a slab per index of axis 0, and its loop kernel
 * splits over the threads along axis 0, as the kernels that produce x do: each thread reads
 * back the rows it wrote, from its own cache, where one reduction over all of axes 0..k (a row
 * per kept element) splits along the kept axes and has each thread read every slab, half of
 * them from the other core (fmnist-cnn's bias and norm-scale gradients: 5.0 -> 2.6 ms per
 * step). The second reduces d0 values per kept element. Applies when d0 >= 2.
 * A cross_entropy over two or more rows becomes the mean of its rows' terms:
 *     cross_entropy(x [..., K], labels [...]) -> mean(cross_entropy_rows(x, labels), all axes)
 * so a row kernel computes each row's loss and a small one their mean (the autodiff of the
 * training step has already read cross_entropy's gradient).
 * Guarantees: every rewritten node keeps its type; values change by rounding only (a sum or
 * mean adds in another order, fixed: the same for every thread count; max is exact; the rows'
 * losses are rounded to f32 before their mean); a label out of range is the same error; the
 * replaced node becomes unused (for dce). Idempotent: the second reduction reduces axis 0 of
 * a value whose axes 1..k have size 1, the first does not reduce axis 0, and no cross_entropy
 * is left. */
#include <string.h>

#include "passes/passes.h"
#include "passes/rewrite.h"

/* The leading-axes reduction this pass splits: sum, mean or max over axes 0..k, k >= 1,
 * of a value of rank > k + 1 whose axes 1..k are not all 1 and whose axis 0 has d0 >= 2. */
static bool splits(const dc_graph *g, const dc_node *n) {
    if (n->op != DC_OP_SUM && n->op != DC_OP_MEAN && n->op != DC_OP_MAX) return false;
    const dc_ints *ax = &n->attr.reduce.axes;
    const dc_shape *x = &g->nodes[n->in[0]].type.shape;
    if (ax->n < 2 || ax->n >= x->rank || x->dim[0] < 2) return false;
    int64_t middle = 1;
    for (int d = 0; d < ax->n; d++) {
        if (ax->v[d] != d) return false;
        if (d > 0) middle *= x->dim[d];
    }
    return middle > 1;
}

/* A cross_entropy over two or more rows. */
static bool splits_loss(const dc_graph *g, const dc_node *n) {
    return n->op == DC_OP_CROSS_ENTROPY && dc_numel(&g->nodes[n->in[1]].type.shape) >= 2;
}

bool dc_pass_split_reductions(dc_graph *g, const dc_pass_opts *o, char *err, size_t len) {
    (void)o, (void)err, (void)len;
    dc_rewriter rw;
    dc_rw_begin(&rw, g);
    for (int i = 0; i < rw.n_old; i++) {
        dc_node n = dc_rw_mapped(&rw, i);
        if (splits_loss(g, &n)) {
            int rows = dc_rw_emit(&rw, i, DC_OP_CROSS_ENTROPY_ROWS, 2, n.in, NULL, NULL);
            dc_attr all;
            memset(&all, 0, sizeof all);
            rw.map[i] = dc_rw_emit(&rw, i, DC_OP_MEAN, 1, &rows, &all, &n.type);
            continue;
        }
        if (!splits(g, &n)) {
            dc_rw_keep(&rw, i);
            continue;
        }
        dc_attr inner;
        memset(&inner, 0, sizeof inner);
        inner.reduce.keepdims = true;
        inner.reduce.axes.n = n.attr.reduce.axes.n - 1;
        for (int d = 1; d < n.attr.reduce.axes.n; d++) inner.reduce.axes.v[d - 1] = d;
        int first = dc_rw_emit(&rw, i, n.op, 1, n.in, &inner, NULL);
        rw.map[i] = dc_rw_emit(&rw, i, n.op, 1, &first, &n.attr, &n.type);
    }
    dc_rw_end(&rw);
    return true;
}
