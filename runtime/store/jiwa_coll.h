/**
 * @file jiwa_coll.h
 * @brief Vector collections in the LMDB store: records (id, text, metadata,
 *        vector) plus an HNSW index (jiwa_vindex.h) persisted with them and
 *        searched in place from the memory map.
 *
 * Layout in the store (runtime/store/README.md, "Collections"):
 *  - `collections` [name] = definition {embedder, dim, m, ef_construction,
 *    ef_search, exact_threshold, seed, format};
 *  - `vectors` ["<name>\0<id>"] = record {text, meta, vec};
 *  - `vindex` [name] = the collection image: a 128-byte header, the
 *    vindex image, the slot → id table and the filter postings (for each
 *    (field, value): a sorted slot list or a bitmap). One msgpack bin,
 *    padded so the image is 16-byte aligned in LMDB's overflow pages.
 *
 * Caveats (read these first):
 *  - Every write (upsert, delete, import) commits the changed records AND
 *    the re-saved image in ONE store batch: a snapshot never sees records
 *    and index disagree, a crash never leaves them apart. The price: a write
 *    costs O(collection size) (the image is rewritten), so batch writes
 *    (many records per call) — one record at a time suits collections of a
 *    few thousand records, bulk data goes through jiwa_coll_import.
 *  - Searches read the last COMMITTED state (a write becomes visible to
 *    search and get when its batch is acknowledged). They open the stored
 *    image in place inside a read transaction: no rebuild and no parse pass
 *    at a cold open; the index handle is cached per image generation.
 *  - The first write after open thaws the image into a mutable working copy
 *    (O(n) once); it is kept for later writes (memory ≈ 2× the image).
 *  - Thread safety: searches, gets, count and stats from any number of
 *    threads at once; writes are serialised per collection (one at a time,
 *    in call order) and may run concurrently with searches. Writes block
 *    (embedding, index insertion, image save): never call them on a loop
 *    thread that serves other work. Searches are fast (well under a
 *    millisecond at 100k records) and may run on a loop thread.
 *  - Search by text embeds the query with the collection's embedder; an
 *    embedder that blocks on the network (def.embed_blocking) is refused
 *    there (JIWA_ENOTSUP): embed first, then search by vector.
 *
 * Errors: every function returns 0 or a negative JIWA_E* code; when a call
 * fails, jiwa_coll_errmsg() returns a sentence for a human (which
 * collection, what was wrong, what to do) on the calling thread.
 */
#ifndef JIWA_COLL_H
#define JIWA_COLL_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "jiwa/errors.h"
#include "jiwa/store.h"
#include "jiwa_embed.h"
#include "jiwa_store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Record schema version of definitions, records and images. */
#define JIWA_COLL_FORMAT 1

/** A collection handle (opaque). */
typedef struct jiwa_coll jiwa_coll_t;

/* ---- embedders ------------------------------------------------------------- */

/**
 * Settings of an embedder, from a collection's config entry. Initialise
 * with jiwa_coll_embedder_opts_init. Strings are borrowed for the call of
 * jiwa_coll_embedder_new_opts (the embedder copies what it keeps).
 */
typedef struct {
  size_t size;             /**< sizeof(jiwa_coll_embedder_opts_t) */
  uint32_t dim;            /**< 0 = the kind's default (hash: 512; http
                                has none: required) */
  const char *url;         /**< http: the full endpoint URL */
  const char *model;       /**< http: the model name */
  const char *api_key_env; /**< http: env variable with the key, or NULL */
  uint32_t batch;          /**< http: texts per request; 0 = 64 */
  uint32_t timeout_ms;     /**< http: per request; 0 = 30000 */
} jiwa_coll_embedder_opts_t;

/** @brief Zero settings with @c size set. */
void jiwa_coll_embedder_opts_init(jiwa_coll_embedder_opts_t *o);

/**
 * One kind of embedder the config may name (`embedder = "hash"`).
 *
 * The registry is the static table in jiwa_coll.c (`embedder_kinds`); the
 * config validates `embedder` against it (jiwa_coll_embedder_find), so it
 * is the one list of kinds. Kinds: "hash" (jiwa_embed_hash_new, lexical,
 * no network) and "http" (jiwa_embed_http_new: OpenAI-compatible
 * /v1/embeddings with batching; needs url, model and dim). `blocking = 1`
 * makes text search refuse it on loop threads (plugins then embed with
 * jiwa_http_request and search by vector).
 */
