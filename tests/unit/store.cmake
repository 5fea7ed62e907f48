# The LMDB store service (runtime/store/jiwa_store.*).
jiwa_add_unit(test_store jiwa_store)
