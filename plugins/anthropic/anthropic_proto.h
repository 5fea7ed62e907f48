/**
 * @file anthropic_proto.h
 * @brief The Anthropic Messages API on the wire: request body, SSE events,
 * whole (non-streamed) bodies. Pure (no host calls): fuzzed by
 * tests/fuzz/fuzz_llm_anthropic.c.
 */
#ifndef JIWA_ANTHROPIC_PROTO_H
#define JIWA_ANTHROPIC_PROTO_H

#include "llm_common/llm_codec.h"

/**
 * @brief POST /v1/messages body: model, max_tokens, messages (user /
 * assistant turns), system, temperature (clamped to 0..1), stream.
 * @param json malloc'd (free()).
 * @return 0, JIWA_ENOMEM.
 */
int anthropic_build(const llm_build_t *b, char **json, size_t *len);

/**
 * @brief One SSE event: message_start (model, input tokens),
 * content_block_start / content_block_delta (text_delta → text),
 * message_delta (stop_reason, output tokens), message_stop (done), ping
 * and unknown events (ignored), error (→ JIWA_EUPSTREAM; overloaded,
 * rate-limit and api errors are retryable).
 * @return 0, JIWA_EPROTO (malformed JSON), JIWA_EUPSTREAM, or on_text's
 *         code; errors are recorded in @p o.
 */
int anthropic_event(llm_out_t *o, const char *event, const char *data,
                    size_t len);

/** @brief A non-streamed 2xx body ({"type":"message", content: [...]}). */
int anthropic_body(llm_out_t *o, const char *json, size_t len);

#endif
