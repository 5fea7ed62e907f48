/*
 * Crash safety of the store: kill -9 a writer at random moments, reopen,
 * and demand 0 corrupt environments and 0 acknowledged writes lost.
 *
 * Each iteration spawns tests/integration/store_crash_writer on one store
 * directory (shared by all iterations), lets it write for a random time
 * (seeded), SIGKILLs it, reads every sequence number it reported as
 * acknowledged, then opens the store here, runs jiwa_store_check and looks
 * every acknowledged record up (both records of each batch: batches are
 * atomic). Records of old iterations are deleted here so the store stays
 * small however many iterations run; the last KEEP iterations are verified
 * again after each later crash.
 *
 * Usage: test_store_crash WRITER [ITERATIONS]
 *   JIWA_CRASH_ITERS  iterations (default 200; 10000 for the long run)
 *   JIWA_CRASH_SEED   PRNG seed (printed, so a failure can be replayed)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jiwa/mp.h"
#include "jiwa_store.h"

#define KEEP 4
#define THREADS 3

static const char *g_writer;
static long g_iters = 200;
static uint64_t g_seed = 0x5eedu;

typedef struct {
  uint32_t *v;
  size_t n, cap;
} acks_t;

static uint64_t rnd(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w) {
  (void)st;
  (void)f;
  (void)w;
  return remove(p);
}

static void ack_add(acks_t *a, uint32_t it, uint64_t v) {
  if ((uint32_t)(v >> 32) != it) {
    fail_msg("writer reported iteration %u during iteration %u",
             (unsigned)(v >> 32), it);
  }
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 256;
    a->v = realloc(a->v, a->cap * sizeof *a->v);
    assert_non_null(a->v);
  }
  a->v[a->n++] = (uint32_t)v;
}

/* Read acknowledgements until @p deadline (0: until EOF). */
static void drain(int fd, uint32_t it, acks_t *a, uint64_t deadline,
                  int until_first) {
  uint8_t buf[4096];
  size_t have = 0;
  for (;;) {
    int ms = -1;
    if (deadline) {
      uint64_t now = now_us();
      if (now >= deadline)
        return;
      ms = (int)((deadline - now + 999) / 1000);
    }
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, ms);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      continue;
    ssize_t n = read(fd, buf + have, sizeof buf - have);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      return; /* EOF: the writer is gone */
    have += (size_t)n;
    size_t whole = have / 8 * 8;
    for (size_t o = 0; o < whole; o += 8) {
      uint64_t v;
      memcpy(&v, buf + o, 8);
      ack_add(a, it, v);
    }
    memmove(buf, buf + whole, have - whole);
    have -= whole;
    if (until_first && a->n > 0)
      return;
  }
}

static void key_of(jiwa_store_key_t *k, uint32_t it, uint32_t seq) {
  jiwa_store_key_init(k);
  jiwa_store_key_add_u32(k, it);
  jiwa_store_key_add_u32(k, seq);
}

/* Number of acknowledged records missing or wrong in @p s. */
static uint64_t verify(jiwa_store_t *s, uint32_t it, const acks_t *a) {
  uint64_t lost = 0;
  jiwa_store_txn_t *t;
  assert_int_equal(jiwa_store_read_begin(s, &t), 0);
  for (size_t i = 0; i < a->n; i++) {
    jiwa_store_key_t k;
    key_of(&k, it, a->v[i]);
    jiwa_store_val_t v, c;
    int64_t vit = -1, vseq = -1;
    int rc = jiwa_store_kv_get(t, "crash", k.buf, k.len, &v);
    int rc2 = jiwa_store_get(t, JIWA_STORE_DB_CONVERSATIONS, k.buf, k.len, &c);
    if (rc == 0) {
      jiwa_mp_get_int(v.data, v.len, "it", &vit);
      jiwa_mp_get_int(v.data, v.len, "seq", &vseq);
    }
    if (rc || rc2 || vit != it || vseq != a->v[i]) {
      if (lost < 5)
        fprintf(stderr,
                "LOST: iteration %u seq %u (kv %s, conversations "
                "%s)\n",
                it, a->v[i], jiwa_err_name(rc), jiwa_err_name(rc2));
      lost++;
    }
  }
  jiwa_store_read_end(t);
  return lost;
}

