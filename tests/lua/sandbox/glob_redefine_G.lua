-- expect: error cannot redefine builtin global '_G'
-- replace _G
_G = {}
