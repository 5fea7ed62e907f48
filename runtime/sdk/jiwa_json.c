/*
 * JSON <-> msgpack (include/jiwa/json.h).
 *
 * jiwa_json_to_mp reads untrusted text, so it follows the SDK's rules for
 * outside bytes: nothing recurses (containers live on an explicit stack
 * bounded by max_depth), every limit is checked before the part that
 * breaks it is stored, and the output is a small constant times the input.
 *
 * Containers are written with a one-byte placeholder header; when one
 * closes and its count needs a 3- or 5-byte header, its body is moved up.
 * Strings are read twice: a first pass validates them and measures the
 * decoded length (so the header is right and max_string is checked before
 * a byte is stored), a second one decodes straight into the output.
 *
 * Numbers are chosen so that JSON -> msgpack -> JSON -> msgpack gives the
 * same bytes: jiwa_mp_to_json prints an integral double such as 1.0 as
 * "1", so the parser turns every number whose value jiwa_mp_to_json would
 * print as a plain integer into an integer, and keeps doubles only for
 * values it prints with a fraction or an exponent (and for -0).
 *
 * jiwa_mp_to_json moved here from tools/jiwa/client.c unchanged.
 */
#include "jiwa/json.h"

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/mp.h"

#define DEF_MAX_INPUT ((size_t)16 << 20)
#define DEF_MAX_DEPTH 32u
#define DEF_MAX_STRING ((size_t)4 << 20)
#define DEF_MAX_ITEMS ((size_t)1000000)

/*
 * Length of the valid UTF-8 sequence at @p s (1..4), or 0 if the bytes there
 * are not one: overlong forms, surrogates and code points above U+10FFFF are
 * refused, as RFC 3629 says. Exported (jiwa/json.h): the client library and
 * every other reader of UTF-8 use this one.
 */
size_t jiwa_utf8_len(const void *p, size_t n) {
  const uint8_t *s = p;
  uint8_t b = s[0];
  if (b < 0x80)
    return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) {
    need = 2;
  } else if (b >= 0xe0 && b <= 0xef) {
    need = 3;
    if (b == 0xe0)
      lo = 0xa0; /* overlong */
    else if (b == 0xed)
      hi = 0x9f; /* surrogates */
  } else if (b >= 0xf0 && b <= 0xf4) {
    need = 4;
    if (b == 0xf0)
      lo = 0x90; /* overlong */
    else if (b == 0xf4)
      hi = 0x8f; /* above U+10FFFF */
  } else {
    return 0;
  }
  if (n < need || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < need; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return need;
}

static size_t utf8_len(const uint8_t *s, size_t n) { return jiwa_utf8_len(s, n); }

/*
 * The shortest of 15..17 significant digits that reads back as the same
 * double: exact, without printing 0.1 as 0.10000000000000001. Shared by
 * the renderer and by the parser's choice between integer and double.
 */
static void format_double(double f, char *buf, size_t cap) {
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, cap, "%.*g", prec, f);
    if (strtod(buf, NULL) == f)
      break;
  }
  /* A locale with a decimal comma must not leak into JSON. */
  for (char *p = buf; *p; p++)
    if (*p == ',')
      *p = '.';
}

/* ==== JSON -> msgpack ==================================================== */

typedef struct {
  size_t start;   /* offset of the placeholder header in the output */
  uint32_t count; /* elements or members so far */
  int map;
} level_t;

typedef struct {
  const uint8_t *s;
  size_t len;
  size_t pos;
  jiwa_json_limits_t lim;
  jiwa_json_error_t *err;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  level_t *stack;
  unsigned depth, cap;
} parser_t;

/* 1-based line and byte column of offset @p off. */
static void line_col(const parser_t *p, size_t off, unsigned *line,
                     unsigned *col) {
  unsigned ln = 1;
  size_t bol = 0; /* offset of the first byte of the line */
  for (const uint8_t *q = p->s, *e = p->s + off;
       q < e && (q = memchr(q, '\n', (size_t)(e - q))) != NULL; q++) {
    if (ln < UINT32_MAX)
      ln++;
    bol = (size_t)(q - p->s) + 1;
  }
  *line = ln;
  *col = off - bol + 1 > UINT32_MAX ? UINT32_MAX : (unsigned)(off - bol + 1);
}

