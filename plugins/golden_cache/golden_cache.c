/*
 * golden_cache — frequent questions answered at once, without a model call
 * (DESIGN.md §1; README.md next to this file).
 *
 * `golden.lookup` {query, lang?, user?}:
 *  1. exact: the query normalised (jiwa_text_normalize) is a key of this
 *     actor's kv ("x:<hash>" -> entry id), checked against the entry's own
 *     question and paraphrases;
 *  2. semantic: the "golden" collection holds one record per question and
 *     paraphrase ("<id>#q", "<id>#p<n>", meta {lang, entry}); candidates at
 *     or above `threshold` go, best first, through the false-hit guard
 *     (jiwa_guard_check: language, intent, facts, content words); the first
 *     that passes wins, the others are reported in `rejected` with why.
 * Entries live in kv ("e:<id>" = {created, entry = {...}}), hit counters in
 * "h:<id>" (counted in memory, written by a timer: a lookup never waits on
 * a write). An entry past its `expires` is a miss and is removed then.
 * `golden.add`, `golden.remove`, `golden.list`, `golden.import`,
 * `golden.invalidate`, `golden.stats` manage them; replies to writes come
 * once the writes are committed.
 */
#include <jiwa/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jiwa_guard.h"
#include "jiwa_knowledge.h"
#include "jiwa_lang.h"
#include "jiwa_textnorm.h"

#define CAND_MAX 32
#define IMPORT_MAX 20000
#define UPSERT_CHUNK 512
#define SEED_FILES_MAX 32
#define SEED_MAX_BYTES (16u << 20)
#define NORM_MAX 4096
#define RECS_PER_ENTRY (1 + JIWA_KNOWLEDGE_PARAPHRASES_MAX)
#define SCAN_MAX 100000

typedef enum { SEED_NONE, SEED_WAIT, SEED_RUNNING, SEED_DONE } seed_state_t;

/* hit counters: id -> stored + pending */
typedef struct {
  char *id;
  uint64_t stored, pending;
} hitc_t;

typedef struct seed_job seed_job_t;

typedef struct {
  /* config */
  char *collection;
  double threshold;
  int64_t candidates;
  int any_language;
  double min_coverage;
  double default_ttl_days;
  int serve_examples;
  int seed_as_examples;
  int64_t flush_ms;
  int64_t max_rejected;
  jiwa_cfg_raw_t seed_files;
  /* state */
  hitc_t *hits;
  uint32_t hcap, hn;
  int flush_armed;
  uint64_t flush_timer;
  seed_state_t seed;
  uint64_t seeded, seed_errors;
  uint64_t lookups, exact_hits, semantic_hits, misses, guard_rejects;
  int writes_pending;
} gc_ctx_t;

static const jiwa_cfg_field_t gc_config[] = {
    {JIWA_CFG_STR, "collection", "golden", offsetof(gc_ctx_t, collection), 0,
     0, 0, "the store collection of questions (store.collections)"},
    {JIWA_CFG_DOUBLE, "threshold", "0.5", offsetof(gc_ctx_t, threshold), 0, 0,
     1, "cosine a semantic candidate needs before the guard looks at it"},
    {JIWA_CFG_INT, "candidates", "5", offsetof(gc_ctx_t, candidates), 0, 1,
     CAND_MAX, "semantic candidates checked by the guard, best first"},
    {JIWA_CFG_BOOL, "any_language", "false", offsetof(gc_ctx_t, any_language),
     0, 0, 0, "serve an answer written in another language than the query's"},
    {JIWA_CFG_DOUBLE, "min_coverage", "0.6", offsetof(gc_ctx_t, min_coverage),
     0, 0.05, 1, "guard: share of content words both sides must have"},
    {JIWA_CFG_DOUBLE, "default_ttl_days", "0",
     offsetof(gc_ctx_t, default_ttl_days), 0, 0, 36500,
     "expiry of entries added without ttl_days/expires; 0 = never"},
    {JIWA_CFG_BOOL, "serve_examples", "true",
     offsetof(gc_ctx_t, serve_examples), 0, 0, 0,
     "answer with entries marked example (not checked for production)"},
    {JIWA_CFG_BOOL, "seed_as_examples", "true",
     offsetof(gc_ctx_t, seed_as_examples), 0, 0, 0,
     "mark entries imported from seed_files as examples"},
    {JIWA_CFG_INT, "flush_ms", "1000", offsetof(gc_ctx_t, flush_ms), 0, 1,
     3600000, "hit counters are written this long after a hit"},
    {JIWA_CFG_INT, "max_rejected", "5", offsetof(gc_ctx_t, max_rejected), 0,
     0, CAND_MAX, "rejected candidates reported in a lookup reply"},
    {JIWA_CFG_RAW, "seed_files", NULL, offsetof(gc_ctx_t, seed_files), 0, 0,
     0, "golden JSONL files imported when the collection is empty"},
    {0}};

/* ---- helpers ----------------------------------------------------------------- */

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int reply_w(jiwa_actor_t *self, const jiwa_msg_t *m, const char *type,
                   jiwa_mp_writer_t *w) {
  int rc = jiwa_reply(self, m, type, w->sbuf.data, w->sbuf.size);
  jiwa_mp_writer_free(w);
  return rc == JIWA_ESTATE ? 0 : rc;
}

static int reply_err(jiwa_actor_t *self, const jiwa_msg_t *m, int code,
                     const char *text) {
  int rc = jiwa_reply_error(self, m, code, text);
  return rc == JIWA_ESTATE ? 0 : rc;
}

/* "x:<16 hex>" of a normalised text; 0 when the text has no word. */
static size_t exact_key(const char *text, size_t len, char *key, size_t cap,
                        char *norm, size_t *nlen) {
  *nlen = jiwa_text_normalize(text, len, norm, NORM_MAX);
  if (*nlen == 0)
    return 0;
  return (size_t)snprintf(
      key, cap, "x:%016llx",
      (unsigned long long)jiwa_text_hash64(norm, *nlen, 0x676f6c64));
}

/* ---- hit counters ------------------------------------------------------------ */

static hitc_t *hits_find(gc_ctx_t *c, const char *id, int create) {
  if (!c->hcap) {
    if (!create)
      return NULL;
    c->hits = calloc(256, sizeof *c->hits);
    if (!c->hits)
      return NULL;
    c->hcap = 256;
  }
  uint64_t h = jiwa_text_hash64(id, strlen(id), 7);
  uint32_t i = (uint32_t)h & (c->hcap - 1);
  for (;; i = (i + 1) & (c->hcap - 1)) {
    if (!c->hits[i].id)
      break;
    if (strcmp(c->hits[i].id, id) == 0)
      return &c->hits[i];
  }
  if (!create)
    return NULL;
  if ((c->hn + 1) * 2 > c->hcap) {
    uint32_t ncap = c->hcap * 2;
    hitc_t *nh = calloc(ncap, sizeof *nh);
    if (!nh)
      return NULL;
    for (uint32_t j = 0; j < c->hcap; j++)
      if (c->hits[j].id) {
        uint32_t k = (uint32_t)jiwa_text_hash64(
                         c->hits[j].id, strlen(c->hits[j].id), 7) &
                     (ncap - 1);
        while (nh[k].id)
          k = (k + 1) & (ncap - 1);
        nh[k] = c->hits[j];
      }
    free(c->hits);
    c->hits = nh;
    c->hcap = ncap;
    return hits_find(c, id, 1);
  }
  if (!(c->hits[i].id = strdup(id)))
    return NULL;
  c->hits[i].stored = c->hits[i].pending = 0;
  c->hn++;
  return &c->hits[i];
}

