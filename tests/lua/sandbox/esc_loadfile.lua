-- expect: error undefined global 'loadfile'
-- compile another file
local f = loadfile("/etc/passwd")
return f
