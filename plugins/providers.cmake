# LLM provider plugins (anthropic, openai, runpod, huggingface) and what
# they share: libjiwa_llm_codec (pure: ask bodies, presets, parse sink,
# retry arithmetic, breaker, and each provider's wire codec — fuzzed and
# unit-tested alone) and libjiwa_llm_common (the call lifecycle on the host
# table), both linked statically into every provider .so.
add_library(jiwa_llm_codec STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/llm_common/llm_codec.c
  ${CMAKE_CURRENT_SOURCE_DIR}/anthropic/anthropic_proto.c
  ${CMAKE_CURRENT_SOURCE_DIR}/openai/openai_proto.c
  ${CMAKE_CURRENT_SOURCE_DIR}/runpod/runpod_proto.c
  ${CMAKE_CURRENT_SOURCE_DIR}/huggingface/huggingface_proto.c)
target_include_directories(jiwa_llm_codec PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(jiwa_llm_codec PUBLIC jiwa_sdk m)
set_target_properties(jiwa_llm_codec PROPERTIES C_VISIBILITY_PRESET hidden)

add_library(jiwa_llm_common STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/llm_common/llm_call.c)
target_link_libraries(jiwa_llm_common PUBLIC jiwa_llm_codec)
set_target_properties(jiwa_llm_common PROPERTIES C_VISIBILITY_PRESET hidden)

foreach(p anthropic openai runpod huggingface)
  jiwa_add_plugin(${p} ${p}/${p}.c)
  target_link_libraries(${p} PRIVATE jiwa_llm_common)
endforeach()
