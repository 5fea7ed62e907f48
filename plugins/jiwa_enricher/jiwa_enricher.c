/*
 * jiwa_enricher — deepens each user's JIWA memory in the background
 * (issue 8; README.md next to this file).
 *
 * The policy tells `enrich.conversation` {user, session, lang, text, answer}
 * after every chat. Turns are kept per session (the last `max_turns`,
 * each cut to `max_turn_bytes`); `debounce_ms` after the last tell of a
 * session, one enrichment runs over the session's recent turns:
 *
 *   jiwa_profile_prompt(turns) -> ask `model` llm.complete (stream false)
 *   reply text -> jiwa_profile_parse (thread pool): repaired or rejected
 *   model error, timeout or rejection -> jiwa_heuristic_extract (source
 *   heuristic)
 *   profile -> ask `memory_actor` memory.merge {user, profile, source, as_of}
 *
 * At most `max_inflight` enrichments run at once; sessions due meanwhile
 * wait in a FIFO (each session at most once). Nothing here is on the
 * user's path: the policy's tell returns at once, and every failure ends
 * in a counter and a log line.
 */
#include <jiwa/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_util.h"
#include "jiwa_heuristic.h"
#include "jiwa_profile.h"

#define NBUCKETS 4096
#define TURNS_MAX 32

typedef struct sess sess_t;
struct sess {
  char *key; /* user \0 session */
  size_t klen;
  char *user;
  unsigned nturns;
  char *roles[TURNS_MAX]; /* static strings */
  char *texts[TURNS_MAX];
  size_t lens[TURNS_MAX];
  int64_t last_ms; /* wall time of the newest turn */
  int timer_live;
  uint64_t timer;
  int queued, running, dirty;
  sess_t *hnext;   /* bucket chain */
  sess_t *qnext;   /* ready queue */
};

typedef struct job job_t;
struct job {
  jiwa_actor_t *self;
  char *key;
  size_t klen;
  char *user;
  unsigned n;
  const char *roles[TURNS_MAX];
  char *texts[TURNS_MAX];
  size_t lens[TURNS_MAX];
  int64_t as_of;
  char *reply; /* the model's text */
  size_t rlen;
  int model_rc; /* 0: the model answered */
  int parse_rc;
  jiwa_profile_t profile;
  jiwa_profile_report_t rep;
  int heuristic_rc;
  int cancelled;
  job_t *next;
};

typedef struct {
  /* config */
  char *model, *memory_actor;
  int64_t debounce_ms, max_turns, max_turn_bytes, prompt_bytes, timeout_ms,
      merge_timeout_ms, max_inflight, max_sessions, max_tokens, idle_ms;
  double temperature;
  int use_heuristic;
  /* state */
  sess_t **buckets;
  size_t nsessions;
  sess_t *qhead, *qtail;
  job_t *jobs;
  int inflight;
  uint64_t gc_timer;
  jiwa_msg_t **flushers;
  size_t nflushers;
  uint64_t turns, enrichments, model_ok, model_failed, rejected, repaired,
      fallbacks, heuristic_empty, merged, merge_failed, dropped_turns,
      cancelled, anonymous;
} en_ctx_t;

