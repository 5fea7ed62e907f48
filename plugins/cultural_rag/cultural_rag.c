/*
 * cultural_rag — does this message need cultural context, and which
 * insights? (DESIGN.md §1, README.md next to this file.)
 *
 * Answers `rag.query` {query, lang?, k?, categories?} with {context,
 * insights = [{id, score, cosine, category, topic, title, lang}], needed,
 * reason, markers, lang, took_us}:
 *  1. detection: the query's words (normalised like the embedder's) are
 *     looked up as 1..8-word phrases in a marker table: built-in lists per
 *     language (emotion, politeness, hesitation, family, customs), the
 *     extra markers of the config, and the insights' own markers (those
 *     detect only when they have two words or more: single ones such as
 *     "made" or "jadi" are far too common; they still boost ranking);
 *  2. retrieval: one search of the collection (language = the query's,
 *     categories, dedup) for a pool of candidates, ranked by cosine plus a
 *     boost for insights whose marker appeared in the query; a second,
 *     any-language search fills up to k when the language has too few;
 *  3. without a detecting marker the context is used only when the best
 *     cosine reaches need_score; needed=false replies with no context;
 *  4. formatting: "- [category/topic] text Respond: respond" lines under a
 *     header, whole lines only, bounded in characters.
 * Also `rag.import` {jsonl, name?} → {imported} (all lines validated
 * first), `rag.markers` {entries} (learn the markers of insights written
 * by another path) and `rag.stats` → {count, markers, seed, seeded, seed_errors,
 * queries}. On first start with an empty collection it imports its
 * `seed_files` (each file validated whole: a bad file is skipped and
 * logged with file:line, the others go in).
 *
 * The insights' markers live in this actor's kv ("markers:<lang>" = map
 * normalised marker -> [ids]) because a collection cannot be listed; an
 * import through another path must tell this actor (rag.markers).
 */
#include <jiwa/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jiwa_knowledge.h"
#include "jiwa_lang.h"
#include "jiwa_textnorm.h"

#define K_MAX 10
#define POOL_MAX 64
#define NGRAM_MAX 8
#define QTOK_MAX 128
#define SEED_FILES_MAX 32
#define SEED_MAX_BYTES (64u << 20)
#define BATCH 128
#define MATCH_MAX 16
#define RAW_MAX 256

/* ---- marker kinds and built-in lists -------------------------------------- */

enum { MK_EMOTION, MK_POLITENESS, MK_HESITATION, MK_FAMILY, MK_CUSTOMS,
       MK_CONFIG, MK_INSIGHT };
static const char *const KIND_NAMES[] = {"emotion", "politeness", "hesitation",
                                         "family",  "customs",    "config",
                                         "insight"};

typedef struct {
  jiwa_lang_t lang;
  int kind;
  const char *const *words;
} builtin_t;

static const char *const EN_EMO[] = {
    "embarrassed", "embarrassing", "ashamed", "shame", "feel stupid",
    "feel silly", "stupid question", "dumb question", "silly question",
    "worried", "worry", "i'm scared", "scared", "afraid", "anxious", "nervous",
    "panic", "panicking", "stressed", "stressful", "overwhelmed", "frustrated",
    "upset", "sad", "heartbroken", "disappointed", "angry", "furious",
    "offended", "confused", "relieved", "homesick", "lonely", "grateful",
    "so happy", "excited", "cheated", "scammed", "feel bad", "guilty",
    "malu", "sungkan", "gengsi", NULL};
static const char *const EN_POL[] = {
    "sorry to bother", "sorry for asking", "sorry to ask", "if you don't mind",
    "with respect", "respectfully", "kindly", "forgive me", "pardon me",
    "apologies", "i apologise", "i apologize", NULL};
static const char *const EN_HES[] = {
    "not sure if", "i hesitate", "hesitant", "don't want to be rude",
    "is it rude", "would it be rude", "is it ok to ask", "awkward",
    "how do i say no", "how to say no", "say no politely", "how to refuse",
    "don't want to offend", "is it appropriate", NULL};
static const char *const EN_FAM[] = {
    "my wife", "my husband", "my in-laws", "in-laws", "mother-in-law",
    "father-in-law", "my family", "her family", "his family", "elders",
    "my parents", "wedding", "funeral", "condolence", "condolences",
    "passed away", NULL};
static const char *const EN_CUS[] = {
    "gotong royong", "musyawarah", "mufakat", "jam karet", "rubber time",
    "bapakism", "asal bapak senang", "save face", "saving face", "lose face",
    "losing face", "hampers", "lebaran", "ramadan", "mudik", "nyepi",
    "galungan", "kuningan", "odalan", "ceremony", "ceremonies", "temple",
    "offering", "offerings", "canang", "banjar", "ngaben", "cremation",
    "tri hita karana", "pecalang", "sarong", "gift for", "gifts for", NULL};
static const char *const ID_EMO[] = {
    "malu", "sungkan", "gak enak", "nggak enak", "ga enak", "tidak enak",
    "gengsi", "sedih", "kecewa", "khawatir", "takut", "cemas", "bingung",
    "pusing", "stres", "stress", "marah", "kesal", "kesel", "tersinggung",
    "lega", "rindu", "kangen", "senang banget", "seneng banget", "panik",
    "deg degan", "minder", "capek", "ditipu", "merasa bodoh", "galau", NULL};
static const char *const ID_POL[] = {
    "mohon maaf", "maaf mengganggu", "maaf ganggu", "permisi",
    "mohon bantuannya", "punten", "dengan hormat", "kalau boleh",
    "boleh tanya", "mohon petunjuk", "maaf sebelumnya", NULL};
static const char *const ID_HES[] = {
    "ragu", "kalau tidak keberatan", "kalau nggak keberatan", "gimana ya",
    "bagaimana ya", "takut salah", "nggak tahu harus", "gak tau harus",
    "mau tanya tapi", "agak ragu", "gak enakan", NULL};
static const char *const ID_FAM[] = {
    "suami", "istri", "mertua", "keluarga", "orang tua", "ortu", "anak saya",
    "pernikahan", "nikah", "menikah", "kondangan", "melayat", "berduka",
    "saudara", "ipar", NULL};
static const char *const ID_CUS[] = {
    "gotong royong", "musyawarah", "mufakat", "jam karet", "ngaret",
    "bapak senang", "bapakisme", "atasan", "thr", "lebaran", "mudik",
    "puasa", "ramadan", "hampers", "parsel", "nyepi", "galungan", "kuningan",
    "odalan", "upacara", "sesajen", "canang", "banjar", "ngaben", "pura",
    "arisan", "silaturahmi", "basa basi", "salam tempel", NULL};
static const char *const IT_EMO[] = {
    "mi vergogno", "vergogna", "imbarazzo", "imbarazzato", "imbarazzata",
    "che figuraccia", "domanda stupida", "preoccupato", "preoccupata",
    "ho paura", "ansia", "agitato", "agitata", "stressato", "stressata",
    "triste", "deluso", "delusa", "arrabbiato", "arrabbiata", "offeso",
    "offesa", "confuso", "confusa", "sollevato", "sollevata", "nostalgia",
    "mi manca", "grato", "grata", "truffato", "truffata", "disperato",
    "disperata", "malu", NULL};
static const char *const IT_POL[] = {
    "scusi il disturbo", "scusate il disturbo", "mi scusi", "con rispetto",
    "gentilmente", "per cortesia", "perdonate", "se non disturbo",
    "scusate l'ignoranza", NULL};
static const char *const IT_HES[] = {
    "non so se", "forse e una domanda", "esito", "non vorrei sembrare",
    "e scortese", "come dire di no", "non so come dire", "non vorrei offendere",
    NULL};
