/* bench_util.c — the FMA-peak loop and the load average the C benchmarks share
 * (bench/bench_util.h). */
#include "bench/bench_util.h"

#include <immintrin.h>
#include <omp.h>
#include <stdio.h>

#include "runtime/runtime.h"

bool bench_has_avx512(void) { return __builtin_cpu_supports("avx512f"); }

/* One repetition of bench_fma_peak. The library is built for x86-64-v3 (valgrind), so this one
 * function is compiled for AVX-512 and runs only on a CPU that has it. 24 independent
 * accumulators per thread (more than FMA latency x units, so the loop is bound by FMA
 * throughput alone), threads bound to cores, a warm-up pass before the clock starts, and the
 * clock read between barriers, so thread start-up is not counted. */
#define PEAK_ACC 24
__attribute__((target("avx512f"))) static double fma_peak_once(void) {
    const long iters = 15000000; /* ~0.1 s: long enough for the clock to settle */
    float sink = 0;
    double t0 = 0, t1 = 0;
    #pragma omp parallel proc_bind(spread) reduction(+ : sink)
    {
        __m512 acc[PEAK_ACC];
        for (int j = 0; j < PEAK_ACC; j++) acc[j] = _mm512_set1_ps((float)(j + omp_get_thread_num()));
        const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
        for (int pass = 0; pass < 2; pass++) {
            #pragma omp barrier
            #pragma omp master
            t0 = dc_seconds();
            for (long i = 0; i < (pass ? iters : iters / 10); i++)
                _Pragma("GCC unroll 24") for (int j = 0; j < PEAK_ACC; j++) acc[j] = _mm512_fmadd_ps(acc[j], m, a);
            #pragma omp barrier
            #pragma omp master
            t1 = dc_seconds();
        }
        __m512 s = acc[0];
        for (int j = 1; j < PEAK_ACC; j++) s = _mm512_add_ps(s, acc[j]);
        sink += _mm512_reduce_add_ps(s);
    }
    if (sink == 12345.0f) printf(" "); /* keeps the loop alive */
    return 2.0 * 16 * PEAK_ACC * (double)iters * omp_get_max_threads() / (t1 - t0) * 1e-9;
}

double bench_fma_peak(int reps, double *best) {
    double r[reps];
    for (int i = 0; i < reps; i++) r[i] = fma_peak_once();
    double m = dc_median(r, reps);
    if (best) *best = r[reps - 1]; /* dc_median sorted them */
    return m;
}

void bench_loadavg(char *buf, size_t len) {
    FILE *f = fopen("/proc/loadavg", "r");
    double a, b, c;
    if (f && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3) snprintf(buf, len, "%.2f %.2f %.2f", a, b, c);
    else snprintf(buf, len, "?");
    if (f) fclose(f);
}
