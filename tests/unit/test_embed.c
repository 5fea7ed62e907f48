/*
 * Unit tests for the embedder interface and the hash embedder
 * (runtime/text/jiwa_embed.c): argument checks, dimension, unit norm (zero
 * vector for texts without words), determinism (including a golden
 * fingerprint of the feature layout, which must not change without a new
 * embedder name), lexical similarity, per-language stemming, hostile input,
 * the batch API against single calls, a custom implementation through
 * jiwa_embed_new, and concurrent use from several threads.
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

#include "jiwa/errors.h"
#include "jiwa_embed.h"
#include "jiwa_textnorm.h"

#define GOLDEN_LAYOUT UINT64_C(0x4c4188eed2fd4686)

#define assert_rc(expr, want)                                                  \
  do {                                                                         \
    int rc_ = (expr), want_ = (want);                                          \
    if (rc_ != want_) {                                                        \
      print_error("%s\n  got %d (%s), want %d (%s)\n", #expr, rc_,             \
                  jiwa_err_name(rc_), want_, jiwa_err_name(want_));            \
      fail();                                                                  \
    }                                                                          \
  } while (0)

static jiwa_embed_t *g_emb;

static int setup(void **state) {
  (void)state;
  return jiwa_embed_hash_new(0, &g_emb);
}

static int teardown(void **state) {
  (void)state;
  jiwa_embed_destroy(g_emb);
  g_emb = NULL;
  return 0;
}

static float *vec(const char *text, const char *lang) {
  unsigned dim = jiwa_embed_dim(g_emb);
  float *v = malloc(dim * sizeof *v);
  assert_non_null(v);
  assert_rc(jiwa_embed_hash_text(g_emb, text, strlen(text), lang, v), 0);
  return v;
}

static double dot(const float *a, const float *b, unsigned dim) {
  double s = 0;
  for (unsigned i = 0; i < dim; i++)
    s += (double)a[i] * b[i];
  return s;
}

static double norm(const float *v, unsigned dim) {
  for (unsigned i = 0; i < dim; i++)
    if (!isfinite(v[i]))
      return NAN;
  return sqrt(dot(v, v, dim));
}

static double sim(const char *a, const char *b, const char *lang) {
  float *x = vec(a, lang), *y = vec(b, lang);
  double s = dot(x, y, jiwa_embed_dim(g_emb));
  free(x);
  free(y);
  return s;
}

#define assert_gt(a, b, what)                                                  \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (!(a_ > b_)) {                                                          \
      print_error("%s: %.4f is not > %.4f\n", (what), a_, b_);                 \
      fail();                                                                  \
    }                                                                          \
  } while (0)

static void test_normalize(void **state) {
  (void)state;
  char out[256];
  static const char in[] = "Perch\xC3\xA9 l\xE2\x80\x99Ufficio \xEF\xAC\x81ne "
                           "\xE2\x80\x94 OK! stra\xC3\x9F"
                           "e 'x' don't \xF0\x9F\x99\x8F "
                           "r\xC3\xA9sum\xC3\xA9 \xFF 42km";
  size_t n = jiwa_text_normalize(in, sizeof in - 1, out, sizeof out);
  assert_string_equal(out,
                      "perche l'ufficio fine ok strasse x don't resume 42km");
  assert_int_equal(n, strlen(out));
  /* whole tokens only when the buffer is short */
  n = jiwa_text_normalize(in, sizeof in - 1, out, 12);
  assert_string_equal(out, "perche");
  assert_int_equal(jiwa_text_normalize(in, sizeof in - 1, out, 0), 0);
}

/* ---- tests ------------------------------------------------------------------
 */

