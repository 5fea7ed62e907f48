/* Knowledge JSONL lines -> collection records and golden entries. See
 * jiwa_knowledge.h; the schema is config/knowledge/README.md. */
#include "jiwa_knowledge.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jiwa/errors.h"
#include "jiwa/json.h"
#include "jiwa/mp.h"

static const char *const LANGS[] = {"en", "id", "it", NULL};
static const char *const CATEGORIES[] = {"emotions", "business_culture",
                                         "bali", "communication",
                                         "relationships", NULL};
static const char *const EMOTIONS[] = {
    "shame",  "worry",   "sadness", "joy",       "disappointment", "anger",
    "confusion", "relief", "longing", "stress", "gratitude",     "respect",
    NULL};

/* ---- small helpers ------------------------------------------------------- */

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* Unicode characters of valid UTF-8 (the JSON parser checked it). */
static size_t u8chars(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    c += ((unsigned char)s[i] & 0xC0) != 0x80;
  return c;
}

static int in_list(const char *const *list, const char *s, size_t n) {
  for (; *list; list++)
    if (strlen(*list) == n && memcmp(*list, s, n) == 0)
      return 1;
  return 0;
}

static int only(const char *s, size_t n, const char *extra) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          (c && strchr(extra, c))))
      return 0;
  }
  return 1;
}

/* [a-z0-9-], 1..64, no empty segment. */
static int valid_id(const char *s, size_t n) {
  if (n == 0 || n > JIWA_KNOWLEDGE_ID_MAX || !only(s, n, "-"))
    return 0;
  if (s[0] == '-' || s[n - 1] == '-')
    return 0;
  for (size_t i = 1; i < n; i++)
    if (s[i] == '-' && s[i - 1] == '-')
      return 0;
  return 1;
}

static int has_ascii_upper(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] >= 'A' && s[i] <= 'Z')
      return 1;
  return 0;
}

/* No control characters (the text goes into prompts and logs). */
static int has_ctl(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t')
      return 1;
  return 0;
}

static int eq_fold(const char *a, size_t an, const char *b, size_t bn) {
  if (an != bn)
    return 0;
  for (size_t i = 0; i < an; i++) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z')
      x = (char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = (char)(y - 'A' + 'a');
    if (x != y)
      return 0;
  }
  return 1;
}

/* ---- the map walker ------------------------------------------------------ */

enum { K_STR = 1, K_ARR, K_BOOL, K_NUM, K_INT };

typedef struct {
  const char *key;
  int kind;
  int required;
} fdef_t;

typedef struct {
  int present;
  const char *s; /* K_STR */
  uint32_t slen;
  const char *items[JIWA_KNOWLEDGE_PARAPHRASES_MAX]; /* K_ARR */
  uint32_t ilen[JIWA_KNOWLEDGE_PARAPHRASES_MAX];
  uint32_t nitems;
  int b;      /* K_BOOL */
  double num; /* K_NUM */
  int64_t i;  /* K_INT */
} fval_t;

#define MAX_FIELDS 12

/* Walk one msgpack map against @p defs; @p vals[i] gets field i. The map
 * was scanned (bounded) by the caller. */
