/*
 * Unit tests for vector collections (runtime/store/jiwa_coll.c): CRUD,
 * filters, persistence with the image opened in place, embedder/dimension
 * mismatch, update without rebuild, atomic bulk import, near-duplicates,
 * stats, check, and recall@10 against brute force on 20k seeded clustered
 * vectors with and without a selective filter.
 *
 * Each test owns a store in its own mkdtemp directory (fast = no fsync).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jiwa/mp.h"
#include "jiwa_coll.h"

#define assert_rc(expr, want)                                                  \
  do {                                                                         \
    int rc_ = (expr);                                                          \
    int want_ = (want);                                                        \
    if (rc_ != want_) {                                                        \
      print_error("%s\n  got %d (%s), want %d (%s)\n  errmsg: %s\n", #expr,    \
                  rc_, jiwa_err_name(rc_), want_, jiwa_err_name(want_),        \
                  jiwa_coll_errmsg());                                         \
      fail();                                                                  \
    }                                                                          \
  } while (0)

#define assert_has(hay, needle)                                                \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_))                                                \
      fail_msg("expected \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)");           \
  } while (0)

/* ---- helpers ------------------------------------------------------------ */

typedef struct {
  char dir[512];
  jiwa_store_t *s;
} fix_t;

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w) {
  (void)st;
  (void)f;
  (void)w;
  return remove(p);
}

static jiwa_store_t *store_open(const char *dir) {
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  cfg.path = dir;
  cfg.fast = 1;
  jiwa_store_t *s = NULL;
  int rc = jiwa_store_open(&cfg, &s);
  if (rc)
    fail_msg("store open: %s", jiwa_store_errmsg());
  return s;
}

static int setup(void **state) {
  fix_t *f = calloc(1, sizeof *f);
  const char *t = getenv("TMPDIR");
  snprintf(f->dir, sizeof f->dir, "%s/jiwa-coll-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(f->dir))
    return -1;
  f->s = store_open(f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fix_t *f = *state;
  if (f->s)
    assert_rc(jiwa_store_close(f->s), 0);
  nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

/* A hash-embedder collection of dimension @p dim. */
static jiwa_coll_t *open_hash(jiwa_store_t *s, const char *name, uint32_t dim) {
  jiwa_embed_t *e = NULL;
  assert_rc(jiwa_coll_embedder_new("hash", dim, &e), 0);
  jiwa_coll_def_t d;
  jiwa_coll_def_init(&d);
  d.embedder = e;
  d.own_embedder = 1;
  jiwa_coll_t *c = NULL;
  assert_rc(jiwa_coll_open(s, name, &d, &c), 0);
  return c;
}

/* A vectors-only collection. */
static int open_vec(jiwa_store_t *s, const char *name, uint32_t dim,
                    uint32_t efc, jiwa_coll_t **out) {
  jiwa_coll_def_t d;
  jiwa_coll_def_init(&d);
  d.embedder_name = "external:test";
  d.dim = dim;
  d.ef_construction = efc;
  return jiwa_coll_open(s, name, &d, out);
}

/* Metadata map from "k=v" pairs. Caller frees *out. */
static size_t meta(void **out, int n, ...) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, (size_t)n);
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) {
    const char *k = va_arg(ap, const char *);
    const char *v = va_arg(ap, const char *);
    jiwa_mp_put_kv_str(&w.pk, k, v);
  }
  va_end(ap);
  *out = malloc(w.sbuf.size);
  memcpy(*out, w.sbuf.data, w.sbuf.size);
  size_t len = w.sbuf.size;
  jiwa_mp_writer_free(&w);
  return len;
}

static int hit_has(const jiwa_coll_result_t *r, const char *id) {
  for (uint32_t i = 0; i < r->n; i++)
    if (strcmp(r->hits[i].id, id) == 0)
      return 1;
  return 0;
}

static uint64_t count_of(jiwa_coll_t *c) {
  uint64_t n = 0;
  assert_rc(jiwa_coll_count(c, &n), 0);
  return n;
}

/* Seeded clustered data. */
static uint64_t sm(uint64_t *s) {
  uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}
