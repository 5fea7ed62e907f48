-- expect: ok
-- pcall nested until the C stack limit is caught, and the script goes on
local function f() return pcall(f) end
local ok, e = f()
assert(ok ~= nil)
