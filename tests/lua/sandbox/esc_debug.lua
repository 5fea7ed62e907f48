-- expect: error undefined global 'debug'
-- reach the registry with the debug library
local reg = debug.getregistry()
return reg
