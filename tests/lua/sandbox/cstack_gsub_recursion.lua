-- expect: error C stack overflow
-- gsub calling itself from its replacement
local function f(s) return (s:gsub(".", f)) end
return f("ab")
