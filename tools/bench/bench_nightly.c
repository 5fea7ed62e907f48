/*
 * bench_nightly — the nightly job end to end, per stage.
 *
 * An in-process runtime (2 workers) with a private store, the real
 * nightly, golden_cache and openai plugins, tools/mockllm behind the
 * provider (every reply after `latency=L` ms: a stand-in for a model) and a
 * fake conversation log serving a generated query log (jiwa_querygen, 7
 * days). For each size (10k, 100k queries): the time of each stage as seen
 * by the client from the progress deltas (fetch of the log, embedding +
 * clustering, golden lookups, golden generation of 50 answers, cultural
 * generation of 3 topics x 3 languages) and the peak RSS; the baseline, in
 * the same process, is the bare embedding + clustering of the same texts
 * (jiwa_embed_texts + jiwa_cluster, no actors): the ratio says what the
 * job's plumbing costs on top. Then golden generation throughput
 * (answers/s) with 1, 4 and 16 model requests in flight.
 *
 * Usage: bench_nightly [MOCKLLM] [LATENCY_MS]   (defaults: the build's
 * mockllm, 20 ms). Prints medians of one run per size (the job is long
 * enough to be stable; rerun to compare).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jiwa/json.h"
#include "jiwa_cluster.h"
#include "jiwa_coll.h"
#include "jiwa_config.h"
#include "jiwa_embed.h"
#include "jiwa_log.h"
#include "jiwa_querygen.h"
#include "jiwa_rt.h"
#include "jiwa_store.h"

static char g_dir[512];
static int g_port;
static jiwa_qlog_t *g_log;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench_nightly: %s: %s\n", what, why);
  exit(1);
}

/* ---- mockllm --------------------------------------------------------------
 */

static pid_t mock_spawn(const char *bin) {
  char pf[600];
  snprintf(pf, sizeof pf, "%s/mock.port", g_dir);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open("/dev/null", O_WRONLY);
    dup2(fd, 2);
    execl(bin, bin, "--port", "0", "--port-file", pf, "--quiet", (char *)NULL);
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
  die("mockllm", "did not start");
  return -1;
}

static size_t sink(char *d, size_t s, size_t n, void *ud) {
  (void)d;
  (void)ud;
  return s * n;
}

static void mock_post(const char *path, const char *body) {
  CURL *e = curl_easy_init();
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_port, path);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  if (curl_easy_perform(e) != CURLE_OK)
    die("mockllm", "control request failed");
  curl_easy_cleanup(e);
}

/* ---- the fake conversation log
 * ------------------------------------------------ */

