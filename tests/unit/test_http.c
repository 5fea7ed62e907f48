/* The HTTP engine (runtime/http/jiwa_http.h) against a local server
 * (tests/common/jt_httpd.h): streaming, every deadline with its reason,
 * size limit, reset, refused, cancel, connection reuse, 200 concurrent
 * requests, redaction of secrets in debug logs. Every request must get
 * exactly one on_done, and the loop must close with nothing left open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/jt_httpd.h"
#include "jiwa/sse.h"
#include "jiwa_http.h"

#define CANARY "sk-canary-7f3a91"

static uv_loop_t loop;
static jiwa_http_t *H;
static jt_httpd_t srv;
static uv_timer_t watchdog;
static int watchdog_fired;
static int debug_on;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char logbuf[1 << 18];
static size_t loglen;

static void cap_log(int level, const char *tag, const char *line, void *ud) {
  pthread_mutex_lock(&log_mu);
  int n = snprintf(logbuf + loglen, sizeof logbuf - loglen, "%d [%s] %s\n",
                   level, tag, line);
  if (n > 0 && loglen + (size_t)n < sizeof logbuf)
    loglen += (size_t)n;
  pthread_mutex_unlock(&log_mu);
}

static int dbg(void *ud) {
  return debug_on;
}

typedef struct call {
  int responses, datas, dones, data_after_done;
  int status, http_version;
  int64_t retry_after;
  int code, kind, reused;
  uint64_t bytes_in;
  char err[400];
  char body[8192];
  size_t blen;
  uint64_t id;
  /* what to do from the callbacks */
  int report_progress; /* tell the server how many bytes arrived */
  int cancel_on_data;
  int abort_on_data;
  struct call *then;          /* start this /ok request from on_done */
  struct call *spawn_on_data; /* start this /ok request from on_data */
  jiwa_sse_t *sse;
  int sse_events;
} call_t;

static int start_path(call_t *c, const char *path, jiwa_http_req_t *req);

static void on_response(const jiwa_http_response_t *r, void *ud) {
  call_t *c = ud;
  assert_int_equal(c->datas, 0); /* the head comes before the body */
  c->responses++;
  c->status = r->status;
  c->http_version = r->http_version;
  c->retry_after = r->retry_after_ms;
}

static int sse_ev(const jiwa_sse_event_t *ev, void *ud) {
  ((call_t *)ud)->sse_events++;
  return 0;
}

static int on_data(const void *d, size_t n, void *ud) {
  call_t *c = ud;
  if (c->dones)
    c->data_after_done++;
  c->datas++;
  size_t k =
      n < sizeof c->body - 1 - c->blen ? n : sizeof c->body - 1 - c->blen;
  memcpy(c->body + c->blen, d, k);
  c->blen += k;
  c->body[c->blen] = '\0';
  c->bytes_in += n;
  if (c->report_progress)
    jt_httpd_progress(&srv, (long)c->bytes_in);
  if (c->sse)
    assert_int_equal(jiwa_sse_feed(c->sse, d, n), 0);
  if (c->spawn_on_data) {
    jiwa_http_req_t q;
    jiwa_http_req_init(&q);
    assert_int_equal(start_path(c->spawn_on_data, "/ok", &q), 0);
    c->spawn_on_data = NULL;
  }
  if (c->cancel_on_data) {
    jt_httpd_progress(&srv, 1);
    assert_int_equal(jiwa__http_cancel(H, c->id), 0);
    assert_int_equal(jiwa__http_cancel(H, c->id), JIWA_ENOENT);
    assert_int_equal(c->dones, 0); /* cancel calls nothing itself */
  }
  return c->abort_on_data ? JIWA_EPROTO : 0;
}

static void on_done(const jiwa_http_result_t *res, void *ud) {
  call_t *c = ud;
  c->dones++;
  c->code = res->code;
  c->kind = res->kind;
  c->reused = res->reused;
  assert_int_equal(res->bytes_in, c->bytes_in);
  assert_true(res->code ? res->kind != JIWA_HTTP_FAIL_NONE
                        : res->kind == JIWA_HTTP_FAIL_NONE);
  snprintf(c->err, sizeof c->err, "%s", res->error);
  if (res->code == 0)
    assert_string_equal(res->error, "");
  else
    assert_true(strlen(res->error) > 0);
  if (c->then) {
    jiwa_http_req_t q;
    jiwa_http_req_init(&q);
    assert_int_equal(start_path(c->then, "/ok", &q), 0);
  }
}