/* Record where and why; returns @p rc so callers can `return fail(...)`. */
__attribute__((format(printf, 4, 5))) static int
fail(parser_t *p, int rc, size_t off, const char *fmt, ...) {
  jiwa_json_error_t *e = p->err;
  if (!e)
    return rc;
  if (off > p->len)
    off = p->len;
  e->offset = off;
  line_col(p, off, &e->line, &e->column);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return rc;
}

/* "'x'", "byte 0xc3" or "the end of the input", for messages: never an
 * unprintable input byte. */
static const char *found(const parser_t *p, size_t off, char buf[24]) {
  if (off >= p->len)
    return "the end of the input";
  uint8_t c = p->s[off];
  if (c > 0x20 && c < 0x7f)
    snprintf(buf, 24, "'%c'", c);
  else if (c == ' ')
    snprintf(buf, 24, "a space");
  else
    snprintf(buf, 24, "byte 0x%02x", c);
  return buf;
}

static void skip_ws(parser_t *p) {
  while (p->pos < p->len) {
    uint8_t c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      return;
    p->pos++;
  }
}

static int oom(parser_t *p) {
  return fail(p, JIWA_ENOMEM, p->pos, "out of memory");
}

/* ---- containers ---------------------------------------------------------- */

static int open_container(parser_t *p, int map) {
  if (p->depth >= p->lim.max_depth)
    return fail(p, JIWA_ETOOBIG, p->pos, "nesting deeper than %u",
                p->lim.max_depth);
  if (p->depth == p->cap) {
    unsigned cap = p->cap ? p->cap * 2 : 8;
    if (cap > p->lim.max_depth || cap < p->cap)
      cap = p->lim.max_depth;
    level_t *st = realloc(p->stack, (size_t)cap * sizeof *st);
    if (!st)
      return oom(p);
    p->stack = st;
    p->cap = cap;
  }
  level_t *l = &p->stack[p->depth++];
  l->start = p->sb.size;
  l->count = 0;
  l->map = map;
  p->pos++;
  static const char placeholder = (char)0xc0;
  if (msgpack_sbuffer_write(&p->sb, &placeholder, 1))
    return oom(p);
  return 0;
}

/* Write the real header over the placeholder, moving the body up if the
 * count needs a longer one. */
static int close_container(parser_t *p) {
  level_t *l = &p->stack[--p->depth];
  uint32_t n = l->count;
  uint8_t hdr[5];
  size_t h;
  if (n <= 15) {
    hdr[0] = (uint8_t)((l->map ? 0x80 : 0x90) | n);
    h = 1;
  } else if (n <= 0xffff) {
    hdr[0] = l->map ? 0xde : 0xdc;
    hdr[1] = (uint8_t)(n >> 8);
    hdr[2] = (uint8_t)n;
    h = 3;
  } else {
    hdr[0] = l->map ? 0xdf : 0xdd;
    hdr[1] = (uint8_t)(n >> 24);
    hdr[2] = (uint8_t)(n >> 16);
    hdr[3] = (uint8_t)(n >> 8);
    hdr[4] = (uint8_t)n;
    h = 5;
  }
  if (h > 1) {
    size_t body = p->sb.size - l->start - 1;
    if (msgpack_sbuffer_write(&p->sb, (const char *)hdr, h - 1))
      return oom(p);
    memmove(p->sb.data + l->start + h, p->sb.data + l->start + 1, body);
  }
  memcpy(p->sb.data + l->start, hdr, h);
  p->pos++;
  return 0;
}

/* Before element count+1 of the innermost container. */
static int room_for_one_more(parser_t *p) {
  const level_t *l = &p->stack[p->depth - 1];
  if (l->count >= p->lim.max_items)
    return fail(p, JIWA_ETOOBIG, p->pos, "more than %zu %s", p->lim.max_items,
                l->map ? "members in an object" : "elements in an array");
  return 0;
}

/* ---- strings ------------------------------------------------------------- */

static int hex_digit(uint8_t c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* The value of 4 hex digits at @p s, or -1. */
static int hex4(const uint8_t *s) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(s[i]);
    if (d < 0)
      return -1;
    v = v << 4 | d;
  }
  return v;
}

