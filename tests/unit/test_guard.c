/* The golden cache's false-hit guard (runtime/text/jiwa_guard.h) on the
 * pairs of tests/data/golden/guard_pairs.tsv: paraphrases of a cached
 * question pass; a different intent ("how long" vs "how much"), a changed
 * number, document or negation, different content words or another
 * language are each refused with the check that caught them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa_facts.h"
#include "jiwa_guard.h"

static void pairs_from_file(void **state) {
  (void)state;
  char path[1024];
  const char *src = getenv("JIWA_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/tests/data/golden/guard_pairs.tsv",
           src ? src : ".");
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[2048];
  int n = 0, bad = 0, lineno = 0, per[5] = {0};
  while (fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\n")] = 0;
    if (line[0] == '#' || line[0] == 0)
      continue;
    char *expect = strtok(line, "\t"), *lq = strtok(NULL, "\t"),
         *q = strtok(NULL, "\t"), *lc = strtok(NULL, "\t"),
         *c = strtok(NULL, "\t");
    assert_non_null(c);
    jiwa_guard_verdict_t v;
    char why[256];
    assert_int_equal(jiwa_guard_check(q, strlen(q), lq, c, strlen(c), lc,
                                      NULL, &v, why, sizeof why),
                     0);
    n++;
    per[v]++;
    if (strcmp(jiwa_guard_verdict_name(v), expect) != 0) {
      bad++;
      fprintf(stderr, "guard_pairs.tsv:%d: expected %s, got %s (%s)\n",
              lineno, expect, jiwa_guard_verdict_name(v), why);
    }
    if (v != JIWA_GUARD_SAME)
      assert_true(why[0] != 0);
  }
  fclose(f);
  printf("guard: %d pairs: %d same, %d language, %d intent, %d facts, %d "
         "words; %d wrong\n",
         n, per[0], per[1], per[2], per[3], per[4], bad);
  assert_true(n >= 40);
  assert_int_equal(bad, 0);
}

static void options_and_errors(void **state) {
  (void)state;
  const char *q = "how long does a KITAS take?", *c = "berapa lama KITAS?";
  jiwa_guard_verdict_t v;
  jiwa_guard_opts_t any = {.any_language = 1};
  assert_int_equal(jiwa_guard_check(q, strlen(q), "en", c, strlen(c), "id",
                                    NULL, &v, NULL, 0),
                   0);
  assert_int_equal(v, JIWA_GUARD_LANGUAGE);
  /* with any language allowed, the next checks decide */
  assert_int_equal(jiwa_guard_check(q, strlen(q), "en", c, strlen(c), "id",
                                    &any, &v, NULL, 0),
                   0);
  assert_true(v != JIWA_GUARD_LANGUAGE);
  /* unknown language is not a mismatch */
  assert_int_equal(jiwa_guard_check(q, strlen(q), "unknown", q, strlen(q),
                                    "en", NULL, &v, NULL, 0),
                   0);
  assert_int_equal(v, JIWA_GUARD_SAME);
  assert_int_equal(jiwa_guard_check(NULL, 0, "en", q, 1, "en", NULL, &v,
                                    NULL, 0),
                   JIWA_EINVAL);
  /* junk bytes: no crash, a verdict */
  char junk[4096];
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (char)(i * 131 + 7);
  assert_int_equal(jiwa_guard_check(junk, sizeof junk, NULL, junk,
                                    sizeof junk, NULL, NULL, &v, NULL, 0),
                   0);
  assert_int_equal(v, JIWA_GUARD_SAME);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pairs_from_file),
      cmocka_unit_test(options_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
