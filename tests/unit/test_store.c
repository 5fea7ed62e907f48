/*
 * Unit tests for the LMDB store service (runtime/store/jiwa_store.c).
 *
 * Each test opens its own store in its own mkdtemp directory. Corruption and
 * "newer format" stores are planted with raw LMDB calls, the way another
 * program (or a newer jiwa) would have left them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "jiwa/mp.h"
#include "jiwa_store.h"

#define assert_rc(expr, want)                                                  \
  do {                                                                         \
    int rc_ = (expr);                                                          \
    int want_ = (want);                                                        \
    if (rc_ != want_) {                                                        \
      print_error("%s\n  got %d (%s), want %d (%s)\n  errmsg: %s\n", #expr,    \
                  rc_, jiwa_err_name(rc_), want_, jiwa_err_name(want_),        \
                  jiwa_store_errmsg());                                        \
      fail();                                                                  \
    }                                                                          \
  } while (0)

#define assert_has(hay, needle)                                                \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_))                                                \
      fail_msg("expected \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)");           \
  } while (0)

/* ---- helpers
 * ----------------------------------------------------------------- */

static void tempdir(char *out, size_t cap, const char *tag) {
  const char *t = getenv("TMPDIR");
  snprintf(out, cap, "%s/jiwa-%s-XXXXXX", t && *t ? t : "/tmp", tag);
  assert_non_null(mkdtemp(out));
}

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w) {
  (void)st;
  (void)f;
  (void)w;
  return remove(p);
}

