/* bench_policy — what the Lua routing policy costs per chat.
 *
 * Chats are asked by a load-generator actor on each worker of one runtime,
 * to a router on the same worker (the policy plugin: one Lua state per
 * worker), whose calls go to instant fake actors (runtime/policy/
 * jiwa_dryrun.h). Three routes, on 1 and 2 workers:
 *   baseline  a native actor that answers at once (no Lua): the runtime's
 *             own ask cost, measured in the same run
 *   empty     the policy `function on_chat(req) return {text = req.text}
 *             end`: the engine's fixed cost (coroutine, bridge, reply)
 *   hybrid    scripts/policies/hybrid.lua: golden cache, RAG + memory in
 *             parallel, the model (2 streamed deltas), two tells; the
 *             fake actors are single actors spread round-robin over the
 *             workers, as real plugin instances would be
 * Figures: latency p50/p99 with one chat at a time per worker, and chats/s
 * with 64 in flight per worker; the median of REPEATS runs each, and the
 * ratio against the baseline.
 * Usage: bench_policy [N] (chats per run and worker, default 20000);
 * run from anywhere: the policy plugin and hybrid.lua are found from the
 * binary's build directory (or $JIWA_PLUGIN_OUT / $JIWA_SOURCE_DIR). */
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jiwa_dryrun.h"
#include "jiwa_log.h"
#include "jiwa_rt.h"
#include "bench_util.h"

#define REPEATS 5

static int N = 20000;

/* ---- the load generator -------------------------------------------------- */

static atomic_int gens_done;
static atomic_int errors;

typedef struct {
  int inflight; /* chats kept in flight */
  int sent, finished;
  uint64_t *t0, *rtt; /* per chat */
  char target[32];
} lg_ctx_t;

static void lg_send(jiwa_actor_t *self, lg_ctx_t *c);

static void lg_reply(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *r,
                     void *ud) {
  lg_ctx_t *c = vctx;
  if (jiwa_msg_kind(r) == JIWA_MSG_DELTA)
    return;
  int i = (int)(intptr_t)ud;
  c->rtt[i] = now_ns() - c->t0[i];
  if (jiwa_msg_kind(r) != JIWA_MSG_REPLY)
    atomic_fetch_add(&errors, 1);
  c->finished++;
  lg_send(self, c);
}

static const char chat_body[] = /* {text, user, lang} */
    "\x83\xa4text\xbe"
    "aku malu bertanya tentang visa"
    "\xa4user\xa7u-wayan\xa4lang\xa2id";

static void lg_send(jiwa_actor_t *self, lg_ctx_t *c) {
  while (c->sent < N && c->sent - c->finished < c->inflight) {
    int i = c->sent++;
    c->t0[i] = now_ns();
    if (jiwa_ask(self, c->target, "chat", chat_body, sizeof chat_body - 1,
                 60000, lg_reply, (void *)(intptr_t)i) != 0) {
      atomic_fetch_add(&errors, 1);
      c->finished++;
    }
  }
  if (c->finished == N && c->sent == N) {
    c->sent++; /* report once */
    atomic_fetch_add(&gens_done, 1);
  }
}

static int lg_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  lg_ctx_t *c = vctx;
  const jiwa_msg_t *go = m;
  size_t len;
  const char *b = jiwa_msg_body(go, &len);
  /* "go": body = "<inflight> <target>" */
  char buf[64];
  snprintf(buf, sizeof buf, "%.*s", (int)len, b);
  char *sp = strchr(buf, ' ');
  if (!sp)
    return 0;
  *sp = 0;
  free(c->t0);
  free(c->rtt);
  memset(c, 0, sizeof *c);
  c->inflight = atoi(buf);
  snprintf(c->target, sizeof c->target, "%s", sp + 1);
  c->t0 = calloc((size_t)N, sizeof *c->t0);
  c->rtt = calloc((size_t)N, sizeof *c->rtt);
  if (!c->t0 || !c->rtt)
    abort();
  lg_send(self, c);
  return 0;
}

static void lg_fini(jiwa_actor_t *self, void *vctx) {
  lg_ctx_t *c = vctx;
  free(c->t0);
  free(c->rtt);
}

static const jiwa_plugin_desc_t lg_desc = {
    JIWA_DESC_HEADER, .name = "loadgen", .version = "b",
    .ctx_size = sizeof(lg_ctx_t), .receive = lg_receive, .fini = lg_fini};

/* The baseline: answers every chat at once, no Lua. */
static int direct_receive(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *m) {
  if (jiwa_msg_kind(m) == JIWA_MSG_ASK)
    jiwa_reply(self, m, "chat.reply", "\x81\xa4text\xa2ok", 8);
  return 0;
}

