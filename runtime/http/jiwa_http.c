/* The HTTP engine: libcurl multi on one libuv loop (see jiwa_http.h).
 *
 * The pairing follows curl's multi-socket model: curl tells us which
 * sockets to watch (socket callback → one uv_poll per socket, assigned to
 * the socket with curl_multi_assign so there is never a second poll on one
 * fd) and when to call it back (timer callback → one uv_timer); every
 * event goes back through curl_multi_socket_action, after which finished
 * transfers are drained with curl_multi_info_read.
 *
 * libcurl forbids adding or removing easy handles from inside its
 * callbacks, and user callbacks (on_response, on_data) run there; so a
 * start or cancel made from inside curl is queued and done from the
 * `defer` timer, which also delivers every cancel's on_done (a cancel never
 * calls a callback itself). */
#include "jiwa_http.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "jiwa/plugin.h" /* log levels */

#define MAX_HEADERS 128
#define MAX_HEADER_BYTES (64u << 10)
#define DEFAULT_CONNECT_MS 10000u
#define DEFAULT_MAX_BODY (64ull << 20)

enum { R_PENDING, R_ACTIVE, R_DONE };

typedef struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct jiwa_http *h;
  int closing;
  struct sock *prev, *next;
} sock_t;

typedef struct hreq {
  struct jiwa_http *h;
  uint64_t id;
  CURL *easy;
  struct curl_slist *hdrs;
  char *body;
  size_t body_len;
  char **redact; /* copied names, NULL-terminated (debug only) */
  jiwa_http_engine_cbs_t cbs;
  void *ud;
  char tag[64];
  char hostport[128];
  char errbuf[CURL_ERROR_SIZE];
  uint32_t connect_ms, ttfb_ms, total_ms, low_bytes, low_secs;
  uint64_t max_bytes;
  uint64_t t0_us, tfirst_us;
  uint64_t t0_loop_ms; /* uv_now at start: the clock of our deadlines */
  int state;
  int in_multi;
  int canceled;
  int got_first; /* a response byte arrived */
  int responded; /* on_response delivered */
  /* the response head being read */
  char *hbuf;
  size_t hlen, hcap;
  size_t hoff[MAX_HEADERS][2];
  size_t nh;
  int status, version;
  uint64_t bytes_in;
  /* a failure decided inside a callback, reported when curl finishes */
  int fail_kind, fail_code;
  char fail_text[384];
  uv_timer_t timer;
  int timer_live;
  struct hreq *prev, *next; /* live list */
  struct hreq *qnext;       /* addq or finq */
} hreq_t;

struct jiwa_http {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer; /* curl's timeout */
  uv_timer_t defer; /* queued adds and cancels */
  int handles;      /* open uv handles we own */
  int freeing;
  int depth; /* > 0 while inside curl */
  uint64_t next_id;
  jiwa_http_opts_t o;
  hreq_t *live;
  hreq_t *addq, *addq_tail;
  hreq_t *finq, *finq_tail;
  sock_t *socks;
  jiwa_http_stats_t st;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static int curl_has_h2;

static void curl_init_once(void) {
  curl_init_rc = curl_global_init(CURL_GLOBAL_ALL);
  curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  curl_has_h2 = v && (v->features & CURL_VERSION_HTTP2);
}

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- handle bookkeeping ---------------------------------------------------
 */

static void handle_closed(struct jiwa_http *h) {
  if (--h->handles == 0 && h->freeing)
    free(h);
}

static void engine_handle_closed(uv_handle_t *u) {
  handle_closed(u->data);
}

static void sock_closed(uv_handle_t *u) {
  sock_t *k = u->data;
  struct jiwa_http *h = k->h;
  free(k);
  handle_closed(h);
}

static void sock_close(sock_t *k) {
  if (k->closing)
    return;
  k->closing = 1;
  struct jiwa_http *h = k->h;
  if (k->prev)
    k->prev->next = k->next;
  else
    h->socks = k->next;
  if (k->next)
    k->next->prev = k->prev;
  uv_poll_stop(&k->poll);
  uv_close((uv_handle_t *)&k->poll, sock_closed);
}

static void hreq_free_now(hreq_t *r) {
  if (r->easy)
    curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->hdrs);
  free(r->body);
  free(r->hbuf);
  if (r->redact) {
    for (char **p = r->redact; *p; p++)
      free(*p);
    free(r->redact);
  }
}

