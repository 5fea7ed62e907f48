/**
 * @file jiwa_vindex.h
 * @brief Approximate nearest-neighbour index (HNSW graph) for cosine search
 *        over float32 vectors, with an in-place searchable persisted image.
 *
 * An index holds vectors of one fixed dimension in *slots* (uint32 ids).
 * Vectors are L2-normalised on insert, so the score of a hit is the cosine
 * similarity (an inner product), in [-1, 1], higher is closer. Each slot
 * also carries a caller-chosen uint64 *tag* (e.g. the LMDB record key or a
 * row number) that search returns with every hit, so the caller needs no
 * separate id -> key table; the caller keeps key -> id itself (or looks the
 * tag up) to delete or update.
 *
 * Layout: every array is contiguous and searched directly — vectors in one
 * array (slot * stride floats, stride = dim rounded up to 16, 64-byte
 * aligned), level-0 neighbour lists in one fixed-stride array (2*M ids per
 * slot), upper-level lists in one compact array of M-id blocks (only the
 * ~1/M of slots that have upper levels own blocks), a level byte, an upper
 * offset, a tag and a tombstone bit per slot. jiwa_vindex_save() writes
 * exactly these arrays behind a 192-byte header, so jiwa_vindex_view() can
 * search an LMDB value (or an mmap'd file) in place, with no parse pass.
 *
 * Search: below `exact_threshold` live vectors, or when a filter accepts so
 * few vectors that scanning them is cheaper than walking the graph, the
 * search is exact (brute force). Otherwise it walks the graph; filters and
 * tombstones are applied *during* the walk: rejected nodes are traversed
 * but never returned and do not count towards ef, so a selective filter
 * still returns k hits when k exist. If the walk costs more than an exact
 * scan would (estimated from the accepted fraction seen so far), it stops
 * and the exact scan over accepted slots answers instead.
 *
 * Caveats:
 *  - Thread safety: any number of threads may search one index at the same
 *    time (search never writes to the index; per-search scratch comes from
 *    a small mutex-protected pool in the handle). Mutations (add, update,
 *    delete, set_params) need external exclusion against each other and
 *    against searches (e.g. a rwlock: search = read, mutate = write).
 *  - Views (jiwa_vindex_view) are read-only: mutations return JIWA_ESTATE.
 *    Take a mutable copy with jiwa_vindex_thaw().
 *  - Deletion tombstones the slot and repairs its neighbours' lists; the
 *    slot stays traversable (never returned) until a later add reuses it.
 *    A reused slot keeps its old level (levels are drawn independently of
 *    vectors, so this does not bias the graph). Slots are never compacted
 *    away: ids stay stable for the life of the index and its images.
 *  - The image is little-endian; views are refused on big-endian hosts.
 */
#ifndef JIWA_VINDEX_H
#define JIWA_VINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "jiwa/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An index. Opaque; owned by whoever created, viewed or thawed it. */
typedef struct jiwa_vindex jiwa_vindex_t;

/** "No such slot" (e.g. an empty index's entry point). */
#define JIWA_VINDEX_NONE UINT32_MAX
/** Image format version written by this build; newer ones are refused. */
#define JIWA_VINDEX_FORMAT 1
/** Largest dimension accepted. */
#define JIWA_VINDEX_MAX_DIM 65536
/** Largest k (and ef) a search accepts. */
#define JIWA_VINDEX_MAX_K 65536

/** Build and search parameters. Initialise with jiwa_vindex_params_init. */
typedef struct {
  uint32_t size;            /**< sizeof(jiwa_vindex_params_t) */
  uint32_t dim;             /**< vector dimension, 1..JIWA_VINDEX_MAX_DIM */
  uint32_t m;               /**< graph degree M, 2..64 (level 0 keeps 2*M);
                                 default 16 */
  uint32_t ef_construction; /**< candidate list while inserting; default 200 */
  uint32_t ef_search;       /**< default candidate list for search; 32 */
  uint32_t exact_threshold; /**< search exactly below this many live
                                 vectors; default 4096 */
  uint64_t seed;            /**< level generator seed (builds are
                                 deterministic for a given seed and order) */
} jiwa_vindex_params_t;

/**
 * @brief Fill @p p with the defaults for vectors of dimension @p dim.
 */
void jiwa_vindex_params_init(jiwa_vindex_params_t *p, uint32_t dim);

/**
 * @brief Create an empty, mutable index.
 * @param p   parameters (copied; need not outlive the call).
 * @param out receives the index; free it with jiwa_vindex_free().
 * @return 0, JIWA_EINVAL (bad size field, dim, m or ef), JIWA_ENOMEM.
 */
int jiwa_vindex_create(const jiwa_vindex_params_t *p, jiwa_vindex_t **out);