/* Forget an id (removal): a tombstone-free delete by re-inserting the
 * cluster that follows. */
static void hits_forget(gc_ctx_t *c, const char *id) {
  if (!c->hcap)
    return;
  uint64_t h = jiwa_text_hash64(id, strlen(id), 7);
  uint32_t i = (uint32_t)h & (c->hcap - 1);
  for (;; i = (i + 1) & (c->hcap - 1)) {
    if (!c->hits[i].id)
      return;
    if (strcmp(c->hits[i].id, id) == 0)
      break;
  }
  free(c->hits[i].id);
  c->hits[i].id = NULL;
  c->hn--;
  for (uint32_t j = (i + 1) & (c->hcap - 1); c->hits[j].id;
       j = (j + 1) & (c->hcap - 1)) {
    hitc_t e = c->hits[j];
    c->hits[j].id = NULL;
    uint32_t k = (uint32_t)jiwa_text_hash64(e.id, strlen(e.id), 7) &
                 (c->hcap - 1);
    while (c->hits[k].id)
      k = (k + 1) & (c->hcap - 1);
    c->hits[k] = e;
  }
}

static void flush_hits(jiwa_actor_t *self, gc_ctx_t *c) {
  for (uint32_t i = 0; i < c->hcap; i++) {
    hitc_t *e = &c->hits[i];
    if (!e->id || !e->pending)
      continue;
    char key[JIWA_KNOWLEDGE_ID_MAX + 8];
    int kl = snprintf(key, sizeof key, "h:%s", e->id);
    char val[16];
    msgpack_sbuffer sb = {0};
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_uint64(&pk, e->stored + e->pending);
    memcpy(val, sb.data, sb.size);
    size_t vl = sb.size;
    msgpack_sbuffer_destroy(&sb);
    if (jiwa_kv_put(self, key, (size_t)kl, val, vl, NULL, NULL) == 0) {
      e->stored += e->pending;
      e->pending = 0;
    }
  }
}

static void flush_timer(jiwa_actor_t *self, void *vctx, void *ud) {
  gc_ctx_t *c = vctx;
  (void)ud;
  c->flush_armed = 0;
  flush_hits(self, c);
}

static void count_hit(jiwa_actor_t *self, gc_ctx_t *c, const char *id) {
  hitc_t *e = hits_find(c, id, 1);
  if (!e)
    return;
  e->pending++;
  if (!c->flush_armed &&
      jiwa_timer_start(self, (uint64_t)c->flush_ms, 0, flush_timer, NULL,
                       &c->flush_timer) == 0)
    c->flush_armed = 1;
}

static int load_hit(const void *key, size_t klen, const void *val, size_t vlen,
                    void *ud) {
  gc_ctx_t *c = ud;
  char id[JIWA_KNOWLEDGE_ID_MAX + 1];
  if (klen < 3 || klen - 2 > JIWA_KNOWLEDGE_ID_MAX)
    return 0;
  memcpy(id, (const char *)key + 2, klen - 2);
  id[klen - 2] = '\0';
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, val, vlen);
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_UINT)
    return 0;
  hitc_t *e = hits_find(c, id, 1);
  if (e)
    e->stored = it.v.u;
  return 0;
}

/* ---- stored entries ---------------------------------------------------------- */

typedef struct {
  jiwa_knowledge_golden_t g;
  int64_t created;
  int invalidated;
} entry_t;

static void pack_golden(msgpack_packer *pk, const jiwa_knowledge_golden_t *g,
                        int64_t expires) {
  msgpack_pack_map(pk, expires ? 9 : 8);
  jiwa_mp_put_kv_str(pk, "id", g->id);
  jiwa_mp_put_kv_str(pk, "lang", g->lang);
  jiwa_mp_put_kv_str(pk, "question", g->question);
  jiwa_mp_put_str(pk, "paraphrases");
  msgpack_pack_array(pk, g->nparaphrases);
  for (uint32_t i = 0; i < g->nparaphrases; i++)
    jiwa_mp_put_str(pk, g->paraphrases[i]);
  jiwa_mp_put_kv_str(pk, "answer", g->answer);
  jiwa_mp_put_str(pk, "tags");
  msgpack_pack_array(pk, g->ntags);
  for (uint32_t i = 0; i < g->ntags; i++)
    jiwa_mp_put_str(pk, g->tags[i]);
  jiwa_mp_put_kv_bool(pk, "example", g->example);
  jiwa_mp_put_kv_str(pk, "source", g->source);
  if (expires)
    jiwa_mp_put_kv_int(pk, "expires", expires);
}

static void pack_entry(jiwa_mp_writer_t *w, const jiwa_knowledge_golden_t *g,
                       int64_t created, int64_t expires, int invalidated) {
  msgpack_pack_map(&w->pk, 3);
  jiwa_mp_put_kv_int(&w->pk, "created", created);
  jiwa_mp_put_kv_bool(&w->pk, "invalidated", invalidated);
  jiwa_mp_put_str(&w->pk, "entry");
  pack_golden(&w->pk, g, expires);
}

/* Decode a stored entry value. */
static int decode_entry(const void *val, size_t vlen, entry_t *e) {
  memset(e, 0, sizeof *e);
  jiwa_mp_reader_t at;
  if (jiwa_mp_map_find(val, vlen, "entry", &at))
    return JIWA_EPROTO;
  jiwa_mp_reader_t end = at;
  if (jiwa_mp_skip(&end))
    return JIWA_EPROTO;
  char err[8];
  int rc = jiwa_knowledge_golden_from_mp(at.p, (size_t)(end.p - at.p), &e->g,
                                         err, sizeof err);
  if (rc)
    return rc;
  jiwa_mp_get_int(val, vlen, "created", &e->created);
  jiwa_mp_get_bool(val, vlen, "invalidated", &e->invalidated);
  return 0;
}

static int load_entry(jiwa_actor_t *self, const char *id, size_t idlen,
                      entry_t *e) {
  char key[JIWA_KNOWLEDGE_ID_MAX + 8];
  if (idlen > JIWA_KNOWLEDGE_ID_MAX)
    return JIWA_ENOENT;
  int kl = snprintf(key, sizeof key, "e:%.*s", (int)idlen, id);
  void *v = NULL;
  size_t vl = 0;
  int rc = jiwa_kv_get(self, key, (size_t)kl, &v, &vl);
  if (rc)
    return rc;
  rc = decode_entry(v, vl, e);
  jiwa_kv_free(v);
  return rc;
}

static int entry_expired(const entry_t *e, int64_t now) {
  return e->invalidated || (e->g.expires_ms && e->g.expires_ms <= now);
}

/* ---- write groups: one reply when every write of a request committed --------- */

typedef struct {
  jiwa_msg_t *req;  /* retained ask, or NULL */
  const char *type; /* reply type */
  const char *field;/* reply field: "id", "imported", "removed", ... */
  char id[JIWA_KNOWLEDGE_ID_MAX + 1];
  int64_t count;
  int pending;      /* writes in flight + 1 while submitting */
  int rc;
  int seed;         /* a seed import: log instead of reply */
  /* records waiting for one batched upsert */
  jiwa_coll_record_t *recs;
  char **rec_ids;
  size_t nrecs, caprecs;
} wgroup_t;

