/*
 * Unit tests for query clustering (runtime/jobs/jiwa_cluster.c), its
 * metrics and the synthetic query log (jiwa_querygen.c):
 *  - the generator: determinism, intents and languages present, Zipf
 *    order, time span, argument checks;
 *  - the time window ("last N days") on a generated log against a plain
 *    scan;
 *  - the end-to-end figure: 15,000 queries over 10 days, the last 7 days
 *    selected (about 10,500), hash-embedded (dim 512), clustered, scored
 *    against the true intents; purity, ARI, clusters and top-50 coverage
 *    are printed and held to floors just under what this code reaches
 *    (README.md), and beat a random assignment with the same cluster
 *    sizes;
 *  - structural invariants of the result, determinism for a seed;
 *  - purity and ARI on hand-computed examples; small synthetic vectors
 *    with a known answer; duplicates, zero vectors, arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa_cluster.h"
#include "jiwa_embed.h"
#include "jiwa_querygen.h"

#define assert_rc(expr, want)                                                  \
  do {                                                                         \
    int rc_ = (expr), want_ = (want);                                          \
    if (rc_ != want_) {                                                        \
      print_error("%s\n  got %d (%s), want %d (%s)\n", #expr, rc_,             \
                  jiwa_err_name(rc_), want_, jiwa_err_name(want_));            \
      fail();                                                                  \
    }                                                                          \
  } while (0)

#define assert_at_least(got, floor)                                            \
  do {                                                                         \
    double g_ = (got), f_ = (floor);                                           \
    if (!(g_ >= f_)) {                                                         \
      print_error("%s = %.4f, below the floor %.4f\n", #got, g_, f_);          \
      fail();                                                                  \
    }                                                                          \
  } while (0)

static jiwa_qlog_t *gen(size_t n, unsigned days, uint64_t seed) {
  jiwa_querygen_opts_t o = {.size = sizeof o, .n = n, .days = days,
                            .seed = seed};
  jiwa_qlog_t *log = NULL;
  assert_rc(jiwa_querygen(&o, &log), 0);
  assert_non_null(log);
  assert_int_equal(log->n, n);
  return log;
}

static void test_querygen(void **state) {
  (void)state;
  jiwa_qlog_t *a = gen(20000, 10, 1), *b = gen(20000, 10, 1),
              *c = gen(20000, 10, 2);
  size_t per_intent[JIWA_QUERYGEN_INTENTS] = {0}, per_lang[3] = {0};
  size_t differ = 0;
  int64_t end = INT64_C(1767225600);
  for (size_t i = 0; i < a->n; i++) {
    const jiwa_qlog_entry_t *q = &a->q[i];
    assert_string_equal(q->text, b->q[i].text);
    assert_int_equal(q->intent, b->q[i].intent);
    differ += strcmp(q->text, c->q[i].text) != 0;
    assert_int_equal(strlen(q->text), q->len);
    assert_true(q->len > 5);
    assert_true(q->intent < JIWA_QUERYGEN_INTENTS);
    per_intent[q->intent]++;
    per_lang[!strcmp(q->lang, "en") ? 0 : !strcmp(q->lang, "id") ? 1 : 2]++;
    assert_true(q->ts > end - 10 * 86400 && q->ts <= end);
    if (i)
      assert_true(q->ts >= a->q[i - 1].ts);
  }
  assert_true(differ > a->n / 2); /* another seed, another log */
  for (unsigned k = 0; k < JIWA_QUERYGEN_INTENTS; k++) {
    assert_true(per_intent[k] > 0);
    assert_string_not_equal(jiwa_querygen_intent_name(k), "?");
  }
  /* Zipf: rank 1 about twice rank 2, far above rank 24 */
  assert_true(per_intent[0] > per_intent[1]);
  assert_true(per_intent[1] > per_intent[5]);
  assert_true(per_intent[5] > per_intent[23]);
  assert_true(per_intent[0] > 10 * per_intent[23]);
  /* 50 / 30 / 20 % within 2 points */
  assert_true(per_lang[0] > 9600 && per_lang[0] < 10400);
  assert_true(per_lang[1] > 5600 && per_lang[1] < 6400);
  assert_true(per_lang[2] > 3600 && per_lang[2] < 4400);
  assert_string_equal(jiwa_querygen_intent_name(JIWA_QUERYGEN_INTENTS), "?");
  jiwa_qlog_free(a);
  jiwa_qlog_free(b);
  jiwa_qlog_free(c);
  /* arguments */
  jiwa_qlog_t *l = (jiwa_qlog_t *)&state;
  jiwa_querygen_opts_t o = {.size = sizeof o, .n = 0};
  assert_rc(jiwa_querygen(&o, &l), JIWA_EINVAL);
  assert_null(l);
  o.n = 10;
  o.size = 8;
  assert_rc(jiwa_querygen(&o, &l), JIWA_EINVAL);
  o.size = sizeof o;
  o.typo_rate = 1.5;
  assert_rc(jiwa_querygen(&o, &l), JIWA_EINVAL);
  assert_rc(jiwa_querygen(NULL, &l), JIWA_EINVAL);
  assert_rc(jiwa_querygen(&o, NULL), JIWA_EINVAL);
  jiwa_qlog_free(NULL);
}

