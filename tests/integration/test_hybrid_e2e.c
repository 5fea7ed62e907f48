/* The hybrid chat end to end (issue 7): jiwad runs the shipped
 * config/jiwa.lua (two policy routers with hybrid.lua, claude = anthropic
 * and llama = openai on tools/mockllm, golden_cache and cultural_rag seeded
 * from config/knowledge) with only the mock port, the repository root, the
 * plugin dir and a private state dir changed, as test_jiwad.sh does.
 * Chats go through the client library (and once through the `jiwa` CLI);
 * mockllm's request log (/_mock/requests, /_mock/stats) says what reached
 * the providers.
 *
 *  - the cultural context reaches the provider's system prompt
 *    ("aku malu bertanya tentang visa"), in three languages, and a plain
 *    factual question gets none;
 *  - a golden hit (exact and paraphrased) answers with no provider call;
 *  - the answer still comes when every enrichment fails: golden_cache and
 *    cultural_rag replaced by actors that answer too late, then unloaded,
 *    and with claude failing (scripted 500s) the answer comes from llama.
 *
 * Usage: test_hybrid_e2e JIWAD JIWA MOCKLLM PLUGIN_DIR SRC_DIR */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include "../common/jt.h"
#define JT_MOCKLLM_HTTP
#include "../common/jt_mockllm.h"
#include "jiwa/client.h"
#include "jiwa/json.h"
#include "jiwa/mp.h"

static const char *g_jiwad, *g_jiwa, *g_mockbin, *g_plugins, *g_src;
static char g_dir[256], g_sock[PATH_MAX + 64], g_log[PATH_MAX + 64];
static int g_port;
static pid_t g_mock = -1, g_daemon = -1;
static jiwa_client_t *g_cli;

/* ---- small helpers ------------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap + 1);
  size_t k;
  while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
    n += k;
    if (n == cap) {
      char *nb = realloc(buf, 2 * cap + 1);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
  }
  fclose(f);
  if (buf) {
    buf[n] = '\0';
    if (len)
      *len = n;
  }
  return buf;
}

/* Replace the first @p from in @p *s by @p to (realloc'd); 0 if absent. */
static int replace(char **s, const char *from, const char *to) {
  char *at = strstr(*s, from);
  if (!at)
    return 0;
  size_t pre = (size_t)(at - *s), fl = strlen(from), tl = strlen(to);
  size_t rest = strlen(at + fl);
  char *n = malloc(pre + tl + rest + 1);
  assert_non_null(n);
  memcpy(n, *s, pre);
  memcpy(n + pre, to, tl);
  memcpy(n + pre + tl, at + fl, rest + 1);
  free(*s);
  *s = n;
  return 1;
}

static int log_has(const char *needle) {
  char *l = read_file(g_log, NULL);
  int found = l && strstr(l, needle) != NULL;
  free(l);
  return found;
}

/* The value of @p key in map @p buf as its own msgpack bytes. */
static int sub(const void *buf, size_t len, const char *key, const void **p,
               size_t *n) {
  jiwa_mp_reader_t at;
  if (jiwa_mp_map_find(buf, len, key, &at))
    return -1;
  jiwa_mp_reader_t end = at;
  if (jiwa_mp_skip(&end))
    return -1;
  *p = at.p;
  *n = (size_t)(end.p - at.p);
  return 0;
}

/* ---- mockllm control (libcurl) -------------------------------------------- */

/* @p method @p path on mockllm; returns the body (free it). */
static char *mock_http(const char *method, const char *path, const char *body) {
  long status;
  int rc;
  char *b = jt_mockllm_http(g_port, method, path, body, &status, &rc);
  if (rc != 0 || status != 200)
    fail_msg("mockllm %s %s: curl %d, status %ld: %s", method, path, rc,
             status, b ? b : "");
  return b;
}

/* Provider requests mockllm has seen on @p route ("anthropic", "openai"). */
static int64_t mock_count(const char *route) {
  char *json = mock_http("GET", "/_mock/stats", NULL);
  char *mp = NULL;
  size_t len = 0;
  assert_int_equal(jiwa_json_to_mp(json, strlen(json), NULL, &mp, &len, NULL),
                   0);
  const void *reqs = NULL;
  size_t rl = 0;
  assert_int_equal(sub(mp, len, "requests", &reqs, &rl), 0);
  int64_t v = -1;
  assert_int_equal(jiwa_mp_get_int(reqs, rl, route, &v), 0);
  free(mp);
  free(json);
  return v;
}

