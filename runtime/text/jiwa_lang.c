/* Language detection: lexicons + character-trigram profiles (jiwa_lang.h). */
#include "jiwa_lang.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa_textnorm.h"

#include "jiwa_lang_lex.h"
#include "jiwa_lang_profiles.h"

/* Lexicon languages: ours first (same order as the trigram profiles), then
 * the ones that only exist to be recognised as "unknown". */
enum { L_EN, L_ID, L_IT, L_DE, L_FR, L_ES, L_PT, L_NL, L_JV, NLEX };
#define NOURS 3

/* ---- tuning (chosen on tests/data/lang/labelled.tsv, see README) -------- */
#define W_TRI 0.30     /* per nat of trigram log-likelihood */
#define W_LEX 2.20     /* per lexicon weight point */
#define OTHER_BIAS 1.0 /* other languages must beat ours by this much */
#define GIB_AVG -9.6   /* nats/trigram below which unlisted text is noise */
#define GIB_AVG_LONG -7.6
#define GIB_MARGIN 1.5
#define W_FOREIGN 2.2 /* per letter with a diacritic we do not use */
#define TEMP 1.0

/* ---- tables, built once ------------------------------------------------- */

typedef struct {
  uint32_t off; /* key in g_pool */
  uint8_t len;
  uint8_t used;
  uint8_t neutral;
  uint8_t stop; /* bit per language (ours): function word */
  uint8_t w[NLEX];
} lex_ent_t;

#define LEX_SLOTS 8192u /* power of two, well above the word count */
#define LEX_SEED UINT64_C(0x6c65786963616c31)
#define TRI_SIZE (JIWA__TRI_NSYM * JIWA__TRI_NSYM * JIWA__TRI_NSYM)

static lex_ent_t g_lex[LEX_SLOTS];
static char g_pool[65536];
static size_t g_pool_len;
static int16_t g_tri[TRI_SIZE][NOURS];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static const lex_ent_t *find(const char *s, size_t n) {
  if (n == 0 || n > 255)
    return NULL;
  uint32_t i = (uint32_t)jiwa_text_hash64(s, n, LEX_SEED) & (LEX_SLOTS - 1);
  for (;;) {
    const lex_ent_t *e = &g_lex[i];
    if (!e->used)
      return NULL;
    if (e->len == n && memcmp(g_pool + e->off, s, n) == 0)
      return e;
    i = (i + 1) & (LEX_SLOTS - 1);
  }
}

static lex_ent_t *insert(const char *s, size_t n) {
  uint32_t i = (uint32_t)jiwa_text_hash64(s, n, LEX_SEED) & (LEX_SLOTS - 1);
  for (;;) {
    lex_ent_t *e = &g_lex[i];
    if (!e->used) {
      if (g_pool_len + n > sizeof g_pool)
        return NULL; /* cannot happen with the lists we ship */
      memcpy(g_pool + g_pool_len, s, n);
      e->off = (uint32_t)g_pool_len;
      e->len = (uint8_t)n;
      e->used = 1;
      g_pool_len += n;
      return e;
    }
    if (e->len == n && memcmp(g_pool + e->off, s, n) == 0)
      return e;
    i = (i + 1) & (LEX_SLOTS - 1);
  }
}

/* kind: 0 = function word, 1 = chat word, 2 = neutral */
static void load(const char *list, int lang, int kind) {
  const char *p = list;
  while (*p) {
    while (*p == ' ')
      p++;
    const char *w = p;
    while (*p && *p != ' ')
      p++;
    size_t n = (size_t)(p - w);
    if (n == 0)
      continue;
    int weight = 1;
    if (*w == '!') {
      weight = 2;
      w++;
      n--;
    }
    int elided = n > 1 && w[n - 1] == '\'';
    jiwa_text_iter_t it;
    jiwa_token_t t;
    jiwa_text_iter_init(&it, w, n);
    if (!jiwa_text_next(&it, &t))
      continue;
    if (elided && t.len < JIWA_TEXT_MAX_TOKEN)
      t.s[t.len++] = '\'';
    lex_ent_t *e = insert(t.s, t.len);
    if (!e)
      continue;
    if (kind == 2) {
      e->neutral = 1;
      continue;
    }
    if (e->w[lang] < weight)
      e->w[lang] = (uint8_t)weight;
    if (kind == 0 && lang < NOURS)
      e->stop |= (uint8_t)(1u << lang);
  }
}