static const char *const IT_FAM[] = {
    "mia moglie", "mio marito", "suoceri", "suocera", "suocero",
    "la mia famiglia", "famiglia", "parenti", "matrimonio", "funerale",
    "lutto", "condoglianze", "anziani", NULL};
static const char *const IT_CUS[] = {
    "gotong royong", "musyawarah", "jam karet", "gerarchia", "regalo",
    "regali", "mancia", "thr", "tredicesima", "ramadan", "lebaran", "nyepi",
    "galungan", "cerimonia", "cerimonie", "tempio", "templi", "offerte",
    "offerta", "banjar", "ngaben", "cremazione", "bella figura",
    "perdere la faccia", "salvare la faccia", NULL};

static const builtin_t BUILTIN[] = {
    {JIWA_LANG_EN, MK_EMOTION, EN_EMO},    {JIWA_LANG_EN, MK_POLITENESS, EN_POL},
    {JIWA_LANG_EN, MK_HESITATION, EN_HES}, {JIWA_LANG_EN, MK_FAMILY, EN_FAM},
    {JIWA_LANG_EN, MK_CUSTOMS, EN_CUS},    {JIWA_LANG_ID, MK_EMOTION, ID_EMO},
    {JIWA_LANG_ID, MK_POLITENESS, ID_POL}, {JIWA_LANG_ID, MK_HESITATION, ID_HES},
    {JIWA_LANG_ID, MK_FAMILY, ID_FAM},     {JIWA_LANG_ID, MK_CUSTOMS, ID_CUS},
    {JIWA_LANG_IT, MK_EMOTION, IT_EMO},    {JIWA_LANG_IT, MK_POLITENESS, IT_POL},
    {JIWA_LANG_IT, MK_HESITATION, IT_HES}, {JIWA_LANG_IT, MK_FAMILY, IT_FAM},
    {JIWA_LANG_IT, MK_CUSTOMS, IT_CUS},
};

/* Emoji and other markers with no word in them (the normaliser drops
 * them): matched as bytes in the raw query. */
static const char *const RAW_BUILTIN[] = {"\xf0\x9f\x99\x8f", /* 🙏 */
                                          "\xf0\x9f\x98\x85", /* 😅 */
                                          "\xf0\x9f\x98\xa2", /* 😢 */
                                          "\xf0\x9f\x98\xad", /* 😭 */
                                          NULL};

/* ---- the marker table: open addressing on (lang, normalised phrase) ------- */

typedef struct {
  char *key;      /* lang byte + normalised phrase, NUL-terminated; NULL = empty */
  uint64_t hash;
  uint8_t kind;   /* the first kind it was added with (builtin wins) */
  uint8_t detect; /* counts for detection */
  uint32_t nids;
  char **ids;     /* insights carrying it */
} mk_t;

typedef struct {
  mk_t *slots;
  uint32_t cap, n;
  uint32_t maxn; /* longest phrase in words */
  /* raw (no-word) markers */
  struct {
    char *text;
    uint8_t lang, kind, detect;
    uint32_t nids;
    char **ids;
  } raw[RAW_MAX];
  uint32_t nraw;
} mktab_t;

static void mk_free_ids(char **ids, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    free(ids[i]);
  free(ids);
}

static void mktab_free(mktab_t *t) {
  for (uint32_t i = 0; i < t->cap; i++)
    if (t->slots[i].key) {
      free(t->slots[i].key);
      mk_free_ids(t->slots[i].ids, t->slots[i].nids);
    }
  free(t->slots);
  for (uint32_t i = 0; i < t->nraw; i++) {
    free(t->raw[i].text);
    mk_free_ids(t->raw[i].ids, t->raw[i].nids);
  }
  memset(t, 0, sizeof *t);
}

static mk_t *mktab_find(const mktab_t *t, const char *key, size_t klen,
                        uint64_t h) {
  if (!t->cap)
    return NULL;
  for (uint32_t i = (uint32_t)h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
    mk_t *m = &t->slots[i];
    if (!m->key)
      return NULL;
    if (m->hash == h && strncmp(m->key, key, klen) == 0 && m->key[klen] == 0)
      return m;
  }
}

static int mktab_grow(mktab_t *t) {
  uint32_t ncap = t->cap ? t->cap * 2 : 1024;
  mk_t *ns = calloc(ncap, sizeof *ns);
  if (!ns)
    return JIWA_ENOMEM;
  for (uint32_t i = 0; i < t->cap; i++)
    if (t->slots[i].key) {
      uint32_t j = (uint32_t)t->slots[i].hash & (ncap - 1);
      while (ns[j].key)
        j = (j + 1) & (ncap - 1);
      ns[j] = t->slots[i];
    }
  free(t->slots);
  t->slots = ns;
  t->cap = ncap;
  return 0;
}

static int add_id(char ***ids, uint32_t *n, const char *id) {
  for (uint32_t i = 0; i < *n; i++)
    if (strcmp((*ids)[i], id) == 0)
      return 0;
  char **v = realloc(*ids, (*n + 1) * sizeof *v);
  if (!v)
    return JIWA_ENOMEM;
  *ids = v;
  if (!(v[*n] = strdup(id)))
    return JIWA_ENOMEM;
  (*n)++;
  return 0;
}

/* Add marker @p text (raw, as written) of @p lang (UNKNOWN = any). */
static int mktab_add(mktab_t *t, jiwa_lang_t lang, int kind, int detect,
                     const char *text, size_t len, const char *id) {
  char norm[256];
  size_t nl = jiwa_text_normalize(text, len, norm + 1, sizeof norm - 1);
  if (nl == 0) { /* no word in it: an emoji, matched raw */
    if (len == 0 || len > 64)
      return 0;
    for (uint32_t i = 0; i < t->nraw; i++)
      if (t->raw[i].lang == lang && strlen(t->raw[i].text) == len &&
          memcmp(t->raw[i].text, text, len) == 0)
        return id ? add_id(&t->raw[i].ids, &t->raw[i].nids, id) : 0;
    if (t->nraw == RAW_MAX)
      return 0;
    char *c = strndup(text, len);
    if (!c)
      return JIWA_ENOMEM;
    t->raw[t->nraw].text = c;
    t->raw[t->nraw].lang = (uint8_t)lang;
    t->raw[t->nraw].kind = (uint8_t)kind;
    t->raw[t->nraw].detect = (uint8_t)detect;
    t->raw[t->nraw].ids = NULL;
    t->raw[t->nraw].nids = 0;
    t->nraw++;
    return id ? add_id(&t->raw[t->nraw - 1].ids, &t->raw[t->nraw - 1].nids,
                       id)
              : 0;
  }
  norm[0] = (char)('0' + lang);
  nl++;
  unsigned words = 1;
  for (size_t i = 1; i < nl; i++)
    words += norm[i] == ' ';
  if (words > NGRAM_MAX)
    return 0;
  uint64_t h = jiwa_text_hash64(norm, nl, 0x6d61726b);
  mk_t *m = mktab_find(t, norm, nl, h);
  if (!m) {
    if ((t->n + 1) * 2 > t->cap && mktab_grow(t))
      return JIWA_ENOMEM;
    uint32_t i = (uint32_t)h & (t->cap - 1);
    while (t->slots[i].key)
      i = (i + 1) & (t->cap - 1);
    m = &t->slots[i];
    if (!(m->key = strndup(norm, nl)))
      return JIWA_ENOMEM;
    m->hash = h;
    m->kind = (uint8_t)kind;
    t->n++;
    if (words > t->maxn)
      t->maxn = words;
  }
  if (detect)
    m->detect = 1;
  return id ? add_id(&m->ids, &m->nids, id) : 0;
}

