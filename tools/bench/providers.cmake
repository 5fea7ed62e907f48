# Gateway overhead: a chat through jiwad (socket -> policy -> openai provider
# -> mockllm) against the same request straight to mockllm, same run.
add_executable(bench_gateway bench/bench_gateway.c)
target_link_libraries(bench_gateway PRIVATE jiwa_sdk PkgConfig::CURL
                      Threads::Threads)
target_compile_definitions(bench_gateway PRIVATE
                           JIWA_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
set_target_properties(bench_gateway PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                      ${CMAKE_BINARY_DIR}/tools/bench)
add_dependencies(bench_gateway jiwad mockllm policy openai)