typedef struct {
  const char *kind; /**< config name: "hash", "http" */
  int blocking;     /**< 1 = embedding waits on the network */
  /** Create an embedder from @p o (borrowed for the call). */
  int (*make)(const jiwa_coll_embedder_opts_t *o, jiwa_embed_t **out);
} jiwa_coll_embedder_kind_t;

/** @brief The registry entry for @p kind, or NULL (unknown kind). */
const jiwa_coll_embedder_kind_t *jiwa_coll_embedder_find(const char *kind);

/** @brief The @p i-th registry entry (0-based), or NULL past the end. */
const jiwa_coll_embedder_kind_t *jiwa_coll_embedder_at(size_t i);

/**
 * @brief Create an embedder of registered kind @p kind with only a
 * dimension (jiwa_coll_embedder_new_opts with everything else unset).
 * @return as jiwa_coll_embedder_new_opts ("http" is JIWA_EINVAL here: it
 *         needs a url and a model).
 */
int jiwa_coll_embedder_new(const char *kind, uint32_t dim,
                           jiwa_embed_t **out);

/**
 * @brief Create an embedder of registered kind @p kind from @p o.
 * @return 0 with *out (free with jiwa_embed_destroy, or hand it to
 *         jiwa_coll_open with own_embedder); JIWA_ENOENT (unknown kind: the
 *         message lists the known ones); JIWA_EINVAL (bad dim, missing or
 *         bad url/model/batch/timeout); JIWA_ECONFIG (http: the key's
 *         environment variable is not set); JIWA_EIO; JIWA_ENOMEM. The
 *         message (jiwa_coll_errmsg) says what to fix; it never contains
 *         an API key.
 */
int jiwa_coll_embedder_new_opts(const char *kind,
                                const jiwa_coll_embedder_opts_t *o,
                                jiwa_embed_t **out);

/* ---- lifecycle --------------------------------------------------------------- */

/** What a collection is made with. Initialise with jiwa_coll_def_init. */
typedef struct {
  size_t size;              /**< sizeof(jiwa_coll_def_t) */
  jiwa_embed_t *embedder;   /**< may be NULL (vectors-only collection) */
  int own_embedder;         /**< 1: the collection destroys it at close
                                 (only once open succeeded) */
  int embed_blocking;       /**< 1: embedder waits on the network */
  const char *embedder_name;/**< recorded name when embedder is NULL
                                 ("none", "external:bge-m3"); ignored
                                 otherwise (jiwa_embed_name is recorded) */
  uint32_t dim;             /**< 0 = the embedder's; must match it */
  uint32_t m;               /**< HNSW degree; 0 = 16 */
  uint32_t ef_construction; /**< 0 = 200 */
  uint32_t ef_search;       /**< 0 = 64 */
  uint32_t exact_threshold; /**< brute force below this; 0 = 4096 */
  int create;               /**< 1 (default): create when missing; 0: a
                                 missing collection is JIWA_ENOENT */
} jiwa_coll_def_t;

/** @brief Defaults: no embedder, create = 1, size set. */
void jiwa_coll_def_init(jiwa_coll_def_t *d);

/**
 * @brief Open collection @p name of store @p s, creating its definition
 * when missing (def->create). A stored definition is authoritative for the
 * index parameters; the embedder name and dimension must match it.
 *
 * Blocking (it may write the definition): not on a loop thread.
 * @param s    borrowed; must outlive the collection.
 * @param name 1..JIWA_COLL_NAME_MAX characters of a-z, 0-9, '_', '-'.
 * @param def  borrowed for the call.
 * @param out  the handle; close with jiwa_coll_close.
 * @return 0; JIWA_EINVAL (bad name, dim, def); JIWA_ECONFIG (the stored
 *         embedder or dimension differs: the message says which collection,
 *         stored vs configured, and to fix the config or re-import with
 *         --rebuild); JIWA_ENOENT (missing and create == 0); JIWA_EPROTO
 *         (stored definition corrupt); JIWA_ENOTSUP (made by a newer
 *         format); store errors (JIWA_EIO, JIWA_EBUSY, JIWA_ENOMEM).
 */
int jiwa_coll_open(jiwa_store_t *s, const char *name,
                   const jiwa_coll_def_t *def, jiwa_coll_t **out);

/**
 * @brief Free the handle (and an owned embedder). Call when no other
 * thread uses it and every write it submitted has completed. NULL ok.
 */