/* ---- context --------------------------------------------------------------- */

typedef enum { SEED_NONE, SEED_WAIT, SEED_RUNNING, SEED_DONE } seed_state_t;

typedef struct import_job import_job_t;

typedef struct {
  /* config */
  char *collection;
  int64_t k;
  int64_t candidates;
  double min_score;
  double need_score;
  double dedup;
  int lang_fallback;
  int64_t max_context;
  double marker_boost;
  int builtin_markers;
  int insight_markers;
  char *header;
  jiwa_cfg_raw_t extra_markers;
  jiwa_cfg_raw_t seed_files;
  /* state */
  mktab_t mk;
  seed_state_t seed;
  uint64_t seeded, seed_errors, queries, needed;
  import_job_t *job; /* the import running (one at a time) */
  import_job_t *queued_head, *queued_tail;
} rag_ctx_t;

static const jiwa_cfg_field_t rag_config[] = {
    {JIWA_CFG_STR, "collection", "cultural", offsetof(rag_ctx_t, collection),
     0, 0, 0, "the store collection of insights (store.collections)"},
    {JIWA_CFG_INT, "k", "3", offsetof(rag_ctx_t, k), 0, 1, K_MAX,
     "insights per reply when the request gives no k"},
    {JIWA_CFG_INT, "candidates", "16", offsetof(rag_ctx_t, candidates), 0,
     K_MAX, POOL_MAX, "candidates searched before ranking"},
    {JIWA_CFG_DOUBLE, "min_score", "0.12", offsetof(rag_ctx_t, min_score), 0,
     0, 1, "drop insights ranked below this (cosine + marker boost)"},
    {JIWA_CFG_DOUBLE, "need_score", "0.33", offsetof(rag_ctx_t, need_score), 0,
     0, 2, "without a marker, inject context only when the best cosine "
           "reaches this (above 1: markers only)"},
    {JIWA_CFG_DOUBLE, "dedup", "0.9", offsetof(rag_ctx_t, dedup), 0, 0, 1,
     "drop an insight this close (cosine) to a better one; 0 = off"},
    {JIWA_CFG_BOOL, "lang_fallback", "true", offsetof(rag_ctx_t, lang_fallback),
     0, 0, 0, "fill up to k from other languages when the query's has fewer"},
    {JIWA_CFG_INT, "max_context", "1200", offsetof(rag_ctx_t, max_context), 0,
     80, 20000, "longest context, in characters"},
    {JIWA_CFG_DOUBLE, "marker_boost", "0.1", offsetof(rag_ctx_t, marker_boost),
     0, 0, 1, "added to the score of an insight whose marker is in the query"},
    {JIWA_CFG_BOOL, "builtin_markers", "true",
     offsetof(rag_ctx_t, builtin_markers), 0, 0, 0,
     "use the built-in marker lists"},
    {JIWA_CFG_BOOL, "insight_markers", "true",
     offsetof(rag_ctx_t, insight_markers), 0, 0, 0,
     "the insights' own markers of two words or more detect too"},
    {JIWA_CFG_STR, "header", "Cultural context (use it, do not quote it):",
     offsetof(rag_ctx_t, header), 0, 0, 0, "first line of the context"},
    {JIWA_CFG_RAW, "extra_markers", NULL, offsetof(rag_ctx_t, extra_markers),
     0, 0, 0, "more markers: { en = {...}, id = {...}, it = {...}, any = {...} }"},
    {JIWA_CFG_RAW, "seed_files", NULL, offsetof(rag_ctx_t, seed_files), 0, 0,
     0, "knowledge JSONL files imported when the collection is empty"},
    {0}};

/* ---- small helpers --------------------------------------------------------- */

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void pack_strn(msgpack_packer *pk, const char *s, size_t n) {
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
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

/* ---- markers: load and save ------------------------------------------------ */

static void load_builtin(rag_ctx_t *c) {
  for (size_t b = 0; b < sizeof BUILTIN / sizeof BUILTIN[0]; b++)
    for (const char *const *w = BUILTIN[b].words; *w; w++)
      mktab_add(&c->mk, BUILTIN[b].lang, BUILTIN[b].kind, 1, *w, strlen(*w),
                NULL);
  for (const char *const *w = RAW_BUILTIN; *w; w++)
    mktab_add(&c->mk, JIWA_LANG_UNKNOWN, MK_EMOTION, 1, *w, strlen(*w), NULL);
}

/* extra_markers = { en = {"..."}, any = {"..."} } (msgpack map). */
static int load_extra(jiwa_actor_t *self, rag_ctx_t *c) {
  if (!c->extra_markers.data)
    return 0;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it, k, v;
  jiwa_mp_reader_init(&r, c->extra_markers.data, c->extra_markers.len);
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_MAP)
    goto bad;
  for (uint32_t i = 0; i < it.v.count; i++) {
    if (jiwa_mp_next(&r, &k) || k.type != JIWA_MP_STR ||
        jiwa_mp_next(&r, &v) || v.type != JIWA_MP_ARRAY)
      goto bad;
    char code[8];
    snprintf(code, sizeof code, "%.*s", (int)(k.v.s.len < 7 ? k.v.s.len : 7),
             k.v.s.ptr);
    jiwa_lang_t lang = jiwa_lang_from_code(code);
    if (lang == JIWA_LANG_UNKNOWN && strcmp(code, "any") != 0)
      goto bad;
    for (uint32_t j = 0; j < v.v.count; j++) {
      jiwa_mp_item_t s;
      if (jiwa_mp_next(&r, &s) || s.type != JIWA_MP_STR)
        goto bad;
      mktab_add(&c->mk, lang, MK_CONFIG, 1, s.v.s.ptr, s.v.s.len, NULL);
    }
  }
  return 0;
bad:
  jiwa_log(self, JIWA_LOG_ERROR,
           "extra_markers must be { en = {\"...\"}, id = {...}, it = {...}, "
           "any = {...} }");
  return JIWA_ECONFIG;
}

/* kv "markers:<lang>" = { phrase = [ids] }: the insights' markers. */
static int load_kv_item(const void *key, size_t klen, const void *val,
                        size_t vlen, void *ud) {
  rag_ctx_t *c = ud;
  if (klen < 9)
    return 0;
  char code[8];
  snprintf(code, sizeof code, "%.*s", (int)(klen - 8 < 7 ? klen - 8 : 7),
           (const char *)key + 8);
  jiwa_lang_t lang = jiwa_lang_from_code(code);
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it, k, v, s;
  jiwa_mp_reader_init(&r, val, vlen);
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_MAP)
    return 0;
  for (uint32_t i = 0; i < it.v.count; i++) {
    if (jiwa_mp_next(&r, &k) || k.type != JIWA_MP_STR ||
        jiwa_mp_next(&r, &v) || v.type != JIWA_MP_ARRAY)
      return 0;
    for (uint32_t j = 0; j < v.v.count; j++) {
      char id[JIWA_KNOWLEDGE_ID_MAX + 1];
      if (jiwa_mp_next(&r, &s) || s.type != JIWA_MP_STR ||
          s.v.s.len > JIWA_KNOWLEDGE_ID_MAX)
        return 0;
      memcpy(id, s.v.s.ptr, s.v.s.len);
      id[s.v.s.len] = '\0';
      size_t words = 1;
      for (uint32_t x = 0; x < k.v.s.len; x++)
        words += k.v.s.ptr[x] == ' ';
      mktab_add(&c->mk, lang, MK_INSIGHT, c->insight_markers && words >= 2,
                k.v.s.ptr, k.v.s.len, id);
    }
  }
  return 0;
}

