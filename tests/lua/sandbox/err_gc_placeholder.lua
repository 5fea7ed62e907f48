-- expect: error __gc is not allowed
-- mark for finalization with a placeholder, fill it in later
local mt = { __gc = true }
local t = setmetatable({}, mt)
mt.__gc = function() while true do end end