static int64_t provider_calls(void) {
  return mock_count("anthropic") + mock_count("openai");
}

/* The last logged provider request: its route and system prompt (the
 * Anthropic top-level "system", or an OpenAI "system" message). */
static void last_request(char *route, size_t rcap, char **system) {
  char *json = mock_http("GET", "/_mock/requests", NULL);
  char *mp = NULL;
  size_t len = 0;
  jiwa_json_limits_t lim = {0};
  lim.max_input = 64u << 20;
  assert_int_equal(jiwa_json_to_mp(json, strlen(json), &lim, &mp, &len, NULL),
                   0);
  free(json);
  jiwa_mp_reader_t r = {0};
  r.p = (const uint8_t *)mp;
  r.end = (const uint8_t *)mp + len;
  jiwa_mp_item_t it;
  assert_int_equal(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.type, JIWA_MP_ARRAY);
  assert_true(it.v.count > 0);
  for (uint32_t i = 0; i + 1 < it.v.count; i++)
    assert_int_equal(jiwa_mp_skip(&r), 0);
  jiwa_mp_reader_t end = r;
  assert_int_equal(jiwa_mp_skip(&end), 0);
  const void *req = r.p, *body = NULL;
  size_t reql = (size_t)(end.p - r.p), bl = 0;
  assert_int_equal(jiwa_mp_get_strcpy(req, reql, "route", route, rcap), 0);
  assert_int_equal(sub(req, reql, "body", &body, &bl), 0);
  const char *s;
  size_t n;
  *system = NULL;
  if (jiwa_mp_get_str(body, bl, "system", &s, &n) == 0) {
    *system = strndup(s, n);
  } else { /* OpenAI: the first message with role "system" */
    jiwa_mp_reader_t m;
    assert_int_equal(jiwa_mp_map_find(body, bl, "messages", &m), 0);
    jiwa_mp_item_t arr;
    assert_int_equal(jiwa_mp_next(&m, &arr), 0);
    for (uint32_t i = 0; i < arr.v.count && !*system; i++) {
      jiwa_mp_reader_t me = m;
      assert_int_equal(jiwa_mp_skip(&me), 0);
      char role[16] = "";
      jiwa_mp_get_strcpy(m.p, (size_t)(me.p - m.p), "role", role,
                         sizeof role);
      if (strcmp(role, "system") == 0 &&
          jiwa_mp_get_str(m.p, (size_t)(me.p - m.p), "content", &s, &n) == 0)
        *system = strndup(s, n);
      m = me;
    }
  }
  if (!*system)
    *system = strdup("");
  free(mp);
}

/* ---- jiwad ------------------------------------------------------------------ */

typedef struct {
  char *json; /* the reply body as JSON (free) */
  char route[16], lang[8], model[64], golden_id[80];
  char *text; /* (free) */
} chat_t;

static void chat_free(chat_t *c) {
  free(c->json);
  free(c->text);
  memset(c, 0, sizeof *c);
}

/* A chat through the socket; fails the test on an error reply. */
static void chat(const char *text, int explain, chat_t *out) {
  memset(out, 0, sizeof *out);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, explain ? 3 : 2);
  jiwa_mp_put_kv_str(&w.pk, "text", text);
  jiwa_mp_put_kv_str(&w.pk, "user", "e2e");
  if (explain)
    jiwa_mp_put_kv_bool(&w.pk, "explain", 1);
  jiwa_client_frame_t fin;
  char err[512];
  int rc = jiwa_client_call(g_cli, "chat", w.sbuf.data, w.sbuf.size, 60000,
                            NULL, NULL, &fin, err, sizeof err);
  jiwa_mp_writer_free(&w);
  if (rc)
    fail_msg("chat '%s': %s", text, err);
  char name[64], msg[512];
  if (jiwa_client_frame_error(&fin, name, sizeof name, msg, sizeof msg))
    fail_msg("chat '%s': %s: %s", text, name, msg);
  assert_int_equal(jiwa_mp_to_json(fin.body, fin.body_len, &out->json, NULL),
                   0);
  const char *s;
  size_t n;
  if (jiwa_mp_get_str(fin.body, fin.body_len, "text", &s, &n))
    fail_msg("chat '%s': no text in %s", text, out->json);
  out->text = strndup(s, n);
  jiwa_mp_get_strcpy(fin.body, fin.body_len, "route", out->route,
                     sizeof out->route);
  jiwa_mp_get_strcpy(fin.body, fin.body_len, "lang", out->lang,
                     sizeof out->lang);
  jiwa_mp_get_strcpy(fin.body, fin.body_len, "model", out->model,
                     sizeof out->model);
  jiwa_mp_get_strcpy(fin.body, fin.body_len, "golden_id", out->golden_id,
                     sizeof out->golden_id);
  jiwa_client_frame_free(&fin);
}