static void wg_finish(jiwa_actor_t *self, gc_ctx_t *c, wgroup_t *wg) {
  if (wg->seed) {
    c->seed = SEED_DONE;
    if (wg->rc) {
      c->seed_errors++;
      jiwa_log(self, JIWA_LOG_ERROR, "seeding '%s' failed: %s", c->collection,
               jiwa_strerror(wg->rc));
    } else {
      c->seeded += (uint64_t)wg->count;
      jiwa_log(self, JIWA_LOG_INFO, "seeded '%s' with %lld golden entries",
               c->collection, (long long)wg->count);
    }
  } else if (wg->req) {
    if (wg->rc) {
      char text[160];
      snprintf(text, sizeof text, "%s: the write failed: %s", wg->type,
               jiwa_strerror(wg->rc));
      reply_err(self, wg->req, wg->rc, text);
    } else {
      jiwa_mp_writer_t w;
      jiwa_mp_writer_init(&w);
      msgpack_pack_map(&w.pk, 1);
      if (strcmp(wg->field, "id") == 0)
        jiwa_mp_put_kv_str(&w.pk, "id", wg->id);
      else
        jiwa_mp_put_kv_int(&w.pk, wg->field, wg->count);
      reply_w(self, wg->req, wg->type, &w);
    }
  }
  if (wg->req)
    jiwa_msg_release(wg->req);
  for (size_t i = 0; i < wg->nrecs; i++)
    free(wg->rec_ids[i]);
  free(wg->rec_ids);
  free(wg->recs);
  free(wg);
}

static void wg_done(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  gc_ctx_t *c = vctx;
  wgroup_t *wg = ud;
  c->writes_pending--;
  if (status && !wg->rc)
    wg->rc = status;
  if (--wg->pending == 0)
    wg_finish(self, c, wg);
}

static wgroup_t *wg_new(const jiwa_msg_t *req, const char *type,
                        const char *field) {
  wgroup_t *wg = calloc(1, sizeof *wg);
  if (!wg)
    return NULL;
  wg->req = req ? jiwa_msg_retain(req) : NULL;
  wg->type = type;
  wg->field = field;
  wg->pending = 1; /* held while submitting */
  return wg;
}

/* Release the submission hold. */
static void wg_submitted(jiwa_actor_t *self, gc_ctx_t *c, wgroup_t *wg) {
  if (--wg->pending == 0)
    wg_finish(self, c, wg);
}

static void wg_track(gc_ctx_t *c, wgroup_t *wg, int rc) {
  if (rc == 0) {
    wg->pending++;
    c->writes_pending++;
  } else if (!wg->rc) {
    wg->rc = rc;
  }
}

static void wg_kv_put(jiwa_actor_t *self, gc_ctx_t *c, wgroup_t *wg,
                      const char *key, size_t kl, const void *v, size_t vl) {
  wg_track(c, wg, jiwa_kv_put(self, key, kl, v, vl, wg_done, wg));
}

static void wg_kv_del(jiwa_actor_t *self, gc_ctx_t *c, wgroup_t *wg,
                      const char *key, size_t kl) {
  wg_track(c, wg, jiwa_kv_del(self, key, kl, wg_done, wg));
}

/* Queue a record for the group's batched upsert (text is copied). */
static int wg_add_rec(wgroup_t *wg, const char *id, const char *text,
                      const void *meta, size_t meta_len) {
  if (wg->nrecs == wg->caprecs) {
    size_t ncap = wg->caprecs ? wg->caprecs * 2 : 64;
    jiwa_coll_record_t *nr = realloc(wg->recs, ncap * sizeof *nr);
    if (!nr)
      return JIWA_ENOMEM;
    wg->recs = nr;
    char **ni = realloc(wg->rec_ids, ncap * sizeof *ni);
    if (!ni)
      return JIWA_ENOMEM;
    wg->rec_ids = ni;
    wg->caprecs = ncap;
  }
  size_t il = strlen(id), tl = strlen(text);
  char *blk = malloc(il + 1 + tl + 1 + meta_len);
  if (!blk)
    return JIWA_ENOMEM;
  memcpy(blk, id, il + 1);
  memcpy(blk + il + 1, text, tl + 1);
  memcpy(blk + il + 1 + tl + 1, meta, meta_len);
  wg->rec_ids[wg->nrecs] = blk;
  wg->recs[wg->nrecs] = (jiwa_coll_record_t){.id = blk,
                                             .text = blk + il + 1,
                                             .meta = blk + il + 1 + tl + 1,
                                             .meta_len = meta_len};
  wg->nrecs++;
  return 0;
}

static void wg_flush_recs(jiwa_actor_t *self, gc_ctx_t *c, wgroup_t *wg) {
  for (size_t i = 0; i < wg->nrecs; i += UPSERT_CHUNK) {
    size_t n = wg->nrecs - i < UPSERT_CHUNK ? wg->nrecs - i : UPSERT_CHUNK;
    wg_track(c, wg,
             jiwa_collection_upsert(self, c->collection, wg->recs + i, n,
                                    wg_done, wg));
  }
}

/* Delete every record an entry may have (<id>#q, <id>#p0..15). */
static void wg_delete_recs(jiwa_actor_t *self, gc_ctx_t *c, wgroup_t *wg,
                           const char *id) {
  char bufs[RECS_PER_ENTRY][JIWA_KNOWLEDGE_ID_MAX + 8];
  const char *ids[RECS_PER_ENTRY];
  snprintf(bufs[0], sizeof bufs[0], "%s#q", id);
  ids[0] = bufs[0];
  for (int i = 0; i < JIWA_KNOWLEDGE_PARAPHRASES_MAX; i++) {
    snprintf(bufs[i + 1], sizeof bufs[0], "%s#p%d", id, i);
    ids[i + 1] = bufs[i + 1];
  }
  wg_track(c, wg,
           jiwa_collection_delete(self, c->collection, ids, NULL,
                                  RECS_PER_ENTRY, wg_done, wg));
}

/* Delete the exact keys of @p g that point at its id. */
static void wg_delete_exact(jiwa_actor_t *self, gc_ctx_t *c, wgroup_t *wg,
                            const jiwa_knowledge_golden_t *g) {
  static __thread char norm[NORM_MAX];
  for (uint32_t i = 0; i <= g->nparaphrases; i++) {
    const char *t = i == 0 ? g->question : g->paraphrases[i - 1];
    char key[32];
    size_t nl;
    size_t kl = exact_key(t, strlen(t), key, sizeof key, norm, &nl);
    if (!kl)
      continue;
    void *v = NULL;
    size_t vl = 0;
    if (jiwa_kv_get(self, key, kl, &v, &vl) == 0) {
      const char *s;
      size_t sl;
      jiwa_mp_reader_t r;
      jiwa_mp_item_t it;
      jiwa_mp_reader_init(&r, v, vl);
      if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_STR) {
        s = it.v.s.ptr;
        sl = it.v.s.len;
        if (sl == strlen(g->id) && memcmp(s, g->id, sl) == 0)
          wg_kv_del(self, c, wg, key, kl);
      }
      jiwa_kv_free(v);
    }
  }
}

