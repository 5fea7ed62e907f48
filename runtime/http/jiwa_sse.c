/* Incremental text/event-stream parser (include/jiwa/sse.h). Part of the
 * SDK: no libuv, no curl. A complete line inside one chunk is parsed in
 * place; only a line split across chunks is copied into the line buffer,
 * which never grows past max_line. */
#include "jiwa/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

struct jiwa_sse {
  jiwa_sse_event_fn fn;
  void *ud;
  size_t max_line, max_event;
  buf_t line;  /* a line begun in an earlier chunk */
  buf_t data;  /* data lines of the event being built, each + "\n" */
  buf_t event; /* event type of the event being built */
  buf_t id;    /* last event id */
  int64_t retry_ms;
  int bom_pos;  /* BOM bytes matched so far at the stream start */
  int bom_done; /* past the stream start */
  int cr;       /* the last byte fed was a CR ending a line */
  int pending;  /* a field line since the last dispatch */
  int err;
  char errtext[160];
  jiwa_sse_stats_t st;
};

static const unsigned char BOM[3] = {0xef, 0xbb, 0xbf};

/* Make room for @p need bytes plus a NUL; @p need is already bounded. */
static int buf_reserve(buf_t *b, size_t need) {
  if (need + 1 <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need + 1)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p)
    return JIWA_ENOMEM;
  b->p = p;
  b->cap = cap;
  return 0;
}

static int buf_set(buf_t *b, const char *s, size_t n) {
  if (buf_reserve(b, n))
    return JIWA_ENOMEM;
  if (n)
    memcpy(b->p, s, n);
  b->len = n;
  b->p[n] = '\0';
  return 0;
}

static int fail(jiwa_sse_t *p, int code, const char *fmt, size_t n) {
  p->err = code;
  snprintf(p->errtext, sizeof p->errtext, fmt, n);
  return code;
}

int jiwa_sse_new(jiwa_sse_t **out, const jiwa_sse_opts_t *opts,
                 jiwa_sse_event_fn fn, void *ud) {
  *out = NULL;
  if (!fn)
    return JIWA_EINVAL;
  jiwa_sse_t *p = calloc(1, sizeof *p);
  if (!p)
    return JIWA_ENOMEM;
  p->fn = fn;
  p->ud = ud;
  p->max_line =
      opts && opts->max_line ? opts->max_line : JIWA_SSE_MAX_LINE_DEFAULT;
  p->max_event =
      opts && opts->max_event ? opts->max_event : JIWA_SSE_MAX_EVENT_DEFAULT;
  p->retry_ms = -1;
  *out = p;
  return 0;
}

void jiwa_sse_reset(jiwa_sse_t *p) {
  p->line.len = p->data.len = p->event.len = p->id.len = 0;
  p->retry_ms = -1;
  p->bom_pos = p->bom_done = p->cr = p->pending = 0;
  p->err = 0;
  p->errtext[0] = '\0';
  memset(&p->st, 0, sizeof p->st);
}

void jiwa_sse_free(jiwa_sse_t *p) {
  if (!p)
    return;
  free(p->line.p);
  free(p->data.p);
  free(p->event.p);
  free(p->id.p);
  free(p);
}

static int dispatch(jiwa_sse_t *p) {
  p->pending = 0;
  if (p->data.len == 0) {
    p->event.len = 0;
    return 0;
  }
  p->data.len--; /* the "\n" after the last data line */
  p->data.p[p->data.len] = '\0';
  jiwa_sse_event_t ev = {
      .event = p->event.len ? p->event.p : "message",
      .event_len = p->event.len ? p->event.len : 7,
      .data = p->data.p,
      .data_len = p->data.len,
      .id = p->id.len ? p->id.p : "",
      .id_len = p->id.len,
      .retry_ms = p->retry_ms,
  };
  p->st.events++;
  int rc = p->fn(&ev, p->ud);
  p->data.len = p->event.len = 0;
  if (rc < 0) {
    p->err = rc;
    snprintf(p->errtext, sizeof p->errtext, "stopped by the event callback: %s",
             jiwa_strerror(rc));
    return rc;
  }
  return 0;
}

static int field_is(const char *f, size_t n, const char *name) {
  return strlen(name) == n && memcmp(f, name, n) == 0;
}