static const jiwa_cfg_field_t en_config[] = {
    {JIWA_CFG_STR, "model", "llama", offsetof(en_ctx_t, model), 0, 0, 0,
     "the secondary model actor asked for the profile (llm.complete)"},
    {JIWA_CFG_STR, "memory_actor", "memory", offsetof(en_ctx_t, memory_actor),
     0, 0, 0, "the memory actor (memory.merge)"},
    {JIWA_CFG_INT, "debounce_ms", "3000", offsetof(en_ctx_t, debounce_ms), 0,
     0, 3600000, "quiet time after a session's last chat before enriching"},
    {JIWA_CFG_INT, "max_turns", "6", offsetof(en_ctx_t, max_turns), 0, 1,
     TURNS_MAX / 2, "recent chats (user + answer) of a session looked at"},
    {JIWA_CFG_INT, "max_turn_bytes", "4000",
     offsetof(en_ctx_t, max_turn_bytes), 0, 64, 65536,
     "each message is cut to this many bytes"},
    {JIWA_CFG_INT, "prompt_bytes", "12288", offsetof(en_ctx_t, prompt_bytes),
     0, 1024, 262144, "bound on the conversation part of the prompt"},
    {JIWA_CFG_INT, "timeout_ms", "20000", offsetof(en_ctx_t, timeout_ms), 0,
     100, 600000, "deadline of the model call"},
    {JIWA_CFG_INT, "merge_timeout_ms", "5000",
     offsetof(en_ctx_t, merge_timeout_ms), 0, 100, 600000,
     "deadline of memory.merge"},
    {JIWA_CFG_INT, "max_inflight", "4", offsetof(en_ctx_t, max_inflight), 0, 1,
     256, "enrichments running at once; more wait in a queue"},
    {JIWA_CFG_INT, "max_sessions", "10000", offsetof(en_ctx_t, max_sessions),
     0, 1, 1000000,
     "sessions held; beyond, the longest idle one is dropped"},
    {JIWA_CFG_INT, "idle_ms", "1800000", offsetof(en_ctx_t, idle_ms), 0, 1000,
     86400000, "a session idle this long is forgotten (turns freed)"},
    {JIWA_CFG_INT, "max_tokens", "600", offsetof(en_ctx_t, max_tokens), 0, 64,
     8192, "answer bound of the profile call"},
    {JIWA_CFG_DOUBLE, "temperature", "0", offsetof(en_ctx_t, temperature), 0,
     0, 2, "temperature of the profile call"},
    {JIWA_CFG_BOOL, "use_heuristic", "true", offsetof(en_ctx_t, use_heuristic),
     0, 0, 0, "when the model fails or its output is rejected, extract "
              "with the heuristic (source heuristic)"},
    {0}};

/* ---- sessions -------------------------------------------------------------- */

static uint32_t khash(const char *k, size_t n) {
  return convk_fnv(2166136261u, k, n) & (NBUCKETS - 1);
}

static sess_t *sess_find(en_ctx_t *c, const char *k, size_t n) {
  for (sess_t *s = c->buckets[khash(k, n)]; s; s = s->hnext)
    if (s->klen == n && memcmp(s->key, k, n) == 0)
      return s;
  return NULL;
}

static void sess_clear_turns(sess_t *s) {
  for (unsigned i = 0; i < s->nturns; i++)
    free(s->texts[i]);
  s->nturns = 0;
}

static void queue_remove(en_ctx_t *c, sess_t *s) {
  sess_t *prev = NULL;
  for (sess_t *q = c->qhead; q; prev = q, q = q->qnext)
    if (q == s) {
      if (prev)
        prev->qnext = q->qnext;
      else
        c->qhead = q->qnext;
      if (c->qtail == q)
        c->qtail = prev;
      break;
    }
  s->queued = 0;
  s->qnext = NULL;
}

static void sess_free(jiwa_actor_t *self, en_ctx_t *c, sess_t *s) {
  if (s->timer_live)
    jiwa_timer_stop(self, s->timer);
  if (s->queued)
    queue_remove(c, s);
  sess_t **pp = &c->buckets[khash(s->key, s->klen)];
  for (; *pp; pp = &(*pp)->hnext)
    if (*pp == s) {
      *pp = s->hnext;
      break;
    }
  sess_clear_turns(s);
  free(s->key);
  free(s);
  c->nsessions--;
}

/* ---- jobs ---------------------------------------------------------------------- */

static void pump(jiwa_actor_t *self, en_ctx_t *c);
static void debounce_arm(jiwa_actor_t *self, en_ctx_t *c, sess_t *s);

static void job_free(en_ctx_t *c, job_t *j) {
  for (job_t **pp = &c->jobs; *pp; pp = &(*pp)->next)
    if (*pp == j) {
      *pp = j->next;
      break;
    }
  for (unsigned i = 0; i < j->n; i++)
    free(j->texts[i]);
  free(j->reply);
  free(j->key);
  free(j);
}

static void flushers_check(jiwa_actor_t *self, en_ctx_t *c) {
  if (!c->nflushers || c->inflight || c->qhead)
    return;
  for (size_t b = 0; b < NBUCKETS; b++)
    for (sess_t *s = c->buckets[b]; s; s = s->hnext)
      if (s->timer_live || s->running)
        return;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 3);
  jiwa_mp_put_kv_int(&w.pk, "enrichments", (int64_t)c->enrichments);
  jiwa_mp_put_kv_int(&w.pk, "merged", (int64_t)c->merged);
  jiwa_mp_put_kv_int(&w.pk, "fallbacks", (int64_t)c->fallbacks);
  for (size_t i = 0; i < c->nflushers; i++) {
    jiwa_reply(self, c->flushers[i], "enrich.flushed", w.sbuf.data,
               w.sbuf.size);
    jiwa_msg_release(c->flushers[i]);
  }
  jiwa_mp_writer_free(&w);
  c->nflushers = 0;
}

