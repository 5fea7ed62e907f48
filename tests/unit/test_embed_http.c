/*
 * Unit tests for the http embedder (runtime/text/jiwa_embed_http.c)
 * against tools/mockllm on an ephemeral loopback port: batching (with the
 * requests checked in mockllm's log), keep-alive, normalised and
 * deterministic vectors in input order, empty texts, a dimension mismatch,
 * the response size bound,
 * 429 then success, runs of 5xx, a 4xx that is not retried, a silent server
 * against the timeout, the key sent as a Bearer token and never in an
 * error (canary), concurrent callers, the response parser on crafted
 * bodies (shuffled indices, bad counts, bad values), option checks, the
 * config keys of an http collection, and a collection with the http
 * embedder: import by text on a thread, search by vector.
 *
 * mockllm's path comes from CMake (JIWA_MOCKLLM = $<TARGET_FILE:mockllm>).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jiwa/json.h"
#include "jiwa/mp.h"
#include "jiwa_coll.h"
#include "jiwa_config.h"
#include "jiwa_embed_http.h"

#define assert_rc(expr, want)                                                  \
  do {                                                                         \
    int rc_ = (expr);                                                          \
    int want_ = (want);                                                        \
    if (rc_ != want_) {                                                        \
      print_error("%s\n  got %d (%s), want %d (%s)\n  http: %s\n  coll: %s\n", \
                  #expr, rc_, jiwa_err_name(rc_), want_, jiwa_err_name(want_), \
                  jiwa_embed_http_errmsg(), jiwa_coll_errmsg());               \
      fail();                                                                  \
    }                                                                          \
  } while (0)

#define assert_has(hay, needle)                                                \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_))                                                \
      fail_msg("expected \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)");           \
  } while (0)

#define assert_lacks(hay, needle)                                              \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (h_ && strstr(h_, n_))                                                  \
      fail_msg("\"%s\" must not appear in \"%s\"", n_, h_);                    \
  } while (0)

#define DIM 384u /* mockllm's default dimension */
#define CANARY "sk-canary-7f3e9b1d0c"

/* ---- mockllm ------------------------------------------------------------- */

static char g_dir[512];
static pid_t g_mock = -1;
static int g_port;
static char g_url[128];  /* http://127.0.0.1:PORT/v1/embeddings */
static char g_host[64];  /* 127.0.0.1:PORT */
static CURL *g_ctl;      /* control requests, one kept-alive connection */

typedef struct {
  char *p;
  size_t n;
} buf_t;

static size_t buf_write(char *p, size_t sz, size_t nm, void *ud) {
  buf_t *b = ud;
  char *q = realloc(b->p, b->n + sz * nm + 1);
  if (!q)
    return 0;
  memcpy(q + b->n, p, sz * nm);
  b->n += sz * nm;
  q[b->n] = '\0';
  b->p = q;
  return sz * nm;
}

/* A control request to mockllm; returns the status, *out the body
 * (malloc'd, may be NULL). */
