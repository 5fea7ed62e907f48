/* The libuv side of mockllm: listen, accept, read requests (keep-alive,
 * 100-continue, bounded), dispatch them, and play responses out with the
 * timing and breakage their fault asks for. One loop, one thread.
 *
 * A connection serves one request at a time; bytes that arrive meanwhile
 * (pipelining) wait in its input buffer. A response goes through phases:
 * latency → head → body or stream steps, each step written only when the
 * previous writes are below a high-water mark (so an endless stream never
 * outruns its reader), with a uv_timer for delays. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "jiwa/json.h"
#include "mockllm.h"

#define READ_ROOM 65536
#define IN_CAP (MOCK_MAX_HEAD + MOCK_MAX_BODY + 2 * READ_ROOM)
#define HIGH_WATER (1u << 20)
#define DRAIN_MS 2000
#define DEFAULT_POLLS 2

typedef struct server server_t;

enum { C_READ, C_RESPOND, C_DRAIN };
enum { PH_LATENCY, PH_HEAD, PH_BODY, PH_STREAM, PH_HOLD };

typedef struct {
  int phase;
  mock_fault_t f;
  mock_buf_t head, body;
  size_t body_off;
  int streaming, chunked, keep_alive;
  mock_call_t call;
  mock_seq_t seq;
  int seq_done;
  mock_buf_t step;
  size_t step_off;
  int step_ready, step_delta, step_end;
  unsigned deltas_sent;
  int timer_wait, rst_when_flushed;
} resp_t;

typedef struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shut;
  server_t *s;
  struct conn *prev, *next;
  char *in;
  size_t inlen, incap;
  int state, closing, in_kick, sent_continue, open_handles;
  size_t pending_writes, pending_bytes;
  mock_http_req_t req;
  resp_t r;
} conn_t;

struct server {
  uv_loop_t *loop;
  uv_tcp_t tcp;
  uv_signal_t sigint, sigterm;
  conn_t *conns;
  int quiet, stopping;
  uint64_t seq;
};

typedef struct {
  uv_write_t req;
  conn_t *c;
  size_t len;
  char data[];
} wreq_t;

static void conn_kick(conn_t *c);
static void on_timer(uv_timer_t *t);

/* ---- closing ----------------------------------------------------------------
 */
static void resp_clear(resp_t *r) {
  mock_buf_free(&r->head);
  mock_buf_free(&r->body);
  mock_buf_free(&r->step);
  mock_call_free(&r->call);
  mock_seq_free(&r->seq);
  memset(r, 0, sizeof *r);
}

static void on_close(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->open_handles > 0)
    return;
  resp_clear(&c->r);
  free(c->in);
  free(c);
}

/* Close now; @p rst sends a TCP RST (SO_LINGER 0) instead of a FIN. */
static void conn_close(conn_t *c, int rst) {
  if (c->closing)
    return;
  c->closing = 1;
  if (c->prev)
    c->prev->next = c->next;
  else
    c->s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_close);
  uv_read_stop((uv_stream_t *)&c->tcp);
  if (!rst || uv_tcp_close_reset(&c->tcp, on_close) != 0)
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  if (status < 0)
    conn_close(c, 0);
}

/* Graceful end: FIN after the queued writes, then read and discard what the
 * client still sends (so it sees our answer, not a reset) until it closes
 * or DRAIN_MS passes. */
static void conn_drain(conn_t *c) {
  c->state = C_DRAIN;
  c->shut.data = c;
  if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    conn_close(c, 0);
    return;
  }
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, on_timer, DRAIN_MS, 0);
}

/* ---- writing
 * -------------------------------------------------------------------- */
static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  conn_t *c = w->c;
  c->pending_writes--;
  c->pending_bytes -= w->len;
  free(w);
  if (c->closing)
    return;
  if (status < 0) {
    conn_close(c, 0);
    return;
  }
  conn_kick(c);
}

static void write_raw(conn_t *c, const void *p, size_t n) {
  if (c->closing || n == 0)
    return;
  wreq_t *w = malloc(sizeof *w + n);
  if (!w) {
    conn_close(c, 0);
    return;
  }
  memcpy(w->data, p, n);
  w->c = c;
  w->len = n;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
    free(w);
    conn_close(c, 0);
    return;
  }
  c->pending_writes++;
  c->pending_bytes += n;
}

