/* golden_cache through the plugin harness, with a private store and a
 * "golden" collection (hash embedder, dim 512): exact hit, semantic hit
 * of a paraphrase, the guard's false hits refused with their reasons
 * (pairs of tests/data/golden/guard_pairs.tsv), TTL expiry, invalidation by
 * id/tag/all, hit counters, list/remove/import (all or nothing), and the
 * seed import of the 30 starter examples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <time.h>

#include "../common/jt.h"
#include "jiwa/harness.h"
#include "jiwa/json.h"
#include "jiwa_store.h"

/* ---- helpers ------------------------------------------------------------- */

static jiwa_harness_t *open_gc(const char *settings) {
  char so[4096], err[512];
  jt_plugin_path(so, sizeof so, "JIWA_PLUGIN_OUT", "golden_cache");
  jiwa_harness_t *h = NULL;
  if (jiwa_harness_open(&h, so, settings, err, sizeof err))
    fail_msg("harness open: %s", err);
  if (jiwa_harness_add_collection(h, "golden", "hash", 512, err, sizeof err))
    fail_msg("add collection: %s", err);
  return h;
}

static void askj(jiwa_harness_t *h, const char *type, const char *json,
                 jiwa_harness_reply_t *r) {
  char *mp = NULL;
  size_t len = 0;
  jiwa_json_error_t je;
  if (jiwa_json_to_mp(json, strlen(json), NULL, &mp, &len, &je))
    fail_msg("bad test JSON %s: %s", json, je.msg);
  assert_int_equal(jiwa_harness_ask(h, type, mp, len, 30000, r), 0);
  free(mp);
}

static void expect_ok(const jiwa_harness_reply_t *r) {
  if (jiwa_msg_kind(r->final) != JIWA_MSG_REPLY) {
    const char *t = "";
    int code = jiwa_msg_error(r->final, &t);
    fail_msg("error reply %s: %s", jiwa_err_name(code), t);
  }
}

/* Ask, expect a REPLY, free it. */
static void ok(jiwa_harness_t *h, const char *type, const char *json) {
  jiwa_harness_reply_t r;
  askj(h, type, json, &r);
  expect_ok(&r);
  jiwa_harness_reply_free(&r);
}

static int get_bool(const jiwa_msg_t *m, const char *k) {
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  int v = -1;
  if (jiwa_mp_get_bool(b, len, k, &v))
    fail_msg("no bool '%s' in the reply", k);
  return v;
}

static int64_t get_int(const jiwa_msg_t *m, const char *k) {
  int64_t v = 0;
  if (jiwa_msg_get_int(m, k, &v))
    fail_msg("no int '%s' in the reply", k);
  return v;
}

static const char *get_str(const jiwa_msg_t *m, const char *k) {
  static char bufs[4][8192];
  static int slot;
  char *b = bufs[slot++ & 3];
  const char *s;
  size_t n;
  if (jiwa_msg_get_str(m, k, &s, &n))
    fail_msg("no string '%s' in the reply", k);
  snprintf(b, sizeof bufs[0], "%.*s", (int)n, s);
  return b;
}

/* Element @p i of array field @p key: its bytes. Returns the count. */
static uint32_t get_elem(const jiwa_msg_t *m, const char *key, uint32_t i,
                         const void **p, size_t *n) {
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  if (jiwa_mp_map_find(b, len, key, &at))
    return 0;
  assert_int_equal(jiwa_mp_next(&at, &it), 0);
  assert_int_equal(it.type, JIWA_MP_ARRAY);
  uint32_t count = it.v.count;
  for (uint32_t k = 0; k < count; k++) {
    jiwa_mp_reader_t end = at;
    assert_int_equal(jiwa_mp_skip(&end), 0);
    if (k == i && p) {
      *p = at.p;
      *n = (size_t)(end.p - at.p);
    }
    at = end;
  }
  return count;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Lookup; returns the reply (free it). */
static void lookup(jiwa_harness_t *h, const char *q, const char *lang,
                   jiwa_harness_reply_t *r) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, lang ? 2 : 1);
  jiwa_mp_put_kv_str(&w.pk, "query", q);
  if (lang)
    jiwa_mp_put_kv_str(&w.pk, "lang", lang);
  assert_int_equal(
      jiwa_harness_ask(h, "golden.lookup", w.sbuf.data, w.sbuf.size, 30000, r),
      0);
  jiwa_mp_writer_free(&w);
  expect_ok(r);
}