static long ctl(const char *method, const char *path, const char *body,
                char **out) {
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_port, path);
  buf_t b = {0};
  curl_easy_reset(g_ctl);
  curl_easy_setopt(g_ctl, CURLOPT_URL, url);
  curl_easy_setopt(g_ctl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(g_ctl, CURLOPT_WRITEFUNCTION, buf_write);
  curl_easy_setopt(g_ctl, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(g_ctl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(g_ctl, CURLOPT_NOSIGNAL, 1L);
  if (body) {
    curl_easy_setopt(g_ctl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(g_ctl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  CURLcode cc = curl_easy_perform(g_ctl);
  if (cc != CURLE_OK)
    fail_msg("control %s %s: %s", method, path, curl_easy_strerror(cc));
  long status = 0;
  curl_easy_getinfo(g_ctl, CURLINFO_RESPONSE_CODE, &status);
  if (out)
    *out = b.p;
  else
    free(b.p);
  return status;
}

static void script(const char *entry) {
  char *resp = NULL;
  long st = ctl("POST", "/_mock/script", entry, &resp);
  if (st != 200)
    fail_msg("script %s: HTTP %ld %s", entry, st, resp ? resp : "");
  free(resp);
}

/* The embeddings requests in mockllm's log: their input sizes, their auth
 * ("bearer", "none") and the model of the last one. Returns the count. */
typedef struct {
  int n;
  int inputs[64];
  char auth[16];
  char model[64];
} reqlog_t;

static void reqlog(reqlog_t *L) {
  memset(L, 0, sizeof *L);
  char *json = NULL;
  assert_int_equal(ctl("GET", "/_mock/requests", NULL, &json), 200);
  char *mp = NULL;
  size_t ml = 0;
  assert_rc(jiwa_json_to_mp(json, strlen(json), NULL, &mp, &ml, NULL), 0);
  free(json);
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, mp, ml);
  assert_rc(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.type, JIWA_MP_ARRAY);
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *e0 = r.p;
    assert_rc(jiwa_mp_skip(&r), 0);
    size_t el = (size_t)(r.p - e0);
    const char *s;
    size_t sl;
    if (jiwa_mp_get_str(e0, el, "route", &s, &sl) ||
        sl != strlen("embeddings") || memcmp(s, "embeddings", sl))
      continue;
    if (jiwa_mp_get_str(e0, el, "auth", &s, &sl) == 0)
      snprintf(L->auth, sizeof L->auth, "%.*s", (int)sl, s);
    jiwa_mp_reader_t body, in;
    jiwa_mp_item_t a;
    assert_rc(jiwa_mp_map_find(e0, el, "body", &body), 0);
    if (jiwa_mp_get_str(body.p, jiwa_mp_reader_left(&body), "model", &s,
                        &sl) == 0)
      snprintf(L->model, sizeof L->model, "%.*s", (int)sl, s);
    assert_rc(jiwa_mp_map_find(body.p, jiwa_mp_reader_left(&body), "input",
                               &in),
              0);
    assert_rc(jiwa_mp_next(&in, &a), 0);
    assert_int_equal(a.type, JIWA_MP_ARRAY);
    if (L->n < 64)
      L->inputs[L->n] = (int)a.v.count;
    L->n++;
  }
  free(mp);
}

static int64_t stat_connections(void) {
  char *json = NULL;
  assert_int_equal(ctl("GET", "/_mock/stats", NULL, &json), 200);
  char *mp = NULL;
  size_t ml = 0;
  assert_rc(jiwa_json_to_mp(json, strlen(json), NULL, &mp, &ml, NULL), 0);
  free(json);
  int64_t n = -1;
  assert_rc(jiwa_mp_get_int(mp, ml, "connections", &n), 0);
  free(mp);
  return n;
}

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w) {
  (void)st;
  (void)f;
  (void)w;
  return remove(p);
}

static int group_setup(void **state) {
  (void)state;
  const char *t = getenv("TMPDIR");
  snprintf(g_dir, sizeof g_dir, "%s/jiwa-hemb-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(g_dir))
    return -1;
  char mock[1024];
  const char *m = getenv("JIWA_MOCKLLM");
  if (m && *m)
    snprintf(mock, sizeof mock, "%s", m);
  else
    snprintf(mock, sizeof mock, "%s/tools/mockllm/mockllm",
             getenv("JIWA_BINARY_DIR") ? getenv("JIWA_BINARY_DIR") : ".");
  char pf[600];
  snprintf(pf, sizeof pf, "%s/port", g_dir);
  g_mock = fork();
  if (g_mock < 0)
    return -1;
  if (g_mock == 0) {
    freopen("/dev/null", "w", stdout);
    execl(mock, mock, "--port", "0", "--port-file", pf, "--quiet",
          (char *)NULL);
    _exit(127);
  }
  /* wait (bounded) for the port file */
  for (int i = 0; i < 1000; i++) {
    FILE *f = fopen(pf, "r");
    if (f) {
      int ok = fscanf(f, "%d", &g_port) == 1;
      fclose(f);
      if (ok)
        break;
    }
    int st;
    if (waitpid(g_mock, &st, WNOHANG) == g_mock) {
      fprintf(stderr, "mockllm (%s) exited early\n", mock);
      g_mock = -1;
      return -1;
    }
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  if (!g_port)
    return -1;
  snprintf(g_url, sizeof g_url, "http://127.0.0.1:%d/v1/embeddings", g_port);
  snprintf(g_host, sizeof g_host, "127.0.0.1:%d", g_port);
  curl_global_init(CURL_GLOBAL_ALL);
  g_ctl = curl_easy_init();
  return g_ctl ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  if (g_ctl)
    curl_easy_cleanup(g_ctl);
  int rc = 0;
  if (g_mock > 0) {
    kill(g_mock, SIGTERM);
    int st = 0;
    waitpid(g_mock, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "mockllm did not exit cleanly (status %d)\n", st);
      rc = -1;
    }
  }
  nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  curl_global_cleanup();
  return rc;
}

/* Every test starts from a clean mock. */
static int reset(void **state) {
  (void)state;
  return ctl("POST", "/_mock/reset", "{}", NULL) == 200 ? 0 : -1;
}

/* ---- helpers -------------------------------------------------------------- */

static jiwa_embed_t *make(unsigned dim, unsigned batch, unsigned timeout_ms,
                          const char *key_env) {
  jiwa_embed_http_opts_t o;
  jiwa_embed_http_opts_init(&o);
  o.url = g_url;
  o.model = "mock-embed";
  o.dim = dim;
  if (batch)
    o.batch = batch;
  if (timeout_ms)
    o.timeout_ms = timeout_ms;
  o.api_key_env = key_env;
  jiwa_embed_t *e = NULL;
  assert_rc(jiwa_embed_http_new(&o, &e), 0);
  return e;
}

#define NTEXT 150

typedef struct {
  const char *t[NTEXT];
  size_t l[NTEXT];
  char store[NTEXT][48];
} texts_t;

static void texts_make(texts_t *T, const char *prefix) {
  for (int i = 0; i < NTEXT; i++) {
    snprintf(T->store[i], sizeof T->store[i], "%s %d tentang visa", prefix, i);
    T->t[i] = T->store[i];
    T->l[i] = strlen(T->store[i]);
  }
}

static double norm(const float *v, unsigned dim) {
  double s = 0;
  for (unsigned i = 0; i < dim; i++)
    s += (double)v[i] * v[i];
  return sqrt(s);
}

static double dot(const float *a, const float *b, unsigned dim) {
  double s = 0;
  for (unsigned i = 0; i < dim; i++)
    s += (double)a[i] * b[i];
  return s;
}

/* JIWA_HEMB_VERBOSE=1 prints the error sentences the tests provoke. */
static void show(const char *m) {
  if (getenv("JIWA_HEMB_VERBOSE"))
    fprintf(stderr, "  message: %s\n", m);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_batching(void **state) {
  (void)state;
  texts_t T;
  texts_make(&T, "teks");
  jiwa_embed_t *e = make(DIM, 64, 0, NULL);
  assert_string_equal(jiwa_embed_name(e), "http:mock-embed");
  assert_int_equal(jiwa_embed_dim(e), DIM);
  float *v = malloc((size_t)NTEXT * DIM * sizeof *v);
  int64_t c0 = stat_connections();
  assert_rc(jiwa_embed_texts(e, T.t, T.l, NTEXT, v), 0);
  /* three batches, one kept-alive connection */
  reqlog_t L;
  reqlog(&L);
  assert_int_equal(L.n, 3);
  assert_int_equal(L.inputs[0], 64);
  assert_int_equal(L.inputs[1], 64);
  assert_int_equal(L.inputs[2], 22);
  assert_string_equal(L.model, "mock-embed");
  assert_string_equal(L.auth, "none");
  assert_int_equal(stat_connections() - c0, 1);
  /* unit vectors, distinct texts far apart */
  for (int i = 0; i < NTEXT; i++)
    assert_true(fabs(norm(v + (size_t)i * DIM, DIM) - 1.0) < 1e-5);
  assert_true(fabs(dot(v, v + DIM, DIM)) < 0.5);
  /* deterministic and in input order: other batch sizes, one at a time */
  float *w = malloc((size_t)NTEXT * DIM * sizeof *w);
  jiwa_embed_t *e7 = make(DIM, 7, 0, NULL);
  assert_rc(jiwa_embed_texts(e7, T.t, T.l, NTEXT, w), 0);
  assert_memory_equal(v, w, (size_t)NTEXT * DIM * sizeof *v);
  float one[DIM];
  assert_rc(jiwa_embed_texts(e, &T.t[99], &T.l[99], 1, one), 0);
  assert_memory_equal(one, v + (size_t)99 * DIM, sizeof one);
  reqlog(&L);
  assert_int_equal(L.n, 3 + 22 + 1); /* ceil(150 / 7) = 22 */
  jiwa_embed_destroy(e7);
  jiwa_embed_destroy(e);
  free(v);
  free(w);
}

static void test_empty_text(void **state) {
  (void)state;
  jiwa_embed_t *e = make(DIM, 0, 0, NULL);
  const char *t[3] = {"", "halo", ""};
  size_t l[3] = {0, 4, 0};
  float v[3 * DIM];
  memset(v, 0x7f, sizeof v);
  assert_rc(jiwa_embed_texts(e, t, l, 3, v), 0);
  assert_true(norm(v, DIM) == 0);
  assert_true(norm(v + 2 * DIM, DIM) == 0);
  assert_true(fabs(norm(v + DIM, DIM) - 1.0) < 1e-5);
  reqlog_t L;
  reqlog(&L);
  assert_int_equal(L.n, 1);
  assert_int_equal(L.inputs[0], 1);
  /* only empty texts: no request at all */
  assert_rc(jiwa_embed_texts(e, t, l, 1, v), 0);
  reqlog(&L);
  assert_int_equal(L.n, 1);
  jiwa_embed_destroy(e);
}

static void test_dim_mismatch(void **state) {
  (void)state;
  jiwa_embed_t *e = make(256, 0, 0, NULL);
  const char *t = "berapa lama KITAS";
  float *v = malloc(256 * sizeof *v);
  assert_rc(jiwa_embed_texts(e, &t, NULL, 1, v), JIWA_ECONFIG);
  const char *m = jiwa_embed_http_errmsg();
  show(m);
  assert_has(m, "http embedder");
  assert_has(m, "384-dimensional");
  assert_has(m, "the collection is 256");
  assert_has(m, "set dim = 384");
  assert_has(m, g_host);
  assert_lacks(m, "/v1/embeddings");
  reqlog_t L;
  reqlog(&L);
  assert_int_equal(L.n, 1); /* a config error is not retried */
  free(v);
  jiwa_embed_destroy(e);
}

static void test_too_big(void **state) {
  (void)state;
  jiwa_embed_http_opts_t o;
  jiwa_embed_http_opts_init(&o);
  o.url = g_url;
  o.model = "mock-embed";
  o.dim = DIM;
  o.max_response = 2048; /* one 384-float vector is ~8 KB of JSON */
  jiwa_embed_t *e = NULL;
  assert_rc(jiwa_embed_http_new(&o, &e), 0);
  const char *t = "halo";
  float v[DIM];
  assert_rc(jiwa_embed_texts(e, &t, NULL, 1, v), JIWA_ETOOBIG);
  show(jiwa_embed_http_errmsg());
  assert_has(jiwa_embed_http_errmsg(), "response over 2048 bytes");
  jiwa_embed_destroy(e);
}

static void test_429_then_success(void **state) {
  (void)state;
  script("{\"route\":\"embeddings\",\"fault\":\"status=429,retry_after=1,"
         "fail_times=1\"}");
  jiwa_embed_t *e = make(DIM, 0, 0, NULL);
  const char *t = "halo";
  float v[DIM], w[DIM];
  assert_rc(jiwa_embed_texts(e, &t, NULL, 1, v), 0);
  reqlog_t L;
  reqlog(&L);
  assert_int_equal(L.n, 2);
  assert_rc(jiwa_embed_texts(e, &t, NULL, 1, w), 0);
  assert_memory_equal(v, w, sizeof v);
  jiwa_embed_destroy(e);
}

static void test_5xx_runs(void **state) {
  (void)state;
  script("{\"route\":\"embeddings\",\"fault\":\"status=503,fail_times=10\"}");
  jiwa_embed_t *e = make(DIM, 0, 0, NULL);
  const char *t = "halo";
  float v[DIM];
  assert_rc(jiwa_embed_texts(e, &t, NULL, 1, v), JIWA_EUPSTREAM);
  show(jiwa_embed_http_errmsg());
  assert_has(jiwa_embed_http_errmsg(), "HTTP 503");
  assert_has(jiwa_embed_http_errmsg(), "after retries");
  assert_has(jiwa_embed_http_errmsg(), g_host);
  reqlog_t L;
  reqlog(&L);
  assert_int_equal(L.n, 1 + JIWA_EMBED_HTTP_DEFAULT_RETRIES);
  /* a 4xx other than 408/429 is not retried */
  assert_int_equal(ctl("DELETE", "/_mock/script", NULL, NULL), 200);
  assert_int_equal(ctl("DELETE", "/_mock/requests", NULL, NULL), 200);
  script("{\"route\":\"embeddings\",\"fault\":\"status=404\",\"times\":1}");
  assert_rc(jiwa_embed_texts(e, &t, NULL, 1, v), JIWA_EUPSTREAM);
  show(jiwa_embed_http_errmsg());
  assert_has(jiwa_embed_http_errmsg(), "HTTP 404");
  assert_has(jiwa_embed_http_errmsg(), "check url");
  reqlog(&L);
  assert_int_equal(L.n, 1);
  /* and the embedder still works afterwards */
  assert_rc(jiwa_embed_texts(e, &t, NULL, 1, v), 0);
  jiwa_embed_destroy(e);
}

static void test_timeout(void **state) {
  (void)state;
  script("{\"route\":\"embeddings\",\"fault\":\"silence\",\"times\":1}");
  jiwa_embed_t *e = make(DIM, 0, 300, NULL);
  const char *t = "halo";
  float v[DIM];
  assert_rc(jiwa_embed_texts(e, &t, NULL, 1, v), JIWA_ETIMEDOUT);
  show(jiwa_embed_http_errmsg());
  assert_has(jiwa_embed_http_errmsg(), "no answer within 300 ms");
  assert_has(jiwa_embed_http_errmsg(), g_host);
  reqlog_t L;
  reqlog(&L);
  assert_int_equal(L.n, 1); /* a timeout is not retried */
  assert_rc(jiwa_embed_texts(e, &t, NULL, 1, v), 0);
  jiwa_embed_destroy(e);
}

static void test_key_canary(void **state) {
  (void)state;
  setenv("JIWA_HEMB_TEST_KEY", CANARY, 1);
  jiwa_embed_t *e = make(DIM, 0, 300, "JIWA_HEMB_TEST_KEY");
  const char *t = "halo";
  float v[DIM];
  assert_rc(jiwa_embed_texts(e, &t, NULL, 1, v), 0);
  reqlog_t L;
  reqlog(&L);
  assert_string_equal(L.auth, "bearer");
  /* every failure: the key is never in the message */
  static const char *const faults[] = {
      "{\"route\":\"embeddings\",\"fault\":\"status=401\",\"times\":1}",
      "{\"route\":\"embeddings\",\"fault\":\"status=500\",\"times\":4}",
      "{\"route\":\"embeddings\",\"fault\":\"silence\",\"times\":1}",
  };
  for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
    script(faults[i]);
    assert_true(jiwa_embed_texts(e, &t, NULL, 1, v) != 0);
    show(jiwa_embed_http_errmsg());
    assert_lacks(jiwa_embed_http_errmsg(), CANARY);
    assert_lacks(jiwa_embed_http_errmsg(), "canary");
  }
  assert_has(jiwa_embed_http_errmsg(), "no answer");
  jiwa_embed_destroy(e);
  /* dimension mismatch with a key */
  e = make(128, 0, 0, "JIWA_HEMB_TEST_KEY");
  float w[128];
  assert_rc(jiwa_embed_texts(e, &t, NULL, 1, w), JIWA_ECONFIG);
  assert_lacks(jiwa_embed_http_errmsg(), CANARY);
  jiwa_embed_destroy(e);
  /* the 401 message names the variable, not its value */
  e = make(DIM, 0, 0, "JIWA_HEMB_TEST_KEY");
  script("{\"route\":\"embeddings\",\"fault\":\"status=401\",\"times\":1}");
  assert_rc(jiwa_embed_texts(e, &t, NULL, 1, v), JIWA_EUPSTREAM);
  assert_has(jiwa_embed_http_errmsg(), "JIWA_HEMB_TEST_KEY");
  assert_lacks(jiwa_embed_http_errmsg(), CANARY);
  jiwa_embed_destroy(e);
  /* an unset variable is refused at creation, by name */
  jiwa_embed_http_opts_t o;
  jiwa_embed_http_opts_init(&o);
  o.url = g_url;
  o.model = "mock-embed";
  o.dim = DIM;
  o.api_key_env = "JIWA_HEMB_UNSET_KEY";
  unsetenv("JIWA_HEMB_UNSET_KEY");
  assert_rc(jiwa_embed_http_new(&o, &e), JIWA_ECONFIG);
  show(jiwa_embed_http_errmsg());
  assert_has(jiwa_embed_http_errmsg(), "JIWA_HEMB_UNSET_KEY");
  unsetenv("JIWA_HEMB_TEST_KEY");
}

typedef struct {
  jiwa_embed_t *e;
  const texts_t *T;
  const float *want;
  int bad;
} worker_t;

static void *worker(void *ud) {
  worker_t *w = ud;
  float *v = malloc((size_t)NTEXT * DIM * sizeof *v);
  for (int round = 0; round < 3 && v; round++) {
    if (jiwa_embed_texts(w->e, w->T->t, w->T->l, NTEXT, v) != 0 ||
        memcmp(v, w->want, (size_t)NTEXT * DIM * sizeof *v) != 0)
      w->bad++;
  }
  if (!v)
    w->bad++;
  free(v);
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  texts_t T;
  texts_make(&T, "utas");
  jiwa_embed_t *e = make(DIM, 50, 0, NULL);
  float *want = malloc((size_t)NTEXT * DIM * sizeof *want);
  assert_rc(jiwa_embed_texts(e, T.t, T.l, NTEXT, want), 0);
  pthread_t th[4];
  worker_t w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker_t){e, &T, want, 0};
    assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].bad, 0);
  }
  reqlog_t L;
  reqlog(&L);
  assert_int_equal(L.n, 3 + 4 * 3 * 3);
  jiwa_embed_destroy(e);
  free(want);
}

