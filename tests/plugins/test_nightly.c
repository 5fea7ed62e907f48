/* The nightly plugin end to end, in an in-process runtime: tools/mockllm on
 * an ephemeral port behind two openai provider actors ("claude" for golden
 * answers, "llama" for cultural insights), the real golden_cache and
 * cultural_rag plugins on a private store (collections "golden" and
 * "cultural", the curated English pack seeded), a fake conversation log
 * (a native actor serving a generated, labelled query log: 12,000 queries,
 * 24 intents, en/id/it, 10 days) and a tiny webhook receiver.
 *
 *  - a run whose golden model goes down after three answers: recorded as
 *    failed with the error, the alert posted to the webhook, no golden
 *    entry and no generated insight visible;
 *  - a full run: only the last 7 days asked for and used, clusters scored
 *    against the intents (purity and ARI printed), coverage, golden
 *    answers stored and then hit by golden_cache for a paraphrase of the
 *    top cluster, insights generated from the model's lists;
 *  - a rerun: ok and idempotent (no new golden entry, no new insight);
 *  - --regenerate-cultural: the generated set replaced, the curated pack
 *    untouched;
 *  - the schedule: fires at 02:30 UTC with the injected clock, not at
 *    02:29; a job.run meanwhile is EBUSY; job.runs lists the runs.
 *
 * No timing assertions. Usage: test_nightly MOCKLLM_BINARY (ctest). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "../common/jt.h"
#define JT_MOCKLLM_HTTP
#include "../common/jt_mockllm.h"
#include "jiwa/json.h"
#include "jiwa_cluster.h"
#include "jiwa_coll.h"
#include "jiwa_config.h"
#include "jiwa_cron.h"
#include "jiwa_embed.h"
#include "jiwa_querygen.h"
#include "jiwa_rt.h"
#include "jiwa_store.h"

static const char *g_bin;
static char g_dir[512];
static pid_t g_pid;
static int g_port;
static jiwa_rt_t *g_rt;
static jiwa_qlog_t *g_log;
static const int64_t END_TS = 1767225600; /* 2026-01-01T00:00:00Z */
#define NIGHT_EX 8

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* ---- mockllm ------------------------------------------------------------- */

static pid_t mock_spawn(int *port) {
  return jt_mockllm_start(g_bin, g_dir, "mock", NULL, 1, port);
}

static void mock_stop(pid_t pid) { jt_mockllm_stop(pid, SIGTERM); }

/* One control request to mockllm (its body is not needed). */
static void mock_http(const char *method, const char *path, const char *body) {
  long status;
  int rc;
  char *b = jt_mockllm_http(g_port, method, path, body, &status, &rc);
  if (rc != 0 || status != 200)
    fail_msg("mockllm %s %s: curl %d, status %ld: %s", method, path, rc,
             status, b ? b : "");
  free(b);
}

/* ---- the webhook receiver ---------------------------------------------------
 */

static struct {
  int fd, port;
  pthread_t th;
  atomic_int stop, hits;
  pthread_mutex_t mu;
  char body[65536];
} g_hook = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *hook_main(void *ud) {
  (void)ud;
  while (!atomic_load(&g_hook.stop)) {
    int c = accept(g_hook.fd, NULL, NULL);
    if (c < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        sleep_ms(5);
        continue;
      }
      break;
    }
    int fl = fcntl(c, F_GETFL);
    fcntl(c, F_SETFL, fl & ~O_NONBLOCK);
    struct timeval tv = {5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[65536];
    size_t n = 0;
    long want = -1;
    for (;;) {
      ssize_t k = recv(c, buf + n, sizeof buf - 1 - n, 0);
      if (k <= 0)
        break;
      n += (size_t)k;
      buf[n] = 0;
      char *he = strstr(buf, "\r\n\r\n");
      if (he && want < 0) {
        char *cl = strcasestr(buf, "content-length:");
        want = cl ? atol(cl + 15) : 0;
        want += (long)(he + 4 - buf);
      }
      if (want >= 0 && (long)n >= want)
        break;
      if (n >= sizeof buf - 1)
        break;
    }
    char *he = strstr(buf, "\r\n\r\n");
    pthread_mutex_lock(&g_hook.mu);
    snprintf(g_hook.body, sizeof g_hook.body, "%s", he ? he + 4 : "");
    pthread_mutex_unlock(&g_hook.mu);
    const char *resp = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n"
                       "Connection: close\r\n\r\n";
    send(c, resp, strlen(resp), MSG_NOSIGNAL);
    close(c);
    atomic_fetch_add(&g_hook.hits, 1);
  }
  return NULL;
}

static void hook_start(void) {
  g_hook.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(g_hook.fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(g_hook.fd, 8), 0);
  socklen_t al = sizeof a;
  getsockname(g_hook.fd, (struct sockaddr *)&a, &al);
  g_hook.port = ntohs(a.sin_port);
  atomic_store(&g_hook.stop, 0);
  atomic_store(&g_hook.hits, 0);
  pthread_create(&g_hook.th, NULL, hook_main, NULL);
}

static void hook_stop(void) {
  atomic_store(&g_hook.stop, 1);
  pthread_join(g_hook.th, NULL);
  close(g_hook.fd);
}

