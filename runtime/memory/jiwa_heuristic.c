/* Heuristic profile extraction without a model (see jiwa_heuristic.h). */
#include "jiwa_heuristic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"

#define MAX_WORDS 1024
#define WORD_MAX 48

typedef struct {
  const char *s; /* original bytes */
  unsigned len;
  unsigned brk; /* a clause break (.,!?;:\n) comes right before this word */
  unsigned upper; /* starts with an ASCII capital */
  char low[WORD_MAX];
} word_t;

typedef struct {
  word_t w[MAX_WORDS];
  unsigned n;
} words_t;

static int word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c >= 0x80;
}

static void split(const char *s, size_t len, words_t *ws) {
  size_t i = 0;
  unsigned brk = 1;
  ws->n = 0;
  while (i < len && ws->n < MAX_WORDS) {
    unsigned char c = (unsigned char)s[i];
    if (!word_byte(c)) {
      if (c == '.' || c == ',' || c == '!' || c == '?' || c == ';' ||
          c == ':' || c == '\n' || c == '(' || c == ')' || c == '"')
        brk = 1;
      i++;
      continue;
    }
    size_t j = i;
    while (j < len) {
      unsigned char d = (unsigned char)s[j];
      int inner = (d == '\'' || d == '-' || d == '&') && j + 1 < len &&
                  word_byte((unsigned char)s[j + 1]) && j > i;
      if (!word_byte(d) && !inner)
        break;
      j++;
    }
    word_t *w = &ws->w[ws->n++];
    w->s = s + i;
    w->len = (unsigned)(j - i);
    w->brk = brk;
    w->upper = c >= 'A' && c <= 'Z';
    size_t k = 0;
    for (size_t q = i; q < j && k + 1 < WORD_MAX; q++) {
      unsigned char d = (unsigned char)s[q];
      w->low[k++] = (char)(d >= 'A' && d <= 'Z' ? d + 32 : d);
    }
    w->low[k] = 0;
    brk = 0;
    i = j;
  }
}

/* Words of @p phrase (space separated) matched at @p i, without a clause
 * break inside; 0 when not matched. */
static unsigned phrase(const words_t *ws, unsigned i, const char *phrase_s) {
  unsigned k = 0;
  const char *p = phrase_s;
  while (*p) {
    const char *e = strchr(p, ' ');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (i + k >= ws->n || (k && ws->w[i + k].brk) ||
        strlen(ws->w[i + k].low) != l || memcmp(ws->w[i + k].low, p, l))
      return 0;
    k++;
    p += l + (e ? 1 : 0);
  }
  return k;
}

/* The longest of @p list matched at @p i: its index in *idx. */
static unsigned phrase_any(const words_t *ws, unsigned i,
                           const char *const *list, unsigned *idx) {
  unsigned best = 0;
  for (unsigned j = 0; list[j]; j++) {
    unsigned k = phrase(ws, i, list[j]);
    if (k > best) {
      best = k;
      if (idx)
        *idx = j;
    }
  }
  return best;
}

static int in_list(const char *w, const char *const *list) {
  for (; *list; list++)
    if (!strcmp(w, *list))
      return 1;
  return 0;
}

/* ---- lists ----------------------------------------------------------------- */

static const char *const name_intro[] = {
    "my name is", "my name's", "call me", "i am called", "nama saya",
    "nama aku", "namaku", "nama gue", "nama saya adalah", "saya bernama",
    "aku bernama", "panggil saya", "panggil aku", "mi chiamo",
    "il mio nome è", "il mio nome e", "il mio nome e'", NULL};

static const char *const not_names[] = {
    "not", "also", "the", "a", "an", "is", "and", "very", "so", "just",
    "really", "here", "from", "in", "at", "adalah", "dan", "juga", "dari",
    "di", "sangat", "e", "non", "anche", "da", "di", "in", "molto", "sono",
    "only", "still", "mister", "mr", "mrs", "ms", "back", "later", "today",
    "tomorrow", "now", "when", "if", "asap", "please", "again", "soon",
    "yang", "pak", "bu", NULL};

static const char *const negators[] = {
    "not", "no", "never", "don't", "dont", "isn't", "aren't", "wasn't",
    "tidak", "tak", "nggak", "ngga", "gak", "ga", "enggak", "bukan",
    "jangan", "belum", "non", "mai", "nessun", "senza", "without", NULL};

