/* tell / ask / timeout / stream semantics between native actors, on the
 * same loop and across loops, and supervision (restart with backoff,
 * giving up). Every test ends with jiwa_rt_stop() == 0: no handle leaked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/jt.h"
#include "jiwa_msg.h"
#include "jiwa_rt.h"
#include "jiwa_rt_int.h"

static atomic_int told;        /* "count" tells received by replier */
static atomic_int double_rc;   /* rc of the second reply in "double" */
static atomic_int init_calls;  /* calls of failing_init */

/* ---- replier: the actor under test --------------------------------------- */

typedef struct {
  jiwa_msg_t *held[64];
  int nheld;
} replier_ctx_t;

static void late_reply(jiwa_actor_t *self, void *vctx, void *ud) {
  replier_ctx_t *ctx = vctx;
  jiwa_msg_t *req = ud;
  jiwa_reply(self, req, "late.reply", NULL, 0);
  for (int i = 0; i < ctx->nheld; i++)
    if (ctx->held[i] == req)
      ctx->held[i] = ctx->held[--ctx->nheld];
  jiwa_msg_release(req);
}

static int replier_receive(jiwa_actor_t *self, void *vctx,
                           const jiwa_msg_t *m) {
  replier_ctx_t *ctx = vctx;
  const char *type = jiwa_msg_type(m);
  size_t len;
  const void *body = jiwa_msg_body(m, &len);
  if (jiwa_msg_kind(m) == JIWA_MSG_TELL) {
    if (strcmp(type, "count") == 0)
      atomic_fetch_add(&told, 1);
    return 0;
  }
  if (strcmp(type, "echo") == 0)
    return jiwa_reply(self, m, "echo.reply", body, len);
  if (strcmp(type, "stream") == 0) {
    int64_t n = 0;
    jiwa_msg_get_int(m, "n", &n);
    for (int64_t i = 0; i < n; i++) {
      jiwa_mp_writer_t w;
      jiwa_mp_writer_init(&w);
      msgpack_pack_map(&w.pk, 1);
      jiwa_mp_put_kv_int(&w.pk, "i", i);
      jiwa_stream(self, m, "d.delta", w.sbuf.data, w.sbuf.size);
      jiwa_mp_writer_free(&w);
    }
    return jiwa_reply(self, m, "stream.done", NULL, 0);
  }
  if (strcmp(type, "ignore") == 0)
    return 0;
  if (strcmp(type, "late") == 0) {
    int64_t ms = 0;
    jiwa_msg_get_int(m, "ms", &ms);
    jiwa_msg_t *r = jiwa_msg_retain(m);
    ctx->held[ctx->nheld++] = r;
    return jiwa_timer_start(self, (uint64_t)ms, 0, late_reply, r, NULL);
  }
  if (strcmp(type, "double") == 0) {
    jiwa_reply(self, m, "first", NULL, 0);
    atomic_store(&double_rc, jiwa_reply(self, m, "second", NULL, 0));
    return 0;
  }
  if (strcmp(type, "crash") == 0)
    return JIWA_EPLUGIN;
  return jiwa_reply_error(self, m, JIWA_ENOTSUP, "replier: unknown type");
}

static void replier_fini(jiwa_actor_t *self, void *vctx) {
  replier_ctx_t *ctx = vctx;
  for (int i = 0; i < ctx->nheld; i++)
    jiwa_msg_release(ctx->held[i]);
}

static const jiwa_plugin_desc_t replier_desc = {
    JIWA_DESC_HEADER,
    .name = "replier",
    .version = "t",
    .ctx_size = sizeof(replier_ctx_t),
    .receive = replier_receive,
    .fini = replier_fini,
};

/* ---- proxy: asks the replier on behalf of the test (actor → actor) ------- */

