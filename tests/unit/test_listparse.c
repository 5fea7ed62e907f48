/*
 * Unit tests for the list-output parser (runtime/jobs/jiwa_listparse.c):
 * realistic model answers to "give me a list of cultural insights / golden
 * answer candidates" in English, Indonesian and Italian, in every shape
 * (numbered, bulleted, headings, bold leads, plain lines, JSON in and out of
 * fences, objects with an array member, broken JSON), with chatter around,
 * wrapped items and LF / CRLF / CR line ends; each with the exact items
 * expected. Then dedup, limits, argument checks and a large input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa_listparse.h"

typedef struct {
  const char *title, *text;
} exp_item_t;

typedef struct {
  const char *name;
  const char *input;
  jiwa_list_format_t format;
  exp_item_t items[10];
} case_t;

#define T(title, text) {title, text}
#define X(text) {NULL, text}

static const case_t k_cases[] = {
    {"en numbered, bold titles, wrapped, chatter",
     "Sure! Here are 3 cultural insights about Bali:\n\n"
     "1. **Malu** \xe2\x80\x94 a strong sense of shame\n"
     "   that shapes how people behave in public.\n"
     "2) Gotong royong: mutual help organised by the banjar.\n"
     "(3) Offerings (canang sari) are placed every morning.\n\n"
     "Let me know if you'd like more detail on any of these!\n",
     JIWA_LIST_NUMBERED,
     {T("Malu", "a strong sense of shame that shapes how people behave in "
                "public."),
      T("Gotong royong", "mutual help organised by the banjar."),
      X("Offerings (canang sari) are placed every morning.")}},

    {"en dash bullets, CRLF",
     "Here are some tips for visiting temples:\r\n"
     "- Wear a sarong and a sash.\r\n"
     "- Do not enter during menstruation.\r\n"
     "- Never stand higher than the priest.\r\n"
     "\r\n"
     "Hope this helps!\r\n",
     JIWA_LIST_BULLETS,
     {X("Wear a sarong and a sash."), X("Do not enter during menstruation."),
      X("Never stand higher than the priest.")}},

    {"id bullets with U+2022, preamble and closing",
     "Tentu! Berikut beberapa wawasan budaya Bali:\n"
     "\xe2\x80\xa2 Upacara Ngaben adalah kremasi yang meriah, bukan acara "
     "duka.\n"
     "\xe2\x80\xa2 Gunakan tangan kanan saat memberi atau menerima "
     "sesuatu.\n"
     "\xe2\x80\xa2 Hari raya Nyepi: seluruh pulau diam selama 24 jam.\n"
     "Semoga membantu!\n",
     JIWA_LIST_BULLETS,
     {X("Upacara Ngaben adalah kremasi yang meriah, bukan acara duka."),
      X("Gunakan tangan kanan saat memberi atau menerima sesuatu."),
      T("Hari raya Nyepi", "seluruh pulau diam selama 24 jam.")}},

    {"it numbered with parenthesis, closing line",
     "Ecco alcuni consigli utili per chi si trasferisce a Bali:\n\n"
     "1) Il KITAS va rinnovato prima della scadenza, non dopo.\n"
     "2) Per aprire un conto in banca serve il KITAS e il NPWP.\n"
     "3) L'overstay costa 1 milione di rupie al giorno.\n\n"
     "Spero ti sia utile! Fammi sapere se hai altre domande.\n",
     JIWA_LIST_NUMBERED,
     {X("Il KITAS va rinnovato prima della scadenza, non dopo."),
      X("Per aprire un conto in banca serve il KITAS e il NPWP."),
      X("L'overstay costa 1 milione di rupie al giorno.")}},

    {"json array of strings in a json fence",
     "Of course! Here is the list in JSON:\n\n"
     "```json\n"
     "[\n"
     "  \"Balinese names follow birth order: Wayan, Made, Nyoman, "
     "Ketut.\",\n"
     "  \"Pointing with the index finger is rude; use the thumb.\"\n"
     "]\n"
     "```\n\n"
     "Let me know if you need anything else.",
     JIWA_LIST_JSON,
     {T("Balinese names follow birth order",
        "Wayan, Made, Nyoman, Ketut."),
      X("Pointing with the index finger is rude; use the thumb.")}},

    {"json array of objects",
     "[{\"title\": \"Banjar\", \"text\": \"The village council that "
     "organises ceremonies.\"},\n"
     " {\"title\": \"Subak\", \"text\": \"A cooperative irrigation system, "
     "UNESCO heritage.\"},\n"
     " {\"title\": \"Tri Hita Karana\", \"text\": \"Harmony with God, "
     "people and nature.\"}]",
     JIWA_LIST_JSON,
     {T("Banjar", "The village council that organises ceremonies."),
      T("Subak", "A cooperative irrigation system, UNESCO heritage."),
      T("Tri Hita Karana", "Harmony with God, people and nature.")}},

    {"json object with an array member, other keys",
     "```\n"
     "{\"topic\": \"etiquette\", \"language\": \"en\", \"insights\": [\n"
     "  {\"name\": \"Head\", \"description\": \"Never touch someone's "
     "head, it is sacred.\"},\n"
     "  {\"name\": \"Feet\", \"description\": \"Do not point your feet at "
     "people or shrines.\"}\n"
     "]}\n"
     "```",
     JIWA_LIST_JSON,
     {T("Head", "Never touch someone's head, it is sacred."),
      T("Feet", "Do not point your feet at people or shrines.")}},

    {"bare json after chatter, ID",
     "Baik, berikut daftarnya dalam format JSON:\n"
     "[\"Jangan menyentuh kepala orang lain.\", \"Berpakaian sopan saat "
     "ke pura.\", \"Jangan menyentuh kepala orang lain.\"]\n"
     "Semoga bermanfaat.",
     JIWA_LIST_JSON,
     {X("Jangan menyentuh kepala orang lain."),
      X("Berpakaian sopan saat ke pura.")}},

    {"markdown headings with paragraphs",
     "# Cultural insights\n\n"
     "Here are the key points you should know:\n\n"
     "### 1. Nyepi\n"
     "The Day of Silence: no lights, no travel, the airport closes.\n\n"
     "### 2. Galungan\n"
     "Celebrates the victory of dharma; penjor poles line the streets.\n"
     "It happens every 210 days.\n\n"
     "I hope this overview helps you plan your stay.\n",
     JIWA_LIST_HEADINGS,
     {T("Nyepi", "The Day of Silence: no lights, no travel, the airport "
                 "closes."),
      T("Galungan", "Celebrates the victory of dharma; penjor poles line "
                    "the streets. It happens every 210 days.")}},

    {"bold-led paragraphs, IT",
     "Certo! Ecco tre concetti culturali:\n\n"
     "**Malu** \xe2\x80\x94 il senso di vergogna che guida il "
     "comportamento sociale.\n\n"
     "**Gengsi**: il prestigio, l'apparenza davanti agli altri.\n\n"
     "**Jam karet** \xe2\x80\x93 il \"tempo di gomma\", la puntualit\xc3\xa0 "
     "flessibile.\n\n"
     "Spero che ti siano utili!",
     JIWA_LIST_BOLD,
     {T("Malu", "il senso di vergogna che guida il comportamento sociale."),
      T("Gengsi", "il prestigio, l'apparenza davanti agli altri."),
      T("Jam karet", "il \"tempo di gomma\", la puntualit\xc3\xa0 "
                     "flessibile.")}},

    {"duplicates differing in case, spacing, emphasis",
     "- Respect the offerings on the pavement.\n"
     "-  respect   the OFFERINGS on the pavement\n"
     "- **Respect** the offerings on the pavement!\n"
     "- Dress modestly in villages.\n",
     JIWA_LIST_BULLETS,
     {X("Respect the offerings on the pavement."),
      X("Dress modestly in villages.")}},

    {"numbered with nested sub-bullets folded",
     "1. KITAS documents:\n"
     "   - passport valid 18 months\n"
     "   - sponsor letter\n"
     "2. VOA extension\n"
     "   - apply at the immigration office before day 30\n",
     JIWA_LIST_NUMBERED,
     {T("KITAS documents", "passport valid 18 months; sponsor letter"),
      X("VOA extension; apply at the immigration office before day 30")}},

    {"CR-only line ends",
     "Here you go:\r* Tipping is appreciated, not required.\r* Bargain "
     "politely at markets.\r* Ask before photographing ceremonies.\r",
     JIWA_LIST_BULLETS,
     {X("Tipping is appreciated, not required."),
      X("Bargain politely at markets."),
      X("Ask before photographing ceremonies.")}},

    {"golden answer candidates: questions with answers",
     "Based on the cluster, here are candidate golden answers:\n\n"
     "1. How long does a KITAS take? Usually 2\xe2\x80\x93" "4 weeks once "
     "the sponsor has submitted everything.\n"
     "2. Can I extend a VOA online? Yes, once, for another 30 days "
     "through the e-Visa site.\n",
     JIWA_LIST_NUMBERED,
     {X("How long does a KITAS take? Usually 2\xe2\x80\x93" "4 weeks once "
        "the sponsor has submitted everything."),
      X("Can I extend a VOA online? Yes, once, for another 30 days through "
        "the e-Visa site.")}},

    {"star bullets with lazy wrapped lines",
     "* Land cannot be owned freehold by foreigners; use hak pakai\n"
     "or a long leasehold.\n"
     "* A PT PMA needs a minimum paid-up capital set by BKPM\n"
     "rules, check the current figure.\n",
     JIWA_LIST_BULLETS,
     {X("Land cannot be owned freehold by foreigners; use hak pakai or a "
        "long leasehold."),
      X("A PT PMA needs a minimum paid-up capital set by BKPM rules, check "
        "the current figure.")}},

    {"en-dash bullets, Indonesian, term - text",
     "\xe2\x80\x93 NPWP \xe2\x80\x93 nomor pokok wajib pajak, wajib untuk "
     "pemegang KITAS.\n"
     "\xe2\x80\x93 NIB \xe2\x80\x93 nomor induk berusaha dari OSS.\n",
     JIWA_LIST_BULLETS,
     {T("NPWP", "nomor pokok wajib pajak, wajib untuk pemegang KITAS."),
      T("NIB", "nomor induk berusaha dari OSS.")}},

    {"bold section labels between bullet groups",
     "**Family**\n"
     "- Elders are greeted first.\n"
     "- The youngest son often inherits the family compound.\n\n"
     "**Religion**\n"
     "- Temples have three courtyards.\n",
     JIWA_LIST_BULLETS,
     {X("Elders are greeted first."),
      X("The youngest son often inherits the family compound."),
      X("Temples have three courtyards.")}},

    {"plain lines, one per insight",
     "Here are a few insights:\n"
     "Balinese Hinduism differs from Indian Hinduism.\n"
     "Every family compound has a house temple.\n"
     "Kuningan comes ten days after Galungan.\n",
     JIWA_LIST_PARAGRAPHS,
     {X("Balinese Hinduism differs from Indian Hinduism."),
      X("Every family compound has a house temple."),
      X("Kuningan comes ten days after Galungan.")}},

    {"one wrapped paragraph is one item",
     "The overstay penalty is IDR 1,000,000 per day and\n"
     "longer overstays can lead to deportation and a\n"
     "ban on re-entry.",
     JIWA_LIST_PARAGRAPHS,
     {X("The overstay penalty is IDR 1,000,000 per day and longer "
        "overstays can lead to deportation and a ban on re-entry.")}},

    {"json object mapping titles to texts",
     "{\"Malu\": \"Shame that regulates behaviour.\", \"Gengsi\": "
     "\"Prestige and saving face.\"}",
     JIWA_LIST_JSON,
     {T("Malu", "Shame that regulates behaviour."),
      T("Gengsi", "Prestige and saving face.")}},

    {"truncated json in a fence: complete quoted lines only",
     "```json\n"
     "[\n"
     "  \"Canang sari are daily offerings.\",\n"
     "  \"Step around offerings, never on them.\",\n"
     "  \"Penjor are bamboo poles for Galun",
     JIWA_LIST_JSON,
     {X("Canang sari are daily offerings."),
      X("Step around offerings, never on them.")}},

    {"italian headings",
     "## Il NPWP\n"
     "Il codice fiscale indonesiano, serve per il conto in banca.\n\n"
     "## La BPJS\n"
     "L'assicurazione sanitaria nazionale, obbligatoria con il KITAS.\n",
     JIWA_LIST_HEADINGS,
     {T("Il NPWP", "Il codice fiscale indonesiano, serve per il conto in "
                   "banca."),
      T("La BPJS", "L'assicurazione sanitaria nazionale, obbligatoria con "
                   "il KITAS.")}},

    {"indonesian numbered in parentheses",
     "Berikut kandidat jawaban:\n"
     "(1) Perpanjangan VOA bisa dilakukan sekali secara online.\n"
     "(2) Denda overstay Rp1.000.000 per hari.\n",
     JIWA_LIST_NUMBERED,
     {X("Perpanjangan VOA bisa dilakukan sekali secara online."),
      X("Denda overstay Rp1.000.000 per hari.")}},

    {"only chatter: no items",
     "Sure! Here you go:\n\nLet me know if you need anything else.\n",
     JIWA_LIST_NONE,
     {{NULL, NULL}}},

    {"colon in a time is not a title; short term colon is",
     "- The office opens at 08:30 and closes at 15:00.\n"
     "- Tax deadline: 31 March for individuals.\n"
     "- This is a much longer phrase than a title would be: so no split.\n",
     JIWA_LIST_BULLETS,
     {X("The office opens at 08:30 and closes at 15:00."),
      T("Tax deadline", "31 March for individuals."),
      X("This is a much longer phrase than a title would be: so no "
        "split.")}},

    {"json objects with indonesian keys",
     "{\"daftar\": [{\"judul\": \"Ngaben\", \"isi\": \"Upacara "
     "kremasi.\"}, {\"judul\": \"Melasti\", \"isi\": \"Penyucian di "
     "laut.\"}]}",
     JIWA_LIST_JSON,
     {T("Ngaben", "Upacara kremasi."), T("Melasti", "Penyucian di laut.")}},

    {"numbered items separated by blank lines, indented continuation",
     "1. Open a bank account\n\n"
     "   Bring your KITAS, passport and NPWP to the branch.\n\n"
     "2. Register with BPJS\n\n"
     "   Your employer does it for you if you work for a PT.\n\n"
     "That's all you need to start.\n",
     JIWA_LIST_NUMBERED,
     {T("Open a bank account",
        "Bring your KITAS, passport and NPWP to the branch."),
      T("Register with BPJS",
        "Your employer does it for you if you work for a PT.")}},

    {"numbered with bold title alone on its line",
     "1. **Subak**\n"
     "   The traditional irrigation cooperative.\n"
     "2. **Banjar**\n"
     "   The neighbourhood council.\n",
     JIWA_LIST_NUMBERED,
     {T("Subak", "The traditional irrigation cooperative."),
      T("Banjar", "The neighbourhood council.")}},

    {"horizontal rules and an epilogue paragraph",
     "---\n"
     "+ Drink bottled water.\n"
     "+ Use a licensed money changer.\n"
     "---\n"
     "Note that rules change often, check with immigration.\n",
     JIWA_LIST_BULLETS,
     {X("Drink bottled water."), X("Use a licensed money changer.")}},
};

static void check_case(const case_t *c) {
  jiwa_list_t *l = NULL;
  int rc = jiwa_listparse(c->input, strlen(c->input), NULL, &l);
  assert_int_equal(rc, 0);
  assert_non_null(l);
  size_t want = 0;
  while (want < 10 && c->items[want].text)
    want++;
  int ok = l->n == want && l->format == c->format;
  for (size_t i = 0; ok && i < want; i++) {
    const jiwa_list_item_t *it = &l->items[i];
    ok = !strcmp(it->text, c->items[i].text) &&
         it->text_len == strlen(it->text) &&
         (c->items[i].title ? it->title &&
                                  !strcmp(it->title, c->items[i].title) &&
                                  it->title_len == strlen(it->title)
                            : it->title == NULL && it->title_len == 0);
  }
  if (!ok) {
    print_error("case '%s': got %zu items (%s), want %zu (%s)\n", c->name,
                l->n, jiwa_list_format_name(l->format), want,
                jiwa_list_format_name(c->format));
    for (size_t i = 0; i < l->n; i++)
      print_error("  got  [%s] %s\n",
                  l->items[i].title ? l->items[i].title : "-",
                  l->items[i].text);
    for (size_t i = 0; i < want; i++)
      print_error("  want [%s] %s\n",
                  c->items[i].title ? c->items[i].title : "-",
                  c->items[i].text);
  }
  jiwa_list_free(l);
  if (!ok)
    fail();
}

static void test_cases(void **state) {
  (void)state;
  size_t n = sizeof k_cases / sizeof k_cases[0];
  assert_true(n >= 25);
  for (size_t i = 0; i < n; i++)
    check_case(&k_cases[i]);
}

static void test_dups_and_limits(void **state) {
  (void)state;
  jiwa_list_t *l;
  const char *in = "- A one.\n- b two\n- a ONE\n- c three\n- d four\n";
  assert_int_equal(jiwa_listparse(in, strlen(in), NULL, &l), 0);
  assert_int_equal(l->n, 4);
  assert_int_equal(l->duplicates, 1);
  assert_int_equal(l->truncated, 0);
  jiwa_list_free(l);
  jiwa_listparse_limits_t lim = {.max_items = 2};
  assert_int_equal(jiwa_listparse(in, strlen(in), &lim, &l), 0);
  assert_int_equal(l->n, 2);
  assert_string_equal(l->items[1].text, "b two");
  assert_int_equal(l->truncated, 1);
  jiwa_list_free(l);
  /* an item is cut at a UTF-8 boundary: 15 ASCII bytes + a 2-byte 'à' */
  const char *u = "- aaaaaaaaaaaaaa\xc3\xa0\xc3\xa0 tail\n";
  lim = (jiwa_listparse_limits_t){.max_item_len = 16};
  assert_int_equal(jiwa_listparse(u, strlen(u), &lim, &l), 0);
  assert_int_equal(l->n, 1);
  assert_string_equal(l->items[0].text, "aaaaaaaaaaaaaa\xc3\xa0");
  assert_int_equal(l->truncated, 1);
  jiwa_list_free(l);
  /* max_input: only the first bytes are read */
  lim = (jiwa_listparse_limits_t){.max_input = 9};
  assert_int_equal(jiwa_listparse(in, strlen(in), &lim, &l), 0);
  assert_int_equal(l->n, 1);
  assert_string_equal(l->items[0].text, "A one.");
  assert_int_equal(l->truncated, 1);
  jiwa_list_free(l);
  /* arguments */
  l = (jiwa_list_t *)&lim;
  assert_int_equal(jiwa_listparse(NULL, 3, NULL, &l), JIWA_EINVAL);
  assert_null(l);
  assert_int_equal(jiwa_listparse(in, 3, NULL, NULL), JIWA_EINVAL);
  lim = (jiwa_listparse_limits_t){.max_item_len = 15};
  assert_int_equal(jiwa_listparse(in, 3, &lim, &l), JIWA_EINVAL);
  assert_int_equal(jiwa_listparse(NULL, 0, NULL, &l), 0);
  assert_int_equal(l->n, 0);
  assert_int_equal(l->format, JIWA_LIST_NONE);
  jiwa_list_free(l);
  jiwa_list_free(NULL);
  assert_string_equal(jiwa_list_format_name(JIWA_LIST_BOLD), "bold");
}

