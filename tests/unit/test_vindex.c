/*
 * Unit tests for the vector index (runtime/store/jiwa_vindex.c): CRUD,
 * tombstones, filters, the persisted image (save / view / thaw, hostile
 * images) and recall@10 against a brute force written here, independently
 * of the index's own exact path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa_vindex.h"
#include "vindex_data.h"

#define assert_rc(expr, want)                                                  \
  do {                                                                         \
    int rc_ = (expr);                                                          \
    int want_ = (want);                                                        \
    if (rc_ != want_) {                                                        \
      print_error("%s\n  got %d (%s), want %d (%s)\n", #expr, rc_,             \
                  jiwa_err_name(rc_), want_, jiwa_err_name(want_));            \
      fail();                                                                  \
    }                                                                          \
  } while (0)

/* ---- helpers ------------------------------------------------------------- */

typedef struct {
  uint32_t n, dim, nq;
  float *x, *q;
} data_t;

static void data_make(data_t *d, uint32_t n, uint32_t dim, uint32_t clusters,
                      uint32_t nq, uint64_t seed) {
  d->n = n;
  d->dim = dim;
  d->nq = nq;
  float *c = vd_centres(seed, clusters, dim);
  assert_non_null(c);
  d->x = malloc((size_t)n * dim * sizeof(float));
  d->q = malloc((size_t)nq * dim * sizeof(float));
  assert_non_null(d->x);
  assert_non_null(d->q);
  vd_points(c, clusters, dim, 0.6f, seed, 0, n, d->x);
  vd_points(c, clusters, dim, 0.6f, seed, 1, nq, d->q);
  free(c);
}

static void data_free(data_t *d) {
  free(d->x);
  free(d->q);
}

static jiwa_vindex_t *build(const data_t *d, uint32_t m, uint32_t efc,
                            uint32_t thr) {
  jiwa_vindex_params_t p;
  jiwa_vindex_params_init(&p, d->dim);
  p.m = m;
  p.ef_construction = efc;
  p.exact_threshold = thr;
  jiwa_vindex_t *idx = NULL;
  assert_rc(jiwa_vindex_create(&p, &idx), 0);
  for (uint32_t i = 0; i < d->n; i++) {
    uint32_t id;
    assert_rc(jiwa_vindex_add(idx, d->x + (size_t)i * d->dim, 1000 + i, &id),
              0);
    assert_int_equal(id, i);
  }
  return idx;
}

typedef struct {
  uint32_t mod; /* accept id % mod == 0 */
  const uint8_t *gone;
} pred_t;

static int accept_mod(uint32_t id, void *ud) {
  const pred_t *p = ud;
  return id % p->mod == 0;
}

/* Independent brute force over the raw data (data are unit vectors, so the
 * dot product is the cosine). Skips gone[] and, with mod, id % mod != 0. */
static uint32_t brute(const data_t *d, const float *q, uint32_t k, uint32_t mod,
                      const uint8_t *gone, uint32_t *out) {
  float *best = calloc(k, sizeof *best);
  uint32_t nb = 0;
  for (uint32_t i = 0; i < d->n; i++) {
    if ((mod && i % mod) || (gone && gone[i]))
      continue;
    const float *x = d->x + (size_t)i * d->dim;
    float s = 0;
    for (uint32_t j = 0; j < d->dim; j++)
      s += q[j] * x[j];
    if (nb < k || s > best[nb - 1]) {
      uint32_t at = nb < k ? nb++ : k - 1;
      while (at > 0 && best[at - 1] < s) {
        best[at] = best[at - 1];
        out[at] = out[at - 1];
        at--;
      }
      best[at] = s;
      out[at] = i;
    }
  }
  free(best);
  return nb;
}

