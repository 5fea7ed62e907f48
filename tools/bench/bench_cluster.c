/*
 * Benchmark of query clustering (runtime/jobs/jiwa_cluster.c) on generated
 * query logs (jiwa_querygen.c) of 10k, 50k and 100k queries, hash-embedded
 * at dim 512, single thread.
 *
 * Per size: embedding time, clustering time (median of RUNS runs), purity,
 * adjusted Rand index, clusters, top-50 coverage, peak RSS so far. Baselines
 * measured in the same run on the same vectors:
 *  - spherical k-means (Lloyd, dense, 10 iterations, k-means++-style seeds
 *    from a fixed seed) told the true k = 24 intents: time and quality;
 *  - the same told k = 72 (intents x languages, the best a lexical
 *    embedder can separate);
 *  - a random assignment with our cluster sizes (quality floor).
 * Ratios are ours / baseline.
 *
 * Usage: bench_cluster [RUNS]   (default 3)
 *        JIWA_BENCH_SIZES="10000,50000"  overrides the sizes
 *        JIWA_BENCH_VARIETY=1  more casual variants and typos (more
 *                              distinct queries: a harder, slower log)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "jiwa_cluster.h"
#include "jiwa_embed.h"
#include "jiwa_querygen.h"

#define DIM 512u

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long peak_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t xs(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Dense spherical k-means with a fixed k: the textbook baseline. */
static void kmeans(const float *v, size_t n, unsigned k, uint32_t *assign) {
  float *c = calloc((size_t)k * DIM, sizeof *c);
  double *sum = calloc((size_t)k * DIM, sizeof *sum);
  float *mind = malloc(n * sizeof *mind);
  if (!c || !sum || !mind) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  uint64_t s = 0x5eed;
  /* seeding: first centre at random, then the farthest of 64 random
   * candidates each time (a cheap k-means++ variant, deterministic) */
  memcpy(c, v + (xs(&s) % n) * DIM, DIM * sizeof *c);
  for (size_t i = 0; i < n; i++)
    mind[i] = 2.0f;
  for (unsigned j = 1; j < k; j++) {
    const float *prev = c + (size_t)(j - 1) * DIM;
    for (size_t i = 0; i < n; i++) {
      float d = 0;
      for (unsigned t = 0; t < DIM; t++)
        d += v[i * DIM + t] * prev[t];
      if (1.0f - d < mind[i])
        mind[i] = 1.0f - d;
    }
    size_t best = 0;
    float bd = -1;
    for (int t = 0; t < 64; t++) {
      size_t i = xs(&s) % n;
      if (mind[i] > bd) {
        bd = mind[i];
        best = i;
      }
    }
    memcpy(c + (size_t)j * DIM, v + best * DIM, DIM * sizeof *c);
  }
  for (int it = 0; it < 10; it++) {
    for (size_t i = 0; i < n; i++) {
      float bs = -2;
      uint32_t b = 0;
      for (unsigned j = 0; j < k; j++) {
        const float *cc = c + (size_t)j * DIM;
        float d = 0;
        for (unsigned t = 0; t < DIM; t++)
          d += v[i * DIM + t] * cc[t];
        if (d > bs) {
          bs = d;
          b = j;
        }
      }
      assign[i] = b;
    }
    memset(sum, 0, (size_t)k * DIM * sizeof *sum);
    for (size_t i = 0; i < n; i++)
      for (unsigned t = 0; t < DIM; t++)
        sum[(size_t)assign[i] * DIM + t] += v[i * DIM + t];
    for (unsigned j = 0; j < k; j++) {
      double nn = 0;
      for (unsigned t = 0; t < DIM; t++)
        nn += sum[(size_t)j * DIM + t] * sum[(size_t)j * DIM + t];
      if (nn > 0)
        for (unsigned t = 0; t < DIM; t++)
          c[(size_t)j * DIM + t] = (float)(sum[(size_t)j * DIM + t] / sqrt(nn));
    }
  }
  free(c);
  free(sum);
  free(mind);
}

