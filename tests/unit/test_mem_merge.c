/* The JIWA memory (runtime/memory/jiwa_memmerge.h): contradictions replace
 * facts and keep history, confidences and timestamps move as documented,
 * the emotional state decays with an injected clock, bounds hold after
 * 10,000 merges, merging is deterministic, the decoder refuses corrupt
 * memories, and the summary ranks and fits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa/json.h"
#include "jiwa/mp.h"
#include "jiwa_memmerge.h"

#define HOUR (3600LL * 1000)
#define DAY (24 * HOUR)
#define T0 1700000000000LL

static jiwa_profile_t *prof(const char *json, jiwa_source_t src) {
  static jiwa_profile_t p;
  jiwa_profile_report_t rep;
  if (jiwa_profile_parse(json, strlen(json), &p, &rep) != 0)
    fail_msg("fixture profile rejected: %s", json);
  p.source = src;
  p.confidence = src == JIWA_SRC_MODEL ? JIWA_PROFILE_MODEL_CONF
                                       : JIWA_PROFILE_HEURISTIC_CONF;
  return &p;
}

static jiwa_memory_t *mem_new(void) {
  jiwa_memory_t *m = malloc(sizeof *m);
  assert_non_null(m);
  jiwa_memory_init(m);
  return m;
}

/* encode -> decode -> encode gives the same bytes */
static void roundtrip(const jiwa_memory_t *m) {
  char *a, *b;
  size_t al, bl;
  assert_int_equal(jiwa_memory_encode(m, &a, &al), 0);
  assert_true(al <= JIWA_MEMORY_MAX_BYTES);
  jiwa_memory_t *d = mem_new();
  assert_int_equal(jiwa_memory_decode(a, al, d), 0);
  assert_int_equal(jiwa_memory_encode(d, &b, &bl), 0);
  assert_int_equal(al, bl);
  assert_memory_equal(a, b, al);
  free(a);
  free(b);
  free(d);
}

static void contradiction_keeps_history(void **state) {
  (void)state;
  jiwa_memory_t *m = mem_new();
  assert_int_equal(
      jiwa_memory_merge(m,
                        prof("{\"key_facts\":{\"name\":\"Marco\",\"location\":"
                             "\"Canggu\"}}",
                             JIWA_SRC_MODEL),
                        T0, NULL),
      0);
  const jiwa_mem_fact_t *f = jiwa_memory_fact(m, "location");
  assert_non_null(f);
  assert_string_equal(f->value, "Canggu");
  assert_true(fabs(f->conf - 0.7) < 1e-12);
  assert_int_equal(f->first_seen, T0);
  assert_int_equal(f->seen, 1);
  assert_string_equal(jiwa_source_name(f->source), "model");

  /* the same value again (other case, punctuation): reinforced */
  jiwa_memory_merge(m, prof("{\"key_facts\":{\"location\":\"canggu.\"}}",
                            JIWA_SRC_MODEL),
                    T0 + HOUR, NULL);
  f = jiwa_memory_fact(m, "location");
  assert_string_equal(f->value, "Canggu");
  assert_int_equal(f->seen, 2);
  assert_int_equal(f->first_seen, T0);
  assert_int_equal(f->last_seen, T0 + HOUR);
  assert_true(fabs(f->conf - (1 - 0.3 * 0.65)) < 1e-12);
  assert_int_equal(m->nhistory, 0);

  /* a contradiction: replaced, and the old value goes to history */
  jiwa_memory_merge(m, prof("{\"key_facts\":{\"location\":\"Jakarta\"}}",
                            JIWA_SRC_MODEL),
                    T0 + 2 * DAY, NULL);
  f = jiwa_memory_fact(m, "location");
  assert_string_equal(f->value, "Jakarta");
  assert_int_equal(f->first_seen, T0 + 2 * DAY);
  assert_int_equal(f->seen, 1);
  assert_true(fabs(f->conf - 0.7) < 1e-12);
  assert_int_equal(m->nhistory, 1);
  assert_string_equal(m->history[0].fact.key, "location");
  assert_string_equal(m->history[0].fact.value, "Canggu");
  assert_int_equal(m->history[0].fact.seen, 2);
  assert_int_equal(m->history[0].fact.first_seen, T0);
  assert_int_equal(m->history[0].replaced_at, T0 + 2 * DAY);
  assert_string_equal(m->history[0].why, "replaced by model: 'Jakarta'");
  /* never add-only: one current value per key */
  assert_int_equal(m->nfacts, 2);
  assert_string_equal(jiwa_memory_fact(m, "name")->value, "Marco");
  roundtrip(m);
  free(m);
}

