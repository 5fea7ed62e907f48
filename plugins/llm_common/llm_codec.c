/*
 * llm_codec — the pure parts every provider plugin shares (see llm_codec.h):
 * the ask body, system prompt and presets, the parse sink, JSON lookups,
 * retry arithmetic and the circuit breaker.
 */
#include "llm_codec.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jiwa/json.h>

/* ---- the ask body --------------------------------------------------------- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* An optional string field: absent and nil are "not given". */
static int opt_str(const void *b, size_t len, const char *key, llm_str_t *out,
                   char *err, size_t errlen) {
  jiwa_mp_reader_t at;
  int rc = jiwa_mp_map_find(b, len, key, &at);
  if (rc == JIWA_ENOENT)
    return 0;
  if (rc)
    return rc;
  jiwa_mp_item_t it;
  if ((rc = jiwa_mp_next(&at, &it)))
    return rc;
  if (it.type == JIWA_MP_NIL)
    return 0;
  if (it.type != JIWA_MP_STR) {
    seterr(err, errlen, "'%s' must be a string", key);
    return JIWA_EINVAL;
  }
  out->p = it.v.s.ptr;
  out->n = it.v.s.len;
  return 0;
}

static int parse_messages(jiwa_mp_reader_t *at, llm_req_t *r, char *err,
                          size_t errlen) {
  jiwa_mp_item_t it;
  int rc = jiwa_mp_next(at, &it);
  if (rc)
    return rc;
  if (it.type != JIWA_MP_ARRAY) {
    seterr(err, errlen, "'messages' must be an array of {role, content}");
    return JIWA_EINVAL;
  }
  if (it.v.count > LLM_MAX_MSGS) {
    seterr(err, errlen, "'messages' has %u entries, at most %d are allowed",
           it.v.count, LLM_MAX_MSGS);
    return JIWA_ETOOBIG;
  }
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *start = at->p;
    if ((rc = jiwa_mp_skip(at)))
      return rc;
    size_t elen = (size_t)(at->p - start);
    llm_msg_t *m = &r->msgs[r->nmsgs];
    memset(m, 0, sizeof *m);
    const char *s;
    size_t n;
    rc = jiwa_mp_get_str(start, elen, "role", &s, &n);
    if (rc || !(llm_eq(s, n, "user") || llm_eq(s, n, "assistant") ||
                llm_eq(s, n, "system"))) {
      seterr(err, errlen,
             "messages[%u].role must be \"user\", \"assistant\" or "
             "\"system\"",
             i + 1);
      return rc == JIWA_EPROTO ? rc : JIWA_EINVAL;
    }
    m->role.p = s;
    m->role.n = n;
    rc = jiwa_mp_get_str(start, elen, "content", &s, &n);
    if (rc) {
      seterr(err, errlen, "messages[%u].content must be a string", i + 1);
      return rc == JIWA_EPROTO ? rc : JIWA_EINVAL;
    }
    m->content.p = s;
    m->content.n = n;
    r->nmsgs++;
  }
  return 0;
}

