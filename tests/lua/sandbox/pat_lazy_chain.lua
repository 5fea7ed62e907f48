-- expect: refused pattern
-- ten lazy repetitions over 30000 bytes (centuries in plain Lua)
local s = string.rep("a", 30000)
return s:find(("a-"):rep(10) .. "b")