static void add_entry(jiwa_harness_t *h, const char *id, const char *lang,
                      const char *question, const char *answer,
                      const char *extra) {
  char json[4096];
  snprintf(json, sizeof json,
           "{\"id\": \"%s\", \"lang\": \"%s\", \"question\": \"%s\", "
           "\"answer\": \"%s\"%s%s}",
           id, lang, question, answer, extra ? ", " : "", extra ? extra : "");
  jiwa_harness_reply_t r;
  askj(h, "golden.add", json, &r);
  expect_ok(&r);
  assert_string_equal(get_str(r.final, "id"), id);
  jiwa_harness_reply_free(&r);
}

static int64_t list_total(jiwa_harness_t *h) {
  jiwa_harness_reply_t r;
  askj(h, "golden.list", "{}", &r);
  expect_ok(&r);
  int64_t n = get_int(r.final, "total");
  jiwa_harness_reply_free(&r);
  return n;
}

/* ---- tests --------------------------------------------------------------- */

static void test_exact_and_semantic(void **state) {
  (void)state;
  jiwa_harness_t *h = open_gc(NULL);
  add_entry(h, "kitas-time", "en", "How long does it take to get a KITAS?",
            "Usually a few weeks from a complete application.",
            "\"paraphrases\": [\"KITAS processing time\"], \"tags\": "
            "[\"visa\", \"kitas\"]");
  add_entry(h, "kitas-cost", "en", "How much does a KITAS cost?",
            "It depends on the type and the agent.",
            "\"tags\": [\"visa\", \"kitas\", \"fees\"]");

  /* exact: case, punctuation and spacing do not matter */
  jiwa_harness_reply_t r;
  lookup(h, "how long does it take to get a  kitas", NULL, &r);
  assert_true(get_bool(r.final, "hit"));
  assert_string_equal(get_str(r.final, "match"), "exact");
  assert_string_equal(get_str(r.final, "id"), "kitas-time");
  assert_string_equal(get_str(r.final, "answer"),
                      "Usually a few weeks from a complete application.");
  assert_string_equal(get_str(r.final, "lang"), "en");
  const void *p;
  size_t n;
  assert_int_equal(get_elem(r.final, "tags", 0, &p, &n), 2);
  jiwa_harness_reply_free(&r);
  lookup(h, "KITAS processing time?", "en", &r);
  assert_true(get_bool(r.final, "hit"));
  assert_string_equal(get_str(r.final, "match"), "exact");
  jiwa_harness_reply_free(&r);

  /* semantic: a paraphrase never stored */
  lookup(h, "how long does a KITAS take?", NULL, &r);
  print_message("paraphrase -> hit %d, %s\n", get_bool(r.final, "hit"),
                get_bool(r.final, "hit") ? get_str(r.final, "question") : "");
  assert_true(get_bool(r.final, "hit"));
  assert_string_equal(get_str(r.final, "match"), "semantic");
  assert_string_equal(get_str(r.final, "id"), "kitas-time");
  double score = 0;
  size_t blen;
  const void *b = jiwa_msg_body(r.final, &blen);
  assert_int_equal(jiwa_mp_get_double(b, blen, "score", &score), 0);
  assert_true(score > 0.4 && score < 1.0001);
  jiwa_harness_reply_free(&r);

  /* the example from the brief: same keywords, other intent, never served;
   * the close candidate is reported with the guard's reason */
  lookup(h, "how much does it cost to get a KITAS?", "en", &r);
  assert_true(get_bool(r.final, "hit"));
  assert_string_equal(get_str(r.final, "id"), "kitas-cost");
  uint32_t nrej = get_elem(r.final, "rejected", 0, &p, &n);
  print_message("cost question: hit kitas-cost, %u rejected\n", nrej);
  for (uint32_t i = 0; i < nrej; i++) {
    char id[80], why[200];
    get_elem(r.final, "rejected", i, &p, &n);
    assert_int_equal(jiwa_mp_get_strcpy(p, n, "id", id, sizeof id), 0);
    assert_int_equal(jiwa_mp_get_strcpy(p, n, "why", why, sizeof why), 0);
    print_message("  rejected %s: %s\n", id, why);
    assert_string_equal(id, "kitas-time");
  }
  jiwa_harness_reply_free(&r);

  /* a language other than the entry's is a miss */
  lookup(h, "berapa lama proses KITAS?", "id", &r);
  assert_false(get_bool(r.final, "hit"));
  jiwa_harness_reply_free(&r);
  /* bad requests */
  askj(h, "golden.lookup", "{\"text\": \"x\"}", &r);
  assert_int_equal(jiwa_msg_error(r.final, NULL), JIWA_EINVAL);
  jiwa_harness_reply_free(&r);
  askj(h, "golden.add", "{\"lang\": \"en\", \"question\": \"q?\"}", &r);
  assert_int_equal(jiwa_msg_error(r.final, NULL), JIWA_EINVAL);
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
}

