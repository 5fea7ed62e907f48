/*
 * tools/mockllm end to end: the real binary on an ephemeral loopback port
 * (--port 0 --port-file), driven with libcurl (and raw sockets where the
 * bytes on the wire are the point).
 *
 * Usage: test_mockllm PATH/TO/mockllm   (or $MOCKLLM)
 *
 * Covers every protocol streaming and not, default echo and scripted
 * replies, every fault of the README's table, keep-alive reuse,
 * 100-continue, the request log (auth header named, never its value),
 * stats, bad requests, --script files and a clean exit on SIGINT/SIGTERM.
 * No timing is asserted: timeouts only bound the waits.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../common/jt_mockllm.h"

#include "jiwa/json.h"
#include "jiwa/mp.h"

#define assert_contains(hay, needle)                                           \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_))                                                \
      fail_msg("expected to find \"%s\" in \"%.600s\"", n_,                    \
               h_ ? h_ : "(null)");                                            \
  } while (0)

#define assert_not_contains(hay, needle)                                       \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (h_ && strstr(h_, n_))                                                  \
      fail_msg("did not expect \"%s\" in \"%.600s\"", n_, h_);                 \
  } while (0)

static const char *g_bin;
static char g_dir[256];
static pid_t g_pid;
static int g_port;

/* ---- the mockllm process
 * ------------------------------------------------------ */
static pid_t spawn(const char *tag, const char *script, int *port) {
  return jt_mockllm_start(g_bin, g_dir, tag, script, 0, port);
}

/* Signal @p pid and return its exit status (-1 if it did not exit). */
static int stop(pid_t pid, int sig) { return jt_mockllm_stop(pid, sig); }

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *b = calloc(1, 1 << 20);
  size_t n = fread(b, 1, (1 << 20) - 1, f);
  b[n] = '\0';
  fclose(f);
  return b;
}

static int group_setup(void **state) {
  (void)state;
  const char *t = getenv("TMPDIR");
  snprintf(g_dir, sizeof g_dir, "%s/jiwa-mockllm-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(g_dir))
    return -1;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  g_pid = spawn("main", NULL, &g_port);
  return g_pid > 0 && g_port > 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  int st = stop(g_pid, SIGTERM);
  curl_global_cleanup();
  if (st != 0) { /* show why (sanitizer reports land in the log) */
    char p[512];
    snprintf(p, sizeof p, "%s/main.log", g_dir);
    char *log = slurp(p);
    if (log) {
      size_t n = strlen(log);
      fprintf(stderr, "--- mockllm log (tail) ---\n%s\n",
              n > 16000 ? log + n - 16000 : log);
      free(log);
    }
  }
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", g_dir);
  if (st != 0)
    fprintf(stderr, "mockllm exited with %d (want 0)\n", st);
  return st == 0 ? 0 : -1;
}

/* ---- HTTP with libcurl
 * ------------------------------------------------------------ */
typedef struct {
  CURLcode rc;
  long status, connects;
  char *body;
  size_t blen, writes;
  size_t abort_after; /* stop reading after this many body bytes (0 = never) */
  char hdrs[8192];
  size_t hlen;
} resp_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  resp_t *r = ud;
  size_t len = sz * n;
  r->body = realloc(r->body, r->blen + len + 1);
  memcpy(r->body + r->blen, p, len);
  r->blen += len;
  r->body[r->blen] = '\0';
  r->writes++;
  if (r->abort_after && r->blen >= r->abort_after)
    return 0; /* the client cuts the stream */
  return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
  resp_t *r = ud;
  size_t len = sz * n;
  if (r->hlen + len < sizeof r->hdrs) {
    memcpy(r->hdrs + r->hlen, p, len);
    r->hlen += len;
    r->hdrs[r->hlen] = '\0';
  }
  return len;
}

static void resp_free(resp_t *r) {
  free(r->body);
  memset(r, 0, sizeof *r);
}

/* One request. @p h may be NULL (a fresh handle); @p hdrs is NULL-ended. */
static void http(CURL *h, const char *method, const char *path,
                 const char *body, const char *const *hdrs, long timeout_ms,
                 resp_t *r) {
  CURL *own = h ? NULL : curl_easy_init();
  CURL *e = h ? h : own;
  char url[1024];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_port, path);
  struct curl_slist *sl = NULL;
  sl = curl_slist_append(sl, "Content-Type: application/json");
  for (size_t i = 0; hdrs && hdrs[i]; i++)
    sl = curl_slist_append(sl, hdrs[i]);
  r->body = calloc(1, 1);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  } else {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, sl);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 20000L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  r->rc = curl_easy_perform(e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &r->connects);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(sl);
  if (own)
    curl_easy_cleanup(own);
}

static void post(const char *path, const char *body, const char *fault,
                 resp_t *r) {
  char fh[512];
  const char *hdrs[3] = {NULL, NULL, NULL};
  if (fault) {
    snprintf(fh, sizeof fh, "X-Mock-Fault: %s", fault);
    hdrs[0] = fh;
  }
  http(NULL, "POST", path, body, hdrs, 0, r);
}

static void control(const char *method, const char *path, const char *body,
                    int want) {
  resp_t r = {0};
  http(NULL, method, path, body, NULL, 0, &r);
  if (r.rc != CURLE_OK || r.status != want)
    fail_msg("%s %s: curl %d status %ld body %s", method, path, r.rc, r.status,
             r.body);
  resp_free(&r);
}

/* ---- JSON through the SDK: "a.0.b" paths
 * ------------------------------------------ */
typedef struct {
  char *mp;
  size_t len;
} js_t;

static js_t js_parse(const char *text, size_t n) {
  js_t j = {NULL, 0};
  jiwa_json_error_t err;
  if (jiwa_json_to_mp(text, n, NULL, &j.mp, &j.len, &err) != 0)
    fail_msg("not JSON (%s at %u:%u): %.300s", err.msg, err.line, err.column,
             text);
  return j;
}

static int js_try(const char *text, size_t n, js_t *out) {
  return jiwa_json_to_mp(text, n, NULL, &out->mp, &out->len, NULL);
}

/* Byte range of the value at @p path ("choices.0.delta.content"). */
static int js_at(const js_t *j, const char *path, const void **vb, size_t *vn) {
  const uint8_t *b = (const uint8_t *)j->mp;
  size_t n = j->len;
  char seg[128];
  const char *p = path;
  while (*p) {
    size_t k = strcspn(p, ".");
    snprintf(seg, sizeof seg, "%.*s", (int)k, p);
    p += k + (p[k] == '.');
    jiwa_mp_reader_t r;
    if (seg[0] >= '0' && seg[0] <= '9') {
      jiwa_mp_item_t it;
      jiwa_mp_reader_init(&r, b, n);
      if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_ARRAY)
        return -1;
      unsigned idx = (unsigned)atoi(seg);
      if (idx >= it.v.count)
        return -1;
      for (unsigned i = 0; i < idx; i++)
        if (jiwa_mp_skip(&r))
          return -1;
    } else if (jiwa_mp_map_find(b, n, seg, &r)) {
      return -1;
    }
    const uint8_t *st = r.p;
    if (jiwa_mp_skip(&r))
      return -1;
    b = st;
    n = (size_t)(r.p - st);
  }
  *vb = b;
  *vn = n;
  return 0;
}

