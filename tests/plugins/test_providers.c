/* The LLM provider plugins (anthropic, openai, runpod, huggingface) against
 * tools/mockllm on an ephemeral loopback port, in an in-process runtime:
 * streamed and non-streamed answers, presets and the system prompt, the
 * fault matrix (latency, 429 with and without Retry-After, runs of 5xx,
 * refused, silence, stalls, resets, byte-split SSE, CR/LF/CRLF, comments,
 * malformed JSON, a 2 MiB line, endless streams, in-stream errors), the
 * circuit breaker (one probe per window), the ask deadline, fallback
 * through the policy engine (claude → llama), and a canary key that must
 * appear nowhere.
 *
 * Every request must end with exactly one final, within its deadline + 1 s,
 * with no HTTP request left behind; retries are counted on mockllm's side
 * (GET /_mock/stats). No timing assertions beyond those generous bounds.
 *
 * Usage: test_providers MOCKLLM_BINARY (ctest passes it). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>

#include <cmocka.h>

#define JT_MOCKLLM_HTTP
#include "../common/jt_mockllm.h"

#include "../common/jt.h"
#include "jiwa/json.h"
#include "jiwa_config.h"
#include "jiwa_rt.h"
#include "jiwa_rt_int.h"
#include "llm_common/llm_codec.h"

#define CANARY "sk-canary-7f3e9a1c5b2d4e6f8a0b"

static const char *g_bin;
static char g_dir[512];
static pid_t g_pid;
static int g_port;
static jiwa_rt_t *g_rt;

/* ---- time ------------------------------------------------------------------ */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* ---- log capture (a bigger buffer than jt.h's: debug traces) ----------------- */

static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char *g_log;
static size_t g_log_len, g_log_cap;

static void log_sink(int level, const char *line, void *ud) {
  pthread_mutex_lock(&g_log_mu);
  size_t n = strlen(line);
  if (g_log_len + n + 2 > g_log_cap) {
    size_t cap = g_log_cap ? g_log_cap * 2 : 1 << 20;
    while (cap < g_log_len + n + 2)
      cap *= 2;
    char *p = realloc(g_log, cap);
    if (!p) {
      pthread_mutex_unlock(&g_log_mu);
      return;
    }
    g_log = p;
    g_log_cap = cap;
  }
  memcpy(g_log + g_log_len, line, n);
  g_log_len += n;
  g_log[g_log_len++] = '\n';
  g_log[g_log_len] = '\0';
  pthread_mutex_unlock(&g_log_mu);
}

/* ---- mockllm --------------------------------------------------------------------- */

static pid_t mock_spawn(int *port) {
  return jt_mockllm_start(g_bin, g_dir, "mock", NULL, 1, port);
}

static int mock_stop(pid_t pid) { return jt_mockllm_stop(pid, SIGTERM); }

/* One control request to mockllm; returns the body (free it). */
static char *mock_http(const char *method, const char *path, const char *body) {
  long status;
  int rc;
  char *b = jt_mockllm_http(g_port, method, path, body, &status, &rc);
  if (rc != 0 || status != 200)
    fail_msg("mockllm %s %s: curl %d, status %ld: %s", method, path, rc,
             status, b ? b : "");
  return b;
}

static void mock_reset(void) { free(mock_http("POST", "/_mock/reset", "{}")); }

static void mock_script(const char *route, const char *fault, int times) {
  char body[512];
  snprintf(body, sizeof body, "{\"route\":\"%s\",\"fault\":\"%s\"%s%.0d}",
           route, fault, times ? ",\"times\":" : "", times);
  free(mock_http("POST", "/_mock/script", body));
}

/* Provider requests mockllm saw on @p route since the last reset. */
static int64_t mock_count(const char *route) {
  char *js = mock_http("GET", "/_mock/stats", NULL);
  char *mp = NULL;
  size_t mplen = 0;
  assert_int_equal(jiwa_json_to_mp(js, strlen(js), NULL, &mp, &mplen, NULL), 0);
  char path[64];
  snprintf(path, sizeof path, "requests.%s", route);
  int64_t v = -1;
  assert_int_equal(llm_mp_int(mp, mplen, path, &v), 0);
  free(mp);
  free(js);
  return v;
}

/* The request log's last entry body for @p route, as JSON text (free). */
static char *mock_last_body(void) {
  char *js = mock_http("GET", "/_mock/requests", NULL);
  char *mp = NULL;
  size_t mplen = 0;
  assert_int_equal(jiwa_json_to_mp(js, strlen(js), NULL, &mp, &mplen, NULL), 0);
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, mp, mplen);
  assert_int_equal(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.type, JIWA_MP_ARRAY);
  assert_true(it.v.count > 0);
  for (uint32_t i = 0; i + 1 < it.v.count; i++)
    assert_int_equal(jiwa_mp_skip(&r), 0);
  jiwa_mp_reader_t b;
  assert_int_equal(jiwa_mp_map_find(r.p, jiwa_mp_reader_left(&r), "body", &b),
                   0);
  const uint8_t *start = b.p;
  assert_int_equal(jiwa_mp_skip(&b), 0);
  char *out = NULL;
  assert_int_equal(jiwa_mp_to_json(start, (size_t)(b.p - start), &out, NULL),
                   0);
  free(mp);
  free(js);
  return out;
}

/* A port where nothing listens. */
static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, (struct sockaddr *)&a, sizeof a);
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  close(fd);
  return ntohs(a.sin_port);
}

/* ---- the runtime --------------------------------------------------------------------- */

static void rt_open(void) {
  char state[600];
  snprintf(state, sizeof state, "%s/state", g_dir);
  mkdir(state, 0700);
  jiwa_rt_opts_t o;
  jiwa_rt_opts_default(&o);
  o.workers = 2;
  o.plugin_dir = getenv("JIWA_PLUGIN_OUT");
  o.state_dir = state;
  o.drain_timeout_ms = 5000;
  o.backoff_min_ms = 10;
  o.backoff_max_ms = 200;
  assert_int_equal(jiwa_rt_new(&g_rt, &o), 0);
}

