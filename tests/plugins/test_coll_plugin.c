/* The store through the host table (ABI 1.2), with the plugin harness: a
 * test plugin (src/tp_store.c) does kv put → get → scan in its own
 * namespace and a collection upsert → search; writes left in flight when
 * its generation is replaced or the runtime stops complete before its fini
 * (the plugin aborts otherwise; a late completion would be a
 * use-after-free the sanitizers report). Also: the config's `store`
 * section and jiwa_rt_open_store refusing a collection whose embedder
 * dimension changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/jt.h"
#include "jiwa/harness.h"
#include "jiwa_coll.h"
#include "jiwa_config.h"
#include "jiwa_rt.h"
#include "jiwa_store.h"

static jiwa_harness_t *open_harness(void) {
  char so[4096], err[512];
  jt_plugin_path(so, sizeof so, "JIWA_TEST_PLUGIN_OUT", "tp_store");
  jiwa_harness_t *h = NULL;
  int rc = jiwa_harness_open(&h, so, NULL, err, sizeof err);
  if (rc)
    fail_msg("harness open: %s", err);
  return h;
}

/* Ask with a body of string pairs (and an optional int); the final reply
 * must be a REPLY. */
static void ask(jiwa_harness_t *h, const char *type, jiwa_harness_reply_t *r,
                int npairs, ...) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, (size_t)npairs);
  va_list ap;
  va_start(ap, npairs);
  for (int i = 0; i < npairs; i++) {
    const char *k = va_arg(ap, const char *);
    if (k[0] == '#') { /* "#name", int64 */
      int64_t v = va_arg(ap, int64_t);
      jiwa_mp_put_kv_int(&w.pk, k + 1, v);
    } else {
      jiwa_mp_put_kv_str(&w.pk, k, va_arg(ap, const char *));
    }
  }
  va_end(ap);
  assert_int_equal(
      jiwa_harness_ask(h, type, w.sbuf.data, w.sbuf.size, 20000, r), 0);
  jiwa_mp_writer_free(&w);
}

static int64_t get_int(const jiwa_msg_t *m, const char *k) {
  int64_t v = -999;
  if (jiwa_msg_get_int(m, k, &v))
    fail_msg("no int '%s' in the reply (%s)", k, jiwa_msg_type(m));
  return v;
}

static void expect_ok(jiwa_harness_reply_t *r) {
  if (jiwa_msg_kind(r->final) != JIWA_MSG_REPLY) {
    const char *t = "";
    int code = jiwa_msg_error(r->final, &t);
    fail_msg("error reply %s: %s", jiwa_err_name(code), t);
  }
}

static void test_kv(void **state) {
  jiwa_harness_t *h = open_harness();
  jiwa_harness_reply_t r;
  static const char *keys[] = {"k1", "k2", "k3", "other"};
  for (int i = 0; i < 4; i++) {
    char v[32];
    snprintf(v, sizeof v, "value %d", i);
    ask(h, "kv.put", &r, 2, "key", keys[i], "value", v);
    expect_ok(&r);
    assert_int_equal(get_int(r.final, "status"), 0);
    jiwa_harness_reply_free(&r);
  }
  /* get: a copy of what was put */
  ask(h, "kv.get", &r, 1, "key", "k2");
  expect_ok(&r);
  const char *s;
  size_t n;
  assert_int_equal(jiwa_msg_get_str(r.final, "value", &s, &n), 0);
  assert_int_equal(n, 7);
  assert_memory_equal(s, "value 1", 7);
  jiwa_harness_reply_free(&r);
  ask(h, "kv.get", &r, 1, "key", "missing");
  assert_int_equal(jiwa_msg_kind(r.final), JIWA_MSG_ERROR);
  assert_int_equal(jiwa_msg_error(r.final, NULL), JIWA_ENOENT);
  jiwa_harness_reply_free(&r);

  /* scan by prefix, in key order, with a bound */
  ask(h, "kv.scan", &r, 1, "prefix", "k");
  expect_ok(&r);
  assert_int_equal(get_int(r.final, "n"), 3);
  jiwa_harness_reply_free(&r);
  ask(h, "kv.scan", &r, 2, "prefix", "", "#max", (int64_t)2);
  expect_ok(&r);
  assert_int_equal(get_int(r.final, "n"), 2);
  size_t blen;
  const void *body = jiwa_msg_body(r.final, &blen);
  jiwa_mp_reader_t at;
  assert_int_equal(jiwa_mp_map_find(body, blen, "keys", &at), 0);
  jiwa_mp_item_t it;
  assert_int_equal(jiwa_mp_next(&at, &it), 0);
  assert_int_equal(it.v.count, 2);
  assert_int_equal(jiwa_mp_next(&at, &it), 0);
  assert_int_equal(it.v.s.len, 2);
  assert_memory_equal(it.v.s.ptr, "k1", 2);
  jiwa_harness_reply_free(&r);

  /* the plugin's namespace is its actor name */
  void *v = NULL;
  size_t vl = 0;
  assert_int_equal(jiwa_store_fetch(jiwa_harness_store(h), JIWA_STORE_DB_KV,
                                    "plugin\0k3", 9, NULL, &v, &vl),
                   0);
  free(v);
  assert_int_equal(jiwa_harness_close(h), 0);
}

