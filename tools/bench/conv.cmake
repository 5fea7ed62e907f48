# bench_shadow (issue 8): the user's path with shadow mode and the enricher
# on vs off (healthy, slow, failing, hanging secondary model) at 32
# concurrent clients, and the enrichments/s of the background path.
add_executable(bench_shadow bench/bench_shadow.c)
target_link_libraries(bench_shadow PRIVATE jiwa_rt PkgConfig::CURL
                      Threads::Threads)
target_compile_definitions(bench_shadow PRIVATE
  JIWA_SOURCE_DIR="${CMAKE_SOURCE_DIR}" JIWA_PLUGIN_OUT="${JIWA_PLUGIN_OUT}"
  MOCKLLM="$<TARGET_FILE:mockllm>")
set_target_properties(bench_shadow PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                      ${CMAKE_BINARY_DIR}/tools/bench)
add_dependencies(bench_shadow mockllm convlog memory jiwa_enricher shadow
                 openai anthropic policy)
