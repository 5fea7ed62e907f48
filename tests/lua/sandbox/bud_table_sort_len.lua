-- expect: budget
-- sorting what __len claims
local t = setmetatable({}, { __len = function() return 1 << 30 end, __index = function() return 1 end })
table.sort(t)