static void quality(const uint32_t *a, const uint32_t *lab, size_t n,
                    double *pur, double *ari) {
  if (jiwa_cluster_purity(a, lab, n, pur) || jiwa_cluster_ari(a, lab, n, ari)) {
    fprintf(stderr, "metrics failed\n");
    exit(1);
  }
}

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : 3;
  if (runs < 1)
    runs = 1;
  size_t sizes[8] = {10000, 50000, 100000};
  int nsizes = 3;
  const char *env = getenv("JIWA_BENCH_SIZES");
  if (env) {
    nsizes = 0;
    for (const char *p = env; *p && nsizes < 8;) {
      sizes[nsizes++] = strtoul(p, (char **)&p, 10);
      while (*p == ',')
        p++;
    }
  }
  int variety = getenv("JIWA_BENCH_VARIETY") != NULL;
  jiwa_embed_t *emb;
  if (jiwa_embed_hash_new(DIM, &emb)) {
    fprintf(stderr, "embedder failed\n");
    return 1;
  }
  printf("bench_cluster: hash-v1 dim %u, single thread, clustering time = "
         "median of %d runs%s\n",
         DIM, runs, variety ? ", high-variety log" : "");
  for (int si = 0; si < nsizes; si++) {
    size_t n = sizes[si];
    jiwa_querygen_opts_t o = {.size = sizeof o, .n = n, .days = 10,
                              .seed = 2026};
    if (variety) {
      o.typo_rate = 0.9;
      o.casual_rate = 0.9;
    }
    jiwa_qlog_t *log;
    if (jiwa_querygen(&o, &log)) {
      fprintf(stderr, "querygen failed\n");
      return 1;
    }
    const char **texts = malloc(n * sizeof *texts);
    uint32_t *lab = malloc(n * sizeof *lab), *base = malloc(n * sizeof *base);
    float *v = malloc(n * DIM * sizeof *v);
    if (!texts || !lab || !base || !v) {
      fprintf(stderr, "out of memory\n");
      return 1;
    }
    for (size_t i = 0; i < n; i++) {
      texts[i] = log->q[i].text;
      lab[i] = log->q[i].intent;
    }
    double t0 = now();
    if (jiwa_embed_texts(emb, texts, NULL, n, v)) {
      fprintf(stderr, "embed failed\n");
      return 1;
    }
    double t_embed = now() - t0;
    double times[32];
    jiwa_clustering_t *c = NULL;
    for (int r = 0; r < runs && r < 32; r++) {
      jiwa_clustering_free(c);
      t0 = now();
      if (jiwa_cluster(v, n, DIM, NULL, &c)) {
        fprintf(stderr, "cluster failed\n");
        return 1;
      }
      times[r] = now() - t0;
    }
    double t_cl = median(times, runs < 32 ? runs : 32);
    long rss = peak_rss_kb();
    double pur, ari;
    quality(c->assign, lab, n, &pur, &ari);
    printf("\nn=%zu (%zu distinct vectors)\n", n, c->unique);
    printf("  embed            %8.3f s  (%.0f queries/s)\n", t_embed,
           (double)n / t_embed);
    printf("  ours             %8.3f s  clusters %4zu  purity %.3f  ARI "
           "%.3f  top-50 coverage %.3f  peak RSS %ld MiB\n",
           t_cl, c->n_clusters, pur, ari, jiwa_cluster_coverage(c, 50),
           rss / 1024);
    for (int b = 0; b < 2; b++) {
      unsigned k = b ? 72 : 24;
      t0 = now();
      kmeans(v, n, k, base);
      double t_km = now() - t0;
      double bp, ba;
      quality(base, lab, n, &bp, &ba);
      printf("  k-means k=%-2u     %8.3f s  clusters %4u  purity %.3f  ARI "
             "%.3f  | ours/baseline: time %.2fx purity %.2fx ARI %.2fx\n",
             k, t_km, k, bp, ba, t_cl / t_km, pur / bp, ari / ba);
    }
    /* random assignment with our cluster sizes */
    memcpy(base, c->assign, n * sizeof *base);
    uint64_t s = 77;
    for (size_t i = n - 1; i > 0; i--) {
      size_t j = xs(&s) % (i + 1);
      uint32_t t = base[i];
      base[i] = base[j];
      base[j] = t;
    }
    double rp, ra;
    quality(base, lab, n, &rp, &ra);
    printf("  random (same sizes)          purity %.3f  ARI %.3f\n", rp, ra);
    jiwa_clustering_free(c);
    free(texts);
    free(lab);
    free(base);
    free(v);
    jiwa_qlog_free(log);
  }
  jiwa_embed_destroy(emb);
  return 0;
}
