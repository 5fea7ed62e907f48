/**
 * @file plugin.h
 * @brief The jiwa plugin SDK: descriptor, host function table, config schema.
 *
 * A plugin is a shared object exporting one function, jiwa_plugin_entry_v1,
 * that receives the host's function table and returns a static descriptor.
 * The smallest complete plugin is plugins/template/template.c.
 *
 * Caveats:
 *  - Every callback of an actor runs on that actor's worker loop, one at a
 *    time: a plugin needs no locks for its context. Host functions must be
 *    called from that loop too, never from a queue_work `work` function
 *    (which runs on the thread pool) and never from another thread.
 *  - Messages handed to a callback are *borrowed for that call*. To keep one
 *    (say, to reply later) take a reference with jiwa_msg_retain() and drop
 *    it with jiwa_msg_release().
 *  - Bodies are msgpack bytes; read them with jiwa/mp.h, build them with a
 *    jiwa_mp_writer_t. Host functions copy the body you pass; you keep
 *    ownership of your buffer.
 *  - A function that returns an error never calls its callback; one that
 *    returns 0 calls it exactly once (asks: the reply or an error, which may
 *    be JIWA_ETIMEDOUT or, when the actor is being unloaded, JIWA_ECANCELED).
 *  - Plugins link nothing from the host: every host service is reached
 *    through the table, via the jiwa_* inline wrappers below.
 *  - HTTP (ABI 1.1): jiwa_http_request / jiwa_http_cancel with the types of
 *    jiwa/http.h; parse event streams with jiwa/sse.h (in libjiwa_sdk).
 *    A plugin that must also run on a 1.0 host gets JIWA_ENOTSUP there.
 *  - Store (ABI 1.2): a key-value namespace per actor (jiwa_kv_*) and the
 *    daemon's vector collections (jiwa_collection_*, types in jiwa/store.h).
 *    Reads are synchronous and fast (copy-out or borrowed for a callback);
 *    writes are asynchronous: they go through the store's single writer and
 *    their completion runs later on this actor's loop. On an older host
 *    they return JIWA_ENOTSUP.
 */
#ifndef JIWA_PLUGIN_H
#define JIWA_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "http.h"
#include "mp.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** ABI major: a plugin built for another major is refused. */
#define JIWA_ABI_MAJOR 1
/** ABI minor: grows when fields are appended to the host table. */
#define JIWA_ABI_MINOR 2

#if defined(__GNUC__)
#define JIWA_PLUGIN_EXPORT __attribute__((visibility("default")))
#define JIWA_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define JIWA_PLUGIN_EXPORT
#define JIWA_PRINTF(f, a)
#endif

/** An immutable, refcounted message (envelope + msgpack body). Opaque. */
typedef struct jiwa_msg jiwa_msg_t;
/** The running actor a callback is acting for. Opaque, owned by the host. */
typedef struct jiwa_actor jiwa_actor_t;

/** What a message is, in the tell/ask/stream protocol. */
typedef enum {
  JIWA_MSG_TELL = 1, /**< fire and forget */
  JIWA_MSG_ASK = 2,  /**< expects exactly one final reply or error */
  JIWA_MSG_DELTA = 3, /**< one part of a streamed reply (type "*.delta") */
  JIWA_MSG_REPLY = 4, /**< the final reply to an ask */
  JIWA_MSG_ERROR = 5  /**< the final reply, as an error (code + text) */
} jiwa_msg_kind_t;

/** Log levels. */
typedef enum {
  JIWA_LOG_ERROR = 0,
  JIWA_LOG_WARN = 1,
  JIWA_LOG_INFO = 2,
  JIWA_LOG_DEBUG = 3
} jiwa_log_level_t;

/* ---- config schema ------------------------------------------------------ */

/** Types a config field may have, and the C type stored at its offset. */
typedef enum {
  JIWA_CFG_STR = 1, /**< char * (host-owned, valid until fini returns) */
  JIWA_CFG_INT,     /**< int64_t */
  JIWA_CFG_BOOL,    /**< int (0 or 1) */
  JIWA_CFG_DOUBLE,  /**< double */
  /** char *: the config names an environment variable, the field receives
   *  its value. The value is a secret: never logged, never in stats. */
  JIWA_CFG_SECRET_ENV,
  /** jiwa_cfg_raw_t: any value (list, table) kept as msgpack bytes
   *  (host-owned copy, valid until fini returns). */
  JIWA_CFG_RAW
} jiwa_cfg_type_t;

