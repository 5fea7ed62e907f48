-- expect: error attempt to index a nil value
-- look for os through the string methods
local s = ""
return s.os.exit()
