/**
 * @file jiwa_store.h
 * @brief The LMDB store service: one environment, named databases, one
 *        writer thread with group commit, zero-copy readers.
 *
 * Caveats (read these first):
 *  - One store per environment directory per process. LMDB forbids opening
 *    the same environment twice in one process; jiwa_store_open refuses it
 *    (JIWA_EBUSY) instead of corrupting the lock table.
 *  - Every value is a versioned msgpack envelope `[version, payload]`
 *    (a 2-element array: a record schema version 1..65535 chosen by the
 *    caller, then exactly one msgpack object). Callers hand in and get back
 *    the payload; the envelope is written and checked by the store.
 *  - Writes never happen on the caller's thread: a batch of puts/deletes is
 *    queued to the writer thread, which commits everything queued so far in
 *    one LMDB transaction (group commit) and acknowledges only after
 *    mdb_txn_commit succeeded. Durable (fsync per commit) unless the config
 *    asks for `fast` (MDB_NOSYNC: a process crash loses nothing, a power cut
 *    may lose the last commits). Each batch is atomic; batches complete in
 *    submission order.
 *  - Reads are zero-copy: jiwa_store_val_t.data points into the read-only
 *    memory map and dies with the read transaction (jiwa_store_read_end).
 *    Copy out (jiwa_store_val_dup, jiwa_store_fetch) anything kept longer.
 *    Never write through those pointers (the map is read-only: SIGSEGV).
 *  - Do not nest read transactions on one thread and keep them short: the
 *    writer grows the map only when no read transaction is open (LMDB
 *    requires it), so a reader that never ends stalls every writer at the
 *    next map growth.
 *  - The blocking calls (jiwa_store_open/close/submit_wait/backup/check)
 *    must not run on a libuv loop thread that serves other work; use
 *    jiwa_store_submit with a port there.
 *
 * Databases and key layouts are listed in runtime/store/README.md ("Store").
 *
 * Errors: every function returns 0 or a negative JIWA_E* code. When a call
 * fails, jiwa_store_errmsg() returns a sentence for a human on the calling
 * thread (what failed, where, what to do), until the next failing call on
 * that thread.
 */
#ifndef JIWA_STORE_H
#define JIWA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "jiwa/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/** On-disk format of the whole store, recorded in meta "format". */
#define JIWA_STORE_FORMAT_VERSION 1
/** Largest record schema version an envelope may carry. */
#define JIWA_STORE_VERSION_MAX 65535u
/** Largest payload one put accepts (bytes). */
#define JIWA_STORE_VALUE_MAX (1u << 30)
/** Longest plugin namespace for the kv database (bytes, no NUL inside). */
#define JIWA_STORE_NS_MAX 64
/** Problems a check report keeps verbatim (the count is exact). */
#define JIWA_STORE_REPORT_PROBLEMS 16

/** The named databases of the environment. */
typedef enum {
  JIWA_STORE_DB_META,          /**< "meta": store-internal (format, ...) */
  JIWA_STORE_DB_KV,            /**< "kv": plugins, "<ns>\0<key>" */
  JIWA_STORE_DB_COLLECTIONS,   /**< "collections": collection definitions */
  JIWA_STORE_DB_VECTORS,       /**< "vectors": "<collection>\0<id>" records */
  JIWA_STORE_DB_VINDEX,        /**< "vindex": persisted index images */
  JIWA_STORE_DB_GOLDEN,        /**< "golden": golden answers */
  JIWA_STORE_DB_MEMORY,        /**< "memory": per-user memory (profiles) */
  JIWA_STORE_DB_CONVERSATIONS, /**< "conversations": the conversation log */
  JIWA_STORE_DB_SHADOW,        /**< "shadow": shadow comparisons */
  JIWA_STORE_DB_JOBS,          /**< "jobs": job runs */
  JIWA_STORE_DB_COUNT
} jiwa_store_db_t;

/** Optional log hook: level as in jiwa/plugin.h (0 error .. 3 debug). */
typedef void (*jiwa_store_log_fn)(int level, const char *line, void *ud);

/**
 * Store configuration. Initialise with jiwa_store_config_init (sets
 * .size and the defaults), then change fields. Fields past .size (an older
 * caller) keep their defaults.
 */
