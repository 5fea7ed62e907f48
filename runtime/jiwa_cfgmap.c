/*
 * Declarative config maps.
 *
 * One table of jiwa_cfg_field_t describes a settings section; this file
 * validates a msgpack map against it, fills a struct and prints help. The
 * daemon's own config sections and every plugin's settings go through the
 * same code, so all settings fail the same way: one line that names where,
 * the key, the problem and the fix.
 *
 * The input may be hostile (plugin test harness, fuzzing), so it is scanned
 * with the bounded reader before any of it is trusted, and nothing that is
 * printed comes from a secret.
 */
#include "jiwa_cfgmap.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Keys longer than this are cut when quoted in a message or compared for a
 * suggestion: keeps messages readable and edit distance cheap on junk. */
#define KEY_SHOW_MAX 64
/* Longest environment variable name a SECRET_ENV field may give. */
#define ENV_NAME_MAX 255

/* ---- bounded message building ------------------------------------------- */

typedef struct {
  char *buf;
  size_t cap;
  size_t len; /* what would have been written; may exceed cap */
} sbuf_t;

static void sb_vprintf(sbuf_t *sb, const char *fmt, va_list ap) {
  if (!sb->buf || sb->cap == 0)
    return;
  size_t off = sb->len < sb->cap ? sb->len : sb->cap - 1;
  int n = vsnprintf(sb->buf + off, sb->cap - off, fmt, ap);
  if (n > 0)
    sb->len = off + (size_t)n;
}

JIWA_PRINTF(2, 3)
static void sb_printf(sbuf_t *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sb_vprintf(sb, fmt, ap);
  va_end(ap);
}

/* Quote untrusted bytes: cut long ones, escape what a terminal would
 * interpret, so a hostile key can neither flood nor forge a log line. */
static void sb_show(sbuf_t *sb, const char *s, size_t n) {
  size_t lim = n > KEY_SHOW_MAX ? KEY_SHOW_MAX : n;
  for (size_t i = 0; i < lim; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f || c == '\\' || c == '\'')
      sb_printf(sb, "\\x%02x", c);
    else
      sb_printf(sb, "%c", c);
  }
  if (lim < n)
    sb_printf(sb, "...");
}

static void sb_where(sbuf_t *sb, const char *where, const char *key,
                     size_t keylen) {
  sb_printf(sb, "%s: ", where && *where ? where : "config");
  if (key) {
    sb_printf(sb, "key '");
    sb_show(sb, key, keylen);
    sb_printf(sb, "': ");
  }
}

/* "<where>: key '<key>': <fmt...>" */
JIWA_PRINTF(6, 7)
static void seterr(char *err, size_t errlen, const char *where, const char *key,
                   size_t keylen, const char *fmt, ...) {
  sbuf_t sb = {err, errlen, 0};
  if (err && errlen)
    err[0] = '\0';
  sb_where(&sb, where, key, keylen);
  va_list ap;
  va_start(ap, fmt);
  sb_vprintf(&sb, fmt, ap);
  va_end(ap);
}

/* ---- names for messages and help ---------------------------------------- */

static const char *cfg_type_name(jiwa_cfg_type_t t) {
  switch (t) {
  case JIWA_CFG_STR:
    return "string";
  case JIWA_CFG_INT:
    return "integer";
  case JIWA_CFG_BOOL:
    return "boolean";
  case JIWA_CFG_DOUBLE:
    return "number";
  case JIWA_CFG_SECRET_ENV:
    return "env-var";
  case JIWA_CFG_RAW:
    return "any";
  }
  return "?";
}

/* Lua's vocabulary, since that is what the user wrote. */
static const char *mp_type_name(jiwa_mp_type_t t) {
  switch (t) {
  case JIWA_MP_NIL:
    return "nil";
  case JIWA_MP_BOOL:
    return "boolean";
  case JIWA_MP_INT:
  case JIWA_MP_UINT:
    return "integer";
  case JIWA_MP_FLOAT:
    return "number";
  case JIWA_MP_STR:
    return "string";
  case JIWA_MP_BIN:
    return "binary";
  case JIWA_MP_ARRAY:
    return "list";
  case JIWA_MP_MAP:
    return "table";
  case JIWA_MP_EXT:
    return "extension";
  }
  return "?";
}

static int is_pointer_type(jiwa_cfg_type_t t) {
  return t == JIWA_CFG_STR || t == JIWA_CFG_SECRET_ENV || t == JIWA_CFG_RAW;
}

