# The LMDB store service (runtime/store/jiwa_store.*): one environment, one
# writer thread with group commit, zero-copy readers.
add_library(jiwa_store STATIC ${CMAKE_CURRENT_SOURCE_DIR}/jiwa_store.c)
target_include_directories(jiwa_store PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(jiwa_store PUBLIC PkgConfig::LMDB jiwa_sdk PkgConfig::UV
                      Threads::Threads m)