static const jiwa_plugin_desc_t direct_desc = {
    JIWA_DESC_HEADER, .name = "direct", .version = "b",
    .receive = direct_receive};

/* ---- one configuration ------------------------------------------------------ */

typedef struct {
  double p50_us, p99_us, per_s;
} result_t;

/* Run the load generators (one per worker) against "<prefix><worker>". */
static void run(jiwa_rt_t *rt, int workers, const char *prefix, int inflight,
                result_t *out) {
  atomic_store(&gens_done, 0);
  uint64_t t0 = now_ns();
  for (int w = 0; w < workers; w++) {
    char name[16], body[64];
    snprintf(name, sizeof name, "lg%d", w);
    int n = snprintf(body, sizeof body, "%d %s%d", inflight, prefix, w);
    jiwa_rt_tell(rt, name, "go", body, (size_t)n);
  }
  while (atomic_load(&gens_done) < workers)
    usleep(200);
  double secs = (double)(now_ns() - t0) / 1e9;
  out->per_s = (double)N * workers / secs;
}

/* Latency: a probe actor on worker 0 asks one chat at a time. */
static uint64_t *g_rtt; /* filled by the probe */

typedef struct {
  int i;
  uint64_t t0;
  char target[32];
  int done;
} probe_ctx_t;

static atomic_int probe_done;

static void probe_next(jiwa_actor_t *self, probe_ctx_t *c);

static void probe_reply(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *r,
                        void *ud) {
  probe_ctx_t *c = vctx;
  if (jiwa_msg_kind(r) == JIWA_MSG_DELTA)
    return;
  if (jiwa_msg_kind(r) != JIWA_MSG_REPLY)
    atomic_fetch_add(&errors, 1);
  g_rtt[c->i++] = now_ns() - c->t0;
  probe_next(self, c);
}

static void probe_next(jiwa_actor_t *self, probe_ctx_t *c) {
  if (c->i == N) {
    atomic_store(&probe_done, 1);
    return;
  }
  c->t0 = now_ns();
  if (jiwa_ask(self, c->target, "chat", chat_body, sizeof chat_body - 1,
               60000, probe_reply, NULL) != 0) {
    atomic_fetch_add(&errors, 1);
    atomic_store(&probe_done, 1);
  }
}

static int probe_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  probe_ctx_t *c = vctx;
  size_t len;
  const char *b = jiwa_msg_body(m, &len);
  memset(c, 0, sizeof *c);
  snprintf(c->target, sizeof c->target, "%.*s", (int)len, b);
  probe_next(self, c);
  return 0;
}

static const jiwa_plugin_desc_t probe_desc = {
    JIWA_DESC_HEADER, .name = "probe", .version = "b",
    .ctx_size = sizeof(probe_ctx_t), .receive = probe_receive};

static void latency(jiwa_rt_t *rt, const char *prefix, result_t *out,
                    uint64_t *rtt_copy) {
  char target[32];
  int n = snprintf(target, sizeof target, "%s0", prefix);
  atomic_store(&probe_done, 0);
  jiwa_rt_tell(rt, "probe", "go", target, (size_t)n);
  while (!atomic_load(&probe_done))
    usleep(200);
  memcpy(rtt_copy, g_rtt, (size_t)N * sizeof *g_rtt);
  qsort(rtt_copy, (size_t)N, sizeof *rtt_copy, cmp_u64);
  out->p50_us = (double)rtt_copy[N / 2] / 1000.0;
  out->p99_us = (double)rtt_copy[(size_t)N * 99 / 100] / 1000.0;
}

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *f) {
  (void)st, (void)flag, (void)f;
  return remove(p);
}

static void dir_of_exe(char *out, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", out, cap - 1);
  out[n > 0 ? n : 0] = 0;
  char *s = strrchr(out, '/');
  if (s)
    *s = 0;
}

