/* bench_socket — what the local socket API costs.
 *
 *   `health` round trip p50/p99 and requests/s, 1 client and 32 concurrent
 *   clients (one thread and one connection each, one request at a time)
 *   memory per idle connection: process RSS before and after opening 1,000
 *   connections (client and server side together, as one process holds both)
 *   baseline: a bare Unix-socket ping-pong (16 bytes each way) between two
 *   threads, measured in the same run, so the ratio survives a noisy machine
 *
 * The runtime and the server run in this process (temp dirs, the echo
 * plugin from $JIWA_PLUGIN_OUT or <build>/plugins); clients use raw sockets.
 * Every figure is the median of REPEATS runs. Usage: bench_socket [N]
 * (N requests per client per run for 1 client, N/8 for each of 32). */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "jiwa/frame.h"
#include "jiwa_log.h"
#include "jiwa_rt.h"
#include "jiwa_server.h"
#include "bench_util.h"

#define REPEATS 5
#define CLIENTS 32
#define IDLE_CONNS 1000

static int N = 20000;

static void die(const char *what) {
  fprintf(stderr, "bench_socket: %s\n", what);
  exit(1);
}

/* ---- raw client ------------------------------------------------------------ */

typedef struct {
  int fd;
  uint8_t buf[65536];
  size_t len;
} cli_t;

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

static int connect_to(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
    die("cannot connect to the server");
  return fd;
}

/* Read one whole frame (blocking); its payload stays in c->buf[4..] until
 * the next call. Returns the payload length. */
static size_t read_frame(cli_t *c, jiwa_frame_t *f) {
  for (;;) {
    if (c->len >= JIWA_FRAME_HDR) {
      int64_t n = jiwa_frame_header(c->buf, sizeof c->buf - JIWA_FRAME_HDR);
      if (n < 0)
        die("bad frame header from the server");
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
      die("the server closed a connection");
    c->len += (size_t)k;
  }
}

static void drop_frame(cli_t *c, size_t n) {
  size_t used = JIWA_FRAME_HDR + n;
  memmove(c->buf, c->buf + used, c->len - used);
  c->len -= used;
}

static void open_client(cli_t *c, const char *path) {
  c->len = 0;
  c->fd = connect_to(path);
  jiwa_frame_t f;
  size_t n = read_frame(c, &f);
  if (!jiwa_frame_op_is(&f, "hello"))
    die("no hello");
  drop_frame(c, n);
}

/* One health frame per id, prebuilt so the loop measures the server. */
typedef struct {
  uint8_t bytes[64];
  size_t len;
} req_t;

static void health_req(req_t *r, uint64_t id) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  if (jiwa_frame_write(&w, id, "health", NULL, 0) || w.sbuf.size > 64)
    die("cannot build a request");
  memcpy(r->bytes, w.sbuf.data, w.sbuf.size);
  r->len = w.sbuf.size;
  jiwa_mp_writer_free(&w);
}

/* ---- health round trips ------------------------------------------------------- */

typedef struct {
  const char *path;
  int n;
  uint64_t *lat; /* n entries, ns */
  pthread_barrier_t *start;
} client_run_t;

static void *client_main(void *arg) {
  client_run_t *cr = arg;
  static _Thread_local cli_t c;
  open_client(&c, cr->path);
  pthread_barrier_wait(cr->start);
  for (int i = 0; i < cr->n; i++) {
    req_t r;
    health_req(&r, (uint64_t)i + 1);
    uint64_t t0 = now_ns();
    if (write_all(c.fd, r.bytes, r.len))
      die("write failed");
    jiwa_frame_t f;
    size_t n = read_frame(&c, &f);
    cr->lat[i] = now_ns() - t0;
    if (f.id != (uint64_t)i + 1 || !jiwa_frame_op_is(&f, "reply"))
      die("unexpected answer to health");
    drop_frame(&c, n);
  }
  close(c.fd);
  return NULL;
}

typedef struct {
  double p50_us, p99_us, rps;
} figs_t;

/* @p clients threads, @p per requests each, one at a time. */
static figs_t run_health(const char *path, int clients, int per) {
  pthread_t th[CLIENTS];
  client_run_t cr[CLIENTS];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)clients + 1);
  uint64_t *lat = malloc(sizeof *lat * (size_t)clients * (size_t)per);
  if (!lat)
    die("out of memory");
  for (int i = 0; i < clients; i++) {
    cr[i] = (client_run_t){path, per, lat + (size_t)i * (size_t)per, &start};
    pthread_create(&th[i], NULL, client_main, &cr[i]);
  }
  pthread_barrier_wait(&start);
  uint64_t t0 = now_ns();
  for (int i = 0; i < clients; i++)
    pthread_join(th[i], NULL);
  uint64_t wall = now_ns() - t0;
  pthread_barrier_destroy(&start);
  size_t total = (size_t)clients * (size_t)per;
  qsort(lat, total, sizeof *lat, cmp_u64);
  figs_t f = {lat[total / 2] / 1000.0, lat[total * 99 / 100] / 1000.0,
              (double)total * 1e9 / (double)wall};
  free(lat);
  return f;
}

