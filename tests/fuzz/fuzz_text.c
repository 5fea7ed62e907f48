/*
 * Fuzz target for the text area (runtime/text): language detection and the
 * hash embedder on arbitrary bytes, both the way they are called in
 * production (detected language) and with each stemmer forced.
 *
 * Invariants (abort on breach):
 *  - jiwa_lang_detect returns 0, a code among en/id/it/unknown that matches
 *    the enum, confidence in [0,1] equal to the verdict's score, scores in
 *    [0,1] summing to 1, at most JIWA_LANG_MAX_TOKENS tokens;
 *  - every embedding is finite with norm 0 or 1 +- 1e-4, and the batch call
 *    gives the same row as the single call;
 *  - normalised text is NUL-terminated, within its buffer, and is a
 *    fixpoint (normalising it again changes nothing).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa_embed.h"
#include "jiwa_lang.h"
#include "jiwa_textnorm.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_text: invariant failed at line %d: %s\n",          \
              __LINE__, #cond);                                                \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#define DIM 128

static jiwa_embed_t *g_emb;

static void cleanup(void) {
  jiwa_embed_destroy(g_emb);
}

static void check_vec(const float *v) {
  double n = 0;
  for (int i = 0; i < DIM; i++) {
    CHECK(isfinite(v[i]));
    n += (double)v[i] * v[i];
  }
  n = sqrt(n);
  CHECK(n == 0.0 || fabs(n - 1.0) <= 1e-4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_emb) {
    CHECK(jiwa_embed_hash_new(DIM, &g_emb) == 0);
    atexit(cleanup);
  }
  const char *text = (const char *)data;

  jiwa_lang_result_t r;
  CHECK(jiwa_lang_detect(text, size, &r) == 0);
  CHECK(r.lang >= JIWA_LANG_UNKNOWN && r.lang <= JIWA_LANG_IT);
  CHECK(strcmp(r.code, "en") == 0 || strcmp(r.code, "id") == 0 ||
        strcmp(r.code, "it") == 0 || strcmp(r.code, "unknown") == 0);
  CHECK(strcmp(r.code, jiwa_lang_code(r.lang)) == 0);
  CHECK(r.confidence >= 0.0f && r.confidence <= 1.0f);
  CHECK(r.confidence == r.scores[r.lang]);
  CHECK(r.tokens <= JIWA_LANG_MAX_TOKENS);
  float sum = 0;
  for (int k = 0; k < JIWA_LANG_COUNT; k++) {
    CHECK(r.scores[k] >= 0.0f && r.scores[k] <= 1.0f);
    sum += r.scores[k];
  }
  CHECK(fabsf(sum - 1.0f) < 1e-3f);

  float a[DIM], b[DIM];
  CHECK(jiwa_embed_hash_text(g_emb, text, size, NULL, a) == 0);
  check_vec(a);
  CHECK(jiwa_embed_texts(g_emb, &text, &size, 1, b) == 0);
  CHECK(memcmp(a, b, sizeof a) == 0);
  static const char *const langs[] = {"en", "id", "it", "none"};
  for (int i = 0; i < 4; i++) {
    CHECK(jiwa_embed_hash_text(g_emb, text, size, langs[i], b) == 0);
    check_vec(b);
  }

  static char norm1[3 * JIWA_TEXT_MAX_INPUT], norm2[3 * JIWA_TEXT_MAX_INPUT];
  size_t n1 = jiwa_text_normalize(text, size, norm1, sizeof norm1);
  CHECK(n1 < sizeof norm1 && norm1[n1] == '\0' && strlen(norm1) == n1);
  size_t n2 = jiwa_text_normalize(norm1, n1, norm2, sizeof norm2);
  CHECK(n1 == n2 && memcmp(norm1, norm2, n1) == 0);
  return 0;
}