/* Range ends print as integers when they are, so "[1, 3600000]" rather
 * than "[1, 3.6e+06]". */
static void sb_num(sbuf_t *sb, double v) {
  if (v == trunc(v) && fabs(v) < 1e18)
    sb_printf(sb, "%lld", (long long)v);
  else
    sb_printf(sb, "%.17g", v);
}

/* ---- edit distance for "did you mean" ----------------------------------- */

/* Optimal string alignment distance (Levenshtein plus adjacent swaps),
 * case-insensitive: "Workers" and "wokrers" both point at "workers". */
static size_t edit_distance(const char *a, size_t na, const char *b,
                            size_t nb) {
  size_t rows[3][KEY_SHOW_MAX + 1];
  if (na > KEY_SHOW_MAX)
    na = KEY_SHOW_MAX;
  if (nb > KEY_SHOW_MAX)
    nb = KEY_SHOW_MAX;
  size_t *pp = rows[0], *prev = rows[1], *cur = rows[2];
  for (size_t j = 0; j <= nb; j++)
    prev[j] = j;
  for (size_t i = 1; i <= na; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= nb; j++) {
      int ca = (unsigned char)a[i - 1], cb = (unsigned char)b[j - 1];
      if (ca >= 'A' && ca <= 'Z')
        ca += 'a' - 'A';
      if (cb >= 'A' && cb <= 'Z')
        cb += 'a' - 'A';
      size_t best = prev[j - 1] + (ca != cb);
      if (prev[j] + 1 < best)
        best = prev[j] + 1;
      if (cur[j - 1] + 1 < best)
        best = cur[j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          pp[j - 2] + 1 < best)
        best = pp[j - 2] + 1;
      cur[j] = best;
    }
    size_t *t = pp;
    pp = prev;
    prev = cur;
    cur = t;
  }
  return prev[nb];
}

static void unknown_key_err(const jiwa_cfg_field_t *map, const char *key,
                            size_t keylen, const char *where, char *err,
                            size_t errlen) {
  sbuf_t sb = {err, errlen, 0};
  if (err && errlen)
    err[0] = '\0';
  sb_where(&sb, where, key, keylen);
  if (!map[0].key) {
    sb_printf(&sb, "unknown key; this section takes no settings, remove it");
    return;
  }
  const char *best = NULL;
  size_t best_d = SIZE_MAX;
  for (const jiwa_cfg_field_t *f = map; f->key; f++) {
    size_t d = edit_distance(key, keylen, f->key, strlen(f->key));
    if (d < best_d) {
      best_d = d;
      best = f->key;
    }
  }
  /* A third of the name is about where a suggestion stops being a typo
   * and starts being a guess. */
  size_t blen = strlen(best);
  if (best_d <= 2 || best_d <= blen / 3)
    sb_printf(&sb, "unknown key; did you mean '%s'? (known keys: ", best);
  else
    sb_printf(&sb, "unknown key; use one of the known keys: ");
  for (const jiwa_cfg_field_t *f = map; f->key; f++)
    sb_printf(&sb, "%s%s", f == map ? "" : ", ", f->key);
  if (best_d <= 2 || best_d <= blen / 3)
    sb_printf(&sb, ")");
}

/* ---- reading one value -------------------------------------------------- */

/* Where a field's value comes from: the given msgpack bytes, or the map's
 * default text when @p p is NULL. */
typedef struct {
  const uint8_t *p;
  size_t len;
} span_t;

typedef struct {
  const jiwa_cfg_field_t *f;
  const char *where;
  char *err;
  size_t errlen;
  int from_default;
} fctx_t;

JIWA_PRINTF(2, 3)
static int ferr(const fctx_t *fc, const char *fmt, ...) {
  sbuf_t sb = {fc->err, fc->errlen, 0};
  if (fc->err && fc->errlen)
    fc->err[0] = '\0';
  sb_where(&sb, fc->where, fc->f->key, strlen(fc->f->key));
  va_list ap;
  va_start(ap, fmt);
  sb_vprintf(&sb, fmt, ap);
  va_end(ap);
  return JIWA_ECONFIG;
}

static const char *article(const char *noun) {
  return strchr("aeiou", noun[0]) ? "an" : "a";
}

static int type_err(const fctx_t *fc, const char *expected,
                    const jiwa_mp_item_t *it) {
  return ferr(fc, "expected %s, got %s; write the value as %s %s", expected,
              mp_type_name(it->type), article(expected), expected);
}