static int walk(const void *mp, size_t len, const fdef_t *defs, fval_t *vals,
                uint32_t max_items, char *err, size_t errlen) {
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, mp, len);
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_MAP)
    return fail(err, errlen, JIWA_EINVAL, "not a JSON object");
  for (uint32_t p = 0; p < it.v.count; p++) {
    jiwa_mp_item_t k, v;
    if (jiwa_mp_next(&r, &k))
      return fail(err, errlen, JIWA_EPROTO, "truncated object");
    if (k.type != JIWA_MP_STR)
      return fail(err, errlen, JIWA_EINVAL, "a key that is not a string");
    int f = -1;
    for (int i = 0; defs[i].key; i++)
      if (strlen(defs[i].key) == k.v.s.len &&
          memcmp(defs[i].key, k.v.s.ptr, k.v.s.len) == 0)
        f = i;
    if (f < 0)
      return fail(err, errlen, JIWA_EINVAL, "unknown field '%.*s'",
                  (int)(k.v.s.len > 40 ? 40 : k.v.s.len), k.v.s.ptr);
    if (vals[f].present)
      return fail(err, errlen, JIWA_EINVAL, "field '%s' appears twice",
                  defs[f].key);
    vals[f].present = 1;
    if (jiwa_mp_next(&r, &v))
      return fail(err, errlen, JIWA_EPROTO, "truncated object");
    switch (defs[f].kind) {
    case K_STR:
      if (v.type != JIWA_MP_STR)
        return fail(err, errlen, JIWA_EINVAL, "field '%s' must be a string",
                    defs[f].key);
      vals[f].s = v.v.s.ptr;
      vals[f].slen = v.v.s.len;
      break;
    case K_BOOL:
      if (v.type != JIWA_MP_BOOL)
        return fail(err, errlen, JIWA_EINVAL,
                    "field '%s' must be true or false", defs[f].key);
      vals[f].b = v.v.b;
      break;
    case K_NUM:
    case K_INT:
      if (v.type == JIWA_MP_UINT && v.v.u <= INT64_MAX) {
        vals[f].num = (double)v.v.u;
        vals[f].i = (int64_t)v.v.u;
      } else if (v.type == JIWA_MP_INT) {
        vals[f].num = (double)v.v.i;
        vals[f].i = v.v.i;
      } else if (v.type == JIWA_MP_FLOAT && defs[f].kind == K_NUM) {
        vals[f].num = v.v.f;
        vals[f].i = 0;
      } else {
        return fail(err, errlen, JIWA_EINVAL, "field '%s' must be a%s number",
                    defs[f].key, defs[f].kind == K_INT ? "n integer" : "");
      }
      break;
    case K_ARR:
      if (v.type != JIWA_MP_ARRAY)
        return fail(err, errlen, JIWA_EINVAL,
                    "field '%s' must be an array of strings", defs[f].key);
      if (v.v.count > max_items)
        return fail(err, errlen, JIWA_EINVAL,
                    "field '%s': %u items, at most %u", defs[f].key,
                    v.v.count, max_items);
      for (uint32_t i = 0; i < v.v.count; i++) {
        jiwa_mp_item_t e;
        if (jiwa_mp_next(&r, &e))
          return fail(err, errlen, JIWA_EPROTO, "truncated array");
        if (e.type != JIWA_MP_STR)
          return fail(err, errlen, JIWA_EINVAL,
                      "field '%s' must be an array of strings", defs[f].key);
        vals[f].items[i] = e.v.s.ptr;
        vals[f].ilen[i] = e.v.s.len;
      }
      vals[f].nitems = v.v.count;
      break;
    }
  }
  if (r.p != r.end)
    return fail(err, errlen, JIWA_EPROTO, "bytes after the object");
  for (int i = 0; defs[i].key; i++)
    if (defs[i].required && !vals[i].present)
      return fail(err, errlen, JIWA_EINVAL, "missing field '%s'",
                  defs[i].key);
  return 0;
}

/* Trim trailing CR/LF/spaces; bound; JSON -> msgpack. */
static int line_to_mp(const char *line, size_t len, char **mp, size_t *mplen,
                      char *err, size_t errlen) {
  if (!line)
    return fail(err, errlen, JIWA_EINVAL, "no line");
  while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                 line[len - 1] == ' ' || line[len - 1] == '\t'))
    len--;
  if (len > JIWA_KNOWLEDGE_LINE_MAX)
    return fail(err, errlen, JIWA_ETOOBIG, "line of %zu bytes, at most %u",
                len, (unsigned)JIWA_KNOWLEDGE_LINE_MAX);
  jiwa_json_limits_t lim = {.max_input = JIWA_KNOWLEDGE_LINE_MAX,
                            .max_depth = 2,
                            .max_string = JIWA_KNOWLEDGE_LINE_MAX,
                            .max_items = 64};
  jiwa_json_error_t je;
  int rc = jiwa_json_to_mp(line, len, &lim, mp, mplen, &je);
  if (rc == JIWA_ENOMEM)
    return fail(err, errlen, rc, "out of memory");
  if (rc)
    return fail(err, errlen, rc, "column %u: %s", je.column, je.msg);
  return 0;
}