/* Remove one entry: kv entry, exact keys, hit counter, records. */
static void remove_entry(jiwa_actor_t *self, gc_ctx_t *c, wgroup_t *wg,
                         const entry_t *e) {
  char key[JIWA_KNOWLEDGE_ID_MAX + 8];
  wg_delete_exact(self, c, wg, &e->g);
  int kl = snprintf(key, sizeof key, "e:%s", e->g.id);
  wg_kv_del(self, c, wg, key, (size_t)kl);
  kl = snprintf(key, sizeof key, "h:%s", e->g.id);
  wg_kv_del(self, c, wg, key, (size_t)kl);
  hits_forget(c, e->g.id);
  wg_delete_recs(self, c, wg, e->g.id);
}

/* Lazy cleaning of an expired entry found by a lookup: fire and forget. */
static void clean_expired(jiwa_actor_t *self, gc_ctx_t *c, const entry_t *e) {
  wgroup_t *wg = wg_new(NULL, "golden.clean", "removed");
  if (!wg)
    return;
  remove_entry(self, c, wg, e);
  wg_submitted(self, c, wg);
}

/* Write (or replace) entry @p g; its records go to the group's batch. */
static int write_entry(jiwa_actor_t *self, gc_ctx_t *c, wgroup_t *wg,
                       const jiwa_knowledge_golden_t *g, int64_t now) {
  int64_t expires = g->expires_ms;
  if (!expires && g->ttl_days > 0)
    expires = now + (int64_t)(g->ttl_days * 86400000.0);
  else if (!expires && c->default_ttl_days > 0)
    expires = now + (int64_t)(c->default_ttl_days * 86400000.0);

  entry_t old;
  if (load_entry(self, g->id, strlen(g->id), &old) == 0) {
    /* replace: the old exact keys and records go first (same order) */
    wg_delete_exact(self, c, wg, &old.g);
    wg_delete_recs(self, c, wg, g->id);
    jiwa_knowledge_golden_free(&old.g);
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  pack_entry(&w, g, now, expires, 0);
  char key[JIWA_KNOWLEDGE_ID_MAX + 8];
  int kl = snprintf(key, sizeof key, "e:%s", g->id);
  wg_kv_put(self, c, wg, key, (size_t)kl, w.sbuf.data, w.sbuf.size);

  static __thread char norm[NORM_MAX];
  int rc = 0;
  for (uint32_t i = 0; i <= g->nparaphrases && rc == 0; i++) {
    const char *t = i == 0 ? g->question : g->paraphrases[i - 1];
    char xkey[32];
    size_t nl;
    size_t xl = exact_key(t, strlen(t), xkey, sizeof xkey, norm, &nl);
    if (xl) {
      w.sbuf.size = 0;
      jiwa_mp_put_str(&w.pk, g->id);
      wg_kv_put(self, c, wg, xkey, xl, w.sbuf.data, w.sbuf.size);
    }
    char rid[JIWA_KNOWLEDGE_ID_MAX + 8];
    if (i == 0)
      snprintf(rid, sizeof rid, "%s#q", g->id);
    else
      snprintf(rid, sizeof rid, "%s#p%u", g->id, i - 1);
    w.sbuf.size = 0;
    msgpack_pack_map(&w.pk, 3);
    jiwa_mp_put_kv_str(&w.pk, "lang", g->lang);
    jiwa_mp_put_kv_str(&w.pk, "entry", g->id);
    jiwa_mp_put_kv_str(&w.pk, "kind", i == 0 ? "question" : "paraphrase");
    rc = wg_add_rec(wg, rid, t, w.sbuf.data, w.sbuf.size);
  }
  jiwa_mp_writer_free(&w);
  if (rc && !wg->rc)
    wg->rc = rc;
  return rc;
}

/* ---- lookup -------------------------------------------------------------------- */

typedef struct {
  char id[JIWA_KNOWLEDGE_ID_MAX + 1];
  float score;
  char why[120];
} rejected_t;

static void pack_hit(msgpack_packer *pk, const entry_t *e, const char *match,
                     double score, const char *matched, const char *lang,
                     const rejected_t *rej, uint32_t nrej, int64_t took) {
  msgpack_pack_map(pk, 12);
  jiwa_mp_put_kv_bool(pk, "hit", 1);
  jiwa_mp_put_kv_str(pk, "answer", e->g.answer);
  jiwa_mp_put_kv_str(pk, "id", e->g.id);
  jiwa_mp_put_kv_double(pk, "score", score);
  jiwa_mp_put_kv_str(pk, "match", match);
  jiwa_mp_put_kv_str(pk, "question", matched);
  jiwa_mp_put_kv_str(pk, "lang", e->g.lang);
  jiwa_mp_put_str(pk, "tags");
  msgpack_pack_array(pk, e->g.ntags);
  for (uint32_t i = 0; i < e->g.ntags; i++)
    jiwa_mp_put_str(pk, e->g.tags[i]);
  jiwa_mp_put_kv_bool(pk, "example", e->g.example);
  jiwa_mp_put_kv_str(pk, "query_lang", lang);
  jiwa_mp_put_str(pk, "rejected");
  msgpack_pack_array(pk, nrej);
  for (uint32_t i = 0; i < nrej; i++) {
    msgpack_pack_map(pk, 3);
    jiwa_mp_put_kv_str(pk, "id", rej[i].id);
    jiwa_mp_put_kv_double(pk, "score", (double)rej[i].score);
    jiwa_mp_put_kv_str(pk, "why", rej[i].why);
  }
  jiwa_mp_put_kv_int(pk, "took_us", took);
}

static int handle_lookup(jiwa_actor_t *self, gc_ctx_t *c,
                         const jiwa_msg_t *msg) {
  double t0 = now_us();
  size_t blen;
  const void *b = jiwa_msg_body(msg, &blen);
  const char *q;
  size_t ql;
  if (jiwa_mp_get_str(b, blen, "query", &q, &ql))
    return reply_err(self, msg, JIWA_EINVAL,
                     "golden.lookup needs a string field 'query'");
  if (ql == 0 || ql > JIWA_TEXT_MAX_INPUT)
    return reply_err(self, msg, JIWA_EINVAL,
                     "golden.lookup: query must be 1..65536 bytes");
  c->lookups++;
  const char *lang = "unknown";
  const char *ls;
  size_t ll;
  char code[16];
  if (jiwa_mp_get_str(b, blen, "lang", &ls, &ll) == 0 && ll > 0 && ll < 16) {
    memcpy(code, ls, ll);
    code[ll] = '\0';
    lang = jiwa_lang_code(jiwa_lang_from_code(code));
  }
  if (strcmp(lang, "unknown") == 0) {
    jiwa_lang_result_t lr;
    if (jiwa_lang_detect(q, ql, &lr) == 0)
      lang = lr.code;
  }
  int lang_known = strcmp(lang, "unknown") != 0;
  int64_t now = wall_ms();
  rejected_t rej[CAND_MAX + 1];
  uint32_t nrej = 0;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);

  /* 1. exact */
  static __thread char norm[NORM_MAX], norm2[NORM_MAX];
  char key[32];
  size_t nl;
  size_t kl = exact_key(q, ql, key, sizeof key, norm, &nl);
  void *v = NULL;
  size_t vl = 0;
  if (kl && jiwa_kv_get(self, key, kl, &v, &vl) == 0) {
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    entry_t e;
    jiwa_mp_reader_init(&r, v, vl);
    if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_STR &&
        load_entry(self, it.v.s.ptr, it.v.s.len, &e) == 0) {
      const char *matched = NULL;
      for (uint32_t i = 0; i <= e.g.nparaphrases && !matched; i++) {
        const char *t = i == 0 ? e.g.question : e.g.paraphrases[i - 1];
        size_t n2 = jiwa_text_normalize(t, strlen(t), norm2, NORM_MAX);
        if (n2 == nl && memcmp(norm, norm2, nl) == 0)
          matched = t;
      }
      const char *why = NULL;
      if (!matched)
        why = "exact key of another text";
      else if (entry_expired(&e, now))
        why = e.invalidated ? "invalidated" : "expired";
      else if (!c->any_language && lang_known && strcmp(e.g.lang, lang) != 0)
        why = "language differs";
      else if (e.g.example && !c->serve_examples)
        why = "example entry (serve_examples is off)";
      if (!why) {
        c->exact_hits++;
        count_hit(self, c, e.g.id);
        pack_hit(&w.pk, &e, "exact", 1.0, matched, lang, rej, 0,
                 (int64_t)(now_us() - t0));
        jiwa_knowledge_golden_free(&e.g);
        jiwa_kv_free(v);
        jiwa_observe_ms(self, "lookup_ms", (now_us() - t0) / 1000.0);
        return reply_w(self, msg, "golden.result", &w);
      }
      if (entry_expired(&e, now))
        clean_expired(self, c, &e);
      snprintf(rej[nrej].id, sizeof rej[nrej].id, "%s", e.g.id);
      rej[nrej].score = 1.0f;
      snprintf(rej[nrej].why, sizeof rej[nrej].why, "exact: %s", why);
      nrej++;
      jiwa_knowledge_golden_free(&e.g);
    }
    jiwa_kv_free(v);
  }

  /* 2. semantic, through the guard */
  jiwa_coll_query_t cq = JIWA_COLL_QUERY_INIT;
  const char *lv[1] = {lang};
  jiwa_coll_filter_t f = {"lang", lv, 1};
  cq.text = q;
  cq.text_len = ql;
  cq.k = (uint32_t)c->candidates;
  cq.min_score = (float)c->threshold;
  if (lang_known && !c->any_language) {
    cq.filters = &f;
    cq.nfilters = 1;
  }
  cq.flags = JIWA_COLL_WITH_TEXT | JIWA_COLL_WITH_META;
  jiwa_coll_result_t res = {0};
  int rc = jiwa_collection_search(self, c->collection, &cq, &res);
  if (rc && rc != JIWA_ENOENT) {
    jiwa_mp_writer_free(&w);
    char text[160];
    snprintf(text, sizeof text, "golden.lookup: collection '%s': %s",
             c->collection, jiwa_strerror(rc));
    return reply_err(self, msg, rc, text);
  }
  jiwa_guard_opts_t go = {.any_language = c->any_language,
                          .min_coverage = (float)c->min_coverage};
  for (uint32_t i = 0; rc == 0 && i < res.n; i++) {
    const jiwa_coll_hit_t *h = &res.hits[i];
    const char *eid, *clang;
    size_t eidl = 0, cll = 0;
    char cl[16] = "unknown";
    if (!h->meta || jiwa_mp_get_str(h->meta, h->meta_len, "entry", &eid, &eidl))
      continue;
    if (jiwa_mp_get_str(h->meta, h->meta_len, "lang", &clang, &cll) == 0 &&
        cll < sizeof cl) {
      memcpy(cl, clang, cll);
      cl[cll] = '\0';
    }
    /* an entry already refused for one of its texts may still pass with
     * another (a paraphrase): check every record */
    jiwa_guard_verdict_t verdict;
    char why[120] = "";
    int grc = jiwa_guard_check(q, ql, lang, h->text, h->text_len, cl, &go,
                               &verdict, why, sizeof why);
    const char *reason = NULL;
    entry_t e;
    int have = 0;
    if (grc) {
      reason = "guard could not check";
    } else if (verdict != JIWA_GUARD_SAME) {
      reason = why[0] ? why : jiwa_guard_verdict_name(verdict);
      c->guard_rejects++;
    } else if (load_entry(self, eid, eidl, &e) != 0) {
      reason = "entry missing";
    } else {
      have = 1;
      if (entry_expired(&e, now)) {
        reason = e.invalidated ? "invalidated" : "expired";
        clean_expired(self, c, &e);
      } else if (e.g.example && !c->serve_examples) {
        reason = "example entry (serve_examples is off)";
      }
    }
    if (!reason) {
      c->semantic_hits++;
      count_hit(self, c, e.g.id);
      uint32_t shown = nrej < (uint32_t)c->max_rejected
                           ? nrej
                           : (uint32_t)c->max_rejected;
      pack_hit(&w.pk, &e, "semantic", (double)h->score, h->text, lang, rej,
               shown, (int64_t)(now_us() - t0));
      jiwa_knowledge_golden_free(&e.g);
      jiwa_collection_result_free(&res);
      jiwa_observe_ms(self, "lookup_ms", (now_us() - t0) / 1000.0);
      return reply_w(self, msg, "golden.result", &w);
    }
    if (have)
      jiwa_knowledge_golden_free(&e.g);
    if (nrej < CAND_MAX) {
      snprintf(rej[nrej].id, sizeof rej[nrej].id, "%.*s", (int)eidl, eid);
      rej[nrej].score = h->score;
      snprintf(rej[nrej].why, sizeof rej[nrej].why, "%s", reason);
      nrej++;
    }
  }
  jiwa_collection_result_free(&res);
  c->misses++;
  uint32_t shown =
      nrej < (uint32_t)c->max_rejected ? nrej : (uint32_t)c->max_rejected;
  msgpack_pack_map(&w.pk, 4);
  jiwa_mp_put_kv_bool(&w.pk, "hit", 0);
  jiwa_mp_put_kv_str(&w.pk, "query_lang", lang);
  jiwa_mp_put_str(&w.pk, "rejected");
  msgpack_pack_array(&w.pk, shown);
  for (uint32_t i = 0; i < shown; i++) {
    msgpack_pack_map(&w.pk, 3);
    jiwa_mp_put_kv_str(&w.pk, "id", rej[i].id);
    jiwa_mp_put_kv_double(&w.pk, "score", (double)rej[i].score);
    jiwa_mp_put_kv_str(&w.pk, "why", rej[i].why);
  }
  jiwa_mp_put_kv_int(&w.pk, "took_us", (int64_t)(now_us() - t0));
  jiwa_observe_ms(self, "lookup_ms", (now_us() - t0) / 1000.0);
  return reply_w(self, msg, "golden.result", &w);
}

