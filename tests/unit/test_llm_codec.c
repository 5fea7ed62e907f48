/* The pure half of the provider plugins (plugins/llm_common/llm_codec.h and
 * the protocol codecs): the ask body, system prompt and presets, retry
 * arithmetic, the circuit breaker as a state machine, JSON lookups, secret
 * scrubbing, and each protocol's parser on canned answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "anthropic/anthropic_proto.h"
#include "huggingface/huggingface_proto.h"
#include "jiwa/json.h"
#include "jiwa/sse.h"
#include "openai/openai_proto.h"
#include "runpod/runpod_proto.h"

/* ---- helpers --------------------------------------------------------------- */

static char *mp_of(const char *json, size_t *len) {
  char *mp = NULL;
  jiwa_json_error_t je;
  if (jiwa_json_to_mp(json, strlen(json), NULL, &mp, len, &je))
    fail_msg("bad test JSON: %s", je.msg);
  return mp;
}

typedef struct {
  char text[4096];
  size_t len;
  int pieces;
  int stop_after; /* fail on_text after this many pieces (0 = never) */
} sink_t;

static int sink_text(void *ud, const char *s, size_t n) {
  sink_t *k = ud;
  if (k->stop_after && k->pieces >= k->stop_after)
    return JIWA_ECANCELED;
  assert_true(k->len + n < sizeof k->text);
  memcpy(k->text + k->len, s, n);
  k->len += n;
  k->text[k->len] = '\0';
  k->pieces++;
  return 0;
}

static void out_init(llm_out_t *o, sink_t *k) {
  memset(k, 0, sizeof *k);
  o->on_text = sink_text;
  o->ud = k;
  llm_out_reset(o);
}

typedef struct {
  llm_event_fn fn;
  llm_out_t *o;
} feed_t;

static int feed_ev(const jiwa_sse_event_t *ev, void *ud) {
  feed_t *f = ud;
  return f->fn(f->o, ev->event, ev->data, ev->data_len);
}

/* Run a whole SSE stream through a protocol; returns the feed verdict. */
static int stream(llm_event_fn fn, llm_out_t *o, const char *s) {
  feed_t f = {fn, o};
  jiwa_sse_t *p;
  assert_int_equal(jiwa_sse_new(&p, NULL, feed_ev, &f), 0);
  int rc = jiwa_sse_feed(p, s, strlen(s));
  jiwa_sse_free(p);
  return rc;
}

/* ---- the ask body ------------------------------------------------------------ */