/* String at @p path, copied (static rotating buffers), or NULL. */
static const char *js_str(const js_t *j, const char *path) {
  static char bufs[4][1 << 16];
  static int k;
  const void *vb;
  size_t vn;
  if (js_at(j, path, &vb, &vn))
    return NULL;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, vb, vn);
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_STR)
    return NULL;
  char *o = bufs[k++ & 3];
  snprintf(o, sizeof bufs[0], "%.*s", (int)it.v.s.len, it.v.s.ptr);
  return o;
}

static int64_t js_int(const js_t *j, const char *path) {
  const void *vb;
  size_t vn;
  if (js_at(j, path, &vb, &vn))
    return -999999;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, vb, vn);
  if (jiwa_mp_next(&r, &it))
    return -999999;
  if (it.type == JIWA_MP_UINT)
    return (int64_t)it.v.u;
  if (it.type == JIWA_MP_INT)
    return it.v.i;
  return -999999;
}

/* Element count of the array at @p path (-1 if not an array). */
static int js_count(const js_t *j, const char *path) {
  const void *vb;
  size_t vn;
  if (js_at(j, path, &vb, &vn))
    return -1;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, vb, vn);
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_ARRAY)
    return -1;
  return (int)it.v.count;
}

static int js_is_nil(const js_t *j, const char *path) {
  const void *vb;
  size_t vn;
  return js_at(j, path, &vb, &vn) == 0 && vn == 1 &&
         *(const uint8_t *)vb == 0xc0;
}

static void js_free(js_t *j) {
  free(j->mp);
  j->mp = NULL;
}

/* ---- SSE, split by hand (an independent reading of the wire)
 * -------------------- */
typedef struct {
  char event[64];
  char *data;
} ev_t;

typedef struct {
  ev_t v[4096];
  size_t n;
  size_t comments;
  size_t longest_line;
} evs_t;

static void evs_parse(const char *b, size_t n, evs_t *e) {
  memset(e, 0, sizeof *e);
  char ev[64] = "";
  char *data = NULL;
  size_t dlen = 0;
  int have = 0;
  size_t i = 0;
  while (i < n) {
    size_t st = i;
    while (i < n && b[i] != '\r' && b[i] != '\n')
      i++;
    size_t len = i - st;
    if (i < n && b[i] == '\r' && i + 1 < n && b[i + 1] == '\n')
      i += 2;
    else if (i < n)
      i++;
    if (len > e->longest_line)
      e->longest_line = len;
    const char *l = b + st;
    if (len == 0) {
      if (have && e->n < 4096) {
        snprintf(e->v[e->n].event, 64, "%s", ev[0] ? ev : "message");
        e->v[e->n].data = data ? data : strdup("");
        e->n++;
        data = NULL;
      }
      free(data);
      data = NULL;
      dlen = 0;
      ev[0] = '\0';
      have = 0;
      continue;
    }
    if (l[0] == ':') {
      e->comments++;
      continue;
    }
    const char *colon = memchr(l, ':', len);
    size_t fl = colon ? (size_t)(colon - l) : len;
    const char *v = colon ? colon + 1 : l + len;
    size_t vl = colon ? len - fl - 1 : 0;
    if (vl && *v == ' ')
      v++, vl--;
    if (fl == 5 && !memcmp(l, "event", 5)) {
      snprintf(ev, sizeof ev, "%.*s", (int)vl, v);
    } else if (fl == 4 && !memcmp(l, "data", 4)) {
      data = realloc(data, dlen + vl + 2);
      if (dlen)
        data[dlen++] = '\n';
      memcpy(data + dlen, v, vl);
      dlen += vl;
      data[dlen] = '\0';
      have = 1;
    }
  }
  free(data);
}

static void evs_free(evs_t *e) {
  for (size_t i = 0; i < e->n; i++)
    free(e->v[i].data);
  e->n = 0;
}

enum { P_ANTHROPIC, P_OPENAI, P_TGI };

/* Reassembled text; counts events whose data is not JSON in *bad. */
static char *evs_text(const evs_t *e, int proto, int *bad) {
  size_t cap = 1 << 16, len = 0;
  char *out = calloc(1, cap);
  *bad = 0;
  for (size_t i = 0; i < e->n; i++) {
    const char *d = e->v[i].data;
    if (proto == P_OPENAI && !strcmp(d, "[DONE]"))
      continue;
    js_t j = {0};
    if (js_try(d, strlen(d), &j)) {
      (*bad)++;
      continue;
    }
    const char *t = NULL;
    if (proto == P_ANTHROPIC) {
      const char *ty = js_str(&j, "type");
      if (ty && !strcmp(ty, "content_block_delta"))
        t = js_str(&j, "delta.text");
    } else if (proto == P_OPENAI) {
      t = js_str(&j, "choices.0.delta.content");
    } else {
      const void *vb;
      size_t vn;
      int special = js_at(&j, "token.special", &vb, &vn) == 0 && vn == 1 &&
                    *(const uint8_t *)vb == 0xc3;
      if (!special)
        t = js_str(&j, "token.text");
    }
    if (t) {
      size_t tl = strlen(t);
      while (len + tl + 1 > cap)
        out = realloc(out, cap *= 2);
      memcpy(out + len, t, tl + 1);
      len += tl;
    }
    js_free(&j);
  }
  return out;
}

/* ---- raw sockets
 * ---------------------------------------------------------------------- */
static int raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void raw_send(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

/* Read until EOF/reset, @p until appears, or @p ms pass. */
static char *raw_read(int fd, const char *until, int ms, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *b = malloc(cap);
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
      break;
    if (n + 65536 + 1 > cap)
      b = realloc(b, cap *= 2);
    ssize_t r = recv(fd, b + n, 65536, 0);
    if (r <= 0)
      break;
    n += (size_t)r;
    b[n] = '\0';
    if (until && strstr(b, until))
      break;
  }
  b[n] = '\0';
  *len = n;
  return b;
}

/* Send @p req on a fresh connection and read the reply to EOF. */
static char *raw_exchange(const char *req, size_t reqlen, size_t *len) {
  int fd = raw_connect(g_port);
  assert_true(fd >= 0);
  raw_send(fd, req, reqlen);
  char *b = raw_read(fd, NULL, 10000, len);
  close(fd);
  return b;
}

/* Decode a chunked body; *max_chunk and *chunks describe the framing. */
static char *dechunk(const char *b, size_t n, size_t *olen, size_t *max_chunk,
                     size_t *chunks) {
  char *out = malloc(n + 1);
  size_t o = 0, i = 0;
  *max_chunk = 0;
  *chunks = 0;
  while (i < n) {
    char *end;
    unsigned long sz = strtoul(b + i, &end, 16);
    if (end == b + i || end[0] != '\r' || end[1] != '\n')
      break;
    i = (size_t)(end - b) + 2;
    if (sz == 0)
      break;
    if (i + sz + 2 > n)
      break;
    memcpy(out + o, b + i, sz);
    o += sz;
    i += sz + 2;
    (*chunks)++;
    if (sz > *max_chunk)
      *max_chunk = sz;
  }
  out[o] = '\0';
  *olen = o;
  return out;
}

/* ---- requests
 * ------------------------------------------------------------------------------
 */
static const char *ANTH =
    "{\"model\":\"claude-test\",\"max_tokens\":200,\"system\":\"You are "
    "Jiwa, a warm Indonesian assistant.\",\"messages\":[{\"role\":\"user\","
    "\"content\":\"Apa kabar hari ini?\"}]%s}";
static const char *OAI =
    "{\"model\":\"llama-jiwa\",\"messages\":[{\"role\":\"system\",\"content\":"
    "\"Persona: santai\"},{\"role\":\"user\",\"content\":\"Halo, siapa "
    "kamu?\"}]%s}";