static size_t utf8_put(uint32_t cp, uint8_t *o) {
  if (cp < 0x80) {
    o[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (uint8_t)(0xc0 | cp >> 6);
    o[1] = (uint8_t)(0x80 | (cp & 63));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (uint8_t)(0xe0 | cp >> 12);
    o[1] = (uint8_t)(0x80 | (cp >> 6 & 63));
    o[2] = (uint8_t)(0x80 | (cp & 63));
    return 3;
  }
  o[0] = (uint8_t)(0xf0 | cp >> 18);
  o[1] = (uint8_t)(0x80 | (cp >> 12 & 63));
  o[2] = (uint8_t)(0x80 | (cp >> 6 & 63));
  o[3] = (uint8_t)(0x80 | (cp & 63));
  return 4;
}

/*
 * The escape at s[i] ('\\' already seen, i + 1 < len): its code point and
 * how many input bytes it takes, or an error (1 if the input ends inside
 * it: the caller reports an unterminated string). Surrogate pairs are
 * joined.
 */
static int escape(parser_t *p, size_t i, uint32_t *cp, size_t *used) {
  const uint8_t *s = p->s;
  char fb[24];
  uint8_t e = s[i + 1];
  *used = 2;
  switch (e) {
  case '"':
  case '\\':
  case '/':
    *cp = e;
    return 0;
  case 'b':
    *cp = '\b';
    return 0;
  case 'f':
    *cp = '\f';
    return 0;
  case 'n':
    *cp = '\n';
    return 0;
  case 'r':
    *cp = '\r';
    return 0;
  case 't':
    *cp = '\t';
    return 0;
  case 'u':
    break;
  default:
    return fail(p, JIWA_EPROTO, i,
                "invalid escape: backslash followed by %s (valid: \\\" \\\\ "
                "\\/ \\b \\f \\n \\r \\t \\uXXXX)",
                found(p, i + 1, fb));
  }
  for (size_t k = i + 2; k < i + 6; k++)
    if (k >= p->len)
      return 1; /* the input ends inside the escape */
    else if (hex_digit(s[k]) < 0)
      return fail(p, JIWA_EPROTO, k,
                  "expected 4 hex digits after \\u, found %s", found(p, k, fb));
  int u = hex4(s + i + 2);
  *used = 6;
  if (u >= 0xdc00 && u <= 0xdfff)
    return fail(p, JIWA_EPROTO, i,
                "unpaired low surrogate \\u%04x (it must follow a high "
                "surrogate \\ud800-\\udbff)",
                (unsigned)u);
  if (u >= 0xd800 && u <= 0xdbff) {
    int lo = -1;
    if (i + 12 <= p->len && s[i + 6] == '\\' && s[i + 7] == 'u')
      lo = hex4(s + i + 8);
    if (lo < 0xdc00 || lo > 0xdfff)
      return fail(p, JIWA_EPROTO, i,
                  "unpaired high surrogate \\u%04x (it must be followed by a "
                  "low surrogate \\udc00-\\udfff)",
                  (unsigned)u);
    *cp = 0x10000 + (((uint32_t)u - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
    *used = 12;
    return 0;
  }
  *cp = (uint32_t)u;
  return 0;
}

/* First pass: from the opening quote at p->pos, validate the string and
 * find its end (just past the closing quote) and decoded length. */
static int scan_string(parser_t *p, size_t *end, size_t *dlen) {
  const uint8_t *s = p->s;
  size_t open = p->pos, i = open + 1, n = 0;
  for (;;) {
    if (i >= p->len) {
      /* Where it started is what the reader needs to find the bug. */
      unsigned line, col;
      line_col(p, open, &line, &col);
      return fail(p, JIWA_EPROTO, p->len,
                  "unterminated string (it starts at line %u, column %u)", line,
                  col);
    }
    uint8_t c = s[i];
    size_t k;
    if (c == '"') {
      break;
    } else if (c == '\\') {
      if (i + 1 >= p->len) {
        i = p->len;
        continue;
      }
      uint32_t cp;
      int rc = escape(p, i, &cp, &k);
      if (rc > 0) {
        i = p->len;
        continue;
      }
      if (rc)
        return rc;
      n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    } else if (c < 0x20) {
      return fail(p, JIWA_EPROTO, i,
                  "control character 0x%02x inside a string (escape it as "
                  "\\u%04x)",
                  c, c);
    } else if (c < 0x80) {
      n++;
      k = 1;
    } else {
      k = utf8_len(s + i, p->len - i);
      if (!k)
        return fail(p, JIWA_EPROTO, i,
                    "invalid UTF-8 in a string (byte 0x%02x)", c);
      n += k;
    }
    if (n > p->lim.max_string)
      return fail(p, JIWA_ETOOBIG, open, "string longer than %zu bytes",
                  p->lim.max_string);
    i += k;
  }
  *end = i + 1;
  *dlen = n;
  return 0;
}

/* Second pass: decode the validated string into the output. */
static int emit_string(parser_t *p, size_t end, size_t dlen) {
  const uint8_t *s = p->s;
  if (msgpack_pack_str(&p->pk, dlen))
    return oom(p);
  size_t i = p->pos + 1, run = i, last = end - 1;
  while (i < last) {
    if (s[i] != '\\') {
      i++;
      continue;
    }
    if (i > run && msgpack_pack_str_body(&p->pk, s + run, i - run))
      return oom(p);
    uint32_t cp;
    size_t k;
    (void)escape(p, i, &cp, &k); /* validated by scan_string */
    uint8_t u[4];
    if (msgpack_pack_str_body(&p->pk, u, utf8_put(cp, u)))
      return oom(p);
    i += k;
    run = i;
  }
  if (last > run && msgpack_pack_str_body(&p->pk, s + run, last - run))
    return oom(p);
  p->pos = end;
  return 0;
}

static int string(parser_t *p) {
  size_t end, dlen;
  int rc = scan_string(p, &end, &dlen);
  return rc ? rc : emit_string(p, end, dlen);
}

/* ---- numbers ------------------------------------------------------------- */

/* strtod in the "C" locale whatever the process's LC_NUMERIC: created once,
 * kept for the life of the process. */
static locale_t c_locale(void) {
  static locale_t loc;
  locale_t l = __atomic_load_n(&loc, __ATOMIC_ACQUIRE);
  if (l)
    return l;
  l = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  if (!l)
    return (locale_t)0;
  locale_t none = (locale_t)0;
  if (!__atomic_compare_exchange_n(&loc, &none, l, 0, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {
    freelocale(l);
    return none;
  }
  return l;
}

static int pack_double_or_int(parser_t *p, double d) {
  /* An integral value that jiwa_mp_to_json would print without a fraction
   * or exponent becomes an integer, so it reads back the same; -0 stays a
   * double so its sign survives. */
  if (d > -1e17 && d < 1e17 && d == (double)(int64_t)d &&
      !(d == 0 && signbit(d))) {
    char buf[40];
    format_double(d, buf, sizeof buf);
    if (!strchr(buf, 'e')) {
      int64_t v = (int64_t)d;
      int rc = v < 0 ? msgpack_pack_int64(&p->pk, v)
                     : msgpack_pack_uint64(&p->pk, (uint64_t)v);
      return rc ? oom(p) : 0;
    }
  }
  return msgpack_pack_double(&p->pk, d) ? oom(p) : 0;
}

static int is_digit(const parser_t *p, size_t i) {
  return i < p->len && p->s[i] >= '0' && p->s[i] <= '9';
}

static int number(parser_t *p) {
  const uint8_t *s = p->s;
  size_t st = p->pos, i = st;
  char fb[24];
  int neg = 0, plain = 1;
  if (s[i] == '-') {
    neg = 1;
    i++;
    if (i < p->len && (s[i] == 'I' || s[i] == 'N'))
      return fail(p, JIWA_EPROTO, st, "NaN and Infinity are not JSON numbers");
    if (!is_digit(p, i))
      return fail(p, JIWA_EPROTO, i, "expected a digit after '-', found %s",
                  found(p, i, fb));
  }
  size_t digits = i;
  if (s[i] == '0') {
    i++;
    if (is_digit(p, i))
      return fail(p, JIWA_EPROTO, i - 1,
                  "leading zeros are not allowed in numbers");
  } else {
    while (is_digit(p, i))
      i++;
  }
  size_t int_end = i;
  if (i < p->len && s[i] == '.') {
    plain = 0;
    i++;
    if (!is_digit(p, i))
      return fail(p, JIWA_EPROTO, i,
                  "expected a digit after the decimal point, found %s",
                  found(p, i, fb));
    while (is_digit(p, i))
      i++;
  }
  if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
    plain = 0;
    i++;
    if (i < p->len && (s[i] == '+' || s[i] == '-'))
      i++;
    if (!is_digit(p, i))
      return fail(p, JIWA_EPROTO, i,
                  "expected a digit in the exponent, found %s",
                  found(p, i, fb));
    while (is_digit(p, i))
      i++;
  }
  int rc;
  if (plain) {
    uint64_t mag = 0;
    int over = 0;
    for (size_t k = digits; k < int_end && !over; k++) {
      unsigned dg = (unsigned)(s[k] - '0');
      if (mag > (UINT64_MAX - dg) / 10)
        over = 1;
      else
        mag = mag * 10 + dg;
    }
    if (!over && !neg) {
      p->pos = i;
      return msgpack_pack_uint64(&p->pk, mag) ? oom(p) : 0;
    }
    if (!over && neg && mag != 0 && mag <= (uint64_t)INT64_MAX + 1) {
      int64_t v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
      p->pos = i;
      return msgpack_pack_int64(&p->pk, v) ? oom(p) : 0;
    }
    /* -0 and integers beyond 64 bits are doubles, below. */
  }
  char small[64], *buf = small;
  size_t n = i - st;
  if (n >= sizeof small) {
    buf = malloc(n + 1);
    if (!buf)
      return oom(p);
  }
  memcpy(buf, s + st, n);
  buf[n] = '\0';
  locale_t loc = c_locale();
  double d = 0;
  if (loc)
    d = strtod_l(buf, NULL, loc);
  if (buf != small)
    free(buf);
  if (!loc)
    return oom(p);
  if (!isfinite(d))
    return fail(p, JIWA_ETOOBIG, st, "number out of the range of a double");
  rc = pack_double_or_int(p, d);
  if (rc == 0)
    p->pos = i;
  return rc;
}

/* ---- values -------------------------------------------------------------- */

static int literal(parser_t *p, const char *word) {
  size_t n = strlen(word);
  for (size_t k = 0; k < n; k++)
    if (p->pos + k >= p->len || p->s[p->pos + k] != (uint8_t)word[k])
      return fail(p, JIWA_EPROTO, p->pos, "invalid literal (expected '%s')",
                  word);
  p->pos += n;
  return 0;
}

/* A scalar at p->pos (whitespace skipped, not '[' or '{'). */
static int scalar(parser_t *p, size_t comma) {
  char fb[24];
  if (p->pos >= p->len)
    return fail(p, JIWA_EPROTO, p->len,
                "unexpected end of the input: expected a value");
  uint8_t c = p->s[p->pos];
  int rc;
  switch (c) {
  case '"':
    return string(p);
  case 't':
    rc = literal(p, "true");
    return rc ? rc : msgpack_pack_true(&p->pk) ? oom(p) : 0;
  case 'f':
    rc = literal(p, "false");
    return rc ? rc : msgpack_pack_false(&p->pk) ? oom(p) : 0;
  case 'n':
    rc = literal(p, "null");
    return rc ? rc : msgpack_pack_nil(&p->pk) ? oom(p) : 0;
  case 'N':
  case 'I':
    return fail(p, JIWA_EPROTO, p->pos,
                "NaN and Infinity are not JSON numbers");
  case '/':
    return fail(p, JIWA_EPROTO, p->pos, "comments are not allowed in JSON");
  case '\'':
    return fail(p, JIWA_EPROTO, p->pos,
                "strings must be in double quotes, not single quotes");
  case ']':
  case '}':
    if (comma != SIZE_MAX)
      return fail(p, JIWA_EPROTO, comma, "trailing comma before '%c'", c);
    break;
  default:
    if (c == '-' || (c >= '0' && c <= '9'))
      return number(p);
  }
  return fail(p, JIWA_EPROTO, p->pos, "expected a value, found %s",
              found(p, p->pos, fb));
}

/* The whole document, iteratively: a value, then what may follow it. */
static int document(parser_t *p) {
  char fb[24];
  int rc;
  size_t comma = SIZE_MAX; /* offset of the ',' just read, for messages */
  skip_ws(p);
  if (p->len >= 3 && p->pos == 0 && !memcmp(p->s, "\xef\xbb\xbf", 3))
    return fail(p, JIWA_EPROTO, 0,
                "byte order mark at the start (JSON text must not have one)");
  if (p->pos >= p->len)
    return fail(p, JIWA_EPROTO, p->len, "empty input: expected a JSON value");
value:
  skip_ws(p);
  if (p->pos < p->len && (p->s[p->pos] == '[' || p->s[p->pos] == '{')) {
    int map = p->s[p->pos] == '{';
    if ((rc = open_container(p, map)))
      return rc;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == (map ? '}' : ']')) {
      if ((rc = close_container(p)))
        return rc;
      goto after;
    }
    comma = SIZE_MAX;
    if ((rc = room_for_one_more(p)))
      return rc;
    if (map)
      goto key;
    goto value;
  }
  if ((rc = scalar(p, comma)))
    return rc;
  goto after;

key:
  if (p->pos >= p->len || p->s[p->pos] != '"') {
    if (comma != SIZE_MAX && p->pos < p->len && p->s[p->pos] == '}')
      return fail(p, JIWA_EPROTO, comma, "trailing comma before '}'");
    if (p->pos < p->len && p->s[p->pos] == '\'')
      return fail(p, JIWA_EPROTO, p->pos,
                  "strings must be in double quotes, not single quotes");
    return fail(p, JIWA_EPROTO, p->pos,
                "expected a string key in double quotes, found %s",
                found(p, p->pos, fb));
  }
  if ((rc = string(p)))
    return rc;
  skip_ws(p);
  if (p->pos >= p->len || p->s[p->pos] != ':')
    return fail(p, JIWA_EPROTO, p->pos,
                "expected ':' after an object key, found %s",
                found(p, p->pos, fb));
  p->pos++;
  comma = SIZE_MAX;
  goto value;

after:
  if (p->depth == 0) {
    skip_ws(p);
    if (p->pos < p->len)
      return fail(p, JIWA_EPROTO, p->pos,
                  "trailing characters after the JSON value: %s",
                  found(p, p->pos, fb));
    return 0;
  }
  {
    level_t *l = &p->stack[p->depth - 1];
    l->count++;
    skip_ws(p);
    uint8_t c = p->pos < p->len ? p->s[p->pos] : 0;
    if (c == ',') {
      comma = p->pos++;
      skip_ws(p);
      if ((rc = room_for_one_more(p)))
        return rc;
      if (l->map)
        goto key;
      goto value;
    }
    if (c == (l->map ? '}' : ']')) {
      if ((rc = close_container(p)))
        return rc;
      goto after;
    }
    if (p->pos >= p->len)
      return fail(p, JIWA_EPROTO, p->len,
                  "unexpected end of the input: %s not closed",
                  l->map ? "an object is" : "an array is");
    return fail(p, JIWA_EPROTO, p->pos,
                l->map ? "expected ',' or '}' after an object member, found %s"
                       : "expected ',' or ']' after an array element, found %s",
                found(p, p->pos, fb));
  }
}

int jiwa_json_to_mp(const char *json, size_t len, const jiwa_json_limits_t *lim,
                    char **out, size_t *outlen, jiwa_json_error_t *err) {
  parser_t p = {0};
  p.s = (const uint8_t *)json;
  p.len = len;
  p.err = err;
  if (err)
    memset(err, 0, sizeof *err);
  if (out)
    *out = NULL;
  if (outlen)
    *outlen = 0;
  if (!json || !out || !outlen) {
    p.len = 0;
    return fail(&p, JIWA_EINVAL, 0, "NULL argument");
  }
  if (lim)
    p.lim = *lim;
  if (!p.lim.max_input)
    p.lim.max_input = DEF_MAX_INPUT;
  if (!p.lim.max_depth)
    p.lim.max_depth = DEF_MAX_DEPTH;
  if (!p.lim.max_string)
    p.lim.max_string = DEF_MAX_STRING;
  if (!p.lim.max_items)
    p.lim.max_items = DEF_MAX_ITEMS;
  /* msgpack counts and lengths are 32-bit. */
  if (p.lim.max_string > UINT32_MAX)
    p.lim.max_string = UINT32_MAX;
  if (p.lim.max_items > UINT32_MAX)
    p.lim.max_items = UINT32_MAX;
  if (len > p.lim.max_input)
    return fail(&p, JIWA_ETOOBIG, p.lim.max_input,
                "input of %zu bytes is over the limit of %zu bytes", len,
                p.lim.max_input);
  msgpack_sbuffer_init(&p.sb);
  msgpack_packer_init(&p.pk, &p.sb, msgpack_sbuffer_write);
  int rc = document(&p);
  free(p.stack);
  if (rc) {
    msgpack_sbuffer_destroy(&p.sb);
    return rc;
  }
  *outlen = p.sb.size;
  *out = msgpack_sbuffer_release(&p.sb);
  return 0;
}

/* ==== msgpack -> JSON ==================================================== */

typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} sbuf_t;

static void sb_put(sbuf_t *b, const void *s, size_t n) {
  if (b->oom)
    return;
  if (b->cap - b->len <= n) { /* keep room for the final NUL */
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= n) {
      if (cap > SIZE_MAX / 2) {
        b->oom = 1;
        return;
      }
      cap *= 2;
    }
    char *np = realloc(b->p, cap);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_puts(sbuf_t *b, const char *s) {
  sb_put(b, s, strlen(s));
}

static void json_string(sbuf_t *b, const char *str, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const uint8_t *s = (const uint8_t *)str;
  sb_put(b, "\"", 1);
  size_t run = 0; /* bytes copied verbatim are flushed in runs */
  for (size_t i = 0; i < n;) {
    uint8_t ch = s[i];
    const char *esc = NULL;
    char u[7];
    size_t k = 1;
    if (ch < 0x80) {
      switch (ch) {
      case '"':
        esc = "\\\"";
        break;
      case '\\':
        esc = "\\\\";
        break;
      case '\b':
        esc = "\\b";
        break;
      case '\f':
        esc = "\\f";
        break;
      case '\n':
        esc = "\\n";
        break;
      case '\r':
        esc = "\\r";
        break;
      case '\t':
        esc = "\\t";
        break;
      default:
        if (ch < 0x20 || ch == 0x7f) {
          u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
          u[4] = hex[ch >> 4], u[5] = hex[ch & 15], u[6] = '\0';
          esc = u;
        }
      }
    } else {
      k = utf8_len(s + i, n - i);
      if (k == 0) {
        esc = "\\ufffd"; /* one replacement per invalid byte */
        k = 1;
      }
    }
    if (esc) {
      sb_put(b, s + i - run, run);
      run = 0;
      sb_puts(b, esc);
    } else {
      run += k;
    }
    i += k;
  }
  sb_put(b, s + n - run, run);
  sb_put(b, "\"", 1);
}

static void json_base64(sbuf_t *b, const uint8_t *s, size_t n) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  sb_put(b, "\"", 1);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)s[i + 1] << 8;
    if (i + 2 < n)
      v |= s[i + 2];
    char q[4] = {tab[v >> 18], tab[(v >> 12) & 63],
                 i + 1 < n ? tab[(v >> 6) & 63] : '=',
                 i + 2 < n ? tab[v & 63] : '='};
    sb_put(b, q, 4);
  }
  sb_put(b, "\"", 1);
}

