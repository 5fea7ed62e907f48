/*
 * nightly — the batch side of jiwa (DESIGN.md §10, README.md next to this
 * file): a cron scheduler (UTC) that runs the job described by
 * scripts/jobs/nightly.lua — query clustering over the conversation log,
 * golden answers for the top clusters, cultural knowledge generation —
 * one run at a time, every run recorded in this actor's kv namespace, a
 * failed run logged and posted to an optional webhook.
 *
 * This file: config, the clock and the scheduler, the messages (job.run,
 * job.runs, job.tick, job.status, clusters.show), the plan (the script,
 * run in a Lua sandbox on the thread pool), the run lifecycle and its
 * record, the alert. The stages are in night_stages.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "jiwa/json.h"
#include "jiwa_lua_bridge.h"
#include "jiwa_sandbox.h"
#include "nightly_int.h"

#define SCRIPT_MAX (256u * 1024u)
#define RUNS_SCAN_MAX 100000u

static const jiwa_cfg_field_t night_config[] = {
    {JIWA_CFG_STR, "name", "nightly", offsetof(night_ctx_t, name), 0, 0, 0,
     "the job's name (job.run {name})"},
    {JIWA_CFG_STR, "schedule", "0 2 * * *", offsetof(night_ctx_t, schedule), 0,
     0, 0, "cron expression, UTC; \"\" = never on schedule"},
    {JIWA_CFG_STR, "script", "scripts/jobs/nightly.lua",
     offsetof(night_ctx_t, script), 0, 0, 0,
     "the job script (read at each run; relative to jiwad's working dir)"},
    {JIWA_CFG_STR, "convlog", "convlog", offsetof(night_ctx_t, convlog), 0, 0,
     0, "actor answering conversations.query"},
    {JIWA_CFG_STR, "golden", "golden_cache", offsetof(night_ctx_t, golden), 0,
     0, 0, "actor answering golden.lookup / golden.import"},
    {JIWA_CFG_STR, "rag", "cultural_rag", offsetof(night_ctx_t, rag), 0, 0, 0,
     "actor answering rag.query (golden context); \"\" = none"},
    {JIWA_CFG_STR, "knowledge", "", offsetof(night_ctx_t, knowledge), 0, 0, 0,
     "actor answering knowledge.search (golden context); \"\" = none"},
    {JIWA_CFG_STR, "collection", "cultural", offsetof(night_ctx_t, collection),
     0, 0, 0, "the insights collection generated knowledge goes to"},
    {JIWA_CFG_STR, "golden_model", "claude",
     offsetof(night_ctx_t, golden_model), 0, 0, 0,
     "model actor for golden answers (the script may override)"},
    {JIWA_CFG_STR, "cultural_model", "llama",
     offsetof(night_ctx_t, cultural_model), 0, 0, 0,
     "model actor for cultural insights (the script may override)"},
    {JIWA_CFG_STR, "alert_webhook", "", offsetof(night_ctx_t, alert_webhook), 0,
     0, 0, "http(s) URL a failed run's summary is POSTed to; \"\" = none"},
    {JIWA_CFG_INT, "tick_ms", "30000", offsetof(night_ctx_t, tick_ms), 0, 10,
     3600000, "how often the schedule is checked"},
    {JIWA_CFG_INT, "clock_offset_ms", "0",
     offsetof(night_ctx_t, clock_offset_ms), 0, -1e15, 1e15,
     "added to the wall clock (tests, staging)"},
    {JIWA_CFG_INT, "max_queries", "200000", offsetof(night_ctx_t, max_queries),
     0, 1, 2000000,
     "queries of the window clustered at most (2 KiB of vectors each)"},
    {JIWA_CFG_INT, "ask_timeout_ms", "600000",
     offsetof(night_ctx_t, ask_timeout_ms), 0, 100, 86400000,
     "deadline of the conversation log query and of writes"},
    {JIWA_CFG_INT, "model_timeout_ms", "120000",
     offsetof(night_ctx_t, model_timeout_ms), 0, 100, 3600000,
     "deadline of each model call"},
    {JIWA_CFG_INT, "concurrency", "4", offsetof(night_ctx_t, concurrency), 0, 1,
     64, "model calls in flight at once"},
    {JIWA_CFG_INT, "keep_runs", "200", offsetof(night_ctx_t, keep_runs), 0, 1,
     100000, "runs (and their clusters) kept; older ones are removed"},
    {JIWA_CFG_DOUBLE, "dedup", "0.8", offsetof(night_ctx_t, dedup), 0, 0.1, 1,
     "a generated insight this similar (cosine) to another is a duplicate"},
    {JIWA_CFG_DOUBLE, "golden_ttl_days", "30",
     offsetof(night_ctx_t, golden_ttl_days), 0, 0, 36500,
     "expiry of generated golden answers (0 = never): then regenerated"},
    {0}};

/* ---- small helpers ----------------------------------------------------------
 */

