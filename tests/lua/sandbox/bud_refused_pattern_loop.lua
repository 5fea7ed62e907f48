-- expect: budget
-- retrying a refused pattern costs the guard's scan every time
local s = ("a"):rep(1 << 20)
while true do pcall(s.find, s, "a-b") end