static void test_create_and_args(void **state) {
  (void)state;
  jiwa_embed_t *e = NULL;
  assert_rc(jiwa_embed_hash_new(0, NULL), JIWA_EINVAL);
  assert_rc(jiwa_embed_hash_new(JIWA_EMBED_MIN_DIM - 1, &e), JIWA_EINVAL);
  assert_rc(jiwa_embed_hash_new(JIWA_EMBED_MAX_DIM + 1, &e), JIWA_EINVAL);
  assert_null(e);
  assert_string_equal(jiwa_embed_name(g_emb), "hash-v1");
  assert_int_equal(jiwa_embed_dim(g_emb), 512);
  assert_rc(jiwa_embed_hash_new(64, &e), 0);
  assert_int_equal(jiwa_embed_dim(e), 64);

  float v[64];
  const char *texts[2] = {"a", NULL};
  size_t lens[2] = {1, 3};
  assert_rc(jiwa_embed_texts(NULL, texts, lens, 1, v), JIWA_EINVAL);
  assert_rc(jiwa_embed_texts(e, NULL, lens, 1, v), JIWA_EINVAL);
  assert_rc(jiwa_embed_texts(e, texts, lens, 1, NULL), JIWA_EINVAL);
  assert_rc(jiwa_embed_texts(e, texts, lens, 2, v), JIWA_EINVAL);
  assert_rc(jiwa_embed_texts(e, NULL, NULL, 0, NULL), 0);
  assert_rc(jiwa_embed_hash_text(e, NULL, 2, NULL, v), JIWA_EINVAL);
  assert_rc(jiwa_embed_hash_text(e, "x", 1, NULL, NULL), JIWA_EINVAL);
  assert_rc(jiwa_embed_hash_text(NULL, "x", 1, NULL, v), JIWA_EINVAL);
  /* a NULL text of length 0 is the empty text */
  lens[1] = 0;
  float two[128];
  assert_rc(jiwa_embed_texts(e, texts, lens, 2, two), 0);
  assert_true(fabs(norm(two, 64) - 1.0) < 1e-4);
  assert_true(norm(two + 64, 64) == 0.0);
  jiwa_embed_destroy(e);
  jiwa_embed_destroy(NULL);
}

static void test_norm_and_zero(void **state) {
  (void)state;
  static const char *const words[] = {
      "ciao", "How long does a KITAS take?", "berapa lama urus kitas?", "12345",
      "a",    "Perché? Perché no!",          "x y z x y z x y z"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    float *v = vec(words[i], NULL);
    double n = norm(v, 512);
    if (fabs(n - 1.0) > 1e-4) {
      print_error("\"%s\": norm %f\n", words[i], n);
      fail();
    }
    free(v);
  }
  static const char *const empty[] = {"", "   ", "🙏🙏", "?!... :-)", "\xFF\xFE"};
  for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
    float *v = vec(empty[i], NULL);
    assert_true(norm(v, 512) == 0.0);
    free(v);
  }
}

/* FNV-1a over (index, sign) of the non-zero entries: the feature layout. */
static uint64_t layout(const float *v, unsigned dim) {
  uint64_t h = UINT64_C(1469598103934665603);
  for (unsigned i = 0; i < dim; i++) {
    if (v[i] == 0.0f)
      continue;
    uint32_t x = i * 2u + (v[i] < 0);
    for (int k = 0; k < 4; k++) {
      h ^= (x >> (8 * k)) & 0xFF;
      h *= UINT64_C(1099511628211);
    }
  }
  return h;
}

static void test_determinism(void **state) {
  (void)state;
  const char *t = "Berapa lama proses perpanjangan KITAS investor di Bali?";
  float *a = vec(t, NULL);
  jiwa_embed_t *other;
  assert_rc(jiwa_embed_hash_new(512, &other), 0);
  float b[512];
  assert_rc(jiwa_embed_hash_text(other, t, strlen(t), NULL, b), 0);
  assert_memory_equal(a, b, sizeof b);
  /* after other texts (scratch reuse), still identical */
  float c[512];
  for (int i = 0; i < 3; i++)
    assert_rc(
        jiwa_embed_hash_text(other, "something else entirely", 23, NULL, c), 0);
  assert_rc(jiwa_embed_hash_text(other, t, strlen(t), NULL, c), 0);
  assert_memory_equal(a, c, sizeof c);
  /* the layout is part of "hash-v1": changing it needs a new name */
  uint64_t fp = layout(a, 512);
  if (fp != GOLDEN_LAYOUT) {
    print_error("layout fingerprint %#llx, want %#llx\n",
                (unsigned long long)fp, (unsigned long long)GOLDEN_LAYOUT);
    fail();
  }
  jiwa_embed_destroy(other);
  free(a);
}