/** Storage of a JIWA_CFG_RAW field. */
typedef struct {
  const void *data; /**< msgpack bytes, NULL when unset */
  size_t len;
} jiwa_cfg_raw_t;

/** Field flags. */
#define JIWA_CFG_REQUIRED 1u

/**
 * One entry of a plugin's declarative config map. A table of these,
 * terminated by an entry with key == NULL, validates the instance config
 * (unknown keys, types, ranges, required), fills the plugin context struct
 * before init, and prints the plugin's help (`jiwad --plugin-help NAME`).
 */
typedef struct jiwa_cfg_field {
  jiwa_cfg_type_t type;
  const char *key;
  /** Default as text ("30", "true", "0.7", "hello"); NULL = no default. */
  const char *def;
  /** offsetof(your_ctx_struct, member) */
  size_t offset;
  unsigned flags;
  /** Inclusive range for INT and DOUBLE; ignored when min == max. */
  double min, max;
  const char *desc;
} jiwa_cfg_field_t;

/* ---- callbacks ---------------------------------------------------------- */

/** Receives the reply (kind REPLY or ERROR) or a DELTA of an ask. Called
 *  once per delta and exactly once with the final message. */
typedef void (*jiwa_reply_cb)(jiwa_actor_t *self, void *ctx,
                              const jiwa_msg_t *reply, void *ud);
/** A timer fired. */
typedef void (*jiwa_timer_cb)(jiwa_actor_t *self, void *ctx, void *ud);
/** Runs on the thread pool: may block, must not call any host function. */
typedef void (*jiwa_work_fn)(void *ud);
/** Runs back on the actor's loop after a work function; status is 0 or
 *  JIWA_ECANCELED. */
typedef void (*jiwa_done_cb)(jiwa_actor_t *self, void *ctx, int status,
                             void *ud);

/**
 * Completion of an asynchronous store write (ABI 1.2), on the actor's loop,
 * exactly once per write that was accepted.
 * @param status 0: committed (durable unless the store runs `fast`);
 *        JIWA_EIO: the commit failed, nothing of the write happened;
 *        JIWA_ETOOBIG: the store reached store.map_max; JIWA_EINVAL,
 *        JIWA_ENOTSUP, JIWA_ENOMEM: a collection write refused on the
 *        thread pool (bad record, no embedder); JIWA_ESHUTDOWN.
 */
typedef void (*jiwa_store_cb)(jiwa_actor_t *self, void *ctx, int status,
                              void *ud);

/**
 * One item of jiwa_kv_scan: key without the namespace, msgpack value; both
 * borrowed for the call only. Return 0 to go on, 1 to stop (the scan
 * returns the count so far), a negative code to abort (returned).
 */
typedef int (*jiwa_kv_scan_cb)(const void *key, size_t klen, const void *val,
                               size_t vlen, void *ud);

/* ---- the host table ----------------------------------------------------- */

/**
 * Services the host offers a plugin. Versioned: fields are only ever
 * appended; `size` is sizeof the table the host was built with, so a plugin
 * built for a newer minor checks `size` before using a newer field.
 */
