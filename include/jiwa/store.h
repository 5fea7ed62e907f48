/**
 * @file store.h
 * @brief Types shared by the store's collection API (runtime/store/
 *        jiwa_coll.h) and the plugin SDK's store functions (jiwa/plugin.h,
 *        ABI 1.2): queries, filters, hits, records.
 *
 * A *collection* is a named set of records in the daemon's LMDB store:
 *  - id: 1..JIWA_COLL_ID_MAX bytes, no NUL (unique in the collection);
 *  - text: UTF-8, optional (what the vector was made from);
 *  - meta: a msgpack map, optional. Its top-level string fields (lang,
 *    category, type, emotion, topic, title, or any other) are indexed for
 *    filters; every other field is kept as it is and returned as stored;
 *  - vector: `dim` float32, from the caller or from the collection's
 *    embedder (the built-in `hash` embedder by default).
 *
 * Search finds the k records closest to a query vector or text by cosine
 * similarity, with filters applied *during* the index walk (a selective
 * filter still returns k hits when k exist).
 *
 * Everything here is plain data; nothing links.
 */
#ifndef JIWA_PUBLIC_STORE_H
#define JIWA_PUBLIC_STORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest record id in bytes. */
#define JIWA_COLL_ID_MAX 128
/** Longest collection name (a-z, 0-9, '_', '-'). */
#define JIWA_COLL_NAME_MAX 63
/** Largest k a search accepts. */
#define JIWA_COLL_K_MAX 1024
/** Filters per query, and values per filter, at most. */
#define JIWA_COLL_FILTERS_MAX 16
#define JIWA_COLL_VALUES_MAX 64
/** Longest metadata string value that is indexed for filters (bytes);
 *  longer values are kept but cannot be filtered on. */
#define JIWA_COLL_FILTER_VALUE_MAX 256
/** Longest metadata field name that is indexed for filters. */
#define JIWA_COLL_FIELD_MAX 64

/** Query flags: what hits carry besides id and score. */
#define JIWA_COLL_WITH_TEXT 1u /**< hit.text */
#define JIWA_COLL_WITH_META 2u /**< hit.meta (msgpack map as stored) */
#define JIWA_COLL_WITH_VEC 4u  /**< hit.vec (get only: the stored vector) */

/**
 * One filter: metadata field @c field must equal one of @c values (OR).
 * Several filters in a query must all hold (AND). A field a record does not
 * have, or holds as a non-string, never matches.
 */
typedef struct {
  const char *field;          /**< "lang", "category", ... (NUL-terminated) */
  const char *const *values;  /**< 1..JIWA_COLL_VALUES_MAX strings */
  uint32_t nvalues;
} jiwa_coll_filter_t;

/**
 * A search. Zero-initialise (or use JIWA_COLL_QUERY_INIT), set @c size,
 * then give a vector or a text, and k. All pointers are borrowed for the
 * call only.
 */
typedef struct jiwa_coll_query {
  uint32_t size;       /**< sizeof(jiwa_coll_query_t) */
  const float *vec;    /**< query vector of the collection's dim, or NULL */
  uint32_t dim;        /**< floats in @c vec (must equal the collection's) */
  const char *text;    /**< or a text, embedded with the collection's
                            embedder (when @c vec is NULL) */
  size_t text_len;     /**< bytes of @c text; 0 = NUL-terminated */
  uint32_t k;          /**< 1..JIWA_COLL_K_MAX hits wanted */
  float min_score;     /**< drop hits below this cosine (0 = keep all
                            non-negative; use -1 to keep everything) */
  const jiwa_coll_filter_t *filters; /**< ANDed, may be NULL */
  uint32_t nfilters;   /**< 0..JIWA_COLL_FILTERS_MAX */
  float dedup;         /**< 0 = off; else drop a hit whose cosine to a
                            better hit is >= dedup (e.g. 0.95: near-
                            duplicates) */
  uint32_t ef;         /**< 0 = the collection's ef_search */
  uint32_t flags;      /**< JIWA_COLL_WITH_TEXT | JIWA_COLL_WITH_META */
} jiwa_coll_query_t;

/** A zero query with its size set. */
#define JIWA_COLL_QUERY_INIT {.size = sizeof(jiwa_coll_query_t)}

/** One hit (or the record of a get). Strings are not NUL-terminated
 *  except id and text, which are. */
typedef struct {
  const char *id;     /**< NUL-terminated copy */
  size_t id_len;
  float score;        /**< cosine similarity, higher is closer (get: 1) */
  const char *text;   /**< NUL-terminated, "" when absent or not asked */
  size_t text_len;
  const void *meta;   /**< msgpack map, NULL when absent or not asked */
  size_t meta_len;
  const float *vec;   /**< JIWA_COLL_WITH_VEC on a get, else NULL */
  uint32_t dim;
} jiwa_coll_hit_t;

/**
 * Results: one allocation holding every hit and the bytes they point to.
 * Release it with the function of the API that filled it
 * (jiwa_coll_result_free, or jiwa_collection_result_free in a plugin).
 */
typedef struct {
  jiwa_coll_hit_t *hits; /**< best first */
  uint32_t n;
  void *mem;             /**< private: the allocation */
} jiwa_coll_result_t;

/** A record to write. Borrowed for the call (everything is copied). */
typedef struct {
  const char *id;     /**< 1..JIWA_COLL_ID_MAX bytes, no NUL inside */
  size_t id_len;      /**< 0 = NUL-terminated */
  const char *text;   /**< may be NULL */
  size_t text_len;    /**< 0 = NUL-terminated (when text is not NULL) */
  const void *meta;   /**< msgpack map, or NULL */
  size_t meta_len;
  const float *vec;   /**< collection-dim floats, or NULL to embed text */
} jiwa_coll_record_t;

#ifdef __cplusplus
}
#endif
#endif /* JIWA_PUBLIC_STORE_H */
