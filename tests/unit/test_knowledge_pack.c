/*
 * Unit test for the starter knowledge pack in config/knowledge/.
 *
 * The pack is data that jiwad imports on first start (cultural insights in
 * three languages plus golden example answers), so a malformed line would
 * only surface at import time on someone's machine. This test reads the
 * four JSONL files through the SDK's own JSON parser (jiwa_json_to_mp) and
 * msgpack readers, checks every line against the schema written down in
 * config/knowledge/README.md, checks the whole-pack rules (ids unique across
 * files, lang matching the file, per-language and total counts, every
 * category in every language, no repeated insight text, golden examples all
 * marked example=true) and prints counts per language x category.
 *
 * The validator is tested first on hand-made bad lines, so a pack that
 * passes is known to pass a checker that actually rejects things.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa/json.h"
#include "jiwa/mp.h"

/* Pack-wide floors (the brief for the starter pack; README.md repeats them). */
#define MIN_PER_LANG 150
#define MIN_TOTAL 500
#define GOLDEN_MIN 24
#define GOLDEN_MAX 36
#define GOLDEN_MIN_PER_LANG 6
#define MAX_LINE 8192

static const char *const LANGS[] = {"en", "id", "it"};
#define NLANG 3
static const char *const CATS[] = {"emotions", "business_culture", "bali",
                                   "communication", "relationships"};
#define NCAT 5
static const char *const EMOTIONS[] = {
    "shame",     "worry",  "sadness", "joy",    "disappointment", "anger",
    "confusion", "relief", "longing", "stress", "gratitude",      "respect"};
#define NEMOTION (sizeof EMOTIONS / sizeof EMOTIONS[0])

static const char *const INSIGHT_KEYS[] = {
    "id",    "lang", "category", "topic",   "type",  "emotion",
    "title", "text", "respond",  "markers", "source"};
static const char *const GOLDEN_KEYS[] = {"id",          "lang",   "question",
                                          "paraphrases", "answer", "tags",
                                          "example",     "source"};

/* ---- small string helpers -------------------------------------------------
 */

static size_t utf8_chars(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80)
      c++;
  return c;
}

static int str_is(const char *s, size_t n, const char *want) {
  return n == strlen(want) && memcmp(s, want, n) == 0;
}

static int index_of(const char *const *list, size_t nlist, const char *s,
                    size_t n) {
  for (size_t i = 0; i < nlist; i++)
    if (str_is(s, n, list[i]))
      return (int)i;
  return -1;
}

/* Has an uppercase letter: ASCII, or Latin-1 capitals (U+00C0..U+00DE, as
 * the two bytes 0xC3 0x80..0x9E), which covers À È É Ì Ò Ù. */
static int has_upper(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char b = (unsigned char)s[i];
    if (b >= 'A' && b <= 'Z')
      return 1;
    if (b == 0xC3 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
        (unsigned char)s[i + 1] <= 0x9E && (unsigned char)s[i + 1] != 0x97)
      return 1;
  }
  return 0;
}

static int only_chars(const char *s, size_t n, const char *extra) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          (c && strchr(extra, c))))
      return 0;
  }
  return 1;
}

/* Lowercased (ASCII), whitespace-collapsed copy: two insights whose text
 * differs only by case or spacing count as the same text. */
static char *norm_dup(const char *s, size_t n) {
  char *o = malloc(n + 1);
  if (!o)
    return NULL;
  size_t k = 0;
  int space = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      space = k > 0;
      continue;
    }
    if (space)
      o[k++] = ' ';
    space = 0;
    o[k++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  }
  o[k] = '\0';
  return o;
}

/* ---- a growable list of owned strings, with a "where" for messages ------- */

typedef struct {
  char *s;
  char *where;
} entry_t;

typedef struct {
  entry_t *v;
  size_t n, cap;
} list_t;

static void list_add(list_t *l, char *s, const char *where) {
  assert_non_null(s);
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 256;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
    assert_non_null(l->v);
  }
  l->v[l->n].s = s;
  l->v[l->n].where = strdup(where);
  assert_non_null(l->v[l->n].where);
  l->n++;
}