static void test_parse(void **state) {
  (void)state;
  char err[300];
  float v[2 * 8];
  /* shuffled indices land in index order; rows are normalised */
  const char *ok = "{\"object\":\"list\",\"data\":["
                   "{\"index\":1,\"embedding\":[0,0,0,0,0,0,0,2]},"
                   "{\"object\":\"embedding\",\"embedding\":[3,4,0,0,0,0,0,0],"
                   "\"index\":0}],\"model\":\"m\"}";
  assert_rc(jiwa_embed_http_parse(ok, strlen(ok), 2, 8, v, err, sizeof err),
            0);
  assert_true(fabsf(v[0] - 0.6f) < 1e-6f && fabsf(v[1] - 0.8f) < 1e-6f);
  assert_true(fabsf(v[15] - 1.0f) < 1e-6f);
  /* without "index": positions */
  const char *pos = "{\"data\":[{\"embedding\":[1,0,0,0,0,0,0,0]},"
                    "{\"embedding\":[0,1,0,0,0,0,0,0]}]}";
  assert_rc(jiwa_embed_http_parse(pos, strlen(pos), 2, 8, v, err, sizeof err),
            0);
  assert_true(v[0] == 1.0f && v[9] == 1.0f);
  struct {
    const char *body;
    int rc;
    const char *msg;
  } bad[] = {
      {"not json", JIWA_EPROTO, "not JSON"},
      {"[1,2]", JIWA_EPROTO, "data"},
      {"{\"error\":{\"message\":\"x\"}}", JIWA_EPROTO, "no \"data\""},
      {"{\"data\":{}}", JIWA_EPROTO, "not a list"},
      {"{\"data\":[{\"embedding\":[1,0,0,0,0,0,0,0]}]}", JIWA_EPROTO,
       "1 vectors for 2 texts"},
      {"{\"data\":[{\"index\":0,\"embedding\":[1,0,0,0,0,0,0,0]},"
       "{\"index\":0,\"embedding\":[1,0,0,0,0,0,0,0]}]}",
       JIWA_EPROTO, "repeated"},
      {"{\"data\":[{\"index\":5,\"embedding\":[1,0,0,0,0,0,0,0]},"
       "{\"index\":0,\"embedding\":[1,0,0,0,0,0,0,0]}]}",
       JIWA_EPROTO, "index"},
      {"{\"data\":[{\"index\":0,\"embedding\":[1,0,0]},"
       "{\"index\":1,\"embedding\":[1,0,0]}]}",
       JIWA_ECONFIG, "3-dimensional"},
      {"{\"data\":[{\"index\":0,\"embedding\":\"AAAA\"},"
       "{\"index\":1,\"embedding\":[1,0,0,0,0,0,0,0]}]}",
       JIWA_EPROTO, "not a list of numbers"},
      {"{\"data\":[{\"index\":0,\"embedding\":[1,0,0,0,0,0,0,\"x\"]},"
       "{\"index\":1,\"embedding\":[1,0,0,0,0,0,0,0]}]}",
       JIWA_EPROTO, "not a number"},
      {"{\"data\":[{\"index\":0,\"embedding\":[1e300,0,0,0,0,0,0,0]},"
       "{\"index\":1,\"embedding\":[1,0,0,0,0,0,0,0]}]}",
       JIWA_EPROTO, "finite"},
      {"{\"data\":[{\"index\":0},{\"index\":1}]}", JIWA_EPROTO,
       "no embedding"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = jiwa_embed_http_parse(bad[i].body, strlen(bad[i].body), 2, 8, v,
                                   err, sizeof err);
    if (rc != bad[i].rc)
      fail_msg("case %zu: got %d want %d (%s)", i, rc, bad[i].rc, err);
    assert_has(err, bad[i].msg);
  }
  assert_rc(jiwa_embed_http_parse(NULL, 0, 1, 8, v, err, sizeof err),
            JIWA_EINVAL);
}

static void test_bad_opts(void **state) {
  (void)state;
  jiwa_embed_http_opts_t o;
  jiwa_embed_t *e = NULL;
  struct {
    const char *url, *model;
    unsigned dim, batch;
    const char *msg;
  } bad[] = {
      {NULL, "m", DIM, 0, "url is required"},
      {"ftp://127.0.0.1/x", "m", DIM, 0, "not http or https"},
      {"not a url at all", "m", DIM, 0, "not an http(s) URL"},
      {g_url, "", DIM, 0, "model must be"},
      {g_url, "m", 4, 0, "dim 4 is out of range"},
      {g_url, "m", DIM, 5000, "batch must be"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    jiwa_embed_http_opts_init(&o);
    o.url = bad[i].url;
    o.model = bad[i].model;
    o.dim = bad[i].dim;
    o.batch = bad[i].batch;
    assert_rc(jiwa_embed_http_new(&o, &e), JIWA_EINVAL);
    assert_null(e);
    assert_has(jiwa_embed_http_errmsg(), bad[i].msg);
  }
  /* through the registry: http needs its settings */
  assert_rc(jiwa_coll_embedder_new("http", DIM, &e), JIWA_EINVAL);
  assert_has(jiwa_coll_errmsg(), "url is required");
  const jiwa_coll_embedder_kind_t *k = jiwa_coll_embedder_find("http");
  assert_non_null(k);
  assert_int_equal(k->blocking, 1);
  assert_int_equal(jiwa_coll_embedder_find("hash")->blocking, 0);
  assert_rc(jiwa_coll_embedder_new("word2vec", DIM, &e), JIWA_ENOENT);
  assert_has(jiwa_coll_errmsg(), "hash, http");
}

/* ---- the config keys ------------------------------------------------------------- */

static int conf_text(const char *colls, jiwa_conf_t *c, char *err,
                     size_t errlen) {
  char path[600], pd[600];
  snprintf(pd, sizeof pd, "%s/plugins", g_dir);
  mkdir(pd, 0700);
  snprintf(path, sizeof path, "%s/jiwa.lua", g_dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "return { plugin_dir = 'plugins', state_dir = 'state',\n"
          "  store = { collections = { %s } } }\n",
          colls);
  fclose(f);
  return jiwa_conf_load(path, c, err, errlen);
}

static void test_config(void **state) {
  (void)state;
  jiwa_conf_t c;
  char err[512];
  setenv("JIWA_HEMB_CONF_KEY", CANARY, 1);
  assert_rc(conf_text("{ name = 'sem', embedder = 'http', dim = 1024,"
                      " url = 'http://127.0.0.1:11434/v1/embeddings',"
                      " model = 'bge-m3', api_key_env = 'JIWA_HEMB_CONF_KEY',"
                      " batch = 32, timeout_ms = 5000 },"
                      " { name = 'lex' }",
                      &c, err, sizeof err),
            0);
  assert_int_equal(c.n_collections, 2);
  const jiwa_coll_conf_t *cc = &c.collections[0];
  assert_string_equal(cc->embedder, "http");
  assert_string_equal(cc->url, "http://127.0.0.1:11434/v1/embeddings");
  assert_string_equal(cc->model, "bge-m3");
  assert_string_equal(cc->api_key_env, "JIWA_HEMB_CONF_KEY");
  assert_int_equal(cc->dim, 1024);
  assert_int_equal(cc->batch, 32);
  assert_int_equal(cc->timeout_ms, 5000);
  /* defaults, and the key itself is nowhere in the struct */
  assert_string_equal(c.collections[1].embedder, "hash");
  assert_null(c.collections[1].url);
  assert_int_equal(c.collections[1].batch, 64);
  assert_int_equal(c.collections[1].timeout_ms, 30000);
  jiwa_conf_free(&c);
  struct {
    const char *colls, *msg;
  } bad[] = {
      {"{ name = 'a', embedder = 'http', dim = 384, model = 'm' }",
       "key 'url': required"},
      {"{ name = 'a', embedder = 'http', dim = 384, url = 'ftp://h/x',"
       " model = 'm' }",
       "not an http:// or https:// URL"},
      {"{ name = 'a', embedder = 'http', dim = 384, url = 'http://h/x' }",
       "key 'model': required"},
      {"{ name = 'a', embedder = 'http', url = 'http://h/x', model = 'm' }",
       "key 'dim': required"},
      {"{ name = 'a', url = 'http://h/x' }", "only used with embedder"},
      {"{ name = 'a', embedder = 'http', dim = 384, url = 'http://h/x',"
       " model = 'm', api_key_env = 'JIWA_HEMB_NOPE' }",
       "JIWA_HEMB_NOPE is not set"},
      {"{ name = 'a', embedder = 'http', dim = 384, url = 'http://h/x',"
       " model = 'm', api_key_env = 'sk-123 456' }",
       "never the key itself"},
      {"{ name = 'a', embedder = 'http', dim = 384, url = 'http://h/x',"
       " model = 'm', batch = 0 }",
       "batch"},
      {"{ name = 'a', embedder = 'w2v' }", "use hash or http"},
  };
  unsetenv("JIWA_HEMB_NOPE");
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = conf_text(bad[i].colls, &c, err, sizeof err);
    if (rc != JIWA_ECONFIG)
      fail_msg("case %zu: got %d, err %s", i, rc, err);
    show(err);
    assert_has(err, bad[i].msg);
    assert_lacks(err, CANARY);
  }
  unsetenv("JIWA_HEMB_CONF_KEY");
}

/* ---- a collection with the http embedder ---------------------------------------- */

typedef struct {
  jiwa_coll_t *c;
  const jiwa_coll_record_t *recs;
  size_t n;
  int rc;
  size_t bad;
} import_t;

static void *import_job(void *ud) {
  import_t *j = ud;
  j->rc = jiwa_coll_import(j->c, j->recs, j->n, NULL, NULL, &j->bad);
  return NULL;
}

static void test_collection(void **state) {
  (void)state;
  char sd[600];
  snprintf(sd, sizeof sd, "%s/store", g_dir);
  mkdir(sd, 0700);
  jiwa_store_config_t sc;
  jiwa_store_config_init(&sc);
  sc.path = sd;
  sc.fast = 1;
  jiwa_store_t *s = NULL;
  assert_rc(jiwa_store_open(&sc, &s), 0);

  jiwa_coll_embedder_opts_t eo;
  jiwa_coll_embedder_opts_init(&eo);
  eo.dim = DIM;
  eo.url = g_url;
  eo.model = "mock-embed";
  eo.batch = 16;
  jiwa_embed_t *e = NULL;
  assert_rc(jiwa_coll_embedder_new_opts("http", &eo, &e), 0);
  jiwa_coll_def_t d;
  jiwa_coll_def_init(&d);
  d.embedder = e;
  d.own_embedder = 1;
  d.embed_blocking = jiwa_coll_embedder_find("http")->blocking;
  jiwa_coll_t *c = NULL;
  assert_rc(jiwa_coll_open(s, "semantic", &d, &c), 0);
  assert_string_equal(jiwa_coll_embedder_name(c), "http:mock-embed");
  assert_int_equal(jiwa_coll_embed_blocking(c), 1);

  texts_t T;
  texts_make(&T, "wawasan");
  enum { N = 40 };
  jiwa_coll_record_t recs[N];
  char ids[N][16];
  memset(recs, 0, sizeof recs);
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], sizeof ids[i], "r%d", i);
    recs[i].id = ids[i];
    recs[i].text = T.t[i];
  }
  /* imported by text on a thread, as jiwad's import runs on the pool */
  import_t job = {c, recs, N, -1, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, import_job, &job), 0);
  pthread_join(th, NULL);
  assert_rc(job.rc, 0);
  uint64_t cnt = 0;
  assert_rc(jiwa_coll_count(c, &cnt), 0);
  assert_int_equal(cnt, N);
  reqlog_t L;
  reqlog(&L);
  assert_int_equal(L.n, 3); /* 40 texts, batch 16 */

  /* text search is refused (blocking embedder); by vector it works */
  jiwa_coll_query_t q = JIWA_COLL_QUERY_INIT;
  jiwa_coll_result_t res;
  q.text = T.t[17];
  q.k = 3;
  assert_rc(jiwa_coll_search(c, &q, &res), JIWA_ENOTSUP);
  assert_has(jiwa_coll_errmsg(), "search by vector");
  float qv[DIM];
  assert_rc(jiwa_embed_texts(e, &T.t[17], &T.l[17], 1, qv), 0);
  q.text = NULL;
  q.vec = qv;
  q.dim = DIM;
  q.flags = JIWA_COLL_WITH_TEXT;
  assert_rc(jiwa_coll_search(c, &q, &res), 0);
  assert_true(res.n >= 1);
  assert_string_equal(res.hits[0].id, "r17");
  assert_string_equal(res.hits[0].text, T.t[17]);
  assert_true(res.hits[0].score > 0.999f);
  jiwa_coll_result_free(&res);

  /* a failing server fails the import as a whole, with its reason */
  script("{\"route\":\"embeddings\",\"fault\":\"status=400\",\"times\":1}");
  jiwa_coll_record_t more = {.id = "late", .text = "teks baru"};
  size_t bad = 0;
  assert_rc(jiwa_coll_import(c, &more, 1, NULL, NULL, &bad), JIWA_EUPSTREAM);
  assert_has(jiwa_coll_errmsg(), "semantic");
  show(jiwa_coll_errmsg());
  assert_has(jiwa_coll_errmsg(), "HTTP 400");
  assert_rc(jiwa_coll_count(c, &cnt), 0);
  assert_int_equal(cnt, N);
  jiwa_coll_close(c);

  /* reopened with another dimension: refused by the collection */
  eo.dim = 256;
  assert_rc(jiwa_coll_embedder_new_opts("http", &eo, &e), 0);
  d.embedder = e;
  assert_rc(jiwa_coll_open(s, "semantic", &d, &c), JIWA_ECONFIG);
  jiwa_embed_destroy(e);
  assert_rc(jiwa_store_close(s), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_batching, reset),
      cmocka_unit_test_setup(test_empty_text, reset),
      cmocka_unit_test_setup(test_dim_mismatch, reset),
      cmocka_unit_test_setup(test_too_big, reset),
      cmocka_unit_test_setup(test_429_then_success, reset),
      cmocka_unit_test_setup(test_5xx_runs, reset),
      cmocka_unit_test_setup(test_timeout, reset),
      cmocka_unit_test_setup(test_key_canary, reset),
      cmocka_unit_test_setup(test_threads, reset),
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_bad_opts),
      cmocka_unit_test(test_config),
      cmocka_unit_test_setup(test_collection, reset),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
