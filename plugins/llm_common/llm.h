/**
 * @file llm.h
 * @brief What every LLM provider plugin shares at run time: the request
 * lifecycle of an `llm.complete` ask (deadlines, retries with full-jitter
 * backoff and capped Retry-After, the per-instance circuit breaker, delta
 * forwarding, exactly one final), the common config map, and the small
 * HTTP request builder the protocols fill. Linked statically into each
 * provider .so (libjiwa_llm_common); the pure half is llm_codec.h.
 *
 * A provider is a context struct whose *first* member is an llm_inst_t,
 * a config map starting with LLM_CFG_FIELDS, and an llm_proto_t saying
 * how to build its requests and parse its answers:
 *
 * @code
 *   typedef struct { llm_inst_t inst; char *version; } anthropic_ctx_t;
 *   static const jiwa_cfg_field_t cfg[] = {
 *     LLM_CFG_FIELDS(anthropic_ctx_t, "https://api.anthropic.com", "claude-x",
 *                    "ANTHROPIC_API_KEY", "30000"),
 *     {JIWA_CFG_STR, "anthropic_version", "2023-06-01", ...}, {0}};
 *   static int init(jiwa_actor_t *self, void *ctx) {
 *     return llm_init(self, ctx, &anthropic_proto);
 *   }
 *   static int receive(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *m) {
 *     return llm_receive(self, ctx, m);
 *   }
 * @endcode
 *
 * Caveats:
 *  - Everything runs on the instance's loop; no locks.
 *  - The API key (cfg.api_key) is host-owned and secret: it goes into one
 *    request header and nowhere else. Error texts are scrubbed of it.
 *  - A call ends exactly once: one llm.final reply or one error reply,
 *    at the latest when the ask's deadline passes (minus a margin of a
 *    tenth of the budget, at most 100 ms, so that the provider's own,
 *    clearer ETIMEDOUT reaches the asker before the runtime's generic one).
 */
#ifndef JIWA_LLM_H
#define JIWA_LLM_H

#include <stddef.h>
#include <stdint.h>

#include <jiwa/plugin.h>
#include <jiwa/sse.h>

#include "llm_codec.h"

/** Settings every provider has; filled by the host from LLM_CFG_FIELDS. */
typedef struct llm_cfg {
  char *endpoint;
  char *model;
  char *api_key; /**< the *value* of the env var named by api_key_env */
  int64_t connect_timeout_ms;
  int64_t ttfb_timeout_ms;
  int64_t total_timeout_ms;
  int64_t low_speed_bytes;
  int64_t low_speed_secs;
  int64_t max_tokens;
  double temperature;
  char *persona;
  char *preset;
  int64_t santai_max_tokens;
  double santai_temperature;
  int64_t pikiran_max_tokens;
  double pikiran_temperature;
  int64_t retries;
  int64_t backoff_base_ms;
  int64_t backoff_max_ms;
  int64_t retry_after_max_ms;
  int64_t breaker_failures;
  int64_t breaker_open_ms;
  int64_t breaker_open_max_ms;
  int64_t max_response_bytes;
  int upstream_stream;
} llm_cfg_t;

/** One HTTP request a protocol builds. Clear it with llm_http_clear. */
typedef struct llm_http {
  const char *method; /**< static string */
  char *url;          /**< malloc'd */
  char *body;         /**< malloc'd, NULL for none */
  size_t body_len;
  jiwa_http_header_t hdr[8]; /**< values borrowed (static, cfg, auth) */
  size_t nhdr;
  char auth[1024]; /**< a secret header value; wiped by llm_http_clear */
} llm_http_t;

