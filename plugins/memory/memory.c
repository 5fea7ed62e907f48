/*
 * memory — each user's JIWA memory (issue 8; README.md next to this file).
 *
 * kv "m:<user>" holds the memory document of runtime/memory/jiwa_memmerge.h
 * (msgpack, canonical, decoded strictly). Ops:
 *  - memory.get {user, lang?} -> {summary}: on the user's path (the policy
 *    asks it with a 50 ms deadline): one kv read, one decode, one summary;
 *  - memory.merge {user, profile, source, as_of?} -> merges a validated
 *    profile (validated again here: the body is outside input);
 *  - memory.show {user} -> the whole memory as a readable map;
 *  - memory.forget {user} -> deletes the memory and asks convlog and shadow
 *    to delete that user's records (and the enricher to drop what it holds);
 *    replies {deleted: {memory, conversations, shadow}} once all confirmed.
 *
 * Writes are asynchronous: a merge's result is kept in an overlay until its
 * put committed, so a get or a second merge of the same user right after
 * sees it (no lost update). A forget remembers the user for a while: a
 * merge whose conversation is older than the forget (as_of) is refused, so
 * an enrichment that was in flight cannot bring the user back.
 */
#include <jiwa/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_util.h"
#include "jiwa_lang.h"
#include "jiwa_memmerge.h"
#include "jiwa_profile.h"

#define FORGOTTEN_MAX 4096
#define FORGOTTEN_KEEP_MS (30LL * 60 * 1000)

/* A memory written but not committed yet (or deleted: bytes NULL). */
typedef struct ovl {
  char user[CONVK_USER_MAX + 1];
  char *bytes;
  size_t len;
  int deleted;
  unsigned pending;
  struct ovl *next;
} ovl_t;

typedef struct {
  char user[CONVK_USER_MAX + 1];
  int64_t at;
} forgotten_t;

typedef struct {
  /* config */
  int64_t summary_chars;
  double emotion_half_life_h;
  int64_t forget_timeout_ms;
  char *convlog_actor, *shadow_actor, *enricher_actor;
  /* state */
  jiwa_memory_t *mem; /* scratch decode target (110 KB: never on a stack) */
  ovl_t *ovl;
  forgotten_t *forgotten;
  size_t nforgotten;
  uint64_t gets, hits, merges, merge_errors, corrupt, refused_stale, forgets,
      forget_failures;
} mem_ctx_t;

static const jiwa_cfg_field_t mem_config[] = {
    {JIWA_CFG_INT, "summary_chars", "400", offsetof(mem_ctx_t, summary_chars),
     0, 40, 4000, "characters of the summary memory.get gives the model"},
    {JIWA_CFG_DOUBLE, "emotion_half_life_h", "24",
     offsetof(mem_ctx_t, emotion_half_life_h), 0, 0.1, 8760,
     "half-life of the emotional state (hours)"},
    {JIWA_CFG_INT, "forget_timeout_ms", "30000",
     offsetof(mem_ctx_t, forget_timeout_ms), 0, 100, 600000,
     "how long memory.forget waits for convlog and shadow"},
    {JIWA_CFG_STR, "convlog_actor", "convlog",
     offsetof(mem_ctx_t, convlog_actor), 0, 0, 0,
     "the conversation log actor (conversations.forget)"},
    {JIWA_CFG_STR, "shadow_actor", "shadow", offsetof(mem_ctx_t, shadow_actor),
     0, 0, 0, "the shadow actor (shadow.forget)"},
    {JIWA_CFG_STR, "enricher_actor", "jiwa_enricher",
     offsetof(mem_ctx_t, enricher_actor), 0, 0, 0,
     "the enricher actor (enrich.forget: drop what it holds of the user)"},
    {0}};

static jiwa_memory_opts_t mem_opts(const mem_ctx_t *c) {
  jiwa_memory_opts_t o = {0};
  o.emotion_half_life_ms = (int64_t)(c->emotion_half_life_h * 3600000.0);
  return o;
}

/* ---- overlay and store ----------------------------------------------------- */

static ovl_t *ovl_find(mem_ctx_t *c, const char *user) {
  for (ovl_t *o = c->ovl; o; o = o->next)
    if (strcmp(o->user, user) == 0)
      return o;
  return NULL;
}

