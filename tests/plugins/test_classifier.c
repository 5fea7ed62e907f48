/* The classifier plugin through the harness, with two fake model actors
 * ("primary" and "fallback") whose answers depend on the document:
 *  - "GOOD"  : a valid JSON object (in a ```json fence, with chatter);
 *  - "ONCE"  : malformed the first time, valid when asked again;
 *  - "BAD"   : malformed every time → unclassified with the reason, after
 *              exactly two calls;
 *  - "ENUM"  : priority "very high" → unclassified, the reason names the
 *              allowed values;
 *  - "DOWN"  : the primary fails (EUPSTREAM) → the fallback answers;
 *  - "DEAD"  : both fail → unclassified with both errors;
 *  - an entry without text → unclassified, the others go on.
 * Rows come back in input order with their JSONL line numbers, progress
 * deltas {done, total} stream before the final. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/jt.h"
#include "jiwa/harness.h"
#include "jiwa/json.h"

static atomic_int g_calls[2]; /* primary, fallback */
static atomic_int g_once, g_bad;

static const char *VALID =
    "Sure, here it is:\n```json\n{\"topic\": \"Visa\", \"priority\": "
    "\"High\", \"audience\": \"client\", \"actionability\": \"Action "
    "Required\"}\n```";

static int fake_model(jiwa_actor_t *self, const jiwa_msg_t *m, int which) {
  if (jiwa_msg_kind(m) != JIWA_MSG_ASK)
    return 0;
  atomic_fetch_add(&g_calls[which], 1);
  size_t bl;
  const void *b = jiwa_msg_body(m, &bl);
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  char doc[2048] = "";
  /* messages[0].content */
  if (jiwa_mp_map_find(b, bl, "messages", &at) == 0 &&
      jiwa_mp_next(&at, &it) == 0 && it.type == JIWA_MP_ARRAY) {
    const uint8_t *s = at.p;
    jiwa_mp_skip(&at);
    jiwa_mp_get_strcpy(s, (size_t)(at.p - s), "content", doc, sizeof doc);
  }
  const char *text = VALID;
  if (strstr(doc, "DEAD") || (which == 0 && strstr(doc, "DOWN")))
    return jiwa_reply_error(self, m, JIWA_EUPSTREAM, "fake: upstream down");
  if (strstr(doc, "BAD")) {
    atomic_fetch_add(&g_bad, 1);
    text = "I think this is about visas, high priority.";
  } else if (strstr(doc, "ENUM")) {
    text = "{\"topic\": \"tax\", \"priority\": \"very high\", \"audience\": "
           "\"team\", \"actionability\": \"none\"}";
  } else if (strstr(doc, "ONCE")) {
    /* the retry says what was wrong */
    text = strstr(doc, "previous answer was not valid")
               ? VALID
               : "{\"topic\": \"visa\", \"priority\": ";
    atomic_fetch_add(&g_once, 1);
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_kv_str(&w.pk, "text", text);
  jiwa_mp_put_kv_str(&w.pk, "model", which ? "fallback-x" : "primary-x");
  int rc = jiwa_reply(self, m, "llm.final", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  return rc;
}

static int primary_recv(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *m) {
  (void)ctx;
  return fake_model(self, m, 0);
}
static int fallback_recv(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *m) {
  (void)ctx;
  return fake_model(self, m, 1);
}

static const jiwa_plugin_desc_t primary_desc = {
    JIWA_DESC_HEADER, .name = "fake_primary", .version = "1", .ctx_size = 8,
    .receive = primary_recv};
static const jiwa_plugin_desc_t fallback_desc = {
    JIWA_DESC_HEADER, .name = "fake_fallback", .version = "1", .ctx_size = 8,
    .receive = fallback_recv};

static const uint8_t *row(const jiwa_harness_reply_t *r, uint32_t i,
                          size_t *n) {
  size_t bl;
  const void *b = jiwa_msg_body(r->final, &bl);
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  if (jiwa_mp_map_find(b, bl, "results", &at) || jiwa_mp_next(&at, &it) ||
      i >= it.v.count)
    return NULL;
  for (uint32_t k = 0; k < i; k++)
    jiwa_mp_skip(&at);
  const uint8_t *s = at.p;
  jiwa_mp_skip(&at);
  *n = (size_t)(at.p - s);
  return s;
}

static void field(const uint8_t *r, size_t n, const char *k, char *out,
                  size_t cap) {
  if (jiwa_mp_get_strcpy(r, n, k, out, cap))
    snprintf(out, cap, "(none)");
}

static void test_classify(void **state) {
  (void)state;
  char so[1024], err[512];
  jt_plugin_path(so, sizeof so, "JIWA_PLUGIN_OUT", "classifier");
  jiwa_harness_t *h;
  if (jiwa_harness_open(&h, so,
                        "{ primary = 'primary', fallback = 'fallback', "
                        "concurrency = 3, topics = { 'visa', 'tax', "
                        "'company' } }",
                        err, sizeof err))
    fail_msg("%s", err);
  assert_int_equal(
      jiwa_harness_add_actor(h, "primary", &primary_desc, err, sizeof err), 0);
  assert_int_equal(
      jiwa_harness_add_actor(h, "fallback", &fallback_desc, err, sizeof err),
      0);
  const char *json =
      "{\"entries\": ["
      "{\"id\": \"d1\", \"title\": \"KITAS\", \"text\": \"GOOD: my KITAS "
      "expires next week\"},"
      "{\"id\": 2, \"text\": \"ONCE: renew the visa\"},"
      "{\"id\": \"d3\", \"text\": \"BAD: something\"},"
      "{\"id\": \"d4\", \"content\": \"ENUM: the VAT return\"},"
      "{\"id\": \"d5\", \"text\": \"DOWN: open a PT PMA\"},"
      "{\"id\": \"d6\", \"body\": \"DEAD: nobody answers\"},"
      "{\"id\": \"d7\", \"title\": \"no text here\"}"
      "], \"lines\": [3, 4, 5, 7, 8, 9, 12]}";
  char *mp;
  size_t mplen;
  assert_int_equal(jiwa_json_to_mp(json, strlen(json), NULL, &mp, &mplen, NULL),
                   0);
  jiwa_harness_reply_t r;
  assert_int_equal(jiwa_harness_ask(h, "classify.run", mp, mplen, 20000, &r),
                   0);
  free(mp);
  assert_int_equal(jiwa_msg_kind(r.final), JIWA_MSG_REPLY);
  assert_true(r.ndeltas >= 1);
  {
    size_t bl;
    const void *b = jiwa_msg_body(r.deltas[r.ndeltas - 1], &bl);
    int64_t done = -1, total = -1;
    jiwa_mp_get_int(b, bl, "done", &done);
    jiwa_mp_get_int(b, bl, "total", &total);
    assert_int_equal(total, 7);
    assert_int_equal(done, 7);
  }
  size_t bl;
  const void *b = jiwa_msg_body(r.final, &bl);
  int64_t v = -1;
  jiwa_mp_get_int(b, bl, "classified", &v);
  assert_int_equal(v, 3);
  jiwa_mp_get_int(b, bl, "unclassified", &v);
  assert_int_equal(v, 4);
  {
    char *js = NULL;
    jiwa_mp_to_json(b, bl, &js, NULL);
    print_message("%s\n", js);
    free(js);
  }
  struct {
    const char *id, *status, *topic, *model, *reason;
    int64_t line, attempts;
  } want[] = {
      {"d1", "classified", "visa", "primary", NULL, 3, 1},
      {"2", "classified", "visa", "primary", NULL, 4, 2},
      {"d3", "unclassified", NULL, "primary", "malformed output twice", 5, 2},
      {"d4", "unclassified", NULL, "primary",
       "'very high' is not one of low, medium, high, urgent", 7, 2},
      {"d5", "classified", "visa", "fallback", NULL, 8, 2},
      {"d6", "unclassified", NULL, "fallback", "fake: upstream down", 9, 2},
      {"d7", "unclassified", NULL, "", "entry has no text", 12, 0},
  };
  for (uint32_t i = 0; i < 7; i++) {
    size_t n = 0;
    const uint8_t *x = row(&r, i, &n);
    assert_non_null(x);
    char s[600];
    field(x, n, "id", s, sizeof s);
    assert_string_equal(s, want[i].id);
    field(x, n, "status", s, sizeof s);
    assert_string_equal(s, want[i].status);
    field(x, n, "model", s, sizeof s);
    assert_string_equal(s, want[i].model);
    int64_t line = -1, att = -1;
    jiwa_mp_get_int(x, n, "line", &line);
    jiwa_mp_get_int(x, n, "attempts", &att);
    assert_int_equal(line, want[i].line);
    assert_int_equal(att, want[i].attempts);
    if (want[i].topic) {
      field(x, n, "topic", s, sizeof s);
      assert_string_equal(s, want[i].topic);
      field(x, n, "priority", s, sizeof s);
      assert_string_equal(s, "high");
      field(x, n, "actionability", s, sizeof s);
      assert_string_equal(s, "action_required");
    } else {
      field(x, n, "reason", s, sizeof s);
      jt_assert_contains(s, want[i].reason);
    }
  }
  /* the malformed one was asked exactly twice, the half-valid one twice */
  assert_int_equal(atomic_load(&g_bad), 2);
  assert_int_equal(atomic_load(&g_once), 2);
  /* fallback: d5 once, d6 once */
  assert_int_equal(atomic_load(&g_calls[1]), 2);
  jiwa_harness_reply_free(&r);

  /* bad requests */
  jiwa_mp_writer_t w;
  jt_body_str(&w, "entries", "not a list");
  assert_int_equal(
      jiwa_harness_ask(h, "classify.run", w.sbuf.data, w.sbuf.size, 5000, &r),
      0);
  assert_int_equal(jiwa_msg_kind(r.final), JIWA_MSG_ERROR);
  jiwa_harness_reply_free(&r);
  jiwa_mp_writer_free(&w);
  assert_int_equal(jiwa_harness_close(h), 0);
}

/* A bad allow-list is refused at init. */
static void test_bad_config(void **state) {
  (void)state;
  char so[1024], err[512];
  jt_plugin_path(so, sizeof so, "JIWA_PLUGIN_OUT", "classifier");
  jiwa_harness_t *h = NULL;
  int rc = jiwa_harness_open(&h, so, "{ topics = { 'ok', 'not/a slug!' } }",
                             err, sizeof err);
  assert_int_not_equal(rc, 0);
  if (h)
    jiwa_harness_close(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classify),
      cmocka_unit_test(test_bad_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
