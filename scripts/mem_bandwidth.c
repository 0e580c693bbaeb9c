/* Memory read bandwidth, for the batch-1 bound in docs/benchmarks.md: each thread sums its
 * share of a 256 MiB buffer (far larger than the L3) five times with 512-bit loads.
 *
 *     gcc -O3 -mavx512f -pthread scripts/mem_bandwidth.c -o /tmp/mem_bw && /tmp/mem_bw 2
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define FLOATS (64L * 1024 * 1024)
#define PASSES 5

static float *buf;

typedef struct {
    long lo, hi;
    float sum;
} Part;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *run(void *arg) {
    Part *p = arg;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int r = 0; r < PASSES; r++)
        for (long i = p->lo; i < p->hi; i += 64) {
            s0 = _mm512_add_ps(s0, _mm512_load_ps(buf + i));
            s1 = _mm512_add_ps(s1, _mm512_load_ps(buf + i + 16));
            s2 = _mm512_add_ps(s2, _mm512_load_ps(buf + i + 32));
            s3 = _mm512_add_ps(s3, _mm512_load_ps(buf + i + 48));
        }
    p->sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 64) return 1;
    buf = aligned_alloc(64, FLOATS * sizeof(float));
    if (!buf) return 1;
    for (long i = 0; i < FLOATS; i++) buf[i] = 1.0f;
    pthread_t th[64];
    Part parts[64];
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        parts[i].lo = FLOATS / threads / 64 * 64 * i;
        parts[i].hi = i == threads - 1 ? FLOATS : FLOATS / threads / 64 * 64 * (i + 1);
        pthread_create(&th[i], NULL, run, &parts[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    double dt = now() - t0;
    printf("%d thread(s): %.1f GB/s read\n", threads, PASSES * FLOATS * sizeof(float) / dt / 1e9);
    return 0;
}
