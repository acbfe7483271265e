/* rewrite.h — internal helpers the passes share: the rewriter, which rebuilds a graph in one
 * forward walk (each old node is kept with its inputs remapped, dropped, mapped onto another
 * value, or replaced by freshly emitted nodes at its place in the schedule) and then remaps
 * outputs and updates; plus liveness, the uses of each value and small queries on fill
 * constants. */
#ifndef DC_REWRITE_H
#define DC_REWRITE_H

#include "ir/ir.h"

/* During a rewrite g->nodes holds the new nodes (the graph as built so far, usable by
 * dc_infer_type, dc_graph_emit, ...) and `old` the nodes before it. Old node i may only be
 * mapped to a new node after every old node it uses has been mapped. */
typedef struct {
    dc_graph *g;
    dc_node *old;        /* [n_old], owned until dc_rw_end */
    int n_old;
    int *map;            /* old id -> new id, -1 while unmapped (or dropped) */
} dc_rewriter;

/* Detaches g's nodes into rw->old and leaves g with no nodes; drops g's memory plan. */
void dc_rw_begin(dc_rewriter *rw, dc_graph *g);
/* Old node i with its inputs mapped to new ids (not appended). */
dc_node dc_rw_mapped(const dc_rewriter *rw, int i);
/* Appends dc_rw_mapped(rw, i) as is (hash included) and maps i to it; returns the new id. */
int dc_rw_keep(dc_rewriter *rw, int i);
/* Appends a node made by dc_graph_emit with the site (file, line) of old node `at`; returns
 * its id. A node a pass makes that fails its shape rule is a bug in the pass: abort. */
int dc_rw_emit(dc_rewriter *rw, int at, dc_op op, int n_in, const int *in, const dc_attr *attr,
               const dc_type *declared);
/* A fill of `value` and type t at the site of old node `at`. */
int dc_rw_fill(dc_rewriter *rw, int at, float value, const dc_type *t);
/* Remaps outputs and updates (each must map to a new node) and frees the old nodes. */
void dc_rw_end(dc_rewriter *rw);

/* Rebuilds g in the given order (order[i]: the old id of new node i; a topological order)
 * with the loop group ids gid[] (by old id; 0: none); no g->group when nothing is grouped. */
void dc_rw_reorder(dc_graph *g, const int *order, const int *gid);

/* live[i] (malloc'd, [n_nodes]): node i is an INPUT or PARAM, or an output, a state update's
 * param or value, or an input of a live node. What dce keeps. */
bool *dc_live_nodes(const dc_graph *g);
/* The uses of each value of a graph (node inputs, outputs, update values; a node reading a
 * value twice uses it twice) and the last node that reads it (-1 if none): its one consumer
 * when it has exactly one use by a node. Only nodes i with readers[i] count as readers
 * (readers NULL: every node). */
typedef struct {
    int *uses;
    int *consumer;
} dc_uses;
dc_uses dc_uses_of(const dc_graph *g, const bool *readers);
void dc_uses_free(dc_uses *u);

/* True if node id of g is a FILL; its value (as the fill's dtype reads it) in *v. For i32
 * fills *v holds the i32 value converted to float, exactly. */
bool dc_fill_value(const dc_graph *g, int id, double *v);
/* True if the fill attribute `f` represents the i32 value v exactly. */
bool dc_i32_fill_exact(int32_t v, float *f);

#endif
