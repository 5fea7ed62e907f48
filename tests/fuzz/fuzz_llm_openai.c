/*
 * Fuzz target for the OpenAI-compatible chat completion chunks and bodies
 * parser of the openai provider plugin (plugins/openai/openai_proto.h).
 * See fuzz_llm.h for the invariants.
 */
#include "fuzz_llm.h"
#include "openai/openai_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fl_fuzz(openai_event, openai_body, data, size);
}