static void ovl_drop(mem_ctx_t *c, ovl_t *o) {
  for (ovl_t **pp = &c->ovl; *pp; pp = &(*pp)->next)
    if (*pp == o) {
      *pp = o->next;
      break;
    }
  free(o->bytes);
  free(o);
}

static size_t mkey(const char *user, char *key) {
  size_t n = strlen(user);
  memcpy(key, "m:", 2);
  memcpy(key + 2, user, n);
  return n + 2;
}

/*
 * The current bytes of @p user's memory: the overlay's, or the store's.
 * *owned is set when *bytes must be released with jiwa_kv_free.
 * Returns 0 (bytes may be NULL: no memory) or a store error.
 */
static int mem_load(jiwa_actor_t *self, mem_ctx_t *c, const char *user,
                    const void **bytes, size_t *len, void **owned) {
  *owned = NULL;
  ovl_t *o = ovl_find(c, user);
  if (o) {
    *bytes = o->deleted ? NULL : o->bytes;
    *len = o->deleted ? 0 : o->len;
    return 0;
  }
  char key[2 + CONVK_USER_MAX];
  void *v = NULL;
  size_t vl = 0;
  int rc = jiwa_kv_get(self, key, mkey(user, key), &v, &vl);
  if (rc == JIWA_ENOENT) {
    *bytes = NULL;
    *len = 0;
    return 0;
  }
  if (rc)
    return rc;
  *owned = v;
  *bytes = v;
  *len = vl;
  return 0;
}

typedef struct {
  mem_ctx_t *c;
  ovl_t *o;
  jiwa_msg_t *msg; /* ask to answer after the commit, or NULL */
  unsigned nfacts, nhistory;
  uint64_t merges;
  void (*then)(jiwa_actor_t *, mem_ctx_t *, void *, int);
  void *then_ud;
} wr_t;

static void wr_done(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  mem_ctx_t *c = vctx;
  wr_t *w = ud;
  if (w->o && --w->o->pending == 0)
    ovl_drop(c, w->o);
  if (w->then)
    w->then(self, c, w->then_ud, status);
  if (w->msg) {
    if (status) {
      c->merge_errors++;
      convk_reply_err(self, w->msg, status,
                      "memory: the merged memory could not be written");
    } else {
      jiwa_mp_writer_t mw;
      jiwa_mp_writer_init(&mw);
      msgpack_pack_map(&mw.pk, 4);
      jiwa_mp_put_kv_bool(&mw.pk, "merged", 1);
      jiwa_mp_put_kv_int(&mw.pk, "facts", w->nfacts);
      jiwa_mp_put_kv_int(&mw.pk, "history", w->nhistory);
      jiwa_mp_put_kv_int(&mw.pk, "merges", (int64_t)w->merges);
      jiwa_reply(self, w->msg, "memory.merged", mw.sbuf.data, mw.sbuf.size);
      jiwa_mp_writer_free(&mw);
    }
    jiwa_msg_release(w->msg);
  }
  free(w);
}

/* Put (bytes) or delete (NULL) @p user's memory; the overlay holds the
 * new state until the commit. Takes ownership of @p bytes. */
static int mem_store(jiwa_actor_t *self, mem_ctx_t *c, const char *user,
                     char *bytes, size_t len, wr_t *w) {
  ovl_t *o = ovl_find(c, user);
  if (!o) {
    o = calloc(1, sizeof *o);
    if (!o) {
      free(bytes);
      return JIWA_ENOMEM;
    }
    snprintf(o->user, sizeof o->user, "%s", user);
    o->next = c->ovl;
    c->ovl = o;
  }
  char key[2 + CONVK_USER_MAX];
  size_t kl = mkey(user, key);
  int rc = bytes ? jiwa_kv_put(self, key, kl, bytes, len, wr_done, w)
                 : jiwa_kv_del(self, key, kl, wr_done, w);
  if (rc) {
    free(bytes);
    if (!o->pending)
      ovl_drop(c, o);
    return rc;
  }
  free(o->bytes);
  o->bytes = bytes;
  o->len = len;
  o->deleted = bytes == NULL;
  o->pending++;
  w->o = o;
  return 0;
}

