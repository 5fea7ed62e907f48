/**
 * @file jiwa_embed.h
 * @brief Text embedders: one interface, a built-in lexical "hash" embedder
 *        now, an HTTP (OpenAI-compatible /v1/embeddings) one later.
 *
 * An embedder turns texts into float vectors of a fixed dimension. A vector
 * collection records the embedder's name and dimension and refuses vectors
 * from another (DESIGN.md §7), so a name must change whenever the vectors
 * it makes would change.
 *
 * Caveats:
 *  - The hash embedder is LEXICAL, not semantic: texts are close when they
 *    share words, stems and spelling fragments. "KITAS processing time" is
 *    near "how long does a KITAS take" (shared words) but "car" is not near
 *    "automobile", and an Indonesian question is not near its English
 *    translation. Use an HTTP embedding model for meaning.
 *  - Calls block (the HTTP embedder will too): call them from a thread-pool
 *    job, never from a loop thread.
 *  - jiwa_embed_texts() may be called from several threads at once on the
 *    same embedder; jiwa_embed_destroy() must not race with any other call.
 */
#ifndef JIWA_EMBED_H
#define JIWA_EMBED_H

#include <stddef.h>

/** An embedder (opaque). */
typedef struct jiwa_embed jiwa_embed_t;

/** Default dimension of the hash embedder. */
#define JIWA_EMBED_HASH_DEFAULT_DIM 512u
/** Dimensions accepted by jiwa_embed_new() and jiwa_embed_hash_new(). */
#define JIWA_EMBED_MIN_DIM 8u
#define JIWA_EMBED_MAX_DIM 65536u

/**
 * @brief What an embedder implementation provides (versioned by @c size).
 *
 * @c embed gets already-validated arguments: @p n >= 1, every text non-NULL
 * (possibly empty), @p out room for @p n * @p dim floats. It returns 0 after
 * writing all @p n rows, or a negative JIWA_E* code (then @p out is
 * unspecified). It may run on several threads at once.
 */
typedef struct {
  size_t size; /**< sizeof(jiwa_embed_ops_t) */
  int (*embed)(void *ctx, const char *const *texts, const size_t *lens,
               size_t n, float *out, unsigned dim);
  void (*destroy)(void *ctx); /**< frees @p ctx; may be NULL */
} jiwa_embed_ops_t;

/**
 * @brief Wrap an implementation into an embedder (for the HTTP embedder and
 *        tests).
 * @param name copied (at most 63 bytes are kept); e.g. "http:bge-m3".
 * @param ops  borrowed: must outlive the embedder (normally static).
 * @param ctx  owned by the embedder from a successful call on: freed with
 *             ops->destroy by jiwa_embed_destroy(). On error the caller keeps
 *             it.
 * @return 0, JIWA_EINVAL (NULL argument, empty name, @p dim out of range,
 *         ops->size too small, no embed callback) or JIWA_ENOMEM.
 */
int jiwa_embed_new(const char *name, unsigned dim, const jiwa_embed_ops_t *ops,
                   void *ctx, jiwa_embed_t **out);

/**
 * @brief Create the built-in hash embedder, named "hash-v1".
 *
 * Per text: the normalisation and tokens of jiwa_textnorm.h (texts longer
 * than 64 KiB are truncated; invalid UTF-8 is tolerated); the language from
 * jiwa_lang_detect() picks a Snowball stemmer (english, indonesian, italian;
 * none for "unknown"); features are stemmed word unigrams (weight 1),
 * stemmed word bigrams (0.6) and character 3- to 5-grams of each unstemmed
 * word with boundary marks ("<kitas>", weight 0.25 each); function words of
 * the language weigh 0.3 of that. Each feature is hashed with a 64-bit hash
 * to an index and a sign, its value is weight * (1 + ln tf), and the vector
 * is L2-normalised. A text without any word token (empty, only emoji,
 * punctuation) gives the zero vector: callers must not divide by its norm.
 *
 * Deterministic: no pointers, locale or randomness reach a feature, so the
 * same text gives the same indices and signs on every run and machine; the
 * values are bit-identical for one build and agree to float rounding across
 * C libraries (ln).
 *
 * @param dim JIWA_EMBED_MIN_DIM..JIWA_EMBED_MAX_DIM, or 0 for
 *            JIWA_EMBED_HASH_DEFAULT_DIM.
 * @param out the new embedder, to be freed with jiwa_embed_destroy().
 * @return 0, JIWA_EINVAL (@p out NULL, @p dim out of range) or JIWA_ENOMEM.
 * @note Thread-safe: Snowball stemmers keep state, so each concurrent call
 *       takes its own set from a pool inside the embedder (created on
 *       demand, kept until destroy).
 */
int jiwa_embed_hash_new(unsigned dim, jiwa_embed_t **out);

/**
 * @brief Hash-embed one text with a given language instead of detecting it.
 * @param lang "en", "id", "it" (as jiwa_lang_from_code() reads them) pick
 *             that stemmer; NULL detects; anything else ("unknown", "de")
 *             means no stemming.
 * @param out  room for jiwa_embed_dim() floats.
 * @return 0, JIWA_EINVAL (NULL @p emb or @p out, NULL @p text with a non-zero
 *         @p len), JIWA_ENOTSUP (@p emb is not a hash embedder) or
 *         JIWA_ENOMEM.
 */
int jiwa_embed_hash_text(jiwa_embed_t *emb, const char *text, size_t len,
                         const char *lang, float *out);

/** @brief The embedder's name (owned by it, valid until destroy). */
const char *jiwa_embed_name(const jiwa_embed_t *emb);

/** @brief The dimension of its vectors. */
unsigned jiwa_embed_dim(const jiwa_embed_t *emb);

/**
 * @brief Embed @p n texts into @p out (row i = text i, @p n * dim floats).
 * @param texts borrowed for the call; texts[i] may be NULL only if its
 *              length is 0.
 * @param lens  byte lengths; NULL means every text is NUL-terminated.
 * @param n     0 is allowed (nothing is written).
 * @return 0, JIWA_EINVAL (NULL @p emb, NULL @p texts or @p out with
 *         @p n > 0, a NULL text with a non-zero length), or the
 *         implementation's error (hash: JIWA_ENOMEM); on error @p out is
 *         unspecified.
 * @note Thread-safe for the hash embedder (see the file caveats).
 */
int jiwa_embed_texts(jiwa_embed_t *emb, const char *const *texts,
                     const size_t *lens, size_t n, float *out);

/** @brief Free the embedder and its implementation context; NULL is a no-op. */
void jiwa_embed_destroy(jiwa_embed_t *emb);

#endif /* JIWA_EMBED_H */