static double gauss(uint64_t *s) {
  double u = ((double)(sm(s) >> 11) + 0.5) / 9007199254740992.0;
  double v = ((double)(sm(s) >> 11) + 0.5) / 9007199254740992.0;
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}
static void clustered(float *out, uint32_t n, uint32_t dim, uint32_t nc,
                      uint64_t seed, uint64_t stream) {
  uint64_t s = seed;
  float *cen = malloc((size_t)nc * dim * sizeof *cen);
  for (size_t i = 0; i < (size_t)nc * dim; i++)
    cen[i] = (float)gauss(&s);
  s = seed * 31 + stream * 7919 + 1;
  for (uint32_t i = 0; i < n; i++) {
    const float *c = cen + (sm(&s) % nc) * dim;
    double ss = 0;
    for (uint32_t d = 0; d < dim; d++) {
      out[(size_t)i * dim + d] = c[d] + (float)(gauss(&s) * 0.35);
      ss += (double)out[(size_t)i * dim + d] * out[(size_t)i * dim + d];
    }
    for (uint32_t d = 0; d < dim; d++)
      out[(size_t)i * dim + d] /= (float)sqrt(ss);
  }
  free(cen);
}

/* ---- CRUD ---------------------------------------------------------------- */

static void test_crud(void **state) {
  fix_t *f = *state;
  jiwa_coll_t *c = open_hash(f->s, "cultural", 256);
  assert_string_equal(jiwa_coll_embedder_name(c), "hash-v1");
  assert_int_equal(jiwa_coll_dim(c), 256);
  assert_int_equal(count_of(c), 0);

  /* empty collection: a search answers nothing */
  jiwa_coll_query_t q = JIWA_COLL_QUERY_INIT;
  q.text = "visa";
  q.k = 3;
  jiwa_coll_result_t r;
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  assert_int_equal(r.n, 0);
  jiwa_coll_result_free(&r);

  void *m1, *m2, *m3;
  size_t l1 = meta(&m1, 3, "lang", "en", "category", "visa", "title", "KITAS");
  size_t l2 = meta(&m2, 2, "lang", "id", "category", "tax");
  size_t l3 = meta(&m3, 2, "lang", "it", "category", "food");
  jiwa_coll_record_t recs[] = {
      {.id = "kitas", .text = "How long does KITAS processing take in Bali?",
       .meta = m1, .meta_len = l1},
      {.id = "pajak", .text = "Berapa pajak penghasilan untuk PT PMA?",
       .meta = m2, .meta_len = l2},
      {.id = "pasta", .text = "Dove mangiare la migliore pasta a Ubud?",
       .meta = m3, .meta_len = l3},
  };
  assert_rc(jiwa_coll_upsert(c, recs, 3, NULL, NULL, NULL), 0);
  assert_int_equal(count_of(c), 3);

  /* get by id: text and metadata as stored */
  assert_rc(jiwa_coll_get(c, "kitas", 0,
                          JIWA_COLL_WITH_TEXT | JIWA_COLL_WITH_META |
                              JIWA_COLL_WITH_VEC,
                          &r),
            0);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.hits[0].id, "kitas");
  assert_string_equal(r.hits[0].text,
                      "How long does KITAS processing take in Bali?");
  assert_int_equal(r.hits[0].meta_len, l1);
  assert_memory_equal(r.hits[0].meta, m1, l1);
  assert_non_null(r.hits[0].vec);
  assert_int_equal(r.hits[0].dim, 256);
  jiwa_coll_result_free(&r);
  assert_rc(jiwa_coll_get(c, "nope", 0, 0, &r), JIWA_ENOENT);

  /* search by text: the lexically closest record comes first */
  q.text = "KITAS processing time";
  q.flags = JIWA_COLL_WITH_TEXT | JIWA_COLL_WITH_META;
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  assert_true(r.n >= 1);
  assert_string_equal(r.hits[0].id, "kitas");
  assert_true(r.hits[0].score > 0.2f);
  assert_has(r.hits[0].text, "KITAS");
  assert_non_null(r.hits[0].meta);
  jiwa_coll_result_free(&r);

  /* replace: new text, same id, count unchanged */
  jiwa_coll_record_t upd = {.id = "pasta",
                            .text = "Harga nasi goreng di Canggu",
                            .meta = m3, .meta_len = l3};
  assert_rc(jiwa_coll_upsert(c, &upd, 1, NULL, NULL, NULL), 0);
  assert_int_equal(count_of(c), 3);
  assert_rc(jiwa_coll_get(c, "pasta", 5, JIWA_COLL_WITH_TEXT, &r), 0);
  assert_string_equal(r.hits[0].text, "Harga nasi goreng di Canggu");
  jiwa_coll_result_free(&r);

  /* delete: gone from get, count and search; missing ids are skipped */
  const char *del[] = {"pajak", "never-was"};
  size_t ndel = 99;
  assert_rc(jiwa_coll_delete(c, del, NULL, 2, &ndel, NULL, NULL, NULL), 0);
  assert_int_equal(ndel, 1);
  assert_int_equal(count_of(c), 2);
  assert_rc(jiwa_coll_get(c, "pajak", 0, 0, &r), JIWA_ENOENT);
  q.text = "pajak penghasilan PT PMA";
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  assert_false(hit_has(&r, "pajak"));
  jiwa_coll_result_free(&r);

  /* bad input is refused with a sentence */
  jiwa_coll_record_t bad = {.id = "", .text = "x"};
  assert_rc(jiwa_coll_upsert(c, &bad, 1, NULL, NULL, NULL), JIWA_EINVAL);
  assert_has(jiwa_coll_errmsg(), "id must be");
  jiwa_coll_record_t words = {.id = "w", .text = "!!! ???"};
  assert_rc(jiwa_coll_upsert(c, &words, 1, NULL, NULL, NULL), JIWA_EINVAL);
  assert_has(jiwa_coll_errmsg(), "no words");
  q.k = 0;
  assert_rc(jiwa_coll_search(c, &q, &r), JIWA_EINVAL);
  q.k = 3;
  q.text = "   ";
  assert_rc(jiwa_coll_search(c, &q, &r), 0); /* no words: no hits */
  assert_int_equal(r.n, 0);

  assert_rc(jiwa_coll_check(c), 0);
  jiwa_coll_close(c);
  free(m1);
  free(m2);
  free(m3);
}

