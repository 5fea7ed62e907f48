/**
 * @file runpod_proto.h
 * @brief RunPod serverless, native API: the job body for /runsync and
 * /run, and the job status JSON of /runsync, /run and /status/{id}.
 * Pure: fuzzed by tests/fuzz/fuzz_llm_runpod.c.
 */
#ifndef JIWA_RUNPOD_PROTO_H
#define JIWA_RUNPOD_PROTO_H

#include "llm_common/llm_codec.h"

/**
 * @brief {"input": {"messages": [...]} or {"prompt": "..."},
 * "sampling_params": {max_tokens, temperature}} — the vLLM worker's input.
 * @param prompt_form 1: send `input.prompt` (a plain prompt) instead of
 *        `input.messages`.
 * @return 0, JIWA_ENOMEM.
 */
int runpod_build(const llm_build_t *b, int prompt_form, char **json,
                 size_t *len);

/**
 * @brief A job status body. COMPLETED → the output's text (vLLM worker:
 * output[0].choices[0].tokens joined; also choices[0].text,
 * choices[0].message.content, output.text, a plain string) and usage
 * (input/output or prompt_tokens/completion_tokens), done; IN_QUEUE /
 * IN_PROGRESS → o->pending with o->job; FAILED, CANCELLED, TIMED_OUT or
 * {"error": "..."} → an error.
 * @return 0, JIWA_EPROTO, JIWA_EUPSTREAM, JIWA_ETIMEDOUT, or on_text's code.
 */
int runpod_body(llm_out_t *o, const char *json, size_t len);

#endif