static char *fmt(const char *f, ...) {
  static char b[8][8192];
  static int k;
  char *o = b[k++ & 7];
  va_list ap;
  va_start(ap, f);
  vsnprintf(o, sizeof b[0], f, ap);
  va_end(ap);
  return o;
}

#define ANTH_TEXT                                                              \
  "[mock claude-test] You asked: \"Apa kabar hari ini?\". Context seen: "      \
  "\"You are Jiwa, a warm Indonesian assistant.\""
#define OAI_TEXT                                                               \
  "[mock llama-jiwa] You asked: \"Halo, siapa kamu?\". Context seen: "         \
  "\"Persona: santai\""

/* Stream @p body to @p path and reassemble the text. */
static char *stream_text(const char *path, const char *body, const char *fault,
                         int proto, evs_t *e, int *bad, resp_t *r) {
  post(path, body, fault, r);
  evs_parse(r->body, r->blen, e);
  return evs_text(e, proto, bad);
}

/* ---- tests: protocols
 * ------------------------------------------------------------------------ */
static void test_banner(void **state) {
  (void)state;
  char p[512];
  snprintf(p, sizeof p, "%s/main.log", g_dir);
  char *log = slurp(p);
  assert_non_null(log);
  assert_contains(log, "OFFLINE stand-in");
  assert_contains(log, "no real model");
  assert_contains(log, fmt("http://127.0.0.1:%d", g_port));
  free(log);
}

static void test_anthropic_plain(void **state) {
  (void)state;
  resp_t r = {0};
  const char *h[] = {"x-api-key: sk-test", "anthropic-version: 2023-06-01",
                     NULL};
  http(NULL, "POST", "/v1/messages", fmt(ANTH, ""), h, 0, &r);
  assert_int_equal(r.rc, CURLE_OK);
  assert_int_equal(r.status, 200);
  assert_contains(r.hdrs, "request-id: req_mock_");
  js_t j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "type"), "message");
  assert_string_equal(js_str(&j, "role"), "assistant");
  assert_string_equal(js_str(&j, "model"), "claude-test");
  assert_string_equal(js_str(&j, "content.0.type"), "text");
  assert_string_equal(js_str(&j, "content.0.text"), ANTH_TEXT);
  assert_string_equal(js_str(&j, "stop_reason"), "end_turn");
  assert_true(js_is_nil(&j, "stop_sequence"));
  /* words: 7 of system + 4 of the message; reply words */
  assert_int_equal(js_int(&j, "usage.input_tokens"), 11);
  assert_int_equal(js_int(&j, "usage.output_tokens"), 17);
  js_free(&j);
  resp_free(&r);
}

static void test_anthropic_stream(void **state) {
  (void)state;
  evs_t *e = malloc(sizeof *e);
  resp_t r = {0};
  int bad;
  char *t = stream_text("/v1/messages", fmt(ANTH, ",\"stream\":true"), NULL,
                        P_ANTHROPIC, e, &bad, &r);
  assert_int_equal(r.rc, CURLE_OK);
  assert_int_equal(r.status, 200);
  assert_contains(r.hdrs, "text/event-stream");
  assert_string_equal(t, ANTH_TEXT);
  assert_int_equal(bad, 0);
  assert_true(e->n >= 8);
  assert_string_equal(e->v[0].event, "message_start");
  assert_string_equal(e->v[1].event, "content_block_start");
  assert_string_equal(e->v[2].event, "ping");
  size_t deltas = 0;
  for (size_t i = 3; i < e->n - 3; i++) {
    assert_string_equal(e->v[i].event, "content_block_delta");
    deltas++;
  }
  assert_true(deltas >= 2); /* split into word groups */
  assert_string_equal(e->v[e->n - 3].event, "content_block_stop");
  assert_string_equal(e->v[e->n - 2].event, "message_delta");
  assert_string_equal(e->v[e->n - 1].event, "message_stop");
  js_t j = js_parse(e->v[0].data, strlen(e->v[0].data));
  assert_string_equal(js_str(&j, "message.model"), "claude-test");
  assert_int_equal(js_int(&j, "message.usage.input_tokens"), 11);
  js_free(&j);
  j = js_parse(e->v[e->n - 2].data, strlen(e->v[e->n - 2].data));
  assert_string_equal(js_str(&j, "delta.stop_reason"), "end_turn");
  assert_int_equal(js_int(&j, "usage.output_tokens"), 17);
  js_free(&j);
  j = js_parse(e->v[3].data, strlen(e->v[3].data));
  assert_string_equal(js_str(&j, "delta.type"), "text_delta");
  js_free(&j);
  free(t);
  evs_free(e);
  free(e);
  resp_free(&r);
}

static void test_anthropic_invalid(void **state) {
  (void)state;
  resp_t r = {0};
  post("/v1/messages",
       "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
       NULL, &r);
  assert_int_equal(r.status, 400);
  js_t j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "type"), "error");
  assert_string_equal(js_str(&j, "error.type"), "invalid_request_error");
  assert_contains(js_str(&j, "error.message"), "max_tokens");
  js_free(&j);
  resp_free(&r);
  /* a body that is not JSON: 400 in the provider's shape */
  post("/v1/messages", "{\"model\": nope}", NULL, &r);
  assert_int_equal(r.status, 400);
  j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "error.type"), "invalid_request_error");
  assert_contains(js_str(&j, "error.message"), "invalid JSON");
  js_free(&j);
  resp_free(&r);
}

static void test_openai_plain(void **state) {
  (void)state;
  resp_t r = {0};
  const char *h[] = {"Authorization: Bearer sk-x", NULL};
  http(NULL, "POST", "/v1/chat/completions",
       fmt(OAI, ",\"temperature\":0.7,\"max_tokens\":100"), h, 0, &r);
  assert_int_equal(r.status, 200);
  js_t j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "object"), "chat.completion");
  assert_string_equal(js_str(&j, "model"), "llama-jiwa");
  assert_string_equal(js_str(&j, "choices.0.message.role"), "assistant");
  assert_string_equal(js_str(&j, "choices.0.message.content"), OAI_TEXT);
  assert_string_equal(js_str(&j, "choices.0.finish_reason"), "stop");
  assert_int_equal(js_int(&j, "usage.prompt_tokens"), 5);
  assert_int_equal(js_int(&j, "usage.completion_tokens"), 11);
  assert_int_equal(js_int(&j, "usage.total_tokens"), 16);
  js_free(&j);
  resp_free(&r);
  /* max_tokens cuts the reply: finish_reason "length" */
  post("/v1/chat/completions", fmt(OAI, ",\"max_tokens\":3"), NULL, &r);
  j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "choices.0.message.content"),
                      "[mock llama-jiwa] You");
  assert_string_equal(js_str(&j, "choices.0.finish_reason"), "length");
  assert_int_equal(js_int(&j, "usage.completion_tokens"), 3);
  js_free(&j);
  resp_free(&r);
}