static void test_req_parse(void **state) {
  static llm_req_t r;
  char err[200];
  size_t len;
  char *mp = mp_of("{\"system\":\"S\",\"context\":\"C\",\"lang\":\"id\","
                   "\"messages\":[{\"role\":\"system\",\"content\":\"X\"},"
                   "{\"role\":\"user\",\"content\":\"Halo\"}],"
                   "\"stream\":true,\"max_tokens\":50,\"temperature\":0.3,"
                   "\"preset\":\"pikiran\"}",
                   &len);
  assert_int_equal(llm_req_parse(mp, len, &r, err, sizeof err), 0);
  assert_int_equal(r.nmsgs, 2);
  assert_true(r.stream);
  assert_int_equal(r.max_tokens, 50);
  assert_true(r.temperature > 0.29 && r.temperature < 0.31);
  assert_int_equal(r.preset, LLM_PRESET_PIKIRAN);
  char *sys;
  size_t sl;
  assert_int_equal(llm_system_build("P", &r, &sys, &sl), 0);
  /* persona, system, system-role messages, context, language */
  assert_string_equal(sys, "P\n\nS\n\nX\n\n## Context\nC\n\n"
                           "Reply in Indonesian (Bahasa Indonesia).");
  assert_int_equal(sl, strlen(sys));
  char *prompt;
  assert_int_equal(llm_prompt_build("SYS", &r, &prompt, NULL), 0);
  assert_string_equal(prompt, "SYS\n\nUser: Halo\nAssistant:");
  free(prompt);
  free(sys);
  free(mp);

  /* the fallback route's chat body */
  mp = mp_of("{\"text\":\"pagi\",\"user\":\"u\"}", &len);
  assert_int_equal(llm_req_parse(mp, len, &r, err, sizeof err), 0);
  assert_int_equal(r.nmsgs, 1);
  assert_true(llm_eq(r.msgs[0].content.p, r.msgs[0].content.n, "pagi"));
  assert_int_equal(r.temperature, -1);
  assert_int_equal(llm_system_build("", &r, &sys, NULL), 0);
  assert_string_equal(sys, "");
  free(sys);
  free(mp);

  static const struct {
    const char *json;
    int code;
    const char *needle;
  } bad[] = {
      {"[1]", JIWA_EPROTO, "msgpack map"},
      {"{\"messages\":[]}", JIWA_EINVAL, "at least one"},
      {"{\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", JIWA_EINVAL,
       "at least one"},
      {"{\"messages\":{}}", JIWA_EINVAL, "array"},
      {"{\"messages\":[{\"role\":\"user\"}]}", JIWA_EINVAL, "content"},
      {"{\"messages\":[{\"role\":\"user\",\"content\":1}]}", JIWA_EINVAL,
       "messages[1].content"},
      {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stream\":1}",
       JIWA_EINVAL, "stream"},
      {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
       "\"max_tokens\":0}",
       JIWA_EINVAL, "max_tokens"},
      {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
       "\"temperature\":3}",
       JIWA_EINVAL, "temperature"},
      {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"system\":5}",
       JIWA_EINVAL, "'system'"},
      {"{}", JIWA_EINVAL, "at least one"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mp = mp_of(bad[i].json, &len);
    int rc = llm_req_parse(mp, len, &r, err, sizeof err);
    if (rc != bad[i].code || !strstr(err, bad[i].needle))
      fail_msg("%s: got %s '%s'", bad[i].json, jiwa_err_name(rc), err);
    free(mp);
  }
  /* more messages than allowed */
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_str(&w.pk, "messages");
  msgpack_pack_array(&w.pk, LLM_MAX_MSGS + 1);
  for (int i = 0; i < LLM_MAX_MSGS + 1; i++) {
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "role", "user");
    jiwa_mp_put_kv_str(&w.pk, "content", "x");
  }
  assert_int_equal(llm_req_parse(w.sbuf.data, w.sbuf.size, &r, err, sizeof err),
                   JIWA_ETOOBIG);
  jiwa_mp_writer_free(&w);
}

static void test_params(void **state) {
  static llm_req_t r;
  memset(&r, 0, sizeof r);
  r.temperature = -1;
  llm_params_cfg_t c = {1024, 0.7, LLM_PRESET_NONE, 300, 0.8, 1200, 0.4};
  int64_t mt;
  double t;
  llm_preset_t p;
  llm_params_resolve(&c, &r, &mt, &t, &p);
  assert_int_equal(mt, 1024);
  assert_int_equal(p, LLM_PRESET_NONE);
  c.preset = LLM_PRESET_SANTAI; /* the instance default */
  llm_params_resolve(&c, &r, &mt, &t, &p);
  assert_int_equal(mt, 300);
  assert_true(t > 0.79 && t < 0.81);
  r.preset = LLM_PRESET_PIKIRAN; /* the request's preset wins */
  llm_params_resolve(&c, &r, &mt, &t, &p);
  assert_int_equal(mt, 1200);
  assert_int_equal(p, LLM_PRESET_PIKIRAN);
  r.max_tokens = 9;
  r.temperature = 0; /* explicit values win over any preset */
  llm_params_resolve(&c, &r, &mt, &t, &p);
  assert_int_equal(mt, 9);
  assert_true(t == 0);
  llm_preset_t q;
  assert_int_equal(llm_preset_parse("Santai", 6, &q), 0);
  assert_int_equal(q, LLM_PRESET_SANTAI);
  assert_int_equal(llm_preset_parse("", 0, &q), 0);
  assert_int_equal(q, LLM_PRESET_NONE);
  assert_int_equal(llm_preset_parse("FAST", 4, &q), JIWA_EINVAL);
  assert_string_equal(llm_preset_name(LLM_PRESET_PIKIRAN), "PIKIRAN");
}