/* The user field: 1..255 bytes, no NUL. */
static int get_user(const jiwa_msg_t *m, char *user) {
  const char *u;
  size_t ul;
  if (jiwa_msg_get_str(m, "user", &u, &ul) != 0 || ul == 0 ||
      ul > CONVK_USER_MAX || memchr(u, 0, ul))
    return JIWA_EINVAL;
  memcpy(user, u, ul);
  user[ul] = 0;
  return 0;
}

static void forgotten_expire(mem_ctx_t *c, int64_t now) {
  size_t k = 0;
  for (size_t i = 0; i < c->nforgotten; i++)
    if (now - c->forgotten[i].at < FORGOTTEN_KEEP_MS)
      c->forgotten[k++] = c->forgotten[i];
  c->nforgotten = k;
}

static const forgotten_t *forgotten_find(mem_ctx_t *c, const char *user) {
  forgotten_expire(c, convk_wall_ms());
  for (size_t i = 0; i < c->nforgotten; i++)
    if (strcmp(c->forgotten[i].user, user) == 0)
      return &c->forgotten[i];
  return NULL;
}

/* ---- memory.get ---------------------------------------------------------------- */

static int op_get(jiwa_actor_t *self, mem_ctx_t *c, const jiwa_msg_t *m) {
  char user[CONVK_USER_MAX + 1];
  char summary[4 * 4000 + 1];
  size_t slen = 0;
  c->gets++;
  if (get_user(m, user) == 0) {
    const void *b;
    size_t bl;
    void *owned;
    int rc = mem_load(self, c, user, &b, &bl, &owned);
    if (rc == 0 && b) {
      if (jiwa_memory_decode(b, bl, c->mem) == 0) {
        jiwa_lang_t lang = JIWA_LANG_UNKNOWN;
        char code[8];
        size_t blen;
        const void *body = jiwa_msg_body(m, &blen);
        if (jiwa_mp_get_strcpy(body, blen, "lang", code, sizeof code) == 0)
          lang = jiwa_lang_from_code(code);
        if (lang == JIWA_LANG_UNKNOWN && c->mem->language.set)
          lang = (jiwa_lang_t)c->mem->language.value;
        jiwa_memory_opts_t o = mem_opts(c);
        slen = jiwa_memory_summary(c->mem, convk_wall_ms(), lang,
                                   (size_t)c->summary_chars, &o, summary,
                                   sizeof summary);
        c->hits++;
      } else {
        c->corrupt++;
        jiwa_count(self, "corrupt", 1);
      }
    }
    jiwa_kv_free(owned);
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  convk_put_bin_str(&w.pk, "summary", summary, slen);
  return convk_reply_w(self, m, "memory.summary", &w);
}

/* ---- memory.merge ---------------------------------------------------------------- */

static int op_merge(jiwa_actor_t *self, mem_ctx_t *c, const jiwa_msg_t *m) {
  char user[CONVK_USER_MAX + 1];
  if (get_user(m, user))
    return convk_reply_err(self, m, JIWA_EINVAL,
                           "memory.merge needs user (1..255 bytes)");
  size_t blen;
  const void *body = jiwa_msg_body(m, &blen);
  jiwa_mp_reader_t at;
  if (jiwa_mp_map_find(body, blen, "profile", &at) != 0)
    return convk_reply_err(self, m, JIWA_EINVAL,
                           "memory.merge needs profile (a map)");
  const uint8_t *ps = at.p;
  if (jiwa_mp_skip(&at) != 0)
    return convk_reply_err(self, m, JIWA_EPROTO, "memory.merge: bad profile");
  jiwa_profile_t *p = malloc(sizeof *p);
  if (!p)
    return convk_reply_err(self, m, JIWA_ENOMEM, "memory: out of memory");
  jiwa_profile_report_t rep;
  int rc = jiwa_profile_from_mp(ps, (size_t)(at.p - ps), p, &rep);
  if (rc) {
    char t[400], r[300];
    jiwa_profile_report_str(&rep, r, sizeof r);
    snprintf(t, sizeof t, "memory.merge: profile refused (%s)", r);
    free(p);
    c->merge_errors++;
    return convk_reply_err(self, m, rc, t);
  }
  char src[16] = "model";
  jiwa_mp_get_strcpy(body, blen, "source", src, sizeof src);
  if (strcmp(src, "heuristic") == 0) {
    p->source = JIWA_SRC_HEURISTIC;
    p->confidence = JIWA_PROFILE_HEURISTIC_CONF;
  }
  int64_t now = convk_wall_ms(), as_of = now;
  jiwa_mp_get_int(body, blen, "as_of", &as_of);
  const forgotten_t *fg = forgotten_find(c, user);
  if (fg && as_of <= fg->at) {
    free(p);
    c->refused_stale++;
    return convk_reply_err(self, m, JIWA_ECANCELED,
                           "memory.merge: the user was forgotten after this "
                           "conversation; not merged");
  }
  const void *old;
  size_t oldlen;
  void *owned;
  if ((rc = mem_load(self, c, user, &old, &oldlen, &owned)) != 0) {
    free(p);
    c->merge_errors++;
    return convk_reply_err(self, m, rc, "memory.merge: the store failed");
  }
  jiwa_memory_opts_t o = mem_opts(c);
  char *out = NULL;
  size_t outlen = 0;
  rc = jiwa_memory_merge_mp(old, oldlen, p, now, &o, &out, &outlen);
  jiwa_kv_free(owned);
  free(p);
  if (rc) {
    c->merge_errors++;
    if (rc == JIWA_EPROTO || rc == JIWA_ENOTSUP || rc == JIWA_ETOOBIG)
      c->corrupt++;
    jiwa_log(self, JIWA_LOG_WARN, "memory: merge for a user failed: %s",
             jiwa_strerror(rc));
    return convk_reply_err(self, m, rc,
                           "memory.merge: the stored memory is unreadable; "
                           "it was left as it is");
  }
  wr_t *w = calloc(1, sizeof *w);
  if (!w) {
    free(out);
    return convk_reply_err(self, m, JIWA_ENOMEM, "memory: out of memory");
  }
  w->c = c;
  if (jiwa_memory_decode(out, outlen, c->mem) == 0) {
    w->nfacts = c->mem->nfacts;
    w->nhistory = c->mem->nhistory;
    w->merges = c->mem->merges;
  }
  if (jiwa_msg_kind(m) == JIWA_MSG_ASK)
    w->msg = jiwa_msg_retain(m);
  rc = mem_store(self, c, user, out, outlen, w);
  if (rc) {
    if (w->msg)
      jiwa_msg_release(w->msg);
    free(w);
    c->merge_errors++;
    return convk_reply_err(self, m, rc, "memory.merge: the store is busy");
  }
  c->merges++;
  jiwa_count(self, "merges", 1);
  return 0;
}

/* ---- memory.show ------------------------------------------------------------------ */

static void put_time(msgpack_packer *pk, const char *k, int64_t ms) {
  char iso[32];
  convk_iso_format(ms, iso);
  jiwa_mp_put_kv_str(pk, k, iso);
}

static void put_fact(msgpack_packer *pk, const jiwa_mem_fact_t *f,
                     const jiwa_mem_old_t *old) {
  msgpack_pack_map(pk, old ? 9 : 7);
  jiwa_mp_put_kv_str(pk, "key", f->key);
  jiwa_mp_put_kv_str(pk, "value", f->value);
  jiwa_mp_put_kv_double(pk, "conf", f->conf);
  jiwa_mp_put_kv_str(pk, "source", jiwa_source_name(f->source));
  jiwa_mp_put_kv_int(pk, "seen", f->seen);
  put_time(pk, "first_seen", f->first_seen);
  put_time(pk, "last_seen", f->last_seen);
  if (old) {
    put_time(pk, "replaced_at", old->replaced_at);
    jiwa_mp_put_kv_str(pk, "why", old->why);
  }
}

static void put_items(msgpack_packer *pk, const char *k,
                      const jiwa_mem_item_t *it, unsigned n) {
  jiwa_mp_put_str(pk, k);
  msgpack_pack_array(pk, n);
  for (unsigned i = 0; i < n; i++) {
    msgpack_pack_map(pk, 5);
    jiwa_mp_put_kv_str(pk, "text", it[i].text);
    jiwa_mp_put_kv_int(pk, "count", it[i].count);
    jiwa_mp_put_kv_double(pk, "conf", it[i].conf);
    jiwa_mp_put_kv_str(pk, "source", jiwa_source_name(it[i].source));
    put_time(pk, "last_seen", it[i].last_seen);
  }
}

static int op_show(jiwa_actor_t *self, mem_ctx_t *c, const jiwa_msg_t *m) {
  char user[CONVK_USER_MAX + 1];
  if (get_user(m, user))
    return convk_reply_err(self, m, JIWA_EINVAL,
                           "memory.show needs user (1..255 bytes)");
  const void *b;
  size_t bl;
  void *owned;
  int rc = mem_load(self, c, user, &b, &bl, &owned);
  if (rc)
    return convk_reply_err(self, m, rc, "memory.show: the store failed");
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  if (!b) {
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "user", user);
    jiwa_mp_put_kv_bool(&w.pk, "found", 0);
    return convk_reply_w(self, m, "memory.show", &w);
  }
  rc = jiwa_memory_decode(b, bl, c->mem);
  jiwa_kv_free(owned);
  if (rc) {
    jiwa_mp_writer_free(&w);
    c->corrupt++;
    return convk_reply_err(self, m, rc,
                           "memory.show: the stored memory is unreadable");
  }
  const jiwa_memory_t *mm = c->mem;
  int64_t now = convk_wall_ms();
  jiwa_memory_opts_t o = mem_opts(c);
  char summary[4 * 4000 + 1];
  jiwa_lang_t lang =
      mm->language.set ? (jiwa_lang_t)mm->language.value : JIWA_LANG_EN;
  jiwa_memory_summary(mm, now, lang, (size_t)c->summary_chars, &o, summary,
                      sizeof summary);
  msgpack_pack_map(&w.pk, 14);
  jiwa_mp_put_kv_str(&w.pk, "user", user);
  jiwa_mp_put_kv_bool(&w.pk, "found", 1);
  jiwa_mp_put_kv_str(&w.pk, "summary", summary);
  put_time(&w.pk, "updated", mm->updated);
  jiwa_mp_put_kv_int(&w.pk, "merges", (int64_t)mm->merges);
  jiwa_mp_put_str(&w.pk, "facts");
  msgpack_pack_array(&w.pk, mm->nfacts);
  for (unsigned i = 0; i < mm->nfacts; i++)
    put_fact(&w.pk, &mm->facts[i], NULL);
  jiwa_mp_put_str(&w.pk, "history");
  msgpack_pack_array(&w.pk, mm->nhistory);
  for (unsigned i = 0; i < mm->nhistory; i++)
    put_fact(&w.pk, &mm->history[i].fact, &mm->history[i]);
  jiwa_mp_put_str(&w.pk, "emotion");
  if (mm->emotion.label == JIWA_EMO_NEUTRAL) {
    msgpack_pack_nil(&w.pk);
  } else {
    jiwa_emotion_t now_label;
    double now_int = 0;
    jiwa_memory_emotion_now(mm, now, &o, &now_label, &now_int);
    msgpack_pack_map(&w.pk, 6);
    jiwa_mp_put_kv_str(&w.pk, "label", jiwa_emotion_name(mm->emotion.label));
    jiwa_mp_put_kv_double(&w.pk, "intensity", mm->emotion.intensity);
    jiwa_mp_put_kv_double(&w.pk, "intensity_now", now_int);
    jiwa_mp_put_kv_double(&w.pk, "conf", mm->emotion.conf);
    jiwa_mp_put_kv_str(&w.pk, "source", jiwa_source_name(mm->emotion.source));
    put_time(&w.pk, "at", mm->emotion.at);
  }
  put_items(&w.pk, "goals", mm->goals, mm->ngoals);
  put_items(&w.pk, "signals", mm->signals, mm->nsignals);
  jiwa_mp_put_str(&w.pk, "trust");
  if (!mm->trust.set) {
    msgpack_pack_nil(&w.pk);
  } else {
    msgpack_pack_map(&w.pk, 3);
    jiwa_mp_put_kv_double(&w.pk, "level", mm->trust.level);
    put_time(&w.pk, "updated", mm->trust.updated);
    jiwa_mp_put_str(&w.pk, "evidence");
    msgpack_pack_array(&w.pk, mm->trust.nevidence);
    for (unsigned i = 0; i < mm->trust.nevidence; i++) {
      const jiwa_mem_evidence_t *e = &mm->trust.evidence[i];
      msgpack_pack_map(&w.pk, 4);
      put_time(&w.pk, "at", e->at);
      jiwa_mp_put_kv_double(&w.pk, "level", e->level);
      jiwa_mp_put_kv_str(&w.pk, "source", jiwa_source_name(e->source));
      jiwa_mp_put_kv_str(&w.pk, "text", e->text);
    }
  }
  jiwa_mp_put_str(&w.pk, "language");
  if (mm->language.set)
    jiwa_mp_put_str(&w.pk, jiwa_lang_code((jiwa_lang_t)mm->language.value));
  else
    msgpack_pack_nil(&w.pk);
  jiwa_mp_put_str(&w.pk, "register");
  if (mm->reg.set)
    jiwa_mp_put_str(&w.pk, jiwa_register_name((jiwa_register_t)mm->reg.value));
  else
    msgpack_pack_nil(&w.pk);
  jiwa_mp_put_kv_int(&w.pk, "bytes", (int64_t)bl);
  return convk_reply_w(self, m, "memory.show", &w);
}