/* One HTTP chunk (or raw bytes on a close-delimited HTTP/1.0 stream). */
static void write_chunk(conn_t *c, const char *p, size_t n) {
  if (n == 0)
    return; /* a zero-size chunk would end the body */
  if (!c->r.chunked) {
    write_raw(c, p, n);
    return;
  }
  mock_buf_t b = {0};
  mock_buf_printf(&b, "%zx\r\n", n);
  mock_buf_put(&b, p, n);
  mock_buf_put(&b, "\r\n", 2);
  if (b.oom)
    conn_close(c, 0);
  else
    write_raw(c, b.p, b.len);
  mock_buf_free(&b);
}

static void on_timer(uv_timer_t *t) {
  conn_t *c = t->data;
  if (c->state == C_DRAIN) {
    conn_close(c, 0);
    return;
  }
  c->r.timer_wait = 0;
  conn_kick(c);
}

static void arm(conn_t *c, unsigned ms) {
  c->r.timer_wait = 1;
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---- playing a response out
 * ------------------------------------------------------ */
static void resp_done(conn_t *c) {
  int keep = c->r.keep_alive;
  resp_clear(&c->r);
  if (keep)
    c->state = C_READ;
  else
    conn_drain(c);
}

static void eol_convert(const mock_buf_t *in, mock_eol_t eol, mock_buf_t *out) {
  if (eol == MOCK_EOL_LF) {
    mock_buf_put(out, in->p, in->len);
    return;
  }
  const char *e = eol == MOCK_EOL_CR ? "\r" : "\r\n";
  size_t st = 0;
  for (size_t i = 0; i < in->len; i++)
    if (in->p[i] == '\n') {
      mock_buf_put(out, in->p + st, i - st);
      mock_buf_puts(out, e);
      st = i + 1;
    }
  mock_buf_put(out, in->p + st, in->len - st);
}

static int has(const resp_t *r, unsigned bit) {
  return (r->f.set & bit) != 0;
}

static void pump(conn_t *c) {
  resp_t *r = &c->r;
  int split = has(r, MF_SPLIT) && r->f.split;
  for (;;) {
    if (c->closing || c->state != C_RESPOND || r->timer_wait)
      return;
    if (r->rst_when_flushed) {
      if (c->pending_writes == 0)
        conn_close(c, 1);
      return;
    }
    if (c->pending_bytes >= HIGH_WATER || (split && c->pending_writes))
      return;
    switch (r->phase) {
    case PH_LATENCY:
      r->phase = PH_HEAD;
      if (has(r, MF_LATENCY) && r->f.latency_ms) {
        arm(c, r->f.latency_ms);
        return;
      }
      break;
    case PH_HEAD:
      if (has(r, MF_REFUSE) && r->f.refuse) {
        conn_close(c, 1);
        return;
      }
      if (has(r, MF_SILENCE) && r->f.silence) {
        r->phase = PH_HOLD;
        return;
      }
      write_raw(c, r->head.p, r->head.len);
      if (has(r, MF_STALL) && r->f.stall) {
        r->phase = PH_HOLD;
        return;
      }
      r->phase = r->streaming ? PH_STREAM : PH_BODY;
      break;
    case PH_BODY: {
      size_t lim = r->body.len;
      int reset = has(r, MF_RESET_AFTER) && r->f.reset_after < lim;
      if (reset)
        lim = r->f.reset_after;
      if (r->body_off < lim) {
        size_t n = split ? 1 : lim - r->body_off;
        write_raw(c, r->body.p + r->body_off, n);
        r->body_off += n;
        break;
      }
      if (reset) {
        r->rst_when_flushed = 1;
        break;
      }
      resp_done(c);
      return;
    }
    case PH_STREAM:
      if (!r->step_ready) {
        if (has(r, MF_RESET_AFTER) && r->deltas_sent >= r->f.reset_after &&
            !r->seq_done) {
          r->rst_when_flushed = 1;
          break;
        }
        mock_buf_t raw = {0};
        unsigned delay = 0;
        int more =
            !r->seq_done && mock_seq_next(&r->seq, &r->call, &r->f, &raw,
                                          &delay, &r->step_delta, &r->step_end);
        if (!more) {
          mock_buf_free(&raw);
          if (r->chunked)
            write_raw(c, "0\r\n\r\n", 5);
          else
            r->keep_alive = 0;
          resp_done(c);
          return;
        }
        r->step.len = 0;
        r->step_off = 0;
        eol_convert(&raw, has(r, MF_EOL) ? r->f.eol : MOCK_EOL_LF, &r->step);
        mock_buf_free(&raw);
        if (r->step.oom) {
          conn_close(c, 0);
          return;
        }
        r->step_ready = 1;
        if (delay) {
          arm(c, delay);
          return;
        }
      }
      if (r->step_off < r->step.len) {
        size_t n = split ? 1 : r->step.len - r->step_off;
        write_chunk(c, r->step.p + r->step_off, n);
        r->step_off += n;
        if (r->step_off < r->step.len)
          break;
      }
      r->step_ready = 0;
      if (r->step_delta)
        r->deltas_sent++;
      if (r->step_end)
        r->seq_done = 1;
      break;
    case PH_HOLD:
    default:
      return;
    }
  }
}

/* ---- building responses
 * ------------------------------------------------------------- */
static void start_head(conn_t *c, int status, const char *ctype,
                       const char *extra) {
  resp_t *r = &c->r;
  mock_buf_printf(&r->head, "HTTP/1.1 %d %s\r\nServer: mockllm\r\n", status,
                  mock_http_reason(status));
  if (ctype)
    mock_buf_printf(&r->head, "Content-Type: %s\r\n", ctype);
  if (r->streaming) {
    if (r->chunked)
      mock_buf_puts(&r->head, "Transfer-Encoding: chunked\r\n");
    mock_buf_puts(&r->head, "Cache-Control: no-cache\r\n");
  } else {
    mock_buf_printf(&r->head, "Content-Length: %zu\r\n", r->body.len);
  }
  if (has(r, MF_RETRY_AFTER))
    mock_buf_printf(&r->head, "Retry-After: %u\r\n", r->f.retry_after);
  if (extra)
    mock_buf_puts(&r->head, extra);
  mock_buf_printf(&r->head, "Connection: %s\r\n\r\n",
                  r->keep_alive ? "keep-alive" : "close");
}

static void respond_plain(conn_t *c, int status, mock_buf_t *body,
                          const char *extra) {
  resp_t *r = &c->r;
  r->body = *body;
  memset(body, 0, sizeof *body);
  start_head(c, status, "application/json", extra);
  r->phase = PH_LATENCY;
  c->state = C_RESPOND;
}

static void bad_request(conn_t *c, int status, const char *msg) {
  mock_stats_bad_request();
  mock_buf_t body = {0};
  mock_proto_error(NULL, MOCK_ROUTE_OTHER, status, msg, &body);
  c->r.keep_alive = 0;
  respond_plain(c, status, &body, NULL);
  if (!c->s->quiet)
    fprintf(stderr, "mockllm: bad request -> %d (%s)\n", status, msg);
}

static void log_line(conn_t *c, const char *m, size_t ml, const char *p,
                     size_t pl, int status, int route) {
  if (c->s->quiet)
    return;
  char faults[256] = "";
  size_t u = 0;
  for (int i = 0; i < MF_COUNT_ && u < sizeof faults - 32; i++)
    if (c->r.f.set & (1u << i)) {
      int n = snprintf(faults + u, sizeof faults - u, "%s%s", u ? "," : "",
                       mock_fault_name(i));
      if (n > 0)
        u += (size_t)n;
    }
  fprintf(stderr, "mockllm: %.*s %.*s -> %d [%s%s%s%s]\n", (int)ml, m,
          (int)(pl > 200 ? 200 : pl), p, status, mock_route_name(route),
          c->r.streaming ? " stream" : "", u ? " fault: " : "", faults);
}

static void dispatch(conn_t *c, const mock_http_req_t *req, const char *body,
                     size_t blen) {
  server_t *s = c->s;
  resp_t *r = &c->r;
  uint64_t seq = ++s->seq;
  const char *m = req->method, *path = req->target;
  size_t ml = req->mlen;
  const char *q = memchr(path, '?', req->tlen);
  size_t pl = q ? (size_t)(q - path) : req->tlen;
  r->keep_alive = req->keep_alive;
  r->chunked = req->minor == 1;
  mock_buf_t out = {0};
  int status = 200;
  char extra[256] = "";

  if (mock_control(m, ml, path, pl, body, blen, &status, &out) == 0) {
    mock_stats_request(MOCK_ROUTE_CONTROL);
    respond_plain(c, status, &out, NULL);
    log_line(c, m, ml, path, pl, status, MOCK_ROUTE_CONTROL);
    return;
  }
  mock_call_t *call = &r->call;
  const char *allow = NULL;
  int route = MOCK_ROUTE_OTHER;
  int rc = mock_proto_route(m, ml, path, pl, &call->proto, &route, &allow);
  call->route = route;
  call->seq = seq;
  if (rc) {
    mock_stats_request(MOCK_ROUTE_OTHER);
    char msg[256];
    if (rc == JIWA_EPERM) {
      status = 405;
      snprintf(msg, sizeof msg, "method %.*s not allowed here (use %s)",
               (int)(ml > 16 ? 16 : ml), m, allow);
      snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
    } else {
      status = 404;
      snprintf(msg, sizeof msg,
               "mockllm has no endpoint %.*s (see "
               "tools/mockllm/README.md)",
               (int)(pl > 120 ? 120 : pl), path);
    }
    for (char *p = msg; *p; p++)
      if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
        *p = '?';
    mock_proto_error(NULL, route == MOCK_ROUTE_OTHER ? MOCK_ROUTE_OTHER : route,
                     status, msg, &out);
    respond_plain(c, status, &out, extra[0] ? extra : NULL);
    log_line(c, m, ml, path, pl, status, MOCK_ROUTE_OTHER);
    return;
  }
  mock_stats_request(route);
  mock_record(route, m, ml, req->target, req->tlen, req, body, blen);
  mock_proto_headers(route, seq, &out);
  snprintf(extra, sizeof extra, "%s", out.p ? out.p : "");
  mock_buf_free(&out);

  char msg[512] = "";
  char *mp = NULL;
  size_t mplen = 0;
  rc = 0;
  if (blen > 0) {
    jiwa_json_error_t je;
    rc = jiwa_json_to_mp(body, blen, NULL, &mp, &mplen, &je);
    if (rc == JIWA_ENOMEM)
      status = 500;
    else if (rc)
      snprintf(msg, sizeof msg, "invalid JSON body at line %u column %u: %s",
               je.line, je.column, je.msg);
  }
  if (rc == 0) {
    rc = mock_call_parse(call, path, pl, mp, mplen, msg, sizeof msg);
    if (rc == JIWA_ENOMEM)
      status = 500;
  }
  free(mp);
  const char *scripted = NULL;
  if (rc == 0) {
    size_t hl = 0;
    const char *hv = mock_http_header(req, "x-mock-fault", &hl);
    char ferr[300];
    rc = mock_script_resolve(route, call->user, hv, hl, &r->f, &scripted, ferr,
                             sizeof ferr);
    if (rc)
      snprintf(msg, sizeof msg, "X-Mock-Fault: %s", ferr);
  }
  if (rc == 0 && call->proto != MOCK_P_EMBEDDINGS &&
      call->proto != MOCK_P_RUNPOD_STATUS &&
      mock_call_reply(call, scripted) != 0) {
    rc = JIWA_ENOMEM;
    status = 500;
  }
  if (rc) {
    if (status == 200)
      status = 400;
    memset(&r->f, 0, sizeof r->f);
    mock_proto_error(call, route, status, msg[0] ? msg : "out of memory", &out);
    respond_plain(c, status, &out, extra);
    log_line(c, m, ml, path, pl, status, route);
    return;
  }
  mock_stats_fault(&r->f);

  if (has(r, MF_STATUS)) {
    status = r->f.status;
    mock_proto_error(call, route, status, NULL, &out);
  } else if (call->proto == MOCK_P_RUNPOD_RUN) {
    const char *id =
        mock_runpod_submit(call, has(r, MF_POLLS) ? r->f.polls : DEFAULT_POLLS);
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "id", id);
    jiwa_mp_put_kv_str(&w.pk, "status", "IN_QUEUE");
    mock_json_render(&w, &out);
    jiwa_mp_writer_free(&w);
    if (!id)
      status = 500;
  } else if (call->proto == MOCK_P_RUNPOD_STATUS) {
    status = mock_runpod_status(call, &out);
  } else if (call->stream) {
    r->streaming = 1;
    if (!r->chunked)
      r->keep_alive = 0;
    if (mock_seq_init(&r->seq, call, &r->f) != 0) {
      conn_close(c, 0);
      return;
    }
    start_head(c, 200, mock_proto_stream_ctype(call), extra);
    r->phase = PH_LATENCY;
    c->state = C_RESPOND;
    log_line(c, m, ml, path, pl, 200, route);
    return;
  } else {
    mock_proto_body(call, &out);
  }
  if (out.oom) {
    conn_close(c, 0);
    mock_buf_free(&out);
    return;
  }
  respond_plain(c, status, &out, extra);
  log_line(c, m, ml, path, pl, status, route);
}