void jiwa_coll_close(jiwa_coll_t *c);

/** @brief Name (borrowed, lives with @p c). */
const char *jiwa_coll_name(const jiwa_coll_t *c);
/** @brief Recorded embedder name ("hash-v1"; borrowed). */
const char *jiwa_coll_embedder_name(const jiwa_coll_t *c);
/** @brief The embedder, or NULL for a vectors-only collection. */
jiwa_embed_t *jiwa_coll_embedder(const jiwa_coll_t *c);
/** @brief Vector dimension. */
uint32_t jiwa_coll_dim(const jiwa_coll_t *c);
/** @brief 1 if text search must not run on a loop thread. */
int jiwa_coll_embed_blocking(const jiwa_coll_t *c);
/** @brief The store the collection lives in. */
jiwa_store_t *jiwa_coll_store(const jiwa_coll_t *c);

/**
 * @brief Delete a collection: definition, records and image, in one batch.
 * Blocking. The collection must not be open in this process.
 * @return 0 (also when it did not exist) or a store error.
 */
int jiwa_coll_drop(jiwa_store_t *s, const char *name);

/**
 * @brief A sentence about the last failed jiwa_coll_* call on this thread
 * ("" if none), valid until the next failing call on this thread.
 */
const char *jiwa_coll_errmsg(void);

/* ---- writes ---------------------------------------------------------------- */

/**
 * @brief Insert or replace @p n records by id, in one atomic batch with
 * the re-saved index image. A replaced record keeps its index slot (its
 * vector is relinked; no rebuild). Records without a vector are embedded
 * from their text first (all texts in one embedder call).
 *
 * Everything is validated before anything is written: one bad record (id
 * empty, too long or with a NUL; meta not a map; vector not finite or zero;
 * neither vector nor text with words) fails the call with nothing written.
 * Blocking (embedding, index insertion, image save): never on a loop
 * thread. Writes to one collection are serialised and commit in call order.
 *
 * @param recs  borrowed for the call (everything is copied).
 * @param port  NULL: wait for the commit and return its status. Otherwise
 *              return once the batch is queued; @p cb then runs once on the
 *              port's loop with the commit status (jiwa_store_done_fn).
 *              Keep the port open until it ran.
 * @return 0; JIWA_EINVAL (a bad record: the message names its index and
 *         id); JIWA_ENOTSUP (a record needs embedding and the collection
 *         has no embedder); JIWA_ETOOBIG (too many slots, image too big);
 *         JIWA_ENOMEM; submission errors (JIWA_EBUSY, JIWA_ESHUTDOWN); with
 *         port == NULL also the commit status (JIWA_EIO, JIWA_ETOOBIG).
 *         On an error return @p cb is never called.
 */
int jiwa_coll_upsert(jiwa_coll_t *c, const jiwa_coll_record_t *recs, size_t n,
                     jiwa_store_port_t *port, jiwa_store_done_fn cb,
                     void *ud);

/**
 * @brief Delete records by id (missing ids are skipped, not an error), in
 * one batch with the re-saved image. Blocking; same port/cb contract and
 * errors as jiwa_coll_upsert.
 * @param ids  @p n ids; @p lens their lengths (NULL: NUL-terminated).
 * @param deleted out (may be NULL): how many existed.
 */
int jiwa_coll_delete(jiwa_coll_t *c, const char *const *ids,
                     const size_t *lens, size_t n, size_t *deleted,
                     jiwa_store_port_t *port, jiwa_store_done_fn cb,
                     void *ud);

/** Progress of an import: @p phase is "validate", "embed", "index" or
 *  "commit"; @p done of @p total records. Runs on the importing thread. */
typedef void (*jiwa_coll_progress_fn)(const char *phase, size_t done,
                                      size_t total, void *ud);

/**
 * @brief Bulk import: validate all @p n records, embed what needs it,
 * index all, then write all in ONE batch and wait for the commit. Nothing
 * is half-imported: any bad record, or a failed commit, leaves the
 * collection as it was. Blocking (tools, jobs, socket ops on the pool).
 * @param progress may be NULL; called at most a few hundred times.
 * @param bad out (may be NULL): index of the first bad record, or
 *            SIZE_MAX when the failure is not about one record.
 * @return as jiwa_coll_upsert with port == NULL.
 */
int jiwa_coll_import(jiwa_coll_t *c, const jiwa_coll_record_t *recs,
                     size_t n, jiwa_coll_progress_fn progress, void *ud,
                     size_t *bad);

