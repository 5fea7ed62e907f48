-- expect: error glob_undefined_read.lua:4: undefined global 'undefined_thing'
-- read a global that does not exist: the message names the file and line
local x = 1
return undefined_thing + x
