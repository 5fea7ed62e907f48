# Vector index (HNSW over contiguous arrays, in-place searchable image).
# Included from runtime/store/CMakeLists.txt; see jiwa_vindex.h.
add_library(jiwa_vindex STATIC ${CMAKE_CURRENT_LIST_DIR}/jiwa_vindex.c)
target_include_directories(jiwa_vindex PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(jiwa_vindex PUBLIC jiwa_sdk Threads::Threads m)
set_target_properties(jiwa_vindex PROPERTIES POSITION_INDEPENDENT_CODE ON)
# Let the distance kernel fuse multiply-adds (-std=c11 turns contraction
# off); results stay deterministic for a given binary.
if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(jiwa_vindex PRIVATE -ffp-contract=fast)
endif()