static void proxy_cb(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *r,
                     void *ud) {
  jiwa_msg_t *orig = ud;
  size_t len;
  const void *body = jiwa_msg_body(r, &len);
  switch (jiwa_msg_kind(r)) {
  case JIWA_MSG_DELTA:
    jiwa_stream(self, orig, jiwa_msg_type(r), body, len);
    return;
  case JIWA_MSG_ERROR: {
    const char *text;
    int code = jiwa_msg_error(r, &text);
    jiwa_reply_error(self, orig, code, text);
    break;
  }
  default:
    jiwa_reply(self, orig, jiwa_msg_type(r), body, len);
  }
  jiwa_msg_release(orig);
}

/* body: {"to": actor, "type": type, "timeout": ms, ...passed on as is} */
static int proxy_receive(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *m) {
  char to[64], type[64];
  int64_t timeout = 0, n = 0;
  size_t len;
  const void *body = jiwa_msg_body(m, &len);
  if (strcmp(jiwa_msg_type(m), "fanout") == 0) {
    jiwa_mp_get_strcpy(body, len, "to", to, sizeof to);
    jiwa_mp_get_int(body, len, "n", &n);
    for (int64_t i = 0; i < n; i++)
      jiwa_tell(self, to, "count", NULL, 0);
    return jiwa_msg_kind(m) == JIWA_MSG_ASK
               ? jiwa_reply(self, m, "fanout.done", NULL, 0)
               : 0;
  }
  if (jiwa_mp_get_strcpy(body, len, "to", to, sizeof to) ||
      jiwa_mp_get_strcpy(body, len, "type", type, sizeof type))
    return jiwa_reply_error(self, m, JIWA_EINVAL, "proxy: need to and type");
  jiwa_mp_get_int(body, len, "timeout", &timeout);
  jiwa_msg_t *orig = jiwa_msg_retain(m);
  int rc = jiwa_ask(self, to, type, body, len, (uint32_t)timeout, proxy_cb,
                    orig);
  if (rc) {
    jiwa_msg_release(orig);
    return jiwa_reply_error(self, m, rc, "proxy: ask refused");
  }
  return 0;
}

static const jiwa_plugin_desc_t proxy_desc = {
    JIWA_DESC_HEADER,
    .name = "proxy",
    .version = "t",
    .receive = proxy_receive,
};

static int failing_init(jiwa_actor_t *self, void *ctx) {
  atomic_fetch_add(&init_calls, 1);
  return JIWA_EIO;
}

static const jiwa_plugin_desc_t failing_desc = {
    JIWA_DESC_HEADER,
    .name = "failing",
    .version = "t",
    .init = failing_init,
    .receive = replier_receive,
};

/* ---- the test side ---------------------------------------------------------- */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int finals;
  int deltas;
  int64_t last_i;
  int in_order;
  jiwa_msg_t *final;
} coll_t;

static void coll_init(coll_t *c) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  c->last_i = -1;
  c->in_order = 1;
}

static void coll_free(coll_t *c) {
  jiwa__msg_release(c->final);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
}

static void coll_fn(const jiwa_msg_t *m, void *ud) {
  coll_t *c = ud;
  pthread_mutex_lock(&c->mu);
  if (m->kind == JIWA_MSG_DELTA) {
    int64_t i = -1;
    jiwa_mp_get_int(m->body, m->body_len, "i", &i);
    if (i != c->last_i + 1 || c->finals)
      c->in_order = 0;
    c->last_i = i;
    c->deltas++;
  } else {
    c->finals++;
    if (!c->final)
      c->final = jiwa__msg_retain(m);
    pthread_cond_broadcast(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
}

static void coll_wait(coll_t *c) {
  pthread_mutex_lock(&c->mu);
  while (!c->finals)
    pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
}

/* Ask @p via to ask @p type of "replier", collecting into @p c. */
static void proxy_ask(jiwa_rt_t *rt, const char *via, const char *type,
                      int64_t timeout, const char *extra_key, int64_t extra,
                      coll_t *c) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, extra_key ? 4 : 3);
  jiwa_mp_put_kv_str(&w.pk, "to", "replier");
  jiwa_mp_put_kv_str(&w.pk, "type", type);
  jiwa_mp_put_kv_int(&w.pk, "timeout", timeout);
  if (extra_key)
    jiwa_mp_put_kv_int(&w.pk, extra_key, extra);
  assert_int_equal(jiwa_rt_ask(rt, via, "proxy", w.sbuf.data, w.sbuf.size,
                               10000, coll_fn, c),
                   0);
  jiwa_mp_writer_free(&w);
}

