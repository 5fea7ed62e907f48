add_executable(bench_http bench/bench_http.c)
target_link_libraries(bench_http PRIVATE jiwa_http)
set_target_properties(bench_http PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools/bench)
