# The nightly job end to end per stage (10k / 100k queries) and golden
# generation throughput by concurrency, against mockllm.
add_executable(bench_nightly bench/bench_nightly.c)
target_link_libraries(bench_nightly PRIVATE jiwa_rt jiwa_jobs PkgConfig::CURL)
target_compile_definitions(bench_nightly PRIVATE
  JIWA_BENCH_PLUGIN_DIR="${JIWA_PLUGIN_OUT}"
  JIWA_BENCH_MOCKLLM="$<TARGET_FILE:mockllm>")
add_dependencies(bench_nightly nightly openai golden_cache mockllm)
set_target_properties(bench_nightly PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools/bench)
