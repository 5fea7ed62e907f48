# Vector collections (runtime/store/jiwa_coll.*).
jiwa_add_unit(test_coll jiwa_coll)