static void rt_close(void) {
  assert_int_equal(jiwa_rt_stop(g_rt), 0);
  jiwa_rt_free(g_rt);
  g_rt = NULL;
}

/* Spawn plugin @p plugin as @p name with settings given as a Lua table;
 * "@P" in the text is replaced by mockllm's port. */
static void spawn(const char *name, const char *plugin, const char *lua) {
  char text[4096];
  size_t k = 0;
  for (const char *p = lua; *p && k + 8 < sizeof text; p++) {
    if (p[0] == '@' && p[1] == 'P') {
      k += (size_t)snprintf(text + k, sizeof text - k, "%d", g_port);
      p++;
    } else {
      text[k++] = *p;
    }
  }
  text[k] = '\0';
  void *mp = NULL;
  size_t mplen = 0;
  char err[600];
  if (jiwa_conf_table_to_mp(text, "test settings", &mp, &mplen, err,
                            sizeof err))
    fail_msg("settings: %s", err);
  int rc = jiwa_rt_spawn_plugin(g_rt, name, plugin, -1, mp, mplen, err,
                                sizeof err);
  free(mp);
  if (rc)
    fail_msg("spawn %s (%s): %s: %s", name, plugin, jiwa_err_name(rc), err);
}

/* ---- asks ------------------------------------------------------------------------------- */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int finals;
  int deltas;
  int deltas_after_final;
  char *dtext; /* deltas' text, concatenated */
  size_t dlen;
  jiwa_msg_kind_t kind;
  int code;
  char err[800];
  char *body; /* final body (msgpack copy) */
  size_t blen;
  uint64_t t0, t_final;
  uint64_t deadline; /* t0 + timeout */
} res_t;

static void res_init(res_t *r) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  r->dtext = calloc(1, 1);
}

static void res_free(res_t *r) {
  free(r->dtext);
  free(r->body);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
}

