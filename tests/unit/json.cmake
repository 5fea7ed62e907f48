jiwa_add_unit(test_json jiwa_sdk)