char *night_strndup(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

static int64_t realtime_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The job's clock: the wall clock + clock_offset_ms, or, once job.tick set
 * it, the ticked time plus the monotonic time since. */
int64_t night_wall_ms(const night_ctx_t *c) {
  if (c->ticked)
    return c->tick_wall_ms + (int64_t)(jiwa_now_ms() - c->tick_mono_ms);
  return realtime_ms() + c->clock_offset_ms;
}

static void iso(int64_t ms, char *buf, size_t cap) {
  int64_t s = ms / 1000;
  if (s < 0)
    s = 0;
  if (s > JIWA_CRON_MAX_TIME)
    s = JIWA_CRON_MAX_TIME;
  jiwa_cron_fmt(s, buf, cap);
}

/* ---- plan: the script, in a sandbox, on the thread pool ---------------------
 */

typedef struct {
  night_run_t *run;
  char *path;
  void *req;
  size_t req_len;
  void *plan; /* msgpack */
  size_t plan_len;
  int rc;
  char err[512];
} plan_job_t;

static void plan_work(void *ud) {
  plan_job_t *j = ud;
  j->rc = JIWA_EIO;
  FILE *f = fopen(j->path, "rb");
  if (!f) {
    snprintf(j->err, sizeof j->err, "cannot read the job script %s: %s",
             j->path, strerror(errno));
    return;
  }
  char *src = malloc(SCRIPT_MAX + 1);
  size_t n = src ? fread(src, 1, SCRIPT_MAX + 1, f) : 0;
  fclose(f);
  if (!src) {
    j->rc = JIWA_ENOMEM;
    snprintf(j->err, sizeof j->err, "out of memory");
    return;
  }
  if (n > SCRIPT_MAX) {
    free(src);
    j->rc = JIWA_ETOOBIG;
    snprintf(j->err, sizeof j->err, "the job script %s is over %u bytes",
             j->path, SCRIPT_MAX);
    return;
  }
  jiwa_sandbox_limits_t lim;
  jiwa_sandbox_limits_default(&lim);
  lim.mem_max = (size_t)16 << 20;
  lim.insn_budget = 5000000;
  jiwa_sandbox_t *sb = NULL;
  if (jiwa_sandbox_new(&sb, &lim)) {
    free(src);
    j->rc = JIWA_ENOMEM;
    snprintf(j->err, sizeof j->err, "cannot create a Lua sandbox");
    return;
  }
  const char *base = strrchr(j->path, '/');
  base = base ? base + 1 : j->path;
  char err[400];
  j->rc = JIWA_EINVAL;
  if (jiwa_sandbox_load(sb, src, n, base, err, sizeof err) != JIWA_SANDBOX_OK) {
    snprintf(j->err, sizeof j->err, "job script: %s", err);
  } else if (!jiwa_sandbox_has(sb, "plan")) {
    snprintf(j->err, sizeof j->err,
             "job script %s defines no function plan(req)", base);
  } else {
    lua_State *L = jiwa_sandbox_state(sb);
    if (jiwa_lua_push_mp(L, j->req, j->req_len, err, sizeof err)) {
      snprintf(j->err, sizeof j->err, "job request: %s", err);
    } else if (jiwa_sandbox_call(sb, "plan", 1, 1, err, sizeof err) !=
               JIWA_SANDBOX_OK) {
      snprintf(j->err, sizeof j->err, "job script: %s", err);
    } else {
      jiwa_mp_writer_t w;
      jiwa_mp_writer_init(&w);
      if (!lua_istable(L, -1)) {
        snprintf(j->err, sizeof j->err,
                 "job script %s: plan(req) must return a table, not %s", base,
                 luaL_typename(L, -1));
      } else if (jiwa_lua_to_mp(L, -1, &w.pk, "plan", err, sizeof err)) {
        snprintf(j->err, sizeof j->err, "job script %s: %s", base, err);
      } else {
        j->plan = malloc(w.sbuf.size);
        if (j->plan) {
          memcpy(j->plan, w.sbuf.data, w.sbuf.size);
          j->plan_len = w.sbuf.size;
          j->rc = 0;
        }
      }
      lua_pop(L, 1);
      jiwa_mp_writer_free(&w);
    }
  }
  jiwa_sandbox_free(sb);
  free(src);
}

/* A string field of the plan into @p dst; absent is fine. */
static int plan_str(const void *b, size_t n, const char *k, char *dst,
                    size_t cap, char *err, size_t errlen) {
  const char *s;
  size_t sl;
  int rc = jiwa_mp_get_str(b, n, k, &s, &sl);
  if (rc == JIWA_ENOENT)
    return 0;
  if (rc || sl == 0 || sl >= cap) {
    snprintf(err, errlen, "field '%s' must be a string of 1..%zu bytes", k,
             cap - 1);
    return JIWA_EINVAL;
  }
  memcpy(dst, s, sl);
  dst[sl] = 0;
  return 0;
}

static int plan_int(const void *b, size_t n, const char *k, int64_t *v,
                    int64_t lo, int64_t hi, char *err, size_t errlen) {
  int64_t x;
  int rc = jiwa_mp_get_int(b, n, k, &x);
  if (rc == JIWA_ENOENT)
    return 0;
  if (rc || x < lo || x > hi) {
    snprintf(err, errlen,
             "field '%s' must be a whole number in %" PRId64 "..%" PRId64, k,
             lo, hi);
    return JIWA_EINVAL;
  }
  *v = x;
  return 0;
}

static int plan_text(const void *b, size_t n, const char *k, char **dst,
                     char *err, size_t errlen) {
  const char *s;
  size_t sl;
  int rc = jiwa_mp_get_str(b, n, k, &s, &sl);
  if (rc == JIWA_ENOENT)
    return 0;
  if (rc || sl == 0 || sl > 8000) {
    snprintf(err, errlen, "field '%s' must be a string of 1..8000 bytes", k);
    return JIWA_EINVAL;
  }
  free(*dst);
  *dst = night_strndup(s, sl);
  return *dst ? 0 : JIWA_ENOMEM;
}

static void plan_free(night_plan_t *p) {
  free(p->golden_system);
  free(p->cultural_system);
  for (size_t i = 0; i < p->ntopics; i++)
    free(p->topics[i].hint);
  memset(p, 0, sizeof *p);
}

static int is_slug(const char *s) {
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
      return 0;
  return 1;
}

/* The script's table → night_plan_t, checked field by field. */
static int plan_parse(night_ctx_t *c, const void *b, size_t n, night_plan_t *p,
                      char *err, size_t errlen) {
  memset(p, 0, sizeof *p);
  p->days = 7;
  p->max_golden = 50;
  p->min_cluster = 3;
  p->paraphrases = 5;
  p->per_prompt = 5;
  snprintf(p->golden_model, sizeof p->golden_model, "%s", c->golden_model);
  snprintf(p->cultural_model, sizeof p->cultural_model, "%s",
           c->cultural_model);
  int rc;
  if ((rc = plan_int(b, n, "days", &p->days, 1, 3650, err, errlen)) ||
      (rc = plan_int(b, n, "max_golden", &p->max_golden, 0, 5000, err,
                     errlen)) ||
      (rc = plan_int(b, n, "min_cluster_size", &p->min_cluster, 1, 1000000, err,
                     errlen)) ||
      (rc = plan_int(b, n, "paraphrases", &p->paraphrases, 0, 16, err,
                     errlen)) ||
      (rc = plan_str(b, n, "golden_model", p->golden_model,
                     sizeof p->golden_model, err, errlen)) ||
      (rc = plan_str(b, n, "cultural_model", p->cultural_model,
                     sizeof p->cultural_model, err, errlen)) ||
      (rc = plan_text(b, n, "golden_system", &p->golden_system, err, errlen)))
    return rc;
  int regen = 0;
  if (jiwa_mp_get_bool(b, n, "regenerate_cultural", &regen) == 0)
    p->regenerate = regen;

  /* stages: a list of names, in this order only */
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  if (jiwa_mp_map_find(b, n, "stages", &at) == 0) {
    if (jiwa_mp_next(&at, &it) || it.type != JIWA_MP_ARRAY) {
      snprintf(err, errlen, "field 'stages' must be a list of stage names");
      return JIWA_EINVAL;
    }
    for (uint32_t i = 0; i < it.v.count; i++) {
      jiwa_mp_item_t s;
      if (jiwa_mp_next(&at, &s) || s.type != JIWA_MP_STR) {
        snprintf(err, errlen, "stages[%u] must be a string", i + 1);
        return JIWA_EINVAL;
      }
#define IS(x)                                                                  \
  (s.v.s.len == sizeof x - 1 && memcmp(s.v.s.ptr, x, s.v.s.len) == 0)
      if (IS("clusters"))
        p->st_clusters = 1;
      else if (IS("golden"))
        p->st_golden = 1;
      else if (IS("cultural"))
        p->st_cultural = 1;
      else {
        snprintf(err, errlen,
                 "stages[%u] '%.*s' is not a stage (clusters, golden, "
                 "cultural)",
                 i + 1, (int)(s.v.s.len > 32 ? 32 : s.v.s.len), s.v.s.ptr);
        return JIWA_EINVAL;
      }
#undef IS
    }
  } else {
    p->st_clusters = p->st_golden = p->st_cultural = 1;
  }
  if (p->st_golden && !p->st_clusters) {
    snprintf(err, errlen, "stage 'golden' needs stage 'clusters' before it");
    return JIWA_EINVAL;
  }

  /* cultural = {topics = {...}, langs = {...}, per_prompt = N, system = S} */
  if (jiwa_mp_map_find(b, n, "cultural", &at) == 0) {
    const uint8_t *cb = at.p;
    jiwa_mp_reader_t end = at;
    if (jiwa_mp_skip(&end) || jiwa_mp_next(&at, &it) ||
        it.type != JIWA_MP_MAP) {
      snprintf(err, errlen, "field 'cultural' must be a table");
      return JIWA_EINVAL;
    }
    size_t cn = (size_t)(end.p - cb);
    if ((rc = plan_int(cb, cn, "per_prompt", &p->per_prompt, 1, 50, err,
                       errlen)) ||
        (rc = plan_text(cb, cn, "system", &p->cultural_system, err, errlen)))
      return rc;
    jiwa_mp_reader_t t;
    if (jiwa_mp_map_find(cb, cn, "langs", &t) == 0) {
      if (jiwa_mp_next(&t, &it) || it.type != JIWA_MP_ARRAY ||
          it.v.count > NIGHT_LANGS_MAX) {
        snprintf(err, errlen,
                 "cultural.langs must be a list of at most %d "
                 "language codes",
                 NIGHT_LANGS_MAX);
        return JIWA_EINVAL;
      }
      for (uint32_t i = 0; i < it.v.count; i++) {
        jiwa_mp_item_t s;
        if (jiwa_mp_next(&t, &s) || s.type != JIWA_MP_STR || s.v.s.len < 2 ||
            s.v.s.len > 7) {
          snprintf(err, errlen,
                   "cultural.langs[%u] must be a language code "
                   "(\"en\", \"id\", \"it\")",
                   i + 1);
          return JIWA_EINVAL;
        }
        memcpy(p->langs[p->nlangs], s.v.s.ptr, s.v.s.len);
        p->langs[p->nlangs++][s.v.s.len] = 0;
      }
    }
    if (jiwa_mp_map_find(cb, cn, "topics", &t) == 0) {
      if (jiwa_mp_next(&t, &it) || it.type != JIWA_MP_ARRAY ||
          it.v.count > NIGHT_TOPICS_MAX) {
        snprintf(err, errlen,
                 "cultural.topics must be a list of at most %d "
                 "topics",
                 NIGHT_TOPICS_MAX);
        return JIWA_EINVAL;
      }
      for (uint32_t i = 0; i < it.v.count; i++) {
        const uint8_t *eb = t.p;
        jiwa_mp_reader_t e = t;
        jiwa_mp_item_t s;
        if (jiwa_mp_skip(&e) || jiwa_mp_next(&t, &s)) {
          snprintf(err, errlen, "cultural.topics[%u] is malformed", i + 1);
          return JIWA_EINVAL;
        }
        size_t en = (size_t)(e.p - eb);
        night_topic_t *tp = &p->topics[p->ntopics];
        snprintf(tp->category, sizeof tp->category, "general");
        if (s.type == JIWA_MP_STR && s.v.s.len > 0 &&
            s.v.s.len < sizeof tp->name) {
          memcpy(tp->name, s.v.s.ptr, s.v.s.len);
          tp->name[s.v.s.len] = 0;
        } else if (s.type == JIWA_MP_MAP) {
          char e2[200];
          if ((rc = plan_str(eb, en, "name", tp->name, sizeof tp->name, e2,
                             sizeof e2)) ||
              (rc = plan_str(eb, en, "category", tp->category,
                             sizeof tp->category, e2, sizeof e2)) ||
              (rc = plan_text(eb, en, "hint", &tp->hint, e2, sizeof e2))) {
            snprintf(err, errlen, "cultural.topics[%u]: %s", i + 1, e2);
            return rc;
          }
        }
        if (!tp->name[0] || !is_slug(tp->name) || !is_slug(tp->category)) {
          snprintf(err, errlen,
                   "cultural.topics[%u] needs a name (and category) of "
                   "[a-z0-9_], at most 47 bytes",
                   i + 1);
          free(tp->hint);
          tp->hint = NULL;
          return JIWA_EINVAL;
        }
        p->ntopics++;
        t = e;
      }
    }
  }
  if (p->nlangs == 0) {
    static const char *def[] = {"en", "id", "it"};
    for (size_t i = 0; i < 3; i++)
      snprintf(p->langs[p->nlangs++], 8, "%s", def[i]);
  }
  if (p->st_cultural && p->ntopics == 0) {
    snprintf(err, errlen,
             "stage 'cultural' needs cultural.topics (a list of topics)");
    return JIWA_EINVAL;
  }
  return 0;
}

/* ---- run records ------------------------------------------------------------
 */

static void pack_counts(jiwa_mp_writer_t *w, const night_counts_t *k) {
  int labels = k->purity >= 0;
  msgpack_pack_map(&w->pk, 19 + (labels ? 2 : 0));
#define I(name) jiwa_mp_put_kv_int(&w->pk, #name, k->name)
  I(queries);
  I(dropped);
  I(clusters);
  I(unique);
  I(unassigned);
  jiwa_mp_put_kv_double(&w->pk, "coverage_top50", k->coverage_top50);
  if (labels) {
    jiwa_mp_put_kv_double(&w->pk, "purity", k->purity);
    jiwa_mp_put_kv_double(&w->pk, "ari", k->ari);
  }
  I(golden_looked);
  I(golden_fresh);
  I(golden_small);
  I(golden_candidates);
  I(golden_generated);
  I(golden_written);
  I(context_errors);
  I(cultural_prompts);
  I(cultural_items);
  I(cultural_duplicates);
  I(cultural_written);
  I(cultural_removed);
  I(cultural_empty);
#undef I
}

static const char *stage_name(int st) {
  switch (st) {
  case ST_PLAN:
    return "plan";
  case ST_CLUSTERS:
    return "clusters";
  case ST_GOLDEN:
    return "golden";
  case ST_CULTURAL:
    return "cultural";
  default:
    return "done";
  }
}

/* The run's summary (its kv record, the webhook body, the reply). */
static void pack_run(jiwa_mp_writer_t *w, const night_run_t *r,
                     const char *status) {
  char s0[32], s1[32];
  iso(r->started_ms, s0, sizeof s0);
  iso(r->ended_ms, s1, sizeof s1);
  msgpack_pack_map(&w->pk, 14);
  jiwa_mp_put_kv_str(&w->pk, "id", r->id);
  jiwa_mp_put_kv_str(&w->pk, "name", r->name);
  jiwa_mp_put_kv_str(&w->pk, "trigger", r->trigger);
  jiwa_mp_put_kv_str(&w->pk, "status", status);
  jiwa_mp_put_kv_str(&w->pk, "started", s0);
  jiwa_mp_put_kv_str(&w->pk, "ended", r->ended_ms ? s1 : "");
  jiwa_mp_put_kv_int(&w->pk, "started_ms", r->started_ms);
  jiwa_mp_put_kv_int(&w->pk, "ended_ms", r->ended_ms);
  jiwa_mp_put_str(&w->pk, "error");
  if (r->failed)
    jiwa_mp_put_str(&w->pk, r->error);
  else
    msgpack_pack_nil(&w->pk);
  jiwa_mp_put_kv_str(&w->pk, "stage",
                     r->failed ? r->fail_stage : stage_name(r->stage));
  jiwa_mp_put_kv_int(&w->pk, "since_ms", r->since_ms);
  jiwa_mp_put_kv_int(&w->pk, "until_ms", r->until_ms);
  jiwa_mp_put_str(&w->pk, "params");
  msgpack_pack_map(&w->pk, 6);
  jiwa_mp_put_kv_int(&w->pk, "days", r->plan.days);
  jiwa_mp_put_kv_int(&w->pk, "max_golden", r->plan.max_golden);
  jiwa_mp_put_kv_bool(&w->pk, "regenerate_cultural", r->plan.regenerate);
  jiwa_mp_put_kv_str(&w->pk, "golden_model", r->plan.golden_model);
  jiwa_mp_put_kv_str(&w->pk, "cultural_model", r->plan.cultural_model);
  jiwa_mp_put_str(&w->pk, "stages");
  msgpack_pack_array(&w->pk, (size_t)(r->plan.st_clusters + r->plan.st_golden +
                                      r->plan.st_cultural));
  if (r->plan.st_clusters)
    jiwa_mp_put_str(&w->pk, "clusters");
  if (r->plan.st_golden)
    jiwa_mp_put_str(&w->pk, "golden");
  if (r->plan.st_cultural)
    jiwa_mp_put_str(&w->pk, "cultural");
  jiwa_mp_put_str(&w->pk, "counts");
  pack_counts(w, &r->counts);
}

static void put_run_record(night_run_t *r, const char *status, jiwa_store_cb cb,
                           void *ud) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  pack_run(&w, r, status);
  char key[32];
  int kl = snprintf(key, sizeof key, "run:%s", r->id);
  int rc = jiwa_kv_put(r->ctx->self, key, (size_t)kl, w.sbuf.data, w.sbuf.size,
                       cb, ud);
  if (rc) {
    jiwa_log(r->ctx->self, JIWA_LOG_ERROR,
             "run %s: cannot write its record: %s", r->id, jiwa_strerror(rc));
    if (cb)
      cb(r->ctx->self, r->ctx, rc, ud);
  }
  jiwa_mp_writer_free(&w);
}

