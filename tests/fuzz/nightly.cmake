# Nightly jobs: cron expressions from the config, list output from models.
set(JIWA_FUZZ_LIB_fuzz_cron jiwa_jobs)
jiwa_add_fuzz(fuzz_cron fuzz_cron.c)
set(JIWA_FUZZ_LIB_fuzz_listparse jiwa_jobs)
jiwa_add_fuzz(fuzz_listparse fuzz_listparse.c)