static const char *const intensifiers[] = {
    "very", "so", "really", "extremely", "super", "too", "totally",
    "sangat", "banget", "sekali", "amat", "sungguh", "bener", "molto",
    "tanto", "davvero", "troppo", "proprio", "parecchio", NULL};

static const char *const softeners[] = {"bit", "little", "slightly", "agak",
                                        "sedikit", "po", "po'", "poco",
                                        "somewhat", NULL};

/* Emotion words jiwa_emotion_from_word knows that mean something else too
 * often in chat ("I lost my passport", "the content", "my concern is"). */
static const char *const emo_block[] = {"lost", "content", "concern",
                                        "neutral", "face", "down", "lega",
                                        "santai", "calma", "stress", NULL};

static const char *const thanks[] = {"thank you", "thanks", "thx",
                                     "terima kasih", "makasih", "grazie",
                                     "thank", NULL};

typedef struct {
  const char *phrase, *canon;
} map_t;

static const map_t business[] = {
    {"pt pma", "PT PMA"},      {"villa", "villa"},
    {"villas", "villa"},       {"warung", "warung"},
    {"restaurant", "restaurant"}, {"restoran", "restaurant"},
    {"ristorante", "restaurant"}, {"rumah makan", "restaurant"},
    {"cafe", "cafe"},          {"café", "cafe"},
    {"kafe", "cafe"},          {"coffee shop", "cafe"},
    {"homestay", "homestay"},  {"guesthouse", "guesthouse"},
    {"guest house", "guesthouse"}, {"hotel", "hotel"},
    {"albergo", "hotel"},      {"surf school", "surf school"},
    {"scuola di surf", "surf school"}, {"surf camp", "surf school"},
    {"dive shop", "dive centre"}, {"dive center", "dive centre"},
    {"dive centre", "dive centre"}, {"yoga studio", "yoga studio"},
    {"yoga retreat", "yoga studio"}, {"coworking", "coworking"},
    {"co-working", "coworking"}, {"shop", "shop"},
    {"toko", "shop"},          {"negozio", "shop"},
    {"boutique", "shop"},      {NULL, NULL}};

static const map_t visas[] = {
    {"kitas", "KITAS"},
    {"kitap", "KITAP"},
    {"voa", "VOA"},
    {"e-voa", "VOA"},
    {"visa on arrival", "VOA"},
    {"golden visa", "golden visa"},
    {"retirement visa", "retirement visa"},
    {"investor visa", "investor visa"},
    {"second home visa", "second home visa"},
    {"second home", "second home visa"},
    {"digital nomad visa", "digital nomad visa"},
    {"social visa", "social visa"},
    {"visa sosial budaya", "social visa"},
    {"tourist visa", "tourist visa"},
    {"visto turistico", "tourist visa"},
    {"visa turis", "tourist visa"},
    {"business visa", "business visa"},
    {"visa bisnis", "business visa"},
    {NULL, NULL}};

static const map_t family[] = {
    {"wife", "wife"},         {"istri", "wife"},       {"isteri", "wife"},
    {"moglie", "wife"},       {"husband", "husband"},  {"suami", "husband"},
    {"marito", "husband"},    {"partner", "partner"},  {"pacar", "partner"},
    {"girlfriend", "partner"}, {"boyfriend", "partner"},
    {"fidanzata", "partner"}, {"fidanzato", "partner"},
    {"compagna", "partner"},  {"compagno", "partner"},
    {"children", "children"}, {"kids", "children"},    {"kid", "children"},
    {"child", "children"},    {"son", "children"},     {"sons", "children"},
    {"daughter", "children"}, {"daughters", "children"},
    {"anak", "children"},     {"anak-anak", "children"},
    {"figli", "children"},    {"figlio", "children"},  {"figlia", "children"},
    {"figlie", "children"},   {"bambini", "children"}, {"bambino", "children"},
    {"bambina", "children"},  {"putra", "children"},   {"putri", "children"},
    {NULL, NULL}};

static const map_t numbers[] = {
    {"one", "1"},   {"a", "1"},    {"satu", "1"},  {"seorang", "1"},
    {"un", "1"},    {"uno", "1"},  {"una", "1"},   {"two", "2"},
    {"dua", "2"},   {"due", "2"},  {"three", "3"}, {"tiga", "3"},
    {"tre", "3"},   {"four", "4"}, {"empat", "4"}, {"quattro", "4"},
    {"five", "5"},  {"lima", "5"}, {"cinque", "5"}, {NULL, NULL}};

