# Vector index unit tests (shares the seeded data generator of the bench).
jiwa_add_unit(test_vindex jiwa_vindex)
target_include_directories(test_vindex PRIVATE ${CMAKE_SOURCE_DIR}/tools/bench)
