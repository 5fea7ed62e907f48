/* Cron expressions in UTC (see jiwa_cron.h). */
#include "jiwa_cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jiwa/errors.h"

typedef struct {
  const char *name; /* for messages */
  unsigned lo, hi;  /* accepted values (dow: 0-7) */
  const char *const *names;
  unsigned name_base; /* value of names[0] */
} field_t;

static const char *const k_months[] = {"jan", "feb", "mar", "apr",
                                       "may", "jun", "jul", "aug",
                                       "sep", "oct", "nov", "dec", NULL};
static const char *const k_days[] = {"sun", "mon", "tue", "wed",
                                     "thu", "fri", "sat", NULL};

static const field_t k_fields[5] = {
    {"minute", 0, 59, NULL, 0},       {"hour", 0, 23, NULL, 0},
    {"day of month", 1, 31, NULL, 0}, {"month", 1, 12, k_months, 1},
    {"day of week", 0, 7, k_days, 0},
};

static const struct {
  const char *name, *expansion;
} k_macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

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

/* Copy at most 16 bytes of input into @p dst as printable ASCII. */
static const char *quote(const char *s, size_t n, char dst[20]) {
  size_t k = 0;
  for (size_t i = 0; i < n && k < 16; i++) {
    unsigned char c = (unsigned char)s[i];
    dst[k++] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
  }
  if (n > 16) {
    dst[k++] = '.';
    dst[k++] = '.';
  }
  dst[k] = '\0';
  return dst;
}

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* Read one value (number or name) at s[*i..n). */
static int read_value(const field_t *f, int fno, const char *s, size_t n,
                      size_t *i, unsigned *out, char *err, size_t errlen) {
  char q[20];
  size_t st = *i;
  if (*i < n && s[*i] >= '0' && s[*i] <= '9') {
    unsigned long v = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
      if (v < 1000000ul)
        v = v * 10 + (unsigned long)(s[*i] - '0');
      (*i)++;
    }
    if (v < f->lo || v > f->hi) {
      if (v >= 1000000ul)
        seterr(err, errlen, "field %d (%s): %s is out of range %u-%u", fno,
               f->name, quote(s + st, *i - st, q), f->lo, f->hi);
      else
        seterr(err, errlen, "field %d (%s): %lu is out of range %u-%u", fno,
               f->name, v, f->lo, f->hi);
      return JIWA_EINVAL;
    }
    *out = (unsigned)v;
    return 0;
  }
  if (*i < n && ((s[*i] | 32) >= 'a' && (s[*i] | 32) <= 'z')) {
    while (*i < n && ((s[*i] | 32) >= 'a' && (s[*i] | 32) <= 'z'))
      (*i)++;
    size_t len = *i - st;
    if (f->names && len == 3) {
      for (unsigned k = 0; f->names[k]; k++)
        if (lower(s[st]) == f->names[k][0] &&
            lower(s[st + 1]) == f->names[k][1] &&
            lower(s[st + 2]) == f->names[k][2]) {
          *out = f->name_base + k;
          return 0;
        }
    }
    if (f->names)
      seterr(err, errlen, "field %d (%s): unknown name '%s' (use %s)", fno,
             f->name, quote(s + st, len, q),
             f->names == k_months ? "JAN..DEC" : "SUN..SAT");
    else
      seterr(err, errlen,
             "field %d (%s): '%s' is not a number (names are allowed only "
             "for months and days of week)",
             fno, f->name, quote(s + st, len, q));
    return JIWA_EINVAL;
  }
  if (*i >= n)
    seterr(err, errlen, "field %d (%s): a value is missing at the end", fno,
           f->name);
  else
    seterr(err, errlen, "field %d (%s): unexpected '%s'", fno, f->name,
           quote(s + *i, 1, q));
  return JIWA_EINVAL;
}