static void heuristic_vs_model(void **state) {
  (void)state;
  jiwa_memory_t *m = mem_new();
  jiwa_memory_merge(m, prof("{\"key_facts\":{\"visa_status\":\"KITAS\"}}",
                            JIWA_SRC_MODEL),
                    T0, NULL);
  /* a heuristic guess does not overwrite a stronger model fact at once:
   * it erodes it (x0.8 each time) until it is no stronger than 0.4 */
  const double want[] = {0.56, 0.448, 0.3584};
  for (int i = 0; i < 3; i++) {
    jiwa_memory_merge(
        m, prof("{\"key_facts\":{\"visa_status\":\"VOA\"}}", JIWA_SRC_HEURISTIC),
        T0 + (i + 1) * HOUR, NULL);
    const jiwa_mem_fact_t *f = jiwa_memory_fact(m, "visa_status");
    assert_string_equal(f->value, "KITAS");
    assert_true(fabs(f->conf - want[i]) < 1e-12);
    assert_int_equal(m->nhistory, 0);
  }
  jiwa_memory_merge(
      m, prof("{\"key_facts\":{\"visa_status\":\"VOA\"}}", JIWA_SRC_HEURISTIC),
      T0 + 4 * HOUR, NULL);
  const jiwa_mem_fact_t *f = jiwa_memory_fact(m, "visa_status");
  assert_string_equal(f->value, "VOA");
  assert_int_equal(f->source, JIWA_SRC_HEURISTIC);
  assert_true(fabs(f->conf - 0.4) < 1e-12);
  assert_int_equal(m->nhistory, 1);
  assert_string_equal(m->history[0].fact.value, "KITAS");
  assert_string_equal(m->history[0].why, "replaced by heuristic: 'VOA'");
  /* the model overrides a heuristic fact at once */
  jiwa_memory_merge(m, prof("{\"key_facts\":{\"visa_status\":\"B211A\"}}",
                            JIWA_SRC_MODEL),
                    T0 + 5 * HOUR, NULL);
  assert_string_equal(jiwa_memory_fact(m, "visa_status")->value, "B211A");
  assert_int_equal(m->nhistory, 2);
  /* the model agreeing with a heuristic fact makes it a model fact */
  jiwa_memory_merge(m, prof("{\"key_facts\":{\"name\":\"Budi\"}}",
                            JIWA_SRC_HEURISTIC),
                    T0 + 6 * HOUR, NULL);
  jiwa_memory_merge(m, prof("{\"key_facts\":{\"name\":\"budi\"}}",
                            JIWA_SRC_MODEL),
                    T0 + 7 * HOUR, NULL);
  f = jiwa_memory_fact(m, "name");
  assert_int_equal(f->source, JIWA_SRC_MODEL);
  assert_int_equal(f->seen, 2);
  assert_true(fabs(f->conf - (1 - 0.6 * 0.65)) < 1e-12);
  roundtrip(m);
  free(m);
}