typedef struct {
  jiwa_rt_t *rt;
} fx_t;

/* replier on worker 1; "near" proxy on worker 1 (same loop), "far" proxy on
 * worker 0 (cross loop). */
static int setup(void **state) {
  fx_t *fx = calloc(1, sizeof *fx);
  jiwa_rt_opts_t o;
  jiwa_rt_opts_default(&o);
  o.workers = 2;
  o.backoff_min_ms = 20;
  o.backoff_max_ms = 100;
  o.drain_timeout_ms = 2000;
  assert_int_equal(jiwa_rt_new(&fx->rt, &o), 0);
  char err[256];
  assert_int_equal(
      jiwa_rt_spawn_native(fx->rt, "replier", &replier_desc, 1, NULL, 0, err,
                           sizeof err),
      0);
  assert_int_equal(jiwa_rt_spawn_native(fx->rt, "near", &proxy_desc, 1, NULL,
                                        0, err, sizeof err),
                   0);
  assert_int_equal(jiwa_rt_spawn_native(fx->rt, "far", &proxy_desc, 0, NULL, 0,
                                        err, sizeof err),
                   0);
  atomic_store(&told, 0);
  jt_logs_capture();
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  fx_t *fx = *state;
  assert_int_equal(jiwa_rt_stop(fx->rt), 0);
  jiwa_rt_free(fx->rt);
  jiwa_log_set_sink(NULL, NULL);
  free(fx);
  return 0;
}

static jiwa_arec_t *rec(fx_t *fx, const char *name) {
  jiwa_arec_t *a = jiwa__actor_find(fx->rt, name);
  assert_non_null(a);
  return a;
}

static void wait_until(atomic_int *v, int want) {
  for (int i = 0; i < 10000 && atomic_load(v) < want; i++)
    usleep(1000);
}

static void test_tell_external_and_between_loops(void **state) {
  fx_t *fx = *state;
  for (int i = 0; i < 1000; i++)
    assert_int_equal(jiwa_rt_tell(fx->rt, "replier", "count", NULL, 0), 0);
  const char *via[] = {"near", "far"};
  for (int k = 0; k < 2; k++) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "to", "replier");
    jiwa_mp_put_kv_int(&w.pk, "n", 500);
    assert_int_equal(
        jiwa_rt_tell(fx->rt, via[k], "fanout", w.sbuf.data, w.sbuf.size), 0);
    jiwa_mp_writer_free(&w);
  }
  wait_until(&told, 2000);
  assert_int_equal(atomic_load(&told), 2000);
  assert_int_equal(atomic_load(&rec(fx, "near")->m.tells_sent), 500);
  assert_int_equal(atomic_load(&rec(fx, "far")->m.tells_sent), 500);
  assert_int_equal(jiwa_rt_tell(fx->rt, "nobody", "count", NULL, 0),
                   JIWA_ENOENT);
}

static void check_ask(fx_t *fx, const char *via) {
  coll_t c;
  coll_init(&c);
  proxy_ask(fx->rt, via, "echo", 1000, "x", 7, &c);
  coll_wait(&c);
  assert_int_equal(c.final->kind, JIWA_MSG_REPLY);
  assert_string_equal(c.final->type, "echo.reply");
  int64_t x = 0;
  assert_int_equal(jiwa_mp_get_int(c.final->body, c.final->body_len, "x", &x),
                   0);
  assert_int_equal(x, 7);
  usleep(50000);
  assert_int_equal(c.finals, 1);
  coll_free(&c);
}

static void test_ask_same_loop(void **state) { check_ask(*state, "near"); }
static void test_ask_cross_loop(void **state) { check_ask(*state, "far"); }

