add_executable(bench_policy bench/bench_policy.c)
target_link_libraries(bench_policy PRIVATE jiwa_policy_dry)
add_dependencies(bench_policy policy)
set_target_properties(bench_policy PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools/bench)
