/* 1,000 policy reloads under chat load. Two routers (the policy plugin, one
 * per worker, each with its own Lua state) run the real hybrid policy
 * against the dry-run fakes while load generators on both workers keep
 * chats in flight; meanwhile the policy file is rewritten (v1 <-> v2) and
 * both routers are asked to reload it, 1,000 times. Every chat must get
 * exactly one reply from some version: 0 failed, 0 lost, 0 duplicated, no
 * request served by the fallback route; old Lua states are freed as their
 * last request ends (LeakSanitizer checks that under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../common/jt.h"
#include "jiwa_dryrun.h"
#include "jiwa_msg.h"
#include "jiwa_rt.h"

#define LOADGENS 4
#define INFLIGHT 16
#define RELOADS 1000

static atomic_int stop_flag, gens_done;
static atomic_llong total_asks, total_ok, total_err, total_dup, seen_v1,
    seen_v2;

typedef struct {
  uint8_t *count; /* finals seen per ask index */
  size_t cap, sent, finished;
  int running, me;
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
  const char *v;
  size_t n;
  if (jiwa_msg_kind(r) == JIWA_MSG_REPLY &&
      jiwa_msg_get_str(r, "v", &v, &n) == 0 && n == 1) {
    atomic_fetch_add(&total_ok, 1);
    atomic_fetch_add(v[0] == '1' ? &seen_v1 : &seen_v2, 1);
  } else {
    const char *text = "a reply without v (the fallback route?)";
    int code = jiwa_msg_kind(r) == JIWA_MSG_ERROR ? jiwa_msg_error(r, &text)
                                                   : 0;
    if (atomic_fetch_add(&total_err, 1) < 5)
      fprintf(stderr, "chat %zu failed: %s %s\n", idx, jiwa_err_name(code),
              text);
  }
  c->finished++;
  lg_send(self, c);
}

static void lg_send(jiwa_actor_t *self, lg_ctx_t *c) {
  while (c->running == 1 && c->sent - c->finished < INFLIGHT) {
    if (atomic_load(&stop_flag)) {
      c->running = 0;
      break;
    }
    if (c->sent == c->cap) {
      size_t cap = c->cap ? c->cap * 2 : 4096;
      uint8_t *p = realloc(c->count, cap);
      if (!p)
        abort();
      memset(p + c->cap, 0, cap - c->cap);
      c->count = p;
      c->cap = cap;
    }
    size_t idx = c->sent++;
    atomic_fetch_add(&total_asks, 1);
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 4);
    jiwa_mp_put_kv_str(&w.pk, "text", "aku malu bertanya tentang visa");
    jiwa_mp_put_kv_str(&w.pk, "user", "u-wayan");
    jiwa_mp_put_kv_str(&w.pk, "lang", "id");
    jiwa_mp_put_kv_bool(&w.pk, "stream", idx % 2);
    int rc = jiwa_ask(self, c->me % 2 ? "router1" : "router0", "chat",
                      w.sbuf.data, w.sbuf.size, 60000, lg_reply,
                      (void *)(uintptr_t)idx);
    jiwa_mp_writer_free(&w);
    if (rc) {
      fprintf(stderr, "chat refused: %s\n", jiwa_strerror(rc));
      atomic_fetch_add(&total_err, 1);
      c->finished++;
    }
  }
  if (c->running == 0 && c->finished == c->sent) {
    c->running = -1; /* report once */
    atomic_fetch_add(&gens_done, 1);
  }
}

static int lg_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  lg_ctx_t *c = vctx;
  const char *name = jiwa_self_name(self);
  if (strcmp(jiwa_msg_type(m), "go") == 0 && c->running == 0) {
    c->me = name[strlen(name) - 1] - '0';
    c->running = 1;
    lg_send(self, c);
  } else if (strcmp(jiwa_msg_type(m), "poke") == 0) {
    lg_send(self, c); /* notice the stop flag with nothing in flight */
  }
  return 0;
}

static void lg_fini(jiwa_actor_t *self, void *vctx) {
  lg_ctx_t *c = vctx;
  free(c->count);
}

static const jiwa_plugin_desc_t lg_desc = {
    JIWA_DESC_HEADER, .name = "loadgen", .version = "t",
    .ctx_size = sizeof(lg_ctx_t), .receive = lg_receive, .fini = lg_fini};

/* The hybrid policy, marked with its version in every reply. */
static void write_policy(const char *path, const char *hybrid, int v) {
  char tmp[700];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  fprintf(f,
          "%s\nlocal hybrid_on_chat = on_chat\n"
          "function on_chat(req)\n"
          "  local r = hybrid_on_chat(req)\n  r.v = '%d'\n  return r\nend\n",
          hybrid, v);
  fclose(f);
  assert_int_equal(rename(tmp, path), 0); /* never a half-written file */
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *b = calloc(1, 1 << 16);
  assert_non_null(b);
  fread(b, 1, (1 << 16) - 1, f);
  fclose(f);
  return b;
}