static void test_window(void **state) {
  (void)state;
  jiwa_qlog_t *log = gen(15000, 10, 3);
  int64_t *ts = malloc(log->n * sizeof *ts);
  uint32_t *idx = malloc(log->n * sizeof *idx);
  assert_non_null(ts);
  assert_non_null(idx);
  /* shuffle the timestamps so the selection cannot rely on order */
  for (size_t i = 0; i < log->n; i++)
    ts[i] = log->q[(i * 7919) % log->n].ts;
  int64_t now = log->q[log->n - 1].ts;
  for (unsigned days = 0; days <= 11; days++) {
    size_t k = jiwa_cluster_window(ts, log->n, now, days, idx);
    size_t want = 0;
    for (size_t i = 0; i < log->n; i++)
      want += ts[i] > now - (int64_t)days * 86400 && ts[i] <= now;
    assert_int_equal(k, want);
    assert_int_equal(jiwa_cluster_window(ts, log->n, now, days, NULL), k);
    for (size_t j = 0; j < k; j++) {
      assert_true(ts[idx[j]] > now - (int64_t)days * 86400);
      assert_true(ts[idx[j]] <= now);
      if (j)
        assert_true(idx[j] > idx[j - 1]);
    }
    /* evenly spread: N days hold about N/10 of the log */
    if (days <= 10)
      assert_true(k + 10 >= log->n * days / 10 && k <= log->n * days / 10 + 10);
  }
  /* a "now" in the past excludes what comes later */
  int64_t mid = log->q[log->n / 2].ts;
  size_t k = jiwa_cluster_window(ts, log->n, mid, 100, idx);
  assert_true(k >= log->n / 2 && k <= log->n / 2 + 2);
  assert_int_equal(jiwa_cluster_window(NULL, 5, now, 1, idx), 0);
  free(ts);
  free(idx);
  jiwa_qlog_free(log);
}

static void check_structure(const jiwa_clustering_t *c, const float *v,
                            size_t n, unsigned dim) {
  assert_int_equal(c->n_points, n);
  size_t total = c->unassigned;
  for (size_t k = 0; k < c->n_clusters; k++) {
    const jiwa_cluster_t *cl = &c->clusters[k];
    assert_true(cl->n > 0);
    if (k)
      assert_true(cl->n <= c->clusters[k - 1].n);
    total += cl->n;
    double nn = 0;
    for (unsigned j = 0; j < dim; j++)
      nn += (double)cl->centroid[j] * cl->centroid[j];
    assert_true(fabs(nn - 1.0) < 1e-3);
    assert_true(cl->cohesion > 0 && cl->cohesion <= 1.0001f);
    int rep_member = 0;
    double best = -2, rep_sim = -3, coh = 0;
    for (size_t m = 0; m < cl->n; m++) {
      uint32_t i = cl->members[m];
      assert_true(i < n);
      assert_int_equal(c->assign[i], k);
      if (m)
        assert_true(i > cl->members[m - 1]);
      double d = 0;
      for (unsigned j = 0; j < dim; j++)
        d += (double)v[(size_t)i * dim + j] * cl->centroid[j];
      coh += d;
      if (d > best)
        best = d;
      if (i == cl->representative) {
        rep_member = 1;
        rep_sim = d;
      }
    }
    assert_true(rep_member);
    assert_true(rep_sim >= best - 1e-4); /* the most central member */
    assert_true(fabs(coh / (double)cl->n - cl->cohesion) < 1e-3);
  }
  assert_int_equal(total, n);
}

