/* The tone adapter's fact check (see jiwa_facts.h). */
#include "jiwa_facts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"

#define TOK_MAX 48 /* bytes of one word kept (longer words are cut) */

typedef enum { T_WORD, T_NUM, T_SYM } tok_kind_t;

typedef struct {
  tok_kind_t kind;
  char s[TOK_MAX]; /* lower-cased word, or the symbol */
  double v;        /* T_NUM */
  int pct;         /* T_NUM directly followed by '%' */
} tok_t;

typedef struct {
  tok_t *t;
  size_t n, cap;
} toks_t;

static int is_letter(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static char lower(unsigned char c) {
  return (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

static tok_t *push(toks_t *ts, tok_kind_t kind) {
  if (ts->n == ts->cap) {
    size_t cap = ts->cap ? ts->cap * 2 : 64;
    tok_t *t = realloc(ts->t, cap * sizeof *t);
    if (!t)
      return NULL;
    ts->t = t;
    ts->cap = cap;
  }
  tok_t *t = &ts->t[ts->n++];
  memset(t, 0, sizeof *t);
  t->kind = kind;
  return t;
}

/* A number as written: digit groups split by '.' or ','. The last
 * separator is a decimal point when the group after it is not 3 digits
 * long or when it differs from an earlier one ("5,000,000.50"); every
 * other separator groups thousands ("5.000.000", "1,500"). */
static double parse_number(const char *s, size_t n) {
  char buf[64];
  size_t last = n, nsep = 0;
  char first_sep = 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '.' || s[i] == ',') {
      if (!first_sep)
        first_sep = s[i];
      last = i;
      nsep++;
    }
  int decimal = 0;
  if (nsep > 0) {
    size_t after = n - last - 1;
    decimal = after != 3 || (s[last] != first_sep);
  }
  size_t k = 0;
  for (size_t i = 0; i < n && k < sizeof buf - 1; i++) {
    if (is_digit((unsigned char)s[i]))
      buf[k++] = s[i];
    else if (i == last && decimal)
      buf[k++] = '.';
  }
  buf[k] = 0;
  return strtod(buf, NULL);
}

static int tokenize(const char *s, size_t n, toks_t *ts) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    if (is_digit(c)) {
      size_t j = i + 1;
      while (j < n && (is_digit((unsigned char)s[j]) ||
                       ((s[j] == '.' || s[j] == ',') && j + 1 < n &&
                        is_digit((unsigned char)s[j + 1]))))
        j++;
      tok_t *t = push(ts, T_NUM);
      if (!t)
        return -1;
      t->v = parse_number(s + i, j - i);
      snprintf(t->s, sizeof t->s, "%.*s", (int)(j - i < 40 ? j - i : 40),
               s + i);
      if (j < n && s[j] == '%') {
        t->pct = 1;
        j++;
      }
      i = j;
    } else if (is_letter(c)) {
      tok_t *t = push(ts, T_WORD);
      if (!t)
        return -1;
      size_t k = 0, j = i;
      while (j < n) {
        unsigned char d = (unsigned char)s[j];
        int inner = (d == '\'' || d == '-') && j + 1 < n &&
                    is_letter((unsigned char)s[j + 1]) && k > 0;
        if (!(is_letter(d) || is_digit(d) || inner))
          break;
        /* "Rp5.000", "$5": a currency glued to its amount */
        if (is_digit(d) && k > 0 &&
            (strcmp(t->s, "rp") == 0 || strcmp(t->s, "idr") == 0 ||
             strcmp(t->s, "usd") == 0 || strcmp(t->s, "eur") == 0))
          break;
        if (k < TOK_MAX - 1)
          t->s[k++] = lower(d);
        t->s[k] = 0;
        j++;
      }
      i = j;
    } else {
      if (c == '$' || c == '%' || (c == 0xe2 && i + 2 < n &&
                                   (unsigned char)s[i + 1] == 0x82 &&
                                   (unsigned char)s[i + 2] == 0xac)) {
        tok_t *t = push(ts, T_SYM);
        if (!t)
          return -1;
        snprintf(t->s, sizeof t->s, "%s",
                 c == '$' ? "usd" : c == '%' ? "%" : "eur");
        i += c == 0xe2 ? 3 : 1;
        continue;
      }
      i++;
    }
  }
  return 0;
}