static void hreq_timer_closed(uv_handle_t *u) {
  hreq_t *r = u->data;
  struct jiwa_http *h = r->h;
  free(r);
  handle_closed(h);
}

static void hreq_release(hreq_t *r) {
  hreq_free_now(r);
  if (r->timer_live) {
    r->timer_live = 0;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, hreq_timer_closed);
  } else {
    free(r);
  }
}

/* ---- logging and redaction --------------------------------------------- */

static const char *const builtin_secret[] = {
    "authorization", "proxy-authorization", "x-api-key",      "api-key",
    "cookie",        "set-cookie",          "x-goog-api-key", NULL};

static int in_list(const char *name, size_t n, const char *const *list) {
  for (; list && *list; list++)
    if (strlen(*list) == n && strncasecmp(*list, name, n) == 0)
      return 1;
  return 0;
}

size_t jiwa__http_redact_line(const char *line, size_t len,
                              const char *const *extra,
                              const char *const *extra2, char *out,
                              size_t cap) {
  if (!cap)
    return 0;
  const char *colon = memchr(line, ':', len);
  size_t n = colon ? (size_t)(colon - line) : 0;
  while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
    n--;
  /* a header line: a name without blanks before the colon */
  if (colon && n && !memchr(line, ' ', n) && !memchr(line, '\t', n)) {
    if (in_list(line, n, builtin_secret) || in_list(line, n, extra) ||
        in_list(line, n, extra2)) {
      int w = snprintf(out, cap, "%.*s: [redacted]", (int)n, line);
      return w < 0 ? 0 : (size_t)w >= cap ? cap - 1 : (size_t)w;
    }
  } else {
    /* a request line: keep the query string (it may hold a key) out */
    const char *q = memchr(line, '?', len);
    const char *ver = NULL;
    for (size_t i = 0; i + 6 <= len; i++)
      if (memcmp(line + i, " HTTP/", 6) == 0)
        ver = line + i;
    if (q && ver && q < ver) {
      int w = snprintf(out, cap, "%.*s?[redacted]%.*s", (int)(q - line), line,
                       (int)(line + len - ver), ver);
      return w < 0 ? 0 : (size_t)w >= cap ? cap - 1 : (size_t)w;
    }
  }
  n = len < cap - 1 ? len : cap - 1;
  memcpy(out, line, n);
  out[n] = '\0';
  return n;
}

static void log_line(struct jiwa_http *h, int level, const hreq_t *r,
                     const char *line) {
  if (h->o.log)
    h->o.log(level, r && r->tag[0] ? r->tag : "http", line, h->o.log_ud);
}

static int debug_cb(CURL *e, curl_infotype type, char *data, size_t size,
                    void *ud) {
  hreq_t *r = ud;
  struct jiwa_http *h = r->h;
  const char *dir;
  switch (type) {
  case CURLINFO_TEXT:
    dir = "*";
    break;
  case CURLINFO_HEADER_IN:
    dir = "<";
    break;
  case CURLINFO_HEADER_OUT:
    dir = ">";
    break;
  default:
    return 0; /* bodies and TLS records are never logged */
  }
  /* one call may carry several lines (the request head) */
  const char *p = data, *end = data + size;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    size_t n = (size_t)(le - p);
    if (n && p[n - 1] == '\r')
      n--;
    if (n) {
      char red[1024], line[1100];
      jiwa__http_redact_line(p, n, (const char *const *)r->redact, h->o.redact,
                             red, sizeof red);
      snprintf(line, sizeof line, "http #%llu %s %s", (unsigned long long)r->id,
               dir, red);
      log_line(h, JIWA_LOG_DEBUG, r, line);
    }
    p = nl ? nl + 1 : end;
  }
  return 0;
}

/* ---- finishing ------------------------------------------------------------
 */

