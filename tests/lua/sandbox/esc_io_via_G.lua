-- expect: error undefined global 'io'
-- io through _G and a computed name
local lib = _G["i" .. "o"]
return lib.popen("id")