static void list_free(list_t *l) {
  for (size_t i = 0; i < l->n; i++) {
    free(l->v[i].s);
    free(l->v[i].where);
  }
  free(l->v);
  memset(l, 0, sizeof *l);
}

static int entry_cmp(const void *a, const void *b) {
  return strcmp(((const entry_t *)a)->s, ((const entry_t *)b)->s);
}

/* Sorts the list and prints every duplicate; returns how many there were. */
static int list_dups(list_t *l, const char *what) {
  int dups = 0;
  qsort(l->v, l->n, sizeof *l->v, entry_cmp);
  for (size_t i = 1; i < l->n; i++)
    if (strcmp(l->v[i - 1].s, l->v[i].s) == 0) {
      print_error("duplicate %s at %s and %s: %.80s\n", what, l->v[i - 1].where,
                  l->v[i].where, l->v[i].s);
      dups++;
    }
  return dups;
}

/* ---- the pack being checked ---------------------------------------------- */

typedef struct {
  int counts[NLANG][NCAT];
  int golden[NLANG];
  int emotion_tagged;
  int errors;
  list_t ids;    /* every id in every file */
  list_t texts;  /* normalised insight texts */
  list_t titles; /* "lang|title" */
} pack_t;

static void pack_free(pack_t *p) {
  list_free(&p->ids);
  list_free(&p->texts);
  list_free(&p->titles);
}

/* ---- field checks: each returns 0 or writes why and returns -1 ----------- */

#define WHY(...)                                                               \
  do {                                                                         \
    snprintf(why, whylen, __VA_ARGS__);                                        \
    return -1;                                                                 \
  } while (0)

/* Every key is a known string key, and no key appears twice (the JSON parser
 * keeps duplicates, and jiwa_mp_map_find would silently take the first). */
static int check_keys(const char *mp, size_t len, const char *const *keys,
                      size_t nkeys, char *why, size_t whylen) {
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  unsigned seen = 0;
  jiwa_mp_reader_init(&r, mp, len);
  if (jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_MAP)
    WHY("not a JSON object");
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t k;
    if (jiwa_mp_next(&r, &k) != 0 || k.type != JIWA_MP_STR)
      WHY("malformed key");
    int ki = index_of(keys, nkeys, k.v.s.ptr, k.v.s.len);
    if (ki < 0)
      WHY("unknown field \"%.*s\"", (int)(k.v.s.len > 40 ? 40 : k.v.s.len),
          k.v.s.ptr);
    if (seen & (1u << ki))
      WHY("field \"%s\" appears twice", keys[ki]);
    seen |= 1u << ki;
    if (jiwa_mp_skip(&r) != 0)
      WHY("malformed value");
  }
  return 0;
}

/* A required string field, trimmed, no control characters, with its length
 * in characters (code points) within [minc, maxc]. */
static int get_text(const char *mp, size_t len, const char *key, size_t minc,
                    size_t maxc, const char **s, size_t *n, char *why,
                    size_t whylen) {
  int rc = jiwa_mp_get_str(mp, len, key, s, n);
  if (rc == JIWA_ENOENT)
    WHY("missing field \"%s\"", key);
  if (rc != 0)
    WHY("field \"%s\" is not a string", key);
  size_t c = utf8_chars(*s, *n);
  if (c < minc || c > maxc)
    WHY("field \"%s\" has %zu characters, allowed %zu..%zu", key, c, minc,
        maxc);
  if (*n && ((*s)[0] == ' ' || (*s)[*n - 1] == ' '))
    WHY("field \"%s\" has leading or trailing spaces", key);
  for (size_t i = 0; i < *n; i++)
    if ((unsigned char)(*s)[i] < 0x20)
      WHY("field \"%s\" contains a control character", key);
  return 0;
}

/* A required array of strings: count in [minn, maxn], each string checked as
 * get_text would with [minc, maxc], distinct; lowercase when asked; with
 * only [a-z0-9_-] when @p slug. */
