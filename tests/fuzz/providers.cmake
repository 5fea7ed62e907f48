# Provider plugins: fuzz each response parser (anthropic SSE events, OpenAI
# chunks, RunPod status JSON, TGI / Inference API streams and bodies) and
# the llm.complete ask decoder with the request builders.
foreach(t fuzz_llm_anthropic fuzz_llm_openai fuzz_llm_runpod fuzz_llm_hf
          fuzz_llm_req)
  set(JIWA_FUZZ_LIB_${t} jiwa_llm_codec)
  jiwa_add_fuzz(${t} ${t}.c)
endforeach()