static const jiwa_http_engine_cbs_t cbs = {on_response, on_data, on_done};

static int start_url(call_t *c, const char *url, jiwa_http_req_t *req) {
  req->url = url;
  return jiwa__http_start(H, req, &cbs, c, "test", &c->id);
}

static int start_path(call_t *c, const char *path, jiwa_http_req_t *req) {
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv.port, path);
  return start_url(c, url, req);
}

static void watchdog_cb(uv_timer_t *t) {
  watchdog_fired = 1;
}

/* Run the loop until @p n calls are done (20 s backstop, not a timing
 * assertion: a hang fails instead of blocking ctest). */
static void run_until(call_t *calls, size_t n) {
  uv_timer_start(&watchdog, watchdog_cb, 20000, 0);
  for (;;) {
    size_t done = 0;
    for (size_t i = 0; i < n; i++)
      done += calls[i].dones > 0;
    if (done == n || watchdog_fired)
      break;
    uv_run(&loop, UV_RUN_ONCE);
  }
  uv_timer_stop(&watchdog);
  assert_false(watchdog_fired);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(calls[i].dones, 1);
    assert_int_equal(calls[i].data_after_done, 0);
    assert_true(calls[i].responses <= 1);
  }
}

static int setup(void **state) {
  assert_int_equal(uv_loop_init(&loop), 0);
  uv_timer_init(&loop, &watchdog);
  watchdog_fired = 0;
  debug_on = 0;
  loglen = 0;
  logbuf[0] = '\0';
  jiwa_http_opts_t o = {.log = cap_log, .debug_enabled = dbg};
  assert_int_equal(jiwa__http_new(&H, &loop, &o), 0);
  assert_int_equal(jt_httpd_start(&srv), 0);
  return 0;
}

