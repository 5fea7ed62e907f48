-- expect: budget
-- table.unpack over what a __len of maxinteger claims (no integer overflow)
local t = setmetatable({}, { __len = function() return math.maxinteger end })
return table.unpack(t, math.mininteger)