/* ---- retries and the breaker ---------------------------------------------------- */

static void test_backoff(void **state) {
  uint64_t rng = 42;
  for (unsigned f = 1; f <= 12; f++) {
    uint32_t cap = 100u << (f - 1);
    if (cap > 5000 || f > 7)
      cap = 5000;
    uint32_t lo = UINT32_MAX, hi = 0;
    for (int i = 0; i < 2000; i++) {
      uint32_t d = llm_backoff_ms(f, 100, 5000, &rng);
      assert_true(d <= cap);
      lo = d < lo ? d : lo;
      hi = d > hi ? d : hi;
    }
    /* full jitter: spread over the whole window */
    assert_true(lo < cap / 8 + 1);
    assert_true(hi > cap - cap / 8 - 1);
  }
  assert_int_equal(llm_backoff_ms(3, 0, 0, &rng), 0);
  for (int s = 100; s < 600; s++) {
    int want = s == 408 || s == 429 || (s >= 500 && s <= 599);
    assert_int_equal(llm_status_retryable(s), want);
  }
  assert_true(llm_status_retryable(529));
}

static void test_breaker(void **state) {
  llm_breaker_t b;
  uint64_t until;
  llm_breaker_init(&b, 3, 1000, 4000);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(llm_breaker_admit(&b, 0, &until), 0);
    llm_breaker_record(&b, 0, 0, LLM_BR_FAIL);
  }
  /* a success in between resets the count; neutral answers do too */
  llm_breaker_record(&b, 0, 0, LLM_BR_NEUTRAL);
  assert_int_equal(b.fails, 0);
  for (int i = 0; i < 3; i++)
    llm_breaker_record(&b, 100, 0, LLM_BR_FAIL);
  assert_int_equal(b.state, LLM_BR_OPEN);
  assert_int_equal(llm_breaker_admit(&b, 500, &until), JIWA_EDOWN);
  assert_int_equal(until, 1100);
  /* late failures of requests admitted before do not extend it */
  llm_breaker_record(&b, 600, 0, LLM_BR_FAIL);
  assert_int_equal(b.open_until, 1100);
  /* after the window: one probe, everyone else fails fast */
  assert_int_equal(llm_breaker_admit(&b, 1100, &until), 1);
  assert_int_equal(llm_breaker_admit(&b, 1101, &until), JIWA_EDOWN);
  assert_int_equal(llm_breaker_admit(&b, 1102, &until), JIWA_EDOWN);
  assert_int_equal(b.probes, 1);
  /* the probe fails: the window doubles */
  llm_breaker_record(&b, 1200, 1, LLM_BR_FAIL);
  assert_int_equal(b.state, LLM_BR_OPEN);
  assert_int_equal(b.window_ms, 2000);
  assert_int_equal(llm_breaker_admit(&b, 3199, &until), JIWA_EDOWN);
  assert_int_equal(llm_breaker_admit(&b, 3200, &until), 1);
  llm_breaker_record(&b, 3300, 1, LLM_BR_FAIL);
  assert_int_equal(b.window_ms, 4000);
  assert_int_equal(llm_breaker_admit(&b, 7300, &until), 1);
  llm_breaker_record(&b, 7300, 1, LLM_BR_FAIL);
  assert_int_equal(b.window_ms, 4000); /* capped */
  /* an abandoned probe (cancelled) lets the next request probe */
  assert_int_equal(llm_breaker_admit(&b, 11300, &until), 1);
  llm_breaker_record(&b, 11300, 1, LLM_BR_ABANDONED);
  assert_int_equal(b.state, LLM_BR_HALF_OPEN);
  assert_int_equal(llm_breaker_admit(&b, 11301, &until), 1);
  /* the probe succeeds: closed, window back to the base */
  llm_breaker_record(&b, 11400, 1, LLM_BR_OK);
  assert_int_equal(b.state, LLM_BR_CLOSED);
  assert_int_equal(b.window_ms, 1000);
  assert_int_equal(llm_breaker_admit(&b, 11401, &until), 0);
  assert_string_equal(llm_breaker_state_name(b.state), "closed");
  /* threshold 0: never opens */
  llm_breaker_init(&b, 0, 10, 10);
  for (int i = 0; i < 100; i++)
    llm_breaker_record(&b, 0, 0, LLM_BR_FAIL);
  assert_int_equal(llm_breaker_admit(&b, 0, &until), 0);
}