static void test_similarity(void **state) {
  (void)state;
  const char *q = "how long does a KITAS take";
  double para = sim(q, "KITAS processing time how long", NULL);
  double unrel = sim(q, "best beaches in Bali", NULL);
  printf("  paraphrase %.3f, unrelated %.3f\n", para, unrel);
  assert_gt(para, unrel + 0.2, "paraphrase vs unrelated (en)");
  assert_gt(
      sim("berapa lama urus kitas", "lama pengurusan kitas berapa hari", NULL),
      sim("berapa lama urus kitas", "pantai terbaik di Bali", NULL) + 0.2,
      "paraphrase vs unrelated (id)");
  assert_gt(
      sim("quanto costa aprire una società", "costo per aprire società", NULL),
      sim("quanto costa aprire una società", "spiagge più belle", NULL) + 0.2,
      "paraphrase vs unrelated (it)");
  /* accents, case and width do not matter */
  assert_true(sim("Perché", "PERCHE", "it") > 0.9999);
  assert_true(sim("café", "cafe", NULL) > 0.9999);
}

static void test_stemming(void **state) {
  (void)state;
  static const struct {
    const char *a, *b, *lang;
  } pairs[] = {
      {"perizinan", "izin", "id"},      {"visti", "visto", "it"},
      {"companies", "company", "en"},   {"pembayaran", "bayar", "id"},
      {"documenti", "documento", "it"}, {"renewing", "renewal", "en"},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    double stemmed = sim(pairs[i].a, pairs[i].b, pairs[i].lang);
    double raw = sim(pairs[i].a, pairs[i].b, "none");
    printf("  %s/%s (%s): stemmed %.3f, unstemmed %.3f\n", pairs[i].a,
           pairs[i].b, pairs[i].lang, stemmed, raw);
    assert_gt(stemmed, raw + 0.15, pairs[i].a);
  }
}

static void test_hostile_input(void **state) {
  (void)state;
  static const char bad[] = "gr\xC3zie \xFF\xFE mille \xED\xA0\x80 ciao "
                            "\xF4\x90\x80\x80 quanto \xE2\x82";
  float v[512];
  assert_rc(jiwa_embed_hash_text(g_emb, bad, sizeof bad - 1, NULL, v), 0);
  assert_true(fabs(norm(v, 512) - 1.0) < 1e-4);
  /* 1 MiB: truncated at 64 KiB, still one unit vector */
  size_t n = 1u << 20;
  char *big = malloc(n);
  assert_non_null(big);
  for (size_t i = 0; i < n; i++)
    big[i] = (char)("abcdefghij klmnopq rstuv wxyz0123 "[i % 34]);
  assert_rc(jiwa_embed_hash_text(g_emb, big, n, NULL, v), 0);
  assert_true(fabs(norm(v, 512) - 1.0) < 1e-4);
  /* one endless word, and random bytes */
  memset(big, 'a', n);
  assert_rc(jiwa_embed_hash_text(g_emb, big, n, "it", v), 0);
  assert_true(fabs(norm(v, 512) - 1.0) < 1e-4);
  uint32_t x = 12345;
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    big[i] = (char)(x >> 24);
  }
  assert_rc(jiwa_embed_hash_text(g_emb, big, n, NULL, v), 0);
  double nv = norm(v, 512);
  assert_true(nv == 0.0 || fabs(nv - 1.0) < 1e-4);
  free(big);
}

static void test_batch_matches_single(void **state) {
  (void)state;
  const char *texts[] = {"aku malu nih", "", "ciao, quanto costa?",
                         "ok thanks"};
  float batch[4 * 512];
  assert_rc(jiwa_embed_texts(g_emb, texts, NULL, 4, batch), 0);
  for (int i = 0; i < 4; i++) {
    float *one = vec(texts[i], NULL);
    assert_memory_equal(batch + i * 512, one, 512 * sizeof(float));
    free(one);
  }
  /* more than one internal chunk of NUL-terminated texts */
  const char *many[150];
  for (int i = 0; i < 150; i++)
    many[i] = texts[i % 4];
  float *out = malloc(150 * 512 * sizeof *out);
  assert_non_null(out);
  assert_rc(jiwa_embed_texts(g_emb, many, NULL, 150, out), 0);
  assert_memory_equal(out + 149 * 512, batch + 1 * 512, 512 * sizeof(float));
  free(out);
  /* the hash-only entry point refuses other embedders (below) */
}

