/*
 * Shared body of the provider response fuzz targets (fuzz_llm_anthropic,
 * fuzz_llm_openai, fuzz_llm_hf, fuzz_llm_runpod): the input is an event
 * stream, parsed through jiwa/sse.h into the protocol's event parser, and
 * also a whole body for the protocol's body parser.
 *
 * The first byte picks SSE limits (small ones hit the bounds often) and a
 * chunk size. The stream is parsed whole, one byte at a time and in chunks,
 * and the three runs must agree exactly: the same text pieces (hashed, in
 * order), model, finish reason, usage, end marker, job, error code and
 * message, feed and finish verdicts. Every output must be bounded and
 * NUL-terminated, errors must be the documented codes with a message, and
 * the body parser must be deterministic. Any breach aborts.
 */
#ifndef JIWA_FUZZ_LLM_H
#define JIWA_FUZZ_LLM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/sse.h"
#include "llm_common/llm_codec.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s: invariant failed at line %d: %s\n", __FILE__,       \
              __LINE__, #cond);                                                \
      abort();                                                                 \
    }                                                                          \
  } while (0)

typedef struct {
  llm_event_fn event;
  llm_out_t o;
  uint64_t hash, pieces, bytes;
  int feed_rc, fin_rc;
} fl_run_t;

static int fl_text(void *ud, const char *s, size_t n) {
  fl_run_t *r = ud;
  CHECK(s != NULL && n > 0);
  for (size_t i = 0; i < n; i++)
    r->hash = (r->hash ^ (uint8_t)s[i]) * 0x100000001b3ull;
  r->hash = (r->hash ^ 0xff) * 0x100000001b3ull; /* piece boundary */
  r->pieces++;
  r->bytes += n;
  return 0;
}

static int fl_event(const jiwa_sse_event_t *ev, void *ud) {
  fl_run_t *r = ud;
  CHECK(ev->data[ev->data_len] == '\0');
  int rc = r->event(&r->o, ev->event, ev->data, ev->data_len);
  CHECK(rc <= 0);
  if (rc)
    CHECK(r->o.err != 0); /* every failure is recorded with its message */
  return rc;
}

static int fl_strok(const char *s, size_t cap) {
  return memchr(s, '\0', cap) != NULL;
}

static void fl_check_out(const llm_out_t *o) {
  CHECK(fl_strok(o->model, sizeof o->model));
  CHECK(fl_strok(o->finish, sizeof o->finish));
  CHECK(fl_strok(o->job, sizeof o->job));
  CHECK(fl_strok(o->errmsg, sizeof o->errmsg));
  for (const char *p = o->errmsg; *p; p++)
    CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
  CHECK(o->input_tokens >= -1 && o->output_tokens >= -1);
  CHECK(o->err == 0 || o->err == JIWA_EPROTO || o->err == JIWA_EUPSTREAM ||
        o->err == JIWA_ETIMEDOUT || o->err == JIWA_ETOOBIG ||
        o->err == JIWA_ENOMEM);
  if (o->err)
    CHECK(o->errmsg[0] != '\0');
  else
    CHECK(o->errmsg[0] == '\0' && !o->err_retryable);
  CHECK(o->done == 0 || o->done == 1);
  CHECK(o->pending == 0 || o->pending == 1);
  if (o->pending)
    CHECK(o->job[0] != '\0');
}

static void fl_run(fl_run_t *r, llm_event_fn fn, const jiwa_sse_opts_t *opts,
                   const uint8_t *d, size_t n, size_t chunk) {
  memset(r, 0, sizeof *r);
  r->event = fn;
  r->hash = 0xcbf29ce484222325ull;
  r->o.on_text = fl_text;
  r->o.ud = r;
  llm_out_reset(&r->o);
  jiwa_sse_t *p;
  CHECK(jiwa_sse_new(&p, opts, fl_event, r) == 0);
  size_t off = 0;
  while (off < n) {
    size_t k = chunk && n - off > chunk ? chunk : n - off;
    int rc = jiwa_sse_feed(p, d + off, k);
    off += k;
    if (rc) {
      r->feed_rc = rc;
      break;
    }
  }
  r->fin_rc = jiwa_sse_finish(p);
  jiwa_sse_free(p);
  CHECK(r->o.texts == r->pieces && r->o.text_bytes == r->bytes);
  fl_check_out(&r->o);
}

static void fl_same(const fl_run_t *a, const fl_run_t *b) {
  CHECK(a->hash == b->hash && a->pieces == b->pieces && a->bytes == b->bytes);
  CHECK(a->feed_rc == b->feed_rc && a->fin_rc == b->fin_rc);
  CHECK(strcmp(a->o.model, b->o.model) == 0);
  CHECK(strcmp(a->o.finish, b->o.finish) == 0);
  CHECK(strcmp(a->o.job, b->o.job) == 0);
  CHECK(strcmp(a->o.errmsg, b->o.errmsg) == 0);
  CHECK(a->o.err == b->o.err && a->o.err_retryable == b->o.err_retryable);
  CHECK(a->o.done == b->o.done && a->o.pending == b->o.pending);
  CHECK(a->o.input_tokens == b->o.input_tokens);
  CHECK(a->o.output_tokens == b->o.output_tokens);
  CHECK(a->o.events == b->o.events);
}

/* The whole target for one protocol. */
static int fl_fuzz(llm_event_fn event, llm_body_fn body, const uint8_t *data,
                   size_t size) {
  if (size < 1)
    return 0;
  uint8_t sel = data[0];
  const uint8_t *d = data + 1;
  size_t n = size - 1;
  jiwa_sse_opts_t opts = {0};
  if (sel & 1) {
    opts.max_line = 16 + (sel >> 1) * 4;
    opts.max_event = 32 + (sel >> 1) * 8;
  }
  size_t chunk = 2 + (sel % 13);

  fl_run_t whole, bytes, chunks;
  fl_run(&whole, event, &opts, d, n, 0);
  fl_run(&bytes, event, &opts, d, n, 1);
  fl_run(&chunks, event, &opts, d, n, chunk);
  fl_same(&whole, &bytes);
  fl_same(&whole, &chunks);

  /* the same bytes as a whole response body, twice: deterministic */
  fl_run_t b1, b2;
  memset(&b1, 0, sizeof b1);
  memset(&b2, 0, sizeof b2);
  fl_run_t *bs[2] = {&b1, &b2};
  for (int i = 0; i < 2; i++) {
    fl_run_t *r = bs[i];
    r->hash = 0xcbf29ce484222325ull;
    r->o.on_text = fl_text;
    r->o.ud = r;
    llm_out_reset(&r->o);
    int rc = body(&r->o, (const char *)d, n);
    CHECK(rc <= 0);
    CHECK(rc == 0 || r->o.err != 0);
    CHECK(r->o.texts == r->pieces && r->o.text_bytes == r->bytes);
    fl_check_out(&r->o);
    /* a whole body is never left half-read: an answer, a job, or an error */
    if (rc == 0)
      CHECK(r->o.done || r->o.pending || r->o.err);
  }
  fl_same(&b1, &b2);
  return 0;
}

#endif
