/**
 * @file jiwa_dryrun.h
 * @brief Run a routing policy against recorded requests with fake actors.
 *
 * The policy plugin is loaded through the test harness (jiwa/harness.h)
 * with tracing on, next to fake actors that stand in for the golden cache,
 * cultural RAG, memory, the models, the enricher and shadow. Each request
 * comes with an optional script of what each fake answers; the result is
 * the policy's reply with its trace (every call, in order, with what was
 * sent and what came back) and the parts streamed to the client. `jiwa
 * policy test` prints it; the data-driven policy tests check it; the
 * policy benchmark uses the instant fakes.
 *
 * Fake behaviour, per actor name, from a msgpack map (JSON in a
 * requests file):
 *  - absent: a default by message type — golden.lookup → {hit = false},
 *    rag.query → {context = "", insights = []}, memory.get →
 *    {summary = ""}, llm.complete → two deltas and {text, model} naming
 *    the model and quoting the last user message, anything else → {};
 *    tells are only recorded.
 *  - {reply = {...}}: that reply; {deltas = ["a", "b"], reply = {...}}:
 *    streamed parts ({text}) first;
 *  - {error = "EUPSTREAM: overloaded"}: an error reply (the code by its
 *    name, JIWA_EUPSTREAM when unknown);
 *  - {delay_ms = N} with any of the above: answer after N ms (e.g. past
 *    a deadline).
 * Thread safety: one jiwa_dry_t is used by one thread at a time; runs are
 * sequential.
 */
#ifndef JIWA_DRYRUN_H
#define JIWA_DRYRUN_H

#include <stddef.h>
#include <stdint.h>

#include "jiwa/plugin.h"

typedef struct jiwa_dry jiwa_dry_t;

/** What one request produced. Owned by the caller: jiwa_dry_result_free. */
typedef struct {
  int err;           /**< 0, or the error the request ended with */
  char errtext[512]; /**< its text */
  char *reply;       /**< msgpack of the final reply (with `trace`), or NULL */
  size_t reply_len;
  char **deltas;     /**< msgpack bodies of the streamed parts, in order */
  size_t *delta_lens;
  size_t ndeltas;
} jiwa_dry_result_t;

/**
 * @brief Load the policy plugin @p policy_so running @p policy_file, with
 * fake actors named @p fakes (the defaults when @p nfakes is 0: see
 * jiwa_dry_default_fakes).
 * @param settings_lua extra policy config fields as Lua table entries
 *        without braces (e.g. "vars = { team_users = { 'made' } }"), or NULL.
 * @return 0, or the harness error with @p err set (script refused, plugin
 *         not found, ...).
 */
int jiwa_dry_open(jiwa_dry_t **out, const char *policy_so,
                  const char *policy_file, const char *settings_lua,
                  const char *const *fakes, size_t nfakes, char *err,
                  size_t errlen);

/**
 * @brief Run one chat request (msgpack map @p req) with the fake behaviours
 * @p script (msgpack map actor → behaviour, or NULL/0) and wait for it.
 * The policy runs with `trace = true`, so the reply carries its trace.
 * @return 0 (see @p out->err for how the request ended) or JIWA_EINVAL
 *         (@p script is not a map).
 */
int jiwa_dry_run(jiwa_dry_t *d, const void *req, size_t req_len,
                 const void *script, size_t script_len, uint32_t timeout_ms,
                 jiwa_dry_result_t *out);

/** @brief Free a result's buffers (NULL-safe, idempotent). */
void jiwa_dry_result_free(jiwa_dry_result_t *r);

/** @brief The names faked when jiwa_dry_open gets none: golden_cache,
 *  cultural_rag, memory, claude, llama, jiwa_enricher, shadow, convlog. */
const char *const *jiwa_dry_default_fakes(size_t *n);

/** @brief The fake actor's behaviour, for tests and benchmarks that build
 *  their own runtime: spawn it under each name a policy calls. It answers
 *  by default (see above); jiwa_dry_run's script applies while a run is on. */
const jiwa_plugin_desc_t *jiwa_dry_fake_desc(void);

/** @brief Unload everything. @return 0, or JIWA_EBUSY (handles leaked). */
int jiwa_dry_close(jiwa_dry_t *d);

#endif