/* ---- baseline: bare Unix-socket ping-pong --------------------------------------- */

typedef struct {
  int fd, n;
} echo_arg_t;

static void *echo_main(void *arg) {
  echo_arg_t *ea = arg;
  char b[16];
  for (int i = 0; i < ea->n; i++) {
    size_t got = 0;
    while (got < sizeof b) {
      ssize_t k = read(ea->fd, b + got, sizeof b - got);
      if (k <= 0)
        return NULL;
      got += (size_t)k;
    }
    if (write_all(ea->fd, b, sizeof b))
      return NULL;
  }
  return NULL;
}

static figs_t run_baseline(int n) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
    die("socketpair");
  echo_arg_t ea = {sv[1], n};
  pthread_t th;
  pthread_create(&th, NULL, echo_main, &ea);
  uint64_t *lat = malloc(sizeof *lat * (size_t)n);
  char b[16] = "0123456789abcde";
  uint64_t t0 = now_ns();
  for (int i = 0; i < n; i++) {
    uint64_t t = now_ns();
    if (write_all(sv[0], b, sizeof b))
      die("baseline write");
    size_t got = 0;
    while (got < sizeof b) {
      ssize_t k = read(sv[0], b + got, sizeof b - got);
      if (k <= 0)
        die("baseline read");
      got += (size_t)k;
    }
    lat[i] = now_ns() - t;
  }
  uint64_t wall = now_ns() - t0;
  pthread_join(th, NULL);
  close(sv[0]);
  close(sv[1]);
  qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
  figs_t f = {lat[n / 2] / 1000.0, lat[(size_t)n * 99 / 100] / 1000.0,
              (double)n * 1e9 / (double)wall};
  free(lat);
  return f;
}

/* ---- memory per idle connection ------------------------------------------------- */

static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (!f || fscanf(f, "%ld %ld", &size, &res) != 2)
    die("cannot read /proc/self/statm");
  fclose(f);
  return res * sysconf(_SC_PAGESIZE);
}

static double run_idle(const char *path, double *heap) {
  static int fds[IDLE_CONNS];
  static cli_t c; /* one reader, reused: only fds are kept per connection */
  /* warm the allocator's arenas with one connection first */
  open_client(&c, path);
  close(c.fd);
  usleep(50000);
  malloc_trim(0); /* free pages back to the OS: the delta is fresh pages */
  long before = rss_bytes();
  struct mallinfo2 m0 = mallinfo2();
  for (int i = 0; i < IDLE_CONNS; i++)
    fds[i] = connect_to(path);
  /* every hello read: the server has accepted and set up each one */
  for (int i = 0; i < IDLE_CONNS; i++) {
    c.fd = fds[i];
    c.len = 0;
    jiwa_frame_t f;
    size_t n = read_frame(&c, &f);
    if (!jiwa_frame_op_is(&f, "hello") || c.len != JIWA_FRAME_HDR + n)
      die("no hello");
  }
  usleep(50000);
  long after = rss_bytes();
  struct mallinfo2 m1 = mallinfo2();
  *heap = ((double)m1.uordblks - (double)m0.uordblks) / IDLE_CONNS;
  for (int i = 0; i < IDLE_CONNS; i++)
    close(fds[i]);
  usleep(100000); /* let the server close them before the next run */
  return (double)(after - before) / IDLE_CONNS;
}

/* ---- setup --------------------------------------------------------------------------- */

static int copy_file(const char *src, const char *dst) {
  FILE *in = fopen(src, "rb"), *out = NULL;
  int rc = -1;
  if (in && (out = fopen(dst, "wb"))) {
    char buf[65536];
    size_t n;
    rc = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
      if (fwrite(buf, 1, n, out) != n)
        rc = -1;
  }
  if (in)
    fclose(in);
  if (out && fclose(out))
    rc = -1;
  return rc ? rc : chmod(dst, 0755);
}

/* $JIWA_PLUGIN_OUT, else <build>/plugins next to tools/bench/. */
static void plugin_src(char *out, size_t cap) {
  const char *env = getenv("JIWA_PLUGIN_OUT");
  if (env && *env) {
    snprintf(out, cap, "%s/echo.so", env);
    return;
  }
  char exe[PATH_MAX];
  ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (k <= 0)
    die("cannot find the echo plugin: set JIWA_PLUGIN_OUT");
  exe[k] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash)
    *slash = '\0';
  snprintf(out, cap, "%s/../../plugins/echo.so", exe);
}

static void rm_rf(const char *dir) {
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_socket: could not remove %s\n", dir);
}