static int teardown(void **state) {
  jiwa__http_free(H);
  H = NULL;
  uv_close((uv_handle_t *)&watchdog, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  jt_httpd_stop(&srv);
  return 0;
}

static void test_ok(void **state) {
  call_t c = {0};
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  assert_int_equal(start_path(&c, "/ok", &q), 0);
  assert_int_not_equal(c.id, 0);
  run_until(&c, 1);
  assert_int_equal(c.code, 0);
  assert_int_equal(c.status, 200);
  assert_int_equal(c.http_version, 11);
  assert_string_equal(c.body, "hello");
  jiwa_http_stats_t st;
  jiwa__http_stats(H, &st);
  assert_int_equal(st.requests, 1);
  assert_int_equal(st.done, 1);
  assert_int_equal(st.active, 0);
  assert_int_equal(st.bytes_in, 5);
}

static void test_stream_arrives_before_end(void **state) {
  call_t c = {0}, side = {0};
  c.report_progress = 1;
  c.spawn_on_data = &side; /* a start from inside curl is deferred */
  assert_int_equal(jiwa_sse_new(&c.sse, NULL, sse_ev, &c), 0);
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  assert_int_equal(start_path(&c, "/stream", &q), 0);
  call_t all[2];
  run_until(&c, 1);
  run_until(&side, 1);
  (void)all;
  /* the server sent the rest only after we reported the first chunk */
  assert_int_equal(atomic_load(&srv.not_streamed), 0);
  assert_true(c.datas >= 2);
  assert_int_equal(c.code, 0);
  assert_int_equal(jiwa_sse_finish(c.sse), 0);
  assert_int_equal(c.sse_events, 5);
  jiwa_sse_free(c.sse);
  assert_int_equal(side.code, 0);
  assert_string_equal(side.body, "hello");
}

static void test_ttfb(void **state) {
  call_t c = {0};
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  q.ttfb_ms = 200;
  q.total_ms = 5000;
  assert_int_equal(start_path(&c, "/silent", &q), 0);
  run_until(&c, 1);
  assert_int_equal(c.code, JIWA_ETIMEDOUT);
  assert_int_equal(c.kind, JIWA_HTTP_FAIL_TTFB);
  assert_non_null(strstr(c.err, "no response within ttfb 200 ms"));
  assert_int_equal(c.responses, 0);
  jiwa_http_stats_t st;
  jiwa__http_stats(H, &st);
  assert_int_equal(st.errors[JIWA_HTTP_FAIL_TTFB], 1);
}

static void test_total_after_headers(void **state) {
  call_t c = {0};
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  q.ttfb_ms = 2000;
  q.total_ms = 300;
  assert_int_equal(start_path(&c, "/stall", &q), 0);
  run_until(&c, 1);
  assert_int_equal(c.code, JIWA_ETIMEDOUT);
  assert_int_equal(c.kind, JIWA_HTTP_FAIL_TOTAL);
  assert_non_null(strstr(c.err, "within total 300 ms"));
  assert_non_null(strstr(c.err, "10 bytes received"));
  assert_int_equal(c.responses, 1);
  assert_int_equal(c.status, 200);
}

static void test_low_speed(void **state) {
  call_t c = {0};
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  q.low_speed_bytes = 1000;
  q.low_speed_secs = 1;
  q.total_ms = 15000;
  assert_int_equal(start_path(&c, "/stall", &q), 0);
  run_until(&c, 1);
  assert_int_equal(c.code, JIWA_ETIMEDOUT);
  assert_int_equal(c.kind, JIWA_HTTP_FAIL_LOW_SPEED);
  assert_non_null(strstr(c.err, "low speed"));
}

static void test_reset_mid_body(void **state) {
  call_t c = {0};
  c.report_progress = 1;
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  assert_int_equal(start_path(&c, "/reset", &q), 0);
  run_until(&c, 1);
  assert_int_equal(c.code, JIWA_EUPSTREAM);
  assert_int_equal(c.kind, JIWA_HTTP_FAIL_RESET);
  assert_int_equal(c.bytes_in, 1234);
  assert_non_null(strstr(c.err, "after 1234 bytes"));
}

static void test_closed_before_response(void **state) {
  call_t c = {0};
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  assert_int_equal(start_path(&c, "/close", &q), 0);
  run_until(&c, 1);
  assert_int_equal(c.kind, JIWA_HTTP_FAIL_RESET);
  assert_non_null(strstr(c.err, "before any response"));
}

static void test_too_big(void **state) {
  call_t c[2] = {{0}, {0}};
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  q.max_response_bytes = 100000;
  assert_int_equal(start_path(&c[0], "/big", &q), 0);   /* counted */
  assert_int_equal(start_path(&c[1], "/bigcl", &q), 0); /* Content-Length */
  run_until(c, 2);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(c[i].code, JIWA_ETOOBIG);
    assert_int_equal(c[i].kind, JIWA_HTTP_FAIL_TOO_BIG);
    assert_non_null(strstr(c[i].err, "response larger than 100000 bytes"));
    assert_true(c[i].bytes_in <= 100000);
  }
}

static void test_refused(void **state) {
  call_t c = {0};
  char url[128];
  int port = jt_refused_port();
  snprintf(url, sizeof url, "http://127.0.0.1:%d/x?key=" CANARY, port);
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  assert_int_equal(start_url(&c, url, &q), 0);
  run_until(&c, 1);
  assert_int_equal(c.code, JIWA_EUPSTREAM);
  assert_int_equal(c.kind, JIWA_HTTP_FAIL_CONNECT);
  char want[64];
  snprintf(want, sizeof want, "could not connect to 127.0.0.1:%d", port);
  assert_non_null(strstr(c.err, want));
  assert_null(strstr(c.err, CANARY));
}

static void test_connect_timeout(void **state) {
  /* a listener with a full accept queue: further SYNs are dropped */
  int port = 0;
  int lfd = jt_listen(0, &port);
  assert_true(lfd >= 0);
  int fill[4];
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  for (int i = 0; i < 4; i++) {
    fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fill[i], (struct sockaddr *)&a, sizeof a);
  }
  jt__msleep(50);
  call_t c = {0};
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  q.connect_timeout_ms = 300;
  q.total_ms = 10000;
  assert_int_equal(start_url(&c, url, &q), 0);
  run_until(&c, 1);
  for (int i = 0; i < 4; i++)
    close(fill[i]);
  close(lfd);
  assert_int_equal(c.code, JIWA_ETIMEDOUT);
  assert_int_equal(c.kind, JIWA_HTTP_FAIL_CONNECT_TIMEOUT);
  assert_non_null(strstr(c.err, "connect timeout"));
}

