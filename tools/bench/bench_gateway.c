/* bench_gateway — what jiwad adds between a chat client and its LLM.
 *
 *   gateway: a streamed chat over jiwad's socket → the policy engine
 *            (scripts/policies/passthrough.lua) → the openai provider →
 *            tools/mockllm, until the final reply frame;
 *   direct:  the same request sent straight to mockllm's
 *            /v1/chat/completions with libcurl (keep-alive, streamed,
 *            read to [DONE]) — the baseline, measured in the same run.
 *
 * Figures (each the median of REPEATS runs):
 *   - latency p50/p99 and requests/s with 1 client and with 32 concurrent
 *     clients (a thread and a connection each, one request at a time);
 *     the added latency is gateway − direct;
 *   - first delta: with mockllm spacing deltas delta_ms apart, the time from
 *     sending the request to the first text delta, through jiwad vs direct
 *     (the difference is what a streamed delta waits in the gateway);
 *   - jiwad's RSS idle and at the end of the 32-client load.
 *
 * It starts mockllm and jiwad itself (temp dir, ephemeral port, private
 * socket) from the build tree: paths relative to this binary
 * (<build>/tools/bench) unless given.
 *
 * Usage: bench_gateway [--requests N] [--jiwad PATH] [--mockllm PATH]
 *                      [--plugins DIR] [--workers W] */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jiwa/frame.h"
#include "bench_util.h"

#define REPEATS 3
#define CLIENTS 32
#define DELTA_MS 20

static int N = 1000;
static int WORKERS = 2;
static char g_tmp[PATH_MAX], g_sock[PATH_MAX + 32];
static int g_port;
static pid_t g_mock = -1, g_jiwad = -1;

static const char *CHAT_JSON =
    "{\"model\":\"llama-x\",\"stream\":true,\"max_tokens\":1024,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"Berapa lama proses KITAS "
    "untuk pekerja asing di Bali?\"}]}";
static const char *CHAT_TEXT =
    "Berapa lama proses KITAS untuk pekerja asing di Bali?";

/* ---- utilities ------------------------------------------------------------------ */

static void die(const char *what) {
  fprintf(stderr, "bench_gateway: %s\n", what);
  if (g_jiwad > 0)
    kill(g_jiwad, SIGTERM);
  if (g_mock > 0)
    kill(g_mock, SIGTERM);
  exit(1);
}

static long rss_kb(pid_t pid) {
  char p[64], line[256];
  snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
  FILE *f = fopen(p, "r");
  long kb = -1;
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

/* ---- processes -------------------------------------------------------------------- */

static pid_t spawn(char *const argv[], const char *log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  if (pid < 0)
    die("fork failed");
  return pid;
}

static void stop(pid_t pid) {
  if (pid <= 0)
    return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 1000; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/* ---- mockllm control ---------------------------------------------------------------- */

static size_t discard(char *d, size_t s, size_t n, void *ud) {
  (void)d;
  (void)ud;
  return s * n;
}

static void mock_ctl(const char *method, const char *path, const char *body) {
  CURL *e = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_port, path);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (body)
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  long st = 0;
  if (curl_easy_perform(e) != CURLE_OK ||
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st) != CURLE_OK ||
      st != 200)
    die("mockllm control request failed");
  curl_easy_cleanup(e);
}

/* ---- the direct path: libcurl straight to mockllm ----------------------------------- */

typedef struct {
  CURL *e;
  struct curl_slist *hdr;
  uint64_t t0, first; /* first content delta seen (ns since t0), 0 none */
  char tail[64];      /* the last bytes, to find a delta split across chunks */
  int done;
} direct_t;

static size_t direct_write(char *d, size_t s, size_t n, void *ud) {
  direct_t *c = ud;
  size_t len = s * n;
  if (!c->first) {
    /* the first chunk carrying non-empty text: "content":"x */
    char probe[64 + 256];
    size_t tl = strlen(c->tail), k = len < 256 ? len : 256;
    memcpy(probe, c->tail, tl);
    memcpy(probe + tl, d, k);
    probe[tl + k] = '\0';
    const char *p = probe;
    while ((p = strstr(p, "\"content\":\"")) != NULL) {
      p += 11;
      if (*p && *p != '"') {
        c->first = now_ns() - c->t0;
        break;
      }
    }
    size_t keep = len < 32 ? len : 32;
    memcpy(c->tail, d + len - keep, keep);
    c->tail[keep] = '\0';
  }
  if (len >= 6 && memmem(d, len, "[DONE]", 6))
    c->done = 1;
  return len;
}

