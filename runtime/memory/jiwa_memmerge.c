/* A user's JIWA memory: codec, merge and summary (see jiwa_memmerge.h). */
#include "jiwa_memmerge.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa/mp.h"
#include "jiwa_textnorm.h"

#define DAY_MS (24LL * 3600 * 1000)
#define RECENCY_HALF_LIFE_MS (30 * DAY_MS)

static int64_t half_life(const jiwa_memory_opts_t *o) {
  return o && o->emotion_half_life_ms > 0 ? o->emotion_half_life_ms : DAY_MS;
}

/* 2^-(age / half-life) for the time from @p then to @p now. Computed in
 * double: stored timestamps are outside data and may be anything. */
static double decay(int64_t now, int64_t then, int64_t hl_ms) {
  double age = (double)now - (double)then;
  if (!(age > 0))
    return 1.0;
  return exp2(-age / (double)hl_ms);
}

void jiwa_memory_init(jiwa_memory_t *m) { memset(m, 0, sizeof *m); }

const jiwa_mem_fact_t *jiwa_memory_fact(const jiwa_memory_t *m,
                                        const char *key) {
  if (!m || !key)
    return NULL;
  for (unsigned i = 0; i < m->nfacts && i < JIWA_MEMORY_MAX_FACTS; i++)
    if (strcmp(m->facts[i].key, key) == 0)
      return &m->facts[i];
  return NULL;
}

void jiwa_memory_emotion_now(const jiwa_memory_t *m, int64_t now,
                             const jiwa_memory_opts_t *opts,
                             jiwa_emotion_t *label, double *intensity) {
  jiwa_emotion_t l = JIWA_EMO_NEUTRAL;
  double x = 0;
  if (m && m->emotion.label != JIWA_EMO_NEUTRAL) {
    x = m->emotion.intensity * decay(now, m->emotion.at, half_life(opts));
    if (x >= JIWA_MEMORY_EMOTION_FLOOR)
      l = m->emotion.label;
    else
      x = 0;
  }
  if (label)
    *label = l;
  if (intensity)
    *intensity = x;
}

/* ---- comparing texts ----------------------------------------------------- */