static void test_openai_stream(void **state) {
  (void)state;
  evs_t *e = malloc(sizeof *e);
  resp_t r = {0};
  int bad;
  char *t = stream_text(
      "/v1/chat/completions",
      fmt(OAI, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"),
      NULL, P_OPENAI, e, &bad, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(t, OAI_TEXT);
  assert_int_equal(bad, 0);
  assert_string_equal(e->v[e->n - 1].data, "[DONE]");
  js_t j = js_parse(e->v[0].data, strlen(e->v[0].data));
  assert_string_equal(js_str(&j, "object"), "chat.completion.chunk");
  assert_string_equal(js_str(&j, "choices.0.delta.role"), "assistant");
  js_free(&j);
  j = js_parse(e->v[e->n - 3].data, strlen(e->v[e->n - 3].data));
  assert_string_equal(js_str(&j, "choices.0.finish_reason"), "stop");
  js_free(&j);
  j = js_parse(e->v[e->n - 2].data, strlen(e->v[e->n - 2].data));
  assert_int_equal(js_count(&j, "choices"), 0);
  assert_int_equal(js_int(&j, "usage.completion_tokens"), 11);
  js_free(&j);
  free(t);
  evs_free(e);
  resp_free(&r);
  /* without include_usage: no usage chunk */
  t = stream_text("/v1/chat/completions", fmt(OAI, ",\"stream\":true"), NULL,
                  P_OPENAI, e, &bad, &r);
  assert_string_equal(t, OAI_TEXT);
  j = js_parse(e->v[e->n - 2].data, strlen(e->v[e->n - 2].data));
  assert_string_equal(js_str(&j, "choices.0.finish_reason"), "stop");
  js_free(&j);
  free(t);
  evs_free(e);
  free(e);
  resp_free(&r);
}

static void test_runpod(void **state) {
  (void)state;
  resp_t r = {0};
  post("/v2/ep-123/runsync",
       "{\"input\":{\"prompt\":\"Tulis pantun\",\"sampling_params\":"
       "{\"max_tokens\":50,\"temperature\":0.5}}}",
       NULL, &r);
  assert_int_equal(r.status, 200);
  js_t j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "status"), "COMPLETED");
  assert_non_null(js_str(&j, "id"));
  assert_string_equal(js_str(&j, "output.0.choices.0.tokens.0"),
                      "[mock ep-123] You asked: \"Tulis pantun\". Context "
                      "seen: \"\"");
  assert_int_equal(js_int(&j, "output.0.usage.input"), 2);
  js_free(&j);
  resp_free(&r);

  /* /run then /status: IN_QUEUE, IN_PROGRESS x2, COMPLETED (polls=3) */
  post("/v2/ep-123/run",
       "{\"input\":{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
       "{\"role\":\"user\",\"content\":\"Q\"}]}}",
       "polls=3", &r);
  assert_int_equal(r.status, 200);
  j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "status"), "IN_QUEUE");
  char id[64];
  snprintf(id, sizeof id, "%s", js_str(&j, "id"));
  js_free(&j);
  resp_free(&r);
  const char *want[] = {"IN_QUEUE", "IN_PROGRESS", "IN_PROGRESS", "COMPLETED",
                        "COMPLETED"};
  for (int i = 0; i < 5; i++) {
    http(NULL, "GET", fmt("/v2/ep-123/status/%s", id), NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    j = js_parse(r.body, r.blen);
    assert_string_equal(js_str(&j, "status"), want[i]);
    assert_string_equal(js_str(&j, "id"), id);
    if (i >= 3)
      assert_string_equal(js_str(&j, "output.0.choices.0.tokens.0"),
                          "[mock ep-123] You asked: \"Q\". Context seen: "
                          "\"S\"");
    js_free(&j);
    resp_free(&r);
  }
  http(NULL, "GET", "/v2/ep-123/status/nope", NULL, NULL, 0, &r);
  assert_int_equal(r.status, 404);
  resp_free(&r);

  /* RunPod's OpenAI route */
  post("/v2/ep-123/openai/v1/chat/completions", fmt(OAI, ""), NULL, &r);
  assert_int_equal(r.status, 200);
  j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "choices.0.message.content"), OAI_TEXT);
  js_free(&j);
  resp_free(&r);
  evs_t *e = malloc(sizeof *e);
  int bad;
  char *t =
      stream_text("/v2/ep-123/openai/v1/chat/completions",
                  fmt(OAI, ",\"stream\":true"), NULL, P_OPENAI, e, &bad, &r);
  assert_string_equal(t, OAI_TEXT);
  free(t);
  evs_free(e);
  free(e);
  resp_free(&r);
}

static void test_huggingface(void **state) {
  (void)state;
  resp_t r = {0};
  post("/models/org/model-7b", "{\"inputs\":\"Halo\"}", NULL, &r);
  assert_int_equal(r.status, 200);
  js_t j = js_parse(r.body, r.blen);
  /* the Inference API returns the prompt too unless return_full_text=false */
  assert_string_equal(js_str(&j, "0.generated_text"),
                      "Halo[mock org/model-7b] You asked: \"Halo\". Context "
                      "seen: \"\"");
  js_free(&j);
  resp_free(&r);
  post("/models/org/model-7b",
       "{\"inputs\":\"Halo\",\"parameters\":{\"return_full_text\":false,"
       "\"max_new_tokens\":2}}",
       NULL, &r);
  j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "0.generated_text"), "[mock org/model-7b]");
  js_free(&j);
  resp_free(&r);

  post("/generate", "{\"inputs\":\"Halo\"}", NULL, &r);
  assert_int_equal(r.status, 200);
  j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "generated_text"),
                      "[mock tgi] You asked: \"Halo\". Context seen: \"\"");
  assert_string_equal(js_str(&j, "details.finish_reason"), "eos_token");
  assert_int_equal(js_int(&j, "details.generated_tokens"), 8);
  js_free(&j);
  resp_free(&r);

  evs_t *e = malloc(sizeof *e);
  int bad;
  char *t = stream_text("/generate_stream", "{\"inputs\":\"Halo\"}", NULL,
                        P_TGI, e, &bad, &r);
  assert_string_equal(t, "[mock tgi] You asked: \"Halo\". Context seen: \"\"");
  assert_true(e->n >= 2);
  j = js_parse(e->v[0].data, strlen(e->v[0].data));
  assert_true(js_is_nil(&j, "generated_text"));
  js_free(&j);
  j = js_parse(e->v[e->n - 1].data, strlen(e->v[e->n - 1].data));
  assert_string_equal(js_str(&j, "generated_text"), t);
  assert_string_equal(js_str(&j, "details.finish_reason"), "eos_token");
  js_free(&j);
  assert_contains(r.body, "data:{"); /* TGI writes no space after data: */
  free(t);
  evs_free(e);
  free(e);
  resp_free(&r);
}

static double vec_at(const js_t *j, const char *path) {
  const void *vb;
  size_t vn;
  assert_int_equal(js_at(j, path, &vb, &vn), 0);
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, vb, vn);
  assert_int_equal(jiwa_mp_next(&r, &it), 0);
  return it.type == JIWA_MP_FLOAT  ? it.v.f
         : it.type == JIWA_MP_UINT ? (double)it.v.u
                                   : (double)it.v.i;
}

