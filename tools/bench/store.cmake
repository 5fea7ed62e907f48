# LMDB store service benchmark: group commit vs one put per transaction.
add_executable(bench_store bench/bench_store.c)
target_link_libraries(bench_store PRIVATE jiwa_store)
set_target_properties(bench_store PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools/bench)