static int check_str_array(const char *mp, size_t len, const char *key,
                           uint32_t minn, uint32_t maxn, size_t minc,
                           size_t maxc, int lower, int slug, char *why,
                           size_t whylen) {
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  int rc = jiwa_mp_map_find(mp, len, key, &r);
  if (rc == JIWA_ENOENT)
    WHY("missing field \"%s\"", key);
  if (rc != 0 || jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_ARRAY)
    WHY("field \"%s\" is not an array", key);
  if (it.v.count < minn || it.v.count > maxn)
    WHY("field \"%s\" has %u items, allowed %u..%u", key, it.v.count, minn,
        maxn);
  const char *prev[16];
  size_t prevn[16];
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t e;
    if (jiwa_mp_next(&r, &e) != 0 || e.type != JIWA_MP_STR)
      WHY("field \"%s\" item %u is not a string", key, i);
    size_t c = utf8_chars(e.v.s.ptr, e.v.s.len);
    if (c < minc || c > maxc)
      WHY("field \"%s\" item %u has %zu characters, allowed %zu..%zu", key, i,
          c, minc, maxc);
    if (e.v.s.ptr[0] == ' ' || e.v.s.ptr[e.v.s.len - 1] == ' ')
      WHY("field \"%s\" item %u has leading or trailing spaces", key, i);
    if (lower && has_upper(e.v.s.ptr, e.v.s.len))
      WHY("field \"%s\" item %u is not lowercase", key, i);
    if (slug && !only_chars(e.v.s.ptr, e.v.s.len, "_-"))
      WHY("field \"%s\" item %u has characters outside [a-z0-9_-]", key, i);
    for (uint32_t j = 0; j < i && j < 16; j++)
      if (prevn[j] == e.v.s.len && memcmp(prev[j], e.v.s.ptr, e.v.s.len) == 0)
        WHY("field \"%s\" repeats \"%.*s\"", key, (int)e.v.s.len, e.v.s.ptr);
    if (i < 16) {
      prev[i] = e.v.s.ptr;
      prevn[i] = e.v.s.len;
    }
  }
  return 0;
}

static int check_id_chars(const char *s, size_t n, char *why, size_t whylen) {
  if (n == 0 || n > 64)
    WHY("id has %zu characters, allowed 1..64", n);
  if (!only_chars(s, n, "-"))
    WHY("id has characters outside [a-z0-9-]");
  if (s[0] == '-' || s[n - 1] == '-' || memmem(s, n, "--", 2))
    WHY("id has an empty segment");
  return 0;
}

/* The slug a category takes inside an id ("business_culture" -> "business",
 * since ids allow no underscore). */
static const char *cat_slug(int c) {
  return c == 1 ? "business" : CATS[c];
}

/* One insight line, already parsed to msgpack. On success fills *lang_out and
 * *cat_out with indexes into LANGS and CATS. */
