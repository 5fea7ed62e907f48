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

/* ---- actions and objects ------------------------------------------------------ */

/* What is done to what: "close" is not "open", "sell" is not "buy", a car
 * is not a villa. Compared only when both sides name one (a question that
 * names no action may still be the same question). */
enum {
  A_OPEN = 1 << 0,
  A_CLOSE = 1 << 1,
  A_BUY = 1 << 2,
  A_SELL = 1 << 3,
  A_RENT = 1 << 4,
  A_EXTEND = 1 << 5,
  A_CANCEL = 1 << 6,
  A_CONVERT = 1 << 7,
};
static const char *const action_names[] = {"open",   "close",  "buy",
                                           "sell",   "rent",   "extend",
                                           "cancel", "convert"};
static const phrase_t actions[] = {
    {"open", A_OPEN}, {"opening", A_OPEN}, {"set up", A_OPEN},
    {"setup", A_OPEN}, {"start", A_OPEN}, {"establish", A_OPEN},
    {"incorporate", A_OPEN}, {"register", A_OPEN}, {"buka", A_OPEN},
    {"membuka", A_OPEN}, {"mendirikan", A_OPEN}, {"dirikan", A_OPEN},
    {"pendirian", A_OPEN}, {"bikin", A_OPEN}, {"aprire", A_OPEN},
    {"apro", A_OPEN}, {"apre", A_OPEN}, {"aprono", A_OPEN},
    {"costituire", A_OPEN}, {"avviare", A_OPEN},
    {"fondare", A_OPEN}, {"close", A_CLOSE}, {"closing", A_CLOSE},
    {"shut down", A_CLOSE}, {"dissolve", A_CLOSE}, {"liquidate", A_CLOSE},
    {"deregister", A_CLOSE}, {"wind down", A_CLOSE}, {"tutup", A_CLOSE},
    {"menutup", A_CLOSE}, {"membubarkan", A_CLOSE}, {"bubarkan", A_CLOSE},
    {"likuidasi", A_CLOSE}, {"chiudere", A_CLOSE}, {"chiude", A_CLOSE},
    {"chiudo", A_CLOSE}, {"chiudono", A_CLOSE}, {"sciogliere", A_CLOSE},
    {"liquidare", A_CLOSE},
    {"buy", A_BUY}, {"buying", A_BUY}, {"purchase", A_BUY}, {"beli", A_BUY},
    {"membeli", A_BUY}, {"comprare", A_BUY}, {"compro", A_BUY},
    {"acquistare", A_BUY}, {"sell", A_SELL}, {"selling", A_SELL},
    {"jual", A_SELL}, {"menjual", A_SELL}, {"vendere", A_SELL},
    {"vendo", A_SELL}, {"rent", A_RENT}, {"lease", A_RENT},
    {"sewa", A_RENT}, {"menyewa", A_RENT}, {"affittare", A_RENT},
    {"affitto", A_RENT}, {"noleggiare", A_RENT}, {"extend", A_EXTEND},
    {"renew", A_EXTEND}, {"extension", A_EXTEND}, {"renewal", A_EXTEND},
    {"perpanjang", A_EXTEND}, {"memperpanjang", A_EXTEND},
    {"perpanjangan", A_EXTEND}, {"rinnovare", A_EXTEND},
    {"rinnovo", A_EXTEND}, {"prorogare", A_EXTEND}, {"cancel", A_CANCEL},
    {"revoke", A_CANCEL}, {"membatalkan", A_CANCEL}, {"batalkan", A_CANCEL},
    {"cabut", A_CANCEL}, {"annullare", A_CANCEL}, {"revocare", A_CANCEL},
    {"convert", A_CONVERT}, {"switch", A_CONVERT}, {"transfer", A_CONVERT},
    {"mengubah", A_CONVERT}, {"alih", A_CONVERT}, {"convertire", A_CONVERT},
    {NULL, 0}};

enum {
  O_PROPERTY = 1 << 0,
  O_VEHICLE = 1 << 1,
  O_COMPANY = 1 << 2,
  O_PERSON_VISA = 1 << 3,
};
static const char *const object_names[] = {"property", "vehicle", "company",
                                           "residence"};
static const phrase_t objects[] = {
    {"land", O_PROPERTY}, {"villa", O_PROPERTY}, {"house", O_PROPERTY},
    {"home", O_PROPERTY}, {"apartment", O_PROPERTY},
    {"property", O_PROPERTY}, {"tanah", O_PROPERTY}, {"rumah", O_PROPERTY},
    {"properti", O_PROPERTY}, {"apartemen", O_PROPERTY},
    {"casa", O_PROPERTY}, {"terreno", O_PROPERTY}, {"immobile", O_PROPERTY},
    {"immobili", O_PROPERTY}, {"appartamento", O_PROPERTY},
    {"car", O_VEHICLE}, {"motorbike", O_VEHICLE}, {"scooter", O_VEHICLE},
    {"motorcycle", O_VEHICLE}, {"mobil", O_VEHICLE}, {"motor", O_VEHICLE},
    {"macchina", O_VEHICLE}, {"auto", O_VEHICLE}, {"moto", O_VEHICLE},
    {"motorino", O_VEHICLE}, {"company", O_COMPANY}, {"business", O_COMPANY},
    {"perusahaan", O_COMPANY}, {"usaha", O_COMPANY}, {"societa", O_COMPANY},
    {"azienda", O_COMPANY}, {"impresa", O_COMPANY}, {"pt", O_COMPANY},
    {"pma", O_COMPANY}, {NULL, 0}};

/* The classes of @p table named in the text (words are not consumed). */
static int classes_of(const words_t *w, const phrase_t *table) {
  int found = 0;
  for (size_t i = 0; i < w->n; i++)
    for (const phrase_t *p = table; p->phrase; p++)
      if (phrase_at(w, i, p->phrase))
        found |= p->intent;
  return found;
}

static void class_text(int set, const char *const *names, int n, char *out,
                       size_t cap) {
  size_t k = 0;
  out[0] = 0;
  for (int b = 0; b < n; b++)
    if (set & (1 << b))
      k += (size_t)snprintf(out + k, k < cap ? cap - k : 0, "%s%s",
                            k ? "+" : "", names[b]);
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

  int aa = classes_of(&a, actions), ab = classes_of(&b, actions);
  int oa = classes_of(&a, objects), ob = classes_of(&b, objects);
  if ((aa && ab && aa != ab) || (oa && ob && oa != ob)) {
    char x[96], y[96];
    int act = aa && ab && aa != ab;
    class_text(act ? aa : oa, act ? action_names : object_names, act ? 8 : 4,
               x, sizeof x);
    class_text(act ? ab : ob, act ? action_names : object_names, act ? 8 : 4,
               y, sizeof y);
    *verdict = JIWA_GUARD_INTENT;
    snprintf(w, sizeof w, "%s differs: the query %s %s, the cached question "
                          "%s",
             act ? "action" : "object", act ? "asks to" : "is about", x, y);
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