/* ---- reading
 * ------------------------------------------------------------------------- */
/* Parse and dispatch one request if a whole one is buffered. @return 1 if a
 * response was started. */
static int handle_input(conn_t *c) {
  mock_http_err_t err;
  mock_http_req_t *req = &c->req;
  int rc = mock_http_parse(c->in, c->inlen, req, &err);
  if (rc == 0)
    return 0;
  if (rc < 0) {
    bad_request(c, err.status, err.msg);
    return 1;
  }
  size_t need = req->head_len + req->content_length;
  if (c->inlen < need) {
    if (req->expect_continue && !c->sent_continue) {
      c->sent_continue = 1;
      write_raw(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    return 0;
  }
  dispatch(c, req, c->in + req->head_len, req->content_length);
  memmove(c->in, c->in + need, c->inlen - need);
  c->inlen -= need;
  c->sent_continue = 0;
  return 1;
}

static void conn_kick(conn_t *c) {
  if (c->in_kick)
    return;
  c->in_kick = 1;
  while (!c->closing) {
    if (c->state == C_RESPOND) {
      pump(c);
      if (c->state == C_RESPOND || c->closing)
        break;
      continue;
    }
    if (c->state != C_READ || !handle_input(c))
      break;
  }
  c->in_kick = 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  conn_t *c = h->data;
  (void)hint;
  if (c->state == C_DRAIN) { /* read and forget */
    c->inlen = 0;
  }
  if (c->incap - c->inlen < READ_ROOM && c->incap < IN_CAP) {
    size_t cap = c->incap ? c->incap * 2 : READ_ROOM * 2;
    if (cap > IN_CAP)
      cap = IN_CAP;
    char *p = realloc(c->in, cap);
    if (p) {
      c->in = p;
      c->incap = cap;
    }
  }
  *buf = uv_buf_init(c->in + c->inlen, (unsigned)(c->incap - c->inlen));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = st->data;
  (void)buf;
  if (c->closing)
    return;
  if (n > 0) {
    if (c->state == C_DRAIN)
      return;
    c->inlen += (size_t)n;
    conn_kick(c);
    return;
  }
  if (n == 0)
    return;
  /* EOF, reset, or ENOBUFS (a client that floods past IN_CAP). A client
   * that goes away mid-response (a timeout, a cut stream) is done with it. */
  conn_close(c, 0);
}

static void on_connection(uv_stream_t *srv, int status) {
  server_t *s = srv->data;
  if (status < 0 || s->stopping)
    return;
  conn_t *c = calloc(1, sizeof *c);
  if (!c)
    return;
  c->s = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
    c->closing = 1;
    uv_close((uv_handle_t *)&c->timer, on_close);
    uv_close((uv_handle_t *)&c->tcp, on_close);
    return;
  }
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  mock_stats_connection();
  uv_tcp_nodelay(&c->tcp, 1);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    conn_close(c, 0);
}

/* ---- start and stop
 * --------------------------------------------------------------------- */
static void on_signal(uv_signal_t *h, int signum) {
  server_t *s = h->data;
  if (s->stopping)
    return;
  s->stopping = 1;
  if (!s->quiet)
    fprintf(stderr, "mockllm: %s, shutting down\n",
            signum == SIGINT ? "SIGINT" : "SIGTERM");
  uv_close((uv_handle_t *)&s->tcp, NULL);
  while (s->conns)
    conn_close(s->conns, 0);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
}

static int write_port_file(const char *path, int port) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >=
      (int)sizeof tmp)
    return -1;
  FILE *f = fopen(tmp, "w");
  if (!f)
    return -1;
  int ok = fprintf(f, "%d\n", port) > 0;
  ok &= fclose(f) == 0;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

