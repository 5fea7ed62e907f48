/* HTTP/1.1 request heads for mockllm: a bounded, allocation-free parser
 * (fuzzed by tests/fuzz/fuzz_mock_http.c), reason phrases, and the small
 * growable buffer every part of mockllm writes into. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mockllm.h"

/* ---- buffer ----------------------------------------------------------------
 */
static int buf_reserve(mock_buf_t *b, size_t extra) {
  if (b->oom)
    return -1;
  if (extra < b->cap - b->len) /* room for the bytes and a NUL */
    return 0;
  size_t want = b->len + extra + 1;
  if (want < b->len) {
    b->oom = 1;
    return -1;
  }
  size_t cap = b->cap ? b->cap : 256;
  while (cap < want)
    cap = cap > SIZE_MAX / 2 ? want : cap * 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void mock_buf_put(mock_buf_t *b, const void *d, size_t n) {
  if (!n || buf_reserve(b, n))
    return;
  memcpy(b->p + b->len, d, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void mock_buf_puts(mock_buf_t *b, const char *s) {
  mock_buf_put(b, s, strlen(s));
}

void mock_buf_printf(mock_buf_t *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n < sizeof small) {
    mock_buf_put(b, small, (size_t)n);
    return;
  }
  if (buf_reserve(b, (size_t)n + 1))
    return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void mock_buf_free(mock_buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

char *mock_buf_take(mock_buf_t *b, size_t *len) {
  char *p = b->p;
  if (len)
    *len = b->len;
  memset(b, 0, sizeof *b);
  return p;
}

/* ---- request head parser
 * ----------------------------------------------------- */
static int is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
      (c >= 'A' && c <= 'Z'))
    return 1;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int fail(mock_http_err_t *err, int status, const char *msg) {
  err->status = status;
  err->msg = msg;
  return status == 413 || status == 414 || status == 431 ? JIWA_ETOOBIG
                                                         : JIWA_EPROTO;
}

static int ieq(const char *a, size_t alen, const char *b) {
  size_t n = strlen(b);
  return alen == n && strncasecmp(a, b, n) == 0;
}

/* Does the comma-separated list @p v contain token @p tok? */
static int has_token(const char *v, size_t n, const char *tok) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    size_t s = i;
    while (i < n && v[i] != ',')
      i++;
    size_t e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
      e--;
    if (e > s && ieq(v + s, e - s, tok))
      return 1;
  }
  return 0;
}

static int parse_request_line(const char *l, size_t n, mock_http_req_t *req,
                              mock_http_err_t *err) {
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)l[i]))
    i++;
  if (i == 0 || i > 32 || i >= n || l[i] != ' ')
    return fail(err, 400,
                "malformed request line: expected METHOD SP target "
                "SP HTTP/1.1");
  req->method = l;
  req->mlen = i;
  size_t t = ++i;
  while (i < n && l[i] != ' ') {
    unsigned char c = (unsigned char)l[i];
    if (c <= 0x20 || c == 0x7f)
      return fail(err, 400, "malformed request target: control character");
    i++;
  }
  if (i == t || i >= n)
    return fail(err, 400,
                "malformed request line: expected METHOD SP target "
                "SP HTTP/1.1");
  if (i - t > MOCK_MAX_TARGET)
    return fail(err, 414, "request target longer than 8192 bytes");
  if (l[t] != '/' && !(i - t == 1 && l[t] == '*'))
    return fail(err, 400, "request target must be a path starting with '/'");
  req->target = l + t;
  req->tlen = i - t;
  i++;
  const char *v = l + i;
  size_t vn = n - i;
  if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' ||
      v[6] != '.' || v[7] < '0' || v[7] > '9')
    return fail(err, 400, "malformed HTTP version: expected HTTP/1.1");
  if (v[5] != '1' || v[7] > '1')
    return fail(err, 505, "only HTTP/1.0 and HTTP/1.1 are spoken here");
  req->minor = v[7] - '0';
  return 0;
}

static int parse_header(const char *l, size_t n, mock_http_req_t *req,
                        mock_http_err_t *err) {
  if (l[0] == ' ' || l[0] == '\t')
    return fail(err, 400, "obsolete header line folding is not accepted");
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)l[i]))
    i++;
  if (i == 0 || i >= n || l[i] != ':')
    return fail(err, 400, "malformed header line: expected 'Name: value'");
  if (req->nhdr >= MOCK_MAX_HEADERS)
    return fail(err, 431, "more than 100 request header lines");
  mock_hdr_t *h = &req->hdr[req->nhdr++];
  h->name = l;
  h->nlen = i;
  i++;
  while (i < n && (l[i] == ' ' || l[i] == '\t'))
    i++;
  size_t e = n;
  while (e > i && (l[e - 1] == ' ' || l[e - 1] == '\t'))
    e--;
  for (size_t k = i; k < e; k++) {
    unsigned char c = (unsigned char)l[k];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return fail(err, 400, "control character in a header value");
  }
  h->val = l + i;
  h->vlen = e - i;
  return 0;
}

