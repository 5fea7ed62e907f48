/*
 * Fuzz target for the `llm.complete` ask body decoder shared by the provider
 * plugins (llm_req_parse in plugins/llm_common/llm_codec.h), and everything
 * built from an accepted body: the system prompt, the plain prompt, each
 * protocol's request JSON.
 *
 * Invariants: a parse either fails with a documented code and a message,
 * or yields 1..LLM_MAX_MSGS messages whose strings lie inside the input,
 * with at least one user/assistant turn; every built request body is
 * valid JSON (it parses back) and is deterministic.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anthropic/anthropic_proto.h"
#include "huggingface/huggingface_proto.h"
#include "jiwa/json.h"
#include "openai/openai_proto.h"
#include "runpod/runpod_proto.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "fuzz_llm_req: invariant failed at line %d: %s\n",      \
              __LINE__, #cond);                                                \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static int inside(const uint8_t *d, size_t n, llm_str_t s) {
  if (!s.p)
    return s.n == 0;
  return (const uint8_t *)s.p >= d && (const uint8_t *)s.p + s.n <= d + n;
}

static void valid_json(const char *js, size_t len) {
  char *mp = NULL;
  size_t mplen = 0;
  CHECK(jiwa_json_to_mp(js, len, NULL, &mp, &mplen, NULL) == 0);
  free(mp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static llm_req_t r; /* big: keep it off the stack */
  char err[200];
  int rc = llm_req_parse(data, size, &r, err, sizeof err);
  if (rc) {
    CHECK(rc == JIWA_EINVAL || rc == JIWA_EPROTO || rc == JIWA_ETOOBIG);
    CHECK(memchr(err, '\0', sizeof err) && err[0]);
    return 0;
  }
  CHECK(r.nmsgs >= 1 && r.nmsgs <= LLM_MAX_MSGS);
  CHECK(inside(data, size, r.system) && inside(data, size, r.context) &&
        inside(data, size, r.lang));
  size_t turns = 0;
  for (size_t i = 0; i < r.nmsgs; i++) {
    /* the fallback-route form points at a static "user" */
    CHECK(llm_eq(r.msgs[i].role.p, r.msgs[i].role.n, "user") ||
          llm_eq(r.msgs[i].role.p, r.msgs[i].role.n, "assistant") ||
          llm_eq(r.msgs[i].role.p, r.msgs[i].role.n, "system"));
    CHECK(inside(data, size, r.msgs[i].content));
    turns += !llm_eq(r.msgs[i].role.p, r.msgs[i].role.n, "system");
  }
  CHECK(turns >= 1);
  CHECK(r.max_tokens >= 0 && r.max_tokens <= 1000000);
  CHECK(r.temperature == -1 || (r.temperature >= 0 && r.temperature <= 2));

  llm_params_cfg_t pc = {1024, 0.7, LLM_PRESET_NONE, 300, 0.8, 1200, 0.4};
  int64_t mt;
  double t;
  llm_preset_t pr;
  llm_params_resolve(&pc, &r, &mt, &t, &pr);
  CHECK(mt >= 1 && t >= 0 && t <= 2);

  char *sys = NULL, *prompt = NULL;
  size_t slen = 0, plen = 0;
  CHECK(llm_system_build("Kamu Jiwa.", &r, &sys, &slen) == 0);
  CHECK(strlen(sys) <= slen); /* contents may hold NUL bytes of the input */
  CHECK(llm_prompt_build(sys, &r, &prompt, &plen) == 0);
  CHECK(plen >= strlen("Assistant:"));
  llm_build_t b = {"model-x", sys, &r, mt, t, r.stream};
  openai_opts_t oo = {"max_tokens", 1};
  for (int which = 0; which < 4; which++) {
    char *js[2] = {NULL, NULL};
    size_t jl[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
      switch (which) {
      case 0:
        rc = anthropic_build(&b, &js[k], &jl[k]);
        break;
      case 1:
        rc = openai_build(&b, &oo, &js[k], &jl[k]);
        break;
      case 2:
        rc = runpod_build(&b, k, &js[k], &jl[k]);
        break;
      default:
        rc = hf_build(&b, 1, &js[k], &jl[k]);
        break;
      }
      CHECK(rc == 0);
      valid_json(js[k], jl[k]);
    }
    if (which != 2) /* runpod built both forms */
      CHECK(jl[0] == jl[1] && memcmp(js[0], js[1], jl[0]) == 0);
    free(js[0]);
    free(js[1]);
  }
  free(sys);
  free(prompt);
  return 0;
}
