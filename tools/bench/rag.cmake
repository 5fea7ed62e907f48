# cultural_rag rag.query and golden_cache golden.lookup through the plugin
# harness vs a bare collection search (bench_rag).
add_executable(bench_rag bench/bench_rag.c)
target_link_libraries(bench_rag PRIVATE jiwa_rt jiwa_coll)
target_compile_definitions(bench_rag PRIVATE
  JIWA_BENCH_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
  JIWA_BENCH_PLUGIN_DIR="${JIWA_PLUGIN_OUT}")
add_dependencies(bench_rag cultural_rag golden_cache)
set_target_properties(bench_rag PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools/bench)
