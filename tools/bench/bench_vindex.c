/*
 * bench_vindex: the vector index on seeded clustered data.
 *
 *   bench_vindex [--n 100000] [--dim 384] [--clusters 1000] [--queries 1000]
 *                [--m 16] [--efc 200] [--ef 32,64,128] [--spread 0.6]
 *                [--seed 1] [--file PATH]
 *
 * Prints build time, then for brute force (the in-run baseline) and each
 * ef: recall@10, single-thread QPS, p50/p99 latency and the speed-up over
 * brute force; the same with selective filters (1% and 10% predicates,
 * with and without a selectivity hint, and a 1% bitmap); and cold open:
 * save to a file, evict it from the page cache, open + mmap + view + first
 * query. Data come from vindex_data.h (same as bench_hnswlib and the tests).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jiwa_vindex.h"
#include "vindex_data.h"

#define K 10

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct {
  uint32_t mod;
} pred_t;

static int accept_mod(uint32_t id, void *ud) {
  return id % ((const pred_t *)ud)->mod == 0;
}

typedef struct {
  double recall, qps, p50, p99, visited;
  int paths[4];
} run_t;

/* Run all queries; truth (nq * K ids) NULL = produce it into out_ids. */
static run_t run(const jiwa_vindex_t *idx, const float *q, uint32_t nq,
                 uint32_t dim, const jiwa_vindex_query_t *opt0,
                 const uint32_t *truth, uint32_t *out_ids) {
  run_t r;
  memset(&r, 0, sizeof r);
  double *lat = malloc(nq * sizeof *lat);
  jiwa_vindex_hit_t h[K];
  jiwa_vindex_query_t o = *opt0;
  jiwa_vindex_trace_t tr;
  o.trace = &tr;
  uint64_t found = 0, want = 0, vis = 0;
  double t0 = now();
  for (uint32_t i = 0; i < nq; i++) {
    uint32_t n;
    double a = now();
    if (jiwa_vindex_search(idx, q + (size_t)i * dim, K, &o, h, &n) != 0) {
      fprintf(stderr, "search failed\n");
      exit(1);
    }
    lat[i] = now() - a;
    r.paths[tr.path & 3]++;
    vis += tr.visited;
    if (out_ids)
      for (uint32_t j = 0; j < K; j++)
        out_ids[(size_t)i * K + j] = j < n ? h[j].id : JIWA_VINDEX_NONE;
    if (truth) {
      const uint32_t *t = truth + (size_t)i * K;
      for (uint32_t j = 0; j < K; j++) {
        if (t[j] == JIWA_VINDEX_NONE)
          continue;
        want++;
        for (uint32_t x = 0; x < n; x++)
          if (h[x].id == t[j]) {
            found++;
            break;
          }
      }
    }
  }
  double total = now() - t0;
  qsort(lat, nq, sizeof *lat, cmp_d);
  r.qps = nq / total;
  r.p50 = lat[nq / 2] * 1e3;
  r.p99 = lat[(size_t)(nq * 0.99)] * 1e3;
  r.recall = want ? (double)found / want : 1.0;
  r.visited = (double)vis / nq;
  free(lat);
  return r;
}

static void print_run(const char *name, run_t r, double base_qps) {
  printf("  %-28s recall@10 %.4f  QPS %9.0f  p50 %.3f ms  p99 %.3f ms  "
         "visited %7.0f  x%.1f vs brute  [exact %d graph %d fallback %d]\n",
         name, r.recall, r.qps, r.p50, r.p99, r.visited, r.qps / base_qps,
         r.paths[1], r.paths[2], r.paths[3]);
}

