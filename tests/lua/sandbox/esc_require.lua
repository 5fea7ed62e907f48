-- expect: error undefined global 'require'
-- load a C module
local ffi = require("ffi")
return ffi