/* ---- progress
 * ------------------------------------------------------------------ */

void night_progress(night_run_t *r, const char *stage, size_t done,
                    size_t total, int force) {
  if (!r->req || r->detached)
    return;
  uint64_t now = jiwa_now_ms();
  if (!force && now - r->last_progress < 100)
    return;
  r->last_progress = now;
  double secs = (double)(now - r->stage_t0) / 1000.0;
  double rate = secs > 0 ? (double)done / secs : 0;
  double eta = -1;
  if (total > 0 && done > 0 && rate > 0 && done <= total)
    eta = (double)(total - done) / rate;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 6);
  jiwa_mp_put_kv_str(&w.pk, "run", r->id);
  jiwa_mp_put_kv_str(&w.pk, "stage", stage);
  jiwa_mp_put_kv_int(&w.pk, "done", (int64_t)done);
  jiwa_mp_put_kv_int(&w.pk, "total", (int64_t)total);
  jiwa_mp_put_kv_double(&w.pk, "rate", rate);
  jiwa_mp_put_kv_double(&w.pk, "eta_s", eta);
  jiwa_stream(r->ctx->self, r->req, "job.progress", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

/* ---- the alert
 * ------------------------------------------------------------------ */

static void hook_done(jiwa_actor_t *self, void *vctx,
                      const jiwa_http_result_t *res, void *ud) {
  (void)vctx;
  char *id = ud;
  if (res->code)
    jiwa_log(self, JIWA_LOG_ERROR, "alert webhook for run %s failed: %s", id,
             res->error);
  else if (res->status < 200 || res->status > 299)
    jiwa_log(self, JIWA_LOG_ERROR, "alert webhook for run %s answered HTTP %d",
             id, res->status);
  else
    jiwa_log(self, JIWA_LOG_INFO, "alert webhook for run %s sent (HTTP %d)", id,
             res->status);
  jiwa_count(self,
             res->code == 0 && res->status / 100 == 2 ? "alerts_sent"
                                                      : "alerts_failed",
             1);
  free(id);
}

static const jiwa_http_cbs_t hook_cbs = {NULL, NULL, hook_done};

static void alert(night_run_t *r, const void *summary, size_t len) {
  night_ctx_t *c = r->ctx;
  jiwa_log(c->self, JIWA_LOG_ERROR,
           "nightly run %s (%s) failed in stage %s: %s", r->id, r->name,
           r->fail_stage, r->error);
  jiwa_count(c->self, "runs_failed", 1);
  if (!c->alert_webhook || !c->alert_webhook[0])
    return;
  char *json = NULL;
  size_t jl = 0;
  if (jiwa_mp_to_json(summary, len, &json, &jl))
    return;
  /* {"text": "...", "run": {...}}: chat webhooks show text, others parse run */
  char head[800];
  int hl = snprintf(head, sizeof head,
                    "{\"text\":\"jiwa nightly run %s failed in stage %s\","
                    "\"run\":",
                    r->id, r->fail_stage);
  char *body = malloc((size_t)hl + jl + 2);
  if (!body) {
    free(json);
    return;
  }
  memcpy(body, head, (size_t)hl);
  memcpy(body + hl, json, jl);
  body[(size_t)hl + jl] = '}';
  free(json);
  jiwa_http_header_t hdr[] = {{"content-type", "application/json"}};
  jiwa_http_req_t req;
  jiwa_http_req_init(&req);
  req.method = "POST";
  req.url = c->alert_webhook;
  req.headers = hdr;
  req.nheaders = 1;
  req.body = body;
  req.body_len = (size_t)hl + jl + 1;
  req.total_ms = 15000;
  char *id = night_strndup(r->id, strlen(r->id));
  int rc =
      id ? jiwa_http_request(c->self, &req, &hook_cbs, id, NULL) : JIWA_ENOMEM;
  if (rc) {
    jiwa_log(c->self, JIWA_LOG_ERROR, "alert webhook for run %s: %s", r->id,
             jiwa_strerror(rc));
    free(id);
  }
  free(body);
}

/* ---- run lifecycle
 * ---------------------------------------------------------------- */

static void run_free(night_run_t *r) {
  if (!r)
    return;
  if (r->req)
    jiwa_msg_release(r->req);
  night_run_free_stages(r);
  plan_free(&r->plan);
  free(r);
}

/* After the final record committed: reply, alert, forget the run. */
static void run_recorded(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  night_ctx_t *c = vctx;
  night_run_t *r = ud;
  if (status)
    jiwa_log(self, JIWA_LOG_ERROR, "run %s: its record was not written: %s",
             r->id, jiwa_strerror(status));
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  pack_run(&w, r, r->failed ? "failed" : "ok");
  if (r->failed)
    alert(r, w.sbuf.data, w.sbuf.size);
  else {
    jiwa_count(self, "runs_ok", 1);
    jiwa_log(self, JIWA_LOG_INFO,
             "nightly run %s ok: %" PRId64 " queries, %" PRId64
             " clusters (top-50 coverage %.3f), %" PRId64
             " golden written, %" PRId64 " insights written",
             r->id, r->counts.queries, r->counts.clusters,
             r->counts.coverage_top50, r->counts.golden_written,
             r->counts.cultural_written);
  }
  if (r->req && !r->detached) {
    if (r->failed) {
      char text[800];
      snprintf(text, sizeof text, "run %s failed in stage %s: %s", r->id,
               r->fail_stage, r->error);
      jiwa_reply_error(self, r->req, JIWA_EUPSTREAM, text);
    } else {
      jiwa_reply(self, r->req, "job.done", w.sbuf.data, w.sbuf.size);
    }
  }
  jiwa_mp_writer_free(&w);
  /* keep the last keep_runs runs (one goes per new run) */
  uint32_t seq = (uint32_t)strtoul(r->id + 1, NULL, 10);
  if ((int64_t)seq > c->keep_runs) {
    char key[40];
    uint32_t old = seq - (uint32_t)c->keep_runs;
    int kl = snprintf(key, sizeof key, "run:r%06" PRIu32, old);
    jiwa_kv_del(self, key, (size_t)kl, NULL, NULL);
    kl = snprintf(key, sizeof key, "clusters:r%06" PRIu32, old);
    jiwa_kv_del(self, key, (size_t)kl, NULL, NULL);
  }
  if (c->run == r)
    c->run = NULL;
  run_free(r);
}

static void run_finish(night_run_t *r) {
  r->ended_ms = night_wall_ms(r->ctx);
  r->stage = ST_DONE;
  put_run_record(r, r->failed ? "failed" : "ok", run_recorded, r);
}

void night_fail(night_run_t *r, const char *stage, const char *fmt, ...) {
  if (!r->failed) {
    r->failed = 1;
    snprintf(r->fail_stage, sizeof r->fail_stage, "%s", stage);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
  }
  night_settle(r);
}

/* Called whenever something in flight ends: a failed run finishes once
 * nothing of it is in flight any more. */
void night_settle(night_run_t *r) {
  if (r->failed && r->pending == 0 && r->stage != ST_DONE)
    run_finish(r);
}

void night_next_stage(night_run_t *r) {
  if (r->failed) {
    night_settle(r);
    return;
  }
  for (;;) {
    r->stage++;
    r->stage_t0 = jiwa_now_ms();
    r->last_progress = 0;
    if (r->stage == ST_CLUSTERS && r->plan.st_clusters) {
      night_clusters_start(r);
      return;
    }
    if (r->stage == ST_GOLDEN && r->plan.st_golden) {
      night_golden_start(r);
      return;
    }
    if (r->stage == ST_CULTURAL && r->plan.st_cultural) {
      night_cultural_start(r);
      return;
    }
    if (r->stage >= ST_DONE) {
      r->stage = ST_DONE - 1;
      run_finish(r);
      return;
    }
  }
}

static void plan_done(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  (void)self;
  night_ctx_t *c = vctx;
  plan_job_t *j = ud;
  night_run_t *r = j->run;
  r->pending--;
  char err[400] = "";
  if (status)
    night_fail(r, "plan", "canceled");
  else if (j->rc)
    night_fail(r, "plan", "%s", j->err);
  else if (plan_parse(c, j->plan, j->plan_len, &r->plan, err, sizeof err))
    night_fail(r, "plan", "job script %s: %s", c->script, err);
  else {
    if (r->req_days > 0)
      r->plan.days = r->req_days;
    if (r->req_max_golden >= 0)
      r->plan.max_golden = r->req_max_golden;
    if (r->req_regenerate >= 0)
      r->plan.regenerate = r->req_regenerate;
    night_next_stage(r);
  }
  free(j->path);
  free(j->req);
  free(j->plan);
  free(j);
}

static void next_id(night_ctx_t *c, char *id, size_t cap) {
  c->seq++;
  snprintf(id, cap, "r%06" PRIu32, c->seq);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_uint32(&w.pk, c->seq);
  jiwa_kv_put(c->self, "seq", 3, w.sbuf.data, w.sbuf.size, NULL, NULL);
  jiwa_mp_writer_free(&w);
}

/* Start a run. @p req (may be NULL) is the job.run ask. */
static int run_start(night_ctx_t *c, const jiwa_msg_t *req, const char *trigger,
                     int64_t days, int64_t max_golden, int regenerate,
                     int detached, char *id_out) {
  night_run_t *r = calloc(1, sizeof *r);
  if (!r)
    return JIWA_ENOMEM;
  r->ctx = c;
  r->mono0 = jiwa_now_ms();
  r->stage_t0 = r->mono0;
  r->started_ms = night_wall_ms(c);
  r->now_ms = r->started_ms;
  snprintf(r->name, sizeof r->name, "%s", c->name);
  snprintf(r->trigger, sizeof r->trigger, "%s", trigger);
  r->req_days = days;
  r->req_max_golden = max_golden;
  r->req_regenerate = regenerate;
  r->detached = detached;
  r->counts.purity = r->counts.ari = -1;
  next_id(c, r->id, sizeof r->id);
  if (id_out)
    snprintf(id_out, NIGHT_ID_MAX, "%s", r->id);

  plan_job_t *j = calloc(1, sizeof *j);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 7);
  jiwa_mp_put_kv_str(&w.pk, "name", c->name);
  jiwa_mp_put_kv_str(&w.pk, "run", r->id);
  jiwa_mp_put_kv_str(&w.pk, "trigger", trigger);
  jiwa_mp_put_kv_int(&w.pk, "now_ms", r->now_ms);
  jiwa_mp_put_kv_int(&w.pk, "days", days);
  jiwa_mp_put_kv_int(&w.pk, "max_golden", max_golden);
  jiwa_mp_put_kv_bool(&w.pk, "regenerate_cultural", regenerate > 0);
  if (j) {
    j->run = r;
    j->path = night_strndup(c->script, strlen(c->script));
    j->req = malloc(w.sbuf.size);
    if (j->req) {
      memcpy(j->req, w.sbuf.data, w.sbuf.size);
      j->req_len = w.sbuf.size;
    }
  }
  jiwa_mp_writer_free(&w);
  if (!j || !j->path || !j->req) {
    if (j) {
      free(j->path);
      free(j->req);
      free(j);
    }
    free(r);
    return JIWA_ENOMEM;
  }
  int rc = jiwa_queue_work(c->self, plan_work, plan_done, j);
  if (rc) {
    free(j->path);
    free(j->req);
    free(j);
    free(r);
    return rc;
  }
  r->pending++;
  if (req && !detached)
    r->req = jiwa_msg_retain(req);
  c->run = r;
  jiwa_count(c->self, "runs_started", 1);
  jiwa_log(c->self, JIWA_LOG_INFO, "nightly run %s started (%s)", r->id,
           trigger);
  put_run_record(r, "running", NULL, NULL);
  return 0;
}