/* Every non-"same" pair of guard_pairs.tsv: the cached question is in the
 * cache, the query must never get its answer; with a low threshold the
 * candidate reaches the guard and comes back in `rejected` with why. The
 * "same" pairs must hit. */
static void test_guard_pairs(void **state) {
  (void)state;
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/data/golden/guard_pairs.tsv",
           getenv("JIWA_SOURCE_DIR"));
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[1024];
  int pairs = 0, same = 0, same_hit = 0, neg = 0, neg_rejected = 0;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#' || line[0] == '\n')
      continue;
    line[strcspn(line, "\n")] = '\0';
    char *fields[5], *save = NULL, *s = line;
    int nf = 0;
    for (char *t = strtok_r(s, "\t", &save); t && nf < 5;
         t = strtok_r(NULL, "\t", &save))
      fields[nf++] = t;
    assert_int_equal(nf, 5);
    pairs++;
    /* one private cache per pair: only the cached question in it */
    jiwa_harness_t *h = open_gc("{ threshold = 0.2 }");
    char json[1024];
    snprintf(json, sizeof json,
             "{\"id\": \"cached\", \"lang\": \"%s\", \"question\": \"%s\", "
             "\"answer\": \"the cached answer\"}",
             fields[3], fields[4]);
    ok(h, "golden.add", json);
    jiwa_harness_reply_t r;
    lookup(h, fields[2], fields[1], &r);
    int hit = get_bool(r.final, "hit");
    const void *p;
    size_t n;
    uint32_t nrej = get_elem(r.final, "rejected", 0, &p, &n);
    char why[200] = "";
    if (nrej)
      jiwa_mp_get_strcpy(p, n, "why", why, sizeof why);
    if (strcmp(fields[0], "same") == 0) {
      same++;
      same_hit += hit;
      if (hit) {
        double sc = 0;
        size_t bl;
        const void *bb = jiwa_msg_body(r.final, &bl);
        jiwa_mp_get_double(bb, bl, "score", &sc);
        print_message("same %.3f %s\n", sc, fields[2]);
      }
      if (!hit)
        print_message("same pair missed: '%s' vs '%s' (%s)\n", fields[2],
                      fields[4], why);
    } else {
      neg++;
      if (hit)
        fail_msg("false hit: '%s' answered with '%s'", fields[2], fields[4]);
      neg_rejected += nrej > 0;
      if (nrej)
        print_message("refused %-9s %-45s: %s\n", fields[0], fields[2], why);
    }
    jiwa_harness_reply_free(&r);
    assert_int_equal(jiwa_harness_close(h), 0);
  }
  fclose(f);
  print_message("guard pairs: %d; same %d/%d hit; negatives %d, 0 false "
                "hits, %d refused by the guard with a reason\n",
                pairs, same_hit, same, neg, neg_rejected);
  assert_true(pairs >= 40);
  assert_true(neg_rejected >= 10);
  assert_true(same_hit * 10 >= same * 8);
}

