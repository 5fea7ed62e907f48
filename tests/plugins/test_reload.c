/* Hot reload under load: the test plugin is swapped between two builds
 * (v1, v2) at least 100 times while load-generator actors on every worker
 * keep ≥ 50,000 asks flowing. Every ask must get exactly one reply, from
 * some version, never an error: 0 lost, 0 duplicated. Then every old
 * version must have drained and been unloaded, and the loops must close
 * with no handle left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/jt.h"
#include "jiwa_msg.h"
#include "jiwa_rt.h"
#include "jiwa_rt_int.h"

#define LOADGENS 4
#define MIN_ASKS_EACH 12500 /* 4 x 12,500 = 50,000 at least */
#define INFLIGHT 32
#define MIN_RELOADS 100

static atomic_int stop_flag;
static atomic_int gens_done;
static atomic_llong total_asks, total_ok, total_err, total_dup, seen_v1,
    seen_v2;

typedef struct {
  uint8_t *count; /* replies seen per ask index */
  size_t cap;
  size_t sent, finished;
  int running;
} lg_ctx_t;

static void lg_send(jiwa_actor_t *self, lg_ctx_t *c);

static void lg_reply(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *r,
                     void *ud) {
  lg_ctx_t *c = vctx;
  size_t idx = (size_t)(uintptr_t)ud;
  if (jiwa_msg_kind(r) == JIWA_MSG_DELTA)
    return;
  if (c->count[idx]++)
    atomic_fetch_add(&total_dup, 1);
  if (jiwa_msg_kind(r) == JIWA_MSG_REPLY) {
    atomic_fetch_add(&total_ok, 1);
    const char *v;
    size_t n;
    if (jiwa_msg_get_str(r, "v", &v, &n) == 0 && n == 1)
      atomic_fetch_add(v[0] == '1' ? &seen_v1 : &seen_v2, 1);
  } else {
    const char *text;
    int code = jiwa_msg_error(r, &text);
    if (atomic_fetch_add(&total_err, 1) < 5)
      fprintf(stderr, "ask %zu failed: %s %s\n", idx, jiwa_err_name(code),
              text);
  }
  c->finished++;
  lg_send(self, c);
}

static void lg_send(jiwa_actor_t *self, lg_ctx_t *c) {
  while (c->running && c->sent - c->finished < INFLIGHT) {
    if (c->sent >= MIN_ASKS_EACH && atomic_load(&stop_flag)) {
      c->running = 0;
      break;
    }
    if (c->sent == c->cap) {
      size_t cap = c->cap ? c->cap * 2 : 16384;
      uint8_t *p = realloc(c->count, cap);
      if (!p)
        abort();
      memset(p + c->cap, 0, cap - c->cap);
      c->count = p;
      c->cap = cap;
    }
    size_t idx = c->sent++;
    atomic_fetch_add(&total_asks, 1);
    int rc = jiwa_ask(self, "tp", "work", NULL, 0, 60000, lg_reply,
                      (void *)(uintptr_t)idx);
    if (rc) {
      fprintf(stderr, "ask refused: %s\n", jiwa_strerror(rc));
      atomic_fetch_add(&total_err, 1);
      c->finished++;
    }
  }
  if (!c->running && c->finished == c->sent) {
    c->running = -1; /* report once */
    atomic_fetch_add(&gens_done, 1);
  }
}

static int lg_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  lg_ctx_t *c = vctx;
  if (strcmp(jiwa_msg_type(m), "go") == 0 && c->running == 0) {
    c->running = 1;
    lg_send(self, c);
  } else if (strcmp(jiwa_msg_type(m), "poke") == 0 && c->running == 1) {
    lg_send(self, c); /* notice the stop flag even with nothing in flight */
  }
  return 0;
}

static void lg_fini(jiwa_actor_t *self, void *vctx) {
  lg_ctx_t *c = vctx;
  free(c->count);
}

static const jiwa_plugin_desc_t lg_desc = {
    JIWA_DESC_HEADER,
    .name = "loadgen",
    .version = "t",
    .ctx_size = sizeof(lg_ctx_t),
    .receive = lg_receive,
    .fini = lg_fini,
};

