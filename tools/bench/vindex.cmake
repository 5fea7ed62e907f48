# Vector index benchmark (and an optional hnswlib comparison, bench-only).
add_executable(bench_vindex bench/bench_vindex.c)
target_link_libraries(bench_vindex PRIVATE jiwa_vindex)
target_include_directories(bench_vindex PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/bench)
set_target_properties(bench_vindex PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools/bench)

# Optional: hnswlib side by side (Debian libhnswlib-dev, header-only C++).
# Never required; without the header or a C++ compiler it is skipped.
include(CheckLanguage)
check_language(CXX)
find_path(HNSWLIB_INCLUDE_DIR hnswlib/hnswlib.h)
# Not in fuzzing builds: their project-wide clang flags
# (-fsanitize=fuzzer-no-link) mean nothing to the C++ compiler CMake finds.
if(CMAKE_CXX_COMPILER AND HNSWLIB_INCLUDE_DIR AND NOT JIWA_FUZZ)
  enable_language(CXX)
  add_executable(bench_hnswlib bench/bench_hnswlib.cpp)
  target_link_libraries(bench_hnswlib PRIVATE jiwa_vindex)
  target_include_directories(bench_hnswlib PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/bench)
  target_include_directories(bench_hnswlib SYSTEM PRIVATE ${HNSWLIB_INCLUDE_DIR})
  set_target_properties(bench_hnswlib PROPERTIES CXX_STANDARD 14
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools/bench)
  # the project's C-only warning flag is an error for C++ under -Werror
  get_target_property(_jiwa_hnsw_opts bench_hnswlib COMPILE_OPTIONS)
  if(_jiwa_hnsw_opts)
    list(REMOVE_ITEM _jiwa_hnsw_opts -Wstrict-prototypes)
    set_property(TARGET bench_hnswlib PROPERTY COMPILE_OPTIONS ${_jiwa_hnsw_opts})
  endif()
  # hnswlib picks its SIMD at compile time: give it the AVX2 that jiwa's
  # kernel selects at run time, so the comparison is like for like.
  include(CheckCXXCompilerFlag)
  check_cxx_compiler_flag("-mavx2 -mfma" JIWA_CXX_HAS_AVX2)
  if(JIWA_CXX_HAS_AVX2 AND CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    target_compile_options(bench_hnswlib PRIVATE -mavx2 -mfma)
  endif()
else()
  message(STATUS "bench_hnswlib skipped: needs a C++ compiler and "
                 "libhnswlib-dev (apt-get install -y libhnswlib-dev)")
endif()
