-- expect: error '__tostring' must return a string
-- __tostring returning a table
return tostring(setmetatable({}, { __tostring = function() return {} end }))
