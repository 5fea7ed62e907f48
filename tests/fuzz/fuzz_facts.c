/* Fuzz target for the tone adapter's fact check (runtime/text/
 * jiwa_facts.c), which reads model output. The input is split at its first
 * NUL into an original and a rewrite. Invariants: the result is 0 or 1 for
 * any bytes within the limit, a text compared with itself keeps its facts,
 * and the verdict does not depend on the order of the pair. The golden
 * cache's false-hit guard (jiwa_guard.c) runs on the same pair. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa_facts.h"
#include "jiwa_guard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  const char *nul = memchr(s, 0, size);
  size_t alen = nul ? (size_t)(nul - s) : size;
  const char *b = nul ? nul + 1 : s;
  size_t blen = nul ? size - alen - 1 : size;
  char why[256];
  int ab = jiwa_facts_compare(s, alen, b, blen, why, sizeof why);
  int ba = jiwa_facts_compare(b, blen, s, alen, NULL, 0);
  int aa = jiwa_facts_compare(s, alen, s, alen, NULL, 0);
  if (ab < 0 || ab > 1 || ab != ba || aa != 0 || (ab == 1 && !why[0]) ||
      (ab == 0 && why[0]))
    abort();
  /* the golden cache's guard on the same pair: a verdict, the same both
   * ways, and a text is always the same question as itself */
  jiwa_guard_verdict_t g1, g2, g3;
  if (jiwa_guard_check(s, alen, NULL, b, blen, NULL, NULL, &g1, why,
                       sizeof why) != 0 ||
      jiwa_guard_check(b, blen, NULL, s, alen, NULL, NULL, &g2, NULL, 0) !=
          0 ||
      jiwa_guard_check(s, alen, "en", s, alen, "en", NULL, &g3, NULL, 0) !=
          0 ||
      g1 != g2 || g3 != JIWA_GUARD_SAME || g1 > JIWA_GUARD_WORDS ||
      (g1 != JIWA_GUARD_SAME && !why[0]))
    abort();
  return 0;
}
