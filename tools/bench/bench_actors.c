/* bench_actors — what the actor runtime costs.
 *
 *   ask round trip p50/p99, same loop and cross loop (one ask at a time)
 *   messages/s: pipelined asks (64 in flight) and tells, 1 and 2 workers
 *   baseline: a bare libuv cross-thread ping-pong (uv_async_send both ways)
 *             measured in the same run, so ratios survive a noisy machine
 *
 * Every figure is the median of REPEATS runs. Usage: bench_actors [N]
 * (N asks per run, default 20000). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "jiwa_log.h"
#include "jiwa_msg.h"
#include "jiwa_rt.h"
#include "jiwa_rt_int.h"
#include "bench_util.h"

#define REPEATS 5

static int N = 20000;

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
} gate_t;

static void gate_open(gate_t *g) {
  pthread_mutex_lock(&g->mu);
  g->done = 1;
  pthread_cond_signal(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static void gate_wait(gate_t *g) {
  pthread_mutex_lock(&g->mu);
  while (!g->done)
    pthread_cond_wait(&g->cv, &g->mu);
  g->done = 0;
  pthread_mutex_unlock(&g->mu);
}

/* ---- actors ------------------------------------------------------------- */

static int pong_receive(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *m) {
  if (jiwa_msg_kind(m) == JIWA_MSG_ASK)
    return jiwa_reply(self, m, "pong", NULL, 0);
  return 0;
}

static const jiwa_plugin_desc_t pong_desc = {
    JIWA_DESC_HEADER, .name = "pong", .version = "b", .receive = pong_receive};

typedef struct {
  gate_t *gate;
  uint64_t *rtt;
  int sent, done, n, inflight;
  uint64_t t_send[128];
  uint64_t t0, t1;
  const char *target;
  int tells;
} ping_ctx_t;

static ping_ctx_t *ping_state; /* one benchmark at a time */

static void ping_next(jiwa_actor_t *self, ping_ctx_t *c);

static void ping_reply(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *r,
                       void *ud) {
  ping_ctx_t *c = ping_state;
  size_t slot = (size_t)(uintptr_t)ud;
  if (c->rtt)
    c->rtt[c->done] = jiwa__now_us() * 1000 - c->t_send[slot];
  c->done++;
  if (c->done == c->n) {
    c->t1 = jiwa__now_us();
    gate_open(c->gate);
    return;
  }
  ping_next(self, c);
}

static void ping_next(jiwa_actor_t *self, ping_ctx_t *c) {
  while (c->sent < c->n && c->sent - c->done < c->inflight) {
    size_t slot = (size_t)c->sent % 128;
    c->t_send[slot] = jiwa__now_us() * 1000;
    c->sent++;
    if (jiwa_ask(self, c->target, "ping", NULL, 0, 60000, ping_reply,
                 (void *)(uintptr_t)slot))
      abort();
  }
}

static int ping_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  ping_ctx_t *c = ping_state;
  if (strcmp(jiwa_msg_type(m), "go") == 0) {
    c->t0 = jiwa__now_us();
    if (c->tells) {
      for (int i = 0; i < c->n; i++)
        while (jiwa_tell(self, c->target, "t", NULL, 0) == JIWA_EBUSY)
          ;
      return 0;
    }
    ping_next(self, c);
  }
  return 0;
}

static const jiwa_plugin_desc_t ping_desc = {
    JIWA_DESC_HEADER, .name = "ping", .version = "b", .receive = ping_receive};

static atomic_int sink_count;
static gate_t *sink_gate;
static int sink_want;
static uint64_t sink_t1;

static int sink_receive(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *m) {
  if (atomic_fetch_add(&sink_count, 1) + 1 == sink_want) {
    sink_t1 = jiwa__now_us();
    gate_open(sink_gate);
  }
  return 0;
}

static const jiwa_plugin_desc_t sink_desc = {
    JIWA_DESC_HEADER, .name = "sink", .version = "b", .receive = sink_receive};

/* ---- one run ------------------------------------------------------------- */

typedef struct {
  double p50_us, p99_us, per_sec;
} result_t;

static result_t run(int workers, int cross, int inflight, int tells) {
  jiwa_rt_t *rt;
  jiwa_rt_opts_t o;
  jiwa_rt_opts_default(&o);
  o.workers = workers;
  o.mailbox_max = (uint32_t)N + 1000;
  if (jiwa_rt_new(&rt, &o))
    abort();
  char err[256];
  int pw = 0, tw = cross ? 1 : 0;
  jiwa_rt_spawn_native(rt, "pinger", &ping_desc, pw, NULL, 0, err, sizeof err);
  jiwa_rt_spawn_native(rt, "target", tells ? &sink_desc : &pong_desc, tw,
                       NULL, 0, err, sizeof err);
  gate_t gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  ping_ctx_t c;
  memset(&c, 0, sizeof c);
  c.gate = &gate;
  c.n = N;
  c.inflight = inflight;
  c.target = "target";
  c.tells = tells;
  c.rtt = inflight == 1 ? malloc(sizeof(uint64_t) * (size_t)N) : NULL;
  ping_state = &c;
  atomic_store(&sink_count, 0);
  sink_gate = &gate;
  sink_want = N;
  jiwa_rt_tell(rt, "pinger", "go", NULL, 0);
  gate_wait(&gate);
  result_t r = {0, 0, 0};
  uint64_t t1 = tells ? sink_t1 : c.t1;
  r.per_sec = (double)N / ((double)(t1 - c.t0) / 1e6);
  if (c.rtt) {
    qsort(c.rtt, (size_t)N, sizeof *c.rtt, cmp_u64);
    r.p50_us = (double)c.rtt[N / 2] / 1000.0;
    r.p99_us = (double)c.rtt[(size_t)N * 99 / 100] / 1000.0;
    free(c.rtt);
  }
  jiwa_rt_stop(rt);
  jiwa_rt_free(rt);
  return r;
}