/* ---- the scheduler
 * ------------------------------------------------------------------ */

static void schedule_from(night_ctx_t *c, int64_t now_s) {
  int64_t next;
  if (c->has_cron && jiwa_cron_next(&c->cron, now_s, &next) == 0)
    c->next_fire_s = next;
  else
    c->next_fire_s = INT64_MAX;
}

/* Fire when the clock reached the next fire time; returns 1 if a run
 * started. */
static int check_schedule(night_ctx_t *c, char *id_out) {
  if (!c->has_cron)
    return 0;
  int64_t now_s = night_wall_ms(c) / 1000;
  if (now_s < c->last_check_s) { /* the clock went back (job.tick) */
    c->last_check_s = now_s;
    schedule_from(c, now_s - 1);
    return 0;
  }
  c->last_check_s = now_s;
  if (now_s < c->next_fire_s)
    return 0;
  char when[32];
  iso(c->next_fire_s * 1000, when, sizeof when);
  schedule_from(c, now_s);
  if (c->run) {
    jiwa_log(c->self, JIWA_LOG_WARN,
             "scheduled run of %s skipped: run %s is still in progress", when,
             c->run->id);
    jiwa_count(c->self, "schedule_skipped", 1);
    return 0;
  }
  int rc = run_start(c, NULL, "schedule", -1, -1, -1, 1, id_out);
  if (rc) {
    jiwa_log(c->self, JIWA_LOG_ERROR, "scheduled run of %s not started: %s",
             when, jiwa_strerror(rc));
    return 0;
  }
  c->scheduled_fired++;
  return 1;
}