static void test_ttl_and_invalidate(void **state) {
  (void)state;
  jiwa_harness_t *h = open_gc(NULL);
  /* expired already */
  add_entry(h, "old", "en", "What is the VOA fee?", "An old answer.",
            "\"expires\": 1000");
  jiwa_harness_reply_t r;
  lookup(h, "What is the VOA fee?", "en", &r);
  assert_false(get_bool(r.final, "hit"));
  const void *p;
  size_t n;
  char why[200] = "";
  assert_true(get_elem(r.final, "rejected", 0, &p, &n) >= 1);
  jiwa_mp_get_strcpy(p, n, "why", why, sizeof why);
  jt_assert_contains(why, "expired");
  jiwa_harness_reply_free(&r);
  /* cleaned lazily: gone from the list soon after */
  int gone = 0;
  for (int i = 0; i < 500 && !gone; i++) {
    gone = list_total(h) == 0;
    if (!gone)
      sleep_ms(10);
  }
  assert_true(gone);

  /* a short ttl: served first, a miss once it passed */
  add_entry(h, "short", "en", "Where is the immigration office in Denpasar?",
            "On Jalan Panjaitan.", "\"ttl_days\": 0.00001");
  lookup(h, "Where is the immigration office in Denpasar?", "en", &r);
  int first = get_bool(r.final, "hit");
  jiwa_harness_reply_free(&r);
  sleep_ms(1100);
  lookup(h, "Where is the immigration office in Denpasar?", "en", &r);
  assert_false(get_bool(r.final, "hit"));
  jiwa_harness_reply_free(&r);
  (void)first; /* 0.86 s may already have passed on a slow machine */

  /* invalidate by id, by tag, all */
  add_entry(h, "a", "en", "How do I open a bank account?", "Bring your KITAS.",
            "\"tags\": [\"bank\"]");
  add_entry(h, "b", "en", "Can I buy a car as a foreigner?",
            "Usually with a KITAS.", "\"tags\": [\"car\", \"kitas\"]");
  add_entry(h, "c", "en", "Do I need a driving licence?", "Yes, a SIM.",
            "\"tags\": [\"car\"]");
  add_entry(h, "d", "en", "Where do I pay the annual tax?", "At the KPP.",
            "\"tags\": [\"tax\"]");
  askj(h, "golden.invalidate", "{\"id\": \"a\"}", &r);
  expect_ok(&r);
  assert_int_equal(get_int(r.final, "invalidated"), 1);
  jiwa_harness_reply_free(&r);
  lookup(h, "How do I open a bank account?", "en", &r);
  assert_false(get_bool(r.final, "hit"));
  jiwa_harness_reply_free(&r);
  lookup(h, "Can I buy a car as a foreigner?", "en", &r);
  assert_true(get_bool(r.final, "hit"));
  jiwa_harness_reply_free(&r);
  askj(h, "golden.invalidate", "{\"tag\": \"car\"}", &r);
  expect_ok(&r);
  assert_int_equal(get_int(r.final, "invalidated"), 2);
  jiwa_harness_reply_free(&r);
  lookup(h, "Can I buy a car as a foreigner?", "en", &r);
  assert_false(get_bool(r.final, "hit"));
  jiwa_harness_reply_free(&r);
  lookup(h, "Where do I pay the annual tax?", "en", &r);
  assert_true(get_bool(r.final, "hit"));
  jiwa_harness_reply_free(&r);
  askj(h, "golden.invalidate", "{\"all\": true}", &r);
  expect_ok(&r);
  assert_true(get_int(r.final, "invalidated") >= 1);
  jiwa_harness_reply_free(&r);
  lookup(h, "Where do I pay the annual tax?", "en", &r);
  assert_false(get_bool(r.final, "hit"));
  jiwa_harness_reply_free(&r);
  askj(h, "golden.invalidate", "{}", &r);
  assert_int_equal(jiwa_msg_error(r.final, NULL), JIWA_EINVAL);
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
}

