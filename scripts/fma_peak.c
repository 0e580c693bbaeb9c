/* The machine's f32 FMA peak, for the GFLOP/s percentages in docs/benchmarks.md.
 *
 * Each thread runs 12 independent chains of 512-bit FMAs (enough to cover the FMA latency);
 * the figure is 2 FLOP x 16 lanes x FMAs per second, summed over the threads.
 *
 *     gcc -O3 -mavx512f -mfma -pthread scripts/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak 2
 *
 * Built with -mavx512bf16 as well, it then measures the bf16 dot-product instruction
 * (vdpbf16ps: 32 bf16 products summed pairwise into 16 f32 lanes) the same way.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 12
#define ITERS 200000000L

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#ifdef __AVX512BF16__
static void *run_bf16(void *out) {
    __m512 a[CHAINS];
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps(i * 0.001f);
    __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80), c = (__m512bh)_mm512_set1_epi16(0x3a80);
    for (long it = 0; it < ITERS; it++)
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_dpbf16_ps(a[i], b, c);
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(a[i]);
    *(float *)out = s;
    return NULL;
}
#endif

static void *run(void *out) {
    __m512 a[CHAINS];
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps(i * 0.001f);
    __m512 b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(0.0001f);
    for (long it = 0; it < ITERS; it++)
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(a[i]);
    *(float *)out = s; /* keeps the chains alive */
    return NULL;
}

/* Runs `body` on `threads` threads; returns the seconds taken. */
static double timed(void *(*body)(void *), int threads) {
    pthread_t th[256];
    float out[256];
    double t0 = now();
    for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, body, &out[i]);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    return now() - t0;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 256) return 1;
    double dt = timed(run, threads);
    double flops = threads * (double)ITERS * CHAINS * 16 * 2;
    printf("%d thread(s): %.1f GFLOP/s f32 FMA peak (%.2f s)\n", threads, flops / dt / 1e9, dt);
#ifdef __AVX512BF16__
    dt = timed(run_bf16, threads);
    flops = threads * (double)ITERS * CHAINS * 32 * 2;
    printf("%d thread(s): %.1f GFLOP/s bf16 dot-product peak (%.2f s)\n", threads, flops / dt / 1e9, dt);
#endif
    return 0;
}