/* ---- small helpers ------------------------------------------------------------------ */

static void test_helpers(void **state) {
  size_t len;
  char *mp = mp_of("{\"a\":{\"b\":[{\"c\":\"x\"},{\"c\":\"yy\",\"n\":7.0}]},"
                   "\"k\":-3}",
                   &len);
  const char *s;
  size_t n;
  int64_t v;
  assert_int_equal(llm_mp_str(mp, len, "a.b.1.c", &s, &n), 0);
  assert_true(llm_eq(s, n, "yy"));
  assert_int_equal(llm_mp_int(mp, len, "a.b.1.n", &v), 0);
  assert_int_equal(v, 7);
  assert_int_equal(llm_mp_int(mp, len, "k", &v), 0);
  assert_int_equal(v, -3);
  assert_int_equal(llm_mp_path(mp, len, "a.b.2", NULL), JIWA_ENOENT);
  assert_int_equal(llm_mp_path(mp, len, "a.b.x", NULL), JIWA_ENOENT);
  assert_int_equal(llm_mp_path(mp, len, "k.z", NULL), JIWA_ENOENT);
  assert_int_equal(llm_mp_str(mp, len, "k", &s, &n), JIWA_EINVAL);
  assert_int_equal(llm_mp_type(mp, len, "a.b"), JIWA_MP_ARRAY);
  free(mp);

  char out[64];
  const char *e1 = "{\"error\":{\"message\":\"bad key\",\"type\":\"x\"}}";
  llm_error_text(e1, strlen(e1), out, sizeof out);
  assert_string_equal(out, "bad key");
  const char *e2 = "{\"error\":\"Model M is currently loading\"}";
  llm_error_text(e2, strlen(e2), out, sizeof out);
  assert_string_equal(out, "Model M is currently loading");
  llm_error_text("<html>\nBad Gateway</html>", 25, out, sizeof out);
  assert_string_equal(out, "<html> Bad Gateway</html>");
  llm_error_text(NULL, 0, out, sizeof out);
  assert_string_equal(out, "");

  /* printable never ends inside a UTF-8 sequence */
  char small[5];
  llm_printable("ab\xc3\xa9z", 5, small, sizeof small);
  assert_string_equal(small, "ab\xc3\xa9");
  llm_printable("abc\xc3\xa9", 5, small, sizeof small);
  assert_string_equal(small, "abc");

  char t[128] = "key sk-SECRET1 and sk-SECRET1 again";
  llm_scrub(t, sizeof t, "sk-SECRET1");
  assert_string_equal(t, "key [redacted] and [redacted] again");
  char t2[16] = "x sk-SECRET1";
  llm_scrub(t2, sizeof t2, "sk-SECRET1");
  assert_null(strstr(t2, "SECRET"));
  char t3[32] = "abc";
  llm_scrub(t3, sizeof t3, "ab"); /* too short to be a key: left alone */
  assert_string_equal(t3, "abc");
}

/* ---- protocols ---------------------------------------------------------------------------- */