/* ---- management ------------------------------------------------------------- */

static int handle_add(jiwa_actor_t *self, gc_ctx_t *c, const jiwa_msg_t *msg) {
  size_t blen;
  const void *b = jiwa_msg_body(msg, &blen);
  jiwa_knowledge_golden_t g;
  char err[300], text[340];
  int rc = jiwa_knowledge_golden_from_mp(b, blen, &g, err, sizeof err);
  if (rc) {
    snprintf(text, sizeof text, "golden.add: %s", err);
    return reply_err(self, msg, rc, text);
  }
  wgroup_t *wg = wg_new(msg, "golden.added", "id");
  if (!wg) {
    jiwa_knowledge_golden_free(&g);
    return reply_err(self, msg, JIWA_ENOMEM, "out of memory");
  }
  snprintf(wg->id, sizeof wg->id, "%s", g.id);
  write_entry(self, c, wg, &g, wall_ms());
  wg_flush_recs(self, c, wg);
  jiwa_knowledge_golden_free(&g);
  wg_submitted(self, c, wg);
  return 0;
}

static int handle_remove(jiwa_actor_t *self, gc_ctx_t *c,
                         const jiwa_msg_t *msg) {
  const char *id;
  size_t il;
  if (jiwa_msg_get_str(msg, "id", &id, &il) || il == 0)
    return reply_err(self, msg, JIWA_EINVAL,
                     "golden.remove needs a string field 'id'");
  entry_t e;
  wgroup_t *wg = wg_new(msg, "golden.removed", "removed");
  if (!wg)
    return reply_err(self, msg, JIWA_ENOMEM, "out of memory");
  if (load_entry(self, id, il, &e) == 0) {
    wg->count = 1;
    remove_entry(self, c, wg, &e);
    jiwa_knowledge_golden_free(&e.g);
  }
  wg_submitted(self, c, wg);
  return 0;
}