static void build(void) {
  load(LEX_EN_FUNC, L_EN, 0);
  load(LEX_EN_CHAT, L_EN, 1);
  load(LEX_ID_FUNC, L_ID, 0);
  load(LEX_ID_CHAT, L_ID, 1);
  load(LEX_IT_FUNC, L_IT, 0);
  load(LEX_IT_CHAT, L_IT, 1);
  load(LEX_DE, L_DE, 1);
  load(LEX_FR, L_FR, 1);
  load(LEX_ES, L_ES, 1);
  load(LEX_PT, L_PT, 1);
  load(LEX_NL, L_NL, 1);
  load(LEX_JV, L_JV, 1);
  load(LEX_NEUTRAL, 0, 2); /* last: neutral wins over any list */
  for (size_t k = 0; k < TRI_SIZE; k++)
    for (int l = 0; l < NOURS; l++)
      g_tri[k][l] = jiwa__tri_floor[l];
  for (size_t k = 0; k < JIWA__TRI_COUNT; k++)
    for (int l = 0; l < NOURS; l++)
      g_tri[jiwa__tri[k].key][l] = jiwa__tri[k].lp[l];
}

/* ---- scoring --------------------------------------------------------------
 */

static void add(const lex_ent_t *e, double *lex) {
  for (int l = 0; l < NLEX; l++)
    lex[l] += e->w[l];
}

/* Lexicon evidence of one token: 1 = found, 0 = not, -1 = neutral word. */
static int score_lex(const char *s, size_t n, double *lex) {
  const lex_ent_t *e = find(s, n);
  if (e) {
    if (e->neutral)
      return -1;
    add(e, lex);
    return 1;
  }
  const char *a = memchr(s, '\'', n);
  if (a) { /* "dell'anno": the elided head and the word after it */
    int hit = 0;
    size_t head = (size_t)(a - s) + 1;
    if ((e = find(s, head)) && !e->neutral) {
      add(e, lex);
      hit = 1;
    }
    if ((e = find(a + 1, n - head)) && !e->neutral) {
      add(e, lex);
      hit = 1;
    }
    return hit;
  }
  /* "makasihhh", "grazieee", "bangettt": runs of 3+ letters to 2, then 1 */
  int run = 0;
  for (size_t i = 2; i < n && !run; i++)
    run = s[i] == s[i - 1] && s[i] == s[i - 2];
  if (!run)
    return 0;
  for (int keep = 2; keep >= 1; keep--) {
    char buf[JIWA_TEXT_MAX_TOKEN + 4];
    size_t m = 0, same = 0;
    for (size_t i = 0; i < n; i++) {
      same = (i > 0 && s[i] == s[i - 1]) ? same + 1 : 1;
      if (same <= (size_t)keep)
        buf[m++] = s[i];
    }
    if ((e = find(buf, m))) {
      if (e->neutral)
        return -1;
      add(e, lex);
      return 1;
    }
  }
  return 0;
}

static int sym(uint8_t b) {
  if (b >= 'a' && b <= 'z')
    return 1 + (b - 'a');
  if (b == '\'')
    return 27;
  return 28;
}

/* Trigrams of "_token_"; returns how many. */
static unsigned score_tri(const char *s, size_t n, double *tri) {
  int c1 = 0, c2 = -1;
  unsigned cnt = 0;
  for (size_t i = 0; i <= n; i++) {
    int c;
    if (i == n) {
      c = 0;
    } else {
      uint8_t b = (uint8_t)s[i];
      if (b >= 0x80 && b < 0xC0)
        continue; /* one symbol per code point */
      c = sym(b);
    }
    if (c2 >= 0) {
      const int16_t *lp =
          g_tri[(c1 * JIWA__TRI_NSYM + c2) * JIWA__TRI_NSYM + c];
      for (int l = 0; l < NOURS; l++)
        tri[l] += lp[l];
      cnt++;
    }
    c1 = c2 < 0 ? 0 : c2;
    c2 = c;
  }
  return cnt;
}

static void finish(jiwa_lang_result_t *out, const double *s, unsigned ntok) {
  double m = s[0];
  for (int k = 1; k < JIWA_LANG_COUNT; k++)
    if (s[k] > m)
      m = s[k];
  double z = 0, p[JIWA_LANG_COUNT];
  for (int k = 0; k < JIWA_LANG_COUNT; k++)
    z += p[k] = isfinite(s[k]) ? exp((s[k] - m) / TEMP) : 0.0;
  int best = 0;
  for (int k = 0; k < JIWA_LANG_COUNT; k++) {
    out->scores[k] = (float)(p[k] / z);
    if (p[k] > p[best])
      best = k;
  }
  out->lang = (jiwa_lang_t)best;
  out->code = jiwa_lang_code(out->lang);
  out->confidence = out->scores[best];
  out->tokens = ntok;
}

