/**
 * @file jiwa_embed_http.h
 * @brief The `http` embedder: an OpenAI-compatible `/v1/embeddings` server
 *        (Ollama, llama.cpp server, vLLM, TEI, OpenAI) behind the embedder
 *        interface of jiwa_embed.h.
 *
 * Each jiwa_embed_texts() call sends its texts in batches of @c batch as
 * `POST <url>` with `{"model": M, "input": [texts...]}` (JSON, UTF-8;
 * invalid UTF-8 bytes go out as U+FFFD), reads `data[i].embedding` back in
 * the order given by `data[i].index`, checks that every vector has exactly
 * @c dim numbers, and L2-normalises it.
 *
 * Caveats:
 *  - BLOCKING: a call waits on the network (up to @c timeout_ms per request,
 *    plus retries). Call it from a thread-pool job or a tool thread, never
 *    from a loop thread. A collection using it is `blocking` (text search
 *    is refused there: embed first, search by vector).
 *  - Thread-safe: several threads may embed at once on one embedder. Each
 *    call borrows a libcurl easy handle from a pool inside the embedder and
 *    gives it back, so a thread's next call reuses the connection
 *    (keep-alive). jiwa_embed_destroy() must not race with any call.
 *  - Retries: only on HTTP 408, 429 and 5xx, at most @c max_retries times
 *    per batch, waiting 100 ms, 200 ms, 400 ms... or the server's
 *    Retry-After (in seconds, capped at 5 s). A timeout, a refused
 *    connection, another 4xx or a malformed answer fails at once.
 *  - An empty text (length 0) gets the zero vector without being sent (as
 *    the hash embedder does for a text without words; servers refuse empty
 *    inputs).
 *  - The API key is read from the environment variable named by
 *    @c api_key_env when the embedder is created, kept only in memory (wiped
 *    at destroy) and sent as `Authorization: Bearer <key>`. No message, log
 *    line or error text ever contains it; errors name the server by host and
 *    port only (never the full URL, which may carry credentials), and the
 *    key is masked if a server echoes it back.
 *  - No redirects are followed; only http:// and https:// are allowed.
 */
#ifndef JIWA_EMBED_HTTP_H
#define JIWA_EMBED_HTTP_H

#include <stddef.h>

#include "jiwa_embed.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Default texts per request. */
#define JIWA_EMBED_HTTP_DEFAULT_BATCH 64u
/** Largest batch accepted (the OpenAI API's limit on inputs). */
#define JIWA_EMBED_HTTP_MAX_BATCH 2048u
/** Default total time of one request, in milliseconds. */
#define JIWA_EMBED_HTTP_DEFAULT_TIMEOUT_MS 30000u
/** Default retries of one batch (408, 429, 5xx). */
#define JIWA_EMBED_HTTP_DEFAULT_RETRIES 3u
/** Longest Retry-After honoured, in milliseconds. */
#define JIWA_EMBED_HTTP_RETRY_AFTER_CAP_MS 5000u
/** Default bound on a response body (bytes). */
#define JIWA_EMBED_HTTP_MAX_RESPONSE ((size_t)64 << 20)
/** Longest model name: "http:" + model must fit an embedder name. */
#define JIWA_EMBED_HTTP_MODEL_MAX 58u

/**
 * Settings of an http embedder. Initialise with jiwa_embed_http_opts_init,
 * then set url, model and dim. Strings are borrowed for the call of
 * jiwa_embed_http_new (copied).
 */
typedef struct {
  size_t size;            /**< sizeof(jiwa_embed_http_opts_t) */
  const char *url;        /**< the full endpoint, e.g.
                               "http://127.0.0.1:11434/v1/embeddings" */
  const char *model;      /**< "bge-m3", "nomic-embed-text", ... (1..58
                               bytes, no control characters) */
  const char *api_key_env;/**< name of the environment variable holding
                               the key; NULL or "" = no Authorization */
  unsigned dim;           /**< the model's vector size (8..65536) */
  unsigned batch;         /**< texts per request, 1..2048; 0 = 64 */
  unsigned timeout_ms;    /**< total time per request; 0 = 30000 */
  unsigned connect_timeout_ms; /**< 0 = the smaller of timeout_ms and 10 s */
  unsigned max_retries;   /**< retries per batch (0..10); default 3 */
  size_t max_response;    /**< response body bound; 0 = 64 MiB */
} jiwa_embed_http_opts_t;

/** @brief Defaults (size set, batch 64, timeout 30 s, 3 retries). */
void jiwa_embed_http_opts_init(jiwa_embed_http_opts_t *o);

/**
 * @brief Create an http embedder named "http:<model>" of dimension
 * @p o->dim. No request is made here (the server may still be starting).
 * @param o   borrowed for the call.
 * @param out the embedder; free with jiwa_embed_destroy().
 * @return 0; JIWA_EINVAL (NULL argument, small @c size, url not
 *         http(s):// with a host, model empty, too long or with control
 *         characters, dim/batch/timeout/retries out of range);
 *         JIWA_ECONFIG (@c api_key_env names a variable that is not set
 *         or is empty); JIWA_EIO (libcurl could not initialise);
 *         JIWA_ENOMEM. On error jiwa_embed_http_errmsg() says what to fix.
 */
int jiwa_embed_http_new(const jiwa_embed_http_opts_t *o, jiwa_embed_t **out);

/**
 * @brief A sentence about the last call of jiwa_embed_http_new() or of an
 * http embedder's jiwa_embed_texts() on the calling thread ("" when it
 * succeeded); valid until the next such call on this thread. It names the
 * server's host:port, never the URL's path or credentials, never the key.
 *
 * Errors of jiwa_embed_texts() on an http embedder: JIWA_ETIMEDOUT (no
 * answer within timeout_ms); JIWA_EUPSTREAM (connection failed, or an
 * HTTP error after the retries: the status and the server's message are
 * in the sentence); JIWA_ETOOBIG (response over max_response);
 * JIWA_EPROTO (not an embeddings response: wrong count, bad index, a
 * non-number); JIWA_ECONFIG (the server's vectors have another
 * dimension: "the server returned 768-dimensional vectors, the
 * collection is 384: set dim = 768 or change the model"); JIWA_ENOMEM.
 */
const char *jiwa_embed_http_errmsg(void);

/**
 * @brief Decode an embeddings response body (the JSON of
 * `POST /v1/embeddings`) for @p n texts of dimension @p dim into @p out
 * (row i = the vector whose "index" is i; a missing "index" means its
 * position), each row L2-normalised (a zero vector stays zero).
 *
 * Bounded before it allocates: at most 64 MiB of input, nesting 16, the
 * data array must hold exactly @p n entries, each embedding exactly
 * @p dim finite numbers. Exposed for the fuzz harness and tests.
 * @param out room for @p n * @p dim floats; unspecified on error.
 * @param err receives one sentence on error (may be NULL).
 * @return 0; JIWA_EINVAL (NULL @p body or @p out, @p n or @p dim 0);
 *         JIWA_EPROTO (not JSON, no "data" list, wrong count, index out
 *         of range or repeated, non-numeric or non-finite values);
 *         JIWA_ECONFIG (vectors of another length than @p dim; the
 *         sentence says which); JIWA_ETOOBIG (input over the bound);
 *         JIWA_ENOMEM.
 */
int jiwa_embed_http_parse(const char *body, size_t len, size_t n,
                          unsigned dim, float *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* JIWA_EMBED_HTTP_H */
