/* tensor.c — allocating and freeing dense tensors; whether two tensors share bytes. */
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

dc_tensor *dc_tensor_new(const dc_type *t) {
    dc_tensor *x = malloc(sizeof *x);
    size_t bytes = (size_t)dc_numel(&t->shape) * dc_dtype_size(t->dtype);
    size_t rounded = (bytes + 63) / 64 * 64;
    void *data = aligned_alloc(64, rounded ? rounded : 64);
    if (!x || !data) abort(); /* out of memory */
    memset(data, 0, rounded ? rounded : 64);
    *x = (dc_tensor){ .type = *t, .data = data, .owned = true };
    return x;
}

void dc_tensor_free(dc_tensor *t) {
    if (!t) return;
    if (t->owned) free(t->data);
    free(t);
}

bool dc_tensor_overlap(const dc_tensor *a, const dc_tensor *b) {
    const char *pa = a->data, *pb = b->data;
    size_t na = (size_t)dc_numel(&a->type.shape) * dc_dtype_size(a->type.dtype);
    size_t nb = (size_t)dc_numel(&b->type.shape) * dc_dtype_size(b->type.dtype);
    return na && nb && pa < pb + nb && pb < pa + na;
}
