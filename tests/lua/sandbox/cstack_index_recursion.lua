-- expect: error C stack overflow
-- __index recursing through C
local t = setmetatable({}, { __index = function(t, k) return t[k] end })
return t.x