static void on_tick(jiwa_actor_t *self, void *vctx, void *ud) {
  (void)self;
  (void)ud;
  check_schedule(vctx, NULL);
}

/* ---- messages
 * ----------------------------------------------------------------------- */

static int reply_err(jiwa_actor_t *self, const jiwa_msg_t *m, int code,
                     const char *fmt, ...) JIWA_PRINTF(4, 5);
static int reply_err(jiwa_actor_t *self, const jiwa_msg_t *m, int code,
                     const char *fmt, ...) {
  char text[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  int rc = jiwa_reply_error(self, m, code, text);
  return rc == JIWA_ESTATE ? 0 : rc;
}

static int reply_mp(jiwa_actor_t *self, const jiwa_msg_t *m, const char *type,
                    jiwa_mp_writer_t *w) {
  int rc = jiwa_reply(self, m, type, w->sbuf.data, w->sbuf.size);
  jiwa_mp_writer_free(w);
  return rc == JIWA_ESTATE ? 0 : rc;
}

static int handle_run(jiwa_actor_t *self, night_ctx_t *c, const jiwa_msg_t *m) {
  size_t bl;
  const void *b = jiwa_msg_body(m, &bl);
  char name[64];
  if (jiwa_mp_get_strcpy(b, bl, "name", name, sizeof name) == 0 && name[0] &&
      strcmp(name, c->name) != 0)
    return reply_err(self, m, JIWA_ENOENT, "no job '%s' (jobs: %s)", name,
                     c->name);
  if (c->run) {
    char since[32];
    iso(c->run->started_ms, since, sizeof since);
    return reply_err(self, m, JIWA_EBUSY,
                     "a run is in progress since %s (run %s, stage %s); "
                     "wait for it (jiwa job runs)",
                     since, c->run->id, stage_name(c->run->stage));
  }
  int64_t days = -1, maxg = -1;
  int regen = -1, detach = 0;
  int rc = jiwa_mp_get_int(b, bl, "days", &days);
  if (rc != JIWA_ENOENT && (rc || days < 1 || days > 3650))
    return reply_err(self, m, JIWA_EINVAL, "days must be 1..3650");
  rc = jiwa_mp_get_int(b, bl, "max_golden", &maxg);
  if (rc != JIWA_ENOENT && (rc || maxg < 0 || maxg > 5000))
    return reply_err(self, m, JIWA_EINVAL, "max_golden must be 0..5000");
  rc = jiwa_mp_get_bool(b, bl, "regenerate_cultural", &regen);
  if (rc != JIWA_ENOENT && rc)
    return reply_err(self, m, JIWA_EINVAL,
                     "regenerate_cultural must be true or false");
  jiwa_mp_get_bool(b, bl, "detach", &detach);
  char id[NIGHT_ID_MAX];
  rc = run_start(c, m, "request", days, maxg, regen, detach, id);
  if (rc)
    return reply_err(self, m, rc, "the run could not start: %s",
                     jiwa_strerror(rc));
  if (detach) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "id", id);
    jiwa_mp_put_kv_str(&w.pk, "status", "running");
    return reply_mp(self, m, "job.started", &w);
  }
  return 0;
}

