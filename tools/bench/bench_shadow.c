/*
 * bench_shadow — what shadow mode and the JIWA enricher add to the user's
 * path, and how fast the background path enriches.
 *
 * An in-process runtime (2 workers) runs the hybrid policy with claude
 * (anthropic provider) and llama (openai provider) on tools/mockllm, which
 * answers claude after a fixed latency. 32 client threads send chats, each
 * waiting for its answer before the next. Scenarios, in the same run:
 *
 *   off       no convlog, memory, enricher or shadow (the baseline)
 *   on        convlog + memory + enricher + shadow (rate 1), llama healthy
 *   slow      the same, llama answers after 2 s
 *   failing   the same, llama answers 500
 *   hanging   the same, llama never answers (shadow/enricher deadlines 2 s)
 *
 * For each: p50 / p90 / p99 / max of the chat latency, chats/s, failed
 * chats, and the ratio of p50 and p99 to the baseline's. Then the
 * background path alone: N sessions told to the enricher (debounce 0,
 * 32 enrichments in flight) with llama scripted to answer a valid
 * profile; enrichments (model call + validation + merge + store write)
 * per second.
 *
 * Usage: bench_shadow [--chats N] [--clients C] [--primary-ms MS]
 *                     [--sessions N]
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jiwa/json.h"
#include "jiwa/mp.h"
#include "jiwa_config.h"
#include "jiwa_msg.h"
#include "jiwa_rt.h"
#include "jiwa_store.h"

static char g_dir[256];
static int g_port;
static jiwa_rt_t *g_rt;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "bench_shadow: %s\n", what);
  exit(1);
}

/* ---- mockllm -------------------------------------------------------------- */

static pid_t mock_spawn(void) {
  char pf[400];
  snprintf(pf, sizeof pf, "%s/mock.port", g_dir);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a crashed run */
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0)
      dup2(fd, 2);
    execl(MOCKLLM, MOCKLLM, "--port", "0", "--port-file", pf, "--quiet",
          (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 3000; i++) {
    FILE *f = fopen(pf, "r");
    if (f) {
      int ok = fscanf(f, "%d", &g_port) == 1;
      fclose(f);
      if (ok)
        return pid;
    }
    usleep(10000);
  }
  die("mockllm did not start");
  return -1;
}

static size_t sink(char *d, size_t s, size_t n, void *ud) {
  (void)d;
  (void)ud;
  return s * n;
}

static void mock_post(const char *path, const char *body, const char *method) {
  CURL *e = curl_easy_init();
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_port, path);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (body)
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
  if (curl_easy_perform(e) != CURLE_OK)
    die("mockllm control request failed");
  curl_easy_cleanup(e);
}

/* ---- runtime -------------------------------------------------------------------- */

static void spawn(const char *name, const char *plugin, const char *lua) {
  char text[2048];
  size_t k = 0;
  for (const char *p = lua; *p && k + 300 < sizeof text; p++) {
    if (p[0] == '@' && p[1] == 'P') {
      k += (size_t)snprintf(text + k, sizeof text - k, "%d", g_port);
      p++;
    } else if (p[0] == '@' && p[1] == 'S') {
      k += (size_t)snprintf(text + k, sizeof text - k, "%s", JIWA_SOURCE_DIR);
      p++;
    } else {
      text[k++] = *p;
    }
  }
  text[k] = 0;
  void *mp = NULL;
  size_t len = 0;
  char err[512];
  if (jiwa_conf_table_to_mp(text, "bench", &mp, &len, err, sizeof err))
    die(err);
  if (jiwa_rt_spawn_plugin(g_rt, name, plugin, -1, mp, len, err, sizeof err))
    die(err);
  free(mp);
}

