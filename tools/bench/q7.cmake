# The hybrid chat's fast paths (issue 7): cultural retrieval at 500 and
# 100k insights through the harness, golden hits end to end over jiwad's
# socket (shipped config, mockllm) and chats/s with golden hits.
add_executable(bench_hybrid bench/bench_hybrid.c)
target_link_libraries(bench_hybrid PRIVATE jiwa_rt jiwa_coll jiwa_knowledge
                      jiwa_client Threads::Threads)
target_compile_definitions(bench_hybrid PRIVATE
  JIWA_BENCH_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
  JIWA_BENCH_PLUGIN_DIR="${JIWA_PLUGIN_OUT}")
add_dependencies(bench_hybrid jiwad mockllm policy anthropic openai
                 golden_cache cultural_rag knowledge)
set_target_properties(bench_hybrid PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                      ${CMAKE_BINARY_DIR}/tools/bench)