static int check_len(const char *field, const char *s, size_t n, size_t lo,
                     size_t hi, char *err, size_t errlen) {
  size_t c = u8chars(s, n);
  if (c < lo || c > hi)
    return fail(err, errlen, JIWA_EINVAL,
                "field '%s': %zu characters, need %zu..%zu", field, c, lo, hi);
  if (has_ctl(s, n))
    return fail(err, errlen, JIWA_EINVAL,
                "field '%s' holds a control character", field);
  return 0;
}

/* ---- the block all strings of an entry live in --------------------------- */

typedef struct {
  char *base;
  size_t used, cap;
} block_t;

static const char *put(block_t *b, const char *s, size_t n) {
  char *d = b->base + b->used;
  memcpy(d, s, n);
  d[n] = '\0';
  b->used += n + 1;
  return d;
}

static void pack_s(msgpack_packer *pk, const char *k, const char *s,
                   size_t n) {
  jiwa_mp_put_str(pk, k);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

/* ---- insights ------------------------------------------------------------ */

enum {
  I_ID,
  I_LANG,
  I_CATEGORY,
  I_TOPIC,
  I_TYPE,
  I_EMOTION,
  I_TITLE,
  I_TEXT,
  I_RESPOND,
  I_MARKERS,
  I_SOURCE,
  I_N
};
static const fdef_t INSIGHT_DEFS[] = {
    {"id", K_STR, 1},      {"lang", K_STR, 1},    {"category", K_STR, 1},
    {"topic", K_STR, 1},   {"type", K_STR, 1},    {"emotion", K_STR, 0},
    {"title", K_STR, 1},   {"text", K_STR, 1},    {"respond", K_STR, 1},
    {"markers", K_ARR, 1}, {"source", K_STR, 1},  {NULL, 0, 0}};

static int insight_from_mp(const void *mp, size_t len,
                           jiwa_knowledge_insight_t *out, char *err,
                           size_t errlen) {
  fval_t v[MAX_FIELDS];
  memset(v, 0, sizeof v);
  int rc = walk(mp, len, INSIGHT_DEFS, v, JIWA_KNOWLEDGE_MARKERS_MAX, err,
                errlen);
  if (rc)
    return rc;
  if (!valid_id(v[I_ID].s, v[I_ID].slen))
    return fail(err, errlen, JIWA_EINVAL,
                "field 'id': use 1..64 of a-z 0-9 '-' with no empty segment");
  if (!in_list(LANGS, v[I_LANG].s, v[I_LANG].slen))
    return fail(err, errlen, JIWA_EINVAL, "field 'lang': 'en', 'id' or 'it'");
  if (!in_list(CATEGORIES, v[I_CATEGORY].s, v[I_CATEGORY].slen))
    return fail(err, errlen, JIWA_EINVAL,
                "field 'category': one of emotions, business_culture, bali, "
                "communication, relationships");
  if (v[I_TOPIC].slen == 0 || v[I_TOPIC].slen > 32 ||
      !only(v[I_TOPIC].s, v[I_TOPIC].slen, "_"))
    return fail(err, errlen, JIWA_EINVAL,
                "field 'topic': 1..32 of a-z 0-9 '_'");
  if (v[I_TYPE].slen != 7 || memcmp(v[I_TYPE].s, "insight", 7) != 0)
    return fail(err, errlen, JIWA_EINVAL, "field 'type' must be \"insight\"");
  if (v[I_EMOTION].present &&
      !in_list(EMOTIONS, v[I_EMOTION].s, v[I_EMOTION].slen))
    return fail(err, errlen, JIWA_EINVAL,
                "field 'emotion': one of shame worry sadness joy "
                "disappointment anger confusion relief longing stress "
                "gratitude respect");
  if ((rc = check_len("title", v[I_TITLE].s, v[I_TITLE].slen, 3, 80, err,
                      errlen)) ||
      (rc = check_len("text", v[I_TEXT].s, v[I_TEXT].slen, 40, 400, err,
                      errlen)) ||
      (rc = check_len("respond", v[I_RESPOND].s, v[I_RESPOND].slen, 20, 300,
                      err, errlen)) ||
      (rc = check_len("source", v[I_SOURCE].s, v[I_SOURCE].slen, 1, 64, err,
                      errlen)))
    return rc;
  fval_t *m = &v[I_MARKERS];
  if (m->nitems < 2)
    return fail(err, errlen, JIWA_EINVAL,
                "field 'markers': %u items, need 2..8", m->nitems);
  for (uint32_t i = 0; i < m->nitems; i++) {
    if ((rc = check_len("markers", m->items[i], m->ilen[i], 1, 40, err,
                        errlen)))
      return rc;
    if (has_ascii_upper(m->items[i], m->ilen[i]))
      return fail(err, errlen, JIWA_EINVAL,
                  "field 'markers': '%.*s' must be lowercase", (int)m->ilen[i],
                  m->items[i]);
    for (uint32_t j = 0; j < i; j++)
      if (m->ilen[j] == m->ilen[i] &&
          memcmp(m->items[j], m->items[i], m->ilen[i]) == 0)
        return fail(err, errlen, JIWA_EINVAL,
                    "field 'markers': '%.*s' is repeated", (int)m->ilen[i],
                    m->items[i]);
  }

  /* the metadata map, then one block for strings + embed text + meta */
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_packer *pk = &w.pk;
  msgpack_pack_map(pk, v[I_EMOTION].present ? 10 : 9);
  static const int META[] = {I_LANG, I_CATEGORY, I_TOPIC, I_TYPE, I_EMOTION,
                             I_TITLE, I_TEXT, I_RESPOND, I_SOURCE};
  for (size_t i = 0; i < sizeof META / sizeof META[0]; i++)
    if (v[META[i]].present)
      pack_s(pk, INSIGHT_DEFS[META[i]].key, v[META[i]].s, v[META[i]].slen);
  jiwa_mp_put_str(pk, "markers");
  msgpack_pack_array(pk, m->nitems);
  for (uint32_t i = 0; i < m->nitems; i++) {
    msgpack_pack_str(pk, m->ilen[i]);
    msgpack_pack_str_body(pk, m->items[i], m->ilen[i]);
  }

  size_t strs = 0, embed = v[I_TITLE].slen + 1 + v[I_TEXT].slen + 1;
  for (int i = 0; i < I_N; i++)
    if (i != I_MARKERS)
      strs += v[i].slen + 1;
  for (uint32_t i = 0; i < m->nitems; i++) {
    strs += m->ilen[i] + 1;
    embed += m->ilen[i] + 1;
  }
  block_t b = {malloc(strs + embed + 1 + w.sbuf.size), 0,
               strs + embed + 1 + w.sbuf.size};
  if (!b.base) {
    jiwa_mp_writer_free(&w);
    return fail(err, errlen, JIWA_ENOMEM, "out of memory");
  }
  memset(out, 0, sizeof *out);
  out->mem = b.base;
  out->id = put(&b, v[I_ID].s, v[I_ID].slen);
  out->lang = put(&b, v[I_LANG].s, v[I_LANG].slen);
  out->category = put(&b, v[I_CATEGORY].s, v[I_CATEGORY].slen);
  out->topic = put(&b, v[I_TOPIC].s, v[I_TOPIC].slen);
  out->type = put(&b, v[I_TYPE].s, v[I_TYPE].slen);
  out->emotion = put(&b, v[I_EMOTION].present ? v[I_EMOTION].s : "",
                     v[I_EMOTION].slen);
  out->title = put(&b, v[I_TITLE].s, v[I_TITLE].slen);
  out->text = put(&b, v[I_TEXT].s, v[I_TEXT].slen);
  out->respond = put(&b, v[I_RESPOND].s, v[I_RESPOND].slen);
  out->source = put(&b, v[I_SOURCE].s, v[I_SOURCE].slen);
  for (uint32_t i = 0; i < m->nitems; i++)
    out->markers[i] = put(&b, m->items[i], m->ilen[i]);
  out->nmarkers = m->nitems;
  /* embed text: title \n text \n marker \n marker ... */
  char *e = b.base + b.used;
  size_t el = 0;
  memcpy(e + el, v[I_TITLE].s, v[I_TITLE].slen);
  el += v[I_TITLE].slen;
  e[el++] = '\n';
  memcpy(e + el, v[I_TEXT].s, v[I_TEXT].slen);
  el += v[I_TEXT].slen;
  for (uint32_t i = 0; i < m->nitems; i++) {
    e[el++] = '\n';
    memcpy(e + el, m->items[i], m->ilen[i]);
    el += m->ilen[i];
  }
  e[el] = '\0';
  b.used += el + 1;
  out->embed = e;
  out->embed_len = el;
  memcpy(b.base + b.used, w.sbuf.data, w.sbuf.size);
  out->meta = b.base + b.used;
  out->meta_len = w.sbuf.size;
  jiwa_mp_writer_free(&w);
  return 0;
}

int jiwa_knowledge_parse_insight(const char *line, size_t len,
                                 jiwa_knowledge_insight_t *out, char *err,
                                 size_t errlen) {
  if (!out)
    return fail(err, errlen, JIWA_EINVAL, "no output");
  memset(out, 0, sizeof *out);
  char *mp = NULL;
  size_t mplen = 0;
  int rc = line_to_mp(line, len, &mp, &mplen, err, errlen);
  if (rc == 0)
    rc = insight_from_mp(mp, mplen, out, err, errlen);
  free(mp);
  return rc;
}

void jiwa_knowledge_insight_free(jiwa_knowledge_insight_t *in) {
  if (!in)
    return;
  free(in->mem);
  memset(in, 0, sizeof *in);
}

/* ---- golden entries ------------------------------------------------------ */

enum {
  G_ID,
  G_LANG,
  G_QUESTION,
  G_PARAPHRASES,
  G_ANSWER,
  G_TAGS,
  G_EXAMPLE,
  G_SOURCE,
  G_TTL,
  G_EXPIRES,
  G_N
};
static const fdef_t GOLDEN_DEFS[] = {
    {"id", K_STR, 0},       {"lang", K_STR, 1},    {"question", K_STR, 1},
    {"paraphrases", K_ARR, 0}, {"answer", K_STR, 1}, {"tags", K_ARR, 0},
    {"example", K_BOOL, 0}, {"source", K_STR, 0},  {"ttl_days", K_NUM, 0},
    {"expires", K_INT, 0},  {NULL, 0, 0}};

/* FNV-1a 64 of lang "\n" question: a stable id for entries given none. */
static uint64_t fnv64(const char *a, size_t an, const char *b, size_t bn) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < an; i++)
    h = (h ^ (unsigned char)a[i]) * 1099511628211ull;
  h = (h ^ '\n') * 1099511628211ull;
  for (size_t i = 0; i < bn; i++)
    h = (h ^ (unsigned char)b[i]) * 1099511628211ull;
  return h;
}