static void emotion_decays(void **state) {
  (void)state;
  jiwa_memory_t *m = mem_new();
  jiwa_memory_merge(m,
                    prof("{\"emotional_state\":{\"label\":\"worried\","
                         "\"intensity\":0.8}}",
                         JIWA_SRC_MODEL),
                    T0, NULL);
  jiwa_emotion_t e;
  double x;
  jiwa_memory_emotion_now(m, T0, NULL, &e, &x);
  assert_int_equal(e, JIWA_EMO_WORRIED);
  assert_true(fabs(x - 0.8) < 1e-12);
  jiwa_memory_emotion_now(m, T0 + DAY, NULL, &e, &x); /* one half-life */
  assert_int_equal(e, JIWA_EMO_WORRIED);
  assert_true(fabs(x - 0.4) < 1e-9);
  jiwa_memory_emotion_now(m, T0 + 2 * DAY, NULL, &e, &x);
  assert_true(fabs(x - 0.2) < 1e-9);
  jiwa_memory_emotion_now(m, T0 + 5 * DAY, NULL, &e, &x); /* 0.025 */
  assert_int_equal(e, JIWA_EMO_NEUTRAL);
  assert_true(x == 0);
  /* a custom half-life of one hour */
  jiwa_memory_opts_t o = {.emotion_half_life_ms = HOUR};
  jiwa_memory_emotion_now(m, T0 + 2 * HOUR, &o, &e, &x);
  assert_true(fabs(x - 0.2) < 1e-9);
  /* the clock going backwards does not amplify */
  jiwa_memory_emotion_now(m, T0 - DAY, NULL, &e, &x);
  assert_true(fabs(x - 0.8) < 1e-12);
  /* a merge without emotion keeps a live state ... */
  jiwa_memory_merge(m, prof("{\"register\":\"casual\"}", JIWA_SRC_MODEL),
                    T0 + DAY, NULL);
  assert_int_equal(m->emotion.label, JIWA_EMO_WORRIED);
  /* ... and clears a stale one to neutral */
  jiwa_memory_merge(m, prof("{\"register\":\"casual\"}", JIWA_SRC_MODEL),
                    T0 + 6 * DAY, NULL);
  assert_int_equal(m->emotion.label, JIWA_EMO_NEUTRAL);
  /* a new observation replaces the state */
  jiwa_memory_merge(m,
                    prof("{\"emotional_state\":{\"label\":\"grateful\","
                         "\"intensity\":0.6}}",
                         JIWA_SRC_HEURISTIC),
                    T0 + 7 * DAY, NULL);
  assert_int_equal(m->emotion.label, JIWA_EMO_GRATEFUL);
  assert_int_equal(m->emotion.at, T0 + 7 * DAY);
  assert_int_equal(m->emotion.source, JIWA_SRC_HEURISTIC);
  roundtrip(m);
  free(m);
}

static void signals_goals_trust(void **state) {
  (void)state;
  jiwa_memory_t *m = mem_new();
  for (int i = 0; i < 3; i++)
    jiwa_memory_merge(m,
                      prof("{\"cultural_signals\":[\"malu\",\"jam karet\"]}",
                           JIWA_SRC_MODEL),
                      T0 + i * HOUR, NULL);
  jiwa_memory_merge(m, prof("{\"cultural_signals\":[\"MALU\"]}", JIWA_SRC_MODEL),
                    T0 + 5 * HOUR, NULL);
  assert_int_equal(m->nsignals, 2);
  assert_string_equal(m->signals[0].text, "malu");
  assert_int_equal(m->signals[0].count, 4);
  assert_int_equal(m->signals[0].first_seen, T0);
  assert_int_equal(m->signals[0].last_seen, T0 + 5 * HOUR);
  assert_int_equal(m->signals[1].count, 3);

  jiwa_memory_merge(m,
                    prof("{\"goals\":[\"open a cafe in Canggu\",\"buy land in "
                         "Ubud\"]}",
                         JIWA_SRC_MODEL),
                    T0, NULL);
  jiwa_memory_merge(m,
                    prof("{\"goals\":[\"Open a cafe in Canggu!\",\"open a "
                         "small cafe in Canggu\",\"retire in Italy\"]}",
                         JIWA_SRC_MODEL),
                    T0 + DAY, NULL);
  assert_int_equal(m->ngoals, 3);
  assert_string_equal(m->goals[0].text, "open a cafe in Canggu");
  assert_int_equal(m->goals[0].count, 3);
  assert_int_equal(m->goals[0].last_seen, T0 + DAY);
  assert_string_equal(m->goals[2].text, "retire in Italy");

  /* trust: the first observation sets it, later ones smooth */
  jiwa_memory_merge(m,
                    prof("{\"trust\":{\"level\":0.2,\"evidence\":\"asked for "
                         "proof\"}}",
                         JIWA_SRC_MODEL),
                    T0, NULL);
  assert_true(fabs(m->trust.level - 0.2) < 1e-12);
  jiwa_memory_merge(m, prof("{\"trust\":1}", JIWA_SRC_MODEL), T0 + HOUR, NULL);
  assert_true(fabs(m->trust.level - (0.2 + 0.35 * 0.8)) < 1e-12);
  assert_int_equal(m->trust.nevidence, 2);
  assert_string_equal(m->trust.evidence[0].text, "asked for proof");
  assert_true(m->trust.evidence[1].level == 1);
  /* bounded evidence, oldest dropped */
  for (int i = 0; i < 20; i++)
    jiwa_memory_merge(m, prof("{\"trust\":0.5}", JIWA_SRC_HEURISTIC),
                      T0 + (10 + i) * HOUR, NULL);
  assert_int_equal(m->trust.nevidence, JIWA_MEMORY_MAX_EVIDENCE);
  assert_int_equal(m->trust.evidence[0].at, T0 + 22 * HOUR);
  assert_true(fabs(m->trust.level - 0.5) < 0.01);
  /* language and register follow the replace rule */
  jiwa_memory_merge(m, prof("{\"preferred_language\":\"it\"}", JIWA_SRC_MODEL),
                    T0, NULL);
  jiwa_memory_merge(m, prof("{\"preferred_language\":\"en\"}",
                            JIWA_SRC_HEURISTIC),
                    T0 + 1, NULL);
  assert_int_equal(m->language.value, JIWA_LANG_IT);
  roundtrip(m);
  free(m);
}

