/* What every benchmark needs: a monotonic clock, sorting for percentiles,
 * and the median of repeated runs (the machine is noisy: figures are
 * medians, and ratios against a baseline measured in the same run).
 * Header-only so each benchmark stays one file. */
#ifndef JIWA_BENCH_UTIL_H
#define JIWA_BENCH_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* qsort comparator for uint64_t (latencies) */
static inline int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The median of @p n runs (sorts @p v in place). */
static inline double median(double *v, int n) {
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (v[j] < v[i]) {
        double t = v[i];
        v[i] = v[j];
        v[j] = t;
      }
  return v[n / 2];
}

/* The @p pct percentile of @p n sorted samples. */
static inline uint64_t pctl(const uint64_t *sorted, size_t n, unsigned pct) {
  if (n == 0)
    return 0;
  size_t i = n * pct / 100;
  return sorted[i < n ? i : n - 1];
}

#endif