/* Write the insight markers of @p lang back to kv (fire and forget: the
 * table in memory is what queries use). */
static void save_markers(jiwa_actor_t *self, rag_ctx_t *c, jiwa_lang_t lang) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  uint32_t n = 0;
  for (uint32_t i = 0; i < c->mk.cap; i++) {
    mk_t *m = &c->mk.slots[i];
    n += m->key && m->nids && m->key[0] == '0' + (char)lang;
  }
  for (uint32_t i = 0; i < c->mk.nraw; i++)
    n += c->mk.raw[i].nids && c->mk.raw[i].lang == lang;
  msgpack_pack_map(&w.pk, n);
  for (uint32_t i = 0; i < c->mk.cap; i++) {
    mk_t *m = &c->mk.slots[i];
    if (!(m->key && m->nids && m->key[0] == '0' + (char)lang))
      continue;
    jiwa_mp_put_str(&w.pk, m->key + 1);
    msgpack_pack_array(&w.pk, m->nids);
    for (uint32_t j = 0; j < m->nids; j++)
      jiwa_mp_put_str(&w.pk, m->ids[j]);
  }
  for (uint32_t i = 0; i < c->mk.nraw; i++) {
    if (!(c->mk.raw[i].nids && c->mk.raw[i].lang == lang))
      continue;
    jiwa_mp_put_str(&w.pk, c->mk.raw[i].text);
    msgpack_pack_array(&w.pk, c->mk.raw[i].nids);
    for (uint32_t j = 0; j < c->mk.raw[i].nids; j++)
      jiwa_mp_put_str(&w.pk, c->mk.raw[i].ids[j]);
  }
  char key[16];
  snprintf(key, sizeof key, "markers:%s", jiwa_lang_code(lang));
  int rc = jiwa_kv_put(self, key, strlen(key), w.sbuf.data, w.sbuf.size, NULL,
                       NULL);
  if (rc)
    jiwa_log(self, JIWA_LOG_WARN, "markers of '%s' not saved: %s",
             jiwa_lang_code(lang), jiwa_strerror(rc));
  jiwa_mp_writer_free(&w);
}

/* ---- detection ------------------------------------------------------------- */

typedef struct {
  const char *phrase; /* normalised (points into the table) */
  uint8_t lang, kind, detect;
  uint32_t nids;
  char **ids;
} match_t;

typedef struct {
  match_t m[MATCH_MAX];
  uint32_t n;
  int detect; /* index of the first detecting match, -1 none */
} matches_t;

static void add_match(matches_t *ms, const char *phrase, uint8_t lang,
                      uint8_t kind, uint8_t detect, uint32_t nids,
                      char **ids) {
  for (uint32_t i = 0; i < ms->n; i++)
    if (ms->m[i].phrase == phrase)
      return;
  if (ms->n == MATCH_MAX)
    return;
  match_t *m = &ms->m[ms->n];
  m->phrase = phrase;
  m->lang = lang;
  m->kind = kind;
  m->detect = detect;
  m->nids = nids;
  m->ids = ids;
  if (detect && ms->detect < 0)
    ms->detect = (int)ms->n;
  ms->n++;
}

static void detect(const rag_ctx_t *c, const char *q, size_t qlen,
                   jiwa_lang_t lang, matches_t *ms) {
  ms->n = 0;
  ms->detect = -1;
  static __thread jiwa_token_t toks[QTOK_MAX];
  unsigned nt = 0;
  jiwa_text_iter_t it;
  jiwa_text_iter_init(&it, q, qlen);
  while (nt < QTOK_MAX && jiwa_text_next(&it, &toks[nt]))
    nt++;
  jiwa_lang_t langs[4];
  unsigned nl = 0;
  langs[nl++] = JIWA_LANG_UNKNOWN; /* "any" markers */
  if (lang != JIWA_LANG_UNKNOWN) {
    langs[nl++] = lang;
  } else {
    langs[nl++] = JIWA_LANG_EN;
    langs[nl++] = JIWA_LANG_ID;
    langs[nl++] = JIWA_LANG_IT;
  }
  char key[NGRAM_MAX * (JIWA_TEXT_MAX_TOKEN + 1) + 2];
  for (unsigned i = 0; i < nt; i++) {
    size_t kl = 1;
    for (unsigned n = 0; n < c->mk.maxn && i + n < nt; n++) {
      if (n)
        key[kl++] = ' ';
      memcpy(key + kl, toks[i + n].s, toks[i + n].len);
      kl += toks[i + n].len;
      for (unsigned l = 0; l < nl; l++) {
        key[0] = (char)('0' + langs[l]);
        uint64_t h = jiwa_text_hash64(key, kl, 0x6d61726b);
        const mk_t *m = mktab_find(&c->mk, key, kl, h);
        if (m)
          add_match(ms, m->key + 1, (uint8_t)langs[l], m->kind, m->detect,
                    m->nids, m->ids);
      }
    }
  }
  for (uint32_t i = 0; i < c->mk.nraw; i++) {
    const char *t = c->mk.raw[i].text;
    int lang_ok = c->mk.raw[i].lang == JIWA_LANG_UNKNOWN ||
                  lang == JIWA_LANG_UNKNOWN || c->mk.raw[i].lang == lang;
    if (lang_ok && memmem(q, qlen, t, strlen(t)))
      add_match(ms, t, c->mk.raw[i].lang, c->mk.raw[i].kind,
                c->mk.raw[i].detect, c->mk.raw[i].nids, c->mk.raw[i].ids);
  }
}

static int marker_has_id(const matches_t *ms, const char *id) {
  for (uint32_t i = 0; i < ms->n; i++)
    for (uint32_t j = 0; j < ms->m[i].nids; j++)
      if (strcmp(ms->m[i].ids[j], id) == 0)
        return 1;
  return 0;
}

/* ---- retrieval ------------------------------------------------------------- */

typedef struct {
  const jiwa_coll_hit_t *hit;
  float cosine, score;
  int marker;
  int fallback;
  /* meta fields (borrowed from the hit) */
  const char *category, *topic, *title, *text, *respond, *lang;
  size_t category_len, topic_len, title_len, text_len, respond_len, lang_len;
} cand_t;

static void meta_str(const jiwa_coll_hit_t *h, const char *k, const char **s,
                     size_t *n) {
  *s = "";
  *n = 0;
  if (h->meta)
    jiwa_mp_get_str(h->meta, h->meta_len, k, s, n);
}

static void fill_cand(cand_t *c, const jiwa_coll_hit_t *h,
                      const matches_t *ms, double boost, int fallback) {
  memset(c, 0, sizeof *c);
  c->hit = h;
  c->cosine = h->score;
  c->marker = marker_has_id(ms, h->id);
  c->score = h->score + (c->marker ? (float)boost : 0.0f);
  c->fallback = fallback;
  meta_str(h, "category", &c->category, &c->category_len);
  meta_str(h, "topic", &c->topic, &c->topic_len);
  meta_str(h, "title", &c->title, &c->title_len);
  meta_str(h, "text", &c->text, &c->text_len);
  meta_str(h, "respond", &c->respond, &c->respond_len);
  meta_str(h, "lang", &c->lang, &c->lang_len);
}

static int cand_cmp(const void *a, const void *b) {
  const cand_t *x = a, *y = b;
  if (x->fallback != y->fallback)
    return x->fallback - y->fallback;
  return (x->score < y->score) - (x->score > y->score);
}

/* Characters of UTF-8 bytes. */
static size_t u8len(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    c += ((unsigned char)s[i] & 0xC0) != 0x80;
  return c;
}