static void test_anthropic(void **state) {
  llm_out_t o;
  sink_t k;
  out_init(&o, &k);
  const char *s =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
      "{\"model\":\"claude-x\",\"usage\":{\"input_tokens\":11,"
      "\"output_tokens\":1}}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\","
      "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
      "event: ping\ndata: {\"type\": \"ping\"}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
      "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Halo \"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
      "\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":"
      "\"hmm\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
      "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Pak\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\"}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
      "{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n";
  assert_int_equal(stream(anthropic_event, &o, s), 0);
  assert_false(o.done); /* no message_stop yet */
  assert_int_equal(stream(anthropic_event, &o,
                          "event: message_stop\ndata: {\"type\":"
                          "\"message_stop\"}\n\n"),
                   0);
  assert_true(o.done);
  assert_string_equal(k.text, "Halo Pak");
  assert_int_equal(k.pieces, 2);
  assert_string_equal(o.model, "claude-x");
  assert_string_equal(o.finish, "end_turn");
  assert_int_equal(o.input_tokens, 11);
  assert_int_equal(o.output_tokens, 2);
  assert_int_equal(o.err, 0);

  /* in-stream overloaded error: retryable */
  out_init(&o, &k);
  assert_int_equal(
      stream(anthropic_event, &o,
             "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
             "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"),
      JIWA_EUPSTREAM);
  assert_true(o.err_retryable);
  assert_string_equal(o.errmsg,
                      "upstream error in stream: Overloaded (overloaded_error)");
  out_init(&o, &k);
  assert_int_equal(stream(anthropic_event, &o,
                          "event: content_block_delta\ndata: {\"type\":\n\n"),
                   JIWA_EPROTO);
  assert_non_null(strstr(o.errmsg, "malformed JSON in the "
                                   "'content_block_delta' event"));
  /* on_text's refusal stops the parser */
  out_init(&o, &k);
  k.stop_after = 1;
  assert_int_equal(
      stream(anthropic_event, &o,
             "event: content_block_delta\ndata: {\"delta\":{\"type\":"
             "\"text_delta\",\"text\":\"a\"}}\n\n"
             "event: content_block_delta\ndata: {\"delta\":{\"type\":"
             "\"text_delta\",\"text\":\"b\"}}\n\n"),
      JIWA_ECANCELED);
  assert_string_equal(k.text, "a");

  /* whole bodies */
  out_init(&o, &k);
  const char *body =
      "{\"type\":\"message\",\"model\":\"claude-x\",\"content\":[{\"type\":"
      "\"text\",\"text\":\"Halo\"},{\"type\":\"tool_use\"},{\"type\":\"text\","
      "\"text\":\" lagi\"}],\"stop_reason\":\"max_tokens\",\"usage\":"
      "{\"input_tokens\":3,\"output_tokens\":4}}";
  assert_int_equal(anthropic_body(&o, body, strlen(body)), 0);
  assert_string_equal(k.text, "Halo lagi");
  assert_true(o.done);
  assert_string_equal(o.finish, "max_tokens");
  out_init(&o, &k);
  const char *eb = "{\"type\":\"error\",\"error\":{\"type\":"
                   "\"invalid_request_error\",\"message\":\"no\"}}";
  assert_int_equal(anthropic_body(&o, eb, strlen(eb)), JIWA_EUPSTREAM);
  assert_false(o.err_retryable);

  /* the request body */
  static llm_req_t r;
  memset(&r, 0, sizeof r);
  r.msgs[0] = (llm_msg_t){{"system", 6}, {"ignored here", 12}};
  r.msgs[1] = (llm_msg_t){{"user", 4}, {"Halo", 4}};
  r.nmsgs = 2;
  llm_build_t b = {"claude-x", "SYS", &r, 100, 1.5, 1};
  char *js;
  size_t jl;
  assert_int_equal(anthropic_build(&b, &js, &jl), 0);
  assert_string_equal(js, "{\"model\":\"claude-x\",\"max_tokens\":100,"
                          "\"messages\":[{\"role\":\"user\",\"content\":"
                          "\"Halo\"}],\"system\":\"SYS\",\"temperature\":1,"
                          "\"stream\":true}");
  free(js);
}

