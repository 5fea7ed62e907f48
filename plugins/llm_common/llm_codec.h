/**
 * @file llm_codec.h
 * @brief The pure half of what the LLM provider plugins share: no host
 * calls, no I/O, no clock of its own. Unit-tested and fuzzed on its own
 * (libjiwa_llm_codec), linked into every provider .so.
 *
 * What lives here, one copy of each idea:
 *  - the `llm.complete` ask body (llm_req_parse) and the effective system
 *    prompt (llm_system_build: persona, then the ask's system, then the
 *    policy's context under a heading);
 *  - presets SANTAI / PIKIRAN and how they combine with the request
 *    (llm_params_resolve);
 *  - the parse sink every protocol parser writes to (llm_out_t);
 *  - bounded JSON-to-msgpack and dotted-path lookups for the parsers;
 *  - which statuses are retried, full-jitter backoff, the circuit breaker.
 *
 * Caveats:
 *  - Strings in llm_req_t borrow the ask body: they live as long as it does.
 *  - Nothing here is thread-safe; each provider instance owns its state and
 *    runs on one loop.
 */
#ifndef JIWA_LLM_CODEC_H
#define JIWA_LLM_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jiwa/errors.h>
#include <jiwa/mp.h>

/** Most messages one `llm.complete` ask may carry. */
#define LLM_MAX_MSGS 256

/** A borrowed byte string (not NUL-terminated). */
typedef struct {
  const char *p;
  size_t n;
} llm_str_t;

/** One chat message, borrowed from the ask body. */
typedef struct {
  llm_str_t role;    /**< "user", "assistant" or "system" */
  llm_str_t content; /**< text */
} llm_msg_t;

/** The two tuned modes, or none. */
typedef enum {
  LLM_PRESET_NONE = 0,
  LLM_PRESET_SANTAI = 1, /**< casual, short, fast */
  LLM_PRESET_PIKIRAN = 2 /**< thoughtful, longer */
} llm_preset_t;

/** An `llm.complete` ask body, parsed. Strings borrow the body. */
typedef struct {
  llm_str_t system;  /**< the asker's system prompt (may be empty) */
  llm_str_t context; /**< cultural / memory context from the policy */
  llm_str_t lang;    /**< "id", "en", ... or empty */
  llm_msg_t msgs[LLM_MAX_MSGS];
  size_t nmsgs;       /**< at least one non-system message */
  int stream;         /**< 1: the asker wants llm.delta messages */
  int64_t max_tokens; /**< 0 = not given */
  double temperature; /**< < 0 = not given */
  llm_preset_t preset; /**< NONE = not given */
} llm_req_t;

/**
 * @brief Parse an `llm.complete` body: {system?, context?, messages =
 * [{role, content}], stream?, max_tokens?, temperature?, preset?, lang?}.
 * A body with `text` and no `messages` (a chat request sent down the
 * policy's fallback route) is taken as one user message.
 * @param err one line saying what is wrong ("messages[2].role must be
 *        user, assistant or system").
 * @return 0, JIWA_EINVAL (a field has the wrong type or value, or there is
 *         no user/assistant message), JIWA_ETOOBIG (more than LLM_MAX_MSGS
 *         messages), JIWA_EPROTO (not a msgpack map).
 */
int llm_req_parse(const void *body, size_t len, llm_req_t *out, char *err,
                  size_t errlen);

/**
 * @brief The system prompt sent upstream: @p persona first, then the ask's
 * `system`, then every system-role message of the ask, then the context
 * under the heading "## Context", then one line naming the reply language
 * when `lang` is known. Parts are separated by a blank line.
 * @param out malloc'd NUL-terminated text (free()); "" when all are empty.
 * @return 0 or JIWA_ENOMEM.
 */
int llm_system_build(const char *persona, const llm_req_t *r, char **out,
                     size_t *outlen);

/**
 * @brief A plain-text prompt for completion-style endpoints (TGI, RunPod
 * prompt input): the system text, then "User: ..." / "Assistant: ..."
 * lines, ending with "Assistant:".
 * @return 0 or JIWA_ENOMEM; *out malloc'd.
 */
int llm_prompt_build(const char *system, const llm_req_t *r, char **out,
                     size_t *outlen);

/** Instance defaults the request is resolved against. */
typedef struct {
  int64_t max_tokens;
  double temperature;
  llm_preset_t preset; /**< default preset of the instance */
  int64_t santai_max_tokens;
  double santai_temperature;
  int64_t pikiran_max_tokens;
  double pikiran_temperature;
} llm_params_cfg_t;

/**
 * @brief Effective max_tokens and temperature: the request's own values
 * win, then the preset's (the request's preset, else the instance
 * default), then the instance's.
 */
