# Knowledge JSONL lines -> collection records / golden entries
# (runtime/store/jiwa_knowledge.*): used by the cultural_rag and
# golden_cache plugins and by the socket op knowledge.import. Static and
# position-independent: plugins link it.
add_library(jiwa_knowledge STATIC ${CMAKE_CURRENT_LIST_DIR}/jiwa_knowledge.c)
target_include_directories(jiwa_knowledge PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(jiwa_knowledge PUBLIC jiwa_sdk)
set_target_properties(jiwa_knowledge PROPERTIES POSITION_INDEPENDENT_CODE ON
                      C_VISIBILITY_PRESET hidden)
