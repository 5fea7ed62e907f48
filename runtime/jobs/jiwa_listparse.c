/* Parsing a model's list answer into items (see jiwa_listparse.h).
 *
 * Order of attempts: JSON in a ``` fence, JSON spanning the first '[' / '{'
 * to the last ']' / '}', then one pass over the lines that classifies each
 * (blank, heading, numbered, bullet, bold lead, quoted string, text) and a
 * second pass that assembles items by the shape found. Every step is linear
 * in the input; JSON goes through the SDK's bounded parser. */
#include "jiwa_listparse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa/json.h"
#include "jiwa/mp.h"
#include "jiwa_textnorm.h"

/* ---- output list with dedup ------------------------------------------- */

typedef struct {
  jiwa_list_t *l;
  size_t cap;
  size_t max_items, max_item_len;
  char **keys;     /* normalised key per item */
  uint64_t *hh;    /* hash set: hashes (0 = empty) */
  uint32_t *hi;    /* item index per slot */
  size_t hcap;
  char *norm;      /* scratch for keys */
  size_t normcap;
  int oom;
} out_t;

static int is_sp(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
         c == '\f';
}

/* Length of the blank-like sequence at p: ASCII blanks and other control
 * characters (NUL included, so items stay C strings), NBSP, thin spaces. */
static size_t uspace(const unsigned char *p, size_t n) {
  if (n >= 1 && (p[0] <= 0x20 || p[0] == 0x7f))
    return 1;
  if (n >= 2 && p[0] == 0xc2 && p[1] == 0xa0)
    return 2;
  if (n >= 3 && p[0] == 0xe2 && p[1] == 0x80 &&
      (p[2] <= 0x8a || p[2] == 0xaf))
    return 3;
  return 0;
}

/* Largest cut <= @p n that does not split a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n, size_t len) {
  if (n >= len)
    return len;
  size_t k = n;
  while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80 && n - k < 3)
    k--;
  return ((unsigned char)s[k] & 0xc0) == 0x80 ? n : k;
}

/* Clean s[0..n) into dst (room for n + 1): drop ** and __, collapse blanks,
 * trim, drop a trailing colon. Returns the new length. */
static size_t clean(const char *s, size_t n, char *dst) {
  size_t k = 0;
  int pend_sp = 0;
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t sp = uspace(u + i, n - i);
    if (sp) {
      pend_sp = k > 0;
      i += sp;
      continue;
    }
    if (i + 1 < n && (s[i] == '*' || s[i] == '_') && s[i + 1] == s[i]) {
      i += 2;
      continue;
    }
    if (pend_sp)
      dst[k++] = ' ';
    pend_sp = 0;
    dst[k++] = s[i++];
  }
  while (k > 0 && (dst[k - 1] == ':' || dst[k - 1] == ' '))
    k--;
  dst[k] = '\0';
  return k;
}

static char *dup_clean(const char *s, size_t n, size_t maxlen, size_t *outlen) {
  char *d = malloc(n + 1);
  if (!d)
    return NULL;
  size_t k = clean(s, n, d);
  k = utf8_cut(d, maxlen, k);
  d[k] = '\0';
  *outlen = k;
  return d;
}

static int grow_norm(out_t *o, size_t need) {
  if (need <= o->normcap)
    return 0;
  size_t c = o->normcap ? o->normcap : 256;
  while (c < need)
    c *= 2;
  char *p = realloc(o->norm, c);
  if (!p)
    return -1;
  o->norm = p;
  o->normcap = c;
  return 0;
}

/* Add a cleaned item (takes ownership of title/text). Returns 0, or -1 on
 * OOM (strings freed). */
static int push(out_t *o, char *title, size_t tlen, char *text, size_t xlen) {
  jiwa_list_t *l = o->l;
  if (!xlen && tlen) { /* a title alone is the text */
    free(text);
    text = title;
    xlen = utf8_cut(title, o->max_item_len, tlen);
    text[xlen] = '\0';
    title = NULL;
    tlen = 0;
  }
  if (title && !tlen) {
    free(title);
    title = NULL;
  }
  /* dedup key: normalised title + text; no word at all -> not an item */
  size_t need = 2 * (tlen + xlen) + 64;
  if (grow_norm(o, need) < 0)
    goto oom;
  size_t kl = jiwa_text_normalize(title, tlen, o->norm, need);
  size_t tk = kl;
  o->norm[kl++] = '|';
  kl += jiwa_text_normalize(text, xlen, o->norm + kl, need - kl);
  if (kl == tk + 1 || !xlen) {
    free(title);
    free(text);
    return 0;
  }
  uint64_t h = jiwa_text_hash64(o->norm, kl, 0x6c697374) | 1;
  size_t slot = (size_t)(h & (o->hcap - 1));
  while (o->hh[slot]) {
    if (o->hh[slot] == h && strcmp(o->keys[o->hi[slot]], o->norm) == 0) {
      l->duplicates++;
      free(title);
      free(text);
      return 0;
    }
    slot = (slot + 1) & (o->hcap - 1);
  }
  if (l->n >= o->max_items) {
    l->truncated = 1;
    free(title);
    free(text);
    return 0;
  }
  if (l->n == o->cap) {
    size_t c = o->cap ? o->cap * 2 : 16;
    if (c > o->max_items)
      c = o->max_items;
    jiwa_list_item_t *ni = realloc(l->items, c * sizeof *ni);
    if (!ni)
      goto oom;
    l->items = ni;
    char **nk = realloc(o->keys, c * sizeof *nk);
    if (!nk)
      goto oom;
    o->keys = nk;
    o->cap = c;
  }
  char *key = malloc(kl + 1);
  if (!key)
    goto oom;
  memcpy(key, o->norm, kl);
  key[kl] = '\0';
  o->keys[l->n] = key;
  o->hh[slot] = h;
  o->hi[slot] = (uint32_t)l->n;
  l->items[l->n].title = title;
  l->items[l->n].title_len = tlen;
  l->items[l->n].text = text;
  l->items[l->n].text_len = xlen;
  l->n++;
  return 0;
oom:
  free(title);
  free(text);
  o->oom = 1;
  return -1;
}