typedef struct {
  const char *query;
  size_t query_len;
  jiwa_lang_t lang;
  uint32_t k;
  const char *cats[JIWA_COLL_VALUES_MAX];
  char catbuf[JIWA_COLL_VALUES_MAX][40];
  uint32_t ncats;
} rag_req_t;

static int parse_req(const jiwa_msg_t *m, rag_req_t *r, int64_t defk,
                     const char **why) {
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  memset(r, 0, sizeof *r);
  if (jiwa_mp_get_str(b, len, "query", &r->query, &r->query_len)) {
    *why = "rag.query needs a string field 'query'";
    return JIWA_EINVAL;
  }
  const char *ls;
  size_t ll;
  r->lang = JIWA_LANG_UNKNOWN;
  int have_lang = 0;
  if (jiwa_mp_get_str(b, len, "lang", &ls, &ll) == 0 && ll > 0 && ll < 16) {
    char code[16];
    memcpy(code, ls, ll);
    code[ll] = '\0';
    r->lang = jiwa_lang_from_code(code);
    have_lang = r->lang != JIWA_LANG_UNKNOWN;
  }
  if (!have_lang) {
    jiwa_lang_result_t lr;
    if (jiwa_lang_detect(r->query, r->query_len, &lr) == 0)
      r->lang = lr.lang;
  }
  int64_t k = defk;
  if (jiwa_mp_get_int(b, len, "k", &k) == 0 && (k < 1 || k > K_MAX)) {
    *why = "rag.query: k must be 1..10";
    return JIWA_EINVAL;
  }
  r->k = (uint32_t)k;
  jiwa_mp_reader_t at;
  if (jiwa_mp_map_find(b, len, "categories", &at) == 0) {
    jiwa_mp_item_t it, s;
    memset(&s, 0, sizeof s);
    if (jiwa_mp_next(&at, &it)) {
      *why = "rag.query: malformed categories";
      return JIWA_EINVAL;
    }
    uint32_t n = it.type == JIWA_MP_ARRAY ? it.v.count : 1;
    if (it.type == JIWA_MP_STR) {
      s = it;
    } else if (it.type != JIWA_MP_ARRAY && it.type != JIWA_MP_NIL) {
      *why = "rag.query: categories must be an array of strings";
      return JIWA_EINVAL;
    }
    if (it.type == JIWA_MP_NIL)
      n = 0;
    if (n > JIWA_COLL_VALUES_MAX) {
      *why = "rag.query: at most 64 categories";
      return JIWA_EINVAL;
    }
    for (uint32_t i = 0; i < n; i++) {
      if (it.type == JIWA_MP_ARRAY && (jiwa_mp_next(&at, &s) ||
                                       s.type != JIWA_MP_STR)) {
        *why = "rag.query: categories must be an array of strings";
        return JIWA_EINVAL;
      }
      if (s.v.s.len == 0 || s.v.s.len >= sizeof r->catbuf[0]) {
        *why = "rag.query: a category of 1..39 bytes";
        return JIWA_EINVAL;
      }
      memcpy(r->catbuf[r->ncats], s.v.s.ptr, s.v.s.len);
      r->catbuf[r->ncats][s.v.s.len] = '\0';
      r->cats[r->ncats] = r->catbuf[r->ncats];
      r->ncats++;
    }
  }
  return 0;
}

static int search(jiwa_actor_t *self, rag_ctx_t *c, const rag_req_t *r,
                  int lang_filter, uint32_t k, jiwa_coll_result_t *out) {
  jiwa_coll_filter_t f[2];
  uint32_t nf = 0;
  const char *lv[1] = {jiwa_lang_code(r->lang)};
  if (lang_filter) {
    f[nf].field = "lang";
    f[nf].values = lv;
    f[nf].nvalues = 1;
    nf++;
  }
  if (r->ncats) {
    f[nf].field = "category";
    f[nf].values = r->cats;
    f[nf].nvalues = r->ncats;
    nf++;
  }
  jiwa_coll_query_t q = JIWA_COLL_QUERY_INIT;
  q.text = r->query;
  q.text_len = r->query_len;
  q.k = k;
  q.min_score = 0;
  q.filters = nf ? f : NULL;
  q.nfilters = nf;
  q.dedup = (float)c->dedup;
  q.flags = JIWA_COLL_WITH_META;
  return jiwa_collection_search(self, c->collection, &q, out);
}

static int same_topic(const cand_t *a, const cand_t *b) {
  return a->topic_len == b->topic_len && a->category_len == b->category_len &&
         memcmp(a->topic, b->topic, a->topic_len) == 0 &&
         memcmp(a->category, b->category, a->category_len) == 0;
}

