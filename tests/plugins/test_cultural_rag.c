/* cultural_rag through the plugin harness, with a private store and a
 * "cultural" collection (hash embedder, dim 512, as in config/jiwa.lua):
 * markers in each language trigger retrieval, a neutral business question
 * does not, language filter and fallback, categories, dedup, min_score,
 * seed import of the starter pack (and a bad seed file refused whole while
 * the good ones go in), rag.import with line-numbered errors, and the
 * reply's ids and scores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <time.h>

#include "../common/jt.h"
#include "jiwa/harness.h"
#include "jiwa/json.h"
#include "jiwa_coll.h"
#include "jiwa_knowledge.h"

/* ---- helpers ------------------------------------------------------------- */

static jiwa_harness_t *open_rag(const char *settings) {
  char so[4096], err[512];
  jt_plugin_path(so, sizeof so, "JIWA_PLUGIN_OUT", "cultural_rag");
  jiwa_harness_t *h = NULL;
  if (jiwa_harness_open(&h, so, settings, err, sizeof err))
    fail_msg("harness open: %s", err);
  if (jiwa_harness_add_collection(h, "cultural", "hash", 512, err, sizeof err))
    fail_msg("add collection: %s", err);
  return h;
}

/* Ask with a JSON body. */
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

/* A NUL-terminated copy of a string field (static buffer per slot). */
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

/* The insights of a rag.result. */
typedef struct {
  char id[80], category[40], topic[40], lang[8];
  double score;
} ins_t;

static uint32_t get_insights(const jiwa_msg_t *m, ins_t *out, uint32_t max) {
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  assert_int_equal(jiwa_mp_map_find(b, len, "insights", &at), 0);
  assert_int_equal(jiwa_mp_next(&at, &it), 0);
  assert_int_equal(it.type, JIWA_MP_ARRAY);
  uint32_t n = it.v.count;
  assert_true(n <= max);
  for (uint32_t i = 0; i < n; i++) {
    jiwa_mp_reader_t end = at;
    assert_int_equal(jiwa_mp_skip(&end), 0);
    size_t el = (size_t)(end.p - at.p);
    assert_int_equal(jiwa_mp_get_strcpy(at.p, el, "id", out[i].id,
                                        sizeof out[i].id),
                     0);
    assert_int_equal(jiwa_mp_get_strcpy(at.p, el, "category", out[i].category,
                                        sizeof out[i].category),
                     0);
    assert_int_equal(jiwa_mp_get_strcpy(at.p, el, "topic", out[i].topic,
                                        sizeof out[i].topic),
                     0);
    assert_int_equal(jiwa_mp_get_strcpy(at.p, el, "lang", out[i].lang,
                                        sizeof out[i].lang),
                     0);
    assert_int_equal(jiwa_mp_get_double(at.p, el, "score", &out[i].score), 0);
    at = end;
  }
  return n;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Wait until the seed import is over; returns the stats reply. */
static void wait_seeded(jiwa_harness_t *h, jiwa_harness_reply_t *r) {
  for (int i = 0; i < 3000; i++) {
    askj(h, "rag.stats", "{}", r);
    expect_ok(r);
    const char *seed = get_str(r->final, "seed");
    if ((strcmp(seed, "done") == 0 || strcmp(seed, "none") == 0) &&
        !get_bool(r->final, "busy"))
      return;
    jiwa_harness_reply_free(r);
    sleep_ms(10);
  }
  fail_msg("the seed import did not finish");
}

static char *pack_settings(const char *extra) {
  const char *src = getenv("JIWA_SOURCE_DIR");
  assert_non_null(src);
  char *s = malloc(8192);
  assert_non_null(s);
  snprintf(s, 8192,
           "{ seed_files = { '%s/config/knowledge/insights_en.jsonl', "
           "'%s/config/knowledge/insights_id.jsonl', "
           "'%s/config/knowledge/insights_it.jsonl' }%s%s }",
           src, src, src, extra ? ", " : "", extra ? extra : "");
  return s;
}

/* One valid insight line. */
static void insight_line(char *out, size_t cap, const char *id,
                         const char *lang, const char *cat, const char *topic,
                         const char *text, const char *markers) {
  snprintf(out, cap,
           "{\"id\": \"%s\", \"lang\": \"%s\", \"category\": \"%s\", "
           "\"topic\": \"%s\", \"type\": \"insight\", \"title\": \"Title of "
           "%s\", \"text\": \"%s\", \"respond\": \"Answer warmly and "
           "clearly, in a few lines.\", \"markers\": [%s], \"source\": "
           "\"test\"}\n",
           id, lang, cat, topic, id, text, markers);
}

static void write_file(const char *path, const char *data) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(data, f);
  fclose(f);
}