static void test_reloads_under_chat_load(void **state) {
  char dir[512], hybrid_path[600], file[700];
  jt_tempdir(dir, sizeof dir, "policy-reload");
  snprintf(hybrid_path, sizeof hybrid_path, "%s/scripts/policies/hybrid.lua",
           getenv("JIWA_SOURCE_DIR"));
  char *hybrid = slurp(hybrid_path);
  snprintf(file, sizeof file, "%s/policy.lua", dir);
  write_policy(file, hybrid, 1);

  jiwa_rt_t *rt;
  jiwa_rt_opts_t o;
  jiwa_rt_opts_default(&o);
  o.workers = 2;
  o.plugin_dir = getenv("JIWA_PLUGIN_OUT");
  o.state_dir = dir;
  o.mailbox_max = 100000;
  assert_int_equal(jiwa_rt_new(&rt, &o), 0);
  jiwa_log_setup(JIWA_LOG_WARN, 0);
  char err[600];
  size_t nfakes;
  const char *const *fakes = jiwa_dry_default_fakes(&nfakes);
  for (size_t i = 0; i < nfakes; i++)
    assert_int_equal(jiwa_rt_spawn_native(rt, fakes[i], jiwa_dry_fake_desc(),
                                          (int)(i % 2), NULL, 0, err,
                                          sizeof err),
                     0);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_kv_str(&w.pk, "file", file);
  jiwa_mp_put_kv_int(&w.pk, "watch_ms", 0);
  for (int i = 0; i < 2; i++) {
    char name[16];
    snprintf(name, sizeof name, "router%d", i);
    if (jiwa_rt_spawn_plugin(rt, name, "policy", i, w.sbuf.data, w.sbuf.size,
                             err, sizeof err))
      fail_msg("router: %s", err);
  }
  jiwa_mp_writer_free(&w);
  for (int i = 0; i < LOADGENS; i++) {
    char name[16];
    snprintf(name, sizeof name, "lg%d", i);
    assert_int_equal(jiwa_rt_spawn_native(rt, name, &lg_desc, i % 2, NULL, 0,
                                          err, sizeof err),
                     0);
    assert_int_equal(jiwa_rt_tell(rt, name, "go", NULL, 0), 0);
  }

  int reloads = 0;
  for (; reloads < RELOADS; reloads++) {
    write_policy(file, hybrid, reloads % 2 ? 1 : 2);
    for (int i = 0; i < 2; i++) {
      jiwa_msg_t *rep = NULL;
      assert_int_equal(jiwa_rt_ask_sync(rt, i ? "router1" : "router0",
                                        "policy.reload", NULL, 0, 30000,
                                        &rep),
                       0);
      if (jiwa_msg_kind(rep) != JIWA_MSG_REPLY) {
        const char *text;
        jiwa_msg_error(rep, &text);
        fail_msg("reload %d of router%d refused: %s", reloads, i, text);
      }
      jiwa__msg_release(rep);
    }
  }
  long long during = atomic_load(&total_asks);
  atomic_store(&stop_flag, 1);
  for (int t = 0; t < 60000 && atomic_load(&gens_done) < LOADGENS; t++) {
    if (t % 100 == 0)
      for (int i = 0; i < LOADGENS; i++) {
        char name[16];
        snprintf(name, sizeof name, "lg%d", i);
        jiwa_rt_tell(rt, name, "poke", NULL, 0);
      }
    usleep(1000);
  }
  assert_int_equal(atomic_load(&gens_done), LOADGENS);

  long long asks = atomic_load(&total_asks);
  printf("policy reloads: %d per router (2 routers), chats: %lld (%lld "
         "during the reloads), ok: %lld, failed: %lld, duplicated: %lld, "
         "served by v1: %lld, by v2: %lld\n",
         reloads, asks, during, (long long)atomic_load(&total_ok),
         (long long)atomic_load(&total_err),
         (long long)atomic_load(&total_dup), (long long)atomic_load(&seen_v1),
         (long long)atomic_load(&seen_v2));
  assert_int_equal(reloads, RELOADS);
  assert_true(during >= RELOADS); /* chats really were flowing */
  assert_int_equal(atomic_load(&total_ok), asks);
  assert_int_equal(atomic_load(&total_err), 0);
  assert_int_equal(atomic_load(&total_dup), 0);
  assert_true(atomic_load(&seen_v1) > 0 && atomic_load(&seen_v2) > 0);

  /* no request of either router went down the fallback route */
  for (int i = 0; i < 2; i++) {
    jiwa_msg_t *rep = NULL;
    assert_int_equal(jiwa_rt_ask_sync(rt, i ? "router1" : "router0",
                                      "policy.show", NULL, 0, 5000, &rep),
                     0);
    int64_t failures = -1;
    assert_int_equal(jiwa_msg_get_int(rep, "failures", &failures), 0);
    assert_int_equal(failures, 0);
    jiwa__msg_release(rep);
  }
  assert_int_equal(jiwa_rt_stop(rt), 0);
  jiwa_rt_free(rt);
  free(hybrid);
  jt_rmtree(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reloads_under_chat_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
