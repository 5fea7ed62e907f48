# The LLM provider plugins end to end against tools/mockllm (started by the
# test on an ephemeral port), in an in-process runtime with the policy
# engine for the fallback chain.
add_executable(test_providers test_providers.c)
target_link_libraries(test_providers PRIVATE jiwa_rt jiwa_llm_codec
                      PkgConfig::CURL PkgConfig::CMOCKA)
add_dependencies(test_providers anthropic openai runpod huggingface policy
                 mockllm)
add_test(NAME test_providers COMMAND test_providers $<TARGET_FILE:mockllm>)
set_tests_properties(test_providers PROPERTIES TIMEOUT 300 ENVIRONMENT
  "JIWA_PLUGIN_OUT=${JIWA_PLUGIN_OUT};JIWA_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