static int bad_default(const fctx_t *fc) {
  const char *t = cfg_type_name(fc->f->type);
  return ferr(fc, "invalid default '%s' for %s %s field; fix the config map",
              fc->f->def, article(t), t);
}

static int range_check(const fctx_t *fc, double v, int is_int) {
  const jiwa_cfg_field_t *f = fc->f;
  if (f->min == f->max || (v >= f->min && v <= f->max))
    return 0;
  sbuf_t sb = {fc->err, fc->errlen, 0};
  if (fc->err && fc->errlen)
    fc->err[0] = '\0';
  sb_where(&sb, fc->where, f->key, strlen(f->key));
  sb_printf(&sb, "%s", fc->from_default ? "default " : "value ");
  if (is_int)
    sb_num(&sb, v);
  else
    sb_printf(&sb, "%.17g", v);
  sb_printf(&sb, " is out of range [");
  sb_num(&sb, f->min);
  sb_printf(&sb, ", ");
  sb_num(&sb, f->max);
  if (fc->from_default) {
    sb_printf(&sb, "]; fix the config map");
  } else {
    sb_printf(&sb, "]; use a value between ");
    sb_num(&sb, f->min);
    sb_printf(&sb, " and ");
    sb_num(&sb, f->max);
  }
  return JIWA_ECONFIG;
}

static int read_item(const fctx_t *fc, const span_t *sp, jiwa_mp_item_t *it) {
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, sp->p, sp->len);
  if (jiwa_mp_next(&r, it) != 0)
    return ferr(fc, "malformed value; pass well-formed msgpack");
  return 0;
}

/* Full-string number parsing: "30x" in a default is a bug, not 30. */
static int parse_ll(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end)
    return -1;
  *out = (int64_t)v;
  return 0;
}

static int parse_double(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v))
    return -1;
  *out = v;
  return 0;
}

static int get_int(const fctx_t *fc, const span_t *sp, int64_t *out) {
  if (!sp->p) {
    if (parse_ll(fc->f->def, out))
      return bad_default(fc);
    return range_check(fc, (double)*out, 1);
  }
  jiwa_mp_item_t it;
  int rc = read_item(fc, sp, &it);
  if (rc)
    return rc;
  int64_t v;
  if (it.type == JIWA_MP_INT) {
    v = it.v.i;
  } else if (it.type == JIWA_MP_UINT) {
    if (it.v.u > (uint64_t)INT64_MAX)
      return ferr(fc,
                  "value %llu does not fit a 64-bit integer; use a "
                  "smaller value",
                  (unsigned long long)it.v.u);
    v = (int64_t)it.v.u;
  } else if (it.type == JIWA_MP_FLOAT) {
    /* Lua writes 1e3 as a float; an integral one is what the user meant. */
    double d = it.v.f;
    if (!isfinite(d))
      return ferr(fc, "expected integer, got a non-finite number; write a "
                      "whole number");
    if (d != trunc(d))
      return ferr(fc,
                  "expected integer, got fractional number %g; write a "
                  "whole number",
                  d);
    if (d < -9223372036854775808.0 || d >= 9223372036854775808.0)
      return ferr(fc,
                  "value %g does not fit a 64-bit integer; use a "
                  "smaller value",
                  d);
    v = (int64_t)d;
  } else {
    return type_err(fc, "integer", &it);
  }
  rc = range_check(fc, (double)v, 1);
  if (rc)
    return rc;
  *out = v;
  return 0;
}

static int get_double(const fctx_t *fc, const span_t *sp, double *out) {
  if (!sp->p) {
    if (parse_double(fc->f->def, out))
      return bad_default(fc);
    return range_check(fc, *out, 0);
  }
  jiwa_mp_item_t it;
  int rc = read_item(fc, sp, &it);
  if (rc)
    return rc;
  double v;
  if (it.type == JIWA_MP_INT)
    v = (double)it.v.i;
  else if (it.type == JIWA_MP_UINT)
    v = (double)it.v.u;
  else if (it.type == JIWA_MP_FLOAT)
    v = it.v.f;
  else
    return type_err(fc, "number", &it);
  if (!isfinite(v))
    return ferr(fc, "expected a finite number, got NaN or infinity; write "
                    "a finite number");
  rc = range_check(fc, v, 0);
  if (rc)
    return rc;
  *out = v;
  return 0;
}