static void rt_open(int n) {
  char state[400], sdir[400];
  snprintf(state, sizeof state, "%s/state%d", g_dir, n);
  snprintf(sdir, sizeof sdir, "%s/store%d", g_dir, n);
  mkdir(state, 0700);
  jiwa_rt_opts_t o;
  jiwa_rt_opts_default(&o);
  o.workers = 2;
  o.plugin_dir = JIWA_PLUGIN_OUT;
  o.state_dir = state;
  o.mailbox_max = 100000;
  if (jiwa_rt_new(&g_rt, &o))
    die("runtime");
  jiwa_store_config_t sc;
  jiwa_store_config_init(&sc);
  sc.path = sdir;
  sc.fast = 1;
  jiwa_store_t *st;
  if (jiwa_store_open(&sc, &st) || jiwa_rt_set_store(g_rt, st))
    die("store");
}

static void rt_close(void) {
  jiwa_rt_stop(g_rt);
  jiwa_rt_free(g_rt);
  g_rt = NULL;
}

/* ---- clients ---------------------------------------------------------------------- */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, ok;
} wait_t;

static void on_final(const jiwa_msg_t *m, void *ud) {
  if (jiwa_msg_kind(m) == JIWA_MSG_DELTA)
    return;
  wait_t *w = ud;
  pthread_mutex_lock(&w->mu);
  w->ok = jiwa_msg_kind(m) == JIWA_MSG_REPLY;
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

typedef struct {
  int id, n;
  double *lat;
  int failed;
} client_t;

static void *client_main(void *ud) {
  client_t *c = ud;
  wait_t w;
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  for (int i = 0; i < c->n; i++) {
    jiwa_mp_writer_t b;
    jiwa_mp_writer_init(&b);
    char text[160], user[32];
    snprintf(text, sizeof text,
             "Berapa lama proses KITAS investor? Saya Made, punya villa di "
             "Ubud (%d/%d)",
             c->id, i);
    snprintf(user, sizeof user, "user-%d", c->id);
    msgpack_pack_map(&b.pk, 4);
    jiwa_mp_put_kv_str(&b.pk, "text", text);
    jiwa_mp_put_kv_str(&b.pk, "user", user);
    jiwa_mp_put_kv_str(&b.pk, "session", user);
    jiwa_mp_put_kv_str(&b.pk, "lang", "id");
    w.done = 0;
    double t0 = now_ms();
    if (jiwa_rt_ask(g_rt, "router", "chat", b.sbuf.data, b.sbuf.size, 30000,
                    on_final, &w) != 0) {
      c->failed++;
      c->lat[i] = 0;
      jiwa_mp_writer_free(&b);
      continue;
    }
    jiwa_mp_writer_free(&b);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
      pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    c->lat[i] = now_ms() - t0;
    if (!w.ok)
      c->failed++;
  }
  pthread_mutex_destroy(&w.mu);
  pthread_cond_destroy(&w.cv);
  return NULL;
}

static int dcmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct {
  double p50, p90, p99, max, rate;
  int failed;
} figs_t;

static double pct(const double *v, size_t n, double q) {
  size_t r = (size_t)(q * (double)n + 0.999999);
  return v[r ? (r > n ? n - 1 : r - 1) : 0];
}

static figs_t run_clients(int clients, int chats) {
  pthread_t th[256];
  client_t cl[256];
  int per = chats / clients;
  double t0 = now_ms();
  for (int i = 0; i < clients; i++) {
    cl[i] = (client_t){i, per, calloc((size_t)per, sizeof(double)), 0};
    pthread_create(&th[i], NULL, client_main, &cl[i]);
  }
  size_t n = 0;
  double *all = calloc((size_t)(per * clients), sizeof *all);
  figs_t f = {0};
  for (int i = 0; i < clients; i++) {
    pthread_join(th[i], NULL);
    memcpy(all + n, cl[i].lat, (size_t)per * sizeof *all);
    n += (size_t)per;
    f.failed += cl[i].failed;
    free(cl[i].lat);
  }
  double secs = (now_ms() - t0) / 1000.0;
  qsort(all, n, sizeof *all, dcmp);
  f.p50 = pct(all, n, 0.5);
  f.p90 = pct(all, n, 0.9);
  f.p99 = pct(all, n, 0.99);
  f.max = all[n - 1];
  f.rate = (double)n / secs;
  free(all);
  return f;
}

static int64_t stat_of(const char *actor, const char *op, const char *key) {
  jiwa_msg_t *r = NULL;
  int64_t v = -1;
  if (jiwa_rt_ask_sync(g_rt, actor, op, "\x80", 1, 10000, &r) == 0 && r) {
    size_t len;
    const void *b = jiwa_msg_body(r, &len);
    jiwa_mp_get_int(b, len, key, &v);
  }
  if (r)
    jiwa__msg_release(r);
  return v;
}

/* ---- scenarios ------------------------------------------------------------------------ */

static void setup(int background, const char *llama_fault, int primary_ms,
                  int n) {
  char s[256];
  mock_post("/_mock/reset", "{}", "POST");
  snprintf(s, sizeof s, "{\"route\":\"anthropic\",\"fault\":\"latency=%d\"}",
           primary_ms);
  mock_post("/_mock/script", s, "POST");
  if (llama_fault) {
    snprintf(s, sizeof s, "{\"route\":\"openai\",\"fault\":\"%s\"}",
             llama_fault);
    mock_post("/_mock/script", s, "POST");
  }
  rt_open(n);
  spawn("claude", "anthropic",
        "{ endpoint = 'http://127.0.0.1:@P', model = 'claude-x', "
        "breaker_failures = 0 }");
  spawn("llama", "openai",
        "{ endpoint = 'http://127.0.0.1:@P/v1', model = 'llama-x', "
        "retries = 1, breaker_failures = 0 }");
  spawn("router", "policy",
        "{ file = '@S/scripts/policies/hybrid.lua', fallback_actor = "
        "'llama', ask_timeout_ms = 20000, vars = { main_model = 'claude', "
        "secondary_model = 'llama' } }");
  if (background) {
    spawn("convlog", "convlog", "{ }");
    spawn("memory", "memory", "{ }");
    spawn("jiwa_enricher", "jiwa_enricher",
          "{ debounce_ms = 200, timeout_ms = 2000, max_inflight = 8 }");
    spawn("shadow", "shadow",
          "{ rate = 1, timeout_ms = 2000, max_inflight = 16, max_queue = 64 "
          "}");
  }
}

int main(int argc, char **argv) {
  int chats = 3200, clients = 32, primary_ms = 20, sessions = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--chats") == 0)
      chats = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--clients") == 0)
      clients = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--primary-ms") == 0)
      primary_ms = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--sessions") == 0)
      sessions = atoi(argv[i + 1]);
  }
  if (clients < 1 || clients > 256 || chats < clients)
    die("bad --clients/--chats");
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  snprintf(g_dir, sizeof g_dir, "%s/jiwa-bench-shadow-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(g_dir))
    die("mkdtemp");
  pid_t mock = mock_spawn();

  printf("bench_shadow: %d chats from %d clients, primary model %d ms "
         "(mockllm), hybrid policy, 2 workers\n\n",
         chats, clients, primary_ms);
  printf("%-9s %9s %9s %9s %9s %9s %7s %8s %8s  %s\n", "scenario", "p50_ms",
         "p90_ms", "p99_ms", "max_ms", "chats/s", "failed", "p50/off",
         "p99/off", "shadow sampled/dropped/failed");
  static const struct {
    const char *name;
    int background;
    const char *fault;
  } sc[] = {{"off", 0, NULL},
            {"on", 1, NULL},
            {"slow", 1, "latency=2000"},
            {"failing", 1, "status=500"},
            {"hanging", 1, "silence"}};
  figs_t base = {0};
  for (size_t i = 0; i < sizeof sc / sizeof *sc; i++) {
    setup(sc[i].background, sc[i].fault, primary_ms, (int)i);
    run_clients(clients, clients * 4); /* warm-up: connections, caches */
    figs_t f = run_clients(clients, chats);
    if (i == 0)
      base = f;
    char extra[96] = "-";
    if (sc[i].background)
      snprintf(extra, sizeof extra, "%lld/%lld/%lld",
               (long long)stat_of("shadow", "shadow.stats", "sampled"),
               (long long)stat_of("shadow", "shadow.stats", "dropped"),
               (long long)stat_of("shadow", "shadow.stats", "failed"));
    printf("%-9s %9.2f %9.2f %9.2f %9.2f %9.1f %7d %8.3f %8.3f  %s\n",
           sc[i].name, f.p50, f.p90, f.p99, f.max, f.rate, f.failed,
           f.p50 / base.p50, f.p99 / base.p99, extra);
    fflush(stdout);
    rt_close();
  }

  /* the background path alone: enrichments per second */
  mock_post("/_mock/reset", "{}", "POST");
  mock_post("/_mock/script",
            "{\"route\":\"openai\",\"reply\":\"{\\\"emotional_state\\\": "
            "{\\\"label\\\": \\\"worried\\\", \\\"intensity\\\": 0.6}, "
            "\\\"key_facts\\\": {\\\"name\\\": \\\"Made\\\", "
            "\\\"visa_status\\\": \\\"KITAS\\\"}, \\\"goals\\\": [\\\"open a "
            "cafe in Ubud\\\"], \\\"trust\\\": {\\\"level\\\": 0.6}}\"}",
            "POST");
  rt_open(99);
  spawn("llama", "openai",
        "{ endpoint = 'http://127.0.0.1:@P/v1', model = 'llama-x', "
        "breaker_failures = 0 }");
  spawn("memory", "memory", "{ }");
  spawn("jiwa_enricher", "jiwa_enricher",
        "{ debounce_ms = 0, max_inflight = 32, timeout_ms = 10000 }");
  double t0 = now_ms();
  for (int i = 0; i < sessions; i++) {
    jiwa_mp_writer_t b;
    jiwa_mp_writer_init(&b);
    char user[32];
    snprintf(user, sizeof user, "u%d", i % 500);
    msgpack_pack_map(&b.pk, 4);
    jiwa_mp_put_kv_str(&b.pk, "user", user);
    jiwa_mp_put_kv_str(&b.pk, "session", user);
    jiwa_mp_put_kv_str(&b.pk, "text",
                       "Saya khawatir soal KITAS, nama saya Made dan saya "
                       "ingin buka kafe di Ubud");
    jiwa_mp_put_kv_str(&b.pk, "answer", "Tenang, prosesnya jelas.");
    while (jiwa_rt_tell(g_rt, "jiwa_enricher", "enrich.conversation",
                        b.sbuf.data, b.sbuf.size) == JIWA_EBUSY)
      usleep(1000);
    jiwa_mp_writer_free(&b);
  }
  jiwa_msg_t *r = NULL;
  jiwa_rt_ask_sync(g_rt, "jiwa_enricher", "enrich.flush", "\x80", 1, 600000,
                   &r);
  if (r)
    jiwa__msg_release(r);
  double secs = (now_ms() - t0) / 1000.0;
  long long done = stat_of("jiwa_enricher", "enrich.stats", "enrichments");
  long long merged = stat_of("jiwa_enricher", "enrich.stats", "merged");
  long long model_ok = stat_of("jiwa_enricher", "enrich.stats", "model_ok");
  printf("\nbackground: %d tells -> %lld enrichments (%lld model profiles, "
         "%lld merged) in %.2f s = %.0f enrichments/s (32 in flight, "
         "mockllm without delay)\n",
         sessions, done, model_ok, merged, secs, (double)done / secs);
  rt_close();
  kill(mock, SIGTERM);
  waitpid(mock, NULL, 0);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_shadow: could not remove %s\n", g_dir);
  curl_global_cleanup();
  return 0;
}
