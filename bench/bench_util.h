/* bench_util.h — what the C benchmarks in bench/ share: the AVX-512 FMA-peak loop that GFLOP/s
 * figures are read against, and the machine's load average for their headers. Linked into
 * every build/bench/ binary (Makefile). */
#ifndef DC_BENCH_UTIL_H
#define DC_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* Whether this CPU has AVX-512F, which bench_fma_peak needs. */
bool bench_has_avx512(void);
/* GFLOP/s of 24 independent AVX-512 FMA chains per thread on every OpenMP thread (~0.1 s a
 * repetition): the median of reps repetitions, and the fastest in *best when best is not NULL
 * (on a shared machine, the closer to what the cores can do). Call only when
 * bench_has_avx512(). */
double bench_fma_peak(int reps, double *best);
/* The load averages of /proc/loadavg ("1 5 15"), or "?". */
void bench_loadavg(char *buf, size_t len);

#endif
