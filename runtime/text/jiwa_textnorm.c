/* The shared normaliser/tokenizer (see jiwa_textnorm.h). */
#include "jiwa_textnorm.h"

#include <string.h>

#include <utf8proc.h>

#define REPLACEMENT 0xFFFD
#define APOSTROPHE 0x27

/* NFKD + case fold, marks stripped, ignorables dropped, punctuation lumped. */
#define NORM_OPTS                                                              \
  (UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD |                  \
   UTF8PROC_STRIPMARK | UTF8PROC_IGNORE | UTF8PROC_LUMP)

enum { C_SEP, C_LETTER, C_DIGIT, C_APOS };

void jiwa_text_iter_init(jiwa_text_iter_t *it, const char *text, size_t len) {
  memset(it, 0, sizeof *it);
  it->p = (const uint8_t *)text;
  it->len = text ? (len > JIWA_TEXT_MAX_INPUT ? JIWA_TEXT_MAX_INPUT : len) : 0;
}

/* Whether @p cp is a Latin letter with a diacritic (or a letter) that
 * English, Indonesian and Italian do not use: a hint of another language. */
static int foreign_letter(int32_t cp) {
  if (cp < 0xC0 || (cp > 0x24F && (cp < 0x1E00 || cp > 0x1EFF)))
    return 0;
  switch (cp) {
  case 0xDF:
  case 0xF8:
  case 0xD8:
  case 0xE6:
  case 0xC6:
  case 0x142:
  case 0x141:
  case 0x111:
  case 0x110:
  case 0xF0:
  case 0xD0:
  case 0xFE:
  case 0xDE:
  case 0x131:
  case 0x153:
  case 0x152:
    return 1;
  default:
    break;
  }
  utf8proc_int32_t d[8];
  int bc = 0;
  utf8proc_ssize_t n =
      utf8proc_decompose_char(cp, d, 8, UTF8PROC_DECOMPOSE, &bc);
  if (n < 2 || n > 8 || d[0] >= 0x80)
    return 0;
  for (utf8proc_ssize_t i = 1; i < n; i++)
    if (d[i] != 0x300 && d[i] != 0x301)
      return 1;
  return 0;
}

/* Next normalised code point, or -1 at the end. */
static int32_t next_cp(jiwa_text_iter_t *it) {
  if (it->has_peek) {
    it->has_peek = 0;
    return it->peeked;
  }
  for (;;) {
    if (it->ipend < it->npend)
      return it->pend[it->ipend++];
    if (it->pos >= it->len)
      return -1;
    uint8_t b = it->p[it->pos];
    if (b < 0x80) { /* ASCII fast path: folding is just lowering */
      it->pos++;
      return (b >= 'A' && b <= 'Z') ? b + 32 : b;
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(
        it->p + it->pos, (utf8proc_ssize_t)(it->len - it->pos), &cp);
    if (n <= 0) {
      it->pos++; /* one bad byte at a time, like most decoders */
      return REPLACEMENT;
    }
    it->pos += (size_t)n;
    it->foreign += (unsigned)foreign_letter(cp);
    int boundclass = 0;
    utf8proc_ssize_t m = utf8proc_decompose_char(
        cp, it->pend, (utf8proc_ssize_t)(sizeof it->pend / sizeof it->pend[0]),
        (utf8proc_option_t)NORM_OPTS, &boundclass);
    if (m < 0 || (size_t)m > sizeof it->pend / sizeof it->pend[0])
      return REPLACEMENT;
    it->npend = (unsigned)m; /* 0: dropped (mark, ignorable) */
    it->ipend = 0;
  }
}

static int classify(int32_t c) {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z'))
      return C_LETTER;
    if (c >= '0' && c <= '9')
      return C_DIGIT;
    return c == APOSTROPHE ? C_APOS : C_SEP;
  }
  if (c == REPLACEMENT)
    return C_SEP;
  switch (utf8proc_category(c)) {
  case UTF8PROC_CATEGORY_LU:
  case UTF8PROC_CATEGORY_LL:
  case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM:
  case UTF8PROC_CATEGORY_LO:
    return C_LETTER;
  case UTF8PROC_CATEGORY_ND:
  case UTF8PROC_CATEGORY_NL:
  case UTF8PROC_CATEGORY_NO:
    return C_DIGIT;
  default:
    return C_SEP;
  }
}

