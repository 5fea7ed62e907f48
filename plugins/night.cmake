# The nightly worker (issue 9): the scheduler and the job's stages
# (runtime/jobs for cron, clustering and list parsing; the Lua sandbox for
# the job script; runtime/text for the hash embedder), and the batch
# classifier (its output validator is a small library of its own, fuzzed
# and unit-tested alone).
jiwa_add_plugin(nightly nightly/nightly.c nightly/night_stages.c)
target_link_libraries(nightly PRIVATE jiwa_jobs jiwa_text jiwa_policy)

add_library(jiwa_classify STATIC ${CMAKE_CURRENT_SOURCE_DIR}/classifier/classify_parse.c)
target_include_directories(jiwa_classify PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/classifier)
target_link_libraries(jiwa_classify PUBLIC jiwa_sdk)
set_target_properties(jiwa_classify PROPERTIES C_VISIBILITY_PRESET hidden)
jiwa_add_plugin(classifier classifier/classifier.c)
target_link_libraries(classifier PRIVATE jiwa_classify)
