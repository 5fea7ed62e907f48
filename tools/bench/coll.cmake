# Vector collections through the store layer vs the raw index (bench_coll).
add_executable(bench_coll bench/bench_coll.c)
target_link_libraries(bench_coll PRIVATE jiwa_coll)
set_target_properties(bench_coll PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools/bench)
# the seeded data generator shared with bench_vindex
target_include_directories(bench_coll PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/bench)
