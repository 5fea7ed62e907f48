-- expect: error attempt to index a boolean value
-- get the real environment through the proxy's metatable
local mt = getmetatable(_ENV)
local real = mt.__index
return real