/* Strict Content-Length: 1-19 digits; the value is capped before overflow. */
static int parse_length(const char *v, size_t n, size_t *out) {
  if (n == 0 || n > 19)
    return -1;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  *out =
      x > (uint64_t)MOCK_MAX_BODY + 1 ? (size_t)MOCK_MAX_BODY + 1 : (size_t)x;
  return 0;
}

int mock_http_parse(const char *buf, size_t len, mock_http_req_t *req,
                    mock_http_err_t *err) {
  size_t lim = len < MOCK_MAX_HEAD ? len : MOCK_MAX_HEAD;
  size_t pos = 0;
  req->nhdr = 0;
  req->content_length = 0;
  req->keep_alive = 0;
  req->expect_continue = 0;
  req->head_len = 0;
  req->method = req->target = NULL;
  req->mlen = req->tlen = 0;
  req->minor = 1;
  /* RFC 9112 2.2: ignore empty lines before the request line. */
  while (pos < lim && (buf[pos] == '\r' || buf[pos] == '\n'))
    pos++;
  int first = 1;
  for (;;) {
    const char *nl = pos < lim ? memchr(buf + pos, '\n', lim - pos) : NULL;
    if (!nl) {
      if (len >= MOCK_MAX_HEAD)
        return fail(err, 431, "request head larger than 64 KiB");
      return 0;
    }
    size_t lend = (size_t)(nl - buf);
    size_t n = lend - pos;
    if (n > 0 && buf[lend - 1] == '\r')
      n--;
    const char *l = buf + pos;
    if (memchr(l, '\r', n) || memchr(l, '\0', n))
      return fail(err, 400, "stray CR or NUL in the request head");
    pos = lend + 1;
    if (n == 0) {
      if (first)
        continue; /* cannot happen: leading empty lines were skipped */
      break;
    }
    int rc = first ? parse_request_line(l, n, req, err)
                   : parse_header(l, n, req, err);
    if (rc)
      return rc;
    first = 0;
  }
  req->head_len = pos;

  int have_len = 0, have_host = 0;
  req->keep_alive = req->minor == 1;
  for (size_t i = 0; i < req->nhdr; i++) {
    const mock_hdr_t *h = &req->hdr[i];
    if (ieq(h->name, h->nlen, "content-length")) {
      size_t v;
      if (parse_length(h->val, h->vlen, &v))
        return fail(err, 400, "malformed Content-Length");
      if (have_len && v != req->content_length)
        return fail(err, 400, "conflicting Content-Length headers");
      have_len = 1;
      req->content_length = v;
    } else if (ieq(h->name, h->nlen, "transfer-encoding")) {
      return fail(err, 411,
                  "chunked or encoded request bodies are not "
                  "supported: send a Content-Length body");
    } else if (ieq(h->name, h->nlen, "connection")) {
      if (has_token(h->val, h->vlen, "close"))
        req->keep_alive = 0;
      else if (has_token(h->val, h->vlen, "keep-alive"))
        req->keep_alive = 1;
    } else if (ieq(h->name, h->nlen, "expect")) {
      if (!ieq(h->val, h->vlen, "100-continue"))
        return fail(err, 417, "only 'Expect: 100-continue' is understood");
      req->expect_continue = 1;
    } else if (ieq(h->name, h->nlen, "host")) {
      have_host = 1;
    }
  }
  if (req->minor == 1 && !have_host)
    return fail(err, 400, "HTTP/1.1 request without a Host header");
  if (req->content_length > MOCK_MAX_BODY)
    return fail(err, 413, "request body larger than 8 MiB");
  return 1;
}

const char *mock_http_header(const mock_http_req_t *req, const char *name,
                             size_t *vlen) {
  for (size_t i = 0; i < req->nhdr; i++)
    if (ieq(req->hdr[i].name, req->hdr[i].nlen, name)) {
      if (vlen)
        *vlen = req->hdr[i].vlen;
      return req->hdr[i].val;
    }
  return NULL;
}

const char *mock_http_reason(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 402:
    return "Payment Required";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 411:
    return "Length Required";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 417:
    return "Expectation Failed";
  case 422:
    return "Unprocessable Content";
  case 424:
    return "Failed Dependency";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  case 529:
    return "Overloaded";
  default:
    return status < 500 ? "Client Error" : "Server Error";
  }
}

/* ---- routes
 * ------------------------------------------------------------------ */
static const char *const route_names[MOCK_ROUTE_COUNT] = {
    "anthropic", "openai", "runpod", "hf", "embeddings", "control", "other"};

const char *mock_route_name(int route) {
  if (route == MOCK_ROUTE_ALL)
    return "*";
  return route >= 0 && route < MOCK_ROUTE_COUNT ? route_names[route] : "?";
}

int mock_route_parse(const char *s, size_t n) {
  if (n == 1 && s[0] == '*')
    return MOCK_ROUTE_ALL;
  for (int i = 0; i <= MOCK_ROUTE_EMBEDDINGS; i++)
    if (strlen(route_names[i]) == n && memcmp(route_names[i], s, n) == 0)
      return i;
  return -1;
}