/* job.runs: the newest first. Records are collected by a scan (keys sort
 * by id, ids by start order), the last `limit` kept. */
typedef struct {
  jiwa_mp_writer_t *rows; /* ring of copies */
  size_t limit, n, next;
  char **copies;
  size_t *lens;
} runs_scan_t;

static int runs_cb(const void *key, size_t klen, const void *val, size_t vlen,
                   void *ud) {
  (void)key;
  (void)klen;
  runs_scan_t *s = ud;
  char *p = malloc(vlen ? vlen : 1);
  if (!p)
    return JIWA_ENOMEM;
  memcpy(p, val, vlen);
  free(s->copies[s->next]);
  s->copies[s->next] = p;
  s->lens[s->next] = vlen;
  s->next = (s->next + 1) % s->limit;
  if (s->n < s->limit)
    s->n++;
  return 0;
}

static int handle_runs(jiwa_actor_t *self, night_ctx_t *c,
                       const jiwa_msg_t *m) {
  (void)c;
  int64_t limit = 20;
  size_t bl;
  const void *b = jiwa_msg_body(m, &bl);
  if (jiwa_mp_get_int(b, bl, "limit", &limit) == 0 &&
      (limit < 1 || limit > 10000))
    return reply_err(self, m, JIWA_EINVAL, "limit must be 1..10000");
  runs_scan_t s = {.limit = (size_t)limit};
  s.copies = calloc(s.limit, sizeof *s.copies);
  s.lens = calloc(s.limit, sizeof *s.lens);
  if (!s.copies || !s.lens) {
    free(s.copies);
    free(s.lens);
    return reply_err(self, m, JIWA_ENOMEM, "out of memory");
  }
  int rc = jiwa_kv_scan(self, "run:", 4, RUNS_SCAN_MAX, runs_cb, &s);
  if (rc < 0) {
    for (size_t i = 0; i < s.limit; i++)
      free(s.copies[i]);
    free(s.copies);
    free(s.lens);
    return reply_err(self, m, rc, "reading the runs failed: %s",
                     jiwa_strerror(rc));
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_str(&w.pk, "runs");
  msgpack_pack_array(&w.pk, s.n);
  for (size_t i = 0; i < s.n; i++) { /* newest first */
    size_t k = (s.next + s.limit - 1 - i) % s.limit;
    msgpack_sbuffer_write(&w.sbuf, s.copies[k], s.lens[k]);
  }
  for (size_t i = 0; i < s.limit; i++)
    free(s.copies[i]);
  free(s.copies);
  free(s.lens);
  return reply_mp(self, m, "job.runs", &w);
}

static int handle_tick(jiwa_actor_t *self, night_ctx_t *c,
                       const jiwa_msg_t *m) {
  int64_t now;
  if (jiwa_msg_get_int(m, "now_ms", &now) || now < 0 ||
      now / 1000 > JIWA_CRON_MAX_TIME)
    return reply_err(self, m, JIWA_EINVAL,
                     "job.tick needs now_ms (Unix milliseconds)");
  c->ticked = 1;
  c->tick_wall_ms = now;
  c->tick_mono_ms = jiwa_now_ms();
  char id[NIGHT_ID_MAX] = "";
  int fired = check_schedule(c, id);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 4);
  jiwa_mp_put_kv_int(&w.pk, "now_ms", now);
  jiwa_mp_put_kv_int(&w.pk, "next_ms",
                     c->next_fire_s == INT64_MAX ? -1 : c->next_fire_s * 1000);
  jiwa_mp_put_kv_bool(&w.pk, "fired", fired);
  jiwa_mp_put_kv_str(&w.pk, "run", id);
  return reply_mp(self, m, "job.tick", &w);
}

