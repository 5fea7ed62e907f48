-- expect: refused pattern
-- two lazy repetitions: cubic, seconds on a few kilobytes
local s = string.rep("a", 5000)
return s:find("a-a-b")