static void test_openai(void **state) {
  llm_out_t o;
  sink_t k;
  out_init(&o, &k);
  const char *s =
      "data: {\"id\":\"c\",\"model\":\"llama-x\",\"choices\":[{\"index\":0,"
      "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
      "\"finish_reason\":null}]}\n\n"
      ": keep-alive\n\n"
      "data: {\"model\":\"llama-x\",\"choices\":[{\"delta\":{\"content\":"
      "\"Halo\"},\"finish_reason\":null}]}\n\n"
      "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
      "\"completion_tokens\":1}}\n\n"
      "data: [DONE]\n\n";
  assert_int_equal(stream(openai_event, &o, s), 0);
  assert_string_equal(k.text, "Halo");
  assert_int_equal(k.pieces, 1);
  assert_true(o.done);
  assert_string_equal(o.finish, "length");
  assert_string_equal(o.model, "llama-x");
  assert_int_equal(o.input_tokens, 5);
  assert_int_equal(o.output_tokens, 1);

  out_init(&o, &k);
  assert_int_equal(
      stream(openai_event, &o,
             "data: {\"error\":{\"message\":\"Rate limit\",\"type\":"
             "\"requests\",\"code\":\"rate_limit_exceeded\"}}\n\n"),
      JIWA_EUPSTREAM);
  assert_true(o.err_retryable);
  out_init(&o, &k);
  assert_int_equal(stream(openai_event, &o, "data: {\"choices\":[\n\n"),
                   JIWA_EPROTO);

  out_init(&o, &k);
  const char *body =
      "{\"model\":\"m\",\"choices\":[{\"message\":{\"role\":\"assistant\","
      "\"content\":\"Hai\"},\"finish_reason\":\"stop\"}],\"usage\":"
      "{\"prompt_tokens\":2,\"completion_tokens\":1}}";
  assert_int_equal(openai_body(&o, body, strlen(body)), 0);
  assert_string_equal(k.text, "Hai");
  assert_true(o.done);
  out_init(&o, &k);
  assert_int_equal(openai_body(&o, "{\"choices\":[]}", 14), JIWA_EPROTO);

  static llm_req_t r;
  memset(&r, 0, sizeof r);
  r.msgs[0] = (llm_msg_t){{"user", 4}, {"Halo", 4}};
  r.nmsgs = 1;
  llm_build_t b = {"m", "SYS", &r, 10, -1, 1};
  openai_opts_t oo = {"max_completion_tokens", 1};
  char *js;
  size_t jl;
  assert_int_equal(openai_build(&b, &oo, &js, &jl), 0);
  assert_string_equal(js, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\","
                          "\"content\":\"SYS\"},{\"role\":\"user\","
                          "\"content\":\"Halo\"}],\"max_completion_tokens\":10,"
                          "\"stream\":true,\"stream_options\":"
                          "{\"include_usage\":true}}");
  free(js);
}

