# Nightly jobs: clustering of generated query logs (10k, 50k, 100k).
add_executable(bench_cluster bench/bench_cluster.c)
target_link_libraries(bench_cluster PRIVATE jiwa_jobs)
set_target_properties(bench_cluster PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools/bench)