static void direct_init(direct_t *c) {
  memset(c, 0, sizeof *c);
  c->e = curl_easy_init();
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions",
           g_port);
  c->hdr = curl_slist_append(NULL, "content-type: application/json");
  curl_easy_setopt(c->e, CURLOPT_URL, url);
  curl_easy_setopt(c->e, CURLOPT_HTTPHEADER, c->hdr);
  curl_easy_setopt(c->e, CURLOPT_POSTFIELDS, CHAT_JSON);
  curl_easy_setopt(c->e, CURLOPT_WRITEFUNCTION, direct_write);
  curl_easy_setopt(c->e, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(c->e, CURLOPT_TCP_NODELAY, 1L);
}

static uint64_t direct_one(direct_t *c, uint64_t *first) {
  c->t0 = now_ns();
  c->first = 0;
  c->done = 0;
  c->tail[0] = '\0';
  if (curl_easy_perform(c->e) != CURLE_OK || !c->done)
    die("direct request failed");
  if (first)
    *first = c->first;
  return now_ns() - c->t0;
}

static void direct_free(direct_t *c) {
  curl_easy_cleanup(c->e);
  curl_slist_free_all(c->hdr);
}

/* ---- the gateway path: jiwad's socket ---------------------------------------------------- */

typedef struct {
  int fd;
  uint8_t buf[1 << 16];
  size_t len;
  uint8_t req[1024];
  size_t reqlen;
} gw_t;

static int write_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    b += k;
    n -= (size_t)k;
  }
  return 0;
}

static int try_connect(void) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  size_t sl = strlen(g_sock);
  if (sl >= sizeof a.sun_path)
    die("the socket path is too long: set TMPDIR to a shorter directory");
  memcpy(a.sun_path, g_sock, sl + 1);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
    return fd;
  if (fd >= 0)
    close(fd);
  return -1;
}

static size_t read_frame(gw_t *c, jiwa_frame_t *f) {
  for (;;) {
    if (c->len >= JIWA_FRAME_HDR) {
      int64_t n = jiwa_frame_header(c->buf, sizeof c->buf - JIWA_FRAME_HDR);
      if (n < 0)
        die("bad frame from jiwad");
      if (c->len >= JIWA_FRAME_HDR + (size_t)n) {
        char err[160];
        if (jiwa_frame_parse(c->buf + JIWA_FRAME_HDR, (size_t)n, f, err,
                             sizeof err))
          die(err);
        return (size_t)n;
      }
    }
    ssize_t k = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      die("jiwad closed the connection");
    c->len += (size_t)k;
  }
}

static void drop_frame(gw_t *c, size_t n) {
  size_t used = JIWA_FRAME_HDR + n;
  memmove(c->buf, c->buf + used, c->len - used);
  c->len -= used;
}

static void gw_open(gw_t *c) {
  c->len = 0;
  c->fd = try_connect();
  if (c->fd < 0)
    die("cannot connect to jiwad");
  jiwa_frame_t f;
  size_t n = read_frame(c, &f);
  if (!jiwa_frame_op_is(&f, "hello"))
    die("no hello from jiwad");
  drop_frame(c, n);
}

static uint64_t gw_one(gw_t *c, uint64_t id, uint64_t *first) {
  jiwa_mp_writer_t body, w;
  jiwa_mp_writer_init(&body);
  msgpack_pack_map(&body.pk, 2);
  jiwa_mp_put_kv_str(&body.pk, "text", CHAT_TEXT);
  jiwa_mp_put_kv_bool(&body.pk, "stream", 1);
  jiwa_mp_writer_init(&w);
  if (jiwa_frame_write(&w, id, "chat", body.sbuf.data, body.sbuf.size))
    die("cannot build a chat frame");
  uint64_t t0 = now_ns();
  if (write_all(c->fd, w.sbuf.data, w.sbuf.size))
    die("write to jiwad failed");
  jiwa_mp_writer_free(&w);
  jiwa_mp_writer_free(&body);
  if (first)
    *first = 0;
  for (;;) {
    jiwa_frame_t f;
    size_t n = read_frame(c, &f);
    if (f.id != id)
      die("answer for another request");
    if (jiwa_frame_op_is(&f, "delta")) {
      if (first && !*first)
        *first = now_ns() - t0;
      drop_frame(c, n);
      continue;
    }
    if (jiwa_frame_op_is(&f, "error")) {
      const char *m = "";
      size_t ml = 0;
      jiwa_mp_get_str(f.body, f.body_len, "message", &m, &ml);
      fprintf(stderr, "jiwad error: %.*s\n", (int)ml, m);
      die("chat failed through jiwad");
    }
    if (!jiwa_frame_op_is(&f, "reply"))
      die("unexpected frame from jiwad");
    drop_frame(c, n);
    return now_ns() - t0;
  }
}