static int is_latin(int32_t c) {
  return c < 0x250 || (c >= 0x1E00 && c <= 0x1EFF) ||
         (c >= 0x2C60 && c <= 0x2C7F) || (c >= 0xA720 && c <= 0xA7FF);
}

/* Append @p c; returns 0 when it did not fit (the token is then full). */
static int put(jiwa_token_t *t, int32_t c) {
  uint8_t u[4];
  utf8proc_ssize_t n = utf8proc_encode_char(c, u);
  if (n <= 0 || t->len + (unsigned)n > JIWA_TEXT_MAX_TOKEN)
    return 0;
  memcpy(t->s + t->len, u, (size_t)n);
  t->len += (unsigned)n;
  return 1;
}

int jiwa_text_next(jiwa_text_iter_t *it, jiwa_token_t *tok) {
  tok->len = tok->letters = tok->digits = tok->nonlatin = tok->apos = 0;
  unsigned foreign0 = it->foreign;
  int full = 0;
  for (;;) {
    int32_t c = next_cp(it);
    if (c < 0)
      break;
    int k = classify(c);
    if (k == C_APOS && tok->len > 0) {
      int32_t d = next_cp(it);
      int kd = d < 0 ? C_SEP : classify(d);
      if (d >= 0) {
        it->peeked = d;
        it->has_peek = 1;
      }
      if (kd != C_LETTER && kd != C_DIGIT)
        break;
      if (!full && !put(tok, c))
        full = 1;
      else if (!full)
        tok->apos++;
      continue;
    }
    if (k != C_LETTER && k != C_DIGIT) {
      if (tok->len > 0)
        break;
      continue;
    }
    if (full || !put(tok, c)) {
      full = 1;
      continue;
    }
    if (k == C_LETTER) {
      tok->letters++;
      if (!is_latin(c))
        tok->nonlatin++;
    } else {
      tok->digits++;
    }
  }
  /* a cut token may end on the apostrophe it was about to keep */
  while (tok->len > 0 && tok->s[tok->len - 1] == '\'') {
    tok->len--;
    tok->apos--;
  }
  tok->s[tok->len] = '\0';
  tok->foreign = it->foreign - foreign0;
  return tok->len > 0;
}

size_t jiwa_text_normalize(const char *text, size_t len, char *out,
                           size_t cap) {
  if (!out || cap == 0)
    return 0;
  jiwa_text_iter_t it;
  jiwa_token_t t;
  size_t n = 0;
  jiwa_text_iter_init(&it, text, len);
  while (jiwa_text_next(&it, &t)) {
    size_t need = t.len + (n > 0);
    if (n + need + 1 > cap)
      break;
    if (n > 0)
      out[n++] = ' ';
    memcpy(out + n, t.s, t.len);
    n += t.len;
  }
  out[n] = '\0';
  return n;
}

/* ---- hashing ------------------------------------------------------------- */

#define P1 UINT64_C(0x9E3779B97F4A7C15)
#define P2 UINT64_C(0xC2B2AE3D27D4EB4F)
#define P3 UINT64_C(0x165667B19E3779F9)

static inline uint64_t rotl64(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

static inline uint64_t load_le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

uint64_t jiwa_text_hash64(const void *data, size_t len, uint64_t seed) {
  const uint8_t *p = data;
  uint64_t h = seed ^ (P1 * (uint64_t)(len + 1));
  while (len >= 8) {
    uint64_t k = load_le(p, 8) * P2;
    h ^= rotl64(k, 31) * P1;
    h = rotl64(h, 27) * P1 + P3;
    p += 8;
    len -= 8;
  }
  if (len) {
    uint64_t k = load_le(p, len) * P3;
    h ^= rotl64(k, 29) * P2;
    h = rotl64(h, 23) * P2 + P1;
  }
  /* final avalanche: every input bit reaches every output bit */
  h ^= h >> 33;
  h *= UINT64_C(0xFF51AFD7ED558CCD);
  h ^= h >> 33;
  h *= UINT64_C(0xC4CEB9FE1A85EC53);
  h ^= h >> 33;
  return h;
}
