# Text area: language detection and hash embedding throughput.
add_executable(bench_text bench/bench_text.c)
target_link_libraries(bench_text PRIVATE jiwa_text)
set_target_properties(bench_text PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools/bench)