int mock_server_run(const mock_opts_t *o) {
  server_t s;
  memset(&s, 0, sizeof s);
  uv_loop_t loop;
  int rc = uv_loop_init(&loop);
  if (rc) {
    fprintf(stderr, "mockllm: uv_loop_init: %s\n", uv_strerror(rc));
    return 1;
  }
  s.loop = &loop;
  s.quiet = o->quiet;
  struct sockaddr_storage addr;
  if (strchr(o->host, ':'))
    rc = uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&addr);
  else
    rc = uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&addr);
  int exit_code = 1;
  if (rc) {
    fprintf(stderr,
            "mockllm: --host %s is not an IP address (use 127.0.0.1 "
            "or ::1)\n",
            o->host);
    uv_loop_close(&loop);
    return 2;
  }
  uv_tcp_init(&loop, &s.tcp);
  s.tcp.data = &s;
  uv_signal_init(&loop, &s.sigint);
  uv_signal_init(&loop, &s.sigterm);
  s.sigint.data = s.sigterm.data = &s;
  rc = uv_tcp_bind(&s.tcp, (const struct sockaddr *)&addr, 0);
  if (!rc)
    rc = uv_listen((uv_stream_t *)&s.tcp, 511, on_connection);
  int port = 0;
  if (!rc) {
    struct sockaddr_storage got;
    int len = sizeof got;
    rc = uv_tcp_getsockname(&s.tcp, (struct sockaddr *)&got, &len);
    if (!rc)
      port = got.ss_family == AF_INET6
                 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                 : ntohs(((struct sockaddr_in *)&got)->sin_port);
  }
  if (rc) {
    fprintf(stderr, "mockllm: cannot listen on %s:%d: %s\n", o->host, o->port,
            uv_strerror(rc));
    goto out;
  }
  if (o->port_file && write_port_file(o->port_file, port) != 0) {
    fprintf(stderr, "mockllm: cannot write --port-file %s: %s\n", o->port_file,
            strerror(errno));
    goto out;
  }
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  const char *h6 = strchr(o->host, ':') ? "[" : "";
  const char *t6 = *h6 ? "]" : "";
  fprintf(stderr,
          "mockllm: OFFLINE stand-in for LLM providers -- no real model, no "
          "network: replies are canned echoes.\n"
          "mockllm: listening on http://%s%s%s:%d\n",
          h6, o->host, t6, port);
  if (!o->quiet)
    fprintf(stderr,
            "mockllm: routes: POST /v1/messages (Anthropic), "
            "/v1/chat/completions (OpenAI), /v2/{id}/runsync|run, "
            "GET /v2/{id}/status/{job}, /v2/{id}/openai/v1/chat/completions "
            "(RunPod), /models/{model}, /generate, /generate_stream (Hugging "
            "Face), /v1/embeddings; control: /_mock/script, /_mock/requests, "
            "/_mock/stats\n");
  uv_run(&loop, UV_RUN_DEFAULT);
  exit_code = 0;
out:
  if (!s.stopping) { /* startup failed: close what was opened */
    uv_close((uv_handle_t *)&s.tcp, NULL);
    uv_close((uv_handle_t *)&s.sigint, NULL);
    uv_close((uv_handle_t *)&s.sigterm, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  mock_script_clear();
  mock_records_free();
  mock_runpod_clear();
  rc = uv_loop_close(&loop);
  if (rc) {
    fprintf(stderr, "mockllm: uv_loop_close: %s (a handle leaked)\n",
            uv_strerror(rc));
    return 1;
  }
  return exit_code;
}