static int check_insight_mp(const char *mp, size_t len, const char *file_lang,
                            int *lang_out, int *cat_out, int *has_emotion,
                            char *why, size_t whylen) {
  const char *s;
  size_t n;
  if (check_keys(mp, len, INSIGHT_KEYS,
                 sizeof INSIGHT_KEYS / sizeof INSIGHT_KEYS[0], why,
                 whylen) != 0)
    return -1;

  if (get_text(mp, len, "lang", 2, 2, &s, &n, why, whylen) != 0)
    return -1;
  int lang = index_of(LANGS, NLANG, s, n);
  if (lang < 0)
    WHY("lang \"%.*s\" is not en, id or it", (int)n, s);
  if (file_lang && !str_is(s, n, file_lang))
    WHY("lang \"%.*s\" in the %s file", (int)n, s, file_lang);

  if (get_text(mp, len, "category", 1, 32, &s, &n, why, whylen) != 0)
    return -1;
  int cat = index_of(CATS, NCAT, s, n);
  if (cat < 0)
    WHY("unknown category \"%.*s\"", (int)n, s);

  const char *topic;
  size_t topicn;
  if (get_text(mp, len, "topic", 1, 32, &topic, &topicn, why, whylen) != 0)
    return -1;
  if (!only_chars(topic, topicn, "_"))
    WHY("topic has characters outside [a-z0-9_]");

  if (get_text(mp, len, "id", 1, 64, &s, &n, why, whylen) != 0 ||
      check_id_chars(s, n, why, whylen) != 0)
    return -1;
  char prefix[64];
  snprintf(prefix, sizeof prefix, "ins-%s-%s-", LANGS[lang], cat_slug(cat));
  if (n <= strlen(prefix) || memcmp(s, prefix, strlen(prefix)) != 0)
    WHY("id \"%.*s\" does not start with \"%s\"", (int)n, s, prefix);

  if (get_text(mp, len, "type", 1, 16, &s, &n, why, whylen) != 0)
    return -1;
  if (!str_is(s, n, "insight"))
    WHY("type is \"%.*s\", not \"insight\"", (int)n, s);

  int rc = jiwa_mp_get_str(mp, len, "emotion", &s, &n);
  *has_emotion = rc == 0;
  if (rc == 0 && index_of(EMOTIONS, NEMOTION, s, n) < 0)
    WHY("unknown emotion \"%.*s\"", (int)(n > 40 ? 40 : n), s);
  if (rc != 0 && rc != JIWA_ENOENT)
    WHY("field \"emotion\" is not a string");

  if (get_text(mp, len, "title", 3, 80, &s, &n, why, whylen) != 0 ||
      get_text(mp, len, "text", 40, 400, &s, &n, why, whylen) != 0 ||
      get_text(mp, len, "respond", 20, 300, &s, &n, why, whylen) != 0)
    return -1;
  if (check_str_array(mp, len, "markers", 2, 8, 1, 40, 1, 0, why, whylen) != 0)
    return -1;

  if (get_text(mp, len, "source", 1, 32, &s, &n, why, whylen) != 0)
    return -1;
  if (!str_is(s, n, "curated"))
    WHY("source is \"%.*s\", not \"curated\"", (int)n, s);
  *lang_out = lang;
  *cat_out = cat;
  return 0;
}

/* One golden example line, already parsed to msgpack. */
static int check_golden_mp(const char *mp, size_t len, int *lang_out, char *why,
                           size_t whylen) {
  const char *s;
  size_t n;
  if (check_keys(mp, len, GOLDEN_KEYS,
                 sizeof GOLDEN_KEYS / sizeof GOLDEN_KEYS[0], why, whylen) != 0)
    return -1;
  if (get_text(mp, len, "lang", 2, 2, &s, &n, why, whylen) != 0)
    return -1;
  int lang = index_of(LANGS, NLANG, s, n);
  if (lang < 0)
    WHY("lang \"%.*s\" is not en, id or it", (int)n, s);

  if (get_text(mp, len, "id", 1, 64, &s, &n, why, whylen) != 0 ||
      check_id_chars(s, n, why, whylen) != 0)
    return -1;
  char suffix[8];
  snprintf(suffix, sizeof suffix, "-%s", LANGS[lang]);
  if (n < 7 + 3 + 1 || memcmp(s, "golden-", 7) != 0 ||
      memcmp(s + n - 3, suffix, 3) != 0)
    WHY("id \"%.*s\" is not golden-<topic>%s", (int)n, s, suffix);

  const char *q;
  size_t qn;
  if (get_text(mp, len, "question", 5, 200, &q, &qn, why, whylen) != 0 ||
      check_str_array(mp, len, "paraphrases", 3, 5, 3, 200, 0, 0, why,
                      whylen) != 0 ||
      get_text(mp, len, "answer", 40, 700, &s, &n, why, whylen) != 0 ||
      check_str_array(mp, len, "tags", 1, 6, 2, 24, 1, 1, why, whylen) != 0)
    return -1;

  /* A paraphrase equal to the question adds nothing to the cache. */
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  if (jiwa_mp_map_find(mp, len, "paraphrases", &r) != 0 ||
      jiwa_mp_next(&r, &it) != 0)
    WHY("paraphrases unreadable");
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t e;
    if (jiwa_mp_next(&r, &e) != 0)
      WHY("paraphrases unreadable");
    if (e.v.s.len == qn && memcmp(e.v.s.ptr, q, qn) == 0)
      WHY("paraphrase %u repeats the question", i);
  }

  int ex = 0;
  int rc = jiwa_mp_get_bool(mp, len, "example", &ex);
  if (rc == JIWA_ENOENT)
    WHY("missing field \"example\"");
  if (rc != 0)
    WHY("field \"example\" is not a boolean");
  if (!ex)
    WHY("golden example not marked example=true");
  if (get_text(mp, len, "source", 1, 32, &s, &n, why, whylen) != 0)
    return -1;
  if (!str_is(s, n, "curated"))
    WHY("source is \"%.*s\", not \"curated\"", (int)n, s);
  *lang_out = lang;
  return 0;
}