static int get_bool(const fctx_t *fc, const span_t *sp, int *out) {
  if (!sp->p) {
    const char *d = fc->f->def;
    if (!strcmp(d, "true") || !strcmp(d, "1"))
      *out = 1;
    else if (!strcmp(d, "false") || !strcmp(d, "0"))
      *out = 0;
    else
      return bad_default(fc);
    return 0;
  }
  jiwa_mp_item_t it;
  int rc = read_item(fc, sp, &it);
  if (rc)
    return rc;
  if (it.type != JIWA_MP_BOOL)
    return ferr(fc, "expected boolean, got %s; write true or false",
                mp_type_name(it.type));
  *out = it.v.b ? 1 : 0;
  return 0;
}

/* The string a STR or SECRET_ENV field was given, borrowed. */
static int get_text(const fctx_t *fc, const span_t *sp, const char **s,
                    size_t *n) {
  if (!sp->p) {
    *s = fc->f->def;
    *n = strlen(fc->f->def);
    return 0;
  }
  jiwa_mp_item_t it;
  int rc = read_item(fc, sp, &it);
  if (rc)
    return rc;
  if (it.type != JIWA_MP_STR) {
    if (fc->f->type == JIWA_CFG_SECRET_ENV)
      return ferr(fc,
                  "expected string (the name of an environment "
                  "variable), got %s; write the variable's name in quotes",
                  mp_type_name(it.type));
    return type_err(fc, "string", &it);
  }
  /* A C string would silently stop at the NUL. */
  if (memchr(it.v.s.ptr, '\0', it.v.s.len))
    return ferr(fc, "string contains a NUL byte; remove it");
  *s = it.v.s.ptr;
  *n = it.v.s.len;
  return 0;
}

static int get_str(const fctx_t *fc, const span_t *sp, char **out) {
  const char *s;
  size_t n;
  int rc = get_text(fc, sp, &s, &n);
  if (rc)
    return rc;
  char *copy = malloc(n + 1);
  if (!copy) {
    ferr(fc, "out of memory");
    return JIWA_ENOMEM;
  }
  memcpy(copy, s, n);
  copy[n] = '\0';
  *out = copy;
  return 0;
}