static void test_embeddings(void **state) {
  (void)state;
  resp_t r = {0};
  post(
      "/v1/embeddings",
      "{\"model\":\"emb-x\",\"input\":[\"batik\",\"gotong royong\",\"batik\"]}",
      NULL, &r);
  assert_int_equal(r.status, 200);
  js_t j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "object"), "list");
  assert_string_equal(js_str(&j, "model"), "emb-x");
  assert_int_equal(js_count(&j, "data"), 3);
  assert_int_equal(js_count(&j, "data.0.embedding"), 384);
  assert_int_equal(js_int(&j, "data.1.index"), 1);
  assert_int_equal(js_int(&j, "usage.prompt_tokens"), 4);
  double n0 = 0, dot01 = 0;
  for (int i = 0; i < 384; i++) {
    double a = vec_at(&j, fmt("data.0.embedding.%d", i));
    double b = vec_at(&j, fmt("data.1.embedding.%d", i));
    double c = vec_at(&j, fmt("data.2.embedding.%d", i));
    assert_true(a == c); /* same text, same vector */
    n0 += a * a;
    dot01 += a * b;
  }
  assert_true(fabs(n0 - 1.0) < 1e-9);
  assert_true(fabs(dot01) < 0.5); /* different text, different vector */
  js_free(&j);
  resp_free(&r);

  post("/v1/embeddings", "{\"input\":\"satu\",\"dimensions\":8}", NULL, &r);
  j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "model"), "mock-embed");
  assert_int_equal(js_count(&j, "data"), 1);
  assert_int_equal(js_count(&j, "data.0.embedding"), 8);
  js_free(&j);
  resp_free(&r);

  post("/v1/embeddings",
       "{\"input\":\"satu\",\"dimensions\":8,\"encoding_format\":\"base64\"}",
       NULL, &r);
  j = js_parse(r.body, r.blen);
  assert_int_equal(strlen(js_str(&j, "data.0.embedding")), 44); /* 32 bytes */
  js_free(&j);
  resp_free(&r);

  post("/v1/embeddings", "{\"input\":[]}", NULL, &r);
  assert_int_equal(r.status, 400);
  resp_free(&r);
}

/* ---- tests: scripting
 * -------------------------------------------------------------------------- */
static void test_script(void **state) {
  (void)state;
  control("DELETE", "/_mock/script", NULL, 200);
  control("POST", "/_mock/script",
          "{\"route\":\"anthropic\",\"match\":\"kabar\",\"reply\":\"Baik, "
          "terima kasih!\",\"times\":1}",
          200);
  control("POST", "/_mock/script",
          "[{\"route\":\"openai\",\"reply\":\"scripted openai\"}]", 200);
  resp_t r = {0};
  post("/v1/messages", fmt(ANTH, ""), NULL, &r);
  js_t j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "content.0.text"), "Baik, terima kasih!");
  assert_int_equal(js_int(&j, "usage.output_tokens"), 3);
  js_free(&j);
  resp_free(&r);
  /* times=1: used up, back to the echo */
  post("/v1/messages", fmt(ANTH, ""), NULL, &r);
  j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "content.0.text"), ANTH_TEXT);
  js_free(&j);
  resp_free(&r);
  /* route-wide entry, streamed too */
  evs_t *e = malloc(sizeof *e);
  int bad;
  char *t = stream_text("/v1/chat/completions", fmt(OAI, ",\"stream\":true"),
                        NULL, P_OPENAI, e, &bad, &r);
  assert_string_equal(t, "scripted openai");
  free(t);
  evs_free(e);
  free(e);
  resp_free(&r);
  /* the listing shows what is left */
  http(NULL, "GET", "/_mock/script", NULL, NULL, 0, &r);
  j = js_parse(r.body, r.blen);
  assert_int_equal(js_count(&j, ""), 1);
  assert_string_equal(js_str(&j, "0.route"), "openai");
  js_free(&j);
  resp_free(&r);
  /* bad entries say why */
  http(NULL, "POST", "/_mock/script", "{\"route\":\"claude\",\"reply\":\"x\"}",
       NULL, 0, &r);
  assert_int_equal(r.status, 400);
  assert_contains(r.body, "route");
  resp_free(&r);
  http(NULL, "POST", "/_mock/script", "{\"fault\":\"explode=1\"}", NULL, 0, &r);
  assert_int_equal(r.status, 400);
  assert_contains(r.body, "unknown fault");
  resp_free(&r);
  http(NULL, "POST", "/_mock/script", "{\"reply\":\"x\",\"tmies\":2}", NULL, 0,
       &r);
  assert_int_equal(r.status, 400);
  resp_free(&r);
  control("DELETE", "/_mock/script", NULL, 200);
  post("/v1/chat/completions", fmt(OAI, ""), NULL, &r);
  j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "choices.0.message.content"), OAI_TEXT);
  js_free(&j);
  resp_free(&r);
}

static void test_script_file(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof path, "%s/good.jsonl", g_dir);
  FILE *f = fopen(path, "w");
  fputs("# comment\n\n{\"route\":\"*\",\"reply\":\"from the file\"}\n", f);
  fclose(f);
  int port, saved = g_port;
  pid_t pid = spawn("script", path, &port);
  assert_true(pid > 0);
  g_port = port;
  resp_t r = {0};
  post("/v1/chat/completions", fmt(OAI, ""), NULL, &r);
  g_port = saved;
  js_t j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "choices.0.message.content"), "from the file");
  js_free(&j);
  resp_free(&r);
  assert_int_equal(stop(pid, SIGINT), 0);

  snprintf(path, sizeof path, "%s/bad.jsonl", g_dir);
  f = fopen(path, "w");
  fputs("{\"reply\":\"ok\"}\n{\"reply\":\"x\",\"fault\":\"status=7\"}\n", f);
  fclose(f);
  pid = spawn("badscript", path, &port);
  assert_int_equal(pid, -1); /* exited before listening */
  char lp[512];
  snprintf(lp, sizeof lp, "%s/badscript.log", g_dir);
  char *log = slurp(lp);
  assert_contains(log, "bad.jsonl:2:");
  assert_contains(log, "status");
  free(log);
}

/* ---- tests: faults
 * ------------------------------------------------------------------------------------
 */
static void test_fault_status(void **state) {
  (void)state;
  resp_t r = {0};
  post("/v1/messages", fmt(ANTH, ""), "status=529", &r);
  assert_int_equal(r.status, 529);
  js_t j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "type"), "error");
  assert_string_equal(js_str(&j, "error.type"), "overloaded_error");
  js_free(&j);
  assert_not_contains(r.hdrs, "Retry-After");
  resp_free(&r);

  post("/v1/messages", fmt(ANTH, ",\"stream\":true"),
       "status=429, retry_after=7", &r);
  assert_int_equal(r.status, 429);
  assert_contains(r.hdrs, "Retry-After: 7\r\n");
  j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "error.type"), "rate_limit_error");
  js_free(&j);
  resp_free(&r);

  int codes[] = {408, 429, 500, 503};
  for (size_t i = 0; i < 4; i++) {
    post("/v1/chat/completions", fmt(OAI, ""), fmt("status=%d", codes[i]), &r);
    assert_int_equal(r.status, codes[i]);
    j = js_parse(r.body, r.blen);
    assert_non_null(js_str(&j, "error.message"));
    assert_non_null(js_str(&j, "error.type"));
    js_free(&j);
    resp_free(&r);
  }
  post("/v2/ep/runsync", "{\"input\":{\"prompt\":\"x\"}}", "status=500", &r);
  assert_int_equal(r.status, 500);
  j = js_parse(r.body, r.blen);
  assert_non_null(js_str(&j, "error"));
  js_free(&j);
  resp_free(&r);
  post("/models/m", "{\"inputs\":\"x\"}", "status=503", &r);
  assert_int_equal(r.status, 503);
  j = js_parse(r.body, r.blen);
  assert_contains(js_str(&j, "error"), "currently loading");
  js_free(&j);
  resp_free(&r);
  /* a bad spec is the client's mistake: 400 that says why */
  post("/v1/messages", fmt(ANTH, ""), "status=200", &r);
  assert_int_equal(r.status, 400);
  assert_contains(r.body, "X-Mock-Fault");
  resp_free(&r);
}

