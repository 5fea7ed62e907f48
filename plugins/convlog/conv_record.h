/*
 * The conversation record of the convlog plugin: the parser of a tell or an
 * imported entry (untrusted msgpack: bounded, no allocation) and the packer
 * of the stored map. Header-only (static) so tests/fuzz/fuzz_conv.c checks
 * the very code the plugin runs.
 */
#ifndef JIWA_CONV_RECORD_H
#define JIWA_CONV_RECORD_H

#include <jiwa/mp.h>
#include <stdio.h>
#include <string.h>

#include "conv_util.h"

#define TEXT_MAX (32u * 1024u) /* bytes of the user's text */
#define ANSWER_MAX (64u * 1024u)
#define SHORT_MAX 128 /* session, model, golden_id, provider */
#define LANG_MAX 16
#define ROUTE_MAX 32
#define IDS_MAX 64 /* insight ids */
#define ID_MAX 128

/* ---- records --------------------------------------------------------------- */

typedef struct {
  const char *p;
  size_t n;
  int set;
} sv_t;

typedef struct {
  int64_t time_ms;
  int has_time;
  sv_t user, session, lang, text, answer, route, model, golden_id, provider,
      source;
  double golden_score, ms;
  int has_golden_score, has_ms;
  int memory_used, has_memory_used, fallback, has_fallback;
  const uint8_t *ids; /* raw msgpack array of insight ids */
  size_t ids_len;
  int truncated;
  unsigned ignored; /* unknown fields */
} rec_t;

typedef enum { T_STR, T_NUM, T_BOOL, T_IDS, T_TIME, T_TIMEMS } ftype_t;

static const struct {
  const char *name;
  ftype_t type;
  size_t max;
  size_t off;
} rec_fields[] = {
    {"user", T_STR, CONVK_USER_MAX, offsetof(rec_t, user)},
    {"session", T_STR, SHORT_MAX, offsetof(rec_t, session)},
    {"lang", T_STR, LANG_MAX, offsetof(rec_t, lang)},
    {"text", T_STR, TEXT_MAX, offsetof(rec_t, text)},
    {"answer", T_STR, ANSWER_MAX, offsetof(rec_t, answer)},
    {"route", T_STR, ROUTE_MAX, offsetof(rec_t, route)},
    {"model", T_STR, SHORT_MAX, offsetof(rec_t, model)},
    {"golden_id", T_STR, SHORT_MAX, offsetof(rec_t, golden_id)},
    {"provider", T_STR, SHORT_MAX, offsetof(rec_t, provider)},
    {"source", T_STR, 32, offsetof(rec_t, source)},
    {"golden_score", T_NUM, 0, offsetof(rec_t, golden_score)},
    {"ms", T_NUM, 0, offsetof(rec_t, ms)},
    {"memory_used", T_BOOL, 0, offsetof(rec_t, memory_used)},
    {"fallback", T_BOOL, 0, offsetof(rec_t, fallback)},
    {"insight_ids", T_IDS, 0, 0},
    {"time", T_TIME, 0, 0},
    {"timestamp", T_TIME, 0, 0},
    {"time_ms", T_TIMEMS, 0, 0},
    {"truncated", T_BOOL, 0, offsetof(rec_t, truncated)},
};
#define NFIELDS (sizeof rec_fields / sizeof *rec_fields)

static inline int *has_of(rec_t *r, size_t off) {
  if (off == offsetof(rec_t, golden_score))
    return &r->has_golden_score;
  if (off == offsetof(rec_t, ms))
    return &r->has_ms;
  if (off == offsetof(rec_t, memory_used))
    return &r->has_memory_used;
  if (off == offsetof(rec_t, fallback))
    return &r->has_fallback;
  return NULL;
}

/*
 * Parse one record map. strict (import): wrong types, over-long strings,
 * bad times and missing user/text are errors (message in @p err); lax (a
 * tell from the policy): such fields are dropped or cut, never fatal
 * unless the body is not a map.
 */