static int env_name_ok(const char *s, size_t n) {
  if (n == 0 || n > ENV_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

/*
 * The config names a variable; the field receives its value. Only the name
 * may ever reach a message, and only once it looks like a name: a user who
 * pasted the secret itself into the config must not see it echoed to a log.
 */
static int get_secret(const fctx_t *fc, const span_t *sp, char **out) {
  const char *s;
  size_t n;
  int rc = get_text(fc, sp, &s, &n);
  if (rc)
    return rc;
  if (!env_name_ok(s, n)) {
    if (fc->from_default)
      return ferr(fc, "default is not an environment variable name; fix "
                      "the config map");
    return ferr(fc,
                "value is not an environment variable name (letters, "
                "digits and '_', not starting with a digit, at most %d "
                "characters); give the NAME of the variable that holds "
                "the secret, never the secret itself",
                ENV_NAME_MAX);
  }
  char name[ENV_NAME_MAX + 1];
  memcpy(name, s, n);
  name[n] = '\0';
  const char *val = getenv(name);
  /* An empty key is as useless as a missing one and fails later, worse. */
  if (!val || !*val) {
    if (fc->f->flags & JIWA_CFG_REQUIRED)
      return ferr(fc,
                  "environment variable '%s' is not set (or is empty); "
                  "export %s before starting jiwad, or name another "
                  "variable",
                  name, name);
    *out = NULL;
    return 0;
  }
  char *copy = strdup(val);
  if (!copy) {
    ferr(fc, "out of memory");
    return JIWA_ENOMEM;
  }
  *out = copy;
  return 0;
}

static int get_raw(const fctx_t *fc, const span_t *sp, jiwa_cfg_raw_t *out) {
  /* There is no text syntax for a list or table, so a RAW default can only
   * be a mistake in the map; say so instead of guessing. */
  if (!sp->p)
    return ferr(fc, "a raw field cannot have a text default; fix the config "
                    "map (set def = NULL)");
  void *copy = malloc(sp->len);
  if (!copy) {
    ferr(fc, "out of memory");
    return JIWA_ENOMEM;
  }
  memcpy(copy, sp->p, sp->len);
  out->data = copy;
  out->len = sp->len;
  return 0;
}

static int set_field(const fctx_t *fc, const span_t *sp, void *ctx) {
  char *slot = (char *)ctx + fc->f->offset;
  switch (fc->f->type) {
  case JIWA_CFG_STR:
    return get_str(fc, sp, (char **)(void *)slot);
  case JIWA_CFG_INT:
    return get_int(fc, sp, (int64_t *)(void *)slot);
  case JIWA_CFG_BOOL:
    return get_bool(fc, sp, (int *)(void *)slot);
  case JIWA_CFG_DOUBLE:
    return get_double(fc, sp, (double *)(void *)slot);
  case JIWA_CFG_SECRET_ENV:
    return get_secret(fc, sp, (char **)(void *)slot);
  case JIWA_CFG_RAW:
    return get_raw(fc, sp, (jiwa_cfg_raw_t *)(void *)slot);
  }
  return ferr(fc, "unknown field type %d; fix the config map",
              (int)fc->f->type);
}

static void free_field(const jiwa_cfg_field_t *f, void *ctx) {
  char *slot = (char *)ctx + f->offset;
  if (f->type == JIWA_CFG_STR) {
    char **p = (char **)(void *)slot;
    free(*p);
    *p = NULL;
  } else if (f->type == JIWA_CFG_SECRET_ENV) {
    char **p = (char **)(void *)slot;
    /* Don't leave the secret lying around in freed heap. */
    if (*p)
      explicit_bzero(*p, strlen(*p));
    free(*p);
    *p = NULL;
  } else if (f->type == JIWA_CFG_RAW) {
    jiwa_cfg_raw_t *r = (jiwa_cfg_raw_t *)(void *)slot;
    free((void *)r->data);
    r->data = NULL;
    r->len = 0;
  }
}

/* ---- the map ------------------------------------------------------------ */

/*
 * Record where each known key's value sits, rejecting anything that is not
 * a well-formed map of known, distinct string keys. Nothing is stored yet,
 * so a bad key costs no cleanup.
 */
static int collect(const jiwa_cfg_field_t *map, size_t n, const void *mp,
                   size_t len, span_t *spans, const char *where, char *err,
                   size_t errlen) {
  size_t used = 0;
  int rc = jiwa_mp_scan(mp, len, JIWA_MP_MAX_DEPTH, &used);
  if (rc == JIWA_ETOOBIG) {
    seterr(err, errlen, where, NULL, 0,
           "settings are nested deeper than %d levels; flatten them",
           JIWA_MP_MAX_DEPTH);
    return JIWA_ECONFIG;
  }
  if (rc || used != len) {
    seterr(err, errlen, where, NULL, 0,
           "settings are not one well-formed msgpack value (%s); pass a "
           "msgpack map",
           rc ? "malformed or truncated" : "trailing bytes");
    return JIWA_ECONFIG;
  }

  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, mp, len);
  if (jiwa_mp_next(&r, &it) != 0)
    goto malformed;
  if (it.type == JIWA_MP_NIL)
    return 0; /* nil: nothing set */
  if (it.type != JIWA_MP_MAP) {
    seterr(err, errlen, where, NULL, 0,
           "expected a table of settings, got %s; write { key = value, ... }",
           mp_type_name(it.type));
    return JIWA_ECONFIG;
  }

  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t k;
    if (jiwa_mp_next(&r, &k) != 0)
      goto malformed;
    if (k.type != JIWA_MP_STR) {
      seterr(err, errlen, where, NULL, 0,
             "setting names must be strings, got %s; write { name = value }",
             mp_type_name(k.type));
      return JIWA_ECONFIG;
    }
    size_t idx = n;
    for (size_t j = 0; j < n; j++) {
      if (strlen(map[j].key) == k.v.s.len &&
          memcmp(map[j].key, k.v.s.ptr, k.v.s.len) == 0) {
        idx = j;
        break;
      }
    }
    if (idx == n) {
      unknown_key_err(map, k.v.s.ptr, k.v.s.len, where, err, errlen);
      return JIWA_ECONFIG;
    }
    if (spans[idx].p) {
      seterr(err, errlen, where, map[idx].key, strlen(map[idx].key),
             "key given twice; keep only one");
      return JIWA_ECONFIG;
    }
    const uint8_t *start = r.p;
    if (jiwa_mp_skip(&r) != 0)
      goto malformed;
    spans[idx].p = start;
    spans[idx].len = (size_t)(r.p - start);
  }
  return 0;

malformed:
  /* The scan above already proved the bytes well-formed; kept for safety. */
  seterr(err, errlen, where, NULL, 0,
         "settings are malformed msgpack; pass a msgpack map");
  return JIWA_ECONFIG;
}

