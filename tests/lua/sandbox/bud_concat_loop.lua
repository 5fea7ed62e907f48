-- expect: budget
-- quadratic string building, one byte at a time
local s = ""
for i = 1, 1e7 do s = s .. "x" end
