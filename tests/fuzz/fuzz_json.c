/*
 * Fuzz target for jiwa_mp_to_json (tools/jiwa/client.c), which renders
 * daemon answers for `jiwa --json`.
 *
 * Beyond "does not crash": the verdict must match jiwa_mp_scan's, and any
 * output must be one well-formed JSON value (a small checker walks strings,
 * escapes and brackets), valid UTF-8 without raw control characters, of
 * the length reported and linear in the input. Any breach aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/client.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_json: invariant failed at line %d: %s\n",          \
              __LINE__, #cond);                                                \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static const char *value(const char *p, unsigned depth);

static const char *string(const char *p) {
  if (*p++ != '"')
    return NULL;
  for (;;) {
    unsigned char c = (unsigned char)*p;
    if (c == '"')
      return p + 1;
    if (c < 0x20 || c == 0x7f) /* includes the NUL at the end */
      return NULL;
    if (c == '\\') {
      p++;
      if (*p == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!p[i] || !strchr("0123456789abcdef", p[i]))
            return NULL;
        p += 5;
        continue;
      }
      if (!*p || !strchr("\"\\bfnrt", *p))
        return NULL;
    }
    p++;
  }
}

static const char *number(const char *p) {
  const char *s = p;
  if (*p == '-')
    p++;
  if (*p < '0' || *p > '9')
    return NULL;
  while (*p >= '0' && *p <= '9')
    p++;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9')
      return NULL;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    if (*p < '0' || *p > '9')
      return NULL;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  return p > s ? p : NULL;
}

static const char *value(const char *p, unsigned depth) {
  /* The renderer emits no whitespace, so none is accepted. */
  if (*p == '[' || *p == '{') {
    CHECK(depth < JIWA_MP_MAX_DEPTH); /* never deeper than the input */
    char close = *p == '[' ? ']' : '}';
    int obj = *p == '{';
    p++;
    if (*p == close)
      return p + 1;
    for (;;) {
      if (obj) {
        p = string(p);
        if (!p || *p++ != ':')
          return NULL;
      }
      p = value(p, depth + 1);
      if (!p)
        return NULL;
      if (*p == close)
        return p + 1;
      if (*p++ != ',')
        return NULL;
    }
  }
  if (*p == '"')
    return string(p);
  if (!strncmp(p, "null", 4) || !strncmp(p, "true", 4))
    return p + 4;
  if (!strncmp(p, "false", 5))
    return p + 5;
  return number(p);
}

static int valid_utf8(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned char b = s[i];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;
    if (b < 0x80) {
      i++;
      continue;
    }
    if (b >= 0xc2 && b <= 0xdf)
      need = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 3;
      lo = b == 0xe0 ? 0xa0 : 0x80;
      hi = b == 0xed ? 0x9f : 0xbf;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 4;
      lo = b == 0xf0 ? 0x90 : 0x80;
      hi = b == 0xf4 ? 0x8f : 0xbf;
    } else
      return 0;
    if (n - i < need || s[i + 1] < lo || s[i + 1] > hi)
      return 0;
    for (size_t k = 2; k < need; k++)
      if (s[i + k] < 0x80 || s[i + k] > 0xbf)
        return 0;
    i += need;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t used = 0;
  int scan = jiwa_mp_scan(data, size, JIWA_MP_MAX_DEPTH, &used);
  int want = scan ? scan : used != size ? JIWA_EPROTO : 0;

  char *js = (char *)"sentinel";
  size_t n = (size_t)-1;
  int rc = jiwa_mp_to_json(size ? data : NULL, size, &js, &n);
  if (rc == JIWA_ENOMEM)
    return 0;
  CHECK(rc == want);
  if (rc) {
    CHECK(js == NULL && n == 0);
    return 0;
  }
  CHECK(js != NULL);
  CHECK(strlen(js) == n);
  /* \ufffd (6) per invalid byte is the worst per-byte cost; placeholders
   * for container keys ("<array>") cost 9 for a 1-byte key. */
  CHECK(n <= 9 * size + 16);
  const char *end = value(js, 0);
  CHECK(end != NULL && *end == '\0');
  CHECK(valid_utf8((const unsigned char *)js, n));
  free(js);
  return 0;
}