/* ---- memory.forget ------------------------------------------------------------------ */

enum { F_MEMORY, F_CONV, F_SHADOW, F_ENRICH, F_N };
static const char *const f_names[F_N] = {"memory", "conversations", "shadow",
                                         "enricher"};

typedef struct {
  mem_ctx_t *c;
  jiwa_msg_t *msg;
  char user[CONVK_USER_MAX + 1];
  int waiting;
  int rc[F_N];
  int absent[F_N];
  int64_t deleted[F_N];
  char err[F_N][160];
} forget_t;

static void forget_maybe_done(jiwa_actor_t *self, mem_ctx_t *c, forget_t *f) {
  if (--f->waiting > 0)
    return;
  int failed = 0;
  for (int i = 0; i < F_N; i++)
    failed += f->rc[i] != 0;
  if (failed) {
    c->forget_failures++;
    char t[1024];
    size_t k = (size_t)snprintf(t, sizeof t,
                                "memory.forget incomplete (run it again):");
    for (int i = 0; i < F_N && k < sizeof t; i++) {
      if (f->rc[i])
        k += (size_t)snprintf(t + k, sizeof t - k, " %s FAILED (%s: %s);",
                              f_names[i], jiwa_err_name(f->rc[i]), f->err[i]);
      else
        k += (size_t)snprintf(t + k, sizeof t - k, " %s deleted %lld;",
                              f_names[i], (long long)f->deleted[i]);
    }
    convk_reply_err(self, f->msg, JIWA_EIO, t);
  } else {
    c->forgets++;
    int nabsent = 0;
    for (int i = 0; i < F_N; i++)
      nabsent += f->absent[i];
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, nabsent ? 3 : 2);
    jiwa_mp_put_kv_str(&w.pk, "user", f->user);
    jiwa_mp_put_str(&w.pk, "deleted");
    msgpack_pack_map(&w.pk, 3);
    for (int i = 0; i < F_ENRICH; i++)
      jiwa_mp_put_kv_int(&w.pk, f_names[i], f->deleted[i]);
    if (nabsent) {
      jiwa_mp_put_str(&w.pk, "absent");
      msgpack_pack_array(&w.pk, (uint32_t)nabsent);
      for (int i = 0; i < F_N; i++)
        if (f->absent[i])
          jiwa_mp_put_str(&w.pk, f_names[i]);
    }
    jiwa_reply(self, f->msg, "memory.forgotten", w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
  }
  jiwa_msg_release(f->msg);
  free(f);
}

