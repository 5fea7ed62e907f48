# Vector collections (runtime/store/jiwa_coll.*): records + an HNSW index
# image in the LMDB store, searched in place. The runtime links it for the
# plugin SDK's store functions (ABI 1.2).
add_library(jiwa_coll STATIC ${CMAKE_CURRENT_LIST_DIR}/jiwa_coll.c)
target_include_directories(jiwa_coll PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(jiwa_coll PUBLIC jiwa_store jiwa_vindex jiwa_text
                      jiwa_sdk Threads::Threads m)
set_target_properties(jiwa_coll PROPERTIES POSITION_INDEPENDENT_CODE ON)
# jiwa_rt (defined at the top level) serves the store to plugins.
target_link_libraries(jiwa_rt PUBLIC jiwa_coll)
# The config validates `embedder` against the one registry of kinds here.
target_link_libraries(jiwa_conf PUBLIC jiwa_coll)
# The harness (pkg-config jiwa-harness) links the store libraries too.
install(TARGETS jiwa_coll jiwa_store jiwa_vindex jiwa_text
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
