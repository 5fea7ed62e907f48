-- expect: error bad argument #1 to 'getmetatable' (table expected, got string)
-- replace every string's methods for everyone
getmetatable("").__index = { upper = function() return "pwned" end }