typedef struct {
  forget_t *f;
  int which;
} fpart_t;

static void forget_reply(jiwa_actor_t *self, void *vctx,
                         const jiwa_msg_t *reply, void *ud) {
  fpart_t *p = ud;
  if (jiwa_msg_kind(reply) == JIWA_MSG_DELTA)
    return;
  forget_t *f = p->f;
  int i = p->which;
  if (jiwa_msg_kind(reply) == JIWA_MSG_ERROR) {
    const char *t = "";
    int code = jiwa_msg_error(reply, &t);
    if (code == JIWA_ENOENT && strstr(t ? t : "", "no such actor")) {
      f->absent[i] = 1;
    } else {
      f->rc[i] = code ? code : JIWA_EIO;
      snprintf(f->err[i], sizeof f->err[i], "%s", t ? t : "");
    }
  } else {
    int64_t n = 0;
    size_t len;
    const void *b = jiwa_msg_body(reply, &len);
    if (jiwa_mp_get_int(b, len, "deleted", &n) != 0)
      jiwa_mp_get_int(b, len, "dropped", &n);
    f->deleted[i] = n;
  }
  free(p);
  forget_maybe_done(self, vctx, f);
}

static void forget_mem_done(jiwa_actor_t *self, mem_ctx_t *c, void *ud,
                            int status) {
  forget_t *f = ud;
  if (status) {
    f->rc[F_MEMORY] = status;
    snprintf(f->err[F_MEMORY], sizeof f->err[F_MEMORY],
             "the delete did not commit");
    f->deleted[F_MEMORY] = 0;
  }
  forget_maybe_done(self, c, f);
}