typedef struct jiwa_host {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t size;

  /* messages (all borrowed views valid as long as the message is) */
  const char *(*msg_type)(const jiwa_msg_t *m);
  jiwa_msg_kind_t (*msg_kind)(const jiwa_msg_t *m);
  const void *(*msg_body)(const jiwa_msg_t *m, size_t *len);
  uint64_t (*msg_id)(const jiwa_msg_t *m);
  const char *(*msg_sender)(const jiwa_msg_t *m);
  /** Absolute deadline in ms (jiwa_now_ms clock), 0 = none. */
  uint64_t (*msg_deadline)(const jiwa_msg_t *m);
  /** For JIWA_MSG_ERROR: the code (negative) and a borrowed text. */
  int (*msg_error)(const jiwa_msg_t *m, const char **text);
  jiwa_msg_t *(*msg_retain)(const jiwa_msg_t *m);
  void (*msg_release)(jiwa_msg_t *m);

  /* actor protocol */
  int (*tell)(jiwa_actor_t *self, const char *to, const char *type,
              const void *body, size_t len);
  int (*ask)(jiwa_actor_t *self, const char *to, const char *type,
             const void *body, size_t len, uint32_t timeout_ms,
             jiwa_reply_cb cb, void *ud);
  int (*reply)(jiwa_actor_t *self, const jiwa_msg_t *req, const char *type,
               const void *body, size_t len);
  int (*stream)(jiwa_actor_t *self, const jiwa_msg_t *req, const char *type,
                const void *body, size_t len);
  int (*reply_error)(jiwa_actor_t *self, const jiwa_msg_t *req, int code,
                     const char *text);

  /* timers and work */
  int (*timer_start)(jiwa_actor_t *self, uint64_t after_ms, uint64_t repeat_ms,
                     jiwa_timer_cb cb, void *ud, uint64_t *id);
  int (*timer_stop)(jiwa_actor_t *self, uint64_t id);
  int (*queue_work)(jiwa_actor_t *self, jiwa_work_fn work, jiwa_done_cb done,
                    void *ud);

  /* observability */
  void (*vlog)(jiwa_actor_t *self, int level, const char *fmt, va_list ap);
  void (*count)(jiwa_actor_t *self, const char *name, int64_t delta);
  void (*observe_ms)(jiwa_actor_t *self, const char *name, double ms);

  /* misc */
  uint64_t (*now_ms)(void);
  const char *(*self_name)(jiwa_actor_t *self);

  /* ---- ABI 1.1 ---- */
  /* HTTP (jiwa/http.h): see jiwa_http_request / jiwa_http_cancel */
  int (*http_request)(jiwa_actor_t *self, const jiwa_http_req_t *req,
                      const jiwa_http_cbs_t *cbs, void *ud, uint64_t *id);
  int (*http_cancel)(jiwa_actor_t *self, uint64_t id);

  /* ---- ABI 1.2 ---- */
  /* store: see the jiwa_kv_* and jiwa_collection_* wrappers */
  void (*mem_free)(void *p);
  int (*kv_get)(jiwa_actor_t *self, const void *key, size_t klen, void **val,
                size_t *vlen);
  int (*kv_put)(jiwa_actor_t *self, const void *key, size_t klen,
                const void *val, size_t vlen, jiwa_store_cb cb, void *ud);
  int (*kv_del)(jiwa_actor_t *self, const void *key, size_t klen,
                jiwa_store_cb cb, void *ud);
  int (*kv_scan)(jiwa_actor_t *self, const void *prefix, size_t plen,
                 uint32_t max_items, jiwa_kv_scan_cb cb, void *ud);
  int (*coll_search)(jiwa_actor_t *self, const char *coll,
                     const jiwa_coll_query_t *q, jiwa_coll_result_t *out);
  int (*coll_get)(jiwa_actor_t *self, const char *coll, const char *id,
                  size_t id_len, uint32_t flags, jiwa_coll_result_t *out);
  int (*coll_upsert)(jiwa_actor_t *self, const char *coll,
                     const jiwa_coll_record_t *recs, size_t n,
                     jiwa_store_cb cb, void *ud);
  int (*coll_delete)(jiwa_actor_t *self, const char *coll,
                     const char *const *ids, const size_t *lens, size_t n,
                     jiwa_store_cb cb, void *ud);
  int (*coll_stats)(jiwa_actor_t *self, const char *coll, void **mp,
                    size_t *len);
  void (*coll_result_free)(jiwa_coll_result_t *r);
} jiwa_host_t;

/** True when the host table @p h has field @p f (it may be older). */
#define JIWA_HOST_HAS(h, f)                                                    \
  ((h)->size >= offsetof(jiwa_host_t, f) + sizeof((h)->f))

/* ---- the descriptor ----------------------------------------------------- */

/**
 * What a plugin is. Static, owned by the plugin, must outlive the plugin's
 * unload. `size` is sizeof(jiwa_plugin_desc_t) as the plugin compiled it.
 */
