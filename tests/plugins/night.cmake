# The nightly worker end to end (mockllm + openai providers + golden_cache
# + cultural_rag + a fake conversation log + a webhook receiver), and the
# classifier through the plugin harness with fake model actors.
add_executable(test_nightly test_nightly.c)
target_link_libraries(test_nightly PRIVATE jiwa_rt jiwa_jobs
                      PkgConfig::CURL PkgConfig::CMOCKA)
add_dependencies(test_nightly nightly openai golden_cache cultural_rag mockllm)
add_test(NAME test_nightly COMMAND test_nightly $<TARGET_FILE:mockllm>)
set_tests_properties(test_nightly PROPERTIES TIMEOUT 600 ENVIRONMENT
  "JIWA_PLUGIN_OUT=${JIWA_PLUGIN_OUT};JIWA_SOURCE_DIR=${CMAKE_SOURCE_DIR}")

jiwa_add_plugin_test(test_classifier)
add_dependencies(test_classifier classifier)