/* A random assignment with the same cluster sizes (a permutation). */
static double random_ari(const uint32_t *assign, const uint32_t *lab,
                         size_t n) {
  uint32_t *perm = malloc(n * sizeof *perm);
  assert_non_null(perm);
  memcpy(perm, assign, n * sizeof *perm);
  uint64_t x = 99;
  for (size_t i = n - 1; i > 0; i--) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t j = x % (i + 1);
    uint32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  double ari;
  assert_rc(jiwa_cluster_ari(perm, lab, n, &ari), 0);
  free(perm);
  return ari;
}

static void test_end_to_end(void **state) {
  (void)state;
  jiwa_qlog_t *log = gen(15000, 10, 42);
  int64_t *ts = malloc(log->n * sizeof *ts);
  uint32_t *idx = malloc(log->n * sizeof *idx);
  assert_non_null(ts);
  assert_non_null(idx);
  for (size_t i = 0; i < log->n; i++)
    ts[i] = log->q[i].ts;
  size_t n = jiwa_cluster_window(ts, log->n, log->q[log->n - 1].ts, 7, idx);
  assert_true(n >= 10000);
  const char **texts = malloc(n * sizeof *texts);
  uint32_t *lab = malloc(n * sizeof *lab);
  float *v = malloc(n * 512 * sizeof *v);
  assert_non_null(texts);
  assert_non_null(lab);
  assert_non_null(v);
  unsigned langs = 0;
  size_t seen[JIWA_QUERYGEN_INTENTS] = {0};
  for (size_t i = 0; i < n; i++) {
    const jiwa_qlog_entry_t *q = &log->q[idx[i]];
    texts[i] = q->text;
    lab[i] = q->intent;
    seen[q->intent]++;
    langs |= !strcmp(q->lang, "en") ? 1u : !strcmp(q->lang, "id") ? 2u : 4u;
  }
  unsigned intents = 0;
  for (unsigned k = 0; k < JIWA_QUERYGEN_INTENTS; k++)
    intents += seen[k] > 0;
  assert_true(intents >= 20);
  assert_int_equal(langs, 7);
  jiwa_embed_t *emb;
  assert_rc(jiwa_embed_hash_new(512, &emb), 0);
  assert_rc(jiwa_embed_texts(emb, texts, NULL, n, v), 0);
  jiwa_clustering_t *c;
  assert_rc(jiwa_cluster(v, n, 512, NULL, &c), 0);
  check_structure(c, v, n, 512);
  double purity, ari, cov = jiwa_cluster_coverage(c, 50);
  assert_rc(jiwa_cluster_purity(c->assign, lab, n, &purity), 0);
  assert_rc(jiwa_cluster_ari(c->assign, lab, n, &ari), 0);
  double rnd = random_ari(c->assign, lab, n);
  printf("clustering %zu queries (last 7 of 10 days, %u intents, 3 "
         "languages, %zu distinct vectors): %zu clusters, purity %.3f, "
         "ARI %.3f (random assignment of the same sizes: %.3f), top-50 "
         "coverage %.3f\n",
         n, intents, c->unique, c->n_clusters, purity, ari, rnd, cov);
  for (size_t k = 0; k < 8 && k < c->n_clusters; k++) {
    size_t cnt[JIWA_QUERYGEN_INTENTS] = {0}, top = 0;
    for (size_t m = 0; m < c->clusters[k].n; m++)
      cnt[lab[c->clusters[k].members[m]]]++;
    for (unsigned j = 1; j < JIWA_QUERYGEN_INTENTS; j++)
      if (cnt[j] > cnt[top])
        top = j;
    printf("  #%zu %4zu queries, cohesion %.2f, %-18s \"%s\"\n", k + 1,
           c->clusters[k].n, c->clusters[k].cohesion,
           jiwa_querygen_intent_name((uint32_t)top),
           texts[c->clusters[k].representative]);
    /* a top cluster is named by a query of its own majority intent */
    assert_int_equal(lab[c->clusters[k].representative], top);
  }
  /* floors just under the figures this code reaches (README.md) */
  assert_at_least(purity, 0.94);
  assert_at_least(ari, 0.19);
  assert_at_least(ari, rnd + 0.15);
  assert_at_least(cov, 0.64);
  assert_true(c->n_clusters >= intents && c->n_clusters <= 600);
  assert_int_equal(c->unassigned, 0);
  /* deterministic for a seed */
  jiwa_clustering_t *c2;
  assert_rc(jiwa_cluster(v, n, 512, NULL, &c2), 0);
  assert_int_equal(c2->n_clusters, c->n_clusters);
  assert_memory_equal(c2->assign, c->assign, n * sizeof *c->assign);
  jiwa_clustering_free(c2);
  /* another seed: still a valid clustering of similar quality */
  jiwa_cluster_opts_t o = {.size = sizeof o, .seed = 7};
  assert_rc(jiwa_cluster(v, n, 512, &o, &c2), 0);
  check_structure(c2, v, n, 512);
  double p2;
  assert_rc(jiwa_cluster_purity(c2->assign, lab, n, &p2), 0);
  assert_at_least(p2, 0.93);
  jiwa_clustering_free(c2);
  jiwa_clustering_free(c);
  jiwa_embed_destroy(emb);
  free(texts);
  free(lab);
  free(v);
  free(ts);
  free(idx);
  jiwa_qlog_free(log);
}