/* Same value: equal once normalised (case, accents, punctuation, spaces). */
static int same_text(const char *a, const char *b) {
  char na[1024], nb[1024];
  size_t la = jiwa_text_normalize(a, strlen(a), na, sizeof na);
  size_t lb = jiwa_text_normalize(b, strlen(b), nb, sizeof nb);
  if (!la && !lb)
    return strcmp(a, b) == 0;
  return la == lb && memcmp(na, nb, la) == 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static size_t token_set(const char *s, uint64_t *h, size_t cap) {
  jiwa_text_iter_t it;
  jiwa_token_t t;
  size_t n = 0;
  jiwa_text_iter_init(&it, s, strlen(s));
  while (n < cap && jiwa_text_next(&it, &t))
    h[n++] = jiwa_text_hash64(t.s, t.len, 0x6a6d);
  qsort(h, n, sizeof *h, cmp_u64);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (!u || h[u - 1] != h[i])
      h[u++] = h[i];
  return u;
}

/* A goal's word set, computed once per merge. */
typedef struct {
  uint64_t h[64];
  size_t n;
} gset_t;

/* Two goals are the same when their word sets mostly coincide (equal
 * normalised texts have equal sets); goals without words compare as
 * bytes. */
static int same_goal(const char *a, const gset_t *sa, const char *b,
                     const gset_t *sb) {
  if (!sa->n || !sb->n)
    return !sa->n && !sb->n && strcmp(a, b) == 0;
  size_t i = 0, j = 0, inter = 0;
  while (i < sa->n && j < sb->n) {
    if (sa->h[i] == sb->h[j])
      inter++, i++, j++;
    else if (sa->h[i] < sb->h[j])
      i++;
    else
      j++;
  }
  return (double)inter / (double)(sa->n + sb->n - inter) >= 0.75;
}

static int eq_ci(const char *a, const char *b) {
  for (; *a && *b; a++, b++) {
    char x = *a >= 'A' && *a <= 'Z' ? *a + 32 : *a;
    char y = *b >= 'A' && *b <= 'Z' ? *b + 32 : *b;
    if (x != y)
      return 0;
  }
  return !*a && !*b;
}

/* ---- merge ------------------------------------------------------------------ */

static double reinforce(double conf, double obs) {
  double c = 1 - (1 - conf) * (1 - obs / 2);
  return c > 0.99 ? 0.99 : c;
}

static void push_history(jiwa_memory_t *m, const jiwa_mem_fact_t *f,
                         int64_t now, const char *why) {
  if (m->nhistory >= JIWA_MEMORY_MAX_HISTORY) {
    memmove(&m->history[0], &m->history[1],
            (JIWA_MEMORY_MAX_HISTORY - 1) * sizeof m->history[0]);
    m->nhistory = JIWA_MEMORY_MAX_HISTORY - 1;
  }
  jiwa_mem_old_t *h = &m->history[m->nhistory++];
  memset(h, 0, sizeof *h);
  h->fact = *f;
  h->replaced_at = now;
  jiwa_profile_clean(why, strlen(why), JIWA_MEMORY_WHY_CHARS, h->why,
                     sizeof h->why, NULL);
}

static void set_fact(jiwa_mem_fact_t *f, const char *key, const char *value,
                     double conf, jiwa_source_t src, int64_t now) {
  memset(f, 0, sizeof *f);
  snprintf(f->key, sizeof f->key, "%s", key);
  snprintf(f->value, sizeof f->value, "%s", value);
  f->conf = conf;
  f->first_seen = f->last_seen = now;
  f->source = src;
  f->seen = 1;
}

static void merge_fact(jiwa_memory_t *m, const char *key, const char *value,
                       double conf, jiwa_source_t src, int64_t now) {
  char why[320];
  for (unsigned i = 0; i < m->nfacts; i++) {
    jiwa_mem_fact_t *f = &m->facts[i];
    if (strcmp(f->key, key) != 0)
      continue;
    if (same_text(f->value, value)) {
      f->last_seen = now;
      if (f->seen < UINT32_MAX)
        f->seen++;
      f->conf = reinforce(f->conf, conf);
      if (src == JIWA_SRC_MODEL)
        f->source = JIWA_SRC_MODEL;
    } else if (src == JIWA_SRC_MODEL || f->source == JIWA_SRC_HEURISTIC ||
               f->conf <= conf) {
      char nv[JIWA_PROFILE_BUF(64)];
      jiwa_profile_clean(value, strlen(value), 64, nv, sizeof nv, NULL);
      snprintf(why, sizeof why, "replaced by %s: '%s'", jiwa_source_name(src),
               nv);
      push_history(m, f, now, why);
      set_fact(f, key, value, conf, src, now);
    } else {
      f->conf *= 0.8; /* a weak contradiction erodes, repeated ones win */
    }
    return;
  }
  if (m->nfacts >= JIWA_MEMORY_MAX_FACTS) {
    unsigned v = 0;
    for (unsigned i = 1; i < m->nfacts; i++) {
      const jiwa_mem_fact_t *a = &m->facts[i], *b = &m->facts[v];
      if (a->conf < b->conf ||
          (a->conf == b->conf && a->last_seen < b->last_seen))
        v = i;
    }
    push_history(m, &m->facts[v], now, "evicted: memory full");
    memmove(&m->facts[v], &m->facts[v + 1],
            (m->nfacts - v - 1) * sizeof m->facts[0]);
    m->nfacts--;
  }
  set_fact(&m->facts[m->nfacts++], key, value, conf, src, now);
}

/* Add to a list of counted items (signals, goals). For goals, @p sets
 * holds the word set of each item (kept in step) and @p set the new one's. */
static void merge_item(jiwa_mem_item_t *items, unsigned *n, unsigned max,
                       const char *text, double conf, jiwa_source_t src,
                       int64_t now, gset_t *sets, const gset_t *set) {
  for (unsigned i = 0; i < *n; i++) {
    jiwa_mem_item_t *it = &items[i];
    if (sets ? same_goal(it->text, &sets[i], text, set)
             : eq_ci(it->text, text)) {
      if (it->count < UINT32_MAX)
        it->count++;
      it->last_seen = now;
      it->conf = reinforce(it->conf, conf);
      if (src == JIWA_SRC_MODEL)
        it->source = JIWA_SRC_MODEL;
      return;
    }
  }
  if (*n >= max) {
    unsigned v = 0;
    for (unsigned i = 1; i < *n; i++)
      if (items[i].count < items[v].count ||
          (items[i].count == items[v].count &&
           items[i].last_seen < items[v].last_seen))
        v = i;
    memmove(&items[v], &items[v + 1], (*n - v - 1) * sizeof items[0]);
    if (sets)
      memmove(&sets[v], &sets[v + 1], (*n - v - 1) * sizeof sets[0]);
    (*n)--;
  }
  if (sets)
    sets[*n] = *set;
  jiwa_mem_item_t *it = &items[(*n)++];
  memset(it, 0, sizeof *it);
  snprintf(it->text, sizeof it->text, "%s", text);
  it->count = 1;
  it->first_seen = it->last_seen = now;
  it->conf = conf;
  it->source = src;
}

static void merge_choice(jiwa_mem_choice_t *c, int value, double conf,
                         jiwa_source_t src, int64_t now) {
  if (c->set && c->value == value) {
    c->conf = reinforce(c->conf, conf);
    c->at = now;
    if (src == JIWA_SRC_MODEL)
      c->source = JIWA_SRC_MODEL;
  } else if (!c->set || src == JIWA_SRC_MODEL ||
             c->source == JIWA_SRC_HEURISTIC || c->conf <= conf) {
    c->set = 1;
    c->value = value;
    c->conf = conf;
    c->at = now;
    c->source = src;
  } else {
    c->conf *= 0.8;
  }
}

int jiwa_memory_merge(jiwa_memory_t *m, const jiwa_profile_t *p, int64_t now,
                      const jiwa_memory_opts_t *opts) {
  if (!m || !p || !(p->confidence >= 0 && p->confidence <= 1) ||
      m->nfacts > JIWA_MEMORY_MAX_FACTS ||
      m->nhistory > JIWA_MEMORY_MAX_HISTORY ||
      m->nsignals > JIWA_MEMORY_MAX_SIGNALS ||
      m->ngoals > JIWA_MEMORY_MAX_GOALS ||
      m->trust.nevidence > JIWA_MEMORY_MAX_EVIDENCE)
    return JIWA_EINVAL;
  double conf = p->confidence;
  jiwa_source_t src = p->source == JIWA_SRC_HEURISTIC ? JIWA_SRC_HEURISTIC
                                                      : JIWA_SRC_MODEL;
  char buf[JIWA_PROFILE_BUF(JIWA_PROFILE_EVIDENCE_CHARS)];
  /* allocated before anything changes: a failure leaves @p m untouched */
  gset_t *sets = NULL;
  if ((p->present & JIWA_PROFILE_HAS_GOALS) && p->ngoals &&
      !(sets = malloc((JIWA_MEMORY_MAX_GOALS + 1) * sizeof *sets)))
    return JIWA_ENOMEM;

  if ((p->present & JIWA_PROFILE_HAS_EMOTION) &&
      p->emotion.label > JIWA_EMO_NEUTRAL && p->emotion.label < JIWA_EMO_COUNT) {
    m->emotion.label = p->emotion.label;
    double x = p->emotion.intensity;
    m->emotion.intensity = x >= 0 && x <= 1 ? x : x > 1 ? 1 : 0;
    m->emotion.at = now;
    m->emotion.conf = conf;
    m->emotion.source = src;
  } else if (m->emotion.label != JIWA_EMO_NEUTRAL) {
    jiwa_emotion_t l;
    jiwa_memory_emotion_now(m, now, opts, &l, NULL);
    if (l == JIWA_EMO_NEUTRAL)
      memset(&m->emotion, 0, sizeof m->emotion);
  }

  if (p->present & JIWA_PROFILE_HAS_FACTS)
    for (unsigned i = 0; i < p->nfacts && i < JIWA_PROFILE_MAX_FACTS; i++) {
      char v[sizeof p->facts[i].value];
      /* the profile should be clean already; make sure of it */
      if (!jiwa_profile_clean(p->facts[i].value, strnlen(p->facts[i].value,
                                                         sizeof v),
                              JIWA_PROFILE_VALUE_CHARS, v, sizeof v, NULL) ||
          !p->facts[i].key[0] || memchr(p->facts[i].key, 0,
                                        sizeof p->facts[i].key) == NULL)
        continue;
      merge_fact(m, p->facts[i].key, v, conf, src, now);
    }

  if (p->present & JIWA_PROFILE_HAS_SIGNALS)
    for (unsigned i = 0; i < p->nsignals && i < JIWA_PROFILE_MAX_SIGNALS; i++)
      if (jiwa_profile_clean(p->signals[i],
                             strnlen(p->signals[i], sizeof p->signals[i]),
                             JIWA_PROFILE_SIGNAL_CHARS, buf, sizeof buf, NULL))
        merge_item(m->signals, &m->nsignals, JIWA_MEMORY_MAX_SIGNALS, buf,
                   conf, src, now, NULL, NULL);

  if (sets) {
    for (unsigned i = 0; i < m->ngoals; i++)
      sets[i].n = token_set(m->goals[i].text, sets[i].h, 64);
    gset_t *nset = &sets[JIWA_MEMORY_MAX_GOALS];
    for (unsigned i = 0; i < p->ngoals && i < JIWA_PROFILE_MAX_GOALS; i++)
      if (jiwa_profile_clean(p->goals[i], strnlen(p->goals[i], sizeof p->goals[i]),
                             JIWA_PROFILE_GOAL_CHARS, buf, sizeof buf, NULL)) {
        nset->n = token_set(buf, nset->h, 64);
        merge_item(m->goals, &m->ngoals, JIWA_MEMORY_MAX_GOALS, buf, conf, src,
                   now, sets, nset);
      }
    free(sets);
  }

  if (p->present & JIWA_PROFILE_HAS_TRUST) {
    double obs = p->trust.level;
    obs = obs >= 0 && obs <= 1 ? obs : obs > 1 ? 1 : 0;
    double alpha = (opts && opts->trust_alpha > 0 && opts->trust_alpha <= 1
                        ? opts->trust_alpha
                        : 0.5) *
                   conf;
    m->trust.level = m->trust.set ? m->trust.level + alpha * (obs - m->trust.level)
                                  : obs;
    if (m->trust.level < 0)
      m->trust.level = 0;
    if (m->trust.level > 1)
      m->trust.level = 1;
    m->trust.set = 1;
    m->trust.updated = now;
    if (m->trust.nevidence >= JIWA_MEMORY_MAX_EVIDENCE) {
      memmove(&m->trust.evidence[0], &m->trust.evidence[1],
              (JIWA_MEMORY_MAX_EVIDENCE - 1) * sizeof m->trust.evidence[0]);
      m->trust.nevidence = JIWA_MEMORY_MAX_EVIDENCE - 1;
    }
    jiwa_mem_evidence_t *e = &m->trust.evidence[m->trust.nevidence++];
    memset(e, 0, sizeof *e);
    e->at = now;
    e->level = obs;
    e->source = src;
    jiwa_profile_clean(p->trust.evidence,
                       strnlen(p->trust.evidence, sizeof p->trust.evidence),
                       JIWA_PROFILE_EVIDENCE_CHARS, e->text, sizeof e->text,
                       NULL);
  }

  if ((p->present & JIWA_PROFILE_HAS_LANGUAGE) &&
      (p->language == JIWA_LANG_EN || p->language == JIWA_LANG_ID ||
       p->language == JIWA_LANG_IT))
    merge_choice(&m->language, (int)p->language, conf, src, now);
  if ((p->present & JIWA_PROFILE_HAS_REGISTER) &&
      (p->reg == JIWA_REG_FORMAL || p->reg == JIWA_REG_CASUAL))
    merge_choice(&m->reg, (int)p->reg, conf, src, now);

  m->updated = now;
  m->merges++;
  return 0;
}

/* ---- encode ------------------------------------------------------------------- */

static void put_fact_fields(msgpack_packer *pk, const jiwa_mem_fact_t *f) {
  jiwa_mp_put_kv_str(pk, "key", f->key);
  jiwa_mp_put_kv_str(pk, "value", f->value);
  jiwa_mp_put_kv_double(pk, "conf", f->conf);
  jiwa_mp_put_kv_int(pk, "first_seen", f->first_seen);
  jiwa_mp_put_kv_int(pk, "last_seen", f->last_seen);
  jiwa_mp_put_kv_str(pk, "source", jiwa_source_name(f->source));
  jiwa_mp_put_kv_int(pk, "seen", f->seen);
}

static void put_items(msgpack_packer *pk, const char *name,
                      const jiwa_mem_item_t *it, unsigned n) {
  jiwa_mp_put_str(pk, name);
  msgpack_pack_array(pk, n);
  for (unsigned i = 0; i < n; i++) {
    msgpack_pack_map(pk, 6);
    jiwa_mp_put_kv_str(pk, "text", it[i].text);
    jiwa_mp_put_kv_int(pk, "count", it[i].count);
    jiwa_mp_put_kv_int(pk, "first_seen", it[i].first_seen);
    jiwa_mp_put_kv_int(pk, "last_seen", it[i].last_seen);
    jiwa_mp_put_kv_double(pk, "conf", it[i].conf);
    jiwa_mp_put_kv_str(pk, "source", jiwa_source_name(it[i].source));
  }
}

static void put_choice(msgpack_packer *pk, const char *name,
                       const jiwa_mem_choice_t *c, const char *value) {
  jiwa_mp_put_str(pk, name);
  msgpack_pack_map(pk, 4);
  jiwa_mp_put_kv_str(pk, "value", value);
  jiwa_mp_put_kv_double(pk, "conf", c->conf);
  jiwa_mp_put_kv_int(pk, "at", c->at);
  jiwa_mp_put_kv_str(pk, "source", jiwa_source_name(c->source));
}

int jiwa_memory_encode(const jiwa_memory_t *m, char **out, size_t *outlen) {
  if (out)
    *out = NULL;
  if (!m || !out || !outlen || m->nfacts > JIWA_MEMORY_MAX_FACTS ||
      m->nhistory > JIWA_MEMORY_MAX_HISTORY ||
      m->nsignals > JIWA_MEMORY_MAX_SIGNALS ||
      m->ngoals > JIWA_MEMORY_MAX_GOALS ||
      m->trust.nevidence > JIWA_MEMORY_MAX_EVIDENCE)
    return JIWA_EINVAL;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_packer *pk = &w.pk;
  int has_emo = m->emotion.label > JIWA_EMO_NEUTRAL &&
                m->emotion.label < JIWA_EMO_COUNT;
  msgpack_pack_map(pk, 7 + has_emo + !!m->trust.set + !!m->language.set +
                           !!m->reg.set);
  jiwa_mp_put_kv_int(pk, "v", JIWA_MEMORY_VERSION);
  jiwa_mp_put_kv_int(pk, "updated", m->updated);
  jiwa_mp_put_str(pk, "merges");
  msgpack_pack_uint64(pk, m->merges);
  jiwa_mp_put_str(pk, "facts");
  msgpack_pack_array(pk, m->nfacts);
  for (unsigned i = 0; i < m->nfacts; i++) {
    msgpack_pack_map(pk, 7);
    put_fact_fields(pk, &m->facts[i]);
  }
  jiwa_mp_put_str(pk, "history");
  msgpack_pack_array(pk, m->nhistory);
  for (unsigned i = 0; i < m->nhistory; i++) {
    msgpack_pack_map(pk, 9);
    put_fact_fields(pk, &m->history[i].fact);
    jiwa_mp_put_kv_int(pk, "replaced_at", m->history[i].replaced_at);
    jiwa_mp_put_kv_str(pk, "why", m->history[i].why);
  }
  put_items(pk, "signals", m->signals, m->nsignals);
  put_items(pk, "goals", m->goals, m->ngoals);
  if (has_emo) {
    jiwa_mp_put_str(pk, "emotion");
    msgpack_pack_map(pk, 5);
    jiwa_mp_put_kv_str(pk, "label", jiwa_emotion_name(m->emotion.label));
    jiwa_mp_put_kv_double(pk, "intensity", m->emotion.intensity);
    jiwa_mp_put_kv_int(pk, "at", m->emotion.at);
    jiwa_mp_put_kv_double(pk, "conf", m->emotion.conf);
    jiwa_mp_put_kv_str(pk, "source", jiwa_source_name(m->emotion.source));
  }
  if (m->trust.set) {
    jiwa_mp_put_str(pk, "trust");
    msgpack_pack_map(pk, 3);
    jiwa_mp_put_kv_double(pk, "level", m->trust.level);
    jiwa_mp_put_kv_int(pk, "updated", m->trust.updated);
    jiwa_mp_put_str(pk, "evidence");
    msgpack_pack_array(pk, m->trust.nevidence);
    for (unsigned i = 0; i < m->trust.nevidence; i++) {
      const jiwa_mem_evidence_t *e = &m->trust.evidence[i];
      msgpack_pack_map(pk, 4);
      jiwa_mp_put_kv_int(pk, "at", e->at);
      jiwa_mp_put_kv_double(pk, "level", e->level);
      jiwa_mp_put_kv_str(pk, "source", jiwa_source_name(e->source));
      jiwa_mp_put_kv_str(pk, "text", e->text);
    }
  }
  if (m->language.set)
    put_choice(pk, "language", &m->language,
               jiwa_lang_code((jiwa_lang_t)m->language.value));
  if (m->reg.set)
    put_choice(pk, "register", &m->reg,
               jiwa_register_name((jiwa_register_t)m->reg.value));
  if (!w.sbuf.data) {
    jiwa_mp_writer_free(&w);
    return JIWA_ENOMEM;
  }
  *out = w.sbuf.data;
  *outlen = w.sbuf.size;
  return 0;
}

/* ---- decode ---------------------------------------------------------------------- */

typedef struct {
  jiwa_mp_reader_t r;
} rd_t;

#define TRY(x)                                                                 \
  do {                                                                         \
    if (x)                                                                     \
      return JIWA_EPROTO;                                                      \
  } while (0)

static int rd_key(rd_t *d, char *k, size_t cap) {
  jiwa_mp_item_t it;
  TRY(jiwa_mp_next(&d->r, &it));
  if (it.type != JIWA_MP_STR || it.v.s.len >= cap) {
    /* keys we never write: keep the reader right, report a foreign key */
    if (it.type == JIWA_MP_ARRAY || it.type == JIWA_MP_MAP)
      return JIWA_EPROTO;
    k[0] = 0;
    return 0;
  }
  memcpy(k, it.v.s.ptr, it.v.s.len);
  k[it.v.s.len] = 0;
  return 0;
}

static int rd_int(rd_t *d, int64_t *v) {
  jiwa_mp_item_t it;
  TRY(jiwa_mp_next(&d->r, &it));
  if (it.type == JIWA_MP_INT)
    *v = it.v.i;
  else if (it.type == JIWA_MP_UINT && it.v.u <= INT64_MAX)
    *v = (int64_t)it.v.u;
  else
    return JIWA_EPROTO;
  return 0;
}

static int rd_u32(rd_t *d, uint32_t *v, uint32_t min) {
  int64_t x;
  TRY(rd_int(d, &x));
  if (x < min || x > UINT32_MAX)
    return JIWA_EPROTO;
  *v = (uint32_t)x;
  return 0;
}

/* A double in 0..1 (what the encoder writes for conf/level/intensity). */
static int rd_unit(rd_t *d, double *v) {
  jiwa_mp_item_t it;
  TRY(jiwa_mp_next(&d->r, &it));
  if (it.type != JIWA_MP_FLOAT || !(it.v.f >= 0 && it.v.f <= 1))
    return JIWA_EPROTO;
  *v = it.v.f;
  return 0;
}

/* A clean string of at most @p max_chars (as the encoder writes). */
static int rd_text(rd_t *d, char *dst, size_t cap, size_t max_chars,
                   int allow_empty) {
  jiwa_mp_item_t it;
  TRY(jiwa_mp_next(&d->r, &it));
  if (it.type != JIWA_MP_STR || it.v.s.len >= cap)
    return JIWA_EPROTO;
  int changed;
  size_t n = jiwa_profile_clean(it.v.s.ptr, it.v.s.len, max_chars, dst, cap,
                                &changed);
  if (changed || (!n && !allow_empty))
    return JIWA_EPROTO;
  return 0;
}

static int rd_source(rd_t *d, jiwa_source_t *s) {
  char v[16];
  jiwa_mp_item_t it;
  TRY(jiwa_mp_next(&d->r, &it));
  if (it.type != JIWA_MP_STR || it.v.s.len >= sizeof v)
    return JIWA_EPROTO;
  memcpy(v, it.v.s.ptr, it.v.s.len);
  v[it.v.s.len] = 0;
  if (!strcmp(v, "model"))
    *s = JIWA_SRC_MODEL;
  else if (!strcmp(v, "heuristic"))
    *s = JIWA_SRC_HEURISTIC;
  else
    return JIWA_EPROTO;
  return 0;
}

static int rd_map(rd_t *d, uint32_t *n) {
  jiwa_mp_item_t it;
  TRY(jiwa_mp_next(&d->r, &it));
  if (it.type != JIWA_MP_MAP)
    return JIWA_EPROTO;
  *n = it.v.count;
  return 0;
}

static int rd_array(rd_t *d, uint32_t *n, uint32_t max) {
  jiwa_mp_item_t it;
  TRY(jiwa_mp_next(&d->r, &it));
  if (it.type != JIWA_MP_ARRAY || it.v.count > max)
    return JIWA_EPROTO;
  *n = it.v.count;
  return 0;
}

static int valid_key(const char *k) {
  if (!(k[0] >= 'a' && k[0] <= 'z'))
    return 0;
  for (const char *p = k; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
      return 0;
  return 1;
}

/* A fact map (7 fields) or a history map (9 fields). */
static int rd_fact(rd_t *d, jiwa_mem_fact_t *f, jiwa_mem_old_t *h) {
  uint32_t n;
  unsigned got = 0;
  TRY(rd_map(d, &n));
  for (uint32_t i = 0; i < n; i++) {
    char k[16];
    TRY(rd_key(d, k, sizeof k));
    unsigned bit;
    int rc;
    if (!strcmp(k, "key")) {
      bit = 1;
      rc = rd_text(d, f->key, sizeof f->key, JIWA_PROFILE_KEY_MAX, 0);
      if (!rc && !valid_key(f->key))
        rc = JIWA_EPROTO;
    } else if (!strcmp(k, "value")) {
      bit = 2;
      rc = rd_text(d, f->value, sizeof f->value, JIWA_PROFILE_VALUE_CHARS, 0);
    } else if (!strcmp(k, "conf")) {
      bit = 4;
      rc = rd_unit(d, &f->conf);
    } else if (!strcmp(k, "first_seen")) {
      bit = 8;
      rc = rd_int(d, &f->first_seen);
    } else if (!strcmp(k, "last_seen")) {
      bit = 16;
      rc = rd_int(d, &f->last_seen);
    } else if (!strcmp(k, "source")) {
      bit = 32;
      rc = rd_source(d, &f->source);
    } else if (!strcmp(k, "seen")) {
      bit = 64;
      rc = rd_u32(d, &f->seen, 1);
    } else if (h && !strcmp(k, "replaced_at")) {
      bit = 128;
      rc = rd_int(d, &h->replaced_at);
    } else if (h && !strcmp(k, "why")) {
      bit = 256;
      rc = rd_text(d, h->why, sizeof h->why, JIWA_MEMORY_WHY_CHARS, 1);
    } else {
      bit = 0;
      rc = jiwa_mp_skip(&d->r) ? JIWA_EPROTO : 0;
    }
    if (rc || (got & bit))
      return JIWA_EPROTO;
    got |= bit;
  }
  return got == (h ? 511u : 127u) ? 0 : JIWA_EPROTO;
}

static int rd_items(rd_t *d, jiwa_mem_item_t *items, unsigned *count,
                    unsigned max, size_t max_chars) {
  uint32_t n;
  TRY(rd_array(d, &n, max));
  for (uint32_t j = 0; j < n; j++) {
    jiwa_mem_item_t *it = &items[j];
    uint32_t fields;
    unsigned got = 0;
    TRY(rd_map(d, &fields));
    for (uint32_t i = 0; i < fields; i++) {
      char k[16];
      TRY(rd_key(d, k, sizeof k));
      unsigned bit;
      int rc;
      if (!strcmp(k, "text")) {
        bit = 1;
        rc = rd_text(d, it->text, sizeof it->text, max_chars, 0);
      } else if (!strcmp(k, "count")) {
        bit = 2;
        rc = rd_u32(d, &it->count, 1);
      } else if (!strcmp(k, "first_seen")) {
        bit = 4;
        rc = rd_int(d, &it->first_seen);
      } else if (!strcmp(k, "last_seen")) {
        bit = 8;
        rc = rd_int(d, &it->last_seen);
      } else if (!strcmp(k, "conf")) {
        bit = 16;
        rc = rd_unit(d, &it->conf);
      } else if (!strcmp(k, "source")) {
        bit = 32;
        rc = rd_source(d, &it->source);
      } else {
        bit = 0;
        rc = jiwa_mp_skip(&d->r) ? JIWA_EPROTO : 0;
      }
      if (rc || (got & bit))
        return JIWA_EPROTO;
      got |= bit;
    }
    if (got != 63)
      return JIWA_EPROTO;
  }
  *count = n;
  return 0;
}

static int rd_choice(rd_t *d, jiwa_mem_choice_t *c, int is_lang) {
  uint32_t n;
  unsigned got = 0;
  TRY(rd_map(d, &n));
  for (uint32_t i = 0; i < n; i++) {
    char k[16], v[16];
    TRY(rd_key(d, k, sizeof k));
    unsigned bit;
    int rc;
    if (!strcmp(k, "value")) {
      bit = 1;
      rc = rd_text(d, v, sizeof v, 15, 0);
      if (!rc) {
        if (is_lang) {
          jiwa_lang_t l = jiwa_lang_from_code(v);
          rc = l == JIWA_LANG_UNKNOWN || strcmp(jiwa_lang_code(l), v)
                   ? JIWA_EPROTO
                   : 0;
          c->value = (int)l;
        } else {
          c->value = !strcmp(v, "formal")   ? JIWA_REG_FORMAL
                     : !strcmp(v, "casual") ? JIWA_REG_CASUAL
                                            : JIWA_REG_UNKNOWN;
          rc = c->value == JIWA_REG_UNKNOWN ? JIWA_EPROTO : 0;
        }
      }
    } else if (!strcmp(k, "conf")) {
      bit = 2;
      rc = rd_unit(d, &c->conf);
    } else if (!strcmp(k, "at")) {
      bit = 4;
      rc = rd_int(d, &c->at);
    } else if (!strcmp(k, "source")) {
      bit = 8;
      rc = rd_source(d, &c->source);
    } else {
      bit = 0;
      rc = jiwa_mp_skip(&d->r) ? JIWA_EPROTO : 0;
    }
    if (rc || (got & bit))
      return JIWA_EPROTO;
    got |= bit;
  }
  c->set = 1;
  return got == 15 ? 0 : JIWA_EPROTO;
}

static int rd_emotion(rd_t *d, jiwa_memory_t *m) {
  uint32_t n;
  unsigned got = 0;
  TRY(rd_map(d, &n));
  for (uint32_t i = 0; i < n; i++) {
    char k[16], v[24];
    TRY(rd_key(d, k, sizeof k));
    unsigned bit;
    int rc;
    if (!strcmp(k, "label")) {
      bit = 1;
      rc = rd_text(d, v, sizeof v, 23, 0);
      int exact = 0;
      if (!rc) {
        m->emotion.label = jiwa_emotion_from_word(v, strlen(v), &exact);
        rc = m->emotion.label == JIWA_EMO_NEUTRAL || !exact ? JIWA_EPROTO : 0;
      }
    } else if (!strcmp(k, "intensity")) {
      bit = 2;
      rc = rd_unit(d, &m->emotion.intensity);
    } else if (!strcmp(k, "at")) {
      bit = 4;
      rc = rd_int(d, &m->emotion.at);
    } else if (!strcmp(k, "conf")) {
      bit = 8;
      rc = rd_unit(d, &m->emotion.conf);
    } else if (!strcmp(k, "source")) {
      bit = 16;
      rc = rd_source(d, &m->emotion.source);
    } else {
      bit = 0;
      rc = jiwa_mp_skip(&d->r) ? JIWA_EPROTO : 0;
    }
    if (rc || (got & bit))
      return JIWA_EPROTO;
    got |= bit;
  }
  return got == 31 ? 0 : JIWA_EPROTO;
}

static int rd_trust(rd_t *d, jiwa_memory_t *m) {
  uint32_t n;
  unsigned got = 0;
  TRY(rd_map(d, &n));
  for (uint32_t i = 0; i < n; i++) {
    char k[16];
    TRY(rd_key(d, k, sizeof k));
    unsigned bit;
    int rc = 0;
    if (!strcmp(k, "level")) {
      bit = 1;
      rc = rd_unit(d, &m->trust.level);
    } else if (!strcmp(k, "updated")) {
      bit = 2;
      rc = rd_int(d, &m->trust.updated);
    } else if (!strcmp(k, "evidence")) {
      bit = 4;
      uint32_t ne;
      TRY(rd_array(d, &ne, JIWA_MEMORY_MAX_EVIDENCE));
      for (uint32_t j = 0; j < ne && !rc; j++) {
        jiwa_mem_evidence_t *e = &m->trust.evidence[j];
        uint32_t nf;
        unsigned eg = 0;
        TRY(rd_map(d, &nf));
        for (uint32_t q = 0; q < nf && !rc; q++) {
          char ek[16];
          TRY(rd_key(d, ek, sizeof ek));
          unsigned b;
          if (!strcmp(ek, "at")) {
            b = 1;
            rc = rd_int(d, &e->at);
          } else if (!strcmp(ek, "level")) {
            b = 2;
            rc = rd_unit(d, &e->level);
          } else if (!strcmp(ek, "source")) {
            b = 4;
            rc = rd_source(d, &e->source);
          } else if (!strcmp(ek, "text")) {
            b = 8;
            rc = rd_text(d, e->text, sizeof e->text,
                         JIWA_PROFILE_EVIDENCE_CHARS, 1);
          } else {
            b = 0;
            rc = jiwa_mp_skip(&d->r) ? JIWA_EPROTO : 0;
          }
          if (eg & b)
            rc = JIWA_EPROTO;
          eg |= b;
        }
        if (!rc && eg != 15)
          rc = JIWA_EPROTO;
      }
      m->trust.nevidence = ne;
    } else {
      bit = 0;
      rc = jiwa_mp_skip(&d->r) ? JIWA_EPROTO : 0;
    }
    if (rc || (got & bit))
      return JIWA_EPROTO;
    got |= bit;
  }
  m->trust.set = 1;
  return got == 7 ? 0 : JIWA_EPROTO;
}

static int decode(rd_t *d, jiwa_memory_t *m) {
  uint32_t n;
  unsigned got = 0;
  TRY(rd_map(d, &n));
  for (uint32_t i = 0; i < n; i++) {
    char k[16];
    TRY(rd_key(d, k, sizeof k));
    unsigned bit;
    int rc = 0;
    if (!strcmp(k, "v")) {
      bit = 1;
      int64_t v;
      TRY(rd_int(d, &v));
      if (v != JIWA_MEMORY_VERSION)
        return JIWA_ENOTSUP;
    } else if (!strcmp(k, "updated")) {
      bit = 2;
      rc = rd_int(d, &m->updated);
    } else if (!strcmp(k, "merges")) {
      bit = 4;
      jiwa_mp_item_t it;
      TRY(jiwa_mp_next(&d->r, &it));
      if (it.type != JIWA_MP_UINT)
        return JIWA_EPROTO;
      m->merges = it.v.u;
    } else if (!strcmp(k, "facts")) {
      bit = 8;
      uint32_t c;
      TRY(rd_array(d, &c, JIWA_MEMORY_MAX_FACTS));
      for (uint32_t j = 0; j < c && !rc; j++) {
        rc = rd_fact(d, &m->facts[j], NULL);
        for (uint32_t q = 0; q < j && !rc; q++)
          if (!strcmp(m->facts[q].key, m->facts[j].key))
            rc = JIWA_EPROTO;
      }
      m->nfacts = c;
    } else if (!strcmp(k, "history")) {
      bit = 16;
      uint32_t c;
      TRY(rd_array(d, &c, JIWA_MEMORY_MAX_HISTORY));
      for (uint32_t j = 0; j < c && !rc; j++)
        rc = rd_fact(d, &m->history[j].fact, &m->history[j]);
      m->nhistory = c;
    } else if (!strcmp(k, "signals")) {
      bit = 32;
      rc = rd_items(d, m->signals, &m->nsignals, JIWA_MEMORY_MAX_SIGNALS,
                    JIWA_PROFILE_SIGNAL_CHARS);
    } else if (!strcmp(k, "goals")) {
      bit = 64;
      rc = rd_items(d, m->goals, &m->ngoals, JIWA_MEMORY_MAX_GOALS,
                    JIWA_PROFILE_GOAL_CHARS);
    } else if (!strcmp(k, "emotion")) {
      bit = 128;
      rc = rd_emotion(d, m);
    } else if (!strcmp(k, "trust")) {
      bit = 256;
      rc = rd_trust(d, m);
    } else if (!strcmp(k, "language")) {
      bit = 512;
      rc = rd_choice(d, &m->language, 1);
    } else if (!strcmp(k, "register")) {
      bit = 1024;
      rc = rd_choice(d, &m->reg, 0);
    } else {
      bit = 0;
      rc = jiwa_mp_skip(&d->r) ? JIWA_EPROTO : 0;
    }
    if (rc || (got & bit))
      return rc ? rc : JIWA_EPROTO;
    got |= bit;
  }
  return (got & 127) == 127 ? 0 : JIWA_EPROTO;
}

int jiwa_memory_decode(const void *mp, size_t len, jiwa_memory_t *m) {
  if (!m)
    return JIWA_EINVAL;
  jiwa_memory_init(m);
  if (!mp && len)
    return JIWA_EINVAL;
  if (!len)
    return 0;
  if (len > JIWA_MEMORY_MAX_BYTES)
    return JIWA_ETOOBIG;
  size_t used;
  int rc = jiwa_mp_scan(mp, len, 5, &used);
  if (rc)
    return rc;
  if (used != len)
    return JIWA_EPROTO;
  rd_t d;
  jiwa_mp_reader_init(&d.r, mp, len);
  rc = decode(&d, m);
  if (rc)
    jiwa_memory_init(m);
  return rc;
}

int jiwa_memory_merge_mp(const void *mem, size_t memlen,
                         const jiwa_profile_t *p, int64_t now,
                         const jiwa_memory_opts_t *opts, char **out,
                         size_t *outlen) {
  if (out)
    *out = NULL;
  if (!p || !out || !outlen)
    return JIWA_EINVAL;
  jiwa_memory_t *m = malloc(sizeof *m);
  if (!m)
    return JIWA_ENOMEM;
  int rc = jiwa_memory_decode(mem, memlen, m);
  if (!rc)
    rc = jiwa_memory_merge(m, p, now, opts);
  if (!rc)
    rc = jiwa_memory_encode(m, out, outlen);
  free(m);
  return rc;
}

/* ---- summary ------------------------------------------------------------------------ */

typedef struct {
  double score;
  unsigned order;
  char text[JIWA_PROFILE_BUF(JIWA_PROFILE_VALUE_CHARS) + 512];
} sitem_t;

static const struct {
  const char *key, *en, *id, *it;
} labels[] = {
    {"name", "name", "nama", "nome"},
    {"business", "business", "usaha", "attivita"},
    {"visa_status", "visa", "visa", "visto"},
    {"family", "family", "keluarga", "famiglia"},
    {"location", "lives in", "tinggal di", "vive a"},
    {"nationality", "nationality", "kewarganegaraan", "nazionalita"},
    {"occupation", "occupation", "pekerjaan", "lavoro"},
    {"@mood", "mood", "suasana hati", "umore"},
    {"@goal", "goal", "tujuan", "obiettivo"},
    {"@culture", "culture", "budaya", "cultura"},
    {"@trust", "trust", "kepercayaan", "fiducia"},
    {"@language", "language", "bahasa", "lingua"},
    {NULL, NULL, NULL, NULL}};

static const char *label_of(const char *key, jiwa_lang_t lang) {
  for (int i = 0; labels[i].key; i++)
    if (!strcmp(labels[i].key, key))
      return lang == JIWA_LANG_ID   ? labels[i].id
             : lang == JIWA_LANG_IT ? labels[i].it
                                    : labels[i].en;
  return NULL;
}

/* 0.00 .. 1.00 without locale. */
static void fmt2(double x, char *buf, size_t cap) {
  long v = lround((x < 0 ? 0 : x > 1 ? 1 : x) * 100);
  snprintf(buf, cap, "%ld.%02ld", v / 100, v % 100);
}

static int cmp_sitem(const void *a, const void *b) {
  const sitem_t *x = a, *y = b;
  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

size_t jiwa_memory_summary(const jiwa_memory_t *m, int64_t now,
                           jiwa_lang_t lang, size_t max_chars,
                           const jiwa_memory_opts_t *opts, char *out,
                           size_t cap) {
  if (!cap)
    return 0;
  out[0] = 0;
  if (!m || m->nfacts > JIWA_MEMORY_MAX_FACTS ||
      m->ngoals > JIWA_MEMORY_MAX_GOALS ||
      m->nsignals > JIWA_MEMORY_MAX_SIGNALS)
    return 0;
  size_t maxn = JIWA_MEMORY_MAX_FACTS + JIWA_MEMORY_MAX_GOALS + 4;
  sitem_t *it = calloc(maxn, sizeof *it);
  if (!it)
    return 0;
  unsigned n = 0;
  char num[32];
  for (unsigned i = 0; i < m->nfacts; i++) {
    const jiwa_mem_fact_t *f = &m->facts[i];
    const char *l = label_of(f->key, lang);
    char kb[JIWA_PROFILE_KEY_MAX + 1];
    if (!l) { /* neutral English from the key: visa_expiry -> visa expiry */
      snprintf(kb, sizeof kb, "%s", f->key);
      for (char *p = kb; *p; p++)
        if (*p == '_')
          *p = ' ';
      l = kb;
    }
    it[n].score = f->conf * decay(now, f->last_seen, RECENCY_HALF_LIFE_MS);
    it[n].order = n;
    snprintf(it[n].text, sizeof it[n].text, "%s: %s", l, f->value);
    n++;
  }
  jiwa_emotion_t e;
  double x;
  jiwa_memory_emotion_now(m, now, opts, &e, &x);
  if (e != JIWA_EMO_NEUTRAL) {
    fmt2(x, num, sizeof num);
    it[n].score = m->emotion.conf * decay(now, m->emotion.at, half_life(opts));
    it[n].order = n;
    snprintf(it[n].text, sizeof it[n].text, "%s: %s (%s)",
             label_of("@mood", lang), jiwa_emotion_label(e, lang), num);
    n++;
  }
  for (unsigned i = 0; i < m->ngoals; i++) {
    const jiwa_mem_item_t *g = &m->goals[i];
    it[n].score = g->conf * decay(now, g->last_seen, RECENCY_HALF_LIFE_MS);
    it[n].order = n;
    snprintf(it[n].text, sizeof it[n].text, "%s: %s", label_of("@goal", lang),
             g->text);
    n++;
  }
  if (m->nsignals) {
    /* one item: the most frequent signals, most recent first among equals */
    unsigned idx[JIWA_MEMORY_MAX_SIGNALS], k = m->nsignals;
    for (unsigned i = 0; i < k; i++)
      idx[i] = i;
    for (unsigned i = 1; i < k; i++) /* insertion sort: stable, tiny */
      for (unsigned j = i; j > 0; j--) {
        const jiwa_mem_item_t *a = &m->signals[idx[j]],
                              *b = &m->signals[idx[j - 1]];
        if (a->count > b->count ||
            (a->count == b->count && a->last_seen > b->last_seen)) {
          unsigned t = idx[j];
          idx[j] = idx[j - 1];
          idx[j - 1] = t;
        } else {
          break;
        }
      }
    size_t o = (size_t)snprintf(it[n].text, sizeof it[n].text, "%s: ",
                                label_of("@culture", lang));
    double best = 0;
    for (unsigned i = 0; i < k && i < 5; i++) {
      const jiwa_mem_item_t *s = &m->signals[idx[i]];
      size_t sl = strlen(s->text);
      if (o + sl + 3 >= sizeof it[n].text)
        break;
      o += (size_t)snprintf(it[n].text + o, sizeof it[n].text - o, "%s%s",
                            i ? ", " : "", s->text);
      double sc = s->conf * decay(now, s->last_seen, RECENCY_HALF_LIFE_MS);
      best = sc > best ? sc : best;
    }
    it[n].score = best;
    it[n].order = n;
    n++;
  }
  if (m->trust.set) {
    fmt2(m->trust.level, num, sizeof num);
    it[n].score = 0.5 * decay(now, m->trust.updated, RECENCY_HALF_LIFE_MS);
    it[n].order = n;
    snprintf(it[n].text, sizeof it[n].text, "%s: %s", label_of("@trust", lang),
             num);
    n++;
  }
  if (m->language.set || m->reg.set) {
    const jiwa_mem_choice_t *c = m->language.set ? &m->language : &m->reg;
    it[n].score = c->conf * decay(now, c->at, RECENCY_HALF_LIFE_MS);
    it[n].order = n;
    snprintf(it[n].text, sizeof it[n].text, "%s: %s%s%s",
             label_of("@language", lang),
             m->language.set ? jiwa_lang_code((jiwa_lang_t)m->language.value)
                             : "",
             m->language.set && m->reg.set ? ", " : "",
             m->reg.set ? jiwa_register_name((jiwa_register_t)m->reg.value)
                        : "");
    n++;
  }
  qsort(it, n, sizeof *it, cmp_sitem);
  size_t o = 0, chars = 0;
  for (unsigned i = 0; i < n; i++) {
    size_t bl = strlen(it[i].text), cl = jiwa_utf8_chars(it[i].text, bl);
    size_t sep = o ? 2 : 0;
    if (chars + sep + cl > max_chars || o + sep + bl + 1 > cap)
      continue;
    if (sep) {
      memcpy(out + o, "; ", 2);
      o += 2;
    }
    memcpy(out + o, it[i].text, bl);
    o += bl;
    chars += sep + cl;
  }
  out[o] = 0;
  free(it);
  return o;
}
