/**
 * @file mockllm.h
 * @brief Internals of tools/mockllm, the offline stand-in for every LLM
 * provider (see tools/mockllm/README.md for the wire-level contract).
 *
 * Four parts, one file each:
 *  - mock_http.c    HTTP/1.1 request parser (pure, fuzzed) and the libuv
 *                   server: connections, keep-alive, 100-continue, writes,
 *                   timers, resets.
 *  - mock_proto.c   the provider protocols: request parsing, default
 *                   replies, JSON bodies and SSE events.
 *  - mock_fault.c   fault specs ("status=529,retry_after=2") and the stream
 *                   sequencer that turns a reply plus a fault into steps.
 *  - mock_script.c  script entries, the request log, stats and the
 *                   /_mock/ control endpoints.
 *
 * Everything runs on one libuv loop, so nothing here locks.
 */
#ifndef MOCKLLM_H
#define MOCKLLM_H

#include <stddef.h>
#include <stdint.h>

#include "jiwa/errors.h"
#include "jiwa/mp.h"

/* ---- limits ------------------------------------------------------------- */
#define MOCK_MAX_HEAD (64u * 1024)       /**< request line + headers → 431 */
#define MOCK_MAX_BODY (8u * 1024 * 1024) /**< request body → 413 */
#define MOCK_MAX_HEADERS 100             /**< header lines → 431 */
#define MOCK_MAX_TARGET 8192             /**< request target → 414 */
#define MOCK_MAX_BIGLINE (64u * 1024 * 1024)
#define MOCK_MAX_DIMS 8192
#define MOCK_MAX_RECORDS 1000 /**< /_mock/requests keeps the last */
#define MOCK_MAX_RECORD_BYTES (64u * 1024 * 1024)

/* ---- growable byte buffer ------------------------------------------------ */
/** A growable buffer; @c oom sticks once an allocation failed. */
typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} mock_buf_t;

