/* Refused plugins: each refusal carries a clear error and the runtime keeps
 * serving the actors it has. Also: init failure under supervision, a
 * failed reload keeps the old version, unload, config validation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/jt.h"
#include "jiwa_msg.h"
#include "jiwa_rt.h"
#include "jiwa_rt_int.h"

typedef struct {
  char dir[512], state[512];
  jiwa_rt_t *rt;
} fx_t;

static void put_plugin(fx_t *fx, const char *env, const char *src,
                       const char *as) {
  char from[600], to[700];
  jt_plugin_path(from, sizeof from, env, src);
  snprintf(to, sizeof to, "%s/%s.so", fx->dir, as);
  if (jt_copy(from, to) != 0)
    fail_msg("cannot copy %s to %s", from, to);
}

static int setup(void **state) {
  fx_t *fx = calloc(1, sizeof *fx);
  jt_tempdir(fx->dir, sizeof fx->dir, "loader-plugins");
  jt_tempdir(fx->state, sizeof fx->state, "loader-state");
  put_plugin(fx, "JIWA_PLUGIN_OUT", "echo", "echo");
  jiwa_rt_opts_t o;
  jiwa_rt_opts_default(&o);
  o.workers = 2;
  o.plugin_dir = fx->dir;
  o.state_dir = fx->state;
  o.backoff_min_ms = 10;
  o.backoff_max_ms = 50;
  o.drain_timeout_ms = 1000;
  jt_logs_capture();
  assert_int_equal(jiwa_rt_new(&fx->rt, &o), 0);
  char err[512];
  assert_int_equal(
      jiwa_rt_spawn_plugin(fx->rt, "echo", "echo", -1, NULL, 0, err,
                           sizeof err),
      0);
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  fx_t *fx = *state;
  assert_int_equal(jiwa_rt_stop(fx->rt), 0);
  jiwa_rt_free(fx->rt);
  jiwa_log_set_sink(NULL, NULL);
  jt_rmtree(fx->dir);
  jt_rmtree(fx->state);
  free(fx);
  return 0;
}

/* The runtime still answers. */
static void still_serving(fx_t *fx) {
  jiwa_mp_writer_t w;
  jt_body_str(&w, "text", "masih hidup");
  jiwa_msg_t *r = NULL;
  assert_int_equal(jiwa_rt_ask_sync(fx->rt, "echo", "echo", w.sbuf.data,
                                    w.sbuf.size, 2000, &r),
                   0);
  jiwa_mp_writer_free(&w);
  assert_int_equal(r->kind, JIWA_MSG_REPLY);
  const char *t;
  size_t n;
  assert_int_equal(jiwa_mp_get_str(r->body, r->body_len, "text", &t, &n), 0);
  assert_memory_equal(t, "halo, masih hidup", n);
  jiwa__msg_release(r);
}

static void refused(fx_t *fx, const char *plugin, int want,
                    const char *want_text) {
  char err[512] = "";
  int rc = jiwa_rt_spawn_plugin(fx->rt, "victim", plugin, -1, NULL, 0, err,
                                sizeof err);
  if (rc != want)
    fail_msg("plugin %s: got %s (%s), want %s", plugin, jiwa_err_name(rc),
             err, jiwa_err_name(want));
  jt_assert_contains(err, want_text);
  /* nothing was created */
  jiwa_msg_t *r = NULL;
  assert_int_equal(jiwa_rt_ask_sync(fx->rt, "victim", "ping", NULL, 0, 100,
                                    &r),
                   JIWA_ENOENT);
  still_serving(fx);
}

static void test_abi_mismatch(void **state) {
  fx_t *fx = *state;
  put_plugin(fx, "JIWA_TEST_PLUGIN_OUT", "tp_badabi", "badabi");
  refused(fx, "badabi", JIWA_EABI, "built for plugin ABI 99.0");
}

static void test_missing_entry_point(void **state) {
  fx_t *fx = *state;
  put_plugin(fx, "JIWA_TEST_PLUGIN_OUT", "tp_noentry", "noentry");
  refused(fx, "noentry", JIWA_EDLOPEN, "has no entry point");
}

static void test_not_a_plugin(void **state) {
  fx_t *fx = *state;
  put_plugin(fx, "JIWA_TEST_PLUGIN_OUT", "tp_noabi", "noabi");
  refused(fx, "noabi", JIWA_EDLOPEN, "is not a jiwa plugin");
}

static void test_garbage_file(void **state) {
  fx_t *fx = *state;
  char p[700];
  snprintf(p, sizeof p, "%s/garbage.so", fx->dir);
  FILE *f = fopen(p, "w");
  fputs("this is not an ELF file", f);
  fclose(f);
  refused(fx, "garbage", JIWA_EDLOPEN, "cannot load");
}