static int handle_import(jiwa_actor_t *self, gc_ctx_t *c,
                         const jiwa_msg_t *msg) {
  size_t blen;
  const void *b = jiwa_msg_body(msg, &blen);
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  if (jiwa_mp_map_find(b, blen, "entries", &at) || jiwa_mp_next(&at, &it) ||
      it.type != JIWA_MP_ARRAY)
    return reply_err(self, msg, JIWA_EINVAL,
                     "golden.import needs an array field 'entries'");
  if (it.v.count > IMPORT_MAX)
    return reply_err(self, msg, JIWA_ETOOBIG,
                     "golden.import: at most 20000 entries per call");
  uint32_t n = it.v.count;
  jiwa_knowledge_golden_t *v = calloc(n ? n : 1, sizeof *v);
  if (!v)
    return reply_err(self, msg, JIWA_ENOMEM, "out of memory");
  char err[300], text[360];
  int rc = 0;
  uint32_t k = 0;
  for (; k < n; k++) {
    jiwa_mp_reader_t end = at;
    if (jiwa_mp_skip(&end)) {
      rc = JIWA_EPROTO;
      snprintf(text, sizeof text, "golden.import: entry %u: malformed", k + 1);
      break;
    }
    rc = jiwa_knowledge_golden_from_mp(at.p, (size_t)(end.p - at.p), &v[k],
                                       err, sizeof err);
    if (rc) {
      snprintf(text, sizeof text, "golden.import: entry %u: %s", k + 1, err);
      break;
    }
    for (uint32_t j = 0; j < k && !rc; j++)
      if (strcmp(v[j].id, v[k].id) == 0) {
        rc = JIWA_EINVAL;
        snprintf(text, sizeof text,
                 "golden.import: entry %u: id '%s' repeats entry %u", k + 1,
                 v[k].id, j + 1);
      }
    if (rc) {
      k++;
      break;
    }
    at = end;
  }
  if (rc) {
    for (uint32_t j = 0; j < k; j++)
      jiwa_knowledge_golden_free(&v[j]);
    free(v);
    return reply_err(self, msg, rc, text);
  }
  wgroup_t *wg = wg_new(msg, "golden.imported", "imported");
  if (!wg) {
    for (uint32_t j = 0; j < n; j++)
      jiwa_knowledge_golden_free(&v[j]);
    free(v);
    return reply_err(self, msg, JIWA_ENOMEM, "out of memory");
  }
  int64_t now = wall_ms();
  for (uint32_t j = 0; j < n; j++)
    write_entry(self, c, wg, &v[j], now);
  wg->count = n;
  wg_flush_recs(self, c, wg);
  for (uint32_t j = 0; j < n; j++)
    jiwa_knowledge_golden_free(&v[j]);
  free(v);
  wg_submitted(self, c, wg);
  return 0;
}

/* golden.list and golden.invalidate walk the entries with kv_scan. */
typedef struct {
  gc_ctx_t *c;
  const char *lang;
  int64_t limit, offset, seen, total;
  int64_t now;
  msgpack_packer *pk;
  /* invalidate */
  const char *id, *tag;
  int all;
  entry_t *sel;
  uint32_t nsel, capsel;
} walk_t;

static int has_tag(const jiwa_knowledge_golden_t *g, const char *tag) {
  for (uint32_t i = 0; i < g->ntags; i++)
    if (strcmp(g->tags[i], tag) == 0)
      return 1;
  return 0;
}

static int list_item(const void *key, size_t klen, const void *val,
                     size_t vlen, void *ud) {
  walk_t *wk = ud;
  (void)key;
  (void)klen;
  entry_t e;
  if (decode_entry(val, vlen, &e))
    return 0;
  if (wk->lang && strcmp(e.g.lang, wk->lang) != 0) {
    jiwa_knowledge_golden_free(&e.g);
    return 0;
  }
  wk->total++;
  if (wk->seen++ >= wk->offset && wk->limit > 0) {
    wk->limit--;
    hitc_t *h = hits_find(wk->c, e.g.id, 0);
    msgpack_packer *pk = wk->pk;
    msgpack_pack_map(pk, 11);
    jiwa_mp_put_kv_str(pk, "id", e.g.id);
    jiwa_mp_put_kv_str(pk, "lang", e.g.lang);
    jiwa_mp_put_kv_str(pk, "question", e.g.question);
    jiwa_mp_put_kv_int(pk, "paraphrases", e.g.nparaphrases);
    jiwa_mp_put_kv_int(pk, "hits",
                       h ? (int64_t)(h->stored + h->pending) : 0);
    jiwa_mp_put_kv_int(pk, "created", e.created);
    jiwa_mp_put_kv_int(pk, "expires", e.g.expires_ms);
    jiwa_mp_put_kv_bool(pk, "expired", entry_expired(&e, wk->now));
    jiwa_mp_put_kv_bool(pk, "example", e.g.example);
    jiwa_mp_put_kv_str(pk, "source", e.g.source);
    jiwa_mp_put_str(pk, "tags");
    msgpack_pack_array(pk, e.g.ntags);
    for (uint32_t i = 0; i < e.g.ntags; i++)
      jiwa_mp_put_str(pk, e.g.tags[i]);
  }
  jiwa_knowledge_golden_free(&e.g);
  return 0;
}