typedef struct {
  size_t size;            /**< sizeof(jiwa_store_config_t) */
  const char *path;       /**< environment directory (created 0700) */
  size_t map_size;        /**< initial map size, default 64 MiB */
  size_t map_max;         /**< growth limit, default 64 GiB (1 GiB on 32-bit) */
  unsigned max_readers;   /**< LMDB reader slots, default 126 */
  int fast;               /**< 1 = MDB_NOSYNC (no fsync), default 0 */
  unsigned batch_max_ops; /**< ops per group commit, default 8192 */
  size_t batch_max_bytes; /**< payload bytes per group commit, 32 MiB */
  unsigned queue_max;     /**< queued batches before EBUSY, 65536 */
  unsigned reader_check_ms; /**< stale reader sweep period, 10000 */
  jiwa_store_log_fn log;    /**< may be NULL (silent) */
  void *log_ud;
} jiwa_store_config_t;

typedef struct jiwa_store jiwa_store_t;
typedef struct jiwa_store_txn jiwa_store_txn_t;
typedef struct jiwa_store_batch jiwa_store_batch_t;
typedef struct jiwa_store_port jiwa_store_port_t;

/** A value read from the store (payload of the envelope). */
typedef struct {
  uint32_t version; /**< record schema version from the envelope */
  const void *data; /**< payload msgpack: borrowed, see the caveats */
  size_t len;
} jiwa_store_val_t;

/** Counters of the store (a snapshot; fields are not mutually atomic). */
typedef struct {
  uint64_t commits;         /**< successful write transactions */
  uint64_t batches;         /**< acknowledged batches */
  uint64_t ops;             /**< committed puts/deletes */
  uint64_t failed_batches;  /**< batches completed with an error */
  uint64_t map_grows;       /**< map growths done by the writer */
  uint64_t readers_cleared; /**< stale reader slots cleared */
  uint64_t queued;          /**< batches waiting now */
  size_t map_size;          /**< current map size in bytes */
  size_t map_used;          /**< bytes up to the last used page */
} jiwa_store_stats_t;

/** What jiwa_store_check found. */
typedef struct {
  uint32_t format;                       /**< meta "format" (0 if absent) */
  uint64_t entries[JIWA_STORE_DB_COUNT]; /**< records walked per database */
  uint64_t bytes[JIWA_STORE_DB_COUNT];   /**< key + value bytes per db */
  uint64_t problems;                     /**< total problems found */
  /** First JIWA_STORE_REPORT_PROBLEMS problems, one sentence each. */
  char problem[JIWA_STORE_REPORT_PROBLEMS][256];
} jiwa_store_report_t;

/* ---- lifecycle ----------------------------------------------------------- */

/** @brief Fill @p cfg with the defaults (path NULL) and set cfg->size. */
void jiwa_store_config_init(jiwa_store_config_t *cfg);

/**
 * @brief Open (creating if needed) the environment at cfg->path, open the
 * named databases, check the format version and start the writer thread.
 *
 * A store written by an older format is migrated in the same transaction;
 * one written by a newer format is refused and left untouched. Stale reader
 * slots (from crashed processes) are cleared.
 * @param cfg  borrowed for the call (path is copied).
 * @param out  receives the store; close it with jiwa_store_close.
 * @return 0; JIWA_EINVAL (bad config); JIWA_EBUSY (already open in this
 *         process); JIWA_ENOTSUP (newer format, or not an LMDB environment
 *         this liblmdb reads); JIWA_EPROTO (meta "format" record corrupt);
 *         JIWA_EPERM (permissions); JIWA_EIO (I/O or corrupt file);
 *         JIWA_ENOMEM.
 */
int jiwa_store_open(const jiwa_store_config_t *cfg, jiwa_store_t **out);

/**
 * @brief Commit everything still queued, stop the writer, close LMDB and
 * free @p s. Completions still due go to their ports (if those are open)
 * or waiters as usual. Call it once no other thread uses @p s: every read
 * transaction ended, no submit in progress.
 * @return 0, or JIWA_EBUSY if ports are still open (nothing is closed then:
 *         close every port first). NULL is a no-op returning 0.
 */
int jiwa_store_close(jiwa_store_t *s);

