# Crash safety of the LMDB store: kill -9 a writer at random moments.
# Long run: JIWA_CRASH_ITERS=10000 build/tests/integration/test_store_crash \
#           build/tests/integration/store_crash_writer
add_executable(store_crash_writer store_crash_writer.c)
target_link_libraries(store_crash_writer PRIVATE jiwa_store)
add_executable(test_store_crash test_store_crash.c)
target_link_libraries(test_store_crash PRIVATE jiwa_store PkgConfig::CMOCKA)
add_test(NAME test_store_crash
  COMMAND test_store_crash $<TARGET_FILE:store_crash_writer>)
set_tests_properties(test_store_crash PROPERTIES TIMEOUT 600)