/* ---- one line, one file -------------------------------------------------- */

enum { KIND_INSIGHT, KIND_GOLDEN };

/* Checks one JSONL line and records it in @p p (ids, texts, counts). */
static int check_line(pack_t *p, int kind, const char *file_lang,
                      const char *line, size_t n, const char *where, char *why,
                      size_t whylen) {
  jiwa_json_limits_t lim = {.max_input = MAX_LINE, .max_depth = 3};
  jiwa_json_error_t jerr;
  char *mp = NULL;
  size_t mplen = 0;
  int lang = -1, cat = -1, emo = 0;
  int rc = jiwa_json_to_mp(line, n, &lim, &mp, &mplen, &jerr);
  if (rc != 0) {
    snprintf(why, whylen, "not JSON (%s) at column %u: %s", jiwa_err_name(rc),
             jerr.column, jerr.msg);
    return -1;
  }
  if (kind == KIND_INSIGHT)
    rc = check_insight_mp(mp, mplen, file_lang, &lang, &cat, &emo, why, whylen);
  else
    rc = check_golden_mp(mp, mplen, &lang, why, whylen);
  if (rc == 0) {
    const char *s;
    size_t sn;
    assert_int_equal(jiwa_mp_get_str(mp, mplen, "id", &s, &sn), 0);
    list_add(&p->ids, strndup(s, sn), where);
    if (kind == KIND_INSIGHT) {
      p->counts[lang][cat]++;
      p->emotion_tagged += emo;
      assert_int_equal(jiwa_mp_get_str(mp, mplen, "text", &s, &sn), 0);
      list_add(&p->texts, norm_dup(s, sn), where);
      assert_int_equal(jiwa_mp_get_str(mp, mplen, "title", &s, &sn), 0);
      char *t = malloc(sn + 4);
      assert_non_null(t);
      snprintf(t, sn + 4, "%s|%.*s", LANGS[lang], (int)sn, s);
      list_add(&p->titles, t, where);
    } else {
      p->golden[lang]++;
    }
  }
  free(mp);
  return rc;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  assert_non_null(buf);
  size_t got;
  while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
  }
  fclose(f);
  *len = n;
  return buf;
}

/* Checks every line of one file; prints each failure as file:line: why. */
static int check_file(pack_t *p, int kind, const char *file_lang,
                      const char *name) {
  const char *src = getenv("JIWA_SOURCE_DIR");
  char path[1024], where[1100], why[256];
  snprintf(path, sizeof path, "%s/config/knowledge/%s", src ? src : ".", name);
  size_t len = 0;
  char *buf = slurp(path, &len);
  if (!buf) {
    print_error("cannot read %s\n", path);
    p->errors++;
    return 0;
  }
  if (len == 0 || buf[len - 1] != '\n') {
    print_error("%s: does not end with a newline\n", name);
    p->errors++;
  }
  int lines = 0;
  size_t off = 0;
  while (off < len) {
    const char *line = buf + off;
    const char *nl = memchr(line, '\n', len - off);
    size_t n = nl ? (size_t)(nl - line) : len - off;
    off += n + 1;
    lines++;
    snprintf(where, sizeof where, "%s:%d", name, lines);
    if (n == 0) {
      print_error("%s: empty line\n", where);
      p->errors++;
    } else if (line[n - 1] == '\r') {
      print_error("%s: CRLF line end\n", where);
      p->errors++;
    } else if (n > MAX_LINE) {
      print_error("%s: line of %zu bytes (max %d)\n", where, n, MAX_LINE);
      p->errors++;
    } else if (check_line(p, kind, file_lang, line, n, where, why,
                          sizeof why) != 0) {
      print_error("%s: %s\n", where, why);
      p->errors++;
    }
  }
  free(buf);
  return lines;
}

/* ---- tests --------------------------------------------------------------- */