static void test_collection(void **state) {
  jiwa_harness_t *h = open_harness();
  char err[512];
  assert_int_equal(
      jiwa_harness_add_collection(h, "notes", "hash", 128, err, sizeof err),
      0);
  jiwa_harness_reply_t r;
  /* an unknown collection is ENOENT, before any write */
  ask(h, "coll.upsert", &r, 4, "coll", "nope", "id", "x", "text", "t", "lang",
      "en");
  assert_int_equal(jiwa_msg_error(r.final, NULL), JIWA_ENOENT);
  jiwa_harness_reply_free(&r);
  static const char *recs[][3] = {
      {"visa", "How long does the KITAS visa take to process?", "en"},
      {"pajak", "Berapa lama proses KITAS dan pajak di Bali?", "id"},
      {"cibo", "Quanto costa il visto KITAS per lavorare a Bali?", "it"},
  };
  for (int i = 0; i < 3; i++) {
    ask(h, "coll.upsert", &r, 4, "coll", "notes", "id", recs[i][0], "text",
        recs[i][1], "lang", recs[i][2]);
    expect_ok(&r);
    assert_int_equal(get_int(r.final, "status"), 0);
    jiwa_harness_reply_free(&r);
  }
  /* visible to search once its completion ran */
  ask(h, "coll.search", &r, 2, "coll", "notes", "text",
      "how long does KITAS processing take");
  expect_ok(&r);
  const char *top;
  size_t tl;
  assert_int_equal(jiwa_msg_get_str(r.final, "top_text", &top, &tl), 0);
  assert_int_equal(tl, strlen(recs[0][1]));
  assert_memory_equal(top, recs[0][1], tl);
  jiwa_harness_reply_free(&r);
  /* with a filter: only that language */
  ask(h, "coll.search", &r, 3, "coll", "notes", "text", "KITAS", "lang", "it");
  expect_ok(&r);
  size_t blen;
  const void *body = jiwa_msg_body(r.final, &blen);
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  assert_int_equal(jiwa_mp_map_find(body, blen, "ids", &at), 0);
  assert_int_equal(jiwa_mp_next(&at, &it), 0);
  assert_int_equal(it.v.count, 1);
  assert_int_equal(jiwa_mp_next(&at, &it), 0);
  assert_memory_equal(it.v.s.ptr, "cibo", 4);
  jiwa_harness_reply_free(&r);
  /* stats through the SDK */
  ask(h, "coll.stats", &r, 1, "coll", "notes");
  expect_ok(&r);
  assert_int_equal(get_int(r.final, "count"), 3);
  jiwa_harness_reply_free(&r);
  /* and the same data through the library */
  uint64_t cnt = 0;
  assert_int_equal(jiwa_coll_count(jiwa_harness_collection(h, "notes"), &cnt),
                   0);
  assert_int_equal(cnt, 3);
  assert_int_equal(jiwa_harness_close(h), 0);
}

static void test_inflight_unload(void **state) {
  jiwa_harness_t *h = open_harness();
  char err[512];
  assert_int_equal(
      jiwa_harness_add_collection(h, "notes", "hash", 64, err, sizeof err),
      0);
  jiwa_harness_reply_t r;
  /* 300 puts in flight, then the generation is replaced: it drains them
   * (their completions run before its fini) */
  ask(h, "kv.burst", &r, 2, "#n", (int64_t)300, "prefix", "a");
  expect_ok(&r);
  assert_int_equal(get_int(r.final, "started"), 300);
  jiwa_harness_reply_free(&r);
  assert_int_equal(jiwa_harness_reload(h, err, sizeof err), 0);
  /* every acknowledged write of the old generation is there */
  for (int tries = 0;; tries++) {
    ask(h, "kv.get", &r, 1, "key", "a-0299");
    int ok = jiwa_msg_kind(r.final) == JIWA_MSG_REPLY;
    jiwa_harness_reply_free(&r);
    if (ok)
      break;
    assert_true(tries < 2000);
    usleep(1000);
  }
  ask(h, "status", &r, 0);
  assert_int_equal(get_int(r.final, "pending"), 0);
  jiwa_harness_reply_free(&r);
  /* writes and a collection upsert still in flight at shutdown: the
   * runtime waits for them before fini; nothing is left on the loop */
  ask(h, "kv.burst", &r, 2, "#n", (int64_t)300, "prefix", "b");
  jiwa_harness_reply_free(&r);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 4);
  jiwa_mp_put_kv_str(&w.pk, "coll", "notes");
  jiwa_mp_put_kv_str(&w.pk, "id", "late");
  jiwa_mp_put_kv_str(&w.pk, "text", "written while the runtime stops");
  jiwa_mp_put_kv_str(&w.pk, "lang", "en");
  assert_int_equal(
      jiwa_harness_tell(h, "coll.upsert", w.sbuf.data, w.sbuf.size), 0);
  jiwa_mp_writer_free(&w);
  assert_int_equal(jiwa_harness_close(h), 0);
}

