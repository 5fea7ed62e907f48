/* The golden cache's false-hit guard (see jiwa_guard.h). */
#include "jiwa_guard.h"

#include <stdio.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa_facts.h"
#include "jiwa_lang.h"
#include "jiwa_textnorm.h"

#define TOKS_MAX 128
#define STEM 5 /* bytes of a word compared */

typedef struct {
  jiwa_token_t t[TOKS_MAX];
  unsigned char used[TOKS_MAX]; /* consumed by an intent phrase */
  size_t n;
} words_t;

static void words_of(const char *s, size_t n, words_t *w) {
  jiwa_text_iter_t it;
  jiwa_text_iter_init(&it, s, n);
  w->n = 0;
  while (w->n < TOKS_MAX && jiwa_text_next(&it, &w->t[w->n]))
    w->used[w->n++] = 0;
}

/* ---- intents ---------------------------------------------------------------- */

enum {
  I_DURATION = 1 << 0,
  I_COST = 1 << 1,
  I_REQUIREMENTS = 1 << 2,
  I_PROCESS = 1 << 3,
  I_PERMISSION = 1 << 4,
  I_PLACE = 1 << 5,
  I_TIME = 1 << 6,
  I_PENALTY = 1 << 7,
};

static const char *const intent_names[] = {
    "duration", "cost", "requirements", "process",
    "permission", "place", "time", "penalty"};

/* An intent or'ed with AT_START counts only at the start of the question
 * ("can i ..."), not inside it ("where can i pay"). */
#define AT_START (1 << 16)

typedef struct {
  const char *phrase; /* normalised words, one space apart */
  int intent;
} phrase_t;

/* Longer phrases first where one contains another. */
static const phrase_t phrases[] = {
    /* duration */
    {"how long", I_DURATION}, {"how many days", I_DURATION},
    {"how many weeks", I_DURATION}, {"how many months", I_DURATION},
    {"processing time", I_DURATION}, {"how fast", I_DURATION},
    {"how quickly", I_DURATION}, {"duration", I_DURATION},
    {"berapa lama", I_DURATION}, {"berapa hari", I_DURATION},
    {"berapa minggu", I_DURATION}, {"berapa bulan", I_DURATION},
    {"waktu proses", I_DURATION}, {"lama proses", I_DURATION},
    {"quanto tempo", I_DURATION}, {"quanti giorni", I_DURATION},
    {"quante settimane", I_DURATION}, {"quanti mesi", I_DURATION},
    {"tempi", I_DURATION}, {"durata", I_DURATION},
    /* cost */
    {"how much", I_COST}, {"cost", I_COST}, {"costs", I_COST},
    {"price", I_COST}, {"prices", I_COST}, {"fee", I_COST},
    {"fees", I_COST}, {"expensive", I_COST}, {"cheap", I_COST},
    {"pay", I_COST}, {"berapa biaya", I_COST}, {"berapa harga", I_COST},
    {"biaya", I_COST}, {"biayanya", I_COST}, {"harga", I_COST},
    {"harganya", I_COST}, {"mahal", I_COST}, {"murah", I_COST},
    {"tarif", I_COST}, {"ongkos", I_COST}, {"bayar", I_COST},
    {"quanto costa", I_COST}, {"quanto costano", I_COST},
    {"quanto si paga", I_COST}, {"costo", I_COST}, {"costi", I_COST},
    {"prezzo", I_COST}, {"prezzi", I_COST}, {"tariffa", I_COST},
    {"spesa", I_COST}, {"pagare", I_COST},
    /* requirements */
    {"what do i need", I_REQUIREMENTS}, {"documents", I_REQUIREMENTS},
    {"document", I_REQUIREMENTS}, {"requirements", I_REQUIREMENTS},
    {"requirement", I_REQUIREMENTS}, {"required", I_REQUIREMENTS},
    {"syarat", I_REQUIREMENTS}, {"syaratnya", I_REQUIREMENTS},
    {"persyaratan", I_REQUIREMENTS}, {"dokumen", I_REQUIREMENTS},
    {"dokumennya", I_REQUIREMENTS}, {"documenti", I_REQUIREMENTS},
    {"requisiti", I_REQUIREMENTS}, {"servono", I_REQUIREMENTS},
    {"need", I_REQUIREMENTS}, {"needed", I_REQUIREMENTS},
    {"perlu", I_REQUIREMENTS}, {"butuh", I_REQUIREMENTS},
    {"bisogno", I_REQUIREMENTS},
    /* process */
    {"how to", I_PROCESS}, {"how do i", I_PROCESS}, {"how can i", I_PROCESS},
    {"steps", I_PROCESS}, {"procedure", I_PROCESS},
    {"bagaimana cara", I_PROCESS}, {"gimana cara", I_PROCESS},
    {"caranya", I_PROCESS}, {"cara", I_PROCESS}, {"langkah", I_PROCESS},
    {"prosedur", I_PROCESS}, {"come si fa", I_PROCESS},
    {"come faccio", I_PROCESS}, {"procedura", I_PROCESS},
    {"passaggi", I_PROCESS},
    /* permission */
    {"can i", I_PERMISSION | AT_START}, {"may i", I_PERMISSION | AT_START},
    {"allowed", I_PERMISSION}, {"is it possible", I_PERMISSION | AT_START},
    {"bolehkah", I_PERMISSION | AT_START}, {"boleh", I_PERMISSION | AT_START},
    {"apakah boleh", I_PERMISSION | AT_START}, {"apakah bisa", I_PERMISSION | AT_START},
    {"bisakah", I_PERMISSION | AT_START}, {"bisa", I_PERMISSION | AT_START},
    {"posso", I_PERMISSION | AT_START}, {"si puo", I_PERMISSION | AT_START},
    {"e possibile", I_PERMISSION | AT_START}, {"consentito", I_PERMISSION},
    /* place */
    {"where", I_PLACE}, {"di mana", I_PLACE}, {"dimana", I_PLACE},
    {"kemana", I_PLACE}, {"dove", I_PLACE},
    /* time */
    {"when", I_TIME}, {"deadline", I_TIME}, {"kapan", I_TIME},
    {"tenggat", I_TIME}, {"quando", I_TIME}, {"scadenza", I_TIME},
    /* penalty */
    {"penalty", I_PENALTY}, {"fine", I_PENALTY}, {"fined", I_PENALTY},
    {"overstay", I_PENALTY}, {"denda", I_PENALTY}, {"sanksi", I_PENALTY},
    {"multa", I_PENALTY}, {"sanzione", I_PENALTY}, {"sanzioni", I_PENALTY},
    {NULL, 0}};