static size_t count_words(const char *s, size_t n) {
  size_t w = 0;
  int in = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
      in = 0;
    } else if (!in) {
      in = 1;
      w++;
    }
  }
  return w;
}

/* Length of a title/text separator at s[i]: ": ", " — ", " – ", " - ". */
static size_t sep_at(const char *s, size_t n, size_t i) {
  if (s[i] == ':' && i + 1 < n && (s[i + 1] == ' ' || s[i + 1] == '\n'))
    return 2;
  if (s[i] == ' ' && i + 2 < n && s[i + 1] == '-' && s[i + 2] == ' ')
    return 3;
  if (s[i] == ' ' && i + 4 < n && (unsigned char)s[i + 1] == 0xe2 &&
      (unsigned char)s[i + 2] == 0x80 &&
      ((unsigned char)s[i + 3] == 0x93 || (unsigned char)s[i + 3] == 0x94) &&
      s[i + 4] == ' ')
    return 5;
  return 0;
}

/* Skip separators and blanks that may follow a bold title. */
static size_t skip_sep(const char *s, size_t n, size_t i) {
  for (;;) {
    size_t sp = uspace((const unsigned char *)s + i, n - i);
    if (sp) {
      i += sp;
      continue;
    }
    if (i < n && (s[i] == ':' || s[i] == '-' || s[i] == '.' || s[i] == ',')) {
      i++;
      continue;
    }
    if (i + 2 < n && (unsigned char)s[i] == 0xe2 &&
        (unsigned char)s[i + 1] == 0x80 &&
        ((unsigned char)s[i + 2] == 0x93 || (unsigned char)s[i + 2] == 0x94)) {
      i += 3;
      continue;
    }
    return i;
  }
}

/* Split a raw item into title and text, clean both and push. */
static int add_raw(out_t *o, const char *s, size_t n, int split) {
  while (n && is_sp((unsigned char)s[0]))
    s++, n--;
  const char *ts = NULL, *xs = s;
  size_t tn = 0, xn = n;
  int bold_done = 0;
  if (split && n >= 4 && (s[0] == '*' || s[0] == '_') && s[1] == s[0]) {
    /* "**Malu** — text", "**Malu:** text", "**Malu**\ntext"; but not
     * "**Respect** the offerings" (emphasis inside a sentence) */
    size_t lim = n < 300 ? n : 300;
    for (size_t i = 2; i + 1 < lim; i++)
      if (s[i] == s[0] && s[i + 1] == s[0]) {
        size_t r = skip_sep(s, n, i + 2);
        int sep = r == n || s[i - 1] == ':' || s[i - 1] == '.';
        for (size_t j = i + 2; j < r && !sep; j++)
          sep = s[j] != ' ' && s[j] != '\t';
        if (sep && i > 2) {
          ts = s + 2;
          tn = i - 2;
          xs = s + r;
          xn = n - r;
          bold_done = 1;
        }
        break;
      }
  }
  if (split && !bold_done) {
    /* "Open a bank account\n\nBring your KITAS...": a short first
     * paragraph without final punctuation is a title */
    size_t lim = n < 160 ? n : 160;
    for (size_t i = 1; i + 1 < lim; i++)
      if (s[i] == '\n' && s[i + 1] == '\n') {
        char e = s[i - 1];
        if (count_words(s, i) <= 8 && e != '.' && e != '!' && e != '?' &&
            e != ';' && e != ',') {
          ts = s;
          tn = i;
          xs = s + i + 2;
          xn = n - i - 2;
          bold_done = 1;
        }
        break;
      }
  }
  if (split && !bold_done) {
    size_t lim = n < 80 ? n : 80;
    for (size_t i = 1; i < lim; i++) {
      if (s[i] == '\n' || s[i] == '.' || s[i] == '?' || s[i] == '!')
        break;
      size_t sl = sep_at(s, n, i);
      if (sl) {
        if (count_words(s, i) <= 6 && i + sl < n) {
          ts = s;
          tn = i;
          xs = s + i + sl;
          xn = n - i - sl;
        }
        break;
      }
    }
  }
  char *title = NULL, *text;
  size_t tl = 0, xl;
  if (ts) {
    title = dup_clean(ts, tn, JIWA_LIST_MAX_TITLE, &tl);
    if (!title) {
      o->oom = 1;
      return -1;
    }
    while (tl && (title[tl - 1] == '.' || title[tl - 1] == ':'))
      title[--tl] = '\0';
  }
  text = dup_clean(xs, xn, o->max_item_len, &xl);
  if (!text) {
    free(title);
    o->oom = 1;
    return -1;
  }
  if (xl < xn && xl == o->max_item_len)
    o->l->truncated = 1;
  return push(o, title, tl, text, xl);
}