static int process_line(jiwa_sse_t *p, const char *l, size_t n) {
  p->st.lines++;
  if (n == 0)
    return dispatch(p);
  if (l[0] == ':') {
    p->st.comments++;
    return 0;
  }
  const char *colon = memchr(l, ':', n);
  size_t fl = colon ? (size_t)(colon - l) : n;
  const char *v = colon ? colon + 1 : l + n;
  size_t vl = colon ? n - fl - 1 : 0;
  if (vl && v[0] == ' ') {
    v++;
    vl--;
  }
  if (field_is(l, fl, "data")) {
    if (p->event.len + p->data.len + vl + 1 > p->max_event)
      return fail(p, JIWA_ETOOBIG, "SSE event larger than %zu bytes",
                  p->max_event);
    if (buf_reserve(&p->data, p->data.len + vl + 1))
      return fail(p, JIWA_ENOMEM, "out of memory (%zu)", vl);
    memcpy(p->data.p + p->data.len, v, vl);
    p->data.len += vl;
    p->data.p[p->data.len++] = '\n';
    p->pending = 1;
  } else if (field_is(l, fl, "event")) {
    if (vl + p->data.len > p->max_event)
      return fail(p, JIWA_ETOOBIG, "SSE event larger than %zu bytes",
                  p->max_event);
    if (buf_set(&p->event, v, vl))
      return fail(p, JIWA_ENOMEM, "out of memory (%zu)", vl);
    p->pending = 1;
  } else if (field_is(l, fl, "id")) {
    if (memchr(v, '\0', vl)) {
      p->st.ignored++;
    } else if (buf_set(&p->id, v, vl)) {
      return fail(p, JIWA_ENOMEM, "out of memory (%zu)", vl);
    }
    p->pending = 1;
  } else if (field_is(l, fl, "retry")) {
    int64_t ms = 0;
    size_t i = 0;
    for (; i < vl && v[i] >= '0' && v[i] <= '9' && ms < INT64_MAX / 10 - 9; i++)
      ms = ms * 10 + (v[i] - '0');
    if (vl && i == vl)
      p->retry_ms = ms;
    else
      p->st.ignored++;
    p->pending = 1;
  } else {
    p->st.ignored++;
  }
  return 0;
}

/* Content bytes (the BOM already handled). */
static int consume(jiwa_sse_t *p, const char *s, size_t n) {
  while (n) {
    if (p->cr) {
      p->cr = 0;
      if (s[0] == '\n') {
        s++;
        n--;
        continue;
      }
    }
    size_t k = 0;
    while (k < n && s[k] != '\n' && s[k] != '\r')
      k++;
    if (p->line.len + k > p->max_line)
      return fail(p, JIWA_ETOOBIG, "SSE line longer than %zu bytes",
                  p->max_line);
    if (k == n) { /* no line end in this chunk: keep the start */
      if (buf_reserve(&p->line, p->line.len + k))
        return fail(p, JIWA_ENOMEM, "out of memory (%zu)", k);
      memcpy(p->line.p + p->line.len, s, k);
      p->line.len += k;
      return 0;
    }
    int rc;
    if (p->line.len) {
      if (buf_reserve(&p->line, p->line.len + k))
        return fail(p, JIWA_ENOMEM, "out of memory (%zu)", k);
      memcpy(p->line.p + p->line.len, s, k);
      p->line.len += k;
      size_t ln = p->line.len;
      p->line.len = 0; /* the buffer is reused only after this line */
      rc = process_line(p, p->line.p, ln);
    } else {
      rc = process_line(p, s, k);
    }
    if (rc)
      return rc;
    if (s[k] == '\r')
      p->cr = 1;
    s += k + 1;
    n -= k + 1;
  }
  return 0;
}

int jiwa_sse_feed(jiwa_sse_t *p, const void *data, size_t len) {
  if (p->err)
    return p->err;
  const char *s = data;
  p->st.bytes += len;
  while (!p->bom_done && len) {
    if ((unsigned char)*s == BOM[p->bom_pos]) {
      s++;
      len--;
      if (++p->bom_pos == 3)
        p->bom_done = 1;
      continue;
    }
    /* not a BOM after all: what matched is content */
    p->bom_done = 1;
    int rc = consume(p, (const char *)BOM, (size_t)p->bom_pos);
    if (rc)
      return rc;
  }
  return len ? consume(p, s, len) : 0;
}

int jiwa_sse_finish(jiwa_sse_t *p) {
  if (p->err)
    return p->err;
  size_t cut = p->line.len + (p->bom_done ? 0 : (size_t)p->bom_pos);
  if (cut)
    return fail(p, JIWA_EPROTO,
                "SSE stream truncated: it ended inside a line (%zu bytes "
                "not dispatched)",
                cut);
  if (p->pending)
    return fail(p, JIWA_EPROTO,
                "SSE stream truncated: the last event has no terminating "
                "blank line (%zu data bytes not dispatched)",
                p->data.len);
  return 0;
}

const char *jiwa_sse_error(const jiwa_sse_t *p) {
  return p->err ? p->errtext : "";
}

void jiwa_sse_stats(const jiwa_sse_t *p, jiwa_sse_stats_t *out) {
  *out = p->st;
}