/* Words of @p phrase starting at token @p i (0 when it is not there). */
static size_t phrase_at(const words_t *w, size_t i, const char *phrase) {
  size_t k = 0;
  for (const char *p = phrase; *p;) {
    const char *sp = strchr(p, ' ');
    size_t len = sp ? (size_t)(sp - p) : strlen(p);
    if (i + k >= w->n || w->used[i + k] || w->t[i + k].len != len ||
        memcmp(w->t[i + k].s, p, len) != 0)
      return 0;
    k++;
    p += len + (sp != NULL);
  }
  return k;
}

static int is_courtesy(const jiwa_token_t *t);

/* The intents asked for; their words are marked used. */
static int intents_of(words_t *w) {
  int found = 0, at_start = 1;
  for (size_t i = 0; i < w->n; i++) {
    size_t best = 0;
    int intent = 0;
    for (const phrase_t *p = phrases; p->phrase; p++) {
      if ((p->intent & AT_START) && !at_start)
        continue;
      size_t k = phrase_at(w, i, p->phrase);
      if (k > best) {
        best = k;
        intent = p->intent;
      }
    }
    if (best) {
      found |= intent & ~AT_START;
      for (size_t k = 0; k < best; k++)
        w->used[i + k] = 1;
      i += best - 1;
    }
    if (!is_courtesy(&w->t[i]))
      at_start = 0;
  }
  return found;
}

static void intent_text(int set, char *out, size_t cap) {
  size_t k = 0;
  out[0] = 0;
  for (int b = 0; b < 8; b++)
    if (set & (1 << b))
      k += (size_t)snprintf(out + k, k < cap ? cap - k : 0, "%s%s",
                            k ? "+" : "", intent_names[b]);
  if (!k)
    snprintf(out, cap, "none");
}

/* ---- content words ------------------------------------------------------------ */

static const char *const courtesy[] = {
    "pak",    "bu",      "ibu",      "bapak",  "kak",   "mas",    "mbak",
    "bli",    "please",  "pls",      "tolong", "mohon", "thanks", "thank",
    "thx",    "grazie",  "ciao",     "halo",   "hallo", "hello",  "hi",
    "hey",    "dong",    "nih",      "sih",    "ya",    "yah",    "deh",
    "kah",    "gan",     "sir",      "madam",  "signore", "signora",
    "favore", "salve",   "buongiorno", "selamat", "pagi", "siang", "sore",
    "malam",  "ok",      "okay",     "info",   "tanya", "question", "domanda",
    "apakah", NULL};

/* Verbs of getting and doing that every question about a document uses:
 * "get", "urus", "ottenere" do not tell two questions apart. */
static const char *const generic[] = {
    "do",        "does",      "did",       "can",       "could",
    "would",     "will",      "get",       "gets",      "getting",
    "obtain",    "take",      "takes",     "make",      "apply",
    "request",   "is",        "are",       "be",        "want",
    "there",     "process",   "mengurus",  "urus",      "ngurus",
    "membuat",   "bikin",     "buat",      "dapat",     "mendapatkan",
    "pembuatan", "mengajukan", "proses",   "ci",        "vuole",
    "serve",     "ottenere",  "richiedere", "fare",     "avere",
    "bisogna",   "devo",      NULL};