/* ---- 10,000 merges --------------------------------------------------------- */

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static const char *const words[] = {
    "open",   "cafe",  "villa",   "Canggu",  "Ubud",   "buy",   "land",
    "retire", "Bali",  "school",  "kids",    "surf",   "yoga",  "studio",
    "export", "coffee", "warung", "Jakarta", "family", "visa",  "investor",
    "è",      "città", "rumah",   "usaha",   "besar",  "kecil", "grande"};

static void rand_text(char *out, size_t cap, unsigned words_n) {
  size_t o = 0;
  for (unsigned i = 0; i < words_n; i++) {
    const char *w = words[next_rand() % (sizeof words / sizeof *words)];
    int n = snprintf(out + o, cap - o, "%s%s", i ? " " : "", w);
    if (n < 0 || (size_t)n >= cap - o)
      break;
    o += (size_t)n;
  }
}

/* A random valid profile, built directly (as the validator would). */
static void rand_profile(jiwa_profile_t *p) {
  memset(p, 0, sizeof *p);
  p->source = next_rand() % 3 ? JIWA_SRC_MODEL : JIWA_SRC_HEURISTIC;
  p->confidence = p->source == JIWA_SRC_MODEL ? 0.7 : 0.4;
  if (next_rand() % 2) {
    p->present |= JIWA_PROFILE_HAS_EMOTION;
    p->emotion.label = (jiwa_emotion_t)(1 + next_rand() % (JIWA_EMO_COUNT - 1));
    p->emotion.intensity = (double)(next_rand() % 101) / 100;
  }
  p->nsignals = (unsigned)(next_rand() % 4);
  for (unsigned i = 0; i < p->nsignals; i++)
    snprintf(p->signals[i], sizeof p->signals[i], "signal %u",
             (unsigned)(next_rand() % 100));
  if (p->nsignals)
    p->present |= JIWA_PROFILE_HAS_SIGNALS;
  p->ngoals = (unsigned)(next_rand() % 3);
  for (unsigned i = 0; i < p->ngoals; i++)
    rand_text(p->goals[i], sizeof p->goals[i], 2 + next_rand() % 40);
  if (p->ngoals)
    p->present |= JIWA_PROFILE_HAS_GOALS;
  p->nfacts = (unsigned)(next_rand() % 6);
  for (unsigned i = 0; i < p->nfacts; i++) {
    snprintf(p->facts[i].key, sizeof p->facts[i].key, "key_%u",
             (unsigned)(next_rand() % 60));
    rand_text(p->facts[i].value, sizeof p->facts[i].value,
              1 + next_rand() % 60);
  }
  if (p->nfacts)
    p->present |= JIWA_PROFILE_HAS_FACTS;
  if (next_rand() % 4 == 0) {
    p->present |= JIWA_PROFILE_HAS_TRUST;
    p->trust.level = (double)(next_rand() % 101) / 100;
    rand_text(p->trust.evidence, sizeof p->trust.evidence, next_rand() % 50);
  }
  if (next_rand() % 5 == 0) {
    p->present |= JIWA_PROFILE_HAS_LANGUAGE;
    p->language = (jiwa_lang_t)(1 + next_rand() % 3);
  }
}

