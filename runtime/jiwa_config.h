/**
 * @file jiwa_config.h
 * @brief The daemon's config file: a Lua table evaluated in a sandbox.
 *
 * The file is a Lua 5.4 chunk that returns one table (see config/jiwa.lua).
 * It runs with no libraries but `string`, `table` and `math` (no io, os,
 * require, load of bytecode), under an instruction budget and a memory cap,
 * then the table is converted to msgpack and validated section by section
 * with config maps (jiwa_cfgmap.h). The daemon never starts half-configured:
 * any error aborts the load with a message naming the file, the key and the
 * fix.
 */
#ifndef JIWA_CONFIG_H
#define JIWA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/** One `actors` entry: a plugin instance. */
typedef struct jiwa_actor_conf {
  char *name;           /**< unique actor name ("claude") */
  char *plugin;         /**< plugin name; file is <plugin_dir>/<plugin>.so */
  int64_t worker;       /**< worker index, -1 = round robin */
  int64_t mailbox_max;  /**< 0 = runtime default */
  void *settings;       /**< msgpack map of the plugin's settings (may be NULL) */
  size_t settings_len;
} jiwa_actor_conf_t;

/** One `store.collections` entry: a vector collection opened at start. */
typedef struct jiwa_coll_conf {
  char *name;              /**< collection name ("cultural") */
  char *embedder;          /**< embedder kind ("hash", "http") */
  int64_t dim;             /**< vector dimension */
  int64_t m;               /**< HNSW degree (new collections) */
  int64_t ef_construction; /**< build candidate list (new collections) */
  int64_t ef_search;       /**< search candidate list (new collections) */
  /* embedder = "http" only (NULL / defaults otherwise): */
  char *url;               /**< full endpoint ("http://h:11434/v1/embeddings") */
  char *model;             /**< model name sent with each request */
  char *api_key_env;       /**< NAME of the variable holding the key, or
                                NULL; the key itself is never stored here:
                                the embedder reads it when it is made */
  int64_t batch;           /**< texts per request (default 64) */
  int64_t timeout_ms;      /**< per request (default 30000) */
} jiwa_coll_conf_t;

/** The whole validated config. Strings are owned; free with jiwa_conf_free. */
typedef struct jiwa_conf {
  char *path;         /**< absolute path of the file loaded */
  char *dir;          /**< its directory: relative paths resolve against it */
  int64_t workers;    /**< worker loops; 0 = number of cores */
  char *plugin_dir;   /**< absolute, resolved against dir */
  char *state_dir;    /**< absolute: runtime files (plugin copies, sockets) */
  /* log = { level = "info", format = "text"|"json" } */
  char *log_level;
  char *log_format;
  /* runtime = { ... } */
  int64_t ask_timeout_ms;      /**< default ask deadline */
  int64_t mailbox_max;         /**< default per-actor mailbox bound */
  int64_t restart_backoff_min_ms;
  int64_t restart_backoff_max_ms;
  int64_t restart_max;         /**< restarts in a row before giving up, 0 = never */
  int64_t drain_timeout_ms;    /**< how long an old plugin version may drain */
  int watch_plugins;           /**< reload on file change in plugin_dir */
  /* socket = { ... }: the local API (jiwa_server.h) */
  char *socket_path;           /**< absolute; default <state_dir>/jiwad.sock */
  int64_t socket_max_connections;
  int64_t socket_max_frame;    /**< bytes of one frame's payload */
  int64_t socket_idle_timeout_ms; /**< a partial frame must complete within */
  int64_t socket_out_queue_max;   /**< queued reply bytes before reads pause */
  int64_t socket_request_timeout_ms; /**< deadline of a routed request */
  int64_t socket_allow_uids[16];  /**< peers allowed besides our own uid */
  size_t socket_n_allow_uids;
  /* chat = { actor = ..., type = ... }: where socket `chat` requests go
   * until the Lua policy engine routes them */
  char *chat_actor;
  char *chat_type;
  size_t n_actors;
  jiwa_actor_conf_t *actors;
  /* store = { ... }: the LMDB store (runtime/store/jiwa_store.h) */
  char *store_path;        /**< absolute; default <state_dir>/store */
  int64_t store_map_size;  /**< initial map size in bytes */
  int64_t store_map_max;   /**< map growth limit in bytes */
  int store_fast;          /**< durability = "fast": no fsync per commit */
  size_t n_collections;
  jiwa_coll_conf_t *collections;
} jiwa_conf_t;

/**
 * @brief Load, evaluate and validate the config file at @p path.
 * @param out filled on success; zeroed on error.
 * @param err one human-readable line: "<file>: <key>: <problem>; <fix>".
 * @return 0, JIWA_ECONFIG, JIWA_ENOENT (no file) or JIWA_ENOMEM.
 */
int jiwa_conf_load(const char *path, jiwa_conf_t *out, char *err,
                   size_t errlen);

/** @brief 1 if @p s is a valid actor or plugin name: 1-63 characters of
 *  a-z, 0-9, '_' and '-' (safe in a file name, a log line, a key). */
int jiwa_conf_name_valid(const char *s);

/** @brief Release everything a jiwa_conf_t owns (idempotent). */
void jiwa_conf_free(jiwa_conf_t *c);

/**
 * @brief Evaluate a Lua table constructor (e.g. "{ k = 1, t = {'a'} }") in
 * the same sandbox and return it as msgpack. Used by the plugin test harness.
 * @param out malloc'd msgpack bytes, owned by the caller (free()).
 * @return 0 or JIWA_ECONFIG with @p err set.
 */
int jiwa_conf_table_to_mp(const char *chunk, const char *chunkname, void **out,
                          size_t *outlen, char *err, size_t errlen);

#endif