static int handle_query(jiwa_actor_t *self, rag_ctx_t *c,
                        const jiwa_msg_t *msg) {
  double t0 = now_us();
  rag_req_t r;
  const char *why = "";
  int rc = parse_req(msg, &r, c->k, &why);
  if (rc)
    return reply_err(self, msg, rc, why);
  c->queries++;
  if (r.query_len == 0 || r.query_len > JIWA_TEXT_MAX_INPUT)
    return reply_err(self, msg, JIWA_EINVAL,
                     "rag.query: query must be 1..65536 bytes");

  matches_t ms;
  detect(c, r.query, r.query_len, r.lang, &ms);

  int lang_known = r.lang != JIWA_LANG_UNKNOWN;
  uint32_t pool = (uint32_t)c->candidates;
  if (pool < r.k)
    pool = r.k;
  jiwa_coll_result_t res1 = {0}, res2 = {0};
  rc = search(self, c, &r, lang_known, pool, &res1);
  if (rc == 0 && lang_known && c->lang_fallback) {
    /* count what the language gave before deciding on a fallback */
    uint32_t good = 0;
    for (uint32_t i = 0; i < res1.n; i++)
      good += res1.hits[i].score + (marker_has_id(&ms, res1.hits[i].id)
                                        ? (float)c->marker_boost
                                        : 0.0f) >=
              (float)c->min_score;
    if (good < r.k)
      rc = search(self, c, &r, 0, pool, &res2);
  }
  if (rc) {
    jiwa_collection_result_free(&res1);
    jiwa_collection_result_free(&res2);
    char text[160];
    snprintf(text, sizeof text, "rag.query: collection '%s': %s",
             c->collection, jiwa_strerror(rc));
    return reply_err(self, msg, rc, text);
  }

  cand_t cands[2 * POOL_MAX];
  uint32_t nc = 0;
  float best = 0;
  for (uint32_t i = 0; i < res1.n && nc < POOL_MAX; i++) {
    fill_cand(&cands[nc], &res1.hits[i], &ms, c->marker_boost, 0);
    if (cands[nc].cosine > best)
      best = cands[nc].cosine;
    nc++;
  }
  for (uint32_t i = 0; i < res2.n && nc < 2 * POOL_MAX; i++) {
    int dup = 0;
    for (uint32_t j = 0; j < res1.n && !dup; j++)
      dup = strcmp(res1.hits[j].id, res2.hits[i].id) == 0;
    if (dup)
      continue;
    fill_cand(&cands[nc], &res2.hits[i], &ms, c->marker_boost, 1);
    if (cands[nc].cosine > best)
      best = cands[nc].cosine;
    nc++;
  }
  qsort(cands, nc, sizeof *cands, cand_cmp);

  int needed = ms.detect >= 0 || best >= (float)c->need_score;
  char reason[200];
  if (ms.detect >= 0) {
    const match_t *m = &ms.m[ms.detect];
    snprintf(reason, sizeof reason, "marker '%s' (%s, %s)", m->phrase,
             KIND_NAMES[m->kind],
             m->lang ? jiwa_lang_code((jiwa_lang_t)m->lang) : "any");
  } else if (needed) {
    snprintf(reason, sizeof reason, "similarity %.2f >= %.2f", best,
             c->need_score);
  } else {
    snprintf(reason, sizeof reason,
             "no cultural signal (no marker, best similarity %.2f < %.2f)",
             best, c->need_score);
  }

  /* pick: score >= min_score, same-language first, one per topic across
   * the fallback */
  cand_t *pick[K_MAX];
  uint32_t np = 0;
  if (needed)
    for (uint32_t i = 0; i < nc && np < r.k; i++) {
      if (cands[i].score < (float)c->min_score)
        continue;
      int dup = 0;
      for (uint32_t j = 0; j < np && !dup; j++)
        dup = cands[i].fallback && same_topic(&cands[i], pick[j]);
      if (!dup)
        pick[np++] = &cands[i];
    }
  if (needed)
    c->needed++;

  /* the context: whole lines only, within max_context characters */
  jiwa_mp_writer_t ctxw;
  jiwa_mp_writer_init(&ctxw);
  msgpack_sbuffer *sb = &ctxw.sbuf;
  size_t chars = 0;
  uint32_t used = 0;
  if (np) {
    msgpack_sbuffer_write(sb, c->header, strlen(c->header));
    chars = u8len(c->header, strlen(c->header));
    for (uint32_t i = 0; i < np; i++) {
      cand_t *p = pick[i];
      size_t line = 6 + u8len(p->category, p->category_len) +
                    u8len(p->topic, p->topic_len) +
                    u8len(p->text, p->text_len) +
                    (p->respond_len ? 10 + u8len(p->respond, p->respond_len)
                                    : 0);
      if (chars + line > (size_t)c->max_context) {
        pick[i] = NULL;
        continue;
      }
      chars += line;
      msgpack_sbuffer_write(sb, "\n- [", 4);
      msgpack_sbuffer_write(sb, p->category, p->category_len);
      msgpack_sbuffer_write(sb, "/", 1);
      msgpack_sbuffer_write(sb, p->topic, p->topic_len);
      msgpack_sbuffer_write(sb, "] ", 2);
      msgpack_sbuffer_write(sb, p->text, p->text_len);
      if (p->respond_len) {
        msgpack_sbuffer_write(sb, " Respond: ", 10);
        msgpack_sbuffer_write(sb, p->respond, p->respond_len);
      }
      used++;
    }
    if (!used)
      sb->size = 0;
  }

  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 7);
  jiwa_mp_put_str(&w.pk, "context");
  pack_strn(&w.pk, sb->data ? sb->data : "", sb->size);
  jiwa_mp_put_str(&w.pk, "insights");
  msgpack_pack_array(&w.pk, used);
  for (uint32_t i = 0; i < np; i++) {
    cand_t *p = pick[i];
    if (!p)
      continue;
    msgpack_pack_map(&w.pk, 8);
    jiwa_mp_put_kv_str(&w.pk, "id", p->hit->id);
    jiwa_mp_put_kv_double(&w.pk, "score", (double)p->score);
    jiwa_mp_put_kv_double(&w.pk, "cosine", (double)p->cosine);
    jiwa_mp_put_str(&w.pk, "category");
    pack_strn(&w.pk, p->category, p->category_len);
    jiwa_mp_put_str(&w.pk, "topic");
    pack_strn(&w.pk, p->topic, p->topic_len);
    jiwa_mp_put_str(&w.pk, "title");
    pack_strn(&w.pk, p->title, p->title_len);
    jiwa_mp_put_str(&w.pk, "lang");
    pack_strn(&w.pk, p->lang, p->lang_len);
    jiwa_mp_put_kv_str(&w.pk, "via",
                       p->marker ? "marker+vector" : "vector");
  }
  jiwa_mp_put_kv_bool(&w.pk, "needed", needed);
  jiwa_mp_put_kv_str(&w.pk, "reason", reason);
  jiwa_mp_put_str(&w.pk, "markers");
  msgpack_pack_array(&w.pk, ms.n);
  for (uint32_t i = 0; i < ms.n; i++)
    jiwa_mp_put_str(&w.pk, ms.m[i].phrase);
  jiwa_mp_put_kv_str(&w.pk, "lang", jiwa_lang_code(r.lang));
  jiwa_mp_put_kv_int(&w.pk, "took_us", (int64_t)(now_us() - t0));
  jiwa_mp_writer_free(&ctxw);
  jiwa_collection_result_free(&res1);
  jiwa_collection_result_free(&res2);
  jiwa_observe_ms(self, "query_ms", (now_us() - t0) / 1000.0);
  return reply_w(self, msg, "rag.result", &w);
}

/* ---- import (seed files and rag.import) ------------------------------------ */

struct import_job {
  import_job_t *next;
  jiwa_msg_t *req; /* rag.import ask (retained), NULL for the seed */
  /* input: files (seed) or a buffer (rag.import) */
  char *files[SEED_FILES_MAX];
  uint32_t nfiles;
  char *buf;
  size_t buflen;
  char *name;
  /* output of the work function */
  jiwa_knowledge_insight_t *ins;
  size_t n;
  char log[SEED_FILES_MAX][320]; /* one line per file: ok or file:line */
  int file_rc[SEED_FILES_MAX];
  int rc;
  char err[320];
  /* writing */
  size_t next_batch;
  int write_rc;
};

static void job_free(import_job_t *j) {
  if (!j)
    return;
  for (uint32_t i = 0; i < j->nfiles; i++)
    free(j->files[i]);
  free(j->buf);
  free(j->name);
  jiwa_knowledge_insights_free(j->ins, j->n);
  free(j);
}

/* Thread pool: read and validate. Each file is all or nothing; ids must be
 * unique across the files kept. */
static void job_work(void *ud) {
  import_job_t *j = ud;
  if (j->buf) {
    j->rc = jiwa_knowledge_parse_insights(j->buf, j->buflen, j->name, &j->ins,
                                          &j->n, j->err, sizeof j->err);
    return;
  }
  for (uint32_t f = 0; f < j->nfiles; f++) {
    char *data = NULL;
    size_t len = 0;
    jiwa_knowledge_insight_t *v = NULL;
    size_t n = 0;
    char err[300];
    int rc = jiwa_knowledge_read_file(j->files[f], SEED_MAX_BYTES, &data, &len);
    if (rc) {
      snprintf(j->log[f], sizeof j->log[f], "%s: cannot read: %s",
               j->files[f], jiwa_strerror(rc));
      j->file_rc[f] = rc;
      continue;
    }
    rc = jiwa_knowledge_parse_insights(data, len, j->files[f], &v, &n, err,
                                       sizeof err);
    free(data);
    if (rc == 0)
      for (size_t a = 0; a < n && rc == 0; a++)
        for (size_t b = 0; b < j->n && rc == 0; b++)
          if (strcmp(v[a].id, j->ins[b].id) == 0) {
            snprintf(err, sizeof err, "%s: id '%s' already imported",
                     j->files[f], v[a].id);
            rc = JIWA_EEXIST;
          }
    if (rc) {
      snprintf(j->log[f], sizeof j->log[f], "%s", err);
      j->file_rc[f] = rc;
      jiwa_knowledge_insights_free(v, n);
      continue;
    }
    if (n) {
      jiwa_knowledge_insight_t *all =
          realloc(j->ins, (j->n + n) * sizeof *all);
      if (!all) {
        jiwa_knowledge_insights_free(v, n);
        j->file_rc[f] = JIWA_ENOMEM;
        snprintf(j->log[f], sizeof j->log[f], "%s: out of memory",
                 j->files[f]);
        continue;
      }
      memcpy(all + j->n, v, n * sizeof *v);
      free(v); /* the entries moved */
      j->ins = all;
      j->n += n;
    }
    snprintf(j->log[f], sizeof j->log[f], "%s: %zu insights", j->files[f], n);
  }
}

