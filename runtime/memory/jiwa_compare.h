/**
 * @file jiwa_compare.h
 * @brief Shadow mode: compare the primary model's answer and the shadow
 *        (secondary) model's answer to the same request.
 *
 * Measures: latency (given by the caller), length in characters (code
 * points) and word tokens (jiwa_textnorm.h), the language of each answer
 * (jiwa_lang_detect, kept when its confidence is >= 0.5) and whether it is
 * the expected one (the request's language, or the primary answer's when
 * the request's is unknown), lexical similarity (Jaccard of the two token
 * sets, cosine of hash embeddings), and facts agreement (jiwa_facts.h:
 * numbers, amounts, durations, document names, negations) with the list
 * of disagreements.
 *
 * Verdict for the shadow — the rule, in order (reasons are collected for
 * every rule that fires, the verdict is the first one's):
 *  1. both answers without a word: TIE ("both empty");
 *     the shadow without a word: LOSE ("shadow answer empty");
 *  2. facts disagree with the primary's: LOSE (the primary is the
 *     reference; "facts: number 30 day is missing from the rewrite");
 *  3. the shadow is in a wrong language: LOSE; the shadow right and the
 *     primary wrong: WIN;
 *  4. the shadow much shorter (fewer than min_length_ratio of the primary's
 *     characters, primary >= 80 characters): LOSE ("likely incomplete");
 *  5. similarity = (jaccard + cosine) / 2:
 *     below diverge_similarity: LOSE ("diverges");
 *     at least agree_similarity and shadow latency <= (1 - latency_margin)
 *     times the primary's: WIN ("agrees and is faster");
 *     otherwise TIE.
 * Lexical only: two correct answers worded differently look divergent; an
 * optional judge model belongs to the caller.
 *
 * Thread-safe. With @c emb NULL an internal hash embedder (512 dims) is
 * created on first use and lives as long as the process.
 */
#ifndef JIWA_COMPARE_H
#define JIWA_COMPARE_H

#include <stddef.h>

#include "jiwa/mp.h"
#include "jiwa_embed.h"
#include "jiwa_lang.h"

/** Longest text compared (bytes); longer is JIWA_ETOOBIG. */
#define JIWA_COMPARE_MAX_TEXT (128u * 1024u)
#define JIWA_COMPARE_MAX_DISAGREE 8
#define JIWA_COMPARE_MAX_REASONS 6

typedef enum {
  JIWA_VERDICT_TIE = 0,
  JIWA_VERDICT_WIN = 1,  /**< the shadow did better */
  JIWA_VERDICT_LOSE = 2, /**< the shadow did worse */
} jiwa_verdict_t;

/** What to compare. Texts are borrowed for the call. */
typedef struct {
  const char *request;      /**< the user's message (may be NULL/0) */
  size_t request_len;
  const char *request_lang; /**< "en"/"id"/"it" when the router knows it;
                                 NULL = detect from @c request */
  const char *primary;
  size_t primary_len;
  double primary_ms; /**< latency of the primary answer */
  const char *shadow;
  size_t shadow_len;
  double shadow_ms;
} jiwa_compare_input_t;

/** Thresholds; zero fields take the defaults. */
typedef struct {
  double agree_similarity;   /**< default 0.5 */
  double diverge_similarity; /**< default 0.15 */
  double latency_margin;     /**< default 0.2 */
  double min_length_ratio;   /**< default 0.3 */
} jiwa_compare_opts_t;

/** The comparison, as a plain value. */
typedef struct {
  double primary_ms, shadow_ms;
  size_t primary_chars, shadow_chars;
  size_t primary_tokens, shadow_tokens;
  jiwa_lang_t request_lang, expected_lang, primary_lang, shadow_lang;
  int primary_lang_ok, shadow_lang_ok; /**< 1 unless known and different */
  double jaccard;    /**< 0..1 (1 when both have no token) */
  double cosine;     /**< -1..1 (1 when both have no token) */
  double similarity; /**< (jaccard + max(cosine, 0)) / 2 */
  int facts_agree;   /**< 1 or 0 */
  unsigned ndisagree;
  char disagree[JIWA_COMPARE_MAX_DISAGREE][160]; /**< printable ASCII */
  jiwa_verdict_t verdict;
  unsigned nreasons;
  char reasons[JIWA_COMPARE_MAX_REASONS][160]; /**< first = the verdict's */
} jiwa_compare_result_t;

/**
 * @brief Compare a primary and a shadow answer.
 * @param emb  embedder for the cosine (borrowed; NULL = internal hash-512).
 * @param opts may be NULL.
 * @param out  filled in (zeroed first).
 * @return 0, JIWA_EINVAL (NULL @p in or @p out, a NULL text with a non-zero
 *         length, a negative or NaN latency), JIWA_ETOOBIG (a text longer
 *         than JIWA_COMPARE_MAX_TEXT), JIWA_ENOMEM, or the embedder's
 *         error.
 */
int jiwa_compare(const jiwa_compare_input_t *in, jiwa_embed_t *emb,
                 const jiwa_compare_opts_t *opts, jiwa_compare_result_t *out);

/**
 * @brief Pack a result as one msgpack map (for the store): primary_ms,
 *        shadow_ms, primary_chars, shadow_chars, primary_tokens,
 *        shadow_tokens, request_lang, expected_lang, primary_lang,
 *        shadow_lang (codes), primary_lang_ok, shadow_lang_ok (bools),
 *        jaccard, cosine, similarity, facts_agree (bool), disagreements
 *        [str], verdict ("win" | "lose" | "tie"), reasons [str].
 * @return 0, JIWA_EINVAL (NULL argument), JIWA_ENOMEM (the packer failed).
 */
int jiwa_compare_pack(const jiwa_compare_result_t *r, msgpack_packer *pk);

/** @brief The same into a malloc'd buffer (free()). Same errors. */
int jiwa_compare_to_mp(const jiwa_compare_result_t *r, char **out,
                       size_t *outlen);

/** @brief "win", "lose" or "tie" (static string). */
const char *jiwa_verdict_name(jiwa_verdict_t v);

#endif /* JIWA_COMPARE_H */