/* Checks one line as if it came from the English insight file (or the golden
 * file), in a throwaway pack; returns what check_line says. */
static int try_insight(const char *line, char *why, size_t whylen) {
  pack_t p;
  memset(&p, 0, sizeof p);
  int rc =
      check_line(&p, KIND_INSIGHT, "en", line, strlen(line), "t", why, whylen);
  pack_free(&p);
  return rc;
}

static int try_golden(const char *line, char *why, size_t whylen) {
  pack_t p;
  memset(&p, 0, sizeof p);
  int rc =
      check_line(&p, KIND_GOLDEN, NULL, line, strlen(line), "t", why, whylen);
  pack_free(&p);
  return rc;
}

#define GOOD_INSIGHT_HEAD                                                      \
  "{\"id\":\"ins-en-emotions-malu-99\",\"lang\":\"en\","                       \
  "\"category\":\"emotions\",\"topic\":\"malu\",\"type\":\"insight\","         \
  "\"emotion\":\"shame\",\"title\":\"Embarrassed to ask\","
#define GOOD_INSIGHT_TEXT                                                      \
  "\"text\":\"Many users apologise before a simple question about a visa.\","
#define GOOD_INSIGHT_TAIL                                                      \
  "\"respond\":\"Reassure first, then answer plainly.\","                      \
  "\"markers\":[\"embarrassed\",\"stupid question\"],\"source\":\"curated\"}"

