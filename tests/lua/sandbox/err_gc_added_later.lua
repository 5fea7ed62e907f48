-- expect: ok
-- a __gc added after setmetatable is never called (Lua only marks at setmetatable)
local mt = {}
local t = setmetatable({}, mt)
mt.__gc = function() while true do end end
t = nil