/* JSON text of a scalar into @p buf; 0 if @p it is not a plain scalar. */
static int scalar_text(const jiwa_mp_item_t *it, char *buf, size_t cap) {
  switch (it->type) {
  case JIWA_MP_NIL:
    snprintf(buf, cap, "null");
    return 1;
  case JIWA_MP_BOOL:
    snprintf(buf, cap, "%s", it->v.b ? "true" : "false");
    return 1;
  case JIWA_MP_INT:
    snprintf(buf, cap, "%" PRId64, it->v.i);
    return 1;
  case JIWA_MP_UINT:
    snprintf(buf, cap, "%" PRIu64, it->v.u);
    return 1;
  case JIWA_MP_FLOAT:
    if (!isfinite(it->v.f)) {
      snprintf(buf, cap, "null"); /* JSON has no NaN or infinity */
      return 1;
    }
    format_double(it->v.f, buf, cap);
    return 1;
  default:
    return 0;
  }
}

static int skip_children(jiwa_mp_reader_t *r, const jiwa_mp_item_t *it) {
  uint64_t n =
      it->type == JIWA_MP_MAP ? 2 * (uint64_t)it->v.count : it->v.count;
  for (uint64_t i = 0; i < n; i++) {
    int rc = jiwa_mp_skip(r);
    if (rc)
      return rc;
  }
  return 0;
}