static void run_merges(unsigned n, uint64_t seed, char **out, size_t *outlen,
                       int via_bytes) {
  rng = seed;
  jiwa_memory_t *m = mem_new();
  jiwa_profile_t *p = malloc(sizeof *p);
  char *bytes = NULL;
  size_t blen = 0;
  int64_t now = T0;
  for (unsigned i = 0; i < n; i++) {
    rand_profile(p);
    now += (int64_t)(next_rand() % (6 * HOUR));
    if (via_bytes) {
      char *nb;
      size_t nl;
      assert_int_equal(jiwa_memory_merge_mp(bytes, blen, p, now, NULL, &nb, &nl),
                       0);
      free(bytes);
      bytes = nb;
      blen = nl;
    } else {
      assert_int_equal(jiwa_memory_merge(m, p, now, NULL), 0);
    }
    if (!via_bytes && (i % 500 == 0 || i == n - 1)) {
      assert_true(m->nfacts <= JIWA_MEMORY_MAX_FACTS);
      assert_true(m->nhistory <= JIWA_MEMORY_MAX_HISTORY);
      assert_true(m->nsignals <= JIWA_MEMORY_MAX_SIGNALS);
      assert_true(m->ngoals <= JIWA_MEMORY_MAX_GOALS);
      assert_true(m->trust.nevidence <= JIWA_MEMORY_MAX_EVIDENCE);
      for (unsigned j = 0; j < m->nfacts; j++)
        assert_true(m->facts[j].conf >= 0 && m->facts[j].conf <= 0.99);
      for (unsigned j = 1; j < m->nhistory; j++)
        assert_true(m->history[j - 1].replaced_at <= m->history[j].replaced_at);
      roundtrip(m);
    }
  }
  if (!via_bytes) {
    assert_int_equal(m->merges, n);
    assert_int_equal(jiwa_memory_encode(m, &bytes, &blen), 0);
  }
  *out = bytes;
  *outlen = blen;
  free(p);
  free(m);
}

static void bounds_after_10000_merges(void **state) {
  (void)state;
  char *a, *b;
  size_t al, bl;
  run_merges(10000, 42, &a, &al, 0);
  jiwa_memory_t *m = mem_new();
  assert_int_equal(jiwa_memory_decode(a, al, m), 0);
  printf("after 10000 merges: %u facts, %u history, %u signals, %u goals, "
         "%zu bytes\n",
         m->nfacts, m->nhistory, m->nsignals, m->ngoals, al);
  assert_int_equal(m->nfacts, JIWA_MEMORY_MAX_FACTS);
  assert_int_equal(m->nhistory, JIWA_MEMORY_MAX_HISTORY);
  assert_int_equal(m->nsignals, JIWA_MEMORY_MAX_SIGNALS);
  assert_int_equal(m->ngoals, JIWA_MEMORY_MAX_GOALS);
  free(m);
  /* determinism: the same sequence gives the same bytes, and the byte path
   * (decode, merge, encode each time) gives the struct path's bytes */
  run_merges(10000, 42, &b, &bl, 0);
  assert_int_equal(al, bl);
  assert_memory_equal(a, b, al);
  free(b);
  run_merges(1000, 7, &b, &bl, 0);
  char *c;
  size_t cl;
  run_merges(1000, 7, &c, &cl, 1);
  assert_int_equal(bl, cl);
  assert_memory_equal(b, c, bl);
  free(a);
  free(b);
  free(c);
}