static void on_reply(const jiwa_msg_t *m, void *ud) {
  res_t *r = ud;
  pthread_mutex_lock(&r->mu);
  if (jiwa_msg_kind(m) == JIWA_MSG_DELTA) {
    if (r->finals)
      r->deltas_after_final++;
    r->deltas++;
    const char *s;
    size_t n;
    if (jiwa_msg_get_str(m, "text", &s, &n) == 0) {
      char *p = realloc(r->dtext, r->dlen + n + 1);
      if (p) {
        memcpy(p + r->dlen, s, n);
        r->dlen += n;
        p[r->dlen] = '\0';
        r->dtext = p;
      }
    }
  } else {
    r->finals++;
    if (r->finals == 1) {
      r->kind = jiwa_msg_kind(m);
      r->t_final = now_ms();
      if (r->kind == JIWA_MSG_ERROR) {
        const char *t = "";
        r->code = jiwa_msg_error(m, &t);
        snprintf(r->err, sizeof r->err, "%s", t ? t : "");
      } else {
        size_t n;
        const void *b = jiwa_msg_body(m, &n);
        r->body = malloc(n ? n : 1);
        memcpy(r->body, b, n);
        r->blen = n;
      }
    }
    pthread_cond_broadcast(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
}

static void ask_start(res_t *r, const char *actor, const char *type,
                      const char *json, uint32_t timeout_ms) {
  res_init(r);
  char *mp = NULL;
  size_t mplen = 0;
  jiwa_json_error_t je;
  if (jiwa_json_to_mp(json, strlen(json), NULL, &mp, &mplen, &je))
    fail_msg("bad test JSON: %s", je.msg);
  r->t0 = now_ms();
  r->deadline = r->t0 + timeout_ms;
  int rc = jiwa_rt_ask(g_rt, actor, type, mp, mplen, timeout_ms, on_reply, r);
  free(mp);
  assert_int_equal(rc, 0);
}

/* Wait for the final; it must come by the deadline + 1 s. */
static void ask_wait(res_t *r) {
  pthread_mutex_lock(&r->mu);
  while (!r->finals) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    if (!r->finals && now_ms() > r->deadline + 5000)
      break;
  }
  pthread_mutex_unlock(&r->mu);
  if (!r->finals)
    fail_msg("no final within the deadline + 5 s");
  if (r->t_final > r->deadline + 1000)
    fail_msg("final %llu ms after the deadline",
             (unsigned long long)(r->t_final - r->deadline));
}

/* No HTTP request of the runtime may outlive the deadline by more than 1 s
 * (wait that long for on_done of a cancelled transfer). Also: still only
 * one final, and no delta after it. */
static void assert_quiet(res_t *r) {
  jiwa_http_stats_t st;
  uint64_t limit = (r->deadline > r->t_final ? r->deadline : r->t_final) + 1000;
  for (;;) {
    assert_int_equal(jiwa__rt_http_stats(g_rt, &st), 0);
    if (st.active == 0 || now_ms() > limit)
      break;
    sleep_ms(5);
  }
  if (st.active != 0)
    fail_msg("%llu HTTP request(s) still active 1 s after the deadline",
             (unsigned long long)st.active);
  pthread_mutex_lock(&r->mu);
  int finals = r->finals, after = r->deltas_after_final;
  pthread_mutex_unlock(&r->mu);
  assert_int_equal(finals, 1);
  assert_int_equal(after, 0);
}

static void ask(res_t *r, const char *actor, const char *json,
                uint32_t timeout_ms) {
  ask_start(r, actor, "llm.complete", json, timeout_ms);
  ask_wait(r);
  assert_quiet(r);
}

static const char *fstr(res_t *r, const char *path, char *buf, size_t cap) {
  const char *s = "";
  size_t n = 0;
  if (!r->body || llm_mp_str(r->body, r->blen, path, &s, &n) != 0)
    fail_msg("final has no string '%s' (%s)", path,
             r->kind == JIWA_MSG_ERROR ? r->err : "reply");
  snprintf(buf, cap, "%.*s", (int)n, s);
  return buf;
}

static int64_t fint(res_t *r, const char *path) {
  int64_t v = -1;
  if (!r->body || llm_mp_int(r->body, r->blen, path, &v) != 0)
    fail_msg("final has no integer '%s'", path);
  return v;
}

#define assert_ok(r)                                                           \
  do {                                                                         \
    if ((r)->kind != JIWA_MSG_REPLY)                                           \
      fail_msg("expected a reply, got %s: %s", jiwa_err_name((r)->code),     \
               (r)->err);                                                      \
  } while (0)

#define assert_err(r, c, needle)                                               \
  do {                                                                         \
    if ((r)->kind != JIWA_MSG_ERROR)                                           \
      fail_msg("expected %s, got a reply", jiwa_err_name(c));                 \
    if ((r)->code != (c))                                                      \
      fail_msg("expected %s, got %s: %s", jiwa_err_name(c),                   \
               jiwa_err_name((r)->code), (r)->err);                            \
    jt_assert_contains((r)->err, needle);                                      \
  } while (0)

/* A streamed answer: deltas, then one final whose text is their
 * concatenation, with usage and model filled. */
static void assert_streamed(res_t *r, const char *model, const char *provider) {
  char buf[4096];
  assert_ok(r);
  assert_true(r->deltas >= 1);
  fstr(r, "text", buf, sizeof buf);
  assert_string_equal(buf, r->dtext);
  assert_true(strlen(buf) > 0);
  assert_string_equal(fstr(r, "model", buf, sizeof buf), model);
  assert_string_equal(fstr(r, "provider", buf, sizeof buf), provider);
  assert_true(fint(r, "usage.output_tokens") > 0);
  assert_int_equal(fint(r, "deltas"), r->deltas);
}

/* ---- settings ------------------------------------------------------------------------------ */

static const char *anth_cfg =
    "{ endpoint = 'http://127.0.0.1:@P', model = 'claude-x', "
    "  api_key_env = 'JIWA_TEST_CANARY_KEY', persona = 'Kamu Jiwa, asisten "
    "ramah.', backoff_base_ms = 10, backoff_max_ms = 50, "
    "  retry_after_max_ms = 200, ttfb_timeout_ms = 600, "
    "  low_speed_secs = 1, breaker_failures = 0 }";

static const char *oai_cfg =
    "{ endpoint = 'http://127.0.0.1:@P/v1', model = 'llama-x', "
    "  api_key_env = 'JIWA_TEST_CANARY_KEY', persona = 'Kamu Jiwa.', "
    "  backoff_base_ms = 10, backoff_max_ms = 50, retry_after_max_ms = 200, "
    "  ttfb_timeout_ms = 600, low_speed_secs = 1, breaker_failures = 0 }";

static const char *chat_stream =
    "{\"messages\":[{\"role\":\"user\",\"content\":\"Berapa lama KITAS?\"}],"
    "\"stream\":true}";
static const char *chat_plain =
    "{\"messages\":[{\"role\":\"user\",\"content\":\"Berapa lama KITAS?\"}]}";

/* ---- tests: success ------------------------------------------------------------------------ */

static void test_anthropic_success(void **state) {
  rt_open();
  spawn("claude", "anthropic", anth_cfg);
  mock_reset();
  res_t r;
  char buf[4096];

  ask(&r, "claude",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"Berapa lama "
      "KITAS?\"}],\"stream\":true,\"context\":\"[malu] be gentle\","
      "\"system\":\"Jawab singkat.\",\"lang\":\"id\"}",
      10000);
  assert_streamed(&r, "claude-x", "anthropic");
  assert_true(r.deltas >= 2);
  jt_assert_contains(fstr(&r, "text", buf, sizeof buf), "Berapa lama KITAS?");
  /* the persona comes first in the system prompt */
  jt_assert_contains(buf, "Context seen: \"Kamu Jiwa, asisten ramah.");
  assert_true(fint(&r, "usage.input_tokens") > 0);
  assert_int_equal(fint(&r, "attempts"), 1);
  assert_string_equal(fstr(&r, "finish_reason", buf, sizeof buf), "end_turn");
  res_free(&r);
  char *body = mock_last_body();
  jt_assert_contains(body, "\"system\":\"Kamu Jiwa, asisten ramah.\\n\\nJawab "
                           "singkat.\\n\\n## Context\\n[malu] be gentle");
  jt_assert_contains(body, "Reply in Indonesian");
  jt_assert_contains(body, "\"max_tokens\":1024");
  jt_assert_contains(body, "\"stream\":true");
  free(body);

  /* not streamed to the asker: no delta, the same text */
  ask(&r, "claude", chat_plain, 10000);
  assert_ok(&r);
  assert_int_equal(r.deltas, 0);
  jt_assert_contains(fstr(&r, "text", buf, sizeof buf),
                     "[mock claude-x] You asked: \"Berapa lama KITAS?\"");
  assert_true(fint(&r, "usage.output_tokens") > 0);
  res_free(&r);
  assert_int_equal(mock_count("anthropic"), 2);
  rt_close();

  /* a non-streamed upstream request (upstream_stream = false) */
  rt_open();
  spawn("claude", "anthropic",
        "{ endpoint = 'http://127.0.0.1:@P', model = 'claude-x', "
        "upstream_stream = false, preset = 'PIKIRAN' }");
  ask(&r, "claude", chat_plain, 10000);
  assert_ok(&r);
  assert_int_equal(r.deltas, 0);
  jt_assert_contains(fstr(&r, "text", buf, sizeof buf), "[mock claude-x]");
  assert_true(fint(&r, "usage.input_tokens") > 0);
  assert_string_equal(fstr(&r, "preset", buf, sizeof buf), "PIKIRAN");
  res_free(&r);
  body = mock_last_body();
  jt_assert_contains(body, "\"stream\":false");
  jt_assert_contains(body, "\"max_tokens\":1200");
  jt_assert_contains(body, "\"temperature\":0.4");
  free(body);
  /* the request's preset wins over the instance's, its max_tokens over both */
  ask(&r, "claude",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
      "\"preset\":\"SANTAI\"}",
      10000);
  assert_ok(&r);
  res_free(&r);
  body = mock_last_body();
  jt_assert_contains(body, "\"max_tokens\":300");
  jt_assert_contains(body, "\"temperature\":0.8");
  free(body);
  ask(&r, "claude",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
      "\"preset\":\"SANTAI\",\"max_tokens\":7}",
      10000);
  assert_ok(&r);
  /* mockllm cuts the reply after 7 words */
  assert_string_equal(fstr(&r, "finish_reason", buf, sizeof buf), "max_tokens");
  res_free(&r);
  body = mock_last_body();
  jt_assert_contains(body, "\"max_tokens\":7,");
  free(body);
  rt_close();
}

static void test_openai_success(void **state) {
  rt_open();
  spawn("llama", "openai", oai_cfg);
  mock_reset();
  res_t r;
  char buf[4096];
  ask(&r, "llama", chat_stream, 10000);
  assert_streamed(&r, "llama-x", "openai");
  assert_true(fint(&r, "usage.input_tokens") > 0);
  assert_string_equal(fstr(&r, "finish_reason", buf, sizeof buf), "stop");
  jt_assert_contains(fstr(&r, "text", buf, sizeof buf),
                     "[mock llama-x] You asked: \"Berapa lama KITAS?\". "
                     "Context seen: \"Kamu Jiwa.\"");
  res_free(&r);
  char *body = mock_last_body();
  jt_assert_contains(body, "{\"role\":\"system\",\"content\":\"Kamu Jiwa.\"}");
  jt_assert_contains(body, "\"include_usage\":true");
  free(body);

  ask(&r, "llama", chat_plain, 10000);
  assert_ok(&r);
  assert_int_equal(r.deltas, 0);
  res_free(&r);
  rt_close();

  /* the JSON (non-stream) path, and a chat request from the policy's
   * fallback route ({text}) */
  rt_open();
  spawn("llama", "openai",
        "{ endpoint = 'http://127.0.0.1:@P/v1', model = 'llama-x', "
        "upstream_stream = false, max_tokens_field = 'max_completion_tokens' "
        "}");
  ask(&r, "llama", "{\"text\":\"Selamat pagi\",\"user\":\"made\"}", 10000);
  assert_ok(&r);
  jt_assert_contains(fstr(&r, "text", buf, sizeof buf),
                     "You asked: \"Selamat pagi\"");
  assert_true(fint(&r, "usage.output_tokens") > 0);
  res_free(&r);
  body = mock_last_body();
  jt_assert_contains(body, "\"max_completion_tokens\":1024");
  free(body);
  rt_close();
}

static void test_runpod(void **state) {
  rt_open();
  spawn("rp", "runpod",
        "{ endpoint = 'http://127.0.0.1:@P/v2', endpoint_id = 'ep-llama', "
        "  api_key_env = 'JIWA_TEST_CANARY_KEY' }");
  spawn("rpa", "runpod",
        "{ endpoint = 'http://127.0.0.1:@P/v2', endpoint_id = 'ep-llama', "
        "  mode = 'run', poll_ms = 20, input = 'prompt' }");
  mock_reset();
  res_t r;
  char buf[4096];
  /* runsync, streamed: the whole answer as one delta */
  ask(&r, "rp", chat_stream, 10000);
  assert_streamed(&r, "ep-llama", "runpod");
  assert_int_equal(r.deltas, 1);
  jt_assert_contains(fstr(&r, "text", buf, sizeof buf),
                     "You asked: \"Berapa lama KITAS?\"");
  assert_true(fint(&r, "usage.input_tokens") > 0);
  res_free(&r);
  assert_int_equal(mock_count("runpod"), 1);

  /* /run + /status polls (mockllm: 2 polls in progress, then done) */
  mock_reset();
  ask(&r, "rpa", chat_plain, 10000);
  assert_ok(&r);
  assert_int_equal(r.deltas, 0);
  jt_assert_contains(fstr(&r, "text", buf, sizeof buf), "KITAS");
  assert_int_equal(fint(&r, "attempts"), 1);
  res_free(&r);
  assert_int_equal(mock_count("runpod"), 4); /* run + 3 status */

  /* a job that never finishes in time: ETIMEDOUT by the deadline, then a
   * cancel goes upstream */
  mock_reset();
  mock_script("runpod", "polls=100000", 1);
  ask(&r, "rpa", chat_plain, 600);
  assert_err(&r, JIWA_ETIMEDOUT, "runpod: no complete answer within");
  res_free(&r);
  /* a 5xx run is retried, then works */
  mock_reset();
  mock_script("runpod", "status=502,fail_times=1", 0);
  ask(&r, "rp", chat_plain, 10000);
  assert_ok(&r);
  assert_int_equal(fint(&r, "attempts"), 2);
  res_free(&r);
  rt_close();
}

static void test_huggingface(void **state) {
  rt_open();
  spawn("tgi", "huggingface",
        "{ endpoint = 'http://127.0.0.1:@P', mode = 'tgi', model = 'tgi', "
        "  persona = 'Kamu Jiwa.' }");
  spawn("hfi", "huggingface",
        "{ endpoint = 'http://127.0.0.1:@P', model = 'org/model-7b', "
        "  api_key_env = 'JIWA_TEST_CANARY_KEY' }");
  mock_reset();
  res_t r;
  char buf[4096];
  ask(&r, "tgi", chat_stream, 10000);
  assert_streamed(&r, "tgi", "huggingface");
  assert_true(r.deltas >= 2);
  jt_assert_contains(fstr(&r, "text", buf, sizeof buf), "[mock tgi]");
  res_free(&r);
  char *body = mock_last_body();
  jt_assert_contains(body, "\"inputs\":\"Kamu Jiwa.\\n\\nUser: Berapa lama "
                           "KITAS?\\nAssistant:\"");
  jt_assert_contains(body, "\"return_full_text\":false");
  free(body);

  /* the Inference API, streamed and not */
  ask(&r, "hfi", chat_stream, 10000);
  assert_ok(&r);
  assert_true(r.deltas >= 1);
  assert_string_equal(fstr(&r, "text", buf, sizeof buf), r.dtext);
  jt_assert_contains(buf, "[mock org/model-7b]");
  res_free(&r);
  ask(&r, "hfi", chat_plain, 10000);
  assert_ok(&r);
  assert_int_equal(r.deltas, 0);
  jt_assert_contains(fstr(&r, "text", buf, sizeof buf), "[mock org/model-7b]");
  /* return_full_text false: the reply, not the prompt */
  assert_true(strncmp(buf, "[mock", 5) == 0);
  res_free(&r);
  /* in-stream error before any token: EUPSTREAM, one final */
  mock_script("hf", "error_after=0", 1);
  ask(&r, "tgi", chat_stream, 10000);
  assert_err(&r, JIWA_EUPSTREAM, "huggingface: upstream error in stream");
  res_free(&r);
  rt_close();
}

static void test_bad_requests(void **state) {
  rt_open();
  spawn("claude", "anthropic", anth_cfg);
  res_t r;
  ask(&r, "claude", "{\"messages\":[]}", 5000);
  assert_err(&r, JIWA_EINVAL, "at least one user or assistant message");
  res_free(&r);
  ask(&r, "claude", "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
      5000);
  assert_err(&r, JIWA_EINVAL, "messages[1].role");
  res_free(&r);
  ask(&r, "claude",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
      "\"preset\":\"CEPAT\"}",
      5000);
  assert_err(&r, JIWA_EINVAL, "preset");
  res_free(&r);
  ask_start(&r, "claude", "llm.embed", "{}", 5000);
  ask_wait(&r);
  assert_err(&r, JIWA_ENOTSUP, "answers llm.complete");
  res_free(&r);
  ask_start(&r, "claude", "llm.health", "{}", 5000);
  ask_wait(&r);
  assert_ok(&r);
  char buf[64];
  assert_string_equal(fstr(&r, "breaker.state", buf, sizeof buf), "closed");
  res_free(&r);
  rt_close();

  /* bad instance configs are refused at init */
  rt_open();
  char err[600];
  void *mp = NULL;
  size_t mplen = 0;
  assert_int_equal(jiwa_conf_table_to_mp("{ preset = 'TURBO' }", "t", &mp,
                                         &mplen, err, sizeof err),
                   0);
  int rc = jiwa_rt_spawn_plugin(g_rt, "bad", "anthropic", -1, mp, mplen, err,
                                sizeof err);
  free(mp);
  assert_int_equal(rc, JIWA_EPLUGIN);
  assert_int_equal(jiwa_conf_table_to_mp("{ api_key_env = 'sk-ant-pasted' }",
                                         "t", &mp, &mplen, err, sizeof err),
                   0);
  rc = jiwa_rt_spawn_plugin(g_rt, "bad2", "anthropic", -1, mp, mplen, err,
                            sizeof err);
  free(mp);
  assert_int_equal(rc, JIWA_ECONFIG);
  rt_close();
}

/* ---- the fault matrix ----------------------------------------------------------------------- */

typedef enum { OK, ERR } want_t;

typedef struct {
  const char *fault; /* mockllm fault spec, "" = healthy */
  int times;         /* script entry times (0 = until cleared) */
  want_t want;
  int code;             /* expected error code */
  const char *needle;   /* in the error text */
  int64_t requests;     /* provider requests mockllm must see; -1 = any,
                           below -1: at most -requests */
  int64_t attempts;     /* in the final (OK); -1 = any */
  int min_deltas;       /* deltas that must have arrived */
  uint32_t timeout_ms;  /* ask deadline */
} fault_case_t;

static void run_matrix(const char *actor, const char *route,
                       const fault_case_t *cases, size_t n) {
  char normal[4096];
  res_t r;
  mock_reset();
  ask(&r, actor, chat_stream, 10000);
  assert_ok(&r);
  fstr(&r, "text", normal, sizeof normal);
  res_free(&r);
  for (size_t i = 0; i < n; i++) {
    const fault_case_t *fc = &cases[i];
    mock_reset();
    if (fc->fault[0])
      mock_script(route, fc->fault, fc->times);
    ask(&r, actor, chat_stream, fc->timeout_ms ? fc->timeout_ms : 10000);
    char label[200];
    snprintf(label, sizeof label, "%s [%s]", actor, fc->fault);
    if (fc->want == OK) {
      if (r.kind != JIWA_MSG_REPLY)
        fail_msg("%s: expected a reply, got %s: %s", label,
                 jiwa_err_name(r.code), r.err);
      char buf[4096];
      /* byte splits, line ends, comments, big lines: the very same text */
      if (strcmp(fstr(&r, "text", buf, sizeof buf), normal) != 0)
        fail_msg("%s: text differs:\n%s\nvs\n%s", label, buf, normal);
      if (strcmp(buf, r.dtext) != 0)
        fail_msg("%s: final text is not the deltas' concatenation", label);
      if (fc->attempts >= 0 && fint(&r, "attempts") != fc->attempts)
        fail_msg("%s: %lld attempts, want %lld", label,
                 (long long)fint(&r, "attempts"), (long long)fc->attempts);
    } else {
      if (r.kind != JIWA_MSG_ERROR || r.code != fc->code ||
          !strstr(r.err, fc->needle))
        fail_msg("%s: want %s \"%s\", got %s: %s", label,
                 jiwa_err_name(fc->code), fc->needle,
                 r.kind == JIWA_MSG_ERROR ? jiwa_err_name(r.code) : "a reply",
                 r.err);
      /* partial output is never passed off as complete */
      if (r.deltas > 0 && !strstr(r.err, "answer incomplete"))
        fail_msg("%s: %d deltas then an error that does not say the answer "
                 "is incomplete: %s",
                 label, r.deltas, r.err);
    }
    if (r.deltas < fc->min_deltas)
      fail_msg("%s: %d deltas, want at least %d", label, r.deltas,
               fc->min_deltas);
    if (fc->requests != -1) {
      int64_t seen = mock_count(route);
      if (fc->requests < -1 ? seen > -fc->requests || seen < 1
                            : seen != fc->requests)
        fail_msg("%s: mockllm saw %lld requests, want %lld", label,
                 (long long)seen, (long long)fc->requests);
    }
    res_free(&r);
  }
}

#define E(f, t, code, needle, req, mind, to)                                   \
  {f, t, ERR, code, needle, req, -1, mind, to}
#define S(f, t, req, att) {f, t, OK, 0, "", req, att, 1, 0}

static void test_fault_matrix(void **state) {
  rt_open();
  spawn("claude", "anthropic", anth_cfg);
  spawn("llama", "openai", oai_cfg);
  static const fault_case_t common[] = {
      S("latency=150", 0, 1, 1),
      S("status=429,retry_after=1,fail_times=2", 0, 3, 3), /* capped 200 ms */
      S("status=429,fail_times=1", 0, 2, 2),
      S("status=500,fail_times=2", 0, 3, 3),
      E("status=503", 0, JIWA_EUPSTREAM, "upstream unavailable (503) after 3 "
                                         "attempts", 3, 0, 0),
      E("status=400", 0, JIWA_EUPSTREAM, "request rejected (400)", 1, 0, 0),
      E("status=401", 0, JIWA_EPERM, "key refused (401)", 1, 0, 0),
      /* curl itself resends once when a *pooled* connection dies before
       * any response byte (it may have been closed while idle): at most 2 */
      E("refuse", 0, JIWA_EUPSTREAM, "connection reset", -2, 0, 0),
      E("silence", 0, JIWA_ETIMEDOUT, "no response in time", 1, 0, 0),
      E("stall_after_headers", 0, JIWA_ETIMEDOUT, "upstream stalled", 1, 0,
        0),
      E("reset_after=0", 0, JIWA_EUPSTREAM, "connection reset", 1, 0, 0),
      /* a RST may overtake data the client has not read yet: 0..2 deltas */
      E("reset_after=2", 0, JIWA_EUPSTREAM, "connection reset", 1, 0, 0),
      S("split=1", 0, 1, 1),
      S("split=1,eol=crlf", 0, 1, 1),
      S("eol=cr", 0, 1, 1),
      S("eol=crlf,comments=1", 0, 1, 1),
      S("comments=1,delta_ms=5", 0, 1, 1),
      E("malformed=1", 0, JIWA_EPROTO, "stream broke after 1 deltas (malformed "
                                       "JSON", 1, 1, 0),
      S("bigline=2097152", 0, 1, 1),
      E("endless=1", 0, JIWA_ETIMEDOUT,
        "stream broke after", 1, 1, 1200),
      /* retryable for anthropic (overloaded), but output was forwarded */
      E("error_after=2", 0, JIWA_EUPSTREAM,
        "stream broke after 2 deltas (upstream error in stream", 1, 2, 0),
      E("latency=3000", 0, JIWA_ETIMEDOUT, "no response in time", 1, 0, 800),
  };
  run_matrix("claude", "anthropic", common, sizeof common / sizeof *common);
  run_matrix("llama", "openai", common, sizeof common / sizeof *common);

  /* Anthropic's overloaded answers: 529 and the in-stream error event
   * before any delta are both retried */
  static const fault_case_t anth[] = {
      E("status=529", 0, JIWA_EUPSTREAM,
        "anthropic: upstream overloaded (529) after 3 attempts", 3, 0, 0),
      S("status=529,fail_times=2", 0, 3, 3),
      S("error_after=0,fail_times=1", 0, 2, 2),
      E("error_after=0", 0, JIWA_EUPSTREAM, "Overloaded (overloaded_error) "
                                            "after 3 attempts", 3, 0, 0),
  };
  run_matrix("claude", "anthropic", anth, sizeof anth / sizeof *anth);
  rt_close();

  /* connection refused (nothing listens): retried, then a clear error */
  rt_open();
  char cfg[512];
  snprintf(cfg, sizeof cfg,
           "{ endpoint = 'http://127.0.0.1:%d', model = 'claude-x', "
           "backoff_base_ms = 10, backoff_max_ms = 20 }",
           dead_port());
  spawn("claude", "anthropic", cfg);
  res_t r;
  ask(&r, "claude", chat_stream, 10000);
  assert_err(&r, JIWA_EUPSTREAM, "anthropic: cannot connect");
  jt_assert_contains(r.err, "after 3 attempts");
  res_free(&r);
  /* a response over max_response_bytes ends cleanly, not retried */
  spawn("small", "openai",
        "{ endpoint = 'http://127.0.0.1:@P/v1', model = 'm', "
        "max_response_bytes = 1048576 }");
  mock_reset();
  mock_script("openai", "bigline=2097152", 0);
  ask(&r, "small", chat_stream, 10000);
  assert_int_equal(r.kind, JIWA_MSG_ERROR);
  assert_int_equal(r.code, JIWA_ETOOBIG);
  jt_assert_contains(r.err, "answer incomplete");
  res_free(&r);
  assert_int_equal(mock_count("openai"), 1);
  rt_close();
}

/* ---- the circuit breaker -------------------------------------------------------------------- */

static void test_breaker(void **state) {
  rt_open();
  spawn("claude", "anthropic",
        "{ endpoint = 'http://127.0.0.1:@P', model = 'claude-x', retries = 1, "
        "  breaker_failures = 2, breaker_open_ms = 700, "
        "  breaker_open_max_ms = 5000 }");
  mock_reset();
  mock_script("anthropic", "status=503", 0);
  res_t r;
  for (int i = 0; i < 2; i++) {
    ask(&r, "claude", chat_stream, 5000);
    assert_err(&r, JIWA_EUPSTREAM, "upstream unavailable (503)");
    res_free(&r);
  }
  /* open: fail fast, nothing goes upstream */
  for (int i = 0; i < 3; i++) {
    ask(&r, "claude", chat_stream, 5000);
    assert_err(&r, JIWA_EDOWN, "anthropic: circuit open until");
    jt_assert_contains(r.err, "upstream unavailable (503)");
    res_free(&r);
  }
  assert_int_equal(mock_count("anthropic"), 2);

  /* after the window: of several requests at once, exactly one probes */
  sleep_ms(800);
  mock_script("anthropic", "latency=200", 0); /* keep the probe in flight */
  res_t rs[4];
  for (int i = 0; i < 4; i++)
    ask_start(&rs[i], "claude", "llm.complete", chat_stream, 5000);
  int downs = 0, upstream = 0;
  for (int i = 0; i < 4; i++) {
    ask_wait(&rs[i]);
    assert_quiet(&rs[i]);
    assert_int_equal(rs[i].kind, JIWA_MSG_ERROR);
    if (rs[i].code == JIWA_EDOWN)
      downs++;
    else if (rs[i].code == JIWA_EUPSTREAM)
      upstream++;
    res_free(&rs[i]);
  }
  assert_int_equal(upstream, 1);
  assert_int_equal(downs, 3);
  assert_int_equal(mock_count("anthropic"), 3);

  /* the failed probe doubled the window (700 → 1400 ms) */
  ask_start(&r, "claude", "llm.health", "{}", 5000);
  ask_wait(&r);
  assert_int_equal(fint(&r, "breaker.window_ms"), 1400);
  assert_int_equal(fint(&r, "breaker.opened"), 2);
  res_free(&r);
  sleep_ms(800); /* still open */
  ask(&r, "claude", chat_stream, 5000);
  assert_err(&r, JIWA_EDOWN, "circuit open");
  res_free(&r);
  assert_int_equal(mock_count("anthropic"), 3);

  /* healthy again: after the window the probe succeeds and closes it */
  free(mock_http("DELETE", "/_mock/script", NULL));
  sleep_ms(700);
  ask(&r, "claude", chat_stream, 5000);
  assert_ok(&r);
  res_free(&r);
  for (int i = 0; i < 3; i++) {
    ask(&r, "claude", chat_plain, 5000);
    assert_ok(&r);
    res_free(&r);
  }
  ask_start(&r, "claude", "llm.health", "{}", 5000);
  ask_wait(&r);
  char buf[64];
  assert_string_equal(fstr(&r, "breaker.state", buf, sizeof buf), "closed");
  assert_int_equal(fint(&r, "breaker.window_ms"), 700);
  assert_int_equal(fint(&r, "breaker.probes"), 2);
  res_free(&r);
  rt_close();
}

/* ---- fallback through the policy engine -------------------------------------------------------- */

static void chat(res_t *r, const char *json) {
  ask_start(r, "router", "chat", json, 15000);
  ask_wait(r);
  assert_quiet(r);
}

static void test_fallback(void **state) {
  rt_open();
  spawn("claude", "anthropic",
        "{ endpoint = 'http://127.0.0.1:@P', model = 'claude-x', retries = 2, "
        "  backoff_base_ms = 10 }");
  spawn("llama", "openai",
        "{ endpoint = 'http://127.0.0.1:@P/v1', model = 'llama-x' }");
  char lua[1024];
  snprintf(lua, sizeof lua,
           "{ file = '%s/scripts/policies/hybrid.lua', fallback_actor = "
           "'llama', ask_timeout_ms = 2000, vars = { main_model = 'claude', secondary_model = "
           "'llama', persona = 'Kamu Jiwa.' } }",
           getenv("JIWA_SOURCE_DIR"));
  spawn("router", "policy", lua);
  const char *req = "{\"text\":\"Berapa lama KITAS?\",\"lang\":\"id\","
                    "\"stream\":true,\"user\":\"made\"}";
  char buf[4096];
  res_t r;

  /* healthy: claude answers */
  mock_reset();
  chat(&r, req);
  assert_ok(&r);
  jt_assert_contains(fstr(&r, "text", buf, sizeof buf), "[mock claude-x]");
  assert_true(r.deltas > 0);
  res_free(&r);

  const char *faults[] = {"status=529", "reset_after=0", "error_after=0",
                          "silence"};
  for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
    mock_reset();
    mock_script("anthropic", faults[i], 0);
    chat(&r, req);
    if (r.kind != JIWA_MSG_REPLY)
      fail_msg("[%s] expected the fallback's answer, got %s: %s", faults[i],
               jiwa_err_name(r.code), r.err);
    fstr(&r, "text", buf, sizeof buf);
    if (!strstr(buf, "[mock llama-x]"))
      fail_msg("[%s] answer not from llama: %s", faults[i], buf);
    /* only llama's deltas reached the client */
    assert_string_equal(r.dtext, buf);
    assert_true(mock_count("openai") == 1);
    res_free(&r);
  }
  rt_close();
}

