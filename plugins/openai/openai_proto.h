/**
 * @file openai_proto.h
 * @brief OpenAI-compatible chat completions on the wire (OpenAI, vLLM,
 * llama.cpp server, Ollama, RunPod's OpenAI route): request body, SSE
 * `data:` chunks ending in `[DONE]`, whole bodies. Pure: fuzzed by
 * tests/fuzz/fuzz_llm_openai.c.
 */
#ifndef JIWA_OPENAI_PROTO_H
#define JIWA_OPENAI_PROTO_H

#include "llm_common/llm_codec.h"

/** Options of the request body. */
typedef struct {
  /** "max_tokens" (vLLM, llama.cpp, Ollama) or "max_completion_tokens"
   *  (newer OpenAI models). */
  const char *max_tokens_field;
  /** Ask for a final usage chunk (stream_options.include_usage). */
  int include_usage;
} openai_opts_t;

/**
 * @brief POST {base}/chat/completions body: model, messages (the system
 * prompt as a leading system message), max tokens, temperature, stream,
 * stream_options.
 * @return 0, JIWA_ENOMEM.
 */
int openai_build(const llm_build_t *b, const openai_opts_t *opts, char **json,
                 size_t *len);

/**
 * @brief One SSE chunk: `[DONE]` (done), {"error":{...}} (in-stream error,
 * retryable when it says rate limit / overloaded / server error), or a
 * chat.completion.chunk: model, choices[0].delta.content (text),
 * choices[0].finish_reason (finish; also marks the answer complete),
 * usage (prompt_tokens, completion_tokens).
 * @return 0, JIWA_EPROTO, JIWA_EUPSTREAM or on_text's code.
 */
int openai_event(llm_out_t *o, const char *event, const char *data,
                 size_t len);

/** @brief A non-streamed chat.completion body. */
int openai_body(llm_out_t *o, const char *json, size_t len);

#endif