static double recall(const data_t *d, const jiwa_vindex_t *idx, uint32_t k,
                     const jiwa_vindex_query_t *opt, uint32_t mod) {
  uint32_t *truth = malloc(k * sizeof *truth);
  jiwa_vindex_hit_t *hits = malloc(k * sizeof *hits);
  uint64_t found = 0, want = 0;
  for (uint32_t qi = 0; qi < d->nq; qi++) {
    const float *q = d->q + (size_t)qi * d->dim;
    uint32_t nt = brute(d, q, k, mod, NULL, truth), nh;
    assert_rc(jiwa_vindex_search(idx, q, k, opt, hits, &nh), 0);
    assert_int_equal(nh, nt);
    for (uint32_t i = 0; i < nh; i++) {
      if (mod)
        assert_int_equal(hits[i].id % mod, 0);
      if (i)
        assert_true(hits[i].score <= hits[i - 1].score);
      for (uint32_t j = 0; j < nt; j++)
        if (hits[i].id == truth[j]) {
          found++;
          break;
        }
    }
    want += nt;
  }
  free(truth);
  free(hits);
  return want ? (double)found / (double)want : 1.0;
}

/* ---- params and CRUD ----------------------------------------------------- */

static void test_params(void **state) {
  (void)state;
  jiwa_vindex_params_t p;
  jiwa_vindex_t *idx = (jiwa_vindex_t *)1;
  jiwa_vindex_params_init(&p, 0);
  assert_rc(jiwa_vindex_create(&p, &idx), JIWA_EINVAL);
  assert_null(idx);
  jiwa_vindex_params_init(&p, 8);
  p.m = 1;
  assert_rc(jiwa_vindex_create(&p, &idx), JIWA_EINVAL);
  p.m = 65;
  assert_rc(jiwa_vindex_create(&p, &idx), JIWA_EINVAL);
  jiwa_vindex_params_init(&p, 8);
  p.size = 4;
  assert_rc(jiwa_vindex_create(&p, &idx), JIWA_EINVAL);
  jiwa_vindex_params_init(&p, 8);
  assert_rc(jiwa_vindex_create(&p, &idx), 0);
  jiwa_vindex_params_t g;
  jiwa_vindex_get_params(idx, &g);
  assert_int_equal(g.dim, 8);
  assert_int_equal(g.m, 16);
  assert_int_equal(g.ef_construction, 200);

  /* searching an empty index: no hits, no error */
  float q[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  jiwa_vindex_hit_t h[4];
  uint32_t n = 99;
  assert_rc(jiwa_vindex_search(idx, q, 4, NULL, h, &n), 0);
  assert_int_equal(n, 0);
  /* bad queries and vectors */
  float zero[8] = {0};
  float bad[8] = {NAN, 1, 0, 0, 0, 0, 0, 0};
  assert_rc(jiwa_vindex_search(idx, zero, 4, NULL, h, &n), JIWA_EINVAL);
  assert_rc(jiwa_vindex_search(idx, q, 0, NULL, h, &n), JIWA_EINVAL);
  assert_rc(jiwa_vindex_add(idx, zero, 0, NULL), JIWA_EINVAL);
  assert_rc(jiwa_vindex_add(idx, bad, 0, NULL), JIWA_EINVAL);
  assert_int_equal(jiwa_vindex_count(idx), 0);
  assert_int_equal(jiwa_vindex_slots(idx), 0);
  assert_rc(jiwa_vindex_delete(idx, 0), JIWA_ENOENT);
  assert_rc(jiwa_vindex_update(idx, 0, q), JIWA_ENOENT);
  jiwa_vindex_free(idx);
}

static void test_crud(void **state) {
  (void)state;
  enum { N = 300, D = 12 };
  data_t d;
  data_make(&d, N, D, 10, 20, 7);
  /* threshold 0: the graph path answers everything */
  jiwa_vindex_t *idx = build(&d, 8, 64, 0);
  assert_int_equal(jiwa_vindex_count(idx), N);
  assert_int_equal(jiwa_vindex_dim(idx), D);

  /* get returns the normalised vector and the tag */
  float v[D], raw[D];
  uint64_t tag;
  for (int i = 0; i < D; i++)
    raw[i] = 3.0f * d.x[5 * D + i];
  assert_rc(jiwa_vindex_get(idx, 5, v, &tag), 0);
  assert_int_equal(tag, 1005);
  for (int i = 0; i < D; i++)
    assert_float_equal(v[i], d.x[5 * D + i], 1e-5);

  /* each point finds itself first, with score ~1 (scale-invariant) */
  jiwa_vindex_hit_t h[10];
  uint32_t n;
  assert_rc(jiwa_vindex_search(idx, raw, 10, NULL, h, &n), 0);
  assert_int_equal(n, 10);
  assert_int_equal(h[0].id, 5);
  assert_int_equal(h[0].tag, 1005);
  assert_float_equal(h[0].score, 1.0, 1e-4);

  /* delete: never returned again, get says ENOENT, count drops */
  assert_rc(jiwa_vindex_delete(idx, 5), 0);
  assert_rc(jiwa_vindex_delete(idx, 5), JIWA_ENOENT);
  assert_rc(jiwa_vindex_get(idx, 5, v, &tag), JIWA_ENOENT);
  assert_int_equal(jiwa_vindex_count(idx), N - 1);
  assert_rc(jiwa_vindex_search(idx, raw, 10, NULL, h, &n), 0);
  assert_int_equal(n, 10);
  for (uint32_t i = 0; i < n; i++)
    assert_int_not_equal(h[i].id, 5);

  /* update: slot 7 takes a far-away vector and is found there */
  float far[D];
  for (int i = 0; i < D; i++)
    far[i] = (i % 2) ? -1.0f : 0.5f;
  assert_rc(jiwa_vindex_update(idx, 7, far), 0);
  assert_rc(jiwa_vindex_update(idx, 5, far), JIWA_ENOENT);
  assert_rc(jiwa_vindex_search(idx, far, 1, NULL, h, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(h[0].id, 7);
  assert_int_equal(h[0].tag, 1007);
  assert_float_equal(h[0].score, 1.0, 1e-4);
  assert_rc(jiwa_vindex_get(idx, 7, NULL, &tag), 0);
  assert_int_equal(tag, 1007);

  /* update the entry point too (whichever it is: try a few) */
  for (uint32_t i = 20; i < 40; i++)
    assert_rc(jiwa_vindex_update(idx, i, d.x + (size_t)(i + 1) * D), 0);
  assert_rc(jiwa_vindex_check(idx), 0);

  /* a new add reuses the freed slot 5 */
  uint32_t id;
  assert_rc(jiwa_vindex_add(idx, raw, 42, &id), 0);
  assert_int_equal(id, 5);
  assert_int_equal(jiwa_vindex_count(idx), N);
  assert_int_equal(jiwa_vindex_slots(idx), N);
  assert_rc(jiwa_vindex_search(idx, raw, 1, NULL, h, &n), 0);
  assert_int_equal(h[0].id, 5);
  assert_int_equal(h[0].tag, 42);
  assert_rc(jiwa_vindex_check(idx), 0);

  /* delete everything, then the index works again from empty */
  for (uint32_t i = 0; i < N; i++)
    assert_rc(jiwa_vindex_delete(idx, i), 0);
  assert_int_equal(jiwa_vindex_count(idx), 0);
  assert_rc(jiwa_vindex_search(idx, raw, 10, NULL, h, &n), 0);
  assert_int_equal(n, 0);
  assert_rc(jiwa_vindex_check(idx), 0);
  for (uint32_t i = 0; i < 50; i++)
    assert_rc(jiwa_vindex_add(idx, d.x + (size_t)i * D, i, NULL), 0);
  assert_int_equal(jiwa_vindex_count(idx), 50);
  assert_int_equal(jiwa_vindex_slots(idx), N);
  assert_rc(jiwa_vindex_search(idx, d.x + 3 * D, 5, NULL, h, &n), 0);
  assert_int_equal(n, 5);
  assert_int_equal(h[0].tag, 3);
  assert_rc(jiwa_vindex_check(idx), 0);
  jiwa_vindex_free(idx);
  data_free(&d);
}

/* Delete a third of a graph-searched index: no deleted slot ever comes
 * back, every search still returns k, and recall stays high. */
static void test_delete_heavy(void **state) {
  (void)state;
  enum { N = 6000, D = 16, K = 10 };
  data_t d;
  data_make(&d, N, D, 60, 100, 11);
  jiwa_vindex_t *idx = build(&d, 12, 100, 0);
  uint8_t *gone = calloc(N, 1);
  vd_rng_t r = {99, 0, 0};
  uint32_t ndel = 0;
  while (ndel < N / 3) {
    uint32_t id = (uint32_t)(vd_next(&r) % N);
    if (gone[id])
      continue;
    assert_rc(jiwa_vindex_delete(idx, id), 0);
    gone[id] = 1;
    ndel++;
  }
  assert_int_equal(jiwa_vindex_count(idx), N - ndel);
  assert_rc(jiwa_vindex_check(idx), 0);
  jiwa_vindex_hit_t h[K];
  uint32_t truth[K], n;
  uint64_t found = 0;
  for (uint32_t qi = 0; qi < d.nq; qi++) {
    const float *q = d.q + (size_t)qi * D;
    assert_rc(jiwa_vindex_search(idx, q, K, NULL, h, &n), 0);
    assert_int_equal(n, K);
    uint32_t nt = brute(&d, q, K, 0, gone, truth);
    for (uint32_t i = 0; i < n; i++) {
      assert_false(gone[h[i].id]);
      for (uint32_t j = 0; j < nt; j++)
        found += h[i].id == truth[j];
    }
  }
  double rec = (double)found / (d.nq * K);
  print_message("recall@10 after deleting 1/3: %.4f\n", rec);
  assert_true(rec >= 0.9);
  free(gone);
  jiwa_vindex_free(idx);
  data_free(&d);
}

/* ---- persistence ------------------------------------------------------- */

typedef struct {
  uint8_t *p;
  size_t n, cap;
} sink_t;

static int sink_write(const void *data, size_t len, void *ud) {
  sink_t *s = ud;
  if (s->n + len > s->cap)
    return JIWA_ETOOBIG;
  memcpy(s->p + s->n, data, len);
  s->n += len;
  return 0;
}

static int fail_write(const void *data, size_t len, void *ud) {
  (void)data;
  (void)len;
  (void)ud;
  return JIWA_EIO;
}

static void same_results(const data_t *d, const jiwa_vindex_t *a,
                         const jiwa_vindex_t *b) {
  jiwa_vindex_hit_t ha[10], hb[10];
  uint32_t na, nb;
  for (uint32_t qi = 0; qi < d->nq; qi++) {
    const float *q = d->q + (size_t)qi * d->dim;
    assert_rc(jiwa_vindex_search(a, q, 10, NULL, ha, &na), 0);
    assert_rc(jiwa_vindex_search(b, q, 10, NULL, hb, &nb), 0);
    assert_int_equal(na, nb);
    for (uint32_t i = 0; i < na; i++) {
      assert_int_equal(ha[i].id, hb[i].id);
      assert_int_equal(ha[i].tag, hb[i].tag);
      assert_true(ha[i].score == hb[i].score);
    }
  }
}

static uint8_t *save_image(const jiwa_vindex_t *idx, size_t *len) {
  uint64_t sz = jiwa_vindex_image_size(idx);
  assert_int_equal(sz % 64, 0);
  uint8_t *buf = aligned_alloc(64, (size_t)sz);
  assert_non_null(buf);
  size_t n = 0;
  assert_rc(jiwa_vindex_save_buf(idx, buf, (size_t)sz - 1, &n), JIWA_ETOOBIG);
  assert_rc(jiwa_vindex_save_buf(idx, buf, (size_t)sz, &n), 0);
  assert_int_equal(n, sz);
  *len = n;
  return buf;
}

static void test_save_view_thaw(void **state) {
  (void)state;
  enum { N = 3000, D = 24 };
  data_t d;
  data_make(&d, N, D, 30, 50, 3);
  jiwa_vindex_t *idx = build(&d, 10, 80, 0);
  for (uint32_t i = 0; i < N; i += 7)
    assert_rc(jiwa_vindex_delete(idx, i), 0);

  size_t len;
  uint8_t *img = save_image(idx, &len);
  /* the streaming writer produces the very same bytes */
  sink_t s = {malloc(len), 0, len};
  assert_rc(jiwa_vindex_save(idx, sink_write, &s), 0);
  assert_int_equal(s.n, len);
  assert_memory_equal(s.p, img, len);
  assert_rc(jiwa_vindex_save(idx, fail_write, NULL), JIWA_EIO);

  jiwa_vindex_t *view = NULL;
  assert_rc(jiwa_vindex_view(img, len, &view), 0);
  assert_int_equal(jiwa_vindex_count(view), jiwa_vindex_count(idx));
  assert_int_equal(jiwa_vindex_slots(view), N);
  assert_rc(jiwa_vindex_check(view), 0);
  jiwa_vindex_warm(view);
  jiwa_vindex_warm(idx); /* no-op */
  same_results(&d, idx, view);

  /* read-only */
  assert_rc(jiwa_vindex_add(view, d.x, 0, NULL), JIWA_ESTATE);
  assert_rc(jiwa_vindex_delete(view, 1), JIWA_ESTATE);
  assert_rc(jiwa_vindex_update(view, 1, d.x), JIWA_ESTATE);
  jiwa_vindex_params_t p;
  jiwa_vindex_get_params(view, &p);
  assert_int_equal(p.m, 10);
  assert_rc(jiwa_vindex_set_params(view, &p), JIWA_ESTATE);
  assert_rc(jiwa_vindex_get(view, 0, NULL, NULL), JIWA_ENOENT);
  uint64_t tag;
  assert_rc(jiwa_vindex_get(view, 1, NULL, &tag), 0);
  assert_int_equal(tag, 1001);

  /* saving a view reproduces the image */
  size_t len2;
  uint8_t *img2 = save_image(view, &len2);
  assert_int_equal(len2, len);
  assert_memory_equal(img2, img, len);
  free(img2);

  /* thaw: same answers, then mutable */
  jiwa_vindex_t *th = NULL;
  assert_rc(jiwa_vindex_thaw(view, &th), 0);
  same_results(&d, view, th);
  uint32_t id;
  assert_rc(jiwa_vindex_add(th, d.x, 77, &id), 0);
  assert_int_equal(id % 7, 0); /* a freed slot is reused */
  assert_rc(jiwa_vindex_delete(th, 1), 0);
  assert_rc(jiwa_vindex_update(th, 2, d.x + 9 * D), 0);
  assert_rc(jiwa_vindex_check(th), 0);
  jiwa_vindex_hit_t h[3];
  uint32_t n;
  assert_rc(jiwa_vindex_search(th, d.x, 1, NULL, h, &n), 0);
  assert_int_equal(h[0].tag, 77);
  /* the view is unaffected by the thawed copy */
  assert_rc(jiwa_vindex_get(view, 1, NULL, NULL), 0);

  /* an empty index round-trips too */
  jiwa_vindex_params_init(&p, 5);
  jiwa_vindex_t *e = NULL, *ev = NULL;
  assert_rc(jiwa_vindex_create(&p, &e), 0);
  size_t elen;
  uint8_t *eimg = save_image(e, &elen);
  assert_rc(jiwa_vindex_view(eimg, elen, &ev), 0);
  float q[5] = {1, 2, 3, 4, 5};
  assert_rc(jiwa_vindex_search(ev, q, 3, NULL, h, &n), 0);
  assert_int_equal(n, 0);
  jiwa_vindex_free(ev);
  jiwa_vindex_free(e);
  free(eimg);

  jiwa_vindex_free(th);
  jiwa_vindex_free(view);
  jiwa_vindex_free(idx);
  free(s.p);
  free(img);
  data_free(&d);
}

static uint64_t fnv(const uint8_t *p, size_t n) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= UINT64_C(0x100000001b3);
  }
  return h;
}

static void test_hostile_images(void **state) {
  (void)state;
  enum { N = 400, D = 8 };
  data_t d;
  data_make(&d, N, D, 8, 10, 5);
  jiwa_vindex_t *idx = build(&d, 6, 40, 0);
  size_t len;
  uint8_t *img = save_image(idx, &len);
  uint8_t *buf = aligned_alloc(64, len + 64);
  jiwa_vindex_t *v = NULL;

  /* truncation anywhere is refused */
  for (size_t cut = 0; cut < len; cut += (cut < 256 ? 1 : 61)) {
    memcpy(buf, img, cut);
    assert_rc(jiwa_vindex_view(buf, cut, &v), JIWA_EPROTO);
    assert_null(v);
  }
  /* misaligned or NULL */
  memcpy(buf + 4, img, len);
  assert_rc(jiwa_vindex_view(buf + 4, len, &v), JIWA_EINVAL);
  assert_rc(jiwa_vindex_view(NULL, len, &v), JIWA_EINVAL);
  /* any flipped header byte breaks the magic, the version or the checksum */
  for (size_t i = 0; i < 192; i++) {
    memcpy(buf, img, len);
    buf[i] ^= 0x20;
    int rc = jiwa_vindex_view(buf, len, &v);
    assert_true(rc == JIWA_EPROTO || rc == JIWA_ENOTSUP);
    assert_null(v);
  }
  /* a newer format is refused as such, checksum or not */
  memcpy(buf, img, len);
  uint32_t ver = JIWA_VINDEX_FORMAT + 1;
  memcpy(buf + 8, &ver, 4);
  assert_rc(jiwa_vindex_view(buf, len, &v), JIWA_ENOTSUP);
  /* a consistent header (checksum recomputed) that lies about a count */
  memcpy(buf, img, len);
  uint32_t big = N * 4;
  memcpy(buf + 44, &big, 4);
  uint64_t hs = fnv(buf, 184);
  memcpy(buf + 184, &hs, 8);
  assert_rc(jiwa_vindex_view(buf, len, &v), JIWA_EPROTO);

  /* body corruption is accepted by the O(1) view, survives searches (ids
   * are bounds-checked as read), and is caught by check and thaw */
  memcpy(buf, img, len);
  uint64_t off_l0;
  memcpy(&off_l0, buf + 80, 8);
  vd_rng_t r = {1, 0, 0};
  for (int i = 0; i < 500; i++) {
    uint32_t junk = (uint32_t)vd_next(&r);
    size_t at = off_l0 + 4 * (vd_next(&r) % (N * 12));
    memcpy(buf + at, &junk, 4);
  }
  assert_rc(jiwa_vindex_view(buf, len, &v), 0);
  jiwa_vindex_hit_t h[10];
  uint32_t n;
  for (uint32_t qi = 0; qi < d.nq; qi++) {
    assert_rc(jiwa_vindex_search(v, d.q + qi * D, 10, NULL, h, &n), 0);
    for (uint32_t i = 0; i < n; i++)
      assert_true(h[i].id < N);
  }
  assert_rc(jiwa_vindex_check(v), JIWA_EPROTO);
  jiwa_vindex_t *th = (jiwa_vindex_t *)1;
  assert_rc(jiwa_vindex_thaw(v, &th), JIWA_EPROTO);
  assert_null(th);
  jiwa_vindex_free(v);

  /* a flipped vector bit only fails the body checksum */
  memcpy(buf, img, len);
  buf[192 + 13] ^= 1;
  assert_rc(jiwa_vindex_view(buf, len, &v), 0);
  assert_rc(jiwa_vindex_check(v), JIWA_EPROTO);
  jiwa_vindex_free(v);

  free(buf);
  free(img);
  jiwa_vindex_free(idx);
  data_free(&d);
}

/* ---- filters ------------------------------------------------------------- */

static void test_filters(void **state) {
  (void)state;
  enum { N = 20000, D = 16, K = 10 };
  data_t d;
  data_make(&d, N, D, 100, 50, 21);
  jiwa_vindex_t *idx = build(&d, 16, 100, 0);
  pred_t pr = {100, NULL};
  jiwa_vindex_trace_t tr;
  jiwa_vindex_query_t o;

  /* 1% predicate, selectivity unknown: measured while walking */
  memset(&o, 0, sizeof o);
  o.accept = accept_mod;
  o.ud = &pr;
  o.trace = &tr;
  double r1 = recall(&d, idx, K, &o, 100);
  print_message("1%% predicate, no hint: recall %.4f path %d\n", r1, tr.path);
  assert_true(r1 >= 0.95);

  /* with a hint it goes straight to the exact scan of accepted slots */
  o.selectivity = 0.01f;
  assert_true(recall(&d, idx, K, &o, 100) == 1.0);
  assert_int_equal(tr.path, JIWA_VINDEX_PATH_EXACT);

  /* the same set as a bitmap (counted up front) */
  uint64_t *bm = calloc((N + 63) / 64, sizeof *bm);
  for (uint32_t i = 0; i < N; i += 100)
    bm[i / 64] |= UINT64_C(1) << (i % 64);
  memset(&o, 0, sizeof o);
  o.allow = bm;
  o.allow_bits = N;
  o.trace = &tr;
  assert_true(recall(&d, idx, K, &o, 100) == 1.0);
  assert_int_equal(tr.path, JIWA_VINDEX_PATH_EXACT);

  /* a broad filter (50%) walks the graph and still returns only accepted */
  pr.mod = 2;
  memset(&o, 0, sizeof o);
  o.accept = accept_mod;
  o.ud = &pr;
  o.trace = &tr;
  double r2 = recall(&d, idx, K, &o, 2);
  print_message("50%% predicate: recall %.4f path %d\n", r2, tr.path);
  assert_true(r2 >= 0.95);
  assert_int_equal(tr.path, JIWA_VINDEX_PATH_GRAPH);

  /* fewer accepted than k: all of them, nothing else */
  pr.mod = 7000; /* ids 0, 7000, 14000 */
  jiwa_vindex_hit_t h[K];
  uint32_t n;
  assert_rc(jiwa_vindex_search(idx, d.q, K, &o, h, &n), 0);
  assert_int_equal(n, 3);
  for (uint32_t i = 0; i < n; i++)
    assert_int_equal(h[i].id % 7000, 0);
  /* bitmap shorter than the index: ids past it are rejected */
  memset(&o, 0, sizeof o);
  o.allow = bm;
  o.allow_bits = 150;
  assert_rc(jiwa_vindex_search(idx, d.q, K, &o, h, &n), 0);
  assert_int_equal(n, 2);
  /* bitmap and predicate combine (AND) */
  o.allow_bits = N;
  o.accept = accept_mod;
  o.ud = &pr;
  pr.mod = 200;
  assert_rc(jiwa_vindex_search(idx, d.q, K, &o, h, &n), 0);
  assert_int_equal(n, K);
  for (uint32_t i = 0; i < n; i++)
    assert_int_equal(h[i].id % 200, 0);
  /* filters and tombstones together */
  for (uint32_t i = 0; i < N; i += 400)
    assert_rc(jiwa_vindex_delete(idx, i), 0);
  assert_rc(jiwa_vindex_search(idx, d.q, K, &o, h, &n), 0);
  assert_int_equal(n, K);
  for (uint32_t i = 0; i < n; i++) {
    assert_int_equal(h[i].id % 200, 0);
    assert_int_not_equal(h[i].id % 400, 0);
  }
  free(bm);
  jiwa_vindex_free(idx);
  data_free(&d);
}

/* ---- concurrency: many searches on one view ------------------------------ */

typedef struct {
  const jiwa_vindex_t *idx;
  const data_t *d;
  const uint32_t *expect; /* nq * 10 ids */
  int bad;
} th_arg_t;

static void *searcher(void *p) {
  th_arg_t *a = p;
  jiwa_vindex_hit_t h[10];
  uint32_t n;
  for (int rep = 0; rep < 5; rep++)
    for (uint32_t qi = 0; qi < a->d->nq; qi++) {
      if (jiwa_vindex_search(a->idx, a->d->q + (size_t)qi * a->d->dim, 10, NULL,
                             h, &n) != 0 ||
          n != 10)
        a->bad++;
      else
        for (uint32_t i = 0; i < 10; i++)
          a->bad += h[i].id != a->expect[qi * 10 + i];
    }
  return NULL;
}

static void test_concurrent_search(void **state) {
  (void)state;
  enum { T = 4 };
  data_t d;
  data_make(&d, 5000, 16, 50, 40, 8);
  jiwa_vindex_t *idx = build(&d, 12, 60, 0);
  size_t len;
  uint8_t *img = save_image(idx, &len);
  jiwa_vindex_t *v;
  assert_rc(jiwa_vindex_view(img, len, &v), 0);
  uint32_t *expect = malloc(d.nq * 10 * sizeof *expect);
  jiwa_vindex_hit_t h[10];
  uint32_t n;
  for (uint32_t qi = 0; qi < d.nq; qi++) {
    assert_rc(jiwa_vindex_search(v, d.q + qi * 16, 10, NULL, h, &n), 0);
    for (uint32_t i = 0; i < 10; i++)
      expect[qi * 10 + i] = h[i].id;
  }
  pthread_t t[T];
  th_arg_t a[T];
  for (int i = 0; i < T; i++) {
    a[i] = (th_arg_t){v, &d, expect, 0};
    assert_int_equal(pthread_create(&t[i], NULL, searcher, &a[i]), 0);
  }
  for (int i = 0; i < T; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(a[i].bad, 0);
  }
  free(expect);
  jiwa_vindex_free(v);
  free(img);
  jiwa_vindex_free(idx);
  data_free(&d);
}

/* ---- recall on 100k clustered vectors ----------------------------------- */

static void test_recall_100k(void **state) {
  (void)state;
  enum { N = 100000, D = 32, K = 10 };
  data_t d;
  data_make(&d, N, D, 1000, 200, 1);
  jiwa_vindex_t *idx = build(&d, 16, 100, 4096);

  jiwa_vindex_query_t o;
  memset(&o, 0, sizeof o);
  jiwa_vindex_trace_t tr;
  o.trace = &tr;
  double r = recall(&d, idx, K, &o, 0);
  print_message("100k x %d recall@10 (ef 64): %.4f\n", D, r);
  assert_int_equal(tr.path, JIWA_VINDEX_PATH_GRAPH);
  assert_true(r >= 0.95);

  /* selective predicate (2%), no hint: the walk, or its fallback */
  pred_t pr = {50, NULL};
  o.accept = accept_mod;
  o.ud = &pr;
  double rf = recall(&d, idx, K, &o, 50);
  print_message("with a 2%% filter: %.4f (path %d)\n", rf, tr.path);
  assert_true(rf >= 0.95);
  /* 10% filter walks the graph */
  pr.mod = 10;
  double rf2 = recall(&d, idx, K, &o, 10);
  print_message("with a 10%% filter: %.4f (path %d)\n", rf2, tr.path);
  assert_true(rf2 >= 0.95);

  /* the filtered walk itself: a (wrong) hint of 1.0 makes the walk look
   * cheaper than the scan, so a 5% filter is answered by the graph */
  pr.mod = 20;
  o.selectivity = 1.0f;
  double rw = recall(&d, idx, K, &o, 20);
  print_message("5%% filter, walk: %.4f (path %d, %u visits)\n", rw, tr.path,
                tr.visited);
  assert_int_not_equal(tr.path, JIWA_VINDEX_PATH_EXACT);
  assert_true(rw >= 0.95);

  /* and the same from an in-place view of the saved image */
  size_t len;
  uint8_t *img = save_image(idx, &len);
  jiwa_vindex_t *v;
  assert_rc(jiwa_vindex_view(img, len, &v), 0);
  memset(&o, 0, sizeof o);
  double rv = recall(&d, v, K, &o, 0);
  assert_true(rv == r);
  jiwa_vindex_free(v);
  free(img);
  jiwa_vindex_free(idx);
  data_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_params),
      cmocka_unit_test(test_crud),
      cmocka_unit_test(test_delete_heavy),
      cmocka_unit_test(test_save_view_thaw),
      cmocka_unit_test(test_hostile_images),
      cmocka_unit_test(test_filters),
      cmocka_unit_test(test_concurrent_search),
      cmocka_unit_test(test_recall_100k),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
