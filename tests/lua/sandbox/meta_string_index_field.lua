-- expect: error attempt to index a nil value
-- reach the string metatable through a string
local mt = ("").__index
mt.upper = nil