/* plugin.load / plugin.unload through the socket. */
static void plugin_op(const char *op, const char *name, const char *plugin,
                      int delay_ms) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, plugin ? 3 : 1);
  jiwa_mp_put_kv_str(&w.pk, "name", name);
  if (plugin) {
    jiwa_mp_put_kv_str(&w.pk, "plugin", plugin);
    jiwa_mp_put_str(&w.pk, "config");
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_kv_int(&w.pk, "delay_ms", delay_ms);
  }
  jiwa_client_frame_t fin;
  char err[512], ename[64], msg[512];
  int rc = jiwa_client_call(g_cli, op, w.sbuf.data, w.sbuf.size, 30000, NULL,
                            NULL, &fin, err, sizeof err);
  jiwa_mp_writer_free(&w);
  if (rc)
    fail_msg("%s %s: %s", op, name, err);
  if (jiwa_client_frame_error(&fin, ename, sizeof ename, msg, sizeof msg))
    fail_msg("%s %s: %s: %s", op, name, ename, msg);
  jiwa_client_frame_free(&fin);
}

static int setup(void **state) {
  (void)state;
  jt_tempdir(g_dir, sizeof g_dir, "hybrid-e2e");
  g_mock = jt_mockllm_start(g_mockbin, g_dir, "mock", NULL, 1, &g_port);
  if (g_mock < 0 || g_port <= 0) {
    fprintf(stderr, "mockllm did not start (see %s/mock.log)\n", g_dir);
    return -1;
  }
  /* the shipped config, pointed at this test's mockllm, plugins and dirs */
  char path[PATH_MAX + 64], tmp[PATH_MAX + 128];
  snprintf(path, sizeof path, "%s/config/jiwa.lua", g_src);
  char *conf = read_file(path, NULL);
  if (!conf)
    return -1;
  snprintf(tmp, sizeof tmp, "127.0.0.1:%d", g_port);
  int ok = 0;
  while (replace(&conf, "127.0.0.1:8088", tmp)) /* comments name it too */
    ok = 1;
  snprintf(tmp, sizeof tmp, "\"%s\"", g_src);
  ok &= replace(&conf, "config_dir .. \"/..\"", tmp);
  snprintf(tmp, sizeof tmp, "plugin_dir = \"%s\"", g_plugins);
  ok &= replace(&conf, "plugin_dir = \"../build/plugins\"", tmp);
  snprintf(tmp, sizeof tmp, "state_dir = \"%s/state\"", g_dir);
  ok &= replace(&conf, "state_dir = \"../build/state\"", tmp);
  /* the background model calls (shadow sampling, the enricher after its
   * debounce) are switched off: provider call counts and the last request
   * logged by mockllm must be the chat's own */
  ok &= replace(&conf, "model = \"llama\", rate = 0.2,",
                "model = \"llama\", rate = 0,");
  ok &= replace(&conf, "model = \"llama\", debounce_ms = 3000",
                "model = \"llama\", debounce_ms = 3600000");
  if (!ok) {
    fprintf(stderr, "config/jiwa.lua changed: a substitution failed\n");
    free(conf);
    return -1;
  }
  snprintf(path, sizeof path, "%s/jiwa.lua", g_dir);
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  fputs(conf, f);
  fclose(f);
  free(conf);

  snprintf(g_log, sizeof g_log, "%s/jiwad.log", g_dir);
  snprintf(g_sock, sizeof g_sock, "%s/state/jiwad.sock", g_dir);
  g_daemon = fork();
  if (g_daemon == 0) {
    int fd = open(g_log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl(g_jiwad, g_jiwad, "-c", path, (char *)NULL);
    _exit(127);
  }
  /* serving, and both seed imports over (up to 60 s under ASan) */
  for (int i = 0; i < 6000; i++) {
    if (log_has("serving") && log_has("seeded 'cultural' with 520 insights") &&
        log_has("seeded 'golden' with 30 golden entries"))
      break;
    if (waitpid(g_daemon, NULL, WNOHANG) == g_daemon) {
      g_daemon = -1;
      break;
    }
    usleep(10000);
  }
  char err[512];
  if (g_daemon < 0 ||
      jiwa_client_connect(&g_cli, g_sock, 10000, err, sizeof err)) {
    char *l = read_file(g_log, NULL);
    fprintf(stderr, "jiwad did not come up:\n%s\n", l ? l : "(no log)");
    free(l);
    return -1;
  }
  if (!log_has("seeded 'cultural' with 520 insights") ||
      !log_has("seeded 'golden' with 30 golden entries")) {
    fprintf(stderr, "the starter knowledge was not seeded\n");
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  jiwa_client_close(g_cli);
  int rc = 0;
  if (g_daemon > 0) {
    kill(g_daemon, SIGTERM);
    int st = 0;
    waitpid(g_daemon, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      char *l = read_file(g_log, NULL);
      fprintf(stderr, "jiwad did not stop cleanly (status %d):\n%s\n", st,
              l ? l : "");
      free(l);
      rc = -1;
    }
  }
  if (g_mock > 0 && jt_mockllm_stop(g_mock, SIGTERM) != 0)
    rc = -1;
  jt_rmtree(g_dir);
  return rc;
}

/* ---- the tests --------------------------------------------------------------- */

#define CTX_HEADER "Cultural context (use it, do not quote it):"

static void test_context_reaches_provider(void **state) {
  (void)state;
  int64_t before = mock_count("anthropic");
  chat_t c;
  chat("aku malu bertanya tentang visa", 1, &c);
  assert_string_equal(c.route, "hybrid");
  assert_string_equal(c.lang, "id");
  assert_string_equal(c.model, "claude-sonnet-4-5");
  jt_assert_contains(c.text, "[mock claude-sonnet-4-5]");
  /* the reply names the insights, the trace shows the steps */
  jt_assert_contains(c.json, "\"id\":\"ins-id-emotions-malu-");
  jt_assert_contains(c.json, "\"type\":\"golden.lookup\"");
  jt_assert_contains(c.json, "\"hit\":false");
  jt_assert_contains(c.json, "\"type\":\"rag.query\"");
  jt_assert_contains(c.json, "\"needed\":true");
  chat_free(&c);
  assert_int_equal(mock_count("anthropic"), before + 1);

  char route[32];
  char *sys;
  last_request(route, sizeof route, &sys);
  assert_string_equal(route, "anthropic");
  jt_assert_contains(sys, CTX_HEADER);
  jt_assert_contains(sys, "- [emotions/malu] ");
  jt_assert_contains(sys, "Respond: ");
  jt_assert_contains(sys, "You are Jiwa"); /* the persona */
  /* The persona is configured twice in config/jiwa.lua (the router's
   * vars.persona becomes the request's system, and the provider's own
   * persona setting is put in front of it): today it reaches the model
   * twice. Reported, not failed: it is a config matter, not this test's. */
  const char *p1 = strstr(sys, "You are Jiwa");
  if (p1 && strstr(p1 + 1, "You are Jiwa"))
    print_message("note: the persona reaches the provider twice (anthropic "
                  "config persona + router vars.persona)\n");
  free(sys);

  /* English and Italian users get context in their language */
  static const char *const more[][3] = {
      {"I'm a bit embarrassed to ask, but how do I extend my KITAS?", "en",
       "- [emotions/"},
      {"mi vergogno un po' a chiedere, ma come funziona il KITAS?", "it",
       "- [emotions/"},
      {"rapatnya jam karet lagi, gimana ya", "id", "- [business_culture/"},
  };
  for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
    chat(more[i][0], 0, &c);
    assert_string_equal(c.route, "hybrid");
    assert_string_equal(c.lang, more[i][1]);
    chat_free(&c);
    last_request(route, sizeof route, &sys);
    jt_assert_contains(sys, CTX_HEADER);
    jt_assert_contains(sys, more[i][2]);
    free(sys);
  }

  /* a plain factual question: no cultural context reaches the model */
  chat("What is the minimum capital for a PT PMA?", 0, &c);
  assert_string_equal(c.route, "hybrid");
  chat_free(&c);
  last_request(route, sizeof route, &sys);
  assert_string_equal(route, "anthropic");
  assert_null(strstr(sys, CTX_HEADER));
  free(sys);
}

static void test_explain_through_cli(void **state) {
  (void)state;
  char cmd[PATH_MAX * 2];
  snprintf(cmd, sizeof cmd,
           "'%s' --socket '%s' chat 'aku malu bertanya tentang visa' "
           "--explain 2>&1",
           g_jiwa, g_sock);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char out[16384];
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  assert_int_equal(pclose(p), 0);
  jt_assert_contains(out, "[mock claude-sonnet-4-5]");
  jt_assert_contains(out, "language  id");
  jt_assert_contains(out, "golden    miss");
  jt_assert_contains(out, "insights  ins-id-emotions-malu-");
  jt_assert_contains(out, "model     claude answered");
}

static void test_golden_short_circuit(void **state) {
  (void)state;
  static const char *const qs[] = {
      "How long does it take to get a KITAS?",      /* exact */
      "how long does getting a KITAS take?",        /* semantic */
  };
  for (size_t i = 0; i < 2; i++) {
    int64_t before = provider_calls();
    chat_t c;
    chat(qs[i], 1, &c);
    assert_string_equal(c.route, "golden");
    assert_string_equal(c.golden_id, "golden-kitas-duration-en");
    jt_assert_contains(c.text, "Usually a few weeks from a complete "
                               "application.");
    jt_assert_contains(c.json, i == 0 ? "\"match\":\"exact\""
                                      : "\"match\":\"semantic\"");
    chat_free(&c);
    assert_int_equal(provider_calls(), before);
  }
  /* the neighbouring question with another intent goes to the model */
  int64_t before = provider_calls();
  chat_t c;
  chat("How much does a KITAS cost?", 0, &c);
  assert_string_equal(c.route, "hybrid");
  chat_free(&c);
  assert_int_equal(provider_calls(), before + 1);
}

static void test_answer_when_enrichment_fails(void **state) {
  (void)state;
  char route[32];
  char *sys;
  chat_t c;
  /* 1. enrichments that answer too late (the policy waits 50 ms): echo
   *    actors under their names, answering after 3 s */
  plugin_op("plugin.unload", "golden_cache", NULL, 0);
  plugin_op("plugin.unload", "cultural_rag", NULL, 0);
  plugin_op("plugin.load", "golden_cache", "echo", 3000);
  plugin_op("plugin.load", "cultural_rag", "echo", 3000);
  int64_t before = provider_calls();
  chat("How long does it take to get a KITAS?", 1, &c);
  assert_string_equal(c.route, "hybrid"); /* no golden hit: the model */
  jt_assert_contains(c.text, "[mock claude-sonnet-4-5]");
  jt_assert_contains(c.json, "ETIMEDOUT");
  chat_free(&c);
  assert_int_equal(provider_calls(), before + 1);
  chat("aku malu bertanya tentang visa", 0, &c);
  jt_assert_contains(c.text, "[mock claude-sonnet-4-5]");
  chat_free(&c);
  last_request(route, sizeof route, &sys);
  assert_string_equal(route, "anthropic");
  assert_null(strstr(sys, CTX_HEADER));
  free(sys);

  /* 2. no enrichment at all */
  plugin_op("plugin.unload", "golden_cache", NULL, 0);
  plugin_op("plugin.unload", "cultural_rag", NULL, 0);
  chat("aku malu bertanya tentang visa", 1, &c);
  assert_string_equal(c.route, "hybrid");
  assert_string_equal(c.model, "claude-sonnet-4-5");
  jt_assert_contains(c.json, "ENOENT");
  chat_free(&c);
  last_request(route, sizeof route, &sys);
  assert_string_equal(route, "anthropic");
  assert_null(strstr(sys, CTX_HEADER));
  free(sys);

  /* 3. ... and the main model failing: the secondary answers */
  free(mock_http("POST", "/_mock/script",
            "{\"route\": \"anthropic\", \"fault\": \"status=500\"}"));
  int64_t llama = mock_count("openai");
  chat("aku malu bertanya tentang visa", 0, &c);
  assert_string_equal(c.route, "hybrid");
  assert_string_equal(c.model, "jiwa-llama-8b");
  jt_assert_contains(c.text, "[mock jiwa-llama-8b]");
  chat_free(&c);
  assert_int_equal(mock_count("openai"), llama + 1);
  last_request(route, sizeof route, &sys);
  assert_string_equal(route, "openai");
  free(sys);
  free(mock_http("DELETE", "/_mock/script", NULL));
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr,
            "usage: test_hybrid_e2e JIWAD JIWA MOCKLLM PLUGIN_DIR SRC_DIR\n");
    return 2;
  }
  g_jiwad = argv[1];
  g_jiwa = argv[2];
  g_mockbin = argv[3];
  g_plugins = argv[4];
  g_src = argv[5];
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_context_reaches_provider),
      cmocka_unit_test(test_explain_through_cli),
      cmocka_unit_test(test_golden_short_circuit),
      cmocka_unit_test(test_answer_when_enrichment_fails),
  };
  int rc = cmocka_run_group_tests(tests, setup, teardown);
  curl_global_cleanup();
  return rc;
}