/* ---- filters ------------------------------------------------------------- */

static void test_filters(void **state) {
  fix_t *f = *state;
  const uint32_t dim = 16, n = 6000;
  jiwa_coll_t *c = NULL;
  assert_rc(open_vec(f->s, "insights", dim, 64, &c), 0);
  float *v = malloc((size_t)n * dim * sizeof *v);
  clustered(v, n, dim, 20, 7, 0);
  static const char *langs[] = {"en", "id", "it"};
  static const char *cats[] = {"visa", "tax", "food", "culture"};
  static const char *types[] = {"insight", "faq"};
  static const char *emos[] = {"calm", "anxious", "happy"};
  jiwa_coll_record_t *recs = calloc(n, sizeof *recs);
  void **metas = calloc(n, sizeof *metas);
  char (*ids)[16] = calloc(n, 16);
  for (uint32_t i = 0; i < n; i++) {
    snprintf(ids[i], 16, "r%u", i);
    /* "rare" (1 in 200) is the selective filter; "topic" any string field */
    size_t ml = meta(&metas[i], 6, "lang", langs[i % 3], "category",
                     cats[i % 4], "type", types[i % 2], "emotion",
                     emos[i % 3], "topic", i % 200 == 7 ? "rare" : "common",
                     "weird field", i % 5 == 0 ? "x" : "y");
    recs[i] = (jiwa_coll_record_t){.id = ids[i], .meta = metas[i],
                                   .meta_len = ml,
                                   .vec = v + (size_t)i * dim};
  }
  assert_rc(jiwa_coll_import(c, recs, n, NULL, NULL, NULL), 0);
  assert_int_equal(count_of(c), n);

  jiwa_coll_query_t q = JIWA_COLL_QUERY_INIT;
  q.vec = v + 123 * dim;
  q.dim = dim;
  q.k = 10;
  q.min_score = -1;
  q.flags = JIWA_COLL_WITH_META;
  jiwa_coll_result_t r;

  /* each field alone, then AND, then OR within a field */
  const char *it[] = {"it"}, *tax[] = {"tax"}, *faq[] = {"faq"},
             *anx[] = {"anxious"}, *rare[] = {"rare"}, *x[] = {"x"},
             *enid[] = {"en", "id"};
  struct {
    jiwa_coll_filter_t fl[3];
    uint32_t n;
  } cases[] = {
      {{{"lang", it, 1}}, 1},
      {{{"category", tax, 1}}, 1},
      {{{"type", faq, 1}}, 1},
      {{{"emotion", anx, 1}}, 1},
      {{{"weird field", x, 1}}, 1},
      {{{"lang", it, 1}, {"category", tax, 1}, {"type", faq, 1}}, 3},
      {{{"lang", enid, 2}, {"emotion", anx, 1}}, 2},
      {{{"topic", rare, 1}}, 1},
  };
  for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
    q.filters = cases[ci].fl;
    q.nfilters = cases[ci].n;
    assert_rc(jiwa_coll_search(c, &q, &r), 0);
    /* the rarest filter matches 30 records: still 10 hits */
    assert_int_equal(r.n, 10);
    for (uint32_t h = 0; h < r.n; h++) {
      for (uint32_t fi = 0; fi < q.nfilters; fi++) {
        const char *s;
        size_t sl;
        assert_rc(jiwa_mp_get_str(r.hits[h].meta, r.hits[h].meta_len,
                                  q.filters[fi].field, &s, &sl),
                  0);
        int ok = 0;
        for (uint32_t vi = 0; vi < q.filters[fi].nvalues; vi++)
          ok |= sl == strlen(q.filters[fi].values[vi]) &&
                memcmp(s, q.filters[fi].values[vi], sl) == 0;
        if (!ok)
          fail_msg("case %zu hit %s: %s=%.*s breaks the filter", ci,
                   r.hits[h].id, q.filters[fi].field, (int)sl, s);
      }
      if (h)
        assert_true(r.hits[h - 1].score >= r.hits[h].score);
    }
    jiwa_coll_result_free(&r);
  }
  /* a value or field nobody has: nothing */
  const char *de[] = {"de"};
  jiwa_coll_filter_t none[] = {{"lang", de, 1}};
  q.filters = none;
  q.nfilters = 1;
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  assert_int_equal(r.n, 0);
  jiwa_coll_filter_t nofield[] = {{"colour", de, 1}};
  q.filters = nofield;
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  assert_int_equal(r.n, 0);
  /* a bad filter is refused */
  jiwa_coll_filter_t empty[] = {{"lang", de, 0}};
  q.filters = empty;
  assert_rc(jiwa_coll_search(c, &q, &r), JIWA_EINVAL);

  /* stats: lang x category from the postings */
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  assert_rc(jiwa_coll_stats_pack(c, &w.pk), 0);
  int64_t cnt = 0;
  assert_rc(jiwa_mp_get_int(w.sbuf.data, w.sbuf.size, "count", &cnt), 0);
  assert_int_equal(cnt, n);
  jiwa_mp_reader_t at;
  assert_rc(jiwa_mp_map_find(w.sbuf.data, w.sbuf.size, "langs", &at), 0);
  jiwa_mp_reader_t en;
  assert_rc(jiwa_mp_map_find(at.p, jiwa_mp_reader_left(&at), "en", &en), 0);
  assert_rc(jiwa_mp_get_int(en.p, jiwa_mp_reader_left(&en), "count", &cnt), 0);
  assert_int_equal(cnt, n / 3);
  jiwa_mp_reader_t cats_at;
  assert_rc(jiwa_mp_map_find(en.p, jiwa_mp_reader_left(&en), "categories",
                             &cats_at),
            0);
  /* en is i%3==0, visa is i%4==0: i%12==0 */
  assert_rc(jiwa_mp_get_int(cats_at.p, jiwa_mp_reader_left(&cats_at), "visa",
                            &cnt),
            0);
  assert_int_equal(cnt, n / 12);
  jiwa_mp_writer_free(&w);

  assert_rc(jiwa_coll_check(c), 0);
  jiwa_coll_close(c);
  for (uint32_t i = 0; i < n; i++)
    free(metas[i]);
  free(metas);
  free(recs);
  free(ids);
  free(v);
}

