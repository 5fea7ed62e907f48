# convlog, memory, jiwa_enricher and shadow (issue 8) in an in-process
# runtime with a private store, tools/mockllm on an ephemeral port and the
# openai / anthropic providers playing llama / claude; the hybrid policy
# for the user's path.
add_executable(test_conv test_conv.c)
target_link_libraries(test_conv PRIVATE jiwa_rt jiwa_memory PkgConfig::CURL
                      PkgConfig::CMOCKA)
add_dependencies(test_conv convlog memory jiwa_enricher shadow openai
                 anthropic policy mockllm)
add_test(NAME test_conv COMMAND test_conv $<TARGET_FILE:mockllm>)
set_tests_properties(test_conv PROPERTIES TIMEOUT 600 ENVIRONMENT
  "JIWA_PLUGIN_OUT=${JIWA_PLUGIN_OUT};JIWA_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
