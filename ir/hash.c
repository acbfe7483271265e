/* hash.c — structural hashing: every node's XXH3-128 over its op, attribute bytes, type,
 * its inputs' hashes in order and (for INPUT and PARAM) its name. Equal hashes mean equal
 * computations; CSE and every cache key on them. */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static void update(XXH3_state_t *st, const void *p, size_t n) {
    if (XXH3_128bits_update(st, p, n) != XXH_OK) abort(); /* cannot fail on valid state */
}

static dc_hash128 node_hash(XXH3_state_t *st, const dc_graph *g, const dc_node *n) {
    if (XXH3_128bits_reset(st) != XXH_OK) abort();
    int32_t head[3] = { (int32_t)n->op, (int32_t)n->type.dtype, n->type.shape.rank };
    update(st, head, sizeof head);
    update(st, n->type.shape.dim, (size_t)n->type.shape.rank * sizeof n->type.shape.dim[0]);
    update(st, &n->attr, sizeof n->attr);
    int32_t n_in = n->n_in;
    update(st, &n_in, sizeof n_in);
    for (int i = 0; i < n->n_in; i++) {
        const dc_hash128 *h = &g->nodes[n->in[i]].hash;
        uint64_t w[2] = { h->lo, h->hi };
        update(st, w, sizeof w);
    }
    if ((n->op == DC_OP_INPUT || n->op == DC_OP_PARAM) && n->name) {
        uint64_t len = strlen(n->name);
        update(st, &len, sizeof len);
        update(st, n->name, len);
    }
    XXH128_hash_t h = XXH3_128bits_digest(st);
    return (dc_hash128){ h.low64, h.high64 };
}

void dc_graph_hash(dc_graph *g) {
    XXH3_state_t *st = XXH3_createState();
    if (!st) abort(); /* out of memory */
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i].hash = node_hash(st, g, &g->nodes[i]);
    XXH3_freeState(st);
}
