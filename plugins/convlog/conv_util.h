/*
 * Helpers shared by the convlog, shadow, memory and jiwa_enricher plugins
 * (header-only, static: each plugin .so keeps its own copy).
 *
 *  - wall clock in unix ms, ISO-8601 parse/format (UTC);
 *  - time-ordered keys: PREFIX + 16 hex digits of the time + 8 hex digits
 *    of a sequence ("c:0000018f2a3b4c5d0000002a"), and per-user index keys
 *    "u:" + 2 hex digits of the user's byte length + the user's bytes +
 *    the same 24 digits, so one user's prefix never covers another user's
 *    keys ("u:01a" and "u:03a:b" differ in the length);
 *  - a range scan over such keys. jiwa_kv_scan takes a prefix and no start
 *    key, so the keys greater than a cursor are covered by at most
 *    1 + 24 * 15 prefixes (the cursor itself, then for each digit from the
 *    last to the first, every larger digit at that place), visited in key
 *    order, stopping at the upper bound. A scan visits a bounded number of
 *    items and returns a cursor to go on from, so a long export or purge
 *    runs in slices between other messages.
 */
#ifndef JIWA_CONV_UTIL_H
#define JIWA_CONV_UTIL_H

#include <jiwa/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONVK_DIGITS 24      /* 16 time + 8 sequence */
#define CONVK_USER_MAX 255   /* bytes of a user id */
#define CONVK_BASE_MAX 300   /* bytes of a key prefix */

static inline int64_t convk_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- ISO-8601 ------------------------------------------------------------- */

static inline int64_t convk_days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static inline int convk_digits(const char *s, size_t n, size_t at, size_t k,
                               int *out) {
  if (at + k > n)
    return -1;
  int v = 0;
  for (size_t i = 0; i < k; i++) {
    char c = s[at + i];
    if (c < '0' || c > '9')
      return -1;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return 0;
}

/*
 * "2024-05-01", "2024-05-01T10:20:30", "...30.123", "...Z", "...+07:00",
 * a space instead of 'T'. No zone = UTC. Returns 0 and *ms, or -1.
 */
static inline int convk_iso_parse(const char *s, size_t n, int64_t *ms) {
  int y, mo, d, h = 0, mi = 0, se = 0, frac = 0;
  size_t i = 0;
  if (convk_digits(s, n, 0, 4, &y) || n < 10 || s[4] != '-' ||
      convk_digits(s, n, 5, 2, &mo) || s[7] != '-' ||
      convk_digits(s, n, 8, 2, &d))
    return -1;
  i = 10;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || y < 1970)
    return -1;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (d > mdays[mo - 1] ||
      (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
    return -1;
  int64_t off_min = 0;
  if (i < n && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
    i++;
    if (convk_digits(s, n, i, 2, &h) || i + 2 >= n || s[i + 2] != ':' ||
        convk_digits(s, n, i + 3, 2, &mi))
      return -1;
    i += 5;
    if (i < n && s[i] == ':') {
      if (convk_digits(s, n, i + 1, 2, &se))
        return -1;
      i += 3;
      if (i < n && (s[i] == '.' || s[i] == ',')) {
        i++;
        size_t k = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
          if (k < 3)
            frac = frac * 10 + (s[i] - '0');
          k++;
          i++;
        }
        if (k == 0)
          return -1;
        for (; k < 3; k++)
          frac *= 10;
      }
    }
    if (h > 23 || mi > 59 || se > 60)
      return -1;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
      i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
      int oh, om = 0;
      int sign = s[i] == '-' ? -1 : 1;
      if (convk_digits(s, n, i + 1, 2, &oh))
        return -1;
      i += 3;
      if (i < n && s[i] == ':')
        i++;
      if (i < n) {
        if (convk_digits(s, n, i, 2, &om))
          return -1;
        i += 2;
      }
      if (oh > 23 || om > 59)
        return -1;
      off_min = sign * (oh * 60 + om);
    }
  }
  if (i != n)
    return -1;
  int64_t days = convk_days_from_civil(y, (unsigned)mo, (unsigned)d);
  *ms = ((days * 86400 + h * 3600 + mi * 60 + se) - off_min * 60) * 1000 + frac;
  return *ms >= 0 ? 0 : -1;
}