int llm_req_parse(const void *body, size_t len, llm_req_t *r, char *err,
                  size_t errlen) {
  memset(r, 0, sizeof *r);
  r->temperature = -1;
  if (err && errlen)
    err[0] = '\0';
  jiwa_mp_reader_t rd;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&rd, body, len);
  if (!body || jiwa_mp_scan(body, len, JIWA_MP_MAX_DEPTH, NULL) != 0 ||
      jiwa_mp_next(&rd, &it) != 0 || it.type != JIWA_MP_MAP) {
    seterr(err, errlen, "the body must be a msgpack map");
    return JIWA_EPROTO;
  }
  int rc;
  if ((rc = opt_str(body, len, "system", &r->system, err, errlen)) ||
      (rc = opt_str(body, len, "context", &r->context, err, errlen)) ||
      (rc = opt_str(body, len, "lang", &r->lang, err, errlen)))
    return rc;

  jiwa_mp_reader_t at;
  rc = jiwa_mp_map_find(body, len, "messages", &at);
  if (rc == 0) {
    if ((rc = parse_messages(&at, r, err, errlen)))
      return rc;
  } else if (rc == JIWA_ENOENT) {
    llm_str_t text = {0};
    if ((rc = opt_str(body, len, "text", &text, err, errlen)))
      return rc;
    if (text.p) { /* a chat request on the policy's fallback route */
      r->msgs[0].role.p = "user";
      r->msgs[0].role.n = 4;
      r->msgs[0].content = text;
      r->nmsgs = 1;
    }
  } else {
    return rc;
  }
  size_t turns = 0;
  for (size_t i = 0; i < r->nmsgs; i++)
    if (!llm_eq(r->msgs[i].role.p, r->msgs[i].role.n, "system"))
      turns++;
  if (turns == 0) {
    seterr(err, errlen,
           "'messages' must hold at least one user or assistant message");
    return JIWA_EINVAL;
  }

  int b;
  rc = jiwa_mp_get_bool(body, len, "stream", &b);
  if (rc == 0)
    r->stream = b;
  else if (rc != JIWA_ENOENT) {
    seterr(err, errlen, "'stream' must be a boolean");
    return JIWA_EINVAL;
  }
  int64_t v;
  rc = jiwa_mp_get_int(body, len, "max_tokens", &v);
  if (rc == 0) {
    if (v < 1 || v > 1000000) {
      seterr(err, errlen, "'max_tokens' must be 1..1000000, got %lld",
             (long long)v);
      return JIWA_EINVAL;
    }
    r->max_tokens = v;
  } else if (rc != JIWA_ENOENT) {
    seterr(err, errlen, "'max_tokens' must be an integer");
    return JIWA_EINVAL;
  }
  double d;
  rc = jiwa_mp_get_double(body, len, "temperature", &d);
  if (rc == 0) {
    if (!(d >= 0 && d <= 2)) {
      seterr(err, errlen, "'temperature' must be 0..2");
      return JIWA_EINVAL;
    }
    r->temperature = d;
  } else if (rc != JIWA_ENOENT) {
    seterr(err, errlen, "'temperature' must be a number");
    return JIWA_EINVAL;
  }
  llm_str_t preset = {0};
  if ((rc = opt_str(body, len, "preset", &preset, err, errlen)))
    return rc;
  if (preset.p && llm_preset_parse(preset.p, preset.n, &r->preset) != 0) {
    seterr(err, errlen, "'preset' must be \"SANTAI\" or \"PIKIRAN\"");
    return JIWA_EINVAL;
  }
  return 0;
}

/* ---- prompts ----------------------------------------------------------------- */

typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} sb_t;