static void capacity_eviction_and_max_size(void **state) {
  (void)state;
  jiwa_memory_t *m = mem_new();
  jiwa_profile_t *p = malloc(sizeof *p);
  /* 40 distinct keys: the least confident, then oldest, go to history */
  for (int i = 0; i < 40; i++) {
    memset(p, 0, sizeof *p);
    p->present = JIWA_PROFILE_HAS_FACTS;
    p->confidence = 0.7;
    p->nfacts = 1;
    snprintf(p->facts[0].key, sizeof p->facts[0].key, "k%02d", i);
    snprintf(p->facts[0].value, sizeof p->facts[0].value, "v%d", i);
    jiwa_memory_merge(m, p, T0 + i, NULL);
  }
  assert_int_equal(m->nfacts, JIWA_MEMORY_MAX_FACTS);
  assert_null(jiwa_memory_fact(m, "k00"));
  assert_non_null(jiwa_memory_fact(m, "k39"));
  assert_int_equal(m->nhistory, 8);
  assert_string_equal(m->history[0].why, "evicted: memory full");
  /* fill everything to the limit with the longest strings */
  jiwa_memory_init(m);
  char longv[JIWA_PROFILE_BUF(JIWA_PROFILE_EVIDENCE_CHARS)];
  for (int round = 0; round < 200; round++) {
    memset(p, 0, sizeof *p);
    p->present = 0x7f;
    p->confidence = 0.7;
    p->emotion.label = JIWA_EMO_HAPPY;
    p->emotion.intensity = 0.5;
    p->language = JIWA_LANG_ID;
    p->reg = JIWA_REG_FORMAL;
    p->trust.level = 0.5;
    size_t o = 0;
    for (int i = 0; i < JIWA_PROFILE_EVIDENCE_CHARS; i++, o += 4)
      memcpy(longv + o, "\xf0\x9f\x98\x80", 4); /* 4-byte characters */
    longv[o] = 0;
    memcpy(p->trust.evidence, longv, o + 1);
    p->nfacts = JIWA_PROFILE_MAX_FACTS;
    for (int i = 0; i < JIWA_PROFILE_MAX_FACTS; i++) {
      snprintf(p->facts[i].key, sizeof p->facts[i].key,
               "a_rather_long_key_name_%04d_%02d", round, i);
      memcpy(p->facts[i].value, longv, JIWA_PROFILE_VALUE_CHARS * 4);
      p->facts[i].value[JIWA_PROFILE_VALUE_CHARS * 4] = 0;
      p->facts[i].value[0] = (char)('a' + round % 26); /* distinct */
    }
    p->ngoals = JIWA_PROFILE_MAX_GOALS;
    p->nsignals = JIWA_PROFILE_MAX_SIGNALS;
    for (int i = 0; i < JIWA_PROFILE_MAX_GOALS; i++) {
      snprintf(p->goals[i], sizeof p->goals[i], "%d %d ", round, i);
      size_t gl = strlen(p->goals[i]);
      memcpy(p->goals[i] + gl, longv, (JIWA_PROFILE_GOAL_CHARS - gl) * 4);
      p->goals[i][gl + (JIWA_PROFILE_GOAL_CHARS - gl) * 4] = 0;
      snprintf(p->signals[i], sizeof p->signals[i], "%d %d ", round, i);
      gl = strlen(p->signals[i]);
      memcpy(p->signals[i] + gl, longv, (JIWA_PROFILE_SIGNAL_CHARS - gl) * 4);
      p->signals[i][gl + (JIWA_PROFILE_SIGNAL_CHARS - gl) * 4] = 0;
    }
    assert_int_equal(jiwa_memory_merge(m, p, T0 + round, NULL), 0);
  }
  char *bytes;
  size_t len;
  assert_int_equal(jiwa_memory_encode(m, &bytes, &len), 0);
  printf("largest memory: %zu bytes (limit %u)\n", len, JIWA_MEMORY_MAX_BYTES);
  assert_true(len <= 190 * 1024);
  free(bytes);
  roundtrip(m);
  free(p);
  free(m);
}

