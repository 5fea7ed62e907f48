/**
 * @file huggingface_proto.h
 * @brief Hugging Face text generation on the wire: TGI's /generate_stream
 * (SSE token events, `data:` without a space, no [DONE]) and /generate,
 * and the Inference API /models/{model} ([{"generated_text"}]). Pure:
 * fuzzed by tests/fuzz/fuzz_llm_hf.c.
 */
#ifndef JIWA_HUGGINGFACE_PROTO_H
#define JIWA_HUGGINGFACE_PROTO_H

#include "llm_common/llm_codec.h"

/**
 * @brief {"inputs": PROMPT, "parameters": {max_new_tokens, temperature,
 * return_full_text: false, details: true}, "stream": B} — the prompt is
 * llm_prompt_build's plain chat transcript.
 * @param with_stream_field 1: add "stream" (the Inference API wants it;
 *        TGI's /generate_stream streams by its path).
 * @return 0, JIWA_ENOMEM.
 */
int hf_build(const llm_build_t *b, int with_stream_field, char **json,
             size_t *len);

/**
 * @brief One TGI stream event: token.text (special tokens skipped) is
 * text; the last event carries generated_text (done) and
 * details.finish_reason / generated_tokens; {"error", "error_type"} is an
 * in-stream error (retryable when error_type is "overloaded").
 * @return 0, JIWA_EPROTO, JIWA_EUPSTREAM or on_text's code.
 */
int hf_event(llm_out_t *o, const char *event, const char *data, size_t len);

/** @brief A whole body: [{"generated_text"}] or {"generated_text",
 *  "details"}. */
int hf_body(llm_out_t *o, const char *json, size_t len);

#endif