static inline int rec_parse(const void *buf, size_t len, int strict, rec_t *r,
                     char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  jiwa_mp_reader_t rd;
  jiwa_mp_item_t it, k, v;
  jiwa_mp_reader_init(&rd, buf, len);
  if (jiwa_mp_next(&rd, &it) != 0 || it.type != JIWA_MP_MAP) {
    snprintf(err, errlen, "not an object");
    return JIWA_EINVAL;
  }
  for (uint32_t i = 0; i < it.v.count; i++) {
    if (jiwa_mp_next(&rd, &k) != 0) {
      snprintf(err, errlen, "malformed entry");
      return JIWA_EPROTO;
    }
    const uint8_t *vstart = rd.p;
    jiwa_mp_reader_t peek = rd;
    if (jiwa_mp_next(&peek, &v) != 0 || jiwa_mp_skip(&rd) != 0) {
      snprintf(err, errlen, "malformed entry");
      return JIWA_EPROTO;
    }
    if (k.type != JIWA_MP_STR) {
      r->ignored++;
      continue;
    }
    size_t f = 0;
    for (; f < NFIELDS; f++)
      if (strlen(rec_fields[f].name) == k.v.s.len &&
          memcmp(rec_fields[f].name, k.v.s.ptr, k.v.s.len) == 0)
        break;
    if (f == NFIELDS) {
      r->ignored++;
      continue;
    }
    const char *fname = rec_fields[f].name;
    int isnum = v.type == JIWA_MP_INT || v.type == JIWA_MP_UINT ||
                v.type == JIWA_MP_FLOAT;
    if (v.type == JIWA_MP_NIL)
      continue; /* absent */
    switch (rec_fields[f].type) {
    case T_STR: {
      if (v.type != JIWA_MP_STR) {
        if (strict) {
          snprintf(err, errlen, "field '%s' must be a string", fname);
          return JIWA_EINVAL;
        }
        break;
      }
      sv_t *s = (sv_t *)((char *)r + rec_fields[f].off);
      size_t n = v.v.s.len;
      if (n > rec_fields[f].max) {
        if (strict) {
          snprintf(err, errlen, "field '%s' is longer than %zu bytes", fname,
                   rec_fields[f].max);
          return JIWA_ETOOBIG;
        }
        n = convk_cut_utf8(v.v.s.ptr, n, rec_fields[f].max);
        r->truncated = 1;
      }
      s->p = v.v.s.ptr;
      s->n = n;
      s->set = 1;
      break;
    }
    case T_NUM:
      if (!isnum) {
        if (strict) {
          snprintf(err, errlen, "field '%s' must be a number", fname);
          return JIWA_EINVAL;
        }
        break;
      }
      *(double *)((char *)r + rec_fields[f].off) =
          v.type == JIWA_MP_FLOAT ? v.v.f
          : v.type == JIWA_MP_INT ? (double)v.v.i
                                  : (double)v.v.u;
      *has_of(r, rec_fields[f].off) = 1;
      break;
    case T_BOOL:
      if (v.type != JIWA_MP_BOOL) {
        if (strict) {
          snprintf(err, errlen, "field '%s' must be true or false", fname);
          return JIWA_EINVAL;
        }
        break;
      }
      *(int *)((char *)r + rec_fields[f].off) = v.v.b;
      if (has_of(r, rec_fields[f].off))
        *has_of(r, rec_fields[f].off) = 1;
      break;
    case T_IDS: {
      int ok = v.type == JIWA_MP_ARRAY && v.v.count <= IDS_MAX;
      jiwa_mp_reader_t e;
      jiwa_mp_reader_init(&e, vstart, (size_t)(rd.p - vstart));
      jiwa_mp_next(&e, NULL);
      for (uint32_t j = 0; ok && j < v.v.count; j++) {
        jiwa_mp_item_t x;
        ok = jiwa_mp_next(&e, &x) == 0 &&
             ((x.type == JIWA_MP_STR && x.v.s.len <= ID_MAX) ||
              x.type == JIWA_MP_UINT || x.type == JIWA_MP_INT);
      }
      if (!ok) {
        if (strict) {
          snprintf(err, errlen,
                   "field 'insight_ids' must be a list of at most %d ids",
                   IDS_MAX);
          return JIWA_EINVAL;
        }
        break;
      }
      r->ids = vstart;
      r->ids_len = (size_t)(rd.p - vstart);
      break;
    }
    case T_TIME:
    case T_TIMEMS: {
      int64_t t = -1;
      /* up to the end of year 9999: what an ISO-8601 time can write back */
      if (v.type == JIWA_MP_UINT && v.v.u <= UINT64_C(253402300799999))
        t = (int64_t)v.v.u;
      else if (v.type == JIWA_MP_STR && rec_fields[f].type == T_TIME &&
               convk_iso_parse(v.v.s.ptr, v.v.s.len, &t) != 0)
        t = -1;
      if (t < 0) {
        if (strict) {
          snprintf(err, errlen,
                   "field '%s' must be unix milliseconds or an ISO-8601 time "
                   "(2024-05-01T10:20:30Z)",
                   fname);
          return JIWA_EINVAL;
        }
        break;
      }
      /* time_ms wins over time / timestamp */
      if (!r->has_time || rec_fields[f].type == T_TIMEMS)
        r->time_ms = t;
      r->has_time = 1;
      break;
    }
    }
  }
  if (jiwa_mp_reader_left(&rd) != 0 && strict) {
    snprintf(err, errlen, "trailing bytes");
    return JIWA_EPROTO;
  }
  if (strict) {
    if (!r->user.set || r->user.n == 0) {
      snprintf(err, errlen, "field 'user' is required (a non-empty string)");
      return JIWA_EINVAL;
    }
    if (!r->has_time) {
      snprintf(err, errlen,
               "field 'time' is required (unix ms or ISO-8601, kept as is)");
      return JIWA_EINVAL;
    }
    if (!r->text.set) {
      snprintf(err, errlen, "field 'text' is required");
      return JIWA_EINVAL;
    }
  }
  return 0;
}

