/*
 * bench_coll: vector collections through the store layer vs the raw index.
 *
 *   N seeded clustered records x DIM (default 100000 x 384; the data of
 *   bench_vindex: tools/bench/vindex_data.h, seed 42) with metadata
 *   (lang: 3 values, category: 20, tier: "gold" for 1%) are imported into a
 *   fresh store (one batch), then:
 *    - cold open: a fresh process opens the store and the collection and
 *      answers its first search (median of 5 runs; the OS page cache is
 *      warm: the file was just written);
 *    - search p50/p99 and single-thread QPS, k = 10, without a filter, with
 *      a 1/3 filter (lang) and a selective 1% filter (tier = gold), through
 *      jiwa_coll_search (read txn, cached in-place view, filter bitmap from
 *      the postings, ids and a copied result) and through raw
 *      jiwa_vindex_search on the same image (view of a private copy, the
 *      same allow bitmap built up front), in the same run: the ratio is the
 *      store layer's overhead;
 *    - recall@10 of the collection search against brute force.
 *
 * Usage: bench_coll [N [DIM [QUERIES [EF]]]]   (defaults 100000 384 2000 64;
 *        env TMPDIR for the store)
 */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jiwa/mp.h"
#include "jiwa_coll.h"
#include "jiwa_vindex.h"
#include "vindex_data.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The seeded clustered data of bench_vindex (same seed, 1000 clusters,
 * spread 0.6), so the figures compare with its README table. */