/* ---- reads ----------------------------------------------------------------- */

/**
 * @brief The k records closest to a vector or text, filters applied during
 * the index walk. Reads the last committed state; any thread; does not
 * block on writers.
 * @param q   borrowed for the call (see jiwa_coll_query_t).
 * @param out filled on success (free with jiwa_coll_result_free); zeroed
 *            on error. A query text without any word gives 0 hits.
 * @return 0; JIWA_EINVAL (bad k, dim, filter, size field; no vector and no
 *         text); JIWA_ENOTSUP (text query without an embedder, or with a
 *         blocking one); JIWA_EPROTO (the stored image or a record is
 *         corrupt: `jiwa store check`); JIWA_ENOMEM; store read errors.
 */
int jiwa_coll_search(jiwa_coll_t *c, const jiwa_coll_query_t *q,
                     jiwa_coll_result_t *out);

/** @brief Free a result (NULL or an empty one is fine); zeroes it. */
void jiwa_coll_result_free(jiwa_coll_result_t *r);

/**
 * @brief One record by id (committed state).
 * @param flags JIWA_COLL_WITH_TEXT | _META | _VEC.
 * @param out   one hit (score 1) on success; free with
 *              jiwa_coll_result_free.
 * @return 0; JIWA_ENOENT; JIWA_EINVAL; JIWA_EPROTO; JIWA_ENOMEM.
 */
int jiwa_coll_get(jiwa_coll_t *c, const char *id, size_t id_len,
                  uint32_t flags, jiwa_coll_result_t *out);

/**
 * @brief Number of records (committed state; O(1)).
 * @return 0 with *out, or a store/format error.
 */
int jiwa_coll_count(jiwa_coll_t *c, uint64_t *out);

/**
 * @brief Pack the collection's statistics as one msgpack map:
 * {name, in_place, embedder, dim, count, slots, image_bytes, m, ef_search,
 *  langs = {<lang> = {count, categories = {<category> = n}}}}
 * (in_place: the stored image is searched straight from the memory map;
 * false for images small enough to sit unaligned in a leaf page, which
 * are copied once per generation)
 * (records without a lang count under "", without a category under "").
 * @return 0; JIWA_ENOMEM; JIWA_EPROTO; store read errors.
 */
int jiwa_coll_stats_pack(jiwa_coll_t *c, msgpack_packer *pk);

/**
 * @brief Read the stored image once, in order (jiwa_vindex_warm), so the
 * first searches after a cold start do not take their page faults one
 * random 4 KB read at a time. O(image size): call it off the request path
 * (jiwad does at start). A no-op for an empty collection.
 * @return 0 or a store/format error.
 */
int jiwa_coll_warm(jiwa_coll_t *c);

/**
 * @brief Full O(n) check for `jiwa store check`: the index image
 * (jiwa_vindex_check), the id table, the postings, and that every indexed
 * id has its record and every record is indexed.
 * @return 0, or JIWA_EPROTO with the first problem in jiwa_coll_errmsg().
 */
int jiwa_coll_check(jiwa_coll_t *c);

/* ---- decoders of stored bytes (fuzzed: tests/fuzz/fuzz_coll.c) ------------ */

/** A decoded record payload; pointers borrow the input. */
typedef struct {
  const char *text;
  size_t text_len;
  const void *meta; /**< msgpack map or NULL */
  size_t meta_len;
  const void *vec;  /**< dim little-endian float32 (maybe unaligned) */
  uint32_t dim;
} jiwa_coll_recview_t;

/**
 * @brief Decode a stored record payload. Bounded: no allocation, one pass,
 * meta nesting ≤ JIWA_MP_MAX_DEPTH - 2.
 * @param dim expected dimension (0 = any).
 * @return 0 or JIWA_EPROTO.
 */
int jiwa_coll_record_decode(const void *buf, size_t len, uint32_t dim,
                            jiwa_coll_recview_t *out);

/**
 * @brief Check a stored image payload (the msgpack bin of `vindex`[name])
 * as a search would read it, then walk every id, posting and the index
 * (jiwa_vindex_check). Bounded; copies the image only to align it.
 * @return 0, JIWA_EPROTO, JIWA_ENOTSUP (newer format) or JIWA_ENOMEM.
 */
int jiwa_coll_image_verify(const void *payload, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* JIWA_COLL_H */
