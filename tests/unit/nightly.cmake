# Nightly jobs' building blocks (runtime/jobs): cron, list parser,
# clustering against a generated query log.
jiwa_add_unit(test_cron jiwa_jobs)
jiwa_add_unit(test_listparse jiwa_jobs)
jiwa_add_unit(test_cluster jiwa_jobs)