/* ---- persistence, in place --------------------------------------------------- */

static void test_persist(void **state) {
  fix_t *f = *state;
  const uint32_t dim = 32, n = 3000;
  jiwa_coll_t *c = NULL;
  assert_rc(open_vec(f->s, "golden", dim, 64, &c), 0);
  float *v = malloc((size_t)n * dim * sizeof *v);
  clustered(v, n, dim, 10, 11, 0);
  jiwa_coll_record_t *recs = calloc(n, sizeof *recs);
  char (*ids)[16] = calloc(n, 16);
  for (uint32_t i = 0; i < n; i++) {
    snprintf(ids[i], 16, "g%u", i);
    recs[i] = (jiwa_coll_record_t){.id = ids[i], .text = ids[i],
                                   .vec = v + (size_t)i * dim};
  }
  assert_rc(jiwa_coll_import(c, recs, n, NULL, NULL, NULL), 0);
  const char *gone[] = {"g5"};
  assert_rc(jiwa_coll_delete(c, gone, NULL, 1, NULL, NULL, NULL, NULL), 0);
  jiwa_coll_close(c);
  assert_rc(jiwa_store_close(f->s), 0);

  /* restart: a fresh store and collection handle */
  f->s = store_open(f->dir);
  assert_rc(open_vec(f->s, "golden", dim, 0, &c), 0);
  assert_int_equal(count_of(c), n - 1);
  jiwa_coll_query_t q = JIWA_COLL_QUERY_INIT;
  q.vec = v + 42 * dim;
  q.dim = dim;
  q.k = 5;
  q.flags = JIWA_COLL_WITH_TEXT;
  jiwa_coll_result_t r;
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  assert_int_equal(r.n, 5);
  assert_string_equal(r.hits[0].id, "g42");
  assert_string_equal(r.hits[0].text, "g42");
  assert_true(r.hits[0].score > 0.999f);
  jiwa_coll_result_free(&r);
  q.vec = v + 5 * dim; /* the deleted one stays deleted */
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  assert_false(hit_has(&r, "g5"));
  jiwa_coll_result_free(&r);

  /* the image was searched straight from the memory map */
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  assert_rc(jiwa_coll_stats_pack(c, &w.pk), 0);
  int inplace = 0;
  assert_rc(jiwa_mp_get_bool(w.sbuf.data, w.sbuf.size, "in_place", &inplace),
            0);
  assert_true(inplace);
  jiwa_mp_writer_free(&w);

  /* and writes after a restart build on it */
  jiwa_coll_record_t one = {.id = "new", .vec = v + 7 * dim};
  assert_rc(jiwa_coll_upsert(c, &one, 1, NULL, NULL, NULL), 0);
  assert_int_equal(count_of(c), n);
  assert_rc(jiwa_coll_check(c), 0);

  /* the stored image passes the standalone verifier */
  void *img = NULL;
  size_t il = 0;
  assert_rc(jiwa_store_fetch(f->s, JIWA_STORE_DB_VINDEX, "golden", 6, NULL,
                             &img, &il),
            0);
  assert_rc(jiwa_coll_image_verify(img, il), 0);
  ((uint8_t *)img)[il / 2] ^= 0x55; /* a flipped byte in the body */
  assert_true(jiwa_coll_image_verify(img, il) != 0);
  free(img);

  jiwa_coll_close(c);
  free(recs);
  free(ids);
  free(v);
}