static int golden_from_vals(fval_t *v, jiwa_knowledge_golden_t *out,
                            char *err, size_t errlen) {
  int rc;
  if (v[G_ID].present && !valid_id(v[G_ID].s, v[G_ID].slen))
    return fail(err, errlen, JIWA_EINVAL,
                "field 'id': use 1..64 of a-z 0-9 '-' with no empty segment");
  if (!in_list(LANGS, v[G_LANG].s, v[G_LANG].slen))
    return fail(err, errlen, JIWA_EINVAL, "field 'lang': 'en', 'id' or 'it'");
  if ((rc = check_len("question", v[G_QUESTION].s, v[G_QUESTION].slen, 3, 300,
                      err, errlen)) ||
      (rc = check_len("answer", v[G_ANSWER].s, v[G_ANSWER].slen, 1, 4000, err,
                      errlen)))
    return rc;
  if (v[G_SOURCE].present &&
      (rc = check_len("source", v[G_SOURCE].s, v[G_SOURCE].slen, 1, 64, err,
                      errlen)))
    return rc;
  fval_t *p = &v[G_PARAPHRASES];
  for (uint32_t i = 0; i < p->nitems; i++) {
    if ((rc = check_len("paraphrases", p->items[i], p->ilen[i], 3, 300, err,
                        errlen)))
      return rc;
    if (eq_fold(p->items[i], p->ilen[i], v[G_QUESTION].s, v[G_QUESTION].slen))
      return fail(err, errlen, JIWA_EINVAL,
                  "field 'paraphrases': item %u repeats the question", i + 1);
    for (uint32_t j = 0; j < i; j++)
      if (eq_fold(p->items[i], p->ilen[i], p->items[j], p->ilen[j]))
        return fail(err, errlen, JIWA_EINVAL,
                    "field 'paraphrases': item %u repeats item %u", i + 1,
                    j + 1);
  }
  fval_t *t = &v[G_TAGS];
  if (t->nitems > JIWA_KNOWLEDGE_TAGS_MAX)
    return fail(err, errlen, JIWA_EINVAL, "field 'tags': at most %d",
                JIWA_KNOWLEDGE_TAGS_MAX);
  for (uint32_t i = 0; i < t->nitems; i++)
    if (t->ilen[i] == 0 || t->ilen[i] > 32 ||
        !only(t->items[i], t->ilen[i], "_-"))
      return fail(err, errlen, JIWA_EINVAL,
                  "field 'tags': each 1..32 of a-z 0-9 '_' '-'");
  if (v[G_TTL].present && !(v[G_TTL].num >= 0 && v[G_TTL].num <= 36500))
    return fail(err, errlen, JIWA_EINVAL, "field 'ttl_days': 0..36500");
  if (v[G_EXPIRES].present && v[G_EXPIRES].i < 0)
    return fail(err, errlen, JIWA_EINVAL,
                "field 'expires': Unix time in ms, >= 0");

  char gen[32];
  const char *id = v[G_ID].s;
  size_t idl = v[G_ID].slen;
  if (!v[G_ID].present) {
    snprintf(gen, sizeof gen, "golden-%016llx",
             (unsigned long long)fnv64(v[G_LANG].s, v[G_LANG].slen,
                                       v[G_QUESTION].s, v[G_QUESTION].slen));
    id = gen;
    idl = strlen(gen);
  }
  const char *src = v[G_SOURCE].present ? v[G_SOURCE].s : "manual";
  size_t srcl = v[G_SOURCE].present ? v[G_SOURCE].slen : 6;
  size_t need = idl + srcl + v[G_LANG].slen + v[G_QUESTION].slen +
                v[G_ANSWER].slen + 5;
  for (uint32_t i = 0; i < p->nitems; i++)
    need += p->ilen[i] + 1;
  for (uint32_t i = 0; i < t->nitems; i++)
    need += t->ilen[i] + 1;
  block_t b = {malloc(need), 0, need};
  if (!b.base)
    return fail(err, errlen, JIWA_ENOMEM, "out of memory");
  memset(out, 0, sizeof *out);
  out->mem = b.base;
  out->id = put(&b, id, idl);
  out->lang = put(&b, v[G_LANG].s, v[G_LANG].slen);
  out->question = put(&b, v[G_QUESTION].s, v[G_QUESTION].slen);
  out->answer = put(&b, v[G_ANSWER].s, v[G_ANSWER].slen);
  out->source = put(&b, src, srcl);
  for (uint32_t i = 0; i < p->nitems; i++)
    out->paraphrases[i] = put(&b, p->items[i], p->ilen[i]);
  out->nparaphrases = p->nitems;
  for (uint32_t i = 0; i < t->nitems; i++)
    out->tags[i] = put(&b, t->items[i], t->ilen[i]);
  out->ntags = t->nitems;
  out->example = v[G_EXAMPLE].present ? v[G_EXAMPLE].b : 0;
  out->ttl_days = v[G_TTL].present ? v[G_TTL].num : 0;
  out->expires_ms = v[G_EXPIRES].present ? v[G_EXPIRES].i : 0;
  return 0;
}