static void live_del(struct jiwa_http *h, hreq_t *r) {
  if (r->prev)
    r->prev->next = r->next;
  else if (h->live == r)
    h->live = r->next;
  if (r->next)
    r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

/* Report and free @p r. Never from inside curl (depth 0). */
static void finish(hreq_t *r, int code, int kind, const char *text) {
  struct jiwa_http *h = r->h;
  if (r->state == R_DONE)
    return;
  long nconn = 0;
  curl_off_t up = 0;
  if (r->easy) {
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &nconn);
    curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &up);
  }
  if (r->in_multi) {
    curl_multi_remove_handle(h->multi, r->easy);
    r->in_multi = 0;
  }
  r->state = R_DONE;
  live_del(h, r);
  if (r->timer_live)
    uv_timer_stop(&r->timer);
  uint64_t t = now_us();
  jiwa_http_result_t res = {
      .code = code,
      .kind = code ? (jiwa_http_fail_t)kind : JIWA_HTTP_FAIL_NONE,
      .error = code ? text : "",
      .status = r->status,
      .bytes_in = r->bytes_in,
      .bytes_out = up > 0 ? (uint64_t)up : 0,
      .reused = r->got_first && nconn == 0,
      .ttfb_ms =
          r->got_first ? (double)(r->tfirst_us - r->t0_us) / 1000.0 : -1.0,
      .total_ms = (double)(t - r->t0_us) / 1000.0,
  };
  h->st.done++;
  h->st.active--;
  h->st.bytes_out += res.bytes_out;
  h->st.connections += nconn > 0 ? (uint64_t)nconn : 0;
  h->st.reused += res.reused;
  if (code)
    h->st.errors[res.kind < JIWA_HTTP_FAIL_COUNT ? res.kind
                                                 : JIWA_HTTP_FAIL_OTHER]++;
  if (code && h->o.debug_enabled && h->o.debug_enabled(h->o.log_ud)) {
    char line[512];
    snprintf(line, sizeof line, "http #%llu failed (%s): %s",
             (unsigned long long)r->id, jiwa_http_fail_name(res.kind), text);
    log_line(h, JIWA_LOG_DEBUG, r, line);
  }
  r->cbs.on_done(&res, r->ud);
  hreq_release(r);
}

static void finish_curl(hreq_t *r, CURLcode cc) {
  char text[384];
  long oserr = 0;
  curl_off_t conn = 0, clen = -1;
  if (r->fail_kind) {
    finish(r, r->fail_code, r->fail_kind, r->fail_text);
    return;
  }
  curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
  curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &conn);
  curl_easy_getinfo(r->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
  unsigned long long got = (unsigned long long)r->bytes_in;
  int code = JIWA_EUPSTREAM, kind;
  switch (cc) {
  case CURLE_OK:
    finish(r, 0, JIWA_HTTP_FAIL_NONE, "");
    return;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    kind = JIWA_HTTP_FAIL_CONNECT;
    snprintf(text, sizeof text, "could not resolve host of %s", r->hostport);
    break;
  case CURLE_COULDNT_CONNECT:
    kind = JIWA_HTTP_FAIL_CONNECT;
    snprintf(text, sizeof text, "could not connect to %s: %s", r->hostport,
             oserr ? strerror((int)oserr) : "connection failed");
    break;
  case CURLE_OPERATION_TIMEDOUT:
    code = JIWA_ETIMEDOUT;
    if (conn == 0 && !r->got_first) {
      kind = JIWA_HTTP_FAIL_CONNECT_TIMEOUT;
      snprintf(text, sizeof text,
               "connect timeout: no connection to %s "
               "within %u ms",
               r->hostport, r->connect_ms);
    } else {
      kind = JIWA_HTTP_FAIL_LOW_SPEED;
      snprintf(text, sizeof text,
               "low speed: under %u bytes/s for %u s from %s (%llu bytes "
               "received)",
               r->low_bytes, r->low_secs, r->hostport, got);
    }
    break;
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
    kind = JIWA_HTTP_FAIL_RESET;
    if (oserr == ECONNRESET || oserr == EPIPE)
      snprintf(text, sizeof text, "connection reset after %llu bytes", got);
    else
      snprintf(text, sizeof text, "%s failed after %llu bytes: %s",
               cc == CURLE_RECV_ERROR ? "receive" : "send", got,
               oserr ? strerror((int)oserr) : curl_easy_strerror(cc));
    break;
  case CURLE_PARTIAL_FILE:
    kind = JIWA_HTTP_FAIL_RESET;
    snprintf(text, sizeof text, "connection closed after %llu of %lld bytes",
             got, (long long)clen);
    break;
  case CURLE_GOT_NOTHING:
    kind = JIWA_HTTP_FAIL_RESET;
    snprintf(text, sizeof text, "connection closed by %s before any response",
             r->hostport);
    break;
  case CURLE_FILESIZE_EXCEEDED:
    code = JIWA_ETOOBIG;
    kind = JIWA_HTTP_FAIL_TOO_BIG;
    snprintf(text, sizeof text,
             "response larger than %llu bytes (Content-Length %lld)",
             (unsigned long long)r->max_bytes, (long long)clen);
    break;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
    kind = JIWA_HTTP_FAIL_TLS;
    snprintf(text, sizeof text, "TLS with %s failed: %s", r->hostport,
             curl_easy_strerror(cc));
    break;
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_TOO_MANY_REDIRECTS:
    kind = JIWA_HTTP_FAIL_PROTOCOL;
    snprintf(text, sizeof text, "malformed response from %s: %s", r->hostport,
             curl_easy_strerror(cc));
    break;
  case CURLE_OUT_OF_MEMORY:
    code = JIWA_ENOMEM;
    kind = JIWA_HTTP_FAIL_OTHER;
    snprintf(text, sizeof text, "out of memory in the HTTP client");
    break;
  default:
    kind = JIWA_HTTP_FAIL_OTHER;
    snprintf(text, sizeof text, "request to %s failed: %s (curl %d)",
             r->hostport, curl_easy_strerror(cc), (int)cc);
    break;
  }
  finish(r, code, kind, text);
}