/** @brief Free an index (mutable or view). NULL is a no-op. A view's buffer
 *  is not touched and stays the caller's. */
void jiwa_vindex_free(jiwa_vindex_t *idx);

/**
 * @brief Insert a vector; it is L2-normalised before it is stored.
 * @param vec dim floats (copied). Must be finite with a non-zero norm.
 * @param tag caller data returned with every hit of this slot.
 * @param id_out receives the slot id (may be NULL). A slot freed by
 *        jiwa_vindex_delete() is reused before the index grows.
 * @return 0, JIWA_EINVAL (NULL/zero/non-finite vector), JIWA_ESTATE (view),
 *         JIWA_ETOOBIG (2^32-2 slots), JIWA_ENOMEM (index unchanged).
 */
int jiwa_vindex_add(jiwa_vindex_t *idx, const float *vec, uint64_t tag,
                    uint32_t *id_out);

/**
 * @brief Replace the vector of a live slot (same id, same tag); the slot is
 *        unlinked and relinked, without a rebuild.
 * @return 0, JIWA_EINVAL (bad vector), JIWA_ENOENT (no such live slot),
 *         JIWA_ESTATE (view), JIWA_ENOMEM (the slot keeps its old vector).
 */
int jiwa_vindex_update(jiwa_vindex_t *idx, uint32_t id, const float *vec);

/**
 * @brief Delete a live slot: tombstone it and repair its neighbours' lists.
 *        It is never returned again; its id may be reused by a later add.
 * @return 0, JIWA_ENOENT (no such live slot), JIWA_ESTATE (view).
 */
int jiwa_vindex_delete(jiwa_vindex_t *idx, uint32_t id);

/**
 * @brief Read a live slot's stored (normalised) vector and tag.
 * @param vec_out dim floats, or NULL.  @param tag_out or NULL.
 * @return 0 or JIWA_ENOENT.
 */
int jiwa_vindex_get(const jiwa_vindex_t *idx, uint32_t id, float *vec_out,
                    uint64_t *tag_out);

/** @brief Number of live (not deleted) vectors. */
uint32_t jiwa_vindex_count(const jiwa_vindex_t *idx);
/** @brief Number of slots ever used (live + tombstoned); ids are below it. */
uint32_t jiwa_vindex_slots(const jiwa_vindex_t *idx);
/** @brief The index's vector dimension. */
uint32_t jiwa_vindex_dim(const jiwa_vindex_t *idx);
/** @brief Copy the index's parameters into @p p (p->size is set). */
void jiwa_vindex_get_params(const jiwa_vindex_t *idx, jiwa_vindex_params_t *p);

/**
 * @brief Change search-time parameters (ef_search, exact_threshold) of a
 *        mutable index; other fields of @p p are ignored.
 * @return 0, JIWA_EINVAL, JIWA_ESTATE (view: pass ef per query instead).
 */
int jiwa_vindex_set_params(jiwa_vindex_t *idx, const jiwa_vindex_params_t *p);

/** Which path answered a search (see jiwa_vindex_trace_t). */
typedef enum {
  JIWA_VINDEX_PATH_EXACT = 1,   /**< brute force chosen up front */
  JIWA_VINDEX_PATH_GRAPH = 2,   /**< HNSW walk */
  JIWA_VINDEX_PATH_FALLBACK = 3 /**< walk abandoned, then brute force */
} jiwa_vindex_path_t;

/** What a search did, for tests and benchmarks. */
typedef struct {
  jiwa_vindex_path_t path;
  uint32_t visited; /**< distance computations */
} jiwa_vindex_trace_t;

/**
 * Per-query options; all fields optional (zero-initialise). Borrowed for
 * the duration of the call.
 *
 * A slot is a candidate hit when it is live, its bit is set in @c allow (if
 * given) and @c accept returns non-zero (if given). @c accept is called
 * from the searching thread, only for slots the search reaches (a slot may
 * be asked twice when a walk falls back to an exact scan), and must not
 * mutate the index.
 */
typedef struct {
  uint32_t ef; /**< 0 = the index's ef_search; raised to k */
  int exact;   /**< non-zero: brute force, whatever the size */
  int (*accept)(uint32_t id, void *ud); /**< filter predicate, or NULL */
  void *ud;                             /**< passed to accept */
  const uint64_t *allow; /**< allow bitmap (bit id%64 of word id/64), or NULL */
  uint32_t allow_bits;   /**< ids >= allow_bits are rejected */
  float selectivity;     /**< caller's estimate of the accepted fraction in
                              (0, 1], 0 = unknown (then it is measured: the
                              bitmap is counted, the predicate is sampled
                              while walking) */
  jiwa_vindex_trace_t *trace; /**< filled when not NULL */
} jiwa_vindex_query_t;