static int convlog_receive(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *m) {
  (void)ctx;
  if (jiwa_msg_kind(m) != JIWA_MSG_ASK)
    return 0;
  int64_t since = 0, until = INT64_MAX;
  jiwa_msg_get_int(m, "since_ms", &since);
  jiwa_msg_get_int(m, "until_ms", &until);
  size_t i = 0, count = 0;
  while (i < g_log->n) {
    size_t start = i, batch = 0;
    for (; i < g_log->n && batch < 200; i++) {
      int64_t t = g_log->q[i].ts * 1000;
      batch += t > since && t <= until;
    }
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_str(&w.pk, "records");
    msgpack_pack_array(&w.pk, batch);
    for (size_t k = start; k < i; k++) {
      int64_t t = g_log->q[k].ts * 1000;
      if (t <= since || t > until)
        continue;
      msgpack_pack_map(&w.pk, 5);
      jiwa_mp_put_kv_int(&w.pk, "time_ms", t);
      jiwa_mp_put_kv_str(&w.pk, "user", "u");
      jiwa_mp_put_kv_str(&w.pk, "lang", g_log->q[k].lang);
      jiwa_mp_put_kv_str(&w.pk, "text", g_log->q[k].text);
      jiwa_mp_put_kv_str(&w.pk, "label",
                         jiwa_querygen_intent_name(g_log->q[k].intent));
    }
    count += batch;
    if (batch)
      jiwa_stream(self, m, "conversations.records", w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_int(&w.pk, "count", (int64_t)count);
  jiwa_reply(self, m, "conversations.done", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  return 0;
}

static const jiwa_plugin_desc_t convlog_desc = {
    JIWA_DESC_HEADER, .name = "fake_convlog", .version = "1", .ctx_size = 8,
    .receive = convlog_receive};

/* ---- the runtime
 * ------------------------------------------------------------- */

static jiwa_rt_t *rt_open(int run, int concurrency) {
  char state[600], store[600];
  snprintf(state, sizeof state, "%s/state%d", g_dir, run);
  snprintf(store, sizeof store, "%s/store%d", g_dir, run);
  mkdir(state, 0700);
  jiwa_rt_opts_t o;
  jiwa_rt_opts_default(&o);
  o.workers = 2;
  o.plugin_dir = JIWA_BENCH_PLUGIN_DIR;
  o.state_dir = state;
  jiwa_rt_t *rt;
  if (jiwa_rt_new(&rt, &o))
    die("runtime", "cannot start");
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  cfg.path = store;
  cfg.fast = 1;
  cfg.map_size = (size_t)512 << 20;
  jiwa_store_t *s;
  if (jiwa_store_open(&cfg, &s))
    die("store", jiwa_store_errmsg());
  jiwa_rt_set_store(rt, s);
  const char *colls[] = {"cultural", "golden"};
  for (int i = 0; i < 2; i++) {
    jiwa_embed_t *e = NULL;
    jiwa_coll_t *c = NULL;
    jiwa_coll_def_t d;
    jiwa_coll_embedder_new("hash", 512, &e);
    jiwa_coll_def_init(&d);
    d.embedder = e;
    d.own_embedder = 1;
    if (jiwa_coll_open(s, colls[i], &d, &c))
      die("collection", jiwa_coll_errmsg());
    jiwa_rt_add_coll(rt, c);
  }
  char err[600], lua[1024];
  jiwa_rt_spawn_native(rt, "convlog", &convlog_desc, -1, NULL, 0, err,
                       sizeof err);
  struct {
    const char *name, *plugin, *fmt;
  } a[] = {
      {"claude", "openai",
       "{ endpoint = 'http://127.0.0.1:%d/v1', model = 'm', retries = 1, "
       "upstream_stream = false, api_key_env = 'JIWA_BENCH_NO_KEY' }"},
      {"llama", "openai",
       "{ endpoint = 'http://127.0.0.1:%d/v1', model = 'm', retries = 1, "
       "upstream_stream = false, api_key_env = 'JIWA_BENCH_NO_KEY' }"},
      {"golden_cache", "golden_cache", "{}"},
      {"nightly", "nightly",
       "{ schedule = '', script = '%s/plan.lua', rag = '', "
       "concurrency = %d }"},
  };
  for (int i = 0; i < 4; i++) {
    if (i < 2)
      snprintf(lua, sizeof lua, a[i].fmt, g_port);
    else if (i == 3)
      snprintf(lua, sizeof lua, a[i].fmt, g_dir, concurrency);
    else
      snprintf(lua, sizeof lua, "%s", a[i].fmt);
    void *mp;
    size_t len;
    if (jiwa_conf_table_to_mp(lua, "bench", &mp, &len, err, sizeof err) ||
        jiwa_rt_spawn_plugin(rt, a[i].name, a[i].plugin, -1, mp, len, err,
                             sizeof err))
      die(a[i].name, err);
    free(mp);
  }
  return rt;
}

/* ---- one run, its stages timed from the progress deltas
 * ------------------------- */

#define STAGES 8
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, failed;
  char names[STAGES][32];
  double first[STAGES];
  int n;
  double t0, t_end;
  int64_t golden, clusters, queries;
  double purity, ari, coverage;
} run_t;

static void on_msg(const jiwa_msg_t *m, void *ud) {
  run_t *r = ud;
  double t = now_s();
  size_t bl;
  const void *b = jiwa_msg_body(m, &bl);
  pthread_mutex_lock(&r->mu);
  if (jiwa_msg_kind(m) == JIWA_MSG_DELTA) {
    char st[32] = "";
    jiwa_mp_get_strcpy(b, bl, "stage", st, sizeof st);
    if (r->n == 0 || strcmp(r->names[r->n - 1], st) != 0) {
      if (r->n < STAGES) {
        snprintf(r->names[r->n], 32, "%s", st);
        r->first[r->n++] = t;
      }
    }
  } else {
    r->t_end = t;
    r->failed = jiwa_msg_kind(m) != JIWA_MSG_REPLY;
    if (r->failed) {
      const char *e = "";
      jiwa_msg_error(m, &e);
      fprintf(stderr, "run failed: %s\n", e);
    } else {
      jiwa_mp_reader_t at;
      if (jiwa_mp_map_find(b, bl, "counts", &at) == 0) {
        size_t cl = jiwa_mp_reader_left(&at);
        jiwa_mp_get_int(at.p, cl, "golden_generated", &r->golden);
        jiwa_mp_get_int(at.p, cl, "clusters", &r->clusters);
        jiwa_mp_get_int(at.p, cl, "queries", &r->queries);
        jiwa_mp_get_double(at.p, cl, "purity", &r->purity);
        jiwa_mp_get_double(at.p, cl, "ari", &r->ari);
        jiwa_mp_get_double(at.p, cl, "coverage_top50", &r->coverage);
      }
    }
    r->done = 1;
    pthread_cond_signal(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
}

static void job_run(jiwa_rt_t *rt, run_t *r, int max_golden) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_kv_int(&w.pk, "days", 7);
  jiwa_mp_put_kv_int(&w.pk, "max_golden", max_golden);
  /* set the job's clock to the end of the log first */
  jiwa_mp_writer_t t;
  jiwa_mp_writer_init(&t);
  msgpack_pack_map(&t.pk, 1);
  jiwa_mp_put_kv_int(&t.pk, "now_ms",
                     (int64_t)g_log->q[g_log->n - 1].ts * 1000);
  jiwa_msg_t *rep = NULL;
  jiwa_rt_ask_sync(rt, "nightly", "job.tick", t.sbuf.data, t.sbuf.size, 5000,
                   &rep);
  if (rep)
    jiwa_msg_release(rep);
  jiwa_mp_writer_free(&t);
  r->t0 = now_s();
  if (jiwa_rt_ask(rt, "nightly", "job.run", w.sbuf.data, w.sbuf.size, 3600000,
                  on_msg, r))
    die("job.run", "refused");
  jiwa_mp_writer_free(&w);
  pthread_mutex_lock(&r->mu);
  while (!r->done)
    pthread_cond_wait(&r->cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
}

static double peak_rss_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0;
}

static const char *PLAN =
    "function plan(req)\n"
    "  return { stages = { 'clusters', 'golden', 'cultural' },\n"
    "    min_cluster_size = 3, golden_model = 'claude',\n"
    "    cultural_model = 'llama',\n"
    "    cultural = { langs = { 'en', 'id', 'it' }, per_prompt = 5,\n"
    "      topics = { 'jam_karet', 'malu', 'banjar' } } }\n"
    "end\n";

int main(int argc, char **argv) {
  const char *bin = argc > 1 ? argv[1] : JIWA_BENCH_MOCKLLM;
  int latency = argc > 2 ? atoi(argv[2]) : 20;
  signal(SIGPIPE, SIG_IGN);
  jiwa_log_setup(JIWA_LOG_ERROR, 0);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const char *tmp = getenv("TMPDIR");
  snprintf(g_dir, sizeof g_dir, "%s/jiwa-bench-nightly-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_dir))
    die("mkdtemp", strerror(errno));
  char plan[600];
  snprintf(plan, sizeof plan, "%s/plan.lua", g_dir);
  FILE *f = fopen(plan, "w");
  fputs(PLAN, f);
  fclose(f);
  pid_t mock = mock_spawn(bin);
  char script[200];
  snprintf(script, sizeof script,
           "{\"route\":\"openai\",\"fault\":\"latency=%d\"}", latency);
  mock_post("/_mock/script", script);
  printf("nightly job, per stage (mockllm replies after %d ms; 50 golden "
         "answers, 9 cultural prompts, 4 model calls in flight)\n\n",
         latency);
  printf("%8s %8s %9s %9s %9s %9s %9s %9s %9s %6s %8s\n", "queries", "fetch",
         "cluster", "lookups", "golden", "cultural", "total", "bare", "ratio",
         "purity", "RSS MiB");
  size_t sizes[] = {10000, 100000};
  int run = 0;
  for (size_t si = 0; si < 2; si++) {
    jiwa_querygen_opts_t qo = {
        .size = sizeof qo, .n = sizes[si] * 10 / 7 + 1, .days = 10, .seed = 11};
    jiwa_querygen(&qo, &g_log);
    jiwa_rt_t *rt = rt_open(run++, 4);
    run_t r;
    job_run(rt, &r, 50);
    if (r.failed)
      die("run", "failed");
    double st[5] = {0}; /* fetch, cluster, lookups, golden, cultural */
    const char *order[5] = {"queries", "clustering", "golden lookups", "golden",
                            "cultural"};
    double starts[6];
    for (int k = 0; k < 5; k++) {
      starts[k] = -1;
      for (int j = 0; j < r.n; j++)
        if (strcmp(r.names[j], order[k]) == 0) {
          starts[k] = r.first[j];
          break;
        }
    }
    starts[5] = r.t_end;
    for (int k = 0; k < 5; k++) {
      double end = r.t_end;
      for (int j = k + 1; j < 6; j++)
        if (starts[j] >= 0) {
          end = starts[j];
          break;
        }
      st[k] = starts[k] >= 0 ? end - starts[k] : 0;
    }
    jiwa_rt_stop(rt);
    jiwa_rt_free(rt);
    /* the baseline: the same window, embedded and clustered bare */
    size_t n = 0;
    int64_t end_ts = g_log->q[g_log->n - 1].ts;
    const char **texts = malloc(g_log->n * sizeof *texts);
    for (size_t i = 0; i < g_log->n; i++)
      if (g_log->q[i].ts > end_ts - 7 * 86400)
        texts[n++] = g_log->q[i].text;
    double b0 = now_s();
    jiwa_embed_t *emb;
    jiwa_embed_hash_new(512, &emb);
    float *v = malloc(n * 512 * sizeof *v);
    jiwa_embed_texts(emb, texts, NULL, n, v);
    jiwa_clustering_t *cl;
    jiwa_cluster(v, n, 512, NULL, &cl);
    double bare = now_s() - b0;
    jiwa_clustering_free(cl);
    free(v);
    free(texts);
    jiwa_embed_destroy(emb);
    printf("%8lld %7.2fs %8.2fs %8.2fs %8.2fs %8.2fs %8.2fs %8.2fs %8.2fx "
           "%6.3f %8.0f\n",
           (long long)r.queries, st[0], st[1], st[2], st[3], st[4],
           r.t_end - r.t0, bare, st[1] / bare, r.purity, peak_rss_mib());
    jiwa_qlog_free(g_log);
  }
  printf("\n'cluster' is the stage (embedding + clustering on the thread "
         "pool); 'bare' the same\nwork without the job around it; ratio = "
         "cluster / bare.\n\n");

  /* golden throughput by concurrency */
  jiwa_querygen_opts_t qo = {
      .size = sizeof qo, .n = 14000, .days = 10, .seed = 11};
  jiwa_querygen(&qo, &g_log);
  printf("golden generation, 100 answers, mockllm latency %d ms:\n", latency);
  printf("%12s %10s %12s %8s\n", "in flight", "time", "answers/s", "ratio");
  double base = 0;
  int conc[] = {1, 4, 16};
  for (int i = 0; i < 3; i++) {
    jiwa_rt_t *rt = rt_open(run++, conc[i]);
    run_t r;
    job_run(rt, &r, 100);
    double t = 0;
    for (int j = 0; j < r.n; j++)
      if (strcmp(r.names[j], "golden") == 0)
        t = (j + 1 < r.n ? r.first[j + 1] : r.t_end) - r.first[j];
    double rate = t > 0 ? (double)r.golden / t : 0;
    if (i == 0)
      base = rate;
    printf("%12d %9.2fs %12.1f %7.2fx\n", conc[i], t, rate,
           base > 0 ? rate / base : 0);
    jiwa_rt_stop(rt);
    jiwa_rt_free(rt);
  }
  jiwa_qlog_free(g_log);
  kill(mock, SIGTERM);
  waitpid(mock, NULL, 0);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", g_dir);
  curl_global_cleanup();
  return 0;
}
