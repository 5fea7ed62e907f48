/* The template plugin, tested through the SDK harness (no daemon): this is
 * the example a plugin author copies along with the plugin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/jt.h"
#include "jiwa/harness.h"

static jiwa_harness_t *open_template(const char *settings) {
  char so[600], err[512];
  jt_plugin_path(so, sizeof so, "JIWA_PLUGIN_OUT", "template");
  jiwa_harness_t *h = NULL;
  int rc = jiwa_harness_open(&h, so, settings, err, sizeof err);
  if (rc)
    fail_msg("harness: %s", err);
  return h;
}

static void hello(jiwa_harness_t *h, const char *name,
                  jiwa_harness_reply_t *r) {
  jiwa_mp_writer_t w;
  jt_body_str(&w, "name", name);
  assert_int_equal(jiwa_harness_ask(h, "template.hello", w.sbuf.data,
                                    w.sbuf.size, 1000, r),
                   0);
  jiwa_mp_writer_free(&w);
}

static void test_hello_uses_config(void **state) {
  jiwa_harness_t *h = open_template("{ prefix = 'selamat datang,' }");
  jiwa_harness_reply_t r;
  hello(h, "Bu Sari", &r);
  assert_int_equal(jiwa_msg_kind(r.final), JIWA_MSG_REPLY);
  assert_string_equal(jiwa_msg_type(r.final), "template.hello.reply");
  const char *t;
  size_t n;
  assert_int_equal(jiwa_msg_get_str(r.final, "text", &t, &n), 0);
  assert_int_equal(n, strlen("selamat datang, Bu Sari"));
  assert_memory_equal(t, "selamat datang, Bu Sari", n);
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
}

static void test_bad_requests_get_errors(void **state) {
  jiwa_harness_t *h = open_template("{ max_name = 4 }");
  jiwa_harness_reply_t r;
  hello(h, "Made Wirawan", &r);
  const char *text;
  assert_int_equal(jiwa_msg_error(r.final, &text), JIWA_ETOOBIG);
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_ask(h, "template.hello", NULL, 0, 1000, &r),
                   0);
  assert_int_equal(jiwa_msg_error(r.final, &text), JIWA_EINVAL);
  jt_assert_contains(text, "needs a string field 'name'");
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_ask(h, "other", NULL, 0, 1000, &r), 0);
  assert_int_equal(jiwa_msg_error(r.final, &text), JIWA_ENOTSUP);
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_tell(h, "anything", NULL, 0), 0);
  assert_int_equal(jiwa_harness_close(h), 0);
}

static void test_config_is_validated(void **state) {
  char so[600], err[512];
  jt_plugin_path(so, sizeof so, "JIWA_PLUGIN_OUT", "template");
  jiwa_harness_t *h = NULL;
  assert_int_equal(
      jiwa_harness_open(&h, so, "{ max_name = 99999 }", err, sizeof err),
      JIWA_ECONFIG);
  jt_assert_contains(err, "max_name");
  assert_null(h);
  assert_int_equal(jiwa_harness_open(&h, so, "{ prefx = 'x' }", err,
                                     sizeof err),
                   JIWA_ECONFIG);
  jt_assert_contains(err, "prefx");
}

static void test_reload_through_harness(void **state) {
  jiwa_harness_t *h = open_template(NULL);
  char err[512];
  assert_int_equal(jiwa_harness_reload(h, err, sizeof err), 0);
  jiwa_harness_reply_t r;
  hello(h, "Wayan", &r);
  const char *t;
  size_t n;
  assert_int_equal(jiwa_msg_get_str(r.final, "text", &t, &n), 0);
  assert_memory_equal(t, "hello Wayan", n);
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hello_uses_config),
      cmocka_unit_test(test_bad_requests_get_errors),
      cmocka_unit_test(test_config_is_validated),
      cmocka_unit_test(test_reload_through_harness),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