/* ---- the curl <-> uv pairing ------------------------------------------- */

static void drain(struct jiwa_http *h) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(h->multi, &left))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *e = m->easy_handle;
    CURLcode cc = m->data.result;
    hreq_t *r = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
    if (!r || r->canceled || r->state != R_ACTIVE)
      continue; /* a cancel finishes it from the defer timer */
    finish_curl(r, cc);
  }
}

static void run_action(struct jiwa_http *h, curl_socket_t fd, int flags) {
  int running;
  h->depth++;
  CURLMcode mc = curl_multi_socket_action(h->multi, fd, flags, &running);
  h->depth--;
  if (mc != CURLM_OK) {
    char line[160];
    snprintf(line, sizeof line, "curl_multi_socket_action: %s",
             curl_multi_strerror(mc));
    log_line(h, JIWA_LOG_WARN, NULL, line);
  }
  drain(h);
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  sock_t *k = p->data;
  int flags = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  run_action(k->h, k->fd, flags);
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp,
                     void *socketp) {
  struct jiwa_http *h = userp;
  sock_t *k = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (k) {
      curl_multi_assign(h->multi, s, NULL);
      sock_close(k);
    }
    return 0;
  }
  if (!k) {
    k = calloc(1, sizeof *k);
    if (!k)
      return -1;
    if (uv_poll_init_socket(h->loop, &k->poll, s)) {
      free(k);
      return -1;
    }
    k->poll.data = k;
    k->fd = s;
    k->h = h;
    h->handles++;
    k->next = h->socks;
    if (h->socks)
      h->socks->prev = k;
    h->socks = k;
    curl_multi_assign(h->multi, s, k);
  }
  int ev = 0;
  if (what & CURL_POLL_IN)
    ev |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    ev |= UV_WRITABLE;
  if (uv_poll_start(&k->poll, ev, poll_cb))
    return -1;
  return 0;
}

static void curl_timeout_cb(uv_timer_t *t) {
  run_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
  struct jiwa_http *h = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&h->timer);
  else /* even 0: run from the loop, never from inside curl */
    uv_timer_start(&h->timer, curl_timeout_cb, (uint64_t)timeout_ms, 0);
  return 0;
}

/* ---- per-request callbacks ------------------------------------------------
 */

static void set_fail(hreq_t *r, int code, int kind, const char *text) {
  if (r->fail_kind)
    return;
  r->fail_code = code;
  r->fail_kind = kind;
  snprintf(r->fail_text, sizeof r->fail_text, "%s", text);
}

static int64_t parse_retry_after(const char *v) {
  if (!v)
    return -1;
  while (*v == ' ' || *v == '\t')
    v++;
  if (isdigit((unsigned char)*v)) {
    int64_t s = 0;
    for (; isdigit((unsigned char)*v); v++) {
      if (s > 100000000000LL)
        return -1;
      s = s * 10 + (*v - '0');
    }
    while (*v == ' ' || *v == '\t')
      v++;
    return *v ? -1 : s * 1000;
  }
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *e = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!e)
    return -1;
  time_t when = timegm(&tm), now = time(NULL);
  if (when == (time_t)-1)
    return -1;
  return when > now ? (int64_t)(when - now) * 1000 : 0;
}

