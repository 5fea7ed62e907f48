-- expect: error undefined global 'os'
-- exit the daemon through _ENV
_ENV.os.exit(1)
