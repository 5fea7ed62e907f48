-- expect: memory
-- a table that grows forever
local t = {}
for i = 1, 1e9 do t[i] = i end