typedef struct jiwa_plugin_desc {
  uint32_t abi_major; /**< JIWA_ABI_MAJOR */
  uint32_t abi_minor; /**< JIWA_ABI_MINOR */
  uint32_t size;      /**< sizeof(jiwa_plugin_desc_t) */
  const char *name;
  const char *version;
  const char *description;
  /** Config map, terminated by {0}; may be NULL for no settings. */
  const jiwa_cfg_field_t *config;
  /** Size of the plugin context. The host allocates it zeroed, fills it from
   *  the config map, passes it to every callback, frees it after fini. */
  size_t ctx_size;
  /** Called once on the actor's loop. Return 0, or a negative code: the
   *  supervisor reports it and retries with backoff. */
  int (*init)(jiwa_actor_t *self, void *ctx);
  /** One message at a time. A negative return means the actor broke: it is
   *  reported, finished and restarted with backoff. */
  int (*receive)(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *msg);
  /** Optional: this instance was replaced by a reload; stop repeating timers
   *  and finish what is in flight. No new messages will arrive. */
  void (*drain)(jiwa_actor_t *self, void *ctx);
  /** Called once when nothing of the instance remains in flight (or when the
   *  drain deadline passed). Free what init allocated. */
  void (*fini)(jiwa_actor_t *self, void *ctx);
} jiwa_plugin_desc_t;

/** Name of the exported entry point, looked up with dlsym. */
#define JIWA_PLUGIN_ENTRY_SYMBOL "jiwa_plugin_entry_v1"
/** Name of the exported ABI stamp {major, minor, sizeof descriptor}: the
 *  loader reads it before calling anything in the plugin. */
#define JIWA_PLUGIN_ABI_SYMBOL "jiwa_plugin_abi_v1"

/** Signature of the entry point. */
typedef const jiwa_plugin_desc_t *(*jiwa_plugin_entry_fn)(
    const jiwa_host_t *host);

/**
 * The host table this module was given. Each plugin .so has its own copy
 * (hidden visibility); JIWA_PLUGIN() defines and fills it.
 */
extern const jiwa_host_t *jiwa__host;

/**
 * Define the entry point of a plugin whose descriptor is @p desc.
 * Use exactly once per plugin, at file scope.
 */
#define JIWA_PLUGIN(desc)                                                      \
  __attribute__((visibility("hidden"))) const jiwa_host_t *jiwa__host;         \
  JIWA_PLUGIN_EXPORT extern const uint32_t jiwa_plugin_abi_v1[3];              \
  JIWA_PLUGIN_EXPORT const uint32_t jiwa_plugin_abi_v1[3] = {                  \
      JIWA_ABI_MAJOR, JIWA_ABI_MINOR, (uint32_t)sizeof(jiwa_plugin_desc_t)};   \
  JIWA_PLUGIN_EXPORT const jiwa_plugin_desc_t *jiwa_plugin_entry_v1(           \
      const jiwa_host_t *host);                                                \
  JIWA_PLUGIN_EXPORT const jiwa_plugin_desc_t *jiwa_plugin_entry_v1(           \
      const jiwa_host_t *host) {                                               \
    jiwa__host = host;                                                         \
    return &(desc);                                                            \
  }

/** Fill the ABI fields of a descriptor initialiser. */
#define JIWA_DESC_HEADER                                                       \
  .abi_major = JIWA_ABI_MAJOR, .abi_minor = JIWA_ABI_MINOR,                    \
  .size = sizeof(jiwa_plugin_desc_t)

/* ---- inline wrappers: what plugin code calls ---------------------------- */

/** @brief Message type ("llm.complete"). Borrowed, lives with @p m. */
static inline const char *jiwa_msg_type(const jiwa_msg_t *m) {
  return jiwa__host->msg_type(m);
}
/** @brief tell / ask / delta / reply / error. */
static inline jiwa_msg_kind_t jiwa_msg_kind(const jiwa_msg_t *m) {
  return jiwa__host->msg_kind(m);
}
/** @brief msgpack body (borrowed, lives with @p m); *len gets its size. */
static inline const void *jiwa_msg_body(const jiwa_msg_t *m, size_t *len) {
  return jiwa__host->msg_body(m, len);
}
/** @brief Correlation id: the ask's id, shared by its deltas and reply. */
static inline uint64_t jiwa_msg_id(const jiwa_msg_t *m) {
  return jiwa__host->msg_id(m);
}
/** @brief Sender actor name ("" for external clients). Borrowed. */
static inline const char *jiwa_msg_sender(const jiwa_msg_t *m) {
  return jiwa__host->msg_sender(m);
}
/** @brief Absolute deadline (ms, jiwa_now_ms clock) or 0. */
static inline uint64_t jiwa_msg_deadline(const jiwa_msg_t *m) {
  return jiwa__host->msg_deadline(m);
}
/** @brief Error code and text of an ERROR message (0 for other kinds). */
static inline int jiwa_msg_error(const jiwa_msg_t *m, const char **text) {
  return jiwa__host->msg_error(m, text);
}
/** @brief Take a reference; the message stays valid until released. */
static inline jiwa_msg_t *jiwa_msg_retain(const jiwa_msg_t *m) {
  return jiwa__host->msg_retain(m);
}
/** @brief Drop a reference taken with jiwa_msg_retain. */
static inline void jiwa_msg_release(jiwa_msg_t *m) {
  jiwa__host->msg_release(m);
}
/** @brief Look a string field up in a message body. See jiwa_mp_get_str. */
static inline int jiwa_msg_get_str(const jiwa_msg_t *m, const char *key,
                                   const char **s, size_t *slen) {
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  return jiwa_mp_get_str(b, len, key, s, slen);
}
/** @brief Look an integer field up in a message body. */
static inline int jiwa_msg_get_int(const jiwa_msg_t *m, const char *key,
                                   int64_t *out) {
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  return jiwa_mp_get_int(b, len, key, out);
}