static int handle_list(jiwa_actor_t *self, gc_ctx_t *c,
                       const jiwa_msg_t *msg) {
  size_t blen;
  const void *b = jiwa_msg_body(msg, &blen);
  walk_t wk = {.c = c, .limit = 50, .now = wall_ms()};
  char lang[16];
  if (jiwa_mp_get_strcpy(b, blen, "lang", lang, sizeof lang) == 0 && lang[0])
    wk.lang = lang;
  jiwa_mp_get_int(b, blen, "limit", &wk.limit);
  jiwa_mp_get_int(b, blen, "offset", &wk.offset);
  if (wk.limit < 0 || wk.limit > 10000 || wk.offset < 0)
    return reply_err(self, msg, JIWA_EINVAL,
                     "golden.list: limit 0..10000, offset >= 0");
  /* entries are packed into a side buffer, counted, then wrapped */
  jiwa_mp_writer_t items;
  jiwa_mp_writer_init(&items);
  wk.pk = &items.pk;
  int64_t want = wk.limit;
  int n = jiwa_kv_scan(self, "e:", 2, SCAN_MAX, list_item, &wk);
  if (n < 0) {
    jiwa_mp_writer_free(&items);
    return reply_err(self, msg, n, "golden.list: the store could not be read");
  }
  int64_t packed = want - wk.limit;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_kv_int(&w.pk, "total", wk.total);
  jiwa_mp_put_str(&w.pk, "entries");
  msgpack_pack_array(&w.pk, (size_t)packed);
  msgpack_sbuffer_write(&w.sbuf, items.sbuf.data, items.sbuf.size);
  jiwa_mp_writer_free(&items);
  return reply_w(self, msg, "golden.list", &w);
}

static int select_item(const void *key, size_t klen, const void *val,
                       size_t vlen, void *ud) {
  walk_t *wk = ud;
  (void)key;
  (void)klen;
  entry_t e;
  if (decode_entry(val, vlen, &e))
    return 0;
  int take = wk->all || (wk->id && strcmp(e.g.id, wk->id) == 0) ||
             (wk->tag && has_tag(&e.g, wk->tag));
  if (take && wk->nsel == wk->capsel) {
    uint32_t ncap = wk->capsel ? wk->capsel * 2 : 64;
    entry_t *ns = realloc(wk->sel, ncap * sizeof *ns);
    if (!ns)
      take = 0;
    else {
      wk->sel = ns;
      wk->capsel = ncap;
    }
  }
  if (take)
    wk->sel[wk->nsel++] = e;
  else
    jiwa_knowledge_golden_free(&e.g);
  return 0;
}

static int handle_invalidate(jiwa_actor_t *self, gc_ctx_t *c,
                             const jiwa_msg_t *msg) {
  size_t blen;
  const void *b = jiwa_msg_body(msg, &blen);
  walk_t wk = {.c = c, .now = wall_ms()};
  char id[JIWA_KNOWLEDGE_ID_MAX + 1], tag[40];
  if (jiwa_mp_get_strcpy(b, blen, "id", id, sizeof id) == 0 && id[0])
    wk.id = id;
  if (jiwa_mp_get_strcpy(b, blen, "tag", tag, sizeof tag) == 0 && tag[0])
    wk.tag = tag;
  jiwa_mp_get_bool(b, blen, "all", &wk.all);
  if (!wk.id && !wk.tag && !wk.all)
    return reply_err(self, msg, JIWA_EINVAL,
                     "golden.invalidate needs 'id', 'tag' or 'all': true");
  int n = jiwa_kv_scan(self, "e:", 2, SCAN_MAX, select_item, &wk);
  wgroup_t *wg = n < 0 ? NULL : wg_new(msg, "golden.invalidated",
                                       "invalidated");
  if (!wg) {
    for (uint32_t i = 0; i < wk.nsel; i++)
      jiwa_knowledge_golden_free(&wk.sel[i].g);
    free(wk.sel);
    return reply_err(self, msg, n < 0 ? n : JIWA_ENOMEM,
                     "golden.invalidate: the store could not be read");
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  for (uint32_t i = 0; i < wk.nsel; i++) {
    entry_t *e = &wk.sel[i];
    if (!e->invalidated) {
      w.sbuf.size = 0;
      pack_entry(&w, &e->g, e->created, e->g.expires_ms, 1);
      char key[JIWA_KNOWLEDGE_ID_MAX + 8];
      int kl = snprintf(key, sizeof key, "e:%s", e->g.id);
      wg_kv_put(self, c, wg, key, (size_t)kl, w.sbuf.data, w.sbuf.size);
      wg->count++;
    }
    jiwa_knowledge_golden_free(&e->g);
  }
  jiwa_mp_writer_free(&w);
  free(wk.sel);
  wg_submitted(self, c, wg);
  return 0;
}

static int count_item(const void *key, size_t klen, const void *val,
                      size_t vlen, void *ud) {
  (void)key;
  (void)klen;
  (void)val;
  (void)vlen;
  (void)ud;
  return 0;
}

static int handle_stats(jiwa_actor_t *self, gc_ctx_t *c,
                        const jiwa_msg_t *msg) {
  static const char *const SEED[] = {"none", "waiting", "running", "done"};
  int n = jiwa_kv_scan(self, "e:", 2, SCAN_MAX, count_item, NULL);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 11);
  jiwa_mp_put_kv_int(&w.pk, "entries", n < 0 ? 0 : n);
  jiwa_mp_put_kv_str(&w.pk, "seed", SEED[c->seed]);
  jiwa_mp_put_kv_int(&w.pk, "seeded", (int64_t)c->seeded);
  jiwa_mp_put_kv_int(&w.pk, "seed_errors", (int64_t)c->seed_errors);
  jiwa_mp_put_kv_int(&w.pk, "lookups", (int64_t)c->lookups);
  jiwa_mp_put_kv_int(&w.pk, "exact_hits", (int64_t)c->exact_hits);
  jiwa_mp_put_kv_int(&w.pk, "semantic_hits", (int64_t)c->semantic_hits);
  jiwa_mp_put_kv_int(&w.pk, "misses", (int64_t)c->misses);
  jiwa_mp_put_kv_int(&w.pk, "guard_rejects", (int64_t)c->guard_rejects);
  jiwa_mp_put_kv_int(&w.pk, "writes_pending", c->writes_pending);
  jiwa_mp_put_kv_bool(&w.pk, "busy", c->seed == SEED_RUNNING);
  return reply_w(self, msg, "golden.stats", &w);
}

/* golden.flush: write the hit counters now (tests, shutdown scripts). */
static int handle_flush(jiwa_actor_t *self, gc_ctx_t *c,
                        const jiwa_msg_t *msg) {
  flush_hits(self, c);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 0);
  return reply_w(self, msg, "golden.flushed", &w);
}

/* ---- seeding ------------------------------------------------------------------ */

struct seed_job {
  char *files[SEED_FILES_MAX];
  uint32_t nfiles;
  jiwa_knowledge_golden_t *v;
  size_t n;
  char log[SEED_FILES_MAX][320];
  int file_rc[SEED_FILES_MAX];
};

static void seed_job_free(seed_job_t *j) {
  for (uint32_t i = 0; i < j->nfiles; i++)
    free(j->files[i]);
  jiwa_knowledge_goldens_free(j->v, j->n);
  free(j);
}

