# The http embedder (runtime/text/jiwa_embed_http.*) against tools/mockllm,
# the registry row in jiwa_coll.c and the collection config keys.
jiwa_add_unit(test_embed_http jiwa_coll)
target_link_libraries(test_embed_http PRIVATE jiwa_conf PkgConfig::CURL)
add_dependencies(test_embed_http mockllm)
set_property(TEST test_embed_http APPEND PROPERTY ENVIRONMENT
             "JIWA_MOCKLLM=$<TARGET_FILE:mockllm>")