/* ---- a custom implementation
 * -------------------------------------------------- */

static int fake_destroyed;

static int fake_embed(void *ctx, const char *const *texts, const size_t *lens,
                      size_t n, float *out, unsigned dim) {
  (void)texts;
  for (size_t i = 0; i < n; i++)
    for (unsigned j = 0; j < dim; j++)
      out[i * dim + j] = (float)lens[i] + *(float *)ctx;
  return lens[0] == 99 ? JIWA_EUPSTREAM : 0;
}

static void fake_destroy(void *ctx) {
  fake_destroyed++;
  free(ctx);
}

static void test_custom_embedder(void **state) {
  (void)state;
  static const jiwa_embed_ops_t ops = {sizeof ops, fake_embed, fake_destroy};
  static const jiwa_embed_ops_t old_ops = {sizeof(size_t), fake_embed, NULL};
  float *ctx = malloc(sizeof *ctx);
  assert_non_null(ctx);
  *ctx = 0.5f;
  jiwa_embed_t *e = NULL;
  assert_rc(jiwa_embed_new("", 8, &ops, ctx, &e), JIWA_EINVAL);
  assert_rc(jiwa_embed_new("x", 4, &ops, ctx, &e), JIWA_EINVAL);
  assert_rc(jiwa_embed_new("x", 8, &old_ops, ctx, &e), JIWA_EINVAL);
  assert_rc(jiwa_embed_new("x", 8, NULL, ctx, &e), JIWA_EINVAL);
  assert_rc(jiwa_embed_new("http:test-model", 8, &ops, ctx, &e), 0);
  assert_string_equal(jiwa_embed_name(e), "http:test-model");
  const char *t[1] = {"hello"};
  float v[8];
  assert_rc(jiwa_embed_texts(e, t, NULL, 1, v), 0);
  assert_true(v[7] == 5.5f);
  size_t l99 = 99;
  const char *big[1] = {"x"};
  (void)big;
  char buf[100];
  memset(buf, 'x', sizeof buf);
  const char *t99[1] = {buf};
  assert_rc(jiwa_embed_texts(e, t99, &l99, 1, v), JIWA_EUPSTREAM);
  assert_rc(jiwa_embed_hash_text(e, "x", 1, NULL, v), JIWA_ENOTSUP);
  jiwa_embed_destroy(e);
  assert_int_equal(fake_destroyed, 1);
}

/* ---- threads
 * -------------------------------------------------------------------- */

static const char *const mt_texts[] = {"aku malu nih",
                                       "ciao, quanto costa?",
                                       "How long does a KITAS take?",
                                       "perizinan usaha PT PMA",
                                       "",
                                       "grazie mille!"};
#define MT_N (sizeof mt_texts / sizeof mt_texts[0])
static float mt_want[MT_N][512];

static void *mt_run(void *arg) {
  (void)arg;
  float v[512];
  for (int rep = 0; rep < 300; rep++)
    for (size_t i = 0; i < MT_N; i++) {
      if (jiwa_embed_texts(g_emb, &mt_texts[i], NULL, 1, v) != 0 ||
          memcmp(v, mt_want[i], sizeof v) != 0)
        return (void *)1;
    }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  for (size_t i = 0; i < MT_N; i++)
    assert_rc(jiwa_embed_texts(g_emb, &mt_texts[i], NULL, 1, mt_want[i]), 0);
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, mt_run, NULL), 0);
  for (int i = 0; i < 4; i++) {
    void *res;
    assert_int_equal(pthread_join(th[i], &res), 0);
    assert_null(res);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_normalize),
      cmocka_unit_test(test_create_and_args),
      cmocka_unit_test(test_norm_and_zero),
      cmocka_unit_test(test_determinism),
      cmocka_unit_test(test_similarity),
      cmocka_unit_test(test_stemming),
      cmocka_unit_test(test_hostile_input),
      cmocka_unit_test(test_batch_matches_single),
      cmocka_unit_test(test_custom_embedder),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
