-- expect: error undefined global 'load'
-- compile text with a custom environment to get a fresh _ENV
local f = load("return _ENV", "=x", "t", { os = true })
return f()