static int in_list(const char *const *list, const jiwa_token_t *t) {
  for (; *list; list++)
    if (strcmp(*list, t->s) == 0)
      return 1;
  return 0;
}

static int is_courtesy(const jiwa_token_t *t) {
  return in_list(courtesy, t);
}

static int is_filler(const jiwa_token_t *t) {
  if (t->digits) /* numbers belong to the fact check */
    return 1;
  if (t->len < 2 || in_list(courtesy, t) || in_list(generic, t))
    return 1;
  for (int l = JIWA_LANG_EN; l <= JIWA_LANG_IT; l++)
    if (jiwa_lang_is_stopword((jiwa_lang_t)l, t->s, t->len))
      return 1;
  return 0;
}

/* Unique stems of the content words. */
typedef struct {
  char s[TOKS_MAX][STEM + 1];
  size_t n;
} stems_t;

static void stems_of(const words_t *w, stems_t *out) {
  out->n = 0;
  for (size_t i = 0; i < w->n; i++) {
    if (w->used[i] || is_filler(&w->t[i]))
      continue;
    char st[STEM + 1];
    snprintf(st, sizeof st, "%s", w->t[i].s);
    size_t j = 0;
    while (j < out->n && strcmp(out->s[j], st) != 0)
      j++;
    if (j == out->n)
      memcpy(out->s[out->n++], st, sizeof st);
  }
}

static size_t shared(const stems_t *a, const stems_t *b) {
  size_t n = 0;
  for (size_t i = 0; i < a->n; i++)
    for (size_t j = 0; j < b->n; j++)
      if (strcmp(a->s[i], b->s[j]) == 0) {
        n++;
        break;
      }
  return n;
}

/* ---- the check ------------------------------------------------------------------ */

const char *jiwa_guard_verdict_name(jiwa_guard_verdict_t v) {
  static const char *const names[] = {"same", "language", "intent", "facts",
                                      "words"};
  return (unsigned)v < sizeof names / sizeof *names ? names[v] : "?";
}

static int known(const char *lang) {
  return lang && jiwa_lang_from_code(lang) != JIWA_LANG_UNKNOWN;
}

int jiwa_guard_check(const char *query, size_t qlen, const char *lang_q,
                     const char *cached, size_t clen, const char *lang_c,
                     const jiwa_guard_opts_t *opts,
                     jiwa_guard_verdict_t *verdict, char *why, size_t whylen) {
  char w[256] = "";
  if (why && whylen)
    why[0] = 0;
  if (!query || !cached || !verdict || qlen > JIWA_FACTS_MAX_TEXT ||
      clen > JIWA_FACTS_MAX_TEXT)
    return JIWA_EINVAL;
  float min_cov = opts && opts->min_coverage > 0 ? opts->min_coverage : 0.6f;
  *verdict = JIWA_GUARD_SAME;

  if (!(opts && opts->any_language) && known(lang_q) && known(lang_c) &&
      jiwa_lang_from_code(lang_q) != jiwa_lang_from_code(lang_c)) {
    *verdict = JIWA_GUARD_LANGUAGE;
    snprintf(w, sizeof w, "language differs: the query is %s, the cached "
                          "answer %s",
             jiwa_lang_code(jiwa_lang_from_code(lang_q)),
             jiwa_lang_code(jiwa_lang_from_code(lang_c)));
    goto out;
  }

  static _Thread_local words_t a, b; /* ~20 KiB each: not on the stack */
  words_of(query, qlen, &a);
  words_of(cached, clen, &b);
  int ia = intents_of(&a), ib = intents_of(&b);
  if (ia != ib) {
    char x[96], y[96];
    intent_text(ia, x, sizeof x);
    intent_text(ib, y, sizeof y);
    *verdict = JIWA_GUARD_INTENT;
    snprintf(w, sizeof w, "intent differs: the query asks %s, the cached "
                          "question %s",
             x, y);
    goto out;
  }

  char fw[200];
  int rc = jiwa_facts_compare(query, qlen, cached, clen, fw, sizeof fw);
  if (rc < 0)
    return rc;
  if (rc == 1) {
    *verdict = JIWA_GUARD_FACTS;
    snprintf(w, sizeof w, "facts differ: %s", fw);
    goto out;
  }

  static _Thread_local stems_t sa, sb;
  stems_of(&a, &sa);
  stems_of(&b, &sb);
  size_t both = shared(&sa, &sb);
  if (sa.n || sb.n) {
    float ca = sa.n ? (float)both / (float)sa.n : 0,
          cb = sb.n ? (float)both / (float)sb.n : 0;
    if (ca < min_cov || cb < min_cov) {
      *verdict = JIWA_GUARD_WORDS;
      snprintf(w, sizeof w,
               "content words differ: %zu shared of %zu in the query and %zu "
               "in the cached question (below %.0f%%)",
               both, sa.n, sb.n, (double)min_cov * 100);
    }
  }
out:
  if (why && whylen && *verdict != JIWA_GUARD_SAME)
    snprintf(why, whylen, "%s", w);
  return 0;
}
