-- expect: budget
-- endless tail calls (no stack growth)
local function f() return f() end
return f()
