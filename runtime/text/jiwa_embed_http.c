/*
 * The http embedder (jiwa_embed_http.h): OpenAI-compatible /v1/embeddings
 * over blocking libcurl easy handles.
 *
 * Handles live in a pool inside the embedder: a call takes one (or makes
 * one), uses it for all its batches and puts it back, so connections are
 * kept alive across calls without a handle ever being used by two threads
 * at once. Everything a handle needs that does not change per request is
 * set when it is made.
 */
#include "jiwa_embed_http.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "jiwa/errors.h"
#include "jiwa/json.h"
#include "jiwa/mp.h"

/* ---- errors ----------------------------------------------------------------- */

static _Thread_local char tl_err[512];

const char *jiwa_embed_http_errmsg(void) { return tl_err; }

__attribute__((format(printf, 2, 3))) static int fail(int rc, const char *fmt,
                                                      ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tl_err, sizeof tl_err, fmt, ap);
  va_end(ap);
  return rc;
}

__attribute__((format(printf, 4, 5))) static int perr(char *err, size_t errlen,
                                                      int rc, const char *fmt,
                                                      ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* ---- the response parser ---------------------------------------------------- */

static int num_of(const jiwa_mp_item_t *it, double *v) {
  switch (it->type) {
  case JIWA_MP_FLOAT:
    *v = it->v.f;
    return 0;
  case JIWA_MP_INT:
    *v = (double)it->v.i;
    return 0;
  case JIWA_MP_UINT:
    *v = (double)it->v.u;
    return 0;
  default:
    return -1;
  }
}

static int key_is(const jiwa_mp_item_t *k, const char *s) {
  size_t n = strlen(s);
  return k->type == JIWA_MP_STR && k->v.s.len == n &&
         memcmp(k->v.s.ptr, s, n) == 0;
}

/* One element of "data": {"index": i, "embedding": [...], ...}. */
static int parse_item(jiwa_mp_reader_t *r, uint32_t pos, size_t n,
                      unsigned dim, uint8_t *seen, float *out, char *err,
                      size_t errlen) {
  jiwa_mp_item_t it, k, v;
  if (jiwa_mp_next(r, &it) || it.type != JIWA_MP_MAP)
    return perr(err, errlen, JIWA_EPROTO,
                "data[%u] is not an object", (unsigned)pos);
  int64_t index = -1;
  jiwa_mp_reader_t emb;
  uint32_t count = 0;
  int have_emb = 0;
  for (uint32_t i = 0; i < it.v.count; i++) {
    if (jiwa_mp_next(r, &k))
      return perr(err, errlen, JIWA_EPROTO, "data[%u] is truncated",
                  (unsigned)pos);
    if (key_is(&k, "index")) {
      if (jiwa_mp_next(r, &v) ||
          (v.type != JIWA_MP_UINT && v.type != JIWA_MP_INT) ||
          (v.type == JIWA_MP_UINT && v.v.u >= n) ||
          (v.type == JIWA_MP_INT && (v.v.i < 0 || (uint64_t)v.v.i >= n)))
        return perr(err, errlen, JIWA_EPROTO,
                    "data[%u].index is not an integer in 0..%zu",
                    (unsigned)pos, n - 1);
      index = v.type == JIWA_MP_UINT ? (int64_t)v.v.u : v.v.i;
    } else if (key_is(&k, "embedding")) {
      emb = *r;
      if (jiwa_mp_next(r, &v) || v.type != JIWA_MP_ARRAY)
        return perr(err, errlen, JIWA_EPROTO,
                    "data[%u].embedding is not a list of numbers (ask for "
                    "encoding_format float)",
                    (unsigned)pos);
      count = v.v.count;
      have_emb = 1;
      for (uint32_t j = 0; j < count; j++)
        if (jiwa_mp_skip(r))
          return perr(err, errlen, JIWA_EPROTO,
                      "data[%u].embedding is truncated", (unsigned)pos);
    } else if (jiwa_mp_skip(r)) {
      return perr(err, errlen, JIWA_EPROTO, "data[%u] is truncated",
                  (unsigned)pos);
    }
  }
  if (!have_emb)
    return perr(err, errlen, JIWA_EPROTO, "data[%u] has no embedding",
                (unsigned)pos);
  if (count != dim)
    return perr(err, errlen, JIWA_ECONFIG,
                "the server returned %u-dimensional vectors, the collection "
                "is %u: set dim = %u or change the model",
                count, dim, count);
  size_t row = index >= 0 ? (size_t)index : pos;
  if (row >= n || seen[row])
    return perr(err, errlen, JIWA_EPROTO,
                "data[%u]: index %zu is out of range or repeated",
                (unsigned)pos, row);
  seen[row] = 1;
  float *o = out + row * dim;
  double mx = 0;
  jiwa_mp_next(&emb, &v); /* the array header, read above */
  for (uint32_t j = 0; j < dim; j++) {
    double d;
    if (jiwa_mp_next(&emb, &v) || num_of(&v, &d))
      return perr(err, errlen, JIWA_EPROTO,
                  "data[%u].embedding[%u] is not a number", (unsigned)pos, j);
    float f = (float)d;
    if (!isfinite(f))
      return perr(err, errlen, JIWA_EPROTO,
                  "data[%u].embedding[%u] is not a finite float",
                  (unsigned)pos, j);
    o[j] = f;
    mx = fabs((double)f) > mx ? fabs((double)f) : mx;
  }
  /* L2-normalise, scaled by the largest component so neither huge nor
   * subnormal values overflow; a zero vector stays zero */
  if (mx > 0) {
    double ss = 0;
    for (uint32_t j = 0; j < dim; j++)
      ss += ((double)o[j] / mx) * ((double)o[j] / mx);
    double nrm = sqrt(ss);
    for (uint32_t j = 0; j < dim; j++)
      o[j] = (float)(((double)o[j] / mx) / nrm);
  }
  return 0;
}

int jiwa_embed_http_parse(const char *body, size_t len, size_t n,
                          unsigned dim, float *out, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!body || !out || n == 0 || dim == 0)
    return perr(err, errlen, JIWA_EINVAL, "bad arguments");
  if (len > JIWA_EMBED_HTTP_MAX_RESPONSE)
    return perr(err, errlen, JIWA_ETOOBIG, "response over %zu bytes",
                JIWA_EMBED_HTTP_MAX_RESPONSE);
  jiwa_json_limits_t lim = {.max_input = JIWA_EMBED_HTTP_MAX_RESPONSE,
                            .max_depth = 16,
                            .max_string = (size_t)1 << 20,
                            .max_items = 0};
  jiwa_json_error_t je;
  char *mp = NULL;
  size_t mlen = 0;
  int rc = jiwa_json_to_mp(body, len, &lim, &mp, &mlen, &je);
  if (rc == JIWA_ENOMEM)
    return perr(err, errlen, rc, "out of memory");
  if (rc)
    return perr(err, errlen, rc == JIWA_ETOOBIG ? JIWA_ETOOBIG : JIWA_EPROTO,
                "the response is not JSON (line %u, column %u: %s)", je.line,
                je.column, je.msg);
  uint8_t *seen = NULL;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it, k, v;
  jiwa_mp_reader_init(&r, mp, mlen);
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_MAP) {
    rc = perr(err, errlen, JIWA_EPROTO,
              "the response is not an object with a \"data\" list");
    goto out;
  }
  int found = 0;
  for (uint32_t i = 0; i < it.v.count && !found; i++) {
    if (jiwa_mp_next(&r, &k)) {
      rc = perr(err, errlen, JIWA_EPROTO, "the response is truncated");
      goto out;
    }
    if (!key_is(&k, "data")) {
      if (jiwa_mp_skip(&r)) {
        rc = perr(err, errlen, JIWA_EPROTO, "the response is truncated");
        goto out;
      }
      continue;
    }
    found = 1;
    if (jiwa_mp_next(&r, &v) || v.type != JIWA_MP_ARRAY) {
      rc = perr(err, errlen, JIWA_EPROTO, "\"data\" is not a list");
      goto out;
    }
    if (v.v.count != n) {
      rc = perr(err, errlen, JIWA_EPROTO,
                "the server returned %u vectors for %zu texts", v.v.count, n);
      goto out;
    }
    seen = calloc(n, 1);
    if (!seen) {
      rc = perr(err, errlen, JIWA_ENOMEM, "out of memory");
      goto out;
    }
    for (uint32_t j = 0; j < v.v.count; j++)
      if ((rc = parse_item(&r, j, n, dim, seen, out, err, errlen)))
        goto out;
  }
  if (!found)
    rc = perr(err, errlen, JIWA_EPROTO,
              "the response has no \"data\" list (is the url an embeddings "
              "endpoint?)");
