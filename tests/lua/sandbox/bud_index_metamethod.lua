-- expect: budget
-- an __index metamethod that loops
local t = setmetatable({}, { __index = function() while true do end end })
return t.x
