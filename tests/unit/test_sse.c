/* The SSE parser (include/jiwa/sse.h): line ends, chunk splits, BOM,
 * comments, fields, bounds, truncation, sticky errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jiwa/sse.h"

/* Events rendered as "event|data|id|retry\n" lines for easy comparison. */
typedef struct {
  char out[65536];
  size_t len;
  int n;
  int stop_at; /* return an error on this event (1-based), 0 = never */
} rec_t;

static int on_event(const jiwa_sse_event_t *ev, void *ud) {
  rec_t *r = ud;
  r->n++;
  assert_int_equal(strlen(ev->event), ev->event_len);
  assert_int_equal(ev->data[ev->data_len], '\0');
  int w = snprintf(r->out + r->len, sizeof r->out - r->len, "%s|%.*s|%s|%lld\n",
                   ev->event, (int)ev->data_len, ev->data, ev->id,
                   (long long)ev->retry_ms);
  if (w > 0)
    r->len += (size_t)w;
  return r->stop_at && r->n == r->stop_at ? JIWA_EPROTO : 0;
}

/* Parse @p s split into chunks of @p chunk bytes (0 = whole). */
static int parse(const char *s, size_t len, size_t chunk, rec_t *r,
                 const jiwa_sse_opts_t *o, int *finish_rc,
                 jiwa_sse_stats_t *st) {
  jiwa_sse_t *p;
  assert_int_equal(jiwa_sse_new(&p, o, on_event, r), 0);
  int rc = 0;
  size_t step = chunk ? chunk : len;
  for (size_t off = 0; off < len && rc == 0; off += step) {
    size_t n = len - off < step ? len - off : step;
    rc = jiwa_sse_feed(p, s + off, n);
  }
  if (finish_rc)
    *finish_rc = jiwa_sse_finish(p);
  if (st)
    jiwa_sse_stats(p, st);
  jiwa_sse_free(p);
  return rc;
}

static const char anthropic[] = "\xef\xbb\xbf"
                                "event: message_start\r\n"
                                "data: {\"type\":\"message_start\"}\r\n"
                                "\r\n"
                                ": keep-alive\n"
                                "event: ping\rdata: {\"type\": \"ping\"}\r\r"
                                "event: content_block_delta\n"
                                "data: {\"delta\":{\"text\":\"Halo\"}}\n"
                                "id: 7\n"
                                "retry: 1500\n"
                                "\n"
                                "data:no-space\n"
                                "data:  two-spaces\n"
                                "data\n"
                                "unknown: field\n"
                                "\n"
                                "event: message_stop\r\n"
                                "data: {\"type\":\"message_stop\"}\r\n"
                                "\r\n";

static const char anthropic_expect[] =
    "message_start|{\"type\":\"message_start\"}||-1\n"
    "ping|{\"type\": \"ping\"}||-1\n"
    "content_block_delta|{\"delta\":{\"text\":\"Halo\"}}|7|1500\n"
    "message|no-space\n two-spaces\n|7|1500\n"
    "message_stop|{\"type\":\"message_stop\"}|7|1500\n";

static void test_fields_and_line_ends(void **state) {
  rec_t r = {0};
  int fin;
  jiwa_sse_stats_t st;
  assert_int_equal(
      parse(anthropic, sizeof anthropic - 1, 0, &r, NULL, &fin, &st), 0);
  assert_int_equal(fin, 0);
  assert_string_equal(r.out, anthropic_expect);
  assert_int_equal(st.events, 5);
  assert_int_equal(st.comments, 1);
  assert_int_equal(st.ignored, 1);
}

static void test_any_split_same_events(void **state) {
  rec_t whole = {0};
  assert_int_equal(
      parse(anthropic, sizeof anthropic - 1, 0, &whole, NULL, NULL, NULL), 0);
  for (size_t chunk = 1; chunk <= 17; chunk++) {
    rec_t r = {0};
    int fin;
    assert_int_equal(
        parse(anthropic, sizeof anthropic - 1, chunk, &r, NULL, &fin, NULL), 0);
    assert_int_equal(fin, 0);
    assert_string_equal(r.out, whole.out);
  }
}

static void test_cr_lf_across_chunks(void **state) {
  /* "a\r" | "\n" is one line end: no blank line, so one event "a\nb" */
  jiwa_sse_t *p;
  rec_t r = {0};
  assert_int_equal(jiwa_sse_new(&p, NULL, on_event, &r), 0);
  assert_int_equal(jiwa_sse_feed(p, "data: a\r", 8), 0);
  assert_int_equal(jiwa_sse_feed(p, "\n", 1), 0);
  assert_int_equal(jiwa_sse_feed(p, "data: b\r", 8), 0);
  assert_int_equal(r.n, 0);
  assert_int_equal(jiwa_sse_feed(p, "\r", 1), 0); /* CR CR: blank line */
  assert_int_equal(r.n, 1);
  assert_string_equal(r.out, "message|a\nb||-1\n");
  assert_int_equal(jiwa_sse_finish(p), 0);
  jiwa_sse_free(p);
}

static void test_bom_only_at_start(void **state) {
  rec_t r = {0};
  const char s[] = "\xef\xbb\xbf"
                   "data: x\n\n"
                   "data: \xef\xbb\xbfy\n\n";
  assert_int_equal(parse(s, sizeof s - 1, 1, &r, NULL, NULL, NULL), 0);
  assert_string_equal(r.out, "message|x||-1\nmessage|\xef\xbb\xbfy||-1\n");
  /* a partial BOM is content */
  rec_t r2 = {0};
  const char s2[] = "\xef\xbb"
                    "data: z\n\n"
                    "data: w\n\n";
  assert_int_equal(parse(s2, sizeof s2 - 1, 1, &r2, NULL, NULL, NULL), 0);
  assert_string_equal(r2.out, "message|w||-1\n");
}

