/* HTTP through the host table, with the plugin harness: a plugin's request
 * reaches a local server, its callbacks run on its own loop, a cancel gives
 * exactly one ECANCELED on_done, and shutdown cancels what is in flight
 * *before* the plugin's fini, leaving nothing open on the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/jt.h"
#include "../common/jt_httpd.h"
#include "jiwa/harness.h"

static jt_httpd_t srv;

static jiwa_harness_t *open_harness(void) {
  char so[4096], settings[256], err[512];
  jt_plugin_path(so, sizeof so, "JIWA_TEST_PLUGIN_OUT", "tp_http");
  snprintf(settings, sizeof settings, "{ url = 'http://127.0.0.1:%d' }",
           srv.port);
  jiwa_harness_t *h = NULL;
  int rc = jiwa_harness_open(&h, so, settings, err, sizeof err);
  if (rc)
    fail_msg("harness open: %s", err);
  return h;
}

static int64_t get_int(const jiwa_msg_t *m, const char *k) {
  int64_t v = -999;
  assert_int_equal(jiwa_msg_get_int(m, k, &v), 0);
  return v;
}

static void fetch(jiwa_harness_t *h, const char *path,
                  jiwa_harness_reply_t *r) {
  jiwa_mp_writer_t w;
  jt_body_str(&w, "path", path);
  assert_int_equal(
      jiwa_harness_ask(h, "fetch", w.sbuf.data, w.sbuf.size, 10000, r), 0);
  jiwa_mp_writer_free(&w);
  assert_int_equal(jiwa_msg_kind(r->final), JIWA_MSG_REPLY);
}

static void test_fetch_on_own_loop(void **state) {
  jiwa_harness_t *h = open_harness();
  jiwa_harness_reply_t r;
  fetch(h, "/ok", &r);
  assert_int_equal(get_int(r.final, "status"), 200);
  assert_int_equal(get_int(r.final, "code"), 0);
  assert_int_equal(get_int(r.final, "same_thread"), 1);
  const char *body;
  size_t blen;
  assert_int_equal(jiwa_msg_get_str(r.final, "body", &body, &blen), 0);
  assert_int_equal(blen, 5);
  assert_memory_equal(body, "hello", 5);
  jiwa_harness_reply_free(&r);

  /* an interim 100 response is skipped; the pooled connection is reused */
  fetch(h, "/interim", &r);
  assert_int_equal(get_int(r.final, "status"), 200);
  jiwa_harness_reply_free(&r);

  /* a failure reaches the plugin with its reason */
  fetch(h, "/close", &r);
  assert_int_equal(get_int(r.final, "code"), JIWA_EUPSTREAM);
  const char *kind;
  size_t klen;
  assert_int_equal(jiwa_msg_get_str(r.final, "kind", &kind, &klen), 0);
  assert_int_equal(klen, 5);
  assert_memory_equal(kind, "reset", 5);
  jiwa_harness_reply_free(&r);

  jiwa_http_stats_t st;
  assert_int_equal(jiwa_harness_http_stats(h, &st), 0);
  assert_int_equal(st.requests, 3);
  assert_int_equal(st.active, 0);
  assert_true(st.reused >= 1); /* /interim reused the /ok connection */
  assert_int_equal(st.errors[JIWA_HTTP_FAIL_RESET], 1);
  assert_int_equal(jiwa_harness_close(h), 0);
}

static void test_cancel_and_shutdown(void **state) {
  jt_logs_capture();
  jiwa_harness_t *h = open_harness();
  jiwa_harness_reply_t r;
  assert_int_equal(jiwa_harness_tell(h, "hold", NULL, 0), 0);
  assert_int_equal(jiwa_harness_ask(h, "cancel", NULL, 0, 5000, &r), 0);
  assert_int_equal(get_int(r.final, "rc"), 0);
  jiwa_harness_reply_free(&r);
  /* on_done (ECANCELED) follows from the loop, once */
  int64_t outstanding = -1, canceled = -1;
  for (int i = 0; i < 500; i++) {
    assert_int_equal(jiwa_harness_ask(h, "status", NULL, 0, 5000, &r), 0);
    outstanding = get_int(r.final, "outstanding");
    canceled = get_int(r.final, "canceled");
    jiwa_harness_reply_free(&r);
    if (outstanding == 0)
      break;
    jt__msleep(2);
  }
  assert_int_equal(outstanding, 0);
  assert_int_equal(canceled, 1);
  assert_int_equal(jiwa_harness_ask(h, "cancel", NULL, 0, 5000, &r), 0);
  assert_int_equal(get_int(r.final, "rc"), JIWA_ENOENT);
  jiwa_harness_reply_free(&r);

  /* one more in flight at shutdown: cancelled before fini */
  assert_int_equal(jiwa_harness_tell(h, "hold", NULL, 0), 0);
  assert_int_equal(jiwa_harness_ask(h, "status", NULL, 0, 5000, &r), 0);
  assert_int_equal(get_int(r.final, "outstanding"), 1);
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_close(h), 0);
  jiwa_log_set_sink(NULL, NULL);
  pthread_mutex_lock(&jt_logs.mu);
  const char *done2 = strstr(jt_logs.buf, "tp_http: on_done ECANCELED");
  done2 = done2 ? strstr(done2 + 1, "tp_http: on_done ECANCELED") : NULL;
  const char *fini = strstr(jt_logs.buf, "tp_http: fini");
  if (!done2 || !fini || done2 > fini ||
      !strstr(jt_logs.buf, "tp_http: fini outstanding=0 canceled=2"))
    fail_msg("expected two ECANCELED on_done before fini:\n%s", jt_logs.buf);
  pthread_mutex_unlock(&jt_logs.mu);
}

static int setup(void **state) {
  assert_int_equal(jt_httpd_start(&srv), 0);
  return 0;
}

static int teardown(void **state) {
  jt_httpd_stop(&srv);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fetch_on_own_loop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_and_shutdown, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
