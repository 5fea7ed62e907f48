-- expect: error __gc is not allowed
-- an error object with a finalizer that loops
error(setmetatable({}, { __gc = function() while true do end end }))