static int json_value(jiwa_mp_reader_t *r, sbuf_t *b, unsigned depth);

/* A map key: JSON wants a string, so other types are named as one. */
static int json_key(jiwa_mp_reader_t *r, sbuf_t *b) {
  jiwa_mp_item_t it;
  int rc = jiwa_mp_next(r, &it);
  if (rc)
    return rc;
  char num[40];
  switch (it.type) {
  case JIWA_MP_STR:
    json_string(b, it.v.s.ptr, it.v.s.len);
    return 0;
  case JIWA_MP_BIN:
    json_base64(b, (const uint8_t *)it.v.s.ptr, it.v.s.len);
    return 0;
  case JIWA_MP_EXT:
    sb_puts(b, "\"<ext>\"");
    return 0;
  case JIWA_MP_ARRAY:
  case JIWA_MP_MAP:
    /* Rendering a container as a key string would escape its own keys
     * again at every level: exponential output. A name is enough. */
    sb_puts(b, it.type == JIWA_MP_MAP ? "\"<map>\"" : "\"<array>\"");
    return skip_children(r, &it);
  default:
    scalar_text(&it, num, sizeof num);
    json_string(b, num, strlen(num));
    return 0;
  }
}

static int json_value(jiwa_mp_reader_t *r, sbuf_t *b, unsigned depth) {
  jiwa_mp_item_t it;
  int rc = jiwa_mp_next(r, &it);
  if (rc)
    return rc;
  char num[40];
  switch (it.type) {
  case JIWA_MP_STR:
    json_string(b, it.v.s.ptr, it.v.s.len);
    return 0;
  case JIWA_MP_BIN:
    json_base64(b, (const uint8_t *)it.v.s.ptr, it.v.s.len);
    return 0;
  case JIWA_MP_EXT:
    sb_puts(b, "null");
    return 0;
  case JIWA_MP_ARRAY:
  case JIWA_MP_MAP: {
    /* jiwa_mp_scan bounded the depth already; this is a second guard. */
    if (depth >= JIWA_MP_MAX_DEPTH)
      return JIWA_ETOOBIG;
    int map = it.type == JIWA_MP_MAP;
    sb_put(b, map ? "{" : "[", 1);
    for (uint32_t i = 0; i < it.v.count; i++) {
      if (i)
        sb_put(b, ",", 1);
      if (map) {
        rc = json_key(r, b);
        if (rc)
          return rc;
        sb_put(b, ":", 1);
      }
      rc = json_value(r, b, depth + 1);
      if (rc)
        return rc;
    }
    sb_put(b, map ? "}" : "]", 1);
    return 0;
  }
  default:
    scalar_text(&it, num, sizeof num);
    sb_puts(b, num);
    return 0;
  }
}

int jiwa_mp_to_json(const void *mp, size_t len, char **out, size_t *outlen) {
  if (out)
    *out = NULL;
  if (outlen)
    *outlen = 0;
  if (!out || (!mp && len))
    return JIWA_EINVAL;
  size_t used = 0;
  int rc = jiwa_mp_scan(mp, len, JIWA_MP_MAX_DEPTH, &used);
  if (rc)
    return rc;
  if (used != len)
    return JIWA_EPROTO;
  sbuf_t b = {0};
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, mp, len);
  rc = json_value(&r, &b, 0);
  if (rc == 0 && b.oom)
    rc = JIWA_ENOMEM;
  if (rc) {
    free(b.p);
    return rc;
  }
  *out = b.p;
  if (outlen)
    *outlen = b.len;
  return 0;
}
