-- expect: error malformed pattern (missing ']')
-- a malformed pattern is the usual Lua error
return ("x"):find("[a")