/* ---- mismatch ----------------------------------------------------------------- */

static void test_mismatch(void **state) {
  fix_t *f = *state;
  jiwa_coll_t *c = open_hash(f->s, "cultural", 128);
  jiwa_coll_close(c);
  /* another dimension */
  jiwa_embed_t *e = NULL;
  assert_rc(jiwa_coll_embedder_new("hash", 64, &e), 0);
  jiwa_coll_def_t d;
  jiwa_coll_def_init(&d);
  d.embedder = e;
  d.own_embedder = 1;
  assert_rc(jiwa_coll_open(f->s, "cultural", &d, &c), JIWA_ECONFIG);
  assert_null(c);
  assert_has(jiwa_coll_errmsg(), "cultural");
  assert_has(jiwa_coll_errmsg(), "hash-v1 (dim 128)");
  assert_has(jiwa_coll_errmsg(), "dim 64");
  assert_has(jiwa_coll_errmsg(), "--rebuild");
  jiwa_embed_destroy(e); /* still ours after a failed open */
  /* another embedder */
  assert_rc(open_vec(f->s, "cultural", 128, 0, &c), JIWA_ECONFIG);
  assert_has(jiwa_coll_errmsg(), "external:test");
  /* an unknown embedder kind and a missing collection */
  assert_rc(jiwa_coll_embedder_new("word2vec", 64, &e), JIWA_ENOENT);
  assert_has(jiwa_coll_errmsg(), "hash");
  jiwa_coll_def_init(&d);
  d.embedder_name = "x";
  d.dim = 8;
  d.create = 0;
  assert_rc(jiwa_coll_open(f->s, "missing", &d, &c), JIWA_ENOENT);
  d.create = 1;
  assert_rc(jiwa_coll_open(f->s, "Bad Name", &d, &c), JIWA_EINVAL);
  /* drop, then the other embedder is welcome */
  assert_rc(jiwa_coll_drop(f->s, "cultural"), 0);
  assert_rc(open_vec(f->s, "cultural", 128, 0, &c), 0);
  jiwa_coll_close(c);
}