/* The job is over (merged, failed or cancelled). */
static void job_end(jiwa_actor_t *self, en_ctx_t *c, job_t *j) {
  sess_t *s = sess_find(c, j->key, j->klen);
  if (s) {
    s->running = 0;
    if (s->dirty) {
      s->dirty = 0;
      debounce_arm(self, c, s);
    }
  }
  job_free(c, j);
  c->inflight--;
  pump(self, c);
  flushers_check(self, c);
}

static void merge_reply(jiwa_actor_t *self, void *vctx,
                        const jiwa_msg_t *reply, void *ud) {
  en_ctx_t *c = vctx;
  job_t *j = ud;
  if (jiwa_msg_kind(reply) == JIWA_MSG_DELTA)
    return;
  if (jiwa_msg_kind(reply) == JIWA_MSG_ERROR) {
    const char *t = "";
    int code = jiwa_msg_error(reply, &t);
    if (code == JIWA_ECANCELED) {
      c->cancelled++;
    } else {
      c->merge_failed++;
      jiwa_count(self, "merge_failed", 1);
      jiwa_log(self, JIWA_LOG_WARN, "jiwa_enricher: memory.merge failed: %s",
               t ? t : jiwa_strerror(code));
    }
  } else {
    c->merged++;
    jiwa_count(self, "merged", 1);
  }
  job_end(self, c, j);
}

/* Thread pool: validate the model's output; fall back to the heuristic. */
static void job_work(void *ud) {
  job_t *j = ud;
  j->parse_rc = JIWA_EUPSTREAM;
  if (j->model_rc == 0)
    j->parse_rc = jiwa_profile_parse(j->reply, j->rlen, &j->profile, &j->rep);
  if (j->parse_rc != 0 && j->heuristic_rc == 0)
    j->heuristic_rc = jiwa_heuristic_extract(
        j->roles, (const char *const *)j->texts, j->lens, j->n, &j->profile);
}

static void job_done(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  en_ctx_t *c = vctx;
  job_t *j = ud;
  if (status || j->cancelled) {
    if (j->cancelled)
      c->cancelled++;
    job_end(self, c, j);
    return;
  }
  const char *source = "model";
  if (j->model_rc == 0 && j->parse_rc == 0) {
    c->model_ok++;
    if (j->rep.repaired || j->rep.dropped)
      c->repaired++;
  } else {
    if (j->model_rc == 0) {
      char r[300];
      jiwa_profile_report_str(&j->rep, r, sizeof r);
      c->rejected++;
      jiwa_count(self, "rejected", 1);
      jiwa_log(self, JIWA_LOG_INFO,
               "jiwa_enricher: model output rejected (%s): %s",
               jiwa_err_name(j->parse_rc), r);
    }
    if (!c->use_heuristic) {
      job_end(self, c, j);
      return;
    }
    c->fallbacks++;
    jiwa_count(self, "fallbacks", 1);
    source = "heuristic";
    if (j->heuristic_rc != 0 || j->profile.present == 0) {
      c->heuristic_empty++;
      job_end(self, c, j);
      return;
    }
  }
  char *pm = NULL;
  size_t pl = 0;
  if (jiwa_profile_to_mp(&j->profile, &pm, &pl) != 0) {
    c->merge_failed++;
    job_end(self, c, j);
    return;
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 4);
  jiwa_mp_put_kv_str(&w.pk, "user", j->user);
  jiwa_mp_put_str(&w.pk, "profile");
  w.pk.callback(w.pk.data, pm, pl);
  jiwa_mp_put_kv_str(&w.pk, "source", source);
  jiwa_mp_put_kv_int(&w.pk, "as_of", j->as_of);
  free(pm);
  int rc = jiwa_ask(self, c->memory_actor, "memory.merge", w.sbuf.data,
                    w.sbuf.size, (uint32_t)c->merge_timeout_ms, merge_reply,
                    j);
  jiwa_mp_writer_free(&w);
  if (rc) {
    c->merge_failed++;
    jiwa_log(self, JIWA_LOG_WARN,
             "jiwa_enricher: cannot ask %s for memory.merge: %s",
             c->memory_actor, jiwa_strerror(rc));
    job_end(self, c, j);
  }
}