/* ---- runs ------------------------------------------------------------------------------- */

typedef struct {
  int gateway; /* 1: through jiwad, 0: direct */
  int n;
  uint64_t *lat;
  pthread_barrier_t *start;
} run_arg_t;

static void *client_main(void *arg) {
  run_arg_t *ra = arg;
  if (ra->gateway) {
    gw_t *c = malloc(sizeof *c);
    gw_open(c);
    pthread_barrier_wait(ra->start);
    for (int i = 0; i < ra->n; i++)
      ra->lat[i] = gw_one(c, (uint64_t)i + 1, NULL);
    close(c->fd);
    free(c);
  } else {
    direct_t c;
    direct_init(&c);
    direct_one(&c, NULL); /* open the keep-alive connection first */
    pthread_barrier_wait(ra->start);
    for (int i = 0; i < ra->n; i++)
      ra->lat[i] = direct_one(&c, NULL);
    direct_free(&c);
  }
  return NULL;
}

typedef struct {
  double p50_us, p99_us, rps;
} figs_t;

/* Samples jiwad's RSS while a run is under way. */
typedef struct {
  atomic_int stop;
  long peak;
} rss_probe_t;

static void *rss_main(void *arg) {
  rss_probe_t *p = arg;
  while (!atomic_load(&p->stop)) {
    long kb = rss_kb(g_jiwad);
    if (kb > p->peak)
      p->peak = kb;
    usleep(20000);
  }
  return NULL;
}

static figs_t run(int gateway, int clients, int per, long *peak_rss) {
  pthread_t th[CLIENTS];
  run_arg_t ra[CLIENTS];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)clients + 1);
  uint64_t *lat = malloc(sizeof *lat * (size_t)clients * (size_t)per);
  if (!lat)
    die("out of memory");
  for (int i = 0; i < clients; i++) {
    ra[i] = (run_arg_t){gateway, per, lat + (size_t)i * (size_t)per, &start};
    pthread_create(&th[i], NULL, client_main, &ra[i]);
  }
  rss_probe_t probe = {0, 0};
  pthread_t pt;
  if (peak_rss)
    pthread_create(&pt, NULL, rss_main, &probe);
  pthread_barrier_wait(&start);
  uint64_t t0 = now_ns();
  for (int i = 0; i < clients; i++)
    pthread_join(th[i], NULL);
  uint64_t el = now_ns() - t0;
  if (peak_rss) {
    atomic_store(&probe.stop, 1);
    pthread_join(pt, NULL);
    if (probe.peak > *peak_rss)
      *peak_rss = probe.peak;
  }
  pthread_barrier_destroy(&start);
  size_t total = (size_t)clients * (size_t)per;
  qsort(lat, total, sizeof *lat, cmp_u64);
  figs_t f = {lat[total / 2] / 1e3, lat[total * 99 / 100] / 1e3,
              (double)total / (el / 1e9)};
  free(lat);
  return f;
}

/* ---- setup ------------------------------------------------------------------------------- */