/* ---- JSON --------------------------------------------------------------- */

static int key_in(const char *k, uint32_t kl, const char *const *set) {
  for (size_t i = 0; set[i]; i++) {
    size_t sl = strlen(set[i]);
    if (sl != kl)
      continue;
    size_t j = 0;
    while (j < sl && (k[j] | 32) == set[i][j])
      j++;
    if (j == sl)
      return 1;
  }
  return 0;
}

static const char *const k_title_keys[] = {
    "title", "name", "term", "concept", "heading", "question", "topic",
    "judul", "nama", "titolo", "nome", "domanda", "pertanyaan", NULL};
static const char *const k_text_keys[] = {
    "text",    "insight",     "description", "content", "answer",
    "body",    "explanation", "detail",      "details", "summary",
    "value",   "tip",         "note",        "teks",    "isi",
    "jawaban", "deskripsi",   "penjelasan",  "testo",   "descrizione",
    "risposta", "spiegazione", NULL};

static int text_push(out_t *o, const char *t, size_t tn, const char *x,
                     size_t xn) {
  char *title = NULL, *text;
  size_t tl = 0, xl;
  if (t) {
    title = dup_clean(t, tn, JIWA_LIST_MAX_TITLE, &tl);
    if (!title) {
      o->oom = 1;
      return -1;
    }
  }
  text = dup_clean(x ? x : "", x ? xn : 0, o->max_item_len, &xl);
  if (!text) {
    free(title);
    o->oom = 1;
    return -1;
  }
  if (xl < xn && xl == o->max_item_len)
    o->l->truncated = 1;
  return push(o, title, tl, text, xl);
}

/* One map as an item; r is positioned after the map header. */
static int json_map_item(out_t *o, jiwa_mp_reader_t *r, uint32_t count) {
  const char *t = NULL, *x = NULL, *any = NULL;
  size_t tn = 0, xn = 0, anyn = 0;
  unsigned nstr = 0;
  for (uint32_t i = 0; i < count; i++) {
    jiwa_mp_item_t k, v;
    if (jiwa_mp_next(r, &k) < 0)
      return 1;
    jiwa_mp_reader_t save = *r;
    if (jiwa_mp_next(r, &v) < 0)
      return 1;
    if (v.type == JIWA_MP_ARRAY || v.type == JIWA_MP_MAP) {
      *r = save;
      if (jiwa_mp_skip(r) < 0)
        return 1;
      continue;
    }
    if (v.type != JIWA_MP_STR || k.type != JIWA_MP_STR)
      continue;
    nstr++;
    if (!t && key_in(k.v.s.ptr, k.v.s.len, k_title_keys)) {
      t = v.v.s.ptr;
      tn = v.v.s.len;
    } else if (!x && key_in(k.v.s.ptr, k.v.s.len, k_text_keys)) {
      x = v.v.s.ptr;
      xn = v.v.s.len;
    } else if (!any) {
      any = v.v.s.ptr;
      anyn = v.v.s.len;
    }
  }
  if (!x && !t && nstr == 1) {
    x = any;
    xn = anyn;
  }
  if (!x && !t)
    return 0;
  return text_push(o, t, tn, x, xn) < 0 ? -1 : 0;
}

static int json_array(out_t *o, jiwa_mp_reader_t *r, uint32_t count,
                      unsigned depth);

/* Items of an object: its first array member, a single item, or a map of
 * title -> text. r is after the map header. */
static int json_object(out_t *o, jiwa_mp_reader_t *r, uint32_t count,
                       unsigned depth) {
  jiwa_mp_reader_t start = *r;
  /* 1: the first member holding an array */
  for (uint32_t i = 0; i < count; i++) {
    jiwa_mp_item_t v;
    if (jiwa_mp_skip(r) < 0)
      return 1;
    jiwa_mp_reader_t save = *r;
    if (jiwa_mp_next(r, &v) < 0)
      return 1;
    if (v.type == JIWA_MP_ARRAY && v.v.count > 0)
      return json_array(o, r, v.v.count, depth + 1);
    if (v.type == JIWA_MP_MAP && depth < 3) {
      size_t before = o->l->n;
      int rc = json_object(o, r, v.v.count, depth + 1);
      if (rc < 0 || o->l->n > before)
        return rc;
    }
    *r = save;
    if (jiwa_mp_skip(r) < 0)
      return 1;
  }
  /* 2: an item object, or 3: title -> text pairs */
  *r = start;
  int has_named = 0;
  for (uint32_t i = 0; i < count; i++) {
    jiwa_mp_item_t k;
    if (jiwa_mp_next(r, &k) < 0)
      return 1;
    if (k.type == JIWA_MP_STR && (key_in(k.v.s.ptr, k.v.s.len, k_text_keys) ||
                                  key_in(k.v.s.ptr, k.v.s.len, k_title_keys)))
      has_named = 1;
    if (jiwa_mp_skip(r) < 0)
      return 1;
  }
  *r = start;
  if (has_named)
    return json_map_item(o, r, count);
  for (uint32_t i = 0; i < count; i++) {
    jiwa_mp_item_t k, v;
    if (jiwa_mp_next(r, &k) < 0)
      return 1;
    jiwa_mp_reader_t save = *r;
    if (jiwa_mp_next(r, &v) < 0)
      return 1;
    if (k.type == JIWA_MP_STR && v.type == JIWA_MP_STR) {
      if (text_push(o, k.v.s.ptr, k.v.s.len, v.v.s.ptr, v.v.s.len) < 0)
        return -1;
    } else if (v.type == JIWA_MP_ARRAY || v.type == JIWA_MP_MAP) {
      *r = save;
      if (jiwa_mp_skip(r) < 0)
        return 1;
    }
  }
  return 0;
}