/**
 * @brief Fire and forget. The body is copied.
 * @return 0, JIWA_ENOENT (no actor @p to), JIWA_EBUSY (its mailbox is full).
 */
static inline int jiwa_tell(jiwa_actor_t *self, const char *to,
                            const char *type, const void *body, size_t len) {
  return jiwa__host->tell(self, to, type, body, len);
}
/**
 * @brief Ask @p to and get exactly one final reply (or error) in @p cb,
 * preceded by zero or more deltas, on this actor's loop.
 * @param timeout_ms deadline from now; 0 uses the runtime default.
 * @return 0 (cb will run) or an error (cb will not run).
 */
static inline int jiwa_ask(jiwa_actor_t *self, const char *to,
                           const char *type, const void *body, size_t len,
                           uint32_t timeout_ms, jiwa_reply_cb cb, void *ud) {
  return jiwa__host->ask(self, to, type, body, len, timeout_ms, cb, ud);
}
/**
 * @brief Final reply to an ask (@p req is the ask message, borrowed).
 * Replying to a message that was not an ask, or twice, is JIWA_ESTATE;
 * a reply after the asker's deadline is dropped and counted (returns 0).
 */
static inline int jiwa_reply(jiwa_actor_t *self, const jiwa_msg_t *req,
                             const char *type, const void *body, size_t len) {
  return jiwa__host->reply(self, req, type, body, len);
}
/** @brief One streamed part of the reply to @p req; finish with jiwa_reply. */
static inline int jiwa_stream(jiwa_actor_t *self, const jiwa_msg_t *req,
                              const char *type, const void *body, size_t len) {
  return jiwa__host->stream(self, req, type, body, len);
}
/** @brief Final reply as an error (negative @p code, text copied). */
static inline int jiwa_reply_error(jiwa_actor_t *self, const jiwa_msg_t *req,
                                   int code, const char *text) {
  return jiwa__host->reply_error(self, req, code, text);
}
/** @brief One-shot (repeat_ms 0) or repeating timer; *id for timer_stop. */
static inline int jiwa_timer_start(jiwa_actor_t *self, uint64_t after_ms,
                                   uint64_t repeat_ms, jiwa_timer_cb cb,
                                   void *ud, uint64_t *id) {
  return jiwa__host->timer_start(self, after_ms, repeat_ms, cb, ud, id);
}
/** @brief Stop a timer; its callback will not run again. */
static inline int jiwa_timer_stop(jiwa_actor_t *self, uint64_t id) {
  return jiwa__host->timer_stop(self, id);
}
/** @brief Run @p work on the thread pool, then @p done on this loop. */
static inline int jiwa_queue_work(jiwa_actor_t *self, jiwa_work_fn work,
                                  jiwa_done_cb done, void *ud) {
  return jiwa__host->queue_work(self, work, done, ud);
}
/** @brief Log one line attributed to this actor. */
static inline JIWA_PRINTF(3, 4) void jiwa_log(jiwa_actor_t *self, int level,
                                              const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jiwa__host->vlog(self, level, fmt, ap);
  va_end(ap);
}
/** @brief Add @p delta to this actor's counter @p name (created on use). */
static inline void jiwa_count(jiwa_actor_t *self, const char *name,
                              int64_t delta) {
  jiwa__host->count(self, name, delta);
}
/** @brief Record a latency sample in this actor's histogram @p name. */
static inline void jiwa_observe_ms(jiwa_actor_t *self, const char *name,
                                   double ms) {
  jiwa__host->observe_ms(self, name, ms);
}
/** @brief Monotonic milliseconds (the clock of message deadlines). */
static inline uint64_t jiwa_now_ms(void) { return jiwa__host->now_ms(); }
/** @brief This actor's configured name. Borrowed, lives with the actor. */
static inline const char *jiwa_self_name(jiwa_actor_t *self) {
  return jiwa__host->self_name(self);
}