static const char *const loc_intro[] = {
    "i live in", "i'm living in", "i am living in", "living in",
    "i'm based in", "i am based in", "based in", "we live in",
    "tinggal di", "saya tinggal di", "aku tinggal di", "menetap di",
    "abito a", "abito in", "vivo a", "vivo in", "viviamo a", "abitiamo a",
    NULL};

static const map_t places[] = {
    {"bali", "Bali"},         {"canggu", "Canggu"},     {"ubud", "Ubud"},
    {"seminyak", "Seminyak"}, {"kuta", "Kuta"},         {"sanur", "Sanur"},
    {"uluwatu", "Uluwatu"},   {"denpasar", "Denpasar"}, {"jimbaran", "Jimbaran"},
    {"lombok", "Lombok"},     {"jakarta", "Jakarta"},   {"surabaya", "Surabaya"},
    {"bandung", "Bandung"},   {"yogyakarta", "Yogyakarta"},
    {"jogja", "Yogyakarta"},  {"medan", "Medan"},       {"batam", "Batam"},
    {"makassar", "Makassar"}, {"semarang", "Semarang"}, {"malang", "Malang"},
    {"labuan bajo", "Labuan Bajo"}, {"gili", "Gili"},   {"pererenan", "Pererenan"},
    {"tabanan", "Tabanan"},   {"italy", "Italy"},       {"italia", "Italy"},
    {"milano", "Milan"},      {"milan", "Milan"},       {"roma", "Rome"},
    {"rome", "Rome"},         {NULL, NULL}};

static const char *const goal_intro[] = {
    "i want to", "i'd like to", "i would like to", "i plan to",
    "i'm planning to", "i am planning to", "we want to", "we plan to",
    "we'd like to", "my dream is to", "our dream is to", "my goal is to",
    "i hope to", "saya ingin", "saya mau", "aku mau", "aku ingin",
    "kami ingin", "kami mau", "rencana saya", "saya berencana",
    "impian saya", "cita-cita saya", "gue mau", "vorrei", "voglio",
    "vogliamo", "vorremmo", "il mio sogno è", "il mio sogno e",
    "il mio obiettivo è", "ho intenzione di", "sogno di", NULL};

static const char *const goal_verbs[] = {
    "open", "start", "build", "buy", "move", "retire", "live", "invest",
    "expand", "launch", "set", "grow", "bring", "settle", "run", "own",
    "buka", "membuka", "mulai", "memulai", "membangun", "bangun", "beli",
    "membeli", "pindah", "tinggal", "investasi", "berinvestasi", "punya",
    "mendirikan", "aprire", "avviare", "comprare", "acquistare",
    "trasferirmi", "trasferirci", "vivere", "investire", "costruire",
    "andare", "ritirarmi", "espandere", "lanciare", NULL};

static const map_t signals[] = {
    {"malu", "malu"},
    {"sungkan", "sungkan"},
    {"nggak enak", "sungkan"},
    {"gak enak", "sungkan"},
    {"insya allah", "religious_observance"},
    {"insyaallah", "religious_observance"},
    {"inshallah", "religious_observance"},
    {"insha allah", "religious_observance"},
    {"alhamdulillah", "religious_observance"},
    {"pak", "honorifics"},
    {"bu", "honorifics"},
    {"bapak", "honorifics"},
    {"jam karet", "jam_karet"},
    {"gotong royong", "gotong_royong"},
    {"gotong-royong", "gotong_royong"},
    {"puasa", "ramadan"},
    {"lebaran", "ramadan"},
    {"ramadan", "ramadan"},
    {"ramadhan", "ramadan"},
    {"nyepi", "balinese_ceremony"},
    {"galungan", "balinese_ceremony"},
    {"kuningan", "balinese_ceremony"},
    {"odalan", "balinese_ceremony"},
    {"halal", "halal"},
    {"adat", "adat"},
    {"musyawarah", "musyawarah"},
    {NULL, NULL}};

static const char *const casual[] = {
    "gue", "gw", "lu", "elo", "aku", "kamu", "nggak", "ngga", "gak",
    "enggak", "banget", "dong", "sih", "deh", "nih", "yuk", "udah", "gimana",
    "bro", "sis", "makasih", "thx", "btw", "wkwk", "wkwkwk", "haha", "hehe",
    "hey", "hi", "lol", "gonna", "wanna", "gotta", "pls", "plz", "yeah",
    "yep", "cool", "dude", "ciao", "ehi", "boh", "figo", "raga", "hahaha",
    NULL};