int main(int argc, char **argv) {
  if (argc > 1)
    N = atoi(argv[1]);
  if (N < 100)
    N = 100;
  signal(SIGPIPE, SIG_IGN);
  jiwa_log_setup(JIWA_LOG_WARN, 0);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  const char *tmp = getenv("TMPDIR");
  char root[PATH_MAX], plugins[PATH_MAX + 16], state[PATH_MAX + 16],
      sockdir[PATH_MAX + 16], sock[PATH_MAX + 32], src[PATH_MAX + 64],
      dst[PATH_MAX + 32];
  snprintf(root, sizeof root, "%s/jiwa-bench-socket-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(root))
    die("mkdtemp");
  snprintf(plugins, sizeof plugins, "%s/plugins", root);
  snprintf(state, sizeof state, "%s/state", root);
  snprintf(sockdir, sizeof sockdir, "%s/run", root);
  snprintf(sock, sizeof sock, "%s/jiwad.sock", sockdir);
  if (mkdir(plugins, 0700) || mkdir(state, 0700) || mkdir(sockdir, 0700))
    die("mkdir");
  plugin_src(src, sizeof src);
  snprintf(dst, sizeof dst, "%s/echo.so", plugins);
  if (copy_file(src, dst)) {
    fprintf(stderr, "bench_socket: cannot copy %s\n", src);
    return 1;
  }

  jiwa_rt_opts_t o;
  jiwa_rt_opts_default(&o);
  o.workers = 2;
  o.plugin_dir = plugins;
  o.state_dir = state;
  jiwa_rt_t *rt;
  if (jiwa_rt_new(&rt, &o))
    die("jiwa_rt_new");
  char err[512];
  if (jiwa_rt_spawn_plugin(rt, "echo", "echo", -1, NULL, 0, err, sizeof err))
    die(err);
  jiwa_server_opts_t so;
  jiwa_server_opts_default(&so);
  so.path = sock;
  so.max_connections = IDLE_CONNS + 64;
  jiwa_server_t *srv;
  if (jiwa_server_start(&srv, rt, &so, err, sizeof err))
    die(err);

  /* warm-up */
  (void)run_health(sock, 1, N / 10 > 100 ? N / 10 : 100);

  double b50[REPEATS], b99[REPEATS], brps[REPEATS];
  double h50[REPEATS], h99[REPEATS], hrps[REPEATS];
  double m50[REPEATS], m99[REPEATS], mrps[REPEATS];
  double idle[REPEATS], heap[REPEATS];
  int per = N / 8 > 10 ? N / 8 : 10;
  for (int r = 0; r < REPEATS; r++) {
    figs_t b = run_baseline(N);
    figs_t h = run_health(sock, 1, N);
    figs_t m = run_health(sock, CLIENTS, per);
    b50[r] = b.p50_us, b99[r] = b.p99_us, brps[r] = b.rps;
    h50[r] = h.p50_us, h99[r] = h.p99_us, hrps[r] = h.rps;
    m50[r] = m.p50_us, m99[r] = m.p99_us, mrps[r] = m.rps;
    idle[r] = run_idle(sock, &heap[r]);
  }
  double base50 = median(b50, REPEATS), one50 = median(h50, REPEATS);
  printf("bench_socket: median of %d runs; health: %d requests per run with "
         "1 client, %d per client with %d clients, one at a time\n",
         REPEATS, N, per, CLIENTS);
  printf("  baseline Unix-socket ping-pong (16 B), p50  %10.2f us\n", base50);
  printf("  baseline Unix-socket ping-pong (16 B), p99  %10.2f us\n",
         median(b99, REPEATS));
  printf("  baseline Unix-socket ping-pong, round trips/s %8.0f\n",
         median(brps, REPEATS));
  printf("  health, 1 client, p50                       %10.2f us\n", one50);
  printf("  health, 1 client, p99                       %10.2f us\n",
         median(h99, REPEATS));
  printf("  health, 1 client, requests/s                %10.0f\n",
         median(hrps, REPEATS));
  printf("  health, 1 client, p50 / baseline p50        %10.1f x\n",
         base50 > 0 ? one50 / base50 : 0);
  printf("  health, %d clients, p50                      %10.2f us\n",
         CLIENTS, median(m50, REPEATS));
  printf("  health, %d clients, p99                      %10.2f us\n",
         CLIENTS, median(m99, REPEATS));
  printf("  health, %d clients, requests/s               %10.0f\n", CLIENTS,
         median(mrps, REPEATS));
  printf("  memory per idle connection (RSS delta / %d) %8.0f bytes\n",
         IDLE_CONNS, median(idle, REPEATS));
  printf("  memory per idle connection (heap in use)    %8.0f bytes\n",
         median(heap, REPEATS));

  jiwa_server_close(srv);
  int rc = jiwa_rt_stop(rt);
  if (jiwa_server_free(srv))
    rc = JIWA_EBUSY;
  jiwa_rt_free(rt);
  rm_rf(root);
  if (rc)
    fprintf(stderr, "bench_socket: shutdown left handles open\n");
  return rc ? 1 : 0;
}
