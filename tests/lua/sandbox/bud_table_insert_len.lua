-- expect: budget
-- table.insert shifts what __len claims
local t = setmetatable({}, { __len = function() return 1 << 50 end })
table.insert(t, 1, "x")