void llm_params_resolve(const llm_params_cfg_t *cfg, const llm_req_t *r,
                        int64_t *max_tokens, double *temperature,
                        llm_preset_t *preset);

/**
 * @brief "SANTAI" / "PIKIRAN" (any case) or "" / "NONE".
 * @return 0 or JIWA_EINVAL.
 */
int llm_preset_parse(const char *s, size_t n, llm_preset_t *out);

/** @brief "SANTAI", "PIKIRAN" or "". */
const char *llm_preset_name(llm_preset_t p);

/* ---- the parse sink ------------------------------------------------------ */

/** Receives the answer's text as the parser finds it; return 0, or a
 *  negative code to stop (the parser returns it). */
typedef int (*llm_text_fn)(void *ud, const char *s, size_t n);

/**
 * What a protocol parser found so far. The caller sets on_text/ud and
 * zeroes the rest with llm_out_reset; parsers fill it.
 */
typedef struct llm_out {
  llm_text_fn on_text;
  void *ud;
  char model[128];       /**< model the upstream named, "" if none */
  char finish[32];       /**< finish / stop reason, "" if none */
  int64_t input_tokens;  /**< -1 = not reported */
  int64_t output_tokens; /**< -1 = not reported */
  int done;              /**< the answer's end marker was seen */
  int pending;           /**< an async job was accepted, poll for it */
  char job[128];         /**< its id */
  int err;               /**< first error (negative) or 0 */
  int err_retryable;     /**< the error says "overloaded / try again" */
  char errmsg[256];      /**< what went wrong, printable */
  uint64_t events;       /**< events / bodies seen */
  uint64_t texts;        /**< non-empty text pieces passed to on_text */
  uint64_t text_bytes;
} llm_out_t;

/** @brief Zero everything but on_text/ud. */
void llm_out_reset(llm_out_t *o);

/**
 * @brief Pass a text piece to on_text (empty pieces are dropped).
 * @return 0 or on_text's code (also recorded as o->err).
 */
int llm_out_text(llm_out_t *o, const char *s, size_t n);

/**
 * @brief Record an error (the first one wins) and return @p code.
 * The message is made printable and bounded.
 */