static void rmtree(const char *d) {
  nftw(d, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static jiwa_store_t *open_at(const char *path, size_t map, size_t max) {
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  cfg.path = path;
  if (map)
    cfg.map_size = map;
  if (max)
    cfg.map_max = max;
  jiwa_store_t *s = NULL;
  assert_rc(jiwa_store_open(&cfg, &s), 0);
  assert_non_null(s);
  return s;
}

/* {"n": n, "s": str} */
static void body(jiwa_mp_writer_t *w, int64_t n, const char *str) {
  jiwa_mp_writer_init(w);
  msgpack_pack_map(&w->pk, 2);
  jiwa_mp_put_kv_int(&w->pk, "n", n);
  jiwa_mp_put_kv_str(&w->pk, "s", str);
}

static void put_k(jiwa_store_t *s, jiwa_store_db_t db, const void *key,
                  size_t klen, uint32_t ver, int64_t n, const char *str) {
  jiwa_mp_writer_t w;
  body(&w, n, str);
  assert_rc(
      jiwa_store_put_wait(s, db, key, klen, ver, w.sbuf.data, w.sbuf.size), 0);
  jiwa_mp_writer_free(&w);
}

static void put(jiwa_store_t *s, jiwa_store_db_t db, const char *key,
                uint32_t ver, int64_t n, const char *str) {
  put_k(s, db, key, strlen(key), ver, n, str);
}

/* Reads db[key], checks version and {"n": n}. */
static void expect(jiwa_store_t *s, jiwa_store_db_t db, const char *key,
                   uint32_t ver, int64_t n) {
  jiwa_store_txn_t *t;
  jiwa_store_val_t v;
  assert_rc(jiwa_store_read_begin(s, &t), 0);
  assert_rc(jiwa_store_get(t, db, key, strlen(key), &v), 0);
  assert_int_equal(v.version, ver);
  int64_t got = -1;
  assert_rc(jiwa_mp_get_int(v.data, v.len, "n", &got), 0);
  assert_int_equal(got, n);
  jiwa_store_read_end(t);
}

static void expect_missing(jiwa_store_t *s, jiwa_store_db_t db,
                           const char *key) {
  jiwa_store_txn_t *t;
  jiwa_store_val_t v;
  assert_rc(jiwa_store_read_begin(s, &t), 0);
  assert_rc(jiwa_store_get(t, db, key, strlen(key), &v), JIWA_ENOENT);
  jiwa_store_read_end(t);
}

/* Raw LMDB access to a closed store: plant what another writer would. */
static void raw_put(const char *path, const char *dbname, const void *key,
                    size_t klen, const void *val, size_t vlen) {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  assert_int_equal(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 32);
  assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
  MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
  if (val)
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
  else
    assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

/* ---- CRUD in every database -------------------------------------------------
 */

static void test_crud_each_db(void **state) {
  (void)state;
  char dir[256];
  tempdir(dir, sizeof dir, "store-crud");
  jiwa_store_t *s = open_at(dir, 0, 0);
  for (int db = 1; db < JIWA_STORE_DB_COUNT; db++) {
    const char *name = jiwa_store_db_name(db);
    assert_non_null(name);
    char key[64];
    /* vectors/kv keys follow "<name>\0<id>"; others are free-form. */
    snprintf(key, sizeof key, "key-%s", name);
    put(s, db, key, 1, db, name);
    expect(s, db, key, 1, db);
    put(s, db, key, 300, db * 10, name); /* update, 2-byte version */
    expect(s, db, key, 300, db * 10);
    jiwa_store_batch_t *b;
    assert_rc(jiwa_store_batch_new(&b), 0);
    assert_rc(jiwa_store_batch_del(b, db, key, strlen(key)), 0);
    assert_rc(jiwa_store_batch_del(b, db, "never", 5), 0); /* missing: ok */
    assert_int_equal(jiwa_store_batch_count(b), 2);
    assert_rc(jiwa_store_submit_wait(s, b), 0);
    expect_missing(s, db, key);
  }
  /* a batch is atomic and applies its ops in order */
  jiwa_store_batch_t *b;
  jiwa_mp_writer_t w1, w2;
  body(&w1, 1, "a");
  body(&w2, 2, "b");
  assert_rc(jiwa_store_batch_new(&b), 0);
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_MEMORY, "u", 1, 1,
                                 w1.sbuf.data, w1.sbuf.size),
            0);
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_MEMORY, "u", 1, 1,
                                 w2.sbuf.data, w2.sbuf.size),
            0);
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_GOLDEN, "g", 1, 1,
                                 w1.sbuf.data, w1.sbuf.size),
            0);
  assert_rc(jiwa_store_submit_wait(s, b), 0);
  expect(s, JIWA_STORE_DB_MEMORY, "u", 1, 2);
  expect(s, JIWA_STORE_DB_GOLDEN, "g", 1, 1);

  /* copy-out helper */
  void *copy = NULL;
  size_t clen = 0;
  uint32_t ver = 0;
  assert_rc(
      jiwa_store_fetch(s, JIWA_STORE_DB_MEMORY, "u", 1, &ver, &copy, &clen), 0);
  assert_int_equal(ver, 1);
  assert_int_equal(clen, w2.sbuf.size);
  assert_memory_equal(copy, w2.sbuf.data, clen);
  free(copy);
  assert_rc(jiwa_store_fetch(s, JIWA_STORE_DB_MEMORY, "nobody", 6, NULL, &copy,
                             &clen),
            JIWA_ENOENT);

  /* kv namespaces isolate plugins */
  jiwa_mp_writer_free(&w1);
  jiwa_mp_writer_free(&w2);
  body(&w1, 7, "from a");
  body(&w2, 8, "from b");
  assert_rc(jiwa_store_batch_new(&b), 0);
  assert_rc(jiwa_store_batch_kv_put(b, "plugin_a", "cfg", 3, 1, w1.sbuf.data,
                                    w1.sbuf.size),
            0);
  assert_rc(jiwa_store_batch_kv_put(b, "plugin_b", "cfg", 3, 1, w2.sbuf.data,
                                    w2.sbuf.size),
            0);
  assert_rc(jiwa_store_submit_wait(s, b), 0);
  jiwa_store_txn_t *t;
  jiwa_store_val_t v;
  int64_t n = 0;
  assert_rc(jiwa_store_read_begin(s, &t), 0);
  assert_rc(jiwa_store_kv_get(t, "plugin_a", "cfg", 3, &v), 0);
  assert_rc(jiwa_mp_get_int(v.data, v.len, "n", &n), 0);
  assert_int_equal(n, 7);
  assert_rc(jiwa_store_kv_get(t, "plugin_b", "cfg", 3, &v), 0);
  assert_rc(jiwa_mp_get_int(v.data, v.len, "n", &n), 0);
  assert_int_equal(n, 8);
  assert_rc(jiwa_store_kv_get(t, "plugin_c", "cfg", 3, &v), JIWA_ENOENT);
  assert_rc(jiwa_store_get(t, JIWA_STORE_DB_KV, "plugin_a\0cfg", 12, &v), 0);
  jiwa_store_read_end(t);
  assert_rc(jiwa_store_batch_new(&b), 0);
  assert_rc(jiwa_store_batch_kv_del(b, "plugin_a", "cfg", 3), 0);
  assert_rc(jiwa_store_submit_wait(s, b), 0);
  assert_rc(jiwa_store_read_begin(s, &t), 0);
  assert_rc(jiwa_store_kv_get(t, "plugin_a", "cfg", 3, &v), JIWA_ENOENT);
  assert_rc(jiwa_store_kv_get(t, "plugin_b", "cfg", 3, &v), 0);
  jiwa_store_read_end(t);
  jiwa_mp_writer_free(&w1);
  jiwa_mp_writer_free(&w2);

  jiwa_store_report_t rep;
  assert_rc(jiwa_store_check(s, &rep), 0);
  assert_int_equal(rep.format, JIWA_STORE_FORMAT_VERSION);
  assert_int_equal(rep.entries[JIWA_STORE_DB_KV], 1);
  assert_int_equal(rep.entries[JIWA_STORE_DB_MEMORY], 1);
  assert_rc(jiwa_store_close(s), 0);
  rmtree(dir);
}

/* ---- scans
 * --------------------------------------------------------------------- */

typedef struct {
  char keys[64][64];
  size_t klen[64];
  int64_t n[64];
  int count;
  int stop_after;
} seen_t;

static int collect(const void *key, size_t klen, const jiwa_store_val_t *v,
                   void *ud) {
  seen_t *s = ud;
  if (s->count >= 64)
    return JIWA_ETOOBIG;
  memcpy(s->keys[s->count], key, klen < 63 ? klen : 63);
  s->klen[s->count] = klen;
  s->n[s->count] = -1;
  jiwa_mp_get_int(v->data, v->len, "n", &s->n[s->count]);
  s->count++;
  if (s->stop_after && s->count == s->stop_after)
    return 1;
  return 0;
}

static int refuse(const void *key, size_t klen, const jiwa_store_val_t *v,
                  void *ud) {
  (void)key;
  (void)klen;
  (void)v;
  (void)ud;
  return JIWA_ECANCELED;
}

static void conv_key(jiwa_store_key_t *k, const char *user, uint64_t ts,
                     uint32_t seq) {
  jiwa_store_key_init(k);
  jiwa_store_key_add_str(k, user);
  jiwa_store_key_add_u64(k, ts);
  jiwa_store_key_add_u32(k, seq);
}