void mock_buf_put(mock_buf_t *b, const void *d, size_t n);
void mock_buf_puts(mock_buf_t *b, const char *s);
void mock_buf_printf(mock_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mock_buf_free(mock_buf_t *b);
/** @brief Hand the bytes over (caller frees); the buffer is reset. */
char *mock_buf_take(mock_buf_t *b, size_t *len);

/* ---- HTTP request parser (mock_http.c) ---------------------------------- */
typedef struct {
  const char *name, *val; /* borrowed from the parsed buffer */
  size_t nlen, vlen;
} mock_hdr_t;

/** A parsed request head. Every pointer borrows the parsed buffer. */
typedef struct {
  const char *method, *target;
  size_t mlen, tlen;
  int minor; /**< HTTP/1.<minor>: 0 or 1 */
  mock_hdr_t hdr[MOCK_MAX_HEADERS];
  size_t nhdr;
  size_t content_length; /**< ≤ MOCK_MAX_BODY */
  int keep_alive;        /**< after the response, read the next request */
  int expect_continue;   /**< "Expect: 100-continue" was sent */
  size_t head_len;       /**< bytes of request line + headers + blank line */
} mock_http_req_t;

/** Why a head was refused: the status to answer and a static message. */
typedef struct {
  int status;
  const char *msg;
} mock_http_err_t;

/**
 * @brief Parse one request head from @p buf (bounded by MOCK_MAX_HEAD).
 *
 * Accepts CRLF or bare LF line ends, skips leading empty lines (RFC 9112
 * 2.2). Refuses: over-long heads and too many headers (431), bad syntax,
 * obs-fold, a missing Host on HTTP/1.1 and malformed or conflicting
 * Content-Length (400), a body over MOCK_MAX_BODY (413), any
 * Transfer-Encoding (411: only Content-Length bodies are read), an
 * unknown Expect (417), a target over MOCK_MAX_TARGET (414), a version
 * other than 1.0/1.1 (505).
 * @param req  out: filled on success; pointers borrow @p buf.
 * @param err  out: status and message on failure.
 * @return 1 (a whole head: see req->head_len), 0 (need more bytes),
 *         JIWA_EPROTO or JIWA_ETOOBIG (see @p err).
 */
int mock_http_parse(const char *buf, size_t len, mock_http_req_t *req,
                    mock_http_err_t *err);

/** @brief Case-insensitive header lookup; NULL if absent. */
const char *mock_http_header(const mock_http_req_t *req, const char *name,
                             size_t *vlen);

/** @brief Reason phrase for a status code ("Too Many Requests"). */
const char *mock_http_reason(int status);

/* ---- routes ---------------------------------------------------------------
 */
typedef enum {
  MOCK_ROUTE_ANTHROPIC,
  MOCK_ROUTE_OPENAI,
  MOCK_ROUTE_RUNPOD,
  MOCK_ROUTE_HF,
  MOCK_ROUTE_EMBEDDINGS,
  MOCK_ROUTE_CONTROL,
  MOCK_ROUTE_OTHER,
  MOCK_ROUTE_COUNT,
  MOCK_ROUTE_ALL = 100 /**< "*" in a script entry */
} mock_route_t;

const char *mock_route_name(int route);
/** @return the route for a script name ("anthropic", "*", ...) or -1. */
int mock_route_parse(const char *s, size_t n);

/* ---- faults (mock_fault.c) ------------------------------------------------
 */
typedef enum { MOCK_EOL_LF, MOCK_EOL_CR, MOCK_EOL_CRLF } mock_eol_t;

/** Bits of mock_fault_t::set: which fields a spec named. */
enum {
  MF_LATENCY = 1u << 0,
  MF_STATUS = 1u << 1,
  MF_RETRY_AFTER = 1u << 2,
  MF_FAIL_TIMES = 1u << 3,
  MF_REFUSE = 1u << 4,
  MF_SILENCE = 1u << 5,
  MF_STALL = 1u << 6,
  MF_RESET_AFTER = 1u << 7,
  MF_SPLIT = 1u << 8,
  MF_EOL = 1u << 9,
  MF_COMMENTS = 1u << 10,
  MF_MALFORMED = 1u << 11,
  MF_BIGLINE = 1u << 12,
  MF_ENDLESS = 1u << 13,
  MF_DELTA_MS = 1u << 14,
  MF_DELTAS = 1u << 15,
  MF_ERROR_AFTER = 1u << 16,
  MF_POLLS = 1u << 17,
  MF_COUNT_ = 18
};

/** A parsed fault spec. Only fields whose MF_ bit is in @c set mean anything.
 */
typedef struct {
  unsigned set;
  unsigned latency_ms;
  int status; /**< 400..599 */
  unsigned retry_after;
  unsigned fail_times;
  int refuse, silence, stall, split, comments, malformed, endless;
  unsigned reset_after; /**< deltas (streams) or body bytes (plain) */
  mock_eol_t eol;
  size_t bigline;
  unsigned delta_ms;
  unsigned deltas;
  unsigned error_after;
  unsigned polls;
} mock_fault_t;

/**
 * @brief Parse "name[=arg],name[=arg]..." (spaces around items allowed).
 * @param err  out: what was wrong ("unknown fault 'x'; known: ...").
 * @return 0 or JIWA_EINVAL.
 */
int mock_fault_parse(const char *s, size_t n, mock_fault_t *f, char *err,
                     size_t errlen);
/** @brief Fields named in @p src override those of @p dst. */
void mock_fault_merge(mock_fault_t *dst, const mock_fault_t *src);
/** @brief Name of fault bit @p i (0 ≤ i < MF_COUNT_), for stats. */
const char *mock_fault_name(int i);

/* ---- one provider call (mock_proto.c) ------------------------------------ */
typedef enum {
  MOCK_P_ANTHROPIC,
  MOCK_P_OPENAI,
  MOCK_P_RUNPOD_SYNC,
  MOCK_P_RUNPOD_RUN,
  MOCK_P_RUNPOD_STATUS,
  MOCK_P_HF_MODELS,
  MOCK_P_TGI_GENERATE,
  MOCK_P_TGI_STREAM,
  MOCK_P_EMBEDDINGS,
} mock_proto_t;

/** What a provider request asked for, and the reply it gets. Owned strings. */
typedef struct {
  mock_proto_t proto;
  int route;
  char *model;
  char *user;   /**< last user message ("" if none) */
  char *system; /**< system prompt ("" if none) */
  size_t input_words;
  int stream, include_usage;
  int full_text;      /**< HF: the prompt precedes the reply */
  int base64;         /**< embeddings: encoding_format "base64" */
  int64_t max_tokens; /**< 0 = no limit */
  uint64_t seq;       /**< request number, for ids */
  char *job;          /**< RunPod /status: the job id asked about */
  /* embeddings */
  char **inputs;
  size_t ninputs;
  unsigned dims;
  /* filled by mock_call_reply */
  char *reply;
  size_t output_words;
  int truncated; /**< max_tokens cut the reply */
} mock_call_t;

/**
 * @brief Route a request path to a protocol.
 * @param proto out; @param route out.
 * @return 0, JIWA_ENOENT (no such path), JIWA_EPERM (known path, wrong
 *         method; @p allow gets the method to list in Allow).
 */
int mock_proto_route(const char *method, size_t mlen, const char *path,
                     size_t plen, mock_proto_t *proto, int *route,
                     const char **allow);

/**
 * @brief Read the request body (msgpack of the JSON) into @p call.
 * @param msg out: a message for a 400 on failure.
 * @return 0 or JIWA_EINVAL (the request is invalid for that API).
 */
int mock_call_parse(mock_call_t *call, const char *path, size_t plen,
                    const void *mp, size_t mplen, char *msg, size_t msglen);

/** @brief Build call->reply: @p scripted, or the default echo; then
 * max_tokens truncation and word counts. @return 0 or JIWA_ENOMEM. */
int mock_call_reply(mock_call_t *call, const char *scripted);

void mock_call_free(mock_call_t *call);

/** @brief A provider-shaped error body for @p status. */
void mock_proto_error(const mock_call_t *call, int route, int status,
                      const char *msg, mock_buf_t *body);

/** @brief The whole non-streamed success body (JSON, application/json). */
void mock_proto_body(mock_call_t *call, mock_buf_t *body);

/* SSE event kinds for mock_proto_event. */
typedef enum {
  MOCK_EV_START,
  MOCK_EV_DELTA,
  MOCK_EV_COMMENT,
  MOCK_EV_PING,
  MOCK_EV_MALFORMED,
  MOCK_EV_BIG,
  MOCK_EV_ERROR,
  MOCK_EV_END
} mock_ev_t;

/**
 * @brief Append one SSE event (lines joined by '\n', ending in "\n\n";
 * the writer converts to the chosen end of line).
 * @param text   the delta text (MOCK_EV_DELTA), else NULL
 * @param idx    delta index
 * @param last   this delta is the last one (TGI puts generated_text on it)
 * @param size   MOCK_EV_BIG: target bytes of the data line
 */
void mock_proto_event(const mock_call_t *call, mock_ev_t ev, const char *text,
                      size_t idx, int last, size_t size, mock_buf_t *out);

/** @brief Content-Type of a stream of @p call. */
const char *mock_proto_stream_ctype(const mock_call_t *call);

/** @brief Extra response headers (each "Name: value\r\n") for @p route. */
void mock_proto_headers(int route, uint64_t seq, mock_buf_t *out);

/* RunPod jobs (/run then /status). */
/** @brief Remember a job; @return its id (static storage until next call). */
const char *mock_runpod_submit(const mock_call_t *call, unsigned polls);
/**
 * @brief Answer a /status poll into @p body.
 * @return 200 or 404 (no such job).
 */
int mock_runpod_status(mock_call_t *call, mock_buf_t *body);
void mock_runpod_clear(void);

/* ---- stream sequencer (mock_fault.c) --------------------------------------
 */
/** Turns a reply + fault into SSE steps; one step = one timed write. */
typedef struct {
  char **pieces; /**< the reply split into deltas (owned) */
  size_t npieces;
  size_t emitted; /**< deltas sent so far */
  int stage;
  int malformed_done, big_done;
} mock_seq_t;

/** @brief Split @p call->reply per @p f (deltas=N or word groups of 3). */
int mock_seq_init(mock_seq_t *s, const mock_call_t *call,
                  const mock_fault_t *f);
void mock_seq_free(mock_seq_t *s);

/**
 * @brief The next step of the stream.
 * @param out    receives the SSE bytes ('\n' line ends)
 * @param delay  out: milliseconds to wait before writing it
 * @param delta  out: 1 if this step carries a content delta
 * @param end    out: 1 if the stream ends after this step (an error event
 *               or the protocol's final events)
 * @return 1 (a step), 0 (nothing left).
 */
int mock_seq_next(mock_seq_t *s, const mock_call_t *call, const mock_fault_t *f,
                  mock_buf_t *out, unsigned *delay, int *delta, int *end);

/* ---- scripts, log, stats (mock_script.c) -----------------------------------
 */
/** @brief Add entries from JSON (one object or an array of objects). */
int mock_script_add_json(const char *json, size_t len, char *err,
                         size_t errlen);
/** @brief Load a JSONL file; @p err gets "FILE:LINE: message". */
int mock_script_load(const char *path, char *err, size_t errlen);
void mock_script_clear(void);

/**
 * @brief Decide reply and fault for a provider request.
 *
 * First matching script entry (route or "*", match substring of the last
 * user message, times left), then the X-Mock-Fault header over it, then
 * fail_times. @p reply borrows the entry (valid until the script changes:
 * copy it at once).
 * @param has_fault out: 1 if *f carries something.
 * @return 0 or JIWA_EINVAL (bad header spec, @p err says why).
 */
int mock_script_resolve(int route, const char *user, const char *hdr,
                        size_t hdrlen, mock_fault_t *f, const char **reply,
                        char *err, size_t errlen);

/** @brief Count the faults that fired, for /_mock/stats. */
void mock_stats_fault(const mock_fault_t *f);
void mock_stats_request(int route);
void mock_stats_bad_request(void);
void mock_stats_connection(void);

/** @brief Log a provider request for GET /_mock/requests. */
void mock_record(int route, const char *method, size_t mlen, const char *target,
                 size_t tlen, const mock_http_req_t *req, const char *body,
                 size_t blen);
void mock_records_free(void);

/**
 * @brief Handle /_mock/... . @p status, @p body out.
 * @return 0 handled, JIWA_ENOENT (not a control path).
 */
int mock_control(const char *method, size_t mlen, const char *path, size_t plen,
                 const char *body, size_t blen, int *status, mock_buf_t *out);

/* JSON helpers (both directions go through jiwa/json.h). */
/** @brief Render @p w's msgpack as JSON into @p out. */
void mock_json_render(jiwa_mp_writer_t *w, mock_buf_t *out);

/* ---- server (mock_http.c) ---------------------------------------------------
 */
typedef struct {
  const char *host;
  int port;
  const char *port_file;
  const char *script;
  int quiet;
} mock_opts_t;

/** @brief Run the server until SIGINT/SIGTERM. @return process exit code. */
int mock_server_run(const mock_opts_t *o);

#endif /* MOCKLLM_H */
