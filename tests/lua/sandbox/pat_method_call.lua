-- expect: refused pattern
-- the same bombs through the string methods (string metatable __index)
local s = ("a"):rep(10000)
return s:match(".-.-.-b")
