/*
 * Fuzz target for the RunPod job status JSON (runsync, run, status)
 * parser of the runpod provider plugin (plugins/runpod/runpod_proto.h).
 * See fuzz_llm.h for the invariants.
 */
#include "fuzz_llm.h"
#include "runpod/runpod_proto.h"

/* RunPod answers are never streamed; an event carries a status body. */
static int runpod_body_event(llm_out_t *o, const char *event, const char *data,
                             size_t len) {
  (void)event;
  return runpod_body(o, data, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fl_fuzz(runpod_body_event, runpod_body, data, size);
}