static void deliver_response(hreq_t *r) {
  r->responded = 1;
  if (!r->status) {
    long code = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    r->status = (int)code;
  }
  if (!r->cbs.on_response)
    return;
  jiwa_http_header_t hv[MAX_HEADERS];
  const char *retry = NULL;
  for (size_t i = 0; i < r->nh; i++) {
    hv[i].name = r->hbuf + r->hoff[i][0];
    hv[i].value = r->hbuf + r->hoff[i][1];
    if (!retry && strcasecmp(hv[i].name, "retry-after") == 0)
      retry = hv[i].value;
  }
  jiwa_http_response_t resp = {
      .status = r->status,
      .http_version = r->version,
      .headers = hv,
      .nheaders = r->nh,
      .retry_after_ms = parse_retry_after(retry),
  };
  r->cbs.on_response(&resp, r->ud);
}

static int hbuf_put(hreq_t *r, const char *s, size_t n) {
  if (r->hlen + n + 1 > MAX_HEADER_BYTES)
    return -1;
  if (r->hlen + n + 1 > r->hcap) {
    size_t cap = r->hcap ? r->hcap * 2 : 1024;
    while (cap < r->hlen + n + 1)
      cap *= 2;
    char *p = realloc(r->hbuf, cap);
    if (!p)
      return -1;
    r->hbuf = p;
    r->hcap = cap;
  }
  memcpy(r->hbuf + r->hlen, s, n);
  r->hlen += n;
  r->hbuf[r->hlen++] = '\0';
  return 0;
}

static void trim(const char **s, size_t *n) {
  while (*n && (**s == ' ' || **s == '\t')) {
    (*s)++;
    (*n)--;
  }
  while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
    (*n)--;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud) {
  hreq_t *r = ud;
  size_t n = size * nitems;
  if (r->canceled || r->fail_kind)
    return 0;
  if (!r->got_first) {
    r->got_first = 1;
    r->tfirst_us = now_us();
  }
  if (r->responded)
    return n; /* trailers */
  size_t ll = n;
  while (ll && (buf[ll - 1] == '\n' || buf[ll - 1] == '\r'))
    ll--;
  if (ll == 0) { /* end of a head */
    if (r->status >= 100 && r->status < 200) {
      r->nh = r->hlen = 0; /* interim: skip */
      r->status = 0;
      return n;
    }
    deliver_response(r);
    return r->canceled ? 0 : n;
  }
  if (ll >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    r->nh = r->hlen = 0;
    r->version = 11;
    if (ll >= 8 && buf[5] == '1' && buf[6] == '.' && buf[7] == '0')
      r->version = 10;
    else if (buf[5] == '2')
      r->version = 20;
    else if (buf[5] == '3')
      r->version = 30;
    const char *sp = memchr(buf, ' ', ll);
    r->status = 0;
    for (const char *p = sp ? sp + 1 : buf + ll;
         p < buf + ll && isdigit((unsigned char)*p); p++)
      r->status = r->status * 10 + (*p - '0');
    return n;
  }
  const char *line = buf;
  if ((line[0] == ' ' || line[0] == '\t') && r->nh) {
    /* obsolete line folding: continue the last value */
    size_t vl = ll;
    trim(&line, &vl);
    if (r->hlen + vl + 1 > MAX_HEADER_BYTES)
      goto too_big;
    r->hbuf[r->hlen - 1] = ' ';
    r->hlen--;
    if (hbuf_put(r, line, vl))
      goto too_big;
    return n;
  }
  const char *colon = memchr(line, ':', ll);
  if (!colon)
    return n; /* not a header: ignore */
  const char *name = line, *val = colon + 1;
  size_t nl = (size_t)(colon - line), vl = ll - nl - 1;
  trim(&name, &nl);
  trim(&val, &vl);
  if (r->nh >= MAX_HEADERS)
    goto too_big;
  size_t no = r->hlen;
  if (hbuf_put(r, name, nl))
    goto too_big;
  size_t vo = r->hlen;
  if (hbuf_put(r, val, vl))
    goto too_big;
  r->hoff[r->nh][0] = no;
  r->hoff[r->nh][1] = vo;
  r->nh++;
  return n;
too_big : {
  char t[120];
  snprintf(t, sizeof t, "response head larger than %u bytes or %d lines",
           MAX_HEADER_BYTES, MAX_HEADERS);
  set_fail(r, JIWA_ETOOBIG, JIWA_HTTP_FAIL_TOO_BIG, t);
  return 0;
}
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
  hreq_t *r = ud;
  size_t n = size * nmemb;
  if (r->canceled || r->fail_kind)
    return 0;
  if (r->bytes_in + n > r->max_bytes) {
    char t[120];
    snprintf(t, sizeof t, "response larger than %llu bytes",
             (unsigned long long)r->max_bytes);
    set_fail(r, JIWA_ETOOBIG, JIWA_HTTP_FAIL_TOO_BIG, t);
    return 0;
  }
  r->bytes_in += n;
  r->h->st.bytes_in += n;
  if (!r->responded) {
    deliver_response(r);
    if (r->canceled)
      return 0;
  }
  if (r->cbs.on_data) {
    int rc = r->cbs.on_data(ptr, n, r->ud);
    if (rc < 0) {
      char t[120];
      snprintf(t, sizeof t, "aborted by the receiver after %llu bytes: %s",
               (unsigned long long)r->bytes_in, jiwa_strerror(rc));
      set_fail(r, rc, JIWA_HTTP_FAIL_ABORTED, t);
      return 0;
    }
    if (r->canceled)
      return 0;
  }
  return n;
}