static int handle_status(jiwa_actor_t *self, night_ctx_t *c,
                         const jiwa_msg_t *m) {
  char next[32] = "", now[32];
  if (c->next_fire_s != INT64_MAX)
    iso(c->next_fire_s * 1000, next, sizeof next);
  iso(night_wall_ms(c), now, sizeof now);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 7);
  jiwa_mp_put_kv_str(&w.pk, "schedule", c->schedule);
  jiwa_mp_put_kv_str(&w.pk, "next", next);
  jiwa_mp_put_kv_str(&w.pk, "now", now);
  jiwa_mp_put_kv_bool(&w.pk, "running", c->run != NULL);
  jiwa_mp_put_kv_str(&w.pk, "run", c->run ? c->run->id : "");
  jiwa_mp_put_kv_str(&w.pk, "stage", c->run ? stage_name(c->run->stage) : "");
  jiwa_mp_put_kv_int(&w.pk, "scheduled_runs", c->scheduled_fired);
  return reply_mp(self, m, "job.status", &w);
}

static int handle_clusters(jiwa_actor_t *self, night_ctx_t *c,
                           const jiwa_msg_t *m) {
  (void)c;
  char id[NIGHT_ID_MAX + 8];
  size_t bl;
  const void *b = jiwa_msg_body(m, &bl);
  if (jiwa_mp_get_strcpy(b, bl, "run", id, sizeof id) != 0 || !id[0]) {
    void *v = NULL;
    size_t vl = 0;
    int rc = jiwa_kv_get(self, "last_clusters", 13, &v, &vl);
    if (rc == JIWA_ENOENT)
      return reply_err(self, m, JIWA_ENOENT,
                       "no run has clustered queries yet (jiwa job run "
                       "nightly)");
    if (rc)
      return reply_err(self, m, rc, "reading the last run failed: %s",
                       jiwa_strerror(rc));
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    jiwa_mp_reader_init(&r, v, vl);
    int ok = jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_STR &&
             it.v.s.len < sizeof id;
    if (ok) {
      memcpy(id, it.v.s.ptr, it.v.s.len);
      id[it.v.s.len] = 0;
    }
    jiwa_kv_free(v);
    if (!ok)
      return reply_err(self, m, JIWA_EPROTO, "the last run's id is corrupt");
  }
  char key[40];
  int kl = snprintf(key, sizeof key, "clusters:%s", id);
  void *v = NULL;
  size_t vl = 0;
  int rc = jiwa_kv_get(self, key, (size_t)kl, &v, &vl);
  if (rc == JIWA_ENOENT)
    return reply_err(self, m, JIWA_ENOENT,
                     "run '%s' has no clusters (see jiwa job runs)", id);
  if (rc)
    return reply_err(self, m, rc, "reading the clusters failed: %s",
                     jiwa_strerror(rc));
  rc = jiwa_reply(self, m, "clusters.show", v, vl);
  jiwa_kv_free(v);
  return rc == JIWA_ESTATE ? 0 : rc;
}