static const char *const formal[] = {
    "saya", "anda", "bapak", "mohon", "hormat", "silakan", "apakah",
    "terima kasih", "dear", "sir", "madam", "kindly", "regards",
    "could you please", "would you kindly", "thank you very much", "lei",
    "gentile", "gentili", "cortesemente", "potrebbe", "potreste", "saluti",
    "la ringrazio", "egregio", "distinti", NULL};

/* ---- helpers ------------------------------------------------------------------- */

static unsigned map_at(const words_t *ws, unsigned i, const map_t *m,
                       const char **canon) {
  unsigned best = 0;
  for (; m->phrase; m++) {
    unsigned k = phrase(ws, i, m->phrase);
    if (k > best) {
      best = k;
      *canon = m->canon;
    }
  }
  return best;
}

/* Append @p s to a "; "/", "-joined value unless present. */
static void add_part(char *v, size_t cap, const char *s) {
  size_t sl = strlen(s);
  for (const char *p = v; (p = strstr(p, s)); p += sl)
    if ((p == v || p[-1] == ' ') && (p[sl] == 0 || p[sl] == ','))
      return;
  size_t o = strlen(v);
  if (o + (o ? 2 : 0) + sl + 1 > cap)
    return;
  snprintf(v + o, cap - o, "%s%s", o ? ", " : "", s);
}

static void set_fact(jiwa_profile_t *p, const char *key, const char *value) {
  if (!value[0])
    return;
  for (unsigned i = 0; i < p->nfacts; i++)
    if (!strcmp(p->facts[i].key, key)) {
      jiwa_profile_clean(value, strlen(value), JIWA_PROFILE_VALUE_CHARS,
                         p->facts[i].value, sizeof p->facts[i].value, NULL);
      return;
    }
  if (p->nfacts >= JIWA_PROFILE_MAX_FACTS)
    return;
  jiwa_profile_fact_t *f = &p->facts[p->nfacts];
  snprintf(f->key, sizeof f->key, "%s", key);
  if (jiwa_profile_clean(value, strlen(value), JIWA_PROFILE_VALUE_CHARS,
                         f->value, sizeof f->value, NULL))
    p->nfacts++;
  p->present |= JIWA_PROFILE_HAS_FACTS;
}

static int is_alpha_word(const word_t *w) {
  if (w->len < 2 || w->len > 30)
    return 0;
  for (unsigned i = 0; i < w->len; i++) {
    unsigned char c = (unsigned char)w->s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80 ||
          c == '\'' || c == '-'))
      return 0;
  }
  return 1;
}

static int usable_name(const word_t *w) {
  return is_alpha_word(w) && !in_list(w->low, not_names) &&
         jiwa_emotion_from_word(w->low, strlen(w->low), NULL) ==
             JIWA_EMO_NEUTRAL;
}

static void cap_word(char *dst, size_t cap, const word_t *w) {
  size_t o = strlen(dst);
  if (o + w->len + 2 > cap)
    return;
  if (o)
    dst[o++] = ' ';
  memcpy(dst + o, w->s, w->len);
  if (dst[o] >= 'a' && dst[o] <= 'z')
    dst[o] = (char)(dst[o] - 32);
  dst[o + w->len] = 0;
}

/* ---- extraction ------------------------------------------------------------------- */

typedef struct {
  char name[128];
  char biz[256], visa[256], fam[128], loc[64];
  jiwa_emotion_t emo;
  double inten;
  int thanked;
  int kids_count;
  int has_kids;
  int casual, formal;
} acc_t;

/* Visa index codes: B211A, C312, E33G, D212 ([bcde] 2-3 digits [a-z]?). */
static int is_visa_code(const char *w) {
  size_t n = strlen(w), d = 0;
  if (n < 3 || n > 5 || !strchr("bcde", w[0]) || !w[0])
    return 0;
  while (1 + d < n && w[1 + d] >= '0' && w[1 + d] <= '9')
    d++;
  if (d < 2 || d > 3)
    return 0;
  return 1 + d == n || (1 + d + 1 == n && w[n - 1] >= 'a' && w[n - 1] <= 'z');
}