static void test_validator_rejects(void **state) {
  (void)state;
  char why[256];
  static const char good[] =
      GOOD_INSIGHT_HEAD GOOD_INSIGHT_TEXT GOOD_INSIGHT_TAIL;
  if (try_insight(good, why, sizeof why) != 0) {
    print_error("good line rejected: %s\n", why);
    fail();
  }
  static const struct {
    const char *line, *reason;
  } bad[] = {
      {GOOD_INSIGHT_HEAD GOOD_INSIGHT_TEXT GOOD_INSIGHT_TAIL ",", "not JSON"},
      {"[1,2]", "not a JSON object"},
      {"{\"id\":\"ins-en-emotions-malu-99\"}", "missing field"},
      {GOOD_INSIGHT_HEAD GOOD_INSIGHT_TAIL, "missing field \"text\""},
      {GOOD_INSIGHT_HEAD GOOD_INSIGHT_TEXT "\"extra\":1," GOOD_INSIGHT_TAIL,
       "unknown field"},
      {GOOD_INSIGHT_HEAD GOOD_INSIGHT_TEXT
       "\"title\":\"again\"," GOOD_INSIGHT_TAIL,
       "appears twice"},
      {GOOD_INSIGHT_HEAD "\"text\":42," GOOD_INSIGHT_TAIL, "not a string"},
      {GOOD_INSIGHT_HEAD "\"text\":\"Too short.\"," GOOD_INSIGHT_TAIL,
       "characters"},
      {"{\"id\":\"ins-id-emotions-malu-99\",\"lang\":\"id\","
       "\"category\":\"emotions\",\"topic\":\"malu\",\"type\":\"insight\","
       "\"title\":\"Malu\"," GOOD_INSIGHT_TEXT GOOD_INSIGHT_TAIL,
       "in the en file"},
      {"{\"id\":\"ins-en-food-malu-99\",\"lang\":\"en\","
       "\"category\":\"food\",\"topic\":\"malu\",\"type\":\"insight\","
       "\"title\":\"Malu\"," GOOD_INSIGHT_TEXT GOOD_INSIGHT_TAIL,
       "unknown category"},
      {"{\"id\":\"ins-en-bali-malu-99\",\"lang\":\"en\","
       "\"category\":\"emotions\",\"topic\":\"malu\",\"type\":\"insight\","
       "\"title\":\"Malu\"," GOOD_INSIGHT_TEXT GOOD_INSIGHT_TAIL,
       "does not start with"},
      {"{\"id\":\"ins-en-emotions-Malu\",\"lang\":\"en\","
       "\"category\":\"emotions\",\"topic\":\"malu\",\"type\":\"insight\","
       "\"title\":\"Malu\"," GOOD_INSIGHT_TEXT GOOD_INSIGHT_TAIL,
       "outside [a-z0-9-]"},
      {"{\"id\":\"ins-en-emotions-malu-1\",\"lang\":\"en\","
       "\"category\":\"emotions\",\"topic\":\"Malu\",\"type\":\"insight\","
       "\"title\":\"Malu\"," GOOD_INSIGHT_TEXT GOOD_INSIGHT_TAIL,
       "topic has"},
      {"{\"id\":\"ins-en-emotions-malu-1\",\"lang\":\"en\","
       "\"category\":\"emotions\",\"topic\":\"malu\",\"type\":\"insight\","
       "\"emotion\":\"glee\",\"title\":\"Malu\"," GOOD_INSIGHT_TEXT
           GOOD_INSIGHT_TAIL,
       "unknown emotion"},
      {"{\"id\":\"ins-en-emotions-malu-1\",\"lang\":\"en\","
       "\"category\":\"emotions\",\"topic\":\"malu\",\"type\":\"fact\","
       "\"title\":\"Malu\"," GOOD_INSIGHT_TEXT GOOD_INSIGHT_TAIL,
       "not \"insight\""},
      {GOOD_INSIGHT_HEAD GOOD_INSIGHT_TEXT
       "\"respond\":\"Reassure first, then answer plainly.\","
       "\"markers\":[\"embarrassed\"],\"source\":\"curated\"}",
       "items"},
      {GOOD_INSIGHT_HEAD GOOD_INSIGHT_TEXT
       "\"respond\":\"Reassure first, then answer plainly.\","
       "\"markers\":[\"Embarrassed\",\"shy\"],\"source\":\"curated\"}",
       "not lowercase"},
      {GOOD_INSIGHT_HEAD GOOD_INSIGHT_TEXT
       "\"respond\":\"Reassure first, then answer plainly.\","
       "\"markers\":[\"shy\",\"shy\"],\"source\":\"curated\"}",
       "repeats"},
      {GOOD_INSIGHT_HEAD GOOD_INSIGHT_TEXT
       "\"respond\":\"Reassure first, then answer plainly.\","
       "\"markers\":[\"shy\",\"malu\"],\"source\":\"llm\"}",
       "not \"curated\""},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why[0] = '\0';
    if (try_insight(bad[i].line, why, sizeof why) == 0) {
      print_error("bad line %zu accepted (want \"%s\")\n", i, bad[i].reason);
      fail();
    }
    if (!strstr(why, bad[i].reason)) {
      print_error("bad line %zu: got \"%s\", want \"%s\"\n", i, why,
                  bad[i].reason);
      fail();
    }
  }

  /* Length bounds count characters, not bytes: 400 'è' (800 bytes) pass. */
  char big[2400];
  int k = snprintf(big, sizeof big, "%s\"text\":\"", GOOD_INSIGHT_HEAD);
  for (int i = 0; i < 400; i++)
    k += snprintf(big + k, sizeof big - (size_t)k, "\xc3\xa8");
  snprintf(big + k, sizeof big - (size_t)k, "\",%s", GOOD_INSIGHT_TAIL);
  if (try_insight(big, why, sizeof why) != 0) {
    print_error("400 characters rejected: %s\n", why);
    fail();
  }

#define GOLDEN(id, lang, paras, example)                                       \
  "{\"id\":\"" id "\",\"lang\":\"" lang "\",\"question\":\"How long?\","       \
  "\"paraphrases\":" paras ",\"answer\":\"Usually a few weeks; check the "     \
  "current rules with us.\",\"tags\":[\"visa\"],\"example\":" example          \
  ",\"source\":\"curated\"}"
  static const char g_ok[] = GOLDEN("golden-kitas-duration-en", "en",
                                    "[\"a b c\",\"d e f\",\"g h i\"]", "true");
  if (try_golden(g_ok, why, sizeof why) != 0) {
    print_error("good golden line rejected: %s\n", why);
    fail();
  }
  static const struct {
    const char *line, *reason;
  } gbad[] = {
      {GOLDEN("golden-kitas-duration-en", "en",
              "[\"a b c\",\"d e f\",\"g h i\"]", "false"),
       "example=true"},
      {GOLDEN("golden-kitas-duration-en", "en",
              "[\"a b c\",\"d e f\",\"g h i\"]", "1"),
       "not a boolean"},
      {GOLDEN("golden-kitas-duration-id", "en",
              "[\"a b c\",\"d e f\",\"g h i\"]", "true"),
       "is not golden-"},
      {GOLDEN("golden-kitas-duration-en", "en", "[\"a b c\",\"d e f\"]",
              "true"),
       "items"},
      {GOLDEN("golden-kitas-duration-en", "en",
              "[\"a b c\",\"d e f\",\"How long?\"]", "true"),
       "repeats the question"},
  };
  for (size_t i = 0; i < sizeof gbad / sizeof gbad[0]; i++) {
    why[0] = '\0';
    if (try_golden(gbad[i].line, why, sizeof why) == 0 ||
        !strstr(why, gbad[i].reason)) {
      print_error("golden bad line %zu: got \"%s\", want \"%s\"\n", i, why,
                  gbad[i].reason);
      fail();
    }
  }
#undef GOLDEN
}