static void test_missing_file(void **state) {
  refused(*state, "ghost", JIWA_ENOENT, "plugin 'ghost' not found");
}

static void test_world_writable(void **state) {
  fx_t *fx = *state;
  put_plugin(fx, "JIWA_TEST_PLUGIN_OUT", "tp_v1", "loose");
  char p[700];
  snprintf(p, sizeof p, "%s/loose.so", fx->dir);
  assert_int_equal(chmod(p, 0666), 0);
  refused(fx, "loose", JIWA_EPERM, "writable by group or others");
  assert_int_equal(chmod(p, 0775), 0);
  refused(fx, "loose", JIWA_EPERM, "chmod go-w");
}

static void test_symlink(void **state) {
  fx_t *fx = *state;
  char p[700];
  snprintf(p, sizeof p, "%s/linked.so", fx->dir);
  assert_int_equal(symlink("echo.so", p), 0);
  refused(fx, "linked", JIWA_EPERM, "is a symlink");
}

static void test_bad_owner(void **state) {
  fx_t *fx = *state;
  if (geteuid() != 0) {
    print_message("skipped: chown to another user needs root\n");
    skip();
  }
  put_plugin(fx, "JIWA_TEST_PLUGIN_OUT", "tp_v1", "foreign");
  char p[700];
  snprintf(p, sizeof p, "%s/foreign.so", fx->dir);
  assert_int_equal(chown(p, 65534, 65534), 0);
  refused(fx, "foreign", JIWA_EPERM, "is owned by uid 65534");
}

static void test_writable_plugin_dir(void **state) {
  fx_t *fx = *state;
  put_plugin(fx, "JIWA_TEST_PLUGIN_OUT", "tp_v1", "tp");
  assert_int_equal(chmod(fx->dir, 0777), 0);
  refused(fx, "tp", JIWA_EPERM, "is writable by others");
  assert_int_equal(chmod(fx->dir, 0700), 0);
}

static void test_bad_settings(void **state) {
  fx_t *fx = *state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_int(&w.pk, "greting", 1);
  char err[512];
  assert_int_equal(jiwa_rt_spawn_plugin(fx->rt, "echo2", "echo", -1,
                                        w.sbuf.data, w.sbuf.size, err,
                                        sizeof err),
                   JIWA_ECONFIG);
  jiwa_mp_writer_free(&w);
  jt_assert_contains(err, "greting");
  jt_assert_contains(err, "actor 'echo2'");
  still_serving(fx);
}

static void test_init_failure_is_supervised(void **state) {
  fx_t *fx = *state;
  put_plugin(fx, "JIWA_TEST_PLUGIN_OUT", "tp_v1", "tp");
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_bool(&w.pk, "fail_init", 1);
  char err[512];
  assert_int_equal(jiwa_rt_spawn_plugin(fx->rt, "tp", "tp", -1, w.sbuf.data,
                                        w.sbuf.size, err, sizeof err),
                   JIWA_EPLUGIN);
  jiwa_mp_writer_free(&w);
  jt_assert_contains(err, "init failed");
  jiwa_arec_t *a = jiwa__actor_find(fx->rt, "tp");
  assert_non_null(a);
  for (int i = 0; i < 2000 && atomic_load(&a->m.failures) < 3; i++)
    usleep(1000);
  assert_true(atomic_load(&a->m.failures) >= 3); /* retried with backoff */
  assert_true(jt_logs_have("restarting in"));
  still_serving(fx);
}

static void test_failed_reload_keeps_old_version(void **state) {
  fx_t *fx = *state;
  put_plugin(fx, "JIWA_TEST_PLUGIN_OUT", "tp_v1", "tp");
  char err[512];
  assert_int_equal(
      jiwa_rt_spawn_plugin(fx->rt, "tp", "tp", -1, NULL, 0, err, sizeof err),
      0);
  /* the new file is not loadable: refused, v1 keeps serving */
  put_plugin(fx, "JIWA_TEST_PLUGIN_OUT", "tp_badabi", "tp");
  assert_int_equal(jiwa_rt_reload_sync(fx->rt, "tp", err, sizeof err),
                   JIWA_EABI);
  jt_assert_contains(err, "built for plugin ABI 99.0");
  assert_true(jt_logs_have("the running version keeps serving"));
  jiwa_msg_t *r = NULL;
  assert_int_equal(jiwa_rt_ask_sync(fx->rt, "tp", "work", NULL, 0, 1000, &r),
                   0);
  const char *v;
  size_t n;
  assert_int_equal(jiwa_mp_get_str(r->body, r->body_len, "v", &v, &n), 0);
  assert_memory_equal(v, "1", 1);
  jiwa__msg_release(r);
  /* a good file: v2 takes over */
  put_plugin(fx, "JIWA_TEST_PLUGIN_OUT", "tp_v2", "tp");
  assert_int_equal(jiwa_rt_reload_sync(fx->rt, "tp", err, sizeof err), 0);
  assert_int_equal(jiwa_rt_ask_sync(fx->rt, "tp", "work", NULL, 0, 1000, &r),
                   0);
  assert_int_equal(jiwa_mp_get_str(r->body, r->body_len, "v", &v, &n), 0);
  assert_memory_equal(v, "2", 1);
  jiwa__msg_release(r);
  /* reloading something unknown or built in says so */
  assert_int_equal(jiwa_rt_reload_sync(fx->rt, "nobody", err, sizeof err),
                   JIWA_ENOENT);
  jt_assert_contains(err, "no such actor");
}