out:
  free(seen);
  free(mp);
  return rc;
}

/* ---- the embedder ----------------------------------------------------------- */

typedef struct hnd {
  CURL *e;
  struct hnd *next;
} hnd_t;

typedef struct {
  char *url;
  char model[JIWA_EMBED_HTTP_MODEL_MAX + 1];
  char host[200]; /* "host:port" for messages */
  char key_env[128];
  char *key;      /* NULL = none; wiped at destroy */
  struct curl_slist *hdrs;
  unsigned dim, batch, timeout_ms, connect_ms, retries;
  size_t max_resp;
  pthread_mutex_t mu;
  hnd_t *pool;
} hctx_t;

/* One response being received. */
typedef struct {
  char *buf;
  size_t len, cap, max;
  int too_big;
  long retry_after_ms; /* -1 = none */
} resp_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void) {
  curl_init_rc = curl_global_init(CURL_GLOBAL_ALL);
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
  resp_t *r = ud;
  size_t n = sz * nm;
  if (n > r->max - r->len) {
    r->too_big = 1;
    return 0; /* aborts the transfer */
  }
  if (r->len + n + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 16384;
    while (cap < r->len + n + 1)
      cap *= 2;
    char *b = realloc(r->buf, cap);
    if (!b)
      return 0;
    r->buf = b;
    r->cap = cap;
  }
  memcpy(r->buf + r->len, p, n);
  r->len += n;
  r->buf[r->len] = '\0';
  return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud) {
  resp_t *r = ud;
  size_t n = sz * nm;
  static const char name[] = "retry-after:";
  if (n > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
    size_t i = sizeof name - 1;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
      i++;
    long s = 0;
    size_t d0 = i;
    while (i < n && isdigit((unsigned char)p[i]) && s < 100000)
      s = s * 10 + (p[i++] - '0');
    /* an HTTP-date is not honoured: the backoff applies */
    r->retry_after_ms = i > d0 ? s * 1000 : -1;
  }
  return n;
}