static void test_reload_under_load(void **state) {
  char dir[512], stdir[512], v1[512], v2[512], dst[600];
  jt_tempdir(dir, sizeof dir, "reload-plugins");
  jt_tempdir(stdir, sizeof stdir, "reload-state");
  jt_plugin_path(v1, sizeof v1, "JIWA_TEST_PLUGIN_OUT", "tp_v1");
  jt_plugin_path(v2, sizeof v2, "JIWA_TEST_PLUGIN_OUT", "tp_v2");
  snprintf(dst, sizeof dst, "%s/tp.so", dir);
  assert_int_equal(jt_copy(v1, dst), 0);

  jiwa_rt_t *rt;
  jiwa_rt_opts_t o;
  jiwa_rt_opts_default(&o);
  o.workers = 2;
  o.plugin_dir = dir;
  o.state_dir = stdir;
  o.mailbox_max = 100000;
  assert_int_equal(jiwa_rt_new(&rt, &o), 0);
  char err[512];
  assert_int_equal(
      jiwa_rt_spawn_plugin(rt, "tp", "tp", 0, NULL, 0, err, sizeof err), 0);
  for (int i = 0; i < LOADGENS; i++) {
    char name[16];
    snprintf(name, sizeof name, "lg%d", i);
    assert_int_equal(jiwa_rt_spawn_native(rt, name, &lg_desc, i % 2, NULL, 0,
                                          err, sizeof err),
                     0);
  }
  jiwa_log_setup(JIWA_LOG_WARN, 0);
  for (int i = 0; i < LOADGENS; i++) {
    char name[16];
    snprintf(name, sizeof name, "lg%d", i);
    assert_int_equal(jiwa_rt_tell(rt, name, "go", NULL, 0), 0);
  }

  int reloads = 0;
  for (; reloads < MIN_RELOADS || atomic_load(&total_asks) <
                                      (long long)LOADGENS * MIN_ASKS_EACH / 2;
       reloads++) {
    assert_int_equal(jt_copy(reloads % 2 ? v1 : v2, dst), 0);
    int rc = jiwa_rt_reload_sync(rt, "tp", err, sizeof err);
    if (rc)
      fail_msg("reload %d failed: %s", reloads, err);
    usleep(2000);
  }
  atomic_store(&stop_flag, 1);
  for (int w = 0; w < 120000 && atomic_load(&gens_done) < LOADGENS; w++) {
    if (w % 100 == 0)
      for (int i = 0; i < LOADGENS; i++) {
        char name[16];
        snprintf(name, sizeof name, "lg%d", i);
        jiwa_rt_tell(rt, name, "poke", NULL, 0);
      }
    usleep(1000);
  }
  assert_int_equal(atomic_load(&gens_done), LOADGENS);

  /* old versions drain: nothing of them may remain */
  for (int w = 0; w < 10000 && jiwa_rt_draining(rt, "tp") > 0; w++)
    usleep(1000);
  assert_int_equal(jiwa_rt_draining(rt, "tp"), 0);

  long long asks = atomic_load(&total_asks);
  printf("reloads: %d, asks: %lld, ok: %lld, errors: %lld, duplicates: "
         "%lld, served by v1: %lld, by v2: %lld\n",
         reloads, asks, (long long)atomic_load(&total_ok),
         (long long)atomic_load(&total_err),
         (long long)atomic_load(&total_dup), (long long)atomic_load(&seen_v1),
         (long long)atomic_load(&seen_v2));
  assert_true(reloads >= MIN_RELOADS);
  assert_true(asks >= (long long)LOADGENS * MIN_ASKS_EACH);
  assert_int_equal(atomic_load(&total_ok), asks); /* 0 lost */
  assert_int_equal(atomic_load(&total_err), 0);
  assert_int_equal(atomic_load(&total_dup), 0); /* 0 duplicated */
  assert_true(atomic_load(&seen_v1) > 0);
  assert_true(atomic_load(&seen_v2) > 0);
  jiwa_arec_t *a = jiwa__actor_find(rt, "tp");
  assert_int_equal(atomic_load(&a->m.reloads), reloads);
  assert_int_equal(atomic_load(&a->m.reload_failures), 0);

  assert_int_equal(jiwa_rt_stop(rt), 0);
  jiwa_rt_free(rt);
  jt_rmtree(dir);
  jt_rmtree(stdir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reload_under_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