/* ---- deadlines -------------------------------------------------------------
 */

static void req_timer_cb(uv_timer_t *t) {
  hreq_t *r = t->data;
  if (r->canceled || r->state == R_DONE)
    return;
  uint64_t el = uv_now(r->h->loop) - r->t0_loop_ms;
  char text[384];
  if (r->ttfb_ms && !r->got_first && el >= r->ttfb_ms) {
    snprintf(text, sizeof text, "no response within ttfb %u ms from %s",
             r->ttfb_ms, r->hostport);
    finish(r, JIWA_ETIMEDOUT, JIWA_HTTP_FAIL_TTFB, text);
    return;
  }
  if (r->total_ms && el >= r->total_ms) {
    snprintf(text, sizeof text,
             "response not complete within total %u ms from %s (%llu bytes "
             "received)",
             r->total_ms, r->hostport, (unsigned long long)r->bytes_in);
    finish(r, JIWA_ETIMEDOUT, JIWA_HTTP_FAIL_TOTAL, text);
    return;
  }
  if (r->total_ms)
    uv_timer_start(&r->timer, req_timer_cb, r->total_ms - el, 0);
}

/* ---- deferred adds and cancels ------------------------------------------ */

static int add_now(hreq_t *r) {
  CURLMcode mc = curl_multi_add_handle(r->h->multi, r->easy);
  if (mc != CURLM_OK)
    return JIWA_EIO;
  r->in_multi = 1;
  r->state = R_ACTIVE;
  return 0;
}

static void defer_cb(uv_timer_t *t) {
  struct jiwa_http *h = t->data;
  while (h->addq || h->finq) {
    hreq_t *a = h->addq;
    h->addq = h->addq_tail = NULL;
    while (a) {
      hreq_t *next = a->qnext;
      a->qnext = NULL;
      if (!a->canceled && a->state == R_PENDING && add_now(a))
        finish(a, JIWA_EIO, JIWA_HTTP_FAIL_OTHER,
               "the HTTP client refused the request");
      a = next;
    }
    hreq_t *f = h->finq;
    h->finq = h->finq_tail = NULL;
    while (f) {
      hreq_t *next = f->qnext;
      f->qnext = NULL;
      finish(f, JIWA_ECANCELED, JIWA_HTTP_FAIL_CANCELED, "canceled");
      f = next;
    }
  }
}

static void defer_now(struct jiwa_http *h) {
  if (!h->freeing)
    uv_timer_start(&h->defer, defer_cb, 0, 0);
}

/* ---- public
 * ------------------------------------------------------------------- */

int jiwa__http_new(jiwa_http_t **out, uv_loop_t *loop,
                   const jiwa_http_opts_t *opts) {
  *out = NULL;
  pthread_once(&curl_once, curl_init_once);
  if (curl_init_rc != CURLE_OK)
    return JIWA_EIO;
  struct jiwa_http *h = calloc(1, sizeof *h);
  if (!h)
    return JIWA_ENOMEM;
  if (opts)
    h->o = *opts;
  if (!h->o.max_connects)
    h->o.max_connects = 64;
  h->loop = loop;
  h->multi = curl_multi_init();
  if (!h->multi) {
    free(h);
    return JIWA_EIO;
  }
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->o.max_connects);
  curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  uv_timer_init(loop, &h->defer);
  h->defer.data = h;
  h->handles = 2;
  h->next_id = 1;
  *out = h;
  return 0;
}

