/* The shadow comparison (runtime/memory/jiwa_compare.h) on the answer pairs
 * of tests/data/memory/shadow_pairs.tsv: facts kept vs changed, language
 * mismatches, near-identical answers, empty and truncated answers; the
 * verdict, the facts verdict, the disagreements and the reason are the
 * expected ones, and the msgpack record holds the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa/json.h"
#include "jiwa/mp.h"
#include "jiwa_compare.h"

static char *field(char **save) {
  char *s = *save, *t = strchr(s, '\t');
  if (t) {
    *t = 0;
    *save = t + 1;
  } else {
    *save = s + strlen(s);
  }
  return s;
}

static void pairs(void **state) {
  (void)state;
  char path[1024];
  const char *src = getenv("JIWA_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/tests/data/memory/shadow_pairs.tsv",
           src ? src : ".");
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[8192];
  int n = 0, bad = 0, lineno = 0;
  unsigned verdicts[3] = {0};
  while (fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\n")] = 0;
    if (!line[0] || line[0] == '#')
      continue;
    char *save = line;
    const char *verdict = field(&save), *facts = field(&save);
    unsigned min_dis = (unsigned)atoi(field(&save));
    const char *why = field(&save), *rlang = field(&save);
    double pms = atof(field(&save)), sms = atof(field(&save));
    const char *req = field(&save), *prim = field(&save), *shad = field(&save);
    jiwa_compare_input_t in = {req, strlen(req),
                               strcmp(rlang, "-") ? rlang : NULL,
                               prim, strlen(prim), pms, shad, strlen(shad),
                               sms};
    jiwa_compare_result_t r;
    assert_int_equal(jiwa_compare(&in, NULL, NULL, &r), 0);
    n++;
    verdicts[r.verdict]++;
    int ok = !strcmp(verdict, jiwa_verdict_name(r.verdict)) &&
             r.facts_agree == !strcmp(facts, "agree") &&
             r.ndisagree >= min_dis && (r.facts_agree == (r.ndisagree == 0));
    int found = !strcmp(why, "-");
    for (unsigned i = 0; i < r.nreasons && !found; i++)
      found = strstr(r.reasons[i], why) != NULL;
    for (unsigned i = 0; i < r.ndisagree && !found; i++)
      found = strstr(r.disagree[i], why) != NULL;
    printf("  %-4s sim %.2f (j %.2f c %.2f) lang %s/%s/%s %s\n",
           jiwa_verdict_name(r.verdict), r.similarity, r.jaccard, r.cosine,
           jiwa_lang_code(r.expected_lang), jiwa_lang_code(r.primary_lang),
           jiwa_lang_code(r.shadow_lang), r.nreasons ? r.reasons[0] : "");
    for (unsigned i = 0; i < r.ndisagree; i++)
      printf("       - %s\n", r.disagree[i]);
    if (!ok || !found) {
      bad++;
      fprintf(stderr,
              "shadow_pairs.tsv:%d: want %s/%s/>=%u/'%s', got %s/%s/%u\n",
              lineno, verdict, facts, min_dis, why,
              jiwa_verdict_name(r.verdict),
              r.facts_agree ? "agree" : "disagree", r.ndisagree);
    }
    /* the record: one msgpack map with the same verdict */
    char *mp, *json;
    size_t ml;
    assert_int_equal(jiwa_compare_to_mp(&r, &mp, &ml), 0);
    assert_int_equal(jiwa_mp_scan(mp, ml, 3, NULL), 0);
    char v[8];
    assert_int_equal(jiwa_mp_get_strcpy(mp, ml, "verdict", v, sizeof v), 0);
    assert_string_equal(v, verdict);
    int fa;
    assert_int_equal(jiwa_mp_get_bool(mp, ml, "facts_agree", &fa), 0);
    assert_int_equal(fa, r.facts_agree);
    double sim;
    assert_int_equal(jiwa_mp_get_double(mp, ml, "similarity", &sim), 0);
    assert_true(sim == r.similarity);
    assert_int_equal(jiwa_mp_to_json(mp, ml, &json, NULL), 0);
    free(json);
    free(mp);
  }
  fclose(f);
  printf("shadow comparison: %d pairs (win %u, lose %u, tie %u), %d wrong\n",
         n, verdicts[JIWA_VERDICT_WIN], verdicts[JIWA_VERDICT_LOSE],
         verdicts[JIWA_VERDICT_TIE], bad);
  assert_true(n >= 20);
  assert_int_equal(bad, 0);
}

static void properties(void **state) {
  (void)state;
  const char *a = "The KITAS takes 30 days and costs Rp 5 juta; you do not "
                  "need a sponsor.";
  jiwa_compare_input_t in = {NULL, 0, NULL, a, strlen(a), 1000, a, strlen(a),
                             1000};
  jiwa_compare_result_t r;
  assert_int_equal(jiwa_compare(&in, NULL, NULL, &r), 0);
  assert_true(r.jaccard == 1);
  assert_true(fabs(r.cosine - 1) < 1e-6);
  assert_int_equal(r.facts_agree, 1);
  assert_int_equal(r.verdict, JIWA_VERDICT_TIE); /* same answer, same speed */
  assert_int_equal(r.primary_tokens, r.shadow_tokens);
  assert_int_equal(r.primary_chars, strlen(a));
  /* a caller's embedder is used */
  jiwa_embed_t *emb;
  assert_int_equal(jiwa_embed_hash_new(64, &emb), 0);
  in.shadow_ms = 100;
  assert_int_equal(jiwa_compare(&in, emb, NULL, &r), 0);
  assert_int_equal(r.verdict, JIWA_VERDICT_WIN);
  jiwa_embed_destroy(emb);
  /* thresholds: with agree at 1.01 nothing agrees */
  jiwa_compare_opts_t o = {.agree_similarity = 1.01};
  assert_int_equal(jiwa_compare(&in, NULL, &o, &r), 0);
  assert_int_equal(r.verdict, JIWA_VERDICT_TIE);
  /* argument checks */
  in.primary_ms = -1;
  assert_int_equal(jiwa_compare(&in, NULL, NULL, &r), JIWA_EINVAL);
  in.primary_ms = NAN;
  assert_int_equal(jiwa_compare(&in, NULL, NULL, &r), JIWA_EINVAL);
  in.primary_ms = 1;
  in.shadow = NULL;
  assert_int_equal(jiwa_compare(&in, NULL, NULL, &r), JIWA_EINVAL);
  in.shadow = a;
  in.shadow_len = JIWA_COMPARE_MAX_TEXT + 1;
  assert_int_equal(jiwa_compare(&in, NULL, NULL, &r), JIWA_ETOOBIG);
  assert_int_equal(jiwa_compare(NULL, NULL, NULL, &r), JIWA_EINVAL);
  assert_string_equal(jiwa_verdict_name(JIWA_VERDICT_LOSE), "lose");
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(pairs),
                                     cmocka_unit_test(properties)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
