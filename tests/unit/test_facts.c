/* The tone adapter's fact check (runtime/text/jiwa_facts.h) on the pairs
 * of tests/data/factcheck/pairs.tsv: rewrites that keep every fact pass,
 * rewrites that change one number, amount, percentage, duration, document
 * name or negation are caught, and the reason names the fact. */
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

static void pairs_from_file(void **state) {
  (void)state;
  char path[1024];
  const char *src = getenv("JIWA_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/tests/data/factcheck/pairs.tsv",
           src ? src : ".");
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[4096];
  int n = 0, kept = 0, changed = 0, bad = 0, lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\n")] = 0;
    if (line[0] == '#' || line[0] == 0)
      continue;
    char *expect = strtok(line, "\t"), *orig = strtok(NULL, "\t"),
         *rew = strtok(NULL, "\t"), *reason = strtok(NULL, "\t");
    assert_non_null(expect);
    assert_non_null(orig);
    assert_non_null(rew);
    char why[256];
    int rc = jiwa_facts_compare(orig, strlen(orig), rew, strlen(rew), why,
                                sizeof why);
    int want = strcmp(expect, "changed") == 0;
    n++;
    want ? changed++ : kept++;
    if (rc != want || (reason && !strstr(why, reason))) {
      bad++;
      fprintf(stderr, "pairs.tsv:%d: expected %s%s%s, got %d (%s)\n", lineno,
              expect, reason ? " because " : "", reason ? reason : "", rc,
              why);
    }
  }
  fclose(f);
  printf("fact check: %d pairs (%d kept, %d with one fact changed), %d "
         "wrong\n",
         n, kept, changed, bad);
  assert_true(n >= 20);
  assert_true(kept >= 10 && changed >= 10);
  assert_int_equal(bad, 0);
}

static void symmetric_and_bounded(void **state) {
  (void)state;
  const char *a = "Biaya KITAS Rp 12.500.000, tidak termasuk pajak 11%.";
  const char *b = "Biaya KITAS Rp 12.500.000 termasuk pajak 11%.";
  char why[128];
  assert_int_equal(jiwa_facts_compare(a, strlen(a), b, strlen(b), why,
                                      sizeof why),
                   1);
  assert_int_equal(jiwa_facts_compare(b, strlen(b), a, strlen(a), why,
                                      sizeof why),
                   1);
  assert_int_equal(jiwa_facts_compare(a, strlen(a), a, strlen(a), why,
                                      sizeof why),
                   0);
  assert_string_equal(why, "");
  /* same value written three ways */
  const char *c = "The fee is Rp 5 juta.", *d = "The fee is IDR 5,000,000.",
             *e = "Biayanya Rp5.000.000 saja.";
  assert_int_equal(jiwa_facts_compare(c, strlen(c), d, strlen(d), NULL, 0),
                   0);
  assert_int_equal(jiwa_facts_compare(c, strlen(c), e, strlen(e), NULL, 0),
                   0);
  assert_int_equal(jiwa_facts_compare(NULL, 0, a, 1, why, sizeof why),
                   JIWA_EINVAL);
  size_t big = JIWA_FACTS_MAX_TEXT + 1;
  char *huge = malloc(big);
  assert_non_null(huge);
  memset(huge, '7', big);
  assert_int_equal(jiwa_facts_compare(huge, big, a, strlen(a), NULL, 0),
                   JIWA_EINVAL);
  /* at the limit: digits, separators, junk bytes, no crash */
  for (size_t i = 0; i < JIWA_FACTS_MAX_TEXT; i++)
    huge[i] = "9.,%$ \xe2\x82\xac" "aZ-'\x80\xff"[i % 15];
  int rc = jiwa_facts_compare(huge, JIWA_FACTS_MAX_TEXT, huge,
                              JIWA_FACTS_MAX_TEXT, why, sizeof why);
  assert_int_equal(rc, 0);
  free(huge);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pairs_from_file),
      cmocka_unit_test(symmetric_and_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