/**
 * @brief Start an HTTP request (ABI 1.1); see jiwa/http.h.
 *
 * Everything in @p req is copied before this returns (the body too).
 * @p cbs is borrowed and must stay valid until on_done has run (use a
 * static const table). The callbacks run on this actor's loop: on_response
 * at most once, then on_data per chunk, then on_done exactly once.
 *
 * Cancellation and unload: jiwa_http_cancel, or this generation being cut
 * short (drain deadline, restart, shutdown), stops the transfer; no more
 * on_response/on_data follow, and on_done comes once with JIWA_ECANCELED
 * (or JIWA_ESHUTDOWN), always *before* the plugin's fini. A generation
 * that drains after a reload keeps its requests running: they count as
 * in-flight work, like asks and timers.
 *
 * @param ud passed to every callback of this request.
 * @param id out (may be NULL): the request's id for jiwa_http_cancel.
 * @return 0 (on_done will run) or, with no callback ever: JIWA_EINVAL (no
 *         url or on_done, a URL that is not http(s), CR/LF in a header),
 *         JIWA_ECANCELED (this generation is being stopped), JIWA_ESTATE,
 *         JIWA_ENOMEM, JIWA_EIO (the HTTP engine could not start),
 *         JIWA_ENOTSUP (the host is older than ABI 1.1).
 */
static inline int jiwa_http_request(jiwa_actor_t *self,
                                    const jiwa_http_req_t *req,
                                    const jiwa_http_cbs_t *cbs, void *ud,
                                    uint64_t *id) {
  if (!JIWA_HOST_HAS(jiwa__host, http_request))
    return JIWA_ENOTSUP;
  return jiwa__host->http_request(self, req, cbs, ud, id);
}

/**
 * @brief Cancel request @p id of this actor (ABI 1.1).
 *
 * Calls no callback itself: after it returns 0 the request gets no more
 * on_response/on_data, and on_done follows once from the loop with
 * JIWA_ECANCELED (kind JIWA_HTTP_FAIL_CANCELED). Safe from inside any of
 * the request's own callbacks but on_done.
 * @return 0; JIWA_ENOENT when @p id is unknown, already finished or
 *         already canceled; JIWA_ENOTSUP (host older than ABI 1.1).
 */
static inline int jiwa_http_cancel(jiwa_actor_t *self, uint64_t id) {
  if (!JIWA_HOST_HAS(jiwa__host, http_cancel))
    return JIWA_ENOTSUP;
  return jiwa__host->http_cancel(self, id);
}

/* ---- store (ABI 1.2) -----------------------------------------------------
 *
 * Key-value: each actor has its own namespace (its configured name); keys
 * are 1..(510 - name length) bytes (the store keeps "<name>\0<key>"),
 * values one msgpack object of at most 1 GiB. Collections: the ones configured in store.collections, by name.
 *
 * Writes (jiwa_kv_put/del, jiwa_collection_upsert/delete) are queued to the
 * store's writer; @p cb runs once on this actor's loop after the commit
 * (in submission order per actor for kv; collection writes commit in call
 * order per collection). A write that returns an error never calls @p cb.
 *
 * Unload and reload: an accepted write cannot be taken back, so it always
 * completes. It counts as in-flight work of the generation that made it
 * (like a thread-pool job): a generation that is draining, cut short at its
 * drain deadline or stopped at shutdown stays alive until every one of its
 * writes has committed (or failed), and @p cb runs *before* the plugin's
 * fini, with the real status. Once a generation is being cut short, new
 * writes are refused with JIWA_ECANCELED.
 */

/** @brief Free memory the host handed out (jiwa_kv_get values, stats).
 *  NULL is fine. */