static void test_pack(void **state) {
  (void)state;
  pack_t p;
  memset(&p, 0, sizeof p);
  int lines[NLANG];
  for (int l = 0; l < NLANG; l++) {
    char name[64];
    snprintf(name, sizeof name, "insights_%s.jsonl", LANGS[l]);
    lines[l] = check_file(&p, KIND_INSIGHT, LANGS[l], name);
  }
  int glines = check_file(&p, KIND_GOLDEN, NULL, "golden_examples.jsonl");

  p.errors += list_dups(&p.ids, "id");
  p.errors += list_dups(&p.texts, "insight text");
  p.errors += list_dups(&p.titles, "title (per language)");

  printf("knowledge pack: insights per language x category\n");
  printf("  %-4s", "");
  for (int c = 0; c < NCAT; c++)
    printf(" %16s", CATS[c]);
  printf(" %6s\n", "total");
  int total = 0, colsum[NCAT] = {0};
  for (int l = 0; l < NLANG; l++) {
    int row = 0;
    printf("  %-4s", LANGS[l]);
    for (int c = 0; c < NCAT; c++) {
      printf(" %16d", p.counts[l][c]);
      row += p.counts[l][c];
      colsum[c] += p.counts[l][c];
    }
    printf(" %6d\n", row);
    total += row;
    if (row < MIN_PER_LANG) {
      print_error("%s: %d insights, want >= %d\n", LANGS[l], row, MIN_PER_LANG);
      p.errors++;
    }
    if (row != lines[l]) {
      print_error("%s: %d of %d lines valid\n", LANGS[l], row, lines[l]);
    }
    for (int c = 0; c < NCAT; c++)
      if (p.counts[l][c] == 0) {
        print_error("%s: no insight in category %s\n", LANGS[l], CATS[c]);
        p.errors++;
      }
  }
  printf("  %-4s", "all");
  for (int c = 0; c < NCAT; c++)
    printf(" %16d", colsum[c]);
  printf(" %6d\n", total);
  printf("  insights with an emotion tag: %d\n", p.emotion_tagged);
  printf("golden examples: en %d, id %d, it %d (%d lines)\n", p.golden[0],
         p.golden[1], p.golden[2], glines);
  if (total < MIN_TOTAL) {
    print_error("%d insights in all, want >= %d\n", total, MIN_TOTAL);
    p.errors++;
  }
  int gtotal = p.golden[0] + p.golden[1] + p.golden[2];
  if (gtotal < GOLDEN_MIN || gtotal > GOLDEN_MAX) {
    print_error("%d golden examples, want %d..%d\n", gtotal, GOLDEN_MIN,
                GOLDEN_MAX);
    p.errors++;
  }
  for (int l = 0; l < NLANG; l++)
    if (p.golden[l] < GOLDEN_MIN_PER_LANG) {
      print_error("%s: %d golden examples, want >= %d\n", LANGS[l], p.golden[l],
                  GOLDEN_MIN_PER_LANG);
      p.errors++;
    }
  pack_free(&p);
  if (p.errors) {
    print_error("%d problems in config/knowledge (see above)\n", p.errors);
    fail();
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validator_rejects),
      cmocka_unit_test(test_pack),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