/* ---- baseline: bare libuv ping-pong between two threads ------------------ */

typedef struct {
  uv_loop_t loop;
  uv_async_t async;
  struct bl *peer_box;
} side_t;

typedef struct bl {
  side_t a, b;
  int count, n;
  uint64_t t_send;
  uint64_t *rtt;
} bl_t;

static void bl_b(uv_async_t *h) {
  bl_t *x = h->data;
  uv_async_send(&x->a.async);
  if (x->count >= x->n)
    uv_close((uv_handle_t *)&x->b.async, NULL);
}

static void bl_a(uv_async_t *h) {
  bl_t *x = h->data;
  x->rtt[x->count] = jiwa__now_us() * 1000 - x->t_send;
  if (++x->count >= x->n) {
    uv_close((uv_handle_t *)&x->a.async, NULL);
    uv_async_send(&x->b.async); /* lets b see count and close */
    return;
  }
  x->t_send = jiwa__now_us() * 1000;
  uv_async_send(&x->b.async);
}

static void bl_thread(void *arg) { uv_run(arg, UV_RUN_DEFAULT); }

static double baseline_p50(void) {
  bl_t *x = calloc(1, sizeof *x);
  x->n = N;
  x->rtt = malloc(sizeof(uint64_t) * (size_t)N);
  uv_loop_init(&x->a.loop);
  uv_loop_init(&x->b.loop);
  uv_async_init(&x->a.loop, &x->a.async, bl_a);
  uv_async_init(&x->b.loop, &x->b.async, bl_b);
  x->a.async.data = x->b.async.data = x;
  uv_thread_t tb;
  uv_thread_create(&tb, bl_thread, &x->b.loop);
  x->t_send = jiwa__now_us() * 1000;
  uv_async_send(&x->b.async);
  uv_run(&x->a.loop, UV_RUN_DEFAULT);
  uv_thread_join(&tb);
  uv_loop_close(&x->a.loop);
  uv_loop_close(&x->b.loop);
  qsort(x->rtt, (size_t)N, sizeof *x->rtt, cmp_u64);
  double p50 = (double)x->rtt[N / 2] / 1000.0;
  free(x->rtt);
  free(x);
  return p50;
}

int main(int argc, char **argv) {
  if (argc > 1)
    N = atoi(argv[1]);
  if (N < 1000)
    N = 1000;
  jiwa_log_setup(JIWA_LOG_ERROR, 0);
  double base[REPEATS], s50[REPEATS], s99[REPEATS], c50[REPEATS],
      c99[REPEATS], a1[REPEATS], a2[REPEATS], t1[REPEATS], t2[REPEATS];
  for (int i = 0; i < REPEATS; i++) {
    base[i] = baseline_p50();
    result_t s = run(1, 0, 1, 0), c = run(2, 1, 1, 0);
    s50[i] = s.p50_us;
    s99[i] = s.p99_us;
    c50[i] = c.p50_us;
    c99[i] = c.p99_us;
    a1[i] = run(1, 0, 64, 0).per_sec;
    a2[i] = run(2, 1, 64, 0).per_sec;
    t1[i] = run(1, 0, 1, 1).per_sec;
    t2[i] = run(2, 1, 1, 1).per_sec;
  }
  double b = median(base, REPEATS);
  printf("bench_actors: N=%d asks per run, median of %d runs\n", N, REPEATS);
  printf("  baseline: bare uv_async ping-pong between 2 threads  p50 %7.2f us\n",
         b);
  double m;
  m = median(s50, REPEATS);
  printf("  ask round trip, same loop    p50 %7.2f us  p99 %7.2f us  (%.2fx "
         "baseline)\n",
         m, median(s99, REPEATS), m / b);
  m = median(c50, REPEATS);
  printf("  ask round trip, cross loop   p50 %7.2f us  p99 %7.2f us  (%.2fx "
         "baseline)\n",
         m, median(c99, REPEATS), m / b);
  printf("  asks/s, 64 in flight:  1 worker %10.0f   2 workers %10.0f\n",
         median(a1, REPEATS), median(a2, REPEATS));
  printf("  tells/s:               1 worker %10.0f   2 workers %10.0f\n",
         median(t1, REPEATS), median(t2, REPEATS));
  return 0;
}
