/*
 * Fuzz target for the SSE parser (include/jiwa/sse.h), the decoder of
 * provider streams.
 *
 * The first input byte picks the limits (small ones, so the bounds are hit
 * often); the rest is the stream. It is parsed three ways — whole, byte by
 * byte, and in chunks whose sizes come from the input itself — and beyond
 * "does not crash" the three must agree exactly: same events (name, data,
 * id, retry, in order), same feed verdict, same finish verdict, same
 * counters. Every event must respect the bounds and be NUL-terminated.
 * Any disagreement aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/sse.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_sse: invariant failed at line %d: %s\n", __LINE__, \
              #cond);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

typedef struct {
  uint64_t hash; /* FNV-1a over every event's fields */
  uint64_t n;
  size_t max_event;
} rec_t;

static void mix(rec_t *r, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    r->hash = (r->hash ^ b[i]) * 0x100000001b3ull;
  r->hash = (r->hash ^ 0xff) * 0x100000001b3ull; /* field separator */
}

static int on_event(const jiwa_sse_event_t *ev, void *ud) {
  rec_t *r = ud;
  CHECK(ev->event && ev->data && ev->id);
  CHECK(ev->event[ev->event_len] == '\0');
  CHECK(ev->data[ev->data_len] == '\0');
  CHECK(ev->id[ev->id_len] == '\0');
  CHECK(memchr(ev->id, '\0', ev->id_len) == NULL);
  CHECK(ev->data_len <= r->max_event && ev->event_len <= r->max_event);
  CHECK(ev->retry_ms >= -1);
  mix(r, ev->event, ev->event_len);
  mix(r, ev->data, ev->data_len);
  mix(r, ev->id, ev->id_len);
  mix(r, &ev->retry_ms, sizeof ev->retry_ms);
  r->n++;
  return 0;
}

typedef struct {
  rec_t rec;
  int feed_rc, fin_rc;
  jiwa_sse_stats_t st;
} run_t;

/* mode 0: whole; 1: byte by byte; 2: chunk sizes taken from the input */
static void run(const uint8_t *d, size_t n, const jiwa_sse_opts_t *o, int mode,
                run_t *out) {
  memset(out, 0, sizeof *out);
  out->rec.hash = 0xcbf29ce484222325ull;
  out->rec.max_event = o->max_event;
  jiwa_sse_t *p;
  CHECK(jiwa_sse_new(&p, o, on_event, &out->rec) == 0);
  size_t off = 0, k = 0;
  int rc = 0;
  while (off < n) {
    size_t step = mode == 0 ? n : mode == 1 ? 1 : 1 + (size_t)(d[k++ % n] % 23);
    if (step > n - off)
      step = n - off;
    int r = jiwa_sse_feed(p, d + off, step);
    if (r && !rc)
      rc = r;
    off += step;
  }
  out->feed_rc = rc;
  out->fin_rc = jiwa_sse_finish(p);
  CHECK(out->fin_rc == 0 || out->fin_rc == JIWA_EPROTO ||
        out->fin_rc == JIWA_ETOOBIG || out->fin_rc == JIWA_ENOMEM);
  CHECK((out->fin_rc == 0) == (jiwa_sse_error(p)[0] == '\0'));
  jiwa_sse_stats(p, &out->st);
  CHECK(out->st.events == out->rec.n);
  jiwa_sse_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  static const size_t lines[] = {0, 8, 32, 300};
  static const size_t events[] = {0, 16, 64, 1000};
  jiwa_sse_opts_t o = {.max_line = lines[data[0] & 3],
                       .max_event = events[(data[0] >> 2) & 3]};
  if (!o.max_event)
    o.max_event = JIWA_SSE_MAX_EVENT_DEFAULT;
  const uint8_t *d = data + 1;
  size_t n = size - 1;
  run_t a, b, c;
  run(d, n, &o, 0, &a);
  run(d, n, &o, 1, &b);
  run(d, n, &o, 2, &c);
  CHECK(a.rec.hash == b.rec.hash && a.rec.hash == c.rec.hash);
  CHECK(a.rec.n == b.rec.n && a.rec.n == c.rec.n);
  CHECK(a.feed_rc == b.feed_rc && a.feed_rc == c.feed_rc);
  CHECK(a.fin_rc == b.fin_rc && a.fin_rc == c.fin_rc);
  if (a.feed_rc == 0) { /* after an error the counters stop where it hit */
    CHECK(a.st.lines == b.st.lines && a.st.lines == c.st.lines);
    CHECK(a.st.comments == b.st.comments && a.st.comments == c.st.comments);
    CHECK(a.st.ignored == b.st.ignored && a.st.ignored == c.st.ignored);
  }
  return 0;
}