int jiwa_cfgmap_apply(const jiwa_cfg_field_t *map, const void *mp, size_t len,
                      void *ctx, const char *where, char *err, size_t errlen) {
  int rc = 0;
  size_t n = 0;
  span_t *spans = NULL;
  unsigned char *stored = NULL;

  if (err && errlen)
    err[0] = '\0';
  if (!map || !ctx) {
    seterr(err, errlen, where, NULL, 0,
           "no config map or no context; this is a bug in the caller");
    return JIWA_EINVAL;
  }
  while (map[n].key)
    n++;
  /* +1: calloc(0) may return NULL, which would read as out of memory. */
  spans = calloc(n + 1, sizeof *spans);
  stored = calloc(n + 1, 1);
  if (!spans || !stored) {
    seterr(err, errlen, where, NULL, 0, "out of memory");
    rc = JIWA_ENOMEM;
    goto out;
  }

  if (mp && len > 0) {
    rc = collect(map, n, mp, len, spans, where, err, errlen);
    if (rc)
      goto out;
  }

  /* Given value, else default, else required-or-untouched: each field is
   * decided once, so a default never costs a lookup the config overrides. */
  for (size_t i = 0; i < n; i++) {
    const jiwa_cfg_field_t *f = &map[i];
    fctx_t fc = {f, where, err, errlen, spans[i].p == NULL};
    if (!spans[i].p && !f->def) {
      if (f->flags & JIWA_CFG_REQUIRED) {
        rc = ferr(&fc, "missing required key; add %s = <%s>%s%s%s", f->key,
                  cfg_type_name(f->type), f->desc ? " (" : "",
                  f->desc ? f->desc : "", f->desc ? ")" : "");
        goto out;
      }
      continue;
    }
    rc = set_field(&fc, &spans[i], ctx);
    if (rc)
      goto out;
    stored[i] = 1;
  }

out:
  if (rc && stored) {
    for (size_t i = 0; i < n; i++)
      if (stored[i] && is_pointer_type(map[i].type))
        free_field(&map[i], ctx);
  }
  free(spans);
  free(stored);
  return rc;
}

void jiwa_cfgmap_free(const jiwa_cfg_field_t *map, void *ctx) {
  if (!map || !ctx)
    return;
  for (const jiwa_cfg_field_t *f = map; f->key; f++)
    free_field(f, ctx);
}

/* ---- help --------------------------------------------------------------- */

static void fmt_default(const jiwa_cfg_field_t *f, char *buf, size_t n) {
  if (f->def && (f->flags & JIWA_CFG_REQUIRED))
    snprintf(buf, n, "%s (required)", f->def);
  else if (f->def)
    snprintf(buf, n, "%s", f->def);
  else if (f->flags & JIWA_CFG_REQUIRED)
    snprintf(buf, n, "required");
  else
    snprintf(buf, n, "-");
}

static void fmt_range(const jiwa_cfg_field_t *f, char *buf, size_t n) {
  if (f->min == f->max ||
      (f->type != JIWA_CFG_INT && f->type != JIWA_CFG_DOUBLE)) {
    snprintf(buf, n, "-");
    return;
  }
  sbuf_t sb = {buf, n, 0};
  buf[0] = '\0';
  sb_num(&sb, f->min);
  sb_printf(&sb, "..");
  sb_num(&sb, f->max);
}

void jiwa_cfgmap_help(const jiwa_cfg_field_t *map, FILE *out) {
  char dbuf[128], rbuf[96];
  int wk = 3, wt = 4, wd = 7, wr = 5; /* widths of the header words */
  if (!out)
    return;
  if (!map || !map[0].key) {
    fprintf(out, "(no settings)\n");
    return;
  }
  for (const jiwa_cfg_field_t *f = map; f->key; f++) {
    int l = (int)strlen(f->key);
    if (l > wk)
      wk = l;
    l = (int)strlen(cfg_type_name(f->type));
    if (l > wt)
      wt = l;
    fmt_default(f, dbuf, sizeof dbuf);
    l = (int)strlen(dbuf);
    if (l > wd)
      wd = l;
    fmt_range(f, rbuf, sizeof rbuf);
    l = (int)strlen(rbuf);
    if (l > wr)
      wr = l;
  }
  fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", wk, "KEY", wt, "TYPE", wd,
          "DEFAULT", wr, "RANGE", "DESCRIPTION");
  for (const jiwa_cfg_field_t *f = map; f->key; f++) {
    fmt_default(f, dbuf, sizeof dbuf);
    fmt_range(f, rbuf, sizeof rbuf);
    fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", wk, f->key, wt,
            cfg_type_name(f->type), wd, dbuf, wr, rbuf, f->desc ? f->desc : "");
  }
}
