/*
 * Fuzz target for the Anthropic Messages SSE events and message bodies
 * parser of the anthropic provider plugin (plugins/anthropic/anthropic_proto.h).
 * See fuzz_llm.h for the invariants.
 */
#include "fuzz_llm.h"
#include "anthropic/anthropic_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fl_fuzz(anthropic_event, anthropic_body, data, size);
}