static void test_runpod(void **state) {
  llm_out_t o;
  sink_t k;
  struct {
    const char *json;
    int rc, done, pending;
    const char *text;
  } cases[] = {
      {"{\"id\":\"j\",\"status\":\"COMPLETED\",\"output\":[{\"choices\":"
       "[{\"tokens\":[\"Ha\",\"lo\"]}],\"usage\":{\"input\":3,\"output\":2}}]}",
       0, 1, 0, "Halo"},
      {"{\"id\":\"j\",\"status\":\"IN_QUEUE\"}", 0, 0, 1, ""},
      {"{\"id\":\"j\",\"status\":\"IN_PROGRESS\"}", 0, 0, 1, ""},
      {"{\"status\":\"IN_QUEUE\"}", JIWA_EPROTO, 0, 0, ""},
      {"{\"id\":\"j\",\"status\":\"FAILED\",\"error\":\"OOM\"}", JIWA_EUPSTREAM,
       0, 0, ""},
      {"{\"id\":\"j\",\"status\":\"TIMED_OUT\"}", JIWA_ETIMEDOUT, 0, 0, ""},
      {"{\"status\":\"COMPLETED\",\"output\":{\"text\":\"t\"}}", 0, 1, 0, "t"},
      {"{\"status\":\"COMPLETED\",\"output\":\"plain\"}", 0, 1, 0, "plain"},
      {"{\"status\":\"COMPLETED\",\"output\":[]}", JIWA_EPROTO, 0, 0, ""},
      {"{\"status\":\"COMPLETED\"}", JIWA_EPROTO, 0, 0, ""},
      {"{\"error\":\"request does not exist\"}", JIWA_EUPSTREAM, 0, 0, ""},
      {"{\"status\":\"COMPLETED\",\"output\":[{\"choices\":[{\"tokens\":"
       "[1]}]}]}",
       JIWA_EPROTO, 0, 0, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    out_init(&o, &k);
    int rc = runpod_body(&o, cases[i].json, strlen(cases[i].json));
    if (rc != cases[i].rc || o.done != cases[i].done ||
        o.pending != cases[i].pending || strcmp(k.text, cases[i].text) != 0)
      fail_msg("%s: rc %s done %d pending %d text '%s' (%s)", cases[i].json,
               jiwa_err_name(rc), o.done, o.pending, k.text, o.errmsg);
  }
  out_init(&o, &k);
  const char *c0 = cases[0].json;
  runpod_body(&o, c0, strlen(c0));
  assert_int_equal(o.input_tokens, 3);
  assert_int_equal(o.output_tokens, 2);
  assert_string_equal(o.job, "j");

  static llm_req_t r;
  memset(&r, 0, sizeof r);
  r.msgs[0] = (llm_msg_t){{"user", 4}, {"Halo", 4}};
  r.nmsgs = 1;
  llm_build_t b = {"m", "S", &r, 10, 0.5, 0};
  char *js;
  size_t jl;
  assert_int_equal(runpod_build(&b, 1, &js, &jl), 0);
  assert_string_equal(js, "{\"input\":{\"prompt\":\"S\\n\\nUser: Halo\\n"
                          "Assistant:\",\"sampling_params\":{\"max_tokens\":10,"
                          "\"temperature\":0.5}}}");
  free(js);
}

static void test_hf(void **state) {
  llm_out_t o;
  sink_t k;
  out_init(&o, &k);
  const char *s =
      "data:{\"index\":0,\"token\":{\"id\":0,\"text\":\"Ha\",\"special\":"
      "false},\"generated_text\":null,\"details\":null}\r\n\r\n"
      "data:{\"index\":1,\"token\":{\"id\":1,\"text\":\"</s>\",\"special\":"
      "true},\"generated_text\":null}\r\n\r\n"
      "data:{\"index\":2,\"token\":{\"id\":2,\"text\":\"lo\",\"special\":"
      "false},\"generated_text\":\"Halo\",\"details\":{\"finish_reason\":"
      "\"eos_token\",\"generated_tokens\":2}}\r\n\r\n";
  assert_int_equal(stream(hf_event, &o, s), 0);
  assert_string_equal(k.text, "Halo");
  assert_true(o.done);
  assert_string_equal(o.finish, "eos_token");
  assert_int_equal(o.output_tokens, 2);
  out_init(&o, &k);
  assert_int_equal(stream(hf_event, &o,
                          "data:{\"error\":\"busy\",\"error_type\":"
                          "\"overloaded\"}\n\n"),
                   JIWA_EUPSTREAM);
  assert_true(o.err_retryable);
  out_init(&o, &k);
  const char *arr = "[{\"generated_text\":\"Hai\"}]";
  assert_int_equal(hf_body(&o, arr, strlen(arr)), 0);
  assert_string_equal(k.text, "Hai");
  assert_true(o.done);
  out_init(&o, &k);
  const char *obj = "{\"generated_text\":\"x\",\"details\":{\"finish_reason\":"
                    "\"length\",\"generated_tokens\":1}}";
  assert_int_equal(hf_body(&o, obj, strlen(obj)), 0);
  assert_string_equal(o.finish, "length");
  out_init(&o, &k);
  assert_int_equal(hf_body(&o, "{}", 2), JIWA_EPROTO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_req_parse), cmocka_unit_test(test_params),
      cmocka_unit_test(test_backoff),   cmocka_unit_test(test_breaker),
      cmocka_unit_test(test_helpers),   cmocka_unit_test(test_anthropic),
      cmocka_unit_test(test_openai),    cmocka_unit_test(test_runpod),
      cmocka_unit_test(test_hf),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
