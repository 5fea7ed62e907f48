-- expect: error C stack overflow
-- __tostring calling tostring on itself
local t
t = setmetatable({}, { __tostring = function() return tostring(t) end })
return tostring(t)