int main(int argc, char **argv) {
  if (argc > 1)
    N = atoi(argv[1]) > 100 ? atoi(argv[1]) : 100;
  char exe[PATH_MAX], plugins[PATH_MAX + 32], hybrid[PATH_MAX + 64];
  dir_of_exe(exe, sizeof exe);
  const char *env_p = getenv("JIWA_PLUGIN_OUT"), *env_s = getenv("JIWA_SOURCE_DIR");
  snprintf(plugins, sizeof plugins, "%s", env_p ? env_p : exe);
  if (!env_p) /* build/tools/bench -> build/plugins */
    snprintf(plugins, sizeof plugins, "%s/../../plugins", exe);
  if (env_s)
    snprintf(hybrid, sizeof hybrid, "%s/scripts/policies/hybrid.lua", env_s);
  else
    snprintf(hybrid, sizeof hybrid, "%s/../../../scripts/policies/hybrid.lua",
             exe);
  char dir[] = "/tmp/jiwa-bench-policy-XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  char empty[PATH_MAX];
  snprintf(empty, sizeof empty, "%s/empty.lua", dir);
  FILE *f = fopen(empty, "w");
  if (!f)
    return 1;
  fputs("function on_chat(req) return { text = req.text } end\n", f);
  fclose(f);
  g_rtt = calloc((size_t)N, sizeof *g_rtt);
  uint64_t *sorted = calloc((size_t)N, sizeof *sorted);
  if (!g_rtt || !sorted)
    return 1;
  jiwa_log_setup(JIWA_LOG_WARN, 0);

  printf("bench_policy: %d chats per run and worker, median of %d runs\n", N,
         REPEATS);
  printf("%-9s %7s %10s %10s %12s %9s\n", "route", "workers", "p50 us",
         "p99 us", "chats/s", "x base");
  const char *routes[] = {"direct", "empty", "hybrid"};
  for (int workers = 1; workers <= 2; workers++) {
    jiwa_rt_t *rt;
    jiwa_rt_opts_t o;
    jiwa_rt_opts_default(&o);
    o.workers = workers;
    o.plugin_dir = plugins;
    o.state_dir = dir;
    o.mailbox_max = 1000000;
    if (jiwa_rt_new(&rt, &o) != 0)
      return 1;
    char err[600];
    size_t nfakes;
    const char *const *fakes = jiwa_dry_default_fakes(&nfakes);
    for (size_t i = 0; i < nfakes; i++)
      jiwa_rt_spawn_native(rt, fakes[i], jiwa_dry_fake_desc(), -1, NULL, 0,
                           err, sizeof err);
    jiwa_rt_spawn_native(rt, "probe", &probe_desc, 0, NULL, 0, err,
                         sizeof err);
    for (int w = 0; w < workers; w++) {
      char name[32];
      snprintf(name, sizeof name, "lg%d", w);
      jiwa_rt_spawn_native(rt, name, &lg_desc, w, NULL, 0, err, sizeof err);
      snprintf(name, sizeof name, "direct%d", w);
      jiwa_rt_spawn_native(rt, name, &direct_desc, w, NULL, 0, err,
                           sizeof err);
      for (int p = 0; p < 2; p++) {
        jiwa_mp_writer_t mw;
        jiwa_mp_writer_init(&mw);
        msgpack_pack_map(&mw.pk, 2);
        jiwa_mp_put_kv_str(&mw.pk, "file", p ? hybrid : empty);
        jiwa_mp_put_kv_int(&mw.pk, "watch_ms", 0);
        snprintf(name, sizeof name, "%s%d", p ? "hybrid" : "empty", w);
        if (jiwa_rt_spawn_plugin(rt, name, "policy", w, mw.sbuf.data,
                                 mw.sbuf.size, err, sizeof err) != 0) {
          fprintf(stderr, "bench_policy: %s\n", err);
          return 1;
        }
        jiwa_mp_writer_free(&mw);
      }
    }
    double base_lat = 0, base_tput = 0;
    for (int r = 0; r < 3; r++) {
      double p50[REPEATS], p99[REPEATS], tput[REPEATS];
      for (int k = 0; k < REPEATS; k++) {
        result_t res;
        latency(rt, routes[r], &res, sorted);
        run(rt, workers, routes[r], 64, &res);
        p50[k] = res.p50_us;
        p99[k] = res.p99_us;
        tput[k] = res.per_s;
      }
      double m50 = median(p50, REPEATS), m99 = median(p99, REPEATS),
             mt = median(tput, REPEATS);
      if (r == 0) {
        base_lat = m50;
        base_tput = mt;
      }
      printf("%-9s %7d %10.1f %10.1f %12.0f %5.2f/%.2f\n", routes[r], workers,
             m50, m99, mt, m50 / base_lat, base_tput / mt);
    }
    jiwa_rt_stop(rt);
    jiwa_rt_free(rt);
  }
  printf("x base: p50 latency / baseline p50, and baseline chats/s / chats/s "
         "(how many times slower)\n");
  if (atomic_load(&errors))
    printf("ERRORS: %d chats failed\n", atomic_load(&errors));
  free(g_rtt);
  free(sorted);
  nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  return atomic_load(&errors) ? 1 : 0;
}