/* ---- word lists ------------------------------------------------------------ */

typedef struct {
  const char *word;
  const char *tag;
} tagword_t;

static const tagword_t multipliers[] = {
    {"ribu", "1e3"},       {"rb", "1e3"},       {"k", "1e3"},
    {"thousand", "1e3"},   {"mila", "1e3"},     {"juta", "1e6"},
    {"jt", "1e6"},         {"million", "1e6"},  {"millions", "1e6"},
    {"milioni", "1e6"},    {"milione", "1e6"},
    {"miliar", "1e9"},     {"milyar", "1e9"},   {"billion", "1e9"},
    {"miliardi", "1e9"},   {"miliardo", "1e9"}, {NULL, NULL}};

static const tagword_t measures[] = {
    {"%", "%"},          {"percent", "%"},     {"per", "%?"},
    {"persen", "%"},     {"percento", "%"},    {"rp", "IDR"},
    {"idr", "IDR"},      {"rupiah", "IDR"},    {"usd", "USD"},
    {"dollar", "USD"},   {"dollars", "USD"},   {"dolar", "USD"},
    {"dollari", "USD"},  {"eur", "EUR"},       {"euro", "EUR"},
    {"euros", "EUR"},    {"hour", "hour"},     {"hours", "hour"},
    {"jam", "hour"},     {"ora", "hour"},      {"ore", "hour"},
    {"minute", "min"},   {"minutes", "min"},   {"menit", "min"},
    {"minuto", "min"},   {"minuti", "min"},    {"day", "day"},
    {"days", "day"},     {"hari", "day"},      {"giorno", "day"},
    {"giorni", "day"},   {"week", "week"},     {"weeks", "week"},
    {"minggu", "week"},  {"pekan", "week"},    {"settimana", "week"},
    {"settimane", "week"}, {"month", "month"}, {"months", "month"},
    {"bulan", "month"},  {"mese", "month"},    {"mesi", "month"},
    {"year", "year"},    {"years", "year"},    {"tahun", "year"},
    {"anno", "year"},    {"anni", "year"},     {NULL, NULL}};

/* Document names, canonical form second. Up to three words. */
static const tagword_t documents[] = {
    {"kitas", "kitas"},
    {"kitap", "kitap"},
    {"voa", "voa"},
    {"e-voa", "voa"},
    {"evoa", "voa"},
    {"visa on arrival", "voa"},
    {"npwp", "npwp"},
    {"nib", "nib"},
    {"pt pma", "pt pma"},
    {"pma", "pt pma"},
    {"pt", "pt"},
    {"cv", "cv"},
    {"ktp", "ktp"},
    {"kk", "kk"},
    {"rptka", "rptka"},
    {"imta", "imta"},
    {"skck", "skck"},
    {"sktt", "sktt"},
    {"stm", "stm"},
    {"bpjs", "bpjs"},
    {"oss", "oss"},
    {"lkpm", "lkpm"},
    {"siup", "siup"},
    {"tdp", "tdp"},
    {"pbg", "pbg"},
    {"imb", "imb"},
    {"shm", "shm"},
    {"hgb", "hgb"},
    {"hak pakai", "hak pakai"},
    {"hak milik", "shm"},
    {"akta", "akta"},
    {"deed", "akta"},
    {"atto", "akta"},
    {"notary", "notary"},
    {"notaris", "notary"},
    {"notaio", "notary"},
    {"passport", "passport"},
    {"paspor", "passport"},
    {"passaporto", "passport"},
    {"work permit", "work permit"},
    {"izin kerja", "work permit"},
    {"permesso di lavoro", "work permit"},
    {"golden visa", "golden visa"},
    {"second home", "second home visa"},
    {"izin tinggal", "stay permit"},
    {"stay permit", "stay permit"},
    {"permesso di soggiorno", "stay permit"},
    {"tax id", "npwp"},
    {NULL, NULL}};

static const char *const negations[] = {
    "not",    "no",     "never",  "none",   "nobody", "nothing", "neither",
    "nor",    "without", "cannot", "tidak", "tak",     "bukan",  "jangan",
    "belum",  "nggak",  "enggak", "gak",    "ga",      "tanpa",  "non",
    "mai",    "nessun", "nessuno", "nessuna", "niente", "nulla",  "senza",
    "né",     NULL};