static void job_validate(jiwa_actor_t *self, en_ctx_t *c, job_t *j) {
  if (jiwa_queue_work(self, job_work, job_done, j) != 0) {
    /* no thread pool: do it here (bounded: 64 KiB of input) */
    job_work(j);
    job_done(self, c, 0, j);
  }
}

static void model_reply(jiwa_actor_t *self, void *vctx,
                        const jiwa_msg_t *reply, void *ud) {
  en_ctx_t *c = vctx;
  job_t *j = ud;
  if (jiwa_msg_kind(reply) == JIWA_MSG_DELTA)
    return;
  if (jiwa_msg_kind(reply) == JIWA_MSG_ERROR) {
    const char *t = "";
    j->model_rc = jiwa_msg_error(reply, &t);
    if (!j->model_rc)
      j->model_rc = JIWA_EUPSTREAM;
    c->model_failed++;
    jiwa_count(self, "model_failed", 1);
    jiwa_log(self, JIWA_LOG_INFO, "jiwa_enricher: %s failed (%s): %s",
             c->model, jiwa_err_name(j->model_rc), t ? t : "");
  } else {
    const char *s = NULL;
    size_t n = 0;
    if (jiwa_msg_get_str(reply, "text", &s, &n) != 0) {
      j->model_rc = JIWA_EPROTO;
      c->model_failed++;
    } else {
      /* more than the validator reads is rejected by it anyway */
      if (n > JIWA_PROFILE_MAX_INPUT + 1)
        n = JIWA_PROFILE_MAX_INPUT + 1;
      j->reply = malloc(n ? n : 1);
      if (!j->reply) {
        j->model_rc = JIWA_ENOMEM;
      } else {
        memcpy(j->reply, s, n);
        j->rlen = n;
      }
    }
  }
  if (j->cancelled) {
    c->cancelled++;
    job_end(self, c, j);
    return;
  }
  job_validate(self, c, j);
}

/* Start one enrichment of session @p s. */
static void job_start(jiwa_actor_t *self, en_ctx_t *c, sess_t *s) {
  job_t *j = calloc(1, sizeof *j);
  if (!j || !(j->key = malloc(s->klen))) {
    free(j);
    return;
  }
  j->self = self;
  memcpy(j->key, s->key, s->klen);
  j->klen = s->klen;
  j->user = j->key; /* the key starts with the user and its NUL */
  j->as_of = s->last_ms;
  for (unsigned i = 0; i < s->nturns; i++) {
    j->roles[j->n] = s->roles[i];
    j->texts[j->n] = malloc(s->lens[i] ? s->lens[i] : 1);
    if (!j->texts[j->n])
      break;
    memcpy(j->texts[j->n], s->texts[i], s->lens[i]);
    j->lens[j->n] = s->lens[i];
    j->n++;
  }
  j->next = c->jobs;
  c->jobs = j;
  c->inflight++;
  s->running = 1;
  c->enrichments++;
  jiwa_count(self, "enrichments", 1);

  char *sys = NULL, *usr = NULL;
  int rc = jiwa_profile_prompt(j->roles, (const char *const *)j->texts, j->lens,
                               j->n, (size_t)c->prompt_bytes, &sys, &usr);
  if (rc == 0) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 5);
    jiwa_mp_put_kv_str(&w.pk, "system", sys);
    jiwa_mp_put_str(&w.pk, "messages");
    msgpack_pack_array(&w.pk, 1);
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "role", "user");
    jiwa_mp_put_kv_str(&w.pk, "content", usr);
    jiwa_mp_put_kv_bool(&w.pk, "stream", 0);
    jiwa_mp_put_kv_int(&w.pk, "max_tokens", c->max_tokens);
    jiwa_mp_put_kv_double(&w.pk, "temperature", c->temperature);
    rc = jiwa_ask(self, c->model, "llm.complete", w.sbuf.data, w.sbuf.size,
                  (uint32_t)c->timeout_ms, model_reply, j);
    jiwa_mp_writer_free(&w);
  }
  free(sys);
  free(usr);
  if (rc) { /* no model to ask: the heuristic alone */
    j->model_rc = rc;
    c->model_failed++;
    job_validate(self, c, j);
  }
}