static int json_array(out_t *o, jiwa_mp_reader_t *r, uint32_t count,
                      unsigned depth) {
  for (uint32_t i = 0; i < count; i++) {
    jiwa_mp_reader_t save = *r;
    jiwa_mp_item_t v;
    if (jiwa_mp_next(r, &v) < 0)
      return 1;
    int rc = 0;
    if (v.type == JIWA_MP_STR) {
      if (add_raw(o, v.v.s.ptr, v.v.s.len, 1) < 0)
        return -1;
    } else if (v.type == JIWA_MP_MAP) {
      rc = json_map_item(o, r, v.v.count);
    } else if (v.type == JIWA_MP_ARRAY && depth < 3) {
      rc = json_array(o, r, v.v.count, depth + 1);
    } else if (v.type == JIWA_MP_ARRAY) {
      *r = save;
      rc = jiwa_mp_skip(r) < 0 ? 1 : 0;
    }
    if (rc)
      return rc;
  }
  return 0;
}

/* Try s[0..n) as JSON. Returns 1 if it produced items, 0 if not, -1 OOM. */
static int try_json(out_t *o, const char *s, size_t n) {
  while (n && is_sp((unsigned char)s[0]))
    s++, n--;
  if (!n || (s[0] != '[' && s[0] != '{'))
    return 0;
  jiwa_json_limits_t lim = {.max_input = n, .max_depth = 16};
  char *mp = NULL;
  size_t mpl = 0;
  int rc = jiwa_json_to_mp(s, n, &lim, &mp, &mpl, NULL);
  if (rc == JIWA_ENOMEM)
    return -1;
  if (rc < 0)
    return 0;
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, mp, mpl);
  jiwa_mp_item_t v;
  rc = 0;
  if (jiwa_mp_next(&r, &v) == 0) {
    if (v.type == JIWA_MP_ARRAY)
      rc = json_array(o, &r, v.v.count, 0);
    else if (v.type == JIWA_MP_MAP)
      rc = json_object(o, &r, v.v.count, 0);
  }
  free(mp);
  if (rc < 0)
    return -1;
  return o->l->n > 0 || o->l->duplicates > 0 ? 1 : 0;
}

/* ---- lines -------------------------------------------------------------- */

typedef enum {
  L_BLANK,
  L_TEXT,
  L_FENCE,
  L_RULE,   /* ---, ***, [, ], {, } alone */
  L_HEAD,
  L_NUM,
  L_BULLET,
  L_BOLD,   /* text starting with a closed bold phrase */
  L_QUOTED, /* "a JSON string", */
} kind_t;

typedef struct {
  size_t off, len;  /* content (after indentation and marker) */
  unsigned indent;
  kind_t kind;
  unsigned level; /* heading level 1-6 */
} line_t;

/* Bullet marker length at p (0 if none); it must be followed by a blank. */
static size_t bullet_len(const unsigned char *p, size_t n) {
  size_t m = 0;
  if (n >= 1 && (p[0] == '-' || p[0] == '*' || p[0] == '+'))
    m = 1;
  else if (n >= 2 && p[0] == 0xc2 && p[1] == 0xb7)
    m = 2; /* · */
  else if (n >= 3 && p[0] == 0xe2 &&
           ((p[1] == 0x80 && (p[2] == 0xa2 || p[2] == 0x93 || p[2] == 0x94 ||
                              p[2] == 0xa3)) ||
            (p[1] == 0x96 && (p[2] == 0xaa || p[2] == 0xb8)) ||
            (p[1] == 0x97 && (p[2] == 0xa6 || p[2] == 0x8f))))
    m = 3; /* • – — ‣ ▪ ▸ ◦ ● */
  if (!m || m >= n || (p[m] != ' ' && p[m] != '\t'))
    return 0;
  return m + 1;
}

/* Numbered marker length at p: "1. ", "1) ", "1: ", "(1) ", "1 - ". */
static size_t num_len(const unsigned char *p, size_t n) {
  size_t i = 0;
  int paren = 0;
  if (i < n && p[i] == '(') {
    paren = 1;
    i++;
  }
  size_t d0 = i;
  while (i < n && i - d0 < 4 && p[i] >= '0' && p[i] <= '9')
    i++;
  if (i == d0 || i - d0 > 3 || i >= n)
    return 0;
  if (paren) {
    if (p[i] != ')')
      return 0;
    i++;
  } else if (p[i] == '.' || p[i] == ')' || p[i] == ':') {
    i++;
  } else if (p[i] == ' ' && i + 2 < n && p[i + 1] == '-' && p[i + 2] == ' ') {
    i += 2;
  } else {
    return 0;
  }
  if (i < n && (p[i] == ' ' || p[i] == '\t'))
    return i + 1;
  if (i < n && p[i] == '*' && !paren && p[i - 1] == '.')
    return i; /* "1.**Malu**" */
  return 0;
}