/* Reassurances that carry no fact: their negation is not counted. */
static const char *const idioms[] = {
    "no worries",          "no problem",         "no problems",
    "don't worry",         "do not worry",       "don't hesitate",
    "do not hesitate",     "never mind",         "tidak apa-apa",
    "tak apa-apa",         "gak apa-apa",        "nggak apa-apa",
    "ga apa-apa",          "tidak masalah",      "jangan khawatir",
    "jangan ragu",         "tak perlu khawatir", "tidak perlu khawatir",
    "non preoccuparti",    "non si preoccupi",   "non esitare",
    "non esiti",           "nessun problema",    "non c'è problema",
    "non c'e problema",    NULL};

static const char *lookup(const tagword_t *list, const char *w) {
  for (; list->word; list++)
    if (strcmp(list->word, w) == 0)
      return list->tag;
  return NULL;
}

/* Does the phrase (space-separated words) start at token @p i? Returns its
 * word count or 0. */
static size_t phrase_at(const toks_t *ts, size_t i, const char *phrase) {
  size_t k = 0;
  const char *p = phrase;
  while (*p) {
    const char *sp = strchr(p, ' ');
    size_t len = sp ? (size_t)(sp - p) : strlen(p);
    if (i + k >= ts->n || ts->t[i + k].kind != T_WORD ||
        strlen(ts->t[i + k].s) != len || memcmp(ts->t[i + k].s, p, len) != 0)
      return 0;
    k++;
    p += len + (sp != NULL);
  }
  return k;
}

/* ---- facts ------------------------------------------------------------------ */

typedef struct {
  char **v;
  size_t n, cap;
} strs_t;

static int strs_add(strs_t *a, const char *s) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 16;
    char **v = realloc(a->v, cap * sizeof *v);
    if (!v)
      return -1;
    a->v = v;
    a->cap = cap;
  }
  if (!(a->v[a->n] = strdup(s)))
    return -1;
  a->n++;
  return 0;
}

static void strs_free(strs_t *a) {
  for (size_t i = 0; i < a->n; i++)
    free(a->v[i]);
  free(a->v);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct {
  strs_t numbers; /* "30 day", "5000000 IDR", "10 %" (a multiset) */
  strs_t docs;    /* canonical document names (a set) */
  int negations;
  char first_neg[TOK_MAX];
} facts_t;

static void facts_free(facts_t *f) {
  strs_free(&f->numbers);
  strs_free(&f->docs);
}

static int is_code(const char *w) {
  /* letters and digits mixed, starting with a letter: B211A, E33G, C312 */
  size_t n = strlen(w), digits = 0;
  if (n < 3 || n > 12)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (is_digit((unsigned char)w[i]))
      digits++;
    else if (!(w[i] >= 'a' && w[i] <= 'z'))
      return 0;
  }
  return digits > 0 && digits < n;
}

