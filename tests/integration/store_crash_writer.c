/*
 * Child of test_store_crash: writes to the store in a loop until it is
 * killed, and reports each acknowledged batch on a pipe.
 *
 * Usage: store_crash_writer DIR FD ITERATION THREADS SEED
 *
 * Each of THREADS threads submits batches (submit_wait) of two records with
 * the same sequence number: kv "crash\0<be32 iteration><be32 seq>" and
 * conversations "<be32 iteration><be32 seq>", payload
 * {"it": iteration, "seq": seq, "pad": <0..300 random bytes>}. Only after
 * jiwa_store_submit_wait returned 0 does the thread write the 8-byte
 * (iteration << 32 | seq) to FD (one write below PIPE_BUF: atomic, so a
 * kill never leaves half a number). The parent kills this process with
 * SIGKILL at a random moment and checks that every reported number is in
 * the store.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jiwa/mp.h"
#include "jiwa_store.h"

static jiwa_store_t *g_store;
static int g_fd;
static uint32_t g_iter;
static unsigned g_threads;

typedef struct {
  unsigned id;
  uint64_t rng;
} thr_t;

static uint64_t next_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static void *run(void *arg) {
  thr_t *t = arg;
  uint8_t pad[300];
  for (uint32_t i = 0;; i++) {
    uint32_t seq = i * g_threads + t->id;
    size_t plen = (size_t)(next_rand(&t->rng) % sizeof pad);
    for (size_t j = 0; j < plen; j++)
      pad[j] = (uint8_t)next_rand(&t->rng);
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 3);
    jiwa_mp_put_kv_int(&w.pk, "it", g_iter);
    jiwa_mp_put_kv_int(&w.pk, "seq", seq);
    jiwa_mp_put_str(&w.pk, "pad");
    msgpack_pack_bin(&w.pk, plen);
    msgpack_pack_bin_body(&w.pk, pad, plen);
    jiwa_store_key_t k;
    jiwa_store_key_init(&k);
    jiwa_store_key_add_u32(&k, g_iter);
    jiwa_store_key_add_u32(&k, seq);
    jiwa_store_batch_t *b;
    int rc = jiwa_store_batch_new(&b);
    if (!rc)
      rc = jiwa_store_batch_kv_put(b, "crash", k.buf, k.len, 1, w.sbuf.data,
                                   w.sbuf.size);
    if (!rc)
      rc = jiwa_store_batch_put(b, JIWA_STORE_DB_CONVERSATIONS, k.buf, k.len, 1,
                                w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
    if (!rc)
      rc = jiwa_store_submit_wait(g_store, b);
    else
      jiwa_store_batch_free(b);
    if (rc) {
      fprintf(stderr, "store_crash_writer: write failed: %s: %s\n",
              jiwa_err_name(rc), jiwa_store_errmsg());
      exit(3);
    }
    uint64_t ack = (uint64_t)g_iter << 32 | seq;
    if (write(g_fd, &ack, sizeof ack) != (ssize_t)sizeof ack)
      exit(4);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s DIR FD ITERATION THREADS SEED\n", argv[0]);
    return 2;
  }
  g_fd = atoi(argv[2]);
  g_iter = (uint32_t)strtoul(argv[3], NULL, 10);
  g_threads = (unsigned)atoi(argv[4]);
  uint64_t seed = strtoull(argv[5], NULL, 10) | 1;
  if (g_threads < 1 || g_threads > 16)
    return 2;
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  cfg.path = argv[1];
  cfg.map_size = 256 * 1024; /* small: growth happens under the kills */
  int rc = jiwa_store_open(&cfg, &g_store);
  if (rc) {
    fprintf(stderr, "store_crash_writer: open failed: %s\n",
            jiwa_store_errmsg());
    return 5;
  }
  pthread_t th[16];
  thr_t t[16];
  for (unsigned i = 0; i < g_threads; i++) {
    t[i].id = i;
    t[i].rng = seed * 0x9e3779b97f4a7c15ull + i + 1;
    if (pthread_create(&th[i], NULL, run, &t[i]) != 0)
      return 6;
  }
  for (unsigned i = 0; i < g_threads; i++)
    pthread_join(th[i], NULL);
  return 0;
}