/* "2024-05-01T10:20:30.123Z" (25 bytes with the NUL). */
static inline void convk_iso_format(int64_t ms, char out[32]) {
  if (ms < 0)
    ms = 0;
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999) {
    snprintf(out, 32, "%lld", (long long)ms);
    return;
  }
  unsigned y = (unsigned)(tm.tm_year + 1900) % 10000u,
           mo = (unsigned)(tm.tm_mon + 1) % 100u,
           d = (unsigned)tm.tm_mday % 100u, h = (unsigned)tm.tm_hour % 100u,
           mi = (unsigned)tm.tm_min % 100u, s = (unsigned)tm.tm_sec % 100u,
           f = (unsigned)(ms % 1000);
  snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", y, mo, d, h, mi, s,
           f);
}

/*
 * A point in time given as an integer (ms), a string of digits (ms), a
 * duration back from now ("90s", "30m", "24h", "7d") or an ISO-8601 time.
 */
static inline int convk_time_arg(const char *s, size_t n, int64_t now,
                                 int64_t *out) {
  if (n == 0 || n > 40)
    return -1;
  size_t k = 0;
  int64_t v = 0;
  while (k < n && s[k] >= '0' && s[k] <= '9' && k < 18)
    v = v * 10 + (s[k++] - '0');
  if (k == n) {
    *out = v;
    return 0;
  }
  if (k > 0 && k + 1 == n) {
    int64_t unit = s[k] == 's' ? 1000 : s[k] == 'm' ? 60000
                   : s[k] == 'h' ? 3600000 : s[k] == 'd' ? 86400000 : 0;
    if (!unit)
      return -1;
    *out = v > now / unit ? 0 : now - v * unit; /* never before 1970 */
    return 0;
  }
  return convk_iso_parse(s, n, out);
}

/* ---- keys ------------------------------------------------------------------ */

static const char convk_hex[] = "0123456789abcdef";

static inline void convk_digits24(int64_t time_ms, uint32_t seq,
                                  char out[CONVK_DIGITS]) {
  uint64_t t = (uint64_t)time_ms;
  for (int i = 15; i >= 0; i--, t >>= 4)
    out[i] = convk_hex[t & 15];
  for (int i = 23; i >= 16; i--, seq >>= 4)
    out[i] = convk_hex[seq & 15];
}