static void test_metrics(void **state) {
  (void)state;
  double p, a;
  const uint32_t l[] = {0, 0, 1, 1}, same[] = {5, 5, 9, 9},
                 cross[] = {0, 1, 0, 1}, one[] = {3, 3, 3, 3};
  assert_rc(jiwa_cluster_purity(same, l, 4, &p), 0);
  assert_true(p == 1.0);
  assert_rc(jiwa_cluster_ari(same, l, 4, &a), 0);
  assert_true(fabs(a - 1.0) < 1e-12);
  /* every pair split: sij 0, expected 2*2/6, ARI = -2/3 / (4/3) = -0.5 */
  assert_rc(jiwa_cluster_ari(cross, l, 4, &a), 0);
  assert_true(fabs(a + 0.5) < 1e-12);
  assert_rc(jiwa_cluster_purity(cross, l, 4, &p), 0);
  assert_true(p == 0.5);
  assert_rc(jiwa_cluster_purity(one, l, 4, &p), 0);
  assert_true(p == 0.5);
  assert_rc(jiwa_cluster_ari(one, l, 4, &a), 0);
  assert_true(fabs(a) < 1e-12);
  /* a textbook table: 2 clusters x 2 labels, counts 3,1 / 1,3 (n = 8):
   * sij = 3+0+0+3 = 6, sa = sb = 12, E = 144/28, max = 12,
   * ARI = (6 - 36/7) / (12 - 36/7) = (6/7) / (48/7) = 0.125 */
  const uint32_t as[] = {0, 0, 0, 0, 1, 1, 1, 1},
                 ls[] = {0, 0, 0, 1, 0, 1, 1, 1};
  assert_rc(jiwa_cluster_ari(as, ls, 8, &a), 0);
  assert_true(fabs(a - 0.125) < 1e-12);
  assert_rc(jiwa_cluster_purity(as, ls, 8, &p), 0);
  assert_true(p == 0.75);
  /* NONE is one more cluster */
  const uint32_t nn[] = {JIWA_CLUSTER_NONE, JIWA_CLUSTER_NONE, 1, 1};
  assert_rc(jiwa_cluster_purity(nn, l, 4, &p), 0);
  assert_true(p == 1.0);
  assert_rc(jiwa_cluster_purity(NULL, 0, 0, &p), 0);
  assert_true(p == 1.0);
  assert_rc(jiwa_cluster_ari(l, l, 1, &a), 0);
  assert_true(a == 1.0);
  assert_rc(jiwa_cluster_ari(NULL, l, 4, &a), JIWA_EINVAL);
  assert_rc(jiwa_cluster_purity(l, l, 4, NULL), JIWA_EINVAL);
}

