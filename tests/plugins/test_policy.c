/* The policy engine plugin through the harness, with fake actors standing
 * in for the golden cache, cultural RAG, memory, the models, the enricher
 * and shadow: which calls a policy makes, in what order, what reaches the
 * client, and what happens when the script breaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/jt.h"
#include "jiwa/harness.h"

/* ---- fakes --------------------------------------------------------------- */

static pthread_mutex_t calls_mu = PTHREAD_MUTEX_INITIALIZER;
static char calls[2048]; /* "golden_cache,cultural_rag,memory,claude,..." */
static char llm_context[512];
static int golden_hits; /* 1: the cache answers */
static int claude_down; /* 1: claude fails before any delta */

static void record(const char *who) {
  pthread_mutex_lock(&calls_mu);
  size_t n = strlen(calls);
  snprintf(calls + n, sizeof calls - n, "%s%s", n ? "," : "", who);
  pthread_mutex_unlock(&calls_mu);
}

static void reply_kv(jiwa_actor_t *self, const jiwa_msg_t *m,
                     const char *type, const char *k, const char *v) {
  jiwa_mp_writer_t w;
  jt_body_str(&w, k, v);
  jiwa_reply(self, m, type, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

static int fake_receive(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *m) {
  const char *me = jiwa_self_name(self);
  record(me);
  if (jiwa_msg_kind(m) != JIWA_MSG_ASK)
    return 0;
  if (strcmp(me, "golden_cache") == 0) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, golden_hits ? 2 : 1);
    jiwa_mp_put_kv_bool(&w.pk, "hit", golden_hits);
    if (golden_hits)
      jiwa_mp_put_kv_str(&w.pk, "answer", "KITAS: 4-6 minggu (golden)");
    jiwa_reply(self, m, "golden.result", w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
  } else if (strcmp(me, "cultural_rag") == 0) {
    reply_kv(self, m, "rag.result", "context", "[malu] be gentle");
  } else if (strcmp(me, "memory") == 0) {
    reply_kv(self, m, "memory.result", "summary", "user: Wayan, Ubud");
  } else if (strcmp(me, "claude") == 0 || strcmp(me, "llama") == 0 ||
             strcmp(me, "fallback") == 0) {
    if (strcmp(me, "claude") == 0 && claude_down)
      return jiwa_reply_error(self, m, JIWA_EUPSTREAM, "overloaded (529)");
    const char *ctx_s;
    size_t n;
    if (jiwa_msg_get_str(m, "context", &ctx_s, &n) == 0) {
      pthread_mutex_lock(&calls_mu);
      snprintf(llm_context, sizeof llm_context, "%.*s", (int)n, ctx_s);
      pthread_mutex_unlock(&calls_mu);
    }
    const char *parts[] = {"Halo ", "Pak ", "Wayan"};
    for (int i = 0; i < 3; i++) {
      jiwa_mp_writer_t w;
      jt_body_str(&w, "text", parts[i]);
      jiwa_stream(self, m, "llm.delta", w.sbuf.data, w.sbuf.size);
      jiwa_mp_writer_free(&w);
    }
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "text", "Halo Pak Wayan");
    jiwa_mp_put_kv_str(&w.pk, "model", me);
    jiwa_reply(self, m, "llm.final", w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
  }
  return 0;
}

static const jiwa_plugin_desc_t fake_desc = {
    JIWA_DESC_HEADER, .name = "fake", .version = "t", .receive = fake_receive};

/* ---- fixture ------------------------------------------------------------------ */

static char tmpdir[512];

static void write_file(const char *name, const char *text, char *path,
                       size_t cap) {
  snprintf(path, cap, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static jiwa_harness_t *open_policy(const char *file, const char *extra) {
  char so[600], err[600], settings[1600];
  jt_plugin_path(so, sizeof so, "JIWA_PLUGIN_OUT", "policy");
  snprintf(settings, sizeof settings,
           "{ file = '%s', fallback_actor = 'fallback', insn_budget = 200000"
           "%s }",
           file, extra ? extra : "");
  jiwa_harness_t *h = NULL;
  if (jiwa_harness_open(&h, so, settings, err, sizeof err))
    fail_msg("harness: %s", err);
  const char *fakes[] = {"golden_cache", "cultural_rag", "memory", "claude",
                         "llama", "fallback", "jiwa_enricher", "shadow"};
  for (size_t i = 0; i < sizeof fakes / sizeof *fakes; i++)
    if (jiwa_harness_add_actor(h, fakes[i], &fake_desc, err, sizeof err))
      fail_msg("fake %s: %s", fakes[i], err);
  return h;
}

static void hybrid_path(char *out, size_t cap) {
  const char *src = getenv("JIWA_SOURCE_DIR");
  snprintf(out, cap, "%s/scripts/policies/hybrid.lua", src ? src : ".");
}

static void chat(jiwa_harness_t *h, const char *text, int stream,
                 jiwa_harness_reply_t *r) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 3);
  jiwa_mp_put_kv_str(&w.pk, "text", text);
  jiwa_mp_put_kv_str(&w.pk, "user", "u-wayan");
  jiwa_mp_put_kv_bool(&w.pk, "stream", stream);
  assert_int_equal(
      jiwa_harness_ask(h, "chat", w.sbuf.data, w.sbuf.size, 5000, r), 0);
  jiwa_mp_writer_free(&w);
}

static void expect_field(const jiwa_msg_t *m, const char *key,
                         const char *want) {
  const char *t;
  size_t n;
  if (jiwa_msg_kind(m) == JIWA_MSG_ERROR) {
    const char *text;
    jiwa_msg_error(m, &text);
    fail_msg("got an error instead of a reply: %s", text);
  }
  assert_int_equal(jiwa_msg_get_str(m, key, &t, &n), 0);
  if (n != strlen(want) || memcmp(t, want, n) != 0)
    fail_msg("%s: got \"%.*s\", want \"%s\"", key, (int)n, t, want);
}

static int setup(void **state) {
  jt_tempdir(tmpdir, sizeof tmpdir, "policy");
  calls[0] = llm_context[0] = '\0';
  golden_hits = claude_down = 0;
  jt_logs_capture();
  return 0;
}

static int teardown(void **state) {
  jiwa_log_set_sink(NULL, NULL);
  jt_rmtree(tmpdir);
  return 0;
}

static void settle(void) { usleep(50000); } /* let background tells land */

/* ---- hybrid ------------------------------------------------------------------ */

static void test_hybrid_golden_hit_skips_models(void **state) {
  char file[600];
  hybrid_path(file, sizeof file);
  jiwa_harness_t *h = open_policy(file, NULL);
  golden_hits = 1;
  jiwa_harness_reply_t r;
  chat(h, "berapa lama proses KITAS?", 0, &r);
  expect_field(r.final, "route", "golden");
  expect_field(r.final, "text", "KITAS: 4-6 minggu (golden)");
  jiwa_harness_reply_free(&r);
  settle();
  assert_string_equal(calls, "golden_cache");
  assert_int_equal(jiwa_harness_close(h), 0);
}

static void test_hybrid_full_route_streams(void **state) {
  char file[600];
  hybrid_path(file, sizeof file);
  jiwa_harness_t *h = open_policy(file, ", vars = { persona = 'ramah' }");
  jiwa_harness_reply_t r;
  chat(h, "aku malu nih, mau tanya soal visa", 1, &r);
  expect_field(r.final, "route", "hybrid");
  expect_field(r.final, "text", "Halo Pak Wayan");
  expect_field(r.final, "model", "claude");
  assert_int_equal(r.ndeltas, 3);
  expect_field(r.deltas[0], "text", "Halo ");
  expect_field(r.deltas[2], "text", "Wayan");
  jiwa_harness_reply_free(&r);
  settle();
  /* golden first; RAG and memory in parallel (either order); the model;
   * then the background tells */
  jt_assert_contains(calls, "golden_cache,");
  jt_assert_contains(calls, "cultural_rag");
  jt_assert_contains(calls, "memory");
  jt_assert_contains(calls, "claude,jiwa_enricher,shadow");
  assert_string_equal(llm_context, "[malu] be gentle\nuser: Wayan, Ubud");
  assert_int_equal(jiwa_harness_close(h), 0);
}

static void test_hybrid_model_fallback_chain(void **state) {
  char file[600];
  hybrid_path(file, sizeof file);
  jiwa_harness_t *h = open_policy(file, NULL);
  claude_down = 1;
  jiwa_harness_reply_t r;
  chat(h, "ciao, quanto costa il KITAS?", 0, &r);
  expect_field(r.final, "model", "llama");
  jiwa_harness_reply_free(&r);
  settle();
  jt_assert_contains(calls, "claude,llama");
  assert_int_equal(jiwa_harness_close(h), 0);
}

/* ---- failures go to the fallback route ---------------------------------------------- */

static void expect_fallback(const char *script, const char *log_needle) {
  char file[600];
  write_file("p.lua", script, file, sizeof file);
  jiwa_harness_t *h = open_policy(file, NULL);
  jiwa_harness_reply_t r;
  chat(h, "halo", 0, &r);
  expect_field(r.final, "model", "fallback");
  jiwa_harness_reply_free(&r);
  if (!jt_logs_have(log_needle))
    fail_msg("log lacks \"%s\":\n%s", log_needle, jt_logs.buf);
  /* and the engine still serves the next request */
  chat(h, "lagi", 0, &r);
  expect_field(r.final, "model", "fallback");
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
}

static void test_script_error_falls_back(void **state) {
  expect_fallback("function on_chat(req)\n  local x = nil\n  return x.y\nend\n",
                  "policy p.lua failed (error): p.lua:3:");
}

static void test_undefined_global_falls_back(void **state) {
  expect_fallback("function on_chat(req)\n  return { text = undefined_thing }"
                  "\nend\n",
                  "undefined_thing");
}

static void test_budget_falls_back(void **state) {
  expect_fallback("function on_chat(req)\n  while true do end\nend\n",
                  "failed (instruction budget)");
}

static void test_pcall_cannot_swallow_budget(void **state) {
  expect_fallback("function on_chat(req)\n  for i = 1, 100 do\n"
                  "    pcall(function() while true do end end)\n  end\n"
                  "  return { text = 'escaped' }\nend\n",
                  "failed (instruction budget)");
}

static void test_memory_bomb_falls_back(void **state) {
  expect_fallback("function on_chat(req)\n  local t = {}\n"
                  "  for i = 1, 1e9 do t[i] = string.rep('x', 1024) .. i end"
                  "\nend\n",
                  "policy p.lua failed");
}

static void test_no_reply_falls_back(void **state) {
  expect_fallback("function on_chat(req)\n  return 42\nend\n",
                  "neither replied nor returned a table");
}

static void ask_type(jiwa_harness_t *h, const char *type,
                     jiwa_harness_reply_t *r);

static void test_detect_language(void **state) {
  char file[600];
  write_file("lang.lua",
             "function on_chat(req)\n"
             "  local lang, conf = jiwa.detect_language(req.text)\n"
             "  assert(conf >= 0 and conf <= 1)\n"
             "  return { text = lang }\nend\n",
             file, sizeof file);
  jiwa_harness_t *h = open_policy(file, NULL);
  const char *cases[][2] = {{"aku malu nih", "id"},
                            {"ciao, quanto costa?", "it"},
                            {"how long does a KITAS take?", "en"},
                            {"12345 !!!", "unknown"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    jiwa_harness_reply_t r;
    chat(h, cases[i][0], 0, &r);
    expect_field(r.final, "text", cases[i][1]);
    jiwa_harness_reply_free(&r);
  }
  assert_int_equal(jiwa_harness_close(h), 0);
}

/* A saved change of the file is picked up by the watch; a broken save is
 * refused and the running policy keeps serving. */
static void test_file_watch_reloads(void **state) {
  char file[600];
  write_file("w.lua", "function on_chat(req) return { text = 'v1' } end\n",
             file, sizeof file);
  jiwa_harness_t *h = open_policy(file, ", watch_ms = 20");
  jiwa_harness_reply_t r;
  chat(h, "x", 0, &r);
  expect_field(r.final, "text", "v1");
  jiwa_harness_reply_free(&r);
  usleep(30000); /* a different mtime even on coarse clocks */
  write_file("w.lua",
             "function on_chat(req) return { text = 'v2 longer' } end\n",
             file, sizeof file);
  int seen = 0;
  for (int i = 0; i < 500 && !seen; i++) {
    chat(h, "x", 0, &r);
    const char *t;
    size_t n;
    seen = jiwa_msg_get_str(r.final, "text", &t, &n) == 0 && n == 9;
    jiwa_harness_reply_free(&r);
    if (!seen)
      usleep(10000);
  }
  assert_true(seen);
  write_file("w.lua", "function on_chat(req) return {\n", file, sizeof file);
  usleep(200000); /* several watch periods */
  chat(h, "x", 0, &r);
  expect_field(r.final, "text", "v2 longer");
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
}

/* Calls that belong to a request are refused, with a clear error, when the
 * script runs them at load time or in self_test (no request exists then);
 * jiwa.config and jiwa.log work there. */
static void test_host_calls_outside_a_request(void **state) {
  char file[600];
  write_file("ok.lua", "function on_chat(req) return { text = 'v1' } end\n",
             file, sizeof file);
  jiwa_harness_t *h = open_policy(file, ", vars = { greeting = 'halo' }");
  const char *scripts[] = {
      "jiwa.ask('memory', 'memory.get', {})\n"
      "function on_chat(req) return {} end\n",
      "function on_chat(req) return {} end\n"
      "function self_test() jiwa.tell('shadow', 'x', {}) end\n",
      "function on_chat(req) return {} end\n"
      "function self_test() jiwa.reply({ text = 'x' }) end\n"};
  for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++) {
    write_file("ok.lua", scripts[i], file, sizeof file);
    jiwa_harness_reply_t r;
    ask_type(h, "policy.reload", &r);
    const char *text;
    assert_int_equal(jiwa_msg_error(r.final, &text), JIWA_ECONFIG);
    jt_assert_contains(text, "can only be called while a chat request runs");
    jiwa_harness_reply_free(&r);
  }
  write_file("ok.lua",
             "function on_chat(req) return { text = jiwa.config().greeting }"
             " end\n"
             "function self_test()\n"
             "  jiwa.log('info', 'self test sees ' .. jiwa.config().greeting)\n"
             "  return jiwa.config().greeting == 'halo'\nend\n",
             file, sizeof file);
  jiwa_harness_reply_t r;
  ask_type(h, "policy.reload", &r);
  assert_int_equal(jiwa_msg_kind(r.final), JIWA_MSG_REPLY);
  jiwa_harness_reply_free(&r);
  chat(h, "x", 0, &r);
  expect_field(r.final, "text", "halo");
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
}

/* ---- reload ---------------------------------------------------------------------- */

static void ask_type(jiwa_harness_t *h, const char *type,
                     jiwa_harness_reply_t *r) {
  assert_int_equal(jiwa_harness_ask(h, type, NULL, 0, 5000, r), 0);
}

static void test_reload_swaps_and_refuses_broken(void **state) {
  char file[600];
  write_file("p.lua",
             "function on_chat(req) return { text = 'v1' } end\n", file,
             sizeof file);
  jiwa_harness_t *h = open_policy(file, NULL);
  jiwa_harness_reply_t r;
  chat(h, "x", 0, &r);
  expect_field(r.final, "text", "v1");
  jiwa_harness_reply_free(&r);

  /* a syntax error is refused with its line; v1 keeps serving */
  write_file("p.lua", "function on_chat(req)\n  return {\nend\n", file,
             sizeof file);
  ask_type(h, "policy.reload", &r);
  const char *text;
  assert_int_equal(jiwa_msg_error(r.final, &text), JIWA_ECONFIG);
  jt_assert_contains(text, "p.lua:3:");
  jiwa_harness_reply_free(&r);
  chat(h, "x", 0, &r);
  expect_field(r.final, "text", "v1");
  jiwa_harness_reply_free(&r);

  /* a failing self_test is refused too */
  write_file("p.lua",
             "function on_chat(req) return { text = 'v2' } end\n"
             "function self_test() return false end\n",
             file, sizeof file);
  ask_type(h, "policy.reload", &r);
  assert_int_equal(jiwa_msg_error(r.final, &text), JIWA_ECONFIG);
  jt_assert_contains(text, "self_test() returned false");
  jiwa_harness_reply_free(&r);

  /* a good one is swapped in */
  write_file("p.lua",
             "function on_chat(req) return { text = 'v3' } end\n"
             "function self_test() return true end\n",
             file, sizeof file);
  ask_type(h, "policy.reload", &r);
  assert_int_equal(jiwa_msg_kind(r.final), JIWA_MSG_REPLY);
  jiwa_harness_reply_free(&r);
  chat(h, "x", 0, &r);
  expect_field(r.final, "text", "v3");
  jiwa_harness_reply_free(&r);
  ask_type(h, "policy.show", &r);
  expect_field(r.final, "fallback", "fallback");
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
}

/* Requests in flight finish on the state they started on. */
static void test_reload_during_requests(void **state) {
  char file[600];
  hybrid_path(file, sizeof file);
  jiwa_harness_t *h = open_policy(file, NULL);
  for (int i = 0; i < 50; i++) {
    jiwa_harness_reply_t r;
    chat(h, "apa kabar", i % 2, &r);
    expect_field(r.final, "text", "Halo Pak Wayan");
    jiwa_harness_reply_free(&r);
    ask_type(h, "policy.reload", &r);
    assert_int_equal(jiwa_msg_kind(r.final), JIWA_MSG_REPLY);
    jiwa_harness_reply_free(&r);
  }
  assert_int_equal(jiwa_harness_close(h), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_hybrid_golden_hit_skips_models,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_hybrid_full_route_streams, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_hybrid_model_fallback_chain, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_script_error_falls_back, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_undefined_global_falls_back, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_budget_falls_back, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_pcall_cannot_swallow_budget, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_memory_bomb_falls_back, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_no_reply_falls_back, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_detect_language, setup, teardown),
      cmocka_unit_test_setup_teardown(test_host_calls_outside_a_request,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_watch_reloads, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_reload_swaps_and_refuses_broken,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_reload_during_requests, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