static void test_no_data_no_dispatch(void **state) {
  rec_t r = {0};
  const char s[] = "event: x\n\nid: 1\n\nretry: abc\n\n: c\n\ndata: d\n\n";
  jiwa_sse_stats_t st;
  assert_int_equal(parse(s, sizeof s - 1, 0, &r, NULL, NULL, &st), 0);
  /* the event name did not leak into the next event; the id persisted */
  assert_string_equal(r.out, "message|d|1|-1\n");
  assert_int_equal(st.ignored, 1);
  assert_int_equal(st.comments, 1);
}

static void test_truncated(void **state) {
  int fin;
  rec_t r = {0};
  const char s[] = "data: a\n\ndata: partial\n";
  assert_int_equal(parse(s, sizeof s - 1, 3, &r, NULL, &fin, NULL), 0);
  assert_int_equal(r.n, 1);
  assert_int_equal(fin, JIWA_EPROTO);

  jiwa_sse_t *p;
  assert_int_equal(jiwa_sse_new(&p, NULL, on_event, &r), 0);
  assert_int_equal(jiwa_sse_feed(p, "data: cut in the mid", 20), 0);
  assert_int_equal(jiwa_sse_finish(p), JIWA_EPROTO);
  assert_non_null(strstr(jiwa_sse_error(p), "truncated"));
  jiwa_sse_free(p);

  /* only comments after the last event: a clean end */
  rec_t r2 = {0};
  const char c[] = "data: a\n\n: ping\n: ping\n";
  assert_int_equal(parse(c, sizeof c - 1, 0, &r2, NULL, &fin, NULL), 0);
  assert_int_equal(fin, 0);
}

static void test_bounds(void **state) {
  jiwa_sse_opts_t o = {.max_line = 64, .max_event = 100};
  char line[200];
  memset(line, 'x', sizeof line);
  memcpy(line, "data: ", 6);
  rec_t r = {0};
  jiwa_sse_t *p;
  assert_int_equal(jiwa_sse_new(&p, &o, on_event, &r), 0);
  /* fed byte by byte: fails as soon as the line passes 64 bytes */
  int rc = 0;
  size_t i = 0;
  for (; i < sizeof line && rc == 0; i++)
    rc = jiwa_sse_feed(p, line + i, 1);
  assert_int_equal(rc, JIWA_ETOOBIG);
  assert_int_equal(i, 65);
  assert_non_null(strstr(jiwa_sse_error(p), "line longer than 64"));
  assert_int_equal(jiwa_sse_feed(p, "\n\n", 2), JIWA_ETOOBIG); /* sticky */
  assert_int_equal(jiwa_sse_finish(p), JIWA_ETOOBIG);
  jiwa_sse_free(p);

  /* many short data lines: the event bound */
  rec_t r2 = {0};
  assert_int_equal(jiwa_sse_new(&p, &o, on_event, &r2), 0);
  rc = 0;
  for (int k = 0; k < 50 && rc == 0; k++)
    rc = jiwa_sse_feed(p, "data: 0123456789\n", 17);
  assert_int_equal(rc, JIWA_ETOOBIG);
  assert_non_null(strstr(jiwa_sse_error(p), "event larger than 100"));
  assert_int_equal(r2.n, 0);
  jiwa_sse_free(p);
}

static void test_callback_stop_and_reset(void **state) {
  rec_t r = {.stop_at = 2};
  jiwa_sse_t *p;
  assert_int_equal(jiwa_sse_new(&p, NULL, on_event, &r), 0);
  const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
  assert_int_equal(jiwa_sse_feed(p, s, sizeof s - 1), JIWA_EPROTO);
  assert_int_equal(r.n, 2);
  assert_int_equal(jiwa_sse_feed(p, s, sizeof s - 1), JIWA_EPROTO);
  assert_int_equal(r.n, 2);
  jiwa_sse_reset(p);
  r.stop_at = 0;
  assert_int_equal(jiwa_sse_feed(p, "data: again\n\n", 13), 0);
  assert_int_equal(r.n, 3);
  assert_int_equal(jiwa_sse_finish(p), 0);
  jiwa_sse_free(p);
  assert_int_equal(jiwa_sse_new(&p, NULL, NULL, NULL), JIWA_EINVAL);
}

static void test_nul_in_data_and_id(void **state) {
  rec_t r = {0};
  const char s[] = "id: a\0b\ndata: x\0y\n\n";
  jiwa_sse_t *p;
  assert_int_equal(jiwa_sse_new(&p, NULL, on_event, &r), 0);
  assert_int_equal(jiwa_sse_feed(p, s, sizeof s - 1), 0);
  assert_int_equal(r.n, 1);
  jiwa_sse_stats_t st;
  jiwa_sse_stats(p, &st);
  assert_int_equal(st.ignored, 1); /* the id with a NUL */
  jiwa_sse_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fields_and_line_ends),
      cmocka_unit_test(test_any_split_same_events),
      cmocka_unit_test(test_cr_lf_across_chunks),
      cmocka_unit_test(test_bom_only_at_start),
      cmocka_unit_test(test_no_data_no_dispatch),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_bounds),
      cmocka_unit_test(test_callback_stop_and_reset),
      cmocka_unit_test(test_nul_in_data_and_id),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
