-- expect: ok
-- __name cannot make a table look like another type
local t = setmetatable({}, { __name = "string" })
assert(type(t) == "table")
assert(tostring(t):match("^string: "))
local u = setmetatable({}, { __name = {} })
assert(tostring(u):match("^table: "))
assert(not pcall(string.upper, t))