static void test_fault_fail_times(void **state) {
  (void)state;
  control("DELETE", "/_mock/script", NULL, 200);
  control("POST", "/_mock/script",
          "{\"route\":\"openai\",\"fault\":\"status=503,fail_times=2\"}", 200);
  resp_t r = {0};
  long want[] = {503, 503, 200, 200};
  for (int i = 0; i < 4; i++) {
    post("/v1/chat/completions", fmt(OAI, ""), NULL, &r);
    assert_int_equal(r.status, want[i]);
    resp_free(&r);
  }
  /* other routes are untouched */
  post("/v1/messages", fmt(ANTH, ""), NULL, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  control("DELETE", "/_mock/script", NULL, 200);
  /* the same from a header: counted per route + exact header value */
  long want2[] = {500, 200, 200};
  for (int i = 0; i < 3; i++) {
    post("/v1/messages", fmt(ANTH, ""), "fail_times=1,retry_after=1", &r);
    assert_int_equal(r.status, want2[i]);
    if (i == 0)
      assert_contains(r.hdrs, "Retry-After: 1");
    resp_free(&r);
  }
  control("DELETE", "/_mock/script", NULL, 200); /* resets the counters */
  post("/v1/messages", fmt(ANTH, ""), "fail_times=1,retry_after=1", &r);
  assert_int_equal(r.status, 500);
  resp_free(&r);
}

static void test_fault_refuse(void **state) {
  (void)state;
  resp_t r = {0};
  post("/v1/messages", fmt(ANTH, ""), "refuse", &r);
  assert_true(r.rc == CURLE_RECV_ERROR || r.rc == CURLE_GOT_NOTHING ||
              r.rc == CURLE_SEND_ERROR);
  assert_int_equal(r.status, 0);
  resp_free(&r);
  /* a truly refused port: bound, then closed */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
  close(fd);
  int saved = g_port;
  g_port = ntohs(a.sin_port);
  post("/v1/messages", fmt(ANTH, ""), NULL, &r);
  g_port = saved;
  assert_int_equal(r.rc, CURLE_COULDNT_CONNECT);
  resp_free(&r);
}

static void test_fault_silence_and_stall(void **state) {
  (void)state;
  resp_t r = {0};
  const char *h[] = {"X-Mock-Fault: silence", NULL};
  http(NULL, "POST", "/v1/messages", fmt(ANTH, ""), h, 300, &r);
  assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
  assert_int_equal(r.status, 0);
  resp_free(&r);
  const char *h2[] = {"X-Mock-Fault: stall_after_headers", NULL};
  http(NULL, "POST", "/v1/messages", fmt(ANTH, ",\"stream\":true"), h2, 1000,
       &r);
  assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
  assert_int_equal(r.status, 200); /* the head came, then nothing */
  assert_int_equal(r.blen, 0);
  resp_free(&r);
  /* latency before the status line: a short client deadline expires */
  const char *h3[] = {"X-Mock-Fault: latency=5000", NULL};
  http(NULL, "POST", "/v1/messages", fmt(ANTH, ""), h3, 200, &r);
  assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
  assert_int_equal(r.status, 0);
  resp_free(&r);
  post("/v1/messages", fmt(ANTH, ""), "latency=20", &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  /* the server is still fine */
  control("GET", "/_mock/health", NULL, 200);
}

static void test_fault_reset(void **state) {
  (void)state;
  evs_t *e = malloc(sizeof *e);
  resp_t r = {0};
  int bad;
  char *t = stream_text("/v1/messages", fmt(ANTH, ",\"stream\":true"),
                        "reset_after=2,delta_ms=10", P_ANTHROPIC, e, &bad, &r);
  assert_int_not_equal(r.rc, CURLE_OK);
  assert_int_equal(r.status, 200);
  /* exactly the first two deltas (17 words in 6 groups: 2, 3, ...), no
   * message_stop */
  assert_string_equal(t, "[mock claude-test] You asked: \"Apa ");
  for (size_t i = 0; i < e->n; i++)
    assert_string_not_equal(e->v[i].event, "message_stop");
  free(t);
  evs_free(e);
  resp_free(&r);
  /* error_after: a clean provider error event instead of a reset */
  t = stream_text("/v1/messages", fmt(ANTH, ",\"stream\":true"),
                  "error_after=1", P_ANTHROPIC, e, &bad, &r);
  assert_int_equal(r.rc, CURLE_OK);
  assert_string_equal(e->v[e->n - 1].event, "error");
  assert_contains(e->v[e->n - 1].data, "overloaded_error");
  assert_string_equal(t, "[mock claude-test] ");
  free(t);
  evs_free(e);
  free(e);
  resp_free(&r);
  /* a plain body cut after N bytes */
  post("/v1/messages", fmt(ANTH, ""), "reset_after=10", &r);
  assert_int_not_equal(r.rc, CURLE_OK);
  assert_true(r.blen <= 10);
  resp_free(&r);
}

static void test_fault_split(void **state) {
  (void)state;
  /* on the wire: every chunk of the body is one byte */
  const char *body = fmt(OAI, ",\"stream\":true");
  char *req = fmt("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  "X-Mock-Fault: split=1\r\nConnection: close\r\n"
                  "Content-Length: %zu\r\n\r\n%s",
                  strlen(body), body);
  size_t n;
  char *raw = raw_exchange(req, strlen(req), &n);
  assert_contains(raw, "Transfer-Encoding: chunked");
  char *b = strstr(raw, "\r\n\r\n");
  assert_non_null(b);
  b += 4;
  size_t dl, maxc, chunks;
  char *sse = dechunk(b, n - (size_t)(b - raw), &dl, &maxc, &chunks);
  assert_int_equal(maxc, 1);
  assert_int_equal(chunks, dl);
  assert_true(dl > 500);
  evs_t *e = malloc(sizeof *e);
  evs_parse(sse, dl, e);
  int bad;
  char *t = evs_text(e, P_OPENAI, &bad);
  assert_string_equal(t, OAI_TEXT);
  free(t);
  evs_free(e);
  free(sse);
  free(raw);
  /* and through curl: same text, many writes */
  resp_t r = {0};
  t = stream_text("/v1/messages", fmt(ANTH, ",\"stream\":true"), "split",
                  P_ANTHROPIC, e, &bad, &r);
  assert_int_equal(r.rc, CURLE_OK);
  assert_string_equal(t, ANTH_TEXT);
  assert_string_equal(e->v[e->n - 1].event, "message_stop");
  free(t);
  evs_free(e);
  free(e);
  resp_free(&r);
  /* a plain body split too */
  post("/v1/chat/completions", fmt(OAI, ""), "split", &r);
  js_t j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "choices.0.message.content"), OAI_TEXT);
  js_free(&j);
  resp_free(&r);
}

static void test_fault_eol(void **state) {
  (void)state;
  const char *eols[] = {"lf", "cr", "crlf"};
  evs_t *e = malloc(sizeof *e);
  for (int i = 0; i < 3; i++) {
    resp_t r = {0};
    int bad;
    char *t = stream_text("/v1/messages", fmt(ANTH, ",\"stream\":true"),
                          fmt("eol=%s", eols[i]), P_ANTHROPIC, e, &bad, &r);
    assert_string_equal(t, ANTH_TEXT);
    assert_string_equal(e->v[e->n - 1].event, "message_stop");
    int has_crlf = strstr(r.body, "\r\n") != NULL;
    int has_lf = strchr(r.body, '\n') != NULL;
    int has_cr = strchr(r.body, '\r') != NULL;
    if (i == 0)
      assert_true(has_lf && !has_cr);
    else if (i == 1)
      assert_true(has_cr && !has_lf);
    else {
      assert_true(has_crlf);
      /* every LF is preceded by CR */
      for (size_t k = 0; k < r.blen; k++)
        if (r.body[k] == '\n')
          assert_true(k > 0 && r.body[k - 1] == '\r');
    }
    free(t);
    evs_free(e);
    resp_free(&r);
  }
  free(e);
}