static void test_prefix_scan(void **state) {
  (void)state;
  char dir[256];
  tempdir(dir, sizeof dir, "store-scan");
  jiwa_store_t *s = open_at(dir, 0, 0);
  jiwa_store_batch_t *b;
  assert_rc(jiwa_store_batch_new(&b), 0);
  /* u1 and u10 share the text prefix "u1": the NUL separator keeps them
   * apart. Timestamps inserted out of order come back sorted. */
  const char *users[] = {"u1", "u10", "u2"};
  uint64_t ts[] = {300, 100, 70000, 200};
  for (int u = 0; u < 3; u++)
    for (int i = 0; i < 4; i++) {
      jiwa_store_key_t k;
      conv_key(&k, users[u], ts[i], (uint32_t)i);
      jiwa_mp_writer_t w;
      body(&w, (int64_t)ts[i], users[u]);
      assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_CONVERSATIONS, k.buf,
                                     k.len, 1, w.sbuf.data, w.sbuf.size),
                0);
      jiwa_mp_writer_free(&w);
    }
  assert_rc(jiwa_store_submit_wait(s, b), 0);

  jiwa_store_txn_t *t;
  assert_rc(jiwa_store_read_begin(s, &t), 0);
  seen_t seen;
  memset(&seen, 0, sizeof seen);
  assert_rc(jiwa_store_scan_prefix(t, JIWA_STORE_DB_CONVERSATIONS, "u1", 3,
                                   collect, &seen),
            0);
  assert_int_equal(seen.count, 4);
  int64_t want[] = {100, 200, 300, 70000};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(seen.n[i], want[i]);
    assert_int_equal(seen.klen[i], 3 + 8 + 4);
  }
  /* range [u1 ts 150, u1 ts 400) */
  jiwa_store_key_t lo, hi;
  jiwa_store_key_init(&lo);
  jiwa_store_key_add_str(&lo, "u1");
  jiwa_store_key_add_u64(&lo, 150);
  jiwa_store_key_init(&hi);
  jiwa_store_key_add_str(&hi, "u1");
  jiwa_store_key_add_u64(&hi, 400);
  memset(&seen, 0, sizeof seen);
  assert_rc(jiwa_store_scan_range(t, JIWA_STORE_DB_CONVERSATIONS, lo.buf,
                                  lo.len, hi.buf, hi.len, collect, &seen),
            0);
  assert_int_equal(seen.count, 2);
  assert_int_equal(seen.n[0], 200);
  assert_int_equal(seen.n[1], 300);
  /* whole database, stop early, callback error */
  memset(&seen, 0, sizeof seen);
  assert_rc(jiwa_store_scan_prefix(t, JIWA_STORE_DB_CONVERSATIONS, NULL, 0,
                                   collect, &seen),
            0);
  assert_int_equal(seen.count, 12);
  memset(&seen, 0, sizeof seen);
  seen.stop_after = 5;
  assert_rc(jiwa_store_scan_range(t, JIWA_STORE_DB_CONVERSATIONS, NULL, 0, NULL,
                                  0, collect, &seen),
            0);
  assert_int_equal(seen.count, 5);
  assert_rc(jiwa_store_scan_prefix(t, JIWA_STORE_DB_CONVERSATIONS, "u2", 3,
                                   refuse, NULL),
            JIWA_ECANCELED);
  memset(&seen, 0, sizeof seen);
  assert_rc(jiwa_store_scan_prefix(t, JIWA_STORE_DB_CONVERSATIONS, "zz", 2,
                                   collect, &seen),
            0);
  assert_int_equal(seen.count, 0);
  jiwa_store_read_end(t);

  /* kv scan hides the namespace; prefix deletes stay inside the prefix */
  assert_rc(jiwa_store_batch_new(&b), 0);
  const char *names[] = {"alpha", "alps", "beta"};
  for (int i = 0; i < 3; i++) {
    jiwa_mp_writer_t w;
    body(&w, i, names[i]);
    assert_rc(jiwa_store_batch_kv_put(b, "ns", names[i], strlen(names[i]), 1,
                                      w.sbuf.data, w.sbuf.size),
              0);
    assert_rc(jiwa_store_batch_kv_put(b, "ns2", names[i], strlen(names[i]), 1,
                                      w.sbuf.data, w.sbuf.size),
              0);
    jiwa_mp_writer_free(&w);
  }
  assert_rc(
      jiwa_store_batch_del_prefix(b, JIWA_STORE_DB_CONVERSATIONS, "u1", 3), 0);
  assert_rc(jiwa_store_submit_wait(s, b), 0);
  assert_rc(jiwa_store_read_begin(s, &t), 0);
  memset(&seen, 0, sizeof seen);
  assert_rc(jiwa_store_kv_scan(t, "ns", "al", 2, collect, &seen), 0);
  assert_int_equal(seen.count, 2);
  assert_string_equal(seen.keys[0], "alpha");
  assert_string_equal(seen.keys[1], "alps");
  memset(&seen, 0, sizeof seen);
  assert_rc(jiwa_store_kv_scan(t, "ns", NULL, 0, collect, &seen), 0);
  assert_int_equal(seen.count, 3);
  memset(&seen, 0, sizeof seen);
  assert_rc(jiwa_store_scan_prefix(t, JIWA_STORE_DB_CONVERSATIONS, NULL, 0,
                                   collect, &seen),
            0);
  assert_int_equal(seen.count, 8); /* u10 and u2 kept */
  jiwa_store_read_end(t);
  /* empty prefix empties one database */
  assert_rc(jiwa_store_batch_new(&b), 0);
  assert_rc(
      jiwa_store_batch_del_prefix(b, JIWA_STORE_DB_CONVERSATIONS, NULL, 0), 0);
  assert_rc(jiwa_store_submit_wait(s, b), 0);
  assert_rc(jiwa_store_read_begin(s, &t), 0);
  memset(&seen, 0, sizeof seen);
  assert_rc(jiwa_store_scan_prefix(t, JIWA_STORE_DB_CONVERSATIONS, NULL, 0,
                                   collect, &seen),
            0);
  assert_int_equal(seen.count, 0);
  memset(&seen, 0, sizeof seen);
  assert_rc(
      jiwa_store_scan_prefix(t, JIWA_STORE_DB_KV, NULL, 0, collect, &seen), 0);
  assert_int_equal(seen.count, 6);
  jiwa_store_read_end(t);
  assert_rc(jiwa_store_close(s), 0);
  rmtree(dir);
}