/* ---- deadlines ------------------------------------------------------------------------------------ */

static void test_deadline(void **state) {
  rt_open();
  /* every provider deadline is longer than the ask's: the ask's wins */
  spawn("claude", "anthropic",
        "{ endpoint = 'http://127.0.0.1:@P', model = 'claude-x', "
        "ttfb_timeout_ms = 60000, low_speed_secs = 0 }");
  spawn("llama", "openai",
        "{ endpoint = 'http://127.0.0.1:@P/v1', model = 'llama-x', "
        "ttfb_timeout_ms = 60000, low_speed_secs = 0 }");
  const char *faults[] = {"silence", "stall_after_headers", "endless=1",
                          "latency=5000"};
  const char *who[] = {"claude", "llama"};
  const char *route[] = {"anthropic", "openai"};
  for (size_t w = 0; w < 2; w++)
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
      mock_reset();
      mock_script(route[w], faults[i], 0);
      res_t r;
      ask(&r, who[w], chat_stream, 700);
      if (r.kind != JIWA_MSG_ERROR || r.code != JIWA_ETIMEDOUT)
        fail_msg("%s [%s]: want ETIMEDOUT, got %s: %s", who[w], faults[i],
                 r.kind == JIWA_MSG_ERROR ? jiwa_err_name(r.code) : "a reply",
                 r.err);
      /* the provider's own text, not the runtime's generic one */
      jt_assert_contains(r.err, route[w]);
      res_free(&r);
    }
  /* a Retry-After beyond the deadline: fail now, so a fallback has time */
  {
    mock_reset();
    mock_script("anthropic", "status=503,retry_after=30", 0);
    res_t r;
    ask(&r, "claude", chat_stream, 3000);
    assert_err(&r, JIWA_EUPSTREAM, "no time left for a retry");
    res_free(&r);
    assert_int_equal(mock_count("anthropic"), 1);
  }
  /* total_timeout_ms bounds a call whose ask deadline is far away */
  spawn("quick", "anthropic",
        "{ endpoint = 'http://127.0.0.1:@P', model = 'claude-x', "
        "total_timeout_ms = 500, ttfb_timeout_ms = 60000 }");
  mock_reset();
  mock_script("anthropic", "silence", 0);
  res_t r;
  ask_start(&r, "quick", "llm.complete", chat_stream, 30000);
  ask_wait(&r);
  assert_err(&r, JIWA_ETIMEDOUT, "anthropic:");
  assert_true(r.t_final - r.t0 < 1500);
  r.deadline = r.t0 + 500;
  assert_quiet(&r);
  res_free(&r);
  rt_close();
}

