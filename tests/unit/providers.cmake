# Provider plugins: the pure codec (ask bodies, presets, retry arithmetic,
# the breaker, each protocol's parser and request builder).
jiwa_add_unit(test_llm_codec jiwa_llm_codec)