static int starts_ci(const char *s, size_t n, const char *pre) {
  size_t k = strlen(pre);
  if (k > n)
    return 0;
  for (size_t i = 0; i < k; i++) {
    int c = (unsigned char)s[i];
    if (c >= 'A' && c <= 'Z')
      c += 32;
    if (c != pre[i])
      return 0;
  }
  return 1;
}

static const char *const k_open_chatter[] = {
    "sure", "of course", "certainly", "absolutely", "here are", "here is",
    "here's", "below are", "below is", "great question", "okay", "ok,",
    "ok!", "happy to", "i'd be happy", "i would be happy", "i'm happy",
    "tentu", "berikut", "baik,", "oke", "dengan senang hati", "ini dia",
    "ini adalah beberapa", "certo", "ecco", "di seguito", "ovviamente",
    "naturalmente", "volentieri", "sicuro", NULL};
static const char *const k_close_chatter[] = {
    "let me know", "i hope", "hope this", "hope that helps", "feel free",
    "if you have", "if you need", "if you'd like", "if you want",
    "would you like", "do you want", "in summary", "in conclusion",
    "semoga", "jika anda membutuhkan", "jika ada pertanyaan",
    "kalau ada pertanyaan", "silakan tanya", "kesimpulan", "spero",
    "fammi sapere", "se hai bisogno", "se hai domande", "se vuoi",
    "in sintesi", "in conclusione", "buona fortuna", "good luck", NULL};

static int chatter_in(const char *s, size_t n, const char *const *set) {
  for (size_t i = 0; set[i]; i++)
    if (starts_ci(s, n, set[i])) {
      size_t k = strlen(set[i]);
      /* a word prefix only: "sure" but not "surely", "ok," is complete */
      if (k == n || !((s[k] | 32) >= 'a' && (s[k] | 32) <= 'z') ||
          set[i][k - 1] == ',' || set[i][k - 1] == '!')
        return 1;
    }
  return 0;
}

static int is_closing(const char *s, size_t n) {
  return chatter_in(s, n, k_close_chatter);
}

static int is_chatter(const char *s, size_t n) {
  if (chatter_in(s, n, k_open_chatter) || chatter_in(s, n, k_close_chatter))
    return 1;
  /* a lone line introducing what follows: "...about Balinese culture:" */
  return n > 0 && s[n - 1] == ':';
}

static int is_upper_start(const char *s, size_t n) {
  unsigned char c = n ? (unsigned char)s[0] : 0;
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0xc0 ||
         c == '"' || c == '*';
}

/* Classify one line s[0..n) (without its end of line). */
static void classify(const char *base, size_t off, size_t n, line_t *ln) {
  const unsigned char *p = (const unsigned char *)base + off;
  size_t i = 0;
  unsigned ind = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\t')) {
    ind += p[i] == '\t' ? 4 : 1;
    i++;
  }
  size_t e = n;
  while (e > i && is_sp(p[e - 1]))
    e--;
  ln->indent = ind;
  ln->level = 0;
  ln->off = off + i;
  ln->len = e - i;
  if (i == e) {
    ln->kind = L_BLANK;
    return;
  }
  const unsigned char *c = p + i;
  size_t cn = e - i;
  if (cn >= 3 && c[0] == '`' && c[1] == '`' && c[2] == '`') {
    ln->kind = L_FENCE;
    return;
  }
  int rule = cn >= 3 && (c[0] == '-' || c[0] == '*' || c[0] == '_' ||
                         c[0] == '=');
  for (size_t k = 0; rule && k < cn; k++)
    rule = c[k] == c[0] || c[k] == ' ';
  if (rule || (cn <= 2 && (c[0] == '[' || c[0] == ']' || c[0] == '{' ||
                           c[0] == '}'))) {
    ln->kind = L_RULE;
    return;
  }
  if (c[0] == '#') {
    size_t h = 0;
    while (h < cn && c[h] == '#')
      h++;
    if (h <= 6 && h < cn && (c[h] == ' ' || c[h] == '\t')) {
      size_t a = h, z = cn;
      while (a < z && (c[a] == ' ' || c[a] == '\t'))
        a++;
      while (z > a && (c[z - 1] == '#' || c[z - 1] == ' '))
        z--;
      size_t nl = num_len(c + a, z - a);
      a += nl;
      ln->off += a;
      ln->len = z - a;
      ln->kind = ln->len ? L_HEAD : L_RULE;
      ln->level = (unsigned)h;
      return;
    }
  }
  size_t m = num_len(c, cn);
  if (m) {
    ln->kind = L_NUM;
  } else if ((m = bullet_len(c, cn))) {
    ln->kind = L_BULLET;
  } else {
    ln->kind = L_TEXT;
    if (cn >= 5 && (c[0] == '*' || c[0] == '_') && c[1] == c[0]) {
      for (size_t k = 2; k + 1 < cn && k < 300; k++)
        if (c[k] == c[0] && c[k + 1] == c[0]) {
          if (k > 2)
            ln->kind = L_BOLD;
          break;
        }
    } else if (cn >= 2 && c[0] == '"' &&
               (c[cn - 1] == '"' || (cn >= 3 && c[cn - 1] == ',' &&
                                     c[cn - 2] == '"'))) {
      ln->kind = L_QUOTED;
    }
    return;
  }
  while (m < cn && (c[m] == ' ' || c[m] == '\t'))
    m++;
  ln->off += m;
  ln->len = cn - m;
  if (!ln->len)
    ln->kind = L_BLANK;
}