/** @brief Set h->url from a printf format. @return 0 or JIWA_ENOMEM. */
int llm_http_url(llm_http_t *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** @brief Add a header (name and value borrowed; at most 7 per request).
 *  @return 0 or JIWA_ETOOBIG. */
int llm_http_header(llm_http_t *h, const char *name, const char *value);

/**
 * @brief Add a secret header "<prefix><key>" (e.g. "Bearer " + key) kept
 * in h->auth; nothing is added when @p key is NULL or empty.
 * @return 0, JIWA_ETOOBIG (key too long).
 */
int llm_http_secret(llm_http_t *h, const char *name, const char *prefix,
                    const char *key);

/** @brief Free url/body and wipe the secret. */
void llm_http_clear(llm_http_t *h);

struct llm_inst;

/** How one provider speaks. Static, one per plugin. */
typedef struct llm_proto {
  const char *name; /**< "anthropic": error prefix and `provider` field */
  int streams;      /**< 1: the upstream can answer with an event stream */
  /** Build the request of an `llm.complete` call (same for every retry).
   *  Return 0 or a negative code (JIWA_ENOMEM, JIWA_ECONFIG). */
  int (*prepare)(struct llm_inst *inst, const llm_build_t *b, llm_http_t *h);
  /** Optional: the status request for a job the upstream accepted
   *  (o->pending); RunPod's /status/{id}. */
  int (*poll)(struct llm_inst *inst, const char *job, llm_http_t *h);
  /** Optional: a fire-and-forget cancel of that job when the call gives
   *  up on it. */
  int (*cancel)(struct llm_inst *inst, const char *job, llm_http_t *h);
  llm_event_fn event; /**< SSE events (text/event-stream responses) */
  llm_body_fn body;   /**< whole 2xx bodies of any other type */
} llm_proto_t;

typedef struct llm_call llm_call_t;

/** A provider instance: the first member of every provider context. */
typedef struct llm_inst {
  llm_cfg_t cfg; /**< filled by the host */
  const llm_proto_t *proto;
  llm_params_cfg_t params;
  llm_breaker_t br;
  uint64_t rng;
  uint32_t poll_ms;   /**< set by a polling provider before llm_init */
  /** Model named in finals when the upstream names none; cfg.model
   *  unless the provider sets another before llm_init. */
  const char *model;
  llm_call_t *calls;  /**< in flight (replied or not) */
  uint64_t inflight;
  uint64_t requests, ok, failed, retries, deltas, refused;
  char last_failure[200]; /**< why the breaker counted the last failure */
} llm_inst_t;

/**
 * The settings every provider shares, as config map entries of context
 * type T (whose first member is `llm_inst_t inst`). ENDPOINT, MODEL,
 * KEYENV and TTFB are the provider's defaults, as text.
 */
#define LLM_CFG_FIELDS(T, ENDPOINT, MODEL, KEYENV, TTFB)                       \
  {JIWA_CFG_STR, "endpoint", ENDPOINT, offsetof(T, inst.cfg.endpoint), 0, 0,   \
   0, "base URL of the API (http:// or https://)"},                            \
      {JIWA_CFG_STR, "model", MODEL, offsetof(T, inst.cfg.model), 0, 0, 0,     \
       "model name sent upstream"},                                            \
      {JIWA_CFG_SECRET_ENV, "api_key_env", KEYENV,                             \
       offsetof(T, inst.cfg.api_key), 0, 0, 0,                                 \
       "NAME of the environment variable holding the API key (never the key "  \
       "itself); unset or empty = no key sent"},                               \
      {JIWA_CFG_INT, "connect_timeout_ms", "5000",                             \
       offsetof(T, inst.cfg.connect_timeout_ms), 0, 1, 600000,                 \
       "TCP + TLS connect deadline of each attempt"},                          \
      {JIWA_CFG_INT, "ttfb_timeout_ms", TTFB,                                  \
       offsetof(T, inst.cfg.ttfb_timeout_ms), 0, 1, 3600000,                   \
       "deadline for the response status line of each attempt"},               \
      {JIWA_CFG_INT, "total_timeout_ms", "120000",                             \
       offsetof(T, inst.cfg.total_timeout_ms), 0, 1, 3600000,                  \
       "whole call, all attempts and polls (the ask deadline may be earlier)"}, \
      {JIWA_CFG_INT, "low_speed_bytes", "1",                                   \
       offsetof(T, inst.cfg.low_speed_bytes), 0, 0, 1000000000,                \
       "abort when fewer bytes/s than this arrive for low_speed_secs"},        \
      {JIWA_CFG_INT, "low_speed_secs", "30",                                   \
       offsetof(T, inst.cfg.low_speed_secs), 0, 0, 3600,                       \
       "seconds of low speed before aborting; 0 = off"},                       \
      {JIWA_CFG_INT, "max_tokens", "1024", offsetof(T, inst.cfg.max_tokens),   \
       0, 1, 1000000, "default answer length bound (tokens)"},                 \
      {JIWA_CFG_DOUBLE, "temperature", "0.7",                                  \
       offsetof(T, inst.cfg.temperature), 0, 0, 2, "default temperature"},     \
      {JIWA_CFG_STR, "persona", "", offsetof(T, inst.cfg.persona), 0, 0, 0,    \
       "persona system prompt, put first in every system prompt"},             \
      {JIWA_CFG_STR, "preset", "", offsetof(T, inst.cfg.preset), 0, 0, 0,      \
       "default preset: \"\", \"SANTAI\" or \"PIKIRAN\""},                     \
      {JIWA_CFG_INT, "santai_max_tokens", "300",                               \
       offsetof(T, inst.cfg.santai_max_tokens), 0, 1, 1000000,                 \
       "SANTAI (casual, short) max_tokens"},                                   \
      {JIWA_CFG_DOUBLE, "santai_temperature", "0.8",                           \
       offsetof(T, inst.cfg.santai_temperature), 0, 0, 2,                      \
       "SANTAI temperature"},                                                  \
      {JIWA_CFG_INT, "pikiran_max_tokens", "1200",                             \
       offsetof(T, inst.cfg.pikiran_max_tokens), 0, 1, 1000000,                \
       "PIKIRAN (thoughtful) max_tokens"},                                     \
      {JIWA_CFG_DOUBLE, "pikiran_temperature", "0.4",                          \
       offsetof(T, inst.cfg.pikiran_temperature), 0, 0, 2,                     \
       "PIKIRAN temperature"},                                                 \
      {JIWA_CFG_INT, "retries", "3", offsetof(T, inst.cfg.retries), 0, 1, 10,  \
       "attempts per call, the first included (retried: 408/429/5xx/529 and " \
       "connect failures, before any output was forwarded)"},                  \
      {JIWA_CFG_INT, "backoff_base_ms", "200",                                 \
       offsetof(T, inst.cfg.backoff_base_ms), 0, 0, 60000,                     \
       "full-jitter backoff: first window"},                                   \
      {JIWA_CFG_INT, "backoff_max_ms", "5000",                                 \
       offsetof(T, inst.cfg.backoff_max_ms), 0, 0, 600000,                     \
       "full-jitter backoff: largest window"},                                 \
      {JIWA_CFG_INT, "retry_after_max_ms", "10000",                            \
       offsetof(T, inst.cfg.retry_after_max_ms), 0, 0, 600000,                 \
       "cap on an upstream's Retry-After"},                                    \
      {JIWA_CFG_INT, "breaker_failures", "5",                                  \
       offsetof(T, inst.cfg.breaker_failures), 0, 0, 1000,                     \
       "consecutive failed attempts that open the circuit; 0 = never"},        \
      {JIWA_CFG_INT, "breaker_open_ms", "5000",                                \
       offsetof(T, inst.cfg.breaker_open_ms), 0, 1, 3600000,                   \
       "first open window; doubles after each failed probe"},                  \
      {JIWA_CFG_INT, "breaker_open_max_ms", "60000",                           \
       offsetof(T, inst.cfg.breaker_open_max_ms), 0, 1, 86400000,              \
       "largest open window"},                                                 \
      {JIWA_CFG_INT, "max_response_bytes", "8388608",                          \
       offsetof(T, inst.cfg.max_response_bytes), 0, 1024, 1073741824,          \
       "bound on a response body and on the answer text"},                     \
      {JIWA_CFG_BOOL, "upstream_stream", "true",                               \
       offsetof(T, inst.cfg.upstream_stream), 0, 0, 0,                         \
       "ask the upstream for a stream even when the asker wants one final "    \
       "(keeps TTFB and low-speed checks meaningful)"}

/**
 * @brief Validate the common settings and make the instance ready.
 * @return 0 or JIWA_ECONFIG (logged with the reason).
 */
int llm_init(jiwa_actor_t *self, llm_inst_t *inst, const llm_proto_t *proto);

/**
 * @brief Handle one message: `llm.complete` asks (the call lifecycle) and
 * `llm.health` asks ({provider, model, breaker, counters}); anything
 * else is answered JIWA_ENOTSUP. Always returns 0 (a bad request is the
 * asker's problem, not a broken actor).
 */
int llm_receive(jiwa_actor_t *self, llm_inst_t *inst, const jiwa_msg_t *msg);

/** @brief Free what is left (after every HTTP on_done, see plugin.h). */
void llm_fini(jiwa_actor_t *self, llm_inst_t *inst);

#endif /* JIWA_LLM_H */