static void forget_ask(jiwa_actor_t *self, mem_ctx_t *c, forget_t *f,
                       int which, const char *actor, const char *type) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_str(&w.pk, "user", f->user);
  fpart_t *p = malloc(sizeof *p);
  int rc = JIWA_ENOMEM;
  f->waiting++;
  if (p) {
    p->f = f;
    p->which = which;
    rc = jiwa_ask(self, actor, type, w.sbuf.data, w.sbuf.size,
                  (uint32_t)c->forget_timeout_ms, forget_reply, p);
  }
  jiwa_mp_writer_free(&w);
  if (rc) {
    free(p);
    if (rc == JIWA_ENOENT) {
      f->absent[which] = 1;
    } else {
      f->rc[which] = rc;
      snprintf(f->err[which], sizeof f->err[which], "%s", jiwa_strerror(rc));
    }
    f->waiting--;
  }
}

static int op_forget(jiwa_actor_t *self, mem_ctx_t *c, const jiwa_msg_t *m) {
  forget_t *f = calloc(1, sizeof *f);
  if (!f)
    return convk_reply_err(self, m, JIWA_ENOMEM, "memory: out of memory");
  if (get_user(m, f->user)) {
    free(f);
    return convk_reply_err(self, m, JIWA_EINVAL,
                           "memory.forget needs user (1..255 bytes)");
  }
  f->c = c;
  f->msg = jiwa_msg_retain(m);
  f->waiting = 1; /* held until every part is started */
  /* remember the forget: merges of older conversations are refused */
  int64_t now = convk_wall_ms();
  forgotten_expire(c, now);
  forgotten_t *slot = NULL;
  for (size_t i = 0; i < c->nforgotten && !slot; i++)
    if (strcmp(c->forgotten[i].user, f->user) == 0)
      slot = &c->forgotten[i];
  if (!slot && c->nforgotten < FORGOTTEN_MAX)
    slot = &c->forgotten[c->nforgotten++];
  if (!slot) { /* full: the oldest goes */
    memmove(c->forgotten, c->forgotten + 1,
            (FORGOTTEN_MAX - 1) * sizeof *c->forgotten);
    slot = &c->forgotten[FORGOTTEN_MAX - 1];
  }
  snprintf(slot->user, sizeof slot->user, "%s", f->user);
  slot->at = now;

  forget_ask(self, c, f, F_ENRICH, c->enricher_actor, "enrich.forget");
  forget_ask(self, c, f, F_CONV, c->convlog_actor, "conversations.forget");
  forget_ask(self, c, f, F_SHADOW, c->shadow_actor, "shadow.forget");
  /* the memory itself */
  const void *b;
  size_t bl;
  void *owned;
  if (mem_load(self, c, f->user, &b, &bl, &owned) == 0)
    f->deleted[F_MEMORY] = b != NULL;
  jiwa_kv_free(owned);
  wr_t *w = calloc(1, sizeof *w);
  int rc = JIWA_ENOMEM;
  f->waiting++;
  if (w) {
    w->c = c;
    w->then = forget_mem_done;
    w->then_ud = f;
    rc = mem_store(self, c, f->user, NULL, 0, w);
    if (rc)
      free(w);
  }
  if (rc) {
    f->rc[F_MEMORY] = rc;
    snprintf(f->err[F_MEMORY], sizeof f->err[F_MEMORY], "%s",
             jiwa_strerror(rc));
    f->waiting--;
  }
  forget_maybe_done(self, c, f);
  return 0;
}