static CURL *handle_make(hctx_t *h) {
  CURL *e = curl_easy_init();
  if (!e)
    return NULL;
  int bad = 0;
  bad |= curl_easy_setopt(e, CURLOPT_URL, h->url) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->hdrs) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms) !=
         CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_ms) !=
         CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                          (curl_off_t)h->max_resp) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "jiwa-embed/1") != CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
  bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
#else
  bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS,
                          (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK;
#endif
  if (bad) {
    curl_easy_cleanup(e);
    return NULL;
  }
  return e;
}

static hnd_t *handle_get(hctx_t *h) {
  pthread_mutex_lock(&h->mu);
  hnd_t *x = h->pool;
  if (x)
    h->pool = x->next;
  pthread_mutex_unlock(&h->mu);
  if (x)
    return x;
  x = calloc(1, sizeof *x);
  if (!x)
    return NULL;
  if (!(x->e = handle_make(h))) {
    free(x);
    return NULL;
  }
  return x;
}

static void handle_put(hctx_t *h, hnd_t *x) {
  pthread_mutex_lock(&h->mu);
  x->next = h->pool;
  h->pool = x;
  pthread_mutex_unlock(&h->mu);
}

static void wipe(void *p, size_t n) {
  volatile unsigned char *v = p;
  while (n--)
    *v++ = 0;
}