/* ---- persistence
 * --------------------------------------------------------------- */

static void test_persistence(void **state) {
  (void)state;
  char dir[256];
  tempdir(dir, sizeof dir, "store-persist");
  jiwa_store_t *s = open_at(dir, 0, 0);
  for (int i = 0; i < 50; i++) {
    char k[32];
    snprintf(k, sizeof k, "user-%02d", i);
    put(s, JIWA_STORE_DB_MEMORY, k, 2, i, "profile");
  }
  put(s, JIWA_STORE_DB_JOBS, "nightly", 1, 42, "ok");
  assert_rc(jiwa_store_close(s), 0);
  s = open_at(dir, 0, 0);
  for (int i = 0; i < 50; i++) {
    char k[32];
    snprintf(k, sizeof k, "user-%02d", i);
    expect(s, JIWA_STORE_DB_MEMORY, k, 2, i);
  }
  expect(s, JIWA_STORE_DB_JOBS, "nightly", 1, 42);
  jiwa_store_report_t rep;
  assert_rc(jiwa_store_check(s, &rep), 0);
  assert_int_equal(rep.entries[JIWA_STORE_DB_MEMORY], 50);
  assert_int_equal(rep.entries[JIWA_STORE_DB_META], 2); /* format, created */
  assert_rc(jiwa_store_close(s), 0);
  rmtree(dir);
}

/* ---- batching: many submitters on several threads
 * ------------------------------- */

#define THREADS 8
#define PER_THREAD 150

typedef struct {
  jiwa_store_t *s;
  int id;
  int failures;
} worker_t;

static void *worker(void *arg) {
  worker_t *w = arg;
  for (int i = 0; i < PER_THREAD; i++) {
    jiwa_store_batch_t *b;
    if (jiwa_store_batch_new(&b)) {
      w->failures++;
      continue;
    }
    /* every third batch carries two records: batches stay atomic */
    int ops = i % 3 == 0 ? 2 : 1;
    for (int j = 0; j < ops; j++) {
      char key[32];
      snprintf(key, sizeof key, "t%d-%04d-%d", w->id, i, j);
      jiwa_mp_writer_t mw;
      body(&mw, w->id * 100000 + i * 10 + j, key);
      if (jiwa_store_batch_put(b, JIWA_STORE_DB_SHADOW, key, strlen(key), 1,
                               mw.sbuf.data, mw.sbuf.size))
        w->failures++;
      jiwa_mp_writer_free(&mw);
    }
    if (jiwa_store_submit_wait(w->s, b) != 0)
      w->failures++;
  }
  return NULL;
}

/* Async submitter on a libuv loop: callbacks must arrive in order. */
typedef struct {
  int next_expected;
  int done;
  int out_of_order;
  int failures;
  jiwa_store_port_t *port;
} loopctx_t;

typedef struct {
  loopctx_t *ctx;
  int seq;
} cbarg_t;

static cbarg_t cbargs[400];

static void on_done(int status, const char *msg, void *ud) {
  cbarg_t *a = ud;
  if (status != 0) {
    a->ctx->failures++;
    fprintf(stderr, "async batch %d failed: %s\n", a->seq, msg);
  }
  if (a->seq != a->ctx->next_expected)
    a->ctx->out_of_order++;
  a->ctx->next_expected = a->seq + 1;
  if (++a->ctx->done == 400)
    jiwa_store_port_close(a->ctx->port);
}

typedef struct {
  jiwa_store_t *s;
  loopctx_t ctx;
  int loop_closed;
} asyncjob_t;

