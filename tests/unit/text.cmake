jiwa_add_unit(test_lang jiwa_text)
jiwa_add_unit(test_embed jiwa_text)