static void test_fault_comments_malformed_bigline(void **state) {
  (void)state;
  evs_t *e = malloc(sizeof *e);
  resp_t r = {0};
  int bad;
  char *t = stream_text("/v1/messages", fmt(ANTH, ",\"stream\":true"),
                        "comments=1", P_ANTHROPIC, e, &bad, &r);
  assert_string_equal(t, ANTH_TEXT);
  assert_true(e->comments >= 2);
  size_t pings = 0;
  for (size_t i = 0; i < e->n; i++)
    pings += !strcmp(e->v[i].event, "ping");
  assert_true(pings >= 3);
  free(t);
  evs_free(e);
  resp_free(&r);

  t = stream_text("/v1/chat/completions", fmt(OAI, ",\"stream\":true"),
                  "malformed=1", P_OPENAI, e, &bad, &r);
  assert_int_equal(bad, 1); /* exactly one data line is broken JSON */
  assert_string_equal(t, OAI_TEXT);
  free(t);
  evs_free(e);
  resp_free(&r);

  t = stream_text("/v1/chat/completions", fmt(OAI, ",\"stream\":true"),
                  "bigline=2097152", P_OPENAI, e, &bad, &r);
  assert_int_equal(r.rc, CURLE_OK);
  assert_int_equal(bad, 0);
  assert_int_equal(e->longest_line, 2097152);
  assert_string_equal(t, OAI_TEXT); /* padding carries no text */
  free(t);
  evs_free(e);
  resp_free(&r);

  t = stream_text("/generate_stream", "{\"inputs\":\"Halo\"}",
                  "bigline=100000,malformed", P_TGI, e, &bad, &r);
  assert_int_equal(bad, 1);
  assert_int_equal(e->longest_line, 100000);
  assert_string_equal(t, "[mock tgi] You asked: \"Halo\". Context seen: \"\"");
  free(t);
  evs_free(e);
  free(e);
  resp_free(&r);
}

static void test_fault_deltas_endless(void **state) {
  (void)state;
  evs_t *e = malloc(sizeof *e);
  resp_t r = {0};
  int bad;
  char *t = stream_text("/v1/chat/completions", fmt(OAI, ",\"stream\":true"),
                        "deltas=40,delta_ms=1", P_OPENAI, e, &bad, &r);
  assert_string_equal(t, OAI_TEXT);
  assert_int_equal(e->n, 1 + 40 + 1 + 1); /* role, deltas, finish, [DONE] */
  free(t);
  evs_free(e);
  resp_free(&r);

  /* endless: the client cuts it */
  r.abort_after = 20000;
  post("/v1/messages", fmt(ANTH, ",\"stream\":true"), "endless,delta_ms=0", &r);
  assert_int_equal(r.rc, CURLE_WRITE_ERROR);
  assert_true(r.blen >= 20000);
  assert_not_contains(r.body, "message_stop");
  resp_free(&r);
  r.abort_after = 3000;
  post("/v1/chat/completions", fmt(OAI, ",\"stream\":true"),
       "endless=1,delta_ms=2", &r);
  assert_int_equal(r.rc, CURLE_WRITE_ERROR);
  assert_not_contains(r.body, "[DONE]");
  resp_free(&r);
  free(e);
  control("GET", "/_mock/health", NULL, 200);
}

/* ---- tests: HTTP
 * ----------------------------------------------------------------------------------------
 */
static void test_keepalive(void **state) {
  (void)state;
  CURL *h = curl_easy_init();
  resp_t r = {0};
  http(h, "POST", "/v1/messages", fmt(ANTH, ""), NULL, 0, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.connects, 1);
  resp_free(&r);
  http(h, "POST", "/v1/messages", fmt(ANTH, ",\"stream\":true"), NULL, 0, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.connects, 0); /* reused */
  resp_free(&r);
  http(h, "POST", "/v1/chat/completions", fmt(OAI, ""), NULL, 0, &r);
  assert_int_equal(r.connects, 0);
  resp_free(&r);
  /* an error response keeps the connection too */
  const char *fh[] = {"X-Mock-Fault: status=429", NULL};
  http(h, "POST", "/v1/messages", fmt(ANTH, ""), fh, 0, &r);
  assert_int_equal(r.status, 429);
  resp_free(&r);
  http(h, "GET", "/_mock/health", NULL, NULL, 0, &r);
  assert_int_equal(r.connects, 0);
  resp_free(&r);
  curl_easy_cleanup(h);

  /* two pipelined requests on one raw connection, both answered */
  const char *one = "GET /_mock/health HTTP/1.1\r\nHost: x\r\n\r\n";
  char two[256];
  snprintf(two, sizeof two,
           "%sGET /_mock/health HTTP/1.1\r\nHost: x\r\n"
           "Connection: close\r\n\r\n",
           one);
  size_t n;
  char *raw = raw_exchange(two, strlen(two), &n);
  char *p = strstr(raw, "HTTP/1.1 200");
  assert_non_null(p);
  assert_non_null(strstr(p + 1, "HTTP/1.1 200"));
  free(raw);
}

