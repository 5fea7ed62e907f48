/*
 * llm_call — the lifecycle of one `llm.complete` ask, shared by every
 * provider plugin (see llm.h).
 *
 *   receive ─▶ parse, presets, system prompt, build the request once
 *           ─▶ breaker admits (or EDOWN now) ─▶ attempt ─▶ HTTP
 *   attempt ─▶ on_response (status, SSE or not) ─▶ on_data (SSE parser →
 *              protocol → text → llm.delta when the asker streams)
 *           ─▶ on_done: classify → OK: llm.final
 *                                → retryable, nothing forwarded, time and
 *                                  attempts left, circuit closed: backoff
 *                                  timer ─▶ attempt
 *                                → job pending (RunPod): poll timer ─▶ poll
 *                                → else: one error reply
 *   deadline timer (ask deadline − margin, or total_timeout_ms): cancel
 *   the HTTP request, answer ETIMEDOUT.
 *
 * A call is freed once it has replied and nothing of it is pending: no
 * HTTP request (on_done comes after a cancel), no timer.
 */
#include "llm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Error bodies of non-2xx answers: enough for a message, never more. */
#define ERRBODY_MAX (16u << 10)

struct llm_call {
  llm_call_t *prev, *next;
  llm_inst_t *inst;
  jiwa_actor_t *self;
  jiwa_msg_t *req; /* retained ask */
  llm_req_t r;     /* borrows req's body */
  char *system;
  llm_build_t build;
  llm_preset_t preset;
  llm_http_t http; /* the submission, reused by retries */
  llm_http_t aux;  /* the current poll */
  uint64_t t0, deadline;
  uint64_t http_id;
  int http_active;
  int polling;    /* the request in flight is a status poll */
  uint64_t timer_id;
  int timer_active; /* backoff or poll timer */
  uint64_t dl_id;
  int dl_active;
  int attempts;   /* submissions made */
  int poll_fails; /* consecutive failed polls */
  int probe;      /* admitted as the breaker's half-open probe */
  int was_probe;
  int replied;
  /* this attempt */
  int status;
  int64_t retry_after;
  int sse;
  jiwa_sse_t *parser;
  char *buf;
  size_t blen, bcap;
  llm_out_t out;
  char job[128];
  /* the answer */
  char *text;
  size_t tlen, tcap;
  uint64_t pieces;    /* text pieces of the answer */
  uint64_t forwarded; /* llm.delta messages sent to the asker */
  double ttfb_ms;
  int last_code;
  char last_err[300];
};

/* ---- the HTTP request builder ---------------------------------------------- */

int llm_http_url(llm_http_t *h, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0)
    return JIWA_ENOMEM;
  free(h->url);
  h->url = s;
  return 0;
}

int llm_http_header(llm_http_t *h, const char *name, const char *value) {
  if (h->nhdr + 1 >= sizeof h->hdr / sizeof *h->hdr)
    return JIWA_ETOOBIG;
  h->hdr[h->nhdr].name = name;
  h->hdr[h->nhdr].value = value;
  h->nhdr++;
  return 0;
}

int llm_http_secret(llm_http_t *h, const char *name, const char *prefix,
                    const char *key) {
  if (!key || !*key)
    return 0;
  size_t pl = strlen(prefix), kl = strlen(key);
  if (pl + kl + 1 > sizeof h->auth)
    return JIWA_ETOOBIG;
  memcpy(h->auth, prefix, pl);
  memcpy(h->auth + pl, key, kl + 1);
  return llm_http_header(h, name, h->auth);
}

void llm_http_clear(llm_http_t *h) {
  free(h->url);
  free(h->body);
  /* the key must not linger in freed memory either */
  volatile char *a = h->auth;
  for (size_t i = 0; i < sizeof h->auth; i++)
    a[i] = 0;
  h->url = NULL;
  h->body = NULL;
  h->body_len = 0;
  h->nhdr = 0;
}