static void clustered(float *out, uint32_t n, uint32_t dim, uint64_t stream) {
  static float *cen;
  static uint32_t cdim;
  if (!cen || cdim != dim) {
    free(cen);
    cen = vd_centres(42, 1000, dim);
    cdim = dim;
  }
  vd_points(cen, 1000, dim, 0.6f, 42, stream, n, out);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static int cmp_f_desc(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w) {
  (void)st;
  (void)f;
  (void)w;
  return remove(p);
}

static jiwa_store_t *open_store(const char *dir) {
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  cfg.path = dir;
  cfg.fast = 1;
  cfg.map_size = (size_t)1 << 30;
  jiwa_store_t *s = NULL;
  if (jiwa_store_open(&cfg, &s)) {
    fprintf(stderr, "store: %s\n", jiwa_store_errmsg());
    exit(1);
  }
  return s;
}

static jiwa_coll_t *open_coll(jiwa_store_t *s, uint32_t dim) {
  jiwa_coll_def_t d;
  jiwa_coll_def_init(&d);
  d.embedder_name = "external:bench";
  d.dim = dim;
  jiwa_coll_t *c = NULL;
  if (jiwa_coll_open(s, "bench", &d, &c)) {
    fprintf(stderr, "collection: %s\n", jiwa_coll_errmsg());
    exit(1);
  }
  return c;
}

/* Child: time from nothing open to the first answer. */
static int cold(const char *dir, uint32_t dim) {
  float *q = malloc(dim * sizeof *q);
  clustered(q, 1, dim, 7);
  double t0 = now_s();
  jiwa_store_t *s = open_store(dir);
  jiwa_coll_t *c = open_coll(s, dim);
  double t1 = now_s();
  jiwa_coll_query_t qq = JIWA_COLL_QUERY_INIT;
  qq.vec = q;
  qq.dim = dim;
  qq.k = 10;
  jiwa_coll_result_t r;
  if (jiwa_coll_search(c, &qq, &r) || r.n != 10)
    return 1;
  double t2 = now_s();
  qq.vec = q;
  jiwa_coll_result_free(&r);
  jiwa_coll_search(c, &qq, &r); /* second, for contrast */
  double t3 = now_s();
  jiwa_coll_result_free(&r);
  printf("%.3f %.3f %.3f\n", (t1 - t0) * 1e3, (t2 - t1) * 1e3,
         (t3 - t2) * 1e3);
  jiwa_coll_close(c);
  jiwa_store_close(s);
  free(q);
  return 0;
}

typedef struct {
  double p50, p99, qps;
} lat_t;

static lat_t summarise(double *us, uint32_t n, double total_s) {
  qsort(us, n, sizeof *us, cmp_d);
  lat_t l = {us[n / 2], us[(size_t)(n * 0.99)], n / total_s};
  return l;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--cold") == 0)
    return cold(argv[2], (uint32_t)atoi(argv[3]));
  uint32_t n = argc > 1 ? (uint32_t)atoi(argv[1]) : 100000;
  uint32_t dim = argc > 2 ? (uint32_t)atoi(argv[2]) : 384;
  uint32_t nq = argc > 3 ? (uint32_t)atoi(argv[3]) : 2000;
  uint32_t ef = argc > 4 ? (uint32_t)atoi(argv[4]) : 64;
  const uint32_t k = 10;
  char dir[512];
  const char *t = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/jiwa-bench-coll-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(dir))
    return 1;
  printf("bench_coll: %u records x %u dims, %u queries, k = %u, ef = %u, "
         "store %s\n",
         n, dim, nq, k, ef, dir);

  float *v = malloc((size_t)n * dim * sizeof *v);
  float *qs = malloc((size_t)nq * dim * sizeof *qs);
  clustered(v, n, dim, 0);
  clustered(qs, nq, dim, 1);
  static const char *langs[] = {"en", "id", "it"};
  jiwa_coll_record_t *recs = calloc(n, sizeof *recs);
  char (*ids)[16] = malloc((size_t)n * 16);
  uint8_t *metas = malloc((size_t)n * 64);
  for (uint32_t i = 0; i < n; i++) {
    snprintf(ids[i], 16, "rec-%u", i);
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    char cat[16];
    snprintf(cat, sizeof cat, "cat%u", i % 20);
    msgpack_pack_map(&w.pk, 3);
    jiwa_mp_put_kv_str(&w.pk, "lang", langs[i % 3]);
    jiwa_mp_put_kv_str(&w.pk, "category", cat);
    jiwa_mp_put_kv_str(&w.pk, "tier", i % 100 == 7 ? "gold" : "base");
    memcpy(metas + (size_t)i * 64, w.sbuf.data, w.sbuf.size);
    recs[i] = (jiwa_coll_record_t){.id = ids[i],
                                   .meta = metas + (size_t)i * 64,
                                   .meta_len = w.sbuf.size,
                                   .vec = v + (size_t)i * dim};
    jiwa_mp_writer_free(&w);
  }

  jiwa_store_t *s = open_store(dir);
  jiwa_coll_t *c = open_coll(s, dim);
  double t0 = now_s();
  if (jiwa_coll_import(c, recs, n, NULL, NULL, NULL)) {
    fprintf(stderr, "import: %s\n", jiwa_coll_errmsg());
    return 1;
  }
  double t_import = now_s() - t0;
  void *img = NULL;
  size_t il = 0;
  jiwa_store_fetch(s, JIWA_STORE_DB_VINDEX, "bench", 5, NULL, &img, &il);
  printf("import (validate + HNSW build + image save + one commit): %.1f s, "
         "image %.1f MiB\n",
         t_import, il / 1048576.0);

  /* the raw index: the vindex section of the very same image, viewed in a
   * private aligned copy (layout: runtime/store/README.md, Collections) */
  const uint8_t *h = (const uint8_t *)img + 5 + ((const uint8_t *)img)[5];
  uint64_t vxo, vxl;
  memcpy(&vxo, h + 48, 8);
  memcpy(&vxl, h + 56, 8);
  void *raw_buf = aligned_alloc(64, (vxl + 63) & ~(uint64_t)63);
  memcpy(raw_buf, h + vxo, vxl);
  jiwa_vindex_t *raw = NULL;
  if (jiwa_vindex_view(raw_buf, vxl, &raw)) {
    fprintf(stderr, "raw view failed\n");
    return 1;
  }
  /* allow bitmaps for the raw filters: slots are import order */
  uint32_t words = (n + 63) / 64;
  uint64_t *bm_lang = calloc(words, 8), *bm_gold = calloc(words, 8);
  for (uint32_t i = 0; i < n; i++) {
    if (i % 3 == 1)
      bm_lang[i >> 6] |= UINT64_C(1) << (i & 63);
    if (i % 100 == 7)
      bm_gold[i >> 6] |= UINT64_C(1) << (i & 63);
  }

  /* cold open in fresh processes */
  jiwa_coll_close(c);
  jiwa_store_close(s);
  double cold_open[5], cold_first[5], warm_second[5];
  for (int r = 0; r < 5; r++) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --cold %s %u", argv[0], dir, dim);
    FILE *p = popen(cmd, "r");
    if (!p || fscanf(p, "%lf %lf %lf", &cold_open[r], &cold_first[r],
                     &warm_second[r]) != 3) {
      fprintf(stderr, "cold run failed\n");
      return 1;
    }
    pclose(p);
  }
  qsort(cold_open, 5, sizeof(double), cmp_d);
  qsort(cold_first, 5, sizeof(double), cmp_d);
  qsort(warm_second, 5, sizeof(double), cmp_d);
  printf("cold open, fresh process (median of 5): store + collection open "
         "%.2f ms, first search %.2f ms (second %.3f ms) -> first answer "
         "%.2f ms after start\n",
         cold_open[2], cold_first[2], warm_second[2],
         cold_open[2] + cold_first[2]);

  s = open_store(dir);
  c = open_coll(s, dim);
  const char *v_id[] = {"id"}, *v_gold[] = {"gold"};
  jiwa_coll_filter_t f_lang[] = {{"lang", v_id, 1}};
  jiwa_coll_filter_t f_gold[] = {{"tier", v_gold, 1}};
  struct {
    const char *name;
    const jiwa_coll_filter_t *f;
    const uint64_t *bm;
  } modes[] = {{"no filter", NULL, NULL},
               {"lang = id (1/3)", f_lang, bm_lang},
               {"tier = gold (1%)", f_gold, bm_gold}};
  double *us = malloc(nq * sizeof *us);
  jiwa_vindex_hit_t hits[16];
  float *sc = malloc(n * sizeof *sc);
  printf("\n%-18s %10s %10s %10s | %10s %10s %10s | %6s %8s\n", "search k=10",
         "coll p50", "coll p99", "coll QPS", "raw p50", "raw p99", "raw QPS",
         "ratio", "recall");
  for (size_t m = 0; m < 3; m++) {
    /* warm both paths once */
    jiwa_coll_query_t q = JIWA_COLL_QUERY_INIT;
    q.dim = dim;
    q.k = k;
    q.min_score = -1;
    q.filters = modes[m].f;
    q.nfilters = modes[m].f ? 1 : 0;
    q.ef = ef; /* both paths at the same ef */
    jiwa_vindex_query_t vq;
    memset(&vq, 0, sizeof vq);
    vq.ef = ef;
    vq.allow = modes[m].bm;
    vq.allow_bits = modes[m].bm ? n : 0;
    jiwa_coll_result_t r;
    uint32_t nh;
    for (uint32_t i = 0; i < 50 && i < nq; i++) {
      q.vec = qs + (size_t)i * dim;
      jiwa_coll_search(c, &q, &r);
      jiwa_coll_result_free(&r);
      jiwa_vindex_search(raw, qs + (size_t)i * dim, k, &vq, hits, &nh);
    }
    /* interleaved, so both paths see the same machine conditions */
    double *ur = malloc(nq * sizeof *ur), tc = 0, tr = 0;
    for (uint32_t i = 0; i < nq; i++) {
      double a = now_s();
      q.vec = qs + (size_t)i * dim;
      if (jiwa_coll_search(c, &q, &r) || r.n != k) {
        fprintf(stderr, "search failed: %s\n", jiwa_coll_errmsg());
        return 1;
      }
      jiwa_coll_result_free(&r);
      double b = now_s();
      jiwa_vindex_search(raw, qs + (size_t)i * dim, k, &vq, hits, &nh);
      double e = now_s();
      us[i] = (b - a) * 1e6;
      ur[i] = (e - b) * 1e6;
      tc += b - a;
      tr += e - b;
    }
    lat_t lc = summarise(us, nq, tc);
    lat_t lr = summarise(ur, nq, tr);
    free(ur);
    /* recall on the first 100 queries */
    uint32_t found = 0, nrq = nq < 100 ? nq : 100;
    for (uint32_t i = 0; i < nrq; i++) {
      const float *qv = qs + (size_t)i * dim;
      uint32_t cnt = 0;
      for (uint32_t j = 0; j < n; j++) {
        if (modes[m].bm && !((modes[m].bm[j >> 6] >> (j & 63)) & 1))
          continue;
        float dot = 0;
        for (uint32_t d = 0; d < dim; d++)
          dot += qv[d] * v[(size_t)j * dim + d];
        sc[cnt++] = dot;
      }
      qsort(sc, cnt, sizeof *sc, cmp_f_desc);
      q.vec = qv;
      jiwa_coll_search(c, &q, &r);
      for (uint32_t hh = 0; hh < r.n; hh++)
        found += r.hits[hh].score >= sc[k - 1] - 1e-5f;
      jiwa_coll_result_free(&r);
    }
    printf("%-18s %8.1fus %8.1fus %10.0f | %8.1fus %8.1fus %10.0f | %6.2f "
           "%8.4f\n",
           modes[m].name, lc.p50, lc.p99, lc.qps, lr.p50, lr.p99, lr.qps,
           lc.p50 / lr.p50, (double)found / (nrq * k));
  }
  printf("\nratio = collection p50 / raw vindex p50 (the store layer's "
         "overhead: read txn, view cache, filter bitmap from the postings, "
         "ids, result copy)\n");

  jiwa_coll_close(c);
  jiwa_store_close(s);
  jiwa_vindex_free(raw);
  free(raw_buf);
  free(img);
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(us);
  free(sc);
  free(bm_lang);
  free(bm_gold);
  free(recs);
  free(ids);
  free(metas);
  free(v);
  free(qs);
  return 0;
}