static void *async_thread(void *arg) {
  asyncjob_t *j = arg;
  uv_loop_t loop;
  uv_loop_init(&loop);
  if (jiwa_store_port_open(j->s, &loop, &j->ctx.port) != 0) {
    j->ctx.failures++;
    return NULL;
  }
  for (int i = 0; i < 400; i++) {
    jiwa_store_batch_t *b;
    char key[32];
    snprintf(key, sizeof key, "async-%04d", i);
    jiwa_mp_writer_t mw;
    body(&mw, i, key);
    jiwa_store_batch_new(&b);
    jiwa_store_batch_put(b, JIWA_STORE_DB_SHADOW, key, strlen(key), 1,
                         mw.sbuf.data, mw.sbuf.size);
    jiwa_mp_writer_free(&mw);
    cbargs[i].ctx = &j->ctx;
    cbargs[i].seq = i;
    if (jiwa_store_submit(j->ctx.port, b, on_done, &cbargs[i]) != 0) {
      jiwa_store_batch_free(b);
      j->ctx.failures++;
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT); /* ends once the port is closed */
  j->loop_closed = uv_loop_close(&loop) == 0;
  return NULL;
}

static void test_batching_concurrent(void **state) {
  (void)state;
  char dir[256];
  tempdir(dir, sizeof dir, "store-batch");
  jiwa_store_t *s = open_at(dir, 0, 0);
  pthread_t th[THREADS], ath;
  worker_t w[THREADS];
  asyncjob_t aj;
  memset(&aj, 0, sizeof aj);
  aj.s = s;
  assert_int_equal(pthread_create(&ath, NULL, async_thread, &aj), 0);
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker_t){s, i, 0};
    assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].failures, 0);
  }
  pthread_join(ath, NULL);
  assert_int_equal(aj.ctx.failures, 0);
  assert_int_equal(aj.ctx.done, 400);
  assert_int_equal(aj.ctx.out_of_order, 0);
  assert_true(aj.loop_closed);

  /* every acknowledged write is there */
  for (int t = 0; t < THREADS; t++)
    for (int i = 0; i < PER_THREAD; i++)
      for (int j = 0; j < (i % 3 == 0 ? 2 : 1); j++) {
        char key[32];
        snprintf(key, sizeof key, "t%d-%04d-%d", t, i, j);
        expect(s, JIWA_STORE_DB_SHADOW, key, 1, t * 100000 + i * 10 + j);
      }
  for (int i = 0; i < 400; i++) {
    char key[32];
    snprintf(key, sizeof key, "async-%04d", i);
    expect(s, JIWA_STORE_DB_SHADOW, key, 1, i);
  }
  jiwa_store_stats_t st;
  jiwa_store_stats(s, &st);
  uint64_t batches = THREADS * PER_THREAD + 400;
  assert_int_equal(st.batches, batches);
  assert_int_equal(st.failed_batches, 0);
  assert_true(st.commits >= 1 && st.commits <= batches);
  print_message("  %" PRIu64 " batches in %" PRIu64 " commits\n", st.batches,
                st.commits);
  assert_rc(jiwa_store_close(s), 0);
  rmtree(dir);
}

/* ---- map growth
 * ------------------------------------------------------------------- */

typedef struct {
  jiwa_store_t *s;
  atomic_int stop;
  int reads;
  int errors;
} reader_t;

static void *reader_loop(void *arg) {
  reader_t *r = arg;
  while (!atomic_load(&r->stop)) {
    jiwa_store_txn_t *t;
    if (jiwa_store_read_begin(r->s, &t) != 0) {
      r->errors++;
      continue;
    }
    jiwa_store_val_t v;
    int rc = jiwa_store_get(t, JIWA_STORE_DB_GOLDEN, "g-0000", 6, &v);
    if (rc != 0 && rc != JIWA_ENOENT)
      r->errors++;
    jiwa_store_read_end(t);
    r->reads++;
  }
  return NULL;
}

static void test_map_growth(void **state) {
  (void)state;
  char dir[256];
  tempdir(dir, sizeof dir, "store-grow");
  jiwa_store_t *s = open_at(dir, 64 * 1024, 64u << 20);
  jiwa_store_stats_t st0, st;
  jiwa_store_stats(s, &st0);
  reader_t rd = {.s = s};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, reader_loop, &rd), 0);
  char pad[1000];
  memset(pad, 'x', sizeof pad - 1);
  pad[sizeof pad - 1] = '\0';
  for (int i = 0; i < 40; i++) {
    jiwa_store_batch_t *b;
    assert_rc(jiwa_store_batch_new(&b), 0);
    for (int j = 0; j < 50; j++) {
      char key[32];
      snprintf(key, sizeof key, "g-%04d", i * 50 + j);
      jiwa_mp_writer_t w;
      body(&w, i * 50 + j, pad);
      assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_GOLDEN, key, strlen(key),
                                     1, w.sbuf.data, w.sbuf.size),
                0);
      jiwa_mp_writer_free(&w);
    }
    assert_rc(jiwa_store_submit_wait(s, b), 0);
  }
  atomic_store(&rd.stop, 1);
  pthread_join(th, NULL);
  assert_int_equal(rd.errors, 0);
  jiwa_store_stats(s, &st);
  assert_true(st.map_grows >= 4);
  assert_true(st.map_size >= 2u << 20);
  assert_true(st.map_size > st0.map_size);
  for (int i = 0; i < 2000; i += 97) {
    char key[32];
    snprintf(key, sizeof key, "g-%04d", i);
    expect(s, JIWA_STORE_DB_GOLDEN, key, 1, i);
  }
  assert_rc(jiwa_store_close(s), 0);
  /* reopened with a smaller configured map, the data still fits */
  s = open_at(dir, 64 * 1024, 64u << 20);
  expect(s, JIWA_STORE_DB_GOLDEN, "g-1999", 1, 1999);
  assert_rc(jiwa_store_close(s), 0);
  rmtree(dir);

  /* a hard ceiling: the batch fails with a clear error, nothing is lost */
  tempdir(dir, sizeof dir, "store-full");
  s = open_at(dir, 64 * 1024, 256 * 1024);
  int rc = 0, written = 0;
  for (int i = 0; i < 1000 && rc == 0; i++) {
    char key[32];
    snprintf(key, sizeof key, "g-%04d", i);
    jiwa_mp_writer_t w;
    body(&w, i, pad);
    rc = jiwa_store_put_wait(s, JIWA_STORE_DB_GOLDEN, key, strlen(key), 1,
                             w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
    if (rc == 0)
      written++;
  }
  assert_rc(rc, JIWA_ETOOBIG);
  assert_has(jiwa_store_errmsg(), "map_max");
  assert_true(written > 10);
  for (int i = 0; i < written; i++) {
    char key[32];
    snprintf(key, sizeof key, "g-%04d", i);
    expect(s, JIWA_STORE_DB_GOLDEN, key, 1, i);
  }
  /* deletes still work on a full store */
  jiwa_store_batch_t *b;
  assert_rc(jiwa_store_batch_new(&b), 0);
  assert_rc(jiwa_store_batch_del(b, JIWA_STORE_DB_GOLDEN, "g-0000", 6), 0);
  assert_rc(jiwa_store_submit_wait(s, b), 0);
  expect_missing(s, JIWA_STORE_DB_GOLDEN, "g-0000");
  assert_rc(jiwa_store_close(s), 0);
  rmtree(dir);
}

