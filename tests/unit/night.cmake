# The classifier's validator of model output (plugins/classifier).
jiwa_add_unit(test_classify_parse jiwa_classify)
