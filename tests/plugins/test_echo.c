/* The echo plugin through the harness: plain, delayed and streamed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/jt.h"
#include "jiwa/harness.h"

static jiwa_harness_t *open_echo(const char *settings) {
  char so[600], err[512];
  jt_plugin_path(so, sizeof so, "JIWA_PLUGIN_OUT", "echo");
  jiwa_harness_t *h = NULL;
  if (jiwa_harness_open(&h, so, settings, err, sizeof err))
    fail_msg("harness: %s", err);
  return h;
}

static void ask_text(jiwa_harness_t *h, const char *text, uint32_t timeout,
                     jiwa_harness_reply_t *r) {
  jiwa_mp_writer_t w;
  jt_body_str(&w, "text", text);
  assert_int_equal(
      jiwa_harness_ask(h, "echo", w.sbuf.data, w.sbuf.size, timeout, r), 0);
  jiwa_mp_writer_free(&w);
}

static void expect_text(const jiwa_msg_t *m, const char *key,
                        const char *want) {
  const char *t;
  size_t n;
  assert_int_equal(jiwa_msg_get_str(m, key, &t, &n), 0);
  if (n != strlen(want) || memcmp(t, want, n) != 0)
    fail_msg("%s: got \"%.*s\", want \"%s\"", key, (int)n, t, want);
}

static void test_echo_plain(void **state) {
  jiwa_harness_t *h = open_echo(NULL);
  jiwa_harness_reply_t r;
  ask_text(h, "apa kabar", 1000, &r);
  expect_text(r.final, "text", "halo, apa kabar");
  assert_int_equal(r.ndeltas, 0);
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_ask(h, "ping", NULL, 0, 1000, &r), 0);
  assert_string_equal(jiwa_msg_type(r.final), "pong");
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
}

static void test_echo_stream(void **state) {
  jiwa_harness_t *h = open_echo("{ stream = true, greeting = 'ciao' }");
  jiwa_harness_reply_t r;
  ask_text(h, "quanto costa", 1000, &r);
  assert_int_equal(r.ndeltas, 3);
  expect_text(r.deltas[0], "text", "ciao, ");
  expect_text(r.deltas[1], "text", "quanto ");
  expect_text(r.deltas[2], "text", "costa");
  expect_text(r.final, "text", "ciao, quanto costa");
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
}

static void test_echo_delay_and_deadline(void **state) {
  jiwa_harness_t *h = open_echo("{ delay_ms = 200 }");
  jiwa_harness_reply_t r;
  ask_text(h, "sabar", 2000, &r);
  expect_text(r.final, "text", "halo, sabar");
  jiwa_harness_reply_free(&r);
  ask_text(h, "terlambat", 20, &r);
  const char *text;
  assert_int_equal(jiwa_msg_error(r.final, &text), JIWA_ETIMEDOUT);
  jiwa_harness_reply_free(&r);
  /* closing with an answer still pending must not leak (ASan checks) */
  assert_int_equal(jiwa_harness_close(h), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_echo_plain),
      cmocka_unit_test(test_echo_stream),
      cmocka_unit_test(test_echo_delay_and_deadline),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
