# The provider plugins in a real jiwad (socket, CLI, hybrid policy, fallback,
# canary key at log level debug), against tools/mockllm.
add_test(NAME test_providers_jiwad
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_providers_jiwad.sh
          $<TARGET_FILE:jiwad> $<TARGET_FILE:jiwa> $<TARGET_FILE:mockllm>
          ${JIWA_PLUGIN_OUT} ${CMAKE_SOURCE_DIR})
set_tests_properties(test_providers_jiwad PROPERTIES TIMEOUT 300)