int llm_out_error(llm_out_t *o, int code, int retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** @brief Set o->model / o->finish from borrowed bytes (bounded copy). */
void llm_out_model(llm_out_t *o, const char *s, size_t n);
void llm_out_finish(llm_out_t *o, const char *s, size_t n);

/** A protocol's SSE event parser (@p data NUL-terminated, @p len bytes). */
typedef int (*llm_event_fn)(llm_out_t *o, const char *event, const char *data,
                            size_t len);
/** A protocol's whole-body (non-streamed) parser. */
typedef int (*llm_body_fn)(llm_out_t *o, const char *json, size_t len);

/* ---- JSON and msgpack helpers -------------------------------------------- */

/**
 * @brief Parse one JSON document into msgpack, bounded (depth 32, strings
 * up to 8 MiB, @p len up to 64 MiB).
 * @param mp malloc'd msgpack (free()).
 * @param err "line L col C: reason" on failure.
 * @return 0, JIWA_EPROTO, JIWA_ETOOBIG, JIWA_ENOMEM.
 */
int llm_json(const char *s, size_t len, char **mp, size_t *mplen, char *err,
             size_t errlen);

/**
 * @brief Find a value by dotted path in a msgpack map: "delta.text",
 * "choices.0.delta.content" (a numeric segment indexes an array).
 * @param at reader positioned on the value (may be NULL).
 * @return 0, JIWA_ENOENT (absent, or a segment of the wrong kind),
 *         JIWA_EPROTO / JIWA_ETOOBIG (malformed).
 */
int llm_mp_path(const void *buf, size_t len, const char *path,
                jiwa_mp_reader_t *at);

/** @brief String at @p path (borrowed). JIWA_EINVAL if not a string. */
int llm_mp_str(const void *buf, size_t len, const char *path, const char **s,
               size_t *n);

/** @brief Integer at @p path (int, uint, or an integral float). */
int llm_mp_int(const void *buf, size_t len, const char *path, int64_t *out);

/** @brief Type of the value at @p path (JIWA_MP_* or a negative error). */
int llm_mp_type(const void *buf, size_t len, const char *path);

/**
 * @brief The message of a provider's error body, whatever its shape
 * ({"error":{"message"}}, {"error":"..."}, {"message":"..."},
 * {"detail":"..."}), printable and bounded; the start of the body itself
 * when it is not JSON; "" when empty.
 */
void llm_error_text(const char *body, size_t len, char *out, size_t cap);

/**
 * @brief Copy at most cap-1 bytes of @p s, replacing control bytes by
 * spaces (so texts from outside never break a log line).
 */
void llm_printable(const char *s, size_t n, char *out, size_t cap);

/**
 * @brief Replace every occurrence of @p secret in @p text by
 * "[redacted]" (in place; @p text must have room: cap bytes). A secret
 * shorter than 4 bytes is left alone. Defence in depth for error texts.
 */
void llm_scrub(char *text, size_t cap, const char *secret);

/* ---- retries -------------------------------------------------------------- */

/** @brief 1 for 408, 429, 5xx and 529: statuses worth another attempt. */
int llm_status_retryable(int status);

/** @brief Next value of a xorshift64* generator (@p state never 0). */
uint64_t llm_rand(uint64_t *state);

/**
 * @brief Full-jitter exponential backoff: uniform in
 * [0, min(max_ms, base_ms * 2^(failures-1))].
 * @param failures attempts failed so far (>= 1).
 */
uint32_t llm_backoff_ms(unsigned failures, uint32_t base_ms, uint32_t max_ms,
                        uint64_t *rng);

/* ---- circuit breaker ------------------------------------------------------ */

/** Breaker states. */
typedef enum {
  LLM_BR_CLOSED = 0,
  LLM_BR_OPEN = 1,
  LLM_BR_HALF_OPEN = 2 /**< one probe may pass */
} llm_br_state_t;

/** What an attempt says about the upstream's health. */
typedef enum {
  LLM_BR_OK = 0,      /**< it answered */
  LLM_BR_FAIL = 1,    /**< connect failure, timeout, 5xx, 429, broken stream */
  LLM_BR_NEUTRAL = 2, /**< it answered, but the answer was not usable for
                           another reason (a 400, an answer too big) */
  LLM_BR_ABANDONED = 3 /**< no verdict: the attempt was cancelled */
} llm_br_verdict_t;

/**
 * A per-upstream circuit breaker. After `threshold` consecutive failed
 * attempts it opens for `window_ms`; then exactly one request passes as a
 * half-open probe. A probe that fails reopens it with the window doubled
 * (up to max_ms); one that succeeds closes it and resets the window.
 */
typedef struct {
  llm_br_state_t state;
  uint32_t threshold; /**< 0 = never opens */
  uint32_t fails;     /**< consecutive failures */
  uint64_t base_ms, max_ms, window_ms;
  uint64_t open_until; /**< while OPEN: when a probe may go */
  int probing;         /**< a probe is in flight */
  uint64_t opened;     /**< times it opened (incl. reopen after a probe) */
  uint64_t probes;     /**< probes let through */
  uint64_t refused;    /**< requests failed fast */
} llm_breaker_t;

/** @brief Initialise a closed breaker. */
void llm_breaker_init(llm_breaker_t *b, uint32_t threshold, uint64_t base_ms,
                      uint64_t max_ms);

/**
 * @brief May a request go upstream at @p now?
 * @param until out: when OPEN, the time a probe may go (else 0).
 * @return 0 (go), 1 (go, as the half-open probe: report its verdict with
 *         probe = 1, and do not retry it), or JIWA_EDOWN (fail fast).
 */
int llm_breaker_admit(llm_breaker_t *b, uint64_t now, uint64_t *until);

/** @brief Record the verdict of one attempt (probe: admit returned 1). */
void llm_breaker_record(llm_breaker_t *b, uint64_t now, int probe,
                        llm_br_verdict_t v);

/** @brief "closed", "open", "half-open". */
const char *llm_breaker_state_name(llm_br_state_t s);

/* ---- request bodies ------------------------------------------------------ */

/** What every protocol's request builder gets. All borrowed. */
typedef struct {
  const char *model;
  const char *system; /**< the built system prompt (llm_system_build) */
  const llm_req_t *req;
  int64_t max_tokens;
  double temperature; /**< < 0: leave it to the upstream */
  int stream;         /**< ask the upstream for a stream */
} llm_build_t;

/** Pack the messages of @p r that are not system-role as an array of
 *  {role, content} maps, after @p lead_system (packed as a leading system
 *  message when non-NULL and non-empty). */
void llm_pack_messages(msgpack_packer *pk, const llm_req_t *r,
                       const char *lead_system);

/** @brief Render the writer's msgpack as JSON (malloc'd, free()).
 *  @return 0, JIWA_ENOMEM, JIWA_EPROTO. */
int llm_writer_json(const jiwa_mp_writer_t *w, char **json, size_t *len);

/** @brief 1 if the bytes equal the NUL-terminated @p lit. */
static inline int llm_eq(const char *s, size_t n, const char *lit) {
  size_t k = strlen(lit);
  return n == k && memcmp(s, lit, k) == 0;
}

#endif /* JIWA_LLM_CODEC_H */