static void job_write_next(jiwa_actor_t *self, rag_ctx_t *c);
static void job_start_next(jiwa_actor_t *self, rag_ctx_t *c);

static void job_finish(jiwa_actor_t *self, rag_ctx_t *c) {
  import_job_t *j = c->job;
  c->job = NULL;
  int ok = j->rc == 0 && j->write_rc == 0;
  if (ok) {
    /* the markers: memory first (queries use it), then kv */
    int langs[4] = {0};
    for (size_t i = 0; i < j->n; i++) {
      jiwa_lang_t l = jiwa_lang_from_code(j->ins[i].lang);
      langs[l] = 1;
      for (uint32_t m = 0; m < j->ins[i].nmarkers; m++) {
        const char *mk = j->ins[i].markers[m];
        size_t words = 1;
        for (const char *p = mk; *p; p++)
          words += *p == ' ';
        mktab_add(&c->mk, l, MK_INSIGHT, c->insight_markers && words >= 2, mk,
                  strlen(mk), j->ins[i].id);
      }
    }
    for (int l = 1; l < 4; l++)
      if (langs[l])
        save_markers(self, c, (jiwa_lang_t)l);
  }
  if (j->req) {
    if (ok) {
      jiwa_mp_writer_t w;
      jiwa_mp_writer_init(&w);
      msgpack_pack_map(&w.pk, 1);
      jiwa_mp_put_kv_int(&w.pk, "imported", (int64_t)j->n);
      reply_w(self, j->req, "rag.imported", &w);
    } else if (j->rc) {
      reply_err(self, j->req, j->rc, j->err);
    } else {
      char text[200];
      snprintf(text, sizeof text, "rag.import: writing to '%s' failed: %s",
               c->collection, jiwa_strerror(j->write_rc));
      reply_err(self, j->req, j->write_rc, text);
    }
    jiwa_msg_release(j->req);
  } else {
    c->seed = SEED_DONE;
    if (ok) {
      c->seeded += j->n;
      jiwa_log(self, JIWA_LOG_INFO, "seeded '%s' with %zu insights",
               c->collection, j->n);
    } else {
      c->seed_errors++;
      jiwa_log(self, JIWA_LOG_ERROR, "seeding '%s' failed: %s", c->collection,
               jiwa_strerror(j->write_rc));
    }
  }
  job_free(j);
  job_start_next(self, c);
}

static void job_written(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  rag_ctx_t *c = vctx;
  (void)ud;
  if (status && !c->job->write_rc)
    c->job->write_rc = status;
  if (c->job->write_rc || c->job->next_batch >= c->job->n)
    job_finish(self, c);
  else
    job_write_next(self, c);
}

static void job_write_next(jiwa_actor_t *self, rag_ctx_t *c) {
  import_job_t *j = c->job;
  size_t from = j->next_batch, n = j->n - from;
  if (n > BATCH)
    n = BATCH;
  jiwa_coll_record_t recs[BATCH];
  for (size_t i = 0; i < n; i++) {
    const jiwa_knowledge_insight_t *in = &j->ins[from + i];
    recs[i] = (jiwa_coll_record_t){.id = in->id,
                                   .text = in->embed,
                                   .text_len = in->embed_len,
                                   .meta = in->meta,
                                   .meta_len = in->meta_len};
  }
  j->next_batch = from + n;
  int rc = jiwa_collection_upsert(self, c->collection, recs, n, job_written,
                                  NULL);
  if (rc) {
    j->write_rc = rc;
    job_finish(self, c);
  }
}

static void job_done(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  rag_ctx_t *c = vctx;
  import_job_t *j = ud;
  if (status && !j->rc) {
    j->rc = status;
    snprintf(j->err, sizeof j->err, "import canceled");
  }
  if (!j->req) {
    for (uint32_t f = 0; f < j->nfiles; f++)
      jiwa_log(self, j->file_rc[f] ? JIWA_LOG_ERROR : JIWA_LOG_INFO,
               "seed %s%s", j->file_rc[f] ? "file refused: " : "", j->log[f]);
    uint64_t bad = 0;
    for (uint32_t f = 0; f < j->nfiles; f++)
      bad += j->file_rc[f] != 0;
    c->seed_errors += bad;
  }
  if (j->rc || j->n == 0) {
    job_finish(self, c);
    return;
  }
  j->next_batch = 0;
  job_write_next(self, c);
}

static void job_start_next(jiwa_actor_t *self, rag_ctx_t *c) {
  while (!c->job && c->queued_head) {
    import_job_t *j = c->queued_head;
    c->queued_head = j->next;
    if (!c->queued_head)
      c->queued_tail = NULL;
    c->job = j;
    int rc = jiwa_queue_work(self, job_work, job_done, j);
    if (rc) {
      j->rc = rc;
      snprintf(j->err, sizeof j->err, "cannot start the import: %s",
               jiwa_strerror(rc));
      job_finish(self, c);
    }
  }
}

static void job_enqueue(jiwa_actor_t *self, rag_ctx_t *c, import_job_t *j) {
  if (c->queued_tail)
    c->queued_tail->next = j;
  else
    c->queued_head = j;
  c->queued_tail = j;
  job_start_next(self, c);
}

/* The collection's record count from its stats map; negative on error. */
static int64_t coll_count(jiwa_actor_t *self, const char *coll) {
  void *st = NULL;
  size_t sl = 0;
  int rc = jiwa_collection_stats(self, coll, &st, &sl);
  if (rc)
    return rc;
  int64_t n = 0;
  if (jiwa_mp_get_int(st, sl, "count", &n))
    n = JIWA_EPROTO;
  jiwa_kv_free(st);
  return n;
}

/* Seed when the collection exists and is empty. In jiwad the collections
 * are open before the actors start; in a harness they may come later, so
 * a missing collection is retried on the next message. */
static void seed_check(jiwa_actor_t *self, rag_ctx_t *c) {
  if (c->seed != SEED_WAIT)
    return;
  int64_t n = coll_count(self, c->collection);
  if (n == JIWA_ENOENT)
    return;
  c->seed = SEED_DONE;
  if (n != 0) {
    if (n < 0)
      jiwa_log(self, JIWA_LOG_WARN, "collection '%s': %s; no seeding",
               c->collection, jiwa_strerror((int)n));
    return;
  }
  import_job_t *j = calloc(1, sizeof *j);
  if (!j)
    return;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it, s;
  jiwa_mp_reader_init(&r, c->seed_files.data, c->seed_files.len);
  if (jiwa_mp_next(&r, &it) == 0) {
    uint32_t n_items = it.type == JIWA_MP_ARRAY ? it.v.count : 1;
    for (uint32_t i = 0; i < n_items && j->nfiles < SEED_FILES_MAX; i++) {
      if (it.type == JIWA_MP_ARRAY) {
        if (jiwa_mp_next(&r, &s))
          break;
      } else {
        s = it;
      }
      if (s.type != JIWA_MP_STR || s.v.s.len == 0)
        continue;
      j->files[j->nfiles] = strndup(s.v.s.ptr, s.v.s.len);
      if (j->files[j->nfiles])
        j->nfiles++;
    }
  }
  if (!j->nfiles) {
    job_free(j);
    return;
  }
  c->seed = SEED_RUNNING;
  job_enqueue(self, c, j);
}