/* ---- config and jiwa_rt_open_store ----------------------------------------- */

static int write_conf(const char *dir, const char *name, const char *store) {
  char p[1024], body[4096];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  snprintf(body, sizeof body,
           "return { plugin_dir = '%s', state_dir = '%s/state', "
           "actors = {}, store = %s }",
           getenv("JIWA_TEST_PLUGIN_OUT"), dir, store);
  FILE *f = fopen(p, "w");
  if (!f)
    return -1;
  fputs(body, f);
  fclose(f);
  return 0;
}

static int load(const char *dir, const char *store, jiwa_conf_t *c,
                char *err, size_t errlen) {
  char p[1024];
  assert_int_equal(write_conf(dir, "jiwa.lua", store), 0);
  snprintf(p, sizeof p, "%s/jiwa.lua", dir);
  return jiwa_conf_load(p, c, err, errlen);
}

static void test_store_config(void **state) {
  char dir[512], err[1024];
  jt_tempdir(dir, sizeof dir, "collcfg");
  jiwa_conf_t c;
  /* defaults: <state_dir>/store, durable, no collections */
  if (load(dir, "{}", &c, err, sizeof err))
    fail_msg("%s", err);
  char want[1024];
  snprintf(want, sizeof want, "%s/state/store", dir);
  char *real = realpath(dir, NULL);
  snprintf(want, sizeof want, "%s/state/store", real);
  free(real);
  assert_string_equal(c.store_path, want);
  assert_int_equal(c.store_fast, 0);
  assert_int_equal(c.n_collections, 0);
  jiwa_conf_free(&c);

  struct {
    const char *store, *needle;
  } bad[] = {
      {"{ durability = 'sometimes' }", "durability"},
      {"{ map_size = 1048576, map_max = 65536 }", "map_max"},
      {"{ collections = { { name = 'x', embedder = 'word2vec' } } }",
       "not a known embedder"},
      {"{ collections = { { name = 'x' }, { name = 'x' } } }",
       "duplicate collection"},
      {"{ collections = { { name = 'Bad Name' } } }", "collection name"},
      {"{ collections = { { name = 'x', dim = 4 } } }", "dim"},
      {"{ collections = { { name = 'x', colour = 1 } } }", "colour"},
      {"{ collections = { name = 'x' } }", "list of collection tables"},
      {"{ path = '' }", "empty path"},
      {"{ speed = 1 }", "speed"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = load(dir, bad[i].store, &c, err, sizeof err);
    if (rc != JIWA_ECONFIG || !strstr(err, bad[i].needle))
      fail_msg("store = %s: rc %d, err \"%s\" (want \"%s\")", bad[i].store,
               rc, err, bad[i].needle);
    assert_non_null(strstr(err, "store"));
  }

  /* a runtime opens the store and its collections from the config */
  assert_int_equal(
      load(dir,
           "{ durability = 'fast', map_size = 1048576, collections = { "
           "{ name = 'cultural', dim = 64 }, { name = 'golden' } } }",
           &c, err, sizeof err),
      0);
  assert_int_equal(c.store_fast, 1);
  assert_int_equal(c.n_collections, 2);
  assert_int_equal(c.collections[1].dim, 512);
  jiwa_rt_opts_t o;
  jiwa_rt_opts_from_conf(&o, &c);
  o.workers = 1;
  jiwa_rt_t *rt;
  assert_int_equal(jiwa_rt_new(&rt, &o), 0);
  assert_int_equal(jiwa_rt_open_store(rt, &c, err, sizeof err), 0);
  assert_non_null(jiwa_rt_coll(rt, "cultural"));
  assert_non_null(jiwa_rt_coll(rt, "golden"));
  assert_null(jiwa_rt_coll(rt, "other"));
  assert_int_equal(jiwa_rt_stop(rt), 0);
  jiwa_rt_free(rt); /* closes the collections and the store */
  jiwa_conf_free(&c);

  /* the same store with another dimension is refused, clearly */
  assert_int_equal(load(dir,
                        "{ collections = { { name = 'cultural', dim = 128 } "
                        "} }",
                        &c, err, sizeof err),
                   0);
  jiwa_rt_opts_from_conf(&o, &c);
  o.workers = 1;
  assert_int_equal(jiwa_rt_new(&rt, &o), 0);
  assert_int_equal(jiwa_rt_open_store(rt, &c, err, sizeof err), JIWA_ECONFIG);
  assert_non_null(strstr(err, "store.collections[1] 'cultural'"));
  assert_non_null(strstr(err, "dim 64"));
  assert_non_null(strstr(err, "--rebuild"));
  assert_null(jiwa_rt_store(rt)); /* nothing kept open */
  jiwa_rt_free(rt);
  jiwa_conf_free(&c);
  jt_rmtree(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kv),
      cmocka_unit_test(test_collection),
      cmocka_unit_test(test_inflight_unload),
      cmocka_unit_test(test_store_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