static int write_fd(const void *p, size_t n, void *ud) {
  int fd = *(int *)ud;
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w <= 0)
      return JIWA_EIO;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int main(int argc, char **argv) {
  uint32_t n = 100000, dim = 384, clusters = 1000, nq = 1000, m = 16, efc = 200;
  double spread = 0.6;
  uint64_t seed = 1;
  const char *efs = "16,32,64,128";
  const char *file = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--n"))
      n = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "--dim"))
      dim = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "--clusters"))
      clusters = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "--queries"))
      nq = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "--m"))
      m = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "--efc"))
      efc = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "--ef"))
      efs = v;
    else if (!strcmp(k, "--spread"))
      spread = strtod(v, NULL);
    else if (!strcmp(k, "--seed"))
      seed = strtoull(v, NULL, 10);
    else if (!strcmp(k, "--file"))
      file = v;
    else {
      fprintf(stderr, "unknown option %s\n", k);
      return 2;
    }
  }
  if (!n || !dim || !clusters || !nq) {
    fprintf(stderr, "bad sizes\n");
    return 2;
  }
  printf("bench_vindex: n=%u dim=%u clusters=%u queries=%u M=%u efC=%u "
         "spread=%.2f seed=%llu\n",
         n, dim, clusters, nq, m, efc, spread, (unsigned long long)seed);
  float *c = vd_centres(seed, clusters, dim);
  float *x = malloc((size_t)n * dim * sizeof(float));
  float *q = malloc((size_t)nq * dim * sizeof(float));
  uint32_t *truth = malloc((size_t)nq * K * sizeof(uint32_t));
  if (!c || !x || !q || !truth)
    return 1;
  vd_points(c, clusters, dim, (float)spread, seed, 0, n, x);
  vd_points(c, clusters, dim, (float)spread, seed, 1, nq, q);

  jiwa_vindex_params_t p;
  jiwa_vindex_params_init(&p, dim);
  p.m = m;
  p.ef_construction = efc;
  jiwa_vindex_t *idx;
  if (jiwa_vindex_create(&p, &idx))
    return 1;
  double t0 = now(), c0 = cpu_now();
  for (uint32_t i = 0; i < n; i++) {
    if (jiwa_vindex_add(idx, x + (size_t)i * dim, i, NULL)) {
      fprintf(stderr, "add failed\n");
      return 1;
    }
    if (n >= 200000 && i % 100000 == 99999)
      fprintf(stderr, "  built %u (%.0f s)\n", i + 1, now() - t0);
  }
  double tb = now() - t0, cb = cpu_now() - c0;
  printf("build: %.2f s wall, %.2f s CPU (%.0f inserts/s of CPU, single "
         "thread)  image %.1f MB\n",
         tb, cb, n / cb, jiwa_vindex_image_size(idx) / 1048576.0);

  jiwa_vindex_query_t o;
  memset(&o, 0, sizeof o);
  o.exact = 1;
  /* brute force: the baseline and the ground truth */
  run_t bf = run(idx, q, nq, dim, &o, NULL, truth);
  bf.recall = 1.0;
  printf("unfiltered:\n");
  print_run("brute force", bf, bf.qps);
  for (const char *s = efs; *s;) {
    uint32_t ef = (uint32_t)strtoul(s, NULL, 10);
    memset(&o, 0, sizeof o);
    o.ef = ef;
    char name[64];
    snprintf(name, sizeof name, "hnsw ef=%u", ef);
    print_run(name, run(idx, q, nq, dim, &o, truth, NULL), bf.qps);
    s = strchr(s, ',');
    if (!s)
      break;
    s++;
  }

  /* filters: the truth is the exact search with the same filter */
  uint32_t mods[2] = {100, 10};
  for (int fi = 0; fi < 2; fi++) {
    pred_t pr = {mods[fi]};
    printf("filter: id %% %u == 0 (%.0f%% of slots):\n", pr.mod,
           100.0 / pr.mod);
    memset(&o, 0, sizeof o);
    o.exact = 1;
    o.accept = accept_mod;
    o.ud = &pr;
    run_t fb = run(idx, q, nq, dim, &o, NULL, truth);
    fb.recall = 1.0;
    print_run("brute force (predicate)", fb, fb.qps);
    o.exact = 0;
    print_run("predicate, no hint", run(idx, q, nq, dim, &o, truth, NULL),
              fb.qps);
    o.selectivity = 1.0f / pr.mod;
    print_run("predicate + hint", run(idx, q, nq, dim, &o, truth, NULL),
              fb.qps);
    uint64_t *bm = calloc(((size_t)n + 63) / 64, 8);
    for (uint32_t i = 0; i < n; i += pr.mod)
      bm[i / 64] |= UINT64_C(1) << (i % 64);
    memset(&o, 0, sizeof o);
    o.allow = bm;
    o.allow_bits = n;
    print_run("bitmap", run(idx, q, nq, dim, &o, truth, NULL), fb.qps);
    free(bm);
  }

  /* cold open: file -> evict from page cache -> mmap -> view -> 1 query */
  char tmpl[] = "/tmp/bench_vindex.XXXXXX";
  int fd = file ? open(file, O_RDWR | O_CREAT | O_TRUNC, 0600) : mkstemp(tmpl);
  if (fd < 0) {
    perror("open");
    return 1;
  }
  const char *path = file ? file : tmpl;
  double ts = now();
  if (jiwa_vindex_save(idx, write_fd, &fd) || fsync(fd)) {
    fprintf(stderr, "save failed\n");
    return 1;
  }
  double tsave = now() - ts;
  close(fd);
  jiwa_vindex_query_t plain;
  memset(&plain, 0, sizeof plain);
  /* pass 0: page cache evicted; 1: page cache warm; 2: evicted, then
   * jiwa_vindex_warm() (what a store does off the request path) */
  static const char *const pass_name[3] = {
      "page cache evicted", "page cache warm", "evicted + jiwa_vindex_warm"};
  for (int pass = 0; pass < 3; pass++) {
    if (pass != 1) {
      fd = open(path, O_RDONLY);
      posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      close(fd);
    }
    double a = now();
    fd = open(path, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    jiwa_vindex_t *v;
    if (map == MAP_FAILED || jiwa_vindex_view(map, (size_t)st.st_size, &v)) {
      fprintf(stderr, "view failed\n");
      return 1;
    }
    double b = now();
    if (pass == 2)
      jiwa_vindex_warm(v);
    double w = now();
    jiwa_vindex_hit_t h[K];
    uint32_t nh;
    jiwa_vindex_search(v, q, K, &plain, h, &nh);
    double e = now();
    /* a few more queries: how fast the cold map warms up */
    for (uint32_t i = 1; i < 101 && i < nq; i++)
      jiwa_vindex_search(v, q + (size_t)i * dim, K, &plain, h, &nh);
    double f1 = now();
    printf("cold open (%s): open+mmap+view %.3f ms, ", pass_name[pass],
           (b - a) * 1e3);
    if (pass == 2)
      printf("warm %.1f ms, ", (w - b) * 1e3);
    printf("first query %.3f ms; next 100 queries avg %.3f ms\n", (e - w) * 1e3,
           (f1 - e) * 1e3 / 100);
    jiwa_vindex_free(v);
    munmap(map, (size_t)st.st_size);
  }
  printf("save to file: %.3f s\n", tsave);
  if (!file)
    unlink(path);

  jiwa_vindex_free(idx);
  free(c);
  free(x);
  free(q);
  free(truth);
  return 0;
}