/* Three directions with noise, exact duplicates and zero vectors. */
static void test_small(void **state) {
  (void)state;
  enum { N = 300, D = 16 };
  float *v = calloc(N * D, sizeof *v);
  uint32_t lab[N];
  assert_non_null(v);
  uint64_t x = 5;
  for (size_t i = 0; i < N; i++) {
    float *r = v + i * D;
    lab[i] = (uint32_t)(i % 3);
    if (i % 50 == 49)
      continue; /* zero vector */
    if (i % 7 == 0 && i >= 3 && (i - 3) % 50 != 49) { /* a duplicate */
      memcpy(r, v + (i - 3) * D, D * sizeof *r);
      continue;
    }
    r[lab[i] * 5] = 1.0f;
    r[lab[i] * 5 + 1] = 0.8f;
    for (int j = 0; j < 3; j++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      r[x % D] += 0.15f;
    }
    double nn = 0;
    for (int j = 0; j < D; j++)
      nn += (double)r[j] * r[j];
    for (int j = 0; j < D; j++)
      r[j] = (float)(r[j] / sqrt(nn));
  }
  jiwa_clustering_t *c;
  assert_rc(jiwa_cluster(v, N, D, NULL, &c), 0);
  assert_int_equal(c->n_clusters, 3);
  assert_int_equal(c->unassigned, 6);
  assert_true(c->unique < N - 6);
  for (size_t i = 0; i < N; i++)
    if (i % 50 == 49)
      assert_int_equal(c->assign[i], JIWA_CLUSTER_NONE);
  uint32_t *a2 = malloc(N * sizeof *a2);
  uint32_t *l2 = malloc(N * sizeof *l2);
  size_t m = 0;
  for (size_t i = 0; i < N; i++)
    if (c->assign[i] != JIWA_CLUSTER_NONE) {
      a2[m] = c->assign[i];
      l2[m++] = lab[i];
    }
  double ari;
  assert_rc(jiwa_cluster_ari(a2, l2, m, &ari), 0);
  assert_true(ari == 1.0);
  assert_true(fabs(jiwa_cluster_coverage(c, 3) - (double)(N - 6) / N) <
              1e-12);
  assert_true(jiwa_cluster_coverage(c, 1) < jiwa_cluster_coverage(c, 2));
  assert_true(jiwa_cluster_coverage(NULL, 3) == 0);
  check_structure(c, v, N, D);
  jiwa_clustering_free(c);
  /* no merging and a high threshold still give clean clusters */
  jiwa_cluster_opts_t o = {.size = sizeof o, .threshold = 0.95f,
                           .merge_threshold = 1.0f, .iters = 1};
  assert_rc(jiwa_cluster(v, N, D, &o, &c), 0);
  assert_true(c->n_clusters >= 3);
  check_structure(c, v, N, D);
  jiwa_clustering_free(c);
  /* a cap on clusters is respected */
  o = (jiwa_cluster_opts_t){.size = sizeof o, .threshold = 0.999f,
                            .merge_threshold = 1.0f, .max_clusters = 2};
  assert_rc(jiwa_cluster(v, N, D, &o, &c), 0);
  assert_true(c->n_clusters <= 2);
  jiwa_clustering_free(c);
  /* empty input, all-zero input */
  assert_rc(jiwa_cluster(NULL, 0, D, NULL, &c), 0);
  assert_int_equal(c->n_clusters, 0);
  assert_true(jiwa_cluster_coverage(c, 50) == 0);
  jiwa_clustering_free(c);
  memset(v, 0, 10 * D * sizeof *v);
  assert_rc(jiwa_cluster(v, 10, D, NULL, &c), 0);
  assert_int_equal(c->n_clusters, 0);
  assert_int_equal(c->unassigned, 10);
  jiwa_clustering_free(c);
  /* arguments */
  c = (jiwa_clustering_t *)&o;
  assert_rc(jiwa_cluster(NULL, 3, D, NULL, &c), JIWA_EINVAL);
  assert_null(c);
  assert_rc(jiwa_cluster(v, 3, 0, NULL, &c), JIWA_EINVAL);
  assert_rc(jiwa_cluster(v, 3, 65537, NULL, &c), JIWA_EINVAL);
  assert_rc(jiwa_cluster(v, 3, D, NULL, NULL), JIWA_EINVAL);
  o = (jiwa_cluster_opts_t){.size = sizeof o, .threshold = 1.5f};
  assert_rc(jiwa_cluster(v, 3, D, &o, &c), JIWA_EINVAL);
  o = (jiwa_cluster_opts_t){.size = 4};
  assert_rc(jiwa_cluster(v, 3, D, &o, &c), JIWA_EINVAL);
  jiwa_clustering_free(NULL);
  free(a2);
  free(l2);
  free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_querygen), cmocka_unit_test(test_window),
      cmocka_unit_test(test_metrics),  cmocka_unit_test(test_small),
      cmocka_unit_test(test_end_to_end),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
