-- expect: budget
-- table.concat over a huge explicit range
local t = setmetatable({}, { __index = function() return "" end })
return table.concat(t, "", 1, 1 << 40)
