-- expect: error '__index' chain too long
-- a table that is its own __index
local a = {}
setmetatable(a, { __index = a })
return a.missing