static int golden_mp(const void *mp, size_t len, jiwa_knowledge_golden_t *out,
                     char *err, size_t errlen) {
  fval_t v[MAX_FIELDS];
  memset(v, 0, sizeof v);
  int rc = walk(mp, len, GOLDEN_DEFS, v, JIWA_KNOWLEDGE_PARAPHRASES_MAX, err,
                errlen);
  return rc ? rc : golden_from_vals(v, out, err, errlen);
}

int jiwa_knowledge_parse_golden(const char *line, size_t len,
                                jiwa_knowledge_golden_t *out, char *err,
                                size_t errlen) {
  if (!out)
    return fail(err, errlen, JIWA_EINVAL, "no output");
  memset(out, 0, sizeof *out);
  char *mp = NULL;
  size_t mplen = 0;
  int rc = line_to_mp(line, len, &mp, &mplen, err, errlen);
  if (rc == 0)
    rc = golden_mp(mp, mplen, out, err, errlen);
  free(mp);
  return rc;
}

int jiwa_knowledge_golden_from_mp(const void *mp, size_t len,
                                  jiwa_knowledge_golden_t *out, char *err,
                                  size_t errlen) {
  if (!out || (!mp && len))
    return fail(err, errlen, JIWA_EINVAL, "no entry");
  memset(out, 0, sizeof *out);
  if (len > JIWA_KNOWLEDGE_LINE_MAX)
    return fail(err, errlen, JIWA_ETOOBIG, "entry of %zu bytes, at most %u",
                len, (unsigned)JIWA_KNOWLEDGE_LINE_MAX);
  size_t used = 0;
  int rc = jiwa_mp_scan(mp, len, 2, &used);
  if (rc || used != len)
    return fail(err, errlen, rc == JIWA_ETOOBIG ? rc : JIWA_EPROTO,
                "malformed entry (msgpack)");
  return golden_mp(mp, len, out, err, errlen);
}