/* ---- the knowledge line parser (runtime/store/jiwa_knowledge.c) ------------ */

static char *read_all(const char *rel, size_t *len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", getenv("JIWA_SOURCE_DIR"), rel);
  char *buf = NULL;
  assert_int_equal(jiwa_knowledge_read_file(path, 64u << 20, &buf, len), 0);
  return buf;
}

static void test_knowledge_pack_parses(void **state) {
  (void)state;
  static const char *const files[] = {"config/knowledge/insights_en.jsonl",
                                      "config/knowledge/insights_id.jsonl",
                                      "config/knowledge/insights_it.jsonl"};
  size_t total = 0;
  char err[320];
  for (int f = 0; f < 3; f++) {
    size_t len, n = 0;
    char *buf = read_all(files[f], &len);
    jiwa_knowledge_insight_t *v = NULL;
    int rc = jiwa_knowledge_parse_insights(buf, len, files[f], &v, &n, err,
                                           sizeof err);
    if (rc)
      fail_msg("%s", err);
    total += n;
    for (size_t i = 0; i < n; i++) {
      /* the embedded text is title, text and markers */
      assert_true(strncmp(v[i].embed, v[i].title, strlen(v[i].title)) == 0);
      assert_non_null(strstr(v[i].embed, v[i].text));
      assert_non_null(strstr(v[i].embed, v[i].markers[v[i].nmarkers - 1]));
      const char *s;
      size_t sl;
      assert_int_equal(
          jiwa_mp_get_str(v[i].meta, v[i].meta_len, "category", &s, &sl), 0);
      assert_int_equal(sl, strlen(v[i].category));
      assert_int_equal(
          jiwa_mp_get_str(v[i].meta, v[i].meta_len, "respond", &s, &sl), 0);
      assert_int_equal(sl, strlen(v[i].respond));
    }
    jiwa_knowledge_insights_free(v, n);
    free(buf);
  }
  assert_int_equal(total, 520);
  size_t len, n = 0;
  char *buf = read_all("config/knowledge/golden_examples.jsonl", &len);
  jiwa_knowledge_golden_t *g = NULL;
  if (jiwa_knowledge_parse_goldens(buf, len, "golden", &g, &n, err,
                                   sizeof err))
    fail_msg("%s", err);
  assert_int_equal(n, 30);
  for (size_t i = 0; i < n; i++) {
    assert_true(g[i].example);
    assert_true(g[i].nparaphrases >= 3);
    assert_true(g[i].ntags >= 1);
  }
  jiwa_knowledge_goldens_free(g, n);
  free(buf);
}