/** One search result. */
typedef struct {
  uint32_t id;  /**< slot */
  float score;  /**< cosine similarity, higher is closer */
  uint64_t tag; /**< the slot's tag */
} jiwa_vindex_hit_t;

/**
 * @brief Find the k nearest live, accepted vectors to @p query.
 * @param query dim floats (normalised internally; not modified).
 * @param k     1..JIWA_VINDEX_MAX_K.
 * @param opt   options, or NULL for defaults.
 * @param hits  room for k hits; filled best first.
 * @param n_out receives the number of hits (< k only when fewer than k
 *              live vectors are accepted, or, on the graph path, when the
 *              accepted ones are unreachable — rare, see the README).
 * @return 0, JIWA_EINVAL (NULL args, bad k, zero/non-finite query),
 *         JIWA_ENOMEM (scratch could not be allocated).
 * @note Safe to call from many threads at once on one index.
 */
int jiwa_vindex_search(const jiwa_vindex_t *idx, const float *query, uint32_t k,
                       const jiwa_vindex_query_t *opt, jiwa_vindex_hit_t *hits,
                       uint32_t *n_out);

/* ---- persistence -------------------------------------------------------- */

/** Sink for jiwa_vindex_save(): consume @p len bytes, return 0 or a negative
 *  JIWA_E* code (which aborts the save and is returned by it). */
typedef int (*jiwa_vindex_write_fn)(const void *data, size_t len, void *ud);

/** @brief Exact size in bytes of the image jiwa_vindex_save() would write
 *  now (a multiple of 64). */
uint64_t jiwa_vindex_image_size(const jiwa_vindex_t *idx);

/**
 * @brief Write the index as one flat image through @p write (in order, in
 *        several calls). Works on views too (copies the image).
 * @return 0, JIWA_ETOOBIG (image does not fit size_t), or the sink's error.
 */
int jiwa_vindex_save(const jiwa_vindex_t *idx, jiwa_vindex_write_fn write,
                     void *ud);

/**
 * @brief Write the image into @p buf (e.g. an LMDB MDB_RESERVE value).
 * @param cap bytes available; must be >= jiwa_vindex_image_size().
 * @param len_out receives the image size (may be NULL).
 * @return 0, JIWA_EINVAL (NULL buf), JIWA_ETOOBIG (cap too small).
 */
int jiwa_vindex_save_buf(const jiwa_vindex_t *idx, void *buf, size_t cap,
                         size_t *len_out);

/**
 * @brief Open an image read-only, in place (zero copy). O(1): only the
 *        header is checked (magic, version, header checksum, parameters,
 *        that every section lies inside @p len); neighbour ids, levels and
 *        upper offsets are bounds-checked as searches read them.
 * @param buf image bytes, 8-byte aligned (LMDB large values and mmap'd
 *        files are). Borrowed: it must stay valid and unchanged until
 *        jiwa_vindex_free() — for LMDB, until the read txn ends.
 * @param out receives a read-only index handle (free with jiwa_vindex_free).
 * @return 0, JIWA_EINVAL (NULL/misaligned), JIWA_EPROTO (not an index image,
 *         corrupt header, truncated), JIWA_ENOTSUP (made by a newer format:
 *         upgrade jiwa; or a big-endian host), JIWA_ENOMEM.
 */
int jiwa_vindex_view(const void *buf, size_t len, jiwa_vindex_t **out);

/**
 * @brief Bring an image's pages in ahead of use (madvise WILLNEED, then one
 *        read per page, in order), so the first searches after a cold open
 *        do not take their page faults one random access at a time.
 *        O(image size): call it off the request path (e.g. on the thread
 *        pool) right after opening. A no-op for a mutable index. Searches
 *        may run concurrently.
 */
void jiwa_vindex_warm(const jiwa_vindex_t *idx);

/**
 * @brief Full O(n) integrity check: every neighbour id, level, upper offset,
 *        tombstone count and the body checksum (for a view; a mutable index
 *        is checked structurally). For `jiwa store check`.
 * @return 0 or JIWA_EPROTO.
 */
int jiwa_vindex_check(const jiwa_vindex_t *idx);

/**
 * @brief Make a mutable deep copy of any index (typically a view) to update
 *        it. Runs jiwa_vindex_check() first.
 * @param out receives the new index (caller frees); @p idx is unchanged.
 * @return 0, JIWA_EPROTO (the image fails the full check), JIWA_ENOMEM.
 */
int jiwa_vindex_thaw(const jiwa_vindex_t *idx, jiwa_vindex_t **out);

#ifdef __cplusplus
}
#endif

#endif /* JIWA_VINDEX_H */