void jiwa_knowledge_golden_free(jiwa_knowledge_golden_t *g) {
  if (!g)
    return;
  free(g->mem);
  memset(g, 0, sizeof *g);
}

/* ---- whole buffers ------------------------------------------------------- */

typedef int (*parse_fn)(const char *, size_t, void *, char *, size_t);
typedef void (*free_fn)(void *);

static int p_ins(const char *l, size_t n, void *o, char *e, size_t el) {
  return jiwa_knowledge_parse_insight(l, n, o, e, el);
}
static int p_gold(const char *l, size_t n, void *o, char *e, size_t el) {
  return jiwa_knowledge_parse_golden(l, n, o, e, el);
}
static const char *id_ins(const void *o) {
  return ((const jiwa_knowledge_insight_t *)o)->id;
}
static const char *id_gold(const void *o) {
  return ((const jiwa_knowledge_golden_t *)o)->id;
}

typedef struct {
  const char *id;
  unsigned line;
} idline_t;

static int idline_cmp(const void *a, const void *b) {
  int c = strcmp(((const idline_t *)a)->id, ((const idline_t *)b)->id);
  if (c)
    return c;
  unsigned x = ((const idline_t *)a)->line, y = ((const idline_t *)b)->line;
  return (x > y) - (x < y);
}