/* hostile shapes: NUL bytes, invalid UTF-8, very long lines, deep JSON,
 * many items, all within the bounds */
static void test_hostile(void **state) {
  (void)state;
  jiwa_list_t *l;
  const char nul[] = "- a\0b\n- \xff\xfe\xc3 text\n- \n-\n";
  assert_int_equal(jiwa_listparse(nul, sizeof nul - 1, NULL, &l), 0);
  assert_int_equal(l->n, 2);
  assert_string_equal(l->items[0].text, "a b"); /* NUL is a blank */
  jiwa_list_free(l);
  size_t n = 200000;
  char *big = malloc(n + 1);
  assert_non_null(big);
  for (size_t i = 0; i < n; i++)
    big[i] = "[{\"a\":"[i % 6];
  assert_int_equal(jiwa_listparse(big, n, NULL, &l), 0);
  jiwa_list_free(l);
  /* 20000 distinct bullet items: capped at the default 256 */
  size_t k = 0;
  for (int i = 0; i < 20000 && k + 16 < n; i++)
    k += (size_t)snprintf(big + k, n - k, "- item %d\n", i);
  assert_int_equal(jiwa_listparse(big, k, NULL, &l), 0);
  assert_int_equal(l->n, JIWA_LIST_DEFAULT_MAX_ITEMS);
  assert_int_equal(l->truncated, 1);
  assert_string_equal(l->items[255].text, "item 255");
  jiwa_list_free(l);
  /* one enormous line */
  memset(big, 'x', n);
  big[0] = '-';
  big[1] = ' ';
  assert_int_equal(jiwa_listparse(big, n, NULL, &l), 0);
  assert_int_equal(l->n, 1);
  assert_int_equal(l->items[0].text_len, JIWA_LIST_DEFAULT_MAX_ITEM_LEN);
  jiwa_list_free(l);
  free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases),
      cmocka_unit_test(test_dups_and_limits),
      cmocka_unit_test(test_hostile),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