void jiwa__http_free(jiwa_http_t *h) {
  if (!h)
    return;
  h->freeing = 1;
  h->addq = h->addq_tail = NULL;
  h->finq = h->finq_tail = NULL;
  while (h->live) {
    hreq_t *r = h->live;
    if (r->canceled)
      finish(r, JIWA_ECANCELED, JIWA_HTTP_FAIL_CANCELED, "canceled");
    else
      finish(r, JIWA_ESHUTDOWN, JIWA_HTTP_FAIL_SHUTDOWN,
             "the HTTP client shut down");
  }
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
  while (h->socks)
    sock_close(h->socks);
  uv_timer_stop(&h->timer);
  uv_timer_stop(&h->defer);
  uv_close((uv_handle_t *)&h->timer, engine_handle_closed);
  uv_close((uv_handle_t *)&h->defer, engine_handle_closed);
}

static int bad_token(const char *s, int allow_space) {
  if (!s)
    return 1;
  for (; *s; s++)
    if (*s == '\r' || *s == '\n' || (!allow_space && (*s == ' ' || *s == ':')))
      return 1;
  return 0;
}

static int build(hreq_t *r, const jiwa_http_req_t *q) {
  struct jiwa_http *h = r->h;
  CURLU *u = curl_url();
  if (!u)
    return JIWA_ENOMEM;
  char *host = NULL, *port = NULL, *scheme = NULL;
  int rc = JIWA_EINVAL;
  if (curl_url_set(u, CURLUPART_URL, q->url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
    goto out;
  snprintf(r->hostport, sizeof r->hostport, "%s:%s", host, port);
  int https = strcmp(scheme, "https") == 0;

  const char *method = q->method ? q->method : q->body_len ? "POST" : "GET";
  size_t ml = strlen(method);
  if (ml == 0 || ml > 16)
    goto out;
  for (size_t i = 0; i < ml; i++)
    if (!isupper((unsigned char)method[i]))
      goto out;

  int has_expect = 0;
  for (size_t i = 0; i < q->nheaders; i++) {
    const jiwa_http_header_t *hd = &q->headers[i];
    if (!hd->name || !hd->name[0] || bad_token(hd->name, 0) ||
        bad_token(hd->value ? hd->value : "", 1))
      goto out;
    has_expect |= strcasecmp(hd->name, "expect") == 0;
    size_t n = strlen(hd->name) + (hd->value ? strlen(hd->value) : 0) + 3;
    char *line = malloc(n);
    if (!line) {
      rc = JIWA_ENOMEM;
      goto out;
    }
    if (hd->value && hd->value[0])
      snprintf(line, n, "%s: %s", hd->name, hd->value);
    else
      snprintf(line, n, "%s;", hd->name); /* curl's way to send it empty */
    struct curl_slist *l = curl_slist_append(r->hdrs, line);
    free(line);
    if (!l) {
      rc = JIWA_ENOMEM;
      goto out;
    }
    r->hdrs = l;
  }
  if (!has_expect) { /* no 100-continue round trip before big bodies */
    struct curl_slist *l = curl_slist_append(r->hdrs, "Expect:");
    if (!l) {
      rc = JIWA_ENOMEM;
      goto out;
    }
    r->hdrs = l;
  }
  if (q->body_len) {
    r->body = malloc(q->body_len);
    if (!r->body) {
      rc = JIWA_ENOMEM;
      goto out;
    }
    memcpy(r->body, q->body, q->body_len);
    r->body_len = q->body_len;
  }
  int debug = h->o.debug_enabled && h->o.debug_enabled(h->o.log_ud);
  if (debug && q->redact) {
    size_t n = 0;
    while (q->redact[n])
      n++;
    r->redact = calloc(n + 1, sizeof *r->redact);
    if (!r->redact) {
      rc = JIWA_ENOMEM;
      goto out;
    }
    for (size_t i = 0; i < n; i++)
      if (!(r->redact[i] = strdup(q->redact[i]))) {
        rc = JIWA_ENOMEM;
        goto out;
      }
  }

  CURL *e = r->easy = curl_easy_init();
  if (!e) {
    rc = JIWA_ENOMEM;
    goto out;
  }
  curl_easy_setopt(e, CURLOPT_URL, q->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->connect_ms);
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_bytes);
  if (r->low_bytes && r->low_secs) {
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, (long)r->low_bytes);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)r->low_secs);
  }
  if (curl_has_h2) {
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    if (https) /* wait for a connection that can multiplex */
      curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  }
  if (strcmp(method, "GET") == 0 && !r->body_len) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    if (strcmp(method, "POST") != 0)
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  if (debug) {
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, debug_cb);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, r);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
  }
  rc = 0;
