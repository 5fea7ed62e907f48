/**
 * @file jiwa_textnorm.h
 * @brief The one normaliser/tokenizer shared by language detection and the
 *        hash embedder.
 *
 * Input is untrusted bytes. What happens to them, in order:
 *  - at most @ref JIWA_TEXT_MAX_INPUT bytes are read; the rest is ignored
 *    (a cut UTF-8 sequence at the end is just an invalid sequence);
 *  - each invalid UTF-8 byte (overlong, surrogate, > U+10FFFF, truncated)
 *    becomes U+FFFD, which is a separator: never a crash, never a letter;
 *  - every code point goes through utf8proc: compatibility decomposition,
 *    case folding, marks stripped, default-ignorables dropped, punctuation
 *    lumped (U+2019 -> '). So "Perché", "PERCHE" and "perche" are the same
 *    token, "ﬁ" is "fi", "ß" is "ss". (NFKD minus marks rather than NFKC:
 *    once the marks are gone there is nothing left to recompose for Latin
 *    text, and it saves a pass.)
 *  - word tokens are maximal runs of letters (L*) and digits (N*); an
 *    apostrophe stays inside a word when a letter or digit follows it
 *    ("don't", "dell'anno", "l'ufficio"); everything else (spaces,
 *    punctuation, symbols, emoji) separates tokens and is dropped;
 *  - a token longer than @ref JIWA_TEXT_MAX_TOKEN bytes is cut there (the
 *    rest of that word is skipped).
 *
 * Everything here is reentrant: the iterator is caller-owned state, nothing
 * allocates, nothing depends on the locale.
 */
#ifndef JIWA_TEXTNORM_H
#define JIWA_TEXTNORM_H

#include <stddef.h>
#include <stdint.h>

/** Bytes of input considered; longer texts are truncated (64 KiB). */
#define JIWA_TEXT_MAX_INPUT (64u * 1024u)
/** Longest token in bytes (UTF-8); longer words are cut. */
#define JIWA_TEXT_MAX_TOKEN 64u

/** One word token, normalised UTF-8, NUL-terminated. */
typedef struct {
  char s[JIWA_TEXT_MAX_TOKEN + 4]; /**< token bytes, NUL-terminated */
  unsigned len;                    /**< bytes in @c s */
  unsigned letters;                /**< letters (any script) */
  unsigned digits;                 /**< digits */
  unsigned nonlatin;               /**< letters outside Latin script */
  unsigned apos;                   /**< apostrophes kept inside */
  /** Latin letters whose diacritic English, Indonesian and Italian do not
   *  use (ö ç ñ å ã ê ß ø ł ...: grave and acute accents do not count). */
  unsigned foreign;
} jiwa_token_t;

/** Tokenizer state: caller-owned, no allocation, no cleanup needed. */
typedef struct {
  const uint8_t *p;
  size_t len, pos;
  int32_t pend[32]; /* code points of the last decomposition */
  unsigned npend, ipend;
  int32_t peeked;
  int has_peek;
  unsigned foreign; /* foreign-diacritic letters read so far */
} jiwa_text_iter_t;

/**
 * @brief Start tokenizing @p len bytes at @p text.
 * @param text may be NULL only when @p len is 0. Borrowed: it must outlive
 *             the iteration.
 */
void jiwa_text_iter_init(jiwa_text_iter_t *it, const char *text, size_t len);

/**
 * @brief The next word token.
 * @param tok filled in (always NUL-terminated).
 * @return 1 when a token was produced, 0 at the end of the text.
 */
int jiwa_text_next(jiwa_text_iter_t *it, jiwa_token_t *tok);

/**
 * @brief The whole normalised text: tokens separated by one space.
 * @param out   caller buffer of @p cap bytes; always NUL-terminated when
 *              @p cap > 0. Tokens that do not fit whole are left out.
 * @return bytes written (without the NUL).
 */
size_t jiwa_text_normalize(const char *text, size_t len, char *out, size_t cap);

/**
 * @brief A deterministic 64-bit hash of @p len bytes with a @p seed (the
 *        same value on every machine: bytes are read one by one, no
 *        alignment or endianness assumptions).
 */
uint64_t jiwa_text_hash64(const void *data, size_t len, uint64_t seed);

#endif /* JIWA_TEXTNORM_H */
