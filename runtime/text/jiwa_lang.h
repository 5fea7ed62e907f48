/**
 * @file jiwa_lang.h
 * @brief Language detection for the assistant's three languages: English,
 *        Indonesian and Italian; everything else is "unknown".
 *
 * Method (details in runtime/text/README.md): the text is normalised and
 * tokenized by jiwa_textnorm.h; each word scores against hand-written
 * lexicons (function words and common chat words, including informal
 * Indonesian: gue, nggak, banget, dong...) and against character-trigram
 * profiles generated from prose written for this project
 * (gen_profiles.py). Lexicons of German, French, Spanish, Portuguese, Dutch
 * and Javanese exist only to recognise those as "unknown". Domain words
 * used in every language (visa, kitas, PT PMA, pajak, tasse, Bali...) are
 * skipped so they never tip the balance.
 *
 * Caveats:
 *  - Malay is reported as "id" (the two are too close to separate with
 *    these features and an Indonesian reply suits a Malay speaker); a
 *    message dominated by Javanese function words is "unknown"; Indonesian
 *    with a few Javanese/Betawi words (nggak, gimana, sampeyan) stays "id".
 *  - Texts without letters (numbers, emoji, punctuation), texts mostly in
 *    non-Latin scripts, gibberish, and texts made only of domain words or
 *    "ok" are "unknown".
 *  - Only the first @ref JIWA_LANG_MAX_TOKENS word tokens are looked at,
 *    and at most JIWA_TEXT_MAX_INPUT bytes (64 KiB).
 *  - Thread-safe and allocation-free: tables are built once (pthread_once)
 *    into static storage; each call uses only its stack.
 */
#ifndef JIWA_LANG_H
#define JIWA_LANG_H

#include <stddef.h>

/** Languages jiwa tells apart. Values index jiwa_lang_result_t::scores. */
typedef enum {
  JIWA_LANG_UNKNOWN = 0,
  JIWA_LANG_EN = 1,
  JIWA_LANG_ID = 2,
  JIWA_LANG_IT = 3,
} jiwa_lang_t;

/** Number of jiwa_lang_t values (scores array size). */
#define JIWA_LANG_COUNT 4
/** Word tokens looked at, at most. */
#define JIWA_LANG_MAX_TOKENS 256

/** What jiwa_lang_detect() found. */
typedef struct {
  jiwa_lang_t lang; /**< the verdict */
  const char *code; /**< "en", "id", "it" or "unknown" (static string) */
  float confidence; /**< estimated probability that @c code is right, 0..1 */
  /** Probability of each jiwa_lang_t (index = value); they sum to 1. */
  float scores[JIWA_LANG_COUNT];
  unsigned tokens; /**< word tokens looked at */
} jiwa_lang_result_t;

/**
 * @brief Detect the language of @p len bytes of untrusted text.
 * @param text UTF-8 (invalid bytes are tolerated); may be NULL if @p len is
 *             0. Borrowed for the call; need not be NUL-terminated.
 * @param out  filled in on success.
 * @return 0, or JIWA_EINVAL when @p out is NULL or @p text is NULL with a
 *         non-zero @p len (then @p out is untouched).
 * @note Thread-safe; never allocates.
 */
int jiwa_lang_detect(const char *text, size_t len, jiwa_lang_result_t *out);

/** @brief "en", "id", "it" or "unknown" for any value (static string). */
const char *jiwa_lang_code(jiwa_lang_t lang);

/**
 * @brief The language of a code ("en", "id", "it"; "EN" and "it-IT" too:
 *        only the first two letters count); JIWA_LANG_UNKNOWN for anything
 *        else, including NULL.
 */
jiwa_lang_t jiwa_lang_from_code(const char *code);

/**
 * @brief Whether a normalised token (as jiwa_textnorm.h makes them) is a
 *        function word of @p lang ("the", "yang", "della"...). The hash
 *        embedder gives these less weight.
 * @return 1 or 0 (0 for JIWA_LANG_UNKNOWN).
 * @note Thread-safe.
 */
int jiwa_lang_is_stopword(jiwa_lang_t lang, const char *tok, size_t len);

#endif /* JIWA_LANG_H */