static int blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
      return 0;
  return 1;
}

static int parse_lines(const char *buf, size_t len, const char *name,
                       size_t esize, parse_fn parse,
                       const char *(*idof)(const void *), void (*freeone)(void *),
                       void **out, size_t *n, char *err, size_t errlen) {
  if (!out || !n || (!buf && len))
    return fail(err, errlen, JIWA_EINVAL, "no buffer");
  *out = NULL;
  *n = 0;
  if (!name)
    name = "<input>";
  size_t lines = 0;
  for (size_t i = 0; i < len; i++)
    lines += buf[i] == '\n';
  lines++;
  if (lines > JIWA_KNOWLEDGE_LINES_MAX)
    return fail(err, errlen, JIWA_ETOOBIG, "%s: %zu lines, at most %u", name,
                lines, (unsigned)JIWA_KNOWLEDGE_LINES_MAX);
  char *v = calloc(lines, esize);
  idline_t *ids = calloc(lines, sizeof *ids);
  if (!v || !ids) {
    free(v);
    free(ids);
    return fail(err, errlen, JIWA_ENOMEM, "%s: out of memory", name);
  }
  size_t k = 0, pos = 0;
  unsigned lineno = 0;
  int rc = 0;
  char why[256];
  while (pos < len) {
    const char *nl = memchr(buf + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - buf) : len;
    lineno++;
    if (!blank(buf + pos, end - pos)) {
      rc = parse(buf + pos, end - pos, v + k * esize, why, sizeof why);
      if (rc) {
        fail(err, errlen, rc, "%s:%u: %s", name, lineno, why);
        break;
      }
      ids[k].id = idof(v + k * esize);
      ids[k].line = lineno;
      k++;
    }
    pos = end + 1;
  }
  if (rc == 0 && k > 1) {
    qsort(ids, k, sizeof *ids, idline_cmp);
    for (size_t i = 1; i < k; i++)
      if (strcmp(ids[i].id, ids[i - 1].id) == 0) {
        rc = fail(err, errlen, JIWA_EINVAL, "%s:%u: id '%s' already on line %u",
                  name, ids[i].line, ids[i].id, ids[i - 1].line);
        break;
      }
  }
  free(ids);
  if (rc) {
    for (size_t i = 0; i < k; i++)
      freeone(v + i * esize);
    free(v);
    return rc;
  }
  if (k == 0) {
    free(v);
    v = NULL;
  }
  *out = v;
  *n = k;
  return 0;
}