static inline int64_t convk_digits_time(const char *d) {
  uint64_t t = 0;
  for (int i = 0; i < 16; i++) {
    char c = d[i];
    t = t * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return (int64_t)t;
}

/* "u:" + 2 hex of the length + the user. Returns the length, 0 if the user
 * is empty or too long. @p out holds CONVK_BASE_MAX bytes. */
static inline size_t convk_user_base(const char *user, size_t ulen,
                                     char *out) {
  if (ulen == 0 || ulen > CONVK_USER_MAX)
    return 0;
  out[0] = 'u';
  out[1] = ':';
  out[2] = convk_hex[ulen >> 4];
  out[3] = convk_hex[ulen & 15];
  memcpy(out + 4, user, ulen);
  return 4 + ulen;
}

/* ---- range scan -------------------------------------------------------------- */

/* An item of a range scan: the whole key (without the namespace), the
 * 24 digits inside it, the value. Return 0 to go on, 1 to stop here (the
 * item counts as visited), a negative code to abort. */
typedef int (*convk_item_fn)(const char *key, size_t klen, const char *digits,
                             const void *val, size_t vlen, void *ud);

typedef struct {
  char base[CONVK_BASE_MAX];
  size_t blen;
  char lo[CONVK_DIGITS]; /* the cursor */
  int inclusive;         /* the cursor itself is wanted */
  char hi[CONVK_DIGITS]; /* inclusive upper bound */
  int done;
} convk_range_t;

static inline void convk_range_init(convk_range_t *r, const char *base,
                                    size_t blen, int64_t from_ms,
                                    int64_t until_ms) {
  memset(r, 0, sizeof *r);
  memcpy(r->base, base, blen);
  r->blen = blen;
  convk_digits24(from_ms < 0 ? 0 : from_ms, 0, r->lo);
  r->inclusive = 1;
  convk_digits24(until_ms < 0 ? 0 : until_ms, 0xffffffffu, r->hi);
  r->done = from_ms > until_ms;
}

typedef struct {
  convk_range_t *r;
  convk_item_fn fn;
  void *ud;
  uint32_t visited, max;
  int stop, err;
} convk_scan_t;

static inline int convk__scan_cb(const void *key, size_t klen, const void *val,
                                 size_t vlen, void *ud) {
  convk_scan_t *s = ud;
  convk_range_t *r = s->r;
  if (klen != r->blen + CONVK_DIGITS)
    return 0; /* not one of ours */
  const char *d = (const char *)key + r->blen;
  int c = memcmp(d, r->hi, CONVK_DIGITS);
  if (c > 0) {
    r->done = 1;
    s->stop = 1;
    return 1;
  }
  c = memcmp(d, r->lo, CONVK_DIGITS);
  if (c < 0 || (c == 0 && !r->inclusive))
    return 0;
  memcpy(r->lo, d, CONVK_DIGITS);
  r->inclusive = 0;
  s->visited++;
  int rc = s->fn((const char *)key, klen, d, val, vlen, s->ud);
  if (rc < 0) {
    s->err = rc;
    return rc;
  }
  if (rc > 0 || s->visited >= s->max) {
    s->stop = 1;
    return 1;
  }
  return 0;
}

/*
 * Visit, in key order, up to @p max keys base + d with cursor < d <= hi
 * (or == cursor when inclusive), moving the cursor. r->done is set when
 * nothing is left. Returns the number visited or a negative code.
 */
static inline int convk_range_scan(jiwa_actor_t *self, convk_range_t *r,
                                   uint32_t max, convk_item_fn fn, void *ud) {
  convk_scan_t s = {r, fn, ud, 0, max ? max : 1, 0, 0};
  char pfx[CONVK_BASE_MAX + CONVK_DIGITS];
  char lo[CONVK_DIGITS];
  if (r->done)
    return 0;
  memcpy(lo, r->lo, CONVK_DIGITS); /* the cover is of the cursor at entry */
  memcpy(pfx, r->base, r->blen);
  /* i = CONVK_DIGITS: the cursor itself; then each place, last first */
  for (int i = CONVK_DIGITS; i >= 0 && !s.stop; i--) {
    int dmin, dmax = 15;
    if (i == CONVK_DIGITS) {
      if (!r->inclusive)
        continue;
      dmin = dmax = -1; /* the cursor key itself */
    } else {
      char c = lo[i];
      dmin = (c <= '9' ? c - '0' : c - 'a' + 10) + 1;
    }
    for (int dg = dmin; dg <= dmax && !s.stop; dg++) {
      size_t plen;
      if (dg < 0) {
        memcpy(pfx + r->blen, lo, CONVK_DIGITS);
        plen = r->blen + CONVK_DIGITS;
      } else {
        memcpy(pfx + r->blen, lo, (size_t)i);
        pfx[r->blen + (size_t)i] = convk_hex[dg];
        plen = r->blen + (size_t)i + 1;
        /* the smallest key under this prefix beyond the bound: done */
        char least[CONVK_DIGITS];
        memcpy(least, pfx + r->blen, (size_t)i + 1);
        memset(least + i + 1, '0', (size_t)(CONVK_DIGITS - i - 1));
        if (memcmp(least, r->hi, CONVK_DIGITS) > 0) {
          r->done = 1;
          return (int)s.visited;
        }
      }
      int rc = jiwa_kv_scan(self, pfx, plen, s.max - s.visited + 1,
                            convk__scan_cb, &s);
      if (s.err)
        return s.err;
      if (rc < 0)
        return rc;
    }
  }
  if (!s.stop)
    r->done = 1;
  return (int)s.visited;
}

/* ---- small things -------------------------------------------------------------- */

/* Length of @p s cut to at most @p max bytes at a UTF-8 character start. */
static inline size_t convk_cut_utf8(const char *s, size_t n, size_t max) {
  if (n <= max)
    return n;
  size_t k = max;
  while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
    k--;
  return k;
}

static inline int convk_reply_w(jiwa_actor_t *self, const jiwa_msg_t *m,
                                const char *type, jiwa_mp_writer_t *w) {
  int rc = jiwa_reply(self, m, type, w->sbuf.data, w->sbuf.size);
  jiwa_mp_writer_free(w);
  return rc == JIWA_ESTATE ? 0 : rc;
}

static inline int convk_reply_err(jiwa_actor_t *self, const jiwa_msg_t *m,
                                  int code, const char *text) {
  if (jiwa_msg_kind(m) != JIWA_MSG_ASK)
    return 0;
  int rc = jiwa_reply_error(self, m, code, text);
  return rc == JIWA_ESTATE ? 0 : rc;
}

static inline void convk_put_bin_str(msgpack_packer *pk, const char *k,
                                     const char *v, size_t n) {
  jiwa_mp_put_str(pk, k);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, v, n);
}

/* FNV-1a 32 over several byte runs (import keys: the same entry gets the
 * same key, so importing a file twice does not duplicate it). */
static inline uint32_t convk_fnv(uint32_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 16777619u;
  }
  return h;
}

#endif /* JIWA_CONV_UTIL_H */