static void sb_put(sb_t *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void sb_puts(sb_t *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A blank line between parts, none before the first. */
static void sb_part(sb_t *b, const char *s, size_t n) {
  if (!n)
    return;
  if (b->n)
    sb_puts(b, "\n\n");
  sb_put(b, s, n);
}

static int sb_done(sb_t *b, char **out, size_t *outlen) {
  sb_put(b, "", 0);
  if (b->oom) {
    free(b->p);
    *out = NULL;
    return JIWA_ENOMEM;
  }
  *out = b->p;
  if (outlen)
    *outlen = b->n;
  return 0;
}

static const char *lang_name(llm_str_t l) {
  static const struct {
    const char *code, *name;
  } names[] = {{"id", "Indonesian (Bahasa Indonesia)"},
               {"en", "English"},
               {"it", "Italian"},
               {"jv", "Javanese"},
               {"su", "Sundanese"},
               {"ms", "Malay"},
               {"nl", "Dutch"},
               {"de", "German"},
               {"fr", "French"},
               {"ja", "Japanese"},
               {"zh", "Chinese"}};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (llm_eq(l.p, l.n, names[i].code))
      return names[i].name;
  return NULL;
}

int llm_system_build(const char *persona, const llm_req_t *r, char **out,
                     size_t *outlen) {
  sb_t b = {0};
  if (persona)
    sb_part(&b, persona, strlen(persona));
  sb_part(&b, r->system.p, r->system.n);
  for (size_t i = 0; i < r->nmsgs; i++)
    if (llm_eq(r->msgs[i].role.p, r->msgs[i].role.n, "system"))
      sb_part(&b, r->msgs[i].content.p, r->msgs[i].content.n);
  if (r->context.n) {
    if (b.n)
      sb_puts(&b, "\n\n");
    sb_puts(&b, "## Context\n");
    sb_put(&b, r->context.p, r->context.n);
  }
  const char *ln = lang_name(r->lang);
  if (ln) {
    if (b.n)
      sb_puts(&b, "\n\n");
    sb_puts(&b, "Reply in ");
    sb_puts(&b, ln);
    sb_puts(&b, ".");
  }
  return sb_done(&b, out, outlen);
}

int llm_prompt_build(const char *system, const llm_req_t *r, char **out,
                     size_t *outlen) {
  sb_t b = {0};
  if (system && *system) {
    sb_puts(&b, system);
    sb_puts(&b, "\n\n");
  }
  for (size_t i = 0; i < r->nmsgs; i++) {
    const llm_msg_t *m = &r->msgs[i];
    if (llm_eq(m->role.p, m->role.n, "system"))
      continue;
    sb_puts(&b, llm_eq(m->role.p, m->role.n, "user") ? "User: "
                                                     : "Assistant: ");
    sb_put(&b, m->content.p, m->content.n);
    sb_puts(&b, "\n");
  }
  sb_puts(&b, "Assistant:");
  return sb_done(&b, out, outlen);
}

/* ---- presets ------------------------------------------------------------------ */

int llm_preset_parse(const char *s, size_t n, llm_preset_t *out) {
  if (n == 0 || (n == 4 && strncasecmp(s, "none", 4) == 0))
    *out = LLM_PRESET_NONE;
  else if (n == 6 && strncasecmp(s, "santai", 6) == 0)
    *out = LLM_PRESET_SANTAI;
  else if (n == 7 && strncasecmp(s, "pikiran", 7) == 0)
    *out = LLM_PRESET_PIKIRAN;
  else
    return JIWA_EINVAL;
  return 0;
}

const char *llm_preset_name(llm_preset_t p) {
  switch (p) {
  case LLM_PRESET_SANTAI:
    return "SANTAI";
  case LLM_PRESET_PIKIRAN:
    return "PIKIRAN";
  default:
    return "";
  }
}

void llm_params_resolve(const llm_params_cfg_t *cfg, const llm_req_t *r,
                        int64_t *max_tokens, double *temperature,
                        llm_preset_t *preset) {
  llm_preset_t p = r->preset != LLM_PRESET_NONE ? r->preset : cfg->preset;
  int64_t mt = cfg->max_tokens;
  double t = cfg->temperature;
  if (p == LLM_PRESET_SANTAI) {
    mt = cfg->santai_max_tokens;
    t = cfg->santai_temperature;
  } else if (p == LLM_PRESET_PIKIRAN) {
    mt = cfg->pikiran_max_tokens;
    t = cfg->pikiran_temperature;
  }
  if (r->max_tokens > 0)
    mt = r->max_tokens;
  if (r->temperature >= 0)
    t = r->temperature;
  *max_tokens = mt;
  *temperature = t;
  if (preset)
    *preset = p;
}

/* ---- the parse sink ------------------------------------------------------------ */

void llm_out_reset(llm_out_t *o) {
  llm_text_fn fn = o->on_text;
  void *ud = o->ud;
  memset(o, 0, sizeof *o);
  o->on_text = fn;
  o->ud = ud;
  o->input_tokens = o->output_tokens = -1;
}

int llm_out_text(llm_out_t *o, const char *s, size_t n) {
  if (!n)
    return 0;
  o->texts++;
  o->text_bytes += n;
  if (!o->on_text)
    return 0;
  int rc = o->on_text(o->ud, s, n);
  if (rc && !o->err)
    o->err = rc; /* the callback has filled errmsg via llm_out_error */
  return rc;
}

int llm_out_error(llm_out_t *o, int code, int retryable, const char *fmt,
                  ...) {
  if (o->err)
    return code;
  char tmp[sizeof o->errmsg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  llm_printable(tmp, strlen(tmp), o->errmsg, sizeof o->errmsg);
  o->err = code;
  o->err_retryable = retryable;
  return code;
}

void llm_out_model(llm_out_t *o, const char *s, size_t n) {
  llm_printable(s, n, o->model, sizeof o->model);
}

void llm_out_finish(llm_out_t *o, const char *s, size_t n) {
  llm_printable(s, n, o->finish, sizeof o->finish);
}

/* ---- JSON and msgpack ----------------------------------------------------------- */

int llm_json(const char *s, size_t len, char **mp, size_t *mplen, char *err,
             size_t errlen) {
  jiwa_json_limits_t lim = {.max_input = 64u << 20,
                            .max_depth = 32,
                            .max_string = 8u << 20,
                            .max_items = 1000000};
  jiwa_json_error_t je;
  int rc = jiwa_json_to_mp(s, len, &lim, mp, mplen, &je);
  if (rc && err && errlen)
    snprintf(err, errlen, "line %u col %u: %s", je.line, je.column, je.msg);
  return rc;
}

int llm_mp_path(const void *buf, size_t len, const char *path,
                jiwa_mp_reader_t *at) {
  jiwa_mp_reader_t cur;
  jiwa_mp_reader_init(&cur, buf, len);
  const char *seg = path;
  while (*seg) {
    const char *dot = strchr(seg, '.');
    size_t sl = dot ? (size_t)(dot - seg) : strlen(seg);
    char key[64];
    if (sl == 0 || sl >= sizeof key)
      return JIWA_EINVAL;
    memcpy(key, seg, sl);
    key[sl] = '\0';
    jiwa_mp_reader_t peek = cur;
    jiwa_mp_item_t it;
    int rc = jiwa_mp_next(&peek, &it);
    if (rc)
      return rc;
    if (it.type == JIWA_MP_MAP) {
      jiwa_mp_reader_t v;
      rc = jiwa_mp_map_find(cur.p, jiwa_mp_reader_left(&cur), key, &v);
      if (rc == JIWA_EINVAL)
        return JIWA_ENOENT;
      if (rc)
        return rc;
      cur = v;
    } else if (it.type == JIWA_MP_ARRAY) {
      char *end;
      unsigned long idx = strtoul(key, &end, 10);
      if (*end || !isdigit((unsigned char)key[0]) || idx >= it.v.count)
        return JIWA_ENOENT;
      cur = peek;
      for (unsigned long i = 0; i < idx; i++)
        if ((rc = jiwa_mp_skip(&cur)))
          return rc;
    } else {
      return JIWA_ENOENT;
    }
    seg = dot ? dot + 1 : seg + sl;
  }
  if (at)
    *at = cur;
  return 0;
}

int llm_mp_str(const void *buf, size_t len, const char *path, const char **s,
               size_t *n) {
  jiwa_mp_reader_t at;
  int rc = llm_mp_path(buf, len, path, &at);
  if (rc)
    return rc;
  jiwa_mp_item_t it;
  if ((rc = jiwa_mp_next(&at, &it)))
    return rc;
  if (it.type != JIWA_MP_STR)
    return JIWA_EINVAL;
  *s = it.v.s.ptr;
  *n = it.v.s.len;
  return 0;
}

int llm_mp_int(const void *buf, size_t len, const char *path, int64_t *out) {
  jiwa_mp_reader_t at;
  int rc = llm_mp_path(buf, len, path, &at);
  if (rc)
    return rc;
  jiwa_mp_item_t it;
  if ((rc = jiwa_mp_next(&at, &it)))
    return rc;
  switch (it.type) {
  case JIWA_MP_INT:
    *out = it.v.i;
    return 0;
  case JIWA_MP_UINT:
    if (it.v.u > (uint64_t)INT64_MAX)
      return JIWA_EINVAL;
    *out = (int64_t)it.v.u;
    return 0;
  case JIWA_MP_FLOAT:
    if (!(it.v.f >= -9e18 && it.v.f <= 9e18) || it.v.f != floor(it.v.f))
      return JIWA_EINVAL;
    *out = (int64_t)it.v.f;
    return 0;
  default:
    return JIWA_EINVAL;
  }
}

int llm_mp_type(const void *buf, size_t len, const char *path) {
  jiwa_mp_reader_t at;
  int rc = llm_mp_path(buf, len, path, &at);
  if (rc)
    return rc;
  jiwa_mp_item_t it;
  if ((rc = jiwa_mp_next(&at, &it)))
    return rc;
  return (int)it.type;
}

void llm_printable(const char *s, size_t n, char *out, size_t cap) {
  if (!cap)
    return;
  size_t k = 0;
  for (size_t i = 0; i < n && k + 1 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    out[k++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
  }
  /* never end inside a UTF-8 sequence cut by the bound */
  if (k < n) {
    size_t j = k;
    while (j > 0 && k - j < 3 && ((unsigned char)out[j - 1] & 0xC0) == 0x80)
      j--;
    if (j > 0) {
      unsigned char lead = (unsigned char)out[j - 1];
      size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      if (need > 1 && k - (j - 1) < need)
        k = j - 1;
    }
  }
  out[k] = '\0';
}

void llm_error_text(const char *body, size_t len, char *out, size_t cap) {
  if (!cap)
    return;
  out[0] = '\0';
  if (!body || !len)
    return;
  char *mp = NULL;
  size_t mplen = 0;
  if (llm_json(body, len, &mp, &mplen, NULL, 0) == 0) {
    static const char *paths[] = {"error.message", "error", "message",
                                  "detail", "error.type"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
      const char *s;
      size_t n;
      if (llm_mp_str(mp, mplen, paths[i], &s, &n) == 0 && n) {
        llm_printable(s, n, out, cap);
        free(mp);
        return;
      }
    }
    free(mp);
  }
  llm_printable(body, len < 200 ? len : 200, out, cap);
}

void llm_scrub(char *text, size_t cap, const char *secret) {
  static const char red[] = "[redacted]";
  size_t sl = secret ? strlen(secret) : 0;
  if (sl < 4 || !text)
    return;
  char *p = text;
  while ((p = strstr(p, secret)) != NULL) {
    size_t tail = strlen(p + sl);
    size_t rl = sizeof red - 1;
    size_t pos = (size_t)(p - text);
    if (pos + rl + tail + 1 > cap)
      tail = cap > pos + rl + 1 ? cap - pos - rl - 1 : 0;
    if (pos + rl + 1 > cap) { /* no room for the marker: cut here */
      *p = '\0';
      return;
    }
    memmove(p + rl, p + sl, tail);
    memcpy(p, red, rl);
    p[rl + tail] = '\0';
    p += rl;
  }
}

/* ---- retries --------------------------------------------------------------------- */

int llm_status_retryable(int status) {
  return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

uint64_t llm_rand(uint64_t *state) {
  uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

uint32_t llm_backoff_ms(unsigned failures, uint32_t base_ms, uint32_t max_ms,
                        uint64_t *rng) {
  if (failures < 1)
    failures = 1;
  uint64_t cap = base_ms;
  for (unsigned i = 1; i < failures && cap < max_ms; i++)
    cap *= 2;
  if (cap > max_ms)
    cap = max_ms;
  return (uint32_t)(llm_rand(rng) % (cap + 1));
}

/* ---- circuit breaker ---------------------------------------------------------------- */

void llm_breaker_init(llm_breaker_t *b, uint32_t threshold, uint64_t base_ms,
                      uint64_t max_ms) {
  memset(b, 0, sizeof *b);
  b->threshold = threshold;
  b->base_ms = base_ms ? base_ms : 1;
  b->max_ms = max_ms < b->base_ms ? b->base_ms : max_ms;
  b->window_ms = b->base_ms;
}

static void br_open(llm_breaker_t *b, uint64_t now) {
  b->state = LLM_BR_OPEN;
  b->open_until = now + b->window_ms;
  b->opened++;
}

int llm_breaker_admit(llm_breaker_t *b, uint64_t now, uint64_t *until) {
  if (until)
    *until = 0;
  switch (b->state) {
  case LLM_BR_CLOSED:
    return 0;
  case LLM_BR_OPEN:
    if (now < b->open_until) {
      if (until)
        *until = b->open_until;
      b->refused++;
      return JIWA_EDOWN;
    }
    /* the first request after the window is the probe */
    b->state = LLM_BR_HALF_OPEN;
    /* fall through */
  case LLM_BR_HALF_OPEN:
  default:
    if (b->probing) {
      if (until)
        *until = now;
      b->refused++;
      return JIWA_EDOWN;
    }
    b->probing = 1;
    b->probes++;
    return 1;
  }
}

void llm_breaker_record(llm_breaker_t *b, uint64_t now, int probe,
                        llm_br_verdict_t v) {
  if (probe) {
    b->probing = 0;
    if (v == LLM_BR_FAIL) {
      b->window_ms = b->window_ms * 2 > b->max_ms ? b->max_ms : b->window_ms * 2;
      br_open(b, now);
    } else if (v == LLM_BR_ABANDONED) {
      b->state = LLM_BR_HALF_OPEN; /* no verdict: the next request probes */
    } else {
      b->state = LLM_BR_CLOSED;
      b->fails = 0;
      b->window_ms = b->base_ms;
    }
    return;
  }
  switch (v) {
  case LLM_BR_OK:
  case LLM_BR_NEUTRAL:
    /* An answer from a request admitted before the breaker opened proves
     * the upstream is back; a probe in flight still reports its own. */
    if (b->state != LLM_BR_CLOSED && !b->probing) {
      b->state = LLM_BR_CLOSED;
      b->window_ms = b->base_ms;
    }
    if (b->state == LLM_BR_CLOSED)
      b->fails = 0;
    break;
  case LLM_BR_FAIL:
    if (b->state != LLM_BR_CLOSED)
      break; /* already open: a late failure changes nothing */
    b->fails++;
    if (b->threshold && b->fails >= b->threshold)
      br_open(b, now);
    break;
  case LLM_BR_ABANDONED:
    break;
  }
}

const char *llm_breaker_state_name(llm_br_state_t s) {
  switch (s) {
  case LLM_BR_OPEN:
    return "open";
  case LLM_BR_HALF_OPEN:
    return "half-open";
  default:
    return "closed";
  }
}

/* ---- request bodies ------------------------------------------------------------------- */

void llm_pack_messages(msgpack_packer *pk, const llm_req_t *r,
                       const char *lead_system) {
  size_t n = 0;
  for (size_t i = 0; i < r->nmsgs; i++)
    if (!llm_eq(r->msgs[i].role.p, r->msgs[i].role.n, "system"))
      n++;
  int lead = lead_system && *lead_system;
  msgpack_pack_array(pk, n + (size_t)lead);
  if (lead) {
    msgpack_pack_map(pk, 2);
    jiwa_mp_put_kv_str(pk, "role", "system");
    jiwa_mp_put_kv_str(pk, "content", lead_system);
  }
  for (size_t i = 0; i < r->nmsgs; i++) {
    const llm_msg_t *m = &r->msgs[i];
    if (llm_eq(m->role.p, m->role.n, "system"))
      continue;
    msgpack_pack_map(pk, 2);
    jiwa_mp_put_str(pk, "role");
    msgpack_pack_str(pk, m->role.n);
    msgpack_pack_str_body(pk, m->role.p, m->role.n);
    jiwa_mp_put_str(pk, "content");
    msgpack_pack_str(pk, m->content.n);
    msgpack_pack_str_body(pk, m->content.p, m->content.n);
  }
}

int llm_writer_json(const jiwa_mp_writer_t *w, char **json, size_t *len) {
  return jiwa_mp_to_json(w->sbuf.data, w->sbuf.size, json, len);
}
