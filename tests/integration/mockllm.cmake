# tools/mockllm end to end: the real binary on an ephemeral loopback port.
add_executable(test_mockllm test_mockllm.c)
target_link_libraries(test_mockllm PRIVATE jiwa_sdk PkgConfig::CURL
                      PkgConfig::CMOCKA m)
add_dependencies(test_mockllm mockllm)
add_test(NAME test_mockllm COMMAND test_mockllm $<TARGET_FILE:mockllm>)
set_tests_properties(test_mockllm PROPERTIES TIMEOUT 300)