static void pump(jiwa_actor_t *self, en_ctx_t *c) {
  while (c->qhead && c->inflight < c->max_inflight) {
    sess_t *s = c->qhead;
    queue_remove(c, s);
    job_start(self, c, s);
  }
}

static void sess_ready(jiwa_actor_t *self, en_ctx_t *c, sess_t *s) {
  if (s->running) {
    s->dirty = 1; /* once the running one ends */
    return;
  }
  if (s->queued)
    return;
  s->queued = 1;
  s->qnext = NULL;
  if (c->qtail)
    c->qtail->qnext = s;
  else
    c->qhead = s;
  c->qtail = s;
  pump(self, c);
}

static void debounce_fire(jiwa_actor_t *self, void *vctx, void *ud) {
  en_ctx_t *c = vctx;
  sess_t *s = ud;
  s->timer_live = 0;
  sess_ready(self, c, s);
}

static void debounce_arm(jiwa_actor_t *self, en_ctx_t *c, sess_t *s) {
  if (s->timer_live) {
    jiwa_timer_stop(self, s->timer);
    s->timer_live = 0;
  }
  if (jiwa_timer_start(self, (uint64_t)c->debounce_ms, 0, debounce_fire, s,
                       &s->timer) == 0)
    s->timer_live = 1;
  else
    sess_ready(self, c, s);
}

/* Drop the longest idle session that is not in use; 0 if none. */
static int evict_one(jiwa_actor_t *self, en_ctx_t *c) {
  sess_t *best = NULL;
  for (size_t b = 0; b < NBUCKETS; b++)
    for (sess_t *s = c->buckets[b]; s; s = s->hnext)
      if (!s->running && !s->queued && (!best || s->last_ms < best->last_ms))
        best = s;
  if (!best)
    return 0;
  sess_free(self, c, best);
  return 1;
}

static void push_turn(en_ctx_t *c, sess_t *s, const char *role,
                      const char *t, size_t n) {
  if (n == 0)
    return;
  n = convk_cut_utf8(t, n, (size_t)c->max_turn_bytes);
  char *d = malloc(n ? n : 1);
  if (!d)
    return;
  memcpy(d, t, n);
  unsigned cap = (unsigned)(c->max_turns * 2);
  if (s->nturns >= cap) {
    free(s->texts[0]);
    memmove(s->texts, s->texts + 1, (s->nturns - 1) * sizeof *s->texts);
    memmove(s->roles, s->roles + 1, (s->nturns - 1) * sizeof *s->roles);
    memmove(s->lens, s->lens + 1, (s->nturns - 1) * sizeof *s->lens);
    s->nturns--;
  }
  s->roles[s->nturns] = (char *)role;
  s->texts[s->nturns] = d;
  s->lens[s->nturns] = n;
  s->nturns++;
}

static int on_conversation(jiwa_actor_t *self, en_ctx_t *c,
                           const jiwa_msg_t *m) {
  const char *u = NULL, *ss = "", *t = NULL, *a = NULL;
  size_t ul = 0, sl = 0, tl = 0, al = 0;
  if (jiwa_msg_get_str(m, "user", &u, &ul) != 0 || ul == 0 ||
      ul > CONVK_USER_MAX || memchr(u, 0, ul)) {
    c->anonymous++;
    return 0;
  }
  jiwa_msg_get_str(m, "session", &ss, &sl);
  if (sl > 256)
    sl = 256;
  jiwa_msg_get_str(m, "text", &t, &tl);
  jiwa_msg_get_str(m, "answer", &a, &al);
  if (!tl && !al)
    return 0;
  char key[CONVK_USER_MAX + 1 + 257];
  memcpy(key, u, ul);
  key[ul] = 0;
  memcpy(key + ul + 1, ss, sl);
  size_t kl = ul + 1 + sl;
  sess_t *s = sess_find(c, key, kl);
  if (!s) {
    if ((int64_t)c->nsessions >= c->max_sessions && !evict_one(self, c)) {
      c->dropped_turns++;
      jiwa_count(self, "dropped_turns", 1);
      return 0;
    }
    s = calloc(1, sizeof *s);
    if (!s || !(s->key = malloc(kl))) {
      free(s);
      c->dropped_turns++;
      return 0;
    }
    memcpy(s->key, key, kl);
    s->klen = kl;
    s->user = s->key;
    uint32_t h = khash(key, kl);
    s->hnext = c->buckets[h];
    c->buckets[h] = s;
    c->nsessions++;
  }
  push_turn(c, s, "user", t, tl);
  push_turn(c, s, "assistant", a, al);
  s->last_ms = convk_wall_ms();
  c->turns++;
  if (s->running)
    s->dirty = 1;
  else if (!s->queued)
    debounce_arm(self, c, s);
  return 0;
}