/* ---- the fake conversation log
 * ---------------------------------------------------- */

static atomic_llong g_since, g_until;
static atomic_int g_queries, g_hold, g_holding;
static jiwa_msg_t *g_held;

static void serve_log(jiwa_actor_t *self, const jiwa_msg_t *m) {
  int64_t since = 0, until = INT64_MAX;
  jiwa_msg_get_int(m, "since_ms", &since);
  jiwa_msg_get_int(m, "until_ms", &until);
  atomic_store(&g_since, since);
  atomic_store(&g_until, until);
  atomic_fetch_add(&g_queries, 1);
  size_t count = 0, i = 0;
  while (i < g_log->n) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    size_t batch = 0, start = i;
    for (; i < g_log->n && batch < 200; i++) {
      int64_t t = g_log->q[i].ts * 1000;
      batch += t >= since && t <= until;
    }
    if (!batch)
      continue;
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_str(&w.pk, "records");
    msgpack_pack_array(&w.pk, batch);
    for (size_t k = start; k < i; k++) {
      const jiwa_qlog_entry_t *q = &g_log->q[k];
      int64_t t = q->ts * 1000;
      if (t < since || t > until)
        continue;
      char user[32], sess[32];
      snprintf(user, sizeof user, "u%u", q->user);
      snprintf(sess, sizeof sess, "s%zu", k);
      msgpack_pack_map(&w.pk, 8);
      jiwa_mp_put_kv_int(&w.pk, "time_ms", t);
      jiwa_mp_put_kv_str(&w.pk, "user", user);
      jiwa_mp_put_kv_str(&w.pk, "session", sess);
      jiwa_mp_put_kv_str(&w.pk, "lang", q->lang);
      jiwa_mp_put_kv_str(&w.pk, "text", q->text);
      jiwa_mp_put_kv_str(&w.pk, "answer", "...");
      jiwa_mp_put_kv_str(&w.pk, "route", "claude");
      jiwa_mp_put_kv_str(&w.pk, "label", jiwa_querygen_intent_name(q->intent));
    }
    count += batch;
    jiwa_stream(self, m, "conversations.records", w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_int(&w.pk, "count", (int64_t)count);
  jiwa_reply(self, m, "conversations.done", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

static int convlog_receive(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *m) {
  (void)ctx;
  if (strcmp(jiwa_msg_type(m), "convlog.release") == 0) {
    if (g_held) {
      serve_log(self, g_held);
      jiwa_msg_release(g_held);
      g_held = NULL;
    }
    return 0;
  }
  if (jiwa_msg_kind(m) != JIWA_MSG_ASK)
    return 0;
  if (strcmp(jiwa_msg_type(m), "conversations.query") != 0)
    return jiwa_reply_error(self, m, JIWA_ENOTSUP, "fake convlog");
  if (atomic_load(&g_hold)) {
    g_held = jiwa_msg_retain(m);
    atomic_store(&g_holding, 1);
    return 0;
  }
  serve_log(self, m);
  return 0;
}

static void convlog_fini(jiwa_actor_t *self, void *ctx) {
  (void)self;
  (void)ctx;
  if (g_held) {
    jiwa_msg_release(g_held);
    g_held = NULL;
  }
}

static const jiwa_plugin_desc_t convlog_desc = {
    JIWA_DESC_HEADER, .name = "fake_convlog",     .version = "1",
    .ctx_size = 8,    .receive = convlog_receive, .fini = convlog_fini};

/* ---- the runtime
 * ------------------------------------------------------------------ */

static void add_coll(const char *name) {
  jiwa_embed_t *e = NULL;
  jiwa_coll_t *c = NULL;
  assert_int_equal(jiwa_coll_embedder_new("hash", 512, &e), 0);
  jiwa_coll_def_t d;
  jiwa_coll_def_init(&d);
  d.embedder = e;
  d.own_embedder = 1;
  if (jiwa_coll_open(jiwa_rt_store(g_rt), name, &d, &c))
    fail_msg("collection %s: %s", name, jiwa_coll_errmsg());
  assert_int_equal(jiwa_rt_add_coll(g_rt, c), 0);
}

static void rt_open(void) {
  char state[600], store[600];
  snprintf(state, sizeof state, "%s/state", g_dir);
  snprintf(store, sizeof store, "%s/store", g_dir);
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
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  cfg.path = store;
  cfg.fast = 1;
  cfg.map_size = (size_t)256 << 20;
  jiwa_store_t *s;
  if (jiwa_store_open(&cfg, &s))
    fail_msg("store: %s", jiwa_store_errmsg());
  assert_int_equal(jiwa_rt_set_store(g_rt, s), 0);
  add_coll("cultural");
  add_coll("golden");
}

static void rt_close(void) {
  assert_int_equal(jiwa_rt_stop(g_rt), 0);
  jiwa_rt_free(g_rt);
  g_rt = NULL;
}

/* Spawn a plugin with settings given as a Lua table; "@P" = mockllm's port,
 * "@H" = the webhook's port, "@D" = the test dir, "@S" = the source dir. */
static void spawn(const char *name, const char *plugin, const char *lua) {
  char text[4096];
  size_t k = 0;
  for (const char *p = lua; *p && k + 600 < sizeof text; p++) {
    if (p[0] == '@' && (p[1] == 'P' || p[1] == 'H')) {
      k += (size_t)snprintf(text + k, sizeof text - k, "%d",
                            p[1] == 'P' ? g_port : g_hook.port);
      p++;
    } else if (p[0] == '@' && (p[1] == 'D' || p[1] == 'S')) {
      k += (size_t)snprintf(text + k, sizeof text - k, "%s",
                            p[1] == 'D' ? g_dir : getenv("JIWA_SOURCE_DIR"));
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
  int rc =
      jiwa_rt_spawn_plugin(g_rt, name, plugin, -1, mp, mplen, err, sizeof err);
  free(mp);
  if (rc)
    fail_msg("spawn %s (%s): %s: %s", name, plugin, jiwa_err_name(rc), err);
}

/* ---- asks
 * ----------------------------------------------------------------------- */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, deltas;
  jiwa_msg_kind_t kind;
  int code;
  char err[800];
  char *body;
  size_t blen;
  char stages[512];
} res_t;

static void on_reply(const jiwa_msg_t *m, void *ud) {
  res_t *r = ud;
  pthread_mutex_lock(&r->mu);
  if (jiwa_msg_kind(m) == JIWA_MSG_DELTA) {
    r->deltas++;
    char st[64];
    size_t n = 0;
    const void *b = jiwa_msg_body(m, &n);
    if (jiwa_mp_get_strcpy(b, n, "stage", st, sizeof st) == 0 &&
        !strstr(r->stages, st) &&
        strlen(r->stages) + strlen(st) + 2 < sizeof r->stages) {
      strcat(r->stages, st);
      strcat(r->stages, ",");
    }
  } else {
    r->kind = jiwa_msg_kind(m);
    if (r->kind == JIWA_MSG_ERROR) {
      const char *t = "";
      r->code = jiwa_msg_error(m, &t);
      snprintf(r->err, sizeof r->err, "%s", t);
    } else {
      size_t n = 0;
      const void *b = jiwa_msg_body(m, &n);
      r->body = malloc(n ? n : 1);
      memcpy(r->body, b, n);
      r->blen = n;
    }
    r->done = 1;
    pthread_cond_signal(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
}

static void res_free(res_t *r) {
  free(r->body);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
}

/* Ask @p actor with a JSON body and wait for the final. */
static void ask(res_t *r, const char *actor, const char *type, const char *json,
                uint32_t timeout_ms) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  char *mp = NULL;
  size_t mplen = 0;
  jiwa_json_error_t je;
  if (jiwa_json_to_mp(json, strlen(json), NULL, &mp, &mplen, &je))
    fail_msg("bad JSON in the test: %s", je.msg);
  int rc = jiwa_rt_ask(g_rt, actor, type, mp, mplen, timeout_ms, on_reply, r);
  free(mp);
  assert_int_equal(rc, 0);
  pthread_mutex_lock(&r->mu);
  while (!r->done)
    pthread_cond_wait(&r->cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
}

#define assert_ok(r)                                                           \
  do {                                                                         \
    if ((r)->kind != JIWA_MSG_REPLY)                                           \
      fail_msg("expected a reply, got %s: %s", jiwa_err_name((r)->code),       \
               (r)->err);                                                      \
  } while (0)

static int64_t fint(const res_t *r, const char *path) {
  /* "a.b": one level of nesting */
  const char *dot = strchr(path, '.');
  int64_t v = -1;
  if (!dot) {
    jiwa_mp_get_int(r->body, r->blen, path, &v);
    return v;
  }
  char k[64];
  snprintf(k, sizeof k, "%.*s", (int)(dot - path), path);
  jiwa_mp_reader_t at;
  if (jiwa_mp_map_find(r->body, r->blen, k, &at))
    return -1;
  jiwa_mp_get_int(at.p, jiwa_mp_reader_left(&at), dot + 1, &v);
  return v;
}

static double fdbl(const res_t *r, const char *path) {
  const char *dot = strchr(path, '.');
  double v = -1;
  if (!dot) {
    jiwa_mp_get_double(r->body, r->blen, path, &v);
    return v;
  }
  char k[64];
  snprintf(k, sizeof k, "%.*s", (int)(dot - path), path);
  jiwa_mp_reader_t at;
  if (jiwa_mp_map_find(r->body, r->blen, k, &at))
    return -1;
  jiwa_mp_get_double(at.p, jiwa_mp_reader_left(&at), dot + 1, &v);
  return v;
}

static char *json_of(const res_t *r) {
  char *js = NULL;
  assert_int_equal(jiwa_mp_to_json(r->body, r->blen, &js, NULL), 0);
  return js;
}

/* Element @p i of array field @p key: a borrowed slice of r->body. */
static const uint8_t *elem(const res_t *r, const char *key, uint32_t i,
                           size_t *n, uint32_t *count) {
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  if (jiwa_mp_map_find(r->body, r->blen, key, &at) || jiwa_mp_next(&at, &it) ||
      it.type != JIWA_MP_ARRAY)
    return NULL;
  if (count)
    *count = it.v.count;
  if (i >= it.v.count)
    return NULL;
  for (uint32_t k = 0; k < i; k++)
    jiwa_mp_skip(&at);
  const uint8_t *s = at.p;
  jiwa_mp_skip(&at);
  *n = (size_t)(at.p - s);
  return s;
}

static uint64_t coll_count(const char *name) {
  uint64_t n = 0;
  assert_int_equal(jiwa_coll_count(jiwa_rt_coll(g_rt, name), &n), 0);
  return n;
}

/* Golden entries written by the nightly job (source "nightly:..."). */
static int nightly_golden(void) {
  res_t r;
  ask(&r, "golden_cache", "golden.list", "{\"limit\": 10000}", 10000);
  assert_ok(&r);
  uint32_t count = 0;
  size_t n = 0;
  int k = 0;
  elem(&r, "entries", 0, &n, &count);
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t *e = elem(&r, "entries", i, &n, NULL);
    char src[64];
    if (jiwa_mp_get_strcpy(e, n, "source", src, sizeof src) == 0 &&
        strncmp(src, "nightly:", 8) == 0)
      k++;
  }
  res_free(&r);
  return k;
}

static int wait_hook(int want) {
  for (int i = 0; i < 1000 && atomic_load(&g_hook.hits) < want; i++)
    sleep_ms(10);
  return atomic_load(&g_hook.hits);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static const char *PLAN =
    "function plan(req)\n"
    "  return { stages = { 'clusters', 'golden', 'cultural' }, days = 5,\n"
    "    max_golden = 3, min_cluster_size = 5, paraphrases = 5,\n"
    "    golden_model = 'claude', cultural_model = 'llama',\n"
    "    cultural = { langs = { 'en', 'id', 'it' }, per_prompt = 3,\n"
    "      topics = { { name = 'jam_karet', category = 'business_culture' },\n"
    "                 { name = 'malu', category = 'emotions' } } } }\n"
    "end\n";

static void script_lists(const char *jam) {
  char body[4096];
  snprintf(body, sizeof body,
           "[{\"route\":\"openai\",\"match\":\"Topic: jam_karet\",\"reply\":"
           "\"Sure! Here are three insights:\\n\\n%s\\n\\nLet me know if you "
           "want more.\"},"
           "{\"route\":\"openai\",\"match\":\"Topic: malu\",\"reply\":"
           "\"1. **Malu nih** — Saying malu is often a polite way to show "
           "shyness; reassure the person before you go on.\\n"
           "2. **Gak enak** — Feeling gak enak means not wanting to trouble "
           "others; make it easy to ask again.\\n"
           "3. **Saving face** — Pointing out a mistake in public causes "
           "deep embarrassment; correct things privately and kindly.\"}]",
           jam);
  mock_http("POST", "/_mock/script", body);
}

static const char *JAM1 =
    "1. **Jam karet** — Rubber time: meetings often start later than "
    "planned, so confirm the day before and plan a buffer.\\n"
    "2. **Nanti** — Nanti can mean later today or some day; ask kindly for "
    "a concrete time when it matters.\\n"
    "3. **Deadlines** — A deadline is better agreed face to face and "
    "followed up gently on WhatsApp a few days before.";
static const char *JAM2 =
    "- **Waiting politely** — Showing impatience in public is rude; wait "
    "calmly and use the time to build the relationship.\\n"
    "- **Office hours** — Government offices close early on Fridays for "
    "prayers; plan visits to imigrasi for the morning.\\n"
    "- **Confirming twice** — Confirm appointments twice, once a day "
    "ahead and once an hour ahead, without sounding pushy.";

/* ---- the full nightly
 * ------------------------------------------------------------ */

/* After a failed assertion: stop what the test started. */
static int teardown(void **state) {
  (void)state;
  if (g_rt)
    rt_close();
  if (g_hook.th) {
    hook_stop();
    g_hook.th = 0;
  }
  if (g_pid > 0) {
    mock_stop(g_pid);
    g_pid = 0;
  }
  jiwa_qlog_free(g_log);
  g_log = NULL;
  return 0;
}

static void test_nightly_full(void **state) {
  (void)state;
  jt_tempdir(g_dir, sizeof g_dir, "nightly");
  g_pid = mock_spawn(&g_port);
  assert_true(g_pid > 0 && g_port > 0);
  hook_start();
  jiwa_querygen_opts_t qo = {
      .size = sizeof qo, .n = 12000, .days = 10, .end_ts = END_TS, .seed = 9};
  assert_int_equal(jiwa_querygen(&qo, &g_log), 0);
  char plan[700];
  snprintf(plan, sizeof plan, "%s/plan.lua", g_dir);
  write_file(plan, PLAN);

  rt_open();
  char err[300];
  assert_int_equal(jiwa_rt_spawn_native(g_rt, "convlog", &convlog_desc, -1,
                                        NULL, 0, err, sizeof err),
                   0);
  const char *oai = "{ endpoint = 'http://127.0.0.1:@P/v1', model = '%s', "
                    "retries = 1, upstream_stream = false, "
                    "api_key_env = 'JIWA_TEST_NO_KEY' }";
  char cfg[600];
  snprintf(cfg, sizeof cfg, oai, "claude-mock");
  spawn("claude", "openai", cfg);
  snprintf(cfg, sizeof cfg, oai, "llama-mock");
  spawn("llama", "openai", cfg);
  spawn("golden_cache", "golden_cache", "{}");
  spawn("cultural_rag", "cultural_rag",
        "{ seed_files = { '@S/config/knowledge/insights_en.jsonl' } }");
  spawn("nightly", "nightly",
        "{ schedule = '', script = '@D/plan.lua', concurrency = 2, "
        "alert_webhook = 'http://127.0.0.1:@H/hook', golden_ttl_days = 30 }");
  /* the curated pack is seeded on the thread pool */
  uint64_t curated = 0;
  for (int i = 0; i < 1000 && (curated = coll_count("cultural")) < 172; i++)
    sleep_ms(10);
  assert_int_equal(curated, 172);

  res_t r;
  char js[256];
  snprintf(js, sizeof js, "{\"now_ms\": %lld}", (long long)END_TS * 1000);
  ask(&r, "nightly", "job.tick", js, 5000);
  assert_ok(&r);
  res_free(&r);

  /* 1. the golden model goes down after three answers */
  mock_http("POST", "/_mock/script",
            "[{\"route\":\"openai\",\"match\":\"Write the golden answer\","
            "\"reply\":\"Usually about four weeks; check with us.\","
            "\"times\":3},"
            "{\"route\":\"openai\",\"match\":\"Write the golden answer\","
            "\"fault\":\"status=503\"}]");
  ask(&r, "nightly", "job.run",
      "{\"name\": \"nightly\", \"days\": 7, \"max_golden\": 8}", 120000);
  assert_int_equal(r.kind, JIWA_MSG_ERROR);
  jt_assert_contains(r.err, "failed in stage golden");
  jt_assert_contains(r.err, "model 'claude' failed");
  assert_true(r.deltas > 0);
  jt_assert_contains(r.stages, "queries");
  jt_assert_contains(r.stages, "clusters");
  res_free(&r);
  ask(&r, "nightly", "job.runs", "{}", 5000);
  assert_ok(&r);
  {
    size_t n = 0;
    uint32_t count = 0;
    const uint8_t *run = elem(&r, "runs", 0, &n, &count);
    assert_int_equal(count, 1);
    char st[32], e[600], id[32];
    assert_int_equal(jiwa_mp_get_strcpy(run, n, "status", st, sizeof st), 0);
    assert_string_equal(st, "failed");
    assert_int_equal(jiwa_mp_get_strcpy(run, n, "error", e, sizeof e), 0);
    jt_assert_contains(e, "503");
    assert_int_equal(jiwa_mp_get_strcpy(run, n, "id", id, sizeof id), 0);
    jiwa_mp_reader_t at;
    assert_int_equal(jiwa_mp_map_find(run, n, "counts", &at), 0);
    int64_t gen = -1, wr = -1;
    jiwa_mp_get_int(at.p, jiwa_mp_reader_left(&at), "golden_generated", &gen);
    jiwa_mp_get_int(at.p, jiwa_mp_reader_left(&at), "golden_written", &wr);
    print_message("failed run %s: %lld golden answers generated before the "
                  "model went down, %lld written\n",
                  id, (long long)gen, (long long)wr);
    assert_true(gen >=
                2); /* 2 in flight: the 4th may fail before the 3rd ends */
    assert_int_equal(wr, 0);
    assert_true(gen <= 3);
    /* the alert */
    assert_int_equal(wait_hook(1), 1);
    pthread_mutex_lock(&g_hook.mu);
    jt_assert_contains(g_hook.body, id);
    jt_assert_contains(g_hook.body, "\"status\":\"failed\"");
    jt_assert_contains(g_hook.body, "failed in stage golden");
    pthread_mutex_unlock(&g_hook.mu);
  }
  res_free(&r);
  assert_int_equal(nightly_golden(), 0); /* nothing half-written */
  assert_int_equal(coll_count("cultural"), curated);

  /* 2. the full run */
  mock_http("DELETE", "/_mock/script", NULL);
  script_lists(JAM1);
  ask(&r, "nightly", "job.run",
      "{\"name\": \"nightly\", \"days\": 7, \"max_golden\": 10}", 120000);
  assert_ok(&r);
  /* the injected clock moves on from the tick: the window ends at "now" */
  int64_t since = atomic_load(&g_since), until = atomic_load(&g_until);
  assert_int_equal(until - since, 7 * 86400000LL);
  assert_true(until >= END_TS * 1000 && until < END_TS * 1000 + 600000);
  assert_int_equal(fint(&r, "until_ms"), until);
  size_t in_window = 0;
  for (size_t i = 0; i < g_log->n; i++)
    in_window +=
        g_log->q[i].ts * 1000 > since && g_log->q[i].ts * 1000 <= until;
  double purity = fdbl(&r, "counts.purity"), ari = fdbl(&r, "counts.ari"),
         cov = fdbl(&r, "counts.coverage_top50");
  print_message("log: %zu queries over 10 days, %zu in the last 7; run used "
                "%lld; %lld clusters; purity %.3f, ARI %.3f, top-50 coverage "
                "%.3f\n",
                g_log->n, in_window, (long long)fint(&r, "counts.queries"),
                (long long)fint(&r, "counts.clusters"), purity, ari, cov);
  assert_int_equal(fint(&r, "counts.queries"), (int64_t)in_window);
  assert_true(in_window < g_log->n);
  assert_true(purity >= 0.90);
  assert_true(ari >= 0.15);
  assert_true(cov >= 0.5 && cov <= 1.0);
  assert_int_equal(fint(&r, "counts.golden_written"), 10);
  assert_int_equal(fint(&r, "counts.golden_candidates"), 10);
  int64_t ins = fint(&r, "counts.cultural_written");
  print_message("cultural: %lld prompts, %lld items, %lld duplicates, %lld "
                "written\n",
                (long long)fint(&r, "counts.cultural_prompts"),
                (long long)fint(&r, "counts.cultural_items"),
                (long long)fint(&r, "counts.cultural_duplicates"),
                (long long)ins);
  assert_int_equal(fint(&r, "counts.cultural_prompts"), 6);
  assert_int_equal(fint(&r, "counts.cultural_items"), 18);
  assert_int_equal(ins, 18);
  jt_assert_contains(r.stages, "golden");
  jt_assert_contains(r.stages, "cultural");
  res_free(&r);
  assert_int_equal(nightly_golden(), 10);
  assert_int_equal(coll_count("cultural"), curated + 18);

  /* the clusters of the run, and a golden hit for a paraphrase of the top
   * one */
  ask(&r, "nightly", "clusters.show", "{}", 5000);
  assert_ok(&r);
  char top[400], lang[8], ex[NIGHT_EX][400];
  uint32_t nex = 0;
  {
    size_t n = 0;
    uint32_t count = 0;
    const uint8_t *c0 = elem(&r, "clusters", 0, &n, &count);
    assert_non_null(c0);
    assert_true(count >= 50);
    assert_int_equal(jiwa_mp_get_strcpy(c0, n, "name", top, sizeof top), 0);
    assert_int_equal(jiwa_mp_get_strcpy(c0, n, "lang", lang, sizeof lang), 0);
    char g[16];
    jiwa_mp_get_strcpy(c0, n, "golden", g, sizeof g);
    assert_string_equal(g, "generated");
    int64_t size = 0;
    jiwa_mp_get_int(c0, n, "size", &size);
    print_message("top cluster: \"%s\" (%s, %lld queries)\n", top, lang,
                  (long long)size);
    /* its examples: the first five are the golden entry's paraphrases */
    jiwa_mp_reader_t at;
    jiwa_mp_item_t it;
    assert_int_equal(jiwa_mp_map_find(c0, n, "examples", &at), 0);
    assert_int_equal(jiwa_mp_next(&at, &it), 0);
    assert_int_equal(it.type, JIWA_MP_ARRAY);
    assert_true(it.v.count >= 6);
    for (uint32_t i = 0; i < it.v.count && nex < NIGHT_EX; i++) {
      jiwa_mp_item_t e;
      assert_int_equal(jiwa_mp_next(&at, &e), 0);
      snprintf(ex[nex++], sizeof ex[0], "%.*s", (int)e.v.s.len, e.v.s.ptr);
    }
  }
  res_free(&r);
  int semantic = 0;
  for (uint32_t i = 0; i < nex; i++) {
    char q[4096];
    snprintf(q, sizeof q, "{\"query\": \"%s\", \"lang\": \"%s\"}", ex[i], lang);
    ask(&r, "golden_cache", "golden.lookup", q, 5000);
    assert_ok(&r);
    int hit = 0;
    char id[96] = "", ans[800] = "", match[16] = "";
    jiwa_mp_get_bool(r.body, r.blen, "hit", &hit);
    jiwa_mp_get_strcpy(r.body, r.blen, "id", id, sizeof id);
    jiwa_mp_get_strcpy(r.body, r.blen, "answer", ans, sizeof ans);
    jiwa_mp_get_strcpy(r.body, r.blen, "match", match, sizeof match);
    print_message("golden.lookup \"%s\" (%s): %s %s %s\n", ex[i],
                  i < 5 ? "a stored paraphrase" : "another member",
                  hit ? "HIT" : "miss", match, id);
    if (i < 5) { /* the stored paraphrases are served */
      if (!hit) {
        char *j = json_of(&r);
        fail_msg("no golden hit for the paraphrase \"%s\": %s", ex[i], j);
      }
      assert_true(strncmp(id, "nightly-", 8) == 0);
      jt_assert_contains(ans, "[mock claude-mock]");
    }
    semantic += i >= 5 && hit && strcmp(match, "semantic") == 0;
    res_free(&r);
  }
  assert_true(semantic >= 1); /* members never stored are served too */

  /* 3. a rerun: ok, nothing new */
  ask(&r, "nightly", "job.run",
      "{\"name\": \"nightly\", \"days\": 7, \"max_golden\": 10}", 120000);
  assert_ok(&r);
  assert_int_equal(fint(&r, "counts.golden_written"), 0);
  assert_true(fint(&r, "counts.golden_fresh") >= 10);
  assert_int_equal(fint(&r, "counts.cultural_written"), 0);
  assert_int_equal(fint(&r, "counts.cultural_duplicates"), 18);
  res_free(&r);
  assert_int_equal(nightly_golden(), 10);
  assert_int_equal(coll_count("cultural"), curated + 18);

  /* 4. regenerate: the jam_karet lists change, the generated set is
   * replaced, the curated pack stays */
  mock_http("DELETE", "/_mock/script", NULL);
  script_lists(JAM2);
  ask(&r, "nightly", "job.run",
      "{\"name\": \"nightly\", \"max_golden\": 0, "
      "\"regenerate_cultural\": true}",
      120000);
  assert_ok(&r);
  print_message("regenerate: %lld written, %lld removed\n",
                (long long)fint(&r, "counts.cultural_written"),
                (long long)fint(&r, "counts.cultural_removed"));
  assert_int_equal(fint(&r, "counts.cultural_written"), 18);
  assert_int_equal(fint(&r, "counts.cultural_removed"), 9);
  assert_int_equal(fint(&r, "params.days"), 5); /* the script's */
  res_free(&r);
  assert_int_equal(coll_count("cultural"), curated + 18);
  {
    jiwa_coll_query_t cq = JIWA_COLL_QUERY_INIT;
    cq.text = "Rubber time: meetings often start later than planned";
    cq.k = 3;
    cq.flags = JIWA_COLL_WITH_META;
    jiwa_coll_result_t res;
    assert_int_equal(
        jiwa_coll_search(jiwa_rt_coll(g_rt, "cultural"), &cq, &res), 0);
    for (uint32_t i = 0; i < res.n; i++)
      assert_true(strncmp(res.hits[i].id, "gen-", 4) != 0 ||
                  res.hits[i].score < 0.8f);
    jiwa_coll_result_free(&res);
  }

  ask(&r, "nightly", "job.runs", "{\"limit\": 10}", 5000);
  assert_ok(&r);
  {
    uint32_t count = 0;
    size_t n = 0;
    elem(&r, "runs", 0, &n, &count);
    assert_int_equal(count, 4);
    char *j = json_of(&r);
    print_message("job.runs: %.300s...\n", j);
    free(j);
  }
  res_free(&r);

  rt_close();
  hook_stop();
  g_hook.th = 0;
  mock_stop(g_pid);
  g_pid = 0;
  jiwa_qlog_free(g_log);
  g_log = NULL;
  jt_rmtree(g_dir);
}

/* ---- the schedule
 * ---------------------------------------------------------------- */

static int64_t at(int h, int m) {
  return jiwa_cron_mktime(2026, 1, 1, h, m, 0) * 1000;
}

static void test_schedule(void **state) {
  (void)state;
  jt_tempdir(g_dir, sizeof g_dir, "nightsched");
  jiwa_querygen_opts_t qo = {.size = sizeof qo,
                             .n = 800,
                             .days = 3,
                             .end_ts = END_TS + 9000,
                             .seed = 3};
  assert_int_equal(jiwa_querygen(&qo, &g_log), 0);
  char plan[700];
  snprintf(plan, sizeof plan, "%s/plan.lua", g_dir);
  write_file(plan, "function plan(req) return { stages = { 'clusters' }, "
                   "days = 2 } end\n");
  rt_open();
  char err[300];
  assert_int_equal(jiwa_rt_spawn_native(g_rt, "convlog", &convlog_desc, -1,
                                        NULL, 0, err, sizeof err),
                   0);
  spawn("nightly", "nightly",
        "{ schedule = '30 2 * * *', script = '@D/plan.lua', "
        "tick_ms = 3600000 }");
  res_t r;
  char js[128];
  atomic_store(&g_hold, 1);
  snprintf(js, sizeof js, "{\"now_ms\": %lld}", (long long)at(2, 29));
  ask(&r, "nightly", "job.tick", js, 5000);
  assert_ok(&r);
  {
    int fired = 1;
    jiwa_mp_get_bool(r.body, r.blen, "fired", &fired);
    assert_false(fired);
  }
  assert_int_equal(fint(&r, "next_ms"), at(2, 30));
  res_free(&r);
  snprintf(js, sizeof js, "{\"now_ms\": %lld}", (long long)at(2, 30));
  ask(&r, "nightly", "job.tick", js, 5000);
  assert_ok(&r);
  {
    int fired = 0;
    jiwa_mp_get_bool(r.body, r.blen, "fired", &fired);
    assert_true(fired);
    assert_int_equal(fint(&r, "next_ms"), at(2, 30) + 86400000LL);
  }
  res_free(&r);
  /* one run at a time: the scheduled run waits on the (held) log */
  ask(&r, "nightly", "job.run", "{\"name\": \"nightly\"}", 5000);
  assert_int_equal(r.kind, JIWA_MSG_ERROR);
  assert_int_equal(r.code, JIWA_EBUSY);
  jt_assert_contains(r.err, "a run is in progress since 2026-01-01T02:30");
  res_free(&r);
  for (int i = 0; i < 1000 && !atomic_load(&g_holding); i++)
    sleep_ms(10);
  atomic_store(&g_hold, 0);
  assert_int_equal(jiwa_rt_tell(g_rt, "convlog", "convlog.release", "\x80", 1),
                   0);
  /* wait for the run's record */
  char st[32] = "running";
  for (int i = 0; i < 1000 && strcmp(st, "running") == 0; i++) {
    ask(&r, "nightly", "job.runs", "{}", 5000);
    assert_ok(&r);
    size_t n = 0;
    const uint8_t *run = elem(&r, "runs", 0, &n, NULL);
    if (run)
      jiwa_mp_get_strcpy(run, n, "status", st, sizeof st);
    if (strcmp(st, "running") != 0) {
      char trig[32];
      jiwa_mp_get_strcpy(run, n, "trigger", trig, sizeof trig);
      assert_string_equal(trig, "schedule");
      char started[32];
      jiwa_mp_get_strcpy(run, n, "started", started, sizeof started);
      assert_string_equal(started, "2026-01-01T02:30:00Z");
    }
    res_free(&r);
    if (strcmp(st, "running") == 0)
      sleep_ms(10);
  }
  assert_string_equal(st, "ok");
  assert_int_equal(atomic_load(&g_since), at(2, 30) - 2 * 86400000LL);
  /* a minute later: nothing; the next day at 02:30: again */
  snprintf(js, sizeof js, "{\"now_ms\": %lld}", (long long)at(2, 31));
  ask(&r, "nightly", "job.tick", js, 5000);
  {
    int fired = 1;
    jiwa_mp_get_bool(r.body, r.blen, "fired", &fired);
    assert_false(fired);
  }
  res_free(&r);
  snprintf(js, sizeof js, "{\"now_ms\": %lld}",
           (long long)(at(2, 30) + 86400000LL));
  ask(&r, "nightly", "job.tick", js, 5000);
  {
    int fired = 0;
    jiwa_mp_get_bool(r.body, r.blen, "fired", &fired);
    assert_true(fired);
  }
  res_free(&r);
  /* job.status, clusters.show of that run, a bad request */
  ask(&r, "nightly", "job.status", "{}", 5000);
  assert_ok(&r);
  res_free(&r);
  ask(&r, "nightly", "job.run", "{\"name\": \"weekly\"}", 5000);
  assert_int_equal(r.code, JIWA_ENOENT);
  res_free(&r);
  for (int i = 0; i < 1000; i++) { /* let the second run end */
    ask(&r, "nightly", "job.status", "{}", 5000);
    int running = 1;
    jiwa_mp_get_bool(r.body, r.blen, "running", &running);
    res_free(&r);
    if (!running)
      break;
    sleep_ms(10);
  }
  ask(&r, "nightly", "clusters.show", "{\"run\": \"r000001\"}", 5000);
  assert_ok(&r);
  assert_true(fint(&r, "queries") > 0);
  res_free(&r);
  rt_close();
  jiwa_qlog_free(g_log);
  g_log = NULL;
  jt_rmtree(g_dir);
}

/* A broken job script fails the run (recorded), never the actor. */
static void test_bad_script(void **state) {
  (void)state;
  jt_tempdir(g_dir, sizeof g_dir, "nightbad");
  char plan[700];
  snprintf(plan, sizeof plan, "%s/plan.lua", g_dir);
  rt_open();
  spawn("nightly", "nightly", "{ schedule = '', script = '@D/plan.lua' }");
  struct {
    const char *src, *needle;
  } cases[] = {
      {"function plan(req) return { stages = { 'golden' } } end",
       "needs stage 'clusters'"},
      {"function plan(req) return { days = 0 } end", "days"},
      {"function plan(req) return 42 end", "must return a table"},
      {"function plan(req) while true do end end", "plan"},
      {"local x = = 1", "plan.lua"},
      {"x = io.open('/etc/passwd')", "io"},
      {"function plan(req) return { stages = { 'cultural' } } end",
       "cultural.topics"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    write_file(plan, cases[i].src);
    res_t r;
    ask(&r, "nightly", "job.run", "{}", 30000);
    assert_int_equal(r.kind, JIWA_MSG_ERROR);
    jt_assert_contains(r.err, "stage plan");
    jt_assert_contains(r.err, cases[i].needle);
    res_free(&r);
  }
  /* the shipped script plans a run (which then needs a conversation log) */
  spawn("shipped", "nightly",
        "{ schedule = '', script = '@S/scripts/jobs/nightly.lua', "
        "convlog = 'nobody' }");
  res_t r;
  ask(&r, "shipped", "job.run", "{}", 30000);
  assert_int_equal(r.kind, JIWA_MSG_ERROR);
  jt_assert_contains(r.err, "failed in stage clusters");
  jt_assert_contains(r.err, "'nobody'");
  res_free(&r);
  rt_close();
  jt_rmtree(g_dir);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MOCKLLM_BINARY\n", argv[0]);
    return 2;
  }
  g_bin = argv[1];
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_nightly_full, teardown),
      cmocka_unit_test_teardown(test_schedule, teardown),
      cmocka_unit_test_teardown(test_bad_script, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