static void test_ask_external(void **state) {
  fx_t *fx = *state;
  jiwa_msg_t *r = NULL;
  jiwa_mp_writer_t w;
  jt_body_str(&w, "k", "v");
  assert_int_equal(jiwa_rt_ask_sync(fx->rt, "replier", "echo", w.sbuf.data,
                                    w.sbuf.size, 1000, &r),
                   0);
  jiwa_mp_writer_free(&w);
  assert_int_equal(r->kind, JIWA_MSG_REPLY);
  assert_memory_equal(r->body, "\x81\xa1k\xa1v", 5);
  jiwa__msg_release(r);
  /* unknown target: refused at once, the callback never runs */
  assert_int_equal(jiwa_rt_ask_sync(fx->rt, "nobody", "echo", NULL, 0, 100,
                                    &r),
                   JIWA_ENOENT);
  assert_null(r);
}

static void check_stream(fx_t *fx, const char *via) {
  coll_t c;
  coll_init(&c);
  proxy_ask(fx->rt, via, "stream", 2000, "n", 50, &c);
  coll_wait(&c);
  usleep(20000);
  assert_int_equal(c.deltas, 50);
  assert_int_equal(c.in_order, 1);
  assert_int_equal(c.finals, 1);
  assert_string_equal(c.final->type, "stream.done");
  coll_free(&c);
}

static void test_stream_same_loop(void **state) { check_stream(*state, "near"); }
static void test_stream_cross_loop(void **state) { check_stream(*state, "far"); }

static void check_timeout(fx_t *fx, const char *via) {
  coll_t c;
  coll_init(&c);
  uint64_t t0 = jiwa__now_us();
  proxy_ask(fx->rt, via, "ignore", 50, NULL, 0, &c);
  coll_wait(&c);
  uint64_t waited_ms = (jiwa__now_us() - t0) / 1000;
  assert_int_equal(c.final->kind, JIWA_MSG_ERROR);
  assert_int_equal(c.final->err, JIWA_ETIMEDOUT);
  jt_assert_contains(c.final->errtext, "no reply from 'replier' within 50 ms");
  assert_true(waited_ms >= 45);
  usleep(100000);
  assert_int_equal(c.finals, 1);
  assert_int_equal(atomic_load(&rec(fx, via)->m.timeouts), 1);
  coll_free(&c);
}

static void test_timeout_same_loop(void **state) { check_timeout(*state, "near"); }
static void test_timeout_cross_loop(void **state) { check_timeout(*state, "far"); }

static void check_late(fx_t *fx, const char *via) {
  coll_t c;
  coll_init(&c);
  proxy_ask(fx->rt, via, "late", 30, "ms", 150, &c);
  coll_wait(&c);
  assert_int_equal(c.final->err, JIWA_ETIMEDOUT);
  jiwa_arec_t *r = rec(fx, "replier");
  for (int i = 0; i < 2000 && atomic_load(&r->m.late_replies_dropped) < 1; i++)
    usleep(1000);
  usleep(20000);
  assert_int_equal(atomic_load(&r->m.late_replies_dropped), 1);
  assert_int_equal(c.finals, 1); /* the late reply never reached the asker */
  coll_free(&c);
}

static void test_late_reply_dropped_same_loop(void **state) {
  check_late(*state, "near");
}
static void test_late_reply_dropped_cross_loop(void **state) {
  check_late(*state, "far");
}

static void test_double_reply_refused(void **state) {
  fx_t *fx = *state;
  coll_t c;
  coll_init(&c);
  proxy_ask(fx->rt, "far", "double", 1000, NULL, 0, &c);
  coll_wait(&c);
  usleep(20000);
  assert_string_equal(c.final->type, "first");
  assert_int_equal(c.finals, 1);
  assert_int_equal(atomic_load(&double_rc), JIWA_ESTATE);
  coll_free(&c);
}

static void test_ask_unknown_from_actor(void **state) {
  fx_t *fx = *state;
  coll_t c;
  coll_init(&c);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_kv_str(&w.pk, "to", "nobody");
  jiwa_mp_put_kv_str(&w.pk, "type", "echo");
  assert_int_equal(jiwa_rt_ask(fx->rt, "far", "proxy", w.sbuf.data,
                               w.sbuf.size, 1000, coll_fn, &c),
                   0);
  jiwa_mp_writer_free(&w);
  coll_wait(&c);
  assert_int_equal(c.final->err, JIWA_ENOENT);
  coll_free(&c);
}