static int extract(const toks_t *ts, facts_t *f) {
  char buf[96];
  for (size_t i = 0; i < ts->n; i++) {
    const tok_t *t = &ts->t[i];
    if (t->kind == T_NUM) {
      double v = t->v;
      const char *tag = t->pct ? "%" : NULL;
      size_t j = i + 1;
      const char *m;
      if (j < ts->n && ts->t[j].kind == T_WORD &&
          (m = lookup(multipliers, ts->t[j].s))) {
        v *= strtod(m, NULL);
        j++;
      }
      for (size_t k = j; !tag && k < ts->n && k < i + 4; k++) {
        const char *mt = lookup(measures, ts->t[k].s);
        if (mt && strcmp(mt, "%?") == 0) /* "per cento" / "per cent" */
          mt = k + 1 < ts->n && (strcmp(ts->t[k + 1].s, "cento") == 0 ||
                                 strcmp(ts->t[k + 1].s, "cent") == 0)
                   ? "%"
                   : NULL;
        if (mt)
          tag = mt;
      }
      if (!tag && i > 0) { /* "Rp 5 juta", "$500", "€ 20" */
        const char *mt = lookup(measures, ts->t[i - 1].s);
        if (mt && (strcmp(mt, "IDR") == 0 || strcmp(mt, "USD") == 0 ||
                   strcmp(mt, "EUR") == 0))
          tag = mt;
      }
      snprintf(buf, sizeof buf, "%.12g%s%s", v, tag ? " " : "",
               tag ? tag : "");
      if (strs_add(&f->numbers, buf))
        return -1;
      continue;
    }
    if (t->kind != T_WORD)
      continue;
    /* idioms first: their words are skipped as a whole */
    size_t skip = 0;
    for (const char *const *id = idioms; *id && !skip; id++)
      skip = phrase_at(ts, i, *id);
    if (skip) {
      i += skip - 1;
      continue;
    }
    size_t dn = 0;
    const char *doc = NULL;
    for (const tagword_t *d = documents; d->word; d++) {
      size_t k = phrase_at(ts, i, d->word);
      if (k > dn) {
        dn = k;
        doc = d->tag;
      }
    }
    if (!doc && is_code(t->s))
      doc = t->s;
    if (doc) {
      int seen = 0;
      for (size_t k = 0; k < f->docs.n && !seen; k++)
        seen = strcmp(f->docs.v[k], doc) == 0;
      if (!seen && strs_add(&f->docs, doc))
        return -1;
      i += dn ? dn - 1 : 0;
      continue;
    }
    size_t len = strlen(t->s);
    int neg = len > 3 && strcmp(t->s + len - 3, "n't") == 0;
    for (const char *const *ng = negations; *ng && !neg; ng++)
      neg = strcmp(*ng, t->s) == 0;
    if (neg) {
      if (!f->negations++)
        snprintf(f->first_neg, sizeof f->first_neg, "%s", t->s);
    }
  }
  if (f->numbers.n)
    qsort(f->numbers.v, f->numbers.n, sizeof *f->numbers.v, cmp_str);
  if (f->docs.n)
    qsort(f->docs.v, f->docs.n, sizeof *f->docs.v, cmp_str);
  return 0;
}

static int facts_of(const char *s, size_t n, facts_t *f) {
  toks_t ts = {0};
  memset(f, 0, sizeof *f);
  int rc = tokenize(s, n, &ts) || extract(&ts, f) ? -1 : 0;
  free(ts.t);
  return rc;
}

/* First element of sorted @p a missing from sorted @p b (multiset). */
static const char *missing(const strs_t *a, const strs_t *b) {
  size_t i = 0, j = 0;
  while (i < a->n) {
    int c = j < b->n ? strcmp(a->v[i], b->v[j]) : -1;
    if (c == 0) {
      i++;
      j++;
    } else if (c < 0) {
      return a->v[i];
    } else {
      j++;
    }
  }
  return NULL;
}

int jiwa_facts_compare(const char *orig, size_t olen, const char *rewrite,
                       size_t rlen, char *why, size_t whylen) {
  if (why && whylen)
    why[0] = 0;
  if (!orig || !rewrite || olen > JIWA_FACTS_MAX_TEXT ||
      rlen > JIWA_FACTS_MAX_TEXT)
    return JIWA_EINVAL;
  facts_t a, b;
  if (facts_of(orig, olen, &a)) {
    facts_free(&a);
    return JIWA_ENOMEM;
  }
  if (facts_of(rewrite, rlen, &b)) {
    facts_free(&a);
    facts_free(&b);
    return JIWA_ENOMEM;
  }
  int changed = 1;
  const char *m;
  char w[256];
  if ((m = missing(&a.numbers, &b.numbers)))
    snprintf(w, sizeof w, "number %s is missing from the rewrite", m);
  else if ((m = missing(&b.numbers, &a.numbers)))
    snprintf(w, sizeof w, "number %s in the rewrite is not in the original",
             m);
  else if ((m = missing(&a.docs, &b.docs)))
    snprintf(w, sizeof w, "document '%s' is missing from the rewrite", m);
  else if ((m = missing(&b.docs, &a.docs)))
    snprintf(w, sizeof w,
             "document '%s' in the rewrite is not in the original", m);
  else if (a.negations != b.negations)
    snprintf(w, sizeof w,
             "negations: %d in the original%s%s%s, %d in the rewrite%s%s%s",
             a.negations, a.negations ? " ('" : "", a.first_neg,
             a.negations ? "')" : "", b.negations, b.negations ? " ('" : "",
             b.first_neg, b.negations ? "')" : "");
  else
    changed = 0;
  if (changed && why && whylen)
    snprintf(why, whylen, "%s", w);
  facts_free(&a);
  facts_free(&b);
  return changed;
}
