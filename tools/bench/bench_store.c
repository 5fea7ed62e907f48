/* bench_store — what the LMDB store service costs and buys.
 *
 *   writes/s through the store's writer thread (group commit), with 1 and
 *   16 submitters blocked in jiwa_store_submit_wait, and one libuv loop
 *   keeping 64 batches in flight through a port; durable and fast
 *   baseline: raw LMDB, one mdb_put per transaction (mdb_txn_commit each),
 *             same flags, same machine, same run
 *   get latency p50/p99: read_begin + get (envelope checked) + read_end
 *   baseline: raw LMDB mdb_txn_renew + mdb_get + mdb_txn_reset
 *
 * Every figure is the median of REPEATS runs; each run uses a fresh store
 * in $TMPDIR (the disk under it decides the durable figures: fsync).
 * Usage: bench_store [WRITES]  (writes per durable run, default 400)
 */
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include "jiwa/mp.h"
#include "jiwa_store.h"
#include "bench_util.h"

#define REPEATS 3
#define GETS 200000
#define KEYS 10000

static int N = 400;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w) {
  (void)st;
  (void)f;
  (void)w;
  return remove(p);
}

static void fresh_dir(char *out, size_t cap) {
  const char *t = getenv("TMPDIR");
  snprintf(out, cap, "%s/jiwa-bench-store-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(out)) {
    perror("mkdtemp");
    exit(1);
  }
}

/* A typical small record: {"q": "...", "a": "...", "n": i}, ~120 bytes. */
static void record(jiwa_mp_writer_t *w, int i) {
  jiwa_mp_writer_init(w);
  msgpack_pack_map(&w->pk, 3);
  jiwa_mp_put_kv_str(&w->pk, "q", "berapa biaya pengiriman ke surabaya?");
  jiwa_mp_put_kv_str(&w->pk, "a",
                     "Ongkir ke Surabaya mulai Rp15.000, 2-3 hari kerja.");
  jiwa_mp_put_kv_int(&w->pk, "n", i);
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_store: %s: %d %s\n", what, rc, jiwa_store_errmsg());
  exit(1);
}

/* ---- raw LMDB baseline: one put per transaction ------------------------- */

static double raw_writes(int fast, int n) {
  char dir[256];
  fresh_dir(dir, sizeof dir);
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 4);
  mdb_env_set_mapsize(env, 256u << 20);
  if (mdb_env_open(env, dir, MDB_NOTLS | (fast ? MDB_NOSYNC : 0), 0600))
    die("raw open", -1);
  mdb_txn_begin(env, NULL, 0, &txn);
  mdb_dbi_open(txn, "kv", MDB_CREATE, &dbi);
  mdb_txn_commit(txn);
  jiwa_mp_writer_t w;
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    char key[32];
    int kl = snprintf(key, sizeof key, "bench\x01%08d", i);
    record(&w, i);
    MDB_val k = {(size_t)kl, key}, v = {w.sbuf.size, w.sbuf.data};
    if (mdb_txn_begin(env, NULL, 0, &txn) || mdb_put(txn, dbi, &k, &v, 0) ||
        mdb_txn_commit(txn))
      die("raw put", -1);
    jiwa_mp_writer_free(&w);
  }
  double dt = now_s() - t0;
  mdb_env_close(env);
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return n / dt;
}

/* ---- the store: N submitters, one put per batch, submit_wait ------------- */

typedef struct {
  jiwa_store_t *s;
  int id, n;
} sub_t;