/* ---- update without rebuild --------------------------------------------------- */

static void test_update(void **state) {
  fix_t *f = *state;
  const uint32_t dim = 16, n = 5000;
  jiwa_coll_t *c = NULL;
  assert_rc(open_vec(f->s, "upd", dim, 64, &c), 0);
  float *v = malloc((size_t)(n + 1) * dim * sizeof *v);
  clustered(v, n + 1, dim, 8, 3, 0);
  jiwa_coll_record_t *recs = calloc(n, sizeof *recs);
  char (*ids)[16] = calloc(n, 16);
  for (uint32_t i = 0; i < n; i++) {
    snprintf(ids[i], 16, "u%u", i);
    recs[i] = (jiwa_coll_record_t){.id = ids[i], .vec = v + (size_t)i * dim};
  }
  assert_rc(jiwa_coll_import(c, recs, n, NULL, NULL, NULL), 0);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  assert_rc(jiwa_coll_stats_pack(c, &w.pk), 0);
  int64_t slots0 = 0;
  jiwa_mp_get_int(w.sbuf.data, w.sbuf.size, "slots", &slots0);
  assert_int_equal(slots0, n);

  /* move u10 to a new vector: found there, no longer at the old one, and
   * it kept its slot (no rebuild, no new slot) */
  const float *nv = v + (size_t)n * dim;
  jiwa_coll_record_t upd = {.id = "u10", .vec = nv};
  assert_rc(jiwa_coll_upsert(c, &upd, 1, NULL, NULL, NULL), 0);
  jiwa_coll_query_t q = JIWA_COLL_QUERY_INIT;
  q.vec = nv;
  q.dim = dim;
  q.k = 1;
  jiwa_coll_result_t r;
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  assert_string_equal(r.hits[0].id, "u10");
  assert_true(r.hits[0].score > 0.999f);
  jiwa_coll_result_free(&r);
  q.vec = v + 10 * dim;
  q.k = 3;
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  if (r.n && strcmp(r.hits[0].id, "u10") == 0)
    assert_true(r.hits[0].score < 0.999f);
  jiwa_coll_result_free(&r);
  w.sbuf.size = 0;
  assert_rc(jiwa_coll_stats_pack(c, &w.pk), 0);
  int64_t slots1 = 0, cnt = 0;
  jiwa_mp_get_int(w.sbuf.data, w.sbuf.size, "slots", &slots1);
  jiwa_mp_get_int(w.sbuf.data, w.sbuf.size, "count", &cnt);
  assert_int_equal(slots1, slots0);
  assert_int_equal(cnt, n);
  /* a delete frees a slot that the next insert reuses */
  const char *gone[] = {"u20"};
  assert_rc(jiwa_coll_delete(c, gone, NULL, 1, NULL, NULL, NULL, NULL), 0);
  jiwa_coll_record_t add = {.id = "fresh", .vec = v + 20 * dim};
  assert_rc(jiwa_coll_upsert(c, &add, 1, NULL, NULL, NULL), 0);
  w.sbuf.size = 0;
  assert_rc(jiwa_coll_stats_pack(c, &w.pk), 0);
  jiwa_mp_get_int(w.sbuf.data, w.sbuf.size, "slots", &slots1);
  assert_int_equal(slots1, slots0);
  jiwa_mp_writer_free(&w);
  assert_rc(jiwa_coll_check(c), 0);
  jiwa_coll_close(c);
  free(recs);
  free(ids);
  free(v);
}

/* ---- bulk import ---------------------------------------------------------- */

typedef struct {
  int calls;
  size_t last_done, last_total;
  char phases[64];
} prog_t;

static void on_progress(const char *phase, size_t done, size_t total,
                        void *ud) {
  prog_t *p = ud;
  p->calls++;
  p->last_done = done;
  p->last_total = total;
  if (!strstr(p->phases, phase) && strlen(p->phases) + strlen(phase) + 2 <
                                       sizeof p->phases) {
    strcat(p->phases, phase);
    strcat(p->phases, ",");
  }
}