/* Parse one field s[0..n) into a bit mask. */
static int parse_field(int fno, const char *s, size_t n, uint64_t *mask,
                       char *err, size_t errlen) {
  const field_t *f = &k_fields[fno - 1];
  uint64_t m = 0;
  size_t i = 0;
  char q[20];
  for (;;) {
    unsigned a, b, step = 1;
    int rc;
    if (i >= n || s[i] == ',') {
      seterr(err, errlen, "field %d (%s): empty list element", fno, f->name);
      return JIWA_EINVAL;
    }
    if (s[i] == '*') {
      a = f->lo;
      b = f->hi;
      i++;
      if (fno == 5)
        b = 6; /* 7 is Sunday again */
    } else {
      if ((rc = read_value(f, fno, s, n, &i, &a, err, errlen)) < 0)
        return rc;
      b = a;
      if (i < n && s[i] == '-') {
        i++;
        if ((rc = read_value(f, fno, s, n, &i, &b, err, errlen)) < 0)
          return rc;
        if (b < a) {
          seterr(err, errlen,
                 "field %d (%s): range %u-%u is reversed (write it as two "
                 "ranges)",
                 fno, f->name, a, b);
          return JIWA_EINVAL;
        }
      } else if (i < n && s[i] == '/') {
        b = f->hi; /* "A/S": from A to the maximum */
      }
    }
    if (i < n && s[i] == '/') {
      size_t st = ++i;
      unsigned long v = 0;
      while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (v < 1000000ul)
          v = v * 10 + (unsigned long)(s[i] - '0');
        i++;
      }
      if (i == st) {
        seterr(err, errlen, "field %d (%s): '/' must be followed by a step",
               fno, f->name);
        return JIWA_EINVAL;
      }
      if (v == 0 || v > f->hi) {
        seterr(err, errlen, "field %d (%s): step %s is out of range 1-%u",
               fno, f->name, quote(s + st, i - st, q), f->hi);
        return JIWA_EINVAL;
      }
      step = (unsigned)v;
    }
    for (unsigned v = a; v <= b; v += step)
      m |= UINT64_C(1) << (fno == 5 && v == 7 ? 0 : v);
    if (i == n)
      break;
    if (s[i] != ',') {
      seterr(err, errlen, "field %d (%s): unexpected '%s'", fno, f->name,
             quote(s + i, 1, q));
      return JIWA_EINVAL;
    }
    i++;
  }
  *mask = m;
  return 0;
}

