-- expect: error global names must be strings
-- store state under a non-string key of _ENV
_ENV[1] = "state"