/** @brief Environment directory (borrowed, lives as long as @p s). */
const char *jiwa_store_path(const jiwa_store_t *s);

/** @brief Database name ("kv") of @p db, or NULL when out of range. */
const char *jiwa_store_db_name(jiwa_store_db_t db);

/** @brief Counters and map size. Any thread. */
void jiwa_store_stats(jiwa_store_t *s, jiwa_store_stats_t *out);

/**
 * @brief What the last failed jiwa_store_* call on this thread said.
 * @return a thread-local string ("" if nothing failed yet); valid until the
 *         next failing call on this thread.
 */
const char *jiwa_store_errmsg(void);

/* ---- write batches ------------------------------------------------------- */

/**
 * @brief A new empty batch. All data added to it is copied.
 * @return 0 with *out, or JIWA_ENOMEM.
 */
int jiwa_store_batch_new(jiwa_store_batch_t **out);

/** @brief Free a batch that was not submitted (NULL is ok). */
void jiwa_store_batch_free(jiwa_store_batch_t *b);

/** @brief Number of operations in @p b. */
size_t jiwa_store_batch_count(const jiwa_store_batch_t *b);

/**
 * @brief Add "put db[key] = [version, payload]".
 * @param payload exactly one well-formed msgpack object (checked here,
 *        depth ≤ JIWA_MP_MAX_DEPTH - 1); copied.
 * @return 0; JIWA_EINVAL (bad db, empty key, version 0 or above
 *         JIWA_STORE_VERSION_MAX, payload not one msgpack object);
 *         JIWA_ETOOBIG (key above 511 bytes, payload above
 *         JIWA_STORE_VALUE_MAX); JIWA_ENOMEM. The batch is unchanged on
 *         error.
 */
int jiwa_store_batch_put(jiwa_store_batch_t *b, jiwa_store_db_t db,
                         const void *key, size_t klen, uint32_t version,
                         const void *payload, size_t plen);

/**
 * @brief Add "delete db[key]" (deleting a missing key is not an error).
 * @return 0, JIWA_EINVAL, JIWA_ETOOBIG or JIWA_ENOMEM (as batch_put).
 */
int jiwa_store_batch_del(jiwa_store_batch_t *b, jiwa_store_db_t db,
                         const void *key, size_t klen);

/**
 * @brief Add "delete every key of db starting with prefix"; an empty
 * prefix empties the database (meta excluded: JIWA_EINVAL).
 * @return 0, JIWA_EINVAL, JIWA_ETOOBIG or JIWA_ENOMEM.
 */
int jiwa_store_batch_del_prefix(jiwa_store_batch_t *b, jiwa_store_db_t db,
                                const void *prefix, size_t plen);

/**
 * @brief kv put for plugin namespace @p ns: key "<ns>\0<key>".
 * @param ns NUL-terminated, 1..JIWA_STORE_NS_MAX bytes.
 * @return as jiwa_store_batch_put (JIWA_EINVAL for a bad namespace).
 */
int jiwa_store_batch_kv_put(jiwa_store_batch_t *b, const char *ns,
                            const void *key, size_t klen, uint32_t version,
                            const void *payload, size_t plen);

/** @brief kv delete in namespace @p ns. Errors as jiwa_store_batch_del. */
int jiwa_store_batch_kv_del(jiwa_store_batch_t *b, const char *ns,
                            const void *key, size_t klen);

/* ---- submitting ---------------------------------------------------------- */

/**
 * Completion of a submitted batch, called on the port's loop thread.
 * @param status 0 when the batch is committed (durable unless `fast`), else
 *        a negative code: JIWA_ETOOBIG (map_max reached or a batch too big
 *        for one transaction), JIWA_EIO (commit failed: nothing of the batch
 *        was written), JIWA_ESHUTDOWN.
 * @param errmsg NULL on success, else a sentence (borrowed for the call).
 */
typedef void (*jiwa_store_done_fn)(int status, const char *errmsg, void *ud);

/**
 * @brief A completion port: delivers batch completions on @p loop through
 * a uv_async_t. Call on the loop's thread.
 * @return 0 with *out; JIWA_ESHUTDOWN (store closing); JIWA_ENOMEM;
 *         JIWA_EIO (uv_async_init failed).
 */