static int on_forget(jiwa_actor_t *self, en_ctx_t *c, const jiwa_msg_t *m) {
  const char *u;
  size_t ul;
  if (jiwa_msg_get_str(m, "user", &u, &ul) != 0 || ul == 0)
    return convk_reply_err(self, m, JIWA_EINVAL, "enrich.forget needs user");
  int64_t dropped = 0;
  for (size_t b = 0; b < NBUCKETS; b++) {
    sess_t *s = c->buckets[b];
    while (s) {
      sess_t *nx = s->hnext;
      if (strlen(s->user) == ul && memcmp(s->user, u, ul) == 0) {
        if (s->running) { /* its job is cancelled below; turns go now */
          sess_clear_turns(s);
          s->dirty = 0;
          if (s->timer_live) {
            jiwa_timer_stop(self, s->timer);
            s->timer_live = 0;
          }
        } else {
          sess_free(self, c, s);
        }
        dropped++;
      }
      s = nx;
    }
  }
  for (job_t *j = c->jobs; j; j = j->next)
    if (strlen(j->user) == ul && memcmp(j->user, u, ul) == 0)
      j->cancelled = 1;
  if (jiwa_msg_kind(m) != JIWA_MSG_ASK)
    return 0;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_int(&w.pk, "dropped", dropped);
  return convk_reply_w(self, m, "enrich.forgotten", &w);
}

static int on_flush(jiwa_actor_t *self, en_ctx_t *c, const jiwa_msg_t *m) {
  jiwa_msg_t **nf = realloc(c->flushers, (c->nflushers + 1) * sizeof *nf);
  if (!nf)
    return convk_reply_err(self, m, JIWA_ENOMEM, "out of memory");
  c->flushers = nf;
  c->flushers[c->nflushers++] = jiwa_msg_retain(m);
  for (size_t b = 0; b < NBUCKETS; b++)
    for (sess_t *s = c->buckets[b]; s; s = s->hnext)
      if (s->timer_live) {
        jiwa_timer_stop(self, s->timer);
        s->timer_live = 0;
        sess_ready(self, c, s);
      }
  flushers_check(self, c);
  return 0;
}

static int on_stats(jiwa_actor_t *self, en_ctx_t *c, const jiwa_msg_t *m) {
  unsigned queued = 0;
  for (sess_t *s = c->qhead; s; s = s->qnext)
    queued++;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 16);
  jiwa_mp_put_kv_int(&w.pk, "sessions", (int64_t)c->nsessions);
  jiwa_mp_put_kv_int(&w.pk, "inflight", c->inflight);
  jiwa_mp_put_kv_int(&w.pk, "queued", queued);
  jiwa_mp_put_kv_int(&w.pk, "turns", (int64_t)c->turns);
  jiwa_mp_put_kv_int(&w.pk, "enrichments", (int64_t)c->enrichments);
  jiwa_mp_put_kv_int(&w.pk, "model_ok", (int64_t)c->model_ok);
  jiwa_mp_put_kv_int(&w.pk, "model_failed", (int64_t)c->model_failed);
  jiwa_mp_put_kv_int(&w.pk, "rejected", (int64_t)c->rejected);
  jiwa_mp_put_kv_int(&w.pk, "repaired", (int64_t)c->repaired);
  jiwa_mp_put_kv_int(&w.pk, "fallbacks", (int64_t)c->fallbacks);
  jiwa_mp_put_kv_int(&w.pk, "heuristic_empty", (int64_t)c->heuristic_empty);
  jiwa_mp_put_kv_int(&w.pk, "merged", (int64_t)c->merged);
  jiwa_mp_put_kv_int(&w.pk, "merge_failed", (int64_t)c->merge_failed);
  jiwa_mp_put_kv_int(&w.pk, "dropped_turns", (int64_t)c->dropped_turns);
  jiwa_mp_put_kv_int(&w.pk, "cancelled", (int64_t)c->cancelled);
  jiwa_mp_put_kv_int(&w.pk, "anonymous", (int64_t)c->anonymous);
  return convk_reply_w(self, m, "enrich.stats", &w);
}