static void scan(const words_t *ws, acc_t *a, jiwa_profile_t *p) {
  const char *canon = NULL;
  unsigned skip_biz = 0, skip_visa = 0;
  for (unsigned i = 0; i < ws->n; i++) {
    unsigned k;
    const word_t *w = &ws->w[i];
    /* name */
    if ((k = phrase_any(ws, i, name_intro, NULL)) && i + k < ws->n &&
        !ws->w[i + k].brk && usable_name(&ws->w[i + k])) {
      a->name[0] = 0;
      cap_word(a->name, sizeof a->name, &ws->w[i + k]);
      if (i + k + 1 < ws->n && !ws->w[i + k + 1].brk &&
          ws->w[i + k + 1].upper && usable_name(&ws->w[i + k + 1]))
        cap_word(a->name, sizeof a->name, &ws->w[i + k + 1]);
    }
    /* emotion */
    if (!in_list(w->low, emo_block)) {
      jiwa_emotion_t e = jiwa_emotion_from_word(w->low, strlen(w->low), NULL);
      if (e != JIWA_EMO_NEUTRAL) {
        int neg = 0;
        double x = 0.5;
        for (unsigned b = 1; b <= 2 && b <= i; b++) {
          if (ws->w[i - b + 1].brk) /* the word before is another clause */
            break;
          const word_t *pw = &ws->w[i - b];
          if (in_list(pw->low, negators))
            neg = 1;
          if (in_list(pw->low, intensifiers))
            x = 0.8;
          if (in_list(pw->low, softeners))
            x = 0.3;
        }
        size_t lw = strlen(w->low);
        if (lw > 3 && !strcmp(w->low + lw - 3, "n't"))
          neg = 1;
        if (i + 1 < ws->n && !ws->w[i + 1].brk &&
            in_list(ws->w[i + 1].low, intensifiers))
          x = 0.8;
        if (!neg) {
          a->emo = e;
          a->inten = x;
        }
      }
    }
    if (phrase_any(ws, i, thanks, NULL))
      a->thanked = 1;
    /* business, visa, family, signals */
    if (i >= skip_biz && (k = map_at(ws, i, business, &canon))) {
      add_part(a->biz, sizeof a->biz, canon);
      skip_biz = i + k;
    }
    k = i >= skip_visa ? map_at(ws, i, visas, &canon) : 0;
    if (k)
      skip_visa = i + k;
    if (k || (i >= skip_visa && is_visa_code(w->low))) {
      char code[8];
      if (!k) {
        for (unsigned q = 0; q < w->len && q < sizeof code - 1; q++)
          code[q] = (char)(w->low[q] >= 'a' && w->low[q] <= 'z'
                               ? w->low[q] - 32
                               : w->low[q]);
        code[w->len < sizeof code ? w->len : sizeof code - 1] = 0;
        canon = code;
      }
      add_part(a->visa, sizeof a->visa, canon);
    }
    if (map_at(ws, i, family, &canon)) {
      if (!strcmp(canon, "children")) {
        a->has_kids = 1;
        if (i > 0 && !w->brk) {
          const word_t *pw = &ws->w[i - 1];
          const char *num = NULL;
          if (pw->len == 1 && pw->low[0] >= '1' && pw->low[0] <= '9')
            a->kids_count = pw->low[0] - '0';
          else if (map_at(ws, i - 1, numbers, &num) == 1)
            a->kids_count = num[0] - '0';
        }
      } else {
        add_part(a->fam, sizeof a->fam, canon);
      }
    }
    if ((k = map_at(ws, i, signals, &canon))) {
      int dup = 0;
      for (unsigned q = 0; q < p->nsignals && !dup; q++)
        dup = !strcmp(p->signals[q], canon);
      if (!dup && p->nsignals < JIWA_PROFILE_MAX_SIGNALS) {
        snprintf(p->signals[p->nsignals++], sizeof p->signals[0], "%s", canon);
        p->present |= JIWA_PROFILE_HAS_SIGNALS;
      }
    }
    /* location */
    if ((k = phrase_any(ws, i, loc_intro, NULL)) && i + k < ws->n &&
        !ws->w[i + k].brk && map_at(ws, i + k, places, &canon))
      snprintf(a->loc, sizeof a->loc, "%s", canon);
    /* goals */
    if ((k = phrase_any(ws, i, goal_intro, NULL)) && i + k < ws->n &&
        !ws->w[i + k].brk && in_list(ws->w[i + k].low, goal_verbs)) {
      unsigned s = i + k, e = s + 1;
      while (e < ws->n && !ws->w[e].brk && e - s < 12)
        e++;
      const word_t *last = &ws->w[e - 1];
      size_t glen = (size_t)(last->s + last->len - ws->w[s].s);
      char g[JIWA_PROFILE_BUF(JIWA_PROFILE_GOAL_CHARS)];
      if (jiwa_profile_clean(ws->w[s].s, glen, JIWA_PROFILE_GOAL_CHARS, g,
                             sizeof g, NULL)) {
        int dup = 0;
        for (unsigned q = 0; q < p->ngoals && !dup; q++)
          dup = !strcmp(p->goals[q], g);
        if (!dup && p->ngoals < JIWA_PROFILE_MAX_GOALS) {
          memcpy(p->goals[p->ngoals++], g, strlen(g) + 1);
          p->present |= JIWA_PROFILE_HAS_GOALS;
        }
      }
    }
    /* register markers */
    if ((k = phrase_any(ws, i, formal, NULL))) {
      /* "Lei" is formal Italian only capitalised mid-sentence */
      if (strcmp(w->low, "lei") || (w->upper && !w->brk))
        a->formal++;
    } else if (phrase_any(ws, i, casual, NULL)) {
      a->casual++;
    }
  }
}