int jiwa_store_port_open(jiwa_store_t *s, uv_loop_t *loop,
                         jiwa_store_port_t **out);

/**
 * @brief Close @p p on its loop thread. Completions not delivered yet are
 * dropped (their callbacks never run; the writes still commit). The port's
 * memory is released once its handle is closed and the writer is done with
 * it: run the loop until then, as with any libuv handle.
 */
void jiwa_store_port_close(jiwa_store_port_t *p);

/**
 * @brief Queue @p b; @p cb runs once on @p p's loop after the commit.
 * On success the store owns @p b (do not touch it again); on error the
 * caller still owns it and @p cb is never called.
 * @return 0; JIWA_EINVAL (NULL args, closed port); JIWA_EBUSY (queue_max
 *         batches already queued: retry later); JIWA_ESHUTDOWN.
 */
int jiwa_store_submit(jiwa_store_port_t *p, jiwa_store_batch_t *b,
                      jiwa_store_done_fn cb, void *ud);

/**
 * @brief Queue @p b and block until it is committed (tools, tests, jobs;
 * never on a loop thread). The store takes @p b whatever the outcome.
 * @return the batch status (see jiwa_store_done_fn), or JIWA_EINVAL,
 *         JIWA_EBUSY, JIWA_ESHUTDOWN before queueing.
 */
int jiwa_store_submit_wait(jiwa_store_t *s, jiwa_store_batch_t *b);

/**
 * @brief One put, submitted and waited for (a batch of one).
 * @return as jiwa_store_batch_put / jiwa_store_submit_wait.
 */
int jiwa_store_put_wait(jiwa_store_t *s, jiwa_store_db_t db, const void *key,
                        size_t klen, uint32_t version, const void *payload,
                        size_t plen);

/* ---- reading ------------------------------------------------------------- */

/**
 * @brief Start a read-only snapshot. End it with jiwa_store_read_end on any
 * thread (MDB_NOTLS), but use it from one thread at a time, do not nest
 * snapshots on one thread and never wait for a write (submit_wait) while
 * holding one: the writer may be waiting for it to grow the map.
 * @return 0 with *out; JIWA_EBUSY (all reader slots in use); JIWA_ENOMEM;
 *         JIWA_EIO.
 */
int jiwa_store_read_begin(jiwa_store_t *s, jiwa_store_txn_t **out);

/** @brief End a snapshot; every pointer read through it dies. NULL ok. */
void jiwa_store_read_end(jiwa_store_txn_t *t);

/**
 * @brief Zero-copy lookup.
 * @param out  data borrowed from the map until jiwa_store_read_end.
 * @return 0; JIWA_ENOENT; JIWA_EPROTO (stored value is not a valid
 *         envelope: errmsg names db and key); JIWA_EINVAL; JIWA_EIO.
 */
int jiwa_store_get(jiwa_store_txn_t *t, jiwa_store_db_t db, const void *key,
                   size_t klen, jiwa_store_val_t *out);

/** @brief jiwa_store_get in kv namespace @p ns. Same errors. */
int jiwa_store_kv_get(jiwa_store_txn_t *t, const char *ns, const void *key,
                      size_t klen, jiwa_store_val_t *out);

/**
 * Scan callback: key and value borrowed for the call (and the txn).
 * @return 0 to go on, 1 to stop (scan returns 0), a negative code to stop
 *         (scan returns it).
 */
typedef int (*jiwa_store_scan_fn)(const void *key, size_t klen,
                                  const jiwa_store_val_t *val, void *ud);

/**
 * @brief Visit, in key order, every key of @p db starting with @p prefix
 * (empty prefix: all).
 * @return 0; the callback's negative code; JIWA_EPROTO (a corrupt value
 *         stops the scan before the callback sees it); JIWA_EINVAL; JIWA_EIO.
 */
int jiwa_store_scan_prefix(jiwa_store_txn_t *t, jiwa_store_db_t db,
                           const void *prefix, size_t plen,
                           jiwa_store_scan_fn cb, void *ud);

/**
 * @brief Visit keys k with start <= k < end in key order (bytewise);
 * @p end NULL means no upper bound. Errors as jiwa_store_scan_prefix.
 */
