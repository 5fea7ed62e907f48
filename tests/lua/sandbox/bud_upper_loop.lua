-- expect: budget
-- a linear C function on a big string in a loop
local big = ("x"):rep(8 << 20)
while true do local u = big:upper() end