static inline void jiwa_kv_free(void *p) {
  if (p && JIWA_HOST_HAS(jiwa__host, mem_free))
    jiwa__host->mem_free(p);
}

/**
 * @brief Read key @p key of this actor's namespace (synchronous copy-out;
 * microseconds: fine on the loop).
 * @param val  out: a copy of the msgpack value, owned by the caller: release
 *             it with jiwa_kv_free. Untouched on error.
 * @param vlen out: its length.
 * @return 0; JIWA_ENOENT (no such key); JIWA_EINVAL (NULL or bad key);
 *         JIWA_ETOOBIG (key too long); JIWA_ESTATE (the daemon runs without
 *         a store); JIWA_EPROTO (the stored value is corrupt); JIWA_EBUSY
 *         (all store readers busy); JIWA_ENOMEM; JIWA_ENOTSUP (host older
 *         than ABI 1.2).
 */
static inline int jiwa_kv_get(jiwa_actor_t *self, const void *key,
                              size_t klen, void **val, size_t *vlen) {
  if (!JIWA_HOST_HAS(jiwa__host, kv_get))
    return JIWA_ENOTSUP;
  return jiwa__host->kv_get(self, key, klen, val, vlen);
}

/**
 * @brief Write key @p key = @p val (one msgpack object; copied) in this
 * actor's namespace, asynchronously: @p cb (may be NULL: fire and forget,
 * but the write still counts as in flight) runs once after the commit.
 * @return 0 (cb will run) or, with no callback ever: JIWA_EINVAL (bad key,
 *         value not one msgpack object); JIWA_ETOOBIG; JIWA_EBUSY (writer
 *         queue full: retry later); JIWA_ECANCELED (this generation is
 *         being stopped); JIWA_ESTATE (no store); JIWA_ESHUTDOWN;
 *         JIWA_ENOMEM; JIWA_ENOTSUP.
 */
static inline int jiwa_kv_put(jiwa_actor_t *self, const void *key,
                              size_t klen, const void *val, size_t vlen,
                              jiwa_store_cb cb, void *ud) {
  if (!JIWA_HOST_HAS(jiwa__host, kv_put))
    return JIWA_ENOTSUP;
  return jiwa__host->kv_put(self, key, klen, val, vlen, cb, ud);
}

/** @brief Delete key @p key (a missing key is not an error); asynchronous
 *  like jiwa_kv_put, same errors. */
static inline int jiwa_kv_del(jiwa_actor_t *self, const void *key,
                              size_t klen, jiwa_store_cb cb, void *ud) {
  if (!JIWA_HOST_HAS(jiwa__host, kv_del))
    return JIWA_ENOTSUP;
  return jiwa__host->kv_del(self, key, klen, cb, ud);
}

/**
 * @brief Visit, in key order, the keys of this actor's namespace starting
 * with @p prefix (synchronous; plen 0 = all), at most @p max_items of them
 * (0 = 1000; at most 100000): a bound on the time spent on the loop.
 * @p cb gets borrowed key and value; it must not keep them, and must not
 * call jiwa_kv_get or another scan (one read snapshot per thread).
 * Writes made meanwhile are not seen (a snapshot).
 * @return the number of items visited (>= 0), the callback's negative
 *         code, or JIWA_EINVAL, JIWA_ESTATE, JIWA_EPROTO, JIWA_EBUSY,
 *         JIWA_ENOTSUP.
 */
static inline int jiwa_kv_scan(jiwa_actor_t *self, const void *prefix,
                               size_t plen, uint32_t max_items,
                               jiwa_kv_scan_cb cb, void *ud) {
  if (!JIWA_HOST_HAS(jiwa__host, kv_scan))
    return JIWA_ENOTSUP;
  return jiwa__host->kv_scan(self, prefix, plen, max_items, cb, ud);
}

/**
 * @brief Search collection @p coll (synchronous, well under a millisecond:
 * call it right in receive). See jiwa_coll_query_t: a vector or a text,
 * k, min_score, filters (field = value; values OR, filters AND, applied
 * during the index walk), dedup. Reads the last committed state.
 * @param out filled on success; owned by the caller: release with
 *            jiwa_collection_result_free. Zeroed on error.
 * @return 0 (possibly 0 hits); JIWA_ENOENT (no such collection); JIWA_EINVAL
 *         (bad query); JIWA_ENOTSUP (text query on a collection whose
 *         embedder needs the network: search by vector; or host older than
 *         1.2); JIWA_ESTATE (no store); JIWA_EPROTO (corrupt data);
 *         JIWA_ENOMEM.
 */