/* ---- secrets ----------------------------------------------------------------------------------------- */

static void test_canary(void **state) {
  pthread_mutex_lock(&g_log_mu);
  g_log_len = 0;
  if (g_log)
    g_log[0] = '\0';
  pthread_mutex_unlock(&g_log_mu);
  jiwa_log_setup(JIWA_LOG_DEBUG, 0);
  jiwa_log_set_sink(log_sink, NULL);
  rt_open();
  spawn("claude", "anthropic", anth_cfg);
  spawn("llama", "openai", oai_cfg);
  spawn("rp", "runpod",
        "{ endpoint = 'http://127.0.0.1:@P/v2', endpoint_id = 'ep', "
        "  api_key_env = 'JIWA_TEST_CANARY_KEY', mode = 'run', poll_ms = 10 }");
  spawn("hf", "huggingface",
        "{ endpoint = 'http://127.0.0.1:@P', model = 'm', "
        "  api_key_env = 'JIWA_TEST_CANARY_KEY' }");
  const char *actors[] = {"claude", "llama", "rp", "hf"};
  const char *routes[] = {"anthropic", "openai", "runpod", "hf"};
  const char *faults[] = {"", "status=401", "status=500,fail_times=1",
                          "reset_after=1", "malformed=1", "silence"};
  /* replies, error texts and stats are collected into one haystack */
  size_t cap = 1 << 20, len = 0;
  char *hay = calloc(1, cap);
  for (size_t a = 0; a < 4; a++)
    for (size_t f = 0; f < sizeof faults / sizeof *faults; f++) {
      mock_reset();
      if (faults[f][0])
        mock_script(routes[a], faults[f], 0);
      res_t r;
      ask(&r, actors[a], chat_stream, 1500);
      char *js = NULL;
      if (r.body)
        jiwa_mp_to_json(r.body, r.blen, &js, NULL);
      len += (size_t)snprintf(hay + len, cap - len, "%s\n%s\n%s\n", r.err,
                              js ? js : "", r.dtext);
      free(js);
      res_free(&r);
      /* the key was sent (mockllm records which header, never its value) */
      if (!faults[f][0]) {
        char *log = mock_http("GET", "/_mock/requests", NULL);
        if (!strstr(log, a == 0 ? "\"auth\":\"x-api-key\"" : "\"auth\":\"bearer\""))
          fail_msg("%s sent no key: %s", actors[a], log);
        free(log);
      }
    }
  for (size_t a = 0; a < 4; a++) {
    res_t r;
    ask_start(&r, actors[a], "llm.health", "{}", 5000);
    ask_wait(&r);
    char *js = NULL;
    jiwa_mp_to_json(r.body, r.blen, &js, NULL);
    len += (size_t)snprintf(hay + len, cap - len, "%s\n", js ? js : "");
    free(js);
    res_free(&r);
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  assert_int_equal(jiwa_rt_stats(g_rt, &w.pk), 0);
  char *js = NULL;
  assert_int_equal(jiwa_mp_to_json(w.sbuf.data, w.sbuf.size, &js, NULL), 0);
  jiwa_mp_writer_free(&w);
  jt_assert_contains(js, "llm_requests");
  len += (size_t)snprintf(hay + len, cap - len, "%s\n", js);
  free(js);
  rt_close();
  jiwa_log_set_sink(NULL, NULL);
  jiwa_log_setup(JIWA_LOG_INFO, 0);

  char *mlog = mock_http("GET", "/_mock/requests", NULL);
  pthread_mutex_lock(&g_log_mu);
  /* the debug trace did run, and redacted the headers */
  jt_assert_contains(g_log, "[redacted]");
  jt_assert_contains(g_log, "anthropic");
  if (strstr(g_log, CANARY))
    fail_msg("the canary key is in the logs");
  pthread_mutex_unlock(&g_log_mu);
  if (strstr(hay, CANARY))
    fail_msg("the canary key is in a reply, an error or the stats:\n%s", hay);
  if (strstr(mlog, CANARY))
    fail_msg("the canary key is in mockllm's request log");
  /* and the haystack is real: it holds the error texts */
  jt_assert_contains(hay, "key refused (401)");
  free(mlog);
  free(hay);
}

/* ---- main ------------------------------------------------------------------------------------------------ */

static int group_setup(void **state) {
  const char *t = getenv("TMPDIR");
  snprintf(g_dir, sizeof g_dir, "%s/jiwa-providers-XXXXXX",
           t && *t ? t : "/tmp");
  if (!mkdtemp(g_dir))
    return -1;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  setenv("JIWA_TEST_CANARY_KEY", CANARY, 1);
  jiwa_log_setup(JIWA_LOG_WARN, 0);
  g_pid = mock_spawn(&g_port);
  return g_pid > 0 && g_port > 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  int st = mock_stop(g_pid);
  curl_global_cleanup();
  free(g_log);
  if (st != 0) {
    fprintf(stderr, "mockllm exited with %d (log in %s/mock.log)\n", st,
            g_dir);
    return -1;
  }
  jt_rmtree(g_dir);
  return 0;
}

int main(int argc, char **argv) {
  g_bin = argc > 1 ? argv[1] : getenv("JIWA_MOCKLLM");
  if (!g_bin) {
    fprintf(stderr, "usage: test_providers MOCKLLM_BINARY\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_anthropic_success),
      cmocka_unit_test(test_openai_success),
      cmocka_unit_test(test_runpod),
      cmocka_unit_test(test_huggingface),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_fault_matrix),
      cmocka_unit_test(test_breaker),
      cmocka_unit_test(test_fallback),
      cmocka_unit_test(test_deadline),
      cmocka_unit_test(test_canary),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