static int is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned mdays(int64_t y, unsigned m) {
  static const unsigned k[13] = {0,  31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : k[m];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int64_t jiwa_cron_mktime(int year, int month, int day, int hour, int min,
                         int sec) {
  /* normalise the month so days_from_civil sees 1..12 */
  int64_t y = year, mo = month - 1;
  y += mo >= 0 ? mo / 12 : (mo - 11) / 12;
  mo -= (mo >= 0 ? mo / 12 : (mo - 11) / 12) * 12;
  return (days_from_civil(y, (unsigned)mo + 1, 1) + day - 1) * 86400 +
         (int64_t)hour * 3600 + (int64_t)min * 60 + sec;
}

char *jiwa_cron_fmt(int64_t t, char *buf, size_t cap) {
  if (!buf || !cap)
    return buf;
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t sod = t - days * 86400, y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  snprintf(buf, cap, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d,
           (unsigned)(sod / 3600), (unsigned)(sod / 60 % 60),
           (unsigned)(sod % 60));
  return buf;
}

/* Can any (month, day) pair of the masks exist in some year? */
static int days_possible(const jiwa_cron_t *c) {
  for (unsigned m = 1; m <= 12; m++) {
    if (!(c->month >> m & 1))
      continue;
    unsigned md = m == 2 ? 29 : mdays(1, m);
    for (unsigned d = 1; d <= md; d++)
      if (c->dom >> d & 1)
        return 1;
  }
  return 0;
}

int jiwa_cron_parse(const char *expr, size_t len, jiwa_cron_t *out, char *err,
                    size_t errlen) {
  char q[20];
  seterr(err, errlen, "%s", "");
  if ((!expr && len) || !out) {
    seterr(err, errlen, "no expression");
    return JIWA_EINVAL;
  }
  if (len > JIWA_CRON_MAX_EXPR) {
    seterr(err, errlen, "expression is %zu bytes long, the limit is %u", len,
           JIWA_CRON_MAX_EXPR);
    return JIWA_ETOOBIG;
  }
  while (len && is_blank(expr[0]))
    expr++, len--;
  while (len && is_blank(expr[len - 1]))
    len--;
  if (!len) {
    seterr(err, errlen,
           "empty expression (expected 5 fields: minute hour day-of-month "
           "month day-of-week)");
    return JIWA_EINVAL;
  }
  if (expr[0] == '@') {
    for (size_t k = 0; k < sizeof k_macros / sizeof k_macros[0]; k++) {
      size_t ml = strlen(k_macros[k].name);
      if (ml != len)
        continue;
      size_t j = 0;
      while (j < ml && lower(expr[j]) == k_macros[k].name[j])
        j++;
      if (j == ml)
        return jiwa_cron_parse(k_macros[k].expansion,
                               strlen(k_macros[k].expansion), out, err,
                               errlen);
    }
    seterr(err, errlen,
           "unknown macro '%s' (use @yearly, @monthly, @weekly, @daily or "
           "@hourly)",
           quote(expr, len, q));
    return JIWA_EINVAL;
  }
  /* split into fields */
  size_t fs[6], fl[6];
  unsigned nf = 0;
  for (size_t i = 0; i < len;) {
    while (i < len && is_blank(expr[i]))
      i++;
    if (i >= len)
      break;
    size_t st = i;
    while (i < len && !is_blank(expr[i]))
      i++;
    if (nf < 6) {
      fs[nf] = st;
      fl[nf] = i - st;
    }
    nf++;
  }
  if (nf != 5) {
    seterr(err, errlen,
           "expected 5 fields (minute hour day-of-month month day-of-week), "
           "got %u",
           nf);
    return JIWA_EINVAL;
  }
  uint64_t m[5];
  for (int f = 0; f < 5; f++) {
    int rc = parse_field(f + 1, expr + fs[f], fl[f], &m[f], err, errlen);
    if (rc < 0)
      return rc;
  }
  jiwa_cron_t c;
  c.minute = m[0];
  c.hour = (uint32_t)m[1];
  c.dom = (uint32_t)m[2];
  c.month = (uint16_t)m[3];
  c.dow = (uint8_t)m[4];
  c.flags = (uint8_t)((expr[fs[2]] == '*' ? JIWA__CRON_DOM_STAR : 0) |
                      (expr[fs[4]] == '*' ? JIWA__CRON_DOW_STAR : 0));
  /* With OR semantics a weekday always exists; with AND, the day of month
   * must exist in one of the months (Feb 29 counts: leap years come). */
  if ((c.flags & (JIWA__CRON_DOM_STAR | JIWA__CRON_DOW_STAR)) &&
      !days_possible(&c)) {
    seterr(err, errlen,
           "field 3 (day of month): none of these days exists in the "
           "months of field 4, the expression would never fire");
    return JIWA_EINVAL;
  }
  *out = c;
  return 0;
}

static int day_matches(const jiwa_cron_t *c, unsigned d, unsigned wd) {
  int dm = (int)(c->dom >> d & 1), wm = (int)(c->dow >> wd & 1);
  if (c->flags & (JIWA__CRON_DOM_STAR | JIWA__CRON_DOW_STAR))
    return dm && wm;
  return dm || wm;
}

int jiwa_cron_matches(const jiwa_cron_t *c, int64_t t) {
  if (!c || t < 0 || t > JIWA_CRON_MAX_TIME)
    return 0;
  int64_t days = t / 86400, y;
  unsigned sod = (unsigned)(t % 86400), mo, d;
  civil_from_days(days, &y, &mo, &d);
  unsigned wd = (unsigned)((days + 4) % 7);
  return (c->month >> mo & 1) && day_matches(c, d, wd) &&
         (c->hour >> (sod / 3600) & 1) && (c->minute >> (sod / 60 % 60) & 1);
}

int jiwa_cron_next(const jiwa_cron_t *c, int64_t after, int64_t *next) {
  if (!c || !next || after < 0 || after > JIWA_CRON_MAX_TIME)
    return JIWA_EINVAL;
  int64_t t = after / 60 * 60 + 60;
  while (t <= JIWA_CRON_MAX_TIME) {
    int64_t days = t / 86400, y;
    unsigned sod = (unsigned)(t % 86400), mo, d;
    civil_from_days(days, &y, &mo, &d);
    if (!(c->month >> mo & 1)) { /* first day of the next month */
      t = (days + (mdays(y, mo) - d + 1)) * 86400;
      continue;
    }
    if (!day_matches(c, d, (unsigned)((days + 4) % 7))) {
      t = (days + 1) * 86400;
      continue;
    }
    unsigned h = sod / 3600, mi = sod / 60 % 60;
    if (!(c->hour >> h & 1)) {
      unsigned h2 = h + 1;
      while (h2 < 24 && !(c->hour >> h2 & 1))
        h2++;
      t = h2 < 24 ? days * 86400 + h2 * 3600 : (days + 1) * 86400;
      continue;
    }
    unsigned m2 = mi;
    while (m2 < 60 && !(c->minute >> m2 & 1))
      m2++;
    if (m2 == 60) {
      t = days * 86400 + (h + 1) * 3600;
      continue;
    }
    *next = days * 86400 + h * 3600 + m2 * 60;
    return 0;
  }
  return JIWA_ENOENT;
}