static void test_import(void **state) {
  fix_t *f = *state;
  jiwa_coll_t *c = open_hash(f->s, "kb", 64);
  enum { N = 200 };
  jiwa_coll_record_t recs[N];
  char ids[N][16], texts[N][64];
  static const uint8_t not_a_map[] = {0x93, 1, 2, 3};
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], 16, "k%d", i);
    snprintf(texts[i], 64, "knowledge item %d about topic %d", i, i % 7);
    recs[i] = (jiwa_coll_record_t){.id = ids[i], .text = texts[i]};
  }
  /* one bad record: nothing is written */
  recs[150].meta = not_a_map;
  recs[150].meta_len = sizeof not_a_map;
  size_t bad = 0;
  prog_t p;
  memset(&p, 0, sizeof p);
  assert_rc(jiwa_coll_import(c, recs, N, on_progress, &p, &bad),
            JIWA_EINVAL);
  assert_int_equal(bad, 150);
  assert_has(jiwa_coll_errmsg(), "record 150");
  assert_has(jiwa_coll_errmsg(), "k150");
  assert_int_equal(count_of(c), 0);
  jiwa_coll_result_t r;
  assert_rc(jiwa_coll_get(c, "k0", 0, 0, &r), JIWA_ENOENT);
  /* also a record bad at the embedding stage */
  recs[150].meta = NULL;
  recs[150].meta_len = 0;
  recs[77].text = "...";
  assert_rc(jiwa_coll_import(c, recs, N, NULL, NULL, &bad), JIWA_EINVAL);
  assert_int_equal(bad, 77);
  assert_int_equal(count_of(c), 0);
  /* fixed: all in, with progress through every phase */
  recs[77].text = texts[77];
  memset(&p, 0, sizeof p);
  assert_rc(jiwa_coll_import(c, recs, N, on_progress, &p, &bad), 0);
  assert_int_equal(count_of(c), N);
  assert_true(p.calls >= 4);
  assert_has(p.phases, "validate");
  assert_has(p.phases, "embed");
  assert_has(p.phases, "index");
  assert_has(p.phases, "commit");
  assert_int_equal(p.last_done, N);
  assert_int_equal(p.last_total, N);
  assert_rc(jiwa_coll_get(c, "k199", 0, JIWA_COLL_WITH_TEXT, &r), 0);
  assert_string_equal(r.hits[0].text, texts[199]);
  jiwa_coll_result_free(&r);
  jiwa_coll_close(c);
}

/* ---- near-duplicates and min_score -------------------------------------------- */