static void test_crash_loop(void **state) {
  (void)state;
  assert_non_null(g_writer);
  char dir[256];
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/jiwa-store-crash-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(dir));
  char store_dir[300];
  snprintf(store_dir, sizeof store_dir, "%s/store", dir);

  uint64_t rng = g_seed * 0x9e3779b97f4a7c15ull + 1;
  acks_t kept[KEEP];
  memset(kept, 0, sizeof kept);
  uint64_t total_acks = 0, lost = 0, corrupt = 0, early = 0;
  uint64_t t0 = now_us();
  fprintf(stderr, "store crash test: %ld iterations, seed %" PRIu64 ", %s\n",
          g_iters, g_seed, store_dir);
  for (long it = 0; it < g_iters; it++) {
    uint32_t iter = (uint32_t)it;
    acks_t *a = &kept[it % KEEP];
    a->n = 0;
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      if (dup2(fds[1], 3) < 0)
        _exit(126);
      char itb[16], seedb[32], thb[8];
      snprintf(itb, sizeof itb, "%u", iter);
      snprintf(seedb, sizeof seedb, "%" PRIu64, rnd(&rng));
      snprintf(thb, sizeof thb, "%d", THREADS);
      execl(g_writer, g_writer, store_dir, "3", itb, thb, seedb, (char *)NULL);
      _exit(127);
    }
    rnd(&rng); /* keep parent and child streams apart */
    close(fds[1]);
    /* A quarter of the kills land anywhere (open included); the rest
     * during the write loop, after the first acknowledgement. */
    uint64_t r = rnd(&rng);
    if (r % 4 == 0) {
      drain(fds[0], iter, a, now_us() + r / 4 % 30000, 0);
    } else {
      drain(fds[0], iter, a, now_us() + 5000000, 1);
      drain(fds[0], iter, a, now_us() + r / 4 % 40000, 0);
    }
    kill(pid, SIGKILL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
      fail_msg("iteration %ld: the writer ended by itself (status 0x%x): see "
               "its stderr above",
               it, status);
    drain(fds[0], iter, a, 0, 0);
    close(fds[0]);
    if (a->n == 0)
      early++;
    total_acks += a->n;

    jiwa_store_config_t cfg;
    jiwa_store_config_init(&cfg);
    cfg.path = store_dir;
    jiwa_store_t *s = NULL;
    int rc = jiwa_store_open(&cfg, &s);
    if (rc) {
      fprintf(stderr, "CORRUPT: iteration %ld: open: %s\n", it,
              jiwa_store_errmsg());
      corrupt++;
      break;
    }
    jiwa_store_report_t rep;
    rc = jiwa_store_check(s, &rep);
    if (rc) {
      fprintf(stderr, "CORRUPT: iteration %ld: check: %s: %s\n", it,
              jiwa_store_errmsg(), rep.problems ? rep.problem[0] : "");
      corrupt++;
    }
    for (long back = 0; back < KEEP && back <= it; back++)
      lost += verify(s, (uint32_t)(it - back), &kept[(it - back) % KEEP]);
    if (it + 1 >= KEEP) { /* forget the oldest kept iteration */
      jiwa_store_key_t k;
      jiwa_store_key_init(&k);
      jiwa_store_key_add_u32(&k, (uint32_t)(it + 1 - KEEP));
      jiwa_store_key_t kvk;
      jiwa_store_key_init(&kvk);
      jiwa_store_key_add_str(&kvk, "crash");
      jiwa_store_key_add(&kvk, k.buf, k.len);
      jiwa_store_batch_t *b;
      assert_int_equal(jiwa_store_batch_new(&b), 0);
      assert_int_equal(
          jiwa_store_batch_del_prefix(b, JIWA_STORE_DB_KV, kvk.buf, kvk.len),
          0);
      assert_int_equal(jiwa_store_batch_del_prefix(
                           b, JIWA_STORE_DB_CONVERSATIONS, k.buf, k.len),
                       0);
      assert_int_equal(jiwa_store_submit_wait(s, b), 0);
    }
    assert_int_equal(jiwa_store_close(s), 0);
    if (corrupt || lost)
      break;
    if ((it + 1) % 1000 == 0)
      fprintf(stderr,
              "  %ld iterations, %" PRIu64 " acknowledged writes, "
              "%.1f s\n",
              it + 1, total_acks, (now_us() - t0) / 1e6);
  }
  fprintf(stderr,
          "store crash test: %ld kills, %" PRIu64 " acknowledged "
          "batches (%" PRIu64 " kills before the first), %" PRIu64
          " corrupt environments, %" PRIu64 " acknowledged writes lost, "
          "%.1f s\n",
          g_iters, total_acks, early, corrupt, lost, (now_us() - t0) / 1e6);
  for (int i = 0; i < KEEP; i++)
    free(kept[i].v);
  assert_int_equal(corrupt, 0);
  assert_int_equal(lost, 0);
  assert_true(total_acks > (uint64_t)g_iters); /* the loop really wrote */
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv) {
  g_writer = argc > 1 ? argv[1] : getenv("JIWA_STORE_CRASH_WRITER");
  const char *e = getenv("JIWA_CRASH_ITERS");
  if (argc > 2)
    g_iters = atol(argv[2]);
  else if (e && *e)
    g_iters = atol(e);
  if ((e = getenv("JIWA_CRASH_SEED")) && *e)
    g_seed = strtoull(e, NULL, 0);
  if (g_iters < 1 || !g_writer) {
    fprintf(stderr, "usage: %s WRITER [ITERATIONS]\n", argv[0]);
    return 2;
  }
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_crash_loop)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