static void test_supervisor_restarts_after_failure(void **state) {
  fx_t *fx = *state;
  coll_t c;
  coll_init(&c);
  proxy_ask(fx->rt, "far", "crash", 2000, NULL, 0, &c);
  coll_wait(&c);
  /* the asker is told at once, not at its deadline */
  assert_int_equal(c.final->kind, JIWA_MSG_ERROR);
  assert_int_equal(c.final->err, JIWA_ECANCELED);
  coll_free(&c);
  /* messages sent while it restarts are held, then served */
  check_ask(fx, "far");
  jiwa_arec_t *r = rec(fx, "replier");
  assert_int_equal(atomic_load(&r->m.failures), 1);
  assert_int_equal(atomic_load(&r->m.restarts), 1);
  assert_true(jt_logs_have("receive('crash') failed"));
  assert_true(jt_logs_have("restarting in 20 ms"));
}

static void test_supervisor_gives_up(void **state) {
  fx_t *fx = *state;
  jiwa_rt_t *rt;
  jiwa_rt_opts_t o;
  jiwa_rt_opts_default(&o);
  o.workers = 1;
  o.backoff_min_ms = 5;
  o.backoff_max_ms = 20;
  o.restart_max = 2;
  assert_int_equal(jiwa_rt_new(&rt, &o), 0);
  atomic_store(&init_calls, 0);
  char err[256];
  assert_int_equal(jiwa_rt_spawn_native(rt, "bad", &failing_desc, 0, NULL, 0,
                                        err, sizeof err),
                   JIWA_EPLUGIN);
  jt_assert_contains(err, "init failed");
  wait_until(&init_calls, 3);
  usleep(50000);
  assert_int_equal(atomic_load(&init_calls), 3); /* first + 2 restarts */
  jiwa_msg_t *r = NULL;
  assert_int_equal(jiwa_rt_ask_sync(rt, "bad", "echo", NULL, 0, 1000, &r), 0);
  assert_int_equal(r->err, JIWA_EDOWN);
  jt_assert_contains(r->errtext, "actor 'bad' is down");
  jiwa__msg_release(r);
  assert_true(jt_logs_have("giving up after 3 failures"));
  /* the rest of the runtime never noticed */
  check_ask(fx, "far");
  assert_int_equal(jiwa_rt_stop(rt), 0);
  jiwa_rt_free(rt);
}

static void test_stats_and_list(void **state) {
  fx_t *fx = *state;
  check_ask(fx, "far");
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  assert_int_equal(jiwa_rt_stats(fx->rt, &w.pk), 0);
  jiwa_mp_reader_t at;
  assert_int_equal(jiwa_mp_map_find(w.sbuf.data, w.sbuf.size, "actors", &at),
                   0);
  assert_int_equal(jiwa_mp_scan(w.sbuf.data, w.sbuf.size, 16, NULL), 0);
  jiwa_mp_writer_free(&w);
  jiwa_mp_writer_init(&w);
  assert_int_equal(jiwa_rt_list(fx->rt, &w.pk), 0);
  jiwa_mp_item_t it;
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, w.sbuf.data, w.sbuf.size);
  assert_int_equal(jiwa_mp_next(&r, &it), 0);
  assert_int_equal(it.type, JIWA_MP_ARRAY);
  assert_int_equal(it.v.count, 3);
  jiwa_mp_writer_free(&w);
  assert_int_equal(atomic_load(&rec(fx, "far")->m.asks_sent), 1);
  assert_true(atomic_load(&rec(fx, "far")->m.ask_rtt_us.count) == 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_tell_external_and_between_loops,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_ask_same_loop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ask_cross_loop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ask_external, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_same_loop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stream_cross_loop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_same_loop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout_cross_loop, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_late_reply_dropped_same_loop, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_late_reply_dropped_cross_loop,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_double_reply_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ask_unknown_from_actor, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_supervisor_restarts_after_failure,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_supervisor_gives_up, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_stats_and_list, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