/* ---- format versions
 * ------------------------------------------------------------------ */

static void test_format_versions(void **state) {
  (void)state;
  char dir[256];
  tempdir(dir, sizeof dir, "store-fmt");
  jiwa_store_t *s = open_at(dir, 0, 0);
  put(s, JIWA_STORE_DB_GOLDEN, "q1", 1, 1, "answer");
  assert_rc(jiwa_store_close(s), 0);

  /* a newer jiwa wrote format 99 */
  const uint8_t newer[] = {0x92, 0x01, 0x63};
  raw_put(dir, "meta", "format", 6, newer, sizeof newer);
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  cfg.path = dir;
  s = NULL;
  assert_rc(jiwa_store_open(&cfg, &s), JIWA_ENOTSUP);
  assert_null(s);
  assert_has(jiwa_store_errmsg(), "format 99");
  assert_has(jiwa_store_errmsg(), "up to 1");
  assert_has(jiwa_store_errmsg(), dir);
  /* refused before touching anything: opening again gives the same answer */
  assert_rc(jiwa_store_open(&cfg, &s), JIWA_ENOTSUP);

  /* a corrupt format record is refused too, with its own message */
  const uint8_t bad[] = {0x92, 0x01, 0xa1, 'x'};
  raw_put(dir, "meta", "format", 6, bad, sizeof bad);
  assert_rc(jiwa_store_open(&cfg, &s), JIWA_EPROTO);
  assert_has(jiwa_store_errmsg(), "corrupt");

  /* an older store (no format record: format 0) is migrated */
  raw_put(dir, "meta", "format", 6, NULL, 0);
  s = open_at(dir, 0, 0);
  expect(s, JIWA_STORE_DB_GOLDEN, "q1", 1, 1);
  jiwa_store_report_t rep;
  assert_rc(jiwa_store_check(s, &rep), 0);
  assert_int_equal(rep.format, JIWA_STORE_FORMAT_VERSION);
  assert_rc(jiwa_store_close(s), 0);

  /* not an LMDB file at all */
  char junk[300];
  tempdir(junk, sizeof junk, "store-junk");
  char f[400];
  snprintf(f, sizeof f, "%s/data.mdb", junk);
  FILE *fp = fopen(f, "w");
  assert_non_null(fp);
  for (int i = 0; i < 2000; i++)
    fputs("not lmdb ", fp);
  fclose(fp);
  cfg.path = junk;
  int rc = jiwa_store_open(&cfg, &s);
  assert_true(rc == JIWA_ENOTSUP || rc == JIWA_EIO);
  assert_has(jiwa_store_errmsg(), junk);
  rmtree(junk);
  rmtree(dir);
}

/* ---- check
 * -------------------------------------------------------------------------------
 */

static void test_check_finds_corruption(void **state) {
  (void)state;
  char dir[256];
  tempdir(dir, sizeof dir, "store-check");
  jiwa_store_t *s = open_at(dir, 0, 0);
  put(s, JIWA_STORE_DB_GOLDEN, "good", 1, 1, "fine");
  put(s, JIWA_STORE_DB_GOLDEN, "zz-after", 1, 2, "fine");
  jiwa_store_report_t rep;
  assert_rc(jiwa_store_check(s, &rep), 0);
  assert_int_equal(rep.problems, 0);
  assert_int_equal(rep.entries[JIWA_STORE_DB_GOLDEN], 2);
  assert_rc(jiwa_store_close(s), 0);

  const uint8_t reserved[] = {0x92, 0x01, 0xc1};    /* reserved byte */
  const uint8_t stray[] = {0x92, 0x01, 0x01, 0x02}; /* trailing bytes */
  const uint8_t nover[] = {0x92, 0x00, 0x80};       /* version 0 */
  const uint8_t huge[] = {0x92, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff}; /* count */
  raw_put(dir, "golden", "bad-reserved", 12, reserved, sizeof reserved);
  raw_put(dir, "kv", "ns\0stray", 8, stray, sizeof stray);
  raw_put(dir, "memory", "nover", 5, nover, sizeof nover);
  raw_put(dir, "jobs", "huge", 4, huge, sizeof huge);
  raw_put(dir, "kv", "no-separator", 12, stray, 3); /* valid value, bad key */

  s = open_at(dir, 0, 0);
  assert_rc(jiwa_store_check(s, &rep), JIWA_EPROTO);
  assert_int_equal(rep.problems, 5);
  assert_int_equal(rep.entries[JIWA_STORE_DB_GOLDEN], 3);
  char all[JIWA_STORE_REPORT_PROBLEMS * 256 + 1] = "";
  for (unsigned i = 0; i < rep.problems && i < JIWA_STORE_REPORT_PROBLEMS; i++)
    strcat(all, rep.problem[i]);
  assert_has(all, "golden key \"bad-reserved\"");
  assert_has(all, "kv key \"ns\\x00stray\"");
  assert_has(all, "memory key \"nover\"");
  assert_has(all, "jobs key \"huge\"");
  assert_has(all, "no-separator");

  /* reads of a corrupt record fail cleanly, the rest still reads */
  jiwa_store_txn_t *t;
  jiwa_store_val_t v;
  assert_rc(jiwa_store_read_begin(s, &t), 0);
  assert_rc(jiwa_store_get(t, JIWA_STORE_DB_GOLDEN, "bad-reserved", 12, &v),
            JIWA_EPROTO);
  assert_has(jiwa_store_errmsg(), "golden");
  assert_has(jiwa_store_errmsg(), "jiwa store check");
  assert_rc(jiwa_store_get(t, JIWA_STORE_DB_JOBS, "huge", 4, &v), JIWA_EPROTO);
  assert_rc(jiwa_store_get(t, JIWA_STORE_DB_GOLDEN, "good", 4, &v), 0);
  seen_t seen;
  memset(&seen, 0, sizeof seen);
  assert_rc(
      jiwa_store_scan_prefix(t, JIWA_STORE_DB_GOLDEN, NULL, 0, collect, &seen),
      JIWA_EPROTO);
  assert_int_equal(seen.count, 0); /* "bad-reserved" sorts first */
  jiwa_store_read_end(t);

  /* repairing = deleting the records; check is clean again */
  jiwa_store_batch_t *b;
  assert_rc(jiwa_store_batch_new(&b), 0);
  assert_rc(jiwa_store_batch_del(b, JIWA_STORE_DB_GOLDEN, "bad-reserved", 12),
            0);
  assert_rc(jiwa_store_batch_del(b, JIWA_STORE_DB_KV, "ns\0stray", 8), 0);
  assert_rc(jiwa_store_batch_del(b, JIWA_STORE_DB_KV, "no-separator", 12), 0);
  assert_rc(jiwa_store_batch_del(b, JIWA_STORE_DB_MEMORY, "nover", 5), 0);
  assert_rc(jiwa_store_batch_del(b, JIWA_STORE_DB_JOBS, "huge", 4), 0);
  assert_rc(jiwa_store_submit_wait(s, b), 0);
  assert_rc(jiwa_store_check(s, &rep), 0);
  assert_rc(jiwa_store_close(s), 0);
  rmtree(dir);
}