static void *submitter(void *arg) {
  sub_t *a = arg;
  for (int i = 0; i < a->n; i++) {
    char key[32];
    int kl = snprintf(key, sizeof key, "bench\x01%02d%08d", a->id, i);
    jiwa_mp_writer_t w;
    record(&w, i);
    int rc = jiwa_store_put_wait(a->s, JIWA_STORE_DB_GOLDEN, key, (size_t)kl, 1,
                                 w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
    if (rc)
      die("store put", rc);
  }
  return NULL;
}

static double store_writes(int fast, int subs, int n, double *per_commit) {
  char dir[256];
  fresh_dir(dir, sizeof dir);
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  cfg.path = dir;
  cfg.fast = fast;
  jiwa_store_t *s;
  int rc = jiwa_store_open(&cfg, &s);
  if (rc)
    die("open", rc);
  pthread_t th[16];
  sub_t a[16];
  double t0 = now_s();
  for (int i = 0; i < subs; i++) {
    a[i] = (sub_t){s, i, n / subs};
    pthread_create(&th[i], NULL, submitter, &a[i]);
  }
  for (int i = 0; i < subs; i++)
    pthread_join(th[i], NULL);
  double dt = now_s() - t0;
  jiwa_store_stats_t st;
  jiwa_store_stats(s, &st);
  *per_commit = st.commits ? (double)st.batches / (double)st.commits : 0;
  jiwa_store_close(s);
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return (double)(n / subs * subs) / dt;
}

/* ---- the store: one libuv loop, pipelined through a completion port ------ */

#define INFLIGHT 64

typedef struct {
  jiwa_store_t *s;
  jiwa_store_port_t *port;
  int sent, done, n;
} pipe_t;

static void pipe_send(pipe_t *p);

static void pipe_done(int status, const char *msg, void *ud) {
  pipe_t *p = ud;
  if (status) {
    fprintf(stderr, "bench_store: async put: %s\n", msg);
    exit(1);
  }
  if (++p->done == p->n)
    jiwa_store_port_close(p->port);
  else
    pipe_send(p);
}

static void pipe_send(pipe_t *p) {
  while (p->sent < p->n && p->sent - p->done < INFLIGHT) {
    char key[32];
    int kl = snprintf(key, sizeof key, "pipe\x01%08d", p->sent);
    jiwa_mp_writer_t w;
    record(&w, p->sent);
    jiwa_store_batch_t *b;
    jiwa_store_batch_new(&b);
    jiwa_store_batch_put(b, JIWA_STORE_DB_GOLDEN, key, (size_t)kl, 1,
                         w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
    int rc = jiwa_store_submit(p->port, b, pipe_done, p);
    if (rc)
      die("submit", rc);
    p->sent++;
  }
}

static double store_pipelined(int fast, int n, double *per_commit) {
  char dir[256];
  fresh_dir(dir, sizeof dir);
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  cfg.path = dir;
  cfg.fast = fast;
  jiwa_store_t *s;
  int rc = jiwa_store_open(&cfg, &s);
  if (rc)
    die("open", rc);
  uv_loop_t loop;
  uv_loop_init(&loop);
  pipe_t p = {s, NULL, 0, 0, n};
  if ((rc = jiwa_store_port_open(s, &loop, &p.port)))
    die("port", rc);
  double t0 = now_s();
  pipe_send(&p);
  uv_run(&loop, UV_RUN_DEFAULT);
  double dt = now_s() - t0;
  uv_loop_close(&loop);
  jiwa_store_stats_t st;
  jiwa_store_stats(s, &st);
  *per_commit = st.commits ? (double)st.batches / (double)st.commits : 0;
  jiwa_store_close(s);
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return n / dt;
}

/* ---- gets -------------------------------------------------------------------
 */

static uint64_t lat[GETS];

static int cmp_u(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void quantiles(double *p50, double *p99) {
  qsort(lat, GETS, sizeof lat[0], cmp_u);
  *p50 = (double)lat[GETS / 2];
  *p99 = (double)lat[GETS * 99 / 100];
}

static void gets(double *sp50, double *sp99, double *rp50, double *rp99) {
  char dir[256];
  fresh_dir(dir, sizeof dir);
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  cfg.path = dir;
  cfg.fast = 1;
  jiwa_store_t *s;
  int rc = jiwa_store_open(&cfg, &s);
  if (rc)
    die("open", rc);
  jiwa_store_batch_t *b;
  jiwa_store_batch_new(&b);
  for (int i = 0; i < KEYS; i++) {
    char key[32];
    int kl = snprintf(key, sizeof key, "user-%08d", i);
    jiwa_mp_writer_t w;
    record(&w, i);
    jiwa_store_batch_put(b, JIWA_STORE_DB_MEMORY, key, (size_t)kl, 1,
                         w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
  }
  if ((rc = jiwa_store_submit_wait(s, b)))
    die("load", rc);
  uint64_t rng = 88172645463325252ull, sink = 0;
  for (int i = 0; i < GETS; i++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    char key[32];
    int kl = snprintf(key, sizeof key, "user-%08d", (int)(rng % KEYS));
    uint64_t t0 = now_ns();
    jiwa_store_txn_t *t;
    jiwa_store_val_t v;
    if (jiwa_store_read_begin(s, &t) ||
        jiwa_store_get(t, JIWA_STORE_DB_MEMORY, key, (size_t)kl, &v))
      die("get", -1);
    sink += v.len;
    jiwa_store_read_end(t);
    lat[i] = now_ns() - t0;
  }
  quantiles(sp50, sp99);
  jiwa_store_close(s);

  /* raw LMDB on the same file */
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 32);
  if (mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0600))
    die("raw open", -1);
  /* a dbi opened in a read txn outlives it only if that txn commits */
  if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) ||
      mdb_dbi_open(txn, "memory", 0, &dbi) || mdb_txn_commit(txn) ||
      mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
    die("raw dbi", -1);
  mdb_txn_reset(txn);
  for (int i = 0; i < GETS; i++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    char key[32];
    int kl = snprintf(key, sizeof key, "user-%08d", (int)(rng % KEYS));
    uint64_t t0 = now_ns();
    MDB_val k = {(size_t)kl, key}, v;
    if (mdb_txn_renew(txn) || mdb_get(txn, dbi, &k, &v))
      die("raw get", -1);
    sink += v.mv_size;
    mdb_txn_reset(txn);
    lat[i] = now_ns() - t0;
  }
  quantiles(rp50, rp99);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  if (sink == 0)
    printf("(impossible)\n");
}

int main(int argc, char **argv) {
  if (argc > 1)
    N = atoi(argv[1]);
  if (N < 16)
    N = 16;
  printf("bench_store: median of %d runs, %d writes per durable run, "
         "%d per fast run\n",
         REPEATS, N, N * 10);
  static const char *names[4] = {
      "raw LMDB, 1 put/txn (baseline)", "store, 1 submitter (wait each)",
      "store, 16 submitters (wait each)", "store, 1 loop, 64 in flight"};
  for (int fast = 0; fast <= 1; fast++) {
    int n = fast ? N * 10 : N;
    double w[4][REPEATS], g[4][REPEATS];
    for (int r = 0; r < REPEATS; r++) {
      w[0][r] = raw_writes(fast, n);
      g[0][r] = 1;
      w[1][r] = store_writes(fast, 1, n, &g[1][r]);
      w[2][r] = store_writes(fast, 16, n, &g[2][r]);
      w[3][r] = store_pipelined(fast, n, &g[3][r]);
    }
    double base = median(w[0], REPEATS);
    for (int i = 0; i < 4; i++) {
      double m = median(w[i], REPEATS);
      printf("%-7s %-34s %9.0f writes/s  x%5.2f  %5.1f batches/commit\n",
             fast ? "fast" : "durable", names[i], m, m / base,
             median(g[i], REPEATS));
    }
  }
  double s50[REPEATS], s99[REPEATS], r50[REPEATS], r99[REPEATS];
  for (int r = 0; r < REPEATS; r++)
    gets(&s50[r], &s99[r], &r50[r], &r99[r]);
  double a = median(s50, REPEATS), b = median(s99, REPEATS),
         c = median(r50, REPEATS), d = median(r99, REPEATS);
  printf("get (%d keys, %d random gets, txn per get):\n", KEYS, GETS);
  printf("  raw LMDB renew+get+reset (baseline)  p50 %6.0f ns  p99 %6.0f ns\n",
         c, d);
  printf("  store read_begin+get+read_end        p50 %6.0f ns  p99 %6.0f ns"
         "  x%.2f / x%.2f\n",
         a, b, a / c, b / d);
  return 0;
}