static void test_expect_continue(void **state) {
  (void)state;
  /* with a raw socket: 100 first, then the answer */
  char big[3000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  const char *body = fmt("{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{"
                         "\"role\":\"user\",\"content\":\"%s\"}]}",
                         big);
  int fd = raw_connect(g_port);
  char *head = fmt("POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: "
                   "%zu\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
                   strlen(body));
  raw_send(fd, head, strlen(head));
  size_t n;
  char *got = raw_read(fd, "\r\n\r\n", 10000, &n);
  assert_string_equal(got, "HTTP/1.1 100 Continue\r\n\r\n");
  free(got);
  raw_send(fd, body, strlen(body));
  got = raw_read(fd, NULL, 10000, &n);
  assert_true(strncmp(got, "HTTP/1.1 200 OK\r\n", 17) == 0);
  free(got);
  close(fd);
  /* and with curl asking for it */
  resp_t r = {0};
  const char *h[] = {"Expect: 100-continue", NULL};
  http(NULL, "POST", "/v1/messages", body, h, 0, &r);
  assert_int_equal(r.status, 200);
  assert_contains(r.hdrs, "HTTP/1.1 100 Continue");
  resp_free(&r);
}

static void test_recording(void **state) {
  (void)state;
  control("DELETE", "/_mock/requests", NULL, 200);
  resp_t r = {0};
  const char *h[] = {"x-api-key: sk-canary-0123456789",
                     "anthropic-version: 2023-06-01", "X-Mock-Fault: deltas=2",
                     NULL};
  http(NULL, "POST", "/v1/messages?beta=true", fmt(ANTH, ""), h, 0, &r);
  resp_free(&r);
  const char *h2[] = {"Authorization: Bearer sk-canary-abcdef", NULL};
  http(NULL, "POST", "/v1/chat/completions", fmt(OAI, ""), h2, 0, &r);
  resp_free(&r);
  post("/v1/embeddings", "{\"input\":\"x\"}", NULL, &r);
  resp_free(&r);
  http(NULL, "GET", "/_mock/requests", NULL, NULL, 0, &r);
  assert_int_equal(r.status, 200);
  assert_not_contains(r.body, "sk-canary");
  js_t j = js_parse(r.body, r.blen);
  assert_int_equal(js_count(&j, ""), 3);
  assert_string_equal(js_str(&j, "0.route"), "anthropic");
  assert_string_equal(js_str(&j, "0.method"), "POST");
  assert_string_equal(js_str(&j, "0.path"), "/v1/messages");
  assert_string_equal(js_str(&j, "0.auth"), "x-api-key");
  assert_string_equal(js_str(&j, "0.anthropic_version"), "2023-06-01");
  assert_string_equal(js_str(&j, "0.fault"), "deltas=2");
  assert_string_equal(js_str(&j, "0.body.model"), "claude-test");
  assert_string_equal(js_str(&j, "0.body.messages.0.content"),
                      "Apa kabar hari ini?");
  assert_int_equal(js_int(&j, "0.body.max_tokens"), 200);
  assert_string_equal(js_str(&j, "1.route"), "openai");
  assert_string_equal(js_str(&j, "1.auth"), "bearer");
  assert_string_equal(js_str(&j, "1.body.messages.0.role"), "system");
  assert_string_equal(js_str(&j, "2.route"), "embeddings");
  assert_string_equal(js_str(&j, "2.auth"), "none");
  js_free(&j);
  resp_free(&r);
  control("DELETE", "/_mock/requests", NULL, 200);
  http(NULL, "GET", "/_mock/requests", NULL, NULL, 0, &r);
  assert_string_equal(r.body, "[]");
  resp_free(&r);
}

static void test_stats(void **state) {
  (void)state;
  control("DELETE", "/_mock/stats", NULL, 200);
  resp_t r = {0};
  post("/v1/messages", fmt(ANTH, ""), "status=500", &r);
  resp_free(&r);
  post("/v1/messages", fmt(ANTH, ""), "latency=1,status=503", &r);
  resp_free(&r);
  post("/generate", "{\"inputs\":\"x\"}", NULL, &r);
  resp_free(&r);
  http(NULL, "GET", "/_mock/stats", NULL, NULL, 0, &r);
  js_t j = js_parse(r.body, r.blen);
  assert_int_equal(js_int(&j, "requests.anthropic"), 2);
  assert_int_equal(js_int(&j, "requests.hf"), 1);
  assert_int_equal(js_int(&j, "faults.status"), 2);
  assert_int_equal(js_int(&j, "faults.latency"), 1);
  assert_int_equal(js_int(&j, "faults.refuse"), 0);
  js_free(&j);
  resp_free(&r);
}

static int status_of(const char *raw) {
  int st = 0;
  if (sscanf(raw, "HTTP/1.1 %d", &st) != 1)
    return -1;
  return st;
}

static void test_bad_requests(void **state) {
  (void)state;
  size_t n;
  char *raw = raw_exchange("GARBAGE\r\n\r\n", 11, &n);
  assert_int_equal(status_of(raw), 400);
  assert_contains(raw, "Connection: close");
  assert_contains(raw, "malformed request line");
  free(raw);
  raw = raw_exchange("GET /x HTTP/1.1\r\n\r\n", 19, &n);
  assert_int_equal(status_of(raw), 400); /* no Host */
  free(raw);
  raw = raw_exchange("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 27, &n);
  assert_int_equal(status_of(raw), 505);
  free(raw);
  const char *te = "POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:"
                   " chunked\r\n\r\n0\r\n\r\n";
  raw = raw_exchange(te, strlen(te), &n);
  assert_int_equal(status_of(raw), 411);
  free(raw);
  const char *cl = "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: "
                   "9437184\r\n\r\n";
  raw = raw_exchange(cl, strlen(cl), &n);
  assert_int_equal(status_of(raw), 413);
  free(raw);
  /* a head over 64 KiB */
  size_t big = 70000;
  char *h = malloc(big + 64);
  int k = snprintf(h, 64, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
  memset(h + k, 'b', big);
  memcpy(h + k + big, "\r\n\r\n", 5);
  raw = raw_exchange(h, strlen(h), &n);
  assert_int_equal(status_of(raw), 431);
  free(raw);
  free(h);
  /* routes and methods */
  resp_t r = {0};
  post("/v1/nothing", "{}", NULL, &r);
  assert_int_equal(r.status, 404);
  resp_free(&r);
  http(NULL, "GET", "/v1/messages", NULL, NULL, 0, &r);
  assert_int_equal(r.status, 405);
  assert_contains(r.hdrs, "Allow: POST");
  resp_free(&r);
  post("/v1/chat/completions", "[1,2]", NULL, &r);
  assert_int_equal(r.status, 400);
  js_t j = js_parse(r.body, r.blen);
  assert_string_equal(js_str(&j, "error.type"), "invalid_request_error");
  js_free(&j);
  resp_free(&r);
  /* and after all that, still serving */
  control("GET", "/_mock/health", NULL, 200);
  http(NULL, "GET", "/_mock/stats", NULL, NULL, 0, &r);
  j = js_parse(r.body, r.blen);
  assert_true(js_int(&j, "bad_requests") >= 6);
  js_free(&j);
  resp_free(&r);
}

static void test_signal_exit(void **state) {
  (void)state;
  int port;
  pid_t pid = spawn("sig", NULL, &port);
  assert_true(pid > 0);
  /* with a connection open and a stream in flight */
  int fd = raw_connect(port);
  const char *body = fmt(OAI, ",\"stream\":true");
  char *req = fmt("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  "X-Mock-Fault: endless,delta_ms=5\r\nContent-Length: %zu\r\n"
                  "\r\n%s",
                  strlen(body), body);
  raw_send(fd, req, strlen(req));
  size_t n;
  char *got = raw_read(fd, "data:", 10000, &n);
  assert_contains(got, "200 OK");
  free(got);
  assert_int_equal(stop(pid, SIGINT), 0);
  close(fd);
}

int main(int argc, char **argv) {
  g_bin = argc > 1 ? argv[1] : getenv("MOCKLLM");
  if (!g_bin) {
    fprintf(stderr, "usage: test_mockllm PATH/TO/mockllm (or $MOCKLLM)\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_banner),
      cmocka_unit_test(test_anthropic_plain),
      cmocka_unit_test(test_anthropic_stream),
      cmocka_unit_test(test_anthropic_invalid),
      cmocka_unit_test(test_openai_plain),
      cmocka_unit_test(test_openai_stream),
      cmocka_unit_test(test_runpod),
      cmocka_unit_test(test_huggingface),
      cmocka_unit_test(test_embeddings),
      cmocka_unit_test(test_script),
      cmocka_unit_test(test_script_file),
      cmocka_unit_test(test_fault_status),
      cmocka_unit_test(test_fault_fail_times),
      cmocka_unit_test(test_fault_refuse),
      cmocka_unit_test(test_fault_silence_and_stall),
      cmocka_unit_test(test_fault_reset),
      cmocka_unit_test(test_fault_split),
      cmocka_unit_test(test_fault_eol),
      cmocka_unit_test(test_fault_comments_malformed_bigline),
      cmocka_unit_test(test_fault_deltas_endless),
      cmocka_unit_test(test_keepalive),
      cmocka_unit_test(test_expect_continue),
      cmocka_unit_test(test_recording),
      cmocka_unit_test(test_stats),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_signal_exit),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