/* ---- backup
 * ----------------------------------------------------------------------------------
 */

typedef struct {
  jiwa_store_txn_t *other;
  int db;
  int mismatches;
  int count;
} cmp_t;

static int compare_cb(const void *key, size_t klen, const jiwa_store_val_t *v,
                      void *ud) {
  cmp_t *c = ud;
  jiwa_store_val_t o;
  c->count++;
  if (jiwa_store_get(c->other, c->db, key, klen, &o) != 0 ||
      o.version != v->version || o.len != v->len ||
      memcmp(o.data, v->data, v->len) != 0)
    c->mismatches++;
  return 0;
}

static void test_backup(void **state) {
  (void)state;
  char dir[256], bk[300];
  tempdir(dir, sizeof dir, "store-backup");
  snprintf(bk, sizeof bk, "%s/backup", dir);
  char data[300];
  snprintf(data, sizeof data, "%s/live", dir);
  jiwa_store_t *s = open_at(data, 0, 0);
  int total = 0;
  for (int db = 1; db < JIWA_STORE_DB_COUNT; db++)
    for (int i = 0; i < 30; i++) {
      /* "r<db>\0<i>" suits every key layout, kv and vectors included */
      char key[32];
      int n = snprintf(key, sizeof key, "r%d", db);
      n += 1 + snprintf(key + n + 1, sizeof key - (size_t)n - 1, "%02d", i);
      put_k(s, db, key, (size_t)n, (uint32_t)(db + 1), db * 1000 + i,
            "backed up");
      total++;
    }
  /* deleted data is not copied (compacting copy) */
  jiwa_store_batch_t *b;
  assert_rc(jiwa_store_batch_new(&b), 0);
  assert_rc(jiwa_store_batch_del(b, JIWA_STORE_DB_GOLDEN,
                                 "r5\0"
                                 "00",
                                 5),
            0);
  assert_rc(jiwa_store_submit_wait(s, b), 0);
  total--;
  assert_rc(jiwa_store_backup(s, bk), 0);
  assert_rc(jiwa_store_backup(s, bk), JIWA_EEXIST);
  assert_has(jiwa_store_errmsg(), "already exists");

  jiwa_store_t *c = open_at(bk, 0, 0);
  jiwa_store_report_t rep;
  assert_rc(jiwa_store_check(c, &rep), 0);
  jiwa_store_txn_t *ts, *tc;
  assert_rc(jiwa_store_read_begin(s, &ts), 0);
  assert_rc(jiwa_store_read_begin(c, &tc), 0);
  int seen = 0;
  for (int db = 0; db < JIWA_STORE_DB_COUNT; db++) {
    cmp_t a = {tc, db, 0, 0}, z = {ts, db, 0, 0};
    assert_rc(jiwa_store_scan_prefix(ts, db, NULL, 0, compare_cb, &a), 0);
    assert_rc(jiwa_store_scan_prefix(tc, db, NULL, 0, compare_cb, &z), 0);
    assert_int_equal(a.mismatches, 0);
    assert_int_equal(z.mismatches, 0);
    assert_int_equal(a.count, z.count);
    if (db != JIWA_STORE_DB_META)
      seen += a.count;
  }
  assert_int_equal(seen, total);
  jiwa_store_read_end(tc);
  jiwa_store_read_end(ts);
  assert_rc(jiwa_store_close(c), 0);
  assert_rc(jiwa_store_close(s), 0);
  rmtree(dir);
}

/* ---- argument and state errors
 * ----------------------------------------------------------- */

static void noop_done(int status, const char *msg, void *ud) {
  (void)status;
  (void)msg;
  (void)ud;
}