static void seed_work(void *ud) {
  seed_job_t *j = ud;
  for (uint32_t f = 0; f < j->nfiles; f++) {
    char *data = NULL, err[300];
    size_t len = 0, n = 0;
    jiwa_knowledge_golden_t *v = NULL;
    int rc = jiwa_knowledge_read_file(j->files[f], SEED_MAX_BYTES, &data, &len);
    if (rc) {
      snprintf(j->log[f], sizeof j->log[f], "%s: cannot read: %s",
               j->files[f], jiwa_strerror(rc));
      j->file_rc[f] = rc;
      continue;
    }
    rc = jiwa_knowledge_parse_goldens(data, len, j->files[f], &v, &n, err,
                                      sizeof err);
    free(data);
    for (size_t a = 0; rc == 0 && a < n; a++)
      for (size_t b = 0; rc == 0 && b < j->n; b++)
        if (strcmp(v[a].id, j->v[b].id) == 0) {
          snprintf(err, sizeof err, "%s: id '%s' already imported",
                   j->files[f], v[a].id);
          rc = JIWA_EEXIST;
        }
    jiwa_knowledge_golden_t *all =
        rc == 0 && n ? realloc(j->v, (j->n + n) * sizeof *all) : NULL;
    if (rc == 0 && n && !all) {
      rc = JIWA_ENOMEM;
      snprintf(err, sizeof err, "%s: out of memory", j->files[f]);
    }
    if (rc) {
      snprintf(j->log[f], sizeof j->log[f], "%s", err);
      j->file_rc[f] = rc;
      jiwa_knowledge_goldens_free(v, n);
      continue;
    }
    if (n) {
      memcpy(all + j->n, v, n * sizeof *v);
      free(v);
      j->v = all;
      j->n += n;
    }
    snprintf(j->log[f], sizeof j->log[f], "%s: %zu golden entries",
             j->files[f], n);
  }
}

static void seed_done(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  gc_ctx_t *c = vctx;
  seed_job_t *j = ud;
  for (uint32_t f = 0; f < j->nfiles; f++) {
    jiwa_log(self, j->file_rc[f] ? JIWA_LOG_ERROR : JIWA_LOG_INFO, "seed %s%s",
             j->file_rc[f] ? "file refused: " : "", j->log[f]);
    c->seed_errors += j->file_rc[f] != 0;
  }
  wgroup_t *wg = status || j->n == 0 ? NULL : wg_new(NULL, "seed", "seeded");
  if (!wg) {
    c->seed = SEED_DONE;
    seed_job_free(j);
    return;
  }
  wg->seed = 1;
  wg->count = (int64_t)j->n;
  int64_t now = wall_ms();
  for (size_t i = 0; i < j->n; i++) {
    if (c->seed_as_examples)
      j->v[i].example = 1;
    write_entry(self, c, wg, &j->v[i], now);
  }
  wg_flush_recs(self, c, wg);
  seed_job_free(j);
  wg_submitted(self, c, wg);
}

static void seed_check(jiwa_actor_t *self, gc_ctx_t *c) {
  if (c->seed != SEED_WAIT)
    return;
  void *st = NULL;
  size_t sl = 0;
  int rc = jiwa_collection_stats(self, c->collection, &st, &sl);
  if (rc == JIWA_ENOENT)
    return; /* not there yet (a harness adds it after init): next message */
  c->seed = SEED_DONE;
  int64_t n = -1;
  if (rc == 0)
    jiwa_mp_get_int(st, sl, "count", &n);
  jiwa_kv_free(st);
  if (n != 0) {
    if (rc)
      jiwa_log(self, JIWA_LOG_WARN, "collection '%s': %s; no seeding",
               c->collection, jiwa_strerror(rc));
    return;
  }
  seed_job_t *j = calloc(1, sizeof *j);
  if (!j)
    return;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it, s;
  jiwa_mp_reader_init(&r, c->seed_files.data, c->seed_files.len);
  if (jiwa_mp_next(&r, &it) == 0) {
    uint32_t items = it.type == JIWA_MP_ARRAY ? it.v.count : 1;
    for (uint32_t i = 0; i < items && j->nfiles < SEED_FILES_MAX; i++) {
      if (it.type == JIWA_MP_ARRAY) {
        if (jiwa_mp_next(&r, &s))
          break;
      } else {
        s = it;
      }
      if (s.type != JIWA_MP_STR || s.v.s.len == 0)
        continue;
      if ((j->files[j->nfiles] = strndup(s.v.s.ptr, s.v.s.len)))
        j->nfiles++;
    }
  }
  if (!j->nfiles) {
    seed_job_free(j);
    return;
  }
  c->seed = SEED_RUNNING;
  if (jiwa_queue_work(self, seed_work, seed_done, j)) {
    c->seed = SEED_DONE;
    seed_job_free(j);
  }
}

/* ---- lifecycle ----------------------------------------------------------------- */

static int gc_init(jiwa_actor_t *self, void *vctx) {
  gc_ctx_t *c = vctx;
  int n = jiwa_kv_scan(self, "h:", 2, SCAN_MAX, load_hit, c);
  if (n < 0 && n != JIWA_ESTATE)
    jiwa_log(self, JIWA_LOG_WARN, "hit counters not loaded: %s",
             jiwa_strerror(n));
  c->seed = c->seed_files.data ? SEED_WAIT : SEED_NONE;
  seed_check(self, c);
  jiwa_log(self, JIWA_LOG_INFO, "golden_cache ready: collection '%s'",
           c->collection);
  return 0;
}

static int gc_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *msg) {
  gc_ctx_t *c = vctx;
  if (jiwa_msg_kind(msg) != JIWA_MSG_ASK)
    return 0;
  seed_check(self, c);
  const char *t = jiwa_msg_type(msg);
  if (strcmp(t, "golden.lookup") == 0)
    return handle_lookup(self, c, msg);
  if (strcmp(t, "golden.add") == 0)
    return handle_add(self, c, msg);
  if (strcmp(t, "golden.remove") == 0)
    return handle_remove(self, c, msg);
  if (strcmp(t, "golden.list") == 0)
    return handle_list(self, c, msg);
  if (strcmp(t, "golden.import") == 0)
    return handle_import(self, c, msg);
  if (strcmp(t, "golden.invalidate") == 0)
    return handle_invalidate(self, c, msg);
  if (strcmp(t, "golden.stats") == 0)
    return handle_stats(self, c, msg);
  if (strcmp(t, "golden.flush") == 0)
    return handle_flush(self, c, msg);
  return reply_err(self, msg, JIWA_ENOTSUP,
                   "golden_cache answers golden.lookup, golden.add, "
                   "golden.remove, golden.list, golden.import, "
                   "golden.invalidate, golden.stats, golden.flush");
}

static void gc_drain(jiwa_actor_t *self, void *vctx) {
  gc_ctx_t *c = vctx;
  if (c->flush_armed) {
    jiwa_timer_stop(self, c->flush_timer);
    c->flush_armed = 0;
  }
  flush_hits(self, c); /* the new version reads them from kv */
}

static void gc_fini(jiwa_actor_t *self, void *vctx) {
  gc_ctx_t *c = vctx;
  (void)self;
  for (uint32_t i = 0; i < c->hcap; i++)
    free(c->hits[i].id);
  free(c->hits);
}

static const jiwa_plugin_desc_t gc_desc = {
    JIWA_DESC_HEADER,
    .name = "golden_cache",
    .version = "1.0.0",
    .description = "frequent questions answered from the store: exact, then "
                   "semantic with a false-hit guard",
    .config = gc_config,
    .ctx_size = sizeof(gc_ctx_t),
    .init = gc_init,
    .receive = gc_receive,
    .drain = gc_drain,
    .fini = gc_fini,
};

JIWA_PLUGIN(gc_desc)