int jiwa_store_scan_range(jiwa_store_txn_t *t, jiwa_store_db_t db,
                          const void *start, size_t slen, const void *end,
                          size_t elen, jiwa_store_scan_fn cb, void *ud);

/**
 * @brief Scan kv namespace @p ns for keys starting with @p prefix; the
 * callback sees keys without the "<ns>\0" part. Errors as scan_prefix.
 */
int jiwa_store_kv_scan(jiwa_store_txn_t *t, const char *ns, const void *prefix,
                       size_t plen, jiwa_store_scan_fn cb, void *ud);

/**
 * @brief Copy a borrowed payload out: *out is malloc'ed (free it), *len set.
 * @return 0 or JIWA_ENOMEM.
 */
int jiwa_store_val_dup(const jiwa_store_val_t *v, void **out, size_t *len);

/**
 * @brief Copy-out lookup in its own short read transaction.
 * @param version may be NULL. @param out malloc'ed payload (free it).
 * @return as jiwa_store_read_begin / jiwa_store_get, or JIWA_ENOMEM.
 */
int jiwa_store_fetch(jiwa_store_t *s, jiwa_store_db_t db, const void *key,
                     size_t klen, uint32_t *version, void **out, size_t *len);

/* ---- maintenance ----------------------------------------------------------
 */

/**
 * @brief Compacting copy of the environment (mdb_env_copy2 MDB_CP_COMPACT)
 * into directory @p path (created 0700 if missing; must not hold a
 * data.mdb). Consistent snapshot; writers keep going meanwhile.
 * @return 0; JIWA_EEXIST (path/data.mdb exists); JIWA_EPERM; JIWA_EIO;
 *         JIWA_EINVAL.
 */
int jiwa_store_backup(jiwa_store_t *s, const char *path);

/**
 * @brief Walk every database, decode every value (envelope, version,
 * well-formed msgpack), check key layouts and the format record.
 * @param report filled (zeroed first) whatever the outcome.
 * @return 0 when nothing is wrong; JIWA_EPROTO when problems were found
 *         (see report); JIWA_EBUSY/JIWA_EIO if the walk itself failed.
 */
int jiwa_store_check(jiwa_store_t *s, jiwa_store_report_t *report);

/* ---- the value envelope (also used by the fuzz harness) ------------------ */

/** @brief Bytes jiwa_store_value_encode writes for a payload of @p plen. */
size_t jiwa_store_value_size(uint32_t version, size_t plen);

/**
 * @brief Write the envelope `[version, payload]` into @p out (@p cap bytes).
 * @return bytes written, or 0 if @p cap is too small or version invalid.
 */
size_t jiwa_store_value_encode(uint32_t version, const void *payload,
                               size_t plen, void *out, size_t cap);

/**
 * @brief Decode an envelope from untrusted bytes. Bounded: no allocation,
 * one linear pass, depth ≤ JIWA_MP_MAX_DEPTH, and the payload must be
 * exactly one msgpack object ending at @p buf + @p len.
 * @param out  payload pointer borrows @p buf.
 * @return 0 or JIWA_EPROTO (with a reason in jiwa_store_errmsg()).
 */
int jiwa_store_value_decode(const void *buf, size_t len, jiwa_store_val_t *out);

/* ---- key helpers -----------------------------------------------------------
 */

/** A key under construction (LMDB's default key limit is 511 bytes). */
typedef struct {
  size_t len;
  int overflow; /**< set when an append did not fit; the key is unusable */
  uint8_t buf[511];
} jiwa_store_key_t;

/** @brief Empty @p k. */
void jiwa_store_key_init(jiwa_store_key_t *k);
/** @brief Append raw bytes. */
void jiwa_store_key_add(jiwa_store_key_t *k, const void *p, size_t n);
/** @brief Append a string and its NUL separator ("user42\0"). */
void jiwa_store_key_add_str(jiwa_store_key_t *k, const char *s);
/** @brief Append a big-endian u64 (sorts numerically: timestamps). */
void jiwa_store_key_add_u64(jiwa_store_key_t *k, uint64_t v);
/** @brief Append a big-endian u32 (sequence numbers). */
void jiwa_store_key_add_u32(jiwa_store_key_t *k, uint32_t v);

#ifdef __cplusplus
}
#endif
#endif /* JIWA_STORE_H */