/* Sessions idle for idle_ms are forgotten (their turns freed). */
static void gc_fire(jiwa_actor_t *self, void *vctx, void *ud) {
  (void)ud;
  en_ctx_t *c = vctx;
  int64_t now = convk_wall_ms();
  for (size_t b = 0; b < NBUCKETS; b++) {
    sess_t *s = c->buckets[b];
    while (s) {
      sess_t *nx = s->hnext;
      if (!s->running && !s->queued && !s->timer_live &&
          now - s->last_ms >= c->idle_ms)
        sess_free(self, c, s);
      s = nx;
    }
  }
}

static int en_init(jiwa_actor_t *self, void *vctx) {
  en_ctx_t *c = vctx;
  c->buckets = calloc(NBUCKETS, sizeof *c->buckets);
  if (!c->buckets)
    return JIWA_ENOMEM;
  uint64_t every = (uint64_t)(c->idle_ms / 4 > 1000 ? c->idle_ms / 4 : 1000);
  jiwa_timer_start(self, every, every, gc_fire, NULL, &c->gc_timer);
  return 0;
}

static int en_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  en_ctx_t *c = vctx;
  jiwa_msg_kind_t kind = jiwa_msg_kind(m);
  if (kind != JIWA_MSG_TELL && kind != JIWA_MSG_ASK)
    return 0;
  const char *t = jiwa_msg_type(m);
  if (strcmp(t, "enrich.conversation") == 0) {
    on_conversation(self, c, m);
    if (kind == JIWA_MSG_ASK) {
      jiwa_mp_writer_t w;
      jiwa_mp_writer_init(&w);
      msgpack_pack_map(&w.pk, 1);
      jiwa_mp_put_kv_bool(&w.pk, "queued", 1);
      return convk_reply_w(self, m, "enrich.queued", &w);
    }
    return 0;
  }
  if (strcmp(t, "enrich.forget") == 0)
    return on_forget(self, c, m);
  if (kind != JIWA_MSG_ASK)
    return 0;
  if (strcmp(t, "enrich.flush") == 0)
    return on_flush(self, c, m);
  if (strcmp(t, "enrich.stats") == 0)
    return on_stats(self, c, m);
  return convk_reply_err(self, m, JIWA_ENOTSUP,
                         "jiwa_enricher answers enrich.conversation|forget|"
                         "flush|stats");
}

static void en_drain(jiwa_actor_t *self, void *vctx) {
  en_ctx_t *c = vctx;
  if (c->gc_timer)
    jiwa_timer_stop(self, c->gc_timer);
  c->gc_timer = 0;
}

static void en_fini(jiwa_actor_t *self, void *vctx) {
  en_ctx_t *c = vctx;
  if (c->buckets)
    for (size_t b = 0; b < NBUCKETS; b++)
      while (c->buckets[b]) {
        sess_t *s = c->buckets[b];
        s->timer_live = 0; /* the host stopped the timers */
        s->queued = 0;
        sess_free(self, c, s);
      }
  free(c->buckets);
  while (c->jobs)
    job_free(c, c->jobs);
  for (size_t i = 0; i < c->nflushers; i++) {
    jiwa_reply_error(self, c->flushers[i], JIWA_ECANCELED,
                     "jiwa_enricher stopped");
    jiwa_msg_release(c->flushers[i]);
  }
  free(c->flushers);
}

static const jiwa_plugin_desc_t en_desc = {
    JIWA_DESC_HEADER,
    .name = "jiwa_enricher",
    .version = "1.0.0",
    .description = "JIWA enricher: debounced per session, asks the secondary "
                   "model for a strict profile, merges it into memory",
    .config = en_config,
    .ctx_size = sizeof(en_ctx_t),
    .init = en_init,
    .receive = en_receive,
    .drain = en_drain,
    .fini = en_fini,
};

JIWA_PLUGIN(en_desc)