static int night_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  night_ctx_t *c = vctx;
  if (jiwa_msg_kind(m) != JIWA_MSG_ASK)
    return 0;
  const char *t = jiwa_msg_type(m);
  if (strcmp(t, "job.run") == 0)
    return handle_run(self, c, m);
  if (strcmp(t, "job.runs") == 0)
    return handle_runs(self, c, m);
  if (strcmp(t, "job.tick") == 0)
    return handle_tick(self, c, m);
  if (strcmp(t, "job.status") == 0)
    return handle_status(self, c, m);
  if (strcmp(t, "clusters.show") == 0)
    return handle_clusters(self, c, m);
  return reply_err(self, m, JIWA_ENOTSUP,
                   "nightly answers job.run, job.runs, job.tick, job.status "
                   "and clusters.show, not %s",
                   t);
}

/* ---- init / fini
 * -------------------------------------------------------------------- */

/* Runs left "running" by a daemon that stopped mid-run are failed now. */
typedef struct {
  night_ctx_t *c;
  char ids[64][NIGHT_ID_MAX];
  size_t n;
  uint32_t max_seq;
} stale_t;

static int stale_cb(const void *key, size_t klen, const void *val, size_t vlen,
                    void *ud) {
  stale_t *s = ud;
  (void)key;
  (void)klen;
  char st[16], id[NIGHT_ID_MAX];
  if (jiwa_mp_get_strcpy(val, vlen, "id", id, sizeof id) == 0 && id[0] == 'r') {
    uint32_t q = (uint32_t)strtoul(id + 1, NULL, 10);
    if (q > s->max_seq)
      s->max_seq = q;
    if (jiwa_mp_get_strcpy(val, vlen, "status", st, sizeof st) == 0 &&
        strcmp(st, "running") == 0 && s->n < 64)
      snprintf(s->ids[s->n++], NIGHT_ID_MAX, "%s", id);
  }
  return 0;
}

static void mark_stale(night_ctx_t *c) {
  stale_t s = {.c = c};
  if (jiwa_kv_scan(c->self, "run:", 4, RUNS_SCAN_MAX, stale_cb, &s) < 0)
    return;
  if (s.max_seq > c->seq)
    c->seq = s.max_seq;
  for (size_t i = 0; i < s.n; i++) {
    char key[32];
    int kl = snprintf(key, sizeof key, "run:%s", s.ids[i]);
    void *v = NULL;
    size_t vl = 0;
    if (jiwa_kv_get(c->self, key, (size_t)kl, &v, &vl))
      continue;
    /* rewrite: same map with status and error replaced */
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    jiwa_mp_reader_init(&r, v, vl);
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_MAP) {
      msgpack_pack_map(&w.pk, it.v.count);
      for (uint32_t k = 0; k < it.v.count; k++) {
        jiwa_mp_item_t kk;
        const uint8_t *ks = r.p;
        if (jiwa_mp_next(&r, &kk))
          break;
        const uint8_t *vs = r.p;
        if (jiwa_mp_skip(&r))
          break;
        int is_status = kk.type == JIWA_MP_STR && kk.v.s.len == 6 &&
                        memcmp(kk.v.s.ptr, "status", 6) == 0;
        int is_error = kk.type == JIWA_MP_STR && kk.v.s.len == 5 &&
                       memcmp(kk.v.s.ptr, "error", 5) == 0;
        msgpack_sbuffer_write(&w.sbuf, (const char *)ks, (size_t)(vs - ks));
        if (is_status)
          jiwa_mp_put_str(&w.pk, "failed");
        else if (is_error)
          jiwa_mp_put_str(&w.pk,
                          "interrupted: the daemon stopped during the run");
        else
          msgpack_sbuffer_write(&w.sbuf, (const char *)vs, (size_t)(r.p - vs));
      }
      jiwa_kv_put(c->self, key, (size_t)kl, w.sbuf.data, w.sbuf.size, NULL,
                  NULL);
      jiwa_log(c->self, JIWA_LOG_WARN,
               "run %s was interrupted (the daemon stopped during it); "
               "recorded as failed",
               s.ids[i]);
    }
    jiwa_mp_writer_free(&w);
    jiwa_kv_free(v);
  }
}

static int night_init(jiwa_actor_t *self, void *vctx) {
  night_ctx_t *c = vctx;
  c->self = self;
  if (c->schedule && c->schedule[0]) {
    char err[JIWA_CRON_ERRLEN];
    int rc = jiwa_cron_parse(c->schedule, strlen(c->schedule), &c->cron, err,
                             sizeof err);
    if (rc) {
      jiwa_log(self, JIWA_LOG_ERROR,
               "schedule '%s' is not a cron expression: %s", c->schedule, err);
      return JIWA_ECONFIG;
    }
    c->has_cron = 1;
  }
  /* the run counter survives restarts (ids stay unique) */
  void *v = NULL;
  size_t vl = 0;
  if (jiwa_kv_get(self, "seq", 3, &v, &vl) == 0) {
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    jiwa_mp_reader_init(&r, v, vl);
    if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_UINT &&
        it.v.u < UINT32_MAX)
      c->seq = (uint32_t)it.v.u;
    jiwa_kv_free(v);
  }
  mark_stale(c);
  int64_t now_s = night_wall_ms(c) / 1000;
  c->last_check_s = now_s;
  schedule_from(c, now_s);
  if (c->has_cron) {
    int rc = jiwa_timer_start(self, (uint64_t)c->tick_ms, (uint64_t)c->tick_ms,
                              on_tick, NULL, &c->timer);
    if (rc)
      return rc;
    c->timer_live = 1;
    char next[32];
    iso(c->next_fire_s * 1000, next, sizeof next);
    jiwa_log(self, JIWA_LOG_INFO, "%s scheduled '%s' (UTC): next run %s",
             c->name, c->schedule, next);
  } else {
    jiwa_log(self, JIWA_LOG_INFO, "%s: no schedule, runs on demand only",
             c->name);
  }
  return 0;
}

static void night_drain(jiwa_actor_t *self, void *vctx) {
  night_ctx_t *c = vctx;
  if (c->timer_live) {
    jiwa_timer_stop(self, c->timer);
    c->timer_live = 0;
  }
}

static void night_fini(jiwa_actor_t *self, void *vctx) {
  night_ctx_t *c = vctx;
  night_drain(self, vctx);
  if (c->run) { /* everything of it in flight has been called back */
    run_free(c->run);
    c->run = NULL;
  }
}

static const jiwa_plugin_desc_t night_desc = {
    JIWA_DESC_HEADER,
    .name = "nightly",
    .version = "1.0.0",
    .description = "nightly job: query clusters, golden answers, cultural "
                   "knowledge; cron scheduler, run records, alerts",
    .config = night_config,
    .ctx_size = sizeof(night_ctx_t),
    .init = night_init,
    .receive = night_receive,
    .drain = night_drain,
    .fini = night_fini,
};

JIWA_PLUGIN(night_desc)
