-- expect: error undefined global 'io'
-- read a file through io
local f = io.open("/etc/passwd")
return f:read("a")
