-- expect: budget
-- table.remove shifts what __len claims
local t = setmetatable({}, { __len = function() return 1 << 50 end })
table.remove(t, 1)