static int handle_import(jiwa_actor_t *self, rag_ctx_t *c,
                         const jiwa_msg_t *msg) {
  size_t len;
  const void *b = jiwa_msg_body(msg, &len);
  const char *s, *name = "rag.import";
  size_t sl, nl = strlen(name);
  if (jiwa_mp_get_str(b, len, "jsonl", &s, &sl))
    return reply_err(self, msg, JIWA_EINVAL,
                     "rag.import needs a string field 'jsonl' (knowledge "
                     "JSONL lines)");
  jiwa_mp_get_str(b, len, "name", &name, &nl);
  import_job_t *j = calloc(1, sizeof *j);
  if (!j || !(j->buf = malloc(sl + 1)) || !(j->name = strndup(name, nl))) {
    job_free(j);
    return reply_err(self, msg, JIWA_ENOMEM, "out of memory");
  }
  memcpy(j->buf, s, sl);
  j->buf[sl] = '\0';
  j->buflen = sl;
  j->req = jiwa_msg_retain(msg);
  job_enqueue(self, c, j);
  return 0;
}

/* rag.markers {entries: [{id, lang, markers: [...]}, ...]} (ask or tell):
 * learn the markers of insights written to the collection by another path
 * (the knowledge plugin's knowledge.import). Other fields are ignored. */
static int handle_markers(jiwa_actor_t *self, rag_ctx_t *c,
                          const jiwa_msg_t *msg) {
  size_t blen;
  const void *b = jiwa_msg_body(msg, &blen);
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  int ask = jiwa_msg_kind(msg) == JIWA_MSG_ASK;
  if (jiwa_mp_map_find(b, blen, "entries", &at) || jiwa_mp_next(&at, &it) ||
      it.type != JIWA_MP_ARRAY)
    return ask ? reply_err(self, msg, JIWA_EINVAL,
                           "rag.markers needs an array field 'entries'")
               : 0;
  int langs[4] = {0};
  int64_t learned = 0;
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_reader_t end = at;
    if (jiwa_mp_skip(&end))
      break;
    const char *e = (const char *)at.p;
    size_t el = (size_t)(end.p - at.p);
    at = end;
    char id[JIWA_KNOWLEDGE_ID_MAX + 1], code[8];
    jiwa_mp_reader_t m;
    jiwa_mp_item_t arr, s;
    if (jiwa_mp_get_strcpy(e, el, "id", id, sizeof id) || !id[0] ||
        jiwa_mp_get_strcpy(e, el, "lang", code, sizeof code) ||
        jiwa_mp_map_find(e, el, "markers", &m) || jiwa_mp_next(&m, &arr) ||
        arr.type != JIWA_MP_ARRAY || arr.v.count > JIWA_KNOWLEDGE_MARKERS_MAX)
      continue;
    jiwa_lang_t lang = jiwa_lang_from_code(code);
    if (lang == JIWA_LANG_UNKNOWN)
      continue;
    for (uint32_t j = 0; j < arr.v.count; j++) {
      if (jiwa_mp_next(&m, &s) || s.type != JIWA_MP_STR || s.v.s.len == 0 ||
          s.v.s.len > 160)
        break;
      size_t words = 1;
      for (uint32_t x = 0; x < s.v.s.len; x++)
        words += s.v.s.ptr[x] == ' ';
      if (mktab_add(&c->mk, lang, MK_INSIGHT, c->insight_markers && words >= 2,
                    s.v.s.ptr, s.v.s.len, id) == 0)
        learned++;
    }
    langs[lang] = 1;
  }
  for (int l = 1; l < 4; l++)
    if (langs[l])
      save_markers(self, c, (jiwa_lang_t)l);
  if (!ask)
    return 0;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_int(&w.pk, "markers", learned);
  return reply_w(self, msg, "rag.markers", &w);
}

static int handle_stats(jiwa_actor_t *self, rag_ctx_t *c,
                        const jiwa_msg_t *msg) {
  static const char *const SEED[] = {"none", "waiting", "running", "done"};
  int64_t n = coll_count(self, c->collection);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 8);
  jiwa_mp_put_kv_int(&w.pk, "count", n < 0 ? 0 : n);
  jiwa_mp_put_kv_int(&w.pk, "markers", c->mk.n + c->mk.nraw);
  jiwa_mp_put_kv_str(&w.pk, "seed", SEED[c->seed]);
  jiwa_mp_put_kv_int(&w.pk, "seeded", (int64_t)c->seeded);
  jiwa_mp_put_kv_int(&w.pk, "seed_errors", (int64_t)c->seed_errors);
  jiwa_mp_put_kv_int(&w.pk, "queries", (int64_t)c->queries);
  jiwa_mp_put_kv_int(&w.pk, "needed", (int64_t)c->needed);
  jiwa_mp_put_kv_bool(&w.pk, "busy", c->job != NULL);
  return reply_w(self, msg, "rag.stats", &w);
}

/* ---- lifecycle --------------------------------------------------------------- */

static int rag_init(jiwa_actor_t *self, void *vctx) {
  rag_ctx_t *c = vctx;
  if (c->builtin_markers)
    load_builtin(c);
  int rc = load_extra(self, c);
  if (rc)
    return rc;
  rc = jiwa_kv_scan(self, "markers:", 8, 64, load_kv_item, c);
  if (rc < 0 && rc != JIWA_ESTATE)
    jiwa_log(self, JIWA_LOG_WARN, "insight markers not loaded: %s",
             jiwa_strerror(rc));
  c->seed = c->seed_files.data ? SEED_WAIT : SEED_NONE;
  seed_check(self, c);
  jiwa_log(self, JIWA_LOG_INFO,
           "cultural_rag ready: collection '%s', %u markers", c->collection,
           c->mk.n + c->mk.nraw);
  return 0;
}

static int rag_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *msg) {
  rag_ctx_t *c = vctx;
  jiwa_msg_kind_t kind = jiwa_msg_kind(msg);
  if (kind == JIWA_MSG_TELL && strcmp(jiwa_msg_type(msg), "rag.markers") == 0)
    return handle_markers(self, c, msg);
  if (kind != JIWA_MSG_ASK)
    return 0;
  seed_check(self, c);
  const char *type = jiwa_msg_type(msg);
  if (strcmp(type, "rag.markers") == 0)
    return handle_markers(self, c, msg);
  if (strcmp(type, "rag.query") == 0)
    return handle_query(self, c, msg);
  if (strcmp(type, "rag.import") == 0)
    return handle_import(self, c, msg);
  if (strcmp(type, "rag.stats") == 0)
    return handle_stats(self, c, msg);
  return reply_err(self, msg, JIWA_ENOTSUP,
                   "cultural_rag answers rag.query, rag.import, rag.markers, "
                   "rag.stats");
}

static void rag_fini(jiwa_actor_t *self, void *vctx) {
  rag_ctx_t *c = vctx;
  (void)self;
  /* the runtime ran every completion before fini; a job still queued was
   * never started */
  job_free(c->job);
  while (c->queued_head) {
    import_job_t *j = c->queued_head;
    c->queued_head = j->next;
    if (j->req)
      jiwa_msg_release(j->req);
    job_free(j);
  }
  mktab_free(&c->mk);
}

static const jiwa_plugin_desc_t rag_desc = {
    JIWA_DESC_HEADER,
    .name = "cultural_rag",
    .version = "1.0.0",
    .description = "cultural context for the main model: markers + vector "
                   "search over the insights collection",
    .config = rag_config,
    .ctx_size = sizeof(rag_ctx_t),
    .init = rag_init,
    .receive = rag_receive,
    .fini = rag_fini,
};

JIWA_PLUGIN(rag_desc)