static int is_user(const char *role) {
  if (!role)
    return 1;
  const char *u = "user";
  size_t i = 0;
  for (; role[i] && u[i]; i++) {
    char c = role[i] >= 'A' && role[i] <= 'Z' ? role[i] + 32 : role[i];
    if (c != u[i])
      return 0;
  }
  return !role[i] && !u[i];
}

int jiwa_heuristic_extract(const char *const *roles, const char *const *texts,
                           const size_t *lens, size_t n, jiwa_profile_t *out) {
  if (!out)
    return JIWA_EINVAL;
  memset(out, 0, sizeof *out);
  out->source = JIWA_SRC_HEURISTIC;
  out->confidence = JIWA_PROFILE_HEURISTIC_CONF;
  if (n && !texts)
    return JIWA_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!texts[i] && lens && lens[i])
      return JIWA_EINVAL;
  words_t *ws = malloc(sizeof *ws); /* 70 KB: not on a loop's stack */
  if (!ws)
    return JIWA_ENOMEM;
  acc_t a;
  memset(&a, 0, sizeof a);
  char all[8192];
  size_t alen = 0;
  for (size_t t = 0; t < n; t++) {
    if (!texts[t] || !is_user(roles ? roles[t] : NULL))
      continue;
    size_t len = lens ? lens[t] : strlen(texts[t]);
    if (len > JIWA_HEURISTIC_MAX_TURN)
      len = JIWA_HEURISTIC_MAX_TURN;
    split(texts[t], len, ws);
    scan(ws, &a, out);
    if (alen && alen < sizeof all - 1)
      all[alen++] = '\n';
    size_t c = len < sizeof all - 1 - alen ? len : sizeof all - 1 - alen;
    memcpy(all + alen, texts[t], c);
    alen += c;
  }
  free(ws);
  if (a.name[0])
    set_fact(out, "name", a.name);
  set_fact(out, "business", a.biz);
  set_fact(out, "visa_status", a.visa);
  if (a.has_kids) {
    char kids[24];
    if (a.kids_count > 1)
      snprintf(kids, sizeof kids, "%d children", a.kids_count);
    else if (a.kids_count == 1)
      snprintf(kids, sizeof kids, "1 child");
    else
      snprintf(kids, sizeof kids, "children");
    add_part(a.fam, sizeof a.fam, kids);
  }
  set_fact(out, "family", a.fam);
  set_fact(out, "location", a.loc);
  if (a.emo != JIWA_EMO_NEUTRAL) {
    out->emotion.label = a.emo;
    out->emotion.intensity = a.inten;
    out->present |= JIWA_PROFILE_HAS_EMOTION;
  } else if (a.thanked) {
    out->emotion.label = JIWA_EMO_GRATEFUL;
    out->emotion.intensity = 0.3;
    out->present |= JIWA_PROFILE_HAS_EMOTION;
  }
  if (alen) {
    jiwa_lang_result_t lr;
    if (jiwa_lang_detect(all, alen, &lr) == 0 &&
        lr.lang != JIWA_LANG_UNKNOWN && lr.confidence >= 0.6) {
      out->language = lr.lang;
      out->present |= JIWA_PROFILE_HAS_LANGUAGE;
    }
  }
  if (a.casual != a.formal) {
    out->reg = a.casual > a.formal ? JIWA_REG_CASUAL : JIWA_REG_FORMAL;
    out->present |= JIWA_PROFILE_HAS_REGISTER;
  }
  return 0;
}