/* ---- plugin ---------------------------------------------------------------------- */

static int op_stats(jiwa_actor_t *self, mem_ctx_t *c, const jiwa_msg_t *m) {
  unsigned pending = 0;
  for (ovl_t *o = c->ovl; o; o = o->next)
    pending += o->pending;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 9);
  jiwa_mp_put_kv_int(&w.pk, "gets", (int64_t)c->gets);
  jiwa_mp_put_kv_int(&w.pk, "hits", (int64_t)c->hits);
  jiwa_mp_put_kv_int(&w.pk, "merges", (int64_t)c->merges);
  jiwa_mp_put_kv_int(&w.pk, "merge_errors", (int64_t)c->merge_errors);
  jiwa_mp_put_kv_int(&w.pk, "corrupt", (int64_t)c->corrupt);
  jiwa_mp_put_kv_int(&w.pk, "refused_stale", (int64_t)c->refused_stale);
  jiwa_mp_put_kv_int(&w.pk, "forgets", (int64_t)c->forgets);
  jiwa_mp_put_kv_int(&w.pk, "forget_failures", (int64_t)c->forget_failures);
  jiwa_mp_put_kv_int(&w.pk, "writes_pending", pending);
  return convk_reply_w(self, m, "memory.stats", &w);
}

static int mem_init(jiwa_actor_t *self, void *vctx) {
  (void)self;
  mem_ctx_t *c = vctx;
  c->mem = malloc(sizeof *c->mem);
  c->forgotten = calloc(FORGOTTEN_MAX, sizeof *c->forgotten);
  if (!c->mem || !c->forgotten) {
    free(c->mem);
    free(c->forgotten);
    c->mem = NULL;
    c->forgotten = NULL;
    return JIWA_ENOMEM;
  }
  return 0;
}