/* Growable scratch for assembling one item. */
typedef struct {
  char *p;
  size_t n, cap;
} buf_t;

static int buf_reserve(buf_t *b, size_t need) {
  if (need <= b->cap)
    return 0;
  size_t c = b->cap ? b->cap : 256;
  while (c < need)
    c *= 2;
  char *q = realloc(b->p, c);
  if (!q)
    return -1;
  b->p = q;
  b->cap = c;
  return 0;
}

/* Append a line after @p sep ("\n", "\n\n" for a new paragraph, ";\n"
 * for a sub-item) when not empty, keeping at most @p limit bytes in all. */
static int buf_addsep(buf_t *b, const char *sep, const char *s, size_t n,
                      size_t limit) {
  size_t nl = b->n ? strlen(sep) : 0;
  if (b->n + nl >= limit)
    return 0;
  if (b->n + nl + n > limit)
    n = limit - b->n - nl;
  if (buf_reserve(b, b->n + nl + n) < 0)
    return -1;
  memcpy(b->p + b->n, sep, nl);
  b->n += nl;
  memcpy(b->p + b->n, s, n);
  b->n += n;
  return 0;
}

static int buf_add(buf_t *b, const char *s, size_t n, size_t limit) {
  return buf_addsep(b, "\n", s, n, limit);
}

/* Unescape a quoted JSON-ish line "..." or "...", into b. */
static int add_quoted(out_t *o, buf_t *b, const char *s, size_t n) {
  size_t a = 1, z = n;
  if (z && s[z - 1] == ',')
    z--;
  if (z > a && s[z - 1] == '"')
    z--;
  b->n = 0;
  if (buf_reserve(b, z - a + 1) < 0) {
    o->oom = 1;
    return -1;
  }
  for (size_t i = a; i < z; i++) {
    char c = s[i];
    if (c == '\\' && i + 1 < z) {
      char d = s[++i];
      c = d == 'n' || d == 't' || d == 'r' ? ' ' : d;
    }
    b->p[b->n++] = c;
  }
  return add_raw(o, b->p, b->n, 1);
}

/* A heading (title) with its body; without a body the heading alone is
 * split like any item ("Malu — shame"). */
static int add_titled(out_t *o, const char *t, size_t tn, const char *x,
                      size_t xn) {
  while (xn && is_sp((unsigned char)x[0]))
    x++, xn--;
  if (!xn)
    return add_raw(o, t, tn, 1);
  return text_push(o, t, tn, x, xn);
}

