-- expect: error cannot change a protected metatable
-- give the environment a permissive metatable
setmetatable(_ENV, { __index = function() return 1 end, __newindex = rawset })