static void f_ins(void *p) { jiwa_knowledge_insight_free(p); }
static void f_gold(void *p) { jiwa_knowledge_golden_free(p); }

int jiwa_knowledge_parse_insights(const char *buf, size_t len,
                                  const char *name,
                                  jiwa_knowledge_insight_t **out, size_t *n,
                                  char *err, size_t errlen) {
  void *v = NULL;
  int rc = parse_lines(buf, len, name, sizeof(jiwa_knowledge_insight_t), p_ins,
                       id_ins, f_ins, &v, n, err, errlen);
  if (out)
    *out = v;
  return rc;
}

void jiwa_knowledge_insights_free(jiwa_knowledge_insight_t *v, size_t n) {
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    jiwa_knowledge_insight_free(&v[i]);
  free(v);
}

int jiwa_knowledge_parse_goldens(const char *buf, size_t len,
                                 const char *name,
                                 jiwa_knowledge_golden_t **out, size_t *n,
                                 char *err, size_t errlen) {
  void *v = NULL;
  int rc = parse_lines(buf, len, name, sizeof(jiwa_knowledge_golden_t), p_gold,
                       id_gold, f_gold, &v, n, err, errlen);
  if (out)
    *out = v;
  return rc;
}

void jiwa_knowledge_goldens_free(jiwa_knowledge_golden_t *v, size_t n) {
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    jiwa_knowledge_golden_free(&v[i]);
  free(v);
}

int jiwa_knowledge_read_file(const char *path, size_t max, char **out,
                             size_t *len) {
  if (!path || !out || !len)
    return JIWA_EINVAL;
  *out = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f)
    return errno == ENOENT ? JIWA_ENOENT : JIWA_EIO;
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return JIWA_EIO;
  }
  if ((uint64_t)st.st_size > max) {
    fclose(f);
    return JIWA_ETOOBIG;
  }
  size_t sz = (size_t)st.st_size;
  char *b = malloc(sz + 1);
  if (!b) {
    fclose(f);
    return JIWA_ENOMEM;
  }
  size_t got = fread(b, 1, sz, f);
  int bad = ferror(f);
  fclose(f);
  if (bad || got != sz) {
    free(b);
    return JIWA_EIO;
  }
  b[sz] = '\0';
  *out = b;
  *len = sz;
  return 0;
}