static void hctx_free(hctx_t *h) {
  if (!h)
    return;
  while (h->pool) {
    hnd_t *x = h->pool;
    h->pool = x->next;
    curl_easy_cleanup(x->e);
    free(x);
  }
  for (struct curl_slist *s = h->hdrs; s; s = s->next)
    if (s->data)
      wipe(s->data, strlen(s->data));
  curl_slist_free_all(h->hdrs);
  if (h->key) {
    wipe(h->key, strlen(h->key));
    free(h->key);
  }
  free(h->url);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

static void ms_sleep(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* The server's own words from an error body, printable, key masked. */
static void server_words(const hctx_t *h, const resp_t *r, char *buf,
                         size_t cap) {
  buf[0] = '\0';
  if (!r->buf || !r->len)
    return;
  const char *s = NULL;
  uint32_t sl = 0;
  char *mp = NULL;
  size_t mlen = 0;
  jiwa_json_limits_t lim = {.max_input = 65536, .max_depth = 8};
  if (r->len <= 65536 &&
      jiwa_json_to_mp(r->buf, r->len, &lim, &mp, &mlen, NULL) == 0) {
    const char *es;
    size_t el;
    jiwa_mp_reader_t sub;
    if (jiwa_mp_get_str(mp, mlen, "error", &es, &el) == 0) {
      s = es;
      sl = (uint32_t)el;
    } else if (jiwa_mp_map_find(mp, mlen, "error", &sub) == 0 &&
               jiwa_mp_get_str(sub.p, jiwa_mp_reader_left(&sub), "message",
                               &es, &el) == 0) {
      s = es;
      sl = (uint32_t)el;
    } else if (jiwa_mp_get_str(mp, mlen, "message", &es, &el) == 0 ||
               jiwa_mp_get_str(mp, mlen, "detail", &es, &el) == 0) {
      s = es;
      sl = (uint32_t)el;
    }
  }
  if (!s) { /* not JSON: the start of the body */
    s = r->buf;
    sl = (uint32_t)(r->len > 200 ? 200 : r->len);
  }
  size_t j = 0;
  for (uint32_t i = 0; i < sl && j + 4 < cap && j < 200; i++) {
    if (h->key && h->key[0]) {
      size_t kl = strlen(h->key);
      if (sl - i >= kl && memcmp(s + i, h->key, kl) == 0) {
        memcpy(buf + j, "***", 3);
        j += 3;
        i += (uint32_t)kl - 1;
        continue;
      }
    }
    unsigned char ch = (unsigned char)s[i];
    buf[j++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
  }
  buf[j] = '\0';
  free(mp);
}

/* A request body {"model": M, "input": [texts]}: malloc'd JSON. */
static int make_body(const hctx_t *h, const char *const *texts,
                     const size_t *lens, const size_t *pick, size_t k,
                     char **json, size_t *jlen) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  int e = 0;
  e |= msgpack_pack_map(&w.pk, 2);
  e |= jiwa_mp_put_kv_str(&w.pk, "model", h->model);
  e |= jiwa_mp_put_str(&w.pk, "input");
  e |= msgpack_pack_array(&w.pk, k);
  for (size_t i = 0; i < k; i++) {
    e |= msgpack_pack_str(&w.pk, lens[pick[i]]);
    e |= msgpack_pack_str_body(&w.pk, texts[pick[i]], lens[pick[i]]);
  }
  int rc = e ? JIWA_ENOMEM
             : jiwa_mp_to_json(w.sbuf.data, w.sbuf.size, json, jlen);
  jiwa_mp_writer_free(&w);
  return rc;
}

static int retryable(long status) {
  return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

/* One batch: send, retry, parse into @p tmp (k rows). */
static int send_batch(hctx_t *h, CURL *e, const char *json, size_t jlen,
                      size_t k, float *tmp) {
  resp_t r;
  memset(&r, 0, sizeof r);
  r.max = h->max_resp;
  int rc = 0;
  long status = 0;
  char words[240];
  for (unsigned attempt = 0;; attempt++) {
    r.len = 0;
    r.too_big = 0;
    r.retry_after_ms = -1;
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)jlen);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &r);
    CURLcode cc = curl_easy_perform(e);
    if (cc != CURLE_OK) {
      if (cc == CURLE_OPERATION_TIMEDOUT)
        rc = fail(JIWA_ETIMEDOUT,
                  "http embedder (model %s at %s): no answer within %u ms; "
                  "is the server up? raise timeout_ms for slow models",
                  h->model, h->host, h->timeout_ms);
      else if (r.too_big || cc == CURLE_FILESIZE_EXCEEDED)
        rc = fail(JIWA_ETOOBIG,
                  "http embedder (model %s at %s): response over %zu bytes; "
                  "lower batch",
                  h->model, h->host, h->max_resp);
      else if (cc == CURLE_OUT_OF_MEMORY || cc == CURLE_WRITE_ERROR)
        rc = fail(JIWA_ENOMEM, "http embedder: out of memory");
      else
        rc = fail(JIWA_EUPSTREAM,
                  "http embedder (model %s at %s): request failed: %s",
                  h->model, h->host, curl_easy_strerror(cc));
      goto out;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status <= 299) {
      char perrbuf[300];
      rc = jiwa_embed_http_parse(r.buf ? r.buf : "", r.len, k, h->dim, tmp,
                                 perrbuf, sizeof perrbuf);
      if (rc)
        fail(rc, "http embedder (model %s at %s): %s", h->model, h->host,
             perrbuf);
      goto out;
    }
    if (!retryable(status) || attempt >= h->retries)
      break;
    unsigned wait = 100u << (attempt < 6 ? attempt : 6);
    if (r.retry_after_ms >= 0)
      wait = r.retry_after_ms > (long)JIWA_EMBED_HTTP_RETRY_AFTER_CAP_MS
                 ? JIWA_EMBED_HTTP_RETRY_AFTER_CAP_MS
                 : (unsigned)r.retry_after_ms;
    ms_sleep(wait);
  }
  server_words(h, &r, words, sizeof words);
  {
    const char *hint = "";
    char khint[200];
    if (status == 401 || status == 403) {
      snprintf(khint, sizeof khint,
               h->key ? "; check the key in the environment variable %s"
                      : "; the server wants a key: set api_key_env%s",
               h->key_env);
      hint = khint;
    } else if (status == 404)
      hint = "; check url (the full endpoint, e.g. "
             "http://127.0.0.1:11434/v1/embeddings) and the model name";
    else if (retryable(status))
      hint = "; the server kept failing: try again later";
    rc = fail(JIWA_EUPSTREAM,
              "http embedder (model %s at %s): HTTP %ld%s%s%s%s", h->model,
              h->host, status,
              retryable(status) && h->retries ? " after retries" : "",
              words[0] ? ": " : "", words, hint);
  }
out:
  free(r.buf);
  return rc;
}