int jiwa_lang_detect(const char *text, size_t len, jiwa_lang_result_t *out) {
  if (!out || (!text && len > 0))
    return JIWA_EINVAL;
  pthread_once(&g_once, build);
  memset(out, 0, sizeof *out);

  double tri[NOURS] = {0}, lex[NLEX] = {0};
  unsigned ntok = 0, nwords = 0, nhit = 0, ntri = 0;
  unsigned latin = 0, nonlatin = 0, foreign = 0;
  jiwa_text_iter_t it;
  jiwa_token_t t;
  jiwa_text_iter_init(&it, text, len);
  while (ntok < JIWA_LANG_MAX_TOKENS && jiwa_text_next(&it, &t)) {
    ntok++;
    latin += t.letters - t.nonlatin;
    nonlatin += t.nonlatin;
    foreign += t.foreign;
    if (t.letters == 0 || t.nonlatin > 0)
      continue;
    int r = score_lex(t.s, t.len, lex);
    if (r < 0)
      continue;
    nwords++;
    nhit += (unsigned)r;
    if (t.digits == 0)
      ntri += score_tri(t.s, t.len, tri);
  }

  double s[JIWA_LANG_COUNT];
  s[JIWA_LANG_UNKNOWN] = 0;
  s[JIWA_LANG_EN] = s[JIWA_LANG_ID] = s[JIWA_LANG_IT] = -INFINITY;
  if (nonlatin > latin || nwords == 0) { /* nothing we can read */
    finish(out, s, ntok);
    if (nonlatin > latin) { /* some Latin words: not entirely sure */
      out->confidence = (float)nonlatin / (float)(latin + nonlatin);
      out->scores[JIWA_LANG_UNKNOWN] = out->confidence;
      for (int l = 0; l < NOURS; l++)
        out->scores[1 + l] = (1.0f - out->confidence) / NOURS;
    }
    return 0;
  }
  int best = 0;
  double maxtri = -INFINITY;
  for (int l = 0; l < NOURS; l++) {
    s[1 + l] = W_TRI * tri[l] / 100.0 + W_LEX * lex[l];
    if (s[1 + l] > s[1 + best])
      best = l;
    if (tri[l] > maxtri)
      maxtri = tri[l];
  }
  /* another language: its lexicon, or letters none of ours uses */
  double other = 0;
  for (int l = NOURS; l < NLEX; l++)
    if (lex[l] > other)
      other = lex[l];
  double unk = -INFINITY;
  if (other > 0 || foreign > 0)
    unk = W_TRI * maxtri / 100.0 + W_LEX * other + W_FOREIGN * foreign -
          OTHER_BIAS;
  double avg = ntri ? tri[best] / 100.0 / ntri : -100.0;
  int noise = (nhit == 0 && avg < GIB_AVG) ||
              (nwords >= 5 && nhit * 5 < nwords && avg < GIB_AVG_LONG);
  if (noise && s[1 + best] + GIB_MARGIN > unk)
    unk = s[1 + best] + GIB_MARGIN;
  s[JIWA_LANG_UNKNOWN] = unk;
  finish(out, s, ntok);
  return 0;
}

const char *jiwa_lang_code(jiwa_lang_t lang) {
  switch (lang) {
  case JIWA_LANG_EN:
    return "en";
  case JIWA_LANG_ID:
    return "id";
  case JIWA_LANG_IT:
    return "it";
  default:
    return "unknown";
  }
}

jiwa_lang_t jiwa_lang_from_code(const char *code) {
  if (!code || !code[0] || !code[1])
    return JIWA_LANG_UNKNOWN;
  char a = (char)(code[0] | 0x20), b = (char)(code[1] | 0x20);
  if (code[2] && code[2] != '-' && code[2] != '_')
    return JIWA_LANG_UNKNOWN;
  if (a == 'e' && b == 'n')
    return JIWA_LANG_EN;
  if (a == 'i' && b == 'd')
    return JIWA_LANG_ID;
  if (a == 'i' && b == 't')
    return JIWA_LANG_IT;
  return JIWA_LANG_UNKNOWN;
}

int jiwa_lang_is_stopword(jiwa_lang_t lang, const char *tok, size_t len) {
  if (lang < JIWA_LANG_EN || lang > JIWA_LANG_IT || !tok)
    return 0;
  pthread_once(&g_once, build);
  const lex_ent_t *e = find(tok, len);
  return e && !e->neutral && (e->stop & (1u << (lang - 1)));
}