static void test_hits_list_remove_import(void **state) {
  (void)state;
  jiwa_harness_t *h = open_gc("{ flush_ms = 60000 }");
  ok(h, "golden.import",
     "{\"entries\": ["
     "{\"id\": \"e1\", \"lang\": \"en\", \"question\": \"How do I get an "
     "NPWP?\", \"answer\": \"Register online with your KITAS.\", \"tags\": "
     "[\"tax\"]},"
     "{\"id\": \"e2\", \"lang\": \"id\", \"question\": \"Bagaimana cara "
     "membuat NPWP?\", \"answer\": \"Daftar online.\", \"tags\": [\"tax\"]},"
     "{\"id\": \"e3\", \"lang\": \"it\", \"question\": \"Come si ottiene il "
     "NPWP?\", \"answer\": \"Online, con il KITAS.\", \"example\": true}"
     "]}");
  assert_int_equal(list_total(h), 3);

  /* an import with one bad entry imports nothing */
  jiwa_harness_reply_t r;
  askj(h, "golden.import",
       "{\"entries\": [{\"id\": \"e4\", \"lang\": \"en\", \"question\": "
       "\"What is a KITAP?\", \"answer\": \"A permanent stay permit.\"}, "
       "{\"id\": \"e5\", \"lang\": \"xx\", \"question\": \"bad?\", "
       "\"answer\": \"bad\"}]}",
       &r);
  const char *text = "";
  assert_int_equal(jiwa_msg_error(r.final, &text), JIWA_EINVAL);
  jt_assert_contains(text, "entry 2");
  jt_assert_contains(text, "lang");
  jiwa_harness_reply_free(&r);
  assert_int_equal(list_total(h), 3);
  lookup(h, "What is a KITAP?", "en", &r);
  assert_false(get_bool(r.final, "hit"));
  jiwa_harness_reply_free(&r);

  /* hit counters: counted in memory, written by golden.flush (or the
   * timer), visible in the list and in the store */
  for (int i = 0; i < 3; i++) {
    lookup(h, "How do I get an NPWP?", "en", &r);
    assert_true(get_bool(r.final, "hit"));
    jiwa_harness_reply_free(&r);
  }
  ok(h, "golden.flush", "{}");
  askj(h, "golden.list", "{\"lang\": \"en\"}", &r);
  expect_ok(&r);
  assert_int_equal(get_int(r.final, "total"), 1);
  const void *p;
  size_t n;
  assert_int_equal(get_elem(r.final, "entries", 0, &p, &n), 1);
  int64_t hits = -1, created = 0;
  char id[80];
  assert_int_equal(jiwa_mp_get_strcpy(p, n, "id", id, sizeof id), 0);
  assert_string_equal(id, "e1");
  assert_int_equal(jiwa_mp_get_int(p, n, "hits", &hits), 0);
  assert_int_equal(hits, 3);
  assert_int_equal(jiwa_mp_get_int(p, n, "created", &created), 0);
  assert_true(created > 1700000000000LL);
  jiwa_harness_reply_free(&r);
  /* the write reached the store (poll: it is asynchronous) */
  int64_t stored = -1;
  for (int i = 0; i < 500 && stored != 3; i++) {
    void *v = NULL;
    size_t vl = 0;
    if (jiwa_store_fetch(jiwa_harness_store(h), JIWA_STORE_DB_KV,
                         "plugin\0h:e1", 11, NULL, &v, &vl) == 0) {
      jiwa_mp_reader_t rd;
      jiwa_mp_item_t it;
      jiwa_mp_reader_init(&rd, v, vl);
      if (jiwa_mp_next(&rd, &it) == 0 && it.type == JIWA_MP_UINT)
        stored = (int64_t)it.v.u;
      free(v);
    }
    if (stored != 3)
      sleep_ms(10);
  }
  assert_int_equal(stored, 3);

  /* paging */
  askj(h, "golden.list", "{\"limit\": 2, \"offset\": 1}", &r);
  expect_ok(&r);
  assert_int_equal(get_int(r.final, "total"), 3);
  assert_int_equal(get_elem(r.final, "entries", 0, NULL, NULL), 2);
  jiwa_harness_reply_free(&r);

  /* remove */
  askj(h, "golden.remove", "{\"id\": \"e1\"}", &r);
  expect_ok(&r);
  assert_int_equal(get_int(r.final, "removed"), 1);
  jiwa_harness_reply_free(&r);
  askj(h, "golden.remove", "{\"id\": \"e1\"}", &r);
  expect_ok(&r);
  assert_int_equal(get_int(r.final, "removed"), 0);
  jiwa_harness_reply_free(&r);
  lookup(h, "How do I get an NPWP?", "en", &r);
  assert_false(get_bool(r.final, "hit"));
  jiwa_harness_reply_free(&r);
  assert_int_equal(list_total(h), 2);

  /* replacing an entry drops its old paraphrases */
  add_entry(h, "e2", "id", "Bagaimana cara membuat NPWP?", "Lewat DJP online.",
            "\"paraphrases\": [\"cara bikin npwp\"]");
  lookup(h, "cara bikin npwp", "id", &r);
  assert_true(get_bool(r.final, "hit"));
  jiwa_harness_reply_free(&r);
  add_entry(h, "e2", "id", "Bagaimana cara membuat NPWP?", "Lewat DJP online.",
            NULL);
  lookup(h, "cara bikin npwp", "id", &r);
  assert_false(get_bool(r.final, "hit") &&
               strcmp(get_str(r.final, "match"), "exact") == 0);
  jiwa_harness_reply_free(&r);
  assert_int_equal(list_total(h), 2);
  assert_int_equal(jiwa_harness_close(h), 0);
}