static void test_knowledge_bad_lines(void **state) {
  (void)state;
  char good[2048], line[2600], err[320];
  insight_line(good, sizeof good, "ins-en-test-01", "en", "emotions", "malu",
               "A text that is long enough to pass the forty character rule.",
               "\"one\", \"two words\"");
  jiwa_knowledge_insight_t in;
  assert_int_equal(
      jiwa_knowledge_parse_insight(good, strlen(good), &in, err, sizeof err),
      0);
  assert_string_equal(in.emotion, "");
  assert_int_equal(in.nmarkers, 2);
  jiwa_knowledge_insight_free(&in);
  static const struct {
    const char *from, *to, *why;
  } bad[] = {
      {"\"source\": \"test\"", "\"source\": \"test\", \"extra\": 1",
       "unknown field 'extra'"},
      {"\"source\": \"test\"", "\"source\": \"test\", \"lang\": \"en\"",
       "field 'lang' appears twice"},
      {"\"lang\": \"en\"", "\"lang\": \"fr\"", "field 'lang'"},
      {"\"id\": \"ins-en-test-01\"", "\"id\": \"Ins_En\"", "field 'id'"},
      {"\"category\": \"emotions\"", "\"category\": \"food\"",
       "field 'category'"},
      {"\"type\": \"insight\"", "\"type\": \"golden\"", "field 'type'"},
      {"\"one\", \"two words\"", "\"One\", \"two\"", "lowercase"},
      {"\"one\", \"two words\"", "\"one\", \"one\"", "repeated"},
      {"\"one\", \"two words\"", "\"one\"", "need 2..8"},
      {"\"source\": \"test\"", "\"source\": 5", "must be a string"},
      {", \"source\": \"test\"", "", "missing field 'source'"},
      {"}\n", "", "column"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *at = strstr(good, bad[i].from);
    assert_non_null(at);
    snprintf(line, sizeof line, "%.*s%s%s", (int)(at - good), good, bad[i].to,
             at + strlen(bad[i].from));
    err[0] = '\0';
    int rc = jiwa_knowledge_parse_insight(line, strlen(line), &in, err,
                                          sizeof err);
    if (rc == 0)
      fail_msg("accepted: %s", line);
    jt_assert_contains(err, bad[i].why);
    assert_null(in.mem);
  }
  assert_int_equal(jiwa_knowledge_parse_insight("[1, 2]", 6, &in, err,
                                                sizeof err),
                   JIWA_EINVAL);
  jt_assert_contains(err, "not a JSON object");
  /* buffers: blank lines skipped, errors carry file:line, ids unique */
  char buf[8192];
  snprintf(buf, sizeof buf, "%s\n   \n%s", good, good);
  jiwa_knowledge_insight_t *v = NULL;
  size_t n = 9;
  assert_int_equal(jiwa_knowledge_parse_insights(buf, strlen(buf), "a.jsonl",
                                                 &v, &n, err, sizeof err),
                   JIWA_EINVAL);
  assert_null(v);
  assert_int_equal(n, 0);
  jt_assert_contains(err, "a.jsonl:4: id 'ins-en-test-01' already on line 1");
  /* golden: an id is made when absent, defaults are filled */
  jiwa_knowledge_golden_t g;
  const char *gl = "{\"lang\": \"it\", \"question\": \"Quanto costa?\", "
                   "\"answer\": \"Dipende.\", \"ttl_days\": 2}";
  assert_int_equal(
      jiwa_knowledge_parse_golden(gl, strlen(gl), &g, err, sizeof err), 0);
  assert_true(strncmp(g.id, "golden-", 7) == 0);
  assert_int_equal(strlen(g.id), 7 + 16);
  assert_string_equal(g.source, "manual");
  assert_false(g.example);
  assert_true(g.ttl_days == 2.0);
  jiwa_knowledge_golden_free(&g);
  gl = "{\"lang\": \"it\", \"question\": \"Quanto costa?\", \"answer\": "
       "\"x\", \"paraphrases\": [\"quanto costa?\"]}";
  assert_int_equal(
      jiwa_knowledge_parse_golden(gl, strlen(gl), &g, err, sizeof err),
      JIWA_EINVAL);
  jt_assert_contains(err, "repeats the question");
}

/* ---- the starter pack ------------------------------------------------------ */

static jiwa_harness_t *pack;

static int setup_pack(void **state) {
  (void)state;
  char *s = pack_settings(NULL);
  pack = open_rag(s);
  free(s);
  jiwa_harness_reply_t r;
  wait_seeded(pack, &r);
  int64_t count = get_int(r.final, "count");
  print_message("starter pack seeded: %lld insights, %lld markers\n",
                (long long)count, (long long)get_int(r.final, "markers"));
  assert_int_equal(count, 520);
  assert_int_equal(get_int(r.final, "seeded"), 520);
  assert_int_equal(get_int(r.final, "seed_errors"), 0);
  jiwa_harness_reply_free(&r);
  return 0;
}

static int teardown_pack(void **state) {
  (void)state;
  assert_int_equal(jiwa_harness_close(pack), 0);
  return 0;
}

static void query(jiwa_harness_t *h, const char *json, jiwa_harness_reply_t *r) {
  askj(h, "rag.query", json, r);
  expect_ok(r);
}

/* A marker in each language triggers retrieval in that language. */
static void test_markers_each_language(void **state) {
  (void)state;
  static const struct {
    const char *q, *lang, *marker;
  } cases[] = {
      {"aku malu nih", "id", "malu"},
      {"mi vergogno un po'", "it", "vergogno"},
      {"I'm a bit embarrassed to ask", "en", "embarrassed"},
      {"sungkan mau tanya soal pajak", "id", "sungkan"},
      {"my wife's family expects us at the ceremony", "en", "marker"},
      {"scusate il disturbo, una domanda sul visto", "it", "marker"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char json[512];
    snprintf(json, sizeof json, "{\"query\": \"%s\"}", cases[i].q);
    jiwa_harness_reply_t r;
    query(pack, json, &r);
    ins_t ins[10];
    uint32_t n = get_insights(r.final, ins, 10);
    const char *reason = get_str(r.final, "reason");
    const char *ctx = get_str(r.final, "context");
    print_message("%-45s -> %s; %u insights, first %s %.3f\n", cases[i].q,
                  reason, n, n ? ins[0].id : "-", n ? ins[0].score : 0.0);
    assert_true(get_bool(r.final, "needed"));
    jt_assert_contains(reason, "marker");
    assert_string_equal(get_str(r.final, "lang"), cases[i].lang);
    assert_int_equal(n, 3);
    /* same language first; ids and scores for a person to see why */
    assert_string_equal(ins[0].lang, cases[i].lang);
    for (uint32_t j = 0; j < n; j++) {
      assert_true(strncmp(ins[j].id, "ins-", 4) == 0);
      assert_true(ins[j].score > 0 && ins[j].score < 2);
      if (j)
        assert_true(ins[j].score <= ins[j - 1].score ||
                    strcmp(ins[j].lang, cases[i].lang) != 0);
    }
    /* the context names each insight's category/topic under the header */
    jt_assert_contains(ctx, "Cultural context (use it, do not quote it):\n- [");
    char tag[96];
    snprintf(tag, sizeof tag, "[%s/%s]", ins[0].category, ins[0].topic);
    jt_assert_contains(ctx, tag);
    jt_assert_contains(ctx, " Respond: ");
    jiwa_harness_reply_free(&r);
  }
  /* the emotion questions land on emotions insights */
  jiwa_harness_reply_t r;
  query(pack, "{\"query\": \"aku malu nih\", \"lang\": \"id\"}", &r);
  ins_t ins[10];
  uint32_t n = get_insights(r.final, ins, 10);
  assert_true(n >= 1);
  assert_string_equal(ins[0].category, "emotions");
  jiwa_harness_reply_free(&r);
}

/* Neutral questions with no cultural signal: needed=false, no context. */
static void test_neutral_not_needed(void **state) {
  (void)state;
  static const char *const qs[] = {
      "What is the minimum capital for a PT PMA?",
      "Berapa modal minimal untuk PT PMA?",
      "Qual è il capitale minimo per una PT PMA?",
      "how do I renew my passport at the embassy",
  };
  for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
    char json[512];
    snprintf(json, sizeof json, "{\"query\": \"%s\"}", qs[i]);
    jiwa_harness_reply_t r;
    query(pack, json, &r);
    print_message("%-45s -> %s\n", qs[i], get_str(r.final, "reason"));
    assert_false(get_bool(r.final, "needed"));
    assert_string_equal(get_str(r.final, "context"), "");
    ins_t ins[10];
    assert_int_equal(get_insights(r.final, ins, 10), 0);
    jt_assert_contains(get_str(r.final, "reason"), "no cultural signal");
    jiwa_harness_reply_free(&r);
  }
}

/* categories filter, k, and the character bound of the context. */
static void test_categories_and_k(void **state) {
  (void)state;
  jiwa_harness_reply_t r;
  query(pack,
        "{\"query\": \"we want to hold a ceremony at the temple for our new "
        "villa, what should we bring\", \"lang\": \"en\", \"k\": 5, "
        "\"categories\": [\"bali\"]}",
        &r);
  ins_t ins[10];
  uint32_t n = get_insights(r.final, ins, 10);
  assert_true(get_bool(r.final, "needed"));
  assert_true(n >= 3 && n <= 5);
  for (uint32_t i = 0; i < n; i++) {
    assert_string_equal(ins[i].category, "bali");
    assert_string_equal(ins[i].lang, "en");
  }
  /* utf-8 characters of the context stay within max_context (1200) */
  const char *ctx = get_str(r.final, "context");
  size_t chars = 0;
  for (const char *p = ctx; *p; p++)
    chars += ((unsigned char)*p & 0xC0) != 0x80;
  assert_true(chars <= 1200);
  jiwa_harness_reply_free(&r);

  /* two categories (OR), and bad requests are refused */
  query(pack,
        "{\"query\": \"gak enak sama mertua\", \"k\": 4, \"categories\": "
        "[\"relationships\", \"communication\"]}",
        &r);
  n = get_insights(r.final, ins, 10);
  assert_true(n >= 1);
  for (uint32_t i = 0; i < n; i++)
    assert_true(strcmp(ins[i].category, "relationships") == 0 ||
                strcmp(ins[i].category, "communication") == 0);
  jiwa_harness_reply_free(&r);
  askj(pack, "rag.query", "{\"query\": \"malu\", \"k\": 11}", &r);
  assert_int_equal(jiwa_msg_error(r.final, NULL), JIWA_EINVAL);
  jiwa_harness_reply_free(&r);
  askj(pack, "rag.query", "{\"text\": \"malu\"}", &r);
  assert_int_equal(jiwa_msg_error(r.final, NULL), JIWA_EINVAL);
  jiwa_harness_reply_free(&r);
  askj(pack, "rag.nope", "{}", &r);
  assert_int_equal(jiwa_msg_error(r.final, NULL), JIWA_ENOTSUP);
  jiwa_harness_reply_free(&r);
}

/* ---- small private sets ---------------------------------------------------- */

/* A set written for these tests: an Indonesian insight on jam karet, three
 * English ones (one a near-duplicate of another), one Italian. */
static void small_set(char *buf, size_t cap) {
  char l[2048];
  buf[0] = '\0';
  insight_line(l, sizeof l, "t-id-jam-karet", "id", "business_culture",
               "ngaret",
               "Jam karet berarti waktu yang lentur: rapat sering mulai "
               "terlambat dan itu dianggap biasa oleh banyak orang.",
               "\"jam karet\", \"ngaret banget\"");
  strncat(buf, l, cap - strlen(buf) - 1);
  insight_line(l, sizeof l, "t-en-jam-karet", "en", "business_culture",
               "jam_karet",
               "Jam karet, rubber time: meetings often start late and many "
               "people treat a flexible start as normal, not as rudeness.",
               "\"jam karet\", \"meeting started late\"");
  strncat(buf, l, cap - strlen(buf) - 1);
  insight_line(l, sizeof l, "t-en-jam-karet-copy", "en", "business_culture",
               "jam_karet",
               "Jam karet, rubber time: meetings often start late and many "
               "people treat a flexible start as normal, not as rudeness!",
               "\"jam karet\", \"meeting started late\"");
  strncat(buf, l, cap - strlen(buf) - 1);
  insight_line(l, sizeof l, "t-en-late-partner", "en", "business_culture",
               "punctuality",
               "When a partner keeps arriving late to meetings, a direct "
               "complaint can cost face; a friendly reminder of the next "
               "meeting time works better.",
               "\"late again\", \"partner is late\"");
  strncat(buf, l, cap - strlen(buf) - 1);
  insight_line(l, sizeof l, "t-it-ritardo", "it", "business_culture",
               "jam_karet",
               "Jam karet: in Indonesia le riunioni spesso iniziano in "
               "ritardo, e molti lo considerano normale, non una mancanza di "
               "rispetto.",
               "\"jam karet\", \"sempre in ritardo\"");
  strncat(buf, l, cap - strlen(buf) - 1);
}

static jiwa_harness_t *open_small(const char *extra, char *dir, size_t dcap) {
  jt_tempdir(dir, dcap, "rag");
  char path[4200], data[16384], settings[8192];
  snprintf(path, sizeof path, "%s/small.jsonl", dir);
  small_set(data, sizeof data);
  write_file(path, data);
  snprintf(settings, sizeof settings, "{ seed_files = { '%s' }%s%s }", path,
           extra ? ", " : "", extra ? extra : "");
  jiwa_harness_t *h = open_rag(settings);
  jiwa_harness_reply_t r;
  wait_seeded(h, &r);
  assert_int_equal(get_int(r.final, "count"), 5);
  jiwa_harness_reply_free(&r);
  return h;
}

static int has_id(const ins_t *v, uint32_t n, const char *id) {
  for (uint32_t i = 0; i < n; i++)
    if (strcmp(v[i].id, id) == 0)
      return 1;
  return 0;
}

/* Language filter first, then the any-language fallback; and dedup. */
static void test_lang_fallback_dedup(void **state) {
  (void)state;
  char dir[512];
  jiwa_harness_t *h = open_small(NULL, dir, sizeof dir);
  jiwa_harness_reply_t r;
  ins_t ins[10];
  query(h, "{\"query\": \"rapatnya jam karet lagi\", \"lang\": \"id\"}", &r);
  uint32_t n = get_insights(r.final, ins, 10);
  assert_true(get_bool(r.final, "needed"));
  assert_true(n >= 2);
  assert_string_equal(ins[0].id, "t-id-jam-karet");
  assert_string_equal(ins[0].lang, "id");
  /* filled from the other languages, one insight per topic: of the three
   * jam_karet ones (en, its copy, it) only one comes */
  int jk = 0;
  for (uint32_t i = 1; i < n; i++) {
    assert_string_not_equal(ins[i].lang, "id");
    jk += strcmp(ins[i].topic, "jam_karet") == 0;
  }
  assert_int_equal(jk, 1);
  jiwa_harness_reply_free(&r);

  /* English: both near-duplicates never come back together */
  query(h, "{\"query\": \"the meeting started late again, jam karet\", "
           "\"lang\": \"en\", \"k\": 5}",
        &r);
  n = get_insights(r.final, ins, 10);
  assert_true(n >= 2);
  assert_false(has_id(ins, n, "t-en-jam-karet") &&
               has_id(ins, n, "t-en-jam-karet-copy"));
  assert_true(has_id(ins, n, "t-en-jam-karet") ||
              has_id(ins, n, "t-en-jam-karet-copy"));
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
  jt_rmtree(dir);

  /* without the fallback only the query's language answers; dedup off
   * lets both copies through */
  h = open_small("lang_fallback = false, dedup = 0", dir, sizeof dir);
  query(h, "{\"query\": \"rapatnya jam karet lagi\", \"lang\": \"id\"}", &r);
  n = get_insights(r.final, ins, 10);
  assert_int_equal(n, 1);
  assert_string_equal(ins[0].id, "t-id-jam-karet");
  jiwa_harness_reply_free(&r);
  query(h, "{\"query\": \"the meeting started late again, jam karet\", "
           "\"lang\": \"en\", \"k\": 5}",
        &r);
  n = get_insights(r.final, ins, 10);
  assert_true(has_id(ins, n, "t-en-jam-karet") &&
              has_id(ins, n, "t-en-jam-karet-copy"));
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
  jt_rmtree(dir);
}

/* min_score drops weak insights even when a marker says context is needed;
 * extra markers from the config detect. */
static void test_min_score_and_extra_markers(void **state) {
  (void)state;
  char dir[512];
  jiwa_harness_t *h = open_small(
      "min_score = 0.95, extra_markers = { en = { 'my landlord' } }", dir,
      sizeof dir);
  jiwa_harness_reply_t r;
  query(h, "{\"query\": \"my landlord keeps asking for money\", \"lang\": "
           "\"en\"}",
        &r);
  assert_true(get_bool(r.final, "needed"));
  jt_assert_contains(get_str(r.final, "reason"), "my landlord");
  jt_assert_contains(get_str(r.final, "reason"), "config");
  ins_t ins[10];
  assert_int_equal(get_insights(r.final, ins, 10), 0);
  assert_string_equal(get_str(r.final, "context"), "");
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
  jt_rmtree(dir);
}

/* A bad seed file is refused whole (logged with file:line); the good one
 * is imported; rag.import validates every line first. */
static void test_seed_bad_file_and_import(void **state) {
  (void)state;
  char dir[512];
  jt_tempdir(dir, sizeof dir, "ragseed");
  char good[4200], bad[4200], data[16384], l[2048];
  snprintf(good, sizeof good, "%s/good.jsonl", dir);
  snprintf(bad, sizeof bad, "%s/bad.jsonl", dir);
  small_set(data, sizeof data);
  write_file(good, data);
  data[0] = '\0';
  insight_line(l, sizeof l, "t-bad-1", "en", "emotions", "malu",
               "A perfectly valid first line about feeling embarrassed to "
               "ask a question.",
               "\"so shy\", \"too shy\"");
  strcat(data, l);
  insight_line(l, sizeof l, "t-bad-2", "en", "emotions", "malu",
               "Too short.", "\"a\", \"b\"");
  strcat(data, l);
  write_file(bad, data);
  char settings[9000];
  snprintf(settings, sizeof settings, "{ seed_files = { '%s', '%s' } }", bad,
           good);
  jt_logs_capture();
  jiwa_harness_t *h = open_rag(settings);
  jiwa_harness_reply_t r;
  wait_seeded(h, &r);
  assert_int_equal(get_int(r.final, "count"), 5);
  assert_int_equal(get_int(r.final, "seed_errors"), 1);
  jiwa_harness_reply_free(&r);
  char where[4300];
  snprintf(where, sizeof where, "%s:2: field 'text'", bad);
  if (!jt_logs_have(where))
    fail_msg("no log line with '%s'", where);
  /* nothing of the bad file went in, not even its valid first line */
  jiwa_coll_result_t got;
  assert_int_equal(jiwa_coll_get(jiwa_harness_collection(h, "cultural"),
                                 "t-bad-1", 0, 0, &got),
                   JIWA_ENOENT);

  /* rag.import: a broken line refuses the whole batch, with its line */
  char body[16384];
  jiwa_mp_writer_t w;
  snprintf(body, sizeof body, "%s", data);
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_kv_str(&w.pk, "jsonl", body);
  jiwa_mp_put_kv_str(&w.pk, "name", "upload.jsonl");
  assert_int_equal(
      jiwa_harness_ask(h, "rag.import", w.sbuf.data, w.sbuf.size, 30000, &r),
      0);
  jiwa_mp_writer_free(&w);
  const char *text = "";
  assert_int_equal(jiwa_msg_error(r.final, &text), JIWA_EINVAL);
  jt_assert_contains(text, "upload.jsonl:2: field 'text'");
  jiwa_harness_reply_free(&r);
  askj(h, "rag.stats", "{}", &r);
  assert_int_equal(get_int(r.final, "count"), 5);
  jiwa_harness_reply_free(&r);

  /* a good batch goes in, and its markers detect at once */
  insight_line(l, sizeof l, "t-new-1", "en", "emotions", "shy",
               "Some users are very shy about asking the same question "
               "twice; reassure them that repeating is fine.",
               "\"asking twice\", \"ask again sorry\"");
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_str(&w.pk, "jsonl", l);
  assert_int_equal(
      jiwa_harness_ask(h, "rag.import", w.sbuf.data, w.sbuf.size, 30000, &r),
      0);
  jiwa_mp_writer_free(&w);
  expect_ok(&r);
  assert_int_equal(get_int(r.final, "imported"), 1);
  jiwa_harness_reply_free(&r);
  query(h, "{\"query\": \"is asking twice ok\", \"lang\": \"en\"}", &r);
  assert_true(get_bool(r.final, "needed"));
  jt_assert_contains(get_str(r.final, "reason"), "asking twice");
  ins_t ins[10];
  uint32_t n = get_insights(r.final, ins, 10);
  assert_true(n >= 1);
  assert_string_equal(ins[0].id, "t-new-1");
  jiwa_harness_reply_free(&r);

  /* rag.markers: markers of insights written by another path (the knowledge
   * plugin) detect too */
  askj(h, "rag.markers",
       "{\"entries\": [{\"id\": \"t-id-jam-karet\", \"lang\": \"id\", "
       "\"markers\": [\"telat mulu rapatnya\", \"x\"]}, {\"bad\": 1}]}",
       &r);
  expect_ok(&r);
  assert_int_equal(get_int(r.final, "markers"), 2);
  jiwa_harness_reply_free(&r);
  query(h, "{\"query\": \"kok telat mulu rapatnya\", \"lang\": \"id\"}",
        &r);
  assert_true(get_bool(r.final, "needed"));
  jt_assert_contains(get_str(r.final, "reason"), "telat mulu rapatnya");
  n = get_insights(r.final, ins, 10);
  assert_true(n >= 1);
  assert_string_equal(ins[0].id, "t-id-jam-karet");
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
  jt_rmtree(dir);
}

int main(void) {
  const struct CMUnitTest knowledge_tests[] = {
      cmocka_unit_test(test_knowledge_pack_parses),
      cmocka_unit_test(test_knowledge_bad_lines),
  };
  const struct CMUnitTest pack_tests[] = {
      cmocka_unit_test(test_markers_each_language),
      cmocka_unit_test(test_neutral_not_needed),
      cmocka_unit_test(test_categories_and_k),
  };
  const struct CMUnitTest small_tests[] = {
      cmocka_unit_test(test_lang_fallback_dedup),
      cmocka_unit_test(test_min_score_and_extra_markers),
      cmocka_unit_test(test_seed_bad_file_and_import),
  };
  int rc = cmocka_run_group_tests_name("knowledge lines", knowledge_tests,
                                       NULL, NULL);
  rc += cmocka_run_group_tests_name("cultural_rag (starter pack)",
                                       pack_tests, setup_pack, teardown_pack);
  rc += cmocka_run_group_tests_name("cultural_rag (small sets)", small_tests,
                                    NULL, NULL);
  return rc;
}
