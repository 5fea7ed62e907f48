/**
 * @file jiwa_guard.h
 * @brief The golden cache's false-hit guard: is a query really the same
 *        question as a cached one?
 *
 * A semantic cache answers a query with the stored answer of the closest
 * cached question. Vectors alone are not enough: "how long does a KITAS
 * take" and "how much does a KITAS cost" are close in any lexical or
 * semantic space, and serving one's answer for the other is a wrong answer
 * served with confidence. After the similarity threshold, the guard checks,
 * in order:
 *  1. language: by default the cached answer must be in the query's
 *     language (an Italian user does not get an Indonesian answer);
 *  2. intent: what the question asks for — duration ("how long", "berapa
 *     lama", "quanto tempo"), cost ("how much", "biaya", "quanto costa"),
 *     requirements, process, permission, place, time, penalty — must be
 *     the same set on both sides (a side with none, the other with one, is
 *     a miss: a bare "KITAS?" is not "KITAS processing time");
 *  3. facts (jiwa_facts.h): the same numbers (with what they measure), the
 *     same document names, the same number of negations;
 *  4. content words: the words left once stopwords, courtesy words ("pak",
 *     "tolong", "please", "grazie"...), intent phrases and numbers are
 *     removed must mostly be shared both ways (coverage ≥ min_coverage of
 *     each side; words compared by their first 5 letters, a crude stem that
 *     holds "company/companies", "visto/visti").
 * Lexical and conservative on purpose: a miss costs one model call, a false
 * hit costs a wrong answer.
 */
#ifndef JIWA_GUARD_H
#define JIWA_GUARD_H

#include <stddef.h>

/** Options; zero-initialised fields take the defaults. */
typedef struct {
  int any_language;    /**< 1: skip the language check (default 0) */
  float min_coverage;  /**< 0..1, default 0.6 */
} jiwa_guard_opts_t;

/** Why a pair is not the same question. */
typedef enum {
  JIWA_GUARD_SAME = 0,
  JIWA_GUARD_LANGUAGE,
  JIWA_GUARD_INTENT,
  JIWA_GUARD_FACTS,
  JIWA_GUARD_WORDS,
} jiwa_guard_verdict_t;

/**
 * @brief Check whether @p query may be answered with the answer cached for
 * @p cached.
 * @param lang_q,lang_c language codes ("en", "id", "it", "unknown"; NULL =
 *        unknown). Two known, different languages fail check 1.
 * @param verdict out: JIWA_GUARD_SAME or the first check that failed.
 * @param why,whylen out (may be NULL/0): the reason in one line, e.g.
 *        "intent differs: duration vs cost".
 * @return 0, or JIWA_EINVAL (NULL text, or longer than
 *         JIWA_FACTS_MAX_TEXT), JIWA_ENOMEM.
 * @note Thread-safe; allocates only inside the fact check.
 */
int jiwa_guard_check(const char *query, size_t qlen, const char *lang_q,
                     const char *cached, size_t clen, const char *lang_c,
                     const jiwa_guard_opts_t *opts,
                     jiwa_guard_verdict_t *verdict, char *why, size_t whylen);

/** @brief "same", "language", "intent", "facts" or "words". */
const char *jiwa_guard_verdict_name(jiwa_guard_verdict_t v);

#endif
