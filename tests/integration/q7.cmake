# The hybrid chat end to end (issue 7): jiwad with the shipped
# config/jiwa.lua on a private mockllm port, driven through the socket
# client and the jiwa CLI.
add_executable(test_hybrid_e2e test_hybrid_e2e.c)
target_link_libraries(test_hybrid_e2e PRIVATE jiwa_client jiwa_rt PkgConfig::CURL
                      PkgConfig::CMOCKA)
add_dependencies(test_hybrid_e2e jiwad jiwa mockllm policy anthropic openai
                 golden_cache cultural_rag knowledge echo)
add_test(NAME test_hybrid_e2e
  COMMAND test_hybrid_e2e $<TARGET_FILE:jiwad> $<TARGET_FILE:jiwa>
          $<TARGET_FILE:mockllm> ${JIWA_PLUGIN_OUT} ${CMAKE_SOURCE_DIR})
set_tests_properties(test_hybrid_e2e PROPERTIES TIMEOUT 300)