static int http_embed(void *ctx, const char *const *texts, const size_t *lens,
                      size_t n, float *out, unsigned dim) {
  hctx_t *h = ctx;
  tl_err[0] = '\0'; /* the message is always about this call */
  size_t bs = h->batch;
  size_t *pick = malloc(bs * sizeof *pick);
  float *tmp = malloc(bs * (size_t)dim * sizeof *tmp);
  hnd_t *x = NULL;
  int rc = 0;
  if (!pick || !tmp) {
    rc = fail(JIWA_ENOMEM, "http embedder: out of memory");
    goto out;
  }
  size_t i = 0;
  while (i < n) {
    size_t k = 0;
    for (; i < n && k < bs; i++) {
      if (lens[i] == 0)
        memset(out + i * (size_t)dim, 0, (size_t)dim * sizeof *out);
      else
        pick[k++] = i;
    }
    if (k == 0)
      break;
    if (!x && !(x = handle_get(h))) {
      rc = fail(JIWA_ENOMEM, "http embedder: could not make a curl handle");
      goto out;
    }
    char *json = NULL;
    size_t jlen = 0;
    if ((rc = make_body(h, texts, lens, pick, k, &json, &jlen))) {
      fail(rc, "http embedder: could not build the request: %s",
           jiwa_strerror(rc));
      goto out;
    }
    rc = send_batch(h, x->e, json, jlen, k, tmp);
    free(json);
    if (rc)
      goto out;
    for (size_t j = 0; j < k; j++)
      memcpy(out + pick[j] * (size_t)dim, tmp + j * (size_t)dim,
             (size_t)dim * sizeof *out);
  }
out:
  if (x)
    handle_put(h, x);
  free(pick);
  free(tmp);
  return rc;
}

