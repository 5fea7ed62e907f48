/*
 * The classifier's validator of model output (classify_parse.h).
 */
#include "classify_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa/json.h"
#include "jiwa/mp.h"

static const char *const PRIORITIES[] = {"low", "medium", "high", "urgent"};
static const char *const ACTIONS[] = {"none", "informational", "follow_up",
                                      "action_required"};

static void say(char *why, size_t cap, const char *fmt, ...) {
  if (!why || !cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, cap, fmt, ap);
  va_end(ap);
}

int cls_normalise(const char *s, size_t n, char *out, size_t cap) {
  while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
    s++, n--;
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
               s[n - 1] == '\r'))
    n--;
  if (n == 0 || cap == 0 || n > cap - 1)
    return -1;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch >= 'A' && ch <= 'Z')
      ch = (char)(ch - 'A' + 'a');
    else if (ch == ' ' || ch == '-')
      ch = '_';
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
      return -1;
    if (ch == '_' && k > 0 && out[k - 1] == '_')
      continue; /* "follow - up" */
    out[k++] = ch;
  }
  out[k] = 0;
  return (int)k;
}

/* Quote at most 40 bytes of a value, printable ASCII only. */
static void quote(const char *s, size_t n, char *out, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < n && i < 40 && k + 2 < cap; i++)
    out[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  out[k] = 0;
}

static int check_field(const void *mp, size_t len, const char *key,
                       const char *const *allowed, size_t nallowed, char *dst,
                       size_t cap, char *why, size_t whylen) {
  const char *s;
  size_t n;
  int rc = jiwa_mp_get_str(mp, len, key, &s, &n);
  if (rc == JIWA_ENOENT) {
    say(why, whylen, "field '%s' is missing", key);
    return JIWA_EINVAL;
  }
  if (rc) {
    say(why, whylen, "field '%s' must be a string", key);
    return JIWA_EINVAL;
  }
  char q[48];
  quote(s, n, q, sizeof q);
  if (cls_normalise(s, n, dst, cap) < 0) {
    say(why, whylen, "field '%s': '%s' is not a short word or phrase", key, q);
    return JIWA_EINVAL;
  }
  if (nallowed == 0)
    return 0;
  for (size_t i = 0; i < nallowed; i++)
    if (strcmp(allowed[i], dst) == 0)
      return 0;
  char list[400];
  size_t k = 0;
  for (size_t i = 0; i < nallowed && k + 2 < sizeof list; i++)
    k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "",
                          allowed[i]);
  say(why, whylen, "field '%s': '%s' is not one of %s", key, q, list);
  dst[0] = 0;
  return JIWA_EINVAL;
}

/* Where the object is: inside a ``` fence if there is one, else from the
 * first '{' to the last '}'. */
static int locate(const char *t, size_t n, size_t *b, size_t *e) {
  const char *f = NULL;
  for (size_t i = 0; i + 3 <= n; i++)
    if (t[i] == '`' && t[i + 1] == '`' && t[i + 2] == '`') {
      f = t + i;
      break;
    }
  size_t lo = 0, hi = n;
  if (f) {
    size_t s = (size_t)(f - t) + 3;
    while (s < n && t[s] != '\n' && t[s] != '{') /* ```json */
      s++;
    size_t end = n;
    for (size_t i = s; i + 3 <= n; i++)
      if (t[i] == '`' && t[i + 1] == '`' && t[i + 2] == '`') {
        end = i;
        break;
      }
    lo = s;
    hi = end;
  }
  size_t open = hi, close = lo;
  for (size_t i = lo; i < hi; i++)
    if (t[i] == '{') {
      open = i;
      break;
    }
  for (size_t i = hi; i > lo; i--)
    if (t[i - 1] == '}') {
      close = i;
      break;
    }
  if (open >= hi || close <= open)
    return -1;
  *b = open;
  *e = close;
  return 0;
}

int cls_parse(const char *text, size_t len, const cls_rules_t *rules,
              cls_result_t *out, char *why, size_t whylen) {
  if (why && whylen)
    why[0] = 0;
  if (out)
    memset(out, 0, sizeof *out);
  if (!out || (!text && len)) {
    say(why, whylen, "no answer");
    return JIWA_EINVAL;
  }
  if (len > CLS_INPUT_MAX)
    len = CLS_INPUT_MAX;
  size_t b, e;
  if (len == 0 || locate(text, len, &b, &e)) {
    say(why, whylen, "no JSON object in the answer");
    return JIWA_EPROTO;
  }
  jiwa_json_limits_t lim = {.max_input = CLS_INPUT_MAX,
                            .max_depth = 4,
                            .max_string = 4096,
                            .max_items = 64};
  char *mp = NULL;
  size_t mlen = 0;
  jiwa_json_error_t je;
  int rc = jiwa_json_to_mp(text + b, e - b, &lim, &mp, &mlen, &je);
  if (rc) {
    say(why, whylen, "the JSON object does not parse: %s (column %u)", je.msg,
        je.column);
    return JIWA_EPROTO;
  }
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, mp, mlen);
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_MAP) {
    free(mp);
    say(why, whylen, "the answer is not a JSON object");
    return JIWA_EPROTO;
  }
  cls_rules_t none = {0};
  if (!rules)
    rules = &none;
  rc = check_field(mp, mlen, "topic", rules->topics, rules->ntopics, out->topic,
                   sizeof out->topic, why, whylen);
  if (!rc)
    rc = check_field(mp, mlen, "priority", PRIORITIES, 4, out->priority,
                     sizeof out->priority, why, whylen);
  if (!rc)
    rc = check_field(mp, mlen, "audience", rules->audiences, rules->naudiences,
                     out->audience, sizeof out->audience, why, whylen);
  if (!rc)
    rc = check_field(mp, mlen, "actionability", ACTIONS, 4, out->actionability,
                     sizeof out->actionability, why, whylen);
  free(mp);
  if (rc)
    memset(out, 0, sizeof *out);
  return rc;
}