static void start_all(const char *jiwad, const char *mockllm,
                      const char *plugins, const char *srcdir) {
  const char *t = getenv("TMPDIR");
  snprintf(g_tmp, sizeof g_tmp, "%s/jiwa-bench-gw-XXXXXX",
           t && *t ? t : "/tmp");
  if (!mkdtemp(g_tmp))
    die("cannot make a temp dir");
  char pf[PATH_MAX + 16], log[PATH_MAX + 16];
  snprintf(pf, sizeof pf, "%s/mock.port", g_tmp);
  snprintf(log, sizeof log, "%s/mock.log", g_tmp);
  char *margv[] = {(char *)mockllm, "--port", "0", "--port-file", pf,
                   "--quiet", NULL};
  g_mock = spawn(margv, log);
  for (int i = 0; i < 1000 && !g_port; i++) {
    FILE *f = fopen(pf, "r");
    if (f) {
      if (fscanf(f, "%d", &g_port) != 1)
        g_port = 0;
      fclose(f);
    }
    if (!g_port)
      usleep(10000);
  }
  if (!g_port)
    die("mockllm did not start");

  char conf[PATH_MAX + 16];
  snprintf(conf, sizeof conf, "%s/jiwa.lua", g_tmp);
  snprintf(g_sock, sizeof g_sock, "%s/sock/jiwad.sock", g_tmp);
  FILE *f = fopen(conf, "w");
  if (!f)
    die("cannot write the config");
  fprintf(f,
          "return {\n"
          "  workers = %d, plugin_dir = '%s', state_dir = '%s/state',\n"
          "  log = { level = 'warn' },\n"
          "  socket = { path = '%s', max_connections = 256 },\n"
          "  chat = { actor = 'router', type = 'chat' },\n"
          "  actors = {\n"
          "    { name = 'router', plugin = 'policy', config = {\n"
          "        file = '%s/scripts/policies/passthrough.lua',\n"
          "        fallback_actor = 'llama', vars = { main_model = 'llama' } "
          "} },\n"
          "    { name = 'llama', plugin = 'openai', config = {\n"
          "        endpoint = 'http://127.0.0.1:%d/v1', model = 'llama-x' } "
          "},\n"
          "  },\n"
          "}\n",
          WORKERS, plugins, g_tmp, g_sock, srcdir, g_port);
  fclose(f);
  snprintf(log, sizeof log, "%s/jiwad.log", g_tmp);
  char *jargv[] = {(char *)jiwad, "-c", conf, NULL};
  g_jiwad = spawn(jargv, log);
  for (int i = 0; i < 1000; i++) {
    int fd = try_connect();
    if (fd >= 0) {
      close(fd);
      return;
    }
    if (waitpid(g_jiwad, NULL, WNOHANG) == g_jiwad)
      break;
    usleep(10000);
  }
  fprintf(stderr, "see %s\n", log);
  g_jiwad = -1;
  die("jiwad did not start");
}

static void rm_tmp(void) {
  char cmd[PATH_MAX + 32];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_gateway: could not remove %s\n", g_tmp);
}