static void test_dedup(void **state) {
  fix_t *f = *state;
  const uint32_t dim = 8;
  jiwa_coll_t *c = NULL;
  assert_rc(open_vec(f->s, "dups", dim, 0, &c), 0);
  float base[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  float near1[8] = {1, 0.01f, 0, 0, 0, 0, 0, 0};
  float near2[8] = {1, 0, 0.01f, 0, 0, 0, 0, 0};
  float other[8] = {0.8f, 0.6f, 0, 0, 0, 0, 0, 0};
  float far[8] = {-1, 0, 0, 0, 0, 0, 0, 0};
  jiwa_coll_record_t recs[] = {{.id = "a", .vec = base},
                               {.id = "a2", .vec = near1},
                               {.id = "a3", .vec = near2},
                               {.id = "b", .vec = other},
                               {.id = "z", .vec = far}};
  assert_rc(jiwa_coll_upsert(c, recs, 5, NULL, NULL, NULL), 0);
  jiwa_coll_query_t q = JIWA_COLL_QUERY_INIT;
  q.vec = base;
  q.dim = dim;
  q.k = 5;
  jiwa_coll_result_t r;
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  assert_int_equal(r.n, 4); /* "z" scores -1: below min_score 0 */
  jiwa_coll_result_free(&r);
  q.dedup = 0.99f;
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  assert_int_equal(r.n, 2);
  assert_true(hit_has(&r, "b"));
  jiwa_coll_result_free(&r);
  q.dedup = 0;
  q.min_score = 0.9f;
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  assert_int_equal(r.n, 3);
  assert_false(hit_has(&r, "b"));
  jiwa_coll_result_free(&r);
  q.min_score = -1;
  assert_rc(jiwa_coll_search(c, &q, &r), 0);
  assert_int_equal(r.n, 5);
  jiwa_coll_result_free(&r);
  jiwa_coll_close(c);
}

/* ---- recall against brute force -------------------------------------------------- */

static int cmp_desc(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

static void test_recall(void **state) {
  fix_t *f = *state;
  const uint32_t dim = 24, n = 20000, nq = 100, k = 10;
  jiwa_coll_t *c = NULL;
  jiwa_coll_def_t d;
  jiwa_coll_def_init(&d);
  d.embedder_name = "external:test";
  d.dim = dim;
  d.ef_construction = 100;
  d.ef_search = 64;
  d.exact_threshold = 1000; /* make sure the graph answers */
  assert_rc(jiwa_coll_open(f->s, "recall", &d, &c), 0);
  float *v = malloc((size_t)n * dim * sizeof *v);
  float *qs = malloc((size_t)nq * dim * sizeof *qs);
  clustered(v, n, dim, 50, 2024, 0);
  clustered(qs, nq, dim, 50, 2024, 1);
  jiwa_coll_record_t *recs = calloc(n, sizeof *recs);
  void **metas = calloc(n, sizeof *metas);
  char (*ids)[16] = calloc(n, 16);
  for (uint32_t i = 0; i < n; i++) {
    snprintf(ids[i], 16, "%u", i);
    size_t ml = meta(&metas[i], 1, "tier", i % 50 == 3 ? "gold" : "base");
    recs[i] = (jiwa_coll_record_t){.id = ids[i], .meta = metas[i],
                                   .meta_len = ml,
                                   .vec = v + (size_t)i * dim};
  }
  assert_rc(jiwa_coll_import(c, recs, n, NULL, NULL, NULL), 0);
  const char *gold[] = {"gold"};
  jiwa_coll_filter_t fl[] = {{"tier", gold, 1}};
  float *sc = malloc(n * sizeof *sc);
  for (int filtered = 0; filtered < 2; filtered++) {
    uint32_t found = 0;
    for (uint32_t qi = 0; qi < nq; qi++) {
      const float *qv = qs + (size_t)qi * dim;
      uint32_t m = 0;
      for (uint32_t i = 0; i < n; i++) {
        if (filtered && i % 50 != 3)
          continue;
        float dot = 0;
        for (uint32_t dd = 0; dd < dim; dd++)
          dot += qv[dd] * v[(size_t)i * dim + dd];
        sc[m++] = dot;
      }
      qsort(sc, m, sizeof *sc, cmp_desc);
      float kth = sc[k - 1];
      jiwa_coll_query_t q = JIWA_COLL_QUERY_INIT;
      q.vec = qv;
      q.dim = dim;
      q.k = k;
      q.min_score = -1;
      if (filtered) {
        q.filters = fl;
        q.nfilters = 1;
      }
      jiwa_coll_result_t r;
      assert_rc(jiwa_coll_search(c, &q, &r), 0);
      assert_int_equal(r.n, k);
      for (uint32_t h = 0; h < r.n; h++) {
        if (filtered)
          assert_int_equal(atoi(r.hits[h].id) % 50, 3);
        found += r.hits[h].score >= kth - 1e-5f;
      }
      jiwa_coll_result_free(&r);
    }
    double recall = (double)found / (nq * k);
    print_message("recall@10 %s filter: %.4f\n", filtered ? "with" : "without",
                  recall);
    assert_true(recall >= 0.95);
  }
  free(sc);
  jiwa_coll_close(c);
  for (uint32_t i = 0; i < n; i++)
    free(metas[i]);
  free(metas);
  free(recs);
  free(ids);
  free(qs);
  free(v);
}

/* ---- decoder ----------------------------------------------------------------- */

static void test_record_decode(void **state) {
  (void)state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  float vec[2] = {1, 2};
  msgpack_pack_map(&w.pk, 3);
  jiwa_mp_put_kv_str(&w.pk, "text", "hi");
  jiwa_mp_put_str(&w.pk, "meta");
  msgpack_pack_map(&w.pk, 0);
  jiwa_mp_put_str(&w.pk, "vec");
  msgpack_pack_bin(&w.pk, 8);
  msgpack_pack_bin_body(&w.pk, vec, 8);
  jiwa_coll_recview_t rv;
  assert_rc(jiwa_coll_record_decode(w.sbuf.data, w.sbuf.size, 2, &rv), 0);
  assert_int_equal(rv.dim, 2);
  assert_int_equal(rv.text_len, 2);
  assert_rc(jiwa_coll_record_decode(w.sbuf.data, w.sbuf.size, 3, &rv),
            JIWA_EPROTO);
  for (size_t cut = 0; cut < w.sbuf.size; cut++)
    assert_rc(jiwa_coll_record_decode(w.sbuf.data, cut, 0, &rv), JIWA_EPROTO);
  jiwa_mp_writer_free(&w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
      cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_persist, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mismatch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_update, setup, teardown),
      cmocka_unit_test_setup_teardown(test_import, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recall, setup, teardown),
      cmocka_unit_test(test_record_decode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