static inline void put_sv(msgpack_packer *pk, const char *k, const sv_t *s) {
  convk_put_bin_str(pk, k, s->set ? s->p : "", s->set ? s->n : 0);
}

/* The stored record: {time_ms, time, user, session, lang, text, answer,
 * route, [model, golden_id, golden_score, insight_ids, memory_used, ms,
 * provider, fallback, source, truncated]}. */
static inline void rec_pack(const rec_t *r, msgpack_packer *pk) {
  uint32_t n = 8 + r->model.set + r->golden_id.set + r->has_golden_score +
               (r->ids != NULL) + r->has_memory_used + r->has_ms +
               r->provider.set + r->has_fallback + r->source.set +
               (r->truncated != 0);
  msgpack_pack_map(pk, n);
  jiwa_mp_put_kv_int(pk, "time_ms", r->time_ms);
  char iso[32];
  convk_iso_format(r->time_ms, iso);
  jiwa_mp_put_kv_str(pk, "time", iso);
  put_sv(pk, "user", &r->user);
  put_sv(pk, "session", &r->session);
  put_sv(pk, "lang", &r->lang);
  put_sv(pk, "text", &r->text);
  put_sv(pk, "answer", &r->answer);
  put_sv(pk, "route", &r->route);
  if (r->model.set)
    put_sv(pk, "model", &r->model);
  if (r->golden_id.set)
    put_sv(pk, "golden_id", &r->golden_id);
  if (r->has_golden_score)
    jiwa_mp_put_kv_double(pk, "golden_score", r->golden_score);
  if (r->ids) {
    jiwa_mp_put_str(pk, "insight_ids");
    pk->callback(pk->data, (const char *)r->ids, r->ids_len);
  }
  if (r->has_memory_used)
    jiwa_mp_put_kv_bool(pk, "memory_used", r->memory_used);
  if (r->has_ms)
    jiwa_mp_put_kv_double(pk, "ms", r->ms);
  if (r->provider.set)
    put_sv(pk, "provider", &r->provider);
  if (r->has_fallback)
    jiwa_mp_put_kv_bool(pk, "fallback", r->fallback);
  if (r->source.set)
    put_sv(pk, "source", &r->source);
  if (r->truncated)
    jiwa_mp_put_kv_bool(pk, "truncated", 1);
}

#endif /* JIWA_CONV_RECORD_H */