int main(int argc, char **argv) {
  char self[PATH_MAX], dir[PATH_MAX];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0)
    die("cannot find this binary");
  self[sl] = '\0';
  snprintf(dir, sizeof dir, "%s", self);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = '\0';
  char jiwad[PATH_MAX + 16], mock[PATH_MAX + 32], plugins[PATH_MAX + 16];
  snprintf(jiwad, sizeof jiwad, "%s/../../jiwad", dir);
  snprintf(mock, sizeof mock, "%s/../mockllm/mockllm", dir);
  snprintf(plugins, sizeof plugins, "%s/../../plugins", dir);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--requests") && i + 1 < argc)
      N = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--jiwad") && i + 1 < argc)
      snprintf(jiwad, sizeof jiwad, "%s", argv[++i]);
    else if (!strcmp(argv[i], "--mockllm") && i + 1 < argc)
      snprintf(mock, sizeof mock, "%s", argv[++i]);
    else if (!strcmp(argv[i], "--plugins") && i + 1 < argc)
      snprintf(plugins, sizeof plugins, "%s", argv[++i]);
    else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
      WORKERS = atoi(argv[++i]);
    else {
      fprintf(stderr,
              "usage: bench_gateway [--requests N] [--jiwad PATH] "
              "[--mockllm PATH] [--plugins DIR] [--workers W]\n");
      return 2;
    }
  }
  if (N < 64)
    N = 64;
  char rj[PATH_MAX], rm[PATH_MAX], rp[PATH_MAX];
  if (!realpath(jiwad, rj) || !realpath(mock, rm) || !realpath(plugins, rp))
    die("jiwad, mockllm or the plugin dir not found (build them, or pass "
        "--jiwad/--mockllm/--plugins)");
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  start_all(rj, rm, rp, JIWA_SOURCE_DIR);
  long rss_idle = rss_kb(g_jiwad), rss_peak = rss_idle;

  /* warm both paths (connections, plugin code, allocator) */
  run(1, 1, 50, NULL);
  run(0, 1, 50, NULL);

  printf("bench_gateway: chat streamed through jiwad (socket -> passthrough "
         "policy -> openai provider -> mockllm) vs straight to mockllm with "
         "libcurl\n");
  printf("  %d jiwad workers, %d requests per run for 1 client, %d per "
         "client for %d; median of %d runs\n\n",
         WORKERS, N, N / 8 > 8 ? N / 8 : 8, CLIENTS, REPEATS);
  int per32 = N / 8 > 8 ? N / 8 : 8;
  const int clients[2] = {1, CLIENTS};
  for (int ci = 0; ci < 2; ci++) {
    double gp50[REPEATS], gp99[REPEATS], grps[REPEATS];
    double dp50[REPEATS], dp99[REPEATS], drps[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
      int per = clients[ci] == 1 ? N : per32;
      figs_t g = run(1, clients[ci], per, ci ? &rss_peak : NULL);
      figs_t d = run(0, clients[ci], per, NULL);
      gp50[r] = g.p50_us;
      gp99[r] = g.p99_us;
      grps[r] = g.rps;
      dp50[r] = d.p50_us;
      dp99[r] = d.p99_us;
      drps[r] = d.rps;
    }
    double G50 = median(gp50, REPEATS), G99 = median(gp99, REPEATS),
           GR = median(grps, REPEATS), D50 = median(dp50, REPEATS),
           D99 = median(dp99, REPEATS), DR = median(drps, REPEATS);
    printf("  %2d client%s  direct  p50 %8.1f us  p99 %8.1f us  %8.0f req/s\n",
           clients[ci], clients[ci] == 1 ? " " : "s", D50, D99, DR);
    printf("             gateway p50 %8.1f us  p99 %8.1f us  %8.0f req/s\n",
           G50, G99, GR);
    printf("             added   p50 %8.1f us  p99 %8.1f us   ratio p50 "
           "%.2fx, req/s %.2fx\n\n",
           G50 - D50, G99 - D99, G50 / D50, GR / DR);
  }

  /* time to the first delta with deltas spaced DELTA_MS apart upstream */
  char script[128];
  snprintf(script, sizeof script,
           "{\"route\":\"openai\",\"fault\":\"delta_ms=%d,deltas=3\"}",
           DELTA_MS);
  mock_ctl("POST", "/_mock/script", script);
  int nf = N / 20 < 40 ? 40 : N / 20;
  if (nf > 200)
    nf = 200;
  double gf[REPEATS], df[REPEATS];
  for (int r = 0; r < REPEATS; r++) {
    gw_t *c = malloc(sizeof *c);
    gw_open(c);
    direct_t d;
    direct_init(&d);
    direct_one(&d, NULL);
    uint64_t *g = malloc(sizeof *g * (size_t)nf),
             *dd = malloc(sizeof *dd * (size_t)nf);
    for (int i = 0; i < nf; i++) {
      gw_one(c, (uint64_t)i + 1, &g[i]);
      direct_one(&d, &dd[i]);
    }
    qsort(g, (size_t)nf, sizeof *g, cmp_u64);
    qsort(dd, (size_t)nf, sizeof *dd, cmp_u64);
    gf[r] = g[nf / 2] / 1e3;
    df[r] = dd[nf / 2] / 1e3;
    free(g);
    free(dd);
    direct_free(&d);
    close(c->fd);
    free(c);
  }
  mock_ctl("DELETE", "/_mock/script", NULL);
  double GF = median(gf, REPEATS), DF = median(df, REPEATS);
  printf("  first delta (upstream delta_ms %d, %d requests, 1 client)\n",
         DELTA_MS, nf);
  printf("             direct  p50 %8.1f us   gateway p50 %8.1f us   added "
         "%.1f us (ratio %.2fx)\n\n",
         DF, GF, GF - DF, GF / DF);
  printf("  jiwad RSS  idle %ld KiB, peak under 32 concurrent clients %ld "
         "KiB\n",
         rss_idle, rss_peak);

  stop(g_jiwad);
  stop(g_mock);
  curl_global_cleanup();
  rm_tmp();
  return 0;
}