static int parse_lines(out_t *o, const char *s, size_t n) {
  size_t nl = 1;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\n' || (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n')))
      nl++;
  line_t *L = malloc(nl * sizeof *L);
  if (!L)
    return -1;
  size_t k = 0, st = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || s[i] == '\n' || s[i] == '\r') {
      classify(s, st, i - st, &L[k++]);
      if (i < n && s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
        i++;
      st = i + 1;
    }
  }
  nl = k;
  /* counts; lines inside a ``` fence are ordinary lines */
  size_t cnt[L_QUOTED + 1] = {0};
  unsigned base = ~0u;
  for (size_t i = 0; i < nl; i++) {
    cnt[L[i].kind]++;
    if ((L[i].kind == L_NUM || L[i].kind == L_BULLET) &&
        L[i].indent < base) {
      base = L[i].indent;
    }
  }
  buf_t b = {0};
  size_t lim = o->max_item_len * 2 + 1024; /* raw bytes kept per item */
  int rc = 0;
  jiwa_list_format_t fmt = JIWA_LIST_NONE;
  if (cnt[L_NUM] + cnt[L_BULLET]) {
    size_t top_num = 0, top_bul = 0;
    int in = 0, blank = 0;
    for (size_t i = 0; i <= nl && rc == 0; i++) {
      const line_t *ln = i < nl ? &L[i] : NULL;
      int top = ln && (ln->kind == L_NUM || ln->kind == L_BULLET) &&
                ln->indent <= base;
      int ends = !ln || top || ln->kind == L_HEAD || ln->kind == L_FENCE ||
                 ln->kind == L_RULE ||
                 /* a section label between groups: "**Family**", "Food:" */
                 (ln->indent <= base &&
                  (ln->kind == L_BOLD ||
                   (ln->kind == L_TEXT && s[ln->off + ln->len - 1] == ':')));
      if (in && !ends && ln->kind != L_BLANK) {
        /* continuation: deeper lines always, lazy lines before a blank */
        if (ln->indent > base || !blank) {
          if (ln->indent <= base && is_closing(s + ln->off, ln->len))
            ends = 1;
        } else {
          ends = 1;
        }
      }
      if (in && ends) {
        rc = add_raw(o, b.p, b.n, 1);
        in = 0;
      }
      if (!ln)
        break;
      if (ln->kind == L_BLANK) {
        blank = 1;
        continue;
      }
      if (top) {
        b.n = 0;
        if (buf_add(&b, s + ln->off, ln->len, lim) < 0)
          rc = -1;
        in = 1;
        if (ln->kind == L_NUM)
          top_num++;
        else
          top_bul++;
      } else if (in) {
        const char *sep = "\n";
        if (ln->kind == L_NUM || ln->kind == L_BULLET) {
          char e = b.n ? b.p[b.n - 1] : '.';
          if (e != ':' && e != ';' && e != '.' && e != ',' && e != '!' &&
              e != '?')
            sep = ";\n";
        } else if (blank) {
          sep = "\n\n";
        }
        if (buf_addsep(&b, sep, s + ln->off, ln->len, lim) < 0)
          rc = -1;
      }
      blank = 0;
    }
    fmt = top_num >= top_bul ? JIWA_LIST_NUMBERED : JIWA_LIST_BULLETS;
  } else if (cnt[L_QUOTED] >= 2) {
    for (size_t i = 0; i < nl && rc == 0; i++)
      if (L[i].kind == L_QUOTED)
        rc = add_quoted(o, &b, s + L[i].off, L[i].len);
    fmt = JIWA_LIST_JSON;
  } else if (cnt[L_HEAD] >= 2 || cnt[L_BOLD] >= 2) {
    /* sections: a heading (or a bold-led paragraph) and the paragraphs
     * after it; chatter paragraphs are skipped */
    int heads = cnt[L_HEAD] >= 2;
    int in = 0, blank = 1, skipping = 0, has_body = 0;
    size_t h_off = 0, h_len = 0;
    /* items are the headings of the most frequent level (ties: deeper);
     * others ("# Cultural insights" above "### 1. Nyepi") are dropped with
     * their text */
    unsigned level = 0;
    if (heads) {
      size_t lv[7] = {0};
      for (size_t i = 0; i < nl; i++)
        if (L[i].kind == L_HEAD)
          lv[L[i].level]++;
      for (unsigned v = 1; v <= 6; v++)
        if (lv[v] && lv[v] >= lv[level])
          level = v;
    }
    for (size_t i = 0; i <= nl && rc == 0; i++) {
      const line_t *ln = i < nl ? &L[i] : NULL;
      int start = ln && (heads ? ln->kind == L_HEAD && ln->level == level
                               : (ln->kind == L_BOLD && blank) ||
                                     ln->kind == L_HEAD);
      int other = ln && heads && ln->kind == L_HEAD && ln->level != level;
      int para_start = ln && blank && ln->kind != L_BLANK;
      if (in && (!ln || start || other)) {
        rc = heads ? add_titled(o, s + h_off, h_len, b.p ? b.p : "", b.n)
                   : add_raw(o, b.p, b.n, 1);
        in = 0;
      }
      if (!ln)
        break;
      if (ln->kind == L_BLANK || ln->kind == L_FENCE || ln->kind == L_RULE) {
        blank = 1;
        continue;
      }
      if (other) {
        skipping = 1;
        continue;
      }
      if (start) {
        skipping = 0;
        b.n = 0;
        if (heads) {
          h_off = ln->off;
          h_len = ln->len;
        } else if (buf_add(&b, s + ln->off, ln->len, lim) < 0) {
          rc = -1;
          break;
        }
        in = 1;
        has_body = 0;
        if (!heads) { /* text after the bold lead on the same line? */
          const char *c = s + ln->off;
          for (size_t q = 2; q + 1 < ln->len; q++)
            if (c[q] == c[0] && c[q + 1] == c[0]) {
              has_body = skip_sep(c, ln->len, q + 2) < ln->len;
              break;
            }
        }
      } else if (in && !skipping) {
        if (para_start && (is_chatter(s + ln->off, ln->len) ||
                           (!heads && has_body))) {
          /* skip the whole paragraph: chatter, or text after a complete
           * bold-led item */
          while (i + 1 < nl && L[i + 1].kind != L_BLANK)
            i++;
        } else if (buf_add(&b, s + ln->off, ln->len, lim) < 0) {
          rc = -1;
        }
        has_body = 1;
      }
      blank = 0;
    }
    fmt = heads ? JIWA_LIST_HEADINGS : JIWA_LIST_BOLD;
  } else {
    /* plain paragraphs; inside one paragraph, lines that each start like
     * a sentence are separate items, otherwise they wrap */
    fmt = JIWA_LIST_PARAGRAPHS;
    for (size_t i = 0; i < nl && rc == 0;) {
      while (i < nl && L[i].kind != L_TEXT && L[i].kind != L_BOLD &&
             L[i].kind != L_HEAD && L[i].kind != L_QUOTED)
        i++;
      size_t a = i;
      while (i < nl && L[i].kind != L_BLANK && L[i].kind != L_FENCE &&
             L[i].kind != L_RULE)
        i++;
      if (a >= i)
        continue;
      int split = i - a >= 2;
      for (size_t j = a + 1; j < i && split; j++)
        split = is_upper_start(s + L[j].off, L[j].len);
      if (split) {
        for (size_t j = a; j < i && rc == 0; j++)
          if (!is_chatter(s + L[j].off, L[j].len))
            rc = add_raw(o, s + L[j].off, L[j].len, 1);
      } else if (!is_chatter(s + L[a].off, L[a].len)) {
        b.n = 0;
        for (size_t j = a; j < i && rc == 0; j++)
          if (buf_add(&b, s + L[j].off, L[j].len, lim) < 0)
            rc = -1;
        if (rc == 0)
          rc = add_raw(o, b.p, b.n, 1);
      }
    }
  }
  free(b.p);
  free(L);
  if (rc == 0 && o->l->n)
    o->l->format = fmt;
  return rc < 0 ? -1 : 0;
}

