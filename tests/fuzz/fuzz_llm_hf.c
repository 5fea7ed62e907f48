/*
 * Fuzz target for the TGI token streams and Inference API bodies
 * parser of the hf provider plugin (plugins/huggingface/huggingface_proto.h).
 * See fuzz_llm.h for the invariants.
 */
#include "fuzz_llm.h"
#include "huggingface/huggingface_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fl_fuzz(hf_event, hf_body, data, size);
}