out:
  curl_free(host);
  curl_free(port);
  curl_free(scheme);
  curl_url_cleanup(u);
  return rc;
}

int jiwa__http_start(jiwa_http_t *h, const jiwa_http_req_t *req,
                     const jiwa_http_engine_cbs_t *cbs, void *ud,
                     const char *tag, uint64_t *id) {
  if (id)
    *id = 0;
  if (h->freeing)
    return JIWA_ESHUTDOWN;
  if (!req || req->size < sizeof(jiwa_http_req_t) || !req->url || !cbs ||
      !cbs->on_done || (req->nheaders && !req->headers) ||
      (req->body_len && !req->body))
    return JIWA_EINVAL;
  hreq_t *r = calloc(1, sizeof *r);
  if (!r)
    return JIWA_ENOMEM;
  r->h = h;
  r->cbs = *cbs;
  r->ud = ud;
  snprintf(r->tag, sizeof r->tag, "%s", tag ? tag : "");
  r->connect_ms =
      req->connect_timeout_ms ? req->connect_timeout_ms : DEFAULT_CONNECT_MS;
  r->ttfb_ms = req->ttfb_ms;
  r->total_ms = req->total_ms;
  r->low_bytes = req->low_speed_bytes;
  r->low_secs = req->low_speed_secs;
  r->max_bytes =
      req->max_response_bytes ? req->max_response_bytes : DEFAULT_MAX_BODY;
  int rc = build(r, req);
  if (rc) {
    hreq_free_now(r);
    free(r);
    return rc;
  }
  r->id = h->next_id++;
  r->state = R_PENDING;
  r->t0_us = now_us();
  uv_update_time(h->loop);
  r->t0_loop_ms = uv_now(h->loop);
  if (h->depth == 0) {
    if (add_now(r)) {
      hreq_free_now(r);
      free(r);
      return JIWA_EIO;
    }
  } else { /* inside a curl callback: add from the loop */
    if (h->addq_tail)
      h->addq_tail->qnext = r;
    else
      h->addq = r;
    h->addq_tail = r;
    defer_now(h);
  }
  uint32_t first = r->ttfb_ms && (!r->total_ms || r->ttfb_ms < r->total_ms)
                       ? r->ttfb_ms
                       : r->total_ms;
  if (first) {
    uv_timer_init(h->loop, &r->timer);
    r->timer.data = r;
    r->timer_live = 1;
    h->handles++;
    uv_timer_start(&r->timer, req_timer_cb, first, 0);
  }
  r->next = h->live;
  if (h->live)
    h->live->prev = r;
  h->live = r;
  h->st.requests++;
  h->st.active++;
  if (id)
    *id = r->id;
  return 0;
}

int jiwa__http_cancel(jiwa_http_t *h, uint64_t id) {
  for (hreq_t *r = h->live; r; r = r->next) {
    if (r->id != id)
      continue;
    if (r->canceled || r->state == R_DONE)
      return JIWA_ENOENT;
    r->canceled = 1;
    if (r->state == R_PENDING) { /* never added: take it off addq */
      hreq_t *prev = NULL;
      for (hreq_t *q = h->addq; q; prev = q, q = q->qnext)
        if (q == r) {
          if (prev)
            prev->qnext = q->qnext;
          else
            h->addq = q->qnext;
          if (h->addq_tail == q)
            h->addq_tail = prev;
          break;
        }
      r->qnext = NULL;
    }
    if (h->finq_tail)
      h->finq_tail->qnext = r;
    else
      h->finq = r;
    h->finq_tail = r;
    defer_now(h);
    return 0;
  }
  return JIWA_ENOENT;
}

void jiwa__http_stats(const jiwa_http_t *h, jiwa_http_stats_t *out) {
  *out = h->st;
}