/* ---- helpers ------------------------------------------------------------------ */

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static uint32_t clamp_u32(uint64_t v) {
  return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Format an error text, prefixed by the provider, scrubbed of the key. */
static void err_text(llm_inst_t *inst, char *out, size_t cap, const char *fmt,
                     va_list ap) {
  int n = snprintf(out, cap, "%s: ", inst->proto->name);
  if (n < 0 || (size_t)n >= cap)
    n = 0;
  vsnprintf(out + n, cap - (size_t)n, fmt, ap);
  llm_scrub(out, cap, inst->cfg.api_key);
}

static void call_link(llm_inst_t *inst, llm_call_t *c) {
  c->next = inst->calls;
  if (inst->calls)
    inst->calls->prev = c;
  inst->calls = c;
  inst->inflight++;
}

static void call_unlink(llm_inst_t *inst, llm_call_t *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    inst->calls = c->next;
  if (c->next)
    c->next->prev = c->prev;
  inst->inflight--;
}

static void call_free(llm_call_t *c) {
  llm_http_clear(&c->http);
  llm_http_clear(&c->aux);
  jiwa_sse_free(c->parser);
  free(c->system);
  free(c->buf);
  free(c->text);
  if (c->req)
    jiwa_msg_release(c->req);
  free(c);
}

static void try_free(llm_call_t *c) {
  if (c->replied && !c->http_active && !c->timer_active && !c->dl_active) {
    call_unlink(c->inst, c);
    call_free(c);
  }
}

static void cancel_job(llm_call_t *c);

/* Stop everything still running for @p c; it has replied. */
static void finish(llm_call_t *c) {
  c->replied = 1;
  if (c->dl_active) {
    jiwa_timer_stop(c->self, c->dl_id);
    c->dl_active = 0;
  }
  if (c->timer_active) {
    jiwa_timer_stop(c->self, c->timer_id);
    c->timer_active = 0;
  }
  if (c->http_active)
    jiwa_http_cancel(c->self, c->http_id); /* on_done comes later */
  if (c->job[0])
    cancel_job(c); /* a job still queued or running upstream */
}

static void reply_error(llm_call_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(llm_call_t *c, int code, const char *fmt, ...) {
  llm_inst_t *inst = c->inst;
  char text[600];
  va_list ap;
  va_start(ap, fmt);
  err_text(inst, text, sizeof text, fmt, ap);
  va_end(ap);
  finish(c);
  inst->failed++;
  jiwa_count(c->self, "llm_errors", 1);
  jiwa_log(c->self, JIWA_LOG_WARN, "%s [%s]", text, jiwa_err_name(code));
  jiwa_reply_error(c->self, c->req, code, text);
  try_free(c);
}

static void reply_final(llm_call_t *c) {
  llm_inst_t *inst = c->inst;
  uint64_t now = jiwa_now_ms();
  double latency = (double)(now - c->t0);
  double ttfb = c->ttfb_ms >= 0 ? c->ttfb_ms : latency;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 11);
  jiwa_mp_put_str(&w.pk, "text");
  msgpack_pack_str(&w.pk, c->tlen);
  msgpack_pack_str_body(&w.pk, c->text ? c->text : "", c->tlen);
  jiwa_mp_put_kv_str(&w.pk, "model",
                     c->out.model[0] ? c->out.model : inst->model);
  jiwa_mp_put_str(&w.pk, "usage");
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_kv_int(&w.pk, "input_tokens",
                     c->out.input_tokens < 0 ? 0 : c->out.input_tokens);
  jiwa_mp_put_kv_int(&w.pk, "output_tokens",
                     c->out.output_tokens < 0 ? 0 : c->out.output_tokens);
  jiwa_mp_put_kv_double(&w.pk, "latency_ms", latency);
  jiwa_mp_put_kv_double(&w.pk, "ttfb_ms", ttfb);
  jiwa_mp_put_kv_str(&w.pk, "finish_reason",
                     c->out.finish[0] ? c->out.finish : "stop");
  jiwa_mp_put_kv_str(&w.pk, "provider", inst->proto->name);
  jiwa_mp_put_kv_int(&w.pk, "attempts", c->attempts);
  jiwa_mp_put_kv_int(&w.pk, "deltas", (int64_t)c->forwarded);
  jiwa_mp_put_kv_str(&w.pk, "preset", llm_preset_name(c->preset));
  jiwa_mp_put_kv_bool(&w.pk, "streamed", c->r.stream);
  finish(c);
  inst->ok++;
  jiwa_count(c->self, "llm_ok", 1);
  jiwa_observe_ms(c->self, "llm_latency_ms", latency);
  jiwa_observe_ms(c->self, "llm_ttfb_ms", ttfb);
  jiwa_log(c->self, JIWA_LOG_DEBUG,
           "answer: %zu bytes, %llu deltas, %d attempt(s), %.0f ms",
           c->tlen, (unsigned long long)c->forwarded, c->attempts, latency);
  jiwa_reply(c->self, c->req, "llm.final", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  try_free(c);
}

/* " after N attempts" when there was more than one. */
static const char *attempts_note(const llm_call_t *c, char *buf, size_t cap) {
  if (c->attempts > 1)
    snprintf(buf, cap, " after %d attempts", c->attempts);
  else
    buf[0] = '\0';
  return buf;
}

/* ---- parser plumbing ------------------------------------------------------------ */

static int on_text(void *ud, const char *s, size_t n) {
  llm_call_t *c = ud;
  llm_inst_t *inst = c->inst;
  if (c->ttfb_ms < 0)
    c->ttfb_ms = (double)(jiwa_now_ms() - c->t0);
  if (c->tlen + n > (uint64_t)inst->cfg.max_response_bytes)
    return llm_out_error(&c->out, JIWA_ETOOBIG, 0,
                         "answer longer than max_response_bytes (%lld)",
                         (long long)inst->cfg.max_response_bytes);
  if (c->tlen + n + 1 > c->tcap) {
    size_t cap = c->tcap ? c->tcap : 1024;
    while (cap < c->tlen + n + 1)
      cap *= 2;
    char *t = realloc(c->text, cap);
    if (!t)
      return llm_out_error(&c->out, JIWA_ENOMEM, 0, "out of memory");
    c->text = t;
    c->tcap = cap;
  }
  memcpy(c->text + c->tlen, s, n);
  c->tlen += n;
  c->text[c->tlen] = '\0';
  c->pieces++;
  if (c->r.stream) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_str(&w.pk, "text");
    msgpack_pack_str(&w.pk, n);
    msgpack_pack_str_body(&w.pk, s, n);
    jiwa_stream(c->self, c->req, "llm.delta", w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
    c->forwarded++;
    inst->deltas++;
  }
  return 0;
}

static int on_sse_event(const jiwa_sse_event_t *ev, void *ud) {
  llm_call_t *c = ud;
  return c->inst->proto->event(&c->out, ev->event, ev->data, ev->data_len);
}

static int buf_add(llm_call_t *c, const void *p, size_t n, size_t max) {
  if (c->blen + n > max)
    return JIWA_ETOOBIG;
  if (c->blen + n + 1 > c->bcap) {
    size_t cap = c->bcap ? c->bcap : 4096;
    while (cap < c->blen + n + 1)
      cap *= 2;
    char *b = realloc(c->buf, cap);
    if (!b)
      return JIWA_ENOMEM;
    c->buf = b;
    c->bcap = cap;
  }
  memcpy(c->buf + c->blen, p, n);
  c->blen += n;
  c->buf[c->blen] = '\0';
  return 0;
}

/* ---- HTTP callbacks ---------------------------------------------------------------- */

static void on_response(jiwa_actor_t *self, void *ctx,
                        const jiwa_http_response_t *r, void *ud) {
  llm_call_t *c = ud;
  c->self = self;
  c->status = r->status;
  c->retry_after = r->retry_after_ms;
  const char *ct = jiwa_http_header_get(r, "content-type");
  c->sse = r->status >= 200 && r->status < 300 && ct &&
           strncasecmp(ct, "text/event-stream", 17) == 0;
}

static int on_data(jiwa_actor_t *self, void *ctx, const void *data, size_t len,
                   void *ud) {
  llm_call_t *c = ud;
  c->self = self;
  if (c->replied)
    return JIWA_ECANCELED;
  if (c->status < 200 || c->status >= 300) {
    size_t room = ERRBODY_MAX > c->blen ? ERRBODY_MAX - c->blen : 0;
    if (room)
      buf_add(c, data, len < room ? len : room, ERRBODY_MAX);
    return 0;
  }
  if (c->sse) {
    int rc = jiwa_sse_feed(c->parser, data, len);
    if (rc && !c->out.err) {
      const char *e = jiwa_sse_error(c->parser);
      llm_out_error(&c->out, rc, 0, "event stream: %s",
                    e && *e ? e : jiwa_strerror(rc));
    }
    return rc;
  }
  int rc = buf_add(c, data, len, (size_t)c->inst->cfg.max_response_bytes);
  if (rc)
    return llm_out_error(&c->out, rc, 0,
                         rc == JIWA_ETOOBIG
                             ? "response larger than max_response_bytes"
                             : "out of memory");
  return 0;
}

static const char *fail_what(jiwa_http_fail_t k) {
  switch (k) {
  case JIWA_HTTP_FAIL_CONNECT:
    return "cannot connect";
  case JIWA_HTTP_FAIL_CONNECT_TIMEOUT:
    return "connect timeout (connect_timeout_ms)";
  case JIWA_HTTP_FAIL_TTFB:
    return "no response in time (ttfb_timeout_ms)";
  case JIWA_HTTP_FAIL_TOTAL:
    return "no complete answer in time (total_timeout_ms / ask deadline)";
  case JIWA_HTTP_FAIL_LOW_SPEED:
    return "upstream stalled (low_speed_bytes / low_speed_secs)";
  case JIWA_HTTP_FAIL_TOO_BIG:
    return "response larger than max_response_bytes";
  case JIWA_HTTP_FAIL_RESET:
    return "connection reset";
  case JIWA_HTTP_FAIL_PROTOCOL:
    return "HTTP protocol error";
  case JIWA_HTTP_FAIL_TLS:
    return "TLS error";
  case JIWA_HTTP_FAIL_CANCELED:
    return "canceled";
  case JIWA_HTTP_FAIL_SHUTDOWN:
    return "shutting down";
  default:
    return "transfer failed";
  }
}

/* The reason of an HTTP error status. The upstream's own message is kept
 * for 4xx (it says what to fix); 5xx/429 messages add nothing. */
static void status_why(int status, const char *msg, char *out, size_t cap) {
  const char *what, *hint = "";
  if (status == 529)
    what = "upstream overloaded";
  else if (status == 429)
    what = "rate limited";
  else if (status == 503)
    what = "upstream unavailable";
  else if (status == 408 || status == 504)
    what = "upstream timed out";
  else if (status >= 500)
    what = "upstream error";
  else if (status == 401 || status == 403) {
    what = "key refused";
    hint = " (check the variable named by api_key_env)";
  } else if (status == 404) {
    what = "not found";
    hint = " (check endpoint and model)";
  } else
    what = "request rejected";
  if (!llm_status_retryable(status) && msg && *msg)
    snprintf(out, cap, "%s (%d): %s%s", what, status, msg, hint);
  else
    snprintf(out, cap, "%s (%d)%s", what, status, hint);
}

static int status_code(int status) {
  if (status == 401 || status == 403)
    return JIWA_EPERM;
  if (status == 408 || status == 504)
    return JIWA_ETIMEDOUT;
  if (status == 413)
    return JIWA_ETOOBIG;
  return JIWA_EUPSTREAM;
}

static int start_attempt(llm_call_t *c);

static void on_timer(jiwa_actor_t *self, void *ctx, void *ud) {
  llm_call_t *c = ud;
  c->self = self;
  c->timer_active = 0;
  if (c->replied) {
    try_free(c);
    return;
  }
  if (c->polling) {
    llm_http_clear(&c->aux);
    int rc = c->inst->proto->poll(c->inst, c->job, &c->aux);
    if (rc) {
      reply_error(c, rc, "cannot build the status request for job %s (%s)",
                  c->job, jiwa_strerror(rc));
      return;
    }
  }
  start_attempt(c);
}

/* Run on_timer after @p ms; on failure answer with @p why. */
static void schedule(llm_call_t *c, uint64_t ms, const char *why) {
  int rc = jiwa_timer_start(c->self, ms, 0, on_timer, c, &c->timer_id);
  if (rc) {
    reply_error(c, rc, "%s; cannot schedule the next step (%s)", why,
                jiwa_strerror(rc));
    return;
  }
  c->timer_active = 1;
}

static void on_done(jiwa_actor_t *self, void *ctx, const jiwa_http_result_t *res,
                    void *ud) {
  llm_call_t *c = ud;
  llm_inst_t *inst = c->inst;
  c->self = self;
  c->http_active = 0;
  if (c->replied) {
    try_free(c);
    return;
  }
  int ok2xx = res->code == 0 && c->status >= 200 && c->status < 300;
  if (ok2xx && !c->sse && !c->out.err) {
    inst->proto->body(&c->out, c->buf ? c->buf : "", c->blen);
    if (!c->out.err && !c->out.done && !c->out.pending)
      llm_out_error(&c->out, JIWA_EPROTO, 0, "the response holds no answer");
  } else if (ok2xx && c->sse && !c->out.err && !c->out.done) {
    int fin = jiwa_sse_finish(c->parser);
    llm_out_error(&c->out, JIWA_EUPSTREAM, 0,
                  fin == JIWA_EPROTO
                      ? "stream cut in the middle of an event"
                      : "stream ended before its end marker");
  }

  int code = 0, retry = 0;
  llm_br_verdict_t v = LLM_BR_OK;
  char why[400] = "";
  if (c->out.err) {
    code = c->out.err;
    retry = c->out.err_retryable;
    snprintf(why, sizeof why, "%s", c->out.errmsg);
    v = (code == JIWA_ETOOBIG || code == JIWA_ENOMEM) ? LLM_BR_NEUTRAL
                                                      : LLM_BR_FAIL;
  } else if (res->code != 0) {
    code = res->code;
    retry = res->kind == JIWA_HTTP_FAIL_CONNECT ||
            res->kind == JIWA_HTTP_FAIL_CONNECT_TIMEOUT;
    snprintf(why, sizeof why, "%s (%s)", fail_what(res->kind),
             res->error && *res->error ? res->error : jiwa_strerror(code));
    v = (res->kind == JIWA_HTTP_FAIL_CANCELED ||
         res->kind == JIWA_HTTP_FAIL_SHUTDOWN)
            ? LLM_BR_ABANDONED
        : res->kind == JIWA_HTTP_FAIL_TOO_BIG ? LLM_BR_NEUTRAL
                                              : LLM_BR_FAIL;
  } else if (!ok2xx) {
    char msg[200];
    llm_error_text(c->buf, c->blen, msg, sizeof msg);
    status_why(c->status, msg, why, sizeof why);
    code = status_code(c->status);
    retry = llm_status_retryable(c->status);
    v = retry ? LLM_BR_FAIL : LLM_BR_NEUTRAL;
  }

  /* a status poll that answered with a final state ends the job */
  if (ok2xx && c->polling && !c->out.pending)
    c->job[0] = '\0';
  llm_breaker_record(&inst->br, jiwa_now_ms(), c->probe, v);
  if (v == LLM_BR_FAIL) {
    llm_printable(why, strlen(why), inst->last_failure,
                  sizeof inst->last_failure);
    llm_scrub(inst->last_failure, sizeof inst->last_failure,
              inst->cfg.api_key);
  }
  c->probe = 0;

  if (code == 0 && c->out.pending) { /* the upstream took a job: poll it */
    c->poll_fails = 0;
    if (!c->polling)
      snprintf(c->job, sizeof c->job, "%s", c->out.job);
    c->polling = 1;
    if (!inst->proto->poll) {
      reply_error(c, JIWA_EPROTO, "the upstream queued job %s, and this "
                  "provider cannot poll", c->job);
      return;
    }
    /* no poll would come back before the deadline: its timer answers */
    if (jiwa_now_ms() + inst->poll_ms >= c->deadline)
      return;
    schedule(c, inst->poll_ms, "job pending");
    return;
  }
  if (code == 0) {
    c->polling = 0;
    c->job[0] = '\0';
    reply_final(c);
    return;
  }

  c->last_code = code;
  llm_printable(why, strlen(why), c->last_err, sizeof c->last_err);
  char note[48];
  if (c->forwarded > 0) {
    reply_error(c, code,
                "stream broke after %llu deltas (%s) — answer incomplete",
                (unsigned long long)c->forwarded, why);
    return;
  }
  int tries_left = c->polling ? c->poll_fails + 1 < inst->cfg.retries
                              : c->attempts < inst->cfg.retries;
  if (!retry || c->was_probe || !tries_left) {
    reply_error(c, code, "%s%s", why, attempts_note(c, note, sizeof note));
    return;
  }
  if (inst->br.state != LLM_BR_CLOSED) {
    reply_error(c, code, "%s%s; circuit now open, not retrying", why,
                attempts_note(c, note, sizeof note));
    return;
  }
  unsigned fails = c->polling ? (unsigned)c->poll_fails + 1
                              : (unsigned)c->attempts;
  uint64_t delay = llm_backoff_ms(fails, clamp_u32(inst->cfg.backoff_base_ms),
                                  clamp_u32(inst->cfg.backoff_max_ms),
                                  &inst->rng);
  if (c->retry_after >= 0)
    delay = min_u64((uint64_t)c->retry_after,
                    (uint64_t)inst->cfg.retry_after_max_ms);
  uint64_t now = jiwa_now_ms();
  if (now + delay >= c->deadline) {
    reply_error(c, code, "%s%s; no time left for a retry (retry in %llu ms)",
                why, attempts_note(c, note, sizeof note),
                (unsigned long long)delay);
    return;
  }
  if (c->polling)
    c->poll_fails++;
  inst->retries++;
  jiwa_count(self, "llm_retries", 1);
  jiwa_log(self, JIWA_LOG_INFO, "%s: %s %d failed: %s; retrying in %llu ms",
           inst->proto->name, c->polling ? "poll" : "attempt",
           c->polling ? c->poll_fails : c->attempts, why,
           (unsigned long long)delay);
  schedule(c, delay, why);
}

static const jiwa_http_cbs_t call_cbs = {on_response, on_data, on_done};

/* ---- a RunPod-style job cancel: fire and forget ------------------------------ */

static void cancel_done(jiwa_actor_t *self, void *ctx,
                        const jiwa_http_result_t *res, void *ud) {
  llm_http_t *h = ud;
  llm_http_clear(h);
  free(h);
}

static const jiwa_http_cbs_t cancel_cbs = {NULL, NULL, cancel_done};

static void cancel_job(llm_call_t *c) {
  llm_inst_t *inst = c->inst;
  const char *job = c->job;
  if (!inst->proto->cancel || !job[0])
    return;
  llm_http_t *h = calloc(1, sizeof *h);
  if (!h)
    return;
  if (inst->proto->cancel(inst, job, h) == 0) {
    jiwa_http_req_t q;
    jiwa_http_req_init(&q);
    q.method = h->method;
    q.url = h->url;
    q.headers = h->hdr;
    q.nheaders = h->nhdr;
    q.connect_timeout_ms = clamp_u32(inst->cfg.connect_timeout_ms);
    q.total_ms = 10000;
    if (jiwa_http_request(c->self, &q, &cancel_cbs, h, NULL) == 0)
      return;
  }
  llm_http_clear(h);
  free(h);
}

/* ---- attempts ------------------------------------------------------------------------ */

static void deadline_reply(llm_call_t *c);

static int start_attempt(llm_call_t *c) {
  llm_inst_t *inst = c->inst;
  uint64_t now = jiwa_now_ms();
  char note[48];
  if (now >= c->deadline) {
    deadline_reply(c);
    return JIWA_ETIMEDOUT;
  }
  if (!c->polling && c->attempts == 0) {
    uint64_t until = 0;
    int adm = llm_breaker_admit(&inst->br, now, &until);
    if (adm == JIWA_EDOWN) {
      inst->refused++;
      jiwa_count(c->self, "llm_fail_fast", 1);
      if (until > now)
        reply_error(c, JIWA_EDOWN,
                    "circuit open until %llu ms from now (%u failures in a "
                    "row; last: %s)",
                    (unsigned long long)(until - now), inst->br.fails,
                    inst->last_failure);
      else
        reply_error(c, JIWA_EDOWN,
                    "circuit half-open: a probe is in flight (last failure: "
                    "%s)",
                    inst->last_failure);
      return JIWA_EDOWN;
    }
    c->probe = c->was_probe = adm == 1;
    if (c->probe)
      jiwa_log(c->self, JIWA_LOG_INFO, "%s: circuit half-open, probing",
               inst->proto->name);
  }
  /* per-attempt state; text already forwarded can never be taken back, so
   * a retry (only ever before forwarding) starts the answer afresh */
  c->status = 0;
  c->retry_after = -1;
  c->sse = 0;
  c->blen = 0;
  llm_out_reset(&c->out);
  jiwa_sse_reset(c->parser);
  if (!c->polling) {
    c->tlen = 0;
    c->pieces = 0;
    c->ttfb_ms = -1;
  }

  const llm_http_t *h = c->polling ? &c->aux : &c->http;
  jiwa_http_header_t hdr[12];
  size_t nh = 0;
  for (size_t i = 0; i < h->nhdr; i++)
    hdr[nh++] = h->hdr[i];
  if (h->body)
    hdr[nh++] = (jiwa_http_header_t){"content-type", "application/json"};
  hdr[nh++] = (jiwa_http_header_t){
      "accept", c->build.stream && !c->polling
                    ? "text/event-stream, application/json"
                    : "application/json"};

  uint64_t left = c->deadline - now;
  jiwa_http_req_t q;
  jiwa_http_req_init(&q);
  q.method = h->method;
  q.url = h->url;
  q.headers = hdr;
  q.nheaders = nh;
  q.body = h->body;
  q.body_len = h->body_len;
  q.connect_timeout_ms =
      clamp_u32(min_u64((uint64_t)inst->cfg.connect_timeout_ms, left));
  q.ttfb_ms = clamp_u32(min_u64((uint64_t)inst->cfg.ttfb_timeout_ms, left));
  q.total_ms = clamp_u32(left);
  q.low_speed_bytes = clamp_u32((uint64_t)inst->cfg.low_speed_bytes);
  q.low_speed_secs = clamp_u32((uint64_t)inst->cfg.low_speed_secs);
  if (!q.low_speed_bytes)
    q.low_speed_secs = 0;
  q.max_response_bytes = (uint64_t)inst->cfg.max_response_bytes;
  int rc = jiwa_http_request(c->self, &q, &call_cbs, c, &c->http_id);
  if (rc) {
    if (c->probe) {
      llm_breaker_record(&inst->br, now, 1, LLM_BR_ABANDONED);
      c->probe = 0;
    }
    reply_error(c, rc == JIWA_ECANCELED ? rc : JIWA_EIO,
                "cannot start the HTTP request (%s)%s", jiwa_strerror(rc),
                attempts_note(c, note, sizeof note));
    return rc;
  }
  c->http_active = 1;
  if (!c->polling)
    c->attempts++;
  jiwa_log(c->self, JIWA_LOG_DEBUG, "%s: %s %s (attempt %d, %llu ms left)",
           inst->proto->name, c->polling ? "poll" : "request",
           h->method ? h->method : "POST", c->attempts,
           (unsigned long long)left);
  return 0;
}

/* The call's deadline has come: answer ETIMEDOUT (cancelling what runs). */
static void deadline_reply(llm_call_t *c) {
  llm_inst_t *inst = c->inst;
  /* An upstream that said nothing until the deadline failed; one cut off
   * mid-answer, or between attempts, gives no verdict. */
  if (c->http_active) {
    llm_br_verdict_t v = c->pieces == 0 && c->status == 0 ? LLM_BR_FAIL
                                                          : LLM_BR_ABANDONED;
    llm_breaker_record(&inst->br, jiwa_now_ms(), c->probe, v);
    c->probe = 0;
    if (v == LLM_BR_FAIL)
      snprintf(inst->last_failure, sizeof inst->last_failure,
               "no response before the deadline");
  } else if (c->probe) {
    llm_breaker_record(&inst->br, jiwa_now_ms(), 1, LLM_BR_ABANDONED);
    c->probe = 0;
  }
  uint64_t ms = jiwa_now_ms() - c->t0;
  if (c->forwarded > 0)
    reply_error(c, JIWA_ETIMEDOUT,
                "stream broke after %llu deltas (deadline passed after %llu "
                "ms) — answer incomplete",
                (unsigned long long)c->forwarded, (unsigned long long)ms);
  else
    reply_error(c, JIWA_ETIMEDOUT,
                "no complete answer within the deadline (%llu ms, %d "
                "attempt%s%s%s%s)",
                (unsigned long long)ms, c->attempts,
                c->attempts == 1 ? "" : "s",
                c->job[0] ? ", job still running upstream" : "",
                c->last_err[0] ? "; last: " : "", c->last_err);
}

static void on_deadline(jiwa_actor_t *self, void *ctx, void *ud) {
  llm_call_t *c = ud;
  c->self = self;
  c->dl_active = 0;
  if (c->replied) {
    try_free(c);
    return;
  }
  deadline_reply(c);
}

/* ---- the actor ------------------------------------------------------------------------- */

static void complete(jiwa_actor_t *self, llm_inst_t *inst,
                     const jiwa_msg_t *msg) {
  llm_call_t *c = calloc(1, sizeof *c);
  if (!c) {
    jiwa_reply_error(self, msg, JIWA_ENOMEM, "out of memory");
    return;
  }
  c->inst = inst;
  c->self = self;
  c->req = jiwa_msg_retain(msg);
  c->t0 = jiwa_now_ms();
  c->ttfb_ms = -1;
  c->retry_after = -1;
  c->out.on_text = on_text;
  c->out.ud = c;
  llm_out_reset(&c->out);
  call_link(inst, c);
  inst->requests++;
  jiwa_count(self, "llm_requests", 1);

  size_t blen;
  const void *body = jiwa_msg_body(msg, &blen);
  char err[200];
  int rc = llm_req_parse(body, blen, &c->r, err, sizeof err);
  if (rc) {
    reply_error(c, rc == JIWA_EPROTO ? JIWA_EINVAL : rc,
                "bad llm.complete request: %s", err);
    return;
  }
  int64_t mt;
  double t;
  llm_params_resolve(&inst->params, &c->r, &mt, &t, &c->preset);
  if ((rc = llm_system_build(inst->cfg.persona, &c->r, &c->system, NULL))) {
    reply_error(c, rc, "out of memory");
    return;
  }
  c->build.model = inst->cfg.model;
  c->build.system = c->system;
  c->build.req = &c->r;
  c->build.max_tokens = mt;
  c->build.temperature = t;
  c->build.stream =
      inst->proto->streams && (c->r.stream || inst->cfg.upstream_stream);
  if ((rc = inst->proto->prepare(inst, &c->build, &c->http))) {
    reply_error(c, rc, "cannot build the request (%s)", jiwa_strerror(rc));
    return;
  }
  jiwa_sse_opts_t so = {.max_line = (size_t)inst->cfg.max_response_bytes,
                        .max_event = (size_t)inst->cfg.max_response_bytes};
  if ((rc = jiwa_sse_new(&c->parser, &so, on_sse_event, c))) {
    reply_error(c, rc, "out of memory");
    return;
  }

  /* The call's deadline: the ask's, a little early so that this clear
   * ETIMEDOUT reaches the asker before the runtime's generic one, and
   * never later than total_timeout_ms. */
  c->deadline = c->t0 + (uint64_t)inst->cfg.total_timeout_ms;
  uint64_t ask_dl = jiwa_msg_deadline(msg);
  if (ask_dl) {
    uint64_t budget = ask_dl > c->t0 ? ask_dl - c->t0 : 0;
    uint64_t margin = min_u64(100, budget / 10);
    c->deadline = min_u64(c->deadline, ask_dl - margin);
  }
  if (c->deadline <= c->t0) {
    reply_error(c, JIWA_ETIMEDOUT, "the ask's deadline had passed already");
    return;
  }
  if ((rc = jiwa_timer_start(self, c->deadline - c->t0, 0, on_deadline, c,
                             &c->dl_id))) {
    reply_error(c, rc, "cannot start the deadline timer (%s)",
                jiwa_strerror(rc));
    return;
  }
  c->dl_active = 1;
  jiwa_log(self, JIWA_LOG_DEBUG,
           "%s: call: %zu messages, stream %d, preset '%s', max_tokens %lld, "
           "deadline in %llu ms",
           inst->proto->name, c->r.nmsgs, c->r.stream,
           llm_preset_name(c->preset), (long long)mt,
           (unsigned long long)(c->deadline - c->t0));
  start_attempt(c);
}

static void health(jiwa_actor_t *self, llm_inst_t *inst,
                   const jiwa_msg_t *msg) {
  uint64_t now = jiwa_now_ms();
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 11);
  jiwa_mp_put_kv_str(&w.pk, "provider", inst->proto->name);
  jiwa_mp_put_kv_str(&w.pk, "model", inst->model);
  jiwa_mp_put_kv_bool(&w.pk, "key_set",
                      inst->cfg.api_key && *inst->cfg.api_key);
  jiwa_mp_put_str(&w.pk, "breaker");
  msgpack_pack_map(&w.pk, 7);
  jiwa_mp_put_kv_str(&w.pk, "state", llm_breaker_state_name(inst->br.state));
  jiwa_mp_put_kv_int(&w.pk, "failures", inst->br.fails);
  jiwa_mp_put_kv_int(&w.pk, "open_for_ms",
                     inst->br.state == LLM_BR_OPEN && inst->br.open_until > now
                         ? (int64_t)(inst->br.open_until - now)
                         : 0);
  jiwa_mp_put_kv_int(&w.pk, "window_ms", (int64_t)inst->br.window_ms);
  jiwa_mp_put_kv_int(&w.pk, "opened", (int64_t)inst->br.opened);
  jiwa_mp_put_kv_int(&w.pk, "probes", (int64_t)inst->br.probes);
  jiwa_mp_put_kv_int(&w.pk, "refused", (int64_t)inst->br.refused);
  jiwa_mp_put_kv_int(&w.pk, "requests", (int64_t)inst->requests);
  jiwa_mp_put_kv_int(&w.pk, "ok", (int64_t)inst->ok);
  jiwa_mp_put_kv_int(&w.pk, "failed", (int64_t)inst->failed);
  jiwa_mp_put_kv_int(&w.pk, "retries", (int64_t)inst->retries);
  jiwa_mp_put_kv_int(&w.pk, "deltas", (int64_t)inst->deltas);
  jiwa_mp_put_kv_int(&w.pk, "inflight", (int64_t)inst->inflight);
  jiwa_reply(self, msg, "llm.health", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

int llm_receive(jiwa_actor_t *self, llm_inst_t *inst, const jiwa_msg_t *msg) {
  if (jiwa_msg_kind(msg) != JIWA_MSG_ASK)
    return 0;
  const char *type = jiwa_msg_type(msg);
  if (strcmp(type, "llm.complete") == 0)
    complete(self, inst, msg);
  else if (strcmp(type, "llm.health") == 0)
    health(self, inst, msg);
  else {
    char text[160];
    snprintf(text, sizeof text,
             "%s answers llm.complete and llm.health, not '%.60s'",
             inst->proto->name, type);
    jiwa_reply_error(self, msg, JIWA_ENOTSUP, text);
  }
  return 0;
}

int llm_init(jiwa_actor_t *self, llm_inst_t *inst, const llm_proto_t *proto) {
  llm_cfg_t *cfg = &inst->cfg;
  inst->proto = proto;
  const char *bad = NULL;
  llm_preset_t p = LLM_PRESET_NONE;
  if (!cfg->endpoint || (strncmp(cfg->endpoint, "http://", 7) != 0 &&
                         strncmp(cfg->endpoint, "https://", 8) != 0))
    bad = "endpoint must be an http:// or https:// URL";
  else if (!cfg->model)
    bad = "model is required";
  else if (llm_preset_parse(cfg->preset ? cfg->preset : "",
                            cfg->preset ? strlen(cfg->preset) : 0, &p) != 0)
    bad = "preset must be \"\", \"SANTAI\" or \"PIKIRAN\"";
  else if (cfg->backoff_max_ms < cfg->backoff_base_ms)
    bad = "backoff_max_ms must be >= backoff_base_ms";
  else if (cfg->breaker_open_max_ms < cfg->breaker_open_ms)
    bad = "breaker_open_max_ms must be >= breaker_open_ms";
  if (bad) {
    jiwa_log(self, JIWA_LOG_ERROR, "%s: bad config: %s", proto->name, bad);
    return JIWA_ECONFIG;
  }
  /* a trailing slash would double up in every path */
  size_t el = strlen(cfg->endpoint);
  while (el > 0 && cfg->endpoint[el - 1] == '/')
    cfg->endpoint[--el] = '\0';
  inst->params = (llm_params_cfg_t){
      .max_tokens = cfg->max_tokens,
      .temperature = cfg->temperature,
      .preset = p,
      .santai_max_tokens = cfg->santai_max_tokens,
      .santai_temperature = cfg->santai_temperature,
      .pikiran_max_tokens = cfg->pikiran_max_tokens,
      .pikiran_temperature = cfg->pikiran_temperature};
  llm_breaker_init(&inst->br, (uint32_t)cfg->breaker_failures,
                   (uint64_t)cfg->breaker_open_ms,
                   (uint64_t)cfg->breaker_open_max_ms);
  inst->rng = jiwa_now_ms() ^ (uint64_t)(uintptr_t)inst ^ 0x9E3779B97F4A7C15ull;
  if (!inst->poll_ms)
    inst->poll_ms = 1000;
  if (!inst->model || !*inst->model)
    inst->model = cfg->model;
  jiwa_log(self, JIWA_LOG_INFO,
           "%s ready: model '%s', key %s, preset '%s', %lld attempts, "
           "breaker after %lld failures",
           proto->name, inst->model,
           cfg->api_key && *cfg->api_key ? "set" : "not set (none sent)",
           llm_preset_name(p), (long long)cfg->retries,
           (long long)cfg->breaker_failures);
  return 0;
}

void llm_fini(jiwa_actor_t *self, llm_inst_t *inst) {
  /* every HTTP on_done has run (plugin.h); timers are gone with the
   * generation: what is left only needs its memory back */
  while (inst->calls) {
    llm_call_t *c = inst->calls;
    call_unlink(inst, c);
    call_free(c);
  }
}