static void http_destroy(void *ctx) { hctx_free(ctx); }

static const jiwa_embed_ops_t k_http_ops = {
    .size = sizeof(jiwa_embed_ops_t),
    .embed = http_embed,
    .destroy = http_destroy,
};

void jiwa_embed_http_opts_init(jiwa_embed_http_opts_t *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->batch = JIWA_EMBED_HTTP_DEFAULT_BATCH;
  o->timeout_ms = JIWA_EMBED_HTTP_DEFAULT_TIMEOUT_MS;
  o->max_retries = JIWA_EMBED_HTTP_DEFAULT_RETRIES;
}

/* Scheme http(s) and a host; "host:port" into h->host. */
static int check_url(hctx_t *h, const char *url) {
  CURLU *u = curl_url();
  if (!u)
    return fail(JIWA_ENOMEM, "http embedder: out of memory");
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = 0;
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
    rc = fail(JIWA_EINVAL,
              "http embedder: url is not an http(s) URL with a host; give "
              "the full endpoint, e.g. http://127.0.0.1:11434/v1/embeddings");
    goto out;
  }
  if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
    rc = fail(JIWA_EINVAL,
              "http embedder: url scheme '%.16s' is not http or https",
              scheme);
    goto out;
  }
  curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
  snprintf(h->host, sizeof h->host, "%.150s:%.8s", host, port ? port : "?");
out:
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

static int env_name_ok(const char *s) {
  if (!s || !*s || strlen(s) > 120 || isdigit((unsigned char)s[0]))
    return 0;
  for (; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '_'))
      return 0;
  return 1;
}

