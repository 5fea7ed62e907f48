# The conversation log, shadow mode, the JIWA enricher and the memory actor
# (issue 8). memory, jiwa_enricher and shadow link the memory building
# blocks (runtime/memory, static PIC); all four share plugins/convlog/
# conv_util.h (time-ordered keys, range scans, ISO-8601 times).
jiwa_add_plugin(convlog convlog/convlog.c)
target_include_directories(convlog PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/convlog)
foreach(p memory jiwa_enricher shadow)
  jiwa_add_plugin(${p} ${p}/${p}.c)
  target_include_directories(${p} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/convlog)
  target_link_libraries(${p} PRIVATE jiwa_memory jiwa_text)
endforeach()
