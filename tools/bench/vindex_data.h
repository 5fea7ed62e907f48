/*
 * Seeded clustered unit vectors for the vector index test and benchmarks
 * (C and C++: bench_vindex.c, bench_hnswlib.cpp, tests/unit/test_vindex.c
 * generate the very same data from the same seed).
 *
 * `clusters` centres are gaussian directions on the unit sphere; a point is
 * a centre plus isotropic gaussian noise of total norm ~`spread`,
 * normalised. Queries are fresh draws from the same distribution (a centre
 * perturbed by new noise), so they are never points of the set.
 */
#ifndef JIWA_VINDEX_DATA_H
#define JIWA_VINDEX_DATA_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
  uint64_t s;
  int has;
  double spare;
} vd_rng_t;

static inline uint64_t vd_next(vd_rng_t *r) {
  uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static inline double vd_unit(vd_rng_t *r) { /* (0, 1) */
  return ((double)(vd_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static inline double vd_gauss(vd_rng_t *r) {
  if (r->has) {
    r->has = 0;
    return r->spare;
  }
  double u = vd_unit(r), v = vd_unit(r);
  double m = sqrt(-2.0 * log(u));
  r->spare = m * sin(6.283185307179586 * v);
  r->has = 1;
  return m * cos(6.283185307179586 * v);
}

static inline void vd_normalise(float *x, uint32_t dim) {
  double ss = 0;
  for (uint32_t i = 0; i < dim; i++)
    ss += (double)x[i] * x[i];
  double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
  for (uint32_t i = 0; i < dim; i++)
    x[i] = (float)(x[i] * inv);
}

/* Cluster centres (clusters * dim floats, caller frees), or NULL. */
static inline float *vd_centres(uint64_t seed, uint32_t clusters,
                                uint32_t dim) {
  float *c = (float *)malloc((size_t)clusters * dim * sizeof(float));
  if (!c)
    return NULL;
  vd_rng_t r = {seed ^ UINT64_C(0xC3A5C85C97CB3127), 0, 0};
  for (size_t i = 0; i < (size_t)clusters * dim; i++)
    c[i] = (float)vd_gauss(&r);
  for (uint32_t j = 0; j < clusters; j++)
    vd_normalise(c + (size_t)j * dim, dim);
  return c;
}

/* n points (n * dim floats into out) from stream `stream` (0 = the data
 * set, 1 = queries, ...). */
static inline void vd_points(const float *centres, uint32_t clusters,
                             uint32_t dim, float spread, uint64_t seed,
                             uint64_t stream, uint32_t n, float *out) {
  vd_rng_t r = {seed * UINT64_C(0x2545F4914F6CDD1D) + stream * 7919u + 1, 0, 0};
  double sd = spread / sqrt((double)dim);
  for (uint32_t i = 0; i < n; i++) {
    const float *c = centres + (size_t)(vd_next(&r) % clusters) * dim;
    float *x = out + (size_t)i * dim;
    for (uint32_t d = 0; d < dim; d++)
      x[d] = c[d] + (float)(sd * vd_gauss(&r));
    vd_normalise(x, dim);
  }
}

#endif /* JIWA_VINDEX_DATA_H */