static void test_errors(void **state) {
  (void)state;
  char dir[256];
  tempdir(dir, sizeof dir, "store-err");
  jiwa_store_t *s = open_at(dir, 0, 0), *s2 = NULL;
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  cfg.path = dir;
  assert_rc(jiwa_store_open(&cfg, &s2), JIWA_EBUSY);
  assert_has(jiwa_store_errmsg(), "already open");
  cfg.path = NULL;
  assert_rc(jiwa_store_open(&cfg, &s2), JIWA_EINVAL);
  cfg.path = dir;
  cfg.map_max = 1;
  assert_rc(jiwa_store_open(&cfg, &s2), JIWA_EINVAL);

  jiwa_store_batch_t *b;
  assert_rc(jiwa_store_batch_new(&b), 0);
  const uint8_t one = 0x01, trunc[] = {0x92, 0x01}, two[] = {0x01, 0x02};
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_KV, "k", 1, 1, trunc, 2),
            JIWA_EINVAL);
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_KV, "k", 1, 1, two, 2),
            JIWA_EINVAL);
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_KV, "k", 1, 1, NULL, 0),
            JIWA_EINVAL);
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_KV, "k", 1, 0, &one, 1),
            JIWA_EINVAL);
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_KV, "k", 1, 65536, &one, 1),
            JIWA_EINVAL);
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_KV, "", 0, 1, &one, 1),
            JIWA_EINVAL);
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_COUNT, "k", 1, 1, &one, 1),
            JIWA_EINVAL);
  char big[600];
  memset(big, 'k', sizeof big);
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_KV, big, 512, 1, &one, 1),
            JIWA_ETOOBIG);
  assert_rc(jiwa_store_batch_kv_put(b, "", "k", 1, 1, &one, 1), JIWA_EINVAL);
  char longns[100];
  memset(longns, 'n', sizeof longns - 1);
  longns[sizeof longns - 1] = '\0';
  assert_rc(jiwa_store_batch_kv_put(b, longns, "k", 1, 1, &one, 1),
            JIWA_EINVAL); /* namespace above 64 bytes */
  assert_rc(jiwa_store_batch_del_prefix(b, JIWA_STORE_DB_META, NULL, 0),
            JIWA_EINVAL);
  /* nesting deeper than 15 inside the envelope is refused */
  uint8_t deep[16];
  memset(deep, 0x91, 15);
  deep[15] = 0x01;
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_KV, "k", 1, 1, deep, 16), 0);
  memset(deep, 0x91, 16);
  uint8_t deeper[17];
  memcpy(deeper, deep, 16);
  deeper[16] = 0x01;
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_KV, "k", 1, 1, deeper, 17),
            JIWA_EINVAL);
  assert_int_equal(jiwa_store_batch_count(b), 1); /* failures added nothing */
  jiwa_store_batch_free(b);

  /* an empty batch is a barrier: it completes after earlier writes */
  assert_rc(jiwa_store_batch_new(&b), 0);
  assert_rc(jiwa_store_submit_wait(s, b), 0);

  /* close refuses while a port is open */
  uv_loop_t loop;
  uv_loop_init(&loop);
  jiwa_store_port_t *p;
  assert_rc(jiwa_store_port_open(s, &loop, &p), 0);
  assert_rc(jiwa_store_close(s), JIWA_EBUSY);
  assert_rc(jiwa_store_submit(p, NULL, noop_done, NULL), JIWA_EINVAL);
  /* closing a port with a write in flight: no callback, the write lands */
  assert_rc(jiwa_store_batch_new(&b), 0);
  assert_rc(jiwa_store_batch_put(b, JIWA_STORE_DB_KV, "x\0y", 3, 1, &one, 1),
            0);
  assert_rc(jiwa_store_submit(p, b, noop_done, NULL), 0);
  jiwa_store_port_close(p);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_rc(jiwa_store_batch_new(&b), 0);
  assert_rc(jiwa_store_submit_wait(s, b), 0); /* barrier */
  void *copy;
  size_t clen;
  assert_rc(
      jiwa_store_fetch(s, JIWA_STORE_DB_KV, "x\0y", 3, NULL, &copy, &clen), 0);
  free(copy);

  /* envelope codec */
  uint8_t env[8];
  jiwa_store_val_t v;
  assert_int_equal(jiwa_store_value_encode(200, &one, 1, env, sizeof env), 5);
  assert_rc(jiwa_store_value_decode(env, 5, &v), 0);
  assert_int_equal(v.version, 200);
  assert_int_equal(v.len, 1);
  assert_rc(jiwa_store_value_decode(env, 4, &v), JIWA_EPROTO);
  assert_int_equal(jiwa_store_value_encode(0, &one, 1, env, sizeof env), 0);
  assert_int_equal(jiwa_store_value_encode(1, &one, 1, env, 2), 0);

  jiwa_store_key_t k;
  jiwa_store_key_init(&k);
  jiwa_store_key_add(&k, big, 511);
  assert_false(k.overflow);
  jiwa_store_key_add_u32(&k, 1);
  assert_true(k.overflow);

  assert_rc(jiwa_store_close(s), 0);
  assert_rc(jiwa_store_close(NULL), 0);
  /* after close the directory can be opened again */
  s = open_at(dir, 0, 0);
  assert_rc(jiwa_store_close(s), 0);
  rmtree(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crud_each_db),
      cmocka_unit_test(test_prefix_scan),
      cmocka_unit_test(test_persistence),
      cmocka_unit_test(test_batching_concurrent),
      cmocka_unit_test(test_map_growth),
      cmocka_unit_test(test_format_versions),
      cmocka_unit_test(test_check_finds_corruption),
      cmocka_unit_test(test_backup),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