static int mem_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  mem_ctx_t *c = vctx;
  jiwa_msg_kind_t kind = jiwa_msg_kind(m);
  if (kind != JIWA_MSG_ASK && kind != JIWA_MSG_TELL)
    return 0;
  const char *t = jiwa_msg_type(m);
  if (strcmp(t, "memory.get") == 0)
    return kind == JIWA_MSG_ASK ? op_get(self, c, m) : 0;
  if (strcmp(t, "memory.merge") == 0)
    return op_merge(self, c, m);
  if (kind != JIWA_MSG_ASK)
    return 0;
  if (strcmp(t, "memory.show") == 0)
    return op_show(self, c, m);
  if (strcmp(t, "memory.forget") == 0)
    return op_forget(self, c, m);
  if (strcmp(t, "memory.stats") == 0)
    return op_stats(self, c, m);
  return convk_reply_err(self, m, JIWA_ENOTSUP,
                         "memory answers memory.get|merge|show|forget|stats");
}

static void mem_fini(jiwa_actor_t *self, void *vctx) {
  (void)self;
  mem_ctx_t *c = vctx;
  while (c->ovl)
    ovl_drop(c, c->ovl);
  free(c->mem);
  free(c->forgotten);
}

static const jiwa_plugin_desc_t mem_desc = {
    JIWA_DESC_HEADER,
    .name = "memory",
    .version = "1.0.0",
    .description = "JIWA user memory: summary for the model, merge with "
                   "history, show, forget everywhere",
    .config = mem_config,
    .ctx_size = sizeof(mem_ctx_t),
    .init = mem_init,
    .receive = mem_receive,
    .fini = mem_fini,
};

JIWA_PLUGIN(mem_desc)