int jiwa_embed_http_new(const jiwa_embed_http_opts_t *o, jiwa_embed_t **out) {
  tl_err[0] = '\0';
  if (!o || !out || o->size < sizeof *o)
    return fail(JIWA_EINVAL, "http embedder: bad arguments");
  *out = NULL;
  if (!o->url || !o->url[0])
    return fail(JIWA_EINVAL, "http embedder: url is required (the full "
                             "endpoint, e.g. "
                             "http://127.0.0.1:11434/v1/embeddings)");
  size_t ml = o->model ? strlen(o->model) : 0;
  if (ml == 0 || ml > JIWA_EMBED_HTTP_MODEL_MAX)
    return fail(JIWA_EINVAL,
                "http embedder: model must be 1-%u bytes (the name the "
                "server knows, e.g. bge-m3)",
                JIWA_EMBED_HTTP_MODEL_MAX);
  for (size_t i = 0; i < ml; i++)
    if ((unsigned char)o->model[i] < 0x20 || o->model[i] == 0x7f)
      return fail(JIWA_EINVAL,
                  "http embedder: model contains a control character");
  if (o->dim < JIWA_EMBED_MIN_DIM || o->dim > JIWA_EMBED_MAX_DIM)
    return fail(JIWA_EINVAL,
                "http embedder: dim %u is out of range (%u..%u): give the "
                "model's vector size",
                o->dim, JIWA_EMBED_MIN_DIM, JIWA_EMBED_MAX_DIM);
  unsigned batch = o->batch ? o->batch : JIWA_EMBED_HTTP_DEFAULT_BATCH;
  unsigned tmo = o->timeout_ms ? o->timeout_ms
                               : JIWA_EMBED_HTTP_DEFAULT_TIMEOUT_MS;
  if (batch > JIWA_EMBED_HTTP_MAX_BATCH || tmo > 3600000u ||
      o->max_retries > 10)
    return fail(JIWA_EINVAL,
                "http embedder: batch must be 1..%u, timeout_ms at most "
                "3600000, retries at most 10",
                JIWA_EMBED_HTTP_MAX_BATCH);
  const char *key = NULL;
  if (o->api_key_env && o->api_key_env[0]) {
    if (!env_name_ok(o->api_key_env))
      return fail(JIWA_EINVAL,
                  "http embedder: api_key_env must be an environment "
                  "variable name (letters, digits, _)");
    key = getenv(o->api_key_env);
    if (!key || !key[0])
      return fail(JIWA_ECONFIG,
                  "http embedder: the environment variable %s "
                  "(api_key_env) is not set; export it, or remove "
                  "api_key_env for a server without keys",
                  o->api_key_env);
    for (const char *p = key; *p; p++)
      if ((unsigned char)*p < 0x20 || *p == 0x7f)
        return fail(JIWA_ECONFIG,
                    "http embedder: the key in %s contains a control "
                    "character (a stray newline?)",
                    o->api_key_env);
  }
  pthread_once(&curl_once, curl_init_once);
  if (curl_init_rc != CURLE_OK)
    return fail(JIWA_EIO, "http embedder: libcurl failed to initialise");
  hctx_t *h = calloc(1, sizeof *h);
  if (!h)
    return fail(JIWA_ENOMEM, "http embedder: out of memory");
  pthread_mutex_init(&h->mu, NULL);
  int rc = check_url(h, o->url);
  if (rc) {
    hctx_free(h);
    return rc;
  }
  memcpy(h->model, o->model, ml + 1);
  h->dim = o->dim;
  h->batch = batch;
  h->timeout_ms = tmo;
  h->connect_ms = o->connect_timeout_ms ? o->connect_timeout_ms
                  : tmo < 10000u        ? tmo
                                        : 10000u;
  h->retries = o->max_retries;
  h->max_resp = o->max_response ? o->max_response
                                : JIWA_EMBED_HTTP_MAX_RESPONSE;
  if (h->max_resp > JIWA_EMBED_HTTP_MAX_RESPONSE)
    h->max_resp = JIWA_EMBED_HTTP_MAX_RESPONSE;
  h->url = strdup(o->url);
  /* curl_slist_append returns the head, or NULL leaving the list as is */
  struct curl_slist *l =
      curl_slist_append(NULL, "Content-Type: application/json");
  h->hdrs = l;
  /* no 100-continue round trip for big batches */
  if (l)
    l = curl_slist_append(h->hdrs, "Expect:");
  if (l && key) {
    size_t kl = strlen(key);
    char *line = malloc(kl + sizeof "Authorization: Bearer ");
    h->key = strdup(key);
    if (line && h->key) {
      memcpy(line, "Authorization: Bearer ", sizeof "Authorization: Bearer " - 1);
      memcpy(line + sizeof "Authorization: Bearer " - 1, key, kl + 1);
      l = curl_slist_append(h->hdrs, line);
      wipe(line, kl + sizeof "Authorization: Bearer ");
    } else {
      l = NULL;
    }
    free(line);
  }
  if (!h->url || !l) {
    hctx_free(h);
    return fail(JIWA_ENOMEM, "http embedder: out of memory");
  }
  snprintf(h->key_env, sizeof h->key_env, "%s",
           o->api_key_env ? o->api_key_env : "");
  char name[64];
  snprintf(name, sizeof name, "http:%s", h->model);
  rc = jiwa_embed_new(name, h->dim, &k_http_ops, h, out);
  if (rc) {
    hctx_free(h);
    return fail(rc, "http embedder: %s", jiwa_strerror(rc));
  }
  return 0;
}