static inline int jiwa_collection_search(jiwa_actor_t *self, const char *coll,
                                         const jiwa_coll_query_t *q,
                                         jiwa_coll_result_t *out) {
  if (!JIWA_HOST_HAS(jiwa__host, coll_search))
    return JIWA_ENOTSUP;
  return jiwa__host->coll_search(self, coll, q, out);
}

/**
 * @brief One record of @p coll by id (synchronous).
 * @param flags JIWA_COLL_WITH_TEXT | JIWA_COLL_WITH_META | JIWA_COLL_WITH_VEC.
 * @param out   one hit; release with jiwa_collection_result_free.
 * @return 0; JIWA_ENOENT (no such collection or id); JIWA_EINVAL;
 *         JIWA_ESTATE; JIWA_EPROTO; JIWA_ENOMEM; JIWA_ENOTSUP.
 */
static inline int jiwa_collection_get(jiwa_actor_t *self, const char *coll,
                                      const char *id, size_t id_len,
                                      uint32_t flags,
                                      jiwa_coll_result_t *out) {
  if (!JIWA_HOST_HAS(jiwa__host, coll_get))
    return JIWA_ENOTSUP;
  return jiwa__host->coll_get(self, coll, id, id_len, flags, out);
}

/**
 * @brief Insert or replace @p n records of @p coll (everything is copied
 * before this returns). Embedding, indexing and the image save run on the
 * thread pool, then the batch goes through the writer; @p cb (may be NULL)
 * gets the final status: 0 once committed and visible to searches, or the
 * validation error (JIWA_EINVAL: a bad record; nothing was written).
 * @return 0 (cb will run) or, with no callback ever: JIWA_ENOENT (no such
 *         collection); JIWA_EINVAL (n == 0, NULL records or ids);
 *         JIWA_ECANCELED; JIWA_ESTATE; JIWA_ENOMEM; JIWA_ENOTSUP.
 */
static inline int jiwa_collection_upsert(jiwa_actor_t *self, const char *coll,
                                         const jiwa_coll_record_t *recs,
                                         size_t n, jiwa_store_cb cb,
                                         void *ud) {
  if (!JIWA_HOST_HAS(jiwa__host, coll_upsert))
    return JIWA_ENOTSUP;
  return jiwa__host->coll_upsert(self, coll, recs, n, cb, ud);
}

/** @brief Delete records of @p coll by id (missing ids are skipped);
 *  asynchronous like jiwa_collection_upsert. @p lens NULL = NUL-terminated
 *  ids. Same errors. */
static inline int jiwa_collection_delete(jiwa_actor_t *self, const char *coll,
                                         const char *const *ids,
                                         const size_t *lens, size_t n,
                                         jiwa_store_cb cb, void *ud) {
  if (!JIWA_HOST_HAS(jiwa__host, coll_delete))
    return JIWA_ENOTSUP;
  return jiwa__host->coll_delete(self, coll, ids, lens, n, cb, ud);
}

/**
 * @brief Statistics of @p coll as one msgpack map {name, in_place, embedder,
 * dim, count, slots, image_bytes, m, ef_search, langs = {<lang> = {count,
 * categories = {<category> = n}}}} (synchronous).
 * @param mp out: owned by the caller, release with jiwa_kv_free.
 * @return 0; JIWA_ENOENT; JIWA_ESTATE; JIWA_EPROTO; JIWA_ENOMEM;
 *         JIWA_ENOTSUP.
 */
static inline int jiwa_collection_stats(jiwa_actor_t *self, const char *coll,
                                        void **mp, size_t *len) {
  if (!JIWA_HOST_HAS(jiwa__host, coll_stats))
    return JIWA_ENOTSUP;
  return jiwa__host->coll_stats(self, coll, mp, len);
}

/** @brief Release a search or get result (an empty one is fine). */
static inline void jiwa_collection_result_free(jiwa_coll_result_t *r) {
  if (r && r->mem && JIWA_HOST_HAS(jiwa__host, coll_result_free))
    jiwa__host->coll_result_free(r);
}

#ifdef __cplusplus
}
#endif
#endif /* JIWA_PLUGIN_H */