/* ---- entry -------------------------------------------------------------- */

int jiwa_listparse(const char *text, size_t len,
                   const jiwa_listparse_limits_t *lim, jiwa_list_t **out) {
  if (!out)
    return JIWA_EINVAL;
  *out = NULL;
  if (!text && len)
    return JIWA_EINVAL;
  if (lim && lim->max_item_len && lim->max_item_len < 16)
    return JIWA_EINVAL;
  out_t o = {0};
  size_t max_input = lim && lim->max_input ? lim->max_input
                                           : JIWA_LIST_DEFAULT_MAX_INPUT;
  o.max_items = lim && lim->max_items ? lim->max_items
                                      : JIWA_LIST_DEFAULT_MAX_ITEMS;
  o.max_item_len = lim && lim->max_item_len ? lim->max_item_len
                                            : JIWA_LIST_DEFAULT_MAX_ITEM_LEN;
  if (o.max_items > UINT32_MAX / 4)
    o.max_items = UINT32_MAX / 4;
  o.l = calloc(1, sizeof *o.l);
  if (!o.l)
    return JIWA_ENOMEM;
  if (len > max_input) {
    len = utf8_cut(text, max_input, len);
    o.l->truncated = 1;
  }
  /* hash set sized for max_items (load <= 1/2), capped by the input */
  size_t want = o.max_items < len / 2 + 8 ? o.max_items : len / 2 + 8;
  o.hcap = 16;
  while (o.hcap < want * 2)
    o.hcap *= 2;
  o.hh = calloc(o.hcap, sizeof *o.hh);
  o.hi = calloc(o.hcap, sizeof *o.hi);
  int rc = 0;
  if (!o.hh || !o.hi) {
    rc = JIWA_ENOMEM;
    goto done;
  }
  /* the number of items can never exceed what the hash set holds */
  if (o.max_items > o.hcap / 2)
    o.max_items = o.hcap / 2;
  int got = 0;
  if (!len) /* text may be NULL: nothing to read */
    goto done;
  /* 1: JSON inside the first fences that hold some */
  unsigned fences = 0;
  for (size_t i = 0; i + 3 <= len && !got && fences < 8;) {
    const char *f = memchr(text + i, '`', len - i);
    if (!f || (size_t)(f - text) + 3 > len)
      break;
    size_t at = (size_t)(f - text);
    if (f[1] != '`' || f[2] != '`' || (at > 0 && text[at - 1] != '\n' &&
                                       text[at - 1] != '\r' &&
                                       text[at - 1] != ' ')) {
      i = at + 1;
      continue;
    }
    fences++;
    const char *eol = memchr(f, '\n', len - at);
    if (!eol)
      break;
    size_t cs = (size_t)(eol - text) + 1;
    size_t ce = len;
    for (size_t j = cs; j + 3 <= len; j++) {
      const char *g = memchr(text + j, '`', len - j);
      if (!g || (size_t)(g - text) + 3 > len)
        break;
      j = (size_t)(g - text);
      if (g[1] == '`' && g[2] == '`') {
        ce = j;
        break;
      }
    }
    int r = try_json(&o, text + cs, ce - cs);
    if (r < 0) {
      rc = JIWA_ENOMEM;
      goto done;
    }
    got = r;
    i = ce + 3;
  }
  /* 2: from the first '[' or '{' to the last ']' or '}' */
  for (int pass = 0; pass < 2 && !got; pass++) {
    char open = pass ? '{' : '[', close = pass ? '}' : ']';
    const char *a = memchr(text, open, len);
    if (!a)
      continue;
    size_t z = len;
    while (z > (size_t)(a - text) && text[z - 1] != close)
      z--;
    if (z <= (size_t)(a - text))
      continue;
    int r = try_json(&o, a, (size_t)(text + z - a));
    if (r < 0) {
      rc = JIWA_ENOMEM;
      goto done;
    }
    got = r;
  }
  if (got) {
    o.l->format = o.l->n ? JIWA_LIST_JSON : JIWA_LIST_NONE;
    goto done;
  }
  o.l->duplicates = 0;
  if (parse_lines(&o, text, len) < 0 || o.oom)
    rc = JIWA_ENOMEM;
done:
  if (o.oom && !rc)
    rc = JIWA_ENOMEM;
  if (o.keys)
    for (size_t i = 0; i < o.l->n; i++)
      free(o.keys[i]);
  free(o.keys);
  free(o.hh);
  free(o.hi);
  free(o.norm);
  if (rc < 0) {
    jiwa_list_free(o.l);
    return rc;
  }
  *out = o.l;
  return 0;
}

void jiwa_list_free(jiwa_list_t *l) {
  if (!l)
    return;
  for (size_t i = 0; i < l->n; i++) {
    free(l->items[i].title);
    free(l->items[i].text);
  }
  free(l->items);
  free(l);
}

const char *jiwa_list_format_name(jiwa_list_format_t f) {
  switch (f) {
  case JIWA_LIST_JSON:
    return "json";
  case JIWA_LIST_NUMBERED:
    return "numbered";
  case JIWA_LIST_BULLETS:
    return "bullets";
  case JIWA_LIST_HEADINGS:
    return "headings";
  case JIWA_LIST_BOLD:
    return "bold";
  case JIWA_LIST_PARAGRAPHS:
    return "paragraphs";
  default:
    return "none";
  }
}