static void decoder_refuses_corruption(void **state) {
  (void)state;
  jiwa_memory_t *m = mem_new();
  jiwa_memory_merge(m,
                    prof("{\"key_facts\":{\"name\":\"Marco\"},\"trust\":0.5,"
                         "\"emotional_state\":\"sad\",\"goals\":[\"x y\"]}",
                         JIWA_SRC_MODEL),
                    T0, NULL);
  char *b;
  size_t bl;
  assert_int_equal(jiwa_memory_encode(m, &b, &bl), 0);
  /* every truncation is refused */
  for (size_t n = 1; n < bl; n++)
    assert_int_not_equal(jiwa_memory_decode(b, n, m), 0);
  /* an empty input is the empty memory */
  assert_int_equal(jiwa_memory_decode(NULL, 0, m), 0);
  assert_int_equal(m->nfacts, 0);
  free(b);
  static const struct {
    const char *json;
    int rc;
  } bad[] = {
      {"{\"v\":2,\"updated\":0,\"merges\":0,\"facts\":[],\"history\":[],"
       "\"signals\":[],\"goals\":[]}",
       JIWA_ENOTSUP},
      {"[1,2]", JIWA_EPROTO},
      {"{\"v\":1}", JIWA_EPROTO},
      {"{\"v\":1,\"updated\":0,\"merges\":0,\"facts\":[{\"key\":\"name\","
       "\"value\":\"a\",\"conf\":2.5,\"first_seen\":0,\"last_seen\":0,"
       "\"source\":\"model\",\"seen\":1}],\"history\":[],\"signals\":[],"
       "\"goals\":[]}",
       JIWA_EPROTO},
      {"{\"v\":1,\"updated\":0,\"merges\":0,\"facts\":[{\"key\":\"name\","
       "\"value\":\"two\\nlines\",\"conf\":0.5,\"first_seen\":0,"
       "\"last_seen\":0,\"source\":\"model\",\"seen\":1}],\"history\":[],"
       "\"signals\":[],\"goals\":[]}",
       JIWA_EPROTO},
      {"{\"v\":1,\"updated\":0,\"merges\":0,\"facts\":[{\"key\":\"Name!\","
       "\"value\":\"a\",\"conf\":0.5,\"first_seen\":0,\"last_seen\":0,"
       "\"source\":\"model\",\"seen\":1}],\"history\":[],\"signals\":[],"
       "\"goals\":[]}",
       JIWA_EPROTO},
      {"{\"v\":1,\"updated\":0,\"merges\":0,\"facts\":[{\"key\":\"name\","
       "\"value\":\"a\",\"conf\":0.5,\"first_seen\":0,\"last_seen\":0,"
       "\"source\":\"oracle\",\"seen\":1}],\"history\":[],\"signals\":[],"
       "\"goals\":[]}",
       JIWA_EPROTO},
      {"{\"v\":1,\"updated\":0,\"merges\":0,\"facts\":[],\"history\":[],"
       "\"signals\":[],\"goals\":[],\"emotion\":{\"label\":\"bored\","
       "\"intensity\":0.5,\"at\":0,\"conf\":0.5,\"source\":\"model\"}}",
       JIWA_EPROTO},
      {"{\"v\":1,\"v\":1,\"updated\":0,\"merges\":0,\"facts\":[],"
       "\"history\":[],\"signals\":[],\"goals\":[]}",
       JIWA_EPROTO},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *mp;
    size_t ml;
    assert_int_equal(
        jiwa_json_to_mp(bad[i].json, strlen(bad[i].json), NULL, &mp, &ml, NULL),
        0);
    /* the JSON parser makes 0.5 a float but 0 an int: as the encoder does */
    int rc = jiwa_memory_decode(mp, ml, m);
    if (rc != bad[i].rc)
      fail_msg("bad[%zu]: rc %d, want %d", i, rc, bad[i].rc);
    assert_int_equal(m->nfacts, 0);
    free(mp);
  }
  /* duplicate fact keys, built by hand */
  jiwa_memory_init(m);
  m->nfacts = 2;
  for (int i = 0; i < 2; i++) {
    strcpy(m->facts[i].key, "name");
    strcpy(m->facts[i].value, "x");
    m->facts[i].conf = 0.5;
    m->facts[i].seen = 1;
  }
  assert_int_equal(jiwa_memory_encode(m, &b, &bl), 0);
  assert_int_equal(jiwa_memory_decode(b, bl, m), JIWA_EPROTO);
  free(b);
  free(m);
}