static void test_retry_after_and_interim(void **state) {
  call_t c[3] = {{0}, {0}, {0}};
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  assert_int_equal(start_path(&c[0], "/retry", &q), 0);
  assert_int_equal(start_path(&c[1], "/retrydate", &q), 0);
  assert_int_equal(start_path(&c[2], "/interim", &q), 0);
  run_until(c, 3);
  assert_int_equal(c[0].code, 0); /* a status is not a transport error */
  assert_int_equal(c[0].status, 429);
  assert_int_equal(c[0].retry_after, 7000);
  assert_string_equal(c[0].body, "slow");
  assert_int_equal(c[1].status, 503);
  assert_true(c[1].retry_after > 100000 && c[1].retry_after <= 121000);
  assert_int_equal(c[2].responses, 1);
  assert_int_equal(c[2].status, 200);
  assert_string_equal(c[2].body, "ok");
}

static void test_cancel(void **state) {
  call_t c = {0};
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  assert_int_equal(start_path(&c, "/silent", &q), 0);
  assert_int_equal(jiwa__http_cancel(H, c.id), 0);
  assert_int_equal(c.dones, 0); /* not from inside cancel */
  assert_int_equal(jiwa__http_cancel(H, c.id), JIWA_ENOENT);
  assert_int_equal(jiwa__http_cancel(H, 999999), JIWA_ENOENT);
  run_until(&c, 1);
  assert_int_equal(c.code, JIWA_ECANCELED);
  assert_int_equal(c.kind, JIWA_HTTP_FAIL_CANCELED);
  assert_int_equal(jiwa__http_cancel(H, c.id), JIWA_ENOENT);

  /* from inside on_data: no more data after it */
  call_t s = {0};
  s.cancel_on_data = 1;
  assert_int_equal(start_path(&s, "/stream", &q), 0);
  run_until(&s, 1);
  assert_int_equal(s.datas, 1);
  assert_int_equal(s.code, JIWA_ECANCELED);

  /* on_data asks to stop: its code comes back */
  call_t a = {0};
  a.abort_on_data = 1;
  jt_httpd_progress(&srv, 0);
  assert_int_equal(start_path(&a, "/big", &q), 0);
  run_until(&a, 1);
  assert_int_equal(a.datas, 1);
  assert_int_equal(a.code, JIWA_EPROTO);
  assert_int_equal(a.kind, JIWA_HTTP_FAIL_ABORTED);
  assert_non_null(strstr(a.err, "aborted by the receiver"));
}

static void test_connection_reuse(void **state) {
  call_t c[2] = {{0}, {0}};
  c[0].then = &c[1];
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  assert_int_equal(start_path(&c[0], "/ok", &q), 0);
  run_until(c, 2);
  assert_int_equal(c[1].code, 0);
  assert_int_equal(c[0].reused, 0);
  assert_int_equal(c[1].reused, 1);
  assert_int_equal(atomic_load(&srv.accepted), 1);
  assert_int_equal(atomic_load(&srv.requests), 2);
  jiwa_http_stats_t st;
  jiwa__http_stats(H, &st);
  assert_int_equal(st.reused, 1);
  assert_int_equal(st.connections, 1);
}

static void test_many_concurrent(void **state) {
  enum { N = 200 };
  call_t *c = calloc(N, sizeof *c);
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  q.total_ms = 15000;
  for (int i = 0; i < N; i++)
    assert_int_equal(start_path(&c[i], "/ok", &q), 0);
  run_until(c, N);
  for (int i = 0; i < N; i++) {
    assert_int_equal(c[i].code, 0);
    assert_int_equal(c[i].status, 200);
    assert_string_equal(c[i].body, "hello");
  }
  jiwa_http_stats_t st;
  jiwa__http_stats(H, &st);
  assert_int_equal(st.done, N);
  assert_int_equal(st.active, 0);
  free(c);
}

