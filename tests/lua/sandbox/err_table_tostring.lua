-- expect: error error object is a table value
-- an error object whose __tostring never returns
error(setmetatable({}, { __tostring = function() while true do end end }))