static void summary(void **state) {
  (void)state;
  jiwa_memory_t *m = mem_new();
  jiwa_memory_merge(
      m,
      prof("{\"key_facts\":{\"name\":\"Marco\",\"visa_status\":\"KITAS\","
           "\"pet_name\":\"Fido\"},\"emotional_state\":{\"label\":\"worried\","
           "\"intensity\":0.8},\"goals\":[\"open a cafe in Canggu\"],"
           "\"cultural_signals\":[\"malu\",\"jam_karet\"],\"trust\":0.7,"
           "\"preferred_language\":\"it\",\"register\":\"casual\"}",
           JIWA_SRC_MODEL),
      T0, NULL);
  /* the name is confirmed twice: the most confident item comes first */
  jiwa_memory_merge(m, prof("{\"key_facts\":{\"name\":\"Marco\"}}",
                            JIWA_SRC_MODEL),
                    T0, NULL);
  char out[1024];
  size_t n = jiwa_memory_summary(m, T0, JIWA_LANG_EN, 1000, NULL, out,
                                 sizeof out);
  printf("summary en: %s\n", out);
  assert_int_equal(n, strlen(out));
  assert_true(strncmp(out, "name: Marco; ", 13) == 0);
  assert_non_null(strstr(out, "visa: KITAS"));
  assert_non_null(strstr(out, "pet name: Fido"));
  assert_non_null(strstr(out, "mood: worried (0.80)"));
  assert_non_null(strstr(out, "goal: open a cafe in Canggu"));
  assert_non_null(strstr(out, "culture: malu, jam_karet"));
  assert_non_null(strstr(out, "trust: 0.70"));
  assert_non_null(strstr(out, "language: it, casual"));
  /* labels in the user's language */
  jiwa_memory_summary(m, T0, JIWA_LANG_IT, 1000, NULL, out, sizeof out);
  printf("summary it: %s\n", out);
  assert_non_null(strstr(out, "nome: Marco"));
  assert_non_null(strstr(out, "umore: preoccupato (0.80)"));
  assert_non_null(strstr(out, "visto: KITAS"));
  jiwa_memory_summary(m, T0, JIWA_LANG_ID, 1000, NULL, out, sizeof out);
  assert_non_null(strstr(out, "suasana hati: khawatir"));
  assert_non_null(strstr(out, "tujuan: open a cafe"));
  /* the limit: whole items only, best first */
  n = jiwa_memory_summary(m, T0, JIWA_LANG_EN, 30, NULL, out, sizeof out);
  printf("summary 30: %s\n", out);
  assert_true(n <= 30);
  assert_true(strncmp(out, "name: Marco", 11) == 0);
  assert_null(strstr(out, "trust"));
  /* the byte cap is honoured too */
  n = jiwa_memory_summary(m, T0, JIWA_LANG_EN, 1000, NULL, out, 20);
  assert_true(n < 20);
  assert_string_equal(out, "name: Marco");
  /* a week later the mood has decayed away and is not mentioned */
  jiwa_memory_summary(m, T0 + 7 * DAY, JIWA_LANG_EN, 1000, NULL, out,
                      sizeof out);
  assert_null(strstr(out, "mood"));
  /* a recent fact outranks an old one of equal confidence */
  jiwa_memory_merge(m, prof("{\"key_facts\":{\"business\":\"villa rental\"}}",
                            JIWA_SRC_MODEL),
                    T0 + 60 * DAY, NULL);
  jiwa_memory_summary(m, T0 + 60 * DAY, JIWA_LANG_EN, 1000, NULL, out,
                      sizeof out);
  printf("summary later: %s\n", out);
  assert_true(strncmp(out, "business: villa rental", 22) == 0);
  jiwa_memory_init(m);
  assert_int_equal(jiwa_memory_summary(m, T0, JIWA_LANG_EN, 100, NULL, out,
                                       sizeof out),
                   0);
  assert_string_equal(out, "");
  free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(contradiction_keeps_history),
      cmocka_unit_test(heuristic_vs_model),
      cmocka_unit_test(emotion_decays),
      cmocka_unit_test(signals_goals_trust),
      cmocka_unit_test(bounds_after_10000_merges),
      cmocka_unit_test(capacity_eviction_and_max_size),
      cmocka_unit_test(decoder_refuses_corruption),
      cmocka_unit_test(summary)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
