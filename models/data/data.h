/* data.h — datasets for the models: IDX files (gzip'd or plain) into float images and int32
 * labels, Fashion-MNIST from Debian's dataset-fashion-mnist, and the deterministic epoch
 * shuffle. */
#ifndef DC_MODELS_DATA_H
#define DC_MODELS_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t n;                  /* number of examples */
    int rows, cols;             /* image size */
    float *images;              /* [n, rows*cols], pixel/255 in [0, 1] */
    int32_t *labels;            /* [n], each in 0..9 */
} dc_dataset;

/* Reads an IDX image file (magic 0x00000803, u8 pixels) and an IDX label file (magic
 * 0x00000801, u8 labels in 0..9), each gzip'd or plain (detected from the content), with the
 * same count. Sizes are checked against the file's real length. Errors name the file and the
 * problem: "idx: PATH: bad magic 0x... (expected 0x00000803, an IDX image file)". On failure
 * *out is zeroed and nothing is left allocated. */
bool dc_idx_load(const char *images, const char *labels, dc_dataset *out, char *err, size_t len);

/* The default Fashion-MNIST directory: $DISCO_FMNIST_DIR, else /usr/share/datasets/fashion-mnist. */
const char *dc_fmnist_dir(void);
/* Loads Fashion-MNIST's train (60000) or test (t10k, 10000) split from dir (NULL: the default
 * above): {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz. A missing file reads
 * "fashion-mnist: cannot open PATH: No such file or directory (install the Debian package
 * dataset-fashion-mnist: make deps)"; other errors are "fashion-mnist: " + dc_idx_load's. */
bool dc_fmnist_load(const char *dir, bool train, dc_dataset *out, char *err, size_t len);
void dc_dataset_free(dc_dataset *d);   /* frees the arrays and zeroes *d */

/* Fills perm with a permutation of 0..n-1 that depends only on (seed, epoch): Fisher-Yates
 * from the identity, with unbiased draws from dc_rng_u32(seed, epoch, ...). */
void dc_shuffle(int64_t *perm, int64_t n, uint64_t seed, uint64_t epoch);

#endif