/* The 30 starter examples as seed: a paraphrase of one hits, a question
 * with another intent misses, and the entries are marked examples. */
static void test_seed_examples(void **state) {
  (void)state;
  char settings[4096];
  snprintf(settings, sizeof settings,
           "{ seed_files = { '%s/config/knowledge/golden_examples.jsonl' } }",
           getenv("JIWA_SOURCE_DIR"));
  jiwa_harness_t *h = open_gc(settings);
  jiwa_harness_reply_t r;
  int done = 0;
  for (int i = 0; i < 3000 && !done; i++) {
    askj(h, "golden.stats", "{}", &r);
    expect_ok(&r);
    done = strcmp(get_str(r.final, "seed"), "done") == 0 &&
           get_int(r.final, "writes_pending") == 0;
    if (done) {
      assert_int_equal(get_int(r.final, "entries"), 30);
      assert_int_equal(get_int(r.final, "seeded"), 30);
      assert_int_equal(get_int(r.final, "seed_errors"), 0);
    }
    jiwa_harness_reply_free(&r);
    if (!done)
      sleep_ms(10);
  }
  assert_true(done);

  static const struct {
    const char *q, *lang, *id;
  } hits[] = {
      {"how many weeks does a KITAS take?", "en", "golden-kitas-duration-en"},
      {"can I extend the visa on arrival?", "en", "golden-voa-extension-en"},
      {"do foreigners need an NPWP?", "en", "golden-npwp-foreigner-en"},
      {"kapan batas lapor SPT tahunan?", "id", "golden-spt-deadline-id"},
      {"quanto tempo serve per il KITAS?", "it", "golden-kitas-durata-it"},
  };
  for (size_t i = 0; i < sizeof hits / sizeof hits[0]; i++) {
    lookup(h, hits[i].q, hits[i].lang, &r);
    int hit = get_bool(r.final, "hit");
    const void *p;
    size_t n;
    char why[200] = "";
    if (get_elem(r.final, "rejected", 0, &p, &n))
      jiwa_mp_get_strcpy(p, n, "why", why, sizeof why);
    print_message("%-40s -> %s %s %s\n", hits[i].q,
                  hit ? get_str(r.final, "match") : "miss",
                  hit ? get_str(r.final, "id") : "", why);
    assert_true(hit);
    assert_string_equal(get_str(r.final, "id"), hits[i].id);
    assert_true(get_bool(r.final, "example"));
    jiwa_harness_reply_free(&r);
  }
  static const char *const misses[][2] = {
      {"how much does a KITAS cost?", "en"},
      {"berapa biaya KITAS suami WNA?", "id"},
      {"quanto costa il KITAS?", "it"},
      {"Can I extend my KITAS?", "en"},
  };
  for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
    lookup(h, misses[i][0], misses[i][1], &r);
    const void *p;
    size_t n;
    char why[200] = "";
    uint32_t nrej = get_elem(r.final, "rejected", 0, &p, &n);
    if (nrej)
      jiwa_mp_get_strcpy(p, n, "why", why, sizeof why);
    print_message("%-40s -> %s (%u rejected: %s)\n", misses[i][0],
                  get_bool(r.final, "hit") ? get_str(r.final, "id") : "miss",
                  nrej, why);
    assert_false(get_bool(r.final, "hit"));
    jiwa_harness_reply_free(&r);
  }
  assert_int_equal(jiwa_harness_close(h), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_and_semantic),
      cmocka_unit_test(test_guard_pairs),
      cmocka_unit_test(test_ttl_and_invalidate),
      cmocka_unit_test(test_hits_list_remove_import),
      cmocka_unit_test(test_seed_examples),
  };
  return cmocka_run_group_tests_name("golden_cache", tests, NULL, NULL);
}