static void test_redaction(void **state) {
  debug_on = 1;
  static const char *const redact[] = {"X-Custom", "x-secret-echo", NULL};
  jiwa_http_header_t hd[] = {{"Authorization", "Bearer " CANARY},
                             {"x-api-key", CANARY},
                             {"X-Custom", CANARY},
                             {"X-Visible", "plain-value"}};
  call_t c = {0};
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  q.method = "POST";
  q.headers = hd;
  q.nheaders = 4;
  q.body = CANARY;
  q.body_len = strlen(CANARY);
  q.redact = redact;
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/echo?key=" CANARY, srv.port);
  assert_int_equal(start_url(&c, url, &q), 0);
  run_until(&c, 1);
  assert_int_equal(c.code, 0);
  assert_string_equal(c.body, CANARY); /* it did travel */
  pthread_mutex_lock(&log_mu);
  assert_non_null(strstr(logbuf, "> POST /echo?[redacted] HTTP/1.1"));
  assert_non_null(strstr(logbuf, "Authorization: [redacted]"));
  assert_non_null(strstr(logbuf, "x-api-key: [redacted]"));
  assert_non_null(strstr(logbuf, "X-Custom: [redacted]"));
  assert_non_null(strstr(logbuf, "Set-Cookie: [redacted]"));
  assert_non_null(strstr(logbuf, "X-Secret-Echo: [redacted]"));
  assert_non_null(strstr(logbuf, "X-Visible: plain-value"));
  if (strstr(logbuf, "7f3a91"))
    fail_msg("the canary leaked into the log:\n%s", logbuf);
  pthread_mutex_unlock(&log_mu);

  char out[128];
  const char *const extra[] = {"k", NULL};
  jiwa__http_redact_line("K : v", 5, extra, NULL, out, sizeof out);
  assert_string_equal(out, "K: [redacted]");
  jiwa__http_redact_line("Cookie:a=b", 10, NULL, NULL, out, sizeof out);
  assert_string_equal(out, "Cookie: [redacted]");
  jiwa__http_redact_line("Host: h", 7, NULL, NULL, out, 4);
  assert_string_equal(out, "Hos");
}

static void test_invalid_requests(void **state) {
  call_t c = {0};
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  assert_int_equal(start_url(&c, "ftp://127.0.0.1/x", &q), JIWA_EINVAL);
  assert_int_equal(start_url(&c, "not a url", &q), JIWA_EINVAL);
  jiwa_http_header_t bad[] = {{"X-A", "v\r\nX-Injected: 1"}};
  q.headers = bad;
  q.nheaders = 1;
  assert_int_equal(start_path(&c, "/ok", &q), JIWA_EINVAL);
  jiwa_http_header_t bad2[] = {{"X A", "v"}};
  q.headers = bad2;
  assert_int_equal(start_path(&c, "/ok", &q), JIWA_EINVAL);
  jiwa_http_req_init(&q);
  q.method = "get";
  assert_int_equal(start_path(&c, "/ok", &q), JIWA_EINVAL);
  jiwa_http_req_init(&q);
  q.size = 8;
  assert_int_equal(start_path(&c, "/ok", &q), JIWA_EINVAL);
  jiwa_http_req_init(&q);
  q.url = "http://127.0.0.1/";
  jiwa_http_engine_cbs_t none = {NULL, NULL, NULL};
  assert_int_equal(jiwa__http_start(H, &q, &none, &c, NULL, NULL), JIWA_EINVAL);
  assert_int_equal(c.dones, 0);
  jiwa_http_stats_t st;
  jiwa__http_stats(H, &st);
  assert_int_equal(st.requests, 0);
}

static void test_free_with_requests_running(void **state) {
  call_t c[2] = {{0}, {0}};
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  q.ttfb_ms = 10000;
  assert_int_equal(start_path(&c[0], "/silent", &q), 0);
  assert_int_equal(start_path(&c[1], "/silent", &q), 0);
  /* let them connect and send */
  for (int i = 0; i < 20; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(jiwa__http_cancel(H, c[1].id), 0);
  jiwa__http_free(H);
  H = NULL;
  for (int i = 0; i < 2; i++)
    assert_int_equal(c[i].dones, 1);
  assert_int_equal(c[0].code, JIWA_ESHUTDOWN);
  assert_int_equal(c[1].code, JIWA_ECANCELED);
  /* teardown runs the loop and checks uv_loop_close */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ok, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_arrives_before_end, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ttfb, setup, teardown),
      cmocka_unit_test_setup_teardown(test_total_after_headers, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_low_speed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reset_mid_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_closed_before_response, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_after_and_interim, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_connection_reuse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redaction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_with_requests_running, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
