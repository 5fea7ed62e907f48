-- expect: error bad argument #1 to 'setmetatable' (table expected, got string)
-- give strings a new metatable
setmetatable("", {})