/* An ask held by the old version is never lost: at the drain deadline the
 * runtime answers it with ECANCELED and unloads the old version. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  jiwa_msg_t *final;
} one_t;

static void one_fn(const jiwa_msg_t *m, void *ud) {
  one_t *o = ud;
  if (m->kind == JIWA_MSG_DELTA)
    return;
  pthread_mutex_lock(&o->mu);
  o->final = jiwa__msg_retain(m);
  pthread_cond_signal(&o->cv);
  pthread_mutex_unlock(&o->mu);
}

static void test_drain_deadline_cancels_held_asks(void **state) {
  fx_t *fx = *state;
  put_plugin(fx, "JIWA_TEST_PLUGIN_OUT", "tp_v1", "tp");
  char err[512];
  assert_int_equal(
      jiwa_rt_spawn_plugin(fx->rt, "tp", "tp", -1, NULL, 0, err, sizeof err),
      0);
  one_t o = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL};
  assert_int_equal(
      jiwa_rt_ask(fx->rt, "tp", "hold", NULL, 0, 20000, one_fn, &o), 0);
  usleep(50000); /* let v1 take it */
  put_plugin(fx, "JIWA_TEST_PLUGIN_OUT", "tp_v2", "tp");
  uint64_t t0 = jiwa__now_us();
  assert_int_equal(jiwa_rt_reload_sync(fx->rt, "tp", err, sizeof err), 0);
  assert_int_equal(jiwa_rt_draining(fx->rt, "tp"), 1);
  pthread_mutex_lock(&o.mu);
  while (!o.final)
    pthread_cond_wait(&o.cv, &o.mu);
  pthread_mutex_unlock(&o.mu);
  uint64_t waited = (jiwa__now_us() - t0) / 1000;
  assert_int_equal(o.final->kind, JIWA_MSG_ERROR);
  assert_int_equal(o.final->err, JIWA_ECANCELED);
  jt_assert_contains(o.final->errtext, "stopped before answering");
  assert_true(waited >= 900 && waited < 15000); /* drain_timeout_ms = 1000 */
  jiwa__msg_release(o.final);
  for (int i = 0; i < 2000 && jiwa_rt_draining(fx->rt, "tp") > 0; i++)
    usleep(1000);
  assert_int_equal(jiwa_rt_draining(fx->rt, "tp"), 0);
  assert_true(jt_logs_have("did not drain within 1000 ms"));
}

static void test_unload(void **state) {
  fx_t *fx = *state;
  char err[512];
  assert_int_equal(jiwa_rt_unload(fx->rt, "echo", err, sizeof err), 0);
  jiwa_msg_t *r = NULL;
  assert_int_equal(jiwa_rt_ask_sync(fx->rt, "echo", "ping", NULL, 0, 100, &r),
                   JIWA_ENOENT);
  for (int i = 0; i < 2000 && jiwa_rt_draining(fx->rt, "echo") > 0; i++)
    usleep(1000);
  assert_int_equal(jiwa_rt_draining(fx->rt, "echo"), 0);
  /* the name is free again */
  assert_int_equal(
      jiwa_rt_spawn_plugin(fx->rt, "echo", "echo", -1, NULL, 0, err,
                           sizeof err),
      0);
  still_serving(fx);
  assert_int_equal(jiwa_rt_unload(fx->rt, "ghost", err, sizeof err),
                   JIWA_ENOENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_abi_mismatch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_entry_point, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_not_a_plugin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_garbage_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_world_writable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_symlink, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_owner, setup, teardown),
      cmocka_unit_test_setup_teardown(test_writable_plugin_dir, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bad_settings, setup, teardown),
      cmocka_unit_test_setup_teardown(test_init_failure_is_supervised, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_failed_reload_keeps_old_version,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_drain_deadline_cancels_held_asks,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_unload, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
